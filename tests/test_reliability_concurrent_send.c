/*
 * T15, concurrent send: eight threads send on one connection at once
 * (references taken in OnConnStart). Every frame must arrive intact (no
 * two frames interleaved) and each thread's frames in the order it sent
 * them. A second run has handlers inline, so the owning I/O thread writes
 * echo replies straight into the output while the eight threads go
 * through the cross-thread path. Run under TSan too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define SENDERS 8
#define PUSH_ID 5u
#define ECHO_STREAM 99u
#define FRAMES TF_PICK3(10000u, 4000u, 2000u)
#define ECHOES TF_PICK(2000u, 500u)

typedef struct shared {
    atomic_ullong conn; /* zinx_conn_t * with a reference, once started */
    atomic_long send_errors;
    atomic_int last_error;
    atomic_bool go;
} shared_t;

static void on_start(zinx_conn_t *conn, void *udata)
{
    shared_t *sh = udata;
    atomic_store(&sh->conn, (unsigned long long)(uintptr_t)zinx_conn_ref(conn));
}

/* stream u32 | seq u32 | fill | crc32; now and then a large one, so a
   frame is written in several pieces. */
static uint32_t make_frame_payload(uint8_t *p, uint32_t stream, uint32_t seq)
{
    uint32_t fill = seq % 97u == 0 ? 3000u : (stream * 31u + seq * 7u) % 200u;
    frame_put_u32(p, stream);
    frame_put_u32(p + 4, seq);
    for (uint32_t i = 0; i < fill; i++)
        p[8 + i] = (uint8_t)(stream + seq + i);
    frame_put_u32(p + 8 + fill, frame_crc32(p, 8 + fill));
    return 12 + fill;
}

static bool check_frame_payload(const uint8_t *p, uint32_t len,
                                uint32_t *stream, uint32_t *seq)
{
    if (len < 12 || frame_get_u32(p + len - 4) != frame_crc32(p, len - 4))
        return false;
    *stream = frame_get_u32(p);
    *seq = frame_get_u32(p + 4);
    return true;
}

typedef struct sender {
    shared_t *sh;
    uint32_t stream;
    pthread_t thread;
} sender_t;

static void *send_main(void *arg)
{
    sender_t *snd = arg;
    zinx_conn_t *c = (zinx_conn_t *)(uintptr_t)atomic_load(&snd->sh->conn);
    while (!atomic_load(&snd->sh->go))
        sched_yield();
    uint8_t p[3100];
    for (uint32_t seq = 0; seq < FRAMES; seq++) {
        uint32_t len = make_frame_payload(p, snd->stream, seq);
        int rc = zinx_conn_send_msg(c, PUSH_ID, p, len);
        if (rc != 0) {
            atomic_fetch_add(&snd->sh->send_errors, 1);
            atomic_store(&snd->sh->last_error, rc);
            break;
        }
    }
    return NULL;
}

static void run_concurrent_send(uint32_t workers, bool with_echo)
{
    shared_t *sh = calloc(1, sizeof(*sh));
    assert_non_null(sh);
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.worker_pool_size = workers;
    cfg.output_hard_limit = 0; /* only interleaving is under test here */
    cfg.output_soft_limit = 0;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_server_on_conn_start(s, on_start, sh), 0);
    int port = tf_start_or_fail(s);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    uint64_t end = tf_now_ms() + 5000;
    while (atomic_load(&sh->conn) == 0 && tf_now_ms() < end)
        tf_sleep_ms(1);
    assert_true(atomic_load(&sh->conn) != 0);

    sender_t snd[SENDERS];
    for (uint32_t i = 0; i < SENDERS; i++) {
        snd[i] = (sender_t){.sh = sh, .stream = i};
        assert_int_equal(
            pthread_create(&snd[i].thread, NULL, send_main, &snd[i]), 0);
    }
    atomic_store(&sh->go, true);

    /* Echo requests in the middle of the flood (inline: answered by the
       I/O thread itself). */
    size_t echo_len = 0;
    uint8_t *echo_out = NULL;
    if (with_echo) {
        echo_out = malloc(ECHOES * (ZINX_HEADER_LEN + FRAME_PAYLOAD_MAX));
        assert_non_null(echo_out);
        for (uint32_t i = 0; i < ECHOES; i++) {
            uint8_t p[FRAME_PAYLOAD_MAX];
            uint32_t len = frame_payload_make(p, ECHO_STREAM, i);
            echo_len += frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, p, len,
                                     echo_out + echo_len);
        }
    }

    uint32_t next[SENDERS] = {0}, echo_next = 0;
    uint64_t want = (uint64_t)SENDERS * FRAMES + (with_echo ? ECHOES : 0);
    uint64_t got = 0;
    size_t cap = 1u << 20, have = 0, echo_sent = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    end = tf_now_ms() + (uint64_t)TF_PICK(30000, 120000);
    while (got < want && tf_now_ms() < end) {
        if (echo_sent < echo_len) {
            ssize_t w =
                send(fd, echo_out + echo_sent,
                     echo_len - echo_sent > 4096 ? 4096 : echo_len - echo_sent,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                echo_sent += (size_t)w;
        }
        ssize_t n = tc_recv_some(fd, buf + have, cap - have, 1000);
        if (n == -ETIMEDOUT)
            continue;
        if (n <= 0)
            fail_msg("connection ended after %llu of %llu frames: %s",
                     (unsigned long long)got, (unsigned long long)want,
                     n == 0 ? "EOF" : zinx_strerror((int)n));
        have += (size_t)n;
        size_t off = 0;
        for (;;) {
            zinx_msg_t m;
            long k =
                zinx_unpack(ZINX_FORMAT_TLV, 4096, buf + off, have - off, &m);
            if (k == ZINX_EAGAIN)
                break;
            if (k < 0)
                fail_msg("frame %llu: bad header (interleaved?)",
                         (unsigned long long)got);
            uint32_t stream = 0, seq = 0;
            if (m.id == TC_ECHO_ID) {
                if (frame_payload_check(m.data, m.len, &stream, &seq) != 0 ||
                    stream != ECHO_STREAM || seq != echo_next)
                    fail_msg("echo reply %u damaged or out of order",
                             echo_next);
                echo_next++;
            } else {
                if (m.id != PUSH_ID ||
                    !check_frame_payload(m.data, m.len, &stream, &seq) ||
                    stream >= SENDERS)
                    fail_msg("frame %llu damaged (id %u, %u bytes)",
                             (unsigned long long)got, m.id, m.len);
                if (seq != next[stream])
                    fail_msg("thread %u: frame %u arrived where %u was "
                             "due",
                             stream, seq, next[stream]);
                next[stream]++;
            }
            got++;
            off += (size_t)k;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    for (uint32_t i = 0; i < SENDERS; i++)
        pthread_join(snd[i].thread, NULL);
    tf_note("T15 (%u workers%s): %llu of %llu frames intact and in order, "
            "%ld send errors",
            workers, with_echo ? ", echo" : "", (unsigned long long)got,
            (unsigned long long)want, atomic_load(&sh->send_errors));
    if (atomic_load(&sh->send_errors) != 0)
        fail_msg("sends failed: %s",
                 zinx_strerror(atomic_load(&sh->last_error)));
    assert_int_equal(got, want);
    assert_int_equal(have, 0);
    for (uint32_t i = 0; i < SENDERS; i++)
        assert_int_equal(next[i], FRAMES);

    close(fd);
    zinx_server_free(s);
    zinx_conn_unref((zinx_conn_t *)(uintptr_t)atomic_load(&sh->conn));
    free(buf);
    free(echo_out);
    free(sh);
}

static void t15_eight_threads_workers(void **state)
{
    (void)state;
    run_concurrent_send(2, false);
}

static void t15_eight_threads_and_inline_replies(void **state)
{
    (void)state;
    run_concurrent_send(0, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t15_eight_threads_workers),
        cmocka_unit_test(t15_eight_threads_and_inline_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
