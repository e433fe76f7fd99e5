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
#include <string.h>

#include "internal.h"
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
    if (cfg->mode != ZINX_MODE_TCP && s->listening &&
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
    if (cfg->mode != ZINX_MODE_WEBSOCKET)
        rc = listen_one(s, ZINX__LISTEN_TCP, "TCP", cfg->tcp_port, &s->port,
                        &s->tr.tcp);
    if (rc == 0 && cfg->mode != ZINX_MODE_TCP)
        rc = listen_one(s, ZINX__LISTEN_WS, "WebSocket", cfg->ws_port,
                        &s->ws_port, &s->tr.ws);
    return rc;
}

void zinx__transports_free(zinx_server_t *s)
{
    zinx__proxy_conf_free(s->tr.proxy);
    zinx__tls_server_free(s->tr.tls);
    zinx__ws_conf_free(s->tr.ws_conf);
    memset(&s->tr, 0, sizeof(s->tr));
}
