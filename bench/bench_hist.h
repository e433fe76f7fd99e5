/*
 * Latency histogram for zinx-bench: log-linear buckets in a fixed array,
 * so memory does not grow with the length of a run.
 *
 * Values below 128 are counted exactly. Above, every power of two
 * [2^e, 2^(e+1)) is split into 64 equal buckets, so any recorded value is
 * known to within 1/64 (about 1.6 %) of itself. With nanoseconds as the
 * unit that covers everything from 1 ns to centuries in 3,776 counters
 * (30 KiB).
 */
#ifndef ZINX_BENCH_HIST_H
#define ZINX_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_LINEAR 128u
#define BENCH_HIST_SUB 64u
#define BENCH_HIST_BUCKETS (BENCH_HIST_LINEAR + (64u - 7u) * BENCH_HIST_SUB)

typedef struct bench_hist {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    uint64_t sum;
    uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist_t;

void bench_hist_init(bench_hist_t *h);
void bench_hist_record(bench_hist_t *h, uint64_t value);
void bench_hist_merge(bench_hist_t *dst, const bench_hist_t *src);

/*
 * Returns the value at quantile q (0 < q <= 1): the middle of the bucket
 * that holds the ceil(q * count)-th smallest value, clamped to the
 * recorded min and max. 0 when the histogram is empty.
 */
uint64_t bench_hist_quantile(const bench_hist_t *h, double q);

#endif /* ZINX_BENCH_HIST_H */
