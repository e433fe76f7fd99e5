/*
 * Dialers: outgoing connections with timeout and reconnect.
 *
 * A dialer lives on one loop. Its connecting socket, its timer (connect
 * timeout or back-off) and its attempt counter are loop-thread state; the
 * current connection and the outcome are guarded by `lock` because user
 * threads read them (zinx_dialer_conn, zinx_dialer_wait).
 *
 * References: the user's handle, the loop's while the dialer is active,
 * the server's registry entry, each posted operation and each connection
 * the dialer made.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "kcp/kcp.h"
#include "stream/stream.h"
#include "tls/client.h"
#include "ws/ws.h"

#define MAX_ADDRS 8
#define DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define DEFAULT_BACKOFF_INITIAL_MS 100u
#define DEFAULT_BACKOFF_MAX_MS 30000u

/* Operations posted to the dialer's loop, run in this order. A bit set in
   `posted_ops` means the dialer is on the loop's posted stack (holding a
   reference), so posting allocates nothing and cannot fail. */
enum dial_op {
    OP_DIAL = 1u << 0,  /* start connecting */
    OP_LOST = 1u << 1,  /* the connection ended */
    OP_CLOSE = 1u << 2, /* stop for good */
};

struct zinx_dialer {
    zinx__io_t io;          /* the connecting socket's events */
    zinx__closure_t posted; /* runs posted_ops on the loop */
    atomic_uint refs;
    zinx_server_t *server;
    zinx__shard_t *shard; /* its connections live there */
    zinx__loop_t *loop;
    zinx_dial_opts_t opts;
    atomic_uint posted_ops; /* enum dial_op bits waiting for the loop */
    bool has_tls;
    zinx__tls_dial_t tls; /* the TLS layer's settings, with has_tls */
    struct sockaddr_storage addrs[MAX_ADDRS];
    socklen_t addr_lens[MAX_ADDRS];
    int naddrs;
    /* The layers of its connections (ws:// : WebSocket; TLS would go
       below it), and their settings. */
    zinx__stack_spec_t stack;
    zinx__ws_conf_t *ws;

    /* Loop thread only. */
    int fd; /* connecting socket, or -1 */
    int addr_index;
    uint32_t attempt; /* attempts since the last success */
    uint64_t rng;     /* xorshift state for jitter */
    bool active;      /* the loop still holds its reference */
    zinx__timer_t timer;

    /* Any thread, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    zinx_conn_t *conn; /* reference to the current connection */
    /* Reference to a connection whose handshake (TLS) is under way: it
       becomes `conn` when it opens; its end before that is a failed
       attempt. */
    zinx_conn_t *opening;
    /* Reference to the connection that came up and ended when no other
       follows it (no reconnect): a waiter that was slower than its whole
       life still gets it, already closed, rather than an error. */
    zinx_conn_t *ended;
    bool stopped;   /* closed by the user or the endpoint */
    bool detached;  /* the endpoint stopped: it may be freed */
    bool reporting; /* on_event is running on the loop thread */
    bool gave_up;
    int last_status;
};

static void on_timer(zinx__timer_t *t, void *arg);
static void run_posted(void *arg);
static void drop_posted(void *arg);
static void on_events(zinx__io_t *io, uint32_t events);

zinx_dialer_t *zinx__dialer_ref(zinx_dialer_t *d)
{
    atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
    return d;
}

void zinx__dialer_unref(zinx_dialer_t *d)
{
    if (d == NULL ||
        atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
        return;
    zinx_conn_unref(d->conn);
    zinx_conn_unref(d->opening);
    zinx_conn_unref(d->ended);
    if (d->has_tls)
        zinx__tls_dial_free(&d->tls);
    zinx__ws_conf_free(d->ws);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    free(d);
}

/* Events stop with the stop: once zinx_dialer_close() returned, on_event
   neither runs nor will run, so its udata may be freed. */
static void report(zinx_dialer_t *d, zinx_dial_event_t ev, int status,
                   uint32_t next_delay_ms)
{
    if (d->opts.on_event == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    bool stopped = d->stopped;
    d->reporting = !stopped;
    pthread_mutex_unlock(&d->lock);
    if (stopped)
        return;
    d->opts.on_event(d, ev, status, d->attempt, next_delay_ms, d->opts.udata);
    pthread_mutex_lock(&d->lock);
    d->reporting = false;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static bool is_stopped(zinx_dialer_t *d)
{
    pthread_mutex_lock(&d->lock);
    bool stopped = d->stopped;
    pthread_mutex_unlock(&d->lock);
    return stopped;
}

/* Capped exponential back-off with "equal jitter": a delay in [b/2, b],
   so a fleet of clients that lost the same server does not return in
   lock-step, and none retries sooner than half the back-off. */
static uint32_t backoff_ms(zinx_dialer_t *d)
{
    uint64_t b = d->opts.backoff_initial_ms;
    for (uint32_t i = 1; i < d->attempt && b < d->opts.backoff_max_ms; i++)
        b *= 2;
    if (b > d->opts.backoff_max_ms)
        b = d->opts.backoff_max_ms;
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    uint64_t half = b / 2;
    return (uint32_t)(half + (half ? d->rng % (half + 1) : 0));
}

/* Loop thread: the loop gives up its reference (no more attempts). */
static void deactivate(zinx_dialer_t *d)
{
    if (!d->active)
        return;
    d->active = false;
    zinx__loop_timer_cancel(d->loop, &d->timer);
    if (d->fd >= 0) {
        zinx__io_stop(d->loop, &d->io);
        close(d->fd);
        d->fd = -1;
    }
    zinx__dialer_unref(d);
}

/* No more attempts: wake the waiters with `status`, then let go. */
static void give_up(zinx_dialer_t *d, int status)
{
    /* Reported before waiters wake, so a waiter that then closes the
       dialer has seen every event. */
    report(d, ZINX_DIAL_GAVE_UP, status, 0);
    pthread_mutex_lock(&d->lock);
    d->gave_up = true;
    if (d->conn == NULL)
        d->last_status = d->stopped ? ZINX_ECLOSED : status;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    deactivate(d);
}

static bool may_retry(const zinx_dialer_t *d)
{
    return d->opts.reconnect &&
           (d->opts.max_attempts == 0 || d->attempt < d->opts.max_attempts);
}

static void retry_later(zinx_dialer_t *d, int status)
{
    uint32_t delay = backoff_ms(d);
    report(d, ZINX_DIAL_FAILED, status, delay);
    if (zinx__loop_timer_arm(d->loop, &d->timer, zinx__now_ms() + delay))
        give_up(d, ZINX_ENOMEM);
}

static void start_attempt(zinx_dialer_t *d);
static void publish(zinx_dialer_t *d, zinx_conn_t *c);

static void attempt_failed(zinx_dialer_t *d, int status)
{
    zinx__loop_timer_cancel(d->loop, &d->timer);
    if (d->fd >= 0) {
        zinx__io_stop(d->loop, &d->io);
        close(d->fd);
        d->fd = -1;
    }
    pthread_mutex_lock(&d->lock);
    d->last_status = status;
    pthread_mutex_unlock(&d->lock);
    /* Another address of the same name is tried within the same attempt. */
    if (++d->addr_index < d->naddrs) {
        start_attempt(d);
        return;
    }
    d->addr_index = 0;
    if (may_retry(d) && !is_stopped(d)) {
        retry_later(d, status);
        return;
    }
    report(d, ZINX_DIAL_FAILED, status, 0);
    give_up(d, status);
}

static void connected(zinx_dialer_t *d)
{
    zinx__loop_timer_cancel(d->loop, &d->timer);
    zinx__io_stop(d->loop, &d->io);
    int fd = d->fd;
    d->fd = -1;
    int err;
    zinx_conn_t *c =
        zinx__server_open_conn(d->server, d->shard, fd, &d->stack, &err);
    if (c == NULL) {
        attempt_failed(d, err);
        return;
    }
    zinx__conn_set_dialer(c, d);
    if (d->has_tls) {
        /* Connected once the handshake is over (zinx__dialer_conn_opened). */
        pthread_mutex_lock(&d->lock);
        zinx_conn_unref(d->opening);
        d->opening = zinx_conn_ref(c);
        pthread_mutex_unlock(&d->lock);
        zinx__conn_adopt(c);
        return;
    }
    publish(d, c);
}

/* KCP has no handshake: the conversation is up as soon as it exists. */
static void connect_kcp(zinx_dialer_t *d, const struct sockaddr_storage *a,
                        socklen_t len)
{
    int err;
    zinx_conn_t *c = zinx__kcp_dial(d->server, d->shard, a, len, &err);
    if (c == NULL) {
        attempt_failed(d, err);
        return;
    }
    zinx__conn_set_dialer(c, d);
    publish(d, c);
}

void zinx__dialer_conn_opened(zinx_dialer_t *d, zinx_conn_t *c)
{
    pthread_mutex_lock(&d->lock);
    bool mine = d->opening == c;
    if (mine)
        d->opening = NULL;
    pthread_mutex_unlock(&d->lock);
    if (!mine)
        return;
    if (is_stopped(d))
        zinx_conn_close(c); /* closed while it shook hands */
    publish(d, c);
    zinx_conn_unref(c); /* opening's reference */
}

/* The connection c is up: waiters get it, attempts start over. Loop
   thread. */
static void publish(zinx_dialer_t *d, zinx_conn_t *c)
{
    bool adopt = !d->has_tls;
    pthread_mutex_lock(&d->lock);
    zinx_conn_unref(d->conn);
    d->conn = zinx_conn_ref(c);
    d->last_status = 0;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    report(d, ZINX_DIAL_CONNECTED, 0, 0);
    d->attempt = 0;
    d->addr_index = 0;
    if (adopt)
        zinx__conn_adopt(c); /* c's first reference belongs to the loop */
}

static void start_attempt(zinx_dialer_t *d)
{
    if (is_stopped(d)) {
        give_up(d, ZINX_ECLOSED);
        return;
    }
    if (d->addr_index == 0)
        d->attempt++;
    const struct sockaddr_storage *a = &d->addrs[d->addr_index];
    if (d->opts.kcp) {
        connect_kcp(d, a, d->addr_lens[d->addr_index]);
        return;
    }
    int fd =
        socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        attempt_failed(d, -errno);
        return;
    }
    d->fd = fd;
    if (connect(fd, (const struct sockaddr *)a, d->addr_lens[d->addr_index]) ==
        0) {
        connected(d);
        return;
    }
    if (errno != EINPROGRESS) {
        attempt_failed(d, -errno);
        return;
    }
    int rc = zinx__io_start(d->loop, &d->io, fd, ZINX__EV_WRITE);
    if (rc == 0)
        rc = zinx__loop_timer_arm(d->loop, &d->timer,
                                  zinx__now_ms() + d->opts.connect_timeout_ms);
    if (rc != 0)
        attempt_failed(d, rc);
}

static void on_events(zinx__io_t *io, uint32_t events)
{
    ZINX__UNUSED(events);
    zinx_dialer_t *d = ZINX__CONTAINER_OF(io, zinx_dialer_t, io);
    if (d->fd < 0)
        return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0)
        connected(d);
    else
        attempt_failed(d, -err);
}

static void on_timer(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    zinx_dialer_t *d = arg;
    if (d->fd >= 0)
        attempt_failed(d, ZINX_ETIMEDOUT); /* the connect timed out */
    else
        start_attempt(d); /* the back-off is over */
}

/* A connection ended before its handshake did: the attempt failed. */
static bool handshake_lost(zinx_dialer_t *d)
{
    pthread_mutex_lock(&d->lock);
    zinx_conn_t *c = d->opening;
    bool ended = c != NULL && !zinx_conn_is_open(c);
    if (ended)
        d->opening = NULL;
    pthread_mutex_unlock(&d->lock);
    if (!ended)
        return false;
    int status = zinx_conn_close_reason(c);
    zinx_conn_unref(c);
    if (d->active)
        attempt_failed(d, status != 0 ? status : ZINX_ECONNRESET);
    return true;
}

static void conn_lost(zinx_dialer_t *d)
{
    if (handshake_lost(d))
        return;
    bool last = !d->active || !d->opts.reconnect;
    pthread_mutex_lock(&d->lock);
    zinx_conn_t *c = d->conn;
    d->conn = NULL;
    /* Not once closed: the connection holds the dialer, and a closed
       dialer has no waiter left to give it to. */
    if (last && d->ended == NULL && !d->stopped) {
        d->ended = c;
        c = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    zinx_conn_unref(c);
    if (!d->active)
        return;
    if (!d->opts.reconnect || is_stopped(d)) {
        report(d, ZINX_DIAL_DISCONNECTED, 0, 0);
        give_up(d, ZINX_ECLOSED);
        return;
    }
    d->attempt = 1; /* the first retry after a loss waits the initial delay */
    uint32_t delay = backoff_ms(d);
    d->attempt = 0;
    report(d, ZINX_DIAL_DISCONNECTED, 0, delay);
    if (zinx__loop_timer_arm(d->loop, &d->timer, zinx__now_ms() + delay))
        give_up(d, ZINX_ENOMEM);
}

/* Any thread: have the loop run op; the first pending bit posts. */
static void post_op(zinx_dialer_t *d, unsigned op)
{
    if (atomic_fetch_or(&d->posted_ops, op) == 0)
        zinx__loop_post(d->loop, &zinx__dialer_ref(d)->posted);
}

static void run_posted(void *arg)
{
    zinx_dialer_t *d = arg;
    unsigned ops = atomic_exchange(&d->posted_ops, 0);
    if ((ops & OP_DIAL) && d->active)
        start_attempt(d);
    if (ops & OP_LOST)
        conn_lost(d);
    if ((ops & OP_CLOSE) && d->active)
        give_up(d, ZINX_ECLOSED); /* reports nothing: stopped */
    zinx__dialer_unref(d);
}

/* The loop was freed with the dialer still posted. */
static void drop_posted(void *arg)
{
    zinx__dialer_unref(arg);
}

void zinx__dialer_conn_ended(zinx_dialer_t *d)
{
    post_op(d, OP_LOST);
}

/* Stops attempts and closes the current connection (gracefully). When it
   returns, on_event has finished and will not be called again. */
static void stop(zinx_dialer_t *d)
{
    pthread_mutex_lock(&d->lock);
    bool first = !d->stopped;
    d->stopped = true;
    pthread_cond_broadcast(&d->cond);
    /* Wait out a report in progress, unless it is ours (close called from
       inside on_event runs on the loop thread). */
    while (d->reporting && !zinx__loop_is_self(d->loop))
        pthread_cond_wait(&d->cond, &d->lock);
    zinx_conn_t *c = first && d->conn ? zinx_conn_ref(d->conn) : NULL;
    zinx_conn_t *o = first && d->opening ? zinx_conn_ref(d->opening) : NULL;
    pthread_mutex_unlock(&d->lock);
    if (!first)
        return;
    post_op(d, OP_CLOSE);
    zinx_conn_t *both[2] = {c, o};
    for (int i = 0; i < 2; i++) {
        if (both[i] != NULL) {
            zinx_conn_close(both[i]);
            zinx_conn_unref(both[i]);
        }
    }
}

void zinx__dialer_shutdown(zinx_dialer_t *d)
{
    stop(d);
    pthread_mutex_lock(&d->lock);
    d->detached = true;
    pthread_mutex_unlock(&d->lock);
}

/* "unix:PATH": one address, no resolver. */
static int resolve_unix(zinx_dialer_t *d, const char *host)
{
    int rc = zinx__addr_unix(host, &d->addrs[0], &d->addr_lens[0]);
    if (rc == 0)
        d->naddrs = 1;
    return rc;
}

static int resolve(zinx_dialer_t *d, const char *host, int port)
{
    if (zinx__addr_is_unix(host))
        return resolve_unix(d, host);
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_FAIL) {
        /* AI_ADDRCONFIG hides loopback-only families; ask again without. */
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(host, service, &hints, &res);
    }
    if (rc != 0)
        return rc == EAI_MEMORY ? ZINX_ENOMEM : ZINX_ENOENT;
    for (struct addrinfo *ai = res; ai != NULL && d->naddrs < MAX_ADDRS;
         ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(d->addrs[0]))
            continue;
        memcpy(&d->addrs[d->naddrs], ai->ai_addr, ai->ai_addrlen);
        d->addr_lens[d->naddrs++] = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    return d->naddrs > 0 ? 0 : ZINX_ENOENT;
}

static void apply_defaults(zinx_dial_opts_t *o)
{
    if (o->connect_timeout_ms == 0)
        o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (o->backoff_initial_ms == 0)
        o->backoff_initial_ms = DEFAULT_BACKOFF_INITIAL_MS;
    if (o->backoff_max_ms == 0)
        o->backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    if (o->backoff_max_ms < o->backoff_initial_ms)
        o->backoff_max_ms = o->backoff_initial_ms;
}

static zinx_dialer_t *dialer_new(zinx_server_t *s, const zinx_dial_opts_t *opts)
{
    zinx_dialer_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    zinx__io_init(&d->io, on_events);
    zinx__closure_init(&d->posted, run_posted, drop_posted, d);
    atomic_init(&d->refs, 2); /* the user's and the loop's */
    d->server = s;
    d->shard = zinx__server_pick_shard(s);
    d->loop = zinx__shard_loop(d->shard);
    if (opts != NULL)
        d->opts = *opts;
    apply_defaults(&d->opts);
    d->fd = -1;
    d->active = true;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    d->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)d ^ 1u;
    zinx__timer_init(&d->timer, on_timer, d);
    pthread_mutex_init(&d->lock, NULL);
    zinx__cond_init_monotonic(&d->cond);
    return d;
}

/* ws://host:port/path: the WebSocket layer on each connection. */
static int dialer_ws(zinx_dialer_t *d, const char *host, int port)
{
    int rc =
        zinx__ws_client_conf_new(host, port, d->opts.ws_path,
                                 d->server->cfg.ws_max_message_size, &d->ws);
    if (rc != 0)
        return rc;
    d->opts.ws_path = d->ws->path; /* the caller's string may go */
    zinx__stack_push(&d->stack, zinx__ws_layer_make, d->ws);
    return 0;
}

int zinx_server_dial(zinx_server_t *s, const char *host, int port,
                     const zinx_dial_opts_t *opts, zinx_dialer_t **out)
{
    if (s == NULL || host == NULL || out == NULL)
        return ZINX_EINVAL;
    if (!zinx__addr_is_unix(host) && (port <= 0 || port > 65535))
        return ZINX_EINVAL;
    if (atomic_load(&s->state) != ZINX__SERVER_RUNNING)
        return ZINX_ESTATE;
    zinx_dialer_t *d = dialer_new(s, opts);
    if (d == NULL)
        return ZINX_ENOMEM;
    int rc = 0;
    if (opts != NULL && opts->kcp && (opts->tls != NULL || opts->ws_path))
        rc = ZINX_EINVAL; /* KCP carries the frames itself */
    if (rc == 0 && opts != NULL && opts->tls != NULL) {
        rc = zinx__tls_dial_init(&d->tls, opts->tls, host);
        d->has_tls = rc == 0;
        /* TLS first: a WebSocket upgrade travels inside it (wss). */
        if (d->has_tls)
            zinx__stack_push(&d->stack, d->tls.stack.layers[0].make,
                             d->tls.stack.layers[0].conf);
    }
    if (rc == 0)
        rc = resolve(d, host, port);
    if (rc == 0 && d->opts.ws_path != NULL)
        rc = dialer_ws(d, host, port);
    if (rc == 0)
        rc = zinx__server_add_dialer(s, d);
    if (rc == 0)
        post_op(d, OP_DIAL);
    if (rc != 0) {
        zinx__server_remove_dialer(s, d);
        if (d->has_tls)
            zinx__tls_dial_free(&d->tls);
        zinx__ws_conf_free(d->ws);
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->cond);
        free(d); /* never reached another thread */
        return rc;
    }
    *out = d;
    return 0;
}

zinx_conn_t *zinx_dialer_conn(zinx_dialer_t *d)
{
    pthread_mutex_lock(&d->lock);
    zinx_conn_t *c = d->conn ? zinx_conn_ref(d->conn) : NULL;
    pthread_mutex_unlock(&d->lock);
    return c;
}

int zinx_dialer_wait(zinx_dialer_t *d, uint32_t timeout_ms, zinx_conn_t **out)
{
    uint64_t deadline = zinx__now_ms() + timeout_ms;
    struct timespec ts = zinx__deadline_ts(deadline);
    int rc = 0;
    pthread_mutex_lock(&d->lock);
    while (d->conn == NULL && !d->gave_up && !d->stopped) {
        if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) != 0 &&
            zinx__now_ms() >= deadline)
            break;
    }
    zinx_conn_t *got = d->conn != NULL ? d->conn : d->ended;
    if (got != NULL && (d->conn != NULL || !d->stopped)) {
        if (out != NULL)
            *out = zinx_conn_ref(got);
    } else if (d->stopped) {
        rc = ZINX_ECLOSED;
    } else {
        rc = d->gave_up ? d->last_status : ZINX_ETIMEDOUT;
        if (rc == 0)
            rc = ZINX_ECLOSED;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void zinx_dialer_close(zinx_dialer_t *d)
{
    if (d == NULL)
        return;
    stop(d);
    pthread_mutex_lock(&d->lock);
    bool detached = d->detached;
    zinx_conn_t *ended = d->ended; /* it holds the dialer: no cycle */
    d->ended = NULL;
    pthread_mutex_unlock(&d->lock);
    zinx_conn_unref(ended);
    /* A stopped endpoint already dropped its registry entry and may be
       gone; only a live one is told. */
    if (!detached)
        zinx__server_remove_dialer(d->server, d);
    zinx__dialer_unref(d);
}
