/*
 * The blocking helper: a private client endpoint (one I/O thread, handlers
 * inline) whose fallback router queues copies of every message for
 * zinx_sync_client_recv(). The queue is bounded: above max_queued_bytes
 * the connection is held (no more reading) until recv takes messages, so
 * a caller that waits for one ID while others arrive applies TCP
 * back-pressure instead of growing without bound. Heartbeats are answered
 * by the endpoint's own heartbeat and never queued.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define DEFAULT_MAX_PACKET 4096u
#define DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define DEFAULT_HEARTBEAT_ID 99999u
#define DEFAULT_HEARTBEAT_MAX_S 10u
#define DEFAULT_MAX_QUEUED (4u * 1024u * 1024u)
/* A blocked send looks again after this long at most. */
#define SEND_POLL_MAX_US 2000u

typedef struct queued {
    struct queued *next;
    zinx_msg_t msg; /* data is owned */
} queued_t;

struct zinx_sync_client {
    zinx_server_t *endpoint;
    zinx_dialer_t *dialer;
    zinx_conn_t *conn;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    queued_t *head, *tail;
    size_t queued_bytes;
    size_t max_queued;
    bool held;       /* the connection is held: the queue is full */
    bool discarding; /* being freed: messages are dropped, not queued */
    bool closed;
    bool started; /* OnConnStart ran: a WebSocket upgrade is over */
    int reason;   /* zinx_conn_close_reason() at OnConnStop */
};

/* Releases the hold once half the queue is free again. Under lock. */
static void maybe_release(zinx_sync_client_t *c)
{
    if (c->held && c->queued_bytes <= c->max_queued / 2 && c->conn != NULL) {
        c->held = false;
        zinx__conn_hold(c->conn, false);
    }
}

static void on_message(zinx_request_t *req, void *udata)
{
    zinx_sync_client_t *c = udata;
    queued_t *q = malloc(sizeof(*q));
    uint32_t len = zinx_request_data_len(req);
    uint8_t *data = malloc(len ? len : 1);
    if (q == NULL || data == NULL) {
        free(q);
        free(data);
        zinx_conn_close_now(zinx_request_conn(req)); /* never lose silently */
        return;
    }
    memcpy(data, zinx_request_data(req), len);
    q->next = NULL;
    q->msg =
        (zinx_msg_t){.id = zinx_request_msg_id(req), .len = len, .data = data};
    pthread_mutex_lock(&c->lock);
    if (c->discarding) {
        pthread_mutex_unlock(&c->lock);
        free(q);
        free(data);
        return;
    }
    if (c->tail != NULL)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->queued_bytes += sizeof(*q) + len;
    if (c->queued_bytes > c->max_queued && !c->held) {
        c->held = true;
        zinx__conn_hold(zinx_request_conn(req), true);
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_start(zinx_conn_t *conn, void *udata)
{
    ZINX__UNUSED(conn);
    zinx_sync_client_t *c = udata;
    pthread_mutex_lock(&c->lock);
    c->started = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    zinx_sync_client_t *c = udata;
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    c->reason = zinx_conn_close_reason(conn);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static zinx_server_t *make_endpoint(zinx_sync_client_t *c,
                                    const zinx_sync_opts_t *o)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.io_threads = 1;
    cfg.worker_pool_size = 0;
    cfg.packet_format = o->format;
    cfg.max_packet_size = o->max_packet_size;
    cfg.drain_timeout_ms = 1000;
    cfg.log_isolation_level = 3; /* a helper stays quiet but for errors */
    cfg.heartbeat_msg_id = o->heartbeat_msg_id;
    cfg.heartbeat_interval_ms = o->heartbeat_interval_ms;
    cfg.heartbeat_max = (int)o->heartbeat_max_s;
    /* A server that sends nothing but acknowledges our beats is alive. */
    cfg.heartbeat_count_acks = 1;
    /* A frame as large as MaxPacketSize must fit between the limits. */
    uint64_t need =
        (uint64_t)cfg.output_high_water + cfg.max_packet_size + ZINX_HEADER_LEN;
    if (cfg.output_soft_limit < need)
        cfg.output_soft_limit = (uint32_t)need;
    if (cfg.output_hard_limit < need)
        cfg.output_hard_limit = (uint32_t)need;
    zinx_server_t *s = zinx_client_new(&cfg);
    if (s == NULL)
        return NULL;
    zinx_router_t r = {.handle = on_message, .udata = c};
    zinx_router_t hb = {.handle = zinx__ignore_message};
    zinx_server_set_fallback_router(s, &r);
    zinx_server_add_router(s, o->heartbeat_msg_id, &hb);
    zinx_server_on_conn_start(s, on_start, c);
    zinx_server_on_conn_stop(s, on_stop, c);
    return s;
}

static zinx_sync_opts_t with_defaults(const zinx_sync_opts_t *opts)
{
    zinx_sync_opts_t o = {0};
    if (opts != NULL)
        o = *opts;
    if (o.max_packet_size == 0)
        o.max_packet_size = DEFAULT_MAX_PACKET;
    if (o.connect_timeout_ms == 0)
        o.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (o.heartbeat_msg_id == 0)
        o.heartbeat_msg_id = DEFAULT_HEARTBEAT_ID;
    if (o.heartbeat_max_s == 0)
        o.heartbeat_max_s = DEFAULT_HEARTBEAT_MAX_S;
    if (o.max_queued_bytes == 0)
        o.max_queued_bytes = DEFAULT_MAX_QUEUED;
    return o;
}

/* A WebSocket connection opens once its upgrade is over: 0 then, why
   it ended, or ZINX_ETIMEDOUT at deadline_ms. */
static int wait_upgrade(zinx_sync_client_t *c, uint64_t deadline_ms)
{
    pthread_mutex_lock(&c->lock);
    while (!c->started && !c->closed && zinx__now_ms() < deadline_ms) {
        struct timespec ts = zinx__deadline_ts(deadline_ms);
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    int rc = c->started  ? 0
             : c->closed ? (c->reason != 0 ? c->reason : ZINX_ECLOSED)
                         : ZINX_ETIMEDOUT;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int zinx_sync_client_open(const char *host, int port,
                          const zinx_sync_opts_t *opts,
                          zinx_sync_client_t **out)
{
    if (host == NULL || out == NULL)
        return ZINX_EINVAL;
    zinx_sync_opts_t o = with_defaults(opts);
    zinx_sync_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ZINX_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    zinx__cond_init_monotonic(&c->cond);
    c->max_queued = o.max_queued_bytes;
    c->endpoint = make_endpoint(c, &o);
    int rc = c->endpoint ? zinx_server_start(c->endpoint) : ZINX_ENOMEM;
    if (rc == 0) {
        zinx_dial_opts_t d = {.connect_timeout_ms = o.connect_timeout_ms,
                              .tls = o.tls,
                              .ws_path = o.ws_path};
        rc = zinx_server_dial(c->endpoint, host, port, &d, &c->dialer);
    }
    zinx_conn_t *conn = NULL;
    uint64_t t0 = zinx__now_ms();
    if (rc == 0)
        rc = zinx_dialer_wait(c->dialer, o.connect_timeout_ms, &conn);
    if (rc == 0 && o.ws_path != NULL)
        rc = wait_upgrade(c, t0 + o.connect_timeout_ms);
    if (rc != 0) {
        zinx_conn_unref(conn);
        zinx_sync_client_free(c);
        return rc;
    }
    pthread_mutex_lock(&c->lock);
    c->conn = conn;
    /* A queue that filled before we knew the connection stays held. */
    if (c->held)
        zinx__conn_hold(conn, true);
    pthread_mutex_unlock(&c->lock);
    *out = c;
    return 0;
}

int zinx_sync_client_connect(const char *host, int port,
                             zinx_packet_format_t format,
                             uint32_t max_packet_size, uint32_t timeout_ms,
                             zinx_sync_client_t **out)
{
    zinx_sync_opts_t o = {.format = format,
                          .max_packet_size = max_packet_size,
                          .connect_timeout_ms = timeout_ms};
    return zinx_sync_client_open(host, port, &o, out);
}

/* Waits until the output has room for a frame of len bytes (below
   OutputHighWater, so a send never meets the output limits), the
   connection ends, or deadline_ms (0: no deadline). The helper's I/O
   thread flushes independently, so a short sleep is all a wait needs. */
static int wait_for_room(zinx_sync_client_t *c, uint32_t len,
                         uint64_t deadline_ms)
{
    size_t frame = (size_t)ZINX_HEADER_LEN + len;
    size_t high = zinx__conn_high_water(c->conn);
    unsigned pause_us = 50;
    while (zinx__conn_unsent(c->conn) > 0 &&
           zinx__conn_unsent(c->conn) + frame > high) {
        if (!zinx_conn_is_open(c->conn))
            return ZINX_ECLOSED;
        if (deadline_ms != 0 && zinx__now_ms() >= deadline_ms)
            return ZINX_ETIMEDOUT;
        struct timespec ts = {0, (long)pause_us * 1000L};
        nanosleep(&ts, NULL);
        if (pause_us < SEND_POLL_MAX_US)
            pause_us *= 2;
    }
    return 0;
}

int zinx_sync_client_send_timeout(zinx_sync_client_t *c, uint32_t id,
                                  const void *data, uint32_t len,
                                  uint32_t timeout_ms)
{
    if (c == NULL)
        return ZINX_EINVAL;
    int rc = wait_for_room(c, len, zinx__now_ms() + timeout_ms);
    return rc != 0 ? rc : zinx_conn_send_msg(c->conn, id, data, len);
}

int zinx_sync_client_send(zinx_sync_client_t *c, uint32_t id, const void *data,
                          uint32_t len)
{
    if (c == NULL)
        return ZINX_EINVAL;
    int rc = wait_for_room(c, len, 0);
    return rc != 0 ? rc : zinx_conn_send_msg(c->conn, id, data, len);
}

size_t zinx_sync_client_queued_bytes(zinx_sync_client_t *c)
{
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    size_t n = c->queued_bytes;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Unlinks the first queued message matching want_id (any when < 0). */
static queued_t *take_match(zinx_sync_client_t *c, int64_t want_id)
{
    for (queued_t **pp = &c->head, *prev = NULL; *pp != NULL;
         prev = *pp, pp = &(*pp)->next) {
        queued_t *q = *pp;
        if (want_id >= 0 && q->msg.id != (uint64_t)want_id)
            continue;
        *pp = q->next;
        if (c->tail == q)
            c->tail = prev;
        return q;
    }
    return NULL;
}

int zinx_sync_client_recv(zinx_sync_client_t *c, int64_t want_id,
                          uint32_t timeout_ms, zinx_msg_t *msg)
{
    if (c == NULL || msg == NULL)
        return ZINX_EINVAL;
    uint64_t deadline = zinx__now_ms() + timeout_ms;
    struct timespec ts = zinx__deadline_ts(deadline);
    pthread_mutex_lock(&c->lock);
    queued_t *q;
    while ((q = take_match(c, want_id)) == NULL && !c->closed) {
        if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) != 0 &&
            zinx__now_ms() >= deadline)
            break;
    }
    bool closed = c->closed;
    int reason = c->reason;
    if (q != NULL) {
        c->queued_bytes -= sizeof(*q) + q->msg.len;
        maybe_release(c);
    }
    pthread_mutex_unlock(&c->lock);
    if (q == NULL && closed)
        return reason != 0 ? reason : ZINX_ECLOSED;
    if (q == NULL)
        return ZINX_ETIMEDOUT;
    *msg = q->msg;
    free(q);
    return 0;
}

int zinx_sync_client_call(zinx_sync_client_t *c, uint32_t id, const void *data,
                          uint32_t len, int64_t want_id, uint32_t timeout_ms,
                          zinx_msg_t *reply)
{
    int rc = zinx_sync_client_send(c, id, data, len);
    return rc != 0 ? rc : zinx_sync_client_recv(c, want_id, timeout_ms, reply);
}

void zinx_sync_msg_free(zinx_msg_t *msg)
{
    if (msg == NULL)
        return;
    free((void *)msg->data);
    msg->data = NULL;
    msg->len = 0;
}

void zinx_sync_client_free(zinx_sync_client_t *c)
{
    if (c == NULL)
        return;
    /* A held connection would wait out the drain with unread input. */
    pthread_mutex_lock(&c->lock);
    c->discarding = true;
    c->max_queued = SIZE_MAX;
    c->queued_bytes = 0;
    maybe_release(c);
    pthread_mutex_unlock(&c->lock);
    zinx_conn_unref(c->conn);
    if (c->dialer != NULL)
        zinx_dialer_close(c->dialer);
    zinx_server_free(c->endpoint); /* drains and joins: no more on_message */
    for (queued_t *q = c->head, *next; q != NULL; q = next) {
        next = q->next;
        zinx_sync_msg_free(&q->msg);
        free(q);
    }
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}
