/*
 * KCP sessions and the stream a connection reads and writes through.
 *
 * The stream maps the connection's calls onto the ARQ: a read takes
 * bytes in order, a write queues them while the send window has room
 * (then ZINX_EAGAIN: the connection keeps the rest in its output buffer,
 * where the output limits and the high-water pause of handlers apply),
 * and readiness is level-triggered, as a socket's: after every event
 * that may have changed it (datagrams, the timer, a write, a change of
 * interest) the session tells the connection what it may do now.
 *
 * Writes are flushed once per loop iteration (a deferred closure), so a
 * burst of replies leaves in full datagrams. UDP has no end of stream:
 * our shutdown is over once the peer acknowledged everything (the
 * connection then reads end of stream and its lingering close ends), and
 * a peer that stays silent for KcpIdleTimeoutMs, or leaves a segment
 * unacknowledged through ZINX__KCP_DEAD_LINK transmissions, ends the
 * session with ZINX_ETIMEDOUT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcp/session.h"

static void on_timer(zinx__timer_t *t, void *arg);
static void run_later(void *arg);

static uint32_t ms32(uint64_t now)
{
    return (uint32_t)now;
}

static void output(void *udata, const uint8_t *p, size_t len)
{
    zinx__kcp_session_t *s = udata;
    zinx__kcp_endpoint_send(s->ep, &s->addr, s->addr_len, p, len);
}

zinx__kcp_session_t *zinx__kcp_session_new(zinx__kcp_endpoint_t *ep,
                                           uint32_t conv,
                                           const struct sockaddr_storage *addr,
                                           socklen_t addr_len, uint64_t now)
{
    zinx__kcp_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    zinx__loop_t *loop = zinx__kcp_endpoint_loop(ep);
    const zinx__kcp_settings_t *set = zinx__kcp_endpoint_settings(ep);
    s->arq = zinx__kcp_new(conv, &set->arq, output, s, ms32(now));
    /* Arming its timer later can then never fail. */
    if (s->arq == NULL || zinx__loop_reserve_timers(loop, 1) != 0) {
        zinx__kcp_free(s->arq);
        free(s);
        return NULL;
    }
    s->ep = zinx__kcp_endpoint_ref(ep);
    s->conv = conv;
    memcpy(&s->addr, addr, addr_len);
    s->addr_len = addr_len;
    s->last_rx_ms = now;
    zinx__timer_init(&s->timer, on_timer, s);
    zinx__closure_init(&s->later, run_later, NULL, s); /* deferred only */
    return s;
}

static void session_free(zinx__kcp_session_t *s)
{
    if (s->admitted)
        zinx__kcp_endpoint_release(s->ep);
    zinx__kcp_free(s->arq);
    zinx__kcp_endpoint_unref(s->ep);
    free(s);
}

void zinx__kcp_session_discard(zinx__kcp_session_t *s)
{
    if (s->linked)
        zinx__kcp_endpoint_unlink(s->ep, s);
    zinx__loop_reserve_timers(zinx__kcp_endpoint_loop(s->ep), -1);
    session_free(s);
}

/* ---- driving it --------------------------------------------------------- */

/* Whether our side is done: shut down and everything acknowledged. */
static bool finished(const zinx__kcp_session_t *s)
{
    return s->shut && zinx__kcp_waiting(s->arq) == 0;
}

/* What the connection may do now, among what it wants. */
static uint32_t ready_events(const zinx__kcp_session_t *s)
{
    const zinx__kcp_stream_t *ks = s->stream;
    if (ks->on_ready == NULL) /* not started yet */
        return 0;
    if (s->error != 0)
        return ZINX__EV_ERROR;
    uint32_t ev = 0;
    if ((ks->want & ZINX__EV_READ) &&
        (zinx__kcp_readable(s->arq) > 0 || finished(s)))
        ev |= ZINX__EV_READ;
    if ((ks->want & ZINX__EV_WRITE) && zinx__kcp_writable(s->arq))
        ev |= ZINX__EV_WRITE;
    return ev;
}

static void defer(zinx__kcp_session_t *s)
{
    if (s->later_queued)
        return;
    s->later_queued = true;
    zinx__loop_defer(zinx__kcp_endpoint_loop(s->ep), &s->later);
}

static void arm(zinx__kcp_session_t *s, uint64_t now)
{
    zinx__loop_t *loop = zinx__kcp_endpoint_loop(s->ep);
    uint32_t due = zinx__kcp_check(s->arq, ms32(now));
    uint64_t at = now + (uint32_t)(due - ms32(now));
    uint32_t idle = zinx__kcp_endpoint_settings(s->ep)->idle_ms;
    if (idle != 0 && s->error == 0 && s->last_rx_ms + idle < at)
        at = s->last_rx_ms + idle;
    /* Timers due now run again in this iteration, whose clock stands
       still: never arm one there. */
    if (at <= now)
        at = now + 1;
    if (zinx__timer_armed(&s->timer) && s->timer_at == at)
        return;
    s->timer_at = at;
    zinx__loop_timer_arm(loop, &s->timer, at); /* reserved: cannot fail */
}

/* Notes a dead link or a silent peer, tells the connection what it may
   do, and sets the timer. The connection may close the stream from its
   callback: s then stays allocated (closed) until `later` frees it. */
static void service(zinx__kcp_session_t *s, uint64_t now)
{
    if (s->closed)
        return;
    uint32_t idle = zinx__kcp_endpoint_settings(s->ep)->idle_ms;
    if (s->error == 0 &&
        (zinx__kcp_dead(s->arq) || (idle != 0 && now - s->last_rx_ms >= idle)))
        s->error = ZINX_ETIMEDOUT;
    arm(s, now);
    uint32_t ev = ready_events(s);
    if (ev != 0)
        s->stream->on_ready(s->stream->owner, ev);
}

void zinx__kcp_session_input(zinx__kcp_session_t *s, const uint8_t *p, size_t n,
                             uint64_t now)
{
    if (s->closed)
        return;
    /* A datagram that names this conversation but does not parse is the
       peer's (or a spoofer's) bad luck: what parsed is kept. */
    (void)zinx__kcp_input(s->arq, p, n, ms32(now));
    s->last_rx_ms = now;
}

void zinx__kcp_session_settle(zinx__kcp_session_t *s, uint64_t now)
{
    if (s->closed)
        return;
    if (zinx__kcp_endpoint_settings(s->ep)->ack_nodelay)
        zinx__kcp_flush_acks(s->arq, ms32(now));
    service(s, now);
}

static void on_timer(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    zinx__kcp_session_t *s = arg;
    uint64_t now = zinx__loop_now(zinx__kcp_endpoint_loop(s->ep));
    zinx__kcp_update(s->arq, ms32(now));
    service(s, now);
}

static void run_later(void *arg)
{
    zinx__kcp_session_t *s = arg;
    s->later_queued = false;
    if (s->closed) {
        session_free(s);
        return;
    }
    uint64_t now = zinx__loop_now(zinx__kcp_endpoint_loop(s->ep));
    if (s->flush_due) {
        s->flush_due = false;
        zinx__kcp_flush(s->arq, ms32(now));
    }
    service(s, now);
}

/* The connection is done with it: no more events; freed by `later`, as
   it may be inside one of the session's own calls. */
static void session_close(zinx__kcp_session_t *s)
{
    zinx__loop_t *loop = zinx__kcp_endpoint_loop(s->ep);
    s->closed = true;
    s->stream = NULL;
    zinx__loop_timer_cancel(loop, &s->timer);
    zinx__loop_reserve_timers(loop, -1);
    if (s->linked)
        zinx__kcp_endpoint_unlink(s->ep, s);
    defer(s);
}

/* ---- the stream --------------------------------------------------------- */

static zinx__kcp_stream_t *ks_of(zinx__stream_t *st)
{
    return ZINX__CONTAINER_OF(st, zinx__kcp_stream_t, base);
}

static int ks_start(zinx__stream_t *st, zinx__loop_t *loop,
                    zinx__stream_ready_fn on_ready, void *owner)
{
    ZINX__UNUSED(loop); /* the endpoint's, always */
    zinx__kcp_stream_t *ks = ks_of(st);
    ks->on_ready = on_ready;
    ks->owner = owner;
    ks->want = 0;
    return 0;
}

static void ks_rebind(zinx__stream_t *st, zinx__stream_ready_fn on_ready,
                      void *owner)
{
    zinx__kcp_stream_t *ks = ks_of(st);
    ks->on_ready = on_ready;
    ks->owner = owner;
}

static ssize_t ks_read(zinx__stream_t *st, void *buf, size_t len)
{
    zinx__kcp_session_t *s = ks_of(st)->sess;
    if (s == NULL)
        return ZINX_ECLOSED;
    ssize_t n = zinx__kcp_recv(s->arq, buf, len);
    if (n != ZINX_EAGAIN)
        return n;
    if (s->error != 0)
        return s->error;
    return finished(s) ? 0 : ZINX_EAGAIN;
}

static ssize_t ks_writev(zinx__stream_t *st, const struct iovec *iov, int n)
{
    zinx__kcp_session_t *s = ks_of(st)->sess;
    if (s == NULL)
        return ZINX_ECLOSED;
    if (s->error != 0)
        return s->error;
    size_t taken = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len == 0)
            continue;
        ssize_t r = zinx__kcp_send(s->arq, iov[i].iov_base, iov[i].iov_len);
        if (r <= 0)
            break;
        taken += (size_t)r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    if (taken == 0)
        return ZINX_EAGAIN;
    s->flush_due = true;
    defer(s);
    return (ssize_t)taken;
}

static int ks_shutdown(zinx__stream_t *st)
{
    zinx__kcp_session_t *s = ks_of(st)->sess;
    if (s == NULL)
        return ZINX_ECLOSED;
    s->shut = true;
    defer(s); /* end of stream once all is acknowledged */
    return 0;
}

static int ks_want(zinx__stream_t *st, uint32_t events)
{
    zinx__kcp_stream_t *ks = ks_of(st);
    uint32_t added = events & ~ks->want;
    ks->want = events;
    /* Level-triggered: what is already possible is told at once (later
       in this iteration, never from inside this call). */
    if (ks->sess != NULL && added != 0 && ready_events(ks->sess) != 0)
        defer(ks->sess);
    return 0;
}

static size_t ks_unacked(zinx__stream_t *st)
{
    zinx__kcp_session_t *s = ks_of(st)->sess;
    return s != NULL ? zinx__kcp_unacked_bytes(s->arq) : 0;
}

static long ks_since_ack(zinx__stream_t *st)
{
    zinx__kcp_session_t *s = ks_of(st)->sess;
    if (s == NULL)
        return -1;
    uint64_t now = zinx__loop_now(zinx__kcp_endpoint_loop(s->ep));
    return (long)zinx__kcp_since_ack(s->arq, ms32(now));
}

static int ks_error(zinx__stream_t *st)
{
    zinx__kcp_session_t *s = ks_of(st)->sess;
    if (s == NULL)
        return ZINX_ECLOSED;
    return s->error != 0 ? s->error : ZINX_EPROTO;
}

static void ks_close(zinx__stream_t *st)
{
    zinx__kcp_stream_t *ks = ks_of(st);
    zinx__kcp_session_t *s = ks->sess;
    if (s == NULL)
        return;
    ks->sess = NULL;
    ks->want = 0;
    session_close(s);
}

static const zinx__stream_ops_t kcp_stream_ops = {
    .name = "kcp",
    .kind = ZINX__LAYER_TRANSPORT,
    .start = ks_start,
    .read = ks_read,
    .writev = ks_writev,
    .shutdown = ks_shutdown,
    .want = ks_want,
    .handshake = NULL,
    .unacked = ks_unacked,
    .since_ack_ms = ks_since_ack,
    .error = ks_error,
    .close = ks_close,
    .destroy = NULL,
    .rebind = ks_rebind,
    .passthrough = NULL,
};

zinx__stream_t *zinx__kcp_stream_init(zinx__kcp_stream_t *ks,
                                      zinx__kcp_session_t *sess)
{
    memset(ks, 0, sizeof(*ks));
    ks->base.ops = &kcp_stream_ops;
    ks->base.handshaken = true;
    ks->sess = sess;
    sess->stream = ks;
    zinx__addr_format(&sess->addr, sess->addr_len, ks->base.remote);
    snprintf(ks->base.local, sizeof(ks->base.local), "%s",
             zinx__kcp_endpoint_local(sess->ep));
    return &ks->base;
}
