/*
 * ace/token_mint.c: writes CWT claim sets and JWT claim objects and wraps them in COSE or JWS.
 */
#include "ace/token_mint.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ace/b64url.h"
#include "ace/cbor_scan.h"
#include "ace/cose.h"
#include "ace/jwt.h"

static int cwt_cnf(ace_cbuf_t *b, const ace_mint_t *m)
{
    if (m->cnf_kid) {
        ace_cbuf_head(b, 5, 1);
        ace_cbuf_int(b, 3);
        ace_cbuf_bstr(b, m->cnf_kid, m->cnf_kid_len);
        return 0;
    }
    ace_keypair_t kp = {.pub = *m->cnf_key};
    uint8_t *key = NULL;
    size_t key_len;
    int rc = ace_key_to_cose(&kp, 0, &key, &key_len);
    if (rc)
        return rc;
    ace_cbuf_head(b, 5, 1);
    if (m->cnf_enc_key) { /* RFC 8747 §3.3: the COSE_Key, encrypted, as an untagged Encrypt0 */
        uint8_t *enc;
        size_t enc_len;
        rc = ace_cose_encrypt0_create(key, key_len, m->cnf_enc_key, 0, 0, &enc, &enc_len);
        if (rc == 0) {
            ace_cbuf_int(b, 2);
            ace_cbuf_bytes(b, enc, enc_len);
            free(enc);
        }
    } else {
        ace_cbuf_int(b, 1);
        ace_cbuf_bytes(b, key, key_len);
    }
    ace_keypair_wipe(&kp);
    free(key);
    return rc;
}

int ace_mint_cwt_claims(const ace_mint_t *m, uint8_t **out, size_t *out_len)
{
    ace_cbuf_t b = {0};
    int has_cnf = m->cnf_key || m->cnf_kid;
    size_t n = !!m->iss + !!m->sub + !!m->aud + !!m->has_exp + !!m->has_nbf + !!m->has_iat +
               !!m->cti + has_cnf + (m->scope_kind != ACE_SCOPE_NONE) + (m->profile_kind != 0) +
               !!m->cnonce + !!m->has_exi;
    int rc = 0;
    ace_cbuf_head(&b, 5, n);
#define KEY(k) ace_cbuf_int(&b, k)
    if (m->iss) { KEY(1); ace_cbuf_tstr(&b, m->iss); }
    if (m->sub) { KEY(2); ace_cbuf_tstr(&b, m->sub); }
    if (m->aud) { KEY(3); ace_cbuf_tstr(&b, m->aud); }
    if (m->has_exp) { KEY(4); ace_cbuf_int(&b, m->exp); }
    if (m->has_nbf) { KEY(5); ace_cbuf_int(&b, m->nbf); }
    if (m->has_iat) { KEY(6); ace_cbuf_int(&b, m->iat); }
    if (m->cti) { KEY(7); ace_cbuf_bstr(&b, m->cti, m->cti_len); }
    if (has_cnf) { KEY(8); rc = cwt_cnf(&b, m); }
    if (m->scope_kind == ACE_SCOPE_BSTR) { KEY(9); ace_cbuf_bstr(&b, m->scope, m->scope_len); }
    if (m->scope_kind == ACE_SCOPE_TSTR) { KEY(9); ace_cbuf_head(&b, 3, m->scope_len); ace_cbuf_bytes(&b, m->scope, m->scope_len); }
    if (m->scope_kind == ACE_SCOPE_CBOR_ARRAY) { KEY(9); ace_cbuf_bytes(&b, m->scope, m->scope_len); }
    if (m->profile_kind == 1) { KEY(38); ace_cbuf_int(&b, m->profile); }
    if (m->profile_kind == 2) { KEY(38); ace_cbuf_tstr(&b, "mqtt_tls"); }
    if (m->cnonce) { KEY(39); ace_cbuf_bstr(&b, m->cnonce, m->cnonce_len); }
    if (m->has_exi) { KEY(40); ace_cbuf_int(&b, m->exi); }
#undef KEY
    if (m->scope_kind == ACE_SCOPE_JSON_ARRAY)
        rc = ACE_E_ARG;
    if (rc == 0 && b.err)
        rc = ACE_E_NOMEM;
    if (rc) {
        ace_cbuf_free(&b);
        return rc;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

static int jwt_cnf(json_t *o, const ace_mint_t *m)
{
    if (m->cnf_kid)
        return json_object_set_new(o, "cnf", json_pack("{s:s%}", "kid", (const char *)m->cnf_kid,
                                                       m->cnf_kid_len));
    ace_keypair_t kp = {.pub = *m->cnf_key};
    char *jwk = NULL;
    int rc = ace_key_to_jwk(&kp, 0, &jwk);
    ace_keypair_wipe(&kp);
    json_t *j = rc == 0 ? json_loads(jwk, 0, NULL) : NULL;
    free(jwk);
    return j ? json_object_set_new(o, "cnf", json_pack("{s:o}", "jwk", j)) : -1;
}

static int jwt_scope(json_t *o, const ace_mint_t *m)
{
    if (m->scope_kind == ACE_SCOPE_TSTR)
        return json_object_set_new(o, "scope", json_stringn((const char *)m->scope, m->scope_len));
    if (m->scope_kind == ACE_SCOPE_JSON_ARRAY) {
        json_t *a = json_loadb((const char *)m->scope, m->scope_len, 0, NULL);
        return json_is_array(a) ? json_object_set_new(o, "scope", a) : (json_decref(a), -1);
    }
    return m->scope_kind == ACE_SCOPE_NONE ? 0 : -1;
}

static int jwt_claims(const ace_mint_t *m, char **out)
{
    json_t *o = json_object();
    int rc = o ? 0 : -1;
    if (m->iss) rc |= json_object_set_new(o, "iss", json_string(m->iss));
    if (m->sub) rc |= json_object_set_new(o, "sub", json_string(m->sub));
    if (m->aud) rc |= json_object_set_new(o, "aud", json_string(m->aud));
    if (m->has_exp) rc |= json_object_set_new(o, "exp", json_integer(m->exp));
    if (m->has_nbf) rc |= json_object_set_new(o, "nbf", json_integer(m->nbf));
    if (m->has_iat) rc |= json_object_set_new(o, "iat", json_integer(m->iat));
    if (m->cti) rc |= json_object_set_new(o, "jti", json_stringn((const char *)m->cti, m->cti_len));
    if (m->cnf_key || m->cnf_kid) rc |= jwt_cnf(o, m);
    rc |= jwt_scope(o, m);
    if (m->profile_kind == 1) rc |= json_object_set_new(o, "ace_profile", json_integer(m->profile));
    if (m->profile_kind == 2) rc |= json_object_set_new(o, "ace_profile", json_string("mqtt_tls"));
    if (m->has_exi) rc |= json_object_set_new(o, "exi", json_integer(m->exi));
    if (m->cnonce) {
        char s[ACE_B64URL_ENC_LEN(64)];
        rc |= m->cnonce_len > 64 || ace_b64url_encode(m->cnonce, m->cnonce_len, s, sizeof(s)) < 0;
        rc |= json_object_set_new(o, "cnonce", json_string(s));
    }
    *out = rc ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return *out ? 0 : ACE_E_ARG;
}

static int mint_jwt(const ace_mint_t *m, unsigned alg, const ace_keypair_t *key, uint8_t **out,
                    size_t *out_len)
{
    char *payload, *tok = NULL;
    int rc = jwt_claims(m, &payload);
    if (rc)
        return rc;
    rc = ace_jws_create(payload, strlen(payload), alg, key, &tok);
    free(payload);
    if (rc)
        return rc;
    *out = (uint8_t *)tok;
    *out_len = strlen(tok);
    return 0;
}

int ace_token_mint(const ace_mint_t *m, ace_mint_format_t fmt, const ace_keypair_t *key,
                   const ace_keypair_t *outer_key, uint8_t **out, size_t *out_len)
{
    if (fmt == ACE_MINT_JWT_ES256 || fmt == ACE_MINT_JWT_HS256)
        return mint_jwt(m, fmt == ACE_MINT_JWT_ES256 ? ACE_ALG_JWS_ES256 : ACE_ALG_JWS_HS256, key,
                        out, out_len);
    uint8_t *claims, *inner = NULL;
    size_t claims_len, inner_len;
    int rc = ace_mint_cwt_claims(m, &claims, &claims_len);
    if (rc)
        return rc;
    switch (fmt) {
    case ACE_MINT_CWT_SIGN1:
        rc = ace_cose_sign1_create(claims, claims_len, key, m->cwt_tag, out, out_len);
        break;
    case ACE_MINT_CWT_MAC0:
        rc = ace_cose_mac0_create(claims, claims_len, m->mac_alg ? m->mac_alg : 5, &key->pub,
                                  m->cwt_tag, out, out_len);
        break;
    case ACE_MINT_CWT_ENCRYPT0:
        rc = ace_cose_encrypt0_create(claims, claims_len, &key->pub, 1, m->cwt_tag, out, out_len);
        break;
    default: /* nested: the signed CWT, tagged, is the plaintext (RFC 8392 A.6) */
        rc = outer_key ? ace_cose_sign1_create(claims, claims_len, key, 0, &inner, &inner_len)
                       : ACE_E_KEY;
        if (rc == 0)
            rc = ace_cose_encrypt0_create(inner, inner_len, &outer_key->pub, 1, m->cwt_tag, out,
                                          out_len);
        free(inner);
    }
    free(claims);
    return rc;
}
