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
   header so an event can be routed by kind. The same header links the
   object into its loop's stack of posted objects (see zinx__loop_post),
   so telling a loop about an object never allocates. */
typedef enum zinx__poll_kind {
    ZINX__POLL_CONN = 1,
    ZINX__POLL_DIALER = 2
} zinx__poll_kind_t;

typedef struct zinx__pollable {
    zinx__poll_kind_t kind;
    struct zinx__pollable *posted_next; /* while on a loop's posted stack */
} zinx__pollable_t;

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
/* Grows the heap to hold count timers, so that arming up to that many
   never fails. Returns 0 or ZINX_ENOMEM. */
int zinx__timer_heap_reserve(zinx__timer_heap_t *h, size_t count);
/* Fires every due timer; returns ms until the next one, or -1 if none. */
int zinx__timer_heap_run(zinx__timer_heap_t *h, uint64_t now_ms);
void zinx__timer_heap_free(zinx__timer_heap_t *h);

/* ---- log.c ------------------------------------------------------------ */

/*
 * Kinds of records that can repeat without bound (one per connection
 * closed, per failed allocation, ...). Each kind is rate-limited on its
 * own by ZINX__LOG_LIMITED(), so a storm of one kind cannot hide another.
 */
typedef enum zinx__log_kind {
    ZINX__LOGK_OOM,          /* out of memory */
    ZINX__LOGK_SLOW_READER,  /* closed for not reading its output */
    ZINX__LOGK_OVERSIZE,     /* closed for a frame over MaxPacketSize */
    ZINX__LOGK_TIMEOUT,      /* closed by the frame or idle timeout */
    ZINX__LOGK_DEAD_PEER,    /* closed by the heartbeat */
    ZINX__LOGK_UNKNOWN_MSGS, /* closed for too many unrouted frames */
    ZINX__LOGK_REFUSED,      /* a new connection refused at accept */
    ZINX__LOGK_COUNT
} zinx__log_kind_t;

/* At most one record of a kind per this many milliseconds. */
#define ZINX__LOG_LIMIT_MS 1000u

/* Rate-limit state of one kind; lock-free, shared by every thread. */
typedef struct zinx__log_limit {
    atomic_uint_least64_t last_ms;    /* monotonic; 0: never emitted */
    atomic_uint_least64_t suppressed; /* records dropped since then */
    atomic_int level;                 /* level of the last dropped one */
} zinx__log_limit_t;

typedef struct zinx__logger {
    zinx_log_fn sink; /* NULL: write to fd */
    void *udata;
    zinx_log_level_t min_level; /* set before start, then read-only */
    char name[ZINX_CONFIG_NAME_MAX];
    /* lock guards the file below: the descriptor is swapped by a reopen
       (SIGHUP, zinx_server_reopen_log) or a rotation while other threads
       write, and size must match what was written. */
    pthread_mutex_t lock;
    int fd; /* stderr or the opened LogFile */
    bool owns_fd;
    bool cons;         /* LogCons: copy file records to stderr */
    uint64_t size;     /* bytes in the current file */
    uint64_t max_size; /* LogFileSize: rotate beyond this */
    int save_days;     /* LogSaveDays: keep rotated files this long */
    char dir[ZINX_CONFIG_PATH_MAX];
    char file[ZINX_CONFIG_NAME_MAX];
    zinx__log_limit_t limits[ZINX__LOGK_COUNT];
} zinx__logger_t;

void zinx__logger_init(zinx__logger_t *lg);
/* Opens LogDir/LogFile when set, and removes rotated files older than
   LogSaveDays. Returns 0 or a negated errno. Thread: the one starting. */
int zinx__logger_open(zinx__logger_t *lg, const zinx_config_t *cfg);
/* Opens LogDir/LogFile again and swaps it in (after an external rename).
   Returns 1 when it did, 0 without a log file, or a negated errno (the
   old file is kept). Thread: any. */
int zinx__logger_reopen(zinx__logger_t *lg);
/* Reports what the rate limits still hold, closes the file and releases
   the logger. Thread: the one freeing the server, once. */
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

/*
 * Logs a record of a kind that can repeat without bound: at most one
 * record per kind per ZINX__LOG_LIMIT_MS. Dropped records are counted;
 * the next record of the kind that passes ends with
 * " (N more like this suppressed in the last T ms)", and
 * zinx__logger_close() reports counts still pending, so the totals are
 * never lost. A dropped record costs a clock read and two atomic
 * operations, no formatting and no lock. Thread: any.
 */
void zinx__log_limited(zinx_server_t *server, zinx__log_kind_t kind,
                       zinx_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* zinx__log_limited() behind the one comparison of ZINX__LOG. */
#define ZINX__LOG_LIMITED(server, kind, level, ...)                    \
    do {                                                               \
        if ((level) >= zinx__log_level_of(server))                     \
            zinx__log_limited((server), (kind), (level), __VA_ARGS__); \
    } while (0)

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
/* A handler that takes a message and does nothing: heartbeats from peers
   are signs of life, not unknown messages. */
void zinx__ignore_message(zinx_request_t *req, void *udata);

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
    zinx__loop_t *origin; /* the loop that allocated it, and frees it; NULL
                             for a connection's own START/STOP task */
    zinx__task_kind_t kind;
    uint32_t done;     /* frames already handled (a parked task resumes) */
    zinx_conn_t *conn; /* holds a reference */
    uint32_t count;    /* frames in data */
    /* Bytes in data, and of the frames done: a batch is at most one read
       or one frame (MaxPacketSize is at most 1 GiB). 32 bits keep the
       header at 48 bytes, the size class the allocator serves fastest. */
    uint32_t size, off;
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
/* Any thread: puts the tasks the worker parked for conn (its output was
   above OutputHighWater) back at the front of the queue, in order. */
void zinx__worker_unpark(zinx__worker_t *w, zinx_conn_t *conn);
/* Returns a reservation that will not be used. */
void zinx__worker_unreserve(zinx__worker_t *w, uint32_t count);
/* Queues a task (MSGS tasks must have been reserved). Never blocks long. */
void zinx__worker_push(zinx__worker_t *w, zinx__task_t *task);
/* Queues a chain of tasks (linked through next) with one lock and one
   wake-up. */
void zinx__worker_push_list(zinx__worker_t *w, zinx__task_t *head,
                            zinx__task_t *tail);
/* Loop thread: a task for conn, allocated by (and later freed on) loop.
   NULL when out of memory (or when the server's fault hook says so). */
zinx__task_t *zinx__task_new(zinx__loop_t *loop, zinx__task_kind_t kind,
                             zinx_conn_t *conn, size_t size);
/* A task owned by conn (origin NULL), made when the connection is made so
   that starting and stopping it never allocate. Not counted as a
   reference; the queued task takes one when it is pushed. */
zinx__task_t *zinx__task_new_owned(zinx__task_kind_t kind);

/* ---- loop.c ----------------------------------------------------------- */

zinx__loop_t *zinx__loop_new(zinx_server_t *server, uint32_t index);
int zinx__loop_start(zinx__loop_t *loop);
void zinx__loop_join(zinx__loop_t *loop);
void zinx__loop_free(zinx__loop_t *loop);
bool zinx__loop_is_self(const zinx__loop_t *loop);
/*
 * Any thread: hands p (a connection or a dialer, with one reference taken
 * for the loop) to the loop thread, which attends to it in its next
 * iteration and drops the reference. Lock-free and allocation-free, so
 * closing and stopping work when memory is exhausted. The caller makes
 * sure p is posted at most once at a time (a flag of its own).
 */
void zinx__loop_post(zinx__loop_t *loop, zinx__pollable_t *p);
/* Any thread: close the listening socket (loop 0) at the next iteration. */
void zinx__loop_request_stop_listen(zinx__loop_t *loop);
/* Any thread: leave the loop once no socket lingers any more, or at
   deadline_ms (CLOCK_MONOTONIC), whichever comes first. */
void zinx__loop_request_quit(zinx__loop_t *loop, uint64_t deadline_ms);
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
/* Loop thread: make room in the timer heap for one more connection's
   timer, so arming it later cannot fail. Returns 0 or ZINX_ENOMEM. */
int zinx__loop_reserve_timer(zinx__loop_t *loop);
/* Loop thread: a connection's timer is gone for good. */
void zinx__loop_release_timer(zinx__loop_t *loop);
zinx_server_t *zinx__loop_server(const zinx__loop_t *loop);

/* ---- conn.c ----------------------------------------------------------- */

zinx_conn_t *zinx__conn_new(zinx_server_t *server, int fd, uint64_t id,
                            zinx__loop_t *loop, zinx__worker_t *worker,
                            uint32_t worker_id);
/* Loop thread: register with epoll and start (hook or START task). */
void zinx__conn_adopt(zinx_conn_t *conn);
/* Loop thread: socket events. */
void zinx__conn_on_events(zinx_conn_t *conn, uint32_t events);
/* Loop thread: conn came off the posted stack (drops that reference). */
void zinx__conn_run_posted(zinx_conn_t *conn);
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
/* Loop thread: frees conn's buffers if it has been idle since idle_since
   (monotonic ms). Returns true while it still holds buffers in use. */
bool zinx__conn_trim(zinx_conn_t *conn, uint64_t idle_since);
/* Any thread: while held, conn hands no more messages to its handlers and
   stops reading (the blocking client's bounded receive queue); releasing
   resumes both. */
void zinx__conn_hold(zinx_conn_t *conn, bool hold);
/* Any thread: unsent output above OutputHighWater; the handlers of this
   connection must wait. */
bool zinx__conn_over_high_water(const zinx_conn_t *conn);
bool zinx__conn_finished(const zinx_conn_t *conn);
/* The worker's lock: mirrors whether conn has parked tasks, for the loop
   to read without the lock. */
void zinx__conn_set_parked(zinx_conn_t *conn, bool parked);
/* Bytes queued for sending and not yet written; OutputHighWater. */
size_t zinx__conn_unsent(const zinx_conn_t *conn);
size_t zinx__conn_high_water(const zinx_conn_t *conn);
/* Handler thread: count an unrouted frame against MaxUnknownMsgs. */
void zinx__conn_note_unrouted(zinx_conn_t *conn);
/* The dialer that made conn (a reference is taken), told when it ends. */
void zinx__conn_set_dialer(zinx_conn_t *conn, zinx_dialer_t *dialer);
/* The links by which a connection's loop and worker list it without
   allocating: each list touches only its own fields, on its own thread
   (or under its own lock). */
typedef struct zinx__conn_links {
    /* Loop thread. */
    zinx_conn_t *attn_next; /* attention list */
    bool in_attn;
    zinx_conn_t *grave_next;  /* released after the iteration */
    zinx_conn_t *linger_next; /* lingering FIFO */
    uint64_t linger_deadline_ms;
    size_t linger_backlog; /* unsent + unacknowledged bytes last seen */
    /* The worker's lock. */
    zinx_conn_t *wait_next; /* waiting for room in the worker's queue */
    bool waiting;
    /* The worker thread, between taking its waiters and waking them. */
    zinx_conn_t *wake_next;
    /* The worker's lock: tasks of this connection held back while its
       output is above OutputHighWater, oldest first. */
    zinx__task_t *parked_head, *parked_tail;
} zinx__conn_links_t;

zinx__conn_links_t *zinx__conn_links(zinx_conn_t *conn);
/* Loop thread: bytes not yet acknowledged by a lingering socket's peer
   (ours and the kernel's), or 0 once the socket is closed. */
size_t zinx__conn_linger_backlog(zinx_conn_t *conn);

/* ---- dialer.c --------------------------------------------------------- */

zinx_dialer_t *zinx__dialer_ref(zinx_dialer_t *d);
void zinx__dialer_unref(zinx_dialer_t *d);
/* Loop thread: run the dialer's posted operations (and drop the posted
   reference). */
void zinx__dialer_run_posted(zinx_dialer_t *d);
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

#include "server/stats.h"

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
    zinx__fault_fn fault; /* tests only; NULL in production */
    void *fault_udata;
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

/* Tests only: install (or remove, with NULL) an allocation fault hook.
   Call before zinx_server_start(). */
void zinx__server_set_fault(zinx_server_t *server, zinx__fault_fn fn,
                            void *udata);
/* True when the fault hook wants the allocation at site to fail. */
static inline bool zinx__fault(const zinx_server_t *server,
                               zinx__alloc_site_t site)
{
    return server->fault != NULL && server->fault(site, server->fault_udata);
}

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
