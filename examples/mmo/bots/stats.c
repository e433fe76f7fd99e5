/* The swarm's statistics: see stats.h. */
#include "stats.h"

#include <stdio.h>
#include <string.h>

static const char *const err_names[BOTS_ERR_COUNT] = {
    [BOTS_ERR_CONNECT] = "connect",
    [BOTS_ERR_DISCONNECTED] = "disconnected",
    [BOTS_ERR_NOT_JOINED] = "not_joined",
    [BOTS_ERR_SEQUENCE] = "sequence",
    [BOTS_ERR_PID] = "pid",
    [BOTS_ERR_MALFORMED] = "malformed",
    [BOTS_ERR_UNKNOWN_ID] = "unknown_id",
    [BOTS_ERR_UNKNOWN_TP] = "unknown_tp",
    [BOTS_ERR_POSITION] = "position",
    [BOTS_ERR_NOT_NEAR] = "not_near",
    [BOTS_ERR_ECHO] = "echo",
    [BOTS_ERR_CHAT] = "chat",
    [BOTS_ERR_CHAT_LOST] = "chat_lost",
    [BOTS_ERR_SEND] = "send",
};

const char *bots_err_name(bots_err_t kind)
{
    return (unsigned)kind < BOTS_ERR_COUNT ? err_names[kind] : "?";
}

void bots_stats_init(bots_stats_t *s)
{
    memset(s, 0, sizeof(*s));
    bench_hist_init(&s->run_latency);
    bench_hist_init(&s->step_latency);
}

void bots_error(bots_stats_t *s, bots_err_t kind, const char *fmt, ...)
{
    s->errors[kind]++;
    s->errors_total++;
    if (s->nshown >= BOTS_ERR_SHOWN)
        return;
    char *out = s->shown[s->nshown++];
    int n = snprintf(out, BOTS_ERR_TEXT, "%s: ", bots_err_name(kind));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, BOTS_ERR_TEXT - (size_t)n, fmt, ap);
    va_end(ap);
}

void bots_latency(bots_stats_t *s, uint64_t ns)
{
    bench_hist_record(&s->run_latency, ns);
    bench_hist_record(&s->step_latency, ns);
    s->c.latency_samples++;
}

void bots_counters_sub(bots_counters_t *out, const bots_counters_t *a,
                       const bots_counters_t *b)
{
    /* Every field is a uint64_t counter. */
    const uint64_t *pa = (const uint64_t *)a, *pb = (const uint64_t *)b;
    uint64_t *po = (uint64_t *)out;
    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
        po[i] = pa[i] - pb[i];
}
