/*
 * The bottom layer: byte buffers, the timer heap, threads and the clock.
 * Nothing here knows of loops, connections or servers.
 */
#ifndef ZINX_BASE_H
#define ZINX_BASE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "zinx.h"

#define ZINX__UNUSED(x) ((void)(x))

/* The struct that holds `ptr` in its `member`. */
#define ZINX__CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* CLOCK_MONOTONIC in milliseconds. Thread: any. */
uint64_t zinx__now_ms(void);
/* CLOCK_MONOTONIC in nanoseconds. Thread: any. */
uint64_t zinx__now_ns(void);

/* ---- token.c ---------------------------------------------------------- */

/* Whether s is 1..max_len characters of [A-Za-z0-9_-]: a name that goes
   into a NATS subject unescaped. Thread: any. */
bool zinx__is_token(const char *s, size_t max_len);

/* ---- buf.c ------------------------------------------------------------ */

/* Bytes data[off..len) are live; data[0..off) were consumed already. */
typedef struct zinx__buf {
    uint8_t *data;
    size_t off;
    size_t len;
    size_t cap;
} zinx__buf_t;

/* Makes room for `more` bytes after len. Returns 0 or ZINX_ENOMEM. */
int zinx__buf_reserve(zinx__buf_t *b, size_t more);
int zinx__buf_append(zinx__buf_t *b, const void *data, size_t n);
static inline size_t zinx__buf_size(const zinx__buf_t *b)
{
    return b->len - b->off;
}
/* NULL for a buffer that holds no allocation (NULL + 0 is undefined). */
static inline const uint8_t *zinx__buf_head(const zinx__buf_t *b)
{
    return b->data != NULL ? b->data + b->off : NULL;
}
void zinx__buf_consume(zinx__buf_t *b, size_t n);
void zinx__buf_free(zinx__buf_t *b);
/* Moves src's bytes to the end of dst, leaving src empty (exchanging the
   allocations when dst is empty). */
int zinx__buf_move(zinx__buf_t *dst, zinx__buf_t *src);

/* ---- timer_heap.c ------------------------------------------------------ */

typedef struct zinx__timer zinx__timer_t;
typedef void (*zinx__timer_fn)(zinx__timer_t *timer, void *arg);

/* Embedded in its owner; armed and fired on one thread only. */
struct zinx__timer {
    uint64_t deadline_ms; /* CLOCK_MONOTONIC */
    size_t heap_index;    /* SIZE_MAX while not armed */
    zinx__timer_fn fn;
    void *arg;
};

typedef struct zinx__timer_heap {
    zinx__timer_t **items;
    size_t count, cap;
} zinx__timer_heap_t;

void zinx__timer_init(zinx__timer_t *t, zinx__timer_fn fn, void *arg);
bool zinx__timer_armed(const zinx__timer_t *t);
/* Arms or moves t. Returns 0 or ZINX_ENOMEM. */
int zinx__timer_heap_arm(zinx__timer_heap_t *h, zinx__timer_t *t,
                         uint64_t deadline_ms);
void zinx__timer_heap_cancel(zinx__timer_heap_t *h, zinx__timer_t *t);
/* Grows the heap to hold count timers, so that arming up to that many
   never fails. Returns 0 or ZINX_ENOMEM. */
int zinx__timer_heap_reserve(zinx__timer_heap_t *h, size_t count);
/* Fires every due timer; returns ms until the next one, or -1 if none. */
int zinx__timer_heap_run(zinx__timer_heap_t *h, uint64_t now_ms);
void zinx__timer_heap_free(zinx__timer_heap_t *h);

/* ---- thread.c --------------------------------------------------------- */

/* Starts fn(arg) on a new thread with every signal blocked and the given
   name; *self is set by the new thread before this returns. Returns 0 or
   a negated errno. */
int zinx__thread_spawn(pthread_t *self, void *(*fn)(void *), void *arg,
                       const char *name);
/* Starts fn(arg) on a new thread with every signal blocked, without
   waiting for it to run (spawn's hand-shake costs the caller a context
   switch, which an event loop making threads on demand cannot afford).
   *out is set on return. Returns 0 or a negated errno. */
int zinx__thread_start(pthread_t *out, void *(*fn)(void *), void *arg);
/* Names the calling thread (the first 15 bytes are kept). */
void zinx__thread_name_self(const char *name);
/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
void zinx__cond_init_monotonic(pthread_cond_t *cond);
/* The absolute timespec for pthread_cond_timedwait on such a variable. */
struct timespec zinx__deadline_ts(uint64_t deadline_ms);

#endif /* ZINX_BASE_H */
