/*
 * Stop and release: graceful stop with requests in flight, the drain
 * deadline, properties freed exactly once, start/stop cycles, and the
 * inline (WorkerPoolSize 0) variants of the echo and hook scenarios.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scenarios.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000

static void count_hook(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    atomic_fetch_add((atomic_int *)udata, 1);
}

/* ---- graceful stop with requests in flight ---- */

static void sleepy_echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    tf_sleep_ms(1);
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}

/* Reads replies until EOF; checks their order; returns how many. */
static int read_until_eof(int fd, int max)
{
    int n = 0;

    for (;;) {
        uint8_t buf[8];
        uint32_t id, len;
        int rc =
            tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO));
        if (rc == TC_EOF)
            return n;
        if (rc != 0)
            fail_msg("after %d replies: %s", n, tf_rc_name(rc));
        assert_int_equal(len, 4);
        assert_int_equal(frame_get_u32(buf), (uint32_t)n);
        n++;
        assert_true(n <= max);
    }
}

static void test_graceful_stop_in_flight(void **state)
{
    (void)state;
    enum { CONNS = 8 };
    int reqs = tf_scaled(200, 50);
    atomic_int *stops = calloc(1, sizeof(*stops));
    assert_non_null(stops);
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = 4;
    cfg.drain_timeout_ms = 20000;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = sleepy_echo};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, count_hook, stops), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    int fds[CONNS];
    uint8_t *out = malloc((size_t)reqs * 12);
    assert_non_null(out);
    for (int i = 0; i < reqs; i++) {
        uint8_t p[4];
        frame_put_u32(p, (uint32_t)i);
        frame_encode(TLV, 1, p, 4, out + (size_t)i * 12);
    }
    for (int c = 0; c < CONNS; c++) {
        fds[c] = tc_connect(ts->port);
        assert_true(fds[c] >= 0);
        TF_ASSERT_RC(tc_send_raw(fds[c], out, (size_t)reqs * 12, tf_ms(T_IO)),
                     0);
    }
    /* Stop while handlers are busy and replies are queued. */
    assert_true(tf_wait_stat_ge(ts->srv, TF_STAT(msgs_out), 20, tf_ms(T_IO)) >=
                20);
    TF_ASSERT_RC(tf_stop_wait(ts->srv, tf_ms(30000)), 0);
    assert_int_equal(atomic_load(stops), CONNS);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(closed)), CONNS);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(connections)), 0);
    int late = tc_connect(ts->port);
    TF_ASSERT_RC(late < 0 ? late : 0, -ECONNREFUSED);
    tc_close(late);

    uint64_t replies = 0;
    for (int c = 0; c < CONNS; c++) {
        replies += (uint64_t)read_until_eof(fds[c], reqs);
        tc_close(fds[c]);
    }
    /* Every request the server decoded was answered before EOF. */
    assert_int_equal(replies, tf_stat(ts->srv, TF_STAT(msgs_in)));
    assert_int_equal(replies, tf_stat(ts->srv, TF_STAT(msgs_out)));
    assert_true(replies > 0);
    tf_server_free(ts);
    free(out);
    free(stops);
}

/* ---- the drain deadline ---- */

enum { HUGE_REPLY = 1000000 };

static void huge_reply(zinx_request_t *req, void *udata)
{
    (void)udata;
    uint8_t *p = calloc(1, HUGE_REPLY);

    if (p != NULL)
        zinx_conn_send_msg(zinx_request_conn(req), 1, p, HUGE_REPLY);
    free(p);
}

static void test_stop_drain_deadline(void **state)
{
    (void)state;
    enum { REQS = 10 };
    atomic_int *stops = calloc(1, sizeof(*stops));
    assert_non_null(stops);
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.max_packet_size = HUGE_REPLY;
    cfg.drain_timeout_ms = 300;
    cfg.output_hard_limit = 0; /* the output must stay stuck, not be cut */
    cfg.output_soft_limit = 0;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = huge_reply};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, count_hook, stops), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    /* A client that asks for 10 MB and never reads. */
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    for (int i = 0; i < REQS; i++)
        TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "", 0, tf_ms(T_IO)), 0);
    /*
     * Back-pressure may leave some requests unread; wait until the
     * replies stop coming, i.e. the output is stuck.
     */
    uint64_t out = 0;
    uint64_t until = tf_now_ms() + (uint64_t)tf_ms(T_IO);
    for (;;) {
        uint64_t v = tf_stat(ts->srv, TF_STAT(msgs_out));
        if ((v > 0 && v == out) || tf_now_ms() > until)
            break;
        out = v;
        tf_sleep_ms(200);
    }
    assert_true(out > 0);
    int64_t t0 = tf_now_ms();
    TF_ASSERT_RC(tf_stop_wait(ts->srv, tf_ms(T_IO)), 0);
    int64_t took = tf_now_ms() - t0;
    if (took > tf_ms(3000))
        fail_msg("stop took %lld ms with DrainTimeoutMs 300", (long long)took);
    assert_int_equal(atomic_load(stops), 1);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(closed)), 1);
    tc_close_rst(fd);
    tf_server_free(ts);
    free(stops);
}

/* ---- properties ---- */

enum { MAX_VALS = 1024 };

typedef struct prop_ctx {
    atomic_int allocated;
    atomic_int freed[MAX_VALS];
    atomic_int violations;
    atomic_int stop_reads; /* OnConnStop found "a" readable and alive */
} prop_ctx_t;

typedef struct prop_val {
    prop_ctx_t *ctx;
    int serial;
} prop_val_t;

static prop_val_t *new_val(prop_ctx_t *ctx)
{
    int serial = atomic_fetch_add(&ctx->allocated, 1);
    prop_val_t *v = malloc(sizeof(*v));

    if (v == NULL || serial >= MAX_VALS)
        abort();
    v->ctx = ctx;
    v->serial = serial;
    return v;
}

static void val_free(void *value)
{
    prop_val_t *v = value;

    atomic_fetch_add(&v->ctx->freed[v->serial], 1);
    free(v);
}

static int freed(prop_ctx_t *ctx, int serial)
{
    return atomic_load(&ctx->freed[serial]);
}

static void bad(prop_ctx_t *ctx)
{
    atomic_fetch_add(&ctx->violations, 1);
}

static void set_or_bad(prop_ctx_t *ctx, zinx_conn_t *conn, const char *key)
{
    prop_val_t *v = new_val(ctx);

    if (zinx_conn_set_property(conn, key, v, val_free) != 0) {
        bad(ctx);
        val_free(v);
    }
}

static void prop_start(zinx_conn_t *conn, void *udata)
{
    prop_ctx_t *ctx = udata;
    prop_val_t *v = new_val(ctx);

    if (zinx_conn_set_property(conn, NULL, v, val_free) != ZINX_EINVAL)
        bad(ctx);
    val_free(v);
    set_or_bad(ctx, conn, "a");
    set_or_bad(ctx, conn, "b");
}

/* Replacing "a" frees the old value at once. */
static void prop_replace(zinx_conn_t *conn, prop_ctx_t *ctx)
{
    void *old = NULL, *now = NULL;

    if (zinx_conn_get_property(conn, "a", &old) != 0 || old == NULL) {
        bad(ctx);
        return;
    }
    int serial = ((prop_val_t *)old)->serial;
    prop_val_t *v = new_val(ctx);
    if (zinx_conn_set_property(conn, "a", v, val_free) != 0) {
        bad(ctx);
        val_free(v);
        return;
    }
    if (freed(ctx, serial) != 1)
        bad(ctx);
    if (zinx_conn_get_property(conn, "a", &now) != 0 || now != v)
        bad(ctx);
}

/* Removing "b" frees it; a second remove finds nothing. */
static void prop_remove(zinx_conn_t *conn, prop_ctx_t *ctx)
{
    void *old = NULL;

    if (zinx_conn_get_property(conn, "b", &old) != 0 || old == NULL) {
        bad(ctx);
        return;
    }
    int serial = ((prop_val_t *)old)->serial;
    if (zinx_conn_remove_property(conn, "b") != 0 || freed(ctx, serial) != 1)
        bad(ctx);
    if (zinx_conn_remove_property(conn, "b") != ZINX_ENOENT)
        bad(ctx);
    if (zinx_conn_get_property(conn, "b", &old) != ZINX_ENOENT)
        bad(ctx);
}

static void prop_handle(zinx_request_t *req, void *udata)
{
    prop_ctx_t *ctx = udata;
    zinx_conn_t *conn = zinx_request_conn(req);

    switch (zinx_request_msg_id(req)) {
    case 1:
        prop_replace(conn, ctx);
        break;
    case 2:
        prop_remove(conn, ctx);
        break;
    default:
        set_or_bad(ctx, conn, "c");
        set_or_bad(ctx, conn, "a");
        break;
    }
    zinx_conn_send_msg(conn, zinx_request_msg_id(req), NULL, 0);
}

static void prop_stop(zinx_conn_t *conn, void *udata)
{
    prop_ctx_t *ctx = udata;
    void *v = NULL;

    if (zinx_conn_get_property(conn, "a", &v) == 0 && v != NULL &&
        freed(ctx, ((prop_val_t *)v)->serial) == 0)
        atomic_fetch_add(&ctx->stop_reads, 1);
}

static void ack(int fd, uint32_t msg)
{
    uint8_t buf[8];
    uint32_t id, len;

    TF_ASSERT_RC(tc_roundtrip(fd, TLV, msg, "", 0, &id, buf, sizeof(buf), &len,
                              tf_ms(T_IO)),
                 0);
    assert_int_equal(id, msg);
}

static tf_server_t *prop_server(prop_ctx_t *ctx)
{
    tf_server_t *ts = tf_server_new(NULL);
    zinx_router_t r = {.handle = prop_handle, .udata = ctx};

    assert_non_null(ts);
    for (uint32_t id = 1; id <= 3; id++)
        TF_ASSERT_RC(zinx_server_add_router(ts->srv, id, &r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, prop_start, ctx), 0);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, prop_stop, ctx), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

/* Sets "e" from this (non-framework) thread through a manager ref. */
static zinx_conn_t *set_from_main(tf_server_t *ts, prop_ctx_t *ctx, int fd)
{
    uint64_t ids[8];
    size_t n = zinx_connmgr_ids(zinx_server_connmgr(ts->srv), ids, 8);
    char want[32];

    snprintf(want, sizeof(want), "127.0.0.1:%d", tc_local_port(fd));
    for (size_t i = 0; i < n && i < 8; i++) {
        zinx_conn_t *c = zinx_connmgr_get(zinx_server_connmgr(ts->srv), ids[i]);
        if (c != NULL && strcmp(zinx_conn_remote_addr(c), want) == 0) {
            prop_val_t *v = new_val(ctx);
            TF_ASSERT_RC(zinx_conn_set_property(c, "e", v, val_free), 0);
            return c;
        }
        zinx_conn_unref(c);
    }
    fail_msg("connection %s not in the manager", want);
    return NULL;
}

static void test_properties_freed(void **state)
{
    (void)state;
    enum { CONNS = 4 };
    prop_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    tf_server_t *ts = prop_server(ctx);
    int fds[CONNS];
    zinx_conn_t *refs[CONNS];

    for (int i = 0; i < CONNS; i++) {
        fds[i] = tc_connect(ts->port);
        assert_true(fds[i] >= 0);
        ack(fds[i], 1);
        ack(fds[i], 2);
        ack(fds[i], 3);
        ack(fds[i], 1);
        refs[i] = set_from_main(ts, ctx, fds[i]);
    }
    /* Half leave now; the rest are closed by the server's end. */
    for (int i = 0; i < CONNS / 2; i++)
        tc_close(fds[i]);
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(closed), CONNS / 2, tf_ms(T_IO)),
        CONNS / 2);
    for (int i = 0; i < CONNS / 2; i++) {
        prop_val_t *v = new_val(ctx);
        TF_ASSERT_RC(zinx_conn_set_property(refs[i], "late", v, val_free),
                     ZINX_ECLOSED);
        assert_int_equal(atomic_load(&ctx->freed[v->serial]), 0);
        val_free(v);
        void *got = NULL;
        TF_ASSERT_RC(zinx_conn_get_property(refs[i], "a", &got), ZINX_ENOENT);
    }
    tf_server_free(ts);
    for (int i = CONNS / 2; i < CONNS; i++) {
        TF_ASSERT_RC(tc_expect_eof(fds[i], tf_ms(T_IO)), 0);
        tc_close(fds[i]);
    }
    for (int i = 0; i < CONNS; i++)
        zinx_conn_unref(refs[i]);

    assert_int_equal(atomic_load(&ctx->violations), 0);
    assert_int_equal(atomic_load(&ctx->stop_reads), CONNS);
    int n = atomic_load(&ctx->allocated);
    for (int s = 0; s < n; s++)
        if (atomic_load(&ctx->freed[s]) != 1)
            fail_msg("property value %d freed %d times", s,
                     atomic_load(&ctx->freed[s]));
    free(ctx);
}

/* ---- start/stop cycles ---- */

static void test_start_stop_cycles(void **state)
{
    (void)state;
    int cycles = tf_scaled(20, 5);

    for (int c = 0; c < cycles; c++) {
        zinx_config_t cfg;
        tf_config(&cfg);
        cfg.worker_pool_size = (uint32_t)(c % 3);
        tf_server_t *ts = tf_server_new(&cfg);
        assert_non_null(ts);
        zinx_router_t r = {.handle = tf_echo};
        TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
        TF_ASSERT_RC(tf_server_start(ts), 0);
        int fds[5];
        for (int i = 0; i < 5; i++) {
            uint8_t buf[8];
            uint32_t id, len;
            fds[i] = tc_connect(ts->port);
            assert_true(fds[i] >= 0);
            TF_ASSERT_RC(tc_roundtrip(fds[i], TLV, 1, "c", 1, &id, buf,
                                      sizeof(buf), &len, tf_ms(T_IO)),
                         0);
        }
        if (c % 2 == 0)
            TF_ASSERT_RC(tf_stop_wait(ts->srv, tf_ms(T_IO)), 0);
        tf_server_free(ts);
        for (int i = 0; i < 5; i++) {
            TF_ASSERT_RC(tc_expect_eof(fds[i], tf_ms(T_IO)), 0);
            tc_close(fds[i]);
        }
    }
}

/* ---- sends from the program's threads racing the stop ---- */

typedef struct racer {
    zinx_server_t *srv;
    atomic_bool done;
    unsigned long calls;
} racer_t;

/* Notifies and broadcasts without pause, as a game's world thread does,
   while the server stops under it and after it stopped. */
static void *race_sends(void *arg)
{
    racer_t *r = arg;
    uint64_t ids[16];
    for (int i = 0; i < 16; i++)
        ids[i] = (uint64_t)i + 1;
    while (!atomic_load(&r->done)) {
        (void)zinx_server_notify(r->srv, ids, 16, 2, "n", 1);
        (void)zinx_server_broadcast(r->srv, 3, "b", 1);
        r->calls++;
    }
    return NULL;
}

/* A send that took its connection just before the connection ended may
   post to the connection's loop after the stop: the loops must outlive
   the stop until zinx_server_free() (under ASan a freed loop shows). */
static void test_sends_race_the_stop(void **state)
{
    (void)state;
    int cycles = tf_scaled(12, 4);
    for (int c = 0; c < cycles; c++) {
        zinx_config_t cfg;
        tf_config(&cfg);
        tf_server_t *ts = tf_server_new(&cfg);
        assert_non_null(ts);
        TF_ASSERT_RC(tf_server_start(ts), 0);
        int fds[12];
        for (int i = 0; i < 12; i++) {
            fds[i] = tc_connect(ts->port);
            assert_true(fds[i] >= 0);
        }
        racer_t r = {.srv = ts->srv};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, race_sends, &r), 0);
        tf_sleep_ms(5 + c % 4);
        TF_ASSERT_RC(tf_stop_wait(ts->srv, tf_ms(T_IO)), 0);
        tf_sleep_ms(2);
        atomic_store(&r.done, true);
        TF_ASSERT_RC(tf_join(t, tf_ms(T_IO), NULL), 0);
        assert_true(r.calls > 0);
        tf_server_free(ts);
        for (int i = 0; i < 12; i++)
            tc_close(fds[i]);
    }
}

/* ---- zinx_server_serve ---- */

typedef struct server_run {
    zinx_server_t *srv;
    int rc;
} server_run_t;

static void *serve_main(void *arg)
{
    server_run_t *r = arg;

    r->rc = zinx_server_serve(r->srv);
    return NULL;
}

static int port_known(void *arg)
{
    return zinx_server_port(arg) > 0;
}

/* Serves on a thread until `how` (0: zinx_server_stop, 1: SIGTERM). */
static void run_serve(int how)
{
    server_run_t *run = calloc(1, sizeof(*run));
    assert_non_null(run);
    run->rc = 1;
    tf_server_t *ts = tf_server_new(NULL);
    assert_non_null(ts);
    run->srv = ts->srv;
    zinx_router_t r = {.handle = tf_echo};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);

    /*
     * With how == 0 the server is started first and serve() only waits;
     * otherwise serve() starts it, and the port is learnt by polling
     * zinx_server_port() from this thread.
     */
    if (how == 0)
        TF_ASSERT_RC(tf_server_start(ts), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve_main, run), 0);
    assert_true(tf_wait_until(port_known, ts->srv, tf_ms(T_IO)));
    int fd = tc_connect(zinx_server_port(ts->srv));
    assert_true(fd >= 0);
    uint8_t buf[8];
    uint32_t id, len;
    TF_ASSERT_RC(tc_roundtrip(fd, TLV, 1, "s", 1, &id, buf, sizeof(buf), &len,
                              tf_ms(T_IO)),
                 0);
    if (how == 0)
        TF_ASSERT_RC(zinx_server_stop(ts->srv), 0);
    else
        assert_int_equal(kill(getpid(), SIGTERM), 0);
    assert_int_equal(tf_join(t, tf_ms(T_IO), NULL), 0);
    TF_ASSERT_RC(run->rc, 0);
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(T_IO)), 0);
    tc_close(fd);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(closed)), 1);
    tf_server_free(ts);
    free(run);
}

static void test_serve_until_stop(void **state)
{
    (void)state;
    run_serve(0);
}

static void test_serve_until_sigterm(void **state)
{
    (void)state;
    /*
     * Blocked here, before the serving thread exists, so every thread
     * of this process blocks it and only the server consumes it.
     */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    run_serve(1);
    sigset_t pending;
    sigpending(&pending);
    assert_int_equal(sigismember(&pending, SIGTERM), 0);
}

static void test_serve_bad_config(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.max_conn = 0;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    server_run_t *run = calloc(1, sizeof(*run));
    assert_non_null(run);
    run->srv = ts->srv;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve_main, run), 0);
    assert_int_equal(tf_join(t, tf_ms(T_IO), NULL), 0);
    TF_ASSERT_RC(run->rc, ZINX_ECONFIG);
    tf_server_free(ts);
    free(run);
}

/* ---- inline variants ---- */

static void test_inline_echo_tlv(void **state)
{
    (void)state;
    sc_echo(0, ZINX_FORMAT_TLV);
}

static void test_inline_echo_ltv_le(void **state)
{
    (void)state;
    sc_echo(0, ZINX_FORMAT_LTV_LE);
}

static void test_inline_hooks(void **state)
{
    (void)state;
    sc_hooks(0, tf_scaled(40, 20), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graceful_stop_in_flight),
        cmocka_unit_test(test_stop_drain_deadline),
        cmocka_unit_test(test_properties_freed),
        cmocka_unit_test(test_start_stop_cycles),
        cmocka_unit_test(test_sends_race_the_stop),
        cmocka_unit_test(test_inline_echo_tlv),
        cmocka_unit_test(test_inline_echo_ltv_le),
        cmocka_unit_test(test_inline_hooks),
        cmocka_unit_test(test_serve_until_stop),
        cmocka_unit_test(test_serve_bad_config),
        cmocka_unit_test(test_serve_until_sigterm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
