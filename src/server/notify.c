/*
 * Notify and broadcast: one message to a list of connection IDs or to
 * every connection, encoded once and shared (conn/shared_out.c).
 */
#include "internal.h"

typedef struct fanout {
    uint32_t id;
    uint32_t len;
    const void *data;
    zinx__seg_t *seg; /* encoded for the first connection's codec */
    int queued;
    int err; /* why the encoding failed: ZINX_ENOMEM, or the codec's
                refusal (ZINX_EINVAL for an HTLV ID above 255) */
} fanout_t;

static int check_args(const zinx_server_t *s, const void *data, uint32_t len)
{
    if (s == NULL || (data == NULL && len > 0))
        return ZINX_EINVAL;
    return len > s->cfg.max_packet_size ? ZINX_EMSGSIZE : 0;
}

/* Encoded at the first connection, with its codec: every connection of
   a server frames alike, so once is all; a connection framed otherwise
   would get its own encoding rather than wrong bytes. */
static bool encode_for(fanout_t *f, const zinx_conn_t *c)
{
    if (f->seg != NULL && zinx__seg_fits(f->seg, c))
        return true;
    zinx__seg_t *seg = zinx__seg_new(c, &f->err, f->id, f->data, f->len);
    if (seg == NULL)
        return false;
    if (f->seg != NULL)
        zinx__seg_unref(f->seg);
    f->seg = seg;
    return true;
}

static void deliver(fanout_t *f, zinx_conn_t *c)
{
    /* A connection that refuses it (closing, over its limit, out of
       memory) is handled by the send itself; the others go on. */
    if (encode_for(f, c) && zinx__conn_send_shared(c, f->seg) == 0)
        f->queued++;
}

/* Drops the caller's reference (the connections hold theirs). */
static int finish(fanout_t *f, int rc)
{
    if (f->seg != NULL)
        zinx__seg_unref(f->seg);
    if (rc < 0)
        return rc;
    return f->queued == 0 && f->err != 0 ? f->err : f->queued;
}

int zinx__server_notify_local(zinx_server_t *s, const uint64_t *ids, size_t n,
                              uint32_t msg_id, const void *data, uint32_t len)
{
    fanout_t f = {.id = msg_id, .len = len, .data = data};
    for (size_t i = 0; i < n; i++) {
        zinx_conn_t *c = zinx_connmgr_get(s->mgr, ids[i]);
        if (c == NULL)
            continue;
        deliver(&f, c);
        zinx_conn_unref(c);
    }
    return finish(&f, 0);
}

/* With a cluster, one predictable branch more; without, the same path as
   before (the instruction budgets of `make bench-instr` hold it). */
int zinx_server_notify(zinx_server_t *s, const uint64_t *ids, size_t n,
                       uint32_t msg_id, const void *data, uint32_t len)
{
    if (ids == NULL && n > 0)
        return ZINX_EINVAL;
    int rc = check_args(s, data, len);
    if (rc != 0)
        return rc;
    if (__builtin_expect(s->clustered, 0))
        return zinx__cluster_notify(s, ids, n, msg_id, data, len);
    return zinx__server_notify_local(s, ids, n, msg_id, data, len);
}

static int visit(zinx_conn_t *c, void *udata)
{
    deliver(udata, c);
    return 0;
}

int zinx__server_broadcast_local(zinx_server_t *s, uint32_t msg_id,
                                 const void *data, uint32_t len)
{
    fanout_t f = {.id = msg_id, .len = len, .data = data};
    return finish(&f, zinx_connmgr_foreach(s->mgr, visit, &f));
}

int zinx_server_broadcast(zinx_server_t *s, uint32_t msg_id, const void *data,
                          uint32_t len)
{
    int rc = check_args(s, data, len);
    if (rc != 0)
        return rc;
    if (__builtin_expect(s->clustered, 0))
        return zinx__cluster_broadcast(s, msg_id, data, len);
    return zinx__server_broadcast_local(s, msg_id, data, len);
}
