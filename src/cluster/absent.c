/*
 * The cluster in a build without nats.h: the API says ZINX_ENOTSUP and a
 * server with ClusterName does not start. Compiled instead of the other
 * files of src/cluster/ (see CMakeLists.txt), wire.c aside.
 */
#include "internal.h"
#include "zinx/cluster.h"

int zinx__cluster_join(zinx_server_t *s)
{
    if (s->cfg.cluster_name[0] == '\0')
        return 0;
    zinx__log(s, ZINX_LOG_ERROR,
              "cluster %s: this build of Zinx has no cluster (nats.h was "
              "missing when it was built); unset ClusterName or rebuild "
              "with libnats-dev",
              s->cfg.cluster_name);
    return ZINX_ENOTSUP;
}

void zinx__cluster_leave(zinx_server_t *s)
{
    (void)s;
}

void zinx__cluster_free(zinx_server_t *s)
{
    (void)s;
}

bool zinx__cluster_is_own_thread(const zinx_server_t *s)
{
    (void)s;
    return false;
}

void zinx__cluster_conn_event(zinx_server_t *s, uint64_t id, int up)
{
    (void)s;
    (void)id;
    (void)up;
}

int zinx__cluster_notify(zinx_server_t *s, const uint64_t *ids, size_t n,
                         uint32_t msg_id, const void *data, uint32_t len)
{
    return zinx__server_notify_local(s, ids, n, msg_id, data, len);
}

int zinx__cluster_broadcast(zinx_server_t *s, uint32_t msg_id, const void *data,
                            uint32_t len)
{
    return zinx__server_broadcast_local(s, msg_id, data, len);
}

int zinx_cluster_stats(const zinx_server_t *s, zinx_cluster_stats_t *out)
{
    (void)s;
    (void)out;
    return ZINX_ENOTSUP;
}

uint32_t zinx_cluster_node(const zinx_server_t *s)
{
    (void)s;
    return 0;
}

size_t zinx_cluster_nodes(const zinx_server_t *s, uint32_t *nodes, size_t cap)
{
    (void)s;
    (void)nodes;
    (void)cap;
    return 0;
}

int zinx_cluster_on_node(zinx_server_t *s, zinx_cluster_node_fn fn, void *udata)
{
    (void)s;
    (void)fn;
    (void)udata;
    return ZINX_ENOTSUP;
}

int zinx_cluster_on_remote_conn(zinx_server_t *s, zinx_cluster_conn_fn fn,
                                void *udata)
{
    (void)s;
    (void)fn;
    (void)udata;
    return ZINX_ENOTSUP;
}

int zinx_cluster_subscribe(zinx_server_t *s, const char *topic,
                           zinx_cluster_msg_fn fn, void *udata)
{
    (void)s;
    (void)topic;
    (void)fn;
    (void)udata;
    return ZINX_ENOTSUP;
}

int zinx_cluster_publish(zinx_server_t *s, const char *topic, const void *data,
                         size_t len)
{
    (void)s;
    (void)topic;
    (void)data;
    (void)len;
    return ZINX_ENOTSUP;
}
