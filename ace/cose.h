/*
 * ace/cose.h: the three single-recipient COSE structures a CWT uses (RFC 9052/9053): COSE_Sign1 with
 * ES256, COSE_Mac0 with HMAC 256/64 and HMAC 256/256, COSE_Encrypt0 with AES-CCM-16-64-128. Parsing
 * peels the optional CWT tag 61 and the COSE tag by hand (libcbor 0.8 cannot decode tags 16..18),
 * runs the bounded pre-scan, and only then hands the array to libcbor. Verification rebuilds the
 * Sig/MAC/Enc structure byte for byte; creation writes the same layout as the RFC 8392 examples.
 *
 * Only algorithms in the protected header are honoured; a `crit` header (nothing here understands
 * any extension) or a Partial IV is refused with ACE_E_BAD_ALG.
 */
#ifndef ACEMQ_ACE_COSE_H
#define ACEMQ_ACE_COSE_H

#include <cbor.h>
#include <stddef.h>
#include <stdint.h>

#include "ace/cbor_scan.h"
#include "ace/keys.h"

enum { ACE_COSE_ENCRYPT0 = 16, ACE_COSE_MAC0 = 17, ACE_COSE_SIGN1 = 18, ACE_CWT_TAG = 61 };
enum {
    ACE_COSE_ALG_ES256 = -7,
    ACE_COSE_ALG_HMAC256_64 = 4,
    ACE_COSE_ALG_HMAC256_256 = 5,
    ACE_COSE_ALG_AES_CCM_16_64_128 = 10,
};

/* A parsed message. Pointers point into `root` (owned) and live until ace_cose_free(). */
typedef struct {
    int type;                /* ACE_COSE_* */
    int alg;                 /* from the protected header */
    const uint8_t *kid;      /* NULL if none */
    size_t kid_len;
    const uint8_t *iv;       /* Encrypt0 only */
    size_t iv_len;
    const uint8_t *prot;     /* the protected header bstr contents */
    size_t prot_len;
    const uint8_t *payload;  /* payload (Sign1/Mac0) or ciphertext with tag (Encrypt0) */
    size_t payload_len;
    const uint8_t *sig;      /* signature or MAC tag (Sign1/Mac0) */
    size_t sig_len;
    cbor_item_t *root;       /* owned, may be NULL when parsed from a borrowed item */
    cbor_item_t *prot_map;   /* owned: the decoded protected header */
} ace_cose_msg_t;

/* Parses tagged or untagged COSE bytes. Untagged: 3 elements = Encrypt0; 4 = Sign1 or Mac0 by alg.
 * 0, ACE_E_MALFORMED, ACE_E_TOO_LARGE or ACE_E_BAD_ALG. */
int ace_cose_parse(const uint8_t *buf, size_t len, const ace_cbor_limits_t *lim, ace_cose_msg_t *m);
/* Parses an already loaded untagged array (e.g. an Encrypted_COSE_Key inside cnf) of the given type.
 * m borrows from arr. */
int ace_cose_parse_item(const cbor_item_t *arr, int type, ace_cose_msg_t *m);
void ace_cose_free(ace_cose_msg_t *m);

/* 1 if the bytes start like a COSE message or CWT (a tag 16/17/18/61 or an array of 3 or 4). */
int ace_cose_looks_nested(const uint8_t *buf, size_t len);

/* 0 or ACE_E_BAD_SIGNATURE (ACE_E_BAD_ALG if the message's alg does not fit the call). */
int ace_cose_verify_sign1(const ace_cose_msg_t *m, ace_ec_ctx_t *ec);
int ace_cose_verify_mac0(const ace_cose_msg_t *m, const uint8_t *key, size_t key_len);
/* Decrypts into a malloc'd *pt (free() it). 16-byte key. */
int ace_cose_decrypt0(const ace_cose_msg_t *m, const uint8_t *key, size_t key_len, uint8_t **pt,
                      size_t *pt_len);

/* Creation. kid may be NULL; cwt_tag wraps the result in tag 61. *out is malloc'd. */
int ace_cose_sign1_create(const uint8_t *payload, size_t len, const ace_keypair_t *k, int cwt_tag,
                          uint8_t **out, size_t *out_len);
int ace_cose_mac0_create(const uint8_t *payload, size_t len, int alg, const ace_key_t *key,
                         int cwt_tag, uint8_t **out, size_t *out_len);
/* tagged = 0 writes the bare array (for an Encrypted_COSE_Key inside cnf). */
int ace_cose_encrypt0_create(const uint8_t *payload, size_t len, const ace_key_t *key, int tagged,
                             int cwt_tag, uint8_t **out, size_t *out_len);

#endif
