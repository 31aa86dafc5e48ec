/*
 * ace/jwt.c: JWS compact parse, verify (ES256, HS256) and create. See jwt.h.
 */
#include "ace/jwt.h"

#include <jansson.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>
#include <stdlib.h>
#include <string.h>

#include "ace/b64url.h"
#include "ace/token.h"

#define JWS_MAX_HEADER 1024u /* decoded protected header */

int ace_jws_looks_like(const uint8_t *tok, size_t len)
{
    size_t dots = 0;
    if (len < 5)
        return 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = tok[i];
        if (c == '.')
            dots++;
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_'))
            return 0;
    }
    return dots == 2;
}

void ace_jws_free(ace_jws_t *j)
{
    free(j->payload);
    memset(j, 0, sizeof(*j));
}

static int parse_header(const char *b64, size_t len, ace_jws_t *j)
{
    uint8_t buf[JWS_MAX_HEADER];
    size_t n;
    if (len > ACE_B64URL_ENC_LEN(JWS_MAX_HEADER) ||
        ace_b64url_decode(b64, len, buf, sizeof(buf), &n) != 0)
        return ACE_E_MALFORMED;
    json_t *h = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(h)) {
        json_decref(h);
        return ACE_E_MALFORMED;
    }
    int rc = 0;
    const char *alg = json_string_value(json_object_get(h, "alg"));
    json_t *kid = json_object_get(h, "kid");
    if (!alg || json_object_get(h, "crit"))
        rc = ACE_E_BAD_ALG;
    else if (strcmp(alg, "ES256") == 0)
        j->alg = ACE_ALG_JWS_ES256;
    else if (strcmp(alg, "HS256") == 0)
        j->alg = ACE_ALG_JWS_HS256;
    else
        rc = ACE_E_BAD_ALG; /* including "none" */
    if (rc == 0 && kid) {
        if (!json_is_string(kid) || json_string_length(kid) > sizeof(j->kid))
            rc = ACE_E_MALFORMED;
        else {
            j->has_kid = 1;
            j->kid_len = json_string_length(kid);
            memcpy(j->kid, json_string_value(kid), j->kid_len);
        }
    }
    json_decref(h);
    return rc;
}

int ace_jws_parse(const char *tok, size_t len, ace_jws_t *j)
{
    memset(j, 0, sizeof(*j));
    if (!ace_jws_looks_like((const uint8_t *)tok, len))
        return ACE_E_MALFORMED;
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    size_t hlen = (size_t)(d1 - tok), plen = (size_t)(d2 - d1 - 1);
    size_t slen = len - (size_t)(d2 + 1 - tok);
    if (hlen == 0 || plen == 0 || slen == 0)
        return ACE_E_MALFORMED; /* an empty signature is how alg none looks: never accepted */
    int rc = parse_header(tok, hlen, j);
    if (rc)
        return rc;
    if (ace_b64url_decode(d2 + 1, slen, j->sig, sizeof(j->sig), &j->sig_len) != 0)
        return ACE_E_BAD_SIGNATURE;
    j->payload = malloc(ACE_B64URL_DEC_LEN(plen));
    if (!j->payload)
        return ACE_E_NOMEM;
    if (ace_b64url_decode(d1 + 1, plen, j->payload, ACE_B64URL_DEC_LEN(plen), &j->payload_len)) {
        ace_jws_free(j);
        return ACE_E_MALFORMED;
    }
    j->signing_input = tok;
    j->signing_input_len = (size_t)(d2 - tok);
    return 0;
}

static int hmac256(const uint8_t *key, size_t key_len, const void *msg, size_t len, uint8_t out[32])
{
    return mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, key_len, msg, len,
                           out) ? ACE_E_NOMEM : 0;
}

int ace_jws_verify_hs256(const ace_jws_t *j, const uint8_t *key, size_t key_len)
{
    uint8_t mac[32];
    if (j->alg != ACE_ALG_JWS_HS256)
        return ACE_E_BAD_ALG;
    if (j->sig_len != sizeof(mac))
        return ACE_E_BAD_SIGNATURE;
    int rc = hmac256(key, key_len, j->signing_input, j->signing_input_len, mac);
    if (rc == 0 && mbedtls_ct_memcmp(mac, j->sig, sizeof(mac)) != 0)
        rc = ACE_E_BAD_SIGNATURE;
    return rc;
}

int ace_jws_verify_es256(const ace_jws_t *j, ace_ec_ctx_t *ec)
{
    if (j->alg != ACE_ALG_JWS_ES256)
        return ACE_E_BAD_ALG;
    return ace_es256_verify(ec, (const uint8_t *)j->signing_input, j->signing_input_len, j->sig,
                            j->sig_len);
}

/* Appends base64url(p) to s at *o. */
static void put_b64(char *s, size_t *o, const uint8_t *p, size_t n)
{
    *o += (size_t)ace_b64url_encode(p, n, s + *o, ACE_B64URL_ENC_LEN(n));
}

int ace_jws_create(const char *payload, size_t len, unsigned alg, const ace_keypair_t *k,
                   char **out)
{
    if ((alg == ACE_ALG_JWS_ES256 && (k->pub.type != ACE_KEY_EC2_P256 || !k->has_private)) ||
        (alg == ACE_ALG_JWS_HS256 && k->pub.type != ACE_KEY_SYMMETRIC) ||
        (alg != ACE_ALG_JWS_ES256 && alg != ACE_ALG_JWS_HS256))
        return ACE_E_KEY;
    json_t *h = json_pack("{s:s,s:s}", "alg", alg == ACE_ALG_JWS_ES256 ? "ES256" : "HS256", "typ",
                          "JWT");
    if (h && k->pub.kid_len)
        json_object_set_new(h, "kid", json_stringn((const char *)k->pub.kid, k->pub.kid_len));
    char *htxt = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    if (!htxt)
        return ACE_E_NOMEM;
    size_t hlen = strlen(htxt);
    size_t cap = ACE_B64URL_ENC_LEN(hlen) + ACE_B64URL_ENC_LEN(len) + ACE_B64URL_ENC_LEN(64) + 2;
    char *s = malloc(cap);
    if (!s) {
        free(htxt);
        return ACE_E_NOMEM;
    }
    size_t o = 0;
    put_b64(s, &o, (const uint8_t *)htxt, hlen);
    s[o++] = '.';
    put_b64(s, &o, (const uint8_t *)payload, len);
    free(htxt);
    uint8_t sig[64];
    size_t sig_len = alg == ACE_ALG_JWS_ES256 ? 64 : 32;
    int rc = alg == ACE_ALG_JWS_ES256 ? ace_es256_sign(k, (const uint8_t *)s, o, sig)
                                      : hmac256(k->pub.k, k->pub.k_len, s, o, sig);
    if (rc) {
        free(s);
        return rc;
    }
    s[o++] = '.';
    put_b64(s, &o, sig, sig_len);
    *out = s;
    return 0;
}
