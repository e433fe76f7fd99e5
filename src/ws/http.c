/*
 * The HTTP/1.1 upgrade of RFC 6455 section 4: just enough HTTP to take a
 * GET request with an Upgrade and to check a 101 response, and strict:
 * CRLF line ends, token header names, no folded lines, a bounded count
 * of headers. Parsing is in place (names and values become
 * NUL-terminated strings in the caller's buffer) and never reads past
 * the head's length.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "ws/ws.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

size_t zinx__ws_http_end(const uint8_t *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
            buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* RFC 9110's tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Visible text, blanks and obs-text: what a value may hold. */
static bool is_vchar(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* The next CRLF-ended line of buf[*pos..end): NUL-terminated in place
   (the CR becomes NUL). Returns its start, or NULL when it has no CRLF
   or holds a bare CR or LF. */
static char *next_line(char *buf, size_t *pos, size_t end)
{
    char *start = buf + *pos;
    for (size_t i = *pos; i + 1 < end; i++) {
        if (buf[i] == '\r') {
            if (buf[i + 1] != '\n')
                return NULL;
            buf[i] = '\0';
            *pos = i + 2;
            return start;
        }
        if (buf[i] == '\n' || buf[i] == '\0')
            return NULL;
    }
    return NULL;
}

/* A header line "name: value" into h (value without outer blanks). */
static bool parse_header(char *line, zinx__ws_header_t *h)
{
    char *colon = line;
    while (is_tchar((unsigned char)*colon))
        colon++;
    if (colon == line || *colon != ':')
        return false; /* an empty name, a blank before ':' or a fold */
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    char *e = v + strlen(v);
    for (char *p = v; p < e; p++)
        if (!is_vchar((unsigned char)*p))
            return false;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *e = '\0';
    h->name = line;
    h->value = v;
    return true;
}

/* The header lines after the first line, through the blank one. Returns
   0, 400 or 431. */
static int parse_headers(char *buf, size_t pos, size_t len,
                         zinx__ws_http_t *out)
{
    out->nheaders = 0;
    for (;;) {
        char *line = next_line(buf, &pos, len);
        if (line == NULL)
            return 400;
        if (*line == '\0')
            return pos == len ? 0 : 400;
        if (out->nheaders == ZINX__WS_HTTP_HEADERS)
            return 431;
        if (!parse_header(line, &out->headers[out->nheaders]))
            return 400;
        out->nheaders++;
    }
}

const char *zinx__ws_http_header(const zinx__ws_http_t *h, const char *name)
{
    for (int i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            return h->headers[i].value;
    return NULL;
}

/* How many times a header appears. */
static int header_count(const zinx__ws_http_t *h, const char *name)
{
    int n = 0;
    for (int i = 0; i < h->nheaders; i++)
        n += strcasecmp(h->headers[i].name, name) == 0;
    return n;
}

/* Whether the comma-separated token list value holds token (either
   case), as Connection: keep-alive, Upgrade. */
static bool has_token(const char *value, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = value;
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end != '\0' && *end != ',')
            end++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - p) == tlen && strncasecmp(p, token, tlen) == 0)
            return true;
        p = end;
    }
    return false;
}

/* Whether every header found in the list of this header name holds the
   token: Connection may come in several lines. */
static bool any_has_token(const zinx__ws_http_t *h, const char *name,
                          const char *token)
{
    for (int i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->headers[i].name, name) == 0 &&
            has_token(h->headers[i].value, token))
            return true;
    return false;
}

/* A key is the base64 text of 16 bytes: 22 characters and "==". */
static bool key_ok(const char *key)
{
    if (strlen(key) != 24 || strcmp(key + 22, "==") != 0)
        return false;
    for (int i = 0; i < 22; i++) {
        unsigned char c = (unsigned char)key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return false;
    }
    return true;
}

static int refuse(const char **why, const char *text, int status)
{
    *why = text;
    return status;
}

/* "GET /path?query HTTP/1.1": the method, target and version. The
   method is checked once the headers are parsed, so that a refusal of
   another method still has the whole request (a page's HEAD). */
static int parse_request_line(char *line, zinx__ws_http_t *out,
                              const char **why)
{
    char *sp1 = strchr(line, ' ');
    if (sp1 == NULL)
        return refuse(why, "malformed request line", 400);
    *sp1 = '\0';
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (sp2 == NULL || sp2 == target || *target != '/')
        return refuse(why, "malformed request target", 400);
    *sp2 = '\0';
    const char *version = sp2 + 1;
    if (strncmp(version, "HTTP/1.", 7) != 0 || version[7] < '1' ||
        version[7] > '9' || version[8] != '\0')
        return refuse(why, "not HTTP/1.1", 400);
    for (const char *p = target; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return refuse(why, "malformed request target", 400);
    out->method = line;
    char *q = strchr(target, '?');
    out->query = "";
    if (q != NULL) {
        *q = '\0';
        out->query = q + 1;
    }
    out->path = target;
    return 0;
}

int zinx__ws_parse_request(char *buf, size_t len, const char *path,
                           zinx__ws_http_t *out, const char **key,
                           const char **why)
{
    memset(out, 0, sizeof(*out));
    size_t pos = 0;
    char *line = next_line(buf, &pos, len);
    if (line == NULL)
        return refuse(why, "malformed request line", 400);
    int rc = parse_request_line(line, out, why);
    if (rc != 0)
        return rc;
    rc = parse_headers(buf, pos, len, out);
    if (rc != 0)
        return refuse(
            why, rc == 431 ? "too many header lines" : "malformed header", rc);
    if (strcmp(out->method, "GET") != 0)
        return refuse(why, "the method is not GET", 405);
    if (strcmp(out->path, path) != 0)
        return refuse(why, "not WsPath", 404);
    if (header_count(out, "Host") != 1)
        return refuse(why, "no Host header", 400);
    const char *upgrade = zinx__ws_http_header(out, "Upgrade");
    if (upgrade == NULL || !has_token(upgrade, "websocket") ||
        !any_has_token(out, "Connection", "upgrade"))
        return refuse(why, "not a WebSocket upgrade", 426);
    const char *version = zinx__ws_http_header(out, "Sec-WebSocket-Version");
    if (version == NULL || strcmp(version, "13") != 0 ||
        header_count(out, "Sec-WebSocket-Version") != 1)
        return refuse(why, "Sec-WebSocket-Version is not 13", 426);
    *key = zinx__ws_http_header(out, "Sec-WebSocket-Key");
    if (*key == NULL || header_count(out, "Sec-WebSocket-Key") != 1 ||
        !key_ok(*key))
        return refuse(why, "bad Sec-WebSocket-Key", 400);
    return 0;
}

int zinx__ws_parse_response(char *buf, size_t len, const char *accept,
                            zinx__ws_http_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    size_t pos = 0;
    char *line = next_line(buf, &pos, len);
    if (line == NULL || strncmp(line, "HTTP/1.1 ", 9) != 0 || strlen(line) < 12)
        return refuse(why, "malformed status line", ZINX_EPROTO);
    if (strncmp(line + 9, "101", 3) != 0 ||
        (line[12] != '\0' && line[12] != ' '))
        return refuse(why, "the server refused the upgrade", ZINX_EPROTO);
    out->status = 101;
    if (parse_headers(buf, pos, len, out) != 0)
        return refuse(why, "malformed response header", ZINX_EPROTO);
    const char *upgrade = zinx__ws_http_header(out, "Upgrade");
    if (upgrade == NULL || !has_token(upgrade, "websocket") ||
        !any_has_token(out, "Connection", "upgrade"))
        return refuse(why, "the response is not a WebSocket upgrade",
                      ZINX_EPROTO);
    const char *got = zinx__ws_http_header(out, "Sec-WebSocket-Accept");
    if (got == NULL || strcmp(got, accept) != 0)
        return refuse(why, "wrong Sec-WebSocket-Accept", ZINX_EPROTO);
    if (zinx__ws_http_header(out, "Sec-WebSocket-Extensions") != NULL ||
        zinx__ws_http_header(out, "Sec-WebSocket-Protocol") != NULL)
        return refuse(why, "the server chose an extension or subprotocol",
                      ZINX_EPROTO);
    return 0;
}

int zinx__ws_accept_of(const char *key, char *out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return ZINX_ENOMEM;
    int ok = EVP_DigestInit_ex(md, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(md, key, strlen(key)) == 1 &&
             EVP_DigestUpdate(md, ws_guid, sizeof(ws_guid) - 1) == 1 &&
             EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == 20;
    EVP_MD_CTX_free(md);
    if (!ok)
        return ZINX_ENOMEM;
    EVP_EncodeBlock((unsigned char *)out, digest, 20); /* 28 and a NUL */
    return 0;
}

int zinx__ws_random(void *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -EIO;
}

int zinx__ws_new_key(char *out)
{
    uint8_t nonce[16];
    if (zinx__ws_random(nonce, sizeof(nonce)) != 0)
        return -EIO;
    EVP_EncodeBlock((unsigned char *)out, nonce, sizeof(nonce));
    return 0;
}
