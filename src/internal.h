/*
 * Declarations of the server layer, shared by src/server/ and
 * src/client/ (and, for the server's fields, by src/conn/). Never
 * installed.
 *
 * Rooms, each depending only on the ones before it:
 *   base/    buffers, the timer heap, threads, the clock, the logger
 *   event/   the reactor: I/O handles, closures, timers; its backends
 *   codec/   frame layouts (tlv, ltv_le) behind one interface
 *   stream/  byte transports (TCP and Unix sockets) behind one interface
 *   kcp/     KCP: the ARQ, UDP endpoints and the stream over a session
 *   work/    the worker pool: jobs, lanes, reservations
 *   conn/    connections and the shard (the connections of one loop)
 *   server/  the server, listener, connection manager, router, config,
 *            public timers
 *   client/  dialers and the blocking client
 *   metrics/ the counters of metrics, their rows, the text format and
 *            the HTTP listener that serves them
 */
#ifndef ZINX_INTERNAL_H
#define ZINX_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base.h"
#include "base/log.h"
#include "codec/codec.h"
#include "conn/conn.h"
#include "event/event.h"
#include "work/pool.h"
#include "work/worker.h"
#include "zinx.h"

/* ---- fault injection (tests only) -------------------------------------- */

/* Where the library allocates on a path a peer can drive. */
typedef enum zinx__alloc_site {
    ZINX__ALLOC_TASK, /* a batch of frames for a worker */
    ZINX__ALLOC_CONN  /* a new connection */
} zinx__alloc_site_t;

/* Returns true to make the allocation at `site` fail. Tests install one
   with zinx__server_set_fault(); a server without one never fails
   artificially. Called on I/O threads. */
typedef bool (*zinx__fault_fn)(zinx__alloc_site_t site, void *udata);

/* ---- router.c --------------------------------------------------------- */

/* A resolved chain: the handlers a message runs, middleware included,
   in order. Built once at registration; read-only once started. */
typedef struct zinx__chain {
    zinx_handler_t *v; /* owned; n >= 1 once resolved */
    uint32_t n;
} zinx__chain_t;

typedef struct zinx__route {
    uint32_t id;
    bool used;
    zinx__chain_t chain;
} zinx__route_t;

/* Open-addressing table; written before start, read-only afterwards. */
typedef struct zinx__router_table {
    zinx__route_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} zinx__router_table_t;

/* Adds id's route and takes *chain (left empty on success; the caller
   still owns it on failure). Returns 0, ZINX_EEXIST or ZINX_ENOMEM. */
int zinx__router_table_add(zinx__router_table_t *t, uint32_t id,
                           zinx__chain_t *chain);
const zinx__route_t *zinx__router_table_find(const zinx__router_table_t *t,
                                             uint32_t id);
void zinx__router_table_free(zinx__router_table_t *t);
/* A handler that takes a message and does nothing: heartbeats from peers
   are signs of life, not unknown messages. */
void zinx__ignore_message(zinx_request_t *req, void *udata);

/* next once aborted: past every chain (n <= ZINX_CHAIN_MAX), so every
   running loop stops, and distinct from "all ran" for is_aborted. */
#define ZINX__REQ_ABORTED UINT32_MAX

struct zinx_request {
    zinx_conn_t *conn;
    zinx_msg_t msg;
    const zinx_handler_t *chain;
    uint32_t n;    /* handlers in chain, at least 1 */
    uint32_t next; /* the first handler not yet started */
};

/* Runs the interceptors (if any), then the route of msg (or the
   fallback) for conn, measured when metrics are on. Thread: conn's. */
void zinx__route_message(zinx_server_t *server, zinx_conn_t *conn,
                         const zinx_msg_t *msg);
/* The same, never measured (metrics' own wrapper calls it). */
void zinx__route_unmetered(zinx_server_t *server, zinx_conn_t *conn,
                           const zinx_msg_t *msg);
/* *m as user code sees it (requests, interceptor chains): data is never
   NULL, even for an empty payload. Thread: any. */
zinx_msg_t zinx__msg_view(const zinx_msg_t *m);

/* Runs the route of msg (or the fallback) for conn, no interceptors.
   Thread: conn's. */
void zinx__route_direct(zinx_server_t *server, zinx_conn_t *conn,
                        const zinx_msg_t *msg);

/* ---- slices.c --------------------------------------------------------- */

/* A list of middleware being collected (global or a group's). */
typedef struct zinx__mw {
    zinx_handler_t *v;
    size_t n, cap;
} zinx__mw_t;

/* Checks handlers[0..n) (ZINX_EINVAL for NULL fns) and appends copies
   to mw. Returns 0, ZINX_EINVAL or ZINX_ENOMEM (mw unchanged). */
int zinx__mw_append(zinx__mw_t *mw, const zinx_handler_t *handlers, size_t n);
void zinx__mw_free(zinx__mw_t *mw);

/* Builds into *out the chain global + group (may be NULL) + handlers;
   an empty one becomes zinx__ignore_message, so that a chain always has
   a first handler to call. Returns 0, ZINX_EINVAL (a NULL fn, more than
   ZINX_CHAIN_MAX) or ZINX_ENOMEM. */
int zinx__chain_resolve(zinx__chain_t *out, const zinx__mw_t *global,
                        const zinx__mw_t *group, const zinx_handler_t *handlers,
                        size_t n);
/* The handlers[] of a classic router: its non-NULL steps (0..3). */
size_t zinx__router_steps(const zinx_router_t *r, zinx_handler_t steps[3]);
void zinx__chain_free(zinx__chain_t *c);
/* Frees the groups a server made. */
void zinx__groups_free(zinx_group_t *groups);

/* ---- intercept.c ------------------------------------------------------ */

typedef struct zinx__interceptor {
    zinx_interceptor_fn fn;
    void *udata;
} zinx__interceptor_t;

/* Runs the interceptors from the first, then routing. Thread: conn's. */
void zinx__intercept(zinx_server_t *server, zinx_conn_t *conn,
                     const zinx_msg_t *msg);

/* ---- dialer.c --------------------------------------------------------- */

zinx_dialer_t *zinx__dialer_ref(zinx_dialer_t *d);
void zinx__dialer_unref(zinx_dialer_t *d);
/* Any thread: the dialer's connection ran OnConnStop. */
void zinx__dialer_conn_ended(zinx_dialer_t *d);
/* Loop thread: the dialer's connection finished its handshakes and
   opened; it counts as connected from now on. */
void zinx__dialer_conn_opened(zinx_dialer_t *d, zinx_conn_t *c);
/* Any thread: the endpoint is stopping; no more attempts. */
void zinx__dialer_shutdown(zinx_dialer_t *d);

/* ---- connmgr.c -------------------------------------------------------- */

zinx_connmgr_t *zinx__connmgr_new(void);
void zinx__connmgr_free(zinx_connmgr_t *mgr);
/* Takes a reference. Returns 0, ZINX_EEXIST or ZINX_ENOMEM. */
int zinx__connmgr_add(zinx_connmgr_t *mgr, zinx_conn_t *conn);
/* Drops the table's reference. Returns 0 or ZINX_ENOENT. */
int zinx__connmgr_remove(zinx_connmgr_t *mgr, uint64_t id);
/* Blocks until the table is empty or deadline_ms (CLOCK_MONOTONIC) passes;
   deadline 0 waits forever. Returns true when empty. */
bool zinx__connmgr_wait_empty(zinx_connmgr_t *mgr, uint64_t deadline_ms);

/* ---- server.c --------------------------------------------------------- */

#include "metrics/metrics.h"
#include "server/stats.h"
#include "server/transports.h"

struct zinx_server {
    zinx_config_t cfg;
    zinx__logger_t log;
    zinx__router_table_t routes;
    zinx__chain_t fallback;
    bool has_fallback;
    zinx__mw_t use;            /* global middleware (Use) */
    zinx_group_t *groups;      /* owned, a list */
    zinx__interceptor_t *icpt; /* in registration order */
    size_t nicpt, icpt_cap;
    zinx_conn_hook_fn on_start, on_stop;
    zinx_heartbeat_msg_fn hb_make;
    zinx_heartbeat_dead_fn hb_dead;
    void *hb_udata;
    void *on_start_udata, *on_stop_udata;
    /* WebSocket upgrades' check (zinx_server_set_ws_check), or NULL. */
    zinx_ws_check_fn ws_check;
    void *ws_check_udata;
    /* Static pages on the WebSocket port (zinx_server_add_http_page). */
    struct zinx__ws_page *ws_pages;
    zinx_connmgr_t *mgr;
    zinx__stats_t stats;
    /* Non-NULL with MetricsAddr set, from before the threads start: the
       hot paths' one test (metrics/metrics.h). */
    zinx__metrics_t *metrics;
    /* Set at start: interceptors or metrics, so that routing a message
       tests one flag for both (router.c). */
    bool route_extra;
    uint32_t *mtrack; /* zinx_server_metrics_track_id()'s IDs */
    size_t nmtrack, mtrack_cap;

    zinx__loop_t **loops;
    zinx__shard_t **shards; /* one per loop: its connections */
    uint32_t nloops;
    zinx__pool_t *pool;
    uint32_t nworkers; /* WorkerPoolSize, once started */

    bool listening; /* false for zinx_client_new() endpoints */
    /* TCPPort's and WsPort's, as Mode says (NULL: not listening). */
    struct zinx__listener *listeners[ZINX__LISTENERS];
    zinx__transports_t tr; /* the layers they stack (transports.c) */
    uint8_t *tls_alpn;     /* zinx_server_set_tls_alpn's, wire form */
    size_t tls_alpn_len;
    atomic_int ws_port; /* WsPort as bound; 0 until then */
    /* Mode "kcp": one UDP endpoint per loop (NULL otherwise). */
    struct zinx__kcp_endpoint **kcp;
    atomic_int kcp_port; /* KcpPort as bound; 0 until then */
    /* Sessions the KCP endpoints admitted and still hold: the loops admit
       side by side, so MaxConn is kept by reserving here first. */
    atomic_int kcp_sessions;
    /* Numeric address bound (or "unix:PATH"), "" until then; written once
       before start returns. */
    char listen_host[ZINX_CONFIG_HOST_MAX];
    atomic_int port; /* read by any thread while serve() starts */
    atomic_uint_least32_t next_loop; /* dialers are spread round-robin */
    zinx_dialer_t **dialers;         /* live dialers, guarded by lock */
    size_t ndialers, dialers_cap;
    atomic_uint_least64_t next_id;
    atomic_int state;     /* zinx__server_state */
    int stop_efd;         /* eventfd: stop requested */
    pthread_mutex_t lock; /* guards the lifecycle below */
    pthread_cond_t cond;
    struct zinx_timer *timers; /* live public timers, guarded by lock */
    zinx__fault_fn fault;      /* tests only; NULL in production */
    void *fault_udata;
    uint32_t uring_buffers; /* tests only: receive buffers per loop */
    bool uring_refuse;      /* tests only: act as if io_uring failed */
    const char *io_backend; /* the loops' backend, once started */
    /* Codecs (server_codec.c). */
    bool has_codec;             /* zinx_server_set_codec() gave one */
    zinx_codec_t user_codec;    /* ... this one */
    zinx_length_field_t lf;     /* FrameDecoder "length_field": the keys */
    zinx__codec_t general;      /* the general codec, when one is used */
    const zinx__codec_t *codec; /* every connection's, set at start */
    /* The cluster (src/cluster/): made by a set-up call or at start;
       clustered and id_base are set once at start, before any thread
       that reads them runs. */
    struct zinx__cluster *cluster;
    bool clustered;   /* joined a cluster at start */
    uint64_t id_base; /* node << ZINX_CLUSTER_NODE_SHIFT, or 0 */
};

/* ---- cluster (src/cluster/) ------------------------------------------- */

/* At start, before the loops: joins ClusterName's cluster (0 without
   one). Returns 0, ZINX_EEXIST (our number is held), ZINX_ENOTSUP (no
   libnats), ZINX_ECLOSED (no NATS), logged. Thread: the starting one. */
int zinx__cluster_join(zinx_server_t *server);
/* At stop, before the loops and pool go: goodbye, unsubscribe, drain,
   and the cluster thread ends. Idempotent. Thread: the stopping one. */
void zinx__cluster_leave(zinx_server_t *server);
void zinx__cluster_free(zinx_server_t *server);
bool zinx__cluster_is_own_thread(const zinx_server_t *server);
/* A connection of ours started or stopped (OnConnStart/OnConnStop's
   moments). Thread: the connection's loop or worker. */
void zinx__cluster_conn_event(zinx_server_t *server, uint64_t id, int up);
/* zinx_server_notify/broadcast with a cluster, after their argument
   checks. Thread: any. */
int zinx__cluster_notify(zinx_server_t *server, const uint64_t *ids, size_t n,
                         uint32_t msg_id, const void *data, uint32_t len);
int zinx__cluster_broadcast(zinx_server_t *server, uint32_t msg_id,
                            const void *data, uint32_t len);
/* notify.c: to this node's connections only. Thread: any. */
int zinx__server_notify_local(zinx_server_t *server, const uint64_t *ids,
                              size_t n, uint32_t msg_id, const void *data,
                              uint32_t len);
int zinx__server_broadcast_local(zinx_server_t *server, uint32_t msg_id,
                                 const void *data, uint32_t len);

enum zinx__server_state {
    ZINX__SERVER_NEW,
    ZINX__SERVER_RUNNING,
    ZINX__SERVER_STOPPING,
    ZINX__SERVER_STOPPED
};

bool zinx__server_is_framework_thread(const zinx_server_t *server);
/* Runs the graceful stop once; concurrent callers wait for it. */
void zinx__server_shutdown(zinx_server_t *server);
static inline bool zinx__server_is_new(const zinx_server_t *server)
{
    return atomic_load(&server->state) == ZINX__SERVER_NEW;
}
/* Picks the shard for a new outgoing connection (round-robin). */
zinx__shard_t *zinx__server_pick_shard(zinx_server_t *server);
/* Registers/unregisters a live dialer for shutdown. */
int zinx__server_add_dialer(zinx_server_t *server, zinx_dialer_t *d);
void zinx__server_remove_dialer(zinx_server_t *server, zinx_dialer_t *d);
/* Makes and lists a connection for the established socket fd (taken),
   owned by shard (NULL: by connection ID). The result's reference becomes
   the shard's at adoption. NULL (fd closed) with *err ZINX_ENOMEM, or
   ZINX_EBUSY when WorkerMode Bind finds no free worker (DynamicBind:
   none may be made), ZINX_ESTATE when stopping, or the error of starting
   a worker thread. Thread: any. */
zinx_conn_t *zinx__server_open_conn(zinx_server_t *server, zinx__shard_t *shard,
                                    int fd,
                                    const struct zinx__stack_spec *stack,
                                    int *err);
struct zinx__kcp_session;
/* As zinx__server_open_conn, over a KCP session (taken: discarded on
   failure too), on the loop thread of shard. */
zinx_conn_t *zinx__server_open_kcp_conn(zinx_server_t *server,
                                        zinx__shard_t *shard,
                                        struct zinx__kcp_session *sess,
                                        int *err);
/* Loop `here`: an accepted socket becomes a connection of `shard` (NULL:
   the shard its ID picks), adopted now when that shard is here, else
   posted to its own loop. Returns 0 or the error of
   zinx__server_open_conn() (fd closed). */
int zinx__server_accept_conn(zinx_server_t *server, zinx__loop_t *here,
                             zinx__shard_t *shard, int fd,
                             const struct zinx__stack_spec *stack);

/* Before start: picks the codec of every connection (zinx_server_set_codec,
   else FrameDecoder and PacketFormat). Returns 0 or ZINX_ECONFIG. */
int zinx__server_setup_codec(zinx_server_t *server);

/* Stopping thread, after the loops are joined: timers still armed let
   go of their loop's reference (timer.c). */
void zinx__timers_release(zinx_server_t *server);

/* Tests only: install (or remove, with NULL) an allocation fault hook.
   Call before zinx_server_start(). */
/* Tests only, before start: io_uring loops get `buffers` receive buffers
   each (0: the default); with `refuse`, opening io_uring fails as a
   kernel without it would (EPERM), to exercise the fall-back. */
void zinx__server_set_uring_test(zinx_server_t *server, uint32_t buffers,
                                 bool refuse);
void zinx__server_set_fault(zinx_server_t *server, zinx__fault_fn fn,
                            void *udata);
/* True when the fault hook wants the allocation at site to fail. */
static inline bool zinx__fault(const zinx_server_t *server,
                               zinx__alloc_site_t site)
{
    return server->fault != NULL && server->fault(site, server->fault_udata);
}

#endif /* ZINX_INTERNAL_H */
