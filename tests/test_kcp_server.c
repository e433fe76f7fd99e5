/*
 * KCP connections keep the promises of TCP ones: the C server (Mode
 * "kcp") and the C client (dial opts kcp) echo frames in order with the
 * hooks run once; a silent peer is closed (UDP has no FIN); junk and
 * segments that do not open a conversation make nothing; MaxConn bounds
 * the sessions spoofed first segments can make; a peer that never
 * acknowledges holds the server at its send window, then at the output
 * limit; a graceful stop delivers what was asked before it.
 *
 * Raw peers speak segments themselves (kcp/arq.h's header format).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kcp/arq.h"
#include "test_fixture.h"
#include "zinx.h"

#define FRAMES 300
#define T_IO tf_ms(10000)

static void kcp_config(zinx_config_t *cfg)
{
    tf_config(cfg);
    cfg->mode = ZINX_MODE_KCP;
    cfg->kcp_port = 0;
    cfg->kcp_idle_timeout_ms = (uint32_t)tf_ms(1000);
}

static zinx_server_t *kcp_server(zinx_config_t *cfg, tf_hooks_t *h)
{
    zinx_server_t *s = zinx_server_new(cfg);
    assert_non_null(s);
    zinx_router_t echo = {.handle = tf_echo};
    assert_int_equal(zinx_server_set_fallback_router(s, &echo), 0);
    if (h != NULL) {
        assert_int_equal(tf_count_hooks(s, h), 0);
    }
    assert_int_equal(zinx_server_start(s), 0);
    assert_true(zinx_server_kcp_port(s) > 0);
    assert_int_equal(zinx_server_port(s), 0); /* no TCP */
    return s;
}

/* ---- what the client receives ----------------------------------------- */

typedef struct inbox {
    pthread_mutex_t lock;
    uint32_t next; /* the frame expected next */
    atomic_int got;
    atomic_int bad;
} inbox_t;

static uint32_t frame_len(uint32_t i)
{
    return (i * 37u) % 3000u;
}

static void fill(uint8_t *buf, uint32_t i, uint32_t len)
{
    for (uint32_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 131u + k * 7u);
}

static void on_reply(zinx_request_t *req, void *udata)
{
    inbox_t *in = udata;
    uint8_t want[3000];
    pthread_mutex_lock(&in->lock);
    uint32_t i = in->next++;
    uint32_t len = frame_len(i);
    fill(want, i, len);
    if (zinx_request_msg_id(req) != i + 1 ||
        zinx_request_data_len(req) != len ||
        memcmp(zinx_request_data(req), want, len) != 0)
        atomic_fetch_add(&in->bad, 1);
    pthread_mutex_unlock(&in->lock);
    atomic_fetch_add(&in->got, 1);
}

static zinx_server_t *kcp_client(inbox_t *in, tf_hooks_t *h)
{
    zinx_config_t cfg;
    kcp_config(&cfg);
    cfg.worker_pool_size = 0; /* replies in order, on the I/O thread */
    cfg.io_threads = 1;
    zinx_server_t *cli = zinx_client_new(&cfg);
    assert_non_null(cli);
    zinx_router_t r = {.handle = on_reply, .udata = in};
    assert_int_equal(zinx_server_set_fallback_router(cli, &r), 0);
    if (h != NULL) {
        assert_int_equal(tf_count_hooks(cli, h), 0);
    }
    assert_int_equal(zinx_server_start(cli), 0);
    return cli;
}

static zinx_conn_t *dial(zinx_server_t *cli, int port, zinx_dialer_t **d)
{
    zinx_dial_opts_t o = {.kcp = 1};
    assert_int_equal(zinx_server_dial(cli, "127.0.0.1", port, &o, d), 0);
    zinx_conn_t *c = NULL;
    assert_int_equal(zinx_dialer_wait(*d, (uint32_t)T_IO, &c), 0);
    return c;
}

static void send_frames(zinx_conn_t *c, uint32_t from, uint32_t to)
{
    uint8_t buf[3000];
    for (uint32_t i = from; i < to; i++) {
        fill(buf, i, frame_len(i));
        assert_int_equal(zinx_conn_send_msg(c, i + 1, buf, frame_len(i)), 0);
    }
}

static void test_echo_both_ways(void **state)
{
    (void)state;
    tf_hooks_t sh = {0}, ch = {0};
    inbox_t in = {.lock = PTHREAD_MUTEX_INITIALIZER};
    zinx_config_t cfg;
    kcp_config(&cfg);
    zinx_server_t *s = kcp_server(&cfg, &sh);
    zinx_server_t *cli = kcp_client(&in, &ch);
    zinx_dialer_t *d;
    zinx_conn_t *c = dial(cli, zinx_server_kcp_port(s), &d);
    send_frames(c, 0, FRAMES);
    assert_true(tf_wait_atomic_ge(&in.got, FRAMES, T_IO) >= FRAMES);
    assert_int_equal(atomic_load(&in.bad), 0);
    assert_int_equal(atomic_load(&sh.starts), 1);
    assert_int_equal(atomic_load(&ch.starts), 1);
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_int_equal(st.msgs_in, FRAMES);
    assert_int_equal(st.connections, 1);
    /* The client goes quietly (KCP has no FIN): the server ends the
       session once the peer has been silent for KcpIdleTimeoutMs. */
    zinx_conn_unref(c);
    zinx_dialer_close(d);
    assert_true(tf_wait_atomic_ge(&sh.stops, 1, T_IO) >= 1);
    /* Listed until just after its OnConnStop (which runs on a worker). */
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, T_IO), 0);
    zinx_server_free(cli);
    zinx_server_free(s);
    assert_int_equal(atomic_load(&sh.stops), 1);
    assert_int_equal(atomic_load(&ch.stops), 1);
    assert_int_equal(atomic_load(&in.got), FRAMES);
}

/* ---- raw peers ---------------------------------------------------------- */

static int udp_peer(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_to(int fd, int port, const void *p, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(sendto(fd, p, n, 0, (struct sockaddr *)&a, sizeof(a)),
                     (ssize_t)n);
}

/* A PUSH of sequence number sn carrying one empty TLV frame of ID 1. */
static size_t push(uint8_t *out, uint32_t conv, uint32_t sn, uint8_t cmd)
{
    static const uint8_t frame[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    zinx__kcp_seg_hdr_t h = {.conv = conv,
                             .cmd = cmd,
                             .wnd = 128,
                             .sn = sn,
                             .len = cmd == ZINX__KCP_CMD_PUSH ? 8 : 0};
    zinx__kcp_seg_write(out, &h);
    memcpy(out + ZINX__KCP_HEADER, frame, h.len);
    return ZINX__KCP_HEADER + h.len;
}

/* Waits for a datagram; returns its length or -1. */
static ssize_t recv_dgram(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    return recv(fd, buf, cap, 0);
}

static void test_junk_makes_nothing(void **state)
{
    (void)state;
    zinx_config_t cfg;
    kcp_config(&cfg);
    zinx_server_t *s = kcp_server(&cfg, NULL);
    int port = zinx_server_kcp_port(s);
    int fd = udp_peer();
    uint8_t buf[2048];
    send_to(fd, port, "abc", 3); /* shorter than a header */
    memset(buf, 0xA5, 64);
    send_to(fd, port, buf, 64); /* not a command */
    size_t n = push(buf, 77, 5, ZINX__KCP_CMD_PUSH);
    send_to(fd, port, buf, n); /* data, but not the first segment */
    n = push(buf, 78, 0, ZINX__KCP_CMD_ACK);
    send_to(fd, port, buf, n); /* no data */
    n = push(buf, 79, 0, ZINX__KCP_CMD_PUSH);
    buf[n - 9] = 0xFF; /* len runs past the datagram */
    send_to(fd, port, buf, n);
    /* The server answers nothing and keeps nothing. */
    assert_true(recv_dgram(fd, buf, sizeof(buf), tf_ms(300)) < 0);
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_int_equal(st.accepted, 0);
    assert_int_equal(st.connections, 0);
    assert_int_equal(tf_wait_stat(s, TF_STAT(kcp_dropped), 5, T_IO), 5);
    /* The first segment of a conversation opens it, and its frame is
       echoed. */
    n = push(buf, 80, 0, ZINX__KCP_CMD_PUSH);
    send_to(fd, port, buf, n);
    int echoed = 0;
    uint64_t end = tf_now_ms() + (uint64_t)T_IO;
    while (!echoed && tf_ms_left(end) > 0) {
        ssize_t r = recv_dgram(fd, buf, sizeof(buf), tf_ms_left(end));
        for (size_t off = 0; r > 0 && off < (size_t)r;) {
            zinx__kcp_seg_hdr_t h;
            assert_int_equal(
                zinx__kcp_seg_parse(buf + off, (size_t)r - off, &h), 0);
            assert_int_equal(h.conv, 80);
            if (h.cmd == ZINX__KCP_CMD_PUSH && h.len == 8 &&
                buf[off + ZINX__KCP_HEADER] == 1)
                echoed = 1;
            off += ZINX__KCP_HEADER + h.len;
        }
    }
    assert_true(echoed);
    zinx_server_stats(s, &st);
    assert_int_equal(st.accepted, 1);
    close(fd);
    zinx_server_free(s);
}

static void test_session_limit_and_silence(void **state)
{
    (void)state;
    enum { PEERS = 12, MAX = 4 };
    tf_hooks_t h = {0};
    zinx_config_t cfg;
    kcp_config(&cfg);
    cfg.max_conn = MAX;
    cfg.kcp_idle_timeout_ms = (uint32_t)tf_ms(500);
    zinx_server_t *s = kcp_server(&cfg, &h);
    int port = zinx_server_kcp_port(s);
    int fds[PEERS];
    uint8_t buf[64];
    /* Spoofed first segments, each from its own address: only MaxConn
       become sessions. */
    for (int i = 0; i < PEERS; i++) {
        fds[i] = udp_peer();
        size_t n = push(buf, 1000u + (uint32_t)i, 0, ZINX__KCP_CMD_PUSH);
        send_to(fds[i], port, buf, n);
    }
    assert_int_equal(tf_wait_stat(s, TF_STAT(accepted), MAX, T_IO), MAX);
    assert_int_equal(
        tf_wait_stat(s, TF_STAT(rejected_max_conn), PEERS - MAX, T_IO),
        PEERS - MAX);
    /* OnConnStart runs on the workers, after the accept is counted. */
    assert_int_equal(tf_wait_atomic_ge(&h.starts, MAX, T_IO), MAX);
    /* Silent peers are closed: the sessions end, OnConnStop runs once
       each, and the room is free again. */
    assert_true(tf_wait_atomic_ge(&h.stops, MAX, T_IO) >= MAX);
    assert_int_equal(tf_wait_stat(s, TF_STAT(closed), MAX, T_IO), MAX);
    size_t n = push(buf, 5000, 0, ZINX__KCP_CMD_PUSH);
    send_to(fds[0], port, buf, n);
    assert_int_equal(tf_wait_stat(s, TF_STAT(accepted), MAX + 1, T_IO),
                     MAX + 1);
    for (int i = 0; i < PEERS; i++)
        close(fds[i]);
    zinx_server_free(s);
    assert_int_equal(atomic_load(&h.stops), MAX + 1);
}

/* ---- back-pressure ------------------------------------------------------ */

#define PUSH_TOTAL (2u << 20)
#define CHUNK 4000u

static void flood(zinx_conn_t *c, void *udata)
{
    atomic_int *refused = udata;
    static uint8_t chunk[CHUNK];
    for (uint32_t sent = 0; sent < PUSH_TOTAL; sent += CHUNK)
        if (zinx_conn_send_msg(c, 2, chunk, CHUNK) != 0) {
            atomic_fetch_add(refused, 1);
            return;
        }
}

static void test_unacknowledged_peer_hits_the_limits(void **state)
{
    (void)state;
    atomic_int refused = 0;
    zinx_config_t cfg;
    kcp_config(&cfg);
    cfg.kcp_idle_timeout_ms = 0;
    cfg.output_high_water = 64u << 10;
    cfg.output_soft_limit = 0;
    cfg.output_hard_limit = 256u << 10;
    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    assert_int_equal(zinx_server_on_conn_start(s, flood, &refused), 0);
    assert_int_equal(zinx_server_start(s), 0);
    int port = zinx_server_kcp_port(s);
    int fd = udp_peer();
    uint8_t buf[2048];
    size_t n = push(buf, 42, 0, ZINX__KCP_CMD_PUSH);
    send_to(fd, port, buf, n);
    /* The peer never acknowledges: the server sends no more than its
       send window of distinct segments, keeps the rest, and closes the
       connection at the output hard limit. */
    assert_int_equal(tf_wait_stat(s, TF_STAT(slow_readers), 1, T_IO), 1);
    uint32_t max_sn = 0;
    ssize_t r;
    while ((r = recv_dgram(fd, buf, sizeof(buf), 100)) > 0) {
        for (size_t off = 0; off < (size_t)r;) {
            zinx__kcp_seg_hdr_t h;
            assert_int_equal(
                zinx__kcp_seg_parse(buf + off, (size_t)r - off, &h), 0);
            if (h.cmd == ZINX__KCP_CMD_PUSH && h.sn > max_sn)
                max_sn = h.sn;
            off += ZINX__KCP_HEADER + h.len;
        }
    }
    assert_true(max_sn < cfg.kcp_send_window);
    close(fd);
    zinx_server_free(s);
}

/* ---- graceful stop ------------------------------------------------------ */

static void slow_echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    tf_sleep_ms(10); /* 100 of them outlast the transfer by far */
    tf_echo(req, NULL);
}

static void test_graceful_stop_delivers(void **state)
{
    (void)state;
    enum { N = 100 };
    inbox_t in = {.lock = PTHREAD_MUTEX_INITIALIZER};
    zinx_config_t cfg;
    kcp_config(&cfg);
    cfg.worker_pool_size = 1;
    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    zinx_router_t echo = {.handle = slow_echo};
    assert_int_equal(zinx_server_set_fallback_router(s, &echo), 0);
    assert_int_equal(zinx_server_start(s), 0);
    zinx_server_t *cli = kcp_client(&in, NULL);
    zinx_dialer_t *d;
    zinx_conn_t *c = dial(cli, zinx_server_kcp_port(s), &d);
    send_frames(c, 0, N);
    /* Every request arrived (decoded) while the slow handler has answered
       few: the stop then drains the rest, and every reply is delivered
       before the server ends. */
    assert_int_equal(tf_wait_stat(s, TF_STAT(msgs_in), N, T_IO), N);
    assert_true(atomic_load(&in.got) < N);
    assert_int_equal(zinx_server_stop(s), 0);
    assert_int_equal(zinx_server_wait(s), 0);
    assert_true(tf_wait_atomic_ge(&in.got, N, T_IO) >= N);
    assert_int_equal(atomic_load(&in.bad), 0);
    zinx_conn_unref(c);
    zinx_dialer_close(d);
    zinx_server_free(cli);
    zinx_server_free(s);
}

/* With KCP's own idle timeout off, the connection's deadlines still close
   a silent peer: IdleTimeoutMs, and the heartbeat (a peer that neither
   sends nor acknowledges is dead after HeartbeatMax). */
static void silent_peer_closed_by(uint32_t idle_ms, uint32_t beat_ms,
                                  size_t stat)
{
    zinx_config_t cfg;
    kcp_config(&cfg);
    cfg.kcp_idle_timeout_ms = 0;
    cfg.idle_timeout_ms = idle_ms;
    cfg.heartbeat_interval_ms = beat_ms;
    cfg.heartbeat_max = 1;
    zinx_server_t *s = kcp_server(&cfg, NULL);
    int fd = udp_peer();
    uint8_t buf[64];
    size_t n = push(buf, 9, 0, ZINX__KCP_CMD_PUSH);
    send_to(fd, zinx_server_kcp_port(s), buf, n);
    assert_int_equal(tf_wait_stat(s, TF_STAT(accepted), 1, T_IO), 1);
    assert_int_equal(tf_wait_stat(s, stat, 1, T_IO), 1);
    assert_int_equal(tf_wait_stat(s, TF_STAT(closed), 1, T_IO), 1);
    close(fd);
    zinx_server_free(s);
}

static void test_idle_timeout_closes_silent_peer(void **state)
{
    (void)state;
    silent_peer_closed_by((uint32_t)tf_ms(300), 0, TF_STAT(timeouts));
}

static void test_heartbeat_closes_silent_peer(void **state)
{
    (void)state;
    silent_peer_closed_by(0, 100, TF_STAT(dead_peers));
}

static void say_hello(zinx_conn_t *c, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(c, 3, "hello", 5);
}

/* A stop whose drain deadline passes while a peer has not acknowledged
   what it was sent: the session is cut at the deadline, and its memory
   goes with the loop (LeakSanitizer would see a session freed by work
   the loop deferred and never ran). */
static void test_stop_cuts_an_unacknowledged_session(void **state)
{
    (void)state;
    tf_hooks_t h = {0};
    zinx_config_t cfg;
    kcp_config(&cfg);
    cfg.kcp_idle_timeout_ms = 0;
    cfg.drain_timeout_ms = 200;
    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    assert_int_equal(zinx_server_on_conn_start(s, say_hello, NULL), 0);
    assert_int_equal(zinx_server_on_conn_stop(s, tf_count_stop, &h), 0);
    assert_int_equal(zinx_server_start(s), 0);
    int fd = udp_peer();
    uint8_t buf[2048];
    size_t n = push(buf, 21, 0, ZINX__KCP_CMD_PUSH);
    send_to(fd, zinx_server_kcp_port(s), buf, n);
    /* The hello arrives (and is never acknowledged). */
    assert_true(recv_dgram(fd, buf, sizeof(buf), T_IO) > 0);
    uint64_t t0 = tf_now_ms();
    zinx_server_free(s);
    assert_true(tf_now_ms() - t0 < (uint64_t)tf_ms(5000));
    assert_int_equal(atomic_load(&h.stops), 1);
    close(fd);
}

static void test_config_refuses_fec(void **state)
{
    (void)state;
    zinx_config_t cfg;
    kcp_config(&cfg);
    cfg.kcp_fec_data_shards = 10;
    cfg.kcp_fec_parity_shards = 3;
    char err[256];
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                     ZINX_ECONFIG);
    assert_non_null(strstr(err, "FEC is not supported"));
    zinx_config_t c2;
    zinx_config_default(&c2);
    const char *json = "{\"Mode\":\"kcp\",\"KcpPort\":9101,"
                       "\"KcpNoDelay\":0,\"KcpInterval\":40,"
                       "\"KcpResend\":0,\"KcpNc\":0,\"KcpSendWindow\":128,"
                       "\"KcpRecvWindow\":256,\"KcpStreamMode\":false,"
                       "\"KcpACKNoDelay\":true}";
    assert_int_equal(zinx_config_load_json(&c2, json, strlen(json), NULL, err,
                                           sizeof(err), NULL, NULL),
                     0);
    assert_int_equal(c2.mode, ZINX_MODE_KCP);
    assert_int_equal(c2.kcp_port, 9101);
    assert_int_equal(c2.kcp_nodelay, 0);
    assert_int_equal(c2.kcp_interval, 40);
    assert_int_equal(c2.kcp_resend, 0);
    assert_int_equal(c2.kcp_nc, 0);
    assert_int_equal(c2.kcp_send_window, 128);
    assert_int_equal(c2.kcp_recv_window, 256);
    assert_int_equal(c2.kcp_stream_mode, 0);
    assert_int_equal(c2.kcp_ack_nodelay, 1);
    zinx_config_t d;
    zinx_config_default(&d);
    assert_int_equal(d.kcp_port, 9001);
    assert_int_equal(d.kcp_nodelay, 1);
    assert_int_equal(d.kcp_interval, 10);
    assert_int_equal(d.kcp_resend, 2);
    assert_int_equal(d.kcp_nc, 1);
    assert_int_equal(d.kcp_send_window, 32);
    assert_int_equal(d.kcp_recv_window, 32);
    assert_int_equal(d.kcp_stream_mode, 1);
    assert_int_equal(d.kcp_ack_nodelay, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_refuses_fec),
        cmocka_unit_test(test_echo_both_ways),
        cmocka_unit_test(test_junk_makes_nothing),
        cmocka_unit_test(test_session_limit_and_silence),
        cmocka_unit_test(test_unacknowledged_peer_hits_the_limits),
        cmocka_unit_test(test_graceful_stop_delivers),
        cmocka_unit_test(test_idle_timeout_closes_silent_peer),
        cmocka_unit_test(test_heartbeat_closes_silent_peer),
        cmocka_unit_test(test_stop_cuts_an_unacknowledged_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
