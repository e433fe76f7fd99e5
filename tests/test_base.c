/*
 * Unit tests of the library's building blocks, below any socket: the
 * byte buffers, the timer heap and the router table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

/* ---- router table -------------------------------------------------------- */

static void noop(zinx_request_t *req, void *udata)
{
    (void)req;
    (void)udata;
}

static void test_router_table(void **state)
{
    (void)state;
    zinx__router_table_t t = {0};
    assert_null(zinx__router_table_find(&t, 1));
    /* IDs that share low bits, and the extremes. */
    static int tags[3000];
    for (uint32_t i = 0; i < 3000; i++) {
        zinx_router_t r = {.handle = noop, .udata = &tags[i]};
        uint32_t id = i * 1024u + (i == 2999 ? UINT32_MAX - 2999 * 1024u : 0);
        assert_int_equal(zinx__router_table_add(&t, id, &r), 0);
    }
    assert_int_equal(t.count, 3000);
    assert_true(t.count * 2 <= t.cap); /* load at most one half */
    for (uint32_t i = 0; i < 3000; i++) {
        uint32_t id = i * 1024u + (i == 2999 ? UINT32_MAX - 2999 * 1024u : 0);
        const zinx_router_t *r = zinx__router_table_find(&t, id);
        assert_non_null(r);
        assert_ptr_equal(r->udata, &tags[i]);
    }
    assert_null(zinx__router_table_find(&t, 1));
    assert_null(zinx__router_table_find(&t, 1023));
    zinx_router_t dup = {.handle = noop};
    assert_int_equal(zinx__router_table_add(&t, 0, &dup), ZINX_EEXIST);
    assert_int_equal(zinx__router_table_add(&t, UINT32_MAX, &dup), ZINX_EEXIST);
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
        cmocka_unit_test(test_router_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
