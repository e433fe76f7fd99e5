/* The server: set-up, start, serve and stop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/array.h"
#include "internal.h"
#include "kcp/kcp.h"
#include "server/config_internal.h"
#include "server/listener.h"
#include "server/transports.h"
#include "ws/ws.h"

/* ReusePort: how long a stopping server goes on serving its connections
   after its listeners closed (see handover_grace). */
#define HANDOVER_GRACE_MS 100u

zinx_server_t *zinx_server_new(const zinx_config_t *cfg)
{
    zinx_config_t full; /* the caller's struct_size bytes, defaults after */
    if (zinx__config_import(&full, cfg, NULL, 0) != 0) {
        errno = EINVAL;
        return NULL;
    }
    zinx_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cfg = full;
    zinx__logger_init(&s->log);
    s->log.min_level = zinx_log_min_level(s->cfg.log_isolation_level);
    snprintf(s->log.name, sizeof(s->log.name), "%s", s->cfg.name);
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

int zinx_server_kcp_port(const zinx_server_t *s)
{
    return atomic_load(&s->kcp_port);
}

int zinx_server_ws_port(const zinx_server_t *s)
{
    return atomic_load(&s->ws_port);
}

static bool is_new(const zinx_server_t *s)
{
    return zinx__server_is_new(s);
}

/* ---- set-up -------------------------------------------------------------- */

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

/* ---- start ------------------------------------------------------------------
 */

bool zinx__server_is_framework_thread(const zinx_server_t *s)
{
    for (uint32_t i = 0; i < s->nloops; i++) {
        if (s->loops[i] != NULL && zinx__loop_is_self(s->loops[i]))
            return true;
    }
    return (s->pool != NULL && zinx__pool_is_own_thread(s->pool)) ||
           zinx__cluster_is_own_thread(s);
}

static uint32_t loop_count(const zinx_config_t *cfg)
{
    if (cfg->io_threads > 0)
        return cfg->io_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1;
}

/* Makes every loop on one backend. Returns 0, or the first failure. */
static int open_loops(zinx_server_t *s, const zinx__loop_conf_t *conf)
{
    for (uint32_t i = 0; i < s->nloops; i++) {
        int err = 0;
        if (s->uring_refuse && conf->backend == ZINX__BACKEND_URING)
            err = -EPERM;
        else
            s->loops[i] = zinx__loop_new(&s->log, i, conf, &err);
        if (s->loops[i] == NULL)
            return err;
    }
    return 0;
}

static void close_loops(zinx_server_t *s)
{
    for (uint32_t i = 0; i < s->nloops; i++) {
        zinx__loop_free(s->loops[i]);
        s->loops[i] = NULL;
    }
}

/* IOBackend "io_uring" where the kernel refuses it (too old, a seccomp
   policy, RLIMIT_MEMLOCK, a missing feature) runs on epoll: the server
   works either way, and the one warning says why it is not what was
   asked for. All loops share one backend, so the log and the stats name
   one. */
static int create_loops(zinx_server_t *s)
{
    s->nloops = loop_count(&s->cfg);
    s->loops = calloc(s->nloops, sizeof(*s->loops));
    s->shards = calloc(s->nloops, sizeof(*s->shards));
    if (s->loops == NULL || s->shards == NULL)
        return ZINX_ENOMEM;
    zinx__loop_conf_t conf = {.backend = ZINX__BACKEND_EPOLL,
                              .buffers = s->uring_buffers};
    if (s->cfg.io_backend == ZINX_IO_URING)
        conf.backend = ZINX__BACKEND_URING;
    int rc = open_loops(s, &conf);
    /* ENOMEM too: io_uring_queue_init() reports RLIMIT_MEMLOCK that way
       on older kernels. Memory that is really short fails epoll next. */
    if (rc != 0 && conf.backend == ZINX__BACKEND_URING) {
        zinx__log(s, ZINX_LOG_WARN,
                  "IOBackend io_uring refused by the kernel (%s); using epoll",
                  zinx_strerror(rc));
        close_loops(s);
        conf.backend = ZINX__BACKEND_EPOLL;
        rc = open_loops(s, &conf);
    }
    if (rc != 0)
        return rc;
    s->io_backend = zinx__loop_backend_name(s->loops[0]);
    for (uint32_t i = 0; i < s->nloops; i++) {
        if ((s->shards[i] = zinx__shard_new(s, s->loops[i])) == NULL)
            return ZINX_ENOMEM;
    }
    return 0;
}

static void free_listeners(zinx_server_t *s)
{
    for (int i = 0; i < ZINX__LISTENERS; i++) {
        zinx__listener_free(s->listeners[i]);
        s->listeners[i] = NULL;
    }
}

static int create_threads(zinx_server_t *s)
{
    /* Before the loops: their shards time iterations when metrics are
       on. */
    int rc =
        zinx__metrics_prepare(s, loop_count(&s->cfg), s->cfg.worker_pool_size);
    s->route_extra = s->nicpt != 0 || s->metrics != NULL;
    if (rc == 0)
        rc = create_loops(s);
    if (rc != 0)
        return rc;
    s->nworkers = s->cfg.worker_pool_size;
    /* DynamicBind makes a worker per connection beyond the pool: MaxConn
       of them at most, as Zinx. */
    s->pool =
        zinx__pool_new(s->cfg.worker_mode, s->nworkers,
                       (uint32_t)s->cfg.max_conn, s->cfg.max_worker_task_len);
    if (s->pool == NULL)
        return ZINX_ENOMEM;
    for (int i = 0; i < ZINX__LISTENERS; i++)
        if (s->listeners[i] != NULL &&
            (rc = zinx__listener_start(s->listeners[i])) != 0)
            return rc;
    if ((rc = zinx__transports_kcp_open(s)) != 0)
        return rc;
    if (rc == 0)
        rc = zinx__pool_start(s->pool);
    for (uint32_t i = 0; i < s->nloops && rc == 0; i++) {
        char name[24]; /* the thread's name keeps the first 15 bytes */
        snprintf(name, sizeof(name), "zinx-io-%u", i);
        rc = zinx__loop_start(s->loops[i], name);
    }
    if (rc == 0)
        rc = zinx__metrics_serve(s);
    return rc;
}

static void free_loops(zinx_server_t *s)
{
    for (uint32_t i = 0; s->loops != NULL && i < s->nloops; i++)
        zinx__loop_free(s->loops[i]);
    for (uint32_t i = 0; s->shards != NULL && i < s->nloops; i++)
        zinx__shard_free(s->shards[i]);
    free(s->loops);
    free(s->shards);
    s->loops = NULL;
    s->shards = NULL;
    s->nloops = 0;
}

/* Joins whatever runs and frees the threads' resources. */
static void destroy_threads(zinx_server_t *s, uint64_t linger_until_ms)
{
    zinx__metrics_stop(s); /* its thread reads the pool */
    if (s->pool != NULL)
        zinx__pool_stop(s->pool);
    /* Every loop is told first, so they finish lingering side by side. */
    for (uint32_t i = 0; s->loops != NULL && i < s->nloops; i++) {
        if (s->loops[i] != NULL)
            zinx__loop_request_quit(s->loops[i], linger_until_ms);
    }
    for (uint32_t i = 0; s->loops != NULL && i < s->nloops; i++) {
        if (s->loops[i] != NULL)
            zinx__loop_join(s->loops[i]);
    }
    zinx__timers_release(s);
    /* Waiters still listed are woken: they post to their (stopped) loops,
       whose posts are then dropped. */
    zinx__pool_free(s->pool);
    s->pool = NULL;
    s->nworkers = 0;
    /* The loops themselves stay until zinx_server_free(): a thread of the
       program may be inside a send or a notify (Thread: any) that took
       its connection just before the connection ended, and still post
       to the connection's loop after the stop; a stopped loop drops the
       post, a freed one would be a use after free. */
    /* Loop 0 closed the listeners at the stop; after a failed start it
       never got that far. */
    free_listeners(s);
    zinx__transports_kcp_free(s);
}

/* ---- connections ------------------------------------------------------- */

/* Where a new connection's bottom stream comes from: a socket, or a KCP
   session when kcp is set. */
typedef struct conn_src {
    int fd;
    struct zinx__kcp_session *kcp;
    const zinx__stack_spec_t *stack;
} conn_src_t;

static void drop_src(const conn_src_t *src)
{
    if (src->kcp != NULL)
        zinx__kcp_session_discard(src->kcp);
    else
        close(src->fd);
}

static zinx_conn_t *open_conn(zinx_server_t *s, zinx__shard_t *shard,
                              const conn_src_t *src, int *err)
{
    /* The node's number in the top bits makes IDs cluster-unique (0
       without a cluster: the IDs are as before). */
    uint64_t id = (atomic_fetch_add(&s->next_id, 1) + 1) | s->id_base;
    if (shard == NULL)
        shard = s->shards[id % s->nloops];
    zinx__worker_t *w;
    *err = zinx__pool_acquire(s->pool, id, &w);
    if (*err != 0) {
        drop_src(src);
        return NULL;
    }
    *err = ZINX_ENOMEM;
    uint32_t wid = w != NULL ? zinx__worker_id(w) : 0;
    zinx_conn_t *c =
        src->kcp != NULL
            ? zinx__conn_new_kcp(s, src->kcp, id, shard, w, wid)
            : zinx__conn_new(s, src->fd, id, shard, w, wid, src->stack);
    if (c != NULL && zinx__connmgr_add(s->mgr, c) != 0) {
        zinx_conn_unref(c); /* closes its transport */
        c = NULL;
    }
    if (c == NULL) {
        /* Never adopted, so no stop job gives the worker back. */
        if (w != NULL)
            zinx__pool_release(s->pool, w);
        return NULL;
    }
    *err = 0;
    return c;
}

zinx_conn_t *zinx__server_open_conn(zinx_server_t *s, zinx__shard_t *shard,
                                    int fd, const zinx__stack_spec_t *stack,
                                    int *err)
{
    conn_src_t src = {.fd = fd, .stack = stack};
    return open_conn(s, shard, &src, err);
}

zinx_conn_t *zinx__server_open_kcp_conn(zinx_server_t *s, zinx__shard_t *shard,
                                        struct zinx__kcp_session *sess,
                                        int *err)
{
    conn_src_t src = {.fd = -1, .kcp = sess};
    return open_conn(s, shard, &src, err);
}

int zinx__server_accept_conn(zinx_server_t *s, zinx__loop_t *here,
                             zinx__shard_t *shard, int fd,
                             const zinx__stack_spec_t *stack)
{
    int err;
    zinx_conn_t *c = zinx__server_open_conn(s, shard, fd, stack, &err);
    if (c == NULL)
        return err;
    atomic_fetch_add_explicit(&s->stats.accepted, 1, memory_order_relaxed);
    if (zinx__conn_loop(c) == here)
        zinx__conn_adopt(c);
    else
        zinx__conn_adopt_later(c);
    return 0;
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
    /* An adopted socket is served as TCPPort's connections are. */
    zinx_conn_t *c = zinx__server_open_conn(s, NULL, fd, &s->tr.tcp, &rc);
    if (c == NULL)
        return rc;
    atomic_fetch_add_explicit(&s->stats.accepted, 1, memory_order_relaxed);
    zinx__conn_adopt_later(c);
    return 0;
}

/* Heartbeats from peers are life signs, not unknown messages. */
static int route_heartbeats(zinx_server_t *s)
{
    if (s->cfg.heartbeat_interval_ms == 0 ||
        zinx__router_table_find(&s->routes, s->cfg.heartbeat_msg_id) != NULL)
        return 0;
    /* The framework's own route: no middleware, as it is not the user's. */
    zinx__chain_t c;
    zinx__mw_t none = {0};
    zinx_handler_t ignore = {zinx__ignore_message, NULL};
    int rc = zinx__chain_resolve(&c, &none, NULL, &ignore, 1);
    if (rc != 0)
        return rc;
    rc = zinx__router_table_add(&s->routes, s->cfg.heartbeat_msg_id, &c);
    zinx__chain_free(&c);
    return rc;
}

/* ZINX_IO_BACKEND, when set and not empty, overrides IOBackend: an
   operator (or CI) picks the backend without editing configurations. A
   value that names none is refused, not ignored: it was asked for. */
static int apply_backend_override(zinx_server_t *s)
{
    const char *env = getenv("ZINX_IO_BACKEND");
    if (env == NULL || env[0] == '\0')
        return 0;
    uint32_t b;
    if (zinx__key_names_parse(&zinx__io_backend_names, env, &b) != 0) {
        char q[ZINX__CONFIG_QUOTE_LEN];
        zinx__log(s, ZINX_LOG_ERROR,
                  "invalid configuration: ZINX_IO_BACKEND: unknown I/O "
                  "backend \"%s\" (expected epoll or io_uring)",
                  zinx__config_quote(env, q));
        return ZINX_ECONFIG;
    }
    s->cfg.io_backend = b;
    return 0;
}

static int check_config(zinx_server_t *s)
{
    char err[512];
    if (zinx_config_validate(&s->cfg, err, sizeof(err)) != 0) {
        zinx__log(s, ZINX_LOG_ERROR, "invalid configuration: %s", err);
        return ZINX_ECONFIG;
    }
    if (apply_backend_override(s) != 0)
        return ZINX_ECONFIG;
    int rc = zinx__logger_open(&s->log, &s->cfg);
    if (rc != 0) {
        zinx__log(s, ZINX_LOG_ERROR, "cannot open log file %s/%s: %s",
                  s->cfg.log_dir, s->cfg.log_file, zinx_strerror(rc));
        return ZINX_ECONFIG;
    }
    return 0;
}

/* What frames the connections: PacketFormat's layout, or the codec set
   by FrameDecoder or zinx_server_set_codec() (its name). Set at start. */
static const char *framing(const zinx_server_t *s)
{
    return s->codec != NULL ? s->codec->name
                            : zinx_packet_format_name(s->cfg.packet_format);
}

/* How connections map to the workers, by WorkerMode's own names. */
static const char *worker_mode(const zinx_server_t *s)
{
    static const char *const names[] = {"Hash", "Bind", "DynamicBind"};
    uint32_t m = s->cfg.worker_mode;
    return m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

static void log_listening(zinx_server_t *s);

int zinx_server_start(zinx_server_t *s)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!is_new(s))
        return ZINX_ESTATE;
    int rc = check_config(s);
    if (rc == 0)
        rc = zinx__server_setup_codec(s);
    if (rc == 0)
        rc = route_heartbeats(s);
    /* Before any connection: their IDs carry the node's number. */
    if (rc == 0)
        rc = zinx__cluster_join(s);
    if (rc != 0)
        return rc;
    if (rc == 0)
        rc = zinx__transports_setup(s);
    if (rc == 0 && s->listening)
        rc = zinx__transports_listen(s);
    if (rc != 0) {
        zinx__cluster_leave(s);
        free_listeners(s);
        return rc;
    }
    rc = create_threads(s);
    if (rc != 0) {
        zinx__cluster_leave(s);
        destroy_threads(s, 0);
        free_loops(s); /* nothing ran: nobody can hold them */
        zinx__metrics_free(s);
        zinx__log(s, ZINX_LOG_ERROR, "cannot start: %s", zinx_strerror(rc));
        return rc;
    }
    atomic_store(&s->state, ZINX__SERVER_RUNNING);
    if (!s->listening) {
        ZINX__LOG(s, ZINX_LOG_INFO,
                  "client started (%u I/O threads on %s, %u "
                  "workers (%s), format %s)",
                  s->nloops, s->io_backend, s->nworkers, worker_mode(s),
                  framing(s));
        return 0;
    }
    log_listening(s);
    return 0;
}

/* "TCP", "WebSocket on /path", with " over TLS" and the PROXY protocol
   when they apply: what a listener's connections are. */
static void describe(const zinx_server_t *s, int which, char *out, size_t len)
{
    static const char *const proxy[] = {
        "", " behind PROXY v1", " behind PROXY v2", " behind PROXY v1/v2"};
    const zinx_config_t *cfg = &s->cfg;
    const char *tls = cfg->cert_file[0] != '\0' ? " over TLS" : "";
    const char *pp = cfg->proxy_protocol < 4 ? proxy[cfg->proxy_protocol] : "";
    static const char *const reuse[] = {"", ", ReusePort process",
                                        ", ReusePort loops"};
    const char *rp = cfg->reuse_port < 3 ? reuse[cfg->reuse_port] : "";
    if (which == ZINX__LISTEN_WS)
        snprintf(out, len, "WebSocket on %s%s%s%s", cfg->ws_path, tls, pp, rp);
    else
        snprintf(out, len, "TCP%s%s%s", tls, pp, rp);
}

static void log_listener(zinx_server_t *s, int which, int port)
{
    char what[ZINX_CONFIG_PATH_MAX + 64];
    describe(s, which, what, sizeof(what));
    if (port == 0) { /* a Unix socket */
        ZINX__LOG(s, ZINX_LOG_INFO,
                  "listening on %s (%s, %u I/O threads on %s, %u workers "
                  "(%s), format %s, MaxConn %d, MaxPacketSize %u)",
                  s->listen_host, what, s->nloops, s->io_backend, s->nworkers,
                  worker_mode(s), framing(s), s->cfg.max_conn,
                  s->cfg.max_packet_size);
        return;
    }
    /* The bound address, not Host: for a name or "" it says which
       address was taken. IPv6 in brackets keeps ADDR:PORT parsable. */
    const char *v6 = strchr(s->listen_host, ':') != NULL ? "[" : "";
    ZINX__LOG(s, ZINX_LOG_INFO,
              "listening on %s%s%s:%d (%s, Host \"%s\", %u I/O threads on "
              "%s, %u workers (%s), format %s, MaxConn %d, MaxPacketSize %u)",
              v6, s->listen_host, v6[0] != '\0' ? "]" : "", port, what,
              s->cfg.host, s->nloops, s->io_backend, s->nworkers,
              worker_mode(s), framing(s), s->cfg.max_conn,
              s->cfg.max_packet_size);
}

static void log_listening(zinx_server_t *s)
{
    if (s->listeners[ZINX__LISTEN_TCP] != NULL)
        log_listener(s, ZINX__LISTEN_TCP, atomic_load(&s->port));
    if (s->listeners[ZINX__LISTEN_WS] != NULL)
        log_listener(s, ZINX__LISTEN_WS, atomic_load(&s->ws_port));
    if (s->kcp != NULL)
        ZINX__LOG(s, ZINX_LOG_INFO,
                  "listening on %s:%d (KCP/UDP, Host \"%s\", %u I/O threads "
                  "on %s, %u workers (%s), format %s, MaxConn %d, "
                  "MaxPacketSize %u, nodelay %d interval %u resend %u nc %d "
                  "windows %u/%u, %s mode)",
                  s->listen_host, atomic_load(&s->kcp_port), s->cfg.host,
                  s->nloops, s->io_backend, s->nworkers, worker_mode(s),
                  framing(s), s->cfg.max_conn, s->cfg.max_packet_size,
                  s->cfg.kcp_nodelay, s->cfg.kcp_interval, s->cfg.kcp_resend,
                  s->cfg.kcp_nc, s->cfg.kcp_send_window, s->cfg.kcp_recv_window,
                  s->cfg.kcp_stream_mode ? "stream" : "message");
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
    zinx__transports_kcp_stop(s);
    for (int i = 0; i < ZINX__LISTENERS; i++)
        if (s->listeners[i] != NULL)
            zinx__listener_stop(s->listeners[i]);
}

/*
 * ReusePort: a connection accepted just before the listeners closed has
 * its request on the way or in the socket, unread; a graceful close now
 * would stop reading and answer it with an orderly end. The connections
 * are served on for a moment first, so the requests of a hand-over's last
 * accepted connections are answered; new connections already go to the
 * port's other listeners. Within the stop's deadline.
 */
static void handover_grace(zinx_server_t *s, uint64_t deadline)
{
    if (s->cfg.reuse_port == ZINX_REUSE_PORT_OFF)
        return;
    uint64_t now = zinx__now_ms();
    uint64_t until = now + HANDOVER_GRACE_MS;
    if (until > deadline)
        until = deadline;
    if (until <= now)
        return;
    uint64_t ms = until - now;
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    } /* EINTR: the rest */
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

void zinx__server_set_uring_test(zinx_server_t *s, uint32_t buffers,
                                 bool refuse)
{
    s->uring_buffers = buffers;
    s->uring_refuse = refuse;
}

void zinx__server_set_fault(zinx_server_t *s, zinx__fault_fn fn, void *udata)
{
    s->fault = fn;
    s->fault_udata = udata;
}

zinx__shard_t *zinx__server_pick_shard(zinx_server_t *s)
{
    uint32_t i = atomic_fetch_add(&s->next_loop, 1);
    return s->shards[i % s->nloops];
}

int zinx__server_add_dialer(zinx_server_t *s, zinx_dialer_t *d)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (atomic_load(&s->state) != ZINX__SERVER_RUNNING) {
        rc = ZINX_ESTATE;
    } else if (ZINX__ARRAY_RESERVE(s->dialers, s->dialers_cap,
                                   s->ndialers + 1) != 0) {
        rc = ZINX_ENOMEM;
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
            ZINX__ARRAY_REMOVE_SWAP(s->dialers, s->ndialers, i);
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

void zinx__server_shutdown(zinx_server_t *s)
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
    /* First: the cluster thread delivers into connections and runs
       hooks; it ends before any of what it uses does. */
    zinx__cluster_leave(s);
    close_listener(s);
    handover_grace(s, deadline);
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
        zinx__server_shutdown(s);
    } else {
        free_listeners(s);
    }
    zinx__cluster_free(s);
    free_loops(s);
    zinx__metrics_free(s);
    free(s->mtrack);
    zinx__transports_free(s);
    free(s->tls_alpn);
    zinx__ws_pages_free(s->ws_pages);
    zinx__router_table_free(&s->routes);
    zinx__chain_free(&s->fallback);
    zinx__mw_free(&s->use);
    zinx__groups_free(s->groups);
    free(s->icpt);
    zinx__connmgr_free(s->mgr);
    zinx__logger_close(&s->log);
    close(s->stop_efd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
