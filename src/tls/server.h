/*
 * The server side's TLS settings (server.c), made at start by
 * transports.c. Never installed.
 */
#ifndef ZINX_TLS_SERVER_H
#define ZINX_TLS_SERVER_H

struct zinx_server;
struct zinx__tls_server;

/* Before start: the context from CertFile, PrivateKeyFile,
   TlsClientCAFile and the server's ALPN list. Returns 0, ZINX_ENOMEM or
   ZINX_ECONFIG with a log line naming the file and OpenSSL's reason. */
int zinx__tls_server_new(struct zinx_server *server,
                         struct zinx__tls_server **out);
/* The conf to give zinx__tls_layer_make for its connections. */
const void *zinx__tls_server_conf(const struct zinx__tls_server *tls);
/* After the last connection is gone. NULL is a no-op. */
void zinx__tls_server_free(struct zinx__tls_server *tls);

#endif /* ZINX_TLS_SERVER_H */
