/*
 * Joining and leaving a cluster, the cluster thread, and the set-up API
 * of zinx/cluster.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/array.h"
#include "cluster/cluster.h"
#include "internal.h"

static void destroy(zinx__cluster_t *cl)
{
    pthread_rwlock_destroy(&cl->life);
    pthread_mutex_destroy(&cl->qlock);
    pthread_cond_destroy(&cl->qready);
    pthread_cond_destroy(&cl->qspace);
    pthread_cond_destroy(&cl->qclosed);
    pthread_mutex_destroy(&cl->plock);
    pthread_mutex_destroy(&cl->elock);
    zinx__idset_free(&cl->local);
    free(cl->topics);
    free(cl);
}

/* The server's cluster state, made at the first set-up call or start. */
static zinx__cluster_t *cluster_of(zinx_server_t *s)
{
    if (s->cluster != NULL)
        return s->cluster;
    zinx__cluster_t *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return NULL;
    cl->server = s;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_rwlock_init(&cl->life, NULL);
    pthread_mutex_init(&cl->qlock, NULL);
    pthread_cond_init(&cl->qready, &ca);
    pthread_cond_init(&cl->qspace, &ca);
    pthread_cond_init(&cl->qclosed, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&cl->plock, NULL);
    pthread_mutex_init(&cl->elock, NULL);
    atomic_init(&cl->member, 0);
    atomic_init(&cl->joined, 0);
    s->cluster = cl;
    return cl;
}

/* The cluster state of a server not yet started, for a registration:
 *out on 0, else ZINX_EINVAL, ZINX_ESTATE (started) or ZINX_ENOMEM. */
static int setup_cluster(zinx_server_t *s, zinx__cluster_t **out)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    *out = cluster_of(s);
    return *out != NULL ? 0 : ZINX_ENOMEM;
}

int zinx_cluster_on_node(zinx_server_t *s, zinx_cluster_node_fn fn, void *udata)
{
    zinx__cluster_t *cl;
    int rc = setup_cluster(s, &cl);
    if (rc != 0)
        return rc;
    cl->node_fn = fn;
    cl->node_udata = udata;
    return 0;
}

int zinx_cluster_on_remote_conn(zinx_server_t *s, zinx_cluster_conn_fn fn,
                                void *udata)
{
    zinx__cluster_t *cl;
    int rc = setup_cluster(s, &cl);
    if (rc != 0)
        return rc;
    cl->conn_fn = fn;
    cl->conn_udata = udata;
    return 0;
}

int zinx_cluster_subscribe(zinx_server_t *s, const char *topic,
                           zinx_cluster_msg_fn fn, void *udata)
{
    if (topic == NULL || fn == NULL ||
        !zinx__is_token(topic, ZINX_CLUSTER_TOPIC_MAX))
        return ZINX_EINVAL;
    zinx__cluster_t *cl;
    int rc = setup_cluster(s, &cl);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < cl->ntopics; i++)
        if (strcmp(cl->topics[i].name, topic) == 0)
            return ZINX_EEXIST;
    if (ZINX__ARRAY_RESERVE(cl->topics, cl->topics_cap, cl->ntopics + 1) != 0)
        return ZINX_ENOMEM;
    zinx__cluster_topic_t *t = &cl->topics[cl->ntopics++];
    snprintf(t->name, sizeof(t->name), "%s", topic);
    t->fn = fn;
    t->udata = udata;
    return 0;
}

/* ---- the cluster thread ------------------------------------------------ */

static void handle(zinx__cluster_t *cl, natsMsg *msg)
{
    const void *data = cl->nats->natsMsg_GetData(msg);
    size_t len = (size_t)cl->nats->natsMsg_GetDataLength(msg);
    zinx__cl_count(&cl->st.msgs_received, 1);
    zinx__cl_count(&cl->st.bytes_received, len);
    zinx__wire_msg_t m;
    if (zinx__wire_parse(&m, data, len) != 0 || !atomic_load(&cl->member))
        return; /* not ours to read: another program on the subject */
    zinx__peer_t *p;
    switch (m.kind) {
    case ZINX__WIRE_CLAIM:
        if (m.node == cl->node && m.instance != cl->instance)
            zinx__members_answer_claim(cl, msg);
        break;
    case ZINX__WIRE_NOTIFY:
    case ZINX__WIRE_BROADCAST:
        zinx__route_deliver(cl, &m);
        break;
    case ZINX__WIRE_GOODBYE:
        if (zinx__members_heard(cl, &m) != NULL)
            zinx__members_down(cl, m.node);
        break;
    case ZINX__WIRE_HOLDER:
        break;
    default: /* hello, heartbeat, events, snapshots, topics */
        if ((p = zinx__members_heard(cl, &m)) == NULL)
            break;
        if (m.kind == ZINX__WIRE_TOPIC)
            zinx__route_deliver(cl, &m);
        else
            zinx__directory_apply(cl, p, &m);
        break;
    }
}

static void *run(void *arg)
{
    zinx__cluster_t *cl = arg;
    zinx__thread_name_self("zinx-cluster");
    uint32_t hb = cl->server->cfg.cluster_heartbeat_ms;
    uint64_t step = hb / 4 > 5 ? hb / 4 : 5; /* liveness checks' pace */
    for (bool stop = false; !stop;) {
        uint64_t now = zinx__now_ms();
        zinx__members_tick(cl, now);
        if (atomic_exchange(&cl->resync, 0) && atomic_load(&cl->member))
            zinx__directory_publish(cl, UINT32_MAX);
        natsMsg *msg = zinx__link_next(cl, now + step, &stop);
        if (msg != NULL) {
            handle(cl, msg);
            cl->nats->natsMsg_Destroy(msg);
        }
    }
    return NULL;
}

/* ---- join and leave ----------------------------------------------------- */

static int identify(zinx__cluster_t *cl)
{
    const zinx_config_t *cfg = &cl->server->cfg;
    cl->node = cfg->cluster_node;
    /* A fresh nonce per start tells this start from a restart or from a
       node that took the same number. */
    while (cl->instance == 0)
        if (getrandom(&cl->instance, sizeof(cl->instance), 0) !=
            (ssize_t)sizeof(cl->instance))
            return -errno;
    cl->start_ms = zinx__cl_wall_ms();
    snprintf(cl->subj_all, sizeof(cl->subj_all), "zinx.%s.all",
             cfg->cluster_name);
    zinx__link_node_subject(cl, cl->node, cl->subj_node);
    cl->qbytes_max = cfg->cluster_max_pending / 4; /* see link.c */
    return 0;
}

static int load(zinx__cluster_t *cl)
{
    const char *why = NULL;
    cl->nats = zinx__nats_open(&why);
    if (cl->nats != NULL)
        return 0;
    zinx__log(cl->server, ZINX_LOG_ERROR,
              "cluster %s: cannot load the NATS client library %s (%s); "
              "install libnats3.4 or unset ClusterName",
              cl->server->cfg.cluster_name, ZINX__NATS_SONAME,
              why != NULL ? why : "?");
    return ZINX_ENOTSUP;
}

static int connect_and_claim(zinx__cluster_t *cl)
{
    int rc = zinx__link_connect(cl);
    if (rc == 0)
        rc = zinx__members_claim(cl);
    if (rc == 0) {
        atomic_store(&cl->member, 1);
        atomic_store(&cl->joined, 1);
        rc = zinx__link_subscribe(cl);
    }
    if (rc == 0) {
        rc = zinx__thread_start(&cl->thread, run, cl);
        cl->thread_started = rc == 0;
    }
    return rc;
}

int zinx__cluster_join(zinx_server_t *s)
{
    if (s->cfg.cluster_name[0] == '\0')
        return 0;
    zinx__cluster_t *cl = cluster_of(s);
    if (cl == NULL)
        return ZINX_ENOMEM;
    int rc = load(cl);
    if (rc == 0)
        rc = identify(cl);
    /* Set before the cluster thread starts, read-only after: until the
       join completes, notify and broadcast stay local (not joined). */
    s->id_base = (uint64_t)cl->node << ZINX_CLUSTER_NODE_SHIFT;
    s->clustered = true;
    cl->next_beat_ms = 0;
    if (rc == 0)
        rc = connect_and_claim(cl);
    if (rc != 0) {
        atomic_store(&cl->joined, 0);
        zinx__link_stop_inbox(cl);
        if (cl->thread_started)
            pthread_join(cl->thread, NULL);
        cl->thread_started = false;
        if (cl->nats != NULL)
            zinx__link_close(cl);
        s->clustered = false; /* no thread runs that reads them */
        s->id_base = 0;
        return rc;
    }
    zinx__members_announce(cl, ZINX__WIRE_HELLO);
    ZINX__LOG(s, ZINX_LOG_INFO, "cluster %s: joined as node %u via %s",
              s->cfg.cluster_name, cl->node, s->cfg.cluster_nats_url);
    return 0;
}

void zinx__cluster_leave(zinx_server_t *s)
{
    zinx__cluster_t *cl = s->cluster;
    if (!s->clustered || !atomic_exchange(&cl->joined, 0))
        return;
    /* Others drop this node and its connections at once rather than
       after ClusterDeadAfter heartbeats. */
    if (atomic_load(&cl->member)) {
        zinx__members_announce(cl, ZINX__WIRE_GOODBYE);
        pthread_rwlock_rdlock(&cl->life);
        cl->nats->natsConnection_FlushTimeout(cl->nc, 1000);
        pthread_rwlock_unlock(&cl->life);
    }
    zinx__link_stop_inbox(cl);
    if (cl->thread_started)
        pthread_join(cl->thread, NULL);
    cl->thread_started = false;
    zinx__link_close(cl);
    zinx__members_free(cl);
    ZINX__LOG(s, ZINX_LOG_INFO, "cluster %s: node %u left", s->cfg.cluster_name,
              cl->node);
}

bool zinx__cluster_is_own_thread(const zinx_server_t *s)
{
    const zinx__cluster_t *cl = s->cluster;
    return cl != NULL && cl->thread_started &&
           pthread_equal(cl->thread, pthread_self());
}

void zinx__cluster_free(zinx_server_t *s)
{
    if (s->cluster == NULL)
        return;
    zinx__cluster_leave(s);
    destroy(s->cluster);
    s->cluster = NULL;
}
