/*
 * tests/unit/ace_vectors.h: published test vectors shared by the test_ace_* files. RFC 8392
 * Appendix A (CWT), checked against an independent CWT test suite; RFC 7515 A.1 and A.3 (JWS).
 */
#ifndef ACEMQ_TEST_ACE_VECTORS_H
#define ACEMQ_TEST_ACE_VECTORS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ace/keys.h"

/* A.1 claims: iss coap://as.example.com, sub erikw, aud coap://light.example.com, exp 1444064944,
 * nbf = iat = 1443944944, cti h'0b71'. */
#define RFC8392_A1                                                                                 \
    "a70175636f61703a2f2f61732e6578616d706c652e636f6d02656572696b77037818636f61703a2f2f6c69676874" \
    "2e6578616d706c652e636f6d041a5612aeb0051a5610d9f0061a5610d9f007420b71"
#define RFC8392_A2_SYM128 "a42050231f4c4d4d3051fdc2ec0a3851d5b3830104024c53796d6d6574726963313238030a"
#define RFC8392_A2_SYM256                                                                          \
    "a4205820403697de87af64611c1d32a05dab0fe1fcb715a86ab435f1ec99192d795693880104024c53796d6d6574" \
    "726963323536030a"
#define RFC8392_A2_EC                                                                              \
    "a72358206c1382765aec5358f117733d281c1c7bdc39884d04a45a1e6c67c858bc206c1922582060f7f1a780d8a7" \
    "83bfb7a2dd6b2796e8128dbbcef9d3d168db9529971a36e7b9215820143329cce7868e416927599cf65a34f3ce2f" \
    "fda55a7eca69ed8919a394d42f0f2001010202524173796d6d657472696345434453413235360326"
#define RFC8392_A3                                                                                 \
    "d28443a10126a104524173796d6d657472696345434453413235365850a70175636f61703a2f2f61732e6578616d" \
    "706c652e636f6d02656572696b77037818636f61703a2f2f6c696768742e6578616d706c652e636f6d041a5612ae" \
    "b0051a5610d9f0061a5610d9f007420b7158405427c1ff28d23fbad1f29c4c7c6a555e601d6fa29f9179bc3d7438" \
    "bacaca5acd08c8d4d4f96131680c429a01f85951ecee743a52b9b63632c57209120e1c9e30"
#define RFC8392_A4                                                                                 \
    "d83dd18443a10104a1044c53796d6d65747269633235365850a70175636f61703a2f2f61732e6578616d706c652e" \
    "636f6d02656572696b77037818636f61703a2f2f6c696768742e6578616d706c652e636f6d041a5612aeb0051a56" \
    "10d9f0061a5610d9f007420b7148093101ef6d789200"
#define RFC8392_A5                                                                                 \
    "d08343a1010aa2044c53796d6d6574726963313238054d99a0d7846e762c49ffe8a63e0b5858b918a11fd81e438b" \
    "7f973d9e2e119bcb22424ba0f38a80f27562f400ee1d0d6c0fdb559c02421fd384fc2ebe22d7071378b0ea7428ff" \
    "f157444d45f7e6afcda1aae5f6495830c58627087fc5b4974f319a8707a635dd643b"
#define RFC8392_A6                                                                                 \
    "d08343a1010aa2044c53796d6d6574726963313238054d4a0694c0e69ee6b5956655c7b258b7f6b0914f993de822" \
    "cc47e5e57a188d7960b528a747446fe12f0e7de05650dec74724366763f167a29c002dfd15b34d8993391cf49bc9" \
    "1127f545dba8703d66f5b7f1ae91237503d371e6333df9708d78c4fb8a8386c8ff09dc49af768b23179deab78d96" \
    "490a66d5724fb33900c60799d9872fac6da3bdb89043d67c2a05414ce331b5b8f1ed8ff7138f45905db2c4d5bc80" \
    "45ab372bff142631610a7e0f677b7e9b0bc73adefdcee16d9d5d284c616abeab5d8c291ce0"
#define RFC8392_A7                                                                                 \
    "d18443a10104a1044c53796d6d65747269633235364ba106fb41d584367c20000048b8816f34c0542892"

#define RFC7515_A1_TOKEN                                                                           \
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0" \
    "dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define RFC7515_A1_JWK                                                                             \
    "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgU" \
    "uTwjAzZr1Z9CAow\"}"
#define RFC7515_A3_TOKEN                                                                           \
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv" \
    "bS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKT" \
    "UJqPP3-Kg6NU1Q"
#define RFC7515_A3_JWK                                                                             \
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"" \
    "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"

/* Decodes a hex literal into a malloc'd buffer (the tests free it). */
static inline uint8_t *unhex(const char *hex, size_t *n)
{
    uint8_t *p = malloc(strlen(hex) / 2 + 1);
    if (p && ace_hex_decode(hex, strlen(hex), p, strlen(hex) / 2 + 1, n) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* Loads one key from a hex COSE_Key or a JWK text. */
static inline int key_from_text(const char *text, int is_hex, ace_keypair_t *kp)
{
    size_t n, cnt = 0;
    uint8_t *b = is_hex ? unhex(text, &n) : (uint8_t *)strdup(text);
    if (!is_hex && b)
        n = strlen(text);
    int rc = b ? ace_keys_parse(b, n, 0, kp, 1, &cnt, NULL, 0) : -1;
    free(b);
    return rc == 0 && cnt == 1 ? 0 : -1;
}

#endif
