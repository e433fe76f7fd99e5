/*
 * The PROXY protocol layer: reads the header a proxy sends first, checks
 * that the socket's peer is one of ProxyProtocolFrom's networks, and
 * from then on reports the client's address as the connection's remote
 * address (the proxy's stays at the bottom of the stack). Bytes read
 * past the header are the client's first: they are served before the
 * socket is read again. After the header the layer passes every call
 * straight down, and once those bytes are served the connection steps
 * over it (passthrough, zinx__stream_skip), so it costs nothing per
 * message.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proxy/proxy.h"

typedef struct proxy_layer {
    zinx__layer_t l;
    const zinx__proxy_conf_t *conf;
    uint8_t *buf; /* the header, then the bytes after it; NULL once served */
    size_t len;   /* bytes in buf */
    size_t off;   /* served (the header counts as served) */
    bool checked; /* the source was found allowed */
} proxy_layer_t;

static proxy_layer_t *proxy_of(zinx__stream_t *s)
{
    return (proxy_layer_t *)s;
}

static void drop_buf(proxy_layer_t *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = p->off = 0;
}

/* ---- reading and writing after the header ------------------------------ */

static ssize_t proxy_read(zinx__stream_t *s, void *buf, size_t len)
{
    proxy_layer_t *p = proxy_of(s);
    if (p->buf == NULL)
        return s->lower->ops->read(s->lower, buf, len);
    size_t have = p->len - p->off;
    size_t n = have < len ? have : len;
    memcpy(buf, p->buf + p->off, n);
    p->off += n;
    if (p->off == p->len)
        drop_buf(p);
    else
        zinx__layer_raise(&p->l, ZINX__EV_READ); /* the rest, next */
    return (ssize_t)n;
}

static ssize_t proxy_writev(zinx__stream_t *s, const struct iovec *iov, int n)
{
    return s->lower->ops->writev(s->lower, iov, n);
}

static int proxy_want(zinx__stream_t *s, uint32_t events)
{
    proxy_layer_t *p = proxy_of(s);
    /* Bytes already here are readable now; the socket may stay quiet. */
    if (p->buf != NULL && (events & ZINX__EV_READ))
        zinx__layer_raise(&p->l, ZINX__EV_READ);
    return s->lower->ops->want(s->lower, events);
}

/* Once the header and what came behind it are served, the layer only
   forwards: its owner may bypass it (zinx__stream_skip). */
static bool proxy_passthrough(const zinx__stream_t *s)
{
    const proxy_layer_t *p = (const proxy_layer_t *)s;
    return s->handshaken && p->buf == NULL;
}

static void proxy_on_lower(zinx__layer_t *l, uint32_t events)
{
    zinx__layer_notify(l, events);
}

/* ---- the header -----------------------------------------------------------
 */

/* The socket's peer as an address, from the text the socket stream
   keeps ("1.2.3.4:5", "[::1]:5"). */
static bool peer_sockaddr(const char *text, struct sockaddr_storage *ss)
{
    char host[64];
    memset(ss, 0, sizeof(*ss));
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (end == NULL || (size_t)(end - text - 1) >= sizeof(host))
            return false;
        memcpy(host, text + 1, (size_t)(end - text - 1));
        host[end - text - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        return inet_pton(AF_INET6, host, &a->sin6_addr) == 1;
    }
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
        return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    return inet_pton(AF_INET, host, &a->sin_addr) == 1;
}

static bool source_allowed(proxy_layer_t *p)
{
    struct sockaddr_storage ss;
    const char *peer = p->l.base.lower->remote;
    return peer_sockaddr(peer, &ss) &&
           zinx__netlist_match(&p->conf->from, (struct sockaddr *)&ss);
}

static int failed(proxy_layer_t *p, int err, const char *why)
{
    p->l.base.why = why;
    drop_buf(p);
    return err;
}

/* The header is complete at buf[0..hlen): the client's addresses become
   this layer's. */
static void take_header(proxy_layer_t *p, const zinx__proxy_hdr_t *h,
                        size_t hlen)
{
    if (!h->local) {
        zinx__addr_format(&h->src, h->src_len, p->l.base.remote);
        zinx__addr_format(&h->dst, h->dst_len, p->l.base.local);
    }
    p->off = hlen;
    if (p->off == p->len)
        drop_buf(p);
}

static int proxy_handshake(zinx__stream_t *s)
{
    proxy_layer_t *p = proxy_of(s);
    if (!p->checked) {
        if (!source_allowed(p))
            return failed(p, ZINX_EACCES,
                          "the peer is not in ProxyProtocolFrom");
        p->checked = true;
    }
    for (;;) {
        ssize_t n = s->lower->ops->read(s->lower, p->buf + p->len,
                                        ZINX__PROXY_MAX - p->len);
        if (n == ZINX_EAGAIN) {
            int rc = s->lower->ops->want(s->lower, ZINX__EV_READ);
            return rc != 0 ? failed(p, rc, NULL) : ZINX_EAGAIN;
        }
        if (n == 0)
            return failed(p, ZINX_ECONNRESET,
                          "the peer closed before its PROXY header ended");
        if (n < 0)
            return failed(p, (int)n, NULL);
        p->len += (size_t)n;
        zinx__proxy_hdr_t h;
        const char *why;
        ssize_t hlen =
            zinx__proxy_parse(p->buf, p->len, p->conf->mode, &h, &why);
        if (hlen < 0)
            return failed(p, ZINX_EPROTO, why);
        if (hlen > 0) {
            take_header(p, &h, (size_t)hlen);
            return 0;
        }
        if (p->len == ZINX__PROXY_MAX)
            return failed(p, ZINX_EPROTO, "PROXY header too long");
    }
}

/* ---- the rest -------------------------------------------------------------
 */

static void proxy_close(zinx__stream_t *s)
{
    proxy_layer_t *p = proxy_of(s);
    if (p->l.closed)
        return;
    drop_buf(p);
    zinx__layer_close_lower(&p->l);
}

static void proxy_destroy(zinx__stream_t *s)
{
    proxy_layer_t *p = proxy_of(s);
    drop_buf(p);
    free(p);
}

const zinx__stream_ops_t zinx__proxy_ops = {
    .name = "PROXY protocol",
    .kind = ZINX__LAYER_PROXY,
    .start = zinx__layer_start,
    .read = proxy_read,
    .writev = proxy_writev,
    .shutdown = zinx__layer_shutdown_lower,
    .want = proxy_want,
    .handshake = proxy_handshake,
    .unacked = zinx__layer_unacked_lower,
    .since_ack_ms = zinx__layer_since_ack_lower,
    .error = zinx__layer_error_lower,
    .close = proxy_close,
    .destroy = proxy_destroy,
    .passthrough = proxy_passthrough,
};

int zinx__proxy_layer_make(const void *conf, zinx__stream_t *lower,
                           zinx__stream_t **out)
{
    proxy_layer_t *p = calloc(1, sizeof(*p));
    uint8_t *buf = malloc(ZINX__PROXY_MAX);
    if (p == NULL || buf == NULL) {
        free(p);
        free(buf);
        return ZINX_ENOMEM;
    }
    zinx__layer_init(&p->l, &zinx__proxy_ops, lower, proxy_on_lower);
    p->conf = conf;
    p->buf = buf;
    *out = &p->l.base;
    return 0;
}

/* ---- settings -------------------------------------------------------------
 */

int zinx__proxy_conf_new(zinx_server_t *s, zinx__proxy_conf_t **out)
{
    zinx__proxy_conf_t *conf = calloc(1, sizeof(*conf));
    if (conf == NULL)
        return ZINX_ENOMEM;
    conf->mode = (int)s->cfg.proxy_protocol;
    char why[128];
    int rc = zinx__netlist_parse(s->cfg.proxy_protocol_from, &conf->from, why,
                                 sizeof(why));
    if (rc != 0) {
        zinx__log(s, ZINX_LOG_ERROR, "ProxyProtocolFrom: %s", why);
        free(conf);
        return rc;
    }
    *out = conf;
    return 0;
}

void zinx__proxy_conf_free(zinx__proxy_conf_t *conf)
{
    free(conf);
}
