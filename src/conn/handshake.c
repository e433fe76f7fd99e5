/*
 * A connection's handshakes: the time between its adoption and its
 * opening, while the layers of its stack (PROXY header, TLS, WebSocket
 * upgrade) finish theirs. No hook runs and no frame is read; only
 * HandshakeTimeoutMs is armed. Then the connection opens as an accepted
 * socket does, or fails, counted by the layer that refused it.
 */
#include "conn/conn_private.h"

/* The lowest layer whose handshake is not over: the one that failed. */
static zinx__stream_t *unfinished_layer(zinx__stream_t *s)
{
    zinx__stream_t *found = NULL;
    for (; s != NULL; s = s->lower)
        if (!s->handshaken)
            found = s;
    return found;
}

static atomic_uint_least64_t *failure_counter(zinx_server_t *s,
                                              zinx__layer_kind_t kind)
{
    switch (kind) {
    case ZINX__LAYER_PROXY:
        return &s->stats.proxy_refused;
    case ZINX__LAYER_TLS:
        return &s->stats.tls_failed;
    case ZINX__LAYER_WEBSOCKET:
        return &s->stats.ws_refused;
    default:
        return &s->stats.handshake_failed;
    }
}

static void handshake_failed(zinx_conn_t *c, int err)
{
    zinx__stream_t *layer = unfinished_layer(c->stream);
    zinx__layer_kind_t kind =
        layer != NULL ? layer->ops->kind : ZINX__LAYER_TRANSPORT;
    atomic_fetch_add_explicit(failure_counter(c->server, kind), 1,
                              memory_order_relaxed);
    ZINX__LOG_LIMITED(c->server, ZINX__LOGK_HANDSHAKE, ZINX_LOG_INFO,
                      "conn %llu (%s): %s handshake failed: %s, closing",
                      (unsigned long long)c->id, c->stream->remote,
                      layer != NULL ? layer->ops->name : "stream",
                      layer != NULL && layer->why != NULL ? layer->why
                                                          : zinx_strerror(err));
    conn_set_reason(c, err);
    conn_finish(c, FINISH_ABORT);
}

/* Every handshake is over: the connection opens as an accepted socket
   does, its hooks and deadlines start, and what the layers already hold
   is read at once (no event of the socket may come for it). */
static void open_after_handshake(zinx_conn_t *c)
{
    c->state = CONN_OPEN;
    /* From now on the top layer reports to the open connection's
       handler; the handshake's costs nothing per message after. */
    ((zinx__layer_t *)c->stream)->on_ready = conn_on_stream_ready;
    c->started = true;
    /* Release: a thread that finds c in the manager sees its final
       addresses. */
    atomic_store_explicit(&c->shown, true, memory_order_release);
    conn_schedule_start(c);
    conn_start_deadlines(c);
    if (c->dialer != NULL)
        zinx__dialer_conn_opened(c->dialer, c);
    conn_on_readable(c);
    /* Layers with nothing left to do (a PROXY header read, the bytes
       behind it served) are stepped over from now on. */
    if (!c->closed)
        c->io = zinx__stream_skip(c->stream, conn_on_stream_ready, c);
    if (c->state != CONN_FINISHED)
        conn_schedule(c);
}

/* A layer answered the peer itself (a page on the WebSocket port): the
   connection ends unopened, neither a failure nor a connection of the
   server's hooks. */
static void handshake_served(zinx_conn_t *c)
{
    ZINX__LOG(c->server, ZINX_LOG_DEBUG, "conn %llu (%s): served a page",
              (unsigned long long)c->id, c->stream->remote);
    conn_finish(c, FINISH_ABORT);
}

static void handshake_step(zinx_conn_t *c)
{
    int rc = zinx__stream_handshake(c->stream);
    if (rc == ZINX_EAGAIN)
        return;
    if (rc == ZINX__HS_SERVED)
        handshake_served(c);
    else if (rc != 0)
        handshake_failed(c, rc);
    else
        open_after_handshake(c);
}

static void on_handshake_ready(void *owner, uint32_t events)
{
    zinx_conn_t *c = owner;
    if (c->closed || c->state != CONN_HANDSHAKE)
        return;
    handshake_step(c);
    if (c->state == CONN_HANDSHAKE &&
        (events & (ZINX__EV_ERROR | ZINX__EV_HUP)))
        handshake_failed(c, c->stream->ops->error(c->stream));
}

void conn_handshake_timer(zinx_conn_t *c, uint64_t now)
{
    if (c->handshake_deadline_ms == 0 || now < c->handshake_deadline_ms) {
        if (c->handshake_deadline_ms != 0)
            zinx__loop_timer_arm(c->loop, &c->timer, c->handshake_deadline_ms);
        return;
    }
    conn_close_for(c, &c->server->stats.timeouts, ZINX__LOGK_TIMEOUT,
                   ZINX_ETIMEDOUT, "handshake not completed in time");
}

/* Adoption of a connection whose stack has handshakes: no hook, no
   message, no deadline but the handshake's until they are over. */
void conn_adopt_handshaking(zinx_conn_t *c)
{
    c->state = CONN_HANDSHAKE;
    int rc = c->stream->ops->start(c->stream, c->loop, on_handshake_ready, c);
    if (rc != 0) {
        conn_fail(c, rc);
        return;
    }
    uint32_t ms = c->server->cfg.handshake_timeout_ms;
    if (ms != 0) {
        c->handshake_deadline_ms = zinx__loop_now(c->loop) + ms;
        zinx__loop_timer_arm(c->loop, &c->timer, c->handshake_deadline_ms);
    }
    handshake_step(c);
}
