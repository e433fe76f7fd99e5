/*
 * Source network lists: parsed once from the configuration, matched
 * against each accepted peer that PROXY protocol applies to.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proxy/netlist.h"

static void map_v4(const struct in_addr *a, uint8_t out[16])
{
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &a->s_addr, 4);
}

/* One entry, NUL-terminated, without blanks. */
static int parse_net(char *entry, zinx__net_t *net)
{
    char *slash = strchr(entry, '/');
    long prefix = -1;
    if (slash != NULL) {
        *slash = '\0';
        char *end;
        if (slash[1] < '0' || slash[1] > '9')
            return -1;
        prefix = strtol(slash + 1, &end, 10);
        if (*end != '\0')
            return -1;
    }
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, entry, &a4) == 1) {
        if (prefix > 32)
            return -1;
        map_v4(&a4, net->addr);
        net->prefix = (uint8_t)(96 + (prefix < 0 ? 32 : prefix));
        return 0;
    }
    if (inet_pton(AF_INET6, entry, &a6) == 1) {
        if (prefix > 128)
            return -1;
        memcpy(net->addr, &a6, 16);
        net->prefix = (uint8_t)(prefix < 0 ? 128 : prefix);
        return 0;
    }
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

int zinx__netlist_parse(const char *text, zinx__netlist_t *out, char *why,
                        size_t why_len)
{
    out->n = 0;
    char copy[1024];
    if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy)) {
        snprintf(why, why_len, "the list is longer than %zu bytes",
                 sizeof(copy) - 1);
        return ZINX_ECONFIG;
    }
    char *rest = copy;
    while (rest != NULL) {
        char *comma = strchr(rest, ',');
        if (comma != NULL)
            *comma = '\0';
        char *entry = trim(rest);
        rest = comma != NULL ? comma + 1 : NULL;
        if (*entry == '\0' && rest == NULL && out->n == 0)
            return 0; /* an empty list */
        char shown[64];
        snprintf(shown, sizeof(shown), "%s", entry);
        if (out->n == ZINX__NETLIST_MAX) {
            snprintf(why, why_len, "more than %d networks", ZINX__NETLIST_MAX);
            return ZINX_ECONFIG;
        }
        if (*entry == '\0' || parse_net(entry, &out->nets[out->n]) != 0) {
            snprintf(why, why_len,
                     "\"%s\" is not an IPv4 or IPv6 address with an "
                     "optional /prefix",
                     shown);
            return ZINX_ECONFIG;
        }
        out->n++;
    }
    return 0;
}

static bool in_net(const zinx__net_t *net, const uint8_t addr[16])
{
    unsigned full = net->prefix / 8, bits = net->prefix % 8;
    if (memcmp(net->addr, addr, full) != 0)
        return false;
    if (bits == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - bits));
    return (net->addr[full] & mask) == (addr[full] & mask);
}

bool zinx__netlist_match(const zinx__netlist_t *list, const struct sockaddr *sa)
{
    uint8_t addr[16];
    if (sa->sa_family == AF_INET)
        map_v4(&((const struct sockaddr_in *)sa)->sin_addr, addr);
    else if (sa->sa_family == AF_INET6)
        memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    else
        return false;
    for (size_t i = 0; i < list->n; i++)
        if (in_net(&list->nets[i], addr))
            return true;
    return false;
}
