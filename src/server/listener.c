/*
 * The listener: binding Host (an IP address, a name, "" for every
 * interface, or "unix:PATH"), accepting, shedding connections when
 * descriptors run out, and the stop.
 *
 * ReusePort (docs/scale-out.md) decides how many sockets listen:
 *   "off"      one socket on loop 0, the port exclusive;
 *   "process"  the same, bound with SO_REUSEPORT so other processes (or
 *              servers) may share the port and the kernel spreads
 *              connections among them;
 *   "loops"    one SO_REUSEPORT socket per I/O loop, each accepting on
 *              its own loop, whose connections stay there (no hand-off
 *              from loop 0).
 * Each socket and the loop that accepts on it is an acceptor.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "event/uring.h"
#include "internal.h"
#include "server/listener.h"
#include "stream/stream.h"

/* Accepts per readiness event, so a connection storm cannot monopolise
   the accepting loop (as Redis's max-new-connections-per-cycle). */
#define ACCEPTS_PER_EVENT 64
/* How long the listener rests when even the spare descriptor is gone. */
#define SHED_PAUSE_MS 100u

/* One listening socket and the loop that accepts on it. */
typedef struct acceptor {
    zinx__listener_t *owner;
    zinx__loop_t *loop; /* once started */
    /* "loops": the loop's own connections; else NULL (spread by ID). */
    zinx__shard_t *shard;
    zinx__io_t io;
    /* On an io_uring loop: one multishot accept instead of readiness. */
    zinx__uring_t *u;
    zinx__uring_op_t accept_op;
    bool accept_armed;  /* a multishot accept is in flight */
    bool accept_cancel; /* and its cancel too */
    bool paused;        /* resting after running out of descriptors */
    bool by_readiness;  /* out of descriptors: accept4() on readiness */
    int fd;
    int reserve_fd; /* spare descriptor for EMFILE shedding */
    zinx__timer_t pause;
    zinx__closure_t stop_job; /* posted by zinx__listener_stop */
} acceptor_t;

struct zinx__listener {
    zinx_server_t *server;
    zinx__listen_spec_t spec;
    uint32_t reuse_port; /* a zinx_reuse_port_t */
    bool dual_stack;     /* the first socket takes IPv4 and IPv6 */
    /* At the stop: accept what is queued before closing (the kernel does
       not move it to another listener of the port). */
    bool drain_at_close;
    acceptor_t **acc; /* acc[0] is bound at open, the rest at start */
    uint32_t nacc;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint32_t nclosed; /* acceptors whose stop job ran */
    /* A Unix socket file we created, removed at the end if it is still
       ours (same device and inode). */
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t unix_dev;
    ino_t unix_ino;
};

/* ---- binding ------------------------------------------------------------- */

/* Notes the port and numeric address the listener actually got. */
static void record_bound(zinx__listener_t *l, int fd)
{
    zinx_server_t *s = l->server;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_UNIX) {
        snprintf(s->listen_host, sizeof(s->listen_host), "%s", s->cfg.host);
        return;
    }
    const void *addr = &((struct sockaddr_in *)&ss)->sin_addr;
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) {
        addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (inet_ntop(ss.ss_family, addr, s->listen_host, sizeof(s->listen_host)) ==
        NULL)
        s->listen_host[0] = '\0';
    atomic_store(l->spec.bound_port, port);
}

static int new_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
}

/*
 * Binds and listens on one address. dual_stack clears IPV6_V6ONLY so an
 * IPv6 wildcard also takes IPv4 connections, as Go's listener does; a
 * stack that cannot do that is reported like one without IPv6, so the
 * caller falls back to IPv4.
 */
static int open_ip(const zinx__listener_t *l, const struct sockaddr *sa,
                   socklen_t len, bool dual_stack)
{
    int fd = new_socket(sa->sa_family);
    if (fd < 0)
        return fd;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Before bind: a socket joins the port's group only so, and every
       socket of the group must have asked. */
    if (l->reuse_port != ZINX_REUSE_PORT_OFF &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (dual_stack &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) {
        close(fd);
        return -EAFNOSUPPORT;
    }
    if (bind(fd, sa, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int listen_ip(zinx__listener_t *l, const struct sockaddr *sa,
                     socklen_t len, bool dual_stack)
{
    int fd = open_ip(l, sa, len, dual_stack);
    if (fd < 0)
        return fd;
    l->acc[0]->fd = fd;
    l->dual_stack = dual_stack;
    record_bound(l, fd);
    return 0;
}

/* "loops": another socket on the address and port the first one got
   (TCPPort 0 included: the first picked the port). */
static int listen_again(zinx__listener_t *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(l->acc[0]->fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    return open_ip(l, (struct sockaddr *)&ss, len, l->dual_stack);
}

/*
 * Host "": every interface, both families on one socket ("::" with
 * IPV6_V6ONLY off), like Go's net.Listen("tcp", ":port"). Where IPv6 is
 * missing (no support, or disabled so that "::" cannot be bound) it is
 * 0.0.0.0 instead.
 */
static int listen_any(zinx__listener_t *l)
{
    uint16_t port = htons((uint16_t)l->spec.port);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = port};
    a6.sin6_addr = in6addr_any;
    int rc = listen_ip(l, (struct sockaddr *)&a6, sizeof(a6), true);
    if (rc != -EAFNOSUPPORT && rc != ZINX_EADDRNOTAVAIL)
        return rc;
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = port};
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
    return listen_ip(l, (struct sockaddr *)&a4, sizeof(a4), false);
}

/* The first IPv4 address, else the first: Go's choice for a listener. */
static const struct addrinfo *pick_address(const struct addrinfo *list)
{
    for (const struct addrinfo *a = list; a != NULL; a = a->ai_next) {
        if (a->ai_family == AF_INET)
            return a;
    }
    return list;
}

/*
 * Resolves Host once, literals included (getaddrinfo() takes those
 * without asking DNS, and understands an IPv6 %zone). No AI_ADDRCONFIG:
 * it ignores loopback addresses when deciding which families are
 * configured, so on a loopback-only machine it would hide ::1, or every
 * address of "localhost". Returns 0, ZINX_ENOENT for a name that does not
 * resolve (the resolver's reason is logged) or ZINX_ENOMEM.
 */
static int resolve_host(zinx__listener_t *l, struct sockaddr_storage *ss,
                        socklen_t *len)
{
    zinx_server_t *s = l->server;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", l->spec.port);
    int rc = getaddrinfo(s->cfg.host, port, &hints, &list);
    if (rc != 0 || list == NULL) {
        zinx__log(s, ZINX_LOG_ERROR, "cannot resolve Host \"%s\": %s",
                  s->cfg.host, rc != 0 ? gai_strerror(rc) : "no address");
        if (list != NULL)
            freeaddrinfo(list);
        return rc == EAI_MEMORY ? ZINX_ENOMEM : ZINX_ENOENT;
    }
    const struct addrinfo *a = pick_address(list);
    memcpy(ss, a->ai_addr, a->ai_addrlen);
    *len = a->ai_addrlen;
    freeaddrinfo(list);
    return 0;
}

/* A socket file left by a server that is gone refuses connections: it may
   be replaced. One that accepts belongs to a live server: it may not. */
static bool stale_socket(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool stale = connect(fd, sa, len) != 0 && errno == ECONNREFUSED;
    close(fd);
    return stale;
}

static int bind_unix(int fd, const struct sockaddr_un *un, socklen_t len)
{
    if (bind(fd, (const struct sockaddr *)un, len) == 0)
        return 0;
    if (errno != EADDRINUSE ||
        !stale_socket((const struct sockaddr *)un, len) ||
        unlink(un->sun_path) != 0 ||
        bind(fd, (const struct sockaddr *)un, len) != 0)
        return -errno;
    return 0;
}

/* Host "unix:PATH": a Unix domain socket file with UnixMode permissions,
   removed again when the listener closes. */
static int listen_unix(zinx__listener_t *l)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = zinx__addr_unix(l->server->cfg.host, &ss, &len);
    if (rc != 0)
        return rc;
    const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
    int fd = new_socket(AF_UNIX);
    if (fd < 0)
        return fd;
    struct stat st;
    if ((rc = bind_unix(fd, un, len)) != 0 ||
        chmod(un->sun_path, (mode_t)l->server->cfg.unix_mode) != 0 ||
        stat(un->sun_path, &st) != 0 || listen(fd, SOMAXCONN) != 0) {
        rc = rc != 0 ? rc : -errno;
        close(fd);
        return rc;
    }
    memcpy(l->unix_path, un->sun_path, sizeof(l->unix_path));
    l->unix_dev = st.st_dev;
    l->unix_ino = st.st_ino;
    l->acc[0]->fd = fd;
    record_bound(l, fd);
    return 0;
}

static int bind_host(zinx__listener_t *l)
{
    zinx_server_t *s = l->server;
    if (zinx__addr_is_unix(s->cfg.host))
        return listen_unix(l);
    if (s->cfg.host[0] == '\0')
        return listen_any(l);
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = resolve_host(l, &ss, &len);
    if (rc == 0)
        rc = listen_ip(l, (struct sockaddr *)&ss, len, false);
    return rc;
}

/* ---- accept (on the acceptor's loop) ------------------------------------- */

static int open_reserve_fd(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Out of descriptors: a pending connection would keep the listener
   readable and spin the loop. Spend the spare descriptor to accept it and
   close it at once (the client sees a clean close), then take it back.
   Returns true when a connection was shed, false when none was pending.
   Without a spare (another thread took the freed slot) the listener
   pauses instead, so the loop never spins. */
static bool shed_connection(acceptor_t *a)
{
    if (a->reserve_fd < 0) {
        a->reserve_fd = open_reserve_fd();
        if (a->reserve_fd < 0) {
            a->paused = true; /* io_uring: the accept is not armed again */
            zinx__io_update(a->loop, &a->io, 0);
            zinx__loop_timer_arm(a->loop, &a->pause,
                                 zinx__now_ms() + SHED_PAUSE_MS);
            return false;
        }
    }
    close(a->reserve_fd);
    int fd = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    a->reserve_fd = open_reserve_fd();
    return fd >= 0;
}

static void resume(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    acceptor_t *a = arg;
    a->paused = false;
    if (a->u != NULL && !a->by_readiness)
        zinx__uring_flush_later(a->u, &a->accept_op);
    else
        zinx__io_update(a->loop, &a->io, ZINX__EV_READ);
}

static void log_refusal(zinx_server_t *s, const char *why)
{
    ZINX__LOG_LIMITED(s, ZINX__LOGK_REFUSED, ZINX_LOG_WARN,
                      "refused a connection: %s", why);
}

static void count(atomic_uint_least64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* Returns false when accepting should stop for this event. */
static bool accept_failed(acceptor_t *a, int err)
{
    zinx_server_t *s = a->owner->server;
    if (err == EINTR || err == ECONNABORTED)
        return true;
    if (err == EAGAIN || err == EWOULDBLOCK)
        return false;
    if (err == EMFILE || err == ENFILE) {
        /* accept4 says EMFILE even with nothing pending. */
        if (!shed_connection(a))
            return false;
        count(&s->stats.accept_errors);
        log_refusal(s, "out of file descriptors");
        return true;
    }
    count(&s->stats.accept_errors);
    ZINX__LOG(s, ZINX_LOG_ERROR, "accept: %s", strerror(err));
    return false;
}

/* A connection was accepted: it becomes a connection, or is refused. */
static void take_connection(acceptor_t *a, int fd)
{
    zinx_server_t *s = a->owner->server;
    if (zinx_connmgr_count(s->mgr) >= (size_t)s->cfg.max_conn) {
        close(fd); /* the client sees EOF at once */
        count(&s->stats.rejected_max_conn);
        log_refusal(s, "MaxConn reached");
        return;
    }
    int rc = zinx__server_accept_conn(s, a->loop, a->shard, fd,
                                      a->owner->spec.stack);
    if (rc == ZINX_EBUSY) {
        /* WorkerMode Bind with every worker owned: the same answer as
           MaxConn, EOF at once (docs/configuration.md says why). */
        count(&s->stats.rejected_no_worker);
        log_refusal(s, "no free worker (WorkerMode Bind)");
    } else if (rc != 0) {
        count(&s->stats.out_of_memory);
        log_refusal(s, rc == ZINX_ENOMEM ? "out of memory"
                                         : "no worker thread could start");
    }
}

static void back_to_multishot(acceptor_t *a);

static void on_accept(zinx__io_t *io, uint32_t events)
{
    ZINX__UNUSED(events);
    acceptor_t *a = ZINX__CONTAINER_OF(io, acceptor_t, io);
    bool took = false;
    for (int i = 0; i < ACCEPTS_PER_EVENT && a->fd >= 0; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (!accept_failed(a, errno))
                break;
            continue;
        }
        took = true;
        take_connection(a, fd);
    }
    if (took && a->by_readiness)
        back_to_multishot(a);
}

/* ---- accept on io_uring -------------------------------------------------- */

/* Before the iteration's submission: arm the multishot accept while
   listening, cancel it once closed. */
static void accept_flush(zinx__uring_op_t *op)
{
    acceptor_t *a = ZINX__CONTAINER_OF(op, acceptor_t, accept_op);
    bool arm = a->fd >= 0 && !a->accept_armed && !a->paused && !a->by_readiness;
    bool stop = a->fd < 0 && a->accept_armed && !a->accept_cancel;
    if (!arm && !stop)
        return;
    struct io_uring_sqe *sqe = zinx__uring_sqe(a->u);
    if (sqe == NULL) {
        zinx__uring_flush_later(a->u, op);
        return;
    }
    if (stop) {
        io_uring_prep_cancel64(sqe, zinx__uring_data(op, 0), 0);
        io_uring_sqe_set_data64(sqe, 0);
        a->accept_cancel = true;
        return;
    }
    io_uring_prep_multishot_accept(sqe, a->fd, NULL, NULL,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, zinx__uring_data(op, 0));
    a->accept_armed = true;
}

/* Descriptors are back (an accept4() succeeded): the multishot accept
   takes over again from readiness. */
static void back_to_multishot(acceptor_t *a)
{
    a->by_readiness = false;
    zinx__io_stop(a->loop, &a->io);
    zinx__uring_flush_later(a->u, &a->accept_op);
}

/*
 * The accept ended on an error. Out of descriptors, io_uring's accept
 * fails with EMFILE even when no connection waits (it takes the
 * descriptor before looking at the queue), so a multishot accept armed
 * again would spin. The listener then works as on epoll, accept4() on
 * readiness with the same shedding, until an accept succeeds.
 */
static void accept_error(acceptor_t *a, int err)
{
    if (err != EMFILE && err != ENFILE) {
        accept_failed(a, err);
        return;
    }
    if (!a->by_readiness) {
        if (zinx__io_start(a->loop, &a->io, a->fd, ZINX__EV_READ) != 0) {
            a->paused = true; /* no readiness either: rest, then retry */
            zinx__loop_timer_arm(a->loop, &a->pause,
                                 zinx__now_ms() + SHED_PAUSE_MS);
            return;
        }
        a->by_readiness = true;
    }
    on_accept(&a->io, 0);
}

static void accept_cqe(zinx__uring_op_t *op, unsigned tag, int32_t res,
                       uint32_t flags)
{
    ZINX__UNUSED(tag);
    acceptor_t *a = ZINX__CONTAINER_OF(op, acceptor_t, accept_op);
    if (!(flags & IORING_CQE_F_MORE)) {
        a->accept_armed = false;
        a->accept_cancel = false;
    }
    /* Accepted while the listener closed: with ReusePort the stop's grace
       and drain serve it, as what the kernel had queued. */
    if (res >= 0 && a->fd < 0 && a->owner->reuse_port == ZINX_REUSE_PORT_OFF)
        close(res);
    else if (res >= 0)
        take_connection(a, res);
    else if (a->fd >= 0 && res != -ECANCELED)
        accept_error(a, -res);
    if (!a->accept_armed && a->fd >= 0 && !a->by_readiness)
        zinx__uring_flush_later(a->u, op);
}

/* ---- the stop ------------------------------------------------------------ */

/*
 * Whether this network namespace moves the connections queued on a
 * closing SO_REUSEPORT listener to another listener of its port
 * (net.ipv4.tcp_migrate_req, Linux 5.14): 1 yes, 0 no (they are reset),
 * -1 unknown (an older kernel has no such setting: no).
 */
static int migrate_req(void)
{
    int fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char c = '0';
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n == 1 ? c != '0' : -1;
}

/*
 * Before a shared listener closes: what the kernel would reset is
 * accepted instead and served by the stop's graceful drain (its client
 * sees an orderly end, not a reset). Bounded: under a storm the queue
 * cannot hold the stop.
 */
static void drain_queue(acceptor_t *a)
{
    for (int i = 0; i < SOMAXCONN; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (!accept_failed(a, errno))
                return;
            continue;
        }
        take_connection(a, fd);
    }
}

static void remove_unix_file(zinx__listener_t *l)
{
    struct stat st;
    if (l->unix_path[0] == '\0')
        return;
    if (stat(l->unix_path, &st) == 0 && st.st_dev == l->unix_dev &&
        st.st_ino == l->unix_ino)
        unlink(l->unix_path);
    l->unix_path[0] = '\0';
}

/* The acceptor's loop (or the stopping thread once the loops are gone,
   without `drain`). */
static void close_acceptor(acceptor_t *a, bool drain)
{
    if (a->loop != NULL) {
        zinx__loop_timer_cancel(a->loop, &a->pause);
        zinx__io_stop(a->loop, &a->io);
        if (a->u != NULL) /* its completion still names the acceptor */
            zinx__uring_flush_later(a->u, &a->accept_op);
    }
    if (a->fd >= 0 && drain)
        drain_queue(a);
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    if (a->reserve_fd >= 0)
        close(a->reserve_fd);
    a->reserve_fd = -1;
}

static void run_stop(void *arg)
{
    acceptor_t *a = arg;
    zinx__listener_t *l = a->owner;
    close_acceptor(a, l->drain_at_close);
    pthread_mutex_lock(&l->lock);
    l->nclosed++;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* ---- lifecycle ----------------------------------------------------------- */

static acceptor_t *acceptor_new(zinx__listener_t *l)
{
    acceptor_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->owner = l;
    a->fd = a->reserve_fd = -1;
    zinx__io_init(&a->io, on_accept);
    a->accept_op.on_cqe = accept_cqe;
    a->accept_op.on_flush = accept_flush;
    zinx__timer_init(&a->pause, resume, a);
    zinx__closure_init(&a->stop_job, run_stop, NULL, a);
    return a;
}

/* A hand-over moves the port's queue only with tcp_migrate_req: said
   once per start, with how to set it (docs/scale-out.md). */
static void warn_no_migration(zinx__listener_t *l)
{
    if (l->reuse_port == ZINX_REUSE_PORT_OFF ||
        l->server->listeners[ZINX__LISTEN_TCP] != NULL || migrate_req() == 1)
        return; /* off, said for TCPPort's listener already, or moved */
    zinx__log(l->server, ZINX_LOG_WARN,
              "ReusePort: net.ipv4.tcp_migrate_req is not 1, so a "
              "connection still queued on this process's listener when it "
              "stops may be reset although another process shares the "
              "port (set it with: sysctl -w net.ipv4.tcp_migrate_req=1)");
}

int zinx__listener_open(zinx_server_t *s, const zinx__listen_spec_t *spec,
                        zinx__listener_t **out)
{
    zinx__listener_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return ZINX_ENOMEM;
    l->server = s;
    l->spec = *spec;
    l->reuse_port = s->cfg.reuse_port;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    l->acc = calloc(1, sizeof(*l->acc));
    if (l->acc == NULL || (l->acc[0] = acceptor_new(l)) == NULL) {
        zinx__listener_free(l);
        return ZINX_ENOMEM;
    }
    l->nacc = 1;
    int rc = bind_host(l);
    if (rc != 0) {
        zinx__listener_free(l);
        return rc;
    }
    warn_no_migration(l);
    *out = l;
    return 0;
}

/* "loops": the other loops' sockets, on the port the first one got. */
static int open_per_loop(zinx__listener_t *l, uint32_t nloops)
{
    acceptor_t **acc = realloc(l->acc, nloops * sizeof(*acc));
    if (acc == NULL)
        return ZINX_ENOMEM;
    l->acc = acc;
    while (l->nacc < nloops) {
        acceptor_t *a = acceptor_new(l);
        if (a == NULL)
            return ZINX_ENOMEM;
        l->acc[l->nacc++] = a;
        if ((a->fd = listen_again(l)) < 0)
            return a->fd;
    }
    return 0;
}

static int start_acceptor(acceptor_t *a, zinx__loop_t *loop,
                          zinx__shard_t *shard)
{
    a->loop = loop;
    a->shard = shard;
    a->reserve_fd = open_reserve_fd();
    a->u = zinx__loop_uring(loop);
    if (a->u == NULL)
        return zinx__io_start(loop, &a->io, a->fd, ZINX__EV_READ);
    /* The loop's thread does not run yet: listing the accept for its
       first flush races with nothing. */
    zinx__uring_flush_later(a->u, &a->accept_op);
    return 0;
}

int zinx__listener_start(zinx__listener_t *l)
{
    zinx_server_t *s = l->server;
    int rc = 0;
    if (l->reuse_port == ZINX_REUSE_PORT_LOOPS && s->nloops > 1 &&
        (rc = open_per_loop(l, s->nloops)) != 0)
        return rc;
    if (l->nacc == 1)
        return start_acceptor(l->acc[0], s->loops[0], NULL);
    for (uint32_t i = 0; i < l->nacc && rc == 0; i++)
        rc = start_acceptor(l->acc[i], s->loops[i], s->shards[i]);
    return rc;
}

void zinx__listener_stop(zinx__listener_t *l)
{
    /* Read now, not at start: the setting may have changed since. */
    l->drain_at_close =
        l->reuse_port != ZINX_REUSE_PORT_OFF && migrate_req() != 1;
    for (uint32_t i = 0; i < l->nacc; i++) {
        if (l->acc[i]->loop != NULL)
            zinx__loop_post(l->acc[i]->loop, &l->acc[i]->stop_job);
        else
            run_stop(l->acc[i]); /* never started: no loop touches it */
    }
    pthread_mutex_lock(&l->lock);
    while (l->nclosed < l->nacc)
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
    remove_unix_file(l);
}

void zinx__listener_free(zinx__listener_t *l)
{
    if (l == NULL)
        return;
    for (uint32_t i = 0; i < l->nacc; i++) {
        l->acc[i]->loop = NULL; /* its loop is gone, or never ran */
        close_acceptor(l->acc[i], false);
        free(l->acc[i]);
    }
    free(l->acc);
    remove_unix_file(l);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    free(l);
}
