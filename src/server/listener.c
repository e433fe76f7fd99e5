/*
 * The listener: binding Host (an IP address, a name, "" for every
 * interface, or "unix:PATH"), accepting on loop 0, shedding connections
 * when descriptors run out, and the stop.
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
   loop 0 (as Redis's max-new-connections-per-cycle). */
#define ACCEPTS_PER_EVENT 64
/* How long the listener rests when even the spare descriptor is gone. */
#define SHED_PAUSE_MS 100u

struct zinx__listener {
    zinx_server_t *server;
    zinx__listen_spec_t spec;
    zinx__loop_t *loop; /* loop 0, once started */
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
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool closed;
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
static int listen_ip(zinx__listener_t *l, const struct sockaddr *sa,
                     socklen_t len, bool dual_stack)
{
    int fd = new_socket(sa->sa_family);
    if (fd < 0)
        return fd;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
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
    l->fd = fd;
    record_bound(l, fd);
    return 0;
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
    l->fd = fd;
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

/* ---- accept (loop 0) ----------------------------------------------------- */

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
static bool shed_connection(zinx__listener_t *l)
{
    if (l->reserve_fd < 0) {
        l->reserve_fd = open_reserve_fd();
        if (l->reserve_fd < 0) {
            l->paused = true; /* io_uring: the accept is not armed again */
            zinx__io_update(l->loop, &l->io, 0);
            zinx__loop_timer_arm(l->loop, &l->pause,
                                 zinx__now_ms() + SHED_PAUSE_MS);
            return false;
        }
    }
    close(l->reserve_fd);
    int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    l->reserve_fd = open_reserve_fd();
    return fd >= 0;
}

static void resume(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    zinx__listener_t *l = arg;
    l->paused = false;
    if (l->u != NULL && !l->by_readiness)
        zinx__uring_flush_later(l->u, &l->accept_op);
    else
        zinx__io_update(l->loop, &l->io, ZINX__EV_READ);
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
static bool accept_failed(zinx__listener_t *l, int err)
{
    zinx_server_t *s = l->server;
    if (err == EINTR || err == ECONNABORTED)
        return true;
    if (err == EAGAIN || err == EWOULDBLOCK)
        return false;
    if (err == EMFILE || err == ENFILE) {
        /* accept4 says EMFILE even with nothing pending. */
        if (!shed_connection(l))
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
static void take_connection(zinx__listener_t *l, int fd)
{
    zinx_server_t *s = l->server;
    if (zinx_connmgr_count(s->mgr) >= (size_t)s->cfg.max_conn) {
        close(fd); /* the client sees EOF at once */
        count(&s->stats.rejected_max_conn);
        log_refusal(s, "MaxConn reached");
        return;
    }
    int rc = zinx__server_accept_conn(s, l->loop, fd, l->spec.stack);
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

static void back_to_multishot(zinx__listener_t *l);

static void on_accept(zinx__io_t *io, uint32_t events)
{
    ZINX__UNUSED(events);
    zinx__listener_t *l = ZINX__CONTAINER_OF(io, zinx__listener_t, io);
    bool took = false;
    for (int i = 0; i < ACCEPTS_PER_EVENT && l->fd >= 0; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (!accept_failed(l, errno))
                break;
            continue;
        }
        took = true;
        take_connection(l, fd);
    }
    if (took && l->by_readiness)
        back_to_multishot(l);
}

/* ---- accept on io_uring (loop 0) ----------------------------------------- */

/* Before the iteration's submission: arm the multishot accept while
   listening, cancel it once closed. */
static void accept_flush(zinx__uring_op_t *op)
{
    zinx__listener_t *l = ZINX__CONTAINER_OF(op, zinx__listener_t, accept_op);
    bool arm = l->fd >= 0 && !l->accept_armed && !l->paused && !l->by_readiness;
    bool stop = l->fd < 0 && l->accept_armed && !l->accept_cancel;
    if (!arm && !stop)
        return;
    struct io_uring_sqe *sqe = zinx__uring_sqe(l->u);
    if (sqe == NULL) {
        zinx__uring_flush_later(l->u, op);
        return;
    }
    if (stop) {
        io_uring_prep_cancel64(sqe, zinx__uring_data(op, 0), 0);
        io_uring_sqe_set_data64(sqe, 0);
        l->accept_cancel = true;
        return;
    }
    io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, zinx__uring_data(op, 0));
    l->accept_armed = true;
}

/* Descriptors are back (an accept4() succeeded): the multishot accept
   takes over again from readiness. */
static void back_to_multishot(zinx__listener_t *l)
{
    l->by_readiness = false;
    zinx__io_stop(l->loop, &l->io);
    zinx__uring_flush_later(l->u, &l->accept_op);
}

/*
 * The accept ended on an error. Out of descriptors, io_uring's accept
 * fails with EMFILE even when no connection waits (it takes the
 * descriptor before looking at the queue), so a multishot accept armed
 * again would spin. The listener then works as on epoll, accept4() on
 * readiness with the same shedding, until an accept succeeds.
 */
static void accept_error(zinx__listener_t *l, int err)
{
    if (err != EMFILE && err != ENFILE) {
        accept_failed(l, err);
        return;
    }
    if (!l->by_readiness) {
        if (zinx__io_start(l->loop, &l->io, l->fd, ZINX__EV_READ) != 0) {
            l->paused = true; /* no readiness either: rest, then retry */
            zinx__loop_timer_arm(l->loop, &l->pause,
                                 zinx__now_ms() + SHED_PAUSE_MS);
            return;
        }
        l->by_readiness = true;
    }
    on_accept(&l->io, 0);
}

static void accept_cqe(zinx__uring_op_t *op, unsigned tag, int32_t res,
                       uint32_t flags)
{
    ZINX__UNUSED(tag);
    zinx__listener_t *l = ZINX__CONTAINER_OF(op, zinx__listener_t, accept_op);
    if (!(flags & IORING_CQE_F_MORE)) {
        l->accept_armed = false;
        l->accept_cancel = false;
    }
    if (res >= 0 && l->fd < 0)
        close(res); /* accepted while the listener closed */
    else if (res >= 0)
        take_connection(l, res);
    else if (l->fd >= 0 && res != -ECANCELED)
        accept_error(l, -res);
    if (!l->accept_armed && l->fd >= 0 && !l->by_readiness)
        zinx__uring_flush_later(l->u, op);
}

/* ---- lifecycle ----------------------------------------------------------- */

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

/* Loop 0 (or the stopping thread once the loops are gone). */
static void close_now(zinx__listener_t *l)
{
    if (l->loop != NULL) {
        zinx__loop_timer_cancel(l->loop, &l->pause);
        zinx__io_stop(l->loop, &l->io);
        if (l->u != NULL) /* its completion still names the listener */
            zinx__uring_flush_later(l->u, &l->accept_op);
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->reserve_fd >= 0)
        close(l->reserve_fd);
    l->reserve_fd = -1;
    remove_unix_file(l);
}

static void run_stop(void *arg)
{
    zinx__listener_t *l = arg;
    close_now(l);
    pthread_mutex_lock(&l->lock);
    l->closed = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

int zinx__listener_open(zinx_server_t *s, const zinx__listen_spec_t *spec,
                        zinx__listener_t **out)
{
    zinx__listener_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return ZINX_ENOMEM;
    l->server = s;
    l->spec = *spec;
    l->fd = l->reserve_fd = -1;
    zinx__io_init(&l->io, on_accept);
    l->accept_op.on_cqe = accept_cqe;
    l->accept_op.on_flush = accept_flush;
    zinx__timer_init(&l->pause, resume, l);
    zinx__closure_init(&l->stop_job, run_stop, NULL, l);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    int rc = bind_host(l);
    if (rc != 0) {
        zinx__listener_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int zinx__listener_start(zinx__listener_t *l, zinx__loop_t *loop)
{
    l->loop = loop;
    l->reserve_fd = open_reserve_fd();
    l->u = zinx__loop_uring(loop);
    if (l->u == NULL)
        return zinx__io_start(loop, &l->io, l->fd, ZINX__EV_READ);
    /* The loop's thread does not run yet: listing the accept for its
       first flush races with nothing. */
    zinx__uring_flush_later(l->u, &l->accept_op);
    return 0;
}

void zinx__listener_stop(zinx__listener_t *l)
{
    zinx__loop_post(l->loop, &l->stop_job);
    pthread_mutex_lock(&l->lock);
    while (!l->closed)
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

void zinx__listener_free(zinx__listener_t *l)
{
    if (l == NULL)
        return;
    l->loop = NULL; /* its loop is gone, or never ran */
    close_now(l);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    free(l);
}
