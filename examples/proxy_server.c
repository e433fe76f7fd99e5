/*
 * A server behind a proxy (HAProxy, nginx's stream module, a cloud load
 * balancer) that speaks the PROXY protocol: each connection starts with a
 * header naming the real client, and the hooks, handlers and log see the
 * client's address instead of the proxy's.
 *
 *   ./bin/zinx-proxy-server             serve on 0.0.0.0:8999 (Ctrl-C),
 *                                       PROXY v1 or v2 from 127.0.0.1 only
 *   ./bin/zinx-proxy-server --selftest  serve on a free loopback port and
 *                                       play the proxy: send a v1 and a v2
 *                                       header, then a frame, and check
 *                                       what the server saw; exit 0 or 1
 *
 * A HAProxy in front of the first form:
 *
 *   frontend fe
 *       bind :7000
 *       default_backend zinx
 *   backend zinx
 *       server s1 127.0.0.1:8999 send-proxy-v2
 */
#define _DEFAULT_SOURCE /* usleep */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <zinx.h>

#define MSG_WHO 1 /* request: anything; reply: who the server thinks we are */

/* What OnConnStart saw last (the self-test compares it). */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen_client[64], seen_proxy[64];

static void on_start(zinx_conn_t *conn, void *udata)
{
    (void)udata;
    printf("conn %llu: client %s (to %s), through proxy %s\n",
           (unsigned long long)zinx_conn_id(conn), zinx_conn_remote_addr(conn),
           zinx_conn_local_addr(conn), zinx_conn_peer_addr(conn));
    pthread_mutex_lock(&seen_lock);
    snprintf(seen_client, sizeof(seen_client), "%s",
             zinx_conn_remote_addr(conn));
    snprintf(seen_proxy, sizeof(seen_proxy), "%s", zinx_conn_peer_addr(conn));
    pthread_mutex_unlock(&seen_lock);
}

static void on_who(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    const char *who = zinx_conn_remote_addr(conn);
    zinx_conn_send_msg(conn, MSG_WHO, who, (uint32_t)strlen(who));
}

/* ---- the self-test: this program as its own proxy ---------------------- */

/* Blocking calls here may return EINTR: on the io_uring backend the
   kernel runs completion work on the thread that set the server up,
   which interrupts that thread's system calls. */

/* Connects fd to 127.0.0.1:port, finishing a connect a signal cut. */
static int connect_local(int fd, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return 0;
    if (errno != EINTR && errno != EINPROGRESS)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof(err);
    while (poll(&p, 1, 5000) < 0)
        if (errno != EINTR)
            return -1;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return err == 0 && (p.revents & POLLOUT) ? 0 : -1;
}

static int send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A v2 header for TCP over IPv4 from src:sport to 10.0.0.1:8999. */
static size_t v2_header(uint8_t *out, const char *src, uint16_t sport)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    memcpy(out, sig, 12);
    out[12] = 0x21; /* version 2, PROXY */
    out[13] = 0x11; /* IPv4, stream */
    out[14] = 0;
    out[15] = 12;
    inet_pton(AF_INET, src, out + 16);
    inet_pton(AF_INET, "10.0.0.1", out + 20);
    out[24] = (uint8_t)(sport >> 8), out[25] = (uint8_t)sport;
    out[26] = 8999 >> 8, out[27] = 8999 & 0xff;
    return 28;
}

/* One connection as a proxy makes it: header, then the client's frame in
   the same write; checks the reply and what the hook saw. Without a
   header (hdr NULL) the server must close it unanswered. */
static int play_proxy(int port, const uint8_t *hdr, size_t hlen,
                      const char *want)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect_local(fd, port) != 0) {
        perror("connect");
        close(fd);
        return 1;
    }
    uint8_t buf[256];
    if (hlen > 0)
        memcpy(buf, hdr, hlen);
    put_u32(buf + hlen, MSG_WHO); /* TLV: id, length, payload */
    put_u32(buf + hlen + 4, 1);
    buf[hlen + 8] = '?';
    uint8_t head[8];
    char who[64] = "";
    int rc = send_all(fd, buf, hlen + 9) != 0 || recv_all(fd, head, 8) != 0;
    uint32_t len = (uint32_t)head[4] << 24 | (uint32_t)head[5] << 16 |
                   (uint32_t)head[6] << 8 | head[7];
    if (rc == 0 && len < sizeof(who))
        rc = recv_all(fd, who, len) != 0;
    close(fd);
    if (hdr == NULL)
        return rc == 0; /* a reply: the server took a stranger's frame */
    pthread_mutex_lock(&seen_lock);
    printf("%s header: hook saw client %s through %s; reply: %s\n",
           hdr[0] == 'P' ? "v1" : "v2", seen_client, seen_proxy, who);
    int ok = rc == 0 && strcmp(who, want) == 0 &&
             strcmp(seen_client, want) == 0 &&
             strncmp(seen_proxy, "127.0.0.1:", 10) == 0;
    pthread_mutex_unlock(&seen_lock);
    if (!ok)
        fprintf(stderr, "expected client %s\n", want);
    return ok ? 0 : 1;
}

static int selftest(zinx_server_t *server)
{
    int port = zinx_server_port(server);
    const char *v1 = "PROXY TCP4 192.0.2.10 10.0.0.1 40000 8999\r\n";
    int failed =
        play_proxy(port, (const uint8_t *)v1, strlen(v1), "192.0.2.10:40000");
    uint8_t v2[32];
    size_t n = v2_header(v2, "198.51.100.20", 50000);
    failed |= play_proxy(port, v2, n, "198.51.100.20:50000");
    /* A client that skips the proxy sends no header: refused. */
    failed |= play_proxy(port, NULL, 0, NULL);
    zinx_server_stats_t st;
    for (int i = 0; i < 200; i++) { /* the count follows the close */
        zinx_server_stats(server, &st);
        if (st.proxy_refused == 1)
            break;
        usleep(10000);
    }
    printf("direct connection without a header: refused (proxy_refused "
           "%llu)\n",
           (unsigned long long)st.proxy_refused);
    failed |= st.proxy_refused != 1;
    return failed;
}

int main(int argc, char **argv)
{
    int test = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.proxy_protocol = ZINX_PROXY_EITHER;
    /* Only the proxy may name clients: anyone else could claim any
       address. */
    snprintf(cfg.proxy_protocol_from, sizeof(cfg.proxy_protocol_from),
             "127.0.0.1, ::1");
    if (test) {
        snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
        cfg.tcp_port = 0;
    }
    zinx_server_t *server = zinx_server_new(&cfg);
    if (server == NULL)
        return 1;
    zinx_router_t who = {.handle = on_who};
    zinx_server_add_router(server, MSG_WHO, &who);
    zinx_server_on_conn_start(server, on_start, NULL);
    int rc;
    if (test) {
        rc = zinx_server_start(server);
        if (rc == 0)
            rc = selftest(server);
        zinx_server_stop(server);
        zinx_server_wait(server);
    } else {
        rc = zinx_server_serve(server);
    }
    zinx_server_free(server);
    return rc == 0 ? 0 : 1;
}
