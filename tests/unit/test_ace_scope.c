/*
 * tests/unit/test_ace_scope.c: AIF-MQTT scope parsing in every encoding, malformed scopes, topic
 * matching, and the filter-subset rule checked exhaustively against a naive reference matcher.
 */
#include "ace/scope.h"
#include "ace/token.h"
#include "tests/unit/test.h"

#include <stdint.h>
#include <stdlib.h>

/* RFC 9431 §4 example scope, as printed there. */
static const char rfc_json[] =
    "[[\"topic1\", [\"pub\",\"sub\"]], [\"topic2/#\",[\"pub\"]], [\"+/topic3\",[\"sub\"]]]";
/* The same scope in CBOR (48 bytes). */
static const uint8_t rfc_cbor[] = {
    0x83, 0x82, 0x66, 't', 'o', 'p', 'i', 'c', '1', 0x82, 0x63, 'p', 'u', 'b', 0x63, 's', 'u', 'b',
    0x82, 0x68, 't', 'o', 'p', 'i', 'c', '2', '/', '#', 0x81, 0x63, 'p', 'u', 'b',
    0x82, 0x68, '+', '/', 't', 'o', 'p', 'i', 'c', '3', 0x81, 0x63, 's', 'u', 'b'
};

static int check_rfc_scope(const ace_scope_t *s)
{
    return s->n == 3 && strcmp(s->e[0].filter, "topic1") == 0 &&
           s->e[0].perms == (ACE_PERM_PUB | ACE_PERM_SUB) && strcmp(s->e[1].filter, "topic2/#") == 0 &&
           s->e[1].perms == ACE_PERM_PUB && strcmp(s->e[2].filter, "+/topic3") == 0 &&
           s->e[2].perms == ACE_PERM_SUB;
}

#define ALLOWS_T(s, p, t) ace_scope_allows_topic((s), (p), (t), strlen(t))
#define ALLOWS_F(s, p, f) ace_scope_allows_filter((s), (p), (f), strlen(f))
#define SUBSET(a, b) ace_filter_subset((a), strlen(a), (b), strlen(b))

TEST(rfc_example_json)
{
    ace_scope_t s;
    ASSERT_EQ(ace_scope_parse_json(rfc_json, strlen(rfc_json), &s), 0);
    ASSERT(check_rfc_scope(&s));
    ASSERT(ALLOWS_T(&s, ACE_PERM_PUB, "topic1"));
    ASSERT(ALLOWS_T(&s, ACE_PERM_SUB, "topic1"));
    ASSERT(ALLOWS_T(&s, ACE_PERM_PUB, "topic2/a")); /* the RFC's own example */
    ASSERT(ALLOWS_T(&s, ACE_PERM_PUB, "topic2"));
    ASSERT(!ALLOWS_T(&s, ACE_PERM_SUB, "topic2/a"));
    ASSERT(ALLOWS_T(&s, ACE_PERM_SUB, "x/topic3"));
    ASSERT(!ALLOWS_T(&s, ACE_PERM_SUB, "$SYS/topic3"));
    ASSERT(!ALLOWS_T(&s, ACE_PERM_PUB, "x/topic3"));
    ASSERT(!ALLOWS_T(&s, ACE_PERM_PUB | ACE_PERM_SUB, "topic2/a"));
    ASSERT(ALLOWS_F(&s, ACE_PERM_SUB, "+/topic3"));
    ASSERT(ALLOWS_F(&s, ACE_PERM_SUB, "a/topic3"));
    ASSERT(!ALLOWS_F(&s, ACE_PERM_SUB, "#"));
    ASSERT(!ALLOWS_F(&s, ACE_PERM_SUB, "topic2/#"));
    ASSERT(ALLOWS_F(&s, ACE_PERM_PUB, "topic2/+/x"));
    ASSERT(!ALLOWS_F(&s, ACE_PERM_SUB, "topic1/#"));
    ASSERT(!ALLOWS_T(&s, ACE_PERM_PUB, "topic2/+")); /* a filter is not a topic name */
    ace_scope_free(&s);
    ace_scope_free(&s); /* idempotent */
}

TEST(rfc_example_cbor_and_bstr)
{
    ace_scope_t s;
    uint8_t wrapped[2 + sizeof rfc_cbor];
    ASSERT_EQ(sizeof rfc_cbor, 48);
    ASSERT_EQ(ace_scope_parse_cbor(rfc_cbor, sizeof rfc_cbor, &s), 0);
    ASSERT(check_rfc_scope(&s));
    ace_scope_free(&s);
    wrapped[0] = 0x58;
    wrapped[1] = sizeof rfc_cbor;
    memcpy(wrapped + 2, rfc_cbor, sizeof rfc_cbor);
    ASSERT_EQ(ace_scope_parse_cbor(wrapped, sizeof wrapped, &s), 0);
    ASSERT(check_rfc_scope(&s));
    ace_scope_free(&s);
    /* Wrapper length must match exactly. */
    wrapped[1]--;
    ASSERT_EQ(ace_scope_parse_cbor(wrapped, sizeof wrapped, &s), ACE_E_MALFORMED);
}

TEST(rfc_example_tstr_and_legacy)
{
    ace_scope_t s;
    uint8_t tstr[2 + sizeof rfc_json];
    const char *legacy = "publish_topic1 subscribe_topic1  publish_topic2/# subscribe_+/topic3";
    size_t jl = strlen(rfc_json);
    tstr[0] = 0x78;
    tstr[1] = (uint8_t)jl;
    memcpy(tstr + 2, rfc_json, jl);
    ASSERT_EQ(ace_scope_parse_cbor(tstr, 2 + jl, &s), 0); /* CBOR tstr holding AIF JSON */
    ASSERT(check_rfc_scope(&s));
    ace_scope_free(&s);
    ASSERT_EQ(ace_scope_parse_text(rfc_json, jl, &s), 0);
    ASSERT(check_rfc_scope(&s));
    ace_scope_free(&s);
    ASSERT_EQ(ace_scope_parse_text(legacy, strlen(legacy), &s), 0);
    ASSERT(check_rfc_scope(&s)); /* same filters merge into one entry */
    ace_scope_free(&s);
    ASSERT_EQ(ace_scope_parse_text("openid publish_a", 16, &s), 0); /* unknown word: nothing */
    ASSERT_EQ(s.n, 1);
    ace_scope_free(&s);
    ASSERT_EQ(ace_scope_parse_text("", 0, &s), 0);
    ASSERT_EQ(s.n, 0);
    ASSERT_EQ(ace_scope_parse_text("publish_a/#/b", 13, &s), ACE_E_MALFORMED);
    ASSERT_EQ(ace_scope_parse_text("publish_a\xC0\x80", 11, &s), ACE_E_MALFORMED);
}

TEST(jwt_base64url_and_claim_kinds)
{
    /* RFC 9431 §4: a JWT carries the AIF JSON text base64url-encoded (of the compact example). */
    static const char b64[] = "W1sidG9waWMxIixbInB1YiIsInN1YiJdXSxbInRvcGljMi8jIixbInB1YiJdXSxbIisvdG9w"
                              "aWMzIixbInN1YiJdXV0";
    uint8_t wrapped[2 + sizeof rfc_cbor] = { 0x58, sizeof rfc_cbor };
    ace_scope_t s;
    ASSERT_EQ(ace_scope_parse_text(b64, strlen(b64), &s), 0);
    ASSERT(check_rfc_scope(&s));
    ace_scope_free(&s);
    ASSERT_EQ(ace_scope_parse_text("W1tdXQ", 6, &s), ACE_E_MALFORMED); /* "[[]]" */
    ASSERT_EQ(ace_scope_parse_text("W1s!", 4, &s), ACE_E_MALFORMED);
    ASSERT_EQ(ace_scope_parse_claim(ACE_SCOPE_BSTR, rfc_cbor, sizeof rfc_cbor, &s), 0);
    ASSERT(check_rfc_scope(&s));
    ace_scope_free(&s);
    memcpy(wrapped + 2, rfc_cbor, sizeof rfc_cbor);
    ASSERT_EQ(ace_scope_parse_claim(ACE_SCOPE_CBOR_ARRAY, wrapped, sizeof wrapped, &s), 0);
    ASSERT(check_rfc_scope(&s));
    ace_scope_free(&s);
    ASSERT_EQ(ace_scope_parse_claim(ACE_SCOPE_TSTR, (const uint8_t *)b64, strlen(b64), &s), 0);
    ace_scope_free(&s);
    ASSERT_EQ(ace_scope_parse_claim(ACE_SCOPE_JSON_ARRAY, (const uint8_t *)rfc_json,
                                    strlen(rfc_json), &s), 0);
    ace_scope_free(&s);
    ASSERT_EQ(ace_scope_parse_claim(ACE_SCOPE_NONE, NULL, 0, &s), 0);
    ASSERT_EQ(s.n, 0);
    ASSERT_EQ(ace_scope_parse_claim(99, rfc_cbor, 1, &s), ACE_E_ARG);
}

TEST(round_trip_encoders)
{
    ace_scope_t s, t;
    uint8_t *cb;
    char *js;
    size_t n;
    ASSERT_EQ(ace_scope_parse_json(rfc_json, strlen(rfc_json), &s), 0);
    ASSERT_EQ(ace_scope_to_cbor(&s, &cb, &n), 0);
    ASSERT_EQ(n, sizeof rfc_cbor);
    ASSERT_MEM_EQ(cb, rfc_cbor, n);
    free(cb);
    ASSERT_EQ(ace_scope_to_json(&s, &js, &n), 0);
    ASSERT_STR_EQ(js, "[[\"topic1\",[\"pub\",\"sub\"]],[\"topic2/#\",[\"pub\"]],"
                      "[\"+/topic3\",[\"sub\"]]]");
    ASSERT_EQ(n, 68);
    ASSERT_EQ(ace_scope_parse_json(js, n, &t), 0);
    ASSERT(check_rfc_scope(&t));
    free(js);
    ace_scope_free(&t);
    ace_scope_free(&s);
    s.e = NULL;
    s.n = 0;
    ASSERT_EQ(ace_scope_to_cbor(&s, &cb, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(cb[0], 0x80);
    free(cb);
}

TEST(permissions)
{
    ace_scope_t s;
    const char *j = "[[\"a\",[\"pub\",\"admin\"]],[\"b\",[\"rd\"]],[\"c\",[\"sub\",\"sub\"]]]";
    ASSERT_EQ(ace_scope_parse_json(j, strlen(j), &s), 0);
    ASSERT_EQ(s.n, 2); /* "b" grants nothing and is dropped */
    ASSERT(ALLOWS_T(&s, ACE_PERM_PUB, "a"));
    ASSERT(!ALLOWS_T(&s, ACE_PERM_SUB, "a"));
    ASSERT(!ALLOWS_T(&s, ACE_PERM_PUB, "b"));
    ASSERT(!ALLOWS_T(&s, ACE_PERM_SUB, "b"));
    ASSERT(ALLOWS_T(&s, ACE_PERM_SUB, "c"));
    ASSERT(!ALLOWS_T(&s, 0, "c"));
    ace_scope_free(&s);
    ASSERT_EQ(ace_scope_parse_json("[]", 2, &s), 0);
    ASSERT_EQ(s.n, 0);
    ASSERT(!ALLOWS_T(&s, ACE_PERM_PUB, "a"));
    ASSERT(!ALLOWS_F(&s, ACE_PERM_SUB, "#"));
}

TEST(malformed_json)
{
    static const char *bad[] = {
        "{}", "\"a\"", "[[\"a\"]]", "[[\"a\",[]]]", "[[\"a\",[\"pub\",1]]]", "[[1,[\"pub\"]]]",
        "[[\"a/#/b\",[\"pub\"]]]", "[[\"\",[\"pub\"]]]", "[[\"a+\",[\"sub\"]]]", "[[\"a\",\"pub\"]]",
        "[[\"a\",[\"pub\"],1]]", "[[\"a\",[\"pub\"]]", "[[\"a\",[\"pub\"]]]x",
        "[[\"a\\u0000b\",[\"pub\"]]]",
        "[[\"a\",[\"pub\",\"pub\",\"pub\",\"pub\",\"pub\",\"pub\",\"pub\",\"pub\",\"pub\"]]]", "",
    };
    ace_scope_t s = { NULL, 0 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = ace_scope_parse_json(bad[i], strlen(bad[i]), &s);
        if (rc >= 0)
            TEST_FAIL_("accepted %s", bad[i]);
        ASSERT(s.e == NULL && s.n == 0);
    }
}

TEST(too_many_entries)
{
    ace_scope_t s;
    size_t cap = 20 * (ACE_SCOPE_MAX_ENTRIES + 1) + 8, n = 0;
    char *j = malloc(cap);
    uint8_t *c = malloc(cap);
    ASSERT(j && c);
    j[n++] = '[';
    for (unsigned i = 0; i <= ACE_SCOPE_MAX_ENTRIES; i++)
        n += (size_t)snprintf(j + n, cap - n, "%s[\"t%u\",[\"pub\"]]", i ? "," : "", i);
    j[n++] = ']';
    ASSERT_EQ(ace_scope_parse_json(j, n, &s), ACE_E_TOO_LARGE);
    /* The same in CBOR: 257 entries, each [ "tNNN", ["pub"] ]. */
    n = 0;
    c[n++] = 0x99, c[n++] = 0x01, c[n++] = 0x01;
    for (unsigned i = 0; i <= ACE_SCOPE_MAX_ENTRIES; i++) {
        c[n++] = 0x82, c[n++] = 0x64;
        n += (size_t)snprintf((char *)c + n, 5, "t%03u", i);
        c[n++] = 0x81, c[n++] = 0x63, c[n++] = 'p', c[n++] = 'u', c[n++] = 'b';
    }
    ASSERT_EQ(ace_scope_parse_cbor(c, n, &s), ACE_E_TOO_LARGE);
    /* Exactly the limit is fine. */
    c[2] = 0x00;
    ASSERT_EQ(ace_scope_parse_cbor(c, n - 11, &s), 0);
    ASSERT_EQ(s.n, ACE_SCOPE_MAX_ENTRIES);
    ace_scope_free(&s);
    free(j);
    free(c);
}

TEST(malformed_cbor)
{
    static const struct {
        const char *hex_desc;
        uint8_t b[16];
        size_t n;
    } bad[] = {
        { "array of 2^28", { 0x9A, 0x10, 0x00, 0x00, 0x00, 0x01 }, 6 },
        { "nested huge", { 0x81, 0x9A, 0x10, 0x00, 0x00, 0x00, 0x9A, 0x10 }, 8 },
        { "huge bstr wrapper", { 0x5A, 0xFF, 0xFF, 0xFF, 0xFF, 0x80 }, 6 },
        { "map", { 0xA0 }, 1 },
        { "int", { 0x01 }, 1 },
        { "filter is int", { 0x81, 0x82, 0x01, 0x81, 0x63, 'p', 'u', 'b' }, 8 },
        { "perms not array", { 0x81, 0x82, 0x61, 'a', 0x63, 'p', 'u', 'b' }, 8 },
        { "perm is int", { 0x81, 0x82, 0x61, 'a', 0x81, 0x01 }, 6 },
        { "empty perms", { 0x81, 0x82, 0x61, 'a', 0x80 }, 5 },
        { "entry of 3", { 0x81, 0x83, 0x61, 'a', 0x80, 0x80 }, 6 },
        { "bad filter", { 0x81, 0x82, 0x62, '#', 'a', 0x81, 0x63, 'p', 'u', 'b' }, 10 },
        { "trailing byte", { 0x80, 0x00 }, 2 },
        { "truncated", { 0x81, 0x82, 0x61 }, 3 },
        { "tagged", { 0xC6, 0x80 }, 2 },
        { "indef filter", { 0x81, 0x82, 0x7F, 0x61, 'a', 0xFF, 0x81, 0x63, 'p', 'u', 'b' }, 11 },
        { "bstr in bstr", { 0x42, 0x41, 0x80 }, 3 },
        { "empty", { 0 }, 0 },
        { "bad utf8", { 0x81, 0x82, 0x61, 0xFF, 0x81, 0x63, 'p', 'u', 'b' }, 9 },
    };
    ace_scope_t s = { NULL, 0 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ace_scope_parse_cbor(bad[i].b, bad[i].n, &s) >= 0)
            TEST_FAIL_("accepted %s", bad[i].hex_desc);
        ASSERT(s.e == NULL && s.n == 0);
    }
    /* Indefinite lengths are refused by the pre-scan, the outer array included. */
    static const uint8_t indef[] = { 0x9F, 0x82, 0x61, 'a', 0x81, 0x63, 's', 'u', 'b', 0xFF };
    ASSERT(ace_scope_parse_cbor(indef, sizeof indef, &s) < 0);
    /* Nesting deeper than AIF needs. */
    static const uint8_t deep[] = { 0x81, 0x82, 0x61, 'a', 0x81, 0x81, 0x63, 's', 'u', 'b' };
    ASSERT(ace_scope_parse_cbor(deep, sizeof deep, &s) < 0);
}

TEST(filter_validity)
{
    static const char *good[] = { "a", "#", "+", "/", "a/", "+/+", "a/+/#", "$SYS/#", "a//b", "é/x" };
    static const char *badf[] = { "", "a#", "#/a", "a/#/", "++", "a/b+", "+a", "a/##" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ASSERT(ace_filter_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof badf / sizeof badf[0]; i++)
        ASSERT(!ace_filter_valid(badf[i], strlen(badf[i])));
    ASSERT(!ace_filter_valid("a\0b", 3));
    ASSERT(!ace_filter_valid("\xED\xA0\x80", 3)); /* surrogate */
    ASSERT(ace_topic_valid("a/b", 3));
    ASSERT(!ace_topic_valid("a/+", 3));
    ASSERT(!ace_topic_valid("#", 1));
}

TEST(subset_known_cases)
{
    ASSERT(SUBSET("a/+/c", "a/#"));
    ASSERT(!SUBSET("a/#", "a/+/#"));
    ASSERT(SUBSET("a/+", "a/+"));
    ASSERT(SUBSET("a/b", "a/+"));
    ASSERT(!SUBSET("+/b", "a/b"));
    ASSERT(SUBSET("#", "#"));
    ASSERT(!SUBSET("$SYS/x", "#"));
    ASSERT(!SUBSET("$SYS/#", "#"));
    ASSERT(!SUBSET("$SYS/x", "+/x"));
    ASSERT(SUBSET("$SYS/x", "$SYS/+"));
    ASSERT(SUBSET("+/x", "#"));
    ASSERT(SUBSET("#", "+/#"));
    ASSERT(SUBSET("+/#", "#"));
    ASSERT(SUBSET("/#", "/+/#"));  /* "" (the parent of "/#") is not a topic name */
    ASSERT(SUBSET("/#", "+/+/#"));
    ASSERT(!SUBSET("a/#", "a/+/#"));
    ASSERT(!SUBSET("+/#", "+/+/#"));
    ASSERT(SUBSET("a", "a/#"));
    ASSERT(!SUBSET("a/#", "a"));
    ASSERT(!SUBSET("a/#", "a/+"));
    ASSERT(!SUBSET("+", "a"));
    ASSERT(SUBSET("a/b/c", "a/b/c"));
    ASSERT(!SUBSET("a/b", "a/b/c"));
    ASSERT(!SUBSET("a//b", "a/+/b/#/"));   /* invalid outer */
    ASSERT(!SUBSET("a/+/", "#/"));         /* invalid outer */
}

/* ---- brute force: every filter of up to 4 levels against a complete topic universe --------------
 * Symbols: 0 "a", 1 "b", 2 "$s", 3 "" (empty level), 4 "+", 5 "#"; topics use 0..3 and 6 "z", a
 * fresh name standing for every other level. Topics of up to 5 levels decide subset exactly. */
#define MAXL 5
static const char *const sym[] = { "a", "b", "$s", "", "+", "#", "z" };

typedef struct {
    int lv[MAXL + 1];
    int n;
    char s[32];
} path_t;

static void path_str(path_t *p)
{
    size_t k = 0;
    for (int i = 0; i < p->n; i++)
        k += (size_t)snprintf(p->s + k, sizeof p->s - k, "%s%s", i ? "/" : "", sym[p->lv[i]]);
}

/* Naive matcher over symbol arrays, written independently of ace_topic_matches. */
static int naive_match(const path_t *f, int fi, const path_t *t, int ti)
{
    if (fi == 0 && t->n > 0 && t->lv[0] == 2 && f->n > 0 && (f->lv[0] == 4 || f->lv[0] == 5))
        return 0;
    if (fi == f->n)
        return ti == t->n;
    if (f->lv[fi] == 5)
        return 1;
    if (ti == t->n)
        return 0;
    if (f->lv[fi] != 4 && f->lv[fi] != t->lv[ti])
        return 0;
    return naive_match(f, fi + 1, t, ti + 1);
}

static int enumerate(path_t *out, int max_levels, const int *alpha, int na)
{
    int count = 0;
    for (int n = 1; n <= max_levels; n++) {
        int idx[MAXL + 1] = { 0 };
        for (;;) {
            path_t p = { .n = n };
            int ok = 1;
            for (int i = 0; i < n; i++) {
                p.lv[i] = alpha[idx[i]];
                if (p.lv[i] == 5 && i != n - 1)
                    ok = 0;
            }
            if (n == 1 && p.lv[0] == 3)
                ok = 0; /* "" is neither a topic nor a filter */
            if (ok) {
                path_str(&p);
                out[count++] = p;
            }
            int k = 0;
            while (k < n && ++idx[k] == na)
                idx[k++] = 0;
            if (k == n)
                break;
        }
    }
    return count;
}

TEST(subset_brute_force)
{
    static const int falpha[] = { 0, 1, 2, 3, 4, 5 }, talpha[] = { 0, 1, 2, 3, 6 };
    path_t *F = malloc(sizeof(path_t) * 1600), *T = malloc(sizeof(path_t) * 4000);
    ASSERT(F && T);
    int nf = enumerate(F, 4, falpha, 6), nt = enumerate(T, 5, talpha, 5);
    int words = (nt + 63) / 64;
    uint64_t *bits = calloc((size_t)nf * (size_t)words, sizeof(uint64_t));
    long mismatches = 0, pairs = 0, subsets = 0;
    ASSERT(bits);
    for (int i = 0; i < nf; i++) {
        ASSERT(ace_filter_valid(F[i].s, strlen(F[i].s)));
        for (int j = 0; j < nt; j++) {
            int m = naive_match(&F[i], 0, &T[j], 0);
            if (m)
                bits[(size_t)i * (size_t)words + (size_t)(j / 64)] |= 1ull << (j % 64);
            if (m != ace_topic_matches(F[i].s, strlen(F[i].s), T[j].s, strlen(T[j].s)) &&
                mismatches++ < 5)
                fprintf(stderr, "match mismatch %s %s\n", F[i].s, T[j].s);
            /* the scope check matches without validating its (valid) filters again */
            ace_scope_entry_t e = { F[i].s, strlen(F[i].s), ACE_PERM_PUB };
            ace_scope_t one = { &e, 1 };
            if (m != ALLOWS_T(&one, ACE_PERM_PUB, T[j].s) && mismatches++ < 5)
                fprintf(stderr, "scope mismatch %s %s\n", F[i].s, T[j].s);
        }
    }
    for (int a = 0; a < nf; a++) {
        for (int b = 0; b < nf; b++) {
            const uint64_t *ba = bits + (size_t)a * (size_t)words;
            const uint64_t *bb = bits + (size_t)b * (size_t)words;
            int want = 1;
            for (int w = 0; w < words && want; w++)
                want = (ba[w] & ~bb[w]) == 0;
            int got = ace_filter_subset(F[a].s, strlen(F[a].s), F[b].s, strlen(F[b].s));
            pairs++;
            subsets += want;
            if (got != want && mismatches++ < 10)
                fprintf(stderr, "subset(%s, %s) = %d, want %d\n", F[a].s, F[b].s, got, want);
        }
    }
    printf("brute force: %d filters, %d topics, %ld pairs, %ld subsets\n", nf, nt, pairs, subsets);
    free(bits);
    free(F);
    free(T);
    ASSERT_EQ(mismatches, 0);
    ASSERT_EQ(nf, 935);  /* 5 + 30 + 150 + 750 */
    ASSERT_EQ(nt, 3904); /* 5 + 25 + 125 + 625 + 3125 - 1 */
}

/* Deeper filters (5 levels, topics of up to 6) are too many to pair exhaustively: sample pairs where
 * the outer filter is the inner one with some levels generalized, so that both answers occur. */
static uint32_t rnd_state = 12345;
static int rnd(int n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (int)((rnd_state >> 16) % (uint32_t)n);
}

static void random_filter(path_t *p, const path_t *base)
{
    if (base) {
        *p = *base;
        for (int i = 0; i < p->n; i++) {
            int r = rnd(6);
            if (r == 0)
                p->lv[i] = 4;
            else if (r == 1 && p->lv[i] != 5) {
                p->lv[i] = 5, p->n = i + 1;
            } else if (r == 2 && p->lv[i] != 5)
                p->lv[i] = rnd(4);
        }
        if (rnd(4) == 0 && p->n < MAXL && p->lv[p->n - 1] != 5)
            p->lv[p->n++] = rnd(2) ? 5 : 4;
    } else {
        p->n = 1 + rnd(MAXL);
        for (int i = 0; i < p->n; i++)
            p->lv[i] = rnd(i == p->n - 1 ? 6 : 5);
    }
    if (p->n == 1 && p->lv[0] == 3)
        p->lv[0] = 0;
    path_str(p);
}

TEST(subset_random_deep)
{
    static const int talpha[] = { 0, 1, 2, 3, 6 };
    path_t *T = malloc(sizeof(path_t) * 20000);
    ASSERT(T);
    int nt = enumerate(T, MAXL + 1, talpha, 5);
    long mismatches = 0, subsets = 0;
    for (int k = 0; k < 3000; k++) {
        path_t a, b;
        random_filter(&a, NULL);
        random_filter(&b, rnd(3) ? &a : NULL);
        int want = 1;
        for (int j = 0; j < nt && want; j++)
            want = !naive_match(&a, 0, &T[j], 0) || naive_match(&b, 0, &T[j], 0);
        subsets += want;
        if (ace_filter_subset(a.s, strlen(a.s), b.s, strlen(b.s)) != want && mismatches++ < 10)
            fprintf(stderr, "subset(%s, %s) != %d\n", a.s, b.s, want);
    }
    printf("random deep: 3000 pairs over %d topics, %ld subsets\n", nt, subsets);
    free(T);
    ASSERT_EQ(mismatches, 0);
    ASSERT(subsets > 300 && subsets < 2700);
}

int main(void)
{
    RUN(rfc_example_json);
    RUN(rfc_example_cbor_and_bstr);
    RUN(rfc_example_tstr_and_legacy);
    RUN(jwt_base64url_and_claim_kinds);
    RUN(round_trip_encoders);
    RUN(permissions);
    RUN(malformed_json);
    RUN(too_many_entries);
    RUN(malformed_cbor);
    RUN(filter_validity);
    RUN(subset_known_cases);
    RUN(subset_brute_force);
    RUN(subset_random_deep);
    return test_summary();
}
