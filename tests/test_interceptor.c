/*
 * Interceptors through real connections: order and nesting, rewriting
 * the ID (routed elsewhere) and the data, dropping, answering, proceeding
 * twice (refused, routed once), the thread they run on, set-up errors,
 * and a server without any. Every test runs with WorkerPoolSize 0 and 2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 5000 /* ms for one network step */

/* Message IDs the interceptors of these tests act on. */
enum {
    ID_ECHO = 1,     /* routed: echo_plus_1000 */
    ID_MOVED = 5,    /* rewritten to ID_TARGET */
    ID_TARGET = 6,   /* routed: echo_plus_1000 */
    ID_UPPER = 7,    /* payload upper-cased */
    ID_DROP = 8,     /* dropped */
    ID_ANSWER = 9,   /* answered by the interceptor (9009) */
    ID_TWICE = 10,   /* proceeds twice; reports the second's result */
    ID_UNKNOWN = 11, /* no route: rewritten to ID_ECHO */
    ID_THREAD = 12   /* routed: says whether it ran on the same thread */
};

static void echo_plus_1000(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req) + 1000,
                       zinx_request_data(req), zinx_request_data_len(req));
}

/* Per-server state the interceptors share. */
typedef struct ctx {
    pthread_mutex_t mu;
    char order[256]; /* tags, appended by the tracing interceptors */
    size_t len;
    pthread_t icpt_thread; /* the thread the last interceptor ran on */
    atomic_int twice_rc;
    atomic_int errors; /* checks failed on the server's threads */
} ctx_t;

static void ctx_add(ctx_t *c, const char *tag)
{
    pthread_mutex_lock(&c->mu);
    int n = snprintf(c->order + c->len, sizeof(c->order) - c->len, "%s%s",
                     c->len > 0 ? " " : "", tag);
    if (n > 0 && (size_t)n < sizeof(c->order) - c->len)
        c->len += (size_t)n;
    pthread_mutex_unlock(&c->mu);
}

typedef struct tracer {
    ctx_t *ctx;
    const char *tag, *after;
} tracer_t;

/* Traces its tag, proceeds unchanged, traces its "after" tag. */
static void trace_icpt(zinx_chain_t *chain, void *udata)
{
    tracer_t *t = udata;
    ctx_add(t->ctx, t->tag);
    zinx_msg_t m = zinx_chain_msg(chain);
    if (zinx_chain_proceed(chain, &m) != 0)
        atomic_fetch_add(&t->ctx->errors, 1);
    ctx_add(t->ctx, t->after);
}

/* The route that reports the trace (as 2000 + ...) and clears it. */
static void reply_order(zinx_request_t *req, void *udata)
{
    ctx_t *c = udata;
    ctx_add(c, "route");
    pthread_mutex_lock(&c->mu);
    zinx_conn_send_msg(zinx_request_conn(req), 2000, c->order,
                       (uint32_t)c->len);
    c->len = 0;
    pthread_mutex_unlock(&c->mu);
}

/* Does what the message ID asks for (see the enum). */
static void acting_icpt(zinx_chain_t *chain, void *udata)
{
    ctx_t *c = udata;
    zinx_msg_t m = zinx_chain_msg(chain);
    if (m.data == NULL)
        atomic_fetch_add(&c->errors, 1);
    pthread_mutex_lock(&c->mu);
    c->icpt_thread = pthread_self();
    pthread_mutex_unlock(&c->mu);
    uint8_t upper[64];
    switch (m.id) {
    case ID_MOVED:
    case ID_UNKNOWN:
        m.id = m.id == ID_MOVED ? ID_TARGET : ID_ECHO;
        break;
    case ID_UPPER:
        /* The interceptor's own memory, valid until proceed returns. */
        if (m.len > sizeof(upper))
            m.len = sizeof(upper);
        for (uint32_t i = 0; i < m.len; i++)
            upper[i] = (uint8_t)toupper(m.data[i]);
        m.data = upper;
        break;
    case ID_DROP:
        return;
    case ID_ANSWER:
        zinx_conn_send_msg(zinx_chain_conn(chain), 9009, "intercepted", 11);
        return;
    case ID_TWICE: {
        if (zinx_chain_proceed(chain, &m) != 0)
            atomic_fetch_add(&c->errors, 1);
        int rc = zinx_chain_proceed(chain, &m);
        atomic_store(&c->twice_rc, rc);
        zinx_conn_send_msg(zinx_chain_conn(chain), 3000, &rc, sizeof(rc));
        return;
    }
    default:
        break;
    }
    if (zinx_chain_proceed(chain, &m) != 0)
        atomic_fetch_add(&c->errors, 1);
}

/* Answers 1 when it runs on the thread the interceptor just ran on. */
static void same_thread(zinx_request_t *req, void *udata)
{
    ctx_t *c = udata;
    pthread_mutex_lock(&c->mu);
    uint8_t same = pthread_equal(c->icpt_thread, pthread_self()) ? 1 : 0;
    pthread_mutex_unlock(&c->mu);
    zinx_conn_send_msg(zinx_request_conn(req), ID_THREAD + 1000, &same, 1);
}

/* ---- the server ---------------------------------------------------------- */

typedef struct env {
    tf_server_t *ts;
    ctx_t ctx;
    int fd;
} env_t;

static uint32_t pool_of(void **state)
{
    return *(const uint32_t *)*state;
}

static void env_init(env_t *e, uint32_t pool)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = pool;
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->ctx.mu, NULL);
    atomic_init(&e->ctx.twice_rc, 1);
    atomic_init(&e->ctx.errors, 0);
    e->ts = tf_server_new(&cfg);
    assert_non_null(e->ts);
    e->fd = -1;
    zinx_server_t *s = e->ts->srv;
    zinx_handler_t echo = {echo_plus_1000, NULL};
    zinx_handler_t order = {reply_order, &e->ctx};
    zinx_handler_t thread = {same_thread, &e->ctx};
    TF_ASSERT_RC(zinx_server_add_route(s, ID_ECHO, &echo, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, ID_TARGET, &echo, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, ID_UPPER, &echo, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, ID_DROP, &echo, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, ID_ANSWER, &echo, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, ID_TWICE, &echo, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, ID_THREAD, &thread, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 100, &order, 1), 0);
    /* ID_MOVED has a route that must not run once rewritten. */
    zinx_router_t moved = {.handle = reply_order, .udata = &e->ctx};
    TF_ASSERT_RC(zinx_server_add_router(s, ID_MOVED, &moved), 0);
}

static void env_start(env_t *e)
{
    TF_ASSERT_RC(tf_server_start(e->ts), 0);
    e->fd = tc_connect(e->ts->port);
    if (e->fd < 0)
        fail_msg("connect: %s", tf_rc_name(e->fd));
}

static void env_free(env_t *e)
{
    tc_close(e->fd);
    tf_server_free(e->ts);
    assert_int_equal(atomic_load(&e->ctx.errors), 0);
    pthread_mutex_destroy(&e->ctx.mu);
}

static void send_msg(env_t *e, uint32_t id, const char *data)
{
    TF_ASSERT_RC(tc_send_frame(e->fd, TLV, id, data, (uint32_t)strlen(data),
                               tf_ms(T_IO)),
                 0);
}

static void expect_frame(env_t *e, uint32_t want_id, const void *want,
                         uint32_t want_len)
{
    uint8_t buf[512];
    uint32_t id, len;
    TF_ASSERT_RC(
        tc_recv_frame(e->fd, TLV, &id, buf, sizeof(buf), &len, tf_ms(T_IO)), 0);
    assert_int_equal(id, want_id);
    assert_int_equal(len, want_len);
    if (want_len > 0)
        assert_memory_equal(buf, want, want_len);
}

static void expect_str(env_t *e, uint32_t want_id, const char *want)
{
    expect_frame(e, want_id, want, (uint32_t)strlen(want));
}

/* ---- tests --------------------------------------------------------------- */

/* In registration order, each inside the previous one's proceed, routing
   inside the last. */
static void test_order(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    tracer_t t1 = {&e.ctx, "i1", "i1'"}, t2 = {&e.ctx, "i2", "i2'"},
             t3 = {&e.ctx, "i3", "i3'"};
    TF_ASSERT_RC(zinx_server_add_interceptor(e.ts->srv, trace_icpt, &t1), 0);
    TF_ASSERT_RC(zinx_server_add_interceptor(e.ts->srv, trace_icpt, &t2), 0);
    TF_ASSERT_RC(zinx_server_add_interceptor(e.ts->srv, trace_icpt, &t3), 0);
    env_start(&e);
    send_msg(&e, 100, "");
    expect_str(&e, 2000, "i1 i2 i3 route");
    /* The after-tags of that message, then the next one's. */
    send_msg(&e, 100, "");
    expect_str(&e, 2000, "i3' i2' i1' i1 i2 i3 route");
    env_free(&e);
}

/* Rewrites, drop, answer, proceed twice, unknown IDs, the thread. */
static void test_actions(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    TF_ASSERT_RC(zinx_server_add_interceptor(e.ts->srv, acting_icpt, &e.ctx),
                 0);
    env_start(&e);
    /* The ID: routed to the target's route, not its own. */
    send_msg(&e, ID_MOVED, "m");
    expect_str(&e, ID_TARGET + 1000, "m");
    /* The data. */
    send_msg(&e, ID_UPPER, "hello, world");
    expect_str(&e, ID_UPPER + 1000, "HELLO, WORLD");
    send_msg(&e, ID_UPPER, "");
    expect_str(&e, ID_UPPER + 1000, "");
    /* Dropped: nothing comes back, the next message is answered, and
       the drop is not an unrouted message. */
    send_msg(&e, ID_DROP, "d");
    send_msg(&e, ID_ECHO, "after drop");
    expect_str(&e, ID_ECHO + 1000, "after drop");
    assert_int_equal(tf_stat(e.ts->srv, TF_STAT(unrouted)), 0);
    /* Answered by the interceptor; the route never runs. */
    send_msg(&e, ID_ANSWER, "q");
    send_msg(&e, ID_ECHO, "next");
    expect_str(&e, 9009, "intercepted");
    expect_str(&e, ID_ECHO + 1000, "next");
    /* Proceed twice: routed once, the second call refused. */
    send_msg(&e, ID_TWICE, "t");
    send_msg(&e, ID_ECHO, "then");
    expect_str(&e, ID_TWICE + 1000, "t");
    int want = ZINX_ESTATE;
    expect_frame(&e, 3000, &want, sizeof(want));
    expect_str(&e, ID_ECHO + 1000, "then");
    assert_int_equal(atomic_load(&e.ctx.twice_rc), ZINX_ESTATE);
    /* An ID without a route, given one by the interceptor. */
    send_msg(&e, ID_UNKNOWN, "u");
    expect_str(&e, ID_ECHO + 1000, "u");
    /* Interceptor and handler share the connection's thread. */
    send_msg(&e, ID_THREAD, "");
    expect_frame(&e, ID_THREAD + 1000, "\1", 1);
    assert_int_equal(tf_stat(e.ts->srv, TF_STAT(unrouted)), 0);
    env_free(&e);
}

/* Refusals of zinx_chain_proceed, from inside an interceptor. */
static void bad_proceed_icpt(zinx_chain_t *chain, void *udata)
{
    ctx_t *c = udata;
    zinx_msg_t bad = {.id = 1, .len = 3, .data = NULL};
    int r1 = zinx_chain_proceed(chain, NULL);
    int r2 = zinx_chain_proceed(chain, &bad);
    int r3 = zinx_chain_proceed(NULL, &bad);
    atomic_store(&c->twice_rc,
                 r1 == ZINX_EINVAL && r2 == ZINX_EINVAL && r3 == ZINX_EINVAL);
    /* The refusals did not use up the proceed. */
    zinx_msg_t m = zinx_chain_msg(chain);
    zinx_chain_proceed(chain, &m);
}

static void test_errors(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    zinx_server_t *s = e.ts->srv;
    TF_ASSERT_RC(zinx_server_add_interceptor(s, NULL, NULL), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_interceptor(NULL, acting_icpt, NULL),
                 ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_interceptor(s, bad_proceed_icpt, &e.ctx), 0);
    env_start(&e);
    /* At most ZINX_CHAIN_MAX, on a server of its own. */
    zinx_server_t *many = zinx_server_new(NULL);
    assert_non_null(many);
    for (unsigned i = 0; i < ZINX_CHAIN_MAX; i++)
        TF_ASSERT_RC(zinx_server_add_interceptor(many, trace_icpt, NULL), 0);
    TF_ASSERT_RC(zinx_server_add_interceptor(many, trace_icpt, NULL),
                 ZINX_EINVAL);
    zinx_server_free(many);
    TF_ASSERT_RC(zinx_server_add_interceptor(s, acting_icpt, &e.ctx),
                 ZINX_ESTATE);
    send_msg(&e, ID_ECHO, "e");
    expect_str(&e, ID_ECHO + 1000, "e");
    assert_int_equal(atomic_load(&e.ctx.twice_rc), 1);
    env_free(&e);
}

/* Without interceptors messages go straight to routing: the rewrite
   route is its own, drops do not happen. */
static void test_none(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    env_start(&e);
    send_msg(&e, ID_DROP, "d");
    expect_str(&e, ID_DROP + 1000, "d");
    send_msg(&e, ID_MOVED, "");
    expect_str(&e, 2000, "route");
    send_msg(&e, ID_UNKNOWN, "u");
    send_msg(&e, ID_ECHO, "e");
    expect_str(&e, ID_ECHO + 1000, "e");
    assert_int_equal(tf_wait_stat(e.ts->srv, TF_STAT(unrouted), 1, tf_ms(T_IO)),
                     1);
    env_free(&e);
}

static const uint32_t pool0 = 0, pool2 = 2;

#define BOTH(fn)                                   \
    cmocka_unit_test_prestate(fn, (void *)&pool0), \
        cmocka_unit_test_prestate(fn, (void *)&pool2)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_order),
        BOTH(test_actions),
        BOTH(test_errors),
        BOTH(test_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
