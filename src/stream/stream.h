/*
 * Streams: the byte transport under a connection.
 *
 * A connection reads, writes, shuts down and closes through a stream and
 * says which events it wants; it never sees a descriptor. The stream maps
 * what the connection wants to what its transport must wait for (a TLS
 * layer may need to read before it can write) and tells its owner when
 * it is ready. Streams stack: a layer holds the stream below it in
 * `lower` and is the owner of that stream's events (PROXY header, then
 * TLS, then WebSocket, then the codec), and a stream need not have a
 * descriptor at all (KCP over a shared UDP socket). Today's transports
 * are sockets: TCP and Unix domain stream sockets, accepted, dialled or
 * adopted from a descriptor, read and written with system calls on an
 * epoll loop (sock.c) or with io_uring requests on an io_uring loop
 * (uring_sock.c).
 *
 * Every operation runs on the owning connection's I/O thread.
 */
#ifndef ZINX_STREAM_H
#define ZINX_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "event/event.h"

/* Longest address text: "[" IPv6 (45 with an IPv4 tail) "]:" port and
   NUL is 54; a Unix socket path longer than 55 bytes is shown by its
   tail, "..." first. Kept small: every connection holds two. */
#define ZINX__ADDR_TEXT_MAX 56

typedef struct zinx__stream zinx__stream_t;
/* The owner's readiness callback: events is a mask of ZINX__EV_*. */
typedef void (*zinx__stream_ready_fn)(void *owner, uint32_t events);

typedef struct zinx__stream_ops {
    const char *name;
    /* Starts delivering readiness to on_ready(owner, ...) on loop, with
       no interest yet. Returns 0 or a negated errno. */
    int (*start)(zinx__stream_t *s, zinx__loop_t *loop,
                 zinx__stream_ready_fn on_ready, void *owner);
    /* Reads up to len bytes: returns n > 0, 0 at the peer's end of
       stream, ZINX_EAGAIN when nothing is there now, or another negative
       ZINX_E* code. */
    ssize_t (*read)(zinx__stream_t *s, void *buf, size_t len);
    /* Writes what it can: the bytes taken (perhaps fewer than offered),
       ZINX_EAGAIN when none, or another negative ZINX_E* code. */
    ssize_t (*writev)(zinx__stream_t *s, const struct iovec *iov, int n);
    /* Ends our direction after what was written (TCP's FIN). */
    int (*shutdown)(zinx__stream_t *s);
    /* The owner wants ZINX__EV_READ and/or ZINX__EV_WRITE readiness. */
    int (*want)(zinx__stream_t *s, uint32_t events);
    /* Drives a handshake (TLS, a PROXY header): 0 when done, ZINX_EAGAIN
       while it goes on, or a negative ZINX_E* code. NULL: none. */
    int (*handshake)(zinx__stream_t *s);
    /* Bytes written but not acknowledged by the peer yet (the kernel's
       send queue), so that a lingering close knows when nothing can be
       lost; 0 when unknown. */
    size_t (*unacked)(zinx__stream_t *s);
    /* Milliseconds since the peer last acknowledged data, or -1 when the
       transport cannot tell (the heartbeat's HeartbeatCountAcks rule). */
    long (*since_ack_ms)(zinx__stream_t *s);
    /* The pending error after ZINX__EV_ERROR, as a negative code. */
    int (*error)(zinx__stream_t *s);
    /* Stops events and releases the transport (closes the descriptor).
       Idempotent. The memory of the stream stays with its owner. */
    void (*close)(zinx__stream_t *s);
} zinx__stream_ops_t;

struct zinx__stream {
    const zinx__stream_ops_t *ops;
    zinx__stream_t *lower; /* the stream this one is layered on, or NULL */
    char remote[ZINX__ADDR_TEXT_MAX];
    char local[ZINX__ADDR_TEXT_MAX];
};

/* ---- socket streams (sock.c) -------------------------------------------- */

/* A stream over a connected, non-blocking stream socket (TCP or Unix),
   embedded in its owner. */
typedef struct zinx__sock_stream {
    zinx__stream_t base;
    zinx__io_t io;
    zinx__loop_t *loop;
    zinx__stream_ready_fn on_ready;
    void *owner;
    int fd; /* -1 once closed */
    bool tcp;
} zinx__sock_stream_t;

/* Takes fd (closing it on close); sets TCP_NODELAY on TCP sockets and
   reads both addresses. */
void zinx__sock_stream_init(zinx__sock_stream_t *ss, int fd);

/* What both socket streams share: fills s's address texts and sets
   TCP_NODELAY on a TCP socket; returns whether it is one. */
bool zinx__sock_prepare(int fd, zinx__stream_t *s);
/* The kernel's send queue (SIOCOUTQ): bytes not yet acknowledged. */
size_t zinx__sock_outq(int fd);
/* Milliseconds since the peer last acknowledged data; -1 when unknown
   (or not TCP). */
long zinx__sock_since_ack_ms(int fd, bool tcp);

/* ---- io_uring socket streams (uring_sock.c) ----------------------------- */

typedef struct zinx__uring_handle zinx__uring_handle_t;

/*
 * A stream over a connected stream socket on an io_uring loop: a
 * multishot receive into the loop's provided buffers, sends from a
 * buffer of its own. What the kernel may still write to or read from
 * lives in a heap handle that outlives the stream until its last
 * completion (see uring_sock.c); the part embedded in the owner is only
 * what the owner may touch.
 */
typedef struct zinx__uring_stream {
    zinx__stream_t base;
    zinx__uring_handle_t *h; /* from start until close */
    zinx__stream_ready_fn on_ready;
    void *owner;
    int fd; /* until start (then the handle's); -1 once closed */
    bool tcp;
} zinx__uring_stream_t;

/* As zinx__sock_stream_init. */
void zinx__uring_stream_init(zinx__uring_stream_t *us, int fd);

/* ---- the transport of a connection -------------------------------------- */

/* The stream at the bottom of a connection: what its loop runs on
   decides which. */
typedef union zinx__transport {
    zinx__sock_stream_t sock;
    zinx__uring_stream_t uring;
} zinx__transport_t;

/* Any thread: sets up t over fd (taken) for a connection of loop and
   returns its stream. */
zinx__stream_t *zinx__transport_init(zinx__transport_t *t, zinx__loop_t *loop,
                                     int fd);

/* ---- addresses (addr.c) ------------------------------------------------- */

/* Host values of this form name a Unix domain socket path. */
#define ZINX__UNIX_PREFIX "unix:"

/* Whether host names a Unix socket ("unix:PATH"). */
bool zinx__addr_is_unix(const char *host);
/*
 * Fills a sockaddr_un for "unix:PATH". Returns 0, or ZINX_EINVAL for an
 * empty path or one that does not fit sun_path.
 */
int zinx__addr_unix(const char *host, struct sockaddr_storage *ss,
                    socklen_t *len);
/* The text of an address: "1.2.3.4:80", "[::1]:80" or a socket path
   ("?" when unknown). out holds ZINX__ADDR_TEXT_MAX bytes. */
void zinx__addr_format(const struct sockaddr_storage *ss, socklen_t len,
                       char *out);

/* ---- calls through the table -------------------------------------------- */

static inline ssize_t zinx__stream_read(zinx__stream_t *s, void *buf,
                                        size_t len)
{
    return s->ops->read(s, buf, len);
}

static inline ssize_t zinx__stream_writev(zinx__stream_t *s,
                                          const struct iovec *iov, int n)
{
    return s->ops->writev(s, iov, n);
}

static inline int zinx__stream_want(zinx__stream_t *s, uint32_t events)
{
    return s->ops->want(s, events);
}

#endif /* ZINX_STREAM_H */
