/*
 * peer-epoll: the ceiling of the side-by-side benchmark. A single-thread,
 * level-triggered epoll loop with no framework: one read of up to 64 KiB
 * into a buffer shared by all connections, then one writev of every
 * complete frame found. Only the tail of an incomplete frame is copied
 * into a buffer of the connection's own, kept for reuse; unsent output
 * (a full socket buffer) stops reading that connection until it drains.
 *
 *     peer-epoll [PORT]        prints "listening on 127.0.0.1:PORT"
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "peer_common.h"

#define PROG "peer-epoll"
#define READ_MAX (64u * 1024u)
#define MAX_EVENTS 256

typedef struct pconn {
    int fd;
    uint8_t *in; /* incomplete frame */
    size_t in_len, in_cap;
    uint8_t *out; /* unsent echo */
    size_t out_off, out_len, out_cap;
} pconn_t;

typedef struct peer {
    int ep;
    int lfd;
    uint8_t rbuf[READ_MAX];
} peer_t;

static int reserve(uint8_t **buf, size_t *cap, size_t want)
{
    if (want <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < want)
        n *= 2;
    uint8_t *p = realloc(*buf, n);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

static void drop(peer_t *p, pconn_t *c)
{
    epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

static void watch(peer_t *p, pconn_t *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    epoll_ctl(p->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Moves the bytes writev did not take, from offset `done` on, to out. */
static int keep_unsent(pconn_t *c, const struct iovec *iov, int n, size_t done)
{
    c->out_off = c->out_len = 0;
    for (int i = 0; i < n; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            continue;
        }
        size_t k = iov[i].iov_len - done;
        if (reserve(&c->out, &c->out_cap, c->out_len + k) != 0)
            return -1;
        memcpy(c->out + c->out_len, (uint8_t *)iov[i].iov_base + done, k);
        c->out_len += k;
        done = 0;
    }
    return 0;
}

/*
 * Completes the connection's pending frame from data; returns how many
 * bytes were taken, or -1 for an oversized frame or no memory.
 */
static long fill_partial(pconn_t *c, const uint8_t *data, size_t n)
{
    size_t used = 0, miss;

    while (used < n && (miss = peer_missing(c->in, c->in_len)) > 0) {
        if (c->in_len >= PEER_HEADER &&
            peer_frame_len(c->in) > PEER_MAX_PAYLOAD)
            return -1;
        size_t k = miss < n - used ? miss : n - used;
        if (reserve(&c->in, &c->in_cap, c->in_len + k) != 0)
            return -1;
        memcpy(c->in + c->in_len, data + used, k);
        c->in_len += k;
        used += k;
    }
    return (long)used;
}

/* Echoes every complete frame; false when the connection must go. */
static int echo(peer_t *p, pconn_t *c, const uint8_t *data, size_t n)
{
    struct iovec iov[2];
    int niov = 0, bad = 0;

    if (c->in_len > 0) {
        long used = fill_partial(c, data, n);
        if (used < 0)
            return -1;
        data += used;
        n -= (size_t)used;
        if (peer_missing(c->in, c->in_len) == 0)
            iov[niov++] = (struct iovec){c->in, c->in_len};
    }
    size_t done = peer_complete(data, n, &bad);
    if (bad)
        return -1;
    if (done > 0)
        iov[niov++] = (struct iovec){(void *)data, done};
    size_t total =
        (niov > 0 ? iov[0].iov_len : 0) + (niov > 1 ? iov[1].iov_len : 0);
    if (total > 0) {
        ssize_t w = writev(c->fd, iov, niov);
        if (w < 0 && errno != EAGAIN)
            return -1;
        if ((size_t)(w < 0 ? 0 : w) < total) {
            if (keep_unsent(c, iov, niov, w < 0 ? 0 : (size_t)w) != 0)
                return -1;
            watch(p, c, EPOLLOUT);
        }
        if (iov[0].iov_base == c->in)
            c->in_len = 0;
    }
    if (n > done) {
        if (reserve(&c->in, &c->in_cap, n - done) != 0)
            return -1;
        memcpy(c->in, data + done, n - done);
        c->in_len = n - done;
    }
    return 0;
}

static void on_readable(peer_t *p, pconn_t *c)
{
    ssize_t r = read(c->fd, p->rbuf, READ_MAX);

    if (r < 0 && errno == EAGAIN)
        return;
    if (r <= 0 || echo(p, c, p->rbuf, (size_t)r) != 0)
        drop(p, c);
}

static void on_writable(peer_t *p, pconn_t *c)
{
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

    if (w < 0) {
        if (errno != EAGAIN)
            drop(p, c);
        return;
    }
    c->out_off += (size_t)w;
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        watch(p, c, EPOLLIN);
    }
}

static void on_accept(peer_t *p)
{
    int one = 1;

    for (;;) {
        int fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pconn_t *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (c == NULL || epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
    }
}

static int listen_on(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    inet_pton(AF_INET, PEER_HOST, &sa.sin_addr);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        perror(PROG ": listen");
        return -1;
    }
    peer_print_listening(ntohs(sa.sin_port));
    return fd;
}

int main(int argc, char **argv)
{
    int port = peer_port_arg(argc, argv, PROG);
    peer_t *p = malloc(sizeof *p);
    struct epoll_event evs[MAX_EVENTS];

    if (port < 0 || p == NULL)
        return 2;
    peer_setup_process();
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    p->lfd = listen_on(port);
    if (p->ep < 0 || p->lfd < 0)
        return 1;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(p->ep, EPOLL_CTL_ADD, p->lfd, &lev);
    for (;;) {
        int n = epoll_wait(p->ep, evs, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            pconn_t *c = evs[i].data.ptr;
            if (c == NULL)
                on_accept(p);
            else if (evs[i].events & EPOLLOUT)
                on_writable(p, c);
            else
                on_readable(p, c);
        }
    }
}
