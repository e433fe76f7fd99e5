/* zinx-mmo-bots' command line: see options.h. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: zinx-mmo-bots [options]\n"
    "  --host H            server address (127.0.0.1)\n"
    "  --port P            its TCP port (8999)\n"
    "  --players N         bots (100; at most 19000)\n"
    "  --duration S        seconds of play once all are in (10; 0: until\n"
    "                      SIGINT or SIGTERM)\n"
    "  --move-hz R         moves a second per bot (1.0)\n"
    "  --chat-hz R         chats a second per bot (0.1)\n"
    "  --spawn zinx|spread zinx: play where the server puts them; spread:\n"
    "                      each first goes to a random place (zinx)\n"
    "  --crowd             random steps stay in Zinx's spawn area (X "
    "160..209,\n"
    "                      Z 134..183), so a crowd there stays one\n"
    "  --connect-rate N    connections a second (2000)\n"
    "  --report-json FILE  also write the report as JSON\n"
    "  --steps R1,R2,...   move rates per bot, one step each (instead of\n"
    "                      --move-hz and --duration)\n"
    "  --step-seconds S    length of a step (10)\n"
    "  --stop-p99-ms MS    end after the first step whose p99 move ->\n"
    "                      neighbour latency is above MS\n"
    "  --server-pid PID    sample the server's CPU time and RSS per step\n"
    "  --progress S        a status line on stderr every S seconds\n"
    "  --seed N            random seed (from the clock)\n"
    "  --selftest SERVER   start SERVER (zinx-mmo) on free ports, run 200\n"
    "                      bots against it and check both\n"
    "Exits 0 only when every bot got in and nothing was wrong.\n";

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_PLAYERS,
    OPT_DURATION,
    OPT_MOVE_HZ,
    OPT_CHAT_HZ,
    OPT_SPAWN,
    OPT_CONNECT_RATE,
    OPT_REPORT_JSON,
    OPT_STEPS,
    OPT_STEP_SECONDS,
    OPT_STOP_P99,
    OPT_SERVER_PID,
    OPT_PROGRESS,
    OPT_SEED,
    OPT_SELFTEST,
    OPT_CROWD,
    OPT_HELP
};

static const struct option longopts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"players", required_argument, NULL, OPT_PLAYERS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"move-hz", required_argument, NULL, OPT_MOVE_HZ},
    {"chat-hz", required_argument, NULL, OPT_CHAT_HZ},
    {"spawn", required_argument, NULL, OPT_SPAWN},
    {"connect-rate", required_argument, NULL, OPT_CONNECT_RATE},
    {"report-json", required_argument, NULL, OPT_REPORT_JSON},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"step-seconds", required_argument, NULL, OPT_STEP_SECONDS},
    {"stop-p99-ms", required_argument, NULL, OPT_STOP_P99},
    {"server-pid", required_argument, NULL, OPT_SERVER_PID},
    {"progress", required_argument, NULL, OPT_PROGRESS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"selftest", required_argument, NULL, OPT_SELFTEST},
    {"crowd", no_argument, NULL, OPT_CROWD},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* A number in [lo, hi]; false when s is not one. */
static bool number(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo ||
        v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_steps(bots_options_t *o, const char *s)
{
    char copy[512];
    if (strlen(s) >= sizeof(copy))
        return false;
    strcpy(copy, s);
    o->nsteps = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (o->nsteps == BOTS_MAX_STEPS ||
            !number(t, 0.001, 1000, &o->steps[o->nsteps]))
            return false;
        o->nsteps++;
    }
    return o->nsteps > 0;
}

static void defaults(bots_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 8999;
    o->players = 100;
    o->duration_s = 10;
    o->move_hz = 1.0;
    o->chat_hz = 0.1;
    o->spawn = BOTS_SPAWN_ZINX;
    o->connect_rate = 2000;
    o->step_s = 10;
}

/* One option's value; false when it is not valid. */
static bool apply(bots_options_t *o, int opt, const char *arg)
{
    double v;
    switch (opt) {
    case OPT_HOST:
        o->host = arg;
        return *arg != '\0';
    case OPT_PORT:
        return number(arg, 1, 65535, &v) && (o->port = (int)v) == v;
    case OPT_PLAYERS:
        return number(arg, 1, BOTS_MAX_PLAYERS, &v) &&
               (o->players = (uint32_t)v) == v;
    case OPT_DURATION:
        return number(arg, 0, 1e6, &o->duration_s);
    case OPT_MOVE_HZ:
        return number(arg, 0, 1000, &o->move_hz);
    case OPT_CHAT_HZ:
        return number(arg, 0, 1000, &o->chat_hz);
    case OPT_SPAWN:
        o->spawn =
            strcmp(arg, "spread") == 0 ? BOTS_SPAWN_SPREAD : BOTS_SPAWN_ZINX;
        return strcmp(arg, "spread") == 0 || strcmp(arg, "zinx") == 0;
    case OPT_CONNECT_RATE:
        return number(arg, 1, 1e6, &v) && (o->connect_rate = (uint32_t)v) == v;
    case OPT_REPORT_JSON:
        o->report_json = arg;
        return *arg != '\0';
    case OPT_STEPS:
        return parse_steps(o, arg);
    case OPT_STEP_SECONDS:
        return number(arg, 0.1, 1e6, &o->step_s);
    case OPT_STOP_P99:
        return number(arg, 0, 1e9, &o->stop_p99_ms);
    case OPT_SERVER_PID:
        return number(arg, 1, 1e9, &v) && (o->server_pid = (int)v) == v;
    case OPT_PROGRESS:
        return number(arg, 0, 1e6, &o->progress_s);
    case OPT_SEED:
        return number(arg, 0, 1e18, &v) && (o->seed = (uint64_t)v, true);
    case OPT_SELFTEST:
        o->selftest_server = arg;
        return *arg != '\0';
    }
    return false;
}

int bots_options_parse(bots_options_t *o, int argc, char **argv, FILE *out,
                       char *err, size_t errlen)
{
    defaults(o);
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            fputs(usage, out);
            return 1;
        }
        if (opt == OPT_CROWD) {
            o->crowd = true;
            continue;
        }
        if (opt == '?' || opt == ':') {
            snprintf(err, errlen, "unknown option or missing value: %s\n%s",
                     argv[optind - 1], usage);
            return -1;
        }
        if (!apply(o, opt, optarg)) {
            snprintf(err, errlen, "bad value for --%s: %s",
                     longopts[opt - OPT_HOST].name, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument: %s", argv[optind]);
        return -1;
    }
    return 0;
}
