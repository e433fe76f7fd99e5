/*
 * PROXY protocol from a real proxy: HAProxy in TCP mode in front of the
 * server, with send-proxy (v1) in one run and send-proxy-v2 in another.
 * The test starts HAProxy itself (configuration in a temporary folder,
 * frontend on a free loopback port, in the foreground) and kills it at
 * the end. Without haproxy the test is skipped, except under CI=true,
 * where that is a failure.
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
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_peer.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 5000

typedef struct seen {
    atomic_int starts, stops;
    pthread_mutex_t lock;
    char remote[64], peer[64];
} seen_t;

static seen_t seen;

static void on_start(zinx_conn_t *c, void *udata)
{
    seen_t *s = udata;
    pthread_mutex_lock(&s->lock);
    snprintf(s->remote, sizeof(s->remote), "%s", zinx_conn_remote_addr(c));
    snprintf(s->peer, sizeof(s->peer), "%s", zinx_conn_peer_addr(c));
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->starts, 1);
}

static void on_stop(zinx_conn_t *c, void *udata)
{
    (void)c;
    atomic_fetch_add(&((seen_t *)udata)->stops, 1);
}

/* ---- HAProxy ------------------------------------------------------------ */

/* The haproxy program: Debian puts it in /usr/sbin, which a user's PATH
   may lack. NULL when there is none. */
static const char *haproxy_path(void)
{
    static const char *const fixed[] = {"/usr/sbin/haproxy",
                                        "/usr/local/sbin/haproxy", NULL};
    return tp_find_program("haproxy", fixed);
}

typedef struct haproxy {
    pid_t pid;
    int port; /* its frontend */
    char dir[64], cfg[96], log[96];
} haproxy_t;

static void write_config(const haproxy_t *h, int backend_port,
                         const char *send_proxy)
{
    FILE *f = fopen(h->cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "global\n"
            "    maxconn 64\n"
            "defaults\n"
            "    mode tcp\n"
            "    timeout connect 5s\n"
            "    timeout client 30s\n"
            "    timeout server 30s\n"
            "frontend fe\n"
            "    bind 127.0.0.1:%d\n"
            "    default_backend be\n"
            "backend be\n"
            "    server zinx 127.0.0.1:%d %s\n",
            h->port, backend_port, send_proxy);
    fclose(f);
}

static void print_log(const haproxy_t *h)
{
    FILE *f = fopen(h->log, "r");
    char line[256];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "haproxy: %s", line);
    if (f != NULL)
        fclose(f);
}

/* Starts haproxy (foreground, -db) in front of backend_port. */
static void haproxy_start(haproxy_t *h, const char *exe, int backend_port,
                          const char *send_proxy)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->dir, sizeof(h->dir), "/tmp/zinx-haproxy-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->cfg, sizeof(h->cfg), "%s/haproxy.cfg", h->dir);
    snprintf(h->log, sizeof(h->log), "%s/haproxy.log", h->dir);
    h->port = tp_free_port();
    write_config(h, backend_port, send_proxy);
    h->pid = fork();
    assert_true(h->pid >= 0);
    if (h->pid == 0) {
        /* It goes with the test, however the test ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int out = open(h->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        execl(exe, "haproxy", "-db", "-f", h->cfg, (char *)NULL);
        _exit(127);
    }
}

static void haproxy_stop(haproxy_t *h)
{
    if (h->dir[0] == '\0')
        return;
    if (h->pid > 0) {
        kill(h->pid, SIGTERM);
        int st;
        uint64_t end = tf_now_ms() + 5000;
        while (waitpid(h->pid, &st, WNOHANG) == 0) {
            if (tf_now_ms() > end) {
                kill(h->pid, SIGKILL);
                waitpid(h->pid, &st, 0);
                break;
            }
            tf_sleep_ms(5);
        }
        h->pid = 0;
    }
    unlink(h->cfg);
    unlink(h->log);
    rmdir(h->dir);
    h->dir[0] = '\0';
}

/* The run's haproxy: stopped by the teardown too when a check fails. */
static haproxy_t proxy;

static int teardown(void **state)
{
    (void)state;
    haproxy_stop(&proxy);
    return 0;
}

/* A connection through haproxy that exchanged a frame, or -1 once
   timeout_ms passed (haproxy not up yet, or gone; *last says why). */
static int connect_through(haproxy_t *h, int timeout_ms, int *last)
{
    uint64_t end = tf_now_ms() + (uint64_t)timeout_ms;
    while (tf_now_ms() < end) {
        int st;
        if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
            h->pid = 0;
            print_log(h);
            fail_msg("haproxy exited early");
        }
        int fd = tc_connect(h->port);
        *last = fd >= 0 ? tc_echo_call(fd, TLV, "up?", 3, 1000) : fd;
        if (*last == 0)
            return fd;
        tc_close(fd);
        tf_sleep_ms(20);
    }
    return -1;
}

static void run_through(const char *send_proxy)
{
    const char *exe = haproxy_path();
    if (exe == NULL) {
        const char *ci = getenv("CI");
        if (ci != NULL && strcmp(ci, "true") == 0)
            fail_msg("haproxy is not installed (scripts/install-deps.sh "
                     "test), and CI=true forbids skipping");
        print_message("haproxy not found: skipped\n");
        skip();
    }
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.proxy_protocol = ZINX_PROXY_EITHER;
    snprintf(cfg.proxy_protocol_from, sizeof(cfg.proxy_protocol_from),
             "127.0.0.1");
    zinx_server_t *s = tf_echo_server_new(&cfg);
    atomic_store(&seen.starts, 0);
    atomic_store(&seen.stops, 0);
    assert_int_equal(zinx_server_on_conn_start(s, on_start, &seen), 0);
    assert_int_equal(zinx_server_on_conn_stop(s, on_stop, &seen), 0);
    int port = tf_start_or_fail(s);

    haproxy_t *h = &proxy;
    haproxy_start(h, exe, port, send_proxy);
    int last = 0;
    int fd = connect_through(h, tf_ms(20000), &last);
    if (fd < 0) {
        print_log(h);
        haproxy_stop(h);
        fail_msg("no echo through haproxy on port %d: %s", h->port,
                 strerror(-last));
    }
    /* more frames, then what the hook saw */
    for (int i = 0; i < 20; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "%s #%d", send_proxy, i);
        assert_int_equal(tc_echo_call(fd, TLV, msg, (uint32_t)n, tf_ms(T_IO)),
                         0);
    }
    char want[64], remote[64], peer[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", tc_local_port(fd));
    pthread_mutex_lock(&seen.lock);
    snprintf(remote, sizeof(remote), "%s", seen.remote);
    snprintf(peer, sizeof(peer), "%s", seen.peer);
    pthread_mutex_unlock(&seen.lock);
    tf_note("%s: remote %s, peer %s", send_proxy, remote, peer);
    assert_string_equal(remote, want);     /* the client, as it sees itself */
    assert_string_not_equal(peer, remote); /* HAProxy's own socket */
    assert_int_equal(strncmp(peer, "127.0.0.1:", 10), 0);
    assert_int_equal(tf_stat(s, TF_STAT(proxy_refused)), 0);

    /* a direct connection without a header is refused */
    int direct = tc_connect(port);
    assert_true(direct >= 0);
    (void)tc_send_raw(direct, "\x00\x00\x00\x01", 4, tf_ms(T_IO));
    int rc = tc_wait_closed(direct, tf_ms(T_IO), NULL);
    assert_true(rc == 0 || rc == -ECONNRESET);
    assert_int_equal(tf_wait_stat(s, TF_STAT(proxy_refused), 1, tf_ms(T_IO)),
                     1);
    tc_close(direct);

    tc_close(fd);
    haproxy_stop(h);
    assert_int_equal(tf_stop_wait(s, tf_ms(10000)), 0);
    zinx_server_free(s);
    /* every connection HAProxy made was opened and closed once */
    assert_int_equal(atomic_load(&seen.starts), atomic_load(&seen.stops));
}

static void test_haproxy_send_proxy_v1(void **state)
{
    (void)state;
    run_through("send-proxy");
}

static void test_haproxy_send_proxy_v2(void **state)
{
    (void)state;
    run_through("send-proxy-v2");
}

int main(void)
{
    pthread_mutex_init(&seen.lock, NULL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_haproxy_send_proxy_v1, teardown),
        cmocka_unit_test_teardown(test_haproxy_send_proxy_v2, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pthread_mutex_destroy(&seen.lock);
    return rc;
}
