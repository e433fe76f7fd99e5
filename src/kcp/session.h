/*
 * A KCP session: one conversation of an endpoint, its ARQ, its timer,
 * and the stream of the connection over it. Private to src/kcp/.
 */
#ifndef ZINX_KCP_SESSION_H
#define ZINX_KCP_SESSION_H

#include "event/event.h"
#include "kcp/kcp.h"

struct zinx__kcp_session {
    zinx__kcp_endpoint_t *ep;          /* holds a reference */
    zinx__kcp_session_t *next;         /* the endpoint's hash chain */
    zinx__kcp_session_t *touched_next; /* the read batch's list */
    zinx__kcp_t *arq;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint32_t conv;
    uint32_t hash;
    zinx__kcp_stream_t *stream; /* the connection's, until it closes */
    zinx__timer_t timer;
    uint64_t timer_at;     /* when armed: its deadline */
    zinx__closure_t later; /* flush and notify later in the iteration */
    uint64_t last_rx_ms;   /* the peer's last datagram */
    uint32_t raise;        /* events `later` delivers */
    bool later_queued;
    bool flush_due; /* written since the last flush */
    bool touched;   /* on the read batch's list */
    bool linked;    /* in the endpoint's table */
    bool shut;      /* our side is done writing */
    bool closed;    /* the stream closed: free when idle */
    bool admitted;  /* holds a place below MaxConn */
    int error;      /* ZINX_ETIMEDOUT once dead or silent */
};

/* A session of ep for conv and the peer at addr, in ep's table, at time
   now; NULL when out of memory (or out of timers). */
zinx__kcp_session_t *zinx__kcp_session_new(zinx__kcp_endpoint_t *ep,
                                           uint32_t conv,
                                           const struct sockaddr_storage *addr,
                                           socklen_t addr_len, uint64_t now);
/* A datagram of this session arrived (p[0..n)). */
void zinx__kcp_session_input(zinx__kcp_session_t *s, const uint8_t *p, size_t n,
                             uint64_t now);
/* After a read batch: owed ACKs (KcpACKNoDelay), readiness, the timer. */
void zinx__kcp_session_settle(zinx__kcp_session_t *s, uint64_t now);

/* ---- the endpoint's side (endpoint.c) ----------------------------------- */

zinx__loop_t *zinx__kcp_endpoint_loop(const zinx__kcp_endpoint_t *ep);
const zinx__kcp_settings_t *
zinx__kcp_endpoint_settings(const zinx__kcp_endpoint_t *ep);
/* Sends datagram p[0..n) to addr (ignored on a connected socket). */
void zinx__kcp_endpoint_send(zinx__kcp_endpoint_t *ep,
                             const struct sockaddr_storage *addr,
                             socklen_t addr_len, const uint8_t *p, size_t n);
/* Takes s out of the table (the session is going). */
void zinx__kcp_endpoint_unlink(zinx__kcp_endpoint_t *ep,
                               zinx__kcp_session_t *s);
/* Gives back the place below MaxConn an admitted session held. */
void zinx__kcp_endpoint_release(zinx__kcp_endpoint_t *ep);
zinx__kcp_endpoint_t *zinx__kcp_endpoint_ref(zinx__kcp_endpoint_t *ep);
void zinx__kcp_endpoint_unref(zinx__kcp_endpoint_t *ep);
/* The text of the endpoint's local address, for the stream. */
const char *zinx__kcp_endpoint_local(const zinx__kcp_endpoint_t *ep);

#endif /* ZINX_KCP_SESSION_H */
