/*
 * zinx-bench: shared declarations of the load generator's parts.
 *
 * zinx_bench.c    options, main, reports
 * bench_frame.c   building and checking echoed frames
 * bench_util.c    clock, sockets, /proc readings
 * bench_pingpong.c, bench_connrate.c, bench_hold.c   the three modes
 */
#ifndef ZINX_BENCH_H
#define ZINX_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <zinx/pack.h>

#include "bench_hist.h"

#define BENCH_PROG "zinx-bench"

typedef enum bench_mode {
    BENCH_PINGPONG = 0,
    BENCH_CONNRATE = 1,
    BENCH_HOLD = 2
} bench_mode_t;

typedef struct bench_opts {
    bench_mode_t mode;
    const char *host;
    const char *port;
    unsigned connections;
    unsigned threads;
    uint32_t payload;
    unsigned depth;
    double duration; /* seconds; < 0 when not given */
    uint64_t count;  /* messages; 0 when not given */
    double warmup;   /* seconds */
    uint32_t msg_id;
    zinx_packet_format_t format;
    bool json;
    pid_t pid; /* 0: no process to watch */
    bool echo_once;
    bool proxy_header; /* pingpong: a PROXY v1 header first */
} bench_opts_t;

/* Where the server is; resolved once, before any thread starts. */
typedef struct bench_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;
} bench_addr_t;

/*
 * What every frame of a run looks like. The payload is a fixed filler
 * with a stamp at each end: connection number (u32) and sequence number
 * (u64) at the front, the sequence number mixed with the connection
 * number at the back, so that a reordered, duplicated, truncated or
 * spliced frame is caught, not only a damaged one.
 */
typedef struct bench_frame {
    zinx_packet_format_t format;
    uint32_t msg_id;
    uint32_t payload;
    size_t size;     /* header + payload */
    uint8_t *filler; /* payload bytes before stamping */
} bench_frame_t;

/* Server process figures read from /proc (all zero without --pid). */
typedef struct bench_proc {
    double cpu_s;    /* utime + stime of every thread */
    uint64_t ctxsw;  /* voluntary + involuntary, every thread */
    uint64_t minflt; /* minor page faults, every thread */
    long rss_kib;
} bench_proc_t;

/* Results of a ping-pong or connection-rate run. */
typedef struct bench_result {
    uint64_t frames; /* echoes (pingpong) or cycles (connrate) */
    double elapsed_s;
    uint64_t errors;
    bench_hist_t lat; /* nanoseconds */
    bench_proc_t server_delta;
    bool server_known;
    double client_cpu_s;
} bench_result_t;

/* bench_frame.c */
int bench_frame_init(bench_frame_t *f, const bench_opts_t *o);
void bench_frame_free(bench_frame_t *f);
/* Writes frame (conn, seq) to out[0 .. f->size). */
void bench_frame_build(const bench_frame_t *f, uint32_t conn, uint64_t seq,
                       uint8_t *out);
/*
 * Checks that buf[0 .. f->size) is the echo of frame (conn, seq); on any
 * difference prints what differs and exits with status 1.
 */
void bench_frame_check(const bench_frame_t *f, uint32_t conn, uint64_t seq,
                       const uint8_t *buf);

/* bench_util.c */
uint64_t bench_now_ns(void);
void bench_sleep_s(double seconds);
void bench_raise_nofile(void);
int bench_resolve(const char *host, const char *port, bench_addr_t *out);
/* Blocking connect; TCP_NODELAY set. Returns the fd or -errno. */
int bench_connect(const bench_addr_t *a);
int bench_set_nonblock(int fd);
/* Writes or reads exactly n bytes on a blocking socket; 0 or -errno
   (-EPIPE for EOF while reading). */
int bench_write_all(int fd, const void *buf, size_t n);
int bench_read_all(int fd, void *buf, size_t n);
int bench_proc_read(pid_t pid, bench_proc_t *out);
/* Open descriptors of pid, or -1. */
long bench_proc_nfds(pid_t pid);
double bench_self_cpu_s(void);
void bench_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* The modes. Each returns 0, or -1 after printing why. */
int bench_pingpong(const bench_opts_t *o, const bench_addr_t *a,
                   const bench_frame_t *f, bench_result_t *r);
int bench_connrate(const bench_opts_t *o, const bench_addr_t *a,
                   const bench_frame_t *f, bench_result_t *r);
int bench_hold(const bench_opts_t *o, const bench_addr_t *a,
               const bench_frame_t *f);

#endif /* ZINX_BENCH_H */
