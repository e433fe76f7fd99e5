/*
 * The cluster's internals: one zinx__cluster per server that joins a
 * cluster (zinx/cluster.h is the contract). Files by concern:
 *   natslib.c    loading libnats at run time
 *   link.c       the NATS connection, its subjects and the inbox that
 *                hands received messages to the cluster thread
 *   wire.c       the wire format of cluster messages
 *   members.c    node numbers, clashes, heartbeats, liveness
 *   directory.c  the connections of other nodes (and our own, to tell)
 *   route.c      notify, broadcast and topics across nodes
 *   cluster.c    join, the cluster thread, leave; the set-up API
 *   stats.c      counters and the read-only API
 *
 * Threads. The cluster thread runs every hook and subscriber and owns
 * the peers' state (it alone writes it, under plock, so that other
 * threads may read it under plock). libnats's delivery threads only put
 * messages into the inbox. Any thread may publish (notify, broadcast,
 * conn events) while `open`, under the read side of `life`.
 */
#ifndef ZINX_CLUSTER_CLUSTER_H
#define ZINX_CLUSTER_CLUSTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/natslib.h"
#include "cluster/wire.h"
#include "zinx/cluster.h"

struct zinx_server;

/* A set of connection IDs (never 0): open addressing, linear probing. */
typedef struct zinx__idset {
    uint64_t *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} zinx__idset_t;

int zinx__idset_add(zinx__idset_t *set, uint64_t id); /* 1 added, 0, ENOMEM */
bool zinx__idset_remove(zinx__idset_t *set, uint64_t id);
bool zinx__idset_has(const zinx__idset_t *set, uint64_t id);
void zinx__idset_free(zinx__idset_t *set);
/* Iterate: for (size_t i = 0; i < set->cap; i++) if (set->slots[i]) ... */

/* Another node, as this one knows it. */
typedef struct zinx__peer {
    uint32_t node;
    uint64_t instance;
    uint64_t last_seen_ms;  /* monotonic */
    zinx__idset_t conns;    /* its connections */
    zinx__idset_t incoming; /* a snapshot being received */
    bool receiving;
} zinx__peer_t;

typedef struct zinx__cluster_topic {
    char name[ZINX_CLUSTER_TOPIC_MAX + 1];
    zinx_cluster_msg_fn fn;
    void *udata;
} zinx__cluster_topic_t;

typedef struct zinx__cluster_counters {
#define ZINX__CLUSTER_ATOMIC(name, text) atomic_uint_least64_t name;
    ZINX_CLUSTER_STATS_MAP(ZINX__CLUSTER_ATOMIC)
#undef ZINX__CLUSTER_ATOMIC
} zinx__cluster_counters_t;

#define ZINX__SUBJECT_MAX 96
#define ZINX__INBOX_CAP 256

typedef struct zinx__cluster {
    struct zinx_server *server;
    const zinx__nats_t *nats;
    /* Set-up (before start). */
    zinx_cluster_node_fn node_fn;
    void *node_udata;
    zinx_cluster_conn_fn conn_fn;
    void *conn_udata;
    zinx__cluster_topic_t *topics;
    size_t ntopics, topics_cap;
    /* Who we are. */
    uint32_t node;
    uint64_t instance;
    uint64_t start_ms; /* wall clock: compared across machines */
    char subj_all[ZINX__SUBJECT_MAX];
    char subj_node[ZINX__SUBJECT_MAX];
    /* NATS. */
    natsConnection *nc;
    natsSubscription *sub_all, *sub_node;
    int64_t max_payload;
    pthread_rwlock_t life; /* publishers read; leaving writes */
    bool open;             /* publishing allowed; under life */
    atomic_int member;     /* 0 after a clash */
    atomic_int connected;
    atomic_int joined; /* between join and leave */
    atomic_uint_least64_t slow_log_ms;
    atomic_uint_least64_t dropped_before; /* of subscriptions gone */
    /* The inbox: libnats's delivery threads -> the cluster thread. */
    pthread_mutex_t qlock;
    pthread_cond_t qready, qspace, qclosed;
    natsMsg *ring[ZINX__INBOX_CAP];
    size_t head, count, qbytes, qbytes_max;
    bool stopping, closed;
    pthread_t thread;
    bool thread_started;
    /* Other nodes, sorted by number. */
    pthread_mutex_t plock;
    zinx__peer_t *peers;
    size_t npeers, peers_cap;
    atomic_uint_least64_t remote_conns;
    uint64_t next_beat_ms;
    uint64_t clash_with; /* the other start of our number, once seen */
    atomic_int resync;   /* reconnected: publish our snapshot again */
    /* Our own started connections, and the order of their events. */
    pthread_mutex_t elock;
    zinx__idset_t local;
    zinx__cluster_counters_t st;
} zinx__cluster_t;

/* ---- link.c ----------------------------------------------------------- */

/* Connects to ClusterNatsUrl. Returns 0 or ZINX_ECLOSED (logged). */
int zinx__link_connect(zinx__cluster_t *cl);
/* Subscribes the node's and the cluster's subjects into the inbox. */
int zinx__link_subscribe(zinx__cluster_t *cl);
/* Publishes buf[0..len) on subj. Returns 0, ZINX_EMSGSIZE, ZINX_ECLOSED
   (NATS unreachable or left), counted. Thread: any. */
int zinx__link_publish(zinx__cluster_t *cl, const char *subj, const void *buf,
                       size_t len);
/* The subject of node n. */
void zinx__link_node_subject(const zinx__cluster_t *cl, uint32_t n, char *out);
/* Waits for the next received message until deadline_ms (monotonic);
   NULL at the deadline or when stopping (*stop). Thread: the cluster
   thread. */
natsMsg *zinx__link_next(zinx__cluster_t *cl, uint64_t deadline_ms, bool *stop);
/* Stops the inbox: producers drop what comes, the cluster thread ends. */
void zinx__link_stop_inbox(zinx__cluster_t *cl);
/* Drains the subscriptions, closes and frees the NATS connection. */
void zinx__link_close(zinx__cluster_t *cl);
/* Messages received and not yet handled, in bytes. */
uint64_t zinx__link_pending(zinx__cluster_t *cl);
/* Messages NATS dropped for this node, so far. */
uint64_t zinx__link_dropped(zinx__cluster_t *cl);
/* Unsubscribes after a clash: this node no longer receives. */
void zinx__link_unsubscribe(zinx__cluster_t *cl);

/* ---- members.c -------------------------------------------------------- */

/* At join: ZINX_EEXIST when a live node answers for our number. */
int zinx__members_claim(zinx__cluster_t *cl);
/* Publishes a hello, heartbeat or goodbye on the cluster's subject. */
void zinx__members_announce(zinx__cluster_t *cl, uint8_t kind);
/* Every membership message from m: discovery, liveness, clash. Returns
   the peer, or NULL when m is to be ignored. Cluster thread. */
zinx__peer_t *zinx__members_heard(zinx__cluster_t *cl,
                                  const zinx__wire_msg_t *m);
/* A claim for our number: answers it. Cluster thread. */
void zinx__members_answer_claim(zinx__cluster_t *cl, natsMsg *msg);
/* Heartbeat due, nodes silent too long. Cluster thread. */
void zinx__members_tick(zinx__cluster_t *cl, uint64_t now_ms);
/* A node said goodbye or went silent: hooks, then forget it. */
void zinx__members_down(zinx__cluster_t *cl, uint32_t node);
/* At leave: forgets every peer (no hooks: the server is stopping). */
void zinx__members_free(zinx__cluster_t *cl);

/* ---- directory.c ------------------------------------------------------ */

/* Applies a conn up/down event or a snapshot part from peer p. */
void zinx__directory_apply(zinx__cluster_t *cl, zinx__peer_t *p,
                           const zinx__wire_msg_t *m);
/* Publishes our started connections (asking `ask`'s in return; 0:
   nobody), in order with our events. Thread: any. */
void zinx__directory_publish(zinx__cluster_t *cl, uint32_t ask);

/* ---- route.c ---------------------------------------------------------- */

/* A notify, broadcast or topic message for this node. Cluster thread. */
void zinx__route_deliver(zinx__cluster_t *cl, const zinx__wire_msg_t *m);
/* Builds a message with ids and payload (in pieces: a then b) and
   publishes it; returns what zinx__link_publish() does. */
int zinx__route_send(zinx__cluster_t *cl, const char *subj,
                     const zinx__wire_msg_t *hdr, const uint64_t *ids,
                     const void *a, size_t alen, const void *b, size_t blen);

/* ---- stats.c ---------------------------------------------------------- */

static inline void zinx__cl_count(atomic_uint_least64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Monotonic and wall-clock milliseconds. */
uint64_t zinx__cl_wall_ms(void);

#endif /* ZINX_CLUSTER_CLUSTER_H */
