/*
 * ace/keys.h: key material for the token engine. Loads keys from the forms an operator has at hand
 * (PEM EC P-256 keys via mbedTLS pk, JWK and JWK sets via jansson, COSE_Key via libcbor after the
 * pre-scan, raw symmetric keys in hex, Ed25519 as JWK/COSE OKP or a hex seed) into ace_key_t, writes
 * them back out (PEM, JWK, COSE_Key), and holds the ES256 primitives with a per-key cached curve
 * group, because mbedTLS builds the P-256 comb table on first use (~0.4 ms per verify otherwise).
 *
 * Private parts (EC scalar, Ed25519 seed) live only in ace_keypair_t and are wiped by
 * ace_keypair_wipe(); nothing here prints or logs key bytes.
 */
#ifndef ACEMQ_ACE_KEYS_H
#define ACEMQ_ACE_KEYS_H

#include <cbor.h>
#include <jansson.h>
#include <mbedtls/ecp.h>
#include <stddef.h>
#include <stdint.h>

#include "ace/token.h"

#define ACE_KEYS_MAX_FILE 65536u

typedef struct {
    ace_key_t pub;    /* the public key, or the symmetric key */
    uint8_t d[32];    /* EC2 private scalar or Ed25519 seed, when has_private */
    int has_private;
    int alg;          /* COSE alg named by the key (0 if none) */
} ace_keypair_t;

void ace_keypair_wipe(ace_keypair_t *k);

/* Parses a key file's bytes, auto-detecting the form (PEM, JWK/JWK set, hex symmetric key or hex
 * Ed25519 seed when `hex_is_ed25519_seed`, binary COSE_Key or COSE_KeySet). Fills up to `max` keys and
 * sets *n. 0 or ACE_E_KEY with a sentence in err. */
int ace_keys_parse(const uint8_t *buf, size_t len, int hex_is_ed25519_seed, ace_keypair_t *out,
                   size_t max, size_t *n, char *err, size_t cap);
int ace_keys_load_file(const char *path, int hex_is_ed25519_seed, ace_keypair_t *out, size_t max,
                       size_t *n, char *err, size_t cap);

/* One COSE_Key map (RFC 9052 §7, RFC 9053) / one JWK object (RFC 7517/7518, RFC 8037). */
int ace_key_from_cose(const cbor_item_t *map, ace_keypair_t *out);
int ace_key_from_jwk(const json_t *jwk, ace_keypair_t *out);

/* Checks the key is usable: symmetric 1..64 bytes, EC2 a valid P-256 point, Ed25519 32 bytes. */
int ace_key_check(const ace_key_t *k);

/* Encoders. COSE: a malloc'd COSE_Key map (private part only if with_private). JWK: a malloc'd JSON
 * text. PEM: into out (NUL-terminated). Return 0 or a negative ACE_E_* code. */
int ace_key_to_cose(const ace_keypair_t *k, int with_private, uint8_t **out, size_t *len);
int ace_key_to_jwk(const ace_keypair_t *k, int with_private, char **out);
int ace_key_to_pem(const ace_keypair_t *k, int with_private, char *out, size_t cap);

/* Fresh keys: symmetric of `len` bytes, P-256, or Ed25519 (from a random seed). */
int ace_key_generate(ace_key_type_t type, size_t len, ace_keypair_t *out);

/* A random-byte source for mbedTLS (f_rng signature), backed by libsodium. */
int ace_rng(void *ctx, unsigned char *out, size_t len);

/* Verification context for one EC2 P-256 public key: the group (with its comb table built at init,
 * so that concurrent verifies only read it) and the point. */
typedef struct {
    mbedtls_ecp_group grp;
    mbedtls_ecp_point Q;
} ace_ec_ctx_t;

int ace_ec_ctx_init(ace_ec_ctx_t *c, const ace_key_t *k);
void ace_ec_ctx_free(ace_ec_ctx_t *c);
/* ES256 over msg with a raw r||s signature. 0 or ACE_E_BAD_SIGNATURE. */
int ace_es256_verify(ace_ec_ctx_t *c, const uint8_t *msg, size_t len, const uint8_t *sig,
                     size_t sig_len);
/* Deterministic ES256 (RFC 6979) signature r||s of msg. */
int ace_es256_sign(const ace_keypair_t *k, const uint8_t *msg, size_t len, uint8_t sig[64]);

/* Hex helpers: decode skips ASCII whitespace; encode writes lowercase plus a NUL. */
int ace_hex_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *n);
void ace_hex_encode(const uint8_t *in, size_t len, char *out);

#endif
