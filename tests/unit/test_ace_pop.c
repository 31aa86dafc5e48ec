/*
 * tests/unit/test_ace_pop.c: proof-of-possession checks against published vectors (RFC 4231 for
 * HMAC-SHA-256, RFC 8032 §7.1 for Ed25519), ES256 signed independently with mbedTLS, wrong proofs,
 * wrong lengths, challenge/response framing and nonces.
 */
#include "ace/pop.h"
#include "tests/unit/test.h"

#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>
#include <sodium.h>
#include <stdlib.h>

static void unhex(const char *h, uint8_t *out)
{
    for (size_t i = 0; h[2 * i]; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

TEST(hmac_rfc4231_case2)
{
    const char *msg = "what do ya want for nothing?";
    uint8_t mac[32], out[ACE_POP_MAX_LEN];
    size_t n;
    unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", mac);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_SYMMETRIC, (const uint8_t *)"Jefe", 4, (const uint8_t *)msg,
                             strlen(msg), mac, 32), 0);
    ASSERT_EQ(ace_pop_sign(ACE_KEY_SYMMETRIC, (const uint8_t *)"Jefe", 4, (const uint8_t *)msg,
                           strlen(msg), out, &n), 0);
    ASSERT_EQ(n, 32);
    ASSERT_MEM_EQ(out, mac, 32);
    /* Through an ace_key_t, as a token's cnf carries it. */
    ace_key_t k = { .type = ACE_KEY_SYMMETRIC, .k_len = 4 };
    memcpy(k.k, "Jefe", 4);
    ASSERT_EQ(ace_pop_verify_key(&k, (const uint8_t *)msg, strlen(msg), mac, 32), 0);
    mac[31] ^= 1;
    ASSERT_EQ(ace_pop_verify_key(&k, (const uint8_t *)msg, strlen(msg), mac, 32), ACE_E_BAD_SIGNATURE);
    mac[31] ^= 1;
    ASSERT_EQ(ace_pop_verify_key(&k, (const uint8_t *)msg, strlen(msg), mac, 31), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pop_verify_key(&k, (const uint8_t *)msg, strlen(msg) - 1, mac, 32),
              ACE_E_BAD_SIGNATURE);
    k.k[0] = 'j';
    ASSERT_EQ(ace_pop_verify_key(&k, (const uint8_t *)msg, strlen(msg), mac, 32), ACE_E_BAD_SIGNATURE);
    k.k_len = 0;
    ASSERT_EQ(ace_pop_verify_key(&k, (const uint8_t *)msg, strlen(msg), mac, 32), ACE_E_KEY);
}

TEST(ed25519_rfc8032_test1)
{
    uint8_t sk[32], pk[32], sig[64], out[ACE_POP_MAX_LEN];
    size_t n;
    unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", sk);
    unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pk);
    unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
          "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b", sig);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_OKP_ED25519, pk, 32, (const uint8_t *)"", 0, sig, 64), 0);
    ASSERT_EQ(ace_pop_sign(ACE_KEY_OKP_ED25519, sk, 32, (const uint8_t *)"", 0, out, &n), 0);
    ASSERT_EQ(n, 64);
    ASSERT_MEM_EQ(out, sig, 64);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_OKP_ED25519, pk, 32, (const uint8_t *)"x", 1, sig, 64),
              ACE_E_BAD_SIGNATURE);
    sig[0] ^= 0x80;
    ASSERT_EQ(ace_pop_verify(ACE_KEY_OKP_ED25519, pk, 32, (const uint8_t *)"", 0, sig, 64),
              ACE_E_BAD_SIGNATURE);
    sig[0] ^= 0x80;
    ASSERT_EQ(ace_pop_verify(ACE_KEY_OKP_ED25519, pk, 32, (const uint8_t *)"", 0, sig, 63),
              ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_OKP_ED25519, pk, 31, (const uint8_t *)"", 0, sig, 64), ACE_E_KEY);
}

/* Independent ES256 signer: a fresh mbedTLS key pair, r||s written by hand. */
static int rng(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    randombytes_buf(out, len);
    return 0;
}

TEST(es256_mbedtls_signed)
{
    mbedtls_ecdsa_context ec;
    mbedtls_mpi r, s;
    uint8_t pub[65], d[32], hash[32], sig[64], out[ACE_POP_MAX_LEN], chal[ACE_POP_CHALLENGE_LEN];
    size_t olen, n;
    ASSERT_EQ(sodium_init() >= 0, 1);
    randombytes_buf(chal, sizeof chal);
    mbedtls_ecdsa_init(&ec);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ASSERT_EQ(mbedtls_ecdsa_genkey(&ec, MBEDTLS_ECP_DP_SECP256R1, rng, NULL), 0);
    ASSERT_EQ(mbedtls_ecp_point_write_binary(&ec.grp, &ec.Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, pub,
                                             sizeof pub), 0);
    ASSERT_EQ(olen, 65);
    ASSERT_EQ(mbedtls_mpi_write_binary(&ec.d, d, 32), 0);
    ASSERT_EQ(mbedtls_sha256_ret(chal, sizeof chal, hash, 0), 0);
    ASSERT_EQ(mbedtls_ecdsa_sign(&ec.grp, &r, &s, &ec.d, hash, 32, rng, NULL), 0);
    ASSERT_EQ(mbedtls_mpi_write_binary(&r, sig, 32), 0);
    ASSERT_EQ(mbedtls_mpi_write_binary(&s, sig + 32, 32), 0);
    mbedtls_ecdsa_free(&ec);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);

    ASSERT_EQ(ace_pop_verify(ACE_KEY_EC2_P256, pub, 65, chal, sizeof chal, sig, 64), 0);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_EC2_P256, pub + 1, 64, chal, sizeof chal, sig, 64), 0);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_EC2_P256, pub, 65, chal, sizeof chal, sig, 63),
              ACE_E_BAD_SIGNATURE);
    chal[5] ^= 1;
    ASSERT_EQ(ace_pop_verify(ACE_KEY_EC2_P256, pub, 65, chal, sizeof chal, sig, 64),
              ACE_E_BAD_SIGNATURE);
    chal[5] ^= 1;
    /* ace_pop_sign (deterministic) verifies too and is stable. */
    ASSERT_EQ(ace_pop_sign(ACE_KEY_EC2_P256, d, 32, chal, sizeof chal, out, &n), 0);
    ASSERT_EQ(n, 64);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_EC2_P256, pub, 65, chal, sizeof chal, out, 64), 0);
    ASSERT_EQ(ace_pop_sign(ACE_KEY_EC2_P256, d, 32, chal, sizeof chal, sig, &n), 0);
    ASSERT_MEM_EQ(out, sig, 64);
    /* Bad keys: not on the curve, wrong prefix, wrong length. */
    pub[64] ^= 1;
    ASSERT_EQ(ace_pop_verify(ACE_KEY_EC2_P256, pub, 65, chal, sizeof chal, out, 64), ACE_E_KEY);
    pub[64] ^= 1;
    pub[0] = 0x02;
    ASSERT_EQ(ace_pop_verify(ACE_KEY_EC2_P256, pub, 65, chal, sizeof chal, out, 64), ACE_E_KEY);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_EC2_P256, pub, 33, chal, sizeof chal, out, 64), ACE_E_KEY);
    /* r = 0 is never valid. */
    pub[0] = 0x04;
    memset(out, 0, 32);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_EC2_P256, pub, 65, chal, sizeof chal, out, 64),
              ACE_E_BAD_SIGNATURE);
}

TEST(challenge_response)
{
    uint8_t rs[ACE_POP_NONCE_LEN], rs2[ACE_POP_NONCE_LEN], data[8 + 64], input[16];
    size_t n;
    ace_key_t k = { .type = ACE_KEY_SYMMETRIC, .k_len = 16 };
    memset(k.k, 0x42, 16);
    ASSERT_EQ(ace_pop_nonce(rs), 0);
    ASSERT_EQ(ace_pop_nonce(rs2), 0);
    ASSERT(memcmp(rs, rs2, sizeof rs) != 0);
    ASSERT_EQ(ace_pop_nonce(data), 0); /* client nonce */
    memcpy(input, rs, 8);
    memcpy(input + 8, data, 8);
    ASSERT_EQ(ace_pop_sign(ACE_KEY_SYMMETRIC, k.k, k.k_len, input, 16, data + 8, &n), 0);
    ASSERT_EQ(ace_pop_verify_response(&k, rs, data, 8 + n), 0);
    ASSERT_EQ(ace_pop_verify_response(&k, rs2, data, 8 + n), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pop_verify_response(&k, rs, data, 8 + n - 1), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pop_verify_response(&k, rs, data, 7), ACE_E_MALFORMED);
    /* An old-draft client putting a nonce length byte in front is rejected. */
    uint8_t old[1 + 8 + 32];
    old[0] = 8;
    memcpy(old + 1, data, 8 + 32);
    ASSERT_EQ(ace_pop_verify_response(&k, rs, old, sizeof old), ACE_E_BAD_SIGNATURE);
    /* Ed25519 the same way. */
    uint8_t seed[32], pk[32], sk[64];
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    ace_key_t e = { .type = ACE_KEY_OKP_ED25519, .k_len = 32 };
    memcpy(e.k, pk, 32);
    ASSERT_EQ(ace_pop_sign(ACE_KEY_OKP_ED25519, seed, 32, input, 16, data + 8, &n), 0);
    ASSERT_EQ(ace_pop_verify_response(&e, rs, data, 8 + n), 0);
    ASSERT_EQ(ace_pop_verify_response(&e, rs2, data, 8 + n), ACE_E_BAD_SIGNATURE);
}

TEST(lengths_and_args)
{
    uint8_t buf[64] = { 0 };
    size_t n;
    ASSERT_EQ(ace_pop_len(ACE_KEY_SYMMETRIC), 32);
    ASSERT_EQ(ace_pop_len(ACE_KEY_OKP_ED25519), 64);
    ASSERT_EQ(ace_pop_len(ACE_KEY_EC2_P256), 64);
    ASSERT_EQ(ace_pop_len((ace_key_type_t)7), 0);
    ASSERT_EQ(ace_pop_verify((ace_key_type_t)7, buf, 32, buf, 32, buf, 32), ACE_E_ARG);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_SYMMETRIC, NULL, 32, buf, 32, buf, 32), ACE_E_ARG);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_SYMMETRIC, buf, 32, buf, 32, NULL, 32), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pop_verify(ACE_KEY_SYMMETRIC, buf, 65, buf, 32, buf, 32), ACE_E_KEY);
    ASSERT_EQ(ace_pop_sign(ACE_KEY_OKP_ED25519, buf, 31, buf, 32, buf, &n), ACE_E_KEY);
    ASSERT_EQ(ace_pop_sign(ACE_KEY_EC2_P256, buf, 32, buf, 32, buf, &n), ACE_E_KEY); /* d = 0 */
    ASSERT_EQ(ace_pop_verify_key(NULL, buf, 32, buf, 32), ACE_E_ARG);
}

int main(void)
{
    if (ace_pop_init() != 0)
        return 1;
    RUN(hmac_rfc4231_case2);
    RUN(ed25519_rfc8032_test1);
    RUN(es256_mbedtls_signed);
    RUN(challenge_response);
    RUN(lengths_and_args);
    return test_summary();
}
