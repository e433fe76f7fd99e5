/*
 * Private helpers of the wire codec, shared with the event core.
 *
 * The load/store helpers build integers from single bytes with shifts on
 * uint32_t. That keeps them independent of host byte order and alignment,
 * and no byte is ever promoted to a signed int before it is shifted.
 */
#ifndef ZINX_PACK_INTERNAL_H
#define ZINX_PACK_INTERNAL_H

#include <stdint.h>

#include "zinx/pack.h"

/* Reads a big-endian u32 from p[0..3]. p needs no alignment. */
static inline uint32_t zinx__load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Reads a little-endian u32 from p[0..3]. p needs no alignment. */
static inline uint32_t zinx__load_le32(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[1] << 8) | (uint32_t)p[0];
}

/* Writes v to p[0..3], big-endian. */
static inline void zinx__store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes v to p[0..3], little-endian. */
static inline void zinx__store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/*
 * Reads id and len from the 8 header bytes at hdr, skipping the argument
 * checks of zinx_unpack_header(): the caller guarantees that hdr holds at
 * least ZINX_HEADER_LEN readable bytes and that id and len are valid.
 * Returns 0, or ZINX_EINVAL for an unknown format (outputs untouched).
 * Thread: any.
 */
int zinx__read_header(zinx_packet_format_t format, const uint8_t *hdr,
                      uint32_t *id, uint32_t *len);

#endif /* ZINX_PACK_INTERNAL_H */
