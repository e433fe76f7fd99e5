/*
 * WebSocket against plain TCP on one server (Mode ""): echo throughput
 * at a payload size, and the memory of an idle connection.
 *
 *   zinx-bench-ws serve
 *       an echo server (one I/O thread, handlers inline) on free loopback
 *       ports; prints "PORTS tcp ws pid" and runs until stdin ends
 *   zinx-bench-ws echo TCP_PORT WS_PORT SIZE SECONDS ROUNDS PID
 *       rounds of TCP then WebSocket echo (interleaved A/B), 8
 *       connections with 16 messages in flight each; prints messages/s
 *       and the server's CPU time per message of each, and the ratios
 *   zinx-bench-ws idle TCP_PORT WS_PORT PID COUNT
 *       opens COUNT idle TCP connections, then COUNT WebSocket ones, and
 *       prints the server's RSS growth per connection of each
 *
 * scripts/bench-ws.sh runs them with the server on CPU 0 and the load on
 * CPU 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zinx.h>

#define CONNS 8
#define WINDOW 16
#define MAX_SIZE 65536

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* ---- serve -------------------------------------------------------------- */

static void echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}

static int serve(void)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0;
    cfg.ws_port = 0;
    cfg.mode = ZINX_MODE_TCP_WS;
    cfg.io_threads = 1;
    cfg.worker_pool_size = 0;
    cfg.max_conn = 100000;
    cfg.max_packet_size = MAX_SIZE;
    cfg.log_isolation_level = 3;
    zinx_server_t *s = zinx_server_new(&cfg);
    zinx_router_t r = {.handle = echo};
    if (s == NULL || zinx_server_set_fallback_router(s, &r) != 0 ||
        zinx_server_start(s) != 0) {
        fprintf(stderr, "cannot start\n");
        return 1;
    }
    printf("PORTS %d %d %d\n", zinx_server_port(s), zinx_server_ws_port(s),
           (int)getpid());
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof(buf)) > 0) {
    }
    zinx_server_free(s);
    return 0;
}

/* ---- clients ------------------------------------------------------------ */

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        die("connect");
    return fd;
}

/* The upgrade, blocking: returns once the 101's head was read (the
   server sends nothing after it unasked). */
static void upgrade(int fd)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
        die("write");
    char buf[1024];
    size_t len = 0;
    while (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
        ssize_t n = read(fd, buf + len, 1);
        if (n <= 0 || ++len == sizeof(buf))
            die("upgrade");
    }
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0)
        die("upgrade refused");
}

typedef struct bconn {
    int fd;
    bool ws;
    uint64_t payload; /* reply bytes (TLV frames) received */
    uint64_t done;    /* replies complete */
    /* WebSocket frames from the server: header bytes and payload left. */
    uint8_t hdr[10];
    size_t hlen;
    uint64_t remain;
} bconn_t;

static uint8_t msg[CONNS][MAX_SIZE + 32];

/* One request as sent: a TLV frame, in a masked binary frame for ws. */
static size_t build(uint8_t *out, size_t size, bool ws)
{
    uint8_t tlv[8 + MAX_SIZE];
    uint32_t id = htonl(1), len = htonl((uint32_t)size);
    memcpy(tlv, &id, 4);
    memcpy(tlv + 4, &len, 4);
    memset(tlv + 8, 'x', size);
    size_t total = 8 + size;
    if (!ws) {
        memcpy(out, tlv, total);
        return total;
    }
    size_t h = 2;
    out[0] = 0x82;
    if (total < 126) {
        out[1] = (uint8_t)(0x80 | total);
    } else {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(total >> 8);
        out[3] = (uint8_t)total;
        h = 4;
    }
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(out + h, mask, 4);
    for (size_t i = 0; i < total; i++)
        out[h + 4 + i] = tlv[i] ^ mask[i & 3];
    return h + 4 + total;
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0)
            die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* Counts payload bytes of the server's WebSocket frames in buf. */
static uint64_t ws_payload(bconn_t *c, const uint8_t *buf, size_t n)
{
    uint64_t got = 0;
    size_t i = 0;
    while (i < n) {
        if (c->remain > 0) {
            size_t take = n - i < c->remain ? n - i : (size_t)c->remain;
            got += take;
            c->remain -= take;
            i += take;
            continue;
        }
        c->hdr[c->hlen++] = buf[i++];
        if (c->hlen < 2)
            continue;
        uint8_t l7 = c->hdr[1] & 0x7f;
        size_t need = l7 == 126 ? 4 : l7 == 127 ? 10 : 2;
        if (c->hlen < need)
            continue;
        uint64_t len = l7;
        if (l7 == 126)
            len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
        else if (l7 == 127)
            for (int k = 0; k < 8; k++)
                len = len << 8 | c->hdr[2 + k];
        c->remain = len;
        c->hlen = 0;
    }
    return got;
}

static int server_pid;

/* The server's CPU time (user + system) in seconds: less disturbed by
   other work on the machine than its throughput. */
static double server_cpu_s(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", server_pid);
    FILE *f = fopen(path, "r");
    unsigned long ut = 0, st = 0;
    if (f != NULL) {
        /* Fields 14 and 15, after the command name in parentheses. */
        if (fscanf(f,
                   "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                   "%*u %lu %lu",
                   &ut, &st) != 2)
            ut = st = 0;
        fclose(f);
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Messages per second of the run; *cpu_us: the server's CPU time per
   message in microseconds. */
static double run_echo(int port, bool ws, size_t size, double seconds,
                       double *cpu_us)
{
    bconn_t conns[CONNS];
    size_t mlen[CONNS];
    int ep = epoll_create1(0);
    for (int i = 0; i < CONNS; i++) {
        memset(&conns[i], 0, sizeof(conns[i]));
        conns[i].fd = connect_to(port);
        conns[i].ws = ws;
        if (ws)
            upgrade(conns[i].fd);
        mlen[i] = build(msg[i], size, ws);
        for (int k = 0; k < WINDOW; k++)
            send_all(conns[i].fd, msg[i], mlen[i]);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    static uint8_t buf[1 << 18];
    uint64_t total = 0;
    double t0 = now_s(), end = t0 + seconds, c0 = server_cpu_s();
    while (now_s() < end) {
        struct epoll_event evs[CONNS];
        int n = epoll_wait(ep, evs, CONNS, 100);
        for (int e = 0; e < n; e++) {
            bconn_t *c = &conns[evs[e].data.u32];
            ssize_t r = read(c->fd, buf, sizeof(buf));
            if (r <= 0)
                die("read");
            c->payload += ws ? ws_payload(c, buf, (size_t)r) : (uint64_t)r;
            uint64_t done = c->payload / (8 + size);
            for (uint64_t k = c->done; k < done; k++)
                send_all(c->fd, msg[evs[e].data.u32], mlen[evs[e].data.u32]);
            total += done - c->done;
            c->done = done;
        }
    }
    double rate = (double)total / (now_s() - t0);
    *cpu_us = (server_cpu_s() - c0) * 1e6 / (double)(total ? total : 1);
    for (int i = 0; i < CONNS; i++)
        close(conns[i].fd);
    close(ep);
    return rate;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int echo_bench(int tcp_port, int ws_port, size_t size, double seconds,
                      int rounds)
{
    double tcp[64], ws[64], ratio[64], tcpu[64], wcpu[64], cratio[64];
    if (rounds > 64)
        rounds = 64;
    for (int r = 0; r < rounds; r++) {
        tcp[r] = run_echo(tcp_port, false, size, seconds, &tcpu[r]);
        ws[r] = run_echo(ws_port, true, size, seconds, &wcpu[r]);
        ratio[r] = ws[r] / tcp[r];
        cratio[r] = tcpu[r] / wcpu[r];
        printf("round %d: size %zu  tcp %.0f msg/s %.2f us/msg  ws %.0f "
               "msg/s %.2f us/msg  throughput ratio %.3f  cpu ratio %.3f\n",
               r + 1, size, tcp[r], tcpu[r], ws[r], wcpu[r], ratio[r],
               cratio[r]);
    }
    qsort(cratio, (size_t)rounds, sizeof(double), cmp_double);
    qsort(tcpu, (size_t)rounds, sizeof(double), cmp_double);
    qsort(wcpu, (size_t)rounds, sizeof(double), cmp_double);
    printf("size %zu: server CPU per message (medians): tcp %.2f us, ws "
           "%.2f us; tcp/ws (median of the rounds') %.3f\n",
           size, tcpu[rounds / 2], wcpu[rounds / 2], cratio[rounds / 2]);
    qsort(tcp, (size_t)rounds, sizeof(double), cmp_double);
    qsort(ws, (size_t)rounds, sizeof(double), cmp_double);
    qsort(ratio, (size_t)rounds, sizeof(double), cmp_double);
    printf("size %zu: medians: tcp %.0f msg/s, ws %.0f msg/s, ws/tcp "
           "(median of the rounds' ratios) %.3f\n",
           size, tcp[rounds / 2], ws[rounds / 2], ratio[rounds / 2]);
    return 0;
}

static long rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

/* Opens count connections (upgraded when ws) and leaves them open: the
   server's RSS growth per connection. */
static double idle_open(int port, bool ws, int pid, int count, int *fds)
{
    usleep(300000);
    long before = rss_kib(pid);
    for (int i = 0; i < count; i++) {
        fds[i] = connect_to(port);
        if (ws)
            upgrade(fds[i]);
    }
    usleep(500000); /* every connection adopted and settled */
    return (double)(rss_kib(pid) - before) * 1024.0 / count;
}

/* TCP connections first, then as many WebSocket ones on top (both grow
   the heap afresh; closing the first batch would let the second reuse
   its memory). */
static int idle_bench(int tcp_port, int ws_port, int pid, int count)
{
    int *fds = malloc(sizeof(int) * 2 * (size_t)count);
    double t = idle_open(tcp_port, false, pid, count, fds);
    double w = idle_open(ws_port, true, pid, count, fds + count);
    for (int i = 0; i < 2 * count; i++)
        close(fds[i]);
    free(fds);
    printf("idle: %d connections each: tcp %.0f B/conn, ws %.0f B/conn, "
           "WebSocket layer %.0f B/conn\n",
           count, t, w, w - t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "serve") == 0)
        return serve();
    if (argc == 8 && strcmp(argv[1], "echo") == 0) {
        server_pid = atoi(argv[7]);
        return echo_bench(atoi(argv[2]), atoi(argv[3]), (size_t)atoi(argv[4]),
                          atof(argv[5]), atoi(argv[6]));
    }
    if (argc == 6 && strcmp(argv[1], "idle") == 0)
        return idle_bench(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                          atoi(argv[5]));
    fprintf(stderr, "usage: see bench/bench_ws.c\n");
    return 2;
}
