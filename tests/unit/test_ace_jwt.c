/*
 * tests/unit/test_ace_jwt.c: JWS compact verification against RFC 7515 A.1 (HS256) and A.3 (ES256,
 * a high-S signature mbedTLS accepts), base64url strictness, and the refusals: alg none, unknown
 * algorithms, crit, tampering.
 */
#include "ace/b64url.h"
#include "ace/jwt.h"
#include "tests/unit/ace_vectors.h"
#include "tests/unit/test.h"

TEST(b64url_strict)
{
    uint8_t out[16];
    size_t n;
    char enc[16];
    ASSERT_EQ(ace_b64url_decode("Zm9vYg", 6, out, sizeof(out), &n), 0);
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(out, "foob", 4);
    ASSERT_EQ(ace_b64url_decode("Zm9vYh", 6, out, sizeof(out), &n), -1); /* non-zero spare bits */
    ASSERT_EQ(ace_b64url_decode("Zm9vYg==", 8, out, sizeof(out), &n), -1);
    ASSERT_EQ(ace_b64url_decode("Zm+v", 4, out, sizeof(out), &n), -1);
    ASSERT_EQ(ace_b64url_decode("Z", 1, out, sizeof(out), &n), -1);
    ASSERT_EQ(ace_b64url_encode((const uint8_t *)"\xfb\xff", 2, enc, sizeof(enc)), 3);
    ASSERT_STR_EQ(enc, "-_8");
    ASSERT_EQ(ace_b64url_encode((const uint8_t *)"foob", 4, enc, 6), -1);
}

TEST(rfc7515_a1_hs256)
{
    ace_keypair_t kp;
    ace_jws_t j;
    const char *tok = RFC7515_A1_TOKEN;
    ASSERT_EQ(key_from_text(RFC7515_A1_JWK, 0, &kp), 0);
    ASSERT_EQ(kp.pub.k_len, 64);
    ASSERT(ace_jws_looks_like((const uint8_t *)tok, strlen(tok)));
    ASSERT_EQ(ace_jws_parse(tok, strlen(tok), &j), 0);
    ASSERT_EQ(j.alg, ACE_ALG_JWS_HS256);
    ASSERT(memmem(j.payload, j.payload_len, "\"iss\":\"joe\"", 11) != NULL);
    ASSERT_EQ(ace_jws_verify_hs256(&j, kp.pub.k, kp.pub.k_len), 0);
    ASSERT_EQ(ace_jws_verify_hs256(&j, kp.pub.k, 63), ACE_E_BAD_SIGNATURE);
    ace_jws_free(&j);
}

TEST(rfc7515_a3_es256)
{
    ace_keypair_t kp;
    ace_ec_ctx_t ec;
    ace_jws_t j;
    const char *tok = RFC7515_A3_TOKEN;
    ASSERT_EQ(key_from_text(RFC7515_A3_JWK, 0, &kp), 0);
    ASSERT_EQ(ace_ec_ctx_init(&ec, &kp.pub), 0);
    ASSERT_EQ(ace_jws_parse(tok, strlen(tok), &j), 0);
    ASSERT_EQ(j.alg, ACE_ALG_JWS_ES256);
    ASSERT_EQ(j.sig_len, 64);
    ASSERT_EQ(ace_jws_verify_es256(&j, &ec), 0);
    ASSERT_EQ(ace_jws_verify_hs256(&j, kp.pub.k, 32), ACE_E_BAD_ALG);
    ace_jws_free(&j);
    /* tamper with the payload: "joe" -> "jof" inside the base64 */
    char bad[] = RFC7515_A3_TOKEN;
    char *p = strchr(bad, '.') + 1;
    p[5] = p[5] == 'A' ? 'B' : 'A';
    ASSERT_EQ(ace_jws_parse(bad, strlen(bad), &j), 0);
    ASSERT_EQ(ace_jws_verify_es256(&j, &ec), ACE_E_BAD_SIGNATURE);
    ace_jws_free(&j);
    ace_ec_ctx_free(&ec);
}

/* header.payload.signature with a JSON header given in clear. */
static char *make_jws(const char *header, const char *sig)
{
    static char buf[512];
    char h[256];
    ace_b64url_encode((const uint8_t *)header, strlen(header), h, sizeof(h));
    snprintf(buf, sizeof(buf), "%s.eyJpc3MiOiJqb2UifQ.%s", h, sig);
    return buf;
}

TEST(refuses_none_unknown_alg_and_crit)
{
    ace_jws_t j;
    const char *t;
    t = make_jws("{\"alg\":\"none\"}", "");
    ASSERT_EQ(ace_jws_parse(t, strlen(t), &j), ACE_E_MALFORMED);
    t = make_jws("{\"alg\":\"none\"}", "AAAA");
    ASSERT_EQ(ace_jws_parse(t, strlen(t), &j), ACE_E_BAD_ALG);
    t = make_jws("{\"alg\":\"RS256\"}", "AAAA");
    ASSERT_EQ(ace_jws_parse(t, strlen(t), &j), ACE_E_BAD_ALG);
    t = make_jws("{\"typ\":\"JWT\"}", "AAAA");
    ASSERT_EQ(ace_jws_parse(t, strlen(t), &j), ACE_E_BAD_ALG);
    t = make_jws("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", "AAAA");
    ASSERT_EQ(ace_jws_parse(t, strlen(t), &j), ACE_E_BAD_ALG);
    t = make_jws("{\"alg\":\"HS256\",\"alg\":\"none\"}", "AAAA");
    ASSERT_EQ(ace_jws_parse(t, strlen(t), &j), ACE_E_MALFORMED); /* duplicate member */
    t = make_jws("[1]", "AAAA");
    ASSERT_EQ(ace_jws_parse(t, strlen(t), &j), ACE_E_MALFORMED);
    t = make_jws("{\"alg\":\"HS256\"}", "AAAA");
    ASSERT_EQ(ace_jws_parse(t, strlen(t), &j), 0);
    ace_jws_free(&j);
    ASSERT(!ace_jws_looks_like((const uint8_t *)"a.b", 3));
    ASSERT(!ace_jws_looks_like((const uint8_t *)"aa.b+.c", 7));
    ASSERT(!ace_jws_looks_like((const uint8_t *)"a.b.c.d", 7));
}

TEST(create_round_trip)
{
    ace_keypair_t ec_kp, sym;
    ace_ec_ctx_t ec;
    ace_jws_t j;
    char *tok;
    const char *payload = "{\"iss\":\"as\"}";
    ASSERT_EQ(ace_key_generate(ACE_KEY_EC2_P256, 0, &ec_kp), 0);
    memcpy(ec_kp.pub.kid, "k1", 2);
    ec_kp.pub.kid_len = 2;
    ASSERT_EQ(ace_ec_ctx_init(&ec, &ec_kp.pub), 0);
    ASSERT_EQ(ace_jws_create(payload, strlen(payload), ACE_ALG_JWS_ES256, &ec_kp, &tok), 0);
    ASSERT_EQ(ace_jws_parse(tok, strlen(tok), &j), 0);
    ASSERT_EQ(j.kid_len, 2);
    ASSERT_EQ(ace_jws_verify_es256(&j, &ec), 0);
    ASSERT_EQ(j.payload_len, strlen(payload));
    ace_jws_free(&j);
    free(tok);
    ASSERT_EQ(ace_key_generate(ACE_KEY_SYMMETRIC, 32, &sym), 0);
    ASSERT_EQ(ace_jws_create(payload, strlen(payload), ACE_ALG_JWS_HS256, &sym, &tok), 0);
    ASSERT_EQ(ace_jws_parse(tok, strlen(tok), &j), 0);
    ASSERT_EQ(ace_jws_verify_hs256(&j, sym.pub.k, sym.pub.k_len), 0);
    ace_jws_free(&j);
    free(tok);
    ASSERT_EQ(ace_jws_create(payload, strlen(payload), ACE_ALG_JWS_ES256, &sym, &tok), ACE_E_KEY);
    ace_ec_ctx_free(&ec);
}

int main(void)
{
    RUN(b64url_strict);
    RUN(rfc7515_a1_hs256);
    RUN(rfc7515_a3_es256);
    RUN(refuses_none_unknown_alg_and_crit);
    RUN(create_round_trip);
    return test_summary();
}
