/*
 * Router slices through real connections: global middleware (Use) and
 * its order, groups and their ranges, Use reaching only later routes,
 * duplicates, next/abort semantics (nested next, abort after next, next
 * after abort, next twice), classic routers as three-step chains, the
 * fallback router, set-up errors. Every test runs with WorkerPoolSize 0
 * (handlers on the I/O thread) and 2 (on workers).
 *
 * Each handler appends its tag to a trace; the probe route (registered
 * first, so no middleware reaches it) answers with the trace and clears
 * it. A connection's messages run one at a time in order, so when the
 * probe runs, the chain of the message sent before it has finished.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "test_client.h"
#include "test_fixture.h"

#define TLV ZINX_FORMAT_TLV
#define T_IO 5000  /* ms for one network step */
#define PROBE 999u /* answers with the trace */

/* ---- the trace ---------------------------------------------------------- */

typedef struct trace {
    pthread_mutex_t mu; /* handlers write on the server's threads */
    char buf[512];
    size_t len;
} trace_t;

static void trace_add(trace_t *t, const char *tag)
{
    pthread_mutex_lock(&t->mu);
    int n = snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "%s%s",
                     t->len > 0 ? " " : "", tag);
    if (n > 0 && (size_t)n < sizeof(t->buf) - t->len)
        t->len += (size_t)n;
    pthread_mutex_unlock(&t->mu);
}

/* The probe route: sends the trace and clears it. */
static void reply_trace(zinx_request_t *req, void *udata)
{
    trace_t *t = udata;
    pthread_mutex_lock(&t->mu);
    zinx_conn_send_msg(zinx_request_conn(req), PROBE, t->buf, (uint32_t)t->len);
    t->len = 0;
    pthread_mutex_unlock(&t->mu);
}

/* What a step does besides tracing its tag. */
enum {
    ACT_NEXT = 1,        /* zinx_request_next(), then trace "tag'" */
    ACT_NEXT_TWICE = 2,  /* next again after that, trace "tag'" again */
    ACT_ABORT = 4,       /* abort before anything else */
    ACT_ABORT_AFTER = 8, /* abort after next */
    ACT_SHOW_ABORT = 16  /* trace "tag!" when the request is aborted */
};

typedef struct step {
    trace_t *tr;
    const char *tag;
    int act;
    char after[16]; /* "tag'" */
} step_t;

static void run_step(zinx_request_t *req, void *udata)
{
    step_t *s = udata;
    trace_add(s->tr, s->tag);
    if (s->act & ACT_ABORT)
        zinx_request_abort(req);
    if (s->act & ACT_NEXT) {
        zinx_request_next(req);
        trace_add(s->tr, s->after);
    }
    if (s->act & ACT_NEXT_TWICE) {
        zinx_request_next(req);
        trace_add(s->tr, s->after);
    }
    if (s->act & ACT_ABORT_AFTER)
        zinx_request_abort(req);
    if ((s->act & ACT_SHOW_ABORT) && zinx_request_is_aborted(req)) {
        char bang[20];
        snprintf(bang, sizeof(bang), "%s!", s->tag);
        trace_add(s->tr, bang);
    }
}

/* Counts its calls in the atomic_int at udata. */
static void count_call(zinx_request_t *req, void *udata)
{
    (void)req;
    atomic_fetch_add((atomic_int *)udata, 1);
}

static step_t mk(trace_t *tr, const char *tag, int act)
{
    step_t s = {.tr = tr, .tag = tag, .act = act};
    snprintf(s.after, sizeof(s.after), "%s'", tag);
    return s;
}

static zinx_handler_t h(step_t *s)
{
    return (zinx_handler_t){run_step, s};
}

/* ---- the server -----------------------------------------------------------
 */

typedef struct env {
    tf_server_t *ts;
    trace_t tr;
    int fd;
} env_t;

static uint32_t pool_of(void **state)
{
    return *(const uint32_t *)*state;
}

/* A server from cfg (NULL: tf_config) with the probe route; the caller
   registers, then env_start. */
static void env_init_cfg(env_t *e, uint32_t pool, const zinx_config_t *base)
{
    zinx_config_t cfg;
    if (base != NULL)
        cfg = *base;
    else
        tf_config(&cfg);
    cfg.worker_pool_size = pool;
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->tr.mu, NULL);
    e->ts = tf_server_new(&cfg);
    assert_non_null(e->ts);
    e->fd = -1;
    zinx_handler_t probe = {reply_trace, &e->tr};
    TF_ASSERT_RC(zinx_server_add_route(e->ts->srv, PROBE, &probe, 1), 0);
}

static void env_init(env_t *e, uint32_t pool)
{
    env_init_cfg(e, pool, NULL);
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
    pthread_mutex_destroy(&e->tr.mu);
}

/* Sends message id, then the probe; checks the trace the message left. */
static void expect_trace(env_t *e, uint32_t id, const char *want)
{
    uint8_t buf[512];
    uint32_t rid, len;
    TF_ASSERT_RC(tc_send_frame(e->fd, TLV, id, "x", 1, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_send_frame(e->fd, TLV, PROBE, "", 0, tf_ms(T_IO)), 0);
    TF_ASSERT_RC(tc_recv_frame(e->fd, TLV, &rid, buf, sizeof(buf) - 1, &len,
                               tf_ms(T_IO)),
                 0);
    assert_int_equal(rid, PROBE);
    buf[len] = '\0';
    if (strcmp((const char *)buf, want) != 0)
        fail_msg("message %u: trace \"%s\", want \"%s\"", id, buf, want);
}

/* ---- tests ------------------------------------------------------------- */

/* Global middleware runs first, in registration order, then the route's
   handlers in theirs. */
static void test_middleware_order(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    step_t m1 = mk(&e.tr, "m1", 0), m2 = mk(&e.tr, "m2", 0),
           m3 = mk(&e.tr, "m3", 0), h1 = mk(&e.tr, "h1", 0),
           h2 = mk(&e.tr, "h2", 0);
    zinx_handler_t mw[] = {h(&m1), h(&m2)};
    TF_ASSERT_RC(zinx_server_use(e.ts->srv, mw, 2), 0);
    zinx_handler_t mw3 = h(&m3);
    TF_ASSERT_RC(zinx_server_use(e.ts->srv, &mw3, 1), 0);
    TF_ASSERT_RC(zinx_server_use(e.ts->srv, NULL, 0), 0);
    zinx_handler_t hs[] = {h(&h1), h(&h2)};
    TF_ASSERT_RC(zinx_server_add_route(e.ts->srv, 1, hs, 2), 0);
    /* A route of middleware only. */
    TF_ASSERT_RC(zinx_server_add_route(e.ts->srv, 2, NULL, 0), 0);
    env_start(&e);
    expect_trace(&e, 1, "m1 m2 m3 h1 h2");
    expect_trace(&e, 2, "m1 m2 m3");
    expect_trace(&e, 1, "m1 m2 m3 h1 h2");
    env_free(&e);
}

/* Use reaches the routes registered after it, never those before. */
static void test_use_only_later_routes(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    step_t m = mk(&e.tr, "m", 0), n = mk(&e.tr, "n", 0), a = mk(&e.tr, "a", 0),
           b = mk(&e.tr, "b", 0), c = mk(&e.tr, "c", 0),
           fb = mk(&e.tr, "fb", 0);
    zinx_handler_t ha = h(&a), hb = h(&b), hc = h(&c), hm = h(&m), hn = h(&n);
    TF_ASSERT_RC(zinx_server_add_route(e.ts->srv, 1, &ha, 1), 0);
    zinx_router_t classic = {.handle = run_step, .udata = &fb};
    TF_ASSERT_RC(zinx_server_add_router(e.ts->srv, 4, &classic), 0);
    TF_ASSERT_RC(zinx_server_use(e.ts->srv, &hm, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(e.ts->srv, 2, &hb, 1), 0);
    TF_ASSERT_RC(zinx_server_use(e.ts->srv, &hn, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(e.ts->srv, 3, &hc, 1), 0);
    TF_ASSERT_RC(zinx_server_add_router(e.ts->srv, 5, &classic), 0);
    env_start(&e);
    expect_trace(&e, 1, "a");
    expect_trace(&e, 2, "m b");
    expect_trace(&e, 3, "m n c");
    expect_trace(&e, 4, "fb");
    expect_trace(&e, 5, "m n fb");
    env_free(&e);
}

/* Groups: global + group middleware + route, the range checked at both
   ends and outside, group Use reaching only later routes of the group. */
static void test_groups(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    zinx_server_t *s = e.ts->srv;
    step_t u = mk(&e.tr, "u", 0), g1 = mk(&e.tr, "g1", 0),
           g2 = mk(&e.tr, "g2", 0), k1 = mk(&e.tr, "k", 0),
           r = mk(&e.tr, "r", 0), pre = mk(&e.tr, "pre", 0);
    zinx_handler_t hu = h(&u), hg1 = h(&g1), hg2 = h(&g2), hk = h(&k1),
                   hr = h(&r);
    TF_ASSERT_RC(zinx_server_use(s, &hu, 1), 0);
    zinx_group_t *g = NULL, *other = NULL, *single = NULL;
    TF_ASSERT_RC(zinx_server_group(s, 3, 10, &hg1, 1, &g), 0);
    assert_non_null(g);
    TF_ASSERT_RC(zinx_group_add_route(g, 3, &hr, 1), 0);
    TF_ASSERT_RC(zinx_group_use(g, &hg2, 1), 0);
    TF_ASSERT_RC(zinx_group_add_route(g, 10, &hr, 1), 0);
    zinx_router_t classic = {.pre_handle = run_step, .udata = &pre};
    TF_ASSERT_RC(zinx_group_add_router(g, 5, &classic), 0);
    /* Outside the range, at both ends and far away: refused, nothing
       registered. */
    TF_ASSERT_RC(zinx_group_add_route(g, 2, &hr, 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_group_add_route(g, 11, &hr, 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_group_add_route(g, 0, &hr, 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_group_add_route(g, UINT32_MAX, &hr, 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_group_add_router(g, 11, &classic), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_group_add_route(NULL, 3, &hr, 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_group_use(NULL, &hr, 1), ZINX_EINVAL);
    /* Bad ranges and arguments. */
    TF_ASSERT_RC(zinx_server_group(s, 5, 4, NULL, 0, &other), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_group(s, 1, 2, NULL, 0, NULL), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_group(NULL, 1, 2, NULL, 0, &other), ZINX_EINVAL);
    assert_null(other);
    /* A one-ID group at the top of the ID space, no middleware of its
       own; a group's ID already taken elsewhere is a duplicate. */
    TF_ASSERT_RC(zinx_server_group(s, UINT32_MAX, UINT32_MAX, NULL, 0, &single),
                 0);
    TF_ASSERT_RC(zinx_group_add_route(single, UINT32_MAX, &hk, 1), 0);
    TF_ASSERT_RC(zinx_group_add_route(single, UINT32_MAX, &hk, 1), ZINX_EEXIST);
    TF_ASSERT_RC(zinx_server_add_route(s, 3, &hk, 1), ZINX_EEXIST);
    /* Overlapping groups may both exist; an ID still has one route. */
    TF_ASSERT_RC(zinx_server_group(s, 8, 20, NULL, 0, &other), 0);
    TF_ASSERT_RC(zinx_group_add_route(other, 10, &hk, 1), ZINX_EEXIST);
    TF_ASSERT_RC(zinx_group_add_route(other, 11, &hk, 1), 0);
    env_start(&e);
    expect_trace(&e, 3, "u g1 r");
    expect_trace(&e, 10, "u g1 g2 r");
    expect_trace(&e, 5, "u g1 g2 pre");
    expect_trace(&e, 11, "u k");
    expect_trace(&e, UINT32_MAX, "u k");
    expect_trace(&e, 2, ""); /* never registered: dropped */
    env_free(&e);
}

/* Duplicates across every kind of registration, bad arguments, and
   nothing after start. */
static void test_registration_errors(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    zinx_server_t *s = e.ts->srv;
    step_t a = mk(&e.tr, "a", 0);
    zinx_handler_t ha = h(&a);
    zinx_router_t classic = {.handle = run_step, .udata = &a};
    TF_ASSERT_RC(zinx_server_add_route(s, 1, &ha, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 1, &ha, 1), ZINX_EEXIST);
    TF_ASSERT_RC(zinx_server_add_router(s, 1, &classic), ZINX_EEXIST);
    TF_ASSERT_RC(zinx_server_add_router(s, 2, &classic), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 2, &ha, 1), ZINX_EEXIST);
    TF_ASSERT_RC(zinx_server_add_route(s, PROBE, NULL, 0), ZINX_EEXIST);

    zinx_handler_t bad[] = {ha, {NULL, NULL}};
    TF_ASSERT_RC(zinx_server_add_route(s, 3, bad, 2), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_route(s, 3, NULL, 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_use(s, bad, 2), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_use(NULL, &ha, 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_route(NULL, 3, &ha, 1), ZINX_EINVAL);
    /* A chain longer than ZINX_CHAIN_MAX, middleware included. */
    static zinx_handler_t many[ZINX_CHAIN_MAX + 1];
    for (size_t i = 0; i <= ZINX_CHAIN_MAX; i++)
        many[i] = ha;
    TF_ASSERT_RC(zinx_server_add_route(s, 3, many, ZINX_CHAIN_MAX + 1),
                 ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_use(s, many, ZINX_CHAIN_MAX + 1), ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_use(s, many, 1), 0);
    atomic_int calls;
    atomic_init(&calls, 0);
    static zinx_handler_t counters[ZINX_CHAIN_MAX];
    for (size_t i = 0; i < ZINX_CHAIN_MAX; i++)
        counters[i] = (zinx_handler_t){count_call, &calls};
    TF_ASSERT_RC(zinx_server_add_route(s, 3, counters, ZINX_CHAIN_MAX),
                 ZINX_EINVAL);
    TF_ASSERT_RC(zinx_server_add_route(s, 3, counters, ZINX_CHAIN_MAX - 1), 0);
    /* The failed registrations left nothing behind: 3 holds the good one. */
    zinx_group_t *g = NULL;
    TF_ASSERT_RC(zinx_server_group(s, 100, 200, NULL, 0, &g), 0);
    env_start(&e);
    TF_ASSERT_RC(zinx_server_add_route(s, 4, &ha, 1), ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_add_router(s, 4, &classic), ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_use(s, &ha, 1), ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_group(s, 1, 2, NULL, 0, &g), ZINX_ESTATE);
    TF_ASSERT_RC(zinx_group_use(g, &ha, 1), ZINX_ESTATE);
    TF_ASSERT_RC(zinx_group_add_route(g, 150, &ha, 1), ZINX_ESTATE);
    TF_ASSERT_RC(zinx_server_set_fallback_router(s, &classic), ZINX_ESTATE);
    expect_trace(&e, 1, "a");
    expect_trace(&e, 2, "a");
    /* The longest chain runs whole: "a" (Use), then 255 counters. */
    expect_trace(&e, 3, "a");
    assert_int_equal(atomic_load(&calls), ZINX_CHAIN_MAX - 1);
    expect_trace(&e, 4, "");
    env_free(&e);
}

/* Next and abort, each case as Zinx's RouterSlicesNext/Abort does it. */
static void test_next_abort(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    zinx_server_t *s = e.ts->srv;
    trace_t *t = &e.tr;
    /* 1: no next: in order. */
    step_t a1 = mk(t, "a", 0), b1 = mk(t, "b", 0), c1 = mk(t, "c", 0);
    zinx_handler_t r1[] = {h(&a1), h(&b1), h(&c1)};
    /* 2: nested next unwinds in reverse (onion). */
    step_t a2 = mk(t, "a", ACT_NEXT), b2 = mk(t, "b", ACT_NEXT),
           c2 = mk(t, "c", 0);
    zinx_handler_t r2[] = {h(&a2), h(&b2), h(&c2)};
    /* 3: abort in the middle: c skipped, a resumes after its next. */
    step_t a3 = mk(t, "a", ACT_NEXT | ACT_SHOW_ABORT),
           b3 = mk(t, "b", ACT_ABORT), c3 = mk(t, "c", 0);
    zinx_handler_t r3[] = {h(&a3), h(&b3), h(&c3)};
    /* 4: abort after next: everything ran already; only the flag. */
    step_t a4 = mk(t, "a", ACT_NEXT | ACT_SHOW_ABORT),
           b4 = mk(t, "b", ACT_NEXT | ACT_ABORT_AFTER), c4 = mk(t, "c", 0);
    zinx_handler_t r4[] = {h(&a4), h(&b4), h(&c4)};
    /* 5: next twice: the second runs nothing. */
    step_t a5 = mk(t, "a", ACT_NEXT | ACT_NEXT_TWICE), b5 = mk(t, "b", 0),
           c5 = mk(t, "c", 0);
    zinx_handler_t r5[] = {h(&a5), h(&b5), h(&c5)};
    /* 6: next after abort runs nothing. */
    step_t a6 = mk(t, "a", ACT_ABORT | ACT_NEXT), b6 = mk(t, "b", 0);
    zinx_handler_t r6[] = {h(&a6), h(&b6)};
    /* 7: next in the middle only: b's rest after c, then d is not run
       again by the outer loop. */
    step_t a7 = mk(t, "a", 0), b7 = mk(t, "b", ACT_NEXT), c7 = mk(t, "c", 0),
           d7 = mk(t, "d", 0);
    zinx_handler_t r7[] = {h(&a7), h(&b7), h(&c7), h(&d7)};
    /* 8: abort in the last handler, and abort in the first (no next). */
    step_t a8 = mk(t, "a", 0), b8 = mk(t, "b", ACT_ABORT | ACT_SHOW_ABORT);
    zinx_handler_t r8[] = {h(&a8), h(&b8)};
    step_t a9 = mk(t, "a", ACT_ABORT), b9 = mk(t, "b", 0);
    zinx_handler_t r9[] = {h(&a9), h(&b9)};
    /* 10: nested next with an abort deep down, under middleware. */
    step_t m10 = mk(t, "m", ACT_NEXT | ACT_SHOW_ABORT),
           a10 = mk(t, "a", ACT_NEXT), b10 = mk(t, "b", ACT_ABORT),
           c10 = mk(t, "c", 0);
    zinx_handler_t r10[] = {h(&a10), h(&b10), h(&c10)};

    TF_ASSERT_RC(zinx_server_add_route(s, 1, r1, 3), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 2, r2, 3), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 3, r3, 3), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 4, r4, 3), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 5, r5, 3), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 6, r6, 2), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 7, r7, 4), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 8, r8, 2), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 9, r9, 2), 0);
    zinx_handler_t hm10 = h(&m10);
    TF_ASSERT_RC(zinx_server_use(s, &hm10, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(s, 10, r10, 3), 0);
    env_start(&e);
    expect_trace(&e, 1, "a b c");
    expect_trace(&e, 2, "a b c b' a'");
    expect_trace(&e, 3, "a b a' a!");
    expect_trace(&e, 4, "a b c b' a' a!");
    expect_trace(&e, 5, "a b c a' a'");
    expect_trace(&e, 6, "a a'");
    expect_trace(&e, 7, "a b c d b'");
    expect_trace(&e, 8, "a b b!");
    expect_trace(&e, 9, "a");
    expect_trace(&e, 10, "m a b a' m' m!");
    /* Each message starts afresh: the state was the request's. */
    expect_trace(&e, 3, "a b a' a!");
    expect_trace(&e, 1, "a b c");
    env_free(&e);
}

/* Classic routers are chains: abort in pre skips handle and post, next
   in pre runs them at once, Use middleware wraps the ones after it. */
static void test_classic_as_chain(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    zinx_server_t *s = e.ts->srv;
    trace_t *t = &e.tr;
    step_t st = mk(t, "s", 0); /* one udata for all three steps */
    zinx_router_t plain = {run_step, run_step, run_step, &st};
    step_t ab = mk(t, "s", ACT_ABORT);
    zinx_router_t abort_pre = {.pre_handle = run_step,
                               .handle = run_step,
                               .post_handle = run_step,
                               .udata = &ab};
    /* next in each step: pre runs handle, which runs post, inside. */
    step_t nx = mk(t, "s", ACT_NEXT);
    zinx_router_t next_pre = {run_step, run_step, run_step, &nx};
    step_t hd = mk(t, "h", 0);
    zinx_router_t handle_only = {.handle = run_step, .udata = &hd};
    zinx_router_t empty = {0};
    TF_ASSERT_RC(zinx_server_add_router(s, 1, &plain), 0);
    TF_ASSERT_RC(zinx_server_add_router(s, 2, &abort_pre), 0);
    TF_ASSERT_RC(zinx_server_add_router(s, 3, &empty), 0);
    TF_ASSERT_RC(zinx_server_add_router(s, 8, &next_pre), 0);
    step_t m = mk(t, "m", ACT_NEXT);
    zinx_handler_t hm = h(&m);
    TF_ASSERT_RC(zinx_server_use(s, &hm, 1), 0);
    TF_ASSERT_RC(zinx_server_add_router(s, 4, &plain), 0);
    TF_ASSERT_RC(zinx_server_add_router(s, 5, &abort_pre), 0);
    TF_ASSERT_RC(zinx_server_add_router(s, 6, &handle_only), 0);
    TF_ASSERT_RC(zinx_server_add_router(s, 7, &empty), 0);
    env_start(&e);
    expect_trace(&e, 1, "s s s");
    expect_trace(&e, 2, "s"); /* abort in pre: handle, post skipped */
    expect_trace(&e, 3, "");  /* no steps: consumed, not unrouted */
    expect_trace(&e, 4, "m s s s m'");
    expect_trace(&e, 5, "m s m'");
    expect_trace(&e, 6, "m h m'");
    expect_trace(&e, 7, "m m'");
    expect_trace(&e, 8, "s s s s' s' s'");
    assert_int_equal(tf_stat(s, TF_STAT(unrouted)), 0);
    env_free(&e);
}

/* RouterSlicesMode is accepted and selects nothing: with it on (or off,
   everywhere else) classic routers and slice routes work side by side. */
static void test_slices_mode_selects_nothing(void **state)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.router_slices_mode = 1;
    env_t e;
    env_init_cfg(&e, pool_of(state), &cfg);
    step_t a = mk(&e.tr, "a", 0), b = mk(&e.tr, "b", 0);
    zinx_router_t classic = {.handle = run_step, .udata = &a};
    zinx_handler_t hb = h(&b);
    TF_ASSERT_RC(zinx_server_add_router(e.ts->srv, 1, &classic), 0);
    TF_ASSERT_RC(zinx_server_add_route(e.ts->srv, 2, &hb, 1), 0);
    env_start(&e);
    expect_trace(&e, 1, "a");
    expect_trace(&e, 2, "b");
    env_free(&e);
}

/* The fallback router: wrapped by the middleware registered before it
   was set; the default drops and counts. */
static void test_fallback(void **state)
{
    env_t e;
    env_init(&e, pool_of(state));
    zinx_server_t *s = e.ts->srv;
    step_t m = mk(&e.tr, "m", 0), fb = mk(&e.tr, "fb", ACT_ABORT),
           n = mk(&e.tr, "n", 0);
    zinx_router_t fbr = {
        .pre_handle = run_step, .handle = run_step, .udata = &fb};
    zinx_handler_t hm = h(&m), hn = h(&n);
    TF_ASSERT_RC(zinx_server_use(s, &hm, 1), 0);
    TF_ASSERT_RC(zinx_server_set_fallback_router(s, &fbr), 0);
    TF_ASSERT_RC(zinx_server_use(s, &hn, 1), 0);
    TF_ASSERT_RC(zinx_server_set_fallback_router(NULL, &fbr), ZINX_EINVAL);
    env_start(&e);
    expect_trace(&e, 77, "m fb");
    expect_trace(&e, 0, "m fb");
    assert_int_equal(tf_stat(s, TF_STAT(unrouted)), 0);
    env_free(&e);

    /* Set and then restored to the default: dropped and counted. */
    env_init(&e, pool_of(state));
    TF_ASSERT_RC(zinx_server_use(e.ts->srv, &hm, 1), 0);
    m.tr = &e.tr;
    fb.tr = &e.tr;
    TF_ASSERT_RC(zinx_server_set_fallback_router(e.ts->srv, &fbr), 0);
    TF_ASSERT_RC(zinx_server_set_fallback_router(e.ts->srv, NULL), 0);
    env_start(&e);
    expect_trace(&e, 77, "");
    assert_int_equal(tf_stat(e.ts->srv, TF_STAT(unrouted)), 1);
    env_free(&e);
}

/* A client endpoint shares the server object: its routes are chains
   too. The client sends 1 to a server that answers 2; the client's
   route for 2 runs its middleware around its handlers. */
static void answer_two(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), 2, "y", 1);
}

static void test_client_routes(void **state)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = pool_of(state);
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_handler_t two = {answer_two, NULL};
    TF_ASSERT_RC(zinx_server_add_route(ts->srv, 1, &two, 1), 0);
    TF_ASSERT_RC(tf_server_start(ts), 0);

    trace_t tr = {.len = 0};
    pthread_mutex_init(&tr.mu, NULL);
    atomic_int done;
    atomic_init(&done, 0);
    zinx_server_t *cli = zinx_client_new(&cfg);
    assert_non_null(cli);
    TF_ASSERT_RC(zinx_server_set_log_sink(cli, tf_log_sink, NULL), 0);
    step_t m = mk(&tr, "m", ACT_NEXT), hh = mk(&tr, "h", 0);
    zinx_handler_t hm = h(&m);
    zinx_handler_t chain[] = {h(&hh), {count_call, &done}};
    TF_ASSERT_RC(zinx_server_use(cli, &hm, 1), 0);
    TF_ASSERT_RC(zinx_server_add_route(cli, 2, chain, 2), 0);
    TF_ASSERT_RC(zinx_server_start(cli), 0);
    zinx_dialer_t *d = NULL;
    TF_ASSERT_RC(zinx_server_dial(cli, "127.0.0.1", ts->port, NULL, &d), 0);
    zinx_conn_t *c = NULL;
    TF_ASSERT_RC(zinx_dialer_wait(d, (uint32_t)tf_ms(T_IO), &c), 0);
    TF_ASSERT_RC(zinx_conn_send_msg(c, 1, "x", 1), 0);
    zinx_conn_unref(c);
    assert_int_equal(tf_wait_atomic_ge(&done, 1, tf_ms(T_IO)), 1);
    zinx_dialer_close(d);
    zinx_server_free(cli);
    pthread_mutex_lock(&tr.mu);
    assert_string_equal(tr.buf, "m h m'");
    pthread_mutex_unlock(&tr.mu);
    pthread_mutex_destroy(&tr.mu);
    tf_server_free(ts);
}

static const uint32_t pool0 = 0, pool2 = 2;

#define BOTH(fn)                                   \
    cmocka_unit_test_prestate(fn, (void *)&pool0), \
        cmocka_unit_test_prestate(fn, (void *)&pool2)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_middleware_order), BOTH(test_use_only_later_routes),
        BOTH(test_groups),           BOTH(test_registration_errors),
        BOTH(test_next_abort),       BOTH(test_classic_as_chain),
        BOTH(test_fallback),         BOTH(test_slices_mode_selects_nothing),
        BOTH(test_client_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
