/*
 * tests/fuzz/ace_scope_fuzz.c: libFuzzer target for the scope parsers (JSON, CBOR, text), the
 * encoders, and the topic rules.
 *
 * The first byte picks the parser; the rest is its input. Whatever parses must survive a round trip
 * through ace_scope_to_cbor()/ace_scope_parse_cbor() and ace_scope_to_json() unchanged. The input is
 * also split at its first NUL into two filters whose subset answer must be consistent: reflexive for
 * valid filters, and implied by ace_topic_matches() for topic names.
 */
#include "ace/scope.h"

#include <stdlib.h>
#include <string.h>

static int same_scope(const ace_scope_t *a, const ace_scope_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->e[i].len != b->e[i].len || a->e[i].perms != b->e[i].perms ||
            memcmp(a->e[i].filter, b->e[i].filter, a->e[i].len) != 0)
            return 0;
    }
    return 1;
}

static void round_trip(const ace_scope_t *s)
{
    ace_scope_t t;
    uint8_t *cb;
    char *js;
    size_t n;
    if (ace_scope_to_cbor(s, &cb, &n) == 0) {
        if (ace_scope_parse_cbor(cb, n, &t) != 0 || !same_scope(s, &t))
            abort();
        ace_scope_free(&t);
        free(cb);
    }
    if (ace_scope_to_json(s, &js, &n) == 0) {
        if (ace_scope_parse_json(js, n, &t) != 0 || !same_scope(s, &t))
            abort();
        ace_scope_free(&t);
        free(js);
    }
}

static void filters(const char *d, size_t len, const ace_scope_t *s)
{
    const char *nul = memchr(d, '\0', len);
    size_t al = nul ? (size_t)(nul - d) : len;
    const char *b = nul ? nul + 1 : d;
    size_t bl = nul ? len - al - 1 : len;
    int va = ace_filter_valid(d, al), vb = ace_filter_valid(b, bl);
    int sub = ace_filter_subset(d, al, b, bl);
    if (va && !ace_filter_subset(d, al, d, al))
        abort();
    if (sub && !(va && vb))
        abort();
    if (ace_topic_valid(d, al) && ace_topic_matches(b, bl, d, al) != sub)
        abort(); /* for a topic name, subset and match are the same question */
    (void)ace_scope_allows_topic(s, ACE_PERM_PUB, d, al);
    (void)ace_scope_allows_filter(s, ACE_PERM_SUB, d, al);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ace_scope_t s = { NULL, 0 };
    int rc;
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        rc = ace_scope_parse_json((const char *)p, n, &s);
        break;
    case 1:
        rc = ace_scope_parse_cbor(p, n, &s);
        break;
    default:
        rc = ace_scope_parse_text((const char *)p, n, &s);
        break;
    }
    if (rc == 0)
        round_trip(&s);
    else if (s.e || s.n)
        abort(); /* failure must leave the output empty */
    filters((const char *)p, n, &s);
    ace_scope_free(&s);
    return 0;
}
