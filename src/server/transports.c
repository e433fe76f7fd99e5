/*
 * The listeners of Mode and the layers their connections get.
 *
 * One server may listen on TCPPort and WsPort at once (Mode ""); both
 * kinds of connections share its routers, hooks, connection manager and
 * heartbeat, and differ only in the stack of layers under the codec:
 *
 *   TCPPort: [PROXY header] [TLS]
 *   WsPort:  [PROXY header] [TLS] WebSocket
 *
 * Each layer's settings are made here once, at start, and shared
 * read-only by every connection of the server.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kcp/kcp.h"
#include "proxy/proxy.h"
#include "server/listener.h"
#include "tls/server.h"
#include "tls/tls.h"
#include "ws/ws.h"

static int fail(zinx_server_t *s, int rc, const char *what)
{
    zinx__log(s, ZINX_LOG_ERROR, "cannot start: %s: %s", what,
              zinx_strerror(rc));
    return rc;
}

/* The layers every listener puts first. */
static int push_common(zinx_server_t *s, zinx__stack_spec_t *spec)
{
    if (s->tr.proxy != NULL)
        zinx__stack_push(spec, zinx__proxy_layer_make, s->tr.proxy);
    if (s->tr.tls != NULL)
        zinx__stack_push(spec, zinx__tls_layer_make,
                         zinx__tls_server_conf(s->tr.tls));
    return 0;
}

static bool serves_ws(const zinx_config_t *cfg)
{
    return cfg->mode == ZINX_MODE_WEBSOCKET || cfg->mode == ZINX_MODE_TCP_WS;
}

int zinx__transports_setup(zinx_server_t *s)
{
    zinx__transports_free(s); /* a start that failed may be retried */
    const zinx_config_t *cfg = &s->cfg;
    int rc;
    if (cfg->proxy_protocol != ZINX_PROXY_OFF && s->listening &&
        (rc = zinx__proxy_conf_new(s, &s->tr.proxy)) != 0)
        return fail(s, rc, "ProxyProtocol");
    if (cfg->cert_file[0] != '\0' &&
        (rc = zinx__tls_server_new(s, &s->tr.tls)) != 0)
        return rc; /* logged with the file and OpenSSL's reason */
    if (serves_ws(cfg) && s->listening &&
        (rc = zinx__ws_conf_new(s, &s->tr.ws_conf)) != 0)
        return fail(s, rc, "WebSocket");
    push_common(s, &s->tr.tcp);
    push_common(s, &s->tr.ws);
    /* WebSocket last: it carries the codec's bytes. */
    if (s->tr.ws_conf != NULL)
        zinx__stack_push(&s->tr.ws, zinx__ws_layer_make, s->tr.ws_conf);
    return 0;
}

static int listen_one(zinx_server_t *s, int which, const char *what, int port,
                      atomic_int *bound, const zinx__stack_spec_t *stack)
{
    zinx__listen_spec_t spec = {
        .what = what, .port = port, .bound_port = bound, .stack = stack};
    int rc = zinx__listener_open(s, &spec, &s->listeners[which]);
    if (rc != 0)
        zinx__log(s, ZINX_LOG_ERROR,
                  "cannot listen on Host \"%s\" port %d (%s): %s", s->cfg.host,
                  port, what, zinx_strerror(rc));
    return rc;
}

int zinx__transports_listen(zinx_server_t *s)
{
    const zinx_config_t *cfg = &s->cfg;
    int rc = 0;
    if (cfg->mode == ZINX_MODE_TCP || cfg->mode == ZINX_MODE_TCP_WS)
        rc = listen_one(s, ZINX__LISTEN_TCP, "TCP", cfg->tcp_port, &s->port,
                        &s->tr.tcp);
    if (rc == 0 && serves_ws(cfg))
        rc = listen_one(s, ZINX__LISTEN_WS, "WebSocket", cfg->ws_port,
                        &s->ws_port, &s->tr.ws);
    return rc;
}

int zinx__transports_kcp_open(zinx_server_t *s)
{
    if (s->cfg.mode != ZINX_MODE_KCP || !s->listening)
        return 0;
    s->kcp = calloc(s->nloops, sizeof(*s->kcp));
    if (s->kcp == NULL)
        return fail(s, ZINX_ENOMEM, "KCP");
    int bound = 0;
    for (uint32_t i = 0; i < s->nloops; i++) {
        int rc = zinx__kcp_endpoint_listen(s, s->shards[i], s->cfg.host,
                                           s->cfg.kcp_port, &bound, &s->kcp[i]);
        if (rc == 0)
            rc = zinx__kcp_endpoint_start(s->kcp[i]);
        if (rc != 0) {
            zinx__log(s, ZINX_LOG_ERROR,
                      "cannot listen on Host \"%s\" port %d (KCP/UDP): %s",
                      s->cfg.host, bound != 0 ? bound : s->cfg.kcp_port,
                      zinx_strerror(rc));
            return rc;
        }
    }
    /* The address taken, as TCPPort's listener notes it (Mode "kcp" has
       no other): what zinx_server_listen_host() names. */
    if (zinx__kcp_endpoint_host(s->kcp[0], s->listen_host,
                                sizeof(s->listen_host)) != 0)
        s->listen_host[0] = '\0';
    atomic_store(&s->kcp_port, bound);
    return 0;
}

void zinx__transports_kcp_stop(zinx_server_t *s)
{
    for (uint32_t i = 0; s->kcp != NULL && i < s->nloops; i++)
        if (s->kcp[i] != NULL)
            zinx__kcp_endpoint_stop_accepting(s->kcp[i]);
}

void zinx__transports_kcp_free(zinx_server_t *s)
{
    for (uint32_t i = 0; s->kcp != NULL && i < s->nloops; i++)
        zinx__kcp_endpoint_free(s->kcp[i]);
    free(s->kcp);
    s->kcp = NULL;
}

void zinx__transports_free(zinx_server_t *s)
{
    zinx__proxy_conf_free(s->tr.proxy);
    zinx__tls_server_free(s->tr.tls);
    zinx__ws_conf_free(s->tr.ws_conf);
    memset(&s->tr, 0, sizeof(s->tr));
}
