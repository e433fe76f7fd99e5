/*
 * The cluster: several servers (nodes) joined over NATS, so that notify
 * and broadcast reach connections on any node. docs/scale-out.md tells
 * how to deploy it and what is and is not guaranteed across nodes.
 *
 * A server joins when ClusterName is set (zinx/config.h): at
 * zinx_server_start() it connects to ClusterNatsUrl and announces itself
 * as node ClusterNode. Without ClusterName nothing of NATS is loaded or
 * started: the NATS client library (libnats) is opened at run time, by
 * the first server that joins a cluster, and never linked into
 * programs that do not.
 *
 * Connection IDs. With a cluster, a connection's ID carries its node's
 * number in its top 16 bits (ZINX_CLUSTER_NODE_SHIFT), so IDs stay 64
 * bits and are unique in the cluster as long as node numbers are.
 * Without a cluster the top bits are 0, as before.
 *
 * Node numbers are given by the operator, one per node (the configuration
 * of each process, like a snowflake worker ID). A node that starts while
 * another live node holds its number is refused: zinx_server_start()
 * returns ZINX_EEXIST and logs which node holds it. Two nodes that
 * started apart (a partition) and meet later each log the clash and
 * count it in `clashes`; the one that started later leaves the cluster
 * (it keeps serving its own connections) so that no ID is ever shared
 * silently.
 *
 * Cluster-wide notify and broadcast. With a cluster,
 * zinx_server_notify() hands the IDs of other nodes to NATS, one message
 * per node, and zinx_server_broadcast() reaches every node; each node
 * then delivers locally as zinx_server_notify() does. Their return value
 * counts the local connections queued plus the remote IDs (notify) or
 * nodes (broadcast) handed to NATS: delivery to another node is not
 * confirmed. Messages to one connection keep the order in which one
 * thread sent them, notify and broadcast alike. A node that cannot keep
 * up drops cluster messages beyond ClusterMaxPending unread bytes (NATS's
 * slow-consumer signal): they are counted in `dropped` and logged, at
 * most once per second, and no node buffers without bound.
 *
 * Liveness. Every node publishes a heartbeat each ClusterHeartbeatMs; a
 * node silent for ClusterDeadAfter of them, or that said goodbye at its
 * stop, is gone: the node hook runs with up = 0, then the remote
 * connection hook runs once for each of its connections that this node
 * knew of, with up = 0.
 *
 * Threads. Hooks and subscribers run on the cluster's own thread, one per
 * server, in the order the events arrived; they must not block, and may
 * call any function documented "Thread: any".
 */
#ifndef ZINX_CLUSTER_H
#define ZINX_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "zinx/server.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* Where a connection ID keeps its node number. */
#define ZINX_CLUSTER_NODE_SHIFT 48

/* The node number of a connection ID (0: a server without a cluster). */
static inline uint32_t zinx_cluster_node_of(uint64_t conn_id)
{
    return (uint32_t)(conn_id >> ZINX_CLUSTER_NODE_SHIFT);
}

/* The longest topic of zinx_cluster_publish(), without its NUL. */
#define ZINX_CLUSTER_TOPIC_MAX 64

/*
 * XX(name, description): the cluster's counters, as ZINX_STATS_MAP does
 * for the server's.
 */
#define ZINX_CLUSTER_STATS_MAP(XX)                                       \
    XX(msgs_sent, "cluster messages published")                          \
    XX(bytes_sent, "bytes of cluster messages published")                \
    XX(msgs_received, "cluster messages received")                       \
    XX(bytes_received, "bytes of cluster messages received")             \
    XX(delivered, "remote notify/broadcast deliveries queued here")      \
    XX(dropped, "cluster messages dropped: this node read too slowly")   \
    XX(slow_consumer, "slow-consumer signals from NATS")                 \
    XX(publish_errors, "publishes NATS refused (disconnected, too big)") \
    XX(nodes_up, "nodes that appeared")                                  \
    XX(nodes_down, "nodes found gone")                                   \
    XX(clashes, "another live node with this node's number")             \
    XX(reconnects, "reconnections to NATS")

/*
 * The cluster's counters since start, then the state now. struct_size is
 * set by the library to the bytes it wrote; fields beyond it are left
 * alone, so that the struct can grow.
 */
typedef struct zinx_cluster_stats {
    uint32_t struct_size;
    uint32_t node; /* this node's number; 0 without a cluster */
#define ZINX__CLUSTER_STATS_FIELD(name, text) uint64_t name;
    ZINX_CLUSTER_STATS_MAP(ZINX__CLUSTER_STATS_FIELD)
#undef ZINX__CLUSTER_STATS_FIELD
    uint64_t nodes_alive;   /* other nodes heard from and not gone */
    uint64_t remote_conns;  /* their connections this node knows of */
    uint64_t pending_bytes; /* received, not yet handled */
    int connected;          /* 1 while connected to NATS */
    int member;             /* 1 while a member (0 after a clash) */
} zinx_cluster_stats_t;

/*
 * Copies the counters into *out (every field up to out->struct_size,
 * which the caller sets to sizeof(zinx_cluster_stats_t) first).
 * Returns 0, ZINX_EINVAL, or ZINX_ENOTSUP for a build without the
 * cluster. A server without a cluster reports zeros. Thread: any.
 */
int zinx_cluster_stats(const zinx_server_t *server, zinx_cluster_stats_t *out);

/* This server's node number; 0 without a cluster. Thread: any. */
uint32_t zinx_cluster_node(const zinx_server_t *server);

/*
 * Writes the numbers of the other live nodes, in ascending order, into
 * nodes[0..cap) and returns how many there are (which may exceed cap).
 * Thread: any.
 */
size_t zinx_cluster_nodes(const zinx_server_t *server, uint32_t *nodes,
                          size_t cap);

/* A node appeared (up = 1) or is gone (up = 0). */
typedef void (*zinx_cluster_node_fn)(zinx_server_t *server, uint32_t node,
                                     int up, void *udata);

/* A connection of another node started (up = 1) or ended (up = 0). */
typedef void (*zinx_cluster_conn_fn)(zinx_server_t *server, uint64_t conn_id,
                                     int up, void *udata);

/*
 * Set the node and remote connection hooks (NULL removes). Returns 0 or
 * ZINX_ESTATE after start. Thread: the set-up thread.
 */
int zinx_cluster_on_node(zinx_server_t *server, zinx_cluster_node_fn fn,
                         void *udata);
int zinx_cluster_on_remote_conn(zinx_server_t *server, zinx_cluster_conn_fn fn,
                                void *udata);

/*
 * A message another node published on a topic: from_node is its number;
 * data[0..len) is valid during the call only.
 */
typedef void (*zinx_cluster_msg_fn)(zinx_server_t *server, uint32_t from_node,
                                    const void *data, size_t len, void *udata);

/*
 * Application messages between nodes, beside notify and broadcast (an
 * MMO relays world chat this way). topic: 1..ZINX_CLUSTER_TOPIC_MAX
 * bytes of letters, digits, '-' and '_'; one subscriber per topic.
 * Returns 0, ZINX_EINVAL, ZINX_EEXIST, ZINX_ENOMEM or ZINX_ESTATE after
 * start. Thread: the set-up thread.
 */
int zinx_cluster_subscribe(zinx_server_t *server, const char *topic,
                           zinx_cluster_msg_fn fn, void *udata);

/*
 * Publishes data[0..len) on topic to every other node of the cluster
 * (not to this one); they receive it in the order this node published.
 * data is copied. Returns 0, ZINX_EINVAL, ZINX_EMSGSIZE (above NATS's
 * max payload), ZINX_ESTATE without a running cluster, or ZINX_ECLOSED
 * while NATS is unreachable. Thread: any.
 */
int zinx_cluster_publish(zinx_server_t *server, const char *topic,
                         const void *data, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_CLUSTER_H */
