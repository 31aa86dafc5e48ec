/*
 * tests/unit/test_retain.c: the retained-message store (broker/retain.c). Release accounting
 * (every stored reference given back exactly once), wildcard and $-topic matching, pruning,
 * iteration order, a brute-force comparison against an independent naive matcher under random
 * set/clear churn, and a concurrency smoke test.
 */
#include "broker/retain.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* Messages are tokens: slots of this array, each counting how often the store released it. */
enum { MAX_TOKENS = 40000 };
static atomic_int released[MAX_TOKENS];
static int next_token;

static void *token(void)
{
    atomic_store(&released[next_token], 0);
    return &released[next_token++];
}

static int releases(void *msg)
{
    return atomic_load((atomic_int *)msg);
}

static void release(void *msg)
{
    atomic_fetch_add((atomic_int *)msg, 1);
}

#define MAX_HITS 4096
typedef struct {
    size_t n;
    char topic[MAX_HITS][48];
    void *msg[MAX_HITS];
} hits_t;
static hits_t H;

static void collect(void *arg, const char *topic, size_t len, void *msg)
{
    hits_t *h = arg;
    if (h->n < MAX_HITS && len < sizeof h->topic[0]) {
        memcpy(h->topic[h->n], topic, len);
        h->topic[h->n][len] = '\0';
        h->msg[h->n] = msg;
    }
    h->n++;
}

static size_t match(retain_t *s, const char *filter)
{
    H.n = 0;
    size_t n = retain_match(s, filter, strlen(filter), collect, &H);
    return n == H.n ? n : (size_t)-1;
}

static bool hit(const char *topic)
{
    for (size_t i = 0; i < H.n && i < MAX_HITS; i++)
        if (strcmp(H.topic[i], topic) == 0)
            return true;
    return false;
}

static int set(retain_t *s, const char *topic, void *msg)
{
    return retain_set(s, topic, strlen(topic), msg);
}

/* ---- Hand-written cases ---------------------------------------------------------------------- */

TEST(set_replace_clear)
{
    retain_t *s = retain_new(release);
    ASSERT(s);
    void *a = token(), *b = token(), *c = token(), *d = token();
    ASSERT_EQ(set(s, "x/y", a), 0);
    ASSERT_EQ(retain_count(s), 1);
    ASSERT_EQ(set(s, "x/y", b), 0); /* replaces: a released */
    ASSERT_EQ(retain_count(s), 1);
    ASSERT(releases(a) == 1 && releases(b) == 0);
    ASSERT_EQ(match(s, "x/y"), 1);
    ASSERT(H.msg[0] == b);
    ASSERT_STR_EQ(H.topic[0], "x/y");
    ASSERT_EQ(set(s, "x/y", NULL), 0); /* clears: b released */
    ASSERT_EQ(releases(b), 1);
    ASSERT_EQ(retain_count(s), 0);
    ASSERT_EQ(set(s, "x/y", NULL), 0); /* clearing an absent topic */
    ASSERT_EQ(set(s, "x", NULL), 0);
    ASSERT_EQ(releases(b), 1);
    ASSERT_EQ(match(s, "x/y"), 0);
    ASSERT_EQ(set(s, "", c), -EINVAL);
    ASSERT_EQ(set(s, "x", c), 0);
    ASSERT_EQ(set(s, "x/y/z", d), 0);
    ASSERT_EQ(retain_count(s), 2);
    retain_free(s); /* releases what it still holds */
    ASSERT(releases(a) == 1 && releases(b) == 1 && releases(c) == 1 && releases(d) == 1);
}

TEST(wildcards_and_dollar)
{
    retain_t *s = retain_new(release);
    const char *topics[] = {"a", "a/b", "a/b/c", "a/c", "b/b", "$SYS/x", "$SYS", "a/$x"};
    for (size_t i = 0; i < sizeof topics / sizeof *topics; i++)
        ASSERT_EQ(set(s, topics[i], token()), 0);
    ASSERT_EQ(match(s, "a/#"), 5); /* a a/b a/b/c a/c a/$x: '#' matches the parent */
    ASSERT(hit("a") && hit("a/b/c") && hit("a/$x"));
    ASSERT_EQ(match(s, "a/+"), 3);
    ASSERT(hit("a/b") && hit("a/c") && hit("a/$x"));
    ASSERT_EQ(match(s, "+/b"), 2);
    ASSERT(hit("a/b") && hit("b/b"));
    ASSERT_EQ(match(s, "#"), 6); /* not $SYS, $SYS/x */
    ASSERT(!hit("$SYS") && !hit("$SYS/x"));
    ASSERT_EQ(match(s, "+"), 1);
    ASSERT_EQ(match(s, "+/x"), 0);
    ASSERT_EQ(match(s, "$SYS/#"), 2);
    ASSERT(hit("$SYS") && hit("$SYS/x"));
    ASSERT_EQ(match(s, "$SYS/+"), 1);
    ASSERT_EQ(match(s, "+/+/c"), 1);
    ASSERT_EQ(match(s, "a/b/c/#"), 1);
    ASSERT_EQ(match(s, "a/b/c/+"), 0);
    ASSERT_EQ(match(s, "c/#"), 0);
    ASSERT_EQ(match(s, ""), 0);
    retain_free(s);
}

TEST(empty_levels)
{
    retain_t *s = retain_new(release);
    ASSERT_EQ(set(s, "a//b", token()), 0);
    ASSERT_EQ(set(s, "/a", token()), 0);
    ASSERT_EQ(set(s, "a/", token()), 0);
    ASSERT_EQ(set(s, "/", token()), 0);
    ASSERT_EQ(match(s, "a/+/b"), 1);
    ASSERT_EQ(match(s, "a//b"), 1);
    ASSERT_EQ(match(s, "+/a"), 1);
    ASSERT(hit("/a"));
    ASSERT_EQ(match(s, "a/+"), 1);
    ASSERT(hit("a/"));
    ASSERT_EQ(match(s, "+/+"), 3); /* "/a", "a/", "/" */
    ASSERT_EQ(match(s, "/#"), 2);
    ASSERT_EQ(match(s, "a"), 0);
    retain_free(s);
}

TEST(clear_prunes)
{
    retain_t *s = retain_new(release);
    ASSERT_EQ(retain_node_count(s), 1);
    ASSERT_EQ(set(s, "a/b/c/d", token()), 0);
    ASSERT_EQ(set(s, "a/b", token()), 0);
    ASSERT_EQ(set(s, "a/x", token()), 0);
    ASSERT_EQ(retain_node_count(s), 1 + 5);
    ASSERT_EQ(set(s, "a/b/c/d", NULL), 0);
    ASSERT_EQ(retain_node_count(s), 1 + 3);
    ASSERT_EQ(set(s, "a", NULL), 0); /* an inner node without a message: nothing to clear */
    ASSERT_EQ(retain_node_count(s), 1 + 3);
    ASSERT_EQ(set(s, "a/b", NULL), 0);
    ASSERT_EQ(set(s, "a/x", NULL), 0);
    ASSERT_EQ(retain_node_count(s), 1);
    ASSERT_EQ(retain_count(s), 0);
    retain_free(s);
}

TEST(foreach_in_level_order)
{
    retain_t *s = retain_new(release);
    const char *topics[] = {"b", "ab", "a/b", "a", "$SYS/x", "a/a"};
    for (size_t i = 0; i < sizeof topics / sizeof *topics; i++)
        ASSERT_EQ(set(s, topics[i], token()), 0);
    H.n = 0;
    retain_foreach(s, collect, &H);
    ASSERT_EQ(H.n, 6);
    const char *want[] = {"$SYS/x", "a", "a/a", "a/b", "ab", "b"};
    for (size_t i = 0; i < 6; i++)
        ASSERT_STR_EQ(H.topic[i], want[i]);
    retain_free(s);
}

/* ---- Brute force against a naive matcher ----------------------------------------------------- */

/* Written from the spec, level by level, without the trie. */
static bool naive_match(const char *filter, const char *topic)
{
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    const char *f = filter, *t = topic;
    for (;;) {
        const char *fe = strchr(f, '/') ? strchr(f, '/') : f + strlen(f);
        if (fe - f == 1 && *f == '#')
            return true;
        if (!t)
            return false;
        const char *te = strchr(t, '/') ? strchr(t, '/') : t + strlen(t);
        bool plus = fe - f == 1 && *f == '+';
        if (!plus && (fe - f != te - t || memcmp(f, t, (size_t)(fe - f)) != 0))
            return false;
        if (*fe != '/')
            return *te != '/';
        f = fe + 1;
        t = *te == '/' ? te + 1 : NULL;
    }
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static const char *const LEVELS[] = {"a", "b", "", "$s", "cc", "a", "$"};
#define NLEVELS 7u

/* A random non-empty topic (or filter) of 1-4 levels. */
static void rand_name(char *out, bool filter)
{
    do {
        int n = 1 + (int)rnd(4);
        out[0] = 0;
        for (int i = 0; i < n; i++) {
            if (i)
                strcat(out, "/");
            uint32_t k = rnd(NLEVELS + (filter ? 3 : 0));
            if (k >= NLEVELS)
                strcat(out, (k == NLEVELS || i + 1 < n) ? "+" : "#");
            else
                strcat(out, LEVELS[k]);
        }
    } while (!out[0]);
}

enum { NT = 2000, NQ = 400 }; /* NT exceeds the 1554 distinct topics of the alphabet */
static struct {
    char topic[48];
    void *msg;
} M[NT];
static int nmodel;

/* The model index of a topic, added if new. */
static int model_topic(const char *t)
{
    for (int i = 0; i < nmodel; i++)
        if (strcmp(M[i].topic, t) == 0)
            return i;
    strcpy(M[nmodel].topic, t);
    M[nmodel].msg = NULL;
    return nmodel++;
}

/* Compares one filter's matches with the naive matcher over the model. */
static int check_filter(retain_t *s, const char *filter)
{
    static int seen[NT];
    size_t n = match(s, filter), want = 0;
    if (n == (size_t)-1 || n > MAX_HITS)
        return -1;
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < n; i++) {
        int k = model_topic(H.topic[i]);
        if (M[k].msg != H.msg[i] || !naive_match(filter, M[k].topic) || seen[k]++)
            return -2;
    }
    for (int k = 0; k < nmodel; k++)
        want += M[k].msg && naive_match(filter, M[k].topic);
    return n == want ? 0 : -3;
}

TEST(brute_force)
{
    retain_t *s = retain_new(release);
    char t[48], f[48];
    size_t held = 0;
    nmodel = 0;
    for (int round = 0; round < 8; round++) {
        /* Churn: set, replace or clear random topics, tracking releases per token. */
        for (int i = 0; i < 2000; i++) {
            rand_name(t, false);
            int k = model_topic(t);
            void *old = M[k].msg, *msg = rnd(3) ? token() : NULL;
            ASSERT_EQ(set(s, t, msg), 0);
            if (old)
                ASSERT_EQ(releases(old), 1);
            held += (msg != NULL) - (old != NULL);
            M[k].msg = msg;
        }
        ASSERT_EQ(retain_count(s), held);
        for (int q = 0; q < NQ; q++) {
            rand_name(f, true);
            int rc = check_filter(s, f);
            if (rc)
                TEST_FAIL_("round %d, filter \"%s\": check %d", round, f, rc);
        }
    }
    /* Clear everything: an empty trie again. */
    for (int k = 0; k < nmodel; k++) {
        ASSERT_EQ(set(s, M[k].topic, NULL), 0);
        if (M[k].msg)
            ASSERT_EQ(releases(M[k].msg), 1);
        M[k].msg = NULL;
    }
    ASSERT_EQ(retain_count(s), 0);
    ASSERT_EQ(retain_node_count(s), 1);
    retain_free(s);
}

/* ---- Concurrency smoke test ------------------------------------------------------------------ */

static atomic_int stop_flag, bad_count;
static void count_only(void *arg, const char *topic, size_t len, void *msg)
{
    (void)topic;
    (void)msg;
    if (len == 0)
        atomic_fetch_add(&bad_count, 1);
    (*(size_t *)arg)++;
}

static void *reader(void *arg)
{
    retain_t *s = arg;
    while (!atomic_load(&stop_flag)) {
        size_t n = 0;
        /* "k/stable" is always there; at most 4 churning topics exist under "k". */
        if (retain_match(s, "k/#", 3, count_only, &n) != n || n < 1 || n > 5)
            atomic_fetch_add(&bad_count, 1);
    }
    return NULL;
}

TEST(concurrent_match_and_set)
{
    static const char *churn[] = {"k/a", "k/a/b/c", "k/b/x", "k/$d"};
    static atomic_int msgs[4 * 2000]; /* each set gets its own token, so releases can be checked */
    retain_t *s = retain_new(release);
    pthread_t th[2];
    void *stable = token();
    ASSERT_EQ(set(s, "k/stable", stable), 0);
    atomic_store(&stop_flag, 0);
    atomic_store(&bad_count, 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, reader, s), 0);
    for (int i = 0; i < 4 * 2000; i++) {
        atomic_init(&msgs[i], 0);
        ASSERT_EQ(set(s, churn[i % 4], i % 8 < 4 ? &msgs[i] : NULL), 0);
    }
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ASSERT_EQ(atomic_load(&bad_count), 0);
    retain_free(s);
    for (int i = 0; i < 4 * 2000; i++)
        ASSERT_EQ(atomic_load(&msgs[i]), i % 8 < 4 ? 1 : 0);
    ASSERT_EQ(releases(stable), 1);
}

int main(void)
{
    RUN(set_replace_clear);
    RUN(wildcards_and_dollar);
    RUN(empty_levels);
    RUN(clear_prunes);
    RUN(foreach_in_level_order);
    RUN(brute_force);
    RUN(concurrent_match_and_set);
    return test_summary();
}
