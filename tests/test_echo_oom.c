/*
 * T23 from outside: the built zinx-echo under an address-space limit 60
 * MiB above what it needs at rest, with the default configuration
 * (10 workers), while 300 clients send requests, never read, and are
 * then reset. Allocations fail for real (glibc, not a hook). The server
 * must keep serving new clients, give back every descriptor, log the
 * shortage rate-limited, and stop on SIGTERM with exit status 0.
 *
 * Plain builds only: sanitizer runtimes reserve terabytes of address
 * space, so a limit on it cannot run them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"
#include "test_probe.h"

#ifdef ZINX_ECHO_PATH
typedef struct echo_proc {
    pid_t pid;
    int port;
    char errlog[PATH_MAX + 16];
} echo_proc_t;

/* Starts zinx-echo with `conf`, its address space limited to limit_kib
   (0: no limit), stderr to errlog; waits for its "listening on" line. */
static void echo_start(echo_proc_t *e, const char *conf, long limit_kib)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    char env[PATH_MAX + 64];
    snprintf(env, sizeof(env), "ZINX_CONFIG_FILE_PATH=%s", conf);
    e->pid = fork();
    assert_true(e->pid >= 0);
    if (e->pid == 0) {
        struct rlimit rl = {.rlim_cur = (rlim_t)limit_kib * 1024,
                            .rlim_max = (rlim_t)limit_kib * 1024};
        if (limit_kib > 0 && setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(120);
        int err = open(e->errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (err < 0 || dup2(out[1], 1) < 0 || dup2(err, 2) < 0)
            _exit(121);
        char *argv[] = {(char *)ZINX_ECHO_PATH, NULL};
        char *envp[] = {env, NULL};
        execve(ZINX_ECHO_PATH, argv, envp);
        _exit(122);
    }
    close(out[1]);
    char line[256] = "";
    size_t have = 0;
    while (have < sizeof(line) - 1 && strchr(line, '\n') == NULL) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        ssize_t n = read(out[0], line + have, sizeof(line) - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        line[have] = '\0';
    }
    close(out[0]);
    const char *colon = strrchr(line, ':');
    assert_non_null(colon);
    e->port = atoi(colon + 1);
    assert_true(e->port > 0);
}

static long proc_value_kib(pid_t pid, const char *key)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long v = -1;
    while (fgets(buf, sizeof(buf), f) != NULL) {
        if (strncmp(buf, key, strlen(key)) == 0)
            v = atol(buf + strlen(key) + 1);
    }
    fclose(f);
    return v;
}

static int proc_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The descriptor count once it held still for 50 ms (at most 2 s). */
static int settled_fd_count(pid_t pid)
{
    int last = proc_fd_count(pid), same = 0;
    for (int i = 0; i < 200 && same < 5; i++) {
        tf_sleep_ms(10);
        int now = proc_fd_count(pid);
        same = now == last ? same + 1 : 0;
        last = now;
    }
    return last;
}

/* SIGTERM, then waits up to ms; returns the exit status or -1. */
static int echo_stop(echo_proc_t *e, int ms)
{
    kill(e->pid, SIGTERM);
    uint64_t end = tf_now_ms() + (uint64_t)ms;
    int status;
    while (waitpid(e->pid, &status, WNOHANG) == 0) {
        if (tf_now_ms() >= end) {
            kill(e->pid, SIGKILL);
            waitpid(e->pid, &status, 0);
            return -1;
        }
        tf_sleep_ms(5);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int count_lines_with(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[2048];
    int n = 0;
    while (fgets(buf, sizeof(buf), f) != NULL)
        n += strstr(buf, needle) != NULL;
    fclose(f);
    return n;
}

/* Sends 1 KiB echo requests for ms milliseconds on every socket, whole
   frames only over time (a short send is finished by later ones). */
static void flood(int *fds, size_t *offs, int n, unsigned ms)
{
    static uint8_t frame[ZINX_HEADER_LEN + 1024];
    memset(frame + ZINX_HEADER_LEN, 'o', 1024);
    frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, frame + ZINX_HEADER_LEN, 1024,
                 frame);
    uint64_t end = tf_now_ms() + ms;
    while (tf_now_ms() < end) {
        for (int i = 0; i < n; i++) {
            ssize_t k = send(fds[i], frame + offs[i], sizeof(frame) - offs[i],
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0)
                offs[i] = (offs[i] + (size_t)k) % sizeof(frame);
        }
    }
}
#endif

static void t23_echo_under_address_space_limit(void **state)
{
    (void)state;
#ifndef ZINX_ECHO_PATH
    skip();
#else
    if (TF_SANITIZED)
        skip();
    enum { N = 300 };
    char dir[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/zinx-test-oom-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    char conf[PATH_MAX + 16];
    snprintf(conf, sizeof(conf), "%s/zinx.json", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs("{\"Host\":\"127.0.0.1\",\"TCPPort\":0,\"LogIsolationLevel\":1}\n",
          f);
    fclose(f);
    probe_raise_nofile();

    /* What it needs at rest. */
    echo_proc_t e;
    snprintf(e.errlog, sizeof(e.errlog), "%s/stderr.log", dir);
    echo_start(&e, conf, 0);
    long rest_kib = proc_value_kib(e.pid, "VmSize");
    assert_int_equal(echo_stop(&e, 5000), 0);

    for (int round = 0; round < 2; round++) {
        echo_start(&e, conf, rest_kib + 60 * 1024);
        /* zinx-echo prints its port before serve() opens its signalfd:
           the baseline is taken once the count has settled. */
        int fd0 = settled_fd_count(e.pid);
        static int fds[N];
        static size_t offs[N];
        tc_opts_t o = {.rcvbuf = 4096};
        for (int i = 0; i < N; i++) {
            fds[i] = tc_connect_opts(e.port, &o);
            assert_true(fds[i] >= 0);
            offs[i] = 0;
        }
        flood(fds, offs, N, 3000);
        for (int i = 0; i < N; i++)
            tc_close_rst(fds[i]);

        /* Still serving, and every descriptor given back. */
        int served = 0;
        for (int i = 0; i < 5; i++) {
            int c = tc_connect(e.port);
            if (c >= 0 &&
                tc_echo_call(c, ZINX_FORMAT_TLV, "alive", 5, 5000) == 0)
                served++;
            if (c >= 0)
                close(c);
        }
        int fds_left = -1;
        for (int i = 0; i < 200; i++) {
            fds_left = proc_fd_count(e.pid);
            if (fds_left <= fd0)
                break;
            tf_sleep_ms(10);
        }
        int status = echo_stop(&e, 5000);
        int oom = count_lines_with(e.errlog, "memory");
        tf_note("T23 zinx-echo round %d: limit %ld KiB, %d of 5 probes "
                "served, descriptors %d (at start %d), exit %d, %d log "
                "lines about memory",
                round, rest_kib + 60 * 1024, served, fds_left, fd0, status,
                oom);
        assert_int_equal(served, 5);
        assert_true(fds_left <= fd0);
        assert_int_equal(status, 0);
        assert_true(oom <= 12); /* at most one a second, plus totals */
    }
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t23_echo_under_address_space_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
