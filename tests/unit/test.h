/*
 * tests/unit/test.h: the in-tree unit test harness. Each tests/unit/test_*.c is its own process:
 *
 *   TEST(parses_connect) { ASSERT_EQ(x, 3); }
 *   int main(void) { RUN(parses_connect); return test_summary(); }
 *
 * A failed assertion prints file:line and the values, and ends that test (not the process).
 * test_summary() prints `N passed, N failed` and returns the exit status.
 */
#ifndef ACEMQ_TEST_H
#define ACEMQ_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed_, test_failed_, test_cur_failed_;
static const char *test_cur_name_;

#define TEST(name) static void name(void)

#define TEST_FAIL_(...)                                                                    \
    do {                                                                                   \
        fprintf(stderr, "FAIL %s (%s:%d): ", test_cur_name_, __FILE__, __LINE__);          \
        fprintf(stderr, __VA_ARGS__);                                                      \
        fputc('\n', stderr);                                                               \
        test_cur_failed_ = 1;                                                              \
        return;                                                                            \
    } while (0)

#define ASSERT(c)                                                                          \
    do {                                                                                   \
        if (!(c))                                                                          \
            TEST_FAIL_("%s", #c);                                                          \
    } while (0)

#define ASSERT_EQ(a, b)                                                                    \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                \
        if (a_ != b_)                                                                      \
            TEST_FAIL_("%s == %s (%lld != %lld)", #a, #b, a_, b_);                         \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                             \
            TEST_FAIL_("%s == %s (\"%s\" != \"%s\")", #a, #b, a_ ? a_ : "(null)",           \
                       b_ ? b_ : "(null)");                                                \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                             \
    do {                                                                                   \
        if (memcmp((a), (b), (n)) != 0)                                                    \
            TEST_FAIL_("%s == %s (%zu bytes differ)", #a, #b, (size_t)(n));                \
    } while (0)

#define RUN(name)                                                                          \
    do {                                                                                   \
        test_cur_name_ = #name;                                                            \
        test_cur_failed_ = 0;                                                              \
        name();                                                                            \
        if (test_cur_failed_)                                                              \
            test_failed_++;                                                                \
        else                                                                               \
            test_passed_++;                                                                \
    } while (0)

static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

#endif
