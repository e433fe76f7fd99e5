/*
 * Unit tests of the library's building blocks, below any socket: the
 * byte buffers, the timer heap, the growable arrays, the server counters
 * and the router table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/array.h"
#include "codec/codec.h"
#include "internal.h"

/* ---- buffers ------------------------------------------------------------ */

static void test_buf_append_consume(void **state)
{
    (void)state;
    zinx__buf_t b = {0};
    assert_null(zinx__buf_head(&b)); /* no NULL + 0 for an empty buffer */
    assert_int_equal(zinx__buf_size(&b), 0);
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    for (int round = 0; round < 50; round++)
        assert_int_equal(zinx__buf_append(&b, data, sizeof(data)), 0);
    assert_int_equal(zinx__buf_size(&b), 50 * sizeof(data));
    /* Consuming from the front keeps the bytes in order. */
    zinx__buf_consume(&b, 10);
    assert_int_equal(zinx__buf_head(&b)[0], 10);
    zinx__buf_consume(&b, zinx__buf_size(&b) - 1);
    assert_int_equal(zinx__buf_size(&b), 1);
    assert_int_equal(zinx__buf_head(&b)[0], (uint8_t)(sizeof(data) - 1));
    zinx__buf_consume(&b, 1);
    assert_int_equal(zinx__buf_size(&b), 0);
    zinx__buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

/* A drained front is reused before the buffer grows. */
static void test_buf_reserve_reuses_front(void **state)
{
    (void)state;
    zinx__buf_t b = {0};
    uint8_t chunk[300];
    memset(chunk, 'a', sizeof(chunk));
    assert_int_equal(zinx__buf_append(&b, chunk, sizeof(chunk)), 0);
    size_t cap = b.cap;
    zinx__buf_consume(&b, 250);
    uint8_t *before = b.data;
    assert_int_equal(zinx__buf_reserve(&b, cap - 50), 0);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.off, 0);
    assert_int_equal(zinx__buf_size(&b), 50);
    /* Impossible sizes are refused, not wrapped. */
    assert_int_equal(zinx__buf_reserve(&b, SIZE_MAX), ZINX_ENOMEM);
    zinx__buf_free(&b);
}

static void test_buf_move(void **state)
{
    (void)state;
    zinx__buf_t a = {0}, b = {0};
    assert_int_equal(zinx__buf_append(&b, "hello", 5), 0);
    /* Into an empty buffer: the allocation changes hands. */
    uint8_t *p = b.data;
    assert_int_equal(zinx__buf_move(&a, &b), 0);
    assert_ptr_equal(a.data, p);
    assert_int_equal(zinx__buf_size(&b), 0);
    assert_memory_equal(zinx__buf_head(&a), "hello", 5);
    /* Behind existing bytes: appended, source emptied. */
    assert_int_equal(zinx__buf_append(&b, " world", 6), 0);
    assert_int_equal(zinx__buf_move(&a, &b), 0);
    assert_int_equal(zinx__buf_size(&a), 11);
    assert_memory_equal(zinx__buf_head(&a), "hello world", 11);
    assert_int_equal(zinx__buf_size(&b), 0);
    zinx__buf_free(&a);
    zinx__buf_free(&b);
}

/* The one encoder of the library, as connections use it. */
static void test_buf_append_frame(void **state)
{
    (void)state;
    zinx__buf_t b = {0};
    assert_int_equal(zinx__codec_encode(zinx__codec_of(ZINX_FORMAT_TLV), &b,
                                        0x01020304u, "ab", 2),
                     0);
    assert_int_equal(
        zinx__codec_encode(zinx__codec_of(ZINX_FORMAT_LTV_LE), &b, 7, NULL, 0),
        0);
    const uint8_t want[] = {1,   2, 3, 4, 0, 0, 0, 2, 'a',
                            'b', 0, 0, 0, 0, 7, 0, 0, 0};
    assert_int_equal(zinx__buf_size(&b), sizeof(want));
    assert_memory_equal(zinx__buf_head(&b), want, sizeof(want));
    zinx__buf_free(&b);
}

/* ---- timer heap --------------------------------------------------------- */

typedef struct fired {
    int order[64];
    int n;
} fired_t;

typedef struct probe {
    zinx__timer_t t;
    int id;
    fired_t *log;
} probe_t;

static void record(zinx__timer_t *t, void *arg)
{
    (void)t;
    probe_t *p = arg;
    p->log->order[p->log->n++] = p->id;
}

static void test_timers_fire_in_deadline_order(void **state)
{
    (void)state;
    zinx__timer_heap_t h = {0};
    fired_t log = {0};
    probe_t p[40];
    /* Deadlines in a scrambled order, some equal. */
    for (int i = 0; i < 40; i++) {
        p[i] = (probe_t){.id = i, .log = &log};
        zinx__timer_init(&p[i].t, record, &p[i]);
        assert_false(zinx__timer_armed(&p[i].t));
        assert_int_equal(
            zinx__timer_heap_arm(&h, &p[i].t, 1000 + (uint64_t)((i * 17) % 40)),
            0);
        assert_true(zinx__timer_armed(&p[i].t));
    }
    /* Nothing due yet: the wait until the first one. */
    assert_int_equal(zinx__timer_heap_run(&h, 990), 10);
    assert_int_equal(log.n, 0);
    assert_int_equal(zinx__timer_heap_run(&h, 2000), -1);
    assert_int_equal(log.n, 40);
    for (int k = 1; k < 40; k++) {
        int a = log.order[k - 1], b = log.order[k];
        assert_true((a * 17) % 40 <= (b * 17) % 40);
    }
    for (int i = 0; i < 40; i++)
        assert_false(zinx__timer_armed(&p[i].t));
    zinx__timer_heap_free(&h);
}

static void test_timers_cancel_and_move(void **state)
{
    (void)state;
    zinx__timer_heap_t h = {0};
    fired_t log = {0};
    probe_t p[10];
    for (int i = 0; i < 10; i++) {
        p[i] = (probe_t){.id = i, .log = &log};
        zinx__timer_init(&p[i].t, record, &p[i]);
        assert_int_equal(zinx__timer_heap_arm(&h, &p[i].t, 100 + (uint64_t)i),
                         0);
    }
    zinx__timer_heap_cancel(&h, &p[3].t);
    zinx__timer_heap_cancel(&h, &p[3].t); /* twice: no effect */
    zinx__timer_heap_cancel(&h, &p[0].t);
    assert_false(zinx__timer_armed(&p[3].t));
    /* Re-arming moves a timer, earlier or later. */
    assert_int_equal(zinx__timer_heap_arm(&h, &p[9].t, 50), 0);
    assert_int_equal(zinx__timer_heap_arm(&h, &p[1].t, 500), 0);
    assert_int_equal(zinx__timer_heap_run(&h, 1000), -1);
    const int want[] = {9, 2, 4, 5, 6, 7, 8, 1};
    assert_int_equal(log.n, 8);
    assert_memory_equal(log.order, want, sizeof(want));
    zinx__timer_heap_free(&h);
}

/* Reserved room makes arming up to that many timers allocation-free. */
static void test_timers_reserve(void **state)
{
    (void)state;
    zinx__timer_heap_t h = {0};
    assert_int_equal(zinx__timer_heap_reserve(&h, 1000), 0);
    size_t cap = h.cap;
    void *items = h.items;
    assert_true(cap >= 1000);
    static probe_t p[1000];
    fired_t log = {0};
    for (int i = 0; i < 1000; i++) {
        p[i] = (probe_t){.id = i % 64, .log = &log};
        zinx__timer_init(&p[i].t, record, &p[i]);
        assert_int_equal(zinx__timer_heap_arm(&h, &p[i].t, (uint64_t)i), 0);
    }
    assert_int_equal(h.cap, cap);
    assert_ptr_equal(h.items, items);
    assert_int_equal(zinx__timer_heap_reserve(&h, 10), 0); /* never shrinks */
    assert_int_equal(h.cap, cap);
    zinx__timer_heap_free(&h);
    for (int i = 0; i < 1000; i++)
        assert_false(zinx__timer_armed(&p[i].t));
}

/* Counts firings, and those that come at another time than their own. */
typedef struct due_log {
    uint64_t now;
    int fired;
    int off_time;
} due_log_t;

static void check_due(zinx__timer_t *t, void *arg)
{
    due_log_t *d = arg;
    d->fired++;
    if (t->deadline_ms != d->now)
        d->off_time++;
}

/* Cancelling from every position keeps the heap in deadline order. */
static void test_timers_cancel_everywhere(void **state)
{
    (void)state;
    zinx__timer_heap_t h = {0};
    static zinx__timer_t t[500];
    due_log_t d = {0};
    uint32_t x = 12345;
    for (int i = 0; i < 500; i++) {
        zinx__timer_init(&t[i], check_due, &d);
        x = x * 1103515245u + 12345u; /* scrambled deadlines, many equal */
        assert_int_equal(zinx__timer_heap_arm(&h, &t[i], (x >> 16) % 300), 0);
    }
    int kept = 500;
    for (int i = 0; i < 500; i += 3) {
        zinx__timer_heap_cancel(&h, &t[i]);
        kept--;
    }
    /* Step the clock one ms at a time: each timer fires exactly when
       its deadline comes, never before, never after. */
    for (d.now = 0; d.now < 300; d.now++)
        zinx__timer_heap_run(&h, d.now);
    assert_int_equal(d.fired, kept);
    assert_int_equal(d.off_time, 0);
    for (int i = 0; i < 500; i++)
        assert_false(zinx__timer_armed(&t[i]));
    zinx__timer_heap_free(&h);
}

/* ---- growable arrays ---------------------------------------------------- */

static void test_array_push_and_reserve(void **state)
{
    (void)state;
    int *items = NULL;
    size_t count = 0, cap = 0;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ZINX__ARRAY_PUSH(items, count, cap, i * 3), 0);
    assert_int_equal(count, 1000);
    assert_true(cap >= 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(items[i], i * 3);
    /* Room already there: no reallocation, and it never shrinks. */
    int *same = items;
    size_t had = cap;
    assert_int_equal(ZINX__ARRAY_RESERVE(items, cap, 10), 0);
    assert_int_equal(ZINX__ARRAY_RESERVE(items, cap, had), 0);
    assert_ptr_equal(items, same);
    assert_int_equal(cap, had);
    /* Growing for more keeps the elements. */
    assert_int_equal(ZINX__ARRAY_RESERVE(items, cap, had + 5000), 0);
    assert_true(cap >= had + 5000);
    assert_int_equal(items[999], 999 * 3);
    ZINX__ARRAY_FREE(items, count, cap);
    assert_null(items);
    assert_int_equal(count, 0);
    assert_int_equal(cap, 0);
    /* Empty again and usable. */
    assert_int_equal(ZINX__ARRAY_PUSH(items, count, cap, 7), 0);
    assert_int_equal(items[0], 7);
    assert_true(cap >= ZINX__ARRAY_MIN_CAP);
    ZINX__ARRAY_FREE(items, count, cap);
}

static void test_array_remove_swap(void **state)
{
    (void)state;
    const char *names[] = {"a", "b", "c", "d"};
    const char **items = NULL;
    size_t count = 0, cap = 0;
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(ZINX__ARRAY_PUSH(items, count, cap, names[i]), 0);
    /* The last element takes the removed one's place. */
    ZINX__ARRAY_REMOVE_SWAP(items, count, 1);
    assert_int_equal(count, 3);
    assert_string_equal(items[0], "a");
    assert_string_equal(items[1], "d");
    assert_string_equal(items[2], "c");
    /* Removing the last one moves nothing. */
    ZINX__ARRAY_REMOVE_SWAP(items, count, 2);
    assert_int_equal(count, 2);
    assert_string_equal(items[0], "a");
    assert_string_equal(items[1], "d");
    ZINX__ARRAY_REMOVE_SWAP(items, count, 0);
    ZINX__ARRAY_REMOVE_SWAP(items, count, 0);
    assert_int_equal(count, 0);
    ZINX__ARRAY_FREE(items, count, cap);
}

/* A byte size past SIZE_MAX fails before any allocation is tried. */
static void test_array_overflow_refused(void **state)
{
    (void)state;
    uint64_t *items = NULL;
    size_t count = 0, cap = 0;
    size_t too_many = SIZE_MAX / sizeof(*items) + 1;
    assert_int_equal(ZINX__ARRAY_RESERVE(items, cap, too_many), ZINX_ENOMEM);
    assert_null(items);
    assert_int_equal(cap, 0);
    assert_int_equal(ZINX__ARRAY_PUSH(items, count, cap, 1), 0);
    uint64_t *kept = items;
    size_t had = cap;
    assert_int_equal(ZINX__ARRAY_RESERVE(items, cap, SIZE_MAX), ZINX_ENOMEM);
    assert_ptr_equal(items, kept);
    assert_int_equal(cap, had);
    assert_int_equal(count, 1);
    assert_int_equal(items[0], 1);
    ZINX__ARRAY_FREE(items, count, cap);
}

/* The growth rule at its edges, without allocating. */
static void test_array_next_cap(void **state)
{
    (void)state;
    assert_int_equal(zinx__array_next_cap(0, 1, 8), ZINX__ARRAY_MIN_CAP);
    assert_int_equal(zinx__array_next_cap(0, 1000, 8), 1000);
    assert_int_equal(zinx__array_next_cap(16, 17, 8), 32);
    assert_int_equal(zinx__array_next_cap(16, 100, 8), 100);
    size_t max = SIZE_MAX / 8;
    /* Doubling would pass max: need alone is asked for. */
    assert_int_equal(zinx__array_next_cap(max / 2 + 1, max / 2 + 2, 8),
                     max / 2 + 2);
    assert_int_equal(zinx__array_next_cap(max / 2, max / 2 + 1, 8),
                     (max / 2) * 2);
    assert_int_equal(zinx__array_next_cap(0, max, 8), max);
    assert_int_equal(zinx__array_next_cap(0, max + 1, 8), 0);
    /* Elements so large that fewer than ZINX__ARRAY_MIN_CAP fit. */
    size_t huge = SIZE_MAX / 4;
    size_t fit = SIZE_MAX / huge;
    assert_true(fit < ZINX__ARRAY_MIN_CAP);
    assert_int_equal(zinx__array_next_cap(0, 1, huge), fit);
}

/* ---- server counters ---------------------------------------------------- */

/* Every row of ZINX_STATS_MAP is copied, each to its own field. */
static void test_stats_copy(void **state)
{
    (void)state;
    zinx__stats_t st;
    uint64_t v = 1;
#define SET_COUNTER(name, text) atomic_init(&st.name, v++);
    ZINX_STATS_MAP(SET_COUNTER)
#undef SET_COUNTER
    zinx_server_stats_t out;
    memset(&out, 0xee, sizeof(out));
    zinx__stats_copy(&st, &out);
    v = 1;
#define CHECK_COUNTER(name, text) assert_int_equal(out.name, v++);
    ZINX_STATS_MAP(CHECK_COUNTER)
#undef CHECK_COUNTER
    /* Not a counter: left to zinx_server_stats(). */
    assert_true(out.connections == 0xeeeeeeeeeeeeeeeeull);
    /* The public struct is the v - 1 counters and connections, nothing
       else. */
    assert_int_equal(sizeof(out), v * sizeof(uint64_t));
}

/* ---- router table -------------------------------------------------------- */

static void noop(zinx_request_t *req, void *udata)
{
    (void)req;
    (void)udata;
}

/* A one-handler chain, as the registration calls resolve it. */
static zinx__chain_t one_chain(void *udata)
{
    zinx__mw_t none = {0};
    zinx_handler_t h = {noop, udata};
    zinx__chain_t c;
    assert_int_equal(zinx__chain_resolve(&c, &none, NULL, &h, 1), 0);
    return c;
}

static void test_router_table(void **state)
{
    (void)state;
    zinx__router_table_t t = {0};
    assert_null(zinx__router_table_find(&t, 1));
    /* IDs that share low bits, and the extremes. */
    static int tags[3000];
    for (uint32_t i = 0; i < 3000; i++) {
        zinx__chain_t c = one_chain(&tags[i]);
        uint32_t id = i * 1024u + (i == 2999 ? UINT32_MAX - 2999 * 1024u : 0);
        assert_int_equal(zinx__router_table_add(&t, id, &c), 0);
        assert_null(c.v); /* taken */
    }
    assert_int_equal(t.count, 3000);
    assert_true(t.count * 2 <= t.cap); /* load at most one half */
    for (uint32_t i = 0; i < 3000; i++) {
        uint32_t id = i * 1024u + (i == 2999 ? UINT32_MAX - 2999 * 1024u : 0);
        const zinx__route_t *r = zinx__router_table_find(&t, id);
        assert_non_null(r);
        assert_int_equal(r->chain.n, 1);
        assert_ptr_equal(r->chain.v[0].udata, &tags[i]);
    }
    assert_null(zinx__router_table_find(&t, 1));
    assert_null(zinx__router_table_find(&t, 1023));
    zinx__chain_t dup = one_chain(NULL);
    assert_int_equal(zinx__router_table_add(&t, 0, &dup), ZINX_EEXIST);
    assert_int_equal(zinx__router_table_add(&t, UINT32_MAX, &dup), ZINX_EEXIST);
    assert_non_null(dup.v); /* still the caller's */
    zinx__chain_free(&dup);
    zinx__router_table_free(&t);
    assert_null(zinx__router_table_find(&t, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_consume),
        cmocka_unit_test(test_buf_reserve_reuses_front),
        cmocka_unit_test(test_buf_move),
        cmocka_unit_test(test_buf_append_frame),
        cmocka_unit_test(test_timers_fire_in_deadline_order),
        cmocka_unit_test(test_timers_cancel_and_move),
        cmocka_unit_test(test_timers_reserve),
        cmocka_unit_test(test_timers_cancel_everywhere),
        cmocka_unit_test(test_array_push_and_reserve),
        cmocka_unit_test(test_array_remove_swap),
        cmocka_unit_test(test_array_overflow_refused),
        cmocka_unit_test(test_array_next_cap),
        cmocka_unit_test(test_stats_copy),
        cmocka_unit_test(test_router_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
