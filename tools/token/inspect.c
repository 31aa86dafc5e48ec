/*
 * tools/token/inspect.c: `acemq-token inspect`. Without trust options it decodes the token without
 * verifying anything (and says so); with --trust-iss/--trust-key/--aud it runs ace_token_verify()
 * and prints the verified claims (--trust-key may repeat, e.g. AES + P-256 for a nested CWT). Key material in cnf is never printed: only its type and kid.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ace/b64url.h"
#include "ace/cose.h"
#include "ace/jwt.h"
#include "ace/token.h"
#include "tools/token/tool.h"

static const char *const claim_names[41] = {
    [1] = "iss", [2] = "sub", [3] = "aud", [4] = "exp", [5] = "nbf", [6] = "iat", [7] = "cti",
    [8] = "cnf", [9] = "scope", [38] = "ace_profile", [39] = "cnonce", [40] = "exi"};

static void print_hex(const char *label, const uint8_t *p, size_t n)
{
    printf("  %-12s h'", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("'\n");
}

static void print_cbor_claim(const char *name, const cbor_item_t *v)
{
    int64_t i;
    size_t n;
    const char *s;
    const uint8_t *b;
    if (strcmp(name, "cnf") == 0)
        printf("  %-12s [key material redacted]\n", name);
    else if ((s = ace_cbor_tstr(v, &n)))
        printf("  %-12s \"%.*s\"\n", name, (int)n, s);
    else if (ace_cbor_get_int(v, &i) == 0)
        printf("  %-12s %lld\n", name, (long long)i);
    else if ((b = ace_cbor_bstr(v, &n)))
        print_hex(name, b, n);
    else
        printf("  %-12s (%s)\n", name, cbor_isa_array(v) ? "array" : "other CBOR value");
}

static int show_unverified_cwt(const uint8_t *tok, size_t len)
{
    ace_cose_msg_t m;
    int rc = ace_cose_parse(tok, len, NULL, &m);
    if (rc)
        return die("not a CWT: %s", ace_strerror(rc));
    static const char *const types[] = {"COSE_Encrypt0", "COSE_Mac0", "COSE_Sign1"};
    printf("CWT %s, alg %d (NOT verified)\n", types[m.type - ACE_COSE_ENCRYPT0], m.alg);
    if (m.kid)
        print_hex("kid", m.kid, m.kid_len);
    if (m.type == ACE_COSE_ENCRYPT0) {
        printf("  claims are encrypted; give --trust-iss/--trust-key/--aud to decrypt\n");
        ace_cose_free(&m);
        return 0;
    }
    cbor_item_t *claims = ace_cbor_load(m.payload, m.payload_len, NULL, &rc);
    if (!claims || !cbor_isa_map(claims)) {
        if (claims)
            cbor_decref(&claims);
        ace_cose_free(&m);
        return die("the payload is not a claims map");
    }
    struct cbor_pair *p = cbor_map_handle(claims);
    for (size_t i = 0; i < cbor_map_size(claims); i++) {
        int64_t k;
        char num[24];
        const char *name = num;
        if (ace_cbor_get_int(p[i].key, &k) != 0)
            continue;
        if (k >= 0 && k <= 40 && claim_names[k])
            name = claim_names[k];
        else
            snprintf(num, sizeof(num), "%lld", (long long)k);
        print_cbor_claim(name, p[i].value);
    }
    cbor_decref(&claims);
    ace_cose_free(&m);
    return 0;
}

static int show_unverified_jwt(const uint8_t *tok, size_t len)
{
    ace_jws_t j;
    int rc = ace_jws_parse((const char *)tok, len, &j);
    if (rc)
        return die("not a usable JWT: %s", ace_strerror(rc));
    json_t *o = json_loadb((const char *)j.payload, j.payload_len, 0, NULL);
    if (json_object_get(o, "cnf"))
        json_object_set_new(o, "cnf", json_string("[key material redacted]"));
    char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    printf("JWT %s (NOT verified)\n%s\n", j.alg == ACE_ALG_JWS_ES256 ? "ES256" : "HS256",
           s ? s : "(payload is not a JSON object)");
    free(s);
    json_decref(o);
    ace_jws_free(&j);
    return 0;
}

static void show_claims(const ace_claims_t *c)
{
    static const char *const kt[] = {"symmetric", "EC2 P-256", "OKP Ed25519"};
    static const char *const sk[] = {"none", "bstr", "tstr", "CBOR array", "JSON array"};
    printf("  %-12s \"%s\"\n", "iss", c->iss);
    if (c->sub[0])
        printf("  %-12s \"%s\"\n", "sub", c->sub);
    if (c->has_exp)
        printf("  %-12s %lld\n", "exp", (long long)c->exp);
    if (c->has_nbf)
        printf("  %-12s %lld\n", "nbf", (long long)c->nbf);
    if (c->has_iat)
        printf("  %-12s %lld\n", "iat", (long long)c->iat);
    if (c->has_exi)
        printf("  %-12s %lld\n", "exi", (long long)c->exi);
    if (c->has_cti)
        print_hex(c->is_jwt ? "jti" : "cti", c->cti, c->cti_len);
    if (c->has_cnonce)
        print_hex("cnonce", c->cnonce, c->cnonce_len);
    if (c->has_cnf && c->cnf_is_kid_only)
        print_hex("cnf kid", c->cnf_key.kid, c->cnf_key.kid_len);
    else if (c->has_cnf)
        printf("  %-12s %s key [redacted]\n", "cnf", kt[c->cnf_key.type]);
    if (c->has_cnf && !c->cnf_is_kid_only && c->cnf_key.kid_len)
        print_hex("cnf kid", c->cnf_key.kid, c->cnf_key.kid_len);
    if (c->scope_kind == ACE_SCOPE_TSTR || c->scope_kind == ACE_SCOPE_JSON_ARRAY)
        printf("  %-12s (%s) %.*s\n", "scope", sk[c->scope_kind], (int)c->scope_len, c->scope);
    else if (c->scope_kind != ACE_SCOPE_NONE)
        print_hex(c->scope_kind == ACE_SCOPE_BSTR ? "scope bstr" : "scope array", c->scope,
                  c->scope_len);
}

static int verify(const args_t *a, const uint8_t *tok, size_t len)
{
    const char *iss = opt(a, "--trust-iss"), *key = opt(a, "--trust-key"), *aud = opt(a, "--aud");
    if (!iss || !key || !aud)
        return die("verification needs --trust-iss, --trust-key and --aud together");
    char err[200] = "";
    ace_trust_t *t = ace_trust_new(aud, 0, 3);
    if (!t)
        return die("bad --aud");
    int rc = 0;
    for (int i = 0; rc == 0 && i + 1 < a->argc; i++) /* --trust-key may be given several times */
        if (strcmp(a->argv[i], "--trust-key") == 0)
            rc = ace_trust_add_issuer_keyfile(t, iss, a->argv[i + 1], err, sizeof(err));
    if (rc) {
        ace_trust_free(t);
        return die("%s", err[0] ? err : ace_strerror(rc));
    }
    int64_t now = opt(a, "--now") ? strtoll(opt(a, "--now"), NULL, 10) : (int64_t)time(NULL);
    ace_claims_t c;
    rc = ace_token_verify(t, tok, len, now, &c);
    ace_trust_free(t);
    if (rc)
        return die("token does NOT verify: %s", ace_strerror(rc));
    printf("%s verified\n", c.is_jwt ? "JWT" : "CWT");
    show_claims(&c);
    ace_claims_free(&c);
    return 0;
}

int cmd_inspect(const args_t *a)
{
    static const char *const names[] = {"--token", "--trust-iss", "--trust-key", "--aud", "--now",
                                        NULL};
    size_t len;
    if (check_args(a, names))
        return 1;
    if (!opt(a, "--token"))
        return die("inspect needs --token FILE");
    uint8_t *tok = read_file(opt(a, "--token"), 65536, &len);
    if (!tok)
        return 1;
    while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
        len--;
    /* A CWT saved with --b64url: decode it back to bytes. */
    uint8_t *bin = NULL;
    size_t bin_len;
    if (!ace_jws_looks_like(tok, len) && (bin = malloc(ACE_B64URL_DEC_LEN(len))) &&
        ace_b64url_decode((const char *)tok, len, bin, ACE_B64URL_DEC_LEN(len), &bin_len) == 0) {
        free(tok);
        tok = bin;
        len = bin_len;
        bin = NULL;
    }
    free(bin);
    int rc;
    if (opt(a, "--trust-iss") || opt(a, "--trust-key") || opt(a, "--aud"))
        rc = verify(a, tok, len);
    else if (ace_jws_looks_like(tok, len))
        rc = show_unverified_jwt(tok, len);
    else
        rc = show_unverified_cwt(tok, len);
    free(tok);
    return rc;
}
