/*
 * Public timers (zinx/timer.h), the first users of the reactor's closures
 * and timers.
 *
 * A timer lives on one loop (its connection's, or one picked round-robin).
 * It is armed there by a posted closure and fires there; a server timer
 * runs its function on that thread, a connection timer hands it to the
 * connection's handler thread as a job (conn/work.c), so it keeps the
 * connection's order and its end.
 *
 * References: the creator's handle (when asked for), the loop's from
 * creation until the timer leaves the heap for good, and each job in
 * flight. Every live timer is listed in its server, so that a stop
 * releases the loop's references of timers still armed.
 *
 * Cancelling marks the timer under its lock and waits for a run in
 * progress on another thread, so that after zinx_timer_cancel() the
 * function neither runs nor will run.
 */
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "zinx/timer.h"

struct zinx_timer {
    atomic_uint refs;
    zinx_server_t *server;
    zinx__loop_t *loop;
    zinx_conn_t *conn; /* a reference, or NULL */
    zinx_timer_fn fn;
    void *udata;
    uint64_t delay_ms, interval_ms;
    zinx__timer_t heap;             /* loop thread */
    bool loop_held;                 /* loop thread: the loop's reference */
    zinx__closure_t arm, disarm;    /* posted to the loop */
    struct zinx_timer *prev, *next; /* the server's list, its lock */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool cancelled;
    int running;      /* runs in progress */
    pthread_t runner; /* the thread of the run in progress */
};

static zinx_timer_t *timer_ref(zinx_timer_t *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

static void unlist(zinx_timer_t *t)
{
    zinx_server_t *s = t->server;
    pthread_mutex_lock(&s->lock);
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        s->timers = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&s->lock);
}

static void timer_unref(zinx_timer_t *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    unlist(t);
    zinx_conn_unref(t->conn);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t);
}

/* Loop thread (or the stopping thread once loops are gone). */
static void release_loop(zinx_timer_t *t)
{
    if (!t->loop_held)
        return;
    t->loop_held = false;
    timer_unref(t);
}

/* ---- running ------------------------------------------------------------- */

static bool begin_run(zinx_timer_t *t)
{
    pthread_mutex_lock(&t->lock);
    bool go = !t->cancelled;
    if (go) {
        t->running++;
        t->runner = pthread_self();
    }
    pthread_mutex_unlock(&t->lock);
    return go;
}

static void end_run(zinx_timer_t *t)
{
    pthread_mutex_lock(&t->lock);
    if (--t->running == 0)
        pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static void run_user(zinx_timer_t *t, zinx_conn_t *conn)
{
    if (!begin_run(t))
        return;
    t->fn(t, conn, t->udata);
    end_run(t);
}

/* A connection timer's job, on the connection's handler thread. */
static void conn_job(zinx_conn_t *conn, void *arg)
{
    zinx_timer_t *t = arg;
    run_user(t, conn);
    timer_unref(t); /* the job's */
}

static bool is_cancelled(zinx_timer_t *t)
{
    pthread_mutex_lock(&t->lock);
    bool c = t->cancelled;
    pthread_mutex_unlock(&t->lock);
    return c;
}

/* Runs missed while the thread was busy are skipped, not bunched. */
static void rearm(zinx_timer_t *t, uint64_t now)
{
    uint64_t next = t->heap.deadline_ms + t->interval_ms;
    if (next <= now)
        next = now + t->interval_ms;
    if (zinx__loop_timer_arm(t->loop, &t->heap, next) != 0)
        release_loop(t); /* out of memory: the timer stops */
}

/* Loop thread: due. Returns whether the timer goes on. */
static bool fire(zinx_timer_t *t)
{
    if (t->conn == NULL) {
        run_user(t, NULL);
        return true;
    }
    timer_ref(t);
    if (zinx__conn_run_soon(t->conn, conn_job, t) == 0)
        return true;
    timer_unref(t); /* the connection ended (or no memory): stop */
    return false;
}

static void on_due(zinx__timer_t *ht, void *arg)
{
    ZINX__UNUSED(ht);
    zinx_timer_t *t = arg;
    if (is_cancelled(t) || !fire(t) || t->interval_ms == 0 || is_cancelled(t)) {
        release_loop(t);
        return;
    }
    rearm(t, zinx__now_ms());
}

/* ---- arming and disarming (posted) --------------------------------------- */

static void run_arm(void *arg)
{
    zinx_timer_t *t = arg;
    if (is_cancelled(t) ||
        zinx__loop_timer_arm(t->loop, &t->heap, zinx__now_ms() + t->delay_ms))
        release_loop(t);
}

static void run_disarm(void *arg)
{
    zinx_timer_t *t = arg;
    if (t->loop_held) {
        zinx__loop_timer_cancel(t->loop, &t->heap);
        release_loop(t);
    }
    timer_unref(t); /* the post's */
}

/* The loop was freed with the closure still posted. */
static void drop_posted(void *arg)
{
    zinx_timer_t *t = arg;
    release_loop(t);
}

static void drop_disarm(void *arg)
{
    zinx_timer_t *t = arg;
    release_loop(t);
    timer_unref(t);
}

/* ---- creation ------------------------------------------------------------ */

static void list_timer(zinx_server_t *s, zinx_timer_t *t)
{
    t->prev = NULL;
    t->next = s->timers;
    if (s->timers != NULL)
        s->timers->prev = t;
    s->timers = t;
}

static int start(zinx_server_t *s, zinx__loop_t *loop, zinx_conn_t *conn,
                 zinx_timer_fn fn, void *udata, uint64_t delay_ms,
                 uint64_t interval_ms, zinx_timer_t **out)
{
    zinx_timer_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ZINX_ENOMEM;
    atomic_init(&t->refs, out != NULL ? 2u : 1u);
    t->server = s;
    t->conn = conn != NULL ? zinx_conn_ref(conn) : NULL;
    t->fn = fn;
    t->udata = udata;
    t->delay_ms = delay_ms;
    t->interval_ms = interval_ms;
    t->loop_held = true;
    zinx__timer_init(&t->heap, on_due, t);
    zinx__closure_init(&t->arm, run_arm, drop_posted, t);
    zinx__closure_init(&t->disarm, run_disarm, drop_disarm, t);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    pthread_mutex_lock(&s->lock);
    bool running = atomic_load(&s->state) == ZINX__SERVER_RUNNING;
    if (running) {
        t->loop =
            loop != NULL ? loop : zinx__shard_loop(zinx__server_pick_shard(s));
        list_timer(s, t);
        zinx__loop_post(t->loop, &t->arm);
    }
    pthread_mutex_unlock(&s->lock);
    if (!running) {
        zinx_conn_unref(t->conn);
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
        free(t);
        return ZINX_ESTATE;
    }
    if (out != NULL)
        *out = t;
    return 0;
}

int zinx_timer_after(zinx_server_t *s, uint64_t delay_ms, zinx_timer_fn fn,
                     void *udata, zinx_timer_t **out)
{
    if (s == NULL || fn == NULL)
        return ZINX_EINVAL;
    return start(s, NULL, NULL, fn, udata, delay_ms, 0, out);
}

int zinx_timer_every(zinx_server_t *s, uint64_t interval_ms, zinx_timer_fn fn,
                     void *udata, zinx_timer_t **out)
{
    if (s == NULL || fn == NULL || interval_ms == 0)
        return ZINX_EINVAL;
    return start(s, NULL, NULL, fn, udata, interval_ms, interval_ms, out);
}

int zinx_timer_at(zinx_server_t *s, int64_t unix_ms, zinx_timer_fn fn,
                  void *udata, zinx_timer_t **out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    uint64_t delay = unix_ms > now ? (uint64_t)(unix_ms - now) : 0;
    return zinx_timer_after(s, delay, fn, udata, out);
}

int zinx_conn_timer_after(zinx_conn_t *conn, uint64_t delay_ms,
                          zinx_timer_fn fn, void *udata, zinx_timer_t **out)
{
    if (conn == NULL || fn == NULL)
        return ZINX_EINVAL;
    if (!zinx_conn_is_open(conn))
        return ZINX_ECLOSED;
    return start(zinx_conn_server(conn), zinx__conn_loop(conn), conn, fn, udata,
                 delay_ms, 0, out);
}

int zinx_conn_timer_every(zinx_conn_t *conn, uint64_t interval_ms,
                          zinx_timer_fn fn, void *udata, zinx_timer_t **out)
{
    if (conn == NULL || fn == NULL || interval_ms == 0)
        return ZINX_EINVAL;
    if (!zinx_conn_is_open(conn))
        return ZINX_ECLOSED;
    return start(zinx_conn_server(conn), zinx__conn_loop(conn), conn, fn, udata,
                 interval_ms, interval_ms, out);
}

/* ---- cancel and stop -------------------------------------------------- */

/* Marks t cancelled and waits out a run on another thread. */
static void stop_runs(zinx_timer_t *t)
{
    pthread_mutex_lock(&t->lock);
    t->cancelled = true;
    while (t->running > 0 && !pthread_equal(t->runner, pthread_self()))
        pthread_cond_wait(&t->cond, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

int zinx_timer_cancel(zinx_timer_t *t)
{
    if (t == NULL)
        return ZINX_EINVAL;
    stop_runs(t);
    zinx_server_t *s = t->server;
    /* Off the heap on its loop; after the stop the loop is gone and
       zinx__timers_release() has let go already. */
    pthread_mutex_lock(&s->lock);
    if (atomic_load(&s->state) == ZINX__SERVER_RUNNING)
        zinx__loop_post(t->loop, &timer_ref(t)->disarm);
    pthread_mutex_unlock(&s->lock);
    timer_unref(t); /* the handle's */
    return 0;
}

void zinx__timers_release(zinx_server_t *s)
{
    /* The loops are joined: their references are released here, with
       nothing running concurrently on the loops. */
    for (;;) {
        pthread_mutex_lock(&s->lock);
        zinx_timer_t *t = s->timers;
        while (t != NULL && !t->loop_held)
            t = t->next;
        if (t != NULL)
            timer_ref(t);
        pthread_mutex_unlock(&s->lock);
        if (t == NULL)
            return;
        release_loop(t);
        timer_unref(t);
    }
}
