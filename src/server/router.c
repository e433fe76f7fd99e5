/* The message-ID routing table and running a message's chain. */
#include <stdlib.h>

#include "internal.h"

/* Fibonacci hashing spreads sequential IDs (the usual case) evenly. */
static size_t slot_of(uint32_t id, size_t cap)
{
    return (size_t)((id * 2654435769u) & (uint32_t)(cap - 1));
}

static int grow(zinx__router_table_t *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16;
    zinx__route_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return ZINX_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].used)
            continue;
        size_t j = slot_of(t->slots[i].id, cap);
        while (slots[j].used)
            j = (j + 1) & (cap - 1);
        slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

int zinx__router_table_add(zinx__router_table_t *t, uint32_t id,
                           zinx__chain_t *chain)
{
    if (zinx__router_table_find(t, id) != NULL)
        return ZINX_EEXIST;
    /* Keep the load under one half so probes stay short. */
    if ((t->count + 1) * 2 > t->cap) {
        int rc = grow(t);
        if (rc != 0)
            return rc;
    }
    size_t j = slot_of(id, t->cap);
    while (t->slots[j].used)
        j = (j + 1) & (t->cap - 1);
    t->slots[j].used = true;
    t->slots[j].id = id;
    t->slots[j].chain = *chain;
    *chain = (zinx__chain_t){0};
    t->count++;
    return 0;
}

const zinx__route_t *zinx__router_table_find(const zinx__router_table_t *t,
                                             uint32_t id)
{
    if (t->cap == 0)
        return NULL;
    for (size_t j = slot_of(id, t->cap);; j = (j + 1) & (t->cap - 1)) {
        if (!t->slots[j].used)
            return NULL;
        if (t->slots[j].id == id)
            return &t->slots[j];
    }
}

void zinx__ignore_message(zinx_request_t *req, void *udata)
{
    ZINX__UNUSED(req);
    ZINX__UNUSED(udata);
}

void zinx__router_table_free(zinx__router_table_t *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].used)
            zinx__chain_free(&t->slots[i].chain);
    free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}

/* Runs the handlers not yet started. zinx_request_next() is this same
   loop one level down: the index lives in the request, so whichever loop
   runs a handler, no other runs it again, and abort (index past any
   chain) ends every loop on the stack at once. */
static void run_chain(zinx_request_t *req)
{
    while (req->next < req->n) {
        const zinx_handler_t *h = &req->chain[req->next++];
        h->fn(req, h->udata);
    }
}

static void drop_unrouted(zinx_server_t *server, zinx_conn_t *conn,
                          const zinx_msg_t *msg)
{
    atomic_fetch_add_explicit(&server->stats.unrouted, 1, memory_order_relaxed);
    ZINX__LOG(server, ZINX_LOG_DEBUG,
              "conn %llu: no router for message ID %u, dropped",
              (unsigned long long)zinx_conn_id(conn), msg->id);
    zinx__conn_note_unrouted(conn);
}

void zinx__route_direct(zinx_server_t *server, zinx_conn_t *conn,
                        const zinx_msg_t *msg)
{
    const zinx__route_t *r = zinx__router_table_find(&server->routes, msg->id);
    const zinx__chain_t *c;
    if (r != NULL) {
        c = &r->chain;
    } else if (server->has_fallback) {
        c = &server->fallback;
    } else {
        drop_unrouted(server, conn, msg);
        return;
    }
    /* A chain is never empty (zinx__chain_resolve), and nothing can have
       aborted before the first handler: it is called straight, which
       keeps a one-handler route as cheap as a classic router was. */
    zinx_request_t req = {
        .conn = conn, .msg = *msg, .chain = c->v, .n = c->n, .next = 1};
    c->v[0].fn(&req, c->v[0].udata);
    run_chain(&req);
}

void zinx__route_unmetered(zinx_server_t *server, zinx_conn_t *conn,
                           const zinx_msg_t *msg)
{
    if (server->nicpt != 0)
        zinx__intercept(server, conn, msg);
    else
        zinx__route_direct(server, conn, msg);
}

void zinx__route_message(zinx_server_t *server, zinx_conn_t *conn,
                         const zinx_msg_t *msg)
{
    /* The one branch a server without interceptors or metrics pays. */
    if (!server->route_extra)
        zinx__route_direct(server, conn, msg);
    else if (server->metrics != NULL)
        zinx__metrics_route(server, conn, msg);
    else
        zinx__intercept(server, conn, msg);
}

zinx_conn_t *zinx_request_conn(const zinx_request_t *req)
{
    return req->conn;
}

uint32_t zinx_request_msg_id(const zinx_request_t *req)
{
    return req->msg.id;
}

zinx_msg_t zinx__msg_view(const zinx_msg_t *m)
{
    static const uint8_t empty[1];
    zinx_msg_t v = *m;
    if (v.data == NULL)
        v.data = empty;
    return v;
}

const uint8_t *zinx_request_data(const zinx_request_t *req)
{
    return zinx__msg_view(&req->msg).data;
}

uint32_t zinx_request_data_len(const zinx_request_t *req)
{
    return req->msg.len;
}

zinx_msg_t zinx_request_msg(const zinx_request_t *req)
{
    return zinx__msg_view(&req->msg);
}

void zinx_request_abort(zinx_request_t *req)
{
    req->next = ZINX__REQ_ABORTED;
}

void zinx_request_next(zinx_request_t *req)
{
    run_chain(req);
}

int zinx_request_is_aborted(const zinx_request_t *req)
{
    return req->next == ZINX__REQ_ABORTED;
}
