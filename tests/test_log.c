/*
 * The logger: rate limits of repeated kinds, rotation by LogFileSize and
 * retention by LogSaveDays, LogCons, and signals at the server's edges:
 * a closed stderr pipe at shutdown (SIGPIPE) and SIGHUP reopening the
 * log file.
 *
 * Servers that must take signals run in forked children. Every fork
 * happens while this program has no other thread (each test frees its
 * servers, joining their threads, before the next one starts), so the
 * children may do anything.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define WAIT_MS 20000
#define LOG_LINE_CAP 1200

/* ---- helpers ---- */

static void make_temp_dir(char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/zinx-test-log-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(out));
}

/* out = dir/name; a test path never needs cutting. */
static void join_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

/* Removes dir and the plain files in it. */
static void remove_temp_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    rmdir(dir);
}

/* Reads a whole file into a new NUL-terminated buffer (NULL if none). */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            char *bigger = realloc(buf, cap + 1);
            if (bigger == NULL)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static bool file_contains(const char *path, const char *needle)
{
    char *text = read_text(path, NULL);
    bool found = text != NULL && strstr(text, needle) != NULL;
    free(text);
    return found;
}

static bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A quiet loopback server configuration; level 0 logs everything. */
static void base_config(zinx_config_t *cfg)
{
    zinx_config_default(cfg);
    snprintf(cfg->host, sizeof(cfg->host), "%s", "127.0.0.1");
    cfg->tcp_port = 0;
    cfg->io_threads = 1;
    cfg->worker_pool_size = 0;
    cfg->log_isolation_level = 0;
}

static void log_config(zinx_config_t *cfg, const char *dir, const char *file)
{
    base_config(cfg);
    snprintf(cfg->log_dir, sizeof(cfg->log_dir), "%s", dir);
    snprintf(cfg->log_file, sizeof(cfg->log_file), "%s", file);
}

/* Describes a wait status for a failure message. */
static void expect_clean_exit(int status, const char *what)
{
    if (WIFSIGNALED(status))
        print_error("%s: killed by signal %d\n", what, WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        print_error("%s: exit status %d\n", what, WEXITSTATUS(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- rate limits ---- */

#define CAPTURE_MAX 16

typedef struct capture {
    int count;
    char lines[CAPTURE_MAX][LOG_LINE_CAP];
} capture_t;

static void capture_sink(zinx_log_level_t level, const char *message,
                         void *udata)
{
    (void)level;
    capture_t *c = udata;
    if (c->count < CAPTURE_MAX) {
        size_t n = strlen(message);
        n = n < sizeof(c->lines[0]) - 1 ? n : sizeof(c->lines[0]) - 1;
        memcpy(c->lines[c->count], message, n);
        c->lines[c->count][n] = '\0';
    }
    c->count++;
}

/* The N of "(N more like this ...)" or "N more ... suppressed", or 0. */
static unsigned long long suppressed_in(const char *line)
{
    const char *p = strstr(line, "(");
    if (p != NULL && strstr(p, "more like this suppressed") != NULL)
        return strtoull(p + 1, NULL, 10);
    if (strstr(line, "suppressed") != NULL)
        return strtoull(line, NULL, 10);
    return 0;
}

static void test_rate_limit_one_kind(void **state)
{
    (void)state;
    capture_t cap = {0};
    zinx_server_t *s = zinx_server_new(NULL);
    assert_non_null(s);
    assert_int_equal(zinx_server_set_log_sink(s, capture_sink, &cap), 0);
    const int total = 10000;
    for (int i = 0; i < total; i++)
        ZINX__LOG_LIMITED(s, ZINX__LOGK_OOM, ZINX_LOG_WARN,
                          "out of memory (attempt %d)", i);
    int during = cap.count;
    assert_true(during >= 1 && during <= 2);
    assert_string_equal(cap.lines[0], "out of memory (attempt 0)");
    /* Another kind has its own allowance. */
    ZINX__LOG_LIMITED(s, ZINX__LOGK_TIMEOUT, ZINX_LOG_WARN, "timeout");
    assert_int_equal(cap.count, during + 1);
    zinx_server_free(s);
    /* Every record is accounted for: emitted, or counted as suppressed
       by a later record or by the report at close. */
    assert_true(cap.count <= CAPTURE_MAX);
    unsigned long long reported = 0;
    for (int i = 0; i < cap.count; i++)
        reported += suppressed_in(cap.lines[i]);
    assert_int_equal(reported, (unsigned long long)(total - during));
    assert_non_null(strstr(cap.lines[cap.count - 1], "out-of-memory"));
}

static void test_rate_limit_filtered_level(void **state)
{
    (void)state;
    capture_t cap = {0};
    zinx_config_t cfg;
    base_config(&cfg);
    cfg.log_isolation_level = 2; /* warnings and errors only */
    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    assert_int_equal(zinx_server_set_log_sink(s, capture_sink, &cap), 0);
    for (int i = 0; i < 100; i++)
        ZINX__LOG_LIMITED(s, ZINX__LOGK_DEAD_PEER, ZINX_LOG_INFO, "dead");
    zinx_server_free(s);
    /* Filtered records are neither emitted nor counted. */
    assert_int_equal(cap.count, 0);
}

/* ---- rotation and retention ---- */

#define ROTATE_SIZE 4096
#define ROTATE_LINES 600

/* Sets path's modification time days back from now. */
static void age_file(const char *path, int days)
{
    struct timespec times[2];
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= (time_t)days * 86400;
    times[1] = times[0];
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void make_old_file(const char *dir, const char *name, int days)
{
    char path[PATH_MAX];
    join_path(path, sizeof(path), dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
    age_file(path, days);
}

static bool exists_in(const char *dir, const char *name)
{
    char path[PATH_MAX];
    join_path(path, sizeof(path), dir, name);
    return path_exists(path);
}

/*
 * Checks that text holds whole records only, and marks the "line NNNNN"
 * markers it holds in seen[].
 */
static void check_records(const char *text, size_t len, int *seen)
{
    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    const char *p = text;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        /* Every record starts with its timestamp: "20YY-". */
        assert_true(nl - p > 25 && p[0] == '2' && p[4] == '-');
        const char *m = strstr(p, "rotation line ");
        if (m != NULL && m < nl) {
            int n = atoi(m + strlen("rotation line "));
            assert_true(n >= 0 && n < ROTATE_LINES);
            seen[n]++;
        }
        p = nl + 1;
    }
}

/* Checks every rotated file of "r.log" in dir; returns how many. */
static int check_rotated_files(const char *dir, int *seen)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "r.log.", 6) != 0)
            continue;
        /* r.log.YYYYmmdd-HHMMSS[.N] */
        assert_true(strlen(e->d_name) >= 6 + 15);
        assert_int_equal(e->d_name[6 + 8], '-');
        char path[PATH_MAX];
        join_path(path, sizeof(path), dir, e->d_name);
        size_t len;
        char *text = read_text(path, &len);
        assert_non_null(text);
        assert_true(len <= ROTATE_SIZE);
        check_records(text, len, seen);
        free(text);
        count++;
    }
    closedir(d);
    return count;
}

static void test_rotation_and_retention(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    make_temp_dir(dir, sizeof(dir));
    /* Old enough to go at open; a look-alike of another log stays. */
    make_old_file(dir, "r.log.19990101-000000", 40);
    make_old_file(dir, "other.log.19990101-000000", 40);
    make_old_file(dir, "r.log.notes", 40);
    zinx_config_t cfg;
    log_config(&cfg, dir, "r.log");
    cfg.log_file_size = ROTATE_SIZE;
    cfg.log_save_days = 31;
    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    assert_int_equal(zinx_server_start(s), 0);
    assert_false(exists_in(dir, "r.log.19990101-000000"));
    assert_true(exists_in(dir, "other.log.19990101-000000"));
    assert_true(exists_in(dir, "r.log.notes"));
    char notes[PATH_MAX];
    join_path(notes, sizeof(notes), dir, "r.log.notes");
    unlink(notes); /* out of the way of the checks below */

    /* A rotated file 40 days old goes at the next rotation; one 10 days
       old stays. */
    make_old_file(dir, "r.log.20000101-000000.3", 40);
    make_old_file(dir, "r.log.20000102-000000", 10);
    for (int i = 0; i < ROTATE_LINES; i++)
        zinx_server_log(s, ZINX_LOG_INFO, "rotation line %05d %s", i,
                        "padding padding padding padding");
    zinx_server_free(s);
    assert_false(exists_in(dir, "r.log.20000101-000000.3"));
    assert_true(exists_in(dir, "r.log.20000102-000000"));
    char keep[PATH_MAX];
    join_path(keep, sizeof(keep), dir, "r.log.20000102-000000");
    unlink(keep);

    int seen[ROTATE_LINES] = {0};
    char path[PATH_MAX];
    join_path(path, sizeof(path), dir, "r.log");
    size_t len;
    char *text = read_text(path, &len);
    assert_non_null(text);
    /* One record of ~120 bytes may pass the limit only in a new file. */
    assert_true(len <= ROTATE_SIZE);
    check_records(text, len, seen);
    free(text);
    int rotated = check_rotated_files(dir, seen);
    /* ~70 KiB of records in 4 KiB files. */
    assert_true(rotated >= 10);
    for (int i = 0; i < ROTATE_LINES; i++)
        assert_int_equal(seen[i], 1);
    remove_temp_dir(dir);
}

/* ---- LogCons ---- */

static void test_log_cons_copies_to_stderr(void **state)
{
    (void)state;
    char dir[PATH_MAX], err_path[PATH_MAX], log_path[PATH_MAX];
    make_temp_dir(dir, sizeof(dir));
    join_path(err_path, sizeof(err_path), dir, "stderr.txt");
    join_path(log_path, sizeof(log_path), dir, "c.log");
    zinx_config_t cfg;
    log_config(&cfg, dir, "c.log");
    cfg.log_cons = 1;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(3);
        zinx_server_t *s = zinx_server_new(&cfg);
        if (s == NULL || zinx_server_start(s) != 0)
            _exit(4);
        zinx_server_log(s, ZINX_LOG_WARN, "console copy marker");
        zinx_server_free(s);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    expect_clean_exit(status, "LogCons child");
    assert_true(file_contains(log_path, "console copy marker"));
    assert_true(file_contains(err_path, "console copy marker"));
    /* The same record, timestamp and all. */
    assert_true(file_contains(err_path, "[WARN]"));
    remove_temp_dir(dir);
}

/* ---- signals: SIGPIPE at shutdown, SIGHUP ---- */

/*
 * Child side: blocks the signals the parent will send before telling it
 * the port (a program must, or a signal between start and serve kills
 * it), starts the server, reports the port on port_fd and serves.
 */
static void run_child_server(const zinx_config_t *cfg, int port_fd)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    zinx_server_t *s = zinx_server_new(cfg);
    if (s == NULL || zinx_server_start(s) != 0)
        _exit(4);
    int port = zinx_server_port(s);
    if (write(port_fd, &port, sizeof(port)) != (ssize_t)sizeof(port))
        _exit(5);
    close(port_fd);
    int rc = zinx_server_serve(s);
    zinx_server_free(s);
    _exit(rc == 0 ? 0 : 6);
}

/* Parent side: the child's port, or fails with how the child ended. */
static int read_child_port(pid_t pid, int port_fd)
{
    int port = 0;
    ssize_t n;
    do {
        n = read(port_fd, &port, sizeof(port));
    } while (n < 0 && errno == EINTR);
    close(port_fd);
    if (n != (ssize_t)sizeof(port)) {
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        expect_clean_exit(status, "server child before listening");
        fail_msg("the child exited before reporting its port");
    }
    return port;
}

static void test_closed_stderr_pipe_at_shutdown(void **state)
{
    (void)state;
    int err_pipe[2], port_pipe[2];
    assert_int_equal(pipe(err_pipe), 0);
    assert_int_equal(pipe(port_pipe), 0);
    zinx_config_t cfg;
    base_config(&cfg);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(port_pipe[0]);
        close(err_pipe[0]);
        if (dup2(err_pipe[1], STDERR_FILENO) < 0)
            _exit(3);
        close(err_pipe[1]);
        run_child_server(&cfg, port_pipe[1]);
    }
    close(err_pipe[1]);
    close(port_pipe[1]);
    assert_true(read_child_port(pid, port_pipe[0]) > 0);
    /* The log shipper goes away: every write to the pipe now fails with
       EPIPE. serve() logs "signal 15 received" to it, then stops. */
    close(err_pipe[0]);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    expect_clean_exit(status, "server with a closed stderr pipe");
}

static bool child_running(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

static void test_sighup_reopens_log(void **state)
{
    (void)state;
    char dir[PATH_MAX], log_path[PATH_MAX], moved[PATH_MAX];
    make_temp_dir(dir, sizeof(dir));
    join_path(log_path, sizeof(log_path), dir, "h.log");
    join_path(moved, sizeof(moved), dir, "h.log.moved");
    int port_pipe[2];
    assert_int_equal(pipe(port_pipe), 0);
    zinx_config_t cfg;
    log_config(&cfg, dir, "h.log");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(port_pipe[0]);
        run_child_server(&cfg, port_pipe[1]);
    }
    close(port_pipe[1]);
    assert_true(read_child_port(pid, port_pipe[0]) > 0);
    assert_int_equal(rename(log_path, moved), 0);
    assert_int_equal(kill(pid, SIGHUP), 0);
    int waited = 0;
    while (!path_exists(log_path) && child_running(pid) && waited < WAIT_MS) {
        sleep_ms(5);
        waited += 5;
    }
    bool reopened = path_exists(log_path);
    bool alive = child_running(pid);
    kill(pid, alive ? SIGTERM : SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(alive);
    assert_true(reopened);
    expect_clean_exit(status, "server after SIGHUP");
    assert_true(file_contains(log_path, "log reopened"));
    assert_true(file_contains(log_path, "signal 15 received"));
    assert_true(file_contains(moved, "listening on"));
    assert_false(file_contains(moved, "log reopened"));
    remove_temp_dir(dir);
}

/* zinx_server_reopen_log() is a no-op without a file. */
static void test_reopen_without_file(void **state)
{
    (void)state;
    capture_t cap = {0};
    zinx_config_t cfg;
    base_config(&cfg);
    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    assert_int_equal(zinx_server_set_log_sink(s, capture_sink, &cap), 0);
    assert_int_equal(zinx_server_reopen_log(s), 0);
    assert_int_equal(zinx_server_reopen_log(NULL), ZINX_EINVAL);
    zinx_server_free(s);
    assert_int_equal(cap.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_limit_one_kind),
        cmocka_unit_test(test_rate_limit_filtered_level),
        cmocka_unit_test(test_rotation_and_retention),
        cmocka_unit_test(test_log_cons_copies_to_stderr),
        cmocka_unit_test(test_closed_stderr_pipe_at_shutdown),
        cmocka_unit_test(test_sighup_reopens_log),
        cmocka_unit_test(test_reopen_without_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
