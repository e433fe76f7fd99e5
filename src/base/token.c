/*
 * Tokens: names that go into a NATS subject as they are (a cluster's
 * name, an application topic), so they may hold only what needs no
 * escaping there and cannot split or widen the subject ('.', '*', '>',
 * blanks).
 */
#include "base/base.h"

bool zinx__is_token(const char *s, size_t max_len)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || n >= max_len)
            return false;
    }
    return n > 0;
}
