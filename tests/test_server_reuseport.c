/*
 * ReusePort in one process: "off" keeps the port exclusive (a second
 * server gets ZINX_EADDRINUSE), "process" lets two servers share one
 * port and the kernel gives each some of the connections, "loops" binds
 * one listening socket per I/O loop on one port (TCPPort 0 included) and
 * connections land on several loops; WsPort shares alike.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"

#define CONNS 64
#define LOOPS 4

/* Listening TCP sockets on port in /proc/net/tcp and tcp6 (state 0A). */
static int count_listeners(int port)
{
    static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    int n = 0;
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        if (f == NULL)
            continue;
        char line[512];
        while (fgets(line, sizeof(line), f) != NULL) {
            char local[128], remote[128], state[8];
            if (sscanf(line, " %*s %127s %127s %7s", local, remote, state) != 3)
                continue;
            const char *colon = strrchr(local, ':');
            unsigned p;
            if (colon != NULL && sscanf(colon + 1, "%x", &p) == 1 &&
                (int)p == port && strcmp(state, "0A") == 0)
                n++;
        }
        fclose(f);
    }
    return n;
}

static zinx_server_t *start_server(uint32_t reuse, int port, int *bound)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.reuse_port = reuse;
    cfg.tcp_port = port;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int rc = zinx_server_start(s);
    if (rc != 0) {
        zinx_server_free(s);
        *bound = rc;
        return NULL;
    }
    *bound = zinx_server_port(s);
    return s;
}

/* Opens CONNS connections to port, one echo each, all kept open until
   the end so the counts are settled. */
static void echo_many(int port)
{
    int fds[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fds[i] = tc_connect(port);
        assert_true(fds[i] >= 0);
        assert_int_equal(
            tc_echo_call(fds[i], ZINX_FORMAT_TLV, "hi", 2, tf_ms(5000)), 0);
    }
    for (int i = 0; i < CONNS; i++)
        tc_close(fds[i]);
}

/* "off": the port stays exclusive, whatever the second server asks. */
static void test_off_port_in_use(void **state)
{
    (void)state;
    int port;
    zinx_server_t *a = start_server(ZINX_REUSE_PORT_OFF, 0, &port);
    assert_non_null(a);
    assert_int_equal(count_listeners(port), 1);
    int rc;
    assert_null(start_server(ZINX_REUSE_PORT_OFF, port, &rc));
    assert_int_equal(rc, ZINX_EADDRINUSE);
    /* Asking for sharing does not take a port its owner did not share. */
    assert_null(start_server(ZINX_REUSE_PORT_PROCESS, port, &rc));
    assert_int_equal(rc, ZINX_EADDRINUSE);
    assert_int_equal(tf_stop_wait(a, tf_ms(10000)), 0);
    zinx_server_free(a);
}

/* "process": two servers on one port, each served some connections. */
static void test_process_two_servers(void **state)
{
    (void)state;
    int port, port2;
    zinx_server_t *a = start_server(ZINX_REUSE_PORT_PROCESS, 0, &port);
    assert_non_null(a);
    zinx_server_t *b = start_server(ZINX_REUSE_PORT_PROCESS, port, &port2);
    assert_non_null(b);
    assert_int_equal(port2, port);
    assert_int_equal(count_listeners(port), 2);
    /* A server that does not ask to share is still refused. */
    int rc;
    assert_null(start_server(ZINX_REUSE_PORT_OFF, port, &rc));
    assert_int_equal(rc, ZINX_EADDRINUSE);

    echo_many(port);
    uint64_t na = tf_stat(a, TF_STAT(accepted));
    uint64_t nb = tf_stat(b, TF_STAT(accepted));
    tf_note("process: %llu + %llu connections", (unsigned long long)na,
            (unsigned long long)nb);
    assert_int_equal(na + nb, CONNS);
    /* The kernel hashes each source port: all 64 on one side would
       have a chance of 2^-63. */
    assert_true(na > 0);
    assert_true(nb > 0);
    assert_int_equal(tf_stop_wait(a, tf_ms(10000)), 0);
    zinx_server_free(a);
    /* b goes on alone once a is gone. */
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "b", 1, tf_ms(5000)), 0);
    tc_close(fd);
    assert_int_equal(tf_stop_wait(b, tf_ms(10000)), 0);
    zinx_server_free(b);
}

/* Which I/O loops started connections: bit i for "zinx-io-i". */
typedef struct loops_seen {
    pthread_mutex_t lock;
    unsigned mask;
    int count;
} loops_seen_t;

static void note_loop(zinx_conn_t *c, void *udata)
{
    (void)c;
    loops_seen_t *seen = udata;
    char name[32] = "";
    unsigned i = 0;
    pthread_getname_np(pthread_self(), name, sizeof(name));
    pthread_mutex_lock(&seen->lock);
    if (sscanf(name, "zinx-io-%u", &i) == 1 && i < 32)
        seen->mask |= 1u << i;
    seen->count++;
    pthread_mutex_unlock(&seen->lock);
}

static int start_count(void *arg)
{
    loops_seen_t *seen = arg;
    pthread_mutex_lock(&seen->lock);
    int n = seen->count;
    pthread_mutex_unlock(&seen->lock);
    return n >= CONNS;
}

/* "loops": one listening socket per loop on one port, connections on
   several loops (OnConnStart runs on the loop with WorkerPoolSize 0). */
static void test_loops_spread(void **state)
{
    (void)state;
    loops_seen_t seen = {.mask = 0, .count = 0};
    pthread_mutex_init(&seen.lock, NULL);
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.reuse_port = ZINX_REUSE_PORT_LOOPS;
    cfg.io_threads = LOOPS;
    cfg.worker_pool_size = 0;
    cfg.mode = ZINX_MODE_TCP_WS; /* WsPort shares the per-loop sockets too */
    cfg.ws_port = 0;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_server_on_conn_start(s, note_loop, &seen);
    int port = tf_start_or_fail(s);
    int ws_port = zinx_server_ws_port(s);
    assert_true(ws_port > 0);
    assert_int_equal(count_listeners(port), LOOPS);
    assert_int_equal(count_listeners(ws_port), LOOPS);

    echo_many(port);
    assert_true(tf_wait_until(start_count, &seen, tf_ms(5000)));
    pthread_mutex_lock(&seen.lock);
    unsigned mask = seen.mask;
    pthread_mutex_unlock(&seen.lock);
    tf_note("loops: started on loops mask 0x%x", mask);
    /* At least two loops (all four almost surely: 64 hashed sources). */
    assert_true(__builtin_popcount(mask) >= 2);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
    assert_int_equal(count_listeners(port), 0);
    pthread_mutex_destroy(&seen.lock);
}

/* Mode "": WsPort is shared like TCPPort ("process"). */
static void test_process_ws_port(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.reuse_port = ZINX_REUSE_PORT_PROCESS;
    cfg.mode = ZINX_MODE_TCP_WS;
    cfg.ws_port = 0;
    zinx_server_t *a = tf_echo_server_new(&cfg);
    cfg.tcp_port = tf_start_or_fail(a);
    cfg.ws_port = zinx_server_ws_port(a);
    zinx_server_t *b = tf_echo_server_new(&cfg);
    assert_int_equal(tf_start_or_fail(b), cfg.tcp_port);
    assert_int_equal(zinx_server_ws_port(b), cfg.ws_port);
    assert_int_equal(count_listeners(cfg.ws_port), 2);
    assert_int_equal(tf_stop_wait(a, tf_ms(10000)), 0);
    assert_int_equal(tf_stop_wait(b, tf_ms(10000)), 0);
    zinx_server_free(a);
    zinx_server_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_port_in_use),
        cmocka_unit_test(test_process_two_servers),
        cmocka_unit_test(test_loops_spread),
        cmocka_unit_test(test_process_ws_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
