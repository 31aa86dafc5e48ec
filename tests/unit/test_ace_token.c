/*
 * tests/unit/test_ace_token.c: ace_token_verify() end to end: the RFC 8392 Appendix A tokens against
 * a trust store built from the A.2 keys, every claim check (issuer, audience, exp/nbf/iat with and
 * without skew, profile), hostile inputs, mint -> verify round trips for every format and every cnf
 * key type, key files, the verified-token cache, exi replay and cnonce.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "ace/cose.h"
#include "ace/token.h"
#include "ace/token_cache.h"
#include "ace/token_mint.h"
#include "tests/unit/ace_vectors.h"
#include "tests/unit/test.h"

#define AS "coap://as.example.com"
#define RS "coap://light.example.com"
#define T_VALID 1444000000 /* inside the A.1 validity (nbf 1443944944, exp 1444064944) */

static ace_trust_t *rfc_trust(const char *aud, int skew, const char *iss)
{
    ace_trust_t *t = ace_trust_new(aud, skew, 3);
    const char *keys[] = {RFC8392_A2_SYM128, RFC8392_A2_SYM256, RFC8392_A2_EC};
    for (int i = 0; t && i < 3; i++) {
        ace_keypair_t kp;
        if (key_from_text(keys[i], 1, &kp) || ace_trust_add_issuer_key(t, iss, &kp.pub)) {
            ace_trust_free(t);
            return NULL;
        }
    }
    return t;
}

static int verify_hex(const ace_trust_t *t, const char *hex, int64_t now, ace_claims_t *c)
{
    size_t n;
    uint8_t *b = unhex(hex, &n);
    int rc = ace_token_verify(t, b, n, now, c);
    free(b);
    return rc;
}

TEST(rfc8392_tokens_verify_and_decode_a1)
{
    ace_trust_t *t = rfc_trust(RS, 0, AS);
    ace_claims_t c;
    ASSERT(t);
    const char *toks[] = {RFC8392_A3, RFC8392_A4, RFC8392_A5, RFC8392_A6};
    const unsigned algs[] = {ACE_ALG_COSE_ES256, ACE_ALG_COSE_HMAC256_64,
                             ACE_ALG_COSE_AES_CCM_16_64_128, ACE_ALG_COSE_ES256};
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(verify_hex(t, toks[i], T_VALID, &c), 0);
        ASSERT_STR_EQ(c.iss, AS);
        ASSERT_STR_EQ(c.sub, "erikw");
        ASSERT(c.has_exp && c.has_nbf && c.has_iat);
        ASSERT_EQ(c.exp, 1444064944);
        ASSERT_EQ(c.nbf, 1443944944);
        ASSERT_EQ(c.iat, 1443944944);
        ASSERT_EQ(c.cti_len, 2);
        ASSERT_MEM_EQ(c.cti, "\x0b\x71", 2);
        ASSERT_EQ(c.alg, algs[i]);
        ASSERT(!c.has_cnf && c.scope_kind == ACE_SCOPE_NONE && !c.is_jwt);
        ace_claims_free(&c);
        /* and today they are long expired */
        ASSERT_EQ(verify_hex(t, toks[i], (int64_t)time(NULL), &c), ACE_E_EXPIRED);
    }
    /* A.7 (MAC over {6: 1443944944.5}): verifies and decodes, but names no audience */
    ace_trust_set_require_exp(t, 0);
    ASSERT_EQ(verify_hex(t, RFC8392_A7, T_VALID, &c), ACE_E_WRONG_AUDIENCE);
    ace_trust_free(t);
}

TEST(time_checks_with_and_without_skew)
{
    ace_trust_t *t0 = rfc_trust(RS, 0, AS), *t30 = rfc_trust(RS, 30, AS);
    ace_claims_t c;
    ASSERT(t0 && t30);
    ASSERT_EQ(verify_hex(t0, RFC8392_A4, 1444064944, &c), ACE_E_EXPIRED);
    ASSERT_EQ(verify_hex(t0, RFC8392_A4, 1444064943, &c), 0);
    ace_claims_free(&c);
    ASSERT_EQ(verify_hex(t30, RFC8392_A4, 1444064944 + 10, &c), 0);
    ace_claims_free(&c);
    ASSERT_EQ(verify_hex(t30, RFC8392_A4, 1444064944 + 30, &c), ACE_E_EXPIRED);
    ASSERT_EQ(verify_hex(t0, RFC8392_A4, 1443944944 - 10, &c), ACE_E_NOT_YET_VALID);
    ASSERT_EQ(verify_hex(t30, RFC8392_A4, 1443944944 - 10, &c), 0);
    ace_claims_free(&c);
    ASSERT_EQ(verify_hex(t30, RFC8392_A4, 1443944944 - 31, &c), ACE_E_NOT_YET_VALID);
    ace_trust_free(t0);
    ace_trust_free(t30);
}

TEST(issuer_audience_and_alg_policy)
{
    ace_claims_t c;
    ace_trust_t *t = rfc_trust("coap://other.example.com", 0, AS);
    ASSERT_EQ(verify_hex(t, RFC8392_A3, T_VALID, &c), ACE_E_WRONG_AUDIENCE);
    ace_trust_free(t);
    t = rfc_trust(RS, 0, "coap://other-as.example.com"); /* right keys, wrong issuer name */
    ASSERT_EQ(verify_hex(t, RFC8392_A3, T_VALID, &c), ACE_E_UNKNOWN_ISSUER);
    ASSERT_EQ(verify_hex(t, RFC8392_A5, T_VALID, &c), ACE_E_UNKNOWN_ISSUER); /* iss mismatch */
    ace_trust_free(t);
    t = ace_trust_new(RS, 0, 3);
    ASSERT_EQ(verify_hex(t, RFC8392_A4, T_VALID, &c), ACE_E_UNKNOWN_ISSUER); /* no keys at all */
    ace_trust_free(t);
    t = rfc_trust(RS, 0, AS);
    ace_trust_set_algs(t, ACE_ALG_ALL & ~ACE_ALG_COSE_ES256);
    ASSERT_EQ(verify_hex(t, RFC8392_A3, T_VALID, &c), ACE_E_BAD_ALG);
    ASSERT_EQ(verify_hex(t, RFC8392_A6, T_VALID, &c), ACE_E_BAD_ALG); /* inner Sign1 */
    ace_trust_set_algs(t, ACE_ALG_COSE_ES256);
    ASSERT_EQ(verify_hex(t, RFC8392_A4, T_VALID, &c), ACE_E_BAD_ALG);
    ASSERT_EQ(verify_hex(t, RFC8392_A5, T_VALID, &c), ACE_E_BAD_ALG);
    ace_trust_free(t);
}

TEST(tampering_and_hostile_input)
{
    ace_trust_t *t = rfc_trust(RS, 0, AS);
    ace_claims_t c;
    size_t n;
    uint8_t *b;
    const char *toks[] = {RFC8392_A3, RFC8392_A4, RFC8392_A5, RFC8392_A6};
    for (int i = 0; i < 4; i++) {
        b = unhex(toks[i], &n);
        b[n - 1] ^= 0x01; /* last byte: signature, MAC or ciphertext tag */
        ASSERT_EQ(ace_token_verify(t, b, n, T_VALID, &c), ACE_E_BAD_SIGNATURE);
        b[n - 1] ^= 0x01;
        b[n - 20] ^= 0x40; /* inside the signature or the protected content */
        ASSERT(ace_token_verify(t, b, n, T_VALID, &c) != 0);
        free(b);
    }
    b = unhex(RFC8392_A3, &n);
    b[40] ^= 0x01; /* inside the claims (the iss text) */
    ASSERT(ace_token_verify(t, b, n, T_VALID, &c) != 0);
    free(b);
    ASSERT_EQ(verify_hex(t, "9a1000000001", T_VALID, &c), ACE_E_MALFORMED);
    ASSERT_EQ(verify_hex(t, "d2849a1000000001", T_VALID, &c), ACE_E_MALFORMED);
    ASSERT_EQ(verify_hex(t, "d28481818181818181818181818181818181818101", T_VALID, &c),
              ACE_E_TOO_LARGE);
    ASSERT(ace_error_is_malformed(ACE_E_TOO_LARGE) && !ace_error_is_malformed(ACE_E_EXPIRED));
    ASSERT_EQ(ace_token_verify(t, (const uint8_t *)"hello", 5, T_VALID, &c), ACE_E_MALFORMED);
    ASSERT_EQ(ace_token_verify(t, (const uint8_t *)"", 0, T_VALID, &c), ACE_E_MALFORMED);
    ace_trust_set_max_token(t, 100);
    ASSERT_EQ(verify_hex(t, RFC8392_A3, T_VALID, &c), ACE_E_TOO_LARGE);
    ace_trust_free(t);
}

TEST(nested_tags_inside_claims_rejected)
{
    ace_trust_t *t = rfc_trust(RS, 0, AS);
    ace_keypair_t sym;
    ace_claims_t c;
    uint8_t *tok;
    size_t len;
    ASSERT_EQ(key_from_text(RFC8392_A2_SYM256, 1, &sym), 0);
    /* {1: "x", 9: 18([])}: a COSE tag deep inside the claims never reaches libcbor */
    const uint8_t claims[] = {0xa2, 0x01, 0x61, 'x', 0x09, 0xd2, 0x80};
    ASSERT_EQ(ace_cose_mac0_create(claims, sizeof(claims), 5, &sym.pub, 0, &tok, &len), 0);
    ASSERT_EQ(ace_token_verify(t, tok, len, T_VALID, &c), ACE_E_MALFORMED);
    free(tok);
    /* a Mac0 nested in an Encrypt0 nested in an Encrypt0 is refused (one level of nesting) */
    ace_keypair_t aes;
    ASSERT_EQ(key_from_text(RFC8392_A2_SYM128, 1, &aes), 0);
    size_t n;
    uint8_t *a5 = unhex(RFC8392_A5, &n), *outer;
    ASSERT_EQ(ace_cose_encrypt0_create(a5, n, &aes.pub, 1, 0, &outer, &len), 0);
    ASSERT_EQ(ace_token_verify(t, outer, len, T_VALID, &c), ACE_E_MALFORMED);
    free(outer);
    free(a5);
    ace_trust_free(t);
}

/* Keys for the round trips: issuer signing keys (P-256, HMAC, AES) and PoP keys of each type. */
typedef struct {
    ace_keypair_t ec, hmac, aes, pop_sym, pop_ec, pop_ed;
    ace_trust_t *t;
} fixture_t;

static int fixture(fixture_t *f, const char *iss)
{
    memset(f, 0, sizeof(*f));
    if (ace_key_generate(ACE_KEY_EC2_P256, 0, &f->ec) ||
        ace_key_generate(ACE_KEY_SYMMETRIC, 32, &f->hmac) ||
        ace_key_generate(ACE_KEY_SYMMETRIC, 16, &f->aes) ||
        ace_key_generate(ACE_KEY_SYMMETRIC, 32, &f->pop_sym) ||
        ace_key_generate(ACE_KEY_EC2_P256, 0, &f->pop_ec) ||
        ace_key_generate(ACE_KEY_OKP_ED25519, 0, &f->pop_ed))
        return -1;
    memcpy(f->aes.pub.kid, "aes", 3);
    f->aes.pub.kid_len = 3;
    f->t = ace_trust_new("mqtts://broker.example", 5, 3);
    return f->t && !ace_trust_add_issuer_key(f->t, iss, &f->ec.pub) &&
                   !ace_trust_add_issuer_key(f->t, iss, &f->hmac.pub) &&
                   !ace_trust_add_issuer_key(f->t, iss, &f->aes.pub) ? 0 : -1;
}

static const uint8_t AIF[] = {0x81, 0x82, 0x61, 'a', 0x81, 0x63, 'p', 'u', 'b'}; /* [["a",["pub"]]] */

static ace_mint_t base_claims(int64_t now)
{
    ace_mint_t m = {.iss = "as1", .sub = "dev1", .aud = "mqtts://broker.example", .has_exp = 1,
                    .exp = now + 3600, .has_iat = 1, .iat = now, .scope_kind = ACE_SCOPE_BSTR,
                    .scope = AIF, .scope_len = sizeof(AIF), .profile_kind = 1, .profile = 3};
    return m;
}

TEST(mint_verify_round_trips_every_format_and_cnf_type)
{
    fixture_t f;
    ASSERT_EQ(fixture(&f, "as1"), 0);
    int64_t now = (int64_t)time(NULL);
    const ace_mint_format_t fmts[] = {ACE_MINT_CWT_SIGN1, ACE_MINT_CWT_MAC0, ACE_MINT_CWT_ENCRYPT0,
                                      ACE_MINT_CWT_NESTED, ACE_MINT_JWT_ES256, ACE_MINT_JWT_HS256};
    const ace_keypair_t *signer[] = {&f.ec, &f.hmac, &f.aes, &f.ec, &f.ec, &f.hmac};
    const ace_keypair_t *pops[] = {&f.pop_sym, &f.pop_ec, &f.pop_ed};
    for (int i = 0; i < 6; i++) {
        for (int k = 0; k < 3; k++) {
            ace_mint_t m = base_claims(now);
            m.cnf_key = &pops[k]->pub;
            m.cwt_tag = k == 1;
            if (fmts[i] >= ACE_MINT_JWT_ES256) {
                m.scope_kind = ACE_SCOPE_TSTR;
                m.scope = (const uint8_t *)"[[\"a\",[\"pub\"]]]";
                m.scope_len = strlen((const char *)m.scope);
            }
            uint8_t *tok;
            size_t len;
            ace_claims_t c;
            ASSERT_EQ(ace_token_mint(&m, fmts[i], signer[i], &f.aes, &tok, &len), 0);
            ASSERT_EQ(ace_token_verify(f.t, tok, len, now, &c), 0);
            ASSERT_STR_EQ(c.iss, "as1");
            ASSERT_STR_EQ(c.sub, "dev1");
            ASSERT(c.has_cnf && !c.cnf_is_kid_only);
            ASSERT_EQ(c.cnf_key.type, pops[k]->pub.type);
            ASSERT_EQ(c.cnf_key.k_len, pops[k]->pub.k_len);
            ASSERT_MEM_EQ(c.cnf_key.k, pops[k]->pub.k, c.cnf_key.k_len);
            ASSERT_EQ(c.is_jwt, fmts[i] >= ACE_MINT_JWT_ES256);
            ASSERT_EQ(c.scope_len, m.scope_len);
            ASSERT_MEM_EQ(c.scope, m.scope, m.scope_len);
            ASSERT_EQ(c.scope_kind, m.scope_kind);
            ace_claims_free(&c);
            ASSERT_EQ(ace_token_verify(f.t, tok, len, now + 3600 + 5, &c), ACE_E_EXPIRED);
            free(tok);
        }
    }
    ace_trust_free(f.t);
}

TEST(cnf_encrypted_and_kid_and_bare_scope)
{
    fixture_t f;
    ASSERT_EQ(fixture(&f, "as1"), 0);
    int64_t now = (int64_t)time(NULL);
    ace_mint_t m = base_claims(now);
    uint8_t *tok;
    size_t len;
    ace_claims_t c;
    m.cnf_key = &f.pop_sym.pub;
    m.cnf_enc_key = &f.aes.pub; /* RFC 8747 §3.3 Encrypted_COSE_Key */
    m.scope_kind = ACE_SCOPE_CBOR_ARRAY;
    ASSERT_EQ(ace_token_mint(&m, ACE_MINT_CWT_SIGN1, &f.ec, NULL, &tok, &len), 0);
    ASSERT_EQ(ace_token_verify(f.t, tok, len, now, &c), 0);
    ASSERT(c.has_cnf);
    ASSERT_EQ(c.cnf_key.k_len, 32);
    ASSERT_MEM_EQ(c.cnf_key.k, f.pop_sym.pub.k, 32);
    ASSERT_EQ(c.scope_kind, ACE_SCOPE_CBOR_ARRAY);
    ASSERT_EQ(c.scope_len, sizeof(AIF));
    ASSERT_MEM_EQ(c.scope, AIF, sizeof(AIF));
    ace_claims_free(&c);
    free(tok);
    m.cnf_key = NULL;
    m.cnf_kid = (const uint8_t *)"\x01\x02";
    m.cnf_kid_len = 2;
    for (int fmt = ACE_MINT_CWT_SIGN1; fmt <= ACE_MINT_JWT_ES256; fmt += ACE_MINT_JWT_ES256) {
        m.scope_kind = fmt == ACE_MINT_JWT_ES256 ? ACE_SCOPE_JSON_ARRAY : ACE_SCOPE_BSTR;
        m.scope = fmt == ACE_MINT_JWT_ES256 ? (const uint8_t *)"[[\"a\",[\"sub\"]]]" : AIF;
        m.scope_len = fmt == ACE_MINT_JWT_ES256 ? 15 : sizeof(AIF);
        ASSERT_EQ(ace_token_mint(&m, (ace_mint_format_t)fmt, &f.ec, NULL, &tok, &len), 0);
        ASSERT_EQ(ace_token_verify(f.t, tok, len, now, &c), 0);
        ASSERT(c.has_cnf && c.cnf_is_kid_only);
        ASSERT_EQ(c.cnf_key.kid_len, 2);
        ASSERT_EQ(c.scope_kind, m.scope_kind);
        ASSERT_MEM_EQ(c.scope, m.scope, m.scope_len);
        ace_claims_free(&c);
        free(tok);
    }
    ace_trust_free(f.t);
}

static int mint_verify(fixture_t *f, const ace_mint_t *m, ace_mint_format_t fmt, int64_t now,
                       ace_claims_t *c)
{
    uint8_t *tok;
    size_t len;
    const ace_keypair_t *k = fmt == ACE_MINT_CWT_MAC0 || fmt == ACE_MINT_JWT_HS256 ? &f->hmac : &f->ec;
    int rc = ace_token_mint(m, fmt, k, &f->aes, &tok, &len);
    if (rc)
        return 1000 + rc;
    rc = ace_token_verify(f->t, tok, len, now, c);
    free(tok);
    return rc;
}

TEST(claim_rules_profile_aud_array_iss)
{
    fixture_t f;
    ASSERT_EQ(fixture(&f, "as1"), 0);
    int64_t now = (int64_t)time(NULL);
    ace_claims_t c;
    for (int fmt = ACE_MINT_CWT_MAC0; fmt <= ACE_MINT_JWT_HS256; fmt += 4) {
        ace_mint_t m = base_claims(now);
        m.scope_kind = ACE_SCOPE_NONE;
        m.profile_kind = 2; /* "mqtt_tls" */
        ASSERT_EQ(mint_verify(&f, &m, fmt, now, &c), 0);
        ace_claims_free(&c);
        m.profile_kind = 1;
        m.profile = 2; /* coap_oscore */
        ASSERT_EQ(mint_verify(&f, &m, fmt, now, &c), ACE_E_PROFILE);
        m.profile_kind = 0;
        m.iss = NULL; /* no iss: the verifying key's issuer is reported */
        ASSERT_EQ(mint_verify(&f, &m, fmt, now, &c), 0);
        ASSERT_STR_EQ(c.iss, "as1");
        ace_claims_free(&c);
        m.iss = "as2"; /* an issuer we do not know */
        ASSERT_EQ(mint_verify(&f, &m, fmt, now, &c), ACE_E_UNKNOWN_ISSUER);
        m.iss = "as1";
        m.aud = "someone-else";
        ASSERT_EQ(mint_verify(&f, &m, fmt, now, &c), ACE_E_WRONG_AUDIENCE);
        m.aud = NULL;
        ASSERT_EQ(mint_verify(&f, &m, fmt, now, &c), ACE_E_WRONG_AUDIENCE);
        m.aud = "mqtts://broker.example";
        m.has_nbf = 1;
        m.nbf = now + 60;
        ASSERT_EQ(mint_verify(&f, &m, fmt, now, &c), ACE_E_NOT_YET_VALID);
        ASSERT_EQ(mint_verify(&f, &m, fmt, now + 56, &c), 0); /* skew 5 */
        ace_claims_free(&c);
        m.has_nbf = 0;
        m.has_exp = 0;
        ASSERT_EQ(mint_verify(&f, &m, fmt, now, &c), ACE_E_CLAIM); /* neither exp nor exi */
        m.has_exi = 1;
        m.exi = 600;
        ASSERT_EQ(mint_verify(&f, &m, fmt, now, &c), 0);
        ASSERT(c.has_exi && c.exi == 600);
        ace_claims_free(&c);
    }
    /* aud as an array (CWT), written by hand */
    ace_keypair_t *k = &f.hmac;
    const uint8_t claims[] = {0xa3, 0x01, 0x63, 'a', 's', '1', 0x03, 0x82, 0x61, 'x', 0x76,
                              'm', 'q', 't', 't', 's', ':', '/', '/', 'b', 'r', 'o', 'k', 'e', 'r',
                              '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x18, 0x28, 0x18, 0x3c};
    uint8_t *tok;
    size_t len;
    ASSERT_EQ(ace_cose_mac0_create(claims, sizeof(claims), 5, &k->pub, 0, &tok, &len), 0);
    ASSERT_EQ(ace_token_verify(f.t, tok, len, now, &c), 0);
    ace_claims_free(&c);
    free(tok);
    ace_trust_free(f.t);
}

TEST(exi_tracker_and_cnonce)
{
    fixture_t f;
    ASSERT_EQ(fixture(&f, "as1"), 0);
    int64_t now = (int64_t)time(NULL);
    ace_claims_t c;
    ace_mint_t m = base_claims(now);
    const uint8_t cti[] = {'r', 's', '1', 0x01, 0x07}; /* prefix "rs1", sequence 263 */
    const uint8_t nonce[] = {1, 2, 3, 4, 5, 6, 7, 8};
    m.has_exi = 1;
    m.exi = 60;
    m.cti = cti;
    m.cti_len = sizeof(cti);
    m.cnonce = nonce;
    m.cnonce_len = sizeof(nonce);
    m.scope_kind = ACE_SCOPE_NONE;
    ace_exi_tracker_t *tr = ace_exi_tracker_new();
    ASSERT(tr);
    for (int fmt = ACE_MINT_CWT_SIGN1; fmt <= ACE_MINT_JWT_ES256; fmt += ACE_MINT_JWT_ES256) {
        ASSERT_EQ(mint_verify(&f, &m, (ace_mint_format_t)fmt, now, &c), 0);
        ASSERT(c.has_cnonce);
        ASSERT_EQ(ace_claims_check_cnonce(&c, nonce, sizeof(nonce)), 0);
        ASSERT_EQ(ace_claims_check_cnonce(&c, nonce, 7), ACE_E_NONCE);
        uint8_t other[8] = {1, 2, 3, 4, 5, 6, 7, 9};
        ASSERT_EQ(ace_claims_check_cnonce(&c, other, 8), ACE_E_NONCE);
        if (fmt == ACE_MINT_CWT_SIGN1) {
            ASSERT_EQ(ace_exi_check_claims(tr, &c, 3), 0);
            ASSERT_EQ(ace_exi_check_claims(tr, &c, 3), ACE_E_REPLAY);
        }
        ace_claims_free(&c);
    }
    ASSERT_EQ(ace_exi_check_and_record(tr, "as1", 6), ACE_E_REPLAY);
    ASSERT_EQ(ace_exi_check_and_record(tr, "as1", 263), ACE_E_REPLAY);
    ASSERT_EQ(ace_exi_check_and_record(tr, "as1", 264), 0);
    ASSERT_EQ(ace_exi_check_and_record(tr, "as2", 1), 0);
    uint64_t seq;
    ASSERT_EQ(ace_exi_seq_from_cti(cti, sizeof(cti), 3, &seq), 0);
    ASSERT_EQ(seq, 263);
    ASSERT_EQ(ace_exi_seq_from_cti(cti, sizeof(cti), 5, &seq), ACE_E_CLAIM);
    ace_claims_t none = {0};
    ASSERT_EQ(ace_claims_check_cnonce(&none, nonce, sizeof(nonce)), ACE_E_NONCE);
    ace_exi_tracker_free(tr);
    ace_trust_free(f.t);
}

TEST(token_cache_hits_and_expires)
{
    fixture_t f;
    ASSERT_EQ(fixture(&f, "as1"), 0);
    int64_t now = (int64_t)time(NULL);
    ace_mint_t m = base_claims(now);
    m.exp = now + 100;
    uint8_t *tok;
    size_t len;
    ace_claims_t c, c2;
    ASSERT_EQ(ace_token_mint(&m, ACE_MINT_CWT_SIGN1, &f.ec, NULL, &tok, &len), 0);
    ace_token_cache_t *cache = ace_token_cache_new(64, 3600);
    ASSERT(cache);
    ASSERT_EQ(ace_token_verify_cached(cache, f.t, tok, len, now, &c), 0);
    ASSERT_EQ(ace_token_cache_get(cache, c.digest, now + 1, &c2), 1);
    ASSERT_STR_EQ(c2.sub, "dev1");
    ASSERT_MEM_EQ(c2.scope, c.scope, c.scope_len);
    ace_claims_free(&c2);
    ASSERT_EQ(ace_token_verify_cached(cache, f.t, tok, len, now + 2, &c2), 0);
    ace_claims_free(&c2);
    /* the entry lives until exp + skew (5) */
    ASSERT_EQ(ace_token_cache_get(cache, c.digest, now + 104, &c2), 1);
    ace_claims_free(&c2);
    ASSERT_EQ(ace_token_cache_get(cache, c.digest, now + 105, &c2), 0);
    ASSERT_EQ(ace_token_verify_cached(cache, f.t, tok, len, now + 105, &c2), ACE_E_EXPIRED);
    tok[len - 1] ^= 1; /* a failed token is not cached */
    ASSERT_EQ(ace_token_verify_cached(cache, f.t, tok, len, now, &c2), ACE_E_BAD_SIGNATURE);
    ace_claims_free(&c);
    /* fill past capacity: no crash, still bounded */
    for (int i = 0; i < 200; i++) {
        ace_claims_t x = {0};
        memcpy(x.digest, &i, sizeof(i));
        ASSERT_EQ(ace_token_cache_put(cache, &x, now, now + 10 + i), 0);
    }
    ace_token_cache_free(cache);
    free(tok);
    ace_trust_free(f.t);
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    size_t w = fwrite(p, 1, n, fp);
    return fclose(fp) == 0 && w == n ? 0 : -1;
}

TEST(trust_keyfiles_in_every_form)
{
    ace_keypair_t ec, sym;
    char path[64], pem[1024], err[128];
    char *jwk;
    uint8_t *cose;
    size_t cose_len;
    ASSERT_EQ(ace_key_generate(ACE_KEY_EC2_P256, 0, &ec), 0);
    ASSERT_EQ(ace_key_generate(ACE_KEY_SYMMETRIC, 32, &sym), 0);
    ace_trust_t *t = ace_trust_new("aud", 0, 0);
    snprintf(path, sizeof(path), "/tmp/ace_test_key_%d", (int)getpid());
    ASSERT_EQ(ace_key_to_pem(&ec, 0, pem, sizeof(pem)), 0);
    ASSERT_EQ(write_file(path, pem, strlen(pem)), 0);
    ASSERT_EQ(ace_trust_add_issuer_keyfile(t, "as", path, err, sizeof(err)), 0);
    ASSERT_EQ(ace_key_to_pem(&ec, 1, pem, sizeof(pem)), 0);
    ASSERT_EQ(write_file(path, pem, strlen(pem)), 0);
    ASSERT_EQ(ace_trust_add_issuer_keyfile(t, "as", path, err, sizeof(err)), 0);
    ASSERT_EQ(ace_key_to_jwk(&ec, 0, &jwk), 0);
    char set[512];
    snprintf(set, sizeof(set), "{\"keys\":[%s,%s]}", jwk, jwk);
    free(jwk);
    ASSERT_EQ(write_file(path, set, strlen(set)), 0);
    ASSERT_EQ(ace_trust_add_issuer_keyfile(t, "as", path, err, sizeof(err)), 0);
    ASSERT_EQ(ace_key_to_cose(&ec, 0, &cose, &cose_len), 0);
    ASSERT_EQ(write_file(path, cose, cose_len), 0);
    free(cose);
    ASSERT_EQ(ace_trust_add_issuer_keyfile(t, "as", path, err, sizeof(err)), 0);
    char hex[130];
    ace_hex_encode(sym.pub.k, sym.pub.k_len, hex);
    strcat(hex, "\n");
    ASSERT_EQ(write_file(path, hex, strlen(hex)), 0);
    ASSERT_EQ(ace_trust_add_issuer_keyfile(t, "as", path, err, sizeof(err)), 0);
    ASSERT_EQ(write_file(path, "{\"kty\":\"RSA\"}", 13), 0);
    ASSERT_EQ(ace_trust_add_issuer_keyfile(t, "as", path, err, sizeof(err)), ACE_E_KEY);
    ASSERT(strstr(err, "JWK") != NULL);
    unlink(path);
    ASSERT_EQ(ace_trust_add_issuer_keyfile(t, "as", path, err, sizeof(err)), ACE_E_IO);
    /* a point not on the curve is refused */
    ace_keypair_t bad = ec;
    bad.pub.k[64] ^= 1;
    ASSERT_EQ(ace_trust_add_issuer_key(t, "as", &bad.pub), ACE_E_KEY);
    ace_trust_free(t);
    ASSERT(ace_trust_new("aud", -1, 0) == NULL);
    ASSERT(strlen(ace_strerror(ACE_E_REPLAY)) > 0);
}

int main(void)
{
    RUN(rfc8392_tokens_verify_and_decode_a1);
    RUN(time_checks_with_and_without_skew);
    RUN(issuer_audience_and_alg_policy);
    RUN(tampering_and_hostile_input);
    RUN(nested_tags_inside_claims_rejected);
    RUN(mint_verify_round_trips_every_format_and_cnf_type);
    RUN(cnf_encrypted_and_kid_and_bare_scope);
    RUN(claim_rules_profile_aud_array_iss);
    RUN(exi_tracker_and_cnonce);
    RUN(token_cache_hits_and_expires);
    RUN(trust_keyfiles_in_every_form);
    return test_summary();
}
