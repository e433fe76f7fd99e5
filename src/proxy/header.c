/*
 * Parsing PROXY protocol headers, v1 (a text line) and v2 (binary).
 * Pure functions over bytes: the fuzz target calls them directly.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "internal.h"
#include "proxy/proxy.h"

#define V1_MAX 107 /* "PROXY TCP6 " + two addresses, ports, CRLF */
#define V2_HEAD 16
#define V1_FIELDS 5 /* the six of the line less "PROXY" */

static const uint8_t v1_sig[6] = {'P', 'R', 'O', 'X', 'Y', ' '};
static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Whether buf (len bytes, perhaps fewer than sig) may start with sig. */
static bool starts(const uint8_t *buf, size_t len, const uint8_t *sig, size_t n)
{
    return memcmp(buf, sig, len < n ? len : n) == 0;
}

static ssize_t bad(const char **why, const char *text)
{
    *why = text;
    return ZINX_EPROTO;
}

/* ---- v1 ------------------------------------------------------------------ */

/* A decimal port, 0..65535, without sign or leading zeros beyond "0". */
static bool parse_port(const char *s, uint16_t *port)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

static bool v1_addr(int family, const char *ip, const char *port,
                    struct sockaddr_storage *ss, socklen_t *len)
{
    uint16_t p;
    if (!parse_port(port, &p))
        return false;
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(p);
        *len = sizeof(*a);
        return inet_pton(AF_INET, ip, &a->sin_addr) == 1;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(p);
    *len = sizeof(*a);
    return inet_pton(AF_INET6, ip, &a->sin6_addr) == 1;
}

/* The fields of a complete line (NUL-terminated, without CRLF). */
static ssize_t v1_fields(char *line, zinx__proxy_hdr_t *out, const char **why)
{
    if (strcmp(line, "UNKNOWN") == 0 || strncmp(line, "UNKNOWN ", 8) == 0) {
        out->local = true; /* the rest of the line is to be ignored */
        return 0;
    }
    /* After "PROXY ": protocol, two addresses, two ports, each apart
       from the next by exactly one space (strtok would forgive runs). */
    char *f[V1_FIELDS];
    int n = 0;
    for (char *p = line; p != NULL; n++) {
        if (n == V1_FIELDS)
            return bad(why, "PROXY v1 line has more than six fields");
        f[n] = p;
        char *sp = strchr(p, ' ');
        if (sp != NULL)
            *sp = '\0';
        p = sp != NULL ? sp + 1 : NULL;
    }
    if (n != V1_FIELDS)
        return bad(why, "PROXY v1 line has fewer than six fields");
    int family;
    if (strcmp(f[0], "TCP4") == 0)
        family = AF_INET;
    else if (strcmp(f[0], "TCP6") == 0)
        family = AF_INET6;
    else
        return bad(why, "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN");
    if (!v1_addr(family, f[1], f[3], &out->src, &out->src_len) ||
        !v1_addr(family, f[2], f[4], &out->dst, &out->dst_len))
        return bad(why, "PROXY v1 address or port is malformed");
    return 0;
}

static ssize_t parse_v1(const uint8_t *buf, size_t len, zinx__proxy_hdr_t *out,
                        const char **why)
{
    size_t scan = len < V1_MAX ? len : V1_MAX;
    const uint8_t *cr = memchr(buf, '\r', scan);
    size_t at = cr != NULL ? (size_t)(cr - buf) : scan;
    /* A LF before the first CR ends no line: refused however many bytes
       are here, so that a longer read never turns the answer around. */
    if (memchr(buf, '\n', at) != NULL)
        return bad(why, "PROXY v1 line not ended by CRLF");
    if (cr == NULL)
        return len >= V1_MAX ? bad(why, "PROXY v1 line longer than 107 bytes")
                             : 0;
    if (at + 2 > V1_MAX) /* CRLF must end by byte 107, whatever follows */
        return bad(why, "PROXY v1 line longer than 107 bytes");
    if (at + 1 >= len)
        return 0;
    if (buf[at + 1] != '\n')
        return bad(why, "PROXY v1 line not ended by CRLF");
    char line[V1_MAX + 1];
    size_t body = at - sizeof(v1_sig);
    memcpy(line, buf + sizeof(v1_sig), body);
    line[body] = '\0';
    if (strlen(line) != body)
        return bad(why, "PROXY v1 line holds a NUL byte");
    out->version = 1;
    ssize_t rc = v1_fields(line, out, why);
    return rc != 0 ? rc : (ssize_t)(at + 2);
}

/* ---- v2 ------------------------------------------------------------------ */

static void v2_inet(const uint8_t *a, zinx__proxy_hdr_t *out)
{
    struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
    struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
    memset(&out->src, 0, sizeof(out->src));
    memset(&out->dst, 0, sizeof(out->dst));
    s->sin_family = d->sin_family = AF_INET;
    memcpy(&s->sin_addr, a, 4);
    memcpy(&d->sin_addr, a + 4, 4);
    memcpy(&s->sin_port, a + 8, 2);
    memcpy(&d->sin_port, a + 10, 2);
    out->src_len = out->dst_len = sizeof(*s);
}

static void v2_inet6(const uint8_t *a, zinx__proxy_hdr_t *out)
{
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
    struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
    memset(&out->src, 0, sizeof(out->src));
    memset(&out->dst, 0, sizeof(out->dst));
    s->sin6_family = d->sin6_family = AF_INET6;
    memcpy(&s->sin6_addr, a, 16);
    memcpy(&d->sin6_addr, a + 16, 16);
    memcpy(&s->sin6_port, a + 32, 2);
    memcpy(&d->sin6_port, a + 34, 2);
    out->src_len = out->dst_len = sizeof(*s);
}

/* The TLVs after the addresses: each must fit; their values are not
   used. */
static bool v2_tlvs_ok(const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (n < 3)
            return false;
        size_t vlen = ((size_t)p[1] << 8) | p[2];
        if (3 + vlen > n)
            return false;
        p += 3 + vlen;
        n -= 3 + vlen;
    }
    return true;
}

static ssize_t parse_v2(const uint8_t *buf, size_t len, zinx__proxy_hdr_t *out,
                        const char **why)
{
    if (len < V2_HEAD)
        return 0;
    if ((buf[12] >> 4) != 2)
        return bad(why, "PROXY v2 version is not 2");
    int cmd = buf[12] & 0x0f;
    if (cmd > 1)
        return bad(why, "PROXY v2 command is neither LOCAL nor PROXY");
    size_t body = ((size_t)buf[14] << 8) | buf[15];
    if (V2_HEAD + body > ZINX__PROXY_MAX)
        return bad(why, "PROXY v2 header longer than 1024 bytes");
    if (len < V2_HEAD + body)
        return 0;
    out->version = 2;
    int family = buf[13] >> 4, proto = buf[13] & 0x0f;
    const uint8_t *a = buf + V2_HEAD;
    size_t need = family == 1 ? 12 : family == 2 ? 36 : family == 3 ? 216 : 0;
    if (family > 3 || proto > 2)
        return bad(why, "PROXY v2 family or protocol is unknown");
    if (body < need)
        return bad(why, "PROXY v2 addresses are cut short");
    if (!v2_tlvs_ok(a + need, body - need))
        return bad(why, "PROXY v2 TLV runs past the header");
    /* LOCAL: the proxy speaks for itself (a health check). Unix or
       unspecified addresses name no IP client either. */
    if (cmd == 0 || family == 0 || family == 3) {
        out->local = true;
    } else if (proto != 1) {
        return bad(why, "PROXY v2 names a datagram connection");
    } else if (family == 1) {
        v2_inet(a, out);
    } else {
        v2_inet6(a, out);
    }
    return (ssize_t)(V2_HEAD + body);
}

ssize_t zinx__proxy_parse(const uint8_t *buf, size_t len, int mode,
                          zinx__proxy_hdr_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (len == 0)
        return 0;
    bool v1 = mode == ZINX_PROXY_V1 || mode == ZINX_PROXY_EITHER;
    bool v2 = mode == ZINX_PROXY_V2 || mode == ZINX_PROXY_EITHER;
    bool may1 = starts(buf, len, v1_sig, sizeof(v1_sig));
    bool may2 = starts(buf, len, v2_sig, sizeof(v2_sig));
    if (may1 && !v1)
        return bad(why, "PROXY v1 header where only v2 is allowed");
    if (may2 && !v2)
        return bad(why, "PROXY v2 header where only v1 is allowed");
    if (!may1 && !may2)
        return bad(why, "no PROXY header");
    if (may1 && len < sizeof(v1_sig))
        return 0;
    if (may2 && len < sizeof(v2_sig))
        return 0;
    return may1 ? parse_v1(buf, len, out, why) : parse_v2(buf, len, out, why);
}
