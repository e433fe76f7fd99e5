/*
 * The HTLV+CRC16 codec (zinx_codec_htlv_crc) and CRC-16/MODBUS.
 *
 * The vectors are device frames like those of Zinx's decoder example
 * (Head 0xA2, function codes 0x10, 0x13, 0x14, 0x15, 0x16), with bodies
 * and CRCs worked out here from the definition: the CRC below is a
 * bit-by-bit CRC-16/MODBUS written from the standard (reflected
 * polynomial 0xA001, initial 0xFFFF, no final XOR; check value of
 * "123456789" 0x4B37), independent of the library's table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zinx.h"

static uint16_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001)
                            : (uint16_t)(crc >> 1);
    }
    return crc;
}

typedef struct vec {
    uint8_t func;
    size_t len;        /* of the frame */
    uint8_t bytes[40]; /* the whole frame, CRC low byte first */
    uint16_t crc;
} vec_t;

static const vec_t vecs[] = {
    {0x10,
     19,
     {0xA2, 0x10, 0x0E, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
      0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xA1, 0x53},
     0x53A1},
    {0x13,
     11,
     {0xA2, 0x13, 0x06, 0x00, 0x00, 0x12, 0x34, 0x01, 0x00, 0x89, 0xA8},
     0xA889},
    {0x14, 6, {0xA2, 0x14, 0x01, 0x01, 0xA3, 0xC8}, 0xC8A3},
    {0x15, 5, {0xA2, 0x15, 0x00, 0xDE, 0xB2}, 0xB2DE},
    {0x16,
     21,
     {0xA2, 0x16, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
      0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x7E, 0xE0},
     0xE07E},
};
#define NVECS (sizeof(vecs) / sizeof(vecs[0]))

static int decode_n(const zinx_codec_t *c, uint32_t max, const uint8_t *buf,
                    size_t n, zinx_msg_t *m, size_t *used)
{
    uint8_t *q = malloc(n > 0 ? n : 1);
    assert_non_null(q);
    if (n > 0)
        memcpy(q, buf, n);
    *used = 12345;
    int rc = c->decode(c->udata, NULL, max, q, n, m, used);
    if (rc == ZINX_CODEC_FRAME && m->len > 0) {
        assert_true(m->data >= q && m->data + m->len <= q + n);
        m->data = buf + (m->data - q);
    }
    free(q);
    return rc;
}

static void test_crc16_modbus(void **state)
{
    (void)state;
    assert_int_equal(crc_bitwise((const uint8_t *)"123456789", 9), 0x4B37);
    assert_int_equal(zinx_crc16_modbus("123456789", 9), 0x4B37);
    assert_int_equal(zinx_crc16_modbus("", 0), 0xFFFF);
    uint8_t b[300];
    for (int i = 0; i < 256; i++) {
        b[0] = (uint8_t)i;
        assert_int_equal(zinx_crc16_modbus(b, 1), crc_bitwise(b, 1));
    }
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(b); i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (uint8_t)(x >> 16);
    }
    for (size_t n = 0; n <= sizeof(b); n += 7)
        assert_int_equal(zinx_crc16_modbus(b, n), crc_bitwise(b, n));
}

/* Each vector: its CRC by the definition, then decoded as ID = FuncCode,
   data = Body. */
static void test_vectors(void **state)
{
    (void)state;
    zinx_codec_t c;
    zinx_codec_htlv_crc(ZINX_HTLV_REPLY_HEAD, &c);
    assert_string_equal(c.name, "htlv_crc");
    assert_int_equal(c.overhead, 5);
    for (size_t i = 0; i < NVECS; i++) {
        const vec_t *v = &vecs[i];
        size_t body = v->len - 5;
        assert_int_equal(v->bytes[2], body);
        assert_int_equal(crc_bitwise(v->bytes, v->len - 2), v->crc);
        assert_int_equal(v->bytes[v->len - 2], v->crc & 0xFF);
        assert_int_equal(v->bytes[v->len - 1], v->crc >> 8);
        zinx_msg_t m;
        size_t used;
        assert_int_equal(decode_n(&c, 4096, v->bytes, v->len, &m, &used),
                         ZINX_CODEC_FRAME);
        assert_int_equal(used, v->len);
        assert_int_equal(m.id, v->func);
        assert_int_equal(m.len, body);
        if (body > 0)
            assert_ptr_equal(m.data, v->bytes + 3);
    }
}

/* All five in one stream, cut at every byte. */
static void test_cut_at_every_byte(void **state)
{
    (void)state;
    zinx_codec_t c;
    zinx_codec_htlv_crc(ZINX_HTLV_REPLY_HEAD, &c);
    uint8_t s[256];
    size_t ends[NVECS], n = 0;
    for (size_t i = 0; i < NVECS; i++) {
        memcpy(s + n, vecs[i].bytes, vecs[i].len);
        n += vecs[i].len;
        ends[i] = n;
    }
    for (size_t cut = 0; cut <= n; cut++) {
        size_t off = 0, f = 0;
        for (;;) {
            zinx_msg_t m;
            size_t used;
            int rc = decode_n(&c, 4096, s + off, cut - off, &m, &used);
            if (rc == ZINX_CODEC_MORE) {
                size_t have = cut - off;
                size_t want = f < NVECS && have >= 3 ? ends[f] - off : 3;
                assert_int_equal(used, want);
                assert_true(used > have);
                break;
            }
            assert_int_equal(rc, ZINX_CODEC_FRAME);
            assert_int_equal(m.id, vecs[f].func);
            assert_int_equal(off + used, ends[f]);
            off += used;
            f++;
        }
        size_t whole = 0;
        while (whole < NVECS && ends[whole] <= cut)
            whole++;
        assert_int_equal(f, whole);
    }
}

/* Any changed byte but Len fails the CRC, with the frame's size (so the
   drop policy can skip it). A changed Len makes another frame size. */
static void test_bad_crc(void **state)
{
    (void)state;
    zinx_codec_t c;
    zinx_codec_htlv_crc(ZINX_HTLV_REPLY_HEAD, &c);
    for (size_t i = 0; i < NVECS; i++) {
        const vec_t *v = &vecs[i];
        for (size_t at = 0; at < v->len; at++) {
            if (at == 2)
                continue;
            for (int bit = 0; bit < 8; bit++) {
                uint8_t b[40];
                memcpy(b, v->bytes, v->len);
                b[at] ^= (uint8_t)(1u << bit);
                zinx_msg_t m;
                size_t used;
                int rc = decode_n(&c, 4096, b, v->len, &m, &used);
                /* Head and FuncCode are covered by the CRC too. */
                assert_int_equal(rc, ZINX_EPROTO);
                assert_int_equal(used, v->len);
            }
        }
    }
}

/* Len at the limit and above: refused from the header, with the size. */
static void test_limits(void **state)
{
    (void)state;
    zinx_codec_t c;
    zinx_codec_htlv_crc(ZINX_HTLV_REPLY_HEAD, &c);
    uint8_t f[260];
    f[0] = 0xA2;
    f[1] = 0x7F;
    f[2] = 255;
    for (int i = 0; i < 255; i++)
        f[3 + i] = (uint8_t)i;
    uint16_t crc = crc_bitwise(f, 258);
    f[258] = (uint8_t)crc;
    f[259] = (uint8_t)(crc >> 8);
    zinx_msg_t m;
    size_t used;
    assert_int_equal(decode_n(&c, 255, f, 260, &m, &used), ZINX_CODEC_FRAME);
    assert_int_equal(used, 260);
    assert_int_equal(m.len, 255);
    assert_int_equal(decode_n(&c, 254, f, 3, &m, &used), ZINX_EMSGSIZE);
    assert_int_equal(used, 260);
    assert_int_equal(decode_n(&c, 0, vecs[3].bytes, 3, &m, &used),
                     ZINX_CODEC_MORE);
    assert_int_equal(decode_n(&c, 0, vecs[3].bytes, 5, &m, &used),
                     ZINX_CODEC_FRAME);
    assert_int_equal(m.len, 0);
}

/* Replies: Head 0xA1 (or the builder's), FuncCode = ID, the CRC. */
static void test_encode(void **state)
{
    (void)state;
    zinx_codec_t c;
    zinx_codec_htlv_crc(ZINX_HTLV_REPLY_HEAD, &c);
    uint8_t out[300];
    const uint8_t body[] = {0x00, 0x00, 0x12, 0x34, 0x01};
    assert_int_equal(c.encode(c.udata, 0x13, body, sizeof(body), out), 0);
    assert_int_equal(out[0], 0xA1);
    assert_int_equal(out[1], 0x13);
    assert_int_equal(out[2], sizeof(body));
    assert_memory_equal(out + 3, body, sizeof(body));
    uint16_t crc = crc_bitwise(out, 3 + sizeof(body));
    assert_int_equal(out[8], crc & 0xFF);
    assert_int_equal(out[9], crc >> 8);
    /* What it encodes decodes back. */
    zinx_msg_t m;
    size_t used;
    assert_int_equal(decode_n(&c, 4096, out, 10, &m, &used), ZINX_CODEC_FRAME);
    assert_int_equal(m.id, 0x13);
    assert_int_equal(m.len, sizeof(body));
    /* The device's own head byte, re-encoded: the vectors come back. */
    zinx_codec_t dev;
    zinx_codec_htlv_crc(0xA2, &dev);
    for (size_t i = 0; i < NVECS; i++) {
        const vec_t *v = &vecs[i];
        assert_int_equal(dev.encode(dev.udata, v->func, v->bytes + 3,
                                    (uint32_t)(v->len - 5), out),
                         0);
        assert_memory_equal(out, v->bytes, v->len);
    }
    assert_int_equal(c.encode(c.udata, 256, body, 1, out), ZINX_EINVAL);
    static const uint8_t big[256];
    assert_int_equal(c.encode(c.udata, 255, big, 256, out), ZINX_EMSGSIZE);
    assert_int_equal(c.encode(c.udata, 255, NULL, 0, out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_modbus),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_cut_at_every_byte),
        cmocka_unit_test(test_bad_crc),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
