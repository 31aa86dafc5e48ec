/*
 * tests/fuzz/ace_jwt_fuzz.c: libFuzzer target for the JWT path: JWS compact splitting, strict
 * base64url, the header rules (alg, crit, duplicates) and ace_token_verify() with the RFC 7515 A.1
 * HMAC key and A.3 P-256 key in the trust store. Seeds: the RFC 7515 tokens and minted ones.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ace/jwt.h"
#include "ace/keys.h"
#include "ace/token.h"

static const char *const jwks[] = {
    "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgU"
    "uTwjAzZr1Z9CAow\"}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\""
    "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"};

static ace_trust_t *trust(void)
{
    static ace_trust_t *t;
    if (t)
        return t;
    t = ace_trust_new("broker", 60, 3);
    ace_trust_set_require_exp(t, 0);
    for (int i = 0; i < 2; i++) {
        ace_keypair_t kp;
        size_t cnt;
        if (ace_keys_parse((const uint8_t *)jwks[i], strlen(jwks[i]), 0, &kp, 1, &cnt, NULL, 0) == 0)
            ace_trust_add_issuer_key(t, "joe", &kp.pub);
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ace_jws_t j;
    if (ace_jws_parse((const char *)data, size, &j) == 0)
        ace_jws_free(&j);
    ace_claims_t c;
    if (ace_token_verify(trust(), data, size, 1300000000, &c) == 0)
        ace_claims_free(&c);
    return 0;
}
