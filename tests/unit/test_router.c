/*
 * tests/unit/test_router.c: the subscription trie (broker/router.c). Hand-written cases for each
 * matching rule, shared-group round robin, pruning, the large-node paths (hashed children and
 * owner sets), a brute-force comparison against an independent naive matcher, and a concurrency
 * smoke test (meant to be run under ThreadSanitizer or AddressSanitizer as well).
 */
#include "broker/router.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define OWNER(i) ((void *)(uintptr_t)(i))

/* ---- Helpers --------------------------------------------------------------------------------- */

#define MAX_HITS 4096

typedef struct {
    size_t n;
    router_match_t m[MAX_HITS];
} hits_t;

static void collect(void *arg, const router_match_t *m)
{
    hits_t *h = arg;
    if (h->n < MAX_HITS)
        h->m[h->n] = *m;
    h->n++;
}

static hits_t H; /* large: kept off the stack */

static size_t match(router_t *r, const char *topic)
{
    H.n = 0;
    size_t n = router_match(r, topic, strlen(topic), collect, &H);
    return n == H.n ? n : (size_t)-1;
}

/* How many hits went to owner (optionally only shared / only ordinary: shared = -1 for any). */
static int hits_of(const void *owner, int shared)
{
    int c = 0;
    for (size_t i = 0; i < H.n && i < MAX_HITS; i++)
        if (H.m[i].owner == owner && (shared < 0 || H.m[i].shared == shared))
            c++;
    return c;
}

static int sub(router_t *r, const char *f, uintptr_t owner)
{
    return router_subscribe(r, f, strlen(f), OWNER(owner), 1, 0, NULL);
}

static int unsub(router_t *r, const char *f, uintptr_t owner)
{
    return router_unsubscribe(r, f, strlen(f), OWNER(owner));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* ---- Matching rules -------------------------------------------------------------------------- */

TEST(exact_match)
{
    router_t *r = router_new();
    ASSERT(r);
    ASSERT_EQ(sub(r, "a/b/c", 1), 0);
    ASSERT_EQ(sub(r, "a/b", 2), 0);
    ASSERT_EQ(router_count(r), 2);
    ASSERT_EQ(match(r, "a/b/c"), 1);
    ASSERT_EQ(hits_of(OWNER(1), 0), 1);
    ASSERT_EQ(match(r, "a/b"), 1);
    ASSERT_EQ(hits_of(OWNER(2), 0), 1);
    ASSERT_EQ(match(r, "a"), 0);
    ASSERT_EQ(match(r, "a/b/c/d"), 0);
    ASSERT_EQ(match(r, "a/b/cc"), 0);
    ASSERT_EQ(match(r, "A/b"), 0);
    ASSERT_EQ(match(r, ""), 0);
    router_free(r);
}

TEST(wildcards)
{
    router_t *r = router_new();
    ASSERT_EQ(sub(r, "a/+/c", 1), 0);
    ASSERT_EQ(sub(r, "a/#", 2), 0);
    ASSERT_EQ(sub(r, "#", 3), 0);
    ASSERT_EQ(sub(r, "+", 4), 0);
    ASSERT_EQ(sub(r, "+/+", 5), 0);
    ASSERT_EQ(sub(r, "+/#", 6), 0);
    ASSERT_EQ(match(r, "a/x/c"), 4); /* 1 2 3 6 */
    ASSERT(hits_of(OWNER(1), 0) == 1 && hits_of(OWNER(2), 0) == 1 && hits_of(OWNER(6), 0) == 1);
    /* '#' matches the parent level: "a/#" and "+/#" match "a". */
    ASSERT_EQ(match(r, "a"), 4); /* 2 3 4 6 */
    ASSERT(hits_of(OWNER(2), 0) == 1 && hits_of(OWNER(4), 0) == 1 && hits_of(OWNER(6), 0) == 1);
    ASSERT_EQ(match(r, "a/b"), 4); /* 2 3 5 6 */
    ASSERT_EQ(hits_of(OWNER(5), 0), 1);
    ASSERT_EQ(match(r, "b/x/c"), 2); /* 3 6 */
    ASSERT_EQ(match(r, "a/x/c/d"), 3); /* 2 3 6 */
    router_free(r);
}

TEST(dollar_topics)
{
    router_t *r = router_new();
    ASSERT_EQ(sub(r, "#", 1), 0);
    ASSERT_EQ(sub(r, "+/x", 2), 0);
    ASSERT_EQ(sub(r, "$SYS/#", 3), 0);
    ASSERT_EQ(sub(r, "$SYS/+", 4), 0);
    ASSERT_EQ(sub(r, "+", 5), 0);
    ASSERT_EQ(sub(r, "$share/g/#", 6), 0);
    ASSERT_EQ(match(r, "$SYS/x"), 2);
    ASSERT(hits_of(OWNER(3), 0) == 1 && hits_of(OWNER(4), 0) == 1);
    ASSERT_EQ(match(r, "$SYS"), 1); /* "$SYS/#" matches its parent */
    ASSERT_EQ(hits_of(OWNER(3), 0), 1);
    ASSERT_EQ(match(r, "$"), 0);
    /* '$' only matters as the first character of the first level. */
    ASSERT_EQ(match(r, "a/$x"), 2); /* 1 and the shared group */
    ASSERT_EQ(match(r, "y/x"), 3);
    router_free(r);
}

TEST(empty_levels)
{
    router_t *r = router_new();
    ASSERT_EQ(sub(r, "a//b", 1), 0);
    ASSERT_EQ(sub(r, "/a", 2), 0);
    ASSERT_EQ(sub(r, "+/+/+", 3), 0);
    ASSERT_EQ(sub(r, "a/", 4), 0);
    ASSERT_EQ(sub(r, "+/a", 5), 0);
    ASSERT_EQ(sub(r, "/", 6), 0);
    ASSERT_EQ(match(r, "a//b"), 2);
    ASSERT(hits_of(OWNER(1), 0) == 1 && hits_of(OWNER(3), 0) == 1);
    ASSERT_EQ(match(r, "/a"), 2);
    ASSERT(hits_of(OWNER(2), 0) == 1 && hits_of(OWNER(5), 0) == 1);
    ASSERT_EQ(match(r, "a/"), 1);
    ASSERT_EQ(hits_of(OWNER(4), 0), 1);
    ASSERT_EQ(match(r, "a"), 0);
    ASSERT_EQ(match(r, "/"), 1);
    ASSERT_EQ(match(r, "//"), 1); /* "+/+/+" */
    ASSERT_EQ(match(r, "a/b"), 0);
    router_free(r);
}

TEST(overlapping_and_replace)
{
    router_t *r = router_new();
    int existed = -1;
    ASSERT_EQ(router_subscribe(r, "a/b", 3, OWNER(1), 0, 7, &existed), 0);
    ASSERT_EQ(existed, 0);
    ASSERT_EQ(router_subscribe(r, "a/+", 3, OWNER(1), 1, 8, &existed), 0);
    ASSERT_EQ(router_subscribe(r, "#", 1, OWNER(1), 2, 9, &existed), 0);
    ASSERT_EQ(existed, 0);
    ASSERT_EQ(match(r, "a/b"), 3);
    ASSERT_EQ(hits_of(OWNER(1), 0), 3);
    uint32_t ids = 0;
    for (size_t i = 0; i < H.n; i++)
        ids |= 1u << H.m[i].sub_id;
    ASSERT_EQ(ids, (1u << 7) | (1u << 8) | (1u << 9));
    /* Same owner, same filter: replaced, with the new options. */
    ASSERT_EQ(router_subscribe(r, "a/b", 3, OWNER(1), 0x2a, 70, &existed), 0);
    ASSERT_EQ(existed, 1);
    ASSERT_EQ(router_count(r), 3);
    ASSERT_EQ(match(r, "a/b/c"), 1);
    ASSERT_EQ(match(r, "a/b"), 3);
    int seen = 0;
    for (size_t i = 0; i < H.n; i++)
        if (H.m[i].sub_id == 70 && H.m[i].options == 0x2a)
            seen++;
    ASSERT_EQ(seen, 1);
    router_free(r);
}

TEST(invalid_filters)
{
    router_t *r = router_new();
    const char *bad[] = {"", "a/#/b", "a#", "#a", "a/b+", "+a/b", "a/++", "##", "$share/g",
                         "$share//a", "$share/g+/a", "$share/g#/a", "$share/g/", "$share/g/a#"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int existed = -1;
        ASSERT_EQ(router_subscribe(r, bad[i], strlen(bad[i]), OWNER(1), 0, 0, &existed), -EINVAL);
        ASSERT_EQ(existed, 0);
        ASSERT_EQ(unsub(r, bad[i], 1), -ENOENT);
    }
    ASSERT_EQ(router_count(r), 0);
    ASSERT_EQ(router_node_count(r), 1);
    /* "$share" alone is an ordinary first level, and "$share/g/#" is fine. */
    ASSERT_EQ(sub(r, "$share", 1), 0);
    ASSERT_EQ(sub(r, "$share/g/#", 1), 0);
    ASSERT_EQ(match(r, "$share"), 1);
    router_free(r);
}

TEST(unsubscribe_prunes)
{
    router_t *r = router_new();
    ASSERT_EQ(router_node_count(r), 1);
    ASSERT_EQ(sub(r, "a/b/c/d", 1), 0);
    ASSERT_EQ(sub(r, "a/b/+/#", 1), 0);
    ASSERT_EQ(sub(r, "a/b", 2), 0);
    ASSERT_EQ(sub(r, "$share/g/a/b", 3), 0);
    ASSERT_EQ(router_count(r), 4);
    ASSERT_EQ(router_node_count(r), 1 + 6);
    ASSERT_EQ(unsub(r, "a/b/c/d", 2), -ENOENT);
    ASSERT_EQ(unsub(r, "a/b/c", 1), -ENOENT);
    ASSERT_EQ(unsub(r, "x", 1), -ENOENT);
    ASSERT_EQ(unsub(r, "$share/h/a/b", 3), -ENOENT);
    ASSERT_EQ(unsub(r, "a/b", 3), -ENOENT); /* shared, not ordinary */
    ASSERT_EQ(unsub(r, "a/b/c/d", 1), 0);
    ASSERT_EQ(unsub(r, "a/b/c/d", 1), -ENOENT);
    ASSERT_EQ(router_node_count(r), 1 + 4);
    ASSERT_EQ(match(r, "a/b/c/d"), 1);
    ASSERT_EQ(unsub(r, "a/b/+/#", 1), 0);
    ASSERT_EQ(router_node_count(r), 1 + 2);
    ASSERT_EQ(unsub(r, "a/b", 2), 0);
    ASSERT_EQ(router_node_count(r), 1 + 2); /* the group still holds a/b */
    ASSERT_EQ(match(r, "a/b"), 1);
    ASSERT_EQ(unsub(r, "$share/g/a/b", 3), 0);
    ASSERT_EQ(router_count(r), 0);
    ASSERT_EQ(router_node_count(r), 1);
    ASSERT_EQ(match(r, "a/b"), 0);
    router_free(r);
}

/* ---- Shared subscriptions -------------------------------------------------------------------- */

TEST(shared_round_robin)
{
    router_t *r = router_new();
    for (uintptr_t o = 1; o <= 3; o++)
        ASSERT_EQ(sub(r, "$share/g/s/+", o), 0);
    int per[4] = {0};
    for (int i = 0; i < 30; i++) {
        ASSERT_EQ(match(r, "s/x"), 1);
        ASSERT_EQ(H.m[0].shared, 1);
        uintptr_t o = (uintptr_t)H.m[0].owner;
        ASSERT(o >= 1 && o <= 3);
        per[o]++;
    }
    ASSERT(per[1] == 10 && per[2] == 10 && per[3] == 10);
    ASSERT_EQ(match(r, "t/x"), 0);
    router_free(r);
}

TEST(shared_groups)
{
    router_t *r = router_new();
    int existed = -1;
    ASSERT_EQ(sub(r, "$share/g1/s/#", 1), 0);
    ASSERT_EQ(sub(r, "$share/g1/s/#", 2), 0);
    ASSERT_EQ(sub(r, "$share/g2/s/#", 1), 0);
    ASSERT_EQ(sub(r, "$share/g2/s/#", 3), 0);
    ASSERT_EQ(sub(r, "s/#", 1), 0); /* ordinary subscription of a shared member */
    ASSERT_EQ(sub(r, "$share/g1/s/+", 4), 0); /* same group name, other filter: its own group */
    ASSERT_EQ(router_count(r), 6);
    int two = 0, three = 0;
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ(match(r, "s/a"), 4); /* g1 of s/#, g2 of s/#, s/#, g1 of s/+ */
        int shared = 0;
        for (size_t k = 0; k < H.n; k++)
            shared += H.m[k].shared;
        ASSERT_EQ(shared, 3);
        ASSERT_EQ(hits_of(OWNER(1), 0), 1);
        ASSERT_EQ(hits_of(OWNER(4), 1), 1);
        ASSERT(hits_of(OWNER(2), 1) + hits_of(OWNER(1), 1) + hits_of(OWNER(3), 1) == 2);
        two += hits_of(OWNER(2), 1);
        three += hits_of(OWNER(3), 1);
    }
    /* Each two-member group alternates over 10 messages. */
    ASSERT(two == 5 && three == 5);
    /* Re-subscribing a member replaces it; removing members leaves the rest of the group. */
    ASSERT_EQ(router_subscribe(r, "$share/g1/s/#", 13, OWNER(2), 2, 5, &existed), 0);
    ASSERT_EQ(existed, 1);
    ASSERT_EQ(router_count(r), 6);
    ASSERT_EQ(unsub(r, "$share/g1/s/#", 1), 0);
    ASSERT_EQ(unsub(r, "$share/g2/s/#", 3), 0);
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(match(r, "s"), 3); /* g1 -> 2, g2 -> 1, s/# -> 1 */
        ASSERT_EQ(hits_of(OWNER(2), 1), 1);
        ASSERT_EQ(hits_of(OWNER(1), 1), 1);
        ASSERT_EQ(hits_of(OWNER(1), 0), 1);
        for (size_t k = 0; k < H.n; k++)
            if (H.m[k].owner == OWNER(2))
                ASSERT(H.m[k].options == 2 && H.m[k].sub_id == 5);
    }
    router_free(r);
}

/* ---- Large nodes: hashed children and indexed owner sets ------------------------------------- */

TEST(many_children)
{
    enum { N = 3000 };
    router_t *r = router_new();
    char f[32];
    static bool on[N];
    for (int i = 0; i < N; i++) {
        snprintf(f, sizeof f, "k/%d/v", i);
        ASSERT_EQ(sub(r, f, (uintptr_t)i + 1), 0);
        on[i] = true;
    }
    ASSERT_EQ(router_node_count(r), 2 + 2 * N);
    /* Remove a random half, in random order, and check every topic still finds exactly its own. */
    for (int k = 0; k < N; k++) {
        int i = (int)rnd(N);
        snprintf(f, sizeof f, "k/%d/v", i);
        ASSERT_EQ(unsub(r, f, (uintptr_t)i + 1), on[i] ? 0 : -ENOENT);
        on[i] = false;
    }
    for (int i = 0; i < N; i++) {
        snprintf(f, sizeof f, "k/%d/v", i);
        ASSERT_EQ(match(r, f), on[i] ? 1 : 0);
        if (on[i])
            ASSERT(H.m[0].owner == OWNER(i + 1));
    }
    for (int i = 0; i < N; i++) {
        snprintf(f, sizeof f, "k/%d/v", i);
        if (on[i])
            ASSERT_EQ(unsub(r, f, (uintptr_t)i + 1), 0);
    }
    ASSERT_EQ(router_count(r), 0);
    ASSERT_EQ(router_node_count(r), 1);
    router_free(r);
}

TEST(many_owners)
{
    enum { N = 2000 };
    router_t *r = router_new();
    int existed;
    for (uintptr_t o = 1; o <= N; o++)
        ASSERT_EQ(sub(r, "x/#", o), 0);
    for (uintptr_t o = 1; o <= N; o += 2)
        ASSERT_EQ(router_subscribe(r, "x/#", 3, OWNER(o), 2, 0, &existed) == 0 && existed, 1);
    ASSERT_EQ(router_count(r), N);
    for (uintptr_t o = 2; o <= N; o += 2)
        ASSERT_EQ(unsub(r, "x/#", o), 0);
    ASSERT_EQ(unsub(r, "x/#", 2), -ENOENT);
    ASSERT_EQ(match(r, "x/y"), N / 2);
    for (size_t i = 0; i < H.n; i++)
        ASSERT(((uintptr_t)H.m[i].owner & 1) && H.m[i].options == 2);
    for (uintptr_t o = 1; o <= N; o += 2)
        ASSERT_EQ(unsub(r, "x/#", o), 0);
    ASSERT_EQ(router_node_count(r), 1);
    router_free(r);
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

/* The first 6 levels give dense overlaps; all 16 push nodes past the hashed-children threshold. */
static const char *const LEVELS[] = {"a", "b", "", "$s", "cc", "a",  "d0", "d1",
                                     "d2", "d3", "d4", "d5", "$t", "d7", "d8", "d9"};
static uint32_t NLEVELS = 6;

/* A random topic or filter of 1-4 levels; never empty (a single empty level is the empty string,
 * which is neither a valid topic nor a valid filter). */
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

enum { NF = 3000, NT = 3000 };
typedef struct {
    char f[48];      /* the filter after any $share prefix */
    char full[64];   /* what was subscribed */
    int group;       /* shared-group key (same group name and filter), or -1 */
    bool on;
} bf_sub_t;
static bf_sub_t S[NF];

/* Compares one topic's matches with the naive matcher over the subscriptions still on. */
static int check_topic(router_t *r, const char *topic, int *hits, int *ghits)
{
    memset(hits, 0, NF * sizeof *hits);
    memset(ghits, 0, NF * sizeof *ghits);
    size_t n = match(r, topic), want = 0;
    if (n == (size_t)-1 || n > MAX_HITS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = H.m[i].sub_id - 1;
        if (id >= NF || !S[id].on || H.m[i].owner != OWNER(id + 1) ||
            H.m[i].shared != (S[id].group >= 0))
            return -2;
        hits[id]++;
        if (S[id].group >= 0)
            ghits[S[id].group]++;
    }
    for (int i = 0; i < NF; i++) {
        if (!S[i].on)
            continue;
        bool m = naive_match(S[i].f, topic);
        if (S[i].group < 0 && hits[i] != (int)m)
            return -3;
        /* Each matching group delivers exactly one copy (checked once, at its first member). */
        if (S[i].group >= 0 && S[i].group == i && ghits[i] != (int)m)
            return -4;
        if (S[i].group >= 0 && !m && hits[i])
            return -5;
        want += S[i].group < 0 || S[i].group == i ? m : 0;
    }
    return n == want ? 0 : -6;
}

static void bf_subscribe_all(router_t *r)
{
    for (int i = 0; i < NF; i++) {
        char f[sizeof S[i].f];
        rand_name(f, true);
        strcpy(S[i].f, f);
        strcpy(S[i].full, f);
        S[i].group = -1;
        if (rnd(4) == 0) {
            snprintf(S[i].full, sizeof S[i].full, "$share/g%u/%s", rnd(2), f);
            S[i].group = i;
            for (int j = 0; j < i; j++)
                if (S[j].group >= 0 && strcmp(S[j].full, S[i].full) == 0) {
                    S[i].group = S[j].group;
                    break;
                }
        }
        S[i].on = router_subscribe(r, S[i].full, strlen(S[i].full), OWNER(i + 1), 1,
                                   (uint32_t)i + 1, NULL) == 0;
    }
}

static void brute_force(void)
{
    router_t *r = router_new();
    static int hits[NF], ghits[NF];
    static int order[NF];
    char topic[48];
    bf_subscribe_all(r);
    for (int i = 0; i < NF; i++)
        ASSERT(S[i].on);
    ASSERT_EQ(router_count(r), NF);
    for (int t = 0; t < NT; t++) {
        rand_name(topic, false);
        int rc = check_topic(r, topic, hits, ghits);
        if (rc)
            TEST_FAIL_("topic \"%s\": check %d", topic, rc);
    }
    /* Unsubscribe in random order; re-check after each quarter, then expect an empty trie. */
    for (int i = 0; i < NF; i++)
        order[i] = i;
    for (int i = NF - 1; i > 0; i--) {
        int j = (int)rnd((uint32_t)i + 1), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (int k = 0; k < NF; k++) {
        bf_sub_t *s = &S[order[k]];
        ASSERT_EQ(router_unsubscribe(r, s->full, strlen(s->full), OWNER(order[k] + 1)), 0);
        s->on = false;
        /* Keep group keys valid: the first member still on stands for the group. */
        for (int i = 0; i < NF && s->group == order[k]; i++)
            if (S[i].on && S[i].group == order[k]) {
                for (int j = i; j < NF; j++)
                    if (S[j].group == order[k])
                        S[j].group = i;
                break;
            }
        if ((k + 1) % (NF / 4) == 0) {
            for (int t = 0; t < NT / 4; t++) {
                rand_name(topic, false);
                int rc = check_topic(r, topic, hits, ghits);
                if (rc)
                    TEST_FAIL_("after %d unsubscribes, topic \"%s\": check %d", k + 1, topic, rc);
            }
        }
    }
    ASSERT_EQ(router_count(r), 0);
    ASSERT_EQ(router_node_count(r), 1);
    router_free(r);
}

TEST(brute_force_dense)
{
    NLEVELS = 6;
    brute_force();
}

TEST(brute_force_wide)
{
    NLEVELS = sizeof LEVELS / sizeof *LEVELS;
    brute_force();
}

/* ---- Concurrency smoke test ------------------------------------------------------------------ */

enum { STABLE = 5, CHURN_ITERS = 20000 };
static atomic_int stop_flag, bad_count;

static void *reader(void *arg)
{
    router_t *r = arg;
    static _Thread_local hits_t h;
    while (!atomic_load(&stop_flag)) {
        h.n = 0;
        size_t n = router_match(r, "c/b/x", 5, collect, &h);
        /* STABLE fixed subscribers, plus at most 5 churning ones: two owners on each of "c/b/+" and
         * "+/b/x", and one copy for the shared group. */
        if (n != h.n || n < STABLE || n > STABLE + 5)
            atomic_fetch_add(&bad_count, 1);
    }
    return NULL;
}

TEST(concurrent_match_and_churn)
{
    router_t *r = router_new();
    static const char *churn[] = {"c/b/+", "+/b/x", "$share/g/c/#", "c/b/x/y/z", "c/q/#", "d/e"};
    pthread_t t[2];
    for (uintptr_t o = 1; o <= STABLE; o++)
        ASSERT_EQ(sub(r, o & 1 ? "c/b/x" : "c/#", o), 0);
    atomic_store(&stop_flag, 0);
    atomic_store(&bad_count, 0);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, reader, r), 0);
    for (int i = 0; i < CHURN_ITERS; i++) {
        const char *f = churn[i % 6];
        uintptr_t o = 100 + (uintptr_t)(i / 6 % 2);
        if ((i / 12) % 2 == 0)
            sub(r, f, o);
        else
            unsub(r, f, o);
    }
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ASSERT_EQ(atomic_load(&bad_count), 0);
    ASSERT(router_count(r) >= STABLE);
    router_free(r);
}

int main(void)
{
    RUN(exact_match);
    RUN(wildcards);
    RUN(dollar_topics);
    RUN(empty_levels);
    RUN(overlapping_and_replace);
    RUN(invalid_filters);
    RUN(unsubscribe_prunes);
    RUN(shared_round_robin);
    RUN(shared_groups);
    RUN(many_children);
    RUN(many_owners);
    RUN(brute_force_dense);
    RUN(brute_force_wide);
    RUN(concurrent_match_and_churn);
    return test_summary();
}
