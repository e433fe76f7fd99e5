/* The impaired UDP link (udp_relay.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "udp_relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Datagrams held at once: a bound, so a flood costs memory once. */
#define UR_MAX_IN_FLIGHT 16384
#define UR_MAX_DATAGRAM 65536

enum { UR_UP, UR_DOWN };

typedef struct ur_packet {
    uint64_t due_us;
    uint64_t order; /* ties keep arrival order */
    int dir;
    size_t len;
    uint8_t data[];
} ur_packet_t;

struct ur_relay {
    ur_opts_t opts;
    int front; /* the client's side, bound to ur_port() */
    int back;  /* connected to the server */
    int wake;  /* eventfd: ur_stop() */
    atomic_bool stop;
    pthread_t thread;
    struct sockaddr_in client;
    bool have_client;
    uint64_t rng;
    uint64_t arrivals;
    ur_packet_t **heap; /* min-heap on (due_us, order) */
    size_t count;
    atomic_uint_least64_t up_forwarded, up_dropped;
    atomic_uint_least64_t down_forwarded, down_dropped;
    atomic_uint_least64_t foreign, overflow;
    uint8_t buf[UR_MAX_DATAGRAM];
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* splitmix64: small, and good enough to draw fates from. */
static uint64_t next_rand(ur_relay_t *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double next_unit(ur_relay_t *r)
{
    return (double)(next_rand(r) >> 11) * 0x1.0p-53;
}

/* ---- the delay queue ------------------------------------------------------
 */

static bool before(const ur_packet_t *a, const ur_packet_t *b)
{
    return a->due_us < b->due_us ||
           (a->due_us == b->due_us && a->order < b->order);
}

static void swap_at(ur_relay_t *r, size_t i, size_t j)
{
    ur_packet_t *t = r->heap[i];
    r->heap[i] = r->heap[j];
    r->heap[j] = t;
}

static void heap_push(ur_relay_t *r, ur_packet_t *p)
{
    size_t i = r->count++;
    r->heap[i] = p;
    while (i > 0 && before(r->heap[i], r->heap[(i - 1) / 2])) {
        swap_at(r, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static ur_packet_t *heap_pop(ur_relay_t *r)
{
    ur_packet_t *top = r->heap[0];
    r->heap[0] = r->heap[--r->count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < r->count && before(r->heap[l], r->heap[m]))
            m = l;
        if (l + 1 < r->count && before(r->heap[l + 1], r->heap[m]))
            m = l + 1;
        if (m == i)
            break;
        swap_at(r, i, m);
        i = m;
    }
    return top;
}

/* ---- the link ------------------------------------------------------------ */

/* Decides the fate of one datagram that arrived in direction dir. */
static void admit(ur_relay_t *r, int dir, size_t len)
{
    const ur_link_t *link = dir == UR_UP ? &r->opts.up : &r->opts.down;
    if (next_unit(r) < link->loss) {
        atomic_fetch_add(dir == UR_UP ? &r->up_dropped : &r->down_dropped, 1);
        return;
    }
    ur_packet_t *p = NULL;
    if (r->count < UR_MAX_IN_FLIGHT)
        p = malloc(sizeof(*p) + len);
    if (p == NULL) {
        atomic_fetch_add(&r->overflow, 1);
        return;
    }
    int64_t delay = (int64_t)link->delay_ms * 1000;
    if (link->jitter_ms > 0) {
        int64_t span = (int64_t)link->jitter_ms * 2000 + 1;
        delay += (int64_t)(next_rand(r) % (uint64_t)span) -
                 (int64_t)link->jitter_ms * 1000;
    }
    p->due_us = now_us() + (uint64_t)(delay > 0 ? delay : 0);
    p->order = r->arrivals++;
    p->dir = dir;
    p->len = len;
    memcpy(p->data, r->buf, len);
    heap_push(r, p);
}

static void deliver(ur_relay_t *r, const ur_packet_t *p)
{
    ssize_t n;
    if (p->dir == UR_UP)
        n = send(r->back, p->data, p->len, MSG_DONTWAIT);
    else
        n = sendto(r->front, p->data, p->len, MSG_DONTWAIT,
                   (const struct sockaddr *)&r->client, sizeof(r->client));
    /* A full socket buffer or a server gone is loss, as on a real link. */
    if (n == (ssize_t)p->len)
        atomic_fetch_add(
            p->dir == UR_UP ? &r->up_forwarded : &r->down_forwarded, 1);
}

static void deliver_due(ur_relay_t *r)
{
    uint64_t now = now_us();
    while (r->count > 0 && r->heap[0]->due_us <= now) {
        ur_packet_t *p = heap_pop(r);
        deliver(r, p);
        free(p);
    }
}

static void read_front(ur_relay_t *r)
{
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(r->front, r->buf, sizeof(r->buf), MSG_DONTWAIT,
                             (struct sockaddr *)&from, &fl);
        if (n < 0)
            return;
        if (!r->have_client) {
            r->client = from;
            r->have_client = true;
        } else if (from.sin_port != r->client.sin_port ||
                   from.sin_addr.s_addr != r->client.sin_addr.s_addr) {
            atomic_fetch_add(&r->foreign, 1);
            continue;
        }
        admit(r, UR_UP, (size_t)n);
    }
}

static void read_back(ur_relay_t *r)
{
    for (;;) {
        ssize_t n = recv(r->back, r->buf, sizeof(r->buf), MSG_DONTWAIT);
        if (n < 0 && errno == ECONNREFUSED)
            continue; /* an ICMP error from an earlier send: skip it */
        if (n < 0)
            return;
        if (r->have_client)
            admit(r, UR_DOWN, (size_t)n);
    }
}

static void *relay_main(void *arg)
{
    ur_relay_t *r = arg;
    while (!atomic_load(&r->stop)) {
        deliver_due(r);
        struct timespec wait = {0, 100 * 1000 * 1000};
        if (r->count > 0) {
            uint64_t now = now_us(), due = r->heap[0]->due_us;
            uint64_t us = due > now ? due - now : 0;
            wait.tv_sec = (time_t)(us / 1000000u);
            wait.tv_nsec = (long)(us % 1000000u) * 1000;
        }
        struct pollfd pf[3] = {{.fd = r->front, .events = POLLIN},
                               {.fd = r->back, .events = POLLIN},
                               {.fd = r->wake, .events = POLLIN}};
        if (ppoll(pf, 3, &wait, NULL) < 0 && errno != EINTR)
            break;
        if (pf[0].revents != 0)
            read_front(r);
        if (pf[1].revents != 0)
            read_back(r);
    }
    return NULL;
}

/* ---- start and stop ------------------------------------------------------ */

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Deep buffers: the loss is the relay's, not the kernel's. */
    int sz = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    return fd;
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    return a;
}

static void close_fds(ur_relay_t *r)
{
    if (r->front >= 0)
        close(r->front);
    if (r->back >= 0)
        close(r->back);
    if (r->wake >= 0)
        close(r->wake);
}

static int open_fds(ur_relay_t *r, int server_port)
{
    r->front = udp_socket();
    r->back = udp_socket();
    r->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->front < 0 || r->back < 0 || r->wake < 0)
        return -1;
    struct sockaddr_in any = loopback(0), srv = loopback(server_port);
    if (bind(r->front, (struct sockaddr *)&any, sizeof(any)) != 0)
        return -1;
    return connect(r->back, (struct sockaddr *)&srv, sizeof(srv));
}

ur_relay_t *ur_start(int server_port, const ur_opts_t *opts)
{
    ur_relay_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->front = r->back = r->wake = -1;
    r->opts = *opts;
    r->rng = opts->seed != 0 ? opts->seed : 1;
    r->heap = calloc(UR_MAX_IN_FLIGHT, sizeof(*r->heap));
    int err = r->heap == NULL ? ENOMEM : 0;
    if (err == 0 && open_fds(r, server_port) != 0)
        err = errno;
    if (err == 0)
        err = pthread_create(&r->thread, NULL, relay_main, r);
    if (err != 0) {
        close_fds(r);
        free(r->heap);
        free(r);
        errno = err;
        return NULL;
    }
    return r;
}

int ur_port(const ur_relay_t *r)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    if (getsockname(r->front, (struct sockaddr *)&a, &al) != 0)
        return -1;
    return ntohs(a.sin_port);
}

void ur_stats(ur_relay_t *r, ur_stats_t *out)
{
    out->up_forwarded = atomic_load(&r->up_forwarded);
    out->up_dropped = atomic_load(&r->up_dropped);
    out->down_forwarded = atomic_load(&r->down_forwarded);
    out->down_dropped = atomic_load(&r->down_dropped);
    out->foreign = atomic_load(&r->foreign);
    out->overflow = atomic_load(&r->overflow);
}

void ur_stop(ur_relay_t *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, true);
    uint64_t one = 1;
    (void)!write(r->wake, &one, sizeof(one));
    pthread_join(r->thread, NULL);
    while (r->count > 0)
        free(heap_pop(r));
    close_fds(r);
    free(r->heap);
    free(r);
}
