/*
 * The BIO under each TLS layer: OpenSSL reads ciphertext straight from
 * the lower stream and writes straight to it, with no memory BIO or BIO
 * pair copying every byte twice.
 *
 * Writes never fail for want of room: what the lower stream does not
 * take is kept in the layer's backlog and reported written, so that
 * SSL_write never returns SSL_ERROR_WANT_WRITE (whose retry rules would
 * pin the caller's buffer). The layer bounds the backlog instead: it
 * takes no new plaintext while any is left (layer.c), so the backlog
 * holds at most one writev's worth of records.
 */
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"
#include "zinx/error.h"

static zinx__tls_layer_t *layer_of(BIO *b)
{
    return BIO_get_data(b);
}

/* Appends len bytes to the backlog. Returns false when out of memory. */
static bool backlog_add(zinx__tls_layer_t *t, const void *data, size_t len)
{
    if (t->blen + len > t->bcap) {
        size_t cap = t->bcap != 0 ? t->bcap : 4096;
        while (cap < t->blen + len)
            cap *= 2;
        uint8_t *p = realloc(t->backlog, cap);
        if (p == NULL)
            return false;
        t->backlog = p;
        t->bcap = cap;
    }
    memcpy(t->backlog + t->blen, data, len);
    t->blen += len;
    return true;
}

int zinx__tls_flush(zinx__tls_layer_t *t)
{
    zinx__stream_t *lower = t->l.base.lower;
    while (t->blen > 0) {
        struct iovec iov = {.iov_base = t->backlog, .iov_len = t->blen};
        ssize_t n = lower->ops->writev(lower, &iov, 1);
        if (n == ZINX_EAGAIN)
            return 0;
        if (n <= 0)
            return t->err = n < 0 ? (int)n : ZINX_EPIPE;
        memmove(t->backlog, t->backlog + n, t->blen - (size_t)n);
        t->blen -= (size_t)n;
    }
    /* Idle connections hold no backlog memory. */
    free(t->backlog);
    t->backlog = NULL;
    t->bcap = 0;
    return 0;
}

static int bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
    zinx__tls_layer_t *t = layer_of(b);
    BIO_clear_retry_flags(b);
    if (t->err != 0)
        return 0;
    size_t done = 0;
    if (t->blen == 0) {
        zinx__stream_t *lower = t->l.base.lower;
        struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
        ssize_t n = lower->ops->writev(lower, &iov, 1);
        if (n < 0 && n != ZINX_EAGAIN) {
            t->err = (int)n;
            return 0;
        }
        done = n > 0 ? (size_t)n : 0;
    }
    if (done < len && !backlog_add(t, data + done, len - done)) {
        t->err = ZINX_ENOMEM;
        return 0;
    }
    *written = len;
    return 1;
}

static int bio_read(BIO *b, char *buf, size_t len, size_t *got)
{
    zinx__tls_layer_t *t = layer_of(b);
    BIO_clear_retry_flags(b);
    zinx__stream_t *lower = t->l.base.lower;
    ssize_t n = lower->ops->read(lower, buf, len);
    if (n > 0) {
        *got = (size_t)n;
        return 1;
    }
    if (n == ZINX_EAGAIN)
        BIO_set_retry_read(b);
    else if (n == 0)
        t->lower_eof = true;
    else
        t->err = (int)n;
    return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* written through, or kept in the backlog */
    case BIO_CTRL_EOF:
        return layer_of(b)->lower_eof;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

BIO_METHOD *zinx__tls_bio_method(void)
{
    BIO_METHOD *m =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "zinx stream");
    if (m == NULL)
        return NULL;
    if (!BIO_meth_set_write_ex(m, bio_write) ||
        !BIO_meth_set_read_ex(m, bio_read) || !BIO_meth_set_ctrl(m, bio_ctrl) ||
        !BIO_meth_set_create(m, bio_create)) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}
