/*
 * The epoll backend: level-triggered interest per descriptor, and an
 * eventfd for wake-ups from other threads.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "event/backend.h"
#include "event/event.h"

/* Most iterations see few events; more than this wait for the next. */
#define EPOLL_BATCH 256

typedef struct epoll_backend {
    int epfd;
    int wakefd;
    struct epoll_event events[EPOLL_BATCH];
} epoll_backend_t;

_Static_assert((int)ZINX__EV_READ == (int)EPOLLIN &&
                   (int)ZINX__EV_WRITE == (int)EPOLLOUT &&
                   (int)ZINX__EV_ERROR == (int)EPOLLERR &&
                   (int)ZINX__EV_HUP == (int)EPOLLHUP,
               "the reactor's event bits are epoll's");

static uint32_t to_epoll(uint32_t interest)
{
    return interest & (EPOLLIN | EPOLLOUT);
}

static uint32_t from_epoll(uint32_t ev)
{
    return ev & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP);
}

static void epoll_close(void *state)
{
    epoll_backend_t *b = state;
    if (b == NULL)
        return;
    if (b->wakefd >= 0)
        close(b->wakefd);
    if (b->epfd >= 0)
        close(b->epfd);
    free(b);
}

static void *epoll_open(const zinx__backend_conf_t *conf)
{
    ZINX__UNUSED(conf);
    epoll_backend_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    b->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* The wake-up's data pointer is NULL: every other registration points
       at an I/O handle. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (b->epfd < 0 || b->wakefd < 0 ||
        epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->wakefd, &ev) != 0) {
        epoll_close(b);
        return NULL;
    }
    return b;
}

static int epoll_ctl_op(void *state, int fd, void *ptr, int op,
                        uint32_t interest)
{
    epoll_backend_t *b = state;
    struct epoll_event ev = {.events = to_epoll(interest), .data.ptr = ptr};
    int eop = op == ZINX__CTL_ADD   ? EPOLL_CTL_ADD
              : op == ZINX__CTL_MOD ? EPOLL_CTL_MOD
                                    : EPOLL_CTL_DEL;
    return epoll_ctl(b->epfd, eop, fd, &ev) == 0 ? 0 : -errno;
}

static void drain_wakefd(epoll_backend_t *b)
{
    uint64_t v;
    ssize_t r = read(b->wakefd, &v, sizeof(v));
    ZINX__UNUSED(r); /* EAGAIN: another wake-up was consumed already */
}

static int epoll_wait_op(void *state, zinx__ready_t *out, int max,
                         int timeout_ms)
{
    epoll_backend_t *b = state;
    if (max > EPOLL_BATCH)
        max = EPOLL_BATCH;
    int n = epoll_wait(b->epfd, b->events, max, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        out[i].ptr = b->events[i].data.ptr;
        out[i].events = from_epoll(b->events[i].events);
        if (out[i].ptr == NULL)
            drain_wakefd(b);
    }
    return n;
}

static void epoll_wake(void *state)
{
    epoll_backend_t *b = state;
    uint64_t one = 1;
    ssize_t w = write(b->wakefd, &one, sizeof(one));
    ZINX__UNUSED(w); /* EAGAIN means the counter is already nonzero */
}

const zinx__backend_ops_t zinx__backend_epoll = {
    .name = "epoll",
    .open = epoll_open,
    .close = epoll_close,
    .ctl = epoll_ctl_op,
    .wait = epoll_wait_op,
    .wake = epoll_wake,
    .uring = NULL,
};
