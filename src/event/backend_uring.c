/*
 * The io_uring backend.
 *
 * Completions are its own business (see uring.h): multishot accept and
 * receive, sends, cancels. Readiness, which the reactor still offers for
 * what has no completion form here (a dialer's connect, a listener's
 * rest), is emulated with one-shot POLL_ADD requests re-armed after each
 * report, which is level-triggered as epoll is. The cross-thread wake-up
 * is a READ request on an eventfd.
 *
 * The ring has IORING_SETUP_SINGLE_ISSUER and IORING_SETUP_DEFER_TASKRUN
 * when the kernel has them: completions are then processed only when the
 * loop enters the kernel to wait, never by interrupting it. The single
 * issuer is the loop thread, so the ring is made disabled with the loop
 * and enabled by that thread at its first wait. open() first probes, on
 * a throw-away ring, whether the kernel gives us what we need, so that
 * the server can fall back to epoll before any thread runs.
 *
 * One iteration: prepare what ops asked to flush; one
 * io_uring_submit_and_wait (with the loop's timeout); hand every
 * completion to its op; run the notifications.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "event/backend.h"
#include "event/event.h"
#include "event/uring.h"

/*
 * ThreadSanitizer and ring memory. liburing maps a ring's memory with
 * its own system calls, which TSan does not see, so when one ring is
 * unmapped and the next is mapped at the same address (rings of two
 * servers or clients opened from different threads), TSan takes the
 * new ring's first accesses for races with the old ring's last ones.
 * Every ring's end is therefore published (release) and every ring's
 * start takes it in (acquire), on one key: the kernel orders the unmap
 * before the map, and this tells TSan so. Nothing in other builds.
 */
#if defined(__SANITIZE_THREAD__)
#define URING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define URING_TSAN 1
#endif
#endif

#ifdef URING_TSAN
#include <sanitizer/tsan_interface.h>

static const char ring_memory_key;

static void ring_memory_taken(void)
{
    __tsan_acquire((void *)&ring_memory_key);
}

static void ring_memory_given_back(void)
{
    __tsan_release((void *)&ring_memory_key);
}
#else
static void ring_memory_taken(void)
{
}

static void ring_memory_given_back(void)
{
}
#endif

/* Submission queue entries; the completion queue gets twice as many. A
   full queue is submitted early, so this bounds only the batching. */
#define URING_ENTRIES 2048
/* Completions handled per wait before the notifications run. */
#define URING_HARVEST_MAX 1024
#define URING_BATCH 128
/* Receive buffers: URING_BUFFERS of URING_BUFFER_SIZE bytes per loop. */
#define URING_BUFFERS 256
#define URING_BUFFER_SIZE 4096

/* A descriptor registered for readiness (the reactor's I/O handles). */
typedef struct poll_rec {
    zinx__uring_op_t op;
    zinx__uring_t *u;
    int fd;
    void *ptr;         /* the I/O handle reported to the loop */
    uint32_t interest; /* ZINX__EV_READ | ZINX__EV_WRITE */
    uint32_t armed;    /* the mask of the poll in flight; 0: none */
    bool cancelling;   /* a poll remove is on its way */
    bool dead;         /* unregistered: free once nothing is in flight */
} poll_rec_t;

struct zinx__uring {
    struct io_uring ring;
    bool ring_up;
    bool enabled; /* by the loop thread, its single issuer */
    unsigned setup_flags;
    uint64_t *clock; /* the loop's, refreshed when a wait returns */
    int wakefd;
    uint64_t wake_value;
    zinx__uring_op_t wake_op;
    poll_rec_t **by_fd; /* the readiness registrations, by descriptor */
    size_t by_fd_cap;
    /* Provided buffers. */
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    uint32_t nbufs, buf_size, buf_free;
    /* Ops waiting for a flush, a notification or buffers. */
    zinx__uring_op_t *flush_head, *notify_head;
    zinx__uring_op_t *starve_head, *starve_tail;
    zinx__uring_op_t *orphans;
    /* Readiness reports of the wait under way. */
    zinx__ready_t *out;
    int nout, maxout;
};

/* ---- lists --------------------------------------------------------------- */

void zinx__uring_flush_later(zinx__uring_t *u, zinx__uring_op_t *op)
{
    if (op->flushing)
        return;
    op->flushing = true;
    op->flush_next = u->flush_head;
    u->flush_head = op;
}

void zinx__uring_notify_later(zinx__uring_t *u, zinx__uring_op_t *op)
{
    if (op->notifying)
        return;
    op->notifying = true;
    op->notify_next = u->notify_head;
    u->notify_head = op;
}

void zinx__uring_wait_buffers(zinx__uring_t *u, zinx__uring_op_t *op)
{
    if (op->starving)
        return;
    op->starving = true;
    op->starve_next = NULL;
    if (u->starve_tail != NULL)
        u->starve_tail->starve_next = op;
    else
        u->starve_head = op;
    u->starve_tail = op;
}

void zinx__uring_orphan(zinx__uring_t *u, zinx__uring_op_t *op)
{
    if (op->orphaned)
        return;
    op->orphaned = true;
    op->orphan_prev = NULL;
    op->orphan_next = u->orphans;
    if (u->orphans != NULL)
        u->orphans->orphan_prev = op;
    u->orphans = op;
}

void zinx__uring_unorphan(zinx__uring_t *u, zinx__uring_op_t *op)
{
    if (!op->orphaned)
        return;
    op->orphaned = false;
    if (op->orphan_prev != NULL)
        op->orphan_prev->orphan_next = op->orphan_next;
    else
        u->orphans = op->orphan_next;
    if (op->orphan_next != NULL)
        op->orphan_next->orphan_prev = op->orphan_prev;
}

/* Each walk takes the whole list first: what is listed again while it
   runs waits for the next iteration, so a walk always ends. */
static void run_flushes(zinx__uring_t *u)
{
    zinx__uring_op_t *op = u->flush_head;
    u->flush_head = NULL;
    while (op != NULL) {
        zinx__uring_op_t *next = op->flush_next;
        op->flushing = false;
        op->on_flush(op); /* may free op */
        op = next;
    }
}

static void run_notifications(zinx__uring_t *u)
{
    zinx__uring_op_t *op = u->notify_head;
    u->notify_head = NULL;
    while (op != NULL) {
        zinx__uring_op_t *next = op->notify_next;
        op->notifying = false;
        op->on_notify(op); /* may free op */
        op = next;
    }
}

/* Receives that ran dry are armed again, oldest first, one per free
   buffer: arming more would only see them run dry again at once. */
static void feed_starved(zinx__uring_t *u)
{
    uint32_t budget = u->buf_free;
    while (u->starve_head != NULL && budget > 0) {
        zinx__uring_op_t *op = u->starve_head;
        u->starve_head = op->starve_next;
        if (u->starve_head == NULL)
            u->starve_tail = NULL;
        op->starving = false;
        zinx__uring_flush_later(u, op);
        budget--;
    }
}

/* ---- submission ---------------------------------------------------------- */

struct io_uring_sqe *zinx__uring_sqe(zinx__uring_t *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe == NULL && io_uring_submit(&u->ring) >= 0)
        sqe = io_uring_get_sqe(&u->ring);
    return sqe;
}

/* ---- provided buffers ---------------------------------------------------- */

uint8_t *zinx__uring_buffer(zinx__uring_t *u, uint16_t bid)
{
    return u->bufs + (size_t)bid * u->buf_size;
}

uint32_t zinx__uring_buffer_size(const zinx__uring_t *u)
{
    return u->buf_size;
}

void zinx__uring_buffer_return(zinx__uring_t *u, uint16_t bid)
{
    io_uring_buf_ring_add(u->br, zinx__uring_buffer(u, bid), u->buf_size, bid,
                          io_uring_buf_ring_mask(u->nbufs), 0);
    io_uring_buf_ring_advance(u->br, 1);
    u->buf_free++;
}

/* The ring of buffer descriptors must be page-aligned. */
static int alloc_buffers(zinx__uring_t *u, uint32_t count)
{
    u->nbufs = count;
    u->buf_size = URING_BUFFER_SIZE;
    size_t ring_bytes = (size_t)count * sizeof(struct io_uring_buf);
    void *br = NULL;
    if (posix_memalign(&br, 4096, ring_bytes) != 0)
        return -ENOMEM;
    u->br = br;
    u->bufs = malloc((size_t)count * u->buf_size);
    return u->bufs == NULL ? -ENOMEM : 0;
}

static int register_buffers(zinx__uring_t *u)
{
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)u->br;
    reg.ring_entries = u->nbufs;
    reg.bgid = ZINX__URING_BGID;
    int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc != 0)
        return rc;
    io_uring_buf_ring_init(u->br);
    for (uint32_t i = 0; i < u->nbufs; i++)
        io_uring_buf_ring_add(u->br, zinx__uring_buffer(u, (uint16_t)i),
                              u->buf_size, (uint16_t)i,
                              io_uring_buf_ring_mask(u->nbufs), (int)i);
    io_uring_buf_ring_advance(u->br, (int)u->nbufs);
    u->buf_free = u->nbufs;
    return 0;
}

/* ---- the wake-up --------------------------------------------------------- */

enum { TAG_WAKE = 1, TAG_POLL = 2 };

static void wake_flush(zinx__uring_op_t *op)
{
    zinx__uring_t *u = ZINX__CONTAINER_OF(op, zinx__uring_t, wake_op);
    struct io_uring_sqe *sqe = zinx__uring_sqe(u);
    if (sqe == NULL) {
        zinx__uring_flush_later(u, op);
        return;
    }
    io_uring_prep_read(sqe, u->wakefd, &u->wake_value, sizeof(u->wake_value),
                       0);
    io_uring_sqe_set_data64(sqe, zinx__uring_data(op, TAG_WAKE));
}

static void report(zinx__uring_t *u, void *ptr, uint32_t events)
{
    if (u->nout < u->maxout)
        u->out[u->nout++] = (zinx__ready_t){.ptr = ptr, .events = events};
}

static void wake_cqe(zinx__uring_op_t *op, unsigned tag, int32_t res,
                     uint32_t flags)
{
    ZINX__UNUSED(tag);
    ZINX__UNUSED(res);
    ZINX__UNUSED(flags);
    zinx__uring_t *u = ZINX__CONTAINER_OF(op, zinx__uring_t, wake_op);
    report(u, NULL, ZINX__EV_READ);
    zinx__uring_flush_later(u, op);
}

/* ---- readiness ----------------------------------------------------------- */

static void poll_free(zinx__uring_t *u, poll_rec_t *p)
{
    zinx__uring_unorphan(u, &p->op);
    free(p);
}

static void poll_arm(zinx__uring_t *u, poll_rec_t *p)
{
    if (p->dead) {
        if (p->armed == 0)
            poll_free(u, p);
        return;
    }
    if (p->armed != 0 || p->interest == 0)
        return;
    struct io_uring_sqe *sqe = zinx__uring_sqe(u);
    if (sqe == NULL) {
        zinx__uring_flush_later(u, &p->op);
        return;
    }
    io_uring_prep_poll_add(sqe, p->fd, p->interest & (POLLIN | POLLOUT));
    io_uring_sqe_set_data64(sqe, zinx__uring_data(&p->op, TAG_POLL));
    p->armed = p->interest;
}

static void poll_cancel(zinx__uring_t *u, poll_rec_t *p)
{
    if (p->armed == 0 || p->cancelling)
        return;
    struct io_uring_sqe *sqe = zinx__uring_sqe(u);
    if (sqe == NULL)
        return; /* the poll fires or is removed with the ring */
    io_uring_prep_poll_remove(sqe, zinx__uring_data(&p->op, TAG_POLL));
    io_uring_sqe_set_data64(sqe, 0);
    p->cancelling = true;
}

static void poll_cqe(zinx__uring_op_t *op, unsigned tag, int32_t res,
                     uint32_t flags)
{
    ZINX__UNUSED(tag);
    ZINX__UNUSED(flags);
    poll_rec_t *p = ZINX__CONTAINER_OF(op, poll_rec_t, op);
    zinx__uring_t *u = p->u;
    p->armed = 0;
    p->cancelling = false;
    if (p->dead) {
        if (!op->flushing)
            poll_free(u, p);
        return;
    }
    uint32_t ev =
        res > 0 ? (uint32_t)res & (POLLIN | POLLOUT | POLLERR | POLLHUP) : 0;
    ev &= p->interest | ZINX__EV_ERROR | ZINX__EV_HUP;
    if (ev != 0)
        report(u, p->ptr, ev);
    zinx__uring_flush_later(u, op); /* level-triggered: armed again */
}

static void poll_flush_op(zinx__uring_op_t *op)
{
    poll_rec_t *p = ZINX__CONTAINER_OF(op, poll_rec_t, op);
    poll_arm(p->u, p);
}

static void poll_release(zinx__uring_op_t *op)
{
    free(ZINX__CONTAINER_OF(op, poll_rec_t, op));
}

static int grow_by_fd(zinx__uring_t *u, int fd)
{
    if ((size_t)fd < u->by_fd_cap)
        return 0;
    size_t cap = u->by_fd_cap ? u->by_fd_cap : 64;
    while (cap <= (size_t)fd)
        cap *= 2;
    poll_rec_t **p = realloc(u->by_fd, cap * sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    memset(p + u->by_fd_cap, 0, (cap - u->by_fd_cap) * sizeof(*p));
    u->by_fd = p;
    u->by_fd_cap = cap;
    return 0;
}

static int poll_add(zinx__uring_t *u, int fd, void *ptr, uint32_t interest)
{
    if (grow_by_fd(u, fd) != 0)
        return -ENOMEM;
    if (u->by_fd[fd] != NULL)
        return -EEXIST;
    poll_rec_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->u = u;
    p->op.on_cqe = poll_cqe;
    p->op.on_flush = poll_flush_op;
    p->op.release = poll_release;
    p->fd = fd;
    p->ptr = ptr;
    p->interest = interest;
    /* Listed from the start: if the loop goes before the last
       completion, the record goes with it. */
    zinx__uring_orphan(u, &p->op);
    u->by_fd[fd] = p;
    zinx__uring_flush_later(u, &p->op);
    return 0;
}

static int poll_mod(zinx__uring_t *u, int fd, uint32_t interest)
{
    if ((size_t)fd >= u->by_fd_cap || u->by_fd[fd] == NULL)
        return -ENOENT;
    poll_rec_t *p = u->by_fd[fd];
    p->interest = interest;
    /* A poll for less than is wanted now is replaced; one for more only
       reports what is filtered out. */
    if (p->armed != 0 && (interest & ~p->armed) != 0)
        poll_cancel(u, p);
    zinx__uring_flush_later(u, &p->op);
    return 0;
}

static int poll_del(zinx__uring_t *u, int fd)
{
    if ((size_t)fd >= u->by_fd_cap || u->by_fd[fd] == NULL)
        return -ENOENT;
    poll_rec_t *p = u->by_fd[fd];
    u->by_fd[fd] = NULL;
    p->dead = true;
    p->ptr = NULL;
    poll_cancel(u, p);
    /* Freed by the flush (nothing in flight) or by the last completion. */
    zinx__uring_flush_later(u, &p->op);
    return 0;
}

/* ---- opening ------------------------------------------------------------- */

/*
 * Whether the kernel gives what the streams need: a buffer ring, and a
 * multishot receive that selects from it (Linux 6.0). Tried on a socket
 * pair with the real thing, since neither shows in the opcode probe.
 */
static int probe_recv_multishot(zinx__uring_t *tmp)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    struct io_uring *ring = &tmp->ring;
    int rc = alloc_buffers(tmp, 8);
    if (rc == 0)
        rc = register_buffers(tmp);
    struct io_uring_sqe *sqe = rc == 0 ? io_uring_get_sqe(ring) : NULL;
    if (sqe != NULL) {
        io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = ZINX__URING_BGID;
        io_uring_sqe_set_data64(sqe, 1);
        rc = write(sv[1], "x", 1) == 1 ? io_uring_submit_and_wait(ring, 1)
                                       : -errno;
    }
    struct io_uring_cqe *cqe;
    if (rc >= 0 && io_uring_peek_cqe(ring, &cqe) == 0) {
        bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
        rc = cqe->res == 1 && more ? 0 : cqe->res < 0 ? cqe->res : -EINVAL;
        io_uring_cqe_seen(ring, cqe);
    } else if (rc >= 0) {
        rc = -EINVAL;
    }
    close(sv[0]);
    close(sv[1]);
    return rc;
}

static int probe_opcodes(struct io_uring *ring)
{
    static const int ops[] = {IORING_OP_ACCEPT,      IORING_OP_RECV,
                              IORING_OP_SEND,        IORING_OP_READ,
                              IORING_OP_POLL_ADD,    IORING_OP_POLL_REMOVE,
                              IORING_OP_ASYNC_CANCEL};
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (probe == NULL)
        return -ENOSYS;
    int rc = 0;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (!io_uring_opcode_supported(probe, ops[i]))
            rc = -EOPNOTSUPP;
    }
    io_uring_free_probe(probe);
    if (rc == 0 && !(ring->features & IORING_FEAT_EXT_ARG))
        rc = -EOPNOTSUPP; /* the wait's timeout would cost a request */
    return rc;
}

/* Creates a ring with the best flags the kernel takes; `disabled`
   leaves it to be enabled by the thread that will submit. */
static int ring_init(struct io_uring *ring, unsigned *flags, bool disabled)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_SUBMIT_ALL;
    if (disabled)
        p.flags |= IORING_SETUP_R_DISABLED;
    int rc = io_uring_queue_init_params(URING_ENTRIES, ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof(p));
        rc = io_uring_queue_init_params(URING_ENTRIES, ring, &p);
    }
    if (rc == 0) {
        *flags = p.flags;
        ring_memory_taken();
    }
    return rc;
}

static int probe(void)
{
    zinx__uring_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    unsigned flags;
    int rc = ring_init(&tmp.ring, &flags, false);
    if (rc != 0)
        return rc;
    rc = probe_opcodes(&tmp.ring);
    if (rc == 0)
        rc = probe_recv_multishot(&tmp);
    ring_memory_given_back();
    io_uring_queue_exit(&tmp.ring); /* before the buffers it used */
    free(tmp.br);
    free(tmp.bufs);
    return rc;
}

static void uring_close(void *state)
{
    zinx__uring_t *u = state;
    if (u == NULL)
        return;
    if (u->ring_up) {
        ring_memory_given_back();
        io_uring_queue_exit(&u->ring); /* cancels what is in flight */
    }
    /* Ops still waiting for completions will get none now. */
    while (u->orphans != NULL) {
        zinx__uring_op_t *op = u->orphans;
        zinx__uring_unorphan(u, op);
        op->release(op);
    }
    if (u->wakefd >= 0)
        close(u->wakefd);
    free(u->by_fd);
    free(u->br);
    free(u->bufs);
    free(u);
}

/* Made (disabled) with the loop, so that its descriptor exists from the
   start; the loop thread enables it at its first wait and becomes the
   ring's single issuer. */
static int ring_up(zinx__uring_t *u)
{
    int rc = ring_init(&u->ring, &u->setup_flags, true);
    if (rc != 0)
        return rc;
    u->ring_up = true;
    return register_buffers(u);
}

static void *uring_open(const zinx__backend_conf_t *conf)
{
    int rc = probe();
    if (rc != 0) {
        errno = -rc;
        return NULL;
    }
    zinx__uring_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    /* Blocking: a READ request on a non-blocking eventfd would fail with
       EAGAIN instead of waiting. Writers never block (the counter would
       have to reach 2^64 - 2). */
    u->clock = conf != NULL ? conf->clock : NULL;
    u->wakefd = eventfd(0, EFD_CLOEXEC);
    uint32_t count =
        conf != NULL && conf->buffers != 0 ? conf->buffers : URING_BUFFERS;
    rc = u->wakefd < 0 ? -errno : alloc_buffers(u, count);
    if (rc == 0)
        rc = ring_up(u);
    if (rc != 0) {
        uring_close(u);
        errno = -rc;
        return NULL;
    }
    u->wake_op.on_cqe = wake_cqe;
    u->wake_op.on_flush = wake_flush;
    zinx__uring_flush_later(u, &u->wake_op);
    return u;
}

/* ---- the backend's operations -------------------------------------------- */

static int uring_ctl(void *state, int fd, void *ptr, int op, uint32_t interest)
{
    zinx__uring_t *u = state;
    if (op == ZINX__CTL_ADD)
        return poll_add(u, fd, ptr, interest);
    if (op == ZINX__CTL_MOD)
        return poll_mod(u, fd, interest);
    return poll_del(u, fd);
}

typedef struct cqe_copy {
    uint64_t data;
    int32_t res;
    uint32_t flags;
} cqe_copy_t;

/* Copies a batch out of the queue and frees its slots before the ops
   run, so that what they do never depends on the queue's state. */
static unsigned take_batch(zinx__uring_t *u, cqe_copy_t *batch)
{
    unsigned head, n = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        batch[n++] = (cqe_copy_t){
            .data = cqe->user_data, .res = cqe->res, .flags = cqe->flags};
        if (n == URING_BATCH)
            break;
    }
    io_uring_cq_advance(&u->ring, n);
    return n;
}

static void harvest(zinx__uring_t *u)
{
    cqe_copy_t batch[URING_BATCH];
    unsigned total = 0, n;
    while (total < URING_HARVEST_MAX && (n = take_batch(u, batch)) > 0) {
        for (unsigned i = 0; i < n; i++) {
            if (batch[i].flags & IORING_CQE_F_BUFFER)
                u->buf_free--; /* the kernel took it from the ring */
            if (batch[i].data == 0)
                continue; /* a cancel's own result */
            zinx__uring_op_t *op =
                (zinx__uring_op_t *)(uintptr_t)(batch[i].data &
                                                ~(uint64_t)
                                                    ZINX__URING_TAG_MASK);
            op->on_cqe(op, (unsigned)(batch[i].data & ZINX__URING_TAG_MASK),
                       batch[i].res, batch[i].flags);
        }
        total += n;
    }
}

static int submit_and_wait(zinx__uring_t *u, int timeout_ms)
{
    if (timeout_ms == 0 || io_uring_cq_ready(&u->ring) > 0) {
        /* DEFER_TASKRUN runs completions only when asked: ask without
           waiting. */
        return io_uring_submit_and_get_events(&u->ring);
    }
    if (timeout_ms < 0)
        return io_uring_submit_and_wait(&u->ring, 1);
    struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                   .tv_nsec = (timeout_ms % 1000) * 1000000L};
    struct io_uring_cqe *cqe;
    return io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
}

/* liburing 2.3 declares io_uring_enable_rings() but does not export it. */
static int enable_ring(struct io_uring *ring)
{
    long rc = syscall(__NR_io_uring_register, ring->ring_fd,
                      IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    return rc < 0 ? -errno : 0;
}

static int uring_wait(void *state, zinx__ready_t *out, int max, int timeout_ms)
{
    zinx__uring_t *u = state;
    if (!u->enabled) {
        if ((u->setup_flags & IORING_SETUP_R_DISABLED) != 0) {
            int rc = enable_ring(&u->ring);
            if (rc != 0)
                return rc;
        }
        u->enabled = true;
    }
    u->out = out;
    u->nout = 0;
    u->maxout = max;
    feed_starved(u);
    run_flushes(u);
    if (u->notify_head != NULL || u->flush_head != NULL)
        timeout_ms = 0; /* someone is ready already */
    int rc = submit_and_wait(u, timeout_ms);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    if (u->clock != NULL)
        *u->clock = zinx__now_ms(); /* before any completion runs */
    harvest(u);
    run_notifications(u);
    return u->nout;
}

static void uring_wake(void *state)
{
    zinx__uring_t *u = state;
    uint64_t one = 1;
    ssize_t w = write(u->wakefd, &one, sizeof(one));
    ZINX__UNUSED(w); /* cannot fail short of a counter near 2^64 */
}

static zinx__uring_t *uring_of(void *state)
{
    return state;
}

const zinx__backend_ops_t zinx__backend_uring = {
    .name = "io_uring",
    .open = uring_open,
    .close = uring_close,
    .ctl = uring_ctl,
    .wait = uring_wait,
    .wake = uring_wake,
    .uring = uring_of,
};
