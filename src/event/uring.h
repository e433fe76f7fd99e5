/*
 * What the io_uring backend (backend_uring.c) offers beyond readiness:
 * completion-style operations for streams and the listener.
 *
 * Ownership rules, the reason this interface looks as it does:
 *   - Every request carries user_data = (address of a zinx__uring_op_t) |
 *     a tag below 8 chosen by the op's owner; 0 marks a request whose
 *     completion nobody wants (a cancel). The op's memory must stay valid
 *     until the last completion of every request it issued has been
 *     delivered to on_cqe, which is why a stream keeps its ops in a small
 *     heap handle that can outlive the connection (see uring_sock.c).
 *   - Submission queue entries are prepared only in on_flush, which the
 *     backend calls just before its one io_uring_submit_and_wait of the
 *     iteration: everything queued during an iteration goes out in one
 *     system call, and all ring access stays on the loop thread.
 *   - on_notify runs after the completions of an iteration, for owners
 *     that asked: readiness is reported there, and an owner that asks
 *     again in on_notify is asked again next iteration without the loop
 *     blocking (the level-triggered behaviour that epoll gives for free).
 *   - Received data lands in one ring of provided buffers per loop; a
 *     buffer handed out by a completion belongs to its op until it calls
 *     zinx__uring_buffer_return().
 *
 * Every function runs on the loop thread.
 */
#ifndef ZINX_EVENT_URING_H
#define ZINX_EVENT_URING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct zinx__uring zinx__uring_t;
typedef struct zinx__uring_op zinx__uring_op_t;

/* The low bits of user_data that belong to the op's owner. */
#define ZINX__URING_TAG_MASK 7u

struct zinx__uring_op {
    /* A completion of a request tagged `tag`. */
    void (*on_cqe)(zinx__uring_op_t *op, unsigned tag, int32_t res,
                   uint32_t flags);
    /* Prepare requests now (zinx__uring_flush_later asked for it). */
    void (*on_flush)(zinx__uring_op_t *op);
    /* Report readiness now (zinx__uring_notify_later asked for it). */
    void (*on_notify)(zinx__uring_op_t *op);
    /* The loop is freed with the op still waiting for completions (an
       orphan): free it. */
    void (*release)(zinx__uring_op_t *op);
    /* The backend's lists; zeroed by the owner before first use. */
    zinx__uring_op_t *flush_next, *notify_next, *starve_next;
    zinx__uring_op_t *orphan_prev, *orphan_next;
    bool flushing, notifying, starving, orphaned;
};

_Static_assert(_Alignof(zinx__uring_op_t) > ZINX__URING_TAG_MASK,
               "an op's address leaves room for the tag");

static inline uint64_t zinx__uring_data(zinx__uring_op_t *op, unsigned tag)
{
    return (uint64_t)(uintptr_t)op | tag;
}

/* A submission queue entry, or NULL when the queue stays full even after
   submitting what it holds (the caller asks to flush later). */
struct io_uring_sqe *zinx__uring_sqe(zinx__uring_t *u);
/* Call op->on_flush before the next submission (once, however often
   asked). */
void zinx__uring_flush_later(zinx__uring_t *u, zinx__uring_op_t *op);
/* Call op->on_notify after the completions of this or the next wait. */
void zinx__uring_notify_later(zinx__uring_t *u, zinx__uring_op_t *op);
/* The op's receive ended with ENOBUFS: flush it again once buffers are
   back, in the order ops ran dry. */
void zinx__uring_wait_buffers(zinx__uring_t *u, zinx__uring_op_t *op);
/* An op that waits for its last completions with no owner left: freed
   with op->release if the loop goes first. */
void zinx__uring_orphan(zinx__uring_t *u, zinx__uring_op_t *op);
void zinx__uring_unorphan(zinx__uring_t *u, zinx__uring_op_t *op);

/* ---- provided buffers ---------------------------------------------------- */

/* The buffer group that receive requests select from. */
#define ZINX__URING_BGID 0

/* The bytes of buffer bid and the size of every buffer. */
uint8_t *zinx__uring_buffer(zinx__uring_t *u, uint16_t bid);
uint32_t zinx__uring_buffer_size(const zinx__uring_t *u);
/* Gives buffer bid back to the ring. */
void zinx__uring_buffer_return(zinx__uring_t *u, uint16_t bid);

#endif /* ZINX_EVENT_URING_H */
