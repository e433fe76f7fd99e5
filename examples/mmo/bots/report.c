/* The swarm's report: see report.h. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* n per second of s seconds; 0 when there was no time. */
static double per_s(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0;
}

bool bots_report_ok(const bots_result_t *r, const bots_stats_t *s)
{
    return s->errors_total == 0 && r->run_started && r->joined == r->players;
}

static void print_steps(FILE *out, const bots_result_t *r)
{
    fprintf(out, "  steps:\n"
                 "    moves/s/bot  moves/s sent  confirmed  broadcasts/s"
                 "  p50 ms  p99 ms  max ms  server CPU  server RSS\n");
    for (uint32_t i = 0; i < r->nsteps; i++) {
        const bots_step_t *st = &r->steps[i];
        fprintf(out, "    %11.2f  %12.0f  %9.0f  %12.0f  %6.1f  %6.1f  %6.1f",
                st->move_hz, per_s(st->c.moves_sent, st->seconds),
                per_s(st->c.moves_confirmed, st->seconds),
                per_s(st->c.broadcast[0], st->seconds), ms(st->p50_ns),
                ms(st->p99_ns), ms(st->max_ns));
        if (st->server_sampled)
            fprintf(out, "  %8.0f %%  %7.1f MiB\n", st->server_cpu_pct,
                    (double)st->server_rss / (1024.0 * 1024.0));
        else
            fprintf(out, "         -           -\n");
    }
}

static void print_errors(FILE *out, const bots_stats_t *s)
{
    fprintf(out, "  errors:    %llu", (unsigned long long)s->errors_total);
    const char *sep = " (";
    for (int k = 0; k < BOTS_ERR_COUNT; k++) {
        if (s->errors[k] == 0)
            continue;
        fprintf(out, "%s%s %llu", sep, bots_err_name((bots_err_t)k),
                (unsigned long long)s->errors[k]);
        sep = ", ";
    }
    fprintf(out, "%s\n", s->errors_total ? ")" : "");
    for (uint32_t i = 0; i < s->nshown; i++)
        fprintf(out, "    %s\n", s->shown[i]);
}

void bots_report_print(FILE *out, const bots_options_t *o,
                       const bots_result_t *r, const bots_stats_t *s)
{
    const bots_counters_t *t = &r->total, *u = &r->run;
    const bench_hist_t *h = &s->run_latency;
    fprintf(out,
            "zinx-mmo-bots: %u players (spawn %s), %.2f moves/s and %.2f "
            "chats/s each, %.1f s of play%s\n",
            r->players, o->spawn == BOTS_SPAWN_SPREAD ? "spread" : "zinx",
            o->nsteps ? o->steps[0] : o->move_hz, o->chat_hz, r->run_s,
            r->interrupted ? " (interrupted)" : "");
    fprintf(out,
            "  players:   %u connected, %u in the world (in place in %.1f "
            "s, their arrivals' messages %s in %.1f s more)\n",
            r->connected, r->joined, r->connect_s,
            r->settled ? "drained" : "still coming", r->settle_s);
    fprintf(
        out,
        "  sent:      %llu moves (%llu confirmed, %llu replaced by the "
        "next before the server applied them, %llu held back), %llu "
        "chats (%llu heard back, %llu held back)\n",
        (unsigned long long)t->moves_sent,
        (unsigned long long)t->moves_confirmed,
        (unsigned long long)t->moves_skipped, (unsigned long long)t->moves_held,
        (unsigned long long)t->chats_sent, (unsigned long long)t->chats_back,
        (unsigned long long)t->chats_held);
    fprintf(out,
            "  received:  %llu messages: 200 BroadCast %llu (Tp 1 chat "
            "%llu, Tp 2 appear %llu, Tp 3 action %llu, Tp 4 moved %llu), "
            "201 %llu, 202 %llu (%llu players listed)\n",
            (unsigned long long)t->frames, (unsigned long long)t->broadcast[0],
            (unsigned long long)t->broadcast[1],
            (unsigned long long)t->broadcast[2],
            (unsigned long long)t->broadcast[3],
            (unsigned long long)t->broadcast[4], (unsigned long long)t->leaves,
            (unsigned long long)t->sync_players,
            (unsigned long long)t->sync_entries);
    if (t->chats_other_nodes > 0)
        fprintf(out,
                "  nodes:     %llu chats heard from another node's players\n",
                (unsigned long long)t->chats_other_nodes);
    fprintf(out,
            "  run rates: %.0f moves/s sent, %.0f confirmed, %.1f chats/s, "
            "%.0f broadcasts/s received\n",
            per_s(u->moves_sent, r->run_s), per_s(u->moves_confirmed, r->run_s),
            per_s(u->chats_sent, r->run_s), per_s(u->broadcast[0], r->run_s));
    fprintf(out,
            "  latency:   move -> neighbour p50 %.2f ms, p99 %.2f ms, max "
            "%.2f ms (%llu samples, %llu not matched)\n",
            ms(bench_hist_quantile(h, 0.50)), ms(bench_hist_quantile(h, 0.99)),
            ms(h->count ? h->max : 0), (unsigned long long)h->count,
            (unsigned long long)u->latency_unmatched);
    if (o->nsteps > 0)
        print_steps(out, r);
    print_errors(out, s);
    fprintf(out, "  result:    %s\n", bots_report_ok(r, s) ? "ok" : "FAILED");
}

/* ---- JSON --------------------------------------------------------------- */

static cJSON *counters_json(const bots_counters_t *c)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "joined", (double)c->joined);
    cJSON_AddNumberToObject(j, "moves_sent", (double)c->moves_sent);
    cJSON_AddNumberToObject(j, "moves_confirmed", (double)c->moves_confirmed);
    cJSON_AddNumberToObject(j, "moves_replaced", (double)c->moves_skipped);
    cJSON_AddNumberToObject(j, "moves_held", (double)c->moves_held);
    cJSON_AddNumberToObject(j, "chats_sent", (double)c->chats_sent);
    cJSON_AddNumberToObject(j, "chats_back", (double)c->chats_back);
    cJSON_AddNumberToObject(j, "chats_held", (double)c->chats_held);
    cJSON_AddNumberToObject(j, "chats_refused", (double)c->chats_refused);
    cJSON_AddNumberToObject(j, "chats_other_nodes",
                            (double)c->chats_other_nodes);
    cJSON_AddNumberToObject(j, "messages", (double)c->frames);
    cJSON_AddNumberToObject(j, "bytes", (double)c->bytes);
    cJSON_AddNumberToObject(j, "broadcasts", (double)c->broadcast[0]);
    cJSON_AddNumberToObject(j, "tp1_chat", (double)c->broadcast[1]);
    cJSON_AddNumberToObject(j, "tp2_appear", (double)c->broadcast[2]);
    cJSON_AddNumberToObject(j, "tp3_action", (double)c->broadcast[3]);
    cJSON_AddNumberToObject(j, "tp4_moved", (double)c->broadcast[4]);
    cJSON_AddNumberToObject(j, "leaves_201", (double)c->leaves);
    cJSON_AddNumberToObject(j, "sync_players_202", (double)c->sync_players);
    cJSON_AddNumberToObject(j, "sync_entries", (double)c->sync_entries);
    cJSON_AddNumberToObject(j, "latency_samples", (double)c->latency_samples);
    cJSON_AddNumberToObject(j, "latency_unmatched",
                            (double)c->latency_unmatched);
    return j;
}

static cJSON *step_json(const bots_step_t *st)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "move_hz", st->move_hz);
    cJSON_AddNumberToObject(j, "seconds", st->seconds);
    cJSON_AddNumberToObject(j, "moves_sent_per_s",
                            per_s(st->c.moves_sent, st->seconds));
    cJSON_AddNumberToObject(j, "moves_confirmed_per_s",
                            per_s(st->c.moves_confirmed, st->seconds));
    cJSON_AddNumberToObject(j, "broadcasts_per_s",
                            per_s(st->c.broadcast[0], st->seconds));
    cJSON_AddNumberToObject(j, "p50_ms", ms(st->p50_ns));
    cJSON_AddNumberToObject(j, "p99_ms", ms(st->p99_ns));
    cJSON_AddNumberToObject(j, "max_ms", ms(st->max_ns));
    if (st->server_sampled) {
        cJSON_AddNumberToObject(j, "server_cpu_pct", st->server_cpu_pct);
        cJSON_AddNumberToObject(j, "server_rss_bytes", (double)st->server_rss);
    }
    cJSON_AddItemToObject(j, "counters", counters_json(&st->c));
    return j;
}

static cJSON *errors_json(const bots_stats_t *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "total", (double)s->errors_total);
    cJSON *kinds = cJSON_AddObjectToObject(j, "by_kind");
    for (int k = 0; k < BOTS_ERR_COUNT; k++)
        cJSON_AddNumberToObject(kinds, bots_err_name((bots_err_t)k),
                                (double)s->errors[k]);
    cJSON *first = cJSON_AddArrayToObject(j, "first");
    for (uint32_t i = 0; i < s->nshown; i++)
        cJSON_AddItemToArray(first, cJSON_CreateString(s->shown[i]));
    return j;
}

static cJSON *report_json(const bots_options_t *o, const bots_result_t *r,
                          const bots_stats_t *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "ok", bots_report_ok(r, s));
    cJSON_AddNumberToObject(j, "players", r->players);
    cJSON_AddStringToObject(j, "spawn",
                            o->spawn == BOTS_SPAWN_SPREAD ? "spread" : "zinx");
    cJSON_AddNumberToObject(j, "move_hz", o->move_hz);
    cJSON_AddNumberToObject(j, "chat_hz", o->chat_hz);
    cJSON_AddNumberToObject(j, "connected", r->connected);
    cJSON_AddNumberToObject(j, "joined", r->joined);
    cJSON_AddNumberToObject(j, "connect_s", r->connect_s);
    cJSON_AddNumberToObject(j, "settle_s", r->settle_s);
    cJSON_AddBoolToObject(j, "settled", r->settled);
    cJSON_AddNumberToObject(j, "run_s", r->run_s);
    cJSON_AddBoolToObject(j, "interrupted", r->interrupted);
    cJSON_AddItemToObject(j, "total", counters_json(&r->total));
    cJSON_AddItemToObject(j, "run", counters_json(&r->run));
    cJSON *lat = cJSON_AddObjectToObject(j, "latency_ms");
    const bench_hist_t *h = &s->run_latency;
    cJSON_AddNumberToObject(lat, "p50", ms(bench_hist_quantile(h, 0.50)));
    cJSON_AddNumberToObject(lat, "p99", ms(bench_hist_quantile(h, 0.99)));
    cJSON_AddNumberToObject(lat, "max", ms(h->count ? h->max : 0));
    cJSON_AddNumberToObject(lat, "samples", (double)h->count);
    cJSON *steps = cJSON_AddArrayToObject(j, "steps");
    for (uint32_t i = 0; i < r->nsteps; i++)
        cJSON_AddItemToArray(steps, step_json(&r->steps[i]));
    cJSON_AddItemToObject(j, "errors", errors_json(s));
    return j;
}

int bots_report_json(const char *path, const bots_options_t *o,
                     const bots_result_t *r, const bots_stats_t *s)
{
    cJSON *j = report_json(o, r, s);
    char *text = j != NULL ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (text == NULL) {
        errno = ENOMEM;
        return -1;
    }
    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f != NULL) {
        rc = fputs(text, f) >= 0 && fputc('\n', f) != EOF ? 0 : -1;
        if (fclose(f) != 0)
            rc = -1;
    }
    free(text);
    return rc;
}
