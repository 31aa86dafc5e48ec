/*
 * ace/token_cache.h: a bounded cache of verified tokens keyed by the SHA-256 of the token bytes, so a
 * device reconnecting with the same token pays the ES256 verify (~1 ms) once. An entry lives until
 * the token's exp (plus the trust store's clock skew) or a maximum age, whichever is first; a full
 * cache replaces the entry nearest to expiry within a small probe window. Only successfully verified
 * tokens are stored. Thread-safe: one mutex around lookups and inserts (a few microseconds each).
 */
#ifndef ACEMQ_ACE_TOKEN_CACHE_H
#define ACEMQ_ACE_TOKEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ace/token.h"

typedef struct ace_token_cache ace_token_cache_t;

/* capacity: entries (rounded up to a power of two, at least 16); max_age: seconds an entry may live
 * at most (tokens without exp, and a bound on trusting a cached answer). NULL on failure. */
ace_token_cache_t *ace_token_cache_new(size_t capacity, int64_t max_age);
void ace_token_cache_free(ace_token_cache_t *c);

/* 1 and a deep copy in *out on a hit that is still valid at `now`; 0 on a miss. */
int ace_token_cache_get(ace_token_cache_t *c, const uint8_t digest[32], int64_t now,
                        ace_claims_t *out);
/* Stores a copy of verified claims (keyed by claims->digest). 0 or ACE_E_NOMEM. `expires` is the
 * last second the entry may be returned (exclusive). */
int ace_token_cache_put(ace_token_cache_t *c, const ace_claims_t *claims, int64_t now,
                        int64_t expires);
/* Removes every entry (e.g. after a trust-store reload). */
void ace_token_cache_clear(ace_token_cache_t *c);

/* Cache-aware ace_token_verify(): a hit skips the cryptography; a miss verifies and stores. The
 * caller must use one cache per trust store (and clear it when the store changes). */
int ace_token_verify_cached(ace_token_cache_t *c, const ace_trust_t *t, const uint8_t *tok,
                            size_t len, int64_t now, ace_claims_t *out);

#endif
