/*
 * T8, MaxConn: with the limit at N, N+50 connections give exactly N
 * served and 50 closed at once (the documented policy: accept, then close;
 * the client sees EOF), counted in stats.rejected_max_conn. While
 * saturated, and even while refused clients keep knocking, the server's
 * threads stay nearly idle; closing one connection lets a new one in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_probe.h"

#define EXTRA 50

/* Server threads are named zinx-io-N and zinx-wk-N. */
static long server_cpu_ms(void)
{
    return probe_threads_cpu_ms("zinx-");
}

typedef struct knocker {
    int port;
    atomic_bool stop;
    atomic_long refused, served;
    pthread_t thread;
} knocker_t;

/* A client that keeps trying to get in, about 100 times a second. */
static void *knock_main(void *arg)
{
    knocker_t *k = arg;
    while (!atomic_load(&k->stop)) {
        int fd = tc_connect(k->port);
        if (fd >= 0) {
            int rc = tc_wait_closed(fd, 2000, NULL);
            if (rc == 0 || rc == -ECONNRESET)
                atomic_fetch_add(&k->refused, 1);
            else
                atomic_fetch_add(&k->served, 1);
            close(fd);
        }
        tf_sleep_ms(10);
    }
    return NULL;
}

static void t8_max_conn(void **state)
{
    (void)state;
    const int n = TF_PICK(50, 20);
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.max_conn = n;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);

    /* All at once. */
    int total = n + EXTRA;
    int *fds = calloc((size_t)total, sizeof(*fds));
    assert_non_null(fds);
    for (int i = 0; i < total; i++) {
        fds[i] = tc_connect(port);
        assert_true(fds[i] >= 0);
    }
    assert_int_equal(tf_wait_stat(s, TF_STAT(rejected_max_conn), EXTRA, 5000),
                     EXTRA);
    assert_int_equal(tf_stat(s, TF_STAT(accepted)), (uint64_t)n);
    int served = 0, refused = 0;
    for (int i = 0; i < total; i++) {
        if (tc_echo_call(fds[i], ZINX_FORMAT_TLV, "in", 2, 2000) == 0) {
            served++;
        } else {
            refused++;
            close(fds[i]);
            fds[i] = -1;
        }
    }
    tf_note("T8: %d of %d served, %d refused", served, total, refused);
    assert_int_equal(served, n);
    assert_int_equal(refused, EXTRA);

    /* One more at a time: each refused promptly. */
    long worst = 0;
    for (int i = 0; i < 10; i++) {
        uint64_t t0 = tf_now_ms();
        int fd = tc_connect(port);
        assert_true(fd >= 0);
        int rc = tc_wait_closed(fd, 5000, NULL);
        assert_true(rc == 0 || rc == -ECONNRESET);
        long ms = (long)(tf_now_ms() - t0);
        worst = ms > worst ? ms : worst;
        close(fd);
    }
    tf_note("T8: refused connections see EOF within %ld ms", worst);
    assert_true(worst <= TF_PICK(500, 2000));

    /* Saturated and idle, then saturated with a refused client knocking:
       the server's threads stay far from busy. */
    long c0 = server_cpu_ms();
    tf_sleep_ms(2000);
    long idle_cpu = server_cpu_ms() - c0;
    knocker_t *k = calloc(1, sizeof(*k));
    assert_non_null(k);
    k->port = port;
    assert_int_equal(pthread_create(&k->thread, NULL, knock_main, k), 0);
    c0 = server_cpu_ms();
    tf_sleep_ms(2000);
    long knock_cpu = server_cpu_ms() - c0;
    atomic_store(&k->stop, true);
    pthread_join(k->thread, NULL);
    tf_note("T8: server CPU over 2 s saturated: %ld ms idle, %ld ms with %ld "
            "refused knocks",
            idle_cpu, knock_cpu, atomic_load(&k->refused));
    assert_true(idle_cpu <= 100);
    assert_true(knock_cpu <= TF_PICK(200, 600));
    assert_true(atomic_load(&k->refused) >= 20);
    assert_int_equal(atomic_load(&k->served), 0);
    free(k);

    /* Everyone inside is still served. */
    for (int i = 0; i < total; i++) {
        if (fds[i] >= 0)
            assert_int_equal(
                tc_echo_call(fds[i], ZINX_FORMAT_TLV, "still", 5, 2000), 0);
    }

    /* Closing one lets exactly one new one in. */
    int victim = -1;
    for (int i = 0; i < total && victim < 0; i++)
        victim = fds[i] >= 0 ? i : -1;
    close(fds[victim]);
    fds[victim] = -1;
    assert_int_equal(
        tf_wait_stat(s, TF_STAT(connections), (uint64_t)n - 1, 2000),
        (uint64_t)n - 1);
    fds[victim] = tc_connect(port);
    assert_true(fds[victim] >= 0);
    assert_int_equal(tc_echo_call(fds[victim], ZINX_FORMAT_TLV, "new", 3, 2000),
                     0);
    int extra = tc_connect(port);
    assert_true(extra >= 0);
    int rc = tc_wait_closed(extra, 2000, NULL);
    assert_true(rc == 0 || rc == -ECONNRESET);
    close(extra);

    for (int i = 0; i < total; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    free(fds);
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, 2000), 0);
    zinx_server_free(s);
}

/* zinx_server_adopt_fd() obeys the same limit. */
static void t8_adopt_fd_at_max_conn(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.max_conn = 2;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    tf_start_or_fail(s);
    int peers[3];
    for (int i = 0; i < 3; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                         0);
        peers[i] = sv[0];
        int rc = zinx_server_adopt_fd(s, sv[1]);
        assert_int_equal(rc, i < 2 ? 0 : ZINX_EBUSY);
        if (rc == 0)
            assert_int_equal(
                tf_wait_stat(s, TF_STAT(connections), (uint64_t)i + 1, 2000),
                (uint64_t)i + 1);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            tc_echo_call(peers[i], ZINX_FORMAT_TLV, "pair", 4, 2000), 0);
    /* The refused descriptor was closed by the library. */
    assert_int_equal(tc_wait_closed(peers[2], 2000, NULL), 0);
    for (int i = 0; i < 3; i++)
        close(peers[i]);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t8_max_conn),
        cmocka_unit_test(t8_adopt_fd_at_max_conn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
