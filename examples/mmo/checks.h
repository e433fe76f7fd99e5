/*
 * The checks of what players send: a Move's Position and a Talk's
 * Content, decoded from the peer's bytes and judged. Pure functions of
 * their input (any thread); the server's routers call them on the
 * library's workers, and a libFuzzer target (fuzz_mmo_input.c) drives
 * them with arbitrary bytes.
 */
#ifndef MMO_CHECKS_H
#define MMO_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "aoi.h"
#include "protocol.h"

typedef enum mmo_verdict {
    MMO_OK = 0,
    MMO_MALFORMED,    /* not the message, or a string not UTF-8 */
    MMO_BAD_POSITION, /* outside the world, or a coordinate not finite */
    MMO_BAD_CHAT_SIZE /* empty, or above MMO_CHAT_MAX bytes */
} mmo_verdict_t;

/* Decodes a Position; MMO_OK with *out set when it lies inside *aoi's
   world with every coordinate finite. */
mmo_verdict_t mmo_check_move(const mmo_aoi_t *aoi, const void *data, size_t len,
                             mmo_pos_t *out);

/* Decodes a Talk; MMO_OK with its Content copied into out (NUL-ended)
   when it is 1..MMO_CHAT_MAX bytes of valid UTF-8. */
mmo_verdict_t mmo_check_talk(const void *data, size_t len,
                             char out[MMO_CHAT_MAX + 1]);

/* Whether s[0..len) is UTF-8 as RFC 3629 defines it (no overlong forms,
   no surrogates, nothing above U+10FFFF). */
bool mmo_valid_utf8(const unsigned char *s, size_t len);

#endif /* MMO_CHECKS_H */
