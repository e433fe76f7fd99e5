/*
 * The TLS stream layer: drives the handshake, decrypts into the owner's
 * buffer and encrypts what it writes, through the BIO of bio.c.
 *
 * Readiness: the layer asks its lower stream for the union of what the
 * owner wants, what the handshake waits for, and WRITE while ciphertext
 * waits in the backlog. Lower WRITE readiness flushes the backlog first;
 * the owner hears WRITE only once it is empty (only then does writev
 * take plaintext again). OpenSSL reads ahead, so a record may be held in
 * the SSL object after the owner's buffer filled: the layer then raises
 * READ, since no event of the socket would come for it.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"
#include "zinx/error.h"

static zinx__tls_layer_t *tls_of(zinx__stream_t *s)
{
    return (zinx__tls_layer_t *)s;
}

int zinx__tls_update_want(zinx__tls_layer_t *t)
{
    uint32_t ev = t->owner_want | t->hs_want;
    if (t->blen > 0)
        ev |= ZINX__EV_WRITE;
    if (ev == t->lower_want)
        return 0;
    zinx__stream_t *lower = t->l.base.lower;
    int rc = lower->ops->want(lower, ev);
    if (rc == 0)
        t->lower_want = ev;
    return rc;
}

/* Keeps a copy of the reason for the log (base.why points at it). */
static void set_why(zinx__tls_layer_t *t, const char *what)
{
    char detail[200];
    zinx__tls_error_text(detail, sizeof(detail));
    long vr = t->ssl != NULL ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    if (vr != X509_V_OK && SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE)
        snprintf(detail, sizeof(detail), "certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
    size_t n = strlen(what) + strlen(detail) + 3;
    char *text = malloc(n);
    if (text == NULL)
        return; /* the log says the error code instead */
    snprintf(text, n, "%s%s%s", what, detail[0] ? ": " : "", detail);
    free(t->why_text);
    t->why_text = text;
    t->l.base.why = text;
}

/* The code for a failed SSL call. */
static int failure(zinx__tls_layer_t *t, const char *what)
{
    if (t->err != 0) {
        ERR_clear_error();
        return t->err;
    }
    if (t->lower_eof) {
        ERR_clear_error();
        t->l.base.why = "the peer closed the connection during TLS";
        return ZINX_ECONNRESET;
    }
    set_why(t, what);
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK && SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE)
        return ZINX_EACCES;
    return ZINX_EPROTO;
}

/* ---- handshake ----------------------------------------------------------- */

static int tls_handshake(zinx__stream_t *s)
{
    zinx__tls_layer_t *t = tls_of(s);
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->hs_want = 0;
        int rc = zinx__tls_info_take(t);
        if (rc == 0)
            rc = zinx__tls_update_want(t);
        return rc;
    }
    int err = SSL_get_error(t->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        t->hs_want =
            err == SSL_ERROR_WANT_READ ? ZINX__EV_READ : ZINX__EV_WRITE;
        int rc = zinx__tls_update_want(t);
        return rc != 0 ? rc : ZINX_EAGAIN;
    }
    if (t->lower_eof && t->err == 0) {
        ERR_clear_error();
        t->l.base.why = "the peer closed before the TLS handshake ended";
        return ZINX_ECONNRESET;
    }
    return failure(t, "TLS handshake");
}

/* ---- reading ------------------------------------------------------------- */

static ssize_t tls_read(zinx__stream_t *s, void *buf, size_t len)
{
    zinx__tls_layer_t *t = tls_of(s);
    if (t->ssl == NULL)
        return ZINX_ECLOSED;
    size_t total = 0;
    while (total < len) {
        size_t got = 0;
        if (SSL_read_ex(t->ssl, (uint8_t *)buf + total, len - total, &got)) {
            total += got;
            continue;
        }
        int err = SSL_get_error(t->ssl, 0);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            break; /* the owner's want(READ) waits for the socket */
        if (total > 0)
            return (ssize_t)total; /* the end or the error comes next */
        if (err == SSL_ERROR_ZERO_RETURN)
            return 0; /* close_notify */
        if (t->lower_eof && t->err == 0) {
            /* No close_notify (OpenSSL: "unexpected eof"): frames carry
               their lengths, so the codec sees a cut stream as it would
               a plain TCP end. */
            ERR_clear_error();
            return 0;
        }
        return failure(t, "TLS read");
    }
    if (total == 0)
        return ZINX_EAGAIN;
    /* Records read ahead stay in the SSL object: no socket event will
       come for them. */
    if (total == len && SSL_has_pending(t->ssl))
        zinx__layer_raise(&t->l, ZINX__EV_READ);
    if (t->blen > 0) /* a reply of OpenSSL's own (a key update) */
        zinx__tls_update_want(t);
    return (ssize_t)total;
}

/* ---- writing ------------------------------------------------------------- */

/* Encrypts data[0..len) as records; false on failure (t->err or an
   OpenSSL error). */
static bool put(zinx__tls_layer_t *t, const void *data, size_t len)
{
    size_t done = 0;
    return SSL_write_ex(t->ssl, data, len, &done) == 1 && done == len;
}

static ssize_t write_failed(zinx__tls_layer_t *t, size_t taken)
{
    if (taken > 0)
        return (ssize_t)taken; /* the error comes at the next call */
    return failure(t, "TLS write");
}

/*
 * Small iovecs are gathered into one record in stage (one record per
 * frame would cost 22 bytes and an AEAD call each); a large one goes to
 * SSL_write as it is. Stops at ZINX__TLS_WRITE_CAP, or as soon as the
 * lower stream leaves ciphertext in the backlog.
 */
static ssize_t tls_writev(zinx__stream_t *s, const struct iovec *iov, int n)
{
    zinx__tls_layer_t *t = tls_of(s);
    if (t->ssl == NULL)
        return ZINX_ECLOSED;
    if (t->err != 0)
        return t->err;
    if (t->blen > 0) {
        int rc = zinx__tls_flush(t);
        if (rc != 0)
            return rc;
        if (t->blen > 0) {
            zinx__tls_update_want(t);
            return ZINX_EAGAIN;
        }
    }
    uint8_t stage[ZINX__TLS_RECORD];
    size_t staged = 0, taken = 0;
    for (int i = 0; i < n && t->blen == 0; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t room = ZINX__TLS_WRITE_CAP - taken - staged;
        size_t len = iov[i].iov_len < room ? iov[i].iov_len : room;
        if (len == 0 && room == 0)
            break;
        if (staged == 0 && len >= ZINX__TLS_RECORD) {
            if (!put(t, p, len))
                return write_failed(t, taken);
            taken += len;
            continue;
        }
        /* A record leaves when stage is full; staged stays 0 after a
           put, so a backlog ends the loop with nothing staged. */
        while (len > 0 && t->blen == 0) {
            size_t c = ZINX__TLS_RECORD - staged;
            c = c < len ? c : len;
            memcpy(stage + staged, p, c);
            staged += c;
            p += c;
            len -= c;
            if (staged == ZINX__TLS_RECORD) {
                if (!put(t, stage, staged))
                    return write_failed(t, taken);
                taken += staged;
                staged = 0;
            }
        }
    }
    if (staged > 0) {
        if (!put(t, stage, staged))
            return write_failed(t, taken);
        taken += staged;
    }
    if (t->blen > 0)
        zinx__tls_update_want(t);
    return taken > 0 ? (ssize_t)taken : ZINX_EAGAIN;
}

/* ---- readiness ----------------------------------------------------------- */

static int tls_want(zinx__stream_t *s, uint32_t events)
{
    zinx__tls_layer_t *t = tls_of(s);
    t->owner_want = events & (ZINX__EV_READ | ZINX__EV_WRITE);
    if ((events & ZINX__EV_READ) && t->ssl != NULL &&
        SSL_is_init_finished(t->ssl) && SSL_has_pending(t->ssl))
        zinx__layer_raise(&t->l, ZINX__EV_READ);
    return zinx__tls_update_want(t);
}

static void finish_shutdown(zinx__tls_layer_t *t)
{
    if (t->shut_pending && t->blen == 0 && !t->lower_shut) {
        t->lower_shut = true;
        zinx__layer_shutdown_lower(&t->l.base);
    }
}

static void tls_on_lower(zinx__layer_t *l, uint32_t events)
{
    zinx__tls_layer_t *t = (zinx__tls_layer_t *)l;
    uint32_t out = events & ~(uint32_t)ZINX__EV_WRITE;
    if ((events & ZINX__EV_WRITE) && t->blen > 0 && zinx__tls_flush(t) != 0)
        out |= ZINX__EV_ERROR;
    if ((events & ZINX__EV_WRITE) && t->blen == 0 &&
        ((t->owner_want | t->hs_want) & ZINX__EV_WRITE))
        out |= ZINX__EV_WRITE;
    finish_shutdown(t);
    zinx__tls_update_want(t);
    zinx__layer_notify(l, out);
}

/* ---- ending -------------------------------------------------------------- */

static int tls_shutdown(zinx__stream_t *s)
{
    zinx__tls_layer_t *t = tls_of(s);
    if (t->ssl == NULL)
        return ZINX_ECLOSED;
    if (!t->shut_pending) {
        t->shut_pending = true;
        /* close_notify, so the peer knows the stream was not cut; it
           goes out through the backlog like any record. */
        if (SSL_is_init_finished(t->ssl) && SSL_shutdown(t->ssl) < 0)
            ERR_clear_error();
    }
    if (t->blen > 0 && t->err == 0)
        zinx__tls_flush(t);
    if (t->err != 0)
        return t->err;
    finish_shutdown(t);
    return zinx__tls_update_want(t);
}

static size_t tls_unacked(zinx__stream_t *s)
{
    zinx__tls_layer_t *t = tls_of(s);
    return t->blen + zinx__layer_unacked_lower(s);
}

static int tls_error(zinx__stream_t *s)
{
    zinx__tls_layer_t *t = tls_of(s);
    return t->err != 0 ? t->err : zinx__layer_error_lower(s);
}

static void drop_ssl(zinx__tls_layer_t *t)
{
    SSL_free(t->ssl); /* frees the BIO too */
    t->ssl = NULL;
    free(t->backlog);
    t->backlog = NULL;
    t->blen = t->bcap = 0;
}

static void tls_close(zinx__stream_t *s)
{
    zinx__tls_layer_t *t = tls_of(s);
    if (t->l.closed)
        return;
    drop_ssl(t); /* its buffers go now; the info stays for readers */
    zinx__layer_close_lower(&t->l);
}

static void tls_destroy(zinx__stream_t *s)
{
    zinx__tls_layer_t *t = tls_of(s);
    drop_ssl(t);
    zinx__tls_info_free(&t->info);
    free(t->why_text);
    free(t);
}

const zinx__stream_ops_t zinx__tls_ops = {
    .name = "TLS",
    .kind = ZINX__LAYER_TLS,
    .start = zinx__layer_start,
    .read = tls_read,
    .writev = tls_writev,
    .shutdown = tls_shutdown,
    .want = tls_want,
    .handshake = tls_handshake,
    .unacked = tls_unacked,
    .since_ack_ms = zinx__layer_since_ack_lower,
    .error = tls_error,
    .close = tls_close,
    .destroy = tls_destroy,
};

/* ---- making -------------------------------------------------------------- */

static bool is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

/* SNI and the name the certificate must carry. */
static bool set_peer_name(SSL *ssl, const zinx__tls_conf_t *conf)
{
    if (conf->host == NULL || conf->host[0] == '\0')
        return true;
    bool ip = is_ip_literal(conf->host);
    /* RFC 6066: SNI names a host, never an address. */
    if (!ip && !SSL_set_tlsext_host_name(ssl, conf->host))
        return false;
    if (!conf->verify)
        return true;
    if (ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), conf->host);
    return SSL_set1_host(ssl, conf->host) == 1;
}

static SSL *new_ssl(const zinx__tls_conf_t *conf, zinx__tls_layer_t *t)
{
    SSL *ssl = SSL_new(conf->ctx);
    BIO *bio = ssl != NULL ? BIO_new(conf->bio) : NULL;
    if (bio == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(ssl, bio, bio);
    if (!conf->client) {
        SSL_set_accept_state(ssl);
        return ssl;
    }
    SSL_set_connect_state(ssl);
    SSL_set_verify(ssl, conf->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (!set_peer_name(ssl, conf)) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

int zinx__tls_layer_make(const void *conf, zinx__stream_t *lower,
                         zinx__stream_t **out)
{
    zinx__tls_layer_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ZINX_ENOMEM;
    t->ssl = new_ssl(conf, t);
    if (t->ssl == NULL) {
        ERR_clear_error();
        free(t);
        return ZINX_ENOMEM;
    }
    zinx__layer_init(&t->l, &zinx__tls_ops, lower, tls_on_lower);
    *out = &t->l.base;
    return 0;
}
