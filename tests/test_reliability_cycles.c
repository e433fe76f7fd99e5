/*
 * T16 (scaled down for every ctest run): start/stop cycles, each with a
 * few hundred connections exchanging checked traffic and still attached
 * when the server stops. After every cycle the descriptor and thread
 * counts are back where they started and each connection's hooks ran
 * once. Leaks are the sanitizers' and valgrind's job: the 100-cycle
 * version runs under valgrind as its own ctest test
 * (tests/valgrind/start_stop_cycles.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdint.h>

#include "test_fixture.h"
#include "test_load.h"
#include "test_probe.h"

typedef struct counts {
    atomic_long starts, stops;
} counts_t;

static void on_start(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    atomic_fetch_add(&((counts_t *)udata)->starts, 1);
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    atomic_fetch_add(&((counts_t *)udata)->stops, 1);
}

static void t16_start_stop_cycles(void **state)
{
    (void)state;
    const int cycles = TF_PICK3(50, 20, 12);
    const uint32_t conns = TF_PICK3(200u, 200u, 150u);
    probe_raise_nofile();
    int fds0 = probe_fd_count();
    long threads0 = probe_thread_count();
    long rss_early = 0;
    uint64_t t0 = tf_now_ms();
    for (int i = 0; i < cycles; i++) {
        counts_t counts = {0};
        zinx_config_t cfg;
        tf_config_many_conns(&cfg);
        cfg.worker_pool_size = (uint32_t)(i % 3); /* 0: inline */
        cfg.drain_timeout_ms = 2000;
        zinx_server_t *s = tf_echo_server_new(&cfg);
        zinx_server_on_conn_start(s, on_start, &counts);
        zinx_server_on_conn_stop(s, on_stop, &counts);
        int port = tf_start_or_fail(s);

        load_t load;
        load_init(&load, port, conns, 20);
        load.threads = 2;
        load.timeout_ms = 60000;
        load_run(&load);
        load_assert_clean(&load, "T16");

        /* Stop with every client still attached. */
        zinx_server_free(s);
        load_close(&load);
        assert_int_equal(atomic_load(&counts.starts), (long)conns);
        assert_int_equal(atomic_load(&counts.stops), (long)conns);
        if (i == 0) {
            /* Sanitizer runtimes start a helper thread of their own on
               first use: the baseline is what the first cycle left. */
            assert_true(probe_fd_count() <= fds0 + 1);
            fds0 = probe_fd_count();
            /* Joined threads may still be listed while the kernel reaps
               them: wait for the count before the cycle, or one more
               (the sanitizer's thread). */
            long t = probe_thread_count_back(threads0, 500);
            if (t > threads0 + 1)
                t = probe_thread_count_back(threads0 + 1, 2000);
            threads0 = t;
        }
        assert_int_equal(probe_fd_count(), fds0);
        assert_int_equal(probe_thread_count_back(threads0, 2000), threads0);
        if (i == 2)
            rss_early = probe_rss_kib();
    }
    long rss_end = probe_rss_kib();
    tf_note("T16: %d cycles x %u connections in %llu ms; RSS after cycle 3 "
            "%ld KiB, at the end %ld KiB",
            cycles, conns, (unsigned long long)(tf_now_ms() - t0), rss_early,
            rss_end);
#if !TF_ASAN
    /* ASan's quarantine grows by design; elsewhere memory must plateau. */
    assert_true(rss_end - rss_early < 16 * 1024);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t16_start_stop_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
