/*
 * The counting side of metrics: what the I/O loops and workers call per
 * message or per iteration, only when metrics are on (metrics/metrics.h
 * says why each thread has a block of its own).
 */
#include "internal.h"

/* 1 µs to 2.5 s, roughly ×2.5 apart: a handler or an iteration of a few
   µs and a stall of a second both land in a bucket that tells them
   apart. */
const double zinx__metrics_bounds[ZINX__M_BUCKETS] = {
    1e-6, 2.5e-6, 5e-6,   1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4,
    5e-4, 1e-3,   2.5e-3, 1e-2, 5e-2,   0.25, 1.0,  2.5};
static const uint64_t bounds_ns[ZINX__M_BUCKETS] = {
    1000,     2500,      5000,       10000,     25000,   50000,
    100000,   250000,    500000,     1000000,   2500000, 10000000,
    50000000, 250000000, 1000000000, 2500000000};

/* Whose block the calling thread writes, cached per thread: the server
   it belongs to (compared, never dereferenced) and the block. */
static _Thread_local const zinx_server_t *self_server;
static _Thread_local zinx__mblock_t *self_block;

/* Adds v: the owner alone writes a private block, so a plain load and
   store do (readers see one or the other value, never a torn one). */
static inline void add(const zinx__mblock_t *b, zinx__mctr_t *ctr, uint64_t v)
{
    if (b->shared) {
        atomic_fetch_add_explicit(ctr, v, memory_order_relaxed);
        return;
    }
    uint64_t old = atomic_load_explicit(ctr, memory_order_relaxed);
    atomic_store_explicit(ctr, old + v, memory_order_relaxed);
}

static void observe(zinx__mblock_t *b, zinx__mhist_t *h, uint64_t ns)
{
    unsigned i = 0;
    while (i < ZINX__M_BUCKETS && ns > bounds_ns[i])
        i++;
    add(b, &h->b[i], 1);
    add(b, &h->sum_ns, ns);
    add(b, &h->count, 1);
}

/* The block of this loop or pool worker of s, found once per thread;
   any other thread gets the shared block. */
static zinx__mblock_t *find_block(zinx_server_t *s)
{
    zinx__metrics_t *m = s->metrics;
    /* Each thread asks only about itself: comparing thread IDs with
       loops that start meanwhile would race with their start. */
    const zinx__loop_t *l = zinx__loop_current();
    for (uint32_t i = 0; l != NULL && i < m->nloops && i < s->nloops; i++) {
        if (s->loops[i] == l)
            return &m->blocks[i];
    }
    const zinx__worker_t *w = zinx__worker_current();
    if (w != NULL && s->pool != NULL && zinx__pool_is_own_thread(s->pool) &&
        zinx__worker_id(w) < m->nworkers)
        return &m->blocks[m->nloops + zinx__worker_id(w)];
    return NULL;
}

static zinx__mblock_t *my_block(zinx_server_t *s)
{
    if (self_server == s)
        return self_block;
    zinx__mblock_t *b = find_block(s);
    if (b == NULL)
        return &s->metrics->blocks[s->metrics->nloops + s->metrics->nworkers];
    self_server = s;
    self_block = b;
    return b;
}

/* The slot of id: its index among the tracked IDs, else "other". */
static unsigned slot_of(const zinx__metrics_t *m, uint32_t id)
{
    uint32_t lo = 0, hi = m->nids;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->nids && m->ids[lo] == id ? lo : ZINX_METRICS_MAX_IDS;
}

void zinx__metrics_route(zinx_server_t *s, zinx_conn_t *c,
                         const zinx_msg_t *msg)
{
    zinx__mblock_t *b = my_block(s);
    add(b, &b->in_by_id[slot_of(s->metrics, msg->id)], 1);
    uint64_t t0 = zinx__now_ns();
    zinx__route_unmetered(s, c, msg);
    observe(b, &b->handler, zinx__now_ns() - t0);
}

void zinx__metrics_sent(zinx_server_t *s, uint32_t id, uint64_t n)
{
    zinx__mblock_t *b = my_block(s);
    add(b, &b->out_by_id[slot_of(s->metrics, id)], n);
}

void zinx__metrics_bytes_in(zinx_server_t *s, uint32_t index, size_t n)
{
    zinx__mblock_t *b = &s->metrics->blocks[index];
    add(b, &b->bytes_in, n);
}

void zinx__metrics_bytes_out(zinx_server_t *s, uint32_t index, size_t n)
{
    zinx__mblock_t *b = &s->metrics->blocks[index];
    add(b, &b->bytes_out, n);
}

void zinx__metrics_iteration(zinx_server_t *s, uint32_t index, uint64_t ns)
{
    zinx__mblock_t *b = &s->metrics->blocks[index];
    observe(b, &b->iter, ns);
}
