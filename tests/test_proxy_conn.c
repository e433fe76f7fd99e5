/*
 * PROXY protocol on real connections: headers of both versions however
 * they arrive, the addresses the hooks see, refusals (counted, without
 * hooks), the handshake deadline, a stop and a close during the header,
 * MaxConn, adopted sockets and a dual-stack listener.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn/conn_private.h"
#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 5000

/* ---- what the hooks saw ------------------------------------------------- */

typedef struct seen {
    atomic_int starts, stops;
    pthread_mutex_t lock;
    char remote[64], local[64], peer[64]; /* at the last OnConnStart */
} seen_t;

static seen_t seen;

static void on_start(zinx_conn_t *c, void *udata)
{
    seen_t *s = udata;
    pthread_mutex_lock(&s->lock);
    snprintf(s->remote, sizeof(s->remote), "%s", zinx_conn_remote_addr(c));
    snprintf(s->local, sizeof(s->local), "%s", zinx_conn_local_addr(c));
    snprintf(s->peer, sizeof(s->peer), "%s", zinx_conn_peer_addr(c));
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->starts, 1);
}

static void on_stop(zinx_conn_t *c, void *udata)
{
    (void)c;
    atomic_fetch_add(&((seen_t *)udata)->stops, 1);
}

static void seen_reset(void)
{
    atomic_store(&seen.starts, 0);
    atomic_store(&seen.stops, 0);
    pthread_mutex_lock(&seen.lock);
    seen.remote[0] = seen.local[0] = seen.peer[0] = '\0';
    pthread_mutex_unlock(&seen.lock);
}

static void seen_get(char *remote, char *local, char *peer)
{
    pthread_mutex_lock(&seen.lock);
    strcpy(remote, seen.remote);
    strcpy(local, seen.local);
    strcpy(peer, seen.peer);
    pthread_mutex_unlock(&seen.lock);
}

/* ---- the server --------------------------------------------------------- */

static void proxy_config(zinx_config_t *cfg, zinx_proxy_protocol_t mode,
                         const char *from)
{
    tf_config(cfg);
    cfg->proxy_protocol = mode;
    snprintf(cfg->proxy_protocol_from, sizeof(cfg->proxy_protocol_from), "%s",
             from);
}

static zinx_server_t *start_server(const zinx_config_t *cfg, int *port)
{
    seen_reset();
    zinx_server_t *s = tf_echo_server_new(cfg);
    assert_int_equal(zinx_server_on_conn_start(s, on_start, &seen), 0);
    assert_int_equal(zinx_server_on_conn_stop(s, on_stop, &seen), 0);
    *port = tf_start_or_fail(s);
    return s;
}

static void stop_server(zinx_server_t *s)
{
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
}

static zinx_server_t *server(zinx_proxy_protocol_t mode, const char *from,
                             int *port)
{
    zinx_config_t cfg;
    proxy_config(&cfg, mode, from);
    return start_server(&cfg, port);
}

/* ---- headers ------------------------------------------------------------ */

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* v2 PROXY TCP4 src:sport -> 10.9.8.7:443 (with an ALPN TLV when tlv). */
static size_t v2_tcp4(uint8_t *out, const char *src, uint16_t sport, bool tlv)
{
    memcpy(out, v2_sig, 12);
    out[12] = 0x21;
    out[13] = 0x11;
    size_t body = 12 + (tlv ? 5 : 0);
    out[14] = 0;
    out[15] = (uint8_t)body;
    inet_pton(AF_INET, src, out + 16);
    inet_pton(AF_INET, "10.9.8.7", out + 20);
    out[24] = (uint8_t)(sport >> 8);
    out[25] = (uint8_t)sport;
    out[26] = 443 >> 8;
    out[27] = 443 & 0xff;
    if (tlv)
        memcpy(out + 28, "\x01\x00\x02h2", 5);
    return 16 + body;
}

/* v2 LOCAL with no addresses (a health check). */
static size_t v2_local(uint8_t *out)
{
    memcpy(out, v2_sig, 12);
    out[12] = 0x20;
    out[13] = 0x00;
    out[14] = out[15] = 0;
    return 16;
}

static const char V1_HDR[] = "PROXY TCP4 192.0.2.55 10.9.8.7 40001 443\r\n";

/* ---- checks ------------------------------------------------------------- */

/* The hooks saw the header's client, and the socket's peer behind it. */
static void assert_client_seen(const char *remote, int fd)
{
    char r[64], l[64], p[64], want_peer[64];
    assert_int_equal(tf_wait_atomic_ge(&seen.starts, 1, tf_ms(T_IO)), 1);
    seen_get(r, l, p);
    snprintf(want_peer, sizeof(want_peer), "127.0.0.1:%d", tc_local_port(fd));
    assert_string_equal(r, remote);
    assert_string_equal(p, want_peer);
}

/* The server closed fd (end of stream or reset), within ms. */
static void assert_closed(int fd, int ms)
{
    int rc = tc_wait_closed(fd, ms, NULL);
    if (rc != 0 && rc != -ECONNRESET)
        fail_msg("not closed: %s", strerror(-rc));
}

/* The connection was refused: closed, counted, no hook ran. */
static void assert_refused(zinx_server_t *s, int fd, uint64_t refused)
{
    assert_closed(fd, tf_ms(T_IO));
    assert_int_equal(
        tf_wait_stat(s, TF_STAT(proxy_refused), refused, tf_ms(T_IO)), refused);
    tf_sleep_ms(50);
    assert_int_equal(atomic_load(&seen.starts), 0);
    assert_int_equal(atomic_load(&seen.stops), 0);
}

/* n echo frames in the same write as head. */
static void header_then_frames(int fd, const uint8_t *head, size_t hlen,
                               int frames, size_t payload)
{
    size_t cap = hlen + (size_t)frames * (payload + 8);
    uint8_t *buf = malloc(cap), *pay = malloc(payload);
    assert_non_null(buf);
    assert_non_null(pay);
    memcpy(buf, head, hlen);
    size_t n = hlen;
    for (int i = 0; i < frames; i++) {
        memset(pay, 'a' + i % 26, payload);
        n += frame_encode(TLV, TC_ECHO_ID, pay, (uint32_t)payload, buf + n);
    }
    assert_int_equal(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
    for (int i = 0; i < frames; i++) {
        uint32_t id, len;
        assert_int_equal(
            tc_recv_frame(fd, TLV, &id, buf, cap, &len, tf_ms(T_IO)), 0);
        assert_int_equal(id, TC_ECHO_ID);
        assert_int_equal(len, payload);
        memset(pay, 'a' + i % 26, payload);
        assert_memory_equal(buf, pay, payload);
    }
    free(buf);
    free(pay);
}

/* Each byte in a write of its own, a little apart. */
static void trickle(int fd, const void *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(
            tc_send_raw(fd, (const uint8_t *)data + i, 1, tf_ms(T_IO)), 0);
        tf_sleep_us(200);
    }
}

/* ---- headers however they arrive ---------------------------------------- */

static void test_v1_same_write(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_V1, "127.0.0.0/8", &port);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    header_then_frames(fd, (const uint8_t *)V1_HDR, strlen(V1_HDR), 3, 10);
    assert_client_seen("192.0.2.55:40001", fd);
    char r[64], l[64], p[64];
    seen_get(r, l, p);
    assert_string_equal(l, "10.9.8.7:443");
    tc_close(fd);
    stop_server(s);
    assert_int_equal(atomic_load(&seen.stops), 1);
}

static void test_v2_same_write_large(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_EITHER, "127.0.0.1", &port);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    uint8_t h[64];
    size_t n = v2_tcp4(h, "203.0.113.9", 65001, true);
    /* far more than the layer reads for the header: the rest stays in
       the socket while what it read past the header is served first */
    header_then_frames(fd, h, n, 40, 3000);
    assert_client_seen("203.0.113.9:65001", fd);
    tc_close(fd);
    stop_server(s);
}

static void test_separate_writes(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_EITHER, "127.0.0.0/8", &port);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tc_send_raw(fd, V1_HDR, strlen(V1_HDR), tf_ms(T_IO)), 0);
    assert_client_seen("192.0.2.55:40001", fd);
    assert_int_equal(tc_echo_call(fd, TLV, "after", 5, tf_ms(T_IO)), 0);
    tc_close(fd);

    seen_reset();
    fd = tc_connect(port);
    uint8_t h[64];
    size_t n = v2_tcp4(h, "198.51.100.77", 1234, false);
    assert_int_equal(tc_send_raw(fd, h, 10, tf_ms(T_IO)), 0);
    tf_sleep_ms(20);
    assert_int_equal(tc_send_raw(fd, h + 10, n - 10, tf_ms(T_IO)), 0);
    assert_client_seen("198.51.100.77:1234", fd);
    assert_int_equal(tc_echo_call(fd, TLV, "v2", 2, tf_ms(T_IO)), 0);
    tc_close(fd);
    stop_server(s);
}

static void test_trickle(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_EITHER, "127.0.0.0/8", &port);
    for (int v = 1; v <= 2; v++) {
        seen_reset();
        int fd = tc_connect(port);
        assert_true(fd >= 0);
        uint8_t buf[128];
        size_t n =
            v == 1 ? strlen(V1_HDR) : v2_tcp4(buf, "192.0.2.55", 40001, true);
        if (v == 1)
            memcpy(buf, V1_HDR, n);
        n += frame_encode(TLV, TC_ECHO_ID, "tr", 2, buf + n);
        trickle(fd, buf, n);
        uint32_t id, len;
        char got[8];
        assert_int_equal(
            tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, tf_ms(T_IO)),
            0);
        assert_int_equal(len, 2);
        assert_memory_equal(got, "tr", 2);
        assert_client_seen("192.0.2.55:40001", fd);
        tc_close(fd);
    }
    stop_server(s);
}

/* LOCAL and UNKNOWN name no client: the socket's addresses stay. */
static void test_local_keeps_socket_addr(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_EITHER, "127.0.0.0/8", &port);
    for (int v = 1; v <= 2; v++) {
        seen_reset();
        int fd = tc_connect(port);
        assert_true(fd >= 0);
        uint8_t h[32];
        size_t n = v == 1 ? strlen("PROXY UNKNOWN\r\n") : v2_local(h);
        if (v == 1)
            memcpy(h, "PROXY UNKNOWN\r\n", n);
        assert_int_equal(tc_send_raw(fd, h, n, tf_ms(T_IO)), 0);
        assert_int_equal(tc_echo_call(fd, TLV, "hc", 2, tf_ms(T_IO)), 0);
        char want[64], r[64], l[64], p[64];
        snprintf(want, sizeof(want), "127.0.0.1:%d", tc_local_port(fd));
        assert_client_seen(want, fd);
        seen_get(r, l, p);
        snprintf(want, sizeof(want), "127.0.0.1:%d", port);
        assert_string_equal(l, want);
        tc_close(fd);
    }
    stop_server(s);
}

/* ---- refusals ----------------------------------------------------------- */

static void test_refusals(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_V1, "127.0.0.0/8", &port);
    uint64_t refused = 0;
    /* no header: a frame straight away */
    int fd = tc_connect(port);
    uint8_t f[64];
    size_t n = frame_encode(TLV, TC_ECHO_ID, "hello", 5, f);
    assert_int_equal(tc_send_raw(fd, f, n, tf_ms(T_IO)), 0);
    assert_refused(s, fd, ++refused);
    tc_close(fd);
    /* malformed: two spaces */
    fd = tc_connect(port);
    const char *bad = "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n";
    assert_int_equal(tc_send_raw(fd, bad, strlen(bad), tf_ms(T_IO)), 0);
    assert_refused(s, fd, ++refused);
    tc_close(fd);
    /* wrong version: v2 where v1 is required */
    fd = tc_connect(port);
    n = v2_tcp4(f, "1.2.3.4", 5, false);
    assert_int_equal(tc_send_raw(fd, f, n, tf_ms(T_IO)), 0);
    assert_refused(s, fd, ++refused);
    tc_close(fd);
    /* the peer closes inside its header */
    fd = tc_connect(port);
    assert_int_equal(tc_send_raw(fd, V1_HDR, 10, tf_ms(T_IO)), 0);
    tc_shutdown_wr(fd);
    assert_refused(s, fd, ++refused);
    tc_close(fd);
    /* a line that never ends */
    fd = tc_connect(port);
    char longline[200];
    memset(longline, '1', sizeof(longline));
    memcpy(longline, "PROXY ", 6);
    assert_int_equal(tc_send_raw(fd, longline, sizeof(longline), tf_ms(T_IO)),
                     0);
    assert_refused(s, fd, ++refused);
    tc_close(fd);
    stop_server(s);
    assert_int_equal(atomic_load(&seen.starts), 0);
    assert_int_equal(atomic_load(&seen.stops), 0);
}

/* A peer outside ProxyProtocolFrom is refused before it sends anything. */
static void test_source_not_allowed(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_EITHER, "10.0.0.0/8, ::1", &port);
    int fd = tc_connect(port);
    assert_refused(s, fd, 1);
    tc_close(fd);
    /* sending a good header changes nothing */
    fd = tc_connect(port);
    (void)tc_send_raw(fd, V1_HDR, strlen(V1_HDR), tf_ms(T_IO));
    assert_refused(s, fd, 2);
    tc_close(fd);
    stop_server(s);
}

/* A dual-stack listener sees 127.0.0.1 as ::ffff:127.0.0.1, which an
   IPv4 network must still match. */
static void test_dual_stack_peer(void **state)
{
    (void)state;
    zinx_config_t cfg;
    proxy_config(&cfg, ZINX_PROXY_V1, "127.0.0.0/8");
    cfg.host[0] = '\0'; /* every interface, "::" where IPv6 is there */
    int port;
    zinx_server_t *s = start_server(&cfg, &port);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    header_then_frames(fd, (const uint8_t *)V1_HDR, strlen(V1_HDR), 1, 4);
    char r[64], l[64], p[64];
    assert_int_equal(tf_wait_atomic_ge(&seen.starts, 1, tf_ms(T_IO)), 1);
    seen_get(r, l, p);
    assert_string_equal(r, "192.0.2.55:40001");
    char v4[64], mapped[64];
    snprintf(v4, sizeof(v4), "127.0.0.1:%d", tc_local_port(fd));
    snprintf(mapped, sizeof(mapped), "[::ffff:127.0.0.1]:%d",
             tc_local_port(fd));
    if (strcmp(p, v4) != 0)
        assert_string_equal(p, mapped);
    tf_note("dual-stack peer: %s", p);
    tc_close(fd);
    stop_server(s);
}

/* ---- deadlines, stops, closes and limits during the header -------------- */

static void test_stalled_header_times_out(void **state)
{
    (void)state;
    zinx_config_t cfg;
    proxy_config(&cfg, ZINX_PROXY_EITHER, "127.0.0.0/8");
    cfg.handshake_timeout_ms = 300;
    int port;
    zinx_server_t *s = start_server(&cfg, &port);
    int fd = tc_connect(port);
    uint64_t t0 = tf_now_ms();
    assert_int_equal(tc_send_raw(fd, V1_HDR, 20, tf_ms(T_IO)), 0);
    assert_closed(fd, tf_ms(T_IO));
    uint64_t took = tf_now_ms() - t0;
    tf_note("stalled header cut after %llu ms", (unsigned long long)took);
    assert_true(took >= 250);
    assert_true(took < 300 + (uint64_t)tf_ms(TF_SLACK_MS));
    assert_int_equal(tf_wait_stat(s, TF_STAT(timeouts), 1, tf_ms(T_IO)), 1);
    assert_int_equal(tf_stat(s, TF_STAT(proxy_refused)), 0);
    tc_close(fd);
    stop_server(s);
    assert_int_equal(atomic_load(&seen.starts), 0);
    assert_int_equal(atomic_load(&seen.stops), 0);
}

static size_t conn_count(zinx_server_t *s)
{
    return zinx_connmgr_count(zinx_server_connmgr(s));
}

static int count_is(void *arg)
{
    void **a = arg;
    return conn_count(a[0]) == (size_t)(uintptr_t)a[1];
}

static void wait_count(zinx_server_t *s, size_t n)
{
    void *a[2] = {s, (void *)(uintptr_t)n};
    assert_int_equal(tf_wait_until(count_is, a, tf_ms(T_IO)), 1);
}

/* A graceful stop ends connections still in their header at once: there
   is nothing of theirs to drain. */
static void test_stop_during_header(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_EITHER, "127.0.0.0/8", &port);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = tc_connect(port);
        assert_true(fds[i] >= 0);
        assert_int_equal(tc_send_raw(fds[i], V1_HDR, 12, tf_ms(T_IO)), 0);
    }
    wait_count(s, 4);
    uint64_t t0 = tf_now_ms();
    assert_int_equal(tf_stop_wait(s, tf_ms(T_IO)), 0);
    uint64_t took = tf_now_ms() - t0;
    tf_note("stop with 4 connections mid-header: %llu ms",
            (unsigned long long)took);
    assert_true(took < (uint64_t)tf_ms(1000));
    for (int i = 0; i < 4; i++) {
        assert_closed(fds[i], tf_ms(T_IO));
        tc_close(fds[i]);
    }
    zinx_server_free(s);
    assert_int_equal(atomic_load(&seen.starts), 0);
    assert_int_equal(atomic_load(&seen.stops), 0);
}

static int count_visit(zinx_conn_t *c, void *udata)
{
    (void)c;
    (*(int *)udata)++;
    return 0;
}

/* The application closes every connection (zinx_connmgr_close_all, as a
   stop does) while one's header is unfinished: it ends without hooks,
   gracefully or not. */
static void test_close_during_header(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_EITHER, "127.0.0.0/8", &port);
    for (int how = 0; how < 2; how++) {
        int fd = tc_connect(port);
        assert_int_equal(tc_send_raw(fd, V1_HDR, 12, tf_ms(T_IO)), 0);
        wait_count(s, 1);
        assert_int_equal(
            zinx_connmgr_close_all(zinx_server_connmgr(s), how == 0), 0);
        assert_closed(fd, tf_ms(1000));
        wait_count(s, 0);
        /* the rest of the header comes too late */
        (void)tc_send_raw(fd, V1_HDR + 12, strlen(V1_HDR) - 12, 100);
        tc_close(fd);
    }
    tf_sleep_ms(50);
    assert_int_equal(atomic_load(&seen.starts), 0);
    assert_int_equal(atomic_load(&seen.stops), 0);
    stop_server(s);
}

/* A connection in its header counts (MaxConn) but is not shown: get,
   foreach and ids skip it and a broadcast does not reach it, so no
   thread reads the addresses the header is about to change, and nothing
   reaches a peer before OnConnStart. Once the header is over it is
   shown with the client's address. */
static void test_hidden_during_header(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_V1, "127.0.0.0/8", &port);
    zinx_connmgr_t *m = zinx_server_connmgr(s);
    int fd = tc_connect(port);
    assert_int_equal(tc_send_raw(fd, V1_HDR, 12, tf_ms(T_IO)), 0);
    wait_count(s, 1);
    int visited = 0;
    assert_int_equal(zinx_connmgr_foreach(m, count_visit, &visited), 0);
    assert_int_equal(visited, 0);
    uint64_t ids[4];
    assert_int_equal(zinx_connmgr_ids(m, ids, 4), 1); /* counted ... */
    assert_null(zinx_connmgr_get(m, 1));              /* ... not shown */
    assert_int_equal(zinx_server_broadcast(s, 7, "early", 5), 0);
    assert_int_equal(
        tc_send_raw(fd, V1_HDR + 12, strlen(V1_HDR) - 12, tf_ms(T_IO)), 0);
    assert_client_seen("192.0.2.55:40001", fd);
    visited = 0;
    assert_int_equal(zinx_connmgr_foreach(m, count_visit, &visited), 0);
    assert_int_equal(visited, 1);
    zinx_conn_t *c = zinx_connmgr_get(m, 1);
    assert_non_null(c);
    assert_string_equal(zinx_conn_remote_addr(c), "192.0.2.55:40001");
    zinx_conn_unref(c);
    /* the broadcast sent during the header never arrives: the echo is
       the first frame the client gets */
    assert_int_equal(tc_echo_call(fd, TLV, "after", 5, tf_ms(T_IO)), 0);
    tc_close(fd);
    stop_server(s);
}

/* Connections in their header count against MaxConn. */
static void test_max_conn_counts_handshakes(void **state)
{
    (void)state;
    zinx_config_t cfg;
    proxy_config(&cfg, ZINX_PROXY_V1, "127.0.0.0/8");
    cfg.max_conn = 2;
    int port;
    zinx_server_t *s = start_server(&cfg, &port);
    int a = tc_connect(port), b = tc_connect(port);
    assert_int_equal(tc_send_raw(a, V1_HDR, 5, tf_ms(T_IO)), 0);
    assert_int_equal(tc_send_raw(b, V1_HDR, 5, tf_ms(T_IO)), 0);
    wait_count(s, 2);
    int c = tc_connect(port);
    assert_closed(c, tf_ms(T_IO));
    assert_int_equal(
        tf_wait_stat(s, TF_STAT(rejected_max_conn), 1, tf_ms(T_IO)), 1);
    tc_close(c);
    /* the first two still finish their headers and are served */
    assert_int_equal(
        tc_send_raw(a, V1_HDR + 5, strlen(V1_HDR) - 5, tf_ms(T_IO)), 0);
    assert_int_equal(tc_echo_call(a, TLV, "a", 1, tf_ms(T_IO)), 0);
    tc_close(a);
    tc_close(b);
    stop_server(s);
}

/* ---- adopted sockets ---------------------------------------------------- */

/* A connected TCP pair over loopback: *ours is the client end. */
static int tcp_pair(int *ours)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    *ours = tc_connect(ntohs(a.sin_port));
    assert_true(*ours >= 0);
    int theirs;
    do /* io_uring's completion work may interrupt this thread */
        theirs = accept(l, NULL, NULL);
    while (theirs < 0 && errno == EINTR);
    assert_true(theirs >= 0);
    close(l);
    return theirs;
}

/* An adopted socket is served as TCPPort's: it needs its header too. */
static void test_adopted_fd(void **state)
{
    (void)state;
    int port;
    zinx_server_t *s = server(ZINX_PROXY_V2, "127.0.0.1", &port);
    int fd;
    int theirs = tcp_pair(&fd);
    assert_int_equal(zinx_server_adopt_fd(s, theirs), 0);
    uint8_t h[64];
    size_t n = v2_tcp4(h, "192.0.2.200", 5555, false);
    header_then_frames(fd, h, n, 2, 7);
    assert_client_seen("192.0.2.200:5555", fd);
    tc_close(fd);
    /* and without one it is refused */
    theirs = tcp_pair(&fd);
    assert_int_equal(zinx_server_adopt_fd(s, theirs), 0);
    assert_int_equal(tc_send_raw(fd, "hello", 5, tf_ms(T_IO)), 0);
    assert_closed(fd, tf_ms(T_IO));
    assert_int_equal(tf_wait_stat(s, TF_STAT(proxy_refused), 1, tf_ms(T_IO)),
                     1);
    tc_close(fd);
    stop_server(s);
}

/* A stop asked for right after a socket is adopted, perhaps before its
   loop took it: the connection must still end at once, not wait out
   HandshakeTimeoutMs for a header. */
static void test_stop_right_after_adopt(void **state)
{
    (void)state;
    enum { ROUNDS = 10, FDS = 16 };
    for (int round = 0; round < ROUNDS; round++) {
        int port;
        zinx_server_t *s = server(ZINX_PROXY_V1, "127.0.0.1", &port);
        int fds[FDS], theirs[FDS];
        for (int i = 0; i < FDS; i++)
            theirs[i] = tcp_pair(&fds[i]);
        for (int i = 0; i < FDS; i++)
            assert_int_equal(zinx_server_adopt_fd(s, theirs[i]), 0);
        uint64_t t0 = tf_now_ms();
        assert_int_equal(tf_stop_wait(s, tf_ms(T_IO * 3)), 0);
        uint64_t took = tf_now_ms() - t0;
        if (took >= (uint64_t)tf_ms(2000))
            fail_msg("round %d: stop took %llu ms", round,
                     (unsigned long long)took);
        for (int i = 0; i < FDS; i++) {
            assert_closed(fds[i], tf_ms(T_IO));
            tc_close(fds[i]);
        }
        zinx_server_free(s);
        assert_int_equal(atomic_load(&seen.starts), 0);
    }
}

/* ---- nothing per message after the header ------------------------------ */

#define MSG_BYPASS 42

/* Inline handler (WorkerPoolSize 0: the connection's I/O thread, where
   its stream is used): answers whether reads and writes skip the PROXY
   layer and go to the socket directly. */
static void report_bypass(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *c = zinx_request_conn(req);
    char yes = c->io == zinx__stream_bottom(c->stream) ? 'y' : 'n';
    zinx_conn_send_msg(c, MSG_BYPASS, &yes, 1);
}

static void test_layer_stepped_over(void **state)
{
    (void)state;
    zinx_config_t cfg;
    proxy_config(&cfg, ZINX_PROXY_EITHER, "127.0.0.0/8");
    cfg.worker_pool_size = 0;
    seen_reset();
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_router_t r = {.handle = report_bypass};
    assert_int_equal(zinx_server_add_router(s, MSG_BYPASS, &r), 0);
    int port = tf_start_or_fail(s);
    for (int same_write = 0; same_write < 2; same_write++) {
        int fd = tc_connect(port);
        uint8_t buf[128];
        size_t n = v2_tcp4(buf, "192.0.2.1", 9, false);
        if (!same_write) {
            assert_int_equal(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
            tf_sleep_ms(20);
            n = 0;
        }
        /* behind the header in the same write: a frame read out of the
           layer's buffer (its handler runs inline, inside that read) */
        if (same_write) {
            n += frame_encode(TLV, TC_ECHO_ID, "e", 1, buf + n);
            assert_int_equal(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
            uint32_t eid, elen;
            assert_int_equal(tc_recv_frame(fd, TLV, &eid, buf, sizeof(buf),
                                           &elen, tf_ms(T_IO)),
                             0);
            assert_int_equal(eid, TC_ECHO_ID);
            n = 0;
        }
        n += frame_encode(TLV, MSG_BYPASS, "?", 1, buf + n);
        assert_int_equal(tc_send_raw(fd, buf, n, tf_ms(T_IO)), 0);
        uint32_t id, len;
        char got[4];
        assert_int_equal(
            tc_recv_frame(fd, TLV, &id, got, sizeof(got), &len, tf_ms(T_IO)),
            0);
        assert_int_equal(id, MSG_BYPASS);
        assert_int_equal(got[0], 'y');
        assert_int_equal(tc_echo_call(fd, TLV, "after", 5, tf_ms(T_IO)), 0);
        tc_close(fd);
    }
    stop_server(s);
}

int main(void)
{
    pthread_mutex_init(&seen.lock, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_same_write),
        cmocka_unit_test(test_v2_same_write_large),
        cmocka_unit_test(test_separate_writes),
        cmocka_unit_test(test_trickle),
        cmocka_unit_test(test_local_keeps_socket_addr),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_source_not_allowed),
        cmocka_unit_test(test_dual_stack_peer),
        cmocka_unit_test(test_stalled_header_times_out),
        cmocka_unit_test(test_stop_during_header),
        cmocka_unit_test(test_close_during_header),
        cmocka_unit_test(test_hidden_during_header),
        cmocka_unit_test(test_max_conn_counts_handshakes),
        cmocka_unit_test(test_adopted_fd),
        cmocka_unit_test(test_stop_right_after_adopt),
        cmocka_unit_test(test_layer_stepped_over),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pthread_mutex_destroy(&seen.lock);
    return rc;
}
