/* The cluster's counters and its read-only API (zinx/cluster.h). */
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "internal.h"

uint64_t zinx__cl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fill(zinx__cluster_t *cl, zinx_cluster_stats_t *all)
{
    all->node = cl->node;
#define ZINX__CLUSTER_COPY(name, text) \
    all->name = atomic_load_explicit(&cl->st.name, memory_order_relaxed);
    ZINX_CLUSTER_STATS_MAP(ZINX__CLUSTER_COPY)
#undef ZINX__CLUSTER_COPY
    /* NATS counts drops itself, per subscription. */
    all->dropped = zinx__link_dropped(cl);
    pthread_mutex_lock(&cl->plock);
    all->nodes_alive = cl->npeers;
    pthread_mutex_unlock(&cl->plock);
    all->remote_conns = atomic_load(&cl->remote_conns);
    all->pending_bytes = zinx__link_pending(cl);
    all->connected = atomic_load(&cl->connected);
    all->member = atomic_load(&cl->member) && atomic_load(&cl->joined);
}

int zinx_cluster_stats(const zinx_server_t *s, zinx_cluster_stats_t *out)
{
    if (s == NULL || out == NULL ||
        out->struct_size < offsetof(zinx_cluster_stats_t, msgs_sent))
        return ZINX_EINVAL;
    zinx_cluster_stats_t all;
    memset(&all, 0, sizeof(all));
    if (s->clustered)
        fill(s->cluster, &all);
    uint32_t n = out->struct_size < sizeof(all) ? out->struct_size
                                                : (uint32_t)sizeof(all);
    all.struct_size = n;
    memcpy(out, &all, n);
    return 0;
}

uint32_t zinx_cluster_node(const zinx_server_t *s)
{
    return s != NULL && s->clustered ? s->cluster->node : 0;
}

size_t zinx_cluster_nodes(const zinx_server_t *s, uint32_t *nodes, size_t cap)
{
    if (s == NULL || !s->clustered)
        return 0;
    zinx__cluster_t *cl = s->cluster;
    pthread_mutex_lock(&cl->plock);
    size_t n = cl->npeers;
    for (size_t i = 0; nodes != NULL && i < n && i < cap; i++)
        nodes[i] = cl->peers[i].node;
    pthread_mutex_unlock(&cl->plock);
    return n;
}
