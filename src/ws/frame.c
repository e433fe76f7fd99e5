/*
 * WebSocket frames (RFC 6455 section 5): a decoder that works in place
 * on the bytes just read, so that binary payloads reach the codec with
 * one copy (the socket's) and no buffer of the layer's own, and the
 * header encoder.
 *
 * The decoder keeps only what a frame boundary needs between reads: up
 * to 14 header bytes, the payload left, the mask and where in it the
 * next byte falls, and a control frame's payload (at most 125 bytes).
 */
#include <string.h>

#include "ws/ws.h"

static zinx__ws_ev_t fail(int *code, const char **why, int status,
                          const char *text)
{
    *code = status;
    *why = text;
    return ZINX__WS_FAIL;
}

/* How many header bytes the frame whose first two are hdr[0..2) has. */
static size_t header_need(const uint8_t *hdr)
{
    size_t n = 2;
    uint8_t len7 = hdr[1] & 0x7f;
    if (len7 == 126)
        n += 2;
    else if (len7 == 127)
        n += 8;
    if (hdr[1] & 0x80)
        n += 4;
    return n;
}

static bool is_control(uint8_t opcode)
{
    return opcode & 0x8;
}

/* Checks the first two bytes as soon as they are here, so that a bad
   frame is refused before its length is even read. */
static zinx__ws_ev_t check_start(zinx__ws_rx_t *rx, int *code, const char **why)
{
    uint8_t b0 = rx->hdr[0], b1 = rx->hdr[1];
    uint8_t op = b0 & 0x0f;
    if (b0 & 0x70)
        return fail(code, why, ZINX__WS_PROTOCOL, "RSV bits set");
    if (rx->server != ((b1 & 0x80) != 0))
        return fail(code, why, ZINX__WS_PROTOCOL,
                    rx->server ? "a client frame without mask"
                               : "a server frame with a mask");
    switch (op) {
    case ZINX__WS_OP_TEXT:
        return fail(code, why, ZINX__WS_UNSUPPORTED,
                    "a text message (the codec takes binary)");
    case ZINX__WS_OP_BINARY:
        if (rx->in_msg)
            return fail(code, why, ZINX__WS_PROTOCOL,
                        "a new message inside a fragmented one");
        break;
    case ZINX__WS_OP_CONT:
        if (!rx->in_msg)
            return fail(code, why, ZINX__WS_PROTOCOL,
                        "a continuation outside a message");
        break;
    case ZINX__WS_OP_CLOSE:
    case ZINX__WS_OP_PING:
    case ZINX__WS_OP_PONG:
        if (!(b0 & 0x80) || (b1 & 0x7f) > ZINX__WS_CTL_MAX)
            return fail(code, why, ZINX__WS_PROTOCOL,
                        "a fragmented or long control frame");
        break;
    default:
        return fail(code, why, ZINX__WS_PROTOCOL, "an unknown opcode");
    }
    return ZINX__WS_MORE;
}

/* The whole header is in rx->hdr: the frame's length and mask. */
static zinx__ws_ev_t take_header(zinx__ws_rx_t *rx, int *code, const char **why)
{
    const uint8_t *h = rx->hdr;
    uint64_t len = h[1] & 0x7f;
    size_t at = 2;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        at = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        at = 10;
        if (len >> 63)
            return fail(code, why, ZINX__WS_PROTOCOL, "a negative length");
    }
    rx->opcode = h[0] & 0x0f;
    rx->fin = (h[0] & 0x80) != 0;
    rx->masked = (h[1] & 0x80) != 0;
    if (rx->masked)
        memcpy(rx->mask, h + at, 4);
    rx->mpos = 0;
    rx->remain = len;
    rx->ctl_len = 0;
    rx->hlen = 0;
    rx->in_frame = true;
    if (!is_control(rx->opcode)) {
        if (len > rx->max_msg - rx->msg_len)
            return fail(code, why, ZINX__WS_TOO_BIG,
                        "a message above WsMaxMessageSize");
        rx->msg_len += len;
        rx->in_msg = !rx->fin;
        if (rx->fin)
            rx->msg_len = 0;
    }
    return ZINX__WS_MORE;
}

/* Gathers header bytes from buf[*in..len); ZINX__WS_MORE with in_frame
   set once the header is whole. */
static zinx__ws_ev_t gather_header(zinx__ws_rx_t *rx, const uint8_t *buf,
                                   size_t *in, size_t len, int *code,
                                   const char **why)
{
    while (*in < len) {
        rx->hdr[rx->hlen++] = buf[(*in)++];
        if (rx->hlen == 2) {
            zinx__ws_ev_t ev = check_start(rx, code, why);
            if (ev != ZINX__WS_MORE)
                return ev;
        }
        if (rx->hlen >= 2 && rx->hlen == header_need(rx->hdr))
            return take_header(rx, code, why);
    }
    return ZINX__WS_MORE;
}

int zinx__ws_close_status(const zinx__ws_rx_t *rx)
{
    if (rx->ctl_len < 2)
        return 1005; /* "no status received" */
    return rx->ctl[0] << 8 | rx->ctl[1];
}

/* Codes a peer may send (RFC 6455 7.4, and the registry's later ones). */
static bool status_ok(int st)
{
    if (st >= 3000 && st <= 4999)
        return true;
    return st >= 1000 && st <= 1014 && st != 1004 && st != 1005 && st != 1006;
}

/* The current control frame is complete. */
static zinx__ws_ev_t control_done(zinx__ws_rx_t *rx, int *code,
                                  const char **why)
{
    rx->in_frame = false;
    switch (rx->opcode) {
    case ZINX__WS_OP_PING:
        return ZINX__WS_PING;
    case ZINX__WS_OP_PONG:
        return ZINX__WS_PONG;
    default:
        if (rx->ctl_len == 1 ||
            (rx->ctl_len >= 2 && !status_ok(zinx__ws_close_status(rx))))
            return fail(code, why, ZINX__WS_PROTOCOL, "a bad close status");
        return ZINX__WS_CLOSE;
    }
}

uint8_t zinx__ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
                           const uint8_t mask[4], uint8_t pos)
{
    size_t i = 0;
    /* Word at a time once aligned to the mask: most of a long payload. */
    if (n >= 16) {
        for (; (pos & 3) != 0; i++, pos++)
            dst[i] = src[i] ^ mask[pos & 3];
        uint32_t m;
        memcpy(&m, mask, 4);
        uint64_t m8 = (uint64_t)m << 32 | m;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, src + i, 8);
            w ^= m8;
            memcpy(dst + i, &w, 8);
        }
    }
    for (; i < n; i++, pos++)
        dst[i] = src[i] ^ mask[pos & 3];
    return pos & 3;
}

/* Payload bytes of the current frame from buf[*in..len). */
static void take_payload(zinx__ws_rx_t *rx, uint8_t *buf, size_t *in,
                         size_t len, size_t *out)
{
    size_t n = len - *in;
    if (n > rx->remain)
        n = (size_t)rx->remain;
    uint8_t *src = buf + *in;
    uint8_t *dst = is_control(rx->opcode) ? rx->ctl + rx->ctl_len : buf + *out;
    if (rx->masked)
        rx->mpos = zinx__ws_mask_copy(dst, src, n, rx->mask, rx->mpos);
    else if (dst != src)
        memmove(dst, src, n);
    if (is_control(rx->opcode))
        rx->ctl_len += (uint8_t)n;
    else
        *out += n;
    *in += n;
    rx->remain -= n;
}

zinx__ws_ev_t zinx__ws_decode(zinx__ws_rx_t *rx, uint8_t *buf, size_t *in,
                              size_t len, size_t *out, int *code,
                              const char **why)
{
    while (*in < len || (rx->in_frame && rx->remain == 0)) {
        if (!rx->in_frame) {
            zinx__ws_ev_t ev = gather_header(rx, buf, in, len, code, why);
            if (ev != ZINX__WS_MORE || !rx->in_frame)
                return ev;
        }
        take_payload(rx, buf, in, len, out);
        if (rx->remain > 0)
            return ZINX__WS_MORE; /* the input ended inside the payload */
        if (is_control(rx->opcode))
            return control_done(rx, code, why);
        rx->in_frame = false;
    }
    return ZINX__WS_MORE;
}

size_t zinx__ws_put_header(uint8_t *hdr, uint8_t opcode, uint64_t len,
                           const uint8_t *mask)
{
    size_t n = 2;
    hdr[0] = (uint8_t)(0x80 | opcode);
    uint8_t mbit = mask != NULL ? 0x80 : 0;
    if (len < 126) {
        hdr[1] = (uint8_t)(mbit | len);
    } else if (len <= 0xffff) {
        hdr[1] = mbit | 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        n = 4;
    } else {
        hdr[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask != NULL) {
        memcpy(hdr + n, mask, 4);
        n += 4;
    }
    return n;
}
