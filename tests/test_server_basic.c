/*
 * Server basics: echo in both packet formats, fallback routers, set-up
 * rules, router steps and abort, send limits, zero-length payloads and
 * connection accessors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 5000 /* ms for one network step */

/* Replies with ID + 1000 and the same payload. */
static void echo_plus_1000(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req) + 1000,
                       zinx_request_data(req), zinx_request_data_len(req));
}

static tf_server_t *new_server(uint32_t pool)
{
    zinx_config_t cfg;

    tf_config(&cfg);
    cfg.worker_pool_size = pool;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    return ts;
}

static int connect_ok(const tf_server_t *ts)
{
    int fd = tc_connect(ts->port);

    if (fd < 0)
        fail_msg("connect: %s", tf_rc_name(fd));
    return fd;
}

/* Receives one frame and checks its ID and payload. */
static void expect_frame(int fd, uint32_t want_id, const void *want,
                         uint32_t want_len)
{
    uint8_t buf[8192];
    uint32_t id, len;

    TF_ASSERT_RC(
        tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)), 0);
    assert_int_equal(id, want_id);
    assert_int_equal(len, want_len);
    if (want_len > 0)
        assert_memory_equal(buf, want, want_len);
}

static void test_echo_tlv(void **state)
{
    (void)state;
    sc_echo(2, ZINX_FORMAT_TLV);
}

static void test_echo_ltv_le(void **state)
{
    (void)state;
    sc_echo(2, ZINX_FORMAT_LTV_LE);
}

/* ---- fallback routers ---- */

/* Replies 9999 with the request's ID (big-endian) then its payload. */
static void fallback_echo(zinx_request_t *req, void *udata)
{
    uint8_t buf[64];
    uint32_t len = zinx_request_data_len(req);

    (void)udata;
    if (len > sizeof(buf) - 4)
        len = sizeof(buf) - 4;
    frame_put_u32(buf, zinx_request_msg_id(req));
    memcpy(buf + 4, zinx_request_data(req), len);
    zinx_conn_send_msg(zinx_request_conn(req), 9999, buf, len + 4);
}

static void test_fallback_custom(void **state)
{
    (void)state;
    tf_server_t *ts = new_server(2);
    zinx_router_t echo = {.handle = echo_plus_1000};
    zinx_router_t fb = {.handle = fallback_echo};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &echo), 0);
    TF_ASSERT_RC(zinx_server_set_fallback_router(ts->srv, &fb), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    int fd = connect_ok(ts);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 77, "abc", 3, tf_ms(T_IO)), 0);
    expect_frame(fd, 9999,
                 "\0\0\0\x4d"
                 "abc",
                 7);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "r", 1, tf_ms(T_IO)), 0);
    expect_frame(fd, 1001, "r", 1);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 0xFFFFFFFFu, "", 0, tf_ms(T_IO)), 0);
    expect_frame(fd, 9999, "\xff\xff\xff\xff", 4);
    tc_close(fd);
    tf_server_free(ts);
}

/* Unrouted frames are dropped; the connection keeps working. */
static void check_default_fallback(tf_server_t *ts)
{
    int fd = connect_ok(ts);

    TF_ASSERT_RC(tc_send_frame(fd, TLV, 77, "zzz", 3, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 78, "", 0, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "x", 1, tf_ms(T_IO)), 0);
    /* Handled in order, so a reply to 77 or 78 would come first. */
    expect_frame(fd, 1001, "x", 1);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(unrouted), 2, tf_ms(2000)),
                     2);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(msgs_in)), 3);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "y", 1, tf_ms(T_IO)), 0);
    expect_frame(fd, 1001, "y", 1);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(closed)), 0);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(unrouted)), 2);
    tc_close(fd);
}

static void test_fallback_default(void **state)
{
    (void)state;
    tf_server_t *ts = new_server(2);
    zinx_router_t echo = {.handle = echo_plus_1000};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &echo), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    check_default_fallback(ts);
    tf_server_free(ts);
}

static void test_fallback_restore_default(void **state)
{
    (void)state;
    tf_server_t *ts = new_server(2);
    zinx_router_t echo = {.handle = echo_plus_1000};
    zinx_router_t fb = {.handle = fallback_echo};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &echo), 0);
    TF_ASSERT_RC(zinx_server_set_fallback_router(ts->srv, &fb), 0);
    TF_ASSERT_RC(zinx_server_set_fallback_router(ts->srv, NULL), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    check_default_fallback(ts);
    tf_server_free(ts);
}

/* ---- set-up rules ---- */

static void test_add_router_errors(void **state)
{
    (void)state;
    tf_server_t *ts = new_server(2);
    zinx_router_t echo = {.handle = echo_plus_1000};
    zinx_router_t other = {.handle = fallback_echo};

    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &echo), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &other), ZINX_EEXIST);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 2, NULL), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 0, &echo), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 0xFFFFFFFFu, &echo), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    /* The first registration won; the router struct was copied. */
    echo.handle = fallback_echo;
    int fd = connect_ok(ts);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "a", 1, tf_ms(T_IO)), 0);
    expect_frame(fd, 1001, "a", 1);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 0, "b", 1, tf_ms(T_IO)), 0);
    expect_frame(fd, 1000, "b", 1);
    tc_close(fd);
    tf_server_free(ts);
}

static void noop_hook(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    (void)udata;
}

static void noop_sink(zinx_log_level_t level, const char *message, void *udata)
{
    (void)level;
    (void)message;
    (void)udata;
}

static void test_setup_after_start(void **state)
{
    (void)state;
    tf_server_t *ts = new_server(2);
    zinx_router_t echo = {.handle = echo_plus_1000};

    assert_int_equal(zinx_server_port(ts->srv), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &echo), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    assert_true(zinx_server_port(ts->srv) > 0);
    assert_true(zinx_server_port(ts->srv) <= 65535);

    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 2, &echo), ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_set_fallback_router(ts->srv, &echo), ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_set_fallback_router(ts->srv, NULL), ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, noop_hook, NULL),
                 ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, noop_hook, NULL),
                 ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_set_log_sink(ts->srv, noop_sink, NULL),
                 ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_start(ts->srv), ZINX_ESTATE);

    /* Rejected set-up changed nothing: ID 2 is still unrouted. */
    int fd = connect_ok(ts);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 2, "a", 1, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "b", 1, tf_ms(T_IO)), 0);
    expect_frame(fd, 1001, "b", 1);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(unrouted), 1, tf_ms(2000)),
                     1);
    tc_close(fd);
    tf_server_free(ts);
}

static void test_lifecycle_without_start(void **state)
{
    (void)state;
    zinx_server_free(NULL);
    tf_server_t *ts = new_server(2);
    assert_int_equal(zinx_server_port(ts->srv), 0);
    TF_ASSERT_RC(zinx_server_wait(ts->srv), ZINX_ESTATE);
    zinx_server_stats_t st;
    zinx_server_stats(ts->srv, &st);
    assert_int_equal(st.accepted + st.closed + st.msgs_in + st.connections, 0);
    assert_non_null(zinx_server_connmgr(ts->srv));
    assert_int_equal(zinx_connmgr_count(zinx_server_connmgr(ts->srv)), 0);
    assert_string_equal(zinx_server_config(ts->srv)->host, "127.0.0.1");
    tf_server_free(ts);
}

static void test_start_errors(void **state)
{
    (void)state;
    zinx_config_t cfg;

    tf_config(&cfg);
    cfg.max_conn = 0;
    tf_server_t *bad = tf_server_new(&cfg);
    assert_non_null(bad);
    TF_ASSERT_RC(tf_server_start(bad), ZINX_ECONFIG);
    assert_true(atomic_load(&bad->log_count[ZINX_LOG_WARN]) +
                    atomic_load(&bad->log_count[ZINX_LOG_ERROR]) >=
                1);
    assert_int_equal(zinx_server_port(bad->srv), 0);
    tf_server_free(bad);

    tf_server_t *a = new_server(1);
    TF_ASSERT_RC(tf_server_start(a), 0);
    tf_config(&cfg);
    cfg.tcp_port = a->port;
    tf_server_t *b = tf_server_new(&cfg);
    assert_non_null(b);
    TF_ASSERT_RC(tf_server_start(b), ZINX_EADDRINUSE);
    tf_server_free(b);
    tf_server_free(a);
}

/* ---- router steps and abort ---- */

typedef struct step_log {
    char text[128];
    size_t len;
} step_log_t;

static void log_start(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    zinx_conn_set_data(conn, calloc(1, sizeof(step_log_t)));
}

static void log_stop(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    free(zinx_conn_data(conn));
    zinx_conn_set_data(conn, NULL);
}

static void log_add(zinx_request_t *req, char c)
{
    step_log_t *lg = zinx_conn_data(zinx_request_conn(req));

    if (lg != NULL && lg->len + 1 < sizeof(lg->text))
        lg->text[lg->len++] = c;
}

/* Each step appends its letter (router udata) plus its position. */
static void step_pre(zinx_request_t *req, void *udata)
{
    const char *letters = udata;
    if (zinx_request_is_aborted(req))
        log_add(req, '?');
    log_add(req, letters[0]);
    if (letters[3] == 'p')
        zinx_request_abort(req);
}

static void step_handle(zinx_request_t *req, void *udata)
{
    const char *letters = udata;
    log_add(req, letters[1]);
    if (letters[3] == 'h') {
        if (zinx_request_is_aborted(req))
            log_add(req, '?');
        zinx_request_abort(req);
        if (!zinx_request_is_aborted(req))
            log_add(req, '!');
    }
}

/* Router 1's post step also sends the log and clears it. */
static void step_post(zinx_request_t *req, void *udata)
{
    const char *letters = udata;
    log_add(req, letters[2]);
    if (letters[3] == 'o')
        zinx_request_abort(req);
    if (zinx_request_msg_id(req) == 1) {
        zinx_conn_t *conn = zinx_request_conn(req);
        step_log_t *lg = zinx_conn_data(conn);
        zinx_conn_send_msg(conn, 1, lg->text, (uint32_t)lg->len);
        lg->len = 0;
    }
}

static void test_router_steps_and_abort(void **state)
{
    (void)state;
    /* letters: pre, handle, post, where to abort ('p', 'h', 'o', '-'). */
    static char r1[] = "GHI-", r2[] = "ABCp", r3[] = "DEFh", r5[] = "KLMo";
    tf_server_t *ts = new_server(2);
    zinx_router_t full1 = {step_pre, step_handle, step_post, r1};
    zinx_router_t full2 = {step_pre, step_handle, step_post, r2};
    zinx_router_t full3 = {step_pre, step_handle, step_post, r3};
    zinx_router_t only_handle = {NULL, step_handle, NULL, r1};
    zinx_router_t full5 = {step_pre, step_handle, step_post, r5};
    zinx_router_t empty = {NULL, NULL, NULL, NULL};

    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &full1), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 2, &full2), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 3, &full3), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 4, &only_handle), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 5, &full5), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 6, &empty), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, log_start, NULL), 0);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, log_stop, NULL), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    int fd = connect_ok(ts);
    uint8_t out[6 * 8];
    size_t n = 0;
    const uint32_t ids[] = {2, 3, 4, 5, 6, 1};
    for (size_t i = 0; i < 6; i++)
        n += frame_encode(TLV, ids[i], NULL, 0, out + n);
    TF_ASSERT_RC(tc_send_raw(fd, out, n, tf_ms(T_IO)), 0);
    expect_frame(fd, 1, "ADEHKLMGHI", 10);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "", 0, tf_ms(T_IO)), 0);
    expect_frame(fd, 1, "GHI", 3);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(unrouted)), 0);
    tc_close(fd);
    tf_server_free(ts);
}

/* ---- send limits and zero-length payloads ---- */

typedef struct send_rcs {
    atomic_int over, at_max, null_empty, bad_conn;
} send_rcs_t;

static void send_sizes(zinx_request_t *req, void *udata)
{
    send_rcs_t *rcs = udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    uint32_t max = zinx_server_config(zinx_conn_server(conn))->max_packet_size;
    uint8_t *big = calloc(1, (size_t)max + 1);

    if (big == NULL)
        return;
    memset(big, 'z', (size_t)max + 1);
    atomic_store(&rcs->over, zinx_conn_send_msg(conn, 2, big, max + 1));
    atomic_store(&rcs->at_max, zinx_conn_send_msg(conn, 3, big, max));
    atomic_store(&rcs->null_empty, zinx_conn_send_msg(conn, 4, NULL, 0));
    atomic_store(&rcs->bad_conn, zinx_conn_send_msg(NULL, 5, big, 1));
    free(big);
    /* Sent last, so the results above are stored when it arrives. */
    zinx_conn_send_msg(conn, 6, "done", 4);
}

static void test_send_msg_too_big(void **state)
{
    (void)state;
    send_rcs_t *rcs = calloc(1, sizeof(*rcs));
    assert_non_null(rcs);
    tf_server_t *ts = new_server(2);
    zinx_router_t r = {.handle = send_sizes, .udata = rcs};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    zinx_router_t echo = {.handle = echo_plus_1000};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 7, &echo), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    uint32_t max = zinx_server_config(ts->srv)->max_packet_size;
    uint8_t *want = malloc(max);
    assert_non_null(want);
    memset(want, 'z', max);
    int fd = connect_ok(ts);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "", 0, tf_ms(T_IO)), 0);
    expect_frame(fd, 3, want, max);
    expect_frame(fd, 4, NULL, 0);
    expect_frame(fd, 6, "done", 4);
    TF_ASSERT_RC(atomic_load(&rcs->over), ZINX_EMSGSIZE);
    TF_ASSERT_RC(atomic_load(&rcs->at_max), 0);
    TF_ASSERT_RC(atomic_load(&rcs->null_empty), 0);
    TF_ASSERT_RC(atomic_load(&rcs->bad_conn), ZINX_EINVAL);
    /* The refused send did not disturb the stream. */
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 7, "ok", 2, tf_ms(T_IO)), 0);
    expect_frame(fd, 1007, "ok", 2);
    tc_close(fd);
    tf_server_free(ts);
    free(want);
    free(rcs);
}

/* Replies 2000 when the empty payload looks right, 2001 when not. */
static void check_empty(zinx_request_t *req, void *udata)
{
    (void)udata;
    int ok =
        zinx_request_data(req) != NULL && zinx_request_data_len(req) == 0 &&
        zinx_request_msg(req).len == 0 && zinx_request_msg(req).data != NULL;
    zinx_conn_send_msg(zinx_request_conn(req), ok ? 2000 : 2001, NULL, 0);
}

static void test_zero_length_payload(void **state)
{
    (void)state;
    enum { COUNT = 100 };
    tf_server_t *ts = new_server(2);
    zinx_router_t r = {.handle = check_empty};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    int fd = connect_ok(ts);
    static const uint8_t req[8] = {0, 0, 0, 1, 0, 0, 0, 0};
    static const uint8_t rep[8] = {0, 0, 0x07, 0xd0, 0, 0, 0, 0};
    uint8_t got[8];
    TF_ASSERT_RC(tc_send_raw(fd, req, sizeof(req), tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_recv_raw(fd, got, sizeof(got), tf_ms(T_IO)), 0);
    assert_memory_equal(got, rep, sizeof(rep));

    uint8_t out[COUNT * 8], in[COUNT * 8], want[COUNT * 8];
    for (int i = 0; i < COUNT; i++) {
        memcpy(out + i * 8, req, 8);
        memcpy(want + i * 8, rep, 8);
    }
    TF_ASSERT_RC(
        tc_exchange(fd, out, sizeof(out), in, sizeof(in), 0, NULL, tf_ms(T_IO)),
        0);
    assert_memory_equal(in, want, sizeof(want));
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(msgs_in), COUNT + 1, tf_ms(2000)),
        COUNT + 1);
    tc_close(fd);
    tf_server_free(ts);
}

/* ---- connection accessors ---- */

typedef struct seen {
    pthread_mutex_t mu;
    zinx_server_t *srv;
    char remote[64], local[64];
    uint64_t id;
    uint32_t worker;
    int open, server_ok;
} seen_t;

static void record_conn(zinx_request_t *req, void *udata)
{
    seen_t *s = udata;
    zinx_conn_t *conn = zinx_request_conn(req);

    pthread_mutex_lock(&s->mu);
    snprintf(s->remote, sizeof(s->remote), "%s", zinx_conn_remote_addr(conn));
    snprintf(s->local, sizeof(s->local), "%s", zinx_conn_local_addr(conn));
    s->id = zinx_conn_id(conn);
    s->worker = zinx_conn_worker_id(conn);
    s->open = zinx_conn_is_open(conn);
    s->server_ok = zinx_conn_server(conn) == s->srv;
    pthread_mutex_unlock(&s->mu);
    zinx_conn_send_msg(conn, 1, "k", 1);
}

static void check_one_conn(tf_server_t *ts, seen_t *s, uint32_t pool)
{
    int fd = connect_ok(ts);
    char want[64];

    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "", 0, tf_ms(T_IO)), 0);
    expect_frame(fd, 1, "k", 1);
    pthread_mutex_lock(&s->mu);
    snprintf(want, sizeof(want), "127.0.0.1:%d", tc_local_port(fd));
    assert_string_equal(s->remote, want);
    snprintf(want, sizeof(want), "127.0.0.1:%d", ts->port);
    assert_string_equal(s->local, want);
    assert_true(s->id >= 1);
    assert_int_equal(s->worker, s->id % pool);
    assert_int_equal(s->open, 1);
    assert_int_equal(s->server_ok, 1);
    uint64_t id = s->id;
    pthread_mutex_unlock(&s->mu);

    zinx_conn_t *c = zinx_connmgr_get(zinx_server_connmgr(ts->srv), id);
    assert_non_null(c);
    assert_int_equal(zinx_conn_id(c), id);
    zinx_conn_unref(c);
    tc_close(fd);
}

static void test_conn_accessors(void **state)
{
    (void)state;
    enum { POOL = 3 };
    seen_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    tf_server_t *ts = new_server(POOL);
    s->srv = ts->srv;
    zinx_router_t r = {.handle = record_conn, .udata = s};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    uint64_t last = 0;
    for (int i = 0; i < 4; i++) {
        check_one_conn(ts, s, POOL);
        pthread_mutex_lock(&s->mu);
        assert_true(s->id > last);
        last = s->id;
        pthread_mutex_unlock(&s->mu);
    }
    tf_server_free(ts);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- the server's logger ---- */

static void test_server_log(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.log_isolation_level = 2; /* warn and error only */
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    unsigned warn0 = atomic_load(&ts->log_count[ZINX_LOG_WARN]);
    unsigned err0 = atomic_load(&ts->log_count[ZINX_LOG_ERROR]);
    zinx_server_log(ts->srv, ZINX_LOG_DEBUG, "debug %d", 1);
    zinx_server_log(ts->srv, ZINX_LOG_INFO, "info %s", "x");
    zinx_server_log(ts->srv, ZINX_LOG_WARN, "warn %d", 3);
    zinx_server_log(ts->srv, ZINX_LOG_ERROR, "error %d", 4);
    assert_int_equal(atomic_load(&ts->log_count[ZINX_LOG_DEBUG]), 0);
    assert_int_equal(atomic_load(&ts->log_count[ZINX_LOG_INFO]), 0);
    assert_int_equal(atomic_load(&ts->log_count[ZINX_LOG_WARN]), warn0 + 1);
    assert_int_equal(atomic_load(&ts->log_count[ZINX_LOG_ERROR]), err0 + 1);
    tf_server_free(ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_tlv),
        cmocka_unit_test(test_echo_ltv_le),
        cmocka_unit_test(test_fallback_custom),
        cmocka_unit_test(test_fallback_default),
        cmocka_unit_test(test_fallback_restore_default),
        cmocka_unit_test(test_add_router_errors),
        cmocka_unit_test(test_setup_after_start),
        cmocka_unit_test(test_lifecycle_without_start),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_router_steps_and_abort),
        cmocka_unit_test(test_send_msg_too_big),
        cmocka_unit_test(test_zero_length_payload),
        cmocka_unit_test(test_conn_accessors),
        cmocka_unit_test(test_server_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
