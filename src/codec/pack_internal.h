/*
 * Private helpers of the wire codec, shared with the event core.
 *
 * The load/store helpers copy 4 bytes with memcpy (no alignment needed,
 * no aliasing rule broken) and swap them where the host order differs
 * from the wire's: two instructions per field on x86-64, where the
 * byte-by-byte shifts they replace cost a dozen.
 */
#ifndef ZINX_PACK_INTERNAL_H
#define ZINX_PACK_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "zinx/pack.h"

/* Host-order u32 from (or to) 4 bytes that need no alignment: memcpy of
   a constant size compiles to one move. */
static inline uint32_t zinx__load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void zinx__store_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ZINX__BE32(v) (v)
#define ZINX__LE32(v) __builtin_bswap32(v)
#else
#define ZINX__BE32(v) __builtin_bswap32(v)
#define ZINX__LE32(v) (v)
#endif

/* Reads a big-endian u32 from p[0..3]. p needs no alignment. */
static inline uint32_t zinx__load_be32(const uint8_t *p)
{
    return ZINX__BE32(zinx__load_u32(p));
}

/* Reads a little-endian u32 from p[0..3]. p needs no alignment. */
static inline uint32_t zinx__load_le32(const uint8_t *p)
{
    return ZINX__LE32(zinx__load_u32(p));
}

/* Writes v to p[0..3], big-endian. */
static inline void zinx__store_be32(uint8_t *p, uint32_t v)
{
    zinx__store_u32(p, ZINX__BE32(v));
}

/* Writes v to p[0..3], little-endian. */
static inline void zinx__store_le32(uint8_t *p, uint32_t v)
{
    zinx__store_u32(p, ZINX__LE32(v));
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
