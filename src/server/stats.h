/*
 * The server's counters: one atomic per row of ZINX_STATS_MAP
 * (zinx/server.h), so that a counter is declared in one place and the
 * public struct, these atomics and their copy cannot disagree. Never
 * installed.
 */
#ifndef ZINX_SERVER_STATS_H
#define ZINX_SERVER_STATS_H

#include <stdatomic.h>

#include "zinx/server.h"

/*
 * Any thread may add to a counter, with relaxed order: a counter orders
 * nothing else, and each is read on its own (the set is not a snapshot).
 */
typedef struct zinx__stats {
#define ZINX__STATS_ATOMIC(name, text) atomic_uint_least64_t name;
    ZINX_STATS_MAP(ZINX__STATS_ATOMIC)
#undef ZINX__STATS_ATOMIC
} zinx__stats_t;

/*
 * Copies every counter of st into out, each read atomically; leaves
 * out->connections alone (it is not a counter). Thread: any.
 */
void zinx__stats_copy(const zinx__stats_t *st, zinx_server_stats_t *out);

#endif /* ZINX_SERVER_STATS_H */
