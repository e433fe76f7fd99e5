/*
 * The server's TLS context: made once at start from CertFile,
 * PrivateKeyFile and TlsClientCAFile (and the ALPN list the program
 * set), shared read-only by every connection of every listener. Also
 * the settings both sides share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "internal.h"
#include "tls/server.h"
#include "tls/tls.h"
#include "zinx/tls.h"

/* TLS 1.2's suites: forward secrecy and AEAD only. TLS 1.3's are
   OpenSSL's defaults (all AEAD). */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"

bool zinx__tls_ctx_defaults(SSL_CTX *ctx)
{
    /* Idle connections keep no record buffers; a write's buffer may
       move between calls (it never does: SSL_write does not retry). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_AUTO_RETRY |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* One lower read per batch of records, not two per record. */
    SSL_CTX_set_read_ahead(ctx, 1);
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
           SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) == 1;
}

void zinx__tls_error_text(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error(); /* the first: the cause */
    buf[0] = '\0';
    if (e != 0) {
        const char *reason = ERR_reason_error_string(e);
        if (reason != NULL)
            snprintf(buf, len, "%s", reason);
        else
            ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
}

int zinx__tls_alpn_wire(const char *const *protos, size_t n, uint8_t **out,
                        size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = protos[i] != NULL ? strlen(protos[i]) : 0;
        if (l == 0 || l > 255)
            return ZINX_EINVAL;
        total += 1 + l;
    }
    *out = NULL;
    *len = 0;
    if (n == 0)
        return 0;
    uint8_t *wire = malloc(total);
    if (wire == NULL)
        return ZINX_ENOMEM;
    uint8_t *p = wire;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(protos[i]);
        *p++ = (uint8_t)l;
        memcpy(p, protos[i], l);
        p += l;
    }
    *out = wire;
    *len = total;
    return 0;
}

/* ---- the server's context ---------------------------------------------- */

struct zinx__tls_server {
    zinx__tls_conf_t conf;
    uint8_t *alpn; /* wire form, or NULL */
    size_t alpn_len;
};

/* ALPN: the first of our protocols the client also offers. */
static int select_alpn(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)ssl;
    struct zinx__tls_server *ts = arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ts->alpn,
                              (unsigned int)ts->alpn_len, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int refuse(zinx_server_t *s, const char *key, const char *path,
                  const char *what)
{
    char reason[256];
    zinx__tls_error_text(reason, sizeof(reason));
    zinx__log(s, ZINX_LOG_ERROR, "cannot start: %s \"%s\": %s%s%s", key, path,
              what, reason[0] ? ": " : "", reason);
    return ZINX_ECONFIG;
}

static int load_files(zinx_server_t *s, SSL_CTX *ctx)
{
    const zinx_config_t *cfg = &s->cfg;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1)
        return refuse(s, "CertFile", cfg->cert_file,
                      "cannot load the certificate chain");
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->private_key_file,
                                    SSL_FILETYPE_PEM) != 1)
        return refuse(s, "PrivateKeyFile", cfg->private_key_file,
                      "cannot load the private key");
    if (SSL_CTX_check_private_key(ctx) != 1)
        return refuse(s, "PrivateKeyFile", cfg->private_key_file,
                      "does not match CertFile");
    if (cfg->tls_client_ca_file[0] == '\0')
        return 0;
    const char *ca = cfg->tls_client_ca_file;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return refuse(s, "TlsClientCAFile", ca, "cannot load the CAs");
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* taken */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    return 0;
}

static int setup_ctx(zinx_server_t *s, struct zinx__tls_server *ts)
{
    SSL_CTX *ctx = ts->conf.ctx;
    if (!zinx__tls_ctx_defaults(ctx))
        return refuse(s, "CertFile", s->cfg.cert_file, "TLS settings refused");
    /* No server-side session cache (it would grow with every handshake);
       resumption still works through stateless tickets. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char sid[] = "zinx";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (s->tls_alpn != NULL) {
        ts->alpn = malloc(s->tls_alpn_len);
        if (ts->alpn == NULL)
            return ZINX_ENOMEM;
        memcpy(ts->alpn, s->tls_alpn, s->tls_alpn_len);
        ts->alpn_len = s->tls_alpn_len;
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, ts);
    }
    return load_files(s, ctx);
}

int zinx__tls_server_new(zinx_server_t *s, struct zinx__tls_server **out)
{
    struct zinx__tls_server *ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return ZINX_ENOMEM;
    ts->conf.ctx = SSL_CTX_new(TLS_server_method());
    ts->conf.bio = zinx__tls_bio_method();
    int rc = ts->conf.ctx != NULL && ts->conf.bio != NULL ? setup_ctx(s, ts)
                                                          : ZINX_ENOMEM;
    if (rc != 0) {
        if (rc == ZINX_ENOMEM)
            zinx__log(s, ZINX_LOG_ERROR, "cannot start: TLS: out of memory");
        zinx__tls_server_free(ts);
        return rc;
    }
    *out = ts;
    return 0;
}

const void *zinx__tls_server_conf(const struct zinx__tls_server *ts)
{
    return &ts->conf;
}

void zinx__tls_server_free(struct zinx__tls_server *ts)
{
    if (ts == NULL)
        return;
    SSL_CTX_free(ts->conf.ctx);
    BIO_meth_free(ts->conf.bio);
    free(ts->alpn);
    free(ts);
}

/* ---- ALPN of the public API -------------------------------------------- */

int zinx_server_set_tls_alpn(zinx_server_t *s, const char *const *protos,
                             size_t n)
{
    if (s == NULL || (n > 0 && protos == NULL))
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    uint8_t *wire;
    size_t len;
    int rc = zinx__tls_alpn_wire(protos, n, &wire, &len);
    if (rc != 0)
        return rc;
    free(s->tls_alpn);
    s->tls_alpn = wire;
    s->tls_alpn_len = len;
    return 0;
}
