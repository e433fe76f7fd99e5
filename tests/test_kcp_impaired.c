/*
 * KCP over an impaired link (issue 15): the kcp-go client talks to the
 * server through a UDP relay (tests/support/udp_relay.c) that drops 10 %
 * of the datagrams each way and delays each by 50 ± 20 ms (so reorders
 * them), with Zinx's nodelay settings (KcpNoDelay 1, KcpInterval 10,
 * KcpResend 2, KcpNc 1). Every frame must come back, in order, with its
 * content, within a generous bound; the relay's counters must show the
 * loss really happened, so a clean link cannot pass.
 *
 * The server is the C server; the same run against the kcp-go server is
 * the control (it shows the link and the load are survivable by the
 * reference implementation). Without the peer the tests are skipped,
 * except under CI=true.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kcp_peer.h"
#include "test_fixture.h"
#include "udp_relay.h"

#define FRAMES "400"
#define MAX_PAYLOAD "4096"
#define LOCKSTEP "20"
#define T_RUN 60000 /* generous: a run takes ~10 s */

/* The run's relay and peer server: the teardown stops them when a check
   fails half-way. */
static ur_relay_t *relay;
static kp_server_t peer;

static int teardown(void **state)
{
    (void)state;
    ur_stop(relay);
    relay = NULL;
    kp_server_stop(&peer);
    return 0;
}

/* Starts the relay in front of server_port: 10 % loss, 50 ± 20 ms, each
   way. */
static int start_relay(int server_port)
{
    ur_opts_t o = {.up = {.loss = 0.10, .delay_ms = 50, .jitter_ms = 20},
                   .down = {.loss = 0.10, .delay_ms = 50, .jitter_ms = 20},
                   .seed = 20261130};
    relay = ur_start(server_port, &o);
    assert_non_null(relay);
    return ur_port(relay);
}

/* The share of datagrams dropped, checked to be about 10 % each way over
   enough datagrams that it means something. */
static void check_loss(void)
{
    ur_stats_t st;
    ur_stats(relay, &st);
    uint64_t up = st.up_forwarded + st.up_dropped;
    uint64_t down = st.down_forwarded + st.down_dropped;
    tf_note("relay: up %llu of %llu dropped, down %llu of %llu dropped, "
            "overflow %llu",
            (unsigned long long)st.up_dropped, (unsigned long long)up,
            (unsigned long long)st.down_dropped, (unsigned long long)down,
            (unsigned long long)st.overflow);
    assert_true(up >= 200 && down >= 200);
    assert_in_range(st.up_dropped * 100, up * 5, up * 15);
    assert_in_range(st.down_dropped * 100, down * 5, down * 15);
    assert_int_equal(st.overflow, 0);
}

/* Runs the kcp-go client through the relay on port; fails on a miss. */
static void run_client(const char *exe, int port)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    const char *args[] = {
        "-addr",     addr,     "-frames", FRAMES, "-max",     MAX_PAYLOAD,
        "-lockstep", LOCKSTEP, "-seed",   "10",   "-nodelay", "1",
        "-interval", "10",     "-resend", "2",    "-nc",      "1",
        "-timeout",  "60s",    NULL};
    char summary[256];
    uint64_t t0 = tf_now_ms();
    int rc = kp_client_run(exe, args, tf_ms(T_RUN), summary, sizeof(summary));
    tf_note("kcp-go client through the relay (%llu ms): %s",
            (unsigned long long)(tf_now_ms() - t0), summary);
    if (rc != 0)
        fail_msg("kcp-go client exited %d: %s", rc, summary);
    assert_int_equal(strncmp(summary, "OK ", 3), 0);
}

static void test_c_server_impaired(void **state)
{
    (void)state;
    const char *exe = kp_require();
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.mode = ZINX_MODE_KCP;
    cfg.kcp_port = 0;
    cfg.kcp_nodelay = 1;
    cfg.kcp_interval = 10;
    cfg.kcp_resend = 2;
    cfg.kcp_nc = 1;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_server_start(s), 0);
    int port = start_relay(zinx_server_kcp_port(s));

    run_client(exe, port);
    check_loss();

    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
}

/* The control: kcp-go on both ends of the same link. */
static void test_go_server_impaired(void **state)
{
    (void)state;
    const char *exe = kp_require();
    const char *args[] = {"-nodelay", "1",   "-interval", "10", "-resend",
                          "2",        "-nc", "1",         NULL};
    kp_server_start(&peer, exe, args);
    int port = start_relay(peer.port);

    run_client(exe, port);
    check_loss();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_c_server_impaired, teardown),
        cmocka_unit_test_teardown(test_go_server_impaired, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
