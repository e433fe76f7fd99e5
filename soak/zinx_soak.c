/*
 * zinx-soak: connection churn under load for a long time (reliability
 * tests T14 and T17), run by `make soak` through scripts/soak.sh.
 *
 * The program forks. The child is the server: an echo server whose
 * handlers sleep 0..max-sleep ms at random, so that clients disconnect
 * while their messages are still being handled. OnConnStart sends each
 * connection its token (its connection ID), and every reply carries the
 * token, so a reply written to the wrong connection (a reused descriptor,
 * a stale pointer) is caught. The parent runs the clients and watches
 * the child through /proc.
 *
 * Each client connection sends a random number of requests, pipelined,
 * then ends in one of five ways: half-close (must get every reply, then
 * EOF), plain close with requests in flight, RST with requests in flight,
 * a request that makes the server close gracefully (must get every reply,
 * then EOF), or one that makes it close at once. Then it reconnects.
 *
 * Every interval (60 s by default) one line: server RSS, malloc's own
 * figures (bytes in use / held from the system, reported by the server
 * process each second), descriptors, threads, verified replies,
 * connections, errors. At the end:
 *   - RSS of the last sample may exceed the sample taken when the warm-up
 *     ended by at most --rss-growth percent (5);
 *   - the thread count never changes; the descriptor count stays within
 *     what the open client connections explain, and returns to its
 *     starting value once the clients are gone;
 *   - no reply was wrong, lost where it was owed, or late past the
 *     deadline, and the server stopped cleanly on SIGTERM with every
 *     connection closed.
 * Exit status 0 when all of that holds, 1 otherwise, 2 on a usage error.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zinx.h"

enum msg_id {
    ID_TOKEN = 1,    /* server -> client, first frame: the token */
    ID_ECHO = 2,     /* echoed after a random sleep, with the token */
    ID_CLOSE = 3,    /* echoed, then the server closes gracefully */
    ID_CLOSE_NOW = 4 /* the server closes at once, no reply */
};

/* How a client connection ends. */
enum end_how {
    END_HALF_CLOSE,
    END_CLOSE,
    END_RST,
    END_SERVER_CLOSE,
    END_SERVER_CLOSE_NOW,
    END_KINDS
};

static const char *const end_names[END_KINDS] = {
    "half-close", "close", "rst", "server-close", "server-close-now"};

#define MAX_PACKET 4096
#define REQ_HEAD 16 /* seq u64 + serial u64 */
#define FILLER_MAX 64
#define REPLY_HEAD 8    /* token u64 */
#define STUCK_MS 30000  /* a connection silent this long while owed */
#define MAX_REPORTED 20 /* errors printed in full */

typedef struct options {
    double minutes;
    double warmup_minutes; /* < 0: min(5, minutes / 2) */
    int interval_s;
    int conns;
    int client_threads;
    int depth;
    int max_requests;
    int workers;
    int io_threads;
    int max_sleep_ms;
    double rss_growth_pct;
} options_t;

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* xorshift64*: per-thread state, no locks. */
static uint64_t rnd_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static uint32_t rnd_below(uint64_t *s, uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(rnd_next(s) % n);
}

static uint64_t rnd_seed(uint64_t salt)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t s = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^
                 (salt * 0x9E3779B97F4A7C15ull);
    return s != 0 ? s : 1;
}

/* ---- server (child process) ---------------------------------------------- */

typedef struct server_ctx {
    int max_sleep_us;
} server_ctx_t;

static _Thread_local uint64_t handler_rng;

static void handler_sleep(const server_ctx_t *ctx)
{
    if (handler_rng == 0)
        handler_rng = rnd_seed((uint64_t)pthread_self());
    uint32_t us = rnd_below(&handler_rng, (uint32_t)ctx->max_sleep_us + 1);
    if (us > 0)
        usleep(us);
}

/* Reply: the token, then the request's payload. */
static void reply_with_token(zinx_request_t *req, uint32_t id)
{
    zinx_conn_t *conn = zinx_request_conn(req);
    uint8_t buf[MAX_PACKET];
    uint32_t len = zinx_request_data_len(req);
    if (len > MAX_PACKET - REPLY_HEAD)
        len = MAX_PACKET - REPLY_HEAD;
    put64(buf, zinx_conn_id(conn));
    memcpy(buf + REPLY_HEAD, zinx_request_data(req), len);
    /* ZINX_ECLOSED is expected: clients vanish while handlers sleep. */
    zinx_conn_send_msg(conn, id, buf, REPLY_HEAD + len);
}

static void on_echo(zinx_request_t *req, void *udata)
{
    handler_sleep(udata);
    reply_with_token(req, ID_ECHO);
}

static void on_close(zinx_request_t *req, void *udata)
{
    handler_sleep(udata);
    reply_with_token(req, ID_CLOSE);
    zinx_conn_close(zinx_request_conn(req));
}

static void on_close_now(zinx_request_t *req, void *udata)
{
    handler_sleep(udata);
    zinx_conn_close_now(zinx_request_conn(req));
}

static void on_start(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    uint8_t token[8];
    put64(token, zinx_conn_id(conn));
    zinx_conn_send_msg(conn, ID_TOKEN, token, sizeof(token));
}

static int add_route(zinx_server_t *s, uint32_t id, zinx_handler_fn fn,
                     server_ctx_t *ctx)
{
    zinx_router_t r = {.handle = fn, .udata = ctx};
    return zinx_server_add_router(s, id, &r);
}

/* What the server process reports about itself, once a second. */
typedef struct heap_report {
    uint64_t in_use;  /* bytes malloc has handed out */
    uint64_t from_os; /* bytes malloc holds from the system */
} heap_report_t;

/*
 * Reports malloc's own figures to the parent, so that RSS growth can be
 * told apart: memory still in use (something grows) or only held by the
 * allocator (fragmentation). Runs until the process exits.
 */
static void *heap_monitor(void *arg)
{
    int fd = *(int *)arg;
    for (;;) {
        struct mallinfo2 mi = mallinfo2();
        heap_report_t r = {.in_use = mi.uordblks + mi.hblkhd,
                           .from_os = mi.arena + mi.hblkhd};
        if (send(fd, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
            errno != EAGAIN)
            return NULL;
        sleep(1);
    }
}

/* A helper thread must not take SIGTERM, which serve() waits for. */
static int start_heap_monitor(int *fd)
{
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    pthread_t t;
    int rc = pthread_create(&t, NULL, heap_monitor, fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        pthread_detach(t);
    return rc;
}

/*
 * Runs the server until SIGTERM. Sends the port on report_fd, then heap
 * figures every second.
 */
static int run_server(const options_t *o, int report_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    server_ctx_t ctx = {.max_sleep_us = o->max_sleep_ms * 1000};
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.name, sizeof(cfg.name), "zinx-soak");
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0;
    cfg.max_conn = 100000;
    cfg.max_packet_size = MAX_PACKET;
    cfg.worker_pool_size = (uint32_t)o->workers;
    cfg.io_threads = (uint32_t)o->io_threads;
    cfg.log_isolation_level = 2; /* warnings and errors */
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        return 1;
    if (add_route(s, ID_ECHO, on_echo, &ctx) != 0 ||
        add_route(s, ID_CLOSE, on_close, &ctx) != 0 ||
        add_route(s, ID_CLOSE_NOW, on_close_now, &ctx) != 0 ||
        zinx_server_on_conn_start(s, on_start, NULL) != 0) {
        zinx_server_free(s);
        return 1;
    }
    int rc = zinx_server_start(s);
    if (rc == 0 && start_heap_monitor(&report_fd) != 0)
        rc = ZINX_ENOMEM;
    int port = rc == 0 ? zinx_server_port(s) : -1;
    if (send(report_fd, &port, sizeof(port), MSG_NOSIGNAL) !=
        (ssize_t)sizeof(port))
        rc = rc != 0 ? rc : ZINX_EPIPE;
    if (rc != 0) {
        fprintf(stderr, "server: start failed: %s\n", zinx_strerror(rc));
        zinx_server_free(s);
        return 1;
    }
    rc = zinx_server_serve(s);
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    zinx_server_free(s);
    fprintf(stderr,
            "server: stopped: accepted %llu, closed %llu, open %llu, "
            "frames in %llu, out %llu\n",
            (unsigned long long)st.accepted, (unsigned long long)st.closed,
            (unsigned long long)st.connections, (unsigned long long)st.msgs_in,
            (unsigned long long)st.msgs_out);
    if (rc != 0 || st.connections != 0 || st.accepted != st.closed)
        return 3;
    return 0;
}

/* ---- client connections -------------------------------------------------- */

typedef struct counters {
    atomic_ullong replies; /* verified replies */
    atomic_ullong opened;  /* connections made */
    atomic_ullong ended[END_KINDS];
    atomic_ullong errors;
} counters_t;

static counters_t counters;
static atomic_bool stopping;
static atomic_uint errors_reported;

static void client_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void client_error(const char *fmt, ...)
{
    atomic_fetch_add(&counters.errors, 1);
    if (atomic_fetch_add(&errors_reported, 1) >= MAX_REPORTED)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("soak: ERROR: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

enum cc_state {
    CC_SENDING, /* requests left to send */
    CC_DRAINING /* all sent: waiting for owed replies and EOF */
};

typedef struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} buf_t;

typedef struct cconn {
    int fd;
    int state;
    int how;           /* enum end_how */
    uint64_t serial;   /* client-side connection number */
    uint64_t token;    /* from the server's first frame; 0 until then */
    uint32_t to_send;  /* requests left, the last one may end the conn */
    uint64_t next_seq; /* next request's sequence number */
    uint64_t want_seq; /* sequence number of the next reply */
    uint32_t inflight; /* requests whose reply is owed */
    bool want_out;     /* EPOLLOUT registered */
    bool shut;         /* our FIN was sent */
    uint64_t last_rx_ms;
    buf_t in;
    buf_t out;
} cconn_t;

typedef struct client {
    const options_t *opt;
    int port;
    int ep;
    int nconns;
    cconn_t *conns;
    uint64_t rng;
    uint64_t serial_base;
    uint64_t serials;
    pthread_t thread;
} client_t;

static void buf_reserve(buf_t *b, size_t more)
{
    if (b->cap - b->len >= more)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        fprintf(stderr, "soak: out of memory\n");
        abort();
    }
    b->data = p;
    b->cap = cap;
}

static void buf_drop(buf_t *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static uint32_t filler_len(uint64_t seq)
{
    return (uint32_t)(seq * 7u % (FILLER_MAX + 1));
}

static uint8_t filler_byte(uint64_t seq, uint32_t i)
{
    return (uint8_t)(seq * 31u + i);
}

static void queue_frame(cconn_t *c, uint32_t id, const uint8_t *p, uint32_t len)
{
    buf_reserve(&c->out, 8u + len);
    uint8_t *w = c->out.data + c->out.len;
    for (int i = 0; i < 4; i++) {
        w[i] = (uint8_t)(id >> (24 - 8 * i));
        w[4 + i] = (uint8_t)(len >> (24 - 8 * i));
    }
    memcpy(w + 8, p, len);
    c->out.len += 8u + len;
}

static void queue_request(cconn_t *c)
{
    uint8_t p[REQ_HEAD + FILLER_MAX];
    uint64_t seq = c->next_seq++;
    uint32_t n = filler_len(seq);
    put64(p, seq);
    put64(p + 8, c->serial);
    for (uint32_t i = 0; i < n; i++)
        p[REQ_HEAD + i] = filler_byte(seq, i);
    uint32_t id = ID_ECHO;
    if (c->to_send == 1 && c->how == END_SERVER_CLOSE)
        id = ID_CLOSE;
    else if (c->to_send == 1 && c->how == END_SERVER_CLOSE_NOW)
        id = ID_CLOSE_NOW;
    queue_frame(c, id, p, REQ_HEAD + n);
    c->to_send--;
    if (id != ID_CLOSE_NOW)
        c->inflight++;
}

static void set_out_interest(client_t *cl, cconn_t *c, bool want)
{
    if (c->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

static void cc_open(client_t *cl, cconn_t *c);

static void cc_end(client_t *cl, cconn_t *c, bool rst)
{
    if (rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->fd);
    c->fd = -1;
    atomic_fetch_add(&counters.ended[c->how], 1);
    if (!atomic_load(&stopping))
        cc_open(cl, c);
}

static void cc_open(client_t *cl, cconn_t *c)
{
    const options_t *o = cl->opt;
    free(c->in.data);
    free(c->out.data);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->last_rx_ms = now_ms();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)cl->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        client_error("connect: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return; /* retried by the sweep */
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c->fd = fd;
    c->serial = cl->serial_base + cl->serials++;
    c->how = (int)rnd_below(&cl->rng, END_KINDS);
    c->to_send = 1 + rnd_below(&cl->rng, (uint32_t)o->max_requests);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(cl->ep, EPOLL_CTL_ADD, fd, &ev);
    atomic_fetch_add(&counters.opened, 1);
}

static void cc_describe(const cconn_t *c, char *out, size_t cap)
{
    snprintf(out, cap,
             "conn #%llu (token %llu, %s, seq %llu/%llu, %u owed, %u to send)",
             (unsigned long long)c->serial, (unsigned long long)c->token,
             end_names[c->how], (unsigned long long)c->want_seq,
             (unsigned long long)c->next_seq, c->inflight, c->to_send);
}

/* The peer ended the connection (EOF, reset, or a failed write). */
static void cc_peer_closed(client_t *cl, cconn_t *c, bool reset)
{
    char d[160];
    cc_describe(c, d, sizeof(d));
    if (c->state != CC_DRAINING) {
        client_error("%s: server %s a healthy connection", d,
                     reset ? "reset" : "closed");
    } else if (c->how == END_HALF_CLOSE || c->how == END_SERVER_CLOSE) {
        if (c->inflight != 0)
            client_error("%s: %s before every owed reply came", d,
                         reset ? "reset" : "EOF");
        else if (reset)
            client_error("%s: reset instead of a clean EOF", d);
    }
    cc_end(cl, c, false);
}

static bool check_reply(cconn_t *c, uint32_t id, const uint8_t *p, uint32_t len)
{
    char d[160];
    cc_describe(c, d, sizeof(d));
    if (c->token == 0) {
        client_error("%s: reply id %u before the token", d, id);
        return false;
    }
    if (len < REPLY_HEAD + REQ_HEAD) {
        client_error("%s: reply of %u bytes", d, len);
        return false;
    }
    uint64_t token = get64(p), seq = get64(p + 8), serial = get64(p + 16);
    if (token != c->token || serial != c->serial) {
        client_error("%s: reply for token %llu / conn #%llu", d,
                     (unsigned long long)token, (unsigned long long)serial);
        return false;
    }
    if (seq != c->want_seq || c->inflight == 0) {
        client_error("%s: reply seq %llu out of order", d,
                     (unsigned long long)seq);
        return false;
    }
    uint32_t n = len - REPLY_HEAD - REQ_HEAD;
    bool ok = n == filler_len(seq);
    for (uint32_t i = 0; ok && i < n; i++)
        ok = p[REPLY_HEAD + REQ_HEAD + i] == filler_byte(seq, i);
    if (!ok || (id == ID_CLOSE &&
                (c->how != END_SERVER_CLOSE || seq + 1 != c->next_seq))) {
        client_error("%s: reply %llu (id %u) corrupt", d,
                     (unsigned long long)seq, id);
        return false;
    }
    c->want_seq++;
    c->inflight--;
    atomic_fetch_add(&counters.replies, 1);
    return true;
}

static bool on_frame(cconn_t *c, uint32_t id, const uint8_t *p, uint32_t len)
{
    if (id == ID_TOKEN) {
        if (c->token != 0 || len != 8 || get64(p) == 0) {
            char d[160];
            cc_describe(c, d, sizeof(d));
            client_error("%s: bad or second token frame", d);
            return false;
        }
        c->token = get64(p);
        return true;
    }
    if (id == ID_ECHO || id == ID_CLOSE)
        return check_reply(c, id, p, len);
    char d[160];
    cc_describe(c, d, sizeof(d));
    client_error("%s: unexpected frame id %u", d, id);
    return false;
}

/* Decodes the complete frames in c->in. False: the stream is wrong. */
static bool parse_in(cconn_t *c)
{
    size_t off = 0;
    bool ok = true;
    while (ok && c->in.len - off >= 8) {
        const uint8_t *h = c->in.data + off;
        uint32_t id = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
                      (uint32_t)h[2] << 8 | h[3];
        uint32_t len = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
                       (uint32_t)h[6] << 8 | h[7];
        if (len > MAX_PACKET) {
            client_error("frame of %u bytes", len);
            return false;
        }
        if (c->in.len - off - 8 < len)
            break;
        ok = on_frame(c, id, h + 8, len);
        off += 8u + len;
    }
    buf_drop(&c->in, off);
    return ok;
}

static void cc_flush(client_t *cl, cconn_t *c)
{
    while (c->out.len > 0) {
        ssize_t n =
            send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            buf_drop(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out_interest(cl, c, true);
            return;
        }
        cc_peer_closed(cl, c, true);
        return;
    }
    set_out_interest(cl, c, false);
    if (c->state == CC_DRAINING && c->how == END_HALF_CLOSE && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = true;
    }
}

/* Queues what the pipeline allows; ends the connection when it is time. */
static void cc_pump(client_t *cl, cconn_t *c)
{
    if (c->state == CC_SENDING) {
        while (c->to_send > 0 && c->inflight < (uint32_t)cl->opt->depth)
            queue_request(c);
        if (c->to_send == 0)
            c->state = CC_DRAINING;
    }
    cc_flush(cl, c);
    if (c->fd < 0 || c->state != CC_DRAINING)
        return;
    /* Walk away with requests in flight: the close-vs-handler race. */
    if (c->how == END_CLOSE || c->how == END_RST)
        cc_end(cl, c, c->how == END_RST);
}

static void cc_readable(client_t *cl, cconn_t *c)
{
    for (;;) {
        buf_reserve(&c->in, 16384);
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len,
                         MSG_DONTWAIT);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->last_rx_ms = now_ms();
            if (!parse_in(c)) {
                cc_end(cl, c, true);
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        cc_peer_closed(cl, c, n < 0);
        return;
    }
    cc_pump(cl, c);
}

/* Reconnects failed slots and gives up on silent connections. */
static void sweep(client_t *cl)
{
    uint64_t now = now_ms();
    for (int i = 0; i < cl->nconns; i++) {
        cconn_t *c = &cl->conns[i];
        if (c->fd < 0) {
            cc_open(cl, c);
            if (c->fd >= 0)
                cc_pump(cl, c);
            continue;
        }
        bool owed = c->inflight > 0 || c->state == CC_DRAINING;
        if (owed && now - c->last_rx_ms > STUCK_MS) {
            char d[160];
            cc_describe(c, d, sizeof(d));
            client_error("%s: nothing received for %d s", d, STUCK_MS / 1000);
            cc_end(cl, c, true);
        }
    }
}

static void *client_main(void *arg)
{
    client_t *cl = arg;
    for (int i = 0; i < cl->nconns; i++) {
        cc_open(cl, &cl->conns[i]);
        if (cl->conns[i].fd >= 0)
            cc_pump(cl, &cl->conns[i]);
    }
    uint64_t next_sweep = now_ms() + 1000;
    struct epoll_event evs[64];
    while (!atomic_load(&stopping)) {
        int n = epoll_wait(cl->ep, evs, 64, 100);
        for (int i = 0; i < n; i++) {
            cconn_t *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue; /* ended earlier in this batch */
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                cc_readable(cl, c);
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
                cc_pump(cl, c);
        }
        if (now_ms() >= next_sweep) {
            sweep(cl);
            next_sweep = now_ms() + 1000;
        }
    }
    for (int i = 0; i < cl->nconns; i++) {
        cconn_t *c = &cl->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->in.data);
        free(c->out.data);
    }
    return NULL;
}

/* ---- watching the server ------------------------------------------------- */

typedef struct sample {
    long rss_kb;
    int threads;
    int fds;
    long heap_kb;  /* malloc: in use */
    long arena_kb; /* malloc: held from the system */
} sample_t;

/* The server's latest heap report (reports queue up between samples). */
static void read_heap(int fd, sample_t *out)
{
    heap_report_t r, last = {0, 0};
    bool got = false;
    while (recv(fd, &r, sizeof(r), MSG_DONTWAIT) == (ssize_t)sizeof(r)) {
        last = r;
        got = true;
    }
    out->heap_kb = got ? (long)(last.in_use / 1024) : -1;
    out->arena_kb = got ? (long)(last.from_os / 1024) : -1;
}

static int take_sample(pid_t pid, sample_t *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    out->rss_kb = -1;
    out->threads = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            out->rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "Threads:", 8) == 0)
            out->threads = (int)strtol(line + 8, NULL, 10);
    }
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    out->fds = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            out->fds++;
    closedir(d);
    return out->rss_kb >= 0 && out->threads >= 0 ? 0 : -1;
}

static void sleep_until(uint64_t when_ms)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= when_ms)
            return;
        uint64_t left = when_ms - now;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000),
                              .tv_nsec = (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static unsigned long long total_ended(void)
{
    unsigned long long n = 0;
    for (int i = 0; i < END_KINDS; i++)
        n += atomic_load(&counters.ended[i]);
    return n;
}

/* ---- the run ------------------------------------------------------------- */

typedef struct verdict {
    int failures;
} verdict_t;

static void fail(verdict_t *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(verdict_t *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("soak: FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    v->failures++;
}

/* Forks the server; returns its pid, its port and the report socket. */
static pid_t start_server(const options_t *o, int *port, int *report_fd)
{
    int p[2];
    /* SOCK_SEQPACKET: one report per read, never a torn one. */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(p[0]);
        _exit(run_server(o, p[1]));
    }
    close(p[1]);
    ssize_t n = recv(p[0], port, sizeof(*port), 0);
    if (n != (ssize_t)sizeof(*port) || *port <= 0) {
        close(p[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    *report_fd = p[0];
    return pid;
}

static int stop_server(pid_t pid, verdict_t *v)
{
    kill(pid, SIGTERM);
    uint64_t deadline = now_ms() + 30000;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (now_ms() > deadline) {
            fail(v, "server did not stop within 30 s of SIGTERM");
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(10000);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail(v, "server exit status %d (signal %d)",
             WIFEXITED(status) ? WEXITSTATUS(status) : -1,
             WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return 0;
}

static void print_sample(uint64_t elapsed_ms, const sample_t *s,
                         unsigned long long replies, double rate)
{
    unsigned sec = (unsigned)(elapsed_ms / 1000u);
    printf("soak: [%3u:%02u] rss %6ld KiB (heap %5ld/%5ld)  fds %4d  "
           "threads %3d  replies %10llu (%5.0f/s)  conns %7llu  errors %llu\n",
           sec / 60, sec % 60, s->rss_kb, s->heap_kb, s->arena_kb, s->fds,
           s->threads, replies, rate,
           (unsigned long long)atomic_load(&counters.opened),
           (unsigned long long)atomic_load(&counters.errors));
    fflush(stdout);
}

static client_t *start_clients(const options_t *o, int port)
{
    client_t *cls = calloc((size_t)o->client_threads, sizeof(*cls));
    if (cls == NULL)
        return NULL;
    for (int i = 0; i < o->client_threads; i++) {
        client_t *cl = &cls[i];
        cl->opt = o;
        cl->port = port;
        cl->nconns = o->conns / o->client_threads +
                     (i < o->conns % o->client_threads ? 1 : 0);
        cl->conns = calloc((size_t)cl->nconns, sizeof(cconn_t));
        cl->ep = epoll_create1(EPOLL_CLOEXEC);
        cl->rng = rnd_seed((uint64_t)i + 1);
        cl->serial_base = (uint64_t)i << 40;
        if (cl->conns == NULL || cl->ep < 0 ||
            pthread_create(&cl->thread, NULL, client_main, cl) != 0) {
            fprintf(stderr, "soak: cannot start client thread %d\n", i);
            exit(1);
        }
    }
    return cls;
}

static void stop_clients(const options_t *o, client_t *cls)
{
    atomic_store(&stopping, true);
    for (int i = 0; i < o->client_threads; i++) {
        pthread_join(cls[i].thread, NULL);
        close(cls[i].ep);
        free(cls[i].conns);
    }
    free(cls);
}

static void check_samples(const options_t *o, const sample_t *base,
                          const sample_t *s, int n, int warm, verdict_t *v)
{
    int fd_cap = base->fds + o->conns + o->conns / 10 + 16;
    for (int i = 0; i < n; i++) {
        if (s[i].threads != base->threads)
            fail(v, "sample %d: %d threads, %d at the start", i + 1,
                 s[i].threads, base->threads);
        if (s[i].fds > fd_cap)
            fail(v,
                 "sample %d: %d descriptors, more than %d "
                 "(start %d + %d client connections + slack)",
                 i + 1, s[i].fds, fd_cap, base->fds, o->conns);
    }
    if (warm < 0 || warm >= n)
        return;
    double growth = 100.0 * (double)(s[n - 1].rss_kb - s[warm].rss_kb) /
                    (double)s[warm].rss_kb;
    printf("soak: RSS after warm-up %ld KiB, at the end %ld KiB: %+.2f %% "
           "(limit %.1f %%)\n",
           s[warm].rss_kb, s[n - 1].rss_kb, growth, o->rss_growth_pct);
    printf("soak: malloc in use after warm-up %ld KiB, at the end %ld KiB; "
           "held from the system %ld KiB, then %ld KiB\n",
           s[warm].heap_kb, s[n - 1].heap_kb, s[warm].arena_kb,
           s[n - 1].arena_kb);
    if (growth > o->rss_growth_pct)
        fail(v, "RSS grew %.2f %% after the warm-up", growth);
}

/*
 * After the clients left, the server must hold the descriptors it held at
 * first. Its malloc figure then shows what it keeps for good: compared
 * between runs of different lengths, growth there is growth in the
 * library, not in the traffic of the moment.
 */
static void check_released(pid_t pid, int report_fd, const sample_t *base,
                           verdict_t *v)
{
    sample_t s = {0, 0, 0, 0, 0};
    uint64_t deadline = now_ms() + 10000;
    while (take_sample(pid, &s) == 0 && s.fds > base->fds &&
           now_ms() < deadline)
        usleep(20000);
    usleep(1500000); /* a report taken after the last close */
    read_heap(report_fd, &s);
    printf("soak: after the clients left: fds %d (start %d), threads %d "
           "(start %d), rss %ld KiB, malloc in use %ld KiB (start %ld)\n",
           s.fds, base->fds, s.threads, base->threads, s.rss_kb, s.heap_kb,
           base->heap_kb);
    if (s.fds != base->fds)
        fail(v, "%d descriptors after every client left, %d at the start",
             s.fds, base->fds);
}

static int run(const options_t *o)
{
    verdict_t v = {0};
    int port = 0, report_fd = -1;
    pid_t pid = start_server(o, &port, &report_fd);
    if (pid < 0) {
        fprintf(stderr, "soak: the server did not start\n");
        return 1;
    }
    usleep(200000); /* let its threads settle before the baseline */
    sample_t base;
    if (take_sample(pid, &base) != 0) {
        fprintf(stderr, "soak: cannot read /proc/%d\n", (int)pid);
        stop_server(pid, &v);
        close(report_fd);
        return 1;
    }
    read_heap(report_fd, &base);
    double warm_min = o->warmup_minutes >= 0 ? o->warmup_minutes
                      : o->minutes / 2 < 5   ? o->minutes / 2
                                             : 5;
    printf("soak: server pid %d port %d, %d workers, %d I/O threads, "
           "handlers sleep 0-%d ms\n",
           (int)pid, port, o->workers, o->io_threads, o->max_sleep_ms);
    printf("soak: %d client connections on %d threads, pipeline %d, "
           "1-%d requests each; %.1f min, warm-up %.1f min\n",
           o->conns, o->client_threads, o->depth, o->max_requests, o->minutes,
           warm_min);
    const char *tunables = getenv("GLIBC_TUNABLES");
    printf("soak: GLIBC_TUNABLES=%s\n", tunables != NULL ? tunables : "");
    printf("soak: start: rss %ld KiB (malloc in use %ld KiB)  fds %d  "
           "threads %d\n",
           base.rss_kb, base.heap_kb, base.fds, base.threads);

    uint64_t t0 = now_ms();
    uint64_t total_ms = (uint64_t)(o->minutes * 60000.0);
    uint64_t step_ms = (uint64_t)o->interval_s * 1000u;
    int nmax = (int)(total_ms / step_ms) + 2;
    sample_t *samples = calloc((size_t)nmax, sizeof(*samples));
    client_t *cls = start_clients(o, port);
    int n = 0, warm = -1;
    unsigned long long last_replies = 0;
    uint64_t last_ms = t0;
    for (uint64_t at = step_ms; n < nmax; at += step_ms) {
        if (at > total_ms)
            at = total_ms;
        sleep_until(t0 + at);
        if (take_sample(pid, &samples[n]) != 0) {
            fail(&v, "the server process is gone");
            break;
        }
        read_heap(report_fd, &samples[n]);
        unsigned long long r = atomic_load(&counters.replies);
        uint64_t now = now_ms();
        double rate = (double)(r - last_replies) * 1000.0 /
                      (double)(now - last_ms > 0 ? now - last_ms : 1);
        print_sample(at, &samples[n], r, rate);
        last_replies = r;
        last_ms = now;
        if (warm < 0 && (double)at >= warm_min * 60000.0)
            warm = n;
        n++;
        if (at >= total_ms)
            break;
    }
    stop_clients(o, cls);

    printf("soak: %llu replies verified, %llu connections (",
           (unsigned long long)atomic_load(&counters.replies),
           (unsigned long long)atomic_load(&counters.opened));
    for (int i = 0; i < END_KINDS; i++)
        printf("%s%s %llu", i ? ", " : "", end_names[i],
               (unsigned long long)atomic_load(&counters.ended[i]));
    printf("), %llu ended, %llu errors\n", total_ended(),
           (unsigned long long)atomic_load(&counters.errors));
    check_samples(o, &base, samples, n, warm, &v);
    check_released(pid, report_fd, &base, &v);
    if (atomic_load(&counters.errors) != 0)
        fail(&v, "%llu wrong, missing or late replies (first ones above)",
             (unsigned long long)atomic_load(&counters.errors));
    if (atomic_load(&counters.replies) == 0)
        fail(&v, "no reply at all");
    stop_server(pid, &v);
    close(report_fd);
    free(samples);
    printf("soak: %s\n", v.failures == 0 ? "PASS" : "FAIL");
    return v.failures == 0 ? 0 : 1;
}

/* ---- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: zinx-soak [options]\n"
               "  --minutes M         run time (30)\n"
               "  --warmup M          warm-up before the RSS reference "
               "(min(5, M/2))\n"
               "  --interval S        seconds between samples (60)\n"
               "  --conns N           client connections kept open (200)\n"
               "  --client-threads N  client threads (2)\n"
               "  --depth N           requests in flight per connection (4)\n"
               "  --max-requests N    requests per connection, 1..N (100)\n"
               "  --workers N         server WorkerPoolSize (16)\n"
               "  --io-threads N      server IOThreads (2)\n"
               "  --max-sleep-ms N    handler sleep, 0..N ms (5)\n"
               "  --rss-growth P      allowed RSS growth after warm-up, %% "
               "(5)\n");
}

static int parse_options(int argc, char **argv, options_t *o)
{
    *o = (options_t){.minutes = 30,
                     .warmup_minutes = -1,
                     .interval_s = 60,
                     .conns = 200,
                     .client_threads = 2,
                     .depth = 4,
                     .max_requests = 100,
                     .workers = 16,
                     .io_threads = 2,
                     .max_sleep_ms = 5,
                     .rss_growth_pct = 5};
    static const struct option longs[] = {
        {"minutes", required_argument, NULL, 'm'},
        {"warmup", required_argument, NULL, 'w'},
        {"interval", required_argument, NULL, 'i'},
        {"conns", required_argument, NULL, 'c'},
        {"client-threads", required_argument, NULL, 't'},
        {"depth", required_argument, NULL, 'd'},
        {"max-requests", required_argument, NULL, 'r'},
        {"workers", required_argument, NULL, 'W'},
        {"io-threads", required_argument, NULL, 'I'},
        {"max-sleep-ms", required_argument, NULL, 's'},
        {"rss-growth", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (ch) {
        case 'm':
            o->minutes = atof(optarg);
            break;
        case 'w':
            o->warmup_minutes = atof(optarg);
            break;
        case 'i':
            o->interval_s = atoi(optarg);
            break;
        case 'c':
            o->conns = atoi(optarg);
            break;
        case 't':
            o->client_threads = atoi(optarg);
            break;
        case 'd':
            o->depth = atoi(optarg);
            break;
        case 'r':
            o->max_requests = atoi(optarg);
            break;
        case 'W':
            o->workers = atoi(optarg);
            break;
        case 'I':
            o->io_threads = atoi(optarg);
            break;
        case 's':
            o->max_sleep_ms = atoi(optarg);
            break;
        case 'g':
            o->rss_growth_pct = atof(optarg);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || o->minutes <= 0 || o->interval_s < 1 ||
        o->conns < 1 || o->client_threads < 1 || o->client_threads > o->conns ||
        o->depth < 1 || o->max_requests < 1 || o->workers < 1 ||
        o->io_threads < 1 || o->max_sleep_ms < 0 || o->max_sleep_ms > 1000 ||
        o->rss_growth_pct < 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    options_t o;
    if (parse_options(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    return run(&o);
}
