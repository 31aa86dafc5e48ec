/*
 * ace/token.h: the front door of the ACE token engine. It verifies an access token (a CWT, RFC 8392,
 * or a JWS-compact JWT, RFC 7519, told apart by their first bytes) against a trust store and decodes
 * its claims into a plain struct the rest of the broker reads without touching CBOR or JSON.
 *
 * What is checked, in RFC 9200 §5.10.1.1 order: the COSE/JOSE protection (ES256, HMAC 256/64,
 * HMAC 256/256, AES-CCM-16-64-128, Encrypt0 around Sign1; JWS ES256/HS256, never `none`), that the
 * issuer is trusted and owns the key that verified, exp, aud, nbf/iat (with a clock skew) and
 * ace_profile. What is left to the caller, with the data exposed here: the scope (ace/scope.h parses
 * claims.scope), proof of possession (claims.cnf_key), exi replay (ace_exi_*), cnonce freshness
 * (ace_claims_check_cnonce) and whether a token without cnf is acceptable.
 *
 * Errors are 0 or a negative ACE_E_* code. Nothing here logs or prints key or token bytes, and
 * ace_strerror() never includes them.
 */
#ifndef ACEMQ_ACE_TOKEN_H
#define ACEMQ_ACE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

enum {
    ACE_E_MALFORMED = -1,      /* not a token, or does not parse (MQTT 0x99 on authz-info) */
    ACE_E_TOO_LARGE = -2,      /* over a size or nesting limit (also "does not parse") */
    ACE_E_BAD_SIGNATURE = -3,  /* signature, MAC or AEAD tag did not verify */
    ACE_E_UNKNOWN_ISSUER = -4, /* no trusted issuer / key for this token, or iss does not match */
    ACE_E_WRONG_AUDIENCE = -5,
    ACE_E_EXPIRED = -6,
    ACE_E_NOT_YET_VALID = -7,
    ACE_E_BAD_ALG = -8,        /* algorithm not accepted, alg none, or an unknown critical header */
    ACE_E_NO_CNF = -9,         /* no usable proof-of-possession key (returned by callers) */
    ACE_E_PROFILE = -10,       /* ace_profile is not mqtt_tls */
    ACE_E_REPLAY = -11,        /* exi sequence number not above the highest seen */
    ACE_E_CLAIM = -12,         /* a claim has the wrong type, or a required claim is missing */
    ACE_E_NONCE = -13,         /* cnonce missing or not the one the broker issued */
    ACE_E_NOMEM = -14,
    ACE_E_ARG = -15,           /* invalid argument or configuration */
    ACE_E_IO = -16,            /* a key file could not be read */
    ACE_E_KEY = -17,           /* a key could not be parsed or is not usable */
};

/* One sentence for logs. Never contains token or key material. */
const char *ace_strerror(int code);

/* 1 if `code` means "the bytes are not a token at all" (MQTT 0x99), 0 if "invalid token" (0x87). */
int ace_error_is_malformed(int code);

/* Token protection algorithms, as a bit set for ace_trust_set_algs(). */
enum {
    ACE_ALG_COSE_ES256 = 1u << 0,
    ACE_ALG_COSE_HMAC256_64 = 1u << 1,
    ACE_ALG_COSE_HMAC256_256 = 1u << 2,
    ACE_ALG_COSE_AES_CCM_16_64_128 = 1u << 3,
    ACE_ALG_JWS_ES256 = 1u << 4,
    ACE_ALG_JWS_HS256 = 1u << 5,
    ACE_ALG_ALL = (1u << 6) - 1,
};

typedef enum { ACE_KEY_SYMMETRIC, ACE_KEY_EC2_P256, ACE_KEY_OKP_ED25519 } ace_key_type_t;

/* A public (or symmetric) key. k holds: the raw symmetric key (1..64 bytes), for EC2 P-256 the
 * uncompressed point 0x04||x||y (65 bytes), for Ed25519 the 32-byte public key. */
typedef struct {
    ace_key_type_t type;
    uint8_t k[65];
    size_t k_len;
    uint8_t kid[64];
    size_t kid_len;
} ace_key_t;

enum { ACE_SCOPE_NONE, ACE_SCOPE_BSTR, ACE_SCOPE_TSTR, ACE_SCOPE_CBOR_ARRAY, ACE_SCOPE_JSON_ARRAY };

/* Decoded claims. `scope` is malloc'd (release with ace_claims_free); everything else is inline.
 * scope_kind says what scope holds: BSTR = the bytes of a CWT bstr scope (normally a CBOR AIF array),
 * TSTR = text (a CWT tstr or a JWT string), CBOR_ARRAY = the encoded CBOR of a bare CWT array,
 * JSON_ARRAY = the JSON text of a JWT array. iss is the token's iss claim, or the name of the trusted
 * issuer whose key verified it when the token carries none. */
typedef struct ace_claims {
    char iss[256];
    char sub[256];
    int has_exp, has_nbf, has_iat;
    int64_t exp, nbf, iat;
    int has_cti;
    uint8_t cti[64];
    size_t cti_len;
    int has_cnf;          /* cnf_key (or only its kid) is set */
    ace_key_t cnf_key;    /* decrypted already when cnf carried an Encrypted_COSE_Key */
    int cnf_is_kid_only;  /* cnf named only a kid (cnf_key.kid): the caller resolves it */
    int scope_kind;
    uint8_t *scope;
    size_t scope_len;
    int has_exi;
    int64_t exi;
    int has_cnonce;
    uint8_t cnonce[64];
    size_t cnonce_len;
    int is_jwt;
    unsigned alg;         /* the ACE_ALG_* bit that protected the token (the inner one if nested) */
    uint8_t digest[32];   /* SHA-256 of the token bytes, for caching */
} ace_claims_t;

/* The trust store: per issuer its verification keys, plus the broker's audience and policy. Build it
 * at start-up (or on reload) from one thread; afterwards it is read-only and may be shared by any
 * number of threads calling ace_token_verify(). Elliptic-curve tables are built when a key is added. */
typedef struct ace_trust ace_trust_t;

/* audience: this broker's aud value. clock_skew: seconds of tolerance on exp/nbf/iat (>= 0).
 * profile_id: the integer ace_profile value accepted besides "mqtt_tls" (3 if <= 0). NULL on error. */
ace_trust_t *ace_trust_new(const char *audience, int clock_skew, int profile_id);
void ace_trust_free(ace_trust_t *t);

/* Adds every key in the file to issuer `iss` (several calls, several keys per issuer are fine). The
 * file is a PEM EC P-256 public (or private) key, a JWK or JWK set, a binary COSE_Key, or a hex raw
 * symmetric key (HMAC for Mac0/HS256; 16 bytes also AES-128 for Encrypt0). On error a sentence goes
 * to err (may be NULL). */
int ace_trust_add_issuer_keyfile(ace_trust_t *t, const char *iss, const char *path, char *err,
                                 size_t cap);
/* Adds one key given in memory. */
int ace_trust_add_issuer_key(ace_trust_t *t, const char *iss, const ace_key_t *key);

/* Policy knobs; defaults: all algorithms, 16384-byte tokens, CBOR depth 16, exp required. */
void ace_trust_set_algs(ace_trust_t *t, unsigned alg_mask);
void ace_trust_set_max_token(ace_trust_t *t, size_t max_bytes);
void ace_trust_set_max_depth(ace_trust_t *t, unsigned depth);
/* When on (default), a token with neither exp nor exi fails with ACE_E_CLAIM. */
void ace_trust_set_require_exp(ace_trust_t *t, int on);
const char *ace_trust_audience(const ace_trust_t *t);

/* Verifies a token (CWT bytes, or JWT compact ASCII) at Unix time `now` and fills *out (zeroed
 * first; on error it is left zeroed with nothing to free). Returns 0 or a negative ACE_E_* code. */
int ace_token_verify(const ace_trust_t *t, const uint8_t *tok, size_t len, int64_t now,
                     ace_claims_t *out);

/* Frees the scope and zeroes the struct. Safe on a zeroed struct. */
void ace_claims_free(ace_claims_t *c);
/* Deep copy (the scope is duplicated). */
int ace_claims_copy(ace_claims_t *dst, const ace_claims_t *src);

/* 0 if the token carries a cnonce equal (constant time) to the nonce the broker issued, else
 * ACE_E_NONCE. */
int ace_claims_check_cnonce(const ace_claims_t *c, const uint8_t *nonce, size_t len);

/* exi replay rule (RFC 9200 §5.10.3): a token with exi carries a cti made of a prefix naming the RS
 * and a sequence number; the RS remembers the highest number seen per issuer and rejects any token
 * whose number is not above it. The tracker is thread-safe. */
typedef struct ace_exi_tracker ace_exi_tracker_t;
ace_exi_tracker_t *ace_exi_tracker_new(void);
void ace_exi_tracker_free(ace_exi_tracker_t *tr);
/* The sequence number: the cti bytes after `prefix_len`, read as a big-endian unsigned integer of
 * 1..8 bytes. ACE_E_CLAIM if that does not fit. */
int ace_exi_seq_from_cti(const uint8_t *cti, size_t len, size_t prefix_len, uint64_t *seq);
/* ACE_E_REPLAY if seq <= the highest seen for iss; otherwise records it and returns 0. */
int ace_exi_check_and_record(ace_exi_tracker_t *tr, const char *iss, uint64_t seq);
/* For a verified token: 0 if it has no exi; else extracts the sequence number from its cti (ACE_E_CLAIM
 * without one) and applies ace_exi_check_and_record. */
int ace_exi_check_claims(ace_exi_tracker_t *tr, const ace_claims_t *c, size_t prefix_len);

#endif
