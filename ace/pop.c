/*
 * ace/pop.c: proof-of-possession checks (HMAC-SHA-256 with mbedTLS, Ed25519 with libsodium, ES256
 * with mbedTLS over one shared P-256 group) and challenge nonces from libsodium's CSPRNG.
 */
#include "ace/pop.h"

#include <mbedtls/constant_time.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

/* One P-256 group for the process. mbedTLS builds the comb table of G on the first multiplication by
 * G and stores it in the group; doing that here, once, leaves later verifies only reading it. */
static mbedtls_ecp_group p256;
static int init_rc = ACE_E_ARG;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static int rng(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    randombytes_buf(out, len);
    return 0;
}

static void init_all(void)
{
    mbedtls_ecp_point R;
    mbedtls_mpi one;
    if (sodium_init() < 0) {
        init_rc = ACE_E_ARG;
        return;
    }
    mbedtls_ecp_group_init(&p256);
    mbedtls_ecp_point_init(&R);
    mbedtls_mpi_init(&one);
    if (mbedtls_ecp_group_load(&p256, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
        mbedtls_mpi_lset(&one, 1) != 0 || mbedtls_ecp_mul(&p256, &R, &one, &p256.G, rng, NULL) != 0)
        init_rc = ACE_E_NOMEM;
    else
        init_rc = 0;
    mbedtls_ecp_point_free(&R);
    mbedtls_mpi_free(&one);
}

int ace_pop_init(void)
{
    pthread_once(&init_once, init_all);
    return init_rc;
}

size_t ace_pop_len(ace_key_type_t type)
{
    switch (type) {
    case ACE_KEY_SYMMETRIC:
        return 32;
    case ACE_KEY_OKP_ED25519:
    case ACE_KEY_EC2_P256:
        return 64;
    }
    return 0;
}

static int hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen,
                       uint8_t mac[32])
{
    if (klen == 0 || klen > ACE_POP_MAX_SYM_KEY)
        return ACE_E_KEY;
    if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, klen, msg, mlen, mac) != 0)
        return ACE_E_NOMEM;
    return 0;
}

static int verify_hmac(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen,
                       const uint8_t *pop)
{
    uint8_t mac[32];
    int rc = hmac_sha256(key, klen, msg, mlen, mac);
    if (rc == 0 && mbedtls_ct_memcmp(mac, pop, sizeof mac) != 0)
        rc = ACE_E_BAD_SIGNATURE;
    mbedtls_platform_zeroize(mac, sizeof mac);
    return rc;
}

static int verify_ed25519(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen,
                          const uint8_t *pop)
{
    if (klen != crypto_sign_PUBLICKEYBYTES)
        return ACE_E_KEY;
    return crypto_sign_verify_detached(pop, msg, mlen, key) == 0 ? 0 : ACE_E_BAD_SIGNATURE;
}

static int verify_es256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen,
                        const uint8_t *pop)
{
    uint8_t pt[65], hash[32];
    mbedtls_ecp_point Q;
    mbedtls_mpi r, s;
    int rc = ACE_E_KEY;
    if (klen == 64) {
        pt[0] = 0x04;
        memcpy(pt + 1, key, 64);
    } else if (klen == 65 && key[0] == 0x04) {
        memcpy(pt, key, 65);
    } else {
        return ACE_E_KEY;
    }
    mbedtls_ecp_point_init(&Q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_ecp_point_read_binary(&p256, &Q, pt, sizeof pt) != 0 ||
        mbedtls_ecp_check_pubkey(&p256, &Q) != 0)
        goto out;
    rc = ACE_E_NOMEM;
    if (mbedtls_mpi_read_binary(&r, pop, 32) != 0 || mbedtls_mpi_read_binary(&s, pop + 32, 32) != 0 ||
        mbedtls_sha256_ret(msg, mlen, hash, 0) != 0)
        goto out;
    rc = mbedtls_ecdsa_verify(&p256, hash, sizeof hash, &Q, &r, &s) == 0 ? 0 : ACE_E_BAD_SIGNATURE;
out:
    mbedtls_ecp_point_free(&Q);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc;
}

int ace_pop_verify(ace_key_type_t type, const uint8_t *key, size_t key_len, const uint8_t *msg,
                   size_t msg_len, const uint8_t *pop, size_t pop_len)
{
    int rc = ace_pop_init();
    size_t want = ace_pop_len(type);
    if (rc != 0)
        return rc;
    if (!key || (!msg && msg_len) || want == 0)
        return ACE_E_ARG;
    if (!pop || pop_len != want)
        return ACE_E_BAD_SIGNATURE;
    switch (type) {
    case ACE_KEY_SYMMETRIC:
        return verify_hmac(key, key_len, msg, msg_len, pop);
    case ACE_KEY_OKP_ED25519:
        return verify_ed25519(key, key_len, msg, msg_len, pop);
    case ACE_KEY_EC2_P256:
        return verify_es256(key, key_len, msg, msg_len, pop);
    }
    return ACE_E_ARG;
}

int ace_pop_verify_key(const ace_key_t *k, const uint8_t *msg, size_t msg_len, const uint8_t *pop,
                       size_t pop_len)
{
    if (!k || k->k_len > sizeof k->k)
        return ACE_E_ARG;
    return ace_pop_verify(k->type, k->k, k->k_len, msg, msg_len, pop, pop_len);
}

int ace_pop_verify_response(const ace_key_t *k, const uint8_t rs_nonce[ACE_POP_NONCE_LEN],
                            const uint8_t *data, size_t len)
{
    uint8_t input[2 * ACE_POP_NONCE_LEN];
    if (!k || !rs_nonce || !data)
        return ACE_E_ARG;
    if (len < ACE_POP_NONCE_LEN)
        return ACE_E_MALFORMED;
    memcpy(input, rs_nonce, ACE_POP_NONCE_LEN);
    memcpy(input + ACE_POP_NONCE_LEN, data, ACE_POP_NONCE_LEN);
    return ace_pop_verify_key(k, input, sizeof input, data + ACE_POP_NONCE_LEN,
                              len - ACE_POP_NONCE_LEN);
}

int ace_pop_nonce(uint8_t out[ACE_POP_NONCE_LEN])
{
    int rc = ace_pop_init();
    if (rc != 0)
        return rc;
    if (!out)
        return ACE_E_ARG;
    randombytes_buf(out, ACE_POP_NONCE_LEN);
    return 0;
}

static int sign_ed25519(const uint8_t *seed, size_t slen, const uint8_t *msg, size_t mlen,
                        uint8_t out[64])
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    int rc = ACE_E_KEY;
    if (slen == crypto_sign_SEEDBYTES && crypto_sign_seed_keypair(pk, sk, seed) == 0)
        rc = crypto_sign_detached(out, NULL, msg, mlen, sk) == 0 ? 0 : ACE_E_KEY;
    sodium_memzero(sk, sizeof sk);
    return rc;
}

static int sign_es256(const uint8_t *d_bytes, size_t dlen, const uint8_t *msg, size_t mlen,
                      uint8_t out[64])
{
    uint8_t hash[32];
    mbedtls_mpi d, r, s;
    int rc = ACE_E_KEY;
    if (dlen != 32)
        return ACE_E_KEY;
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_mpi_read_binary(&d, d_bytes, dlen) == 0 && mbedtls_ecp_check_privkey(&p256, &d) == 0 &&
        mbedtls_sha256_ret(msg, mlen, hash, 0) == 0 &&
        mbedtls_ecdsa_sign_det_ext(&p256, &r, &s, &d, hash, sizeof hash, MBEDTLS_MD_SHA256, rng,
                                   NULL) == 0 &&
        mbedtls_mpi_write_binary(&r, out, 32) == 0 && mbedtls_mpi_write_binary(&s, out + 32, 32) == 0)
        rc = 0;
    mbedtls_mpi_free(&d); /* mbedtls_mpi_free zeroizes the limbs */
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc;
}

int ace_pop_sign(ace_key_type_t type, const uint8_t *secret, size_t secret_len, const uint8_t *msg,
                 size_t msg_len, uint8_t out[ACE_POP_MAX_LEN], size_t *out_len)
{
    int rc = ace_pop_init();
    if (rc != 0)
        return rc;
    if (!secret || (!msg && msg_len) || !out || !out_len || ace_pop_len(type) == 0)
        return ACE_E_ARG;
    switch (type) {
    case ACE_KEY_SYMMETRIC:
        rc = hmac_sha256(secret, secret_len, msg, msg_len, out);
        break;
    case ACE_KEY_OKP_ED25519:
        rc = sign_ed25519(secret, secret_len, msg, msg_len, out);
        break;
    case ACE_KEY_EC2_P256:
        rc = sign_es256(secret, secret_len, msg, msg_len, out);
        break;
    }
    *out_len = rc == 0 ? ace_pop_len(type) : 0;
    return rc;
}
