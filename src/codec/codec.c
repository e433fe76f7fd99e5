/* What every codec shares: lookup by format, and the one encoder. */
#include <string.h>

#include "codec/codec.h"

const zinx__codec_t *zinx__codec_of(zinx_packet_format_t format)
{
    switch (format) {
    case ZINX_FORMAT_TLV:
        return &zinx__codec_tlv;
    case ZINX_FORMAT_LTV_LE:
        return &zinx__codec_ltv_le;
    default:
        return NULL;
    }
}

/* A general codec (perhaps with a trailer) writes the whole frame. Out
   of line: the fixed layouts' path stays as short as it was. */
static __attribute__((noinline)) int
encode_general(const zinx__codec_t *codec, zinx__buf_t *out, uint8_t *p,
               uint32_t id, const void *data, uint32_t len, size_t frame)
{
    int rc =
        codec->pub.encode(codec->pub.udata, id, len > 0 ? data : NULL, len, p);
    if (rc != 0)
        return rc;
    out->len += frame;
    return 0;
}

int zinx__codec_encode(const zinx__codec_t *codec, zinx__buf_t *out,
                       uint32_t id, const void *data, uint32_t len)
{
    size_t frame = zinx__codec_frame_len(codec, len);
    int rc = zinx__buf_reserve(out, frame);
    if (rc != 0)
        return rc;
    uint8_t *p = out->data + out->len;
    /* zinx__codec_put_header()'s tests, with the general codec in place
       of its put_header: the fixed layouts test what they always did. */
    if (codec->layout == ZINX__LAYOUT_TLV) {
        zinx__store_be32(p, id);
        zinx__store_be32(p + 4, len);
    } else if (codec->layout == ZINX__LAYOUT_LTV_LE) {
        zinx__store_le32(p, len);
        zinx__store_le32(p + 4, id);
    } else {
        return encode_general(codec, out, p, id, data, len, frame);
    }
    /* memcpy with a NULL source is undefined even for zero bytes. */
    if (len > 0)
        memcpy(p + codec->header_len, data, len);
    out->len += frame;
    return 0;
}
