/*
 * Wire format: pure pack and unpack of Zinx frames.
 *
 * A frame is an 8-byte header followed by `len` bytes of payload. Two
 * header layouts exist:
 *
 *   ZINX_FORMAT_TLV     ("tlv", Zinx >= 1.1.3, the default)
 *                       id  u32 big-endian | len u32 big-endian | data
 *   ZINX_FORMAT_LTV_LE  ("ltv_le", the Zinx tutorial, the MMO demo and the
 *                       Python port)
 *                       len u32 little-endian | id u32 little-endian | data
 *
 * `len` counts the payload only. A zero-length payload is legal.
 *
 * These functions never allocate, keep no state and may be called from any
 * thread. Example, decoding every complete frame of a buffer:
 *
 *     size_t off = 0;
 *     zinx_msg_t m;
 *     for (;;) {
 *         long n = zinx_unpack(ZINX_FORMAT_TLV, 4096, buf + off,
 *                              len - off, &m);
 *         if (n == ZINX_EAGAIN) break;      // keep buf[off..len) for later
 *         if (n < 0) { close_connection(); break; }
 *         handle(m.id, m.data, m.len);      // m.data points into buf
 *         off += (size_t)n;
 *     }
 */
#ifndef ZINX_PACK_H
#define ZINX_PACK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

/* Size of every frame header, in both formats. */
#define ZINX_HEADER_LEN 8u

typedef enum zinx_packet_format {
    ZINX_FORMAT_TLV = 0,
    ZINX_FORMAT_LTV_LE = 1
} zinx_packet_format_t;

/*
 * One message. As an output of zinx_unpack(), `data` points into the
 * caller's buffer and is valid as long as that buffer is; inside a router
 * handler it is valid only during the call (copy what you keep).
 */
typedef struct zinx_msg {
    uint32_t id;
    uint32_t len;
    const uint8_t *data;
} zinx_msg_t;

/*
 * Writes the 8-byte header for (id, len) in `format` to out[0..7].
 * Returns 0, or ZINX_EINVAL for an unknown format or a NULL out.
 */
int zinx_pack_header(zinx_packet_format_t format, uint32_t id, uint32_t len,
                     uint8_t out[ZINX_HEADER_LEN]);

/*
 * Reads the header at buf[0..7]. Returns 0 and sets *id and *len, or
 * ZINX_EAGAIN when buf_len < 8, or ZINX_EINVAL for an unknown format or a
 * NULL pointer. Does not check any size limit.
 */
int zinx_unpack_header(zinx_packet_format_t format, const uint8_t *buf,
                       size_t buf_len, uint32_t *id, uint32_t *len);

/*
 * Encodes one frame (header + len bytes of data) into out[0..cap).
 * Returns the number of bytes written (8 + len), ZINX_EMSGSIZE when
 * len > max_packet_size, ZINX_ENOBUFS when cap < 8 + len, or ZINX_EINVAL
 * (unknown format, NULL out, NULL data with len > 0). data and out must
 * not overlap.
 */
long zinx_pack(zinx_packet_format_t format, uint32_t max_packet_size,
               uint32_t id, const void *data, uint32_t len, uint8_t *out,
               size_t cap);

/*
 * Decodes the frame at the start of buf[0..buf_len). Returns:
 *   > 0            the frame's size in bytes (consumed); *msg is filled and
 *                  msg->data points into buf;
 *   ZINX_EAGAIN    the frame is not complete yet (including buf_len < 8);
 *   ZINX_EMSGSIZE  the header declares len > max_packet_size. This is
 *                  reported as soon as the header is complete, before any
 *                  of the payload is needed;
 *   ZINX_EINVAL    unknown format or NULL pointer.
 * *msg is left untouched unless a frame is returned.
 */
long zinx_unpack(zinx_packet_format_t format, uint32_t max_packet_size,
                 const uint8_t *buf, size_t buf_len, zinx_msg_t *msg);

/*
 * Parses a format name: "tlv" or "ltv_le" (case-insensitive), or Zinx's
 * packer names "zinx_pack_tlv_big_endian" and
 * "zinx_pack_ltv_little_endian". Returns 0 or ZINX_EINVAL.
 */
int zinx_packet_format_parse(const char *name, zinx_packet_format_t *out);

/* Returns "tlv", "ltv_le", or "unknown". */
const char *zinx_packet_format_name(zinx_packet_format_t format);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_PACK_H */
