/*
 * tests/fuzz/ace_cwt_fuzz.c: libFuzzer target for the CWT path: the bounded CBOR pre-scan, and the
 * whole of ace_token_verify() (tag peeling, COSE parsing, Sign1/Mac0/Encrypt0 with the RFC 8392 A.2
 * keys, claims decoding). The seeds are the RFC 8392 Appendix A tokens, so the fuzzer reaches the
 * claims code through the MAC and AEAD checks only by mutation of unprotected parts; the scan and the
 * COSE structure parser are where it spends its time, which is where platform-notes B2 bit.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ace/cbor_scan.h"
#include "ace/cose.h"
#include "ace/keys.h"
#include "ace/token.h"

static const char *const keys_hex[] = {
    "a42050231f4c4d4d3051fdc2ec0a3851d5b3830104024c53796d6d6574726963313238030a",
    "a4205820403697de87af64611c1d32a05dab0fe1fcb715a86ab435f1ec99192d795693880104024c53796d6d6574"
    "726963323536030a",
    "a72358206c1382765aec5358f117733d281c1c7bdc39884d04a45a1e6c67c858bc206c1922582060f7f1a780d8a7"
    "83bfb7a2dd6b2796e8128dbbcef9d3d168db9529971a36e7b9215820143329cce7868e416927599cf65a34f3ce2f"
    "fda55a7eca69ed8919a394d42f0f2001010202524173796d6d657472696345434453413235360326"};

static ace_trust_t *trust(void)
{
    static ace_trust_t *t;
    if (t)
        return t;
    t = ace_trust_new("coap://light.example.com", 60, 3);
    for (int i = 0; i < 3; i++) {
        uint8_t buf[256];
        size_t n, cnt;
        ace_keypair_t kp;
        ace_hex_decode(keys_hex[i], strlen(keys_hex[i]), buf, sizeof(buf), &n);
        if (ace_keys_parse(buf, n, 0, &kp, 1, &cnt, NULL, 0) == 0)
            ace_trust_add_issuer_key(t, "coap://as.example.com", &kp.pub);
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int err;
    cbor_item_t *it = ace_cbor_load(data, size, NULL, &err);
    if (it)
        cbor_decref(&it);
    ace_cose_msg_t m;
    if (ace_cose_parse(data, size, NULL, &m) == 0)
        ace_cose_free(&m);
    ace_claims_t c;
    if (ace_token_verify(trust(), data, size, 1444000000, &c) == 0)
        ace_claims_free(&c);
    return 0;
}
