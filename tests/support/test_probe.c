/*
 * Process and resource probes (see test_probe.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "test_probe.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* A "Key:   123 kB" (or plain number) line of /proc/self/status. */
static long status_value(const char *key)
{
    FILE *f = fopen("/proc/self/status", "re");

    if (f == NULL)
        return -1;
    char line[256];
    size_t klen = strlen(key);
    long v = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

long probe_rss_kib(void)
{
    return status_value("VmRSS");
}

long probe_vmsize_kib(void)
{
    return status_value("VmSize");
}

long probe_thread_count(void)
{
    return status_value("Threads");
}

long probe_thread_count_back(long want, int timeout_ms)
{
    long n = probe_thread_count();
    for (int waited = 0; n != want && waited < timeout_ms; waited++) {
        struct timespec ms = {.tv_sec = 0, .tv_nsec = 1000000};
        nanosleep(&ms, NULL);
        n = probe_thread_count();
    }
    return n;
}

int probe_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");

    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1;
}

/*
 * utime + stime in ms from a /proc/.../stat file, and the thread's name
 * into comm when not NULL.
 */
static long stat_file_cpu_ms(const char *path, char *comm, size_t comm_cap)
{
    FILE *f = fopen(path, "re");

    if (f == NULL)
        return -1;
    char line[1024];
    char *ok = fgets(line, sizeof(line), f);
    fclose(f);
    if (ok == NULL)
        return -1;
    /* The name may hold spaces and parentheses: it ends at the last ')'. */
    char *open_paren = strchr(line, '(');
    char *close_paren = strrchr(line, ')');
    if (open_paren == NULL || close_paren == NULL)
        return -1;
    if (comm != NULL && comm_cap > 0) {
        size_t n = (size_t)(close_paren - open_paren - 1);
        if (n >= comm_cap)
            n = comm_cap - 1;
        memcpy(comm, open_paren + 1, n);
        comm[n] = '\0';
    }
    char state;
    unsigned long ut, st;
    if (sscanf(close_paren + 1,
               " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state,
               &ut, &st) != 3)
        return -1;
    long tick = sysconf(_SC_CLK_TCK);
    return (long)((ut + st) * 1000u / (unsigned long)(tick > 0 ? tick : 100));
}

long probe_threads_cpu_ms(const char *prefix)
{
    DIR *d = opendir("/proc/self/task");

    if (d == NULL)
        return -1;
    long total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64];
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        long ms = stat_file_cpu_ms(path, comm, sizeof(comm));
        if (ms >= 0 && strncmp(comm, prefix, strlen(prefix)) == 0)
            total += ms;
    }
    closedir(d);
    return total;
}

long probe_pid_cpu_ms(pid_t pid)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    return stat_file_cpu_ms(path, NULL, 0);
}

long probe_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}
