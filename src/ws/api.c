/*
 * WebSocket's settings (a server's, made at start from WsPath and
 * WsMaxMessageSize; a client's, per dialer) and the public calls of
 * include/zinx/websocket.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/conn_private.h"
#include "internal.h"
#include "ws/ws.h"

#define WS_CLIENT_MAX_MSG (1u << 20)

int zinx__ws_conf_new(zinx_server_t *s, zinx__ws_conf_t **out)
{
    zinx__ws_conf_t *conf = calloc(1, sizeof(*conf));
    if (conf == NULL)
        return ZINX_ENOMEM;
    conf->server = true;
    snprintf(conf->path, sizeof(conf->path), "%s", s->cfg.ws_path);
    conf->max_msg = s->cfg.ws_max_message_size;
    conf->check = s->ws_check;
    conf->check_udata = s->ws_check_udata;
    conf->pages = s->ws_pages;
    *out = conf;
    return 0;
}

void zinx__ws_conf_free(zinx__ws_conf_t *conf)
{
    free(conf);
}

int zinx__ws_client_conf_new(const char *host, int port, const char *path,
                             uint32_t max_msg, zinx__ws_conf_t **out)
{
    if (path == NULL || path[0] != '/' ||
        strlen(path) >= ZINX_CONFIG_PATH_MAX || strpbrk(path, " \r\n") ||
        strpbrk(host, " \r\n"))
        return ZINX_EINVAL;
    zinx__ws_conf_t *conf = calloc(1, sizeof(*conf));
    if (conf == NULL)
        return ZINX_ENOMEM;
    snprintf(conf->path, sizeof(conf->path), "%s", path);
    /* An IPv6 literal goes in brackets. */
    int n =
        strchr(host, ':') != NULL
            ? snprintf(conf->host, sizeof(conf->host), "[%s]:%d", host, port)
            : snprintf(conf->host, sizeof(conf->host), "%s:%d", host, port);
    if (n < 0 || (size_t)n >= sizeof(conf->host)) {
        free(conf);
        return ZINX_EINVAL;
    }
    conf->max_msg = max_msg != 0 ? max_msg : WS_CLIENT_MAX_MSG;
    *out = conf;
    return 0;
}

/* ---- public ------------------------------------------------------------- */

int zinx_server_set_ws_check(zinx_server_t *s, zinx_ws_check_fn fn, void *udata)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    s->ws_check = fn;
    s->ws_check_udata = udata;
    return 0;
}

const char *zinx_ws_request_header(const zinx_ws_request_t *req,
                                   const char *name)
{
    if (req == NULL || name == NULL)
        return NULL;
    return zinx__ws_http_header(req, name);
}

const char *zinx_ws_request_query(const zinx_ws_request_t *req)
{
    return req != NULL ? req->query : "";
}

const char *zinx_conn_ws_path(const zinx_conn_t *c)
{
    if (c == NULL)
        return NULL;
    zinx__stream_t *ws = zinx__stream_find(c->stream, &zinx__ws_ops);
    if (ws == NULL || !ws->handshaken)
        return NULL;
    return zinx__ws_layer_path(ws);
}
