/* World chat across the cluster's nodes: see cluster_chat.h. */
#include "cluster_chat.h"

#include <zinx/cluster.h>

#include "chat_relay.h"
#include "engine.h"
#include "protocol.h"

/* On the cluster's thread: must not block, and does not (the queue's
   lock is held for a push). */
static void on_chat(zinx_server_t *server, uint32_t from_node, const void *data,
                    size_t len, void *udata)
{
    (void)server;
    mmo_engine_t *e = udata;
    int32_t pid = 0;
    char text[MMO_CHAT_MAX + 1];
    if (mmo_relay_chat_check(data, len, from_node, &pid, text) != MMO_OK ||
        !mmo_engine_remote_talk(e, pid, text))
        atomic_fetch_add(&mmo_engine_counters(e)->refused_chats_in, 1);
}

int mmo_cluster_chat_install(zinx_server_t *server, mmo_engine_t *e)
{
    return zinx_cluster_subscribe(server, MMO_CHAT_TOPIC, on_chat, e);
}

int mmo_cluster_chat_publish(zinx_server_t *server, int32_t pid,
                             const char *text)
{
    uint8_t buf[MMO_RELAY_CHAT_MAX];
    size_t len = mmo_relay_chat_encode(pid, text, buf);
    if (len == 0)
        return ZINX_EINVAL;
    return zinx_cluster_publish(server, MMO_CHAT_TOPIC, buf, len);
}
