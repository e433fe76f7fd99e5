/*
 * T3, hostile lengths: headers declaring MaxPacketSize+1, 0x7FFFFFFF,
 * 0xFFFFFFFF and lengths where len+8 wraps 32 bits, whole or cut at every
 * byte. The connection must close right after the header completes,
 * stats.oversize must count it, memory must not follow the declared
 * length, and a well-behaved client must keep being answered meanwhile.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_bystander.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_probe.h"

#define T3_MAX_PACKET 4096u

static const uint32_t hostile_lengths[] = {
    T3_MAX_PACKET + 1u, 0x7fffffffu, 0x80000000u,
    0xffffffffu,        0xfffffff8u, /* len + 8 == 0 (mod 2^32) */
    0xfffffff9u,        0xfffffffeu,
};
#define N_LENGTHS (sizeof(hostile_lengths) / sizeof(hostile_lengths[0]))

/* Closing within this of the header's last byte passes; the issue asks
   100 ms, and sanitizer builds get more. The p90 must meet it, the worst
   case only a scheduling-noise bound. */
#define CLOSE_BOUND_MS TF_PICK(100, 500)
#define CLOSE_WORST_MS TF_PICK(1000, 3000)

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static zinx_server_t *start_server(zinx_packet_format_t fmt, uint32_t maxp,
                                   int *port)
{
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    /* The output limits must hold OutputHighWater plus one largest frame
       (zinx_config_validate()). These tests are about input, so a larger
       MaxPacketSize moves the limits up by as much, keeping the margins
       of the defaults. */
    if (maxp > cfg.max_packet_size) {
        cfg.output_soft_limit += maxp - cfg.max_packet_size;
        cfg.output_hard_limit += maxp - cfg.max_packet_size;
    }
    cfg.max_packet_size = maxp;
    cfg.packet_format = fmt;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    *port = tf_start_or_fail(s);
    return s;
}

/*
 * One hostile attempt: the header in two pieces cut after `cut` bytes
 * (0: in one piece), then the time until the server closes. Returns the
 * milliseconds from the header's last byte to EOF or reset.
 */
static long attempt(int port, zinx_packet_format_t fmt, uint32_t len, int cut)
{
    uint8_t hdr[ZINX_HEADER_LEN];
    zinx_pack_header(fmt, 1, len, hdr);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    if (cut > 0) {
        assert_int_equal(tc_send_raw(fd, hdr, (size_t)cut, 2000), 0);
        tf_sleep_ms(5);
        /* An incomplete header is not yet a reason to close. */
        assert_false(tc_peer_closed_now(fd));
    }
    assert_int_equal(
        tc_send_raw(fd, hdr + cut, ZINX_HEADER_LEN - (size_t)cut, 2000), 0);
    uint64_t t0 = tf_now_us();
    int rc = tc_wait_closed(fd, 5000, NULL);
    long ms = (long)((tf_now_us() - t0) / 1000u);
    close(fd);
    if (rc != 0 && rc != -ECONNRESET)
        fail_msg("len 0x%x cut %d: not closed (%s)", len, cut,
                 zinx_strerror(rc));
    return ms;
}

static void oversize_headers_closed_fast(zinx_packet_format_t fmt)
{
    int port;
    zinx_server_t *s = start_server(fmt, T3_MAX_PACKET, &port);
    bystander_t *bystander = bystander_start_fmt(port, fmt);

    long ms[N_LENGTHS * ZINX_HEADER_LEN];
    size_t n = 0;
    for (size_t i = 0; i < N_LENGTHS; i++) {
        for (int cut = 0; cut < (int)ZINX_HEADER_LEN; cut++) {
            ms[n++] = attempt(port, fmt, hostile_lengths[i], cut);
            assert_int_equal(tf_wait_stat(s, TF_STAT(oversize), n, 2000), n);
        }
    }
    qsort(ms, n, sizeof(ms[0]), cmp_long);
    long p90 = ms[n * 9 / 10], worst = ms[n - 1];
    tf_note("T3 %s: %zu attempts, close after header p50 %ld p90 %ld max %ld "
            "ms",
            zinx_packet_format_name(fmt), n, ms[n / 2], p90, worst);
    assert_true(p90 <= CLOSE_BOUND_MS);
    assert_true(worst <= CLOSE_WORST_MS);

    bystander_finish(bystander, "T3", TF_PICK(1000, 3000));
    /* Only the bystander's connection may remain. */
    assert_true(tf_stat(s, TF_STAT(connections)) <= 1);
    zinx_server_free(s);
}

static void t3_oversize_tlv(void **state)
{
    (void)state;
    oversize_headers_closed_fast(ZINX_FORMAT_TLV);
}

static void t3_oversize_ltv_le(void **state)
{
    (void)state;
    oversize_headers_closed_fast(ZINX_FORMAT_LTV_LE);
}

/* A header cut short and then abandoned (FIN or RST) is no oversize
   frame; the server just lets the connection go. */
static void t3_cut_header_then_close(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = start_server(ZINX_FORMAT_TLV, T3_MAX_PACKET, &port);
    uint8_t hdr[ZINX_HEADER_LEN];
    zinx_pack_header(ZINX_FORMAT_TLV, 1, 0xffffffffu, hdr);
    uint64_t attempts = 0;
    for (int reset = 0; reset < 2; reset++) {
        for (int cut = 1; cut < (int)ZINX_HEADER_LEN; cut++) {
            int fd = tc_connect(port);
            assert_true(fd >= 0);
            assert_int_equal(tc_send_raw(fd, hdr, (size_t)cut, 2000), 0);
            attempts++;
            assert_int_equal(tf_wait_stat(s, TF_STAT(accepted), attempts, 2000),
                             attempts);
            tf_sleep_ms(2);
            if (reset)
                tc_close_rst(fd);
            else
                close(fd);
        }
    }
    assert_int_equal(tf_wait_stat(s, TF_STAT(closed), attempts, 2000),
                     attempts);
    assert_int_equal(tf_stat(s, TF_STAT(connections)), 0);
    assert_int_equal(tf_stat(s, TF_STAT(oversize)), 0);
    /* The server still serves. */
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "ok", 2, 2000), 0);
    close(fd);
    zinx_server_free(s);
}

/* Many attempts in a row: the bound is < 64 KiB of RSS each. */
static void t3_rss_per_attempt(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = start_server(ZINX_FORMAT_TLV, T3_MAX_PACKET, &port);
    unsigned warmup = 20, attempts = TF_PICK(400u, 100u);
    for (unsigned i = 0; i < warmup; i++)
        attempt(port, ZINX_FORMAT_TLV, hostile_lengths[i % N_LENGTHS], 0);
    long before = probe_rss_kib();
    for (unsigned i = 0; i < attempts; i++)
        attempt(port, ZINX_FORMAT_TLV, hostile_lengths[i % N_LENGTHS],
                (int)(i % ZINX_HEADER_LEN));
    long after = probe_rss_kib();
    tf_note("T3: RSS %ld -> %ld KiB over %u attempts (%.1f KiB each)", before,
            after, attempts, (double)(after - before) / attempts);
    assert_true(after - before < 64L * (long)attempts);
    assert_int_equal(
        tf_wait_stat(s, TF_STAT(oversize), warmup + attempts, 2000),
        warmup + attempts);
    zinx_server_free(s);
}

/*
 * With a large MaxPacketSize, a header declaring almost all of it is
 * legal and the body may take its time. Many such connections held open
 * must cost what they sent, not what they declared: 64 MiB declared on
 * each would be gigabytes of address space if allocated up front.
 */
static void t3_declared_length_not_allocated(void **state)
{
    (void)state;
    const uint32_t maxp = 64u << 20;
    const int conns = TF_PICK(100, 50);
    const size_t body = 1000;
    int port;
    zinx_server_t *s = start_server(ZINX_FORMAT_TLV, maxp, &port);
    probe_raise_nofile();
    int *fds = calloc((size_t)conns, sizeof(*fds));
    uint8_t *frame = calloc(1, ZINX_HEADER_LEN + body);
    assert_non_null(fds);
    assert_non_null(frame);
    zinx_pack_header(ZINX_FORMAT_TLV, TC_ECHO_ID, maxp - 1, frame);
    memset(frame + ZINX_HEADER_LEN, 0x5a, body);

    long rss0 = probe_rss_kib(), vm0 = probe_vmsize_kib();
    for (int i = 0; i < conns; i++) {
        fds[i] = tc_connect(port);
        assert_true(fds[i] >= 0);
        assert_int_equal(
            tc_send_raw(fds[i], frame, ZINX_HEADER_LEN + body, 2000), 0);
    }
    assert_int_equal(
        tf_wait_stat(s, TF_STAT(connections), (uint64_t)conns, 5000),
        (uint64_t)conns);
    tf_sleep_ms(200); /* let the loops read what was sent */
    long rss1 = probe_rss_kib(), vm1 = probe_vmsize_kib();
    tf_note("T3: %d connections declaring %u bytes: RSS +%ld KiB, VmSize "
            "+%ld KiB",
            conns, maxp - 1, rss1 - rss0, vm1 - vm0);
    assert_true(rss1 - rss0 < 256L * conns);
    assert_true(vm1 - vm0 < 1024L * conns);
    for (int i = 0; i < conns; i++)
        assert_false(tc_peer_closed_now(fds[i]));
    for (int i = 0; i < conns; i++)
        close(fds[i]);
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, 5000), 0);
    assert_int_equal(tf_stat(s, TF_STAT(oversize)), 0);

    /* A really large frame still goes through that path intact. */
    const uint32_t big = 3u << 20;
    uint8_t *data = malloc(big), *back = malloc(big);
    assert_non_null(data);
    assert_non_null(back);
    for (uint32_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 7u + (i >> 12));
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(
        tc_send_frame(fd, ZINX_FORMAT_TLV, TC_ECHO_ID, data, big, 10000), 0);
    uint32_t id, len;
    assert_int_equal(
        tc_recv_frame(fd, ZINX_FORMAT_TLV, &id, back, big, &len, 10000), 0);
    assert_int_equal(id, TC_ECHO_ID);
    assert_int_equal(len, big);
    assert_memory_equal(data, back, big);
    close(fd);
    free(data);
    free(back);
    free(frame);
    free(fds);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t3_oversize_tlv),
        cmocka_unit_test(t3_oversize_ltv_le),
        cmocka_unit_test(t3_cut_header_then_close),
        cmocka_unit_test(t3_rss_per_attempt),
        cmocka_unit_test(t3_declared_length_not_allocated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
