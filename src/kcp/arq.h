/*
 * KCP's ARQ: the reliable, ordered byte stream over datagrams that
 * kcp-go speaks with no encryption and no FEC (Zinx's KCP transport).
 *
 * This is the protocol alone: no socket, no clock, no thread. The owner
 * feeds it the datagrams that arrived (zinx__kcp_input), the bytes to
 * send (zinx__kcp_send) and the time (zinx__kcp_update, in milliseconds
 * of any monotonic clock, cut to 32 bits: every comparison of times and
 * of sequence numbers is modulo 2^32, so both wrap safely), and it hands
 * the datagrams to send to an output callback, which may drop them (KCP
 * retransmits). One conversation per object.
 *
 * Wire format of a segment, all fields little-endian (24-byte header,
 * then len bytes of data); a datagram holds one or more segments, up to
 * the MTU:
 *
 *   conv u32 | cmd u8 | frg u8 | wnd u16 | ts u32 | sn u32 | una u32 |
 *   len u32 | data[len]
 *
 * cmd: 81 PUSH (data), 82 ACK (acknowledges sn, echoing ts), 83 WASK
 * (asks the peer's window), 84 WINS (tells our window). frg counts the
 * fragments left in a message (0 for the last, and always 0 in stream
 * mode); wnd is the sender's free receive window in segments; una is the
 * sender's next sequence number expected (everything before it is
 * acknowledged).
 *
 * Not thread-safe: one thread (the owning loop's) uses an object.
 */
#ifndef ZINX_KCP_ARQ_H
#define ZINX_KCP_ARQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ZINX__KCP_HEADER 24u
#define ZINX__KCP_CMD_PUSH 81u
#define ZINX__KCP_CMD_ACK 82u
#define ZINX__KCP_CMD_WASK 83u
#define ZINX__KCP_CMD_WINS 84u
#define ZINX__KCP_MTU_DEFAULT 1400u /* kcp-go's default */
#define ZINX__KCP_MTU_MIN 50u
/* A segment sent this many times without an ACK ends the conversation
   (the link is dead): kcp-go's and the reference's dead_link. */
#define ZINX__KCP_DEAD_LINK 20u

/* ---- segments (segment.c) ----------------------------------------------- */

typedef struct zinx__kcp_seg_hdr {
    uint32_t conv;
    uint8_t cmd;
    uint8_t frg;
    uint16_t wnd;
    uint32_t ts;
    uint32_t sn;
    uint32_t una;
    uint32_t len; /* bytes of data after the header */
} zinx__kcp_seg_hdr_t;

/*
 * Parses the segment at p[0..n): 0 with *h filled (its data are the
 * h->len bytes at p + ZINX__KCP_HEADER), or ZINX_EPROTO when n is
 * shorter than the header, cmd is not one of the four, len runs past n,
 * or a non-PUSH segment carries data. Reads nothing beyond p[n-1].
 */
int zinx__kcp_seg_parse(const uint8_t *p, size_t n, zinx__kcp_seg_hdr_t *h);

/* Writes h as the 24-byte header at out. */
void zinx__kcp_seg_write(uint8_t *out, const zinx__kcp_seg_hdr_t *h);

/*
 * Whether the datagram p[0..n) may open a new conversation: every
 * segment in it parses, all carry the same conv (stored in *conv), and
 * one of them is a PUSH of sequence number first_sn (0 unless a test
 * says otherwise): the first segment a sender ever sends. A datagram
 * that is not so is dropped without creating anything, so noise and
 * spoofed junk cannot make sessions. Returns 0 or ZINX_EPROTO.
 */
int zinx__kcp_seg_opens(const uint8_t *p, size_t n, uint32_t first_sn,
                        uint32_t *conv);

/* ---- the ARQ (arq.c) ---------------------------------------------------- */

/* Settings, named after Zinx's keys. */
typedef struct zinx__kcp_conf {
    uint32_t mtu;      /* datagram size, ZINX__KCP_MTU_MIN..65535; 0: 1400 */
    bool nodelay;      /* KcpNoDelay: minimum RTO 30 ms (else 100), and
                          RTO growth by half (else doubling) */
    uint32_t interval; /* KcpInterval: 10..5000 ms between flushes */
    uint32_t resend;   /* KcpResend: fast retransmit after this many
                          ACKs of later segments; 0: never */
    bool nc;           /* KcpNc: no congestion window (only the windows) */
    uint32_t snd_wnd;  /* KcpSendWindow: segments, >= 1 */
    uint32_t rcv_wnd;  /* KcpRecvWindow: segments, >= 1 */
    bool stream;       /* KcpStreamMode: sends merge into segments; else
                          each send is a message of fragments */
    uint32_t first_sn; /* the first sequence number on both sides: 0,
                          except in tests of wrap-around */
} zinx__kcp_conf_t;

/* Fills *conf with Zinx's defaults: MTU 1400, nodelay 1, interval 10,
   resend 2, nc 1, windows 32/32, stream mode, first_sn 0. */
void zinx__kcp_conf_default(zinx__kcp_conf_t *conf);

/* Sends one datagram (len <= mtu). It may be dropped; p is valid only
   during the call. */
typedef void (*zinx__kcp_output_fn)(void *udata, const uint8_t *p, size_t len);

typedef struct zinx__kcp zinx__kcp_t;

/* A conversation `conv`, at time now. NULL when out of memory. conf is
   copied. */
zinx__kcp_t *zinx__kcp_new(uint32_t conv, const zinx__kcp_conf_t *conf,
                           zinx__kcp_output_fn output, void *udata,
                           uint32_t now);
void zinx__kcp_free(zinx__kcp_t *k);

uint32_t zinx__kcp_conv(const zinx__kcp_t *k);

/*
 * Takes one arrived datagram at time now: acknowledgements (RTT
 * estimate, freed send buffer, fast-retransmit counts), data (queued for
 * zinx__kcp_recv in order, duplicates and segments beyond the receive
 * window dropped, an ACK owed for each), window probes. Returns 0, or
 * ZINX_EPROTO when a segment does not parse, names another conv or
 * carries more than mtu - 24 bytes (what came before it in the datagram
 * is kept). Sends nothing itself: ACKs leave with the next flush.
 */
int zinx__kcp_input(zinx__kcp_t *k, const uint8_t *p, size_t n, uint32_t now);

/*
 * Queues bytes to send: returns how many it took (fewer than len, or
 * ZINX_EAGAIN for none, once the segments waiting to be sent or
 * acknowledged reach the send window: that is the back-pressure),
 * ZINX_EINVAL for len 0, or ZINX_ENOMEM when no segment could be had.
 * In stream mode the bytes join the last queued segment while it has
 * room; in message mode one call is one message of at most
 * min(rcv_wnd, 128) fragments of mtu - 24 bytes, so a longer one is cut
 * there (the rest is left to the next call, harmless for a byte
 * stream).
 */
ssize_t zinx__kcp_send(zinx__kcp_t *k, const void *buf, size_t len);

/*
 * Copies up to len received bytes, in order, into buf: the count, or
 * ZINX_EAGAIN when none is ready. A message (non-stream peer) is given
 * as bytes as soon as they are in order; boundaries are not kept.
 */
ssize_t zinx__kcp_recv(zinx__kcp_t *k, void *buf, size_t len);

/* Bytes ready for zinx__kcp_recv. */
size_t zinx__kcp_readable(const zinx__kcp_t *k);

/* Whether zinx__kcp_send would take a byte now. */
bool zinx__kcp_writable(const zinx__kcp_t *k);

/* Segments queued or in flight, not yet acknowledged (0: all delivered). */
uint32_t zinx__kcp_waiting(const zinx__kcp_t *k);

/* Bytes queued or in flight, not yet acknowledged. */
size_t zinx__kcp_unacked_bytes(const zinx__kcp_t *k);

/*
 * Runs the clock to now: when a flush is due (every interval, or at
 * once after zinx__kcp_flush_soon), sends owed ACKs, window probes, new
 * segments the windows allow, and retransmissions (RTO expired, or
 * `resend` later segments acknowledged: fast retransmit).
 */
void zinx__kcp_update(zinx__kcp_t *k, uint32_t now);

/* Flushes now, whatever the interval: ACKs, new data, retransmissions
   (after a send, so that new data leave without waiting a tick). */
void zinx__kcp_flush(zinx__kcp_t *k, uint32_t now);

/* Sends the owed ACKs alone, now (KcpACKNoDelay). */
void zinx__kcp_flush_acks(zinx__kcp_t *k, uint32_t now);

/* When zinx__kcp_update must next run (a time <= now + interval), for
   the owner's timer. */
uint32_t zinx__kcp_check(const zinx__kcp_t *k, uint32_t now);

/* Whether a segment went ZINX__KCP_DEAD_LINK times unacknowledged: the
   peer is gone, the owner ends the conversation. */
bool zinx__kcp_dead(const zinx__kcp_t *k);

/* Milliseconds (at now) since the peer last acknowledged anything, or
   since the conversation began. */
uint32_t zinx__kcp_since_ack(const zinx__kcp_t *k, uint32_t now);

/* Statistics for tests and metrics. */
typedef struct zinx__kcp_stats {
    uint64_t segs_sent;       /* PUSH segments sent, first sends */
    uint64_t retrans_timeout; /* retransmitted because the RTO expired */
    uint64_t retrans_fast;    /* retransmitted by fast retransmit */
    uint64_t segs_received;   /* PUSH segments accepted (new) */
    uint64_t dup_received;    /* PUSH segments dropped as duplicates */
    uint64_t beyond_window;   /* PUSH segments dropped beyond the window */
    uint32_t rto;             /* current retransmission timeout, ms */
    uint32_t srtt;            /* smoothed RTT, ms */
    uint32_t rmt_wnd;         /* the peer's last advertised window */
    uint32_t cwnd;            /* congestion window (snd_wnd when nc) */
} zinx__kcp_stats_t;

void zinx__kcp_get_stats(const zinx__kcp_t *k, zinx__kcp_stats_t *st);

#endif /* ZINX_KCP_ARQ_H */
