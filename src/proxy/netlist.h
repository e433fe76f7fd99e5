/*
 * Lists of source networks ("10.0.0.0/8,::1/128, 192.168.1.7"), as the
 * ProxyProtocolFrom key gives them: who may send a PROXY header.
 */
#ifndef ZINX_PROXY_NETLIST_H
#define ZINX_PROXY_NETLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* At most this many networks in one list. */
#define ZINX__NETLIST_MAX 64

typedef struct zinx__net {
    uint8_t addr[16]; /* IPv4 as an IPv4-mapped IPv6 address */
    uint8_t prefix;   /* bits of addr that must match, 0..128 */
} zinx__net_t;

typedef struct zinx__netlist {
    size_t n;
    zinx__net_t nets[ZINX__NETLIST_MAX];
} zinx__netlist_t;

/*
 * Parses text: networks apart by commas (blanks around them allowed),
 * each an IPv4 or IPv6 address with an optional "/prefix" (none: the
 * host alone). Returns 0, or ZINX_ECONFIG with why (cut to why_len)
 * naming the entry that is wrong. An empty text is an empty list.
 */
int zinx__netlist_parse(const char *text, zinx__netlist_t *out, char *why,
                        size_t why_len);
/* Whether the address sa (IPv4, IPv6 or IPv4-mapped IPv6) lies in one of
   the networks; false for any other family (a Unix socket). */
bool zinx__netlist_match(const zinx__netlist_t *list,
                         const struct sockaddr *sa);

#endif /* ZINX_PROXY_NETLIST_H */
