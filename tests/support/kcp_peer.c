/* The kcp-go peer of the KCP tests (kcp_peer.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "kcp_peer.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_fixture.h"

#ifndef ZINX_KCP_PEER_PATH
#define ZINX_KCP_PEER_PATH ""
#endif

#define KP_MAX_ARGS 48

const char *kp_require(void)
{
    const char *exe = ZINX_KCP_PEER_PATH;
    if (exe[0] != '\0' && access(exe, X_OK) == 0)
        return exe;
    const char *ci = getenv("CI");
    if (ci != NULL && strcmp(ci, "true") == 0)
        fail_msg("kcp_peer was not built: go or golang-github-xtaci-kcp-dev "
                 "is missing (scripts/install-deps.sh test), and CI=true "
                 "forbids skipping");
    print_message("skipped: kcp_peer not built (needs go and kcp-go)\n");
    skip();
    return NULL;
}

/* Forks `exe mode args...` with stdin and stdout on pipes (stderr
   shared, so its complaints reach the test's log). */
static pid_t spawn(const char *exe, const char *mode, const char *const args[],
                   int *in, int *out)
{
    const char *argv[KP_MAX_ARGS + 3] = {"kcp_peer", mode};
    size_t n = 2;
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        assert_true(i < KP_MAX_ARGS);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    int pin[2], pout[2];
    assert_int_equal(pipe2(pin, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pout, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* It goes with the test, however the test ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    *in = pin[1];
    *out = pout[0];
    return pid;
}

/* Reads one line from fd into buf within timeout_ms; 0 or -1. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
    uint64_t end = tf_now_ms() + (uint64_t)timeout_ms;
    size_t used = 0;
    buf[0] = '\0';
    while (used + 1 < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, tf_ms_left(end)) != 1)
            return -1;
        ssize_t r = read(fd, buf + used, 1);
        if (r <= 0)
            return used > 0 ? 0 : -1;
        if (buf[used] == '\n')
            break;
        buf[++used] = '\0';
    }
    buf[used] = '\0';
    return 0;
}

/* Waits for pid at most timeout_ms, then kills it. Exit status or -1. */
static int reap(pid_t pid, int timeout_ms)
{
    uint64_t end = tf_now_ms() + (uint64_t)timeout_ms;
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && tf_now_ms() < end)
        tf_sleep_ms(5);
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void kp_server_start(kp_server_t *s, const char *exe, const char *const args[])
{
    int out;
    s->pid = spawn(exe, "server", args, &s->in, &out);
    char line[64];
    int rc = read_line(out, line, sizeof(line), tf_ms(20000));
    close(out);
    s->port = rc == 0 ? atoi(line) : 0;
    if (s->port <= 0) {
        kp_server_stop(s);
        fail_msg("kcp_peer server did not print its port (got \"%s\")", line);
    }
}

void kp_server_stop(kp_server_t *s)
{
    if (s->pid <= 0)
        return;
    close(s->in);
    (void)reap(s->pid, 5000);
    s->pid = 0;
}

int kp_client_run(const char *exe, const char *const args[], int timeout_ms,
                  char *summary, size_t summary_len)
{
    int in, out;
    uint64_t end = tf_now_ms() + (uint64_t)timeout_ms;
    pid_t pid = spawn(exe, "client", args, &in, &out);
    close(in);
    if (read_line(out, summary, summary_len, timeout_ms) != 0)
        snprintf(summary, summary_len, "(no summary)");
    close(out);
    return reap(pid, tf_ms_left(end));
}
