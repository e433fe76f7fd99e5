/*
 * The readiness backend under the reactor. The loop calls only these
 * operations, so a second backend (io_uring, kqueue) is one new file that
 * fills a zinx__backend_ops_t.
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

typedef struct zinx__backend_ops {
    const char *name;
    /* Returns the backend's state, or NULL (errno set). */
    void *(*open)(void);
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
} zinx__backend_ops_t;

enum { ZINX__CTL_ADD, ZINX__CTL_MOD, ZINX__CTL_DEL };

extern const zinx__backend_ops_t zinx__backend_epoll;

#endif /* ZINX_EVENT_BACKEND_H */
