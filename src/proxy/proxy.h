/*
 * PROXY protocol (versions 1 and 2, as HAProxy specifies them): the
 * header a proxy sends before the client's bytes, naming the client.
 *
 * header.c parses a header from bytes (no I/O, fuzzed on its own);
 * layer.c is the stream layer that reads it from an accepted socket,
 * checks that the socket's peer may send it, and then passes every
 * later byte through unchanged.
 */
#ifndef ZINX_PROXY_PROXY_H
#define ZINX_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "proxy/netlist.h"
#include "stream/stream.h"

/* The longest header taken: a v1 line is at most 107 bytes; a v2 header
   is 16 bytes, the addresses (at most 216) and TLVs, which HAProxy adds
   only when told to. A longer one is refused. */
#define ZINX__PROXY_MAX 1024

typedef struct zinx__proxy_hdr {
    int version; /* 1 or 2 */
    /* No addresses to take: v1 "UNKNOWN", v2 LOCAL (a proxy's own health
       check) or an unspecified family. The socket's addresses stay. */
    bool local;
    struct sockaddr_storage src, dst; /* the client's, and the one it reached */
    socklen_t src_len, dst_len;
} zinx__proxy_hdr_t;

/*
 * Parses a header at the start of buf[0..len), accepting the versions
 * mode (a zinx_proxy_protocol_t other than off) allows. Returns its
 * length when complete, 0 when it may still be one but more bytes are
 * needed, or ZINX_EPROTO with *why (static text) saying what is wrong:
 * no header, a version not allowed, a malformed or oversize one. Reads
 * nothing beyond len. Thread: any.
 */
ssize_t zinx__proxy_parse(const uint8_t *buf, size_t len, int mode,
                          zinx__proxy_hdr_t *out, const char **why);

/* What the layer needs: which versions, and who may send them. */
typedef struct zinx__proxy_conf {
    int mode; /* a zinx_proxy_protocol_t, not off */
    zinx__netlist_t from;
} zinx__proxy_conf_t;

struct zinx_server;
/* Before start: the settings from ProxyProtocol and ProxyProtocolFrom.
   Returns 0, ZINX_ENOMEM or ZINX_ECONFIG (logged). */
int zinx__proxy_conf_new(struct zinx_server *server, zinx__proxy_conf_t **out);
void zinx__proxy_conf_free(zinx__proxy_conf_t *conf);

/* A zinx__layer_make_fn: the PROXY layer over lower; conf is a
   zinx__proxy_conf_t. */
int zinx__proxy_layer_make(const void *conf, zinx__stream_t *lower,
                           zinx__stream_t **out);

/* The operations of the PROXY layer, to find it in a stack. */
extern const zinx__stream_ops_t zinx__proxy_ops;

#endif /* ZINX_PROXY_PROXY_H */
