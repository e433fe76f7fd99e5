/*
 * T12, error-then-close delivery: with CloseNoticeMsgID set, an oversized
 * frame header followed by 1 MiB of junk gets a notice frame, then the
 * close. The client reads nothing until it has sent all of its junk, so a
 * server that closed with the junk unread would send RST and the kernel
 * would throw the unread notice away: lingering close must prevent that
 * in at least 99 of 100 runs. Two endings: the client shuts down its
 * write side after the junk, or it just waits (the server's linger time
 * then ends it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_probe.h"

#define NOTICE_ID 4242u
#define RUNS 100
#define JUNK (1u << 20)

typedef struct run {
    int fd;
    size_t sent; /* header + junk bytes sent */
    bool shut;
    bool done;
    int end; /* 0 EOF, else -errno */
    size_t got;
    uint8_t rx[512];
} run_t;

static uint8_t junk[64 * 1024];

/* Drives all runs at once; returns how many read the notice intact. */
static int drive(run_t *r, int n, bool shut_after, int port, int *eofs)
{
    uint8_t hdr[ZINX_HEADER_LEN];
    for (int i = 0; i < n; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        tc_opts_t o = {.nonblock = true};
        r[i].fd = tc_connect_opts(port, &o);
        assert_true(r[i].fd >= 0);
    }
    size_t total = ZINX_HEADER_LEN + JUNK;
    uint64_t end = tf_now_ms() + 30000;
    int left = n;
    while (left > 0 && tf_now_ms() < end) {
        struct pollfd pfd[RUNS];
        for (int i = 0; i < n; i++) {
            pfd[i].fd = r[i].done ? -1 : r[i].fd;
            /* Nothing is read before everything was sent. */
            pfd[i].events = r[i].sent < total ? POLLOUT : POLLIN;
            pfd[i].revents = 0;
        }
        poll(pfd, (nfds_t)n, 50);
        for (int i = 0; i < n; i++) {
            run_t *x = &r[i];
            if (x->done || pfd[i].revents == 0)
                continue;
            if (x->sent < total) {
                const uint8_t *p;
                size_t len;
                if (x->sent < ZINX_HEADER_LEN) {
                    /* Alternate between just past the limit and the
                       largest length. */
                    zinx_pack_header(ZINX_FORMAT_TLV, TC_ECHO_ID,
                                     i % 2 ? 4097u : 0xffffffffu, hdr);
                    p = hdr + x->sent;
                    len = ZINX_HEADER_LEN - x->sent;
                } else {
                    size_t off = (x->sent - ZINX_HEADER_LEN) % sizeof(junk);
                    p = junk + off;
                    len = sizeof(junk) - off;
                    if (len > total - x->sent)
                        len = total - x->sent;
                }
                ssize_t w = send(x->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0) {
                    x->sent += (size_t)w;
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    x->end = -errno; /* the server reset us early */
                    x->done = true;
                    left--;
                    continue;
                }
                if (x->sent == total && shut_after) {
                    shutdown(x->fd, SHUT_WR);
                    x->shut = true;
                }
                continue;
            }
            ssize_t g = recv(x->fd, x->rx + x->got, sizeof(x->rx) - x->got,
                             MSG_DONTWAIT);
            if (g > 0) {
                x->got += (size_t)g;
                if (x->got == sizeof(x->rx)) {
                    x->end = -EMSGSIZE; /* more than a notice */
                    x->done = true;
                    left--;
                }
            } else if (g == 0 || (errno != EAGAIN && errno != EINTR)) {
                x->end = g == 0 ? 0 : -errno;
                x->done = true;
                left--;
            }
        }
    }
    int ok = 0;
    *eofs = 0;
    for (int i = 0; i < n; i++) {
        run_t *x = &r[i];
        uint32_t id, len;
        bool notice =
            x->done && x->got >= ZINX_HEADER_LEN &&
            zinx_unpack_header(ZINX_FORMAT_TLV, x->rx, x->got, &id, &len) ==
                0 &&
            id == NOTICE_ID && x->got == ZINX_HEADER_LEN + len && len >= 15 &&
            memcmp(x->rx + ZINX_HEADER_LEN, "frame too large", 15) == 0;
        ok += notice;
        *eofs += notice && x->end == 0;
        if (!notice)
            tf_note("T12 run %d: sent %zu, got %zu bytes, end %s", i, x->sent,
                    x->got, zinx_strerror(x->end));
        close(x->fd);
    }
    return ok;
}

static void run_t12(bool shut_after)
{
    memset(junk, 0xab, sizeof(junk));
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.close_notice_msg_id = NOTICE_ID;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);
    probe_raise_nofile();
    run_t *r = calloc(RUNS, sizeof(*r));
    assert_non_null(r);
    uint64_t t0 = tf_now_ms();
    int eofs;
    int ok = drive(r, RUNS, shut_after, port, &eofs);
    tf_note("T12 (%s): notice read in %d of %d runs (%d then EOF) in %llu "
            "ms",
            shut_after ? "SHUT_WR after the junk" : "no SHUT_WR", ok, RUNS,
            eofs, (unsigned long long)(tf_now_ms() - t0));
    assert_true(ok >= RUNS - 1);
    assert_int_equal(tf_stat(s, TF_STAT(oversize)), RUNS);
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, 5000), 0);
    free(r);
    zinx_server_free(s);
}

static void t12_notice_then_shut_wr(void **state)
{
    (void)state;
    run_t12(true);
}

static void t12_notice_without_shut_wr(void **state)
{
    (void)state;
    run_t12(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t12_notice_then_shut_wr),
        cmocka_unit_test(t12_notice_without_shut_wr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
