/*
 * Zinx's HTLV+CRC16 device frame as a public codec:
 *
 *     [Head 1B][FuncCode 1B][Len 1B][Body Len B][CRC16 2B]
 *
 * The CRC (CRC-16/MODBUS over Head..Body, low byte first) is checked
 * once the whole frame is there; a bad one is refused with the frame's
 * size, so the connection's BadFramePolicy may skip just that frame.
 * The reply Head byte is the udata itself (an integer in the pointer),
 * so the codec needs no storage of its own.
 */
#include <stdint.h>
#include <string.h>

#include "codec/codec.h"

#define HTLV_HEAD_LEN 3u
#define HTLV_CRC_LEN 2u
#define HTLV_OVERHEAD (HTLV_HEAD_LEN + HTLV_CRC_LEN)

static int htlv_decode(void *udata, void *state, uint32_t max_len,
                       const uint8_t *buf, size_t len, zinx_msg_t *msg,
                       size_t *used)
{
    ZINX__UNUSED(udata);
    ZINX__UNUSED(state);
    if (len < HTLV_HEAD_LEN) {
        *used = HTLV_HEAD_LEN;
        return ZINX_CODEC_MORE;
    }
    uint32_t body = buf[2];
    size_t frame = HTLV_OVERHEAD + body;
    *used = frame;
    if (body > max_len)
        return ZINX_EMSGSIZE;
    if (len < frame)
        return ZINX_CODEC_MORE;
    uint16_t crc = (uint16_t)(buf[HTLV_HEAD_LEN + body] |
                              buf[HTLV_HEAD_LEN + body + 1] << 8);
    if (zinx_crc16_modbus(buf, HTLV_HEAD_LEN + body) != crc)
        return ZINX_EPROTO; /* skippable: *used is the frame */
    msg->id = buf[1];
    msg->len = body;
    msg->data = buf + HTLV_HEAD_LEN;
    return ZINX_CODEC_FRAME;
}

static int htlv_encode(void *udata, uint32_t id, const void *data, uint32_t len,
                       uint8_t *out)
{
    if (id > UINT8_MAX)
        return ZINX_EINVAL;
    if (len > UINT8_MAX)
        return ZINX_EMSGSIZE;
    out[0] = (uint8_t)(uintptr_t)udata;
    out[1] = (uint8_t)id;
    out[2] = (uint8_t)len;
    if (len > 0)
        memcpy(out + HTLV_HEAD_LEN, data, len);
    uint16_t crc = zinx_crc16_modbus(out, HTLV_HEAD_LEN + len);
    out[HTLV_HEAD_LEN + len] = (uint8_t)(crc & 0xFF);
    out[HTLV_HEAD_LEN + len + 1] = (uint8_t)(crc >> 8);
    return 0;
}

void zinx_codec_htlv_crc(uint8_t reply_head, zinx_codec_t *out)
{
    if (out == NULL)
        return;
    *out = (zinx_codec_t){
        .name = "htlv_crc",
        .overhead = HTLV_OVERHEAD,
        .decode = htlv_decode,
        .encode = htlv_encode,
        .udata = (void *)(uintptr_t)reply_head,
    };
}
