/*
 * A server's transports (transports.c): the listeners Mode asks for and
 * the layers each stacks on its connections, PROXY header, then TLS,
 * then WebSocket. Never installed.
 */
#ifndef ZINX_SERVER_TRANSPORTS_H
#define ZINX_SERVER_TRANSPORTS_H

#include "stream/stream.h"

/* TCPPort's listener and WsPort's. */
enum { ZINX__LISTEN_TCP, ZINX__LISTEN_WS, ZINX__LISTENERS };

struct zinx__proxy_conf;
struct zinx__tls_server;
struct zinx__ws_conf;

typedef struct zinx__transports {
    zinx__stack_spec_t tcp; /* on TCPPort's connections (and adopted fds) */
    zinx__stack_spec_t ws;  /* on WsPort's */
    /* The layers' settings, made at start, freed with the server. */
    struct zinx__proxy_conf *proxy;
    struct zinx__tls_server *tls;
    struct zinx__ws_conf *ws_conf;
} zinx__transports_t;

/* Before start: makes the layers' settings from the configuration (and
   what the program set in code) and the stacks. Returns 0, or
   ZINX_ECONFIG / ZINX_ENOMEM with the reason logged (a certificate that
   does not load, say). Thread: the one starting the server. */
int zinx__transports_setup(zinx_server_t *server);
/* Before start, after setup: opens the listeners of Mode. Returns 0 or
   the error of binding, logged. */
int zinx__transports_listen(zinx_server_t *server);
/* After the loops are made, before they start: Mode "kcp"'s UDP
   endpoint on every loop, sharing KcpPort. Returns 0 or the error of
   binding, logged. */
int zinx__transports_kcp_open(zinx_server_t *server);
/* Any thread: KcpPort takes no new conversation (the stop's drain). */
void zinx__transports_kcp_stop(zinx_server_t *server);
/* After the loops are joined (or never ran): closes and frees the KCP
   endpoints. Idempotent. */
void zinx__transports_kcp_free(zinx_server_t *server);
/* After the loops are gone (or never ran): frees the layers' settings.
   Idempotent. */
void zinx__transports_free(zinx_server_t *server);

#endif /* ZINX_SERVER_TRANSPORTS_H */
