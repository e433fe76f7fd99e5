/*
 * Codecs: how a connection cuts messages out of its byte stream, and how
 * its replies are framed.
 *
 * By default an endpoint (server or client) decodes and encodes
 * PacketFormat's 8-byte TLV or LTV header. Zinx's FrameDecoder key picks
 * another decoder from zinx.json ("length_field", "htlv_crc"); in code,
 * zinx_server_set_codec() installs any table of this header: one of the
 * library's (zinx_codec_length_field(), zinx_codec_htlv_crc()) or the
 * program's own.
 *
 *     zinx_length_field_t lf = {.order = ZINX_BIG_ENDIAN, .offset = 4,
 *                               .length = 4};   // Zinx's TLV preset
 *     zinx_codec_t codec;
 *     zinx_codec_length_field(&lf, &codec);     // lf must outlive the server
 *     zinx_server_set_codec(server, &codec);    // before start
 *
 * A codec is a table of functions with user data. The library calls
 * decode on the connection's I/O thread with the bytes received so far,
 * and encode on whatever thread sends. Neither may allocate per message:
 * decode answers with a view into the bytes it was given, encode writes
 * into memory the library provides.
 *
 * Bad frames. decode reports a frame it refuses with a negative code and
 * says in *used whether the stream can go on behind it:
 *   - ZINX_EMSGSIZE: the frame is longer than the codec's limit. With
 *     *used = the frame's whole size (known from its header), BadFramePolicy
 *     "drop" skips exactly that many bytes as they arrive, without
 *     buffering them; "close" ends the connection as a frame above
 *     MaxPacketSize does (stats.oversize, CloseNoticeMsgID). *used = 0:
 *     always that close.
 *   - ZINX_EPROTO with *used > 0: a frame of *used bytes (all of them in
 *     buf) that fails its check, e.g. a bad CRC. "drop" skips it, "close"
 *     ends the connection (ZINX_EPROTO).
 *   - ZINX_EPROTO with *used = 0: the stream is malformed and cannot be
 *     resynchronised; the connection ends (ZINX_EPROTO), whatever the
 *     policy.
 * Every refused frame is counted in stats.bad_frames (except the close
 * for a frame above the limit, counted in stats.oversize) and logged at
 * most once per second.
 */
#ifndef ZINX_CODEC_H
#define ZINX_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "zinx/config.h"
#include "zinx/pack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

typedef struct zinx_server zinx_server_t;

/* What decode found at the head of the bytes, besides errors. */
enum zinx_codec_result {
    ZINX_CODEC_MORE = 0, /* incomplete: *used is the frame's full size in
                            bytes once its header says it, else the bytes
                            needed to know it; always more than len */
    ZINX_CODEC_FRAME = 1 /* *msg is a complete frame of *used bytes */
};

/*
 * Looks at buf[0..len) (len may be 0) for one frame. max_len is the
 * endpoint's MaxPacketSize, the largest payload it accepts (a codec may
 * have a limit of its own instead, as the length-field codec does).
 * Returns ZINX_CODEC_FRAME with *msg (msg->data points into buf, or is
 * anything when msg->len is 0) and *used (at most len), ZINX_CODEC_MORE
 * with *used, or an error with *used as described at the top of this
 * header. It must not allocate, must not read outside buf[0..len), and
 * must give the same answer when asked again about the same bytes (the
 * library decodes frames that wait for room more than once). state is the
 * connection's (see state_new), or NULL. Thread: the connection's I/O
 * thread.
 */
typedef int (*zinx_codec_decode_fn)(void *udata, void *state, uint32_t max_len,
                                    const uint8_t *buf, size_t len,
                                    zinx_msg_t *msg, size_t *used);

/*
 * Writes the frame of message id with payload data[0..len) to out, which
 * has exactly `overhead` + len bytes (data is NULL when len is 0).
 * Returns 0, or a negative ZINX_E* code that zinx_conn_send_msg() returns
 * to its caller (nothing is sent): ZINX_EINVAL for an ID the format
 * cannot carry, ZINX_EMSGSIZE for a payload it cannot carry. Called for
 * replies on any thread that sends, concurrently: it must not touch
 * per-connection state and must not allocate.
 */
typedef int (*zinx_codec_encode_fn)(void *udata, uint32_t id, const void *data,
                                    uint32_t len, uint8_t *out);

typedef struct zinx_codec {
    const char *name;            /* shown in logs; NULL: "custom" */
    uint32_t overhead;           /* bytes every frame adds around its payload
                                    (header + trailer); 0..65536 */
    zinx_codec_decode_fn decode; /* required */
    zinx_codec_encode_fn encode; /* required */
    /* Optional per-connection state: state_new runs when a connection is
       made (on the thread making it: an I/O thread, or the dialing
       thread) and stores it in *state; a negative return refuses the
       connection, as an allocation failure would (stats.out_of_memory).
       state_free runs once when the connection is freed, on the thread
       that releases it last, after its last decode. Both NULL: state is
       NULL. */
    int (*state_new)(void *udata, void **state);
    void (*state_free)(void *udata, void *state);
    void *udata; /* the program's; must outlive every endpoint using it */
} zinx_codec_t;

/*
 * Installs codec for every connection of the endpoint (server or client),
 * accepted or dialed: its decoder cuts incoming frames and its encoder
 * frames every reply (zinx_conn_send_msg). *codec is copied; what udata
 * points to is not. NULL goes back to the configuration (FrameDecoder
 * and PacketFormat). Overrides FrameDecoder. Returns 0, ZINX_EINVAL (no
 * decode or encode, overhead above 65536) or ZINX_ESTATE once started.
 * Thread: the one setting the endpoint up.
 */
int zinx_server_set_codec(zinx_server_t *server, const zinx_codec_t *codec);

/* ---- Zinx's LengthField decoder ------------------------------------------ */

/*
 * The parameters of Zinx's LengthField (Netty's
 * LengthFieldBasedFrameDecoder), as the LengthField* configuration keys
 * set them. A frame is
 *
 *     frame_len = raw + adjustment + offset + length
 *
 * bytes, where raw is the unsigned integer of `length` bytes at `offset`
 * in `order`. The first `strip` bytes of the frame are dropped and the
 * rest is delivered as the message's data, with message ID 0: as in Zinx,
 * an interceptor or the handler reads the ID out of the data. Replies are
 * framed by PacketFormat (Zinx's asymmetry: the decoder receives, the
 * packer sends).
 *
 * Limits: a frame above max_frame_length (0: MaxPacketSize + offset +
 * length) is refused with ZINX_EMSGSIZE and its size, before any of its
 * payload is buffered (BadFramePolicy drops or closes). Malformed, with
 * ZINX_EPROTO and no way to resynchronise: a frame_len below offset +
 * length (negative after adjustment, or a frame ending inside its own
 * length field), strip above frame_len, a delivered payload above
 * 2^32 - 1 bytes, an 8-byte raw length of 2^63 or more.
 */
typedef struct zinx_length_field {
    uint32_t order;            /* a zinx_byte_order_t */
    uint32_t length;           /* of the length field: 1, 2, 3, 4 or 8 */
    uint64_t max_frame_length; /* 0..4294967295; 0: see above */
    uint32_t offset;           /* of the length field: 0..65535 */
    int32_t adjustment;        /* -65536..65536 */
    uint32_t strip;            /* initial bytes to strip: 0..65535 */
    uint32_t reserved;         /* 0 */
} zinx_length_field_t;

/*
 * Fills *out with the length-field codec for *params (checked: ZINX_EINVAL
 * for a value outside the ranges above or an unknown reply_format). Its
 * udata is params: they are read at every decode and must outlive every
 * endpoint using the codec. Its encoder writes `reply_format`'s frames
 * (ZINX_FORMAT_TLV or ZINX_FORMAT_LTV_LE, the 8-byte PacketFormat
 * layouts). Thread: any.
 */
int zinx_codec_length_field(const zinx_length_field_t *params,
                            zinx_packet_format_t reply_format,
                            zinx_codec_t *out);

/* ---- Zinx's HTLV+CRC16 device frame -------------------------------------- */

/* Head byte of the replies of zinx_codec_htlv_crc() by default, and with
   FrameDecoder "htlv_crc": 0xA1, as the replies of Zinx's decoder example
   (its devices send 0xA2). */
#define ZINX_HTLV_REPLY_HEAD 0xA1

/*
 * Fills *out with the HTLV+CRC16 codec:
 *
 *     [Head 1B][FuncCode 1B][Len 1B][Body Len B][CRC16 2B]
 *
 * CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) over Head..Body,
 * sent low byte first. A frame becomes message ID = FuncCode, data = Body;
 * any Head byte is accepted. A bad CRC is ZINX_EPROTO with the frame's
 * size (BadFramePolicy). Frames are at most 260 bytes; a Len above
 * MaxPacketSize is ZINX_EMSGSIZE with the frame's size. Replies are HTLV
 * frames with Head `reply_head`, FuncCode = ID and a CRC: sending an ID
 * above 255 returns ZINX_EINVAL, a payload above 255 bytes ZINX_EMSGSIZE.
 * Thread: any.
 */
void zinx_codec_htlv_crc(uint8_t reply_head, zinx_codec_t *out);

/* CRC-16/MODBUS of buf[0..len) (of "123456789": 0x4B37). Thread: any. */
uint16_t zinx_crc16_modbus(const void *buf, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* ZINX_CODEC_H */
