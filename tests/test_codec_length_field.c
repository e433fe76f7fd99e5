/*
 * The length-field codec (zinx_codec_length_field), table-driven: every
 * field size in both byte orders with offsets, adjustments and strips;
 * streams cut at every byte; every malformed header; lengths at the
 * limit, one above, 2^32 - 1 and 8-byte lengths above 2^63; the builder's
 * checks and the reply encoders. Frames are built here by hand from the
 * definition (frame_len = raw + adjustment + offset + length), and every
 * buffer handed to the decoder is an exact-size allocation, so a read
 * past the bytes is an AddressSanitizer report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zinx.h"

/* Writes raw as n bytes in order. */
static void put_raw(uint8_t *p, uint32_t n, uint32_t order, uint64_t raw)
{
    for (uint32_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)(raw >> (8 * i));
        if (order == ZINX_LITTLE_ENDIAN)
            p[i] = b;
        else
            p[n - 1 - i] = b;
    }
}

/* One frame for p whose bytes after the length field are `body` bytes of
   a pattern; returns its size. The bytes before the field are a pattern
   too. raw is chosen from the definition. */
static size_t build(const zinx_length_field_t *p, uint32_t body, uint8_t seed,
                    uint8_t *out)
{
    size_t end = (size_t)p->offset + p->length;
    size_t frame = end + body;
    for (size_t i = 0; i < frame; i++)
        out[i] = (uint8_t)(seed + i * 7);
    int64_t raw = (int64_t)frame - p->adjustment - (int64_t)end;
    assert_true(raw >= 0);
    put_raw(out + p->offset, p->length, p->order, (uint64_t)raw);
    return frame;
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n > 0 ? n : 1);
    assert_non_null(q);
    if (n > 0)
        memcpy(q, p, n);
    return q;
}

/* decode on an exact-size copy of buf[0..n). */
static int decode_n(const zinx_codec_t *c, uint32_t max, const uint8_t *buf,
                    size_t n, zinx_msg_t *m, size_t *used)
{
    uint8_t *q = dup_exact(buf, n);
    *used = 12345;
    int rc = c->decode(c->udata, NULL, max, q, n, m, used);
    /* data points into q: report it relative to buf */
    if (rc == ZINX_CODEC_FRAME && m->len > 0) {
        assert_true(m->data >= q && m->data + m->len <= q + n);
        m->data = buf + (m->data - q);
    }
    free(q);
    return rc;
}

typedef struct lf_case {
    uint32_t length;
    uint32_t order;
    uint32_t offset;
    int32_t adjustment;
    uint32_t strip;
} lf_case_t;

/* Offsets, adjustments and strips that stay valid for bodies of 8..40
   bytes: adjustment -8 with a body of 8 is raw 16; +3 needs body >= 3;
   strip at most offset + length + body. */
static const lf_case_t cases[] = {
    {1, ZINX_BIG_ENDIAN, 0, 0, 0},      {1, ZINX_LITTLE_ENDIAN, 2, 2, 0},
    {2, ZINX_BIG_ENDIAN, 0, 0, 2},      {2, ZINX_LITTLE_ENDIAN, 3, -2, 5},
    {3, ZINX_BIG_ENDIAN, 1, 3, 4},      {3, ZINX_LITTLE_ENDIAN, 0, -3, 0},
    {4, ZINX_BIG_ENDIAN, 4, 0, 0},      {4, ZINX_LITTLE_ENDIAN, 0, 4, 0},
    {4, ZINX_BIG_ENDIAN, 4, 0, 8},      {4, ZINX_LITTLE_ENDIAN, 6, -8, 10},
    {8, ZINX_BIG_ENDIAN, 0, 0, 8},      {8, ZINX_LITTLE_ENDIAN, 2, 1, 3},
    {8, ZINX_BIG_ENDIAN, 5, -5, 0},     {2, ZINX_BIG_ENDIAN, 2, 2, 0},
    {1, ZINX_LITTLE_ENDIAN, 65, 0, 66},
};

static zinx_length_field_t params_of(const lf_case_t *k)
{
    return (zinx_length_field_t){.order = k->order,
                                 .length = k->length,
                                 .offset = k->offset,
                                 .adjustment = k->adjustment,
                                 .strip = k->strip};
}

/* Three frames in a row, cut at every byte: a prefix gives exactly the
   frames it holds whole, then MORE with the size the next one needs. */
static void test_cut_at_every_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zinx_length_field_t p = params_of(&cases[i]);
        zinx_codec_t c;
        assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c), 0);
        uint8_t stream[512];
        size_t ends[3], n = 0;
        const uint32_t bodies[3] = {8, 40, 17};
        for (int f = 0; f < 3; f++) {
            n += build(&p, bodies[f], (uint8_t)(f * 31), stream + n);
            ends[f] = n;
        }
        size_t hdr = (size_t)p.offset + p.length;
        for (size_t cut = 0; cut <= n; cut++) {
            size_t off = 0;
            int f = 0;
            for (;;) {
                zinx_msg_t m;
                size_t used;
                int rc = decode_n(&c, 4096, stream + off, cut - off, &m, &used);
                if (rc == ZINX_CODEC_MORE) {
                    size_t have = cut - off;
                    size_t want = f < 3 && have >= hdr ? ends[f] - off : hdr;
                    assert_int_equal(used, want);
                    assert_true(used > cut - off);
                    break;
                }
                assert_int_equal(rc, ZINX_CODEC_FRAME);
                assert_true(f < 3);
                size_t start = f == 0 ? 0 : ends[f - 1];
                assert_int_equal(off, start);
                assert_int_equal(used, ends[f] - start);
                assert_int_equal(m.id, 0);
                assert_int_equal(m.len, ends[f] - start - p.strip);
                assert_ptr_equal(m.data, stream + start + p.strip);
                off += used;
                f++;
            }
            int whole = 0;
            while (whole < 3 && ends[whole] <= cut)
                whole++;
            assert_int_equal(f, whole);
        }
    }
}

/* Zinx's presets decode Zinx's own frames whole (strip 0, ID 0). */
static void test_zinx_presets(void **state)
{
    (void)state;
    zinx_codec_t c;
    zinx_msg_t m;
    size_t used;
    /* TLV: offset 4, length 4. ID 1, "hello". */
    zinx_length_field_t tlv = {
        .order = ZINX_BIG_ENDIAN, .length = 4, .offset = 4};
    uint8_t f1[] = {0, 0, 0, 1, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(zinx_codec_length_field(&tlv, ZINX_FORMAT_TLV, &c), 0);
    assert_int_equal(decode_n(&c, 4096, f1, sizeof(f1), &m, &used),
                     ZINX_CODEC_FRAME);
    assert_int_equal(used, sizeof(f1));
    assert_int_equal(m.len, sizeof(f1));
    /* LTV little-endian: offset 0, length 4, adjustment 4. */
    zinx_length_field_t ltv = {
        .order = ZINX_LITTLE_ENDIAN, .length = 4, .adjustment = 4};
    uint8_t f2[] = {5, 0, 0, 0, 1, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(zinx_codec_length_field(&ltv, ZINX_FORMAT_LTV_LE, &c), 0);
    assert_int_equal(decode_n(&c, 4096, f2, sizeof(f2), &m, &used),
                     ZINX_CODEC_FRAME);
    assert_int_equal(used, sizeof(f2));
    /* HTLV+CRC: offset 2, length 1, adjustment 2 (the CRC). */
    zinx_length_field_t htlv = {
        .order = ZINX_BIG_ENDIAN, .length = 1, .offset = 2, .adjustment = 2};
    uint8_t f3[] = {0xA2, 0x10, 3, 1, 2, 3, 0xAA, 0xBB, 0xA2};
    assert_int_equal(zinx_codec_length_field(&htlv, ZINX_FORMAT_TLV, &c), 0);
    assert_int_equal(decode_n(&c, 4096, f3, sizeof(f3), &m, &used),
                     ZINX_CODEC_FRAME);
    assert_int_equal(used, 8);
    assert_int_equal(m.len, 8);
}

typedef struct bad_case {
    const char *what;
    zinx_length_field_t p;
    uint64_t raw;
    uint32_t max_len; /* MaxPacketSize given to decode */
    int rc;           /* expected */
    uint64_t used;    /* expected *used */
} bad_case_t;

#define BE ZINX_BIG_ENDIAN
#define LE ZINX_LITTLE_ENDIAN
#define U32 4294967295ULL

static const bad_case_t bad_cases[] = {
    /* Malformed: never skippable. */
    {"negative after adjustment",
     {BE, 2, 0, 0, -10, 0, 0},
     5,
     4096,
     ZINX_EPROTO,
     0},
    {"frame ends inside its length field",
     {BE, 2, 0, 0, -3, 0, 0},
     1,
     4096,
     ZINX_EPROTO,
     0},
    {"strip larger than the frame",
     {BE, 2, 0, 0, 0, 10, 0},
     3,
     4096,
     ZINX_EPROTO,
     0},
    {"payload past 2^32-1 (4-byte raw 2^32-1, strip 0)",
     {BE, 4, 0, 4, 0, 0, 0},
     U32,
     4096,
     ZINX_EPROTO,
     0},
    {"payload past 2^32-1 (8-byte)",
     {LE, 8, 0, 0, 0, 0, 0},
     U32,
     4096,
     ZINX_EPROTO,
     0},
    {"8-byte raw 2^63",
     {BE, 8, 0, 0, 0, 0, 0},
     1ULL << 63,
     4096,
     ZINX_EPROTO,
     0},
    {"8-byte raw above 2^63",
     {LE, 8, 0, 0, 0, 0, 0},
     (1ULL << 63) + 1,
     4096,
     ZINX_EPROTO,
     0},
    {"8-byte raw 2^64-1",
     {BE, 8, 0, 3, 0, 0, 0},
     UINT64_MAX,
     4096,
     ZINX_EPROTO,
     0},
    {"8-byte raw 2^63-1, adjustment +65536",
     {BE, 8, 0, 0, 65536, 0, 0},
     (1ULL << 63) - 1,
     4096,
     ZINX_EPROTO,
     0},
    {"8-byte raw 2^33+1",
     {BE, 8, 0, 0, -65536, 65535, 0},
     (1ULL << 33) + 1,
     4096,
     ZINX_EPROTO,
     0},
    /* Above the limit: skippable, *used is the frame. */
    {"max+1 (explicit max 100)",
     {BE, 2, 100, 0, 0, 0, 0},
     99,
     4096,
     ZINX_EMSGSIZE,
     101},
    {"max+1 (MaxPacketSize + offset + length)",
     {BE, 4, 0, 4, 0, 0, 0},
     51,
     50,
     ZINX_EMSGSIZE,
     59},
    {"4-byte raw 2^32-1, strip 8: payload 2^32-1 over the limit",
     {BE, 4, 0, 4, 0, 8, 0},
     U32,
     4096,
     ZINX_EMSGSIZE,
     U32 + 8},
    {"4-byte raw 2^32-1 with max 2^32-1",
     {LE, 4, U32, 0, 0, 4, 0},
     U32,
     4096,
     ZINX_EMSGSIZE,
     U32 + 4},
    {"frame 2^32-1 at max 2^32-1: waits for it",
     {BE, 8, U32, 0, 0, 0, 0},
     U32 - 8,
     4096,
     ZINX_CODEC_MORE,
     U32},
    {"8-byte raw 2^32-1 - 8 with max 2^32-1 - 1",
     {BE, 8, U32 - 1, 0, 0, 0, 0},
     U32 - 8,
     4096,
     ZINX_EMSGSIZE,
     U32},
};

static void test_bad_headers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case_t *k = &bad_cases[i];
        zinx_codec_t c;
        assert_int_equal(zinx_codec_length_field(&k->p, ZINX_FORMAT_TLV, &c),
                         0);
        uint8_t hdr[80] = {0};
        size_t n = (size_t)k->p.offset + k->p.length;
        put_raw(hdr + k->p.offset, k->p.length, k->p.order, k->raw);
        zinx_msg_t m;
        size_t used;
        int rc = decode_n(&c, k->max_len, hdr, n, &m, &used);
        if (rc != k->rc || used != k->used)
            fail_msg("%s: rc %d used %zu, want %d %llu", k->what, rc, used,
                     k->rc, (unsigned long long)k->used);
        /* Nothing before the header is complete decides anything. */
        for (size_t cut = 0; cut < n; cut++) {
            assert_int_equal(decode_n(&c, k->max_len, hdr, cut, &m, &used),
                             ZINX_CODEC_MORE);
            assert_int_equal(used, n);
        }
    }
}

/* At the limit a frame decodes; the limit is the frame, header included. */
static void test_at_the_limit(void **state)
{
    (void)state;
    for (uint32_t len = 1; len <= 8; len++) {
        if (len > 4 && len < 8)
            continue;
        for (uint32_t order = 0; order < 2; order++) {
            zinx_length_field_t p = {.order = order,
                                     .length = len,
                                     .offset = 1,
                                     .max_frame_length = 200};
            zinx_codec_t c;
            assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c),
                             0);
            uint8_t f[201];
            size_t n = build(&p, 200 - 1 - len, 9, f);
            assert_int_equal(n, 200);
            zinx_msg_t m;
            size_t used;
            assert_int_equal(decode_n(&c, 0, f, n, &m, &used),
                             ZINX_CODEC_FRAME);
            assert_int_equal(used, 200);
            n = build(&p, 200 - len, 9, f);
            assert_int_equal(decode_n(&c, 0, f, 1 + len, &m, &used),
                             ZINX_EMSGSIZE);
            assert_int_equal(used, 201);
            /* max 0: MaxPacketSize + offset + length. */
            p.max_frame_length = 0;
            n = build(&p, 199 - len, 9, f);
            assert_int_equal(decode_n(&c, 199 - len - 1, f, n, &m, &used),
                             ZINX_EMSGSIZE);
            assert_int_equal(decode_n(&c, 199 - len, f, n, &m, &used),
                             ZINX_CODEC_FRAME);
        }
    }
    /* An empty payload after stripping the whole frame. */
    zinx_length_field_t p = {.order = BE, .length = 2, .strip = 2};
    zinx_codec_t c;
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c), 0);
    uint8_t z[2] = {0, 0};
    zinx_msg_t m;
    size_t used;
    assert_int_equal(decode_n(&c, 4096, z, 2, &m, &used), ZINX_CODEC_FRAME);
    assert_int_equal(used, 2);
    assert_int_equal(m.len, 0);
}

static void test_builder_checks(void **state)
{
    (void)state;
    zinx_codec_t c;
    zinx_length_field_t ok = {.order = BE, .length = 4, .offset = 4};
    assert_int_equal(zinx_codec_length_field(&ok, ZINX_FORMAT_TLV, &c), 0);
    assert_string_equal(c.name, "length_field");
    assert_int_equal(c.overhead, ZINX_HEADER_LEN);
    assert_ptr_equal(c.udata, &ok);
    assert_int_equal(zinx_codec_length_field(NULL, ZINX_FORMAT_TLV, &c),
                     ZINX_EINVAL);
    assert_int_equal(zinx_codec_length_field(&ok, ZINX_FORMAT_TLV, NULL),
                     ZINX_EINVAL);
    assert_int_equal(zinx_codec_length_field(&ok, (zinx_packet_format_t)7, &c),
                     ZINX_EINVAL);
    const uint32_t bad_len[] = {0, 5, 6, 7, 9, 16};
    for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
        zinx_length_field_t p = ok;
        p.length = bad_len[i];
        assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c),
                         ZINX_EINVAL);
    }
    zinx_length_field_t p = ok;
    p.order = 2;
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c),
                     ZINX_EINVAL);
    p = ok;
    p.offset = 65536;
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c),
                     ZINX_EINVAL);
    p = ok;
    p.adjustment = 65537;
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c),
                     ZINX_EINVAL);
    p.adjustment = -65537;
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c),
                     ZINX_EINVAL);
    p = ok;
    p.strip = 65536;
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c),
                     ZINX_EINVAL);
    p = ok;
    p.max_frame_length = U32 + 1;
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c),
                     ZINX_EINVAL);
    p = ok;
    p.reserved = 1;
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c),
                     ZINX_EINVAL);
}

/* Replies are PacketFormat frames (Zinx's asymmetry). */
static void test_reply_encoders(void **state)
{
    (void)state;
    zinx_length_field_t p = {.order = LE, .length = 2};
    zinx_codec_t c;
    uint8_t out[16];
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c), 0);
    assert_int_equal(c.encode(c.udata, 0x01020304, "hey", 3, out), 0);
    const uint8_t tlv[] = {1, 2, 3, 4, 0, 0, 0, 3, 'h', 'e', 'y'};
    assert_memory_equal(out, tlv, sizeof(tlv));
    assert_int_equal(zinx_codec_length_field(&p, ZINX_FORMAT_LTV_LE, &c), 0);
    assert_int_equal(c.encode(c.udata, 0x01020304, "hey", 3, out), 0);
    const uint8_t ltv[] = {3, 0, 0, 0, 4, 3, 2, 1, 'h', 'e', 'y'};
    assert_memory_equal(out, ltv, sizeof(ltv));
    assert_int_equal(c.encode(c.udata, 9, NULL, 0, out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_at_every_byte),
        cmocka_unit_test(test_zinx_presets),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_at_the_limit),
        cmocka_unit_test(test_builder_checks),
        cmocka_unit_test(test_reply_encoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
