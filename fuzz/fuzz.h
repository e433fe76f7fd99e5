/*
 * Shared declarations of the fuzz targets.
 *
 * Each target defines LLVMFuzzerTestOneInput(). Linked with libFuzzer it
 * is a fuzzer; linked with replay_main.c it replays files, which is how
 * ctest runs the committed corpus in every build, sanitizers or not.
 *
 * Checks use FUZZ_CHECK, never assert(): release builds define NDEBUG,
 * and a check that vanishes would let a corpus replay pass silently.
 */
#ifndef ZINX_FUZZ_H
#define ZINX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            abort();                                                         \
        }                                                                    \
    } while (0)

#endif /* ZINX_FUZZ_H */
