/*
 * ace/keys.c: key loading and encoding (PEM, JWK, COSE_Key, hex) and the ES256 primitives with a
 * cached curve group. See keys.h.
 */
#include "ace/keys.h"

#include <ctype.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/b64url.h"
#include "ace/cbor_scan.h"

#define SETERR(...) do { if (err && cap) snprintf(err, cap, __VA_ARGS__); } while (0)

void ace_keypair_wipe(ace_keypair_t *k)
{
    if (k)
        mbedtls_platform_zeroize(k, sizeof(*k));
}

int ace_rng(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(out, len);
    return 0;
}

int ace_hex_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *n)
{
    size_t o = 0;
    int hi = -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c))
            continue;
        int v = isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                   : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (v < 0)
            return -1;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (o == cap)
            return -1;
        out[o++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    if (hi >= 0)
        return -1;
    *n = o;
    return 0;
}

void ace_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Ed25519: the public key follows from the 32-byte seed. */
static int ed25519_from_seed(ace_keypair_t *k)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    if (sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk, k->d) != 0)
        return ACE_E_KEY;
    mbedtls_platform_zeroize(sk, sizeof(sk));
    k->pub.type = ACE_KEY_OKP_ED25519;
    memcpy(k->pub.k, pk, 32);
    k->pub.k_len = 32;
    k->has_private = 1;
    return 0;
}

/* EC2: the public point d*G, written as 0x04||x||y. */
static int p256_public_from_d(ace_keypair_t *k)
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point Q;
    mbedtls_mpi d;
    size_t olen = 0;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&Q);
    mbedtls_mpi_init(&d);
    int rc = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) ||
             mbedtls_mpi_read_binary(&d, k->d, 32) || mbedtls_ecp_check_privkey(&grp, &d) ||
             mbedtls_ecp_mul(&grp, &Q, &d, &grp.G, ace_rng, NULL) ||
             mbedtls_ecp_point_write_binary(&grp, &Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, k->pub.k,
                                            sizeof(k->pub.k));
    mbedtls_mpi_free(&d);
    mbedtls_ecp_point_free(&Q);
    mbedtls_ecp_group_free(&grp);
    if (rc || olen != 65)
        return ACE_E_KEY;
    k->pub.type = ACE_KEY_EC2_P256;
    k->pub.k_len = 65;
    k->has_private = 1;
    return 0;
}

int ace_key_check(const ace_key_t *k)
{
    switch (k->type) {
    case ACE_KEY_SYMMETRIC:
        return (k->k_len >= 1 && k->k_len <= 64) ? 0 : ACE_E_KEY;
    case ACE_KEY_OKP_ED25519:
        return k->k_len == 32 ? 0 : ACE_E_KEY;
    case ACE_KEY_EC2_P256: {
        ace_ec_ctx_t c;
        mbedtls_ecp_group_init(&c.grp);
        mbedtls_ecp_point_init(&c.Q);
        int rc = (k->k_len != 65 || k->k[0] != 0x04 ||
                  mbedtls_ecp_group_load(&c.grp, MBEDTLS_ECP_DP_SECP256R1) ||
                  mbedtls_ecp_point_read_binary(&c.grp, &c.Q, k->k, k->k_len) ||
                  mbedtls_ecp_check_pubkey(&c.grp, &c.Q)) ? ACE_E_KEY : 0;
        ace_ec_ctx_free(&c);
        return rc;
    }
    }
    return ACE_E_KEY;
}

static int copy_bstr(const cbor_item_t *it, uint8_t *dst, size_t cap, size_t *n, int exact)
{
    size_t len;
    const uint8_t *p = ace_cbor_bstr(it, &len);
    if (!p || len > cap || len == 0 || (exact && len != cap))
        return -1;
    memcpy(dst, p, len);
    if (n)
        *n = len;
    return 0;
}

int ace_key_from_cose(const cbor_item_t *map, ace_keypair_t *out)
{
    int dup = 0;
    int64_t kty, crv = 0, alg = 0;
    memset(out, 0, sizeof(*out));
    if (!map || !cbor_isa_map(map) || ace_cbor_get_int(ace_cbor_map_get(map, 1, &dup), &kty))
        return ACE_E_KEY;
    cbor_item_t *kid = ace_cbor_map_get(map, 2, &dup);
    if (kid && copy_bstr(kid, out->pub.kid, sizeof(out->pub.kid), &out->pub.kid_len, 0))
        return ACE_E_KEY;
    if (ace_cbor_map_get(map, 3, &dup) && ace_cbor_get_int(ace_cbor_map_get(map, 3, &dup), &alg))
        return ACE_E_KEY;
    out->alg = (int)alg;
    cbor_item_t *m1 = ace_cbor_map_get(map, -1, &dup), *x = ace_cbor_map_get(map, -2, &dup);
    cbor_item_t *y = ace_cbor_map_get(map, -3, &dup), *d = ace_cbor_map_get(map, -4, &dup);
    if (dup)
        return ACE_E_KEY;
    if (kty == 4) { /* Symmetric: -1 is k */
        out->pub.type = ACE_KEY_SYMMETRIC;
        if (copy_bstr(m1, out->pub.k, 64, &out->pub.k_len, 0))
            return ACE_E_KEY;
        return 0;
    }
    if (ace_cbor_get_int(m1, &crv))
        return ACE_E_KEY;
    if (kty == 2 && crv == 1) { /* EC2 P-256; y must be the full coordinate, not a sign bit */
        out->pub.type = ACE_KEY_EC2_P256;
        out->pub.k[0] = 0x04;
        out->pub.k_len = 65;
        if (copy_bstr(x, out->pub.k + 1, 32, NULL, 1) || copy_bstr(y, out->pub.k + 33, 32, NULL, 1))
            return ACE_E_KEY;
        if (d && copy_bstr(d, out->d, 32, NULL, 1))
            return ACE_E_KEY;
        out->has_private = d != NULL;
        return ace_key_check(&out->pub);
    }
    if (kty == 1 && crv == 6) { /* OKP Ed25519 */
        out->pub.type = ACE_KEY_OKP_ED25519;
        out->pub.k_len = 32;
        if (copy_bstr(x, out->pub.k, 32, NULL, 1))
            return ACE_E_KEY;
        if (d && copy_bstr(d, out->d, 32, NULL, 1))
            return ACE_E_KEY;
        out->has_private = d != NULL;
        return 0;
    }
    return ACE_E_KEY;
}

/* A base64url member of a JWK into dst; exact length when exact != 0. */
static int jwk_bytes(const json_t *jwk, const char *name, uint8_t *dst, size_t cap, size_t *n,
                     int exact)
{
    const json_t *v = json_object_get(jwk, name);
    size_t len = 0;
    if (!json_is_string(v) ||
        ace_b64url_decode(json_string_value(v), json_string_length(v), dst, cap, &len) != 0 ||
        len == 0 || (exact && len != cap))
        return -1;
    if (n)
        *n = len;
    return 0;
}

int ace_key_from_jwk(const json_t *jwk, ace_keypair_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    const json_t *kid = json_object_get(jwk, "kid");
    if (!json_is_object(jwk) || !kty)
        return ACE_E_KEY;
    if (kid) {
        if (!json_is_string(kid) || json_string_length(kid) > sizeof(out->pub.kid))
            return ACE_E_KEY;
        memcpy(out->pub.kid, json_string_value(kid), json_string_length(kid));
        out->pub.kid_len = json_string_length(kid);
    }
    int has_d = json_object_get(jwk, "d") != NULL;
    if (strcmp(kty, "oct") == 0) {
        out->pub.type = ACE_KEY_SYMMETRIC;
        return jwk_bytes(jwk, "k", out->pub.k, 64, &out->pub.k_len, 0) ? ACE_E_KEY : 0;
    }
    if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0) {
        out->pub.type = ACE_KEY_EC2_P256;
        out->pub.k[0] = 0x04;
        out->pub.k_len = 65;
        if (jwk_bytes(jwk, "x", out->pub.k + 1, 32, NULL, 1) ||
            jwk_bytes(jwk, "y", out->pub.k + 33, 32, NULL, 1) ||
            (has_d && jwk_bytes(jwk, "d", out->d, 32, NULL, 1)))
            return ACE_E_KEY;
        out->has_private = has_d;
        return ace_key_check(&out->pub);
    }
    if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0) {
        out->pub.type = ACE_KEY_OKP_ED25519;
        out->pub.k_len = 32;
        if (jwk_bytes(jwk, "x", out->pub.k, 32, NULL, 1) ||
            (has_d && jwk_bytes(jwk, "d", out->d, 32, NULL, 1)))
            return ACE_E_KEY;
        out->has_private = has_d;
        return 0;
    }
    return ACE_E_KEY;
}

static int parse_pem(const uint8_t *buf, size_t len, ace_keypair_t *out)
{
    /* mbedtls_pk_parse_* want PEM NUL-terminated with the NUL counted in the length. */
    char *z = malloc(len + 1);
    if (!z)
        return ACE_E_NOMEM;
    memcpy(z, buf, len);
    z[len] = '\0';
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int priv = strstr(z, "PRIVATE KEY-----") != NULL;
    int rc = priv ? mbedtls_pk_parse_key(&pk, (const unsigned char *)z, len + 1, NULL, 0)
                  : mbedtls_pk_parse_public_key(&pk, (const unsigned char *)z, len + 1);
    mbedtls_platform_zeroize(z, len);
    free(z);
    memset(out, 0, sizeof(*out));
    if (rc == 0 && mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY &&
        mbedtls_pk_ec(pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1) {
        mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
        size_t olen = 0;
        rc = mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
                                            out->pub.k, sizeof(out->pub.k));
        if (rc == 0 && priv)
            rc = mbedtls_mpi_write_binary(&ec->d, out->d, 32);
        out->pub.type = ACE_KEY_EC2_P256;
        out->pub.k_len = olen;
        out->has_private = priv;
    } else {
        rc = -1;
    }
    mbedtls_pk_free(&pk);
    return rc == 0 ? 0 : ACE_E_KEY;
}

static int parse_json(const uint8_t *buf, size_t len, ace_keypair_t *out, size_t max, size_t *n)
{
    json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        return ACE_E_KEY;
    int rc = 0;
    json_t *keys = json_object_get(root, "keys");
    if (json_is_array(keys)) {
        size_t i;
        json_t *k;
        *n = 0;
        json_array_foreach(keys, i, k) {
            if (*n == max || (rc = ace_key_from_jwk(k, &out[*n])) != 0)
                break;
            (*n)++;
        }
        if (*n == 0 || i != json_array_size(keys))
            rc = ACE_E_KEY;
    } else {
        rc = ace_key_from_jwk(root, &out[0]);
        *n = rc == 0;
    }
    json_decref(root);
    return rc;
}

static int parse_cose(const uint8_t *buf, size_t len, ace_keypair_t *out, size_t max, size_t *n)
{
    int err;
    cbor_item_t *it = ace_cbor_load(buf, len, NULL, &err);
    if (!it)
        return ACE_E_KEY;
    int rc = 0;
    *n = 0;
    if (cbor_isa_array(it)) { /* COSE_KeySet */
        size_t cnt = cbor_array_size(it);
        cbor_item_t **h = cbor_array_handle(it);
        for (size_t i = 0; i < cnt && rc == 0; i++) {
            rc = *n == max ? ACE_E_KEY : ace_key_from_cose(h[i], &out[*n]);
            *n += rc == 0;
        }
        if (*n == 0)
            rc = ACE_E_KEY;
    } else {
        rc = ace_key_from_cose(it, &out[0]);
        *n = rc == 0;
    }
    cbor_decref(&it);
    return rc;
}

static int is_hex_text(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isxdigit(buf[i]) && !isspace(buf[i]))
            return 0;
    return 1;
}

int ace_keys_parse(const uint8_t *buf, size_t len, int hex_is_ed25519_seed, ace_keypair_t *out,
                   size_t max, size_t *n, char *err, size_t cap)
{
    size_t i = 0;
    int rc;
    *n = 0;
    if (!buf || len == 0 || max == 0) {
        SETERR("empty key");
        return ACE_E_KEY;
    }
    while (i < len && isspace(buf[i]))
        i++;
    if (len - i >= 10 && memcmp(buf + i, "-----BEGIN", 10) == 0) {
        rc = parse_pem(buf, len, out);
        *n = rc == 0;
        if (rc)
            SETERR("not a PEM EC P-256 key");
    } else if (i < len && buf[i] == '{') {
        rc = parse_json(buf, len, out, max, n);
        if (rc)
            SETERR("not a usable JWK or JWK set (oct, EC P-256, OKP Ed25519)");
    } else if (is_hex_text(buf, len)) {
        memset(out, 0, sizeof(*out));
        uint8_t tmp[64];
        size_t klen = 0;
        rc = ace_hex_decode((const char *)buf, len, tmp, sizeof(tmp), &klen) || klen == 0 ? ACE_E_KEY : 0;
        if (rc == 0 && hex_is_ed25519_seed) {
            rc = klen == 32 ? 0 : ACE_E_KEY;
            memcpy(out->d, tmp, 32);
            rc = rc ? rc : ed25519_from_seed(out);
        } else if (rc == 0) {
            out->pub.type = ACE_KEY_SYMMETRIC;
            memcpy(out->pub.k, tmp, klen);
            out->pub.k_len = klen;
        }
        mbedtls_platform_zeroize(tmp, sizeof(tmp));
        *n = rc == 0;
        if (rc)
            SETERR(hex_is_ed25519_seed ? "not a 32-byte hex Ed25519 seed"
                                       : "not a hex symmetric key of 1..64 bytes");
    } else {
        rc = parse_cose(buf, len, out, max, n);
        if (rc)
            SETERR("not a usable COSE_Key or COSE_KeySet");
    }
    return rc;
}

int ace_keys_load_file(const char *path, int hex_is_ed25519_seed, ace_keypair_t *out, size_t max,
                       size_t *n, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        SETERR("cannot open key file %s", path);
        return ACE_E_IO;
    }
    uint8_t *buf = malloc(ACE_KEYS_MAX_FILE + 1);
    size_t len = buf ? fread(buf, 1, ACE_KEYS_MAX_FILE + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf)
        return ACE_E_NOMEM;
    int rc;
    if (bad || len > ACE_KEYS_MAX_FILE) {
        SETERR("cannot read key file %s (or larger than %u bytes)", path, ACE_KEYS_MAX_FILE);
        rc = ACE_E_IO;
    } else {
        rc = ace_keys_parse(buf, len, hex_is_ed25519_seed, out, max, n, err, cap);
    }
    mbedtls_platform_zeroize(buf, len);
    free(buf);
    return rc;
}

int ace_ec_ctx_init(ace_ec_ctx_t *c, const ace_key_t *k)
{
    mbedtls_ecp_group_init(&c->grp);
    mbedtls_ecp_point_init(&c->Q);
    mbedtls_ecp_point R;
    mbedtls_mpi one;
    mbedtls_ecp_point_init(&R);
    mbedtls_mpi_init(&one);
    /* One multiplication by G builds and stores the comb table in grp now, so that later verifies
     * (possibly concurrent) only read the group. */
    int rc = (k->type != ACE_KEY_EC2_P256 || k->k_len != 65 ||
              mbedtls_ecp_group_load(&c->grp, MBEDTLS_ECP_DP_SECP256R1) ||
              mbedtls_ecp_point_read_binary(&c->grp, &c->Q, k->k, k->k_len) ||
              mbedtls_ecp_check_pubkey(&c->grp, &c->Q) || mbedtls_mpi_lset(&one, 1) ||
              mbedtls_ecp_mul(&c->grp, &R, &one, &c->grp.G, ace_rng, NULL)) ? ACE_E_KEY : 0;
    mbedtls_ecp_point_free(&R);
    mbedtls_mpi_free(&one);
    if (rc)
        ace_ec_ctx_free(c);
    return rc;
}

void ace_ec_ctx_free(ace_ec_ctx_t *c)
{
    mbedtls_ecp_point_free(&c->Q);
    mbedtls_ecp_group_free(&c->grp);
}

int ace_es256_verify(ace_ec_ctx_t *c, const uint8_t *msg, size_t len, const uint8_t *sig,
                     size_t sig_len)
{
    uint8_t hash[32];
    mbedtls_mpi r, s;
    if (sig_len != 64)
        return ACE_E_BAD_SIGNATURE;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    int rc = mbedtls_sha256_ret(msg, len, hash, 0) || mbedtls_mpi_read_binary(&r, sig, 32) ||
             mbedtls_mpi_read_binary(&s, sig + 32, 32) ||
             mbedtls_ecdsa_verify(&c->grp, hash, sizeof(hash), &c->Q, &r, &s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc ? ACE_E_BAD_SIGNATURE : 0;
}

int ace_es256_sign(const ace_keypair_t *k, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    uint8_t hash[32];
    mbedtls_ecp_group grp;
    mbedtls_mpi d, r, s;
    if (k->pub.type != ACE_KEY_EC2_P256 || !k->has_private)
        return ACE_E_KEY;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    int rc = mbedtls_sha256_ret(msg, len, hash, 0) ||
             mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) ||
             mbedtls_mpi_read_binary(&d, k->d, 32) ||
             mbedtls_ecdsa_sign_det_ext(&grp, &r, &s, &d, hash, 32, MBEDTLS_MD_SHA256, ace_rng,
                                        NULL) ||
             mbedtls_mpi_write_binary(&r, sig, 32) || mbedtls_mpi_write_binary(&s, sig + 32, 32);
    mbedtls_mpi_free(&d);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_group_free(&grp);
    return rc ? ACE_E_KEY : 0;
}

int ace_key_generate(ace_key_type_t type, size_t len, ace_keypair_t *out)
{
    memset(out, 0, sizeof(*out));
    if (type == ACE_KEY_SYMMETRIC) {
        if (len == 0 || len > 64)
            return ACE_E_ARG;
        out->pub.type = type;
        out->pub.k_len = len;
        return ace_rng(NULL, out->pub.k, len) ? ACE_E_KEY : 0;
    }
    for (int tries = 0; tries < 8; tries++) { /* a random 256-bit d is out of range with p ~ 2^-32 */
        if (ace_rng(NULL, out->d, 32))
            return ACE_E_KEY;
        int rc = type == ACE_KEY_OKP_ED25519 ? ed25519_from_seed(out) : p256_public_from_d(out);
        if (rc == 0)
            return 0;
    }
    return ACE_E_KEY;
}

int ace_key_to_cose(const ace_keypair_t *k, int with_private, uint8_t **out, size_t *len)
{
    ace_cbuf_t b = {0};
    const ace_key_t *p = &k->pub;
    int priv = with_private && k->has_private;
    size_t n = 1 + (p->kid_len > 0) + (k->alg != 0);
    n += p->type == ACE_KEY_SYMMETRIC ? 1 : p->type == ACE_KEY_EC2_P256 ? 3 + priv : 2 + priv;
    ace_cbuf_head(&b, 5, n);
    ace_cbuf_int(&b, 1);
    ace_cbuf_int(&b, p->type == ACE_KEY_SYMMETRIC ? 4 : p->type == ACE_KEY_EC2_P256 ? 2 : 1);
    if (p->kid_len) {
        ace_cbuf_int(&b, 2);
        ace_cbuf_bstr(&b, p->kid, p->kid_len);
    }
    if (k->alg) {
        ace_cbuf_int(&b, 3);
        ace_cbuf_int(&b, k->alg);
    }
    ace_cbuf_int(&b, -1);
    if (p->type == ACE_KEY_SYMMETRIC) {
        ace_cbuf_bstr(&b, p->k, p->k_len);
    } else if (p->type == ACE_KEY_EC2_P256) {
        ace_cbuf_int(&b, 1);
        ace_cbuf_int(&b, -2);
        ace_cbuf_bstr(&b, p->k + 1, 32);
        ace_cbuf_int(&b, -3);
        ace_cbuf_bstr(&b, p->k + 33, 32);
    } else {
        ace_cbuf_int(&b, 6);
        ace_cbuf_int(&b, -2);
        ace_cbuf_bstr(&b, p->k, 32);
    }
    if (priv && p->type != ACE_KEY_SYMMETRIC) {
        ace_cbuf_int(&b, -4);
        ace_cbuf_bstr(&b, k->d, 32);
    }
    if (b.err) {
        ace_cbuf_free(&b);
        return ACE_E_NOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

static int json_set_b64(json_t *o, const char *name, const uint8_t *p, size_t n)
{
    char s[ACE_B64URL_ENC_LEN(65)];
    if (ace_b64url_encode(p, n, s, sizeof(s)) < 0)
        return -1;
    int rc = json_object_set_new(o, name, json_string(s));
    mbedtls_platform_zeroize(s, sizeof(s));
    return rc;
}

int ace_key_to_jwk(const ace_keypair_t *k, int with_private, char **out)
{
    const ace_key_t *p = &k->pub;
    json_t *o = json_object();
    int rc = o ? 0 : -1;
    int priv = with_private && k->has_private;
    if (p->type == ACE_KEY_SYMMETRIC) {
        rc |= json_object_set_new(o, "kty", json_string("oct"));
        rc |= json_set_b64(o, "k", p->k, p->k_len);
    } else if (p->type == ACE_KEY_EC2_P256) {
        rc |= json_object_set_new(o, "kty", json_string("EC"));
        rc |= json_object_set_new(o, "crv", json_string("P-256"));
        rc |= json_set_b64(o, "x", p->k + 1, 32);
        rc |= json_set_b64(o, "y", p->k + 33, 32);
    } else {
        rc |= json_object_set_new(o, "kty", json_string("OKP"));
        rc |= json_object_set_new(o, "crv", json_string("Ed25519"));
        rc |= json_set_b64(o, "x", p->k, 32);
    }
    if (priv && p->type != ACE_KEY_SYMMETRIC)
        rc |= json_set_b64(o, "d", k->d, 32);
    if (p->kid_len)
        rc |= json_object_set_new(o, "kid", json_stringn((const char *)p->kid, p->kid_len));
    *out = rc ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return *out ? 0 : ACE_E_KEY;
}

int ace_key_to_pem(const ace_keypair_t *k, int with_private, char *out, size_t cap)
{
    if (k->pub.type != ACE_KEY_EC2_P256 || (with_private && !k->has_private))
        return ACE_E_KEY;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (rc == 0) {
        mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
        rc = mbedtls_ecp_group_load(&ec->grp, MBEDTLS_ECP_DP_SECP256R1) ||
             mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, k->pub.k, k->pub.k_len) ||
             (with_private && mbedtls_mpi_read_binary(&ec->d, k->d, 32));
        if (rc == 0)
            rc = with_private ? mbedtls_pk_write_key_pem(&pk, (unsigned char *)out, cap)
                              : mbedtls_pk_write_pubkey_pem(&pk, (unsigned char *)out, cap);
    }
    mbedtls_pk_free(&pk);
    return rc ? ACE_E_KEY : 0;
}
