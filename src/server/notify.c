/*
 * Notify and broadcast: one message to a list of connection IDs or to
 * every connection, encoded once and shared (conn/shared_out.c).
 */
#include "internal.h"

typedef struct fanout {
    zinx__seg_t *seg;
    int queued;
} fanout_t;

/* Checks the arguments and encodes the one segment. */
static int make_seg(zinx_server_t *s, uint32_t id, const void *data,
                    uint32_t len, zinx__seg_t **seg)
{
    if (s == NULL || (data == NULL && len > 0))
        return ZINX_EINVAL;
    if (len > s->cfg.max_packet_size)
        return ZINX_EMSGSIZE;
    *seg = zinx__seg_new(s, id, data, len);
    return *seg != NULL ? 0 : ZINX_ENOMEM;
}

static void deliver(fanout_t *f, zinx_conn_t *c)
{
    /* A connection that refuses it (closing, over its limit, out of
       memory) is handled by the send itself; the others go on. */
    if (zinx__conn_send_shared(c, f->seg) == 0)
        f->queued++;
}

int zinx_server_notify(zinx_server_t *s, const uint64_t *ids, size_t n,
                       uint32_t msg_id, const void *data, uint32_t len)
{
    if (ids == NULL && n > 0)
        return ZINX_EINVAL;
    fanout_t f = {.seg = NULL, .queued = 0};
    int rc = make_seg(s, msg_id, data, len, &f.seg);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        zinx_conn_t *c = zinx_connmgr_get(s->mgr, ids[i]);
        if (c == NULL)
            continue;
        deliver(&f, c);
        zinx_conn_unref(c);
    }
    zinx__seg_unref(f.seg); /* the connections hold theirs */
    return f.queued;
}

static int visit(zinx_conn_t *c, void *udata)
{
    deliver(udata, c);
    return 0;
}

int zinx_server_broadcast(zinx_server_t *s, uint32_t msg_id, const void *data,
                          uint32_t len)
{
    fanout_t f = {.seg = NULL, .queued = 0};
    int rc = make_seg(s, msg_id, data, len, &f.seg);
    if (rc != 0)
        return rc;
    rc = zinx_connmgr_foreach(s->mgr, visit, &f);
    zinx__seg_unref(f.seg);
    return rc < 0 ? rc : f.queued;
}
