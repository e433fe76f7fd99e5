/*
 * Fuzz target: the PROXY protocol header parser (src/proxy/header.c),
 * which reads what any peer of a ProxyProtocol listener sends first.
 *
 * Input layout:
 *   byte 0   the mode: 1 v1, 2 v2, 3 either (value % 3 + 1)
 *   the rest the bytes the peer sent (at most 2048 are used)
 *
 * The parser is run on a copy sized exactly to the bytes (so that the
 * sanitizer sees any read past them), and its answers are checked
 * against what must hold whatever the bytes:
 *   - a header's length fits the bytes, is at most 1024 (107 for v1),
 *     and its addresses are IPv4 or IPv6 ones unless it is local;
 *   - a refusal comes with a reason;
 *   - the parser never waits for more than 1024 bytes;
 *   - prefixes agree with the whole, as a connection that reads the
 *     header in pieces sees it: every prefix shorter than a header asks
 *     for more and every longer one gives the same length; once a
 *     prefix is refused, every longer one is.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "zinx.h"

#include "proxy/proxy.h"

#define MAX_INPUT 2048

static ssize_t parse(const uint8_t *data, size_t len, int mode,
                     zinx__proxy_hdr_t *h)
{
    /* An exact copy: a read past len is a heap overflow, not a read of
       the fuzzer's next bytes. */
    uint8_t *copy = malloc(len > 0 ? len : 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, len);
    const char *why = "unset";
    ssize_t rc = zinx__proxy_parse(copy, len, mode, h, &why);
    free(copy);
    FUZZ_CHECK(rc >= 0 || rc == ZINX_EPROTO, "rc %zd", rc);
    if (rc < 0)
        FUZZ_CHECK(why != NULL && why[0] != '\0', "refusal without reason");
    return rc;
}

static void check_addr(const struct sockaddr_storage *ss, socklen_t len)
{
    if (ss->ss_family == AF_INET)
        FUZZ_CHECK(len == sizeof(struct sockaddr_in), "v4 len %u",
                   (unsigned)len);
    else
        FUZZ_CHECK(ss->ss_family == AF_INET6 &&
                       len == sizeof(struct sockaddr_in6),
                   "family %d len %u", ss->ss_family, (unsigned)len);
    char text[ZINX__ADDR_TEXT_MAX];
    zinx__addr_format(ss, len, text);
    FUZZ_CHECK(strlen(text) < sizeof(text), "address text");
}

static void check_header(const zinx__proxy_hdr_t *h, ssize_t rc, size_t len)
{
    FUZZ_CHECK((size_t)rc <= len, "header %zd past %zu bytes", rc, len);
    FUZZ_CHECK(rc <= ZINX__PROXY_MAX, "header of %zd bytes", rc);
    FUZZ_CHECK(h->version == 1 || h->version == 2, "version %d", h->version);
    if (h->version == 1)
        FUZZ_CHECK(rc <= 107, "v1 line of %zd bytes", rc);
    else
        FUZZ_CHECK(rc >= 16, "v2 header of %zd bytes", rc);
    if (!h->local) {
        check_addr(&h->src, h->src_len);
        check_addr(&h->dst, h->dst_len);
        FUZZ_CHECK(h->src.ss_family == h->dst.ss_family, "mixed families");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 3 + 1; /* ZINX_PROXY_V1, _V2, _EITHER */
    data++;
    size--;
    if (size > MAX_INPUT)
        size = MAX_INPUT;

    zinx__proxy_hdr_t whole;
    ssize_t rc = parse(data, size, mode, &whole);
    if (rc > 0)
        check_header(&whole, rc, size);
    if (rc == 0)
        FUZZ_CHECK(size < ZINX__PROXY_MAX, "waits at %zu bytes", size);

    /* Every prefix, as reads of any size would give them. */
    bool refused = false;
    for (size_t k = 0; k < size; k++) {
        zinx__proxy_hdr_t h;
        ssize_t p = parse(data, k, mode, &h);
        if (refused) {
            FUZZ_CHECK(p == ZINX_EPROTO, "prefix %zu taken after a refusal", k);
            continue;
        }
        if (p == ZINX_EPROTO) {
            FUZZ_CHECK(rc == ZINX_EPROTO, "prefix %zu refused, whole %zd", k,
                       rc);
            refused = true;
        } else if (p > 0) {
            FUZZ_CHECK(p == rc, "prefix %zu gives %zd, whole %zd", k, p, rc);
            FUZZ_CHECK(memcmp(&h, &whole, sizeof(h)) == 0,
                       "prefix %zu parses differently", k);
        } else if (rc > 0) {
            FUZZ_CHECK(k < (size_t)rc, "prefix %zu of a %zd-byte header waits",
                       k, rc);
        }
    }
    return 0;
}
