/*
 * Zinx's LengthField frame decoder (Netty's LengthFieldBasedFrameDecoder)
 * as a public codec: the parameters are its udata.
 *
 * Every value is computed in 64 bits from a header whose fields are
 * bounded (offset and strip below 2^16, adjustment within +-2^16, a raw
 * length first checked against 2^33), so no sum can overflow and a
 * hostile length is refused before anything is buffered for it.
 */
#include <stdbool.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/pack_internal.h"

/* Above this a raw length makes a payload beyond 2^32 - 1 bytes whatever
   the adjustment and strip: refused before any arithmetic on it. */
#define RAW_LIMIT ((uint64_t)1 << 33)

static uint64_t read_raw(const uint8_t *p, uint32_t n, bool little)
{
    uint64_t v = 0;
    if (little) {
        for (uint32_t i = n; i-- > 0;)
            v = v << 8 | p[i];
    } else {
        for (uint32_t i = 0; i < n; i++)
            v = v << 8 | p[i];
    }
    return v;
}

/* Malformed: nothing says where the next frame starts. */
static int malformed(size_t *used)
{
    *used = 0;
    return ZINX_EPROTO;
}

static int lf_decode(void *udata, void *state, uint32_t max_len,
                     const uint8_t *buf, size_t len, zinx_msg_t *msg,
                     size_t *used)
{
    ZINX__UNUSED(state);
    const zinx_length_field_t *p = udata;
    uint64_t end = (uint64_t)p->offset + p->length; /* of the length field */
    if (len < end) {
        *used = (size_t)end;
        return ZINX_CODEC_MORE;
    }
    uint64_t raw =
        read_raw(buf + p->offset, p->length, p->order == ZINX_LITTLE_ENDIAN);
    if (raw > RAW_LIMIT)
        return malformed(used);
    int64_t frame = (int64_t)raw + p->adjustment + (int64_t)end;
    /* Netty refuses a negative length and a frame that ends inside its
       own length field: the stream cannot advance past either. */
    if (frame < (int64_t)end || (uint64_t)frame < p->strip)
        return malformed(used);
    uint64_t payload = (uint64_t)frame - p->strip;
    if (payload > UINT32_MAX || (uint64_t)frame > SIZE_MAX)
        return malformed(used);
    uint64_t max = p->max_frame_length != 0 ? p->max_frame_length
                                            : (uint64_t)max_len + end;
    *used = (size_t)frame;
    if ((uint64_t)frame > max)
        return ZINX_EMSGSIZE; /* skippable: its size is known */
    msg->id = 0;
    msg->len = (uint32_t)payload;
    if (len < (uint64_t)frame) {
        msg->data = NULL;
        return ZINX_CODEC_MORE;
    }
    msg->data = buf + p->strip;
    return ZINX_CODEC_FRAME;
}

/* Replies in PacketFormat's layouts: the header of the fixed codec, then
   the payload. */
static int encode_fixed(const zinx__codec_t *fixed, uint32_t id,
                        const void *data, uint32_t len, uint8_t *out)
{
    fixed->put_header(out, id, len);
    if (len > 0)
        memcpy(out + ZINX_HEADER_LEN, data, len);
    return 0;
}

static int lf_encode_tlv(void *udata, uint32_t id, const void *data,
                         uint32_t len, uint8_t *out)
{
    ZINX__UNUSED(udata);
    return encode_fixed(&zinx__codec_tlv, id, data, len, out);
}

static int lf_encode_ltv(void *udata, uint32_t id, const void *data,
                         uint32_t len, uint8_t *out)
{
    ZINX__UNUSED(udata);
    return encode_fixed(&zinx__codec_ltv_le, id, data, len, out);
}

/* The ranges of the LengthField* configuration keys. */
static bool params_valid(const zinx_length_field_t *p)
{
    bool size_ok = (p->length >= 1 && p->length <= 4) || p->length == 8;
    return size_ok && p->order <= ZINX_LITTLE_ENDIAN &&
           p->max_frame_length <= UINT32_MAX && p->offset <= 65535 &&
           p->adjustment >= -65536 && p->adjustment <= 65536 &&
           p->strip <= 65535 && p->reserved == 0;
}

int zinx_codec_length_field(const zinx_length_field_t *params,
                            zinx_packet_format_t reply_format,
                            zinx_codec_t *out)
{
    if (params == NULL || out == NULL || !params_valid(params) ||
        zinx__codec_of(reply_format) == NULL)
        return ZINX_EINVAL;
    *out = (zinx_codec_t){
        .name = "length_field",
        .overhead = ZINX_HEADER_LEN,
        .decode = lf_decode,
        .encode =
            reply_format == ZINX_FORMAT_TLV ? lf_encode_tlv : lf_encode_ltv,
        .udata = (void *)params,
    };
    return 0;
}
