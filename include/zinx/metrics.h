/*
 * Metrics: every statistic of a server, read through one visitor, and
 * the same rows in Prometheus's text format (version 0.0.4).
 *
 * With MetricsAddr set (zinx/config.h), zinx_server_start() also opens
 * an HTTP listener on that address, served by a thread of its own (never
 * an I/O loop or a worker): GET or HEAD /metrics answers the text below.
 * Without it nothing of this runs and the per-message paths count only
 * what zinx_server_stats() counts; the visitor and the text still work
 * then, with the per-message rows (bytes, messages by ID, histograms)
 * left out.
 *
 * The metrics, their labels and the HTTP server's limits are described
 * in docs/scale-out.md, "Metrics".
 */
#ifndef ZINX_METRICS_H
#define ZINX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "zinx/server.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* Prometheus's metric types, as the text's # TYPE line names them. */
typedef enum zinx_metric_type {
    ZINX_METRIC_COUNTER,
    ZINX_METRIC_GAUGE,
    ZINX_METRIC_HISTOGRAM
} zinx_metric_type_t;

/* One label of a sample: name="value". */
typedef struct zinx_metric_label {
    const char *name;
    const char *value;
} zinx_metric_label_t;

/*
 * One series (a metric name with one set of label values) as the
 * exporter sees it. The series of one metric name come one after the
 * other, so a reader may print name, help and type when the name
 * changes.
 *
 * Everything it points to belongs to the library and is valid only
 * during the visitor's call. struct_size is this library's
 * sizeof(zinx_metric_t): fields are only ever added at the end, and a
 * program built against an older header reads the prefix it knows.
 */
typedef struct zinx_metric {
    size_t struct_size;
    const char *name; /* "zinx_accepted_total" */
    const char *help; /* one line, no newline */
    zinx_metric_type_t type;
    size_t nlabels; /* 0..4 */
    const zinx_metric_label_t *labels;
    /* Counter or gauge: the value. Histogram: the sum of the
       observations (seconds). */
    double value;
    /* Histogram only (else 0 and NULL): the count of observations, and
       nbuckets upper bounds (seconds, ascending, +Inf not included) with
       the cumulative count of observations at or below each. */
    uint64_t count;
    size_t nbuckets;
    const double *bounds;
    const uint64_t *buckets;
} zinx_metric_t;

/* Called once per series; returns 0 to go on, anything else to stop
   (zinx_server_metrics_visit() then returns that value). */
typedef int (*zinx_metric_fn)(const zinx_metric_t *metric, void *udata);

/*
 * Calls fn for every series of server, in the order of the text format.
 * Each value is read atomically; the set is not a snapshot. Returns 0,
 * fn's non-zero return, or ZINX_EINVAL (server or fn NULL). fn runs on
 * the calling thread and must not call zinx_server_free(). Thread: any,
 * before, during or after serving, but not while another thread is in
 * zinx_server_start() or zinx_server_free() of this server.
 */
int zinx_server_metrics_visit(const zinx_server_t *server, zinx_metric_fn fn,
                              void *udata);

/*
 * Renders every series in Prometheus's text format into buf (cap
 * bytes, the caller's) and NUL-terminates it, as snprintf does: returns
 * the length the whole text needs (without the NUL), which is cap or
 * more when it was cut (buf then holds a NUL-terminated prefix; buf may
 * be NULL when cap is 0, to ask for the length). Returns ZINX_EINVAL
 * for server NULL or buf NULL with cap > 0. As the counters move, a
 * second call may need a little more than the first said.
 * Thread: as zinx_server_metrics_visit().
 */
long zinx_server_metrics_text(const zinx_server_t *server, char *buf,
                              size_t cap);

/*
 * The port the metrics listener is bound to (the real one when
 * MetricsAddr's port was 0), or 0 when MetricsAddr is "" or the server
 * is not running. Thread: as zinx_server_metrics_visit().
 */
int zinx_server_metrics_port(const zinx_server_t *server);

/*
 * Gives message ID id its own label in zinx_messages_received_total
 * and zinx_messages_sent_total even without a router (a reply's ID,
 * say). Every routed ID has one already; IDs beyond the first
 * ZINX_METRICS_MAX_IDS of them (the lowest first) count under
 * id="other". Returns 0 (also for an ID given twice), ZINX_EINVAL or
 * ZINX_ESTATE after start. Thread: the set-up thread, before start.
 */
int zinx_server_metrics_track_id(zinx_server_t *server, uint32_t id);

/* The most message IDs with a label of their own. */
#define ZINX_METRICS_MAX_IDS 64

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_METRICS_H */
