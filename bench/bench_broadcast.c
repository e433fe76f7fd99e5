/*
 * zinx-bench-broadcast: what one message (64 B) to every connection costs,
 * as a broadcast (encoded once, shared by reference) against one
 * zinx_conn_send_msg() per connection (Zinx's NotifyAll).
 *
 *   zinx-bench-broadcast --mode broadcast|send [--conns 10000]
 *                        [--payload 64] [--rounds 20] [--workers 10]
 *                        [--header]
 *
 * The program forks: the child opens the connections and reads (plain
 * sockets and epoll, no zinx), the parent is the zinx server. Each
 * process stays under 20,000 descriptors. Per round the server stamps
 * t0, queues the message for every connection from its main thread (not
 * a framework thread), stamps t1 (queued), and the client stamps the
 * moment it has read the message on every connection (delivered; both
 * clocks are CLOCK_MONOTONIC of the same machine) and reports it on its
 * first connection. The server's RSS is read before the first round,
 * right after the first round's queueing, and after the last round.
 * Prints one markdown table row (--header: the header first).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zinx.h>

#define ID_CAST 5
#define ID_READY 2
#define ID_DONE 3
#define MAX_PAYLOAD 4096
#define MAX_ROUNDS 1000

typedef struct opts {
    int broadcast; /* 1: zinx_server_broadcast; 0: send per connection */
    int conns;
    int rounds;
    uint32_t workers;
    int header;
    uint32_t payload; /* bytes of the message (64) */
} opts_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_kib(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* ---- the client process ---------------------------------------------------
 */

typedef struct peer {
    int fd;
    uint32_t have; /* bytes of the frame being read */
    uint8_t buf[ZINX_HEADER_LEN + MAX_PAYLOAD];
} peer_t;

/* Writes a small frame in full (a blocking wait on a full socket). */
static int send_frame(int fd, uint32_t id, const void *data, uint32_t len)
{
    uint8_t f[ZINX_HEADER_LEN + 16];
    put_be32(f, id);
    put_be32(f + 4, len);
    memcpy(f + 8, data, len);
    size_t off = 0, total = ZINX_HEADER_LEN + len;
    while (off < total) {
        ssize_t n = send(fd, f + off, total - off, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n > 0)
            off += (size_t)n;
    }
    return 0;
}

static int connect_one(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Reads what is there on p; counts complete, checked frames in *frames.
   Returns -1 on a wrong frame or an error, 1 at EOF, else 0. */
static int drain(peer_t *p, uint32_t payload, long *frames)
{
    uint32_t frame = ZINX_HEADER_LEN + payload;
    for (;;) {
        ssize_t n = read(p->fd, p->buf + p->have, frame - p->have);
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        p->have += (uint32_t)n;
        if (p->have < frame)
            continue;
        if (get_be32(p->buf) != ID_CAST || get_be32(p->buf + 4) != payload)
            return -1;
        p->have = 0;
        (*frames)++;
    }
}

static int run_clients(const opts_t *o, int port)
{
    peer_t *peers = calloc((size_t)o->conns, sizeof(*peers));
    int ep = epoll_create1(0);
    if (peers == NULL || ep < 0)
        return 1;
    for (int i = 0; i < o->conns; i++) {
        peers[i].fd = connect_one(port);
        if (peers[i].fd < 0) {
            fprintf(stderr, "client: connect %d: %s\n", i, strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, peers[i].fd, &ev);
    }
    if (send_frame(peers[0].fd, ID_READY, "", 0) != 0)
        return 1;
    long frames = 0, want = (long)o->conns;
    struct epoll_event evs[256];
    while (want <= (long)o->conns * o->rounds) {
        int n = epoll_wait(ep, evs, 256, 30000);
        if (n <= 0) {
            fprintf(stderr, "client: no progress (%ld frames)\n", frames);
            return 1;
        }
        for (int k = 0; k < n; k++) {
            if (drain(&peers[evs[k].data.u32], o->payload, &frames) != 0) {
                fprintf(stderr, "client: bad stream or early end\n");
                return 1;
            }
        }
        if (frames >= want) {
            /* The message reached every connection: when. */
            uint64_t t = now_ns();
            uint8_t stamp[8];
            put_be32(stamp, (uint32_t)(t >> 32));
            put_be32(stamp + 4, (uint32_t)t);
            if (send_frame(peers[0].fd, ID_DONE, stamp, 8) != 0)
                return 1;
            want += o->conns;
        }
    }
    for (int i = 0; i < o->conns; i++)
        close(peers[i].fd);
    free(peers);
    return 0;
}

/* ---- the server process
 * ------------------------------------------------------ */

typedef struct sync_state {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready;
    int dones;
    uint64_t done_ns; /* the client's stamp of the last round */
} sync_state_t;

static sync_state_t sync_st = {PTHREAD_MUTEX_INITIALIZER,
                               PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void on_ready(zinx_request_t *req, void *udata)
{
    (void)req;
    (void)udata;
    pthread_mutex_lock(&sync_st.lock);
    sync_st.ready = 1;
    pthread_cond_broadcast(&sync_st.cond);
    pthread_mutex_unlock(&sync_st.lock);
}

static void on_done(zinx_request_t *req, void *udata)
{
    (void)udata;
    const uint8_t *d = zinx_request_data(req);
    if (zinx_request_data_len(req) != 8)
        return;
    uint64_t t = (uint64_t)get_be32(d) << 32 | get_be32(d + 4);
    pthread_mutex_lock(&sync_st.lock);
    sync_st.done_ns = t;
    sync_st.dones++;
    pthread_cond_broadcast(&sync_st.cond);
    pthread_mutex_unlock(&sync_st.lock);
}

/* Waits until *field reaches want; false after 60 s. */
static int wait_for(int *field, int want)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 60;
    pthread_mutex_lock(&sync_st.lock);
    int rc = 0;
    while (*field < want && rc == 0)
        rc = pthread_cond_timedwait(&sync_st.cond, &sync_st.lock, &dl);
    int ok = *field >= want;
    pthread_mutex_unlock(&sync_st.lock);
    return ok;
}

typedef struct send_ctx {
    uint32_t len;
    uint8_t payload[MAX_PAYLOAD];
    int queued;
} send_ctx_t;

static int send_one(zinx_conn_t *conn, void *udata)
{
    send_ctx_t *s = udata;
    if (zinx_conn_send_msg(conn, ID_CAST, s->payload, s->len) == 0)
        s->queued++;
    return 0;
}

static int queue_round(zinx_server_t *srv, const opts_t *o, int round)
{
    send_ctx_t s;
    memset(s.payload, 'a' + round % 26, sizeof(s.payload));
    s.queued = 0;
    s.len = o->payload;
    if (o->broadcast)
        return zinx_server_broadcast(srv, ID_CAST, s.payload, s.len);
    zinx_connmgr_foreach(zinx_server_connmgr(srv), send_one, &s);
    return s.queued;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_u64);
    return (double)v[n / 2] / 1e6;
}

static int run_rounds(zinx_server_t *srv, const opts_t *o)
{
    static uint64_t queued_ns[MAX_ROUNDS], delivered_ns[MAX_ROUNDS];
    if (!wait_for(&sync_st.ready, 1)) {
        fprintf(stderr, "server: the client did not connect\n");
        return 1;
    }
    /* Connected is not yet accepted: wait until every one is listed. */
    for (int i = 0; i < 60000 && zinx_connmgr_count(zinx_server_connmgr(srv)) <
                                     (size_t)o->conns;
         i++)
        usleep(1000);
    long rss0 = rss_kib(), rss1 = 0;
    for (int r = 0; r < o->rounds; r++) {
        uint64_t t0 = now_ns();
        int n = queue_round(srv, o, r);
        uint64_t t1 = now_ns();
        if (r == 0)
            rss1 = rss_kib();
        if (n != o->conns) {
            fprintf(stderr, "server: queued for %d of %d\n", n, o->conns);
            return 1;
        }
        if (!wait_for(&sync_st.dones, r + 1)) {
            fprintf(stderr, "server: round %d not delivered\n", r);
            return 1;
        }
        pthread_mutex_lock(&sync_st.lock);
        delivered_ns[r] = sync_st.done_ns - t0;
        pthread_mutex_unlock(&sync_st.lock);
        queued_ns[r] = t1 - t0;
    }
    long rss2 = rss_kib();
    if (o->header) {
        printf("| way | connections | payload (B) | queued (ms) | delivered to "
               "all (ms) "
               "| server RSS growth, first round (KiB) | after %d rounds "
               "(KiB) |\n",
               o->rounds);
        printf("|---|---|---|---|---|---|---|\n");
    }
    printf("| %s | %d | %u | %.2f | %.2f | %ld | %ld |\n",
           o->broadcast ? "zinx_server_broadcast (one shared segment)"
                        : "zinx_conn_send_msg per connection",
           o->conns, o->payload, median_ms(queued_ns, o->rounds),
           median_ms(delivered_ns, o->rounds), rss1 - rss0, rss2 - rss0);
    fflush(stdout);
    return 0;
}

static int run_server(const opts_t *o, int port_pipe)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0;
    cfg.max_conn = (uint32_t)o->conns + 100;
    cfg.worker_pool_size = o->workers;
    zinx_server_t *srv = zinx_server_new(&cfg);
    if (srv == NULL)
        return 1;
    zinx_router_t ready = {.handle = on_ready}, done = {.handle = on_done};
    zinx_server_add_router(srv, ID_READY, &ready);
    zinx_server_add_router(srv, ID_DONE, &done);
    int rc = zinx_server_start(srv);
    int port = rc == 0 ? zinx_server_port(srv) : -1;
    if (write(port_pipe, &port, sizeof(port)) != (ssize_t)sizeof(port))
        rc = 1;
    close(port_pipe);
    if (rc == 0)
        rc = run_rounds(srv, o);
    zinx_server_stop(srv);
    zinx_server_wait(srv);
    zinx_server_free(srv);
    return rc != 0;
}

/* ---- main ------------------------------------------------------------------
 */

static int parse(int argc, char **argv, opts_t *o)
{
    static const struct option longs[] = {
        {"mode", required_argument, NULL, 'm'},
        {"conns", required_argument, NULL, 'c'},
        {"rounds", required_argument, NULL, 'r'},
        {"workers", required_argument, NULL, 'w'},
        {"header", no_argument, NULL, 'H'},
        {"payload", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0}};
    *o = (opts_t){.broadcast = 1,
                  .conns = 10000,
                  .rounds = 20,
                  .workers = 10,
                  .payload = 64};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (strcmp(optarg, "broadcast") != 0 && strcmp(optarg, "send") != 0)
                return -1;
            o->broadcast = strcmp(optarg, "broadcast") == 0;
            break;
        case 'c':
            o->conns = atoi(optarg);
            break;
        case 'r':
            o->rounds = atoi(optarg);
            break;
        case 'w':
            o->workers = (uint32_t)atoi(optarg);
            break;
        case 'H':
            o->header = 1;
            break;
        case 'p':
            o->payload = (uint32_t)atoi(optarg);
            break;
        default:
            return -1;
        }
    }
    if (o->conns < 1 || o->conns > 19000 || o->payload > MAX_PAYLOAD ||
        o->rounds < 1 || o->rounds > MAX_ROUNDS)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (parse(argc, argv, &o) != 0) {
        fprintf(
            stderr,
            "usage: zinx-bench-broadcast --mode broadcast|send "
            "[--conns N<=19000] [--payload B<=4096] [--rounds R] [--workers W] "
            "[--header]\n");
        return 2;
    }
    raise_nofile();
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    /* Fork before any thread exists; the child is the clients. */
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(fds[1]);
        int port = -1;
        if (read(fds[0], &port, sizeof(port)) != (ssize_t)sizeof(port) ||
            port <= 0)
            _exit(1);
        _exit(run_clients(&o, port));
    }
    close(fds[0]);
    int rc = run_server(&o, fds[1]);
    int status = 0;
    if (rc != 0)
        kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = 1;
    return rc;
}
