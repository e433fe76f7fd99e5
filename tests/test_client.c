/*
 * The client side: the blocking helper (request/reply in both wire
 * formats, ID filtering, timeouts, close and refusal), client endpoints
 * (routers, hooks and properties on outgoing connections, many dialers
 * sharing one loop, endpoints that listen and dial), dialers (back-off,
 * reconnect after a server restart, giving up, close, name resolution)
 * and the dialer's lifetime against its endpoint's.
 *
 * Everything runs on 127.0.0.1 with ports picked by the kernel. Callbacks
 * on framework threads only record into atomics or mutex-guarded logs;
 * the test thread waits on those with bounded condition waits and makes
 * every assertion itself.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zinx.h"

#define T_IO 5000u    /* ms: bound for one step that should be quick */
#define T_LONG 20000u /* ms: bound for a whole bulk exchange */
#define SLACK_MS 2u   /* timer granularity: ms clocks round both ways */

/* ---- time and waiting ---------------------------------------------------- */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ms(void)
{
    return now_us() / 1000u;
}

static struct timespec deadline_in(uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000u);
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u),
                          .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A condition variable on the monotonic clock, for counters that other
   threads bump. */
typedef struct waiter {
    pthread_mutex_t m;
    pthread_cond_t c;
} waiter_t;

static void waiter_init(waiter_t *w)
{
    pthread_condattr_t attr;
    pthread_mutex_init(&w->m, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->c, &attr);
    pthread_condattr_destroy(&attr);
}

static void waiter_destroy(waiter_t *w)
{
    pthread_mutex_destroy(&w->m);
    pthread_cond_destroy(&w->c);
}

/* Increments *v and wakes the waiters (under the mutex: no lost wake-up). */
static void bump(waiter_t *w, atomic_uint *v)
{
    pthread_mutex_lock(&w->m);
    atomic_fetch_add(v, 1);
    pthread_cond_broadcast(&w->c);
    pthread_mutex_unlock(&w->m);
}

/* Waits until *v >= want or timeout_ms passes; returns the last value. */
static unsigned wait_ge(waiter_t *w, atomic_uint *v, unsigned want,
                        uint32_t timeout_ms)
{
    struct timespec dl = deadline_in(timeout_ms);
    pthread_mutex_lock(&w->m);
    while (atomic_load(v) < want) {
        if (pthread_cond_timedwait(&w->c, &w->m, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&w->m);
    return atomic_load(v);
}

/* ---- dial event log ------------------------------------------------------ */

#define LOG_CAP 512

typedef struct dial_rec {
    zinx_dial_event_t ev;
    int status;
    uint32_t attempt;
    uint32_t delay;
    uint64_t t_us;
} dial_rec_t;

typedef struct dial_log {
    waiter_t w;
    dial_rec_t recs[LOG_CAP];
    size_t n;
    size_t dropped;
} dial_log_t;

static void log_init(dial_log_t *log)
{
    memset(log, 0, sizeof(*log));
    waiter_init(&log->w);
}

static void record_event(zinx_dialer_t *d, zinx_dial_event_t ev, int status,
                         uint32_t attempt, uint32_t next_delay_ms, void *udata)
{
    dial_log_t *log = udata;
    (void)d;
    pthread_mutex_lock(&log->w.m);
    if (log->n < LOG_CAP)
        log->recs[log->n++] = (dial_rec_t){.ev = ev,
                                           .status = status,
                                           .attempt = attempt,
                                           .delay = next_delay_ms,
                                           .t_us = now_us()};
    else
        log->dropped++;
    pthread_cond_broadcast(&log->w.c);
    pthread_mutex_unlock(&log->w.m);
}

static size_t log_count(dial_log_t *log)
{
    pthread_mutex_lock(&log->w.m);
    size_t n = log->n;
    pthread_mutex_unlock(&log->w.m);
    return n;
}

static dial_rec_t log_at(dial_log_t *log, size_t i)
{
    pthread_mutex_lock(&log->w.m);
    dial_rec_t r = log->recs[i];
    pthread_mutex_unlock(&log->w.m);
    return r;
}

/* Index of the first `ev` at or after `from`, waiting up to timeout_ms;
   -1 when none came. */
static long wait_event(dial_log_t *log, size_t from, zinx_dial_event_t ev,
                       uint32_t timeout_ms)
{
    struct timespec dl = deadline_in(timeout_ms);
    long found = -1;
    pthread_mutex_lock(&log->w.m);
    for (size_t i = from;;) {
        for (; i < log->n; i++) {
            if (log->recs[i].ev == ev) {
                found = (long)i;
                goto out;
            }
        }
        if (pthread_cond_timedwait(&log->w.c, &log->w.m, &dl) == ETIMEDOUT)
            break;
    }
out:
    pthread_mutex_unlock(&log->w.m);
    return found;
}

/* Waits up to timeout_ms for the log to grow past n; returns its size. */
static size_t wait_more_events(dial_log_t *log, size_t n, uint32_t timeout_ms)
{
    struct timespec dl = deadline_in(timeout_ms);
    pthread_mutex_lock(&log->w.m);
    while (log->n <= n) {
        if (pthread_cond_timedwait(&log->w.c, &log->w.m, &dl) == ETIMEDOUT)
            break;
    }
    size_t got = log->n;
    pthread_mutex_unlock(&log->w.m);
    return got;
}

static const char *event_name(zinx_dial_event_t ev)
{
    switch (ev) {
    case ZINX_DIAL_CONNECTED:
        return "CONNECTED";
    case ZINX_DIAL_FAILED:
        return "FAILED";
    case ZINX_DIAL_DISCONNECTED:
        return "DISCONNECTED";
    case ZINX_DIAL_GAVE_UP:
        return "GAVE_UP";
    }
    return "?";
}

static void print_log(dial_log_t *log)
{
    size_t n = log_count(log);
    for (size_t i = 0; i < n; i++) {
        dial_rec_t r = log_at(log, i);
        print_message("  event %zu: %s status %s attempt %u delay %u "
                      "t %llu us\n",
                      i, event_name(r.ev), zinx_err_name(r.status), r.attempt,
                      r.delay, (unsigned long long)r.t_us);
    }
}

/* ---- servers ------------------------------------------------------------- */

#define ID_BYE 9    /* the server replies "bye" and closes gracefully */
#define ID_BURST 10 /* the server replies with several IDs at once */
#define ID_BIG 11   /* the server replies with BIG_LEN bytes */
#define BIG_LEN 100

typedef struct srv_ctx {
    waiter_t w;
    atomic_uint starts;
    atomic_uint stops;
} srv_ctx_t;

static void srv_ctx_init(srv_ctx_t *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    waiter_init(&ctx->w);
}

static void echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}

static void bye(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *c = zinx_request_conn(req);
    zinx_conn_send_msg(c, ID_BYE, "bye", 3);
    zinx_conn_close(c);
}

/* IDs 21, 0, 22, 23 in this order, each with its ID's name as payload. */
static void burst(zinx_request_t *req, void *udata)
{
    static const uint32_t ids[] = {21, 0, 22, 23};
    (void)udata;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char p[16];
        int n = snprintf(p, sizeof(p), "m%u", ids[i]);
        zinx_conn_send_msg(zinx_request_conn(req), ids[i], p, (uint32_t)n);
    }
}

static void big(zinx_request_t *req, void *udata)
{
    uint8_t p[BIG_LEN];
    (void)udata;
    memset(p, 'b', sizeof(p));
    zinx_conn_send_msg(zinx_request_conn(req), ID_BIG, p, sizeof(p));
}

static void srv_on_start(zinx_conn_t *c, void *udata)
{
    srv_ctx_t *ctx = udata;
    (void)c;
    bump(&ctx->w, &ctx->starts);
}

static void srv_on_stop(zinx_conn_t *c, void *udata)
{
    srv_ctx_t *ctx = udata;
    (void)c;
    bump(&ctx->w, &ctx->stops);
}

static void base_config(zinx_config_t *cfg, zinx_packet_format_t fmt)
{
    zinx_config_default(cfg);
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->tcp_port = 0;
    cfg->io_threads = 2;
    cfg->worker_pool_size = 2;
    cfg->packet_format = fmt;
    cfg->drain_timeout_ms = 3000;
    cfg->log_isolation_level = 2; /* warnings and errors reach stderr */
}

/* A started echo server (every ID echoes, but ID_BYE, ID_BURST, ID_BIG) on
   `port` (0: any). A restart on a known port retries while the port is
   briefly held by someone else. ctx may be NULL. */
static zinx_server_t *echo_server(zinx_packet_format_t fmt, int port,
                                  srv_ctx_t *ctx)
{
    zinx_config_t cfg;
    base_config(&cfg, fmt);
    cfg.tcp_port = port;
    for (int tries = 0;; tries++) {
        zinx_server_t *s = zinx_server_new(&cfg);
        assert_non_null(s);
        zinx_router_t e = {.handle = echo};
        zinx_router_t b = {.handle = bye};
        zinx_router_t u = {.handle = burst};
        zinx_router_t g = {.handle = big};
        assert_int_equal(zinx_server_set_fallback_router(s, &e), 0);
        assert_int_equal(zinx_server_add_router(s, ID_BYE, &b), 0);
        assert_int_equal(zinx_server_add_router(s, ID_BURST, &u), 0);
        assert_int_equal(zinx_server_add_router(s, ID_BIG, &g), 0);
        if (ctx != NULL) {
            assert_int_equal(zinx_server_on_conn_start(s, srv_on_start, ctx),
                             0);
            assert_int_equal(zinx_server_on_conn_stop(s, srv_on_stop, ctx), 0);
        }
        int rc = zinx_server_start(s);
        if (rc == 0) {
            assert_true(zinx_server_port(s) > 0);
            if (port != 0)
                assert_int_equal(zinx_server_port(s), port);
            return s;
        }
        zinx_server_free(s);
        if (rc != ZINX_EADDRINUSE || tries >= 200)
            fail_msg("server start on port %d: %s", port, zinx_err_name(rc));
        sleep_ms(10);
    }
}

/* A port on 127.0.0.1 where nothing listens: bound (so nobody else takes
   it while the test runs) but not listening, so connects are refused. */
static int refused_port(int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *fd_out = fd;
    return ntohs(a.sin_port);
}

/* A raw listening socket on 127.0.0.1, for byte-level checks. */
static int raw_listener(int *port)
{
    int fd;
    *port = refused_port(&fd);
    assert_int_equal(listen(fd, 8), 0);
    return fd;
}

static void read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static void write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Encodes a header by hand, independently of the library's packer. */
static void put_header(zinx_packet_format_t fmt, uint32_t id, uint32_t len,
                       uint8_t out[8])
{
    uint32_t first = fmt == ZINX_FORMAT_TLV ? id : len;
    uint32_t second = fmt == ZINX_FORMAT_TLV ? len : id;
    for (int i = 0; i < 4; i++) {
        int shift = fmt == ZINX_FORMAT_TLV ? 24 - 8 * i : 8 * i;
        out[i] = (uint8_t)(first >> shift);
        out[4 + i] = (uint8_t)(second >> shift);
    }
}

/* ---- the blocking helper ------------------------------------------------- */

static zinx_sync_client_t *sync_connect(int port, zinx_packet_format_t fmt)
{
    zinx_sync_client_t *c = NULL;
    int rc = zinx_sync_client_connect("127.0.0.1", port, fmt, 0, T_IO, &c);
    if (rc != 0)
        fail_msg("sync connect to %d: %s", port, zinx_err_name(rc));
    assert_non_null(c);
    return c;
}

static void expect_msg(const zinx_msg_t *m, uint32_t id, const void *data,
                       uint32_t len)
{
    assert_int_equal(m->id, id);
    assert_int_equal(m->len, len);
    assert_non_null(m->data);
    if (len > 0)
        assert_memory_equal(m->data, data, len);
}

static void sync_echo(zinx_packet_format_t fmt)
{
    zinx_server_t *s = echo_server(fmt, 0, NULL);
    zinx_sync_client_t *c = sync_connect(zinx_server_port(s), fmt);
    static uint8_t big[4096];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 3);
    /* IDs with distinct bytes in every position catch a swapped or
       mis-ordered header field. */
    const uint32_t ids[] = {1, 0x01020304u, 0, 0xfffffffeu, 77};
    const uint32_t lens[] = {5, 0, 0, sizeof(big), 1};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        zinx_msg_t m;
        int rc =
            zinx_sync_client_call(c, ids[i], big, lens[i], ids[i], T_IO, &m);
        assert_int_equal(rc, 0);
        expect_msg(&m, ids[i], big, lens[i]);
        zinx_sync_msg_free(&m);
        assert_null(m.data);
    }
    /* Pipelined: 100 requests, then 100 replies in order. */
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(zinx_sync_client_send(c, 1000 + i, &i, sizeof(i)), 0);
    for (uint32_t i = 0; i < 100; i++) {
        zinx_msg_t m;
        assert_int_equal(zinx_sync_client_recv(c, -1, T_IO, &m), 0);
        expect_msg(&m, 1000 + i, &i, sizeof(i));
        zinx_sync_msg_free(&m);
    }
    /* The helper's MaxPacketSize defaults to 4096. */
    assert_int_equal(zinx_sync_client_send(c, 1, big, sizeof(big)), 0);
    uint8_t *over = calloc(1, sizeof(big) + 1);
    assert_non_null(over);
    assert_int_equal(zinx_sync_client_send(c, 1, over, sizeof(big) + 1),
                     ZINX_EMSGSIZE);
    free(over);
    zinx_msg_t m;
    assert_int_equal(zinx_sync_client_recv(c, 1, T_IO, &m), 0);
    expect_msg(&m, 1, big, sizeof(big));
    zinx_sync_msg_free(&m);
    zinx_sync_client_free(c);
    zinx_server_free(s);
}

static void test_sync_echo_tlv(void **state)
{
    (void)state;
    sync_echo(ZINX_FORMAT_TLV);
}

static void test_sync_echo_ltv_le(void **state)
{
    (void)state;
    sync_echo(ZINX_FORMAT_LTV_LE);
}

/* The helper's bytes on the wire, checked against a raw socket. */
static void sync_wire(zinx_packet_format_t fmt)
{
    int port;
    int lfd = raw_listener(&port);
    zinx_sync_client_t *c = sync_connect(port, fmt);
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);

    assert_int_equal(zinx_sync_client_send(c, 0x0a0b0c0du, "wxyz", 4), 0);
    assert_int_equal(zinx_sync_client_send(c, 5, NULL, 0), 0);
    uint8_t got[8 + 4 + 8], want[8];
    read_all(fd, got, sizeof(got));
    put_header(fmt, 0x0a0b0c0du, 4, want);
    assert_memory_equal(got, want, 8);
    assert_memory_equal(got + 8, "wxyz", 4);
    put_header(fmt, 5, 0, want);
    assert_memory_equal(got + 12, want, 8);

    uint8_t frame[8 + 3];
    put_header(fmt, 0x01020304u, 3, frame);
    memcpy(frame + 8, "abc", 3);
    write_all(fd, frame, sizeof(frame));
    zinx_msg_t m;
    assert_int_equal(zinx_sync_client_recv(c, -1, T_IO, &m), 0);
    expect_msg(&m, 0x01020304u, "abc", 3);
    zinx_sync_msg_free(&m);

    close(fd); /* the peer goes away: ECLOSED, promptly */
    uint64_t t0 = now_ms();
    assert_int_equal(zinx_sync_client_recv(c, -1, T_IO, &m), ZINX_ECLOSED);
    assert_true(now_ms() - t0 < T_IO);
    zinx_sync_client_free(c);
    close(lfd);
}

static void test_sync_wire_bytes_tlv(void **state)
{
    (void)state;
    sync_wire(ZINX_FORMAT_TLV);
}

static void test_sync_wire_bytes_ltv_le(void **state)
{
    (void)state;
    sync_wire(ZINX_FORMAT_LTV_LE);
}

static void test_sync_want_id_keeps_others_queued(void **state)
{
    (void)state;
    zinx_server_t *s = echo_server(ZINX_FORMAT_TLV, 0, NULL);
    zinx_sync_client_t *c = sync_connect(zinx_server_port(s), ZINX_FORMAT_TLV);
    zinx_msg_t m;
    /* The server answers with 21, 0, 22, 23; take 23 first. */
    assert_int_equal(zinx_sync_client_call(c, ID_BURST, NULL, 0, 23, T_IO, &m),
                     0);
    expect_msg(&m, 23, "m23", 3);
    zinx_sync_msg_free(&m);
    /* ID 0 is a real filter, not "any". */
    assert_int_equal(zinx_sync_client_recv(c, 0, T_IO, &m), 0);
    expect_msg(&m, 0, "m0", 2);
    zinx_sync_msg_free(&m);
    /* The rest come out in arrival order. */
    assert_int_equal(zinx_sync_client_recv(c, -1, T_IO, &m), 0);
    expect_msg(&m, 21, "m21", 3);
    zinx_sync_msg_free(&m);
    /* A filter that matches nothing waits and leaves 22 queued. */
    assert_int_equal(zinx_sync_client_recv(c, 99, 50, &m), ZINX_ETIMEDOUT);
    assert_int_equal(zinx_sync_client_recv(c, 22, T_IO, &m), 0);
    expect_msg(&m, 22, "m22", 3);
    zinx_sync_msg_free(&m);
    assert_int_equal(zinx_sync_client_recv(c, -1, 50, &m), ZINX_ETIMEDOUT);
    zinx_sync_client_free(c);
    zinx_server_free(s);
}

static void test_sync_recv_timeout(void **state)
{
    (void)state;
    zinx_server_t *s = echo_server(ZINX_FORMAT_LTV_LE, 0, NULL);
    zinx_sync_client_t *c =
        sync_connect(zinx_server_port(s), ZINX_FORMAT_LTV_LE);
    zinx_msg_t m = {0};
    uint64_t t0 = now_ms();
    assert_int_equal(zinx_sync_client_recv(c, -1, 200, &m), ZINX_ETIMEDOUT);
    uint64_t took = now_ms() - t0;
    assert_true(took + SLACK_MS >= 200);
    assert_true(took < 200 + 2000);
    assert_null(m.data);
    t0 = now_ms();
    assert_int_equal(zinx_sync_client_recv(c, 5, 0, &m), ZINX_ETIMEDOUT);
    assert_true(now_ms() - t0 < 1000);
    /* Still usable after timing out. */
    assert_int_equal(zinx_sync_client_call(c, 4, "ok", 2, 4, T_IO, &m), 0);
    expect_msg(&m, 4, "ok", 2);
    zinx_sync_msg_free(&m);
    zinx_sync_client_free(c);
    zinx_server_free(s);
}

static void test_sync_server_closes(void **state)
{
    (void)state;
    srv_ctx_t sctx;
    srv_ctx_init(&sctx);
    zinx_server_t *s = echo_server(ZINX_FORMAT_TLV, 0, &sctx);
    zinx_sync_client_t *c = sync_connect(zinx_server_port(s), ZINX_FORMAT_TLV);
    zinx_msg_t m;
    assert_int_equal(zinx_sync_client_send(c, 3, "x", 1), 0);
    assert_int_equal(zinx_sync_client_send(c, ID_BYE, NULL, 0), 0);
    /* Nothing has ID 12345: this returns once the close is seen... */
    uint64_t t0 = now_ms();
    assert_int_equal(zinx_sync_client_recv(c, 12345, T_IO, &m), ZINX_ECLOSED);
    assert_true(now_ms() - t0 < T_IO);
    /* ...and what arrived before the close is still there, in order. */
    assert_int_equal(zinx_sync_client_recv(c, -1, T_IO, &m), 0);
    expect_msg(&m, 3, "x", 1);
    zinx_sync_msg_free(&m);
    assert_int_equal(zinx_sync_client_recv(c, ID_BYE, T_IO, &m), 0);
    expect_msg(&m, ID_BYE, "bye", 3);
    zinx_sync_msg_free(&m);
    assert_int_equal(zinx_sync_client_recv(c, -1, T_IO, &m), ZINX_ECLOSED);
    assert_int_equal(zinx_sync_client_send(c, 3, "x", 1), ZINX_ECLOSED);
    assert_int_equal(zinx_sync_client_call(c, 3, "x", 1, 3, T_IO, &m),
                     ZINX_ECLOSED);
    assert_int_equal(wait_ge(&sctx.w, &sctx.stops, 1, T_IO), 1);
    zinx_sync_client_free(c);
    zinx_server_free(s);
    waiter_destroy(&sctx.w);
}

static void test_sync_max_packet_size(void **state)
{
    (void)state;
    zinx_server_t *s = echo_server(ZINX_FORMAT_LTV_LE, 0, NULL);
    zinx_sync_client_t *c = NULL;
    assert_int_equal(zinx_sync_client_connect("127.0.0.1", zinx_server_port(s),
                                              ZINX_FORMAT_LTV_LE, 16, T_IO, &c),
                     0);
    uint8_t p[17];
    memset(p, 'p', sizeof(p));
    zinx_msg_t m;
    assert_int_equal(zinx_sync_client_call(c, 7, p, 16, 7, T_IO, &m), 0);
    expect_msg(&m, 7, p, 16);
    zinx_sync_msg_free(&m);
    assert_int_equal(zinx_sync_client_send(c, 7, p, 17), ZINX_EMSGSIZE);
    /* A reply longer than the helper's limit ends the connection, and
       recv says why instead of a bare ZINX_ECLOSED. */
    assert_int_equal(zinx_sync_client_call(c, ID_BIG, NULL, 0, -1, T_IO, &m),
                     ZINX_EMSGSIZE);
    zinx_sync_client_free(c);
    c = NULL;
    assert_int_equal(zinx_sync_client_connect(NULL, zinx_server_port(s),
                                              ZINX_FORMAT_TLV, 0, T_IO, &c),
                     ZINX_EINVAL);
    zinx_server_free(s);
}

static void test_sync_connect_refused(void **state)
{
    (void)state;
    int hold;
    int port = refused_port(&hold);
    zinx_sync_client_t *c = NULL;
    uint64_t t0 = now_ms();
    int rc = zinx_sync_client_connect("127.0.0.1", port, ZINX_FORMAT_TLV, 0,
                                      T_IO, &c);
    assert_int_equal(rc, -ECONNREFUSED);
    assert_null(c);
    assert_true(now_ms() - t0 < 2000);
    close(hold);
}

/* ---- client endpoints ---------------------------------------------------- */

typedef struct cli_ctx {
    waiter_t w;
    atomic_uint starts;
    atomic_uint stops;
    atomic_uint hellos; /* echoes of the OnConnStart message */
    atomic_uint prop_in_router;
    atomic_uint prop_in_stop;
    atomic_uint prop_frees;
    atomic_uint stop_send_closed;
    atomic_uint bad;           /* anything unexpected */
    _Atomic uint64_t start_id; /* ID of the last connection started */
} cli_ctx_t;

static void cli_ctx_init(cli_ctx_t *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    waiter_init(&ctx->w);
}

typedef struct tag {
    cli_ctx_t *ctx;
    uint64_t conn_id;
} tag_t;

#define ID_HELLO 1

static void free_tag(void *value)
{
    tag_t *t = value;
    bump(&t->ctx->w, &t->ctx->prop_frees);
    free(t);
}

static int tag_matches(zinx_conn_t *c)
{
    void *v = NULL;
    if (zinx_conn_get_property(c, "tag", &v) != 0)
        return 0;
    return ((tag_t *)v)->conn_id == zinx_conn_id(c);
}

static void cli_on_start(zinx_conn_t *c, void *udata)
{
    cli_ctx_t *ctx = udata;
    tag_t *t = malloc(sizeof(*t));
    if (t == NULL) {
        atomic_fetch_add(&ctx->bad, 1);
        return;
    }
    *t = (tag_t){.ctx = ctx, .conn_id = zinx_conn_id(c)};
    if (zinx_conn_set_property(c, "tag", t, free_tag) != 0) {
        free(t);
        atomic_fetch_add(&ctx->bad, 1);
    }
    char hello[32];
    int n = snprintf(hello, sizeof(hello), "hello %llu",
                     (unsigned long long)zinx_conn_id(c));
    if (zinx_conn_send_msg(c, ID_HELLO, hello, (uint32_t)n) != 0)
        atomic_fetch_add(&ctx->bad, 1);
    atomic_store(&ctx->start_id, zinx_conn_id(c));
    bump(&ctx->w, &ctx->starts);
}

static void cli_on_stop(zinx_conn_t *c, void *udata)
{
    cli_ctx_t *ctx = udata;
    if (tag_matches(c))
        atomic_fetch_add(&ctx->prop_in_stop, 1);
    if (zinx_conn_send_msg(c, ID_HELLO, "late", 4) == ZINX_ECLOSED)
        atomic_fetch_add(&ctx->stop_send_closed, 1);
    bump(&ctx->w, &ctx->stops);
}

/* The server's echo of the OnConnStart message. */
static void cli_on_hello(zinx_request_t *req, void *udata)
{
    cli_ctx_t *ctx = udata;
    zinx_conn_t *c = zinx_request_conn(req);
    char want[32];
    int n = snprintf(want, sizeof(want), "hello %llu",
                     (unsigned long long)zinx_conn_id(c));
    if (zinx_request_data_len(req) != (uint32_t)n ||
        memcmp(zinx_request_data(req), want, (size_t)n) != 0)
        atomic_fetch_add(&ctx->bad, 1);
    if (tag_matches(c))
        atomic_fetch_add(&ctx->prop_in_router, 1);
    bump(&ctx->w, &ctx->hellos);
}

/* A started client endpoint with the hooks and router above. */
static zinx_server_t *hello_client(zinx_packet_format_t fmt, uint32_t io,
                                   uint32_t workers, cli_ctx_t *ctx)
{
    zinx_config_t cfg;
    base_config(&cfg, fmt);
    cfg.io_threads = io;
    cfg.worker_pool_size = workers;
    zinx_server_t *e = zinx_client_new(&cfg);
    assert_non_null(e);
    zinx_router_t r = {.handle = cli_on_hello, .udata = ctx};
    assert_int_equal(zinx_server_add_router(e, ID_HELLO, &r), 0);
    assert_int_equal(zinx_server_on_conn_start(e, cli_on_start, ctx), 0);
    assert_int_equal(zinx_server_on_conn_stop(e, cli_on_stop, ctx), 0);
    assert_int_equal(zinx_server_start(e), 0);
    assert_int_equal(zinx_server_port(e), 0); /* it does not listen */
    return e;
}

static void client_endpoint_hooks(zinx_packet_format_t fmt, uint32_t workers)
{
    srv_ctx_t sctx;
    cli_ctx_t cctx;
    srv_ctx_init(&sctx);
    cli_ctx_init(&cctx);
    zinx_server_t *s = echo_server(fmt, 0, &sctx);
    zinx_server_t *e = hello_client(fmt, 1, workers, &cctx);
    int port = zinx_server_port(s);

    zinx_dialer_t *d = NULL;
    assert_int_equal(zinx_server_dial(e, "127.0.0.1", port, NULL, &d), 0);
    assert_non_null(d);
    zinx_conn_t *c = NULL;
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c), 0);
    assert_non_null(c);
    assert_ptr_equal(zinx_conn_server(c), e);
    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    assert_string_equal(zinx_conn_remote_addr(c), want);
    assert_true(strncmp(zinx_conn_local_addr(c), "127.0.0.1:", 10) == 0);

    /* OnConnStart sent; the server echoed; the client router got it with
       the property OnConnStart stored. */
    assert_int_equal(wait_ge(&cctx.w, &cctx.hellos, 1, T_IO), 1);
    assert_int_equal(atomic_load(&cctx.starts), 1);
    assert_int_equal(atomic_load(&cctx.start_id), zinx_conn_id(c));
    assert_int_equal(atomic_load(&cctx.prop_in_router), 1);
    assert_int_equal(atomic_load(&sctx.starts), 1);

    /* The connection is managed by the client endpoint like any other. */
    zinx_connmgr_t *mgr = zinx_server_connmgr(e);
    assert_int_equal(zinx_connmgr_count(mgr), 1);
    zinx_conn_t *same = zinx_connmgr_get(mgr, zinx_conn_id(c));
    assert_ptr_equal(same, c);
    zinx_conn_unref(same);
    zinx_conn_t *cur = zinx_dialer_conn(d);
    assert_ptr_equal(cur, c);
    zinx_conn_unref(cur);

    /* A message sent from the test thread comes back through the same
       router. */
    char hello[32];
    int n = snprintf(hello, sizeof(hello), "hello %llu",
                     (unsigned long long)zinx_conn_id(c));
    assert_int_equal(zinx_conn_send_msg(c, ID_HELLO, hello, (uint32_t)n), 0);
    assert_int_equal(wait_ge(&cctx.w, &cctx.hellos, 2, T_IO), 2);
    assert_int_equal(atomic_load(&cctx.prop_in_router), 2);

    zinx_dialer_close(d);
    assert_int_equal(wait_ge(&cctx.w, &cctx.stops, 1, T_IO), 1);
    assert_int_equal(wait_ge(&cctx.w, &cctx.prop_frees, 1, T_IO), 1);
    assert_int_equal(wait_ge(&sctx.w, &sctx.stops, 1, T_IO), 1);
    assert_int_equal(atomic_load(&cctx.prop_in_stop), 1);
    assert_int_equal(atomic_load(&cctx.stop_send_closed), 1);
    assert_false(zinx_conn_is_open(c));
    assert_int_equal(zinx_conn_send_msg(c, 1, "x", 1), ZINX_ECLOSED);
    zinx_conn_unref(c);
    zinx_server_free(e);
    zinx_server_free(s);
    assert_int_equal(atomic_load(&cctx.bad), 0);
    assert_int_equal(atomic_load(&cctx.hellos), 2);
    assert_int_equal(atomic_load(&cctx.starts), 1);
    assert_int_equal(atomic_load(&cctx.stops), 1);
    assert_int_equal(atomic_load(&cctx.prop_frees), 1);
    waiter_destroy(&cctx.w);
    waiter_destroy(&sctx.w);
}

static void test_client_endpoint_hooks_workers(void **state)
{
    (void)state;
    client_endpoint_hooks(ZINX_FORMAT_TLV, 2);
}

static void test_client_endpoint_hooks_inline_ltv(void **state)
{
    (void)state;
    client_endpoint_hooks(ZINX_FORMAT_LTV_LE, 0);
}

/* ---- many clients on one loop -------------------------------------------- */

#define ID_PING 100
#define PINGS 50
#define WINDOW 4

typedef struct many_ctx {
    waiter_t w;
    atomic_uint done;
    atomic_uint bad;
    atomic_uint stops;
} many_ctx_t;

typedef struct pinger {
    uint32_t sent;
    uint32_t received;
} pinger_t;

/* Payload of request seq on conn: its numbers plus a varying tail. */
static uint32_t ping_payload(uint64_t conn_id, uint32_t seq, char *out,
                             size_t cap)
{
    int n = snprintf(out, cap, "%llu/%u/", (unsigned long long)conn_id, seq);
    uint32_t tail = (uint32_t)((conn_id * 31 + seq) % 40);
    for (uint32_t i = 0; i < tail && (size_t)n + 1 < cap; i++)
        out[n++] = (char)('a' + (seq + i) % 26);
    return (uint32_t)n;
}

static int send_ping(zinx_conn_t *c, pinger_t *p)
{
    char buf[96];
    uint32_t n = ping_payload(zinx_conn_id(c), p->sent, buf, sizeof(buf));
    int rc = zinx_conn_send_msg(c, ID_PING, buf, n);
    p->sent++;
    return rc;
}

static void many_on_start(zinx_conn_t *c, void *udata)
{
    many_ctx_t *ctx = udata;
    pinger_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        atomic_fetch_add(&ctx->bad, 1);
        return;
    }
    zinx_conn_set_data(c, p);
    while (p->sent < WINDOW) {
        if (send_ping(c, p) != 0)
            atomic_fetch_add(&ctx->bad, 1);
    }
}

static void many_on_pong(zinx_request_t *req, void *udata)
{
    many_ctx_t *ctx = udata;
    zinx_conn_t *c = zinx_request_conn(req);
    pinger_t *p = zinx_conn_data(c);
    char want[96];
    uint32_t n = ping_payload(zinx_conn_id(c), p->received, want, sizeof(want));
    if (zinx_request_data_len(req) != n ||
        memcmp(zinx_request_data(req), want, n) != 0)
        atomic_fetch_add(&ctx->bad, 1);
    p->received++;
    if (p->sent < PINGS && send_ping(c, p) != 0)
        atomic_fetch_add(&ctx->bad, 1);
    if (p->received == PINGS)
        bump(&ctx->w, &ctx->done);
}

static void many_on_stop(zinx_conn_t *c, void *udata)
{
    many_ctx_t *ctx = udata;
    pinger_t *p = zinx_conn_data(c);
    if (p == NULL || p->received != PINGS || p->sent != PINGS)
        atomic_fetch_add(&ctx->bad, 1);
    free(p);
    zinx_conn_set_data(c, NULL);
    bump(&ctx->w, &ctx->stops);
}

static void many_clients(unsigned nclients, uint32_t workers)
{
    many_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    waiter_init(&ctx.w);
    srv_ctx_t sctx;
    srv_ctx_init(&sctx);
    zinx_server_t *s = echo_server(ZINX_FORMAT_TLV, 0, &sctx);

    zinx_config_t cfg;
    base_config(&cfg, ZINX_FORMAT_TLV);
    cfg.io_threads = 1; /* every connection shares one loop */
    cfg.worker_pool_size = workers;
    zinx_server_t *e = zinx_client_new(&cfg);
    assert_non_null(e);
    zinx_router_t r = {.handle = many_on_pong, .udata = &ctx};
    assert_int_equal(zinx_server_add_router(e, ID_PING, &r), 0);
    assert_int_equal(zinx_server_on_conn_start(e, many_on_start, &ctx), 0);
    assert_int_equal(zinx_server_on_conn_stop(e, many_on_stop, &ctx), 0);
    assert_int_equal(zinx_server_start(e), 0);

    zinx_dialer_t **d = calloc(nclients, sizeof(*d));
    assert_non_null(d);
    for (unsigned i = 0; i < nclients; i++)
        assert_int_equal(
            zinx_server_dial(e, "127.0.0.1", zinx_server_port(s), NULL, &d[i]),
            0);
    unsigned done = wait_ge(&ctx.w, &ctx.done, nclients, T_LONG);
    assert_int_equal(atomic_load(&ctx.bad), 0);
    assert_int_equal(done, nclients);
    assert_int_equal(atomic_load(&sctx.starts), nclients);
    assert_int_equal(zinx_connmgr_count(zinx_server_connmgr(e)), nclients);
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_int_equal(st.msgs_in, (uint64_t)nclients * PINGS);
    zinx_server_stats(e, &st);
    assert_int_equal(st.msgs_in, (uint64_t)nclients * PINGS);
    assert_int_equal(st.msgs_out, (uint64_t)nclients * PINGS);

    /* Every dialer has its own connection. */
    uint64_t *ids = calloc(nclients, sizeof(*ids));
    assert_non_null(ids);
    for (unsigned i = 0; i < nclients; i++) {
        zinx_conn_t *c = NULL;
        assert_int_equal(zinx_dialer_wait(d[i], T_IO, &c), 0);
        ids[i] = zinx_conn_id(c);
        for (unsigned j = 0; j < i; j++)
            assert_true(ids[j] != ids[i]);
        zinx_conn_unref(c);
    }
    for (unsigned i = 0; i < nclients; i++)
        zinx_dialer_close(d[i]);
    assert_int_equal(wait_ge(&ctx.w, &ctx.stops, nclients, T_LONG), nclients);
    assert_int_equal(wait_ge(&sctx.w, &sctx.stops, nclients, T_LONG), nclients);
    zinx_server_free(e);
    zinx_server_free(s);
    assert_int_equal(atomic_load(&ctx.bad), 0);
    free(ids);
    free(d);
    waiter_destroy(&ctx.w);
    waiter_destroy(&sctx.w);
}

static void test_many_clients_one_loop_workers(void **state)
{
    (void)state;
    many_clients(200, 4);
}

static void test_many_clients_one_loop_inline(void **state)
{
    (void)state;
    many_clients(50, 0);
}

/* ---- endpoints that listen and dial -------------------------------------- */

#define ID_UP 50   /* gateway -> upstream, echoed back */
#define ID_REPLY 2 /* gateway -> downstream client */

typedef struct gw_ctx {
    waiter_t w;
    _Atomic(zinx_conn_t *) up; /* the upstream connection */
    zinx_server_t *self;       /* set before start */
    atomic_uint starts;
    atomic_uint replies;
    atomic_uint bad;
} gw_ctx_t;

/* From a downstream client: forward upstream, tagged with its conn ID. */
static void gw_forward(zinx_request_t *req, void *udata)
{
    gw_ctx_t *g = udata;
    zinx_conn_t *up = atomic_load(&g->up);
    uint8_t buf[8 + 256];
    uint32_t len = zinx_request_data_len(req);
    uint64_t id = zinx_conn_id(zinx_request_conn(req));
    if (up == NULL || len > 256) {
        atomic_fetch_add(&g->bad, 1);
        return;
    }
    memcpy(buf, &id, 8);
    memcpy(buf + 8, zinx_request_data(req), len);
    if (zinx_conn_send_msg(up, ID_UP, buf, 8 + len) != 0)
        atomic_fetch_add(&g->bad, 1);
}

/* From upstream (on the dialed connection): back to the client. */
static void gw_back(zinx_request_t *req, void *udata)
{
    gw_ctx_t *g = udata;
    zinx_conn_t *from = zinx_request_conn(req);
    uint64_t id;
    if (zinx_conn_server(from) != g->self || from != atomic_load(&g->up) ||
        zinx_request_data_len(req) < 8) {
        atomic_fetch_add(&g->bad, 1);
        return;
    }
    memcpy(&id, zinx_request_data(req), 8);
    zinx_conn_t *down = zinx_connmgr_get(zinx_server_connmgr(g->self), id);
    if (down == NULL ||
        zinx_conn_send_msg(down, ID_REPLY, zinx_request_data(req) + 8,
                           zinx_request_data_len(req) - 8) != 0)
        atomic_fetch_add(&g->bad, 1);
    zinx_conn_unref(down);
    bump(&g->w, &g->replies);
}

static void gw_on_start(zinx_conn_t *c, void *udata)
{
    gw_ctx_t *g = udata;
    (void)c;
    bump(&g->w, &g->starts);
}

static void test_server_endpoint_dials_upstream(void **state)
{
    (void)state;
    srv_ctx_t up_ctx;
    srv_ctx_init(&up_ctx);
    zinx_server_t *up = echo_server(ZINX_FORMAT_LTV_LE, 0, &up_ctx);

    gw_ctx_t g;
    memset(&g, 0, sizeof(g));
    waiter_init(&g.w);
    atomic_init(&g.up, NULL);
    zinx_config_t cfg;
    base_config(&cfg, ZINX_FORMAT_LTV_LE);
    zinx_server_t *gw = zinx_server_new(&cfg);
    assert_non_null(gw);
    g.self = gw;
    zinx_router_t fwd = {.handle = gw_forward, .udata = &g};
    zinx_router_t back = {.handle = gw_back, .udata = &g};
    assert_int_equal(zinx_server_add_router(gw, 1, &fwd), 0);
    assert_int_equal(zinx_server_add_router(gw, ID_UP, &back), 0);
    assert_int_equal(zinx_server_on_conn_start(gw, gw_on_start, &g), 0);
    assert_int_equal(zinx_server_start(gw), 0);

    zinx_dialer_t *d;
    zinx_conn_t *c = NULL;
    assert_int_equal(
        zinx_server_dial(gw, "127.0.0.1", zinx_server_port(up), NULL, &d), 0);
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c), 0);
    assert_ptr_equal(zinx_conn_server(c), gw);
    atomic_store(&g.up, c);

    zinx_sync_client_t *cl[3];
    for (int i = 0; i < 3; i++)
        cl[i] = sync_connect(zinx_server_port(gw), ZINX_FORMAT_LTV_LE);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 3; i++) {
            char p[32];
            int n = snprintf(p, sizeof(p), "client %d round %d", i, round);
            zinx_msg_t m;
            assert_int_equal(zinx_sync_client_call(cl[i], 1, p, (uint32_t)n,
                                                   ID_REPLY, T_IO, &m),
                             0);
            expect_msg(&m, ID_REPLY, p, (uint32_t)n);
            zinx_sync_msg_free(&m);
        }
    }
    /* gw_back counts after it sent: the last count may trail the reply. */
    assert_int_equal(wait_ge(&g.w, &g.replies, 60, T_IO), 60);
    assert_int_equal(atomic_load(&g.bad), 0);
    /* One upstream connection; the gateway ran OnConnStart for it and for
       each accepted client. */
    assert_int_equal(atomic_load(&up_ctx.starts), 1);
    assert_int_equal(wait_ge(&g.w, &g.starts, 4, T_IO), 4);
    assert_int_equal(zinx_connmgr_count(zinx_server_connmgr(gw)), 4);

    for (int i = 0; i < 3; i++)
        zinx_sync_client_free(cl[i]);
    /* Freeing the gateway closes its outgoing connection too. */
    zinx_server_free(gw);
    assert_false(zinx_conn_is_open(c));
    assert_int_equal(wait_ge(&up_ctx.w, &up_ctx.stops, 1, T_IO), 1);
    zinx_conn_unref(c);
    zinx_dialer_close(d);
    zinx_server_free(up);
    waiter_destroy(&g.w);
    waiter_destroy(&up_ctx.w);
}

/* One endpoint dials its own listener: both ends of the connection run
   through the same routers and hooks. */
typedef struct self_ctx {
    waiter_t w;
    atomic_uint starts;
    atomic_uint stops;
    atomic_uint pongs;
    atomic_uint bad;
} self_ctx_t;

static void self_ping(zinx_request_t *req, void *udata)
{
    self_ctx_t *x = udata;
    if (zinx_conn_send_msg(zinx_request_conn(req), 2, zinx_request_data(req),
                           zinx_request_data_len(req)) != 0)
        atomic_fetch_add(&x->bad, 1);
}

static void self_pong(zinx_request_t *req, void *udata)
{
    self_ctx_t *x = udata;
    if (zinx_request_data_len(req) != 4 ||
        memcmp(zinx_request_data(req), "ping", 4) != 0)
        atomic_fetch_add(&x->bad, 1);
    bump(&x->w, &x->pongs);
}

static void self_start(zinx_conn_t *c, void *udata)
{
    self_ctx_t *x = udata;
    (void)c;
    bump(&x->w, &x->starts);
}

static void self_stop(zinx_conn_t *c, void *udata)
{
    self_ctx_t *x = udata;
    (void)c;
    bump(&x->w, &x->stops);
}

static void test_server_endpoint_dials_itself(void **state)
{
    (void)state;
    self_ctx_t x;
    memset(&x, 0, sizeof(x));
    waiter_init(&x.w);
    zinx_config_t cfg;
    base_config(&cfg, ZINX_FORMAT_TLV);
    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    zinx_router_t ping = {.handle = self_ping, .udata = &x};
    zinx_router_t pong = {.handle = self_pong, .udata = &x};
    assert_int_equal(zinx_server_add_router(s, 1, &ping), 0);
    assert_int_equal(zinx_server_add_router(s, 2, &pong), 0);
    assert_int_equal(zinx_server_on_conn_start(s, self_start, &x), 0);
    assert_int_equal(zinx_server_on_conn_stop(s, self_stop, &x), 0);
    assert_int_equal(zinx_server_start(s), 0);

    zinx_dialer_t *d;
    zinx_conn_t *c = NULL;
    assert_int_equal(
        zinx_server_dial(s, "127.0.0.1", zinx_server_port(s), NULL, &d), 0);
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(zinx_conn_send_msg(c, 1, "ping", 4), 0);
    assert_int_equal(wait_ge(&x.w, &x.pongs, 10, T_IO), 10);
    assert_int_equal(wait_ge(&x.w, &x.starts, 2, T_IO), 2);
    assert_int_equal(zinx_connmgr_count(zinx_server_connmgr(s)), 2);
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_int_equal(st.accepted, 1);
    zinx_conn_unref(c);
    zinx_dialer_close(d);
    assert_int_equal(wait_ge(&x.w, &x.stops, 2, T_IO), 2);
    zinx_server_free(s);
    assert_int_equal(atomic_load(&x.bad), 0);
    assert_int_equal(atomic_load(&x.pongs), 10);
    waiter_destroy(&x.w);
}

/* ---- dialers: errors and waits ------------------------------------------- */

static void test_dial_argument_and_state_errors(void **state)
{
    (void)state;
    zinx_config_t cfg;
    base_config(&cfg, ZINX_FORMAT_TLV);
    zinx_dialer_t *d = NULL;

    zinx_server_t *e = zinx_client_new(&cfg);
    assert_non_null(e);
    assert_int_equal(zinx_server_dial(e, "127.0.0.1", 1, NULL, &d),
                     ZINX_ESTATE);
    assert_null(d);
    zinx_server_free(e);

    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    assert_int_equal(zinx_server_dial(s, "127.0.0.1", 1, NULL, &d),
                     ZINX_ESTATE);
    assert_int_equal(zinx_server_start(s), 0);
    assert_int_equal(zinx_server_dial(s, NULL, 1, NULL, &d), ZINX_EINVAL);
    assert_int_equal(zinx_server_dial(s, "127.0.0.1", 0, NULL, &d),
                     ZINX_EINVAL);
    assert_int_equal(zinx_server_dial(s, "127.0.0.1", 65536, NULL, &d),
                     ZINX_EINVAL);
    assert_int_equal(zinx_server_dial(s, "127.0.0.1", 1, NULL, NULL),
                     ZINX_EINVAL);
    /* Stopped (but not yet freed): dialing is refused again. */
    assert_int_equal(zinx_server_stop(s), 0);
    assert_int_equal(zinx_server_wait(s), 0);
    assert_int_equal(zinx_server_dial(s, "127.0.0.1", 1, NULL, &d),
                     ZINX_ESTATE);
    assert_null(d);
    zinx_server_free(s);
}

static void test_dial_names(void **state)
{
    (void)state;
    srv_ctx_t sctx;
    srv_ctx_init(&sctx);
    zinx_server_t *s = echo_server(ZINX_FORMAT_TLV, 0, &sctx);
    zinx_config_t cfg;
    base_config(&cfg, ZINX_FORMAT_TLV);
    zinx_server_t *e = zinx_client_new(&cfg);
    assert_non_null(e);
    assert_int_equal(zinx_server_start(e), 0);

    /* "localhost" may also name ::1, where nothing listens; the dialer
       tries each address within one attempt. */
    zinx_dialer_t *d = NULL;
    zinx_conn_t *c = NULL;
    assert_int_equal(
        zinx_server_dial(e, "localhost", zinx_server_port(s), NULL, &d), 0);
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c), 0);
    assert_int_equal(wait_ge(&sctx.w, &sctx.starts, 1, T_IO), 1);
    zinx_conn_unref(c);
    zinx_dialer_close(d);

    d = NULL;
    assert_int_equal(zinx_server_dial(e, "no-such-host.invalid", 80, NULL, &d),
                     ZINX_ENOENT);
    assert_null(d);
    assert_int_equal(zinx_server_dial(e, "999.1.2.3", 80, NULL, &d),
                     ZINX_ENOENT);
    zinx_server_free(e);
    zinx_server_free(s);
    waiter_destroy(&sctx.w);
}

static zinx_server_t *plain_client(void)
{
    zinx_config_t cfg;
    base_config(&cfg, ZINX_FORMAT_TLV);
    cfg.io_threads = 1;
    zinx_server_t *e = zinx_client_new(&cfg);
    assert_non_null(e);
    assert_int_equal(zinx_server_start(e), 0);
    return e;
}

static void test_dialer_wait_times_out_while_retrying(void **state)
{
    (void)state;
    int hold;
    int port = refused_port(&hold);
    dial_log_t log;
    log_init(&log);
    zinx_server_t *e = plain_client();
    zinx_dial_opts_t o = {.reconnect = 1,
                          .backoff_initial_ms = 20,
                          .backoff_max_ms = 40,
                          .on_event = record_event,
                          .udata = &log};
    zinx_dialer_t *d;
    assert_int_equal(zinx_server_dial(e, "127.0.0.1", port, &o, &d), 0);
    zinx_conn_t *c = NULL;
    uint64_t t0 = now_ms();
    assert_int_equal(zinx_dialer_wait(d, 300, &c), ZINX_ETIMEDOUT);
    uint64_t took = now_ms() - t0;
    assert_null(c);
    assert_null(zinx_dialer_conn(d));
    assert_true(took + SLACK_MS >= 300);
    assert_true(took < 300 + 2000);
    /* It kept trying meanwhile and never gave up. */
    long f2 = wait_event(&log, 0, ZINX_DIAL_FAILED, T_IO);
    assert_true(f2 >= 0);
    f2 = wait_event(&log, (size_t)f2 + 1, ZINX_DIAL_FAILED, T_IO);
    assert_true(f2 >= 0);
    zinx_dialer_close(d);
    zinx_server_free(e); /* joins the loop: the log is final */
    size_t n = log_count(&log);
    for (size_t i = 0; i < n; i++) {
        dial_rec_t r = log_at(&log, i);
        assert_int_equal(r.ev, ZINX_DIAL_FAILED);
        assert_int_equal(r.status, -ECONNREFUSED);
        assert_true(r.delay > 0);
    }
    close(hold);
    waiter_destroy(&log.w);
}

static void test_dialer_max_attempts_gives_up(void **state)
{
    (void)state;
    int hold;
    int port = refused_port(&hold);
    dial_log_t log;
    log_init(&log);
    zinx_server_t *e = plain_client();
    zinx_dial_opts_t o = {.reconnect = 1,
                          .backoff_initial_ms = 10,
                          .backoff_max_ms = 1000,
                          .max_attempts = 3,
                          .on_event = record_event,
                          .udata = &log};
    zinx_dialer_t *d;
    assert_int_equal(zinx_server_dial(e, "127.0.0.1", port, &o, &d), 0);
    zinx_conn_t *c = NULL;
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c), -ECONNREFUSED);
    assert_null(c);
    /* Once given up, waiting returns at once. */
    uint64_t t0 = now_ms();
    assert_int_equal(zinx_dialer_wait(d, T_IO, NULL), -ECONNREFUSED);
    assert_true(now_ms() - t0 < 1000);

    /* Without reconnect: one attempt. */
    dial_log_t log1;
    log_init(&log1);
    zinx_dial_opts_t o1 = {.on_event = record_event, .udata = &log1};
    zinx_dialer_t *d1;
    assert_int_equal(zinx_server_dial(e, "127.0.0.1", port, &o1, &d1), 0);
    assert_int_equal(zinx_dialer_wait(d1, T_IO, NULL), -ECONNREFUSED);

    zinx_dialer_close(d);
    zinx_dialer_close(d1);
    zinx_server_free(e);
    if (log_count(&log) != 4)
        print_log(&log);
    assert_int_equal(log_count(&log), 4);
    for (uint32_t k = 1; k <= 3; k++) {
        dial_rec_t r = log_at(&log, k - 1);
        assert_int_equal(r.ev, ZINX_DIAL_FAILED);
        assert_int_equal(r.status, -ECONNREFUSED);
        assert_int_equal(r.attempt, k);
        uint32_t b = 10u << (k - 1);
        if (k < 3) {
            assert_in_range(r.delay, b / 2, b);
        } else {
            assert_int_equal(r.delay, 0); /* no further attempt planned */
        }
    }
    dial_rec_t g = log_at(&log, 3);
    assert_int_equal(g.ev, ZINX_DIAL_GAVE_UP);
    assert_int_equal(g.status, -ECONNREFUSED);
    assert_int_equal(g.delay, 0);

    assert_int_equal(log_count(&log1), 2);
    assert_int_equal(log_at(&log1, 0).ev, ZINX_DIAL_FAILED);
    assert_int_equal(log_at(&log1, 0).attempt, 1);
    assert_int_equal(log_at(&log1, 0).delay, 0);
    assert_int_equal(log_at(&log1, 1).ev, ZINX_DIAL_GAVE_UP);
    assert_int_equal(log_at(&log1, 1).status, -ECONNREFUSED);
    close(hold);
    waiter_destroy(&log.w);
    waiter_destroy(&log1.w);
}

/* ---- reconnect ----------------------------------------------------------- */

#define BO_INIT 40u
#define BO_MAX 160u

/* The back-off bound of attempt k: BO_INIT doubled per attempt, capped. */
static uint32_t bound_of(uint32_t k)
{
    uint32_t b = BO_INIT;
    for (uint32_t i = 1; i < k && b < BO_MAX; i++)
        b *= 2;
    return b < BO_MAX ? b : BO_MAX;
}

/* Checks the FAILED events of one outage, from index `from` (the
   DISCONNECTED event): attempts count up, each planned delay lies in
   [b/2, b] of its attempt's bound, delays grow until the cap, and each
   attempt really waited its delay. */
static void check_backoff(dial_log_t *log, size_t from, uint32_t nfailed)
{
    dial_rec_t prev = log_at(log, from);
    uint32_t prev_delay = 0;
    uint32_t lost_delay_lo = BO_INIT / 2; /* first retry after a loss */
    size_t i = from + 1;
    for (uint32_t k = 1; k <= nfailed; k++, i++) {
        dial_rec_t r = log_at(log, i);
        if (r.ev != ZINX_DIAL_FAILED)
            print_log(log);
        assert_int_equal(r.ev, ZINX_DIAL_FAILED);
        assert_int_equal(r.status, -ECONNREFUSED);
        assert_int_equal(r.attempt, k);
        uint32_t b = bound_of(k);
        assert_in_range(r.delay, b / 2, b);
        assert_true(r.delay <= BO_MAX);
        if (k > 1 && b == 2 * bound_of(k - 1))
            assert_true(r.delay >= prev_delay);
        /* The attempt reported here started after the previous delay. */
        uint64_t gap_ms = (r.t_us - prev.t_us) / 1000u;
        uint32_t waited = k == 1 ? lost_delay_lo : prev_delay;
        if (gap_ms + SLACK_MS < waited)
            print_log(log);
        assert_true(gap_ms + SLACK_MS >= waited);
        assert_true(gap_ms < (uint64_t)b * 2 + 2000);
        prev = r;
        prev_delay = r.delay;
    }
}

static void test_dialer_reconnects_after_server_restart(void **state)
{
    (void)state;
    srv_ctx_t sctx;
    cli_ctx_t cctx;
    dial_log_t log;
    srv_ctx_init(&sctx);
    cli_ctx_init(&cctx);
    log_init(&log);
    zinx_server_t *s = echo_server(ZINX_FORMAT_TLV, 0, &sctx);
    int port = zinx_server_port(s);
    zinx_server_t *e = hello_client(ZINX_FORMAT_TLV, 1, 1, &cctx);
    zinx_dial_opts_t o = {.connect_timeout_ms = 2000,
                          .reconnect = 1,
                          .backoff_initial_ms = BO_INIT,
                          .backoff_max_ms = BO_MAX,
                          .on_event = record_event,
                          .udata = &log};
    zinx_dialer_t *d;
    assert_int_equal(zinx_server_dial(e, "127.0.0.1", port, &o, &d), 0);
    zinx_conn_t *c1 = NULL;
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c1), 0);
    uint64_t id1 = zinx_conn_id(c1);
    assert_int_equal(wait_ge(&cctx.w, &cctx.hellos, 1, T_IO), 1);
    long i_conn = wait_event(&log, 0, ZINX_DIAL_CONNECTED, T_IO);
    assert_int_equal(i_conn, 0);
    assert_int_equal(log_at(&log, 0).attempt, 1);

    /* The server goes away: the connection ends, attempts fail with a
       growing back-off. */
    zinx_server_free(s);
    long i_lost = wait_event(&log, 1, ZINX_DIAL_DISCONNECTED, T_IO);
    assert_int_equal(i_lost, 1);
    assert_int_equal(log_at(&log, 1).status, 0);
    assert_int_equal(wait_ge(&cctx.w, &cctx.stops, 1, T_IO), 1);
    assert_false(zinx_conn_is_open(c1));
    zinx_conn_unref(c1);
    const uint32_t nfailed = 5;
    long last = i_lost;
    for (uint32_t k = 0; k < nfailed; k++) {
        last = wait_event(&log, (size_t)last + 1, ZINX_DIAL_FAILED, T_IO);
        assert_true(last >= 0);
    }
    check_backoff(&log, (size_t)i_lost, nfailed);
    assert_null(zinx_dialer_conn(d));
    assert_int_equal(zinx_dialer_wait(d, 0, NULL), ZINX_ETIMEDOUT);

    /* A new server on the same port: the dialer comes back by itself. */
    s = echo_server(ZINX_FORMAT_TLV, port, &sctx);
    long i_back = wait_event(&log, (size_t)last + 1, ZINX_DIAL_CONNECTED, T_IO);
    assert_true(i_back > last);
    dial_rec_t back = log_at(&log, (size_t)i_back);
    assert_int_equal(back.status, 0);
    assert_true(back.attempt >= nfailed + 1);
    zinx_conn_t *c2 = NULL;
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c2), 0);
    assert_true(zinx_conn_id(c2) > id1);
    assert_int_equal(wait_ge(&cctx.w, &cctx.starts, 2, T_IO), 2);
    assert_int_equal(atomic_load(&cctx.start_id), zinx_conn_id(c2));
    assert_int_equal(wait_ge(&cctx.w, &cctx.hellos, 2, T_IO), 2);
    assert_int_equal(wait_ge(&sctx.w, &sctx.starts, 2, T_IO), 2);
    assert_int_equal(atomic_load(&cctx.prop_in_router), 2);

    /* The next outage starts counting attempts from 1 again. */
    size_t mark = log_count(&log);
    zinx_server_free(s);
    long i_lost2 = wait_event(&log, mark, ZINX_DIAL_DISCONNECTED, T_IO);
    assert_true(i_lost2 >= 0);
    long f = wait_event(&log, (size_t)i_lost2 + 1, ZINX_DIAL_FAILED, T_IO);
    assert_true(f >= 0);
    assert_int_equal(log_at(&log, (size_t)f).attempt, 1);
    check_backoff(&log, (size_t)i_lost2, 1);

    zinx_conn_unref(c2);
    zinx_dialer_close(d);
    zinx_server_free(e);
    assert_int_equal(atomic_load(&cctx.bad), 0);
    assert_int_equal(atomic_load(&cctx.stops), 2);
    assert_int_equal(atomic_load(&cctx.prop_frees), 2);
    assert_int_equal(log.dropped, 0);
    waiter_destroy(&log.w);
    waiter_destroy(&cctx.w);
    waiter_destroy(&sctx.w);
}

/* The server drops the connection (it stays up): the dialer reconnects. */
static void test_dialer_reconnects_after_server_kick(void **state)
{
    (void)state;
    srv_ctx_t sctx;
    cli_ctx_t cctx;
    dial_log_t log;
    srv_ctx_init(&sctx);
    cli_ctx_init(&cctx);
    log_init(&log);
    zinx_server_t *s = echo_server(ZINX_FORMAT_LTV_LE, 0, &sctx);
    zinx_server_t *e = hello_client(ZINX_FORMAT_LTV_LE, 1, 0, &cctx);
    zinx_dial_opts_t o = {.reconnect = 1,
                          .backoff_initial_ms = 10,
                          .backoff_max_ms = 20,
                          .on_event = record_event,
                          .udata = &log};
    zinx_dialer_t *d;
    assert_int_equal(
        zinx_server_dial(e, "127.0.0.1", zinx_server_port(s), &o, &d), 0);
    zinx_conn_t *c1 = NULL;
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c1), 0);
    assert_int_equal(wait_ge(&cctx.w, &cctx.hellos, 1, T_IO), 1);
    assert_int_equal(zinx_conn_send_msg(c1, ID_BYE, NULL, 0), 0);
    long lost = wait_event(&log, 0, ZINX_DIAL_DISCONNECTED, T_IO);
    assert_true(lost >= 0);
    long back = wait_event(&log, (size_t)lost, ZINX_DIAL_CONNECTED, T_IO);
    assert_true(back > lost);
    assert_int_equal(log_at(&log, (size_t)back).attempt, 1);
    zinx_conn_t *c2 = NULL;
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c2), 0);
    assert_true(zinx_conn_id(c2) != zinx_conn_id(c1));
    assert_false(zinx_conn_is_open(c1));
    assert_int_equal(wait_ge(&cctx.w, &cctx.hellos, 2, T_IO), 2);
    assert_int_equal(wait_ge(&sctx.w, &sctx.starts, 2, T_IO), 2);
    zinx_conn_unref(c1);
    zinx_conn_unref(c2);
    zinx_dialer_close(d);
    zinx_server_free(e);
    zinx_server_free(s);
    assert_int_equal(atomic_load(&cctx.starts), 2);
    assert_int_equal(atomic_load(&cctx.stops), 2);
    assert_int_equal(atomic_load(&cctx.bad), 0);
    waiter_destroy(&log.w);
    waiter_destroy(&cctx.w);
    waiter_destroy(&sctx.w);
}

/* A dialer without reconnect whose connection came up and ended before
   anyone waited: the wait still reports the connection (closed), as the
   connect did succeed and the hooks ran; zinx_dialer_conn() has none. */
static void test_dialer_wait_after_a_short_life(void **state)
{
    (void)state;
    srv_ctx_t sctx;
    cli_ctx_t cctx;
    dial_log_t log;
    srv_ctx_init(&sctx);
    cli_ctx_init(&cctx);
    log_init(&log);
    zinx_server_t *s = echo_server(ZINX_FORMAT_LTV_LE, 0, &sctx);
    zinx_server_t *e = hello_client(ZINX_FORMAT_LTV_LE, 1, 0, &cctx);
    zinx_dial_opts_t o = {.on_event = record_event, .udata = &log};
    zinx_dialer_t *d;
    assert_int_equal(
        zinx_server_dial(e, "127.0.0.1", zinx_server_port(s), &o, &d), 0);
    long up = wait_event(&log, 0, ZINX_DIAL_CONNECTED, T_IO);
    assert_true(up >= 0);
    zinx_conn_t *first = zinx_dialer_conn(d);
    assert_non_null(first);
    assert_int_equal(zinx_conn_send_msg(first, ID_BYE, NULL, 0), 0);
    assert_true(wait_event(&log, (size_t)up, ZINX_DIAL_GAVE_UP, T_IO) > up);
    assert_int_equal(wait_ge(&cctx.w, &cctx.stops, 1, T_IO), 1);
    assert_null(zinx_dialer_conn(d));
    zinx_conn_t *c = NULL;
    assert_int_equal(zinx_dialer_wait(d, T_IO, &c), 0);
    assert_ptr_equal(c, first);
    assert_false(zinx_conn_is_open(c));
    zinx_conn_unref(c);
    zinx_conn_unref(first);
    zinx_dialer_close(d);
    zinx_server_free(e);
    zinx_server_free(s);
    assert_int_equal(atomic_load(&cctx.starts), 1);
    assert_int_equal(atomic_load(&cctx.stops), 1);
    waiter_destroy(&log.w);
    waiter_destroy(&cctx.w);
    waiter_destroy(&sctx.w);
}

static void test_dialer_gives_up_after_outage(void **state)
{
    (void)state;
    dial_log_t log;
    log_init(&log);
    zinx_server_t *s = echo_server(ZINX_FORMAT_TLV, 0, NULL);
    zinx_server_t *e = plain_client();
    zinx_dial_opts_t o = {.reconnect = 1,
                          .backoff_initial_ms = 10,
                          .backoff_max_ms = 20,
                          .max_attempts = 2,
                          .on_event = record_event,
                          .udata = &log};
    zinx_dialer_t *d;
    assert_int_equal(
        zinx_server_dial(e, "127.0.0.1", zinx_server_port(s), &o, &d), 0);
    assert_int_equal(zinx_dialer_wait(d, T_IO, NULL), 0);
    zinx_server_free(s);
    long g = wait_event(&log, 0, ZINX_DIAL_GAVE_UP, T_IO);
    assert_true(g >= 0);
    assert_null(zinx_dialer_conn(d));
    assert_int_equal(zinx_dialer_wait(d, T_IO, NULL), -ECONNREFUSED);
    zinx_dialer_close(d);
    zinx_server_free(e);
    static const zinx_dial_event_t want[] = {
        ZINX_DIAL_CONNECTED, ZINX_DIAL_DISCONNECTED, ZINX_DIAL_FAILED,
        ZINX_DIAL_FAILED, ZINX_DIAL_GAVE_UP};
    if (log_count(&log) != 5)
        print_log(&log);
    assert_int_equal(log_count(&log), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(log_at(&log, i).ev, want[i]);
    assert_int_equal(log_at(&log, 2).attempt, 1);
    assert_true(log_at(&log, 2).delay > 0);
    assert_int_equal(log_at(&log, 3).attempt, 2);
    assert_int_equal(log_at(&log, 3).delay, 0);
    assert_int_equal(log_at(&log, 4).status, -ECONNREFUSED);
    waiter_destroy(&log.w);
}

/* ---- dialer close -------------------------------------------------------- */

static void test_dialer_close_stops_retrying(void **state)
{
    (void)state;
    int hold;
    int port = refused_port(&hold);
    dial_log_t log;
    log_init(&log);
    zinx_server_t *e = plain_client();
    /* A long back-off: after a FAILED event no attempt is in flight for
       at least 100 ms, so the close below lands between attempts. */
    zinx_dial_opts_t o = {.reconnect = 1,
                          .backoff_initial_ms = 200,
                          .backoff_max_ms = 400,
                          .on_event = record_event,
                          .udata = &log};
    zinx_dialer_t *d;
    assert_int_equal(zinx_server_dial(e, "127.0.0.1", port, &o, &d), 0);
    assert_true(wait_event(&log, 0, ZINX_DIAL_FAILED, T_IO) == 0);
    zinx_dialer_close(d);
    size_t n = log_count(&log);
    /* Longer than the largest back-off: a retry would have shown. */
    assert_int_equal(wait_more_events(&log, n, 3 * 400), n);
    zinx_server_free(e);
    assert_int_equal(log_count(&log), n);
    close(hold);
    waiter_destroy(&log.w);
}

static void test_dialer_close_while_connected(void **state)
{
    (void)state;
    srv_ctx_t sctx;
    cli_ctx_t cctx;
    dial_log_t log;
    srv_ctx_init(&sctx);
    cli_ctx_init(&cctx);
    log_init(&log);
    zinx_server_t *s = echo_server(ZINX_FORMAT_TLV, 0, &sctx);
    zinx_server_t *e = hello_client(ZINX_FORMAT_TLV, 1, 2, &cctx);
    zinx_dial_opts_t o = {.reconnect = 1,
                          .backoff_initial_ms = 10,
                          .backoff_max_ms = 20,
                          .on_event = record_event,
                          .udata = &log};
    zinx_dialer_t *d;
    assert_int_equal(
        zinx_server_dial(e, "127.0.0.1", zinx_server_port(s), &o, &d), 0);
    assert_int_equal(zinx_dialer_wait(d, T_IO, NULL), 0);
    assert_int_equal(wait_ge(&cctx.w, &cctx.hellos, 1, T_IO), 1);
    size_t n = log_count(&log);
    zinx_dialer_close(d);
    assert_int_equal(wait_ge(&cctx.w, &cctx.stops, 1, T_IO), 1);
    assert_int_equal(wait_ge(&sctx.w, &sctx.stops, 1, T_IO), 1);
    /* A negative check needs a window: many back-off periods. */
    sleep_ms(300);
    zinx_server_free(e);
    zinx_server_free(s);
    size_t total = log_count(&log);
    if (total != n) {
        print_message("  events after zinx_dialer_close (close while "
                      "connected):\n");
        print_log(&log);
    }
    for (size_t i = n; i < total; i++) {
        zinx_dial_event_t ev = log_at(&log, i).ev;
        assert_true(ev != ZINX_DIAL_CONNECTED && ev != ZINX_DIAL_FAILED);
    }
    assert_int_equal(atomic_load(&sctx.starts), 1);
    assert_int_equal(atomic_load(&cctx.starts), 1);
    waiter_destroy(&log.w);
    waiter_destroy(&cctx.w);
    waiter_destroy(&sctx.w);
}

/* ---- lifetime ------------------------------------------------------------ */

static void test_dialer_outlives_endpoint(void **state)
{
    (void)state;
    int hold;
    int refused = refused_port(&hold);
    srv_ctx_t sctx;
    cli_ctx_t cctx;
    dial_log_t log;
    srv_ctx_init(&sctx);
    cli_ctx_init(&cctx);
    log_init(&log);
    zinx_server_t *s = echo_server(ZINX_FORMAT_TLV, 0, &sctx);
    zinx_server_t *e = hello_client(ZINX_FORMAT_TLV, 2, 2, &cctx);
    zinx_dial_opts_t o = {.reconnect = 1,
                          .backoff_initial_ms = 10,
                          .backoff_max_ms = 20,
                          .on_event = record_event,
                          .udata = &log};
    /* Retries far apart: when the endpoint stops, the retrying dialer is
       certainly waiting out its back-off, not starting an attempt. */
    zinx_dial_opts_t slow = o;
    slow.backoff_initial_ms = slow.backoff_max_ms = 2000;
    zinx_dialer_t *up, *retrying, *idle;
    assert_int_equal(
        zinx_server_dial(e, "127.0.0.1", zinx_server_port(s), &o, &up), 0);
    assert_int_equal(
        zinx_server_dial(e, "127.0.0.1", refused, &slow, &retrying), 0);
    assert_int_equal(
        zinx_server_dial(e, "127.0.0.1", zinx_server_port(s), NULL, &idle), 0);
    zinx_conn_t *c = NULL;
    assert_int_equal(zinx_dialer_wait(up, T_IO, &c), 0);
    assert_int_equal(zinx_dialer_wait(idle, T_IO, NULL), 0);
    assert_true(wait_event(&log, 0, ZINX_DIAL_FAILED, T_IO) >= 0);

    /* The endpoint goes first; it detaches its dialers. */
    zinx_server_free(e);
    assert_int_equal(atomic_load(&cctx.stops), 2);
    assert_int_equal(wait_ge(&sctx.w, &sctx.stops, 2, T_IO), 2);
    assert_false(zinx_conn_is_open(c));
    size_t n = log_count(&log);
    /* The handles are still valid: they answer "closed" at once. */
    zinx_dialer_t *all[] = {up, retrying, idle};
    for (int i = 0; i < 3; i++) {
        assert_null(zinx_dialer_conn(all[i]));
        zinx_conn_t *none = NULL;
        assert_int_equal(zinx_dialer_wait(all[i], T_IO, &none), ZINX_ECLOSED);
        assert_null(none);
    }
    zinx_dialer_close(up);
    zinx_dialer_close(retrying);
    zinx_dialer_close(idle);
    zinx_conn_unref(c);
    assert_int_equal(log_count(&log), n);
    assert_int_equal(atomic_load(&sctx.starts), 2);
    zinx_server_free(s);
    close(hold);
    waiter_destroy(&log.w);
    waiter_destroy(&cctx.w);
    waiter_destroy(&sctx.w);
}

/* zinx_dialer_wait blocked in another thread returns when the endpoint
   stops under it. */
typedef struct waiting {
    zinx_dialer_t *d;
    int rc;
    uint64_t took_ms;
} waiting_t;

static void *wait_thread(void *arg)
{
    waiting_t *w = arg;
    uint64_t t0 = now_ms();
    w->rc = zinx_dialer_wait(w->d, 3 * T_IO, NULL);
    w->took_ms = now_ms() - t0;
    return NULL;
}

static void test_dialer_wait_wakes_when_endpoint_stops(void **state)
{
    (void)state;
    int hold;
    int port = refused_port(&hold);
    zinx_server_t *e = plain_client();
    dial_log_t log;
    log_init(&log);
    /* A long back-off: the endpoint stops while the dialer waits it out
       (the waiter must be woken by the stop, not by an attempt). */
    zinx_dial_opts_t o = {.reconnect = 1,
                          .backoff_initial_ms = 2000,
                          .backoff_max_ms = 2000,
                          .on_event = record_event,
                          .udata = &log};
    waiting_t w = {0};
    assert_int_equal(zinx_server_dial(e, "127.0.0.1", port, &o, &w.d), 0);
    assert_true(wait_event(&log, 0, ZINX_DIAL_FAILED, T_IO) == 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    zinx_server_free(e);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.rc, ZINX_ECLOSED);
    assert_true(w.took_ms < T_IO);
    assert_int_equal(zinx_dialer_wait(w.d, T_IO, NULL), ZINX_ECLOSED);
    zinx_dialer_close(w.d);
    close(hold);
    waiter_destroy(&log.w);
}

/* The event callback closes its own dialer (on the loop thread). */
typedef struct closer {
    dial_log_t log;
    uint32_t close_at; /* attempt whose FAILED event closes the dialer */
} closer_t;

static void close_on_event(zinx_dialer_t *d, zinx_dial_event_t ev, int status,
                           uint32_t attempt, uint32_t next_delay_ms,
                           void *udata)
{
    closer_t *x = udata;
    record_event(d, ev, status, attempt, next_delay_ms, &x->log);
    if (ev == ZINX_DIAL_FAILED && attempt == x->close_at)
        zinx_dialer_close(d);
}

static void test_dialer_close_from_its_callback(void **state)
{
    (void)state;
    int hold;
    int port = refused_port(&hold);
    closer_t x;
    log_init(&x.log);
    x.close_at = 2;
    zinx_server_t *e = plain_client();
    zinx_dial_opts_t o = {.reconnect = 1,
                          .backoff_initial_ms = 20,
                          .backoff_max_ms = 40,
                          .on_event = close_on_event,
                          .udata = &x};
    zinx_dialer_t *d;
    assert_int_equal(zinx_server_dial(e, "127.0.0.1", port, &o, &d), 0);
    long f1 = wait_event(&x.log, 0, ZINX_DIAL_FAILED, T_IO);
    assert_int_equal(f1, 0);
    long f2 = wait_event(&x.log, 1, ZINX_DIAL_FAILED, T_IO);
    assert_int_equal(f2, 1);
    /* Well past the back-off: the third attempt never comes. */
    assert_int_equal(wait_more_events(&x.log, 2, 5 * 40), 2);
    zinx_server_free(e);
    if (log_count(&x.log) != 2)
        print_log(&x.log);
    assert_int_equal(log_count(&x.log), 2);
    assert_int_equal(log_at(&x.log, 1).attempt, 2);
    close(hold);
    waiter_destroy(&x.log.w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_echo_tlv),
        cmocka_unit_test(test_sync_echo_ltv_le),
        cmocka_unit_test(test_sync_wire_bytes_tlv),
        cmocka_unit_test(test_sync_wire_bytes_ltv_le),
        cmocka_unit_test(test_sync_want_id_keeps_others_queued),
        cmocka_unit_test(test_sync_recv_timeout),
        cmocka_unit_test(test_sync_server_closes),
        cmocka_unit_test(test_sync_max_packet_size),
        cmocka_unit_test(test_sync_connect_refused),
        cmocka_unit_test(test_client_endpoint_hooks_workers),
        cmocka_unit_test(test_client_endpoint_hooks_inline_ltv),
        cmocka_unit_test(test_many_clients_one_loop_workers),
        cmocka_unit_test(test_many_clients_one_loop_inline),
        cmocka_unit_test(test_server_endpoint_dials_upstream),
        cmocka_unit_test(test_server_endpoint_dials_itself),
        cmocka_unit_test(test_dial_argument_and_state_errors),
        cmocka_unit_test(test_dial_names),
        cmocka_unit_test(test_dialer_wait_times_out_while_retrying),
        cmocka_unit_test(test_dialer_max_attempts_gives_up),
        cmocka_unit_test(test_dialer_reconnects_after_server_restart),
        cmocka_unit_test(test_dialer_reconnects_after_server_kick),
        cmocka_unit_test(test_dialer_wait_after_a_short_life),
        cmocka_unit_test(test_dialer_gives_up_after_outage),
        cmocka_unit_test(test_dialer_close_stops_retrying),
        cmocka_unit_test(test_dialer_close_while_connected),
        cmocka_unit_test(test_dialer_outlives_endpoint),
        cmocka_unit_test(test_dialer_wait_wakes_when_endpoint_stops),
        cmocka_unit_test(test_dialer_close_from_its_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
