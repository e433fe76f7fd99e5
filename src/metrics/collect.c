/*
 * Every series a server exports, in one order, through one visitor: the
 * text format (text.c) and zinx_server_metrics_visit() read the same
 * rows, so they cannot disagree.
 *
 * A source of rows is one function of the `sources` table at the end;
 * a new statistic is a row in ZINX_STATS_MAP (exported by itself) or a
 * new source there.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "zinx/cluster.h"

typedef struct visit {
    zinx_metric_fn fn;
    void *udata;
} visit_t;

typedef int (*source_fn)(const zinx_server_t *s, const visit_t *v);

static int emit(const visit_t *v, const char *name, const char *help,
                zinx_metric_type_t type, const zinx_metric_label_t *labels,
                size_t nlabels, double value)
{
    zinx_metric_t m = {.struct_size = sizeof(m),
                       .name = name,
                       .help = help,
                       .type = type,
                       .nlabels = nlabels,
                       .labels = labels,
                       .value = value};
    return v->fn(&m, v->udata);
}

/* ---- what zinx_server_stats() counts --------------------------------------
 */

static const struct stat_row {
    const char *name, *help;
} stat_rows[] = {
#define ZINX__METRICS_ROW(name, text) {"zinx_" #name "_total", text},
    ZINX_STATS_MAP(ZINX__METRICS_ROW)
#undef ZINX__METRICS_ROW
};

static int stats_rows(const zinx_server_t *s, const visit_t *v)
{
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    const uint64_t vals[] = {
#define ZINX__METRICS_VAL(name, text) st.name,
        ZINX_STATS_MAP(ZINX__METRICS_VAL)
#undef ZINX__METRICS_VAL
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(vals) / sizeof(vals[0]); i++)
        rc = emit(v, stat_rows[i].name, stat_rows[i].help, ZINX_METRIC_COUNTER,
                  NULL, 0, (double)vals[i]);
    if (rc == 0)
        rc = emit(v, "zinx_connections", "connections open now",
                  ZINX_METRIC_GAUGE, NULL, 0, (double)st.connections);
    return rc;
}

/* ---- worker queues ---------------------------------------------------------
 */

/* The pool exists while the server runs: read under the server's lock,
   which the stop takes to leave RUNNING before it frees the pool. */
static uint32_t read_depths(const zinx_server_t *cs, uint32_t **out)
{
    zinx_server_t *s = (zinx_server_t *)cs; /* the lock only */
    uint32_t n = 0;
    *out = NULL;
    pthread_mutex_lock(&s->lock);
    if (atomic_load(&s->state) == ZINX__SERVER_RUNNING && s->pool != NULL &&
        s->nworkers > 0 && (*out = malloc(s->nworkers * sizeof(**out))))
        n = zinx__pool_depths(s->pool, *out, s->nworkers);
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int worker_rows(const zinx_server_t *s, const visit_t *v)
{
    uint32_t *depth;
    uint32_t n = read_depths(s, &depth);
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        char id[12];
        snprintf(id, sizeof(id), "%u", i);
        zinx_metric_label_t l = {"worker", id};
        rc = emit(v, "zinx_worker_queue_depth",
                  "messages queued for a worker of the pool, not yet taken",
                  ZINX_METRIC_GAUGE, &l, 1, depth[i]);
    }
    free(depth);
    return rc;
}

/* ---- counted only with metrics on ------------------------------------------
 */

static uint32_t nblocks(const zinx__metrics_t *m)
{
    return m->nloops + m->nworkers + 1;
}

static uint64_t load(const zinx__mctr_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* The sum over every block of the counter at `offset` in a block. */
static uint64_t sum(const zinx__metrics_t *m, size_t offset)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < nblocks(m); i++)
        t += load(
            (const zinx__mctr_t *)(const void *)((const char *)&m->blocks[i] +
                                                 offset));
    return t;
}

static int traffic_rows(const zinx_server_t *s, const visit_t *v)
{
    const zinx__metrics_t *m = s->metrics;
    int rc = emit(v, "zinx_received_bytes_total",
                  "bytes read from connections (after TLS and WebSocket)",
                  ZINX_METRIC_COUNTER, NULL, 0,
                  (double)sum(m, offsetof(zinx__mblock_t, bytes_in)));
    if (rc == 0)
        rc = emit(v, "zinx_sent_bytes_total",
                  "bytes written to connections (before TLS and WebSocket)",
                  ZINX_METRIC_COUNTER, NULL, 0,
                  (double)sum(m, offsetof(zinx__mblock_t, bytes_out)));
    return rc;
}

static int by_id_rows(const zinx_server_t *s, const visit_t *v,
                      const char *name, const char *help, size_t field)
{
    const zinx__metrics_t *m = s->metrics;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i <= m->nids; i++) {
        unsigned slot = i < m->nids ? i : ZINX_METRICS_MAX_IDS;
        zinx_metric_label_t l = {"id", i < m->nids ? m->id_text[i] : "other"};
        uint64_t n = sum(m, field + slot * sizeof(zinx__mctr_t));
        rc = emit(v, name, help, ZINX_METRIC_COUNTER, &l, 1, (double)n);
    }
    return rc;
}

static int message_rows(const zinx_server_t *s, const visit_t *v)
{
    int rc = by_id_rows(s, v, "zinx_messages_received_total",
                        "messages routed, by message ID (\"other\": IDs "
                        "without a label of their own)",
                        offsetof(zinx__mblock_t, in_by_id));
    if (rc == 0)
        rc = by_id_rows(s, v, "zinx_messages_sent_total",
                        "messages queued for sending, by message ID",
                        offsetof(zinx__mblock_t, out_by_id));
    return rc;
}

/* Adds the histogram of block b at `field` into the totals. */
static void add_hist(const zinx__mblock_t *b, size_t field, uint64_t *bucket,
                     uint64_t *sum_ns, uint64_t *count)
{
    const zinx__mhist_t *h =
        (const zinx__mhist_t *)(const void *)((const char *)b + field);
    for (int i = 0; i <= ZINX__M_BUCKETS; i++)
        bucket[i] += load(&h->b[i]);
    *sum_ns += load(&h->sum_ns);
    *count += load(&h->count);
}

/* Blocks [from, to) summed into one histogram series. */
static int hist_row(const zinx_server_t *s, const visit_t *v, const char *name,
                    const char *help, const zinx_metric_label_t *l, size_t nl,
                    size_t field, uint32_t from, uint32_t to)
{
    uint64_t b[ZINX__M_BUCKETS + 1] = {0}, sum_ns = 0, count = 0;
    for (uint32_t i = from; i < to; i++)
        add_hist(&s->metrics->blocks[i], field, b, &sum_ns, &count);
    /* Cumulative, as the text format wants; the +Inf bucket is count. */
    for (int i = 1; i <= ZINX__M_BUCKETS; i++)
        b[i] += b[i - 1];
    zinx_metric_t m = {.struct_size = sizeof(m),
                       .name = name,
                       .help = help,
                       .type = ZINX_METRIC_HISTOGRAM,
                       .nlabels = nl,
                       .labels = l,
                       .value = (double)sum_ns / 1e9,
                       .count = b[ZINX__M_BUCKETS],
                       .nbuckets = ZINX__M_BUCKETS,
                       .bounds = zinx__metrics_bounds,
                       .buckets = b};
    return v->fn(&m, v->udata);
}

static int time_rows(const zinx_server_t *s, const visit_t *v)
{
    const zinx__metrics_t *m = s->metrics;
    int rc =
        hist_row(s, v, "zinx_handler_seconds",
                 "time a message spent in its interceptors and handlers", NULL,
                 0, offsetof(zinx__mblock_t, handler), 0, nblocks(m));
    for (uint32_t i = 0; rc == 0 && i < m->nloops; i++) {
        char id[12];
        snprintf(id, sizeof(id), "%u", i);
        zinx_metric_label_t l = {"loop", id};
        rc = hist_row(s, v, "zinx_loop_iteration_seconds",
                      "I/O loop iteration, from its wake-up to its end", &l, 1,
                      offsetof(zinx__mblock_t, iter), i, i + 1);
    }
    return rc;
}

static int http_rows(const zinx_server_t *s, const visit_t *v)
{
    const zinx__metrics_t *m = s->metrics;
    int rc =
        emit(v, "zinx_metrics_scrapes_total",
             "GET and HEAD /metrics answered by the metrics listener",
             ZINX_METRIC_COUNTER, NULL, 0, (double)atomic_load(&m->scrapes));
    if (rc == 0)
        rc = emit(v, "zinx_metrics_dropped_total",
                  "metrics connections closed unanswered or with an error "
                  "(deadline, too many, bad request)",
                  ZINX_METRIC_COUNTER, NULL, 0,
                  (double)atomic_load(&m->dropped));
    return rc;
}

/* ---- the cluster ------------------------------------------------------------
 */

static const struct stat_row cluster_rows_names[] = {
#define ZINX__METRICS_CROW(name, text) {"zinx_cluster_" #name "_total", text},
    ZINX_CLUSTER_STATS_MAP(ZINX__METRICS_CROW)
#undef ZINX__METRICS_CROW
};

/* Only for a server in a cluster: a node without one has no such rows
   (rather than rows of zeros that would read as a silent cluster). */
static int cluster_rows(const zinx_server_t *s, const visit_t *v)
{
    zinx_cluster_stats_t st = {.struct_size = sizeof(st)};
    if (zinx_cluster_stats(s, &st) != 0 || st.node == 0)
        return 0;
    const uint64_t vals[] = {
#define ZINX__METRICS_CVAL(name, text) st.name,
        ZINX_CLUSTER_STATS_MAP(ZINX__METRICS_CVAL)
#undef ZINX__METRICS_CVAL
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(vals) / sizeof(vals[0]); i++)
        rc = emit(v, cluster_rows_names[i].name, cluster_rows_names[i].help,
                  ZINX_METRIC_COUNTER, NULL, 0, (double)vals[i]);
    const struct {
        const char *name, *help;
        double value;
    } gauges[] = {
        {"zinx_cluster_node", "this node's number", st.node},
        {"zinx_cluster_nodes_alive", "other nodes heard from and not gone",
         (double)st.nodes_alive},
        {"zinx_cluster_remote_connections",
         "connections of other nodes this node knows of",
         (double)st.remote_conns},
        {"zinx_cluster_pending_bytes",
         "cluster bytes received and not yet handled",
         (double)st.pending_bytes},
        {"zinx_cluster_connected", "1 while connected to NATS", st.connected},
        {"zinx_cluster_member", "1 while a member (0 after a clash)",
         st.member},
    };
    for (size_t i = 0; rc == 0 && i < sizeof(gauges) / sizeof(gauges[0]); i++)
        rc = emit(v, gauges[i].name, gauges[i].help, ZINX_METRIC_GAUGE, NULL, 0,
                  gauges[i].value);
    return rc;
}

/* Sources counted only with metrics on are skipped without. A source of
   rows from elsewhere (the cluster's traffic) is one line here. */
static const struct source {
    source_fn fn;
    bool needs_metrics;
} sources[] = {
    {stats_rows, false},   {worker_rows, false}, {traffic_rows, true},
    {message_rows, true},  {time_rows, true},    {http_rows, true},
    {cluster_rows, false},
};

int zinx_server_metrics_visit(const zinx_server_t *s, zinx_metric_fn fn,
                              void *udata)
{
    if (s == NULL || fn == NULL)
        return ZINX_EINVAL;
    visit_t v = {fn, udata};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(sources) / sizeof(sources[0]);
         i++) {
        if (!sources[i].needs_metrics || s->metrics != NULL)
            rc = sources[i].fn(s, &v);
    }
    return rc;
}
