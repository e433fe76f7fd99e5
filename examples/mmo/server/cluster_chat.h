/*
 * World chat across a cluster's nodes (README, "On two nodes"): each
 * node runs its own world, and a chat of any node's player reaches the
 * players of every node. Carried by the library's cluster messages
 * (zinx/cluster.h) on the topic MMO_CHAT_TOPIC, in chat_relay.h's
 * layout.
 */
#ifndef MMO_CLUSTER_CHAT_H
#define MMO_CLUSTER_CHAT_H

#include <stdint.h>

#include <zinx.h>

struct mmo_engine;

/*
 * Subscribes e to the other nodes' chats: each one is checked
 * (mmo_relay_chat_check) and handed to e's world thread through its
 * queue, whose chat cap holds for them too; a refused one is counted in
 * refused_chats_in. Returns 0 or a negative ZINX_E* code. Before
 * zinx_server_start(); e must outlive the server's cluster.
 */
int mmo_cluster_chat_install(zinx_server_t *server, struct mmo_engine *e);

/* Publishes pid's chat (checked text) to the other nodes. Returns 0 or
   zinx_cluster_publish()'s error. Any thread (the world thread's). */
int mmo_cluster_chat_publish(zinx_server_t *server, int32_t pid,
                             const char *text);

#endif /* MMO_CLUSTER_CHAT_H */
