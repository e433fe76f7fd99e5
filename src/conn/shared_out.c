/*
 * Shared segments in a connection's output (notify and broadcast).
 *
 * A broadcast encodes its frame once into a reference-counted segment
 * and queues a reference to it on every connection, where it takes its
 * place in the byte stream among the connection's own frames: `out` and
 * `pending` stay plain byte buffers, and each holds beside it a queue of
 * (segment, gap) pairs, the gap being how many of the buffer's bytes go
 * before the segment (after the previous one). Writing walks both in
 * order into one writev; a segment's reference is released once its
 * last byte is written, or when the connection drops its output.
 *
 * The queues are empty unless a broadcast reached the connection: the
 * usual paths then see only a count of zero (write_out, take_pending)
 * and a zero in conn_out_size().
 */
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "conn/conn_private.h"

/* Vector entries of one write: a gap and a segment per pair. */
#define SHARED_IOV 64

/* ---- segments ------------------------------------------------------------ */

zinx__seg_t *zinx__seg_new(const zinx_conn_t *c, int *err, uint32_t id,
                           const void *data, uint32_t len)
{
    zinx__seg_t *seg = malloc(sizeof(*seg));
    *err = ZINX_ENOMEM;
    if (seg == NULL)
        return NULL;
    /* The codec's own encoder, into a buffer the segment then owns. */
    zinx__buf_t b = {0};
    int rc = zinx__codec_encode(c->codec, &b, id, data, len);
    if (rc != 0) {
        zinx__buf_free(&b);
        free(seg);
        *err = rc;
        return NULL;
    }
    atomic_init(&seg->refs, 1);
    seg->codec = c->codec;
    seg->len = zinx__buf_size(&b);
    seg->data = b.data; /* b.off is 0: nothing was consumed */
    return seg;
}

bool zinx__seg_fits(const zinx__seg_t *seg, const zinx_conn_t *c)
{
    return seg->codec == c->codec;
}

static zinx__seg_t *seg_ref(zinx__seg_t *seg)
{
    atomic_fetch_add_explicit(&seg->refs, 1, memory_order_relaxed);
    return seg;
}

void zinx__seg_unref(zinx__seg_t *seg)
{
    if (atomic_fetch_sub_explicit(&seg->refs, 1, memory_order_acq_rel) == 1) {
        free(seg->data);
        free(seg);
    }
}

/* ---- queues -------------------------------------------------------------- */

static size_t queued(const zinx__segq_t *q)
{
    return q->count - q->head;
}

/* Room for `more` entries after count, sliding the live ones to the
   front first when written ones hold the space (a slow reader keeps its
   queue from ever emptying). */
static int reserve(zinx__segq_t *q, size_t more)
{
    if (q->cap - q->count >= more)
        return 0;
    if (q->head > 0) {
        memmove(q->items, q->items + q->head, queued(q) * sizeof(*q->items));
        q->count -= q->head;
        q->head = 0;
    }
    return ZINX__ARRAY_RESERVE(q->items, q->cap, q->count + more);
}

int conn_segq_push(zinx__segq_t *q, size_t buf_bytes, zinx__seg_t *seg)
{
    if (reserve(q, 1) != 0)
        return ZINX_ENOMEM;
    q->items[q->count++] =
        (zinx__segref_t){.seg = seg_ref(seg), .gap = buf_bytes - q->marked};
    q->marked = buf_bytes;
    q->bytes += seg->len;
    return 0;
}

void conn_segq_drop(zinx__segq_t *q)
{
    for (size_t i = q->head; i < q->count; i++)
        zinx__seg_unref(q->items[i].seg);
    free(q->items);
    memset(q, 0, sizeof(*q));
}

int conn_take_shared(zinx_conn_t *c)
{
    zinx__segq_t *dst = &c->outq, *src = &c->pendq;
    size_t before = zinx__buf_size(&c->out);
    if (reserve(dst, queued(src)) != 0 ||
        zinx__buf_move(&c->out, &c->pending) != 0)
        return ZINX_ENOMEM;
    /* The first gap now also spans out's bytes after its last segment;
       the later gaps are unchanged. Nothing of `pending` was written. */
    size_t lead = before - dst->marked;
    for (size_t i = src->head; i < src->count; i++) {
        zinx__segref_t r = src->items[i];
        if (i == src->head)
            r.gap += lead;
        dst->items[dst->count++] = r;
    }
    dst->marked = before + src->marked;
    dst->bytes += src->bytes;
    src->head = src->count = 0;
    src->marked = src->bytes = 0;
    return 0;
}

/* ---- writing --------------------------------------------------------------
 */

/* The vector of what is unsent, in order, as far as SHARED_IOV goes. */
static int fill_iov(const zinx_conn_t *c, struct iovec *iov)
{
    const zinx__segq_t *q = &c->outq;
    const uint8_t *p = zinx__buf_head(&c->out);
    size_t left = zinx__buf_size(&c->out);
    int n = 0;
    size_t i = q->head;
    for (; i < q->count && n + 2 <= SHARED_IOV; i++) {
        const zinx__segref_t *r = &q->items[i];
        if (r->gap > 0) {
            iov[n++] = (struct iovec){.iov_base = (void *)p, .iov_len = r->gap};
            p += r->gap;
            left -= r->gap;
        }
        size_t off = i == q->head ? q->sent : 0;
        iov[n++] = (struct iovec){.iov_base = r->seg->data + off,
                                  .iov_len = r->seg->len - off};
    }
    /* The bytes after the last segment, if the vector has room left:
       the last segment may have taken the two final entries, and then
       they go in the next write. */
    if (i == q->count && left > 0 && n < SHARED_IOV)
        iov[n++] = (struct iovec){.iov_base = (void *)p, .iov_len = left};
    return n;
}

/* n bytes were written: consume them from `out` and the segments in
   order, releasing each segment written in full. */
static void consume(zinx_conn_t *c, size_t n)
{
    zinx__segq_t *q = &c->outq;
    while (n > 0 && q->head < q->count) {
        zinx__segref_t *r = &q->items[q->head];
        if (r->gap > 0) {
            size_t k = n < r->gap ? n : r->gap;
            zinx__buf_consume(&c->out, k);
            r->gap -= k;
            q->marked -= k;
            n -= k;
            continue;
        }
        size_t k = r->seg->len - q->sent;
        if (n < k) {
            q->sent += n;
            q->bytes -= n;
            return;
        }
        n -= k;
        q->bytes -= k;
        q->sent = 0;
        zinx__seg_unref(r->seg);
        if (++q->head == q->count)
            q->head = q->count = 0;
    }
    if (n > 0)
        zinx__buf_consume(&c->out, n);
}

int conn_write_shared(zinx_conn_t *c)
{
    struct iovec iov[SHARED_IOV];
    while (conn_out_size(c) > 0) {
        ssize_t n = conn_writev(c, iov, fill_iov(c, iov));
        if (n == ZINX_EAGAIN)
            return 0;
        if (n <= 0)
            return n < 0 ? (int)n : ZINX_EPIPE;
        consume(c, (size_t)n);
        atomic_fetch_sub_explicit(&c->unsent, (size_t)n, memory_order_relaxed);
        if (conn_out_size(c) == 0)
            c->last_io_ms = zinx__loop_now(c->loop);
        else if (c->stall_since_ms != 0)
            c->stall_since_ms = zinx__loop_now(c->loop); /* the peer reads */
    }
    return 0;
}
