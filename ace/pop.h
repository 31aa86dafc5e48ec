/*
 * ace/pop.h: proof of possession (RFC 9431 §2.2.2, §2.2.3). A client proves it holds the key in its
 * token's `cnf` by a MAC or signature over a challenge: the 32-byte TLS exporter value, or the broker
 * nonce followed by the client nonce (8 + 8 bytes) in the AUTH challenge/response.
 *
 * The PoP is the raw MAC or signature, and the algorithm follows the key type (acemq's decision):
 *   ACE_KEY_SYMMETRIC    HMAC-SHA-256, 32 bytes
 *   ACE_KEY_OKP_ED25519  Ed25519 (libsodium), 64 bytes; key = 32-byte public key
 *   ACE_KEY_EC2_P256     ES256, r||s, 64 bytes; key = 0x04||x||y (65) or x||y (64)
 * Comparisons are constant time. Nothing here logs or keeps key bytes.
 *
 * Errors are 0 or a negative ACE_E_* code (ace/token.h): ACE_E_BAD_SIGNATURE for a proof that does
 * not verify (including one of the wrong length), ACE_E_KEY for an unusable key, ACE_E_MALFORMED for
 * challenge/response data that is too short, ACE_E_ARG, ACE_E_NOMEM.
 *
 * Thread safety: every function may be called from any thread. The P-256 group is loaded once per
 * process (with its comb table built then), and afterwards only read.
 */
#ifndef ACEMQ_ACE_POP_H
#define ACEMQ_ACE_POP_H

#include <stddef.h>
#include <stdint.h>

#include "ace/token.h"

#define ACE_POP_NONCE_LEN 8      /* RS nonce and client nonce (challenge/response) */
#define ACE_POP_CHALLENGE_LEN 32 /* the TLS exporter output */
#define ACE_POP_MAX_LEN 64       /* the longest proof (a signature) */
#define ACE_POP_MAX_SYM_KEY 64   /* as ace_key_t allows */

/* Initializes libsodium and the P-256 group. Called by the functions below as needed; call it at
 * start-up to fail early (and to keep the one-time cost off the first CONNECT). */
int ace_pop_init(void);

/* Length of the proof for a key type (32 or 64), 0 for an unknown type. Form A of the CONNECT
 * Authentication Data has no length in front of the PoP: the rest of the field must be this long. */
size_t ace_pop_len(ace_key_type_t type);

/* Verifies `pop` over `msg` with the public (or symmetric) key. 0 if it verifies. */
int ace_pop_verify(ace_key_type_t type, const uint8_t *key, size_t key_len, const uint8_t *msg,
                   size_t msg_len, const uint8_t *pop, size_t pop_len);

/* The same with a token's cnf key. */
int ace_pop_verify_key(const ace_key_t *k, const uint8_t *msg, size_t msg_len, const uint8_t *pop,
                       size_t pop_len);

/* Challenge/response: `data` is the client's AUTH Authentication Data, client nonce (8 bytes) then
 * the PoP over rs_nonce || client nonce. */
int ace_pop_verify_response(const ace_key_t *k, const uint8_t rs_nonce[ACE_POP_NONCE_LEN],
                            const uint8_t *data, size_t len);

/* Fills `out` with a fresh nonce from the CSPRNG (libsodium randombytes_buf). */
int ace_pop_nonce(uint8_t out[ACE_POP_NONCE_LEN]);

/* Client side, for tools and tests: computes the PoP over msg. `secret` is the symmetric key, the
 * 32-byte Ed25519 seed, or the 32-byte P-256 private scalar. Writes ace_pop_len(type) bytes to out
 * and sets *out_len. ES256 signatures are deterministic (RFC 6979). */
int ace_pop_sign(ace_key_type_t type, const uint8_t *secret, size_t secret_len, const uint8_t *msg,
                 size_t msg_len, uint8_t out[ACE_POP_MAX_LEN], size_t *out_len);

#endif
