/*
 * Protections against broken and hostile peers: the frame deadline, the
 * idle timeout, the output hard limit, the unknown-message limit, the
 * close notice and heartbeats.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000

static tf_server_t *start_with(zinx_config_t *cfg, zinx_handler_fn fn,
                               void *udata)
{
    tf_server_t *ts = tf_server_new(cfg);
    zinx_router_t r = {.handle = fn, .udata = udata};

    assert_non_null(ts);
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

static void roundtrip_ok(int fd)
{
    uint8_t buf[16];
    uint32_t id, len;

    TF_ASSERT_RC(tc_roundtrip(fd, TLV, 1, "ping", 4, &id, buf, sizeof(buf),
                              &len, tf_ms(T_IO)),
                 0);
    assert_int_equal(id, 1);
    assert_int_equal(len, 4);
}

/* ---- frame deadline ---- */

/* A frame started and never finished, or trickled, is cut off. */
static void test_frame_timeout(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.frame_timeout_ms = 300;
    tf_server_t *ts = start_with(&cfg, tf_echo, NULL);

    /* Stalled after part of the body. */
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    roundtrip_ok(fd);
    int64_t t0 = tf_now_ms();
    TF_ASSERT_RC(tc_send_header(fd, TLV, 1, 100, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_send_raw(fd, "0123456789", 10, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(5000)), 0);
    int64_t took = tf_now_ms() - t0;
    assert_true(took >= 250);
    tc_close(fd);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(timeouts), 1, tf_ms(2000)),
                     1);

    /* Trickling one byte every 50 ms does not extend the deadline. */
    fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint8_t frame[8 + 40];
    frame_encode(TLV, 1, "abcdefghijabcdefghijabcdefghijabcdefghij", 40, frame);
    t0 = tf_now_ms();
    int rc = 0;
    for (size_t i = 0; i < sizeof(frame) && rc == 0; i++) {
        rc = tc_send_raw(fd, frame + i, 1, tf_ms(T_IO));
        if (rc == 0)
            rc = tc_expect_eof(fd, 50) == 0 ? 1 : 0;
    }
    assert_int_equal(rc, 1); /* EOF came before the frame was complete */
    took = tf_now_ms() - t0;
    assert_true(took >= 250);
    assert_true(took < tf_ms(2000));
    tc_close(fd);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(timeouts), 2, tf_ms(2000)),
                     2);

    /* Whole frames, however slowly they come, are fine. */
    fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    for (int i = 0; i < 4; i++) {
        tf_sleep_ms(150);
        roundtrip_ok(fd);
    }
    tc_close(fd);
    tf_server_free(ts);
}

/* ---- idle timeout ---- */

static void test_idle_timeout(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.idle_timeout_ms = 300;
    tf_server_t *ts = start_with(&cfg, tf_echo, NULL);

    int idle = tc_connect(ts->port);
    assert_true(idle >= 0);
    int busy = tc_connect(ts->port);
    assert_true(busy >= 0);
    int64_t t0 = tf_now_ms();
    /* The busy client talks every 100 ms for 800 ms and stays. */
    while (tf_now_ms() - t0 < 800) {
        roundtrip_ok(busy);
        tf_sleep_ms(100);
    }
    TF_ASSERT_RC(tc_expect_eof(idle, tf_ms(3000)), 0);
    roundtrip_ok(busy);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(timeouts), 1, tf_ms(2000)),
                     1);
    tc_close(idle);
    tc_close(busy);
    tf_server_free(ts);
}

/* ---- output hard limit ---- */

typedef struct flood_rc {
    atomic_int first_error;
    atomic_int sent_ok;
} flood_rc_t;

/* Sends 16 MiB in 16 KiB frames to a peer that never reads. */
static void flood(zinx_request_t *req, void *udata)
{
    flood_rc_t *f = udata;
    static const uint8_t chunk[16384];

    for (int i = 0; i < 1024; i++) {
        int rc =
            zinx_conn_send_msg(zinx_request_conn(req), 2, chunk, sizeof(chunk));
        if (rc != 0) {
            atomic_store(&f->first_error, rc);
            return;
        }
        atomic_fetch_add(&f->sent_ok, 1);
    }
}

static void test_output_hard_limit(void **state)
{
    (void)state;
    flood_rc_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    atomic_init(&f->first_error, 1);
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.max_packet_size = 65536;
    cfg.output_hard_limit = 256 * 1024;
    cfg.output_soft_limit = 0;
    /* The cap must hold OutputHighWater plus one largest frame
       (zinx_config_validate()); the default high water would not fit. */
    cfg.output_high_water = 128 * 1024;
    tf_server_t *ts = start_with(&cfg, flood, f);

    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "", 0, tf_ms(T_IO)), 0);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), 1, tf_ms(T_IO)), 1);
    uint64_t deadline = tf_now_ms() + (uint64_t)tf_ms(T_IO);
    while (atomic_load(&f->first_error) == 1 && tf_now_ms() < deadline)
        tf_sleep_ms(1);
    TF_ASSERT_RC(atomic_load(&f->first_error), ZINX_ENOBUFS);
    assert_true(atomic_load(&f->sent_ok) < 1024);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(slow_readers)), 1);
    tc_close_rst(fd);
    tf_server_free(ts);
    free(f);
}

/* ---- unknown messages ---- */

static void test_max_unknown_msgs(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.max_unknown_msgs = 3;
    tf_server_t *ts = start_with(&cfg, tf_echo, NULL);

    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    for (int i = 0; i < 3; i++)
        TF_ASSERT_RC(tc_send_frame(fd, TLV, 500, "?", 1, tf_ms(T_IO)), 0);
    roundtrip_ok(fd); /* three are tolerated */
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 501, "?", 1, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(T_IO)), 0);
    tc_close(fd);
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(unknown_closed), 1, tf_ms(2000)), 1);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(unrouted)), 4);

    /* The count is per connection. */
    int a = tc_connect(ts->port), b = tc_connect(ts->port);
    assert_true(a >= 0 && b >= 0);
    for (int i = 0; i < 3; i++) {
        TF_ASSERT_RC(tc_send_frame(a, TLV, 500, "", 0, tf_ms(T_IO)), 0);
        TF_ASSERT_RC(tc_send_frame(b, TLV, 500, "", 0, tf_ms(T_IO)), 0);
    }
    roundtrip_ok(a);
    roundtrip_ok(b);
    tc_close(a);
    tc_close(b);
    tf_server_free(ts);
}

/* ---- close notice ---- */

/*
 * With CloseNoticeMsgID, an oversize frame is answered with a notice
 * frame, which arrives before EOF even when the client keeps sending.
 */
static void test_close_notice(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.close_notice_msg_id = 77;
    tf_server_t *ts = start_with(&cfg, tf_echo, NULL);
    uint8_t *junk = calloc(1, 1 << 16);
    assert_non_null(junk);

    for (int i = 0; i < 5; i++) {
        int fd = tc_connect(ts->port);
        assert_true(fd >= 0);
        roundtrip_ok(fd);
        TF_ASSERT_RC(tc_send_header(fd, TLV, 1, 0xFFFFFFFFu, tf_ms(T_IO)), 0);
        tc_send_raw(fd, junk, 1 << 16, tf_ms(1000)); /* may be cut off */
        uint8_t buf[256];
        uint32_t id, len;
        TF_ASSERT_RC(
            tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)),
            0);
        assert_int_equal(id, 77);
        assert_true(len > 0);
        TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(T_IO)), 0);
        tc_close(fd);
    }
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(oversize), 5, tf_ms(2000)),
                     5);
    free(junk);
    tf_server_free(ts);
}

/* ---- heartbeat ---- */

static void test_heartbeat_sent(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.heartbeat_interval_ms = 100;
    cfg.heartbeat_msg_id = 4321;
    tf_server_t *ts = start_with(&cfg, tf_echo, NULL);

    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    int beats = 0;
    uint64_t t0 = tf_now_ms();
    while (beats < 3 && tf_now_ms() - t0 < (uint64_t)tf_ms(3000)) {
        uint8_t buf[256];
        uint32_t id, len;
        TF_ASSERT_RC(
            tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)),
            0);
        assert_int_equal(id, 4321);
        assert_true(len >= 9 && memcmp(buf, "heartbeat", 9) == 0);
        beats++;
    }
    assert_int_equal(beats, 3);
    /* Peer heartbeats need no router and are not "unrouted". */
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 4321, "hb", 2, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_send_frame(fd, TLV, 1, "x", 1, tf_ms(T_IO)), 0);
    for (;;) {
        uint8_t buf[256];
        uint32_t id, len;
        TF_ASSERT_RC(
            tc_recv_frame(fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)),
            0);
        if (id == 1)
            break;
        assert_int_equal(id, 4321);
    }
    assert_int_equal(tf_stat(ts->srv, TF_STAT(unrouted)), 0);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(dead_peers)), 0);
    tc_close(fd);
    tf_server_free(ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_timeout),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_output_hard_limit),
        cmocka_unit_test(test_max_unknown_msgs),
        cmocka_unit_test(test_close_notice),
        cmocka_unit_test(test_heartbeat_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
