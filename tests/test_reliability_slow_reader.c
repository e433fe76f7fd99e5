/*
 * T6, slow readers: clients with a small receive buffer ask for 64 KiB
 * replies and never read. The server must close them once their unsent
 * output passes OutputHardLimit, or stays above OutputSoftLimit for
 * OutputSoftTimeoutMs (stats.slow_readers), keep its memory bounded by
 * those caps, and keep answering a fast client in the meantime.
 *
 * Only the unsent output the server holds counts against the caps; what
 * the kernel buffers in the socket does not, which is why the bounds on
 * what a slow client eventually receives allow for socket buffers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "test_bystander.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"
#include "test_probe.h"

#define BIG_ID 2u
#define BIG_REPLY (64u * 1024u)
#define MAX_PACKET (2u * BIG_REPLY)
#define MIB (1024L * 1024L)

static uint8_t big_reply[BIG_REPLY];

static void big_handle(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), BIG_ID, big_reply, BIG_REPLY);
}

/* One request answered with a burst of BURST_REPLIES big messages: output
   that the peer's own request pacing cannot hold back (handing requests
   to handlers pauses between requests, not inside one), the case the
   output limits exist for, like pushes and broadcasts. */
#define BURST_ID 3u
#define BURST_REPLIES 32
static void burst_handle(zinx_request_t *req, void *udata)
{
    (void)udata;
    for (int i = 0; i < BURST_REPLIES; i++) {
        if (zinx_conn_send_msg(zinx_request_conn(req), BIG_ID, big_reply,
                               BIG_REPLY) != 0)
            return;
    }
}

/* Written before any server starts; read-only while one runs. */
static void fill_big_reply(void)
{
    for (uint32_t i = 0; i < BIG_REPLY; i++)
        big_reply[i] = (uint8_t)(i * 11u);
}

static zinx_server_t *start_server(zinx_config_t *cfg, int *port)
{
    fill_big_reply();
    cfg->max_packet_size = MAX_PACKET;
    zinx_server_t *s = tf_echo_server_new(cfg);
    zinx_router_t big = {.handle = big_handle};
    zinx_router_t burst = {.handle = burst_handle};
    assert_int_equal(zinx_server_add_router(s, BIG_ID, &big), 0);
    assert_int_equal(zinx_server_add_router(s, BURST_ID, &burst), 0);
    *port = tf_start_or_fail(s);
    return s;
}

/*
 * The highest OutputHighWater that zinx_config_validate() allows under
 * an output limit: the limit must hold it plus one largest frame.
 */
static uint32_t high_water_under(uint32_t limit)
{
    return limit - (MAX_PACKET + ZINX_HEADER_LEN);
}

/* A slow reader: small receive buffer; sends n requests, never reads. */
static int slow_client_id(int port, int n, uint32_t id)
{
    tc_opts_t o = {.rcvbuf = 4096};
    int fd = tc_connect_opts(port, &o);
    assert_true(fd >= 0);
    uint8_t *reqs = calloc((size_t)n, ZINX_HEADER_LEN);
    assert_non_null(reqs);
    for (int i = 0; i < n; i++)
        frame_encode(ZINX_FORMAT_TLV, id, NULL, 0,
                     reqs + (size_t)i * ZINX_HEADER_LEN);
    assert_int_equal(tc_send_raw(fd, reqs, (size_t)n * ZINX_HEADER_LEN, 2000),
                     0);
    free(reqs);
    return fd;
}

static int slow_client(int port, int n)
{
    return slow_client_id(port, n, BIG_ID);
}

/* Waits for the counter to come down to want, sampling RSS; returns the
   peak RSS seen. */
static long wait_sampling_rss(zinx_server_t *s, size_t off, uint64_t want,
                              int timeout_ms, uint64_t *got)
{
    long peak = probe_rss_kib();
    uint64_t end = tf_now_ms() + (uint64_t)timeout_ms;
    tf_sleep_ms(20);
    while ((*got = tf_stat(s, off)) > want && tf_now_ms() < end) {
        long r = probe_rss_kib();
        if (r > peak)
            peak = r;
        tf_sleep_ms(5);
    }
    long r = probe_rss_kib();
    return r > peak ? r : peak;
}

/* Reads what the closed connection still delivers; returns the bytes. */
static size_t drain_closed(int fd)
{
    size_t got = 0;
    int rc = tc_wait_closed(fd, 10000, &got);
    if (rc != 0 && rc != -ECONNRESET)
        fail_msg("slow reader not closed: %s", zinx_strerror(rc));
    return got;
}

/*
 * Hard limit. High water as close to the cap as validation allows, and
 * each request is answered with a burst of 32 big messages (2 MiB), more
 * than the cap: pausing between requests cannot hold that back, the hard
 * limit must. (Requests answered one by one never reach it: handing them
 * to handlers pauses at OutputHighWater.)
 */
static void t6_hard_limit(void **state)
{
    (void)state;
    const int slow = TF_PICK(8, 4);
    const long hard = 1 * MIB;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.output_hard_limit = (uint32_t)hard;
    cfg.output_soft_limit = 0;
    cfg.output_high_water = high_water_under((uint32_t)hard);
    int port;
    zinx_server_t *s = start_server(&cfg, &port);
    bystander_t *bystander = bystander_start(port);
    tf_sleep_ms(50);
    long base = probe_rss_kib();

    /* 16 MiB of replies each: more than the cap plus what the kernel
       may buffer in the socket (tcp_wmem's maximum, 4 MiB). */
    int fds[8];
    for (int i = 0; i < slow; i++)
        fds[i] = slow_client_id(port, 8, BURST_ID);
    uint64_t left;
    long peak = wait_sampling_rss(s, TF_STAT(connections), 1, 5000, &left);
    tf_note("T6 hard: %d slow readers, %llu connections left, "
            "stats.slow_readers %llu; RSS peak +%ld KiB",
            slow, (unsigned long long)left,
            (unsigned long long)tf_stat(s, TF_STAT(slow_readers)), peak - base);
    assert_int_equal(left, 1); /* the bystander's */
    /* What the server held for them is bounded by the cap (a copy in
       flight between buffers may double it); ASan keeps freed memory in
       quarantine, so it gets more room. */
    long bound_kib = slow * 3 * hard / 1024 + TF_PICK(16384, 262144);
    assert_true(peak - base <= bound_kib);

    for (int i = 0; i < slow; i++) {
        size_t got = drain_closed(fds[i]);
        tf_note("T6 hard: slow reader %d received %zu bytes after all", i, got);
        assert_true(got <= (size_t)(hard + 8 * MIB));
        close(fds[i]);
    }
    bystander_finish(bystander, "T6 hard", TF_PICK(1000, 3000));
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, 2000), 0);
    /* One count per connection closed, however many sends it refused. */
    assert_int_equal(tf_stat(s, TF_STAT(slow_readers)), (uint64_t)slow);
    zinx_server_free(s);
}

/* Default high water: reading pauses, so a client streaming requests and
   never reading is held back; memory stays bounded all the same. */
static void t6_streaming_slow_readers_bounded(void **state)
{
    (void)state;
    const int slow = TF_PICK(8, 4);
    const long hard = 1 * MIB;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.output_hard_limit = (uint32_t)hard;
    cfg.output_soft_limit = 0;
    int port;
    zinx_server_t *s = start_server(&cfg, &port);
    bystander_t *bystander = bystander_start(port);
    tf_sleep_ms(50);
    long base = probe_rss_kib(), peak = base;

    int fds[8];
    for (int i = 0; i < slow; i++) {
        tc_opts_t o = {.rcvbuf = 4096};
        fds[i] = tc_connect_opts(port, &o);
        assert_true(fds[i] >= 0);
    }
    uint8_t reqs[64 * ZINX_HEADER_LEN];
    for (int i = 0; i < 64; i++)
        frame_encode(ZINX_FORMAT_TLV, BIG_ID, NULL, 0,
                     reqs + i * ZINX_HEADER_LEN);
    uint64_t end = tf_now_ms() + 1500;
    size_t sent = 0;
    while (tf_now_ms() < end) {
        for (int i = 0; i < slow; i++) {
            ssize_t n =
                send(fds[i], reqs, sizeof(reqs), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
        }
        long r = probe_rss_kib();
        if (r > peak)
            peak = r;
        tf_sleep_ms(5);
    }
    tf_note("T6 streaming: %zu request bytes sent, %llu slow readers "
            "closed, RSS peak +%ld KiB",
            sent, (unsigned long long)tf_stat(s, TF_STAT(slow_readers)),
            peak - base);
    long bound_kib = slow * 3 * hard / 1024 + TF_PICK(16384, 262144);
    assert_true(peak - base <= bound_kib);
    int gone = 0;
    for (int i = 0; i < slow; i++) {
        gone += tc_peer_closed_now(fds[i]);
        close(fds[i]);
    }
    bystander_finish(bystander, "T6 streaming", TF_PICK(1000, 3000));
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, 2000), 0);
    tf_note("T6 streaming: %d of %d slow readers were closed by the server",
            gone, slow);
    assert_true(tf_stat(s, TF_STAT(slow_readers)) <= (uint64_t)slow);
    zinx_server_free(s);
}

/* Soft limit: above it for OutputSoftTimeoutMs closes; below the hard
   limit (off here) nothing else would. */
static void t6_soft_limit(void **state)
{
    (void)state;
    const unsigned soft_ms = 500;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.output_hard_limit = 0;
    cfg.output_soft_limit = 256u * 1024u;
    cfg.output_soft_timeout_ms = soft_ms;
    cfg.output_high_water = high_water_under(cfg.output_soft_limit);
    int port;
    zinx_server_t *s = start_server(&cfg, &port);
    bystander_t *bystander = bystander_start(port);

    /* 8 MiB of replies: the kernel alone may buffer up to tcp_wmem's
       maximum (4 MiB) of them on a loopback socket. */
    uint64_t t0 = tf_now_ms();
    int fd = slow_client(port, 128);
    uint64_t closed =
        tf_wait_stat(s, TF_STAT(slow_readers), 1, (int)soft_ms + 5000);
    uint64_t took = tf_now_ms() - t0;
    assert_int_equal(closed, 1);
    tf_note("T6 soft: closed %llu ms after the requests (limit held %u ms)",
            (unsigned long long)took, soft_ms);
    assert_true(took + 20 >= soft_ms);
    assert_true(took <= soft_ms + TF_SLACK_MS);
    size_t got = drain_closed(fd);
    assert_true(got < 128u * (BIG_REPLY + ZINX_HEADER_LEN));
    close(fd);

    /* Above the soft limit only briefly: reading in time keeps it open. */
    fd = tc_connect(port);
    assert_true(fd >= 0);
    uint8_t reqs[128 * ZINX_HEADER_LEN];
    for (int i = 0; i < 128; i++)
        frame_encode(ZINX_FORMAT_TLV, BIG_ID, NULL, 0,
                     reqs + i * ZINX_HEADER_LEN);
    assert_int_equal(tc_send_raw(fd, reqs, sizeof(reqs), 2000), 0);
    tf_sleep_ms(soft_ms / 10);
    static uint8_t buf[BIG_REPLY];
    for (int i = 0; i < 128; i++) {
        uint32_t id, len;
        assert_int_equal(tc_recv_frame(fd, ZINX_FORMAT_TLV, &id, buf,
                                       sizeof(buf), &len, 5000),
                         0);
        assert_int_equal(id, BIG_ID);
        assert_int_equal(len, BIG_REPLY);
        assert_memory_equal(buf, big_reply, BIG_REPLY);
    }
    tf_sleep_ms(soft_ms + 100);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "still", 5, 2000), 0);
    assert_int_equal(tf_stat(s, TF_STAT(slow_readers)), 1);
    close(fd);

    bystander_finish(bystander, "T6 soft", TF_PICK(1000, 3000));
    zinx_server_free(s);
}

/* A send that would pass the hard limit fails with ZINX_ENOBUFS and the
   connection is closed, even from a handler of that very connection. */
static atomic_int enobufs_seen;

static void flood_handle(zinx_request_t *req, void *udata)
{
    (void)udata;
    for (int i = 0; i < 64; i++) {
        int rc = zinx_conn_send_msg(zinx_request_conn(req), BIG_ID, big_reply,
                                    BIG_REPLY);
        if (rc == ZINX_ENOBUFS)
            atomic_fetch_add(&enobufs_seen, 1);
        if (rc != 0)
            break;
    }
}

static void t6_send_reports_enobufs(void **state)
{
    (void)state;
    atomic_store(&enobufs_seen, 0);
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.output_hard_limit = 1u << 20;
    cfg.output_soft_limit = 0;
    fill_big_reply();
    cfg.max_packet_size = MAX_PACKET;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_router_t flood = {.handle = flood_handle};
    assert_int_equal(zinx_server_add_router(s, 3, &flood), 0);
    int port = tf_start_or_fail(s);
    tc_opts_t o = {.rcvbuf = 4096};
    int fd = tc_connect_opts(port, &o);
    assert_true(fd >= 0);
    assert_int_equal(tc_send_frame(fd, ZINX_FORMAT_TLV, 3, NULL, 0, 2000), 0);
    assert_int_equal(tf_wait_stat(s, TF_STAT(slow_readers), 1, 5000), 1);
    /* The counter moves just before the send returns. */
    for (int i = 0; i < 2000 && atomic_load(&enobufs_seen) == 0; i++)
        tf_sleep_ms(1);
    assert_int_equal(atomic_load(&enobufs_seen), 1);
    drain_closed(fd);
    close(fd);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t6_hard_limit),
        cmocka_unit_test(t6_streaming_slow_readers_bounded),
        cmocka_unit_test(t6_soft_limit),
        cmocka_unit_test(t6_send_reports_enobufs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
