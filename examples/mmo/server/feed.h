/*
 * The live map's feed: the viewers (WebSocket connections) and what the
 * world thread sends them every tick, in the format of protocol.h. Owned
 * by the world thread, like the world.
 */
#ifndef MMO_FEED_H
#define MMO_FEED_H

#include <stdint.h>

#include <zinx.h>

#include "aoi.h"
#include "world.h"

struct mmo_counters;
typedef struct mmo_feed mmo_feed_t;

/* NULL when out of memory. */
mmo_feed_t *mmo_feed_new(zinx_server_t *server, const mmo_aoi_t *aoi);
void mmo_feed_free(mmo_feed_t *f);

/* A viewer arrives (it gets 304 MapWorld at once) or leaves. */
void mmo_feed_viewer_join(mmo_feed_t *f, uint64_t conn_id);
void mmo_feed_viewer_leave(mmo_feed_t *f, uint64_t conn_id);

/* A chat the world accepted, shown at the next tick (the last
   MMO_MAP_CHATS of a tick are kept). */
void mmo_feed_chat(mmo_feed_t *f, int32_t pid, const char *text);

/* Sends the viewers the world as it is, the chats since the last tick
   and the counts. now_ms: a monotonic clock, for the rates. */
void mmo_feed_tick(mmo_feed_t *f, const mmo_world_t *w,
                   const struct mmo_counters *c, uint64_t now_ms);

#endif /* MMO_FEED_H */
