/*
 * What a dialer keeps to put TLS on its connections (client.c). Never
 * installed.
 */
#ifndef ZINX_TLS_CLIENT_H
#define ZINX_TLS_CLIENT_H

#include "stream/stream.h"
#include "tls/tls.h"

struct zinx_tls_client;

/* Embedded in a dialer, alive as long as its connections are. */
typedef struct zinx__tls_dial {
    struct zinx_tls_client *tls; /* a reference */
    zinx__tls_conf_t conf;
    zinx__stack_spec_t stack; /* the TLS layer with conf */
    char host[256];           /* SNI and the name to verify */
} zinx__tls_dial_t;

/* Sets td up for dials to host with tls's settings (from now on
   read-only) and takes a reference to them. Returns 0 or ZINX_EINVAL
   (a name longer than 255 bytes). Thread: any. */
int zinx__tls_dial_init(zinx__tls_dial_t *td, struct zinx_tls_client *tls,
                        const char *host);
/* Drops the reference. */
void zinx__tls_dial_free(zinx__tls_dial_t *td);

#endif /* ZINX_TLS_CLIENT_H */
