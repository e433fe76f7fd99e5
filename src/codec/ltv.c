/*
 * Zinx's classic LTV layout (the tutorial and the MMO demo): payload
 * length, then message ID, both unsigned 32-bit little-endian, then the
 * payload.
 */
#include "codec/codec.h"
#include "codec/pack_internal.h"

static int ltv_decode(const zinx__codec_t *codec, void *state, uint32_t max_len,
                      const uint8_t *buf, size_t len, zinx_msg_t *msg,
                      size_t *used)
{
    ZINX__UNUSED(codec);
    ZINX__UNUSED(state);
    if (len < ZINX_HEADER_LEN) {
        *used = ZINX_HEADER_LEN;
        return ZINX__DECODE_MORE;
    }
    return zinx__decode_fixed8(zinx__load_le32(buf + 4), zinx__load_le32(buf),
                               max_len, buf, len, msg, used);
}

static void ltv_put_header(uint8_t *out, uint32_t id, uint32_t len)
{
    zinx__store_le32(out, len);
    zinx__store_le32(out + 4, id);
}

const zinx__codec_t zinx__codec_ltv_le = {
    .name = "ltv_le",
    .layout = ZINX__LAYOUT_LTV_LE,
    .header_len = ZINX_HEADER_LEN,
    .overhead = ZINX_HEADER_LEN,
    .decode = ltv_decode,
    .put_header = ltv_put_header,
};
