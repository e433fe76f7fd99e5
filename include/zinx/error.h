/*
 * Error codes of the Zinx C library.
 *
 * Every fallible call returns 0 on success or a negative ZINX_E* code.
 * Where a system call failed, the code is the negated errno value, so
 * ZINX_ECONNRESET == -ECONNRESET and zinx_strerror() also describes any
 * other negated errno a call may pass through.
 */
#ifndef ZINX_ERROR_H
#define ZINX_ERROR_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

/*
 * XX(name, value, description): one row per code. The table generates the
 * constants below, zinx_strerror() and zinx_err_name(). The last three
 * rows are conditions no errno describes; their values, -4001 and down,
 * lie far beyond every errno value (Linux's stay below 200), so they can
 * never equal a negated errno.
 */
#define ZINX_ERRNO_MAP(XX)                                             \
    XX(EINVAL, -EINVAL, "invalid argument")                            \
    XX(ENOMEM, -ENOMEM, "out of memory")                               \
    XX(EAGAIN, -EAGAIN, "incomplete data or resource busy, try again") \
    XX(EPROTO, -EPROTO, "protocol error")                              \
    XX(EMSGSIZE, -EMSGSIZE, "message longer than MaxPacketSize")       \
    XX(ENOBUFS, -ENOBUFS, "buffer too small")                          \
    XX(EEXIST, -EEXIST, "already exists")                              \
    XX(ENOENT, -ENOENT, "not found")                                   \
    XX(EBUSY, -EBUSY, "busy")                                          \
    XX(EDEADLK, -EDEADLK, "would wait on the calling thread itself")   \
    XX(EADDRINUSE, -EADDRINUSE, "address already in use")              \
    XX(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")         \
    XX(EACCES, -EACCES, "permission denied")                           \
    XX(ECONNRESET, -ECONNRESET, "connection reset by peer")            \
    XX(ECONNREFUSED, -ECONNREFUSED, "connection refused")              \
    XX(ECONNABORTED, -ECONNABORTED, "connection aborted")              \
    XX(EHOSTUNREACH, -EHOSTUNREACH, "host unreachable")                \
    XX(ENETUNREACH, -ENETUNREACH, "network unreachable")               \
    XX(EPIPE, -EPIPE, "broken pipe")                                   \
    XX(EMFILE, -EMFILE, "too many open files")                         \
    XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                             \
    XX(ENOTSUP, -ENOTSUP, "not supported by this build")               \
    XX(ECLOSED, -4001, "connection is closed or closing")              \
    XX(ECONFIG, -4002, "invalid configuration")                        \
    XX(ESTATE, -4003, "not allowed in the object's current state")

enum zinx_errno {
#define ZINX__ERR_ENUM(name, value, text) ZINX_##name = (value),
    ZINX_ERRNO_MAP(ZINX__ERR_ENUM)
#undef ZINX__ERR_ENUM
};

/*
 * Returns a static English description of err (a ZINX_E* code or a
 * negated errno). Unknown codes give "unknown error". Thread: any.
 */
const char *zinx_strerror(int err);

/*
 * Returns the static symbolic name of err ("ZINX_EMSGSIZE"), or
 * "ZINX_UNKNOWN" for a code outside the table. Thread: any.
 */
const char *zinx_err_name(int err);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_ERROR_H */
