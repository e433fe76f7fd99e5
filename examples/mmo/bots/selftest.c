/* The bots against a real server: see selftest.h. */
#include "selftest.h"

#include <errno.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "swarm.h"

#define PLAYERS 200
#define START_MS 30000 /* for the server to say it listens (sanitizers) */
#define STOP_MS 30000  /* for it to stop after SIGTERM */

extern char **environ;

typedef struct server {
    pid_t pid;
    int out;        /* its stdout */
    char buf[8192]; /* what it printed, as far as it fits */
    size_t len;
    char dir[64];
    char conf[128];
} server_t;

static long long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool write_conf(server_t *sv)
{
    strcpy(sv->dir, "/tmp/zinx-mmo-bots-XXXXXX");
    if (mkdtemp(sv->dir) == NULL)
        return false;
    snprintf(sv->conf, sizeof(sv->conf), "%s/zinx.json", sv->dir);
    FILE *f = fopen(sv->conf, "w");
    if (f == NULL)
        return false;
    fputs(
        "{\"Name\": \"zinx-mmo-selftest\", \"Host\": \"127.0.0.1\",\n"
        " \"TCPPort\": 0, \"WsPort\": 0, \"Mode\": \"\", \"WsPath\": \"/ws\",\n"
        " \"PacketFormat\": \"ltv_le\", \"LogIsolationLevel\": 2}\n",
        f);
    return fclose(f) == 0;
}

static void remove_conf(server_t *sv)
{
    if (sv->conf[0] != '\0')
        unlink(sv->conf);
    if (sv->dir[0] != '\0')
        rmdir(sv->dir);
}

/* Starts it with ZINX_CONFIG_FILE_PATH and its stdout on a pipe, the
   signals we block unblocked. */
static bool spawn_server(server_t *sv, const char *path)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    char var[200];
    snprintf(var, sizeof(var), "ZINX_CONFIG_FILE_PATH=%s", sv->conf);
    size_t k = 0;
    for (size_t i = 0; env != NULL && i < n; i++) {
        if (strncmp(environ[i], "ZINX_CONFIG_FILE_PATH=", 22) != 0)
            env[k++] = environ[i];
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    int rc = ENOMEM;
    if (env != NULL) {
        env[k] = var;
        char *argv[] = {(char *)path, NULL};
        rc = posix_spawn(&sv->pid, path, &fa, &attr, argv, env);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    close(fds[1]);
    if (rc != 0) {
        fprintf(stderr, "selftest: cannot start %s: %s\n", path, strerror(rc));
        close(fds[0]);
        return false;
    }
    sv->out = fds[0];
    return true;
}

/* Reads what the server printed, until `want` appears (NULL: until it
   closes its stdout) or deadline; each byte is echoed to our stderr. */
static bool read_until(server_t *sv, const char *want, long long deadline)
{
    for (;;) {
        sv->buf[sv->len] = '\0';
        if (want != NULL && strstr(sv->buf, want) != NULL &&
            strchr(strstr(sv->buf, want), '\n') != NULL)
            return true;
        long long left = deadline - ms_now();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = sv->out, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char chunk[1024];
        ssize_t got = read(sv->out, chunk, sizeof(chunk));
        if (got <= 0)
            return want == NULL;
        fwrite(chunk, 1, (size_t)got, stderr);
        size_t room = sizeof(sv->buf) - 1 - sv->len;
        size_t take = (size_t)got < room ? (size_t)got : room;
        memcpy(sv->buf + sv->len, chunk, take);
        sv->len += take;
    }
}

/* The port of "listening on HOST:PORT". */
static int listening_port(const server_t *sv)
{
    const char *l = strstr(sv->buf, "listening on ");
    const char *eol = l != NULL ? strchr(l, '\n') : NULL;
    const char *colon = NULL;
    for (const char *p = l; p != NULL && p < eol; p++)
        if (*p == ':')
            colon = p;
    return colon != NULL ? atoi(colon + 1) : 0;
}

static bool check(bool ok, const char *what)
{
    if (!ok)
        fprintf(stderr, "selftest: FAILED: %s\n", what);
    return ok;
}

/* The run: no error, everyone in, every kind of message seen. */
static bool check_bots(const bots_result_t *r, const bots_stats_t *s)
{
    const bots_counters_t *t = &r->total;
    bool ok = check(bots_report_ok(r, s), "the bots report errors");
    ok &= check(r->joined == PLAYERS, "not every bot got in");
    ok &= check(t->broadcast[1] > 0, "no 200 Tp 1 (chat)");
    ok &= check(t->broadcast[2] > 0, "no 200 Tp 2 (appear)");
    ok &= check(t->broadcast[4] > 0, "no 200 Tp 4 (moved)");
    ok &= check(t->leaves > 0, "no 201 (left the view)");
    ok &= check(t->sync_players > 0, "no 202 (SyncPlayers)");
    ok &= check(t->moves_confirmed > 0, "no move confirmed");
    ok &= check(t->chats_back > 0, "no chat heard back");
    ok &= check(s->run_latency.count > 0, "no latency measured");
    return ok;
}

/* The value of "key=N" in the server's last line. */
static long long count_of(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), " %s=", key);
    const char *p = strstr(line, pat);
    return p != NULL ? atoll(p + strlen(pat)) : -1;
}

static bool check_server_line(const server_t *sv)
{
    const char *line = strstr(sv->buf, "mmo: joined=");
    if (!check(line != NULL, "the server printed no count line"))
        return false;
    char copy[512];
    snprintf(copy, sizeof(copy), " %s", line + 5); /* " joined=..." */
    bool ok = check(count_of(copy, "joined") == PLAYERS,
                    "the server did not count every bot joining");
    ok &= check(count_of(copy, "left") == PLAYERS,
                "the server did not count every bot leaving");
    ok &= check(count_of(copy, "moves") > 0, "the server counted no move");
    ok &= check(count_of(copy, "chats") > 0, "the server counted no chat");
    static const char *const refused[] = {
        "refused_malformed", "refused_position", "refused_chat_size",
        "refused_chat_rate"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        ok &= check(count_of(copy, refused[i]) == 0,
                    "the server refused what a bot sent");
    return ok;
}

/* SIGTERM, then it must exit 0 within STOP_MS. */
static bool stop_server(server_t *sv)
{
    kill(sv->pid, SIGTERM);
    bool closed = read_until(sv, NULL, ms_now() + STOP_MS);
    if (!closed)
        kill(sv->pid, SIGKILL);
    int status = 0;
    waitpid(sv->pid, &status, 0);
    close(sv->out);
    bool ok = check(closed, "the server did not stop after SIGTERM");
    ok &= check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the server did not exit 0");
    return ok;
}

static bool run_bots(int port, const sigset_t *sigs)
{
    bots_options_t o = {0};
    o.host = "127.0.0.1";
    o.port = port;
    o.players = PLAYERS;
    o.duration_s = 3;
    o.move_hz = 4;
    o.chat_hz = 0.5;
    o.spawn = BOTS_SPAWN_SPREAD;
    o.connect_rate = 2000;
    bots_swarm_t *s = bots_swarm_new(&o);
    if (!check(s != NULL, "out of memory"))
        return false;
    int rc = bots_swarm_run(s, sigs);
    bool ok = check(rc == 0, "the bots' endpoint did not start");
    bots_report_print(stdout, &o, bots_swarm_result(s), bots_swarm_stats(s));
    fflush(stdout);
    ok &= check_bots(bots_swarm_result(s), bots_swarm_stats(s));
    bots_swarm_free(s);
    return ok;
}

int bots_selftest(const char *path, const sigset_t *sigs)
{
    server_t sv = {.pid = -1, .out = -1};
    if (!check(write_conf(&sv), "cannot write zinx.json") ||
        !spawn_server(&sv, path)) {
        remove_conf(&sv);
        return 1;
    }
    bool ok = check(read_until(&sv, "listening on ", ms_now() + START_MS),
                    "the server did not say it listens");
    int port = ok ? listening_port(&sv) : 0;
    ok = ok && check(port > 0, "no port in the server's first line");
    if (ok)
        ok = run_bots(port, sigs);
    ok &= stop_server(&sv);
    ok = ok && check_server_line(&sv);
    remove_conf(&sv);
    fprintf(stderr, "selftest: %s\n", ok ? "passed" : "FAILED");
    return ok ? 0 : 1;
}
