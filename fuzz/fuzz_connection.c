/*
 * Fuzz target: a real server fed arbitrary bytes over one connection.
 *
 * Four servers are started once per process (IOThreads 1 each), one per
 * variant below: handlers inline (WorkerPoolSize 0) or on one worker, a
 * worker queue of 2 messages (so reading pauses and resumes), both
 * frame formats, small and large MaxPacketSize, a fallback router or a
 * limit on unknown IDs, with and without a close notice. Routers:
 *   1, 2, 3  echo the message;
 *   4        echo, then zinx_conn_close() (graceful);
 *   5        zinx_conn_close_now();
 *   6        echo the message data[0] % 8 times;
 *   other    the fallback echoes it with the top ID bit flipped, or, in
 *            variants without one, it is dropped (and counted).
 *
 * Input layout:
 *   byte 0   flags: bits 0-1 the variant; bits 2-3 how the client ends
 *            (see enum end_mode); bit 4 pace the first writes; bit 5 use
 *            a loopback TCP connection (closed with RST) instead of a
 *            socketpair handed to zinx_server_adopt_fd()
 *   the rest the bytes to send, cut at every "--MARK--" into separate
 *            writes (the marker itself is not sent)
 *
 * Per input the client writes while reading replies, ends as chosen,
 * then closes. Checks:
 *   - every reply frame decodes and is the next reply the routers could
 *     have produced for what was sent (the close notice may end the
 *     stream after an oversize frame), so no reply is lost, duplicated,
 *     reordered or corrupted, and none follows an immediate close;
 *   - a client that half-closes gets every reply it is owed, then a
 *     clean EOF, within a bound (no hang);
 *   - OnConnStart and OnConnStop run once each, no handler runs outside
 *     them, a send from OnConnStop fails with ZINX_ECLOSED;
 *   - after the client closes, the server's connection count returns to
 *     0, stats.closed advances by one and the process holds no more
 *     descriptors than before the input (no leaked connection or fd).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "zinx.h"

#define MARK "--MARK--"
#define MARK_LEN 8
/* Writes paced with a short wait, so the server reads them apart. */
#define PACED_WRITES 8
#define PACE_MS 1
/* Bounds: a run past these is reported as a hang. */
#define INPUT_DEADLINE_MS 10000
#define SETTLE_DEADLINE_MS 10000
/* Replies beyond this are a runaway server. */
#define RX_MAX (64u << 20)

#define FALLBACK_BIT 0x80000000u
#define NOTICE_ID 0x7E57u

enum msg_id {
    ID_ECHO1 = 1,
    ID_ECHO2 = 2,
    ID_ECHO3 = 3,
    ID_CLOSE = 4,
    ID_CLOSE_NOW = 5,
    ID_BURST = 6
};

enum end_mode {
    END_HALF_CLOSE, /* shutdown(SHUT_WR), read every reply until EOF */
    END_ABORT,      /* close at once, replies unread */
    END_HALF_ABORT, /* shutdown(SHUT_WR), read a little, close */
    END_READ_ABORT  /* no shutdown, read a little, close */
};

typedef struct variant {
    uint32_t workers;
    uint32_t task_len;
    uint32_t max_packet;
    zinx_packet_format_t format;
    bool fallback;
    uint32_t max_unknown;
    uint32_t notice;
} variant_t;

static const variant_t variants[4] = {
    {0, 1024, 64, ZINX_FORMAT_TLV, true, 0, 0},
    {1, 2, 64, ZINX_FORMAT_TLV, false, 3, NOTICE_ID},
    {0, 1024, 200000, ZINX_FORMAT_LTV_LE, true, 0, NOTICE_ID},
    {1, 1024, 4096, ZINX_FORMAT_LTV_LE, false, 0, 0},
};

typedef struct fuzz_server {
    const variant_t *v;
    zinx_server_t *srv;
    int port;
    atomic_ulong starts;
    atomic_ulong stops;
} fuzz_server_t;

static fuzz_server_t servers[4];
static bool servers_ready;
static bool verbose; /* FUZZ_VERBOSE set: server logs go to stderr */

/* Per-connection tags (zinx_conn_set_data): where in its life it is. */
static const char tag_started = 's';
static const char tag_stopped = 'x';

/* ---- server side ------------------------------------------------------- */

static void print_log(zinx_log_level_t level, const char *msg, void *udata)
{
    (void)udata;
    fprintf(stderr, "[%s] %s\n", zinx_log_level_name(level), msg);
}

static void on_start(zinx_conn_t *conn, void *udata)
{
    fuzz_server_t *fs = udata;
    FUZZ_CHECK(zinx_conn_data(conn) == NULL, "OnConnStart ran twice");
    zinx_conn_set_data(conn, (void *)&tag_started);
    atomic_fetch_add(&fs->starts, 1);
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    fuzz_server_t *fs = udata;
    FUZZ_CHECK(zinx_conn_data(conn) == &tag_started,
               "OnConnStop without OnConnStart, or twice");
    zinx_conn_set_data(conn, (void *)&tag_stopped);
    FUZZ_CHECK(zinx_conn_send_msg(conn, ID_ECHO1, "x", 1) == ZINX_ECLOSED,
               "a send from OnConnStop did not fail");
    atomic_fetch_add(&fs->stops, 1);
}

static zinx_conn_t *live_conn(zinx_request_t *req)
{
    zinx_conn_t *conn = zinx_request_conn(req);
    FUZZ_CHECK(zinx_conn_data(conn) == &tag_started,
               "handler outside OnConnStart..OnConnStop");
    return conn;
}

static void reply(zinx_conn_t *conn, uint32_t id, zinx_request_t *req)
{
    int rc = zinx_conn_send_msg(conn, id, zinx_request_data(req),
                                zinx_request_data_len(req));
    FUZZ_CHECK(rc == 0 || rc == ZINX_ECLOSED || rc == ZINX_ENOBUFS,
               "send returned %s", zinx_err_name(rc));
}

static void on_echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    reply(live_conn(req), zinx_request_msg_id(req), req);
}

static void on_close(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = live_conn(req);
    reply(conn, ID_CLOSE, req);
    FUZZ_CHECK(zinx_conn_close(conn) == 0, "close failed");
}

static void on_close_now(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = live_conn(req);
    FUZZ_CHECK(zinx_conn_close_now(conn) == 0, "close_now failed");
    FUZZ_CHECK(!zinx_conn_is_open(conn), "open after close_now");
}

static unsigned burst_count(const uint8_t *data, uint32_t len)
{
    return len > 0 ? data[0] % 8u : 0;
}

static void on_burst(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = live_conn(req);
    unsigned n =
        burst_count(zinx_request_data(req), zinx_request_data_len(req));
    for (unsigned i = 0; i < n; i++)
        reply(conn, ID_BURST, req);
}

static void on_fallback(zinx_request_t *req, void *udata)
{
    (void)udata;
    reply(live_conn(req), zinx_request_msg_id(req) ^ FALLBACK_BIT, req);
}

static void add_router(zinx_server_t *srv, uint32_t id, zinx_handler_fn fn)
{
    zinx_router_t r = {.handle = fn};
    FUZZ_CHECK(zinx_server_add_router(srv, id, &r) == 0, "add_router %u", id);
}

static void start_server(fuzz_server_t *fs, const variant_t *v)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0;
    cfg.io_threads = 1;
    cfg.worker_pool_size = v->workers;
    cfg.max_worker_task_len = v->task_len;
    cfg.max_packet_size = v->max_packet;
    cfg.packet_format = v->format;
    cfg.max_unknown_msgs = v->max_unknown;
    cfg.close_notice_msg_id = v->notice;
    cfg.drain_timeout_ms = 1000;
    /* Quiet unless asked: formatting every record costs executions. */
    cfg.log_isolation_level = verbose ? 0 : 3;
    fs->v = v;
    fs->srv = zinx_server_new(&cfg);
    FUZZ_CHECK(fs->srv != NULL, "zinx_server_new");
    zinx_server_t *srv = fs->srv;
    FUZZ_CHECK(zinx_server_set_log_sink(srv, print_log, NULL) == 0, "sink");
    add_router(srv, ID_ECHO1, on_echo);
    add_router(srv, ID_ECHO2, on_echo);
    add_router(srv, ID_ECHO3, on_echo);
    add_router(srv, ID_CLOSE, on_close);
    add_router(srv, ID_CLOSE_NOW, on_close_now);
    add_router(srv, ID_BURST, on_burst);
    if (v->fallback) {
        zinx_router_t fb = {.handle = on_fallback};
        FUZZ_CHECK(zinx_server_set_fallback_router(srv, &fb) == 0, "fallback");
    }
    FUZZ_CHECK(zinx_server_on_conn_start(srv, on_start, fs) == 0, "hook");
    FUZZ_CHECK(zinx_server_on_conn_stop(srv, on_stop, fs) == 0, "hook");
    int rc = zinx_server_start(srv);
    FUZZ_CHECK(rc == 0, "zinx_server_start: %s", zinx_err_name(rc));
    fs->port = zinx_server_port(srv);
}

static void stop_servers(void)
{
    for (size_t i = 0; i < 4; i++) {
        zinx_server_stats_t st;
        zinx_server_stats(servers[i].srv, &st);
        FUZZ_CHECK(st.connections == 0, "connections left at exit");
        zinx_server_free(servers[i].srv);
        servers[i].srv = NULL;
    }
}

static void init_servers(void)
{
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    for (size_t i = 0; i < 4; i++)
        start_server(&servers[i], &variants[i]);
    atexit(stop_servers);
    servers_ready = true;
}

/* ---- expected replies -------------------------------------------------- */

typedef struct reply_ref {
    uint32_t id;
    uint32_t len;
    const uint8_t *data;
} reply_ref_t;

/* How the connection may end, from the server's side. */
enum end_kind {
    END_CLEAN,  /* all output flushed, clean EOF */
    END_NOTICE, /* clean EOF; a close notice may end the replies */
    END_ANY     /* output may be dropped, the socket reset */
};

typedef struct expect {
    reply_ref_t *replies; /* every reply, if every frame is handled */
    size_t count;
    size_t cap;
    size_t sure; /* replies guaranteed to a half-closing client */
    enum end_kind end;
    bool notice_possible; /* the close notice may end the replies */
    bool notice_required; /* a half-closing client must get the notice */
} expect_t;

static void push_reply(expect_t *e, uint32_t id, const zinx_msg_t *m)
{
    if (e->count == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->replies = realloc(e->replies, e->cap * sizeof(*e->replies));
        FUZZ_CHECK(e->replies != NULL, "out of memory");
    }
    e->replies[e->count++] =
        (reply_ref_t){.id = id, .len = m->len, .data = m->data};
}

/*
 * What the routers would answer to stream s[0..n), frame by frame, as
 * the server decodes it. A graceful close (ID 4) stops reading at some
 * point we cannot know, so replies after it are possible, not sure; an
 * immediate close drops unsent output, so nothing is sure. The decoder
 * runs ahead of a worker: it may meet an oversize header, and send the
 * notice, before the worker reached an earlier frame that closes.
 */
static void compute_expect(const variant_t *v, const uint8_t *s, size_t n,
                           expect_t *e)
{
    memset(e, 0, sizeof(*e));
    size_t off = 0, graceful_at = 0;
    bool graceful = false, abortive = false;
    uint32_t unknown = 0;
    long rc;
    for (;; off += (size_t)rc) {
        zinx_msg_t m;
        rc = zinx_unpack(v->format, v->max_packet, s + off, n - off, &m);
        if (rc < 0)
            break;
        if (abortive)
            continue; /* after close_now every send fails */
        if (m.id >= ID_ECHO1 && m.id <= ID_ECHO3) {
            push_reply(e, m.id, &m);
        } else if (m.id == ID_CLOSE) {
            push_reply(e, m.id, &m);
            if (!graceful)
                graceful_at = e->count;
            graceful = true;
        } else if (m.id == ID_CLOSE_NOW) {
            abortive = true;
        } else if (m.id == ID_BURST) {
            for (unsigned i = burst_count(m.data, m.len); i > 0; i--)
                push_reply(e, m.id, &m);
        } else if (v->fallback) {
            push_reply(e, m.id ^ FALLBACK_BIT, &m);
        } else if (v->max_unknown != 0 && ++unknown > v->max_unknown) {
            abortive = true;
        }
    }
    bool oversize = rc == ZINX_EMSGSIZE;
    /* Inline handlers stop the decoder at an immediate close. */
    e->notice_possible =
        oversize && v->notice != 0 && (!abortive || v->workers > 0);
    if (abortive || (oversize && v->notice == 0)) {
        e->end = END_ANY;
        e->sure = 0;
        return;
    }
    e->end = oversize ? END_NOTICE : END_CLEAN;
    /* Oversize after a graceful close may never be read. */
    e->notice_required = oversize && !graceful;
    if (oversize && v->workers > 0)
        e->sure = 0; /* replies still queued from the worker are dropped */
    else if (graceful)
        e->sure = graceful_at;
    else
        e->sure = e->count;
}

/* ---- client side -------------------------------------------------------- */

typedef struct rx {
    uint8_t *buf;
    size_t len;
    size_t cap;
    bool eof;   /* read returned 0 */
    bool reset; /* read failed: ECONNRESET and friends */
} rx_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void rx_drain(int fd, rx_t *rx)
{
    while (!rx->eof && !rx->reset) {
        if (rx->cap - rx->len < 4096) {
            FUZZ_CHECK(rx->cap < RX_MAX, "more than %u bytes of replies",
                       RX_MAX);
            rx->cap = rx->cap ? rx->cap * 2 : 65536;
            rx->buf = realloc(rx->buf, rx->cap);
            FUZZ_CHECK(rx->buf != NULL, "out of memory");
        }
        ssize_t n =
            recv(fd, rx->buf + rx->len, rx->cap - rx->len, MSG_DONTWAIT);
        if (n > 0) {
            rx->len += (size_t)n;
        } else if (n == 0) {
            rx->eof = true;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else {
            rx->reset = true;
        }
    }
}

/* Waits up to ms for replies and reads them; true once the peer closed. */
static bool rx_wait(int fd, rx_t *rx, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) > 0)
        rx_drain(fd, rx);
    return rx->eof || rx->reset;
}

typedef struct segments {
    const uint8_t **ptr;
    size_t *len;
    size_t count;
} segments_t;

static void split_segments(const uint8_t *p, size_t n, segments_t *sg)
{
    size_t cap = 1;
    for (const uint8_t *q = p, *end = p + n;
         (q = memmem(q, (size_t)(end - q), MARK, MARK_LEN)) != NULL;
         q += MARK_LEN)
        cap++;
    sg->ptr = malloc(cap * sizeof(*sg->ptr));
    sg->len = malloc(cap * sizeof(*sg->len));
    FUZZ_CHECK(sg->ptr != NULL && sg->len != NULL, "out of memory");
    sg->count = 0;
    const uint8_t *end = p + n;
    for (;;) {
        const uint8_t *m = memmem(p, (size_t)(end - p), MARK, MARK_LEN);
        const uint8_t *stop = m != NULL ? m : end;
        sg->ptr[sg->count] = p;
        sg->len[sg->count++] = (size_t)(stop - p);
        if (m == NULL)
            break;
        p = m + MARK_LEN;
    }
}

static uint8_t *join_segments(const segments_t *sg, size_t *n)
{
    size_t total = 0;
    for (size_t i = 0; i < sg->count; i++)
        total += sg->len[i];
    uint8_t *s = malloc(total > 0 ? total : 1);
    FUZZ_CHECK(s != NULL, "out of memory");
    size_t off = 0;
    for (size_t i = 0; i < sg->count; i++) {
        if (sg->len[i] > 0)
            memcpy(s + off, sg->ptr[i], sg->len[i]);
        off += sg->len[i];
    }
    *n = total;
    return s;
}

/*
 * Writes every segment with its own send(), reading replies whenever
 * they come so that neither side can block the other. Stops writing
 * when the server closed (EPIPE, ECONNRESET): that is allowed.
 */
static void write_segments(int fd, const segments_t *sg, bool pace, rx_t *rx,
                           uint64_t deadline)
{
    size_t seg = 0, off = 0;
    while (seg < sg->count) {
        if (sg->len[seg] == 0) {
            seg++;
            continue;
        }
        FUZZ_CHECK(now_ms() < deadline, "writing stalled (segment %zu of %zu)",
                   seg, sg->count);
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR))
            rx_drain(fd, rx);
        if (!(p.revents & (POLLOUT | POLLHUP | POLLERR)))
            continue;
        ssize_t n = send(fd, sg->ptr[seg] + off, sg->len[seg] - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n < 0)
            return; /* the server closed: legal after a close or error */
        off += (size_t)n;
        if (off < sg->len[seg])
            continue;
        seg++;
        off = 0;
        if (pace && seg <= PACED_WRITES)
            rx_wait(fd, rx, PACE_MS);
    }
}

static void finish_client(int fd, enum end_mode mode, rx_t *rx,
                          uint64_t deadline)
{
    switch (mode) {
    case END_HALF_CLOSE:
        shutdown(fd, SHUT_WR);
        while (!rx_wait(fd, rx, 100))
            FUZZ_CHECK(now_ms() < deadline,
                       "no EOF after a half-close (%zu reply bytes)", rx->len);
        break;
    case END_ABORT:
        break;
    case END_HALF_ABORT:
        shutdown(fd, SHUT_WR);
        rx_wait(fd, rx, 1);
        break;
    case END_READ_ABORT:
        rx_wait(fd, rx, 2);
        break;
    }
}

static bool same_reply(const reply_ref_t *r, const zinx_msg_t *m)
{
    return r->id == m->id && r->len == m->len &&
           (m->len == 0 || memcmp(r->data, m->data, m->len) == 0);
}

static void check_replies(const variant_t *v, const expect_t *e,
                          enum end_mode mode, const rx_t *rx)
{
    size_t off = 0, matched = 0, odd = 0;
    bool notice = false; /* the last frame can be the close notice */
    static const uint8_t none[1];
    const uint8_t *buf = rx->buf != NULL ? rx->buf : none;
    for (;;) {
        zinx_msg_t m;
        long rc =
            zinx_unpack(v->format, v->max_packet, buf + off, rx->len - off, &m);
        if (rc == ZINX_EAGAIN)
            break;
        FUZZ_CHECK(rc > 0, "reply stream broken at byte %zu: %s", off,
                   zinx_err_name((int)rc));
        FUZZ_CHECK(odd == 0, "a reply after the close notice");
        /* A reply may look like the notice: accept either reading. */
        notice = e->notice_possible && m.id == v->notice;
        if (matched < e->count && same_reply(&e->replies[matched], &m)) {
            matched++;
        } else {
            FUZZ_CHECK(notice,
                       "reply %zu (id %u, %u bytes) is not the one expected "
                       "(%zu possible replies)",
                       matched, m.id, m.len, e->count);
            odd++;
        }
        off += (size_t)rc;
    }
    if (verbose)
        fprintf(stderr,
                "fuzz_connection: mode %d: %zu of %zu replies (%zu owed), "
                "end %d, notice %d, %zu bytes, eof %d, reset %d\n",
                (int)mode, matched, e->count, e->sure, (int)e->end, (int)notice,
                rx->len, rx->eof, rx->reset);
    if (mode != END_HALF_CLOSE)
        return; /* the client dropped the rest: any prefix will do */
    FUZZ_CHECK(matched >= e->sure, "%zu replies, %zu owed", matched, e->sure);
    FUZZ_CHECK(!e->notice_required || notice, "no close notice");
    if (e->end == END_ANY)
        return;
    FUZZ_CHECK(off == rx->len, "%zu bytes of a cut reply before EOF",
               rx->len - off);
    FUZZ_CHECK(rx->eof && !rx->reset, "reset instead of a clean EOF");
}

/* ---- one input ------------------------------------------------------------
 */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    FUZZ_CHECK(d != NULL, "opendir /proc/self/fd: %s", strerror(errno));
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static int open_client(fuzz_server_t *fs, bool tcp)
{
    if (tcp) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)fs->port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        FUZZ_CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
                   "connect: %s", strerror(errno));
        return fd;
    }
    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
               "socketpair: %s", strerror(errno));
    int rc = zinx_server_adopt_fd(fs->srv, sv[1]);
    FUZZ_CHECK(rc == 0, "zinx_server_adopt_fd: %s", zinx_err_name(rc));
    return sv[0];
}

static void close_client(int fd, bool tcp)
{
    if (tcp) {
        /* RST: the abrupt end, and no TIME_WAIT left per input. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
}

/* The connection must leave the server entirely, within a bound. */
static void wait_settled(fuzz_server_t *fs, const zinx_server_stats_t *before,
                         int fds_before)
{
    uint64_t deadline = now_ms() + SETTLE_DEADLINE_MS;
    zinx_server_stats_t st;
    int fds = -1;
    for (unsigned spin = 0;; spin++) {
        zinx_server_stats(fs->srv, &st);
        if (st.accepted == before->accepted + 1 &&
            st.closed == before->closed + 1 && st.connections == 0) {
            fds = count_fds();
            if (fds <= fds_before)
                break;
        }
        FUZZ_CHECK(now_ms() < deadline,
                   "connection not released: accepted %llu->%llu, closed "
                   "%llu->%llu, connections %llu, fds %d (before %d)",
                   (unsigned long long)before->accepted,
                   (unsigned long long)st.accepted,
                   (unsigned long long)before->closed,
                   (unsigned long long)st.closed,
                   (unsigned long long)st.connections, fds, fds_before);
        if (spin < 50)
            sched_yield();
        else
            usleep(100);
    }
    unsigned long starts = atomic_load(&fs->starts);
    unsigned long stops = atomic_load(&fs->stops);
    FUZZ_CHECK(starts == stops && stops == st.closed,
               "hooks: %lu starts, %lu stops, %llu closed", starts, stops,
               (unsigned long long)st.closed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!servers_ready)
        init_servers();
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    fuzz_server_t *fs = &servers[flags & 3];
    enum end_mode mode = (enum end_mode)((flags >> 2) & 3);
    bool pace = (flags & 0x10) != 0;
    bool tcp = (flags & 0x20) != 0;

    segments_t sg;
    split_segments(data + 1, size - 1, &sg);
    size_t n;
    uint8_t *stream = join_segments(&sg, &n);
    expect_t e;
    compute_expect(fs->v, stream, n, &e);

    zinx_server_stats_t before;
    zinx_server_stats(fs->srv, &before);
    int fds_before = count_fds();
    uint64_t deadline = now_ms() + INPUT_DEADLINE_MS;
    rx_t rx = {0};
    int fd = open_client(fs, tcp);
    write_segments(fd, &sg, pace, &rx, deadline);
    finish_client(fd, mode, &rx, deadline);
    close_client(fd, tcp);
    check_replies(fs->v, &e, mode, &rx);
    wait_settled(fs, &before, fds_before);

    free(rx.buf);
    free(e.replies);
    free(stream);
    free(sg.ptr);
    free(sg.len);
    return 0;
}
