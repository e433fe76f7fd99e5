/*
 * PID → bot: which bot of the swarm a player ID belongs to, so a bot
 * that hears of a move can find the mover's record of when it was sent.
 *
 * Open addressing with linear probing over a table sized once for the
 * swarm (twice its players, a power of two): PIDs are only ever added.
 *
 * Threads: one (the swarm's I/O thread).
 */
#ifndef MMO_BOTS_PIDMAP_H
#define MMO_BOTS_PIDMAP_H

#include <stdbool.h>
#include <stdint.h>

struct bot;

typedef struct bot_pidmap {
    int32_t *pids; /* 0: free */
    struct bot **bots;
    uint32_t mask, n, max;
} bot_pidmap_t;

/* Room for max PIDs; false when out of memory. */
bool bot_pidmap_init(bot_pidmap_t *m, uint32_t max);
void bot_pidmap_free(bot_pidmap_t *m);

/* Adds pid (> 0) for b. Returns 0, -1 when pid is there already (*owner
   then says whose), or -2 when the map is full. */
int bot_pidmap_put(bot_pidmap_t *m, int32_t pid, struct bot *b,
                   struct bot **owner);

/* The bot of pid, or NULL. */
struct bot *bot_pidmap_get(const bot_pidmap_t *m, int32_t pid);

#endif /* MMO_BOTS_PIDMAP_H */
