/*
 * A protobuf-c allocator that carves the decoded message out of one
 * buffer, so decoding a message costs no malloc: the bots decode millions
 * of small messages a second, and each is dropped before the next.
 *
 * What does not fit in the buffer comes from malloc and goes back to
 * free (protobuf_c_message_free_unpacked with the arena's allocator).
 * pb_arena_reset() then makes the whole buffer free again.
 *
 * Threads: an arena belongs to one thread.
 */
#ifndef MMO_BOTS_PBARENA_H
#define MMO_BOTS_PBARENA_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct pb_arena {
    ProtobufCAllocator allocator; /* pass &arena->allocator to unpack */
    unsigned char *buf;
    size_t cap, used;
} pb_arena_t;

/* A buffer of cap bytes; false when out of memory. */
bool pb_arena_init(pb_arena_t *a, size_t cap);
void pb_arena_free(pb_arena_t *a);

/* Every block carved so far is free again. Free the message first. */
void pb_arena_reset(pb_arena_t *a);

#endif /* MMO_BOTS_PBARENA_H */
