/*
 * Fuzz target: the MMO demo's check of a world chat another node
 * relayed (examples/mmo/chat_relay.c): what a node accepts from the
 * cluster before its world thread sends it to its players.
 *
 * Input layout: byte 0 is the sending node's number (0..255); the rest
 * is the message as it arrives from NATS.
 *
 * Checked: an accepted chat names a player of the sending node, is
 * 1..MMO_CHAT_MAX bytes of UTF-8, and survives mmo_relay_chat_encode()
 * and a second check unchanged; the encoder's output always fits its
 * buffer.
 */
#include <string.h>

#include "chat_relay.h"
#include "fuzz.h"
#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint32_t from = data[0];
    int32_t pid = 0;
    char text[MMO_CHAT_MAX + 1];
    if (mmo_relay_chat_check(data + 1, size - 1, from, &pid, text) != MMO_OK)
        return 0;
    size_t n = strlen(text);
    FUZZ_CHECK(pid > 0 && MMO_PID_NODE(pid) == from && from != 0,
               "PID %d accepted from node %u", pid, (unsigned)from);
    FUZZ_CHECK(n >= 1 && n <= MMO_CHAT_MAX, "chat of %zu bytes accepted", n);
    FUZZ_CHECK(mmo_valid_utf8((const unsigned char *)text, n),
               "chat not UTF-8");
    uint8_t buf[MMO_RELAY_CHAT_MAX];
    size_t len = mmo_relay_chat_encode(pid, text, buf);
    FUZZ_CHECK(len > 4 && len <= sizeof(buf), "encoded to %zu bytes", len);
    int32_t pid2 = 0;
    char again[MMO_CHAT_MAX + 1];
    FUZZ_CHECK(mmo_relay_chat_check(buf, len, from, &pid2, again) == MMO_OK,
               "a re-encoded chat refused");
    FUZZ_CHECK(pid2 == pid && strcmp(again, text) == 0, "a chat changed");
    return 0;
}
