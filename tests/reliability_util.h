/*
 * Helpers shared by the reliability battery (tests/test_reliability_*.c):
 * build-dependent scaling, /proc measurements, a quiet server set-up, raw
 * loopback sockets with bounded waits, a checksummed echo payload, a
 * background "well-behaved client" and a multi-connection epoll load
 * driver.
 *
 * Everything is static inline so each test program takes what it uses.
 * The clients here are plain sockets on purpose: they must be able to
 * misbehave in ways the library's own client never would.
 *
 * Environment: ZINX_TEST_VERBOSE set and not "0" prints the servers' log
 * records and the measured figures to stderr.
 */
#ifndef RELIABILITY_UTIL_H
#define RELIABILITY_UTIL_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "zinx.h"

/* ---- build scaling --------------------------------------------------- */

#if defined(ZINX_SANITIZE_ADDRESS)
#define RU_ASAN 1
#else
#define RU_ASAN 0
#endif
#if defined(ZINX_SANITIZE_THREAD)
#define RU_TSAN 1
#else
#define RU_TSAN 0
#endif
#define RU_SANITIZED (RU_ASAN || RU_TSAN)

/* A count or bound for this build: sanitizers run 3-15x slower. */
#define RU_PICK(plain, sanitized) (RU_SANITIZED ? (sanitized) : (plain))
#define RU_PICK3(plain, asan, tsan) \
    (RU_TSAN ? (tsan) : RU_ASAN ? (asan) : (plain))

/* Extra time granted to "within X ms" checks for scheduling noise. */
#define RU_SLACK_MS RU_PICK(400, 2000)

#define RU_ECHO_ID 1u
/* HeartbeatMsgID's default. */
#define RU_HEARTBEAT_ID 99999u

static inline bool ru_verbose(void)
{
    const char *v = getenv("ZINX_TEST_VERBOSE");
    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static inline void ru_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Measured figures: printed only when verbose. */
static inline void ru_note(const char *fmt, ...)
{
    if (!ru_verbose())
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- clocks ----------------------------------------------------------- */

static inline uint64_t ru_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint64_t ru_now_ms(void)
{
    return ru_now_us() / 1000u;
}

static inline void ru_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u,
                          .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- CRC-32 (IEEE, reflected), four bits at a time ------------------- */

static inline uint32_t ru_crc32(const void *data, size_t len)
{
    static const uint32_t nib[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
        0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
        0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
        0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
    const uint8_t *p = data;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nib[crc & 15u];
        crc = (crc >> 4) ^ nib[crc & 15u];
    }
    return ~crc;
}

static inline void ru_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t ru_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/*
 * Checked payload: stream u32 | seq u32 | fill u32 | fill bytes | crc32.
 * The fill length and bytes depend on (stream, seq), so a frame that
 * belongs to another connection or position cannot pass for this one.
 */
#define RU_PAYLOAD_MAX (16u + 63u)

static inline uint32_t ru_payload_make(uint8_t *p, uint32_t stream,
                                       uint32_t seq)
{
    uint32_t fill = (stream * 31u + seq * 7u) % 64u;
    ru_put32(p, stream);
    ru_put32(p + 4, seq);
    ru_put32(p + 8, fill);
    for (uint32_t i = 0; i < fill; i++)
        p[12 + i] = (uint8_t)(stream * 13u + seq * 5u + i);
    ru_put32(p + 12 + fill, ru_crc32(p, 12 + fill));
    return 16 + fill;
}

/* Returns 0 and the stream and seq of an intact payload, else -1. */
static inline int ru_payload_check(const uint8_t *p, uint32_t len,
                                   uint32_t *stream, uint32_t *seq)
{
    if (len < 16)
        return -1;
    uint32_t fill = ru_get32(p + 8);
    if (fill > len - 16 || len != 16 + fill)
        return -1;
    if (ru_get32(p + 12 + fill) != ru_crc32(p, 12 + fill))
        return -1;
    *stream = ru_get32(p);
    *seq = ru_get32(p + 4);
    return 0;
}

/* ---- /proc -------------------------------------------------------------- */

/* A "Key:   123 kB" (or plain number) line of /proc/self/status; -1 if absent.
 */
static inline long ru_status_value(const char *key)
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

static inline long ru_rss_kib(void)
{
    return ru_status_value("VmRSS");
}

static inline long ru_vmsize_kib(void)
{
    return ru_status_value("VmSize");
}

static inline long ru_thread_count(void)
{
    return ru_status_value("Threads");
}

/* Open descriptors of this process (not counting the one used to look). */
static inline int ru_fd_count(void)
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

/* utime + stime in ms from a /proc/.../stat file; -1 when unreadable. */
static inline long ru_stat_file_cpu_ms(const char *path, char *comm,
                                       size_t comm_cap)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    char line[1024];
    char *ok = fgets(line, sizeof(line), f);
    fclose(f);
    if (ok == NULL)
        return -1;
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

/* CPU time of this process's threads whose name starts with prefix. */
static inline long ru_threads_cpu_ms(const char *prefix)
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
        long ms = ru_stat_file_cpu_ms(path, comm, sizeof(comm));
        if (ms >= 0 && strncmp(comm, prefix, strlen(prefix)) == 0)
            total += ms;
    }
    closedir(d);
    return total;
}

/* CPU time of another process (all its threads). */
static inline long ru_pid_cpu_ms(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    return ru_stat_file_cpu_ms(path, NULL, 0);
}

/* Raises the soft descriptor limit to the hard one; returns the result. */
static inline long ru_raise_nofile(void)
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

/* ---- servers --------------------------------------------------------------
 */

static inline void ru_log_sink(zinx_log_level_t level, const char *message,
                               void *udata)
{
    (void)udata;
    if (ru_verbose())
        fprintf(stderr, "[zinx %s] %s\n", zinx_log_level_name(level), message);
}

/* Loopback, port 0, 2 I/O threads, 2 workers, room for many connections. */
static inline void ru_config(zinx_config_t *cfg)
{
    zinx_config_default(cfg);
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->tcp_port = 0;
    cfg->io_threads = 2;
    cfg->worker_pool_size = 2;
    cfg->max_conn = 100000;
    cfg->drain_timeout_ms = 5000;
}

static inline void ru_echo_handle(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}

/* A server with the quiet sink and an echo router on RU_ECHO_ID. */
static inline zinx_server_t *ru_server_new(const zinx_config_t *cfg)
{
    zinx_server_t *s = zinx_server_new(cfg);
    assert_non_null(s);
    assert_int_equal(zinx_server_set_log_sink(s, ru_log_sink, NULL), 0);
    zinx_router_t echo = {.handle = ru_echo_handle};
    assert_int_equal(zinx_server_add_router(s, RU_ECHO_ID, &echo), 0);
    return s;
}

/* Starts s and returns its port. */
static inline int ru_server_start(zinx_server_t *s)
{
    int rc = zinx_server_start(s);
    if (rc != 0)
        fail_msg("zinx_server_start: %s", zinx_strerror(rc));
    int port = zinx_server_port(s);
    assert_true(port > 0);
    return port;
}

#define RU_STAT(field) offsetof(zinx_server_stats_t, field)

static inline uint64_t ru_stat(zinx_server_t *s, size_t off)
{
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    uint64_t v;
    memcpy(&v, (const char *)&st + off, sizeof(v));
    return v;
}

/* Polls a counter until it reaches want (>=, or == when exact) or the
   time is up; returns the last value for the caller's assertion. */
static inline uint64_t ru_wait_stat(zinx_server_t *s, size_t off, bool exact,
                                    uint64_t want, int timeout_ms)
{
    uint64_t end = ru_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t v = ru_stat(s, off);
        if (exact ? v == want : v >= want)
            return v;
        if (ru_now_ms() >= end)
            return v;
        ru_sleep_ms(1);
    }
}

/* ---- raw loopback sockets --------------------------------------------- */

/* Options for ru_connect_ex(). */
typedef struct ru_sockopts {
    int rcvbuf;    /* >0: SO_RCVBUF before connect */
    bool nonblock; /* nonblocking connect (may return before established) */
} ru_sockopts_t;

/* Connects to 127.0.0.1:port; returns the descriptor or -errno. */
static inline int ru_connect_ex(int port, const ru_sockopts_t *o)
{
    int type = SOCK_STREAM | SOCK_CLOEXEC;
    if (o != NULL && o->nonblock)
        type |= SOCK_NONBLOCK;
    int fd = socket(AF_INET, type, 0);
    if (fd < 0)
        return -errno;
    if (o != NULL && o->rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf));
    /* Requests go out in pieces; Nagle plus delayed ACKs would add 40 ms
       stalls that look like server latency. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 &&
        errno != EINPROGRESS) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static inline int ru_connect(int port)
{
    return ru_connect_ex(port, NULL);
}

/* Closes with SO_LINGER {1, 0}: the peer gets RST, not FIN. */
static inline void ru_close_rst(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static inline int ru_ms_left(uint64_t end_ms)
{
    uint64_t now = ru_now_ms();
    return now >= end_ms ? 0 : (int)(end_ms - now);
}

/* Sends everything within timeout_ms. Returns 0, -ETIMEDOUT or -errno. */
static inline int ru_send_all(int fd, const void *buf, size_t len,
                              int timeout_ms)
{
    const uint8_t *p = buf;
    uint64_t end = ru_now_ms() + (uint64_t)timeout_ms;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int left = ru_ms_left(end);
        if (left == 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        poll(&pfd, 1, left);
    }
    return 0;
}

/* Receives what is there (waiting up to timeout_ms for something).
   Returns the byte count, 0 at EOF, -ETIMEDOUT or -errno. */
static inline ssize_t ru_recv_some(int fd, void *buf, size_t cap,
                                   int timeout_ms)
{
    uint64_t end = ru_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int left = ru_ms_left(end);
        if (left == 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, left);
    }
}

/* Receives exactly len bytes. Returns 0, 1 at EOF first, or negative. */
static inline int ru_recv_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    uint8_t *p = buf;
    uint64_t end = ru_now_ms() + (uint64_t)timeout_ms;
    while (len > 0) {
        ssize_t n = ru_recv_some(fd, p, len, ru_ms_left(end));
        if (n == 0)
            return 1;
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Encodes a TLV frame into out; returns its size. */
static inline size_t ru_frame(uint8_t *out, uint32_t id, const void *data,
                              uint32_t len)
{
    zinx_pack_header(ZINX_FORMAT_TLV, id, len, out);
    if (len > 0)
        memcpy(out + ZINX_HEADER_LEN, data, len);
    return ZINX_HEADER_LEN + len;
}

static inline int ru_send_frame_fmt(int fd, zinx_packet_format_t fmt,
                                    uint32_t id, const void *data, uint32_t len,
                                    int timeout_ms)
{
    uint8_t small[512];
    if (len <= sizeof(small) - ZINX_HEADER_LEN) {
        zinx_pack_header(fmt, id, len, small);
        if (len > 0)
            memcpy(small + ZINX_HEADER_LEN, data, len);
        return ru_send_all(fd, small, ZINX_HEADER_LEN + len, timeout_ms);
    }
    uint8_t hdr[ZINX_HEADER_LEN];
    zinx_pack_header(fmt, id, len, hdr);
    int rc = ru_send_all(fd, hdr, sizeof(hdr), timeout_ms);
    if (rc == 0 && len > 0)
        rc = ru_send_all(fd, data, len, timeout_ms);
    return rc;
}

static inline int ru_send_frame(int fd, uint32_t id, const void *data,
                                uint32_t len, int timeout_ms)
{
    return ru_send_frame_fmt(fd, ZINX_FORMAT_TLV, id, data, len, timeout_ms);
}

/* Receives one TLV frame (payload into buf, at most cap bytes; a longer
   one is an error). Returns 0, 1 at EOF, or negative. */
static inline int ru_recv_frame_fmt(int fd, zinx_packet_format_t fmt,
                                    uint32_t *id, void *buf, size_t cap,
                                    uint32_t *len, int timeout_ms)
{
    uint64_t end = ru_now_ms() + (uint64_t)timeout_ms;
    uint8_t hdr[ZINX_HEADER_LEN];
    int rc = ru_recv_exact(fd, hdr, sizeof(hdr), timeout_ms);
    if (rc != 0)
        return rc;
    zinx_unpack_header(fmt, hdr, sizeof(hdr), id, len);
    if (*len > cap)
        return -EMSGSIZE;
    rc = ru_recv_exact(fd, buf, *len, ru_ms_left(end));
    return rc == 1 ? -EPIPE : rc;
}

static inline int ru_recv_frame(int fd, uint32_t *id, void *buf, size_t cap,
                                uint32_t *len, int timeout_ms)
{
    return ru_recv_frame_fmt(fd, ZINX_FORMAT_TLV, id, buf, cap, len,
                             timeout_ms);
}

/* Sends one echo request and checks the reply. Returns 0 or negative. */
static inline int ru_echo_call_fmt(int fd, zinx_packet_format_t fmt,
                                   const void *data, uint32_t len,
                                   int timeout_ms)
{
    uint8_t buf[4096];
    uint32_t id, rlen;
    if (len > sizeof(buf))
        return -EINVAL;
    int rc = ru_send_frame_fmt(fd, fmt, RU_ECHO_ID, data, len, timeout_ms);
    if (rc != 0)
        return rc;
    do { /* heartbeats of a server that sends them may come first */
        rc = ru_recv_frame_fmt(fd, fmt, &id, buf, sizeof(buf), &rlen,
                               timeout_ms);
    } while (rc == 0 && id == RU_HEARTBEAT_ID);
    if (rc == 1)
        return -EPIPE;
    if (rc != 0)
        return rc;
    if (id != RU_ECHO_ID || rlen != len || memcmp(buf, data, len) != 0)
        return -EBADMSG;
    return 0;
}

static inline int ru_echo_call(int fd, const void *data, uint32_t len,
                               int timeout_ms)
{
    return ru_echo_call_fmt(fd, ZINX_FORMAT_TLV, data, len, timeout_ms);
}

/* Reads and discards until EOF. Returns 0 at EOF, -ECONNRESET (or another
   -errno) when the connection was reset, -ETIMEDOUT. */
static inline int ru_wait_closed(int fd, int timeout_ms, size_t *discarded)
{
    uint64_t end = ru_now_ms() + (uint64_t)timeout_ms;
    uint8_t buf[65536];
    size_t total = 0;
    int rc;
    for (;;) {
        ssize_t n = ru_recv_some(fd, buf, sizeof(buf), ru_ms_left(end));
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        rc = n == 0 ? 0 : (int)n;
        break;
    }
    if (discarded != NULL)
        *discarded = total;
    return rc;
}

/* Nonzero when the peer has closed (EOF or reset) without consuming data
   still queued for us; 0 when the connection looks open right now. */
static inline bool ru_peer_closed_now(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pfd, 1, 0) <= 0)
        return false;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* ---- a well-behaved client in the background ---------------------------- */

/*
 * Makes one echo call every interval_ms on its own connection and records
 * latency and failures, to show that misbehaving peers do not hold up the
 * others.
 */
typedef struct ru_prober {
    int port;
    zinx_packet_format_t format;
    int interval_ms;
    int timeout_ms;
    pthread_t thread;
    atomic_bool stop;
    atomic_long calls;
    atomic_long failures;
    atomic_long max_us;
    atomic_int last_error;
} ru_prober_t;

static inline void *ru_prober_main(void *arg)
{
    ru_prober_t *p = arg;
    int fd = -1;
    uint32_t seq = 0;
    while (!atomic_load(&p->stop)) {
        if (fd < 0)
            fd = ru_connect(p->port);
        int rc = fd < 0 ? fd : 0;
        uint64_t t0 = ru_now_us();
        if (rc == 0) {
            uint8_t payload[RU_PAYLOAD_MAX];
            uint32_t len = ru_payload_make(payload, 0xfeedu, seq++);
            rc = ru_echo_call_fmt(fd, p->format, payload, len, p->timeout_ms);
        }
        long us = (long)(ru_now_us() - t0);
        if (rc == 0) {
            atomic_fetch_add(&p->calls, 1);
            long cur = atomic_load(&p->max_us);
            while (us > cur &&
                   !atomic_compare_exchange_weak(&p->max_us, &cur, us)) {
            }
        } else {
            atomic_fetch_add(&p->failures, 1);
            atomic_store(&p->last_error, rc);
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
        ru_sleep_ms((unsigned)p->interval_ms);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Heap-allocated so that a failed assertion, which leaves the test
   function early, does not leave the thread on a dead stack frame. */
static inline ru_prober_t *ru_prober_start_fmt(int port,
                                               zinx_packet_format_t fmt)
{
    ru_prober_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->port = port;
    p->format = fmt;
    p->interval_ms = 2;
    p->timeout_ms = 5000;
    assert_int_equal(pthread_create(&p->thread, NULL, ru_prober_main, p), 0);
    return p;
}

static inline ru_prober_t *ru_prober_start(int port)
{
    return ru_prober_start_fmt(port, ZINX_FORMAT_TLV);
}

/* Stops the prober and checks it was served throughout. */
static inline void ru_prober_finish(ru_prober_t *p, const char *what,
                                    long max_latency_ms)
{
    /* A couple more calls after the misbehaviour: still served. */
    long target = atomic_load(&p->calls) + 2;
    uint64_t end = ru_now_ms() + 5000;
    while (atomic_load(&p->calls) < target && atomic_load(&p->failures) == 0 &&
           ru_now_ms() < end)
        ru_sleep_ms(1);
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    long calls = atomic_load(&p->calls);
    long fails = atomic_load(&p->failures);
    long max_ms = atomic_load(&p->max_us) / 1000;
    int last = atomic_load(&p->last_error);
    free(p);
    ru_note("%s: well-behaved client: %ld calls, %ld failures, max %ld ms",
            what, calls, fails, max_ms);
    if (fails != 0)
        fail_msg("%s: well-behaved client had %ld failures (last %s)", what,
                 fails, zinx_strerror(last));
    if (calls < 2)
        fail_msg("%s: well-behaved client made only %ld calls", what, calls);
    if (max_ms > max_latency_ms)
        fail_msg("%s: well-behaved client waited %ld ms (bound %ld)", what,
                 max_ms, max_latency_ms);
}

/* ---- multi-connection load driver --------------------------------------- */

/*
 * Opens `conns` connections from `threads` threads (each with its own
 * epoll loop), and on each sends `msgs` checksummed echo requests with
 * at most `window` outstanding, checking every reply for loss,
 * duplication, reordering and corruption. Connections stay open until
 * ru_load_close(), so all of them are open at the same time at the end.
 */
#define RU_LOAD_BUF 2048

typedef struct ru_lconn {
    int fd;
    uint32_t idx;
    uint32_t next_send, next_expect;
    uint32_t events;
    bool connecting, answered, done, failed;
    uint16_t in_len, out_off, out_len;
    uint8_t in[RU_LOAD_BUF];
    uint8_t out[RU_LOAD_BUF];
} ru_lconn_t;

typedef struct ru_load {
    /* inputs */
    int port;
    uint32_t conns, msgs, threads, window;
    uint32_t max_connecting; /* per thread: opened but not yet answered */
    int timeout_ms;
    /* outputs */
    atomic_long completed, lost, duplicated, corrupt, failed, dropped;
    atomic_int first_error;
    /* state */
    ru_lconn_t *c;
} ru_load_t;

typedef struct ru_load_thread {
    ru_load_t *load;
    uint32_t index;
    pthread_t thread;
} ru_load_thread_t;

static inline void ru_lconn_fail(ru_load_t *l, ru_lconn_t *c, int err,
                                 uint32_t *pending)
{
    if (c->failed)
        return;
    c->failed = true;
    if (!c->answered && *pending > 0)
        (*pending)--;
    if (c->done) {
        atomic_fetch_add(&l->dropped, 1);
    } else {
        atomic_fetch_add(&l->failed, 1);
    }
    int zero = 0;
    atomic_compare_exchange_strong(&l->first_error, &zero, err ? err : -1);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static inline void ru_lconn_interest(int ep, ru_lconn_t *c)
{
    uint32_t ev = EPOLLIN;
    if (c->connecting || c->out_len > c->out_off)
        ev |= EPOLLOUT;
    if (ev != c->events) {
        struct epoll_event e = {.events = ev, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
        c->events = ev;
    }
}

/* Queues requests up to the window and writes what the socket takes.
   Returns 0 or -errno. */
static inline int ru_lconn_pump(ru_load_t *l, ru_lconn_t *c)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    while (
        c->next_send < l->msgs && c->next_send - c->next_expect < l->window &&
        (size_t)c->out_len + ZINX_HEADER_LEN + RU_PAYLOAD_MAX <= RU_LOAD_BUF) {
        uint8_t payload[RU_PAYLOAD_MAX];
        uint32_t len = ru_payload_make(payload, c->idx, c->next_send++);
        c->out_len =
            (uint16_t)(c->out_len +
                       ru_frame(c->out + c->out_len, RU_ECHO_ID, payload, len));
    }
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, (size_t)(c->out_len - c->out_off),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off = (uint16_t)(c->out_off + n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -errno;
    }
    return 0;
}

/* Checks the frames in c->in. Returns 0, or -EBADMSG on an anomaly. */
static inline int ru_lconn_parse(ru_load_t *l, ru_lconn_t *c, uint32_t *pending)
{
    size_t off = 0;
    int rc = 0;
    while (rc == 0) {
        zinx_msg_t m;
        long n = zinx_unpack(ZINX_FORMAT_TLV, RU_PAYLOAD_MAX, c->in + off,
                             c->in_len - off, &m);
        if (n == ZINX_EAGAIN)
            break;
        uint32_t stream = 0, seq = 0;
        if (n < 0 || m.id != RU_ECHO_ID ||
            ru_payload_check(m.data, m.len, &stream, &seq) != 0 ||
            stream != c->idx) {
            atomic_fetch_add(&l->corrupt, 1);
            rc = -EBADMSG;
            break;
        }
        off += (size_t)n;
        if (seq < c->next_expect || c->done) {
            atomic_fetch_add(&l->duplicated, 1);
            rc = -EBADMSG;
        } else if (seq > c->next_expect) {
            atomic_fetch_add(&l->lost, 1); /* lost, or overtaken */
            rc = -EBADMSG;
        } else if (++c->next_expect == l->msgs) {
            c->done = true;
            atomic_fetch_add(&l->completed, 1);
        }
        if (rc == 0 && !c->answered) {
            c->answered = true;
            (*pending)--;
        }
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len = (uint16_t)(c->in_len - off);
    return rc;
}

static inline void ru_lconn_on_event(ru_load_t *l, int ep, ru_lconn_t *c,
                                     uint32_t ev, uint32_t *pending)
{
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            ru_lconn_fail(l, c, -err, pending);
            return;
        }
        if (!(ev & (EPOLLOUT | EPOLLIN)))
            return;
        c->connecting = false;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            ssize_t n = recv(c->fd, c->in + c->in_len, RU_LOAD_BUF - c->in_len,
                             MSG_DONTWAIT);
            if (n > 0) {
                c->in_len = (uint16_t)(c->in_len + n);
                if (ru_lconn_parse(l, c, pending) != 0) {
                    ru_lconn_fail(l, c, -EBADMSG, pending);
                    return;
                }
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            ru_lconn_fail(l, c, n == 0 ? -EPIPE : -errno, pending);
            return;
        }
    }
    int rc = ru_lconn_pump(l, c);
    if (rc != 0) {
        ru_lconn_fail(l, c, rc, pending);
        return;
    }
    ru_lconn_interest(ep, c);
}

static inline void ru_lconn_open(ru_load_t *l, int ep, ru_lconn_t *c,
                                 uint32_t *pending)
{
    ru_sockopts_t o = {.nonblock = true};
    c->fd = ru_connect_ex(l->port, &o);
    (*pending)++;
    if (c->fd < 0) {
        int err = c->fd;
        c->fd = -1;
        ru_lconn_fail(l, c, err, pending);
        return;
    }
    c->connecting = true;
    c->events = EPOLLIN | EPOLLOUT;
    struct epoll_event e = {.events = c->events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) != 0)
        ru_lconn_fail(l, c, -errno, pending);
}

static inline void *ru_load_main(void *arg)
{
    ru_load_thread_t *t = arg;
    ru_load_t *l = t->load;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        atomic_store(&l->first_error, -errno);
        return NULL;
    }
    uint64_t end = ru_now_ms() + (uint64_t)l->timeout_ms;
    uint32_t next_open = t->index, pending = 0;
    struct epoll_event evs[256];
    for (;;) {
        while (next_open < l->conns && pending < l->max_connecting) {
            ru_lconn_open(l, ep, &l->c[next_open], &pending);
            next_open += l->threads;
        }
        bool busy = next_open < l->conns;
        for (uint32_t i = t->index; !busy && i < l->conns; i += l->threads)
            busy = !l->c[i].done && !l->c[i].failed;
        if (!busy || ru_now_ms() >= end)
            break;
        int n = epoll_wait(ep, evs, 256, 20);
        for (int i = 0; i < n; i++) {
            ru_lconn_t *c = evs[i].data.ptr;
            if (!c->failed)
                ru_lconn_on_event(l, ep, c, evs[i].events, &pending);
        }
    }
    close(ep); /* the connections stay open */
    return NULL;
}

static inline void ru_load_init(ru_load_t *l, int port, uint32_t conns,
                                uint32_t msgs)
{
    memset(l, 0, sizeof(*l));
    l->port = port;
    l->conns = conns;
    l->msgs = msgs;
    l->threads = 3;
    l->window = 16;
    l->max_connecting = 256;
    l->timeout_ms = 120000;
}

/* Runs the load to completion (or timeout). Returns the elapsed ms. */
static inline uint64_t ru_load_run(ru_load_t *l)
{
    l->c = calloc(l->conns, sizeof(*l->c));
    assert_non_null(l->c);
    for (uint32_t i = 0; i < l->conns; i++) {
        l->c[i].fd = -1;
        l->c[i].idx = i;
    }
    ru_load_thread_t *ts = calloc(l->threads, sizeof(*ts));
    assert_non_null(ts);
    uint64_t t0 = ru_now_ms();
    for (uint32_t i = 0; i < l->threads; i++) {
        ts[i].load = l;
        ts[i].index = i;
        assert_int_equal(
            pthread_create(&ts[i].thread, NULL, ru_load_main, &ts[i]), 0);
    }
    for (uint32_t i = 0; i < l->threads; i++)
        pthread_join(ts[i].thread, NULL);
    free(ts);
    return ru_now_ms() - t0;
}

/* Asserts that every connection got every reply intact and in order. */
static inline void ru_load_assert_clean(ru_load_t *l, const char *what)
{
    long completed = atomic_load(&l->completed);
    ru_note("%s: %ld/%u connections complete; lost %ld dup %ld corrupt %ld "
            "failed %ld dropped %ld",
            what, completed, l->conns, atomic_load(&l->lost),
            atomic_load(&l->duplicated), atomic_load(&l->corrupt),
            atomic_load(&l->failed), atomic_load(&l->dropped));
    if (atomic_load(&l->lost) || atomic_load(&l->duplicated) ||
        atomic_load(&l->corrupt) || atomic_load(&l->failed) ||
        atomic_load(&l->dropped) || completed != (long)l->conns)
        fail_msg("%s: %ld/%u complete, lost/reordered %ld, duplicated %ld, "
                 "corrupt %ld, failed %ld, dropped %ld (first error %s)",
                 what, completed, l->conns, atomic_load(&l->lost),
                 atomic_load(&l->duplicated), atomic_load(&l->corrupt),
                 atomic_load(&l->failed), atomic_load(&l->dropped),
                 zinx_strerror(atomic_load(&l->first_error)));
}

static inline void ru_load_close(ru_load_t *l)
{
    for (uint32_t i = 0; l->c != NULL && i < l->conns; i++) {
        if (l->c[i].fd >= 0)
            close(l->c[i].fd);
    }
    free(l->c);
    l->c = NULL;
}

#endif /* RELIABILITY_UTIL_H */
