/*
 * ace/jwt.h: JWS compact serialization (RFC 7515) for JWT access tokens (RFC 7519), with exactly two
 * algorithms: ES256 (raw r||s, RFC 7518 §3.4) and HS256. `alg: none`, every other algorithm and any
 * `crit` header are refused, since nothing here implements an extension. Keys never come from the
 * token (jwk/jku/x5u headers are ignored): the caller picks them from its trust store.
 */
#ifndef ACEMQ_ACE_JWT_H
#define ACEMQ_ACE_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "ace/keys.h"

/* A parsed JWS. payload is malloc'd; signing_input points into the caller's token bytes. */
typedef struct {
    unsigned alg;                /* ACE_ALG_JWS_ES256 or ACE_ALG_JWS_HS256 */
    int has_kid;
    char kid[128];
    size_t kid_len;
    uint8_t *payload;            /* decoded payload (JSON text, not NUL-terminated) */
    size_t payload_len;
    const char *signing_input;   /* "header.payload" as it appears in the token */
    size_t signing_input_len;
    uint8_t sig[64];
    size_t sig_len;
} ace_jws_t;

/* 1 if the bytes have the shape of a JWS compact token: base64url characters and exactly two dots. */
int ace_jws_looks_like(const uint8_t *tok, size_t len);

/* Parses without verifying. 0, ACE_E_MALFORMED or ACE_E_BAD_ALG. */
int ace_jws_parse(const char *tok, size_t len, ace_jws_t *j);
void ace_jws_free(ace_jws_t *j);

/* 0 or ACE_E_BAD_SIGNATURE (ACE_E_BAD_ALG if the token's alg does not match the call). */
int ace_jws_verify_hs256(const ace_jws_t *j, const uint8_t *key, size_t key_len);
int ace_jws_verify_es256(const ace_jws_t *j, ace_ec_ctx_t *ec);

/* Signs `payload` (JSON text) as a compact JWS with header {"alg":..,"typ":"JWT"[,"kid":..]}, the kid
 * taken from the key. alg is ACE_ALG_JWS_ES256 (EC2 private key) or ACE_ALG_JWS_HS256 (symmetric).
 * *out is a malloc'd NUL-terminated string. */
int ace_jws_create(const char *payload, size_t len, unsigned alg, const ace_keypair_t *k,
                   char **out);

#endif
