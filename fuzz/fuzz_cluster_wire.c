/*
 * Fuzz target: the cluster's wire format (src/cluster/wire.c), which
 * reads what any process on the NATS server publishes on a cluster's
 * subjects.
 *
 * Input: the bytes of one NATS message. The parser runs on an exact
 * copy (a read past the end is a heap overflow the sanitizer sees), and
 * its answers are checked against what must hold whatever the bytes:
 *   - a refusal is ZINX_EPROTO, nothing else;
 *   - an accepted message has a known kind, a node in 1..65535, and its
 *     header, IDs and payload add up to exactly the bytes given;
 *   - writing the parsed message back gives the same bytes (but the
 *     reserved byte), and parsing that gives the same message.
 */
#include <string.h>

#include "fuzz.h"
#include "zinx.h"

#include "cluster/wire.h"

static void check_round_trip(const zinx__wire_msg_t *m, const uint8_t *in,
                             size_t len)
{
    uint8_t *out = malloc(len);
    FUZZ_CHECK(out != NULL, "out of memory");
    zinx__wire_put_header(out, m);
    for (uint32_t i = 0; i < m->count; i++)
        zinx__wire_put_id(out, i, zinx__wire_id(m, i));
    memcpy(out + zinx__wire_size(m->count, 0), m->payload, m->payload_len);
    FUZZ_CHECK(memcmp(out, in, 3) == 0 && memcmp(out + 4, in + 4, len - 4) == 0,
               "written back differently");
    zinx__wire_msg_t again;
    FUZZ_CHECK(zinx__wire_parse(&again, out, len) == 0, "reparse refused");
    FUZZ_CHECK(again.kind == m->kind && again.node == m->node &&
                   again.instance == m->instance && again.value == m->value &&
                   again.msg_id == m->msg_id && again.count == m->count &&
                   again.payload_len == m->payload_len,
               "reparsed differently");
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    uint8_t *copy = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    zinx__wire_msg_t m;
    int rc = zinx__wire_parse(&m, copy, size);
    FUZZ_CHECK(rc == 0 || rc == ZINX_EPROTO, "rc %d", rc);
    if (rc == 0) {
        FUZZ_CHECK(m.kind >= ZINX__WIRE_HELLO && m.kind <= ZINX__WIRE_KIND_MAX,
                   "kind %u", m.kind);
        FUZZ_CHECK(m.node >= 1 && m.node <= 0xffff, "node %u", m.node);
        FUZZ_CHECK(zinx__wire_size(m.count, m.payload_len) == size,
                   "%u ids and %zu payload bytes in %zu", m.count,
                   m.payload_len, size);
        /* Every ID is readable (the sanitizer checks the reads). */
        uint64_t sum = 0;
        for (uint32_t i = 0; i < m.count; i++)
            sum += zinx__wire_id(&m, i);
        (void)sum;
        check_round_trip(&m, copy, size);
    }
    free(copy);
    return 0;
}
