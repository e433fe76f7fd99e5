/*
 * Fuzz target: the metrics listener's request parser
 * (src/metrics/request.c), fed what a scraper might send.
 *
 * The bytes are parsed from an exact copy (a read past the end is an
 * AddressSanitizer report), as the listener sees them with room left
 * and with its buffer full. Checked: only a GET or HEAD of /metrics
 * (query string allowed) over HTTP/1.0 or 1.1 is served; a head without
 * its blank line is incomplete, or too large once the buffer is full;
 * whatever follows the head does not change the answer.
 */
#include <string.h>

#include "fuzz.h"
#include "metrics/metrics.h"

#define MAX 8192

static bool starts(const char *s, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n >= pl && memcmp(s, prefix, pl) == 0;
}

static bool has_head(const char *s, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (memcmp(s + i - 3, "\r\n\r\n", 4) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX)
        return 0;
    char *req = malloc(size > 0 ? size : 1);
    if (req == NULL)
        return 0;
    memcpy(req, data, size);
    zinx__mreq_t r = zinx__mreq_classify(req, size, MAX);
    zinx__mreq_t full = zinx__mreq_classify(req, size, size);
    bool head = has_head(req, size);
    if (!head) {
        FUZZ_CHECK(
            r == (size >= MAX ? ZINX__MREQ_TOO_LARGE : ZINX__MREQ_INCOMPLETE),
            "no head: %d", r);
        FUZZ_CHECK(full == ZINX__MREQ_TOO_LARGE, "full buffer: %d", full);
    } else {
        FUZZ_CHECK(r == full, "%d then %d", r, full);
        FUZZ_CHECK(r != ZINX__MREQ_INCOMPLETE && r != ZINX__MREQ_TOO_LARGE,
                   "a whole head: %d", r);
    }
    if (r == ZINX__MREQ_GET)
        FUZZ_CHECK(starts(req, size, "GET /metrics ") ||
                       starts(req, size, "GET /metrics?"),
                   "GET of another target");
    if (r == ZINX__MREQ_HEAD)
        FUZZ_CHECK(starts(req, size, "HEAD /metrics ") ||
                       starts(req, size, "HEAD /metrics?"),
                   "HEAD of another target");
    /* What follows a complete head does not change the answer. */
    if (head && size + 5 <= MAX) {
        char *more = malloc(size + 5);
        if (more != NULL) {
            memcpy(more, req, size);
            memcpy(more + size, "GET /", 5);
            FUZZ_CHECK(zinx__mreq_classify(more, size + 5, MAX) == r,
                       "changed by a suffix");
            free(more);
        }
    }
    free(req);
    return 0;
}
