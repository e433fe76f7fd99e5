/*
 * A raw loopback socket client for the server tests.
 *
 * The clients here are plain sockets on purpose: they must be able to
 * misbehave in ways the library's own client never would (trickle, stop
 * reading, reset, half-close).
 *
 * Every call that can wait takes a timeout in milliseconds and gives up
 * with -ETIMEDOUT, so a broken server makes a test fail, never hang.
 * Frames are encoded by hand (test_frame.h), not with the library's
 * packer, so the tests check the wire format independently of the code
 * under test.
 * All functions return 0 (or a count) on success and a negative errno
 * value on failure; nothing here calls the test framework, so the helpers
 * may be used from any thread.
 */
#ifndef TEST_CLIENT_H
#define TEST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zinx.h"

/* Returned by the receive calls for a clean EOF before the first byte. */
#define TC_EOF 1

/* The message ID tc_echo_call() uses; tf_echo_server_new() routes it. */
#define TC_ECHO_ID 1u

/* HeartbeatMsgID's default: tc_echo_call() skips such frames. */
#define TC_HEARTBEAT_ID 99999u

/*
 * Connects to 127.0.0.1:port with TCP_NODELAY set. Returns the socket
 * (blocking) or a negative errno.
 */
int tc_connect(int port);

/* Options for tc_connect_opts(). */
typedef struct tc_opts {
    int rcvbuf;    /* >0: SO_RCVBUF before connecting (best effort) */
    bool nonblock; /* nonblocking connect: may return before established */
} tc_opts_t;

/* tc_connect() with options; o may be NULL. */
int tc_connect_opts(int port, const tc_opts_t *o);

/* Switches O_NONBLOCK on or off. Returns 0 or a negative errno. */
int tc_set_nonblock(int fd, int on);

/* The local port of a connected socket, or a negative errno. */
int tc_local_port(int fd);

/*
 * Sends all of buf, waiting for room at most timeout_ms overall. Works on
 * blocking and non-blocking sockets; never raises SIGPIPE.
 */
int tc_send_raw(int fd, const void *buf, size_t len, int timeout_ms);

/* Sends one frame. */
int tc_send_frame(int fd, zinx_packet_format_t fmt, uint32_t id,
                  const void *data, uint32_t len, int timeout_ms);

/* Sends only a header that declares len payload bytes. */
int tc_send_header(int fd, zinx_packet_format_t fmt, uint32_t id, uint32_t len,
                   int timeout_ms);

/*
 * Receives what is there, waiting up to timeout_ms for something.
 * Returns the byte count, 0 at EOF, -ETIMEDOUT or a negative errno.
 */
ssize_t tc_recv_some(int fd, void *buf, size_t cap, int timeout_ms);

/*
 * Reads exactly len bytes. Returns 0, TC_EOF when the stream ended before
 * the first byte, -EPROTO when it ended in the middle, -ETIMEDOUT, or a
 * negative errno (-ECONNRESET, ...).
 */
int tc_recv_raw(int fd, void *buf, size_t len, int timeout_ms);

/*
 * Reads one frame: *id, *len and the payload into buf[0..cap). Returns
 * as tc_recv_raw(), or -EMSGSIZE when the payload does not fit in cap
 * (the stream is then out of step).
 */
int tc_recv_frame(int fd, zinx_packet_format_t fmt, uint32_t *id, void *buf,
                  size_t cap, uint32_t *len, int timeout_ms);

/*
 * Waits for the end of the stream. Returns 0 on EOF or reset, -EPROTO
 * when data arrived instead, or -ETIMEDOUT.
 */
int tc_expect_eof(int fd, int timeout_ms);

/*
 * Reads and discards until the end of the stream; *discarded (if not
 * NULL) gets the byte count. Returns 0 at EOF, -ECONNRESET (or another
 * negative errno) on a reset, -ETIMEDOUT.
 */
int tc_wait_closed(int fd, int timeout_ms, size_t *discarded);

/*
 * Whether the peer has closed (EOF or reset) right now, without waiting
 * and without consuming data still queued for us.
 */
bool tc_peer_closed_now(int fd);

/*
 * Sends one frame and reads one reply frame. Returns as tc_recv_frame().
 */
int tc_roundtrip(int fd, zinx_packet_format_t fmt, uint32_t id,
                 const void *data, uint32_t len, uint32_t *rid, void *buf,
                 size_t cap, uint32_t *rlen, int timeout_ms);

/*
 * Sends data on TC_ECHO_ID and checks that the reply (heartbeats on
 * TC_HEARTBEAT_ID skipped) echoes it. Returns 0, -EPIPE when the stream
 * ended, -EBADMSG for another reply, -EINVAL when len > 4096, or as
 * tc_recv_frame().
 */
int tc_echo_call(int fd, zinx_packet_format_t fmt, const void *data,
                 uint32_t len, int timeout_ms);

/*
 * Sends out[0..out_len) while receiving exactly in_len bytes into in,
 * both at once so neither side's buffers can deadlock the exchange.
 * When max_chunk is nonzero, writes are cut into pieces of 1..max_chunk
 * bytes chosen by a pseudo-random sequence seeded with *seed. Returns 0,
 * TC_EOF or -EPROTO when the peer closed early, -ETIMEDOUT, or a
 * negative errno.
 */
int tc_exchange(int fd, const void *out, size_t out_len, void *in,
                size_t in_len, size_t max_chunk, uint32_t *seed,
                int timeout_ms);

/* shutdown(SHUT_WR): the peer sees EOF, we can still read. */
int tc_shutdown_wr(int fd);

/* Plain close. Negative fds are ignored. */
void tc_close(int fd);

/* Close with SO_LINGER {1, 0}, so the peer sees a reset. */
void tc_close_rst(int fd);

/* A small deterministic pseudo-random generator (xorshift32). */
uint32_t tc_rand(uint32_t *state);

#endif /* TEST_CLIENT_H */
