/*
 * T23, out of memory: allocations that a peer can drive (batches of
 * frames for the workers, new connections) fail through the library's
 * test-only fault hook while hundreds of connections send requests,
 * never read, and are then reset. The server must close the connections
 * that could not be served (counted in stats.out_of_memory, logged at
 * most once a second), run OnConnStop exactly once for each, give back
 * every descriptor, serve a new client as soon as memory is back, and
 * stop on request: closing and stopping allocate nothing. (Before, a
 * failed allocation in the close path spun forever waiting for memory
 * that only its own thread could free.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"
#include "test_probe.h"

typedef struct faults {
    atomic_bool failing;
    atomic_long injected;
    atomic_long stops;
    atomic_long oom_lines;
} faults_t;

static bool fail_while_told(zinx__alloc_site_t site, void *udata)
{
    faults_t *f = udata;
    (void)site;
    if (!atomic_load(&f->failing))
        return false;
    atomic_fetch_add(&f->injected, 1);
    return true;
}

static void count_stop(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    faults_t *f = udata;
    atomic_fetch_add(&f->stops, 1);
}

static void count_oom_lines(zinx_log_level_t level, const char *message,
                            void *udata)
{
    faults_t *f = udata;
    if (strstr(message, "out of memory") != NULL)
        atomic_fetch_add(&f->oom_lines, 1);
    tf_log_sink(level, message, NULL);
}

static void t23_allocation_failures(void **state)
{
    (void)state;
    static faults_t f;
    atomic_store(&f.failing, false);
    int n = TF_PICK(300, 100);
    int fd0 = probe_fd_count();
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_server_set_log_sink(s, count_oom_lines, &f), 0);
    assert_int_equal(zinx_server_on_conn_stop(s, count_stop, &f), 0);
    zinx__server_set_fault(s, fail_while_told, &f);
    int port = tf_start_or_fail(s);

    int *fds = calloc((size_t)n, sizeof(*fds));
    assert_non_null(fds);
    for (int i = 0; i < n; i++) {
        fds[i] = tc_connect(port);
        assert_true(fds[i] >= 0);
    }
    /* Every connection is served before the shortage starts. */
    uint64_t accepted =
        tf_wait_stat_ge(s, TF_STAT(accepted), (uint64_t)n, 10000);
    assert_int_equal(accepted, (uint64_t)n);

    atomic_store(&f.failing, true);
    uint8_t frame[ZINX_HEADER_LEN + 512];
    memset(frame + ZINX_HEADER_LEN, 'm', 512);
    frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, frame + ZINX_HEADER_LEN, 512,
                 frame);
    for (int i = 0; i < n; i++)
        (void)send(fds[i], frame, sizeof(frame), MSG_NOSIGNAL | MSG_DONTWAIT);
    /* A few connect during the shortage: refused, not leaked. */
    int late[10];
    for (int i = 0; i < 10; i++)
        late[i] = tc_connect(port);
    uint64_t oom =
        tf_wait_stat_ge(s, TF_STAT(out_of_memory), (uint64_t)n, 10000);
    for (int i = 0; i < n; i++)
        tc_close_rst(fds[i]);
    for (int i = 0; i < 10; i++) {
        if (late[i] >= 0)
            tc_close_rst(late[i]);
    }
    free(fds);

    /* Every connection ends, each OnConnStop once, descriptors back. */
    uint64_t closed = tf_wait_stat(s, TF_STAT(connections), 0, 10000);
    assert_int_equal(closed, 0);
    long stops = atomic_load(&f.stops);
    uint64_t accepted_all = tf_stat(s, TF_STAT(accepted));
    tf_note("T23: %ld allocations failed, out_of_memory %llu, %ld OnConnStop "
            "for %llu accepted, %ld 'out of memory' log lines",
            atomic_load(&f.injected), (unsigned long long)oom, stops,
            (unsigned long long)accepted_all, atomic_load(&f.oom_lines));
    assert_true(oom >= (uint64_t)n);
    assert_int_equal((uint64_t)stops, accepted_all);
    assert_true(atomic_load(&f.oom_lines) <= 6); /* rate-limited */

    /* Memory is back: a new client is served. */
    atomic_store(&f.failing, false);
    int fresh = tc_connect(port);
    assert_true(fresh >= 0);
    assert_int_equal(tc_echo_call(fresh, ZINX_FORMAT_TLV, "back", 4, 5000), 0);
    close(fresh);

    /* And the server stops on request, in time, and gives back every
       descriptor. */
    uint64_t t0 = tf_now_ms();
    assert_int_equal(zinx_server_stop(s), 0);
    assert_int_equal(zinx_server_wait(s), 0);
    assert_true(tf_now_ms() - t0 < 5000);
    zinx_server_free(s);
    assert_int_equal(probe_fd_count(), fd0);
}

/* The shortage hits during a graceful stop: it still completes. */
static void t23_stop_while_out_of_memory(void **state)
{
    (void)state;
    static faults_t f;
    atomic_store(&f.failing, false);
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_server_on_conn_stop(s, count_stop, &f), 0);
    zinx__server_set_fault(s, fail_while_told, &f);
    int port = tf_start_or_fail(s);
    enum { N = 50 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = tc_connect(port);
        assert_true(fds[i] >= 0);
        assert_int_equal(tc_echo_call(fds[i], ZINX_FORMAT_TLV, "hi", 2, 5000),
                         0);
    }
    atomic_store(&f.failing, true);
    uint64_t t0 = tf_now_ms();
    assert_int_equal(zinx_server_stop(s), 0);
    assert_int_equal(zinx_server_wait(s), 0);
    assert_true(tf_now_ms() - t0 < cfg.drain_timeout_ms + 2000u);
    assert_int_equal(atomic_load(&f.stops), N);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t23_allocation_failures),
        cmocka_unit_test(t23_stop_while_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
