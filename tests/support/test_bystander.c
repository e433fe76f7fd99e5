/*
 * A well-behaved client in the background (see test_bystander.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "test_bystander.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

struct bystander {
    int port;
    zinx_packet_format_t format;
    int interval_ms;
    int timeout_ms;
    pthread_t thread;
    atomic_bool stop;
    atomic_long calls;
    atomic_long failures;
    atomic_long max_us;
    atomic_int last_error;
};

static void *bystander_main(void *arg)
{
    bystander_t *b = arg;
    int fd = -1;
    uint32_t seq = 0;

    while (!atomic_load(&b->stop)) {
        if (fd < 0)
            fd = tc_connect(b->port);
        int rc = fd < 0 ? fd : 0;
        uint64_t t0 = tf_now_us();
        if (rc == 0) {
            uint8_t payload[FRAME_PAYLOAD_MAX];
            uint32_t len = frame_payload_make(payload, 0xfeedu, seq++);
            rc = tc_echo_call(fd, b->format, payload, len, b->timeout_ms);
        }
        long us = (long)(tf_now_us() - t0);
        if (rc == 0) {
            atomic_fetch_add(&b->calls, 1);
            long cur = atomic_load(&b->max_us);
            while (us > cur &&
                   !atomic_compare_exchange_weak(&b->max_us, &cur, us)) {
            }
        } else {
            atomic_fetch_add(&b->failures, 1);
            atomic_store(&b->last_error, rc);
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
        tf_sleep_ms(b->interval_ms);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

bystander_t *bystander_start_fmt(int port, zinx_packet_format_t fmt)
{
    bystander_t *b = calloc(1, sizeof(*b));

    assert_non_null(b);
    b->port = port;
    b->format = fmt;
    b->interval_ms = 2;
    b->timeout_ms = 5000;
    assert_int_equal(pthread_create(&b->thread, NULL, bystander_main, b), 0);
    return b;
}

bystander_t *bystander_start(int port)
{
    return bystander_start_fmt(port, ZINX_FORMAT_TLV);
}

void bystander_finish(bystander_t *b, const char *what, long max_latency_ms)
{
    /* A couple more calls after the misbehaviour: still served. */
    long target = atomic_load(&b->calls) + 2;
    uint64_t end = tf_now_ms() + 5000;

    while (atomic_load(&b->calls) < target && atomic_load(&b->failures) == 0 &&
           tf_now_ms() < end)
        tf_sleep_ms(1);
    atomic_store(&b->stop, true);
    pthread_join(b->thread, NULL);
    long calls = atomic_load(&b->calls);
    long fails = atomic_load(&b->failures);
    long max_ms = atomic_load(&b->max_us) / 1000;
    int last = atomic_load(&b->last_error);
    free(b);
    tf_note("%s: well-behaved client: %ld calls, %ld failures, max %ld ms",
            what, calls, fails, max_ms);
    if (fails != 0)
        fail_msg("%s: well-behaved client had %ld failures (last %s)", what,
                 fails, zinx_strerror(last));
    if (calls < 2)
        fail_msg("%s: well-behaved client made only %ld calls", what, calls);
    if (max_ms > max_latency_ms)
        fail_msg("%s: well-behaved client waited %ld ms (bound %ld)", what,
                 max_ms, max_latency_ms);
}
