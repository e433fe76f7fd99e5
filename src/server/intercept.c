/*
 * Interceptors: a chain of calls in front of routing (Zinx's
 * chainbuilder). Each interceptor gets its own zinx_chain_t on the stack
 * of the thread that runs the connection's handlers; proceeding builds
 * the next one there, so a message costs no allocation however many
 * interceptors see it, and each link knows whether it proceeded.
 */
#include "base/array.h"
#include "internal.h"

struct zinx_chain {
    zinx_server_t *server;
    zinx_conn_t *conn;
    zinx_msg_t msg;
    size_t index; /* the interceptor this link belongs to */
    bool proceeded;
};

/* Runs interceptor ch->index, or routing past the last one. */
static void run_link(zinx_chain_t *ch)
{
    zinx_server_t *s = ch->server;
    if (ch->index < s->nicpt) {
        const zinx__interceptor_t *i = &s->icpt[ch->index];
        i->fn(ch, i->udata);
    } else {
        zinx__route_direct(s, ch->conn, &ch->msg);
    }
}

void zinx__intercept(zinx_server_t *server, zinx_conn_t *conn,
                     const zinx_msg_t *msg)
{
    zinx_chain_t ch = {.server = server, .conn = conn, .msg = *msg};
    run_link(&ch);
}

int zinx_server_add_interceptor(zinx_server_t *s, zinx_interceptor_fn fn,
                                void *udata)
{
    if (s == NULL || fn == NULL)
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    /* Each link is a stack frame of the handler thread: keep the depth
       bounded, as a chain's. */
    if (s->nicpt >= ZINX_CHAIN_MAX)
        return ZINX_EINVAL;
    zinx__interceptor_t i = {fn, udata};
    return ZINX__ARRAY_PUSH(s->icpt, s->nicpt, s->icpt_cap, i);
}

zinx_msg_t zinx_chain_msg(const zinx_chain_t *ch)
{
    return zinx__msg_view(&ch->msg);
}

zinx_conn_t *zinx_chain_conn(const zinx_chain_t *ch)
{
    return ch->conn;
}

int zinx_chain_proceed(zinx_chain_t *ch, const zinx_msg_t *msg)
{
    if (ch == NULL || msg == NULL || (msg->len > 0 && msg->data == NULL))
        return ZINX_EINVAL;
    /* Routing a message twice would run its handlers twice: refuse. */
    if (ch->proceeded)
        return ZINX_ESTATE;
    ch->proceeded = true;
    zinx_chain_t next = {.server = ch->server,
                         .conn = ch->conn,
                         .msg = *msg,
                         .index = ch->index + 1};
    run_link(&next);
    return 0;
}
