/*
 * A connection's input: reading from its stream, cutting frames with its
 * codec (each header parsed once) and handing the messages to the
 * handlers, inline or as one batch per read for the worker.
 */
#include <stdio.h>
#include <string.h>

#include "conn/conn_private.h"

/* Reads per readiness event: bounded so one busy peer cannot starve the
   other connections of its loop. */
#define READS_PER_EVENT 4

/* ---- dispatch ------------------------------------------------------------ */

/* Inline in every loop: the fixed layouts decode without a call. */
static inline __attribute__((always_inline)) int
decode(zinx_conn_t *c, const uint8_t *buf, size_t len, zinx_msg_t *m,
       size_t *used)
{
    return zinx__codec_decode(c->codec, c->codec_state, c->max_packet_size, buf,
                              len, m, used);
}

/* Whether handlers may take more frames now: not while the output is
   behind (the worker parks what it already has) or the owner holds the
   connection. */
static bool dispatch_open(zinx_conn_t *c)
{
    return !conn_output_full(c) &&
           !atomic_load_explicit(&c->user_hold, memory_order_relaxed);
}

/* Dispatch stopped at buf: those frames wait in `in`, and while a
   complete one (or a bad one) waits, reading stops; the flush that makes
   room, or releasing the hold, resumes dispatch. */
static void hold_frames(zinx_conn_t *c, const uint8_t *buf, size_t len)
{
    zinx_msg_t m;
    size_t used;
    if (len > 0 && decode(c, buf, len, &m, &used) != ZINX__DECODE_MORE)
        c->paused_dispatch = true;
}

/* ---- bad frames ----------------------------------------------------------
 */

/* Whether the frame the codec refused with r can be dropped: BadFramePolicy
   "drop", and a codec that knows its size (PacketFormat's never does:
   those frames close as they always did). */
static bool droppable(const zinx_conn_t *c, int r, size_t size)
{
    return size > 0 && (r == ZINX_EMSGSIZE || r == ZINX_EPROTO) &&
           c->server->cfg.bad_frame_policy == ZINX_BAD_FRAME_DROP;
}

/*
 * A frame of `size` bytes that the codec refused with r, `avail` of them
 * at hand. Under the drop policy it is counted, logged (once a second at
 * most) and skipped: *adv of its bytes now, the rest (c->skip) as they
 * arrive, never buffered. Returns false when the connection must end
 * instead.
 */
/* Off the per-frame path: kept out of line so the dispatch loops stay
   as they are without bad frames. */
#define COLD __attribute__((cold, noinline))

static COLD bool drop_bad_frame(zinx_conn_t *c, int r, size_t size,
                                size_t avail, size_t *adv)
{
    if (!droppable(c, r, size))
        return false;
    zinx_server_t *s = c->server;
    atomic_fetch_add_explicit(&s->stats.bad_frames, 1, memory_order_relaxed);
    ZINX__LOG_LIMITED(
        s, ZINX__LOGK_BAD_FRAME, ZINX_LOG_WARN,
        "conn %llu (%s): %s frame of %zu bytes dropped (%s)",
        (unsigned long long)c->id, c->stream->remote, c->codec->name, size,
        r == ZINX_EMSGSIZE ? "above the frame limit" : "failed its check");
    *adv = size <= avail ? size : avail;
    c->skip = size - *adv;
    if (c->skip > 0)
        c->need = SIZE_MAX; /* the reader's slow path: read_big() */
    return true;
}

static __attribute__((noinline)) int dispatch_inline(zinx_conn_t *c,
                                                     const uint8_t *buf,
                                                     size_t len,
                                                     size_t *consumed)
{
    zinx_server_t *s = c->server;
    size_t off = 0;
    int rc = 0;
    while (off < len && atomic_load(&c->close_req) != CLOSE_NOW) {
        if (!dispatch_open(c)) {
            hold_frames(c, buf + off, len - off);
            break;
        }
        zinx_msg_t m;
        size_t used;
        int r = decode(c, buf + off, len - off, &m, &used);
        if (r != ZINX__DECODE_MSG) {
            size_t adv;
            if (r == ZINX__DECODE_MORE)
                c->need = used;
            else if (drop_bad_frame(c, r, used, len - off, &adv)) {
                off += adv;
                continue;
            }
            rc = r < 0 ? r : 0;
            break;
        }
        atomic_fetch_add_explicit(&s->stats.msgs_in, 1, memory_order_relaxed);
        zinx__route_message(s, c, &m);
        off += used;
    }
    *consumed = off;
    return rc;
}

/* decode_all stopped at a frame to drop behind the ones it found. */
#define BAD_FRAME_NEXT 1

/* Decodes the complete frames at buf into the shard's scratch array.
   Returns 0, BAD_FRAME_NEXT, or the error of the frame that stopped it
   (after the good ones); *count and *bytes say what was found, dropped
   frames included in *bytes. */
static int decode_all(zinx_conn_t *c, const uint8_t *buf, size_t len,
                      zinx__frame_t **out, uint32_t *count, size_t *bytes)
{
    size_t off = 0;
    uint32_t n = 0;
    int rc = 0;
    zinx__frame_t *f = NULL;
    while (off < len) {
        zinx__frame_t *grown = zinx__shard_frames(c->shard, (size_t)n + 1);
        if (grown == NULL) {
            rc = n == 0 ? ZINX_ENOMEM : 0; /* what fitted goes on */
            break;
        }
        f = grown;
        size_t used;
        int r = decode(c, buf + off, len - off, &f[n].msg, &used);
        if (r != ZINX__DECODE_MSG) {
            size_t adv;
            if (r == ZINX__DECODE_MORE) {
                c->need = used;
            } else if (n > 0 && droppable(c, r, used)) {
                /* Dropped once the frames before it are handed over:
                   if the worker takes fewer, it is found again later. */
                rc = BAD_FRAME_NEXT;
                break;
            } else if (drop_bad_frame(c, r, used, len - off, &adv)) {
                off += adv;
                continue;
            }
            rc = r < 0 ? r : 0;
            break;
        }
        off += used;
        f[n++].end = off;
    }
    *out = f; /* the array as last grown (NULL only when n is 0) */
    *count = n;
    *bytes = off;
    return rc;
}

/* Hands the frames up to the first error or frame to drop to the worker
   (BAD_FRAME_NEXT: a frame to drop follows them, and they were all
   taken). */
static __attribute__((noinline)) int dispatch_to_worker(zinx_conn_t *c,
                                                        const uint8_t *buf,
                                                        size_t len,
                                                        size_t *consumed)
{
    *consumed = 0;
    if (!dispatch_open(c)) {
        hold_frames(c, buf, len);
        return 0;
    }
    zinx__frame_t *f;
    uint32_t n;
    size_t bytes;
    int rc = decode_all(c, buf, len, &f, &n, &bytes);
    if (n == 0) {
        *consumed = bytes; /* frames dropped, if any */
        return rc;
    }
    uint32_t granted = zinx__worker_reserve(c->worker, &c->waiter, n);
    if (granted < n) {
        /* The rest waits in `in` (and any bad frame behind it is found
           again when the worker resumes us). */
        c->paused_worker = true;
        c->need = 0;
        rc = 0;
    }
    if (granted == 0)
        return 0;
    int prc = conn_push_batch(c, f, granted);
    if (prc != 0) {
        zinx__worker_unreserve(c->worker, granted);
        return prc;
    }
    atomic_fetch_add(&c->inflight, granted);
    atomic_fetch_add_explicit(&c->server->stats.msgs_in, granted,
                              memory_order_relaxed);
    *consumed = f[granted - 1].end;
    return rc;
}

/* The rare case of a frame to drop behind frames for the worker: the
   batches that follow, each after the frame it dropped. */
static COLD int dispatch_after_drop(zinx_conn_t *c, const uint8_t *buf,
                                    size_t len, size_t *consumed)
{
    int rc = BAD_FRAME_NEXT;
    while (rc == BAD_FRAME_NEXT) {
        size_t done;
        rc = dispatch_to_worker(c, buf + *consumed, len - *consumed, &done);
        *consumed += done;
    }
    return rc;
}

/* Inlined into both readers, as the two dispatchers are not: that is
   how the compiler arranged them before bad frames existed, and the
   per-frame instruction budgets hold for it. */
static inline __attribute__((always_inline)) int
dispatch(zinx_conn_t *c, const uint8_t *buf, size_t len, size_t *consumed)
{
    c->need = 0;
    if (c->worker == NULL)
        return dispatch_inline(c, buf, len, consumed);
    int rc = dispatch_to_worker(c, buf, len, consumed);
    if (rc == BAD_FRAME_NEXT)
        rc = dispatch_after_drop(c, buf, len, consumed);
    return rc;
}

/* A frame above MaxPacketSize: counted, logged, and the connection ends,
   with a last notice frame first when CloseNoticeMsgID is set. */
static void oversize(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    atomic_fetch_add_explicit(&s->stats.oversize, 1, memory_order_relaxed);
    ZINX__LOG_LIMITED(
        s, ZINX__LOGK_OVERSIZE, ZINX_LOG_WARN,
        "conn %llu (%s): frame longer than MaxPacketSize %u, closing",
        (unsigned long long)c->id, c->stream->remote, c->max_packet_size);
    conn_set_reason(c, ZINX_EMSGSIZE);
    uint32_t notice = s->cfg.close_notice_msg_id;
    if (notice == 0) {
        conn_finish(c, FINISH_ABORT);
        return;
    }
    /* The notice goes behind the replies to the frames before. */
    if (conn_gather_spill(c) != 0) {
        conn_finish(c, FINISH_ABORT);
        return;
    }
    char text[96];
    int n = snprintf(text, sizeof(text), "frame too large: limit %u bytes",
                     c->max_packet_size);
    uint32_t len = n > 0 ? (uint32_t)n : 0;
    if (len > c->max_packet_size)
        len = c->max_packet_size;
    if (zinx__codec_encode(c->codec, &c->out, notice, text, len) == 0)
        atomic_fetch_add(&c->unsent, zinx__codec_frame_len(c->codec, len));
    conn_finish(c, FINISH_FLUSH);
}

/* A frame the codec refused, malformed or failed under BadFramePolicy
   "close": counted, logged, and the connection closes gracefully, so the
   frames before it are still handled and answered. Nothing after it is
   read or decoded again. */
static COLD void bad_frame_close(zinx_conn_t *c)
{
    zinx_server_t *s = c->server;
    atomic_fetch_add_explicit(&s->stats.bad_frames, 1, memory_order_relaxed);
    ZINX__LOG_LIMITED(s, ZINX__LOGK_BAD_FRAME, ZINX_LOG_WARN,
                      "conn %llu (%s): %s frame malformed or failed its "
                      "check, closing",
                      (unsigned long long)c->id, c->stream->remote,
                      c->codec->name);
    conn_set_reason(c, ZINX_EPROTO);
    c->in.off = c->in.len = 0;
    c->need = 0;
    /* The replies gathered so far go first; the gather must not outlive
       this read. */
    if (conn_gather_spill(c) != 0) {
        conn_finish(c, FINISH_ABORT);
        return;
    }
    conn_raise_close(c, CLOSE_GRACEFUL);
    conn_begin_drain(c);
}

/* Handles a dispatch error; returns false when the connection ended (or
   is closing). */
static bool dispatch_ok(zinx_conn_t *c, int rc)
{
    if (rc == 0)
        return true;
    if (rc == ZINX_EMSGSIZE)
        oversize(c);
    else if (rc == ZINX_EPROTO)
        bad_frame_close(c);
    else
        conn_fail(c, rc);
    return false;
}

bool conn_dispatch_buffered(zinx_conn_t *c)
{
    if (zinx__buf_size(&c->in) == 0)
        return true;
    size_t consumed;
    c->paused_worker = false;
    c->paused_dispatch = false;
    int rc =
        dispatch(c, zinx__buf_head(&c->in), zinx__buf_size(&c->in), &consumed);
    if (c->state == CONN_FINISHED)
        return false;
    zinx__buf_consume(&c->in, consumed);
    return dispatch_ok(c, rc);
}

/* ---- reading ------------------------------------------------------------- */

/* Outcome of one read attempt. */
enum read_status {
    READ_MORE, /* the read filled its buffer: more may be waiting */
    READ_DONE, /* the stream is drained for now */
    READ_EOF,  /* the peer ended its direction */
    READ_ENDED /* the connection ended */
};

/* Maps a read that returned no bytes; errors end the connection. */
static int read_failed(zinx_conn_t *c, ssize_t n)
{
    if (n == 0)
        return READ_EOF;
    if (n == ZINX_EAGAIN)
        return READ_DONE;
    conn_fail(c, (int)n);
    return READ_ENDED;
}

/* A frame larger than the read buffer is assembled in `in`, growing only
   as its bytes arrive (never to the declared size at once). */
static int read_into_in(zinx_conn_t *c, size_t need, size_t rbuf_cap)
{
    size_t want = need - zinx__buf_size(&c->in);
    if (want > rbuf_cap)
        want = rbuf_cap;
    if (zinx__buf_reserve(&c->in, want) != 0) {
        conn_fail(c, ZINX_ENOMEM);
        return READ_ENDED;
    }
    ssize_t n = conn_read(c, c->in.data + c->in.len, want);
    if (n <= 0)
        return read_failed(c, n);
    c->last_rx_ms = zinx__loop_now(c->loop);
    c->last_io_ms = c->last_rx_ms;
    c->in.len += (size_t)n;
    if (zinx__buf_size(&c->in) >= need) {
        if (!conn_dispatch_buffered(c))
            return READ_ENDED;
        conn_track_partial(c, true, c->last_rx_ms);
    }
    return (size_t)n == want ? READ_MORE : READ_DONE;
}

/* Reads into the shard's buffer behind what `in` held, dispatches the
   complete frames and keeps the tail in `in`. */
static int read_into_rbuf(zinx_conn_t *c, uint8_t *rbuf, size_t cap)
{
    size_t have = zinx__buf_size(&c->in);
    if (have > 0)
        memcpy(rbuf, zinx__buf_head(&c->in), have);
    ssize_t n = conn_read(c, rbuf + have, cap - have);
    if (n <= 0)
        return read_failed(c, n);
    uint64_t now = zinx__loop_now(c->loop);
    c->last_rx_ms = now;
    c->last_io_ms = now;
    c->in.off = c->in.len = 0; /* copied to rbuf above */
    size_t total = have + (size_t)n, consumed;
    /* Inline handlers' replies leave in one write after the last of
       them, before the next read reuses rbuf. */
    if (c->worker == NULL)
        conn_gather_begin(c, rbuf, total);
    int rc = dispatch(c, rbuf, total, &consumed);
    if (c->state == CONN_FINISHED || !dispatch_ok(c, rc))
        return READ_ENDED;
    if (c->worker == NULL && !conn_gather_end(c))
        return READ_ENDED;
    if (consumed < total &&
        zinx__buf_append(&c->in, rbuf + consumed, total - consumed) != 0) {
        conn_fail(c, ZINX_ENOMEM);
        return READ_ENDED;
    }
    conn_track_partial(c, consumed > 0, now);
    return (size_t)n == cap - have ? READ_MORE : READ_DONE;
}

/* Discards the rest of a dropped frame as it arrives (c->skip bytes),
   reading no further than its end. */
static COLD int read_skip(zinx_conn_t *c, uint8_t *rbuf, size_t cap)
{
    size_t want = c->skip < cap ? c->skip : cap;
    ssize_t n = conn_read(c, rbuf, want);
    if (n <= 0)
        return read_failed(c, n);
    c->last_rx_ms = zinx__loop_now(c->loop);
    c->last_io_ms = c->last_rx_ms;
    c->skip -= (size_t)n;
    if (c->skip == 0)
        c->need = 0;
    return (size_t)n == want ? READ_MORE : READ_DONE;
}

/* `in` waits for a frame larger than the read buffer, or the rest of a
   dropped frame is skipped (need is then SIZE_MAX). */
static int read_big(zinx_conn_t *c, uint8_t *rbuf, size_t cap)
{
    if (c->skip > 0)
        return read_skip(c, rbuf, cap);
    return read_into_in(c, c->need, cap);
}

static bool reading_allowed(const zinx_conn_t *c)
{
    return c->state == CONN_OPEN && !conn_frames_held(c) && !c->paused_output &&
           !atomic_load_explicit(&c->user_hold, memory_order_relaxed) &&
           atomic_load(&c->close_req) == CLOSE_NONE;
}

void conn_on_readable(zinx_conn_t *c)
{
    size_t cap;
    uint8_t *rbuf = zinx__shard_rbuf(c->shard, &cap);
    for (int reads = 0; reads < READS_PER_EVENT && reading_allowed(c);
         reads++) {
        /* The size of the frame `in` starts with is known from its
           header, decoded when it first arrived (SIZE_MAX: skipping). */
        int st = c->need > cap ? read_big(c, rbuf, cap)
                               : read_into_rbuf(c, rbuf, cap);
        if (st == READ_EOF) {
            c->peer_eof = true;
            conn_begin_drain(c);
        }
        if (st != READ_MORE)
            return;
    }
}
