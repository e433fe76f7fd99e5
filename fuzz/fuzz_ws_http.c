/*
 * Fuzz target: the WebSocket upgrade's HTTP parser (src/ws/http.c), the
 * request as a server reads it and the response as a client does.
 *
 * Input layout:
 *   byte 0      bit 0: a response (else a request)
 *   the rest    the bytes read from the peer
 *
 * The head is found as the layer finds it, then parsed from an exact
 * copy (a read past its end is an AddressSanitizer report). Checked: an
 * accepted request is a GET of the path with a 24-character key and a
 * refusal's status is one the layer can answer (or a static page's: a
 * GET or HEAD of its path without an upgrade); header lookups find only
 * what the head holds.
 */
#include <string.h>

#include "fuzz.h"
#include "ws/ws.h"

/* The Sec-WebSocket-Accept of RFC 6455's example key. */
static const char accept_text[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static void request(char *head, size_t len)
{
    zinx__ws_http_t req;
    const char *key = NULL, *why = NULL;
    int st = zinx__ws_parse_request(head, len, "/ws", &req, &key, &why);
    if (st == 0) {
        FUZZ_CHECK(strcmp(req.path, "/ws") == 0, "path %s", req.path);
        FUZZ_CHECK(key != NULL && strlen(key) == 24, "key");
        FUZZ_CHECK(zinx__ws_http_header(&req, "Host") != NULL, "no Host");
        char accept[ZINX__WS_ACCEPT_LEN + 1];
        FUZZ_CHECK(zinx__ws_accept_of(key, accept) == 0, "accept");
        FUZZ_CHECK(strlen(accept) == ZINX__WS_ACCEPT_LEN, "accept length");
        return;
    }
    FUZZ_CHECK(why != NULL, "no reason for %d", st);
    FUZZ_CHECK(st == 400 || st == 404 || st == 405 || st == 426 || st == 431,
               "status %d", st);
    /* A refused request may be a static page's: only a GET or HEAD of
       its path without an Upgrade header. */
    static uint8_t response[] = "HEADbody";
    static zinx__ws_page_t page = {.path = (char *)"/",
                                   .response = response,
                                   .head_len = 4,
                                   .body_len = 4};
    size_t plen = 0;
    const zinx__ws_page_t *p =
        zinx__ws_page_match(&page, "/ws", &req, st, &plen);
    if (p == NULL)
        return;
    FUZZ_CHECK(strcmp(req.path, "/") == 0, "page path %s", req.path);
    FUZZ_CHECK(zinx__ws_http_header(&req, "Upgrade") == NULL, "an upgrade");
    bool head_only = strcmp(req.method, "HEAD") == 0;
    FUZZ_CHECK(head_only || strcmp(req.method, "GET") == 0, "method %s",
               req.method);
    FUZZ_CHECK(plen == (head_only ? 4u : 8u), "length %zu", plen);
}

static void response(char *head, size_t len)
{
    zinx__ws_http_t resp;
    const char *why = NULL;
    int rc = zinx__ws_parse_response(head, len, accept_text, &resp, &why);
    if (rc == 0) {
        const char *got = zinx__ws_http_header(&resp, "sec-websocket-accept");
        FUZZ_CHECK(got != NULL && strcmp(got, accept_text) == 0, "accept");
        return;
    }
    FUZZ_CHECK(rc == ZINX_EPROTO && why != NULL, "rc %d", rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int is_response = data[0] & 1;
    data++;
    size--;
    if (size > ZINX__WS_HTTP_MAX)
        size = ZINX__WS_HTTP_MAX;
    size_t end = zinx__ws_http_end(data, size);
    if (end == 0)
        return 0;
    FUZZ_CHECK(end >= 4 && end <= size &&
                   memcmp(data + end - 4, "\r\n\r\n", 4) == 0,
               "end %zu", end);
    char *head = malloc(end);
    memcpy(head, data, end);
    if (is_response)
        response(head, end);
    else
        request(head, end);
    free(head);
    return 0;
}
