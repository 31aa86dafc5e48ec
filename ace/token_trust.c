/*
 * ace/token_trust.c: the trust store (issuers, their keys, the broker's audience and policy), key
 * selection for verification, and the error sentences.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "ace/token_int.h"

#define MAX_KEYS_PER_FILE 32

const char *ace_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case ACE_E_MALFORMED: return "token is malformed";
    case ACE_E_TOO_LARGE: return "token exceeds a size or nesting limit";
    case ACE_E_BAD_SIGNATURE: return "token signature, MAC or encryption tag does not verify";
    case ACE_E_UNKNOWN_ISSUER: return "token issuer is not trusted";
    case ACE_E_WRONG_AUDIENCE: return "token is not for this audience";
    case ACE_E_EXPIRED: return "token has expired";
    case ACE_E_NOT_YET_VALID: return "token is not valid yet";
    case ACE_E_BAD_ALG: return "token algorithm or critical header not accepted";
    case ACE_E_NO_CNF: return "token has no usable proof-of-possession key";
    case ACE_E_PROFILE: return "token is for another ACE profile";
    case ACE_E_REPLAY: return "token sequence number was already seen (exi)";
    case ACE_E_CLAIM: return "token claim missing or of the wrong type";
    case ACE_E_NONCE: return "token cnonce missing or not issued by this broker";
    case ACE_E_NOMEM: return "out of memory";
    case ACE_E_ARG: return "invalid argument";
    case ACE_E_IO: return "key file cannot be read";
    case ACE_E_KEY: return "key cannot be parsed or is not usable";
    default: return "unknown error";
    }
}

int ace_error_is_malformed(int code)
{
    return code == ACE_E_MALFORMED || code == ACE_E_TOO_LARGE;
}

ace_trust_t *ace_trust_new(const char *audience, int clock_skew, int profile_id)
{
    if (!audience || strlen(audience) >= sizeof(((ace_trust_t *)0)->aud) || clock_skew < 0)
        return NULL;
    ace_trust_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    strcpy(t->aud, audience);
    t->skew = clock_skew;
    t->profile = profile_id > 0 ? profile_id : 3;
    t->algs = ACE_ALG_ALL;
    t->max_token = 16384;
    t->max_depth = ACE_CBOR_DEFAULT_DEPTH;
    t->require_exp = 1;
    return t;
}

void ace_trust_free(ace_trust_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        for (size_t j = 0; j < t->iss[i].n; j++)
            if (t->iss[i].keys[j].has_ec)
                ace_ec_ctx_free(&t->iss[i].keys[j].ec);
        mbedtls_platform_zeroize(t->iss[i].keys, t->iss[i].n * sizeof(ace_tkey_t));
        free(t->iss[i].keys);
    }
    free(t->iss);
    free(t);
}

void ace_trust_set_algs(ace_trust_t *t, unsigned alg_mask) { t->algs = alg_mask & ACE_ALG_ALL; }
void ace_trust_set_max_token(ace_trust_t *t, size_t max_bytes) { t->max_token = max_bytes; }
void ace_trust_set_require_exp(ace_trust_t *t, int on) { t->require_exp = on != 0; }
const char *ace_trust_audience(const ace_trust_t *t) { return t->aud; }

void ace_trust_set_max_depth(ace_trust_t *t, unsigned depth)
{
    t->max_depth = depth == 0 ? ACE_CBOR_DEFAULT_DEPTH
                              : depth > ACE_CBOR_MAX_DEPTH ? ACE_CBOR_MAX_DEPTH : depth;
}

static ace_tissuer_t *issuer_get(ace_trust_t *t, const char *iss, int create)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->iss[i].name, iss) == 0)
            return &t->iss[i];
    if (!create || strlen(iss) >= sizeof(t->iss[0].name))
        return NULL;
    ace_tissuer_t *p = realloc(t->iss, (t->n + 1) * sizeof(*p));
    if (!p)
        return NULL;
    t->iss = p;
    memset(&p[t->n], 0, sizeof(p[0]));
    strcpy(p[t->n].name, iss);
    return &p[t->n++];
}

int ace_trust_add_issuer_key(ace_trust_t *t, const char *iss, const ace_key_t *key)
{
    if (!t || !iss || !*iss || !key || ace_key_check(key) != 0)
        return !t || !iss || !*iss || !key ? ACE_E_ARG : ACE_E_KEY;
    ace_tissuer_t *is = issuer_get(t, iss, 1);
    if (!is)
        return ACE_E_ARG;
    ace_tkey_t *p = realloc(is->keys, (is->n + 1) * sizeof(*p));
    if (!p)
        return ACE_E_NOMEM;
    is->keys = p;
    ace_tkey_t *k = &p[is->n];
    memset(k, 0, sizeof(*k));
    k->key = *key;
    if (key->type == ACE_KEY_EC2_P256) {
        int rc = ace_ec_ctx_init(&k->ec, key);
        if (rc)
            return rc;
        k->has_ec = 1;
    }
    is->n++;
    return 0;
}

int ace_trust_add_issuer_keyfile(ace_trust_t *t, const char *iss, const char *path, char *err,
                                 size_t cap)
{
    ace_keypair_t *keys = calloc(MAX_KEYS_PER_FILE, sizeof(*keys));
    size_t n = 0;
    if (!keys)
        return ACE_E_NOMEM;
    int rc = ace_keys_load_file(path, 0, keys, MAX_KEYS_PER_FILE, &n, err, cap);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = ace_trust_add_issuer_key(t, iss, &keys[i].pub);
        if (rc && err && cap)
            snprintf(err, cap, "key %zu of %s cannot be used for issuer %s", i + 1, path, iss);
    }
    mbedtls_platform_zeroize(keys, MAX_KEYS_PER_FILE * sizeof(*keys));
    free(keys);
    return rc;
}

static int key_fits(const ace_tkey_t *k, ace_key_type_t type, size_t sym_len, const uint8_t *kid,
                    size_t kid_len)
{
    if (k->key.type != type || (type == ACE_KEY_SYMMETRIC && sym_len && k->key.k_len != sym_len))
        return 0;
    if (kid && kid_len && k->key.kid_len &&
        (kid_len != k->key.kid_len || memcmp(kid, k->key.kid, kid_len) != 0))
        return 0;
    return 1;
}

int ace_trust_try_keys(const ace_trust_t *t, const char *iss_hint, ace_key_type_t type,
                       size_t sym_len, const uint8_t *kid, size_t kid_len, ace_try_fn fn, void *ctx,
                       const ace_tissuer_t **who)
{
    int rc = ACE_E_UNKNOWN_ISSUER;
    for (size_t i = 0; i < t->n; i++) {
        const ace_tissuer_t *is = &t->iss[i];
        if (iss_hint && strcmp(is->name, iss_hint) != 0)
            continue;
        for (size_t j = 0; j < is->n; j++) {
            if (!key_fits(&is->keys[j], type, sym_len, kid, kid_len))
                continue;
            rc = fn(ctx, &is->keys[j]);
            if (rc == 0) {
                *who = is;
                return 0;
            }
        }
    }
    return rc;
}
