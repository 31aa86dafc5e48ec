/*
 * tools/bench/hist.c: the log-linear latency histogram (see hist.h for the layout and precision).
 */
#include "tools/bench/hist.h"

#include <math.h>
#include <string.h>

/* Bucket index of v: exact below HIST_SUB, else (shift + 1) groups in, by the top SUB_BITS+1 bits. */
static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The largest value that lands in bucket i (what a percentile reports, as HdrHistogram does). */
static uint64_t hist_highest(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t mant = HIST_SUB + i % HIST_SUB;
    uint64_t low = mant << shift;
    return low + ((1ull << shift) - 1);
}

void hist_init(hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void hist_record(hist_t *h, uint64_t v)
{
    h->buckets[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void hist_merge(hist_t *dst, const hist_t *src)
{
    if (!src->count)
        return;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_percentile(const hist_t *h, double p)
{
    if (!h->count)
        return 0;
    if (p > 100.0)
        p = 100.0;
    /* Rank of the wanted sample, 1-based. The epsilon keeps 99.9 % of 1000 at 999, not 1000,
     * when the product comes out a hair above the integer. */
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count - 1e-9);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = hist_highest(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double hist_mean(const hist_t *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
