/*
 * Metrics scraped by a real Prometheus (Debian's `prometheus`): the test
 * starts it on a free loopback port with a temporary configuration
 * (scrape every second, the server's metrics port as target) and a
 * temporary storage folder, opens N connections to the server, and
 * polls Prometheus's query API until the connection count it recorded
 * is N; then closes them and waits for 0. Prometheus is stopped and its
 * folder removed on every path (the teardown runs after a failed
 * check; PR_SET_PDEATHSIG if the test itself dies). Without prometheus
 * the test is skipped, except under CI=true, where that is a failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
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
#include "test_http.h"

#define TLV ZINX_FORMAT_TLV
#define N_CONNS 5
#define T_IO 5000
/* Prometheus starts in a second or two and scrapes every second. */
#define T_RECORDED 40000

typedef struct prom {
    char dir[64];
    const char *exe;
    pid_t pid;
    int port;
    int starts;
} prom_t;

/* The run's Prometheus: stopped by the teardown too. */
static prom_t prom;
static char resp[1 << 16];

static const char *prometheus_path(void)
{
    static const char *const fixed[] = {"/usr/bin/prometheus", NULL};
    return tp_find_program("prometheus", fixed);
}

static void write_config(const prom_t *p, int target_port)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/prometheus.yml", p->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: zinx\n"
            "    static_configs:\n"
            "      - targets: ['127.0.0.1:%d']\n",
            target_port);
    fclose(f);
}

static void print_log(const prom_t *p)
{
    char path[128], line[512];
    snprintf(path, sizeof(path), "%s/prometheus.log", p->dir);
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "prometheus: %s", line);
    if (f != NULL)
        fclose(f);
}

static void prom_start(prom_t *p, const char *exe)
{
    p->exe = exe;
    p->starts++;
    p->port = tp_free_port();
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid > 0)
        return;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* it goes with the test */
    char cfg[128], data[128], log[128], listen[64];
    snprintf(cfg, sizeof(cfg), "--config.file=%s/prometheus.yml", p->dir);
    snprintf(data, sizeof(data), "--storage.tsdb.path=%s/data", p->dir);
    snprintf(log, sizeof(log), "%s/prometheus.log", p->dir);
    snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d",
             p->port);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, 0);
    execl(exe, "prometheus", cfg, data, listen, "--log.level=warn",
          (char *)NULL);
    _exit(127);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void prom_stop(prom_t *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        int st;
        uint64_t end = tf_now_ms() + 5000;
        while (waitpid(p->pid, &st, WNOHANG) == 0) {
            if (tf_now_ms() > end) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, &st, 0);
                break;
            }
            tf_sleep_ms(10);
        }
        p->pid = 0;
    }
    if (p->dir[0] != '\0')
        nftw(p->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    p->dir[0] = '\0';
}

static int teardown(void **state)
{
    (void)state;
    prom_stop(&prom);
    return 0;
}

/* The value Prometheus holds now for zinx_connections, or -1 (not up
   yet, not scraped yet). Prometheus exiting early is most likely its
   port taken by a parallel test between tp_free_port() and its bind: it
   is started again on another port, twice at most; then the test
   fails. */
static double recorded(prom_t *p)
{
    int st;
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
        p->pid = 0;
        print_log(p);
        if (p->starts >= 3)
            fail_msg("prometheus exited early, %d times", p->starts);
        prom_start(p, p->exe);
        return -1;
    }
    if (th_get(p->port, "/api/v1/query?query=zinx_connections", resp,
               sizeof(resp), 2000) <= 0 ||
        th_status(resp) != 200)
        return -1;
    /* {"status":"success","data":{"resultType":"vector","result":[
       {"metric":{...},"value":[1700000000.123,"5"]}]}} */
    const char *v = strstr(resp, "\"value\":[");
    if (v == NULL)
        return -1;
    v = strchr(v, ',');
    if (v == NULL || v[1] != '"')
        return -1;
    return strtod(v + 2, NULL);
}

static bool wait_recorded(prom_t *p, double want, double *last)
{
    uint64_t end = tf_now_ms() + (uint64_t)tf_ms(T_RECORDED);
    while (tf_now_ms() < end) {
        if ((*last = recorded(p)) == want)
            return true;
        tf_sleep_ms(200);
    }
    return false;
}

static void test_prometheus_counts_connections(void **state)
{
    (void)state;
    const char *exe = prometheus_path();
    if (exe == NULL) {
        const char *ci = getenv("CI");
        if (ci != NULL && strcmp(ci, "true") == 0)
            fail_msg("prometheus is not installed (scripts/install-deps.sh "
                     "test), and CI=true forbids skipping");
        print_message("prometheus not found: skipped\n");
        skip();
    }
    zinx_config_t cfg;
    tf_config(&cfg);
    snprintf(cfg.metrics_addr, sizeof(cfg.metrics_addr), "127.0.0.1:0");
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);

    snprintf(prom.dir, sizeof(prom.dir), "/tmp/zinx-prometheus-XXXXXX");
    assert_non_null(mkdtemp(prom.dir));
    write_config(&prom, zinx_server_metrics_port(s));
    prom_start(&prom, exe);

    int fds[N_CONNS];
    for (int i = 0; i < N_CONNS; i++) {
        fds[i] = tc_connect(port);
        assert_true(fds[i] >= 0);
        assert_int_equal(tc_echo_call(fds[i], TLV, "hi", 2, tf_ms(T_IO)), 0);
    }
    double last = -1;
    if (!wait_recorded(&prom, N_CONNS, &last)) {
        print_log(&prom);
        fail_msg("Prometheus recorded zinx_connections %g, not %d", last,
                 N_CONNS);
    }
    for (int i = 0; i < N_CONNS; i++)
        tc_close(fds[i]);
    if (!wait_recorded(&prom, 0, &last)) {
        print_log(&prom);
        fail_msg("Prometheus recorded zinx_connections %g after the close, "
                 "not 0",
                 last);
    }
    prom_stop(&prom);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_prometheus_counts_connections, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
