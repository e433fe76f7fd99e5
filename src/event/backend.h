/*
 * The backend under the reactor. The loop calls only these operations,
 * so a backend (epoll, io_uring; kqueue would be one more) is one file
 * that fills a zinx__backend_ops_t.
 *
 * Every backend offers readiness (ctl, wait) and the wake-up. A
 * completion backend also offers, through `uring`, the completion-style
 * operations of event/uring.h, which its streams and listener use
 * directly; the loop itself only waits.
 */
#ifndef ZINX_EVENT_BACKEND_H
#define ZINX_EVENT_BACKEND_H

#include <stdint.h>

/* One readiness report: the pointer registered with the descriptor (NULL
   for the backend's own wake-up) and a mask of ZINX__EV_*. */
typedef struct zinx__ready {
    void *ptr;
    uint32_t events;
} zinx__ready_t;

/* What a loop asks of its backend when opening it. */
typedef struct zinx__backend_conf {
    uint32_t buffers; /* io_uring: receive buffers per loop; 0: default */
    /* The loop's clock (zinx__loop_now()). A backend that runs callbacks
       inside wait() (completions) sets it to zinx__now_ms() when the wait
       returns, before the first callback, so that they never see the
       time from before a long wait. */
    uint64_t *clock;
} zinx__backend_conf_t;

typedef struct zinx__uring zinx__uring_t;

typedef struct zinx__backend_ops {
    const char *name;
    /* Returns the backend's state, or NULL (errno set: ENOMEM, or why the
       kernel refused the backend). */
    void *(*open)(const zinx__backend_conf_t *conf);
    void (*close)(void *state);
    /* ZINX__CTL_ADD, _MOD or _DEL of fd, with an interest mask of
       ZINX__EV_READ | ZINX__EV_WRITE. Returns 0 or a negated errno. */
    int (*ctl)(void *state, int fd, void *ptr, int op, uint32_t interest);
    /* Waits up to timeout_ms (-1: forever) and fills out[0..max).
       Returns the count, 0 on timeout or interruption, or a negated
       errno. A wake-up is reported as one entry with ptr NULL; the
       backend has consumed it already. */
    int (*wait)(void *state, zinx__ready_t *out, int max, int timeout_ms);
    /* Any thread: make a wait return (or the next one return at once). */
    void (*wake)(void *state);
    /* The completion interface (event/uring.h); NULL for a readiness-only
       backend. A completion backend may run completion handlers and
       notifications inside wait. */
    zinx__uring_t *(*uring)(void *state);
} zinx__backend_ops_t;

enum { ZINX__CTL_ADD, ZINX__CTL_MOD, ZINX__CTL_DEL };

extern const zinx__backend_ops_t zinx__backend_epoll;
extern const zinx__backend_ops_t zinx__backend_uring;

#endif /* ZINX_EVENT_BACKEND_H */
