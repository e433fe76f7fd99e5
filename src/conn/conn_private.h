/*
 * The connection object and what the files of src/conn/ share. Never
 * included outside src/conn/.
 *
 * Ownership of the fields:
 *   - "loop" fields are touched only by the shard's I/O thread;
 *   - `lock` guards pending output, `sendable`, posted jobs and the
 *     properties;
 *   - the atomics carry requests between threads (close, poke, inflight).
 *
 * References: the shard holds one from adoption until the stream is
 * closed (released at the end of that loop iteration), the connection
 * manager holds one while the connection is listed, and every queued job,
 * post, deferred attention, lingering entry, buffer-sweep entry and
 * worker wait holds one.
 */
#ifndef ZINX_CONN_PRIVATE_H
#define ZINX_CONN_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>

#include "codec/codec.h"
#include "conn/conn.h"
#include "internal.h"
#include "stream/stream.h"

/* The states not yet open come last, so that the hot paths tell them
   apart from the open ones with the one comparison they make anyway. */
enum conn_state {
    CONN_OPEN,     /* reading and writing */
    CONN_DRAINING, /* not reading; finishing queued work and output */
    CONN_FINISHED, /* sends refused; OnConnStop scheduled */
    CONN_NEW,      /* made, not yet adopted by its loop */
    CONN_HANDSHAKE /* adopted; its stack's handshakes run (no hooks yet) */
};

enum close_request { CLOSE_NONE, CLOSE_GRACEFUL, CLOSE_NOW };

/* How a connection ends: dropping what is unsent, or sending it first. */
enum finish_how { FINISH_ABORT, FINISH_FLUSH };

/* A keyed close callback (close_callbacks.c). */
typedef struct zinx__close_cb zinx__close_cb_t;

typedef struct property {
    struct property *next;
    void *value;
    zinx_property_free_fn free_fn;
    char key[];
} property_t;

/* A frame decoded from a read: the message, and where the frame ends
   (bytes from the start of the read). */
typedef struct zinx__frame {
    zinx_msg_t msg;
    size_t end;
} zinx__frame_t;

/* A function of the user's run on the connection's worker (async
   completions and connection timers). */
/* Replies of one read's inline handlers, gathered for one write
   (gather.c); one per shard. */
#define ZINX__GATHER_IOV 64
#define ZINX__GATHER_BYTES 8192
typedef struct zinx__gather {
    zinx_conn_t *conn;      /* gathering for; NULL: nobody */
    const uint8_t *lo, *hi; /* the read's bytes, valid until the write */
    size_t bytes;           /* gathered in all */
    size_t used;            /* of scratch */
    int n;                  /* of iov */
    struct iovec iov[ZINX__GATHER_IOV];
    uint8_t scratch[ZINX__GATHER_BYTES];
} zinx__gather_t;

/* A frame encoded once and shared, read-only, by the output queues of
   many connections (a broadcast); freed with its last reference. */
struct zinx__seg {
    atomic_uint refs;
    const zinx__codec_t *codec; /* encoded with */
    size_t len;
    uint8_t *data;
};

/* Shared segments queued in a byte buffer's stream (`out` or `pending`):
   items[head..count) in order, each after `gap` bytes of the buffer that
   follow the previous one. Empty (count 0) unless a broadcast reached
   the connection, so the paths without one only test count or add
   `bytes`. */
typedef struct zinx__segref {
    zinx__seg_t *seg;
    size_t gap;
} zinx__segref_t;

typedef struct zinx__segq {
    zinx__segref_t *items;
    size_t head, count, cap;
    size_t marked; /* bytes of the buffer before the last segment */
    size_t bytes;  /* bytes of the segments not written yet */
    size_t sent;   /* bytes of items[head] written already */
} zinx__segq_t;

typedef struct zinx__conn_job {
    zinx__job_t job;
    zinx_conn_t *conn; /* a reference */
    void (*fn)(zinx_conn_t *conn, void *udata);
    void *udata;
    struct zinx__conn_job *next_posted; /* conn->lock */
} zinx__conn_job_t;

struct zinx_conn {
    zinx__closure_t poke;   /* posted to the loop by other threads */
    zinx__closure_t attend; /* deferred to the end of the iteration */
    atomic_uint refs;
    uint32_t worker_id;
    uint64_t id;
    zinx_server_t *server;
    zinx__shard_t *shard;
    zinx__loop_t *loop;
    zinx__worker_t *worker; /* NULL: handlers run on the I/O thread */
    const zinx__codec_t *codec;
    void *codec_state;
    zinx__stream_t *stream; /* the top of the stack: addresses, close */
    /* What we read, write and want from: stream, or the stream below
       the layers that stepped aside after their handshake. */
    zinx__stream_t *io;
    zinx__gather_t *gather; /* the shard's */
    uint32_t max_packet_size;
    uint32_t output_hard_limit;
    size_t high_water; /* OutputHighWater */
    /* Made with the connection: starting and stopping never allocate. */
    zinx__job_t start_job, stop_job;
    zinx__lane_t lane;
    zinx__waiter_t waiter;

    /* Loop thread only. */
    int state;
    uint32_t want;        /* the events the stream waits for (0 when started) */
    bool in_attend;       /* deferred already */
    bool handshaking;     /* made with a stack that has handshakes */
    bool started;         /* OnConnStart was scheduled: OnConnStop runs */
    bool closed;          /* the stream is closed */
    bool peer_eof;        /* the peer ended its direction */
    bool paused_worker;   /* worker queue full: frames wait in `in` */
    bool paused_dispatch; /* output behind (or held): frames wait in `in` */
    bool paused_output;   /* too much unsent output */
    bool lingering;       /* finished: flushing, then waiting for EOF */
    bool wr_shut;         /* our FIN was sent */
    bool has_timer;       /* holds a slot in the loop's timer heap */
    bool retained;        /* listed in the shard's buffer sweep */
    uint32_t unknown_msgs; /* unrouted frames (handler thread only) */
    bool staging; /* handler thread: replies go to the worker's scratch */
    uint64_t last_io_ms; /* last read or write, for the buffer sweep */
    size_t need;         /* bytes the frame at the head of `in` needs */
    size_t skip;    /* bytes of a dropped frame still to come, then discarded */
    zinx__buf_t in; /* partial frame, or frames waiting for room */
    zinx__buf_t out;         /* unsent bytes */
    zinx__segq_t outq;       /* shared segments among them */
    zinx__timer_t timer;     /* the earliest of the deadlines below */
    uint64_t last_rx_ms;     /* last byte received */
    uint64_t frame_start_ms; /* a partial frame waits since; 0: none */
    uint64_t soft_since_ms;  /* above OutputSoftLimit since; 0: below */
    uint64_t stall_since_ms; /* output waits, no progress since; 0: none */
    uint64_t next_beat_ms;   /* next heartbeat; 0: heartbeat off */
    uint64_t handshake_deadline_ms; /* CONN_HANDSHAKE: cut at; 0: never */
    /* The shard's lists. */
    zinx_conn_t *grave_next;  /* released after the iteration */
    zinx_conn_t *linger_next; /* lingering FIFO */
    zinx_conn_t *sweep_next;  /* holding buffers, swept when idle */
    uint64_t linger_deadline_ms;
    size_t linger_backlog; /* unsent + unacknowledged bytes last seen */

    /* Any thread. */
    atomic_int close_req;
    atomic_int close_reason; /* 0 or the ZINX_E* code that ended it */
    atomic_bool user_hold;   /* the owner takes no more messages for now */
    atomic_bool open;
    /* The connection manager shows it (get, foreach, notify, broadcast):
       from creation without handshakes, else once they are over and
       OnConnStart is scheduled, so that no thread reads its addresses
       while a PROXY header changes them or sends to a peer that has not
       finished its handshake. */
    atomic_bool shown;
    atomic_bool finished;
    atomic_bool poked;
    atomic_bool draining;
    atomic_bool jobs_posted; /* posted_head may be non-empty */
    atomic_uint inflight;    /* frames handed to the worker, not yet handled */
    atomic_size_t unsent;    /* bytes in out + pending: the output caps */

    pthread_mutex_t lock;
    zinx__buf_t pending; /* frames sent from other threads */
    zinx__segq_t pendq;  /* shared segments among them */
    bool sendable;
    bool postable;
    bool props_released;
    bool close_cbs_run; /* the close callbacks were taken to run */
    zinx__conn_job_t *posted_head, *posted_tail;
    property_t *props;
    zinx__close_cb_t *close_cbs; /* in the order added */

    void *user_data;
    zinx_dialer_t *dialer;       /* reference; NULL for accepted connections */
    zinx__transport_t transport; /* the stream at the bottom */
};

/* Bytes gathered for c and not written yet (they count as unsent). */
/* The connection's reads and writes, counted in bytes when metrics are
   on (the one test of metrics/metrics.h). Loop thread. */
static inline ssize_t conn_read(zinx_conn_t *c, void *buf, size_t n)
{
    ssize_t r = zinx__stream_read(c->io, buf, n);
    if (c->server->metrics != NULL && r > 0)
        zinx__metrics_bytes_in(c->server, zinx__loop_index(c->loop), (size_t)r);
    return r;
}

static inline ssize_t conn_writev(zinx_conn_t *c, const struct iovec *iov,
                                  int n)
{
    ssize_t w = zinx__stream_writev(c->io, iov, n);
    if (c->server->metrics != NULL && w > 0)
        zinx__metrics_bytes_out(c->server, zinx__loop_index(c->loop),
                                (size_t)w);
    return w;
}

static inline size_t conn_gathered(const zinx_conn_t *c)
{
    return c->gather->conn == c ? c->gather->bytes : 0;
}

/* Unsent bytes of `out` and of the shared segments queued with them. */
static inline size_t conn_out_size(const zinx_conn_t *c)
{
    return zinx__buf_size(&c->out) + c->outq.bytes;
}

/* ---- lifecycle.c --------------------------------------------------------- */

/* Loop thread: look at conn again later in this iteration (coalesced). */
void conn_schedule(zinx_conn_t *c);
/* Any thread: conn_schedule from the right thread. */
void conn_nudge(zinx_conn_t *c);
/* Loop thread: output, close requests, pauses, drain. */
void conn_attend(zinx_conn_t *c);
/* Ends the connection (see finish in lifecycle.c). */
void conn_finish(zinx_conn_t *c, enum finish_how how);
/* Records why the connection ended; the first reason stays. */
void conn_set_reason(zinx_conn_t *c, int err);
/* Ends the connection for err (logged; ZINX_ENOMEM counted). */
void conn_fail(zinx_conn_t *c, int err);
/* Counts, logs (rate-limited) and ends the connection for `reason`. */
void conn_close_for(zinx_conn_t *c, atomic_uint_least64_t *counter,
                    zinx__log_kind_t kind, int reason, const char *why);
void conn_begin_drain(zinx_conn_t *c);
/* Raises the close request to `how`; true when this call raised it. */
bool conn_raise_close(zinx_conn_t *c, int how);
/* Loop thread: close the stream and hand the shard's reference to the
   graveyard. Idempotent. */
void conn_close_stream(zinx_conn_t *c);
/* The connection's hooks, on its handler thread. */
void conn_run_start(zinx_conn_t *c);
void conn_run_stop(zinx_conn_t *c);
/* Frees a detached property list (free_fn is user code: no lock held). */
void conn_free_props(property_t *p);

/* ---- close_callbacks.c -------------------------------------------------- */

/* Handler thread, right after OnConnStop: runs the close callbacks in
   the order added and refuses later adds. */
void conn_run_close_callbacks(zinx_conn_t *c);
/* Frees callbacks that never ran (a connection never started). */
void conn_free_close_callbacks(zinx_conn_t *c);

/* ---- input.c ------------------------------------------------------------- */

/* Loop thread: the stream is readable. */
void conn_on_readable(zinx_conn_t *c);
/* Loop thread: dispatch what waits in `in`; false when the connection
   ended. */
bool conn_dispatch_buffered(zinx_conn_t *c);
/* Frames wait in `in` for room. */
static inline bool conn_frames_held(const zinx_conn_t *c)
{
    return c->paused_worker || c->paused_dispatch;
}

/* ---- output.c ------------------------------------------------------------ */

/* Whether the output is too far behind for the connection to take more
   requests: it is above OutputHighWater, and stays so until half of that
   is sent (hysteresis, so that reading does not flap). Counts replies
   queued by other threads too (`unsent`) and gathered ones. Loop thread;
   inline, as it is asked before every message. */
static inline bool conn_output_full(zinx_conn_t *c)
{
    size_t unsent = atomic_load_explicit(&c->unsent, memory_order_relaxed) +
                    conn_gathered(c);
    if (c->paused_output) {
        if (unsent > c->high_water / 2)
            return true;
        c->paused_output = false;
        return false;
    }
    if (unsent > c->high_water) {
        c->paused_output = true;
        return true;
    }
    return false;
}
/* Loop thread: take what other threads queued; write what the peer
   takes. False when the connection ended. */
bool conn_take_pending(zinx_conn_t *c);
bool conn_flush(zinx_conn_t *c);
/* Worker thread, around a batch of several messages: the replies its
   handlers send to c are staged in the worker's scratch without the
   lock, and moved to `pending` (one lock, one wake-up of the loop) at
   the end of the batch, before it parks, or when they pass 64 KiB. */
void conn_stage_begin(zinx_conn_t *c);
void conn_stage_end(zinx_conn_t *c);
/* Loop thread: tell the stream which events we want now. */
void conn_set_interest(zinx_conn_t *c);
/* Loop thread: a finished connection's flush, FIN and wait for EOF. */
void conn_linger_step(zinx_conn_t *c);
/* Loop thread: events while lingering. */
void conn_on_linger_events(zinx_conn_t *c, uint32_t events);
/* Loop thread: listed for the buffer sweep while it holds buffers. */
void conn_note_buffers(zinx_conn_t *c);
/* Loop thread: bytes not yet acknowledged by a lingering peer (ours and
   the kernel's), or 0 once the stream is closed. */
size_t conn_linger_backlog(zinx_conn_t *c);
/* Loop thread: frees idle buffers; true while they are still in use. */
bool conn_trim(zinx_conn_t *c, uint64_t idle_since);

/* ---- shared_out.c -------------------------------------------------------- */

/* Queues seg after the buf_bytes bytes of its buffer (a reference is
   taken). Returns 0 or ZINX_ENOMEM. */
int conn_segq_push(zinx__segq_t *q, size_t buf_bytes, zinx__seg_t *seg);
/* Releases every segment of q and its array. */
void conn_segq_drop(zinx__segq_t *q);
/* Lock held, loop thread: moves `pending` and its segments behind
   `out`. Returns 0 or ZINX_ENOMEM (then nothing moved). */
int conn_take_shared(zinx_conn_t *c);
/* Loop thread: writes what it can of `out` with its segments (see
   write_out in output.c). */
int conn_write_shared(zinx_conn_t *c);

/* ---- gather.c ------------------------------------------------------------ */

/* Loop thread, inline handlers only: replies to c sent while the frames
   of buf[0..len) are handled may be gathered. */
void conn_gather_begin(zinx_conn_t *c, const uint8_t *buf, size_t len);
/* Gathers one reply frame; false when it must go to `out` instead. */
bool conn_gather_put(zinx_conn_t *c, uint32_t id, const void *data,
                     uint32_t len);
/* Moves what is gathered into `out` (what comes next must follow it).
   Returns 0 or ZINX_ENOMEM. */
int conn_gather_spill(zinx_conn_t *c);
/* Forgets what is gathered (the connection aborts). */
void conn_gather_drop(zinx_conn_t *c);
/* Writes what was gathered; the rest goes to `out`. False when the
   connection ended. */
bool conn_gather_end(zinx_conn_t *c);

/* ---- deadline.c ---------------------------------------------------------- */

void conn_start_deadlines(zinx_conn_t *c);
void conn_on_timer(zinx__timer_t *t, void *arg);
/* Loop thread: the open connection's handler of its stream's
   readiness (lifecycle.c). */
void conn_on_stream_ready(void *owner, uint32_t events);
/* Loop thread, adoption of a connection whose stack has handshakes
   (handshake.c): state CONN_HANDSHAKE, stream started, deadline armed. */
void conn_adopt_handshaking(zinx_conn_t *c);
/* Loop thread, CONN_HANDSHAKE: the timer fired; cut the connection if
   its handshake deadline passed. */
void conn_handshake_timer(zinx_conn_t *c, uint64_t now);
/* Loop thread, after a flush: the soft-limit and no-progress clocks. */
void conn_check_output_clocks(zinx_conn_t *c);
/* Loop thread: a new frame now heads `in` (head_changed) or not. */
void conn_track_partial(zinx_conn_t *c, bool head_changed, uint64_t now);

/* ---- heartbeat.c --------------------------------------------------------- */

uint64_t conn_heartbeat_max_ms(const zinx_conn_t *c);
/* Whether a silent peer is cut the moment HeartbeatMax passes. */
bool conn_cut_at_heartbeat_max(const zinx_conn_t *c);
/* Loop thread, from the connection's timer: beat when due; end a peer
   that is not alive. */
void conn_heartbeat(zinx_conn_t *c, uint64_t now);

/* ---- work.c ---------------------------------------------------------------
 */

void conn_init_jobs(zinx_conn_t *c);
/* Loop thread: queue conn's start or stop (hook inline without workers). */
void conn_schedule_start(zinx_conn_t *c);
void conn_schedule_stop(zinx_conn_t *c);
/* Loop thread: hand `count` decoded messages to the worker; returns 0 or
   ZINX_ENOMEM. */
int conn_push_batch(zinx_conn_t *c, const zinx__frame_t *frames,
                    uint32_t count);
/* Loop thread: run or queue the posted user jobs, in order. */
void conn_run_posted_jobs(zinx_conn_t *c);
/* Loop thread: the lane is closed; jobs still posted run now, before the
   stop. */
void conn_close_jobs(zinx_conn_t *c);

/* ---- shard.c --------------------------------------------------------------
 */

/* The shard's read buffer, shared by its connections. */
uint8_t *zinx__shard_rbuf(zinx__shard_t *sh, size_t *cap);
/* The shard's reply gather (gather.c). */
zinx__gather_t *zinx__shard_gather(zinx__shard_t *sh);
/* The shard's scratch array of decoded frames, grown to hold at least
   count (NULL when out of memory; the old array stays). */
zinx__frame_t *zinx__shard_frames(zinx__shard_t *sh, size_t count);
/* Queue job for worker w at the end of this iteration, in order with
   the shard's other jobs for w. */
void zinx__shard_push_job(zinx__shard_t *sh, zinx__worker_t *w,
                          zinx__job_t *job);
/* Loop thread: size bytes for a batch, from the shard's pool of blocks
   when it fits one (*pooled set), else from malloc. NULL when out of
   memory. */
void *zinx__shard_alloc(zinx__shard_t *sh, size_t size, bool *pooled);
/* Any thread: give mem back to the shard's thread, which allocated it:
   to the pool, or to free() (memory freed on the thread that allocated
   it keeps glibc's per-thread caches from drifting). */
void zinx__shard_recycle(zinx__shard_t *sh, void *mem, bool pooled);
void zinx__shard_bury(zinx__shard_t *sh, zinx_conn_t *c);
void zinx__shard_linger(zinx__shard_t *sh, zinx_conn_t *c);
void zinx__shard_retain(zinx__shard_t *sh, zinx_conn_t *c);
zinx_server_t *zinx__shard_server(const zinx__shard_t *sh);

#endif /* ZINX_CONN_PRIVATE_H */
