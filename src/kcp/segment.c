/*
 * KCP segments on the wire: the 24-byte little-endian header (see
 * arq.h), its parser and writer, and the test a datagram must pass to
 * open a conversation. Everything here reads only the bytes it is given.
 */
#include "kcp/arq.h"

#include "zinx/error.h"

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static bool known_cmd(uint8_t cmd)
{
    return cmd >= ZINX__KCP_CMD_PUSH && cmd <= ZINX__KCP_CMD_WINS;
}

int zinx__kcp_seg_parse(const uint8_t *p, size_t n, zinx__kcp_seg_hdr_t *h)
{
    if (n < ZINX__KCP_HEADER)
        return ZINX_EPROTO;
    h->conv = get32(p);
    h->cmd = p[4];
    h->frg = p[5];
    h->wnd = (uint16_t)(p[6] | p[7] << 8);
    h->ts = get32(p + 8);
    h->sn = get32(p + 12);
    h->una = get32(p + 16);
    h->len = get32(p + 20);
    if (!known_cmd(h->cmd))
        return ZINX_EPROTO;
    /* Compared without adding to len, which may be near 2^32. */
    if (h->len > n - ZINX__KCP_HEADER)
        return ZINX_EPROTO;
    /* Only PUSH carries data: an ACK or probe with a body is not a peer
       speaking KCP. */
    if (h->cmd != ZINX__KCP_CMD_PUSH && h->len != 0)
        return ZINX_EPROTO;
    return 0;
}

void zinx__kcp_seg_write(uint8_t *out, const zinx__kcp_seg_hdr_t *h)
{
    put32(out, h->conv);
    out[4] = h->cmd;
    out[5] = h->frg;
    out[6] = (uint8_t)h->wnd;
    out[7] = (uint8_t)(h->wnd >> 8);
    put32(out + 8, h->ts);
    put32(out + 12, h->sn);
    put32(out + 16, h->una);
    put32(out + 20, h->len);
}

int zinx__kcp_seg_opens(const uint8_t *p, size_t n, uint32_t first_sn,
                        uint32_t *conv)
{
    bool first_push = false;
    size_t off = 0;
    if (n == 0)
        return ZINX_EPROTO;
    while (off < n) {
        zinx__kcp_seg_hdr_t h;
        if (zinx__kcp_seg_parse(p + off, n - off, &h) != 0)
            return ZINX_EPROTO;
        if (off == 0)
            *conv = h.conv;
        else if (h.conv != *conv)
            return ZINX_EPROTO;
        if (h.cmd == ZINX__KCP_CMD_PUSH && h.sn == first_sn)
            first_push = true;
        off += ZINX__KCP_HEADER + h.len;
    }
    return first_push ? 0 : ZINX_EPROTO;
}
