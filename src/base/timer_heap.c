/*
 * Loop timers: a binary min-heap of deadlines per loop.
 *
 * Timers are owned by the loop thread: arm, cancel and firing all happen
 * there. A timer is embedded in its owner (a connection, a dialer), so
 * arming allocates nothing once the heap has grown.
 */
#include <stdlib.h>

#include "base/array.h"
#include "base/base.h"

#define NOT_ARMED SIZE_MAX

void zinx__timer_init(zinx__timer_t *t, zinx__timer_fn fn, void *arg)
{
    t->deadline_ms = 0;
    t->heap_index = NOT_ARMED;
    t->fn = fn;
    t->arg = arg;
}

bool zinx__timer_armed(const zinx__timer_t *t)
{
    return t->heap_index != NOT_ARMED;
}

static void place(zinx__timer_heap_t *h, size_t i, zinx__timer_t *t)
{
    h->items[i] = t;
    t->heap_index = i;
}

static void sift_up(zinx__timer_heap_t *h, size_t i)
{
    zinx__timer_t *t = h->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->items[parent]->deadline_ms <= t->deadline_ms)
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(zinx__timer_heap_t *h, size_t i)
{
    zinx__timer_t *t = h->items[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->count)
            break;
        if (child + 1 < h->count &&
            h->items[child + 1]->deadline_ms < h->items[child]->deadline_ms)
            child++;
        if (t->deadline_ms <= h->items[child]->deadline_ms)
            break;
        place(h, i, h->items[child]);
        i = child;
    }
    place(h, i, t);
}

int zinx__timer_heap_reserve(zinx__timer_heap_t *h, size_t count)
{
    return ZINX__ARRAY_RESERVE(h->items, h->cap, count);
}

int zinx__timer_heap_arm(zinx__timer_heap_t *h, zinx__timer_t *t,
                         uint64_t deadline_ms)
{
    if (zinx__timer_armed(t)) {
        uint64_t old = t->deadline_ms;
        t->deadline_ms = deadline_ms;
        if (deadline_ms < old)
            sift_up(h, t->heap_index);
        else
            sift_down(h, t->heap_index);
        return 0;
    }
    if (ZINX__ARRAY_PUSH(h->items, h->count, h->cap, t) != 0)
        return ZINX_ENOMEM;
    t->deadline_ms = deadline_ms;
    t->heap_index = h->count - 1;
    sift_up(h, t->heap_index);
    return 0;
}

void zinx__timer_heap_cancel(zinx__timer_heap_t *h, zinx__timer_t *t)
{
    if (!zinx__timer_armed(t))
        return;
    size_t i = t->heap_index;
    t->heap_index = NOT_ARMED;
    ZINX__ARRAY_REMOVE_SWAP(h->items, h->count, i);
    if (i == h->count)
        return; /* t was the last one: nothing moved */
    /* The former last timer now sits at i; restore the heap order. */
    zinx__timer_t *moved = h->items[i];
    place(h, i, moved);
    sift_up(h, i);
    sift_down(h, moved->heap_index);
}

int zinx__timer_heap_run(zinx__timer_heap_t *h, uint64_t now_ms)
{
    while (h->count > 0) {
        zinx__timer_t *t = h->items[0];
        if (t->deadline_ms > now_ms) {
            uint64_t wait = t->deadline_ms - now_ms;
            return wait > 60000 ? 60000 : (int)wait;
        }
        zinx__timer_heap_cancel(h, t);
        t->fn(t, t->arg); /* may re-arm t or any other timer */
    }
    return -1;
}

void zinx__timer_heap_free(zinx__timer_heap_t *h)
{
    for (size_t i = 0; i < h->count; i++)
        h->items[i]->heap_index = NOT_ARMED;
    ZINX__ARRAY_FREE(h->items, h->count, h->cap);
}
