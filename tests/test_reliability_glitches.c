/*
 * T19, glitch threshold: with MaxUnknownMsgs N, a connection may send N
 * frames no router takes (unknown IDs, zero-length or not) and is closed
 * on the next one, counted in stats.unknown_closed; a flood is cut off
 * the same way; the count is per connection; incoming heartbeats are not
 * unknown; other clients keep being served throughout. Off (0) by
 * default.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_bystander.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define N_UNKNOWN 10u

static zinx_server_t *start_server(uint32_t max_unknown, uint32_t workers,
                                   uint32_t heartbeat_ms, int *port)
{
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.max_unknown_msgs = max_unknown;
    cfg.worker_pool_size = workers;
    cfg.heartbeat_interval_ms = heartbeat_ms;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    *port = tf_start_or_fail(s);
    return s;
}

/* n frames with IDs no router has, alternately empty and not. */
static size_t unknown_frames(uint8_t *out, uint32_t n, uint32_t first_id)
{
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++)
        len += frame_encode(ZINX_FORMAT_TLV, first_id + i, "glitch",
                            i % 2 ? 6 : 0, out + len);
    return len;
}

static void assert_closed_soon(int fd)
{
    int rc = tc_wait_closed(fd, TF_PICK(1000, 5000), NULL);
    if (rc != 0 && rc != -ECONNRESET)
        fail_msg("connection not closed: %s", zinx_strerror(rc));
}

static void exact_threshold(uint32_t workers)
{
    int port;
    zinx_server_t *s = start_server(N_UNKNOWN, workers, 0, &port);
    bystander_t *bystander = bystander_start(port);

    /* N unknown frames are tolerated ... */
    uint8_t buf[N_UNKNOWN * (ZINX_HEADER_LEN + 6)];
    size_t len = unknown_frames(buf, N_UNKNOWN, 500);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tc_send_raw(fd, buf, len, 2000), 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "still here", 10, 2000),
                     0);
    assert_int_equal(tf_stat(s, TF_STAT(unknown_closed)), 0);
    /* ... the next one is not. */
    assert_int_equal(tc_send_frame(fd, ZINX_FORMAT_TLV, 777, NULL, 0, 2000), 0);
    assert_closed_soon(fd);
    close(fd);
    assert_int_equal(tf_wait_stat(s, TF_STAT(unknown_closed), 1, 2000), 1);
    assert_int_equal(tf_stat(s, TF_STAT(unrouted)), N_UNKNOWN + 1);

    /* A flood is cut off the same way. */
    const uint32_t flood = 10000;
    uint8_t *big = malloc(flood * ZINX_HEADER_LEN);
    assert_non_null(big);
    size_t blen = 0;
    for (uint32_t i = 0; i < flood; i++)
        blen +=
            frame_encode(ZINX_FORMAT_TLV, 1000u + i % 50u, NULL, 0, big + blen);
    fd = tc_connect(port);
    assert_true(fd >= 0);
    /* The server may close before taking it all. */
    tc_send_raw(fd, big, blen, 2000);
    assert_closed_soon(fd);
    close(fd);
    free(big);
    assert_int_equal(tf_wait_stat(s, TF_STAT(unknown_closed), 2, 2000), 2);
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 1, 2000), 1);
    tf_note("T19 (%u workers): %llu unrouted frames counted in all", workers,
            (unsigned long long)tf_stat(s, TF_STAT(unrouted)));
    bystander_finish(bystander, "T19", TF_PICK(1000, 3000));
    zinx_server_free(s);
}

static void t19_threshold_workers(void **state)
{
    (void)state;
    exact_threshold(2);
}

static void t19_threshold_inline(void **state)
{
    (void)state;
    exact_threshold(0);
}

/* The budget is per connection: many clients, each just under it. */
static void t19_per_connection(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = start_server(N_UNKNOWN, 2, 0, &port);
    enum { CLIENTS = 20 };
    int fds[CLIENTS];
    uint8_t buf[N_UNKNOWN * (ZINX_HEADER_LEN + 6)];
    size_t len = unknown_frames(buf, N_UNKNOWN, 600);
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = tc_connect(port);
        assert_true(fds[i] >= 0);
        assert_int_equal(tc_send_raw(fds[i], buf, len, 2000), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(tc_echo_call(fds[i], ZINX_FORMAT_TLV, "ok", 2, 2000),
                         0);
        close(fds[i]);
    }
    assert_int_equal(tf_stat(s, TF_STAT(unknown_closed)), 0);
    assert_int_equal(tf_stat(s, TF_STAT(unrouted)),
                     (uint64_t)CLIENTS * N_UNKNOWN);
    zinx_server_free(s);
}

/* With the heartbeat on, a peer's heartbeat frames are life signs, not
   unknown messages; with the threshold off, nothing is counted against
   a connection. */
static void t19_heartbeats_and_default_off(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = start_server(N_UNKNOWN, 2, 1000, &port);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    uint8_t beats[50 * (ZINX_HEADER_LEN + 9)];
    size_t len = 0;
    for (int i = 0; i < 50; i++)
        len += frame_encode(ZINX_FORMAT_TLV, TC_HEARTBEAT_ID, "heartbeat", 9,
                            beats + len);
    assert_int_equal(tc_send_raw(fd, beats, len, 2000), 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "ok", 2, 2000), 0);
    assert_int_equal(tf_stat(s, TF_STAT(unrouted)), 0);
    close(fd);
    zinx_server_free(s);

    zinx_config_t cfg;
    zinx_config_default(&cfg);
    assert_int_equal(cfg.max_unknown_msgs, 0);
    s = start_server(0, 2, 0, &port);
    fd = tc_connect(port);
    assert_true(fd >= 0);
    uint8_t *many = malloc(1000 * (ZINX_HEADER_LEN + 6));
    assert_non_null(many);
    len = unknown_frames(many, 1000, 2000);
    assert_int_equal(tc_send_raw(fd, many, len, 2000), 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "ok", 2, 2000), 0);
    assert_int_equal(tf_stat(s, TF_STAT(unrouted)), 1000);
    assert_int_equal(tf_stat(s, TF_STAT(unknown_closed)), 0);
    free(many);
    close(fd);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t19_threshold_workers),
        cmocka_unit_test(t19_threshold_inline),
        cmocka_unit_test(t19_per_connection),
        cmocka_unit_test(t19_heartbeats_and_default_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
