/*
 * A program's own codec (zinx_server_set_codec): the set-up checks, a
 * codec with a trailer and per-connection state through a real server
 * and a client endpoint, its bad frames under BadFramePolicy, a state_new
 * that refuses, a decoder that breaks its contract, and the library's
 * builders installed in code.
 *
 * The test codec, "lv16": [Len u16 BE][ID u8][payload Len bytes][Sum u8],
 * Sum the low byte of the payload's byte sum.
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

typedef struct lv16 {
    atomic_int made, freed, decodes;
    bool refuse; /* state_new fails */
    bool broken; /* decode claims more bytes than it was given */
} lv16_t;

typedef struct lv16_state {
    uint32_t frames; /* decoded on this connection (I/O thread only) */
} lv16_state_t;

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

static int lv16_decode(void *udata, void *state, uint32_t max_len,
                       const uint8_t *buf, size_t len, zinx_msg_t *msg,
                       size_t *used)
{
    lv16_t *u = udata;
    lv16_state_t *st = state;
    assert_non_null(st);
    atomic_fetch_add(&u->decodes, 1);
    if (len < 3) {
        *used = 3;
        return ZINX_CODEC_MORE;
    }
    uint32_t plen = (uint32_t)buf[0] << 8 | buf[1];
    *used = 4u + plen;
    if (plen > max_len)
        return ZINX_EMSGSIZE;
    if (len < *used)
        return ZINX_CODEC_MORE;
    if (sum8(buf + 3, plen) != buf[3 + plen])
        return ZINX_EPROTO; /* skippable: *used is the frame */
    if (u->broken) {
        *used = len + 10;
        return ZINX_CODEC_FRAME;
    }
    msg->id = buf[2];
    msg->len = plen;
    msg->data = buf + 3;
    return ZINX_CODEC_FRAME;
}

static int lv16_encode(void *udata, uint32_t id, const void *data, uint32_t len,
                       uint8_t *out)
{
    (void)udata;
    if (id > 255)
        return ZINX_EINVAL;
    if (len > 65535)
        return ZINX_EMSGSIZE;
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
    out[2] = (uint8_t)id;
    if (len > 0)
        memcpy(out + 3, data, len);
    out[3 + len] = sum8(out + 3, len);
    return 0;
}

static int lv16_state_new(void *udata, void **state)
{
    lv16_t *u = udata;
    if (u->refuse)
        return ZINX_ENOMEM;
    lv16_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ZINX_ENOMEM;
    atomic_fetch_add(&u->made, 1);
    *state = st;
    return 0;
}

static void lv16_state_free(void *udata, void *state)
{
    lv16_t *u = udata;
    atomic_fetch_add(&u->freed, 1);
    free(state);
}

static zinx_codec_t lv16_codec(lv16_t *u)
{
    return (zinx_codec_t){.name = "lv16",
                          .overhead = 4,
                          .decode = lv16_decode,
                          .encode = lv16_encode,
                          .state_new = lv16_state_new,
                          .state_free = lv16_state_free,
                          .udata = u};
}

static size_t lv16_frame(uint8_t *out, uint8_t id, const void *data,
                         uint16_t len, bool bad)
{
    lv16_encode(NULL, id, data, len, out);
    if (bad)
        out[3 + len] ^= 1;
    return 4u + len;
}

static void expect_lv16(int fd, uint8_t id, const void *data, uint16_t len)
{
    uint8_t f[4 + 65535];
    TF_ASSERT_RC(tc_recv_raw(fd, f, 4u + len, tf_ms(T_IO)), 0);
    assert_int_equal(f[0] << 8 | f[1], len);
    assert_int_equal(f[2], id);
    assert_memory_equal(f + 3, data, len);
    assert_int_equal(f[3 + len], sum8(f + 3, len));
}

static void test_set_codec_checks(void **state)
{
    (void)state;
    lv16_t u = {0};
    zinx_codec_t c = lv16_codec(&u);
    tf_server_t *ts = tf_server_new(NULL);
    assert_non_null(ts);
    assert_int_equal(zinx_server_set_codec(NULL, &c), ZINX_EINVAL);
    zinx_codec_t bad = c;
    bad.decode = NULL;
    assert_int_equal(zinx_server_set_codec(ts->srv, &bad), ZINX_EINVAL);
    bad = c;
    bad.encode = NULL;
    assert_int_equal(zinx_server_set_codec(ts->srv, &bad), ZINX_EINVAL);
    bad = c;
    bad.overhead = 65537;
    assert_int_equal(zinx_server_set_codec(ts->srv, &bad), ZINX_EINVAL);
    bad = c;
    bad.state_free = NULL;
    assert_int_equal(zinx_server_set_codec(ts->srv, &bad), ZINX_EINVAL);
    assert_int_equal(zinx_server_set_codec(ts->srv, &c), 0);
    assert_int_equal(zinx_server_set_codec(ts->srv, NULL), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    assert_int_equal(zinx_server_set_codec(ts->srv, &c), ZINX_ESTATE);
    tf_server_free(ts);
}

static tf_server_t *lv16_server(lv16_t *u, uint32_t workers)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = workers;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_codec_t c = lv16_codec(u);
    TF_ASSERT_RC(zinx_server_set_codec(ts->srv, &c), 0);
    zinx_router_t r = {.handle = tf_echo};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 5, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

/* Frames in, replies out in the codec's format; a bad sum is dropped;
   every connection's state is made and freed once. */
static void test_user_codec_server(void **state)
{
    (void)state;
    lv16_t u = {0};
    for (uint32_t workers = 0; workers <= 2; workers += 2) {
        tf_server_t *ts = lv16_server(&u, workers);
        for (int conn = 0; conn < 3; conn++) {
            int fd = tc_connect(ts->port);
            assert_true(fd >= 0);
            uint8_t buf[700];
            uint8_t big[300];
            memset(big, 0x5A, sizeof(big));
            size_t n = lv16_frame(buf, 5, "hello", 5, false);
            n += lv16_frame(buf + n, 5, "nope", 4, true);
            n += lv16_frame(buf + n, 5, big, 300, false);
            n += lv16_frame(buf + n, 5, NULL, 0, false);
            TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
            expect_lv16(fd, 5, "hello", 5);
            expect_lv16(fd, 5, big, 300);
            expect_lv16(fd, 5, NULL, 0);
            tc_close(fd);
        }
        assert_int_equal(
            tf_wait_stat(ts->srv, TF_STAT(bad_frames), 3, tf_ms(T_IO)), 3);
        tf_server_free(ts);
    }
    assert_int_equal(atomic_load(&u.made), 6);
    assert_int_equal(atomic_load(&u.freed), 6);
    assert_true(atomic_load(&u.decodes) > 0);
}

/* A state_new that fails refuses the connection. */
static void test_user_codec_refuses(void **state)
{
    (void)state;
    lv16_t u = {.refuse = true};
    tf_server_t *ts = lv16_server(&u, 0);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    TF_ASSERT_RC(tc_wait_closed(fd, tf_ms(T_IO), NULL), 0);
    assert_true(
        tf_wait_stat_ge(ts->srv, TF_STAT(out_of_memory), 1, tf_ms(T_IO)) >= 1);
    tc_close(fd);
    tf_server_free(ts);
    assert_int_equal(atomic_load(&u.made), 0);
    assert_int_equal(atomic_load(&u.freed), 0);
}

/* A decoder that claims bytes it was not given ends the connection
   (ZINX_EPROTO) instead of reading past them. */
static void test_user_codec_broken(void **state)
{
    (void)state;
    lv16_t u = {.broken = true};
    tf_server_t *ts = lv16_server(&u, 0);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint8_t buf[16];
    size_t n = lv16_frame(buf, 5, "x", 1, false);
    TF_ASSERT_RC(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_wait_closed(fd, tf_ms(T_IO), NULL), 0);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(bad_frames), 1, tf_ms(T_IO)),
                     1);
    tc_close(fd);
    tf_server_free(ts);
    assert_int_equal(atomic_load(&u.made), atomic_load(&u.freed));
}

/* ---- the client side ------------------------------------------------------
 */

static atomic_int client_got;
static char client_data[64];

static void on_client_reply(zinx_request_t *req, void *udata)
{
    (void)udata;
    uint32_t len = zinx_request_data_len(req);
    if (len < sizeof(client_data))
        memcpy(client_data, zinx_request_data(req), len);
    atomic_fetch_add(&client_got, 1);
}

/* A client endpoint with the same codec talks to the server in it. */
static void test_user_codec_client(void **state)
{
    (void)state;
    lv16_t su = {0}, cu = {0};
    tf_server_t *ts = lv16_server(&su, 2);
    zinx_config_t cfg;
    tf_config(&cfg);
    zinx_server_t *cli = zinx_client_new(&cfg);
    assert_non_null(cli);
    zinx_codec_t c = lv16_codec(&cu);
    TF_ASSERT_RC(zinx_server_set_codec(cli, &c), 0);
    zinx_router_t r = {.handle = on_client_reply};
    TF_ASSERT_RC(zinx_server_add_router(cli, 5, &r), 0);
    TF_ASSERT_RC(zinx_server_start(cli), 0);
    zinx_dialer_t *d;
    TF_ASSERT_RC(zinx_server_dial(cli, "127.0.0.1", ts->port, NULL, &d), 0);
    zinx_conn_t *conn;
    TF_ASSERT_RC(zinx_dialer_wait(d, (uint32_t)tf_ms(T_IO), &conn), 0);
    TF_ASSERT_RC(zinx_conn_send_msg(conn, 5, "from client", 11), 0);
    assert_int_equal(zinx_conn_send_msg(conn, 300, "x", 1), ZINX_EINVAL);
    assert_true(tf_wait_atomic_ge(&client_got, 1, tf_ms(T_IO)) >= 1);
    assert_memory_equal(client_data, "from client", 11);
    zinx_conn_unref(conn);
    zinx_dialer_close(d);
    zinx_server_free(cli);
    tf_server_free(ts);
    assert_int_equal(atomic_load(&cu.made), 1);
    assert_int_equal(atomic_load(&cu.freed), 1);
}

/* ---- the library's builders, in code ----------------------------------- */

/* The HTLV preset of the length-field decoder, set in code: the handler
   (ID 0) gets the whole frame; the reply is LTV (PacketFormat). */
static void test_builders_in_code(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.packet_format = ZINX_FORMAT_LTV_LE;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    static const zinx_length_field_t lf = {
        .order = ZINX_BIG_ENDIAN, .length = 1, .offset = 2, .adjustment = 2};
    zinx_codec_t c;
    TF_ASSERT_RC(zinx_codec_length_field(&lf, ZINX_FORMAT_LTV_LE, &c), 0);
    TF_ASSERT_RC(zinx_server_set_codec(ts->srv, &c), 0);
    zinx_router_t r = {.handle = tf_echo};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 0, &r), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    const uint8_t f[] = {0xA2, 0x14, 0x01, 0x01, 0xA3, 0xC8};
    TF_ASSERT_RC(tc_send_raw(fd, f, sizeof(f), tf_ms(T_IO)), 0);
    uint8_t buf[16];
    uint32_t id, len;
    TF_ASSERT_RC(tc_recv_frame(fd, ZINX_FORMAT_LTV_LE, &id, buf, sizeof(buf),
                               &len, tf_ms(T_IO)),
                 0);
    assert_int_equal(id, 0);
    assert_int_equal(len, sizeof(f));
    assert_memory_equal(buf, f, sizeof(f));
    tc_close(fd);
    tf_server_free(ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_codec_checks),
        cmocka_unit_test(test_user_codec_server),
        cmocka_unit_test(test_user_codec_refuses),
        cmocka_unit_test(test_user_codec_broken),
        cmocka_unit_test(test_user_codec_client),
        cmocka_unit_test(test_builders_in_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
