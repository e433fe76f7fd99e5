/*
 * The metrics' lifetime: made at start when MetricsAddr is set, the HTTP
 * thread started once the server runs, stopped first at the stop (it
 * reads the worker pool), freed with the server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "internal.h"
#include "server/config_internal.h"

int zinx_server_metrics_track_id(zinx_server_t *s, uint32_t id)
{
    if (s == NULL)
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    for (size_t i = 0; i < s->nmtrack; i++)
        if (s->mtrack[i] == id)
            return 0;
    if (ZINX__ARRAY_RESERVE(s->mtrack, s->mtrack_cap, s->nmtrack + 1) != 0)
        return ZINX_ENOMEM;
    s->mtrack[s->nmtrack++] = id;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The labelled IDs: every routed one and every tracked one, the lowest
   ZINX_METRICS_MAX_IDS of them, ascending (count.c searches them). */
static void collect_ids(zinx_server_t *s, zinx__metrics_t *m)
{
    size_t n = s->routes.count + s->nmtrack, k = 0;
    uint32_t *all = malloc((n > 0 ? n : 1) * sizeof(*all));
    if (all == NULL)
        return; /* every ID counts as "other" */
    for (size_t i = 0; i < s->routes.cap; i++)
        if (s->routes.slots[i].used)
            all[k++] = s->routes.slots[i].id;
    for (size_t i = 0; i < s->nmtrack; i++)
        all[k++] = s->mtrack[i];
    qsort(all, k, sizeof(*all), cmp_id);
    for (size_t i = 0; i < k && m->nids < ZINX_METRICS_MAX_IDS; i++) {
        if (m->nids > 0 && m->ids[m->nids - 1] == all[i])
            continue;
        snprintf(m->id_text[m->nids], sizeof(m->id_text[0]), "%u", all[i]);
        m->ids[m->nids++] = all[i];
    }
    free(all);
}

static int open_listener(zinx_server_t *s, zinx__metrics_t *m)
{
    char host[ZINX_CONFIG_HOST_MAX], why[128];
    int port, err = 0;
    /* Checked by zinx_config_validate() already. */
    if (zinx__config_split_hostport(s->cfg.metrics_addr, host, sizeof(host),
                                    &port, why, sizeof(why)) != 0)
        return ZINX_ECONFIG;
    m->http = zinx__mhttp_open(s, host, port, &err);
    if (m->http == NULL) {
        zinx__log(s, ZINX_LOG_ERROR, "MetricsAddr %s: cannot listen: %s",
                  s->cfg.metrics_addr, zinx_strerror(err));
        return err;
    }
    return 0;
}

int zinx__metrics_prepare(zinx_server_t *s, uint32_t nloops, uint32_t nworkers)
{
    if (s->cfg.metrics_addr[0] == '\0')
        return 0;
    zinx__metrics_t *m = calloc(1, sizeof(*m));
    size_t nblocks = (size_t)nloops + nworkers + 1;
    if (m != NULL)
        m->blocks = aligned_alloc(alignof(zinx__mblock_t),
                                  nblocks * sizeof(zinx__mblock_t));
    if (m == NULL || m->blocks == NULL) {
        free(m);
        return ZINX_ENOMEM;
    }
    memset(m->blocks, 0, nblocks * sizeof(zinx__mblock_t));
    m->nloops = nloops;
    m->nworkers = nworkers;
    m->blocks[nblocks - 1].shared = true;
    collect_ids(s, m);
    s->metrics = m;
    int rc = open_listener(s, m);
    if (rc != 0)
        zinx__metrics_free(s);
    return rc;
}

int zinx__metrics_serve(zinx_server_t *s)
{
    if (s->metrics == NULL)
        return 0;
    int rc = zinx__mhttp_start(s->metrics->http);
    if (rc == 0)
        atomic_store(&s->metrics->port, zinx__mhttp_port(s->metrics->http));
    if (rc == 0)
        ZINX__LOG(s, ZINX_LOG_INFO,
                  "metrics served at /metrics on port %d (MetricsAddr %s)",
                  zinx__mhttp_port(s->metrics->http), s->cfg.metrics_addr);
    return rc;
}

void zinx__metrics_stop(zinx_server_t *s)
{
    if (s->metrics == NULL || s->metrics->http == NULL)
        return;
    atomic_store(&s->metrics->port, 0);
    zinx__mhttp_free(s->metrics->http);
    s->metrics->http = NULL;
}

void zinx__metrics_free(zinx_server_t *s)
{
    if (s->metrics == NULL)
        return;
    zinx__metrics_stop(s);
    free(s->metrics->blocks);
    free(s->metrics);
    s->metrics = NULL;
}

int zinx_server_metrics_port(const zinx_server_t *s)
{
    /* s->metrics lives as long as the server; the port says whether its
       listener is served. */
    return s != NULL && s->metrics != NULL ? atomic_load(&s->metrics->port) : 0;
}
