/*
 * Churn: many short connections that end in every way while handlers
 * sleep at random, a user thread closes connections under them, and the
 * server stops under load. Checks that replies never reach the wrong
 * connection, per-connection order holds, hooks run exactly once and
 * nothing hangs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"
#include "test_frame.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 10000

enum { MAX_LIVE = 512 };

/* ---- server side ---- */

enum ch_bad {
    CH_HANDLER_EARLY,
    CH_HANDLER_LATE,
    CH_OVERLAP,
    CH_STOP_TWICE,
    CH_STOP_NO_START,
    CH_STOP_IN_HANDLER,
    CH_TOKEN,
    CH_COUNT
};

static const char *const ch_names[CH_COUNT] = {
    "handler before OnConnStart",
    "handler after OnConnStop",
    "overlapping handlers",
    "OnConnStop twice",
    "OnConnStop without OnConnStart",
    "OnConnStop during a handler",
    "frames of two tokens on one connection",
};

typedef struct ch_conn {
    atomic_int stopped;
    atomic_int in_handler;
    uint32_t token; /* first token seen; 0 before the first frame */
    struct ch_conn *next;
} ch_conn_t;

typedef struct ch_server {
    pthread_mutex_t mu;
    ch_conn_t *recs;                 /* every record, freed at the end */
    zinx_conn_t *killable[MAX_LIVE]; /* refs the killer may close */
    int nkillable;
    atomic_int bad[CH_COUNT];
    atomic_int starts, stops, kills;
    atomic_int stop_killer;
} ch_server_t;

static void ch_bad(ch_server_t *s, enum ch_bad b)
{
    atomic_fetch_add(&s->bad[b], 1);
}

static void ch_start(zinx_conn_t *conn, void *udata)
{
    ch_server_t *s = udata;
    ch_conn_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return;
    atomic_init(&r->stopped, 0);
    atomic_init(&r->in_handler, 0);
    pthread_mutex_lock(&s->mu);
    r->next = s->recs;
    s->recs = r;
    pthread_mutex_unlock(&s->mu);
    zinx_conn_set_data(conn, r);
    atomic_fetch_add(&s->starts, 1);
}

static void unlist(ch_server_t *s, zinx_conn_t *conn)
{
    zinx_conn_t *drop = NULL;

    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nkillable; i++) {
        if (s->killable[i] == conn) {
            drop = conn;
            s->killable[i] = s->killable[--s->nkillable];
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    zinx_conn_unref(drop);
}

static void ch_stop(zinx_conn_t *conn, void *udata)
{
    ch_server_t *s = udata;
    ch_conn_t *r = zinx_conn_data(conn);

    if (r == NULL) {
        ch_bad(s, CH_STOP_NO_START);
        return;
    }
    if (atomic_load(&r->in_handler))
        ch_bad(s, CH_STOP_IN_HANDLER);
    if (atomic_exchange(&r->stopped, 1))
        ch_bad(s, CH_STOP_TWICE);
    unlist(s, conn);
    atomic_fetch_add(&s->stops, 1);
}

/* Odd tokens mark connections the killer thread may close. */
static void maybe_list(ch_server_t *s, zinx_conn_t *conn, uint32_t token)
{
    if ((token & 1) == 0)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->nkillable < MAX_LIVE)
        s->killable[s->nkillable++] = zinx_conn_ref(conn);
    pthread_mutex_unlock(&s->mu);
}

/* Payload: token, seq. Sleeps 0..255 us (by seq), then echoes. */
static void ch_handle(zinx_request_t *req, void *udata)
{
    ch_server_t *s = udata;
    zinx_conn_t *conn = zinx_request_conn(req);
    ch_conn_t *r = zinx_conn_data(conn);

    if (r == NULL) {
        ch_bad(s, CH_HANDLER_EARLY);
        return;
    }
    if (atomic_load(&r->stopped))
        ch_bad(s, CH_HANDLER_LATE);
    if (atomic_exchange(&r->in_handler, 1))
        ch_bad(s, CH_OVERLAP);
    const uint8_t *p = zinx_request_data(req);
    if (zinx_request_data_len(req) == 8) {
        uint32_t token = frame_get_u32(p), seq = frame_get_u32(p + 4);
        if (r->token == 0) {
            r->token = token;
            maybe_list(s, conn, token);
        } else if (r->token != token) {
            ch_bad(s, CH_TOKEN);
        }
        if (seq % 3 == 0)
            tf_sleep_us((int)(seq * 37 % 256));
    }
    zinx_conn_send_msg(conn, 1, p, zinx_request_data_len(req));
    atomic_store(&r->in_handler, 0);
}

/* Closes a random listed connection every millisecond or so. */
static void *killer_main(void *arg)
{
    ch_server_t *s = arg;
    uint32_t seed = 4242;

    while (!atomic_load(&s->stop_killer)) {
        zinx_conn_t *victim = NULL;
        pthread_mutex_lock(&s->mu);
        if (s->nkillable > 0)
            victim = zinx_conn_ref(
                s->killable[tc_rand(&seed) % (uint32_t)s->nkillable]);
        pthread_mutex_unlock(&s->mu);
        if (victim != NULL) {
            if (tc_rand(&seed) % 2)
                zinx_conn_close(victim);
            else
                zinx_conn_close_now(victim);
            zinx_conn_unref(victim);
            atomic_fetch_add(&s->kills, 1);
        }
        tf_sleep_us(700);
    }
    return NULL;
}

static void ch_server_free(ch_server_t *s)
{
    while (s->recs != NULL) {
        ch_conn_t *next = s->recs->next;
        free(s->recs);
        s->recs = next;
    }
    for (int i = 0; i < s->nkillable; i++)
        zinx_conn_unref(s->killable[i]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void ch_check(ch_server_t *s)
{
    for (int i = 0; i < CH_COUNT; i++)
        if (atomic_load(&s->bad[i]) != 0)
            fail_msg("%d x %s", atomic_load(&s->bad[i]), ch_names[i]);
    assert_int_equal(atomic_load(&s->starts), atomic_load(&s->stops));
    assert_int_equal(s->nkillable, 0);
}

static tf_server_t *ch_server_start(ch_server_t *s)
{
    zinx_config_t cfg;

    tf_config(&cfg);
    cfg.worker_pool_size = 3;
    cfg.max_worker_task_len = 4; /* reading pauses often */
    cfg.max_conn = MAX_LIVE;
    cfg.drain_timeout_ms = 2000;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t r = {.handle = ch_handle, .udata = s};
    TF_ASSERT_RC(zinx_server_add_router(ts->srv, 1, &r), 0);
    TF_ASSERT_RC(zinx_server_on_conn_start(ts->srv, ch_start, s), 0);
    TF_ASSERT_RC(zinx_server_on_conn_stop(ts->srv, ch_stop, s), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

static ch_server_t *ch_server_new(void)
{
    ch_server_t *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

/* ---- client side ---- */

enum { CONNS_PER_ROUND = 8, MAX_FRAMES = 40 };

typedef struct client {
    int port;
    int index;
    int rounds;
    int tolerate_refused; /* the server may stop at any time */
    uint32_t seed;
    atomic_int *stop; /* set: leave early */
    /* results */
    int wrong_token, wrong_order, short_reply, timeouts, other;
    char first[128];
    int connections;
} client_t;

static void client_err(client_t *c, int *counter, const char *what, int rc)
{
    (*counter)++;
    if (c->first[0] == '\0')
        snprintf(c->first, sizeof(c->first), "%s: %s", what, tf_rc_name(rc));
}

typedef struct cconn {
    int fd;
    uint32_t token;
    uint32_t sent;
    uint32_t got;
} cconn_t;

/*
 * Reads up to `want` replies, checking token and order. Returns 0, or
 * the rc that ended the read early.
 */
static int read_replies(client_t *c, cconn_t *k, uint32_t want)
{
    while (k->got < want) {
        uint8_t buf[8];
        uint32_t id, len;
        int rc =
            tc_recv_frame(k->fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO));
        if (rc != 0)
            return rc;
        if (len != 8 || frame_get_u32(buf) != k->token) {
            client_err(c, &c->wrong_token, "reply of another connection", 0);
            return -EPROTO;
        }
        if (frame_get_u32(buf + 4) != k->got) {
            client_err(c, &c->wrong_order, "reply out of order", 0);
            return -EPROTO;
        }
        k->got++;
    }
    return 0;
}

/* An early end is fine only where the killer (odd token) or a server
   stop may have closed the connection. */
static void early_end(client_t *c, cconn_t *k, int rc, const char *what)
{
    if (rc == -ETIMEDOUT) {
        client_err(c, &c->timeouts, what, rc);
        return;
    }
    if ((k->token & 1) || c->tolerate_refused)
        return;
    if (rc == -EPROTO && (c->wrong_token || c->wrong_order))
        return;
    client_err(c, &c->short_reply, what, rc);
}

static void finish_conn(client_t *c, cconn_t *k, int way)
{
    int rc;

    switch (way) {
    case 0: /* read everything, close */
        rc = read_replies(c, k, k->sent);
        if (rc != 0)
            early_end(c, k, rc, "read all");
        tc_close(k->fd);
        break;
    case 1: /* read some, reset */
        rc = read_replies(c, k, k->sent / 2);
        if (rc != 0)
            early_end(c, k, rc, "read half");
        tc_close_rst(k->fd);
        break;
    case 2: /* half-close, read to EOF */
        tc_shutdown_wr(k->fd);
        rc = read_replies(c, k, k->sent);
        if (rc == 0)
            rc = tc_expect_eof(k->fd, tf_ms(T_IO));
        if (rc != 0)
            early_end(c, k, rc, "half-close");
        tc_close(k->fd);
        break;
    default: /* leave with replies unread */
        tc_close(k->fd);
        break;
    }
}

static int start_conn(client_t *c, cconn_t *k, uint32_t token)
{
    uint8_t out[MAX_FRAMES * 16];
    size_t n = 0;

    k->fd = tc_connect(c->port);
    if (k->fd < 0)
        return k->fd;
    k->token = token;
    k->got = 0;
    k->sent = 1 + tc_rand(&c->seed) % MAX_FRAMES;
    for (uint32_t i = 0; i < k->sent; i++) {
        uint8_t p[8];
        frame_put_u32(p, token);
        frame_put_u32(p + 4, i);
        n += frame_encode(TLV, 1, p, 8, out + n);
    }
    int rc = tc_send_raw(k->fd, out, n, tf_ms(T_IO));
    if (rc != 0) {
        tc_close(k->fd);
        k->fd = -1;
    }
    return rc;
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    uint32_t next = 0;

    for (int r = 0; r < c->rounds && !atomic_load(c->stop); r++) {
        cconn_t k[CONNS_PER_ROUND];
        for (int i = 0; i < CONNS_PER_ROUND; i++) {
            uint32_t token = (uint32_t)(c->index + 1) << 20 | ++next;
            int rc = start_conn(c, &k[i], token);
            if (rc != 0 && !c->tolerate_refused)
                client_err(c, &c->other, "connect/send", rc);
            if (rc == 0)
                c->connections++;
        }
        for (int i = 0; i < CONNS_PER_ROUND; i++)
            if (k[i].fd >= 0)
                finish_conn(c, &k[i], (int)(tc_rand(&c->seed) % 4));
    }
    return NULL;
}

static void check_clients(client_t *cl, int n)
{
    for (int i = 0; i < n; i++) {
        client_t *c = &cl[i];
        if (c->wrong_token || c->wrong_order || c->short_reply || c->timeouts ||
            c->other)
            fail_msg("client %d: %d wrong-token, %d out-of-order, %d short,"
                     " %d timeouts, %d other; first: %s",
                     i, c->wrong_token, c->wrong_order, c->short_reply,
                     c->timeouts, c->other, c->first);
    }
}

static void run_clients(client_t *cl, pthread_t *th, int n, int port,
                        int rounds, atomic_int *stop, int tolerate)
{
    for (int i = 0; i < n; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].port = port;
        cl[i].index = i;
        cl[i].rounds = rounds;
        cl[i].seed = 1000u + (uint32_t)i;
        cl[i].stop = stop;
        cl[i].tolerate_refused = tolerate;
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    }
}

static void test_churn(void **state)
{
    (void)state;
    enum { CLIENTS = 4 };
    int rounds = tf_scaled(25, 5);
    ch_server_t *s = ch_server_new();
    tf_server_t *ts = ch_server_start(s);
    atomic_int *stop = calloc(1, sizeof(*stop));
    assert_non_null(stop);
    pthread_t killer, th[CLIENTS];
    client_t *cl = calloc(CLIENTS, sizeof(*cl));
    assert_non_null(cl);

    assert_int_equal(pthread_create(&killer, NULL, killer_main, s), 0);
    run_clients(cl, th, CLIENTS, ts->port, rounds, stop, 0);
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(tf_join(th[i], tf_ms(60000), NULL), 0);
    atomic_store(&s->stop_killer, 1);
    assert_int_equal(tf_join(killer, tf_ms(T_IO), NULL), 0);
    check_clients(cl, CLIENTS);

    uint64_t accepted = tf_stat(ts->srv, TF_STAT(accepted));
    assert_int_equal(accepted,
                     (uint64_t)CLIENTS * CONNS_PER_ROUND * (uint64_t)rounds);
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(closed), accepted, tf_ms(T_IO)),
        accepted);
    assert_int_equal(
        tf_wait_stat(ts->srv, TF_STAT(connections), 0, tf_ms(T_IO)), 0);
    tf_server_free(ts);
    ch_check(s);
    assert_int_equal(atomic_load(&s->starts), (int)accepted);
    if (tf_verbose())
        print_message("churn: %llu connections, %d killed\n",
                      (unsigned long long)accepted, atomic_load(&s->kills));
    ch_server_free(s);
    free(cl);
    free(stop);
}

/* The server stops while clients keep connecting and sending. */
static void test_stop_under_churn(void **state)
{
    (void)state;
    enum { CLIENTS = 3 };
    ch_server_t *s = ch_server_new();
    tf_server_t *ts = ch_server_start(s);
    atomic_int *stop = calloc(1, sizeof(*stop));
    assert_non_null(stop);
    pthread_t th[CLIENTS];
    client_t *cl = calloc(CLIENTS, sizeof(*cl));
    assert_non_null(cl);

    run_clients(cl, th, CLIENTS, ts->port, 1000000, stop, 1);
    assert_true(tf_wait_stat_ge(ts->srv, TF_STAT(accepted), 50, tf_ms(T_IO)) >=
                50);
    TF_ASSERT_RC(tf_stop_wait(ts->srv, tf_ms(T_IO)), 0);
    atomic_store(stop, 1);
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(tf_join(th[i], tf_ms(30000), NULL), 0);
    check_clients(cl, CLIENTS);
    uint64_t accepted = tf_stat(ts->srv, TF_STAT(accepted));
    assert_int_equal(tf_stat(ts->srv, TF_STAT(closed)), accepted);
    assert_int_equal(tf_stat(ts->srv, TF_STAT(connections)), 0);
    tf_server_free(ts);
    ch_check(s);
    assert_int_equal(atomic_load(&s->starts), (int)accepted);
    ch_server_free(s);
    free(cl);
    free(stop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_stop_under_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
