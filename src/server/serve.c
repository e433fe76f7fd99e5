/*
 * Serving: the caller's thread waits for a stop request (zinx_server_stop,
 * SIGINT, SIGTERM) and carries out the stop; SIGHUP reopens the log.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal.h"

/* Reads one signal from sigfd. Returns true when it asks for a stop;
   SIGHUP reopens the log file instead, as nginx and most daemons do, so
   that log rotation by rename works. */
static bool handle_signal(zinx_server_t *s, int sigfd)
{
    struct signalfd_siginfo si;
    if (read(sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return false;
    if (si.ssi_signo == SIGHUP) {
        zinx_server_reopen_log(s);
        return false;
    }
    ZINX__LOG(s, ZINX_LOG_INFO, "signal %u received", si.ssi_signo);
    return true;
}

static void wait_stop_request(zinx_server_t *s, int sigfd)
{
    struct pollfd pfd[2] = {{.fd = s->stop_efd, .events = POLLIN},
                            {.fd = sigfd, .events = POLLIN}};
    for (;;) {
        int n = poll(pfd, sigfd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (pfd[0].revents & POLLIN))
            return;
        if (sigfd >= 0 && (pfd[1].revents & POLLIN) && handle_signal(s, sigfd))
            return;
    }
}

int zinx_server_wait(zinx_server_t *s)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (zinx__server_is_new(s))
        return ZINX_ESTATE;
    if (zinx__server_is_framework_thread(s))
        return ZINX_EDEADLK;
    if (atomic_load(&s->state) == ZINX__SERVER_RUNNING)
        wait_stop_request(s, -1);
    zinx__server_shutdown(s);
    return 0;
}

/* Consumes signals that arrived during the stop, so unblocking them
   afterwards does not kill a process that stopped cleanly. */
static void drain_signals(int sigfd)
{
    struct signalfd_siginfo si;
    while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    }
}

static bool sigpipe_pending(void)
{
    sigset_t pending;
    return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

/* Takes back a SIGPIPE raised on this thread while serve() blocked it
   (by a write of the program's or the library's), so that restoring the
   caller's mask cannot kill a server that stopped cleanly. */
static void consume_sigpipe(void)
{
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
    }
}

int zinx_server_serve(zinx_server_t *s)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (zinx__server_is_framework_thread(s))
        return ZINX_EDEADLK;
    /* The stop signals and SIGHUP are read from sigfd; SIGPIPE is only
       blocked, so that no write of this thread can die of it. */
    sigset_t sigs, masked, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    masked = sigs;
    sigaddset(&masked, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &masked, &old);
    bool pipe_was_pending = sigpipe_pending();
    int sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    int rc = zinx__server_is_new(s) ? zinx_server_start(s) : 0;
    if (rc == 0) {
        if (atomic_load(&s->state) == ZINX__SERVER_RUNNING)
            wait_stop_request(s, sigfd);
        zinx__server_shutdown(s);
    }
    if (sigfd >= 0) {
        drain_signals(sigfd);
        close(sigfd);
    }
    if (!pipe_was_pending)
        consume_sigpipe();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
