/*
 * The impaired link of the KCP tests (tests/support/udp_relay.c), checked
 * with plain UDP sockets: it forwards both ways, drops about the share it
 * was told to and counts it, delays by at least the mean minus the
 * jitter, reorders when the jitter exceeds the spacing, and ignores a
 * second client.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_fixture.h"
#include "udp_relay.h"

/* A UDP socket on 127.0.0.1, an ephemeral port. */
static int udp_bound(int *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    /* Room for every datagram of a test: losses are the relay's only. */
    int sz = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void send_seq(int fd, int port, uint32_t seq)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    assert_int_equal(
        sendto(fd, &seq, sizeof(seq), 0, (struct sockaddr *)&a, sizeof(a)),
        (ssize_t)sizeof(seq));
}

/* The next datagram's sequence number, or -1 after timeout_ms; *from
   gets the sender's port. */
static int64_t recv_seq(int fd, int timeout_ms, int *from)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    uint32_t seq;
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    ssize_t n = recvfrom(fd, &seq, sizeof(seq), 0, (struct sockaddr *)&a, &al);
    assert_int_equal(n, (ssize_t)sizeof(seq));
    if (from != NULL)
        *from = ntohs(a.sin_port);
    return seq;
}

/* The relay's counters once *field reached want (it counts a datagram
   just after sending it, so a receiver can see it first), or after 2 s. */
static void stats_when(ur_relay_t *r, ur_stats_t *st, const uint64_t *field,
                       uint64_t want)
{
    uint64_t end = tf_now_ms() + 2000;
    ur_stats(r, st);
    while (*field < want && tf_now_ms() < end) {
        tf_sleep_ms(1);
        ur_stats(r, st);
    }
}

/* Loss only, up: ~10 % of 2,000 dropped, the rest arrive, all counted;
   the server's replies come back through the relay's port. */
static void test_loss_counted(void **state)
{
    (void)state;
    int sport, cport;
    int srv = udp_bound(&sport), cli = udp_bound(&cport);
    ur_opts_t o = {.up = {.loss = 0.10}, .seed = 42};
    ur_relay_t *r = ur_start(sport, &o);
    assert_non_null(r);
    enum { N = 2000 };
    int got = 0, relay_side = 0;
    for (uint32_t i = 0; i < N; i++) {
        send_seq(cli, ur_port(r), i);
        if (i % 50 == 49) {
            /* paced and drained: no loss in the kernel's buffers */
            tf_sleep_ms(1);
            while (recv_seq(srv, 0, &relay_side) >= 0)
                got++;
        }
    }
    while (recv_seq(srv, 500, &relay_side) >= 0)
        got++;
    ur_stats_t st;
    ur_stats(r, &st);
    tf_note("loss: %d of %d arrived, dropped %llu", got, N,
            (unsigned long long)st.up_dropped);
    assert_int_equal(st.up_dropped + st.up_forwarded, N);
    assert_int_equal((int)st.up_forwarded, got);
    assert_in_range(st.up_dropped, N * 7 / 100, N * 13 / 100);

    /* down: the server answers the relay, the client gets it */
    send_seq(srv, relay_side, 7);
    int from = 0;
    assert_int_equal(recv_seq(cli, 2000, &from), 7);
    assert_int_equal(from, ur_port(r));
    stats_when(r, &st, &st.down_forwarded, 1);
    assert_int_equal(st.down_forwarded, 1);
    assert_int_equal(st.down_dropped, 0);
    ur_stop(r);
    close(srv);
    close(cli);
}

/* Delay 40 ± 20 ms both ways: nothing arrives before 20 ms, datagrams
   1 ms apart come out of order, and none is lost. */
static void test_delay_and_reorder(void **state)
{
    (void)state;
    int sport, cport;
    int srv = udp_bound(&sport), cli = udp_bound(&cport);
    ur_opts_t o = {.up = {.delay_ms = 40, .jitter_ms = 20},
                   .down = {.delay_ms = 40, .jitter_ms = 20},
                   .seed = 7};
    ur_relay_t *r = ur_start(sport, &o);
    assert_non_null(r);
    enum { N = 100 };
    uint64_t t0 = tf_now_ms();
    for (uint32_t i = 0; i < N; i++) {
        send_seq(cli, ur_port(r), i);
        tf_sleep_ms(1);
    }
    int64_t first = recv_seq(srv, tf_ms(5000), NULL);
    assert_true(first >= 0);
    assert_true(tf_now_ms() - t0 >= 19);
    int got = 1, inversions = 0;
    int64_t last = first, seq;
    while ((seq = recv_seq(srv, 300, NULL)) >= 0) {
        got++;
        inversions += seq < last;
        last = seq;
    }
    tf_note("delay: %d arrived, %d inversions", got, inversions);
    assert_int_equal(got, N);
    assert_true(inversions > 0);
    ur_stop(r);
    close(srv);
    close(cli);
}

/* Datagrams from a second address are counted and not forwarded. */
static void test_foreign_ignored(void **state)
{
    (void)state;
    int sport, cport, oport;
    int srv = udp_bound(&sport), cli = udp_bound(&cport);
    int other = udp_bound(&oport);
    ur_opts_t o = {.seed = 1};
    ur_relay_t *r = ur_start(sport, &o);
    assert_non_null(r);
    send_seq(cli, ur_port(r), 1);
    assert_int_equal(recv_seq(srv, 2000, NULL), 1);
    send_seq(other, ur_port(r), 2);
    send_seq(cli, ur_port(r), 3);
    assert_int_equal(recv_seq(srv, 2000, NULL), 3);
    ur_stats_t st;
    stats_when(r, &st, &st.up_forwarded, 2);
    assert_int_equal(st.foreign, 1);
    assert_int_equal(st.up_forwarded, 2);
    ur_stop(r);
    close(srv);
    close(cli);
    close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_counted),
        cmocka_unit_test(test_delay_and_reorder),
        cmocka_unit_test(test_foreign_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
