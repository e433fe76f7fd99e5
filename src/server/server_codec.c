/*
 * The endpoint's codec: a program's (zinx_server_set_codec), or the one
 * FrameDecoder and PacketFormat name. Chosen once at start; connections
 * then share it, read-only.
 */
#include "internal.h"

int zinx_server_set_codec(zinx_server_t *s, const zinx_codec_t *codec)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (codec != NULL &&
        (codec->decode == NULL || codec->encode == NULL ||
         codec->overhead > 65536 ||
         (codec->state_new == NULL) != (codec->state_free == NULL)))
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    s->has_codec = codec != NULL;
    if (codec != NULL)
        s->user_codec = *codec;
    return 0;
}

/* FrameDecoder "length_field": the LengthField* keys, kept by the server
   (the codec reads them at every decode). */
static int length_field_codec(zinx_server_t *s, zinx_codec_t *out)
{
    const zinx_config_t *cfg = &s->cfg;
    s->lf = (zinx_length_field_t){
        .order = cfg->length_field_order,
        .length = cfg->length_field_length,
        .max_frame_length = cfg->length_field_max_frame_length,
        .offset = cfg->length_field_offset,
        .adjustment = cfg->length_field_adjustment,
        .strip = cfg->length_field_strip,
    };
    return zinx_codec_length_field(&s->lf, cfg->packet_format, out);
}

int zinx__server_setup_codec(zinx_server_t *s)
{
    zinx_codec_t pub;
    if (s->has_codec) {
        pub = s->user_codec;
    } else if (s->cfg.frame_decoder == ZINX_DECODER_LENGTH_FIELD) {
        if (length_field_codec(s, &pub) != 0)
            return ZINX_ECONFIG; /* validated before: cannot happen */
    } else if (s->cfg.frame_decoder == ZINX_DECODER_HTLV_CRC) {
        zinx_codec_htlv_crc(ZINX_HTLV_REPLY_HEAD, &pub);
    } else {
        s->codec = zinx__codec_of(s->cfg.packet_format);
        return s->codec != NULL ? 0 : ZINX_ECONFIG;
    }
    zinx__codec_wrap(&s->general, &pub);
    s->codec = &s->general;
    return 0;
}
