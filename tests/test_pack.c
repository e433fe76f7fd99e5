/*
 * Tests of the wire codec (src/pack.c), for both frame layouts.
 *
 * Every decode reads from a copy placed so that it ends exactly at a
 * PROT_NONE page: reading one byte past the input crashes the test.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec/pack_internal.h"
#include "zinx/error.h"
#include "zinx/pack.h"

#define FORMAT_BAD ((zinx_packet_format_t)2)
#define SENTINEL 0xA5u

static const zinx_packet_format_t formats[] = {
    ZINX_FORMAT_TLV,
    ZINX_FORMAT_LTV_LE,
};
#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- result checks that print the error names and the failing case ---- */

static const char *rc_name(long rc)
{
    if (rc >= 0)
        return "size";
    return rc >= INT_MIN ? zinx_err_name((int)rc) : "?";
}

__attribute__((format(printf, 5, 6))) static void
check_rc(long got, long want, const char *file, int line, const char *fmt, ...)
{
    if (got == want)
        return;
    char where[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(where, sizeof(where), fmt, ap);
    va_end(ap);
    print_error("%s: got %ld (%s), want %ld (%s)\n", where, got, rc_name(got),
                want, rc_name(want));
    _fail(file, line);
}

#define CHECK_RC(got, want, ...) \
    check_rc((long)(got), (long)(want), __FILE__, __LINE__, __VA_ARGS__)

/* ---- guard page ---- */

typedef struct guard {
    uint8_t *base;
    size_t size; /* readable bytes in front of the guard page */
    size_t page;
} guard_t;

static void guard_init(guard_t *g, size_t min_size)
{
    long ps = sysconf(_SC_PAGESIZE);
    assert_true(ps > 0);
    g->page = (size_t)ps;
    size_t pages = min_size / g->page + 1;
    g->size = pages * g->page;
    void *p = mmap(NULL, g->size + g->page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    g->base = p;
    assert_int_equal(mprotect(g->base + g->size, g->page, PROT_NONE), 0);
}

static void guard_free(guard_t *g)
{
    assert_int_equal(munmap(g->base, g->size + g->page), 0);
}

/* Copies data[0..n) so that its last byte is the last readable one. */
static const uint8_t *guard_place(guard_t *g, const void *data, size_t n)
{
    assert_true(n <= g->size);
    uint8_t *dst = g->base + g->size - n;
    if (n > 0)
        memcpy(dst, data, n);
    return dst;
}

static void exit_on_segv(int sig)
{
    (void)sig;
    _exit(42);
}

/* The other tests prove nothing unless the guard page really traps. */
static void test_guard_page_traps(void **state)
{
    (void)state;
    guard_t g;
    guard_init(&g, 16);
    const volatile uint8_t *end = guard_place(&g, "abc", 3) + 3;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = exit_on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        uint8_t past = *end;
        _exit(past == 0 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
    guard_free(&g);
}

/* ---- byte-order helpers of pack_internal.h ---- */

static const struct {
    uint32_t value;
    uint8_t be[4];
} words[] = {
    {0x00000000u, {0x00, 0x00, 0x00, 0x00}},
    {0x00000001u, {0x00, 0x00, 0x00, 0x01}},
    {0x12345678u, {0x12, 0x34, 0x56, 0x78}},
    {0x80000000u, {0x80, 0x00, 0x00, 0x00}},
    {0x7F80FF01u, {0x7F, 0x80, 0xFF, 0x01}},
    {0xFFFFFFFFu, {0xFF, 0xFF, 0xFF, 0xFF}},
};

static void test_load_store_helpers(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(words); i++) {
        uint8_t le[4] = {words[i].be[3], words[i].be[2], words[i].be[1],
                         words[i].be[0]};
        /* Offset 1: the helpers must not assume alignment. */
        uint8_t buf[6];
        memset(buf, SENTINEL, sizeof(buf));
        zinx__store_be32(buf + 1, words[i].value);
        assert_memory_equal(buf + 1, words[i].be, 4);
        assert_int_equal(buf[0], SENTINEL);
        assert_int_equal(buf[5], SENTINEL);
        assert_int_equal(zinx__load_be32(buf + 1), words[i].value);
        zinx__store_le32(buf + 1, words[i].value);
        assert_memory_equal(buf + 1, le, 4);
        assert_int_equal(buf[0], SENTINEL);
        assert_int_equal(buf[5], SENTINEL);
        assert_int_equal(zinx__load_le32(buf + 1), words[i].value);
        assert_int_equal(zinx__load_be32(words[i].be), words[i].value);
        assert_int_equal(zinx__load_le32(le), words[i].value);
    }
}

/* ---- known byte vectors ---- */

#define BYTES(...) \
    (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

typedef struct vector {
    zinx_packet_format_t format;
    uint32_t id;
    const char *payload;
    uint32_t payload_len;
    const uint8_t *wire;
    size_t wire_len;
} vector_t;

static const vector_t vectors[] = {
    {ZINX_FORMAT_TLV, 1, "hello", 5,
     BYTES(0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x68, 0x65, 0x6c,
           0x6c, 0x6f)},
    {ZINX_FORMAT_LTV_LE, 1, "hello", 5,
     BYTES(0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c,
           0x6c, 0x6f)},
    {ZINX_FORMAT_TLV, 0x01020304u, "", 0,
     BYTES(0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00)},
    {ZINX_FORMAT_LTV_LE, 0x01020304u, "", 0,
     BYTES(0x00, 0x00, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01)},
    {ZINX_FORMAT_TLV, 0x80FF0102u, "\x80\xff\x00", 3,
     BYTES(0x80, 0xff, 0x01, 0x02, 0x00, 0x00, 0x00, 0x03, 0x80, 0xff, 0x00)},
    {ZINX_FORMAT_LTV_LE, 0x80FF0102u, "\x80\xff\x00", 3,
     BYTES(0x03, 0x00, 0x00, 0x00, 0x02, 0x01, 0xff, 0x80, 0x80, 0xff, 0x00)},
    {ZINX_FORMAT_TLV, 0x00000100u, "\x01", 1,
     BYTES(0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01)},
    {ZINX_FORMAT_LTV_LE, 0x00000100u, "\x01", 1,
     BYTES(0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01)},
};

/* Headers whose lengths are too big to carry a payload in a test. */
static const struct {
    zinx_packet_format_t format;
    uint32_t id;
    uint32_t len;
    uint8_t wire[ZINX_HEADER_LEN];
} headers[] = {
    {ZINX_FORMAT_TLV,
     0xDEADBEEFu,
     0x80000001u,
     {0xde, 0xad, 0xbe, 0xef, 0x80, 0x00, 0x00, 0x01}},
    {ZINX_FORMAT_LTV_LE,
     0xDEADBEEFu,
     0x80000001u,
     {0x01, 0x00, 0x00, 0x80, 0xef, 0xbe, 0xad, 0xde}},
    {ZINX_FORMAT_TLV,
     0x00000000u,
     0xFFFFFFFFu,
     {0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff}},
    {ZINX_FORMAT_LTV_LE,
     0xFFFFFFFFu,
     0x00000000u,
     {0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff}},
    {ZINX_FORMAT_TLV,
     0x00010203u,
     0x04050607u,
     {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07}},
    {ZINX_FORMAT_LTV_LE,
     0x00010203u,
     0x04050607u,
     {0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00}},
};

static void test_header_vectors(void **state)
{
    (void)state;
    guard_t g;
    guard_init(&g, ZINX_HEADER_LEN);
    for (size_t i = 0; i < COUNT(headers); i++) {
        uint8_t out[ZINX_HEADER_LEN];
        CHECK_RC(zinx_pack_header(headers[i].format, headers[i].id,
                                  headers[i].len, out),
                 0, "header %zu", i);
        assert_memory_equal(out, headers[i].wire, ZINX_HEADER_LEN);

        const uint8_t *in = guard_place(&g, headers[i].wire, ZINX_HEADER_LEN);
        uint32_t id = 0;
        uint32_t len = 0;
        CHECK_RC(zinx_unpack_header(headers[i].format, in, ZINX_HEADER_LEN, &id,
                                    &len),
                 0, "header %zu", i);
        assert_int_equal(id, headers[i].id);
        assert_int_equal(len, headers[i].len);

        id = 0;
        len = 0;
        CHECK_RC(zinx__read_header(headers[i].format, in, &id, &len), 0,
                 "header %zu", i);
        assert_int_equal(id, headers[i].id);
        assert_int_equal(len, headers[i].len);
    }
    guard_free(&g);
}

static void test_pack_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(vectors); i++) {
        const vector_t *v = &vectors[i];
        uint8_t out[64];
        assert_true(v->wire_len + 4 <= sizeof(out));
        memset(out, SENTINEL, sizeof(out));
        /* cap is exactly the frame size: an exact fit must succeed. */
        long n = zinx_pack(v->format, 4096, v->id, v->payload, v->payload_len,
                           out, v->wire_len);
        CHECK_RC(n, (long)v->wire_len, "vector %zu", i);
        assert_memory_equal(out, v->wire, v->wire_len);
        for (size_t k = v->wire_len; k < sizeof(out); k++)
            assert_int_equal(out[k], SENTINEL);

        uint8_t hdr[ZINX_HEADER_LEN];
        CHECK_RC(zinx_pack_header(v->format, v->id, v->payload_len, hdr), 0,
                 "vector %zu", i);
        assert_memory_equal(hdr, v->wire, ZINX_HEADER_LEN);
    }
}

static void test_unpack_vectors(void **state)
{
    (void)state;
    guard_t g;
    guard_init(&g, 64);
    for (size_t i = 0; i < COUNT(vectors); i++) {
        const vector_t *v = &vectors[i];
        const uint8_t *in = guard_place(&g, v->wire, v->wire_len);
        zinx_msg_t m;
        long n = zinx_unpack(v->format, 4096, in, v->wire_len, &m);
        CHECK_RC(n, (long)v->wire_len, "vector %zu", i);
        assert_int_equal(m.id, v->id);
        assert_int_equal(m.len, v->payload_len);
        assert_ptr_equal(m.data, in + ZINX_HEADER_LEN);
        assert_memory_equal(m.data, v->payload, v->payload_len);

        /* Bytes after the frame belong to the next one. */
        uint8_t more[64];
        memcpy(more, v->wire, v->wire_len);
        more[v->wire_len] = 0x00;
        more[v->wire_len + 1] = 0xff;
        in = guard_place(&g, more, v->wire_len + 2);
        n = zinx_unpack(v->format, 4096, in, v->wire_len + 2, &m);
        CHECK_RC(n, (long)v->wire_len, "vector %zu + 2 bytes", i);
        assert_int_equal(m.id, v->id);
        assert_int_equal(m.len, v->payload_len);
    }
    guard_free(&g);
}

static void fill_msg(zinx_msg_t *m)
{
    memset(m, SENTINEL, sizeof(*m));
}

static void assert_msg_untouched(const zinx_msg_t *m)
{
    zinx_msg_t ref;
    fill_msg(&ref);
    assert_memory_equal(m, &ref, sizeof(ref));
}

static void test_every_prefix_eagain(void **state)
{
    (void)state;
    guard_t g;
    guard_init(&g, 64);
    for (size_t i = 0; i < COUNT(vectors); i++) {
        const vector_t *v = &vectors[i];
        for (size_t k = 0; k < v->wire_len; k++) {
            const uint8_t *in = guard_place(&g, v->wire, k);
            zinx_msg_t m;
            fill_msg(&m);
            CHECK_RC(zinx_unpack(v->format, 4096, in, k, &m), ZINX_EAGAIN,
                     "vector %zu prefix %zu", i, k);
            assert_msg_untouched(&m);
        }
    }
    guard_free(&g);
}

static void test_truncated_header_eagain(void **state)
{
    (void)state;
    static const uint32_t lens[] = {0, 5, 4096, 4097, 0x80000000u, 0xFFFFFFFFu};
    guard_t g;
    guard_init(&g, ZINX_HEADER_LEN);
    for (size_t f = 0; f < N_FORMATS; f++) {
        for (size_t i = 0; i < COUNT(lens); i++) {
            uint8_t hdr[ZINX_HEADER_LEN];
            CHECK_RC(zinx_pack_header(formats[f], 0x01020304u, lens[i], hdr), 0,
                     "format %zu", f);
            for (size_t k = 0; k < ZINX_HEADER_LEN; k++) {
                const uint8_t *in = guard_place(&g, hdr, k);
                zinx_msg_t m;
                fill_msg(&m);
                CHECK_RC(zinx_unpack(formats[f], 4096, in, k, &m), ZINX_EAGAIN,
                         "format %zu len %u k %zu", f, lens[i], k);
                assert_msg_untouched(&m);
                uint32_t id = 7;
                uint32_t len = 7;
                CHECK_RC(zinx_unpack_header(formats[f], in, k, &id, &len),
                         ZINX_EAGAIN, "format %zu len %u k %zu", f, lens[i], k);
                assert_int_equal(id, 7);
                assert_int_equal(len, 7);
            }
        }
    }
    guard_free(&g);
}

/* ---- length limits ---- */

enum outcome { FRAME, PARTIAL, TOO_BIG };

static const struct {
    uint32_t max;
    uint32_t len;
    int header_only; /* else the whole frame, or minus `short_by` bytes */
    size_t short_by;
    enum outcome want;
} limits[] = {
    {4096, 4096, 0, 0, FRAME},
    {4096, 4096, 0, 1, PARTIAL},
    {4096, 4096, 1, 0, PARTIAL},
    {4096, 4097, 1, 0, TOO_BIG},
    {4096, 4097, 0, 0, TOO_BIG},
    {4096, 0xFFFFFFFFu, 1, 0, TOO_BIG},
    {4096, 0x80000000u, 1, 0, TOO_BIG},
    {4096, 0, 0, 0, FRAME},
    {0, 0, 0, 0, FRAME},
    {0, 1, 1, 0, TOO_BIG},
    {0xFFFFFFFFu, 0xFFFFFFFFu, 1, 0, PARTIAL},
    {0xFFFFFFFEu, 0xFFFFFFFFu, 1, 0, TOO_BIG},
};

static void test_length_limits(void **state)
{
    (void)state;
    enum { BIG = ZINX_HEADER_LEN + 4097 };
    uint8_t *frame = malloc(BIG);
    assert_non_null(frame);
    guard_t g;
    guard_init(&g, BIG);
    for (size_t f = 0; f < N_FORMATS; f++) {
        for (size_t i = 0; i < COUNT(limits); i++) {
            uint32_t len = limits[i].len;
            size_t n = ZINX_HEADER_LEN;
            if (!limits[i].header_only) {
                assert_true(len <= BIG - ZINX_HEADER_LEN);
                n += len - limits[i].short_by;
            }
            CHECK_RC(zinx_pack_header(formats[f], 99, len, frame), 0,
                     "format %zu limit %zu", f, i);
            for (size_t k = ZINX_HEADER_LEN; k < n; k++)
                frame[k] = (uint8_t)(k * 7u);
            const uint8_t *in = guard_place(&g, frame, n);
            zinx_msg_t m;
            fill_msg(&m);
            long r = zinx_unpack(formats[f], limits[i].max, in, n, &m);
            if (limits[i].want == FRAME) {
                CHECK_RC(r, (long)(ZINX_HEADER_LEN + len),
                         "format %zu limit %zu", f, i);
                assert_int_equal(m.id, 99);
                assert_int_equal(m.len, len);
                assert_ptr_equal(m.data, in + ZINX_HEADER_LEN);
                continue;
            }
            CHECK_RC(r, limits[i].want == TOO_BIG ? ZINX_EMSGSIZE : ZINX_EAGAIN,
                     "format %zu limit %zu", f, i);
            assert_msg_untouched(&m);
        }
    }
    guard_free(&g);
    free(frame);
}

/* ---- streams: split points and byte-at-a-time ---- */

#define MAX_PAYLOAD 512
#define MAX_MSGS 16
#define ACC_CAP 2048

typedef struct record {
    uint32_t id;
    uint32_t len;
    uint8_t data[MAX_PAYLOAD];
} record_t;

/* A minimal receive buffer, as the connection code would keep one. */
typedef struct acc {
    zinx_packet_format_t format;
    guard_t *guard;
    uint8_t buf[ACC_CAP];
    size_t fill;
    record_t out[MAX_MSGS];
    size_t n_out;
} acc_t;

static void acc_init(acc_t *a, zinx_packet_format_t format, guard_t *g)
{
    a->format = format;
    a->guard = g;
    a->fill = 0;
    a->n_out = 0;
}

static void acc_record(acc_t *a, const zinx_msg_t *m)
{
    assert_true(a->n_out < MAX_MSGS);
    assert_true(m->len <= MAX_PAYLOAD);
    record_t *r = &a->out[a->n_out++];
    r->id = m->id;
    r->len = m->len;
    if (m->len > 0)
        memcpy(r->data, m->data, m->len);
}

static void acc_feed(acc_t *a, const uint8_t *p, size_t n)
{
    assert_true(n <= ACC_CAP - a->fill);
    if (n > 0)
        memcpy(a->buf + a->fill, p, n);
    a->fill += n;
    size_t off = 0;
    for (;;) {
        size_t avail = a->fill - off;
        const uint8_t *in = guard_place(a->guard, a->buf + off, avail);
        zinx_msg_t m;
        long r = zinx_unpack(a->format, MAX_PAYLOAD, in, avail, &m);
        if (r == ZINX_EAGAIN)
            break;
        CHECK_RC(r > 0, 1, "decode at %zu: %ld (%s)", off, r, rc_name(r));
        assert_true((size_t)r <= avail);
        assert_ptr_equal(m.data, in + ZINX_HEADER_LEN);
        acc_record(a, &m);
        off += (size_t)r;
    }
    memmove(a->buf, a->buf + off, a->fill - off);
    a->fill -= off;
}

typedef struct stream {
    record_t msgs[MAX_MSGS];
    size_t n_msgs;
    size_t ends[MAX_MSGS]; /* offset just past each frame */
    uint8_t bytes[ACC_CAP];
    size_t len;
} stream_t;

static void stream_add(stream_t *s, zinx_packet_format_t format, uint32_t id,
                       uint32_t len)
{
    assert_true(s->n_msgs < MAX_MSGS && len <= MAX_PAYLOAD);
    record_t *m = &s->msgs[s->n_msgs];
    m->id = id;
    m->len = len;
    for (uint32_t i = 0; i < len; i++)
        m->data[i] = (uint8_t)(id + i * 31u);
    long n = zinx_pack(format, MAX_PAYLOAD, id, m->data, len, s->bytes + s->len,
                       sizeof(s->bytes) - s->len);
    CHECK_RC(n, (long)(ZINX_HEADER_LEN + len), "pack id %u", id);
    s->len += (size_t)n;
    s->ends[s->n_msgs++] = s->len;
}

static void stream_build(stream_t *s, zinx_packet_format_t format)
{
    s->n_msgs = 0;
    s->len = 0;
    stream_add(s, format, 1, 5);
    stream_add(s, format, 2, 0);
    stream_add(s, format, 0, 0);
    stream_add(s, format, 0xFFFFFFFFu, 1);
    stream_add(s, format, 0x80000000u, 300);
    stream_add(s, format, 7, 0);
    stream_add(s, format, 0x00FF00FFu, MAX_PAYLOAD);
    stream_add(s, format, 3, 3);
}

/* Frames wholly inside the first `upto` bytes must all be out, no more. */
static void check_decoded(const acc_t *a, const stream_t *s, size_t upto)
{
    size_t want = 0;
    while (want < s->n_msgs && s->ends[want] <= upto)
        want++;
    CHECK_RC((long)a->n_out, (long)want, "messages after %zu bytes", upto);
    for (size_t i = 0; i < a->n_out; i++) {
        assert_int_equal(a->out[i].id, s->msgs[i].id);
        assert_int_equal(a->out[i].len, s->msgs[i].len);
        assert_memory_equal(a->out[i].data, s->msgs[i].data, s->msgs[i].len);
    }
    size_t done = want == 0 ? 0 : s->ends[want - 1];
    CHECK_RC((long)a->fill, (long)(upto - done), "kept after %zu", upto);
}

static void test_stream_every_split(void **state)
{
    (void)state;
    stream_t *s = malloc(sizeof(*s));
    acc_t *a = malloc(sizeof(*a));
    assert_true(s != NULL && a != NULL);
    guard_t g;
    guard_init(&g, ACC_CAP);
    for (size_t f = 0; f < N_FORMATS; f++) {
        stream_build(s, formats[f]);
        for (size_t k = 0; k <= s->len; k++) {
            acc_init(a, formats[f], &g);
            acc_feed(a, s->bytes, k);
            check_decoded(a, s, k);
            acc_feed(a, s->bytes + k, s->len - k);
            check_decoded(a, s, s->len);
        }
    }
    guard_free(&g);
    free(a);
    free(s);
}

static void test_stream_byte_at_a_time(void **state)
{
    (void)state;
    stream_t *s = malloc(sizeof(*s));
    acc_t *a = malloc(sizeof(*a));
    assert_true(s != NULL && a != NULL);
    guard_t g;
    guard_init(&g, ACC_CAP);
    for (size_t f = 0; f < N_FORMATS; f++) {
        stream_build(s, formats[f]);
        acc_init(a, formats[f], &g);
        for (size_t k = 0; k < s->len; k++) {
            acc_feed(a, s->bytes + k, 1);
            check_decoded(a, s, k + 1);
        }
        assert_int_equal(a->n_out, s->n_msgs);
    }
    guard_free(&g);
    free(a);
    free(s);
}

/* ---- zinx_pack errors and round trips ---- */

static void assert_all_sentinel(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], SENTINEL);
}

static void test_pack_errors(void **state)
{
    (void)state;
    static const char data[17] = "0123456789abcdef";
    uint8_t out[64];
    static const struct {
        uint32_t len;
        size_t cap;
        long want; /* 0: the frame size */
    } cases[] = {
        {17, sizeof(out), ZINX_EMSGSIZE}, /* max is 16 */
        {17, 0, ZINX_EMSGSIZE},
        {16, sizeof(out), 0},
        {16, 24, 0},
        {16, 23, ZINX_ENOBUFS},
        {5, 12, ZINX_ENOBUFS},
        {5, 13, 0},
        {0, 8, 0},
        {0, 7, ZINX_ENOBUFS},
        {0, 0, ZINX_ENOBUFS},
        {1, 0, ZINX_ENOBUFS},
    };
    for (size_t f = 0; f < N_FORMATS; f++) {
        zinx_packet_format_t fmt = formats[f];
        for (size_t i = 0; i < COUNT(cases); i++) {
            memset(out, SENTINEL, sizeof(out));
            long want = cases[i].want != 0
                            ? cases[i].want
                            : (long)(ZINX_HEADER_LEN + cases[i].len);
            long r =
                zinx_pack(fmt, 16, 5, data, cases[i].len, out, cases[i].cap);
            CHECK_RC(r, want, "format %zu case %zu", f, i);
            if (r < 0)
                assert_all_sentinel(out, sizeof(out));
            else
                assert_all_sentinel(out + r, sizeof(out) - (size_t)r);
        }

        memset(out, SENTINEL, sizeof(out));
        CHECK_RC(zinx_pack(fmt, 16, 5, NULL, 1, out, sizeof(out)), ZINX_EINVAL,
                 "format %zu NULL data", f);
        CHECK_RC(zinx_pack(fmt, 16, 5, data, 1, NULL, sizeof(out)), ZINX_EINVAL,
                 "format %zu NULL out", f);
        assert_all_sentinel(out, sizeof(out));
        /* No payload: NULL data is fine. */
        CHECK_RC(zinx_pack(fmt, 16, 5, NULL, 0, out, sizeof(out)),
                 ZINX_HEADER_LEN, "format %zu NULL data len 0", f);
    }
    memset(out, SENTINEL, sizeof(out));
    CHECK_RC(zinx_pack(FORMAT_BAD, 16, 5, data, 1, out, sizeof(out)),
             ZINX_EINVAL, "bad format");
    CHECK_RC(
        zinx_pack((zinx_packet_format_t)-1, 16, 5, data, 1, out, sizeof(out)),
        ZINX_EINVAL, "format -1");
    assert_all_sentinel(out, sizeof(out));
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uint8_t hdr[ZINX_HEADER_LEN];
    memset(hdr, SENTINEL, sizeof(hdr));
    CHECK_RC(zinx_pack_header(FORMAT_BAD, 1, 1, hdr), ZINX_EINVAL, "bad");
    assert_all_sentinel(hdr, sizeof(hdr));

    uint8_t frame[ZINX_HEADER_LEN + 5];
    CHECK_RC(
        zinx_pack(ZINX_FORMAT_TLV, 16, 1, "hello", 5, frame, sizeof(frame)),
        sizeof(frame), "pack");
    uint32_t id = 0;
    uint32_t len = 0;
    zinx_msg_t m;
    fill_msg(&m);
    CHECK_RC(zinx_unpack(FORMAT_BAD, 16, frame, sizeof(frame), &m), ZINX_EINVAL,
             "bad format");
    CHECK_RC(zinx_unpack(ZINX_FORMAT_TLV, 16, NULL, sizeof(frame), &m),
             ZINX_EINVAL, "NULL buf");
    assert_msg_untouched(&m);
    CHECK_RC(zinx_unpack(ZINX_FORMAT_TLV, 16, frame, sizeof(frame), NULL),
             ZINX_EINVAL, "NULL msg");
    CHECK_RC(zinx_unpack_header(FORMAT_BAD, frame, sizeof(frame), &id, &len),
             ZINX_EINVAL, "bad format");
    CHECK_RC(zinx__read_header(FORMAT_BAD, frame, &id, &len), ZINX_EINVAL,
             "bad format");
    CHECK_RC(zinx_unpack_header(ZINX_FORMAT_TLV, NULL, 8, &id, &len),
             ZINX_EINVAL, "NULL buf");
    CHECK_RC(zinx_unpack_header(ZINX_FORMAT_TLV, frame, 8, NULL, &len),
             ZINX_EINVAL, "NULL id");
    CHECK_RC(zinx_unpack_header(ZINX_FORMAT_TLV, frame, 8, &id, NULL),
             ZINX_EINVAL, "NULL len");
    assert_int_equal(id, 0);
    assert_int_equal(len, 0);
}

/* xorshift32: reproducible payloads without touching rand()'s state. */
static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_round_trip(void **state)
{
    (void)state;
    static const uint32_t lens[] = {0,   1,    2,    7,     8,     9,       255,
                                    256, 4095, 4096, 65535, 65536, 1u << 20};
    static const uint32_t ids[] = {0,           1,           0x7FFFFFFFu,
                                   0x80000000u, 0xFFFFFFFFu, 0x00FF00FFu};
    const uint32_t max = 1u << 20;
    const size_t cap = ZINX_HEADER_LEN + max;
    uint8_t *payload = malloc(max);
    uint8_t *out = malloc(cap);
    assert_true(payload != NULL && out != NULL);
    guard_t g;
    guard_init(&g, cap);
    uint32_t seed = 0x9E3779B9u;
    for (size_t f = 0; f < N_FORMATS; f++) {
        for (size_t i = 0; i < COUNT(lens); i++) {
            uint32_t id = ids[i % COUNT(ids)];
            for (uint32_t k = 0; k < lens[i]; k++)
                payload[k] = (uint8_t)next_random(&seed);
            long n = zinx_pack(formats[f], max, id, payload, lens[i], out, cap);
            CHECK_RC(n, (long)(ZINX_HEADER_LEN + lens[i]),
                     "format %zu "
                     "len %u",
                     f, lens[i]);
            const uint8_t *in = guard_place(&g, out, (size_t)n);
            zinx_msg_t m;
            CHECK_RC(zinx_unpack(formats[f], max, in, (size_t)n, &m), n,
                     "format %zu len %u", f, lens[i]);
            assert_int_equal(m.id, id);
            assert_int_equal(m.len, lens[i]);
            assert_ptr_equal(m.data, in + ZINX_HEADER_LEN);
            assert_memory_equal(m.data, payload, lens[i]);

            uint32_t hid = 0;
            uint32_t hlen = 0;
            CHECK_RC(zinx_unpack_header(formats[f], in, (size_t)n, &hid, &hlen),
                     0, "format %zu len %u", f, lens[i]);
            assert_int_equal(hid, id);
            assert_int_equal(hlen, lens[i]);
        }
    }
    guard_free(&g);
    free(out);
    free(payload);
}

/* ---- format names ---- */

static void test_format_parse(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        zinx_packet_format_t want;
    } good[] = {
        {"tlv", ZINX_FORMAT_TLV},
        {"TLV", ZINX_FORMAT_TLV},
        {"Tlv", ZINX_FORMAT_TLV},
        {"ltv_le", ZINX_FORMAT_LTV_LE},
        {"LTV_LE", ZINX_FORMAT_LTV_LE},
        {"Ltv_Le", ZINX_FORMAT_LTV_LE},
        {"zinx_pack_tlv_big_endian", ZINX_FORMAT_TLV},
        {"ZINX_PACK_TLV_BIG_ENDIAN", ZINX_FORMAT_TLV},
        {"zinx_pack_ltv_little_endian", ZINX_FORMAT_LTV_LE},
        {"Zinx_Pack_LTV_Little_Endian", ZINX_FORMAT_LTV_LE},
    };
    static const char *const bad[] = {
        "",
        "t",
        "tl",
        "tlvx",
        "tlv ",
        " tlv",
        "tlv\n",
        "ltv",
        "ltv_be",
        "ltv-le",
        "ltvle",
        "ltv_le_",
        "unknown",
        "zinx_pack_tlv",
        "zinx_pack_tlv_little_endian",
        "zinx_pack_ltv_big_endian",
        "zinx_pack_tlv_big_endian ",
        "t\xcc\x80lv",
    };
    for (size_t i = 0; i < COUNT(good); i++) {
        /* Start from the other format so a no-op cannot pass. */
        zinx_packet_format_t f = good[i].want == ZINX_FORMAT_TLV
                                     ? ZINX_FORMAT_LTV_LE
                                     : ZINX_FORMAT_TLV;
        CHECK_RC(zinx_packet_format_parse(good[i].name, &f), 0, "'%s'",
                 good[i].name);
        assert_int_equal(f, good[i].want);
    }
    for (size_t i = 0; i < COUNT(bad); i++) {
        zinx_packet_format_t f = ZINX_FORMAT_TLV;
        CHECK_RC(zinx_packet_format_parse(bad[i], &f), ZINX_EINVAL, "'%s'",
                 bad[i]);
    }
    zinx_packet_format_t f;
    CHECK_RC(zinx_packet_format_parse(NULL, &f), ZINX_EINVAL, "NULL name");
    CHECK_RC(zinx_packet_format_parse("tlv", NULL), ZINX_EINVAL, "NULL out");
}

static void test_format_name(void **state)
{
    (void)state;
    assert_string_equal(zinx_packet_format_name(ZINX_FORMAT_TLV), "tlv");
    assert_string_equal(zinx_packet_format_name(ZINX_FORMAT_LTV_LE), "ltv_le");
    assert_string_equal(zinx_packet_format_name(FORMAT_BAD), "unknown");
    assert_string_equal(zinx_packet_format_name((zinx_packet_format_t)-1),
                        "unknown");
    for (size_t i = 0; i < N_FORMATS; i++) {
        zinx_packet_format_t f = FORMAT_BAD;
        CHECK_RC(
            zinx_packet_format_parse(zinx_packet_format_name(formats[i]), &f),
            0, "format %zu", i);
        assert_int_equal(f, formats[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_page_traps),
        cmocka_unit_test(test_load_store_helpers),
        cmocka_unit_test(test_header_vectors),
        cmocka_unit_test(test_pack_vectors),
        cmocka_unit_test(test_unpack_vectors),
        cmocka_unit_test(test_every_prefix_eagain),
        cmocka_unit_test(test_truncated_header_eagain),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_stream_every_split),
        cmocka_unit_test(test_stream_byte_at_a_time),
        cmocka_unit_test(test_pack_errors),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_format_parse),
        cmocka_unit_test(test_format_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
