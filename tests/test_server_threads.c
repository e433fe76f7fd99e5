/*
 * Threads: sends from user threads, references that outlive the
 * connection and the server, the connection manager from any thread, and
 * stop/wait called from handlers.
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000

/* ---- a slot that OnConnStart fills with a reference ---- */

typedef struct slot {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    zinx_conn_t *conns[8];
    int n;
} slot_t;

static slot_t *slot_new(void)
{
    slot_t *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    return s;
}

static void slot_free(slot_t *s)
{
    for (int i = 0; i < s->n; i++)
        zinx_conn_unref(s->conns[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

static void slot_start(zinx_conn_t *conn, void *udata)
{
    slot_t *s = udata;

    pthread_mutex_lock(&s->mu);
    if (s->n < 8)
        s->conns[s->n++] = zinx_conn_ref(conn);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits for the index-th connection; returns a borrowed pointer. */
static zinx_conn_t *slot_get(slot_t *s, int index, int timeout_ms)
{
    uint64_t deadline = tf_now_ms() + (uint64_t)timeout_ms;
    zinx_conn_t *c = NULL;

    pthread_mutex_lock(&s->mu);
    while (s->n <= index && tf_now_ms() < deadline) {
        pthread_mutex_unlock(&s->mu);
        tf_sleep_ms(1);
        pthread_mutex_lock(&s->mu);
    }
    if (s->n > index)
        c = s->conns[index];
    pthread_mutex_unlock(&s->mu);
    return c;
}

static tf_server_t *slot_server(slot_t *s, const zinx_router_t *r)
{
    tf_server_t *ts = tf_server_new(NULL);

    assert_non_null(ts);
    if (r != NULL)
        TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, slot_start, s), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

/* ---- sends from user threads ---- */

typedef struct sender {
    slot_t *slot;
    uint32_t id;
    int count;
    int first_error; /* first failing rc, 0 when none */
    int got_conn;
} sender_t;

/* Payload of frame seq from sender id: seq, then a pattern. */
static uint32_t make_payload(uint32_t id, uint32_t seq, uint8_t *p)
{
    uint32_t len = 4 + (seq * 7 + id) % 200;

    frame_put_u32(p, seq);
    for (uint32_t i = 4; i < len; i++)
        p[i] = (uint8_t)(id + seq + i);
    return len;
}

static void *sender_main(void *arg)
{
    sender_t *sd = arg;
    zinx_conn_t *conn = slot_get(sd->slot, 0, tf_ms(T_IO));
    uint8_t payload[4 + 200];

    if (conn == NULL)
        return NULL;
    sd->got_conn = 1;
    zinx_conn_ref(conn);
    for (int i = 0; i < sd->count; i++) {
        uint32_t len = make_payload(sd->id, (uint32_t)i, payload);
        int rc = zinx_conn_send_msg(conn, sd->id, payload, len);
        if (rc != 0) {
            sd->first_error = rc;
            break;
        }
    }
    zinx_conn_unref(conn);
    return NULL;
}

/*
 * Reads frames until every sender's count arrived; checks per-sender
 * order and payloads. Frames with ID 1 are echo replies to seq numbers.
 */
static void read_senders(int fd, sender_t *sd, int nsenders, int echoes)
{
    uint32_t next[8] = {0}, next_echo = 0;
    int total = echoes;
    uint8_t buf[4 + 200], want[4 + 200];

    for (int i = 0; i < nsenders; i++)
        total += sd[i].count;
    for (int got = 0; got < total; got++) {
        uint32_t id, len;
        int rc =
            tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO));
        if (rc != 0)
            fail_msg("frame %d of %d: %s", got, total, tf_rc_name(rc));
        if (id == 1) {
            assert_int_equal(frame_get_u32(buf), next_echo);
            next_echo++;
            continue;
        }
        int k = (int)id - 10;
        assert_true(k >= 0 && k < nsenders);
        uint32_t wlen = make_payload(id, next[k], want);
        if (len != wlen || memcmp(buf, want, len) != 0)
            fail_msg("sender %u: frame %u wrong (seq %u, len %u)", id, next[k],
                     frame_get_u32(buf), len);
        next[k]++;
    }
    assert_int_equal(next_echo, echoes);
}

static void run_senders(int nsenders, int per_sender, int echoes)
{
    slot_t *s = slot_new();
    zinx_router_t r = {.handle = tf_echo};
    tf_server_t *ts = slot_server(s, &r);
    sender_t *sd = calloc((size_t)nsenders, sizeof(*sd));
    pthread_t *th = calloc((size_t)nsenders, sizeof(*th));
    assert_non_null(sd);
    assert_non_null(th);

    for (int i = 0; i < nsenders; i++) {
        sd[i].slot = s;
        sd[i].id = (uint32_t)(10 + i);
        sd[i].count = per_sender;
        assert_int_equal(pthread_create(&th[i], NULL, sender_main, &sd[i]), 0);
    }
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    /* Echo requests whose replies interleave with the user threads'. */
    for (int i = 0; i < echoes; i++) {
        uint8_t p[4];
        frame_put_u32(p, (uint32_t)i);
        TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, p, 4, tf_ms(T_IO)), 0);
    }
    read_senders(fd, sd, nsenders, echoes);
    for (int i = 0; i < nsenders; i++) {
        assert_int_equal(tf_join(th[i], tf_ms(T_IO), NULL), 0);
        assert_int_equal(sd[i].got_conn, 1);
        TF_ASSERT_RC(sd[i].first_error, 0);
    }
    uint64_t out = (uint64_t)nsenders * (uint64_t)per_sender + (uint64_t)echoes;
    /* A reply can reach the client just before its send is counted. */
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(msgs_out), out, tf_ms(T_IO)),
                     out);
    tc_close(fd);
    tf_server_free(ts);
    slot_free(s);
    free(sd);
    free(th);
}

static void test_send_from_foreign_thread(void **state)
{
    (void)state;
    run_senders(1, tf_scaled(10000, 2500), 0);
}

static void test_concurrent_senders(void **state)
{
    (void)state;
    run_senders(4, tf_scaled(2500, 600), 200);
}

/* ---- references after close ---- */

static atomic_int prop_frees;

static void count_free(void *value)
{
    atomic_fetch_add(&prop_frees, 1);
    free(value);
}

static void check_closed_ref(zinx_conn_t *c, uint64_t id)
{
    assert_int_equal(zinx_conn_id(c), id);
    assert_int_equal(zinx_conn_is_open(c), 0);
    TF_ASSERT_RC(zinx_conn_send_msg(c, 1, "x", 1), ZINX_ECLOSED);
    TF_ASSERT_RC(zinx_conn_close(c), 0);
    TF_ASSERT_RC(zinx_conn_close_now(c), 0);
    void *v = malloc(4);
    assert_non_null(v);
    int before = atomic_load(&prop_frees);
    TF_ASSERT_RC(zinx_conn_set_property(c, "k", v, count_free), ZINX_ECLOSED);
    /* On error the caller keeps the value: it was not freed. */
    assert_int_equal(atomic_load(&prop_frees), before);
    free(v);
    void *got = NULL;
    TF_ASSERT_RC(zinx_conn_get_property(c, "k", &got), ZINX_ENOENT);
    assert_true(strncmp(zinx_conn_remote_addr(c), "127.0.0.1:", 10) == 0);
}

static void test_send_after_close(void **state)
{
    (void)state;
    slot_t *s = slot_new();
    zinx_router_t r = {.handle = tf_echo};
    tf_server_t *ts = slot_server(s, &r);

    int a = tc_connect(ts->port);
    assert_true(a >= 0);
    zinx_conn_t *ca = slot_get(s, 0, tf_ms(T_IO));
    assert_non_null(ca);
    int b = tc_connect(ts->port);
    assert_true(b >= 0);
    zinx_conn_t *cb = slot_get(s, 1, tf_ms(T_IO));
    assert_non_null(cb);
    uint64_t ida = zinx_conn_id(ca), idb = zinx_conn_id(cb);
    assert_true(ida != idb);
    assert_int_equal(zinx_conn_is_open(ca), 1);
    TF_ASSERT_RC(zinx_conn_send_msg(ca, 5, "pushed", 6), 0);
    uint8_t buf[16];
    uint32_t id, len;
    TF_ASSERT_RC(
        tc_recv_frame(a, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)), 0);
    assert_int_equal(id, 5);

    /* The peer closes; our reference keeps the memory, not the conn. */
    tc_close(a);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), 1, tf_ms(T_IO)), 1);
    check_closed_ref(ca, ida);
    assert_null(zinx_connmgr_get(zinx_server_connmgr(ts->srv), ida));

    /* The server goes away while b is open and referenced. */
    tf_server_free(ts);
    TF_ASSERT_RC(tc_expect_eof(b, tf_ms(T_IO)), 0);
    tc_close(b);
    check_closed_ref(cb, idb);
    check_closed_ref(ca, ida);
    slot_free(s);
}

/* ---- the connection manager ---- */

/* Replies with the connection's ID (8 bytes, big-endian halves). */
static void whoami(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    uint64_t id = zinx_conn_id(conn);
    uint8_t p[8];

    frame_put_u32(p, (uint32_t)(id >> 32));
    frame_put_u32(p + 4, (uint32_t)id);
    zinx_conn_send_msg(conn, 2, p, 8);
}

typedef struct visit_ctx {
    zinx_connmgr_t *mgr;
    int visited;
    int stop_at;  /* return 7 on this visit (1-based); 0 never */
    int inner_ok; /* manager calls inside the visitor worked */
    const char *push;
} visit_ctx_t;

static int visit(zinx_conn_t *conn, void *udata)
{
    visit_ctx_t *v = udata;

    v->visited++;
    zinx_conn_t *again = zinx_connmgr_get(v->mgr, zinx_conn_id(conn));
    if (again == conn && zinx_connmgr_count(v->mgr) >= 1)
        v->inner_ok++;
    zinx_conn_unref(again);
    if (v->push != NULL)
        zinx_conn_send_msg(conn, 50, v->push, (uint32_t)strlen(v->push));
    return v->visited == v->stop_at ? 7 : 0;
}

/* ID 3: a handler that broadcasts its payload to every connection. */
static void broadcast(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    visit_ctx_t v = {.mgr = zinx_server_connmgr(zinx_conn_server(conn)),
                     .push = "all"};
    zinx_connmgr_foreach(v.mgr, visit, &v);
}

static uint64_t ask_id(int fd)
{
    uint8_t buf[8];
    uint32_t id, len;

    TF_ASSERT_RC(tc_roundtrip(fd, TLV, 1, "", 0, &id, buf, sizeof(buf), &len,
                              tf_ms(T_IO)),
                 0);
    assert_int_equal(id, 2);
    assert_int_equal(len, 8);
    return (uint64_t)frame_get_u32(buf) << 32 | frame_get_u32(buf + 4);
}

static void expect_push(int fd, const char *text)
{
    uint8_t buf[16];
    uint32_t id, len;

    TF_ASSERT_RC(
        tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)), 0);
    assert_int_equal(id, 50);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(buf, text, len);
}

static void check_ids(zinx_connmgr_t *mgr, const uint64_t *want, int n)
{
    uint64_t ids[8] = {0}, one = 0;

    assert_int_equal(zinx_connmgr_ids(mgr, ids, 8), n);
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int j = 0; j < n; j++)
            found += ids[j] == want[i];
        assert_int_equal(found, 1);
    }
    assert_int_equal(zinx_connmgr_ids(mgr, &one, 1), n);
    assert_true(one == want[0] || one == want[1] || one == want[2]);
    assert_int_equal(zinx_connmgr_ids(mgr, NULL, 0), n);
}

static void check_foreach(zinx_connmgr_t *mgr, int n, int *fds)
{
    visit_ctx_t v = {.mgr = mgr};

    TF_ASSERT_RC(zinx_connmgr_foreach(mgr, visit, &v), 0);
    assert_int_equal(v.visited, n);
    assert_int_equal(v.inner_ok, n);
    visit_ctx_t stop = {.mgr = mgr, .stop_at = 2};
    assert_int_equal(zinx_connmgr_foreach(mgr, visit, &stop), 7);
    assert_int_equal(stop.visited, 2);
    visit_ctx_t push = {.mgr = mgr, .push = "main"};
    TF_ASSERT_RC(zinx_connmgr_foreach(mgr, visit, &push), 0);
    for (int i = 0; i < n; i++)
        expect_push(fds[i], "main");
    /* A handler walks the table and sends to the other connections. */
    TF_ASSERT_RC(tc_send_frame(fds[0], TLV, 3, "", 0, tf_ms(T_IO)), 0);
    for (int i = 0; i < n; i++)
        expect_push(fds[i], "all");
}

static tf_server_t *mgr_server(void)
{
    tf_server_t *ts = tf_server_new(NULL);
    zinx_router_t who = {.handle = whoami};
    zinx_router_t all = {.handle = broadcast};

    assert_non_null(ts);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &who), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 3, &all), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

static void test_connmgr(void **state)
{
    (void)state;
    enum { N = 3 };
    tf_server_t *ts = mgr_server();
    zinx_connmgr_t *mgr = zinx_server_connmgr(ts->srv);
    int fds[N];
    uint64_t ids[N];

    for (int i = 0; i < N; i++) {
        fds[i] = tc_connect(ts->port);
        assert_true(fds[i] >= 0);
        ids[i] = ask_id(fds[i]);
    }
    assert_int_equal(zinx_connmgr_count(mgr), N);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(connections)), N);
    check_ids(mgr, ids, N);
    uint64_t max = 0;
    for (int i = 0; i < N; i++) {
        zinx_conn_t *c = zinx_connmgr_get(mgr, ids[i]);
        assert_non_null(c);
        assert_int_equal(zinx_conn_id(c), ids[i]);
        char want[32];
        snprintf(want, sizeof(want), "127.0.0.1:%d", tc_local_port(fds[i]));
        assert_string_equal(zinx_conn_remote_addr(c), want);
        zinx_conn_unref(c);
        max = ids[i] > max ? ids[i] : max;
    }
    assert_null(zinx_connmgr_get(mgr, max + 1000));
    assert_null(zinx_connmgr_get(mgr, 0));
    check_foreach(mgr, N, fds);

    TF_ASSERT_RC(zinx_connmgr_close_all(mgr, 1), 0);
    for (int i = 0; i < N; i++) {
        TF_ASSERT_RC(tc_expect_eof(fds[i], tf_ms(T_IO)), 0);
        tc_close(fds[i]);
    }
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(connections), 0, tf_ms(T_IO)), 0);
    assert_int_equal(zinx_connmgr_count(mgr), 0);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(closed)), N);

    /* The server still serves; close_all(0) closes at once. */
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint64_t late = ask_id(fd);
    assert_true(late > max);
    TF_ASSERT_RC(zinx_connmgr_close_all(mgr, 0), 0);
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(T_IO)), 0);
    tc_close(fd);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), N + 1, tf_ms(T_IO)),
                     N + 1);
    tf_server_free(ts);
}

/* ---- stop and wait from handlers ---- */

typedef struct stopper {
    zinx_server_t *srv;
    atomic_int stop_rc1, stop_rc2;
    atomic_int wait_rc_handler, wait_rc_hook;
    int main_wait_rc;
} stopper_t;

static void stop_handler(zinx_request_t *req, void *udata)
{
    stopper_t *st = udata;

    zinx_conn_send_msg(zinx_request_conn(req), 1, "stopping", 8);
    atomic_store(&st->stop_rc1, zinx_server_stop(st->srv));
    atomic_store(&st->stop_rc2, zinx_server_stop(st->srv));
}

static void *main_wait(void *arg)
{
    stopper_t *st = arg;

    st->main_wait_rc = zinx_server_wait(st->srv);
    return NULL;
}

static void test_stop_from_handler(void **state)
{
    (void)state;
    stopper_t *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    atomic_init(&st->stop_rc1, 1);
    atomic_init(&st->stop_rc2, 1);
    st->main_wait_rc = 1;
    tf_server_t *ts = tf_server_new(NULL);
    assert_non_null(ts);
    st->srv = ts->srv;
    zinx_router_t r = {.handle = stop_handler, .udata = st};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    pthread_t waiter;
    assert_int_equal(pthread_create(&waiter, NULL, main_wait, st), 0);
    int idle = tc_connect(ts->port);
    assert_true(idle >= 0);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(connections), 2, tf_ms(T_IO)), 2);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "", 0, tf_ms(T_IO)), 0);
    uint8_t buf[16];
    uint32_t id, len;
    TF_ASSERT_RC(
        tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)), 0);
    assert_int_equal(len, 8);
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_expect_eof(idle, tf_ms(T_IO)), 0);
    assert_int_equal(tf_join(waiter, tf_ms(T_IO), NULL), 0);
    TF_ASSERT_RC(st->main_wait_rc, 0);
    TF_ASSERT_RC(atomic_load(&st->stop_rc1), 0);
    TF_ASSERT_RC(atomic_load(&st->stop_rc2), 0);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(closed)), 2);
    /* The listener is gone. */
    int late = tc_connect(ts->port);
    TF_ASSERT_RC(late < 0 ? late : 0, -ECONNREFUSED);
    tc_close(late);
    tc_close(fd);
    tc_close(idle);
    tf_server_free(ts);
    free(st);
}

static void wait_in_hook(zinx_conn_t *conn, void *udata)
{
    stopper_t *st = udata;

    (void)conn;
    atomic_store(&st->wait_rc_hook, zinx_server_wait(st->srv));
}

static void wait_in_handler(zinx_request_t *req, void *udata)
{
    stopper_t *st = udata;

    atomic_store(&st->wait_rc_handler, zinx_server_wait(st->srv));
    zinx_conn_send_msg(zinx_request_conn(req), 1, "done", 4);
}

static void run_wait_from_handler(uint32_t pool)
{
    stopper_t *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    atomic_init(&st->wait_rc_handler, 1);
    atomic_init(&st->wait_rc_hook, 1);
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = pool;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    st->srv = ts->srv;
    zinx_router_t r = {.handle = wait_in_handler, .udata = st};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, wait_in_hook, st), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint8_t buf[16];
    uint32_t id, len;
    TF_ASSERT_RC(tc_roundtrip(fd, TLV, 1, "", 0, &id, buf, sizeof(buf), &len,
                              tf_ms(T_IO)),
                 0);
    assert_int_equal(len, 4);
    TF_ASSERT_RC(atomic_load(&st->wait_rc_hook), ZINX_EDEADLK);
    TF_ASSERT_RC(atomic_load(&st->wait_rc_handler), ZINX_EDEADLK);
    tc_close(fd);
    TF_ASSERT_RC(tf_stop_wait(ts->srv, tf_ms(T_IO)), 0);
    tf_server_free(ts);
    free(st);
}

static void test_wait_from_handler(void **state)
{
    (void)state;
    run_wait_from_handler(2);
}

static void test_wait_from_inline_handler(void **state)
{
    (void)state;
    run_wait_from_handler(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_from_foreign_thread),
        cmocka_unit_test(test_concurrent_senders),
        cmocka_unit_test(test_send_after_close),
        cmocka_unit_test(test_connmgr),
        cmocka_unit_test(test_stop_from_handler),
        cmocka_unit_test(test_wait_from_handler),
        cmocka_unit_test(test_wait_from_inline_handler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
