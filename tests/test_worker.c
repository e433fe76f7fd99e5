/*
 * Unit tests of the worker pool (src/work/): FIFO order, reservations
 * and waiters, lanes that park and unpark, closed lanes, and unparking
 * that races with the worker reaching the lane's later jobs.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_fixture.h"
#include "work/worker.h"

typedef struct rec {
    zinx__job_t job;
    int id;
    bool park_once; /* parks itself the first time it runs */
    bool parked_result;
} rec_t;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int order[64];
static atomic_int nrun;

static bool run_rec(zinx__worker_t *w, zinx__job_t *job)
{
    rec_t *r = (rec_t *)job;
    if (r->park_once) {
        r->park_once = false;
        r->parked_result = zinx__worker_park(w, job);
        if (r->parked_result)
            return false;
    }
    pthread_mutex_lock(&log_lock);
    order[atomic_load(&nrun)] = r->id;
    atomic_fetch_add(&nrun, 1);
    pthread_mutex_unlock(&log_lock);
    return true;
}

static void reset(void)
{
    memset(order, 0, sizeof(order));
    atomic_store(&nrun, 0);
}

static void rec_init(rec_t *r, int id, zinx__lane_t *lane, uint32_t weight)
{
    memset(r, 0, sizeof(*r));
    zinx__job_init(&r->job, run_rec, lane, weight);
    r->id = id;
}

/* Waits up to 3 s for the lane's first job to park itself. */
static void wait_parked(zinx__lane_t *lane)
{
    for (int i = 0; i < 3000 && !atomic_load(&lane->parked); i++)
        tf_sleep_ms(1);
}

static void test_fifo_order(void **state)
{
    (void)state;
    reset();
    zinx__worker_t *w = zinx__worker_new(0, 16);
    assert_int_equal(zinx__worker_start(w), 0);
    rec_t r[5];
    for (int i = 0; i < 5; i++)
        rec_init(&r[i], i, NULL, 0);
    r[0].job.next = &r[1].job;
    r[1].job.next = &r[2].job;
    zinx__worker_push_list(w, &r[0].job, &r[2].job);
    zinx__worker_push(w, &r[3].job);
    zinx__worker_push(w, &r[4].job);
    assert_int_equal(tf_wait_atomic_ge(&nrun, 5, 3000), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(order[i], i);
    zinx__worker_free(w);
}

static atomic_int kept, woken;

static void keep(zinx__waiter_t *w)
{
    (void)w;
    atomic_fetch_add(&kept, 1);
}

static void wake(zinx__waiter_t *w)
{
    (void)w;
    atomic_fetch_add(&woken, 1);
}

static const zinx__waiter_ops_t test_waiter_ops = {.keep = keep, .wake = wake};

static void test_reservation_and_waiter(void **state)
{
    (void)state;
    reset();
    atomic_store(&kept, 0);
    atomic_store(&woken, 0);
    zinx__worker_t *w = zinx__worker_new(0, 4);
    zinx__waiter_t wt = {.ops = &test_waiter_ops};
    assert_int_equal(zinx__worker_reserve(w, &wt, 3), 3);
    assert_int_equal(zinx__worker_reserve(w, &wt, 3), 1); /* room for 1 */
    assert_int_equal(zinx__worker_reserve(w, &wt, 1), 0);
    assert_int_equal(atomic_load(&kept), 1); /* listed once */
    zinx__worker_unreserve(w, 1);
    /* Four reserved units run as four jobs; taking them frees the queue
       and wakes the waiter once half of it is free. */
    assert_int_equal(zinx__worker_start(w), 0);
    rec_t r[3];
    rec_init(&r[0], 0, NULL, 2);
    rec_init(&r[1], 1, NULL, 1);
    rec_init(&r[2], 2, NULL, 0);
    zinx__worker_push(w, &r[0].job);
    zinx__worker_push(w, &r[1].job);
    assert_int_equal(tf_wait_atomic_ge(&nrun, 2, 3000), 2);
    assert_int_equal(tf_wait_atomic_ge(&woken, 1, 3000), 1);
    /* Room again for the whole capacity. */
    assert_int_equal(zinx__worker_reserve(w, &wt, 4), 4);
    zinx__worker_unreserve(w, 4);
    zinx__worker_push(w, &r[2].job);
    assert_int_equal(tf_wait_atomic_ge(&nrun, 3, 3000), 3);
    assert_int_equal(atomic_load(&woken), 1);
    zinx__worker_free(w);
}

static void test_lane_parks_joins_and_unparks(void **state)
{
    (void)state;
    reset();
    zinx__worker_t *w = zinx__worker_new(0, 16);
    assert_int_equal(zinx__worker_start(w), 0);
    zinx__lane_t lane;
    memset(&lane, 0, sizeof(lane));
    rec_t a, b, other;
    rec_init(&a, 1, &lane, 0);
    rec_init(&b, 2, &lane, 0);
    rec_init(&other, 3, NULL, 0);
    a.park_once = true;
    zinx__worker_push(w, &a.job);
    wait_parked(&lane);
    assert_true(atomic_load(&lane.parked));
    zinx__worker_push(w, &b.job);     /* joins a, behind it */
    zinx__worker_push(w, &other.job); /* another lane goes on */
    assert_int_equal(tf_wait_atomic_ge(&nrun, 1, 3000), 1);
    tf_sleep_ms(20);
    assert_int_equal(atomic_load(&nrun), 1);
    assert_int_equal(order[0], 3);
    zinx__worker_unpark(w, &lane);
    assert_int_equal(tf_wait_atomic_ge(&nrun, 3, 3000), 3);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 2);
    assert_false(atomic_load(&lane.parked));
    zinx__worker_free(w);
}

static void test_closed_lane_parks_nothing(void **state)
{
    (void)state;
    reset();
    zinx__worker_t *w = zinx__worker_new(0, 16);
    assert_int_equal(zinx__worker_start(w), 0);
    zinx__lane_t lane;
    memset(&lane, 0, sizeof(lane));
    rec_t a, b;
    rec_init(&a, 1, &lane, 0);
    rec_init(&b, 2, &lane, 0);
    a.park_once = true;
    zinx__worker_push(w, &a.job);
    wait_parked(&lane);
    /* Closing gives the parked job back; a later one cannot park. */
    zinx__worker_close_lane(w, &lane);
    assert_int_equal(tf_wait_atomic_ge(&nrun, 1, 3000), 1);
    b.park_once = true;
    zinx__worker_push(w, &b.job);
    assert_int_equal(tf_wait_atomic_ge(&nrun, 2, 3000), 2);
    assert_false(b.parked_result);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    zinx__worker_free(w);
}

/* The worker takes its whole queue at once. A lane unparked while the
   worker holds later jobs of that lane must still run its unparked jobs
   first: the first job parks, the unparking races with the worker
   reaching the next ones, and the order is checked every time. */
enum { RACE_JOBS = 8, RACE_ROUNDS = 2000 };

typedef struct unparker {
    zinx__worker_t *w;
    zinx__lane_t *lane;
} unparker_t;

static void *unpark_when_parked(void *arg)
{
    unparker_t *u = arg;
    while (!atomic_load(&u->lane->parked))
        ; /* spin: the race is the point */
    zinx__worker_unpark(u->w, u->lane);
    return NULL;
}

static void test_unpark_races_with_taken_jobs(void **state)
{
    (void)state;
    zinx__worker_t *w = zinx__worker_new(0, 1024);
    assert_int_equal(zinx__worker_start(w), 0);
    int bad = 0;
    for (int round = 0; round < RACE_ROUNDS && bad == 0; round++) {
        reset();
        zinx__lane_t lane;
        memset(&lane, 0, sizeof(lane));
        rec_t r[RACE_JOBS];
        for (int i = 0; i < RACE_JOBS; i++) {
            rec_init(&r[i], i + 1, &lane, 0);
            if (i > 0)
                r[i - 1].job.next = &r[i].job;
        }
        r[0].park_once = true;
        unparker_t u = {.w = w, .lane = &lane};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, unpark_when_parked, &u), 0);
        zinx__worker_push_list(w, &r[0].job, &r[RACE_JOBS - 1].job);
        assert_int_equal(tf_wait_atomic_ge(&nrun, RACE_JOBS, 3000), RACE_JOBS);
        pthread_join(t, NULL);
        for (int i = 0; i < RACE_JOBS; i++)
            bad += order[i] != i + 1;
    }
    assert_int_equal(bad, 0);
    zinx__worker_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_reservation_and_waiter),
        cmocka_unit_test(test_lane_parks_joins_and_unparks),
        cmocka_unit_test(test_closed_lane_parks_nothing),
        cmocka_unit_test(test_unpark_races_with_taken_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
