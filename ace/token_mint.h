/*
 * ace/token_mint.h: creating access tokens, for the acemq-token tool and for tests (the broker itself
 * only verifies). CWT claims are written with integer keys in ascending order (RFC 8392), JWT claims
 * as a JSON object (RFC 7519, cnf per RFC 7800).
 */
#ifndef ACEMQ_ACE_TOKEN_MINT_H
#define ACEMQ_ACE_TOKEN_MINT_H

#include <stddef.h>
#include <stdint.h>

#include "ace/keys.h"
#include "ace/token.h"

typedef enum {
    ACE_MINT_CWT_SIGN1,    /* COSE_Sign1 ES256, key: EC2 private */
    ACE_MINT_CWT_MAC0,     /* COSE_Mac0, HMAC 256/256 (or mac_alg), key: symmetric */
    ACE_MINT_CWT_ENCRYPT0, /* COSE_Encrypt0 AES-CCM-16-64-128, key: 16-byte symmetric */
    ACE_MINT_CWT_NESTED,   /* Encrypt0 (outer_key) around Sign1 (key) */
    ACE_MINT_JWT_ES256,
    ACE_MINT_JWT_HS256,
} ace_mint_format_t;

/* Claims to write; NULL / 0 members are left out. */
typedef struct {
    const char *iss, *sub, *aud;
    int has_exp, has_nbf, has_iat;
    int64_t exp, nbf, iat;
    const uint8_t *cti;          /* CWT cti; JWT jti (as text) */
    size_t cti_len;
    int scope_kind;              /* ACE_SCOPE_*: BSTR/TSTR/CBOR_ARRAY (raw CBOR) for CWTs;
                                    TSTR or JSON_ARRAY (raw JSON) for JWTs */
    const uint8_t *scope;
    size_t scope_len;
    const ace_key_t *cnf_key;     /* the PoP key (public part, or the symmetric key) */
    const ace_key_t *cnf_enc_key; /* CWT: wrap cnf_key in an Encrypted_COSE_Key with this AES key */
    const uint8_t *cnf_kid;       /* cnf by reference instead of cnf_key */
    size_t cnf_kid_len;
    int has_exi;
    int64_t exi;
    const uint8_t *cnonce;
    size_t cnonce_len;
    int profile_kind;             /* 0 none, 1 the integer `profile`, 2 the string "mqtt_tls" */
    int64_t profile;
    int mac_alg;                  /* Mac0: 4 (HMAC 256/64) or 5 (HMAC 256/256, default) */
    int cwt_tag;                  /* wrap a CWT in tag 61 */
} ace_mint_t;

/* *out is malloc'd: CWT bytes, or the JWT text (NUL-terminated, *out_len without the NUL). */
int ace_token_mint(const ace_mint_t *m, ace_mint_format_t fmt, const ace_keypair_t *key,
                   const ace_keypair_t *outer_key, uint8_t **out, size_t *out_len);

/* The encoded CWT claims map alone (for tests and `inspect`). */
int ace_mint_cwt_claims(const ace_mint_t *m, uint8_t **out, size_t *out_len);

#endif
