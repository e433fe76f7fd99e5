/*
 * The swarm: N bots on one client endpoint of this library (one I/O
 * thread, handlers on it), each a dialer and a connection, driven by one
 * periodic timer on the same thread.
 *
 * A run goes through three phases, all on the I/O thread:
 *   connect  dial at --connect-rate until every bot is in the world and,
 *            with --spawn spread, has gone to a random place (its first
 *            move, sent as soon as it is in, confirmed by the server); a
 *            bot that does not get there while the others still make
 *            progress is an error;
 *   settle   wait (up to two minutes) until the bots hear almost
 *            nothing: the messages the arrivals caused have drained;
 *   run      moves and chats at their rates, in one step (--duration) or
 *            a rising series (--steps), measured per step.
 * Because one thread owns every bot, the table of recent moves the bots
 * share (who sent what, when) needs no lock, and the measurement is that
 * of one core of load.
 *
 * Threads: bots_swarm_run() on the caller's thread, which only waits for
 * the end or a signal; everything else on the endpoint's I/O thread.
 */
#ifndef MMO_BOTS_SWARM_H
#define MMO_BOTS_SWARM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "options.h"
#include "procstat.h"
#include "stats.h"

/* One step of a run. */
typedef struct bots_step {
    double move_hz;                  /* per bot, as asked */
    double seconds;                  /* as long as it lasted */
    bots_counters_t c;               /* what happened in it */
    uint64_t p50_ns, p99_ns, max_ns; /* move → neighbour latency */
    bool server_sampled;             /* --server-pid was readable */
    double server_cpu_pct;           /* of one core, over the step */
    uint64_t server_rss;             /* at its end, bytes */
} bots_step_t;

typedef struct bots_result {
    uint32_t players;      /* asked for */
    uint32_t connected;    /* connections made */
    uint32_t joined;       /* bots that got into the world */
    double connect_s;      /* from the first dial until all were in place */
    double settle_s;       /* then until the arrivals' messages drained */
    bool settled;          /* they did (else the wait was cut short) */
    double run_s;          /* length of the run phase */
    bool run_started;      /* every bot in (or given up), the run began */
    bool interrupted;      /* a signal ended it */
    bots_counters_t total; /* the whole program */
    bots_counters_t run;   /* the run phase */
    bots_step_t steps[BOTS_MAX_STEPS];
    uint32_t nsteps;
} bots_result_t;

typedef struct bots_swarm bots_swarm_t;

/* A swarm as o says (copied; its strings must outlive the swarm). NULL
   when out of memory. */
bots_swarm_t *bots_swarm_new(const bots_options_t *o);
void bots_swarm_free(bots_swarm_t *s);

/*
 * Runs the whole swarm and returns when it is over: the run's time is up,
 * or a signal of *sigs (which the caller blocked in every thread before)
 * came. Returns 0, or a ZINX_E* code when the endpoint could not start.
 * The result and statistics are then read with the functions below.
 */
int bots_swarm_run(bots_swarm_t *s, const sigset_t *sigs);

const bots_result_t *bots_swarm_result(const bots_swarm_t *s);
const bots_stats_t *bots_swarm_stats(const bots_swarm_t *s);

#endif /* MMO_BOTS_SWARM_H */
