/*
 * The live map in a real browser: zinx-mmo on free loopback ports, 50
 * players moving at 5 Hz each (zinx-mmo-bots), and headless Chromium on
 * the page
 * the server serves at "/" of its WebSocket port (tests/node/mmo_map.js
 * drives it over the DevTools protocol). Passes when the page shows the
 * 50 players live and its canvas changed between two looks 800 ms apart
 * (the canvas draws only the grid and the dots: the dots moved). The
 * last screenshot is kept as MMO_MAP_PNG (build/mmo-map.png). Then the
 * server stops on SIGTERM and must exit 0.
 *
 * Needs node, npm's ws package (tests/node/install.sh) and chromium:
 * skipped without them, failed under CI (CI=true).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PLAYERS "50"

static pid_t server_pid = -1, bots_pid = -1;
static char dir[128];

static bool under_ci(void)
{
    const char *ci = getenv("CI");
    return ci != NULL && strcmp(ci, "true") == 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* node, the ws package and chromium; skips (fails under CI) without. */
static void need_peers(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/node/install.sh' >&2",
             ZINX_SOURCE_DIR);
    const char *chromium = getenv("ZINX_TEST_CHROMIUM");
    if (chromium == NULL)
        chromium = "/usr/bin/chromium";
    if (system("command -v node >/dev/null") == 0 && system(cmd) == 0 &&
        access(chromium, X_OK) == 0)
        return;
    if (under_ci())
        fail_msg("node, npm's ws package or %s missing under CI", chromium);
    skip();
}

/* Waits up to ms for pid; its exit status, or -1 (still running). */
static int wait_exit(pid_t pid, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
        if (r < 0 || now_ms() >= end)
            return -1;
        usleep(20000);
    }
}

static void end_process(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = -1;
}

/* The server's zinx.json: free ports on loopback, the demo's format. */
static void write_config(char *path, size_t cap)
{
    snprintf(dir, sizeof(dir), "/tmp/zinx-mmo-map-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, cap, "%s/zinx.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"Name\": \"mmo-map-test\", \"Host\": \"127.0.0.1\",\n"
               " \"TCPPort\": 0, \"WsPort\": 0, \"PacketFormat\": "
               "\"ltv_le\",\n \"Mode\": \"\", \"WsPath\": \"/ws\"}\n");
    assert_int_equal(fclose(f), 0);
}

/* Reads the server's stdout until it said both ports. */
static void read_ports(int fd, int *tcp, int *ws)
{
    char text[1024] = "";
    size_t len = 0;
    uint64_t end = now_ms() + 20000;
    while (*tcp == 0 || *ws == 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(end > now_ms() ? end - now_ms() : 0);
        if (left == 0 || poll(&p, 1, left) <= 0)
            fail_msg("zinx-mmo did not print its ports: %s", text);
        ssize_t n = read(fd, text + len, sizeof(text) - 1 - len);
        if (n <= 0)
            fail_msg("zinx-mmo ended before its ports: %s", text);
        len += (size_t)n;
        text[len] = '\0';
        const char *at = strstr(text, "listening on 127.0.0.1:");
        if (at != NULL && strchr(at, '\n') != NULL)
            *tcp = atoi(at + strlen("listening on 127.0.0.1:"));
        at = strstr(text, "map on http://127.0.0.1:");
        if (at != NULL && strchr(at, '\n') != NULL)
            *ws = atoi(at + strlen("map on http://127.0.0.1:"));
    }
}

static pid_t start_server(const char *config, int *out_fd)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    assert_int_equal(setenv("ZINX_CONFIG_FILE_PATH", config, 1), 0);
    char *argv[] = {(char *)MMO_SERVER_PATH, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, MMO_SERVER_PATH, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    unsetenv("ZINX_CONFIG_FILE_PATH");
    close(fds[1]);
    assert_int_equal(rc, 0);
    *out_fd = fds[0];
    return pid;
}

static pid_t spawn_argv(char **argv)
{
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
    return pid;
}

static void test_map_shows_moving_players(void **state)
{
    (void)state;
    need_peers();
    char config[256];
    write_config(config, sizeof(config));
    int out = -1, tcp = 0, ws = 0;
    server_pid = start_server(config, &out);
    read_ports(out, &tcp, &ws);

    char port[16];
    snprintf(port, sizeof(port), "%d", tcp);
    char *bots[] = {(char *)MMO_BOTS_PATH,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    port,
                    "--players",
                    PLAYERS,
                    "--duration",
                    "20",
                    "--move-hz",
                    "5",
                    NULL};
    bots_pid = spawn_argv(bots);

    char url[64], script[600];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ws);
    snprintf(script, sizeof(script), "%s/tests/node/mmo_map.js",
             ZINX_SOURCE_DIR);
    char *node[] = {"/usr/bin/env",      "node", script, url, PLAYERS,
                    (char *)MMO_MAP_PNG, NULL};
    pid_t node_pid = spawn_argv(node);
    int node_rc = wait_exit(node_pid, 58000);
    if (node_rc < 0)
        end_process(&node_pid);

    end_process(&bots_pid);
    kill(server_pid, SIGTERM);
    int server_rc = wait_exit(server_pid, 15000);
    if (server_rc < 0)
        end_process(&server_pid);
    server_pid = -1;
    /* The server's last line: its counts. */
    char tail[2048] = "";
    ssize_t n = read(out, tail, sizeof(tail) - 1);
    tail[n > 0 ? n : 0] = '\0';
    close(out);
    assert_int_equal(node_rc, 0);
    assert_int_equal(server_rc, 0);
    assert_non_null(strstr(tail, "mmo: joined="));
}

static int teardown(void **state)
{
    (void)state;
    end_process(&bots_pid);
    end_process(&server_pid);
    if (dir[0] != '\0') {
        char path[200];
        snprintf(path, sizeof(path), "%s/zinx.json", dir);
        unlink(path);
        rmdir(dir);
    }
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_map_shows_moving_players, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
