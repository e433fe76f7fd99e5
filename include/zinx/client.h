/*
 * The client side: outgoing connections.
 *
 * A client connection is a connection. It belongs to an endpoint (a
 * zinx_server_t), runs on that endpoint's I/O threads and workers, goes
 * through the same routers and OnConnStart/OnConnStop hooks, and has the
 * same send, close and property API as an accepted one. An endpoint made
 * with zinx_client_new() does not listen; one made with zinx_server_new()
 * listens and may also dial out (a gateway talking to upstream servers),
 * so one program can run clients and servers together, many connections
 * sharing each loop.
 *
 *     zinx_server_t *cli = zinx_client_new(&cfg);    // PacketFormat etc.
 *     zinx_server_add_router(cli, 2, &on_pong);
 *     zinx_server_start(cli);
 *     zinx_dialer_t *d;
 *     zinx_dial_opts_t o = {.reconnect = 1};
 *     zinx_server_dial(cli, "127.0.0.1", 8999, &o, &d);
 *     zinx_conn_t *c;
 *     if (zinx_dialer_wait(d, 3000, &c) == 0) {
 *         zinx_conn_send_msg(c, 1, "ping", 4);
 *         zinx_conn_unref(c);
 *     }
 *     ...
 *     zinx_dialer_close(d);
 *     zinx_server_free(cli);
 *
 * A dialer keeps one connection to one address up: it connects (with a
 * timeout), and with `reconnect` set it reconnects after a failed attempt
 * or a lost connection, with capped exponential back-off and jitter. Each
 * new connection has a new ID and its own OnConnStart/OnConnStop.
 */
#ifndef ZINX_CLIENT_H
#define ZINX_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "zinx/config.h"
#include "zinx/conn.h"
#include "zinx/pack.h"
#include "zinx/server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

typedef struct zinx_dialer zinx_dialer_t;
/* Client TLS settings: include/zinx/tls.h. */
typedef struct zinx_tls_client zinx_tls_client_t;

typedef enum zinx_dial_event {
    ZINX_DIAL_CONNECTED,    /* an attempt succeeded; status 0 */
    ZINX_DIAL_FAILED,       /* an attempt failed; status says why */
    ZINX_DIAL_DISCONNECTED, /* the connection ended; status 0 */
    ZINX_DIAL_GAVE_UP       /* no more attempts will be made */
} zinx_dial_event_t;

/*
 * Reports each connection attempt and its outcome. attempt counts the
 * attempts since the last successful connection (from 1); next_delay_ms
 * is the back-off before the next attempt (0 when none is planned).
 * Runs on the dialer's I/O thread: keep it short, do not block. It is
 * never called after zinx_dialer_close() has returned.
 */
typedef void (*zinx_dial_fn)(zinx_dialer_t *dialer, zinx_dial_event_t event,
                             int status, uint32_t attempt,
                             uint32_t next_delay_ms, void *udata);

typedef struct zinx_dial_opts {
    uint32_t connect_timeout_ms; /* per attempt; 0 means 5000 */
    int reconnect;               /* nonzero: retry failures and losses */
    uint32_t backoff_initial_ms; /* first delay; 0 means 100 */
    uint32_t backoff_max_ms;     /* cap; 0 means 30000 */
    uint32_t max_attempts;       /* per outage; 0 means no limit */
    zinx_dial_fn on_event;       /* may be NULL */
    void *udata;
    /* Non-NULL: TLS with these settings (the dialer takes a reference;
       they become read-only). The connection counts as connected, and
       ZINX_DIAL_CONNECTED is reported, only once the handshake is over;
       a failed handshake is a failed attempt whose status is
       ZINX_EACCES (the server's certificate was refused: untrusted,
       expired, another name) or ZINX_EPROTO (any other TLS failure).
       The endpoint's HandshakeTimeoutMs bounds the handshake. */
    zinx_tls_client_t *tls;
    /* Non-NULL: WebSocket (RFC 6455) to ws://host:port/ws_path (a path
       starting with '/', copied), the codec's frames in binary messages
       as a Zinx WebSocket server takes them (include/zinx/websocket.h).
       The connection is reported connected once TCP is; sends made
       before the upgrade is over wait for it, and a refused upgrade ends
       the connection. NULL: plain TCP. */
    const char *ws_path;
    /* Nonzero: KCP over UDP (a Zinx server's Mode "kcp", or any kcp-go
       peer with no encryption and no FEC) with the endpoint's Kcp*
       settings and a random conversation ID; with neither tls nor
       ws_path. There is no handshake: the connection is reported
       connected at once, and a peer that never answers ends it after
       KcpIdleTimeoutMs (or once a segment went unacknowledged 20
       times). */
    int kcp;
} zinx_dial_opts_t;

/*
 * Creates an endpoint that does not listen: a client. Every zinx_server_*
 * call applies to it (routers, hooks, start, stop, free); Host and
 * TCPPort are ignored. cfg is read as zinx_server_new() reads it.
 * Returns NULL when out of memory or when cfg's struct_size is refused
 * (errno ENOMEM or EINVAL).
 */
zinx_server_t *zinx_client_new(const zinx_config_t *cfg);

/*
 * Starts connecting to host:port (an IPv4 or IPv6 literal or a name,
 * resolved here with getaddrinfo, on the calling thread) and returns a
 * dialer handle in *out at once; the connection comes up asynchronously.
 * opts may be NULL (defaults, no reconnect); it is copied. The endpoint
 * must be running. Returns 0, ZINX_EINVAL, ZINX_ESTATE, ZINX_ENOMEM, or
 * ZINX_ENOENT when the name does not resolve. Thread: any.
 */
int zinx_server_dial(zinx_server_t *endpoint, const char *host, int port,
                     const zinx_dial_opts_t *opts, zinx_dialer_t **out);

/*
 * Returns a new reference to the dialer's current connection, or NULL
 * while it is not connected. Thread: any.
 */
zinx_conn_t *zinx_dialer_conn(zinx_dialer_t *dialer);

/*
 * Waits up to timeout_ms for the dialer to be connected and stores a new
 * reference to the connection in *out (may be NULL). Returns 0,
 * ZINX_ETIMEDOUT, or, once the dialer gave up, the last attempt's error
 * (for example -ECONNREFUSED). A dialer without reconnect whose
 * connection came up and already ended (the peer closed at once) still
 * returns 0 and that connection, closed: it did connect, and its hooks
 * ran. Thread: any but the endpoint's own.
 */
int zinx_dialer_wait(zinx_dialer_t *dialer, uint32_t timeout_ms,
                     zinx_conn_t **out);

/*
 * Stops reconnecting, closes the current connection gracefully, and
 * releases the handle (do not use it afterwards). Once it returns, the
 * dialer's on_event is not running and will not run again, so its udata
 * may be freed. Waiters in zinx_dialer_wait() return ZINX_ECLOSED.
 * Thread: any, including on_event itself.
 */
void zinx_dialer_close(zinx_dialer_t *dialer);

/* ---- blocking helper for scripts and tests ------------------------------- */

typedef struct zinx_sync_client zinx_sync_client_t;

/* Options of zinx_sync_client_open(); zero fields take the defaults. */
typedef struct zinx_sync_opts {
    zinx_packet_format_t format; /* frame layout; 0 is ZINX_FORMAT_TLV */
    uint32_t max_packet_size;    /* largest payload; 0 means 4096 */
    uint32_t connect_timeout_ms; /* 0 means 5000 */
    /* Nonzero: send a heartbeat (ID heartbeat_msg_id) every interval, as
       Zinx's client does, so a server with its heartbeat on keeps us; and
       close the connection when the server has neither sent anything nor
       acknowledged our data for heartbeat_max_s. 0: no heartbeat. */
    uint32_t heartbeat_interval_ms;
    uint32_t heartbeat_max_s;  /* 0 means 10 */
    uint32_t heartbeat_msg_id; /* 0 means 99999 (Zinx's) */
    /* Received messages waiting for recv, in bytes; above it the client
       stops reading (the server feels TCP back-pressure) until recv takes
       half of them. 0 means 4 MiB. */
    size_t max_queued_bytes;
    /* Non-NULL: TLS, as zinx_dial_opts_t.tls (a reference is taken). */
    zinx_tls_client_t *tls;
    /* Non-NULL: WebSocket to ws://host:port/ws_path, as in
       zinx_dial_opts_t; the open waits for the upgrade to finish. */
    const char *ws_path;
} zinx_sync_opts_t;

/*
 * Connects with a private endpoint (one I/O thread, handlers inline) and
 * waits up to opts->connect_timeout_ms. Messages with the heartbeat ID
 * are taken as heartbeats and never reach zinx_sync_client_recv(), with
 * or without our own heartbeat. opts may be NULL (all defaults). Returns
 * 0 and *out, ZINX_ETIMEDOUT, the connect error, or ZINX_ENOMEM.
 * Thread: any.
 */
int zinx_sync_client_open(const char *host, int port,
                          const zinx_sync_opts_t *opts,
                          zinx_sync_client_t **out);

/*
 * zinx_sync_client_open() with format, max_packet_size and timeout_ms as
 * the connect timeout, everything else at its default.
 */
int zinx_sync_client_connect(const char *host, int port,
                             zinx_packet_format_t format,
                             uint32_t max_packet_size, uint32_t timeout_ms,
                             zinx_sync_client_t **out);

/*
 * Sends one message (copied), waiting as Zinx's SendMsg does while the
 * unsent output has no room for it (it stays below OutputHighWater, so a
 * fast sender is slowed down, never cut by the output limits). Returns
 * as zinx_conn_send_msg(); ZINX_ECLOSED when the connection ends while
 * waiting.
 */
int zinx_sync_client_send(zinx_sync_client_t *client, uint32_t id,
                          const void *data, uint32_t len);

/* zinx_sync_client_send(), waiting at most timeout_ms for room; then
   ZINX_ETIMEDOUT and nothing is sent. */
int zinx_sync_client_send_timeout(zinx_sync_client_t *client, uint32_t id,
                                  const void *data, uint32_t len,
                                  uint32_t timeout_ms);

/* Bytes of received messages waiting for recv (bounded by
   max_queued_bytes plus one message). Thread: any. */
size_t zinx_sync_client_queued_bytes(zinx_sync_client_t *client);

/*
 * Waits up to timeout_ms for the next received message, or, when want_id
 * is 0 or more, for the next one with that ID (others stay queued for
 * later calls). On success *msg holds a copy whose data the caller frees
 * with zinx_sync_msg_free(). Returns 0, ZINX_ETIMEDOUT, or, once the
 * connection ended and nothing matching is queued, why it ended: the
 * code zinx_conn_close_reason() gives (ZINX_EMSGSIZE when the server sent
 * a frame above max_packet_size, ZINX_ECONNRESET, ZINX_ETIMEDOUT for a
 * silent server, ...), or ZINX_ECLOSED after an orderly end.
 */
int zinx_sync_client_recv(zinx_sync_client_t *client, int64_t want_id,
                          uint32_t timeout_ms, zinx_msg_t *msg);

/* send + recv(want_id). */
int zinx_sync_client_call(zinx_sync_client_t *client, uint32_t id,
                          const void *data, uint32_t len, int64_t want_id,
                          uint32_t timeout_ms, zinx_msg_t *reply);

/* Frees the data of a message returned by zinx_sync_client_recv(). */
void zinx_sync_msg_free(zinx_msg_t *msg);

/* Closes the connection, stops the private endpoint and frees. NULL ok. */
void zinx_sync_client_free(zinx_sync_client_t *client);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_CLIENT_H */
