/*
 * Limits: MaxConn, half-close, hostile frame lengths, a full worker
 * queue, a tiny read buffer, and output back-pressure against a client
 * that never reads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000

/* Echo that takes about 100 us, so requests queue up behind it. */
static void slow_echo(zinx_request_t *req, void *udata)
{
    tf_sleep_us(100);
    tf_echo(req, udata);
}

static void count_start(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    atomic_fetch_add((atomic_int *)udata, 1);
}

static tf_server_t *start_server(zinx_config_t *cfg, zinx_handler_fn fn)
{
    tf_server_t *ts = tf_server_new(cfg);
    zinx_router_t r = {.handle = fn};

    assert_non_null(ts);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

static void roundtrip_ok(int fd, zinx_packet_format_t fmt)
{
    uint8_t buf[16];
    uint32_t id, len;

    TF_ASSERT_RC(tc_roundtrip(fd, fmt, 1, "ping", 4, &id, buf, sizeof(buf),
                              &len, tf_ms(T_IO)),
                 0);
    assert_int_equal(id, 1);
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "ping", 4);
}

static int connect_ok(const tf_server_t *ts)
{
    int fd = tc_connect(ts->port);

    if (fd < 0)
        fail_msg("connect: %s", tf_rc_name(fd));
    return fd;
}

/* ---- MaxConn ---- */

static void test_max_conn(void **state)
{
    (void)state;
    enum { MAX = 5, EXTRA = 5 };
    atomic_int *starts = calloc(1, sizeof(*starts));
    assert_non_null(starts);
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.max_conn = MAX;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = tf_echo};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, count_start, starts), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    int fds[MAX];
    for (int i = 0; i < MAX; i++) {
        fds[i] = connect_ok(ts);
        roundtrip_ok(fds[i], TLV);
    }
    for (int i = 0; i < EXTRA; i++) {
        int fd = connect_ok(ts);
        uint64_t t0 = tf_now_ms();
        TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(2000)), 0);
        assert_true(tf_now_ms() - t0 < (uint64_t)tf_ms(1000));
        tc_close(fd);
    }
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(rejected_max_conn), EXTRA, tf_ms(2000)),
        EXTRA);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(accepted)), MAX);
    assert_true(atomic_load(&ts->log_count[ZINX_LOG_WARN]) >= 1);
    for (int i = 0; i < MAX; i++)
        roundtrip_ok(fds[i], TLV);

    /* A slot frees up: the next client is served. */
    tc_close(fds[0]);
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(connections), MAX - 1, tf_ms(T_IO)),
        MAX - 1);
    fds[0] = connect_ok(ts);
    roundtrip_ok(fds[0], TLV);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(accepted)), MAX + 1);
    int fd = connect_ok(ts);
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(2000)), 0);
    tc_close(fd);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(rejected_max_conn),
                                  EXTRA + 1, tf_ms(2000)),
                     EXTRA + 1);
    for (int i = 0; i < MAX; i++)
        tc_close(fds[i]);
    tf_server_free(ts);
    /* Rejected connections never reach the hooks. */
    assert_int_equal(atomic_load(starts), MAX + 1);
    free(starts);
}

/* ---- half-close ---- */

static void run_half_close(uint32_t pool)
{
    enum { K = 100 };
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = pool;
    tf_server_t *ts = start_server(&cfg, slow_echo);
    uint8_t out[K * 12];
    size_t n = 0;

    for (uint32_t i = 0; i < K; i++) {
        uint8_t p[4];
        frame_put_u32(p, i);
        n += frame_encode(TLV, 1, p, 4, out + n);
    }
    int fd = connect_ok(ts);
    TF_ASSERT_RC(tc_send_raw(fd, out, n, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_shutdown_wr(fd), 0);
    uint8_t in[K * 12];
    TF_ASSERT_RC(tc_recv_raw(fd, in, n, tf_ms(T_IO)), 0);
    assert_memory_equal(in, out, n);
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(T_IO)), 0);
    tc_close(fd);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), 1, tf_ms(T_IO)), 1);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(msgs_in)), K);
    tf_server_free(ts);
}

static void test_half_close(void **state)
{
    (void)state;
    run_half_close(2);
}

static void test_half_close_inline(void **state)
{
    (void)state;
    run_half_close(0);
}

/* ---- hostile lengths ---- */

static void run_hostile(zinx_packet_format_t fmt, int with_body)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.packet_format = fmt;
    tf_server_t *ts = start_server(&cfg, tf_echo);
    const uint32_t lens[] = {cfg.max_packet_size + 1, 0x7FFFFFFFu, 0x80000000u,
                             0xFFFFFFF8u, 0xFFFFFFFFu};
    const int count = (int)(sizeof(lens) / sizeof(lens[0]));
    int bystander = connect_ok(ts);
    uint8_t junk[1024];

    memset(junk, 0xAB, sizeof(junk));
    roundtrip_ok(bystander, fmt);
    for (int i = 0; i < count; i++) {
        int fd = connect_ok(ts);
        roundtrip_ok(fd, fmt);
        TF_ASSERT_RC(tc_send_header(fd, fmt, 1, lens[i], tf_ms(T_IO)), 0);
        if (with_body) /* may fail once the server has closed */
            tc_send_raw(fd, junk, sizeof(junk), tf_ms(T_IO));
        uint64_t t0 = tf_now_ms();
        TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(2000)), 0);
        assert_true(tf_now_ms() - t0 < (uint64_t)tf_ms(1000));
        tc_close(fd);
        assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(oversize),
                                      (uint64_t)i + 1, tf_ms(2000)),
                         (uint64_t)i + 1);
        roundtrip_ok(bystander, fmt);
    }
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), count, tf_ms(T_IO)),
                     count);
    tc_close(bystander);
    tf_server_free(ts);
}

static void test_hostile_lengths_tlv(void **state)
{
    (void)state;
    run_hostile(ZINX_FORMAT_TLV, 0);
}

static void test_hostile_lengths_ltv_le(void **state)
{
    (void)state;
    run_hostile(ZINX_FORMAT_LTV_LE, 0);
}

static void test_hostile_lengths_with_body(void **state)
{
    (void)state;
    run_hostile(ZINX_FORMAT_TLV, 1);
}

/* ---- a full worker queue pauses reading, never drops ---- */

static void run_pipeline(zinx_config_t *cfg, zinx_handler_fn fn, int msgs)
{
    tf_server_t *ts = start_server(cfg, fn);
    size_t cap = (size_t)msgs * (8 + 64);
    uint8_t *out = malloc(cap), *in = malloc(cap);
    uint8_t p[64];
    size_t n = 0;

    assert_non_null(out);
    assert_non_null(in);
    for (int i = 0; i < msgs; i++) {
        uint32_t len = 4 + (uint32_t)i % 60;
        memset(p, i, len);
        frame_put_u32(p, (uint32_t)i);
        n += frame_encode(TLV, 1, p, len, out + n);
    }
    int fd = connect_ok(ts);
    TF_ASSERT_RC(tc_exchange(fd, out, n, in, n, 0, NULL, tf_ms(T_IO)), 0);
    assert_memory_equal(in, out, n);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(msgs_in)), msgs);
    tc_close(fd);
    tf_server_free(ts);
    free(out);
    free(in);
}

static void test_worker_queue_full(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = 1;
    cfg.max_worker_task_len = 1;
    run_pipeline(&cfg, slow_echo, tf_scaled(2000, 500));
}

static void test_tiny_read_buffer(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.io_read_buff_size = 1;
    run_pipeline(&cfg, tf_echo, tf_scaled(2000, 500));
}

/* ---- output back-pressure ---- */

enum { BP_REQ = 1000, BP_REPLY = 4000 };

/* Each request is answered with BP_REPLY bytes: a 4x amplifier. */
static void amplify(zinx_request_t *req, void *udata)
{
    static const uint8_t big[BP_REPLY];

    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), 1, big, BP_REPLY);
}

typedef struct flood {
    int fd;
    uint8_t frame[8 + BP_REQ];
    size_t total;  /* bytes sent */
    size_t frames; /* frames started */
} flood_t;

/*
 * Sends until the socket stays unwritable for 300 ms. Returns 1 when it
 * blocked, 0 when the byte cap or the deadline came first.
 */
static int flood_until_blocked(flood_t *f, size_t cap, int timeout_ms)
{
    uint64_t deadline = tf_now_ms() + (uint64_t)timeout_ms;
    size_t flen = sizeof(f->frame);

    while (f->total < cap && tf_now_ms() < deadline) {
        size_t off = f->total % flen;
        ssize_t n = send(f->fd, f->frame + off, flen - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            if (off == 0)
                f->frames++;
            f->total += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            fail_msg("flood send: %s", tf_rc_name(-errno));
        struct pollfd p = {.fd = f->fd, .events = POLLOUT};
        if (poll(&p, 1, 300) == 0)
            return 1;
    }
    return 0;
}

/* Finishes the partial frame and reads every reply. */
static void flood_drain(flood_t *f, int timeout_ms)
{
    size_t flen = sizeof(f->frame);
    size_t rest = (flen - f->total % flen) % flen;
    size_t want = f->frames * (8 + BP_REPLY);
    uint8_t *in = malloc(want);

    assert_non_null(in);
    TF_ASSERT_RC(tc_set_nonblock(f->fd, 0), 0);
    TF_ASSERT_RC(tc_exchange(f->fd, f->frame + (flen - rest), rest, in, want, 0,
                             NULL, timeout_ms),
                 0);
    for (size_t i = 0; i < f->frames; i++) {
        uint32_t id, len;
        frame_header_decode(TLV, in + i * (8 + BP_REPLY), &id, &len);
        assert_int_equal(id, 1);
        assert_int_equal(len, BP_REPLY);
    }
    free(in);
}

static void test_output_backpressure(void **state)
{
    (void)state;
    const size_t cap = 16u << 20;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.max_packet_size = 8192;
    cfg.output_high_water = 64 * 1024;
    cfg.max_worker_task_len = 64;
    tf_server_t *ts = start_server(&cfg, amplify);
    flood_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    frame_encode(TLV, 1, f->frame + 8, BP_REQ, f->frame);
    f->fd = connect_ok(ts);
    int small = 64 * 1024;
    assert_int_equal(
        setsockopt(f->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    TF_ASSERT_RC(tc_set_nonblock(f->fd, 1), 0);
    int other = connect_ok(ts);

    /*
     * Blocked means: no room to send and the server decoding nothing
     * for 300 ms (a merely slow server, e.g. under a sanitizer, is not).
     */
    uint64_t until = tf_now_ms() + (uint64_t)tf_ms(10000);
    int blocked = 0;
    while (!blocked && f->total < cap && tf_now_ms() < until) {
        if (!flood_until_blocked(f, cap, tf_ms_left(until)))
            break;
        uint64_t before = tf_stat(ts->srv, TF_STAT(msgs_in));
        tf_sleep_ms(300);
        blocked = tf_stat(ts->srv, TF_STAT(msgs_in)) == before;
    }
    if (!blocked)
        fail_msg("the server kept reading a client that never reads: "
                 "%zu bytes sent, %llu frames decoded",
                 f->total,
                 (unsigned long long)tf_stat(ts->srv, TF_STAT(msgs_in)));
    if (tf_verbose())
        print_message("flood blocked after %zu bytes, %llu frames decoded\n",
                      f->total,
                      (unsigned long long)tf_stat(ts->srv, TF_STAT(msgs_in)));
    /* Reading that client stopped; everyone else is still served. */
    uint64_t in0 = tf_stat(ts->srv, TF_STAT(msgs_in));
    for (int i = 0; i < 10; i++) {
        uint64_t t0 = tf_now_ms();
        uint8_t buf[8 + BP_REPLY];
        uint32_t id, len;
        TF_ASSERT_RC(tc_roundtrip(other, TLV, 1, "x", 1, &id, buf, sizeof(buf),
                                  &len, tf_ms(T_IO)),
                     0);
        assert_int_equal(len, BP_REPLY);
        assert_true(tf_now_ms() - t0 < (uint64_t)tf_ms(1000));
    }
    assert_int_equal(tf_stat(ts->srv, TF_STAT(msgs_in)), in0 + 10);
    /* Reading resumes once the client drains; nothing was dropped. */
    flood_drain(f, tf_ms(20000));
    assert_int_equal(tf_stat(ts->srv, TF_STAT(msgs_in)), f->frames + 10);
    tc_close(f->fd);
    tc_close(other);
    tf_server_free(ts);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_conn),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_half_close_inline),
        cmocka_unit_test(test_hostile_lengths_tlv),
        cmocka_unit_test(test_hostile_lengths_ltv_le),
        cmocka_unit_test(test_hostile_lengths_with_body),
        cmocka_unit_test(test_worker_queue_full),
        cmocka_unit_test(test_tiny_read_buffer),
        cmocka_unit_test(test_output_backpressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
