/*
 * tests/unit/test_bench_hist.c: the load generator's latency histogram (tools/bench/hist.c):
 * bucket boundaries, the 1/128 precision bound, percentiles against a sorted reference, merging.
 * The tool's sources are not in libacemq.a, so the file is compiled in here.
 */
#include "../../tools/bench/hist.c"

#include "tests/unit/test.h"

#include <stdlib.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

TEST(small_values_are_exact)
{
    hist_t h;
    hist_init(&h);
    for (uint64_t v = 1; v <= 100; v++)
        hist_record(&h, v);
    ASSERT_EQ(hist_percentile(&h, 50), 50);
    ASSERT_EQ(hist_percentile(&h, 90), 90);
    ASSERT_EQ(hist_percentile(&h, 99), 99);
    ASSERT_EQ(hist_percentile(&h, 100), 100);
    ASSERT_EQ(hist_percentile(&h, 0.1), 1);
    ASSERT_EQ(h.min, 1);
    ASSERT_EQ(h.max, 100);
    ASSERT(hist_mean(&h) > 50.49 && hist_mean(&h) < 50.51);
}

TEST(empty_is_zero)
{
    hist_t h;
    hist_init(&h);
    ASSERT_EQ(hist_percentile(&h, 99), 0);
    ASSERT(hist_mean(&h) == 0.0);
}

TEST(every_bucket_holds_its_range)
{
    /* Each value lands in a bucket whose highest value is >= it and within 1/128 of it. */
    for (uint64_t v = 0; v < (1ull << 20); v += 7) {
        unsigned i = hist_index(v);
        ASSERT(i < HIST_NBUCKETS);
        ASSERT(hist_highest(i) >= v);
        ASSERT(hist_highest(i) - v <= v / HIST_SUB);
        if (i > 0)
            ASSERT(hist_highest(i - 1) < v);
    }
    ASSERT(hist_index(UINT64_MAX) == HIST_NBUCKETS - 1);
    ASSERT(hist_highest(HIST_NBUCKETS - 1) == UINT64_MAX);
}

TEST(percentiles_match_sorted_reference)
{
    enum { N = 100000 };
    static uint64_t ref[N];
    hist_t h;
    hist_init(&h);
    srand(7);
    for (int i = 0; i < N; i++) {
        /* A long-tailed mix: mostly tens of microseconds, some milliseconds, a few seconds. */
        uint64_t v = 20000 + (uint64_t)(rand() % 30000);
        if (i % 100 == 0)
            v = 1000000 + (uint64_t)rand() % 5000000;
        if (i % 5000 == 0)
            v = 1000000000ull + (uint64_t)rand();
        ref[i] = v;
        hist_record(&h, v);
    }
    qsort(ref, N, sizeof ref[0], cmp_u64);
    const double ps[] = {50, 90, 99, 99.9, 99.99, 100};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        uint64_t want = ref[(size_t)((ps[k] / 100.0) * N + 0.5) - 1];
        uint64_t got = hist_percentile(&h, ps[k]);
        ASSERT(got >= want);
        ASSERT(got - want <= want / HIST_SUB);
    }
    ASSERT_EQ(hist_percentile(&h, 100), ref[N - 1]);
}

TEST(merge_adds_counts)
{
    hist_t a, b;
    hist_init(&a);
    hist_init(&b);
    for (uint64_t v = 1; v <= 50; v++)
        hist_record(&a, v);
    for (uint64_t v = 51; v <= 100; v++)
        hist_record(&b, v);
    hist_merge(&a, &b);
    ASSERT_EQ(a.count, 100);
    ASSERT_EQ(a.min, 1);
    ASSERT_EQ(a.max, 100);
    ASSERT_EQ(hist_percentile(&a, 75), 75);
}

int main(void)
{
    RUN(small_values_are_exact);
    RUN(empty_is_zero);
    RUN(every_bucket_holds_its_range);
    RUN(percentiles_match_sorted_reference);
    RUN(merge_adds_counts);
    return test_summary();
}
