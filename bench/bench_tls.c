/*
 * TLS against plain TCP: echo throughput at one message size, and the
 * server's memory per idle TLS connection.
 *
 *   zinx-bench-tls [--size N] [--seconds S] [--conns C] [--window W]
 *                  [--idle N]
 *
 * The server runs in a child process pinned to CPU 0 (one I/O thread,
 * handlers inline), the load in this process pinned to CPU 1: C
 * connections, each a thread that writes W frames of N payload bytes in
 * one write and reads the W echoes back, for S seconds; first over
 * plain TCP, then over TLS 1.3 (AES-GCM), alternating twice (A/B
 * interleaved). Then N idle TLS connections are opened and the child's
 * RSS before and after, divided by N, is the cost of one (its SSL
 * object and the connection; record buffers are released when idle).
 * The certificate is a throw-away one made with the openssl CLI.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zinx.h>

static int opt_size = 1024, opt_seconds = 3, opt_conns = 4, opt_window = 16;
static int opt_idle = 1000;

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof(set), &set); /* best effort */
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the server (child) -------------------------------------------------- */

static void echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}

static zinx_server_t *start_server(const char *dir, int tls)
{
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
    cfg.tcp_port = 0;
    cfg.io_threads = 1;
    cfg.worker_pool_size = 0;
    cfg.max_conn = 20000;
    cfg.max_packet_size = 65536;
    cfg.log_isolation_level = 3;
    if (tls) {
        snprintf(cfg.cert_file, sizeof(cfg.cert_file), "%s/cert.pem", dir);
        snprintf(cfg.private_key_file, sizeof(cfg.private_key_file),
                 "%s/key.pem", dir);
    }
    zinx_server_t *s = zinx_server_new(&cfg);
    zinx_router_t r = {.handle = echo};
    zinx_server_add_router(s, 1, &r);
    if (zinx_server_start(s) != 0)
        exit(1);
    return s;
}

/* Serves TCP and TLS on two servers; reports both ports on fd. */
static void child(const char *dir, int fd)
{
    pin(0);
    zinx_server_t *plain = start_server(dir, 0);
    zinx_server_t *tls = start_server(dir, 1);
    int ports[2] = {zinx_server_port(plain), zinx_server_port(tls)};
    if (write(fd, ports, sizeof(ports)) != sizeof(ports))
        exit(1);
    for (;;)
        pause(); /* until SIGKILL */
}

/* The server's CPU time so far (user + system), in seconds: beside
   throughput, the cost per message of the server alone, which a load
   generator sharing the machine does not blur. */
static double cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold blanks */
    unsigned long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
                            "%*u %*u %lu %lu",
                            &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

/* ---- the load ------------------------------------------------------------ */

typedef struct link {
    int fd;
    SSL *ssl; /* NULL: plain TCP */
} link_t;

static SSL_CTX *client_ctx;
static atomic_bool running;
static atomic_uint_least64_t echoed;

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

static int link_open(link_t *l, int port, int tls)
{
    l->fd = dial(port);
    l->ssl = NULL;
    if (!tls)
        return 0;
    l->ssl = SSL_new(client_ctx);
    SSL_set_fd(l->ssl, l->fd);
    return SSL_connect(l->ssl) == 1 ? 0 : -1;
}

static void link_close(link_t *l)
{
    if (l->ssl != NULL) {
        SSL_shutdown(l->ssl);
        SSL_free(l->ssl);
    }
    close(l->fd);
}

static int put_all(link_t *l, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (l->ssl != NULL) {
            size_t done = 0;
            w = SSL_write_ex(l->ssl, p, n, &done) == 1 ? (ssize_t)done : -1;
        } else {
            w = write(l->fd, p, n);
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int get_all(link_t *l, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r;
        if (l->ssl != NULL) {
            size_t done = 0;
            r = SSL_read_ex(l->ssl, p, n, &done) == 1 ? (ssize_t)done : -1;
        } else {
            r = read(l->fd, p, n);
        }
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

typedef struct job {
    int port, tls;
} job_t;

static void *load(void *arg)
{
    job_t *j = arg;
    pin(1);
    link_t l;
    if (link_open(&l, j->port, j->tls) != 0) {
        fprintf(stderr, "TLS handshake failed\n");
        exit(1);
    }
    size_t frame = 8 + (size_t)opt_size, batch = frame * (size_t)opt_window;
    uint8_t *out = calloc(1, batch), *in = malloc(batch);
    for (int i = 0; i < opt_window; i++) {
        uint8_t *f = out + (size_t)i * frame;
        f[3] = 1; /* ID 1, big-endian */
        f[4] = (uint8_t)(opt_size >> 24);
        f[5] = (uint8_t)(opt_size >> 16);
        f[6] = (uint8_t)(opt_size >> 8);
        f[7] = (uint8_t)opt_size;
    }
    while (atomic_load(&running)) {
        if (put_all(&l, out, batch) != 0 || get_all(&l, in, batch) != 0) {
            fprintf(stderr, "echo failed\n");
            exit(1);
        }
        atomic_fetch_add(&echoed, (uint64_t)opt_window);
    }
    link_close(&l);
    free(out);
    free(in);
    return NULL;
}

typedef struct result {
    double msgs; /* echoed per second */
    double cpu;  /* server CPU seconds per message */
} result_t;

static result_t run(pid_t server, int port, int tls)
{
    pthread_t t[64];
    job_t j = {port, tls};
    atomic_store(&echoed, 0);
    atomic_store(&running, true);
    for (int i = 0; i < opt_conns; i++)
        pthread_create(&t[i], NULL, load, &j);
    usleep(300 * 1000); /* handshakes and warm-up */
    uint64_t start = atomic_load(&echoed);
    double t0 = now_s(), c0 = cpu_s(server);
    usleep((useconds_t)opt_seconds * 1000000u);
    uint64_t n = atomic_load(&echoed) - start;
    double secs = now_s() - t0, cpu = cpu_s(server) - c0;
    atomic_store(&running, false);
    for (int i = 0; i < opt_conns; i++)
        pthread_join(t[i], NULL);
    result_t r = {(double)n / secs, n > 0 ? cpu / (double)n : 0};
    return r;
}

static void idle_rss(pid_t pid, int port)
{
    link_t *links = calloc((size_t)opt_idle, sizeof(*links));
    usleep(200 * 1000);
    long before = rss_kib(pid);
    for (int i = 0; i < opt_idle; i++)
        if (link_open(&links[i], port, 1) != 0) {
            fprintf(stderr, "idle handshake %d failed\n", i);
            exit(1);
        }
    usleep(500 * 1000); /* the server finishes its side */
    long after = rss_kib(pid);
    printf("idle TLS connections: %d, server RSS %ld -> %ld KiB: %.1f KiB "
           "per connection\n",
           opt_idle, before, after, (double)(after - before) / opt_idle);
    for (int i = 0; i < opt_idle; i++)
        link_close(&links[i]);
    free(links);
}

static int make_cert(char *dir)
{
    if (mkdtemp(dir) == NULL)
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-nodes -keyout %s/key.pem -out %s/cert.pem -days 1 "
             "-subj /CN=localhost >/dev/null 2>&1",
             dir, dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--size") == 0)
            opt_size = v;
        else if (strcmp(argv[i], "--seconds") == 0)
            opt_seconds = v;
        else if (strcmp(argv[i], "--conns") == 0)
            opt_conns = v > 64 ? 64 : v;
        else if (strcmp(argv[i], "--window") == 0)
            opt_window = v;
        else if (strcmp(argv[i], "--idle") == 0)
            opt_idle = v;
    }
    char dir[] = "/tmp/zinx-bench-tls-XXXXXX";
    if (make_cert(dir) != 0) {
        fprintf(stderr, "bench-tls: cannot make a certificate (openssl)\n");
        return 1;
    }
    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0)
        child(dir, p[1]);
    int ports[2];
    if (read(p[0], ports, sizeof(ports)) != sizeof(ports))
        return 1;
    pin(1);
    client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(client_ctx, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(client_ctx, "TLS_AES_128_GCM_SHA256");
    /* The load reads whole socket buffers, as the server does: without
       it each record costs the client two reads, and the client, not
       the server, sets the pace. */
    SSL_CTX_set_read_ahead(client_ctx, 1);
    double tcp = 0, tls = 0, tcp_cpu = 0, tls_cpu = 0;
    for (int round = 0; round < 2; round++) {
        result_t a = run(pid, ports[0], 0), b = run(pid, ports[1], 1);
        tcp += a.msgs;
        tls += b.msgs;
        tcp_cpu += a.cpu;
        tls_cpu += b.cpu;
    }
    printf("echo %d B, %d conns x window %d: TCP %.0f msg/s, TLS 1.3 "
           "AES-128-GCM %.0f msg/s, TLS/TCP %.2f\n",
           opt_size, opt_conns, opt_window, tcp / 2, tls / 2, tls / tcp);
    printf("server CPU per message: TCP %.2f us, TLS %.2f us: TCP/TLS "
           "%.2f (the server's throughput ratio at equal CPU)\n",
           tcp_cpu / 2 * 1e6, tls_cpu / 2 * 1e6,
           tls_cpu > 0 ? tcp_cpu / tls_cpu : 0);
    if (opt_idle > 0)
        idle_rss(pid, ports[1]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    SSL_CTX_free(client_ctx);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
