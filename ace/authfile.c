/*
 * ace/authfile.c: Mosquitto-format password and ACL files (see authfile.h for the formats and the
 * decision rules). PBKDF2-HMAC-SHA512 comes from mbedTLS, salts from libsodium.
 */
#include "ace/authfile.h"

#include "ace/scope.h"
#include "ace/token.h"

#include <mbedtls/base64.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha512.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PW_OUT_LEN 64 /* SHA-512 output, what mosquitto stores */

/* ---- lines ------------------------------------------------------------------------------------ */

/* Walks text line by line; each line comes back with surrounding blanks (and a '\r') removed. */
typedef struct {
    const char *p, *end;
    size_t lineno;
} lines_t;

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int next_line(lines_t *it, const char **line, size_t *n)
{
    if (it->p >= it->end)
        return 0;
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    const char *e = nl ? nl : it->end;
    const char *s = it->p;
    it->p = nl ? nl + 1 : it->end;
    it->lineno++;
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
    *line = s;
    *n = (size_t)(e - s);
    return 1;
}

static int read_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *b = NULL;
    if (!f)
        return ACE_E_IO;
    for (;;) {
        char *nb = realloc(b, cap);
        if (!nb) {
            free(b), fclose(f);
            return ACE_E_NOMEM;
        }
        b = nb;
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= ACE_AUTHFILE_MAX_BYTES) {
            free(b), fclose(f);
            return ACE_E_TOO_LARGE;
        }
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        return ACE_E_IO;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* ---- password hashes ---------------------------------------------------------------------------- */

static int pbkdf2_sha512(const uint8_t *pw, size_t pw_len, const uint8_t *salt, size_t salt_len,
                         unsigned iterations, uint8_t out[PW_OUT_LEN])
{
    mbedtls_md_context_t md;
    int rc;
    mbedtls_md_init(&md);
    rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA512), 1);
    if (rc == 0)
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, pw, pw_len, salt, salt_len, iterations, PW_OUT_LEN, out);
    mbedtls_md_free(&md);
    return rc == 0 ? 0 : ACE_E_NOMEM;
}

int ace_pw_hash(const uint8_t *pw, size_t pw_len, unsigned iterations, char *out, size_t cap)
{
    uint8_t salt[ACE_PW_SALT_LEN], hash[PW_OUT_LEN];
    unsigned char s64[32], h64[96];
    size_t sn, hn;
    int rc, n;
    if ((!pw && pw_len) || !out || iterations == 0 || iterations > ACE_PW_MAX_ITERATIONS)
        return ACE_E_ARG;
    if (sodium_init() < 0)
        return ACE_E_ARG;
    randombytes_buf(salt, sizeof salt);
    rc = pbkdf2_sha512(pw, pw_len, salt, sizeof salt, iterations, hash);
    if (rc == 0 && (mbedtls_base64_encode(s64, sizeof s64, &sn, salt, sizeof salt) != 0 ||
                    mbedtls_base64_encode(h64, sizeof h64, &hn, hash, sizeof hash) != 0))
        rc = ACE_E_NOMEM;
    mbedtls_platform_zeroize(hash, sizeof hash);
    if (rc != 0)
        return rc;
    n = snprintf(out, cap, "$7$%u$%s$%s", iterations, (const char *)s64, (const char *)h64);
    return (n < 0 || (size_t)n >= cap) ? ACE_E_TOO_LARGE : 0;
}

/* Decodes one base64 field of a hash string into out (at most cap bytes). */
static int b64_field(const char *s, size_t n, uint8_t *out, size_t cap, size_t *olen)
{
    if (n == 0 || mbedtls_base64_decode(out, cap, olen, (const unsigned char *)s, n) != 0 || *olen == 0)
        return ACE_E_MALFORMED;
    return 0;
}

/* Splits "$<id>$a$b[$c]" into its fields; returns the number found (at most max). */
static size_t split_dollar(const char *h, size_t len, const char **f, size_t *fl, size_t max)
{
    size_t k = 0, i = 1, start = 1;
    if (len < 1 || h[0] != '$')
        return 0;
    for (; i <= len; i++) {
        if (i == len || h[i] == '$') {
            if (k == max)
                return max + 1;
            f[k] = h + start;
            fl[k++] = i - start;
            start = i + 1;
        }
    }
    return k;
}

static int parse_iterations(const char *s, size_t n, unsigned *it)
{
    unsigned long v = 0;
    if (n == 0 || n > 8)
        return ACE_E_MALFORMED;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return ACE_E_MALFORMED;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > ACE_PW_MAX_ITERATIONS)
        return ACE_E_MALFORMED;
    *it = (unsigned)v;
    return 0;
}

/* Parses a hash string; when `verify`, also computes the candidate from pw and compares. */
static int pw_check(const char *hash, size_t hash_len, const uint8_t *pw, size_t pw_len, int verify)
{
    const char *f[4];
    size_t fl[4], nf = split_dollar(hash, hash_len, f, fl, 4), slen, hlen;
    uint8_t salt[64], want[PW_OUT_LEN], got[PW_OUT_LEN];
    unsigned iterations = 0;
    int rc;
    int v7 = nf == 4 && fl[0] == 1 && f[0][0] == '7';
    int v6 = nf == 3 && fl[0] == 1 && f[0][0] == '6';
    if (!v7 && !v6)
        return ACE_E_MALFORMED;
    if ((v7 && parse_iterations(f[1], fl[1], &iterations) != 0) ||
        b64_field(f[v7 ? 2 : 1], fl[v7 ? 2 : 1], salt, sizeof salt, &slen) != 0 ||
        b64_field(f[v7 ? 3 : 2], fl[v7 ? 3 : 2], want, sizeof want, &hlen) != 0 || hlen != PW_OUT_LEN)
        return ACE_E_MALFORMED;
    if (!verify)
        return 0;
    if (v7) {
        rc = pbkdf2_sha512(pw, pw_len, salt, slen, iterations, got);
    } else {
        mbedtls_sha512_context c;
        mbedtls_sha512_init(&c);
        rc = (mbedtls_sha512_starts_ret(&c, 0) || mbedtls_sha512_update_ret(&c, pw, pw_len) ||
              mbedtls_sha512_update_ret(&c, salt, slen) || mbedtls_sha512_finish_ret(&c, got))
                 ? ACE_E_NOMEM
                 : 0;
        mbedtls_sha512_free(&c);
    }
    if (rc == 0 && mbedtls_ct_memcmp(got, want, PW_OUT_LEN) != 0)
        rc = ACE_E_BAD_SIGNATURE;
    mbedtls_platform_zeroize(got, sizeof got);
    return rc;
}

int ace_pw_verify(const char *hash, size_t hash_len, const uint8_t *pw, size_t pw_len)
{
    if (!hash || (!pw && pw_len))
        return ACE_E_ARG;
    return pw_check(hash, hash_len, pw ? pw : (const uint8_t *)"", pw_len, 1);
}

/* ---- password file ------------------------------------------------------------------------------ */

typedef struct {
    char *user; /* "user" NUL "hash" NUL in one allocation */
    const char *hash;
    size_t hash_len;
} pw_entry_t;

struct ace_pwfile {
    pw_entry_t *e;
    size_t n;
};

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const pw_entry_t *)a)->user, ((const pw_entry_t *)b)->user);
}

void ace_pwfile_free(ace_pwfile_t *pf)
{
    if (!pf)
        return;
    for (size_t i = 0; i < pf->n; i++)
        free(pf->e[i].user);
    free(pf->e);
    free(pf);
}

size_t ace_pwfile_count(const ace_pwfile_t *pf)
{
    return pf ? pf->n : 0;
}

/* One "user:hash" line into pf (capacity already ensured). */
static int pw_line(ace_pwfile_t *pf, const char *l, size_t n)
{
    const char *colon = memchr(l, ':', n);
    size_t ulen, hlen;
    if (!colon || colon == l || memchr(l, '\0', n))
        return ACE_E_MALFORMED;
    ulen = (size_t)(colon - l);
    hlen = n - ulen - 1;
    if (pw_check(colon + 1, hlen, NULL, 0, 0) != 0)
        return ACE_E_MALFORMED;
    char *mem = malloc(n + 1);
    if (!mem)
        return ACE_E_NOMEM;
    memcpy(mem, l, n);
    mem[ulen] = '\0';
    mem[n] = '\0';
    pf->e[pf->n++] = (pw_entry_t){ mem, mem + ulen + 1, hlen };
    return 0;
}

int ace_pwfile_parse(const char *text, size_t len, ace_pwfile_t **out, size_t *err_line)
{
    lines_t it = { text, text + len, 0 };
    const char *l;
    size_t n, lines = 1;
    int rc = 0;
    if ((!text && len) || !out)
        return ACE_E_ARG;
    if (len > ACE_AUTHFILE_MAX_BYTES)
        return ACE_E_TOO_LARGE;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    ace_pwfile_t *pf = calloc(1, sizeof *pf);
    if (!pf || !(pf->e = calloc(lines, sizeof *pf->e))) {
        free(pf);
        return ACE_E_NOMEM;
    }
    while (rc == 0 && next_line(&it, &l, &n)) {
        if (n > 0 && l[0] != '#')
            rc = pw_line(pf, l, n);
    }
    if (rc == 0 && pf->n > 1) {
        qsort(pf->e, pf->n, sizeof *pf->e, cmp_entry);
        for (size_t i = 1; i < pf->n && rc == 0; i++) {
            if (strcmp(pf->e[i - 1].user, pf->e[i].user) == 0)
                rc = ACE_E_MALFORMED, it.lineno = 0; /* duplicate: no single line to blame */
        }
    }
    if (err_line)
        *err_line = rc ? it.lineno : 0;
    if (rc) {
        ace_pwfile_free(pf);
        return rc;
    }
    *out = pf;
    return 0;
}

int ace_pwfile_load(const char *path, ace_pwfile_t **out, size_t *err_line)
{
    char *buf;
    size_t len;
    int rc;
    if (err_line)
        *err_line = 0;
    if (!path || (rc = read_file(path, &buf, &len)) != 0)
        return path ? rc : ACE_E_ARG;
    rc = ace_pwfile_parse(buf, len, out, err_line);
    sodium_memzero(buf, len);
    free(buf);
    return rc;
}

int ace_pwfile_check(const ace_pwfile_t *pf, const char *user, const uint8_t *pw, size_t pw_len)
{
    /* An unknown user costs one hash like a known one: that of the first entry (files normally use
     * one iteration count throughout), or this one for an empty file. */
    static const char dummy[] =
        "$7$101$AAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAAAAAAAAAAAA==";
    pw_entry_t key, *e;
    if (!pf || !user || (!pw && pw_len))
        return ACE_E_ARG;
    key.user = (char *)user;
    e = bsearch(&key, pf->e, pf->n, sizeof *pf->e, cmp_entry);
    if (!e) {
        if (pf->n > 0)
            (void)ace_pw_verify(pf->e[0].hash, pf->e[0].hash_len, pw, pw_len);
        else
            (void)ace_pw_verify(dummy, sizeof dummy - 1, pw, pw_len);
        return ACE_E_BAD_SIGNATURE;
    }
    return ace_pw_verify(e->hash, e->hash_len, pw, pw_len) == 0 ? 0 : ACE_E_BAD_SIGNATURE;
}

/* ---- ACL file ----------------------------------------------------------------------------------- */

typedef struct {
    char *filter; /* for patterns, with %c / %u still in it */
    size_t len;
    unsigned access; /* ACE_ACL_* bits; 0 = deny */
} acl_rule_t;

typedef struct {
    acl_rule_t *r;
    size_t n, cap;
} acl_list_t;

typedef struct {
    char *user;
    acl_list_t rules;
} acl_user_t;

struct ace_acl {
    acl_list_t anon, patterns;
    acl_user_t *users;
    size_t nusers, cap;
};

static void list_free(acl_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->r[i].filter);
    free(l->r);
}

void ace_acl_free(ace_acl_t *acl)
{
    if (!acl)
        return;
    list_free(&acl->anon);
    list_free(&acl->patterns);
    for (size_t i = 0; i < acl->nusers; i++) {
        free(acl->users[i].user);
        list_free(&acl->users[i].rules);
    }
    free(acl->users);
    free(acl);
}

static int grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return ACE_E_NOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

static acl_user_t *find_user(const ace_acl_t *acl, const char *user, size_t n)
{
    for (size_t i = 0; i < acl->nusers; i++) {
        if (strlen(acl->users[i].user) == n && memcmp(acl->users[i].user, user, n) == 0)
            return &acl->users[i];
    }
    return NULL;
}

/* Expands %c and %u. NULL with *rc = 0 when the pattern does not apply (no username for %u, no
 * client id for %c), with *rc < 0 when the value is dangerous or memory ran out. */
static char *expand(const acl_rule_t *r, const char *user, const char *cid, size_t *len, int *rc)
{
    size_t need = 0, k = 0;
    *rc = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *out = pass ? malloc(need + 1) : NULL;
        if (pass && !out) {
            *rc = ACE_E_NOMEM;
            return NULL;
        }
        k = 0;
        for (size_t i = 0; i < r->len; i++) {
            const char *v = NULL;
            char next = i + 1 < r->len ? r->filter[i + 1] : '\0';
            if (r->filter[i] == '%' && (next == 'c' || next == 'u')) {
                v = next == 'c' ? cid : user;
                if (!v)
                    return free(out), NULL;
                if (strpbrk(v, "+#")) {
                    *rc = ACE_E_ARG;
                    return free(out), NULL;
                }
                size_t vl = strlen(v);
                if (pass)
                    memcpy(out + k, v, vl);
                k += vl;
                i++;
            } else {
                if (pass)
                    out[k] = r->filter[i];
                k++;
            }
        }
        if (pass) {
            out[k] = '\0';
            *len = k;
            return out;
        }
        need = k;
    }
    return NULL;
}

/* Parses "[read|write|readwrite|deny] <filter>" (the text after `topic` or `pattern`). */
static int parse_rule(const char *s, size_t n, int pattern, acl_rule_t *r)
{
    static const struct {
        const char *w;
        unsigned access;
    } words[] = { { "read", ACE_ACL_READ }, { "write", ACE_ACL_WRITE },
                  { "readwrite", ACE_ACL_READ | ACE_ACL_WRITE }, { "deny", 0 } };
    r->access = ACE_ACL_READ | ACE_ACL_WRITE;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t wl = strlen(words[i].w);
        if ((n == wl || (n > wl && is_blank(s[wl]))) && memcmp(s, words[i].w, wl) == 0) {
            r->access = words[i].access;
            s += wl, n -= wl;
            while (n > 0 && is_blank(*s))
                s++, n--;
            break;
        }
    }
    if (n == 0 || memchr(s, '\0', n))
        return ACE_E_MALFORMED;
    if (!(r->filter = malloc(n + 1)))
        return ACE_E_NOMEM;
    memcpy(r->filter, s, n);
    r->filter[n] = '\0';
    r->len = n;
    if (pattern) { /* validate with stand-in values */
        size_t xl;
        int rc;
        char *x = expand(r, "u", "c", &xl, &rc);
        int ok = x && ace_filter_valid(x, xl);
        free(x);
        if (!ok)
            return free(r->filter), ACE_E_MALFORMED;
    } else if (!ace_filter_valid(r->filter, n)) {
        return free(r->filter), ACE_E_MALFORMED;
    }
    return 0;
}

static int list_add(acl_list_t *l, const acl_rule_t *r)
{
    if (grow((void **)&l->r, &l->cap, l->n, sizeof *l->r) != 0)
        return ACE_E_NOMEM;
    l->r[l->n++] = *r;
    return 0;
}

/* `user <name>`: finds or adds that user's section and makes it current. */
static int start_user(ace_acl_t *acl, const char *name, size_t n, acl_list_t **cur)
{
    acl_user_t *u = find_user(acl, name, n);
    if (!u) {
        if (n == 0 || memchr(name, '\0', n) ||
            grow((void **)&acl->users, &acl->cap, acl->nusers, sizeof *acl->users) != 0)
            return n == 0 ? ACE_E_MALFORMED : ACE_E_NOMEM;
        u = &acl->users[acl->nusers];
        *u = (acl_user_t){ 0 };
        if (!(u->user = malloc(n + 1)))
            return ACE_E_NOMEM;
        memcpy(u->user, name, n);
        u->user[n] = '\0';
        acl->nusers++;
    }
    *cur = &u->rules;
    return 0;
}

static int acl_line(ace_acl_t *acl, const char *l, size_t n, acl_list_t **cur)
{
    size_t kw = 0, rest;
    acl_rule_t r;
    int rc;
    while (kw < n && !is_blank(l[kw]))
        kw++;
    rest = kw;
    while (rest < n && is_blank(l[rest]))
        rest++;
    if (kw == 4 && memcmp(l, "user", 4) == 0)
        return start_user(acl, l + rest, n - rest, cur);
    int pattern = kw == 7 && memcmp(l, "pattern", 7) == 0;
    if (!pattern && !(kw == 5 && memcmp(l, "topic", 5) == 0))
        return ACE_E_MALFORMED;
    if ((rc = parse_rule(l + rest, n - rest, pattern, &r)) != 0)
        return rc;
    if ((rc = list_add(pattern ? &acl->patterns : *cur, &r)) != 0)
        free(r.filter);
    return rc;
}

int ace_acl_parse(const char *text, size_t len, ace_acl_t **out, size_t *err_line)
{
    lines_t it = { text, text + len, 0 };
    const char *l;
    size_t n;
    int rc = 0;
    if ((!text && len) || !out)
        return ACE_E_ARG;
    if (len > ACE_AUTHFILE_MAX_BYTES)
        return ACE_E_TOO_LARGE;
    ace_acl_t *acl = calloc(1, sizeof *acl);
    if (!acl)
        return ACE_E_NOMEM;
    acl_list_t *cur = &acl->anon;
    while (rc == 0 && next_line(&it, &l, &n)) {
        if (n > 0 && l[0] != '#')
            rc = acl_line(acl, l, n, &cur);
    }
    if (err_line)
        *err_line = rc ? it.lineno : 0;
    if (rc) {
        ace_acl_free(acl);
        return rc;
    }
    *out = acl;
    return 0;
}

int ace_acl_load(const char *path, ace_acl_t **out, size_t *err_line)
{
    char *buf;
    size_t len;
    int rc;
    if (err_line)
        *err_line = 0;
    if (!path || (rc = read_file(path, &buf, &len)) != 0)
        return path ? rc : ACE_E_ARG;
    rc = ace_acl_parse(buf, len, out, err_line);
    free(buf);
    return rc;
}

/* How one rule's filter relates to the request: a topic name, or a filter to subscribe to. */
static int rule_hits(const char *rf, size_t rl, const char *t, size_t tl, int is_filter)
{
    return is_filter ? ace_filter_subset(t, tl, rf, rl) : ace_topic_matches(rf, rl, t, tl);
}

/* Scans one list; sets *deny on a matching deny rule, *allow on a matching rule granting access. */
static int scan_list(const acl_list_t *l, int pattern, const char *user, const char *cid,
                     unsigned access, const char *t, size_t tl, int is_filter, int *allow, int *deny)
{
    for (size_t i = 0; i < l->n; i++) {
        const acl_rule_t *r = &l->r[i];
        const char *f = r->filter;
        size_t fl = r->len;
        char *x = NULL;
        int rc, hit;
        if (r->access != 0 && (r->access & access) != access)
            continue;
        if (pattern) {
            x = expand(r, user, cid, &fl, &rc);
            if (rc != 0)
                return rc; /* dangerous id or name: deny the request */
            if (!x)
                continue;
            f = x;
        }
        hit = rule_hits(f, fl, t, tl, is_filter);
        free(x);
        if (hit && r->access == 0)
            *deny = 1;
        else if (hit)
            *allow = 1;
    }
    return 0;
}

static int acl_decide(const ace_acl_t *acl, const char *user, const char *cid, unsigned access,
                      const char *t, size_t tl, int is_filter)
{
    const acl_list_t *own = &acl->anon;
    int allow = 0, deny = 0;
    if (user) {
        const acl_user_t *u = find_user(acl, user, strlen(user));
        own = u ? &u->rules : NULL;
    }
    if (own && scan_list(own, 0, user, cid, access, t, tl, is_filter, &allow, &deny) != 0)
        return 0;
    if (scan_list(&acl->patterns, 1, user, cid, access, t, tl, is_filter, &allow, &deny) != 0)
        return 0;
    return allow && !deny;
}

int ace_acl_check(const ace_acl_t *acl, const char *username, const char *clientid, unsigned access,
                  const char *topic, size_t len)
{
    if (!acl || !topic || (access != ACE_ACL_READ && access != ACE_ACL_WRITE) ||
        !ace_topic_valid(topic, len))
        return 0;
    return acl_decide(acl, username, clientid, access, topic, len, 0);
}

int ace_acl_check_subscribe(const ace_acl_t *acl, const char *username, const char *clientid,
                            const char *filter, size_t len)
{
    if (!acl || !filter || !ace_filter_valid(filter, len))
        return 0;
    return acl_decide(acl, username, clientid, ACE_ACL_READ, filter, len, 1);
}
