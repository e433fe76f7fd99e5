/*
 * Notify, broadcast and topics across nodes.
 *
 * A notify keeps the IDs of this node for local delivery and hands the
 * others to NATS, one message per node (split when the IDs outgrow
 * NATS's max payload) on that node's subject; a broadcast goes to this
 * node's connections and, one message each, to every node alive. The
 * receiving node's cluster thread delivers them as a local notify or
 * broadcast does. A topic goes once on the cluster's subject.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "internal.h"

int zinx__route_send(zinx__cluster_t *cl, const char *subj,
                     const zinx__wire_msg_t *hdr, const uint64_t *ids,
                     const void *a, size_t alen, const void *b, size_t blen)
{
    size_t size = zinx__wire_size(hdr->count, alen + blen);
    if ((int64_t)size > cl->max_payload) {
        zinx__cl_count(&cl->st.publish_errors, 1);
        return ZINX_EMSGSIZE;
    }
    uint8_t small[2048];
    uint8_t *buf = size <= sizeof(small) ? small : malloc(size);
    if (buf == NULL)
        return ZINX_ENOMEM;
    zinx__wire_put_header(buf, hdr);
    for (uint32_t i = 0; i < hdr->count; i++)
        zinx__wire_put_id(buf, i, ids[i]);
    uint8_t *p = buf + zinx__wire_size(hdr->count, 0);
    if (alen > 0)
        memcpy(p, a, alen);
    if (blen > 0)
        memcpy(p + alen, b, blen);
    int rc = zinx__link_publish(cl, subj, buf, size);
    if (buf != small)
        free(buf);
    return rc;
}

/* Joined, a member, and NATS reachable: what sending needs. */
static int usable(zinx__cluster_t *cl)
{
    if (!atomic_load(&cl->joined) || !atomic_load(&cl->member))
        return ZINX_ESTATE;
    return atomic_load(&cl->connected) ? 0 : ZINX_ECLOSED;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ids[0..n) all of one node: in as many messages as NATS allows. */
static size_t send_to_node(zinx__cluster_t *cl, const uint64_t *ids, size_t n,
                           uint32_t msg_id, const void *data, uint32_t len)
{
    char subj[ZINX__SUBJECT_MAX];
    zinx__link_node_subject(cl, zinx_cluster_node_of(ids[0]), subj);
    int64_t room = (cl->max_payload - ZINX__WIRE_HEADER - (int64_t)len) / 8;
    if (room < 1) {
        zinx__cl_count(&cl->st.publish_errors, 1);
        return 0;
    }
    zinx__wire_msg_t h = {.kind = ZINX__WIRE_NOTIFY,
                          .node = cl->node,
                          .instance = cl->instance,
                          .msg_id = msg_id};
    size_t handed = 0;
    for (size_t at = 0; at < n;) {
        size_t part = n - at < (size_t)room ? n - at : (size_t)room;
        h.count = (uint32_t)part;
        if (zinx__route_send(cl, subj, &h, ids + at, data, len, NULL, 0) == 0)
            handed += part;
        at += part;
    }
    return handed;
}

/* The IDs of other nodes, sorted so that each node's form one run. */
static size_t remote_ids(const zinx__cluster_t *cl, const uint64_t *ids,
                         size_t n, uint64_t **out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t node = zinx_cluster_node_of(ids[i]);
        k += node != 0 && node != cl->node;
    }
    *out = NULL;
    if (k == 0 || (*out = malloc(k * sizeof(**out))) == NULL)
        return 0;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t node = zinx_cluster_node_of(ids[i]);
        if (node != 0 && node != cl->node)
            (*out)[k++] = ids[i];
    }
    qsort(*out, k, sizeof(**out), cmp_u64);
    return k;
}

static int combine(int local, size_t handed)
{
    if (handed == 0)
        return local;
    if (local < 0)
        local = 0;
    size_t sum = (size_t)local + handed;
    return sum > INT32_MAX ? INT32_MAX : (int)sum;
}

int zinx__cluster_notify(zinx_server_t *s, const uint64_t *ids, size_t n,
                         uint32_t msg_id, const void *data, uint32_t len)
{
    zinx__cluster_t *cl = s->cluster;
    int local = zinx__server_notify_local(s, ids, n, msg_id, data, len);
    if (usable(cl) != 0)
        return local;
    uint64_t *remote;
    size_t k = remote_ids(cl, ids, n, &remote);
    size_t handed = 0;
    for (size_t at = 0; at < k;) {
        size_t end = at;
        uint32_t node = zinx_cluster_node_of(remote[at]);
        while (end < k && zinx_cluster_node_of(remote[end]) == node)
            end++;
        handed += send_to_node(cl, remote + at, end - at, msg_id, data, len);
        at = end;
    }
    free(remote);
    return combine(local, handed);
}

/* The nodes alive now, copied out of the lock. */
static size_t alive(zinx__cluster_t *cl, uint32_t **out)
{
    pthread_mutex_lock(&cl->plock);
    size_t n = cl->npeers;
    *out = n > 0 ? malloc(n * sizeof(**out)) : NULL;
    if (*out == NULL)
        n = 0;
    for (size_t i = 0; i < n; i++)
        (*out)[i] = cl->peers[i].node;
    pthread_mutex_unlock(&cl->plock);
    return n;
}

int zinx__cluster_broadcast(zinx_server_t *s, uint32_t msg_id, const void *data,
                            uint32_t len)
{
    zinx__cluster_t *cl = s->cluster;
    int local = zinx__server_broadcast_local(s, msg_id, data, len);
    if (usable(cl) != 0)
        return local;
    uint32_t *nodes;
    size_t n = alive(cl, &nodes);
    zinx__wire_msg_t h = {.kind = ZINX__WIRE_BROADCAST,
                          .node = cl->node,
                          .instance = cl->instance,
                          .msg_id = msg_id};
    size_t handed = 0;
    for (size_t i = 0; i < n; i++) {
        char subj[ZINX__SUBJECT_MAX];
        zinx__link_node_subject(cl, nodes[i], subj);
        handed += zinx__route_send(cl, subj, &h, NULL, data, len, NULL, 0) == 0;
    }
    free(nodes);
    return combine(local, handed);
}

/* ---- delivery on this node (the cluster thread) ------------------------ */

static void deliver_notify(zinx__cluster_t *cl, const zinx__wire_msg_t *m)
{
    uint64_t ids[256];
    size_t n = 0;
    int queued = 0;
    zinx_server_t *s = cl->server;
    for (uint32_t i = 0; i <= m->count; i++) {
        if (i < m->count) {
            uint64_t id = zinx__wire_id(m, i);
            if (zinx_cluster_node_of(id) == cl->node)
                ids[n++] = id;
        }
        if (n == 256 || (i == m->count && n > 0)) {
            int rc = zinx__server_notify_local(s, ids, n, m->msg_id, m->payload,
                                               (uint32_t)m->payload_len);
            queued += rc > 0 ? rc : 0;
            n = 0;
        }
    }
    zinx__cl_count(&cl->st.delivered, (uint64_t)queued);
}

static void deliver_topic(zinx__cluster_t *cl, const zinx__wire_msg_t *m)
{
    size_t tlen = m->msg_id;
    if (tlen == 0 || tlen > ZINX_CLUSTER_TOPIC_MAX || tlen > m->payload_len)
        return;
    for (size_t i = 0; i < cl->ntopics; i++) {
        zinx__cluster_topic_t *t = &cl->topics[i];
        if (strlen(t->name) == tlen && memcmp(t->name, m->payload, tlen) == 0) {
            t->fn(cl->server, m->node, m->payload + tlen, m->payload_len - tlen,
                  t->udata);
            return;
        }
    }
}

void zinx__route_deliver(zinx__cluster_t *cl, const zinx__wire_msg_t *m)
{
    zinx_server_t *s = cl->server;
    /* The same bound as a local notify: a peer cannot make us queue
       what this server would refuse from its own program. */
    if (m->kind != ZINX__WIRE_TOPIC && m->payload_len > s->cfg.max_packet_size)
        return;
    if (m->kind == ZINX__WIRE_NOTIFY) {
        deliver_notify(cl, m);
    } else if (m->kind == ZINX__WIRE_BROADCAST) {
        int rc = zinx__server_broadcast_local(s, m->msg_id, m->payload,
                                              (uint32_t)m->payload_len);
        zinx__cl_count(&cl->st.delivered, rc > 0 ? (uint64_t)rc : 0);
    } else if (m->kind == ZINX__WIRE_TOPIC) {
        deliver_topic(cl, m);
    }
}

int zinx_cluster_publish(zinx_server_t *s, const char *topic, const void *data,
                         size_t len)
{
    if (s == NULL || topic == NULL || (data == NULL && len > 0) ||
        !zinx__is_token(topic, ZINX_CLUSTER_TOPIC_MAX))
        return ZINX_EINVAL;
    zinx__cluster_t *cl = s->cluster;
    if (!s->clustered)
        return ZINX_ESTATE;
    int rc = usable(cl);
    if (rc != 0)
        return rc;
    size_t tlen = strlen(topic);
    zinx__wire_msg_t h = {.kind = ZINX__WIRE_TOPIC,
                          .node = cl->node,
                          .instance = cl->instance,
                          .msg_id = (uint32_t)tlen};
    return zinx__route_send(cl, cl->subj_all, &h, NULL, topic, tlen, data, len);
}
