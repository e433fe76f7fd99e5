/*
 * zinx-mmo-bots' command line.
 */
#ifndef MMO_BOTS_OPTIONS_H
#define MMO_BOTS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Where bots play: where the server puts them (Zinx's spawn area), or
   each first moves to a random place in the world. */
typedef enum bots_spawn { BOTS_SPAWN_ZINX, BOTS_SPAWN_SPREAD } bots_spawn_t;

#define BOTS_MAX_STEPS 32
/* The process may open at most this many files: one socket a bot. */
#define BOTS_MAX_PLAYERS 19000u

typedef struct bots_options {
    const char *host;
    int port;
    uint32_t players;
    double duration_s; /* of play, once every bot is in; 0: until a signal */
    double move_hz;    /* moves a second, per bot */
    double chat_hz;    /* chats a second, per bot */
    bots_spawn_t spawn;
    bool crowd;              /* random steps stay in Zinx's spawn area */
    uint32_t connect_rate;   /* new connections a second */
    const char *report_json; /* NULL: none */
    /* Steps of a rising move rate (per bot): each lasts step_s; with
       stop_p99_ms > 0 the run ends after the first step whose p99 move →
       neighbour latency is above it. nsteps 0: one step at move_hz for
       duration_s. */
    double steps[BOTS_MAX_STEPS];
    uint32_t nsteps;
    double step_s;
    double stop_p99_ms;
    int server_pid;              /* > 0: sample its CPU time and RSS per step */
    double progress_s;           /* > 0: a status line on stderr this often */
    uint64_t seed;               /* 0: from the clock */
    const char *selftest_server; /* --selftest: the zinx-mmo to run */
} bots_options_t;

/* Fills *o from argv. Returns 0, 1 when --help was asked (usage printed
   to out), or -1 with a message in err. */
int bots_options_parse(bots_options_t *o, int argc, char **argv, FILE *out,
                       char *err, size_t errlen);

#endif /* MMO_BOTS_OPTIONS_H */
