/*
 * zinx-mmo-bots: a swarm of players for the MMO demo's server, as Zinx's
 * robot plays (client_AI_robot.go), that checks everything the server
 * says and measures how fast moves reach neighbours. See swarm.h for how
 * it runs, bot.h for what a bot checks, options.c for the command line.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <zinx.h>

#include "options.h"
#include "report.h"
#include "selftest.h"
#include "swarm.h"

/* Descriptors beyond one a bot: the endpoint's own, stdio, a report. */
#define SPARE_FILES 64u

/* One socket a bot: raise the soft limit on open files as far as the
   hard one allows. */
static int enough_files(uint32_t players)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rlim_t need = (rlim_t)players + SPARE_FILES;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr,
                "zinx-mmo-bots: %u players need %llu open files; the "
                "limit is %llu (ulimit -Hn)\n",
                players, (unsigned long long)need,
                (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
    bots_options_t o;
    char err[2048];
    int rc = bots_options_parse(&o, argc, argv, stdout, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "zinx-mmo-bots: %s\n", err);
        return rc < 0 ? 2 : 0;
    }
    /* Signals are taken by the main thread with sigtimedwait: blocked
       here, before any thread starts, so every thread inherits it. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (o.selftest_server != NULL)
        return enough_files(200) == 0 ? bots_selftest(o.selftest_server, &sigs)
                                      : 1;
    if (enough_files(o.players) != 0)
        return 1;
    bots_swarm_t *s = bots_swarm_new(&o);
    if (s == NULL) {
        fprintf(stderr, "zinx-mmo-bots: out of memory\n");
        return 1;
    }
    rc = bots_swarm_run(s, &sigs);
    if (rc != 0)
        fprintf(stderr, "zinx-mmo-bots: cannot start: %s\n", zinx_strerror(rc));
    const bots_result_t *r = bots_swarm_result(s);
    const bots_stats_t *st = bots_swarm_stats(s);
    bots_report_print(stdout, &o, r, st);
    if (o.report_json != NULL &&
        bots_report_json(o.report_json, &o, r, st) != 0) {
        fprintf(stderr, "zinx-mmo-bots: %s: %s\n", o.report_json,
                strerror(errno));
        rc = -1;
    }
    bool ok = rc == 0 && bots_report_ok(r, st);
    bots_swarm_free(s);
    return ok ? 0 : 1;
}
