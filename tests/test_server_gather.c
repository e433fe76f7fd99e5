/*
 * Replies that take a short cut: those of inline handlers
 * (WorkerPoolSize 0), which leave in one write per read without passing
 * through the connection's output buffer when they can, and those a
 * worker's handlers send while it runs a batch of several messages,
 * which are staged without the lock and handed over once. Whatever mix
 * of replies a handler sends (empty, small, pointed into the read
 * buffer, larger than the gather, more than its vector holds, more than
 * the staging flushes at), whatever the socket refuses, and whatever
 * ends the connection meanwhile, the peer sees exactly the frames sent,
 * in order, and the output limits still count them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000

/* Requests: REPLY_MIX asks for the mix of replies below; the payload is
   the request's sequence number (4 bytes) then filler that the replies
   point into. */
#define REPLY_MIX 7u
#define REQ_PAYLOAD 3000u
/* Replies per request: more than the gather's 64 vector entries. */
#define REPLIES 90u
#define BIG_REPLY 9000u /* larger than the gather's scratch */

/* Filled once, before any server runs (the handlers only read it). */
static uint8_t big_reply[BIG_REPLY];

static int fill_big_reply(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < BIG_REPLY; i++)
        big_reply[i] = (uint8_t)(i * 13u + 5u);
    return 0;
}

/* Reply k of request seq: its ID and where its bytes come from. */
static uint32_t reply_id(uint32_t seq, uint32_t k)
{
    return seq * 1000u + k;
}

/* Sizes cycle through: empty, small, a slice of the request (long enough
   to be pointed at), a short slice, a slice just long enough to be
   pointed at, the big static buffer. */
static uint32_t reply_len(uint32_t k)
{
    static const uint32_t lens[] = {0, 12, 2000, 40, 900, BIG_REPLY};
    return lens[k % (sizeof(lens) / sizeof(lens[0]))];
}

static const uint8_t *reply_data(const uint8_t *req, uint32_t k)
{
    uint32_t len = reply_len(k);
    if (len == BIG_REPLY)
        return big_reply;
    return req + 4 + (k * 37u) % (REQ_PAYLOAD - 4 - 2000);
}

/* The number of replies request seq asks for. The first 1,500 ask for
   a few (3 KB), which stay in the gather, so that the socket fills up
   (loopback takes about 3 MB) while they are gathered and a write takes
   only part of them; after those, every eighth asks for more than the
   gather holds. */
static uint32_t replies_of(uint32_t seq)
{
    return seq >= 1500 && seq % 8 == 7 ? REPLIES : 5;
}

static void mix_handle(zinx_request_t *req, void *udata)
{
    (void)udata;
    const uint8_t *d = zinx_request_data(req);
    uint32_t seq;
    memcpy(&seq, d, 4);
    for (uint32_t k = 0; k < replies_of(seq); k++)
        if (zinx_conn_send_msg(zinx_request_conn(req), reply_id(seq, k),
                               reply_data(d, k), reply_len(k)) != 0)
            return;
}

static void fill_request(uint8_t *p, uint32_t seq)
{
    memcpy(p, &seq, 4);
    for (uint32_t i = 4; i < REQ_PAYLOAD; i++)
        p[i] = (uint8_t)(i * 7u + seq);
}

/* hard_limit 0: MaxPacketSize 16 KiB, no output limit; else
   MaxPacketSize 2,048, OutputHighWater 1,024 and no soft limit. */
static tf_server_t *start_server(uint32_t workers, uint32_t hard_limit,
                                 zinx_handler_fn handle)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = workers;
    cfg.io_threads = 1;
    cfg.max_packet_size = 16384;
    cfg.output_hard_limit = hard_limit;
    if (hard_limit != 0) {
        cfg.max_packet_size = 2048;
        cfg.output_high_water = 1024;
        cfg.output_soft_limit = 0;
    }
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = handle};
    assert_int_equal(zinx_server_add_router(ts->srv, REPLY_MIX, &r), 0);
    zinx_router_t echo = {.handle = tf_echo};
    assert_int_equal(zinx_server_add_router(ts->srv, TC_ECHO_ID, &echo), 0);
    assert_int_equal(tf_server_start(ts), 0);
    return ts;
}

static tf_server_t *start_inline(uint32_t hard_limit, zinx_handler_fn handle)
{
    return start_server(0, hard_limit, handle);
}

/* Checks the frames answering request seq, as the client reads them. */
static void expect_replies(int fd, uint32_t seq)
{
    uint8_t req[REQ_PAYLOAD];
    fill_request(req, seq);
    static uint8_t got[BIG_REPLY];
    for (uint32_t k = 0; k < replies_of(seq); k++) {
        uint32_t id = 0, len = 0;
        int rc = tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO);
        assert_int_equal(rc, 0);
        assert_int_equal(id, reply_id(seq, k));
        assert_int_equal(len, reply_len(k));
        assert_memory_equal(got, reply_data(req, k), len);
    }
}

enum { REQS = 3000 };

/* Sends the requests from a thread of its own: the client reads only
   after a pause, and the server must not wait for it meanwhile. */
static atomic_uint requests_sent;

static void *send_requests(void *arg)
{
    int fd = *(int *)arg;
    uint8_t req[REQ_PAYLOAD];
    for (uint32_t seq = 0; seq < REQS; seq++) {
        fill_request(req, seq);
        if (tc_send_frame(fd, TLV, REPLY_MIX, req, REQ_PAYLOAD, T_IO) != 0)
            return (void *)1;
        atomic_store(&requests_sent, seq + 1);
        /* Paced, so that most reads hold one request and its replies fit
           the gather: the socket fills up while they are gathered. */
        if (seq % 4 == 0)
            tf_sleep_us(100);
    }
    return NULL;
}

/* Pipelined requests while the client does not read at first: the
   socket soon takes only part of a write, and the rest waits in the
   output buffer behind what was written, never ahead of it. */
static void mixed_replies_keep_order(uint32_t workers)
{
    atomic_store(&requests_sent, 0);
    tf_server_t *ts = start_server(workers, 0, mix_handle);
    tc_opts_t o = {.rcvbuf = 4096};
    int fd = tc_connect_opts(ts->port, &o);
    assert_true(fd >= 0);
    pthread_t sender;
    assert_int_equal(pthread_create(&sender, NULL, send_requests, &fd), 0);
    /* Read nothing while the first 1,500 requests go out, or until
       the sender is stuck because the server stopped reading (its
       output backed up, which is what this test is after). */
    unsigned last = 0;
    for (int still = 0; still < 20 && atomic_load(&requests_sent) < 1500;) {
        tf_sleep_ms(10);
        unsigned now = atomic_load(&requests_sent);
        still = now == last ? still + 1 : 0;
        last = now;
    }
    for (uint32_t seq = 0; seq < REQS; seq++)
        expect_replies(fd, seq);
    void *ret = (void *)1;
    assert_int_equal(tf_join(sender, T_IO, &ret), 0);
    assert_null(ret);
    /* Still usable afterwards. */
    assert_int_equal(tc_echo_call(fd, TLV, "after", 5, T_IO), 0);
    tc_close(fd);
    tf_server_free(ts);
}

static void test_mixed_replies_keep_order(void **state)
{
    (void)state;
    mixed_replies_keep_order(0);
}

/* The same with workers: batches of several requests stage their
   replies (the big ones pass the staging's flush size), and the output
   backs up until the worker parks. */
static void test_staged_replies_keep_order(void **state)
{
    (void)state;
    mixed_replies_keep_order(2);
}

/* Sends one reply, then closes at once: close_now drops unsent output,
   gathered replies included. */
static void reply_then_close_now(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *c = zinx_request_conn(req);
    zinx_conn_send_msg(c, 5, "dropped", 7);
    zinx_conn_close_now(c);
    /* After close_now nothing more is taken. */
    if (zinx_conn_send_msg(c, 6, "late", 4) != ZINX_ECLOSED)
        zinx_conn_send_msg(c, 7, "wrong", 5);
}

static void test_close_now_drops_gathered(void **state)
{
    (void)state;
    tf_server_t *ts = start_inline(0, reply_then_close_now);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    assert_int_equal(tc_send_frame(fd, TLV, REPLY_MIX, "x", 1, T_IO), 0);
    size_t discarded = 1;
    assert_int_equal(tc_wait_closed(fd, T_IO, &discarded), 0);
    assert_int_equal(discarded, 0);
    tc_close(fd);
    tf_server_free(ts);
}

/* Replies, then a graceful close from the same handler: the replies go
   out before the end of stream. */
static void reply_then_close(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *c = zinx_request_conn(req);
    zinx_conn_send_msg(c, 5, "first", 5);
    zinx_conn_send_msg(c, 6, big_reply, BIG_REPLY);
    zinx_conn_send_msg(c, 7, "last", 4);
    zinx_conn_close(c);
}

static void test_graceful_close_flushes_gathered(void **state)
{
    (void)state;
    tf_server_t *ts = start_inline(0, reply_then_close);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    assert_int_equal(tc_send_frame(fd, TLV, REPLY_MIX, "x", 1, T_IO), 0);
    static uint8_t got[BIG_REPLY];
    uint32_t id, len;
    assert_int_equal(tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO),
                     0);
    assert_int_equal(id, 5);
    assert_memory_equal(got, "first", 5);
    assert_int_equal(tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO),
                     0);
    assert_int_equal(id, 6);
    assert_int_equal(len, BIG_REPLY);
    assert_memory_equal(got, big_reply, BIG_REPLY);
    assert_int_equal(tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO),
                     0);
    assert_int_equal(id, 7);
    assert_int_equal(tc_expect_eof(fd, T_IO), 0);
    tc_close(fd);
    tf_server_free(ts);
}

/* Echo "a", echo "b" and a request that replies then closes, in one
   write to a worker: the staged echoes, the last reply, then the end. */
#define CLOSE_AFTER 8u

static void close_after_reply(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), CLOSE_AFTER, "bye", 3);
    zinx_conn_close(zinx_request_conn(req));
}

static void test_staged_replies_before_close(void **state)
{
    (void)state;
    zinx_router_t r = {.handle = close_after_reply};
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = 2;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    assert_int_equal(zinx_server_add_router(s, CLOSE_AFTER, &r), 0);
    int port = tf_start_or_fail(s);
    for (int round = 0; round < 50; round++) {
        int fd = tc_connect(port);
        assert_true(fd >= 0);
        uint8_t wire[64];
        size_t n = 0;
        n += frame_encode(TLV, TC_ECHO_ID, "a", 1, wire + n);
        n += frame_encode(TLV, TC_ECHO_ID, "b", 1, wire + n);
        n += frame_encode(TLV, CLOSE_AFTER, NULL, 0, wire + n);
        assert_int_equal(tc_send_raw(fd, wire, n, T_IO), 0);
        uint8_t got[16];
        uint32_t id, len;
        assert_int_equal(
            tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO), 0);
        assert_true(id == TC_ECHO_ID && len == 1 && got[0] == 'a');
        assert_int_equal(
            tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO), 0);
        assert_true(id == TC_ECHO_ID && len == 1 && got[0] == 'b');
        assert_int_equal(
            tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO), 0);
        assert_true(id == CLOSE_AFTER && len == 3);
        assert_int_equal(tc_expect_eof(fd, T_IO), 0);
        tc_close(fd);
    }
    assert_int_equal(tf_stop_wait(s, T_IO), 0);
    zinx_server_free(s);
}

/* Three 2,000-byte replies in one handler against OutputHardLimit 5,000:
   the gathered ones count, so the third is refused and the connection
   closed as a slow reader. */
static int hard_rc[3];

static void three_replies(zinx_request_t *req, void *udata)
{
    (void)udata;
    static uint8_t buf[2000];
    for (int i = 0; i < 3; i++)
        hard_rc[i] =
            zinx_conn_send_msg(zinx_request_conn(req), 9, buf, sizeof(buf));
}

static void test_hard_limit_counts_gathered(void **state)
{
    (void)state;
    tf_server_t *ts = start_inline(5000, three_replies);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    assert_int_equal(tc_send_frame(fd, TLV, REPLY_MIX, "x", 1, T_IO), 0);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(slow_readers), 1, T_IO), 1);
    assert_int_equal(hard_rc[0], 0);
    assert_int_equal(hard_rc[1], 0);
    assert_int_equal(hard_rc[2], ZINX_ENOBUFS);
    tc_close(fd);
    tf_server_free(ts);
}

/* Two good frames and an oversized header in one write, with a close
   notice configured: both echoes, then the notice, then the end. */
static void test_oversize_notice_after_gathered(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = 0;
    cfg.io_threads = 1;
    cfg.max_packet_size = 1024;
    cfg.close_notice_msg_id = 77;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    uint8_t wire[64];
    size_t n = 0;
    n += frame_encode(TLV, TC_ECHO_ID, "one", 3, wire + n);
    n += frame_encode(TLV, TC_ECHO_ID, "two", 3, wire + n);
    frame_put_u32(wire + n, TC_ECHO_ID); /* a header announcing 5,000 */
    frame_put_u32(wire + n + 4, 5000);
    n += 8;
    assert_int_equal(tc_send_raw(fd, wire, n, T_IO), 0);
    uint8_t got[256];
    uint32_t id, len;
    assert_int_equal(tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO),
                     0);
    assert_memory_equal(got, "one", 3);
    assert_int_equal(tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO),
                     0);
    assert_memory_equal(got, "two", 3);
    assert_int_equal(tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, T_IO),
                     0);
    assert_int_equal(id, 77);
    assert_int_equal(tc_expect_eof(fd, T_IO), 0);
    tc_close(fd);
    assert_int_equal(tf_stop_wait(s, T_IO), 0);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_replies_keep_order),
        cmocka_unit_test(test_staged_replies_keep_order),
        cmocka_unit_test(test_staged_replies_before_close),
        cmocka_unit_test(test_close_now_drops_gathered),
        cmocka_unit_test(test_graceful_close_flushes_gathered),
        cmocka_unit_test(test_hard_limit_counts_gathered),
        cmocka_unit_test(test_oversize_notice_after_gathered),
    };
    return cmocka_run_group_tests(tests, fill_big_reply, NULL);
}
