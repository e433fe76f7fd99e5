/*
 * Fuzz target: the HTLV+CRC16 codec (zinx_codec_htlv_crc).
 *
 * Input layout:
 *   byte 0   MaxPacketSize: an index (bits 0-2) into limits[]
 *   byte 1   chunk size - 1 for the chunked pass
 *   the rest the byte stream
 *
 * The stream is decoded whole, each result checked against an oracle
 * written here (the frame layout and a bit-by-bit CRC-16/MODBUS), then in
 * chunks and byte by byte the way a connection reads with the drop
 * policy: a frame refused with a size (bad CRC, Len above MaxPacketSize)
 * is skipped. Every pass must see the same frames. Every good frame
 * encoded again with its own Head byte gives back its bytes. Buffers end
 * where the data ends, so a read past them is an AddressSanitizer report.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "zinx.h"

static const uint32_t limits[8] = {0, 1, 8, 64, 200, 255, 4096, 0xFFFFFFFFu};

typedef struct event {
    int kind;
    size_t size;
    uint32_t id;
    uint32_t len;
} event_t;

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

/* The oracle's verdict on b[0..n). */
static int expect(uint32_t max_len, const uint8_t *b, size_t n, size_t *used)
{
    if (n < 3) {
        *used = 3;
        return ZINX_CODEC_MORE;
    }
    *used = (size_t)b[2] + 5;
    if (b[2] > max_len)
        return ZINX_EMSGSIZE;
    if (n < *used)
        return ZINX_CODEC_MORE;
    uint16_t want = (uint16_t)(b[*used - 2] | b[*used - 1] << 8);
    return crc_bitwise(b, *used - 2) == want ? ZINX_CODEC_FRAME : ZINX_EPROTO;
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(q != NULL, "out of memory");
    if (n > 0)
        memcpy(q, p, n);
    return q;
}

static int decode_checked(const zinx_codec_t *c, uint32_t max_len,
                          const uint8_t *b, size_t n, zinx_msg_t *m,
                          size_t *used)
{
    uint8_t *q = dup_exact(b, n);
    int rc = c->decode(c->udata, NULL, max_len, q, n, m, used);
    size_t want;
    int orc = expect(max_len, q, n, &want);
    FUZZ_CHECK(rc == orc, "rc %d, oracle %d", rc, orc);
    FUZZ_CHECK(*used == want, "used %zu, oracle %zu", *used, want);
    if (rc == ZINX_CODEC_FRAME) {
        FUZZ_CHECK(m->id == q[1] && m->len == q[2], "frame %u/%u", m->id,
                   m->len);
        FUZZ_CHECK(m->data == q + 3, "data not after the header");
        /* Encoded again with its own Head: the same bytes. */
        zinx_codec_t back;
        zinx_codec_htlv_crc(q[0], &back);
        uint8_t out[260];
        FUZZ_CHECK(back.encode(back.udata, m->id, m->data, m->len, out) == 0,
                   "encode");
        FUZZ_CHECK(memcmp(out, q, *used) == 0, "re-encoded frame differs");
    }
    free(q);
    return rc;
}

static size_t run(const zinx_codec_t *c, uint32_t max_len, const uint8_t *s,
                  size_t n, size_t chunk, event_t *ev, size_t cap)
{
    size_t count = 0, start = 0, fed = 0, skip = 0;
    while (fed < n && count < cap) {
        size_t step = chunk < n - fed ? chunk : n - fed;
        fed += step;
        if (skip > 0) {
            size_t k = skip < fed - start ? skip : fed - start;
            start += k;
            skip -= k;
        }
        while (skip == 0 && count < cap) {
            zinx_msg_t m;
            size_t used;
            int rc =
                decode_checked(c, max_len, s + start, fed - start, &m, &used);
            if (rc == ZINX_CODEC_MORE)
                break;
            bool ok = rc == ZINX_CODEC_FRAME;
            ev[count++] = (event_t){rc, used, ok ? m.id : 0, ok ? m.len : 0};
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
            a[i].id != b[i].id || a[i].len != b[i].len)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t max_len = limits[data[0] & 7];
    size_t chunk = (size_t)data[1] + 1;
    zinx_codec_t c;
    zinx_codec_htlv_crc(ZINX_HTLV_REPLY_HEAD, &c);
    size_t n = size - 2;
    uint8_t *s = dup_exact(data + 2, n);
    size_t cap = n + 2;
    event_t *whole = calloc(cap, sizeof(event_t));
    event_t *parts = calloc(cap, sizeof(event_t));
    FUZZ_CHECK(whole && parts, "out of memory");
    size_t nw = run(&c, max_len, s, n, n > 0 ? n : 1, whole, cap);
    size_t np = run(&c, max_len, s, n, chunk, parts, cap);
    FUZZ_CHECK(nw == np && same_events(whole, parts, nw),
               "events differ in chunks");
    if (n <= 512) {
        np = run(&c, max_len, s, n, 1, parts, cap);
        FUZZ_CHECK(nw == np && same_events(whole, parts, nw),
                   "events differ byte by byte");
    }
    free(whole);
    free(parts);
    free(s);
    return 0;
}
