/*
 * Hold mode: open N connections and leave them idle, optionally after
 * one echo each, and report how much the server's RSS grew per
 * connection. The server is known to have accepted every connection when
 * its descriptor count has grown by N; its RSS is read once it has
 * stopped moving.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench.h"

#define ACCEPT_WAIT_S 20.0
#define SETTLE_MAX_S 5.0
#define SETTLE_STEP_S 0.1
#define SETTLE_STABLE 5 /* equal readings in a row */
#define IO_TIMEOUT_S 10

typedef struct hold_report {
    unsigned opened;
    uint64_t errors;
    long rss0, rss_idle, rss_echo; /* KiB; -1 when unknown */
    long fds0;
} hold_report_t;

static long rss_of(pid_t pid)
{
    bench_proc_t p;

    if (pid <= 0 || bench_proc_read(pid, &p) != 0)
        return -1;
    return p.rss_kib;
}

/* Waits until RSS has kept the same value for a while. */
static long settled_rss(pid_t pid)
{
    long last = rss_of(pid);
    int same = 0;

    for (double t = 0; t < SETTLE_MAX_S && same < SETTLE_STABLE;
         t += SETTLE_STEP_S) {
        bench_sleep_s(SETTLE_STEP_S);
        long now = rss_of(pid);
        same = now == last ? same + 1 : 0;
        last = now;
    }
    return last;
}

static void wait_accepted(pid_t pid, long want)
{
    if (pid <= 0) {
        bench_sleep_s(0.5);
        return;
    }
    for (double t = 0; t < ACCEPT_WAIT_S; t += 0.05) {
        if (bench_proc_nfds(pid) >= want)
            return;
        bench_sleep_s(0.05);
    }
    fprintf(stderr,
            BENCH_PROG ": the server holds %ld descriptors, expected %ld\n",
            bench_proc_nfds(pid), want);
}

static unsigned open_all(const bench_opts_t *o, const bench_addr_t *a, int *fds,
                         hold_report_t *rep)
{
    unsigned n = 0;

    for (; n < o->connections; n++) {
        int fd = bench_connect(a);
        if (fd < 0) {
            fprintf(stderr, BENCH_PROG ": connect (connection %u): %s\n", n,
                    strerror(-fd));
            rep->errors++;
            break;
        }
        fds[n] = fd;
    }
    return n;
}

/* One frame out on every connection, then every echo back and checked. */
static void echo_once(const bench_frame_t *f, const int *fds, unsigned n,
                      hold_report_t *rep)
{
    uint8_t *buf = malloc(f->size);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};

    if (buf == NULL)
        bench_fatal("out of memory");
    for (unsigned i = 0; i < n; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        bench_frame_build(f, i, 0, buf);
        if (bench_write_all(fds[i], buf, f->size) != 0)
            rep->errors++;
    }
    for (unsigned i = 0; i < n; i++) {
        int rc = bench_read_all(fds[i], buf, f->size);
        if (rc != 0) {
            if (rep->errors++ < 5)
                fprintf(stderr, BENCH_PROG ": echo on connection %u: %s\n", i,
                        strerror(-rc));
            continue;
        }
        bench_frame_check(f, i, 0, buf);
    }
    free(buf);
}

static double per_conn(long after, long before, unsigned n)
{
    if (after < 0 || before < 0 || n == 0)
        return -1;
    return (double)(after - before) / n;
}

static void print_report(const bench_opts_t *o, const hold_report_t *r)
{
    double idle = per_conn(r->rss_idle, r->rss0, r->opened);
    double echo = per_conn(r->rss_echo, r->rss0, r->opened);

    if (o->json) {
        printf("{\"mode\":\"hold\",\"host\":\"%s\",\"port\":\"%s\","
               "\"connections\":%u,\"opened\":%u,\"pid\":%d,"
               "\"rss_before_kib\":%ld,\"rss_idle_kib\":%ld,"
               "\"idle_kib_per_conn\":%.3f,\"rss_echo_kib\":%ld,"
               "\"echo_kib_per_conn\":%.3f,\"errors\":%llu}\n",
               o->host, o->port, o->connections, r->opened, (int)o->pid,
               r->rss0, r->rss_idle, idle, r->rss_echo, echo,
               (unsigned long long)r->errors);
        return;
    }
    printf("hold        %u of %u connections open to %s:%s\n", r->opened,
           o->connections, o->host, o->port);
    if (o->pid > 0) {
        printf("server RSS  %ld KiB before, %ld KiB idle: %.2f KiB per "
               "connection\n",
               r->rss0, r->rss_idle, idle);
        if (o->echo_once)
            printf("after echo  %ld KiB: %.2f KiB per connection\n",
                   r->rss_echo, echo);
    }
    printf("errors      %llu\n", (unsigned long long)r->errors);
}

int bench_hold(const bench_opts_t *o, const bench_addr_t *a,
               const bench_frame_t *f)
{
    hold_report_t rep = {.rss_echo = -1};
    uint64_t t0 = bench_now_ns();
    int *fds = calloc(o->connections, sizeof *fds);

    if (fds == NULL)
        return -1;
    rep.rss0 = settled_rss(o->pid);
    rep.fds0 = o->pid > 0 ? bench_proc_nfds(o->pid) : 0;
    rep.opened = open_all(o, a, fds, &rep);
    wait_accepted(o->pid, rep.fds0 + (long)rep.opened);
    rep.rss_idle = settled_rss(o->pid);
    if (o->echo_once) {
        echo_once(f, fds, rep.opened, &rep);
        rep.rss_echo = settled_rss(o->pid);
    }
    print_report(o, &rep);
    fflush(stdout);
    double left = o->duration - (double)(bench_now_ns() - t0) / 1e9;
    bench_sleep_s(left);
    for (unsigned i = 0; i < rep.opened; i++)
        close(fds[i]);
    free(fds);
    return rep.errors == 0 ? 0 : -1;
}
