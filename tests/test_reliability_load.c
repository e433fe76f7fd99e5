/*
 * T2, load and ordering: as many concurrent loopback connections as the
 * descriptor limit allows (each costs two descriptors in this process:
 * the client end and the server end), 100 checksummed echo messages on
 * each, driven by three client threads with their own epoll loops.
 * Nothing may be lost, duplicated, reordered or corrupted; the run must
 * end within two minutes and leave no descriptor behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "test_fixture.h"
#include "test_frame.h"
#include "test_load.h"
#include "test_probe.h"

/* The issue caps T2 at 10,000 connections (and two minutes). */
#define T2_MAX_CONNS 10000u
#define T2_MSGS 100u
/* Descriptors kept free for the server's own and the test's. */
#define T2_FD_RESERVE 256

static uint32_t connections_that_fit(void)
{
    long limit = probe_raise_nofile();
    int used = probe_fd_count();
    long fit = (limit - used - T2_FD_RESERVE) / 2;
    uint32_t n = fit > (long)T2_MAX_CONNS ? T2_MAX_CONNS
                 : fit > 0                ? (uint32_t)fit
                                          : 0;
    uint32_t cap = TF_PICK3(T2_MAX_CONNS, 1000u, 1000u);
    return n < cap ? n : cap;
}

static void run_load(uint32_t workers, uint32_t io_threads)
{
    uint32_t conns = connections_that_fit();
    assert_true(conns >= 100);
    int fds_before = probe_fd_count();

    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.worker_pool_size = workers;
    cfg.io_threads = io_threads;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);

    load_t load;
    load_init(&load, port, conns, T2_MSGS);
    load.timeout_ms = 120000;
    long cpu0 = probe_threads_cpu_ms("zinx-");
    uint64_t ms = load_run(&load);
    long cpu = probe_threads_cpu_ms("zinx-") - cpu0;
    tf_note("T2 (%u workers): %u connections x %u messages in %llu ms, "
            "server threads' CPU %ld ms",
            workers, conns, T2_MSGS, (unsigned long long)ms, cpu);
    /* Also proves that the CPU probe other tests rely on sees the
       server's threads. */
    assert_true(cpu > 0);
    load_assert_clean(&load, "T2");
    assert_true(ms < 120000);

    /* All of them were open at once, and the server saw every frame. */
    assert_int_equal(tf_stat(s, TF_STAT(connections)), conns);
    assert_int_equal(tf_stat(s, TF_STAT(msgs_in)), (uint64_t)conns * T2_MSGS);
    assert_int_equal(tf_stat(s, TF_STAT(msgs_out)), (uint64_t)conns * T2_MSGS);

    load_close(&load);
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, 10000), 0);
    assert_int_equal(tf_stat(s, TF_STAT(closed)), conns);
    zinx_server_free(s);
    assert_int_equal(probe_fd_count(), fds_before);
}

static void t2_worker_pool(void **state)
{
    (void)state;
    run_load(2, 2);
}

/* Handlers inline on the I/O threads: the other dispatch path. Fewer
   connections: the point is the path, the scale was shown above. */
static void t2_inline(void **state)
{
    (void)state;
    probe_raise_nofile();
    int fds_before = probe_fd_count();
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.worker_pool_size = 0;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);
    load_t load;
    load_init(&load, port, TF_PICK(2000u, 300u), T2_MSGS);
    uint64_t ms = load_run(&load);
    tf_note("T2 inline: %u connections in %llu ms", load.conns,
            (unsigned long long)ms);
    load_assert_clean(&load, "T2 inline");
    load_close(&load);
    zinx_server_free(s);
    assert_int_equal(probe_fd_count(), fds_before);
}

/* The checker itself must catch what it claims to catch. */
static void payload_checker_detects_damage(void **state)
{
    (void)state;
    assert_int_equal(frame_crc32("123456789", 9), 0xcbf43926u);
    uint8_t p[FRAME_PAYLOAD_MAX];
    uint32_t len = frame_payload_make(p, 7, 42), st, seq;
    assert_int_equal(frame_payload_check(p, len, &st, &seq), 0);
    assert_int_equal(st, 7);
    assert_int_equal(seq, 42);
    for (uint32_t i = 0; i < len; i++) {
        p[i] ^= 0x10;
        assert_int_not_equal(frame_payload_check(p, len, &st, &seq), 0);
        p[i] ^= 0x10;
    }
    assert_int_not_equal(frame_payload_check(p, len - 1, &st, &seq), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(payload_checker_detects_damage),
        cmocka_unit_test(t2_worker_pool),
        cmocka_unit_test(t2_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
