/*
 * T11, half-close: a client sends K requests and then shuts down its
 * write side. It must receive all K replies, in order and intact, and
 * then EOF (not a reset), with handlers on workers and inline, with slow
 * handlers, with a worker queue too small for the burst, and with replies
 * large enough to pass OutputHighWater.
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
#include "test_frame.h"

#define SLOW_ID 3u

typedef struct variant {
    const char *name;
    uint32_t workers;
    uint32_t requests;
    uint32_t payload;    /* bytes per request and reply */
    uint32_t handler_us; /* handler delay */
    uint32_t queue;      /* MaxWorkerTaskLen; 0: default */
    bool trickle;        /* one frame per write */
} variant_t;

static void slow_echo(zinx_request_t *req, void *udata)
{
    uint32_t us = (uint32_t)(uintptr_t)udata;
    if (us > 0)
        usleep(us);
    tf_echo(req, NULL);
}

static void fill_payload(uint8_t *p, uint32_t len, uint32_t seq)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seq * 131u + i * 7u);
    if (len >= 4)
        frame_put_u32(p, seq);
}

/* Sends the requests (then SHUT_WR) while reading the replies, so large
   variants cannot deadlock on full buffers; checks everything. */
static void run_variant(const variant_t *v)
{
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.worker_pool_size = v->workers;
    cfg.max_packet_size = v->payload > 4096 ? v->payload : 4096;
    if (v->queue)
        cfg.max_worker_task_len = v->queue;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_router_t slow = {.handle = slow_echo,
                          .udata = (void *)(uintptr_t)v->handler_us};
    assert_int_equal(zinx_server_add_router(s, SLOW_ID, &slow), 0);
    int port = tf_start_or_fail(s);

    size_t frame = ZINX_HEADER_LEN + v->payload;
    size_t out_len = frame * v->requests;
    uint8_t *out = malloc(out_len), *in = malloc(out_len + 1);
    uint8_t *expect = malloc(v->payload + 1);
    assert_non_null(out);
    assert_non_null(in);
    assert_non_null(expect);
    for (uint32_t i = 0; i < v->requests; i++) {
        fill_payload(expect, v->payload, i);
        frame_encode(ZINX_FORMAT_TLV, SLOW_ID, expect, v->payload,
                     out + i * frame);
    }

    int fd = tc_connect(port);
    assert_true(fd >= 0);
    size_t sent = 0, got = 0;
    bool shut = false, eof = false;
    int err = 0;
    uint64_t end = tf_now_ms() + (uint64_t)TF_PICK(20000, 60000);
    while (!eof && err == 0 && tf_now_ms() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (!shut)
            pfd.events |= POLLOUT;
        poll(&pfd, 1, 50);
        if (!shut && (pfd.revents & POLLOUT)) {
            size_t chunk = v->trickle ? frame : out_len - sent;
            if (chunk > out_len - sent)
                chunk = out_len - sent;
            ssize_t n =
                send(fd, out + sent, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
            if (sent == out_len) {
                assert_int_equal(shutdown(fd, SHUT_WR), 0);
                shut = true;
            }
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, in + got, out_len + 1 - got, MSG_DONTWAIT);
            if (n > 0)
                got += (size_t)n;
            else if (n == 0)
                eof = true;
            else if (errno != EAGAIN && errno != EINTR)
                err = errno;
        }
    }
    close(fd);
    tf_note("T11 %s: sent %zu, received %zu of %zu bytes, eof %d, error %s",
            v->name, sent, got, out_len, eof, err ? strerror(err) : "none");
    if (err != 0)
        fail_msg("%s: connection failed: %s", v->name, strerror(err));
    assert_true(shut);
    assert_true(eof);
    assert_int_equal(got, out_len);
    /* Every reply, in order, intact. */
    for (uint32_t i = 0; i < v->requests; i++) {
        const uint8_t *f = in + i * frame;
        uint32_t id, len;
        zinx_unpack_header(ZINX_FORMAT_TLV, f, frame, &id, &len);
        assert_int_equal(id, SLOW_ID);
        assert_int_equal(len, v->payload);
        fill_payload(expect, v->payload, i);
        if (memcmp(f + ZINX_HEADER_LEN, expect, v->payload) != 0)
            fail_msg("%s: reply %u is not request %u's", v->name, i, i);
    }
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, 2000), 0);
    free(out);
    free(in);
    free(expect);
    zinx_server_free(s);
}

static const variant_t variants[] = {
    {"workers", 2, 200, 32, 0, 0, false},
    {"inline", 0, 200, 32, 0, 0, false},
    {"workers, slow handler", 2, 200, 32, 300, 0, false},
    {"inline, slow handler", 0, 100, 32, 300, 0, false},
    {"workers, queue of 8", 2, 1000, 32, 20, 8, false},
    {"workers, one frame per write", 2, 300, 16, 0, 0, true},
    {"workers, 16 KiB replies past high water", 2, 100, 16384, 0, 0, false},
    {"inline, 16 KiB replies past high water", 0, 100, 16384, 0, 0, false},
};

static void t11_half_close(void **state)
{
    const variant_t *v = *state;
    run_variant(v);
}

int main(void)
{
    struct CMUnitTest tests[sizeof(variants) / sizeof(variants[0])];
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        tests[i] = (struct CMUnitTest){
            .name = variants[i].name,
            .test_func = t11_half_close,
            .initial_state = (void *)&variants[i],
        };
    }
    return _cmocka_run_group_tests(
        "t11_half_close", tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}
