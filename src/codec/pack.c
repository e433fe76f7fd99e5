/*
 * The public codec API (zinx/pack.h), on the codecs of codec.h.
 *
 * Everything here is pure: no allocation, no state, no globals besides
 * constant tables, so any thread may call it.
 */
#include <limits.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/pack_internal.h"
#include "zinx/error.h"
#include "zinx/pack.h"

static const struct {
    const char *name; /* lower case */
    zinx_packet_format_t format;
} format_names[] = {
    {"tlv", ZINX_FORMAT_TLV},
    {"ltv_le", ZINX_FORMAT_LTV_LE},
    {"zinx_pack_tlv_big_endian", ZINX_FORMAT_TLV},
    {"zinx_pack_ltv_little_endian", ZINX_FORMAT_LTV_LE},
};

/*
 * The frame size is returned as a long. Where long is 32 bits, a payload
 * near 4 GiB has a size long cannot hold, so such a frame counts as too
 * large rather than wrapping into a negative "error".
 */
static uint32_t long_safe_limit(uint32_t max_packet_size)
{
#if LONG_MAX - ZINX_HEADER_LEN < UINT32_MAX
    if (max_packet_size > (uint32_t)(LONG_MAX - ZINX_HEADER_LEN))
        return (uint32_t)(LONG_MAX - ZINX_HEADER_LEN);
#endif
    return max_packet_size;
}

int zinx__read_header(zinx_packet_format_t format, const uint8_t *hdr,
                      uint32_t *id, uint32_t *len)
{
    const zinx__codec_t *codec = zinx__codec_of(format);
    if (codec == NULL)
        return ZINX_EINVAL;
    zinx_msg_t m;
    size_t used;
    /* Given the header alone, decode reports the frame complete (no
       payload) or incomplete, and sets id and len either way. */
    codec->decode(codec, NULL, UINT32_MAX, hdr, ZINX_HEADER_LEN, &m, &used);
    *id = m.id;
    *len = m.len;
    return 0;
}

int zinx_pack_header(zinx_packet_format_t format, uint32_t id, uint32_t len,
                     uint8_t out[ZINX_HEADER_LEN])
{
    const zinx__codec_t *codec = zinx__codec_of(format);
    if (out == NULL || codec == NULL)
        return ZINX_EINVAL;
    codec->put_header(out, id, len);
    return 0;
}

int zinx_unpack_header(zinx_packet_format_t format, const uint8_t *buf,
                       size_t buf_len, uint32_t *id, uint32_t *len)
{
    if (buf == NULL || id == NULL || len == NULL ||
        zinx__codec_of(format) == NULL)
        return ZINX_EINVAL;
    if (buf_len < ZINX_HEADER_LEN)
        return ZINX_EAGAIN;
    return zinx__read_header(format, buf, id, len);
}

long zinx_pack(zinx_packet_format_t format, uint32_t max_packet_size,
               uint32_t id, const void *data, uint32_t len, uint8_t *out,
               size_t cap)
{
    const zinx__codec_t *codec = zinx__codec_of(format);
    if (out == NULL || (data == NULL && len > 0) || codec == NULL)
        return ZINX_EINVAL;
    if (len > long_safe_limit(max_packet_size))
        return ZINX_EMSGSIZE;
    size_t frame = zinx__codec_frame_len(codec, len);
    if (cap < frame)
        return ZINX_ENOBUFS;
    /* The caller's memory as a buffer that is big enough: the codec's
       encoder never needs to grow it. */
    zinx__buf_t b = {.data = out, .cap = cap};
    zinx__codec_encode(codec, &b, id, data, len);
    return (long)frame;
}

long zinx_unpack(zinx_packet_format_t format, uint32_t max_packet_size,
                 const uint8_t *buf, size_t buf_len, zinx_msg_t *msg)
{
    const zinx__codec_t *codec = zinx__codec_of(format);
    if (buf == NULL || msg == NULL || codec == NULL)
        return ZINX_EINVAL;
    zinx_msg_t m;
    size_t used;
    int rc = codec->decode(codec, NULL, long_safe_limit(max_packet_size), buf,
                           buf_len, &m, &used);
    if (rc < 0)
        return rc;
    if (rc == ZINX__DECODE_MORE)
        return ZINX_EAGAIN;
    *msg = m;
    return (long)used;
}

/* ASCII only: format names must not depend on the C locale. */
static int equals_ignore_case(const char *s, const char *lower)
{
    for (;; s++, lower++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)*lower)
            return 0;
        if (c == '\0')
            return 1;
    }
}

int zinx_packet_format_parse(const char *name, zinx_packet_format_t *out)
{
    if (name == NULL || out == NULL)
        return ZINX_EINVAL;
    size_t n = sizeof(format_names) / sizeof(format_names[0]);
    for (size_t i = 0; i < n; i++) {
        if (equals_ignore_case(name, format_names[i].name)) {
            *out = format_names[i].format;
            return 0;
        }
    }
    return ZINX_EINVAL;
}

const char *zinx_packet_format_name(zinx_packet_format_t format)
{
    switch (format) {
    case ZINX_FORMAT_TLV:
        return "tlv";
    case ZINX_FORMAT_LTV_LE:
        return "ltv_le";
    default:
        return "unknown";
    }
}
