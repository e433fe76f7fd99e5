/*
 * The connection manager: a hash table from connection ID to connection.
 *
 * One mutex guards the table. No user code and no close path ever runs
 * under it: walks take a snapshot of references, release the lock, then
 * visit (the manager-lock deadlocks Zinx had in ClearConn cannot happen).
 */
#include <stdlib.h>
#include <time.h>

#include "internal.h"

typedef struct node {
    struct node *next;
    zinx_conn_t *conn;
    uint64_t id;
} node_t;

struct zinx_connmgr {
    pthread_mutex_t lock;
    pthread_cond_t emptied;
    node_t **buckets;
    size_t nbuckets; /* power of two */
    atomic_size_t count;
};

zinx_connmgr_t *zinx__connmgr_new(void)
{
    zinx_connmgr_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->nbuckets = 64;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    if (m->buckets == NULL) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    zinx__cond_init_monotonic(&m->emptied);
    return m;
}

void zinx__connmgr_free(zinx_connmgr_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (node_t *n = m->buckets[i], *next; n != NULL; n = next) {
            next = n->next;
            zinx_conn_unref(n->conn);
            free(n);
        }
    }
    free(m->buckets);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->emptied);
    free(m);
}

static size_t bucket_of(uint64_t id, size_t nbuckets)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (nbuckets - 1);
}

/* Doubling at load factor 1 keeps chains short; failure just means
   longer chains, never a lost entry. */
static void maybe_grow(zinx_connmgr_t *m)
{
    if (atomic_load(&m->count) < m->nbuckets)
        return;
    size_t nb = m->nbuckets * 2;
    node_t **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (node_t *n = m->buckets[i], *next; n != NULL; n = next) {
            next = n->next;
            size_t j = bucket_of(n->id, nb);
            n->next = b[j];
            b[j] = n;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

int zinx__connmgr_add(zinx_connmgr_t *m, zinx_conn_t *conn)
{
    node_t *n = malloc(sizeof(*n));
    if (n == NULL)
        return ZINX_ENOMEM;
    n->id = zinx_conn_id(conn);
    n->conn = zinx_conn_ref(conn);
    pthread_mutex_lock(&m->lock);
    size_t i = bucket_of(n->id, m->nbuckets);
    for (node_t *p = m->buckets[i]; p != NULL; p = p->next) {
        if (p->id == n->id) {
            pthread_mutex_unlock(&m->lock);
            zinx_conn_unref(n->conn);
            free(n);
            return ZINX_EEXIST;
        }
    }
    n->next = m->buckets[i];
    m->buckets[i] = n;
    atomic_fetch_add(&m->count, 1);
    maybe_grow(m);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int zinx__connmgr_remove(zinx_connmgr_t *m, uint64_t id)
{
    node_t *found = NULL;
    pthread_mutex_lock(&m->lock);
    for (node_t **pp = &m->buckets[bucket_of(id, m->nbuckets)]; *pp != NULL;
         pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            found = *pp;
            *pp = found->next;
            if (atomic_fetch_sub(&m->count, 1) == 1)
                pthread_cond_broadcast(&m->emptied);
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (found == NULL)
        return ZINX_ENOENT;
    zinx_conn_unref(found->conn); /* may free: outside the lock */
    free(found);
    return 0;
}

bool zinx__connmgr_wait_empty(zinx_connmgr_t *m, uint64_t deadline_ms)
{
    struct timespec ts = zinx__deadline_ts(deadline_ms);
    pthread_mutex_lock(&m->lock);
    while (atomic_load(&m->count) > 0) {
        if (deadline_ms == 0) {
            pthread_cond_wait(&m->emptied, &m->lock);
        } else if (pthread_cond_timedwait(&m->emptied, &m->lock, &ts) != 0 &&
                   zinx__now_ms() >= deadline_ms) {
            break;
        }
    }
    bool empty = atomic_load(&m->count) == 0;
    pthread_mutex_unlock(&m->lock);
    return empty;
}

size_t zinx_connmgr_count(const zinx_connmgr_t *m)
{
    return atomic_load(&m->count);
}

zinx_conn_t *zinx_connmgr_get(zinx_connmgr_t *m, uint64_t id)
{
    zinx_conn_t *c = NULL;
    pthread_mutex_lock(&m->lock);
    for (node_t *n = m->buckets[bucket_of(id, m->nbuckets)]; n != NULL;
         n = n->next) {
        if (n->id == id) {
            if (zinx__conn_shown(n->conn))
                c = zinx_conn_ref(n->conn);
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return c;
}

/* References to every listed connection; the caller unrefs and frees. */
static zinx_conn_t **snapshot(zinx_connmgr_t *m, size_t *n)
{
    pthread_mutex_lock(&m->lock);
    size_t count = atomic_load(&m->count);
    zinx_conn_t **all = malloc((count ? count : 1) * sizeof(*all));
    if (all != NULL) {
        size_t k = 0;
        for (size_t i = 0; i < m->nbuckets; i++) {
            for (node_t *p = m->buckets[i]; p != NULL; p = p->next)
                if (zinx__conn_shown(p->conn))
                    all[k++] = zinx_conn_ref(p->conn);
        }
        *n = k;
    }
    pthread_mutex_unlock(&m->lock);
    return all;
}

static void release(zinx_conn_t **all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        zinx_conn_unref(all[i]);
    free(all);
}

int zinx_connmgr_foreach(zinx_connmgr_t *m, zinx_conn_visit_fn visit,
                         void *udata)
{
    if (m == NULL || visit == NULL)
        return ZINX_EINVAL;
    size_t n = 0;
    zinx_conn_t **all = snapshot(m, &n);
    if (all == NULL)
        return ZINX_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = visit(all[i], udata);
    release(all, n);
    return rc;
}

size_t zinx_connmgr_ids(zinx_connmgr_t *m, uint64_t *ids, size_t cap)
{
    size_t k = 0;
    pthread_mutex_lock(&m->lock);
    size_t total = atomic_load(&m->count);
    for (size_t i = 0; i < m->nbuckets && k < cap; i++) {
        for (node_t *p = m->buckets[i]; p != NULL && k < cap; p = p->next)
            if (zinx__conn_shown(p->conn))
                ids[k++] = p->id;
    }
    pthread_mutex_unlock(&m->lock);
    return total;
}

int zinx_connmgr_close_all(zinx_connmgr_t *m, int graceful)
{
    /* No snapshot: stopping a server must work with no memory left. A
       close request only sets flags and posts the connection to its loop
       (lock- and allocation-free, no user code), so it is safe under the
       table's lock. */
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (node_t *p = m->buckets[i]; p != NULL; p = p->next) {
            if (graceful)
                zinx_conn_close(p->conn);
            else
                zinx_conn_close_now(p->conn);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}
