/*
 * What a connection hands to its worker: its start and stop, batches of
 * decoded messages, and the user's posted functions. All of them travel
 * on the connection's lane, so they run in the order the I/O thread
 * queued them, and nothing of the connection runs after its stop.
 * Without workers the same things run on the I/O thread, in the same
 * order.
 */
#include <stdlib.h>
#include <string.h>

#include "conn/conn_private.h"

/* A batch of messages for the worker: records of [id][len][payload], id
   and len as native uint32_t, decoded once by the I/O thread. */
typedef struct batch {
    zinx__job_t job;   /* first: the shard links a recycled batch through it */
    zinx_conn_t *conn; /* a reference; allocated (and freed) on its shard */
    uint32_t off;      /* where the next record starts */
    bool pooled;       /* a block of the shard's pool */
    uint8_t data[];
} batch_t;

/* Kept small: the header is overhead on every pooled block. */
_Static_assert(sizeof(batch_t) <= 48, "batch header grew");

#define RECORD_HEADER (2 * sizeof(uint32_t))

/* ---- start and stop --------------------------------------------------------
 */

static bool run_start_job(zinx__worker_t *w, zinx__job_t *job)
{
    ZINX__UNUSED(w);
    zinx_conn_t *c = ZINX__CONTAINER_OF(job, zinx_conn_t, start_job);
    conn_run_start(c);
    zinx_conn_unref(c);
    return true;
}

static bool run_stop_job(zinx__worker_t *w, zinx__job_t *job)
{
    ZINX__UNUSED(w);
    zinx_conn_t *c = ZINX__CONTAINER_OF(job, zinx_conn_t, stop_job);
    conn_run_stop(c);
    zinx_conn_unref(c); /* may free c, and with it this job */
    return true;
}

/* The worker has room again: the loop resumes reading. */
static void wake_from_worker(zinx__waiter_t *w)
{
    zinx_conn_t *c = ZINX__CONTAINER_OF(w, zinx_conn_t, waiter);
    conn_nudge(c);
    zinx_conn_unref(c);
}

static void keep_for_worker(zinx__waiter_t *w)
{
    zinx_conn_ref(ZINX__CONTAINER_OF(w, zinx_conn_t, waiter));
}

static const zinx__waiter_ops_t waiter_ops = {.keep = keep_for_worker,
                                              .wake = wake_from_worker};

void conn_init_jobs(zinx_conn_t *c)
{
    zinx__job_init(&c->start_job, run_start_job, &c->lane, 0);
    zinx__job_init(&c->stop_job, run_stop_job, &c->lane, 0);
    c->waiter.ops = &waiter_ops;
}

/* The one place that decides "worker or I/O thread": a job of the
   connection is queued for its worker at the end of this iteration, in
   order with the others, or, without workers, run here and now (which is
   the same order, as the loop is the handler thread then). */
static void hand_over(zinx_conn_t *c, zinx__job_t *job)
{
    if (c->worker != NULL)
        zinx__shard_push_job(c->shard, c->worker, job);
    else
        job->run(NULL, job);
}

void conn_schedule_start(zinx_conn_t *c)
{
    zinx_conn_ref(c); /* the job's */
    hand_over(c, &c->start_job);
}

void conn_schedule_stop(zinx_conn_t *c)
{
    zinx_conn_ref(c); /* the job's */
    hand_over(c, &c->stop_job);
}

/* ---- message batches -------------------------------------------------------
 */

/* Worker: `count` messages of a batch were handled. */
static void batch_done(zinx_conn_t *c, uint32_t count)
{
    /* Pairs with conn_begin_drain(): either this thread sees `draining`,
       or the loop sees inflight at zero; both are sequentially
       consistent. */
    if (atomic_fetch_sub(&c->inflight, count) == count &&
        atomic_load(&c->draining))
        conn_nudge(c);
}

static bool over_high_water(const zinx_conn_t *c)
{
    return atomic_load_explicit(&c->unsent, memory_order_relaxed) >
           c->high_water;
}

static bool run_batch(zinx__worker_t *w, zinx__job_t *job)
{
    batch_t *b = (batch_t *)job;
    zinx_conn_t *c = b->conn;
    uint32_t start = job->weight;
    /* A batch of one message sends its replies straight to `pending`:
       staging them would cost the same lock and a copy more. */
    bool staging = start > 1;
    if (staging)
        conn_stage_begin(c);
    while (job->weight > 0) {
        /* Output above OutputHighWater: the rest waits on the lane until
           the loop has sent enough (it unparks then). What is staged goes
           first, or the loop could not send it. */
        if (over_high_water(c)) {
            if (staging)
                conn_stage_end(c);
            staging = false;
            if (zinx__worker_park(w, job)) {
                batch_done(c, start - job->weight);
                conn_nudge(c);
                return false;
            }
        }
        uint32_t hdr[2];
        memcpy(hdr, b->data + b->off, sizeof(hdr));
        zinx_msg_t m = {.id = hdr[0],
                        .len = hdr[1],
                        .data = b->data + b->off + RECORD_HEADER};
        zinx__route_message(c->server, c, &m);
        b->off += (uint32_t)RECORD_HEADER + hdr[1];
        job->weight--;
    }
    /* Before batch_done: a drain that sees no message in flight must see
       their replies too. */
    if (staging)
        conn_stage_end(c);
    batch_done(c, start);
    zinx__shard_recycle(c->shard, b, b->pooled);
    zinx_conn_unref(c);
    return true;
}

int conn_push_batch(zinx_conn_t *c, const zinx__frame_t *frames, uint32_t count)
{
    size_t size = 0;
    for (uint32_t i = 0; i < count; i++)
        size += RECORD_HEADER + frames[i].msg.len;
    batch_t *b = NULL;
    bool pooled = false;
    if (!zinx__fault(c->server, ZINX__ALLOC_TASK))
        b = zinx__shard_alloc(c->shard, sizeof(*b) + size, &pooled);
    if (b == NULL)
        return ZINX_ENOMEM;
    b->pooled = pooled;
    zinx__job_init(&b->job, run_batch, &c->lane, count);
    b->conn = zinx_conn_ref(c);
    b->off = 0;
    uint8_t *p = b->data;
    for (uint32_t i = 0; i < count; i++) {
        const zinx_msg_t *m = &frames[i].msg;
        uint32_t hdr[2] = {m->id, m->len};
        memcpy(p, hdr, sizeof(hdr));
        if (m->len > 0)
            memcpy(p + RECORD_HEADER, m->data, m->len);
        p += RECORD_HEADER + m->len;
    }
    zinx__shard_push_job(c->shard, c->worker, &b->job);
    return 0;
}

/* ---- posted user functions ---------------------------------------------- */

static bool run_user_job(zinx__worker_t *w, zinx__job_t *job)
{
    ZINX__UNUSED(w);
    zinx__conn_job_t *j = (zinx__conn_job_t *)job;
    zinx_conn_t *c = j->conn;
    j->fn(c, j->udata);
    free(j);
    zinx_conn_unref(c);
    return true;
}

/* Loop thread: runs (inline) or queues (worker) a chain of jobs. */
static void dispatch_jobs(zinx_conn_t *c, zinx__conn_job_t *j)
{
    while (j != NULL) {
        zinx__conn_job_t *next = j->next_posted;
        hand_over(c, &j->job);
        j = next;
    }
}

static zinx__conn_job_t *take_posted(zinx_conn_t *c, bool close)
{
    pthread_mutex_lock(&c->lock);
    zinx__conn_job_t *j = c->posted_head;
    c->posted_head = c->posted_tail = NULL;
    if (close)
        c->postable = false;
    pthread_mutex_unlock(&c->lock);
    return j;
}

void conn_run_posted_jobs(zinx_conn_t *c)
{
    /* A plain load first: the common case (nothing posted) costs no
       locked instruction. */
    if (!atomic_load_explicit(&c->jobs_posted, memory_order_relaxed) ||
        !atomic_exchange(&c->jobs_posted, false))
        return;
    dispatch_jobs(c, take_posted(c, false));
}

void conn_close_jobs(zinx_conn_t *c)
{
    dispatch_jobs(c, take_posted(c, true));
}

/* A job that runs fn(c, udata) on c's lane; holds a reference to c. */
static zinx__conn_job_t *new_user_job(zinx_conn_t *c, zinx_conn_job_fn fn,
                                      void *udata)
{
    zinx__conn_job_t *j = malloc(sizeof(*j));
    if (j == NULL)
        return NULL;
    zinx__job_init(&j->job, run_user_job, &c->lane, 0);
    j->conn = zinx_conn_ref(c);
    j->fn = fn;
    j->udata = udata;
    j->next_posted = NULL;
    return j;
}

int zinx_conn_post(zinx_conn_t *c, zinx_conn_job_fn fn, void *udata)
{
    if (c == NULL || fn == NULL)
        return ZINX_EINVAL;
    zinx__conn_job_t *j = new_user_job(c, fn, udata);
    if (j == NULL)
        return ZINX_ENOMEM;
    pthread_mutex_lock(&c->lock);
    bool ok = c->postable;
    if (ok) {
        if (c->posted_tail != NULL)
            c->posted_tail->next_posted = j;
        else
            c->posted_head = j;
        c->posted_tail = j;
        atomic_store(&c->jobs_posted, true);
    }
    pthread_mutex_unlock(&c->lock);
    if (!ok) {
        zinx_conn_unref(c);
        free(j);
        return ZINX_ECLOSED;
    }
    conn_nudge(c);
    return 0;
}

int zinx__conn_run_soon(zinx_conn_t *c, zinx_conn_job_fn fn, void *udata)
{
    if (c->state == CONN_FINISHED)
        return ZINX_ECLOSED;
    zinx__conn_job_t *j = new_user_job(c, fn, udata);
    if (j == NULL)
        return ZINX_ENOMEM;
    hand_over(c, &j->job);
    return 0;
}

zinx__loop_t *zinx__conn_loop(const zinx_conn_t *c)
{
    return c->loop;
}
