/*
 * TLS (OpenSSL 3) for servers and clients.
 *
 * Server: CertFile and PrivateKeyFile (both set) put TLS under every
 * listener; TlsClientCAFile then requires each client to present a
 * certificate signed by one of its CAs. The files are loaded once, by
 * zinx_server_start(), which fails with ZINX_ECONFIG (and a log line
 * naming the file and OpenSSL's reason) when one does not load. TLS 1.2
 * is the minimum, 1.3 is preferred; renegotiation is refused.
 *
 * Client: a zinx_tls_client_t holds the client settings (which CAs to
 * trust, a client certificate, ALPN). Set it in zinx_dial_opts_t.tls or
 * zinx_sync_opts_t.tls and the connection runs TLS, sending the dialled
 * host as SNI and checking the server's certificate against it (a name
 * or an IP address) and the system's CA store. Only an explicit
 * zinx_tls_client_set_insecure() turns the check off. New settings come
 * as new setter functions, so the type can grow without breaking
 * programs built against an older header.
 *
 * Per connection, once it is open (from OnConnStart on): the agreed
 * version, cipher, ALPN protocol, the name the client asked for (SNI)
 * and the verified peer certificate's subject. They never change after
 * the handshake and live as long as the connection object, so any
 * thread holding the connection (a handler, a reference) may read them.
 */
#ifndef ZINX_TLS_H
#define ZINX_TLS_H

#include <stddef.h>

#include "zinx/conn.h"
#include "zinx/server.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* ---- server -------------------------------------------------------------- */

/*
 * Sets the ALPN protocols the server offers, most preferred first
 * ("h2", "zinx/1"...; each 1..255 bytes); the strings are copied. A
 * client that offers ALPN and shares none of them is refused (the
 * no_application_protocol alert); one that offers none is served.
 * n == 0 removes the list. Returns 0, ZINX_EINVAL, ZINX_ENOMEM, or
 * ZINX_ESTATE once the server was started. Thread: the one that
 * configures the server, before zinx_server_start().
 */
int zinx_server_set_tls_alpn(zinx_server_t *server, const char *const *protos,
                             size_t n);

/* ---- connection ---------------------------------------------------------- */

/*
 * What a TLS connection's handshake agreed, as NUL-terminated text owned
 * by the connection (valid while the caller holds it: in a handler or
 * hook, or with a reference). Each returns NULL when the connection does
 * not run TLS or is not open yet, and:
 *   version      "TLSv1.2", "TLSv1.3"
 *   cipher       OpenSSL's name, "TLS_AES_128_GCM_SHA256"...
 *   alpn         the protocol agreed, NULL when none was
 *   server_name  the host name the client asked for (SNI), NULL when
 *                none; on a client connection, the name it sent
 *   peer_subject the subject of the peer's certificate
 *                ("CN=client,O=Example") when it was verified: a client
 *                certificate under TlsClientCAFile, or the server's on a
 *                verifying client; NULL otherwise
 * Thread: any.
 */
const char *zinx_conn_tls_version(const zinx_conn_t *conn);
const char *zinx_conn_tls_cipher(const zinx_conn_t *conn);
const char *zinx_conn_tls_alpn(const zinx_conn_t *conn);
const char *zinx_conn_tls_server_name(const zinx_conn_t *conn);
const char *zinx_conn_tls_peer_subject(const zinx_conn_t *conn);

/* ---- client -------------------------------------------------------------- */

typedef struct zinx_tls_client zinx_tls_client_t;

/*
 * Makes client settings: verify the server against the system's CA
 * store (OpenSSL's default paths), TLS 1.2 minimum, no client
 * certificate, no ALPN. NULL when out of memory (or OpenSSL failed).
 * The setters below change it; each returns 0 or a ZINX_E* code and
 * ZINX_ESTATE once a dial used it (from then on it is read-only and
 * shared by every connection made with it). Thread: any, but one
 * thread at a time until the first dial.
 */
zinx_tls_client_t *zinx_tls_client_new(void);

/* Trusts the CAs of the PEM file path instead of the system's store.
   ZINX_ECONFIG when it does not load (no file, no certificate in it). */
int zinx_tls_client_set_ca_file(zinx_tls_client_t *tls, const char *path);

/* insecure != 0: no certificate or host-name check at all (encryption
   only; anyone in the path can read and change the traffic). For tests
   and closed networks; 0 restores the check. */
int zinx_tls_client_set_insecure(zinx_tls_client_t *tls, int insecure);

/* The name to send as SNI and to check the certificate against, in
   place of the dialled host (a dial to an address of a named server).
   NULL or "" goes back to the dialled host. At most 255 bytes. */
int zinx_tls_client_set_server_name(zinx_tls_client_t *tls, const char *name);

/* A client certificate (PEM chain) and its key, for servers that ask
   (TlsClientCAFile). ZINX_ECONFIG when they do not load or match. */
int zinx_tls_client_set_cert(zinx_tls_client_t *tls, const char *cert_file,
                             const char *key_file);

/* ALPN protocols to offer, most preferred first (copied); n == 0 offers
   none. ZINX_EINVAL for an empty name or one over 255 bytes. */
int zinx_tls_client_set_alpn(zinx_tls_client_t *tls, const char *const *protos,
                             size_t n);

/* Drops the caller's reference; dialers that use the settings keep their
   own until they are closed. NULL is a no-op. Thread: any. */
void zinx_tls_client_free(zinx_tls_client_t *tls);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_TLS_H */
