/*
 * Declarations shared by the library's translation units. Never installed.
 *
 * Module map (one concern per file):
 *   buf.c      growable byte buffers
 *   log.c      the per-server logger
 *   router.c   the message-ID routing table and request dispatch
 *   worker.c   the worker pool (bounded FIFO queues, back-pressure)
 *   loop.c     the epoll event loops (I/O threads) and their inboxes
 *   conn.c     connections: read, decode, write, close, properties
 *   connmgr.c  the connection manager (ID table)
 *   server.c   listener, accept, lifecycle
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

#include "zinx.h"

#define ZINX__UNUSED(x) ((void)(x))

/* Records below the configured level cost one comparison, no formatting. */
#define ZINX__LOG(server, level, ...)                  \
    do {                                               \
        if ((level) >= zinx__log_level_of(server))     \
            zinx__log((server), (level), __VA_ARGS__); \
    } while (0)

/* ---- buf.c ------------------------------------------------------------ */

/* Bytes data[off..len) are live; data[0..off) were consumed already. */
typedef struct zinx__buf {
    uint8_t *data;
    size_t off;
    size_t len;
    size_t cap;
} zinx__buf_t;

/* Makes room for `more` bytes after len. Returns 0 or ZINX_ENOMEM. */
int zinx__buf_reserve(zinx__buf_t *b, size_t more);
int zinx__buf_append(zinx__buf_t *b, const void *data, size_t n);
/* Appends one encoded frame. Returns 0 or ZINX_ENOMEM. */
int zinx__buf_append_frame(zinx__buf_t *b, zinx_packet_format_t format,
                           uint32_t id, const void *data, uint32_t len);
static inline size_t zinx__buf_size(const zinx__buf_t *b)
{
    return b->len - b->off;
}
/* NULL for a buffer that holds no allocation (NULL + 0 is undefined). */
static inline const uint8_t *zinx__buf_head(const zinx__buf_t *b)
{
    return b->data != NULL ? b->data + b->off : NULL;
}
void zinx__buf_consume(zinx__buf_t *b, size_t n);
void zinx__buf_free(zinx__buf_t *b);
/* Moves src's bytes to the end of dst, leaving src empty (exchanging the
   allocations when dst is empty). */
int zinx__buf_move(zinx__buf_t *dst, zinx__buf_t *src);

/* Loops register connections and dialers in epoll; both start with this
   header so an event can be routed by kind. */
typedef enum zinx__poll_kind {
    ZINX__POLL_CONN = 1,
    ZINX__POLL_DIALER = 2
} zinx__poll_kind_t;

typedef struct zinx__pollable {
    zinx__poll_kind_t kind;
} zinx__pollable_t;

/* ---- timer.c ---------------------------------------------------------- */

typedef struct zinx__timer zinx__timer_t;
typedef void (*zinx__timer_fn)(zinx__timer_t *timer, void *arg);

/* Embedded in its owner; armed and fired on one loop thread only. */
struct zinx__timer {
    uint64_t deadline_ms; /* CLOCK_MONOTONIC */
    size_t heap_index;    /* SIZE_MAX while not armed */
    zinx__timer_fn fn;
    void *arg;
};

typedef struct zinx__timer_heap {
    zinx__timer_t **items;
    size_t count, cap;
} zinx__timer_heap_t;

void zinx__timer_init(zinx__timer_t *t, zinx__timer_fn fn, void *arg);
bool zinx__timer_armed(const zinx__timer_t *t);
/* Arms or moves t. Returns 0 or ZINX_ENOMEM. */
int zinx__timer_heap_arm(zinx__timer_heap_t *h, zinx__timer_t *t,
                         uint64_t deadline_ms);
void zinx__timer_heap_cancel(zinx__timer_heap_t *h, zinx__timer_t *t);
/* Fires every due timer; returns ms until the next one, or -1 if none. */
int zinx__timer_heap_run(zinx__timer_heap_t *h, uint64_t now_ms);
void zinx__timer_heap_free(zinx__timer_heap_t *h);

/* ---- log.c ------------------------------------------------------------ */

typedef struct zinx__logger {
    zinx_log_fn sink; /* NULL: write to fd */
    void *udata;
    int fd; /* stderr or the opened LogFile */
    bool owns_fd;
    zinx_log_level_t min_level;
    char name[ZINX_CONFIG_NAME_MAX];
} zinx__logger_t;

void zinx__logger_init(zinx__logger_t *lg);
/* Opens LogDir/LogFile when set. Returns 0 or a negated errno. */
int zinx__logger_open(zinx__logger_t *lg, const zinx_config_t *cfg);
void zinx__logger_close(zinx__logger_t *lg);
void zinx__logger_vlog(zinx__logger_t *lg, zinx_log_level_t level,
                       const char *fmt, va_list ap);
zinx_log_level_t zinx__log_level_of(const zinx_server_t *server);
void zinx__log(zinx_server_t *server, zinx_log_level_t level, const char *fmt,
               ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- router.c --------------------------------------------------------- */

typedef struct zinx__route {
    uint32_t id;
    bool used;
    zinx_router_t router;
} zinx__route_t;

/* Open-addressing table; written before start, read-only afterwards. */
typedef struct zinx__router_table {
    zinx__route_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} zinx__router_table_t;

int zinx__router_table_add(zinx__router_table_t *t, uint32_t id,
                           const zinx_router_t *r);
const zinx_router_t *zinx__router_table_find(const zinx__router_table_t *t,
                                             uint32_t id);
void zinx__router_table_free(zinx__router_table_t *t);

struct zinx_request {
    zinx_conn_t *conn;
    zinx_msg_t msg;
    bool aborted;
};

/* Runs the router of msg (or the fallback) for conn. Thread: conn's. */
void zinx__route_message(zinx_server_t *server, zinx_conn_t *conn,
                         const zinx_msg_t *msg);

/* ---- worker.c --------------------------------------------------------- */

typedef enum zinx__task_kind {
    ZINX__TASK_START, /* run OnConnStart */
    ZINX__TASK_MSGS,  /* route a batch of frames */
    ZINX__TASK_STOP   /* run OnConnStop and retire the connection */
} zinx__task_kind_t;

/* One queued unit of work; MSGS tasks carry raw frames after the struct. */
typedef struct zinx__loop zinx__loop_t;

typedef struct zinx__task {
    struct zinx__task *next;
    zinx__loop_t *origin; /* the loop that allocated it, and frees it */
    zinx__task_kind_t kind;
    zinx_conn_t *conn; /* holds a reference */
    uint32_t count;    /* frames in data */
    size_t size;       /* bytes in data */
    uint8_t data[];
} zinx__task_t;

typedef struct zinx__worker zinx__worker_t;

zinx__worker_t *zinx__worker_new(zinx_server_t *server, uint32_t id,
                                 uint32_t capacity);
int zinx__worker_start(zinx__worker_t *w);
/* Lets the worker finish its queue, then joins it. */
void zinx__worker_stop(zinx__worker_t *w);
void zinx__worker_free(zinx__worker_t *w);
bool zinx__worker_is_self(const zinx__worker_t *w);

/*
 * Reserves room for up to `want` messages; returns how many were granted.
 * When fewer than want, conn is remembered and poked once room frees up.
 */
uint32_t zinx__worker_reserve(zinx__worker_t *w, zinx_conn_t *conn,
                              uint32_t want);
/* Returns a reservation that will not be used. */
void zinx__worker_unreserve(zinx__worker_t *w, uint32_t count);
/* Queues a task (MSGS tasks must have been reserved). Never blocks long. */
void zinx__worker_push(zinx__worker_t *w, zinx__task_t *task);
/* Queues a chain of tasks (linked through next) with one lock and one
   wake-up. */
void zinx__worker_push_list(zinx__worker_t *w, zinx__task_t *head,
                            zinx__task_t *tail);
/* Loop thread: a task for conn, allocated by (and later freed on) loop. */
zinx__task_t *zinx__task_new(zinx__loop_t *loop, zinx__task_kind_t kind,
                             zinx_conn_t *conn, size_t size);

/* ---- loop.c ----------------------------------------------------------- */

typedef enum zinx__loop_op {
    ZINX__OP_ADOPT,       /* start serving a freshly accepted connection */
    ZINX__OP_ATTEND,      /* re-examine a connection (send, close, resume) */
    ZINX__OP_STOP_LISTEN, /* close the listening socket */
    ZINX__OP_DIAL,        /* start (or retry) a dialer's connection */
    ZINX__OP_DIAL_LOST,   /* a dialer's connection ended */
    ZINX__OP_DIAL_CLOSE,  /* stop a dialer for good */
    ZINX__OP_QUIT         /* leave the loop */
} zinx__loop_op_t;

zinx__loop_t *zinx__loop_new(zinx_server_t *server, uint32_t index);
int zinx__loop_start(zinx__loop_t *loop);
void zinx__loop_join(zinx__loop_t *loop);
void zinx__loop_free(zinx__loop_t *loop);
bool zinx__loop_is_self(const zinx__loop_t *loop);
/* Queues op for the loop thread; takes over one reference on conn. */
int zinx__loop_post(zinx__loop_t *loop, zinx__loop_op_t op, zinx_conn_t *conn);
/* The same for dialer operations; takes over one dialer reference. */
int zinx__loop_post_dialer(zinx__loop_t *loop, zinx__loop_op_t op,
                           zinx_dialer_t *dialer);
/* Loop 0 thread: stop watching the listener for ms, then resume. */
void zinx__loop_pause_listener(zinx__loop_t *loop, uint32_t ms);
/* Registers the listening socket with this loop (before start). */
int zinx__loop_set_listener(zinx__loop_t *loop, int fd);
/* Asks the loop to look at conn at its next safe point (loop thread). */
void zinx__loop_schedule(zinx__loop_t *loop, zinx_conn_t *conn);
/* epoll interest changes for conn's socket. */
int zinx__loop_watch(zinx__loop_t *loop, int fd, void *ptr, uint32_t events,
                     bool add);
void zinx__loop_unwatch(zinx__loop_t *loop, int fd);
/* The loop's shared read buffer. */
uint8_t *zinx__loop_rbuf(zinx__loop_t *loop, size_t *cap);
/* Hands the loop's reference to conn for release after this iteration. */
void zinx__loop_bury(zinx__loop_t *loop, zinx_conn_t *conn);
/* Loop thread: arm/cancel a timer of this loop. */
int zinx__loop_timer_arm(zinx__loop_t *loop, zinx__timer_t *t,
                         uint64_t deadline_ms);
void zinx__loop_timer_cancel(zinx__loop_t *loop, zinx__timer_t *t);
/* Loop thread: queue task for worker w at the end of this iteration, in
   order with the loop's other tasks for w (one lock, one wake-up per
   worker per iteration instead of one per connection). */
void zinx__loop_push_task(zinx__loop_t *loop, zinx__worker_t *w,
                          zinx__task_t *task);
/* Any thread: hand a finished task back to the loop that allocated it, to
   be freed there: memory freed on the thread that allocated it keeps
   glibc's per-thread caches and arenas from drifting (seen as slow RSS
   growth in the soak test). Lock-free; the loop frees them each
   iteration. */
void zinx__loop_recycle(zinx__loop_t *loop, zinx__task_t *task);
/* Loop thread: conn holds buffers; free them once it has been idle. */
void zinx__loop_retain(zinx__loop_t *loop, zinx_conn_t *conn);
/* Keeps a half-closed socket until the peer's EOF or the linger time. */
void zinx__loop_linger(zinx__loop_t *loop, zinx_conn_t *conn);

/* ---- conn.c ----------------------------------------------------------- */

zinx_conn_t *zinx__conn_new(zinx_server_t *server, int fd, uint64_t id,
                            zinx__loop_t *loop, zinx__worker_t *worker,
                            uint32_t worker_id);
/* Loop thread: register with epoll and start (hook or START task). */
void zinx__conn_adopt(zinx_conn_t *conn);
/* Loop thread: socket events. */
void zinx__conn_on_events(zinx_conn_t *conn, uint32_t events);
/* Loop thread: re-examine pending output, close requests, pauses. */
void zinx__conn_attend(zinx_conn_t *conn);
/* Loop thread: lingering socket's deadline passed or loop is quitting. */
void zinx__conn_close_fd(zinx_conn_t *conn);
/* Any thread: make the owning loop attend conn soon (coalesced). */
void zinx__conn_poke(zinx_conn_t *conn);
/* Worker/loop: after a MSGS batch of `count` frames was handled. */
void zinx__conn_batch_done(zinx_conn_t *conn, uint32_t count);
/* Worker/loop: run hooks. */
void zinx__conn_run_start(zinx_conn_t *conn);
void zinx__conn_run_stop(zinx_conn_t *conn);
int zinx__conn_fd(const zinx_conn_t *conn);
/* Loop thread: frees conn's buffers if it has been idle since idle_since
   (monotonic ms). Returns true while it still holds buffers in use. */
bool zinx__conn_trim(zinx_conn_t *conn, uint64_t idle_since);
/* Handler thread: count an unrouted frame against MaxUnknownMsgs. */
void zinx__conn_note_unrouted(zinx_conn_t *conn);
/* The dialer that made conn (a reference is taken), told when it ends. */
void zinx__conn_set_dialer(zinx_conn_t *conn, zinx_dialer_t *dialer);
bool zinx__conn_in_attention(zinx_conn_t *conn, bool set);
zinx_conn_t **zinx__conn_attn_next(zinx_conn_t *conn);

/* ---- dialer.c --------------------------------------------------------- */

zinx_dialer_t *zinx__dialer_ref(zinx_dialer_t *d);
void zinx__dialer_unref(zinx_dialer_t *d);
/* Loop thread: run a posted dialer operation. */
void zinx__dialer_run_op(zinx_dialer_t *d, zinx__loop_op_t op);
/* Loop thread: the connecting socket is ready or failed. */
void zinx__dialer_on_events(zinx_dialer_t *d, uint32_t events);
/* Any thread: the dialer's connection ran OnConnStop. */
void zinx__dialer_conn_ended(zinx_dialer_t *d);
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

typedef struct zinx__stats {
    atomic_uint_least64_t accepted, rejected_max_conn, accept_errors, closed,
        msgs_in, msgs_out, unrouted, oversize, timeouts, dead_peers,
        slow_readers, unknown_closed;
} zinx__stats_t;

struct zinx_server {
    zinx_config_t cfg;
    zinx__logger_t log;
    zinx__router_table_t routes;
    zinx_router_t fallback;
    bool has_fallback;
    zinx_conn_hook_fn on_start, on_stop;
    zinx_heartbeat_msg_fn hb_make;
    zinx_heartbeat_dead_fn hb_dead;
    void *hb_udata;
    void *on_start_udata, *on_stop_udata;
    zinx_connmgr_t *mgr;
    zinx__stats_t stats;

    zinx__loop_t **loops;
    uint32_t nloops;
    zinx__worker_t **workers;
    uint32_t nworkers;

    bool listening; /* false for zinx_client_new() endpoints */
    int listen_fd;
    /* Numeric address bound, "" until then; written once before start
       returns. 46 is INET6_ADDRSTRLEN, spelled out to keep <netinet/in.h>
       out of this header. */
    char listen_host[46];
    atomic_int port; /* read by any thread while serve() starts */
    atomic_uint_least32_t next_loop; /* dialers are spread round-robin */
    zinx_dialer_t **dialers;         /* live dialers, guarded by lock */
    size_t ndialers, dialers_cap;
    atomic_uint_least64_t next_id;
    atomic_int state;     /* zinx__server_state */
    int stop_efd;         /* eventfd: stop requested */
    pthread_mutex_t lock; /* guards the lifecycle below */
    pthread_cond_t cond;
    bool listener_closed;
};

enum zinx__server_state {
    ZINX__SERVER_NEW,
    ZINX__SERVER_RUNNING,
    ZINX__SERVER_STOPPING,
    ZINX__SERVER_STOPPED
};

/* Loop 0 thread: accept everything pending on the listener. */
void zinx__server_on_accept(zinx_server_t *server, zinx__loop_t *loop);
/* Loop 0 thread: the listener was closed. */
void zinx__server_listener_closed(zinx_server_t *server);
bool zinx__server_is_framework_thread(const zinx_server_t *server);
/* Picks the loop for a new outgoing connection. */
zinx__loop_t *zinx__server_pick_loop(zinx_server_t *server);
/* Registers/unregisters a live dialer for shutdown. */
int zinx__server_add_dialer(zinx_server_t *server, zinx_dialer_t *d);
void zinx__server_remove_dialer(zinx_server_t *server, zinx_dialer_t *d);
/* Creates, lists and adopts a connection for an established socket. */
zinx_conn_t *zinx__server_open_conn(zinx_server_t *server, zinx__loop_t *here,
                                    zinx__loop_t *owner, int fd);

uint64_t zinx__now_ms(void);

/* ---- thread.c --------------------------------------------------------- */

/* Starts fn(arg) on a new thread with every signal blocked and the given
   name; *self is set by the new thread before this returns. Returns 0 or
   a negated errno. */
int zinx__thread_spawn(pthread_t *self, void *(*fn)(void *), void *arg,
                       const char *name);
/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
void zinx__cond_init_monotonic(pthread_cond_t *cond);
/* The absolute timespec for pthread_cond_timedwait on such a variable. */
struct timespec zinx__deadline_ts(uint64_t deadline_ms);

#endif /* ZINX_INTERNAL_H */
