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
#include "reliability_util.h"

typedef struct stopper {
    zinx_server_t *server;
    uint64_t took_ms;
    pthread_t thread;
} stopper_t;

static void *stop_main(void *arg)
{
    stopper_t *st = arg;
    uint64_t t0 = ru_now_ms();
    zinx_server_stop(st->server);
    zinx_server_wait(st->server);
    st->took_ms = ru_now_ms() - t0;
    return NULL;
}

/* Sends 1 KiB echo requests for ms milliseconds, never reading. */
static uint64_t pipeline_for(int fd, unsigned ms)
{
    uint8_t frame[ZINX_HEADER_LEN + 1024];
    memset(frame + ZINX_HEADER_LEN, 'r', 1024);
    ru_frame(frame, RU_ECHO_ID, frame + ZINX_HEADER_LEN, 1024);
    uint64_t end = ru_now_ms() + ms, bytes = 0;
    while (ru_now_ms() < end) {
        /* A short send leaves the rest of the frame for the next one. */
        size_t off = (size_t)(bytes % sizeof(frame));
        ssize_t n = send(fd, frame + off, sizeof(frame) - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            bytes += (uint64_t)n;
        else
            ru_sleep_ms(1);
    }
    return bytes;
}

/* Reads frames until EOF or reset; counts the whole ones and checks
   that the stream ends on a frame boundary. */
static uint64_t read_all_replies(int fd, bool *torn)
{
    uint64_t frames = 0;
    *torn = false;
    for (;;) {
        uint8_t hdr[ZINX_HEADER_LEN];
        ssize_t n = ru_recv_some(fd, hdr, 1, 10000);
        if (n <= 0)
            return frames; /* EOF or reset between frames */
        if (ru_recv_exact(fd, hdr + 1, sizeof(hdr) - 1, 10000) != 0) {
            *torn = true;
            return frames;
        }
        uint32_t id, len;
        if (zinx_unpack_header(ZINX_FORMAT_TLV, hdr, sizeof(hdr), &id, &len) !=
                0 ||
            id != RU_ECHO_ID || len != 1024) {
            *torn = true;
            return frames;
        }
        uint8_t body[1024];
        if (ru_recv_exact(fd, body, len, 10000) != 0) {
            *torn = true;
            return frames;
        }
        frames++;
    }
}

static void t24_stop_keeps_written_replies(void **state)
{
    (void)state;
    for (int round = 0; round < RU_PICK(4, 2); round++) {
        zinx_config_t cfg;
        ru_config(&cfg);
        cfg.drain_timeout_ms = 5000;
        zinx_server_t *s = ru_server_new(&cfg);
        int port = ru_server_start(s);
        int fd = ru_connect(port);
        assert_true(fd >= 0);
        uint64_t sent = pipeline_for(fd, 1500);

        stopper_t st = {.server = s};
        assert_int_equal(pthread_create(&st.thread, NULL, stop_main, &st), 0);
        /* Let the stop run into its lingering phase, then keep sending
           a little (requests arriving at a closing socket), then read. */
        ru_sleep_ms(300);
        uint64_t more = pipeline_for(fd, 100);
        if ((sent + more) % (ZINX_HEADER_LEN + 1024) != 0) {
            /* Finish the frame cut short, blocking if need be. */
            size_t rest = (ZINX_HEADER_LEN + 1024) -
                          (size_t)((sent + more) % (ZINX_HEADER_LEN + 1024));
            uint8_t pad[ZINX_HEADER_LEN + 1024];
            memset(pad, 'r', rest);
            (void)ru_send_all(fd, pad, rest, 100);
        }
        bool torn;
        uint64_t got = read_all_replies(fd, &torn);
        pthread_join(st.thread, NULL);
        uint64_t queued = ru_stat(s, RU_STAT(msgs_out));
        ru_note("T24 round %d: sent %llu KiB, %llu of %llu replies arrived, "
                "stop took %llu ms",
                round, (unsigned long long)(sent / 1024),
                (unsigned long long)got, (unsigned long long)queued,
                (unsigned long long)st.took_ms);
        assert_false(torn);
        assert_true(queued > 0);
        assert_int_equal(got, queued);
        assert_true(st.took_ms < cfg.drain_timeout_ms + 1000u);
        close(fd);
        zinx_server_free(s);
    }
}

/* A peer that never reads cannot hold the stop beyond DrainTimeoutMs. */
static void t24_stop_bounded_by_drain_timeout(void **state)
{
    (void)state;
    zinx_config_t cfg;
    ru_config(&cfg);
    cfg.drain_timeout_ms = 1000;
    zinx_server_t *s = ru_server_new(&cfg);
    int port = ru_server_start(s);
    ru_sockopts_t o = {.rcvbuf = 4096};
    int fd = ru_connect_ex(port, &o);
    assert_true(fd >= 0);
    pipeline_for(fd, 800);
    stopper_t st = {.server = s};
    stop_main(&st);
    ru_note("T24 non-reader: stop took %llu ms (DrainTimeoutMs 1000)",
            (unsigned long long)st.took_ms);
    assert_true(st.took_ms >= 900);
    assert_true(st.took_ms < 1000u + RU_SLACK_MS);
    close(fd);
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
