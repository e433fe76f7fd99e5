/*
 * TLS (OpenSSL 3) as a stream layer, server and client side.
 *
 *   bio.c     the BIO that reads and writes the lower stream directly,
 *             and the small ciphertext backlog it keeps when the lower
 *             stream takes less than a record
 *   layer.c   the stream layer: handshake, read, write, shutdown
 *   server.c  the server's context (CertFile, PrivateKeyFile,
 *             TlsClientCAFile, ALPN), made once at start
 *   client.c  the public client options (zinx_tls_client_t) and the
 *             context dialers share
 *   info.c    what a connection's handshake agreed, for the public API
 *
 * Every operation of a layer runs on its connection's I/O thread; the
 * contexts are read-only once connections use them (OpenSSL's SSL_CTX
 * is safe to share between threads for SSL_new).
 */
#ifndef ZINX_TLS_TLS_H
#define ZINX_TLS_TLS_H

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/stream.h"

/* Plaintext a layer takes per writev call (several records); more waits
   for the next call, so one fast writer cannot build a large backlog. */
#define ZINX__TLS_WRITE_CAP (64u * 1024u)
/* Plaintext gathered into one record from small iovecs. */
#define ZINX__TLS_RECORD (16u * 1024u)

/* What a layer is made from: shared by every connection of a listener or
   a dialer, alive while they are. */
typedef struct zinx__tls_conf {
    SSL_CTX *ctx;
    BIO_METHOD *bio; /* the lower-stream BIO (bio.c) */
    bool client;
    /* Client only: the name to send as SNI and check the certificate
       against (a name or an IP literal); "" for none. */
    const char *host;
    bool verify; /* client only: check the server's certificate */
} zinx__tls_conf_t;

/* What the handshake agreed, copied once it ends so that any thread may
   read it while it holds the connection (info.c). */
typedef struct zinx__tls_info {
    const char *version; /* OpenSSL's static text */
    const char *cipher;  /* OpenSSL's static text */
    char *block;         /* one allocation for the three texts below */
    char *alpn;          /* NULL: none */
    char *server_name;
    char *peer_subject;
} zinx__tls_info_t;

typedef struct zinx__tls_layer {
    zinx__layer_t l;
    SSL *ssl; /* NULL once closed */
    /* Ciphertext the lower stream did not take yet (bio.c). */
    uint8_t *backlog;
    size_t blen, bcap;
    int err;               /* the lower stream's error, once it failed */
    uint32_t owner_want;   /* what the owner asked for with want */
    uint32_t hs_want;      /* what the handshake waits for */
    uint32_t lower_want;   /* what the lower stream was last asked */
    bool lower_eof;        /* the lower stream reported its end */
    bool shut_pending;     /* close_notify queued: shut lower once flushed */
    bool lower_shut;       /* the lower stream was shut down */
    char *why_text;        /* base.why's text, owned */
    zinx__tls_info_t info; /* filled when the handshake ends */
} zinx__tls_layer_t;

/* ---- bio.c ---------------------------------------------------------------
 */

/* The BIO method of the layers (one per context). NULL when out of
   memory. */
BIO_METHOD *zinx__tls_bio_method(void);
/* Writes the backlog to the lower stream: 0 (perhaps with bytes left)
   or the lower stream's error. */
int zinx__tls_flush(zinx__tls_layer_t *t);

/* ---- layer.c -------------------------------------------------------------
 */

extern const zinx__stream_ops_t zinx__tls_ops;

/* A zinx__layer_make_fn: the TLS layer over lower; conf is a
   zinx__tls_conf_t. */
int zinx__tls_layer_make(const void *conf, zinx__stream_t *lower,
                         zinx__stream_t **out);
/* Asks the lower stream for what the owner and the layer need now. */
int zinx__tls_update_want(zinx__tls_layer_t *t);

/* ---- context settings shared by both sides (server.c) ------------------
 */

/* The protocol floor, options and ciphers every context gets. Returns
   false when OpenSSL refuses them. */
bool zinx__tls_ctx_defaults(SSL_CTX *ctx);
/* ALPN's wire form (length-prefixed names) of protos[0..n): 0, or
   ZINX_EINVAL for an empty or longer than 255 bytes name, ZINX_ENOMEM.
   *out is malloc'd. */
int zinx__tls_alpn_wire(const char *const *protos, size_t n, uint8_t **out,
                        size_t *len);
/* OpenSSL's latest error as text in buf ("" when none); clears the
   queue. */
void zinx__tls_error_text(char *buf, size_t len);

/* ---- info.c --------------------------------------------------------------
 */

/* Copies what the handshake agreed into t->info. Returns 0 or
   ZINX_ENOMEM. */
int zinx__tls_info_take(zinx__tls_layer_t *t);
void zinx__tls_info_free(zinx__tls_info_t *info);

#endif /* ZINX_TLS_TLS_H */
