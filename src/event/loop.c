/*
 * Event loops: one epoll instance and one thread per I/O thread.
 *
 * Other threads talk to a loop only by posting objects to it (a lock-free
 * stack linked through the objects themselves, so posting never
 * allocates and works when memory is exhausted) and by two request flags
 * (stop listening, quit), plus an eventfd. A write to the eventfd is made
 * only by the poster that finds `wake_pending` clear, so a burst of posts
 * costs one wake-up. Each iteration handles socket events first, then the
 * posted objects, then the connections scheduled for attention (where
 * replies are flushed, one write per connection), then releases
 * connections closed during the iteration, so no event of the same batch
 * can meet a freed connection.
 *
 * Quitting waits for lingering sockets: what the server wrote must reach
 * the peer (see settle_lingerers), up to the stop's drain deadline.
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
/* While quitting, how often lingering sockets are asked whether the peer
   has acknowledged everything. */
#define LOOP_QUIT_POLL_MS 10
/* Timers of the loop itself (listener pause, buffer sweep) plus slack for
   dialers: room kept in the heap beyond one per connection. */
#define LOOP_OWN_TIMERS 8u

/* Tasks this iteration produced for one worker, in order. */
typedef struct outbox {
    zinx__worker_t *worker;
    zinx__task_t *head, *tail;
} outbox_t;

struct zinx__loop {
    zinx_server_t *server;
    uint32_t index;
    int epfd;
    int wakefd;
    int listen_fd; /* loop 0 only; -1 elsewhere */
    pthread_t thread;
    bool started;
    bool quitting; /* loop thread: leave once nothing lingers */
    uint64_t quit_deadline_ms;

    uint8_t *rbuf;
    size_t rbuf_cap;

    _Atomic(zinx__pollable_t *) posted; /* pushed by any thread */
    atomic_bool stop_listen_req;
    atomic_bool quit_req;
    _Atomic uint64_t quit_req_deadline_ms;
    atomic_bool wake_pending;

    zinx_conn_t *attn_head;           /* loop thread only */
    zinx_conn_t *grave_head;          /* loop thread only */
    zinx__timer_heap_t timers;        /* loop thread only */
    size_t timer_users;               /* connections that reserved a slot */
    zinx__timer_t listen_pause;       /* re-enables a paused listener */
    _Atomic(zinx__task_t *) recycled; /* finished tasks, pushed by workers */
    outbox_t *outboxes;               /* one per worker fed this iteration */
    size_t noutboxes, outbox_cap;
    zinx_conn_t **retained; /* connections holding buffers (references) */
    size_t nretained, retained_cap;
    zinx__timer_t trim_timer; /* sweeps `retained` */
    /* Lingering sockets, a FIFO (equal linger times keep it sorted),
       each entry holding a reference. */
    zinx_conn_t *linger_head, *linger_tail;
    size_t nlinger;

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

static void wake(zinx__loop_t *loop)
{
    if (!atomic_exchange(&loop->wake_pending, true)) {
        uint64_t one = 1;
        ssize_t w = write(loop->wakefd, &one, sizeof(one));
        ZINX__UNUSED(w); /* EAGAIN means the counter is already nonzero */
    }
}

void zinx__loop_post(zinx__loop_t *loop, zinx__pollable_t *p)
{
    zinx__pollable_t *head = atomic_load(&loop->posted);
    do {
        p->posted_next = head;
    } while (!atomic_compare_exchange_weak(&loop->posted, &head, p));
    wake(loop);
}

void zinx__loop_request_stop_listen(zinx__loop_t *loop)
{
    atomic_store(&loop->stop_listen_req, true);
    wake(loop);
}

void zinx__loop_request_quit(zinx__loop_t *loop, uint64_t deadline_ms)
{
    atomic_store(&loop->quit_req_deadline_ms, deadline_ms);
    atomic_store(&loop->quit_req, true);
    wake(loop);
}

zinx_server_t *zinx__loop_server(const zinx__loop_t *loop)
{
    return loop->server;
}

int zinx__loop_reserve_timer(zinx__loop_t *loop)
{
    size_t need = loop->timer_users + 1 + LOOP_OWN_TIMERS;
    if (zinx__timer_heap_reserve(&loop->timers, need) != 0)
        return ZINX_ENOMEM;
    loop->timer_users++;
    return 0;
}

void zinx__loop_release_timer(zinx__loop_t *loop)
{
    loop->timer_users--;
}

void zinx__loop_schedule(zinx__loop_t *loop, zinx_conn_t *conn)
{
    zinx__conn_links_t *l = zinx__conn_links(conn);
    if (l->in_attn)
        return;
    l->in_attn = true;
    l->attn_next = loop->attn_head;
    loop->attn_head = zinx_conn_ref(conn);
}

void zinx__loop_bury(zinx__loop_t *loop, zinx_conn_t *conn)
{
    /* Each connection closes its socket once, so it is buried once. */
    zinx__conn_links(conn)->grave_next = loop->grave_head;
    loop->grave_head = conn;
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
    zinx__conn_links_t *l = zinx__conn_links(conn);
    l->linger_next = NULL;
    l->linger_deadline_ms = zinx__now_ms() + LOOP_LINGER_MS;
    l->linger_backlog = zinx__conn_linger_backlog(conn);
    if (loop->linger_tail != NULL)
        zinx__conn_links(loop->linger_tail)->linger_next = conn;
    else
        loop->linger_head = conn;
    loop->linger_tail = zinx_conn_ref(conn);
    loop->nlinger++;
}

static zinx_conn_t *pop_lingerer(zinx__loop_t *loop)
{
    zinx_conn_t *c = loop->linger_head;
    loop->linger_head = zinx__conn_links(c)->linger_next;
    if (loop->linger_head == NULL)
        loop->linger_tail = NULL;
    loop->nlinger--;
    return c;
}

/* Puts c (whose reference the list keeps) back at the tail. */
static void linger_again(zinx__loop_t *loop, zinx_conn_t *c)
{
    zinx__conn_links(c)->linger_next = NULL;
    if (loop->linger_tail != NULL)
        zinx__conn_links(loop->linger_tail)->linger_next = c;
    else
        loop->linger_head = c;
    loop->linger_tail = c;
    loop->nlinger++;
}

/* The linger time is up. A peer that still acknowledges what we owe it
   is reading slowly, not gone: it gets another period, as long as each
   period shows progress. One that made none is closed, and what it did
   not take is lost. */
static void linger_expired(zinx__loop_t *loop, zinx_conn_t *c, uint64_t now)
{
    zinx__conn_links_t *l = zinx__conn_links(c);
    size_t backlog = zinx__conn_linger_backlog(c);
    if (backlog > 0 && backlog < l->linger_backlog) {
        l->linger_backlog = backlog;
        l->linger_deadline_ms = now + LOOP_LINGER_MS;
        linger_again(loop, c);
        return;
    }
    zinx__conn_close_fd(c); /* no-op if the peer closed first */
    zinx_conn_unref(c);
}

/* Closes lingering sockets whose time is up; returns the epoll timeout. */
static int expire_lingerers(zinx__loop_t *loop)
{
    uint64_t now = zinx__now_ms();
    while (loop->nlinger > 0) {
        zinx_conn_t *c = loop->linger_head;
        uint64_t deadline = zinx__conn_links(c)->linger_deadline_ms;
        if (deadline > now)
            return (int)(deadline - now);
        linger_expired(loop, pop_lingerer(loop), now);
    }
    return -1;
}

/* Quitting: a socket whose peer has acknowledged every byte we wrote can
   close without losing anything; the others keep lingering until their
   peer's EOF or the drain deadline (`force`), whichever comes first. */
static void settle_lingerers(zinx__loop_t *loop, bool force)
{
    size_t n = loop->nlinger;
    for (size_t i = 0; i < n; i++) {
        zinx_conn_t *c = pop_lingerer(loop);
        if (!force && zinx__conn_linger_backlog(c) > 0) {
            linger_again(loop, c);
            continue;
        }
        zinx__conn_close_fd(c);
        zinx_conn_unref(c);
    }
}

static void drain_wakefd(zinx__loop_t *loop)
{
    uint64_t v;
    ssize_t r = read(loop->wakefd, &v, sizeof(v));
    ZINX__UNUSED(r);
    /* Cleared before the posts are taken: a post that lands after the take
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

/* Runs what other threads posted, oldest first. */
static void run_posted(zinx__loop_t *loop)
{
    zinx__pollable_t *p = atomic_exchange(&loop->posted, NULL);
    zinx__pollable_t *fifo = NULL;
    while (p != NULL) {
        zinx__pollable_t *next = p->posted_next;
        p->posted_next = fifo;
        fifo = p;
        p = next;
    }
    while (fifo != NULL) {
        /* Read before running: the object may be posted again at once. */
        zinx__pollable_t *next = fifo->posted_next;
        if (fifo->kind == ZINX__POLL_DIALER) {
            zinx__dialer_run_posted((zinx_dialer_t *)fifo);
        } else {
            zinx__conn_run_posted((zinx_conn_t *)fifo);
        }
        fifo = next;
    }
}

static void run_requests(zinx__loop_t *loop)
{
    if (atomic_exchange(&loop->stop_listen_req, false))
        close_listener(loop);
    if (!loop->quitting && atomic_load(&loop->quit_req)) {
        loop->quitting = true;
        loop->quit_deadline_ms = atomic_load(&loop->quit_req_deadline_ms);
    }
}

static void run_attention(zinx__loop_t *loop)
{
    while (loop->attn_head != NULL) {
        zinx_conn_t *c = loop->attn_head;
        zinx__conn_links_t *l = zinx__conn_links(c);
        loop->attn_head = l->attn_next;
        l->attn_next = NULL;
        l->in_attn = false;
        zinx__conn_attend(c);
        zinx_conn_unref(c);
    }
}

static void release_graveyard(zinx__loop_t *loop)
{
    while (loop->grave_head != NULL) {
        zinx_conn_t *c = loop->grave_head;
        loop->grave_head = zinx__conn_links(c)->grave_next;
        zinx_conn_unref(c);
    }
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

static int min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    return b < 0 || a < b ? a : b;
}

/* Quitting: true once the loop may exit; else *timeout bounds the wait
   until lingering sockets are looked at again. */
static bool quit_done(zinx__loop_t *loop, int *timeout)
{
    uint64_t now = zinx__now_ms();
    bool force = now >= loop->quit_deadline_ms;
    settle_lingerers(loop, force);
    /* What was posted before the quit runs first (a dialer told that its
       connection ended drops its reference to it there). */
    if (atomic_load(&loop->posted) != NULL) {
        *timeout = 0;
        return false;
    }
    if (loop->nlinger == 0)
        return true;
    *timeout = min_timeout(*timeout, LOOP_QUIT_POLL_MS);
    return false;
}

static void *loop_main(void *arg)
{
    zinx__loop_t *loop = arg;
    struct epoll_event events[LOOP_MAX_EVENTS];
    int timeout = -1;
    for (;;) {
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
            run_posted(loop);
            run_requests(loop);
        }
        run_attention(loop);
        int t1 = zinx__timer_heap_run(&loop->timers, zinx__now_ms());
        run_attention(loop); /* timers may have queued output or closes */
        flush_outboxes(loop);
        free_recycled(loop);
        release_graveyard(loop);
        timeout = min_timeout(t1, expire_lingerers(loop));
        if (loop->quitting && quit_done(loop, &timeout))
            break;
    }
    settle_lingerers(loop, true);
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
    zinx__pollable_t *p = atomic_exchange(&loop->posted, NULL);
    while (p != NULL) {
        zinx__pollable_t *next = p->posted_next;
        if (p->kind == ZINX__POLL_DIALER)
            zinx__dialer_unref((zinx_dialer_t *)p);
        else
            zinx_conn_unref((zinx_conn_t *)p);
        p = next;
    }
    free(loop->retained);
    free(loop->outboxes);
    free_recycled(loop); /* workers are joined: nothing more arrives */
    zinx__timer_heap_free(&loop->timers);
    free(loop->rbuf);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    if (loop->epfd >= 0)
        close(loop->epfd);
    free(loop);
}
