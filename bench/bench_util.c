/*
 * zinx-bench helpers: clock, sockets and readings of another process's
 * figures from /proc.
 */
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_s(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec ts = {
        .tv_sec = (time_t)seconds,
        .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9),
    };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

void bench_fatal(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, BENCH_PROG ": FAILED: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Thousands of connections need thousands of descriptors. */
void bench_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, BENCH_PROG ": cannot raise RLIMIT_NOFILE: %s\n",
                strerror(errno));
}

int bench_resolve(const char *host, const char *port, bench_addr_t *out)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;

    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, BENCH_PROG ": cannot resolve %s:%s: %s\n", host, port,
                gai_strerror(rc));
        return -1;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    out->family = res->ai_family;
    freeaddrinfo(res);
    return 0;
}

int bench_connect(const bench_addr_t *a)
{
    int one = 1;
    int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    while (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        if (errno == EINTR)
            continue;
        int err = errno;
        close(fd);
        return -err;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int bench_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

int bench_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;

    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int bench_read_all(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r == 0)
            return -EPIPE;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* utime + stime and minor faults of the whole process, from
   /proc/PID/stat. */
static int read_stat(pid_t pid, bench_proc_t *out)
{
    char path[64], line[1024];
    unsigned long long minflt = 0, ut = 0, st = 0;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    char *ok = fgets(line, sizeof line, fp);
    fclose(fp);
    /* The command name may hold spaces and parentheses: skip past the
       last ')', then fields 3 .. 9; 10 is minflt, 14 and 15 the times. */
    char *p = ok != NULL ? strrchr(line, ')') : NULL;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu",
               &minflt, &ut, &st) != 3)
        return -1;
    out->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    out->minflt = minflt;
    return 0;
}

/* Adds the value of every "key:" line of a status file to *sum. */
static void add_status_keys(const char *path, const char *const *keys,
                            size_t nkeys, long long *sum)
{
    char line[256];
    FILE *fp = fopen(path, "r");

    if (fp == NULL)
        return;
    while (fgets(line, sizeof line, fp) != NULL) {
        for (size_t i = 0; i < nkeys; i++) {
            size_t kl = strlen(keys[i]);
            if (strncmp(line, keys[i], kl) == 0 && line[kl] == ':')
                *sum += strtoll(line + kl + 1, NULL, 10);
        }
    }
    fclose(fp);
}

/* Context switches of every live thread of pid. */
static uint64_t read_ctxsw(pid_t pid)
{
    static const char *const keys[] = {"voluntary_ctxt_switches",
                                       "nonvoluntary_ctxt_switches"};
    char path[300];
    long long sum = 0;

    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.32s/status", (int)pid,
                 e->d_name);
        add_status_keys(path, keys, 2, &sum);
    }
    closedir(d);
    return (uint64_t)sum;
}

int bench_proc_read(pid_t pid, bench_proc_t *out)
{
    static const char *const rss_key[] = {"VmRSS"};
    char path[64];
    long long rss = 0;

    memset(out, 0, sizeof *out);
    if (read_stat(pid, out) != 0)
        return -1;
    out->ctxsw = read_ctxsw(pid);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    add_status_keys(path, rss_key, 1, &rss);
    out->rss_kib = (long)rss;
    return 0;
}

long bench_proc_nfds(pid_t pid)
{
    char path[64];
    long n = 0;

    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

double bench_self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}
