/*
 * Timers: run a function later, once or periodically, on a thread of the
 * server.
 *
 * A server timer runs on one of the server's I/O threads (keep it short,
 * as a handler with WorkerPoolSize 0). A connection timer runs where the
 * connection's handlers run (its worker, or its I/O thread with
 * WorkerPoolSize 0), in order with its messages, and never after its
 * OnConnStop: a connection timer due after the connection ended does not
 * run, and a periodic one stops.
 *
 * Every creating call returns 0 or a negative ZINX_E* code (ZINX_EINVAL,
 * ZINX_ENOMEM, ZINX_ESTATE when the server is not running, ZINX_ECLOSED
 * for a connection that has ended). With out non-NULL, *out is a handle
 * the caller owns and must give back with zinx_timer_cancel() (also after
 * a one-shot ran), before zinx_server_free(). With out NULL the timer is
 * not cancellable: a one-shot runs once, a periodic one until its
 * connection ends or its server stops. Timers stop firing when the server
 * stops. Creating calls may be made from any thread.
 */
#ifndef ZINX_TIMER_H
#define ZINX_TIMER_H

#include <stdint.h>

#include "zinx/conn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

typedef struct zinx_timer zinx_timer_t;

/* The timer's function. conn is the connection of a connection timer
   (valid during the call), NULL for a server timer. */
typedef void (*zinx_timer_fn)(zinx_timer_t *timer, zinx_conn_t *conn,
                              void *udata);

/* Runs fn once, delay_ms from now, on an I/O thread. */
int zinx_timer_after(zinx_server_t *server, uint64_t delay_ms, zinx_timer_fn fn,
                     void *udata, zinx_timer_t **out);
/* Runs fn every interval_ms (> 0), the first time interval_ms from now;
   runs missed while the thread was busy are skipped, not bunched. */
int zinx_timer_every(zinx_server_t *server, uint64_t interval_ms,
                     zinx_timer_fn fn, void *udata, zinx_timer_t **out);
/* Runs fn once at unix_ms (milliseconds since the Unix epoch, wall
   clock); a time in the past runs it at once. The wait is measured on the
   monotonic clock from the call, so later clock steps do not move it. */
int zinx_timer_at(zinx_server_t *server, int64_t unix_ms, zinx_timer_fn fn,
                  void *udata, zinx_timer_t **out);
/* Like zinx_timer_after() and zinx_timer_every(), on conn's handler
   thread (see above). The timer keeps a reference to conn. */
int zinx_conn_timer_after(zinx_conn_t *conn, uint64_t delay_ms,
                          zinx_timer_fn fn, void *udata, zinx_timer_t **out);
int zinx_conn_timer_every(zinx_conn_t *conn, uint64_t interval_ms,
                          zinx_timer_fn fn, void *udata, zinx_timer_t **out);

/*
 * Stops the timer and gives the handle back (it must not be used again).
 * When this returns, fn is not running and will not run again, except
 * when called from fn itself: then fn is not called again after it
 * returns. Returns 0, or ZINX_EINVAL for NULL. Thread: any.
 */
int zinx_timer_cancel(zinx_timer_t *timer);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_TIMER_H */
