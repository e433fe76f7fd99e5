/*
 * Keyed close callbacks (Zinx's AddCloseCallback): functions a user
 * hangs on a connection under an (owner, key) pair, run once when it
 * ends, in the order they were added, right after OnConnStop on the
 * connection's handler thread.
 *
 * The list lives under the connection's lock, so any thread may add or
 * remove; it is taken off the connection (and closed to further adds)
 * before it runs, so no callback runs under the lock and none is added
 * to a list already run.
 */
#include <stdlib.h>

#include "conn/conn_private.h"

struct zinx__close_cb {
    zinx__close_cb_t *next;
    const void *owner;
    const void *key;
    zinx_close_fn fn;
    void *udata;
};

static zinx__close_cb_t **find_cb(zinx_conn_t *c, const void *owner,
                                  const void *key)
{
    zinx__close_cb_t **pp = &c->close_cbs;
    while (*pp != NULL && ((*pp)->owner != owner || (*pp)->key != key))
        pp = &(*pp)->next;
    return pp;
}

int zinx_conn_add_close_callback(zinx_conn_t *c, const void *owner,
                                 const void *key, zinx_close_fn fn, void *udata)
{
    if (c == NULL || fn == NULL)
        return ZINX_EINVAL;
    /* Allocated before the lock: a replace then frees it again, which is
       rarer than an add and keeps the lock free of malloc. */
    zinx__close_cb_t *n = malloc(sizeof(*n));
    if (n == NULL)
        return ZINX_ENOMEM;
    *n = (zinx__close_cb_t){
        .next = NULL, .owner = owner, .key = key, .fn = fn, .udata = udata};
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    if (c->close_cbs_run) {
        rc = ZINX_ECLOSED;
    } else {
        zinx__close_cb_t **pp = find_cb(c, owner, key);
        if (*pp != NULL) {
            /* Same pair: the new function takes the old one's place. */
            (*pp)->fn = fn;
            (*pp)->udata = udata;
        } else {
            *pp = n;
            n = NULL;
        }
    }
    pthread_mutex_unlock(&c->lock);
    free(n);
    return rc;
}

int zinx_conn_remove_close_callback(zinx_conn_t *c, const void *owner,
                                    const void *key)
{
    if (c == NULL)
        return ZINX_EINVAL;
    pthread_mutex_lock(&c->lock);
    zinx__close_cb_t **pp = find_cb(c, owner, key);
    zinx__close_cb_t *gone = *pp;
    if (gone != NULL)
        *pp = gone->next;
    pthread_mutex_unlock(&c->lock);
    if (gone == NULL)
        return ZINX_ENOENT;
    free(gone);
    return 0;
}

/* Takes the list off the connection and closes it to adds. */
static zinx__close_cb_t *take_close_cbs(zinx_conn_t *c)
{
    pthread_mutex_lock(&c->lock);
    zinx__close_cb_t *list = c->close_cbs;
    c->close_cbs = NULL;
    c->close_cbs_run = true;
    pthread_mutex_unlock(&c->lock);
    return list;
}

void conn_run_close_callbacks(zinx_conn_t *c)
{
    zinx__close_cb_t *cb = take_close_cbs(c);
    while (cb != NULL) {
        zinx__close_cb_t *next = cb->next;
        cb->fn(c, cb->owner, cb->key, cb->udata);
        free(cb);
        cb = next;
    }
}

void conn_free_close_callbacks(zinx_conn_t *c)
{
    zinx__close_cb_t *cb = c->close_cbs;
    c->close_cbs = NULL;
    while (cb != NULL) {
        zinx__close_cb_t *next = cb->next;
        free(cb);
        cb = next;
    }
}
