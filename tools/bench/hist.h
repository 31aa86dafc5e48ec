/*
 * tools/bench/hist.h: a fixed-size log-linear histogram of non-negative integers (nanoseconds in
 * the load generator), in the manner of HdrHistogram: values below 2^HIST_SUB_BITS are exact;
 * above, every power of two is split into 2^HIST_SUB_BITS equal buckets, so a reported value is
 * within 1/2^HIST_SUB_BITS (0.8 %) of the true one. Recording is a few instructions and never
 * allocates; one histogram is about 60 KB whatever it holds.
 *
 * Not thread-safe: each loop thread records into its own histogram; they are merged at the end.
 */
#ifndef ACEMQ_BENCH_HIST_H
#define ACEMQ_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
/* Groups: one exact group, then one per possible shift (msb - SUB_BITS, 0..63-SUB_BITS). */
#define HIST_NBUCKETS (HIST_SUB * (64 - HIST_SUB_BITS + 1))

typedef struct {
    uint64_t count;
    uint64_t sum;
    uint64_t min;
    uint64_t max;
    uint64_t buckets[HIST_NBUCKETS];
} hist_t;

void hist_init(hist_t *h);
void hist_record(hist_t *h, uint64_t v);
void hist_merge(hist_t *dst, const hist_t *src);

/*
 * The value at percentile p (0 < p <= 100): the highest value equivalent to the bucket holding
 * the ceil(p% * count)-th smallest sample, clamped to [min, max]. 0 when the histogram is empty.
 */
uint64_t hist_percentile(const hist_t *h, double p);
double hist_mean(const hist_t *h);

#endif
