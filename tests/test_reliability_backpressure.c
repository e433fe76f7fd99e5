/*
 * T21 and T22, back-pressure with every default limit:
 *
 * T21: a peer that keeps reading is never cut, whatever its pipelining
 * depth and however large the replies (up to MaxPacketSize): requests
 * wait while output is behind instead of producing replies past the
 * output limits. Run with workers and with handlers on the I/O thread.
 *
 * T22: peers that send requests and never read are closed once their
 * output makes no progress for OutputSoftTimeoutMs, even though their
 * unsent output stays below OutputSoftLimit, and what each one pins is
 * bounded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"
#include "test_probe.h"

#define BIG_ID 2u
#define SMALL_REQ 9u

static uint8_t big_reply[4096];

/* Answers a 9-byte request with a MaxPacketSize (4096) reply. */
static void big_handle(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), BIG_ID, big_reply,
                       sizeof(big_reply));
}

static zinx_server_t *default_server(uint32_t workers, int *port)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg); /* every limit at its default */
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0;
    cfg.worker_pool_size = workers;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_router_t big = {.handle = big_handle};
    assert_int_equal(zinx_server_add_router(s, BIG_ID, &big), 0);
    *port = tf_start_or_fail(s);
    return s;
}

/* Pipelines n requests of `len` payload bytes with message ID id, as
   fast as the socket takes them, on its own thread. */
typedef struct writer {
    int fd;
    uint32_t id, len, n;
    int rc;
    pthread_t thread;
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    size_t frame = ZINX_HEADER_LEN + w->len;
    uint32_t batch = 64;
    uint8_t *buf = calloc(batch, frame);
    if (buf == NULL) {
        w->rc = -ENOMEM;
        return NULL;
    }
    for (uint32_t i = 0; i < batch; i++) {
        uint8_t *f = buf + (size_t)i * frame;
        memset(f + ZINX_HEADER_LEN, 'a' + (int)(i % 26), w->len);
        frame_encode(ZINX_FORMAT_TLV, w->id, f + ZINX_HEADER_LEN, w->len, f);
    }
    for (uint32_t sent = 0; sent < w->n && w->rc == 0;) {
        uint32_t k = w->n - sent < batch ? w->n - sent : batch;
        w->rc = tc_send_raw(w->fd, buf, (size_t)k * frame, 60000);
        sent += k;
    }
    free(buf);
    return NULL;
}

/* Reads n frames of reply_len payload bytes; returns how many came. */
static uint32_t read_replies(int fd, uint32_t n, uint32_t reply_len)
{
    uint8_t *buf = malloc(reply_len + 1);
    assert_non_null(buf);
    uint32_t got = 0;
    while (got < n) {
        uint32_t id, len;
        if (tc_recv_frame(fd, ZINX_FORMAT_TLV, &id, buf, reply_len, &len,
                          20000) != 0 ||
            len != reply_len)
            break;
        got++;
    }
    free(buf);
    return got;
}

static void reader_never_cut(uint32_t workers, uint32_t id, uint32_t req_len,
                             uint32_t reply_len, uint32_t n)
{
    int port;
    zinx_server_t *s = default_server(workers, &port);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    writer_t w = {.fd = fd, .id = id, .len = req_len, .n = n};
    assert_int_equal(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    uint32_t got = read_replies(fd, n, reply_len);
    pthread_join(w.thread, NULL);
    tf_note("T21 w%u: %u of %u replies of %u bytes", workers, got, n,
            reply_len);
    assert_int_equal(w.rc, 0);
    assert_int_equal(got, n);
    assert_int_equal(tf_stat(s, TF_STAT(slow_readers)), 0);
    close(fd);
    zinx_server_free(s);
}

/* 20,000 pipelined 4 KiB echoes (upstream Zinx's client cut after
   1.7k-9k of them). */
static void t21_pipelined_echo_w10(void **state)
{
    (void)state;
    reader_never_cut(10, TC_ECHO_ID, 4096, 4096, TF_PICK(20000, 5000));
}

static void t21_pipelined_echo_inline(void **state)
{
    (void)state;
    reader_never_cut(0, TC_ECHO_ID, 4096, 4096, TF_PICK(20000, 5000));
}

/* 5,000 pipelined 9-byte requests, each answered with 4 KiB: one read
   holds thousands of requests whose replies pass every limit. */
static void t21_small_requests_big_replies_w10(void **state)
{
    (void)state;
    reader_never_cut(10, BIG_ID, SMALL_REQ, 4096, 5000);
}

static void t21_small_requests_big_replies_inline(void **state)
{
    (void)state;
    reader_never_cut(0, BIG_ID, SMALL_REQ, 4096, 5000);
}

/* Sends 1 KiB echo requests until the socket takes no more for a while;
   never reads. */
static void flood_without_reading(int fd)
{
    uint8_t frame[ZINX_HEADER_LEN + 1024];
    memset(frame + ZINX_HEADER_LEN, 'q', 1024);
    frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, frame + ZINX_HEADER_LEN, 1024,
                 frame);
    int idle = 0;
    size_t off = 0; /* a short send leaves the rest for the next one */
    uint64_t end = tf_now_ms() + 3000; /* a server that never closes */
    while ((idle < 50 || off != 0) && tf_now_ms() < end) {
        ssize_t n = send(fd, frame + off, sizeof(frame) - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off = (off + (size_t)n) % sizeof(frame);
            idle = 0;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return;
        idle++;
        tf_sleep_ms(2);
    }
}

static void t22_non_readers_closed(void **state)
{
    (void)state;
    enum { N = 50, SOFT_TIMEOUT_MS = 1000 };
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0;
    cfg.output_soft_timeout_ms = SOFT_TIMEOUT_MS; /* the rest: defaults */
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);
    long rss0 = probe_rss_kib();

    int fds[N];
    tc_opts_t o = {.rcvbuf = 4096};
    for (int i = 0; i < N; i++) {
        fds[i] = tc_connect_opts(port, &o);
        assert_true(fds[i] >= 0);
    }
    for (int i = 0; i < N; i++)
        flood_without_reading(fds[i]);
    long rss_peak = probe_rss_kib();
    uint64_t t0 = tf_now_ms();
    uint64_t closed = tf_wait_stat_ge(s, TF_STAT(slow_readers), N,
                                      SOFT_TIMEOUT_MS + 4000 + TF_SLACK_MS);
    uint64_t waited = tf_now_ms() - t0;
    tf_note("T22: %llu of %d non-readers closed %llu ms after the flood; RSS "
            "+%ld KiB at the peak (%ld KiB each)",
            (unsigned long long)closed, N, (unsigned long long)waited,
            rss_peak - rss0, (rss_peak - rss0) / N);
    assert_int_equal(closed, N);
    /* OutputHighWater (256 KiB) + one frame's reply + one read (64 KiB)
       at most; the issue measured 1.1 MiB each before. On io_uring the
       stream also holds up to 64 KiB it accepted and the kernel has not
       sent yet (URING_SEND_MAX), bytes that epoll leaves in the kernel's
       socket buffer, outside RSS. Sanitizers change what RSS means, so
       only the plain build checks it. */
    const char *be = getenv("ZINX_IO_BACKEND");
    long limit_kib = 400 + (be != NULL && strcmp(be, "io_uring") == 0 ? 64 : 0);
    if (!TF_SANITIZED)
        assert_true((rss_peak - rss0) / N < limit_kib);
    for (int i = 0; i < N; i++) {
        size_t junk;
        int rc = tc_wait_closed(fds[i], 5000, &junk);
        assert_true(rc == 0 || rc == -ECONNRESET);
        close(fds[i]);
    }
    zinx_server_free(s);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(big_reply); i++)
        big_reply[i] = (uint8_t)(i * 7u);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t21_pipelined_echo_w10),
        cmocka_unit_test(t21_pipelined_echo_inline),
        cmocka_unit_test(t21_small_requests_big_replies_w10),
        cmocka_unit_test(t21_small_requests_big_replies_inline),
        cmocka_unit_test(t22_non_readers_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
