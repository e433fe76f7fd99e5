/*
 * zinx-mmo-bots --selftest SERVER: the swarm against a real zinx-mmo.
 *
 * Starts SERVER on free loopback ports with a zinx.json of its own, runs
 * 200 bots against it for a few seconds (spread over the world, moving
 * and chatting), and passes only when the bots report no error, every
 * bot got in, and every kind of message came (200 Tp 1, 2 and 4, 201,
 * 202, matched latencies); then stops the server with SIGTERM and checks
 * it exits 0 with counts that agree (every bot joined and left, nothing
 * refused, since the bots send nothing wrong).
 */
#ifndef MMO_BOTS_SELFTEST_H
#define MMO_BOTS_SELFTEST_H

#include <signal.h>

/* Returns the process's exit status: 0 when all passed. sigs are the
   signals the caller blocked (the server gets them unblocked). */
int bots_selftest(const char *server, const sigset_t *sigs);

#endif /* MMO_BOTS_SELFTEST_H */
