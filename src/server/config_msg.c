/*
 * Messages of the configuration module: bounded formatting into the
 * caller's buffer, and user text made safe to quote back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server/config_internal.h"

void zinx__config_msg(char *buf, size_t len, const char *fmt, ...)
{
    if (buf == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(buf, len, fmt, ap) < 0)
        buf[0] = '\0';
    va_end(ap);
}

/*
 * A hostile file must not be able to forge extra log lines or break the
 * quoting of a message, and a long value would drown the message.
 */
const char *zinx__config_quote(const char *s, char out[ZINX__CONFIG_QUOTE_LEN])
{
    size_t n = 0;
    for (; s[n] != '\0' && n < ZINX__CONFIG_QUOTE_LEN - 4; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] =
            (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (s[n] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}
