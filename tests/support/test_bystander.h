/*
 * A well-behaved client in the background: it makes one echo call
 * (checksummed payload, tc_echo_call()) every 2 ms on its own connection
 * and records latency and failures, to show that misbehaving peers do not
 * hold up the others. The server must route TC_ECHO_ID to an echo
 * (tf_echo_server_new() does).
 *
 * bystander_start() and bystander_finish() fail the test (cmocka): call
 * them on the test's thread.
 */
#ifndef TEST_BYSTANDER_H
#define TEST_BYSTANDER_H

#include "zinx.h"

typedef struct bystander bystander_t;

/*
 * Starts a bystander on 127.0.0.1:port speaking fmt (bystander_start:
 * TLV). Heap-allocated, so a failed assertion, which leaves the test
 * function early, does not leave the thread on a dead stack frame.
 */
bystander_t *bystander_start(int port);
bystander_t *bystander_start_fmt(int port, zinx_packet_format_t fmt);

/*
 * Lets it make a couple more calls (waiting at most 5 s), stops and
 * frees it, and fails the test, naming `what`, if any call failed, if
 * it made fewer than 2 calls, or if a call took longer than
 * max_latency_ms.
 */
void bystander_finish(bystander_t *b, const char *what, long max_latency_ms);

#endif /* TEST_BYSTANDER_H */
