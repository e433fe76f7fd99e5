/*
 * Frame bytes for the tests (see test_frame.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "test_frame.h"

#include <string.h>

void frame_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t frame_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static void put_u32_le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32_le(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 |
           (uint32_t)p[0];
}

void frame_header_encode(zinx_packet_format_t fmt, uint32_t id, uint32_t len,
                         uint8_t out[8])
{
    if (fmt == ZINX_FORMAT_LTV_LE) {
        put_u32_le(out, len);
        put_u32_le(out + 4, id);
    } else {
        frame_put_u32(out, id);
        frame_put_u32(out + 4, len);
    }
}

void frame_header_decode(zinx_packet_format_t fmt, const uint8_t in[8],
                         uint32_t *id, uint32_t *len)
{
    if (fmt == ZINX_FORMAT_LTV_LE) {
        *len = get_u32_le(in);
        *id = get_u32_le(in + 4);
    } else {
        *id = frame_get_u32(in);
        *len = frame_get_u32(in + 4);
    }
}

size_t frame_encode(zinx_packet_format_t fmt, uint32_t id, const void *data,
                    uint32_t len, uint8_t *out)
{
    frame_header_encode(fmt, id, len, out);
    /* memmove: callers may build the payload in place first. */
    if (len > 0)
        memmove(out + 8, data, len);
    return 8 + (size_t)len;
}

/* Four bits at a time: a 16-entry table instead of 256. */
uint32_t frame_crc32(const void *data, size_t len)
{
    static const uint32_t nib[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
        0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
        0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
        0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
    const uint8_t *p = data;
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nib[crc & 15u];
        crc = (crc >> 4) ^ nib[crc & 15u];
    }
    return ~crc;
}

uint32_t frame_payload_make(uint8_t *p, uint32_t stream, uint32_t seq)
{
    uint32_t fill = (stream * 31u + seq * 7u) % 64u;

    frame_put_u32(p, stream);
    frame_put_u32(p + 4, seq);
    frame_put_u32(p + 8, fill);
    for (uint32_t i = 0; i < fill; i++)
        p[12 + i] = (uint8_t)(stream * 13u + seq * 5u + i);
    frame_put_u32(p + 12 + fill, frame_crc32(p, 12 + fill));
    return 16 + fill;
}

int frame_payload_check(const uint8_t *p, uint32_t len, uint32_t *stream,
                        uint32_t *seq)
{
    if (len < 16)
        return -1;
    uint32_t fill = frame_get_u32(p + 8);
    if (fill > len - 16 || len != 16 + fill)
        return -1;
    if (frame_get_u32(p + 12 + fill) != frame_crc32(p, 12 + fill))
        return -1;
    *stream = frame_get_u32(p);
    *seq = frame_get_u32(p + 4);
    return 0;
}
