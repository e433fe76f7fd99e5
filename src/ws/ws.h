/*
 * WebSocket (RFC 6455) under the codec: a stream layer whose byte
 * stream is the concatenation of the binary messages' payloads, as
 * Zinx's WebSocket mode carries the server's codec frames (one message
 * may hold several frames, a frame may span messages).
 *
 * http.c   the upgrade request and response (parsed from bytes, no I/O,
 *          fuzzed on its own) and Sec-WebSocket-Accept
 * frame.c  the frame decoder (in place, no I/O, fuzzed) and the header
 *          encoder
 * layer.c  the stream layer, server and client roles
 * api.c    the settings, the public calls of include/zinx/websocket.h
 * page.c   static pages served on the port beside the upgrade
 */
#ifndef ZINX_WS_WS_H
#define ZINX_WS_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stream/stream.h"
#include "zinx/websocket.h"

/* ---- the upgrade (http.c) ----------------------------------------------- */

/* The longest upgrade request or response taken; a longer one is
   refused with 431 (a server) or fails (a client). */
#define ZINX__WS_HTTP_MAX 8192
/* Header lines kept of a request; more are refused with 431. */
#define ZINX__WS_HTTP_HEADERS 48
/* Sec-WebSocket-Accept's text: base64 of 20 bytes, and a NUL. */
#define ZINX__WS_ACCEPT_LEN 28

typedef struct zinx__ws_header {
    const char *name; /* NUL-terminated in the parsed buffer */
    const char *value;
} zinx__ws_header_t;

/* A parsed request or response: slices of the buffer it was parsed in
   (which the parser NUL-terminates in place). */
struct zinx_ws_request {
    const char *method; /* "GET", "HEAD"... (a request) */
    const char *path;   /* request target without the query (a request) */
    const char *query;  /* after '?', or "" */
    int status;         /* the status code (a response) */
    int nheaders;
    zinx__ws_header_t headers[ZINX__WS_HTTP_HEADERS];
};
typedef struct zinx_ws_request zinx__ws_http_t;

/* The length of the head (through its blank line) at the start of
   buf[0..len), or 0 when it has not ended yet. */
size_t zinx__ws_http_end(const uint8_t *buf, size_t len);

/*
 * Parses the request head buf[0..len) (len from zinx__ws_http_end) in
 * place and checks it is a WebSocket upgrade for path (RFC 6455 4.2.1).
 * Returns 0 with *key pointing at Sec-WebSocket-Key, or the HTTP status
 * to refuse with (400, 404, 405, 426, 431) and *why (static text).
 */
int zinx__ws_parse_request(char *buf, size_t len, const char *path,
                           zinx__ws_http_t *out, const char **key,
                           const char **why);

/* Parses a response head in place and checks it accepts the upgrade
   whose Sec-WebSocket-Accept is accept. Returns 0 or ZINX_EPROTO with
   *why. */
int zinx__ws_parse_response(char *buf, size_t len, const char *accept,
                            zinx__ws_http_t *out, const char **why);

/* A header's value by name (case-insensitive), or NULL. */
const char *zinx__ws_http_header(const zinx__ws_http_t *h, const char *name);

/* Sec-WebSocket-Accept of key (its text as sent): out holds
   ZINX__WS_ACCEPT_LEN + 1 bytes. Returns 0 or ZINX_ENOMEM. */
int zinx__ws_accept_of(const char *key, char *out);

/* Sec-WebSocket-Key's text: base64 of 16 bytes. */
#define ZINX__WS_KEY_LEN 24

/* A fresh random key (a client's) into out (ZINX__WS_KEY_LEN + 1 bytes,
   NUL-terminated). Returns 0 or -EIO. */
int zinx__ws_new_key(char *out);

/* Fills buf with n random bytes (masks, client keys): 0 or -EIO. */
int zinx__ws_random(void *buf, size_t n);

/* ---- frames (frame.c) ---------------------------------------------------- */

/* Close status codes we send. */
enum {
    ZINX__WS_NORMAL = 1000,
    ZINX__WS_GOING_AWAY = 1001,
    ZINX__WS_PROTOCOL = 1002,
    ZINX__WS_UNSUPPORTED = 1003,
    ZINX__WS_POLICY = 1008,
    ZINX__WS_TOO_BIG = 1009
};

enum {
    ZINX__WS_OP_CONT = 0x0,
    ZINX__WS_OP_TEXT = 0x1,
    ZINX__WS_OP_BINARY = 0x2,
    ZINX__WS_OP_CLOSE = 0x8,
    ZINX__WS_OP_PING = 0x9,
    ZINX__WS_OP_PONG = 0xA
};

/* The longest frame header: 2 bytes, a 64-bit length, a mask. */
#define ZINX__WS_HDR_MAX 14
#define ZINX__WS_CTL_MAX 125

/* The decoder's state between reads: a header being gathered, the
   payload left of the current frame, the message so far. */
typedef struct zinx__ws_rx {
    bool server;      /* frames must be masked (we are the server) */
    uint32_t max_msg; /* largest message payload */
    uint8_t hdr[ZINX__WS_HDR_MAX];
    uint8_t hlen;   /* header bytes gathered */
    uint8_t opcode; /* the current frame's */
    bool fin;
    bool masked;
    bool in_frame; /* a header was read; `remain` payload bytes follow */
    bool in_msg;   /* a fragmented binary message goes on */
    uint8_t mask[4];
    uint8_t mpos; /* mask index of the next payload byte */
    uint64_t remain;
    uint64_t msg_len; /* payload of the message so far */
    uint8_t ctl[ZINX__WS_CTL_MAX];
    uint8_t ctl_len;
} zinx__ws_rx_t;

/* What zinx__ws_decode stopped at. */
typedef enum zinx__ws_ev {
    ZINX__WS_MORE = 0, /* every input byte was taken */
    ZINX__WS_PING,     /* a ping is complete: its payload in rx->ctl */
    ZINX__WS_PONG,
    ZINX__WS_CLOSE, /* a close is complete (its payload checked) */
    ZINX__WS_FAIL   /* the peer broke the protocol: see *code, *why */
} zinx__ws_ev_t;

/*
 * Decodes buf[*in..len) in place: the binary payload bytes are unmasked
 * and moved to buf[*out..], headers and control frames dropped (*out
 * never passes *in). Stops after a complete control frame so that the
 * caller answers it before going on. On ZINX__WS_FAIL, *code is the
 * close status to send (1002, 1003, 1009) and *why says what was wrong.
 */
zinx__ws_ev_t zinx__ws_decode(zinx__ws_rx_t *rx, uint8_t *buf, size_t *in,
                              size_t len, size_t *out, int *code,
                              const char **why);

/* The close status of a close frame's payload (1005 when it has none). */
int zinx__ws_close_status(const zinx__ws_rx_t *rx);

/* Writes a frame header (FIN set) for a payload of len bytes into hdr
   (ZINX__WS_HDR_MAX bytes), masked with mask when mask is not NULL.
   Returns its length. */
size_t zinx__ws_put_header(uint8_t *hdr, uint8_t opcode, uint64_t len,
                           const uint8_t *mask);

/* XORs n bytes from src into dst with mask, starting at mask index
   pos; returns the next index. dst may be src. */
uint8_t zinx__ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
                           const uint8_t mask[4], uint8_t pos);

/* ---- static pages (page.c) ---------------------------------------------- */

/* A page: its response, head and body in one block made once, shared
   read-only by every connection that gets it. */
typedef struct zinx__ws_page {
    struct zinx__ws_page *next;
    char *path;
    uint8_t *response; /* the 200 head, then the body */
    size_t head_len;
    size_t body_len;
} zinx__ws_page_t;

/* The page a refused request asks for, or NULL: a GET or HEAD without
   an Upgrade header of one of pages' paths (never upgrade_path). *len
   is what to write of its response (the head alone for HEAD). req is
   what zinx__ws_parse_request made of it, with status st. */
const zinx__ws_page_t *zinx__ws_page_match(const zinx__ws_page_t *pages,
                                           const char *upgrade_path,
                                           const zinx__ws_http_t *req, int st,
                                           size_t *len);

/* Frees a server's list of pages. */
void zinx__ws_pages_free(zinx__ws_page_t *pages);

/* ---- the layer (layer.c) ------------------------------------------------- */

/* The settings of a server's WebSocket layers, made at start and shared
   read-only by its connections. */
typedef struct zinx__ws_conf {
    bool server;
    char path[ZINX_CONFIG_PATH_MAX];
    uint32_t max_msg;
    zinx_ws_check_fn check; /* the server's: may refuse an upgrade */
    void *check_udata;
    /* The server's pages (its list, read-only while it runs), or NULL. */
    const zinx__ws_page_t *pages;
    /* A client's: the Host header's text. */
    char host[300];
} zinx__ws_conf_t;

/* A zinx__layer_make_fn: the WebSocket layer over lower; conf is a
   zinx__ws_conf_t that outlives the connection. */
int zinx__ws_layer_make(const void *conf, zinx__stream_t *lower,
                        zinx__stream_t **out);

/* The operations of the layer, to find it in a stack. */
extern const zinx__stream_ops_t zinx__ws_ops;

/* The upgrade's path of the layer s (found by zinx__stream_find). */
const char *zinx__ws_layer_path(zinx__stream_t *s);

struct zinx_server;
/* Before start: the server's settings from WsPath, WsMaxMessageSize
   and its check. Returns 0 or ZINX_ENOMEM. */
int zinx__ws_conf_new(struct zinx_server *server, zinx__ws_conf_t **out);
void zinx__ws_conf_free(zinx__ws_conf_t *conf);

/* A client's settings for ws://host:port/path (copied); max_msg 0 means
   1 MiB. Returns 0, ZINX_EINVAL (a path not starting with '/', too
   long) or ZINX_ENOMEM. */
int zinx__ws_client_conf_new(const char *host, int port, const char *path,
                             uint32_t max_msg, zinx__ws_conf_t **out);

#endif /* ZINX_WS_WS_H */
