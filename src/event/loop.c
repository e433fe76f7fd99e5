/*
 * The event loop (see event.h for what it knows and its iteration).
 *
 * Other threads talk to a loop only by posting closures (a lock-free
 * stack linked through the closures themselves, so posting never
 * allocates) and by the quit request, plus the backend's wake-up. The
 * wake-up is written only by the poster that finds `wake_pending` clear,
 * so a burst of posts costs one system call.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/backend.h"
#include "event/event.h"

#define LOOP_MAX_EVENTS 256
/* While quitting, how often the settle hook is asked again. */
#define LOOP_QUIT_POLL_MS 10

struct zinx__loop {
    const zinx__backend_ops_t *be;
    void *be_state;
    zinx__logger_t *log;
    uint32_t index;
    pthread_t thread;
    bool started;
    zinx__loop_hooks_t hooks;

    _Atomic(zinx__closure_t *) posted; /* pushed by any thread */
    atomic_bool wake_pending;
    atomic_bool quit_req;
    _Atomic uint64_t quit_req_deadline_ms;

    /* Loop thread only. */
    uint64_t now_ms;  /* read once per iteration, after the wait */
    uint64_t woke_ns; /* with hooks.timed: when the wait returned */
    bool quitting;
    uint64_t quit_deadline_ms;
    zinx__closure_t *deferred_head, *deferred_tail;
    zinx__timer_heap_t timers;
    size_t timers_reserved;
};

/* ---- I/O handles ------------------------------------------------------- */

void zinx__io_init(zinx__io_t *io, zinx__io_fn on_events)
{
    io->on_events = on_events;
    io->fd = -1;
    io->interest = 0;
}

int zinx__io_start(zinx__loop_t *loop, zinx__io_t *io, int fd,
                   uint32_t interest)
{
    int rc = loop->be->ctl(loop->be_state, fd, io, ZINX__CTL_ADD, interest);
    if (rc == 0) {
        io->fd = fd;
        io->interest = interest;
    }
    return rc;
}

int zinx__io_update(zinx__loop_t *loop, zinx__io_t *io, uint32_t interest)
{
    if (io->fd < 0 || interest == io->interest)
        return 0;
    int rc = loop->be->ctl(loop->be_state, io->fd, io, ZINX__CTL_MOD, interest);
    if (rc == 0)
        io->interest = interest;
    return rc;
}

void zinx__io_stop(zinx__loop_t *loop, zinx__io_t *io)
{
    if (io->fd < 0)
        return;
    loop->be->ctl(loop->be_state, io->fd, io, ZINX__CTL_DEL, 0);
    io->fd = -1;
    io->interest = 0;
}

/* ---- creation ------------------------------------------------------------ */

zinx__loop_t *zinx__loop_new(zinx__logger_t *log, uint32_t index,
                             const zinx__loop_conf_t *conf, int *err)
{
    zinx__loop_t *loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        *err = ZINX_ENOMEM;
        return NULL;
    }
    loop->be = conf->backend == ZINX__BACKEND_URING ? &zinx__backend_uring
                                                    : &zinx__backend_epoll;
    loop->log = log;
    loop->index = index;
    loop->now_ms = zinx__now_ms();
    zinx__backend_conf_t bc = {.buffers = conf->buffers,
                               .clock = &loop->now_ms};
    errno = 0;
    loop->be_state = loop->be->open(&bc);
    if (loop->be_state == NULL) {
        *err = errno != 0 ? -errno : ZINX_ENOMEM;
        free(loop);
        return NULL;
    }
    return loop;
}

const char *zinx__loop_backend_name(const zinx__loop_t *loop)
{
    return loop->be->name;
}

struct zinx__uring *zinx__loop_uring(const zinx__loop_t *loop)
{
    return loop->be->uring != NULL ? loop->be->uring(loop->be_state) : NULL;
}

void zinx__loop_set_hooks(zinx__loop_t *loop, const zinx__loop_hooks_t *hooks)
{
    loop->hooks = *hooks;
}

uint64_t zinx__loop_now(const zinx__loop_t *loop)
{
    return loop->now_ms;
}

bool zinx__loop_is_self(const zinx__loop_t *loop)
{
    return pthread_equal(pthread_self(), loop->thread);
}

uint32_t zinx__loop_index(const zinx__loop_t *loop)
{
    return loop->index;
}

/* ---- closures ------------------------------------------------------------ */

static void wake(zinx__loop_t *loop)
{
    if (!atomic_exchange(&loop->wake_pending, true))
        loop->be->wake(loop->be_state);
}

void zinx__loop_post(zinx__loop_t *loop, zinx__closure_t *c)
{
    zinx__closure_t *head = atomic_load(&loop->posted);
    do {
        c->next = head;
    } while (!atomic_compare_exchange_weak(&loop->posted, &head, c));
    wake(loop);
}

void zinx__loop_defer(zinx__loop_t *loop, zinx__closure_t *c)
{
    c->next = NULL;
    if (loop->deferred_tail != NULL)
        loop->deferred_tail->next = c;
    else
        loop->deferred_head = c;
    loop->deferred_tail = c;
}

/* Only this thread takes from the stack, all at once, so the classic
   lock-free-stack ABA problem cannot arise. Returns the posts oldest
   first. */
static zinx__closure_t *take_posted(zinx__loop_t *loop)
{
    zinx__closure_t *p = atomic_exchange(&loop->posted, NULL);
    zinx__closure_t *fifo = NULL;
    while (p != NULL) {
        zinx__closure_t *next = p->next;
        p->next = fifo;
        fifo = p;
        p = next;
    }
    return fifo;
}

static void run_posted(zinx__loop_t *loop)
{
    /* Cleared before the posts are taken: a post that lands after the take
       sees the flag clear and wakes the loop again (no lost wake-up). */
    atomic_store(&loop->wake_pending, false);
    zinx__closure_t *c = take_posted(loop);
    while (c != NULL) {
        /* Read before running: the closure may be posted again at once. */
        zinx__closure_t *next = c->next;
        c->fn(c->arg);
        c = next;
    }
}

static void run_deferred(zinx__loop_t *loop)
{
    while (loop->deferred_head != NULL) {
        zinx__closure_t *c = loop->deferred_head;
        loop->deferred_head = c->next;
        if (loop->deferred_head == NULL)
            loop->deferred_tail = NULL;
        c->fn(c->arg);
    }
}

void zinx__loop_request_quit(zinx__loop_t *loop, uint64_t deadline_ms)
{
    atomic_store(&loop->quit_req_deadline_ms, deadline_ms);
    atomic_store(&loop->quit_req, true);
    wake(loop);
}

bool zinx__loop_quitting(const zinx__loop_t *loop)
{
    return loop->quitting;
}

/* ---- timers -------------------------------------------------------------- */

int zinx__loop_timer_arm(zinx__loop_t *loop, zinx__timer_t *t,
                         uint64_t deadline_ms)
{
    return zinx__timer_heap_arm(&loop->timers, t, deadline_ms);
}

void zinx__loop_timer_cancel(zinx__loop_t *loop, zinx__timer_t *t)
{
    zinx__timer_heap_cancel(&loop->timers, t);
}

int zinx__loop_reserve_timers(zinx__loop_t *loop, long n)
{
    if (n < 0) {
        loop->timers_reserved -= (size_t)-n;
        return 0;
    }
    if (zinx__timer_heap_reserve(&loop->timers,
                                 loop->timers_reserved + (size_t)n) != 0)
        return ZINX_ENOMEM;
    loop->timers_reserved += (size_t)n;
    return 0;
}

/* ---- the thread ---------------------------------------------------------- */

static int min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    return b < 0 || a < b ? a : b;
}

/* Milliseconds until the earliest armed timer, or -1 without one. Asked
   after the tick, which may have armed or cancelled timers itself. */
static int next_timeout(const zinx__loop_t *loop)
{
    if (loop->timers.count == 0)
        return -1;
    uint64_t now = loop->now_ms;
    uint64_t d = loop->timers.items[0]->deadline_ms;
    return d <= now ? 0 : (d - now > INT32_MAX ? INT32_MAX : (int)(d - now));
}

/* Quitting: true once the loop may exit; else *timeout bounds the wait
   until the client is asked again. */
static bool quit_done(zinx__loop_t *loop, int *timeout)
{
    bool force = zinx__now_ms() >= loop->quit_deadline_ms;
    bool settled = loop->hooks.settle == NULL ||
                   loop->hooks.settle(loop->hooks.arg, force);
    /* What was posted before the quit runs first, and what the settle
       deferred (a closed stream's release) runs before the loop leaves:
       a deferred closure is never dropped. */
    if (atomic_load(&loop->posted) != NULL || loop->deferred_head != NULL) {
        *timeout = 0;
        return false;
    }
    if (settled)
        return true;
    *timeout = min_timeout(*timeout, LOOP_QUIT_POLL_MS);
    return false;
}

static void note_quit(zinx__loop_t *loop)
{
    if (loop->quitting || !atomic_load(&loop->quit_req))
        return;
    loop->quitting = true;
    loop->quit_deadline_ms = atomic_load(&loop->quit_req_deadline_ms);
}

static bool wait_and_dispatch(zinx__loop_t *loop, int timeout)
{
    zinx__ready_t ready[LOOP_MAX_EVENTS];
    int n = loop->be->wait(loop->be_state, ready, LOOP_MAX_EVENTS, timeout);
    if (n < 0) {
        if (loop->log != NULL)
            zinx__logger_logf(loop->log, ZINX_LOG_ERROR, "%s wait: %s",
                              loop->be->name, zinx_strerror(n));
        return false;
    }
    if (loop->hooks.timed != NULL)
        loop->woke_ns = zinx__now_ns();
    loop->now_ms = zinx__now_ms();
    bool woken = false;
    for (int i = 0; i < n; i++) {
        zinx__io_t *io = ready[i].ptr;
        if (io == NULL)
            woken = true;
        else
            io->on_events(io, ready[i].events);
    }
    if (woken) {
        run_posted(loop);
        note_quit(loop);
    }
    return true;
}

/* The loop this thread runs, NULL on other threads: read only by the
   thread that wrote it, so asking needs no synchronisation with loops
   starting elsewhere (as work/worker.c's self_worker). */
static _Thread_local const zinx__loop_t *self_loop;

const zinx__loop_t *zinx__loop_current(void)
{
    return self_loop;
}

static void *loop_main(void *arg)
{
    zinx__loop_t *loop = arg;
    self_loop = loop;
    int timeout = -1;
    for (;;) {
        if (!wait_and_dispatch(loop, timeout))
            break;
        run_deferred(loop);
        loop->now_ms = zinx__now_ms();
        zinx__timer_heap_run(&loop->timers, loop->now_ms);
        run_deferred(loop); /* timers may have deferred work */
        if (loop->hooks.tick != NULL)
            loop->hooks.tick(loop->hooks.arg);
        if (loop->hooks.timed != NULL)
            loop->hooks.timed(loop->hooks.arg, zinx__now_ns() - loop->woke_ns);
        /* The tick may have armed a timer or deferred work. */
        timeout = loop->deferred_head != NULL ? 0 : next_timeout(loop);
        if (loop->quitting && quit_done(loop, &timeout))
            break;
    }
    if (loop->hooks.finish != NULL)
        loop->hooks.finish(loop->hooks.arg);
    return NULL;
}

int zinx__loop_start(zinx__loop_t *loop, const char *thread_name)
{
    int rc = zinx__thread_spawn(&loop->thread, loop_main, loop, thread_name);
    if (rc == 0)
        loop->started = true;
    return rc;
}

void zinx__loop_join(zinx__loop_t *loop)
{
    if (!loop->started)
        return;
    pthread_join(loop->thread, NULL);
    loop->started = false;
}

void zinx__loop_free(zinx__loop_t *loop)
{
    if (loop == NULL)
        return;
    /* Posts that raced with the quit still hold what they hold. */
    zinx__closure_t *c = take_posted(loop);
    while (c != NULL) {
        zinx__closure_t *next = c->next;
        if (c->drop != NULL)
            c->drop(c->arg);
        c = next;
    }
    zinx__timer_heap_free(&loop->timers);
    loop->be->close(loop->be_state);
    free(loop);
}
