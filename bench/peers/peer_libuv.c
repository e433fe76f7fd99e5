/*
 * peer-libuv: the frame echo written the way a careful libuv user would.
 * Every read lands in one buffer owned by the loop (alloc_cb hands out
 * the same 64 KiB each time); complete frames go back with uv_try_write,
 * and only what the socket does not take is copied into the connection's
 * reusable output buffer and queued with uv_write, reading paused until
 * it drains. The tail of an incomplete frame waits in a reusable buffer
 * of the connection. No allocation per message.
 *
 *     peer-libuv [PORT]        prints "listening on 127.0.0.1:PORT"
 */
#include <uv.h>

#include "peer_common.h"

#define PROG "peer-libuv"
#define READ_MAX (64u * 1024u)

typedef struct upeer {
    uv_loop_t *loop;
    uv_tcp_t server;
    char rbuf[READ_MAX];
} upeer_t;

typedef struct uconn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    upeer_t *peer;
    uint8_t *in; /* incomplete frame */
    size_t in_len, in_cap;
    uint8_t *out; /* bytes of the queued uv_write */
    size_t out_cap;
} uconn_t;

static int reserve(uint8_t **buf, size_t *cap, size_t want)
{
    if (want <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < want)
        n *= 2;
    uint8_t *p = realloc(*buf, n);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    uconn_t *c = h->data;

    free(c->in);
    free(c->out);
    free(c);
}

static void drop(uconn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    uconn_t *c = h->data;

    (void)suggested;
    *buf = uv_buf_init(c->peer->rbuf, READ_MAX);
}

static void on_written(uv_write_t *req, int status)
{
    uconn_t *c = req->data;

    if (status < 0) {
        drop(c);
        return;
    }
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, NULL);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Queues what uv_try_write left, from offset `done` on, and pauses. */
static int queue_rest(uconn_t *c, const uv_buf_t *bufs, int n, size_t done)
{
    size_t len = 0;

    for (int i = 0; i < n; i++) {
        if (done >= bufs[i].len) {
            done -= bufs[i].len;
            continue;
        }
        size_t k = bufs[i].len - done;
        if (reserve(&c->out, &c->out_cap, len + k) != 0)
            return -1;
        memcpy(c->out + len, bufs[i].base + done, k);
        len += k;
        done = 0;
    }
    uv_buf_t out = uv_buf_init((char *)c->out, (unsigned)len);
    c->wreq.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    return uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &out, 1, on_written);
}

/* Completes the pending frame from data; bytes taken, or -1. */
static long fill_partial(uconn_t *c, const uint8_t *data, size_t n)
{
    size_t used = 0, miss;

    while (used < n && (miss = peer_missing(c->in, c->in_len)) > 0) {
        if (c->in_len >= PEER_HEADER &&
            peer_frame_len(c->in) > PEER_MAX_PAYLOAD)
            return -1;
        size_t k = miss < n - used ? miss : n - used;
        if (reserve(&c->in, &c->in_cap, c->in_len + k) != 0)
            return -1;
        memcpy(c->in + c->in_len, data + used, k);
        c->in_len += k;
        used += k;
    }
    return (long)used;
}

static int echo(uconn_t *c, const uint8_t *data, size_t n)
{
    uv_buf_t bufs[2];
    int nb = 0, bad = 0;
    size_t total = 0;

    if (c->in_len > 0) {
        long used = fill_partial(c, data, n);
        if (used < 0)
            return -1;
        data += used;
        n -= (size_t)used;
        if (peer_missing(c->in, c->in_len) == 0)
            bufs[nb++] = uv_buf_init((char *)c->in, (unsigned)c->in_len);
    }
    size_t done = peer_complete(data, n, &bad);
    if (bad)
        return -1;
    if (done > 0)
        bufs[nb++] = uv_buf_init((char *)data, (unsigned)done);
    for (int i = 0; i < nb; i++)
        total += bufs[i].len;
    if (total > 0) {
        int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, (unsigned)nb);
        if (w == UV_EAGAIN)
            w = 0;
        if (w < 0)
            return -1;
        if ((size_t)w < total && queue_rest(c, bufs, nb, (size_t)w) != 0)
            return -1;
        if (bufs[0].base == (char *)c->in)
            c->in_len = 0;
    }
    if (n > done) {
        if (reserve(&c->in, &c->in_cap, n - done) != 0)
            return -1;
        memcpy(c->in, data + done, n - done);
        c->in_len = n - done;
    }
    return 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    uconn_t *c = s->data;

    if (nread < 0) {
        drop(c);
        return;
    }
    if (nread > 0 && echo(c, (const uint8_t *)buf->base, (size_t)nread) != 0)
        drop(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    upeer_t *p = server->data;

    if (status < 0)
        return;
    uconn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->peer = p;
    uv_tcp_init(p->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        drop(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static int start(upeer_t *p, int port)
{
    struct sockaddr_in sa;
    int len = sizeof sa;

    uv_ip4_addr(PEER_HOST, port, &sa);
    uv_tcp_init(p->loop, &p->server);
    p->server.data = p;
    int rc = uv_tcp_bind(&p->server, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&p->server, 4096, on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&p->server, (struct sockaddr *)&sa, &len);
    if (rc != 0) {
        fprintf(stderr, PROG ": listen: %s\n", uv_strerror(rc));
        return -1;
    }
    peer_print_listening(ntohs(sa.sin_port));
    return 0;
}

int main(int argc, char **argv)
{
    int port = peer_port_arg(argc, argv, PROG);
    upeer_t *p = calloc(1, sizeof *p);

    if (port < 0 || p == NULL)
        return 2;
    peer_setup_process();
    p->loop = uv_default_loop();
    if (start(p, port) != 0)
        return 1;
    return uv_run(p->loop, UV_RUN_DEFAULT);
}
