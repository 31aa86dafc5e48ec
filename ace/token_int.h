/*
 * ace/token_int.h: what the token engine's own files share (trust store layout, claim decoding and
 * checks). Not for use outside ace/token*.c.
 */
#ifndef ACEMQ_ACE_TOKEN_INT_H
#define ACEMQ_ACE_TOKEN_INT_H

#include <cbor.h>
#include <jansson.h>

#include "ace/cbor_scan.h"
#include "ace/keys.h"
#include "ace/token.h"

/* One verification key; EC2 keys carry their ready group (built once, then only read). */
typedef struct {
    ace_key_t key;
    int has_ec;
    ace_ec_ctx_t ec;
} ace_tkey_t;

typedef struct {
    char name[256];
    ace_tkey_t *keys;
    size_t n;
} ace_tissuer_t;

struct ace_trust {
    char aud[256];
    int skew;
    int64_t profile;
    unsigned algs;
    size_t max_token;
    unsigned max_depth;
    int require_exp;
    ace_tissuer_t *iss;
    size_t n;
};

/* Calls fn on each candidate key until one returns 0: keys of the wanted type (sym_len: exact length
 * for symmetric keys, 0 = any), of issuer `iss_hint` if given, whose kid matches when both the token
 * and the key have one. 0 with *who set; ACE_E_UNKNOWN_ISSUER if there was no candidate;
 * otherwise the last failure (normally ACE_E_BAD_SIGNATURE). */
typedef int (*ace_try_fn)(void *ctx, ace_tkey_t *k);
int ace_trust_try_keys(const ace_trust_t *t, const char *iss_hint, ace_key_type_t type,
                       size_t sym_len, const uint8_t *kid, size_t kid_len, ace_try_fn fn, void *ctx,
                       const ace_tissuer_t **who);

/* What claim decoding learns that the checks need. */
typedef struct {
    int aud_ok;
    int profile_bad;
} ace_claims_state_t;

int ace_claims_from_cwt(const ace_trust_t *t, const ace_tissuer_t *who, const cbor_item_t *map,
                        ace_claims_t *c, ace_claims_state_t *st);
int ace_claims_from_jwt(const ace_trust_t *t, const json_t *obj, ace_claims_t *c,
                        ace_claims_state_t *st);
/* iss consistency, exp, aud, nbf/iat, profile, in RFC 9200 order. */
int ace_claims_check(const ace_trust_t *t, const ace_tissuer_t *who, int64_t now, ace_claims_t *c,
                     const ace_claims_state_t *st);

#endif
