/*
 * Another process's CPU time and resident memory, from /proc/PID/stat:
 * how the bench measures the server over each step of a run.
 */
#ifndef MMO_BOTS_PROCSTAT_H
#define MMO_BOTS_PROCSTAT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct bots_proc_sample {
    double cpu_s;       /* user + system time since it started, seconds */
    uint64_t rss_bytes; /* resident set */
} bots_proc_sample_t;

/* Reads pid's; false when it is gone or unreadable. Any thread. */
bool bots_proc_sample(int pid, bots_proc_sample_t *out);

#endif /* MMO_BOTS_PROCSTAT_H */
