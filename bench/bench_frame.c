/*
 * Frames of a benchmark run: built from a fixed filler plus two stamps,
 * and checked byte for byte when they come back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define STAMP_HEAD 12u /* conn u32 + seq u64 */
#define STAMP_TAIL 8u  /* seq ^ conn mix, u64 */

int bench_frame_init(bench_frame_t *f, const bench_opts_t *o)
{
    f->format = o->format;
    f->msg_id = o->msg_id;
    f->payload = o->payload;
    f->size = ZINX_HEADER_LEN + (size_t)o->payload;
    f->filler = malloc(o->payload > 0 ? o->payload : 1u);
    if (f->filler == NULL)
        return -1;
    /* Non-periodic bytes, so that a shifted payload never matches. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < o->payload; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f->filler[i] = (uint8_t)(x >> 24);
    }
    return 0;
}

void bench_frame_free(bench_frame_t *f)
{
    free(f->filler);
    f->filler = NULL;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8u * i));
}

static uint64_t tail_mix(uint32_t conn, uint64_t seq)
{
    return seq ^ ((uint64_t)conn << 40) ^ 0xa5a5a5a5a5a5a5a5ull;
}

/*
 * The stamps of frame (conn, seq) as they appear in the payload; only
 * the bytes that fit a short payload are used.
 */
static void make_stamps(uint32_t conn, uint64_t seq, uint8_t head[STAMP_HEAD],
                        uint8_t tail[STAMP_TAIL])
{
    put_le(head, conn, 4);
    put_le(head + 4, seq, 8);
    put_le(tail, tail_mix(conn, seq), 8);
}

static size_t head_len(uint32_t payload)
{
    return payload < STAMP_HEAD ? payload : STAMP_HEAD;
}

/* The tail stamp exists only when it does not overlap the head stamp. */
static size_t tail_len(uint32_t payload)
{
    return payload >= STAMP_HEAD + STAMP_TAIL ? STAMP_TAIL : 0;
}

void bench_frame_build(const bench_frame_t *f, uint32_t conn, uint64_t seq,
                       uint8_t *out)
{
    uint8_t head[STAMP_HEAD], tail[STAMP_TAIL];
    size_t hl = head_len(f->payload), tl = tail_len(f->payload);

    zinx_pack_header(f->format, f->msg_id, f->payload, out);
    uint8_t *p = out + ZINX_HEADER_LEN;
    make_stamps(conn, seq, head, tail);
    memcpy(p, head, hl);
    memcpy(p + hl, f->filler + hl, f->payload - hl - tl);
    memcpy(p + f->payload - tl, tail, tl);
}

static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

static void check_header(const bench_frame_t *f, uint32_t conn, uint64_t seq,
                         const uint8_t *buf)
{
    uint32_t id = 0, len = 0;

    zinx_unpack_header(f->format, buf, ZINX_HEADER_LEN, &id, &len);
    if (id != f->msg_id || len != f->payload)
        bench_fatal("conn %u, frame %llu: echoed header has id %u len %u, "
                    "expected id %u len %u",
                    conn, (unsigned long long)seq, id, len, f->msg_id,
                    f->payload);
}

static void report_payload(const bench_frame_t *f, uint32_t conn, uint64_t seq,
                           const uint8_t *got, size_t at)
{
    uint8_t want[STAMP_HEAD + STAMP_TAIL];
    uint8_t byte;

    /* Rebuild only the byte that differs; a full frame may be 16 MiB. */
    make_stamps(conn, seq, want, want + STAMP_HEAD);
    size_t hl = head_len(f->payload), tl = tail_len(f->payload);
    if (at < hl)
        byte = want[at];
    else if (at >= f->payload - tl)
        byte = want[STAMP_HEAD + (at - (f->payload - tl))];
    else
        byte = f->filler[at];
    bench_fatal("conn %u, frame %llu: payload byte %zu of %u is 0x%02x, "
                "expected 0x%02x (%s)",
                conn, (unsigned long long)seq, at, f->payload, got[at], byte,
                at < hl ? "connection/sequence stamp: reordered, duplicated "
                          "or foreign frame"
                        : "payload damaged");
}

void bench_frame_check(const bench_frame_t *f, uint32_t conn, uint64_t seq,
                       const uint8_t *buf)
{
    uint8_t head[STAMP_HEAD], tail[STAMP_TAIL];
    size_t hl = head_len(f->payload), tl = tail_len(f->payload);
    const uint8_t *p = buf + ZINX_HEADER_LEN;

    check_header(f, conn, seq, buf);
    make_stamps(conn, seq, head, tail);
    size_t mid = f->payload - hl - tl;
    if (memcmp(p, head, hl) != 0)
        report_payload(f, conn, seq, p, first_diff(p, head, hl));
    if (memcmp(p + hl, f->filler + hl, mid) != 0)
        report_payload(f, conn, seq, p,
                       hl + first_diff(p + hl, f->filler + hl, mid));
    if (memcmp(p + hl + mid, tail, tl) != 0)
        report_payload(f, conn, seq, p,
                       hl + mid + first_diff(p + hl + mid, tail, tl));
}
