/*
 * A shard: the connections of one I/O thread and what they share.
 *
 *   - one read buffer, large enough to drain most sockets in one call
 *     (see performance.md on libevent's 4 KiB cap), and a scratch array
 *     of decoded messages;
 *   - the jobs of this iteration for each worker, handed over with one
 *     lock and one wake-up per worker at the end of the iteration;
 *   - a pool of blocks for message batches, so that handing messages to
 *     a worker allocates nothing in steady traffic; workers give blocks
 *     back through a lock-free stack. Batches too large for a block are
 *     malloc'ed and also freed here, because memory freed on the thread
 *     that allocated it keeps glibc's per-thread caches and arenas from
 *     drifting (seen as slow RSS growth in the soak test);
 *   - the reply gather of inline handlers (gather.c);
 *   - the graveyard: connections whose stream closed in this iteration,
 *     released after it, so no event of the same batch meets a freed one;
 *   - lingering sockets (a FIFO: equal linger times keep it sorted), and
 *     the sweep that frees the buffers of idle connections.
 *
 * It hooks the loop's tick (hand-over, frees, graveyard), settle (while
 * quitting: what written bytes are still unacknowledged) and finish.
 */
#include <stdlib.h>

#include "base/array.h"
#include "conn/conn_private.h"

/* A read of this size drains most sockets in one call. */
#define SHARD_RBUF_MIN (64u * 1024u)
/* How long a gracefully closed socket waits for the peer's EOF. */
#define SHARD_LINGER_MS 2000u
/* Buffers of a connection idle this long go back to the allocator. */
#define SHARD_TRIM_MS 1000u

/* Blocks of the batch pool: a batch of up to sixteen 64-byte messages,
   or one of 1 KiB, fits one. The pool keeps at most SHARD_POOL_MAX of
   them (1 MiB) for reuse; larger batches, and any beyond that, come
   from malloc. */
#define SHARD_BLOCK 2048u
#define SHARD_POOL_MAX 512u

/* Jobs this iteration produced for one worker, in order. */
typedef struct outbox {
    zinx__worker_t *worker;
    zinx__job_t *head, *tail;
} outbox_t;

struct zinx__shard {
    zinx_server_t *server;
    zinx__loop_t *loop;
    uint8_t *rbuf;
    size_t rbuf_cap;
    zinx__frame_t *msgs; /* scratch: frames of one read */
    zinx__gather_t *gather;
    size_t msgs_cap;
    outbox_t *outboxes; /* indexed by worker id */
    size_t outbox_cap;
    uint32_t *touched; /* ids of the outboxes filled this iteration */
    size_t ntouched, touched_cap;
    _Atomic(void *) recycled; /* pushed by workers: to free */
    _Atomic(void *) returned; /* pushed by workers: pool blocks */
    void *pool;               /* free pool blocks, linked */
    size_t npool;
    zinx_conn_t *grave_head;
    zinx_conn_t *linger_head, *linger_tail;
    size_t nlinger;
    zinx__timer_t linger_timer;
    zinx_conn_t *sweep_head;
    zinx__timer_t sweep_timer;
};

/* ---- worker hand-over and recycling -------------------------------------- */

/* The outbox of worker w, NULL when out of memory. */
static outbox_t *outbox_of(zinx__shard_t *sh, zinx__worker_t *w)
{
    uint32_t id = zinx__worker_id(w);
    if (id < sh->outbox_cap)
        return &sh->outboxes[id];
    size_t old = sh->outbox_cap;
    if (ZINX__ARRAY_RESERVE(sh->outboxes, sh->outbox_cap, (size_t)id + 1) != 0)
        return NULL;
    for (size_t i = old; i < sh->outbox_cap; i++)
        sh->outboxes[i] = (outbox_t){.worker = NULL};
    return &sh->outboxes[id];
}

void zinx__shard_push_job(zinx__shard_t *sh, zinx__worker_t *w,
                          zinx__job_t *job)
{
    job->next = NULL;
    outbox_t *o = outbox_of(sh, w);
    if (o != NULL && o->head != NULL) {
        o->tail->next = job;
        o->tail = job;
        return;
    }
    if (o == NULL || ZINX__ARRAY_RESERVE(sh->touched, sh->touched_cap,
                                         sh->ntouched + 1) != 0) {
        zinx__worker_push(w, job); /* unbatched, still in order */
        return;
    }
    *o = (outbox_t){.worker = w, .head = job, .tail = job};
    sh->touched[sh->ntouched++] = zinx__worker_id(w);
}

static void flush_outboxes(zinx__shard_t *sh)
{
    for (size_t i = 0; i < sh->ntouched; i++) {
        outbox_t *o = &sh->outboxes[sh->touched[i]];
        zinx__worker_push_list(o->worker, o->head, o->tail);
        o->head = o->tail = NULL;
    }
    sh->ntouched = 0;
}

static void push_stack(_Atomic(void *) *stack, void *mem)
{
    void *head = atomic_load(stack);
    do {
        *(void **)mem = head;
    } while (!atomic_compare_exchange_weak(stack, &head, mem));
}

/* The first pointer of mem links it (a batch starts with its job). */
void zinx__shard_recycle(zinx__shard_t *sh, void *mem, bool pooled)
{
    push_stack(pooled ? &sh->returned : &sh->recycled, mem);
}

void *zinx__shard_alloc(zinx__shard_t *sh, size_t size, bool *pooled)
{
    *pooled = size <= SHARD_BLOCK;
    if (!*pooled)
        return malloc(size);
    void *b = sh->pool;
    if (b == NULL)
        return malloc(SHARD_BLOCK);
    sh->pool = *(void **)b;
    sh->npool--;
    return b;
}

/* Only this thread takes from the stacks, all at once: no ABA problem. */
static void free_recycled(zinx__shard_t *sh)
{
    void *p = atomic_exchange(&sh->recycled, NULL);
    while (p != NULL) {
        void *next = *(void **)p;
        free(p);
        p = next;
    }
    p = atomic_exchange(&sh->returned, NULL);
    while (p != NULL) {
        void *next = *(void **)p;
        if (sh->npool < SHARD_POOL_MAX) {
            *(void **)p = sh->pool;
            sh->pool = p;
            sh->npool++;
        } else {
            free(p);
        }
        p = next;
    }
}

static void free_pool(zinx__shard_t *sh)
{
    while (sh->pool != NULL) {
        void *next = *(void **)sh->pool;
        free(sh->pool);
        sh->pool = next;
    }
    sh->npool = 0;
}

/* ---- graveyard ----------------------------------------------------------- */

void zinx__shard_bury(zinx__shard_t *sh, zinx_conn_t *c)
{
    /* Each connection closes its stream once, so it is buried once. */
    c->grave_next = sh->grave_head;
    sh->grave_head = c;
}

static void release_graveyard(zinx__shard_t *sh)
{
    while (sh->grave_head != NULL) {
        zinx_conn_t *c = sh->grave_head;
        sh->grave_head = c->grave_next;
        zinx_conn_unref(c);
    }
}

/* ---- lingering ------------------------------------------------------------
 */

static void append_lingerer(zinx__shard_t *sh, zinx_conn_t *c)
{
    c->linger_next = NULL;
    if (sh->linger_tail != NULL)
        sh->linger_tail->linger_next = c;
    else
        sh->linger_head = c;
    sh->linger_tail = c;
    sh->nlinger++;
    if (!zinx__timer_armed(&sh->linger_timer))
        zinx__loop_timer_arm(sh->loop, &sh->linger_timer,
                             sh->linger_head->linger_deadline_ms);
}

void zinx__shard_linger(zinx__shard_t *sh, zinx_conn_t *c)
{
    c->linger_deadline_ms = zinx__loop_now(sh->loop) + SHARD_LINGER_MS;
    c->linger_backlog = conn_linger_backlog(c);
    append_lingerer(sh, zinx_conn_ref(c));
}

static zinx_conn_t *pop_lingerer(zinx__shard_t *sh)
{
    zinx_conn_t *c = sh->linger_head;
    sh->linger_head = c->linger_next;
    if (sh->linger_head == NULL)
        sh->linger_tail = NULL;
    sh->nlinger--;
    return c;
}

/* The linger time is up. A peer that still acknowledges what we owe it
   is reading slowly, not gone: it gets another period, as long as each
   period shows progress. One that made none is closed, and what it did
   not take is lost. */
static void linger_expired(zinx__shard_t *sh, zinx_conn_t *c, uint64_t now)
{
    size_t backlog = conn_linger_backlog(c);
    if (backlog > 0 && backlog < c->linger_backlog) {
        c->linger_backlog = backlog;
        c->linger_deadline_ms = now + SHARD_LINGER_MS;
        append_lingerer(sh, c);
        return;
    }
    conn_close_stream(c); /* no-op if the peer closed first */
    zinx_conn_unref(c);
}

static void expire_lingerers(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    zinx__shard_t *sh = arg;
    uint64_t now = zinx__loop_now(sh->loop);
    while (sh->nlinger > 0) {
        uint64_t deadline = sh->linger_head->linger_deadline_ms;
        if (deadline > now) {
            zinx__loop_timer_arm(sh->loop, &sh->linger_timer, deadline);
            return;
        }
        linger_expired(sh, pop_lingerer(sh), now);
    }
}

/* Quitting: a socket whose peer has acknowledged every byte we wrote can
   close without losing anything; the others keep lingering until their
   peer's EOF or the drain deadline (`force`), whichever comes first.
   Returns true once none lingers. */
static bool settle(void *arg, bool force)
{
    zinx__shard_t *sh = arg;
    size_t n = sh->nlinger;
    for (size_t i = 0; i < n; i++) {
        zinx_conn_t *c = pop_lingerer(sh);
        if (!force && conn_linger_backlog(c) > 0) {
            append_lingerer(sh, c);
            continue;
        }
        conn_close_stream(c);
        zinx_conn_unref(c);
    }
    release_graveyard(sh);
    return sh->nlinger == 0;
}

/* ---- the buffer sweep ---------------------------------------------------- */

/* Frees the buffers of connections that stayed idle for a sweep period;
   busy ones keep theirs, so steady traffic allocates nothing. */
static void sweep(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    zinx__shard_t *sh = arg;
    uint64_t now = zinx__loop_now(sh->loop);
    uint64_t idle_since = now > SHARD_TRIM_MS ? now - SHARD_TRIM_MS : 0;
    zinx_conn_t **pp = &sh->sweep_head;
    while (*pp != NULL) {
        zinx_conn_t *c = *pp;
        if (conn_trim(c, idle_since)) {
            pp = &c->sweep_next;
            continue;
        }
        *pp = c->sweep_next;
        zinx_conn_unref(c);
    }
    if (sh->sweep_head != NULL)
        zinx__loop_timer_arm(sh->loop, &sh->sweep_timer, now + SHARD_TRIM_MS);
}

void zinx__shard_retain(zinx__shard_t *sh, zinx_conn_t *c)
{
    c->sweep_next = sh->sweep_head;
    sh->sweep_head = zinx_conn_ref(c);
    if (!zinx__timer_armed(&sh->sweep_timer))
        zinx__loop_timer_arm(sh->loop, &sh->sweep_timer,
                             zinx__loop_now(sh->loop) + SHARD_TRIM_MS);
}

/* ---- the loop's hooks ---------------------------------------------------- */

static void tick(void *arg)
{
    zinx__shard_t *sh = arg;
    flush_outboxes(sh);
    free_recycled(sh);
    release_graveyard(sh);
}

/* Metrics on: how long the iteration ran. */
static void timed(void *arg, uint64_t ns)
{
    zinx__shard_t *sh = arg;
    zinx__metrics_iteration(sh->server, zinx__loop_index(sh->loop), ns);
}

static void finish(void *arg)
{
    zinx__shard_t *sh = arg;
    settle(sh, true);
    flush_outboxes(sh);
    while (sh->sweep_head != NULL) {
        zinx_conn_t *c = sh->sweep_head;
        sh->sweep_head = c->sweep_next;
        zinx_conn_unref(c);
    }
    release_graveyard(sh);
}

/* ---- creation ------------------------------------------------------------ */

zinx__shard_t *zinx__shard_new(zinx_server_t *server, zinx__loop_t *loop)
{
    zinx__shard_t *sh = calloc(1, sizeof(*sh));
    if (sh == NULL)
        return NULL;
    sh->server = server;
    sh->loop = loop;
    sh->rbuf_cap = server->cfg.io_read_buff_size > SHARD_RBUF_MIN
                       ? server->cfg.io_read_buff_size
                       : SHARD_RBUF_MIN;
    sh->rbuf = malloc(sh->rbuf_cap);
    sh->gather = calloc(1, sizeof(*sh->gather));
    if (sh->rbuf == NULL || sh->gather == NULL) {
        free(sh->rbuf);
        free(sh->gather);
        free(sh);
        return NULL;
    }
    atomic_init(&sh->recycled, NULL);
    atomic_init(&sh->returned, NULL);
    zinx__timer_init(&sh->linger_timer, expire_lingerers, sh);
    zinx__timer_init(&sh->sweep_timer, sweep, sh);
    zinx__loop_hooks_t hooks = {
        .tick = tick, .settle = settle, .finish = finish, .arg = sh};
    if (server->metrics != NULL)
        hooks.timed = timed;
    zinx__loop_set_hooks(loop, &hooks);
    return sh;
}

void zinx__shard_free(zinx__shard_t *sh)
{
    if (sh == NULL)
        return;
    free_recycled(sh); /* workers are joined: nothing more arrives */
    free_pool(sh);
    free(sh->outboxes);
    free(sh->touched);
    free(sh->msgs);
    free(sh->rbuf);
    free(sh->gather);
    free(sh);
}

zinx__gather_t *zinx__shard_gather(zinx__shard_t *sh)
{
    return sh->gather;
}

uint8_t *zinx__shard_rbuf(zinx__shard_t *sh, size_t *cap)
{
    *cap = sh->rbuf_cap;
    return sh->rbuf;
}

zinx__frame_t *zinx__shard_frames(zinx__shard_t *sh, size_t count)
{
    if (ZINX__ARRAY_RESERVE(sh->msgs, sh->msgs_cap, count) != 0)
        return NULL;
    return sh->msgs;
}

zinx__loop_t *zinx__shard_loop(const zinx__shard_t *sh)
{
    return sh->loop;
}

zinx_server_t *zinx__shard_server(const zinx__shard_t *sh)
{
    return sh->server;
}
