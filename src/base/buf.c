/* Growable byte buffers for connection input and output. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* Doubling keeps appends amortised O(1); the floor avoids tiny reallocs. */
#define BUF_MIN_CAP 256u

static size_t grown_cap(size_t cap, size_t need)
{
    size_t n = cap < BUF_MIN_CAP ? BUF_MIN_CAP : cap;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return need;
        n *= 2;
    }
    return n;
}

int zinx__buf_reserve(zinx__buf_t *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t live = b->len - b->off;
    if (more > SIZE_MAX - live)
        return ZINX_ENOMEM;
    /* Reuse the consumed prefix before growing: output buffers are
       appended to and drained from the front all the time. */
    if (b->off > 0 && b->cap - live >= more) {
        memmove(b->data, b->data + b->off, live);
        b->off = 0;
        b->len = live;
        return 0;
    }
    size_t cap = grown_cap(b->cap, live + more);
    uint8_t *p = malloc(cap);
    if (p == NULL)
        return ZINX_ENOMEM;
    if (live > 0)
        memcpy(p, b->data + b->off, live);
    free(b->data);
    b->data = p;
    b->cap = cap;
    b->off = 0;
    b->len = live;
    return 0;
}

int zinx__buf_append(zinx__buf_t *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    int rc = zinx__buf_reserve(b, n);
    if (rc != 0)
        return rc;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

void zinx__buf_consume(zinx__buf_t *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len) {
        /* Keep the allocation: a busy connection reuses it for the next
           batch (freeing and regrowing it every batch made glibc trim its
           heap with madvise each time). Idle connections give it back
           through the loop's sweep (zinx__conn_trim). */
        b->off = b->len = 0;
    }
}

void zinx__buf_free(zinx__buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

int zinx__buf_move(zinx__buf_t *dst, zinx__buf_t *src)
{
    if (zinx__buf_size(src) == 0)
        return 0;
    if (zinx__buf_size(dst) == 0) {
        /* The common case: exchange the buffers, copy nothing; src gets
           dst's empty allocation to fill next. */
        zinx__buf_t spare = *dst;
        spare.off = spare.len = 0;
        *dst = *src;
        *src = spare;
        return 0;
    }
    int rc = zinx__buf_append(dst, zinx__buf_head(src), zinx__buf_size(src));
    if (rc == 0)
        src->off = src->len = 0;
    return rc;
}
