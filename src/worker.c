/*
 * The worker pool: one thread per worker, each draining its own FIFO.
 *
 * A connection always uses the same worker, so its START task, its message
 * batches and its STOP task run in order on one thread. Message batches
 * count against the queue's capacity (MaxWorkerTaskLen messages); START
 * and STOP do not, because refusing them could lose a hook, and there is
 * at most one of each per connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct zinx__worker {
    zinx_server_t *server;
    uint32_t id;
    uint32_t capacity; /* messages */
    pthread_t thread;
    bool started;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    zinx__task_t *head, *tail;
    uint32_t queued; /* messages reserved or queued, not yet taken */
    bool stopping;
    zinx_conn_t **waiters; /* paused connections, each holding a ref */
    size_t nwaiters, waiters_cap;
};

zinx__task_t *zinx__task_new(zinx__loop_t *loop, zinx__task_kind_t kind,
                             zinx_conn_t *conn, size_t size)
{
    zinx__task_t *t = malloc(sizeof(*t) + size);
    if (t == NULL)
        return NULL;
    t->next = NULL;
    t->origin = loop;
    t->kind = kind;
    t->conn = zinx_conn_ref(conn);
    t->count = 0;
    t->size = size;
    return t;
}

zinx__worker_t *zinx__worker_new(zinx_server_t *server, uint32_t id,
                                 uint32_t capacity)
{
    zinx__worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->server = server;
    w->id = id;
    w->capacity = capacity;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    return w;
}

static int add_waiter(zinx__worker_t *w, zinx_conn_t *conn)
{
    for (size_t i = 0; i < w->nwaiters; i++) {
        if (w->waiters[i] == conn)
            return 0;
    }
    if (w->nwaiters == w->waiters_cap) {
        size_t cap = w->waiters_cap ? w->waiters_cap * 2 : 8;
        zinx_conn_t **p = realloc(w->waiters, cap * sizeof(*p));
        if (p == NULL)
            return ZINX_ENOMEM;
        w->waiters = p;
        w->waiters_cap = cap;
    }
    w->waiters[w->nwaiters++] = zinx_conn_ref(conn);
    return 0;
}

uint32_t zinx__worker_reserve(zinx__worker_t *w, zinx_conn_t *conn,
                              uint32_t want)
{
    pthread_mutex_lock(&w->lock);
    uint32_t room = w->capacity - w->queued;
    uint32_t granted = want < room ? want : room;
    w->queued += granted;
    if (granted < want && add_waiter(w, conn) != 0) {
        /* Without a waiter slot nobody would resume the connection; keep
           it moving by granting one message over capacity instead. */
        granted++;
        w->queued++;
    }
    pthread_mutex_unlock(&w->lock);
    return granted;
}

void zinx__worker_unreserve(zinx__worker_t *w, uint32_t count)
{
    pthread_mutex_lock(&w->lock);
    w->queued -= count;
    pthread_mutex_unlock(&w->lock);
}

void zinx__worker_push_list(zinx__worker_t *w, zinx__task_t *head,
                            zinx__task_t *tail)
{
    pthread_mutex_lock(&w->lock);
    bool was_empty = w->head == NULL;
    if (w->tail != NULL)
        w->tail->next = head;
    else
        w->head = head;
    w->tail = tail;
    pthread_mutex_unlock(&w->lock);
    if (was_empty)
        pthread_cond_signal(&w->cond);
}

void zinx__worker_push(zinx__worker_t *w, zinx__task_t *task)
{
    zinx__worker_push_list(w, task, task);
}

/* Hands the waiters back once half the queue is free again, so a paused
   connection resumes with room for a useful batch, not one message. */
static size_t take_waiters(zinx__worker_t *w, zinx_conn_t ***out)
{
    if (w->nwaiters == 0 || w->queued > w->capacity / 2)
        return 0;
    *out = w->waiters;
    size_t n = w->nwaiters;
    w->waiters = NULL;
    w->nwaiters = w->waiters_cap = 0;
    return n;
}

static void wake_waiters(zinx_conn_t **waiters, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        zinx__conn_poke(waiters[i]);
        zinx_conn_unref(waiters[i]);
    }
    free(waiters);
}

static void run_msgs(zinx__worker_t *w, zinx__task_t *t)
{
    zinx_packet_format_t fmt = w->server->cfg.packet_format;
    size_t off = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        zinx_msg_t m;
        /* Frames were validated when they were read; the limit is moot. */
        long n = zinx_unpack(fmt, UINT32_MAX, t->data + off, t->size - off, &m);
        if (n <= 0)
            break;
        zinx__route_message(w->server, t->conn, &m);
        off += (size_t)n;
    }
    zinx__conn_batch_done(t->conn, t->count);
}

static void run_task(zinx__worker_t *w, zinx__task_t *t)
{
    switch (t->kind) {
    case ZINX__TASK_START:
        zinx__conn_run_start(t->conn);
        break;
    case ZINX__TASK_MSGS:
        run_msgs(w, t);
        break;
    case ZINX__TASK_STOP:
        zinx__conn_run_stop(t->conn);
        break;
    }
    zinx_conn_unref(t->conn);
    zinx__loop_recycle(t->origin, t);
}

static zinx__task_t *next_task(zinx__worker_t *w, zinx_conn_t ***waiters,
                               size_t *nwaiters)
{
    pthread_mutex_lock(&w->lock);
    while (w->head == NULL && !w->stopping)
        pthread_cond_wait(&w->cond, &w->lock);
    zinx__task_t *t = w->head;
    if (t != NULL) {
        w->head = t->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->queued -= t->count;
        *nwaiters = take_waiters(w, waiters);
    }
    pthread_mutex_unlock(&w->lock);
    return t;
}

static void *worker_main(void *arg)
{
    zinx__worker_t *w = arg;
    for (;;) {
        zinx_conn_t **waiters = NULL;
        size_t nwaiters = 0;
        zinx__task_t *t = next_task(w, &waiters, &nwaiters);
        if (t == NULL)
            break;
        if (nwaiters > 0)
            wake_waiters(waiters, nwaiters);
        run_task(w, t);
    }
    return NULL;
}

int zinx__worker_start(zinx__worker_t *w)
{
    char name[16];
    snprintf(name, sizeof(name), "zinx-wk-%u", w->id);
    int rc = zinx__thread_spawn(&w->thread, worker_main, w, name);
    if (rc == 0)
        w->started = true;
    return rc;
}

void zinx__worker_stop(zinx__worker_t *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_mutex_unlock(&w->lock);
    pthread_cond_broadcast(&w->cond);
    pthread_join(w->thread, NULL);
    w->started = false;
}

void zinx__worker_free(zinx__worker_t *w)
{
    if (w == NULL)
        return;
    zinx__worker_stop(w);
    /* A stopped worker has run every task; only waiters can remain. */
    for (size_t i = 0; i < w->nwaiters; i++)
        zinx_conn_unref(w->waiters[i]);
    free(w->waiters);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}

bool zinx__worker_is_self(const zinx__worker_t *w)
{
    return pthread_equal(pthread_self(), w->thread);
}
