/*
 * Per-connection order: pipelined, sequence-numbered frames on several
 * connections come back in order; one connection's handlers never
 * overlap and always run on the same thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000

typedef struct order_ctx {
    atomic_int overlap;      /* two handlers of a connection at once */
    atomic_int wrong_thread; /* a handler not on OnConnStart's thread */
    atomic_int out_of_order; /* a sequence number out of order */
    atomic_int wrong_worker; /* zinx_conn_worker_id() != id % pool */
    atomic_int no_state;     /* handler without OnConnStart's state */
    atomic_int handled;
    uint32_t pool;
} order_ctx_t;

typedef struct conn_state {
    pthread_t thread;
    atomic_int in_handler;
    uint32_t next_seq;
} conn_state_t;

static void order_start(zinx_conn_t *conn, void *udata)
{
    order_ctx_t *ctx = udata;
    conn_state_t *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return;
    st->thread = pthread_self();
    atomic_init(&st->in_handler, 0);
    zinx_conn_set_data(conn, st);
    uint32_t want = ctx->pool ? (uint32_t)(zinx_conn_id(conn) % ctx->pool) : 0;
    if (ctx->pool && zinx_conn_worker_id(conn) != want)
        atomic_fetch_add(&ctx->wrong_worker, 1);
}

static void order_stop(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    free(zinx_conn_data(conn));
    zinx_conn_set_data(conn, NULL);
}

/* Echoes; checks the payload's sequence number and the thread. */
static void order_handle(zinx_request_t *req, void *udata)
{
    order_ctx_t *ctx = udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    conn_state_t *st = zinx_conn_data(conn);

    if (st == NULL) {
        atomic_fetch_add(&ctx->no_state, 1);
        return;
    }
    if (atomic_exchange(&st->in_handler, 1) != 0)
        atomic_fetch_add(&ctx->overlap, 1);
    if (!pthread_equal(st->thread, pthread_self()))
        atomic_fetch_add(&ctx->wrong_thread, 1);
    uint32_t len = zinx_request_data_len(req);
    uint32_t seq = len >= 4 ? frame_get_u32(zinx_request_data(req)) : ~0u;
    if (seq != st->next_seq)
        atomic_fetch_add(&ctx->out_of_order, 1);
    st->next_seq = seq + 1;
    if (seq % 64 == 0)
        sched_yield(); /* widens the window for an overlapping handler */
    zinx_conn_send_msg(conn, zinx_request_msg_id(req), zinx_request_data(req),
                       len);
    atomic_fetch_add(&ctx->handled, 1);
    atomic_store(&st->in_handler, 0);
}

static tf_server_t *order_server(order_ctx_t *ctx, uint32_t pool, int conns)
{
    zinx_config_t cfg;

    tf_config(&cfg);
    cfg.worker_pool_size = pool;
    cfg.max_conn = conns + 8;
    ctx->pool = pool;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = order_handle, .udata = ctx};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, order_start, ctx), 0);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, order_stop, ctx), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

/* Frame seq: 4-byte sequence then (seq % 29) bytes derived from conn. */
static size_t encode_seq(uint32_t seq, int conn, uint8_t *out)
{
    uint8_t payload[4 + 29];
    uint32_t len = 4 + seq % 29;

    frame_put_u32(payload, seq);
    for (uint32_t i = 4; i < len; i++)
        payload[i] = (uint8_t)(conn * 31 + seq + i);
    return frame_encode(TLV, 1, payload, len, out);
}

static void check_ctx(order_ctx_t *ctx, int want_handled)
{
    assert_int_equal(atomic_load(&ctx->no_state), 0);
    assert_int_equal(atomic_load(&ctx->overlap), 0);
    assert_int_equal(atomic_load(&ctx->wrong_thread), 0);
    assert_int_equal(atomic_load(&ctx->out_of_order), 0);
    assert_int_equal(atomic_load(&ctx->wrong_worker), 0);
    assert_int_equal(atomic_load(&ctx->handled), want_handled);
}

static void run_order(uint32_t pool, int conns, int msgs)
{
    enum { CHUNK = 100, MAX_FRAME = 8 + 4 + 29 };
    order_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    tf_server_t *ts = order_server(ctx, pool, conns);
    int *fds = calloc((size_t)conns, sizeof(int));
    uint8_t *stream = malloc((size_t)msgs * MAX_FRAME);
    uint8_t *got = malloc((size_t)msgs * MAX_FRAME);
    assert_non_null(fds);
    assert_non_null(stream);
    assert_non_null(got);
    for (int c = 0; c < conns; c++) {
        fds[c] = tc_connect(ts->port);
        assert_true(fds[c] >= 0);
    }

    /* Pipelined: every request is written before any reply is read. */
    for (int base = 0; base < msgs; base += CHUNK) {
        for (int c = 0; c < conns; c++) {
            size_t n = 0;
            for (int s = base; s < base + CHUNK && s < msgs; s++)
                n += encode_seq((uint32_t)s, c, stream + n);
            TF_ASSERT_RC(tc_send_raw(fds[c], stream, n, tf_ms(T_IO)), 0);
        }
    }
    for (int c = 0; c < conns; c++) {
        size_t n = 0;
        for (int s = 0; s < msgs; s++)
            n += encode_seq((uint32_t)s, c, stream + n);
        TF_ASSERT_RC(tc_recv_raw(fds[c], got, n, tf_ms(T_IO)), 0);
        for (size_t off = 0, s = 0; off < n; s++) {
            uint32_t len = frame_get_u32(stream + off + 4);
            if (memcmp(got + off, stream + off, 8 + len) != 0)
                fail_msg("connection %d: reply %zu differs (want seq %zu,"
                         " got seq %u)",
                         c, s, s, frame_get_u32(got + off + 8));
            off += 8 + len;
        }
    }
    for (int c = 0; c < conns; c++)
        tc_close(fds[c]);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), conns, tf_ms(T_IO)),
                     conns);
    tf_server_free(ts);
    check_ctx(ctx, conns * msgs);
    free(fds);
    free(stream);
    free(got);
    free(ctx);
}

static void test_order_pool4(void **state)
{
    (void)state;
    run_order(4, 6, tf_scaled(1000, 250));
}

static void test_order_pool1_many_conns(void **state)
{
    (void)state;
    run_order(1, 8, tf_scaled(500, 100));
}

static void test_order_inline(void **state)
{
    (void)state;
    run_order(0, 5, tf_scaled(1000, 250));
}

/*
 * Frames of random size written in random pieces (1..700 bytes) while
 * reading: decoding must not depend on how the stream is cut.
 */
static void test_order_random_segmentation(void **state)
{
    (void)state;
    int msgs = tf_scaled(2000, 400);
    order_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    tf_server_t *ts = order_server(ctx, 4, 1);
    size_t cap = (size_t)msgs * (8 + 4 + 300);
    uint8_t *out = malloc(cap), *in = malloc(cap);
    uint8_t payload[4 + 300];
    uint32_t seed = 0xC0FFEE;
    size_t n = 0;

    assert_non_null(out);
    assert_non_null(in);
    for (int s = 0; s < msgs; s++) {
        uint32_t len = 4 + tc_rand(&seed) % 300;
        frame_put_u32(payload, (uint32_t)s);
        for (uint32_t i = 4; i < len; i++)
            payload[i] = (uint8_t)tc_rand(&seed);
        n += frame_encode(TLV, 1, payload, len, out + n);
    }
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    TF_ASSERT_RC(tc_exchange(fd, out, n, in, n, 700, &seed, tf_ms(T_IO)), 0);
    assert_memory_equal(in, out, n);
    tc_close(fd);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), 1, tf_ms(T_IO)), 1);
    tf_server_free(ts);
    check_ctx(ctx, msgs);
    free(out);
    free(in);
    free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_pool4),
        cmocka_unit_test(test_order_pool1_many_conns),
        cmocka_unit_test(test_order_inline),
        cmocka_unit_test(test_order_random_segmentation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
