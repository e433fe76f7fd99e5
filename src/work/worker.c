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
    /* Units reserved or queued, not yet taken. Producers reserve without
       the lock while there is room; the lock is taken only to wait. */
    atomic_uint queued;
    bool stopping;
    zinx__waiter_t *wait_head, *wait_tail;
    atomic_bool has_waiters; /* wait_head != NULL, readable without lock */
    /* Unparked jobs: they go before everything not yet run, including
       what the thread has taken already. */
    zinx__job_t *front_head, *front_tail;
    atomic_bool has_front;
    zinx__buf_t scratch; /* the worker thread's */
    void *owner;         /* set once, before the thread starts */
};

/* The worker this thread runs, NULL on other threads. Per thread, so
   "am I this worker's thread" reads nothing another thread writes: a
   retired worker's struct is started again with a new thread (see
   zinx__worker_revive), and comparing thread handles would race with
   that restart and could match a handle the system has reused. */
static _Thread_local const zinx__worker_t *self_worker;

zinx__worker_t *zinx__worker_new(uint32_t id, uint32_t capacity)
{
    zinx__worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->id = id;
    w->capacity = capacity;
    atomic_init(&w->queued, 0);
    atomic_init(&w->has_waiters, false);
    atomic_init(&w->has_front, false);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    return w;
}

uint32_t zinx__worker_id(const zinx__worker_t *w)
{
    return w->id;
}

uint32_t zinx__worker_queued(const zinx__worker_t *w)
{
    return atomic_load_explicit(&w->queued, memory_order_relaxed);
}

zinx__buf_t *zinx__worker_scratch(zinx__worker_t *w)
{
    return &w->scratch;
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
    atomic_store(&w->has_waiters, true);
}

/* Room for more units; `queued` may pass the capacity when parked jobs
   come back. */
static uint32_t room_in(const zinx__worker_t *w, uint32_t queued)
{
    return queued < w->capacity ? w->capacity - queued : 0;
}

uint32_t zinx__worker_reserve(zinx__worker_t *w, zinx__waiter_t *waiter,
                              uint32_t want)
{
    /* The common case, room for all: one compare-and-swap. */
    uint32_t q = atomic_load(&w->queued);
    while (room_in(w, q) >= want)
        if (atomic_compare_exchange_weak(&w->queued, &q, q + want))
            return want;
    /* Short of room: take what there is and wait, under the lock the
       worker holds when it hands the waiters back. */
    pthread_mutex_lock(&w->lock);
    /* Listed before the units are counted: a worker that takes units
       after our count then sees has_waiters set (both sequentially
       consistent), so no hand-back is missed. If all is granted after
       all, the wake-up is spurious and harmless. */
    add_waiter(w, waiter);
    q = atomic_load(&w->queued);
    uint32_t granted;
    do {
        uint32_t room = room_in(w, q);
        granted = want < room ? want : room;
    } while (!atomic_compare_exchange_weak(&w->queued, &q, q + granted));
    pthread_mutex_unlock(&w->lock);
    return granted;
}

void zinx__worker_unreserve(zinx__worker_t *w, uint32_t count)
{
    atomic_fetch_sub(&w->queued, count);
}

/* Hands the waiters back once half the queue is free again, so a paused
   producer resumes with room for a useful batch, not one message. The
   list moves to the wake_next links, which only this thread uses, so a
   waiter may wait again at once while it is being woken. */
static zinx__waiter_t *take_waiters(zinx__worker_t *w)
{
    if (w->wait_head == NULL || atomic_load(&w->queued) > w->capacity / 2)
        return NULL;
    zinx__waiter_t *head = w->wait_head;
    for (zinx__waiter_t *wt = head; wt != NULL; wt = wt->wake_next) {
        wt->wake_next = wt->wait_next;
        wt->waiting = false;
    }
    w->wait_head = w->wait_tail = NULL;
    atomic_store(&w->has_waiters, false);
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
    if (head == NULL) {
        atomic_store(&lane->parked, false);
        return false;
    }
    bool was_empty = w->head == NULL && w->front_head == NULL;
    /* They were taken before anything now queued for the lane. */
    for (zinx__job_t *j = head; j != NULL; j = j->next)
        atomic_fetch_add(&w->queued, j->weight);
    tail->next = NULL;
    if (w->front_tail != NULL)
        w->front_tail->next = head;
    else
        w->front_head = head;
    w->front_tail = tail;
    /* has_front first: a worker that finds the lane clear then finds
       its jobs in front (check_lane's caller relies on it). */
    atomic_store(&w->has_front, true);
    atomic_store(&lane->parked, false);
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

/* Takes every queued job at once (one lock for all of them), waiting
   while there is none. NULL when stopping with nothing left. */
static zinx__job_t *take_all(zinx__worker_t *w)
{
    pthread_mutex_lock(&w->lock);
    while (w->head == NULL && w->front_head == NULL && !w->stopping)
        pthread_cond_wait(&w->cond, &w->lock);
    zinx__job_t *jobs = w->head;
    if (w->front_head != NULL) {
        w->front_tail->next = jobs;
        jobs = w->front_head;
        w->front_head = w->front_tail = NULL;
        atomic_store(&w->has_front, false);
    }
    w->head = w->tail = NULL;
    pthread_mutex_unlock(&w->lock);
    return jobs;
}

/* Unparked jobs go before the taken ones (as they would have before
   the rest of the queue). Returns the new head of what is taken. */
static zinx__job_t *take_front(zinx__worker_t *w, zinx__job_t *taken)
{
    pthread_mutex_lock(&w->lock);
    zinx__job_t *jobs = taken;
    if (w->front_head != NULL) {
        w->front_tail->next = taken;
        jobs = w->front_head;
        w->front_head = w->front_tail = NULL;
    }
    atomic_store(&w->has_front, false);
    pthread_mutex_unlock(&w->lock);
    return jobs;
}

/* A job is taken when it comes up, not when the list is taken: its
   units stay reserved until then, so the capacity still bounds what
   waits (here or in the queue). Waiters are handed back once half of it
   is free. */
static void take_units(zinx__worker_t *w, const zinx__job_t *job)
{
    if (job->weight > 0)
        atomic_fetch_sub(&w->queued, job->weight);
    if (!atomic_load(&w->has_waiters))
        return;
    pthread_mutex_lock(&w->lock);
    zinx__waiter_t *waiters = take_waiters(w);
    pthread_mutex_unlock(&w->lock);
    wake_waiters(waiters);
}

enum lane_check { LANE_RUN, LANE_JOINED, LANE_UNPARKED };

/* A job whose lane has parked jobs joins them instead of running ahead
   of them. Only this thread parks, so a clear flag needs no lock: no job
   of the lane is parked, though some may just have been unparked (the
   caller looks in front). A set flag whose jobs are gone meanwhile means
   they were just unparked: they wait in front and go first. */
static enum lane_check check_lane(zinx__worker_t *w, zinx__job_t *job)
{
    zinx__lane_t *l = job->lane;
    if (l == NULL || !atomic_load(&l->parked))
        return LANE_RUN;
    pthread_mutex_lock(&w->lock);
    enum lane_check r = LANE_UNPARKED;
    if (l->parked_head != NULL) {
        park_locked(job);
        r = LANE_JOINED;
    }
    pthread_mutex_unlock(&w->lock);
    return r;
}

static void *worker_main(void *arg)
{
    zinx__worker_t *w = arg;
    self_worker = w;
    /* Started without a hand-shake, the thread names itself. */
    char name[16];
    snprintf(name, sizeof(name), "zinx-wk-%u", w->id);
    zinx__thread_name_self(name);
    zinx__job_t *job;
    while ((job = take_all(w)) != NULL) {
        while (job != NULL) {
            /* Read first: parking relinks the job, running may free it. */
            zinx__job_t *next = job->next;
            enum lane_check lc = check_lane(w, job);
            /* Unparked jobs go first. The lane's flag is read before
               has_front, which unparking sets before it clears the flag:
               a lane found clear because it was just unparked shows its
               jobs in front here. */
            if (lc == LANE_UNPARKED ||
                (lc == LANE_RUN && atomic_load(&w->has_front))) {
                job = take_front(w, job);
                continue;
            }
            take_units(w, job);
            if (lc == LANE_RUN)
                job->run(w, job);
            job = next;
        }
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

int zinx__worker_start_async(zinx__worker_t *w)
{
    /* No hand-shake: nothing compares with w->thread (see self_worker),
       and the thread names itself. */
    int rc = zinx__thread_start(&w->thread, worker_main, w);
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

bool zinx__worker_is_self(const zinx__worker_t *w)
{
    return self_worker == w;
}

const zinx__worker_t *zinx__worker_current(void)
{
    return self_worker;
}

void zinx__worker_set_owner(zinx__worker_t *w, void *owner)
{
    w->owner = owner;
}

void *zinx__worker_owner(const zinx__worker_t *w)
{
    return w->owner;
}

/* ---- retiring and reviving ----------------------------------------------- */

void zinx__worker_retire(zinx__worker_t *w)
{
    /* As a stop, minus the join: the thread ends once its queue is
       empty, which is at once when the caller's job was its last. */
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_mutex_unlock(&w->lock);
    /* Called by another thread (an owner that never queued a job), the
       thread may be waiting: it ends now, not at the next revive. */
    pthread_cond_broadcast(&w->cond);
}

/* A stopped worker has run every job; only waiters can remain. Wakes
   them (they find the queue empty) and leaves the worker idle. */
static void release_waiters(zinx__worker_t *w)
{
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->queued, 0);
    zinx__waiter_t *waiters = take_waiters(w);
    pthread_mutex_unlock(&w->lock);
    wake_waiters(waiters);
}

int zinx__worker_revive(zinx__worker_t *w)
{
    zinx__worker_stop(w); /* joins the retired thread */
    release_waiters(w);
    pthread_mutex_lock(&w->lock);
    w->stopping = false;
    pthread_mutex_unlock(&w->lock);
    return zinx__worker_start_async(w);
}

void zinx__worker_free(zinx__worker_t *w)
{
    if (w == NULL)
        return;
    zinx__worker_stop(w);
    release_waiters(w);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    zinx__buf_free(&w->scratch);
    free(w);
}
