/*
 * Codecs: how the messages of one connection are cut out of its byte
 * stream and put into it.
 *
 * A codec is a constant table of functions; a connection holds a pointer
 * to one and, for codecs that need it, a state of its own. Decoding
 * parses each header once: a complete frame comes back as a message that
 * points into the bytes, an incomplete one says how many bytes the frame
 * needs in all, so the reader knows the size before it has the bytes.
 * Encoding appends one frame to a buffer: it is the only encoder of the
 * library (the public zinx_pack() runs on it too).
 *
 * Zinx's two frame layouts are the first two codecs (tlv.c, ltv.c),
 * decoded and encoded inline by the connection (the fast path). Every
 * other codec is a public zinx_codec_t (zinx/codec.h): the length-field
 * decoder (length_field.c), HTLV+CRC16 (htlv.c) or a program's own, run
 * through the general table below (public.c), which the server copies
 * into an instance of its own (layout ZINX__LAYOUT_OTHER).
 */
#ifndef ZINX__CODEC_INTERNAL_H
#define ZINX__CODEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "codec/pack_internal.h"
#include "zinx/codec.h"
#include "zinx/pack.h"

/* What decode found at the head of the bytes. */
enum zinx__decoded {
    ZINX__DECODE_MORE = 0, /* incomplete: *used is the frame's full size
                              once the header is complete (msg->id and
                              msg->len are set then), else the header's */
    ZINX__DECODE_MSG = 1   /* *msg is a complete frame of *used bytes */
};
/* Errors: as zinx/codec.h says of a public codec's decode (ZINX_EMSGSIZE
   or ZINX_EPROTO, with *used the bad frame's size when it can be skipped,
   else 0). The values match ZINX_CODEC_MORE and ZINX_CODEC_FRAME. */

typedef struct zinx__codec zinx__codec_t;

/* Layouts a connection decodes inline: a call through the table costs
   more than decoding a fixed 8-byte header. */
enum zinx__codec_layout {
    ZINX__LAYOUT_OTHER = 0, /* only through decode() */
    ZINX__LAYOUT_TLV,       /* id, len: big-endian u32s */
    ZINX__LAYOUT_LTV_LE     /* len, id: little-endian u32s */
};

struct zinx__codec {
    const char *name;
    enum zinx__codec_layout layout;
    /* Bytes before a frame's size is known, and the fixed overhead of a
       frame around its payload. */
    uint32_t header_len;
    uint32_t overhead;
    /*
     * Looks at buf[0..len) for one frame whose payload is at most
     * max_len. Returns ZINX__DECODE_MSG or ZINX__DECODE_MORE (see above),
     * ZINX_EMSGSIZE for a declared payload above max_len (found from the
     * header alone, before the payload is waited for) or ZINX_EPROTO for
     * a malformed frame. `state` is the connection's codec state (NULL
     * for stateless codecs). Thread: the connection's.
     */
    int (*decode)(const zinx__codec_t *codec, void *state, uint32_t max_len,
                  const uint8_t *buf, size_t len, zinx_msg_t *msg,
                  size_t *used);
    /* Writes one frame's header for a payload of len bytes to out (which
       has header_len bytes). Fixed layouts only. Thread: any. */
    void (*put_header)(uint8_t *out, uint32_t id, uint32_t len);
    /* ZINX__LAYOUT_OTHER: the public codec it runs (decode, encode and
       the per-connection state go through it). */
    zinx_codec_t pub;
};

extern const zinx__codec_t zinx__codec_tlv;
extern const zinx__codec_t zinx__codec_ltv_le;

/* The codec of a wire format, or NULL for an unknown one. */
const zinx__codec_t *zinx__codec_of(zinx_packet_format_t format);

/* Makes *out run the public codec *pub (copied). */
void zinx__codec_wrap(zinx__codec_t *out, const zinx_codec_t *pub);

/* The connection's codec state, made by the codec's state_new (NULL when
   it has none). Returns 0 or the error of state_new. */
static inline int zinx__codec_state_new(const zinx__codec_t *codec,
                                        void **state)
{
    *state = NULL;
    if (codec->layout != ZINX__LAYOUT_OTHER || codec->pub.state_new == NULL)
        return 0;
    return codec->pub.state_new(codec->pub.udata, state);
}

static inline void zinx__codec_state_free(const zinx__codec_t *codec,
                                          void *state)
{
    if (codec->layout == ZINX__LAYOUT_OTHER && codec->pub.state_free != NULL)
        codec->pub.state_free(codec->pub.udata, state);
}

/* Appends one frame to out. Returns 0, ZINX_ENOMEM, or the error of a
   general codec's encoder (ZINX_EINVAL, ZINX_EMSGSIZE); out is unchanged
   on error. */
int zinx__codec_encode(const zinx__codec_t *codec, zinx__buf_t *out,
                       uint32_t id, const void *data, uint32_t len);

/* Bytes of a frame with a payload of len. */
static inline size_t zinx__codec_frame_len(const zinx__codec_t *codec,
                                           uint32_t len)
{
    return (size_t)codec->overhead + len;
}

/* The decode of a fixed 8-byte header, shared by tlv and ltv: the
   header is complete (len >= 8), id and flen are read from it. */
static inline int zinx__decode_fixed8(uint32_t id, uint32_t flen,
                                      uint32_t max_len, const uint8_t *buf,
                                      size_t len, zinx_msg_t *msg, size_t *used)
{
    /* The limit is checked before the payload is waited for, so a peer
       announcing a huge frame is refused at once, never buffered. */
    if (flen > max_len) {
        *used = 0; /* never skipped: PacketFormat's frames close */
        return ZINX_EMSGSIZE;
    }
    msg->id = id;
    msg->len = flen;
    *used = (size_t)ZINX_HEADER_LEN + flen;
    if (len - ZINX_HEADER_LEN < flen) {
        msg->data = NULL;
        return ZINX__DECODE_MORE;
    }
    msg->data = buf + ZINX_HEADER_LEN;
    return ZINX__DECODE_MSG;
}

/* codec->put_header(), with the fixed layouts written here. */
static inline void zinx__codec_put_header(const zinx__codec_t *codec,
                                          uint8_t *out, uint32_t id,
                                          uint32_t len)
{
    if (codec->layout == ZINX__LAYOUT_TLV) {
        zinx__store_be32(out, id);
        zinx__store_be32(out + 4, len);
    } else if (codec->layout == ZINX__LAYOUT_LTV_LE) {
        zinx__store_le32(out, len);
        zinx__store_le32(out + 4, id);
    } else {
        codec->put_header(out, id, len);
    }
}

/* codec->decode(), with the fixed layouts decoded here (same result). */
static inline int zinx__codec_decode(const zinx__codec_t *codec, void *state,
                                     uint32_t max_len, const uint8_t *buf,
                                     size_t len, zinx_msg_t *msg, size_t *used)
{
    if (len >= ZINX_HEADER_LEN) {
        if (codec->layout == ZINX__LAYOUT_TLV)
            return zinx__decode_fixed8(zinx__load_be32(buf),
                                       zinx__load_be32(buf + 4), max_len, buf,
                                       len, msg, used);
        if (codec->layout == ZINX__LAYOUT_LTV_LE)
            return zinx__decode_fixed8(zinx__load_le32(buf + 4),
                                       zinx__load_le32(buf), max_len, buf, len,
                                       msg, used);
    }
    return codec->decode(codec, state, max_len, buf, len, msg, used);
}

#endif /* ZINX__CODEC_INTERNAL_H */
