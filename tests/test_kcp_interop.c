/*
 * KCP against kcp-go (issue 15): the C server with the kcp-go client, and
 * the C client with the kcp-go server (tests/go/kcp_peer, Debian's kcp-go
 * with no crypt and no FEC, as Zinx runs it). Each run carries 1,000
 * frames of mixed sizes (0 to MaxPacketSize) and checks every echo's
 * order and content, one frame at a time and pipelined, in stream mode
 * and in message mode (KcpStreamMode false on both sides).
 * Without the peer the tests are skipped, except under CI=true.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcp_peer.h"
#include "test_client.h"
#include "test_fixture.h"

#define FRAMES 1000
#define MAX_PAYLOAD 4096 /* the default MaxPacketSize */
#define LOCKSTEP 100     /* frames sent one at a time before the rest */
#define WINDOW 64        /* pipelined frames in flight from the C client */
#define T_RUN 60000

/* The Kcp* settings of both sides: Zinx's defaults but the stream mode;
   a server also serves KCP only, on a free port. */
static void kcp_config(zinx_config_t *cfg, int stream, int server)
{
    tf_config(cfg);
    if (server) {
        cfg->mode = ZINX_MODE_KCP;
        cfg->kcp_port = 0;
    }
    cfg->kcp_stream_mode = stream;
}

/* The run's kcp-go server: the teardown stops it when a check fails
   half-way. */
static kp_server_t peer;

static int teardown(void **state)
{
    (void)state;
    kp_server_stop(&peer);
    return 0;
}

/* ---- C server, kcp-go client --------------------------------------------- */

static void c_server_go_client(int stream)
{
    const char *exe = kp_require();
    zinx_config_t cfg;
    kcp_config(&cfg, stream, 1);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    tf_hooks_t h = {0};
    assert_int_equal(tf_count_hooks(s, &h), 0);
    assert_int_equal(zinx_server_start(s), 0);
    int port = zinx_server_kcp_port(s);
    assert_true(port > 0);

    char addr[32], frames[16], max[16], lockstep[16];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(frames, sizeof(frames), "%d", FRAMES);
    snprintf(max, sizeof(max), "%d", MAX_PAYLOAD);
    snprintf(lockstep, sizeof(lockstep), "%d", LOCKSTEP);
    const char *args[] = {
        "-addr", addr, "-frames", frames, "-max", max, "-lockstep", lockstep,
        stream ? "-stream=true" : "-stream=false", "-seed", "15",
        /* message mode also with a conversation ID chosen by the client,
           as kcp-go's NewConn3 takes one: the server adopts any */
        stream ? NULL : "-conv", "305419896", NULL};
    char summary[256];
    int rc = kp_client_run(exe, args, tf_ms(T_RUN), summary, sizeof(summary));
    tf_note("kcp-go client: %s", summary);
    if (rc != 0)
        fail_msg("kcp-go client exited %d: %s", rc, summary);
    assert_int_equal(strncmp(summary, "OK ", 3), 0);
    if (!stream)
        assert_non_null(strstr(summary, " conv=305419896 "));
    assert_int_equal(atomic_load(&h.starts), 1);

    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
    assert_int_equal(atomic_load(&h.starts), 1);
    assert_int_equal(atomic_load(&h.stops), 1);
}

static void test_c_server_go_client_stream(void **state)
{
    (void)state;
    c_server_go_client(1);
}

static void test_c_server_go_client_message(void **state)
{
    (void)state;
    c_server_go_client(0);
}

/* ---- C client, kcp-go server --------------------------------------------- */

/* The frames the C client sends: sizes 0..MAX_PAYLOAD, both ends
   present, content from a seeded generator. */
typedef struct frameset {
    uint32_t len[FRAMES];
    uint8_t *data[FRAMES];
} frameset_t;

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void frameset_make(frameset_t *f, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < FRAMES; i++) {
        uint32_t n = (uint32_t)(next_rand(&x) % (MAX_PAYLOAD + 1));
        if (i % 50 == 0)
            n = 0;
        else if (i % 50 == 1)
            n = MAX_PAYLOAD;
        else if (i % 3 == 0)
            n %= 64;
        f->len[i] = n;
        f->data[i] = malloc(n + 1);
        assert_non_null(f->data[i]);
        for (uint32_t j = 0; j < n; j++)
            f->data[i][j] = (uint8_t)next_rand(&x);
    }
}

static void frameset_free(frameset_t *f)
{
    for (int i = 0; i < FRAMES; i++)
        free(f->data[i]);
}

/* What the client's router saw: echoes counted and checked in order. */
typedef struct echoes {
    const frameset_t *sent;
    pthread_mutex_t lock;
    int got, bad;
    char why[128];
} echoes_t;

static void on_echo(zinx_request_t *req, void *udata)
{
    echoes_t *e = udata;
    pthread_mutex_lock(&e->lock);
    int i = e->got;
    uint32_t n = zinx_request_data_len(req);
    if (i >= FRAMES || n != e->sent->len[i] ||
        memcmp(zinx_request_data(req), e->sent->data[i], n) != 0) {
        if (e->bad++ == 0)
            snprintf(e->why, sizeof(e->why), "echo %d: %u bytes, want %u", i, n,
                     i < FRAMES ? e->sent->len[i] : 0);
    }
    e->got++;
    pthread_mutex_unlock(&e->lock);
}

/* Waits until at least want echoes arrived; returns how many did. */
static int wait_echoes(echoes_t *e, int want, int timeout_ms)
{
    uint64_t end = tf_now_ms() + (uint64_t)timeout_ms;
    pthread_mutex_lock(&e->lock);
    while (e->got < want && tf_now_ms() < end) {
        pthread_mutex_unlock(&e->lock);
        tf_sleep_ms(1);
        pthread_mutex_lock(&e->lock);
    }
    int got = e->got;
    pthread_mutex_unlock(&e->lock);
    return got;
}

static void c_client_go_server(int stream)
{
    const char *exe = kp_require();
    const char *args[] = {stream ? "-stream=true" : "-stream=false", NULL};
    kp_server_start(&peer, exe, args);

    frameset_t *sent = calloc(1, sizeof(*sent));
    assert_non_null(sent);
    frameset_make(sent, 0x15c0ffeeu + (uint64_t)stream);
    echoes_t e = {.sent = sent};
    pthread_mutex_init(&e.lock, NULL);

    zinx_config_t cfg;
    kcp_config(&cfg, stream, 0);
    cfg.worker_pool_size = 0; /* the router on the I/O thread, in order */
    zinx_server_t *cli = zinx_client_new(&cfg);
    assert_non_null(cli);
    tf_hooks_t h = {0};
    zinx_router_t r = {.handle = on_echo, .udata = &e};
    assert_int_equal(zinx_server_add_router(cli, TC_ECHO_ID, &r), 0);
    assert_int_equal(tf_count_hooks(cli, &h), 0);
    assert_int_equal(zinx_server_start(cli), 0);

    zinx_dial_opts_t o = {.kcp = 1};
    zinx_dialer_t *d = NULL;
    assert_int_equal(zinx_server_dial(cli, "127.0.0.1", peer.port, &o, &d), 0);
    zinx_conn_t *c = NULL;
    assert_int_equal(zinx_dialer_wait(d, tf_ms(10000), &c), 0);

    uint64_t end = tf_now_ms() + (uint64_t)tf_ms(T_RUN);
    for (int i = 0; i < FRAMES; i++) {
        /* one at a time first, then up to WINDOW in flight */
        int ahead = i < LOCKSTEP ? 0 : WINDOW - 1;
        if (i - ahead > 0)
            assert_true(wait_echoes(&e, i - ahead, tf_ms_left(end)) >=
                        i - ahead);
        assert_int_equal(
            zinx_conn_send_msg(c, TC_ECHO_ID, sent->data[i], sent->len[i]), 0);
    }
    int got = wait_echoes(&e, FRAMES, tf_ms_left(end));
    pthread_mutex_lock(&e.lock);
    int bad = e.bad;
    pthread_mutex_unlock(&e.lock);
    if (bad != 0)
        fail_msg("%d echoes differ; first: %s", bad, e.why);
    assert_int_equal(got, FRAMES);
    assert_int_equal(atomic_load(&h.starts), 1);

    zinx_conn_unref(c);
    zinx_dialer_close(d);
    assert_int_equal(tf_stop_wait(cli, tf_ms(10000)), 0);
    zinx_server_free(cli);
    assert_int_equal(atomic_load(&h.starts), 1);
    assert_int_equal(atomic_load(&h.stops), 1);
    assert_int_equal(e.got, FRAMES); /* nothing more after the run */
    kp_server_stop(&peer);
    pthread_mutex_destroy(&e.lock);
    frameset_free(sent);
    free(sent);
}

static void test_c_client_go_server_stream(void **state)
{
    (void)state;
    c_client_go_server(1);
}

static void test_c_client_go_server_message(void **state)
{
    (void)state;
    c_client_go_server(0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c_server_go_client_stream),
        cmocka_unit_test(test_c_server_go_client_message),
        cmocka_unit_test_teardown(test_c_client_go_server_stream, teardown),
        cmocka_unit_test_teardown(test_c_client_go_server_message, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
