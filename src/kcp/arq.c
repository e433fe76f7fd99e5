/*
 * KCP's ARQ (see arq.h for the wire format and the contract).
 *
 * State, as the protocol describes it:
 *   send side     snd_queue (accepted, not yet numbered) -> snd_buf
 *                 (numbered, sent, waiting for an ACK); snd_una is the
 *                 oldest unacknowledged sequence number, snd_nxt the next
 *                 one to give;
 *   receive side  rcv_buf (arrived out of order, sorted by sn) ->
 *                 rcv_queue (in order, waiting for zinx__kcp_recv);
 *                 rcv_nxt is the next sequence number expected.
 * Segments live on doubly linked lists and go back to a free list when
 * done, so steady traffic allocates nothing: at most snd_wnd segments on
 * the send side (send() stops there) and rcv_wnd on the receive side (a
 * PUSH is accepted only below rcv_nxt + rcv_wnd - |rcv_queue|, the edge
 * the window we advertise names), each with room for mtu - 24 bytes.
 *
 * Sequence numbers and times are compared by their signed 32-bit
 * difference (diff()), so both may wrap.
 */
#include <stdlib.h>
#include <string.h>

#include "kcp/arq.h"
#include "zinx/error.h"

#define RTO_NODELAY_MIN 30u
#define RTO_NORMAL_MIN 100u
#define RTO_INITIAL 200u
#define RTO_MAX 60000u
#define PROBE_INIT 7000u
#define PROBE_LIMIT 120000u
#define SSTHRESH_MIN 2u
#define MSG_FRAGS_MAX 128u
#define WND_MAX 65535u /* the wnd field is 16 bits */
/* update() resynchronises its flush schedule after a clock jump. */
#define CLOCK_JUMP 10000

#define ASK_SEND 1u /* send WASK: the peer's window is 0 */
#define ASK_TELL 2u /* send WINS: asked, or our window reopened */

typedef struct link {
    struct link *prev, *next;
} link_t;

typedef struct seg {
    link_t link; /* first: a link_t * is the segment's address */
    uint32_t sn;
    uint32_t ts;       /* when last sent (send side) or the peer's ts */
    uint32_t resendts; /* when the RTO expires */
    uint32_t rto;
    uint32_t fastack; /* ACKs of later segments since the last send */
    uint32_t xmit;    /* transmissions so far */
    uint32_t len;
    uint32_t off; /* bytes already read (rcv_queue's head) */
    uint8_t frg;
    uint8_t data[];
} seg_t;

typedef struct queue {
    link_t head;
    uint32_t n;
} queue_t;

typedef struct ack {
    uint32_t sn, ts;
} ack_t;

struct zinx__kcp {
    uint32_t conv;
    zinx__kcp_conf_t conf;
    uint32_t mss;
    zinx__kcp_output_fn output;
    void *udata;

    uint32_t snd_una, snd_nxt, rcv_nxt;
    uint32_t rmt_wnd, cwnd, ssthresh, incr;
    uint32_t srtt, rttvar, rto, minrto;

    uint32_t current, ts_flush, last_ack;
    bool updated;
    bool dead;
    unsigned probe;
    uint32_t ts_probe, probe_wait;

    queue_t snd_queue, snd_buf, rcv_buf, rcv_queue;
    link_t *free_segs; /* singly linked through next */

    ack_t *acks;
    uint32_t nacks, acks_cap;

    size_t readable;
    size_t unacked;

    uint8_t *out; /* the datagram being filled, mtu bytes */
    size_t out_len;

    zinx__kcp_stats_t st;
};

static int32_t diff(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b);
}

static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- lists -------------------------------------------------------------- */

static void q_init(queue_t *q)
{
    q->head.prev = q->head.next = &q->head;
    q->n = 0;
}

static seg_t *q_first(queue_t *q)
{
    return q->n ? (seg_t *)q->head.next : NULL;
}

static seg_t *q_last(queue_t *q)
{
    return q->n ? (seg_t *)q->head.prev : NULL;
}

/* The segment after s on q, or NULL at the end. */
static seg_t *q_next(queue_t *q, seg_t *s)
{
    return s->link.next == &q->head ? NULL : (seg_t *)s->link.next;
}

static void q_insert_after(queue_t *q, link_t *at, seg_t *s)
{
    s->link.prev = at;
    s->link.next = at->next;
    at->next->prev = &s->link;
    at->next = &s->link;
    q->n++;
}

static void q_push(queue_t *q, seg_t *s)
{
    q_insert_after(q, q->head.prev, s);
}

static void q_remove(queue_t *q, seg_t *s)
{
    s->link.prev->next = s->link.next;
    s->link.next->prev = s->link.prev;
    q->n--;
}

/* ---- segments ----------------------------------------------------------- */

static seg_t *seg_get(zinx__kcp_t *k)
{
    seg_t *s;
    if (k->free_segs) {
        s = (seg_t *)k->free_segs;
        k->free_segs = s->link.next;
    } else {
        s = malloc(sizeof(*s) + k->mss);
        if (!s)
            return NULL;
    }
    memset(s, 0, sizeof(*s));
    return s;
}

static void seg_put(zinx__kcp_t *k, seg_t *s)
{
    s->link.next = k->free_segs;
    k->free_segs = &s->link;
}

static void q_free_all(queue_t *q)
{
    seg_t *s;
    while ((s = q_first(q)) != NULL) {
        q_remove(q, s);
        free(s);
    }
}

/* ---- setup -------------------------------------------------------------- */

void zinx__kcp_conf_default(zinx__kcp_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->mtu = ZINX__KCP_MTU_DEFAULT;
    conf->nodelay = true;
    conf->interval = 10;
    conf->resend = 2;
    conf->nc = true;
    conf->snd_wnd = 32;
    conf->rcv_wnd = 32;
    conf->stream = true;
    conf->first_sn = 0;
}

static void conf_sanitize(zinx__kcp_conf_t *c)
{
    if (c->mtu == 0)
        c->mtu = ZINX__KCP_MTU_DEFAULT;
    c->mtu = clamp(c->mtu, ZINX__KCP_MTU_MIN, 65535);
    c->interval = clamp(c->interval, 10, 5000);
    c->snd_wnd = clamp(c->snd_wnd, 1, WND_MAX);
    c->rcv_wnd = clamp(c->rcv_wnd, 1, WND_MAX);
}

zinx__kcp_t *zinx__kcp_new(uint32_t conv, const zinx__kcp_conf_t *conf,
                           zinx__kcp_output_fn output, void *udata,
                           uint32_t now)
{
    zinx__kcp_t *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->conf = *conf;
    conf_sanitize(&k->conf);
    /* Enough for a full receive window of ACKs twice over (duplicates
       included); more between two flushes are dropped, and the una of
       every segment we send acknowledges cumulatively anyway. */
    k->acks_cap = 2 * k->conf.rcv_wnd + 64;
    k->acks = malloc(sizeof(*k->acks) * k->acks_cap);
    k->out = malloc(k->conf.mtu);
    if (!k->acks || !k->out) {
        free(k->acks);
        free(k->out);
        free(k);
        return NULL;
    }
    k->conv = conv;
    k->mss = k->conf.mtu - ZINX__KCP_HEADER;
    k->output = output;
    k->udata = udata;
    k->snd_una = k->snd_nxt = k->rcv_nxt = k->conf.first_sn;
    k->rmt_wnd = 32; /* kcp-go's default receive window */
    k->cwnd = 1;
    k->incr = k->mss;
    k->ssthresh = SSTHRESH_MIN;
    k->rto = RTO_INITIAL;
    k->minrto = k->conf.nodelay ? RTO_NODELAY_MIN : RTO_NORMAL_MIN;
    k->current = k->last_ack = now;
    q_init(&k->snd_queue);
    q_init(&k->snd_buf);
    q_init(&k->rcv_buf);
    q_init(&k->rcv_queue);
    return k;
}

void zinx__kcp_free(zinx__kcp_t *k)
{
    if (!k)
        return;
    q_free_all(&k->snd_queue);
    q_free_all(&k->snd_buf);
    q_free_all(&k->rcv_buf);
    q_free_all(&k->rcv_queue);
    while (k->free_segs) {
        link_t *l = k->free_segs;
        k->free_segs = l->next;
        free(l);
    }
    free(k->acks);
    free(k->out);
    free(k);
}

uint32_t zinx__kcp_conv(const zinx__kcp_t *k)
{
    return k->conv;
}

/* ---- sending ------------------------------------------------------------ */

static uint32_t waiting(const zinx__kcp_t *k)
{
    return k->snd_queue.n + k->snd_buf.n;
}

/* The room left in the last queued segment, which stream mode fills
   before it takes another segment. */
static uint32_t tail_room(zinx__kcp_t *k)
{
    seg_t *last = q_last(&k->snd_queue);
    if (!k->conf.stream || !last)
        return 0;
    return k->mss - last->len;
}

bool zinx__kcp_writable(const zinx__kcp_t *k)
{
    return waiting(k) < k->conf.snd_wnd || tail_room((zinx__kcp_t *)k) > 0;
}

static size_t send_stream(zinx__kcp_t *k, const uint8_t *p, size_t len)
{
    size_t taken = 0;
    uint32_t room = tail_room(k);
    if (room > 0) {
        seg_t *last = q_last(&k->snd_queue);
        size_t n = len < room ? len : room;
        memcpy(last->data + last->len, p, n);
        last->len += (uint32_t)n;
        taken = n;
    }
    while (taken < len && waiting(k) < k->conf.snd_wnd) {
        seg_t *s = seg_get(k);
        if (!s)
            break;
        size_t n = len - taken < k->mss ? len - taken : k->mss;
        memcpy(s->data, p + taken, n);
        s->len = (uint32_t)n;
        q_push(&k->snd_queue, s);
        taken += n;
    }
    return taken;
}

/* One message: frg counts the fragments left after each, so the peer
   knows where it ends. Cut at the fragment limit and at the free send
   window (the rest goes in the next call). */
static size_t send_message(zinx__kcp_t *k, const uint8_t *p, size_t len)
{
    uint32_t limit =
        k->conf.rcv_wnd < MSG_FRAGS_MAX ? k->conf.rcv_wnd : MSG_FRAGS_MAX;
    uint32_t free_wnd = k->conf.snd_wnd - waiting(k);
    if (free_wnd < limit)
        limit = free_wnd;
    size_t count = len / k->mss + (len % k->mss != 0); /* no overflow */
    if (count > limit)
        count = limit;
    size_t taken = 0;
    for (size_t i = 0; i < count; i++) {
        seg_t *s = seg_get(k);
        if (!s) {
            /* Out of memory: end the message at what was queued. */
            seg_t *last = q_last(&k->snd_queue);
            if (i > 0 && last)
                last->frg = 0;
            break;
        }
        size_t n = len - taken < k->mss ? len - taken : k->mss;
        memcpy(s->data, p + taken, n);
        s->len = (uint32_t)n;
        s->frg = (uint8_t)(count - i - 1);
        q_push(&k->snd_queue, s);
        taken += n;
    }
    return taken;
}

ssize_t zinx__kcp_send(zinx__kcp_t *k, const void *buf, size_t len)
{
    if (len == 0)
        return ZINX_EINVAL;
    if (!zinx__kcp_writable(k))
        return ZINX_EAGAIN;
    size_t taken =
        k->conf.stream ? send_stream(k, buf, len) : send_message(k, buf, len);
    if (taken == 0)
        return ZINX_ENOMEM;
    k->unacked += taken;
    return (ssize_t)taken;
}

uint32_t zinx__kcp_waiting(const zinx__kcp_t *k)
{
    return waiting(k);
}

size_t zinx__kcp_unacked_bytes(const zinx__kcp_t *k)
{
    return k->unacked;
}

/* ---- receiving ---------------------------------------------------------- */

/* The sequence number just past what we accept: the right edge of the
   window we advertise (rcv_wnd minus what waits in rcv_queue). It never
   moves left, so a peer that keeps to our last advertisement is never
   refused, and rcv_buf + rcv_queue stay within rcv_wnd segments. */
static uint32_t rcv_edge(const zinx__kcp_t *k)
{
    return k->rcv_nxt + (k->conf.rcv_wnd - k->rcv_queue.n);
}

static uint16_t wnd_unused(const zinx__kcp_t *k)
{
    return (uint16_t)(k->rcv_queue.n < k->conf.rcv_wnd
                          ? k->conf.rcv_wnd - k->rcv_queue.n
                          : 0);
}

/* Moves the in-order head of rcv_buf to rcv_queue. */
static void move_ready(zinx__kcp_t *k)
{
    seg_t *s;
    while ((s = q_first(&k->rcv_buf)) != NULL && s->sn == k->rcv_nxt &&
           k->rcv_queue.n < k->conf.rcv_wnd) {
        q_remove(&k->rcv_buf, s);
        q_push(&k->rcv_queue, s);
        k->readable += s->len;
        k->rcv_nxt++;
    }
}

size_t zinx__kcp_readable(const zinx__kcp_t *k)
{
    return k->readable;
}

ssize_t zinx__kcp_recv(zinx__kcp_t *k, void *buf, size_t len)
{
    if (k->readable == 0)
        return ZINX_EAGAIN;
    bool was_full = k->rcv_queue.n >= k->conf.rcv_wnd;
    uint8_t *out = buf;
    size_t copied = 0;
    seg_t *s;
    while (copied < len && (s = q_first(&k->rcv_queue)) != NULL) {
        size_t n = s->len - s->off;
        if (n > len - copied)
            n = len - copied;
        memcpy(out + copied, s->data + s->off, n);
        s->off += (uint32_t)n;
        copied += n;
        if (s->off == s->len) {
            q_remove(&k->rcv_queue, s);
            seg_put(k, s);
        }
    }
    k->readable -= copied;
    move_ready(k);
    /* The window reopened after we advertised 0: tell the peer at once
       rather than leave it to its next probe. */
    if (was_full && k->rcv_queue.n < k->conf.rcv_wnd)
        k->probe |= ASK_TELL;
    return (ssize_t)copied;
}

/* ---- input -------------------------------------------------------------- */

static void update_rtt(zinx__kcp_t *k, uint32_t rtt)
{
    if (rtt > RTO_MAX)
        rtt = RTO_MAX;
    if (k->srtt == 0) {
        k->srtt = rtt;
        k->rttvar = rtt / 2;
    } else {
        uint32_t delta = rtt > k->srtt ? rtt - k->srtt : k->srtt - rtt;
        k->rttvar = (3 * k->rttvar + delta) / 4;
        k->srtt = (7 * k->srtt + rtt) / 8;
        if (k->srtt < 1)
            k->srtt = 1;
    }
    uint32_t var4 = 4 * k->rttvar;
    uint32_t rto =
        k->srtt + (var4 > k->conf.interval ? var4 : k->conf.interval);
    k->rto = clamp(rto, k->minrto, RTO_MAX);
}

static void drop_sent(zinx__kcp_t *k, seg_t *s)
{
    k->unacked -= s->len;
    q_remove(&k->snd_buf, s);
    seg_put(k, s);
}

static void shrink_buf(zinx__kcp_t *k)
{
    seg_t *s = q_first(&k->snd_buf);
    k->snd_una = s ? s->sn : k->snd_nxt;
}

/* Everything before una arrived. */
static void parse_una(zinx__kcp_t *k, uint32_t una)
{
    seg_t *s;
    while ((s = q_first(&k->snd_buf)) != NULL && diff(una, s->sn) > 0)
        drop_sent(k, s);
}

/* An ACK of sn sent at ts: frees that segment, and counts one more
   later-acknowledged segment for each older one sent no later than it
   (fast retransmit). */
static void parse_ack(zinx__kcp_t *k, uint32_t sn, uint32_t ts)
{
    if (diff(sn, k->snd_una) < 0 || diff(sn, k->snd_nxt) >= 0)
        return;
    seg_t *s = q_first(&k->snd_buf);
    while (s && diff(s->sn, sn) <= 0) {
        seg_t *next = q_next(&k->snd_buf, s);
        if (s->sn == sn)
            drop_sent(k, s);
        else if (diff(s->ts, ts) <= 0)
            s->fastack++;
        s = next;
    }
}

static void ack_push(zinx__kcp_t *k, uint32_t sn, uint32_t ts)
{
    if (k->nacks < k->acks_cap)
        k->acks[k->nacks++] = (ack_t){sn, ts};
}

/* A PUSH inside [rcv_nxt, edge): stored in order unless a duplicate.
   false when it could not be stored (out of memory). */
static bool parse_data(zinx__kcp_t *k, const zinx__kcp_seg_hdr_t *h,
                       const uint8_t *data)
{
    link_t *at = k->rcv_buf.head.prev; /* insert after this one */
    while (at != &k->rcv_buf.head) {
        seg_t *s = (seg_t *)at;
        if (s->sn == h->sn) {
            k->st.dup_received++;
            return true;
        }
        if (diff(h->sn, s->sn) > 0)
            break;
        at = at->prev;
    }
    seg_t *s = seg_get(k);
    if (!s)
        return false;
    s->sn = h->sn;
    s->ts = h->ts;
    s->frg = h->frg;
    s->len = h->len;
    memcpy(s->data, data, h->len);
    q_insert_after(&k->rcv_buf, at, s);
    k->st.segs_received++;
    move_ready(k);
    return true;
}

static void input_push(zinx__kcp_t *k, const zinx__kcp_seg_hdr_t *h,
                       const uint8_t *data)
{
    if (diff(h->sn, rcv_edge(k)) >= 0) {
        k->st.beyond_window++;
        return;
    }
    if (diff(h->sn, k->rcv_nxt) < 0) {
        /* Already delivered: our ACK was lost, send it again. */
        k->st.dup_received++;
        ack_push(k, h->sn, h->ts);
        return;
    }
    if (parse_data(k, h, data))
        ack_push(k, h->sn, h->ts);
}

/* Slow start below ssthresh, then about one segment per window. */
static void grow_cwnd(zinx__kcp_t *k)
{
    if (k->cwnd >= k->rmt_wnd)
        return;
    uint32_t mss = k->mss;
    if (k->cwnd < k->ssthresh) {
        k->cwnd++;
        k->incr += mss;
    } else {
        if (k->incr < mss)
            k->incr = mss;
        k->incr += (mss * mss) / k->incr + mss / 16;
        if ((k->cwnd + 1) * mss <= k->incr)
            k->cwnd = (k->incr + mss - 1) / mss;
    }
    if (k->cwnd > k->rmt_wnd) {
        k->cwnd = k->rmt_wnd;
        k->incr = k->rmt_wnd * mss;
    }
}

int zinx__kcp_input(zinx__kcp_t *k, const uint8_t *p, size_t n, uint32_t now)
{
    uint32_t una_before = k->snd_una;
    int rc = n == 0 ? ZINX_EPROTO : 0;
    size_t off = 0;
    k->current = now;
    while (rc == 0 && off < n) {
        zinx__kcp_seg_hdr_t h;
        if (zinx__kcp_seg_parse(p + off, n - off, &h) != 0 ||
            h.conv != k->conv || h.len > k->mss) {
            rc = ZINX_EPROTO;
            break;
        }
        const uint8_t *data = p + off + ZINX__KCP_HEADER;
        off += ZINX__KCP_HEADER + h.len;
        k->rmt_wnd = h.wnd;
        parse_una(k, h.una);
        shrink_buf(k);
        switch (h.cmd) {
        case ZINX__KCP_CMD_ACK:
            if (diff(now, h.ts) >= 0)
                update_rtt(k, (uint32_t)diff(now, h.ts));
            parse_ack(k, h.sn, h.ts);
            shrink_buf(k);
            k->last_ack = now;
            break;
        case ZINX__KCP_CMD_PUSH:
            input_push(k, &h, data);
            break;
        case ZINX__KCP_CMD_WASK:
            k->probe |= ASK_TELL;
            break;
        default: /* WINS: its wnd was taken above */
            break;
        }
    }
    if (diff(k->snd_una, una_before) > 0) {
        k->last_ack = now;
        if (!k->conf.nc)
            grow_cwnd(k);
    }
    return rc;
}

/* ---- output ------------------------------------------------------------- */

static void out_flush(zinx__kcp_t *k)
{
    if (k->out_len > 0) {
        k->output(k->udata, k->out, k->out_len);
        k->out_len = 0;
    }
}

/* Appends a segment to the datagram, sending the datagram first when it
   would not fit. */
static void out_seg(zinx__kcp_t *k, const zinx__kcp_seg_hdr_t *h,
                    const uint8_t *data)
{
    if (k->out_len + ZINX__KCP_HEADER + h->len > k->conf.mtu)
        out_flush(k);
    zinx__kcp_seg_write(k->out + k->out_len, h);
    if (h->len > 0)
        memcpy(k->out + k->out_len + ZINX__KCP_HEADER, data, h->len);
    k->out_len += ZINX__KCP_HEADER + h->len;
}

static zinx__kcp_seg_hdr_t base_hdr(const zinx__kcp_t *k, uint8_t cmd)
{
    zinx__kcp_seg_hdr_t h = {0};
    h.conv = k->conv;
    h.cmd = cmd;
    h.wnd = wnd_unused(k);
    h.ts = k->current;
    h.una = k->rcv_nxt;
    return h;
}

static void put_acks(zinx__kcp_t *k)
{
    zinx__kcp_seg_hdr_t h = base_hdr(k, ZINX__KCP_CMD_ACK);
    for (uint32_t i = 0; i < k->nacks; i++) {
        h.sn = k->acks[i].sn;
        h.ts = k->acks[i].ts;
        out_seg(k, &h, NULL);
    }
    k->nacks = 0;
}

/* While the peer's window is 0 nothing new may leave, and its reopening
   might be lost: ask for it after 7 s, then every half as long again, up
   to 120 s. */
static void put_probes(zinx__kcp_t *k)
{
    if (k->rmt_wnd == 0) {
        if (k->probe_wait == 0) {
            k->probe_wait = PROBE_INIT;
            k->ts_probe = k->current + k->probe_wait;
        } else if (diff(k->current, k->ts_probe) >= 0) {
            k->probe_wait += k->probe_wait / 2;
            if (k->probe_wait > PROBE_LIMIT)
                k->probe_wait = PROBE_LIMIT;
            k->ts_probe = k->current + k->probe_wait;
            k->probe |= ASK_SEND;
        }
    } else {
        k->probe_wait = 0;
        k->ts_probe = 0;
    }
    if (k->probe & ASK_SEND) {
        zinx__kcp_seg_hdr_t h = base_hdr(k, ZINX__KCP_CMD_WASK);
        out_seg(k, &h, NULL);
    }
    if (k->probe & ASK_TELL) {
        zinx__kcp_seg_hdr_t h = base_hdr(k, ZINX__KCP_CMD_WINS);
        out_seg(k, &h, NULL);
    }
    k->probe = 0;
}

static uint32_t send_window(const zinx__kcp_t *k)
{
    uint32_t w = k->conf.snd_wnd < k->rmt_wnd ? k->conf.snd_wnd : k->rmt_wnd;
    if (!k->conf.nc && k->cwnd < w)
        w = k->cwnd;
    return w;
}

/* Numbers the queued segments the windows let out. */
static void admit_new(zinx__kcp_t *k)
{
    uint32_t wnd = send_window(k);
    seg_t *s;
    while ((s = q_first(&k->snd_queue)) != NULL &&
           diff(k->snd_nxt, k->snd_una + wnd) < 0) {
        q_remove(&k->snd_queue, s);
        s->sn = k->snd_nxt++;
        s->xmit = 0;
        s->fastack = 0;
        q_push(&k->snd_buf, s);
    }
}

static void backoff(zinx__kcp_t *k, seg_t *s)
{
    uint32_t step = k->conf.nodelay ? s->rto / 2 : s->rto;
    s->rto = s->rto + step > RTO_MAX ? RTO_MAX : s->rto + step;
}

/* Sends what is due in snd_buf; tells whether a fast retransmit (bit 0)
   or a timeout (bit 1) happened, for the congestion window. */
static unsigned put_data(zinx__kcp_t *k)
{
    unsigned events = 0;
    uint32_t now = k->current;
    zinx__kcp_seg_hdr_t h = base_hdr(k, ZINX__KCP_CMD_PUSH);
    for (seg_t *s = q_first(&k->snd_buf); s; s = q_next(&k->snd_buf, s)) {
        if (s->xmit == 0) {
            s->rto = k->rto;
            k->st.segs_sent++;
        } else if (k->conf.resend && s->fastack >= k->conf.resend) {
            s->rto = k->rto;
            k->st.retrans_fast++;
            events |= 1;
        } else if (diff(now, s->resendts) >= 0) {
            backoff(k, s);
            k->st.retrans_timeout++;
            events |= 2;
        } else {
            continue;
        }
        s->fastack = 0;
        s->resendts = now + s->rto;
        s->xmit++;
        s->ts = now;
        if (s->xmit >= ZINX__KCP_DEAD_LINK)
            k->dead = true;
        h.frg = s->frg;
        h.ts = now;
        h.sn = s->sn;
        h.len = s->len;
        out_seg(k, &h, s->data);
    }
    return events;
}

/* After a fast retransmit, halve to what was in flight; after a timeout,
   restart from one segment (RFC 5681's reaction to loss). */
static void congestion(zinx__kcp_t *k, unsigned events, uint32_t wnd)
{
    if (k->conf.nc)
        return;
    if (events & 1) {
        k->ssthresh = (k->snd_nxt - k->snd_una) / 2;
        if (k->ssthresh < SSTHRESH_MIN)
            k->ssthresh = SSTHRESH_MIN;
        k->cwnd = k->ssthresh + k->conf.resend;
        k->incr = k->cwnd * k->mss;
    }
    if (events & 2) {
        k->ssthresh = wnd / 2 < SSTHRESH_MIN ? SSTHRESH_MIN : wnd / 2;
        k->cwnd = 1;
        k->incr = k->mss;
    }
    if (k->cwnd < 1) {
        k->cwnd = 1;
        k->incr = k->mss;
    }
}

void zinx__kcp_flush(zinx__kcp_t *k, uint32_t now)
{
    k->current = now;
    put_acks(k);
    put_probes(k);
    uint32_t wnd = send_window(k);
    admit_new(k);
    unsigned events = put_data(k);
    out_flush(k);
    congestion(k, events, wnd);
}

void zinx__kcp_flush_acks(zinx__kcp_t *k, uint32_t now)
{
    k->current = now;
    put_acks(k);
    out_flush(k);
}

void zinx__kcp_update(zinx__kcp_t *k, uint32_t now)
{
    k->current = now;
    if (!k->updated) {
        k->updated = true;
        k->ts_flush = now;
    }
    int32_t slap = diff(now, k->ts_flush);
    if (slap >= CLOCK_JUMP || slap < -CLOCK_JUMP) {
        k->ts_flush = now;
        slap = 0;
    }
    if (slap >= 0) {
        k->ts_flush += k->conf.interval;
        if (diff(now, k->ts_flush) >= 0)
            k->ts_flush = now + k->conf.interval;
        zinx__kcp_flush(k, now);
    }
}

uint32_t zinx__kcp_check(const zinx__kcp_t *k, uint32_t now)
{
    if (!k->updated)
        return now;
    uint32_t ts_flush = k->ts_flush;
    int32_t slap = diff(now, ts_flush);
    if (slap >= CLOCK_JUMP || slap < -CLOCK_JUMP || slap >= 0)
        return now;
    uint32_t wait = (uint32_t)-slap;
    const queue_t *q = &k->snd_buf;
    for (const link_t *l = q->head.next; l != &q->head; l = l->next) {
        int32_t d = diff(((const seg_t *)l)->resendts, now);
        if (d <= 0)
            return now;
        if ((uint32_t)d < wait)
            wait = (uint32_t)d;
    }
    if (wait > k->conf.interval)
        wait = k->conf.interval;
    return now + wait;
}

bool zinx__kcp_dead(const zinx__kcp_t *k)
{
    return k->dead;
}

uint32_t zinx__kcp_since_ack(const zinx__kcp_t *k, uint32_t now)
{
    int32_t d = diff(now, k->last_ack);
    return d > 0 ? (uint32_t)d : 0;
}

void zinx__kcp_get_stats(const zinx__kcp_t *k, zinx__kcp_stats_t *st)
{
    *st = k->st;
    st->rto = k->rto;
    st->srtt = k->srtt;
    st->rmt_wnd = k->rmt_wnd;
    st->cwnd = k->conf.nc ? k->conf.snd_wnd : k->cwnd;
}
