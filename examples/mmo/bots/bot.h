/*
 * One bot of the swarm: a player of Zinx's mmo_game as Zinx's robot
 * (client_AI_robot.go) plays it, and a checker of everything the server
 * tells it.
 *
 * It learns its PID from message 1 and its position from its own 200 Tp
 * 2, then moves by random steps and talks, when the swarm asks it to.
 * Every message it receives is checked against the protocol and against
 * what the bot knows of the world (see bot_on_message()); what is wrong
 * is counted as an error in the shared statistics.
 *
 * Nothing here touches the network: messages come in through
 * bot_on_message() and go out through the context's send function, so a
 * test can drive bots with a world of its own.
 *
 * Threads: a bot and its context belong to one thread (the swarm's I/O
 * thread); nothing here locks.
 */
#ifndef MMO_BOTS_BOT_H
#define MMO_BOTS_BOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aoi.h"
#include "pbarena.h"
#include "pidmap.h"
#include "stats.h"

/* Moves a bot remembers (a power of two): those not yet confirmed by the
   server, and recent ones for the neighbours' latency. */
#define BOT_RING 32u
/* A bot sends no new move while this many are unconfirmed, or while its
   oldest unconfirmed move is older than BOT_HOLD_MS: its own output and
   what it costs the server stay bounded when the server falls behind. */
#define BOT_WINDOW 16u
#define BOT_HOLD_MS 500u
/* A random step is at most this far along X and along Z (Zinx's robot
   steps up to 10). */
#define BOT_STEP 10.0f
/* Zinx's spawn area: X 160 + rand(50), Z 134 + rand(50). */
#define BOT_SPAWN_X 160.0f
#define BOT_SPAWN_Z 134.0f
#define BOT_SPAWN_SIZE 49.0f
/* A chat of ours not back within this long counts as lost. */
#define BOT_CHAT_LOST_MS 30000u

typedef enum bot_state {
    BOT_IDLE,      /* not connected yet */
    BOT_WAIT_PID,  /* connected: message 1 comes first */
    BOT_WAIT_SELF, /* then its own 200 Tp 2 */
    BOT_IN,        /* in the world */
    BOT_GONE       /* its connection ended (or never came) */
} bot_state_t;

/* A move the bot sent: where to, the cell there, and when. */
typedef struct bot_move {
    float x, z;
    int cell;
    uint64_t sent_ns;
} bot_move_t;

typedef struct bot {
    uint32_t index; /* 0..players-1 in the swarm */
    bot_state_t state;
    int32_t pid;
    float x, y, z, v; /* its latest position: sent, or given */
    /* The server's view of the bot: the position it last confirmed (its
       own Tp 2 on arrival, then the echo of a move, 200 Tp 4) and its
       cell. */
    float seen_x, seen_z;
    int seen_cell;
    /* Moves sent: sequence numbers [0, sent); those from `confirmed` on
       are not yet confirmed, the last BOT_RING are in ring[seq %
       BOT_RING]. */
    uint64_t sent, confirmed;
    bot_move_t ring[BOT_RING];
    bool chat_pending; /* a chat of ours not back yet */
    uint64_t chat_sent_ns;
    char chat[48];                       /* what we said */
    uint64_t next_move_ns, next_chat_ns; /* the swarm's schedule */
    void *link;                          /* the swarm's: its connection */
    void *owner;                         /* the swarm's: the swarm */
} bot_t;

/* Sends msg_id with data[0..len) for bot b; 0 or a negative ZINX_E*. */
typedef int (*bot_send_fn)(void *udata, bot_t *b, uint32_t msg_id,
                           const void *data, size_t len);
/* Bot b is in the world now (its own 200 Tp 2 came). */
typedef void (*bot_join_fn)(void *udata, bot_t *b, uint64_t now_ns);

/* What the bots of one swarm share: the world's grid, PID → bot, the
   statistics, the decoder's arena, and the limits of chats in flight. */
typedef struct bot_ctx {
    mmo_aoi_t aoi;
    bot_pidmap_t pids;
    bots_stats_t *stats;
    pb_arena_t arena;
    bot_send_fn send;
    bot_join_fn on_join; /* may be NULL */
    void *udata;         /* passed to send and on_join */
    /* Latencies are recorded for moves sent from this time on
       (UINT64_MAX: not yet). */
    uint64_t measure_from_ns;
    /* World chats of ours on their way, and the most there may be: a
       chat goes to every player, so the swarm bounds the deliveries it
       has in flight rather than each bot's rate. */
    uint32_t chats_in_flight, chat_cap;
    /* The server refuses chats beyond its rate; above it a chat that does
       not come back is counted, not an error. */
    bool chat_over_rate;
    /* Where random steps stay, bouncing off its edges: min X, max X,
       min Z, max Z. The world, or Zinx's spawn area (bot_ctx_crowd). */
    float box[4];
    uint64_t rng; /* xorshift64* state */
} bot_ctx_t;

/* Sets up ctx for `players` bots; false when out of memory. stats is the
   caller's and outlives ctx. */
bool bot_ctx_init(bot_ctx_t *ctx, uint32_t players, bots_stats_t *stats,
                  bot_send_fn send, void *udata, uint64_t seed);
void bot_ctx_free(bot_ctx_t *ctx);

/* From now on random steps stay in Zinx's spawn area, so a crowd there
   stays one. */
void bot_ctx_crowd(bot_ctx_t *ctx);

/* A fresh bot, number index. */
void bot_init(bot_t *b, uint32_t index);

/* The bot's connection is up: it waits for message 1. */
void bot_connected(bot_t *b);

/* The bot's connection ended (or will not come): it plays no more. */
void bot_gone(bot_ctx_t *ctx, bot_t *b);

/*
 * Handles one message the server sent the bot, at now_ns
 * (CLOCK_MONOTONIC), and checks it:
 *   - the first is 1 with a PID > 0, unique in the swarm; then its own
 *     200 Tp 2 with a position inside the world; 1 again is an error;
 *   - every position (200 Tp 2 and Tp 4, 202) is finite and inside the
 *     world;
 *   - another player that appears (Tp 2), moves (Tp 4) or is listed
 *     (202) is within the nine cells around one of the bot's positions
 *     the server may be using: the last it confirmed, or any sent since;
 *   - its own Tp 4 is the echo of a move it sent and not yet confirmed
 *     (the server may skip moves replaced before it applied them);
 *   - its own chat comes back with the words it said; any chat is
 *     1..MMO_CHAT_MAX bytes of UTF-8;
 *   - malformed protobuf, an unknown message ID or Tp is an error.
 * A Tp 4 from another bot of the swarm is matched to that bot's move by
 * the exact position: the time since it was sent is the latency.
 */
void bot_on_message(bot_ctx_t *ctx, bot_t *b, uint32_t msg_id,
                    const uint8_t *data, size_t len, uint64_t now_ns);

/* Whether the bot may send a move now (in the world, its window open). */
bool bot_may_move(const bot_t *b, uint64_t now_ns);

/* Sends a random step from its latest position, kept inside the world
   (or the spawn area, bot_ctx_crowd) by bouncing off its edges. Returns
   0 or the send's error. */
int bot_move(bot_ctx_t *ctx, bot_t *b, uint64_t now_ns);

/* Sends one move to a random place in the world (--spawn spread). */
int bot_jump(bot_ctx_t *ctx, bot_t *b, uint64_t now_ns);

/* Whether the bot may talk now: in the world, its last chat back, and
   the swarm's chats in flight below the cap. */
bool bot_may_chat(const bot_ctx_t *ctx, const bot_t *b);

/* Says "hello, I am player PID" (2 Talk). Returns 0 or the send's
   error. */
int bot_chat(bot_ctx_t *ctx, bot_t *b, uint64_t now_ns);

/* Gives up on a chat of ours out for longer than BOT_CHAT_LOST_MS. */
void bot_check_chat(bot_ctx_t *ctx, bot_t *b, uint64_t now_ns);

#endif /* MMO_BOTS_BOT_H */
