/*
 * World chat between nodes: the message a node publishes on the cluster
 * topic MMO_CHAT_TOPIC when one of its players talks, and the check of
 * such a message when another node's arrives (protocol.h, "Several
 * nodes"). Pure functions of their input (any thread); a libFuzzer
 * target (fuzz/fuzz_mmo_relay.c) drives the check with arbitrary bytes.
 *
 * Layout: the talker's player ID as an i32 little-endian, then a Talk
 * (proto/msg.proto) with the chat. Another node is a peer like a
 * player: what it sends is checked as a player's Talk is, and its
 * talker must be one of its own players (an ID of its node's range), so
 * a node cannot speak for another's players.
 */
#ifndef MMO_CHAT_RELAY_H
#define MMO_CHAT_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "checks.h"

/* The longest message: the ID, a Talk's tag, length (2 bytes at this
   size) and MMO_CHAT_MAX bytes. */
#define MMO_RELAY_CHAT_MAX (4 + 3 + MMO_CHAT_MAX)

/* Writes pid's chat text (NUL-terminated, checked: 1..MMO_CHAT_MAX bytes
   of UTF-8) into buf; returns its length, or 0 when text is too long. */
size_t mmo_relay_chat_encode(int32_t pid, const char *text,
                             uint8_t buf[MMO_RELAY_CHAT_MAX]);

/* Reads a message from_node published: MMO_OK with the talker's ID in
   *pid and the chat in out (NUL-ended) when the ID lies in from_node's
   range and the Talk passes mmo_check_talk(); else MMO_MALFORMED (a
   short message, an ID of another node) or mmo_check_talk()'s verdict. */
mmo_verdict_t mmo_relay_chat_check(const void *data, size_t len,
                                   uint32_t from_node, int32_t *pid,
                                   char out[MMO_CHAT_MAX + 1]);

#endif /* MMO_CHAT_RELAY_H */
