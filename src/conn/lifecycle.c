/*
 * A connection's life: creation and references, adoption by its loop,
 * cross-thread signalling, the close requests and the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn/conn_private.h"
#include "kcp/kcp.h"

static void run_poke(void *arg);
static void drop_poke(void *arg);
static void run_attend(void *arg);
static void conn_free(zinx_conn_t *c);

/* ---- creation and references ------------------------------------------ */

/* A connection with everything but its streams; NULL when out of memory
   (or the codec refused its state). */
static zinx_conn_t *conn_alloc(zinx_server_t *server, uint64_t id,
                               zinx__shard_t *shard, zinx__worker_t *worker,
                               uint32_t worker_id)
{
    zinx_conn_t *c = NULL;
    if (!zinx__fault(server, ZINX__ALLOC_CONN))
        c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->codec = server->codec != NULL
                   ? server->codec
                   : zinx__codec_of(server->cfg.packet_format);
    if (zinx__codec_state_new(c->codec, &c->codec_state) != 0) {
        free(c); /* the codec refused it, as malloc would */
        return NULL;
    }
    zinx__closure_init(&c->poke, run_poke, drop_poke, c);
    zinx__closure_init(&c->attend, run_attend, NULL, c);
    atomic_init(&c->refs, 1); /* the shard's, once adopted */
    c->id = id;
    c->server = server;
    c->shard = shard;
    c->loop = zinx__shard_loop(shard);
    c->gather = zinx__shard_gather(shard);
    c->worker = worker;
    c->worker_id = worker_id;
    c->max_packet_size = server->cfg.max_packet_size;
    c->output_hard_limit = server->cfg.output_hard_limit;
    c->high_water = server->cfg.output_high_water;
    c->state = CONN_NEW;
    c->sendable = true;
    c->postable = true;
    atomic_init(&c->open, true);
    zinx__timer_init(&c->timer, conn_on_timer, c);
    pthread_mutex_init(&c->lock, NULL);
    conn_init_jobs(c);
    return c;
}

/* Puts stack's layers over bottom (c's transport). On failure frees c
   and, with it, the transport. */
static zinx_conn_t *conn_stack(zinx_conn_t *c, zinx__stream_t *bottom,
                               const zinx__stack_spec_t *stack)
{
    int err = 0;
    c->stream = zinx__stack_build(stack, bottom, &err);
    if (c->stream == NULL) {
        c->stream = c->io = bottom; /* closes the transport */
        conn_free(c);
        return NULL;
    }
    c->io = c->stream;
    c->handshaking =
        c->stream != bottom && zinx__stream_has_handshake(c->stream);
    atomic_init(&c->shown, !c->handshaking);
    return c;
}

zinx_conn_t *zinx__conn_new(zinx_server_t *server, int fd, uint64_t id,
                            zinx__shard_t *shard, zinx__worker_t *worker,
                            uint32_t worker_id, const zinx__stack_spec_t *stack)
{
    zinx_conn_t *c = conn_alloc(server, id, shard, worker, worker_id);
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    return conn_stack(c, zinx__transport_init(&c->transport, c->loop, fd),
                      stack);
}

zinx_conn_t *zinx__conn_new_kcp(zinx_server_t *server,
                                struct zinx__kcp_session *sess, uint64_t id,
                                zinx__shard_t *shard, zinx__worker_t *worker,
                                uint32_t worker_id)
{
    zinx_conn_t *c = conn_alloc(server, id, shard, worker, worker_id);
    if (c == NULL) {
        zinx__kcp_session_discard(sess);
        return NULL;
    }
    return conn_stack(c, zinx__kcp_stream_init(&c->transport.kcp, sess), NULL);
}

static void conn_free(zinx_conn_t *c)
{
    zinx__stream_destroy(c->stream);
    zinx__codec_state_free(c->codec, c->codec_state);
    zinx__buf_free(&c->in);
    zinx__buf_free(&c->out);
    zinx__buf_free(&c->pending);
    conn_segq_drop(&c->outq);
    conn_segq_drop(&c->pendq);
    conn_free_props(c->props);
    conn_free_close_callbacks(c);
    if (c->dialer != NULL)
        zinx__dialer_unref(c->dialer);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

zinx_conn_t *zinx_conn_ref(zinx_conn_t *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void zinx_conn_unref(zinx_conn_t *c)
{
    if (c == NULL)
        return;
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        conn_free(c);
}

/* ---- accessors ------------------------------------------------------------
 */

uint64_t zinx_conn_id(const zinx_conn_t *c)
{
    return c->id;
}

zinx_server_t *zinx_conn_server(const zinx_conn_t *c)
{
    return c->server;
}

const char *zinx_conn_remote_addr(const zinx_conn_t *c)
{
    return c->stream->remote;
}

const char *zinx_conn_local_addr(const zinx_conn_t *c)
{
    return c->stream->local;
}

bool zinx__conn_shown(const zinx_conn_t *c)
{
    return atomic_load_explicit(&c->shown, memory_order_acquire);
}

const char *zinx_conn_peer_addr(const zinx_conn_t *c)
{
    return zinx__stream_bottom(c->stream)->remote;
}

uint32_t zinx_conn_worker_id(const zinx_conn_t *c)
{
    return c->worker_id;
}

int zinx_conn_is_open(const zinx_conn_t *c)
{
    return atomic_load(&c->open);
}

void zinx_conn_set_data(zinx_conn_t *c, void *data)
{
    c->user_data = data;
}

void *zinx_conn_data(const zinx_conn_t *c)
{
    return c->user_data;
}

int zinx_conn_close_reason(const zinx_conn_t *c)
{
    return c == NULL ? ZINX_EINVAL : atomic_load(&c->close_reason);
}

struct zinx__stream *zinx__conn_stream(const zinx_conn_t *c)
{
    return c->stream;
}

void zinx__conn_set_dialer(zinx_conn_t *c, zinx_dialer_t *d)
{
    c->dialer = zinx__dialer_ref(d);
}

void zinx__conn_hold(zinx_conn_t *c, bool hold)
{
    if (atomic_exchange(&c->user_hold, hold) && !hold)
        conn_nudge(c); /* held frames and reading go on */
}

size_t zinx__conn_unsent(const zinx_conn_t *c)
{
    return atomic_load(&c->unsent);
}

size_t zinx__conn_high_water(const zinx_conn_t *c)
{
    return c->high_water;
}

/* ---- signalling -------------------------------------------------------- */

static void poke(zinx_conn_t *c)
{
    if (atomic_exchange(&c->poked, true))
        return; /* posted already: attended to later */
    zinx_conn_ref(c);
    zinx__loop_post(c->loop, &c->poke);
}

void conn_schedule(zinx_conn_t *c)
{
    if (c->in_attend)
        return;
    c->in_attend = true;
    zinx__loop_defer(c->loop, &zinx_conn_ref(c)->attend);
}

void conn_nudge(zinx_conn_t *c)
{
    if (zinx__loop_is_self(c->loop))
        conn_schedule(c);
    else
        poke(c);
}

static void run_poke(void *arg)
{
    zinx_conn_t *c = arg;
    /* Off the posted stack from here on: a poke now must post again. */
    atomic_store(&c->poked, false);
    conn_attend(c);
    zinx_conn_unref(c); /* the post's reference */
}

static void drop_poke(void *arg)
{
    zinx_conn_unref(arg);
}

static void run_attend(void *arg)
{
    zinx_conn_t *c = arg;
    c->in_attend = false;
    conn_attend(c);
    zinx_conn_unref(c);
}

void zinx__conn_adopt_later(zinx_conn_t *c)
{
    /* The post takes a reference of its own; the creation reference
       becomes the shard's when the loop adopts the connection. */
    poke(c);
}

/* ---- the end ------------------------------------------------------------ */

void conn_set_reason(zinx_conn_t *c, int err)
{
    int none = 0;
    atomic_compare_exchange_strong(&c->close_reason, &none, err);
}

void conn_fail(zinx_conn_t *c, int err)
{
    conn_set_reason(c, err);
    if (err == ZINX_ENOMEM) {
        /* One connection pays for the shortage; the loop goes on. */
        atomic_fetch_add_explicit(&c->server->stats.out_of_memory, 1,
                                  memory_order_relaxed);
        ZINX__LOG_LIMITED(c->server, ZINX__LOGK_OOM, ZINX_LOG_WARN,
                          "conn %llu (%s): out of memory, closing",
                          (unsigned long long)c->id, c->stream->remote);
    } else {
        ZINX__LOG(c->server, ZINX_LOG_DEBUG, "conn %llu (%s): closed: %s",
                  (unsigned long long)c->id, c->stream->remote,
                  zinx_strerror(err));
    }
    conn_finish(c, FINISH_ABORT);
}

void conn_close_for(zinx_conn_t *c, atomic_uint_least64_t *counter,
                    zinx__log_kind_t kind, int reason, const char *why)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    ZINX__LOG_LIMITED(c->server, kind, ZINX_LOG_INFO,
                      "conn %llu (%s): %s, closing", (unsigned long long)c->id,
                      c->stream->remote, why);
    conn_set_reason(c, reason);
    conn_finish(c, FINISH_ABORT);
}

void conn_close_stream(zinx_conn_t *c)
{
    if (c->closed)
        return;
    c->closed = true;
    c->lingering = false;
    c->stream->close_reason = atomic_load(&c->close_reason);
    c->stream->ops->close(c->stream);
    zinx__shard_bury(c->shard, c); /* the shard's reference */
}

static void release_timer(zinx_conn_t *c)
{
    zinx__loop_timer_cancel(c->loop, &c->timer);
    if (c->has_timer) {
        c->has_timer = false;
        zinx__loop_reserve_timers(c->loop, -1);
    }
}

/* No more sends: what other threads queued is dropped. */
static void refuse_sends(zinx_conn_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->sendable = false;
    size_t dropped = zinx__buf_size(&c->pending) + c->pendq.bytes;
    zinx__buf_free(&c->pending);
    zinx__segq_t segs = c->pendq;
    memset(&c->pendq, 0, sizeof(c->pendq));
    pthread_mutex_unlock(&c->lock);
    conn_segq_drop(&segs); /* their references, outside the lock */
    atomic_fetch_sub(&c->unsent, dropped);
}

/* Ends the connection: no more sends, no more handlers queued after the
   ones already there, OnConnStop scheduled behind them. */
void conn_finish(zinx_conn_t *c, enum finish_how how)
{
    if (c->state == CONN_FINISHED)
        return;
    /* Gathered replies go with `out`: flushed when it is, else dropped. */
    if (how == FINISH_FLUSH && !c->closed && conn_gather_spill(c) != 0)
        how = FINISH_ABORT;
    conn_gather_drop(c);
    c->state = CONN_FINISHED;
    atomic_store(&c->open, false);
    atomic_store(&c->finished, true);
    /* Parked messages run now (their sends fail), and posted jobs, all
       before OnConnStop. */
    if (c->worker != NULL)
        zinx__worker_close_lane(c->worker, &c->lane);
    conn_close_jobs(c);
    release_timer(c);
    refuse_sends(c);
    zinx__buf_free(&c->in);
    if (how == FINISH_ABORT || c->closed) {
        zinx__buf_free(&c->out);
        conn_segq_drop(&c->outq);
        atomic_store(&c->unsent, 0);
        conn_close_stream(c);
    } else {
        c->lingering = true;
        conn_linger_step(c);
        if (!c->closed) /* still waiting: bound the wait */
            zinx__shard_linger(c->shard, c);
    }
    conn_schedule_stop(c);
}

void conn_begin_drain(zinx_conn_t *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->state = CONN_DRAINING;
    atomic_store(&c->open, false);
    atomic_store(&c->draining, true);
}

bool conn_raise_close(zinx_conn_t *c, int how)
{
    if (atomic_load(&c->finished))
        return false;
    int cur = atomic_load(&c->close_req);
    while (cur < how &&
           !atomic_compare_exchange_weak(&c->close_req, &cur, how)) {
    }
    if (cur >= how)
        return false; /* already requested at least this strongly */
    atomic_store(&c->open, false);
    conn_nudge(c);
    return true;
}

static int request_close(zinx_conn_t *c, int how)
{
    if (c == NULL)
        return ZINX_EINVAL;
    conn_raise_close(c, how);
    return 0;
}

int zinx_conn_close(zinx_conn_t *c)
{
    return request_close(c, CLOSE_GRACEFUL);
}

int zinx_conn_close_now(zinx_conn_t *c)
{
    return request_close(c, CLOSE_NOW);
}

/* ---- adoption and attention --------------------------------------------- */

/* Whether an attention would change nothing: open and reading, nothing
   unsent, no request, pause or output clock pending. Most reads of a
   request-reply exchange end so (their replies written at once). */
static bool conn_settled(zinx_conn_t *c)
{
    if (c->state != CONN_OPEN || c->want != ZINX__EV_READ ||
        conn_out_size(c) > 0 || conn_frames_held(c) || c->paused_output ||
        c->soft_since_ms != 0 || c->stall_since_ms != 0 ||
        atomic_load_explicit(&c->close_req, memory_order_relaxed) !=
            CLOSE_NONE ||
        atomic_load_explicit(&c->user_hold, memory_order_relaxed))
        return false;
    if (c->worker != NULL &&
        atomic_load_explicit(&c->lane.parked, memory_order_relaxed))
        return false;
    conn_note_buffers(c);
    return true;
}

void conn_on_stream_ready(void *owner, uint32_t events)
{
    zinx_conn_t *c = owner;
    if (c->closed)
        return;
    if (c->lingering) {
        conn_on_linger_events(c, events);
        return;
    }
    if (c->state == CONN_FINISHED)
        return;
    if (events & (ZINX__EV_ERROR | ZINX__EV_HUP | ZINX__EV_ACTIVITY)) {
        if (events & (ZINX__EV_ERROR | ZINX__EV_HUP)) {
            conn_fail(c, c->stream->ops->error(c->stream));
            return;
        }
        /* A layer saw the peer alive without data (a WebSocket ping):
           the idle and heartbeat deadlines count it as traffic. */
        c->last_rx_ms = zinx__loop_now(c->loop);
    }
    if (events & ZINX__EV_READ)
        conn_on_readable(c);
    /* Output, pauses and drain checks happen once per iteration, unless
       the read left nothing to check. */
    if (c->state != CONN_FINISHED && !conn_settled(c))
        conn_schedule(c);
}

void zinx__conn_adopt(zinx_conn_t *c)
{
    if (c->state != CONN_NEW)
        return;
    if (c->handshaking) {
        int rc = zinx__loop_reserve_timers(c->loop, 1);
        if (rc != 0) {
            c->state = CONN_OPEN; /* as below: fails like an open one */
            conn_fail(c, rc);
            return;
        }
        c->has_timer = true;
        conn_adopt_handshaking(c);
        return;
    }
    c->state = CONN_OPEN;
    c->started = true;
    /* START is queued before the first read, so it precedes every
       message of the connection on the same FIFO worker. */
    conn_schedule_start(c);
    int rc = zinx__loop_reserve_timers(c->loop, 1);
    if (rc != 0) {
        conn_fail(c, rc);
        return;
    }
    c->has_timer = true;
    rc = c->stream->ops->start(c->stream, c->loop, conn_on_stream_ready, c);
    if (rc != 0) {
        conn_fail(c, rc);
        return;
    }
    conn_start_deadlines(c);
    conn_schedule(c);
}

/* Graceful end: once no frame waits, no handler runs and nothing is
   unsent, refuse further sends and finish. */
static void try_finish_drain(zinx_conn_t *c)
{
    if (conn_frames_held(c) || atomic_load(&c->inflight) > 0)
        return;
    if (conn_out_size(c) > 0)
        return;
    pthread_mutex_lock(&c->lock);
    bool idle = zinx__buf_size(&c->pending) == 0 && c->pendq.count == 0;
    if (idle)
        c->sendable = false;
    pthread_mutex_unlock(&c->lock);
    if (idle)
        conn_finish(c, FINISH_FLUSH);
    else
        conn_schedule(c); /* a last send slipped in */
}

/* Close requests first: CLOSE_NOW drops everything, a graceful close
   stops reading. Returns false when the connection ended. */
static bool apply_close_request(zinx_conn_t *c)
{
    int req = atomic_load(&c->close_req);
    if (req == CLOSE_NOW) {
        conn_finish(c, FINISH_ABORT);
        return false;
    }
    if (req == CLOSE_GRACEFUL)
        conn_begin_drain(c);
    return true;
}

/* Attention before the connection is open: adoption, or a close asked
   for during the handshake (nothing to drain: it ends now, without
   hooks). Sends wait in `pending` for the connection to open. */
static void attend_unopened(zinx_conn_t *c)
{
    if (c->state == CONN_NEW) {
        zinx__conn_adopt(c);
        /* An open connection's adoption scheduled the attention that
           applies close requests; one still in its handshake gets none,
           so a request made before adoption (a stop right after the
           accept) is applied here, not after HandshakeTimeoutMs. */
        if (c->state != CONN_HANDSHAKE)
            return;
    }
    if (atomic_load(&c->close_req) != CLOSE_NONE)
        conn_finish(c, FINISH_ABORT);
}

void conn_attend(zinx_conn_t *c)
{
    if (c->state >= CONN_NEW) {
        attend_unopened(c);
        return;
    }
    if (c->state == CONN_FINISHED || !apply_close_request(c))
        return;
    conn_run_posted_jobs(c);
    if (!conn_take_pending(c) || !conn_flush(c))
        return;
    if (c->worker != NULL && atomic_load(&c->lane.parked) &&
        !conn_output_full(c))
        zinx__worker_unpark(c->worker, &c->lane);
    /* Held frames go on once there is room; replies of inline handlers
       then leave in a second write. */
    if (conn_frames_held(c) && !conn_output_full(c) &&
        (!conn_dispatch_buffered(c) || !conn_flush(c)))
        return;
    conn_check_output_clocks(c);
    if (c->state == CONN_DRAINING)
        try_finish_drain(c);
    if (c->state != CONN_FINISHED) {
        conn_set_interest(c);
        conn_note_buffers(c);
    }
}

/* ---- hooks --------------------------------------------------------------- */

void conn_run_start(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    if (s->on_start != NULL)
        s->on_start(c, s->on_start_udata);
    /* After the hook, as the remote hooks run after the node's own. */
    if (__builtin_expect(s->clustered, 0))
        zinx__cluster_conn_event(s, c->id, 1);
}

void conn_run_stop(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    /* A connection that never opened (its handshake failed) had no
       OnConnStart, so it gets no OnConnStop either. */
    if (s->on_stop != NULL && c->started)
        s->on_stop(c, s->on_stop_udata);
    if (__builtin_expect(s->clustered, 0) && c->started)
        zinx__cluster_conn_event(s, c->id, 0);
    /* Before the properties go: a callback may still read them. */
    conn_run_close_callbacks(c);
    pthread_mutex_lock(&c->lock);
    property_t *props = c->props;
    c->props = NULL;
    c->props_released = true;
    pthread_mutex_unlock(&c->lock);
    conn_free_props(props);
    if (c->started) /* the row counts OnConnStop's runs */
        atomic_fetch_add_explicit(&s->stats.closed, 1, memory_order_relaxed);
    if (c->dialer != NULL)
        zinx__dialer_conn_ended(c->dialer);
    /* Nothing of c runs on its worker after this job: a bound worker is
       free for the next connection (or retires). Before c leaves the
       table, so that fewer than MaxConn connections means a worker is
       free or may be made (DynamicBind's bound). */
    if (c->worker != NULL)
        zinx__pool_release(s->pool, c->worker);
    /* Last: once the table is empty the server may finish stopping. */
    zinx__connmgr_remove(s->mgr, c->id);
}
