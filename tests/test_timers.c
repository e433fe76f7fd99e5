/*
 * Public timers and async completions (zinx_conn_post): when they run,
 * where, in which order, and that nothing runs after a cancel returned
 * or after a connection's OnConnStop.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_client.h"
#include "test_fixture.h"
#include "zinx.h"

typedef struct probe {
    atomic_int runs;
    atomic_int after_cancel; /* runs seen once cancel had returned */
    atomic_bool cancelled;
    atomic_bool had_conn;
    _Atomic(zinx_timer_t *) self_cancel; /* cancel from inside fn */
    _Atomic int64_t first_ms;
} probe_t;

static void on_timer(zinx_timer_t *t, zinx_conn_t *conn, void *udata)
{
    probe_t *p = udata;
    if (atomic_load(&p->cancelled))
        atomic_fetch_add(&p->after_cancel, 1);
    int64_t none = 0;
    atomic_compare_exchange_strong(&p->first_ms, &none, tf_now_ms());
    atomic_store(&p->had_conn, conn != NULL);
    int runs = atomic_fetch_add(&p->runs, 1) + 1;
    if (atomic_load(&p->self_cancel) == t && runs == 2) {
        atomic_store(&p->cancelled, true);
        zinx_timer_cancel(t);
    }
}

static tf_server_t *started(uint32_t workers)
{
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = workers;
    tf_server_t *ts = tf_server_new(&cfg);
    assert_non_null(ts);
    zinx_router_t echo = {.handle = tf_echo};
    zinx_server_set_fallback_router(ts->srv, &echo);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    return ts;
}

static void cancel(zinx_timer_t *t, probe_t *p)
{
    assert_int_equal(zinx_timer_cancel(t), 0);
    atomic_store(&p->cancelled, true);
}

static void test_after_every_at_cancel(void **state)
{
    (void)state;
    tf_server_t *ts = started(2);
    probe_t once = {0}, every = {0}, at = {0}, never = {0}, self = {0};
    zinx_timer_t *t_once, *t_every, *t_at, *t_never, *t_self;
    int64_t t0 = tf_now_ms();
    TF_ASSERT_RC(zinx_timer_after(ts->srv, 50, on_timer, &once, &t_once), 0);
    TF_ASSERT_RC(zinx_timer_every(ts->srv, 20, on_timer, &every, &t_every), 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t unix_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    TF_ASSERT_RC(zinx_timer_at(ts->srv, unix_ms + 60, on_timer, &at, &t_at), 0);
    TF_ASSERT_RC(zinx_timer_after(ts->srv, 100000, on_timer, &never, &t_never),
                 0);
    TF_ASSERT_RC(zinx_timer_every(ts->srv, 5, on_timer, &self, &t_self), 0);
    atomic_store(&self.self_cancel, t_self); /* before its second run */
    TF_ASSERT_RC(zinx_timer_every(ts->srv, 0, on_timer, &self, NULL),
                 ZINX_EINVAL);

    assert_int_equal(tf_wait_atomic_ge(&every.runs, 4, tf_ms(3000)) >= 4, 1);
    cancel(t_every, &every);
    int after = atomic_load(&every.runs);
    tf_sleep_ms(100);
    assert_int_equal(atomic_load(&every.runs), after); /* none after cancel */
    assert_int_equal(atomic_load(&every.after_cancel), 0);

    assert_int_equal(tf_wait_atomic_ge(&once.runs, 1, tf_ms(3000)), 1);
    assert_true(atomic_load(&once.first_ms) - t0 >= 50);
    assert_int_equal(tf_wait_atomic_ge(&at.runs, 1, tf_ms(3000)), 1);
    assert_true(atomic_load(&at.first_ms) - t0 >= 50);
    assert_false(atomic_load(&once.had_conn));
    cancel(t_never, &never);
    tf_sleep_ms(50);
    assert_int_equal(atomic_load(&once.runs), 1);
    assert_int_equal(atomic_load(&never.runs), 0);
    assert_int_equal(atomic_load(&self.runs), 2); /* cancelled itself */
    cancel(t_once, &once);
    cancel(t_at, &at);
    tf_server_free(ts);
}

/* ---- 10,000 timers from many threads ----------------------------------- */

enum { THREADS = 8, PER_THREAD = 1250 };

typedef struct storm {
    tf_server_t *ts;
    probe_t *probes;
    int first;
    atomic_int *violations;
} storm_t;

static void *storm_thread(void *arg)
{
    storm_t *st = arg;
    unsigned seed = (unsigned)st->first * 2654435761u;
    zinx_timer_t *keep[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++) {
        probe_t *p = &st->probes[st->first + i];
        uint64_t delay = rand_r(&seed) % 4;
        if (zinx_timer_after(st->ts->srv, delay, on_timer, p, &keep[i]) != 0)
            atomic_fetch_add(st->violations, 1);
        if (i % 2 == 0) { /* cancelled at once, or after a moment */
            if (rand_r(&seed) % 3 == 0)
                tf_sleep_us((int)(rand_r(&seed) % 500));
            zinx_timer_cancel(keep[i]);
            atomic_store(&p->cancelled, true);
            keep[i] = NULL;
        }
    }
    for (int i = 0; i < PER_THREAD; i++) {
        if (keep[i] == NULL)
            continue;
        probe_t *p = &st->probes[st->first + i];
        if (tf_wait_atomic_ge(&p->runs, 1, tf_ms(10000)) != 1)
            atomic_fetch_add(st->violations, 1);
        zinx_timer_cancel(keep[i]);
    }
    return NULL;
}

static void test_ten_thousand_timers_many_threads(void **state)
{
    (void)state;
    tf_server_t *ts = started(2);
    probe_t *probes = calloc(THREADS * PER_THREAD, sizeof(*probes));
    atomic_int violations = 0;
    pthread_t th[THREADS];
    storm_t st[THREADS];
    for (int i = 0; i < THREADS; i++) {
        st[i] = (storm_t){ts, probes, i * PER_THREAD, &violations};
        assert_int_equal(pthread_create(&th[i], NULL, storm_thread, &st[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(tf_join(th[i], tf_ms(60000), NULL), 0);
    tf_sleep_ms(20);
    int ran = 0;
    for (int i = 0; i < THREADS * PER_THREAD; i++) {
        int runs = atomic_load(&probes[i].runs);
        assert_true(runs <= 1);
        assert_int_equal(atomic_load(&probes[i].after_cancel), 0);
        if (i % PER_THREAD % 2 == 1)
            assert_int_equal(runs, 1);
        ran += runs;
    }
    assert_int_equal(atomic_load(&violations), 0);
    if (tf_verbose())
        printf("# %d of %d timers ran\n", ran, THREADS * PER_THREAD);
    tf_server_free(ts);
    free(probes);
}

/* ---- connection timers and async completions ------------------------- */

typedef struct conn_env {
    atomic_bool stopped; /* OnConnStop ran */
    atomic_int late;     /* anything that ran after it */
    atomic_int timer_runs;
    atomic_int posted_ran;
    atomic_int order_bad;
    atomic_int next;
    pthread_t handler_thread;
    atomic_int wrong_thread;
    zinx_conn_t *conn; /* a reference, taken in OnConnStart */
    zinx_timer_t *timer;
} conn_env_t;

static conn_env_t env;

static void check_late(void)
{
    if (atomic_load(&env.stopped))
        atomic_fetch_add(&env.late, 1);
}

static void conn_tick(zinx_timer_t *t, zinx_conn_t *conn, void *udata)
{
    (void)t;
    (void)udata;
    check_late();
    if (conn == NULL || !pthread_equal(pthread_self(), env.handler_thread))
        atomic_fetch_add(&env.wrong_thread, 1);
    atomic_fetch_add(&env.timer_runs, 1);
}

static void on_start(zinx_conn_t *c, void *udata)
{
    (void)udata;
    env.handler_thread = pthread_self();
    env.conn = zinx_conn_ref(c);
    zinx_conn_timer_every(c, 2, conn_tick, NULL, &env.timer);
}

static void on_stop(zinx_conn_t *c, void *udata)
{
    (void)c;
    (void)udata;
    atomic_store(&env.stopped, true);
}

static void posted(zinx_conn_t *c, void *udata)
{
    (void)c;
    check_late();
    if (!pthread_equal(pthread_self(), env.handler_thread))
        atomic_fetch_add(&env.wrong_thread, 1);
    int want = (int)(intptr_t)udata;
    if (atomic_fetch_add(&env.next, 1) != want)
        atomic_fetch_add(&env.order_bad, 1);
    atomic_fetch_add(&env.posted_ran, 1);
}

static void *poster(void *arg)
{
    int *accepted = arg;
    for (int i = 0;; i++) {
        int rc = zinx_conn_post(env.conn, posted, (void *)(intptr_t)i);
        if (rc == ZINX_ECLOSED)
            break;
        if (rc == 0)
            (*accepted)++;
        if (i % 64 == 0)
            tf_sleep_us(100);
    }
    return NULL;
}

static void run_conn_work(uint32_t workers)
{
    memset(&env, 0, sizeof(env));
    zinx_config_t cfg;
    tf_config(&cfg);
    cfg.worker_pool_size = workers;
    cfg.io_threads = 1; /* inline: the handler thread is the I/O thread */
    tf_server_t *ts = tf_server_new(&cfg);
    zinx_router_t echo = {.handle = tf_echo};
    zinx_server_set_fallback_router(ts->srv, &echo);
    zinx_server_on_conn_start(ts->srv, on_start, NULL);
    zinx_server_on_conn_stop(ts->srv, on_stop, NULL);
    TF_ASSERT_RC(tf_server_start(ts), 0);
    int fd = tc_connect(ts->port);
    assert_true(fd >= 0);
    uint32_t rid, rlen;
    char rbuf[8];
    assert_int_equal(tc_roundtrip(fd, ZINX_FORMAT_TLV, 1, "x", 1, &rid, rbuf,
                                  sizeof(rbuf), &rlen, 2000),
                     0);
    assert_int_equal(tf_wait_atomic_ge(&env.timer_runs, 5, tf_ms(3000)) >= 5,
                     1);

    /* Posts race the peer leaving: each accepted one runs, in order, on
       the handler thread, before OnConnStop; later ones are refused. */
    int accepted = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, poster, &accepted), 0);
    tf_sleep_ms(30);
    tc_close(fd);
    assert_int_equal(tf_join(th, tf_ms(10000), NULL), 0);
    assert_int_equal(tf_wait_stat(ts->srv, TF_STAT(closed), 1, tf_ms(5000)), 1);
    tf_sleep_ms(30); /* a tick or a post that came late would show now */
    assert_true(accepted > 0);
    assert_int_equal(atomic_load(&env.posted_ran), accepted);
    assert_int_equal(atomic_load(&env.order_bad), 0);
    assert_int_equal(atomic_load(&env.late), 0);
    assert_int_equal(atomic_load(&env.wrong_thread), 0);
    TF_ASSERT_RC(zinx_conn_post(env.conn, posted, NULL), ZINX_ECLOSED);
    TF_ASSERT_RC(zinx_conn_timer_after(env.conn, 1, conn_tick, NULL, NULL),
                 ZINX_ECLOSED);
    zinx_timer_cancel(env.timer);
    zinx_conn_unref(env.conn);
    tf_server_free(ts);
}

static void test_conn_work_on_workers(void **state)
{
    (void)state;
    run_conn_work(2);
}

static void test_conn_work_inline(void **state)
{
    (void)state;
    run_conn_work(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_after_every_at_cancel),
        cmocka_unit_test(test_ten_thousand_timers_many_threads),
        cmocka_unit_test(test_conn_work_on_workers),
        cmocka_unit_test(test_conn_work_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
