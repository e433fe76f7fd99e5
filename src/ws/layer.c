/*
 * The WebSocket layer: the upgrade as its handshake, then binary
 * messages both ways, in the server's role (frames from the peer masked,
 * ours not) or the client's (the other way round).
 *
 * Reading decodes in the owner's buffer: the socket's bytes are read
 * straight into it and the frames' payloads moved down over their
 * headers (zinx__ws_decode), so that the layer keeps no received byte
 * between reads and never needs to raise readiness for one. Only the
 * bytes that followed the upgrade's head wait in the handshake buffer
 * for the first read.
 *
 * Writing: a server writes each writev as one binary frame, its header
 * and the owner's vector in one writev of the socket (no copy); a client
 * masks into its own buffer first. What the socket did not take of a
 * frame already begun waits in `tx` (only whole frames are ever queued
 * behind it, so control frames go between them); while tx holds bytes
 * the owner's writes get ZINX_EAGAIN and its WRITE readiness comes when
 * tx drained. tx is bounded by one frame and the control frames, and
 * freed when empty on a server, so that an idle connection keeps no
 * buffer.
 *
 * A server's request for one of its static pages (page.c) is answered
 * in the handshake: the page's shared response is written from where
 * the socket left it (no copy), our direction shut, the peer's bytes
 * read and dropped until it closes, and the handshake ends with
 * ZINX__HS_SERVED: the connection never opens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ws/ws.h"

/* The largest frame a writev makes: what a partial write may leave in
   tx, the bound of the layer's own output. */
#define WS_FRAME_MAX (64u * 1024u)
/* Room kept for control frames behind it (a pong, a close). */
#define WS_CTL_ROOM (2u * (ZINX__WS_HDR_MAX + ZINX__WS_CTL_MAX))
/* The most iovec entries of one writev taken (the owner offers fewer). */
#define WS_IOV_MAX 64

enum ws_state {
    WS_HS_READ,  /* a server reads the request, a client the response */
    WS_HS_WRITE, /* a server writes its 101, a client its request */
    WS_OPEN,
    WS_PAGE_WRITE, /* a server writes a page's response */
    WS_PAGE_DRAIN  /* ... then waits for the peer to close */
};

typedef struct ws_layer {
    zinx__layer_t l;
    const zinx__ws_conf_t *conf;
    enum ws_state state;
    bool server;
    bool close_sent;   /* our close frame is queued or written */
    bool close_rcvd;   /* the peer's close came: reads give 0 */
    bool shut_pending; /* the lower shutdown waits for tx to drain */
    uint32_t owner_want;
    uint32_t lower_want;
    int close_code; /* a protocol failure's status, sent on close */
    int fail_rc;    /* sticky read failure */
    int err;        /* a write failure found in on_lower */
    zinx__ws_rx_t rx;
    uint8_t *hs; /* the upgrade's head, then the bytes after it */
    size_t hs_len;
    size_t pre_off; /* hs[pre_off..hs_len): raw bytes not yet decoded */
    zinx__buf_t tx;
    char *path;                           /* the upgraded path */
    char accept[ZINX__WS_ACCEPT_LEN + 1]; /* a client's expected */
    const zinx__ws_page_t *page;          /* the page being served */
    size_t page_len, page_off;            /* its response: length, written */
} ws_layer_t;

static ws_layer_t *ws_of(zinx__stream_t *s)
{
    return (ws_layer_t *)s;
}

static zinx__stream_t *lower_of(ws_layer_t *w)
{
    return w->l.base.lower;
}

/* ---- output ------------------------------------------------------------- */

/* Asks the lower stream for what the owner wants, and WRITE while tx
   holds bytes. */
static int update_want(ws_layer_t *w, uint32_t extra)
{
    uint32_t ev = w->owner_want | extra;
    if (zinx__buf_size(&w->tx) > 0)
        ev |= ZINX__EV_WRITE;
    if (ev == w->lower_want)
        return 0;
    int rc = zinx__stream_want(lower_of(w), ev);
    if (rc == 0)
        w->lower_want = ev;
    return rc;
}

static void tx_release(ws_layer_t *w)
{
    /* A client masks every frame in tx: it keeps the buffer. */
    if (w->server)
        zinx__buf_free(&w->tx);
}

/* Writes what the lower stream takes of tx: 0 (perhaps bytes left) or
   a negative code. Once tx drained, a pending shutdown goes down. */
static int flush_tx(ws_layer_t *w)
{
    while (zinx__buf_size(&w->tx) > 0) {
        struct iovec iov = {.iov_base = (void *)zinx__buf_head(&w->tx),
                            .iov_len = zinx__buf_size(&w->tx)};
        ssize_t n = zinx__stream_writev(lower_of(w), &iov, 1);
        if (n == ZINX_EAGAIN)
            return 0;
        if (n <= 0)
            return n < 0 ? (int)n : ZINX_EPIPE;
        zinx__buf_consume(&w->tx, (size_t)n);
    }
    tx_release(w);
    if (w->shut_pending) {
        w->shut_pending = false;
        return lower_of(w)->ops->shutdown(lower_of(w));
    }
    return 0;
}

/* Queues a control frame behind tx's whole frames. Returns false when
   tx has no room (a flood of pings: the pong is dropped, as RFC 6455
   5.5.3 lets us answer only the latest). */
static bool queue_control(ws_layer_t *w, uint8_t opcode, const uint8_t *data,
                          size_t len)
{
    if (zinx__buf_size(&w->tx) + ZINX__WS_HDR_MAX + len >
        WS_FRAME_MAX + ZINX__WS_HDR_MAX + WS_CTL_ROOM)
        return false;
    uint8_t frame[ZINX__WS_HDR_MAX + ZINX__WS_CTL_MAX];
    uint8_t mask[4];
    bool masked = !w->server && zinx__ws_random(mask, sizeof(mask)) == 0;
    size_t h = zinx__ws_put_header(frame, opcode, len, masked ? mask : NULL);
    if (!w->server && !masked)
        return false;
    if (masked)
        zinx__ws_mask_copy(frame + h, data, len, mask, 0);
    else if (len > 0)
        memcpy(frame + h, data, len);
    return zinx__buf_append(&w->tx, frame, h + len) == 0;
}

static bool queue_close(ws_layer_t *w, int status)
{
    uint8_t st[2] = {(uint8_t)(status >> 8), (uint8_t)status};
    w->close_sent = true;
    return queue_control(w, ZINX__WS_OP_CLOSE, st, sizeof(st));
}

static size_t iov_total(const struct iovec *iov, int n, size_t cap)
{
    size_t total = 0;
    for (int i = 0; i < n && total < cap; i++)
        total += iov[i].iov_len;
    return total < cap ? total : cap;
}

/* A server's frame: header and the owner's bytes in one writev. What
   the socket leaves of it is copied to tx, since the frame has begun. */
static ssize_t write_plain(ws_layer_t *w, const struct iovec *iov, int n,
                           size_t total)
{
    uint8_t hdr[ZINX__WS_HDR_MAX];
    struct iovec v[WS_IOV_MAX + 1];
    v[0].iov_base = hdr;
    v[0].iov_len = zinx__ws_put_header(hdr, ZINX__WS_OP_BINARY, total, NULL);
    int k = 1;
    for (size_t left = total; left > 0 && k <= n; k++) {
        size_t len = iov[k - 1].iov_len < left ? iov[k - 1].iov_len : left;
        v[k].iov_base = iov[k - 1].iov_base;
        v[k].iov_len = len;
        left -= len;
    }
    ssize_t put = zinx__stream_writev(lower_of(w), v, k);
    if (put < 0)
        return put; /* ZINX_EAGAIN: nothing of the frame went */
    size_t skip = (size_t)put;
    for (int i = 0; i < k; i++) {
        if (skip >= v[i].iov_len) {
            skip -= v[i].iov_len;
            continue;
        }
        if (zinx__buf_append(&w->tx, (const uint8_t *)v[i].iov_base + skip,
                             v[i].iov_len - skip) != 0) {
            /* Part of a begun frame is lost: no close frame may follow. */
            w->err = ZINX_ENOMEM;
            return ZINX_ENOMEM;
        }
        skip = 0;
    }
    if (zinx__buf_size(&w->tx) > 0)
        update_want(w, 0);
    return (ssize_t)total;
}

/* A client's frame: masked into tx, then written. */
static ssize_t write_masked(ws_layer_t *w, const struct iovec *iov, int n,
                            size_t total)
{
    uint8_t mask[4];
    if (zinx__ws_random(mask, sizeof(mask)) != 0 ||
        zinx__buf_reserve(&w->tx, ZINX__WS_HDR_MAX + total) != 0)
        return ZINX_ENOMEM;
    uint8_t *p = w->tx.data + w->tx.len;
    size_t h = zinx__ws_put_header(p, ZINX__WS_OP_BINARY, total, mask);
    uint8_t pos = 0;
    size_t done = 0;
    for (int i = 0; i < n && done < total; i++) {
        size_t len =
            iov[i].iov_len < total - done ? iov[i].iov_len : total - done;
        pos = zinx__ws_mask_copy(p + h + done, iov[i].iov_base, len, mask, pos);
        done += len;
    }
    w->tx.len += h + total;
    int rc = flush_tx(w);
    if (rc != 0)
        return rc;
    if (zinx__buf_size(&w->tx) > 0)
        update_want(w, 0);
    return (ssize_t)total;
}

static ssize_t ws_writev(zinx__stream_t *s, const struct iovec *iov, int n)
{
    ws_layer_t *w = ws_of(s);
    if (w->close_sent || w->close_rcvd)
        return ZINX_EPIPE; /* no data after a close frame */
    if (zinx__buf_size(&w->tx) > 0) {
        int rc = flush_tx(w);
        if (rc != 0)
            return rc;
        if (zinx__buf_size(&w->tx) > 0)
            return ZINX_EAGAIN; /* on_lower says WRITE once it drained */
    }
    if (n > WS_IOV_MAX)
        n = WS_IOV_MAX;
    size_t total = iov_total(iov, n, WS_FRAME_MAX);
    if (total == 0)
        return 0;
    return w->server ? write_plain(w, iov, n, total)
                     : write_masked(w, iov, n, total);
}

/* ---- input -------------------------------------------------------------- */

/* Raw bytes for buf[at..len): the ones left after the upgrade's head
   first, then the lower stream's. */
static ssize_t read_raw(ws_layer_t *w, uint8_t *buf, size_t len, bool *mine)
{
    *mine = w->hs != NULL;
    if (w->hs == NULL)
        return zinx__stream_read(lower_of(w), buf, len);
    size_t have = w->hs_len - w->pre_off;
    size_t n = have < len ? have : len;
    memcpy(buf, w->hs + w->pre_off, n);
    w->pre_off += n;
    if (w->pre_off == w->hs_len) {
        free(w->hs);
        w->hs = NULL;
    }
    return (ssize_t)n;
}

/* The peer's close: answered with its status (1000 when it gave none),
   unless we sent ours first; reads end. */
static void on_peer_close(ws_layer_t *w)
{
    w->close_rcvd = true;
    if (!w->close_sent) {
        int st = zinx__ws_close_status(&w->rx);
        queue_close(w, st == 1005 ? ZINX__WS_NORMAL : st);
    }
    if (flush_tx(w) == 0)
        update_want(w, 0);
}

static void on_ping(ws_layer_t *w)
{
    zinx__layer_raise(&w->l, ZINX__EV_ACTIVITY);
    if (w->close_sent ||
        !queue_control(w, ZINX__WS_OP_PONG, w->rx.ctl, w->rx.ctl_len))
        return;
    if (flush_tx(w) == 0)
        update_want(w, 0);
}

/* Decodes buf[in..end): 1 to read on, 0 when the peer closed, or a
   negative code. */
static int decode(ws_layer_t *w, uint8_t *buf, size_t in, size_t end,
                  size_t *out)
{
    for (;;) {
        int code = 0;
        const char *why = NULL;
        switch (zinx__ws_decode(&w->rx, buf, &in, end, out, &code, &why)) {
        case ZINX__WS_MORE:
            return 1;
        case ZINX__WS_PING:
            on_ping(w);
            break;
        case ZINX__WS_PONG:
            zinx__layer_raise(&w->l, ZINX__EV_ACTIVITY);
            break;
        case ZINX__WS_CLOSE:
            on_peer_close(w);
            return 0;
        case ZINX__WS_FAIL:
            w->close_code = code;
            w->l.base.why = why;
            return code == ZINX__WS_TOO_BIG ? ZINX_EMSGSIZE : ZINX_EPROTO;
        }
    }
}

static ssize_t ws_read(zinx__stream_t *s, void *buf, size_t len)
{
    ws_layer_t *w = ws_of(s);
    if (w->fail_rc != 0)
        return w->fail_rc;
    uint8_t *b = buf;
    size_t out = 0;
    while (!w->close_rcvd && out < len) {
        size_t ask = len - out;
        bool mine;
        ssize_t got = read_raw(w, b + out, ask, &mine);
        if (got <= 0) {
            if (got < 0 && got != ZINX_EAGAIN)
                w->fail_rc = (int)got;
            return out > 0 ? (ssize_t)out : got;
        }
        int rc = decode(w, b, out, out + (size_t)got, &out);
        if (rc < 0) {
            w->fail_rc = rc;
            return out > 0 ? (ssize_t)out : rc;
        }
        /* Fewer raw bytes than asked: the stream below has no more now
           and will say when it has (nothing stays here for the owner). */
        if ((size_t)got < ask && !mine)
            return out > 0 ? (ssize_t)out : ZINX_EAGAIN;
    }
    return (ssize_t)out; /* 0 once the peer's close came */
}

/* ---- readiness, shutdown, close ---------------------------------------- */

static int ws_want(zinx__stream_t *s, uint32_t events)
{
    ws_layer_t *w = ws_of(s);
    w->owner_want = events;
    /* Bytes that followed the upgrade are readable now. */
    if (w->hs != NULL && w->state == WS_OPEN && (events & ZINX__EV_READ))
        zinx__layer_raise(&w->l, ZINX__EV_READ);
    return update_want(w, 0);
}

static void ws_on_lower(zinx__layer_t *l, uint32_t events)
{
    ws_layer_t *w = (ws_layer_t *)l;
    if (w->state != WS_OPEN) {
        zinx__layer_notify(l, events); /* the handshake's owner steps */
        return;
    }
    if ((events & ZINX__EV_WRITE) && zinx__buf_size(&w->tx) > 0) {
        int rc = flush_tx(w);
        if (rc != 0) {
            w->err = rc;
            events |= ZINX__EV_ERROR;
        }
    }
    if (zinx__buf_size(&w->tx) > 0)
        events &= ~ZINX__EV_WRITE; /* the owner's turn comes after tx's */
    update_want(w, 0);
    zinx__layer_notify(l, events);
}

static int ws_shutdown(zinx__stream_t *s)
{
    ws_layer_t *w = ws_of(s);
    if (!w->close_sent)
        queue_close(w, w->close_code != 0 ? w->close_code : ZINX__WS_NORMAL);
    w->shut_pending = true;
    int rc = flush_tx(w);
    if (rc == 0)
        rc = update_want(w, 0);
    return rc;
}

/* The status a close for the connection's reason sends; 0: none (the
   peer is gone). */
static int status_for(int reason)
{
    switch (reason) {
    case 0:
        return ZINX__WS_NORMAL;
    case ZINX_EMSGSIZE:
        return ZINX__WS_TOO_BIG;
    case ZINX_EPROTO:
        return ZINX__WS_PROTOCOL;
    case ZINX_ENOBUFS:
        return ZINX__WS_POLICY;
    case ZINX_ECONNRESET:
    case ZINX_EPIPE:
        return 0;
    default:
        return ZINX__WS_GOING_AWAY; /* a timeout, the server stopping */
    }
}

static void ws_close(zinx__stream_t *s)
{
    ws_layer_t *w = ws_of(s);
    if (w->l.closed)
        return;
    if (w->state == WS_OPEN && !w->close_sent && w->err == 0) {
        int st =
            w->close_code != 0 ? w->close_code : status_for(s->close_reason);
        /* Best effort, never waiting: the socket closes next. */
        if (st != 0 && queue_close(w, st))
            flush_tx(w);
    }
    free(w->hs);
    w->hs = NULL;
    zinx__buf_free(&w->tx);
    zinx__layer_close_lower(&w->l);
}

static void ws_destroy(zinx__stream_t *s)
{
    ws_layer_t *w = ws_of(s);
    free(w->hs);
    zinx__buf_free(&w->tx);
    free(w->path);
    free(w);
}

static size_t ws_unacked(zinx__stream_t *s)
{
    ws_layer_t *w = ws_of(s);
    return zinx__buf_size(&w->tx) + zinx__layer_unacked_lower(s);
}

static int ws_error(zinx__stream_t *s)
{
    ws_layer_t *w = ws_of(s);
    return w->err != 0 ? w->err : zinx__layer_error_lower(s);
}

/* ---- the upgrade -------------------------------------------------------- */

static int hs_fail(ws_layer_t *w, int rc, const char *why)
{
    if (why != NULL)
        w->l.base.why = why;
    return rc;
}

/* A refusal's response, written once without waiting. */
static int refuse(ws_layer_t *w, int status, const char *why)
{
    const char *reason = "Bad Request", *extra = "";
    switch (status) {
    case 401:
        reason = "Unauthorized";
        break;
    case 403:
        reason = "Forbidden";
        break;
    case 404:
        reason = "Not Found";
        break;
    case 405:
        reason = "Method Not Allowed";
        extra = "Allow: GET\r\n";
        break;
    case 426:
        reason = "Upgrade Required";
        extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
        break;
    case 431:
        reason = "Request Header Fields Too Large";
        break;
    }
    char text[256];
    int n = snprintf(text, sizeof(text),
                     "HTTP/1.1 %d %s\r\n%sConnection: close\r\n"
                     "Content-Length: 0\r\n\r\n",
                     status, reason, extra);
    struct iovec iov = {.iov_base = text, .iov_len = (size_t)n};
    (void)zinx__stream_writev(lower_of(w), &iov, 1);
    return hs_fail(
        w, status == 401 || status == 403 ? ZINX_EACCES : ZINX_EPROTO, why);
}

/* Reads the peer's head into hs: its length once whole, 0 after asking
   for READ, or a negative code. */
static ssize_t read_head(ws_layer_t *w)
{
    if (w->hs == NULL && (w->hs = malloc(ZINX__WS_HTTP_MAX)) == NULL)
        return ZINX_ENOMEM;
    for (;;) {
        ssize_t n = zinx__stream_read(lower_of(w), w->hs + w->hs_len,
                                      ZINX__WS_HTTP_MAX - w->hs_len);
        if (n == ZINX_EAGAIN) {
            int rc = update_want(w, ZINX__EV_READ);
            return rc != 0 ? rc : 0;
        }
        if (n == 0)
            return hs_fail(w, ZINX_ECONNRESET,
                           "the peer closed during the upgrade");
        if (n < 0)
            return n;
        /* The blank line may straddle reads: search a little back. */
        size_t from = w->hs_len > 3 ? w->hs_len - 3 : 0;
        w->hs_len += (size_t)n;
        size_t end = zinx__ws_http_end(w->hs + from, w->hs_len - from);
        if (end > 0)
            return (ssize_t)(from + end);
        if (w->hs_len == ZINX__WS_HTTP_MAX)
            return w->server
                       ? refuse(w, 431, "upgrade request too long")
                       : hs_fail(w, ZINX_EPROTO, "upgrade response too long");
    }
}

/* The bytes after the head are the first frame bytes; none: no buffer. */
static void keep_rest(ws_layer_t *w, size_t head)
{
    w->pre_off = head;
    if (head == w->hs_len) {
        free(w->hs);
        w->hs = NULL;
    }
}

/* ---- a static page ------------------------------------------------------ */

/* Reads and drops what the peer sends until it closes: then the page is
   served (a reset too: it had every byte). ZINX_EAGAIN after asking
   for READ. */
static int page_drain(ws_layer_t *w)
{
    uint8_t sink[4096];
    for (;;) {
        ssize_t n = zinx__stream_read(lower_of(w), sink, sizeof(sink));
        if (n > 0)
            continue;
        if (n != ZINX_EAGAIN)
            return ZINX__HS_SERVED;
        int rc = update_want(w, ZINX__EV_READ);
        return rc != 0 ? rc : ZINX_EAGAIN;
    }
}

/* Writes the rest of the page's response, then shuts our direction
   (TCP's FIN, TLS's close_notify) and drains. */
static int page_step(ws_layer_t *w)
{
    while (w->state == WS_PAGE_WRITE && w->page_off < w->page_len) {
        struct iovec iov = {.iov_base = w->page->response + w->page_off,
                            .iov_len = w->page_len - w->page_off};
        ssize_t n = zinx__stream_writev(lower_of(w), &iov, 1);
        if (n == ZINX_EAGAIN) {
            int rc = update_want(w, ZINX__EV_WRITE);
            return rc != 0 ? rc : ZINX_EAGAIN;
        }
        if (n <= 0)
            return hs_fail(w, n < 0 ? (int)n : ZINX_EPIPE,
                           "the peer left before the page was written");
        w->page_off += (size_t)n;
    }
    if (w->state == WS_PAGE_WRITE) {
        w->state = WS_PAGE_DRAIN;
        int rc = lower_of(w)->ops->shutdown(lower_of(w));
        if (rc != 0 && rc != ZINX_EAGAIN)
            return ZINX__HS_SERVED; /* written; the peer is gone */
    }
    return page_drain(w);
}

static int page_start(ws_layer_t *w, const zinx__ws_page_t *page, size_t len)
{
    /* Whatever came after the request's head is never read. */
    free(w->hs);
    w->hs = NULL;
    w->page = page;
    w->page_len = len;
    w->state = WS_PAGE_WRITE;
    return page_step(w);
}

/* ---- the upgrade, continued -------------------------------------------- */

static int server_accept(ws_layer_t *w, size_t head)
{
    zinx__ws_http_t req;
    const char *key = NULL, *why = NULL;
    int st = zinx__ws_parse_request((char *)w->hs, head, w->conf->path, &req,
                                    &key, &why);
    if (st != 0) {
        size_t len = 0;
        const zinx__ws_page_t *page =
            zinx__ws_page_match(w->conf->pages, w->conf->path, &req, st, &len);
        return page != NULL ? page_start(w, page, len) : refuse(w, st, why);
    }
    if (w->conf->check != NULL) {
        st = w->conf->check(req.path, zinx__ws_http_header(&req, "Origin"),
                            &req, w->conf->check_udata);
        if (st != 0)
            return refuse(w, st == 401 ? 401 : 403,
                          "refused by the server's check");
    }
    char accept[ZINX__WS_ACCEPT_LEN + 1];
    if ((w->path = strdup(req.path)) == NULL ||
        zinx__ws_accept_of(key, accept) != 0)
        return ZINX_ENOMEM;
    char text[160];
    int n = snprintf(text, sizeof(text),
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    if (zinx__buf_append(&w->tx, text, (size_t)n) != 0)
        return ZINX_ENOMEM;
    keep_rest(w, head);
    w->state = WS_HS_WRITE;
    return ZINX_EAGAIN; /* go on writing */
}

static int client_check(ws_layer_t *w, size_t head)
{
    zinx__ws_http_t resp;
    const char *why = NULL;
    int rc =
        zinx__ws_parse_response((char *)w->hs, head, w->accept, &resp, &why);
    if (rc != 0)
        return hs_fail(w, rc, why);
    keep_rest(w, head);
    w->state = WS_OPEN;
    return 0;
}

/* A client's request, with a fresh key. */
static int client_request(ws_layer_t *w)
{
    char key[ZINX__WS_KEY_LEN + 1];
    if (zinx__ws_new_key(key) != 0 || zinx__ws_accept_of(key, w->accept) != 0)
        return ZINX_ENOMEM;
    char text[1400];
    int n = snprintf(text, sizeof(text),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     w->conf->path, w->conf->host, key);
    if (n < 0 || (size_t)n >= sizeof(text) ||
        zinx__buf_append(&w->tx, text, (size_t)n) != 0)
        return ZINX_ENOMEM;
    w->state = WS_HS_WRITE;
    return 0;
}

/* Writes tx (the 101 or the request): 0 once written, ZINX_EAGAIN after
   asking for WRITE. */
static int write_head(ws_layer_t *w)
{
    int rc = flush_tx(w);
    if (rc != 0)
        return rc;
    if (zinx__buf_size(&w->tx) > 0) {
        rc = update_want(w, ZINX__EV_WRITE);
        return rc != 0 ? rc : ZINX_EAGAIN;
    }
    return 0;
}

static int ws_handshake(zinx__stream_t *s)
{
    ws_layer_t *w = ws_of(s);
    int rc;
    if (w->state == WS_PAGE_WRITE || w->state == WS_PAGE_DRAIN)
        return page_step(w);
    if (!w->server && w->state == WS_HS_READ && w->accept[0] == '\0' &&
        (rc = client_request(w)) != 0)
        return rc;
    if (w->state == WS_HS_WRITE) {
        if ((rc = write_head(w)) != 0)
            return rc;
        if (w->server) {
            w->state = WS_OPEN;
            w->owner_want = 0;
            return update_want(w, 0);
        }
        w->state = WS_HS_READ;
    }
    ssize_t head = read_head(w);
    if (head <= 0)
        return head == 0 ? ZINX_EAGAIN : (int)head;
    if (!w->server) {
        rc = client_check(w, (size_t)head);
        return rc != 0 ? rc : update_want(w, 0);
    }
    rc = server_accept(w, (size_t)head);
    /* After the 101 is queued, go on writing it; a page waits. */
    return rc == ZINX_EAGAIN && w->state == WS_HS_WRITE ? ws_handshake(s) : rc;
}

/* ---- the table ---------------------------------------------------------- */

const zinx__stream_ops_t zinx__ws_ops = {
    .name = "WebSocket",
    .kind = ZINX__LAYER_WEBSOCKET,
    .start = zinx__layer_start,
    .read = ws_read,
    .writev = ws_writev,
    .shutdown = ws_shutdown,
    .want = ws_want,
    .handshake = ws_handshake,
    .unacked = ws_unacked,
    .since_ack_ms = zinx__layer_since_ack_lower,
    .error = ws_error,
    .close = ws_close,
    .destroy = ws_destroy,
};

int zinx__ws_layer_make(const void *conf, zinx__stream_t *lower,
                        zinx__stream_t **out)
{
    const zinx__ws_conf_t *c = conf;
    ws_layer_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return ZINX_ENOMEM;
    zinx__layer_init(&w->l, &zinx__ws_ops, lower, ws_on_lower);
    w->conf = c;
    w->server = c->server;
    w->rx.server = c->server;
    w->rx.max_msg = c->max_msg;
    w->state = WS_HS_READ;
    *out = &w->l.base;
    return 0;
}

const char *zinx__ws_layer_path(zinx__stream_t *s)
{
    ws_layer_t *w = ws_of(s);
    return w->server ? w->path : w->conf->path;
}
