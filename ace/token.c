/*
 * ace/token.c: ace_token_verify(), the front door. It tells a JWT from a CWT, unwraps the COSE or JOSE
 * protection with the trust store's keys, decodes the claims and checks them.
 *
 * Key choice: for signed or MACed tokens the (still unverified) iss claim only narrows which issuer's
 * keys are tried, and a kid narrows it further; the answer is authoritative only once a key verifies,
 * and the iss claim must then name that key's issuer. Encrypted tokens are tried against the AES keys
 * of every issuer (narrowed by kid). Encrypt0 around Sign1/Mac0 (RFC 8392 A.6) is unwrapped one level.
 */
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <stdlib.h>
#include <string.h>

#include "ace/cose.h"
#include "ace/jwt.h"
#include "ace/token_int.h"

typedef struct {
    const ace_cose_msg_t *m;
    const ace_jws_t *j;
} sig_ctx_t;

static int try_cose(void *ctx, ace_tkey_t *k)
{
    const ace_cose_msg_t *m = ((sig_ctx_t *)ctx)->m;
    if (m->type == ACE_COSE_SIGN1)
        return ace_cose_verify_sign1(m, &k->ec);
    return ace_cose_verify_mac0(m, k->key.k, k->key.k_len);
}

static int try_jws(void *ctx, ace_tkey_t *k)
{
    const ace_jws_t *j = ((sig_ctx_t *)ctx)->j;
    if (j->alg == ACE_ALG_JWS_ES256)
        return ace_jws_verify_es256(j, &k->ec);
    return ace_jws_verify_hs256(j, k->key.k, k->key.k_len);
}

static unsigned cose_alg_bit(const ace_cose_msg_t *m)
{
    switch (m->alg) {
    case ACE_COSE_ALG_ES256: return ACE_ALG_COSE_ES256;
    case ACE_COSE_ALG_HMAC256_64: return ACE_ALG_COSE_HMAC256_64;
    case ACE_COSE_ALG_HMAC256_256: return ACE_ALG_COSE_HMAC256_256;
    default: return ACE_ALG_COSE_AES_CCM_16_64_128;
    }
}

/* The iss claim of a not yet verified claims map, used only to narrow the key search. */
static const char *iss_hint(const cbor_item_t *claims, char *buf, size_t cap)
{
    size_t len;
    const char *s = ace_cbor_tstr(ace_cbor_map_get(claims, 1, NULL), &len);
    if (!s || len >= cap)
        return NULL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

/* Sign1 or Mac0: loads the claims (pre-scanned), then verifies with the issuer's keys. */
static int verify_signed(const ace_trust_t *t, const ace_cose_msg_t *m, const ace_cbor_limits_t *lim,
                         cbor_item_t **claims, const ace_tissuer_t **who, unsigned *alg)
{
    int err = 0;
    char hint[256];
    if (m->type == ACE_COSE_ENCRYPT0)
        return ACE_E_MALFORMED; /* one level of nesting only */
    *alg = cose_alg_bit(m);
    if (!(t->algs & *alg))
        return ACE_E_BAD_ALG;
    *claims = ace_cbor_load(m->payload, m->payload_len, lim, &err);
    if (!*claims)
        return err;
    if (!cbor_isa_map(*claims))
        return ACE_E_MALFORMED;
    sig_ctx_t ctx = {.m = m};
    ace_key_type_t type = m->type == ACE_COSE_SIGN1 ? ACE_KEY_EC2_P256 : ACE_KEY_SYMMETRIC;
    return ace_trust_try_keys(t, iss_hint(*claims, hint, sizeof(hint)), type, 0, m->kid, m->kid_len,
                              try_cose, &ctx, who);
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

/* Encrypt0: decrypts, then either loads the claims or verifies the nested Sign1/Mac0. */
static int verify_encrypted(const ace_trust_t *t, const ace_cose_msg_t *m,
                            const ace_cbor_limits_t *lim, cbor_item_t **claims,
                            const ace_tissuer_t **who, unsigned *alg)
{
    if (!(t->algs & ACE_ALG_COSE_AES_CCM_16_64_128))
        return ACE_E_BAD_ALG;
    dec_ctx_t d = {.m = m};
    int rc = ace_trust_try_keys(t, NULL, ACE_KEY_SYMMETRIC, 16, m->kid, m->kid_len, try_decrypt, &d,
                                who);
    if (rc)
        return rc;
    if (ace_cose_looks_nested(d.pt, d.pt_len)) {
        ace_cose_msg_t inner;
        rc = ace_cose_parse(d.pt, d.pt_len, lim, &inner);
        if (rc == 0) {
            rc = verify_signed(t, &inner, lim, claims, who, alg);
            ace_cose_free(&inner);
        }
    } else {
        *alg = ACE_ALG_COSE_AES_CCM_16_64_128;
        *claims = ace_cbor_load(d.pt, d.pt_len, lim, &rc);
    }
    mbedtls_platform_zeroize(d.pt, d.pt_len);
    free(d.pt);
    return rc;
}

static int verify_cwt(const ace_trust_t *t, const uint8_t *tok, size_t len, int64_t now,
                      ace_claims_t *out)
{
    ace_cbor_limits_t lim = {t->max_depth, t->max_token};
    ace_cose_msg_t m;
    cbor_item_t *claims = NULL;
    const ace_tissuer_t *who = NULL;
    ace_claims_state_t st = {0};
    int rc = ace_cose_parse(tok, len, &lim, &m);
    if (rc)
        return rc;
    if (m.type == ACE_COSE_ENCRYPT0)
        rc = verify_encrypted(t, &m, &lim, &claims, &who, &out->alg);
    else
        rc = verify_signed(t, &m, &lim, &claims, &who, &out->alg);
    if (rc == 0)
        rc = ace_claims_from_cwt(t, who, claims, out, &st);
    if (rc == 0)
        rc = ace_claims_check(t, who, now, out, &st);
    if (claims)
        cbor_decref(&claims);
    ace_cose_free(&m);
    return rc;
}

static int verify_jwt(const ace_trust_t *t, const uint8_t *tok, size_t len, int64_t now,
                      ace_claims_t *out)
{
    ace_jws_t j;
    const ace_tissuer_t *who = NULL;
    ace_claims_state_t st = {0};
    int rc = ace_jws_parse((const char *)tok, len, &j);
    if (rc)
        return rc;
    if (!(t->algs & j.alg)) {
        ace_jws_free(&j);
        return ACE_E_BAD_ALG;
    }
    json_t *obj = json_loadb((const char *)j.payload, j.payload_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(obj)) {
        rc = ACE_E_MALFORMED;
    } else {
        sig_ctx_t ctx = {.j = &j};
        const char *hint = json_string_value(json_object_get(obj, "iss"));
        ace_key_type_t type = j.alg == ACE_ALG_JWS_ES256 ? ACE_KEY_EC2_P256 : ACE_KEY_SYMMETRIC;
        rc = ace_trust_try_keys(t, hint, type, 0, j.has_kid ? (const uint8_t *)j.kid : NULL,
                                j.kid_len, try_jws, &ctx, &who);
        out->alg = j.alg;
    }
    if (rc == 0)
        rc = ace_claims_from_jwt(t, obj, out, &st);
    if (rc == 0)
        rc = ace_claims_check(t, who, now, out, &st);
    json_decref(obj);
    ace_jws_free(&j);
    return rc;
}

int ace_token_verify(const ace_trust_t *t, const uint8_t *tok, size_t len, int64_t now,
                     ace_claims_t *out)
{
    if (!out)
        return ACE_E_ARG;
    memset(out, 0, sizeof(*out));
    if (!t || !tok)
        return ACE_E_ARG;
    if (len == 0)
        return ACE_E_MALFORMED;
    if (len > t->max_token)
        return ACE_E_TOO_LARGE;
    int rc = ace_jws_looks_like(tok, len) ? verify_jwt(t, tok, len, now, out)
                                          : verify_cwt(t, tok, len, now, out);
    if (rc == 0 && mbedtls_sha256_ret(tok, len, out->digest, 0) != 0)
        rc = ACE_E_NOMEM;
    if (rc)
        ace_claims_free(out);
    return rc;
}
