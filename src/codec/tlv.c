/*
 * Zinx's TLV layout (the default since Zinx 1.1.3): message ID, then
 * payload length, both unsigned 32-bit big-endian, then the payload.
 */
#include "codec/codec.h"
#include "codec/pack_internal.h"

static int tlv_decode(const zinx__codec_t *codec, void *state, uint32_t max_len,
                      const uint8_t *buf, size_t len, zinx_msg_t *msg,
                      size_t *used)
{
    ZINX__UNUSED(codec);
    ZINX__UNUSED(state);
    if (len < ZINX_HEADER_LEN) {
        *used = ZINX_HEADER_LEN;
        return ZINX__DECODE_MORE;
    }
    return zinx__decode_fixed8(zinx__load_be32(buf), zinx__load_be32(buf + 4),
                               max_len, buf, len, msg, used);
}

static void tlv_put_header(uint8_t *out, uint32_t id, uint32_t len)
{
    zinx__store_be32(out, id);
    zinx__store_be32(out + 4, len);
}

const zinx__codec_t zinx__codec_tlv = {
    .name = "tlv",
    .layout = ZINX__LAYOUT_TLV,
    .header_len = ZINX_HEADER_LEN,
    .overhead = ZINX_HEADER_LEN,
    .decode = tlv_decode,
    .put_header = tlv_put_header,
};
