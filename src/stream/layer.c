/*
 * Layers and stacks: what every layer shares (starting the stream below,
 * passing its readiness up, deferred readiness for bytes a layer holds)
 * and the walks over a connection's stack (handshakes, lookup, freeing).
 */
#include <string.h>

#include "stream/stream.h"

static void on_lower_ready(void *owner, uint32_t events)
{
    zinx__layer_t *l = owner;
    if (!l->closed)
        l->on_lower(l, events);
}

static void run_later(void *arg)
{
    zinx__layer_t *l = arg;
    uint32_t events = l->later_events;
    l->later_events = 0;
    l->later_queued = false;
    if (!l->closed && events != 0)
        l->on_ready(l->owner, events);
}

void zinx__layer_init(zinx__layer_t *l, const zinx__stream_ops_t *ops,
                      zinx__stream_t *lower, zinx__layer_lower_fn on_lower)
{
    l->base.ops = ops;
    l->base.lower = lower;
    l->base.handshaken = ops->handshake == NULL;
    memcpy(l->base.remote, lower->remote, sizeof(l->base.remote));
    memcpy(l->base.local, lower->local, sizeof(l->base.local));
    l->on_lower = on_lower;
    zinx__closure_init(&l->later, run_later, NULL, l);
}

int zinx__layer_start(zinx__stream_t *s, zinx__loop_t *loop,
                      zinx__stream_ready_fn on_ready, void *owner)
{
    zinx__layer_t *l = (zinx__layer_t *)s;
    l->loop = loop;
    l->on_ready = on_ready;
    l->owner = owner;
    return s->lower->ops->start(s->lower, loop, on_lower_ready, l);
}

void zinx__layer_notify(zinx__layer_t *l, uint32_t events)
{
    if (!l->closed && events != 0)
        l->on_ready(l->owner, events);
}

void zinx__layer_raise(zinx__layer_t *l, uint32_t events)
{
    l->later_events |= events;
    if (l->later_queued || l->closed)
        return;
    /* The closure lives in l, which is freed with its connection only
       at the end of an iteration (the shard's graveyard, in the loop's
       tick), after every deferred closure of the iteration ran. */
    l->later_queued = true;
    zinx__loop_defer(l->loop, &l->later);
}

void zinx__layer_close_lower(zinx__layer_t *l)
{
    l->closed = true;
    l->base.lower->ops->close(l->base.lower);
}

int zinx__layer_shutdown_lower(zinx__stream_t *s)
{
    return s->lower->ops->shutdown(s->lower);
}

size_t zinx__layer_unacked_lower(zinx__stream_t *s)
{
    return s->lower->ops->unacked(s->lower);
}

long zinx__layer_since_ack_lower(zinx__stream_t *s)
{
    return s->lower->ops->since_ack_ms(s->lower);
}

int zinx__layer_error_lower(zinx__stream_t *s)
{
    return s->lower->ops->error(s->lower);
}

/* ---- stacks ------------------------------------------------------------- */

int zinx__stream_handshake(zinx__stream_t *s)
{
    if (s->handshaken)
        return 0; /* and so are the streams below */
    if (s->lower != NULL) {
        int rc = zinx__stream_handshake(s->lower);
        if (rc != 0)
            return rc;
        /* The stream below may have learnt the peer's real address.
           Written only when it did: a client's connection may already
           be in its program's hands, reading these texts. */
        if (memcmp(s->remote, s->lower->remote, sizeof(s->remote)) != 0)
            memcpy(s->remote, s->lower->remote, sizeof(s->remote));
        if (memcmp(s->local, s->lower->local, sizeof(s->local)) != 0)
            memcpy(s->local, s->lower->local, sizeof(s->local));
    }
    int rc = s->ops->handshake != NULL ? s->ops->handshake(s) : 0;
    if (rc == 0)
        s->handshaken = true;
    return rc;
}

bool zinx__stream_has_handshake(const zinx__stream_t *s)
{
    for (; s != NULL; s = s->lower)
        if (s->ops->handshake != NULL)
            return true;
    return false;
}

zinx__stream_t *zinx__stream_find(zinx__stream_t *s,
                                  const zinx__stream_ops_t *ops)
{
    for (; s != NULL; s = s->lower)
        if (s->ops == ops)
            return s;
    return NULL;
}

zinx__stream_t *zinx__stream_skip(zinx__stream_t *top,
                                  zinx__stream_ready_fn on_ready, void *owner)
{
    zinx__stream_t *s = top;
    while (s->lower != NULL && s->ops->passthrough != NULL &&
           s->ops->passthrough(s) && s->lower->ops->rebind != NULL)
        s = s->lower;
    if (s != top)
        s->ops->rebind(s, on_ready, owner);
    return s;
}

zinx__stream_t *zinx__stream_bottom(zinx__stream_t *s)
{
    while (s->lower != NULL)
        s = s->lower;
    return s;
}

void zinx__stream_destroy(zinx__stream_t *s)
{
    s->ops->close(s);
    while (s != NULL) {
        zinx__stream_t *lower = s->lower;
        if (s->ops->destroy != NULL)
            s->ops->destroy(s);
        s = lower;
    }
}

bool zinx__stack_push(zinx__stack_spec_t *spec, zinx__layer_make_fn make,
                      const void *conf)
{
    if (spec->n == ZINX__STACK_MAX)
        return false;
    spec->layers[spec->n].make = make;
    spec->layers[spec->n].conf = conf;
    spec->n++;
    return true;
}

zinx__stream_t *zinx__stack_build(const zinx__stack_spec_t *spec,
                                  zinx__stream_t *bottom, int *err)
{
    zinx__stream_t *top = bottom;
    for (int i = 0; spec != NULL && i < spec->n; i++) {
        zinx__stream_t *layer = NULL;
        *err = spec->layers[i].make(spec->layers[i].conf, top, &layer);
        if (*err != 0) {
            /* Nothing started yet: free the layers made, keep bottom. */
            while (top != bottom) {
                zinx__stream_t *lower = top->lower;
                top->ops->destroy(top);
                top = lower;
            }
            return NULL;
        }
        top = layer;
    }
    return top;
}
