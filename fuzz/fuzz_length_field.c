/*
 * Fuzz target: the length-field codec (zinx_codec_length_field).
 *
 * Input layout:
 *   byte 0   bits 0-2: LengthFieldLength from {1,2,3,4,8} (value % 5);
 *            bit 3: byte order (1: little-endian)
 *   byte 1   LengthFieldOffset = byte % 8
 *   byte 2   LengthFieldAdjustment = (int8_t)byte
 *   byte 3   InitialBytesToStrip = byte % 16
 *   byte 4   bits 0-2: MaxFrameLength, bits 4-6: MaxPacketSize, each an
 *            index into limits[]
 *   byte 5   chunk size - 1 for the chunked pass
 *   the rest the byte stream
 *
 * The stream is decoded whole, each result checked against an oracle
 * written here from the definition with 128-bit arithmetic (no bound
 * tricks), and then in chunks the way a connection reads: frames that
 * the codec refuses with a size are skipped (the drop policy), byte by
 * byte as they arrive, and a malformed header ends the stream. Both
 * passes must see the same frames and the same end. Buffers end where
 * the data ends, so a read past them is an AddressSanitizer report.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "zinx.h"

static const uint64_t limits[8] = {0, 1, 8, 64, 255, 4096, 65536, 4294967295u};
static const uint32_t sizes[5] = {1, 2, 3, 4, 8};

typedef struct event {
    int kind;      /* ZINX_CODEC_FRAME, ZINX_EMSGSIZE (skipped) or the end */
    uint64_t size; /* frame or skipped bytes */
    uint32_t len;  /* payload */
} event_t;

typedef struct oracle {
    int rc;
    uint64_t used;
    uint32_t len;
} oracle_t;

/* The definition: frame = raw + adjustment + offset + length. */
static oracle_t expect(const zinx_length_field_t *p, uint32_t max_len,
                       const uint8_t *b, size_t n)
{
    oracle_t o = {ZINX_CODEC_MORE, 0, 0};
    size_t end = (size_t)p->offset + p->length;
    if (n < end) {
        o.used = end;
        return o;
    }
    unsigned __int128 raw = 0;
    for (uint32_t i = 0; i < p->length; i++) {
        uint32_t k = p->order == ZINX_LITTLE_ENDIAN ? p->length - 1 - i : i;
        raw = raw << 8 | b[p->offset + k];
    }
    __int128 frame = (__int128)raw + p->adjustment + (__int128)end;
    if (raw >= ((unsigned __int128)1 << 63) || frame < (__int128)end ||
        frame < (__int128)p->strip ||
        frame - (__int128)p->strip > (__int128)UINT32_MAX) {
        o.rc = ZINX_EPROTO;
        return o;
    }
    __int128 max = p->max_frame_length != 0 ? (__int128)p->max_frame_length
                                            : (__int128)max_len + (__int128)end;
    o.used = (uint64_t)frame;
    if (frame > max) {
        o.rc = ZINX_EMSGSIZE;
        return o;
    }
    o.len = (uint32_t)(frame - (__int128)p->strip);
    if ((__int128)n < frame)
        return o;
    o.rc = ZINX_CODEC_FRAME;
    return o;
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(q != NULL, "out of memory");
    if (n > 0)
        memcpy(q, p, n);
    return q;
}

/* One decode on an exact copy, checked against the oracle. */
static int decode_checked(const zinx_codec_t *c, const zinx_length_field_t *p,
                          uint32_t max_len, const uint8_t *b, size_t n,
                          zinx_msg_t *m, size_t *used)
{
    uint8_t *q = dup_exact(b, n);
    int rc = c->decode(c->udata, NULL, max_len, q, n, m, used);
    oracle_t o = expect(p, max_len, q, n);
    FUZZ_CHECK(rc == o.rc, "rc %d, oracle %d", rc, o.rc);
    if (rc != ZINX_EPROTO)
        FUZZ_CHECK(*used == o.used, "used %zu, oracle %llu", *used,
                   (unsigned long long)o.used);
    else
        FUZZ_CHECK(*used == 0, "malformed but used %zu", *used);
    if (rc == ZINX_CODEC_MORE)
        FUZZ_CHECK(*used > n, "MORE with %zu of %zu bytes", *used, n);
    if (rc == ZINX_CODEC_FRAME) {
        FUZZ_CHECK(*used <= n && m->id == 0 && m->len == o.len, "frame %zu/%u",
                   *used, m->len);
        FUZZ_CHECK(m->data == q + p->strip, "data not after the strip");
    }
    free(q);
    return rc;
}

/* Decodes s in chunks of `chunk` bytes as a connection does (drop
   policy), recording events. */
static size_t run(const zinx_codec_t *c, const zinx_length_field_t *p,
                  uint32_t max_len, const uint8_t *s, size_t n, size_t chunk,
                  event_t *ev, size_t cap)
{
    size_t count = 0, start = 0, fed = 0;
    uint64_t skip = 0;
    while (fed < n && count < cap) {
        size_t step = chunk < n - fed ? chunk : n - fed;
        fed += step;
        if (skip > 0) { /* discard as it arrives */
            uint64_t k = skip < fed - start ? skip : fed - start;
            start += (size_t)k;
            skip -= k;
        }
        while (skip == 0 && count < cap) {
            zinx_msg_t m;
            size_t used;
            int rc = decode_checked(c, p, max_len, s + start, fed - start, &m,
                                    &used);
            if (rc == ZINX_CODEC_MORE)
                break;
            if (rc == ZINX_EPROTO) {
                ev[count++] = (event_t){ZINX_EPROTO, 0, 0};
                return count;
            }
            ev[count++] =
                (event_t){rc, used, rc == ZINX_CODEC_FRAME ? m.len : 0};
            size_t have = fed - start;
            size_t adv = used <= have ? used : have;
            start += adv;
            skip = used - adv;
        }
    }
    return count;
}

static bool same_events(const event_t *a, const event_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].kind != b[i].kind || a[i].size != b[i].size ||
            a[i].len != b[i].len)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6)
        return 0;
    zinx_length_field_t p = {
        .order = (data[0] >> 3) & 1,
        .length = sizes[(data[0] & 7) % 5],
        .offset = data[1] % 8,
        .adjustment = (int8_t)data[2],
        .strip = data[3] % 16,
        .max_frame_length = limits[data[4] & 7],
    };
    uint32_t max_len = (uint32_t)limits[(data[4] >> 4) & 7];
    size_t chunk = (size_t)data[5] + 1;
    zinx_codec_t c;
    FUZZ_CHECK(zinx_codec_length_field(&p, ZINX_FORMAT_TLV, &c) == 0,
               "valid parameters refused");
    size_t n = size - 6;
    uint8_t *s = dup_exact(data + 6, n);
    size_t cap = n + 2;
    event_t *whole = calloc(cap, sizeof(event_t));
    event_t *parts = calloc(cap, sizeof(event_t));
    event_t *ones = calloc(cap, sizeof(event_t));
    FUZZ_CHECK(whole && parts && ones, "out of memory");
    size_t nw = run(&c, &p, max_len, s, n, n > 0 ? n : 1, whole, cap);
    size_t np = run(&c, &p, max_len, s, n, chunk, parts, cap);
    FUZZ_CHECK(nw == np, "%zu events whole, %zu in chunks", nw, np);
    FUZZ_CHECK(same_events(whole, parts, nw), "events differ in chunks");
    if (n <= 512) {
        size_t n1 = run(&c, &p, max_len, s, n, 1, ones, cap);
        FUZZ_CHECK(n1 == nw && same_events(whole, ones, nw),
                   "events differ byte by byte");
    }
    /* A decoded frame's reply encodes as a TLV frame of its payload. */
    uint8_t out[8 + 16];
    FUZZ_CHECK(c.encode(c.udata, 7, "0123456789abcdef", 16, out) == 0,
               "encode");
    FUZZ_CHECK(out[3] == 7 && out[7] == 16, "TLV reply header");
    free(whole);
    free(parts);
    free(ones);
    free(s);
    return 0;
}
