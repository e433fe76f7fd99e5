/*
 * Fuzz target: the frame codec (zinx_unpack, zinx_unpack_header,
 * zinx_pack, zinx_pack_header) in both formats.
 *
 * Input layout:
 *   byte 0          two MaxPacketSize choices: bits 0-2 and bits 4-6
 *                   index max_table[]
 *   byte 1          k = byte % 16, the number of chunk sizes that follow
 *   bytes 2..2+k    chunk sizes (value + 1 bytes each), used in a cycle
 *   the rest        the byte stream to decode
 *
 * For each format and each MaxPacketSize the stream is decoded whole
 * (the reference), with every result checked against a header parse
 * written here independently of the library. Then the same stream is fed
 * through an accumulating decoder in the fuzzer's chunk sizes, in 1-byte
 * chunks and (for short streams) split in two at every point; each must
 * give the reference's frames at the moment their last byte arrives, and
 * an oversize header as soon as its 8 bytes are there. Every decoded
 * frame is packed again and must give back the same bytes.
 *
 * Buffers handed to the library end where their data ends (exact-size
 * copies, or poisoned past the end under AddressSanitizer), so that a
 * read one byte too far is an AddressSanitizer report.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "zinx.h"

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif

#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define FUZZ_POISON(p, n) __asan_poison_memory_region((p), (n))
#define FUZZ_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define FUZZ_POISON(p, n) ((void)(p), (void)(n))
#define FUZZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static const uint32_t max_table[8] = {0,   1,    8,     64,
                                      255, 4096, 65536, UINT32_MAX};

/*
 * Streams up to these lengths are also split in two at every point, and
 * fed one byte at a time (with the first limit only). Longer ones rely on
 * the fuzzer's chunk sizes: those passes cost O(n^2) copies.
 */
#define SPLIT_ALL_MAX 64
#define ONE_BYTE_MAX 512

typedef struct frame_ref {
    size_t off; /* offset of the frame's header in the stream */
    uint32_t id;
    uint32_t len;
} frame_ref_t;

typedef struct decode_ref {
    frame_ref_t *frames;
    size_t count;
    size_t end_off; /* where decoding stopped */
    long end_rc;    /* ZINX_EAGAIN or ZINX_EMSGSIZE */
} decode_ref_t;

typedef struct plan {
    const uint8_t *sizes; /* chunk size - 1, cycled; NULL: fixed */
    size_t count;
    size_t fixed; /* chunk size when sizes is NULL */
} plan_t;

static const zinx_packet_format_t formats[2] = {ZINX_FORMAT_TLV,
                                                ZINX_FORMAT_LTV_LE};

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(q != NULL, "out of memory");
    if (n > 0)
        memcpy(q, p, n);
    return q;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 |
           (uint32_t)p[0];
}

/* The oracle: the header layouts as the wire-format document states them. */
static void parse_header(zinx_packet_format_t fmt, const uint8_t *p,
                         uint32_t *id, uint32_t *len)
{
    if (fmt == ZINX_FORMAT_TLV) {
        *id = be32(p);
        *len = be32(p + 4);
    } else {
        *len = le32(p);
        *id = le32(p + 4);
    }
}

static void poison_msg(zinx_msg_t *m)
{
    m->id = 0xA5A5A5A5u;
    m->len = 0x5A5A5A5Au;
    m->data = (const uint8_t *)&max_table[3];
}

static bool msg_poisoned(const zinx_msg_t *m)
{
    return m->id == 0xA5A5A5A5u && m->len == 0x5A5A5A5Au &&
           m->data == (const uint8_t *)&max_table[3];
}

/* What zinx_unpack must return for buf[0..n), by the oracle. */
static long expected_unpack(zinx_packet_format_t fmt, uint32_t max,
                            const uint8_t *buf, size_t n)
{
    if (n < ZINX_HEADER_LEN)
        return ZINX_EAGAIN;
    uint32_t id, len;
    parse_header(fmt, buf, &id, &len);
    if (len > max)
        return ZINX_EMSGSIZE;
    if (n - ZINX_HEADER_LEN < len)
        return ZINX_EAGAIN;
    return (long)ZINX_HEADER_LEN + (long)len;
}

static void check_unpack_header(zinx_packet_format_t fmt, const uint8_t *buf,
                                size_t n)
{
    uint32_t id = 7, len = 7;
    int rc = zinx_unpack_header(fmt, buf, n, &id, &len);
    if (n < ZINX_HEADER_LEN) {
        FUZZ_CHECK(rc == ZINX_EAGAIN, "rc %d for %zu bytes", rc, n);
        FUZZ_CHECK(id == 7 && len == 7, "outputs written on EAGAIN");
        return;
    }
    uint32_t want_id, want_len;
    parse_header(fmt, buf, &want_id, &want_len);
    FUZZ_CHECK(rc == 0, "rc %d", rc);
    FUZZ_CHECK(id == want_id && len == want_len, "header %u/%u, oracle %u/%u",
               id, len, want_id, want_len);
}

/* A decoded frame packed again must give back exactly its bytes. */
static void check_repack(zinx_packet_format_t fmt, uint32_t max,
                         const uint8_t *frame, const zinx_msg_t *m)
{
    size_t size = (size_t)ZINX_HEADER_LEN + m->len;
    uint8_t *out = malloc(size);
    FUZZ_CHECK(out != NULL, "out of memory");
    long n = zinx_pack(fmt, max, m->id, m->data, m->len, out, size);
    FUZZ_CHECK(n == (long)size, "pack returned %ld, want %zu", n, size);
    FUZZ_CHECK(memcmp(out, frame, size) == 0, "re-packed bytes differ");
    n = zinx_pack(fmt, max, m->id, m->data, m->len, out, size - 1);
    FUZZ_CHECK(n == ZINX_ENOBUFS, "pack into a short buffer: %ld", n);
    if (m->len > 0) {
        n = zinx_pack(fmt, m->len - 1, m->id, m->data, m->len, out, size);
        FUZZ_CHECK(n == ZINX_EMSGSIZE, "pack over the limit: %ld", n);
    }
    uint8_t hdr[ZINX_HEADER_LEN];
    FUZZ_CHECK(zinx_pack_header(fmt, m->id, m->len, hdr) == 0, "pack_header");
    FUZZ_CHECK(memcmp(hdr, frame, ZINX_HEADER_LEN) == 0, "header differs");
    free(out);

    /* The same message in the other format survives a round trip. */
    zinx_packet_format_t other =
        fmt == ZINX_FORMAT_TLV ? ZINX_FORMAT_LTV_LE : ZINX_FORMAT_TLV;
    out = malloc(size);
    FUZZ_CHECK(out != NULL, "out of memory");
    n = zinx_pack(other, max, m->id, m->data, m->len, out, size);
    FUZZ_CHECK(n == (long)size, "pack (other format) returned %ld", n);
    zinx_msg_t back;
    n = zinx_unpack(other, max, out, size, &back);
    FUZZ_CHECK(n == (long)size, "unpack (other format) returned %ld", n);
    FUZZ_CHECK(back.id == m->id && back.len == m->len &&
                   back.data == out + ZINX_HEADER_LEN,
               "round trip in the other format changed the message");
    FUZZ_CHECK(m->len == 0 || memcmp(back.data, m->data, m->len) == 0,
               "round trip in the other format changed the payload");
    free(out);
}

/* Decodes the whole stream at once, checking every step by the oracle. */
static void decode_whole(zinx_packet_format_t fmt, uint32_t max,
                         const uint8_t *s, size_t n, decode_ref_t *ref)
{
    ref->frames = malloc((n / ZINX_HEADER_LEN + 1) * sizeof(frame_ref_t));
    FUZZ_CHECK(ref->frames != NULL, "out of memory");
    ref->count = 0;
    size_t off = 0;
    for (;;) {
        const uint8_t *p = s + off;
        size_t avail = n - off;
        zinx_msg_t m;
        poison_msg(&m);
        long rc = zinx_unpack(fmt, max, p, avail, &m);
        long want = expected_unpack(fmt, max, p, avail);
        FUZZ_CHECK(rc == want, "unpack %ld, oracle %ld (fmt %d max %u off %zu)",
                   rc, want, (int)fmt, max, off);
        check_unpack_header(fmt, p, avail);
        if (rc < 0) {
            FUZZ_CHECK(msg_poisoned(&m), "msg written on error %ld", rc);
            ref->end_rc = rc;
            ref->end_off = off;
            return;
        }
        FUZZ_CHECK((size_t)rc <= avail, "consumed %ld of %zu", rc, avail);
        FUZZ_CHECK(m.len <= max, "len %u over max %u", m.len, max);
        FUZZ_CHECK(m.data == p + ZINX_HEADER_LEN, "data outside the frame");
        check_repack(fmt, max, p, &m);
        ref->frames[ref->count++] =
            (frame_ref_t){.off = off, .id = m.id, .len = m.len};
        off += (size_t)rc;
    }
}

static size_t next_chunk(const plan_t *pl, size_t *i)
{
    if (pl->sizes == NULL)
        return pl->fixed;
    size_t c = (size_t)pl->sizes[*i % pl->count] + 1;
    (*i)++;
    return c;
}

/*
 * After a decode pass stopped with EAGAIN, nothing complete may be left
 * behind: the next reference frame (or oversize header) must still be
 * missing bytes.
 */
static void check_nothing_pending(const decode_ref_t *ref, size_t idx,
                                  size_t fed)
{
    if (idx < ref->count) {
        const frame_ref_t *f = &ref->frames[idx];
        FUZZ_CHECK(f->off + ZINX_HEADER_LEN + f->len > fed,
                   "frame %zu complete at %zu bytes but not decoded", idx, fed);
    } else if (ref->end_rc == ZINX_EMSGSIZE) {
        FUZZ_CHECK(ref->end_off + ZINX_HEADER_LEN > fed,
                   "oversize header complete at %zu bytes, not reported", fed);
    }
}

/* One frame decoded from the accumulator must be the reference's next. */
static void check_chunk_frame(const decode_ref_t *ref, size_t idx,
                              size_t stream_off, const uint8_t *s,
                              const zinx_msg_t *m, const uint8_t *b,
                              size_t blen)
{
    FUZZ_CHECK(idx < ref->count, "extra frame at %zu", stream_off);
    const frame_ref_t *f = &ref->frames[idx];
    FUZZ_CHECK(f->off == stream_off, "frame %zu at %zu, reference %zu", idx,
               stream_off, f->off);
    FUZZ_CHECK(m->id == f->id && m->len == f->len, "frame %zu differs", idx);
    FUZZ_CHECK(m->data >= b && m->data + m->len <= b + blen,
               "data outside the buffer");
    FUZZ_CHECK(m->len == 0 ||
                   memcmp(m->data, s + f->off + ZINX_HEADER_LEN, m->len) == 0,
               "frame %zu payload differs", idx);
}

/*
 * The accumulator: bytes received but not yet decoded, as a connection
 * keeps them. Under AddressSanitizer everything outside [off, len) is
 * poisoned, so the decoder reading one byte before or past what it was
 * given is reported even though the allocation is larger.
 */
typedef struct acc {
    uint8_t *buf;
    size_t off;
    size_t len;
    size_t cap;
} acc_t;

static void acc_guard(acc_t *a)
{
    if (a->buf == NULL)
        return;
    FUZZ_POISON(a->buf, a->off);
    FUZZ_POISON(a->buf + a->len, a->cap - a->len);
}

static void acc_append(acc_t *a, const uint8_t *p, size_t n)
{
    if (a->buf != NULL)
        FUZZ_UNPOISON(a->buf, a->cap);
    if (a->off > 0 && a->off >= a->cap / 2) {
        memmove(a->buf, a->buf + a->off, a->len - a->off);
        a->len -= a->off;
        a->off = 0;
    }
    if (a->cap - a->len < n) {
        size_t cap = a->cap ? a->cap : 64;
        while (cap - a->len < n)
            cap *= 2;
        a->buf = realloc(a->buf, cap);
        FUZZ_CHECK(a->buf != NULL, "out of memory");
        a->cap = cap;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
    acc_guard(a);
}

static void acc_free(acc_t *a)
{
    if (a->buf != NULL)
        FUZZ_UNPOISON(a->buf, a->cap);
    free(a->buf);
}

/*
 * Feeds s[0..n) in chunks through the accumulator, decoding after every
 * chunk, and compares with ref.
 */
static void decode_chunked(zinx_packet_format_t fmt, uint32_t max,
                           const uint8_t *s, size_t n, const plan_t *pl,
                           const decode_ref_t *ref)
{
    acc_t a = {NULL, 0, 0, 0};
    size_t fed = 0, idx = 0, pi = 0;
    while (fed < n) {
        size_t step = next_chunk(pl, &pi);
        if (step > n - fed)
            step = n - fed;
        acc_append(&a, s + fed, step);
        fed += step;
        for (;;) {
            const uint8_t *b = a.buf + a.off;
            size_t blen = a.len - a.off;
            size_t at = fed - blen; /* stream offset of b[0] */
            zinx_msg_t m;
            long rc = zinx_unpack(fmt, max, b, blen, &m);
            if (rc == ZINX_EAGAIN)
                break;
            if (rc == ZINX_EMSGSIZE) {
                FUZZ_CHECK(ref->end_rc == ZINX_EMSGSIZE && idx == ref->count &&
                               ref->end_off == at,
                           "oversize at %zu, reference differs", at);
                acc_free(&a);
                return;
            }
            FUZZ_CHECK(rc > 0, "unpack returned %ld", rc);
            check_chunk_frame(ref, idx, at, s, &m, b, blen);
            idx++;
            a.off += (size_t)rc;
            acc_guard(&a);
        }
        check_nothing_pending(ref, idx, fed);
    }
    FUZZ_CHECK(idx == ref->count, "decoded %zu frames, reference %zu", idx,
               ref->count);
    FUZZ_CHECK(ref->end_rc == ZINX_EAGAIN,
               "reference ends in an error the chunked decode never saw");
    FUZZ_CHECK(a.len - a.off == n - ref->end_off,
               "tail %zu bytes, reference %zu", a.len - a.off,
               n - ref->end_off);
    acc_free(&a);
}

/* A larger limit decodes the same frames, and at least as many. */
static void check_monotonic(const decode_ref_t *lo, const decode_ref_t *hi)
{
    FUZZ_CHECK(lo->count <= hi->count, "smaller limit decoded more frames");
    for (size_t i = 0; i < lo->count; i++)
        FUZZ_CHECK(lo->frames[i].off == hi->frames[i].off &&
                       lo->frames[i].id == hi->frames[i].id &&
                       lo->frames[i].len == hi->frames[i].len,
                   "frame %zu differs between limits", i);
    if (lo->end_rc == ZINX_EAGAIN)
        FUZZ_CHECK(hi->end_rc == ZINX_EAGAIN && hi->count == lo->count,
                   "a larger limit changed a complete decode");
}

static void check_bad_arguments(const uint8_t *s, size_t n)
{
    zinx_msg_t m;
    uint32_t id, len;
    poison_msg(&m);
    FUZZ_CHECK(zinx_unpack((zinx_packet_format_t)2, 64, s, n, &m) ==
                   ZINX_EINVAL,
               "unknown format accepted");
    FUZZ_CHECK(zinx_unpack(ZINX_FORMAT_TLV, 64, NULL, n, &m) == ZINX_EINVAL,
               "NULL buffer accepted");
    FUZZ_CHECK(zinx_unpack(ZINX_FORMAT_TLV, 64, s, n, NULL) == ZINX_EINVAL,
               "NULL msg accepted");
    FUZZ_CHECK(msg_poisoned(&m), "msg written on EINVAL");
    FUZZ_CHECK(zinx_unpack_header((zinx_packet_format_t)-1, s, n, &id, &len) ==
                   ZINX_EINVAL,
               "unknown format accepted by unpack_header");
}

static void run_format(zinx_packet_format_t fmt, const uint32_t max[2],
                       const uint8_t *s, size_t n, const plan_t *fuzz_plan)
{
    decode_ref_t ref[2];
    for (int k = 0; k < 2; k++) {
        decode_whole(fmt, max[k], s, n, &ref[k]);
        plan_t whole = {.sizes = NULL, .count = 0, .fixed = n ? n : 1};
        decode_chunked(fmt, max[k], s, n, &whole, &ref[k]);
        decode_chunked(fmt, max[k], s, n, fuzz_plan, &ref[k]);
        if (k == 0 && n <= ONE_BYTE_MAX) {
            plan_t one = {.sizes = NULL, .count = 0, .fixed = 1};
            decode_chunked(fmt, max[k], s, n, &one, &ref[k]);
        }
        for (size_t cut = 1; k == 0 && n <= SPLIT_ALL_MAX && cut < n; cut++) {
            uint8_t sizes[2] = {(uint8_t)(cut - 1), (uint8_t)(n - cut - 1)};
            plan_t two = {.sizes = sizes, .count = 2, .fixed = 0};
            decode_chunked(fmt, max[k], s, n, &two, &ref[k]);
        }
    }
    int lo = max[0] <= max[1] ? 0 : 1;
    check_monotonic(&ref[lo], &ref[1 - lo]);
    free(ref[0].frames);
    free(ref[1].frames);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t max[2] = {max_table[5], max_table[7]};
    plan_t fuzz_plan = {.sizes = NULL, .count = 0, .fixed = 1};
    size_t pos = 0;
    if (size >= 1) {
        max[0] = max_table[data[0] & 7];
        max[1] = max_table[(data[0] >> 4) & 7];
        pos = 1;
    }
    if (size >= 2) {
        size_t k = data[1] % 16;
        pos = 2;
        if (k > size - pos)
            k = size - pos;
        if (k > 0)
            fuzz_plan = (plan_t){.sizes = data + pos, .count = k, .fixed = 0};
        pos += k;
    }
    size_t n = size - pos;
    uint8_t *s = dup_exact(data + pos, n);
    check_bad_arguments(s, n);
    for (int f = 0; f < 2; f++)
        run_format(formats[f], max, s, n, &fuzz_plan);
    free(s);
    return 0;
}
