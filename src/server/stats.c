/* The server's counters: the copy behind zinx_server_stats(). */
#include "internal.h"
#include "server/stats.h"

void zinx__stats_copy(const zinx__stats_t *st, zinx_server_stats_t *out)
{
#define ZINX__STATS_LOAD(name, text) out->name = atomic_load(&st->name);
    ZINX_STATS_MAP(ZINX__STATS_LOAD)
#undef ZINX__STATS_LOAD
}

void zinx_server_stats(const zinx_server_t *s, zinx_server_stats_t *out)
{
    zinx__stats_copy(&s->stats, out);
    out->connections = zinx_connmgr_count(s->mgr);
}
