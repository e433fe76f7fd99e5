/*
 * zinx-bench-cluster: what the cluster over NATS costs (docs/benchmarks.md,
 * scripts/bench-cluster.sh).
 *
 *   zinx-bench-cluster --nats URL [--samples 20000] [--conns 10000]
 *                      [--rounds 30] [--server-cpu 0] [--load-cpu 1]
 *
 * The program is the load: it pins itself to --load-cpu and starts three
 * server processes on --server-cpu (itself again, --role node): S, a
 * node without a cluster, and A and B, nodes 1 and 2 of one cluster
 * (nats-server is started by the script, on the load's CPU).
 *
 * Latency: a connection to B says its ID; then, one at a time, the load
 * asks A (over a connection to A) to notify that ID; A's handler stamps
 * CLOCK_MONOTONIC and calls zinx_server_notify(); the load stamps the
 * frame's arrival on B's connection. p50/p99/p99.9 of the difference.
 *
 * Broadcast: --conns connections to S, and as many split in halves over
 * A and B. A round asks S (or A) to stamp and broadcast; the load reads
 * one frame on every connection of the group and takes the last
 * arrival. Rounds alternate S and A+B, so that both see the same
 * machine; the ratio is of the medians of one run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zinx.h>
#include <zinx/cluster.h>

#define FMT ZINX_FORMAT_TLV
#define ID_WHOAMI 1u
#define ID_FIRE 2u
#define ID_CAST 3u
#define ID_STAMP 4u
#define FRAME (ZINX_HEADER_LEN + 8)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        perror("sched_setaffinity");
}

static void die(const char *what)
{
    fprintf(stderr, "zinx-bench-cluster: %s\n", what);
    exit(1);
}

/* ---- a server node ---------------------------------------------------- */

static void on_whoami(zinx_request_t *req, void *udata)
{
    (void)udata;
    uint64_t id = zinx_conn_id(zinx_request_conn(req));
    zinx_conn_send_msg(zinx_request_conn(req), ID_WHOAMI, &id, sizeof(id));
}

static void on_fire(zinx_request_t *req, void *udata)
{
    zinx_server_t *s = udata;
    uint64_t target;
    if (zinx_request_data_len(req) != sizeof(target))
        return;
    memcpy(&target, zinx_request_data(req), sizeof(target));
    uint64_t t0 = now_ns();
    zinx_server_notify(s, &target, 1, ID_STAMP, &t0, sizeof(t0));
}

static void on_cast(zinx_request_t *req, void *udata)
{
    (void)req;
    uint64_t t0 = now_ns();
    zinx_server_broadcast(udata, ID_STAMP, &t0, sizeof(t0));
}

static int run_node(uint32_t node, const char *url)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0;
    cfg.max_conn = 30000;
    cfg.io_threads = 1;
    cfg.worker_pool_size = 1;
    cfg.packet_format = FMT;
    cfg.log_isolation_level = ZINX_LOG_WARN;
    if (node != 0) {
        snprintf(cfg.cluster_name, sizeof(cfg.cluster_name), "bench");
        snprintf(cfg.cluster_nats_url, sizeof(cfg.cluster_nats_url), "%s", url);
        cfg.cluster_node = node;
    }
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        die("zinx_server_new");
    zinx_router_t who = {.handle = on_whoami};
    zinx_router_t fire = {.handle = on_fire, .udata = s};
    zinx_router_t cast = {.handle = on_cast, .udata = s};
    zinx_server_add_router(s, ID_WHOAMI, &who);
    zinx_server_add_router(s, ID_FIRE, &fire);
    zinx_server_add_router(s, ID_CAST, &cast);
    if (zinx_server_start(s) != 0)
        die("zinx_server_start");
    printf("%d\n", zinx_server_port(s));
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) /* until the load closes our stdin */
        ;
    zinx_server_free(s);
    return 0;
}

typedef struct child {
    pid_t pid;
    int in; /* its stdin: closed to stop it */
    int port;
} child_t;

static child_t spawn_node(const char *self, uint32_t node, const char *url,
                          int cpu)
{
    int to[2], from[2];
    /* Close-on-exec: the next node must not hold this one's stdin open. */
    if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0)
        die("pipe");
    child_t c = {0};
    c.pid = fork();
    if (c.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pin(cpu);
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        char n[16];
        snprintf(n, sizeof(n), "%u", node);
        execl(self, self, "--role", n, "--nats", url, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    c.in = to[1];
    char line[32] = {0};
    ssize_t got = read(from[0], line, sizeof(line) - 1);
    close(from[0]);
    if (got <= 0 || (c.port = atoi(line)) <= 0)
        die("a node did not start");
    return c;
}

/* ---- the load ----------------------------------------------------------- */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket (descriptor limit?)");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        die("connect");
    return fd;
}

static void send_frame(int fd, uint32_t id, const void *data, uint32_t len)
{
    uint8_t buf[64];
    long n = zinx_pack(FMT, 4096, id, data, len, buf, sizeof(buf));
    if (n < 0 || write(fd, buf, (size_t)n) != n)
        die("write");
}

/* One frame of 8 payload bytes (blocking socket). */
static uint64_t recv_u64(int fd, uint32_t want)
{
    uint8_t buf[FRAME];
    size_t got = 0;
    while (got < sizeof(buf)) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - got);
        if (n <= 0)
            die("read");
        got += (size_t)n;
    }
    zinx_msg_t m;
    if (zinx_unpack(FMT, 4096, buf, sizeof(buf), &m) != FRAME || m.id != want)
        die("unexpected frame");
    uint64_t v;
    memcpy(&v, m.data, sizeof(v));
    return v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

static int readable_within(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    uint8_t b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK);
    tv.tv_sec = tv.tv_usec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return n == 1;
}

static void latency(int port_a, int port_b, int samples)
{
    int ca = dial(port_a), cb = dial(port_b);
    send_frame(cb, ID_WHOAMI, NULL, 0);
    uint64_t idb = recv_u64(cb, ID_WHOAMI);
    /* Until A knows B (heartbeats) and the path is warm. */
    for (int tries = 0;; tries++) {
        send_frame(ca, ID_FIRE, &idb, sizeof(idb));
        if (readable_within(cb, 200)) {
            recv_u64(cb, ID_STAMP);
            break;
        }
        if (tries > 100)
            die("A never reached B");
    }
    uint64_t *lat = malloc((size_t)samples * sizeof(*lat));
    for (int i = 0; i < samples + 1000; i++) {
        send_frame(ca, ID_FIRE, &idb, sizeof(idb));
        uint64_t t0 = recv_u64(cb, ID_STAMP);
        uint64_t d = now_ns() - t0;
        if (i >= 1000) /* warm-up */
            lat[i - 1000] = d;
    }
    qsort(lat, (size_t)samples, sizeof(*lat), cmp_u64);
    printf("| cross-node notify latency (%d samples) | p50 %.1f us | p99 %.1f "
           "us | p99.9 %.1f us | max %.1f us |\n",
           samples, pct(lat, samples, 0.5) / 1e3, pct(lat, samples, 0.99) / 1e3,
           pct(lat, samples, 0.999) / 1e3, lat[samples - 1] / 1e3);
    free(lat);
    close(ca);
    close(cb);
}

typedef struct group {
    int *fds;
    int n;
    int ep;
} group_t;

static void group_add(group_t *g, int port, int count)
{
    for (int i = 0; i < count; i++) {
        int fd = dial(port);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)g->n};
        epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev);
        g->fds[g->n++] = fd;
    }
}

/* Asks ctrl's node to broadcast; returns ns from its stamp to the last
   connection's frame. */
static uint64_t round_trip(group_t *g, int ctrl)
{
    static uint8_t got[40000];
    memset(got, 0, (size_t)g->n);
    int fl = fcntl(ctrl, F_GETFL);
    fcntl(ctrl, F_SETFL, fl & ~O_NONBLOCK);
    send_frame(ctrl, ID_CAST, NULL, 0);
    fcntl(ctrl, F_SETFL, fl);
    int left = g->n;
    uint64_t t0 = 0, last = 0;
    struct epoll_event evs[256];
    while (left > 0) {
        int k = epoll_wait(g->ep, evs, 256, 5000);
        if (k <= 0)
            die("broadcast did not reach every connection");
        for (int i = 0; i < k; i++) {
            uint32_t at = evs[i].data.u32;
            uint8_t buf[FRAME];
            ssize_t n = recv(g->fds[at], buf + got[at], FRAME - got[at], 0);
            if (n <= 0)
                continue;
            got[at] += (uint8_t)n;
            if (got[at] < FRAME)
                continue;
            zinx_msg_t m;
            zinx_unpack(FMT, 4096, buf, FRAME, &m);
            memcpy(&t0, m.data, sizeof(t0));
            last = now_ns();
            left--;
        }
    }
    return last - t0;
}

/* The two-node group lives in a process of its own: each process stays
   under 20,000 descriptors (the hard limit here). It runs a round each
   time the parent asks, and answers with the round's time. */
static pid_t spawn_group_two(int port_a, int port_b, int conns, int *cmd,
                             int *res)
{
    int c[2], r[2];
    if (pipe2(c, O_CLOEXEC) != 0 || pipe2(r, O_CLOEXEC) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(c[1]); /* the parent's ends: EOF on c[0] ends the loop */
        close(r[0]);
        group_t two = {.fds = calloc((size_t)conns, sizeof(int)),
                       .ep = epoll_create1(0)};
        group_add(&two, port_a, conns / 2);
        group_add(&two, port_b, conns - conns / 2);
        char go;
        uint64_t t = 0;
        if (write(r[1], &t, sizeof(t)) != sizeof(t)) /* ready */
            _exit(1);
        while (read(c[0], &go, 1) == 1) {
            t = round_trip(&two, two.fds[0]);
            if (write(r[1], &t, sizeof(t)) != sizeof(t))
                _exit(1);
        }
        _exit(0);
    }
    close(c[0]);
    close(r[1]);
    *cmd = c[1];
    *res = r[0];
    uint64_t t;
    if (read(*res, &t, sizeof(t)) != sizeof(t))
        die("the two-node group did not connect");
    return pid;
}

static uint64_t round_two(int cmd, int res)
{
    uint64_t t;
    if (write(cmd, "r", 1) != 1 || read(res, &t, sizeof(t)) != sizeof(t))
        die("the two-node group failed");
    return t;
}

static void broadcast(int port_s, int port_a, int port_b, int conns, int rounds)
{
    group_t one = {.fds = calloc((size_t)conns, sizeof(int)),
                   .ep = epoll_create1(0)};
    int cmd, res; /* forked first: it must not inherit group one */
    pid_t two = spawn_group_two(port_a, port_b, conns, &cmd, &res);
    group_add(&one, port_s, conns);
    sleep(2); /* every connection started, A and B know each other */
    uint64_t *t1 = calloc((size_t)rounds, sizeof(*t1));
    uint64_t *t2 = calloc((size_t)rounds, sizeof(*t2));
    for (int r = -3; r < rounds; r++) { /* 3 warm-up rounds each */
        uint64_t a = round_trip(&one, one.fds[0]);
        uint64_t b = round_two(cmd, res);
        if (r >= 0) {
            t1[r] = a;
            t2[r] = b;
        }
    }
    close(cmd);
    waitpid(two, NULL, 0);
    qsort(t1, (size_t)rounds, sizeof(*t1), cmp_u64);
    qsort(t2, (size_t)rounds, sizeof(*t2), cmp_u64);
    uint64_t m1 = pct(t1, rounds, 0.5), m2 = pct(t2, rounds, 0.5);
    printf("| broadcast to %d conns, one node (no cluster) | median %.2f ms | "
           "p90 %.2f ms |\n",
           conns, m1 / 1e6, pct(t1, rounds, 0.9) / 1e6);
    printf("| broadcast to %d conns, two nodes (%d + %d) | median %.2f ms | "
           "p90 %.2f ms |\n",
           conns, conns / 2, conns - conns / 2, m2 / 1e6,
           pct(t2, rounds, 0.9) / 1e6);
    printf("| ratio two nodes / one node (medians, %d interleaved rounds) | "
           "%.2f |\n",
           rounds, (double)m2 / (double)m1);
}

int main(int argc, char **argv)
{
    const char *url = "nats://127.0.0.1:4222";
    int role = -1, samples = 20000, conns = 10000, rounds = 30;
    int server_cpu = 0, load_cpu = 1;
    static const struct option longs[] = {
        {"role", required_argument, NULL, 'r'},
        {"nats", required_argument, NULL, 'n'},
        {"samples", required_argument, NULL, 's'},
        {"conns", required_argument, NULL, 'c'},
        {"rounds", required_argument, NULL, 'R'},
        {"server-cpu", required_argument, NULL, 'S'},
        {"load-cpu", required_argument, NULL, 'L'},
        {NULL, 0, NULL, 0}};
    for (int o; (o = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        switch (o) {
        case 'r':
            role = atoi(optarg);
            break;
        case 'n':
            url = optarg;
            break;
        case 's':
            samples = atoi(optarg);
            break;
        case 'c':
            conns = atoi(optarg);
            break;
        case 'R':
            rounds = atoi(optarg);
            break;
        case 'S':
            server_cpu = atoi(optarg);
            break;
        case 'L':
            load_cpu = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (role >= 0)
        return run_node((uint32_t)role, url);
    if (conns < 2 || conns > 19000 || samples < 1 || rounds < 1)
        die("--conns 2..19000, --samples and --rounds at least 1");
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max; /* inherited by the nodes */
    setrlimit(RLIMIT_NOFILE, &rl);
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        die("readlink");
    self[n] = '\0';
    child_t s = spawn_node(self, 0, url, server_cpu);
    child_t a = spawn_node(self, 1, url, server_cpu);
    child_t b = spawn_node(self, 2, url, server_cpu);
    pin(load_cpu);
    latency(a.port, b.port, samples);
    broadcast(s.port, a.port, b.port, conns, rounds);
    child_t all[3] = {s, a, b};
    for (int i = 0; i < 3; i++) {
        close(all[i].in);
        waitpid(all[i].pid, NULL, 0);
    }
    return 0;
}
