/*
 * Connection-rate mode: each thread repeats connect, one echo, close, as
 * fast as it can, with blocking sockets. The latency recorded is that of
 * the whole cycle.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench.h"

#define IO_TIMEOUT_S 5
#define ERRORS_SHOWN 5
/* A server that refuses everything must not keep us spinning. */
#define ERRORS_MAX 1000

enum { PHASE_WARMUP, PHASE_MEASURE, PHASE_STOP };

typedef struct cr_worker {
    const bench_opts_t *o;
    const bench_addr_t *a;
    const bench_frame_t *f;
    const atomic_int *phase;
    uint32_t index;
    uint64_t quota; /* cycles, count mode; UINT64_MAX by time */
    uint8_t *buf;   /* two frames: sent and received */
    bool measuring;
    uint64_t cycles, errors;
    uint64_t done_ns;
    bench_hist_t lat;
    pthread_t thread;
} cr_worker_t;

static void cycle_error(cr_worker_t *w, const char *what, int err)
{
    if (w->errors < ERRORS_SHOWN)
        fprintf(stderr, BENCH_PROG ": thread %u: %s: %s\n", w->index, what,
                err == EPIPE ? "the server closed the connection"
                             : strerror(err));
    w->errors++;
    if (err == EADDRNOTAVAIL)
        bench_sleep_s(0.001); /* out of local ports: let TIME_WAIT age */
}

/* One connect, echo, close. Returns 0 or a positive errno. */
static int one_cycle(cr_worker_t *w, uint64_t seq)
{
    const bench_frame_t *f = w->f;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    int fd = bench_connect(w->a);

    if (fd < 0) {
        cycle_error(w, "connect", -fd);
        return -fd;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    bench_frame_build(f, w->index, seq, w->buf);
    int rc = bench_write_all(fd, w->buf, f->size);
    if (rc == 0)
        rc = bench_read_all(fd, w->buf + f->size, f->size);
    close(fd);
    if (rc != 0) {
        cycle_error(w, "echo", -rc);
        return -rc;
    }
    bench_frame_check(f, w->index, seq, w->buf + f->size);
    return 0;
}

static void *cr_main(void *arg)
{
    cr_worker_t *w = arg;

    for (uint64_t seq = 0; seq < w->quota && w->errors < ERRORS_MAX; seq++) {
        int ph = atomic_load_explicit(w->phase, memory_order_acquire);
        if (ph == PHASE_STOP)
            break;
        if (ph == PHASE_MEASURE && !w->measuring) {
            w->measuring = true;
            w->cycles = 0;
            bench_hist_init(&w->lat);
        }
        uint64_t t0 = bench_now_ns();
        if (one_cycle(w, seq) == 0 && w->measuring) {
            w->cycles++;
            bench_hist_record(&w->lat, bench_now_ns() - t0);
        }
    }
    w->done_ns = bench_now_ns();
    return NULL;
}

static void read_server(const bench_opts_t *o, bench_proc_t *p)
{
    if (o->pid > 0 && bench_proc_read(o->pid, p) != 0)
        memset(p, 0, sizeof *p);
}

static void drive(const bench_opts_t *o, cr_worker_t *ws, atomic_int *phase,
                  bench_result_t *r)
{
    bench_proc_t p0, p1;
    uint64_t t0, t1;
    double c0;

    if (o->count == 0)
        bench_sleep_s(o->warmup);
    read_server(o, &p0);
    c0 = bench_self_cpu_s();
    t0 = bench_now_ns();
    atomic_store_explicit(phase, PHASE_MEASURE, memory_order_release);
    if (o->count == 0) {
        bench_sleep_s(o->duration);
        atomic_store_explicit(phase, PHASE_STOP, memory_order_release);
    }
    t1 = bench_now_ns();
    for (unsigned i = 0; i < o->threads; i++)
        pthread_join(ws[i].thread, NULL);
    if (o->count > 0)
        for (unsigned i = 0; i < o->threads; i++)
            if (ws[i].done_ns > t1)
                t1 = ws[i].done_ns;
    read_server(o, &p1);
    r->client_cpu_s = bench_self_cpu_s() - c0;
    r->elapsed_s = (double)(t1 - t0) / 1e9;
    r->server_known = o->pid > 0 && p0.cpu_s > 0;
    r->server_delta.cpu_s = p1.cpu_s - p0.cpu_s;
    r->server_delta.ctxsw = p1.ctxsw - p0.ctxsw;
    r->server_delta.minflt = p1.minflt - p0.minflt;
    r->server_delta.rss_kib = p1.rss_kib;
}

int bench_connrate(const bench_opts_t *o, const bench_addr_t *a,
                   const bench_frame_t *f, bench_result_t *r)
{
    cr_worker_t *ws = calloc(o->threads, sizeof *ws);
    /* Count runs measure from the first cycle; the warm-up is skipped. */
    atomic_int phase = o->count > 0 ? PHASE_MEASURE : PHASE_WARMUP;

    if (ws == NULL)
        return -1;
    for (unsigned i = 0; i < o->threads; i++) {
        cr_worker_t *w = &ws[i];
        w->o = o;
        w->a = a;
        w->f = f;
        w->phase = &phase;
        w->index = i;
        w->quota = UINT64_MAX;
        if (o->count > 0)
            w->quota =
                o->count / o->threads + (i < o->count % o->threads ? 1u : 0u);
        bench_hist_init(&w->lat);
        w->buf = malloc(2 * f->size);
        if (w->buf == NULL)
            bench_fatal("out of memory");
    }
    for (unsigned i = 0; i < o->threads; i++)
        if (pthread_create(&ws[i].thread, NULL, cr_main, &ws[i]) != 0)
            bench_fatal("cannot create a thread");
    drive(o, ws, &phase, r);
    for (unsigned i = 0; i < o->threads; i++) {
        r->frames += ws[i].cycles;
        r->errors += ws[i].errors;
        bench_hist_merge(&r->lat, &ws[i].lat);
        free(ws[i].buf);
    }
    free(ws);
    return 0;
}
