/*
 * An impaired UDP link for the tests: a thread on 127.0.0.1 that relays
 * datagrams between one client and a server, dropping each with a
 * probability and delaying each by mean ± jitter (uniform) per direction,
 * so datagrams are also reordered. Decisions come from a seeded
 * generator (the same datagrams in the same order meet the same fate).
 *
 * The client sends to ur_port(); the first address that does is the
 * client (datagrams from any other address are counted and dropped). The
 * relay talks to the server from a socket of its own. Never calls
 * cmocka: failures are return values.
 */
#ifndef ZINX_TEST_UDP_RELAY_H
#define ZINX_TEST_UDP_RELAY_H

#include <stdint.h>

/* One direction's impairment. */
typedef struct ur_link {
    double loss;   /* 0..1: probability that a datagram is dropped */
    int delay_ms;  /* mean one-way delay */
    int jitter_ms; /* each delay is uniform in delay_ms ± jitter_ms */
} ur_link_t;

typedef struct ur_opts {
    ur_link_t up;   /* client -> server */
    ur_link_t down; /* server -> client */
    uint64_t seed;  /* 0 is taken as 1 */
} ur_opts_t;

/* Counts since the start, per direction (up: client -> server). */
typedef struct ur_stats {
    uint64_t up_forwarded, up_dropped;
    uint64_t down_forwarded, down_dropped;
    uint64_t foreign;  /* datagrams from an address not the client's */
    uint64_t overflow; /* dropped because too many were in flight */
} ur_stats_t;

typedef struct ur_relay ur_relay_t;

/*
 * Starts a relay to 127.0.0.1:server_port with opts (copied). Returns
 * NULL with errno set when a socket or the thread cannot be made.
 */
ur_relay_t *ur_start(int server_port, const ur_opts_t *opts);

/* The loopback UDP port the client sends to. */
int ur_port(const ur_relay_t *r);

/* A snapshot of the counters (any thread). */
void ur_stats(ur_relay_t *r, ur_stats_t *out);

/* Stops the thread, drops what is still in flight, frees r. NULL: no-op. */
void ur_stop(ur_relay_t *r);

#endif /* ZINX_TEST_UDP_RELAY_H */
