/*
 * The workers of a server and how connections map to them (WorkerMode):
 *
 *   - Hash: WorkerPoolSize workers, connection ID modulo their number;
 *     nothing to take or give back, no lock.
 *   - Bind: WorkerPoolSize workers, each owned by one connection at a
 *     time; a connection that finds none free is refused.
 *   - DynamicBind: as Bind, but a connection that finds none free gets a
 *     worker made for it, retired when the connection ends. Retired
 *     workers keep their struct and their ID (IDs stay small and dense:
 *     the shards index tables with them) and are started again for the
 *     next connection that needs one. At most max workers exist.
 *
 * A worker's struct lives as long as the pool, whatever its thread does:
 * a closed connection may still point at its worker.
 */
#ifndef ZINX_WORK_POOL_H
#define ZINX_WORK_POOL_H

#include "work/worker.h"

typedef struct zinx__pool zinx__pool_t;

/* A pool of `size` workers of `capacity` messages each, not started;
   with DynamicBind, up to `max` (>= size) workers in all. mode is a
   zinx_worker_mode_t. NULL when out of memory. */
zinx__pool_t *zinx__pool_new(uint32_t mode, uint32_t size, uint32_t max,
                             uint32_t capacity);
/* Starts the first `size` workers. Returns 0 or the first failure. */
int zinx__pool_start(zinx__pool_t *p);
/* Lets every worker finish its queue and joins it; takes no more
   connections. */
void zinx__pool_stop(zinx__pool_t *p);
/* After stop: wakes what still waits on a worker, frees everything. */
void zinx__pool_free(zinx__pool_t *p);

/* WorkerPoolSize: the workers started with the pool. */
uint32_t zinx__pool_size(const zinx__pool_t *p);
/* Whether the calling thread is one of this pool's workers. */
bool zinx__pool_is_own_thread(const zinx__pool_t *p);
/* The queue depths (zinx__worker_queued) of the pool's first workers,
   the fixed ones, into out[0..max); returns how many. Thread: any. */
uint32_t zinx__pool_depths(zinx__pool_t *p, uint32_t *out, uint32_t max);

/*
 * Any thread: the worker for a new connection with ID conn_id, in *w
 * (NULL with a pool of size 0: handlers run on the I/O thread). With
 * Bind and DynamicBind the connection owns it until zinx__pool_release.
 * Returns 0, ZINX_EBUSY (no worker free and none may be made),
 * ZINX_ESTATE (stopped), or the error of starting a thread.
 */
int zinx__pool_acquire(zinx__pool_t *p, uint64_t conn_id, zinx__worker_t **w);
/*
 * Once w's owner queues nothing more and its last job has run: from w's
 * own thread inside that job, or from any thread when the owner never
 * queued one. w is free for another connection, or, made on demand,
 * retires. A no-op with Hash.
 */
void zinx__pool_release(zinx__pool_t *p, zinx__worker_t *w);

#endif /* ZINX_WORK_POOL_H */
