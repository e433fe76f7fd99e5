/*
 * The link to NATS: one connection per server, two subjects, and the
 * inbox between libnats's delivery threads and the cluster thread.
 *
 * Subjects (cluster name C, node number N):
 *   zinx.C.all     membership (hello, heartbeat, goodbye, connection
 *                  events and snapshots) and topics: every node reads it
 *   zinx.C.node.N  what is for node N alone: notify, broadcast, claims
 * Everything one node sends to another's connections goes on that
 * node's one subject from one NATS connection, so NATS keeps it in the
 * order it was published: notify and broadcast stay in order per sender.
 *
 * libnats gives each subscription a delivery thread; both hand their
 * messages to the inbox, read by the cluster thread alone, so hooks and
 * subscribers run on one thread in arrival order. A full inbox holds
 * the delivery threads back, and NATS's pending limit (ClusterMaxPending
 * bytes) then drops what comes on: memory stays bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "internal.h"

static void log_slow(zinx__cluster_t *cl)
{
    zinx_server_t *s = cl->server;
    ZINX__LOG_LIMITED(s, ZINX__LOGK_CLUSTER_SLOW, ZINX_LOG_WARN,
                      "cluster %s: node %u reads too slowly: NATS drops "
                      "its messages beyond ClusterMaxPending (%u bytes)",
                      s->cfg.cluster_name, cl->node,
                      s->cfg.cluster_max_pending);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                     void *closure)
{
    zinx__cluster_t *cl = closure;
    (void)nc;
    (void)sub;
    if (err == NATS_SLOW_CONSUMER) {
        zinx__cl_count(&cl->st.slow_consumer, 1);
        log_slow(cl);
        return;
    }
    ZINX__LOG(cl->server, ZINX_LOG_WARN, "cluster %s: node %u: NATS: %s",
              cl->server->cfg.cluster_name, cl->node,
              cl->nats->natsStatus_GetText(err));
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    zinx__cluster_t *cl = closure;
    (void)nc;
    atomic_store(&cl->connected, 0);
    if (atomic_load(&cl->joined)) /* not our own close */
        ZINX__LOG(cl->server, ZINX_LOG_WARN,
                  "cluster %s: node %u lost NATS, reconnecting",
                  cl->server->cfg.cluster_name, cl->node);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    zinx__cluster_t *cl = closure;
    (void)nc;
    zinx__cl_count(&cl->st.reconnects, 1);
    atomic_store(&cl->connected, 1);
    /* Events published while away may be lost: everyone resends. */
    atomic_store(&cl->resync, 1);
    ZINX__LOG(cl->server, ZINX_LOG_INFO, "cluster %s: node %u reconnected",
              cl->server->cfg.cluster_name, cl->node);
}

/* The last callback of a connection: after it none comes. */
static void on_closed(natsConnection *nc, void *closure)
{
    zinx__cluster_t *cl = closure;
    (void)nc;
    pthread_mutex_lock(&cl->qlock);
    cl->closed = true;
    pthread_cond_broadcast(&cl->qclosed);
    pthread_mutex_unlock(&cl->qlock);
}

/* NATS's own liveness: pings at the heartbeat's pace, the server is
   gone after as many unanswered as a node may miss; reconnection goes
   on forever, with a bounded buffer for what is published meanwhile. */
static natsStatus set_options(zinx__cluster_t *cl, natsOptions *o)
{
    const zinx__nats_t *n = cl->nats;
    const zinx_config_t *cfg = &cl->server->cfg;
    char name[ZINX__SUBJECT_MAX];
    snprintf(name, sizeof(name), "zinx-%s-%u", cfg->cluster_name, cl->node);
    int bufsize =
        (int)(cfg->cluster_max_pending < (8u << 20) ? cfg->cluster_max_pending
                                                    : (8u << 20));
    natsStatus st = n->natsOptions_SetURL(o, cfg->cluster_nats_url);
    if (st == NATS_OK)
        st = n->natsOptions_SetName(o, name);
    if (st == NATS_OK)
        st = n->natsOptions_SetTimeout(o, 2000);
    if (st == NATS_OK)
        st = n->natsOptions_SetPingInterval(o, cfg->cluster_heartbeat_ms);
    if (st == NATS_OK)
        st = n->natsOptions_SetMaxPingsOut(o, (int)cfg->cluster_dead_after);
    if (st == NATS_OK)
        st = n->natsOptions_SetAllowReconnect(o, true);
    if (st == NATS_OK)
        st = n->natsOptions_SetMaxReconnect(o, -1);
    if (st == NATS_OK)
        st = n->natsOptions_SetReconnectWait(o, 100);
    if (st == NATS_OK)
        st = n->natsOptions_SetReconnectBufSize(o, bufsize);
    if (st == NATS_OK)
        st = n->natsOptions_SetErrorHandler(o, on_error, cl);
    if (st == NATS_OK)
        st = n->natsOptions_SetClosedCB(o, on_closed, cl);
    if (st == NATS_OK)
        st = n->natsOptions_SetDisconnectedCB(o, on_disconnected, cl);
    if (st == NATS_OK)
        st = n->natsOptions_SetReconnectedCB(o, on_reconnected, cl);
    /* Our own messages on the cluster's subject are of no use to us, and
       a flood we publish would come back to be read. */
    if (st == NATS_OK)
        st = n->natsOptions_SetNoEcho(o, true);
    /* Each publish goes out at once rather than when libnats's flusher
       thread next runs (a millisecond later, measured): a notify is one
       message to one node, a broadcast one per node; batching would
       cost their latency and save little. */
    if (st == NATS_OK)
        st = n->natsOptions_SetSendAsap(o, true);
    return st;
}

int zinx__link_connect(zinx__cluster_t *cl)
{
    const zinx__nats_t *n = cl->nats;
    zinx_server_t *s = cl->server;
    natsOptions *o = NULL;
    natsStatus st = n->natsOptions_Create(&o);
    if (st == NATS_OK)
        st = set_options(cl, o);
    if (st == NATS_OK)
        st = n->natsConnection_Connect(&cl->nc, o);
    if (o != NULL)
        n->natsOptions_Destroy(o);
    if (st != NATS_OK) {
        cl->nc = NULL;
        zinx__log(s, ZINX_LOG_ERROR,
                  "cluster %s: cannot connect to NATS at %s: %s",
                  s->cfg.cluster_name, s->cfg.cluster_nats_url,
                  n->natsStatus_GetText(st));
        return ZINX_ECLOSED;
    }
    cl->max_payload = n->natsConnection_GetMaxPayload(cl->nc);
    atomic_store(&cl->connected, 1);
    pthread_rwlock_wrlock(&cl->life);
    cl->open = true;
    pthread_rwlock_unlock(&cl->life);
    return 0;
}

void zinx__link_node_subject(const zinx__cluster_t *cl, uint32_t n, char *out)
{
    snprintf(out, ZINX__SUBJECT_MAX, "zinx.%s.node.%u",
             cl->server->cfg.cluster_name, n);
}

/* A delivery thread of libnats: into the inbox, waiting for room. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                   void *closure)
{
    zinx__cluster_t *cl = closure;
    (void)nc;
    (void)sub;
    size_t len = (size_t)cl->nats->natsMsg_GetDataLength(msg);
    pthread_mutex_lock(&cl->qlock);
    while (!cl->stopping &&
           (cl->count == ZINX__INBOX_CAP || cl->qbytes >= cl->qbytes_max))
        pthread_cond_wait(&cl->qspace, &cl->qlock);
    if (cl->stopping) {
        pthread_mutex_unlock(&cl->qlock);
        cl->nats->natsMsg_Destroy(msg);
        return;
    }
    cl->ring[(cl->head + cl->count) % ZINX__INBOX_CAP] = msg;
    cl->count++;
    cl->qbytes += len;
    pthread_cond_signal(&cl->qready);
    pthread_mutex_unlock(&cl->qlock);
}

static int subscribe(zinx__cluster_t *cl, const char *subj, uint32_t limit,
                     natsSubscription **out)
{
    const zinx__nats_t *n = cl->nats;
    natsStatus st = n->natsConnection_Subscribe(out, cl->nc, subj, on_msg, cl);
    /* No message limit: bytes are what memory is made of. */
    if (st == NATS_OK)
        st = n->natsSubscription_SetPendingLimits(*out, -1, (int)limit);
    if (st != NATS_OK) {
        zinx__log(cl->server, ZINX_LOG_ERROR,
                  "cluster %s: cannot subscribe to %s: %s",
                  cl->server->cfg.cluster_name, subj,
                  n->natsStatus_GetText(st));
        return ZINX_ECLOSED;
    }
    return 0;
}

int zinx__link_subscribe(zinx__cluster_t *cl)
{
    /* ClusterMaxPending shared: half for what is addressed to this node
       (notify, broadcast), a quarter for the cluster's subject, a quarter
       for the inbox (zinx__cluster_join). */
    uint32_t max = cl->server->cfg.cluster_max_pending;
    int rc = subscribe(cl, cl->subj_node, max / 2, &cl->sub_node);
    if (rc == 0)
        rc = subscribe(cl, cl->subj_all, max / 4, &cl->sub_all);
    /* Subscriptions reach the server before anyone is told we exist. */
    if (rc == 0 &&
        cl->nats->natsConnection_FlushTimeout(cl->nc, 2000) != NATS_OK)
        rc = ZINX_ECLOSED;
    return rc;
}

int zinx__link_publish(zinx__cluster_t *cl, const char *subj, const void *buf,
                       size_t len)
{
    if ((int64_t)len > cl->max_payload) {
        zinx__cl_count(&cl->st.publish_errors, 1);
        return ZINX_EMSGSIZE;
    }
    int rc = ZINX_ECLOSED;
    pthread_rwlock_rdlock(&cl->life);
    if (cl->open && cl->nats->natsConnection_Publish(cl->nc, subj, buf,
                                                     (int)len) == NATS_OK)
        rc = 0;
    pthread_rwlock_unlock(&cl->life);
    if (rc != 0) {
        zinx__cl_count(&cl->st.publish_errors, 1);
        return rc;
    }
    zinx__cl_count(&cl->st.msgs_sent, 1);
    zinx__cl_count(&cl->st.bytes_sent, len);
    return 0;
}

natsMsg *zinx__link_next(zinx__cluster_t *cl, uint64_t deadline_ms, bool *stop)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    natsMsg *msg = NULL;
    pthread_mutex_lock(&cl->qlock);
    while (!cl->stopping && cl->count == 0 && zinx__now_ms() < deadline_ms)
        pthread_cond_timedwait(&cl->qready, &cl->qlock, &ts);
    if (!cl->stopping && cl->count > 0) {
        msg = cl->ring[cl->head];
        cl->head = (cl->head + 1) % ZINX__INBOX_CAP;
        cl->count--;
        cl->qbytes -= (size_t)cl->nats->natsMsg_GetDataLength(msg);
        pthread_cond_signal(&cl->qspace);
    }
    *stop = cl->stopping;
    pthread_mutex_unlock(&cl->qlock);
    return msg;
}

void zinx__link_stop_inbox(zinx__cluster_t *cl)
{
    pthread_mutex_lock(&cl->qlock);
    cl->stopping = true;
    pthread_cond_broadcast(&cl->qready);
    pthread_cond_broadcast(&cl->qspace);
    pthread_mutex_unlock(&cl->qlock);
}

uint64_t zinx__link_pending(zinx__cluster_t *cl)
{
    pthread_mutex_lock(&cl->qlock);
    uint64_t bytes = cl->qbytes;
    pthread_mutex_unlock(&cl->qlock);
    pthread_rwlock_rdlock(&cl->life);
    natsSubscription *subs[2] = {cl->sub_node, cl->sub_all};
    for (int i = 0; cl->open && i < 2; i++) {
        int msgs = 0, b = 0;
        if (subs[i] != NULL && cl->nats->natsSubscription_GetPending(
                                   subs[i], &msgs, &b) == NATS_OK)
            bytes += (uint64_t)b;
    }
    pthread_rwlock_unlock(&cl->life);
    return bytes;
}

uint64_t zinx__link_dropped(zinx__cluster_t *cl)
{
    uint64_t n = atomic_load(&cl->dropped_before);
    pthread_rwlock_rdlock(&cl->life);
    natsSubscription *subs[2] = {cl->sub_node, cl->sub_all};
    for (int i = 0; cl->open && i < 2; i++) {
        int64_t d = 0;
        if (subs[i] != NULL &&
            cl->nats->natsSubscription_GetDropped(subs[i], &d) == NATS_OK)
            n += (uint64_t)d;
    }
    pthread_rwlock_unlock(&cl->life);
    return n;
}

void zinx__link_unsubscribe(zinx__cluster_t *cl)
{
    /* Not waited for: the delivery threads may be waiting for the very
       thread that calls this to make room in the inbox. */
    if (cl->sub_node != NULL)
        cl->nats->natsSubscription_Drain(cl->sub_node);
    if (cl->sub_all != NULL)
        cl->nats->natsSubscription_Drain(cl->sub_all);
}

static void close_sub(zinx__cluster_t *cl, natsSubscription **sub)
{
    const zinx__nats_t *n = cl->nats;
    if (*sub == NULL)
        return;
    n->natsSubscription_Drain(*sub);
    n->natsSubscription_WaitForDrainCompletion(*sub, 2000);
    int64_t d = 0;
    if (n->natsSubscription_GetDropped(*sub, &d) == NATS_OK)
        atomic_fetch_add(&cl->dropped_before, (uint64_t)d);
    natsSubscription *gone = *sub;
    *sub = NULL;
    n->natsSubscription_Destroy(gone);
}

static void wait_closed(zinx__cluster_t *cl)
{
    uint64_t deadline = zinx__now_ms() + 5000;
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                          .tv_nsec = (long)(deadline % 1000) * 1000000L};
    pthread_mutex_lock(&cl->qlock);
    while (!cl->closed && zinx__now_ms() < deadline)
        pthread_cond_timedwait(&cl->qclosed, &cl->qlock, &ts);
    pthread_mutex_unlock(&cl->qlock);
}

void zinx__link_close(zinx__cluster_t *cl)
{
    if (cl->nc == NULL)
        return;
    /* No publisher is inside the connection past this point. */
    pthread_rwlock_wrlock(&cl->life);
    cl->open = false;
    pthread_rwlock_unlock(&cl->life);
    close_sub(cl, &cl->sub_node);
    close_sub(cl, &cl->sub_all);
    cl->nats->natsConnection_Close(cl->nc);
    wait_closed(cl);
    cl->nats->natsConnection_Destroy(cl->nc);
    cl->nc = NULL;
    atomic_store(&cl->connected, 0);
    while (cl->count > 0) {
        cl->nats->natsMsg_Destroy(cl->ring[cl->head]);
        cl->head = (cl->head + 1) % ZINX__INBOX_CAP;
        cl->count--;
    }
    cl->qbytes = 0;
}
