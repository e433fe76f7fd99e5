/*
 * Metrics: the text format line by line, its values against
 * zinx_server_stats() and the traffic the test made, the C API and its
 * errors, and the HTTP listener under hostile clients (slowloris, a huge
 * head, many idle connections, garbage) while a normal scrape still
 * gets its answer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_http.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 5000
#define ID 7u
#define RESP_MAX (1 << 20)

static char resp[RESP_MAX];

/* ---- the text format, checked line by line ------------------------------- */

typedef struct family {
    char name[96];
    char type[16];
    bool help;
} family_t;

/* The name of a sample line and where its labels and value start. */
static void split_sample(const char *line, char *name, size_t cap, char *labels,
                         size_t lcap, double *value)
{
    size_t n = strcspn(line, "{ ");
    assert_true(n > 0 && n < cap);
    memcpy(name, line, n);
    name[n] = '\0';
    const char *p = line + n;
    labels[0] = '\0';
    if (*p == '{') {
        const char *e = strchr(p, '}');
        assert_non_null(e);
        assert_true((size_t)(e - p + 1) < lcap);
        memcpy(labels, p, (size_t)(e - p + 1));
        labels[e - p + 1] = '\0';
        p = e + 1;
    }
    assert_int_equal(*p, ' ');
    char *end;
    *value = strtod(p + 1, &end);
    assert_true(end != p + 1);
    assert_int_equal(*end, '\0');
}

static bool name_ok(const char *s)
{
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '_' || *p == ':' || (p > s && *p >= '0' && *p <= '9')))
            return false;
    return *s != '\0';
}

/* A histogram's series: le ascending, counts cumulative, +Inf last and
   equal to _count. */
typedef struct hist_check {
    char series[160]; /* labels without le */
    double last_le;
    double last_count;
    double inf_count;
    bool inf_seen;
} hist_check_t;

static void strip_le(const char *labels, char *out, size_t cap, double *le)
{
    const char *p = strstr(labels, "le=\"");
    assert_non_null(p);
    const char *v = p + 4;
    *le = strncmp(v, "+Inf", 4) == 0 ? INFINITY : strtod(v, NULL);
    snprintf(out, cap, "%.*s", (int)(p - labels), labels);
}

static void check_bucket(hist_check_t *h, const char *labels, double v)
{
    char series[160];
    double le;
    strip_le(labels, series, sizeof(series), &le);
    if (strcmp(series, h->series) != 0) { /* a new series */
        snprintf(h->series, sizeof(h->series), "%s", series);
        h->last_le = -INFINITY;
        h->last_count = 0;
        h->inf_seen = false;
    }
    assert_false(h->inf_seen);
    assert_true(le > h->last_le);
    assert_true(v >= h->last_count);
    h->last_le = le;
    h->last_count = v;
    if (isinf(le)) {
        h->inf_seen = true;
        h->inf_count = v;
    }
}

/* Checks the whole text; returns the number of samples. */
static int check_text(const char *text)
{
    family_t fam = {0};
    hist_check_t hist = {0};
    int samples = 0;
    const char *p = text;
    assert_true(strlen(text) > 0);
    assert_int_equal(text[strlen(text) - 1], '\n');
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char line[512];
        assert_true((size_t)(nl - p) < sizeof(line));
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        p = nl + 1;
        if (strncmp(line, "# HELP ", 7) == 0) {
            char name[96];
            assert_int_equal(sscanf(line + 7, "%95s", name), 1);
            assert_true(name_ok(name));
            assert_true(strcmp(name, fam.name) != 0); /* once a family */
            snprintf(fam.name, sizeof(fam.name), "%s", name);
            fam.type[0] = '\0';
            fam.help = true;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[96], type[16];
            assert_int_equal(sscanf(line + 7, "%95s %15s", name, type), 2);
            assert_string_equal(name, fam.name);
            assert_true(strcmp(type, "counter") == 0 ||
                        strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            snprintf(fam.type, sizeof(fam.type), "%s", type);
            continue;
        }
        assert_true(line[0] != '#' && line[0] != '\0');
        char name[96], labels[256];
        double v;
        split_sample(line, name, sizeof(name), labels, sizeof(labels), &v);
        assert_true(fam.help && fam.type[0] != '\0');
        samples++;
        if (strcmp(fam.type, "histogram") != 0) {
            assert_string_equal(name, fam.name);
            assert_true(v >= 0);
            continue;
        }
        size_t fl = strlen(fam.name);
        assert_memory_equal(name, fam.name, fl);
        const char *suffix = name + fl;
        if (strcmp(suffix, "_bucket") == 0) {
            check_bucket(&hist, labels, v);
        } else if (strcmp(suffix, "_count") == 0) {
            assert_true(hist.inf_seen);
            assert_true(v == hist.inf_count);
        } else {
            assert_string_equal(suffix, "_sum");
            assert_true(hist.inf_seen && v >= 0);
        }
    }
    return samples;
}

/* The value of the sample "name{labels}" (exact text), or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

/* ---- helpers ---------------------------------------------------------------
 */

static zinx_server_t *metrics_server(int workers, const char *addr)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = (uint32_t)workers;
    snprintf(cfg.metrics_addr, sizeof(cfg.metrics_addr), "%s", addr);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_router_t r = {.handle = tf_echo};
    assert_int_equal(zinx_server_add_router(s, ID, &r), 0);
    return s;
}

/* Scrapes /metrics and returns its body (checked for format). */
static const char *scrape(int mport)
{
    long n = th_get(mport, "/metrics", resp, sizeof(resp), tf_ms(T_IO));
    assert_true(n > 0);
    assert_int_equal(th_status(resp), 200);
    char v[128];
    assert_int_equal(th_header(resp, "Content-Type", v, sizeof(v)), 0);
    assert_string_equal(v, "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(th_header(resp, "Content-Length", v, sizeof(v)), 0);
    const char *body = th_body(resp);
    assert_non_null(body);
    assert_int_equal(strtol(v, NULL, 10), (long)strlen(body));
    check_text(body);
    return body;
}

static void frames(int fd, uint32_t id, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t rid, rlen;
        uint8_t buf[64];
        assert_int_equal(tc_roundtrip(fd, TLV, id, "abcd", 4, &rid, buf,
                                      sizeof(buf), &rlen, tf_ms(T_IO)),
                         0);
        assert_int_equal(rid, id);
    }
}

/* Scrapes until series reads want: what a loop or worker counts after
   the reply left may lag the client by a moment. Returns the last
   value. */
static double wait_sample(int mport, const char *series, double want)
{
    uint64_t end = tf_now_ms() + (uint64_t)tf_ms(T_IO);
    double v;
    while ((v = sample(scrape(mport), series)) != want && tf_now_ms() < end)
        tf_sleep_ms(5);
    return v;
}

/* ---- tests ------------------------------------------------------------------
 */

static void run_values(int workers)
{
    zinx_server_t *s = metrics_server(workers, "127.0.0.1:0");
    assert_int_equal(zinx_server_metrics_port(s), 0);
    assert_int_equal(zinx_server_metrics_track_id(s, 9), 0);
    assert_int_equal(zinx_server_metrics_track_id(s, 9), 0);
    int port = tf_start_or_fail(s);
    int mport = zinx_server_metrics_port(s);
    assert_true(mport > 0 && mport != port);
    assert_int_equal(zinx_server_metrics_track_id(s, 10), ZINX_ESTATE);

    int fd = tc_connect(port);
    assert_true(fd >= 0);
    frames(fd, ID, 50);
    assert_int_equal(tc_echo_call(fd, TLV, "x", 1, tf_ms(T_IO)), 0);
    assert_int_equal(zinx_server_broadcast(s, 9, "b", 1), 1);
    uint32_t rid, rlen;
    uint8_t buf[16];
    assert_int_equal(
        tc_recv_frame(fd, TLV, &rid, buf, sizeof(buf), &rlen, tf_ms(T_IO)), 0);
    assert_int_equal(rid, 9);

    const char *text = scrape(mport);
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_true(sample(text, "zinx_messages_received_total{id=\"7\"}") == 50);
    assert_true(sample(text, "zinx_messages_sent_total{id=\"7\"}") == 50);
    assert_true(sample(text, "zinx_messages_received_total{id=\"1\"}") == 1);
    assert_true(sample(text, "zinx_messages_sent_total{id=\"9\"}") == 1);
    assert_true(sample(text, "zinx_messages_received_total{id=\"other\"}") ==
                0);
    assert_true(sample(text, "zinx_msgs_in_total") == (double)st.msgs_in);
    assert_true(sample(text, "zinx_msgs_out_total") == (double)st.msgs_out);
    assert_true(sample(text, "zinx_accepted_total") == (double)st.accepted);
    assert_true(sample(text, "zinx_accepted_total") == 1);
    assert_true(sample(text, "zinx_connections") == 1);
    /* 51 frames of 8 header bytes and 4 or 1 payload bytes each way */
    assert_true(wait_sample(mport, "zinx_handler_seconds_count", 51) == 51);
    assert_true(wait_sample(mport, "zinx_received_bytes_total", 51 * 8 + 201) ==
                51 * 8 + 201);
    assert_true(wait_sample(mport, "zinx_sent_bytes_total", 52 * 8 + 202) ==
                52 * 8 + 202);
    text = scrape(mport);
    assert_true(
        sample(text, "zinx_loop_iteration_seconds_count{loop=\"0\"}") +
            sample(text, "zinx_loop_iteration_seconds_count{loop=\"1\"}") >
        0);
    if (workers > 0)
        assert_true(sample(text, "zinx_worker_queue_depth{worker=\"1\"}") >= 0);
    else
        assert_true(sample(text, "zinx_worker_queue_depth{worker=\"0\"}") < 0);
    tc_close(fd);
    tf_wait_stat(s, TF_STAT(connections), 0, tf_ms(T_IO));
    text = scrape(mport);
    assert_true(sample(text, "zinx_connections") == 0);
    assert_true(sample(text, "zinx_metrics_scrapes_total") >= 2);

    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    assert_int_equal(zinx_server_metrics_port(s), 0);
    /* Closed with the server. */
    assert_true(th_get(mport, "/metrics", resp, sizeof(resp), 1000) < 0);
    zinx_server_free(s);
}

static void test_values_workers(void **state)
{
    (void)state;
    run_values(2);
}

static void test_values_inline(void **state)
{
    (void)state;
    run_values(0);
}

/* ---- the C API
 * ----------------------------------------------------------------- */

typedef struct seen {
    int series, histograms, stop_at;
    bool bad;
} seen_t;

static int visitor(const zinx_metric_t *m, void *udata)
{
    seen_t *v = udata;
    v->series++;
    if (m->struct_size != sizeof(*m) || m->name == NULL || m->help == NULL)
        v->bad = true;
    if (m->type == ZINX_METRIC_HISTOGRAM) {
        v->histograms++;
        for (size_t i = 1; i < m->nbuckets; i++)
            if (m->bounds[i] <= m->bounds[i - 1] ||
                m->buckets[i] < m->buckets[i - 1])
                v->bad = true;
        if (m->nbuckets == 0 || m->buckets[m->nbuckets - 1] > m->count)
            v->bad = true;
    }
    return v->series == v->stop_at ? 42 : 0;
}

static void test_api(void **state)
{
    (void)state;
    seen_t v = {0};
    assert_int_equal(zinx_server_metrics_visit(NULL, visitor, &v), ZINX_EINVAL);
    assert_int_equal(zinx_server_metrics_text(NULL, resp, 10), ZINX_EINVAL);
    assert_int_equal(zinx_server_metrics_port(NULL), 0);
    assert_int_equal(zinx_server_metrics_track_id(NULL, 1), ZINX_EINVAL);

    /* Without MetricsAddr: no listener, the statistics all the same. */
    zinx_server_t *s = metrics_server(2, "");
    assert_int_equal(zinx_server_metrics_visit(s, NULL, NULL), ZINX_EINVAL);
    assert_int_equal(zinx_server_metrics_text(s, NULL, 10), ZINX_EINVAL);
    int port = tf_start_or_fail(s);
    assert_int_equal(zinx_server_metrics_port(s), 0);
    int fd = tc_connect(port);
    frames(fd, ID, 3);
    long need = zinx_server_metrics_text(s, NULL, 0);
    assert_true(need > 0);
    assert_true(zinx_server_metrics_text(s, resp, sizeof(resp)) == need);
    check_text(resp);
    assert_true(sample(resp, "zinx_msgs_in_total") == 3);
    assert_true(sample(resp, "zinx_connections") == 1);
    assert_true(sample(resp, "zinx_worker_queue_depth{worker=\"0\"}") >= 0);
    /* Per-message rows are counted only with metrics on. */
    assert_null(strstr(resp, "zinx_handler_seconds"));
    assert_null(strstr(resp, "zinx_messages_received_total"));
    /* Cut like snprintf: the length of the whole, a terminated prefix. */
    char small[32];
    memset(small, 'x', sizeof(small));
    assert_true(zinx_server_metrics_text(s, small, sizeof(small)) == need);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, resp, sizeof(small) - 1);

    assert_int_equal(zinx_server_metrics_visit(s, visitor, &v), 0);
    assert_false(v.bad);
    assert_int_equal(v.histograms, 0);
    tc_close(fd);
    zinx_server_free(s);

    /* With it: histograms too, and a visitor may stop. */
    s = metrics_server(2, "127.0.0.1:0");
    tf_start_or_fail(s);
    v = (seen_t){0};
    assert_int_equal(zinx_server_metrics_visit(s, visitor, &v), 0);
    assert_false(v.bad);
    assert_true(v.histograms >= 2);
    int all = v.series;
    v = (seen_t){.stop_at = 3};
    assert_int_equal(zinx_server_metrics_visit(s, visitor, &v), 42);
    assert_int_equal(v.series, 3);
    assert_true(all > 3);
    zinx_server_free(s);
}

static void test_bad_addr(void **state)
{
    (void)state;
    zinx_server_t *s = metrics_server(0, "no-port");
    assert_int_equal(zinx_server_start(s), ZINX_ECONFIG);
    zinx_server_free(s);

    /* A port taken: start fails and leaves nothing running. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
    s = metrics_server(0, addr);
    assert_int_equal(zinx_server_start(s), ZINX_EADDRINUSE);
    assert_int_equal(zinx_server_metrics_port(s), 0);
    close(lfd);
    /* and may start again once the port is free */
    assert_int_equal(zinx_server_start(s), 0);
    assert_int_equal(zinx_server_metrics_port(s), ntohs(a.sin_port));
    zinx_server_free(s);

    /* IPv6 in brackets, every interface. */
    s = metrics_server(0, "[::1]:0");
    if (zinx_server_start(s) == 0)
        assert_true(zinx_server_metrics_port(s) > 0);
    zinx_server_free(s);
    s = metrics_server(0, ":0");
    assert_int_equal(zinx_server_start(s), 0);
    assert_true(th_get(zinx_server_metrics_port(s), "/metrics", resp,
                       sizeof(resp), tf_ms(T_IO)) > 0);
    assert_int_equal(th_status(resp), 200);
    zinx_server_free(s);
}

/* ---- HTTP, strict and bounded
 * ---------------------------------------------------- */

static int request(int mport, const char *req)
{
    long n =
        th_exchange(mport, req, strlen(req), resp, sizeof(resp), tf_ms(T_IO));
    assert_true(n > 0);
    return th_status(resp);
}

static void test_http_answers(void **state)
{
    (void)state;
    zinx_server_t *s = metrics_server(0, "127.0.0.1:0");
    tf_start_or_fail(s);
    int mport = zinx_server_metrics_port(s);
    assert_int_equal(request(mport, "GET /metrics HTTP/1.1\r\n\r\n"), 200);
    assert_int_equal(request(mport, "GET /metrics?x=1 HTTP/1.0\r\n\r\n"), 200);
    assert_int_equal(
        request(mport, "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n"), 200);
    char len[32];
    assert_int_equal(th_header(resp, "Content-Length", len, sizeof(len)), 0);
    assert_true(atol(len) > 100);
    assert_string_equal(th_body(resp), ""); /* HEAD: no body */
    assert_int_equal(request(mport, "GET / HTTP/1.1\r\n\r\n"), 404);
    assert_int_equal(request(mport, "GET /metricsx HTTP/1.1\r\n\r\n"), 404);
    assert_int_equal(request(mport, "POST /metrics HTTP/1.1\r\n\r\n"), 405);
    char allow[64];
    assert_int_equal(th_header(resp, "Allow", allow, sizeof(allow)), 0);
    assert_string_equal(allow, "GET, HEAD");
    assert_int_equal(request(mport, "GET /metrics HTTP/2.0\r\n\r\n"), 400);
    assert_int_equal(request(mport, "get /metrics HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(request(mport, "GET  /metrics HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(request(mport, "\x01\x02\xff garbage\r\n\r\n"), 400);
    zinx_server_free(s);
}

/* A connection that sent `what` and then nothing. */
static int hold(int mport, const char *what)
{
    int fd = tc_connect(mport);
    assert_true(fd >= 0);
    if (what[0] != '\0')
        assert_int_equal(tc_send_raw(fd, what, strlen(what), tf_ms(T_IO)), 0);
    return fd;
}

static void test_http_hostile(void **state)
{
    (void)state;
    zinx_server_t *s = metrics_server(0, "127.0.0.1:0");
    tf_start_or_fail(s);
    int mport = zinx_server_metrics_port(s);
    int fds[80], n = 0;

    /* Slowloris: a head that never ends, a byte now and then. */
    int slow = hold(mport, "GET /metr");
    /* Many idle connections, more than the listener keeps. */
    for (int i = 0; i < 70; i++)
        fds[n++] = hold(mport, i % 2 ? "" : "GET /metrics HTTP/1.1\r\nX: y");
    /* A scrape still gets its answer, at once. */
    uint64_t t0 = tf_now_ms();
    scrape(mport);
    assert_true(tf_now_ms() - t0 < (uint64_t)tf_ms(2000));
    assert_int_equal(tc_send_raw(slow, "i", 1, tf_ms(T_IO)), 0);

    /* A head larger than 8 KiB: 431, closed, memory bounded. */
    static char huge[20000];
    int k = snprintf(huge, sizeof(huge), "GET /metrics HTTP/1.1\r\n");
    while (k < (int)sizeof(huge) - 16)
        k += snprintf(huge + k, sizeof(huge) - (size_t)k, "X-Pad: %s\r\n",
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    long got =
        th_exchange(mport, huge, (size_t)k, resp, sizeof(resp), tf_ms(T_IO));
    /* The answer may be lost to a reset if the rest was still unread;
       either way the connection ends. */
    if (got > 0)
        assert_int_equal(th_status(resp), 431);
    else
        assert_true(got == -ECONNRESET || got == -EPIPE);

    /* Garbage, then a scrape again. */
    assert_int_equal(request(mport, "\r\n\r\n"), 400);
    const char *text = scrape(mport);
    /* The oldest idle ones were let go to make room. */
    assert_true(sample(text, "zinx_metrics_dropped_total") >= 7);
    for (int i = 0; i < n; i++)
        tc_close(fds[i]);
    tc_close(slow);
    zinx_server_free(s);
}

/* A connection that sends nothing is closed at its deadline. */
static void test_http_deadline(void **state)
{
    (void)state;
    zinx_server_t *s = metrics_server(0, "127.0.0.1:0");
    tf_start_or_fail(s);
    int mport = zinx_server_metrics_port(s);
    int fd = hold(mport, "GET /metrics HTTP/1.1\r\n");
    uint64_t t0 = tf_now_ms();
    assert_int_equal(tc_expect_eof(fd, tf_ms(20000)), 0);
    uint64_t took = tf_now_ms() - t0;
    assert_true(took >= 9000 && took < (uint64_t)tf_ms(15000));
    tc_close(fd);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_workers),
        cmocka_unit_test(test_values_inline),
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_bad_addr),
        cmocka_unit_test(test_http_answers),
        cmocka_unit_test(test_http_hostile),
        cmocka_unit_test(test_http_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
