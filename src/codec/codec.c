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

int zinx__codec_encode(const zinx__codec_t *codec, zinx__buf_t *out,
                       uint32_t id, const void *data, uint32_t len)
{
    size_t frame = zinx__codec_frame_len(codec, len);
    int rc = zinx__buf_reserve(out, frame);
    if (rc != 0)
        return rc;
    uint8_t *p = out->data + out->len;
    if (codec->layout == ZINX__LAYOUT_OTHER) {
        /* A general codec (perhaps with a trailer) writes it all. */
        rc = codec->pub.encode(codec->pub.udata, id, len > 0 ? data : NULL, len,
                               p);
        if (rc != 0)
            return rc;
        out->len += frame;
        return 0;
    }
    zinx__codec_put_header(codec, p, id, len);
    /* memcpy with a NULL source is undefined even for zero bytes. */
    if (len > 0)
        memcpy(p + codec->header_len, data, len);
    out->len += frame;
    return 0;
}
