/*
 * A connection's properties: named values with optional destructors,
 * set and read from any thread, released after OnConnStop.
 */
#include <stdlib.h>
#include <string.h>

#include "conn/conn_private.h"

void conn_free_props(property_t *p)
{
    while (p != NULL) {
        property_t *next = p->next;
        if (p->free_fn != NULL)
            p->free_fn(p->value);
        free(p);
        p = next;
    }
}

static property_t **find_prop(zinx_conn_t *c, const char *key)
{
    property_t **pp = &c->props;
    while (*pp != NULL && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

int zinx_conn_set_property(zinx_conn_t *c, const char *key, void *value,
                           zinx_property_free_fn free_fn)
{
    if (c == NULL || key == NULL)
        return ZINX_EINVAL;
    size_t klen = strlen(key);
    property_t *np = malloc(sizeof(*np) + klen + 1);
    if (np == NULL)
        return ZINX_ENOMEM;
    memcpy(np->key, key, klen + 1);
    np->value = value;
    np->free_fn = free_fn;
    np->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->props_released) {
        pthread_mutex_unlock(&c->lock);
        free(np);
        return ZINX_ECLOSED;
    }
    property_t **pp = find_prop(c, key);
    property_t *old = *pp;
    if (old != NULL)
        np->next = old->next;
    *pp = np;
    pthread_mutex_unlock(&c->lock);
    if (old != NULL) {
        old->next = NULL;
        conn_free_props(old); /* outside the lock: free_fn is user code */
    }
    return 0;
}

int zinx_conn_get_property(zinx_conn_t *c, const char *key, void **value)
{
    if (c == NULL || key == NULL || value == NULL)
        return ZINX_EINVAL;
    pthread_mutex_lock(&c->lock);
    property_t *p = *find_prop(c, key);
    if (p != NULL)
        *value = p->value;
    pthread_mutex_unlock(&c->lock);
    return p != NULL ? 0 : ZINX_ENOENT;
}

int zinx_conn_remove_property(zinx_conn_t *c, const char *key)
{
    if (c == NULL || key == NULL)
        return ZINX_EINVAL;
    pthread_mutex_lock(&c->lock);
    property_t **pp = find_prop(c, key);
    property_t *p = *pp;
    if (p != NULL)
        *pp = p->next;
    pthread_mutex_unlock(&c->lock);
    if (p == NULL)
        return ZINX_ENOENT;
    p->next = NULL;
    conn_free_props(p);
    return 0;
}
