/*
 * ace/b64url.h: base64url without padding (RFC 4648 §5, as JOSE uses it). mbedTLS has only standard
 * base64, and the mapping is short enough to do directly. Decoding is strict: '+', '/', '=' and
 * whitespace are rejected, and so are non-zero unused bits, so each value has one encoding.
 */
#ifndef ACEMQ_ACE_B64URL_H
#define ACEMQ_ACE_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to decode `len` characters (an upper bound) / to encode `len` bytes plus a NUL. */
#define ACE_B64URL_DEC_LEN(len) (((len) / 4) * 3 + 3)
#define ACE_B64URL_ENC_LEN(len) ((((len) + 2) / 3) * 4 + 1)

/* 0 and *n on success; -1 if the input is not canonical base64url or cap is too small. */
int ace_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *n);
/* Writes the encoding and a NUL; returns its length (without NUL), or -1 if cap is too small. */
long ace_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);

#endif
