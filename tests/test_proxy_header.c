/*
 * PROXY protocol headers (HAProxy's proxy-protocol.txt) as the parser
 * takes them, and the ProxyProtocolFrom network lists: pure functions
 * over bytes and text, no server.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "zinx.h"

#include "proxy/netlist.h"
#include "proxy/proxy.h"

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* ---- helpers ------------------------------------------------------------ */

static ssize_t parse_text(const char *text, int mode, zinx__proxy_hdr_t *h,
                          const char **why)
{
    return zinx__proxy_parse((const uint8_t *)text, strlen(text), mode, h, why);
}

/* The text of an address the parser produced ("1.2.3.4:5", "[::1]:5"). */
static void addr_text(const struct sockaddr_storage *ss, socklen_t len,
                      char *out)
{
    zinx__addr_format(ss, len, out);
}

static void assert_src_dst(const zinx__proxy_hdr_t *h, const char *src,
                           const char *dst)
{
    char a[ZINX__ADDR_TEXT_MAX], b[ZINX__ADDR_TEXT_MAX];
    addr_text(&h->src, h->src_len, a);
    addr_text(&h->dst, h->dst_len, b);
    assert_string_equal(a, src);
    assert_string_equal(b, dst);
}

/* A well-formed line must be taken whole; its reason for refusal shown. */
static void assert_refused(const char *text, int mode, const char *why_part)
{
    zinx__proxy_hdr_t h;
    const char *why = NULL;
    ssize_t rc = parse_text(text, mode, &h, &why);
    if (rc != ZINX_EPROTO)
        fail_msg("\"%s\": got %zd, want ZINX_EPROTO", text, rc);
    assert_non_null(why);
    if (why_part != NULL && strstr(why, why_part) == NULL)
        fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", text, why, why_part);
}

/* Every proper prefix asks for more; the whole gives its length. */
static void assert_incremental(const uint8_t *buf, size_t len, int mode)
{
    zinx__proxy_hdr_t h;
    const char *why;
    for (size_t i = 0; i < len; i++) {
        ssize_t rc = zinx__proxy_parse(buf, i, mode, &h, &why);
        if (rc != 0)
            fail_msg("prefix of %zu of %zu bytes: got %zd (%s)", i, len, rc,
                     why != NULL ? why : "");
    }
    assert_int_equal(zinx__proxy_parse(buf, len, mode, &h, &why), (ssize_t)len);
}

/* A v2 header: command (0 LOCAL, 1 PROXY), family/protocol byte, body. */
static size_t v2_make(uint8_t *out, int cmd, uint8_t fam, const uint8_t *body,
                      size_t body_len)
{
    memcpy(out, v2_sig, 12);
    out[12] = (uint8_t)(0x20 | cmd);
    out[13] = fam;
    out[14] = (uint8_t)(body_len >> 8);
    out[15] = (uint8_t)body_len;
    if (body_len > 0)
        memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

/* The 12 address bytes of 192.0.2.1:1000 -> 198.51.100.2:443. */
static size_t v2_inet_body(uint8_t *b)
{
    const uint8_t a[12] = {192, 0, 2,    1,    198,  51,
                           100, 2, 0x03, 0xe8, 0x01, 0xbb};
    memcpy(b, a, sizeof(a));
    return sizeof(a);
}

/* ---- v1 ----------------------------------------------------------------- */

static void test_v1_tcp4(void **state)
{
    (void)state;
    const char *t = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nAB";
    zinx__proxy_hdr_t h;
    const char *why;
    assert_int_equal(parse_text(t, ZINX_PROXY_V1, &h, &why), strlen(t) - 2);
    assert_int_equal(h.version, 1);
    assert_false(h.local);
    assert_src_dst(&h, "192.0.2.1:56324", "198.51.100.2:443");
    /* either takes it too */
    assert_int_equal(parse_text(t, ZINX_PROXY_EITHER, &h, &why), strlen(t) - 2);
}

static void test_v1_tcp6(void **state)
{
    (void)state;
    const char *t = "PROXY TCP6 2001:db8::1 ::ffff:10.1.2.3 1 65535\r\n";
    zinx__proxy_hdr_t h;
    const char *why;
    assert_int_equal(parse_text(t, ZINX_PROXY_V1, &h, &why), strlen(t));
    assert_false(h.local);
    assert_src_dst(&h, "[2001:db8::1]:1", "[::ffff:10.1.2.3]:65535");
    /* the longest line the spec allows: 107 bytes */
    const char *longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 "
                          "65535\r\n";
    assert_int_equal(strlen(longest), 104);
    assert_int_equal(parse_text(longest, ZINX_PROXY_V1, &h, &why), 104);
}

static void test_v1_unknown(void **state)
{
    (void)state;
    zinx__proxy_hdr_t h;
    const char *why;
    const char *t = "PROXY UNKNOWN\r\n";
    assert_int_equal(parse_text(t, ZINX_PROXY_V1, &h, &why), strlen(t));
    assert_true(h.local);
    /* the rest of an UNKNOWN line is ignored, whatever it says */
    t = "PROXY UNKNOWN ffff:f::1 what ever 1 2\r\n";
    assert_int_equal(parse_text(t, ZINX_PROXY_V1, &h, &why), strlen(t));
    assert_true(h.local);
    assert_refused("PROXY UNKNOWNX\r\n", ZINX_PROXY_V1, NULL);
}

static void test_v1_spaces(void **state)
{
    (void)state;
    assert_refused("PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n", ZINX_PROXY_V1,
                   NULL);
    assert_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1  2\r\n", ZINX_PROXY_V1,
                   NULL);
    assert_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n", ZINX_PROXY_V1,
                   "more than six");
    assert_refused("PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", ZINX_PROXY_V1,
                   "fewer than six");
    assert_refused("PROXY TCP4\t192.0.2.1 198.51.100.2 1 2\r\n", ZINX_PROXY_V1,
                   NULL);
    assert_refused("PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n", ZINX_PROXY_V1,
                   NULL);
    assert_refused("PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n", ZINX_PROXY_V1,
                   "not TCP4");
    assert_refused("PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n", ZINX_PROXY_V1,
                   "not TCP4");
}

static void test_v1_addresses_and_ports(void **state)
{
    (void)state;
    zinx__proxy_hdr_t h;
    const char *why;
    const char *ok = "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n";
    assert_int_equal(parse_text(ok, ZINX_PROXY_V1, &h, &why), strlen(ok));
    assert_src_dst(&h, "0.0.0.0:0", "255.255.255.255:65535");
    const char *bad[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 1\r\n",     /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n",     /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 1\r\n",     /* sign */
        "PROXY TCP4 1.2.3.4 5.6.7.8 +1 1\r\n",     /* sign */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1a 1\r\n",     /* not a number */
        "PROXY TCP4 1.2.3.4 5.6.7.8 123456 1\r\n", /* too many digits */
        "PROXY TCP4 1.2.3.04 5.6.7.8 1 1\r\n",     /* zero-led octet */
        "PROXY TCP4 1.2.3 5.6.7.8 1 1\r\n",        /* short address */
        "PROXY TCP4 256.2.3.4 5.6.7.8 1 1\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 1\r\n",   /* v6 address under TCP4 */
        "PROXY TCP6 1.2.3.4 ::1 1 1\r\n",   /* v4 address under TCP6 */
        "PROXY TCP6 ::1 ::1::2 1 1\r\n",    /* two "::" */
        "PROXY TCP4 1.2.3.4 5.6.7.8  1\r\n" /* empty field */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_refused(bad[i], ZINX_PROXY_V1, NULL);
}

static void test_v1_crlf_and_length(void **state)
{
    (void)state;
    zinx__proxy_hdr_t h;
    const char *why;
    assert_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ZINX_PROXY_V1, "CRLF");
    assert_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", ZINX_PROXY_V1, "CRLF");
    assert_refused("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", ZINX_PROXY_V1, NULL);
    /* a LF before the CR: refused at once, and still once the CR comes
       (a longer read must not turn a refusal into a wait) */
    const char *lf = "PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n";
    for (size_t k = 19; k <= strlen(lf); k++)
        assert_int_equal(
            zinx__proxy_parse((const uint8_t *)lf, k, ZINX_PROXY_V1, &h, &why),
            ZINX_EPROTO);
    /* a NUL inside the line */
    const uint8_t nul[] = "PROXY TCP4 1.2.3.4\0005.6.7.8 1 2\r\n";
    assert_int_equal(
        zinx__proxy_parse(nul, sizeof(nul) - 1, ZINX_PROXY_V1, &h, &why),
        ZINX_EPROTO);

    /* 107 bytes without CR: refused; 106 bytes still waits */
    char line[200];
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    assert_int_equal(
        zinx__proxy_parse((uint8_t *)line, 106, ZINX_PROXY_V1, &h, &why), 0);
    assert_int_equal(
        zinx__proxy_parse((uint8_t *)line, 107, ZINX_PROXY_V1, &h, &why),
        ZINX_EPROTO);
    assert_non_null(strstr(why, "107"));
    /* a line of exactly 107 bytes with its CRLF is taken ... */
    line[105] = '\r';
    line[106] = '\n';
    assert_int_equal(
        zinx__proxy_parse((uint8_t *)line, 107, ZINX_PROXY_V1, &h, &why), 107);
    /* ... one of 108 is not, even with all its bytes there */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    line[106] = '\r';
    line[107] = '\n';
    assert_int_equal(
        zinx__proxy_parse((uint8_t *)line, 106, ZINX_PROXY_V1, &h, &why), 0);
    assert_int_equal(
        zinx__proxy_parse((uint8_t *)line, 107, ZINX_PROXY_V1, &h, &why),
        ZINX_EPROTO);
    assert_int_equal(
        zinx__proxy_parse((uint8_t *)line, 108, ZINX_PROXY_V1, &h, &why),
        ZINX_EPROTO);
}

static void test_v1_incremental(void **state)
{
    (void)state;
    const char *lines[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
        "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
        "PROXY UNKNOWN\r\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        assert_incremental((const uint8_t *)lines[i], strlen(lines[i]),
                           ZINX_PROXY_EITHER);
}

/* ---- v2 ----------------------------------------------------------------- */

static void test_v2_inet(void **state)
{
    (void)state;
    uint8_t buf[64], body[12];
    size_t n = v2_make(buf, 1, 0x11, body, v2_inet_body(body));
    buf[n] = 'Z'; /* the client's first byte, not the header's */
    zinx__proxy_hdr_t h;
    const char *why;
    assert_int_equal(zinx__proxy_parse(buf, n + 1, ZINX_PROXY_V2, &h, &why),
                     (ssize_t)n);
    assert_int_equal(h.version, 2);
    assert_false(h.local);
    assert_src_dst(&h, "192.0.2.1:1000", "198.51.100.2:443");
    assert_incremental(buf, n, ZINX_PROXY_V2);
    assert_incremental(buf, n, ZINX_PROXY_EITHER);
}

static void test_v2_inet6(void **state)
{
    (void)state;
    uint8_t body[36] = {0}, buf[64];
    inet_pton(AF_INET6, "2001:db8::7", body);
    inet_pton(AF_INET6, "::1", body + 16);
    body[32] = 0x30, body[33] = 0x39; /* 12345 */
    body[34] = 0x00, body[35] = 0x50; /* 80 */
    size_t n = v2_make(buf, 1, 0x21, body, sizeof(body));
    zinx__proxy_hdr_t h;
    const char *why;
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     (ssize_t)n);
    assert_false(h.local);
    assert_src_dst(&h, "[2001:db8::7]:12345", "[::1]:80");
    assert_incremental(buf, n, ZINX_PROXY_V2);
}

static void test_v2_unix_local_unspec(void **state)
{
    (void)state;
    uint8_t body[216], buf[300];
    memset(body, 0, sizeof(body));
    memcpy(body, "/run/client.sock", 16);
    zinx__proxy_hdr_t h;
    const char *why;
    /* UNIX STREAM: no IP client; the socket's addresses stay */
    size_t n = v2_make(buf, 1, 0x31, body, sizeof(body));
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     (ssize_t)n);
    assert_true(h.local);
    /* LOCAL with inet addresses: the proxy's own connection */
    uint8_t ib[12];
    n = v2_make(buf, 0, 0x11, ib, v2_inet_body(ib));
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     (ssize_t)n);
    assert_true(h.local);
    /* LOCAL, UNSPEC, no body (what HAProxy sends for health checks) */
    n = v2_make(buf, 0, 0x00, NULL, 0);
    assert_int_equal(n, 16);
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why), 16);
    assert_true(h.local);
    assert_incremental(buf, n, ZINX_PROXY_V2);
    /* PROXY with UNSPEC family: also taken as local */
    n = v2_make(buf, 1, 0x00, NULL, 0);
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why), 16);
    assert_true(h.local);
    /* UNIX addresses cut short */
    n = v2_make(buf, 1, 0x31, body, 100);
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
}

static void test_v2_tlvs(void **state)
{
    (void)state;
    uint8_t body[64], buf[128];
    size_t a = v2_inet_body(body);
    /* ALPN "h2", then a NOOP of 3 bytes, then an empty AUTHORITY */
    const uint8_t tlvs[] = {0x01, 0, 2, 'h', '2',  0x04, 0,
                            3,    0, 0, 0,   0x02, 0,    0};
    memcpy(body + a, tlvs, sizeof(tlvs));
    size_t n = v2_make(buf, 1, 0x11, body, a + sizeof(tlvs));
    zinx__proxy_hdr_t h;
    const char *why;
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     (ssize_t)n);
    assert_src_dst(&h, "192.0.2.1:1000", "198.51.100.2:443");
    assert_incremental(buf, n, ZINX_PROXY_V2);
    /* a TLV whose length runs past the header */
    const uint8_t over[] = {0x01, 0, 9, 'h', '2'};
    memcpy(body + a, over, sizeof(over));
    n = v2_make(buf, 1, 0x11, body, a + sizeof(over));
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    assert_non_null(strstr(why, "TLV"));
    /* a TLV cut inside its own 3-byte head */
    n = v2_make(buf, 1, 0x11, body, a + 2);
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
}

static void test_v2_refused(void **state)
{
    (void)state;
    uint8_t body[12], buf[2048];
    size_t a = v2_inet_body(body);
    zinx__proxy_hdr_t h;
    const char *why;
    /* datagram (UDP over IPv4 and IPv6) */
    size_t n = v2_make(buf, 1, 0x12, body, a);
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    assert_non_null(strstr(why, "datagram"));
    uint8_t b6[36] = {0};
    n = v2_make(buf, 1, 0x22, b6, sizeof(b6));
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    /* unknown family or protocol */
    n = v2_make(buf, 1, 0x41, body, a);
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    n = v2_make(buf, 1, 0x13, body, a);
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    /* version 1 or 3 in the binary header; command 2 */
    n = v2_make(buf, 1, 0x11, body, a);
    buf[12] = 0x11;
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    buf[12] = 0x31;
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    buf[12] = 0x22;
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    /* addresses cut short by the length */
    n = v2_make(buf, 1, 0x11, body, 11);
    assert_int_equal(zinx__proxy_parse(buf, n, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    /* more than 1024 bytes in all: refused from its first 16 bytes */
    memset(buf, 0, sizeof(buf));
    v2_make(buf, 1, 0x11, body, a);
    buf[14] = (1024 - 16 + 1) >> 8;
    buf[15] = (uint8_t)(1024 - 16 + 1);
    assert_int_equal(zinx__proxy_parse(buf, 16, ZINX_PROXY_V2, &h, &why),
                     ZINX_EPROTO);
    assert_non_null(strstr(why, "1024"));
    /* exactly 1024 is taken (padding as a NOOP TLV) */
    size_t pad = 1024 - 16 - a - 3;
    buf[14] = (uint8_t)((1024 - 16) >> 8);
    buf[15] = (uint8_t)(1024 - 16);
    buf[16 + a] = 0x04;
    buf[16 + a + 1] = (uint8_t)(pad >> 8);
    buf[16 + a + 2] = (uint8_t)pad;
    assert_int_equal(zinx__proxy_parse(buf, 1023, ZINX_PROXY_V2, &h, &why), 0);
    assert_int_equal(zinx__proxy_parse(buf, 1024, ZINX_PROXY_V2, &h, &why),
                     1024);
}

/* ---- modes and garbage -------------------------------------------------- */

static void test_modes(void **state)
{
    (void)state;
    const char *v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    uint8_t body[12], v2[64];
    size_t n2 = v2_make(v2, 1, 0x11, body, v2_inet_body(body));
    zinx__proxy_hdr_t h;
    const char *why;
    assert_refused(v1, ZINX_PROXY_V2, "only v2");
    /* refused from its first byte: no need to wait for the rest */
    assert_int_equal(
        zinx__proxy_parse((const uint8_t *)v1, 1, ZINX_PROXY_V2, &h, &why),
        ZINX_EPROTO);
    assert_int_equal(zinx__proxy_parse(v2, n2, ZINX_PROXY_V1, &h, &why),
                     ZINX_EPROTO);
    assert_non_null(strstr(why, "only v1"));
    assert_int_equal(zinx__proxy_parse(v2, 1, ZINX_PROXY_V1, &h, &why),
                     ZINX_EPROTO);
    assert_int_equal(zinx__proxy_parse(v2, n2, ZINX_PROXY_EITHER, &h, &why),
                     (ssize_t)n2);
    assert_int_equal(h.version, 2);
    assert_int_equal(parse_text(v1, ZINX_PROXY_EITHER, &h, &why), strlen(v1));
    assert_int_equal(h.version, 1);
}

static void test_garbage(void **state)
{
    (void)state;
    /* a frame, an HTTP request, a TLS ClientHello, nothing like either */
    assert_refused("GET / HTTP/1.1\r\n\r\n", ZINX_PROXY_EITHER,
                   "no PROXY header");
    assert_refused("\x16\x03\x01\x02\x00", ZINX_PROXY_EITHER,
                   "no PROXY header");
    assert_refused("PROXZ TCP4", ZINX_PROXY_EITHER, "no PROXY header");
    assert_refused("proxy TCP4", ZINX_PROXY_V1, "no PROXY header");
    /* a v2 signature wrong in its last byte */
    uint8_t buf[16];
    memcpy(buf, v2_sig, 12);
    buf[11] = 0x0B;
    zinx__proxy_hdr_t h;
    const char *why;
    assert_int_equal(zinx__proxy_parse(buf, 12, ZINX_PROXY_EITHER, &h, &why),
                     ZINX_EPROTO);
    assert_string_equal(why, "no PROXY header");
    /* nothing yet: wait */
    assert_int_equal(zinx__proxy_parse(buf, 0, ZINX_PROXY_EITHER, &h, &why), 0);
    /* a lone CR may begin either: wait, then refuse at the mismatch */
    assert_int_equal(zinx__proxy_parse((const uint8_t *)"\r", 1,
                                       ZINX_PROXY_EITHER, &h, &why),
                     0);
    assert_int_equal(zinx__proxy_parse((const uint8_t *)"\r\r", 2,
                                       ZINX_PROXY_EITHER, &h, &why),
                     ZINX_EPROTO);
}

/* ---- network lists ------------------------------------------------------ */

static int parse_list(const char *text, zinx__netlist_t *l, char *why)
{
    return zinx__netlist_parse(text, l, why, 128);
}

static bool match4(const zinx__netlist_t *l, const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return zinx__netlist_match(l, (struct sockaddr *)&a);
}

static bool match6(const zinx__netlist_t *l, const char *ip)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return zinx__netlist_match(l, (struct sockaddr *)&a);
}

static void test_netlist_v4(void **state)
{
    (void)state;
    static zinx__netlist_t l;
    char why[128];
    assert_int_equal(
        parse_list(" 10.0.0.0/8 ,192.168.1.7,\t172.16.0.0/12", &l, why), 0);
    assert_int_equal(l.n, 3);
    assert_true(match4(&l, "10.0.0.1"));
    assert_true(match4(&l, "10.255.255.255"));
    assert_false(match4(&l, "11.0.0.1"));
    assert_true(match4(&l, "192.168.1.7"));
    assert_false(match4(&l, "192.168.1.8"));
    assert_true(match4(&l, "172.31.0.1"));
    assert_false(match4(&l, "172.32.0.1"));
    /* a dual-stack listener sees IPv4 clients as IPv4-mapped IPv6 */
    assert_true(match6(&l, "::ffff:10.1.2.3"));
    assert_true(match6(&l, "::ffff:192.168.1.7"));
    assert_false(match6(&l, "::ffff:11.1.2.3"));
    /* an IPv6 address that merely ends in 10.x is not mapped */
    assert_false(match6(&l, "::10.1.2.3"));
    assert_false(match6(&l, "2001:db8::a01:203"));
    /* a prefix that is not a multiple of 8 */
    assert_int_equal(parse_list("192.168.4.0/22", &l, why), 0);
    assert_true(match4(&l, "192.168.7.255"));
    assert_false(match4(&l, "192.168.8.0"));
    assert_false(match4(&l, "192.168.3.255"));
}

static void test_netlist_v6_and_zero(void **state)
{
    (void)state;
    static zinx__netlist_t l;
    char why[128];
    assert_int_equal(parse_list("2001:db8::/32, ::1", &l, why), 0);
    assert_true(match6(&l, "2001:db8:ffff::1"));
    assert_false(match6(&l, "2001:db9::1"));
    assert_true(match6(&l, "::1"));
    assert_false(match6(&l, "::2"));
    assert_false(match4(&l, "127.0.0.1"));
    /* /0: everyone of that family */
    assert_int_equal(parse_list("0.0.0.0/0", &l, why), 0);
    assert_true(match4(&l, "1.2.3.4"));
    assert_true(match6(&l, "::ffff:1.2.3.4"));
    assert_false(match6(&l, "2001:db8::1"));
    assert_int_equal(parse_list("::/0", &l, why), 0);
    assert_true(match6(&l, "2001:db8::1"));
    assert_true(match4(&l, "1.2.3.4"));
    /* an IPv4-mapped network written in IPv6 covers IPv4 peers too */
    assert_int_equal(parse_list("::ffff:10.0.0.0/104", &l, why), 0);
    assert_true(match4(&l, "10.9.8.7"));
    /* a Unix peer matches nothing */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_false(zinx__netlist_match(&l, (struct sockaddr *)&un));
    /* the empty list */
    assert_int_equal(parse_list("", &l, why), 0);
    assert_int_equal(l.n, 0);
    assert_false(match4(&l, "127.0.0.1"));
}

static void test_netlist_malformed(void **state)
{
    (void)state;
    static zinx__netlist_t l;
    const char *bad[] = {
        "10.0.0.0/33", "::1/129",     "10.0.0.0/", "10.0.0.0/-1",
        "10.0.0.0/+8", "10.0.0.0/8x", "10.0.0",    "example.com",
        "1.2.3.4,",    ",1.2.3.4",    "1.2.3.4,,", "1.2.3.4 5.6.7.8",
        "10.0.0.0/ 8", "/8",          "[::1]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char why[128] = "";
        if (parse_list(bad[i], &l, why) != ZINX_ECONFIG)
            fail_msg("\"%s\" was taken", bad[i]);
        assert_true(why[0] != '\0');
    }
    /* more than 64 networks */
    char big[1024] = "";
    for (int i = 0; i < 65; i++) {
        char one[16];
        snprintf(one, sizeof(one), "%s10.0.0.%d", i ? "," : "", i);
        strcat(big, one);
    }
    char why[128];
    assert_int_equal(parse_list(big, &l, why), ZINX_ECONFIG);
    assert_non_null(strstr(why, "64"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_spaces),
        cmocka_unit_test(test_v1_addresses_and_ports),
        cmocka_unit_test(test_v1_crlf_and_length),
        cmocka_unit_test(test_v1_incremental),
        cmocka_unit_test(test_v2_inet),
        cmocka_unit_test(test_v2_inet6),
        cmocka_unit_test(test_v2_unix_local_unspec),
        cmocka_unit_test(test_v2_tlvs),
        cmocka_unit_test(test_v2_refused),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_netlist_v4),
        cmocka_unit_test(test_netlist_v6_and_zero),
        cmocka_unit_test(test_netlist_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
