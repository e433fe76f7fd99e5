/*
 * Frame bytes for the tests: 8-byte headers in both layouts, whole
 * frames, big-endian 32-bit fields, a CRC-32 and checksummed payloads.
 *
 * Frames are encoded here by hand, not with the library's packer, so the
 * tests check the wire format independently of the code under test.
 * Nothing here calls the test framework or keeps state: any thread may
 * use it.
 */
#ifndef TEST_FRAME_H
#define TEST_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "zinx.h"

/* Writes and reads 32-bit big-endian values. */
void frame_put_u32(uint8_t *p, uint32_t v);
uint32_t frame_get_u32(const uint8_t *p);

/* Writes the 8-byte header for (id, len) in fmt to out. */
void frame_header_encode(zinx_packet_format_t fmt, uint32_t id, uint32_t len,
                         uint8_t out[8]);

/* Reads the 8-byte header in fmt. */
void frame_header_decode(zinx_packet_format_t fmt, const uint8_t in[8],
                         uint32_t *id, uint32_t *len);

/*
 * Writes header and payload to out (room for 8 + len bytes) and returns
 * the frame size. data may be out + 8 (the payload already in place).
 */
size_t frame_encode(zinx_packet_format_t fmt, uint32_t id, const void *data,
                    uint32_t len, uint8_t *out);

/* CRC-32 (IEEE 802.3, reflected; "123456789" gives 0xcbf43926). */
uint32_t frame_crc32(const void *data, size_t len);

/*
 * Checksummed payload: stream u32 | seq u32 | fill u32 | fill bytes |
 * crc32. The fill length and bytes depend on (stream, seq), so a payload
 * that belongs to another connection or position cannot pass for this
 * one. FRAME_PAYLOAD_MAX is the largest one.
 */
#define FRAME_PAYLOAD_MAX (16u + 63u)

/* Writes the payload for (stream, seq) to p; returns its length. */
uint32_t frame_payload_make(uint8_t *p, uint32_t stream, uint32_t seq);

/* Returns 0 and the stream and seq of an intact payload, else -1. */
int frame_payload_check(const uint8_t *p, uint32_t len, uint32_t *stream,
                        uint32_t *seq);

#endif /* TEST_FRAME_H */
