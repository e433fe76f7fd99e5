/*
 * KCP's ARQ (src/kcp/arq.c, segment.c) alone: two conversations joined
 * by an in-memory link the test drives by hand (every datagram is kept
 * and delivered, dropped, duplicated or reordered as a test says) and a
 * clock the test advances. No socket, no thread, no I/O backend.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kcp/arq.h"
#include "zinx.h"

#define CONV 0x11223344u

/* ---- the link ------------------------------------------------------------ */

typedef struct dgram {
    uint8_t *p;
    size_t n;
} dgram_t;

/* The datagrams one side sent and the test has not handled yet. */
typedef struct wire {
    dgram_t *q;
    size_t n, cap;
} wire_t;

typedef struct pair {
    zinx__kcp_t *a, *b;
    wire_t a2b, b2a;
    uint32_t now;
} pair_t;

static void capture(void *udata, const uint8_t *p, size_t n)
{
    wire_t *w = udata;
    assert_true(n >= ZINX__KCP_HEADER);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->q = realloc(w->q, w->cap * sizeof(*w->q));
        assert_non_null(w->q);
    }
    w->q[w->n].p = malloc(n);
    assert_non_null(w->q[w->n].p);
    memcpy(w->q[w->n].p, p, n);
    w->q[w->n].n = n;
    w->n++;
}

static void wire_clear(wire_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->q[i].p);
    w->n = 0;
}

static void pair_open(pair_t *pr, const zinx__kcp_conf_t *conf, uint32_t now)
{
    memset(pr, 0, sizeof(*pr));
    pr->now = now;
    pr->a = zinx__kcp_new(CONV, conf, capture, &pr->a2b, now);
    pr->b = zinx__kcp_new(CONV, conf, capture, &pr->b2a, now);
    assert_non_null(pr->a);
    assert_non_null(pr->b);
}

static void pair_close(pair_t *pr)
{
    zinx__kcp_free(pr->a);
    zinx__kcp_free(pr->b);
    wire_clear(&pr->a2b);
    wire_clear(&pr->b2a);
    free(pr->a2b.q);
    free(pr->b2a.q);
}

/* What happens to the i-th datagram (counting from 0 over the test) on
   its way: 0 delivered, 1 dropped, 2 delivered twice. */
typedef int (*fate_fn)(void *ctx, const dgram_t *d, unsigned long i);

/* Hands everything w holds to k, in reverse order when reorder is set. */
static void deliver(wire_t *w, zinx__kcp_t *k, uint32_t now, fate_fn fate,
                    void *ctx, unsigned long *counter, bool reorder)
{
    for (size_t j = 0; j < w->n; j++) {
        const dgram_t *d = &w->q[reorder ? w->n - 1 - j : j];
        int f = fate ? fate(ctx, d, (*counter)++) : 0;
        if (f == 1)
            continue;
        assert_int_equal(zinx__kcp_input(k, d->p, d->n, now), 0);
        if (f == 2)
            assert_int_equal(zinx__kcp_input(k, d->p, d->n, now), 0);
    }
    wire_clear(w);
}

/* Segments of one command in a datagram; with sn_out, the last's sn. */
static int count_cmd(const dgram_t *d, uint8_t cmd, uint32_t *sn_out)
{
    int count = 0;
    size_t off = 0;
    while (off < d->n) {
        zinx__kcp_seg_hdr_t h;
        assert_int_equal(zinx__kcp_seg_parse(d->p + off, d->n - off, &h), 0);
        assert_int_equal(h.conv, CONV);
        if (h.cmd == cmd) {
            count++;
            if (sn_out)
                *sn_out = h.sn;
        }
        off += ZINX__KCP_HEADER + h.len;
    }
    return count;
}

static int wire_count(const wire_t *w, uint8_t cmd)
{
    int count = 0;
    for (size_t i = 0; i < w->n; i++)
        count += count_cmd(&w->q[i], cmd, NULL);
    return count;
}

/* Whether the wire holds a PUSH of sn. */
static bool wire_has_push(const wire_t *w, uint32_t sn)
{
    for (size_t i = 0; i < w->n; i++) {
        size_t off = 0;
        const dgram_t *d = &w->q[i];
        while (off < d->n) {
            zinx__kcp_seg_hdr_t h;
            assert_int_equal(zinx__kcp_seg_parse(d->p + off, d->n - off, &h),
                             0);
            if (h.cmd == ZINX__KCP_CMD_PUSH && h.sn == sn)
                return true;
            off += ZINX__KCP_HEADER + h.len;
        }
    }
    return false;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/*
 * Moves `len` bytes each way (a to b from ab, b to a from ba) through the
 * link, one interval per round: both sides send what they can, update,
 * exchange datagrams (through fate), and read. Returns the rounds taken.
 */
typedef struct flow {
    const uint8_t *src;
    uint8_t *dst;
    size_t len, sent, got;
    size_t chunk; /* bytes per send call */
} flow_t;

static void flow_step(flow_t *f, zinx__kcp_t *from, zinx__kcp_t *to)
{
    while (f->sent < f->len) {
        size_t n = f->len - f->sent < f->chunk ? f->len - f->sent : f->chunk;
        ssize_t rc = zinx__kcp_send(from, f->src + f->sent, n);
        if (rc == ZINX_EAGAIN) {
            assert_false(zinx__kcp_writable(from));
            break;
        }
        assert_true(rc > 0 && (size_t)rc <= n);
        f->sent += (size_t)rc;
    }
    for (;;) {
        size_t ready = zinx__kcp_readable(to);
        ssize_t rc = zinx__kcp_recv(to, f->dst + f->got, f->len - f->got);
        if (rc == ZINX_EAGAIN) {
            assert_int_equal(ready, 0);
            break;
        }
        assert_true(rc > 0 && (size_t)rc <= ready);
        f->got += (size_t)rc;
        assert_true(f->got <= f->len);
    }
}

static unsigned run_flows(pair_t *pr, flow_t *ab, flow_t *ba, fate_fn fate,
                          void *ctx, unsigned max_rounds, uint32_t step)
{
    unsigned long counter = 0;
    unsigned r;
    for (r = 0; r < max_rounds; r++) {
        if (ab)
            flow_step(ab, pr->a, pr->b);
        if (ba)
            flow_step(ba, pr->b, pr->a);
        bool done = (!ab || ab->got == ab->len) && (!ba || ba->got == ba->len);
        if (done && zinx__kcp_waiting(pr->a) == 0 &&
            zinx__kcp_waiting(pr->b) == 0)
            break;
        zinx__kcp_update(pr->a, pr->now);
        zinx__kcp_update(pr->b, pr->now);
        deliver(&pr->a2b, pr->b, pr->now, fate, ctx, &counter, r % 3 == 1);
        deliver(&pr->b2a, pr->a, pr->now, fate, ctx, &counter, r % 3 == 2);
        pr->now += step;
    }
    return r;
}

static void check_flow(const flow_t *f)
{
    assert_int_equal(f->got, f->len);
    assert_memory_equal(f->src, f->dst, f->len);
}

static void flow_init(flow_t *f, size_t len, size_t chunk, uint32_t seed)
{
    memset(f, 0, sizeof(*f));
    uint8_t *src = malloc(len);
    f->dst = malloc(len);
    assert_non_null(src);
    assert_non_null(f->dst);
    fill_pattern(src, len, seed);
    f->src = src;
    f->len = len;
    f->chunk = chunk;
}

static void flow_free(flow_t *f)
{
    free((void *)f->src);
    free(f->dst);
}

/* ---- segments ------------------------------------------------------------ */

/* The header's field order and byte order, against bytes laid out by
   hand as kcp-go encodes them. */
static void test_seg_layout(void **state)
{
    (void)state;
    const uint8_t wire[ZINX__KCP_HEADER + 3] = {
        0x44, 0x33, 0x22, 0x11, 81,   3,    0x20, 0x01, 0x04,
        0x03, 0x02, 0x01, 0x08, 0x07, 0x06, 0x05, 0x0c, 0x0b,
        0x0a, 0x09, 3,    0,    0,    0,    'a',  'b',  'c'};
    zinx__kcp_seg_hdr_t h;
    assert_int_equal(zinx__kcp_seg_parse(wire, sizeof(wire), &h), 0);
    assert_int_equal(h.conv, 0x11223344u);
    assert_int_equal(h.cmd, ZINX__KCP_CMD_PUSH);
    assert_int_equal(h.frg, 3);
    assert_int_equal(h.wnd, 0x0120);
    assert_int_equal(h.ts, 0x01020304u);
    assert_int_equal(h.sn, 0x05060708u);
    assert_int_equal(h.una, 0x090a0b0cu);
    assert_int_equal(h.len, 3);
    uint8_t out[ZINX__KCP_HEADER];
    zinx__kcp_seg_write(out, &h);
    assert_memory_equal(out, wire, ZINX__KCP_HEADER);

    /* Every cut of it is refused, never read past. */
    for (size_t n = 0; n < sizeof(wire); n++)
        assert_int_equal(zinx__kcp_seg_parse(wire, n, &h), ZINX_EPROTO);
}

static size_t put_seg(uint8_t *out, uint32_t conv, uint8_t cmd, uint32_t sn,
                      uint32_t len)
{
    zinx__kcp_seg_hdr_t h = {
        .conv = conv, .cmd = cmd, .wnd = 32, .sn = sn, .len = len};
    zinx__kcp_seg_write(out, &h);
    memset(out + ZINX__KCP_HEADER, 'x', len);
    return ZINX__KCP_HEADER + len;
}

static void test_seg_opens(void **state)
{
    (void)state;
    uint8_t d[256];
    uint32_t conv = 0;
    size_t n = put_seg(d, 7, ZINX__KCP_CMD_PUSH, 0, 5);
    assert_int_equal(zinx__kcp_seg_opens(d, n, 0, &conv), 0);
    assert_int_equal(conv, 7);
    /* Not the first sequence number: a stray from an old conversation. */
    assert_int_equal(zinx__kcp_seg_opens(d, n, 1, &conv), ZINX_EPROTO);
    /* An ACK and a PUSH of 0 together open it; the ACK alone does not. */
    size_t m = put_seg(d, 7, ZINX__KCP_CMD_ACK, 0, 0);
    assert_int_equal(zinx__kcp_seg_opens(d, m, 0, &conv), ZINX_EPROTO);
    n = m + put_seg(d + m, 7, ZINX__KCP_CMD_PUSH, 0, 0);
    assert_int_equal(zinx__kcp_seg_opens(d, n, 0, &conv), 0);
    /* Two conversations in one datagram. */
    n = put_seg(d, 7, ZINX__KCP_CMD_PUSH, 0, 1);
    n += put_seg(d + n, 8, ZINX__KCP_CMD_PUSH, 1, 1);
    assert_int_equal(zinx__kcp_seg_opens(d, n, 0, &conv), ZINX_EPROTO);
    /* Trailing junk, a truncated body, an unknown command, nothing. */
    n = put_seg(d, 7, ZINX__KCP_CMD_PUSH, 0, 4);
    d[n] = 0;
    assert_int_equal(zinx__kcp_seg_opens(d, n + 1, 0, &conv), ZINX_EPROTO);
    assert_int_equal(zinx__kcp_seg_opens(d, n - 1, 0, &conv), ZINX_EPROTO);
    put_seg(d, 7, 85, 0, 0);
    assert_int_equal(zinx__kcp_seg_opens(d, 24, 0, &conv), ZINX_EPROTO);
    assert_int_equal(zinx__kcp_seg_opens(d, 0, 0, &conv), ZINX_EPROTO);
    /* first_sn other than 0 (the wrap-around tests). */
    n = put_seg(d, 9, ZINX__KCP_CMD_PUSH, 0xFFFFFFF0u, 0);
    assert_int_equal(zinx__kcp_seg_opens(d, n, 0xFFFFFFF0u, &conv), 0);
    assert_int_equal(conv, 9);
}

/* ---- delivery ------------------------------------------------------------ */

static int lossy(void *ctx, const dgram_t *d, unsigned long i)
{
    (void)ctx;
    (void)d;
    if (i % 7 == 3)
        return 1;
    return i % 11 == 5 ? 2 : 0;
}

static void test_stream_in_order(void **state)
{
    (void)state;
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    pair_t pr;
    pair_open(&pr, &conf, 1000);
    flow_t ab, ba;
    flow_init(&ab, 300000, 777, 1);
    flow_init(&ba, 120000, 5000, 2);
    run_flows(&pr, &ab, &ba, NULL, NULL, 5000, 10);
    check_flow(&ab);
    check_flow(&ba);
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(pr.a, &st);
    /* Stream mode fills segments: 300000 bytes in ceil(300000/1376). */
    assert_int_equal(st.segs_sent, (300000 + 1375) / 1376);
    assert_int_equal(st.retrans_timeout + st.retrans_fast, 0);
    assert_int_equal(zinx__kcp_unacked_bytes(pr.a), 0);
    flow_free(&ab);
    flow_free(&ba);
    pair_close(&pr);

    /* Again through loss, duplication and reordering. */
    pair_open(&pr, &conf, 1000);
    flow_init(&ab, 200000, 3000, 3);
    flow_init(&ba, 50000, 100, 4);
    run_flows(&pr, &ab, &ba, lossy, NULL, 20000, 10);
    check_flow(&ab);
    check_flow(&ba);
    zinx__kcp_get_stats(pr.b, &st);
    assert_true(st.dup_received > 0);
    flow_free(&ab);
    flow_free(&ba);
    pair_close(&pr);
}

static void test_message_mode(void **state)
{
    (void)state;
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    conf.stream = false;
    pair_t pr;
    pair_open(&pr, &conf, 5);

    /* One message of 3 segments and 10 bytes: frg 3, 2, 1, 0. */
    uint8_t msg[3 * 1376 + 10];
    fill_pattern(msg, sizeof(msg), 9);
    assert_int_equal(zinx__kcp_send(pr.a, msg, sizeof(msg)), sizeof(msg));
    assert_int_equal(zinx__kcp_waiting(pr.a), 4);
    zinx__kcp_flush(pr.a, pr.now);
    assert_int_equal(pr.a2b.n, 4);
    for (size_t i = 0; i < 4; i++) {
        zinx__kcp_seg_hdr_t h;
        assert_int_equal(zinx__kcp_seg_parse(pr.a2b.q[i].p, pr.a2b.q[i].n, &h),
                         0);
        assert_int_equal(h.frg, 3 - i);
        assert_int_equal(h.sn, i);
        assert_int_equal(h.len, i < 3 ? 1376 : 10);
    }
    unsigned long c = 0;
    deliver(&pr.a2b, pr.b, pr.now, NULL, NULL, &c, true);
    uint8_t got[sizeof(msg)];
    assert_int_equal(zinx__kcp_readable(pr.b), sizeof(msg));
    assert_int_equal(zinx__kcp_recv(pr.b, got, sizeof(got)), sizeof(msg));
    assert_memory_equal(got, msg, sizeof(msg));
    pair_close(&pr);

    /* A message is at most min(rcv_wnd, 128) fragments: the rest of a
       longer send is left for the next call. */
    conf.rcv_wnd = 4;
    pair_open(&pr, &conf, 5);
    static uint8_t big[10 * 1376];
    assert_int_equal(zinx__kcp_send(pr.a, big, sizeof(big)), 4 * 1376);
    assert_int_equal(zinx__kcp_send(pr.a, big, sizeof(big)), 4 * 1376);
    assert_int_equal(zinx__kcp_waiting(pr.a), 8);
    pair_close(&pr);
    conf.rcv_wnd = 32;
    /* And at the free send window: back-pressure cuts messages too. */
    conf.snd_wnd = 3;
    pair_open(&pr, &conf, 5);
    assert_int_equal(zinx__kcp_send(pr.a, big, sizeof(big)), 3 * 1376);
    assert_int_equal(zinx__kcp_send(pr.a, big, 1), ZINX_EAGAIN);
    pair_close(&pr);
    conf.snd_wnd = 32;

    /* A long stream of messages with the congestion window on, lossy. */
    conf.nc = false;
    pair_open(&pr, &conf, 5);
    flow_t ab, ba;
    flow_init(&ab, 150000, 4000, 5);
    flow_init(&ba, 60000, 333, 6);
    run_flows(&pr, &ab, &ba, lossy, NULL, 20000, 10);
    check_flow(&ab);
    check_flow(&ba);
    flow_free(&ab);
    flow_free(&ba);
    pair_close(&pr);
}

/* ---- retransmission ------------------------------------------------------ */

/* The times A resends sn 0 while every datagram it sends is dropped. */
static void resend_times(bool nodelay, uint32_t *times, int n)
{
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    conf.nodelay = nodelay;
    pair_t pr;
    pair_open(&pr, &conf, 50000);
    assert_int_equal(zinx__kcp_send(pr.a, "hello", 5), 5);
    uint32_t start = pr.now;
    int seen = -1; /* the first send is not a resend */
    while (seen < n) {
        zinx__kcp_update(pr.a, pr.now);
        if (wire_has_push(&pr.a2b, 0)) {
            if (seen >= 0)
                times[seen] = pr.now - start;
            seen++;
        }
        wire_clear(&pr.a2b);
        pr.now += 10;
        assert_true(pr.now - start < 100000);
    }
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.retrans_timeout, n);
    assert_int_equal(st.segs_sent, 1);
    pair_close(&pr);
}

static void test_rto_retransmit(void **state)
{
    (void)state;
    uint32_t t[3];
    /* RTO 200 ms before any RTT sample; then x1.5 with nodelay... */
    resend_times(true, t, 3);
    assert_int_equal(t[0], 200);
    assert_int_equal(t[1], 200 + 300);
    assert_int_equal(t[2], 200 + 300 + 450);
    /* ...and doubling without. */
    resend_times(false, t, 3);
    assert_int_equal(t[0], 200);
    assert_int_equal(t[1], 200 + 400);
    assert_int_equal(t[2], 200 + 400 + 800);

    /* The resent segment gets through and is delivered once. */
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    pair_t pr;
    pair_open(&pr, &conf, 0);
    assert_int_equal(zinx__kcp_send(pr.a, "abc", 3), 3);
    zinx__kcp_update(pr.a, pr.now);
    assert_true(wire_has_push(&pr.a2b, 0));
    wire_clear(&pr.a2b); /* lost */
    for (int i = 0; i < 19; i++) {
        pr.now += 10;
        zinx__kcp_update(pr.a, pr.now);
        assert_int_equal(pr.a2b.n, 0);
    }
    pr.now += 10;
    zinx__kcp_update(pr.a, pr.now);
    assert_true(wire_has_push(&pr.a2b, 0));
    unsigned long c = 0;
    deliver(&pr.a2b, pr.b, pr.now, NULL, NULL, &c, false);
    char buf[8];
    assert_int_equal(zinx__kcp_recv(pr.b, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "abc", 3);
    /* Its ACK frees the sender and measures the RTT (20 ms here). */
    pr.now += 20;
    zinx__kcp_flush(pr.b, pr.now);
    deliver(&pr.b2a, pr.a, pr.now, NULL, NULL, &c, false);
    assert_int_equal(zinx__kcp_waiting(pr.a), 0);
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.srtt, 20);
    /* srtt + max(interval, 4 * rttvar) = 20 + 40, above the 30 floor. */
    assert_int_equal(st.rto, 60);
    /* A second sample of 40 ms: srtt 7/8 old + 1/8 new = 22, rttvar
       3/4 old + 1/4 |40 - 20| = 12, RTO 22 + 48. */
    assert_int_equal(zinx__kcp_send(pr.a, "d", 1), 1);
    zinx__kcp_flush(pr.a, pr.now);
    pr.now += 40;
    deliver(&pr.a2b, pr.b, pr.now, NULL, NULL, &c, false);
    zinx__kcp_flush(pr.b, pr.now);
    deliver(&pr.b2a, pr.a, pr.now, NULL, NULL, &c, false);
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.srtt, 22);
    assert_int_equal(st.rto, 70);
    assert_int_equal(zinx__kcp_since_ack(pr.a, pr.now + 5), 5);
    pair_close(&pr);
}

/* The RTO after one 5 ms sample: 5 + max(interval 10, 4 * 2) = 15,
   raised to the floor: 30 ms with nodelay, 100 ms without. */
static uint32_t rto_after_5ms(bool nodelay)
{
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    conf.nodelay = nodelay;
    pair_t pr;
    pair_open(&pr, &conf, 7);
    assert_int_equal(zinx__kcp_send(pr.a, "r", 1), 1);
    zinx__kcp_flush(pr.a, pr.now);
    pr.now += 5;
    unsigned long c = 0;
    deliver(&pr.a2b, pr.b, pr.now, NULL, NULL, &c, false);
    zinx__kcp_flush(pr.b, pr.now);
    deliver(&pr.b2a, pr.a, pr.now, NULL, NULL, &c, false);
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.srtt, 5);
    pair_close(&pr);
    return st.rto;
}

static void test_rto_floor(void **state)
{
    (void)state;
    assert_int_equal(rto_after_5ms(true), 30);
    assert_int_equal(rto_after_5ms(false), 100);
}

static void test_fast_retransmit(void **state)
{
    (void)state;
    for (uint32_t resend = 0; resend <= 3; resend++) {
        zinx__kcp_conf_t conf;
        zinx__kcp_conf_default(&conf);
        conf.resend = resend;
        pair_t pr;
        pair_open(&pr, &conf, 0);
        uint8_t data[6 * 1376];
        fill_pattern(data, sizeof(data), 7);
        assert_int_equal(zinx__kcp_send(pr.a, data, sizeof(data)),
                         sizeof(data));
        zinx__kcp_flush(pr.a, pr.now);
        assert_int_equal(pr.a2b.n, 6); /* one full segment each */
        /* sn 0 is lost; 1..5 arrive and are acknowledged one ACK
           datagram at a time, well before the RTO. */
        free(pr.a2b.q[0].p);
        pr.a2b.q[0] = pr.a2b.q[--pr.a2b.n];
        pr.now += 20;
        unsigned long c = 0;
        deliver(&pr.a2b, pr.b, pr.now, NULL, NULL, &c, false);
        zinx__kcp_flush(pr.b, pr.now);
        assert_int_equal(wire_count(&pr.b2a, ZINX__KCP_CMD_ACK), 5);
        deliver(&pr.b2a, pr.a, pr.now, NULL, NULL, &c, false);
        zinx__kcp_flush(pr.a, pr.now);
        zinx__kcp_stats_t st;
        zinx__kcp_get_stats(pr.a, &st);
        assert_int_equal(st.retrans_timeout, 0);
        if (resend == 0) {
            /* Off: sn 0 waits for its RTO. */
            assert_int_equal(st.retrans_fast, 0);
            assert_false(wire_has_push(&pr.a2b, 0));
        } else {
            /* Five later ACKs counted: one fast resend. */
            assert_int_equal(st.retrans_fast, 1);
            assert_true(wire_has_push(&pr.a2b, 0));
            deliver(&pr.a2b, pr.b, pr.now, NULL, NULL, &c, false);
            assert_int_equal(zinx__kcp_readable(pr.b), sizeof(data));
        }
        pair_close(&pr);
    }

    /* Exactly `resend` later ACKs trigger it, one fewer does not. */
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    conf.resend = 3;
    pair_t pr;
    pair_open(&pr, &conf, 0);
    uint8_t data[5 * 1376];
    fill_pattern(data, sizeof(data), 8);
    assert_int_equal(zinx__kcp_send(pr.a, data, sizeof(data)), sizeof(data));
    zinx__kcp_flush(pr.a, pr.now);
    wire_t sent = pr.a2b; /* the five originals, kept aside */
    memset(&pr.a2b, 0, sizeof(pr.a2b));
    unsigned long c = 0;
    for (int i = 1; i <= 3; i++) {
        pr.now += 5;
        assert_int_equal(
            zinx__kcp_input(pr.b, sent.q[i].p, sent.q[i].n, pr.now), 0);
        zinx__kcp_flush(pr.b, pr.now);
        deliver(&pr.b2a, pr.a, pr.now, NULL, NULL, &c, false);
        zinx__kcp_flush(pr.a, pr.now);
        zinx__kcp_stats_t st;
        zinx__kcp_get_stats(pr.a, &st);
        assert_int_equal(st.retrans_fast, i == 3 ? 1 : 0);
        assert_int_equal(wire_has_push(&pr.a2b, 0), i == 3);
        wire_clear(&pr.a2b);
    }
    wire_clear(&sent);
    free(sent.q);
    pair_close(&pr);
}

/* Without nc: slow start from one segment, back to one after a
   timeout; with nc the windows alone govern. */
static void test_congestion_window(void **state)
{
    (void)state;
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    conf.nc = false;
    pair_t pr;
    pair_open(&pr, &conf, 0);
    static uint8_t data[32 * 1376];
    assert_int_equal(zinx__kcp_send(pr.a, data, sizeof(data)), sizeof(data));
    zinx__kcp_flush(pr.a, pr.now);
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.cwnd, 1);
    assert_int_equal(wire_count(&pr.a2b, ZINX__KCP_CMD_PUSH), 1);
    unsigned long c = 0;
    pr.now += 10;
    deliver(&pr.a2b, pr.b, pr.now, NULL, NULL, &c, false);
    zinx__kcp_flush(pr.b, pr.now);
    deliver(&pr.b2a, pr.a, pr.now, NULL, NULL, &c, false);
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.cwnd, 2);
    zinx__kcp_flush(pr.a, pr.now);
    assert_int_equal(wire_count(&pr.a2b, ZINX__KCP_CMD_PUSH), 2);
    wire_clear(&pr.a2b); /* both lost: the RTO puts cwnd back to 1 */
    for (int i = 0; i < 100 && st.retrans_timeout == 0; i++) {
        pr.now += 10;
        zinx__kcp_update(pr.a, pr.now);
        zinx__kcp_get_stats(pr.a, &st);
    }
    assert_true(st.retrans_timeout > 0);
    assert_int_equal(st.cwnd, 1);
    pair_close(&pr);

    conf.nc = true;
    pair_open(&pr, &conf, 0);
    assert_int_equal(zinx__kcp_send(pr.a, data, sizeof(data)), sizeof(data));
    zinx__kcp_flush(pr.a, pr.now);
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.cwnd, 32);
    assert_int_equal(wire_count(&pr.a2b, ZINX__KCP_CMD_PUSH), 32);
    pair_close(&pr);
}

/* ---- windows ------------------------------------------------------------- */

static void test_window_limits(void **state)
{
    (void)state;
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    conf.snd_wnd = 8;
    conf.rcv_wnd = 8;
    pair_t pr;
    pair_open(&pr, &conf, 0);
    static uint8_t data[20 * 1376];
    fill_pattern(data, sizeof(data), 11);

    /* Back-pressure: the sender takes 8 segments' worth, then no more. */
    ssize_t n = zinx__kcp_send(pr.a, data, sizeof(data));
    assert_int_equal(n, 8 * 1376);
    assert_int_equal(zinx__kcp_waiting(pr.a), 8);
    assert_int_equal(zinx__kcp_unacked_bytes(pr.a), 8 * 1376);
    assert_false(zinx__kcp_writable(pr.a));
    assert_int_equal(zinx__kcp_send(pr.a, data, 1), ZINX_EAGAIN);
    size_t sent = (size_t)n;

    /* The receiver does not read: its queue fills and it says wnd 0. */
    unsigned long c = 0;
    zinx__kcp_flush(pr.a, pr.now);
    assert_int_equal(wire_count(&pr.a2b, ZINX__KCP_CMD_PUSH), 8);
    deliver(&pr.a2b, pr.b, pr.now, NULL, NULL, &c, false);
    zinx__kcp_flush(pr.b, pr.now);
    {
        zinx__kcp_seg_hdr_t h;
        const dgram_t *d = &pr.b2a.q[pr.b2a.n - 1];
        assert_int_equal(zinx__kcp_seg_parse(d->p, d->n, &h), 0);
        assert_int_equal(h.cmd, ZINX__KCP_CMD_ACK);
        assert_int_equal(h.wnd, 0);
        assert_int_equal(h.una, 8); /* una = rcv_nxt */
    }
    deliver(&pr.b2a, pr.a, pr.now, NULL, NULL, &c, false);
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.rmt_wnd, 0);
    assert_int_equal(zinx__kcp_waiting(pr.a), 0);

    /* The sender queues 8 more but sends none while the window is 0,
       then probes after 7 s, again 10.5 s later. */
    n = zinx__kcp_send(pr.a, data + sent, sizeof(data) - sent);
    assert_int_equal(n, 8 * 1376);
    sent += (size_t)n;
    uint32_t start = pr.now, probes[2];
    int nprobes = 0;
    while (nprobes < 2) {
        pr.now += 10;
        zinx__kcp_update(pr.a, pr.now);
        assert_int_equal(wire_count(&pr.a2b, ZINX__KCP_CMD_PUSH), 0);
        if (wire_count(&pr.a2b, ZINX__KCP_CMD_WASK) > 0)
            probes[nprobes++] = pr.now - start;
        /* The first probe's answer is lost; the second reaches B,
           whose WINS still says 0. */
        if (nprobes == 2) {
            deliver(&pr.a2b, pr.b, pr.now, NULL, NULL, &c, false);
            zinx__kcp_flush(pr.b, pr.now);
            assert_int_equal(wire_count(&pr.b2a, ZINX__KCP_CMD_WINS), 1);
            deliver(&pr.b2a, pr.a, pr.now, NULL, NULL, &c, false);
        }
        wire_clear(&pr.a2b);
    }
    assert_int_equal(probes[0], 7000 + 10);
    assert_int_equal(probes[1], 7000 + 10 + 10500);
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.rmt_wnd, 0);

    /* Beyond the window a PUSH is refused: sn 8 while 8 wait unread. */
    uint8_t seg[ZINX__KCP_HEADER + 1];
    put_seg(seg, CONV, ZINX__KCP_CMD_PUSH, 8, 1);
    assert_int_equal(zinx__kcp_input(pr.b, seg, sizeof(seg), pr.now), 0);
    zinx__kcp_get_stats(pr.b, &st);
    assert_int_equal(st.beyond_window, 1);

    /* The receiver reads: its WINS reopens the window at once and the
       rest flows. */
    static uint8_t got[sizeof(data)];
    size_t have = 0;
    ssize_t r = zinx__kcp_recv(pr.b, got, sizeof(got));
    assert_int_equal(r, 8 * 1376);
    have += (size_t)r;
    zinx__kcp_update(pr.b, pr.now);
    assert_int_equal(wire_count(&pr.b2a, ZINX__KCP_CMD_WINS), 1);
    flow_t f = {.src = data,
                .dst = got,
                .len = sizeof(data),
                .sent = sent,
                .got = have,
                .chunk = 1000};
    unsigned rounds = run_flows(&pr, &f, NULL, NULL, NULL, 1000, 10);
    check_flow(&f);
    assert_true(rounds < 100); /* no 7 s probe wait on the way */
    pair_close(&pr);
}

static void test_duplicates(void **state)
{
    (void)state;
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    conf.rcv_wnd = 4;
    zinx__kcp_t *k = zinx__kcp_new(CONV, &conf, capture, &(wire_t){0}, 0);
    wire_t w = {0};
    zinx__kcp_free(k);
    k = zinx__kcp_new(CONV, &conf, capture, &w, 0);
    assert_non_null(k);
    uint8_t d[4 * (ZINX__KCP_HEADER + 2)];
    zinx__kcp_stats_t st;

    /* sn 2 out of order, twice; then 0 twice; 4 is beyond (0..3). */
    size_t n = put_seg(d, CONV, ZINX__KCP_CMD_PUSH, 2, 2);
    assert_int_equal(zinx__kcp_input(k, d, n, 1), 0);
    assert_int_equal(zinx__kcp_input(k, d, n, 1), 0);
    assert_int_equal(zinx__kcp_readable(k), 0);
    n = put_seg(d, CONV, ZINX__KCP_CMD_PUSH, 0, 2);
    n += put_seg(d + n, CONV, ZINX__KCP_CMD_PUSH, 0, 2);
    n += put_seg(d + n, CONV, ZINX__KCP_CMD_PUSH, 4, 2);
    assert_int_equal(zinx__kcp_input(k, d, n, 1), 0);
    zinx__kcp_get_stats(k, &st);
    assert_int_equal(st.segs_received, 2);
    assert_int_equal(st.dup_received, 2);
    assert_int_equal(st.beyond_window, 1);
    assert_int_equal(zinx__kcp_readable(k), 2);

    /* sn 1 fills the gap: 0, 1, 2 in order; 0 again is a duplicate. */
    n = put_seg(d, CONV, ZINX__KCP_CMD_PUSH, 1, 2);
    n += put_seg(d + n, CONV, ZINX__KCP_CMD_PUSH, 0, 2);
    assert_int_equal(zinx__kcp_input(k, d, n, 1), 0);
    assert_int_equal(zinx__kcp_readable(k), 6);
    zinx__kcp_get_stats(k, &st);
    assert_int_equal(st.segs_received, 3);
    assert_int_equal(st.dup_received, 3);

    /* Every accepted or duplicate PUSH owes an ACK; beyond ones none. */
    zinx__kcp_flush_acks(k, 2);
    assert_int_equal(wire_count(&w, ZINX__KCP_CMD_ACK), 6);
    assert_int_equal(wire_count(&w, ZINX__KCP_CMD_PUSH), 0);
    wire_clear(&w);
    free(w.q);
    zinx__kcp_free(k);
}

/* ---- wrap-around --------------------------------------------------------- */

static int drop_some(void *ctx, const dgram_t *d, unsigned long i)
{
    (void)ctx;
    (void)d;
    return i % 5 == 2 ? 1 : 0;
}

static void test_wrap_sn(void **state)
{
    (void)state;
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    conf.first_sn = 0xFFFFFFF0u;
    conf.snd_wnd = 16;
    conf.rcv_wnd = 16;
    pair_t pr;
    pair_open(&pr, &conf, 100);
    flow_t f;
    flow_init(&f, 100 * 1376, 1376, 12);
    run_flows(&pr, &f, NULL, drop_some, NULL, 10000, 10);
    check_flow(&f);
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(pr.a, &st);
    assert_int_equal(st.segs_sent, 100);
    assert_true(st.retrans_fast + st.retrans_timeout > 0);
    zinx__kcp_get_stats(pr.b, &st);
    assert_int_equal(st.segs_received, 100);
    /* The next sn after 100 is 0xFFFFFFF0 + 100 = 84, past the wrap. */
    assert_int_equal(zinx__kcp_send(pr.a, "z", 1), 1);
    zinx__kcp_flush(pr.a, pr.now);
    assert_true(wire_has_push(&pr.a2b, 84));
    flow_free(&f);
    pair_close(&pr);
}

static void test_wrap_ts(void **state)
{
    (void)state;
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    conf.snd_wnd = 8;
    pair_t pr;
    pair_open(&pr, &conf, 0xFFFFF000u);
    flow_t f;
    flow_init(&f, 400 * 1376, 1376, 13);
    /* A round of 100 ms: 8 segments per round, 50 rounds at least. */
    run_flows(&pr, &f, NULL, drop_some, NULL, 20000, 100);
    check_flow(&f);
    /* The clock crossed 2^32 on the way... */
    assert_true(pr.now < 0x80000000u);
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(pr.a, &st);
    assert_true(st.retrans_fast + st.retrans_timeout > 0);
    /* ...and the RTT stayed what the link gives (one round, 100 ms),
       not 2^32 - 100. */
    assert_true(st.srtt >= 50 && st.srtt <= 200);
    assert_true(st.rto <= 1000);
    assert_true(zinx__kcp_check(pr.a, pr.now) - pr.now <= 10);
    flow_free(&f);
    pair_close(&pr);
}

/* ---- the end ------------------------------------------------------------- */

static void test_dead_link(void **state)
{
    (void)state;
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    pair_t pr;
    pair_open(&pr, &conf, 0);
    assert_int_equal(zinx__kcp_send(pr.a, "x", 1), 1);
    int sends = 0;
    while (!zinx__kcp_dead(pr.a)) {
        zinx__kcp_update(pr.a, pr.now);
        if (wire_has_push(&pr.a2b, 0))
            sends++;
        wire_clear(&pr.a2b);
        assert_true(sends <= (int)ZINX__KCP_DEAD_LINK);
        pr.now = zinx__kcp_check(pr.a, pr.now);
        if (pr.now == zinx__kcp_check(pr.a, pr.now))
            pr.now += 1;
    }
    assert_int_equal(sends, ZINX__KCP_DEAD_LINK);
    assert_true(zinx__kcp_since_ack(pr.a, pr.now) > 60000);
    pair_close(&pr);
}

static void test_input_errors(void **state)
{
    (void)state;
    zinx__kcp_conf_t conf;
    zinx__kcp_conf_default(&conf);
    wire_t w = {0};
    zinx__kcp_t *k = zinx__kcp_new(CONV, &conf, capture, &w, 0);
    assert_non_null(k);
    uint8_t d[3000];

    /* A good PUSH, then another conversation's: the first is kept. */
    size_t n = put_seg(d, CONV, ZINX__KCP_CMD_PUSH, 0, 3);
    size_t m = n + put_seg(d + n, CONV + 1, ZINX__KCP_CMD_PUSH, 1, 3);
    assert_int_equal(zinx__kcp_input(k, d, m, 1), ZINX_EPROTO);
    assert_int_equal(zinx__kcp_readable(k), 3);
    /* Then sn 1 truncated, an unknown command, a short tail, an ACK with
       a body, a body larger than the MTU allows, nothing. */
    m = n + put_seg(d + n, CONV, ZINX__KCP_CMD_PUSH, 1, 3);
    assert_int_equal(zinx__kcp_input(k, d, m - 1, 1), ZINX_EPROTO);
    put_seg(d, CONV, 85, 1, 0);
    assert_int_equal(zinx__kcp_input(k, d, ZINX__KCP_HEADER, 1), ZINX_EPROTO);
    n = put_seg(d, CONV, ZINX__KCP_CMD_PUSH, 1, 3);
    assert_int_equal(zinx__kcp_input(k, d, n + 10, 1), ZINX_EPROTO);
    assert_int_equal(zinx__kcp_readable(k), 6); /* sn 1 kept */
    n = put_seg(d, CONV, ZINX__KCP_CMD_ACK, 0, 2);
    assert_int_equal(zinx__kcp_input(k, d, n, 1), ZINX_EPROTO);
    n = put_seg(d, CONV, ZINX__KCP_CMD_PUSH, 2, 1377);
    assert_int_equal(zinx__kcp_input(k, d, n, 1), ZINX_EPROTO);
    assert_int_equal(zinx__kcp_input(k, d, 0, 1), ZINX_EPROTO);
    assert_int_equal(zinx__kcp_input(k, d, 10, 1), ZINX_EPROTO);
    assert_int_equal(zinx__kcp_readable(k), 6);
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(k, &st);
    assert_int_equal(st.segs_received, 2);
    assert_int_equal(zinx__kcp_send(k, d, 0), ZINX_EINVAL);
    char out[16];
    assert_int_equal(zinx__kcp_recv(k, out, sizeof(out)), 6);
    assert_int_equal(zinx__kcp_recv(k, out, sizeof(out)), ZINX_EAGAIN);
    wire_clear(&w);
    free(w.q);
    zinx__kcp_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seg_layout),
        cmocka_unit_test(test_seg_opens),
        cmocka_unit_test(test_stream_in_order),
        cmocka_unit_test(test_message_mode),
        cmocka_unit_test(test_rto_retransmit),
        cmocka_unit_test(test_rto_floor),
        cmocka_unit_test(test_fast_retransmit),
        cmocka_unit_test(test_congestion_window),
        cmocka_unit_test(test_window_limits),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_wrap_sn),
        cmocka_unit_test(test_wrap_ts),
        cmocka_unit_test(test_dead_link),
        cmocka_unit_test(test_input_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
