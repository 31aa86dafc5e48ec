/*
 * ace/token_claims.c: turns a verified CWT claims map (RFC 8392 keys, RFC 9200 additions) or JWT
 * claims object into ace_claims_t, applies the validity checks in RFC 9200 §5.10.1.1 order, and holds
 * the small stateful helpers around claims (cnonce comparison, the exi sequence tracker).
 *
 * Type rules are strict: a known claim with the wrong type fails the token (ACE_E_CLAIM) rather than
 * being skipped, and a known claim that appears twice is malformed, so a token means one thing only.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/constant_time.h>
#include <mbedtls/platform_util.h>

#include "ace/b64url.h"
#include "ace/cose.h"
#include "ace/token_int.h"

enum { C_ISS = 1, C_SUB = 2, C_AUD = 3, C_EXP = 4, C_NBF = 5, C_IAT = 6, C_CTI = 7, C_CNF = 8,
       C_SCOPE = 9, C_PROFILE = 38, C_CNONCE = 39, C_EXI = 40 };
#define TIME_LIMIT ((int64_t)1 << 53) /* beyond any sane NumericDate, and exact as a double */

static int copy_text(char *dst, size_t cap, const char *s, size_t len)
{
    if (!s || len >= cap || memchr(s, '\0', len))
        return ACE_E_CLAIM;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

static int copy_bytes(uint8_t *dst, size_t cap, size_t *n, const uint8_t *p, size_t len)
{
    if (!p || len > cap)
        return ACE_E_CLAIM;
    memcpy(dst, p, len);
    *n = len;
    return 0;
}

/* NumericDate: an integer or (RFC 8392 A.7) a floating-point value, truncated toward -inf. */
static int cwt_time(const cbor_item_t *v, int64_t *out)
{
    if (ace_cbor_get_int(v, out) == 0)
        return (*out > -TIME_LIMIT && *out < TIME_LIMIT) ? 0 : ACE_E_CLAIM;
    if (cbor_isa_float_ctrl(v) && !cbor_float_ctrl_is_ctrl(v)) {
        double d = cbor_float_get_float(v);
        if (!isfinite(d) || d <= (double)-TIME_LIMIT || d >= (double)TIME_LIMIT)
            return ACE_E_CLAIM;
        *out = (int64_t)floor(d);
        return 0;
    }
    return ACE_E_CLAIM;
}

static int aud_matches(const ace_trust_t *t, const char *s, size_t len)
{
    return s && len == strlen(t->aud) && memcmp(s, t->aud, len) == 0;
}

static int cwt_aud(const ace_trust_t *t, const cbor_item_t *v, ace_claims_state_t *st)
{
    size_t len;
    const char *s = ace_cbor_tstr(v, &len);
    if (s) {
        st->aud_ok = aud_matches(t, s, len);
        return 0;
    }
    if (!cbor_isa_array(v) || !cbor_array_is_definite(v))
        return ACE_E_CLAIM;
    cbor_item_t **h = cbor_array_handle(v);
    for (size_t i = 0; i < cbor_array_size(v); i++) {
        if (!(s = ace_cbor_tstr(h[i], &len)))
            return ACE_E_CLAIM;
        st->aud_ok |= aud_matches(t, s, len);
    }
    return 0;
}

/* A COSE_Key given to us as a PoP key: keep the public part only. */
static int set_cnf_key(ace_claims_t *c, ace_keypair_t *kp)
{
    c->cnf_key = kp->pub;
    c->has_cnf = 1;
    ace_keypair_wipe(kp);
    return 0;
}

typedef struct {
    const ace_cose_msg_t *m;
    uint8_t *pt;
    size_t pt_len;
} dec_ctx_t;

static int try_decrypt(void *ctx, ace_tkey_t *k)
{
    dec_ctx_t *d = ctx;
    return ace_cose_decrypt0(d->m, k->key.k, k->key.k_len, &d->pt, &d->pt_len);
}

/* cnf 2: an Encrypted_COSE_Key (RFC 8747 §3.3), decrypted with the issuer's AES-128 keys. */
static int cwt_cnf_encrypted(const ace_trust_t *t, const ace_tissuer_t *who, const cbor_item_t *v,
                             ace_claims_t *c)
{
    ace_cose_msg_t m;
    int rc = ace_cose_parse_item(v, ACE_COSE_ENCRYPT0, &m);
    if (rc)
        return rc == ACE_E_BAD_ALG ? rc : ACE_E_CLAIM;
    dec_ctx_t d = {.m = &m};
    const ace_tissuer_t *w2;
    rc = ace_trust_try_keys(t, who->name, ACE_KEY_SYMMETRIC, 16, m.kid, m.kid_len, try_decrypt, &d,
                            &w2);
    ace_cose_free(&m);
    if (rc)
        return rc == ACE_E_UNKNOWN_ISSUER ? ACE_E_CLAIM : rc;
    ace_cbor_limits_t lim = {t->max_depth, t->max_token};
    cbor_item_t *key = ace_cbor_load(d.pt, d.pt_len, &lim, &rc);
    mbedtls_platform_zeroize(d.pt, d.pt_len);
    free(d.pt);
    if (!key)
        return ACE_E_CLAIM;
    ace_keypair_t kp;
    rc = ace_key_from_cose(key, &kp);
    cbor_decref(&key);
    return rc ? ACE_E_CLAIM : set_cnf_key(c, &kp);
}

static int cwt_cnf(const ace_trust_t *t, const ace_tissuer_t *who, const cbor_item_t *v,
                   ace_claims_t *c)
{
    if (!cbor_isa_map(v) || cbor_map_size(v) != 1)
        return ACE_E_CLAIM;
    int64_t method;
    struct cbor_pair *p = cbor_map_handle(v);
    if (ace_cbor_get_int(p[0].key, &method))
        return ACE_E_CLAIM;
    if (method == 1) {
        ace_keypair_t kp;
        return ace_key_from_cose(p[0].value, &kp) ? ACE_E_CLAIM : set_cnf_key(c, &kp);
    }
    if (method == 2)
        return cwt_cnf_encrypted(t, who, p[0].value, c);
    if (method == 3) {
        size_t len;
        const uint8_t *kid = ace_cbor_bstr(p[0].value, &len);
        if (!kid || len == 0 || copy_bytes(c->cnf_key.kid, sizeof(c->cnf_key.kid),
                                           &c->cnf_key.kid_len, kid, len))
            return ACE_E_CLAIM;
        c->has_cnf = c->cnf_is_kid_only = 1;
        return 0;
    }
    return ACE_E_CLAIM;
}

static int set_scope(ace_claims_t *c, int kind, const void *p, size_t len)
{
    c->scope = malloc(len ? len : 1);
    if (!c->scope)
        return ACE_E_NOMEM;
    memcpy(c->scope, p, len);
    c->scope_len = len;
    c->scope_kind = kind;
    return 0;
}

static int cwt_scope(const cbor_item_t *v, ace_claims_t *c)
{
    size_t len;
    const void *p;
    if ((p = ace_cbor_bstr(v, &len)))
        return set_scope(c, ACE_SCOPE_BSTR, p, len);
    if ((p = ace_cbor_tstr(v, &len)))
        return set_scope(c, ACE_SCOPE_TSTR, p, len);
    if (!cbor_isa_array(v))
        return ACE_E_CLAIM;
    uint8_t *buf = NULL;
    size_t cap = 0;
    len = cbor_serialize_alloc(v, &buf, &cap);
    if (len == 0) {
        free(buf);
        return ACE_E_NOMEM;
    }
    c->scope = buf;
    c->scope_len = len;
    c->scope_kind = ACE_SCOPE_CBOR_ARRAY;
    return 0;
}

static int cwt_profile(const ace_trust_t *t, const cbor_item_t *v, ace_claims_state_t *st)
{
    int64_t id;
    size_t len;
    const char *s = ace_cbor_tstr(v, &len);
    if (s)
        st->profile_bad = !(len == 8 && memcmp(s, "mqtt_tls", 8) == 0);
    else if (ace_cbor_get_int(v, &id) == 0)
        st->profile_bad = id != t->profile;
    else
        return ACE_E_CLAIM;
    return 0;
}

static int cwt_claim(const ace_trust_t *t, const ace_tissuer_t *who, int64_t key,
                     const cbor_item_t *v, ace_claims_t *c, ace_claims_state_t *st)
{
    size_t len;
    const uint8_t *b;
    switch (key) {
    case C_ISS: { const char *s = ace_cbor_tstr(v, &len); return copy_text(c->iss, sizeof(c->iss), s, len); }
    case C_SUB: { const char *s = ace_cbor_tstr(v, &len); return copy_text(c->sub, sizeof(c->sub), s, len); }
    case C_AUD: return cwt_aud(t, v, st);
    case C_EXP: c->has_exp = 1; return cwt_time(v, &c->exp);
    case C_NBF: c->has_nbf = 1; return cwt_time(v, &c->nbf);
    case C_IAT: c->has_iat = 1; return cwt_time(v, &c->iat);
    case C_CTI:
        c->has_cti = 1;
        b = ace_cbor_bstr(v, &len);
        return copy_bytes(c->cti, sizeof(c->cti), &c->cti_len, b, len);
    case C_CNF: return cwt_cnf(t, who, v, c);
    case C_SCOPE: return cwt_scope(v, c);
    case C_PROFILE: return cwt_profile(t, v, st);
    case C_CNONCE:
        c->has_cnonce = 1;
        b = ace_cbor_bstr(v, &len);
        return copy_bytes(c->cnonce, sizeof(c->cnonce), &c->cnonce_len, b, len);
    case C_EXI:
        c->has_exi = 1;
        return (cbor_isa_uint(v) && ace_cbor_get_int(v, &c->exi) == 0) ? 0 : ACE_E_CLAIM;
    default:
        return 0; /* claims we do not use are ignored, as RFC 8392 §3 allows */
    }
}

int ace_claims_from_cwt(const ace_trust_t *t, const ace_tissuer_t *who, const cbor_item_t *map,
                        ace_claims_t *c, ace_claims_state_t *st)
{
    if (!map || !cbor_isa_map(map))
        return ACE_E_MALFORMED;
    uint64_t seen = 0;
    struct cbor_pair *p = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        int64_t key;
        if (ace_cbor_get_int(p[i].key, &key) != 0)
            continue; /* text-keyed claims are private to someone else */
        if (key >= 0 && key < 64) {
            if (seen & (1ull << key))
                return ACE_E_MALFORMED;
            seen |= 1ull << key;
        }
        int rc = cwt_claim(t, who, key, p[i].value, c, st);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- JWT (JSON) claims ---- */

static int json_time(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return (*out > -TIME_LIMIT && *out < TIME_LIMIT) ? 0 : ACE_E_CLAIM;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d <= (double)-TIME_LIMIT || d >= (double)TIME_LIMIT)
            return ACE_E_CLAIM;
        *out = (int64_t)floor(d);
        return 0;
    }
    return ACE_E_CLAIM;
}

static int jwt_cnf(const json_t *v, ace_claims_t *c)
{
    const json_t *jwk = json_object_get(v, "jwk"), *kid = json_object_get(v, "kid");
    if (!json_is_object(v) || json_object_size(v) != 1)
        return ACE_E_CLAIM;
    if (jwk) {
        ace_keypair_t kp;
        return ace_key_from_jwk(jwk, &kp) ? ACE_E_CLAIM : set_cnf_key(c, &kp);
    }
    if (json_is_string(kid) && json_string_length(kid) > 0) {
        c->has_cnf = c->cnf_is_kid_only = 1;
        return copy_bytes(c->cnf_key.kid, sizeof(c->cnf_key.kid), &c->cnf_key.kid_len,
                          (const uint8_t *)json_string_value(kid), json_string_length(kid));
    }
    return ACE_E_CLAIM; /* jwe and jku are not supported */
}

static int jwt_aud(const ace_trust_t *t, const json_t *v, ace_claims_state_t *st)
{
    size_t i;
    const json_t *e;
    if (json_is_string(v)) {
        st->aud_ok = aud_matches(t, json_string_value(v), json_string_length(v));
        return 0;
    }
    if (!json_is_array(v))
        return ACE_E_CLAIM;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return ACE_E_CLAIM;
        st->aud_ok |= aud_matches(t, json_string_value(e), json_string_length(e));
    }
    return 0;
}

static int jwt_claim(const ace_trust_t *t, const char *name, const json_t *v, ace_claims_t *c,
                     ace_claims_state_t *st)
{
    if (!strcmp(name, "iss") || !strcmp(name, "sub")) {
        char *dst = name[0] == 'i' ? c->iss : c->sub;
        return json_is_string(v) ? copy_text(dst, 256, json_string_value(v), json_string_length(v))
                                 : ACE_E_CLAIM;
    }
    if (!strcmp(name, "aud"))
        return jwt_aud(t, v, st);
    if (!strcmp(name, "exp"))
        return c->has_exp = 1, json_time(v, &c->exp);
    if (!strcmp(name, "nbf"))
        return c->has_nbf = 1, json_time(v, &c->nbf);
    if (!strcmp(name, "iat"))
        return c->has_iat = 1, json_time(v, &c->iat);
    if (!strcmp(name, "jti")) {
        c->has_cti = 1;
        return json_is_string(v) ? copy_bytes(c->cti, sizeof(c->cti), &c->cti_len,
                                              (const uint8_t *)json_string_value(v),
                                              json_string_length(v))
                                 : ACE_E_CLAIM;
    }
    if (!strcmp(name, "cnf"))
        return jwt_cnf(v, c);
    if (!strcmp(name, "scope")) {
        if (json_is_string(v))
            return set_scope(c, ACE_SCOPE_TSTR, json_string_value(v), json_string_length(v));
        if (!json_is_array(v))
            return ACE_E_CLAIM;
        char *s = json_dumps(v, JSON_COMPACT);
        int rc = s ? set_scope(c, ACE_SCOPE_JSON_ARRAY, s, strlen(s)) : ACE_E_NOMEM;
        free(s);
        return rc;
    }
    if (!strcmp(name, "cnonce")) {
        c->has_cnonce = 1;
        return json_is_string(v) && ace_b64url_decode(json_string_value(v), json_string_length(v),
                                                      c->cnonce, sizeof(c->cnonce),
                                                      &c->cnonce_len) == 0 ? 0 : ACE_E_CLAIM;
    }
    if (!strcmp(name, "exi")) {
        c->has_exi = 1;
        c->exi = json_is_integer(v) ? json_integer_value(v) : -1;
        return c->exi >= 0 ? 0 : ACE_E_CLAIM;
    }
    if (!strcmp(name, "ace_profile")) {
        if (json_is_string(v))
            st->profile_bad = strcmp(json_string_value(v), "mqtt_tls") != 0;
        else if (json_is_integer(v))
            st->profile_bad = json_integer_value(v) != t->profile;
        else
            return ACE_E_CLAIM;
    }
    return 0;
}

int ace_claims_from_jwt(const ace_trust_t *t, const json_t *obj, ace_claims_t *c,
                        ace_claims_state_t *st)
{
    const char *name;
    const json_t *v;
    if (!json_is_object(obj))
        return ACE_E_MALFORMED;
    json_object_foreach((json_t *)obj, name, v) {
        int rc = jwt_claim(t, name, v, c, st);
        if (rc)
            return rc;
    }
    c->is_jwt = 1;
    return 0;
}

int ace_claims_check(const ace_trust_t *t, const ace_tissuer_t *who, int64_t now, ace_claims_t *c,
                     const ace_claims_state_t *st)
{
    if (c->iss[0] && strcmp(c->iss, who->name) != 0)
        return ACE_E_UNKNOWN_ISSUER; /* iss must name the AS whose key protected the token */
    if (!c->iss[0])
        strcpy(c->iss, who->name);
    if (c->has_exp && now - t->skew >= c->exp)
        return ACE_E_EXPIRED;
    if (t->require_exp && !c->has_exp && !c->has_exi)
        return ACE_E_CLAIM;
    if (!st->aud_ok)
        return ACE_E_WRONG_AUDIENCE;
    if ((c->has_nbf && c->nbf > now + t->skew) || (c->has_iat && c->iat > now + t->skew))
        return ACE_E_NOT_YET_VALID;
    if (st->profile_bad)
        return ACE_E_PROFILE;
    return 0;
}

void ace_claims_free(ace_claims_t *c)
{
    if (!c)
        return;
    free(c->scope);
    mbedtls_platform_zeroize(c, sizeof(*c));
}

int ace_claims_copy(ace_claims_t *dst, const ace_claims_t *src)
{
    *dst = *src;
    dst->scope = NULL;
    if (src->scope) {
        dst->scope = malloc(src->scope_len ? src->scope_len : 1);
        if (!dst->scope) {
            memset(dst, 0, sizeof(*dst));
            return ACE_E_NOMEM;
        }
        memcpy(dst->scope, src->scope, src->scope_len);
    }
    return 0;
}

int ace_claims_check_cnonce(const ace_claims_t *c, const uint8_t *nonce, size_t len)
{
    if (!c->has_cnonce || !nonce || len == 0 || c->cnonce_len != len ||
        mbedtls_ct_memcmp(c->cnonce, nonce, len) != 0)
        return ACE_E_NONCE;
    return 0;
}

/* ---- exi sequence tracking ---- */

typedef struct {
    char iss[256];
    uint64_t highest;
} exi_entry_t;

struct ace_exi_tracker {
    pthread_mutex_t mu;
    exi_entry_t *e;
    size_t n;
};

ace_exi_tracker_t *ace_exi_tracker_new(void)
{
    ace_exi_tracker_t *tr = calloc(1, sizeof(*tr));
    if (tr && pthread_mutex_init(&tr->mu, NULL) != 0) {
        free(tr);
        return NULL;
    }
    return tr;
}

void ace_exi_tracker_free(ace_exi_tracker_t *tr)
{
    if (!tr)
        return;
    pthread_mutex_destroy(&tr->mu);
    free(tr->e);
    free(tr);
}

int ace_exi_seq_from_cti(const uint8_t *cti, size_t len, size_t prefix_len, uint64_t *seq)
{
    if (!cti || prefix_len >= len || len - prefix_len > 8)
        return ACE_E_CLAIM;
    uint64_t v = 0;
    for (size_t i = prefix_len; i < len; i++)
        v = v << 8 | cti[i];
    *seq = v;
    return 0;
}

int ace_exi_check_and_record(ace_exi_tracker_t *tr, const char *iss, uint64_t seq)
{
    if (!tr || !iss || strlen(iss) >= sizeof(tr->e[0].iss))
        return ACE_E_ARG;
    int rc = 0;
    pthread_mutex_lock(&tr->mu);
    size_t i = 0;
    while (i < tr->n && strcmp(tr->e[i].iss, iss) != 0)
        i++;
    if (i == tr->n) { /* the number of issuers is bounded by the trust store */
        exi_entry_t *p = realloc(tr->e, (tr->n + 1) * sizeof(*p));
        if (!p) {
            rc = ACE_E_NOMEM;
        } else {
            tr->e = p;
            strcpy(p[i].iss, iss);
            p[i].highest = seq;
            tr->n++;
        }
    } else if (seq <= tr->e[i].highest) {
        rc = ACE_E_REPLAY;
    } else {
        tr->e[i].highest = seq;
    }
    pthread_mutex_unlock(&tr->mu);
    return rc;
}

int ace_exi_check_claims(ace_exi_tracker_t *tr, const ace_claims_t *c, size_t prefix_len)
{
    uint64_t seq;
    if (!c->has_exi)
        return 0;
    if (!c->has_cti || ace_exi_seq_from_cti(c->cti, c->cti_len, prefix_len, &seq) != 0)
        return ACE_E_CLAIM;
    return ace_exi_check_and_record(tr, c->iss, seq);
}
