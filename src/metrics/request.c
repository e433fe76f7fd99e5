/*
 * The metrics listener's request parser: what a request head asks for,
 * strictly (src/metrics/http.c answers it). Pure: no I/O, no state, so
 * that fuzz/fuzz_metrics_http.c can drive it with anything.
 */
#include <string.h>

#include "internal.h"

/* The end of the head: the blank line, or NULL. */
static const char *head_end(const char *req, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (memcmp(req + i - 3, "\r\n\r\n", 4) == 0)
            return req + i + 1;
    return NULL;
}

static bool method_ok(const char *m, size_t n)
{
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return false;
    return true;
}

static bool target_ok(const char *t, size_t n)
{
    if (n == 0 || t[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f)
            return false;
    return true;
}

/* "METHOD SP /target SP HTTP/1.x" up to the first CRLF. */
static zinx__mreq_t classify_line(const char *req, size_t len)
{
    const char *end = memchr(req, '\r', len);
    if (end == NULL || end + 1 >= req + len || end[1] != '\n')
        return ZINX__MREQ_BAD;
    size_t ll = (size_t)(end - req);
    const char *sp1 = memchr(req, ' ', ll);
    if (sp1 == NULL || !method_ok(req, (size_t)(sp1 - req)))
        return ZINX__MREQ_BAD;
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (sp2 == NULL || !target_ok(t, (size_t)(sp2 - t)))
        return ZINX__MREQ_BAD;
    if ((size_t)(end - sp2 - 1) != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 &&
                                         memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
        return ZINX__MREQ_BAD;
    size_t ml = (size_t)(sp1 - req);
    bool get = ml == 3 && memcmp(req, "GET", 3) == 0;
    bool head = ml == 4 && memcmp(req, "HEAD", 4) == 0;
    if (!get && !head)
        return ZINX__MREQ_METHOD;
    const char *q = memchr(t, '?', (size_t)(sp2 - t));
    size_t plen = (size_t)((q != NULL ? q : sp2) - t);
    if (plen != 8 || memcmp(t, "/metrics", 8) != 0)
        return ZINX__MREQ_NOT_FOUND;
    return get ? ZINX__MREQ_GET : ZINX__MREQ_HEAD;
}

zinx__mreq_t zinx__mreq_classify(const char *req, size_t len, size_t max)
{
    if (head_end(req, len) == NULL)
        return len >= max ? ZINX__MREQ_TOO_LARGE : ZINX__MREQ_INCOMPLETE;
    return classify_line(req, len);
}
