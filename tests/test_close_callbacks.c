/*
 * Keyed close callbacks: run once, in the order added, right after
 * OnConnStop on the handler thread, whatever ends the connection;
 * replace by (owner, key) keeps the place, remove, add after the end,
 * adds racing the close.
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

#include "test_client.h"
#include "test_fixture.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 5000
#define LOG_MAX 64

/* Owners and keys: any distinct addresses. */
static const char owner_a, owner_b, key_1, key_2, key_3;

/* What happened, in order: "stop" for OnConnStop, a callback's tag. */
typedef struct cb_log {
    pthread_mutex_t lock;
    char what[LOG_MAX][16];
    int n;
    atomic_int stops;
    atomic_int callbacks;
    pthread_t stop_thread;
    atomic_int wrong_thread; /* a callback not on OnConnStop's thread */
    atomic_int bad_state;    /* a callback saw the connection open */
    zinx_conn_t *conn;       /* a reference taken in OnConnStart */
} cb_log_t;

static void log_add(cb_log_t *l, const char *what)
{
    pthread_mutex_lock(&l->lock);
    if (l->n < LOG_MAX)
        snprintf(l->what[l->n++], sizeof(l->what[0]), "%s", what);
    pthread_mutex_unlock(&l->lock);
}

static cb_log_t *log_new(void)
{
    cb_log_t *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    pthread_mutex_init(&l->lock, NULL);
    return l;
}

static void log_free(cb_log_t *l)
{
    zinx_conn_unref(l->conn);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* A callback's udata: its tag and the log. */
typedef struct tag {
    cb_log_t *log;
    const char *name;
} tag_t;

static void on_close(zinx_conn_t *conn, const void *owner, const void *key,
                     void *udata)
{
    (void)owner;
    (void)key;
    tag_t *t = udata;
    cb_log_t *l = t->log;
    if (!pthread_equal(pthread_self(), l->stop_thread))
        atomic_fetch_add(&l->wrong_thread, 1);
    /* Closed: sends fail, adding is refused, properties still readable. */
    void *v = NULL;
    if (zinx_conn_is_open(conn) ||
        zinx_conn_send_msg(conn, 1, "x", 1) != ZINX_ECLOSED ||
        zinx_conn_add_close_callback(conn, &owner_a, &key_3, on_close, t) !=
            ZINX_ECLOSED ||
        zinx_conn_get_property(conn, "p", &v) != 0 || v != l)
        atomic_fetch_add(&l->bad_state, 1);
    log_add(l, t->name);
    atomic_fetch_add(&l->callbacks, 1);
}

static tag_t tags[8];

static tag_t *tag(cb_log_t *l, int i, const char *name)
{
    tags[i] = (tag_t){.log = l, .name = name};
    return &tags[i];
}

/* OnConnStart: a1, a2, b1, a3; a2 replaced by a2x (keeps its place); b1
   removed. */
static void register_start(zinx_conn_t *conn, void *udata)
{
    cb_log_t *l = udata;
    l->conn = zinx_conn_ref(conn);
    int bad = 0;
    bad |= zinx_conn_set_property(conn, "p", l, NULL);
    bad |= zinx_conn_add_close_callback(conn, &owner_a, &key_1, on_close,
                                        tag(l, 0, "a1"));
    bad |= zinx_conn_add_close_callback(conn, &owner_a, &key_2, on_close,
                                        tag(l, 1, "a2"));
    bad |= zinx_conn_add_close_callback(conn, &owner_b, &key_1, on_close,
                                        tag(l, 2, "b1"));
    bad |= zinx_conn_add_close_callback(conn, &owner_a, &key_3, on_close,
                                        tag(l, 3, "a3"));
    bad |= zinx_conn_add_close_callback(conn, &owner_a, &key_2, on_close,
                                        tag(l, 4, "a2x"));
    bad |= zinx_conn_remove_close_callback(conn, &owner_b, &key_1);
    if (bad != 0 ||
        zinx_conn_remove_close_callback(conn, &owner_b, &key_1) !=
            ZINX_ENOENT ||
        zinx_conn_add_close_callback(conn, &owner_a, &key_1, NULL, NULL) !=
            ZINX_EINVAL)
        atomic_fetch_add(&l->bad_state, 1);
    log_add(l, "start");
}

static void record_stop(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    cb_log_t *l = udata;
    l->stop_thread = pthread_self();
    atomic_fetch_add(&l->stops, 1);
    log_add(l, "stop");
}

/* ID 2 closes gracefully, ID 3 closes now. */
static void closer(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    if (zinx_request_msg_id(req) == 2)
        zinx_conn_close(conn);
    else
        zinx_conn_close_now(conn);
}

static tf_server_t *cb_server(cb_log_t *l, uint32_t pool)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = pool;
    cfg.max_packet_size = 1024;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = closer, .udata = NULL};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 2, &r), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 3, &r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, register_start, l), 0);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, record_stop, l), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

enum how { BY_EOF, BY_CLOSE, BY_CLOSE_NOW, BY_STOP, BY_OVERSIZE, BY_RESET };

static int log_count(void *arg)
{
    cb_log_t *l = arg;
    pthread_mutex_lock(&l->lock);
    int n = l->n;
    pthread_mutex_unlock(&l->lock);
    return n >= 5;
}

static int started(void *arg)
{
    cb_log_t *l = arg;
    pthread_mutex_lock(&l->lock);
    int n = l->n;
    pthread_mutex_unlock(&l->lock);
    return n >= 1;
}

static void run_close(enum how how, uint32_t pool)
{
    cb_log_t *l = log_new();
    tf_server_t *ts = cb_server(l, pool);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    assert_true(tf_wait_until(started, l, tf_ms(T_IO)));
    switch (how) {
    case BY_EOF:
        tc_close(fd);
        fd = -1;
        break;
    case BY_RESET:
        tc_close_rst(fd);
        fd = -1;
        break;
    case BY_CLOSE:
        TF_ASSERT_RC(tc_send_frame(fd, TLV, 2, "", 0, tf_ms(T_IO)), 0);
        break;
    case BY_CLOSE_NOW:
        TF_ASSERT_RC(tc_send_frame(fd, TLV, 3, "", 0, tf_ms(T_IO)), 0);
        break;
    case BY_OVERSIZE:
        TF_ASSERT_RC(tc_send_header(fd, TLV, 5, 4096, tf_ms(T_IO)), 0);
        break;
    case BY_STOP:
        TF_ASSERT_RC(tf_stop_wait(ts->srv, tf_ms(T_IO)), 0);
        break;
    }
    assert_true(tf_wait_until(log_count, l, tf_ms(T_IO)));
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), 1, tf_ms(T_IO)), 1);
    if (fd >= 0)
        tc_close(fd);
    tf_server_free(ts);
    /* Exactly once, after OnConnStop, in the order added. */
    assert_int_equal(atomic_load(&l->stops), 1);
    assert_int_equal(atomic_load(&l->callbacks), 3);
    assert_int_equal(l->n, 5);
    const char *want[] = {"start", "stop", "a1", "a2x", "a3"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(l->what[i], want[i]);
    assert_int_equal(atomic_load(&l->wrong_thread), 0);
    assert_int_equal(atomic_load(&l->bad_state), 0);
    /* After the end: refused, never run; nothing left to remove. */
    TF_ASSERT_RC(zinx_conn_add_close_callback(l->conn, &owner_b, &key_2,
                                              on_close, tag(l, 5, "late")),
                 ZINX_ECLOSED);
    TF_ASSERT_RC(zinx_conn_remove_close_callback(l->conn, &owner_a, &key_1),
                 ZINX_ENOENT);
    assert_int_equal(atomic_load(&l->callbacks), 3);
    log_free(l);
}

static void test_order_peer_eof(void **state)
{
    (void)state;
    run_close(BY_EOF, 2);
    run_close(BY_EOF, 0);
}

static void test_order_peer_reset(void **state)
{
    (void)state;
    run_close(BY_RESET, 2);
    run_close(BY_RESET, 0);
}

static void test_order_close(void **state)
{
    (void)state;
    run_close(BY_CLOSE, 2);
    run_close(BY_CLOSE, 0);
}

static void test_order_close_now(void **state)
{
    (void)state;
    run_close(BY_CLOSE_NOW, 2);
    run_close(BY_CLOSE_NOW, 0);
}

static void test_order_server_stop(void **state)
{
    (void)state;
    run_close(BY_STOP, 2);
    run_close(BY_STOP, 0);
}

static void test_order_oversize(void **state)
{
    (void)state;
    run_close(BY_OVERSIZE, 2);
    run_close(BY_OVERSIZE, 0);
}

/* ---- adds racing the close ------------------------------------------------
 */

typedef struct race {
    zinx_conn_t *conn;
    atomic_int added;   /* adds that returned 0 */
    atomic_int ran;     /* callbacks that ran */
    atomic_int refused; /* adds that returned ZINX_ECLOSED */
    atomic_int other;   /* any other result */
    atomic_int go;
    atomic_int have; /* conn is set */
    uintptr_t keys[4096];
} race_t;

static void count_run(zinx_conn_t *conn, const void *owner, const void *key,
                      void *udata)
{
    (void)conn;
    (void)owner;
    (void)key;
    atomic_fetch_add(&((race_t *)udata)->ran, 1);
}

static void *adder(void *arg)
{
    race_t *r = arg;
    while (!atomic_load(&r->go))
        ;
    for (int i = 0; i < 4096; i++) {
        int rc =
            zinx_conn_add_close_callback(r->conn, r, &r->keys[i], count_run, r);
        if (rc == 0)
            atomic_fetch_add(&r->added, 1);
        else if (rc == ZINX_ECLOSED)
            atomic_fetch_add(&r->refused, 1);
        else
            atomic_fetch_add(&r->other, 1);
        /* Every other one removed again: removes race the run too. */
        if (rc == 0 && (i & 1) &&
            zinx_conn_remove_close_callback(r->conn, r, &r->keys[i]) == 0)
            atomic_fetch_sub(&r->added, 1);
    }
    return NULL;
}

static void keep_conn(zinx_conn_t *conn, void *udata)
{
    race_t *r = udata;
    r->conn = zinx_conn_ref(conn);
    atomic_store(&r->have, 1);
}

static int have_conn(void *arg)
{
    return atomic_load(&((race_t *)arg)->have);
}

static void race_once(uint32_t pool)
{
    race_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = pool;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, keep_conn, r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    assert_true(tf_wait_until(have_conn, r, tf_ms(T_IO)));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, adder, r), 0);
    atomic_store(&r->go, 1);
    zinx_conn_close_now(r->conn);
    assert_int_equal(tf_join(t, tf_ms(T_IO * 4), NULL), 0);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), 1, tf_ms(T_IO)), 1);
    tc_close(fd);
    tf_server_free(ts);
    /* Every accepted add ran once; every refused one never. */
    assert_int_equal(atomic_load(&r->other), 0);
    assert_int_equal(atomic_load(&r->ran), atomic_load(&r->added));
    tf_note("race (pool %u): %d added and ran, %d refused", pool,
            atomic_load(&r->added), atomic_load(&r->refused));
    zinx_conn_unref(r->conn);
    free(r);
}

static void test_add_races_close(void **state)
{
    (void)state;
    for (int i = 0; i < tf_scaled(10, 3); i++) {
        race_once(2);
        race_once(0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_peer_eof),
        cmocka_unit_test(test_order_peer_reset),
        cmocka_unit_test(test_order_close),
        cmocka_unit_test(test_order_close_now),
        cmocka_unit_test(test_order_server_stop),
        cmocka_unit_test(test_order_oversize),
        cmocka_unit_test(test_add_races_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
