/*
 * KCP conversations as connections: the UDP endpoints and the stream a
 * connection reads and writes through (endpoint.c, session.c).
 *
 * A server with Mode "kcp" binds one UDP socket per I/O loop on KcpPort
 * (SO_REUSEPORT: the kernel keeps a peer's datagrams on one socket, so
 * one loop). Its endpoint demultiplexes datagrams by peer address and
 * conversation ID to sessions; a datagram of no session opens one only
 * when it is a well-formed first segment (arq.h, zinx__kcp_seg_opens)
 * and the server is below MaxConn, and every session is a connection of
 * that loop, with the stream below as its bottom. A client's dialer
 * makes an endpoint of its own over a connected UDP socket, holding the
 * one session it dials.
 *
 * A session is driven by its loop: the datagrams that arrive, a timer at
 * the time the ARQ asks for (zinx__kcp_check), and the connection's
 * writes, flushed once per loop iteration. Everything here runs on the
 * endpoint's loop thread, except where said.
 */
#ifndef ZINX_KCP_KCP_H
#define ZINX_KCP_KCP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conn/conn.h"
#include "kcp/arq.h"
#include "stream/stream.h"

typedef struct zinx__kcp_endpoint zinx__kcp_endpoint_t;
typedef struct zinx__kcp_session zinx__kcp_session_t;

/* The KCP settings of a server or client, from its configuration. */
typedef struct zinx__kcp_settings {
    zinx__kcp_conf_t arq;
    bool ack_nodelay; /* KcpACKNoDelay: ACKs leave after each read
                         batch, not with the next flush */
    uint32_t idle_ms; /* KcpIdleTimeoutMs: silence that ends a
                         session; 0: never */
} zinx__kcp_settings_t;

/* Fills *out from cfg's Kcp* keys. */
void zinx__kcp_settings_from(const zinx_config_t *cfg,
                             zinx__kcp_settings_t *out);

/* ---- endpoints (endpoint.c) --------------------------------------------- */

/*
 * Server: binds a UDP socket to host:port with SO_REUSEPORT (port 0:
 * a free one, which *bound then holds, for the next endpoints to share),
 * for the connections of shard. Returns 0 with *out, or a negative
 * ZINX_E* code. Thread: the one starting the server.
 */
int zinx__kcp_endpoint_listen(zinx_server_t *server, zinx__shard_t *shard,
                              const char *host, int port, int *bound,
                              zinx__kcp_endpoint_t **out);
/* Writes the numeric host the socket is bound to ("127.0.0.1", "::")
   into host (len bytes). Returns 0 or a negated errno. */
int zinx__kcp_endpoint_host(const zinx__kcp_endpoint_t *ep, char *host,
                            size_t len);
/* Registers the socket on the shard's loop (before the loop starts, or
   on it). Returns 0 or a negated errno. */
int zinx__kcp_endpoint_start(zinx__kcp_endpoint_t *ep);
/* Any thread: no new conversation is accepted from now on; sessions go
   on until their connections end (the graceful drain). */
void zinx__kcp_endpoint_stop_accepting(zinx__kcp_endpoint_t *ep);
/* After the loop is gone: closes the socket and drops the server's
   reference. */
void zinx__kcp_endpoint_free(zinx__kcp_endpoint_t *ep);

/*
 * Client: a connected UDP socket to addr and one session of a random
 * conversation ID over it, on shard's loop, which is the calling thread.
 * The session's connection is made and returned (not yet adopted) as
 * zinx__server_open_conn() does. NULL with *err set.
 */
zinx_conn_t *zinx__kcp_dial(zinx_server_t *server, zinx__shard_t *shard,
                            const struct sockaddr_storage *addr,
                            socklen_t addr_len, int *err);

/* ---- the stream over a session (session.c) ------------------------------ */

/* Frees a session no connection took (a failed creation). */
void zinx__kcp_session_discard(zinx__kcp_session_t *sess);

/* The bottom stream of a KCP connection: no descriptor; its session's
   datagrams and timers drive it. */
zinx__stream_t *zinx__kcp_stream_init(zinx__kcp_stream_t *ks,
                                      zinx__kcp_session_t *sess);

#endif /* ZINX_KCP_KCP_H */
