/*
 * The MMO world: its players, their positions and the AOI grid, and the
 * rules of Zinx's mmo_game — who is told what when a player arrives,
 * moves, talks or leaves.
 *
 * The world is plain data with no lock: one thread owns it (the world
 * thread, see engine.h) and makes every call. It never touches a
 * connection; what it says leaves through a sink, one call per message
 * and list of receivers, so each message is encoded once whatever the
 * number of receivers, and so tests can record it.
 */
#ifndef MMO_WORLD_H
#define MMO_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "aoi.h"

/* Where the world's messages go: msg_id with data[0..len) to every
   connection of ids[0..n). Returns how many received it. */
typedef size_t (*mmo_send_fn)(void *udata, const uint64_t *ids, size_t n,
                              uint32_t msg_id, const void *data, size_t len);

typedef struct mmo_world mmo_world_t;

/* A new empty world on the grid *aoi (copied). Messages longer than
   max_payload are never made: SyncPlayers is split to fit. seed starts
   the spawn positions' generator. NULL when out of memory. */
mmo_world_t *mmo_world_new(const mmo_aoi_t *aoi, size_t max_payload,
                           uint64_t seed, mmo_send_fn send, void *udata);
void mmo_world_free(mmo_world_t *w);

/*
 * A player arrives: placed at X 160 + rand(50), Z 134 + rand(50), Y 0,
 * V 0 (Zinx's spawn area). It gets 1 SyncPID, 200 Tp 2 with its own
 * position, then 202 SyncPlayers (everyone in its nine cells, itself
 * included, as Zinx sends); the others there get 200 Tp 2 with its
 * position. Returns 0, -1 for a PID in use or not positive, or -2 when
 * out of memory.
 */
int mmo_world_join(mmo_world_t *w, int32_t pid, uint64_t conn_id);

/* A player leaves: the others in its nine cells get 201 SyncPID. Returns
   0, or -1 for an unknown PID. */
int mmo_world_leave(mmo_world_t *w, int32_t pid);

/*
 * A player moves to *to (the caller checked it is inside the world).
 * When its cell changes, the players of cells it no longer sees get 201
 * with its PID and it gets 201 for each of them; those of cells it now
 * sees get 200 Tp 2 with its new position and it gets 200 Tp 2 for each
 * of them. Then everyone in its nine cells, itself included, gets 200
 * Tp 4. Returns 0, or -1 for an unknown PID.
 */
int mmo_world_move(mmo_world_t *w, int32_t pid, const mmo_pos_t *to);

/* World chat: 200 Tp 1 with text (NUL-terminated, valid UTF-8) to every
   player. Returns 0, or -1 for an unknown PID. */
int mmo_world_talk(mmo_world_t *w, int32_t pid, const char *text);

/* World chat of another node's player (a cluster: each node runs its
   own world, chat reaches them all): 200 Tp 1 with text to every player
   of this world. Returns 0, or -1 when pid is one of this world's. */
int mmo_world_relay_talk(mmo_world_t *w, int32_t pid, const char *text);

/* Players in the world. */
size_t mmo_world_players(const mmo_world_t *w);

/* A player's position; 0, or -1 for an unknown PID. */
int mmo_world_position(const mmo_world_t *w, int32_t pid, mmo_pos_t *out);

/* Calls fn for every player, in no fixed order; fn must not change the
   world. */
void mmo_world_each(const mmo_world_t *w,
                    void (*fn)(int32_t pid, const mmo_pos_t *pos, void *udata),
                    void *udata);

/* Messages received, summed over receivers, since the world began. */
uint64_t mmo_world_delivered(const mmo_world_t *w);

#endif /* MMO_WORLD_H */
