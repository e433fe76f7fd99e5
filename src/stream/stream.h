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

/* What a layer is, so that the server counts a failed handshake in the
   right row of its statistics. */
typedef enum zinx__layer_kind {
    ZINX__LAYER_TRANSPORT = 0, /* the socket at the bottom */
    ZINX__LAYER_PROXY,         /* a PROXY protocol header */
    ZINX__LAYER_TLS,
    ZINX__LAYER_WEBSOCKET
} zinx__layer_kind_t;

typedef struct zinx__stream_ops {
    const char *name;
    zinx__layer_kind_t kind;
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
       while it goes on, ZINX__HS_SERVED, or a negative ZINX_E* code.
       NULL: none. */
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
    /* Stops events and releases the transport (closes the descriptor);
       a layer closes the stream below it too. Idempotent. */
    void (*close)(zinx__stream_t *s);
    /* Frees the memory of a layer made on the heap, after close (its
       lower stream is freed by the caller). NULL: the stream is embedded
       in its owner (the transport at the bottom). */
    void (*destroy)(zinx__stream_t *s);
    /* Sends the stream's readiness to on_ready(owner) from now on, in
       place of what start() named: how the owner of a layer that stepped
       aside hears this stream directly. No system call. NULL: the stream
       cannot. */
    void (*rebind)(zinx__stream_t *s, zinx__stream_ready_fn on_ready,
                   void *owner);
    /* Whether this layer now holds nothing and passes every call
       straight to the stream below, so that its owner may use that one
       instead (a PROXY layer once its header and the bytes read behind
       it are served). NULL: never. */
    bool (*passthrough)(const zinx__stream_t *s);
} zinx__stream_ops_t;

struct zinx__stream {
    const zinx__stream_ops_t *ops;
    zinx__stream_t *lower; /* the stream this one is layered on, or NULL */
    bool handshaken;       /* its handshake (if any) is over */
    /* Set by the connection before it closes the stack: 0, or the
       ZINX_E* code that ended it (a WebSocket layer sends its close
       status by it: 1009 for ZINX_EMSGSIZE, 1002 for ZINX_EPROTO...). */
    int close_reason;
    /* Why this layer's handshake or a read failed, for the log: a static
       string or one the layer owns until destroyed; NULL: no detail. */
    const char *why;
    /* The peer's and our address, as this layer knows them: a layer
       copies its lower stream's when made and again when the lower
       stream's handshake ends (a PROXY header names the real client). */
    char remote[ZINX__ADDR_TEXT_MAX];
    char local[ZINX__ADDR_TEXT_MAX];
};

/* A handshake's outcome that is neither an opening nor a failure: the
   layer answered the peer itself (a page on the WebSocket port) and the
   connection ends without opening. Positive, so no ZINX_E* code. */
#define ZINX__HS_SERVED 1

/* Reported only by layers, never by a descriptor: the peer showed it is
   alive without sending data (a WebSocket ping or pong), which the
   connection counts as activity for its idle and heartbeat deadlines. */
#define ZINX__EV_ACTIVITY 0x1000u

/* ---- layers (layer.c) --------------------------------------------------- */

typedef struct zinx__layer zinx__layer_t;
/* A layer's handling of its lower stream's readiness. */
typedef void (*zinx__layer_lower_fn)(zinx__layer_t *l, uint32_t events);

/*
 * The common part of a layer (PROXY header, TLS, WebSocket), embedded
 * first in the layer's own struct, which is made on the heap when the
 * connection is made and freed with it (ops->destroy). The layer owns
 * the events of the stream below it: lower readiness goes to on_lower,
 * which does the layer's own work (flushes its output, say) and tells
 * the owner what became possible with zinx__layer_notify().
 *
 * Readiness rule: a level-triggered owner reads until the stream says
 * ZINX_EAGAIN or gives fewer bytes than asked; a layer that still holds
 * bytes for it after a read (a decrypted record, a WebSocket payload)
 * must raise ZINX__EV_READ with zinx__layer_raise(), since no event of
 * the descriptor below may come for them.
 */
struct zinx__layer {
    zinx__stream_t base;            /* base.lower: the stream below */
    zinx__loop_t *loop;             /* from start */
    zinx__stream_ready_fn on_ready; /* the owner's, from start */
    void *owner;
    zinx__layer_lower_fn on_lower;
    zinx__closure_t later; /* delivers later_events to the owner */
    uint32_t later_events;
    bool later_queued;
    bool closed;
};

/* Sets up l over lower (copying its addresses); ops is the layer's
   table, on_lower its handler of lower readiness. */
void zinx__layer_init(zinx__layer_t *l, const zinx__stream_ops_t *ops,
                      zinx__stream_t *lower, zinx__layer_lower_fn on_lower);
/* A start op for layers: records the owner, starts the lower stream with
   l as its owner. */
int zinx__layer_start(zinx__stream_t *s, zinx__loop_t *loop,
                      zinx__stream_ready_fn on_ready, void *owner);
/* Tells the owner of events now (from on_lower; never from inside one
   of the owner's calls into the layer). */
void zinx__layer_notify(zinx__layer_t *l, uint32_t events);
/* Tells the owner of events later in this loop iteration: for bytes the
   layer holds after the owner's read, or readiness found inside one of
   the owner's calls. Loop thread, never from the loop's tick. */
void zinx__layer_raise(zinx__layer_t *l, uint32_t events);
/* Marks l closed (a raised event is then not delivered) and closes the
   stream below. For a layer's close op to call last. */
void zinx__layer_close_lower(zinx__layer_t *l);
/* Ops a layer may take as they are: the stream below answers. */
int zinx__layer_shutdown_lower(zinx__stream_t *s);
size_t zinx__layer_unacked_lower(zinx__stream_t *s);
long zinx__layer_since_ack_lower(zinx__stream_t *s);
int zinx__layer_error_lower(zinx__stream_t *s);

/* ---- stacks ------------------------------------------------------------- */

/* Makes a layer over lower for a new connection, from conf (the maker's
   own, kept by the server while it runs): 0 with *out set, or
   ZINX_ENOMEM. Any thread (connections are made where they are
   accepted). */
typedef int (*zinx__layer_make_fn)(const void *conf, zinx__stream_t *lower,
                                   zinx__stream_t **out);

#define ZINX__STACK_MAX 4

/* The layers a listener puts on each connection it accepts, bottom
   first: PROXY header, then TLS, then WebSocket. */
typedef struct zinx__stack_spec {
    int n;
    struct {
        zinx__layer_make_fn make;
        const void *conf;
    } layers[ZINX__STACK_MAX];
} zinx__stack_spec_t;

/* Adds a layer on top of spec's; false when it is full. */
bool zinx__stack_push(zinx__stack_spec_t *spec, zinx__layer_make_fn make,
                      const void *conf);
/* Makes spec's layers over bottom and returns the top (bottom when spec
   is NULL or empty). On failure frees what it made (bottom stays) and
   returns NULL with *err set. */
zinx__stream_t *zinx__stack_build(const zinx__stack_spec_t *spec,
                                  zinx__stream_t *bottom, int *err);

/*
 * Drives the handshakes of the stack under and including s, bottom
 * first: 0 once every one is over, ZINX_EAGAIN while one waits for the
 * peer (the layer has asked its lower stream for the readiness it
 * needs), ZINX__HS_SERVED when a layer answered the peer itself, or the
 * negative ZINX_E* code that failed it. Loop thread.
 */
int zinx__stream_handshake(zinx__stream_t *s);
/* Whether any stream of the stack under and including s has a handshake
   to run. */
bool zinx__stream_has_handshake(const zinx__stream_t *s);
/* The stream of the stack under and including s whose table is ops, or
   NULL: how the API reaches a layer (TLS details, the WebSocket path). */
zinx__stream_t *zinx__stream_find(zinx__stream_t *s,
                                  const zinx__stream_ops_t *ops);
/*
 * The stream the owner of top may read, write and want from instead of
 * top: below every layer at the top of the stack that has become a
 * passthrough, as long as the stream under it can be rebound; its
 * readiness then goes to on_ready(owner) directly, and top stays the
 * stack to close, destroy and ask for addresses. top itself when no
 * layer steps aside. So a layer with nothing left to do costs no call
 * per message. Loop thread, once every handshake is over.
 */
zinx__stream_t *zinx__stream_skip(zinx__stream_t *top,
                                  zinx__stream_ready_fn on_ready, void *owner);
/* The bottom of the stack: the socket. */
zinx__stream_t *zinx__stream_bottom(zinx__stream_t *s);
/* Closes the stack from the top (idempotent) and frees its layers; the
   transport at the bottom stays with its owner. */
void zinx__stream_destroy(zinx__stream_t *s);

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

/* ---- KCP streams (kcp/session.c) ---------------------------------------- */

struct zinx__kcp_session;

/* A stream over a KCP conversation (kcp/kcp.h), embedded in its
   connection: no descriptor of its own. */
typedef struct zinx__kcp_stream {
    zinx__stream_t base;
    struct zinx__kcp_session *sess; /* NULL once closed */
    zinx__stream_ready_fn on_ready;
    void *owner;
    uint32_t want; /* ZINX__EV_READ | ZINX__EV_WRITE */
} zinx__kcp_stream_t;

/* ---- the transport of a connection -------------------------------------- */

/* The stream at the bottom of a connection: what its loop runs on
   decides which, or KCP. */
typedef union zinx__transport {
    zinx__sock_stream_t sock;
    zinx__uring_stream_t uring;
    zinx__kcp_stream_t kcp;
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
