/* Checks of what players send: see checks.h. */
#include "checks.h"

#include <math.h>
#include <string.h>

#include "msg.pb-c.h"

mmo_verdict_t mmo_check_move(const mmo_aoi_t *aoi, const void *data, size_t len,
                             mmo_pos_t *out)
{
    Pb__Position *p = pb__position__unpack(NULL, len, data);
    if (p == NULL)
        return MMO_MALFORMED;
    mmo_pos_t m = {.x = p->x, .y = p->y, .z = p->z, .v = p->v};
    pb__position__free_unpacked(p, NULL);
    if (!mmo_aoi_inside(aoi, m.x, m.z) || !isfinite(m.y) || !isfinite(m.v))
        return MMO_BAD_POSITION;
    *out = m;
    return MMO_OK;
}

mmo_verdict_t mmo_check_talk(const void *data, size_t len,
                             char out[MMO_CHAT_MAX + 1])
{
    /* A Talk holding a longer chat is not worth decoding: a string's
       tag and length take at most 3 bytes at this size. */
    if (len > MMO_CHAT_MAX + 3)
        return MMO_BAD_CHAT_SIZE;
    Pb__Talk *talk = pb__talk__unpack(NULL, len, data);
    if (talk == NULL)
        return MMO_MALFORMED;
    /* protobuf-c ends the string at its first NUL; a chat with one
       inside is cut there rather than refused. */
    size_t n = strlen(talk->content);
    mmo_verdict_t v = MMO_OK;
    if (n == 0 || n > MMO_CHAT_MAX)
        v = MMO_BAD_CHAT_SIZE;
    else if (!mmo_valid_utf8((const unsigned char *)talk->content, n))
        v = MMO_MALFORMED;
    else
        memcpy(out, talk->content, n + 1);
    pb__talk__free_unpacked(talk, NULL);
    return v;
}

/* The length of a sequence from its lead byte, with the smallest code
   point it may encode; 0 for a byte that cannot lead. */
static int lead(unsigned c, unsigned *value, unsigned *min)
{
    if (c >= 0xC2 && c <= 0xDF) {
        *value = c & 0x1F;
        *min = 0x80;
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        *value = c & 0x0F;
        *min = 0x800;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        *value = c & 0x07;
        *min = 0x10000;
        return 4;
    }
    return 0;
}

bool mmo_valid_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        unsigned value, min;
        int n = lead(s[i], &value, &min);
        if (n == 0 || len - i < (size_t)n)
            return false;
        for (int k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            value = (value << 6) | (s[i + k] & 0x3F);
        }
        if (value < min || value > 0x10FFFF ||
            (value >= 0xD800 && value <= 0xDFFF))
            return false;
        i += (size_t)n;
    }
    return true;
}
