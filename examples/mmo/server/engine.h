/*
 * The world thread: the one thread that owns the world (world.h), and the
 * queue through which handlers and hooks on the library's workers hand it
 * their players' arrivals, moves, chats and departures.
 *
 * Why one owner thread: every rule of the game reads several cells at
 * once (a move across cells reads eighteen), so per-cell locks would be
 * taken many at a time, in an order to get right, by ten workers; one
 * thread that owns everything needs no lock on the world at all, and the
 * workers only decode and check what players send, which is most of the
 * per-message work. Zinx's demo instead locks one global world mutex from
 * every handler and sleeps in a handler when a player changes cells.
 *
 * The queue stays bounded by construction, whatever players send: a move
 * waiting in it is replaced by the player's next one (only the latest
 * position matters), a player's chats are rate limited before they are
 * queued and the chats waiting in all are capped (MMO_QUEUED_CHATS), and
 * a player arrives and leaves once.
 *
 * The same thread feeds the live map's viewers every MMO_MAP_TICK_MS
 * (protocol.h).
 */
#ifndef MMO_ENGINE_H
#define MMO_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <zinx.h>

#include "world.h"

/* Chats waiting for the world thread, over all players; more are refused
   (counted with the rate-limited ones). */
#define MMO_QUEUED_CHATS 4096

/* Counters, written by any thread; read them with atomic loads. */
typedef struct mmo_counters {
    atomic_uint_fast64_t joined, left, moves, chats, broadcasts;
    atomic_uint_fast64_t refused_malformed, refused_position;
    atomic_uint_fast64_t refused_chat_size, refused_chat_rate;
    /* In a cluster (mmo_engine_set_node): this node's chats handed to the
       cluster and those it refused (NATS unreachable), chats of other
       nodes sent to this world's players, and those refused (a bad
       message, or the chat backlog full). */
    atomic_uint_fast64_t chats_out, chats_out_failed;
    atomic_uint_fast64_t chats_in, refused_chats_in;
} mmo_counters_t;

/*
 * One player connection's state. Created by the connection's OnConnStart
 * and handed to the world with mmo_engine_join(); after
 * mmo_engine_leave() the world thread frees it, so its connection must
 * not use it again (OnConnStop, which calls leave, is its last hook).
 */
typedef struct mmo_session {
    int32_t pid;
    uint64_t conn_id;
    /* The chat token bucket: the connection's handler thread only. */
    double chat_tokens;
    uint64_t chat_ms;
    /* Under the engine's queue lock: the latest move not yet applied. */
    bool move_queued;
    mmo_pos_t pending;
} mmo_session_t;

typedef struct mmo_engine mmo_engine_t;

/* An engine sending through server, with messages up to max_payload
   bytes. NULL when out of memory. */
mmo_engine_t *mmo_engine_new(zinx_server_t *server, size_t max_payload);
/* Starts the world thread. 0 or a negative errno value. */
int mmo_engine_start(mmo_engine_t *e);
/* Applies what is queued, then ends the world thread. Call after the
   server stopped (every OnConnStop ran). */
void mmo_engine_stop(mmo_engine_t *e);
/* Frees the engine and the world, after mmo_engine_stop(). */
void mmo_engine_free(mmo_engine_t *e);

mmo_counters_t *mmo_engine_counters(mmo_engine_t *e);

/* The world's grid (read-only). Any thread. */
const mmo_aoi_t *mmo_engine_aoi(const mmo_engine_t *e);

/*
 * Makes this engine node `node` (1..MMO_NODE_MAX) of a cluster: player
 * IDs come from the node's range (protocol.h) and every chat of its
 * players is also published to the other nodes (cluster_chat.h). Before
 * mmo_engine_start(); without it the engine is a single server's.
 */
void mmo_engine_set_node(mmo_engine_t *e, uint32_t node);

/* A new player ID: 1, 2, 3, ..., or in a cluster node * 10^6 + 1, + 2,
   ... (protocol.h). Any thread. */
int32_t mmo_engine_next_pid(mmo_engine_t *e);

/* The queue's entrances, for handlers and hooks on any thread. They
   never block on the world; each returns false only when the request
   was refused (out of memory, or the chat backlog is full). */
bool mmo_engine_join(mmo_engine_t *e, mmo_session_t *s);
bool mmo_engine_leave(mmo_engine_t *e, mmo_session_t *s);
bool mmo_engine_move(mmo_engine_t *e, mmo_session_t *s, const mmo_pos_t *to);
/* text: NUL-terminated, valid UTF-8, at most MMO_CHAT_MAX bytes; copied. */
bool mmo_engine_talk(mmo_engine_t *e, mmo_session_t *s, const char *text);
/* A chat of another node's player pid, checked (chat_relay.h), for this
   world's players. Shares the chat backlog's cap with local chats. */
bool mmo_engine_remote_talk(mmo_engine_t *e, int32_t pid, const char *text);
bool mmo_engine_viewer_join(mmo_engine_t *e, uint64_t conn_id);
bool mmo_engine_viewer_leave(mmo_engine_t *e, uint64_t conn_id);

#endif /* MMO_ENGINE_H */
