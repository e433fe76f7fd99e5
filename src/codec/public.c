/*
 * A public codec (zinx/codec.h) as an internal one: the general path of
 * every codec that is not one of PacketFormat's fixed layouts.
 */
#include <stdbool.h>
#include <string.h>

#include "codec/codec.h"

/* A frame must lie in the bytes it was cut from, and consume some. */
static bool frame_within(const uint8_t *buf, size_t len, const zinx_msg_t *m,
                         size_t used)
{
    if (used == 0 || used > len)
        return false;
    if (m->len == 0)
        return true;
    return m->data >= buf && m->len <= len &&
           (size_t)(m->data - buf) <= len - m->len;
}

static int public_decode(const zinx__codec_t *codec, void *state,
                         uint32_t max_len, const uint8_t *buf, size_t len,
                         zinx_msg_t *msg, size_t *used)
{
    /* A program's decoder that forgets *used on an error must not make
       the reader skip garbage: unset means "cannot skip". */
    *used = 0;
    int rc = codec->pub.decode(codec->pub.udata, state, max_len, buf, len, msg,
                               used);
    if (rc == ZINX_CODEC_FRAME && !frame_within(buf, len, msg, *used)) {
        *used = 0;
        return ZINX_EPROTO;
    }
    if (rc == ZINX_CODEC_MORE && *used <= len)
        *used = len + 1; /* at least one byte more, never a busy loop */
    if (rc < 0 && rc != ZINX_EMSGSIZE && rc != ZINX_EPROTO) {
        *used = 0; /* any other error is a malformed stream */
        rc = ZINX_EPROTO;
    }
    if (rc == ZINX_EPROTO && *used > len)
        *used = 0; /* a bad frame to skip lies within the bytes */
    if (rc > ZINX_CODEC_FRAME) {
        *used = 0;
        rc = ZINX_EPROTO;
    }
    return rc;
}

void zinx__codec_wrap(zinx__codec_t *out, const zinx_codec_t *pub)
{
    memset(out, 0, sizeof(*out));
    out->name = pub->name != NULL ? pub->name : "custom";
    out->layout = ZINX__LAYOUT_OTHER;
    out->header_len = 0;
    out->overhead = pub->overhead;
    out->decode = public_decode;
    out->put_header = NULL;
    out->pub = *pub;
}
