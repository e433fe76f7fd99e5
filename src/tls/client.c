/*
 * Client settings (zinx_tls_client_t): a client context that verifies
 * by default, changed by setters until a dial uses it, then shared
 * read-only (reference-counted) by the dialers and their connections.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "internal.h"
#include "tls/client.h"
#include "tls/tls.h"
#include "zinx/tls.h"

struct zinx_tls_client {
    atomic_uint refs;
    atomic_bool frozen; /* a dial uses it: no more changes */
    SSL_CTX *ctx;
    BIO_METHOD *bio;
    bool insecure;
    char server_name[256]; /* "" means the dialled host */
};

zinx_tls_client_t *zinx_tls_client_new(void)
{
    zinx_tls_client_t *tls = calloc(1, sizeof(*tls));
    if (tls == NULL)
        return NULL;
    atomic_init(&tls->refs, 1);
    tls->ctx = SSL_CTX_new(TLS_client_method());
    tls->bio = zinx__tls_bio_method();
    if (tls->ctx == NULL || tls->bio == NULL ||
        !zinx__tls_ctx_defaults(tls->ctx) ||
        SSL_CTX_set_default_verify_paths(tls->ctx) != 1) {
        ERR_clear_error();
        zinx_tls_client_free(tls);
        return NULL;
    }
    return tls;
}

static int changeable(zinx_tls_client_t *tls)
{
    if (tls == NULL)
        return ZINX_EINVAL;
    return atomic_load(&tls->frozen) ? ZINX_ESTATE : 0;
}

int zinx_tls_client_set_ca_file(zinx_tls_client_t *tls, const char *path)
{
    int rc = changeable(tls);
    if (rc != 0 || path == NULL)
        return rc != 0 ? rc : ZINX_EINVAL;
    X509_STORE *store = X509_STORE_new();
    if (store == NULL)
        return ZINX_ENOMEM;
    if (X509_STORE_load_file(store, path) != 1) {
        ERR_clear_error();
        X509_STORE_free(store);
        return ZINX_ECONFIG;
    }
    SSL_CTX_set_cert_store(tls->ctx, store); /* replaces the system's */
    return 0;
}

int zinx_tls_client_set_insecure(zinx_tls_client_t *tls, int insecure)
{
    int rc = changeable(tls);
    if (rc == 0)
        tls->insecure = insecure != 0;
    return rc;
}

int zinx_tls_client_set_server_name(zinx_tls_client_t *tls, const char *name)
{
    int rc = changeable(tls);
    if (rc != 0)
        return rc;
    if (name == NULL)
        name = "";
    if (strlen(name) >= sizeof(tls->server_name))
        return ZINX_EINVAL;
    strcpy(tls->server_name, name);
    return 0;
}

int zinx_tls_client_set_cert(zinx_tls_client_t *tls, const char *cert_file,
                             const char *key_file)
{
    int rc = changeable(tls);
    if (rc != 0 || cert_file == NULL || key_file == NULL)
        return rc != 0 ? rc : ZINX_EINVAL;
    if (SSL_CTX_use_certificate_chain_file(tls->ctx, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls->ctx, key_file, SSL_FILETYPE_PEM) !=
            1 ||
        SSL_CTX_check_private_key(tls->ctx) != 1) {
        ERR_clear_error();
        return ZINX_ECONFIG;
    }
    return 0;
}

int zinx_tls_client_set_alpn(zinx_tls_client_t *tls, const char *const *protos,
                             size_t n)
{
    int rc = changeable(tls);
    if (rc != 0 || (n > 0 && protos == NULL))
        return rc != 0 ? rc : ZINX_EINVAL;
    uint8_t *wire;
    size_t len;
    rc = zinx__tls_alpn_wire(protos, n, &wire, &len);
    if (rc != 0)
        return rc;
    /* OpenSSL copies it; n == 0 clears (its return is 0 on success). */
    rc = SSL_CTX_set_alpn_protos(tls->ctx, wire, (unsigned)len) == 0
             ? 0
             : ZINX_ENOMEM;
    free(wire);
    return rc;
}

void zinx_tls_client_free(zinx_tls_client_t *tls)
{
    if (tls == NULL ||
        atomic_fetch_sub_explicit(&tls->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(tls->ctx);
    BIO_meth_free(tls->bio);
    free(tls);
}

/* ---- for dialers ------------------------------------------------------- */

int zinx__tls_dial_init(zinx__tls_dial_t *td, zinx_tls_client_t *tls,
                        const char *host)
{
    const char *name = tls->server_name[0] != '\0' ? tls->server_name : host;
    if (zinx__addr_is_unix(name))
        name = ""; /* a socket path is no host name */
    if (strlen(name) >= sizeof(td->host))
        return ZINX_EINVAL;
    strcpy(td->host, name);
    atomic_store(&tls->frozen, true);
    atomic_fetch_add_explicit(&tls->refs, 1, memory_order_relaxed);
    td->tls = tls;
    td->conf = (zinx__tls_conf_t){.ctx = tls->ctx,
                                  .bio = tls->bio,
                                  .client = true,
                                  .host = td->host,
                                  .verify = !tls->insecure};
    td->stack.n = 0;
    zinx__stack_push(&td->stack, zinx__tls_layer_make, &td->conf);
    return 0;
}

void zinx__tls_dial_free(zinx__tls_dial_t *td)
{
    zinx_tls_client_free(td->tls);
    td->tls = NULL;
}
