/*
 * The worker pool: one thread per worker, each draining its own FIFO.
 *
 * A connection always uses the same worker, so its START task, its message
 * batches and its STOP task run in order on one thread. Message batches
 * count against the queue's capacity (MaxWorkerTaskLen messages); START
 * and STOP do not, because refusing them could lose a hook, and there is
 * at most one of each per connection.
 *
 * Back-pressure reaches into the queue: before each message the worker
 * looks at the connection's unsent output, and above OutputHighWater it
 * parks the rest of the batch on the connection; later tasks of that
 * connection join it as they come up, so order holds. The connection's
 * loop puts them back at the front of the queue once the output has
 * room (or the connection ends), so a peer that reads is slowed down,
 * never pushed past the output limits by requests already queued.
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
    /* Paused connections, each holding a reference, linked through the
       connections (no allocation: pausing cannot fail). */
    zinx_conn_t *wait_head, *wait_tail;
};

zinx__task_t *zinx__task_new(zinx__loop_t *loop, zinx__task_kind_t kind,
                             zinx_conn_t *conn, size_t size)
{
    if (zinx__fault(zinx__loop_server(loop), ZINX__ALLOC_TASK))
        return NULL;
    zinx__task_t *t = malloc(sizeof(*t) + size);
    if (t == NULL)
        return NULL;
    t->next = NULL;
    t->origin = loop;
    t->kind = kind;
    t->conn = zinx_conn_ref(conn);
    t->count = 0;
    t->size = (uint32_t)size;
    t->done = 0;
    t->off = 0;
    return t;
}

zinx__task_t *zinx__task_new_owned(zinx__task_kind_t kind)
{
    zinx__task_t *t = calloc(1, sizeof(*t));
    if (t != NULL)
        t->kind = kind;
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

static void add_waiter(zinx__worker_t *w, zinx_conn_t *conn)
{
    zinx__conn_links_t *l = zinx__conn_links(conn);
    if (l->waiting)
        return;
    l->waiting = true;
    l->wait_next = NULL;
    if (w->wait_tail != NULL)
        zinx__conn_links(w->wait_tail)->wait_next = conn;
    else
        w->wait_head = conn;
    w->wait_tail = zinx_conn_ref(conn);
}

uint32_t zinx__worker_reserve(zinx__worker_t *w, zinx_conn_t *conn,
                              uint32_t want)
{
    pthread_mutex_lock(&w->lock);
    uint32_t room = w->capacity - w->queued;
    uint32_t granted = want < room ? want : room;
    w->queued += granted;
    if (granted < want)
        add_waiter(w, conn);
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
   connection resumes with room for a useful batch, not one message. The
   list moves to the wake_next links, which only this thread uses, so a
   connection may wait again at once while it is being woken. */
static zinx_conn_t *take_waiters(zinx__worker_t *w)
{
    if (w->wait_head == NULL || w->queued > w->capacity / 2)
        return NULL;
    zinx_conn_t *head = w->wait_head;
    for (zinx_conn_t *c = head; c != NULL;) {
        zinx__conn_links_t *l = zinx__conn_links(c);
        l->wake_next = l->wait_next;
        l->waiting = false;
        c = l->wake_next;
    }
    w->wait_head = w->wait_tail = NULL;
    return head;
}

static void wake_waiters(zinx_conn_t *c)
{
    while (c != NULL) {
        zinx_conn_t *next = zinx__conn_links(c)->wake_next;
        zinx__conn_poke(c);
        zinx_conn_unref(c);
        c = next;
    }
}

/* Appends t to the parked tasks of its connection. Under w->lock. */
static void park_locked(zinx__task_t *t)
{
    zinx__conn_links_t *l = zinx__conn_links(t->conn);
    t->next = NULL;
    if (l->parked_tail != NULL)
        l->parked_tail->next = t;
    else
        l->parked_head = t;
    l->parked_tail = t;
    zinx__conn_set_parked(t->conn, true);
}

/* The connection's output is above OutputHighWater: the rest of t waits.
   A finished connection is not parked (its loop unparks only once, when
   it finishes, under this lock). Returns false when t must go on. */
static bool park(zinx__worker_t *w, zinx__task_t *t)
{
    pthread_mutex_lock(&w->lock);
    bool parked = !zinx__conn_finished(t->conn);
    if (parked)
        park_locked(t);
    pthread_mutex_unlock(&w->lock);
    if (parked)
        zinx__conn_poke(t->conn); /* its loop unparks when output drains */
    return parked;
}

void zinx__worker_unpark(zinx__worker_t *w, zinx_conn_t *conn)
{
    zinx__conn_links_t *l = zinx__conn_links(conn);
    pthread_mutex_lock(&w->lock);
    zinx__task_t *head = l->parked_head, *tail = l->parked_tail;
    l->parked_head = l->parked_tail = NULL;
    zinx__conn_set_parked(conn, false);
    bool was_empty = w->head == NULL;
    if (head != NULL) {
        /* They were taken before anything now queued for conn. */
        for (zinx__task_t *t = head; t != NULL; t = t->next)
            w->queued += t->count - t->done;
        tail->next = w->head;
        w->head = head;
        if (w->tail == NULL)
            w->tail = tail;
    }
    pthread_mutex_unlock(&w->lock);
    if (head != NULL && was_empty)
        pthread_cond_signal(&w->cond);
}

/* Routes t's messages; returns false when the rest was parked. */
static bool run_msgs(zinx__worker_t *w, zinx__task_t *t)
{
    zinx_packet_format_t fmt = w->server->cfg.packet_format;
    uint32_t start = t->done;
    while (t->done < t->count) {
        if (zinx__conn_over_high_water(t->conn) && park(w, t)) {
            zinx__conn_batch_done(t->conn, t->done - start);
            return false;
        }
        zinx_msg_t m;
        /* Frames were validated when they were read; the limit is moot. */
        long n = zinx_unpack(fmt, UINT32_MAX, t->data + t->off,
                             t->size - t->off, &m);
        if (n <= 0)
            break;
        zinx__route_message(w->server, t->conn, &m);
        t->off += (uint32_t)n;
        t->done++;
    }
    zinx__conn_batch_done(t->conn, t->count - start);
    return true;
}

static void run_task(zinx__worker_t *w, zinx__task_t *t)
{
    switch (t->kind) {
    case ZINX__TASK_START:
        zinx__conn_run_start(t->conn);
        break;
    case ZINX__TASK_MSGS:
        if (!run_msgs(w, t))
            return; /* parked: the connection keeps it and its reference */
        break;
    case ZINX__TASK_STOP:
        zinx__conn_run_stop(t->conn);
        break;
    }
    /* A connection's own task may go with its last reference. */
    zinx_conn_t *conn = t->conn;
    if (t->origin != NULL)
        zinx__loop_recycle(t->origin, t);
    zinx_conn_unref(conn);
}

static zinx__task_t *next_task(zinx__worker_t *w, zinx_conn_t **waiters)
{
    zinx__task_t *t;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        if ((t = w->head) == NULL)
            break; /* stopping, and nothing left */
        w->head = t->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->queued -= t->count - t->done;
        if (*waiters == NULL)
            *waiters = take_waiters(w);
        if (zinx__conn_links(t->conn)->parked_head == NULL)
            break;
        park_locked(t); /* behind parked tasks of its connection: joins */
    }
    pthread_mutex_unlock(&w->lock);
    return t;
}

static void *worker_main(void *arg)
{
    zinx__worker_t *w = arg;
    for (;;) {
        zinx_conn_t *waiters = NULL;
        zinx__task_t *t = next_task(w, &waiters);
        if (t == NULL)
            break;
        wake_waiters(waiters);
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
    for (zinx_conn_t *c = w->wait_head; c != NULL;) {
        zinx_conn_t *next = zinx__conn_links(c)->wait_next;
        zinx_conn_unref(c);
        c = next;
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}

bool zinx__worker_is_self(const zinx__worker_t *w)
{
    return pthread_equal(pthread_self(), w->thread);
}
