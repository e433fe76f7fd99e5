/* PID → bot: see pidmap.h. */
#include "pidmap.h"

#include <stdlib.h>

static uint32_t slot_of(const bot_pidmap_t *m, int32_t pid)
{
    /* Fibonacci hashing: the server hands out consecutive PIDs. */
    return (uint32_t)(((uint64_t)(uint32_t)pid * 0x9E3779B97F4A7C15ull) >> 32) &
           m->mask;
}

bool bot_pidmap_init(bot_pidmap_t *m, uint32_t max)
{
    uint32_t size = 16;
    while (size < 2u * max)
        size *= 2;
    m->pids = calloc(size, sizeof(*m->pids));
    m->bots = calloc(size, sizeof(*m->bots));
    m->mask = size - 1;
    m->n = 0;
    m->max = max;
    if (m->pids == NULL || m->bots == NULL) {
        bot_pidmap_free(m);
        return false;
    }
    return true;
}

void bot_pidmap_free(bot_pidmap_t *m)
{
    free(m->pids);
    free(m->bots);
    m->pids = NULL;
    m->bots = NULL;
}

int bot_pidmap_put(bot_pidmap_t *m, int32_t pid, struct bot *b,
                   struct bot **owner)
{
    uint32_t i = slot_of(m, pid);
    for (; m->pids[i] != 0; i = (i + 1) & m->mask) {
        if (m->pids[i] == pid) {
            *owner = m->bots[i];
            return -1;
        }
    }
    if (m->n >= m->max)
        return -2;
    m->pids[i] = pid;
    m->bots[i] = b;
    m->n++;
    return 0;
}

struct bot *bot_pidmap_get(const bot_pidmap_t *m, int32_t pid)
{
    if (pid <= 0)
        return NULL;
    for (uint32_t i = slot_of(m, pid); m->pids[i] != 0; i = (i + 1) & m->mask) {
        if (m->pids[i] == pid)
            return m->bots[i];
    }
    return NULL;
}
