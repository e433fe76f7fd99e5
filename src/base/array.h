/*
 * Growable arrays of any element type. Never installed.
 *
 * An array is three lvalues its owner already keeps: a `T *items`, a
 * `size_t` count and a `size_t` capacity (in elements). The macros work
 * on those rather than on a struct of their own so that existing owners
 * (the timer heap's items/count/cap, a read buffer) adopt them without a
 * change of layout, and so that items keeps its real type: no casts at
 * the call sites, and sizeof(*items) gives the element size.
 *
 *     zinx__timer_t **items = NULL;
 *     size_t count = 0, cap = 0;
 *     if (ZINX__ARRAY_PUSH(items, count, cap, t) != 0)
 *         return ZINX_ENOMEM;            // items, count, cap unchanged
 *     ZINX__ARRAY_REMOVE_SWAP(items, count, 0);
 *     ZINX__ARRAY_FREE(items, count, cap);
 *
 * The macros evaluate their arguments more than once: pass plain
 * lvalues, never expressions with side effects. An array is owned by one
 * thread at a time; nothing here locks.
 */
#ifndef ZINX_BASE_ARRAY_H
#define ZINX_BASE_ARRAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "zinx/error.h"

/* The first allocation holds at least this many elements, so a push at a
   time does not reallocate for every one of the first few. */
#define ZINX__ARRAY_MIN_CAP 8u

/*
 * The capacity to grow to for `need` elements of `size` bytes: at least
 * need, at least twice cap (so n pushes cost O(n) copying in all), at
 * least ZINX__ARRAY_MIN_CAP. Returns 0 when need * size does not fit in a
 * size_t, and never a capacity whose byte size would not.
 */
static inline size_t zinx__array_next_cap(size_t cap, size_t need, size_t size)
{
    size_t max = SIZE_MAX / size;
    if (need > max)
        return 0;
    /* Doubling stops where it would overflow; need alone still fits. */
    size_t n = cap <= max / 2 ? cap * 2 : need;
    if (n < ZINX__ARRAY_MIN_CAP)
        n = max < ZINX__ARRAY_MIN_CAP ? max : ZINX__ARRAY_MIN_CAP;
    return n < need ? need : n;
}

/*
 * Makes room for `need` elements of `size` bytes at items, whose room is
 * *cap. Returns the allocation to use from now on: a new one with *cap
 * raised, or items itself, unchanged with *cap, when there was room
 * already or when the memory (or the size_t arithmetic) ran out. The
 * caller tells the cases apart by comparing *cap with need, which is
 * what ZINX__ARRAY_RESERVE() does. Returning items rather than storing
 * through a `void **` keeps the caller's `T *` from being written as a
 * `void *`, which C does not allow.
 */
static inline void *zinx__array_grow(void *items, size_t *cap, size_t need,
                                     size_t size)
{
    if (need <= *cap)
        return items;
    size_t n = zinx__array_next_cap(*cap, need, size);
    if (n == 0)
        return items;
    void *p = realloc(items, n * size);
    if (p == NULL)
        return items;
    *cap = n;
    return p;
}

/*
 * Makes room for at least `need` elements in items (capacity cap). The
 * capacity never shrinks. Evaluates to 0, or to ZINX_ENOMEM with items and
 * cap unchanged.
 */
#define ZINX__ARRAY_RESERVE(items, cap, need)                               \
    ((items) = zinx__array_grow((items), &(cap), (need), sizeof(*(items))), \
     (cap) >= (need) ? 0 : ZINX_ENOMEM)

/*
 * Appends value after the count elements of items, growing the
 * allocation when it is full. Evaluates to 0, or to ZINX_ENOMEM with
 * items, count and cap unchanged.
 */
#define ZINX__ARRAY_PUSH(items, count, cap, value)         \
    (ZINX__ARRAY_RESERVE((items), (cap), (count) + 1) != 0 \
         ? ZINX_ENOMEM                                     \
         : ((items)[(count)] = (value), (count)++, 0))

/*
 * Removes element i (i < count) by moving the last element into its
 * place: O(1), but the order of the elements is not kept. When i is the
 * last element, nothing moves.
 */
#define ZINX__ARRAY_REMOVE_SWAP(items, count, i) \
    ((items)[(i)] = (items)[(count)-1u], (count)--)

/* Frees the allocation and leaves an empty array, ready to grow again. */
#define ZINX__ARRAY_FREE(items, count, cap) \
    (free(items), (items) = NULL, (count) = 0, (cap) = 0)

#endif /* ZINX_BASE_ARRAY_H */
