/*
 * World chat between nodes (chat_relay.h): what one node publishes,
 * another reads back unchanged; what a node may not send (another node's
 * player, a short or broken message, a chat a player could not send) is
 * refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chat_relay.h"
#include "protocol.h"

static void round_trip(void **state)
{
    (void)state;
    uint8_t buf[MMO_RELAY_CHAT_MAX];
    size_t len = mmo_relay_chat_encode(2000007, "hello from node 2", buf);
    assert_true(len > 4);
    int32_t pid = 0;
    char text[MMO_CHAT_MAX + 1];
    assert_int_equal(mmo_relay_chat_check(buf, len, 2, &pid, text), MMO_OK);
    assert_int_equal(pid, 2000007);
    assert_string_equal(text, "hello from node 2");
}

/* The longest chat, 256 bytes of 2-byte UTF-8, fits the message. */
static void longest_chat_fits(void **state)
{
    (void)state;
    char chat[MMO_CHAT_MAX + 1];
    for (int i = 0; i < MMO_CHAT_MAX; i += 2)
        memcpy(chat + i, "\xc3\xa9", 2);
    chat[MMO_CHAT_MAX] = '\0';
    uint8_t buf[MMO_RELAY_CHAT_MAX];
    size_t len = mmo_relay_chat_encode(MMO_NODE_MAX * MMO_PID_NODE_STRIDE +
                                           MMO_PID_NODE_STRIDE - 1,
                                       chat, buf);
    assert_int_equal(len, MMO_RELAY_CHAT_MAX);
    int32_t pid = 0;
    char text[MMO_CHAT_MAX + 1];
    assert_int_equal(mmo_relay_chat_check(buf, len, MMO_NODE_MAX, &pid, text),
                     MMO_OK);
    assert_string_equal(text, chat);
    char longer[MMO_CHAT_MAX + 2];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(mmo_relay_chat_encode(1000001, longer, buf), 0);
}

/* A node speaks for its own players only. */
static void another_nodes_player_is_refused(void **state)
{
    (void)state;
    uint8_t buf[MMO_RELAY_CHAT_MAX];
    int32_t pid = 0;
    char text[MMO_CHAT_MAX + 1];
    size_t len = mmo_relay_chat_encode(1000001, "hi", buf);
    assert_int_equal(mmo_relay_chat_check(buf, len, 2, &pid, text),
                     MMO_MALFORMED);
    /* Node 0 (no cluster) has no range; nor has N * 10^6 itself. */
    len = mmo_relay_chat_encode(5, "hi", buf);
    assert_int_equal(mmo_relay_chat_check(buf, len, 0, &pid, text),
                     MMO_MALFORMED);
    len = mmo_relay_chat_encode(3000000, "hi", buf);
    assert_int_equal(mmo_relay_chat_check(buf, len, 3, &pid, text),
                     MMO_MALFORMED);
    len = mmo_relay_chat_encode(-1000001, "hi", buf);
    assert_int_equal(mmo_relay_chat_check(buf, len, 1, &pid, text),
                     MMO_MALFORMED);
    assert_int_equal(pid, 0);
}

/* What a player could not say, a node cannot relay. */
static void bad_messages_are_refused(void **state)
{
    (void)state;
    int32_t pid = 0;
    char text[MMO_CHAT_MAX + 1];
    const uint8_t shorter[] = {0x41, 0x42, 0x0f};
    assert_int_equal(
        mmo_relay_chat_check(shorter, sizeof(shorter), 1, &pid, text),
        MMO_MALFORMED);
    /* PID 1000001, then a Talk holding 0xff 0xfe: not UTF-8. */
    const uint8_t not_utf8[] = {0x41, 0x42, 0x0f, 0x00, 0x0a, 0x02, 0xff, 0xfe};
    assert_int_equal(
        mmo_relay_chat_check(not_utf8, sizeof(not_utf8), 1, &pid, text),
        MMO_MALFORMED);
    /* An empty chat. */
    const uint8_t empty[] = {0x41, 0x42, 0x0f, 0x00};
    assert_int_equal(mmo_relay_chat_check(empty, sizeof(empty), 1, &pid, text),
                     MMO_BAD_CHAT_SIZE);
    /* Not protobuf. */
    const uint8_t garbage[] = {0x41, 0x42, 0x0f, 0x00, 0x0a, 0x09, 'x'};
    assert_int_equal(
        mmo_relay_chat_check(garbage, sizeof(garbage), 1, &pid, text),
        MMO_MALFORMED);
    assert_int_equal(pid, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(longest_chat_fits),
        cmocka_unit_test(another_nodes_player_is_refused),
        cmocka_unit_test(bad_messages_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
