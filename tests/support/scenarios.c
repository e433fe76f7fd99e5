/*
 * Shared test scenarios (see scenarios.h).
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
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

/* ---- echo ---- */

/*
 * Replies with ID + 1000 and the same payload. A request whose accessors
 * disagree is answered with ID 0xDEAD so the client's byte check fails.
 */
static void echo_plus_1000(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_msg_t m = zinx_request_msg(req);
    uint32_t id = m.id + 1000;

    if (m.id != zinx_request_msg_id(req) ||
        m.len != zinx_request_data_len(req) ||
        m.data != zinx_request_data(req) || m.data == NULL)
        id = 0xDEAD;
    zinx_conn_send_msg(zinx_request_conn(req), id, m.data, m.len);
}

static void fill_pattern(uint8_t *p, uint32_t len, uint32_t salt)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 7 + salt);
}

static void check_literal_bytes(int fd, zinx_packet_format_t fmt)
{
    static const uint8_t tlv_req[] = {0, 0,   0,   1,   0,   0,  0,
                                      5, 'h', 'e', 'l', 'l', 'o'};
    static const uint8_t tlv_rep[] = {0, 0,   0x03, 0xe9, 0,   0,  0,
                                      5, 'h', 'e',  'l',  'l', 'o'};
    static const uint8_t ltv_req[] = {5, 0,   0,   0,   1,   0,  0,
                                      0, 'h', 'e', 'l', 'l', 'o'};
    static const uint8_t ltv_rep[] = {5, 0,   0,   0,   0xe9, 0x03, 0,
                                      0, 'h', 'e', 'l', 'l',  'o'};
    int ltv = fmt == ZINX_FORMAT_LTV_LE;
    uint8_t got[sizeof(tlv_rep)];

    TF_ASSERT_RC(
        tc_send_raw(fd, ltv ? ltv_req : tlv_req, sizeof(tlv_req), tf_ms(5000)),
        0);
    TF_ASSERT_RC(tc_recv_raw(fd, got, sizeof(got), tf_ms(5000)), 0);
    assert_memory_equal(got, ltv ? ltv_rep : tlv_rep, sizeof(got));
}

static void check_sizes(int fd, zinx_packet_format_t fmt, uint32_t max)
{
    const uint32_t sizes[] = {0, 1, 5, 100, max};
    const uint32_t ids[] = {1, 0x01020304};
    uint8_t *payload = malloc(max);
    uint8_t *want = malloc(8 + (size_t)max);
    uint8_t *got = malloc(8 + (size_t)max);

    assert_non_null(payload);
    assert_non_null(want);
    assert_non_null(got);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (size_t j = 0; j < 2; j++) {
            fill_pattern(payload, sizes[i], (uint32_t)(i + j));
            size_t n =
                frame_encode(fmt, ids[j] + 1000, payload, sizes[i], want);
            TF_ASSERT_RC(
                tc_send_frame(fd, fmt, ids[j], payload, sizes[i], tf_ms(5000)),
                0);
            TF_ASSERT_RC(tc_recv_raw(fd, got, n, tf_ms(5000)), 0);
            assert_memory_equal(got, want, n);
        }
    }
    free(payload);
    free(want);
    free(got);
}

/* Builds count frames (request and expected reply streams). */
static void build_batch(zinx_packet_format_t fmt, int count, uint8_t *out,
                        size_t *out_len, uint8_t *in, size_t *in_len)
{
    uint8_t payload[256];

    *out_len = 0;
    *in_len = 0;
    for (int i = 0; i < count; i++) {
        uint32_t len = (uint32_t)(i * 3) % 200;
        fill_pattern(payload, len, (uint32_t)i);
        *out_len += frame_encode(fmt, 1, payload, len, out + *out_len);
        *in_len += frame_encode(fmt, 1001, payload, len, in + *in_len);
    }
}

static void check_batches(int fd, zinx_packet_format_t fmt)
{
    enum { COUNT = 60 };
    const size_t chunks[] = {0, 1, 37};
    size_t cap = COUNT * (8 + 200);
    uint8_t *out = malloc(cap), *want = malloc(cap), *got = malloc(cap);
    size_t out_len, in_len;
    uint32_t seed = 12345;

    assert_non_null(out);
    assert_non_null(want);
    assert_non_null(got);
    build_batch(fmt, COUNT, out, &out_len, want, &in_len);
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        memset(got, 0, in_len);
        TF_ASSERT_RC(tc_exchange(fd, out, out_len, got, in_len, chunks[i],
                                 &seed, tf_ms(10000)),
                     0);
        assert_memory_equal(got, want, in_len);
    }
    free(out);
    free(want);
    free(got);
}

void sc_echo(uint32_t worker_pool_size, zinx_packet_format_t fmt)
{
    zinx_config_t cfg;

    tf_config(&cfg);
    cfg.worker_pool_size = worker_pool_size;
    cfg.packet_format = fmt;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = echo_plus_1000};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 0x01020304, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    check_literal_bytes(fd, fmt);
    check_sizes(fd, fmt, cfg.max_packet_size);
    if (tf_verbose())
        print_message("msgs_in after sizes: %llu\n",
                      (unsigned long long)tf_stat(ts->srv, TF_STAT(msgs_in)));
    check_batches(fd, fmt);

    uint64_t frames = 1 + 5 * 2 + 3 * 60;
    uint64_t in = tf_wait_stat(ts->srv, TF_STAT(msgs_in), frames, tf_ms(2000));
    /* A reply can reach us just before its send is counted. */
    uint64_t out =
        tf_wait_stat(ts->srv, TF_STAT(msgs_out), frames, tf_ms(2000));
    if (in != frames || out != frames)
        fail_msg("%llu frames echoed, stats: msgs_in %llu, msgs_out %llu",
                 (unsigned long long)frames, (unsigned long long)in,
                 (unsigned long long)out);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(unrouted)), 0);
    tc_close(fd);
    tf_server_free(ts);
}

/* ---- hooks exactly once ---- */

enum hk_violation {
    HK_START_TWICE,     /* OnConnStart saw user data already set */
    HK_HANDLER_EARLY,   /* handler before OnConnStart */
    HK_HANDLER_LATE,    /* handler after OnConnStop */
    HK_HANDLER_OVERLAP, /* two handlers of one connection at once */
    HK_STOP_NO_START,   /* OnConnStop without OnConnStart */
    HK_STOP_TWICE,      /* OnConnStop twice */
    HK_STOP_IN_HANDLER, /* OnConnStop while a handler runs */
    HK_STOP_SEND_OK,    /* a send from OnConnStop did not fail ECLOSED */
    HK_STOP_NOT_IN_MGR, /* connmgr_get() missed it inside OnConnStop */
    HK_COUNT
};

static const char *const hk_names[HK_COUNT] = {
    "OnConnStart twice",
    "handler before OnConnStart",
    "handler after OnConnStop",
    "overlapping handlers",
    "OnConnStop without OnConnStart",
    "OnConnStop twice",
    "OnConnStop during a handler",
    "send in OnConnStop not ECLOSED",
    "connection not in manager during OnConnStop",
};

typedef struct hk_conn {
    uint64_t id;
    atomic_int stopped;
    atomic_int in_handler;
    struct hk_conn *next;
} hk_conn_t;

typedef struct hk_ctx {
    pthread_mutex_t mu;
    hk_conn_t *conns;
    uint64_t *start_ids;
    uint64_t *stop_ids;
    size_t nstart, nstop, cap;
    atomic_int violations[HK_COUNT];
} hk_ctx_t;

static void hk_violate(hk_ctx_t *ctx, enum hk_violation v)
{
    atomic_fetch_add(&ctx->violations[v], 1);
}

static void hk_push(hk_ctx_t *ctx, uint64_t *ids, size_t *n, uint64_t id)
{
    pthread_mutex_lock(&ctx->mu);
    if (*n < ctx->cap)
        ids[*n] = id;
    (*n)++;
    pthread_mutex_unlock(&ctx->mu);
}

static void hk_on_start(zinx_conn_t *conn, void *udata)
{
    hk_ctx_t *ctx = udata;

    if (zinx_conn_data(conn) != NULL) {
        hk_violate(ctx, HK_START_TWICE);
        return;
    }
    hk_conn_t *rec = calloc(1, sizeof(*rec));
    if (rec == NULL)
        return;
    rec->id = zinx_conn_id(conn);
    atomic_init(&rec->stopped, 0);
    atomic_init(&rec->in_handler, 0);
    pthread_mutex_lock(&ctx->mu);
    rec->next = ctx->conns;
    ctx->conns = rec;
    pthread_mutex_unlock(&ctx->mu);
    zinx_conn_set_data(conn, rec);
    hk_push(ctx, ctx->start_ids, &ctx->nstart, rec->id);
}

/* Echoes; a payload starting with 'S' makes the handler take 200 us. */
static void hk_handle(zinx_request_t *req, void *udata)
{
    hk_ctx_t *ctx = udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    hk_conn_t *rec = zinx_conn_data(conn);

    if (rec == NULL) {
        hk_violate(ctx, HK_HANDLER_EARLY);
        return;
    }
    if (atomic_load(&rec->stopped))
        hk_violate(ctx, HK_HANDLER_LATE);
    if (atomic_exchange(&rec->in_handler, 1) != 0)
        hk_violate(ctx, HK_HANDLER_OVERLAP);
    if (zinx_request_data_len(req) > 0 && zinx_request_data(req)[0] == 'S')
        tf_sleep_us(200);
    zinx_conn_send_msg(conn, zinx_request_msg_id(req), zinx_request_data(req),
                       zinx_request_data_len(req));
    atomic_store(&rec->in_handler, 0);
}

static void hk_on_stop(zinx_conn_t *conn, void *udata)
{
    hk_ctx_t *ctx = udata;
    hk_conn_t *rec = zinx_conn_data(conn);

    if (rec == NULL) {
        hk_violate(ctx, HK_STOP_NO_START);
        return;
    }
    if (atomic_load(&rec->in_handler))
        hk_violate(ctx, HK_STOP_IN_HANDLER);
    if (atomic_exchange(&rec->stopped, 1) != 0)
        hk_violate(ctx, HK_STOP_TWICE);
    if (zinx_conn_send_msg(conn, 1, "x", 1) != ZINX_ECLOSED)
        hk_violate(ctx, HK_STOP_SEND_OK);
    zinx_conn_t *found =
        zinx_connmgr_get(zinx_server_connmgr(zinx_conn_server(conn)), rec->id);
    if (found != conn)
        hk_violate(ctx, HK_STOP_NOT_IN_MGR);
    zinx_conn_unref(found);
    hk_push(ctx, ctx->stop_ids, &ctx->nstop, rec->id);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Both ID lists hold the same IDs, each once. */
static void hk_check_ids(hk_ctx_t *ctx, size_t total)
{
    assert_int_equal(ctx->nstart, total);
    assert_int_equal(ctx->nstop, total);
    qsort(ctx->start_ids, total, sizeof(uint64_t), cmp_u64);
    qsort(ctx->stop_ids, total, sizeof(uint64_t), cmp_u64);
    for (size_t i = 0; i < total; i++) {
        assert_true(ctx->start_ids[i] != 0);
        if (i > 0 && ctx->start_ids[i] == ctx->start_ids[i - 1])
            fail_msg("connection ID %llu started twice",
                     (unsigned long long)ctx->start_ids[i]);
        if (ctx->start_ids[i] != ctx->stop_ids[i])
            fail_msg("started ID %llu but stopped ID %llu",
                     (unsigned long long)ctx->start_ids[i],
                     (unsigned long long)ctx->stop_ids[i]);
    }
}

static void hk_check_violations(hk_ctx_t *ctx)
{
    for (int i = 0; i < HK_COUNT; i++) {
        int n = atomic_load(&ctx->violations[i]);
        if (n != 0)
            fail_msg("%d x %s", n, hk_names[i]);
    }
}

enum { HK_CLOSE, HK_RST, HK_HALF, HK_OVERSIZE, HK_STAY, HK_WAYS };

/* Makes the client of way `way` leave (or not). */
static void hk_leave(int fd, int way, uint32_t max_packet)
{
    const zinx_packet_format_t f = ZINX_FORMAT_TLV;
    uint8_t buf[64];
    uint32_t id, len;

    switch (way) {
    case HK_CLOSE:
        TF_ASSERT_RC(tc_roundtrip(fd, f, 1, "bye", 3, &id, buf, sizeof(buf),
                                  &len, tf_ms(5000)),
                     0);
        tc_close(fd);
        break;
    case HK_RST:
        /* Requests still in flight when the reset arrives. */
        for (int i = 0; i < 5; i++)
            TF_ASSERT_RC(tc_send_frame(fd, f, 1, "Slow", 4, tf_ms(5000)), 0);
        tc_close_rst(fd);
        break;
    case HK_HALF:
        for (int i = 0; i < 3; i++)
            TF_ASSERT_RC(tc_send_frame(fd, f, 1, "Shalf", 5, tf_ms(5000)), 0);
        TF_ASSERT_RC(tc_shutdown_wr(fd), 0);
        for (int i = 0; i < 3; i++) {
            TF_ASSERT_RC(
                tc_recv_frame(fd, f, &id, buf, sizeof(buf), &len, tf_ms(5000)),
                0);
            assert_int_equal(len, 5);
            assert_memory_equal(buf, "Shalf", 5);
        }
        TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(5000)), 0);
        tc_close(fd);
        break;
    case HK_OVERSIZE:
        TF_ASSERT_RC(tc_send_header(fd, f, 1, max_packet + 1, tf_ms(5000)), 0);
        TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(2000)), 0);
        tc_close(fd);
        break;
    default:
        break;
    }
}

static void hk_free_ctx(hk_ctx_t *ctx)
{
    while (ctx->conns != NULL) {
        hk_conn_t *next = ctx->conns->next;
        free(ctx->conns);
        ctx->conns = next;
    }
    free(ctx->start_ids);
    free(ctx->stop_ids);
    pthread_mutex_destroy(&ctx->mu);
}

static tf_server_t *hk_server(hk_ctx_t *ctx, uint32_t worker_pool_size,
                              int total)
{
    zinx_config_t cfg;

    tf_config(&cfg);
    cfg.worker_pool_size = worker_pool_size;
    cfg.max_conn = total + 16;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = hk_handle, .udata = ctx};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, hk_on_start, ctx), 0);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, hk_on_stop, ctx), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

void sc_hooks(uint32_t worker_pool_size, int per_group, int stop_by_free)
{
    int total = per_group * HK_WAYS;
    /* On the heap and leaked on failure: server threads may still use it. */
    hk_ctx_t *ctx = calloc(1, sizeof(*ctx));

    assert_non_null(ctx);
    pthread_mutex_init(&ctx->mu, NULL);
    for (int i = 0; i < HK_COUNT; i++)
        atomic_init(&ctx->violations[i], 0);
    ctx->cap = (size_t)total;
    ctx->start_ids = calloc(ctx->cap, sizeof(uint64_t));
    ctx->stop_ids = calloc(ctx->cap, sizeof(uint64_t));
    assert_non_null(ctx->start_ids);
    assert_non_null(ctx->stop_ids);
    tf_server_t *ts = hk_server(ctx, worker_pool_size, total);
    uint32_t max_packet = zinx_server_config(ts->srv)->max_packet_size;

    int *fds = calloc((size_t)total, sizeof(int));
    assert_non_null(fds);
    /* Every client is served once first, so it surely reached the hooks. */
    for (int i = 0; i < total; i++) {
        uint8_t buf[16];
        uint32_t id, len;
        fds[i] = tc_connect(ts->port);
        assert_true(fds[i] >= 0);
        TF_ASSERT_RC(tc_roundtrip(fds[i], ZINX_FORMAT_TLV, 1, "hi", 2, &id, buf,
                                  sizeof(buf), &len, tf_ms(5000)),
                     0);
        assert_int_equal(len, 2);
    }
    assert_int_equal(tf_stat(ts->srv, TF_STAT(accepted)), total);
    for (int i = 0; i < total; i++)
        hk_leave(fds[i], i % HK_WAYS, max_packet);

    uint64_t leaving = (uint64_t)(total - per_group);
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(closed), leaving, tf_ms(10000)), leaving);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(oversize)), per_group);
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(connections), per_group, tf_ms(2000)),
        per_group);
    assert_int_equal(zinx_connmgr_count(zinx_server_connmgr(ts->srv)),
                     per_group);

    if (stop_by_free) {
        tf_server_free(ts);
        ts = NULL;
    } else {
        TF_ASSERT_RC(tf_stop_wait(ts->srv, tf_ms(10000)), 0);
        assert_int_equal(tf_stat(ts->srv, TF_STAT(closed)), total);
        assert_int_equal(tf_stat(ts->srv, TF_STAT(connections)), 0);
    }
    for (int i = HK_STAY; i < total; i += HK_WAYS) {
        TF_ASSERT_RC(tc_expect_eof(fds[i], tf_ms(5000)), 0);
        tc_close(fds[i]);
    }
    tf_server_free(ts);

    hk_check_violations(ctx);
    hk_check_ids(ctx, (size_t)total);
    free(fds);
    hk_free_ctx(ctx);
    free(ctx);
}
