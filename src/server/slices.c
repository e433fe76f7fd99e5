/*
 * Router slices: global middleware (Use), groups of message IDs with
 * middleware of their own, and the registration calls that resolve a
 * route's whole chain once, so that running a message never looks at
 * middleware lists: it runs one flat array (router.c).
 */
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "internal.h"

struct zinx_group {
    zinx_server_t *server;
    uint32_t start, end; /* both included */
    zinx__mw_t mw;
    zinx_group_t *next; /* the server's list */
};

static int check_handlers(const zinx_handler_t *handlers, size_t n)
{
    if (n > 0 && handlers == NULL)
        return ZINX_EINVAL;
    if (n > ZINX_CHAIN_MAX)
        return ZINX_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (handlers[i].fn == NULL)
            return ZINX_EINVAL;
    return 0;
}

int zinx__mw_append(zinx__mw_t *mw, const zinx_handler_t *handlers, size_t n)
{
    int rc = check_handlers(handlers, n);
    if (rc != 0)
        return rc;
    /* A middleware list longer than a chain could never be used. */
    if (mw->n + n > ZINX_CHAIN_MAX)
        return ZINX_EINVAL;
    if (n == 0)
        return 0;
    if (ZINX__ARRAY_RESERVE(mw->v, mw->cap, mw->n + n) != 0)
        return ZINX_ENOMEM;
    memcpy(mw->v + mw->n, handlers, n * sizeof(*handlers));
    mw->n += n;
    return 0;
}

void zinx__mw_free(zinx__mw_t *mw)
{
    ZINX__ARRAY_FREE(mw->v, mw->n, mw->cap);
}

int zinx__chain_resolve(zinx__chain_t *out, const zinx__mw_t *global,
                        const zinx__mw_t *group, const zinx_handler_t *handlers,
                        size_t n)
{
    int rc = check_handlers(handlers, n);
    if (rc != 0)
        return rc;
    size_t ng = group != NULL ? group->n : 0;
    size_t total = global->n + ng + n;
    if (total > ZINX_CHAIN_MAX)
        return ZINX_EINVAL;
    *out = (zinx__chain_t){0};
    zinx_handler_t *v = malloc((total > 0 ? total : 1) * sizeof(*v));
    if (v == NULL)
        return ZINX_ENOMEM;
    if (total == 0) {
        /* Nothing to do is still something to call: the hot path then
           calls the first handler without checking the length. */
        v[0] = (zinx_handler_t){zinx__ignore_message, NULL};
        total = 1;
    }
    if (global->n > 0)
        memcpy(v, global->v, global->n * sizeof(*v));
    if (ng > 0)
        memcpy(v + global->n, group->v, ng * sizeof(*v));
    if (n > 0)
        memcpy(v + global->n + ng, handlers, n * sizeof(*v));
    out->v = v;
    out->n = (uint32_t)total;
    return 0;
}

size_t zinx__router_steps(const zinx_router_t *r, zinx_handler_t steps[3])
{
    size_t n = 0;
    zinx_handler_fn fns[3] = {r->pre_handle, r->handle, r->post_handle};
    for (size_t i = 0; i < 3; i++)
        if (fns[i] != NULL)
            steps[n++] = (zinx_handler_t){fns[i], r->udata};
    return n;
}

void zinx__chain_free(zinx__chain_t *c)
{
    free(c->v);
    *c = (zinx__chain_t){0};
}

void zinx__groups_free(zinx_group_t *groups)
{
    while (groups != NULL) {
        zinx_group_t *next = groups->next;
        zinx__mw_free(&groups->mw);
        free(groups);
        groups = next;
    }
}

/* Resolves and registers one route; every public add goes through it. */
static int add_route(zinx_server_t *s, const zinx__mw_t *group, uint32_t id,
                     const zinx_handler_t *handlers, size_t n)
{
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    if (zinx__router_table_find(&s->routes, id) != NULL)
        return ZINX_EEXIST;
    zinx__chain_t c;
    int rc = zinx__chain_resolve(&c, &s->use, group, handlers, n);
    if (rc != 0)
        return rc;
    rc = zinx__router_table_add(&s->routes, id, &c);
    zinx__chain_free(&c); /* empty on success */
    return rc;
}

/* ---- public -------------------------------------------------------------- */

int zinx_server_add_router(zinx_server_t *s, uint32_t id,
                           const zinx_router_t *router)
{
    if (s == NULL || router == NULL)
        return ZINX_EINVAL;
    zinx_handler_t steps[3];
    size_t n = zinx__router_steps(router, steps);
    return add_route(s, NULL, id, steps, n);
}

int zinx_server_set_fallback_router(zinx_server_t *s,
                                    const zinx_router_t *router)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    zinx__chain_t c = {0};
    if (router != NULL) {
        zinx_handler_t steps[3];
        size_t n = zinx__router_steps(router, steps);
        int rc = zinx__chain_resolve(&c, &s->use, NULL, steps, n);
        if (rc != 0)
            return rc;
    }
    zinx__chain_free(&s->fallback);
    s->fallback = c;
    s->has_fallback = router != NULL;
    return 0;
}

int zinx_server_use(zinx_server_t *s, const zinx_handler_t *handlers, size_t n)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    return zinx__mw_append(&s->use, handlers, n);
}

int zinx_server_add_route(zinx_server_t *s, uint32_t id,
                          const zinx_handler_t *handlers, size_t n)
{
    if (s == NULL)
        return ZINX_EINVAL;
    return add_route(s, NULL, id, handlers, n);
}

int zinx_server_group(zinx_server_t *s, uint32_t start, uint32_t end,
                      const zinx_handler_t *handlers, size_t n,
                      zinx_group_t **group)
{
    if (s == NULL || group == NULL || start > end)
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    zinx_group_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return ZINX_ENOMEM;
    int rc = zinx__mw_append(&g->mw, handlers, n);
    if (rc != 0) {
        free(g);
        return rc;
    }
    g->server = s;
    g->start = start;
    g->end = end;
    g->next = s->groups;
    s->groups = g;
    *group = g;
    return 0;
}

int zinx_group_use(zinx_group_t *g, const zinx_handler_t *handlers, size_t n)
{
    if (g == NULL)
        return ZINX_EINVAL;
    if (!zinx__server_is_new(g->server))
        return ZINX_ESTATE;
    return zinx__mw_append(&g->mw, handlers, n);
}

int zinx_group_add_route(zinx_group_t *g, uint32_t id,
                         const zinx_handler_t *handlers, size_t n)
{
    if (g == NULL || id < g->start || id > g->end)
        return ZINX_EINVAL;
    return add_route(g->server, &g->mw, id, handlers, n);
}

int zinx_group_add_router(zinx_group_t *g, uint32_t id,
                          const zinx_router_t *router)
{
    if (router == NULL)
        return ZINX_EINVAL;
    zinx_handler_t steps[3];
    size_t n = zinx__router_steps(router, steps);
    return zinx_group_add_route(g, id, steps, n);
}
