/*
 * T24, nothing written is destroyed at graceful stop: a client pipelines
 * requests without reading until the server stops reading it, the
 * server is stopped, and only then does the client start reading. Every
 * reply the server accepted (stats.msgs_out) must arrive whole: the
 * server's sockets linger until the peer's EOF, until the peer has
 * acknowledged every byte, or until DrainTimeoutMs. (Before, the loops
 * closed every lingering socket at exit; the requests still arriving then
 * drew a reset that dropped up to megabytes of unsent replies.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

typedef struct stopper {
    zinx_server_t *server;
    uint64_t took_ms;
    pthread_t thread;
} stopper_t;

static void *stop_main(void *arg)
{
    stopper_t *st = arg;
    uint64_t t0 = tf_now_ms();
    zinx_server_stop(st->server);
    zinx_server_wait(st->server);
    st->took_ms = tf_now_ms() - t0;
    return NULL;
}

#define REQ_LEN 1024u
#define FRAME_LEN (ZINX_HEADER_LEN + REQ_LEN)

/* The client's side: a request stream that may be cut mid-frame by a
   nonblocking send and resumed later, and a reply parser. */
typedef struct client {
    int fd;
    uint8_t frame[FRAME_LEN];
    uint64_t sent; /* bytes; sent % FRAME_LEN is the offset in a frame */
    uint8_t in[FRAME_LEN * 64];
    size_t have;
    uint64_t replies;
    bool bad; /* a reply that is not an echo of a request */
} client_t;

/* Sends what the socket takes now; false once it refuses for good. */
static bool send_some(client_t *c, size_t max)
{
    while (max > 0) {
        size_t off = (size_t)(c->sent % FRAME_LEN);
        size_t want = FRAME_LEN - off < max ? FRAME_LEN - off : max;
        ssize_t n =
            send(c->fd, c->frame + off, want, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0)
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        c->sent += (uint64_t)n;
        max -= (size_t)n;
    }
    return true;
}

/* Reads at most max bytes; returns 0, 1 at EOF or reset, -1 on nothing
   within the wait. Counts whole replies and checks each one. */
static int read_some(client_t *c, size_t max, int wait_ms)
{
    size_t room = sizeof(c->in) - c->have;
    ssize_t n =
        tc_recv_some(c->fd, c->in + c->have, max < room ? max : room, wait_ms);
    if (n == -ETIMEDOUT)
        return -1;
    if (n <= 0)
        return 1;
    c->have += (size_t)n;
    size_t off = 0;
    while (c->have - off >= FRAME_LEN) {
        uint32_t id, len;
        if (zinx_unpack_header(ZINX_FORMAT_TLV, c->in + off, FRAME_LEN, &id,
                               &len) != 0 ||
            id != TC_ECHO_ID || len != REQ_LEN ||
            memcmp(c->in + off + ZINX_HEADER_LEN, c->frame + ZINX_HEADER_LEN,
                   REQ_LEN) != 0)
            c->bad = true;
        off += FRAME_LEN;
        c->replies++;
    }
    memmove(c->in, c->in + off, c->have - off);
    c->have -= off;
    return 0;
}

/* Pipelines requests for ms milliseconds without reading. */
static void pipeline_for(client_t *c, unsigned ms)
{
    uint64_t end = tf_now_ms() + ms;
    while (tf_now_ms() < end) {
        if (!send_some(c, FRAME_LEN * 16))
            return;
        tf_sleep_ms(1);
    }
}

static void t24_stop_keeps_written_replies(void **state)
{
    (void)state;
    for (int round = 0; round < TF_PICK(3, 2); round++) {
        zinx_config_t cfg;
        tf_config_many_conns(&cfg);
        cfg.drain_timeout_ms = 5000;
        zinx_server_t *s = tf_echo_server_new(&cfg);
        int port = tf_start_or_fail(s);
        static client_t c;
        memset(&c, 0, sizeof(c));
        memset(c.frame + ZINX_HEADER_LEN, 'r', REQ_LEN);
        frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, c.frame + ZINX_HEADER_LEN,
                     REQ_LEN, c.frame);
        c.fd = tc_connect(port);
        assert_true(c.fd >= 0);
        pipeline_for(&c, 1500);

        stopper_t st = {.server = s};
        assert_int_equal(pthread_create(&st.thread, NULL, stop_main, &st), 0);
        /* Now read, slowly (about 6 MB/s, so the server's socket still
           holds replies when its drain is done), while requests keep
           arriving at the closing socket. */
        int rc = 0;
        uint64_t end = tf_now_ms() + 15000;
        while (rc != 1 && tf_now_ms() < end) {
            send_some(&c, FRAME_LEN);
            rc = read_some(&c, 64 * 1024, 10);
            tf_sleep_ms(10);
        }
        pthread_join(st.thread, NULL);
        uint64_t queued = tf_stat(s, TF_STAT(msgs_out));
        tf_note("T24 round %d: sent %llu KiB, %llu of %llu replies arrived, "
                "%zu bytes of a torn one, stop took %llu ms",
                round, (unsigned long long)(c.sent / 1024),
                (unsigned long long)c.replies, (unsigned long long)queued,
                c.have, (unsigned long long)st.took_ms);
        assert_int_equal(rc, 1); /* the connection ended */
        assert_false(c.bad);
        assert_int_equal(c.have, 0);
        assert_true(queued > 0);
        assert_int_equal(c.replies, queued);
        assert_true(st.took_ms < cfg.drain_timeout_ms + 1000u);
        close(c.fd);
        zinx_server_free(s);
    }
}

/* A peer that never reads cannot hold the stop beyond DrainTimeoutMs. */
static void t24_stop_bounded_by_drain_timeout(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.drain_timeout_ms = 1000;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);
    tc_opts_t o = {.rcvbuf = 4096};
    static client_t c;
    memset(&c, 0, sizeof(c));
    frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, c.frame + ZINX_HEADER_LEN,
                 REQ_LEN, c.frame);
    c.fd = tc_connect_opts(port, &o);
    assert_true(c.fd >= 0);
    pipeline_for(&c, 800);
    stopper_t st = {.server = s};
    stop_main(&st);
    tf_note("T24 non-reader: stop took %llu ms (DrainTimeoutMs 1000)",
            (unsigned long long)st.took_ms);
    assert_true(st.took_ms >= 900);
    assert_true(st.took_ms < 1000u + TF_SLACK_MS);
    close(c.fd);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t24_stop_keeps_written_replies),
        cmocka_unit_test(t24_stop_bounded_by_drain_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
