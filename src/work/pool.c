/*
 * The workers of a server (see pool.h).
 *
 * Hash reads a table fixed at creation, without a lock: taking a worker
 * costs what it did before worker modes existed. Bind and DynamicBind
 * take the pool's lock once when a connection opens and once when it
 * ends, never per message.
 */
#include <stdlib.h>

#include "base/array.h"
#include "work/pool.h"
#include "zinx/config.h"
#include "zinx/error.h"

struct zinx__pool {
    uint32_t mode; /* a zinx_worker_mode_t */
    uint32_t size, max, capacity;
    pthread_mutex_t lock; /* all below, except with Hash (fixed) */
    /* Every worker made, its index its ID: [0, size) at creation, the
       ones made on demand after them. */
    zinx__worker_t **workers;
    size_t nworkers, workers_cap;
    /* Bind, DynamicBind: IDs of started workers no connection owns, a
       stack (the most recently freed is warm). Room for size. */
    uint32_t *idle;
    uint32_t nidle;
    /* DynamicBind: IDs of workers made on demand and retired, their
       thread ended or ending; room for every worker made on demand, so
       that giving one back never needs memory. */
    uint32_t *retired;
    size_t nretired, retired_cap;
    bool stopped;
};

static zinx__worker_t *make_worker(zinx__pool_t *p, uint32_t id)
{
    zinx__worker_t *w = zinx__worker_new(id, p->capacity);
    if (w != NULL)
        zinx__worker_set_owner(w, p);
    return w;
}

zinx__pool_t *zinx__pool_new(uint32_t mode, uint32_t size, uint32_t max,
                             uint32_t capacity)
{
    zinx__pool_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->mode = size > 0 ? mode : ZINX_WORKER_HASH; /* nothing to bind */
    p->size = size;
    p->max = mode == ZINX_WORKER_DYNAMIC_BIND && max > size ? max : size;
    p->capacity = capacity;
    pthread_mutex_init(&p->lock, NULL);
    bool ok = ZINX__ARRAY_RESERVE(p->workers, p->workers_cap, size) == 0;
    if (ok && p->mode != ZINX_WORKER_HASH)
        ok = (p->idle = calloc(size, sizeof(*p->idle))) != NULL;
    for (uint32_t i = 0; ok && i < size; i++) {
        ok = (p->workers[i] = make_worker(p, i)) != NULL;
        p->nworkers += ok;
    }
    if (!ok) {
        zinx__pool_free(p);
        return NULL;
    }
    /* Pushed last to first: the first connections take IDs 0, 1, ... */
    for (uint32_t i = size; p->idle != NULL && i > 0; i--)
        p->idle[p->nidle++] = i - 1;
    return p;
}

int zinx__pool_start(zinx__pool_t *p)
{
    int rc = 0;
    for (uint32_t i = 0; i < p->size && rc == 0; i++)
        rc = zinx__worker_start(p->workers[i]);
    return rc;
}

void zinx__pool_stop(zinx__pool_t *p)
{
    /* Taken once stopped is set: no worker is made after this. */
    pthread_mutex_lock(&p->lock);
    p->stopped = true;
    size_t n = p->nworkers;
    pthread_mutex_unlock(&p->lock);
    /* Retired workers' threads are joined here too. The table does not
       move any more, so no lock while joining: a worker may still be
       giving itself back. */
    for (size_t i = 0; i < n; i++)
        zinx__worker_stop(p->workers[i]);
}

void zinx__pool_free(zinx__pool_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nworkers; i++)
        zinx__worker_free(p->workers[i]);
    free(p->workers);
    free(p->idle);
    free(p->retired);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

uint32_t zinx__pool_size(const zinx__pool_t *p)
{
    return p->size;
}

bool zinx__pool_is_own_thread(const zinx__pool_t *p)
{
    const zinx__worker_t *w = zinx__worker_current();
    return w != NULL && zinx__worker_owner(w) == p;
}

/* ---- taking and giving back ---------------------------------------------- */

/* DynamicBind, none idle: a retired worker started again, else a new
   one. Under the lock; joining a retired thread waits at most for the
   end of its last job, which takes no pool lock. */
static int make_on_demand(zinx__pool_t *p, zinx__worker_t **out)
{
    if (p->nretired > 0) {
        zinx__worker_t *w = p->workers[p->retired[--p->nretired]];
        int rc = zinx__worker_revive(w);
        if (rc != 0) {
            p->nretired++; /* still retired, its thread joined */
            return rc;
        }
        *out = w;
        return 0;
    }
    if (p->nworkers >= p->max)
        return ZINX_EBUSY;
    size_t made = p->nworkers - p->size + 1;
    if (ZINX__ARRAY_RESERVE(p->workers, p->workers_cap, p->nworkers + 1) != 0 ||
        ZINX__ARRAY_RESERVE(p->retired, p->retired_cap, made) != 0)
        return ZINX_ENOMEM;
    zinx__worker_t *w = make_worker(p, (uint32_t)p->nworkers);
    if (w == NULL)
        return ZINX_ENOMEM;
    int rc = zinx__worker_start_async(w);
    if (rc != 0) {
        zinx__worker_free(w);
        return rc;
    }
    p->workers[p->nworkers++] = w;
    *out = w;
    return 0;
}

int zinx__pool_acquire(zinx__pool_t *p, uint64_t conn_id, zinx__worker_t **w)
{
    *w = NULL;
    if (p->size == 0)
        return 0;
    if (p->mode == ZINX_WORKER_HASH) {
        *w = p->workers[conn_id % p->size];
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    if (p->stopped)
        rc = ZINX_ESTATE;
    else if (p->nidle > 0)
        *w = p->workers[p->idle[--p->nidle]];
    else if (p->mode == ZINX_WORKER_DYNAMIC_BIND)
        rc = make_on_demand(p, w);
    else
        rc = ZINX_EBUSY;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void zinx__pool_release(zinx__pool_t *p, zinx__worker_t *w)
{
    if (p->mode == ZINX_WORKER_HASH)
        return;
    uint32_t id = zinx__worker_id(w);
    bool on_demand = id >= p->size;
    /* Before it is listed: whoever takes it next joins a thread that is
       sure to end. */
    if (on_demand)
        zinx__worker_retire(w);
    pthread_mutex_lock(&p->lock);
    if (on_demand)
        p->retired[p->nretired++] = id; /* room reserved when made */
    else
        p->idle[p->nidle++] = id;
    pthread_mutex_unlock(&p->lock);
}

uint32_t zinx__pool_depths(zinx__pool_t *p, uint32_t *out, uint32_t max)
{
    pthread_mutex_lock(&p->lock);
    uint32_t n = p->size < max ? p->size : max;
    if (n > p->nworkers)
        n = (uint32_t)p->nworkers;
    for (uint32_t i = 0; i < n; i++)
        out[i] = zinx__worker_queued(p->workers[i]);
    pthread_mutex_unlock(&p->lock);
    return n;
}
