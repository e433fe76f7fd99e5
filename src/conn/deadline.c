/*
 * A connection's clocks: the frame and idle timeouts and the output
 * limits' timers; the heartbeat (heartbeat.c) shares their timer. One timer per
 * connection is armed for the earliest of them; deadlines only move later as
 * traffic flows, so it is re-armed lazily when it fires rather than on every
 * read.
 */
#include <stdio.h>
#include <string.h>

#include "conn/conn_private.h"

static uint64_t earliest(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    return b == 0 || a < b ? a : b;
}

/* The next moment something may be due. Deadlines only move later as
   traffic flows (last_rx grows), so the timer is re-armed lazily when it
   fires rather than on every read. */
static uint64_t next_deadline(const zinx_conn_t *c)
{
    const zinx_config_t *cfg = &c->server->cfg;
    uint64_t d = c->next_beat_ms;
    if (c->state == CONN_OPEN) {
        if (cfg->frame_timeout_ms != 0 && c->frame_start_ms != 0)
            d = earliest(d, c->frame_start_ms + cfg->frame_timeout_ms);
        if (cfg->idle_timeout_ms != 0)
            d = earliest(d, c->last_rx_ms + cfg->idle_timeout_ms);
    }
    if (conn_cut_at_heartbeat_max(c))
        d = earliest(d, c->last_rx_ms + conn_heartbeat_max_ms(c));
    if (c->soft_since_ms != 0)
        d = earliest(d, c->soft_since_ms + cfg->output_soft_timeout_ms);
    if (c->stall_since_ms != 0)
        d = earliest(d, c->stall_since_ms + cfg->output_soft_timeout_ms);
    return d;
}

static void arm_at(zinx_conn_t *c, uint64_t when)
{
    if (when == 0 || c->state == CONN_FINISHED)
        return;
    if (zinx__timer_armed(&c->timer) && c->timer.deadline_ms <= when)
        return;
    /* Cannot fail: adopting the connection reserved its heap slot. */
    zinx__loop_timer_arm(c->loop, &c->timer, when);
}

/* Closes the connection if one of its deadlines passed. */
static bool expired(zinx_conn_t *c, uint64_t now)
{
    zinx_server_t *s = c->server;
    const zinx_config_t *cfg = &s->cfg;
    if (conn_frames_held(c) || c->paused_output) {
        /* Our own back-pressure holds the bytes back, not the peer. */
        c->last_rx_ms = now;
        if (c->frame_start_ms != 0)
            c->frame_start_ms = now;
    }
    if (c->state == CONN_OPEN && cfg->frame_timeout_ms != 0 &&
        c->frame_start_ms != 0 &&
        now - c->frame_start_ms >= cfg->frame_timeout_ms) {
        conn_close_for(c, &s->stats.timeouts, ZINX__LOGK_TIMEOUT,
                       ZINX_ETIMEDOUT, "frame not completed in time");
        return true;
    }
    if (c->state == CONN_OPEN && cfg->idle_timeout_ms != 0 &&
        now - c->last_rx_ms >= cfg->idle_timeout_ms) {
        conn_close_for(c, &s->stats.timeouts, ZINX__LOGK_TIMEOUT,
                       ZINX_ETIMEDOUT, "idle timeout");
        return true;
    }
    if (c->stall_since_ms != 0 &&
        now - c->stall_since_ms >= cfg->output_soft_timeout_ms) {
        conn_close_for(c, &s->stats.slow_readers, ZINX__LOGK_SLOW_READER,
                       ZINX_ENOBUFS,
                       "the peer took none of its replies for "
                       "OutputSoftTimeoutMs");
        return true;
    }
    if (c->soft_since_ms != 0 &&
        now - c->soft_since_ms >= cfg->output_soft_timeout_ms) {
        conn_close_for(c, &s->stats.slow_readers, ZINX__LOGK_SLOW_READER,
                       ZINX_ENOBUFS,
                       "unsent output above OutputSoftLimit for too long");
        return true;
    }
    return false;
}

void conn_on_timer(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    zinx_conn_t *c = arg;
    if (c->state == CONN_FINISHED)
        return;
    uint64_t now = zinx__loop_now(c->loop);
    if (c->state == CONN_HANDSHAKE) {
        conn_handshake_timer(c, now);
        return;
    }
    if (expired(c, now))
        return;
    conn_heartbeat(c, now);
    if (c->state != CONN_FINISHED)
        arm_at(c, next_deadline(c));
}

void conn_start_deadlines(zinx_conn_t *c)
{
    const zinx_config_t *cfg = &c->server->cfg;
    uint64_t now = zinx__loop_now(c->loop);
    c->last_rx_ms = now;
    if (cfg->heartbeat_interval_ms != 0)
        c->next_beat_ms = now + cfg->heartbeat_interval_ms;
    arm_at(c, next_deadline(c));
}

/* Loop thread, after a flush: start or stop the soft-limit clock. */
static void check_soft_limit(zinx_conn_t *c)
{
    uint32_t soft = c->server->cfg.output_soft_limit;
    if (soft == 0)
        return;
    if (atomic_load(&c->unsent) <= soft) {
        c->soft_since_ms = 0;
        return;
    }
    if (c->soft_since_ms == 0) {
        c->soft_since_ms = zinx__loop_now(c->loop);
        arm_at(c, next_deadline(c));
    }
}

/* Loop thread, after a flush: output left waiting starts the no-progress
   clock (write_out moves it on whenever the peer takes bytes); a peer
   that takes none for OutputSoftTimeoutMs is closed, at whatever level. */
static void check_stall(zinx_conn_t *c)
{
    if (conn_out_size(c) == 0) {
        c->stall_since_ms = 0;
        return;
    }
    if (c->stall_since_ms != 0 || c->server->cfg.output_soft_timeout_ms == 0)
        return;
    c->stall_since_ms = zinx__loop_now(c->loop);
    arm_at(c, next_deadline(c));
}

void conn_check_output_clocks(zinx_conn_t *c)
{
    /* All sent and no clock running: the common case, nothing to do. */
    if (conn_out_size(c) == 0 && c->soft_since_ms == 0 &&
        c->stall_since_ms == 0)
        return;
    check_soft_limit(c);
    check_stall(c);
}

/* Handler thread: a frame had no router. */
void zinx__conn_note_unrouted(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    uint32_t max = s->cfg.max_unknown_msgs;
    if (max == 0 || ++c->unknown_msgs != max + 1)
        return;
    atomic_fetch_add_explicit(&s->stats.unknown_closed, 1,
                              memory_order_relaxed);
    ZINX__LOG_LIMITED(
        s, ZINX__LOGK_UNKNOWN_MSGS, ZINX_LOG_WARN,
        "conn %llu (%s): more than %u frames without a router, closing",
        (unsigned long long)c->id, c->stream->remote, max);
    conn_set_reason(c, ZINX_EPROTO);
    zinx_conn_close_now(c);
}

/* The frame deadline runs from the first byte of the frame now at the
   head of `in`; a new head frame restarts it, so a peer streaming many
   frames is never cut off, while one trickling a single frame is. */
void conn_track_partial(zinx_conn_t *c, bool head_changed, uint64_t now)
{
    if (zinx__buf_size(&c->in) == 0 || conn_frames_held(c)) {
        c->frame_start_ms = 0;
        return;
    }
    if (c->frame_start_ms != 0 && !head_changed)
        return;
    c->frame_start_ms = now;
    if (c->server->cfg.frame_timeout_ms != 0)
        arm_at(c, now + c->server->cfg.frame_timeout_ms);
}
