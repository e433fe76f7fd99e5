/*
 * The codecs through a real server: FrameDecoder "htlv_crc" and
 * "length_field" from the configuration, BadFramePolicy "drop" and
 * "close", malformed headers, the reply limits of HTLV, with handlers
 * inline (WorkerPoolSize 0) and on workers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define T_IO 10000

static size_t htlv(uint8_t *out, uint8_t head, uint8_t func, const void *body,
                   uint8_t len, bool bad)
{
    out[0] = head;
    out[1] = func;
    out[2] = len;
    if (len > 0)
        memcpy(out + 3, body, len);
    uint16_t crc = zinx_crc16_modbus(out, 3u + len);
    if (bad)
        crc ^= 0x0101;
    out[3 + len] = (uint8_t)crc;
    out[4 + len] = (uint8_t)(crc >> 8);
    return 5u + len;
}

/* Reads one HTLV reply and checks Head 0xA1, its CRC, func and body. */
static void expect_htlv(int fd, uint8_t func, const void *body, uint8_t len)
{
    uint8_t f[260];
    TF_ASSERT_RC(tc_recv_raw(fd, f, 3, tf_ms(T_IO)), 0);
    assert_int_equal(f[0], ZINX_HTLV_REPLY_HEAD);
    assert_int_equal(f[1], func);
    assert_int_equal(f[2], len);
    TF_ASSERT_RC(tc_recv_raw(fd, f + 3, (size_t)len + 2, tf_ms(T_IO)), 0);
    assert_memory_equal(f + 3, body, len);
    uint16_t crc = zinx_crc16_modbus(f, 3u + len);
    assert_int_equal(f[3 + len], crc & 0xFF);
    assert_int_equal(f[4 + len], crc >> 8);
}

static tf_server_t *htlv_server(uint32_t workers, uint32_t policy)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = workers;
    cfg.frame_decoder = ZINX_DECODER_HTLV_CRC;
    cfg.bad_frame_policy = policy;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = tf_echo};
    const uint32_t ids[] = {0x10, 0x13, 0x14, 0x15, 0x16};
    for (size_t i = 0; i < 5; i++)
        TF_ASSERT_RC(zinx_server_add_router(ts->srv, ids[i], &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

/* Zinx's function codes, all in one write: five HTLV replies. */
static void htlv_roundtrip(uint32_t workers)
{
    tf_server_t *ts = htlv_server(workers, ZINX_BAD_FRAME_DROP);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    const uint8_t body10[14] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    const uint8_t body13[6] = {0, 0, 0x12, 0x34, 1, 0};
    const uint8_t body14[1] = {1};
    uint8_t body16[255];
    for (int i = 0; i < 255; i++)
        body16[i] = (uint8_t)(i * 3);
    uint8_t buf[600];
    size_t n = 0;
    n += htlv(buf + n, 0xA2, 0x10, body10, 14, false);
    n += htlv(buf + n, 0xA2, 0x13, body13, 6, false);
    n += htlv(buf + n, 0xA2, 0x14, body14, 1, false);
    n += htlv(buf + n, 0xA2, 0x15, NULL, 0, false);
    n += htlv(buf + n, 0xA2, 0x16, body16, 255, false);
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    expect_htlv(fd, 0x10, body10, 14);
    expect_htlv(fd, 0x13, body13, 6);
    expect_htlv(fd, 0x14, body14, 1);
    expect_htlv(fd, 0x15, NULL, 0);
    expect_htlv(fd, 0x16, body16, 255);
    /* Byte by byte too. */
    for (size_t i = 0; i < 11; i++)
        TF_ASSERT_RC(tc_send_raw(fd, buf + 19 + i, 1, tf_ms(T_IO)), 0);
    expect_htlv(fd, 0x13, body13, 6);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(bad_frames)), 0);
    tc_close(fd);
    tf_server_free(ts);
}

static void test_htlv_roundtrip_inline(void **state)
{
    (void)state;
    htlv_roundtrip(0);
}

static void test_htlv_roundtrip_workers(void **state)
{
    (void)state;
    htlv_roundtrip(2);
}

/* Good, bad CRC, good: the bad frame is dropped and counted, the
   connection goes on. */
static void htlv_drop(uint32_t workers)
{
    tf_server_t *ts = htlv_server(workers, ZINX_BAD_FRAME_DROP);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint8_t buf[64];
    size_t n = 0;
    n += htlv(buf + n, 0xA2, 0x10, "abc", 3, false);
    n += htlv(buf + n, 0xA2, 0x13, "bad", 3, true);
    n += htlv(buf + n, 0xA2, 0x14, "ok", 2, false);
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    expect_htlv(fd, 0x10, "abc", 3);
    expect_htlv(fd, 0x14, "ok", 2);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(bad_frames), 1, tf_ms(T_IO)),
                     1);
    /* Bad frames only, then a good one. */
    n = htlv(buf, 0xA2, 0x13, "x", 1, true);
    n += htlv(buf + n, 0xA2, 0x13, "y", 1, true);
    n += htlv(buf + n, 0xA2, 0x15, NULL, 0, false);
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    expect_htlv(fd, 0x15, NULL, 0);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(bad_frames), 3, tf_ms(T_IO)),
                     3);
    tc_close(fd);
    tf_server_free(ts);
}

static void test_htlv_drop_inline(void **state)
{
    (void)state;
    htlv_drop(0);
}

static void test_htlv_drop_workers(void **state)
{
    (void)state;
    htlv_drop(2);
}

/* BadFramePolicy "close": the frames before are answered, then EOF. */
static void test_htlv_close(void **state)
{
    (void)state;
    tf_server_t *ts = htlv_server(2, ZINX_BAD_FRAME_CLOSE);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint8_t buf[64];
    size_t n = 0;
    n += htlv(buf + n, 0xA2, 0x10, "abc", 3, false);
    n += htlv(buf + n, 0xA2, 0x13, "bad", 3, true);
    n += htlv(buf + n, 0xA2, 0x14, "never", 5, false);
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    expect_htlv(fd, 0x10, "abc", 3);
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(T_IO)), 0);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(bad_frames), 1, tf_ms(T_IO)),
                     1);
    tc_close(fd);
    tf_server_free(ts);
}

/* What send returns for an ID or a payload HTLV cannot carry. */
static atomic_int send_id_rc, send_len_rc;

static void send_limits(zinx_request_t *req, void *udata)
{
    (void)udata;
    static const uint8_t big[256];
    zinx_conn_t *c = zinx_request_conn(req);
    atomic_store(&send_id_rc, zinx_conn_send_msg(c, 256, "x", 1));
    atomic_store(&send_len_rc, zinx_conn_send_msg(c, 0x15, big, 256));
    zinx_conn_send_msg(c, 0x15, big, 255);
}

static void test_htlv_reply_limits(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.frame_decoder = ZINX_DECODER_HTLV_CRC;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = send_limits};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 0x15, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint8_t buf[8];
    size_t n = htlv(buf, 0xA2, 0x15, NULL, 0, false);
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    static const uint8_t zero[255];
    expect_htlv(fd, 0x15, zero, 255);
    assert_int_equal(atomic_load(&send_id_rc), ZINX_EINVAL);
    assert_int_equal(atomic_load(&send_len_rc), ZINX_EMSGSIZE);
    tc_close(fd);
    tf_server_free(ts);
}

/* A broadcast on an HTLV server is one HTLV frame (encoded once with the
   server's codec), and one the codec cannot frame is refused with the
   codec's own error, not reported as out of memory. */
static void test_htlv_broadcast(void **state)
{
    (void)state;
    tf_server_t *ts = htlv_server(2, ZINX_BAD_FRAME_DROP);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    /* Accepted once a request of it has been answered. */
    uint8_t buf[8];
    size_t n = htlv(buf, 0xA2, 0x15, NULL, 0, false);
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    expect_htlv(fd, 0x15, NULL, 0);
    const uint8_t body[3] = {7, 8, 9};
    assert_int_equal(zinx_server_broadcast(ts->srv, 0x14, body, 3), 1);
    expect_htlv(fd, 0x14, body, 3);
    assert_int_equal(zinx_server_broadcast(ts->srv, 0x100, body, 3),
                     ZINX_EINVAL);
    uint64_t id = 1;
    assert_int_equal(zinx_connmgr_ids(zinx_server_connmgr(ts->srv), &id, 1), 1);
    static const uint8_t big[256];
    assert_int_equal(zinx_server_notify(ts->srv, &id, 1, 0x14, big, 256),
                     ZINX_EMSGSIZE);
    /* Nothing of the refused ones reached the peer: the next frame is
       the next broadcast. */
    assert_int_equal(zinx_server_notify(ts->srv, &id, 1, 0x16, body, 1), 1);
    expect_htlv(fd, 0x16, body, 1);
    tc_close(fd);
    tf_server_free(ts);
}

/* ---- length field ------------------------------------------------------- */

/* Zinx's TLV preset, stripping the 8-byte header: the handler (ID 0)
   gets the payload; frames above 64 bytes are refused. */
static tf_server_t *lf_server(uint32_t workers, uint32_t policy, int adj,
                              uint32_t notice)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = workers;
    cfg.frame_decoder = ZINX_DECODER_LENGTH_FIELD;
    cfg.length_field_offset = 4;
    cfg.length_field_length = 4;
    cfg.length_field_strip = 8;
    cfg.length_field_adjustment = adj;
    cfg.length_field_max_frame_length = 64;
    cfg.bad_frame_policy = policy;
    cfg.close_notice_msg_id = notice;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = tf_echo};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 0, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

static size_t tlv(uint8_t *out, uint32_t id, const void *data, uint32_t len)
{
    frame_put_u32(out, id);
    frame_put_u32(out + 4, len);
    if (len > 0)
        memcpy(out + 8, data, len);
    return 8u + len;
}

/* A reply: TLV (PacketFormat), ID 0, the payload. */
static void expect_tlv(int fd, const void *data, uint32_t len)
{
    uint8_t buf[128];
    uint32_t id, rlen;
    TF_ASSERT_RC(tc_recv_frame(fd, ZINX_FORMAT_TLV, &id, buf, sizeof(buf),
                               &rlen, tf_ms(T_IO)),
                 0);
    assert_int_equal(id, 0);
    assert_int_equal(rlen, len);
    assert_memory_equal(buf, data, len);
}

/* Good, a 1000-byte frame (above 64) sent in pieces, good: the big one
   is skipped as it arrives. */
static void lf_drop(uint32_t workers)
{
    tf_server_t *ts = lf_server(workers, ZINX_BAD_FRAME_DROP, 0, 0);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint8_t buf[64];
    size_t n = tlv(buf, 7, "first", 5);
    n += tlv(buf + n, 7, NULL, 0);    /* a header only ... */
    frame_put_u32(buf + n - 4, 1000); /* ... announcing 1000 bytes */
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    expect_tlv(fd, "first", 5);
    uint8_t junk[250];
    memset(junk, 0xEE, sizeof(junk));
    for (int i = 0; i < 4; i++)
        TF_ASSERT_RC(tc_send_raw(fd, junk, sizeof(junk), tf_ms(T_IO)), 0);
    n = tlv(buf, 7, "after", 5);
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    expect_tlv(fd, "after", 5);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(bad_frames)), 1);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(oversize)), 0);
    /* At the limit (64-byte frame) passes; 65 is dropped; all in one
       write with a good frame behind. */
    uint8_t big[200];
    uint8_t pay[57];
    memset(pay, 'p', sizeof(pay));
    n = tlv(big, 1, pay, 56);
    n += tlv(big + n, 1, pay, 57);
    n += tlv(big + n, 1, "end", 3);
    TF_ASSERT_RC(tc_send_raw(fd, big, n, tf_ms(T_IO)), 0);
    expect_tlv(fd, pay, 56);
    expect_tlv(fd, "end", 3);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(bad_frames), 2, tf_ms(T_IO)),
                     2);
    tc_close(fd);
    tf_server_free(ts);
}

static void test_lf_drop_inline(void **state)
{
    (void)state;
    lf_drop(0);
}

static void test_lf_drop_workers(void **state)
{
    (void)state;
    lf_drop(2);
}

/* "close": a frame above the limit closes as one above MaxPacketSize,
   with the close notice (CloseNoticeMsgID) behind the earlier replies. */
static void test_lf_close(void **state)
{
    (void)state;
    tf_server_t *ts = lf_server(0, ZINX_BAD_FRAME_CLOSE, 0, 999);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint8_t buf[64];
    size_t n = tlv(buf, 7, "first", 5);
    n += tlv(buf + n, 7, NULL, 0);
    frame_put_u32(buf + n - 4, 1000);
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    expect_tlv(fd, "first", 5);
    uint8_t note[128];
    uint32_t id, len;
    TF_ASSERT_RC(tc_recv_frame(fd, ZINX_FORMAT_TLV, &id, note, sizeof(note),
                               &len, tf_ms(T_IO)),
                 0);
    assert_int_equal(id, 999);
    TF_ASSERT_RC(tc_expect_eof(fd, tf_ms(T_IO)), 0);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(oversize), 1, tf_ms(T_IO)),
                     1);
    tc_close(fd);
    tf_server_free(ts);
}

/* Malformed (a negative length after adjustment) closes under either
   policy, counted in bad_frames. */
static void lf_malformed(uint32_t policy)
{
    tf_server_t *ts = lf_server(2, policy, -16, 0);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint8_t buf[64];
    /* raw 18: a frame of 18 - 16 + 8 bytes, "01" after the strip. */
    size_t n = tlv(buf, 7, "01", 2);
    frame_put_u32(buf + 4, 18);
    n += tlv(buf + n, 7, "abc", 3); /* raw 3: 3 - 16 + 8 < 0 */
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    expect_tlv(fd, "01", 2);
    TF_ASSERT_RC(tc_wait_closed(fd, tf_ms(T_IO), NULL), 0);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(bad_frames), 1, tf_ms(T_IO)),
                     1);
    tc_close(fd);
    tf_server_free(ts);
}

static void test_lf_malformed(void **state)
{
    (void)state;
    lf_malformed(ZINX_BAD_FRAME_DROP);
    lf_malformed(ZINX_BAD_FRAME_CLOSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_htlv_roundtrip_inline),
        cmocka_unit_test(test_htlv_roundtrip_workers),
        cmocka_unit_test(test_htlv_drop_inline),
        cmocka_unit_test(test_htlv_drop_workers),
        cmocka_unit_test(test_htlv_close),
        cmocka_unit_test(test_htlv_reply_limits),
        cmocka_unit_test(test_htlv_broadcast),
        cmocka_unit_test(test_lf_drop_inline),
        cmocka_unit_test(test_lf_drop_workers),
        cmocka_unit_test(test_lf_close),
        cmocka_unit_test(test_lf_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
