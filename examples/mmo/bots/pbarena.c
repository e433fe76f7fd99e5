/* The decoder's arena: see pbarena.h. */
#include "pbarena.h"

#include <stdint.h>
#include <stdlib.h>

/* Blocks keep the alignment malloc gives. */
#define ARENA_ALIGN 16u

static bool in_buf(const pb_arena_t *a, const void *p)
{
    uintptr_t u = (uintptr_t)p, lo = (uintptr_t)a->buf;
    return u >= lo && u < lo + a->cap;
}

static void *arena_alloc(void *udata, size_t size)
{
    pb_arena_t *a = udata;
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need >= size && need <= a->cap - a->used) {
        void *p = a->buf + a->used;
        a->used += need;
        return p;
    }
    return malloc(size);
}

static void arena_release(void *udata, void *p)
{
    if (!in_buf(udata, p))
        free(p);
}

bool pb_arena_init(pb_arena_t *a, size_t cap)
{
    a->buf = aligned_alloc(ARENA_ALIGN, cap);
    a->cap = a->buf != NULL ? cap : 0;
    a->used = 0;
    a->allocator.alloc = arena_alloc;
    a->allocator.free = arena_release;
    a->allocator.allocator_data = a;
    return a->buf != NULL;
}

void pb_arena_free(pb_arena_t *a)
{
    free(a->buf);
    a->buf = NULL;
    a->cap = a->used = 0;
}

void pb_arena_reset(pb_arena_t *a)
{
    a->used = 0;
}
