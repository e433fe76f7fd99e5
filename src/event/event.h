/*
 * The reactor: one event loop per I/O thread.
 *
 * A loop knows three things and nothing of what uses them:
 *   - I/O handles: a descriptor with its own event callback (the
 *     backend's per-descriptor pointer points at the handle);
 *   - closures {fn, arg}: posted from any thread, or deferred by the loop
 *     thread to a later point of the same iteration;
 *   - timers on a heap.
 * A client (the connections of this thread) may hook the end of every
 * iteration and the quit (see zinx__loop_hooks_t).
 *
 * One iteration: wait; run the I/O callbacks; run posted closures (oldest
 * first); run deferred closures; fire due timers; run deferred closures
 * again; call the client's tick hook. So a closure deferred by an I/O
 * callback or a timer runs in the same iteration, after the events that
 * caused it.
 */
#ifndef ZINX_EVENT_H
#define ZINX_EVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "base/log.h"

/* Readiness, as the backend reports it and as a handle asks for it. The
   values are epoll's (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP), so that
   backend translates with a mask; another backend maps its own. */
enum {
    ZINX__EV_READ = 0x001,
    ZINX__EV_WRITE = 0x004,
    ZINX__EV_ERROR = 0x008, /* reported only */
    ZINX__EV_HUP = 0x010    /* reported only */
};

typedef struct zinx__loop zinx__loop_t;

/* ---- closures ------------------------------------------------------------ */

typedef void (*zinx__closure_fn)(void *arg);

/*
 * A unit of work, embedded in its owner so that scheduling it never
 * allocates (and works when memory is exhausted). `drop` (may be NULL)
 * runs instead of `fn` for a closure still posted when its loop is freed,
 * to release what the post held. A closure is on at most one list at a
 * time; its owner makes sure of that (a flag of its own).
 */
typedef struct zinx__closure {
    zinx__closure_fn fn;
    zinx__closure_fn drop;
    void *arg;
    struct zinx__closure *next;
} zinx__closure_t;

static inline void zinx__closure_init(zinx__closure_t *c, zinx__closure_fn fn,
                                      zinx__closure_fn drop, void *arg)
{
    c->fn = fn;
    c->drop = drop;
    c->arg = arg;
    c->next = NULL;
}

/* ---- I/O handles ------------------------------------------------------- */

typedef struct zinx__io zinx__io_t;
/* Loop thread: `events` is a mask of ZINX__EV_*. */
typedef void (*zinx__io_fn)(zinx__io_t *io, uint32_t events);

/* Embedded in its owner, which finds itself with ZINX__CONTAINER_OF. */
struct zinx__io {
    zinx__io_fn on_events;
    int fd;            /* -1 while not registered */
    uint32_t interest; /* ZINX__EV_READ | ZINX__EV_WRITE, as registered */
};

void zinx__io_init(zinx__io_t *io, zinx__io_fn on_events);
/* Loop thread: register fd with the given interest (may be 0). Returns 0
   or a negated errno. */
int zinx__io_start(zinx__loop_t *loop, zinx__io_t *io, int fd,
                   uint32_t interest);
/* Loop thread: change the interest; free when it is unchanged. */
int zinx__io_update(zinx__loop_t *loop, zinx__io_t *io, uint32_t interest);
/* Loop thread: unregister (the descriptor stays open; no-op if not
   registered). */
void zinx__io_stop(zinx__loop_t *loop, zinx__io_t *io);

/* ---- the loop ------------------------------------------------------------ */

/*
 * What the loop's client (the connections of this I/O thread) does at
 * the loop's fixed points. Every hook runs on the loop thread.
 *   tick:   end of every iteration (hand batches to workers, free what is
 *           dead);
 *   settle: while quitting, every iteration (and at least every 10 ms):
 *           let go of what may go; `force` once the quit deadline passed.
 *           Returns true when nothing is held any more, so the loop may
 *           leave;
 *   finish: after the loop left, on the loop thread, before it ends;
 *   timed:  NULL, or called at the end of every iteration with the ns
 *           it ran from its wake-up (the loop reads the clock in ns
 *           twice per iteration only when it is set).
 */
typedef struct zinx__loop_hooks {
    void (*tick)(void *arg);
    void (*timed)(void *arg, uint64_t ns);
    bool (*settle)(void *arg, bool force);
    void (*finish)(void *arg);
    void *arg;
} zinx__loop_hooks_t;

/* The backends a loop may run on. */
typedef enum zinx__backend_kind {
    ZINX__BACKEND_EPOLL,
    ZINX__BACKEND_URING
} zinx__backend_kind_t;

/* What a loop is made with. `buffers`: receive buffers of an io_uring
   loop (0: the default). */
typedef struct zinx__loop_conf {
    zinx__backend_kind_t backend;
    uint32_t buffers;
} zinx__loop_conf_t;

/* The loop and its backend; log may be NULL. Returns NULL with *err set
   to ZINX_ENOMEM, another negated errno for lack of descriptors, or why
   the kernel refused the backend (io_uring: ENOSYS, EPERM, EOPNOTSUPP,
   EINVAL...). */
zinx__loop_t *zinx__loop_new(zinx__logger_t *log, uint32_t index,
                             const zinx__loop_conf_t *conf, int *err);
/* The backend's name: "epoll" or "io_uring". */
const char *zinx__loop_backend_name(const zinx__loop_t *loop);
/* The completion interface (event/uring.h) of an io_uring loop, or NULL
   on epoll. Any thread may ask which it is (fixed when the loop is made;
   a connection made on another thread picks its stream type by it);
   only the loop thread uses the interface, or any thread before the
   loop starts (the listener lists its first accept so). */
struct zinx__uring *zinx__loop_uring(const zinx__loop_t *loop);
/* Before start. */
void zinx__loop_set_hooks(zinx__loop_t *loop, const zinx__loop_hooks_t *hooks);
int zinx__loop_start(zinx__loop_t *loop, const char *thread_name);
void zinx__loop_join(zinx__loop_t *loop);
/* After join (or without start). Posts still pending are dropped. */
void zinx__loop_free(zinx__loop_t *loop);
bool zinx__loop_is_self(const zinx__loop_t *loop);
/* The loop the calling thread runs, or NULL. Thread: any. */
const zinx__loop_t *zinx__loop_current(void);
/* Loop thread: CLOCK_MONOTONIC in ms as read after this iteration's wait
   (and again before its timers run). One read serves every event of the
   iteration: a busy loop would otherwise read the clock per message. */
uint64_t zinx__loop_now(const zinx__loop_t *loop);
uint32_t zinx__loop_index(const zinx__loop_t *loop);

/*
 * Any thread: run c on the loop thread at its next iteration, in posting
 * order. Lock-free and allocation-free. The caller makes sure c is posted
 * at most once at a time.
 */
void zinx__loop_post(zinx__loop_t *loop, zinx__closure_t *c);
/* Loop thread: run c later in this iteration (after the current event or
   timer). The caller makes sure c is deferred at most once at a time. */
void zinx__loop_defer(zinx__loop_t *loop, zinx__closure_t *c);
/* Any thread: leave once the settle hook says nothing is held, or at
   deadline_ms (CLOCK_MONOTONIC), whichever comes first. */
void zinx__loop_request_quit(zinx__loop_t *loop, uint64_t deadline_ms);
/* Loop thread: whether a quit was asked for. */
bool zinx__loop_quitting(const zinx__loop_t *loop);

/* Loop thread: timers of this loop. */
int zinx__loop_timer_arm(zinx__loop_t *loop, zinx__timer_t *t,
                         uint64_t deadline_ms);
void zinx__loop_timer_cancel(zinx__loop_t *loop, zinx__timer_t *t);
/* Loop thread: make room for n more armed timers, so that arming that
   many later cannot fail; give it back with a negative n. Returns 0 or
   ZINX_ENOMEM. */
int zinx__loop_reserve_timers(zinx__loop_t *loop, long n);

#endif /* ZINX_EVENT_H */
