/*
 * Notify and broadcast with shared segments: what each connection
 * receives and in which order (mixed with its own replies, from handlers
 * and from other threads), IDs that do not exist or are closed, slow
 * readers over their limits and close_now with segments queued (the
 * segments' references are released: ASan's leak check), many
 * connections, with and without workers.
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

#include "conn/conn.h"
#include "test_client.h"
#include "test_fixture.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000

enum {
    ID_TRIGGER = 10, /* handler: own reply, broadcast, own reply */
    ID_OWN_A = 11,
    ID_OWN_C = 12,
    ID_CAST = 20,
    ID_SEND = 30, /* from the test's thread: own send */
    ID_SEND_CAST = 31
};

/* The handler of ID_TRIGGER: replies A, broadcasts the payload, replies
   C, so its own connection must see A, the broadcast, C. */
static void trigger(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    const void *d = zinx_request_data(req);
    uint32_t len = zinx_request_data_len(req);
    zinx_conn_send_msg(conn, ID_OWN_A, d, len);
    int n = zinx_server_broadcast(zinx_conn_server(conn), ID_CAST, d, len);
    if (n <= 0)
        fprintf(stderr, "broadcast from handler: %d\n", n);
    zinx_conn_send_msg(conn, ID_OWN_C, d, len);
}

static tf_server_t *cast_server(uint32_t pool, void (*tweak)(zinx_config_t *))
{
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.worker_pool_size = pool;
    if (tweak != NULL)
        tweak(&cfg);
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = trigger, .udata = NULL};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, ID_TRIGGER, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

static size_t conn_count(void *arg)
{
    return zinx_connmgr_count(zinx_server_connmgr(arg));
}

static int want_conns;
static int enough_conns(void *arg)
{
    return (int)conn_count(arg) >= want_conns;
}

/* Connects n clients and waits until the server lists them all. */
static void connect_all(tf_server_t *ts, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        fds[i] = tc_connect(ts->port);
        assert_true(fds[i] >= 0);
    }
    want_conns = n;
    assert_true(tf_wait_until(enough_conns, ts->srv, tf_ms(T_IO)));
}

static void expect(int fd, uint32_t want_id, const void *want, uint32_t wlen)
{
    uint8_t buf[2048];
    uint32_t id, len;
    TF_ASSERT_RC(
        tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)), 0);
    assert_int_equal(id, want_id);
    assert_int_equal(len, wlen);
    assert_memory_equal(buf, want, wlen);
}

/* ---- order against the connection's own replies ------------------------- */

static void run_handler_order(uint32_t pool)
{
    tf_server_t *ts = cast_server(pool, NULL);
    int fds[4];
    connect_all(ts, fds, 4);
    /* Several triggers in one write: one read, one batch (a worker stages
       its replies; inline handlers gather them). */
    uint8_t wire[8 * 64];
    size_t off = 0;
    char p[8][8];
    for (int i = 0; i < 8; i++) {
        snprintf(p[i], sizeof(p[i]), "m%d", i);
        uint8_t hdr[8] = {0, 0, 0, ID_TRIGGER, 0, 0, 0, (uint8_t)strlen(p[i])};
        memcpy(wire + off, hdr, 8);
        memcpy(wire + off + 8, p[i], strlen(p[i]));
        off += 8 + strlen(p[i]);
    }
    TF_ASSERT_RC(tc_send_raw(fds[0], wire, off, tf_ms(T_IO)), 0);
    for (int i = 0; i < 8; i++) {
        uint32_t l = (uint32_t)strlen(p[i]);
        expect(fds[0], ID_OWN_A, p[i], l);
        expect(fds[0], ID_CAST, p[i], l);
        expect(fds[0], ID_OWN_C, p[i], l);
        for (int k = 1; k < 4; k++)
            expect(fds[k], ID_CAST, p[i], l);
    }
    for (int i = 0; i < 4; i++)
        tc_close(fds[i]);
    tf_server_free(ts);
}

static void test_order_in_handler_workers(void **state)
{
    (void)state;
    run_handler_order(10);
}

static void test_order_in_handler_inline(void **state)
{
    (void)state;
    run_handler_order(0);
}

/* The test's own thread: sends to one connection and broadcasts,
   alternately; that connection sees them alternate, every other one
   sees every broadcast, in order. Large payloads make the output queue
   up, so segments wait among copied bytes in both queues. */
static void run_thread_order(uint32_t pool)
{
    tf_server_t *ts = cast_server(pool, NULL);
    int fds[3];
    /* Small receive buffers: output queues up behind them. */
    tc_opts_t o = {.rcvbuf = 4096, .nonblock = false};
    for (int i = 0; i < 3; i++) {
        fds[i] = tc_connect_opts(ts->port, &o);
        assert_true(fds[i] >= 0);
    }
    want_conns = 3;
    assert_true(tf_wait_until(enough_conns, ts->srv, tf_ms(T_IO)));
    uint64_t ids[3];
    assert_int_equal(zinx_connmgr_ids(zinx_server_connmgr(ts->srv), ids, 3), 3);
    zinx_conn_t *c = zinx_connmgr_get(zinx_server_connmgr(ts->srv), ids[0]);
    assert_non_null(c);
    int rounds = tf_scaled(100, 40);
    uint8_t big[1500];
    for (int i = 0; i < rounds; i++) {
        memset(big, 'a' + i % 26, sizeof(big));
        uint32_t n = (uint32_t)(1 + (i * 37) % (int)sizeof(big));
        TF_ASSERT_RC(zinx_conn_send_msg(c, ID_SEND, big, n), 0);
        assert_int_equal(zinx_server_broadcast(ts->srv, ID_SEND_CAST, big, n),
                         3);
    }
    int mine = -1;
    /* Which socket is connection ids[0]: the one whose first frame is the
       own send. */
    for (int k = 0; k < 3; k++) {
        uint8_t buf[2048];
        uint32_t id, len;
        TF_ASSERT_RC(tc_recv_frame(fds[k], TLV, &id, buf, sizeof(buf), &len,
                                   tf_ms(T_IO)),
                     0);
        int own = id == ID_SEND;
        if (own)
            mine = k;
        memset(big, 'a', sizeof(big));
        assert_int_equal(len, 1);
        assert_int_equal(buf[0], 'a');
        if (own)
            expect(fds[k], ID_SEND_CAST, big, 1);
        for (int i = 1; i < rounds; i++) {
            memset(big, 'a' + i % 26, sizeof(big));
            uint32_t n = (uint32_t)(1 + (i * 37) % (int)sizeof(big));
            if (own)
                expect(fds[k], ID_SEND, big, n);
            expect(fds[k], ID_SEND_CAST, big, n);
        }
    }
    assert_true(mine >= 0);
    zinx_conn_unref(c);
    for (int i = 0; i < 3; i++)
        tc_close(fds[i]);
    tf_server_free(ts);
}

static void test_order_from_thread_workers(void **state)
{
    (void)state;
    run_thread_order(10);
}

static void test_order_from_thread_inline(void **state)
{
    (void)state;
    run_thread_order(0);
}

/* ---- IDs ------------------------------------------------------------------
 */

static int closed_one(void *arg)
{
    return tf_stat(arg, TF_STAT(closed)) >= 1;
}

static void test_notify_ids(void **state)
{
    (void)state;
    tf_server_t *ts = cast_server(10, NULL);
    int fds[3];
    connect_all(ts, fds, 3);
    uint64_t ids[3];
    assert_int_equal(zinx_connmgr_ids(zinx_server_connmgr(ts->srv), ids, 3), 3);
    /* Close the third: its ID is then unknown. Which socket it is does
       not matter; the one that gets EOF is it. */
    zinx_conn_t *gone = zinx_connmgr_get(zinx_server_connmgr(ts->srv), ids[2]);
    assert_non_null(gone);
    zinx_conn_close_now(gone);
    assert_true(tf_wait_until(closed_one, ts->srv, tf_ms(T_IO)));
    /* A reference kept to a finished connection: it is not in the table,
       and a shared send to it is refused. */
    TF_ASSERT_RC(zinx_conn_send_msg(gone, 1, "x", 1), ZINX_ECLOSED);
    zinx_conn_unref(gone);
    uint64_t list[] = {ids[0], 987654321u, ids[2], ids[1], ids[0], 0};
    assert_int_equal(zinx_server_notify(ts->srv, list, 6, 7, "hi", 2), 3);
    assert_int_equal(zinx_server_notify(ts->srv, list, 0, 7, "hi", 2), 0);
    assert_int_equal(zinx_server_notify(ts->srv, NULL, 0, 7, NULL, 0), 0);
    TF_ASSERT_RC(zinx_server_notify(ts->srv, NULL, 1, 7, "hi", 2), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_notify(NULL, list, 1, 7, "hi", 2), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_broadcast(ts->srv, 7, NULL, 2), ZINX_EINVAL);
    static uint8_t huge[70000];
    TF_ASSERT_RC(zinx_server_broadcast(ts->srv, 7, huge, sizeof(huge)),
                 ZINX_EMSGSIZE);
    /* The two open ones: ids[0] twice, ids[1] once; then an empty
       broadcast to both. */
    assert_int_equal(zinx_server_broadcast(ts->srv, 8, NULL, 0), 2);
    /* Per socket: EOF (the closed one), or how many 7s before the 8. */
    int got = 0, eofs = 0, twice = 0;
    for (int k = 0; k < 3; k++) {
        uint8_t buf[16];
        uint32_t id, len;
        int sevens = 0;
        for (;;) {
            int rc = tc_recv_frame(fds[k], TLV, &id, buf, sizeof(buf), &len,
                                   tf_ms(T_IO));
            if (rc == TC_EOF && sevens == 0) {
                eofs++;
                break;
            }
            TF_ASSERT_RC(rc, 0);
            if (id == 8) {
                assert_int_equal(len, 0);
                break;
            }
            assert_int_equal(id, 7);
            assert_int_equal(len, 2);
            assert_memory_equal(buf, "hi", 2);
            sevens++;
        }
        got += sevens;
        twice += sevens == 2;
    }
    assert_int_equal(eofs, 1);
    assert_int_equal(twice, 1);
    assert_int_equal(got, 3);
    for (int i = 0; i < 3; i++)
        tc_close(fds[i]);
    tf_server_free(ts);
}

/* ---- limits and drops with segments queued ---------------------------- */

static void small_limits(zinx_config_t *cfg)
{
    cfg->output_high_water = 16 * 1024;
    cfg->output_hard_limit = 64 * 1024;
    cfg->output_soft_limit = 0;
}

#define ID_END 99

typedef struct reader {
    int fd;
    atomic_int got;
    atomic_int bad;
} reader_t;

/* Reads frames of ID_CAST whose payload starts with their sequence,
   until ID_END. */
static void *read_casts(void *arg)
{
    reader_t *r = arg;
    uint8_t buf[2048];
    for (uint32_t i = 0;; i++) {
        uint32_t id, len, seq;
        if (tc_recv_frame(r->fd, TLV, &id, buf, sizeof(buf), &len,
                          tf_ms(T_IO)) != 0) {
            atomic_fetch_add(&r->bad, 1);
            break;
        }
        if (id == ID_END)
            break;
        memcpy(&seq, buf, sizeof(seq));
        if (id != ID_CAST || len != 1024 || seq != i)
            atomic_fetch_add(&r->bad, 1);
        atomic_fetch_add(&r->got, 1);
    }
    return NULL;
}

/* Paces the broadcaster: at most `ahead` messages not yet read. */
static void wait_reader(reader_t *r, int sent, int ahead)
{
    uint64_t end = tf_now_ms() + (uint64_t)tf_ms(T_IO);
    while (atomic_load(&r->got) < sent - ahead && !atomic_load(&r->bad) &&
           tf_now_ms() < end)
        tf_sleep_us(50);
}

/* One client reads everything, the other nothing: the slow one passes
   OutputHardLimit with shared segments queued and is closed (its
   references released: ASan's leak check), the fast one gets every
   message in order. */
static void run_slow_reader(uint32_t pool)
{
    tf_server_t *ts = cast_server(pool, small_limits);
    tc_opts_t o = {.rcvbuf = 4096, .nonblock = false};
    int slow = tc_connect_opts(ts->port, &o);
    assert_true(slow >= 0);
    reader_t r = {.fd = tc_connect(ts->port)};
    assert_true(r.fd >= 0);
    want_conns = 2;
    assert_true(tf_wait_until(enough_conns, ts->srv, tf_ms(T_IO)));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_casts, &r), 0);
    uint8_t msg[1024];
    memset(msg, 'x', sizeof(msg));
    int sent = 0;
    /* Until the slow one is cut (the kernel's buffers take some first). */
    while (sent < 100000 &&
           (sent < 200 || tf_stat(ts->srv, TF_STAT(slow_readers)) == 0)) {
        wait_reader(&r, sent, 16);
        uint32_t seq = (uint32_t)sent;
        memcpy(msg, &seq, sizeof(seq));
        int n = zinx_server_broadcast(ts->srv, ID_CAST, msg, sizeof(msg));
        assert_true(n >= 1);
        sent++;
    }
    assert_int_equal(zinx_server_broadcast(ts->srv, ID_END, NULL, 0), 1);
    assert_int_equal(tf_join(t, tf_ms(T_IO * 3), NULL), 0);
    assert_int_equal(atomic_load(&r.bad), 0);
    assert_int_equal(atomic_load(&r.got), sent);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(slow_readers)), 1);
    tf_note("slow reader cut after %d broadcasts of 1 KiB", sent);
    tc_close(slow);
    tc_close(r.fd);
    tf_server_free(ts);
}

static void test_slow_reader_workers(void **state)
{
    (void)state;
    run_slow_reader(10);
}

static void test_slow_reader_inline(void **state)
{
    (void)state;
    run_slow_reader(0);
}

/* Whether c's unsent output stayed put for 60 ms (the loop offered the
   kernel all it would take) at `floor` bytes or more. */
static bool backlog_settled(zinx_conn_t *c, size_t floor)
{
    size_t last = zinx__conn_unsent(c);
    int still_ms = 0;
    uint64_t end = tf_now_ms() + (uint64_t)tf_ms(T_IO);
    while (still_ms < 60 && tf_now_ms() < end) {
        tf_sleep_ms(10);
        size_t now = zinx__conn_unsent(c);
        still_ms = now == last ? still_ms + 10 : 0;
        last = now;
    }
    return last >= floor;
}

/* Segments queued behind a peer that does not read, then close_now: they
   are dropped with the output (ASan: released), nothing more arrives. */
static void run_close_now_queued(uint32_t pool)
{
    tf_server_t *ts = cast_server(pool, NULL);
    tc_opts_t o = {.rcvbuf = 4096, .nonblock = false};
    int fd = tc_connect_opts(ts->port, &o);
    assert_true(fd >= 0);
    want_conns = 1;
    assert_true(tf_wait_until(enough_conns, ts->srv, tf_ms(T_IO)));
    uint64_t id;
    assert_int_equal(zinx_connmgr_ids(zinx_server_connmgr(ts->srv), &id, 1), 1);
    zinx_conn_t *c = zinx_connmgr_get(zinx_server_connmgr(ts->srv), id);
    assert_non_null(c);
    static uint8_t msg[4000];
    memset(msg, 'q', sizeof(msg));
    /* Until the server holds 256 KiB for it that the kernel will not
       take, under OutputHardLimit. The kernel's send buffer grows to
       megabytes on loopback, and a slow loop (TSan) may not have offered
       it what is queued yet: a backlog counts only once it stopped
       shrinking. */
    int sent = 0;
    for (;;) {
        while (sent < 2400 && zinx__conn_unsent(c) < 256 * 1024) {
            assert_int_equal(
                zinx_server_broadcast(ts->srv, ID_CAST, msg, sizeof(msg)), 1);
            if (sent++ % 50 == 0)
                TF_ASSERT_RC(zinx_conn_send_msg(c, ID_SEND, "own", 3), 0);
        }
        if (sent >= 2400 || backlog_settled(c, 256 * 1024))
            break;
    }
    size_t queued = zinx__conn_unsent(c);
    assert_true(zinx_conn_can_send(c));
    TF_ASSERT_RC(zinx_conn_close_now(c), 0);
    assert_false(zinx_conn_can_send(c)); /* at once, before the I/O thread */
    assert_false(zinx_conn_can_send(NULL));
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), 1, tf_ms(T_IO)), 1);
    assert_int_equal(zinx_server_broadcast(ts->srv, ID_CAST, "x", 1), 0);
    TF_ASSERT_RC(zinx_conn_send_msg(c, ID_SEND, "x", 1), ZINX_ECLOSED);
    assert_int_equal(zinx__conn_unsent(c), 0);
    size_t got = 0;
    tc_wait_closed(fd, tf_ms(T_IO), &got);
    tf_note("close_now: %zu bytes queued, %zu of %zu received", queued, got,
            (size_t)sent * (8 + sizeof(msg)));
    if (queued >= 256 * 1024)
        assert_true(got < (size_t)sent * (8 + sizeof(msg)));
    zinx_conn_unref(c);
    tc_close(fd);
    tf_server_free(ts);
}

static void test_close_now_queued_workers(void **state)
{
    (void)state;
    run_close_now_queued(10);
}

static void test_close_now_queued_inline(void **state)
{
    (void)state;
    run_close_now_queued(0);
}

/* A graceful close with segments queued: all of them are delivered
   first (the lingering close writes them), then EOF. */
static void run_close_queued(uint32_t pool)
{
    tf_server_t *ts = cast_server(pool, NULL);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    want_conns = 1;
    assert_true(tf_wait_until(enough_conns, ts->srv, tf_ms(T_IO)));
    uint64_t id;
    assert_int_equal(zinx_connmgr_ids(zinx_server_connmgr(ts->srv), &id, 1), 1);
    zinx_conn_t *c = zinx_connmgr_get(zinx_server_connmgr(ts->srv), id);
    assert_non_null(c);
    static uint8_t msg[20000];
    for (int i = 0; i < 40; i++) {
        memset(msg, 'a' + i % 26, sizeof(msg));
        assert_int_equal(zinx_server_broadcast(ts->srv, ID_CAST, msg, 1000 + i),
                         1);
    }
    TF_ASSERT_RC(zinx_conn_close(c), 0);
    for (int i = 0; i < 40; i++) {
        memset(msg, 'a' + i % 26, sizeof(msg));
        uint8_t buf[2048];
        uint32_t rid, len;
        TF_ASSERT_RC(
            tc_recv_frame(fd, TLV, &rid, buf, sizeof(buf), &len, tf_ms(T_IO)),
            0);
        assert_int_equal(rid, ID_CAST);
        assert_int_equal(len, 1000 + i);
        assert_memory_equal(buf, msg, len);
    }
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(T_IO)), 0);
    assert_false(zinx_conn_can_send(c)); /* finished before its EOF */
    zinx_conn_unref(c);
    tc_close(fd);
    tf_server_free(ts);
}

static void test_close_queued(void **state)
{
    (void)state;
    run_close_queued(10);
    run_close_queued(0);
}

/* ---- many connections ---------------------------------------------------- */

static void run_many(uint32_t pool)
{
    int n = tf_scaled(300, 100);
    int msgs = 20;
    tf_server_t *ts = cast_server(pool, NULL);
    int *fds = calloc((size_t)n, sizeof(*fds));
    assert_non_null(fds);
    connect_all(ts, fds, n);
    for (int m = 0; m < msgs; m++) {
        char p[64];
        snprintf(p, sizeof(p), "cast %d to all", m);
        assert_int_equal(
            zinx_server_broadcast(ts->srv, ID_CAST, p, (uint32_t)strlen(p)), n);
    }
    for (int i = 0; i < n; i++) {
        for (int m = 0; m < msgs; m++) {
            char p[64];
            snprintf(p, sizeof(p), "cast %d to all", m);
            expect(fds[i], ID_CAST, p, (uint32_t)strlen(p));
        }
        tc_close(fds[i]);
    }
    free(fds);
    tf_server_free(ts);
}

static void test_many_workers(void **state)
{
    (void)state;
    run_many(10);
}

static void test_many_inline(void **state)
{
    (void)state;
    run_many(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_in_handler_workers),
        cmocka_unit_test(test_order_in_handler_inline),
        cmocka_unit_test(test_order_from_thread_workers),
        cmocka_unit_test(test_order_from_thread_inline),
        cmocka_unit_test(test_notify_ids),
        cmocka_unit_test(test_slow_reader_workers),
        cmocka_unit_test(test_slow_reader_inline),
        cmocka_unit_test(test_close_now_queued_workers),
        cmocka_unit_test(test_close_now_queued_inline),
        cmocka_unit_test(test_close_queued),
        cmocka_unit_test(test_many_workers),
        cmocka_unit_test(test_many_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
