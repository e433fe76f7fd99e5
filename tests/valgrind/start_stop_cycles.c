/*
 * T16 under valgrind: start/stop cycles of a server with clients
 * attached. Each cycle starts a server (two I/O threads, two workers,
 * hooks, a property with a destructor on every connection), connects a
 * few raw clients, exchanges echo messages, leaves one frame half sent
 * and one reply unread, and frees the server with the clients still
 * connected. Every descriptor and thread must be gone at the end of each
 * cycle; valgrind reports leaks and invalid accesses (ctest runs this
 * with --error-exitcode=1).
 *
 * Usage: start_stop_cycles [cycles]   (default 100)
 * Exit status: 0 when every check passed, 1 otherwise.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zinx.h"

#define CLIENTS 4
#define CALLS 5
#define ECHO_ID 1u

typedef struct hooks {
    atomic_int starts, stops, props_freed;
} hooks_t;

static void prop_free(void *value)
{
    hooks_t *h = *(hooks_t **)value;
    atomic_fetch_add(&h->props_freed, 1);
    free(value);
}

static void on_start(zinx_conn_t *conn, void *udata)
{
    hooks_t *h = udata;
    atomic_fetch_add(&h->starts, 1);
    hooks_t **p = malloc(sizeof(*p));
    if (p == NULL)
        return;
    *p = h;
    if (zinx_conn_set_property(conn, "owner", p, prop_free) != 0)
        free(p);
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    (void)conn;
    atomic_fetch_add(&((hooks_t *)udata)->stops, 1);
}

static void echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}

static void quiet(zinx_log_level_t level, const char *msg, void *udata)
{
    (void)udata;
    if (level >= ZINX_LOG_ERROR)
        fprintf(stderr, "zinx: %s\n", msg);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

static long count_threads(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL)
        return -1;
    char line[256];
    long n = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Threads:", 8) == 0)
            n = strtol(line + 8, NULL, 10);
    }
    fclose(f);
    return n;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads exactly n bytes within timeout_ms. Returns 0 or -1. */
static int read_exact(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return -1;
        ssize_t r = recv(fd, buf, n, 0);
        if (r <= 0)
            return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

/* One echo round trip. Returns 0 or -1. */
static int call(int fd, uint32_t seq)
{
    uint8_t out[ZINX_HEADER_LEN + 16], in[ZINX_HEADER_LEN + 16];
    char text[16];
    int len = snprintf(text, sizeof(text), "msg %u", seq);
    long n = zinx_pack(ZINX_FORMAT_TLV, 4096, ECHO_ID, text, (uint32_t)len, out,
                       sizeof(out));
    if (n < 0 || send(fd, out, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    if (read_exact(fd, in, (size_t)n, 20000) != 0)
        return -1;
    return memcmp(in, out, (size_t)n) == 0 ? 0 : -1;
}

/* pthread_join() returns once a thread has left its code, but the kernel
   lists the thread in /proc/self/task until it has finished exiting, a
   little later (much later under valgrind): the count must come back to
   where it was within a second. */
static int threads_back(long threads0)
{
    for (int i = 0; i < 100; i++) {
        if (count_threads() == threads0)
            return 1;
        usleep(10000);
    }
    return 0;
}

static int fail(int cycle, const char *what)
{
    fprintf(stderr, "start_stop_cycles: cycle %d: %s\n", cycle, what);
    return 1;
}

static int one_cycle(int cycle, int fds0, long threads0)
{
    hooks_t h;
    atomic_init(&h.starts, 0);
    atomic_init(&h.stops, 0);
    atomic_init(&h.props_freed, 0);
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0;
    cfg.io_threads = 2;
    cfg.worker_pool_size = (uint32_t)(cycle % 2) * 2; /* inline, workers */
    cfg.drain_timeout_ms = 2000;
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        return fail(cycle, "zinx_server_new");
    zinx_router_t r = {.handle = echo};
    zinx_server_set_log_sink(s, quiet, NULL);
    zinx_server_add_router(s, ECHO_ID, &r);
    zinx_server_on_conn_start(s, on_start, &h);
    zinx_server_on_conn_stop(s, on_stop, &h);
    if (zinx_server_start(s) != 0) {
        zinx_server_free(s);
        return fail(cycle, "zinx_server_start");
    }
    int port = zinx_server_port(s);
    int fds[CLIENTS], rc = 0;
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = dial(port);
        if (fds[i] < 0)
            rc = fail(cycle, "connect");
        for (int k = 0; rc == 0 && k < CALLS; k++) {
            if (call(fds[i], (uint32_t)(i * CALLS + k)) != 0)
                rc = fail(cycle, "echo call");
        }
    }
    if (rc == 0) {
        /* Half a frame on one connection, an unread reply on another. */
        uint8_t hdr[ZINX_HEADER_LEN];
        zinx_pack_header(ZINX_FORMAT_TLV, ECHO_ID, 100, hdr);
        send(fds[0], hdr, 5, MSG_NOSIGNAL);
        uint8_t msg[ZINX_HEADER_LEN + 3];
        zinx_pack(ZINX_FORMAT_TLV, 4096, ECHO_ID, "abc", 3, msg, sizeof(msg));
        send(fds[1], msg, sizeof(msg), MSG_NOSIGNAL);
    }
    zinx_server_free(s); /* clients still attached */
    for (int i = 0; i < CLIENTS; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    if (rc != 0)
        return rc;
    if (atomic_load(&h.starts) != CLIENTS || atomic_load(&h.stops) != CLIENTS ||
        atomic_load(&h.props_freed) != CLIENTS)
        return fail(cycle, "hooks or property destructors not run once each");
    if (count_fds() != fds0)
        return fail(cycle, "descriptor count not back to its start");
    if (!threads_back(threads0))
        return fail(cycle, "thread count not back to its start");
    return 0;
}

int main(int argc, char **argv)
{
    int cycles = argc > 1 ? atoi(argv[1]) : 100;
    if (cycles <= 0) {
        fprintf(stderr, "usage: %s [cycles]\n", argv[0]);
        return 2;
    }
    int fds0 = count_fds();
    long threads0 = count_threads();
    for (int i = 0; i < cycles; i++) {
        if (one_cycle(i, fds0, threads0) != 0)
            return 1;
    }
    printf("start_stop_cycles: %d cycles passed\n", cycles);
    return 0;
}
