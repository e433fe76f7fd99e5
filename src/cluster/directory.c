/*
 * The connections of other nodes, as this node knows them: from their
 * start and stop events, and from a snapshot of each node's started
 * connections, which it publishes whenever it finds another node.
 *
 * The snapshot/event race is closed by order, not by numbers: a node
 * takes its snapshot and publishes it under the same lock under which
 * it publishes its events, on the same subject from the same NATS
 * connection. NATS keeps one publisher's messages on one subject in
 * order, so every receiver sees a snapshot exactly between the events
 * before it and those after it; applying a snapshot replaces what was
 * known (with hooks for the difference), and later events apply to it.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "internal.h"

/* ---- the set ---------------------------------------------------------- */

static size_t slot_of(uint64_t id, size_t mask)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static int grow(zinx__idset_t *set)
{
    size_t cap = set->cap != 0 ? set->cap * 2 : 64;
    uint64_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return ZINX_ENOMEM;
    for (size_t i = 0; i < set->cap; i++) {
        uint64_t id = set->slots[i];
        if (id == 0)
            continue;
        size_t j = slot_of(id, cap - 1);
        while (slots[j] != 0)
            j = (j + 1) & (cap - 1);
        slots[j] = id;
    }
    free(set->slots);
    set->slots = slots;
    set->cap = cap;
    return 0;
}

int zinx__idset_add(zinx__idset_t *set, uint64_t id)
{
    if (id == 0)
        return 0;
    if ((set->n + 1) * 4 > set->cap * 3 && grow(set) != 0)
        return ZINX_ENOMEM;
    size_t mask = set->cap - 1;
    size_t i = slot_of(id, mask);
    while (set->slots[i] != 0) {
        if (set->slots[i] == id)
            return 0;
        i = (i + 1) & mask;
    }
    set->slots[i] = id;
    set->n++;
    return 1;
}

static size_t find(const zinx__idset_t *set, uint64_t id)
{
    if (set->cap == 0 || id == 0)
        return SIZE_MAX;
    size_t mask = set->cap - 1;
    for (size_t i = slot_of(id, mask); set->slots[i] != 0; i = (i + 1) & mask)
        if (set->slots[i] == id)
            return i;
    return SIZE_MAX;
}

bool zinx__idset_has(const zinx__idset_t *set, uint64_t id)
{
    return find(set, id) != SIZE_MAX;
}

/* Backward-shift deletion: no tombstones, probes stay short. */
bool zinx__idset_remove(zinx__idset_t *set, uint64_t id)
{
    size_t i = find(set, id);
    if (i == SIZE_MAX)
        return false;
    size_t mask = set->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (set->slots[j] == 0)
            break;
        size_t home = slot_of(set->slots[j], mask);
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            set->slots[i] = set->slots[j];
            i = j;
        }
    }
    set->slots[i] = 0;
    set->n--;
    return true;
}

void zinx__idset_free(zinx__idset_t *set)
{
    free(set->slots);
    memset(set, 0, sizeof(*set));
}

/* ---- remote connections ----------------------------------------------- */

static void hook(zinx__cluster_t *cl, uint64_t id, int up)
{
    if (cl->conn_fn != NULL)
        cl->conn_fn(cl->server, id, up, cl->conn_udata);
}

/* Another node may only speak for its own connections. */
static bool owned(const zinx__peer_t *p, uint64_t id)
{
    return id != 0 && zinx_cluster_node_of(id) == p->node;
}

static void apply_event(zinx__cluster_t *cl, zinx__peer_t *p,
                        const zinx__wire_msg_t *m, int up)
{
    for (uint32_t i = 0; i < m->count; i++) {
        uint64_t id = zinx__wire_id(m, i);
        if (!owned(p, id))
            continue;
        pthread_mutex_lock(&cl->plock);
        bool changed = up ? zinx__idset_add(&p->conns, id) == 1
                          : zinx__idset_remove(&p->conns, id);
        if (changed) {
            if (up)
                atomic_fetch_add(&cl->remote_conns, 1);
            else
                atomic_fetch_sub(&cl->remote_conns, 1);
        }
        pthread_mutex_unlock(&cl->plock);
        if (changed)
            hook(cl, id, up);
    }
}

/* The last part is in: what was known and is not listed is gone, what
   is listed and was not known is new. Only this thread writes p's
   sets, so it reads them without the lock. */
static void finish_snapshot(zinx__cluster_t *cl, zinx__peer_t *p)
{
    zinx__idset_t old = p->conns;
    pthread_mutex_lock(&cl->plock);
    p->conns = p->incoming;
    atomic_fetch_sub(&cl->remote_conns, old.n);
    atomic_fetch_add(&cl->remote_conns, p->conns.n);
    pthread_mutex_unlock(&cl->plock);
    memset(&p->incoming, 0, sizeof(p->incoming));
    p->receiving = false;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i] != 0 && !zinx__idset_has(&p->conns, old.slots[i]))
            hook(cl, old.slots[i], 0);
    zinx__idset_t now = p->conns;
    for (size_t i = 0; i < now.cap; i++)
        if (now.slots[i] != 0 && !zinx__idset_has(&old, now.slots[i]))
            hook(cl, now.slots[i], 1);
    zinx__idset_free(&old);
}

static void apply_snapshot(zinx__cluster_t *cl, zinx__peer_t *p,
                           const zinx__wire_msg_t *m)
{
    if (m->flags & ZINX__WIRE_FIRST) {
        zinx__idset_free(&p->incoming);
        p->receiving = true;
    }
    if (!p->receiving)
        return; /* a part whose first we never saw */
    for (uint32_t i = 0; i < m->count; i++) {
        uint64_t id = zinx__wire_id(m, i);
        if (owned(p, id) && zinx__idset_add(&p->incoming, id) < 0)
            break; /* out of memory: the rest is learnt from events */
    }
    if (m->flags & ZINX__WIRE_LAST)
        finish_snapshot(cl, p);
}

void zinx__directory_apply(zinx__cluster_t *cl, zinx__peer_t *p,
                           const zinx__wire_msg_t *m)
{
    uint32_t ask = m->msg_id;
    switch (m->kind) {
    case ZINX__WIRE_CONN_UP:
        apply_event(cl, p, m, 1);
        break;
    case ZINX__WIRE_CONN_DOWN:
        apply_event(cl, p, m, 0);
        break;
    case ZINX__WIRE_SNAPSHOT:
        apply_snapshot(cl, p, m);
        if ((m->flags & ZINX__WIRE_LAST) &&
            (ask == cl->node || ask == UINT32_MAX))
            zinx__directory_publish(cl, 0);
        break;
    default:
        break;
    }
}

/* ---- our own ---------------------------------------------------------- */

/* IDs per snapshot part: what fits NATS's max payload, at most 8192. */
static uint32_t part_ids(const zinx__cluster_t *cl)
{
    int64_t room = (cl->max_payload - ZINX__WIRE_HEADER) / 8;
    return room > 8192 ? 8192 : room < 1 ? 1 : (uint32_t)room;
}

/* Under elock. */
static void publish_parts(zinx__cluster_t *cl, uint32_t ask)
{
    uint32_t per = part_ids(cl);
    uint64_t *ids = malloc((size_t)per * sizeof(*ids));
    if (ids == NULL)
        return;
    zinx__wire_msg_t h = {.kind = ZINX__WIRE_SNAPSHOT,
                          .flags = ZINX__WIRE_FIRST,
                          .node = cl->node,
                          .instance = cl->instance,
                          .msg_id = ask};
    size_t left = cl->local.n;
    uint32_t n = 0;
    for (size_t i = 0; i <= cl->local.cap; i++) {
        bool end = i == cl->local.cap;
        if (!end && cl->local.slots[i] != 0) {
            ids[n++] = cl->local.slots[i];
            left--;
        }
        if (n == per || (end && (n > 0 || (h.flags & ZINX__WIRE_FIRST)))) {
            if (left == 0 || end)
                h.flags |= ZINX__WIRE_LAST;
            h.count = n;
            zinx__route_send(cl, cl->subj_all, &h, ids, NULL, 0, NULL, 0);
            if (h.flags & ZINX__WIRE_LAST)
                break;
            h.flags = 0;
            n = 0;
        }
    }
    free(ids);
}

void zinx__directory_publish(zinx__cluster_t *cl, uint32_t ask)
{
    pthread_mutex_lock(&cl->elock);
    publish_parts(cl, ask);
    pthread_mutex_unlock(&cl->elock);
}

void zinx__cluster_conn_event(zinx_server_t *s, uint64_t id, int up)
{
    zinx__cluster_t *cl = s->cluster;
    if (!atomic_load(&cl->joined))
        return;
    pthread_mutex_lock(&cl->elock);
    if (up)
        zinx__idset_add(&cl->local, id);
    else
        zinx__idset_remove(&cl->local, id);
    zinx__wire_msg_t h = {.kind =
                              up ? ZINX__WIRE_CONN_UP : ZINX__WIRE_CONN_DOWN,
                          .node = cl->node,
                          .instance = cl->instance};
    h.count = 1;
    if (atomic_load(&cl->member))
        zinx__route_send(cl, cl->subj_all, &h, &id, NULL, 0, NULL, 0);
    pthread_mutex_unlock(&cl->elock);
}
