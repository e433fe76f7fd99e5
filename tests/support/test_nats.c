/* A real nats-server for the cluster's tests (see test_nats.h). */
#include "test_nats.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_peer.h"

const char *tn_path(void)
{
    static const char *const fixed[] = {"/usr/sbin/nats-server",
                                        "/usr/bin/nats-server",
                                        "/usr/local/bin/nats-server", NULL};
    return tp_find_program("nats-server", fixed);
}

static void spawn(tn_server_t *n, const char *exe)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", n->port);
    n->pid = fork();
    assert_true(n->pid >= 0);
    if (n->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            if (!tf_verbose())
                dup2(null, 1), dup2(null, 2);
        }
        /* -m 0: no monitoring port to collide with other tests. */
        execl(exe, "nats-server", "-a", "127.0.0.1", "-p", port, "-m", "0",
              (char *)NULL);
        _exit(127);
    }
}

void tn_start(tn_server_t *n)
{
    const char *exe = tn_path();
    if (exe == NULL) {
        const char *ci = getenv("CI");
        if (ci != NULL && strcmp(ci, "true") == 0)
            fail_msg("nats-server is not installed (scripts/install-deps.sh "
                     "test), and CI=true forbids skipping");
        print_message("nats-server not found: skipped\n");
        skip();
    }
    if (n->port == 0)
        n->port = tp_free_port();
    snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%d", n->port);
    spawn(n, exe);
    uint64_t end = tf_now_ms() + (uint64_t)tf_ms(10000);
    while (tf_now_ms() < end) {
        int st;
        if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
            n->pid = 0;
            fail_msg("nats-server exited at start (port %d taken?)", n->port);
        }
        int fd = tc_connect(n->port);
        if (fd >= 0) {
            close(fd);
            return;
        }
        tf_sleep_ms(20);
    }
    tn_stop(n);
    fail_msg("nats-server did not listen on port %d", n->port);
}

static void reap(tn_server_t *n, int sig, int grace_ms)
{
    if (n->pid <= 0)
        return;
    kill(n->pid, sig);
    int st;
    uint64_t end = tf_now_ms() + (uint64_t)grace_ms;
    while (waitpid(n->pid, &st, WNOHANG) == 0) {
        if (tf_now_ms() > end) {
            kill(n->pid, SIGKILL);
            waitpid(n->pid, &st, 0);
            break;
        }
        tf_sleep_ms(5);
    }
    n->pid = 0;
}

void tn_stop(tn_server_t *n)
{
    reap(n, SIGTERM, 5000);
}

void tn_kill(tn_server_t *n)
{
    reap(n, SIGKILL, 5000);
}
