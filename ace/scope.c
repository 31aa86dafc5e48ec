/*
 * ace/scope.c: AIF-MQTT scope parsing and encoding, MQTT topic-filter validation and matching, and
 * the filter-subset rule used to authorize SUBSCRIBE (RFC 9431 §4, RFC 9237).
 *
 * The subset rule is the delicate part (brokers have got it wrong, e.g. Mosquitto #1589); it is
 * checked against brute-force enumeration in tests/unit/test_ace_scope.c.
 */
#include "ace/scope.h"

#include "ace/b64url.h"
#include "ace/cbor_scan.h"
#include "ace/token.h"

#include <cbor.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 and topic syntax ------------------------------------------------------------------ */

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF) and no U+0000. */
static int utf8_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned cp, min;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0)
            n = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            n = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if (len - i - 1 < n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Splits a topic or filter into '/'-separated levels; "a/" has the levels "a" and "". */
typedef struct {
    const char *s;
    size_t len, pos;
    int done;
} levels_t;

static void levels_init(levels_t *it, const char *s, size_t len)
{
    it->s = s;
    it->len = len;
    it->pos = 0;
    it->done = 0;
}

static int levels_next(levels_t *it, const char **lvl, size_t *n)
{
    if (it->done)
        return 0;
    const char *start = it->s + it->pos;
    const char *slash = memchr(start, '/', it->len - it->pos);
    if (slash) {
        *n = (size_t)(slash - start);
        it->pos += *n + 1;
    } else {
        *n = it->len - it->pos;
        it->pos = it->len;
        it->done = 1;
    }
    *lvl = start;
    return 1;
}

static int is_wild(const char *lvl, size_t n, char w)
{
    return n == 1 && lvl[0] == w;
}

/* The validity checks run on every PUBLISH and every forward. '/', '+', '#' and NUL are ASCII and
 * never part of a multi-byte UTF-8 sequence, so one scan, 8 bytes at a time, says which of them
 * occur and whether any byte is not ASCII; the UTF-8 rules and the wildcard placement are then
 * checked only for the strings that need it. */
enum { HAS_NUL = 1, HAS_WILD = 2, HAS_HIGH = 4 };

#define BYTES_1 0x0101010101010101ull
#define BYTES_80 0x8080808080808080ull

/* Nonzero iff some byte of w is zero (the classic word-at-a-time test: the borrow that sets a high
 * bit can only start at a zero byte). */
static uint64_t zero_byte(uint64_t w)
{
    return (w - BYTES_1) & ~w & BYTES_80;
}

static unsigned scan(const char *s, size_t len)
{
    uint64_t nul = 0, wild = 0, high = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        high |= w & BYTES_80;
        nul |= zero_byte(w);
        wild |= zero_byte(w ^ (BYTES_1 * '+')) | zero_byte(w ^ (BYTES_1 * '#'));
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        high |= c & 0x80u;
        nul |= c == 0;
        wild |= c == '+' || c == '#';
    }
    return (nul ? HAS_NUL : 0u) | (wild ? HAS_WILD : 0u) | (high ? HAS_HIGH : 0u);
}

/* '+' and '#' only as whole levels, '#' only as the last one. */
static int wildcards_placed(const char *f, size_t len)
{
    size_t level = 0; /* start of the current level */
    for (size_t i = 0; i < len; i++) {
        if (f[i] == '/')
            level = i + 1;
        else if ((f[i] == '+' || f[i] == '#') &&
                 (i != level || (i + 1 < len && f[i + 1] != '/') || (f[i] == '#' && i + 1 != len)))
            return 0;
    }
    return 1;
}

int ace_filter_valid(const char *f, size_t len)
{
    if (!f || len == 0 || len > ACE_TOPIC_MAX_LEN)
        return 0;
    unsigned has = scan(f, len);
    return !(has & HAS_NUL) && (!(has & HAS_HIGH) || utf8_ok(f, len)) &&
           (!(has & HAS_WILD) || wildcards_placed(f, len));
}

int ace_topic_valid(const char *topic, size_t len)
{
    if (!topic || len == 0 || len > ACE_TOPIC_MAX_LEN)
        return 0;
    unsigned has = scan(topic, len);
    return !(has & (HAS_NUL | HAS_WILD)) && (!(has & HAS_HIGH) || utf8_ok(topic, len));
}

/* Filter against topic name, both already valid: one walk over the two strings, a level at a time. */
static int match_valid(const char *f, size_t flen, const char *t, size_t tlen)
{
    size_t i = 0, j = 0;
    /* MQTT §4.7.2: a filter starting with a wildcard does not match a '$' topic. */
    if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
        return 0;
    for (;;) {
        /* i and j are at the start of a level */
        if (i < flen && f[i] == '#')
            return 1; /* matches this level, the parent and everything below */
        if (i < flen && f[i] == '+') {
            i++;
            while (j < tlen && t[j] != '/')
                j++;
        } else {
            while (i < flen && j < tlen && f[i] != '/' && f[i] == t[j])
                i++, j++;
            if ((i < flen && f[i] != '/') || (j < tlen && t[j] != '/'))
                return 0;
        }
        if (j == tlen) /* "x/#" also matches "x" */
            return i == flen || (flen - i == 2 && f[i + 1] == '#');
        if (i == flen)
            return 0;
        i++, j++; /* both at a '/' */
    }
}

int ace_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen)
{
    if (!ace_filter_valid(filter, flen) || !ace_topic_valid(topic, tlen))
        return 0;
    return match_valid(filter, flen, topic, tlen);
}

/*
 * inner ⊆ outer, decided level by level. At level i:
 *   outer '#'              : covers whatever inner has left (zero or more levels)  -> 1
 *   inner '#'              : inner also matches the parent topic with i levels, and topics of any
 *                            depth; no '+'/literal-led outer does, except when the parent is the
 *                            empty string, which is not a topic: "#" equals "+/#" and "/#" equals
 *                            "/+/#" (see hash_equals_plus_hash).
 *   outer '+'              : covers a literal or '+' in inner
 *   outer literal          : inner must have the same literal
 *   inner ends, outer not  : 1 only if outer's single remaining level is '#' ("x/#" matches "x")
 *   outer ends, inner not  : 0
 * '$': a first-level wildcard in outer does not match '$' topics, so an inner filter whose first
 * level is a '$' literal is not covered by it. A first-level wildcard in inner excludes '$' topics
 * just the same, so the rest of the walk needs no '$' case.
 */
/* Inner has '#' at level `depth`, outer has (ol, on) there and `rest` after it. Inner's '#' also
 * matches the parent topic (the first `depth` levels), so no '+'/literal outer covers it, unless that
 * parent is the empty string, which is not a topic: at depth 0 ("#"), or at depth 1 after an empty
 * first level ("/#", known by its length 2). Then inner is "one or more further levels", which is
 * exactly what "+/#" at the same place covers. */
static int hash_equals_plus_hash(size_t depth, size_t ilen, levels_t rest, const char *ol, size_t on)
{
    const char *nl;
    size_t nn;
    if (!(depth == 0 || (depth == 1 && ilen == 2)) || !is_wild(ol, on, '+'))
        return 0;
    return levels_next(&rest, &nl, &nn) && is_wild(nl, nn, '#');
}

int ace_filter_subset(const char *inner, size_t ilen, const char *outer, size_t olen)
{
    levels_t ii, oi;
    const char *il, *ol;
    size_t in, on;
    size_t depth = 0;
    if (!ace_filter_valid(inner, ilen) || !ace_filter_valid(outer, olen))
        return 0;
    if ((outer[0] == '+' || outer[0] == '#') && inner[0] == '$')
        return 0;
    levels_init(&ii, inner, ilen);
    levels_init(&oi, outer, olen);
    for (;; depth++) {
        int hi = levels_next(&ii, &il, &in);
        int ho = levels_next(&oi, &ol, &on);
        if (!hi && !ho)
            return 1;
        if (!ho)
            return 0;
        if (is_wild(ol, on, '#'))
            return 1;
        if (!hi)
            return 0; /* outer has a level left that is not '#' */
        if (is_wild(il, in, '#'))
            return hash_equals_plus_hash(depth, ilen, oi, ol, on);
        if (is_wild(ol, on, '+'))
            continue;
        if (is_wild(il, in, '+') || in != on || memcmp(il, ol, in) != 0)
            return 0;
    }
}

/* ---- scope checks ----------------------------------------------------------------------------- */

int ace_scope_allows_topic(const ace_scope_t *s, unsigned perm, const char *topic, size_t len)
{
    if (!s || perm == 0 || !ace_topic_valid(topic, len))
        return 0;
    /* the entries are valid filters (scope_add, and the contract in scope.h): no second check */
    for (size_t i = 0; i < s->n; i++) {
        const ace_scope_entry_t *e = &s->e[i];
        if ((e->perms & perm) == perm && e->len && match_valid(e->filter, e->len, topic, len))
            return 1;
    }
    return 0;
}

int ace_scope_allows_filter(const ace_scope_t *s, unsigned perm, const char *filter, size_t len)
{
    if (!s || perm == 0 || !ace_filter_valid(filter, len))
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        const ace_scope_entry_t *e = &s->e[i];
        if ((e->perms & perm) == perm && ace_filter_subset(filter, len, e->filter, e->len))
            return 1;
    }
    return 0;
}

/* ---- building a scope ------------------------------------------------------------------------- */

void ace_scope_free(ace_scope_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->e[i].filter);
    free(s->e);
    s->e = NULL;
    s->n = 0;
}

/* Adds (filter, perms), merging with an entry for the same filter. perms == 0 only validates. */
static int scope_add(ace_scope_t *s, const char *f, size_t len, unsigned perms)
{
    if (!ace_filter_valid(f, len))
        return ACE_E_MALFORMED;
    if (perms == 0)
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].len == len && memcmp(s->e[i].filter, f, len) == 0) {
            s->e[i].perms |= perms;
            return 0;
        }
    }
    if (s->n >= ACE_SCOPE_MAX_ENTRIES)
        return ACE_E_TOO_LARGE;
    /* Capacity is 4, 8, 16...: grow when n reaches one of them (n is bounded, no overflow). */
    if (s->n == 0 || (s->n >= 4 && (s->n & (s->n - 1)) == 0)) {
        size_t cap = s->n ? s->n * 2 : 4;
        ace_scope_entry_t *ne = realloc(s->e, cap * sizeof *ne);
        if (!ne)
            return ACE_E_NOMEM;
        s->e = ne;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return ACE_E_NOMEM;
    memcpy(copy, f, len);
    copy[len] = '\0';
    s->e[s->n++] = (ace_scope_entry_t){ copy, len, perms };
    return 0;
}

/* AIF permission name -> bit; unknown names grant nothing. */
static unsigned perm_bit(const char *p, size_t n)
{
    if (n == 3 && memcmp(p, "pub", 3) == 0)
        return ACE_PERM_PUB;
    if (n == 3 && memcmp(p, "sub", 3) == 0)
        return ACE_PERM_SUB;
    return 0;
}

/* Every parser builds into a local scope and hands it over only when complete. */
static int scope_finish(int rc, ace_scope_t *tmp, ace_scope_t *out)
{
    if (rc != 0) {
        ace_scope_free(tmp);
        return rc;
    }
    *out = *tmp;
    return 0;
}

/* ---- AIF JSON --------------------------------------------------------------------------------- */

static int json_entry(ace_scope_t *s, const json_t *ent)
{
    const json_t *f, *perms, *p;
    unsigned bits = 0;
    size_t i;
    if (!json_is_array(ent) || json_array_size(ent) != 2)
        return ACE_E_MALFORMED;
    f = json_array_get(ent, 0);
    perms = json_array_get(ent, 1);
    if (!json_is_string(f) || !json_is_array(perms) || json_array_size(perms) == 0)
        return ACE_E_MALFORMED;
    if (json_array_size(perms) > ACE_SCOPE_MAX_PERMS)
        return ACE_E_TOO_LARGE;
    json_array_foreach(perms, i, p) {
        if (!json_is_string(p))
            return ACE_E_MALFORMED;
        bits |= perm_bit(json_string_value(p), json_string_length(p));
    }
    return scope_add(s, json_string_value(f), json_string_length(f), bits);
}

int ace_scope_parse_json(const char *json, size_t len, ace_scope_t *out)
{
    ace_scope_t tmp = { NULL, 0 };
    json_error_t jerr;
    json_t *root, *ent;
    size_t i;
    int rc = 0;
    if (!json || !out)
        return ACE_E_MALFORMED;
    if (len > ACE_SCOPE_MAX_BYTES)
        return ACE_E_TOO_LARGE;
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ACE_E_MALFORMED;
    if (!json_is_array(root))
        rc = ACE_E_MALFORMED;
    else if (json_array_size(root) > ACE_SCOPE_MAX_ENTRIES)
        rc = ACE_E_TOO_LARGE;
    else {
        json_array_foreach(root, i, ent) {
            if ((rc = json_entry(&tmp, ent)) != 0)
                break;
        }
    }
    json_decref(root);
    return scope_finish(rc, &tmp, out);
}

/* ---- AIF CBOR --------------------------------------------------------------------------------- */

/* Reads a definite-length CBOR head: major type, argument and head size. ACE_E_MALFORMED if truncated,
 * indefinite, or a reserved additional-information value. */
static int cbor_head(const uint8_t *b, size_t len, unsigned *mt, uint64_t *arg, size_t *hlen)
{
    unsigned ai;
    size_t n;
    if (len == 0)
        return ACE_E_MALFORMED;
    *mt = b[0] >> 5;
    ai = b[0] & 0x1F;
    if (ai < 24) {
        *arg = ai;
        *hlen = 1;
        return 0;
    }
    if (ai > 27)
        return ACE_E_MALFORMED;
    n = (size_t)1 << (ai - 24);
    if (len - 1 < n)
        return ACE_E_MALFORMED;
    *arg = 0;
    for (size_t i = 0; i < n; i++)
        *arg = (*arg << 8) | b[1 + i];
    *hlen = 1 + n;
    return 0;
}

static int cbor_text(const cbor_item_t *it, const char **p, size_t *n)
{
    if (!cbor_isa_string(it) || !cbor_string_is_definite(it))
        return ACE_E_MALFORMED;
    *p = (const char *)cbor_string_handle(it);
    *n = cbor_string_length(it);
    if (!*p && *n == 0)
        *p = "";
    return *p ? 0 : ACE_E_MALFORMED;
}

static int cbor_entry(ace_scope_t *s, const cbor_item_t *ent)
{
    cbor_item_t **pair, **perms;
    const char *f, *p;
    size_t flen, plen, np;
    unsigned bits = 0;
    if (!cbor_isa_array(ent) || cbor_array_size(ent) != 2)
        return ACE_E_MALFORMED;
    pair = cbor_array_handle(ent);
    if (cbor_text(pair[0], &f, &flen) != 0 || !cbor_isa_array(pair[1]))
        return ACE_E_MALFORMED;
    np = cbor_array_size(pair[1]);
    if (np == 0)
        return ACE_E_MALFORMED;
    if (np > ACE_SCOPE_MAX_PERMS)
        return ACE_E_TOO_LARGE;
    perms = cbor_array_handle(pair[1]);
    for (size_t i = 0; i < np; i++) {
        if (cbor_text(perms[i], &p, &plen) != 0)
            return ACE_E_MALFORMED;
        bits |= perm_bit(p, plen);
    }
    return scope_add(s, f, flen, bits);
}

/* Parses a bare AIF array: the count check and the pre-scan (definite lengths only, nesting array ->
 * entry -> permissions, every count within the bytes left) come before libcbor allocates anything. */
static int cbor_array(const uint8_t *b, size_t len, ace_scope_t *out)
{
    const ace_cbor_limits_t lim = { 3, ACE_SCOPE_MAX_BYTES };
    ace_scope_t tmp = { NULL, 0 };
    cbor_item_t *root;
    unsigned mt;
    uint64_t n;
    size_t hlen;
    int rc = 0;
    if (cbor_head(b, len, &mt, &n, &hlen) != 0 || mt != CBOR_TYPE_ARRAY)
        return ACE_E_MALFORMED;
    if (n > ACE_SCOPE_MAX_ENTRIES)
        return ACE_E_TOO_LARGE;
    root = ace_cbor_load(b, len, &lim, &rc);
    if (!root)
        return rc;
    if (!cbor_isa_array(root))
        rc = ACE_E_MALFORMED;
    else {
        cbor_item_t **ents = cbor_array_handle(root);
        for (size_t i = 0; i < cbor_array_size(root) && rc == 0; i++)
            rc = cbor_entry(&tmp, ents[i]);
    }
    cbor_decref(&root);
    return scope_finish(rc, &tmp, out);
}

int ace_scope_parse_cbor(const uint8_t *cbor, size_t len, ace_scope_t *out)
{
    unsigned mt;
    uint64_t n;
    size_t hlen;
    if (!cbor || !out)
        return ACE_E_MALFORMED;
    if (len > ACE_SCOPE_MAX_BYTES)
        return ACE_E_TOO_LARGE;
    if (len == 0)
        return ACE_E_MALFORMED;
    if ((cbor[0] >> 5) == CBOR_TYPE_ARRAY)
        return cbor_array(cbor, len, out);
    /* A byte string wrapping the array, or a text string holding JSON or the legacy form. */
    if (cbor_head(cbor, len, &mt, &n, &hlen) != 0)
        return ACE_E_MALFORMED;
    if ((mt != CBOR_TYPE_BYTESTRING && mt != CBOR_TYPE_STRING) || n != len - hlen)
        return ACE_E_MALFORMED;
    if (mt == CBOR_TYPE_STRING)
        return ace_scope_parse_text((const char *)cbor + hlen, (size_t)n, out);
    return cbor_array(cbor + hlen, (size_t)n, out);
}

/* ---- text: AIF JSON or the legacy form ---------------------------------------------------------- */

static int legacy_word(ace_scope_t *s, const char *w, size_t n)
{
    static const struct {
        const char *prefix;
        size_t len;
        unsigned perm;
    } words[] = { { "publish_", 8, ACE_PERM_PUB }, { "subscribe_", 10, ACE_PERM_SUB } };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (n > words[i].len && memcmp(w, words[i].prefix, words[i].len) == 0)
            return scope_add(s, w + words[i].len, n - words[i].len, words[i].perm);
    }
    return 0; /* another scope word: grants nothing here */
}

/* A JWT scope may be the AIF JSON text in base64url (RFC 9431 §4); such text starts with 'W' ('['),
 * which no legacy word does. */
static int parse_b64_json(const char *s, size_t len, ace_scope_t *out)
{
    size_t n;
    int rc;
    char *buf = malloc(ACE_B64URL_DEC_LEN(len));
    if (!buf)
        return ACE_E_NOMEM;
    if (ace_b64url_decode(s, len, (uint8_t *)buf, ACE_B64URL_DEC_LEN(len), &n) != 0 || n == 0 ||
        buf[0] != '[')
        rc = ACE_E_MALFORMED;
    else
        rc = ace_scope_parse_json(buf, n, out);
    free(buf);
    return rc;
}

int ace_scope_parse_text(const char *s, size_t len, ace_scope_t *out)
{
    ace_scope_t tmp = { NULL, 0 };
    size_t i = 0;
    int rc = 0;
    if (!s || !out)
        return ACE_E_MALFORMED;
    if (len > ACE_SCOPE_MAX_BYTES)
        return ACE_E_TOO_LARGE;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    if (i < len && s[i] == '[')
        return ace_scope_parse_json(s, len, out);
    if (len > 0 && s[0] == 'W' && !memchr(s, ' ', len))
        return parse_b64_json(s, len, out);
    if (!utf8_ok(s, len))
        return ACE_E_MALFORMED;
    while (i < len && rc == 0) {
        size_t start;
        while (i < len && s[i] == ' ')
            i++;
        start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (i > start)
            rc = legacy_word(&tmp, s + start, i - start);
    }
    return scope_finish(rc, &tmp, out);
}

int ace_scope_parse_claim(int kind, const uint8_t *p, size_t len, ace_scope_t *out)
{
    if (!out || (!p && len))
        return ACE_E_ARG;
    switch (kind) {
    case ACE_SCOPE_NONE:
        out->e = NULL;
        out->n = 0;
        return 0;
    case ACE_SCOPE_BSTR:
    case ACE_SCOPE_CBOR_ARRAY:
        return ace_scope_parse_cbor(p, len, out);
    case ACE_SCOPE_TSTR:
        return ace_scope_parse_text((const char *)p, len, out);
    case ACE_SCOPE_JSON_ARRAY:
        return ace_scope_parse_json((const char *)p, len, out);
    default:
        return ACE_E_ARG;
    }
}

/* ---- encoders ----------------------------------------------------------------------------------- */

static cbor_item_t *cbor_perms(unsigned perms)
{
    cbor_item_t *a = cbor_new_definite_array(2);
    if (!a)
        return NULL;
    if (((perms & ACE_PERM_PUB) && !cbor_array_push(a, cbor_move(cbor_build_string("pub")))) ||
        ((perms & ACE_PERM_SUB) && !cbor_array_push(a, cbor_move(cbor_build_string("sub"))))) {
        cbor_decref(&a);
        return NULL;
    }
    return a;
}

int ace_scope_to_cbor(const ace_scope_t *s, uint8_t **out, size_t *len)
{
    cbor_item_t *root;
    unsigned char *buf = NULL;
    size_t cap = 0, n;
    int ok = 1;
    if (!s || !out || !len)
        return ACE_E_MALFORMED;
    root = cbor_new_definite_array(s->n);
    if (!root)
        return ACE_E_NOMEM;
    for (size_t i = 0; i < s->n && ok; i++) {
        cbor_item_t *ent = cbor_new_definite_array(2);
        cbor_item_t *f = cbor_build_stringn(s->e[i].filter, s->e[i].len);
        cbor_item_t *p = cbor_perms(s->e[i].perms);
        ok = ent && f && p && cbor_array_push(ent, f) && cbor_array_push(ent, p) &&
             cbor_array_push(root, ent);
        if (f)
            cbor_decref(&f);
        if (p)
            cbor_decref(&p);
        if (ent)
            cbor_decref(&ent);
    }
    n = ok ? cbor_serialize_alloc(root, &buf, &cap) : 0;
    cbor_decref(&root);
    if (n == 0) {
        free(buf);
        return ACE_E_NOMEM;
    }
    *out = buf;
    *len = n;
    return 0;
}

int ace_scope_to_json(const ace_scope_t *s, char **out, size_t *len)
{
    json_t *root;
    char *text;
    int rc = 0;
    if (!s || !out || !len)
        return ACE_E_MALFORMED;
    root = json_array();
    for (size_t i = 0; root && i < s->n && rc == 0; i++) {
        json_t *p = json_array();
        if (p && (s->e[i].perms & ACE_PERM_PUB))
            rc |= json_array_append_new(p, json_string("pub"));
        if (p && (s->e[i].perms & ACE_PERM_SUB))
            rc |= json_array_append_new(p, json_string("sub"));
        rc |= json_array_append_new(root,
                                    json_pack("[s#o]", s->e[i].filter, (int)s->e[i].len, p));
    }
    text = (root && rc == 0) ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text)
        return ACE_E_NOMEM;
    *out = text;
    *len = strlen(text);
    return 0;
}
