/*
 * Replies gathered for one write.
 *
 * While the I/O thread runs the inline handlers of one read, the replies
 * they send to that same connection are not copied into its output
 * buffer: each frame's header goes into the shard's scratch and its
 * payload, when it still lies in the read buffer (an echo, a forwarded
 * message), is pointed at where it is. After the read's last handler,
 * one writev sends them all, as a hand-written echo loop would, and
 * the connection's output buffer is touched only for what the socket
 * refuses. Small payloads are copied next to their header instead: for
 * a few dozen bytes a copy costs less than one more vector entry, and a
 * single buffer goes out with send().
 *
 * The read buffer is the shard's and the next read overwrites it, so the
 * gather is always written or spilled into `out` before that read.
 * Ordering: bytes are gathered only while `out` is empty, and anything
 * that must go behind them (a full gather, the notice of an oversized
 * frame, a graceful finish) spills them into `out` first.
 */
#include <string.h>

#include "conn/conn_private.h"

/* Payloads at least this long are pointed at, shorter ones copied. */
#define GATHER_REF_MIN 256u

/* Appends [p, p + len) as a vector entry, merged with the previous one
   when it continues it. */
static void add_iov(zinx__gather_t *g, const uint8_t *p, size_t len)
{
    if (g->n > 0) {
        struct iovec *last = &g->iov[g->n - 1];
        if ((const uint8_t *)last->iov_base + last->iov_len == p) {
            last->iov_len += len;
            return;
        }
    }
    g->iov[g->n++] = (struct iovec){.iov_base = (void *)p, .iov_len = len};
}

void conn_gather_begin(zinx_conn_t *c, const uint8_t *lo, size_t len)
{
    zinx__gather_t *g = c->gather;
    g->conn = c;
    g->lo = lo;
    g->hi = lo + len;
}

bool conn_gather_put(zinx_conn_t *c, uint32_t id, const void *data,
                     uint32_t len)
{
    zinx__gather_t *g = c->gather;
    const zinx__codec_t *codec = c->codec;
    /* Only the fixed layouts: a header and the payload as it is. */
    if (g->conn != c || codec->layout == ZINX__LAYOUT_OTHER ||
        conn_out_size(c) > 0)
        return false;
    const uint8_t *d = data;
    bool ref = len >= GATHER_REF_MIN && d >= g->lo && d + len <= g->hi;
    size_t copy = ZINX_HEADER_LEN + (ref ? 0 : len);
    if (g->used + copy > ZINX__GATHER_BYTES || g->n + 2 > ZINX__GATHER_IOV)
        return false;
    uint8_t *p = g->scratch + g->used;
    zinx__codec_put_header(codec, p, id, len);
    if (!ref && len > 0)
        memcpy(p + ZINX_HEADER_LEN, d, len);
    add_iov(g, p, copy);
    if (ref)
        add_iov(g, d, len);
    g->used += copy;
    g->bytes += ZINX_HEADER_LEN + (size_t)len;
    return true;
}

static void reset(zinx__gather_t *g)
{
    g->n = 0;
    g->used = 0;
    g->bytes = 0;
}

/* Copies the gathered bytes from vector entry i, offset skip, to `out`
   and counts them as unsent. Returns 0 or ZINX_ENOMEM. */
static int move_to_out(zinx_conn_t *c, zinx__gather_t *g, int i, size_t skip)
{
    size_t total = 0;
    for (int k = i; k < g->n; k++)
        total += g->iov[k].iov_len;
    total -= skip;
    if (zinx__buf_reserve(&c->out, total) != 0)
        return ZINX_ENOMEM;
    for (; i < g->n; i++, skip = 0)
        zinx__buf_append(&c->out, (const uint8_t *)g->iov[i].iov_base + skip,
                         g->iov[i].iov_len - skip);
    atomic_fetch_add_explicit(&c->unsent, total, memory_order_relaxed);
    return 0;
}

/* What the socket did not take (n bytes were written) goes to `out`. */
static int keep_rest(zinx_conn_t *c, zinx__gather_t *g, size_t n)
{
    int i = 0;
    while (i < g->n && n >= g->iov[i].iov_len)
        n -= g->iov[i++].iov_len;
    return move_to_out(c, g, i, n);
}

int conn_gather_spill(zinx_conn_t *c)
{
    zinx__gather_t *g = c->gather;
    if (g->conn != c || g->n == 0)
        return 0;
    int rc = move_to_out(c, g, 0, 0);
    reset(g);
    if (rc == 0)
        conn_schedule(c);
    return rc;
}

void conn_gather_drop(zinx_conn_t *c)
{
    zinx__gather_t *g = c->gather;
    if (g->conn != c)
        return;
    reset(g);
    g->conn = NULL;
}

bool conn_gather_end(zinx_conn_t *c)
{
    zinx__gather_t *g = c->gather;
    if (g->conn != c)
        return true; /* finished meanwhile: dropped or spilled then */
    g->conn = NULL;
    if (g->n == 0)
        return true;
    /* close_now drops what is unsent, as it would from `out`. */
    if (atomic_load_explicit(&c->close_req, memory_order_relaxed) ==
        CLOSE_NOW) {
        reset(g);
        return true;
    }
    ssize_t n = conn_writev(c, g->iov, g->n);
    int rc = 0;
    if (n == ZINX_EAGAIN)
        n = 0;
    if (n < 0)
        rc = (int)n;
    else if ((size_t)n < g->bytes)
        rc = keep_rest(c, g, (size_t)n);
    if (n > 0)
        c->last_io_ms = zinx__loop_now(c->loop);
    bool kept = rc == 0 && (size_t)n < g->bytes;
    reset(g);
    if (rc != 0) {
        conn_fail(c, rc);
        return false;
    }
    if (kept)
        conn_schedule(c); /* wait for the socket to take the rest */
    return true;
}
