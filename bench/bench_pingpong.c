/*
 * Ping-pong mode: every connection keeps `depth` frames in flight and
 * sends a new frame for each echo it receives. Connections are spread
 * over `threads` threads, each running its own epoll loop; nothing is
 * shared between threads but the phase word the main thread moves from
 * warm-up to measuring to stop.
 *
 * Per readable event a connection does one read (level-triggered, like
 * the servers it measures) and answers all the echoes it found with one
 * write, so the client costs about what a good server costs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define READ_BUF (256u * 1024u)
#define MAX_EVENTS 256
#define POLL_MS 20
/* A run by count with no --duration gives up after this long. */
#define COUNT_LIMIT_S 300.0
/* Connection errors printed before the rest are only counted. */
#define ERRORS_SHOWN 5

enum { PHASE_WARMUP, PHASE_MEASURE, PHASE_STOP };

typedef struct conn {
    int fd;
    uint32_t number;
    bool dead;
    bool want_out;
    uint64_t next_send;
    uint64_t next_recv;
    uint64_t target;  /* frames to exchange; UINT64_MAX by time */
    uint8_t *partial; /* incomplete frame carried to the next read */
    size_t partial_len;
    uint8_t *out; /* unsent bytes out[out_off .. out_len) */
    size_t out_off, out_len, out_cap;
    uint64_t *sent_ns; /* send time of seq, at [seq % depth] */
} conn_t;

typedef struct worker {
    const bench_opts_t *o;
    const bench_frame_t *f;
    const atomic_int *phase;
    uint64_t limit_ns; /* count mode: give up at this time */
    conn_t *conns;
    size_t nconns, live;
    int ep;
    uint8_t *rbuf;
    uint8_t *sbuf; /* depth frames, built before each write */
    bool measuring;
    uint64_t frames, errors;
    uint64_t done_ns; /* count mode: when the last echo came */
    bench_hist_t lat;
    pthread_t thread;
} worker_t;

/* Closes c for good; the last connection of a count run ends it. */
static void conn_close(worker_t *w, conn_t *c)
{
    close(c->fd);
    c->fd = -1;
    c->dead = true;
    if (--w->live == 0)
        w->done_ns = bench_now_ns();
}

static void conn_fail(worker_t *w, conn_t *c, const char *why, int err)
{
    if (w->errors < ERRORS_SHOWN)
        fprintf(stderr, BENCH_PROG ": conn %u: %s%s%s\n", c->number, why,
                err != 0 ? ": " : "", err != 0 ? strerror(err) : "");
    w->errors++;
    conn_close(w, c);
}

static void watch(worker_t *w, conn_t *c, bool out)
{
    struct epoll_event ev = {
        .events = EPOLLIN | (out ? EPOLLOUT : 0u),
        .data.ptr = c,
    };
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

/* Keeps bytes the socket did not take; they leave on EPOLLOUT. */
static void queue_out(worker_t *w, conn_t *c, const uint8_t *p, size_t n)
{
    if (c->out == NULL) {
        /* Never more than depth frames are unanswered, so this is enough
           for good; most connections never need it. */
        c->out_cap = (size_t)w->o->depth * w->f->size;
        c->out = malloc(c->out_cap);
        if (c->out == NULL)
            bench_fatal("out of memory");
    }
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + n > c->out_cap)
        bench_fatal("conn %u: more than depth frames queued", c->number);
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void flush_out(worker_t *w, conn_t *c)
{
    size_t n = c->out_len - c->out_off;
    ssize_t r = send(c->fd, c->out + c->out_off, n, MSG_NOSIGNAL);

    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_fail(w, c, "write", errno);
        return;
    }
    c->out_off += (size_t)r;
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        watch(w, c, false);
    }
}

/* Sends up to k new frames on c, stamped with their sequence numbers. */
static void send_frames(worker_t *w, conn_t *c, uint64_t k, uint64_t now)
{
    const bench_frame_t *f = w->f;
    unsigned depth = w->o->depth;

    if (k > c->target - c->next_send)
        k = c->target - c->next_send;
    if (k == 0)
        return;
    for (uint64_t i = 0; i < k; i++) {
        uint64_t seq = c->next_send++;
        bench_frame_build(f, c->number, seq, w->sbuf + i * f->size);
        c->sent_ns[seq % depth] = now;
    }
    size_t n = (size_t)k * f->size;
    if (c->want_out) {
        queue_out(w, c, w->sbuf, n);
        return;
    }
    ssize_t r = send(c->fd, w->sbuf, n, MSG_NOSIGNAL);
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            conn_fail(w, c, "write", errno);
            return;
        }
        r = 0;
    }
    if ((size_t)r < n) {
        queue_out(w, c, w->sbuf + r, n - (size_t)r);
        watch(w, c, true);
    }
}

static void take_frame(worker_t *w, conn_t *c, const uint8_t *frame,
                       uint64_t now)
{
    if (c->next_recv >= c->next_send)
        bench_fatal("conn %u: received a frame that was never sent "
                    "(%llu sent)",
                    c->number, (unsigned long long)c->next_send);
    uint64_t seq = c->next_recv++;
    bench_frame_check(w->f, c->number, seq, frame);
    if (w->measuring) {
        w->frames++;
        bench_hist_record(&w->lat, now - c->sent_ns[seq % w->o->depth]);
    }
}

/* Checks every complete frame of data[0..n); returns how many. */
static uint64_t consume(worker_t *w, conn_t *c, const uint8_t *data, size_t n,
                        uint64_t now)
{
    size_t size = w->f->size;
    uint64_t got = 0;

    if (c->partial_len > 0) {
        size_t take = size - c->partial_len;
        if (take > n)
            take = n;
        memcpy(c->partial + c->partial_len, data, take);
        c->partial_len += take;
        data += take;
        n -= take;
        if (c->partial_len < size)
            return 0;
        take_frame(w, c, c->partial, now);
        c->partial_len = 0;
        got++;
    }
    for (; n >= size; data += size, n -= size, got++)
        take_frame(w, c, data, now);
    if (n > 0) {
        if (c->partial == NULL && (c->partial = malloc(size)) == NULL)
            bench_fatal("out of memory");
        memcpy(c->partial, data, n);
        c->partial_len = n;
    }
    return got;
}

static void on_readable(worker_t *w, conn_t *c, uint64_t now)
{
    ssize_t r = read(c->fd, w->rbuf, READ_BUF);

    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_fail(w, c, "read", errno);
        return;
    }
    if (r == 0) {
        conn_fail(w, c, "the server closed the connection", 0);
        return;
    }
    uint64_t got = consume(w, c, w->rbuf, (size_t)r, now);
    if (c->next_recv == c->target) {
        /* Count mode: this connection has all its echoes. */
        conn_close(w, c);
        return;
    }
    send_frames(w, c, got, now);
}

static void start_conns(worker_t *w)
{
    uint64_t now = bench_now_ns();

    for (size_t i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            bench_fatal("epoll_ctl: %s", strerror(errno));
        if (c->target == 0) {
            conn_close(w, c);
            continue;
        }
        send_frames(w, c, w->o->depth, now);
    }
}

/* Follows the main thread's phase; false when the loop must end. */
static bool follow_phase(worker_t *w, uint64_t now)
{
    int ph = atomic_load_explicit(w->phase, memory_order_acquire);

    if (ph == PHASE_STOP || w->live == 0)
        return false;
    if (ph == PHASE_MEASURE && !w->measuring) {
        w->measuring = true;
        w->frames = 0;
        bench_hist_init(&w->lat);
    }
    if (w->limit_ns != 0 && now > w->limit_ns) {
        fprintf(stderr, BENCH_PROG ": --count not reached in time\n");
        w->errors++;
        return false;
    }
    return true;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    struct epoll_event evs[MAX_EVENTS];

    start_conns(w);
    while (follow_phase(w, bench_now_ns())) {
        int n = epoll_wait(w->ep, evs, MAX_EVENTS, POLL_MS);
        uint64_t now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c->dead && (evs[i].events & EPOLLOUT))
                flush_out(w, c);
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_readable(w, c, now);
        }
    }
    return NULL;
}

static int setup_worker(worker_t *w, const bench_opts_t *o,
                        const bench_frame_t *f, const atomic_int *phase,
                        size_t max_conns)
{
    memset(w, 0, sizeof *w);
    w->o = o;
    w->f = f;
    w->phase = phase;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->rbuf = malloc(READ_BUF);
    w->sbuf = malloc((size_t)o->depth * f->size);
    w->conns = calloc(max_conns, sizeof(conn_t));
    bench_hist_init(&w->lat);
    if (w->ep < 0 || w->rbuf == NULL || w->sbuf == NULL || w->conns == NULL)
        return -1;
    return 0;
}

static void free_worker(worker_t *w)
{
    for (size_t i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->partial);
        free(c->out);
        free(c->sent_ns);
    }
    if (w->ep >= 0)
        close(w->ep);
    free(w->conns);
    free(w->rbuf);
    free(w->sbuf);
}

/* A PROXY v1 header naming a made-up client, as a proxy in front of
   the server would send before the client's bytes. Blocking fd. */
static int send_proxy_header(int fd, uint32_t i)
{
    char line[108];
    int n = snprintf(line, sizeof(line),
                     "PROXY TCP4 198.18.%u.%u 127.0.0.1 %u 8999\r\n",
                     (i >> 8) & 0xff, i & 0xff, 1024 + i % 60000);
    return bench_write_all(fd, line, (size_t)n);
}

/* Opens connection i and hands it to its worker. */
static int add_conn(worker_t *w, const bench_opts_t *o, const bench_addr_t *a,
                    uint32_t i)
{
    int fd = bench_connect(a);

    if (fd < 0) {
        fprintf(stderr, BENCH_PROG ": connect %s:%s (connection %u): %s\n",
                o->host, o->port, i, strerror(-fd));
        return -1;
    }
    int rc = o->proxy_header ? send_proxy_header(fd, i) : 0;
    if (rc != 0) {
        fprintf(stderr, BENCH_PROG ": PROXY header (connection %u): %s\n", i,
                strerror(-rc));
        close(fd);
        return -1;
    }
    bench_set_nonblock(fd);
    conn_t *c = &w->conns[w->nconns++];
    w->live++;
    c->fd = fd;
    c->number = i;
    c->target = UINT64_MAX;
    if (o->count > 0)
        c->target = o->count / o->connections +
                    (i < o->count % o->connections ? 1u : 0u);
    c->sent_ns = calloc(o->depth, sizeof(uint64_t));
    return c->sent_ns != NULL ? 0 : -1;
}

static void read_server(const bench_opts_t *o, bench_proc_t *p)
{
    if (o->pid > 0 && bench_proc_read(o->pid, p) != 0)
        memset(p, 0, sizeof *p);
}

/* Runs the phases by the clock (or waits for the count) and joins. */
static void drive(const bench_opts_t *o, worker_t *ws, unsigned nw,
                  atomic_int *phase, bench_result_t *r)
{
    bench_proc_t p0, p1;
    uint64_t t0 = bench_now_ns(), t1 = t0;
    double c0 = bench_self_cpu_s();

    read_server(o, &p0);
    if (o->count == 0) {
        bench_sleep_s(o->warmup);
        read_server(o, &p0);
        c0 = bench_self_cpu_s();
        t0 = bench_now_ns();
        atomic_store_explicit(phase, PHASE_MEASURE, memory_order_release);
        bench_sleep_s(o->duration);
        atomic_store_explicit(phase, PHASE_STOP, memory_order_release);
        t1 = bench_now_ns();
        read_server(o, &p1);
        r->client_cpu_s = bench_self_cpu_s() - c0;
    }
    for (unsigned i = 0; i < nw; i++)
        pthread_join(ws[i].thread, NULL);
    if (o->count > 0) {
        read_server(o, &p1);
        r->client_cpu_s = bench_self_cpu_s() - c0;
        t1 = t0;
        for (unsigned i = 0; i < nw; i++)
            if (ws[i].done_ns > t1)
                t1 = ws[i].done_ns;
    }
    r->elapsed_s = (double)(t1 - t0) / 1e9;
    r->server_known = o->pid > 0 && p0.cpu_s > 0;
    r->server_delta.cpu_s = p1.cpu_s - p0.cpu_s;
    r->server_delta.ctxsw = p1.ctxsw - p0.ctxsw;
    r->server_delta.minflt = p1.minflt - p0.minflt;
    r->server_delta.rss_kib = p1.rss_kib;
}

int bench_pingpong(const bench_opts_t *o, const bench_addr_t *a,
                   const bench_frame_t *f, bench_result_t *r)
{
    unsigned nw = o->threads < o->connections ? o->threads : o->connections;
    worker_t *ws = calloc(nw, sizeof *ws);
    atomic_int phase = o->count > 0 ? PHASE_MEASURE : PHASE_WARMUP;
    int rc = -1;

    if (ws == NULL)
        return -1;
    for (unsigned i = 0; i < nw; i++)
        ws[i].ep = -1;
    for (unsigned i = 0; i < nw; i++)
        if (setup_worker(&ws[i], o, f, &phase, o->connections / nw + 1) != 0)
            goto out;
    for (uint32_t i = 0; i < o->connections; i++)
        if (add_conn(&ws[i % nw], o, a, i) != 0)
            goto out;
    uint64_t limit =
        bench_now_ns() +
        (uint64_t)((o->duration > 0 ? o->duration : COUNT_LIMIT_S) * 1e9);
    for (unsigned i = 0; i < nw; i++) {
        ws[i].measuring = o->count > 0;
        ws[i].limit_ns = o->count > 0 ? limit : 0;
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
            bench_fatal("cannot create a thread");
    }
    drive(o, ws, nw, &phase, r);
    for (unsigned i = 0; i < nw; i++) {
        r->frames += ws[i].frames;
        r->errors += ws[i].errors;
        bench_hist_merge(&r->lat, &ws[i].lat);
    }
    rc = 0;
out:
    for (unsigned i = 0; i < nw; i++)
        free_worker(&ws[i]);
    free(ws);
    return rc;
}
