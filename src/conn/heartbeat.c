/*
 * The heartbeat: a beat every HeartbeatInterval, and a peer silent for
 * HeartbeatMax is not alive (closed, or handed to the user's hook). It
 * runs from the connection's one timer (deadline.c).
 */
#include <stdio.h>
#include <string.h>

#include "conn/conn_private.h"

uint64_t conn_heartbeat_max_ms(const zinx_conn_t *c)
{
    return (uint64_t)c->server->cfg.heartbeat_max * 1000u;
}

/* The heartbeat closes a silent peer the moment HeartbeatMax passes (as
   Zinx does), unless the decision waits for a beat: acknowledgements
   count as life (asked of the kernel at each beat), or the user's
   not-alive hook decides what happens, once per beat. */
bool conn_cut_at_heartbeat_max(const zinx_conn_t *c)
{
    return c->next_beat_ms != 0 && !c->server->cfg.heartbeat_count_acks &&
           c->server->hb_dead == NULL;
}

/* Alive: a byte arrived within HeartbeatMax (Zinx's rule). With
   HeartbeatCountAcks, also a peer that acknowledged our data within it:
   a client that only receives stays alive (it ACKs our heartbeats),
   while a vanished one stops ACKing. */
static bool peer_alive(zinx_conn_t *c, uint64_t now)
{
    uint64_t max_ms = conn_heartbeat_max_ms(c);
    if (now - c->last_rx_ms < max_ms)
        return true;
    if (!c->server->cfg.heartbeat_count_acks)
        return false;
    long since_ack = c->stream->ops->since_ack_ms(c->stream);
    return since_ack >= 0 && (uint64_t)since_ack < max_ms;
}

static uint32_t default_beat(const zinx_conn_t *c, uint8_t *buf, size_t cap)
{
    int n = snprintf((char *)buf, cap, "heartbeat [%s->%s]", c->stream->local,
                     c->stream->remote);
    return n < 0 ? 0 : (uint32_t)((size_t)n < cap ? (size_t)n : cap - 1);
}

static void send_beat(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    uint8_t buf[512];
    size_t cap =
        sizeof(buf) < c->max_packet_size ? sizeof(buf) : c->max_packet_size;
    long n;
    if (s->hb_make != NULL)
        n = s->hb_make(c, buf, cap, s->hb_udata);
    else
        n = default_beat(c, buf, cap);
    if (n < 0 || (size_t)n > cap)
        return; /* the builder chose to send nothing this time */
    zinx_conn_send_msg(c, s->cfg.heartbeat_msg_id, buf, (uint32_t)n);
}

static void not_alive(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    atomic_fetch_add_explicit(&s->stats.dead_peers, 1, memory_order_relaxed);
    ZINX__LOG_LIMITED(s, ZINX__LOGK_DEAD_PEER, ZINX_LOG_INFO,
                      "conn %llu (%s): silent for %d s, not alive",
                      (unsigned long long)c->id, c->stream->remote,
                      s->cfg.heartbeat_max);
    if (s->hb_dead != NULL) {
        s->hb_dead(c, s->hb_udata);
        return;
    }
    conn_set_reason(c, ZINX_ETIMEDOUT);
    conn_finish(c, FINISH_ABORT);
}

void conn_heartbeat(zinx_conn_t *c, uint64_t now)
{
    if (c->next_beat_ms == 0)
        return;
    bool beat_due = now >= c->next_beat_ms;
    if (beat_due)
        c->next_beat_ms = now + c->server->cfg.heartbeat_interval_ms;
    if ((beat_due || conn_cut_at_heartbeat_max(c)) && !peer_alive(c, now)) {
        not_alive(c); /* no beat for a peer that is not alive */
        return;
    }
    if (beat_due)
        send_beat(c);
}
