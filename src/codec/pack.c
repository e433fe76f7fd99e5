/*
 * Wire codec: the two Zinx frame layouts.
 *
 * Everything here is pure: no allocation, no state, no globals besides
 * constant tables, so any thread may call it.
 */
#include <limits.h>
#include <string.h>

#include "pack_internal.h"
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

static int format_known(zinx_packet_format_t format)
{
    return format == ZINX_FORMAT_TLV || format == ZINX_FORMAT_LTV_LE;
}

/*
 * The frame size is returned as a long. Where long is 32 bits, a payload
 * near 4 GiB has a size long cannot hold, so such a frame counts as too
 * large rather than wrapping into a negative "error".
 */
static int exceeds_limit(uint32_t len, uint32_t max_packet_size)
{
    if (len > max_packet_size)
        return 1;
#if LONG_MAX - ZINX_HEADER_LEN < UINT32_MAX
    if (len > (uint32_t)(LONG_MAX - ZINX_HEADER_LEN))
        return 1;
#endif
    return 0;
}

/* Only valid after exceeds_limit() said no, so the sum fits a long. */
static long frame_size(uint32_t len)
{
    return (long)ZINX_HEADER_LEN + (long)len;
}

static void write_header(zinx_packet_format_t format, uint32_t id, uint32_t len,
                         uint8_t *out)
{
    if (format == ZINX_FORMAT_TLV) {
        zinx__store_be32(out, id);
        zinx__store_be32(out + 4, len);
    } else {
        zinx__store_le32(out, len);
        zinx__store_le32(out + 4, id);
    }
}

int zinx__read_header(zinx_packet_format_t format, const uint8_t *hdr,
                      uint32_t *id, uint32_t *len)
{
    switch (format) {
    case ZINX_FORMAT_TLV:
        *id = zinx__load_be32(hdr);
        *len = zinx__load_be32(hdr + 4);
        return 0;
    case ZINX_FORMAT_LTV_LE:
        *len = zinx__load_le32(hdr);
        *id = zinx__load_le32(hdr + 4);
        return 0;
    default:
        return ZINX_EINVAL;
    }
}

int zinx_pack_header(zinx_packet_format_t format, uint32_t id, uint32_t len,
                     uint8_t out[ZINX_HEADER_LEN])
{
    if (out == NULL || !format_known(format))
        return ZINX_EINVAL;
    write_header(format, id, len, out);
    return 0;
}

int zinx_unpack_header(zinx_packet_format_t format, const uint8_t *buf,
                       size_t buf_len, uint32_t *id, uint32_t *len)
{
    if (buf == NULL || id == NULL || len == NULL || !format_known(format))
        return ZINX_EINVAL;
    if (buf_len < ZINX_HEADER_LEN)
        return ZINX_EAGAIN;
    return zinx__read_header(format, buf, id, len);
}

long zinx_pack(zinx_packet_format_t format, uint32_t max_packet_size,
               uint32_t id, const void *data, uint32_t len, uint8_t *out,
               size_t cap)
{
    if (out == NULL || (data == NULL && len > 0) || !format_known(format))
        return ZINX_EINVAL;
    if (exceeds_limit(len, max_packet_size))
        return ZINX_EMSGSIZE;
    /* Subtract from cap instead of adding to len: nothing can wrap. */
    if (cap < ZINX_HEADER_LEN || cap - ZINX_HEADER_LEN < len)
        return ZINX_ENOBUFS;
    write_header(format, id, len, out);
    /* memcpy with a NULL source is undefined even for zero bytes. */
    if (len > 0)
        memcpy(out + ZINX_HEADER_LEN, data, len);
    return frame_size(len);
}

long zinx_unpack(zinx_packet_format_t format, uint32_t max_packet_size,
                 const uint8_t *buf, size_t buf_len, zinx_msg_t *msg)
{
    if (buf == NULL || msg == NULL || !format_known(format))
        return ZINX_EINVAL;
    if (buf_len < ZINX_HEADER_LEN)
        return ZINX_EAGAIN;
    uint32_t id;
    uint32_t len;
    int rc = zinx__read_header(format, buf, &id, &len);
    if (rc < 0)
        return rc;
    /*
     * Check the limit before waiting for the payload, so that a peer
     * announcing a huge frame is refused at once instead of being buffered.
     */
    if (exceeds_limit(len, max_packet_size))
        return ZINX_EMSGSIZE;
    if (buf_len - ZINX_HEADER_LEN < len)
        return ZINX_EAGAIN;
    msg->id = id;
    msg->len = len;
    msg->data = buf + ZINX_HEADER_LEN;
    return frame_size(len);
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
