/*
 * T13, graceful stop under load: readers keep requests in flight on many
 * connections while a few "hogs" have megabytes of replies queued that
 * they never read. zinx_server_stop() + zinx_server_wait() must close the
 * listener first (new connects are refused while the drain still runs),
 * deliver a reply for every request the server decoded, force-close the
 * hogs at DrainTimeoutMs, finish within that deadline plus a margin, and
 * run each connection's hooks exactly once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"
#include "test_probe.h"

#define BIG_ID 2u
#define BIG_REPLY (64u * 1024u)
#define HOG_REQUESTS 96 /* 6 MiB: more than a socket's buffers hold */
#define WINDOW 8u
#define MAX_IDS 8192

typedef struct shared {
    atomic_uint handled[MAX_IDS]; /* per reader stream */
    atomic_uint send_failed[MAX_IDS];
    atomic_int start[MAX_IDS], stop[MAX_IDS];
    atomic_int bad;
} shared_t;

static uint8_t big_reply[BIG_REPLY];

static void count_echo(zinx_request_t *req, void *udata)
{
    shared_t *sh = udata;
    uint32_t stream = 0, seq = 0;
    if (frame_payload_check(zinx_request_data(req), zinx_request_data_len(req),
                            &stream, &seq) != 0 ||
        stream >= MAX_IDS) {
        atomic_fetch_add(&sh->bad, 1);
        return;
    }
    atomic_fetch_add(&sh->handled[stream], 1);
    if (zinx_conn_send_msg(zinx_request_conn(req), TC_ECHO_ID,
                           zinx_request_data(req),
                           zinx_request_data_len(req)) != 0)
        atomic_fetch_add(&sh->send_failed[stream], 1);
}

static void big_handle(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), BIG_ID, big_reply, BIG_REPLY);
}

static void on_start(zinx_conn_t *conn, void *udata)
{
    shared_t *sh = udata;
    uint64_t id = zinx_conn_id(conn);
    if (id < MAX_IDS)
        atomic_fetch_add(&sh->start[id], 1);
    else
        atomic_fetch_add(&sh->bad, 1);
}

static void on_stop(zinx_conn_t *conn, void *udata)
{
    shared_t *sh = udata;
    uint64_t id = zinx_conn_id(conn);
    if (id < MAX_IDS)
        atomic_fetch_add(&sh->stop[id], 1);
    else
        atomic_fetch_add(&sh->bad, 1);
}

/* ---- the readers' client loop ------------------------------------------ */

typedef struct reader {
    int fd;
    uint32_t stream;
    uint32_t next_send, next_expect;
    bool eof, failed;
    int err;
    uint16_t in_len, out_off, out_len;
    uint8_t in[1024];
    uint8_t out[WINDOW * (ZINX_HEADER_LEN + FRAME_PAYLOAD_MAX)];
} reader_t;

typedef struct client_loop {
    reader_t *r;
    int first, step, count;
    atomic_int *answered; /* readers with at least one reply */
    atomic_bool *quit;
    atomic_int *done;
    pthread_t thread;
} client_loop_t;

static void reader_pump(reader_t *r)
{
    if (r->out_off == r->out_len)
        r->out_off = r->out_len = 0;
    while (r->next_send - r->next_expect < WINDOW &&
           r->out_len + ZINX_HEADER_LEN + FRAME_PAYLOAD_MAX <= sizeof(r->out)) {
        uint8_t p[FRAME_PAYLOAD_MAX];
        uint32_t len = frame_payload_make(p, r->stream, r->next_send++);
        r->out_len =
            (uint16_t)(r->out_len + frame_encode(ZINX_FORMAT_TLV, TC_ECHO_ID, p,
                                                 len, r->out + r->out_len));
    }
    while (r->out_off < r->out_len) {
        ssize_t n =
            send(r->fd, r->out + r->out_off, (size_t)(r->out_len - r->out_off),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            r->out_off = (uint16_t)(r->out_off + n);
            continue;
        }
        /* After the server stopped reading, sends may fail or stall;
           the replies owed still arrive. */
        return;
    }
}

static void reader_read(reader_t *r, atomic_int *answered)
{
    for (;;) {
        ssize_t n = recv(r->fd, r->in + r->in_len, sizeof(r->in) - r->in_len,
                         MSG_DONTWAIT);
        if (n == 0) {
            r->eof = true;
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                r->failed = true;
                r->err = errno;
            }
            return;
        }
        r->in_len = (uint16_t)(r->in_len + n);
        size_t off = 0;
        for (;;) {
            zinx_msg_t m;
            long k = zinx_unpack(ZINX_FORMAT_TLV, FRAME_PAYLOAD_MAX,
                                 r->in + off, r->in_len - off, &m);
            if (k == ZINX_EAGAIN)
                break;
            uint32_t stream = 0, seq = 0;
            if (k < 0 ||
                frame_payload_check(m.data, m.len, &stream, &seq) != 0 ||
                stream != r->stream || seq != r->next_expect) {
                r->failed = true;
                r->err = EBADMSG;
                return;
            }
            if (r->next_expect++ == 0)
                atomic_fetch_add(answered, 1);
            off += (size_t)k;
        }
        memmove(r->in, r->in + off, r->in_len - off);
        r->in_len = (uint16_t)(r->in_len - off);
    }
}

static void *client_main(void *arg)
{
    client_loop_t *cl = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) { /* no cmocka assertion off the test's thread */
        for (int i = cl->first; i < cl->count; i += cl->step) {
            cl->r[i].failed = true;
            cl->r[i].err = errno;
        }
        return NULL;
    }
    for (int i = cl->first; i < cl->count; i += cl->step) {
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &cl->r[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cl->r[i].fd, &e);
        reader_pump(&cl->r[i]);
    }
    struct epoll_event evs[128];
    int open = 0;
    do {
        int n = epoll_wait(ep, evs, 128, 10);
        for (int i = 0; i < n; i++) {
            reader_t *r = evs[i].data.ptr;
            reader_read(r, cl->answered);
            if (r->eof || r->failed)
                epoll_ctl(ep, EPOLL_CTL_DEL, r->fd, NULL);
            else
                reader_pump(r);
        }
        open = 0;
        for (int i = cl->first; i < cl->count; i += cl->step)
            open += !cl->r[i].eof && !cl->r[i].failed;
    } while (open > 0 && !atomic_load(cl->quit));
    close(ep);
    atomic_fetch_add(cl->done, 1);
    return NULL;
}

/* ---- the test
 * ---------------------------------------------------------------- */

typedef struct refuse_probe {
    int port;
    atomic_bool stop;
    atomic_ullong refused_at;
    pthread_t thread;
} refuse_probe_t;

static void *refuse_main(void *arg)
{
    refuse_probe_t *p = arg;
    while (!atomic_load(&p->stop)) {
        int fd = tc_connect(p->port);
        if (fd == -ECONNREFUSED) {
            atomic_store(&p->refused_at, tf_now_ms());
            return NULL;
        }
        if (fd >= 0)
            close(fd);
        tf_sleep_ms(2);
    }
    return NULL;
}

static void t13_graceful_stop_under_load(void **state)
{
    (void)state;
    const int readers = TF_PICK3(1000, 400, 200);
    const int hogs = TF_PICK(10, 4);
    const unsigned drain_ms = TF_PICK(1500u, 2500u);
    probe_raise_nofile();
    for (uint32_t i = 0; i < BIG_REPLY; i++)
        big_reply[i] = (uint8_t)i;
    shared_t *sh = calloc(1, sizeof(*sh));
    assert_non_null(sh);

    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    cfg.drain_timeout_ms = drain_ms;
    cfg.max_packet_size = 2u * BIG_REPLY;
    cfg.output_hard_limit = 0; /* the hogs must still be there at stop */
    cfg.output_soft_limit = 0;
    zinx_server_t *s = zinx_server_new(&cfg);
    assert_non_null(s);
    zinx_server_set_log_sink(s, tf_log_sink, NULL);
    zinx_router_t echo = {.handle = count_echo, .udata = sh};
    zinx_router_t big = {.handle = big_handle};
    assert_int_equal(zinx_server_add_router(s, TC_ECHO_ID, &echo), 0);
    assert_int_equal(zinx_server_add_router(s, BIG_ID, &big), 0);
    assert_int_equal(zinx_server_on_conn_start(s, on_start, sh), 0);
    assert_int_equal(zinx_server_on_conn_stop(s, on_stop, sh), 0);
    int port = tf_start_or_fail(s);

    reader_t *r = calloc((size_t)readers, sizeof(*r));
    assert_non_null(r);
    for (int i = 0; i < readers; i++) {
        r[i].stream = (uint32_t)i;
        r[i].fd = tc_connect(port);
        assert_true(r[i].fd >= 0);
    }
    int hog_fd[10];
    uint8_t reqs[HOG_REQUESTS * ZINX_HEADER_LEN];
    for (int i = 0; i < HOG_REQUESTS; i++)
        frame_encode(ZINX_FORMAT_TLV, BIG_ID, NULL, 0,
                     reqs + i * ZINX_HEADER_LEN);
    for (int i = 0; i < hogs; i++) {
        tc_opts_t o = {.rcvbuf = 4096};
        hog_fd[i] = tc_connect_opts(port, &o);
        assert_true(hog_fd[i] >= 0);
        assert_int_equal(tc_send_raw(hog_fd[i], reqs, sizeof(reqs), 5000), 0);
    }

    atomic_int answered = 0, loops_done = 0;
    atomic_bool quit = false;
    client_loop_t loops[2];
    for (int i = 0; i < 2; i++) {
        loops[i] = (client_loop_t){.r = r,
                                   .first = i,
                                   .step = 2,
                                   .count = readers,
                                   .answered = &answered,
                                   .quit = &quit,
                                   .done = &loops_done};
        assert_int_equal(
            pthread_create(&loops[i].thread, NULL, client_main, &loops[i]), 0);
    }
    uint64_t end = tf_now_ms() + 30000;
    while (atomic_load(&answered) < readers && tf_now_ms() < end)
        tf_sleep_ms(5);
    assert_int_equal(atomic_load(&answered), readers);
    assert_int_equal(tf_stat(s, TF_STAT(connections)),
                     (uint64_t)(readers + hogs));
    tf_sleep_ms(100); /* in full flow */

    refuse_probe_t probe = {.port = port};
    uint64_t t0 = tf_now_ms();
    assert_int_equal(zinx_server_stop(s), 0);
    assert_int_equal(pthread_create(&probe.thread, NULL, refuse_main, &probe),
                     0);
    assert_int_equal(zinx_server_wait(s), 0);
    uint64_t took = tf_now_ms() - t0;
    atomic_store(&probe.stop, true);
    pthread_join(probe.thread, NULL);
    uint64_t refused_at = atomic_load(&probe.refused_at);

    /* The loops end once all their readers saw EOF; quit is only a
       backstop against a hang. */
    for (int i = 0; i < 200 && atomic_load(&loops_done) < 2; i++)
        tf_sleep_ms(50);
    atomic_store(&quit, true);
    for (int i = 0; i < 2; i++)
        pthread_join(loops[i].thread, NULL);

    tf_note("T13: %d readers + %d hogs; stop took %llu ms (drain %u ms); "
            "new connects refused after %lld ms",
            readers, hogs, (unsigned long long)took, drain_ms,
            refused_at ? (long long)(refused_at - t0) : -1LL);
    /* The listener went first, long before the drain ended. */
    assert_true(refused_at != 0);
    assert_true(refused_at - t0 < TF_PICK(500u, 1500u));
    assert_true(refused_at - t0 < took);
    /* The hogs held the drain to its deadline, and no longer. */
    assert_true(took + 50 >= drain_ms);
    assert_true(took <= drain_ms + (unsigned)TF_SLACK_MS + 600u);

    /* Every decoded request was answered, then the connection ended
       cleanly. */
    uint64_t decoded = 0, delivered = 0;
    for (int i = 0; i < readers; i++) {
        unsigned handled = atomic_load(&sh->handled[i]);
        decoded += handled;
        delivered += r[i].next_expect;
        if (r[i].failed || !r[i].eof || handled != r[i].next_expect ||
            atomic_load(&sh->send_failed[i]) != 0)
            fail_msg("reader %d: decoded %u, replies received %u, send "
                     "failures %u, eof %d, error %s",
                     i, handled, r[i].next_expect,
                     atomic_load(&sh->send_failed[i]), r[i].eof,
                     r[i].failed ? strerror(r[i].err) : "none");
        close(r[i].fd);
    }
    tf_note("T13: %llu requests decoded, %llu replies delivered",
            (unsigned long long)decoded, (unsigned long long)delivered);
    for (int i = 0; i < hogs; i++) {
        int rc = tc_wait_closed(hog_fd[i], 10000, NULL);
        assert_true(rc == 0 || rc == -ECONNRESET);
        close(hog_fd[i]);
    }

    /* Hooks once each, for every connection accepted (the probe's
       included). */
    zinx_server_stats_t st;
    zinx_server_stats(s, &st);
    assert_int_equal(atomic_load(&sh->bad), 0);
    assert_int_equal(st.connections, 0);
    assert_int_equal(st.closed, st.accepted);
    assert_true(st.accepted < MAX_IDS);
    for (uint64_t id = 1; id <= st.accepted; id++) {
        if (atomic_load(&sh->start[id]) != 1 || atomic_load(&sh->stop[id]) != 1)
            fail_msg("conn %llu: OnConnStart %d, OnConnStop %d",
                     (unsigned long long)id, atomic_load(&sh->start[id]),
                     atomic_load(&sh->stop[id]));
    }
    zinx_server_free(s);
    free(r);
    free(sh);
}

/* Stopping an idle server is quick, and free() after wait() is fine. */
static void t13_idle_stop_is_quick(void **state)
{
    (void)state;
    zinx_config_t cfg;
    tf_config_many_conns(&cfg);
    zinx_server_t *s = tf_echo_server_new(&cfg);
    int port = tf_start_or_fail(s);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tc_echo_call(fd, ZINX_FORMAT_TLV, "x", 1, 2000), 0);
    uint64_t t0 = tf_now_ms();
    zinx_server_stop(s);
    assert_int_equal(zinx_server_wait(s), 0);
    uint64_t took = tf_now_ms() - t0;
    /* The client reads its EOF: the graceful close reached it. */
    assert_int_equal(tc_wait_closed(fd, 2000, NULL), 0);
    close(fd);
    tf_note("T13: idle stop with one reading client took %llu ms",
            (unsigned long long)took);
    assert_true(took < 1000);
    assert_int_equal(tc_connect(port), -ECONNREFUSED);
    zinx_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t13_graceful_stop_under_load),
        cmocka_unit_test(t13_idle_stop_is_quick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
