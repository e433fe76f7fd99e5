/*
 * What the swarm counts: messages sent and received, the latency of
 * moves as neighbours see them, and errors by kind with the first few
 * described.
 *
 * Counters only grow; a phase or a step of a run is the difference of two
 * snapshots (bots_counters_sub). Threads: one (the swarm's I/O thread),
 * read by others only once it has stopped.
 */
#ifndef MMO_BOTS_STATS_H
#define MMO_BOTS_STATS_H

#include <stdarg.h>
#include <stdint.h>

#include "bench_hist.h"

typedef enum bots_err {
    BOTS_ERR_CONNECT,      /* a connection could not be made */
    BOTS_ERR_DISCONNECTED, /* a connection ended before the run did */
    BOTS_ERR_NOT_JOINED,   /* a bot was not in the world in time */
    BOTS_ERR_SEQUENCE,     /* arrival not 1 then its own 200 Tp 2 */
    BOTS_ERR_PID,          /* a PID not positive, or two bots' alike */
    BOTS_ERR_MALFORMED,    /* a payload that is not its protobuf */
    BOTS_ERR_UNKNOWN_ID,   /* a message ID the protocol does not have */
    BOTS_ERR_UNKNOWN_TP,   /* a BroadCast Tp, or Data, that is not known */
    BOTS_ERR_POSITION,     /* a position not finite or outside the world */
    BOTS_ERR_NOT_NEAR,     /* a player outside the bot's nine cells */
    BOTS_ERR_ECHO,         /* its own Tp 4 at a place it did not go */
    BOTS_ERR_CHAT,         /* a chat that is empty, too long, not UTF-8,
                              or ours with other words */
    BOTS_ERR_CHAT_LOST,    /* a chat of ours that never came back */
    BOTS_ERR_SEND,         /* the library refused a send */
    BOTS_ERR_COUNT
} bots_err_t;

/* The kind's name as the report prints it ("not_near"). */
const char *bots_err_name(bots_err_t kind);

/* How many errors are described in words (the first ones). */
#define BOTS_ERR_SHOWN 8
#define BOTS_ERR_TEXT 200

typedef struct bots_counters {
    uint64_t joined;          /* bots that got their own position */
    uint64_t moves_sent;      /* 3 Move, jumps included */
    uint64_t moves_confirmed; /* echoed back as the mover's own Tp 4 */
    uint64_t moves_skipped;   /* sent, then replaced by a later one before
                                 the server applied it */
    uint64_t moves_held;      /* due but not sent: the bot's window was full */
    uint64_t chats_sent;      /* 2 Talk */
    uint64_t chats_back;      /* our own chats heard back */
    uint64_t chats_held;      /* due but not sent: one of ours in flight */
    uint64_t chats_refused;   /* over the server's rate: never came back */
    uint64_t chats_other_nodes; /* chats heard from another node's players
                                   (a cluster: protocol.h's ID ranges) */
    uint64_t frames;            /* messages received, of any ID */
    uint64_t bytes;             /* their payload bytes */
    uint64_t broadcast[5];      /* 200 by Tp (1..4; [0] all of them) */
    uint64_t leaves;            /* 201 */
    uint64_t sync_players;      /* 202 */
    uint64_t sync_entries;      /* players listed in them */
    uint64_t latency_samples;   /* Tp 4 of another bot matched to its move */
    uint64_t latency_unmatched; /* Tp 4 of another bot, move not found */
} bots_counters_t;

typedef struct bots_stats {
    bots_counters_t c;
    uint64_t errors[BOTS_ERR_COUNT];
    uint64_t errors_total;
    char shown[BOTS_ERR_SHOWN][BOTS_ERR_TEXT];
    uint32_t nshown;
    /* Move → neighbour latency in nanoseconds: over the run, and over the
       current step. */
    bench_hist_t run_latency;
    bench_hist_t step_latency;
} bots_stats_t;

/* Zeroes *s. */
void bots_stats_init(bots_stats_t *s);

/* Counts an error of kind, and describes it if it is among the first
   BOTS_ERR_SHOWN. */
void bots_error(bots_stats_t *s, bots_err_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a move → neighbour latency. */
void bots_latency(bots_stats_t *s, uint64_t ns);

/* *out = a - b, field by field. */
void bots_counters_sub(bots_counters_t *out, const bots_counters_t *a,
                       const bots_counters_t *b);

#endif /* MMO_BOTS_STATS_H */
