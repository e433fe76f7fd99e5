/*
 * WorkerMode through real connections: Hash, Bind and DynamicBind keep
 * each connection's messages, posts and hooks in order and one at a
 * time, on the worker zinx_conn_worker_id() names; Bind and DynamicBind
 * give each connection a worker of its own; Bind refuses a connection
 * beyond the pool (EOF at once, counted); DynamicBind makes workers
 * beyond the pool and retires them when their connection ends.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"
#include "test_probe.h"
#include "work/pool.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000
#define SEQ_ID 3u   /* echoed, sequence-checked */
#define BLOCK_ID 2u /* blocks until the test lets it go, then answers */
#define MAX_WORKERS 64

typedef struct modes_ctx {
    uint32_t mode, pool;
    atomic_int overlap;      /* two jobs of a connection at once */
    atomic_int out_of_order; /* a sequence number out of order */
    atomic_int wrong_worker; /* not on the thread "zinx-wk-<worker id>" */
    atomic_int shared;       /* two live connections on one worker */
    atomic_int posts_run;
    atomic_int starts, stops;
    atomic_int max_id; /* the largest worker ID seen, plus one */
    atomic_int release;
    /* Which connection owns each worker now (Bind, DynamicBind). */
    atomic_uint_least64_t owner[MAX_WORKERS];
} modes_ctx_t;

typedef struct conn_state {
    atomic_int busy;
    uint32_t next_seq;
} conn_state_t;

/* The handler thread must be the one zinx_conn_worker_id() names, by
   the name the pool gives its threads. */
static void check_worker(modes_ctx_t *ctx, zinx_conn_t *conn)
{
    if (ctx->pool == 0)
        return;
    char name[16] = "", want[16];
    uint32_t id = zinx_conn_worker_id(conn);
    pthread_getname_np(pthread_self(), name, sizeof(name));
    snprintf(want, sizeof(want), "zinx-wk-%u", id);
    if (strcmp(name, want) != 0)
        atomic_fetch_add(&ctx->wrong_worker, 1);
    if (ctx->mode == ZINX_WORKER_HASH &&
        id != (uint32_t)(zinx_conn_id(conn) % ctx->pool))
        atomic_fetch_add(&ctx->wrong_worker, 1);
    int top = (int)id + 1, seen = atomic_load(&ctx->max_id);
    while (seen < top &&
           !atomic_compare_exchange_weak(&ctx->max_id, &seen, top)) {
    }
}

static void enter(modes_ctx_t *ctx, conn_state_t *st)
{
    if (atomic_exchange(&st->busy, 1) != 0)
        atomic_fetch_add(&ctx->overlap, 1);
}

static void leave(conn_state_t *st)
{
    atomic_store(&st->busy, 0);
}

static bool binds(const modes_ctx_t *ctx)
{
    return ctx->pool > 0 && ctx->mode != ZINX_WORKER_HASH;
}

static void on_start(zinx_conn_t *conn, void *udata)
{
    modes_ctx_t *ctx = udata;
    conn_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return;
    zinx_conn_set_data(conn, st);
    check_worker(ctx, conn);
    uint32_t id = zinx_conn_worker_id(conn);
    uint_least64_t none = 0;
    if (binds(ctx) &&
        (id >= MAX_WORKERS || !atomic_compare_exchange_strong(
                                  &ctx->owner[id], &none, zinx_conn_id(conn))))
        atomic_fetch_add(&ctx->shared, 1);
    atomic_fetch_add(&ctx->starts, 1);
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    modes_ctx_t *ctx = udata;
    conn_state_t *st = zinx_conn_data(conn);
    check_worker(ctx, conn);
    uint32_t id = zinx_conn_worker_id(conn);
    if (binds(ctx) && id < MAX_WORKERS)
        atomic_store(&ctx->owner[id], 0);
    if (st != NULL && atomic_load(&st->busy))
        atomic_fetch_add(&ctx->overlap, 1);
    free(st);
    zinx_conn_set_data(conn, NULL);
    atomic_fetch_add(&ctx->stops, 1);
}

static void on_seq(zinx_request_t *req, void *udata)
{
    modes_ctx_t *ctx = udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    conn_state_t *st = zinx_conn_data(conn);
    if (st == NULL)
        return;
    enter(ctx, st);
    check_worker(ctx, conn);
    uint32_t len = zinx_request_data_len(req);
    uint32_t seq = len >= 4 ? frame_get_u32(zinx_request_data(req)) : ~0u;
    if (seq != st->next_seq)
        atomic_fetch_add(&ctx->out_of_order, 1);
    st->next_seq = seq + 1;
    if (seq % 64 == 0)
        sched_yield(); /* widens the window for an overlapping job */
    zinx_conn_send_msg(conn, SEQ_ID, zinx_request_data(req), len);
    leave(st);
}

static void on_block(zinx_request_t *req, void *udata)
{
    modes_ctx_t *ctx = udata;
    uint64_t end = tf_now_ms() + (uint64_t)tf_ms(30000);
    while (!atomic_load(&ctx->release) && tf_now_ms() < end)
        tf_sleep_ms(1);
    zinx_conn_send_msg(zinx_request_conn(req), BLOCK_ID, "done", 4);
}

static void on_post(zinx_conn_t *conn, void *udata)
{
    modes_ctx_t *ctx = udata;
    conn_state_t *st = zinx_conn_data(conn);
    if (st != NULL) {
        enter(ctx, st);
        check_worker(ctx, conn);
        leave(st);
    }
    atomic_fetch_add(&ctx->posts_run, 1);
}

/* Posts a job to every open connection, from the test's thread. */
static int post_one(zinx_conn_t *conn, void *udata)
{
    return zinx_conn_post(conn, on_post, udata);
}

static tf_server_t *modes_server_cfg(modes_ctx_t *ctx, const zinx_config_t *cfg)
{
    ctx->mode = cfg->worker_mode;
    ctx->pool = cfg->worker_pool_size;
    tf_server_t *ts = tf_server_new(cfg);
    assert_non_null(ts);
    zinx_router_t seq = {.handle = on_seq, .udata = ctx};
    zinx_router_t block = {.handle = on_block, .udata = ctx};
    zinx_router_t echo = {.handle = tf_echo};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, SEQ_ID, &seq), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, BLOCK_ID, &block), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, TC_ECHO_ID, &echo), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, on_start, ctx), 0);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, on_stop, ctx), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

static tf_server_t *modes_server(modes_ctx_t *ctx, uint32_t mode, uint32_t pool,
                                 int max_conn)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_mode = mode;
    cfg.worker_pool_size = pool;
    cfg.max_conn = max_conn;
    return modes_server_cfg(ctx, &cfg);
}

static void check_ctx(modes_ctx_t *ctx, int conns)
{
    assert_int_equal(atomic_load(&ctx->overlap), 0);
    assert_int_equal(atomic_load(&ctx->out_of_order), 0);
    assert_int_equal(atomic_load(&ctx->wrong_worker), 0);
    assert_int_equal(atomic_load(&ctx->shared), 0);
    assert_int_equal(atomic_load(&ctx->starts), conns);
    assert_int_equal(atomic_load(&ctx->stops), conns);
}

/* Threads of this process named "zinx-wk-*": the workers running now.
   Counted by name, not in all, so that io_uring's own kernel workers
   (which come and go) do not count. */
static long count_workers(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* it ended meanwhile */
        if (fgets(comm, sizeof(comm), f) != NULL &&
            strncmp(comm, "zinx-wk-", 8) == 0)
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Waits until count_workers() is want (a thread made on demand names
   itself once it runs; one retired is listed until the kernel reaped
   it). Returns the last count. */
static long wait_workers(long want, int timeout_ms)
{
    uint64_t end = tf_now_ms() + (uint64_t)timeout_ms;
    long n;
    while ((n = count_workers()) != want && tf_now_ms() < end)
        tf_sleep_ms(1);
    return n;
}

static int echo_ok(int fd)
{
    return tc_echo_call(fd, TLV, "ping", 4, tf_ms(T_IO));
}

/* ---- ordering in every mode --------------------------------------------- */

static size_t encode_seq(uint32_t seq, uint8_t *out)
{
    uint8_t payload[4 + 29];
    uint32_t len = 4 + seq % 29;
    frame_put_u32(payload, seq);
    for (uint32_t i = 4; i < len; i++)
        payload[i] = (uint8_t)(seq + i);
    return frame_encode(TLV, SEQ_ID, payload, len, out);
}

/* conns connections pipeline msgs sequence-numbered frames each, with
   posts from this thread in between; every reply comes back in order. */
static void run_order(uint32_t mode, uint32_t pool, int conns, int msgs)
{
    enum { CHUNK = 100, MAX_FRAME = 8 + 4 + 29 };
    modes_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    tf_server_t *ts = modes_server(ctx, mode, pool, conns + 8);
    int *fds = calloc((size_t)conns, sizeof(int));
    uint8_t *out = malloc((size_t)msgs * MAX_FRAME);
    uint8_t *in = malloc((size_t)msgs * MAX_FRAME);
    assert_non_null(fds);
    assert_non_null(out);
    assert_non_null(in);
    for (int c = 0; c < conns; c++) {
        fds[c] = tc_connect(ts->port);
        assert_true(fds[c] >= 0);
    }
    assert_int_equal(tf_wait_atomic_ge(&ctx->starts, conns, tf_ms(T_IO)),
                     conns);
    int posts = 0;
    for (int base = 0; base < msgs; base += CHUNK) {
        size_t n = 0;
        for (int s = base; s < base + CHUNK && s < msgs; s++)
            n += encode_seq((uint32_t)s, out + n);
        for (int c = 0; c < conns; c++)
            TF_ASSERT_RC(tc_send_raw(fds[c], out, n, tf_ms(T_IO)), 0);
        TF_ASSERT_RC(
            zinx_connmgr_foreach(zinx_server_connmgr(ts->srv), post_one, ctx),
            0);
        posts += conns;
    }
    size_t n = 0;
    for (int s = 0; s < msgs; s++)
        n += encode_seq((uint32_t)s, out + n);
    for (int c = 0; c < conns; c++) {
        TF_ASSERT_RC(tc_recv_raw(fds[c], in, n, tf_ms(T_IO)), 0);
        assert_memory_equal(in, out, n);
    }
    assert_int_equal(tf_wait_atomic_ge(&ctx->posts_run, posts, tf_ms(T_IO)),
                     posts);
    for (int c = 0; c < conns; c++)
        tc_close(fds[c]);
    assert_int_equal(tf_wait_atomic_ge(&ctx->stops, conns, tf_ms(T_IO)), conns);
    tf_server_free(ts);
    check_ctx(ctx, conns);
    free(fds);
    free(out);
    free(in);
    free(ctx);
}

static void test_order_hash(void **state)
{
    (void)state;
    run_order(ZINX_WORKER_HASH, 3, 6, tf_scaled(600, 150));
}

static void test_order_bind(void **state)
{
    (void)state;
    run_order(ZINX_WORKER_BIND, 6, 6, tf_scaled(600, 150));
}

static void test_order_dynamic_bind(void **state)
{
    (void)state;
    run_order(ZINX_WORKER_DYNAMIC_BIND, 2, 6, tf_scaled(600, 150));
}

/* WorkerPoolSize 0: handlers on the I/O thread whatever the mode. */
static void test_order_inline_any_mode(void **state)
{
    (void)state;
    run_order(ZINX_WORKER_BIND, 0, 4, tf_scaled(300, 100));
    run_order(ZINX_WORKER_DYNAMIC_BIND, 0, 4, tf_scaled(300, 100));
}

/* ---- exclusivity ----------------------------------------------------------
 */

/* A handler blocked on one connection does not delay another: with Bind
   (a worker each) and DynamicBind (the second connection gets a worker
   made for it), the second one's echo comes back while the first
   blocks. */
static void run_not_delayed(uint32_t mode, uint32_t pool)
{
    modes_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    tf_server_t *ts = modes_server(ctx, mode, pool, 16);
    int a = tc_connect(ts->port), b = tc_connect(ts->port);
    assert_true(a >= 0 && b >= 0);
    TF_ASSERT_RC(echo_ok(a), 0);
    TF_ASSERT_RC(echo_ok(b), 0);
    TF_ASSERT_RC(tc_send_frame(a, TLV, BLOCK_ID, "x", 1, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(echo_ok(b), 0); /* not behind a's handler */
    char buf[8];
    assert_int_equal(tc_recv_some(a, buf, sizeof(buf), 0), -ETIMEDOUT);
    atomic_store(&ctx->release, 1);
    uint32_t id, len;
    TF_ASSERT_RC(
        tc_recv_frame(a, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)), 0);
    assert_int_equal(id, BLOCK_ID);
    tc_close(a);
    tc_close(b);
    assert_int_equal(tf_wait_atomic_ge(&ctx->stops, 2, tf_ms(T_IO)), 2);
    tf_server_free(ts);
    check_ctx(ctx, 2);
    free(ctx);
}

static void test_bind_not_delayed(void **state)
{
    (void)state;
    run_not_delayed(ZINX_WORKER_BIND, 2);
}

static void test_dynamic_bind_not_delayed(void **state)
{
    (void)state;
    run_not_delayed(ZINX_WORKER_DYNAMIC_BIND, 1);
}

/* ---- Bind beyond the pool ------------------------------------------------ */

/* The third connection on a pool of two is closed at once (EOF, counted
   in rejected_no_worker); once one closes, its worker serves the next. */
static void test_bind_refuses_beyond_pool(void **state)
{
    (void)state;
    modes_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    tf_server_t *ts = modes_server(ctx, ZINX_WORKER_BIND, 2, 16);
    int a = tc_connect(ts->port), b = tc_connect(ts->port);
    assert_true(a >= 0 && b >= 0);
    TF_ASSERT_RC(echo_ok(a), 0);
    TF_ASSERT_RC(echo_ok(b), 0);
    int c = tc_connect(ts->port);
    assert_true(c >= 0);
    TF_ASSERT_RC(tc_expect_eof(c, tf_ms(T_IO)), 0);
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(rejected_no_worker), 1, tf_ms(T_IO)), 1);
    tc_close(c);
    TF_ASSERT_RC(echo_ok(a), 0); /* the others go on */
    TF_ASSERT_RC(echo_ok(b), 0);
    tc_close(a);
    assert_int_equal(tf_wait_atomic_ge(&ctx->stops, 1, tf_ms(T_IO)), 1);
    int d = tc_connect(ts->port);
    assert_true(d >= 0);
    TF_ASSERT_RC(echo_ok(d), 0);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(rejected_no_worker)), 1);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(accepted)), 3);
    tc_close(b);
    tc_close(d);
    assert_int_equal(tf_wait_atomic_ge(&ctx->stops, 3, tf_ms(T_IO)), 3);
    tf_server_free(ts);
    check_ctx(ctx, 3);
    assert_true(atomic_load(&ctx->max_id) <= 2);
    free(ctx);
}

/* ---- DynamicBind: made, retired, bounded --------------------------------- */

/* Connections beyond the pool get workers of their own (a thread each);
   their threads end with them, and their IDs are reused. */
static void test_dynamic_bind_grows_and_retires(void **state)
{
    (void)state;
    enum { CONNS = 6 };
    modes_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    long threads0 = probe_thread_count();
    tf_server_t *ts = modes_server(ctx, ZINX_WORKER_DYNAMIC_BIND, 1, 64);
    assert_int_equal(count_workers(), 1);
    int fds[CONNS];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < CONNS; i++) {
            fds[i] = tc_connect(ts->port);
            assert_true(fds[i] >= 0);
            TF_ASSERT_RC(echo_ok(fds[i]), 0);
        }
        /* The pool's worker and one made for each other connection. */
        assert_int_equal(wait_workers(CONNS, tf_ms(T_IO)), CONNS);
        for (int i = 0; i < CONNS; i++)
            tc_close(fds[i]);
        /* A connection leaves the table after giving its worker back. */
        assert_int_equal(
            tf_wait_stat(ts->srv, TF_STAT(connections), 0, tf_ms(T_IO)), 0);
        assert_int_equal(wait_workers(1, tf_ms(T_IO)), 1);
    }
    assert_int_equal(atomic_load(&ctx->max_id), CONNS); /* IDs reused */
    tf_server_free(ts);
    assert_int_equal(probe_thread_count_back(threads0, tf_ms(T_IO)), threads0);
    check_ctx(ctx, 2 * CONNS);
    free(ctx);
}

/* Many short connections, some closing with messages still queued: no
   leak, no thread left, IDs bounded by the connections open at once. A
   worker queue of 8 messages makes connections wait for room (listed as
   waiters on their worker) as they close. */
static void test_dynamic_bind_cycles(void **state)
{
    (void)state;
    enum { AT_ONCE = 4, MSGS = 20 };
    int rounds = tf_scaled(60, 15);
    modes_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_mode = ZINX_WORKER_DYNAMIC_BIND;
    cfg.worker_pool_size = 1;
    cfg.max_worker_task_len = 8;
    tf_server_t *ts = modes_server_cfg(ctx, &cfg);
    uint8_t out[MSGS * (8 + 4 + 29)], in[sizeof(out)];
    size_t n = 0;
    for (int s = 0; s < MSGS; s++)
        n += encode_seq((uint32_t)s, out + n);
    for (int r = 0; r < rounds; r++) {
        int fds[AT_ONCE];
        for (int i = 0; i < AT_ONCE; i++) {
            fds[i] = tc_connect(ts->port);
            assert_true(fds[i] >= 0);
            TF_ASSERT_RC(tc_send_raw(fds[i], out, n, tf_ms(T_IO)), 0);
        }
        for (int i = 0; i < AT_ONCE; i++) {
            if ((r + i) % 2 == 0) {
                TF_ASSERT_RC(tc_recv_raw(fds[i], in, n, tf_ms(T_IO)), 0);
                assert_memory_equal(in, out, n);
            }
            /* Odd ones close with their frames possibly still queued. */
            if ((r + i) % 4 == 1)
                tc_close_rst(fds[i]);
            else
                tc_close(fds[i]);
        }
        /* A connection leaves the table after giving its worker back. */
        assert_int_equal(
            tf_wait_stat(ts->srv, TF_STAT(connections), 0, tf_ms(T_IO)), 0);
    }
    assert_int_equal(wait_workers(1, tf_ms(T_IO)), 1);
    assert_true(atomic_load(&ctx->max_id) <= AT_ONCE);
    tf_server_free(ts);
    check_ctx(ctx, AT_ONCE * rounds);
    free(ctx);
}

/* At the bound (MaxConn), the listener refuses as it always does. */
static void test_dynamic_bind_bound(void **state)
{
    (void)state;
    modes_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    tf_server_t *ts = modes_server(ctx, ZINX_WORKER_DYNAMIC_BIND, 1, 3);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = tc_connect(ts->port);
        assert_true(fds[i] >= 0);
        TF_ASSERT_RC(echo_ok(fds[i]), 0);
    }
    int over = tc_connect(ts->port);
    assert_true(over >= 0);
    TF_ASSERT_RC(tc_expect_eof(over, tf_ms(T_IO)), 0);
    tc_close(over);
    /* Counted just after the close the client saw. */
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(rejected_max_conn), 1, tf_ms(T_IO)), 1);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(rejected_no_worker)), 0);
    for (int i = 0; i < 3; i++)
        tc_close(fds[i]);
    assert_int_equal(tf_wait_atomic_ge(&ctx->stops, 3, tf_ms(T_IO)), 3);
    tf_server_free(ts);
    check_ctx(ctx, 3);
    free(ctx);
}

/* Stopping the server with workers made on demand still running: every
   OnConnStop runs on its own worker, and every thread ends. */
static void test_dynamic_bind_stop_with_conns(void **state)
{
    (void)state;
    enum { CONNS = 4 };
    modes_ctx_t *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    long threads0 = probe_thread_count();
    tf_server_t *ts = modes_server(ctx, ZINX_WORKER_DYNAMIC_BIND, 1, 64);
    int fds[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fds[i] = tc_connect(ts->port);
        assert_true(fds[i] >= 0);
        TF_ASSERT_RC(echo_ok(fds[i]), 0);
    }
    TF_ASSERT_RC(tf_stop_wait(ts->srv, tf_ms(T_IO)), 0);
    tf_server_free(ts);
    for (int i = 0; i < CONNS; i++)
        tc_close(fds[i]);
    assert_int_equal(probe_thread_count_back(threads0, tf_ms(T_IO)), threads0);
    check_ctx(ctx, CONNS);
    free(ctx);
}

/* What making a worker costs the thread that accepts (the listening I/O
   thread): a new one, and a retired one started again once its thread
   ended (as it does by itself after its connection's OnConnStop), which
   reuses its ID. Measured on the pool itself, the code the listener
   runs; printed with ZINX_TEST_VERBOSE=1, not asserted (timing). */
static void test_dynamic_bind_make_cost(void **state)
{
    (void)state;
    enum { MADE = 16 };
    int rounds = tf_scaled(100, 20);
    long threads0 = probe_thread_count();
    zinx__pool_t *p = zinx__pool_new(ZINX_WORKER_DYNAMIC_BIND, 1, 64, 16);
    assert_non_null(p);
    TF_ASSERT_RC(zinx__pool_start(p), 0);
    zinx__worker_t *first, *w[MADE];
    TF_ASSERT_RC(zinx__pool_acquire(p, 1, &first), 0);
    assert_int_equal(zinx__worker_id(first), 0);
    uint64_t made_us = 0, made_max = 0, revived_us = 0, revived_max = 0;
    for (int i = 0; i < MADE; i++) {
        uint64_t t0 = tf_now_us();
        TF_ASSERT_RC(zinx__pool_acquire(p, (uint64_t)i + 2, &w[i]), 0);
        uint64_t dt = tf_now_us() - t0;
        made_us += dt;
        made_max = dt > made_max ? dt : made_max;
        assert_int_equal(zinx__worker_id(w[i]), i + 1);
    }
    assert_int_equal(probe_thread_count(), threads0 + 1 + MADE);
    for (int i = 0; i < MADE; i++)
        zinx__pool_release(p, w[i]); /* they never ran a job: any thread */
    assert_int_equal(probe_thread_count_back(threads0 + 1, tf_ms(T_IO)),
                     threads0 + 1);
    for (int i = 0; i < rounds; i++) {
        uint64_t t0 = tf_now_us();
        TF_ASSERT_RC(zinx__pool_acquire(p, (uint64_t)i + 100, &w[0]), 0);
        uint64_t dt = tf_now_us() - t0;
        revived_us += dt;
        revived_max = dt > revived_max ? dt : revived_max;
        assert_true(zinx__worker_id(w[0]) >= 1 &&
                    zinx__worker_id(w[0]) <= MADE);
        zinx__pool_release(p, w[0]);
        assert_int_equal(probe_thread_count_back(threads0 + 1, tf_ms(T_IO)),
                         threads0 + 1);
    }
    tf_note("DynamicBind: making a worker took %llu us on average, %llu us "
            "at most (%d made); starting a retired one again %llu us on "
            "average, %llu us at most (%d rounds)",
            (unsigned long long)(made_us / MADE), (unsigned long long)made_max,
            MADE, (unsigned long long)(revived_us / (uint64_t)rounds),
            (unsigned long long)revived_max, rounds);
    zinx__pool_release(p, first);
    zinx__pool_stop(p);
    zinx__pool_free(p);
    assert_int_equal(probe_thread_count_back(threads0, tf_ms(T_IO)), threads0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_hash),
        cmocka_unit_test(test_order_bind),
        cmocka_unit_test(test_order_dynamic_bind),
        cmocka_unit_test(test_order_inline_any_mode),
        cmocka_unit_test(test_bind_not_delayed),
        cmocka_unit_test(test_dynamic_bind_not_delayed),
        cmocka_unit_test(test_bind_refuses_beyond_pool),
        cmocka_unit_test(test_dynamic_bind_grows_and_retires),
        cmocka_unit_test(test_dynamic_bind_cycles),
        cmocka_unit_test(test_dynamic_bind_bound),
        cmocka_unit_test(test_dynamic_bind_stop_with_conns),
        cmocka_unit_test(test_dynamic_bind_make_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
