/*
 * Fuzz target: the WebSocket frame decoder (src/ws/frame.c) in both
 * roles, as the layer drives it: in place, stopping at each control
 * frame.
 *
 * Input layout:
 *   byte 0      bit 0: the server's role (frames must be masked);
 *               bits 1-3: WsMaxMessageSize from max_table[]
 *   byte 1      the chunk size seed
 *   the rest    the bytes of the stream
 *
 * The stream is decoded whole (the reference), then again in chunks of
 * the seed's sizes and in 1-byte chunks; each must give the same payload
 * bytes, the same control frames (with their payloads) and the same
 * failure at the same point. Checked throughout: the output never passes
 * the input, a control payload stays within 125 bytes, a message within
 * its limit.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "ws/ws.h"

static const uint32_t max_table[8] = {0,   1,    125,   126,
                                      200, 1024, 65536, 1u << 20};

typedef struct result {
    uint8_t *payload; /* the binary payload bytes, in order */
    size_t len;
    uint8_t *events; /* per control frame: kind, length, payload */
    size_t elen;
    int fail_code;
} result_t;

static void add_event(result_t *r, zinx__ws_ev_t ev, const zinx__ws_rx_t *rx)
{
    r->events[r->elen++] = (uint8_t)ev;
    r->events[r->elen++] = rx->ctl_len;
    memcpy(r->events + r->elen, rx->ctl, rx->ctl_len);
    r->elen += rx->ctl_len;
}

/* Decodes data in pieces of chunk(i) bytes (0: whole). */
static void run(const uint8_t *data, size_t size, bool server, uint32_t max,
                uint8_t seed, int mode, result_t *r)
{
    zinx__ws_rx_t rx;
    memset(&rx, 0, sizeof(rx));
    rx.server = server;
    rx.max_msg = max;
    r->payload = malloc(size + 1);
    /* Each control frame takes at least two input bytes, its record at
       most 127 bytes. */
    r->events = malloc(size * 64 + 1);
    r->len = r->elen = 0;
    r->fail_code = 0;
    size_t pos = 0;
    uint8_t s = seed;
    while (pos < size) {
        size_t n = size - pos;
        if (mode == 1) {
            s = (uint8_t)(s * 73 + 41);
            n = (size_t)(s % 37) + 1;
        } else if (mode == 2) {
            n = 1;
        }
        if (n > size - pos)
            n = size - pos;
        uint8_t *buf = malloc(n); /* exact: a read past it is reported */
        memcpy(buf, data + pos, n);
        size_t in = 0, out = 0;
        for (;;) {
            int code = 0;
            const char *why = NULL;
            zinx__ws_ev_t ev =
                zinx__ws_decode(&rx, buf, &in, n, &out, &code, &why);
            FUZZ_CHECK(out <= in && in <= n, "out %zu in %zu n %zu", out, in,
                       n);
            FUZZ_CHECK(rx.ctl_len <= ZINX__WS_CTL_MAX, "ctl %u", rx.ctl_len);
            FUZZ_CHECK(rx.msg_len <= max, "message %llu over %u",
                       (unsigned long long)rx.msg_len, max);
            if (ev == ZINX__WS_MORE)
                break;
            if (ev == ZINX__WS_FAIL) {
                FUZZ_CHECK(why != NULL &&
                               (code == 1002 || code == 1003 || code == 1009),
                           "code %d", code);
                r->fail_code = code;
                break;
            }
            add_event(r, ev, &rx);
        }
        memcpy(r->payload + r->len, buf, out);
        r->len += out;
        free(buf);
        pos += n;
        if (r->fail_code != 0)
            return;
    }
}

static void same(const result_t *a, const result_t *b, int mode)
{
    FUZZ_CHECK(a->fail_code == b->fail_code, "mode %d: fail %d vs %d", mode,
               a->fail_code, b->fail_code);
    FUZZ_CHECK(a->len == b->len && memcmp(a->payload, b->payload, a->len) == 0,
               "mode %d: payload differs (%zu vs %zu)", mode, a->len, b->len);
    FUZZ_CHECK(a->elen == b->elen && memcmp(a->events, b->events, a->elen) == 0,
               "mode %d: control frames differ", mode);
}

static void done(result_t *r)
{
    free(r->payload);
    free(r->events);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool server = data[0] & 1;
    uint32_t max = max_table[(data[0] >> 1) & 7];
    uint8_t seed = data[1];
    data += 2;
    size -= 2;
    result_t ref, other;
    run(data, size, server, max, seed, 0, &ref);
    for (int mode = 1; mode <= 2; mode++) {
        run(data, size, server, max, seed, mode, &other);
        same(&ref, &other, mode);
        done(&other);
    }
    done(&ref);
    return 0;
}
