/*
 * T10, abrupt death: client processes SIGKILLed in the middle of a
 * frame, clients resetting (SO_LINGER {1, 0}) in the middle of large
 * replies while another thread keeps sending to every connection. The
 * server must survive (SIGPIPE keeps its default, fatal action here, so a
 * send without MSG_NOSIGNAL would kill the test), get back to zero
 * connections and to its descriptor count within 2 s, and run OnConnStart
 * and OnConnStop exactly once per connection.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"
#include "test_probe.h"

#define MAX_IDS 4096
#define BIG_ID 2u
#define BIG_REPLY (64u * 1024u)
#define SETTLE_MS TF_PICK(2000, 5000)

typedef struct hooks {
    atomic_int start[MAX_IDS];
    atomic_int stop[MAX_IDS];
    atomic_int bad_ids;
    /* Connections kept by the pusher (references taken in OnConnStart). */
    pthread_mutex_t lock;
    zinx_conn_t *kept[MAX_IDS];
    int nkept;
    bool keep;
} hooks_t;

static hooks_t *hooks_new(bool keep)
{
    hooks_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    pthread_mutex_init(&h->lock, NULL);
    h->keep = keep;
    return h;
}

static void on_start(zinx_conn_t *conn, void *udata)
{
    hooks_t *h = udata;
    uint64_t id = zinx_conn_id(conn);
    if (id >= MAX_IDS) {
        atomic_fetch_add(&h->bad_ids, 1);
        return;
    }
    atomic_fetch_add(&h->start[id], 1);
    if (h->keep) {
        pthread_mutex_lock(&h->lock);
        h->kept[h->nkept++] = zinx_conn_ref(conn);
        pthread_mutex_unlock(&h->lock);
    }
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    hooks_t *h = udata;
    uint64_t id = zinx_conn_id(conn);
    if (id >= MAX_IDS) {
        atomic_fetch_add(&h->bad_ids, 1);
        return;
    }
    /* Stop after start, never twice. */
    if (atomic_load(&h->start[id]) != 1)
        atomic_fetch_add(&h->bad_ids, 1);
    atomic_fetch_add(&h->stop[id], 1);
}

/* Every connection 1..n had exactly one start and one stop. */
static void assert_hooks_once(hooks_t *h, uint64_t n)
{
    assert_int_equal(atomic_load(&h->bad_ids), 0);
    assert_true(n < MAX_IDS);
    for (uint64_t id = 1; id <= n; id++) {
        if (atomic_load(&h->start[id]) != 1 || atomic_load(&h->stop[id]) != 1)
            fail_msg("conn %llu: OnConnStart ran %d times, OnConnStop %d",
                     (unsigned long long)id, atomic_load(&h->start[id]),
                     atomic_load(&h->stop[id]));
    }
}

static void hooks_free(hooks_t *h)
{
    for (int i = 0; i < h->nkept; i++)
        zinx_conn_unref(h->kept[i]);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static uint8_t big_reply[BIG_REPLY];

static void big_handle(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), BIG_ID, big_reply, BIG_REPLY);
}

static zinx_server_t *server_with_hooks(hooks_t *h)
{
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.max_packet_size = 2u * BIG_REPLY;
    cfg.output_hard_limit = 64u << 20;
    zinx_server_t *s = tf_echo_server_new(&cfg);
    zinx_router_t big = {.handle = big_handle};
    assert_int_equal(zinx_server_add_router(s, BIG_ID, &big), 0);
    assert_int_equal(zinx_server_on_conn_start(s, on_start, h), 0);
    assert_int_equal(zinx_server_on_conn_stop(s, on_stop, h), 0);
    return s;
}

/* Waits until this process has want descriptors; returns the count. */
static int wait_fd_count(int want, int timeout_ms)
{
    uint64_t end = tf_now_ms() + (uint64_t)timeout_ms;
    int n;
    while ((n = probe_fd_count()) != want && tf_now_ms() < end)
        tf_sleep_ms(5);
    return n;
}

/* ---- SIGKILL in the middle of a frame ------------------------------------ */

/* Child: waits for the port, connects, makes one call, leaves half a
   frame behind, reports ready, and waits to be killed. */
static void victim_main(int port_rd, int ready_wr)
{
    int port;
    if (read(port_rd, &port, sizeof(port)) != (ssize_t)sizeof(port))
        _exit(2);
    int fd = tc_connect(port);
    if (fd < 0 || tc_echo_call(fd, ZINX_FORMAT_TLV, "pre", 3, 5000) != 0)
        _exit(3);
    uint8_t half[ZINX_HEADER_LEN + 50];
    zinx_pack_header(ZINX_FORMAT_TLV, TC_ECHO_ID, 100, half);
    memset(half + ZINX_HEADER_LEN, 'h', 50);
    if (tc_send_raw(fd, half, sizeof(half), 5000) != 0)
        _exit(4);
    if (write(ready_wr, "R", 1) != 1)
        _exit(5);
    for (;;)
        pause();
}

static void t10_sigkill_mid_frame(void **state)
{
    (void)state;
    const int k = TF_PICK(20, 10);
    signal(SIGPIPE, SIG_DFL);
    pid_t pids[20];
    int port_wr[20], ready[2];
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    /* Forked before the server's threads exist. */
    fflush(NULL);
    for (int i = 0; i < k; i++) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            /* A test that fails (or a sanitizer that stops it) must not
               leave its victims behind. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(p[1]);
            close(ready[0]);
            victim_main(p[0], ready[1]);
        }
        close(p[0]);
        port_wr[i] = p[1];
    }
    close(ready[1]);

    hooks_t *h = hooks_new(false);
    zinx_server_t *s = server_with_hooks(h);
    int port = tf_start_or_fail(s);
    int fds0 = probe_fd_count() - k; /* the port pipes close below */
    for (int i = 0; i < k; i++) {
        assert_int_equal(write(port_wr[i], &port, sizeof(port)),
                         (ssize_t)sizeof(port));
        close(port_wr[i]);
    }
    for (int i = 0; i < k; i++) {
        char c;
        struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 10000), 1);
        assert_int_equal(read(ready[0], &c, 1), 1);
    }
    close(ready[0]);
    fds0 -= 1;
    assert_int_equal(tf_stat(s, TF_STAT(connections)), (uint64_t)k);

    for (int i = 0; i < k; i++)
        kill(pids[i], SIGKILL);
    uint64_t t0 = tf_now_ms();
    for (int i = 0; i < k; i++)
        waitpid(pids[i], NULL, 0);
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, SETTLE_MS), 0);
    long ms = (long)(tf_now_ms() - t0);
    assert_int_equal(wait_fd_count(fds0, SETTLE_MS), fds0);
    tf_note("T10: %d killed clients gone from the server in %ld ms", k, ms);
    assert_int_equal(tf_stat(s, TF_STAT(closed)), (uint64_t)k);
    assert_hooks_once(h, (uint64_t)k);

    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "alive", 5, 2000), 0);
    close(fd);
    zinx_server_free(s);
    hooks_free(h);
}

/* ---- resets in the middle of replies ---------------------------------------
 */

typedef struct pusher {
    hooks_t *h;
    atomic_bool stop;
    atomic_long sent, refused;
    pthread_t thread;
} pusher_t;

/* Keeps sending to every connection it holds, dead or alive. */
static void *push_main(void *arg)
{
    pusher_t *p = arg;
    static const uint8_t chunk[1024];
    while (!atomic_load(&p->stop)) {
        pthread_mutex_lock(&p->h->lock);
        int n = p->h->nkept;
        pthread_mutex_unlock(&p->h->lock);
        for (int i = 0; i < n; i++) {
            /* kept[i] for i < n is written once, before nkept grew. */
            pthread_mutex_lock(&p->h->lock);
            zinx_conn_t *c = p->h->kept[i];
            pthread_mutex_unlock(&p->h->lock);
            if (zinx_conn_send_msg(c, 7, chunk, sizeof(chunk)) == 0)
                atomic_fetch_add(&p->sent, 1);
            else
                atomic_fetch_add(&p->refused, 1);
        }
        tf_sleep_ms(1);
    }
    return NULL;
}

static void t10_reset_mid_reply(void **state)
{
    (void)state;
    const int k = TF_PICK(30, 12);
    signal(SIGPIPE, SIG_DFL);
    for (uint32_t i = 0; i < BIG_REPLY; i++)
        big_reply[i] = (uint8_t)(i * 3u);
    hooks_t *h = hooks_new(true);
    zinx_server_t *s = server_with_hooks(h);
    int port = tf_start_or_fail(s);
    int fds0 = probe_fd_count();
    pusher_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->h = h;
    assert_int_equal(pthread_create(&p->thread, NULL, push_main, p), 0);

    int fds[30];
    uint8_t reqs[20 * ZINX_HEADER_LEN];
    for (int i = 0; i < 20; i++)
        frame_encode(ZINX_FORMAT_TLV, BIG_ID, NULL, 0,
                     reqs + i * ZINX_HEADER_LEN);
    for (int i = 0; i < k; i++) {
        fds[i] = tc_connect(port);
        assert_true(fds[i] >= 0);
        /* 1.3 MiB of replies asked for ... */
        assert_int_equal(tc_send_raw(fds[i], reqs, sizeof(reqs), 2000), 0);
    }
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), (uint64_t)k, 5000),
                     (uint64_t)k);
    for (int i = 0; i < k; i++) {
        /* ... some of it read ... */
        uint8_t buf[10000];
        assert_true(tc_recv_raw(fds[i], buf, sizeof(buf), 5000) == 0);
        if (i % 3 == 2) {
            /* ... and half a request left behind, for some ... */
            uint8_t half[ZINX_HEADER_LEN + 10];
            zinx_pack_header(ZINX_FORMAT_TLV, TC_ECHO_ID, 500, half);
            memset(half + ZINX_HEADER_LEN, 'x', 10);
            tc_send_raw(fds[i], half, sizeof(half), 2000);
        }
    }
    tf_sleep_ms(20);
    /* ... then a reset (or, for some, a close with unread data, which is
       a reset too). */
    uint64_t t0 = tf_now_ms();
    for (int i = 0; i < k; i++) {
        if (i % 2 == 0)
            tc_close_rst(fds[i]);
        else
            close(fds[i]);
    }
    assert_int_equal(tf_wait_stat(s, TF_STAT(connections), 0, SETTLE_MS), 0);
    long ms = (long)(tf_now_ms() - t0);
    tf_sleep_ms(50);
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    tf_note("T10: %d reset clients gone in %ld ms; pusher: %ld sends "
            "queued, %ld refused",
            k, ms, atomic_load(&p->sent), atomic_load(&p->refused));
    assert_true(atomic_load(&p->refused) > 0); /* it did hit dead peers */
    assert_int_equal(wait_fd_count(fds0, SETTLE_MS), fds0);
    assert_int_equal(tf_stat(s, TF_STAT(closed)), (uint64_t)k);
    assert_hooks_once(h, (uint64_t)k);

    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "alive", 5, 2000), 0);
    close(fd);
    zinx_server_free(s);
    /* The kept references outlive the server: still safe to drop. */
    hooks_free(h);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t10_sigkill_mid_frame),
        cmocka_unit_test(t10_reset_mid_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
