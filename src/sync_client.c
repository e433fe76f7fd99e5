/*
 * The blocking helper: a private client endpoint (one I/O thread, handlers
 * inline) whose fallback router queues copies of every message for
 * zinx_sync_client_recv().
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

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
    bool closed;
};

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
    if (c->tail != NULL)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    ZINX__UNUSED(conn);
    zinx_sync_client_t *c = udata;
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static zinx_server_t *make_endpoint(zinx_sync_client_t *c,
                                    zinx_packet_format_t format,
                                    uint32_t max_packet_size)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.io_threads = 1;
    cfg.worker_pool_size = 0;
    cfg.packet_format = format;
    cfg.max_packet_size = max_packet_size ? max_packet_size : 4096;
    cfg.drain_timeout_ms = 1000;
    cfg.log_isolation_level = 3; /* a helper stays quiet but for errors */
    zinx_server_t *s = zinx_client_new(&cfg);
    if (s == NULL)
        return NULL;
    zinx_router_t r = {.handle = on_message, .udata = c};
    zinx_server_set_fallback_router(s, &r);
    zinx_server_on_conn_stop(s, on_stop, c);
    return s;
}

int zinx_sync_client_connect(const char *host, int port,
                             zinx_packet_format_t format,
                             uint32_t max_packet_size, uint32_t timeout_ms,
                             zinx_sync_client_t **out)
{
    if (host == NULL || out == NULL)
        return ZINX_EINVAL;
    zinx_sync_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ZINX_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    zinx__cond_init_monotonic(&c->cond);
    c->endpoint = make_endpoint(c, format, max_packet_size);
    int rc = c->endpoint ? zinx_server_start(c->endpoint) : ZINX_ENOMEM;
    if (rc == 0) {
        zinx_dial_opts_t o = {.connect_timeout_ms = timeout_ms};
        rc = zinx_server_dial(c->endpoint, host, port, &o, &c->dialer);
    }
    if (rc == 0)
        rc = zinx_dialer_wait(c->dialer, timeout_ms, &c->conn);
    if (rc != 0) {
        zinx_sync_client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int zinx_sync_client_send(zinx_sync_client_t *c, uint32_t id, const void *data,
                          uint32_t len)
{
    if (c == NULL)
        return ZINX_EINVAL;
    return zinx_conn_send_msg(c->conn, id, data, len);
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
    pthread_mutex_unlock(&c->lock);
    if (q == NULL)
        return closed ? ZINX_ECLOSED : ZINX_ETIMEDOUT;
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
