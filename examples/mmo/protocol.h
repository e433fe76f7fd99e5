/*
 * The MMO demo's wire protocol: Zinx's mmo_game message IDs (payloads in
 * proto/msg.proto, frames ltv_le) and the live map's feed.
 */
#ifndef MMO_PROTOCOL_H
#define MMO_PROTOCOL_H

#include <stdint.h>

/* ---- Zinx's mmo_game: player connections (TCPPort) ------------------- */

#define MMO_MSG_SYNC_PID 1       /* S→C SyncPID: your player ID */
#define MMO_MSG_TALK 2           /* C→S Talk: world chat */
#define MMO_MSG_MOVE 3           /* C→S Position: a move */
#define MMO_MSG_BROADCAST 200    /* S→C BroadCast */
#define MMO_MSG_LEAVE 201        /* S→C SyncPID: gone from your view */
#define MMO_MSG_SYNC_PLAYERS 202 /* S→C SyncPlayers: around you */

/* BroadCast.Tp */
#define MMO_TP_CHAT 1   /* Content: world chat */
#define MMO_TP_APPEAR 2 /* P: a player's position as it comes into view */
#define MMO_TP_ACTION 3 /* ActionData */
#define MMO_TP_MOVED 4  /* P: a player's new position */

/* Chat: longest Content in bytes, and the rate a player may talk at (a
   token bucket: MMO_CHAT_BURST at once, refilled MMO_CHAT_PER_S a
   second). Beyond either a Talk is refused and counted. */
#define MMO_CHAT_MAX 256
#define MMO_CHAT_BURST 5
#define MMO_CHAT_PER_S 2

/* ---- Several nodes: the demo in a cluster (README, "On two nodes") ------
 *
 * Each node runs its own world; world chat reaches every node. A player
 * ID must then name one player in the whole cluster, so a node's IDs are
 * its own decimal range: node N hands out N * MMO_PID_NODE_STRIDE + 1,
 * + 2, ... (node 2's first player is 2000001, readable on the map), up
 * to MMO_PID_NODE_STRIDE - 1 of them before it starts again at + 1. The
 * IDs stay positive int32 values, as Zinx's protocol has them, which
 * bounds the node numbers to MMO_NODE_MAX. Without a cluster IDs are 1,
 * 2, 3, ... as on Zinx's server.
 *
 * A chat goes to the other nodes on the cluster topic MMO_CHAT_TOPIC as
 * the talker's ID (i32 little-endian) followed by the Talk message it
 * sent (protobuf, as on the wire): the receiving node checks it as it
 * checks a player's Talk (mmo_check_relay_chat) before its world thread
 * sends it to its own players.
 */
#define MMO_PID_NODE_STRIDE 1000000
#define MMO_NODE_MAX 2146 /* 2146 * 10^6 + 999999 < 2^31 */
#define MMO_CHAT_TOPIC "mmo-chat"

/* The node whose range holds pid (0: an ID of a server without a
   cluster, or below MMO_PID_NODE_STRIDE). */
#define MMO_PID_NODE(pid) ((uint32_t)((pid) / MMO_PID_NODE_STRIDE))

/* ---- The live map: viewer connections (WebSocket on WsPort) ------------
 *
 * A WebSocket connection (upgraded on WsPath) is a map viewer, not a
 * player: it gets no player ID and is not in the world. The page is
 * served on the same port (GET /). Every MMO_MAP_TICK_MS the server sends
 * each viewer the whole world, in ltv_le frames inside binary WebSocket
 * messages (a message may hold several frames, a frame may span
 * messages), all integers and floats little-endian:
 *
 *   304 MapWorld   on arrival: JSON {"min_x":85,"max_x":410,"cols":10,
 *                  "min_z":75,"max_z":400,"rows":20}
 *   300 MapPlayers u32 tick, then up to MMO_MAP_CHUNK records of
 *                  {i32 pid, f32 x, f32 z} (12 bytes): part of the
 *                  world as it was at that tick
 *   301 MapEnd     u32 tick, u32 players: the tick's snapshot is whole
 *   302 MapStats   JSON {"players":N,"viewers":N,"moves":N,"chats":N,
 *                  "moves_per_s":N,"broadcasts_per_s":N,"refused":N}
 *   303 MapChat    i32 pid, then the chat's UTF-8 text (at most the last
 *                  MMO_MAP_CHATS chats of each tick are sent)
 *
 * A viewer sends nothing; what it sends is ignored.
 */
#define MMO_MAP_PLAYERS 300
#define MMO_MAP_END 301
#define MMO_MAP_STATS 302
#define MMO_MAP_CHAT 303
#define MMO_MAP_WORLD 304
#define MMO_MAP_TICK_MS 100
#define MMO_MAP_CHUNK 300 /* 4 + 300 * 12 = 3604 bytes < MaxPacketSize */
#define MMO_MAP_CHATS 20

#endif /* MMO_PROTOCOL_H */
