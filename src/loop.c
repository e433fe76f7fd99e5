/*
 * Event loops: one epoll instance and one thread per I/O thread.
 *
 * Other threads talk to a loop only through its inbox (a mutex-protected
 * array plus an eventfd). A write to the eventfd is made only by the
 * poster that finds `wake_pending` clear, so a burst of posts costs one
 * wake-up. Each iteration handles socket events first, then the inbox,
 * then the connections scheduled for attention (where replies are flushed,
 * one write per connection), then releases connections closed during the
 * iteration, so no event of the same batch can meet a freed connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* A read of this size drains most sockets in one call (see performance.md
   on libevent's 4 KiB cap); it is shared by every connection of the loop. */
#define LOOP_RBUF_MIN (64u * 1024u)
#define LOOP_MAX_EVENTS 256
/* How long a gracefully closed socket waits for the peer's EOF. */
#define LOOP_LINGER_MS 2000u
/* Buffers of a connection idle this long go back to the allocator. */
#define LOOP_TRIM_MS 1000u

typedef struct post {
    zinx__loop_op_t op;
    zinx_conn_t *conn;     /* reference, or NULL */
    zinx_dialer_t *dialer; /* reference, or NULL */
} post_t;

/* Tasks this iteration produced for one worker, in order. */
typedef struct outbox {
    zinx__worker_t *worker;
    zinx__task_t *head, *tail;
} outbox_t;

typedef struct lingerer {
    zinx_conn_t *conn;
    uint64_t deadline_ms;
} lingerer_t;

struct zinx__loop {
    zinx_server_t *server;
    uint32_t index;
    int epfd;
    int wakefd;
    int listen_fd; /* loop 0 only; -1 elsewhere */
    pthread_t thread;
    bool started;
    bool quit;

    uint8_t *rbuf;
    size_t rbuf_cap;

    pthread_mutex_t inbox_lock;
    post_t *inbox;
    size_t ninbox, inbox_cap;
    atomic_bool wake_pending;

    zinx_conn_t *attn_head;  /* loop thread only */
    zinx_conn_t **graveyard; /* loop thread only */
    size_t ngrave, grave_cap;
    zinx__timer_heap_t timers;        /* loop thread only */
    zinx__timer_t listen_pause;       /* re-enables a paused listener */
    _Atomic(zinx__task_t *) recycled; /* finished tasks, pushed by workers */
    outbox_t *outboxes;               /* one per worker fed this iteration */
    size_t noutboxes, outbox_cap;
    zinx_conn_t **retained; /* connections holding buffers (references) */
    size_t nretained, retained_cap;
    zinx__timer_t trim_timer; /* sweeps `retained` */
    lingerer_t *lingerers;    /* FIFO: equal linger times keep it sorted */
    size_t linger_head, nlinger, linger_cap;

    /* Distinct addresses tag the non-connection descriptors in epoll. */
    char wake_tag, listen_tag;
};

uint64_t zinx__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void resume_listener(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    zinx__loop_t *loop = arg;
    if (loop->listen_fd >= 0)
        zinx__loop_watch(loop, loop->listen_fd, &loop->listen_tag, EPOLLIN,
                         false);
}

void zinx__loop_push_task(zinx__loop_t *loop, zinx__worker_t *w,
                          zinx__task_t *task)
{
    task->next = NULL;
    for (size_t i = 0; i < loop->noutboxes; i++) {
        outbox_t *o = &loop->outboxes[i];
        if (o->worker == w) {
            o->tail->next = task;
            o->tail = task;
            return;
        }
    }
    if (loop->noutboxes == loop->outbox_cap) {
        size_t cap = loop->outbox_cap ? loop->outbox_cap * 2 : 16;
        outbox_t *p = realloc(loop->outboxes, cap * sizeof(*p));
        if (p == NULL) {
            zinx__worker_push(w, task); /* unbatched, still in order */
            return;
        }
        loop->outboxes = p;
        loop->outbox_cap = cap;
    }
    loop->outboxes[loop->noutboxes++] =
        (outbox_t){.worker = w, .head = task, .tail = task};
}

void zinx__loop_recycle(zinx__loop_t *loop, zinx__task_t *task)
{
    zinx__task_t *head = atomic_load(&loop->recycled);
    do {
        task->next = head;
    } while (!atomic_compare_exchange_weak(&loop->recycled, &head, task));
}

/* Only this thread takes from the stack, all at once, so the classic
   lock-free-stack ABA problem cannot arise. */
static void free_recycled(zinx__loop_t *loop)
{
    zinx__task_t *t = atomic_exchange(&loop->recycled, NULL);
    while (t != NULL) {
        zinx__task_t *next = t->next;
        free(t);
        t = next;
    }
}

static void flush_outboxes(zinx__loop_t *loop)
{
    for (size_t i = 0; i < loop->noutboxes; i++) {
        outbox_t *o = &loop->outboxes[i];
        zinx__worker_push_list(o->worker, o->head, o->tail);
    }
    loop->noutboxes = 0;
}

/* Frees the buffers of connections that stayed idle for a sweep period;
   busy ones keep theirs, so steady traffic allocates nothing. */
static void sweep_retained(zinx__timer_t *t, void *arg)
{
    ZINX__UNUSED(t);
    zinx__loop_t *loop = arg;
    uint64_t now = zinx__now_ms();
    uint64_t idle_since = now > LOOP_TRIM_MS ? now - LOOP_TRIM_MS : 0;
    size_t kept = 0;
    for (size_t i = 0; i < loop->nretained; i++) {
        zinx_conn_t *c = loop->retained[i];
        if (zinx__conn_trim(c, idle_since))
            loop->retained[kept++] = c;
        else
            zinx_conn_unref(c);
    }
    loop->nretained = kept;
    if (kept > 0)
        zinx__loop_timer_arm(loop, &loop->trim_timer, now + LOOP_TRIM_MS);
}

void zinx__loop_retain(zinx__loop_t *loop, zinx_conn_t *conn)
{
    if (loop->nretained == loop->retained_cap) {
        size_t cap = loop->retained_cap ? loop->retained_cap * 2 : 64;
        zinx_conn_t **p = realloc(loop->retained, cap * sizeof(*p));
        if (p == NULL)
            return; /* the buffers stay until the connection ends */
        loop->retained = p;
        loop->retained_cap = cap;
    }
    loop->retained[loop->nretained++] = zinx_conn_ref(conn);
    if (!zinx__timer_armed(&loop->trim_timer))
        zinx__loop_timer_arm(loop, &loop->trim_timer,
                             zinx__now_ms() + LOOP_TRIM_MS);
}

void zinx__loop_pause_listener(zinx__loop_t *loop, uint32_t ms)
{
    if (loop->listen_fd < 0 || zinx__timer_armed(&loop->listen_pause))
        return;
    zinx__loop_watch(loop, loop->listen_fd, &loop->listen_tag, 0, false);
    zinx__loop_timer_arm(loop, &loop->listen_pause, zinx__now_ms() + ms);
}

zinx__loop_t *zinx__loop_new(zinx_server_t *server, uint32_t index)
{
    zinx__loop_t *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    loop->server = server;
    loop->index = index;
    loop->listen_fd = -1;
    loop->wakefd = -1;
    pthread_mutex_init(&loop->inbox_lock, NULL);
    zinx__timer_init(&loop->listen_pause, resume_listener, loop);
    zinx__timer_init(&loop->trim_timer, sweep_retained, loop);
    atomic_init(&loop->recycled, NULL);
    loop->rbuf_cap = server->cfg.io_read_buff_size > LOOP_RBUF_MIN
                         ? server->cfg.io_read_buff_size
                         : LOOP_RBUF_MIN;
    loop->rbuf = malloc(loop->rbuf_cap);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->rbuf == NULL || loop->epfd < 0 || loop->wakefd < 0 ||
        zinx__loop_watch(loop, loop->wakefd, &loop->wake_tag, EPOLLIN, true) !=
            0) {
        zinx__loop_free(loop);
        return NULL;
    }
    return loop;
}

int zinx__loop_watch(zinx__loop_t *loop, int fd, void *ptr, uint32_t events,
                     bool add)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    if (epoll_ctl(loop->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev))
        return -errno;
    return 0;
}

void zinx__loop_unwatch(zinx__loop_t *loop, int fd)
{
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int zinx__loop_set_listener(zinx__loop_t *loop, int fd)
{
    int rc = zinx__loop_watch(loop, fd, &loop->listen_tag, EPOLLIN, true);
    if (rc == 0)
        loop->listen_fd = fd;
    return rc;
}

uint8_t *zinx__loop_rbuf(zinx__loop_t *loop, size_t *cap)
{
    *cap = loop->rbuf_cap;
    return loop->rbuf;
}

bool zinx__loop_is_self(const zinx__loop_t *loop)
{
    return pthread_equal(pthread_self(), loop->thread);
}

static int post(zinx__loop_t *loop, post_t p)
{
    pthread_mutex_lock(&loop->inbox_lock);
    if (loop->ninbox == loop->inbox_cap) {
        size_t cap = loop->inbox_cap ? loop->inbox_cap * 2 : 64;
        post_t *q = realloc(loop->inbox, cap * sizeof(*q));
        if (q == NULL) {
            pthread_mutex_unlock(&loop->inbox_lock);
            return ZINX_ENOMEM;
        }
        loop->inbox = q;
        loop->inbox_cap = cap;
    }
    loop->inbox[loop->ninbox++] = p;
    pthread_mutex_unlock(&loop->inbox_lock);
    if (!atomic_exchange(&loop->wake_pending, true)) {
        uint64_t one = 1;
        ssize_t w = write(loop->wakefd, &one, sizeof(one));
        ZINX__UNUSED(w); /* EAGAIN means the counter is already nonzero */
    }
    return 0;
}

int zinx__loop_post(zinx__loop_t *loop, zinx__loop_op_t op, zinx_conn_t *conn)
{
    return post(loop, (post_t){.op = op, .conn = conn});
}

int zinx__loop_post_dialer(zinx__loop_t *loop, zinx__loop_op_t op,
                           zinx_dialer_t *dialer)
{
    return post(loop, (post_t){.op = op, .dialer = dialer});
}

void zinx__loop_schedule(zinx__loop_t *loop, zinx_conn_t *conn)
{
    if (zinx__conn_in_attention(conn, true))
        return;
    *zinx__conn_attn_next(conn) = loop->attn_head;
    loop->attn_head = zinx_conn_ref(conn);
}

void zinx__loop_bury(zinx__loop_t *loop, zinx_conn_t *conn)
{
    if (loop->ngrave == loop->grave_cap) {
        size_t cap = loop->grave_cap ? loop->grave_cap * 2 : 64;
        zinx_conn_t **p = realloc(loop->graveyard, cap * sizeof(*p));
        if (p == NULL) {
            /* Releasing now is safe only because no event of this batch
               can follow when memory is this short; better than a leak. */
            zinx_conn_unref(conn);
            return;
        }
        loop->graveyard = p;
        loop->grave_cap = cap;
    }
    loop->graveyard[loop->ngrave++] = conn;
}

int zinx__loop_timer_arm(zinx__loop_t *loop, zinx__timer_t *t,
                         uint64_t deadline_ms)
{
    return zinx__timer_heap_arm(&loop->timers, t, deadline_ms);
}

void zinx__loop_timer_cancel(zinx__loop_t *loop, zinx__timer_t *t)
{
    zinx__timer_heap_cancel(&loop->timers, t);
}

void zinx__loop_linger(zinx__loop_t *loop, zinx_conn_t *conn)
{
    if (loop->nlinger == loop->linger_cap ||
        loop->linger_head + loop->nlinger == loop->linger_cap) {
        /* Compact, then grow if still full. */
        if (loop->nlinger > 0)
            memmove(loop->lingerers, loop->lingerers + loop->linger_head,
                    loop->nlinger * sizeof(*loop->lingerers));
        loop->linger_head = 0;
        if (loop->nlinger == loop->linger_cap) {
            size_t cap = loop->linger_cap ? loop->linger_cap * 2 : 16;
            lingerer_t *p = realloc(loop->lingerers, cap * sizeof(*p));
            if (p == NULL) {
                zinx__conn_close_fd(conn);
                return;
            }
            loop->lingerers = p;
            loop->linger_cap = cap;
        }
    }
    loop->lingerers[loop->linger_head + loop->nlinger++] =
        (lingerer_t){.conn = zinx_conn_ref(conn),
                     .deadline_ms = zinx__now_ms() + LOOP_LINGER_MS};
}

/* Closes lingering sockets whose time is up; returns the epoll timeout. */
static int expire_lingerers(zinx__loop_t *loop, bool all)
{
    uint64_t now = zinx__now_ms();
    while (loop->nlinger > 0) {
        lingerer_t *l = &loop->lingerers[loop->linger_head];
        if (!all && l->deadline_ms > now)
            return (int)(l->deadline_ms - now);
        zinx__conn_close_fd(l->conn); /* no-op if the peer closed first */
        zinx_conn_unref(l->conn);
        loop->linger_head++;
        loop->nlinger--;
    }
    loop->linger_head = 0;
    return -1;
}

static void drain_wakefd(zinx__loop_t *loop)
{
    uint64_t v;
    ssize_t r = read(loop->wakefd, &v, sizeof(v));
    ZINX__UNUSED(r);
    /* Cleared before the inbox is taken: a post that lands after the take
       sees the flag clear and writes the eventfd again (no lost wake-up). */
    atomic_store(&loop->wake_pending, false);
}

static void close_listener(zinx__loop_t *loop)
{
    zinx__loop_timer_cancel(loop, &loop->listen_pause);
    if (loop->listen_fd >= 0) {
        zinx__loop_unwatch(loop, loop->listen_fd);
        close(loop->listen_fd);
        loop->listen_fd = -1;
    }
    zinx__server_listener_closed(loop->server);
}

static void run_post(zinx__loop_t *loop, post_t *p)
{
    switch (p->op) {
    case ZINX__OP_ADOPT:
        zinx__conn_adopt(p->conn);
        break;
    case ZINX__OP_ATTEND:
        zinx__conn_attend(p->conn);
        break;
    case ZINX__OP_STOP_LISTEN:
        close_listener(loop);
        break;
    case ZINX__OP_QUIT:
        loop->quit = true;
        break;
    case ZINX__OP_DIAL:
    case ZINX__OP_DIAL_LOST:
    case ZINX__OP_DIAL_CLOSE:
        zinx__dialer_run_op(p->dialer, p->op);
        break;
    }
    zinx_conn_unref(p->conn);
    if (p->dialer != NULL)
        zinx__dialer_unref(p->dialer);
}

static void drain_inbox(zinx__loop_t *loop)
{
    pthread_mutex_lock(&loop->inbox_lock);
    post_t *posts = loop->inbox;
    size_t n = loop->ninbox;
    loop->inbox = NULL;
    loop->ninbox = loop->inbox_cap = 0;
    pthread_mutex_unlock(&loop->inbox_lock);
    for (size_t i = 0; i < n; i++)
        run_post(loop, &posts[i]);
    free(posts);
}

static void run_attention(zinx__loop_t *loop)
{
    while (loop->attn_head != NULL) {
        zinx_conn_t *c = loop->attn_head;
        loop->attn_head = *zinx__conn_attn_next(c);
        *zinx__conn_attn_next(c) = NULL;
        zinx__conn_in_attention(c, false);
        zinx__conn_attend(c);
        zinx_conn_unref(c);
    }
}

static void release_graveyard(zinx__loop_t *loop)
{
    for (size_t i = 0; i < loop->ngrave; i++)
        zinx_conn_unref(loop->graveyard[i]);
    loop->ngrave = 0;
}

static void handle_event(zinx__loop_t *loop, struct epoll_event *ev,
                         bool *woken)
{
    void *tag = ev->data.ptr;
    if (tag == &loop->wake_tag) {
        *woken = true;
    } else if (tag == &loop->listen_tag) {
        if (loop->listen_fd >= 0)
            zinx__server_on_accept(loop->server, loop);
    } else if (((zinx__pollable_t *)tag)->kind == ZINX__POLL_DIALER) {
        zinx__dialer_on_events(tag, ev->events);
    } else {
        zinx__conn_on_events(tag, ev->events);
    }
}

static void *loop_main(void *arg)
{
    zinx__loop_t *loop = arg;
    struct epoll_event events[LOOP_MAX_EVENTS];
    int timeout = -1;
    while (!loop->quit) {
        int n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            ZINX__LOG(loop->server, ZINX_LOG_ERROR, "epoll_wait: %s",
                      strerror(errno));
            break;
        }
        bool woken = false;
        for (int i = 0; i < n; i++)
            handle_event(loop, &events[i], &woken);
        if (woken) {
            drain_wakefd(loop);
            drain_inbox(loop);
        }
        run_attention(loop);
        int t1 = zinx__timer_heap_run(&loop->timers, zinx__now_ms());
        run_attention(loop); /* timers may have queued output or closes */
        flush_outboxes(loop);
        free_recycled(loop);
        release_graveyard(loop);
        int t2 = expire_lingerers(loop, false);
        timeout = t1 < 0 ? t2 : (t2 < 0 || t1 < t2 ? t1 : t2);
    }
    expire_lingerers(loop, true);
    flush_outboxes(loop);
    for (size_t i = 0; i < loop->nretained; i++)
        zinx_conn_unref(loop->retained[i]);
    loop->nretained = 0;
    release_graveyard(loop);
    return NULL;
}

int zinx__loop_start(zinx__loop_t *loop)
{
    char name[16];
    snprintf(name, sizeof(name), "zinx-io-%u", loop->index);
    int rc = zinx__thread_spawn(&loop->thread, loop_main, loop, name);
    if (rc == 0)
        loop->started = true;
    return rc;
}

void zinx__loop_join(zinx__loop_t *loop)
{
    if (!loop->started)
        return;
    pthread_join(loop->thread, NULL);
    loop->started = false;
}

void zinx__loop_free(zinx__loop_t *loop)
{
    if (loop == NULL)
        return;
    /* Posts that raced with the quit still hold references. */
    for (size_t i = 0; i < loop->ninbox; i++) {
        zinx_conn_unref(loop->inbox[i].conn);
        if (loop->inbox[i].dialer != NULL)
            zinx__dialer_unref(loop->inbox[i].dialer);
    }
    free(loop->inbox);
    free(loop->graveyard);
    free(loop->retained);
    free(loop->outboxes);
    free_recycled(loop); /* workers are joined: nothing more arrives */
    free(loop->lingerers);
    zinx__timer_heap_free(&loop->timers);
    free(loop->rbuf);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    if (loop->epfd >= 0)
        close(loop->epfd);
    pthread_mutex_destroy(&loop->inbox_lock);
    free(loop);
}
