/*
 * Fuzz target: KCP's segment parser and ARQ (src/kcp/segment.c, arq.c),
 * which read every datagram a KCP port receives.
 *
 * Input layout:
 *   byte 0      bit 0 stream mode, bit 1 nodelay, bit 2 nc, bits 3-4 the
 *               MTU (50, 100, 576, 1400), bits 5-7 the receive window
 *               (1, 2, 4, 8, 16, 32, 128, 1024)
 *   byte 1      bits 0-1 resend (0-3), bit 2 first_sn 0xFFFFFFF0, bits
 *               3-5 the send window (1, 2, 3, 4, 8, 16, 32, 256)
 *   bytes 2-5   the clock's start (little-endian: any value, so runs
 *               cross 2^32)
 *   then ops    [op u8][len u16 LE][len bytes], until the input ends (a
 *               short last op takes what is left). Before each op the
 *               clock advances (op >> 2) * 16 ms. op & 3:
 *               0  the bytes are an arriving datagram (zinx__kcp_input)
 *               1  the bytes are sent (zinx__kcp_send)
 *               2  zinx__kcp_update, then zinx__kcp_flush_acks when
 *                  len is odd
 *               3  zinx__kcp_recv of up to len bytes
 *
 * Checked:
 *   - the whole input given to zinx__kcp_seg_parse segment by segment and
 *     to zinx__kcp_seg_opens (agreeing with each other: opens accepts
 *     only what parses whole, with one conv and a PUSH of first_sn);
 *   - input returns 0 or ZINX_EPROTO; every datagram the ARQ outputs is
 *     at most the MTU, parses whole, carries its conv, and its PUSHes
 *     carry at most mtu - 24 bytes and sequence numbers it gave out;
 *   - recv gives at most what was asked and what readable() said,
 *     ZINX_EAGAIN exactly when readable() is 0; the bytes ever read plus
 *     the readable ones never exceed what the accepted PUSH segments
 *     carried (segs_received * (mtu - 24)), and accepted segments never
 *     exceed the PUSH segments fed;
 *   - send never takes more than offered, waiting() stays within the
 *     send window, unacked bytes within what send took, check() within
 *     one interval.
 * Datagrams are heap copies of their exact size, so a read past one is
 * an AddressSanitizer report.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "kcp/arq.h"
#include "zinx.h"

#define CONV 0x01020304u

static const uint32_t mtus[4] = {50, 100, 576, 1400};
static const uint32_t rwnds[8] = {1, 2, 4, 8, 16, 32, 128, 1024};
static const uint32_t swnds[8] = {1, 2, 3, 4, 8, 16, 32, 256};

typedef struct run {
    zinx__kcp_conf_t conf;
    uint32_t sn_given; /* how many sequence numbers could be out */
    uint64_t pushes_fed;
    uint64_t bytes_read;
    uint64_t bytes_sent;
} run_t;

static void on_output(void *udata, const uint8_t *p, size_t n)
{
    const run_t *r = udata;
    FUZZ_CHECK(n >= ZINX__KCP_HEADER && n <= r->conf.mtu, "datagram %zu", n);
    size_t off = 0;
    while (off < n) {
        zinx__kcp_seg_hdr_t h;
        FUZZ_CHECK(zinx__kcp_seg_parse(p + off, n - off, &h) == 0,
                   "own output does not parse at %zu", off);
        FUZZ_CHECK(h.conv == CONV, "conv %u", h.conv);
        if (h.cmd == ZINX__KCP_CMD_PUSH) {
            FUZZ_CHECK(h.len <= r->conf.mtu - ZINX__KCP_HEADER, "len %u",
                       h.len);
            FUZZ_CHECK(h.sn - r->conf.first_sn < r->sn_given,
                       "sn %u never given", h.sn);
        }
        off += ZINX__KCP_HEADER + h.len;
    }
}

/* Segment by segment, as input does; whether the whole parses. */
static bool parse_all(const uint8_t *p, size_t n, uint32_t first_sn,
                      bool *one_conv, bool *has_first)
{
    size_t off = 0;
    uint32_t conv = 0;
    *one_conv = true;
    *has_first = false;
    while (off < n) {
        zinx__kcp_seg_hdr_t h;
        if (zinx__kcp_seg_parse(p + off, n - off, &h) != 0)
            return false;
        FUZZ_CHECK(h.cmd >= ZINX__KCP_CMD_PUSH && h.cmd <= ZINX__KCP_CMD_WINS,
                   "cmd %u", h.cmd);
        FUZZ_CHECK(h.len <= n - off - ZINX__KCP_HEADER, "len %u", h.len);
        FUZZ_CHECK(h.cmd == ZINX__KCP_CMD_PUSH || h.len == 0, "body");
        if (off == 0)
            conv = h.conv;
        else if (h.conv != conv)
            *one_conv = false;
        if (h.cmd == ZINX__KCP_CMD_PUSH && h.sn == first_sn)
            *has_first = true;
        off += ZINX__KCP_HEADER + h.len;
    }
    return n > 0;
}

static void check_parsers(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    const uint32_t firsts[2] = {0, 0xFFFFFFF0u};
    for (int i = 0; i < 2; i++) {
        bool one_conv, has_first;
        bool whole = parse_all(copy, size, firsts[i], &one_conv, &has_first);
        uint32_t conv = 0;
        int rc = zinx__kcp_seg_opens(copy, size, firsts[i], &conv);
        bool want = whole && one_conv && has_first;
        FUZZ_CHECK((rc == 0) == want, "opens %d, expected %d", rc, want);
        FUZZ_CHECK(rc == 0 || rc == ZINX_EPROTO, "rc %d", rc);
        if (rc == 0)
            FUZZ_CHECK(conv ==
                           (uint32_t)(copy[0] | copy[1] << 8 | copy[2] << 16 |
                                      (uint32_t)copy[3] << 24),
                       "conv");
    }
    free(copy);
}

static uint32_t count_pushes(const uint8_t *p, size_t n)
{
    uint32_t count = 0;
    size_t off = 0;
    zinx__kcp_seg_hdr_t h;
    while (off < n && zinx__kcp_seg_parse(p + off, n - off, &h) == 0) {
        if (h.cmd == ZINX__KCP_CMD_PUSH)
            count++;
        off += ZINX__KCP_HEADER + h.len;
    }
    return count;
}

static void check_state(zinx__kcp_t *k, const run_t *r, uint32_t now)
{
    zinx__kcp_stats_t st;
    zinx__kcp_get_stats(k, &st);
    uint64_t mss = r->conf.mtu - ZINX__KCP_HEADER;
    FUZZ_CHECK(st.segs_received <= r->pushes_fed, "received %llu of %llu",
               (unsigned long long)st.segs_received,
               (unsigned long long)r->pushes_fed);
    FUZZ_CHECK(r->bytes_read + zinx__kcp_readable(k) <= st.segs_received * mss,
               "more bytes than segments");
    FUZZ_CHECK(zinx__kcp_waiting(k) <= r->conf.snd_wnd, "waiting %u",
               zinx__kcp_waiting(k));
    FUZZ_CHECK(zinx__kcp_unacked_bytes(k) <= r->bytes_sent, "unacked");
    FUZZ_CHECK(zinx__kcp_unacked_bytes(k) <= zinx__kcp_waiting(k) * mss,
               "unacked beyond segments");
    FUZZ_CHECK(st.rto >= 30 && st.rto <= 60000, "rto %u", st.rto);
    uint32_t next = zinx__kcp_check(k, now);
    FUZZ_CHECK(next - now <= r->conf.interval, "check %u", next - now);
}

static void do_recv(zinx__kcp_t *k, run_t *r, size_t want)
{
    static uint8_t buf[65536];
    size_t ready = zinx__kcp_readable(k);
    ssize_t got = zinx__kcp_recv(k, buf, want);
    if (ready == 0) {
        FUZZ_CHECK(got == ZINX_EAGAIN, "recv %zd with nothing ready", got);
        return;
    }
    FUZZ_CHECK(got >= 0 && (size_t)got <= want && (size_t)got <= ready,
               "recv %zd of %zu ready, %zu asked", got, ready, want);
    FUZZ_CHECK(zinx__kcp_readable(k) == ready - (size_t)got, "readable");
    r->bytes_read += (uint64_t)got;
}

static void do_send(zinx__kcp_t *k, run_t *r, const uint8_t *p, size_t n)
{
    bool writable = zinx__kcp_writable(k);
    ssize_t took = zinx__kcp_send(k, p, n);
    if (n == 0) {
        FUZZ_CHECK(took == ZINX_EINVAL, "send 0: %zd", took);
        return;
    }
    if (!writable) {
        FUZZ_CHECK(took == ZINX_EAGAIN, "send %zd while not writable", took);
        return;
    }
    FUZZ_CHECK(took > 0 && (size_t)took <= n, "send %zd of %zu", took, n);
    r->bytes_sent += (uint64_t)took;
    /* Each call can start at most one window's worth of segments. */
    r->sn_given += r->conf.snd_wnd + 1;
}

static void run_arq(const uint8_t *data, size_t size)
{
    if (size < 6)
        return;
    run_t r;
    memset(&r, 0, sizeof(r));
    zinx__kcp_conf_default(&r.conf);
    r.conf.stream = data[0] & 1;
    r.conf.nodelay = data[0] & 2;
    r.conf.nc = data[0] & 4;
    r.conf.mtu = mtus[(data[0] >> 3) & 3];
    r.conf.rcv_wnd = rwnds[data[0] >> 5];
    r.conf.resend = data[1] & 3;
    r.conf.first_sn = (data[1] & 4) ? 0xFFFFFFF0u : 0;
    r.conf.snd_wnd = swnds[(data[1] >> 3) & 7];
    uint32_t now = (uint32_t)data[2] | (uint32_t)data[3] << 8 |
                   (uint32_t)data[4] << 16 | (uint32_t)data[5] << 24;
    zinx__kcp_t *k = zinx__kcp_new(CONV, &r.conf, on_output, &r, now);
    FUZZ_CHECK(k != NULL, "out of memory");
    size_t off = 6;
    while (off < size) {
        uint8_t op = data[off++];
        size_t len = 0;
        if (off + 2 <= size) {
            len = (size_t)data[off] | (size_t)data[off + 1] << 8;
            off += 2;
        } else {
            off = size;
        }
        if (len > size - off)
            len = size - off;
        const uint8_t *body = data + off;
        off += len;
        now += (uint32_t)(op >> 2) * 16u;
        switch (op & 3) {
        case 0: {
            uint8_t *copy = malloc(len ? len : 1);
            FUZZ_CHECK(copy != NULL, "out of memory");
            memcpy(copy, body, len);
            r.pushes_fed += count_pushes(copy, len);
            int rc = zinx__kcp_input(k, copy, len, now);
            FUZZ_CHECK(rc == 0 || rc == ZINX_EPROTO, "input %d", rc);
            free(copy);
            break;
        }
        case 1:
            do_send(k, &r, body, len);
            zinx__kcp_flush(k, now);
            break;
        case 2:
            zinx__kcp_update(k, now);
            if (len & 1)
                zinx__kcp_flush_acks(k, now);
            break;
        default:
            do_recv(k, &r, len);
            break;
        }
        check_state(k, &r, now);
    }
    /* Drain: the rest reads out whole. */
    while (zinx__kcp_readable(k) > 0)
        do_recv(k, &r, 65536);
    check_state(k, &r, now);
    zinx__kcp_free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parsers(data, size);
    run_arq(data, size);
    return 0;
}
