/*
 * Server fixture for the tests (see test_fixture.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "test_fixture.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_client.h"

int tf_verbose(void)
{
    const char *v = getenv("ZINX_TEST_VERBOSE");

    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

void tf_note(const char *fmt, ...)
{
    if (!tf_verbose())
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void tf_log_sink(zinx_log_level_t level, const char *message, void *udata)
{
    tf_server_t *ts = udata;

    if (ts != NULL && (unsigned)level < 4)
        atomic_fetch_add(&ts->log_count[level], 1);
    if (tf_verbose())
        fprintf(stderr, "[zinx %s] %s\n", zinx_log_level_name(level), message);
}

void tf_config(zinx_config_t *cfg)
{
    zinx_config_default(cfg);
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    snprintf(cfg->name, sizeof(cfg->name), "zinx-test");
    cfg->tcp_port = 0;
    cfg->max_conn = 64;
    cfg->worker_pool_size = 2;
    cfg->io_threads = 2;
    cfg->drain_timeout_ms = 5000;
}

void tf_config_many_conns(zinx_config_t *cfg)
{
    tf_config(cfg);
    cfg->max_conn = 100000;
}

tf_server_t *tf_server_new(const zinx_config_t *cfg)
{
    zinx_config_t def;
    tf_server_t *ts = calloc(1, sizeof(*ts));

    if (ts == NULL)
        return NULL;
    for (int i = 0; i < 4; i++)
        atomic_init(&ts->log_count[i], 0);
    if (cfg == NULL) {
        tf_config(&def);
        cfg = &def;
    }
    ts->srv = zinx_server_new(cfg);
    if (ts->srv == NULL) {
        free(ts);
        return NULL;
    }
    zinx_server_set_log_sink(ts->srv, tf_log_sink, ts);
    return ts;
}

int tf_server_start(tf_server_t *ts)
{
    int rc = zinx_server_start(ts->srv);

    if (rc == 0)
        ts->port = zinx_server_port(ts->srv);
    return rc;
}

void tf_server_free(tf_server_t *ts)
{
    if (ts == NULL)
        return;
    zinx_server_free(ts->srv);
    free(ts);
}

zinx_server_t *tf_echo_server_new(const zinx_config_t *cfg)
{
    zinx_server_t *s = zinx_server_new(cfg);

    assert_non_null(s);
    assert_int_equal(zinx_server_set_log_sink(s, tf_log_sink, NULL), 0);
    zinx_router_t echo = {.handle = tf_echo};
    assert_int_equal(zinx_server_add_router(s, TC_ECHO_ID, &echo), 0);
    return s;
}

int tf_start_or_fail(zinx_server_t *s)
{
    int rc = zinx_server_start(s);

    if (rc != 0)
        fail_msg("zinx_server_start: %s", zinx_strerror(rc));
    int port = zinx_server_port(s);
    assert_true(port > 0);
    return port;
}

uint64_t tf_stat(const zinx_server_t *srv, size_t off)
{
    zinx_server_stats_t st;
    uint64_t v;

    zinx_server_stats(srv, &st);
    memcpy(&v, (const char *)&st + off, sizeof(v));
    return v;
}

uint64_t tf_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t tf_now_ms(void)
{
    return tf_now_us() / 1000u;
}

int tf_ms_left(uint64_t end_ms)
{
    uint64_t now = tf_now_ms();

    if (now >= end_ms)
        return 0;
    return end_ms - now > 1000000u ? 1000000 : (int)(end_ms - now);
}

void tf_sleep_us(int us)
{
    struct timespec ts = {.tv_sec = us / 1000000,
                          .tv_nsec = (long)(us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void tf_sleep_ms(int ms)
{
    tf_sleep_us(ms * 1000);
}

uint64_t tf_wait_stat(const zinx_server_t *srv, size_t off, uint64_t want,
                      int timeout_ms)
{
    uint64_t deadline = tf_now_ms() + (uint64_t)timeout_ms;
    uint64_t v;

    while ((v = tf_stat(srv, off)) != want && tf_now_ms() < deadline)
        tf_sleep_ms(1);
    return v;
}

uint64_t tf_wait_stat_ge(const zinx_server_t *srv, size_t off, uint64_t want,
                         int timeout_ms)
{
    uint64_t deadline = tf_now_ms() + (uint64_t)timeout_ms;
    uint64_t v;

    while ((v = tf_stat(srv, off)) < want && tf_now_ms() < deadline)
        tf_sleep_ms(1);
    return v;
}

int tf_wait_until(int (*pred)(void *arg), void *arg, int timeout_ms)
{
    uint64_t deadline = tf_now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        if (pred(arg))
            return 1;
        if (tf_now_ms() >= deadline)
            return 0;
        tf_sleep_ms(1);
    }
}

int tf_wait_atomic_ge(atomic_int *v, int want, int timeout_ms)
{
    uint64_t deadline = tf_now_ms() + (uint64_t)timeout_ms;
    int cur;

    while ((cur = atomic_load(v)) < want && tf_now_ms() < deadline)
        tf_sleep_ms(1);
    return cur;
}

int tf_scale_pct(void)
{
    const char *v = getenv("ZINX_TEST_SCALE");

    if (v != NULL && *v != '\0') {
        int pct = atoi(v);
        if (pct >= 1 && pct <= 1000)
            return pct;
    }
#if TF_TSAN
    return 25;
#elif TF_ASAN
    return 50;
#else
    return 100;
#endif
}

int tf_scaled(int n, int min)
{
    long v = (long)n * tf_scale_pct() / 100;

    return v < min ? min : (int)v;
}

int tf_ms(int ms)
{
#if TF_TSAN
    return ms * 4;
#elif TF_ASAN
    return ms * 2;
#else
    return ms;
#endif
}

int tf_join(pthread_t t, int timeout_ms, void **ret)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return pthread_timedjoin_np(t, ret, &ts);
}

typedef struct waiter {
    zinx_server_t *srv;
    int rc;
} waiter_t;

static void *wait_main(void *arg)
{
    waiter_t *w = arg;

    w->rc = zinx_server_wait(w->srv);
    return NULL;
}

int tf_stop_wait(zinx_server_t *srv, int timeout_ms)
{
    int rc = zinx_server_stop(srv);

    if (rc != 0)
        return rc;
    /* Leaked on purpose when the wait hangs: the thread may still use it. */
    waiter_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->srv = srv;
    pthread_t t;
    if (pthread_create(&t, NULL, wait_main, w) != 0) {
        free(w);
        return -EAGAIN;
    }
    if (tf_join(t, timeout_ms, NULL) != 0)
        return -ETIMEDOUT;
    rc = w->rc;
    free(w);
    return rc;
}

const char *tf_rc_name(int rc)
{
    if (rc == 0)
        return "OK";
    if (rc == TC_EOF)
        return "TC_EOF";
    return zinx_err_name(rc);
}

static void count_start(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    atomic_fetch_add(&((tf_hooks_t *)udata)->starts, 1);
}

void tf_count_stop(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    atomic_fetch_add(&((tf_hooks_t *)udata)->stops, 1);
}

int tf_count_hooks(zinx_server_t *srv, tf_hooks_t *h)
{
    int rc = zinx_server_on_conn_start(srv, count_start, h);
    return rc != 0 ? rc : zinx_server_on_conn_stop(srv, tf_count_stop, h);
}

void tf_echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}
