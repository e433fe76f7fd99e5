/*
 * Socket streams on an io_uring loop (event/uring.h).
 *
 * Receiving: one multishot receive per connection, selecting from the
 * loop's ring of provided buffers. Each completion queues its buffer on
 * the handle and the owner hears ZINX__EV_READ after the iteration's
 * completions; read() copies out of the buffers and gives each back to
 * the ring once empty. What the owner leaves unread (it is paused, or
 * read its fill) is copied to a private `stash` at once, so ring buffers
 * are held only between a completion and the notification after it: a
 * paused connection cannot drain the ring for the others. The receive
 * is cancelled when data arrives while the owner does not want it, or
 * when the stash reaches URING_STASH_MAX, and armed again when wanted:
 * the kernel's socket buffer then fills and TCP pushes back on the peer,
 * as with epoll. A receive that ends (no IORING_CQE_F_MORE: EOF, an
 * error, the cancel, or ENOBUFS when the ring ran dry) is armed again if
 * still wanted; one that ran dry waits its turn for buffers. At most one
 * receive is in flight, so data is never reordered, and ENOBUFS consumes
 * nothing from the socket, so nothing is lost.
 *
 * Sending: writev() copies what it accepts into `queued`, up to
 * URING_SEND_MAX bytes not yet completed, and returns ZINX_EAGAIN when
 * full, as a socket whose buffer is full does; the owner hears
 * ZINX__EV_WRITE when completions make room. One send is in flight at a
 * time, from `sending`, which nothing touches until its completion (a
 * short send resubmits the rest); `queued` goes out behind it. The send
 * request is prepared when the backend flushes, just before its one
 * submission of the iteration, so every write of an iteration leaves in
 * one request and one system call.
 *
 * Closing: the kernel may still write into a provided buffer (owned by
 * the ring, not us) and read `sending`, and completions name the handle.
 * So the handle is on the heap: close() detaches it from the stream (the
 * owner's memory) and cancels what is in flight; what writev() accepted
 * goes to the socket as close() on a socket would send its buffer (see
 * finish_output), then the descriptor is closed; the handle is freed by
 * the last completion, or with the loop if that goes first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/array.h"
#include "event/uring.h"
#include "stream/stream.h"

/* Bytes accepted by writev() and not yet completed: about what a
   socket's send buffer holds before it says EAGAIN on a fast link, so
   back-pressure reaches the owner at the same point on both backends. */
#define URING_SEND_MAX (64u * 1024u)
/* Received bytes held for an owner that does not read them. */
#define URING_STASH_MAX (16u * 1024u)

enum { TAG_RECV = 1, TAG_SEND = 2 };

typedef struct rx_item {
    uint16_t bid;
    uint32_t len;
} rx_item_t;

struct zinx__uring_handle {
    zinx__uring_op_t op;
    zinx__uring_t *u;
    zinx__uring_stream_t *s; /* NULL once closed */
    int fd;
    uint32_t want; /* ZINX__EV_READ | ZINX__EV_WRITE */
    /* Receiving. Older bytes are in the stash, newer in the queue. */
    rx_item_t *rx;
    size_t rx_head, rx_count, rx_cap;
    uint32_t rx_off; /* consumed bytes of rx[rx_head] */
    zinx__buf_t stash;
    bool recv_armed;  /* a multishot receive is in flight */
    bool recv_cancel; /* and its cancel too */
    bool eof;
    bool err_told;
    int err; /* 0 or the negative code that ended the socket */
    /* Sending. */
    zinx__buf_t sending; /* read by the kernel while send_armed */
    zinx__buf_t queued;
    bool send_armed;
    bool send_cancel;
    bool shut_pending; /* shutdown asked for while output was queued */
};

static zinx__uring_stream_t *stream_of(zinx__stream_t *s)
{
    return ZINX__CONTAINER_OF(s, zinx__uring_stream_t, base);
}

static zinx__uring_handle_t *handle_of(zinx__uring_op_t *op)
{
    return ZINX__CONTAINER_OF(op, zinx__uring_handle_t, op);
}

/* ---- the handle's end ---------------------------------------------------- */

/*
 * The stream was closed: what writev() accepted is handed to the kernel
 * as close() on a socket would send what its buffer holds, as much as
 * the socket buffer takes now (the owner dropped the rest of its output
 * too, so nothing is lost that epoll would deliver), and the descriptor
 * is closed. Runs once no send is in flight: the descriptor must stay
 * ours until then, or a new connection given the same number could be
 * written to.
 */
static void finish_output(zinx__uring_handle_t *h)
{
    if (h->fd < 0)
        return;
    if (zinx__buf_move(&h->sending, &h->queued) == 0) {
        while (zinx__buf_size(&h->sending) > 0) {
            ssize_t n =
                send(h->fd, zinx__buf_head(&h->sending),
                     zinx__buf_size(&h->sending), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n <= 0)
                break;
            zinx__buf_consume(&h->sending, (size_t)n);
        }
    }
    zinx__buf_free(&h->sending);
    zinx__buf_free(&h->queued);
    close(h->fd);
    h->fd = -1;
}

static void give_back_rx(zinx__uring_handle_t *h)
{
    for (size_t i = h->rx_head; i < h->rx_count; i++)
        zinx__uring_buffer_return(h->u, h->rx[i].bid);
    h->rx_head = h->rx_count = 0;
    h->rx_off = 0;
}

static void handle_free(zinx__uring_handle_t *h)
{
    free(h->rx);
    zinx__buf_free(&h->stash);
    zinx__buf_free(&h->sending);
    zinx__buf_free(&h->queued);
    free(h);
}

/* A closed handle goes once nothing names it: no request in flight, on
   none of the backend's lists. */
static void maybe_free(zinx__uring_handle_t *h)
{
    zinx__uring_op_t *op = &h->op;
    if (h->s != NULL || h->recv_armed || h->send_armed || op->flushing ||
        op->notifying || op->starving)
        return;
    zinx__uring_unorphan(h->u, op);
    handle_free(h);
}

/* The loop is freed first: no completion will come. The buffers went
   with the ring. */
static void handle_release(zinx__uring_op_t *op)
{
    zinx__uring_handle_t *h = handle_of(op);
    h->rx_head = h->rx_count = 0;
    if (h->fd >= 0)
        close(h->fd);
    handle_free(h);
}

/* ---- state --------------------------------------------------------------- */

static size_t unsent(const zinx__uring_handle_t *h)
{
    return zinx__buf_size(&h->sending) + zinx__buf_size(&h->queued);
}

static size_t room(const zinx__uring_handle_t *h)
{
    size_t n = unsent(h);
    return n >= URING_SEND_MAX ? 0 : URING_SEND_MAX - n;
}

static bool has_input(const zinx__uring_handle_t *h)
{
    return zinx__buf_size(&h->stash) > 0 || h->rx_head < h->rx_count;
}

static bool recv_wanted(const zinx__uring_handle_t *h)
{
    return h->s != NULL && (h->want & ZINX__EV_READ) && !h->eof &&
           h->err == 0 && zinx__buf_size(&h->stash) < URING_STASH_MAX &&
           !h->op.starving;
}

/* Data arrived that nobody will read now, or the stash is full: stop
   the receive, and let the socket buffer push back on the peer. */
static bool recv_unwanted(const zinx__uring_handle_t *h)
{
    if (zinx__buf_size(&h->stash) >= URING_STASH_MAX)
        return true;
    return !(h->want & ZINX__EV_READ) && has_input(h);
}

/* Moves the queued buffers' bytes to the stash and gives the buffers
   back to the ring. */
static int stash_rx(zinx__uring_handle_t *h)
{
    for (size_t i = h->rx_head; i < h->rx_count; i++) {
        rx_item_t *it = &h->rx[i];
        uint32_t off = i == h->rx_head ? h->rx_off : 0;
        const uint8_t *p = zinx__uring_buffer(h->u, it->bid) + off;
        if (zinx__buf_append(&h->stash, p, it->len - off) != 0) {
            give_back_rx(h);
            return ZINX_ENOMEM;
        }
    }
    give_back_rx(h);
    return 0;
}

static void fail(zinx__uring_handle_t *h, int err)
{
    if (h->err == 0)
        h->err = err;
    zinx__uring_notify_later(h->u, &h->op);
}

/* ---- requests ------------------------------------------------------------ */

static bool arm_recv(zinx__uring_handle_t *h)
{
    struct io_uring_sqe *sqe = zinx__uring_sqe(h->u);
    if (sqe == NULL)
        return false;
    io_uring_prep_recv_multishot(sqe, h->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = ZINX__URING_BGID;
    io_uring_sqe_set_data64(sqe, zinx__uring_data(&h->op, TAG_RECV));
    h->recv_armed = true;
    return true;
}

static bool arm_send(zinx__uring_handle_t *h)
{
    /* `sending` is idle: the queue joins what a short send left. */
    if (zinx__buf_move(&h->sending, &h->queued) != 0) {
        fail(h, ZINX_ENOMEM);
        return true;
    }
    struct io_uring_sqe *sqe = zinx__uring_sqe(h->u);
    if (sqe == NULL)
        return false;
    io_uring_prep_send(sqe, h->fd, zinx__buf_head(&h->sending),
                       zinx__buf_size(&h->sending), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, zinx__uring_data(&h->op, TAG_SEND));
    h->send_armed = true;
    return true;
}

static bool cancel(zinx__uring_handle_t *h, unsigned tag, bool *sent)
{
    if (*sent)
        return true;
    struct io_uring_sqe *sqe = zinx__uring_sqe(h->u);
    if (sqe == NULL)
        return false;
    io_uring_prep_cancel64(sqe, zinx__uring_data(&h->op, tag), 0);
    io_uring_sqe_set_data64(sqe, 0);
    *sent = true;
    return true;
}

/* Closed: cancel what is in flight, then wait for the last completion. */
static void flush_closed(zinx__uring_handle_t *h)
{
    bool ok = true;
    if (h->recv_armed)
        ok = cancel(h, TAG_RECV, &h->recv_cancel);
    if (h->send_armed)
        ok = cancel(h, TAG_SEND, &h->send_cancel) && ok;
    if (!ok)
        zinx__uring_flush_later(h->u, &h->op);
    maybe_free(h);
}

/* Just before the iteration's submission. */
static void on_flush(zinx__uring_op_t *op)
{
    zinx__uring_handle_t *h = handle_of(op);
    if (h->s == NULL) {
        flush_closed(h);
        return;
    }
    bool ok = true;
    if (!h->recv_armed && recv_wanted(h))
        ok = arm_recv(h);
    else if (h->recv_armed && recv_unwanted(h))
        ok = cancel(h, TAG_RECV, &h->recv_cancel);
    if (!h->send_armed && unsent(h) > 0 && h->err == 0)
        ok = arm_send(h) && ok;
    if (!ok) /* the submission queue is full: next time */
        zinx__uring_flush_later(h->u, op);
}

/* ---- completions --------------------------------------------------------- */

static void queue_rx(zinx__uring_handle_t *h, uint16_t bid, uint32_t len)
{
    rx_item_t it = {.bid = bid, .len = len};
    if (ZINX__ARRAY_PUSH(h->rx, h->rx_count, h->rx_cap, it) != 0) {
        zinx__uring_buffer_return(h->u, bid);
        fail(h, ZINX_ENOMEM);
        return;
    }
    if (h->want & ZINX__EV_READ) {
        zinx__uring_notify_later(h->u, &h->op);
        return;
    }
    /* Nobody reads now: free the ring's buffer, stop receiving. */
    if (stash_rx(h) != 0)
        fail(h, ZINX_ENOMEM);
    zinx__uring_flush_later(h->u, &h->op);
}

static void recv_ended(zinx__uring_handle_t *h, int32_t res)
{
    h->recv_armed = false;
    h->recv_cancel = false;
    if (h->s == NULL)
        return;
    if (res == -ENOBUFS) {
        zinx__uring_wait_buffers(h->u, &h->op); /* nothing was consumed */
        return;
    }
    if (res < 0 && res != -ECANCELED)
        fail(h, res);
    zinx__uring_flush_later(h->u, &h->op); /* armed again if wanted */
}

static void on_recv(zinx__uring_handle_t *h, int32_t res, uint32_t flags)
{
    if (flags & IORING_CQE_F_BUFFER) {
        uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
        if (h->s == NULL || res <= 0)
            zinx__uring_buffer_return(h->u, bid);
        else
            queue_rx(h, bid, (uint32_t)res);
    }
    if (res == 0 && h->s != NULL) {
        h->eof = true;
        zinx__uring_notify_later(h->u, &h->op);
    }
    if (!(flags & IORING_CQE_F_MORE))
        recv_ended(h, res);
}

static void on_send(zinx__uring_handle_t *h, int32_t res)
{
    h->send_armed = false;
    h->send_cancel = false;
    if (h->s == NULL) {
        /* A cancelled send sent nothing of what it still had. */
        if (res > 0)
            zinx__buf_consume(&h->sending, (size_t)res);
        finish_output(h);
        return;
    }
    if (res < 0) {
        fail(h, res == -ECANCELED ? ZINX_EPIPE : res);
        return;
    }
    zinx__buf_consume(&h->sending, (size_t)res);
    if (unsent(h) > 0) {
        zinx__uring_flush_later(h->u, &h->op); /* the rest, or the queue */
    } else if (h->shut_pending) {
        h->shut_pending = false;
        shutdown(h->fd, SHUT_WR);
    }
    if (h->want & ZINX__EV_WRITE)
        zinx__uring_notify_later(h->u, &h->op);
}

static void on_cqe(zinx__uring_op_t *op, unsigned tag, int32_t res,
                   uint32_t flags)
{
    zinx__uring_handle_t *h = handle_of(op);
    if (tag == TAG_RECV)
        on_recv(h, res, flags);
    else
        on_send(h, res);
    maybe_free(h);
}

/* ---- notifications ------------------------------------------------------- */

static uint32_t ready_events(zinx__uring_handle_t *h)
{
    uint32_t ev = 0;
    if ((h->want & ZINX__EV_READ) && (has_input(h) || h->eof))
        ev |= ZINX__EV_READ;
    if ((h->want & ZINX__EV_WRITE) && room(h) > 0 && h->err == 0)
        ev |= ZINX__EV_WRITE;
    return ev;
}

static void on_notify(zinx__uring_op_t *op)
{
    zinx__uring_handle_t *h = handle_of(op);
    if (h->s == NULL) {
        maybe_free(h);
        return;
    }
    uint32_t ev = ready_events(h);
    /* An error is told once; the owner then asks for it and closes. */
    if (h->err != 0 && !h->err_told) {
        h->err_told = true;
        ev |= ZINX__EV_ERROR;
    }
    if (ev == 0)
        return;
    zinx__uring_stream_t *us = h->s;
    us->on_ready(us->owner, ev); /* may close the stream */
    if (h->s == NULL) {
        maybe_free(h);
        return;
    }
    if (h->rx_head < h->rx_count && stash_rx(h) != 0)
        fail(h, ZINX_ENOMEM);
    /* Level-triggered, as epoll: still ready, told again. */
    if (ready_events(h) & ev)
        zinx__uring_notify_later(h->u, op);
    if (h->recv_armed ? recv_unwanted(h) : recv_wanted(h))
        zinx__uring_flush_later(h->u, op);
}

/* ---- the stream's operations --------------------------------------------- */

static int us_start(zinx__stream_t *s, zinx__loop_t *loop,
                    zinx__stream_ready_fn on_ready, void *owner)
{
    zinx__uring_stream_t *us = stream_of(s);
    zinx__uring_handle_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return ZINX_ENOMEM;
    h->op.on_cqe = on_cqe;
    h->op.on_flush = on_flush;
    h->op.on_notify = on_notify;
    h->op.release = handle_release;
    h->u = zinx__loop_uring(loop);
    h->s = us;
    h->fd = us->fd;
    us->h = h;
    us->on_ready = on_ready;
    us->owner = owner;
    return 0;
}

static size_t copy_rx(zinx__uring_handle_t *h, uint8_t *dst, size_t len)
{
    size_t n = 0;
    while (n < len && h->rx_head < h->rx_count) {
        rx_item_t *it = &h->rx[h->rx_head];
        size_t take = it->len - h->rx_off;
        if (take > len - n)
            take = len - n;
        memcpy(dst + n, zinx__uring_buffer(h->u, it->bid) + h->rx_off, take);
        n += take;
        h->rx_off += (uint32_t)take;
        if (h->rx_off == it->len) {
            zinx__uring_buffer_return(h->u, it->bid);
            h->rx_head++;
            h->rx_off = 0;
        }
    }
    if (h->rx_head == h->rx_count)
        h->rx_head = h->rx_count = 0;
    return n;
}

static ssize_t us_read(zinx__stream_t *s, void *buf, size_t len)
{
    zinx__uring_handle_t *h = stream_of(s)->h;
    if (h == NULL)
        return ZINX_ECLOSED;
    size_t n = zinx__buf_size(&h->stash);
    if (n > len)
        n = len;
    if (n > 0) {
        memcpy(buf, zinx__buf_head(&h->stash), n);
        zinx__buf_consume(&h->stash, n);
    }
    n += copy_rx(h, (uint8_t *)buf + n, len - n);
    if (n > 0) {
        if (!h->recv_armed && recv_wanted(h))
            zinx__uring_flush_later(h->u, &h->op); /* the stash had room */
        return (ssize_t)n;
    }
    if (h->err != 0)
        return h->err;
    return h->eof ? 0 : ZINX_EAGAIN;
}

static ssize_t us_writev(zinx__stream_t *s, const struct iovec *iov, int n)
{
    zinx__uring_handle_t *h = stream_of(s)->h;
    if (h == NULL)
        return ZINX_ECLOSED;
    if (h->err != 0)
        return h->err;
    size_t left = room(h), taken = 0;
    if (left == 0)
        return ZINX_EAGAIN;
    for (int i = 0; i < n && left > 0; i++) {
        size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
        if (zinx__buf_append(&h->queued, iov[i].iov_base, k) != 0)
            break;
        taken += k;
        left -= k;
    }
    if (taken == 0)
        return ZINX_ENOMEM;
    if (!h->send_armed)
        zinx__uring_flush_later(h->u, &h->op);
    return (ssize_t)taken;
}

/* Our FIN goes after what was written: at once when nothing is left,
   else once the last send completes. */
static int us_shutdown(zinx__stream_t *s)
{
    zinx__uring_handle_t *h = stream_of(s)->h;
    if (h == NULL)
        return ZINX_ECLOSED;
    if (unsent(h) > 0) {
        h->shut_pending = true;
        return 0;
    }
    return shutdown(h->fd, SHUT_WR) == 0 ? 0 : -errno;
}

static int us_want(zinx__stream_t *s, uint32_t events)
{
    zinx__uring_handle_t *h = stream_of(s)->h;
    if (h == NULL)
        return 0;
    h->want = events;
    if (ready_events(h) != 0)
        zinx__uring_notify_later(h->u, &h->op);
    if (!(events & ZINX__EV_READ) && h->rx_head < h->rx_count &&
        stash_rx(h) != 0)
        fail(h, ZINX_ENOMEM);
    if (h->recv_armed ? recv_unwanted(h) : recv_wanted(h))
        zinx__uring_flush_later(h->u, &h->op);
    return 0;
}

static size_t us_unacked(zinx__stream_t *s)
{
    zinx__uring_handle_t *h = stream_of(s)->h;
    if (h == NULL)
        return 0;
    return unsent(h) + zinx__sock_outq(h->fd);
}

static long us_since_ack_ms(zinx__stream_t *s)
{
    zinx__uring_stream_t *us = stream_of(s);
    if (us->h == NULL)
        return -1;
    return zinx__sock_since_ack_ms(us->h->fd, us->tcp);
}

static int us_error(zinx__stream_t *s)
{
    zinx__uring_handle_t *h = stream_of(s)->h;
    return h != NULL && h->err != 0 ? h->err : ZINX_ECONNRESET;
}

static void us_close(zinx__stream_t *s)
{
    zinx__uring_stream_t *us = stream_of(s);
    zinx__uring_handle_t *h = us->h;
    if (h == NULL) { /* never started */
        if (us->fd >= 0)
            close(us->fd);
        us->fd = -1;
        return;
    }
    us->h = NULL;
    us->fd = -1; /* the handle's from now on */
    h->s = NULL;
    give_back_rx(h);
    zinx__buf_free(&h->stash);
    zinx__uring_orphan(h->u, &h->op);
    if (!h->send_armed)
        finish_output(h);
    zinx__uring_flush_later(h->u, &h->op); /* cancels, then maybe_free */
}

static void us_rebind(zinx__stream_t *s, zinx__stream_ready_fn on_ready,
                      void *owner)
{
    zinx__uring_stream_t *us = stream_of(s);
    us->on_ready = on_ready;
    us->owner = owner;
}

static const zinx__stream_ops_t uring_sock_ops = {
    .name = "io_uring socket",
    .start = us_start,
    .read = us_read,
    .writev = us_writev,
    .shutdown = us_shutdown,
    .want = us_want,
    .handshake = NULL,
    .unacked = us_unacked,
    .since_ack_ms = us_since_ack_ms,
    .error = us_error,
    .close = us_close,
    .rebind = us_rebind,
};

void zinx__uring_stream_init(zinx__uring_stream_t *us, int fd)
{
    memset(us, 0, sizeof(*us));
    us->base.ops = &uring_sock_ops;
    us->fd = fd;
    us->tcp = zinx__sock_prepare(fd, &us->base);
}

zinx__stream_t *zinx__transport_init(zinx__transport_t *t, zinx__loop_t *loop,
                                     int fd)
{
    if (zinx__loop_uring(loop) != NULL) {
        zinx__uring_stream_init(&t->uring, fd);
        return &t->uring.base;
    }
    zinx__sock_stream_init(&t->sock, fd);
    return &t->sock.base;
}
