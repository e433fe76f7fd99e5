/*
 * The metrics listener: a small, strict HTTP/1.1 server on a thread of
 * its own, nonblocking with poll(), that answers GET and HEAD /metrics
 * and closes each connection after its answer.
 *
 * Bounded so that no scraper can stall it or another scraper, or make
 * it hold unbounded memory: at most MH_CONNS connections (a new one
 * evicts the oldest still sending its request), a request head of at
 * most MH_REQ_MAX bytes (431 past it), and a deadline of MH_DEADLINE_MS
 * per connection from its accept, answer included. Nothing blocks: a
 * slow reader of the answer waits in poll() like everybody else.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#define MH_CONNS 64
#define MH_REQ_MAX 8192
#define MH_DEADLINE_MS 10000
/* After the answer, how long the peer gets to close its side: closing
   with its bytes unread could reset the connection under the answer. */
#define MH_LINGER_MS 1000
/* How long the listener rests after accept() failed (EMFILE, ENOBUFS). */
#define MH_ACCEPT_PAUSE_MS 100

enum mstate { MC_FREE, MC_READING, MC_WRITING, MC_DRAINING };

typedef struct mconn {
    int fd;
    enum mstate st;
    uint64_t deadline_ms;
    size_t rlen;
    char *req; /* MH_REQ_MAX bytes, kept across connections */
    char *resp;
    size_t rsize, roff;
} mconn_t;

struct zinx__mhttp {
    zinx_server_t *server;
    zinx__metrics_t *m;
    int lfd, wake_fd, port;
    pthread_t thread;
    bool started;
    size_t text_hint; /* the last text's size: the next buffer's */
    /* accept() failed for lack of descriptors or memory: the listener
       stays readable, so it is left out of poll() until then. */
    uint64_t accept_pause_until_ms;
    mconn_t conns[MH_CONNS];
};

/* ---- the listener ------------------------------------------------------- */

static int listen_on(const struct sockaddr *sa, socklen_t len, int *err)
{
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = -errno;
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sa->sa_family == AF_INET6) /* "" : IPv4 too, on one socket */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, sa, len) != 0 || listen(fd, 64) != 0) {
        *err = -errno;
        close(fd);
        return -1;
    }
    return fd;
}

/* Host "" is every interface ("::" with IPv4 too, else 0.0.0.0); a name
   takes its first IPv4 address, else its first, as the main listener. */
static int open_socket(const char *host, int port, int *err)
{
    if (host[0] == '\0') {
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
                                  .sin6_port = htons((uint16_t)port),
                                  .sin6_addr = in6addr_any};
        int fd = listen_on((struct sockaddr *)&a6, sizeof(a6), err);
        if (fd >= 0)
            return fd;
        struct sockaddr_in a4 = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY)};
        return listen_on((struct sockaddr *)&a4, sizeof(a4), err);
    }
    char serv[8];
    snprintf(serv, sizeof(serv), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, serv, &hints, &res) != 0 || res == NULL) {
        *err = ZINX_ENOENT;
        return -1;
    }
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    int fd = listen_on(pick->ai_addr, pick->ai_addrlen, err);
    freeaddrinfo(res);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

zinx__mhttp_t *zinx__mhttp_open(zinx_server_t *s, const char *host, int port,
                                int *err)
{
    zinx__mhttp_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        *err = ZINX_ENOMEM;
        return NULL;
    }
    h->server = s;
    h->m = s->metrics;
    h->lfd = -1;
    for (int i = 0; i < MH_CONNS; i++)
        h->conns[i].fd = -1;
    h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->wake_fd < 0) {
        *err = -errno;
        zinx__mhttp_free(h);
        return NULL;
    }
    h->lfd = open_socket(host, port, err);
    if (h->lfd < 0) {
        zinx__mhttp_free(h);
        return NULL;
    }
    h->port = bound_port(h->lfd);
    return h;
}

int zinx__mhttp_port(const zinx__mhttp_t *h)
{
    return h->port;
}

/* ---- connections ----------------------------------------------------------
 */

static void conn_close(mconn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->st = MC_FREE;
    c->rlen = 0;
    free(c->resp);
    c->resp = NULL;
    c->rsize = c->roff = 0;
}

/* Closed without (all of) its answer: counted. */
static void conn_drop(zinx__mhttp_t *h, mconn_t *c)
{
    atomic_fetch_add(&h->m->dropped, 1);
    conn_close(c);
}

/* A free slot, else the oldest connection still sending its request
   (dropped): a new scraper always gets in, whoever holds the others. */
static mconn_t *free_slot(zinx__mhttp_t *h)
{
    mconn_t *oldest = NULL;
    for (int i = 0; i < MH_CONNS; i++) {
        mconn_t *c = &h->conns[i];
        if (c->st == MC_FREE)
            return c;
        if (c->st != MC_WRITING &&
            (oldest == NULL || c->deadline_ms < oldest->deadline_ms))
            oldest = c;
    }
    if (oldest != NULL) {
        if (oldest->st == MC_DRAINING)
            conn_close(oldest); /* answered already */
        else
            conn_drop(h, oldest);
    }
    return oldest;
}

static void accept_all(zinx__mhttp_t *h, uint64_t now)
{
    for (int i = 0; i < MH_CONNS; i++) {
        int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                h->accept_pause_until_ms = now + MH_ACCEPT_PAUSE_MS;
            return;
        }
        mconn_t *c = free_slot(h);
        if (c == NULL) { /* every slot is sending an answer */
            atomic_fetch_add(&h->m->dropped, 1);
            close(fd);
            continue;
        }
        if (c->req == NULL && (c->req = malloc(MH_REQ_MAX)) == NULL) {
            atomic_fetch_add(&h->m->dropped, 1);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->st = MC_READING;
        c->deadline_ms = now + MH_DEADLINE_MS;
    }
}

/* ---- answers --------------------------------------------------------------
 */

/* The whole text, rendered until it fits (the counters move meanwhile).
   NULL when out of memory. */
static char *render_text(zinx__mhttp_t *h, size_t *len)
{
    size_t cap = h->text_hint + 4096;
    for (int tries = 0; tries < 4; tries++) {
        char *buf = malloc(cap);
        if (buf == NULL)
            return NULL;
        long n = zinx_server_metrics_text(h->server, buf, cap);
        if (n >= 0 && (size_t)n < cap) {
            h->text_hint = (size_t)n;
            *len = (size_t)n;
            return buf;
        }
        free(buf);
        cap = (n > 0 ? (size_t)n : cap) + 4096;
    }
    return NULL;
}

/* Sets c's answer: status line, headers and (unless head) body. */
static void set_answer(mconn_t *c, const char *status, const char *extra,
                       const char *ctype, const char *body, size_t blen,
                       bool head)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: "
                     "%zu\r\n%sConnection: close\r\n\r\n",
                     status, ctype, blen, extra);
    size_t hl = n > 0 && (size_t)n < sizeof(hdr) ? (size_t)n : 0;
    size_t total = hl + (head ? 0 : blen);
    c->resp = malloc(total > 0 ? total : 1);
    if (c->resp == NULL)
        return;
    memcpy(c->resp, hdr, hl);
    if (!head)
        memcpy(c->resp + hl, body, blen);
    c->rsize = total;
    c->roff = 0;
}

static void answer_error(mconn_t *c, const char *status, const char *extra)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%s\n", status);
    set_answer(c, status, extra, "text/plain; charset=utf-8", body,
               n > 0 ? (size_t)n : 0, false);
}

/* Answers a complete head (or a too large one). */
static void answer(zinx__mhttp_t *h, mconn_t *c, zinx__mreq_t what)
{
    switch (what) {
    case ZINX__MREQ_TOO_LARGE:
        answer_error(c, "431 Request Header Fields Too Large", "");
        atomic_fetch_add(&h->m->dropped, 1);
        break;
    case ZINX__MREQ_BAD:
        answer_error(c, "400 Bad Request", "");
        break;
    case ZINX__MREQ_METHOD:
        answer_error(c, "405 Method Not Allowed", "Allow: GET, HEAD\r\n");
        break;
    case ZINX__MREQ_NOT_FOUND:
        answer_error(c, "404 Not Found", "");
        break;
    default: {
        size_t len;
        char *text = render_text(h, &len);
        if (text != NULL) {
            set_answer(c, "200 OK", "",
                       "text/plain; version=0.0.4; charset=utf-8", text, len,
                       what == ZINX__MREQ_HEAD);
            free(text);
            if (c->resp != NULL)
                atomic_fetch_add(&h->m->scrapes, 1);
        }
    }
    }
    if (c->resp == NULL) { /* out of memory */
        conn_drop(h, c);
        return;
    }
    c->st = MC_WRITING;
}

/* ---- I/O -------------------------------------------------------------------
 */

static void on_readable(zinx__mhttp_t *h, mconn_t *c)
{
    ssize_t n = recv(c->fd, c->req + c->rlen, MH_REQ_MAX - c->rlen, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_drop(h, c); /* closed or failed before a whole request */
        return;
    }
    c->rlen += (size_t)n;
    zinx__mreq_t what = zinx__mreq_classify(c->req, c->rlen, MH_REQ_MAX);
    if (what != ZINX__MREQ_INCOMPLETE)
        answer(h, c, what);
}

static void on_writable(zinx__mhttp_t *h, mconn_t *c, uint64_t now)
{
    ssize_t n =
        send(c->fd, c->resp + c->roff, c->rsize - c->roff, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        conn_drop(h, c);
        return;
    }
    c->roff += (size_t)n;
    if (c->roff < c->rsize)
        return;
    shutdown(c->fd, SHUT_WR);
    c->st = MC_DRAINING;
    if (c->deadline_ms > now + MH_LINGER_MS)
        c->deadline_ms = now + MH_LINGER_MS;
}

static void on_drain(mconn_t *c)
{
    char sink[512];
    ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        conn_close(c);
}

static void on_events(zinx__mhttp_t *h, mconn_t *c, short rev, uint64_t now)
{
    if (c->st == MC_READING && (rev & (POLLIN | POLLHUP | POLLERR)))
        on_readable(h, c);
    else if (c->st == MC_WRITING && (rev & (POLLOUT | POLLHUP | POLLERR)))
        on_writable(h, c, now);
    else if (c->st == MC_DRAINING && (rev & (POLLIN | POLLHUP | POLLERR)))
        on_drain(c);
    if (c->st == MC_WRITING) /* answered at once: try to send now */
        on_writable(h, c, now);
}

static void expire(zinx__mhttp_t *h, uint64_t now)
{
    for (int i = 0; i < MH_CONNS; i++) {
        mconn_t *c = &h->conns[i];
        if (c->st == MC_FREE || c->deadline_ms > now)
            continue;
        if (c->st == MC_DRAINING)
            conn_close(c);
        else
            conn_drop(h, c);
    }
}

/* ---- the thread
 * -------------------------------------------------------------- */

static short interest(const mconn_t *c)
{
    return c->st == MC_WRITING ? POLLOUT : POLLIN;
}

/* Fills fds (wake, listener, connections); idx maps fds to slots.
   Returns the count and sets *timeout to the nearest deadline. */
static nfds_t fill(const zinx__mhttp_t *h, struct pollfd *fds, int *idx,
                   uint64_t now, int *timeout)
{
    nfds_t n = 0;
    fds[n++] = (struct pollfd){.fd = h->wake_fd, .events = POLLIN};
    bool paused = h->accept_pause_until_ms > now;
    /* A negative descriptor is skipped by poll(). */
    fds[n++] = (struct pollfd){.fd = paused ? -1 : h->lfd, .events = POLLIN};
    *timeout = paused ? (int)(h->accept_pause_until_ms - now) : -1;
    for (int i = 0; i < MH_CONNS; i++) {
        const mconn_t *c = &h->conns[i];
        if (c->st == MC_FREE)
            continue;
        uint64_t left = c->deadline_ms > now ? c->deadline_ms - now : 0;
        if (*timeout < 0 || left < (uint64_t)*timeout)
            *timeout = (int)left;
        idx[n] = i;
        fds[n++] = (struct pollfd){.fd = c->fd, .events = interest(c)};
    }
    return n;
}

static void *serve(void *arg)
{
    zinx__mhttp_t *h = arg;
    struct pollfd fds[MH_CONNS + 2];
    int idx[MH_CONNS + 2];
    for (;;) {
        int timeout;
        nfds_t n = fill(h, fds, idx, zinx__now_ms(), &timeout);
        if (poll(fds, n, timeout) < 0 && errno != EINTR)
            break;
        if (fds[0].revents != 0)
            break; /* the stop */
        uint64_t now = zinx__now_ms();
        for (nfds_t i = 2; i < n; i++)
            if (fds[i].revents != 0)
                on_events(h, &h->conns[idx[i]], fds[i].revents, now);
        if (fds[1].revents != 0)
            accept_all(h, now);
        expire(h, now);
    }
    return NULL;
}

int zinx__mhttp_start(zinx__mhttp_t *h)
{
    int rc = zinx__thread_spawn(&h->thread, serve, h, "zinx-metrics");
    if (rc == 0)
        h->started = true;
    return rc;
}

void zinx__mhttp_free(zinx__mhttp_t *h)
{
    if (h == NULL)
        return;
    if (h->started) {
        uint64_t one = 1;
        ssize_t w = write(h->wake_fd, &one, sizeof(one));
        ZINX__UNUSED(w);
        pthread_join(h->thread, NULL);
    }
    for (int i = 0; i < MH_CONNS; i++) {
        conn_close(&h->conns[i]);
        free(h->conns[i].req);
    }
    if (h->lfd >= 0)
        close(h->lfd);
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    free(h);
}
