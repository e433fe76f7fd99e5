/*
 * The worker pool: threads that run jobs from bounded FIFO queues.
 *
 * A job is a closure with a link, embedded in (or allocated with) its
 * owner. The pool knows nothing of what a job does. Two notions keep a
 * connection's work in order and bounded without the pool knowing it:
 *   - a lane: the jobs of one owner. A job may park itself on its lane
 *     (its owner cannot take more now); later jobs of the same lane join
 *     it as they come up, and unparking puts them all back at the front
 *     of the queue, in order. A closed lane parks nothing.
 *   - a reservation: jobs with a weight (messages) count against the
 *     queue's capacity; a producer that got less room than it asked for
 *     leaves a waiter, woken once half the queue is free again.
 */
#ifndef ZINX_WORK_WORKER_H
#define ZINX_WORK_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "event/event.h"

typedef struct zinx__worker zinx__worker_t;
typedef struct zinx__job zinx__job_t;

/* Worker thread: run job. Returns true when the job is done with (the
   pool never touches it again), false when it parked itself with
   zinx__worker_park() and will run again later. */
typedef bool (*zinx__job_fn)(zinx__worker_t *w, zinx__job_t *job);

typedef struct zinx__lane {
    /* The worker's lock. */
    zinx__job_t *parked_head, *parked_tail;
    bool closed;
    /* Mirrors parked_head != NULL, for reading without the lock. */
    atomic_bool parked;
} zinx__lane_t;

struct zinx__job {
    zinx__job_t *next;
    zinx__job_fn run;
    zinx__lane_t *lane; /* NULL: no ordering with other jobs */
    uint32_t weight;    /* reserved units still to run (messages) */
};

typedef struct zinx__waiter zinx__waiter_t;

/* What a waiter's owner does; a constant table, so a waiter costs four
   words in its owner. */
typedef struct zinx__waiter_ops {
    /* Takes a hold on the owner (a reference); called under the worker's
       lock when the waiter is listed. */
    void (*keep)(zinx__waiter_t *w);
    /* Worker thread, once room frees up; it owns what keep took. */
    void (*wake)(zinx__waiter_t *w);
} zinx__waiter_ops_t;

struct zinx__waiter {
    const zinx__waiter_ops_t *ops;
    zinx__waiter_t *wait_next, *wake_next;
    bool waiting; /* the worker's lock */
};

static inline void zinx__job_init(zinx__job_t *job, zinx__job_fn run,
                                  zinx__lane_t *lane, uint32_t weight)
{
    job->next = NULL;
    job->run = run;
    job->lane = lane;
    job->weight = weight;
}

zinx__worker_t *zinx__worker_new(uint32_t id, uint32_t capacity);
/* The id given at creation (small: producers index tables with it). */
uint32_t zinx__worker_id(const zinx__worker_t *w);
/* Worker thread only: a byte buffer kept across jobs, which a job may use
   as scratch (and leaves empty). Freed with the worker. */
/* Messages reserved or queued on w and not yet taken: its queue depth,
   as any thread may read it (relaxed). */
uint32_t zinx__worker_queued(const zinx__worker_t *w);
zinx__buf_t *zinx__worker_scratch(zinx__worker_t *w);
/* Starts the thread and waits until it runs (named, as the other
   framework threads). Returns 0 or a negated errno. */
int zinx__worker_start(zinx__worker_t *w);
/* Starts the thread without waiting for it to run: costs the caller
   pthread_create only, not a context switch (an I/O thread making a
   worker on demand). The thread names itself. */
int zinx__worker_start_async(zinx__worker_t *w);
/* Lets the worker finish its queue, then joins it. */
void zinx__worker_stop(zinx__worker_t *w);
/* After stop: wakes (runs) the waiters still listed, then frees. */
void zinx__worker_free(zinx__worker_t *w);
/* Whether the calling thread is w's (any thread). */
bool zinx__worker_is_self(const zinx__worker_t *w);
/* The worker whose thread calls, NULL on any other thread. */
const zinx__worker_t *zinx__worker_current(void);
/* Who made the worker (a pool), set before it starts; read by any thread
   that found the worker with zinx__worker_current(). */
void zinx__worker_set_owner(zinx__worker_t *w, void *owner);
void *zinx__worker_owner(const zinx__worker_t *w);

/*
 * Worker thread from inside its last job, or any thread while nothing is
 * queued: the thread ends once its queue is empty (nobody may queue for
 * it any more), without being joined; the struct stays valid for
 * whatever still points at it.
 */
void zinx__worker_retire(zinx__worker_t *w);
/* Any thread but w's, once w retired: joins the ended thread, wakes the
   waiters still listed and starts a new thread as
   zinx__worker_start_async() does. Returns 0 or what
   starting a thread returned (w is then stopped). */
int zinx__worker_revive(zinx__worker_t *w);

/*
 * Any thread: reserves room for up to `want` units; returns how many were
 * granted. When fewer, waiter is listed (once) and woken when room frees.
 */
uint32_t zinx__worker_reserve(zinx__worker_t *w, zinx__waiter_t *waiter,
                              uint32_t want);
/* Any thread: gives back units that will not be used. */
void zinx__worker_unreserve(zinx__worker_t *w, uint32_t count);
/* Any thread: queues a chain of jobs linked through next (their weight
   reserved), with one lock and one wake-up. */
void zinx__worker_push_list(zinx__worker_t *w, zinx__job_t *head,
                            zinx__job_t *tail);
void zinx__worker_push(zinx__worker_t *w, zinx__job_t *job);
/* Worker thread, from inside job's run: parks job (its weight the units
   it still has to run) on its lane. Returns false, parking nothing, when
   the lane is closed: the job must go on. */
bool zinx__worker_park(zinx__worker_t *w, zinx__job_t *job);
/* Any thread: puts the lane's parked jobs back at the front of the
   queue, in order. */
void zinx__worker_unpark(zinx__worker_t *w, zinx__lane_t *lane);
/* Any thread: the lane parks nothing from now on; what it holds goes
   back to the queue. */
void zinx__worker_close_lane(zinx__worker_t *w, zinx__lane_t *lane);

#endif /* ZINX_WORK_WORKER_H */
