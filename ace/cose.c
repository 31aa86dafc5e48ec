/*
 * ace/cose.c: COSE_Sign1 / COSE_Mac0 / COSE_Encrypt0 parsing, verification and creation for CWTs.
 * See cose.h for the rules; the byte layouts are RFC 9052 §4.4 (Sig_structure), §6.3 (MAC_structure)
 * and §5.3 (Enc_structure), each with an empty external_aad.
 */
#include "ace/cose.h"

#include <mbedtls/ccm.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>

#include "ace/token.h"

enum { LABEL_ALG = 1, LABEL_CRIT = 2, LABEL_KID = 4, LABEL_IV = 5, LABEL_PIV = 6 };
#define CCM_NONCE_LEN 13
#define CCM_TAG_LEN 8

void ace_cose_free(ace_cose_msg_t *m)
{
    if (m->root)
        cbor_decref(&m->root);
    if (m->prot_map)
        cbor_decref(&m->prot_map);
    memset(m, 0, sizeof(*m));
}

/* Reads alg, kid and IV from the two header maps, refusing anything that would change the meaning of
 * the message without us understanding it. */
static int read_headers(ace_cose_msg_t *m, const cbor_item_t *prot, const cbor_item_t *unprot)
{
    int dup = 0;
    int64_t alg;
    if (ace_cbor_map_get(prot, LABEL_CRIT, &dup) || ace_cbor_map_get(unprot, LABEL_CRIT, &dup) ||
        ace_cbor_map_get(prot, LABEL_PIV, &dup) || ace_cbor_map_get(unprot, LABEL_PIV, &dup) ||
        ace_cbor_map_get(unprot, LABEL_ALG, &dup))
        return ACE_E_BAD_ALG;
    if (ace_cbor_get_int(ace_cbor_map_get(prot, LABEL_ALG, &dup), &alg) || alg < -65536 ||
        alg > 65535)
        return ACE_E_BAD_ALG;
    m->alg = (int)alg;
    cbor_item_t *kp = ace_cbor_map_get(prot, LABEL_KID, &dup);
    cbor_item_t *ku = ace_cbor_map_get(unprot, LABEL_KID, &dup);
    cbor_item_t *ivp = ace_cbor_map_get(prot, LABEL_IV, &dup);
    cbor_item_t *ivu = ace_cbor_map_get(unprot, LABEL_IV, &dup);
    if (dup || (kp && ku) || (ivp && ivu))
        return ACE_E_MALFORMED;
    if ((kp || ku) && !(m->kid = ace_cbor_bstr(kp ? kp : ku, &m->kid_len)))
        return ACE_E_MALFORMED;
    if ((ivp || ivu) && !(m->iv = ace_cbor_bstr(ivp ? ivp : ivu, &m->iv_len)))
        return ACE_E_MALFORMED;
    return 0;
}

static int type_fits_alg(int type, int alg)
{
    switch (type) {
    case ACE_COSE_SIGN1:
        return alg == ACE_COSE_ALG_ES256;
    case ACE_COSE_MAC0:
        return alg == ACE_COSE_ALG_HMAC256_64 || alg == ACE_COSE_ALG_HMAC256_256;
    default:
        return alg == ACE_COSE_ALG_AES_CCM_16_64_128;
    }
}

int ace_cose_parse_item(const cbor_item_t *arr, int type, ace_cose_msg_t *m)
{
    memset(m, 0, sizeof(*m));
    if (!arr || !cbor_isa_array(arr) || !cbor_array_is_definite(arr))
        return ACE_E_MALFORMED;
    size_t n = cbor_array_size(arr);
    cbor_item_t **h = cbor_array_handle(arr);
    if (n != 3 && n != 4)
        return ACE_E_MALFORMED;
    if (type && (type == ACE_COSE_ENCRYPT0) != (n == 3))
        return ACE_E_MALFORMED;
    if (!(m->prot = ace_cbor_bstr(h[0], &m->prot_len)) || !cbor_isa_map(h[1]) ||
        !(m->payload = ace_cbor_bstr(h[2], &m->payload_len)))
        return ACE_E_MALFORMED;
    if (n == 4 && !(m->sig = ace_cbor_bstr(h[3], &m->sig_len)))
        return ACE_E_MALFORMED;
    int err = 0;
    if (m->prot_len == 0) /* an empty bstr stands for an empty map: no alg, refused below */
        return ACE_E_BAD_ALG;
    m->prot_map = ace_cbor_load(m->prot, m->prot_len, NULL, &err);
    if (!m->prot_map || !cbor_isa_map(m->prot_map)) {
        ace_cose_free(m);
        return err ? err : ACE_E_MALFORMED;
    }
    int rc = read_headers(m, m->prot_map, h[1]);
    if (rc == 0 && !type)
        type = n == 3 ? ACE_COSE_ENCRYPT0
                      : m->alg == ACE_COSE_ALG_ES256 ? ACE_COSE_SIGN1 : ACE_COSE_MAC0;
    if (rc == 0 && !type_fits_alg(type, m->alg))
        rc = ACE_E_BAD_ALG;
    if (rc) {
        ace_cose_free(m);
        return rc;
    }
    m->type = type;
    return 0;
}

int ace_cose_parse(const uint8_t *buf, size_t len, const ace_cbor_limits_t *lim, ace_cose_msg_t *m)
{
    uint64_t tags[3];
    size_t ntags, off, i = 0;
    int type = 0, err = 0;
    memset(m, 0, sizeof(*m));
    if (!buf || len == 0)
        return ACE_E_MALFORMED;
    if (lim && lim->max_size && len > lim->max_size)
        return ACE_E_TOO_LARGE;
    if (ace_cbor_peel_tags(buf, len, tags, 3, &ntags, &off) != 0)
        return ACE_E_MALFORMED;
    if (i < ntags && tags[i] == ACE_CWT_TAG)
        i++;
    if (i < ntags && tags[i] >= ACE_COSE_ENCRYPT0 && tags[i] <= ACE_COSE_SIGN1)
        type = (int)tags[i++];
    if (i != ntags)
        return ACE_E_MALFORMED;
    cbor_item_t *root = ace_cbor_load(buf + off, len - off, lim, &err);
    if (!root)
        return err;
    int rc = ace_cose_parse_item(root, type, m);
    if (rc) {
        cbor_decref(&root);
        return rc;
    }
    m->root = root;
    return 0;
}

int ace_cose_looks_nested(const uint8_t *buf, size_t len)
{
    if (len < 2)
        return 0;
    return (buf[0] >= 0xd0 && buf[0] <= 0xd2) || (buf[0] == 0xd8 && buf[1] == ACE_CWT_TAG) ||
           buf[0] == 0x83 || buf[0] == 0x84;
}

/* ["<context>", protected, h'', payload?] */
static int build_tbs(ace_cbuf_t *b, const char *context, const uint8_t *prot, size_t prot_len,
                     const uint8_t *payload, size_t payload_len, int with_payload)
{
    ace_cbuf_head(b, 4, with_payload ? 4 : 3);
    ace_cbuf_tstr(b, context);
    ace_cbuf_bstr(b, prot, prot_len);
    ace_cbuf_bstr(b, NULL, 0);
    if (with_payload)
        ace_cbuf_bstr(b, payload, payload_len);
    return b->err ? ACE_E_NOMEM : 0;
}

int ace_cose_verify_sign1(const ace_cose_msg_t *m, ace_ec_ctx_t *ec)
{
    if (m->type != ACE_COSE_SIGN1 || m->alg != ACE_COSE_ALG_ES256)
        return ACE_E_BAD_ALG;
    ace_cbuf_t b = {0};
    int rc = build_tbs(&b, "Signature1", m->prot, m->prot_len, m->payload, m->payload_len, 1);
    if (rc == 0)
        rc = ace_es256_verify(ec, b.p, b.len, m->sig, m->sig_len);
    ace_cbuf_free(&b);
    return rc;
}

static int hmac256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                   uint8_t out[32])
{
    return mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, key_len, msg, len,
                           out) ? ACE_E_NOMEM : 0;
}

int ace_cose_verify_mac0(const ace_cose_msg_t *m, const uint8_t *key, size_t key_len)
{
    if (m->type != ACE_COSE_MAC0)
        return ACE_E_BAD_ALG;
    size_t tag_len = m->alg == ACE_COSE_ALG_HMAC256_64 ? 8 : 32;
    if (m->sig_len != tag_len)
        return ACE_E_BAD_SIGNATURE;
    ace_cbuf_t b = {0};
    uint8_t mac[32];
    int rc = build_tbs(&b, "MAC0", m->prot, m->prot_len, m->payload, m->payload_len, 1);
    if (rc == 0)
        rc = hmac256(key, key_len, b.p, b.len, mac);
    if (rc == 0 && mbedtls_ct_memcmp(mac, m->sig, tag_len) != 0)
        rc = ACE_E_BAD_SIGNATURE;
    ace_cbuf_free(&b);
    return rc;
}

int ace_cose_decrypt0(const ace_cose_msg_t *m, const uint8_t *key, size_t key_len, uint8_t **pt,
                      size_t *pt_len)
{
    if (m->type != ACE_COSE_ENCRYPT0 || m->alg != ACE_COSE_ALG_AES_CCM_16_64_128)
        return ACE_E_BAD_ALG;
    if (key_len != 16 || !m->iv || m->iv_len != CCM_NONCE_LEN || m->payload_len < CCM_TAG_LEN)
        return ACE_E_BAD_SIGNATURE;
    ace_cbuf_t aad = {0};
    size_t n = m->payload_len - CCM_TAG_LEN;
    uint8_t *out = malloc(n ? n : 1);
    int rc = out ? build_tbs(&aad, "Encrypt0", m->prot, m->prot_len, NULL, 0, 0) : ACE_E_NOMEM;
    if (rc == 0) {
        mbedtls_ccm_context ccm;
        mbedtls_ccm_init(&ccm);
        if (mbedtls_ccm_setkey(&ccm, MBEDTLS_CIPHER_ID_AES, key, 128) ||
            mbedtls_ccm_auth_decrypt(&ccm, n, m->iv, m->iv_len, aad.p, aad.len, m->payload, out,
                                     m->payload + n, CCM_TAG_LEN))
            rc = ACE_E_BAD_SIGNATURE;
        mbedtls_ccm_free(&ccm);
    }
    ace_cbuf_free(&aad);
    if (rc) {
        if (out)
            mbedtls_platform_zeroize(out, n);
        free(out);
        return rc;
    }
    *pt = out;
    *pt_len = n;
    return 0;
}

/* Writes the leading tags, the array head, the protected header {1: alg} and the unprotected header
 * (kid, and an IV for Encrypt0), the layout of the RFC 8392 examples. */
static void write_prefix(ace_cbuf_t *b, int cwt_tag, int cose_tag, int alg, const uint8_t *kid,
                         size_t kid_len, const uint8_t *iv, size_t iv_len)
{
    /* {1: alg}; every alg used here is a one-byte CBOR integer */
    const uint8_t prot[3] = {0xa1, 0x01, (uint8_t)(alg >= 0 ? alg : 0x20 | (-1 - alg))};
    if (cwt_tag)
        ace_cbuf_head(b, 6, ACE_CWT_TAG);
    if (cose_tag)
        ace_cbuf_head(b, 6, (uint64_t)cose_tag);
    ace_cbuf_head(b, 4, cose_tag == ACE_COSE_ENCRYPT0 || (!cose_tag && iv) ? 3 : 4);
    ace_cbuf_bstr(b, prot, sizeof(prot));
    ace_cbuf_head(b, 5, (kid_len > 0) + (iv != NULL));
    if (kid_len) {
        ace_cbuf_int(b, LABEL_KID);
        ace_cbuf_bstr(b, kid, kid_len);
    }
    if (iv) {
        ace_cbuf_int(b, LABEL_IV);
        ace_cbuf_bstr(b, iv, iv_len);
    }
}

static int finish(ace_cbuf_t *b, uint8_t **out, size_t *out_len)
{
    if (b->err) {
        ace_cbuf_free(b);
        return ACE_E_NOMEM;
    }
    *out = b->p;
    *out_len = b->len;
    return 0;
}

int ace_cose_sign1_create(const uint8_t *payload, size_t len, const ace_keypair_t *k, int cwt_tag,
                          uint8_t **out, size_t *out_len)
{
    static const uint8_t prot[] = {0xa1, 0x01, 0x26}; /* {1: -7} */
    ace_cbuf_t tbs = {0}, b = {0};
    uint8_t sig[64];
    int rc = build_tbs(&tbs, "Signature1", prot, sizeof(prot), payload, len, 1);
    if (rc == 0)
        rc = ace_es256_sign(k, tbs.p, tbs.len, sig);
    ace_cbuf_free(&tbs);
    if (rc)
        return rc;
    write_prefix(&b, cwt_tag, ACE_COSE_SIGN1, ACE_COSE_ALG_ES256, k->pub.kid, k->pub.kid_len, NULL,
                 0);
    ace_cbuf_bstr(&b, payload, len);
    ace_cbuf_bstr(&b, sig, sizeof(sig));
    return finish(&b, out, out_len);
}

int ace_cose_mac0_create(const uint8_t *payload, size_t len, int alg, const ace_key_t *key,
                         int cwt_tag, uint8_t **out, size_t *out_len)
{
    if (alg != ACE_COSE_ALG_HMAC256_64 && alg != ACE_COSE_ALG_HMAC256_256)
        return ACE_E_BAD_ALG;
    if (key->type != ACE_KEY_SYMMETRIC)
        return ACE_E_KEY;
    const uint8_t prot[] = {0xa1, 0x01, (uint8_t)alg};
    ace_cbuf_t tbs = {0}, b = {0};
    uint8_t mac[32];
    int rc = build_tbs(&tbs, "MAC0", prot, sizeof(prot), payload, len, 1);
    if (rc == 0)
        rc = hmac256(key->k, key->k_len, tbs.p, tbs.len, mac);
    ace_cbuf_free(&tbs);
    if (rc)
        return rc;
    write_prefix(&b, cwt_tag, ACE_COSE_MAC0, alg, key->kid, key->kid_len, NULL, 0);
    ace_cbuf_bstr(&b, payload, len);
    ace_cbuf_bstr(&b, mac, alg == ACE_COSE_ALG_HMAC256_64 ? 8 : 32);
    return finish(&b, out, out_len);
}

int ace_cose_encrypt0_create(const uint8_t *payload, size_t len, const ace_key_t *key, int tagged,
                             int cwt_tag, uint8_t **out, size_t *out_len)
{
    static const uint8_t prot[] = {0xa1, 0x01, 0x0a}; /* {1: 10} */
    if (key->type != ACE_KEY_SYMMETRIC || key->k_len != 16)
        return ACE_E_KEY;
    uint8_t iv[CCM_NONCE_LEN];
    ace_cbuf_t aad = {0}, b = {0};
    uint8_t *ct = malloc(len + CCM_TAG_LEN);
    int rc = ct ? ace_rng(NULL, iv, sizeof(iv)) : ACE_E_NOMEM;
    if (rc == 0)
        rc = build_tbs(&aad, "Encrypt0", prot, sizeof(prot), NULL, 0, 0);
    if (rc == 0) {
        mbedtls_ccm_context ccm;
        mbedtls_ccm_init(&ccm);
        if (mbedtls_ccm_setkey(&ccm, MBEDTLS_CIPHER_ID_AES, key->k, 128) ||
            mbedtls_ccm_encrypt_and_tag(&ccm, len, iv, sizeof(iv), aad.p, aad.len, payload, ct,
                                        ct + len, CCM_TAG_LEN))
            rc = ACE_E_KEY;
        mbedtls_ccm_free(&ccm);
    }
    ace_cbuf_free(&aad);
    if (rc == 0) {
        write_prefix(&b, tagged && cwt_tag, tagged ? ACE_COSE_ENCRYPT0 : 0,
                     ACE_COSE_ALG_AES_CCM_16_64_128, key->kid, key->kid_len, iv, sizeof(iv));
        ace_cbuf_bstr(&b, ct, len + CCM_TAG_LEN);
        rc = finish(&b, out, out_len);
    }
    free(ct);
    return rc;
}
