/*
 * The worker pool (see worker.h): one thread per worker, each draining
 * its own FIFO of jobs.
 *
 * Jobs without weight (a connection's start and stop, async completions)
 * do not count against the capacity: refusing them could lose a hook or
 * an answer, and their number is bounded by their owners.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "work/worker.h"

struct zinx__worker {
    uint32_t id;
    uint32_t capacity; /* units (messages) */
    pthread_t thread;
    bool started;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    zinx__job_t *head, *tail;
    uint32_t queued; /* units reserved or queued, not yet taken */
    bool stopping;
    zinx__waiter_t *wait_head, *wait_tail;
};

zinx__worker_t *zinx__worker_new(uint32_t id, uint32_t capacity)
{
    zinx__worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->id = id;
    w->capacity = capacity;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    return w;
}

/* ---- reservations -------------------------------------------------------- */

static void add_waiter(zinx__worker_t *w, zinx__waiter_t *wt)
{
    if (wt->waiting)
        return;
    wt->waiting = true;
    wt->wait_next = NULL;
    wt->ops->keep(wt);
    if (w->wait_tail != NULL)
        w->wait_tail->wait_next = wt;
    else
        w->wait_head = wt;
    w->wait_tail = wt;
}

uint32_t zinx__worker_reserve(zinx__worker_t *w, zinx__waiter_t *waiter,
                              uint32_t want)
{
    pthread_mutex_lock(&w->lock);
    uint32_t room = w->capacity - w->queued;
    uint32_t granted = want < room ? want : room;
    w->queued += granted;
    if (granted < want)
        add_waiter(w, waiter);
    pthread_mutex_unlock(&w->lock);
    return granted;
}

void zinx__worker_unreserve(zinx__worker_t *w, uint32_t count)
{
    pthread_mutex_lock(&w->lock);
    w->queued -= count;
    pthread_mutex_unlock(&w->lock);
}

/* Hands the waiters back once half the queue is free again, so a paused
   producer resumes with room for a useful batch, not one message. The
   list moves to the wake_next links, which only this thread uses, so a
   waiter may wait again at once while it is being woken. */
static zinx__waiter_t *take_waiters(zinx__worker_t *w)
{
    if (w->wait_head == NULL || w->queued > w->capacity / 2)
        return NULL;
    zinx__waiter_t *head = w->wait_head;
    for (zinx__waiter_t *wt = head; wt != NULL; wt = wt->wake_next) {
        wt->wake_next = wt->wait_next;
        wt->waiting = false;
    }
    w->wait_head = w->wait_tail = NULL;
    return head;
}

static void wake_waiters(zinx__waiter_t *wt)
{
    while (wt != NULL) {
        zinx__waiter_t *next = wt->wake_next;
        wt->ops->wake(wt);
        wt = next;
    }
}

/* ---- the queue ----------------------------------------------------------- */

void zinx__worker_push_list(zinx__worker_t *w, zinx__job_t *head,
                            zinx__job_t *tail)
{
    tail->next = NULL;
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

void zinx__worker_push(zinx__worker_t *w, zinx__job_t *job)
{
    zinx__worker_push_list(w, job, job);
}

/* Appends job to its lane's parked jobs. Under w->lock. */
static void park_locked(zinx__job_t *job)
{
    zinx__lane_t *l = job->lane;
    job->next = NULL;
    if (l->parked_tail != NULL)
        l->parked_tail->next = job;
    else
        l->parked_head = job;
    l->parked_tail = job;
    atomic_store(&l->parked, true);
}

bool zinx__worker_park(zinx__worker_t *w, zinx__job_t *job)
{
    pthread_mutex_lock(&w->lock);
    bool parked = job->lane != NULL && !job->lane->closed;
    if (parked)
        park_locked(job);
    pthread_mutex_unlock(&w->lock);
    return parked;
}

/* Under w->lock. Returns true when the queue was empty before. */
static bool unpark_locked(zinx__worker_t *w, zinx__lane_t *lane)
{
    zinx__job_t *head = lane->parked_head, *tail = lane->parked_tail;
    lane->parked_head = lane->parked_tail = NULL;
    atomic_store(&lane->parked, false);
    if (head == NULL)
        return false;
    bool was_empty = w->head == NULL;
    /* They were taken before anything now queued for the lane. */
    for (zinx__job_t *j = head; j != NULL; j = j->next)
        w->queued += j->weight;
    tail->next = w->head;
    w->head = head;
    if (w->tail == NULL)
        w->tail = tail;
    return was_empty;
}

void zinx__worker_unpark(zinx__worker_t *w, zinx__lane_t *lane)
{
    pthread_mutex_lock(&w->lock);
    bool signal = unpark_locked(w, lane);
    pthread_mutex_unlock(&w->lock);
    if (signal)
        pthread_cond_signal(&w->cond);
}

void zinx__worker_close_lane(zinx__worker_t *w, zinx__lane_t *lane)
{
    pthread_mutex_lock(&w->lock);
    lane->closed = true;
    bool signal = unpark_locked(w, lane);
    pthread_mutex_unlock(&w->lock);
    if (signal)
        pthread_cond_signal(&w->cond);
}

/* ---- the thread ---------------------------------------------------------- */

static zinx__job_t *next_job(zinx__worker_t *w, zinx__waiter_t **waiters)
{
    zinx__job_t *job;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        if ((job = w->head) == NULL)
            break; /* stopping, and nothing left */
        w->head = job->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->queued -= job->weight;
        if (*waiters == NULL)
            *waiters = take_waiters(w);
        if (job->lane == NULL || job->lane->parked_head == NULL)
            break;
        park_locked(job); /* behind parked jobs of its lane: joins them */
    }
    pthread_mutex_unlock(&w->lock);
    return job;
}

static void *worker_main(void *arg)
{
    zinx__worker_t *w = arg;
    for (;;) {
        zinx__waiter_t *waiters = NULL;
        zinx__job_t *job = next_job(w, &waiters);
        if (job == NULL)
            break;
        wake_waiters(waiters);
        job->run(w, job);
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
    /* A stopped worker has run every job; only waiters can remain. */
    pthread_mutex_lock(&w->lock);
    w->queued = 0;
    zinx__waiter_t *waiters = take_waiters(w);
    pthread_mutex_unlock(&w->lock);
    wake_waiters(waiters);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}

bool zinx__worker_is_self(const zinx__worker_t *w)
{
    return pthread_equal(pthread_self(), w->thread);
}
