/*
 * Log-linear latency histogram (see bench_hist.h for the bucket layout).
 */
#include "bench_hist.h"

#include <math.h>
#include <string.h>

void bench_hist_init(bench_hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v)
{
    if (v < BENCH_HIST_LINEAR)
        return (unsigned)v;
    /* e >= 7: the bucket width is 2^(e - 6), i.e. 64 buckets per octave. */
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (e - 6u)) & (BENCH_HIST_SUB - 1u);
    return BENCH_HIST_LINEAR + (e - 7u) * BENCH_HIST_SUB + sub;
}

/* The middle of bucket i, the value reported for anything counted there. */
static uint64_t bucket_mid(unsigned i)
{
    if (i < BENCH_HIST_LINEAR)
        return i;
    unsigned k = i - BENCH_HIST_LINEAR;
    unsigned e = 7u + k / BENCH_HIST_SUB;
    uint64_t width = (uint64_t)1 << (e - 6u);
    uint64_t low = (uint64_t)(BENCH_HIST_SUB + k % BENCH_HIST_SUB) << (e - 6u);
    return low + width / 2u;
}

void bench_hist_record(bench_hist_t *h, uint64_t value)
{
    h->buckets[bucket_of(value)]++;
    h->count++;
    h->sum += value;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void bench_hist_merge(bench_hist_t *dst, const bench_hist_t *src)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t bench_hist_quantile(const bench_hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    double want = ceil(q * (double)h->count);
    uint64_t rank = want < 1.0 ? 1u : (uint64_t)want;
    if (rank > h->count)
        rank = h->count;

    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = bucket_mid(i);
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max;
}
