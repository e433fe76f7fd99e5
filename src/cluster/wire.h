/*
 * The wire format of cluster messages: what one node publishes to
 * others over NATS. Little-endian, a fixed 32-byte header, then `count`
 * 64-bit connection IDs, then the payload to the end of the message:
 *
 *   0  version  u8   ZINX__WIRE_VERSION; other versions are refused
 *   1  kind     u8   zinx__wire_kind
 *   2  flags    u8   per kind (ZINX__WIRE_FIRST/LAST for snapshots)
 *   3  zero     u8
 *   4  node     u32  the sender's node number, 1..65535
 *   8  instance u64  the sender's nonce, new at every start
 *  16  value    u64  per kind: start time (ms since the epoch) for
 *                    hello/heartbeat/claim replies, else 0
 *  24  msg_id   u32  the Zinx message ID (notify, broadcast); the node
 *                    asked for its snapshot (snapshot); topic length
 *                    (topic)
 *  28  count    u32  connection IDs that follow
 *  32  ids      count x u64
 *      payload  the rest (for a topic: the topic, then the data)
 *
 * The parser reads input from any process on the NATS server: it checks
 * every length against the message before using it.
 */
#ifndef ZINX_CLUSTER_WIRE_H
#define ZINX_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define ZINX__WIRE_VERSION 1
#define ZINX__WIRE_HEADER 32

enum zinx__wire_kind {
    ZINX__WIRE_HELLO = 1, /* joined (node subject of all) */
    ZINX__WIRE_HEARTBEAT, /* alive */
    ZINX__WIRE_GOODBYE,   /* leaving at a graceful stop */
    ZINX__WIRE_CLAIM,     /* request: does a live node hold this number? */
    ZINX__WIRE_HOLDER,    /* reply to a claim: yes, me (payload: who) */
    ZINX__WIRE_CONN_UP,   /* ids started on the sender */
    ZINX__WIRE_CONN_DOWN, /* ids ended on the sender */
    ZINX__WIRE_SNAPSHOT,  /* the sender's live connections */
    ZINX__WIRE_NOTIFY,    /* deliver payload as msg_id to ids */
    ZINX__WIRE_BROADCAST, /* deliver payload as msg_id to everyone */
    ZINX__WIRE_TOPIC,     /* an application message */
    ZINX__WIRE_KIND_MAX = ZINX__WIRE_TOPIC
};

#define ZINX__WIRE_FIRST 0x01 /* snapshot: the first part */
#define ZINX__WIRE_LAST 0x02  /* snapshot: the last part */

typedef struct zinx__wire_msg {
    uint8_t kind, flags;
    uint32_t node;
    uint64_t instance;
    uint64_t value;
    uint32_t msg_id;
    uint32_t count;
    const uint8_t *ids; /* count x 8 bytes, read with zinx__wire_id() */
    const uint8_t *payload;
    size_t payload_len;
} zinx__wire_msg_t;

/*
 * Parses buf[0..len) into *m (which points into buf). Returns 0 or
 * ZINX_EPROTO for a message too short, of another version or kind, from
 * node 0 or above 65535, or whose IDs overrun it. Thread: any.
 */
int zinx__wire_parse(zinx__wire_msg_t *m, const void *buf, size_t len);

/* The i-th connection ID of a parsed message (i < m->count). */
uint64_t zinx__wire_id(const zinx__wire_msg_t *m, uint32_t i);

/* Bytes of a message with count IDs and payload_len bytes after them. */
static inline size_t zinx__wire_size(uint32_t count, size_t payload_len)
{
    return ZINX__WIRE_HEADER + (size_t)count * 8 + payload_len;
}

/*
 * Writes the header of m (its ids and payload are not read) into out,
 * which has zinx__wire_size() bytes; the caller then writes the IDs
 * with zinx__wire_put_id() and copies the payload after them.
 */
void zinx__wire_put_header(uint8_t *out, const zinx__wire_msg_t *m);
void zinx__wire_put_id(uint8_t *out, uint32_t i, uint64_t id);

#endif /* ZINX_CLUSTER_WIRE_H */
