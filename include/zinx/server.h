/*
 * The server: listener, I/O threads, worker pool, routers and hooks.
 *
 * Typical use:
 *
 *     zinx_config_t cfg;
 *     zinx_config_default(&cfg);
 *     zinx_server_t *s = zinx_server_new(&cfg);
 *     zinx_server_add_router(s, 1, &ping_router);
 *     zinx_server_on_conn_start(s, hello, NULL);
 *     int rc = zinx_server_serve(s);   // until SIGINT/SIGTERM or stop
 *     zinx_server_free(s);
 *
 * Set-up calls (routers, hooks, log sink) are allowed only before the
 * server starts and from one thread; after start they return ZINX_ESTATE.
 * The routing table is then read without locks by every thread.
 *
 * Threads. "framework thread" below means an I/O thread or a worker of
 * this server; handlers and hooks run on those.
 */
#ifndef ZINX_SERVER_H
#define ZINX_SERVER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "zinx/config.h"
#include "zinx/conn.h"
#include "zinx/connmgr.h"
#include "zinx/log.h"
#include "zinx/router.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

typedef struct zinx_server zinx_server_t;

/*
 * XX(name, description): one row per counter, the one place a counter is
 * declared. The table generates the counter fields of
 * zinx_server_stats_t below, in this order, and the library's own
 * atomic counters and their copy. A program may use it too, to print or
 * export every counter without naming each:
 *
 *     #define SHOW(name, text) printf("%-18s %llu  (%s)\n", #name, \
 *                                     (unsigned long long)st.name, text);
 *     ZINX_STATS_MAP(SHOW)
 *
 * A new row goes at the end. It still changes the size of
 * zinx_server_stats_t and moves `connections`, which programs built
 * against the older header do not expect: unlike zinx_config_t, this
 * struct has no size field yet, so adding a counter breaks the ABI.
 */
#define ZINX_STATS_MAP(XX)                                                \
    XX(accepted, "connections accepted and served")                       \
    XX(rejected_max_conn, "accepted then closed: MaxConn reached")        \
    XX(accept_errors, "accept() failures (EMFILE, ...)")                  \
    XX(closed, "connections whose OnConnStop ran")                        \
    XX(msgs_in, "frames decoded")                                         \
    XX(msgs_out, "frames queued for sending")                             \
    XX(unrouted, "frames with no router (default fallback)")              \
    XX(oversize, "connections closed for a too long frame")               \
    XX(timeouts, "closed: frame, idle or handshake deadline")             \
    XX(dead_peers, "found not alive by the heartbeat")                    \
    XX(slow_readers, "closed: output soft or hard limit")                 \
    XX(unknown_closed, "closed: more than MaxUnknownMsgs")                \
    XX(out_of_memory, "closed or refused: an allocation failed")          \
    XX(rejected_no_worker, "accepted then closed: Bind, no free worker")  \
    XX(bad_frames, "frames a codec refused: dropped, or closed")          \
    XX(proxy_refused, "closed: PROXY header missing, bad or not allowed") \
    XX(tls_failed, "closed: TLS handshake failed")                        \
    XX(ws_refused, "closed: WebSocket upgrade refused")                   \
    XX(handshake_failed, "closed: another layer's handshake failed")      \
    XX(kcp_dropped, "KCP datagrams of no conversation, not opening one")

/*
 * Counters since the server was created, then the connections open now.
 * Each counter is read atomically, the set is not.
 */
typedef struct zinx_server_stats {
#define ZINX__STATS_FIELD(name, text) uint64_t name;
    ZINX_STATS_MAP(ZINX__STATS_FIELD)
#undef ZINX__STATS_FIELD
    uint64_t connections; /* currently in the connection manager */
} zinx_server_stats_t;

/*
 * Heartbeat hooks (Zinx's HeartBeatOption). With HeartbeatIntervalMs > 0,
 * every connection of the endpoint (accepted or dialed) sends a message
 * with ID HeartbeatMsgID each interval, and one that was silent for
 * HeartbeatMax seconds counts as dead. Silent means: no byte received
 * and none of our data acknowledged by the peer's TCP stack, so a client
 * that only receives stays alive. Incoming HeartbeatMsgID frames need no
 * router: without one they are consumed quietly.
 *
 * make_msg writes the payload into buf (at most cap bytes) and returns
 * its length, or a negative value to skip this beat; NULL sends Zinx's
 * text "heartbeat [local->remote]". on_dead replaces the default action
 * (close at once). Both run on the connection's I/O thread and must not
 * block; they may send and close.
 */
typedef long (*zinx_heartbeat_msg_fn)(zinx_conn_t *conn, uint8_t *buf,
                                      size_t cap, void *udata);
typedef void (*zinx_heartbeat_dead_fn)(zinx_conn_t *conn, void *udata);

/*
 * Creates a stopped server with a copy of *cfg (NULL means the defaults):
 * its first cfg->struct_size bytes, and defaults for the fields of a
 * newer layout (see zinx/config.h). The values are checked by
 * zinx_server_start(). Returns NULL when out of memory (errno ENOMEM) or
 * when cfg's struct_size is refused (errno EINVAL; zinx_config_validate()
 * says why). Thread: any.
 */
zinx_server_t *zinx_server_new(const zinx_config_t *cfg);

/*
 * Stops the server if it runs (as zinx_server_stop() + wait), then frees
 * it and everything it owns. NULL is a no-op. Must not be called from a
 * framework thread of this server. Connections still referenced by the
 * user stay valid (closed) until their last zinx_conn_unref().
 */
void zinx_server_free(zinx_server_t *server);

/* The server's configuration (a copy owned by the server), whole:
   struct_size is this library's sizeof(zinx_config_t). A program built
   against an older layout sees its own fields, a prefix of it. */
const zinx_config_t *zinx_server_config(const zinx_server_t *server);

/*
 * Registers router for message ID id; *router is copied. It runs as a
 * chain of its non-NULL steps after the global middleware registered so
 * far (zinx_server_use, zinx/router.h). Returns 0, ZINX_EEXIST when id
 * already has a router or route, ZINX_EINVAL, ZINX_ENOMEM, or
 * ZINX_ESTATE after start.
 */
int zinx_server_add_router(zinx_server_t *server, uint32_t id,
                           const zinx_router_t *router);

/*
 * Sets the router for IDs that have none (copied, after the global
 * middleware registered so far; NULL restores the default, which drops
 * the message, counts it in stats.unrouted and logs it at debug level).
 * Returns 0, ZINX_EINVAL, ZINX_ENOMEM or ZINX_ESTATE.
 */
int zinx_server_set_fallback_router(zinx_server_t *server,
                                    const zinx_router_t *router);

/*
 * OnConnStart: runs once per connection, before any of its handlers, on
 * the thread that will run its handlers; it may send. NULL removes it.
 * Returns 0 or ZINX_ESTATE.
 */
int zinx_server_on_conn_start(zinx_server_t *server, zinx_conn_hook_fn fn,
                              void *udata);

/*
 * OnConnStop: runs exactly once per connection, after its last handler
 * returned, on the thread that ran its handlers; properties are still
 * readable, sends fail with ZINX_ECLOSED. NULL removes it.
 * Returns 0 or ZINX_ESTATE.
 */
int zinx_server_on_conn_stop(zinx_server_t *server, zinx_conn_hook_fn fn,
                             void *udata);

/*
 * Sets the heartbeat hooks described above (either may be NULL for the
 * default). The interval, ID and HeartbeatMax come from the configuration.
 * Returns 0 or ZINX_ESTATE after start.
 */
int zinx_server_set_heartbeat_hooks(zinx_server_t *server,
                                    zinx_heartbeat_msg_fn make_msg,
                                    zinx_heartbeat_dead_fn on_dead,
                                    void *udata);

/*
 * Serves an already connected stream socket (one end of a socketpair, an
 * inherited or a passed descriptor) as a connection of this running
 * endpoint, exactly like an accepted one. Takes ownership of fd, also on
 * failure (it is closed). Returns 0, ZINX_EINVAL, ZINX_ESTATE when not
 * running, ZINX_EBUSY at MaxConn or, with WorkerMode Bind, when every
 * worker is owned, ZINX_ENOMEM, or a negated errno when DynamicBind
 * could not start a worker thread. Thread: any.
 */
int zinx_server_adopt_fd(zinx_server_t *server, int fd);

/*
 * Replaces where log records go (NULL restores the configured default:
 * stderr or LogDir/LogFile). Records below LogIsolationLevel are dropped
 * before the sink. Returns 0 or ZINX_ESTATE.
 */
int zinx_server_set_log_sink(zinx_server_t *server, zinx_log_fn sink,
                             void *udata);

/*
 * Opens LogDir/LogFile again and writes to the new file from then on,
 * closing the old one; logs "log reopened". For log rotation by rename
 * (logrotate's default): rename the file, then call this. serve() does
 * it on SIGHUP; programs that handle signals themselves and use
 * zinx_server_wait() call it from their own SIGHUP handling. Returns 0
 * (also when logging to stderr or a sink, where it does nothing),
 * ZINX_EINVAL, or a negated errno from open() (the old file is kept).
 * Thread: any.
 */
int zinx_server_reopen_log(zinx_server_t *server);

/* Logs through the server's logger (printf format). Thread: any. */
void zinx_server_log(zinx_server_t *server, zinx_log_level_t level,
                     const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/*
 * Validates the configuration, opens the log, binds and listens on
 * Host:TCPPort, and starts the I/O threads and workers; returns at once.
 *
 * Host is resolved here, once, with getaddrinfo() (which may block on the
 * resolver for a name; literals never ask DNS). The listener binds the
 * first IPv4 address returned, else the first address, as Go's
 * net.Listen does for a name with both families. Host "" means every
 * interface: "::" with IPV6_V6ONLY off (IPv4 and IPv6 on one socket),
 * or 0.0.0.0 where IPv6 is unavailable. zinx_server_listen_host() tells
 * which address was bound.
 *
 * Returns 0, ZINX_ECONFIG (the reason is logged), ZINX_ENOENT when Host
 * does not resolve (logged with the resolver's reason), ZINX_ESTATE when
 * already started, or a negated errno (ZINX_EADDRINUSE, ...).
 * Thread: any but a framework thread.
 */
int zinx_server_start(zinx_server_t *server);

/*
 * The numeric address the listener is bound to, without the port:
 * "127.0.0.1" for Host "localhost", "::" (or "0.0.0.0" without IPv6) for
 * Host "". "" before a successful zinx_server_start(), for a client, and
 * for NULL. The string belongs to the server and does not change once
 * start has returned. Thread: any.
 */
const char *zinx_server_listen_host(const zinx_server_t *server);

/*
 * Starts the server if needed, blocks until SIGINT or SIGTERM arrives or
 * zinx_server_stop() is called, then stops gracefully: stops accepting,
 * lets queued handlers finish, flushes replies (for at most
 * DrainTimeoutMs, then closes what is left), runs OnConnStop for every
 * connection and joins every thread. SIGHUP meanwhile reopens the log
 * file (zinx_server_reopen_log()) and serving goes on. SIGINT, SIGTERM,
 * SIGHUP and SIGPIPE are blocked in the calling thread while serve()
 * runs (the caller's mask is restored on return, a SIGPIPE raised
 * meanwhile is discarded) and in every framework thread; other threads
 * of the program should block the first three too. Returns 0 or start's
 * error.
 * Thread: any but a framework thread.
 */
int zinx_server_serve(zinx_server_t *server);

/*
 * Asks the server to stop and returns at once; zinx_server_serve(),
 * zinx_server_wait() or zinx_server_free() carries the stop out.
 * Idempotent. Thread: any, including handlers and hooks.
 */
int zinx_server_stop(zinx_server_t *server);

/*
 * Blocks until zinx_server_stop() is called (or a signal, under serve),
 * then performs the graceful stop described at zinx_server_serve().
 * Returns 0, ZINX_ESTATE when never started, or ZINX_EDEADLK from a
 * framework thread.
 */
int zinx_server_wait(zinx_server_t *server);

/* The bound TCP port (the real one when TCPPort was 0), or 0 before start
   or when Mode listens on WsPort only. Thread: any. */
int zinx_server_port(const zinx_server_t *server);
/* The bound WebSocket port (the real one when WsPort was 0), or 0 before
   start or when Mode does not listen on WsPort. Thread: any. */
int zinx_server_ws_port(const zinx_server_t *server);

/* The bound KCP (UDP) port (the real one when KcpPort was 0), or 0
   before start or when Mode is not "kcp". Thread: any. */
int zinx_server_kcp_port(const zinx_server_t *server);

/* The connection manager; owned by the server. Thread: any. */
zinx_connmgr_t *zinx_server_connmgr(zinx_server_t *server);

/* Copies the counters into *out. Thread: any. */
void zinx_server_stats(const zinx_server_t *server, zinx_server_stats_t *out);

/*
 * Notify and broadcast (Zinx's znotify NotifyToConnByID / NotifyAll).
 *
 * The message (msg_id, data[0..len)) is encoded once into a segment that
 * every receiving connection's output queue shares by reference: no copy
 * per connection (the io_uring backend copies what is in flight, at most
 * 64 KiB per connection, into its send buffer as it does for every
 * write). data is the caller's and may be reused when the call returns;
 * the segment is freed once the last connection has written it or
 * dropped it. On each connection the message is queued exactly as
 * zinx_conn_send_msg() would queue it, in order with that connection's
 * other messages sent from the calling thread; its bytes count towards
 * OutputHighWater, OutputSoftLimit and OutputHardLimit as copied ones do.
 *
 * A connection that is not open does not get it: one that is draining a
 * graceful close still does (as with zinx_conn_send_msg), one that was
 * closed with close_now or has finished does not. A connection whose
 * unsent output would pass OutputHardLimit does not either, and is then
 * closed at once (counted in slow_readers), as a send would do.
 *
 * zinx_server_notify() sends to the connections of ids[0..n) that exist
 * (an ID given twice gets the message twice); zinx_server_broadcast() to
 * every connection in the connection manager at the call. Both return
 * how many connections the message was queued for (0 or more), or
 * ZINX_EINVAL (server NULL, data NULL with len > 0, ids NULL with
 * n > 0), ZINX_EMSGSIZE (len > MaxPacketSize), or, when nothing was
 * queued, ZINX_ENOMEM or the codec's refusal of the message (HTLV+CRC16
 * frames: ZINX_EINVAL for an ID above 255, ZINX_EMSGSIZE for a payload
 * above 255 bytes). Thread: any, including handlers, hooks and timers; the
 * call never blocks on the network.
 */
int zinx_server_notify(zinx_server_t *server, const uint64_t *ids, size_t n,
                       uint32_t msg_id, const void *data, uint32_t len);
int zinx_server_broadcast(zinx_server_t *server, uint32_t msg_id,
                          const void *data, uint32_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_SERVER_H */
