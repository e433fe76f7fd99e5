/*
 * What a connection's handshake agreed: copied out of the SSL object
 * when the handshake ends (the SSL object belongs to the I/O thread and
 * is freed at close), read by the public API from any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tls/tls.h"
#include "zinx/tls.h"

/* The verified peer certificate's subject, one line, or "" (OpenSSL's
   RFC 2253 form: "CN=client,O=Example"). */
static void peer_subject(SSL *ssl, char *buf, size_t len)
{
    buf[0] = '\0';
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert == NULL || SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE ||
        SSL_get_verify_result(ssl) != X509_V_OK)
        return;
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem == NULL)
        return;
    if (X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0,
                           XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(mem, buf, (int)len - 1);
        buf[n > 0 ? n : 0] = '\0';
    }
    BIO_free(mem);
}

int zinx__tls_info_take(zinx__tls_layer_t *t)
{
    SSL *ssl = t->ssl;
    zinx__tls_info_t *info = &t->info;
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    size_t sni_len = sni != NULL ? strlen(sni) : 0;
    char subject[512];
    peer_subject(ssl, subject, sizeof(subject));
    size_t subj_len = strlen(subject);
    /* One allocation for the three texts; the absent ones stay NULL. */
    char *p = malloc(alpn_len + sni_len + subj_len + 3);
    if (p == NULL)
        return ZINX_ENOMEM;
    info->block = p;
    info->alpn = alpn_len > 0 ? p : NULL;
    if (alpn_len > 0)
        memcpy(p, alpn, alpn_len);
    p[alpn_len] = '\0';
    p += alpn_len + 1;
    info->server_name = sni_len > 0 ? p : NULL;
    memcpy(p, sni != NULL ? sni : "", sni_len + 1);
    p += sni_len + 1;
    info->peer_subject = subj_len > 0 ? p : NULL;
    memcpy(p, subject, subj_len + 1);
    info->cipher = SSL_get_cipher_name(ssl);
    info->version = SSL_get_version(ssl);
    return 0;
}

void zinx__tls_info_free(zinx__tls_info_t *info)
{
    free(info->block);
    memset(info, 0, sizeof(*info));
}

/* ---- the public API ---------------------------------------------------- */

static const zinx__tls_info_t *info_of(const zinx_conn_t *c)
{
    if (c == NULL)
        return NULL;
    zinx__stream_t *s = zinx__stream_find(zinx__conn_stream(c), &zinx__tls_ops);
    if (s == NULL)
        return NULL;
    const zinx__tls_info_t *info = &((zinx__tls_layer_t *)s)->info;
    return info->version != NULL ? info : NULL;
}

const char *zinx_conn_tls_version(const zinx_conn_t *c)
{
    const zinx__tls_info_t *info = info_of(c);
    return info != NULL ? info->version : NULL;
}

const char *zinx_conn_tls_cipher(const zinx_conn_t *c)
{
    const zinx__tls_info_t *info = info_of(c);
    return info != NULL ? info->cipher : NULL;
}

const char *zinx_conn_tls_alpn(const zinx_conn_t *c)
{
    const zinx__tls_info_t *info = info_of(c);
    return info != NULL ? info->alpn : NULL;
}

const char *zinx_conn_tls_server_name(const zinx_conn_t *c)
{
    const zinx__tls_info_t *info = info_of(c);
    return info != NULL ? info->server_name : NULL;
}

const char *zinx_conn_tls_peer_subject(const zinx_conn_t *c)
{
    const zinx__tls_info_t *info = info_of(c);
    return info != NULL ? info->peer_subject : NULL;
}
