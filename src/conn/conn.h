/*
 * Connections, as the rest of the library sees them: made by the server
 * or a dialer for an established stream, owned by one shard (the
 * connections of one I/O thread, shard.c), handing work to one worker.
 */
#ifndef ZINX_SRC_CONN_H
#define ZINX_SRC_CONN_H

#include "event/event.h"
#include "work/worker.h"
#include "zinx.h"

typedef struct zinx__shard zinx__shard_t;

/* ---- shard.c ------------------------------------------------------------- */

/* The connections of one I/O thread and what they share. Hooks itself
   into loop. */
zinx__shard_t *zinx__shard_new(zinx_server_t *server, zinx__loop_t *loop);
void zinx__shard_free(zinx__shard_t *shard);
zinx__loop_t *zinx__shard_loop(const zinx__shard_t *shard);

struct zinx__stack_spec;

/* ---- lifecycle.c --------------------------------------------------------- */

/*
 * Makes a connection over the established socket fd (taken: closed on
 * failure too), owned by shard, its handlers on worker (NULL: on the I/O
 * thread), with the layers of stack (NULL: none) on its socket. The
 * result holds one reference, which becomes the shard's when the
 * connection is adopted. NULL when out of memory.
 */
zinx_conn_t *zinx__conn_new(zinx_server_t *server, int fd, uint64_t id,
                            zinx__shard_t *shard, zinx__worker_t *worker,
                            uint32_t worker_id,
                            const struct zinx__stack_spec *stack);
struct zinx__kcp_session;
/* As zinx__conn_new, over a KCP session (kcp/kcp.h; taken: discarded on
   failure too) instead of a socket, with no layers. Loop thread of
   shard. */
zinx_conn_t *zinx__conn_new_kcp(zinx_server_t *server,
                                struct zinx__kcp_session *sess, uint64_t id,
                                zinx__shard_t *shard, zinx__worker_t *worker,
                                uint32_t worker_id);
/* Any thread: whether the connection manager shows conn (its
   handshakes, if any, are over). */
bool zinx__conn_shown(const zinx_conn_t *conn);
/* Loop thread of its shard: register and start (hook or start job). */
void zinx__conn_adopt(zinx_conn_t *conn);
/* Any thread: have the shard's loop adopt conn (takes the creation
   reference over). */
void zinx__conn_adopt_later(zinx_conn_t *conn);
/* Any thread: while held, conn hands no more messages to its handlers
   and stops reading (the blocking client's bounded receive queue);
   releasing resumes both. */
void zinx__conn_hold(zinx_conn_t *conn, bool hold);
/* Any thread: bytes queued for sending and not yet written. */
size_t zinx__conn_unsent(const zinx_conn_t *conn);
size_t zinx__conn_high_water(const zinx_conn_t *conn);
/* Handler thread: count an unrouted frame against MaxUnknownMsgs. */
void zinx__conn_note_unrouted(zinx_conn_t *conn);
/* Any thread: the top of conn's stack (set when made, never changed). */
struct zinx__stream *zinx__conn_stream(const zinx_conn_t *conn);
/* The dialer that made conn (a reference is taken), told when it ends. */
void zinx__conn_set_dialer(zinx_conn_t *conn, zinx_dialer_t *dialer);

/* ---- shared_out.c ---------------------------------------------------------
 */

/* One frame encoded once for many connections (a broadcast). */
typedef struct zinx__seg zinx__seg_t;

/* Any thread: encodes (id, data[0..len)) as conn's codec frames it into
   a new segment holding one reference, the caller's; the segment fits
   every connection with the same codec. NULL with *err set when out of
   memory (ZINX_ENOMEM) or when the codec refuses the message (an HTLV
   reply's ID above 255: ZINX_EINVAL, ...). */
zinx__seg_t *zinx__seg_new(const zinx_conn_t *conn, int *err, uint32_t id,
                           const void *data, uint32_t len);
/* Whether seg is framed as conn's codec frames. */
bool zinx__seg_fits(const zinx__seg_t *seg, const zinx_conn_t *conn);
void zinx__seg_unref(zinx__seg_t *seg);
/* Any thread: queues seg for conn, sharing its bytes (a reference is
   taken), in order with the caller's other sends to conn. Returns what
   zinx_conn_send_msg() would: 0, ZINX_ECLOSED, ZINX_ENOBUFS (the
   connection is closed) or ZINX_ENOMEM (likewise). */
int zinx__conn_send_shared(zinx_conn_t *conn, zinx__seg_t *seg);

/* ---- work.c ----------------------------------------------------------------
 */

/* Loop thread of conn: run fn(conn, udata) on conn's handler thread after
   what it was handed so far (at once, inline, without workers). Returns
   0, ZINX_ECLOSED once the connection has ended, or ZINX_ENOMEM. */
int zinx__conn_run_soon(zinx_conn_t *conn, zinx_conn_job_fn fn, void *udata);
/* The loop that owns conn. */
zinx__loop_t *zinx__conn_loop(const zinx_conn_t *conn);

#endif /* ZINX_SRC_CONN_H */
