/*
 * Metrics, inside the library (the public side is zinx/metrics.h).
 *
 * What is counted per message (bytes, messages by ID, handler time,
 * loop iterations) is counted only when MetricsAddr is set: the server's
 * `metrics` pointer is then non-NULL, fixed before any thread starts,
 * and the hot paths test it once (`if (s->metrics != NULL)`), so a
 * server without metrics pays one predictable branch and no store.
 *
 * Counting threads never share a cache line: each I/O loop and each
 * worker of the pool has its own block, written by that thread alone
 * with a relaxed load and store (no locked instruction), read by the
 * metrics thread with relaxed loads. Threads without a block (the
 * program's own threads sending, DynamicBind's extra workers) add to one
 * shared block with atomic additions. A total is the sum of the blocks.
 *
 * Never installed.
 */
#ifndef ZINX_METRICS_INTERNAL_H
#define ZINX_METRICS_INTERNAL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "zinx/metrics.h"

struct zinx_conn;
struct zinx__loop;

/* Upper bounds of the time histograms, in ns (see metrics/count.c). */
#define ZINX__M_BUCKETS 16
/* in_by_id/out_by_id: one slot per tracked ID, then "other". */
#define ZINX__M_SLOTS (ZINX_METRICS_MAX_IDS + 1)

typedef atomic_uint_least64_t zinx__mctr_t;

/* Per-bucket (not cumulative) counts; b[ZINX__M_BUCKETS] is above the
   last bound. */
typedef struct zinx__mhist {
    zinx__mctr_t b[ZINX__M_BUCKETS + 1];
    zinx__mctr_t sum_ns;
    zinx__mctr_t count;
} zinx__mhist_t;

/* One thread's counters, on cache lines of their own. */
typedef struct zinx__mblock {
    alignas(64) zinx__mctr_t bytes_in;
    zinx__mctr_t bytes_out;
    zinx__mctr_t in_by_id[ZINX__M_SLOTS];
    zinx__mctr_t out_by_id[ZINX__M_SLOTS];
    zinx__mhist_t handler;
    zinx__mhist_t iter; /* loop blocks only */
    bool shared;        /* any thread adds: atomic additions */
} zinx__mblock_t;

typedef struct zinx__mhttp zinx__mhttp_t;

/* Made at start when MetricsAddr is set; freed with the server. */
typedef struct zinx__metrics {
    uint32_t ids[ZINX_METRICS_MAX_IDS]; /* ascending; slot i */
    uint32_t nids;
    char id_text[ZINX_METRICS_MAX_IDS][12]; /* label values */
    /* [0, nloops): loop i; then nworkers workers; then the shared one. */
    zinx__mblock_t *blocks;
    uint32_t nloops, nworkers;
    zinx__mhttp_t *http; /* the server's thread: start and stop */
    atomic_int port;     /* bound and served, else 0; any thread reads */
    /* The HTTP server's own counters, kept across its stop. */
    atomic_uint_least64_t scrapes, dropped;
} zinx__metrics_t;

/* ---- state.c: lifetime (server thread) ---------------------------------- */

/* Before any framework thread starts, with MetricsAddr set: the blocks,
   the ID table and the listener (bound, not yet served). Returns 0, or
   ZINX_ENOMEM or a negated errno of the bind (logged). */
int zinx__metrics_prepare(zinx_server_t *s, uint32_t nloops, uint32_t nworkers);
/* Once every framework thread runs: starts the HTTP thread. */
int zinx__metrics_serve(zinx_server_t *s);
/* Stops and joins the HTTP thread, closes the listener. Idempotent. */
void zinx__metrics_stop(zinx_server_t *s);
/* After a failed start or with the server: everything prepare made. */
void zinx__metrics_free(zinx_server_t *s);

/* ---- count.c: the hot paths, called only with s->metrics != NULL ------- */

/* Routes msg as zinx__route_message() does, timing the handlers and
   counting the message under its ID. Thread: conn's. */
void zinx__metrics_route(zinx_server_t *s, struct zinx_conn *c,
                         const zinx_msg_t *msg);
/* n messages with ID id were queued for sending. Thread: any. */
void zinx__metrics_sent(zinx_server_t *s, uint32_t id, uint64_t n);
/* Bytes read from or written to a connection. Thread: loop `index`. */
void zinx__metrics_bytes_in(zinx_server_t *s, uint32_t index, size_t n);
void zinx__metrics_bytes_out(zinx_server_t *s, uint32_t index, size_t n);
/* One iteration of loop `index` took ns (from its wake-up). */
void zinx__metrics_iteration(zinx_server_t *s, uint32_t index, uint64_t ns);
/* The histogram bounds, in seconds. */
extern const double zinx__metrics_bounds[ZINX__M_BUCKETS];

/* ---- request.c: what a request head asks for ---------------------------- */

typedef enum zinx__mreq {
    ZINX__MREQ_INCOMPLETE, /* no blank line yet: read on */
    ZINX__MREQ_TOO_LARGE,  /* none within max bytes: 431 */
    ZINX__MREQ_BAD,        /* not METHOD SP /target SP HTTP/1.x: 400 */
    ZINX__MREQ_METHOD,     /* neither GET nor HEAD: 405 */
    ZINX__MREQ_NOT_FOUND,  /* not /metrics: 404 */
    ZINX__MREQ_GET,        /* GET /metrics */
    ZINX__MREQ_HEAD        /* HEAD /metrics */
} zinx__mreq_t;

/* Classifies the bytes req[0..len) received so far (len <= max, the
   most a head may take). Thread: any. */
zinx__mreq_t zinx__mreq_classify(const char *req, size_t len, size_t max);

/* ---- http.c: the listener and its thread --------------------------------- */

/* Binds host:port (nonblocking, listening). NULL with *err set. */
zinx__mhttp_t *zinx__mhttp_open(zinx_server_t *s, const char *host, int port,
                                int *err);
int zinx__mhttp_port(const zinx__mhttp_t *h);
int zinx__mhttp_start(zinx__mhttp_t *h);
/* Stops and joins the thread (if started), closes everything, frees. */
void zinx__mhttp_free(zinx__mhttp_t *h);

#endif /* ZINX_METRICS_INTERNAL_H */
