/*
 * A multi-connection load driver (see test_load.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "test_load.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"
#include "zinx.h"

#define LOAD_BUF 2048

struct load_conn {
    int fd;
    uint32_t idx;
    uint32_t next_send, next_expect;
    uint32_t events;
    bool connecting, answered, done, failed;
    uint16_t in_len, out_off, out_len;
    uint8_t in[LOAD_BUF];
    uint8_t out[LOAD_BUF];
};

typedef struct load_thread {
    load_t *load;
    uint32_t index;
    pthread_t thread;
} load_thread_t;

static void conn_fail(load_t *l, load_conn_t *c, int err, uint32_t *pending)
{
    if (c->failed)
        return;
    c->failed = true;
    if (!c->answered && *pending > 0)
        (*pending)--;
    if (c->done) {
        atomic_fetch_add(&l->dropped, 1);
    } else {
        atomic_fetch_add(&l->failed, 1);
    }
    int zero = 0;
    atomic_compare_exchange_strong(&l->first_error, &zero, err ? err : -1);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void conn_interest(int ep, load_conn_t *c)
{
    uint32_t ev = EPOLLIN;

    if (c->connecting || c->out_len > c->out_off)
        ev |= EPOLLOUT;
    if (ev != c->events) {
        struct epoll_event e = {.events = ev, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
        c->events = ev;
    }
}

/* Queues requests up to the window and writes what the socket takes.
   Returns 0 or -errno. */
static int conn_pump(load_t *l, load_conn_t *c)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    while (
        c->next_send < l->msgs && c->next_send - c->next_expect < l->window &&
        (size_t)c->out_len + ZINX_HEADER_LEN + FRAME_PAYLOAD_MAX <= LOAD_BUF) {
        uint8_t payload[FRAME_PAYLOAD_MAX];
        uint32_t len = frame_payload_make(payload, c->idx, c->next_send++);
        c->out_len =
            (uint16_t)(c->out_len + frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID,
                                                 payload, len,
                                                 c->out + c->out_len));
    }
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, (size_t)(c->out_len - c->out_off),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off = (uint16_t)(c->out_off + n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -errno;
    }
    return 0;
}

/* Checks the frames in c->in. Returns 0, or -EBADMSG on an anomaly. */
static int conn_parse(load_t *l, load_conn_t *c, uint32_t *pending)
{
    size_t off = 0;
    int rc = 0;

    while (rc == 0) {
        zinx_msg_t m;
        long n = zinx_unpack(ZINX_FORMAT_TLV, FRAME_PAYLOAD_MAX, c->in + off,
                             c->in_len - off, &m);
        if (n == ZINX_EAGAIN)
            break;
        uint32_t stream = 0, seq = 0;
        if (n < 0 || m.id != TC_ECHO_ID ||
            frame_payload_check(m.data, m.len, &stream, &seq) != 0 ||
            stream != c->idx) {
            atomic_fetch_add(&l->corrupt, 1);
            rc = -EBADMSG;
            break;
        }
        off += (size_t)n;
        if (seq < c->next_expect || c->done) {
            atomic_fetch_add(&l->duplicated, 1);
            rc = -EBADMSG;
        } else if (seq > c->next_expect) {
            atomic_fetch_add(&l->lost, 1); /* lost, or overtaken */
            rc = -EBADMSG;
        } else if (++c->next_expect == l->msgs) {
            c->done = true;
            atomic_fetch_add(&l->completed, 1);
        }
        if (rc == 0 && !c->answered) {
            c->answered = true;
            (*pending)--;
        }
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len = (uint16_t)(c->in_len - off);
    return rc;
}

static void conn_on_event(load_t *l, int ep, load_conn_t *c, uint32_t ev,
                          uint32_t *pending)
{
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            conn_fail(l, c, -err, pending);
            return;
        }
        if (!(ev & (EPOLLOUT | EPOLLIN)))
            return;
        c->connecting = false;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            ssize_t n = recv(c->fd, c->in + c->in_len, LOAD_BUF - c->in_len,
                             MSG_DONTWAIT);
            if (n > 0) {
                c->in_len = (uint16_t)(c->in_len + n);
                if (conn_parse(l, c, pending) != 0) {
                    conn_fail(l, c, -EBADMSG, pending);
                    return;
                }
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            conn_fail(l, c, n == 0 ? -EPIPE : -errno, pending);
            return;
        }
    }
    int rc = conn_pump(l, c);
    if (rc != 0) {
        conn_fail(l, c, rc, pending);
        return;
    }
    conn_interest(ep, c);
}

static void conn_open(load_t *l, int ep, load_conn_t *c, uint32_t *pending)
{
    tc_opts_t o = {.nonblock = true};

    c->fd = tc_connect_opts(l->port, &o);
    (*pending)++;
    if (c->fd < 0) {
        int err = c->fd;
        c->fd = -1;
        conn_fail(l, c, err, pending);
        return;
    }
    c->connecting = true;
    c->events = EPOLLIN | EPOLLOUT;
    struct epoll_event e = {.events = c->events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) != 0)
        conn_fail(l, c, -errno, pending);
}

static void *load_main(void *arg)
{
    load_thread_t *t = arg;
    load_t *l = t->load;
    int ep = epoll_create1(EPOLL_CLOEXEC);

    if (ep < 0) {
        atomic_store(&l->first_error, -errno);
        return NULL;
    }
    uint64_t end = tf_now_ms() + (uint64_t)l->timeout_ms;
    uint32_t next_open = t->index, pending = 0;
    struct epoll_event evs[256];
    for (;;) {
        while (next_open < l->conns && pending < l->max_connecting) {
            conn_open(l, ep, &l->c[next_open], &pending);
            next_open += l->threads;
        }
        bool busy = next_open < l->conns;
        for (uint32_t i = t->index; !busy && i < l->conns; i += l->threads)
            busy = !l->c[i].done && !l->c[i].failed;
        if (!busy || tf_now_ms() >= end)
            break;
        int n = epoll_wait(ep, evs, 256, 20);
        for (int i = 0; i < n; i++) {
            load_conn_t *c = evs[i].data.ptr;
            if (!c->failed)
                conn_on_event(l, ep, c, evs[i].events, &pending);
        }
    }
    close(ep); /* the connections stay open */
    return NULL;
}

void load_init(load_t *l, int port, uint32_t conns, uint32_t msgs)
{
    memset(l, 0, sizeof(*l));
    l->port = port;
    l->conns = conns;
    l->msgs = msgs;
    l->threads = 3;
    l->window = 16;
    l->max_connecting = 256;
    l->timeout_ms = 120000;
}

uint64_t load_run(load_t *l)
{
    l->c = calloc(l->conns, sizeof(*l->c));
    assert_non_null(l->c);
    for (uint32_t i = 0; i < l->conns; i++) {
        l->c[i].fd = -1;
        l->c[i].idx = i;
    }
    load_thread_t *ts = calloc(l->threads, sizeof(*ts));
    assert_non_null(ts);
    uint64_t t0 = tf_now_ms();
    for (uint32_t i = 0; i < l->threads; i++) {
        ts[i].load = l;
        ts[i].index = i;
        assert_int_equal(pthread_create(&ts[i].thread, NULL, load_main, &ts[i]),
                         0);
    }
    for (uint32_t i = 0; i < l->threads; i++)
        pthread_join(ts[i].thread, NULL);
    free(ts);
    return tf_now_ms() - t0;
}

void load_assert_clean(load_t *l, const char *what)
{
    long completed = atomic_load(&l->completed);

    tf_note("%s: %ld/%u connections complete; lost %ld dup %ld corrupt %ld "
            "failed %ld dropped %ld",
            what, completed, l->conns, atomic_load(&l->lost),
            atomic_load(&l->duplicated), atomic_load(&l->corrupt),
            atomic_load(&l->failed), atomic_load(&l->dropped));
    if (atomic_load(&l->lost) || atomic_load(&l->duplicated) ||
        atomic_load(&l->corrupt) || atomic_load(&l->failed) ||
        atomic_load(&l->dropped) || completed != (long)l->conns)
        fail_msg("%s: %ld/%u complete, lost/reordered %ld, duplicated %ld, "
                 "corrupt %ld, failed %ld, dropped %ld (first error %s)",
                 what, completed, l->conns, atomic_load(&l->lost),
                 atomic_load(&l->duplicated), atomic_load(&l->corrupt),
                 atomic_load(&l->failed), atomic_load(&l->dropped),
                 zinx_strerror(atomic_load(&l->first_error)));
}

void load_close(load_t *l)
{
    for (uint32_t i = 0; l->c != NULL && i < l->conns; i++) {
        if (l->c[i].fd >= 0)
            close(l->c[i].fd);
    }
    free(l->c);
    l->c = NULL;
}
