/*
 * The swarm's report: a text summary for people, the same as JSON for
 * scripts (the bench), and the verdict.
 */
#ifndef MMO_BOTS_REPORT_H
#define MMO_BOTS_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "options.h"
#include "stats.h"
#include "swarm.h"

/* Whether the run passed: every bot in the world, the run started, and
   no error of any kind. */
bool bots_report_ok(const bots_result_t *r, const bots_stats_t *s);

/* Writes the summary to out. */
void bots_report_print(FILE *out, const bots_options_t *o,
                       const bots_result_t *r, const bots_stats_t *s);

/* Writes the report as one JSON object to path. Returns 0, or -1 with
   errno set. */
int bots_report_json(const char *path, const bots_options_t *o,
                     const bots_result_t *r, const bots_stats_t *s);

#endif /* MMO_BOTS_REPORT_H */
