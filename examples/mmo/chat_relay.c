/* World chat between nodes: see chat_relay.h. */
#include "chat_relay.h"

#include <string.h>

#include "msg.pb-c.h"
#include "protocol.h"

size_t mmo_relay_chat_encode(int32_t pid, const char *text,
                             uint8_t buf[MMO_RELAY_CHAT_MAX])
{
    Pb__Talk talk = PB__TALK__INIT;
    talk.content = (char *)text;
    if (strlen(text) > MMO_CHAT_MAX ||
        pb__talk__get_packed_size(&talk) > MMO_RELAY_CHAT_MAX - 4)
        return 0;
    uint32_t id = (uint32_t)pid;
    for (int i = 0; i < 4; i++)
        buf[i] = (uint8_t)(id >> (8 * i));
    return 4 + pb__talk__pack(&talk, buf + 4);
}

mmo_verdict_t mmo_relay_chat_check(const void *data, size_t len,
                                   uint32_t from_node, int32_t *pid,
                                   char out[MMO_CHAT_MAX + 1])
{
    const uint8_t *b = data;
    if (len < 4)
        return MMO_MALFORMED;
    uint32_t id = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                  (uint32_t)b[3] << 24;
    /* Positive, and of the sender's own range (which excludes node 0's,
       a server without a cluster). */
    if (id > INT32_MAX || id % MMO_PID_NODE_STRIDE == 0 || from_node == 0 ||
        MMO_PID_NODE((int32_t)id) != from_node)
        return MMO_MALFORMED;
    mmo_verdict_t v = mmo_check_talk(b + 4, len - 4, out);
    if (v == MMO_OK)
        *pid = (int32_t)id;
    return v;
}
