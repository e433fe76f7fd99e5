/*
 * WebSocket: the server against Node.js's `ws` package and raw sockets
 * (tests/node/ws_peer.js), the C clients against the server and against
 * a Node `ws` server, and Mode "" where TCP and WebSocket connections
 * share one server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"

#define WS_PATH "/ws"
#define ID_BCAST 7u

extern char **environ;

static atomic_int starts, stops;
static char path_seen[64];

/* Node and the peer script; skips (fails under CI) when node is absent. */
static const char *peer_script(void)
{
    static char path[4096];
    const char *data = getenv("ZINX_TEST_DATA_DIR");
    assert_non_null(data);
    snprintf(path, sizeof(path), "%s/../node/install.sh", data);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "bash '%s' >&2", path);
    if (system("command -v node >/dev/null") != 0 || system(cmd) != 0) {
        const char *ci = getenv("CI");
        if (ci != NULL && strcmp(ci, "true") == 0)
            fail_msg("node or npm's ws package missing under CI");
        skip();
    }
    snprintf(path, sizeof(path), "%s/../node/ws_peer.js", data);
    return path;
}

/* Runs `node ws_peer.js scenario port path`; its exit status. */
static int run_peer(const char *scenario, int port)
{
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%d", port);
    char *argv[] = {"node",           (char *)peer_script(),
                    (char *)scenario, port_text,
                    WS_PATH,          NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "node", NULL, NULL, argv, environ) != 0)
        return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void on_start(zinx_conn_t *c, void *udata)
{
    (void)udata;
    const char *p = zinx_conn_ws_path(c);
    if (p != NULL)
        snprintf(path_seen, sizeof(path_seen), "%s", p);
    atomic_fetch_add(&starts, 1);
}

static void on_stop(zinx_conn_t *c, void *udata)
{
    (void)c;
    (void)udata;
    atomic_fetch_add(&stops, 1);
}

/* Origins: none or good.example pass (good.example with a bad
   Authorization gets 401), others get 403. */
static int check(const char *path, const char *origin,
                 const zinx_ws_request_t *req, void *udata)
{
    (void)udata;
    if (strcmp(path, WS_PATH) != 0)
        return 403;
    if (origin == NULL)
        return 0;
    if (strcmp(origin, "http://good.example") != 0)
        return 403;
    const char *auth = zinx_ws_request_header(req, "authorization");
    return auth != NULL && strcmp(auth, "none") == 0 ? 401 : 0;
}

static zinx_server_t *ws_server(zinx_mode_t mode, uint32_t idle_ms,
                                uint32_t max_msg, uint32_t hs_ms)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.mode = mode;
    cfg.ws_port = 0;
    snprintf(cfg.ws_path, sizeof(cfg.ws_path), "%s", WS_PATH);
    if (idle_ms)
        cfg.idle_timeout_ms = idle_ms;
    if (max_msg)
        cfg.ws_max_message_size = max_msg;
    if (hs_ms)
        cfg.handshake_timeout_ms = hs_ms;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    atomic_store(&starts, 0);
    atomic_store(&stops, 0);
    path_seen[0] = '\0';
    zinx_server_on_conn_start(s, on_start, NULL);
    zinx_server_on_conn_stop(s, on_stop, NULL);
    zinx_server_set_ws_check(s, check, NULL);
    assert_int_equal(zinx_server_start(s), 0);
    assert_true(zinx_server_ws_port(s) > 0);
    return s;
}

static void peer_case(const char *scenario, uint32_t idle_ms, uint32_t max_msg,
                      uint32_t hs_ms)
{
    zinx_server_t *s = ws_server(ZINX_MODE_WEBSOCKET, idle_ms, max_msg, hs_ms);
    int rc = run_peer(scenario, zinx_server_ws_port(s));
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
    assert_int_equal(rc, 0);
}

/* Several Zinx frames in one message, one frame in two, a fragmented
   message, and a normal close answered with 1000. */
static void test_node_frames(void **state)
{
    (void)state;
    peer_case("frames", 0, 0, 0);
    assert_string_equal(path_seen, WS_PATH);
    assert_int_equal(atomic_load(&starts), 1);
}

/* Pings are answered and count as activity against IdleTimeoutMs. */
static void test_node_ping_is_activity(void **state)
{
    (void)state;
    peer_case("ping", 600, 0, 0);
}

static void test_node_oversize_1009(void **state)
{
    (void)state;
    peer_case("oversize", 0, 1024, 0);
}

static void test_node_text_1003(void **state)
{
    (void)state;
    peer_case("text", 0, 0, 0);
}

static void test_node_unmasked_1002(void **state)
{
    (void)state;
    peer_case("unmasked", 0, 0, 0);
    peer_case("rsv", 0, 0, 0);
}

/* 404, 426, 403, 401, 431, 405; failed upgrades get no hooks. */
static void test_node_refusals(void **state)
{
    (void)state;
    zinx_server_t *s = ws_server(ZINX_MODE_WEBSOCKET, 0, 0, 0);
    int rc = run_peer("refuse", zinx_server_ws_port(s));
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
    assert_int_equal(rc, 0);
    assert_int_equal(st.ws_refused, 6);
    assert_int_equal(atomic_load(&starts), 1); /* the good Origin's */
    assert_int_equal(atomic_load(&stops), 1);
}

static void test_node_slowloris(void **state)
{
    (void)state;
    peer_case("slowloris", 0, 0, 500);
}

/* The blocking C client against the server: echo, then the path. */
static void test_c_client_echo(void **state)
{
    (void)state;
    zinx_server_t *s = ws_server(ZINX_MODE_WEBSOCKET, 0, 0, 0);
    zinx_sync_opts_t o = {.ws_path = WS_PATH};
    zinx_sync_client_t *c = NULL;
    assert_int_equal(
        zinx_sync_client_open("127.0.0.1", zinx_server_ws_port(s), &o, &c), 0);
    static uint8_t big[3000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 50; i++) {
        zinx_msg_t m;
        uint32_t len = (uint32_t)(i * 60);
        assert_int_equal(zinx_sync_client_call(c, TC_ECHO_ID, big, len,
                                               TC_ECHO_ID, tf_ms(5000), &m),
                         0);
        assert_int_equal(m.len, len);
        assert_memory_equal(m.data, big, len);
        zinx_sync_msg_free(&m);
    }
    /* path_seen is written before starts grows (the hook's order). */
    assert_true(tf_wait_atomic_ge(&starts, 1, tf_ms(5000)) >= 1);
    assert_string_equal(path_seen, WS_PATH);
    zinx_sync_client_free(c);
    /* A wrong path: the upgrade fails and the open says so. */
    zinx_sync_opts_t bad = {.ws_path = "/nope", .connect_timeout_ms = 3000};
    assert_int_not_equal(
        zinx_sync_client_open("127.0.0.1", zinx_server_ws_port(s), &bad, &c),
        0);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
}

/* The C client against Node's `ws` server, which refuses unmasked
   frames and echoes each message. */
static void test_c_client_vs_node_server(void **state)
{
    (void)state;
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "0");
    char cmd[4300];
    snprintf(cmd, sizeof(cmd), "exec node '%s' server 0 %s", peer_script(),
             WS_PATH);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int port = 0;
    char line[128];
    assert_non_null(fgets(line, sizeof(line), p));
    assert_int_equal(sscanf(line, "PORT %d", &port), 1);
    zinx_sync_opts_t o = {.ws_path = WS_PATH};
    zinx_sync_client_t *c = NULL;
    assert_int_equal(zinx_sync_client_open("127.0.0.1", port, &o, &c), 0);
    for (int i = 0; i < 20; i++) {
        zinx_msg_t m;
        char text[32];
        int n = snprintf(text, sizeof(text), "hello %d", i);
        assert_int_equal(zinx_sync_client_call(c, 42, text, (uint32_t)n, 42,
                                               tf_ms(5000), &m),
                         0);
        assert_int_equal(m.len, (uint32_t)n);
        assert_memory_equal(m.data, text, (size_t)n);
        zinx_sync_msg_free(&m);
    }
    zinx_sync_client_free(c);
    /* Our graceful close sent 1000. */
    assert_non_null(fgets(line, sizeof(line), p));
    assert_string_equal(line, "CLOSED 1000\n");
    assert_int_equal(pclose(p), 0);
}

/* Mode "": a TCP and a WebSocket client on one server share its hooks
   and each sees the other's broadcast. */
static void bcast(zinx_request_t *req, void *udata)
{
    zinx_server_t *s = udata;
    zinx_server_broadcast(s, ID_BCAST, zinx_request_data(req),
                          zinx_request_data_len(req));
}

static void test_mixed_mode_broadcast(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.mode = ZINX_MODE_TCP_WS;
    cfg.ws_port = 0;
    snprintf(cfg.ws_path, sizeof(cfg.ws_path), "%s", WS_PATH);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    atomic_store(&starts, 0);
    zinx_server_on_conn_start(s, on_start, NULL);
    zinx_router_t r = {.handle = bcast, .udata = s};
    zinx_server_add_router(s, ID_BCAST, &r);
    int tcp_port = tf_start_or_fail(s);
    int fd = tc_connect(tcp_port);
    assert_true(fd >= 0);
    zinx_sync_opts_t o = {.ws_path = WS_PATH};
    zinx_sync_client_t *c = NULL;
    assert_int_equal(
        zinx_sync_client_open("127.0.0.1", zinx_server_ws_port(s), &o, &c), 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "x", 1, tf_ms(5000)), 0);
    /* The server's hooks ran for both (the client's own open does not
       wait for them). */
    assert_true(tf_wait_atomic_ge(&starts, 2, tf_ms(5000)));
    assert_int_equal(atomic_load(&starts), 2);
    /* The TCP client broadcasts: the WebSocket client gets it. */
    assert_int_equal(tc_send_frame(fd, ZINX_FORMAT_TLV, ID_BCAST, "from-tcp", 8,
                                   tf_ms(5000)),
                     0);
    zinx_msg_t m;
    assert_int_equal(zinx_sync_client_recv(c, ID_BCAST, tf_ms(5000), &m), 0);
    assert_memory_equal(m.data, "from-tcp", 8);
    zinx_sync_msg_free(&m);
    uint32_t id = 0, len = 0;
    char buf[64];
    assert_int_equal(tc_recv_frame(fd, ZINX_FORMAT_TLV, &id, buf, sizeof(buf),
                                   &len, tf_ms(5000)),
                     0);
    assert_int_equal(id, ID_BCAST);
    /* The WebSocket client broadcasts: the TCP client gets it. */
    assert_int_equal(zinx_sync_client_send(c, ID_BCAST, "from-ws", 7), 0);
    assert_int_equal(tc_recv_frame(fd, ZINX_FORMAT_TLV, &id, buf, sizeof(buf),
                                   &len, tf_ms(5000)),
                     0);
    assert_int_equal(id, ID_BCAST);
    assert_int_equal(len, 7);
    assert_memory_equal(buf, "from-ws", 7);
    zinx_sync_client_free(c);
    tc_close(fd);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c_client_echo),
        cmocka_unit_test(test_mixed_mode_broadcast),
        cmocka_unit_test(test_node_frames),
        cmocka_unit_test(test_node_ping_is_activity),
        cmocka_unit_test(test_node_oversize_1009),
        cmocka_unit_test(test_node_text_1003),
        cmocka_unit_test(test_node_unmasked_1002),
        cmocka_unit_test(test_node_refusals),
        cmocka_unit_test(test_node_slowloris),
        cmocka_unit_test(test_c_client_vs_node_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
