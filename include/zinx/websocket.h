/*
 * WebSocket (RFC 6455): the server's codec frames carried in binary
 * WebSocket messages, as Zinx's WebSocket mode does.
 *
 * With Mode "websocket" the server listens on WsPort only; with Mode ""
 * on TCPPort and WsPort at once, and both kinds of connection share the
 * routers, hooks, connection manager and heartbeat. A WebSocket client
 * upgrades with GET on WsPath; from then on the payloads of its binary
 * messages are one byte stream to the codec: a message may hold several
 * frames and a frame may span messages. What the server writes leaves in
 * binary messages. Text messages are refused (close status 1003), since
 * the codec's frames are bytes. A message above WsMaxMessageSize closes
 * with 1009, a protocol error with 1002. Pings are answered with pongs and
 * count as the peer's activity for IdleTimeoutMs and the heartbeat.
 *
 * Static pages (zinx_server_add_http_page) are served on the same port,
 * beside the upgrade path, as a Go Zinx program serves them with
 * net/http next to its WebSocket handler.
 *
 * The client side: set ws_path in zinx_dial_opts_t or zinx_sync_opts_t
 * (include/zinx/client.h) to dial ws://host:port/path.
 */
#ifndef ZINX_WEBSOCKET_H
#define ZINX_WEBSOCKET_H

#include "zinx/conn.h"
#include "zinx/server.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* An upgrade request being checked; valid only during the check. */
typedef struct zinx_ws_request zinx_ws_request_t;

/*
 * Decides whether an upgrade request may become a connection, after the
 * library checked that it is a valid WebSocket upgrade for WsPath. path
 * is the request's path (without the query), origin its Origin header
 * or NULL (non-browser clients send none). Returns 0 to accept, 401
 * (the client is not authenticated: answered "401 Unauthorized") or any
 * other value to refuse ("403 Forbidden"). Runs on the connection's I/O
 * thread during its handshake (before OnConnStart): keep it short and do
 * not block.
 */
typedef int (*zinx_ws_check_fn)(const char *path, const char *origin,
                                const zinx_ws_request_t *req, void *udata);

/* A header of the request by name (case-insensitive), NUL-terminated,
   or NULL when absent. Valid during the check only. */
const char *zinx_ws_request_header(const zinx_ws_request_t *req,
                                   const char *name);

/* The query of the request's target (after '?', without it), or "". */
const char *zinx_ws_request_query(const zinx_ws_request_t *req);

/*
 * Sets the check of WebSocket upgrades (NULL: accept every valid one).
 * udata is passed to fn and stays the caller's. Before
 * zinx_server_start(); returns 0, ZINX_EINVAL or ZINX_ESTATE. Thread:
 * the one configuring the server.
 */
int zinx_server_set_ws_check(zinx_server_t *server, zinx_ws_check_fn fn,
                             void *udata);

/* The path the connection upgraded on, or NULL for a connection that is
   not WebSocket (or whose upgrade is not over). The string lives as
   long as the connection. Thread: any holding a reference. */
const char *zinx_conn_ws_path(const zinx_conn_t *conn);

/* The largest body zinx_server_add_http_page() takes: 4 MiB. */
#define ZINX_HTTP_PAGE_MAX (4u << 20)

/*
 * Serves a static page at path on the WebSocket port (WsPort, and its
 * TLS listener as https), beside the upgrade on WsPath: a GET or HEAD of
 * path (any query ignored) without an Upgrade header is answered
 * "200 OK" with Content-Type content_type, Content-Length,
 * Cache-Control: no-cache and Connection: close, then body (not for
 * HEAD); the connection then ends once the peer has it. Such a request
 * never becomes a connection of the server: no OnConnStart/OnConnStop,
 * no WebSocket check, and it is not counted as a refused upgrade. Every
 * other request is answered as before (404, 426, the upgrade).
 *
 * path, content_type and body are copied once (the caller's stay its
 * own); all connections then share that copy read-only. A body larger
 * than the socket's buffer is written as the peer reads it, within
 * HandshakeTimeoutMs (which also bounds the wait for the peer to close
 * after it). Without a WebSocket listener (Mode "tcp") pages are kept
 * but never served.
 *
 * Returns 0; ZINX_EINVAL (server, path or content_type NULL; path not
 * starting with '/', holding a blank, '?', a control byte, longer than
 * ZINX_CONFIG_PATH_MAX - 1, or equal to WsPath; content_type empty or
 * holding a control byte such as CR or LF; body NULL with len > 0; len
 * above ZINX_HTTP_PAGE_MAX); ZINX_EEXIST (path already has a page: a
 * page is never replaced); ZINX_ENOMEM; ZINX_ESTATE after
 * zinx_server_start(). Thread: the one configuring the server.
 */
int zinx_server_add_http_page(zinx_server_t *server, const char *path,
                              const char *content_type, const void *body,
                              size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_WEBSOCKET_H */
