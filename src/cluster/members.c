/*
 * Membership: node numbers, clashes, heartbeats and liveness.
 *
 * Node numbers come from each node's configuration (ClusterNode). At
 * join a node asks its own subject whether anyone answers for its
 * number (a NATS request: "no responders" means the number is free); a
 * live holder answers, and the start fails with ZINX_EEXIST. Two nodes
 * that start with one number at the same time, or on two sides of a
 * partition, both pass that check; their heartbeats (which carry each
 * start's nonce and start time) meet later: both log and count the
 * clash, and the later starter leaves the cluster.
 *
 * A node is alive from the first message heard from it until it says
 * goodbye or stays silent ClusterDeadAfter heartbeats long.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/array.h"
#include "cluster/cluster.h"
#include "internal.h"

static zinx__wire_msg_t self_header(const zinx__cluster_t *cl, uint8_t kind)
{
    zinx__wire_msg_t m = {.kind = kind,
                          .node = cl->node,
                          .instance = cl->instance,
                          .value = cl->start_ms};
    return m;
}

/* What a holder tells a newcomer about itself. */
static void describe_self(char *out, size_t len)
{
    char host[64] = "?";
    gethostname(host, sizeof(host) - 1);
    snprintf(out, len, "host %s pid %ld", host, (long)getpid());
}

static int holder_answered(zinx__cluster_t *cl, natsMsg *reply)
{
    zinx__wire_msg_t m;
    const void *data = cl->nats->natsMsg_GetData(reply);
    size_t len = (size_t)cl->nats->natsMsg_GetDataLength(reply);
    char who[128] = "an unreadable answer";
    if (zinx__wire_parse(&m, data, len) == 0 && m.kind == ZINX__WIRE_HOLDER) {
        int wl = m.payload_len < 100 ? (int)m.payload_len : 100;
        snprintf(who, sizeof(who), "%.*s, instance %016llx", wl,
                 (const char *)m.payload, (unsigned long long)m.instance);
    }
    zinx__log(cl->server, ZINX_LOG_ERROR,
              "cluster %s: node number %u is held by a live node (%s)",
              cl->server->cfg.cluster_name, cl->node, who);
    return ZINX_EEXIST;
}

int zinx__members_claim(zinx__cluster_t *cl)
{
    uint8_t buf[ZINX__WIRE_HEADER];
    zinx__wire_msg_t h = self_header(cl, ZINX__WIRE_CLAIM);
    zinx__wire_put_header(buf, &h);
    natsMsg *reply = NULL;
    natsStatus st = cl->nats->natsConnection_Request(
        &reply, cl->nc, cl->subj_node, buf, (int)sizeof(buf), 2000);
    if (st == NATS_NO_RESPONDERS)
        return 0;
    if (st == NATS_OK) {
        int rc = holder_answered(cl, reply);
        cl->nats->natsMsg_Destroy(reply);
        return rc;
    }
    zinx_server_t *s = cl->server;
    if (st == NATS_TIMEOUT) {
        /* Someone subscribes to the number's subject but did not answer
           in time: a live node too busy to, most likely. */
        zinx__log(s, ZINX_LOG_ERROR,
                  "cluster %s: node number %u is held by a node that did "
                  "not answer its claim in 2 s",
                  s->cfg.cluster_name, cl->node);
        return ZINX_EEXIST;
    }
    zinx__log(s, ZINX_LOG_ERROR, "cluster %s: cannot claim node %u: %s",
              s->cfg.cluster_name, cl->node, cl->nats->natsStatus_GetText(st));
    return ZINX_ECLOSED;
}

void zinx__members_answer_claim(zinx__cluster_t *cl, natsMsg *msg)
{
    const char *reply = cl->nats->natsMsg_GetReply(msg);
    if (reply == NULL || reply[0] == '\0' || !atomic_load(&cl->member))
        return;
    char who[128];
    describe_self(who, sizeof(who));
    zinx__wire_msg_t h = self_header(cl, ZINX__WIRE_HOLDER);
    zinx__route_send(cl, reply, &h, NULL, who, strlen(who), NULL, 0);
}

void zinx__members_announce(zinx__cluster_t *cl, uint8_t kind)
{
    uint8_t buf[ZINX__WIRE_HEADER];
    zinx__wire_msg_t h = self_header(cl, kind);
    zinx__wire_put_header(buf, &h);
    zinx__link_publish(cl, cl->subj_all, buf, sizeof(buf));
}

static zinx__peer_t *find_peer(zinx__cluster_t *cl, uint32_t node)
{
    for (size_t i = 0; i < cl->npeers; i++)
        if (cl->peers[i].node == node)
            return &cl->peers[i];
    return NULL;
}

/* Kept in ascending order: zinx_cluster_nodes() lists them so. */
static zinx__peer_t *add_peer(zinx__cluster_t *cl, const zinx__wire_msg_t *m)
{
    pthread_mutex_lock(&cl->plock);
    zinx__peer_t *p = NULL;
    if (ZINX__ARRAY_RESERVE(cl->peers, cl->peers_cap, cl->npeers + 1) == 0) {
        size_t at = 0;
        while (at < cl->npeers && cl->peers[at].node < m->node)
            at++;
        memmove(&cl->peers[at + 1], &cl->peers[at],
                (cl->npeers - at) * sizeof(*cl->peers));
        p = &cl->peers[at];
        memset(p, 0, sizeof(*p));
        p->node = m->node;
        p->instance = m->instance;
        cl->npeers++;
    }
    pthread_mutex_unlock(&cl->plock);
    return p;
}

static void discovered(zinx__cluster_t *cl, uint32_t node)
{
    zinx__cl_count(&cl->st.nodes_up, 1);
    ZINX__LOG(cl->server, ZINX_LOG_INFO, "cluster %s: node %u is up",
              cl->server->cfg.cluster_name, node);
    if (cl->node_fn != NULL)
        cl->node_fn(cl->server, node, 1, cl->node_udata);
    /* Ours to it (and everyone), and its own in return. */
    zinx__directory_publish(cl, node);
}

/* The later start leaves: the earlier one has handed out IDs longest. */
static void clash(zinx__cluster_t *cl, const zinx__wire_msg_t *m)
{
    zinx_server_t *s = cl->server;
    if (m->instance == cl->clash_with)
        return; /* counted and logged once per other start */
    cl->clash_with = m->instance;
    bool later = cl->start_ms > m->value ||
                 (cl->start_ms == m->value && cl->instance > m->instance);
    /* Leave first, then count: whoever reads the count mostly finds the
       outcome too (the counters are no atomic snapshot). */
    if (later && atomic_exchange(&cl->member, 0) == 1)
        zinx__link_unsubscribe(cl);
    zinx__cl_count(&cl->st.clashes, 1);
    zinx__log(s, ZINX_LOG_ERROR,
              "cluster %s: another live node has number %u (instance "
              "%016llx, started %llu ms after the epoch)%s",
              s->cfg.cluster_name, cl->node, (unsigned long long)m->instance,
              (unsigned long long)m->value,
              later ? "; this node started later and leaves the cluster"
                    : "; it started later and should leave");
}

zinx__peer_t *zinx__members_heard(zinx__cluster_t *cl,
                                  const zinx__wire_msg_t *m)
{
    if (m->node == cl->node) {
        /* Our own messages come back on the cluster's subject. */
        if (m->instance != cl->instance &&
            (m->kind == ZINX__WIRE_HELLO || m->kind == ZINX__WIRE_HEARTBEAT))
            clash(cl, m);
        return NULL;
    }
    zinx__peer_t *p = find_peer(cl, m->node);
    if (p != NULL && p->instance != m->instance) {
        /* It restarted faster than it could be found dead. */
        zinx__members_down(cl, m->node);
        p = NULL;
    }
    if (m->kind == ZINX__WIRE_GOODBYE)
        return p;
    bool fresh = p == NULL;
    if (fresh && (p = add_peer(cl, m)) == NULL)
        return NULL;
    p->last_seen_ms = zinx__now_ms();
    if (fresh)
        discovered(cl, m->node);
    return find_peer(cl, m->node); /* the array may have moved */
}

void zinx__members_down(zinx__cluster_t *cl, uint32_t node)
{
    pthread_mutex_lock(&cl->plock);
    zinx__peer_t *p = find_peer(cl, node);
    if (p == NULL) {
        pthread_mutex_unlock(&cl->plock);
        return;
    }
    zinx__peer_t gone = *p;
    size_t at = (size_t)(p - cl->peers);
    memmove(p, p + 1, (cl->npeers - at - 1) * sizeof(*p));
    cl->npeers--;
    atomic_fetch_sub(&cl->remote_conns, gone.conns.n);
    pthread_mutex_unlock(&cl->plock);
    zinx__cl_count(&cl->st.nodes_down, 1);
    ZINX__LOG(cl->server, ZINX_LOG_INFO,
              "cluster %s: node %u is gone (%zu of its connections)",
              cl->server->cfg.cluster_name, node, gone.conns.n);
    if (cl->node_fn != NULL)
        cl->node_fn(cl->server, node, 0, cl->node_udata);
    for (size_t i = 0; cl->conn_fn != NULL && i < gone.conns.cap; i++)
        if (gone.conns.slots[i] != 0)
            cl->conn_fn(cl->server, gone.conns.slots[i], 0, cl->conn_udata);
    zinx__idset_free(&gone.conns);
    zinx__idset_free(&gone.incoming);
}

void zinx__members_tick(zinx__cluster_t *cl, uint64_t now_ms)
{
    const zinx_config_t *cfg = &cl->server->cfg;
    if (now_ms >= cl->next_beat_ms) {
        if (atomic_load(&cl->member))
            zinx__members_announce(cl, ZINX__WIRE_HEARTBEAT);
        cl->next_beat_ms = now_ms + cfg->cluster_heartbeat_ms;
    }
    uint64_t limit =
        (uint64_t)cfg->cluster_heartbeat_ms * cfg->cluster_dead_after;
    for (size_t i = 0; i < cl->npeers;) {
        if (now_ms - cl->peers[i].last_seen_ms > limit)
            zinx__members_down(cl, cl->peers[i].node);
        else
            i++;
    }
}

void zinx__members_free(zinx__cluster_t *cl)
{
    pthread_mutex_lock(&cl->plock);
    for (size_t i = 0; i < cl->npeers; i++) {
        zinx__idset_free(&cl->peers[i].conns);
        zinx__idset_free(&cl->peers[i].incoming);
    }
    free(cl->peers);
    cl->peers = NULL;
    cl->npeers = cl->peers_cap = 0;
    atomic_store(&cl->remote_conns, 0);
    pthread_mutex_unlock(&cl->plock);
}
