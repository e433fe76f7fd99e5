/*
 * KCP endpoints: a UDP socket of one I/O loop and the conversations on
 * it.
 *
 * A datagram is matched to its session by the peer's address and the
 * conversation ID of its first segment, in a hash table seeded at random
 * per endpoint (a peer cannot aim its addresses at one chain). A
 * datagram of no session is dropped and counted unless it is a
 * well-formed first segment of a conversation (zinx__kcp_seg_opens), the
 * endpoint still accepts, and the server is below MaxConn: then it opens
 * a session and its connection (OnConnStart runs as for TCP). So noise
 * and junk cost one parse and no memory, and what spoofed first segments
 * can make is bounded by MaxConn, each session ending after
 * KcpIdleTimeoutMs of silence.
 *
 * Datagrams are read in batches; each session that got one is settled
 * once at the end of the batch (owed ACKs with KcpACKNoDelay, readiness,
 * its timer).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "internal.h"
#include "kcp/session.h"

#define RX_CAP 65536u /* the largest UDP payload, and then some */
#define RX_BATCH 64   /* datagrams per readiness event */
#define FIRST_BUCKETS 64u

struct zinx__kcp_endpoint {
    zinx__io_t io;
    int fd;
    atomic_uint refs; /* the server's (or the client session's) and each
                         session's */
    zinx_server_t *server;
    zinx__shard_t *shard;
    zinx__loop_t *loop;
    zinx__kcp_settings_t set;
    bool client;              /* a dialer's: one session, connected socket */
    zinx__kcp_session_t *one; /* a client's session, while linked */
    atomic_bool accepting;    /* a server's, until it stops */
    uint64_t seed;
    zinx__kcp_session_t **buckets;
    size_t nbuckets, count;
    uint8_t *rx; /* RX_CAP bytes */
    char local[ZINX__ADDR_TEXT_MAX];
};

void zinx__kcp_settings_from(const zinx_config_t *cfg,
                             zinx__kcp_settings_t *out)
{
    zinx__kcp_conf_t *a = &out->arq;
    zinx__kcp_conf_default(a);
    a->mtu = cfg->kcp_mtu;
    a->nodelay = cfg->kcp_nodelay != 0;
    a->interval = cfg->kcp_interval;
    a->resend = cfg->kcp_resend;
    a->nc = cfg->kcp_nc != 0;
    a->snd_wnd = cfg->kcp_send_window;
    a->rcv_wnd = cfg->kcp_recv_window;
    a->stream = cfg->kcp_stream_mode != 0;
    out->ack_nodelay = cfg->kcp_ack_nodelay != 0;
    out->idle_ms = cfg->kcp_idle_timeout_ms;
}

/* ---- references and accessors ------------------------------------------- */

zinx__kcp_endpoint_t *zinx__kcp_endpoint_ref(zinx__kcp_endpoint_t *ep)
{
    atomic_fetch_add_explicit(&ep->refs, 1, memory_order_relaxed);
    return ep;
}

/* On the loop, while it runs: a client's socket, with its session. */
static void close_socket(zinx__kcp_endpoint_t *ep)
{
    if (ep->fd < 0)
        return;
    zinx__io_stop(ep->loop, &ep->io);
    close(ep->fd);
    ep->fd = -1;
}

void zinx__kcp_endpoint_unref(zinx__kcp_endpoint_t *ep)
{
    if (atomic_fetch_sub_explicit(&ep->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* A client's socket goes with its session (on the loop); a server's
       when the server lets go, after its loop. */
    close_socket(ep);
    free(ep->buckets);
    free(ep->rx);
    free(ep);
}

zinx__loop_t *zinx__kcp_endpoint_loop(const zinx__kcp_endpoint_t *ep)
{
    return ep->loop;
}

const zinx__kcp_settings_t *
zinx__kcp_endpoint_settings(const zinx__kcp_endpoint_t *ep)
{
    return &ep->set;
}

const char *zinx__kcp_endpoint_local(const zinx__kcp_endpoint_t *ep)
{
    return ep->local;
}

void zinx__kcp_endpoint_send(zinx__kcp_endpoint_t *ep,
                             const struct sockaddr_storage *addr,
                             socklen_t addr_len, const uint8_t *p, size_t n)
{
    if (ep->fd < 0)
        return;
    /* A full socket buffer drops the datagram, as the network may: the
       ARQ sends it again. */
    if (ep->client)
        (void)send(ep->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    else
        (void)sendto(ep->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL,
                     (const struct sockaddr *)addr, addr_len);
}

/* ---- the table ---------------------------------------------------------- */

/* The peer's address bytes that matter (family, port, address). */
static size_t addr_key(const struct sockaddr_storage *a, const uint8_t **p)
{
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)a;
        *p = (const uint8_t *)&v6->sin6_addr;
        return sizeof(v6->sin6_addr);
    }
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
    *p = (const uint8_t *)&v4->sin_addr;
    return sizeof(v4->sin_addr);
}

static uint16_t addr_port(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET6
               ? ((const struct sockaddr_in6 *)a)->sin6_port
               : ((const struct sockaddr_in *)a)->sin_port;
}

/* FNV-1a over the seed, the address, the port and conv. */
static uint32_t hash_of(const zinx__kcp_endpoint_t *ep,
                        const struct sockaddr_storage *a, uint32_t conv)
{
    uint64_t h = 1469598103934665603ull ^ ep->seed;
    const uint8_t *p;
    size_t n = addr_key(a, &p);
    uint16_t port = addr_port(a);
    uint8_t tail[6] = {(uint8_t)port,         (uint8_t)(port >> 8),
                       (uint8_t)conv,         (uint8_t)(conv >> 8),
                       (uint8_t)(conv >> 16), (uint8_t)(conv >> 24)};
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    for (size_t i = 0; i < sizeof(tail); i++)
        h = (h ^ tail[i]) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32));
}

static bool same_peer(const zinx__kcp_session_t *s,
                      const struct sockaddr_storage *a, uint32_t conv)
{
    if (s->conv != conv || s->addr.ss_family != a->ss_family ||
        addr_port(&s->addr) != addr_port(a))
        return false;
    const uint8_t *x, *y;
    size_t n = addr_key(&s->addr, &x);
    addr_key(a, &y);
    return memcmp(x, y, n) == 0;
}

static zinx__kcp_session_t *
find(zinx__kcp_endpoint_t *ep, const struct sockaddr_storage *a, uint32_t conv)
{
    uint32_t h = hash_of(ep, a, conv);
    for (zinx__kcp_session_t *s = ep->buckets[h & (ep->nbuckets - 1)];
         s != NULL; s = s->next)
        if (s->hash == h && same_peer(s, a, conv))
            return s;
    return NULL;
}

/* Doubles the table when it is full; keeps the old one if memory is
   short (chains just grow). */
static void grow(zinx__kcp_endpoint_t *ep)
{
    size_t n = ep->nbuckets * 2;
    zinx__kcp_session_t **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < ep->nbuckets; i++) {
        zinx__kcp_session_t *s = ep->buckets[i];
        while (s != NULL) {
            zinx__kcp_session_t *next = s->next;
            s->next = b[s->hash & (n - 1)];
            b[s->hash & (n - 1)] = s;
            s = next;
        }
    }
    free(ep->buckets);
    ep->buckets = b;
    ep->nbuckets = n;
}

static void link_session(zinx__kcp_endpoint_t *ep, zinx__kcp_session_t *s)
{
    if (ep->count >= ep->nbuckets)
        grow(ep);
    s->hash = hash_of(ep, &s->addr, s->conv);
    zinx__kcp_session_t **head = &ep->buckets[s->hash & (ep->nbuckets - 1)];
    s->next = *head;
    *head = s;
    s->linked = true;
    ep->count++;
}

void zinx__kcp_endpoint_unlink(zinx__kcp_endpoint_t *ep, zinx__kcp_session_t *s)
{
    zinx__kcp_session_t **pp = &ep->buckets[s->hash & (ep->nbuckets - 1)];
    while (*pp != NULL && *pp != s)
        pp = &(*pp)->next;
    if (*pp == s)
        *pp = s->next;
    s->linked = false;
    ep->count--;
    if (ep->one == s)
        ep->one = NULL;
}

/* ---- making endpoints --------------------------------------------------- */

static void on_events(zinx__io_t *io, uint32_t events);

static zinx__kcp_endpoint_t *
endpoint_new(zinx_server_t *server, zinx__shard_t *shard, int fd, bool client)
{
    zinx__kcp_endpoint_t *ep = calloc(1, sizeof(*ep));
    if (ep == NULL)
        return NULL;
    ep->buckets = calloc(FIRST_BUCKETS, sizeof(*ep->buckets));
    ep->rx = malloc(RX_CAP);
    if (ep->buckets == NULL || ep->rx == NULL) {
        free(ep->buckets);
        free(ep->rx);
        free(ep);
        return NULL;
    }
    ep->nbuckets = FIRST_BUCKETS;
    ep->fd = fd;
    atomic_init(&ep->refs, 1);
    ep->server = server;
    ep->shard = shard;
    ep->loop = zinx__shard_loop(shard);
    ep->client = client;
    atomic_init(&ep->accepting, !client);
    zinx__kcp_settings_from(&server->cfg, &ep->set);
    if (getrandom(&ep->seed, sizeof(ep->seed), GRND_NONBLOCK) !=
        (ssize_t)sizeof(ep->seed))
        ep->seed = (uint64_t)(uintptr_t)ep ^ zinx__now_ms();
    zinx__io_init(&ep->io, on_events);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        zinx__addr_format(&ss, len, ep->local);
    else
        snprintf(ep->local, sizeof(ep->local), "?");
    return ep;
}

static int udp_socket(int family)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss,
                   socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *list = NULL;
    char p[8];
    snprintf(p, sizeof(p), "%d", port);
    int rc = getaddrinfo(host[0] != '\0' ? host : NULL, p, &hints, &list);
    if (rc != 0 || list == NULL) {
        if (list != NULL)
            freeaddrinfo(list);
        return rc == EAI_MEMORY ? ZINX_ENOMEM : ZINX_ENOENT;
    }
    memcpy(ss, list->ai_addr, list->ai_addrlen);
    *len = list->ai_addrlen;
    freeaddrinfo(list);
    return 0;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(addr_port(&ss));
}

int zinx__kcp_endpoint_listen(zinx_server_t *server, zinx__shard_t *shard,
                              const char *host, int port, int *bound,
                              zinx__kcp_endpoint_t **out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = resolve(host, *bound != 0 ? *bound : port, &ss, &len);
    if (rc != 0)
        return rc;
    int fd = udp_socket(ss.ss_family);
    if (fd < 0)
        return fd;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)&ss, len) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    zinx__kcp_endpoint_t *ep = endpoint_new(server, shard, fd, false);
    if (ep == NULL) {
        close(fd);
        return ZINX_ENOMEM;
    }
    if (*bound == 0)
        *bound = bound_port(fd);
    *out = ep;
    return 0;
}

int zinx__kcp_endpoint_host(const zinx__kcp_endpoint_t *ep, char *host,
                            size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(ep->fd, (struct sockaddr *)&ss, &sl) != 0)
        return -errno;
    int rc = getnameinfo((const struct sockaddr *)&ss, sl, host, (socklen_t)len,
                         NULL, 0, NI_NUMERICHOST);
    return rc == 0 ? 0 : ZINX_EINVAL;
}

int zinx__kcp_endpoint_start(zinx__kcp_endpoint_t *ep)
{
    return zinx__io_start(ep->loop, &ep->io, ep->fd, ZINX__EV_READ);
}

void zinx__kcp_endpoint_stop_accepting(zinx__kcp_endpoint_t *ep)
{
    atomic_store(&ep->accepting, false);
}

void zinx__kcp_endpoint_free(zinx__kcp_endpoint_t *ep)
{
    if (ep == NULL)
        return;
    /* Every session closed with its connection before the loop left;
       the loop is gone, so the socket is only closed. */
    if (ep->fd >= 0)
        close(ep->fd);
    ep->fd = -1;
    zinx__kcp_endpoint_unref(ep);
}

/* ---- datagrams ---------------------------------------------------------- */

/* Takes a place below MaxConn for a new session: every loop's endpoint
   admits at once, so the count is reserved before the session exists. */
static bool admit(zinx_server_t *srv)
{
    int max = srv->cfg.max_conn;
    int n = atomic_load(&srv->kcp_sessions);
    do {
        if (n >= max || zinx_connmgr_count(srv->mgr) >= (size_t)max)
            return false;
    } while (!atomic_compare_exchange_weak(&srv->kcp_sessions, &n, n + 1));
    return true;
}

void zinx__kcp_endpoint_release(zinx__kcp_endpoint_t *ep)
{
    atomic_fetch_sub(&ep->server->kcp_sessions, 1);
}

/* A first segment from a new peer: a session and its connection, on this
   loop, or nothing (counted). */
static zinx__kcp_session_t *open_session(zinx__kcp_endpoint_t *ep,
                                         const struct sockaddr_storage *a,
                                         socklen_t alen, const uint8_t *p,
                                         size_t n, uint64_t now)
{
    zinx_server_t *srv = ep->server;
    uint32_t conv;
    if (!atomic_load_explicit(&ep->accepting, memory_order_relaxed) ||
        zinx__kcp_seg_opens(p, n, ep->set.arq.first_sn, &conv) != 0)
        return NULL;
    if (!admit(srv)) {
        atomic_fetch_add_explicit(&srv->stats.rejected_max_conn, 1,
                                  memory_order_relaxed);
        return NULL;
    }
    zinx__kcp_session_t *s = zinx__kcp_session_new(ep, conv, a, alen, now);
    if (s != NULL)
        s->admitted = true; /* gives the place back when freed */
    else
        zinx__kcp_endpoint_release(ep);
    int err = ZINX_ENOMEM;
    zinx_conn_t *c =
        s != NULL ? zinx__server_open_kcp_conn(srv, ep->shard, s, &err) : NULL;
    if (c == NULL) {
        /* The session went with the failed connection. */
        atomic_fetch_add_explicit(err == ZINX_ENOMEM
                                      ? &srv->stats.out_of_memory
                                      : &srv->stats.accept_errors,
                                  1, memory_order_relaxed);
        return NULL;
    }
    link_session(ep, s);
    atomic_fetch_add_explicit(&srv->stats.accepted, 1, memory_order_relaxed);
    zinx__conn_adopt(c);
    return s;
}

/* A datagram of no session that opens none: counted, nothing kept. */
static void drop(zinx__kcp_endpoint_t *ep)
{
    atomic_fetch_add_explicit(&ep->server->stats.kcp_dropped, 1,
                              memory_order_relaxed);
}

static void touch(zinx__kcp_session_t *s, zinx__kcp_session_t **list)
{
    if (s->touched)
        return;
    s->touched = true;
    s->touched_next = *list;
    *list = s;
}

/* The session a datagram from a with conv belongs to, or NULL. */
static zinx__kcp_session_t *lookup(zinx__kcp_endpoint_t *ep,
                                   const struct sockaddr_storage *a,
                                   uint32_t conv)
{
    if (!ep->client)
        return find(ep, a, conv);
    /* A client's socket is connected: every datagram is from its one
       session's peer, whatever form the kernel gives the address in. */
    return ep->one != NULL && ep->one->conv == conv ? ep->one : NULL;
}

static void on_datagram(zinx__kcp_endpoint_t *ep,
                        const struct sockaddr_storage *a, socklen_t alen,
                        size_t n, uint64_t now, zinx__kcp_session_t **touched)
{
    const uint8_t *p = ep->rx;
    if (n < ZINX__KCP_HEADER) {
        drop(ep);
        return;
    }
    uint32_t conv = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    zinx__kcp_session_t *s = lookup(ep, a, conv);
    if (s == NULL && ep->client) {
        drop(ep);
        return;
    }
    if (s == NULL && (s = open_session(ep, a, alen, p, n, now)) == NULL) {
        drop(ep);
        return;
    }
    zinx__kcp_session_input(s, p, n, now);
    touch(s, touched);
}

static void on_events(zinx__io_t *io, uint32_t events)
{
    ZINX__UNUSED(events);
    zinx__kcp_endpoint_t *ep = ZINX__CONTAINER_OF(io, zinx__kcp_endpoint_t, io);
    uint64_t now = zinx__loop_now(ep->loop);
    zinx__kcp_session_t *touched = NULL;
    /* Sessions stay allocated through the batch: a close only marks one
       (it is freed later in the iteration). */
    zinx__kcp_endpoint_ref(ep);
    for (int i = 0; i < RX_BATCH && ep->fd >= 0; i++) {
        struct sockaddr_storage a;
        socklen_t alen = sizeof(a);
        ssize_t n = recvfrom(ep->fd, ep->rx, RX_CAP, MSG_DONTWAIT,
                             (struct sockaddr *)&a, &alen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; /* EAGAIN; an ICMP error of a connected socket */
        }
        on_datagram(ep, &a, alen, (size_t)n, now, &touched);
    }
    while (touched != NULL) {
        zinx__kcp_session_t *s = touched;
        touched = s->touched_next;
        s->touched = false;
        zinx__kcp_session_settle(s, now);
    }
    zinx__kcp_endpoint_unref(ep);
}

/* ---- clients ------------------------------------------------------------ */

static uint32_t random_conv(void)
{
    uint32_t v = 0;
    while (v == 0)
        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
            v = (uint32_t)zinx__now_ms() * 2654435761u;
    return v;
}

zinx_conn_t *zinx__kcp_dial(zinx_server_t *server, zinx__shard_t *shard,
                            const struct sockaddr_storage *addr,
                            socklen_t addr_len, int *err)
{
    int fd = udp_socket(addr->ss_family);
    if (fd < 0) {
        *err = fd;
        return NULL;
    }
    if (connect(fd, (const struct sockaddr *)addr, addr_len) != 0) {
        *err = -errno;
        close(fd);
        return NULL;
    }
    zinx__kcp_endpoint_t *ep = endpoint_new(server, shard, fd, true);
    if (ep == NULL) {
        close(fd);
        *err = ZINX_ENOMEM;
        return NULL;
    }
    uint64_t now = zinx__loop_now(ep->loop);
    zinx__kcp_session_t *s =
        zinx__kcp_session_new(ep, random_conv(), addr, addr_len, now);
    zinx_conn_t *c = NULL;
    *err = ZINX_ENOMEM;
    if (s != NULL && (*err = zinx__kcp_endpoint_start(ep)) == 0)
        c = zinx__server_open_kcp_conn(server, shard, s, err);
    else if (s != NULL)
        zinx__kcp_session_discard(s);
    if (c != NULL) {
        link_session(ep, s);
        ep->one = s;
    }
    /* The session holds the endpoint from now on: the socket closes when
       the session is freed. */
    zinx__kcp_endpoint_unref(ep);
    return c;
}
