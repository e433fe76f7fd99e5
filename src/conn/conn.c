/*
 * Connections: reading and decoding, handing frames to the worker,
 * writing replies, closing, and properties.
 *
 * Ownership of the fields:
 *   - "loop" fields are touched only by the owning I/O thread;
 *   - `lock` guards pending output, `sendable` and the properties;
 *   - the atomics carry requests between threads (close, poke, inflight).
 *
 * References: the loop holds one from creation until the socket is closed
 * (released after the loop iteration), the connection manager holds one
 * while the connection is listed, and every queued task, inbox post,
 * attention-list entry and lingering entry holds one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* "[" + IPv6 text + "]:" + port + NUL. */
#define ADDR_TEXT_MAX (INET6_ADDRSTRLEN + 9)
/* Reads per readiness event: bounded so one busy peer cannot starve the
   other connections of its loop. */
#define READS_PER_EVENT 4

enum conn_state {
    CONN_NEW,      /* accepted, not yet registered with its loop */
    CONN_OPEN,     /* reading and writing */
    CONN_DRAINING, /* not reading; finishing queued work and output */
    CONN_FINISHED  /* sends refused; OnConnStop scheduled */
};

enum close_request { CLOSE_NONE, CLOSE_GRACEFUL, CLOSE_NOW };

typedef struct property {
    struct property *next;
    void *value;
    zinx_property_free_fn free_fn;
    char key[];
} property_t;

struct zinx_conn {
    zinx__pollable_t poll; /* first: epoll events are routed by kind */
    atomic_uint refs;
    uint64_t id;
    zinx_server_t *server;
    zinx__loop_t *loop;
    zinx__worker_t *worker; /* NULL: handlers run on the I/O thread */
    uint32_t worker_id;
    zinx_packet_format_t format;
    uint32_t max_packet_size;
    uint32_t output_hard_limit;
    size_t high_water; /* OutputHighWater */
    /* Made with the connection, so starting and stopping never allocate
       (NULL without a worker). */
    zinx__task_t *start_task, *stop_task;

    /* Loop thread only. */
    int fd;
    int state;
    uint32_t events;
    bool peer_eof;
    bool paused_worker;   /* worker queue full: frames wait in `in` */
    bool paused_dispatch; /* output behind (or held): frames wait in `in` */
    bool paused_output;   /* too much unsent output */
    bool lingering;       /* finished: flushing, then waiting for EOF */
    bool wr_shut;         /* our FIN was sent */
    bool has_timer;       /* holds a slot in the loop's timer heap */
    bool retained;        /* listed in the loop's buffer sweep */
    uint64_t last_io_ms;  /* last read or write, for the buffer sweep */
    zinx__conn_links_t links;
    zinx__buf_t in;          /* partial frame, or frames waiting for room */
    zinx__buf_t out;         /* unsent bytes */
    zinx__timer_t timer;     /* the earliest of the deadlines below */
    uint64_t last_rx_ms;     /* last byte received */
    uint64_t frame_start_ms; /* a partial frame waits since; 0: none */
    uint64_t soft_since_ms;  /* above OutputSoftLimit since; 0: below */
    uint64_t stall_since_ms; /* output waits, no progress since; 0: none */
    uint64_t next_beat_ms;   /* next heartbeat; 0: heartbeat off */
    uint32_t unknown_msgs;   /* unrouted frames (handler thread only) */

    /* Any thread. */
    atomic_int close_req;
    atomic_int close_reason; /* 0 or the ZINX_E* code that ended it */
    atomic_bool parked;      /* frames wait at the worker for room */
    atomic_bool user_hold;   /* the owner takes no more messages for now */
    atomic_bool open;
    atomic_bool finished;
    atomic_bool poked;
    atomic_bool draining;
    atomic_uint inflight; /* frames handed to the worker, not yet handled */
    atomic_size_t unsent; /* bytes in out + pending: the output caps */

    pthread_mutex_t lock;
    zinx__buf_t pending; /* frames sent from other threads */
    bool sendable;
    bool props_released;
    property_t *props;

    void *user_data;
    zinx_dialer_t *dialer; /* reference; NULL for accepted connections */
    char remote[ADDR_TEXT_MAX];
    char local[ADDR_TEXT_MAX];
};

/* How a connection ends: dropping what is unsent, or sending it first. */
enum finish_how { FINISH_ABORT, FINISH_FLUSH };

static void finish(zinx_conn_t *c, enum finish_how how);
static void nudge(zinx_conn_t *c);
static void on_timer(zinx__timer_t *t, void *arg);

/* ---- creation and references ------------------------------------------ */

static void format_addr(const struct sockaddr_storage *ss, char *out)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin_port);
        snprintf(out, ADDR_TEXT_MAX, "%s:%u", ip, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
        snprintf(out, ADDR_TEXT_MAX, "[%s]:%u", ip, port);
    } else {
        snprintf(out, ADDR_TEXT_MAX, "?");
    }
}

static void read_addrs(zinx_conn_t *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->remote);
    len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->local);
}

zinx_conn_t *zinx__conn_new(zinx_server_t *server, int fd, uint64_t id,
                            zinx__loop_t *loop, zinx__worker_t *worker,
                            uint32_t worker_id)
{
    if (zinx__fault(server, ZINX__ALLOC_CONN))
        return NULL;
    zinx_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (worker != NULL) {
        c->start_task = zinx__task_new_owned(ZINX__TASK_START);
        c->stop_task = zinx__task_new_owned(ZINX__TASK_STOP);
        if (c->start_task == NULL || c->stop_task == NULL) {
            free(c->start_task);
            free(c->stop_task);
            free(c);
            return NULL;
        }
    }
    c->poll.kind = ZINX__POLL_CONN;
    atomic_init(&c->refs, 1); /* the loop's */
    c->id = id;
    c->server = server;
    c->loop = loop;
    c->worker = worker;
    c->worker_id = worker_id;
    c->format = server->cfg.packet_format;
    c->max_packet_size = server->cfg.max_packet_size;
    c->output_hard_limit = server->cfg.output_hard_limit;
    c->high_water = server->cfg.output_high_water;
    c->fd = fd;
    c->state = CONN_NEW;
    c->sendable = true;
    atomic_init(&c->open, true);
    zinx__timer_init(&c->timer, on_timer, c);
    pthread_mutex_init(&c->lock, NULL);
    strcpy(c->remote, "?");
    strcpy(c->local, "?");
    read_addrs(c);
    return c;
}

static void free_props(property_t *p)
{
    while (p != NULL) {
        property_t *next = p->next;
        if (p->free_fn != NULL)
            p->free_fn(p->value);
        free(p);
        p = next;
    }
}

static void conn_free(zinx_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    zinx__buf_free(&c->in);
    zinx__buf_free(&c->out);
    zinx__buf_free(&c->pending);
    free_props(c->props);
    if (c->dialer != NULL)
        zinx__dialer_unref(c->dialer);
    free(c->start_task);
    free(c->stop_task);
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

/* ---- accessors ----------------------------------------------------------- */

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
    return c->remote;
}

const char *zinx_conn_local_addr(const zinx_conn_t *c)
{
    return c->local;
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

void zinx__conn_set_dialer(zinx_conn_t *c, zinx_dialer_t *d)
{
    c->dialer = zinx__dialer_ref(d);
}

zinx__conn_links_t *zinx__conn_links(zinx_conn_t *c)
{
    return &c->links;
}

size_t zinx__conn_linger_backlog(zinx_conn_t *c)
{
    if (c->fd < 0)
        return 0;
    int queued = 0; /* sent but not acknowledged, or not sent yet */
    if (ioctl(c->fd, SIOCOUTQ, &queued) != 0 || queued < 0)
        queued = 0;
    return zinx__buf_size(&c->out) + (size_t)queued;
}

bool zinx__conn_over_high_water(const zinx_conn_t *c)
{
    return atomic_load_explicit(&c->unsent, memory_order_relaxed) >
           c->high_water;
}

bool zinx__conn_finished(const zinx_conn_t *c)
{
    return atomic_load(&c->finished);
}

void zinx__conn_set_parked(zinx_conn_t *c, bool parked)
{
    atomic_store(&c->parked, parked);
}

void zinx__conn_hold(zinx_conn_t *c, bool hold)
{
    if (atomic_exchange(&c->user_hold, hold) && !hold)
        nudge(c); /* held frames and reading go on */
}

size_t zinx__conn_unsent(const zinx_conn_t *c)
{
    return atomic_load(&c->unsent);
}

size_t zinx__conn_high_water(const zinx_conn_t *c)
{
    return c->high_water;
}

int zinx_conn_close_reason(const zinx_conn_t *c)
{
    return c == NULL ? ZINX_EINVAL : atomic_load(&c->close_reason);
}

/* ---- cross-thread signalling --------------------------------------------- */

void zinx__conn_poke(zinx_conn_t *c)
{
    if (atomic_exchange(&c->poked, true))
        return; /* on the posted stack already: attended to later */
    zinx__loop_post(c->loop, &zinx_conn_ref(c)->poll);
}

/* Routes a request to the loop thread: directly when already there. */
static void nudge(zinx_conn_t *c)
{
    if (zinx__loop_is_self(c->loop))
        zinx__loop_schedule(c->loop, c);
    else
        zinx__conn_poke(c);
}

void zinx__conn_batch_done(zinx_conn_t *c, uint32_t count)
{
    /* Pairs with begin_drain(): either this thread sees `draining`, or
       the loop sees inflight at zero; both are sequentially consistent. */
    if (atomic_fetch_sub(&c->inflight, count) == count &&
        atomic_load(&c->draining))
        zinx__conn_poke(c);
}

/* ---- hooks ----------------------------------------------------------------
 */

void zinx__conn_run_start(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    if (s->on_start != NULL)
        s->on_start(c, s->on_start_udata);
}

void zinx__conn_run_stop(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    if (s->on_stop != NULL)
        s->on_stop(c, s->on_stop_udata);
    pthread_mutex_lock(&c->lock);
    property_t *props = c->props;
    c->props = NULL;
    c->props_released = true;
    pthread_mutex_unlock(&c->lock);
    free_props(props);
    atomic_fetch_add_explicit(&s->stats.closed, 1, memory_order_relaxed);
    if (c->dialer != NULL)
        zinx__dialer_conn_ended(c->dialer);
    /* Last: once the table is empty the server may finish stopping. */
    zinx__connmgr_remove(s->mgr, c->id);
}

/* ---- socket bookkeeping (loop thread) ------------------------------------ */

/* Whether the output is too far behind for the connection to take more
   requests: it is above OutputHighWater, and stays so until half of that
   is sent (hysteresis, so that reading does not flap). Counts replies
   queued by other threads too (`unsent`). */
static bool output_full(zinx_conn_t *c)
{
    size_t unsent = atomic_load_explicit(&c->unsent, memory_order_relaxed);
    if (c->paused_output) {
        if (unsent > c->high_water / 2)
            return true;
        c->paused_output = false;
        return false;
    }
    if (unsent > c->high_water) {
        c->paused_output = true;
        return true;
    }
    return false;
}

/* Frames wait in `in` for room: in the worker's queue, or in the output
   (or the owner holds the connection). */
static bool frames_held(const zinx_conn_t *c)
{
    return c->paused_worker || c->paused_dispatch;
}

static void set_interest(zinx_conn_t *c)
{
    if (c->fd < 0)
        return;
    uint32_t ev = 0;
    if (c->lingering) {
        ev = EPOLLIN | (zinx__buf_size(&c->out) > 0 ? EPOLLOUT : 0);
    } else {
        bool full = output_full(c);
        if (c->state == CONN_OPEN && !frames_held(c) && !full &&
            !atomic_load_explicit(&c->user_hold, memory_order_relaxed))
            ev |= EPOLLIN;
        if (zinx__buf_size(&c->out) > 0)
            ev |= EPOLLOUT;
    }
    if (ev != c->events) {
        zinx__loop_watch(c->loop, c->fd, c, ev, false);
        c->events = ev;
    }
}

void zinx__conn_close_fd(zinx_conn_t *c)
{
    if (c->fd < 0)
        return;
    zinx__loop_unwatch(c->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    c->lingering = false;
    zinx__loop_bury(c->loop, c); /* the loop's reference */
}

/* Records why the connection ended; the first reason stays. */
static void set_reason(zinx_conn_t *c, int err)
{
    int none = 0;
    atomic_compare_exchange_strong(&c->close_reason, &none, err);
}

static void fail(zinx_conn_t *c, int err)
{
    set_reason(c, err);
    if (err == ZINX_ENOMEM) {
        /* One connection pays for the shortage; the loop goes on. */
        atomic_fetch_add_explicit(&c->server->stats.out_of_memory, 1,
                                  memory_order_relaxed);
        ZINX__LOG_LIMITED(c->server, ZINX__LOGK_OOM, ZINX_LOG_WARN,
                          "conn %llu (%s): out of memory, closing",
                          (unsigned long long)c->id, c->remote);
    } else {
        ZINX__LOG(c->server, ZINX_LOG_DEBUG, "conn %llu (%s): closed: %s",
                  (unsigned long long)c->id, c->remote, zinx_strerror(err));
    }
    finish(c, FINISH_ABORT);
}

/* Writes what it can of `out`. Returns 0 (perhaps with bytes left for
   EPOLLOUT) or a negative error; never ends the connection itself. */
static int write_out(zinx_conn_t *c)
{
    while (zinx__buf_size(&c->out) > 0) {
        ssize_t n = send(c->fd, zinx__buf_head(&c->out),
                         zinx__buf_size(&c->out), MSG_NOSIGNAL);
        if (n > 0) {
            zinx__buf_consume(&c->out, (size_t)n);
            atomic_fetch_sub_explicit(&c->unsent, (size_t)n,
                                      memory_order_relaxed);
            if (zinx__buf_size(&c->out) == 0)
                c->last_io_ms = zinx__now_ms();
            else if (c->stall_since_ms != 0)
                c->stall_since_ms = zinx__now_ms(); /* the peer reads */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return n < 0 ? -errno : ZINX_EPIPE;
    }
    return 0;
}

/* A finished connection sends what is left, then its FIN, then waits for
   the peer's EOF: closing with unread input would send RST and could
   destroy data the peer has not read yet (lingering close). */
static void linger_step(zinx_conn_t *c)
{
    if (write_out(c) != 0) {
        zinx__conn_close_fd(c);
        return;
    }
    if (zinx__buf_size(&c->out) == 0) {
        if (c->peer_eof) {
            zinx__conn_close_fd(c);
            return;
        }
        if (!c->wr_shut) {
            shutdown(c->fd, SHUT_WR);
            c->wr_shut = true;
        }
    }
    set_interest(c);
}

/* Queues the connection's own task (made with it: nothing to allocate). */
static void push_own_task(zinx_conn_t *c, zinx__task_t *t)
{
    t->conn = zinx_conn_ref(c);
    zinx__loop_push_task(c->loop, c->worker, t);
}

static void schedule_stop(zinx_conn_t *c)
{
    if (c->worker == NULL)
        zinx__conn_run_stop(c);
    else
        push_own_task(c, c->stop_task);
}

/* Ends the connection: no more sends, no more handlers queued after the
   ones already there, OnConnStop scheduled behind them. */
static void finish(zinx_conn_t *c, enum finish_how how)
{
    if (c->state == CONN_FINISHED)
        return;
    c->state = CONN_FINISHED;
    atomic_store(&c->open, false);
    atomic_store(&c->finished, true);
    /* Parked frames run now (their sends fail), before OnConnStop. Not
       guarded by `parked`: only the worker's lock orders a park against
       `finished` (see park() in worker.c). */
    if (c->worker != NULL)
        zinx__worker_unpark(c->worker, c);
    zinx__loop_timer_cancel(c->loop, &c->timer);
    if (c->has_timer) {
        c->has_timer = false;
        zinx__loop_release_timer(c->loop);
    }
    pthread_mutex_lock(&c->lock);
    c->sendable = false;
    size_t dropped = zinx__buf_size(&c->pending);
    zinx__buf_free(&c->pending);
    pthread_mutex_unlock(&c->lock);
    atomic_fetch_sub(&c->unsent, dropped);
    zinx__buf_free(&c->in);
    if (how == FINISH_ABORT || c->fd < 0) {
        zinx__buf_free(&c->out);
        atomic_store(&c->unsent, 0);
        zinx__conn_close_fd(c);
    } else {
        c->lingering = true;
        linger_step(c);
        if (c->fd >= 0) /* still waiting: bound the wait */
            zinx__loop_linger(c->loop, c);
    }
    schedule_stop(c);
}

static void begin_drain(zinx_conn_t *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->state = CONN_DRAINING;
    atomic_store(&c->open, false);
    atomic_store(&c->draining, true);
}

/* ---- deadlines (loop thread) -------------------------------------------- */

static uint64_t earliest(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    return b == 0 || a < b ? a : b;
}

static uint64_t heartbeat_max_ms(const zinx_conn_t *c)
{
    return (uint64_t)c->server->cfg.heartbeat_max * 1000u;
}

/* The heartbeat closes a silent peer the moment HeartbeatMax passes (as
   Zinx does), unless the decision waits for a beat: acknowledgements
   count as life (asked of the kernel at each beat), or the user's
   not-alive hook decides what happens, once per beat. */
static bool cut_at_heartbeat_max(const zinx_conn_t *c)
{
    return c->next_beat_ms != 0 && !c->server->cfg.heartbeat_count_acks &&
           c->server->hb_dead == NULL;
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
    if (cut_at_heartbeat_max(c))
        d = earliest(d, c->last_rx_ms + heartbeat_max_ms(c));
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

static void close_for(zinx_conn_t *c, atomic_uint_least64_t *counter,
                      zinx__log_kind_t kind, int reason, const char *why)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    ZINX__LOG_LIMITED(c->server, kind, ZINX_LOG_INFO,
                      "conn %llu (%s): %s, closing", (unsigned long long)c->id,
                      c->remote, why);
    set_reason(c, reason);
    finish(c, FINISH_ABORT);
}

/* Closes the connection if one of its deadlines passed. */
static bool expired(zinx_conn_t *c, uint64_t now)
{
    zinx_server_t *s = c->server;
    const zinx_config_t *cfg = &s->cfg;
    if (frames_held(c) || c->paused_output) {
        /* Our own back-pressure holds the bytes back, not the peer. */
        c->last_rx_ms = now;
        if (c->frame_start_ms != 0)
            c->frame_start_ms = now;
    }
    if (c->state == CONN_OPEN && cfg->frame_timeout_ms != 0 &&
        c->frame_start_ms != 0 &&
        now - c->frame_start_ms >= cfg->frame_timeout_ms) {
        close_for(c, &s->stats.timeouts, ZINX__LOGK_TIMEOUT, ZINX_ETIMEDOUT,
                  "frame not completed in time");
        return true;
    }
    if (c->state == CONN_OPEN && cfg->idle_timeout_ms != 0 &&
        now - c->last_rx_ms >= cfg->idle_timeout_ms) {
        close_for(c, &s->stats.timeouts, ZINX__LOGK_TIMEOUT, ZINX_ETIMEDOUT,
                  "idle timeout");
        return true;
    }
    if (c->stall_since_ms != 0 &&
        now - c->stall_since_ms >= cfg->output_soft_timeout_ms) {
        close_for(c, &s->stats.slow_readers, ZINX__LOGK_SLOW_READER,
                  ZINX_ENOBUFS,
                  "the peer took none of its replies for "
                  "OutputSoftTimeoutMs");
        return true;
    }
    if (c->soft_since_ms != 0 &&
        now - c->soft_since_ms >= cfg->output_soft_timeout_ms) {
        close_for(c, &s->stats.slow_readers, ZINX__LOGK_SLOW_READER,
                  ZINX_ENOBUFS,
                  "unsent output above OutputSoftLimit for too long");
        return true;
    }
    return false;
}

/* Alive: a byte arrived within HeartbeatMax (Zinx's rule). With
   HeartbeatCountAcks, also a peer that acknowledged our data within it:
   a client that only receives stays alive (it ACKs our heartbeats),
   while a vanished one stops ACKing. */
static bool peer_alive(const zinx_conn_t *c, uint64_t now)
{
    uint64_t max_ms = heartbeat_max_ms(c);
    if (now - c->last_rx_ms < max_ms)
        return true;
    if (!c->server->cfg.heartbeat_count_acks)
        return false;
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return false;
    return ti.tcpi_last_ack_recv < max_ms;
}

static uint32_t default_beat(const zinx_conn_t *c, uint8_t *buf, size_t cap)
{
    int n =
        snprintf((char *)buf, cap, "heartbeat [%s->%s]", c->local, c->remote);
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
                      (unsigned long long)c->id, c->remote,
                      s->cfg.heartbeat_max);
    if (s->hb_dead != NULL) {
        s->hb_dead(c, s->hb_udata);
        return;
    }
    set_reason(c, ZINX_ETIMEDOUT);
    finish(c, FINISH_ABORT);
}

static void heartbeat(zinx_conn_t *c, uint64_t now)
{
    if (c->next_beat_ms == 0)
        return;
    bool beat_due = now >= c->next_beat_ms;
    if (beat_due)
        c->next_beat_ms = now + c->server->cfg.heartbeat_interval_ms;
    if ((beat_due || cut_at_heartbeat_max(c)) && !peer_alive(c, now)) {
        not_alive(c); /* no beat for a peer that is not alive */
        return;
    }
    if (beat_due)
        send_beat(c);
}
static void on_timer(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    zinx_conn_t *c = arg;
    if (c->state == CONN_FINISHED)
        return;
    uint64_t now = zinx__now_ms();
    if (expired(c, now))
        return;
    heartbeat(c, now);
    if (c->state != CONN_FINISHED)
        arm_at(c, next_deadline(c));
}

static void start_deadlines(zinx_conn_t *c)
{
    const zinx_config_t *cfg = &c->server->cfg;
    uint64_t now = zinx__now_ms();
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
        c->soft_since_ms = zinx__now_ms();
        arm_at(c, next_deadline(c));
    }
}

/* Loop thread, after a flush: output left waiting starts the no-progress
   clock (write_out moves it on whenever the peer takes bytes); a peer
   that takes none for OutputSoftTimeoutMs is closed, at whatever level. */
static void check_stall(zinx_conn_t *c)
{
    if (zinx__buf_size(&c->out) == 0) {
        c->stall_since_ms = 0;
        return;
    }
    if (c->stall_since_ms != 0 || c->server->cfg.output_soft_timeout_ms == 0)
        return;
    c->stall_since_ms = zinx__now_ms();
    arm_at(c, next_deadline(c));
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
        (unsigned long long)c->id, c->remote, max);
    set_reason(c, ZINX_EPROTO);
    zinx_conn_close_now(c);
}

/* ---- input ------------------------------------------------------------------
 */

static void oversize(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    atomic_fetch_add_explicit(&s->stats.oversize, 1, memory_order_relaxed);
    ZINX__LOG_LIMITED(
        s, ZINX__LOGK_OVERSIZE, ZINX_LOG_WARN,
        "conn %llu (%s): frame longer than MaxPacketSize %u, closing",
        (unsigned long long)c->id, c->remote, c->max_packet_size);
    set_reason(c, ZINX_EMSGSIZE);
    uint32_t notice = s->cfg.close_notice_msg_id;
    if (notice == 0) {
        finish(c, FINISH_ABORT);
        return;
    }
    char text[96];
    int n = snprintf(text, sizeof(text), "frame too large: limit %u bytes",
                     c->max_packet_size);
    uint32_t len = n > 0 ? (uint32_t)n : 0;
    if (len > c->max_packet_size)
        len = c->max_packet_size;
    if (zinx__buf_append_frame(&c->out, c->format, notice, text, len) == 0)
        atomic_fetch_add(&c->unsent, (size_t)ZINX_HEADER_LEN + len);
    finish(c, FINISH_FLUSH);
}

/* A complete frame (or a bad header) starts at buf. */
static bool frame_ready(const zinx_conn_t *c, const uint8_t *buf, size_t len)
{
    uint32_t id, flen;
    if (len < ZINX_HEADER_LEN)
        return false;
    if (zinx_unpack_header(c->format, buf, len, &id, &flen) != 0)
        return true;
    return len - ZINX_HEADER_LEN >= flen;
}

/* Whether handlers may take more frames now: not while the output is
   behind (the worker parks what it already has, see
   zinx__conn_over_high_water) or the owner holds the connection. */
static bool dispatch_open(zinx_conn_t *c)
{
    return !output_full(c) &&
           !atomic_load_explicit(&c->user_hold, memory_order_relaxed);
}

/* Dispatch stopped at buf: those frames wait in `in`, and while a
   complete one waits, reading stops; the flush that makes room, or
   releasing the hold, resumes dispatch. */
static void hold_frames(zinx_conn_t *c, const uint8_t *buf, size_t len)
{
    if (frame_ready(c, buf, len))
        c->paused_dispatch = true;
}

static int dispatch_inline(zinx_conn_t *c, const uint8_t *buf, size_t len,
                           size_t *consumed)
{
    zinx_server_t *s = c->server;
    size_t off = 0;
    int rc = 0;
    while (off < len && atomic_load(&c->close_req) != CLOSE_NOW) {
        if (!dispatch_open(c)) {
            hold_frames(c, buf + off, len - off);
            break;
        }
        zinx_msg_t m;
        long n = zinx_unpack(c->format, c->max_packet_size, buf + off,
                             len - off, &m);
        if (n < 0) {
            rc = n == ZINX_EAGAIN ? 0 : (int)n;
            break;
        }
        atomic_fetch_add_explicit(&s->stats.msgs_in, 1, memory_order_relaxed);
        zinx__route_message(s, c, &m);
        off += (size_t)n;
    }
    *consumed = off;
    return rc;
}

/* Counts the complete frames at buf; returns their bytes in *bytes. */
static int scan_frames(const zinx_conn_t *c, const uint8_t *buf, size_t len,
                       uint32_t limit, uint32_t *count, size_t *bytes)
{
    size_t off = 0;
    uint32_t n = 0;
    int rc = 0;
    while (off < len && n < limit) {
        zinx_msg_t m;
        long r = zinx_unpack(c->format, c->max_packet_size, buf + off,
                             len - off, &m);
        if (r < 0) {
            rc = r == ZINX_EAGAIN ? 0 : (int)r;
            break;
        }
        off += (size_t)r;
        n++;
    }
    *count = n;
    *bytes = off;
    return rc;
}

static int dispatch_to_worker(zinx_conn_t *c, const uint8_t *buf, size_t len,
                              size_t *consumed)
{
    uint32_t n;
    size_t bytes;
    *consumed = 0;
    if (!dispatch_open(c)) {
        hold_frames(c, buf, len);
        return 0;
    }
    int rc = scan_frames(c, buf, len, UINT32_MAX, &n, &bytes);
    if (n == 0)
        return rc;
    uint32_t granted = zinx__worker_reserve(c->worker, c, n);
    if (granted < n) {
        /* The rest waits in `in` (and any bad frame behind it is found
           again when the worker resumes us). */
        c->paused_worker = true;
        rc = 0;
        scan_frames(c, buf, len, granted, &n, &bytes);
    }
    if (granted == 0)
        return 0;
    zinx__task_t *t = zinx__task_new(c->loop, ZINX__TASK_MSGS, c, bytes);
    if (t == NULL) {
        zinx__worker_unreserve(c->worker, granted);
        return ZINX_ENOMEM;
    }
    memcpy(t->data, buf, bytes);
    t->count = granted;
    atomic_fetch_add(&c->inflight, granted);
    atomic_fetch_add_explicit(&c->server->stats.msgs_in, granted,
                              memory_order_relaxed);
    zinx__loop_push_task(c->loop, c->worker, t);
    *consumed = bytes;
    return rc;
}

static int dispatch(zinx_conn_t *c, const uint8_t *buf, size_t len,
                    size_t *consumed)
{
    if (c->worker == NULL)
        return dispatch_inline(c, buf, len, consumed);
    return dispatch_to_worker(c, buf, len, consumed);
}

/* Handles a dispatch error; returns false when the connection ended. */
static bool dispatch_ok(zinx_conn_t *c, int rc)
{
    if (rc == 0)
        return true;
    if (rc == ZINX_EMSGSIZE)
        oversize(c);
    else
        fail(c, rc);
    return false;
}

/* Dispatches what waits in `in` (after a pause or a large frame). */
static bool dispatch_buffered(zinx_conn_t *c)
{
    if (zinx__buf_size(&c->in) == 0)
        return true;
    size_t consumed;
    c->paused_worker = false;
    c->paused_dispatch = false;
    int rc =
        dispatch(c, zinx__buf_head(&c->in), zinx__buf_size(&c->in), &consumed);
    if (c->state == CONN_FINISHED)
        return false;
    zinx__buf_consume(&c->in, consumed);
    return dispatch_ok(c, rc);
}

/* Bytes of the frame at the head of `in`, or 0 while its header is
   incomplete. The header was checked against MaxPacketSize already. */
static size_t frame_need(const zinx_conn_t *c)
{
    uint32_t id, len;
    if (zinx__buf_size(&c->in) < ZINX_HEADER_LEN)
        return 0;
    if (zinx_unpack_header(c->format, zinx__buf_head(&c->in),
                           zinx__buf_size(&c->in), &id, &len) != 0)
        return 0;
    return (size_t)ZINX_HEADER_LEN + len;
}

/* Outcome of one read attempt. */
enum read_status {
    READ_MORE,  /* the read filled its buffer: more may be waiting */
    READ_DONE,  /* the socket is drained for now */
    READ_EOF,   /* the peer shut its write side */
    READ_ENDED, /* the connection ended while dispatching */
    READ_RETRY  /* interrupted by a signal */
};

/* Maps a failed read(); errors end the connection. */
static int read_failed(zinx_conn_t *c, ssize_t n)
{
    if (n == 0)
        return READ_EOF;
    if (errno == EINTR)
        return READ_RETRY;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return READ_DONE;
    fail(c, -errno);
    return READ_ENDED;
}

/* The frame deadline runs from the first byte of the frame now at the
   head of `in`; a new head frame restarts it, so a peer streaming many
   frames is never cut off, while one trickling a single frame is. */
static void track_partial(zinx_conn_t *c, bool head_changed, uint64_t now)
{
    if (zinx__buf_size(&c->in) == 0 || frames_held(c)) {
        c->frame_start_ms = 0;
        return;
    }
    if (c->frame_start_ms != 0 && !head_changed)
        return;
    c->frame_start_ms = now;
    if (c->server->cfg.frame_timeout_ms != 0)
        arm_at(c, now + c->server->cfg.frame_timeout_ms);
}

/* A frame larger than the loop's read buffer is assembled in `in`,
   growing only as its bytes arrive (never to the declared size at once). */
static int read_into_in(zinx_conn_t *c, size_t need, size_t rbuf_cap)
{
    size_t want = need - zinx__buf_size(&c->in);
    if (want > rbuf_cap)
        want = rbuf_cap;
    if (zinx__buf_reserve(&c->in, want) != 0) {
        fail(c, ZINX_ENOMEM);
        return READ_ENDED;
    }
    ssize_t n = read(c->fd, c->in.data + c->in.len, want);
    if (n <= 0)
        return read_failed(c, n);
    c->last_rx_ms = zinx__now_ms();
    c->last_io_ms = c->last_rx_ms;
    c->in.len += (size_t)n;
    if (zinx__buf_size(&c->in) >= need) {
        if (!dispatch_buffered(c))
            return READ_ENDED;
        track_partial(c, true, c->last_rx_ms);
    }
    return (size_t)n == want ? READ_MORE : READ_DONE;
}

/* Reads into the loop's shared buffer behind what `in` held, dispatches
   the complete frames and keeps the tail in `in`. */
static int read_into_rbuf(zinx_conn_t *c, uint8_t *rbuf, size_t cap)
{
    size_t have = zinx__buf_size(&c->in);
    if (have > 0)
        memcpy(rbuf, zinx__buf_head(&c->in), have);
    ssize_t n = read(c->fd, rbuf + have, cap - have);
    if (n <= 0)
        return read_failed(c, n);
    uint64_t now = zinx__now_ms();
    c->last_rx_ms = now;
    c->last_io_ms = now;
    c->in.off = c->in.len = 0; /* copied to rbuf above */
    size_t total = have + (size_t)n, consumed;
    int rc = dispatch(c, rbuf, total, &consumed);
    if (c->state == CONN_FINISHED || !dispatch_ok(c, rc))
        return READ_ENDED;
    if (consumed < total &&
        zinx__buf_append(&c->in, rbuf + consumed, total - consumed) != 0) {
        fail(c, ZINX_ENOMEM);
        return READ_ENDED;
    }
    track_partial(c, consumed > 0, now);
    return (size_t)n == cap - have ? READ_MORE : READ_DONE;
}

static bool reading_allowed(const zinx_conn_t *c)
{
    return c->state == CONN_OPEN && !frames_held(c) && !c->paused_output &&
           !atomic_load_explicit(&c->user_hold, memory_order_relaxed) &&
           atomic_load(&c->close_req) == CLOSE_NONE;
}

static void on_readable(zinx_conn_t *c)
{
    size_t cap;
    uint8_t *rbuf = zinx__loop_rbuf(c->loop, &cap);
    int reads = 0;
    while (reads < READS_PER_EVENT && reading_allowed(c)) {
        size_t need = frame_need(c);
        int st = need > cap ? read_into_in(c, need, cap)
                            : read_into_rbuf(c, rbuf, cap);
        if (st == READ_RETRY)
            continue;
        if (st == READ_EOF) {
            c->peer_eof = true;
            begin_drain(c);
        }
        if (st != READ_MORE)
            return;
        reads++;
    }
}

/* Reads and discards: nobody listens any more, but unread input must not
   turn our close into a reset. Returns false once the socket is closed. */
static bool linger_read(zinx_conn_t *c)
{
    size_t cap;
    uint8_t *rbuf = zinx__loop_rbuf(c->loop, &cap);
    for (;;) {
        ssize_t n = read(c->fd, rbuf, cap);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n == 0 && zinx__buf_size(&c->out) > 0) {
            c->peer_eof = true; /* it may still read what we owe it */
            return true;
        }
        zinx__conn_close_fd(c);
        return false;
    }
}

static void on_linger_events(zinx_conn_t *c, uint32_t events)
{
    if (events & EPOLLERR) {
        zinx__conn_close_fd(c);
        return;
    }
    if ((events & (EPOLLIN | EPOLLHUP)) && !linger_read(c))
        return;
    linger_step(c);
}

void zinx__conn_on_events(zinx_conn_t *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    if (c->lingering) {
        on_linger_events(c, events);
        return;
    }
    if (c->state == CONN_FINISHED)
        return;
    if (events & (EPOLLERR | EPOLLHUP)) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        fail(c, err ? -err : ZINX_ECONNRESET);
        return;
    }
    if (events & EPOLLIN)
        on_readable(c);
    /* Output, pauses and drain checks happen once per iteration. */
    if (c->state != CONN_FINISHED)
        zinx__loop_schedule(c->loop, c);
}

/* ---- output
 * ------------------------------------------------------------------ */

static bool take_pending(zinx_conn_t *c)
{
    pthread_mutex_lock(&c->lock);
    int rc = zinx__buf_move(&c->out, &c->pending);
    pthread_mutex_unlock(&c->lock);
    if (rc != 0) {
        fail(c, rc);
        return false;
    }
    return true;
}

static bool flush(zinx_conn_t *c)
{
    int rc = write_out(c);
    if (rc != 0) {
        fail(c, rc);
        return false;
    }
    return true;
}

/* Graceful end: once no frame waits, no handler runs and nothing is
   unsent, refuse further sends and finish. */
static void try_finish_drain(zinx_conn_t *c)
{
    if (frames_held(c) || atomic_load(&c->inflight) > 0)
        return;
    if (zinx__buf_size(&c->out) > 0)
        return;
    pthread_mutex_lock(&c->lock);
    bool idle = zinx__buf_size(&c->pending) == 0;
    if (idle)
        c->sendable = false;
    pthread_mutex_unlock(&c->lock);
    if (idle)
        finish(c, FINISH_FLUSH);
    else
        zinx__loop_schedule(c->loop, c); /* a last send slipped in */
}

/* Busy connections keep their buffers; the loop's sweep frees them once
   the connection has been idle for a while. */
static void note_buffers(zinx_conn_t *c)
{
    if (c->retained || (c->out.cap == 0 && c->in.cap == 0))
        return;
    c->retained = true;
    zinx__loop_retain(c->loop, c);
}

bool zinx__conn_trim(zinx_conn_t *c, uint64_t idle_since)
{
    if (c->state == CONN_FINISHED) {
        c->retained = false;
        return false;
    }
    bool busy = zinx__buf_size(&c->out) > 0 || zinx__buf_size(&c->in) > 0 ||
                c->last_io_ms > idle_since;
    if (busy)
        return true;
    zinx__buf_free(&c->out);
    zinx__buf_free(&c->in);
    pthread_mutex_lock(&c->lock);
    if (zinx__buf_size(&c->pending) == 0)
        zinx__buf_free(&c->pending);
    pthread_mutex_unlock(&c->lock);
    c->retained = false;
    return false;
}

void zinx__conn_run_posted(zinx_conn_t *c)
{
    /* Off the posted stack from here on: a poke now must post again. */
    atomic_store(&c->poked, false);
    zinx__conn_attend(c);
    zinx_conn_unref(c); /* the posted reference */
}

void zinx__conn_attend(zinx_conn_t *c)
{
    if (c->state == CONN_NEW) {
        zinx__conn_adopt(c);
        return;
    }
    if (c->state == CONN_FINISHED)
        return;
    int req = atomic_load(&c->close_req);
    if (req == CLOSE_NOW) {
        finish(c, FINISH_ABORT);
        return;
    }
    if (req == CLOSE_GRACEFUL)
        begin_drain(c);
    if (!take_pending(c) || !flush(c))
        return;
    if (atomic_load(&c->parked) && !output_full(c))
        zinx__worker_unpark(c->worker, c);
    /* Held frames go on once there is room; replies of inline handlers
       then leave in a second write. */
    if (frames_held(c) && !output_full(c) &&
        (!dispatch_buffered(c) || !flush(c)))
        return;
    check_soft_limit(c);
    check_stall(c);
    if (c->state == CONN_DRAINING)
        try_finish_drain(c);
    if (c->state != CONN_FINISHED) {
        set_interest(c);
        note_buffers(c);
    }
}

void zinx__conn_adopt(zinx_conn_t *c)
{
    if (c->state != CONN_NEW)
        return;
    c->state = CONN_OPEN;
    /* START is queued before the first read, so it precedes every
       message of the connection on the same FIFO worker. */
    if (c->worker != NULL)
        push_own_task(c, c->start_task);
    else
        zinx__conn_run_start(c);
    int rc = zinx__loop_reserve_timer(c->loop);
    if (rc != 0) {
        fail(c, rc);
        return;
    }
    c->has_timer = true;
    rc = zinx__loop_watch(c->loop, c->fd, c, 0, true);
    if (rc != 0) {
        fail(c, rc);
        return;
    }
    start_deadlines(c);
    zinx__loop_schedule(c->loop, c);
}

/* ---- public send / close ------------------------------------------------- */

/* The peer reads too slowly for what we send it: Redis's hard
   client-output-buffer-limit. Closing bounds memory whatever it does. */
static bool raise_close(zinx_conn_t *c, int how);

static int over_hard_limit(zinx_conn_t *c)
{
    /* Counted and logged once, by the send that triggers the close. */
    set_reason(c, ZINX_ENOBUFS);
    if (raise_close(c, CLOSE_NOW)) {
        atomic_fetch_add_explicit(&c->server->stats.slow_readers, 1,
                                  memory_order_relaxed);
        ZINX__LOG_LIMITED(c->server, ZINX__LOGK_SLOW_READER, ZINX_LOG_WARN,
                          "conn %llu (%s): unsent output would pass "
                          "OutputHardLimit %u, closing",
                          (unsigned long long)c->id, c->remote,
                          c->output_hard_limit);
    }
    return ZINX_ENOBUFS;
}

/* A reply could not be queued for lack of memory: the peer's stream of
   answers has a hole, so the connection ends now (counted and logged
   once) instead of failing every later reply too. */
static void reply_lost(zinx_conn_t *c)
{
    set_reason(c, ZINX_ENOMEM);
    if (!raise_close(c, CLOSE_NOW))
        return;
    atomic_fetch_add_explicit(&c->server->stats.out_of_memory, 1,
                              memory_order_relaxed);
    ZINX__LOG_LIMITED(c->server, ZINX__LOGK_OOM, ZINX_LOG_WARN,
                      "conn %llu (%s): out of memory queueing a reply, "
                      "closing",
                      (unsigned long long)c->id, c->remote);
}

int zinx_conn_send_msg(zinx_conn_t *c, uint32_t id, const void *data,
                       uint32_t len)
{
    if (c == NULL || (data == NULL && len > 0))
        return ZINX_EINVAL;
    if (len > c->max_packet_size)
        return ZINX_EMSGSIZE;
    /* After close_now nothing more may leave, even before the I/O thread
       has acted on it; a graceful close still lets replies out. */
    if (atomic_load(&c->finished) || atomic_load(&c->close_req) == CLOSE_NOW)
        return ZINX_ECLOSED;
    size_t frame = (size_t)ZINX_HEADER_LEN + len;
    if (c->output_hard_limit != 0 &&
        atomic_load(&c->unsent) + frame > c->output_hard_limit)
        return over_hard_limit(c);
    int rc;
    if (zinx__loop_is_self(c->loop)) {
        if (c->state == CONN_FINISHED)
            return ZINX_ECLOSED;
        rc = zinx__buf_append_frame(&c->out, c->format, id, data, len);
        if (rc == 0) {
            atomic_fetch_add(&c->unsent, frame);
            zinx__loop_schedule(c->loop, c);
        }
    } else {
        pthread_mutex_lock(&c->lock);
        rc = c->sendable
                 ? zinx__buf_append_frame(&c->pending, c->format, id, data, len)
                 : ZINX_ECLOSED;
        if (rc == 0)
            atomic_fetch_add(&c->unsent, frame);
        pthread_mutex_unlock(&c->lock);
        if (rc == 0)
            zinx__conn_poke(c);
    }
    if (rc == 0)
        atomic_fetch_add_explicit(&c->server->stats.msgs_out, 1,
                                  memory_order_relaxed);
    else if (rc == ZINX_ENOMEM)
        reply_lost(c);
    return rc;
}

/* Raises the close request to `how`; true when this call raised it (so
   exactly one caller acts on a given escalation). */
static bool raise_close(zinx_conn_t *c, int how)
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
    nudge(c);
    return true;
}

static int request_close(zinx_conn_t *c, int how)
{
    if (c == NULL)
        return ZINX_EINVAL;
    raise_close(c, how);
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

/* ---- properties ------------------------------------------------------------
 */

static property_t **find_prop(zinx_conn_t *c, const char *key)
{
    property_t **pp = &c->props;
    while (*pp != NULL && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

int zinx_conn_set_property(zinx_conn_t *c, const char *key, void *value,
                           zinx_property_free_fn free_fn)
{
    if (c == NULL || key == NULL)
        return ZINX_EINVAL;
    size_t klen = strlen(key);
    property_t *np = malloc(sizeof(*np) + klen + 1);
    if (np == NULL)
        return ZINX_ENOMEM;
    memcpy(np->key, key, klen + 1);
    np->value = value;
    np->free_fn = free_fn;
    np->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->props_released) {
        pthread_mutex_unlock(&c->lock);
        free(np);
        return ZINX_ECLOSED;
    }
    property_t **pp = find_prop(c, key);
    property_t *old = *pp;
    if (old != NULL)
        np->next = old->next;
    *pp = np;
    pthread_mutex_unlock(&c->lock);
    if (old != NULL) {
        old->next = NULL;
        free_props(old); /* outside the lock: free_fn is user code */
    }
    return 0;
}

int zinx_conn_get_property(zinx_conn_t *c, const char *key, void **value)
{
    if (c == NULL || key == NULL || value == NULL)
        return ZINX_EINVAL;
    pthread_mutex_lock(&c->lock);
    property_t *p = *find_prop(c, key);
    if (p != NULL)
        *value = p->value;
    pthread_mutex_unlock(&c->lock);
    return p != NULL ? 0 : ZINX_ENOENT;
}

int zinx_conn_remove_property(zinx_conn_t *c, const char *key)
{
    if (c == NULL || key == NULL)
        return ZINX_EINVAL;
    pthread_mutex_lock(&c->lock);
    property_t **pp = find_prop(c, key);
    property_t *p = *pp;
    if (p != NULL)
        *pp = p->next;
    pthread_mutex_unlock(&c->lock);
    if (p == NULL)
        return ZINX_ENOENT;
    p->next = NULL;
    free_props(p);
    return 0;
}
