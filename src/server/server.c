/* The server: set-up, listener and accept, start, serve and stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "server/config_internal.h"

/* Accepts per readiness event, so a connection storm cannot monopolise
   loop 0 (as Redis's max-new-connections-per-cycle). */
#define ACCEPTS_PER_EVENT 64
/* How long the listener rests when even the spare descriptor is gone. */
#define SHED_PAUSE_MS 100u

/* Server state only loop 0 touches: accept-path bookkeeping. */
typedef struct accept_state {
    int reserve_fd; /* spare descriptor for EMFILE shedding */
} accept_state_t;

static accept_state_t *accept_state(zinx_server_t *s);

zinx_server_t *zinx_server_new(const zinx_config_t *cfg)
{
    zinx_config_t full; /* the caller's struct_size bytes, defaults after */
    if (zinx__config_import(&full, cfg, NULL, 0) != 0) {
        errno = EINVAL;
        return NULL;
    }
    zinx_server_t *s = calloc(1, sizeof(*s) + sizeof(accept_state_t));
    if (s == NULL)
        return NULL;
    s->cfg = full;
    zinx__logger_init(&s->log);
    s->log.min_level = zinx_log_min_level(s->cfg.log_isolation_level);
    snprintf(s->log.name, sizeof(s->log.name), "%s", s->cfg.name);
    s->listen_fd = -1;
    accept_state(s)->reserve_fd = -1;
    s->mgr = zinx__connmgr_new();
    s->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->mgr == NULL || s->stop_efd < 0) {
        zinx__connmgr_free(s->mgr);
        if (s->stop_efd >= 0)
            close(s->stop_efd);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    atomic_init(&s->state, ZINX__SERVER_NEW);
    s->listening = true;
    return s;
}

zinx_server_t *zinx_client_new(const zinx_config_t *cfg)
{
    zinx_server_t *s = zinx_server_new(cfg);
    if (s != NULL)
        s->listening = false;
    return s;
}

static accept_state_t *accept_state(zinx_server_t *s)
{
    return (accept_state_t *)(s + 1);
}

const char *zinx_server_listen_host(const zinx_server_t *s)
{
    return s != NULL ? s->listen_host : "";
}

const zinx_config_t *zinx_server_config(const zinx_server_t *s)
{
    return &s->cfg;
}

zinx_connmgr_t *zinx_server_connmgr(zinx_server_t *s)
{
    return s->mgr;
}

int zinx_server_port(const zinx_server_t *s)
{
    return atomic_load(&s->port);
}

static bool is_new(const zinx_server_t *s)
{
    return atomic_load(&s->state) == ZINX__SERVER_NEW;
}

/* ---- set-up -------------------------------------------------------------- */

int zinx_server_add_router(zinx_server_t *s, uint32_t id,
                           const zinx_router_t *router)
{
    if (s == NULL || router == NULL)
        return ZINX_EINVAL;
    if (!is_new(s))
        return ZINX_ESTATE;
    return zinx__router_table_add(&s->routes, id, router);
}

int zinx_server_set_fallback_router(zinx_server_t *s,
                                    const zinx_router_t *router)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!is_new(s))
        return ZINX_ESTATE;
    s->has_fallback = router != NULL;
    if (router != NULL)
        s->fallback = *router;
    return 0;
}

int zinx_server_on_conn_start(zinx_server_t *s, zinx_conn_hook_fn fn,
                              void *udata)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!is_new(s))
        return ZINX_ESTATE;
    s->on_start = fn;
    s->on_start_udata = udata;
    return 0;
}

int zinx_server_on_conn_stop(zinx_server_t *s, zinx_conn_hook_fn fn,
                             void *udata)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!is_new(s))
        return ZINX_ESTATE;
    s->on_stop = fn;
    s->on_stop_udata = udata;
    return 0;
}

int zinx_server_set_heartbeat_hooks(zinx_server_t *s,
                                    zinx_heartbeat_msg_fn make_msg,
                                    zinx_heartbeat_dead_fn on_dead, void *udata)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!is_new(s))
        return ZINX_ESTATE;
    s->hb_make = make_msg;
    s->hb_dead = on_dead;
    s->hb_udata = udata;
    return 0;
}

int zinx_server_set_log_sink(zinx_server_t *s, zinx_log_fn sink, void *udata)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!is_new(s))
        return ZINX_ESTATE;
    s->log.sink = sink;
    s->log.udata = udata;
    return 0;
}

/* ---- listener and accept (loop 0) --------------------------------------- */

/* Notes the port and numeric address the listener actually got. */
static void record_bound(zinx_server_t *s, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    const void *addr = &((struct sockaddr_in *)&ss)->sin_addr;
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) {
        addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (inet_ntop(ss.ss_family, addr, s->listen_host, sizeof(s->listen_host)) ==
        NULL)
        s->listen_host[0] = '\0';
    atomic_store(&s->port, port);
}

/*
 * Binds and listens on one address. dual_stack clears IPV6_V6ONLY so an
 * IPv6 wildcard also takes IPv4 connections, as Go's listener does; a
 * stack that cannot do that is reported like one without IPv6, so the
 * caller falls back to IPv4.
 */
static int listen_on(zinx_server_t *s, const struct sockaddr *sa, socklen_t len,
                     bool dual_stack)
{
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    int zero = 0;
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
    s->listen_fd = fd;
    record_bound(s, fd);
    return 0;
}

/*
 * Host "": every interface, both families on one socket ("::" with
 * IPV6_V6ONLY off), like Go's net.Listen("tcp", ":port"). Where IPv6 is
 * missing (no support, or disabled so that "::" cannot be bound) it is
 * 0.0.0.0 instead.
 */
static int listen_any(zinx_server_t *s)
{
    uint16_t port = htons((uint16_t)s->cfg.tcp_port);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = port};
    a6.sin6_addr = in6addr_any;
    int rc = listen_on(s, (struct sockaddr *)&a6, sizeof(a6), true);
    if (rc != -EAFNOSUPPORT && rc != ZINX_EADDRNOTAVAIL)
        return rc;
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = port};
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
    return listen_on(s, (struct sockaddr *)&a4, sizeof(a4), false);
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
static int resolve_host(zinx_server_t *s, struct sockaddr_storage *ss,
                        socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", s->cfg.tcp_port);
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

static int open_listener(zinx_server_t *s)
{
    if (s->cfg.host[0] == '\0')
        return listen_any(s);
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = resolve_host(s, &ss, &len);
    if (rc == 0)
        rc = listen_on(s, (struct sockaddr *)&ss, len, false);
    return rc;
}

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
static bool shed_connection(zinx_server_t *s, zinx__loop_t *loop)
{
    accept_state_t *as = accept_state(s);
    if (as->reserve_fd < 0) {
        as->reserve_fd = open_reserve_fd();
        if (as->reserve_fd < 0) {
            zinx__loop_pause_listener(loop, SHED_PAUSE_MS);
            return false;
        }
    }
    close(as->reserve_fd);
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    as->reserve_fd = open_reserve_fd();
    return fd >= 0;
}

static void log_refusal(zinx_server_t *s, const char *why)
{
    ZINX__LOG_LIMITED(s, ZINX__LOGK_REFUSED, ZINX_LOG_WARN,
                      "refused a connection: %s", why);
}

zinx_conn_t *zinx__server_open_conn(zinx_server_t *s, zinx__loop_t *here,
                                    zinx__loop_t *owner, int fd)
{
    ZINX__UNUSED(here);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint64_t id = atomic_fetch_add(&s->next_id, 1) + 1;
    zinx__loop_t *loop = owner != NULL ? owner : s->loops[id % s->nloops];
    zinx__worker_t *w = s->nworkers ? s->workers[id % s->nworkers] : NULL;
    uint32_t wid = s->nworkers ? (uint32_t)(id % s->nworkers) : 0;
    zinx_conn_t *c = zinx__conn_new(s, fd, id, loop, w, wid);
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    if (zinx__connmgr_add(s->mgr, c) != 0) {
        zinx_conn_unref(c); /* closes fd */
        return NULL;
    }
    return c;
}

static void start_conn(zinx_server_t *s, zinx__loop_t *here, int fd)
{
    zinx_conn_t *c = zinx__server_open_conn(s, here, NULL, fd);
    if (c == NULL) {
        atomic_fetch_add_explicit(&s->stats.out_of_memory, 1,
                                  memory_order_relaxed);
        log_refusal(s, "out of memory");
        return;
    }
    atomic_fetch_add_explicit(&s->stats.accepted, 1, memory_order_relaxed);
    zinx__loop_t *loop = s->loops[zinx_conn_id(c) % s->nloops];
    if (loop == here)
        zinx__conn_adopt(c);
    else
        zinx__conn_poke(c); /* its loop adopts it when it attends to it */
}

int zinx_server_adopt_fd(zinx_server_t *s, int fd)
{
    if (s == NULL || fd < 0) {
        if (fd >= 0)
            close(fd);
        return ZINX_EINVAL;
    }
    int rc = 0;
    if (atomic_load(&s->state) != ZINX__SERVER_RUNNING)
        rc = ZINX_ESTATE;
    else if (zinx_connmgr_count(s->mgr) >= (size_t)s->cfg.max_conn)
        rc = ZINX_EBUSY;
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        rc = -errno;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    zinx_conn_t *c = zinx__server_open_conn(s, NULL, NULL, fd);
    if (c == NULL)
        return ZINX_ENOMEM;
    atomic_fetch_add_explicit(&s->stats.accepted, 1, memory_order_relaxed);
    zinx__conn_poke(c); /* its loop adopts it when it attends to it */
    return 0;
}

void zinx__server_on_accept(zinx_server_t *s, zinx__loop_t *loop)
{
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        int fd =
            accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EMFILE || errno == ENFILE) {
                /* accept4 says EMFILE even with nothing pending. */
                if (!shed_connection(s, loop))
                    return;
                atomic_fetch_add_explicit(&s->stats.accept_errors, 1,
                                          memory_order_relaxed);
                log_refusal(s, "out of file descriptors");
                continue;
            }
            atomic_fetch_add_explicit(&s->stats.accept_errors, 1,
                                      memory_order_relaxed);
            ZINX__LOG(s, ZINX_LOG_ERROR, "accept: %s", strerror(errno));
            return;
        }
        if (zinx_connmgr_count(s->mgr) >= (size_t)s->cfg.max_conn) {
            close(fd); /* the client sees EOF at once */
            atomic_fetch_add_explicit(&s->stats.rejected_max_conn, 1,
                                      memory_order_relaxed);
            log_refusal(s, "MaxConn reached");
            continue;
        }
        start_conn(s, loop, fd);
    }
}

void zinx__server_listener_closed(zinx_server_t *s)
{
    s->listen_fd = -1; /* the loop closed it */
    accept_state_t *as = accept_state(s);
    if (as->reserve_fd >= 0) {
        close(as->reserve_fd);
        as->reserve_fd = -1;
    }
    pthread_mutex_lock(&s->lock);
    s->listener_closed = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* ---- start ------------------------------------------------------------------
 */

bool zinx__server_is_framework_thread(const zinx_server_t *s)
{
    for (uint32_t i = 0; i < s->nloops; i++) {
        if (s->loops[i] != NULL && zinx__loop_is_self(s->loops[i]))
            return true;
    }
    for (uint32_t i = 0; i < s->nworkers; i++) {
        if (s->workers[i] != NULL && zinx__worker_is_self(s->workers[i]))
            return true;
    }
    return false;
}

static uint32_t loop_count(const zinx_config_t *cfg)
{
    if (cfg->io_threads > 0)
        return cfg->io_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1;
}

static int create_threads(zinx_server_t *s)
{
    s->nloops = loop_count(&s->cfg);
    s->nworkers = s->cfg.worker_pool_size;
    s->loops = calloc(s->nloops, sizeof(*s->loops));
    s->workers = calloc(s->nworkers ? s->nworkers : 1, sizeof(*s->workers));
    if (s->loops == NULL || s->workers == NULL)
        return ZINX_ENOMEM;
    for (uint32_t i = 0; i < s->nloops; i++) {
        if ((s->loops[i] = zinx__loop_new(s, i)) == NULL)
            return ZINX_ENOMEM;
    }
    for (uint32_t i = 0; i < s->nworkers; i++) {
        s->workers[i] = zinx__worker_new(s, i, s->cfg.max_worker_task_len);
        if (s->workers[i] == NULL)
            return ZINX_ENOMEM;
    }
    int rc = 0;
    if (s->listening) {
        rc = zinx__loop_set_listener(s->loops[0], s->listen_fd);
        if (rc != 0)
            return rc;
        accept_state(s)->reserve_fd = open_reserve_fd();
    }
    for (uint32_t i = 0; i < s->nworkers && rc == 0; i++)
        rc = zinx__worker_start(s->workers[i]);
    for (uint32_t i = 0; i < s->nloops && rc == 0; i++)
        rc = zinx__loop_start(s->loops[i]);
    return rc;
}

/* Joins whatever runs and frees the threads' resources. */
static void destroy_threads(zinx_server_t *s, uint64_t linger_until_ms)
{
    for (uint32_t i = 0; i < s->nworkers; i++) {
        if (s->workers != NULL && s->workers[i] != NULL)
            zinx__worker_stop(s->workers[i]);
    }
    /* Every loop is told first, so they finish lingering side by side. */
    for (uint32_t i = 0; s->loops != NULL && i < s->nloops; i++) {
        if (s->loops[i] != NULL)
            zinx__loop_request_quit(s->loops[i], linger_until_ms);
    }
    for (uint32_t i = 0; s->loops != NULL && i < s->nloops; i++) {
        if (s->loops[i] != NULL)
            zinx__loop_join(s->loops[i]);
    }
    for (uint32_t i = 0; s->workers != NULL && i < s->nworkers; i++)
        zinx__worker_free(s->workers[i]);
    for (uint32_t i = 0; s->loops != NULL && i < s->nloops; i++)
        zinx__loop_free(s->loops[i]);
    free(s->workers);
    free(s->loops);
    s->workers = NULL;
    s->loops = NULL;
    s->nworkers = s->nloops = 0;
    /* Loop 0 closes the listener on STOP_LISTEN; after a failed start it
       never got that far. */
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
    accept_state_t *as = accept_state(s);
    if (as->reserve_fd >= 0)
        close(as->reserve_fd);
    as->reserve_fd = -1;
}

/* Heartbeats from peers are life signs, not unknown messages. */
static int route_heartbeats(zinx_server_t *s)
{
    if (s->cfg.heartbeat_interval_ms == 0 ||
        zinx__router_table_find(&s->routes, s->cfg.heartbeat_msg_id) != NULL)
        return 0;
    zinx_router_t r = {.handle = zinx__ignore_message};
    return zinx__router_table_add(&s->routes, s->cfg.heartbeat_msg_id, &r);
}

static int check_config(zinx_server_t *s)
{
    char err[512];
    if (zinx_config_validate(&s->cfg, err, sizeof(err)) != 0) {
        zinx__log(s, ZINX_LOG_ERROR, "invalid configuration: %s", err);
        return ZINX_ECONFIG;
    }
    int rc = zinx__logger_open(&s->log, &s->cfg);
    if (rc != 0) {
        zinx__log(s, ZINX_LOG_ERROR, "cannot open log file %s/%s: %s",
                  s->cfg.log_dir, s->cfg.log_file, zinx_strerror(rc));
        return ZINX_ECONFIG;
    }
    return 0;
}

int zinx_server_start(zinx_server_t *s)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!is_new(s))
        return ZINX_ESTATE;
    int rc = check_config(s);
    if (rc == 0)
        rc = route_heartbeats(s);
    if (rc != 0)
        return rc;
    rc = s->listening ? open_listener(s) : 0;
    if (rc != 0) {
        zinx__log(s, ZINX_LOG_ERROR, "cannot listen on Host \"%s\" port %d: %s",
                  s->cfg.host, s->cfg.tcp_port, zinx_strerror(rc));
        return rc;
    }
    rc = create_threads(s);
    if (rc != 0) {
        destroy_threads(s, 0);
        zinx__log(s, ZINX_LOG_ERROR, "cannot start: %s", zinx_strerror(rc));
        return rc;
    }
    atomic_store(&s->state, ZINX__SERVER_RUNNING);
    if (!s->listening) {
        ZINX__LOG(s, ZINX_LOG_INFO,
                  "client started (%u I/O threads, %u "
                  "workers, format %s)",
                  s->nloops, s->nworkers,
                  zinx_packet_format_name(s->cfg.packet_format));
        return 0;
    }
    /* The bound address, not Host: for a name or "" it says which
       address was taken. IPv6 in brackets keeps ADDR:PORT parsable. */
    const char *v6 = strchr(s->listen_host, ':') != NULL ? "[" : "";
    ZINX__LOG(s, ZINX_LOG_INFO,
              "listening on %s%s%s:%d (Host \"%s\", %u I/O threads, "
              "%u workers, format %s, MaxConn %d, MaxPacketSize %u)",
              v6, s->listen_host, v6[0] != '\0' ? "]" : "",
              atomic_load(&s->port), s->cfg.host, s->nloops, s->nworkers,
              zinx_packet_format_name(s->cfg.packet_format), s->cfg.max_conn,
              s->cfg.max_packet_size);
    return 0;
}

/* ---- stop ------------------------------------------------------------------
 */

int zinx_server_stop(zinx_server_t *s)
{
    if (s == NULL)
        return ZINX_EINVAL;
    uint64_t one = 1;
    ssize_t w = write(s->stop_efd, &one, sizeof(one));
    ZINX__UNUSED(w); /* EAGAIN: already signalled */
    return 0;
}

static void close_listener(zinx_server_t *s)
{
    if (!s->listening)
        return;
    zinx__loop_request_stop_listen(s->loops[0]);
    pthread_mutex_lock(&s->lock);
    while (!s->listener_closed)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

/* Closes every connection gracefully and waits for their OnConnStop,
   until `deadline` (monotonic ms); then closes what is left at once. */
static void drain_connections(zinx_server_t *s, uint64_t deadline)
{
    zinx_connmgr_close_all(s->mgr, 1);
    if (zinx__connmgr_wait_empty(s->mgr, deadline))
        return;
    ZINX__LOG(s, ZINX_LOG_WARN,
              "%zu connection(s) still draining after %u ms; closing them",
              zinx_connmgr_count(s->mgr), s->cfg.drain_timeout_ms);
    zinx_connmgr_close_all(s->mgr, 0);
    zinx__connmgr_wait_empty(s->mgr, 0);
}

/* ---- dialers ----------------------------------------------------------------
 */

void zinx__server_set_fault(zinx_server_t *s, zinx__fault_fn fn, void *udata)
{
    s->fault = fn;
    s->fault_udata = udata;
}

zinx__loop_t *zinx__server_pick_loop(zinx_server_t *s)
{
    uint32_t i = atomic_fetch_add(&s->next_loop, 1);
    return s->loops[i % s->nloops];
}

int zinx__server_add_dialer(zinx_server_t *s, zinx_dialer_t *d)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (atomic_load(&s->state) != ZINX__SERVER_RUNNING) {
        rc = ZINX_ESTATE;
    } else if (s->ndialers == s->dialers_cap) {
        size_t cap = s->dialers_cap ? s->dialers_cap * 2 : 8;
        zinx_dialer_t **p = realloc(s->dialers, cap * sizeof(*p));
        if (p == NULL)
            rc = ZINX_ENOMEM;
        else {
            s->dialers = p;
            s->dialers_cap = cap;
        }
    }
    if (rc == 0)
        s->dialers[s->ndialers++] = zinx__dialer_ref(d);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void zinx__server_remove_dialer(zinx_server_t *s, zinx_dialer_t *d)
{
    bool found = false;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->ndialers; i++) {
        if (s->dialers[i] == d) {
            s->dialers[i] = s->dialers[--s->ndialers];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (found)
        zinx__dialer_unref(d);
}

/* No dialer may start a new connection while connections drain. */
static void stop_dialers(zinx_server_t *s)
{
    pthread_mutex_lock(&s->lock);
    zinx_dialer_t **all = s->dialers;
    size_t n = s->ndialers;
    s->dialers = NULL;
    s->ndialers = s->dialers_cap = 0;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        zinx__dialer_shutdown(all[i]);
        zinx__dialer_unref(all[i]);
    }
    free(all);
}

/* Runs the graceful stop once; concurrent callers wait for it. */
static void shutdown_server(zinx_server_t *s)
{
    pthread_mutex_lock(&s->lock);
    int st = atomic_load(&s->state);
    if (st != ZINX__SERVER_RUNNING) {
        while (atomic_load(&s->state) == ZINX__SERVER_STOPPING)
            pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    atomic_store(&s->state, ZINX__SERVER_STOPPING);
    pthread_mutex_unlock(&s->lock);

    ZINX__LOG(s, ZINX_LOG_INFO, "stopping: %zu connection(s) open",
              zinx_connmgr_count(s->mgr));
    /* One deadline for the whole drain: replies flushed, hooks run, and
       what was written acknowledged by the peers (lingering sockets). */
    uint64_t deadline = zinx__now_ms() + s->cfg.drain_timeout_ms;
    close_listener(s);
    stop_dialers(s);
    drain_connections(s, deadline);
    destroy_threads(s, deadline);
    ZINX__LOG(s, ZINX_LOG_INFO, "stopped");

    pthread_mutex_lock(&s->lock);
    atomic_store(&s->state, ZINX__SERVER_STOPPED);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

int zinx_server_reopen_log(zinx_server_t *s)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (s->log.sink != NULL)
        return 0;
    int rc = zinx__logger_reopen(&s->log);
    if (rc < 0) {
        zinx__log(s, ZINX_LOG_ERROR, "cannot reopen log file %s/%s: %s",
                  s->cfg.log_dir, s->cfg.log_file, zinx_strerror(rc));
        return rc;
    }
    if (rc == 1)
        ZINX__LOG(s, ZINX_LOG_INFO, "log reopened");
    return 0;
}

/* Reads one signal from sigfd. Returns true when it asks for a stop;
   SIGHUP reopens the log file instead, as nginx and most daemons do, so
   that log rotation by rename works. */
static bool handle_signal(zinx_server_t *s, int sigfd)
{
    struct signalfd_siginfo si;
    if (read(sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return false;
    if (si.ssi_signo == SIGHUP) {
        zinx_server_reopen_log(s);
        return false;
    }
    ZINX__LOG(s, ZINX_LOG_INFO, "signal %u received", si.ssi_signo);
    return true;
}

static void wait_stop_request(zinx_server_t *s, int sigfd)
{
    struct pollfd pfd[2] = {{.fd = s->stop_efd, .events = POLLIN},
                            {.fd = sigfd, .events = POLLIN}};
    for (;;) {
        int n = poll(pfd, sigfd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (pfd[0].revents & POLLIN))
            return;
        if (sigfd >= 0 && (pfd[1].revents & POLLIN) && handle_signal(s, sigfd))
            return;
    }
}

int zinx_server_wait(zinx_server_t *s)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (is_new(s))
        return ZINX_ESTATE;
    if (zinx__server_is_framework_thread(s))
        return ZINX_EDEADLK;
    if (atomic_load(&s->state) == ZINX__SERVER_RUNNING)
        wait_stop_request(s, -1);
    shutdown_server(s);
    return 0;
}

/* Consumes signals that arrived during the stop, so unblocking them
   afterwards does not kill a process that stopped cleanly. */
static void drain_signals(int sigfd)
{
    struct signalfd_siginfo si;
    while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    }
}

static bool sigpipe_pending(void)
{
    sigset_t pending;
    return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

/* Takes back a SIGPIPE raised on this thread while serve() blocked it
   (by a write of the program's or the library's), so that restoring the
   caller's mask cannot kill a server that stopped cleanly. */
static void consume_sigpipe(void)
{
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
    }
}

int zinx_server_serve(zinx_server_t *s)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (zinx__server_is_framework_thread(s))
        return ZINX_EDEADLK;
    /* The stop signals and SIGHUP are read from sigfd; SIGPIPE is only
       blocked, so that no write of this thread can die of it. */
    sigset_t sigs, masked, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    masked = sigs;
    sigaddset(&masked, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &masked, &old);
    bool pipe_was_pending = sigpipe_pending();
    int sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    int rc = is_new(s) ? zinx_server_start(s) : 0;
    if (rc == 0) {
        if (atomic_load(&s->state) == ZINX__SERVER_RUNNING)
            wait_stop_request(s, sigfd);
        shutdown_server(s);
    }
    if (sigfd >= 0) {
        drain_signals(sigfd);
        close(sigfd);
    }
    if (!pipe_was_pending)
        consume_sigpipe();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void zinx_server_free(zinx_server_t *s)
{
    if (s == NULL)
        return;
    if (zinx__server_is_framework_thread(s)) {
        ZINX__LOG(s, ZINX_LOG_ERROR,
                  "zinx_server_free called from a framework thread; ignored");
        return;
    }
    if (!is_new(s)) {
        zinx_server_stop(s);
        shutdown_server(s);
    } else if (s->listen_fd >= 0) {
        close(s->listen_fd);
    }
    zinx__router_table_free(&s->routes);
    zinx__connmgr_free(s->mgr);
    zinx__logger_close(&s->log);
    close(s->stop_efd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
