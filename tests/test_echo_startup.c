/*
 * zinx-echo and a stop request during start-up: SIGTERM that arrives
 * while the program is still loading its configuration must stop it
 * cleanly (exit 0), not kill it.
 *
 * The program is held inside its configuration load deterministically:
 * the configuration has an unknown key, so the loader writes a warning
 * to stderr, and stderr is a pipe this test filled beforehand. The write
 * blocks until the test drains the pipe; /proc/PID/syscall shows when
 * the program sits in write(2, ...). (A FIFO as the configuration file
 * cannot do this: the loader opens it non-blocking and refuses anything
 * but a regular file.)
 *
 * ZINX_ECHO_PATH, the built zinx-echo, comes from CMake; without the
 * examples the test is skipped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 30000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Fills the pipe behind fd until a write would block, then makes fd
   blocking again (the flag is shared with the child's copy). */
static void fill_pipe(int fd)
{
    static const char junk[4096];
    int flags = fcntl(fd, F_GETFL);
    assert_int_equal(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
    while (write(fd, junk, sizeof(junk)) > 0) {
    }
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    assert_int_equal(fcntl(fd, F_SETFL, flags), 0);
}

/* True while pid is blocked in write(2, ...): "1 0x2 ..." (x86-64) or
   "64 0x2 ..." (arm64, where write is 64). */
static bool blocked_writing_stderr(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool yes =
        fgets(buf, sizeof(buf), f) != NULL &&
        (strncmp(buf, "1 0x2 ", 6) == 0 || strncmp(buf, "64 0x2 ", 7) == 0);
    fclose(f);
    return yes;
}

static void write_config(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"Host\":\"127.0.0.1\",\"TCPPort\":0,\"ZinxTestPause\":1}\n", f);
    assert_int_equal(fclose(f), 0);
}

static void test_sigterm_during_config_load(void **state)
{
    (void)state;
#ifndef ZINX_ECHO_PATH
    skip();
#else
    char dir[PATH_MAX], conf[PATH_MAX + 16], env[PATH_MAX + 64];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/zinx-test-echo-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/zinx.json", dir);
    write_config(conf);
    snprintf(env, sizeof(env), "ZINX_CONFIG_FILE_PATH=%s", conf);
    char *envp[] = {env, NULL};

    int err_pipe[2];
    assert_int_equal(pipe(err_pipe), 0);
    fill_pipe(err_pipe[1]);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDWR);
        if (null_fd < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
            dup2(null_fd, STDIN_FILENO) < 0 ||
            dup2(err_pipe[1], STDERR_FILENO) < 0)
            _exit(126);
        close(err_pipe[0]);
        execle(ZINX_ECHO_PATH, "zinx-echo", (char *)NULL, envp);
        _exit(127);
    }
    close(err_pipe[1]);
    int waited = 0;
    while (!blocked_writing_stderr(pid) && waited < WAIT_MS) {
        sleep_ms(2);
        waited += 2;
    }
    bool paused = blocked_writing_stderr(pid);
    kill(pid, paused ? SIGTERM : SIGKILL);
    /* Let it go on: drain its stderr until it exits. */
    char buf[4096];
    ssize_t n;
    while ((n = read(err_pipe[0], buf, sizeof(buf))) != 0) {
        if (n < 0 && errno != EINTR)
            break;
    }
    close(err_pipe[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(conf);
    rmdir(dir);
    assert_true(paused);
    if (WIFSIGNALED(status))
        print_error("zinx-echo was killed by signal %d\n", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_during_config_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
