/*
 * A connection's output: sending (from any thread), writing to the
 * stream, the output limits, and the lingering close.
 */
#include <string.h>

#include "conn/conn_private.h"

void conn_set_interest(zinx_conn_t *c)
{
    if (c->closed)
        return;
    uint32_t ev = 0;
    if (c->lingering) {
        ev = ZINX__EV_READ;
    } else {
        bool full = conn_output_full(c);
        if (c->state == CONN_OPEN && !conn_frames_held(c) && !full &&
            !atomic_load_explicit(&c->user_hold, memory_order_relaxed))
            ev |= ZINX__EV_READ;
    }
    if (conn_out_size(c) > 0)
        ev |= ZINX__EV_WRITE;
    /* Most attentions change nothing. On failure `want` keeps what the
       stream has, so the next attention tries again. */
    if (ev != c->want && zinx__stream_want(c->io, ev) == 0)
        c->want = ev;
}

/* Writes what it can of `out`. Returns 0 (perhaps with bytes left for
   a later write event) or a negative error; never ends the connection
   itself. */
static int write_out(zinx_conn_t *c)
{
    while (zinx__buf_size(&c->out) > 0) {
        struct iovec iov = {.iov_base = (void *)zinx__buf_head(&c->out),
                            .iov_len = zinx__buf_size(&c->out)};
        ssize_t n = conn_writev(c, &iov, 1);
        if (n == ZINX_EAGAIN)
            return 0;
        if (n <= 0)
            return n < 0 ? (int)n : ZINX_EPIPE;
        zinx__buf_consume(&c->out, (size_t)n);
        atomic_fetch_sub_explicit(&c->unsent, (size_t)n, memory_order_relaxed);
        if (zinx__buf_size(&c->out) == 0)
            c->last_io_ms = zinx__loop_now(c->loop);
        else if (c->stall_since_ms != 0)
            c->stall_since_ms = zinx__loop_now(c->loop); /* the peer reads */
    }
    return 0;
}

/* write_out, or with a broadcast's segments queued among the bytes,
   their walk; kept apart so that the plain loop stays as it was. */
static int write_all(zinx_conn_t *c)
{
    return c->outq.count == 0 ? write_out(c) : conn_write_shared(c);
}

bool conn_take_pending(zinx_conn_t *c)
{
    /* Nothing pending when all unsent bytes are in `out`. A send that is
       under way is seen at the attention its poke brings, so a stale
       read here loses nothing, and an idle connection takes no lock. */
    if (atomic_load_explicit(&c->unsent, memory_order_relaxed) ==
        conn_out_size(c))
        return true;
    pthread_mutex_lock(&c->lock);
    int rc = c->pendq.count == 0 ? zinx__buf_move(&c->out, &c->pending)
                                 : conn_take_shared(c);
    pthread_mutex_unlock(&c->lock);
    if (rc != 0) {
        conn_fail(c, rc);
        return false;
    }
    return true;
}

bool conn_flush(zinx_conn_t *c)
{
    int rc = write_all(c);
    if (rc != 0) {
        conn_fail(c, rc);
        return false;
    }
    return true;
}

/* ---- lingering close ------------------------------------------------------
 */

/* A finished connection sends what is left, then its FIN, then waits for
   the peer's EOF: closing with unread input would send RST and could
   destroy data the peer has not read yet (lingering close). */
void conn_linger_step(zinx_conn_t *c)
{
    if (write_all(c) != 0) {
        conn_close_stream(c);
        return;
    }
    if (conn_out_size(c) == 0) {
        if (c->peer_eof) {
            conn_close_stream(c);
            return;
        }
        if (!c->wr_shut) {
            c->stream->ops->shutdown(c->stream);
            c->wr_shut = true;
        }
    }
    conn_set_interest(c);
}

/* Reads and discards: nobody listens any more, but unread input must not
   turn our close into a reset. Returns false once the stream is closed. */
static bool linger_read(zinx_conn_t *c)
{
    size_t cap;
    uint8_t *rbuf = zinx__shard_rbuf(c->shard, &cap);
    for (;;) {
        ssize_t n = zinx__stream_read(c->io, rbuf, cap);
        if (n > 0)
            continue;
        if (n == ZINX_EAGAIN)
            return true;
        if (n == 0 && conn_out_size(c) > 0) {
            c->peer_eof = true; /* it may still read what we owe it */
            return true;
        }
        conn_close_stream(c);
        return false;
    }
}

void conn_on_linger_events(zinx_conn_t *c, uint32_t events)
{
    if (events & ZINX__EV_ERROR) {
        conn_close_stream(c);
        return;
    }
    if ((events & (ZINX__EV_READ | ZINX__EV_HUP)) && !linger_read(c))
        return;
    conn_linger_step(c);
}

size_t conn_linger_backlog(zinx_conn_t *c)
{
    if (c->closed)
        return 0;
    return conn_out_size(c) + c->stream->ops->unacked(c->stream);
}

/* ---- idle buffers ----------------------------------------------------- */

void conn_note_buffers(zinx_conn_t *c)
{
    if (c->retained || (c->out.cap == 0 && c->in.cap == 0))
        return;
    c->retained = true;
    zinx__shard_retain(c->shard, c);
}

bool conn_trim(zinx_conn_t *c, uint64_t idle_since)
{
    if (c->state == CONN_FINISHED) {
        c->retained = false;
        return false;
    }
    bool busy = conn_out_size(c) > 0 || zinx__buf_size(&c->in) > 0 ||
                c->last_io_ms > idle_since;
    if (busy)
        return true;
    zinx__buf_free(&c->out);
    conn_segq_drop(&c->outq); /* empty: gives its array back */
    zinx__buf_free(&c->in);
    pthread_mutex_lock(&c->lock);
    if (zinx__buf_size(&c->pending) == 0)
        zinx__buf_free(&c->pending);
    if (c->pendq.count == 0)
        conn_segq_drop(&c->pendq); /* its array */
    pthread_mutex_unlock(&c->lock);
    c->retained = false;
    return false;
}

/* ---- sending ----------------------------------------------------------- */

/* The peer reads too slowly for what we send it: Redis's hard
   client-output-buffer-limit. Closing bounds memory whatever it does. */
static int over_hard_limit(zinx_conn_t *c)
{
    /* Counted and logged once, by the send that triggers the close. */
    conn_set_reason(c, ZINX_ENOBUFS);
    if (conn_raise_close(c, CLOSE_NOW)) {
        atomic_fetch_add_explicit(&c->server->stats.slow_readers, 1,
                                  memory_order_relaxed);
        ZINX__LOG_LIMITED(c->server, ZINX__LOGK_SLOW_READER, ZINX_LOG_WARN,
                          "conn %llu (%s): unsent output would pass "
                          "OutputHardLimit %u, closing",
                          (unsigned long long)c->id, c->stream->remote,
                          c->output_hard_limit);
    }
    return ZINX_ENOBUFS;
}

/* A reply could not be queued for lack of memory: the peer's stream of
   answers has a hole, so the connection ends now (counted and logged
   once) instead of failing every later reply too. */
static void reply_lost(zinx_conn_t *c)
{
    conn_set_reason(c, ZINX_ENOMEM);
    if (!conn_raise_close(c, CLOSE_NOW))
        return;
    atomic_fetch_add_explicit(&c->server->stats.out_of_memory, 1,
                              memory_order_relaxed);
    ZINX__LOG_LIMITED(c->server, ZINX__LOGK_OOM, ZINX_LOG_WARN,
                      "conn %llu (%s): out of memory queueing a reply, "
                      "closing",
                      (unsigned long long)c->id, c->stream->remote);
}

/* The I/O thread appends to `out` directly; its flush comes at the end
   of the iteration. */
static int send_here(zinx_conn_t *c, uint32_t id, const void *data,
                     uint32_t len, size_t frame)
{
    if (c->state == CONN_FINISHED)
        return ZINX_ECLOSED;
    if (conn_gather_put(c, id, data, len))
        return 0;
    /* Not gathered: it goes behind what was. */
    int rc = conn_gather_spill(c);
    if (rc == 0)
        rc = zinx__codec_encode(c->codec, &c->out, id, data, len);
    if (rc == 0) {
        atomic_fetch_add(&c->unsent, frame);
        conn_schedule(c);
    }
    return rc;
}

/* Other threads append to `pending` under the lock, and poke the loop. */
static int send_from_afar(zinx_conn_t *c, uint32_t id, const void *data,
                          uint32_t len, size_t frame)
{
    pthread_mutex_lock(&c->lock);
    int rc = c->sendable
                 ? zinx__codec_encode(c->codec, &c->pending, id, data, len)
                 : ZINX_ECLOSED;
    if (rc == 0)
        atomic_fetch_add(&c->unsent, frame);
    pthread_mutex_unlock(&c->lock);
    if (rc == 0)
        conn_nudge(c);
    return rc;
}

/* ---- replies staged by a worker ------------------------------------------ */

/* Staged replies are moved to `pending` at least this often, so that the
   scratch stays small and the loop can start writing. */
#define STAGE_FLUSH_BYTES (64u * 1024u)
/* A scratch grown above this by a large batch is given back after it. */
#define STAGE_KEEP_BYTES (256u * 1024u)

void conn_stage_begin(zinx_conn_t *c)
{
    c->staging = true;
}

/* Moves the staged replies to `pending` and wakes the loop. Replies to a
   connection that finished meanwhile are dropped, as they would have
   been from `pending`. */
static void stage_flush(zinx_conn_t *c)
{
    zinx__buf_t *st = zinx__worker_scratch(c->worker);
    size_t n = zinx__buf_size(st);
    if (n == 0)
        return;
    pthread_mutex_lock(&c->lock);
    int rc = c->sendable ? zinx__buf_append(&c->pending, zinx__buf_head(st), n)
                         : ZINX_ECLOSED;
    pthread_mutex_unlock(&c->lock);
    st->off = st->len = 0;
    if (rc != 0) {
        atomic_fetch_sub(&c->unsent, n);
        if (rc == ZINX_ENOMEM)
            reply_lost(c);
        return;
    }
    conn_nudge(c);
}

void conn_stage_end(zinx_conn_t *c)
{
    c->staging = false;
    stage_flush(c);
    zinx__buf_t *st = zinx__worker_scratch(c->worker);
    if (st->cap > STAGE_KEEP_BYTES)
        zinx__buf_free(st);
}

/* Whether a send to c comes from the worker running c's batch. Only that
   thread reads `staging`, so the worker test comes first. */
static bool staged_here(const zinx_conn_t *c)
{
    return c->worker != NULL && zinx__worker_is_self(c->worker) && c->staging;
}

static int stage(zinx_conn_t *c, uint32_t id, const void *data, uint32_t len,
                 size_t frame)
{
    zinx__buf_t *st = zinx__worker_scratch(c->worker);
    int rc = zinx__codec_encode(c->codec, st, id, data, len);
    if (rc != 0)
        return rc;
    atomic_fetch_add(&c->unsent, frame);
    if (zinx__buf_size(st) >= STAGE_FLUSH_BYTES)
        stage_flush(c);
    return 0;
}

/* After close_now nothing more may leave, even before the I/O thread
   has acted on it; a graceful close still lets replies out. */
static inline bool refuses_sends(const zinx_conn_t *c)
{
    return atomic_load(&c->finished) || atomic_load(&c->close_req) == CLOSE_NOW;
}

int zinx_conn_can_send(const zinx_conn_t *c)
{
    return c != NULL && !refuses_sends(c);
}

int zinx_conn_send_msg(zinx_conn_t *c, uint32_t id, const void *data,
                       uint32_t len)
{
    if (c == NULL || (data == NULL && len > 0))
        return ZINX_EINVAL;
    if (len > c->max_packet_size)
        return ZINX_EMSGSIZE;
    if (refuses_sends(c))
        return ZINX_ECLOSED;
    size_t frame = zinx__codec_frame_len(c->codec, len);
    bool here = zinx__loop_is_self(c->loop);
    size_t queued = atomic_load(&c->unsent) + (here ? conn_gathered(c) : 0);
    if (c->output_hard_limit != 0 && queued + frame > c->output_hard_limit)
        return over_hard_limit(c);
    int rc = here             ? send_here(c, id, data, len, frame)
             : staged_here(c) ? stage(c, id, data, len, frame)
                              : send_from_afar(c, id, data, len, frame);
    if (rc == 0) {
        /* Read once: the atomic below makes the compiler load it again. */
        zinx_server_t *s = c->server;
        atomic_fetch_add_explicit(&s->stats.msgs_out, 1, memory_order_relaxed);
        if (s->metrics != NULL)
            zinx__metrics_sent(s, id, 1);
        return 0;
    }
    if (rc == ZINX_ENOMEM)
        reply_lost(c);
    return rc;
}

/* ---- shared segments (notify, broadcast) ----------------------------------
 */

/* On the loop: behind what was gathered and what `out` holds. */
static int send_shared_here(zinx_conn_t *c, zinx__seg_t *seg)
{
    if (c->state == CONN_FINISHED)
        return ZINX_ECLOSED;
    int rc = conn_gather_spill(c);
    if (rc == 0)
        rc = conn_segq_push(&c->outq, zinx__buf_size(&c->out), seg);
    if (rc == 0) {
        atomic_fetch_add(&c->unsent, seg->len);
        conn_schedule(c);
    }
    return rc;
}

/* Elsewhere: into `pending`, behind what this thread sent before; a
   worker staging c's replies moves them there first. */
static int send_shared_afar(zinx_conn_t *c, zinx__seg_t *seg)
{
    if (staged_here(c))
        stage_flush(c);
    pthread_mutex_lock(&c->lock);
    int rc = c->sendable
                 ? conn_segq_push(&c->pendq, zinx__buf_size(&c->pending), seg)
                 : ZINX_ECLOSED;
    if (rc == 0)
        atomic_fetch_add(&c->unsent, seg->len);
    pthread_mutex_unlock(&c->lock);
    if (rc == 0)
        conn_nudge(c);
    return rc;
}

int zinx__conn_send_shared(zinx_conn_t *c, zinx__seg_t *seg)
{
    if (!zinx__seg_fits(seg, c))
        return ZINX_EINVAL;
    if (atomic_load(&c->finished) || atomic_load(&c->close_req) == CLOSE_NOW)
        return ZINX_ECLOSED;
    bool here = zinx__loop_is_self(c->loop);
    size_t queued = atomic_load(&c->unsent) + (here ? conn_gathered(c) : 0);
    /* Shared bytes count against the limits as copied ones do. */
    if (c->output_hard_limit != 0 && queued + seg->len > c->output_hard_limit)
        return over_hard_limit(c);
    int rc = here ? send_shared_here(c, seg) : send_shared_afar(c, seg);
    if (rc == 0)
        atomic_fetch_add_explicit(&c->server->stats.msgs_out, 1,
                                  memory_order_relaxed);
    else if (rc == ZINX_ENOMEM)
        reply_lost(c);
    return rc;
}
