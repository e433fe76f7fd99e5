/*
 * Test scenarios shared by several test files (run with different worker
 * pool sizes). They assert with cmocka, so call them from the test's own
 * thread only.
 */
#ifndef TEST_SCENARIOS_H
#define TEST_SCENARIOS_H

#include <stdint.h>

#include "zinx.h"

/*
 * Echo through a router in format fmt: payloads of 0, 1, 5, 100 and
 * MaxPacketSize bytes, a batch in one write and a batch in 1-byte
 * pieces. Replies (ID + 1000, same payload) are compared byte for byte.
 */
void sc_echo(uint32_t worker_pool_size, zinx_packet_format_t fmt);

/*
 * Hooks exactly once: 5 * per_group clients leave in five ways (close,
 * reset, half-close, oversize frame, still connected when the server
 * stops). Checks OnConnStart/OnConnStop counts, IDs, ordering against
 * handlers and stats. With stop_by_free the last group is closed by
 * zinx_server_free() instead of stop + wait.
 */
void sc_hooks(uint32_t worker_pool_size, int per_group, int stop_by_free);

#endif /* TEST_SCENARIOS_H */
