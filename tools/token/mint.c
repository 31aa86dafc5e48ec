/*
 * tools/token/mint.c: `acemq-token mint`. Builds the claims from the options and signs, MACs or
 * encrypts them with ace_token_mint(). A CWT scope given as JSON AIF is written, as acemq decided
 * (ace-profile.md Part 1, decision 3), as a bstr wrapping the CBOR array; a JWT scope as the AIF JSON
 * text in a string.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ace/b64url.h"
#include "ace/cbor_scan.h"
#include "ace/token_mint.h"
#include "tools/token/tool.h"

/* JSON (arrays, strings, integers, booleans, null) to CBOR, for AIF scopes. */
static int json_to_cbor(const json_t *j, ace_cbuf_t *b, int depth)
{
    size_t i;
    const json_t *e;
    if (depth > 16)
        return -1;
    switch (json_typeof(j)) {
    case JSON_ARRAY:
        ace_cbuf_head(b, 4, json_array_size(j));
        json_array_foreach(j, i, e) {
            if (json_to_cbor(e, b, depth + 1))
                return -1;
        }
        return 0;
    case JSON_STRING:
        ace_cbuf_head(b, 3, json_string_length(j));
        ace_cbuf_bytes(b, json_string_value(j), json_string_length(j));
        return 0;
    case JSON_INTEGER:
        ace_cbuf_int(b, json_integer_value(j));
        return 0;
    case JSON_TRUE: case JSON_FALSE: case JSON_NULL: {
        uint8_t v = json_is_true(j) ? 0xf5 : json_is_false(j) ? 0xf4 : 0xf6;
        ace_cbuf_bytes(b, &v, 1);
        return 0;
    }
    default:
        return -1; /* objects and reals have no place in AIF */
    }
}

/* Sets the scope in m from --scope (JSON AIF) or --scope-text; *buf keeps the bytes alive. */
static int set_scope(const args_t *a, int jwt, ace_mint_t *m, ace_cbuf_t *buf, char **json)
{
    const char *aif = opt(a, "--scope"), *text = opt(a, "--scope-text");
    if (text) {
        m->scope_kind = ACE_SCOPE_TSTR;
        m->scope = (const uint8_t *)text;
        m->scope_len = strlen(text);
        return 0;
    }
    if (!aif)
        return 0;
    json_error_t jerr;
    json_t *j = json_loads(aif, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array(j)) {
        json_decref(j);
        return die("--scope is not a JSON AIF array: %s", jerr.text);
    }
    int rc = 0;
    if (jwt) {
        *json = json_dumps(j, JSON_COMPACT);
        m->scope_kind = ACE_SCOPE_TSTR;
        m->scope = (const uint8_t *)*json;
        m->scope_len = *json ? strlen(*json) : 0;
        rc = *json ? 0 : die("out of memory");
    } else if (json_to_cbor(j, buf, 0) || buf->err) {
        rc = die("--scope cannot be encoded as CBOR (arrays, strings, integers only)");
    } else {
        m->scope_kind = ACE_SCOPE_BSTR;
        m->scope = buf->p;
        m->scope_len = buf->len;
    }
    json_decref(j);
    return rc;
}

static int parse_i64(const char *s, const char *name, int64_t *v)
{
    char *end;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end)
        return die("%s needs an integer, not '%s'", name, s);
    *v = x;
    return 0;
}

static int set_times(const args_t *a, ace_mint_t *m)
{
    int64_t now = (int64_t)time(NULL), v = 0;
    m->has_iat = !flag(a, "--no-iat");
    m->iat = now;
    if (opt(a, "--exp")) {
        if (parse_i64(opt(a, "--exp"), "--exp", &v))
            return 1;
        m->has_exp = 1;
        m->exp = now + v;
    }
    if (opt(a, "--exp-at")) {
        if (parse_i64(opt(a, "--exp-at"), "--exp-at", &m->exp))
            return 1;
        m->has_exp = 1;
    }
    if (opt(a, "--nbf-at")) {
        if (parse_i64(opt(a, "--nbf-at"), "--nbf-at", &m->nbf))
            return 1;
        m->has_nbf = 1;
    }
    if (opt(a, "--exi")) {
        if (parse_i64(opt(a, "--exi"), "--exi", &m->exi) || m->exi < 0)
            return die("--exi needs a non-negative integer");
        m->has_exi = 1;
    }
    return 0;
}

static int set_profile(const char *p, ace_mint_t *m)
{
    if (!p)
        return 0;
    if (strcmp(p, "mqtt_tls") == 0) {
        m->profile_kind = 2;
        return 0;
    }
    m->profile_kind = 1;
    return parse_i64(p, "--profile", &m->profile);
}

static ace_mint_format_t format_of(const char *f)
{
    static const char *const names[] = {"cwt-sign1", "cwt-mac0", "cwt-encrypt0", "cwt-nested",
                                        "jwt-es256", "jwt-hs256"};
    for (int i = 0; f && i < 6; i++)
        if (strcmp(f, names[i]) == 0)
            return (ace_mint_format_t)i;
    return (ace_mint_format_t)-1;
}

static int emit(const args_t *a, const uint8_t *tok, size_t len, int jwt)
{
    const char *out = opt(a, "--out");
    if (!flag(a, "--b64url"))
        return write_file(out, tok, len, 0);
    char *s = malloc(ACE_B64URL_ENC_LEN(len) + 1);
    if (!s)
        return die("out of memory");
    if (jwt)
        memcpy(s, tok, len + 1);
    else
        ace_b64url_encode(tok, len, s, ACE_B64URL_ENC_LEN(len));
    int rc = strcmp(out, "-") == 0 ? (printf("%s\n", s), 0) : write_file(out, s, strlen(s), 0);
    free(s);
    return rc;
}

typedef struct {
    ace_keypair_t key, enc, cnf;
    uint8_t cti[64], cnonce[64], cnf_kid[64];
    ace_cbuf_t scope;
    char *scope_json;
} mint_state_t;

static int collect(const args_t *a, ace_mint_format_t fmt, mint_state_t *s, ace_mint_t *m)
{
    int jwt = fmt >= ACE_MINT_JWT_ES256;
    if (load_key(opt(a, "--key"), NULL, &s->key))
        return 1;
    if (opt(a, "--enc-key") && load_key(opt(a, "--enc-key"), NULL, &s->enc))
        return 1;
    if ((fmt == ACE_MINT_CWT_NESTED || flag(a, "--cnf-encrypt")) && !opt(a, "--enc-key"))
        return die("cwt-nested and --cnf-encrypt need --enc-key (a 16-byte AES key)");
    if (opt(a, "--cnf-key")) {
        if (load_key(opt(a, "--cnf-key"), opt(a, "--cnf-type"), &s->cnf))
            return 1;
        m->cnf_key = &s->cnf.pub;
        m->cnf_enc_key = flag(a, "--cnf-encrypt") ? &s->enc.pub : NULL;
    } else if (opt(a, "--cnf-kid")) {
        if (hex_arg(opt(a, "--cnf-kid"), s->cnf_kid, sizeof(s->cnf_kid), &m->cnf_kid_len))
            return 1;
        m->cnf_kid = s->cnf_kid;
    }
    if (opt(a, "--cti") && hex_arg(opt(a, "--cti"), s->cti, sizeof(s->cti), &m->cti_len))
        return 1;
    m->cti = opt(a, "--cti") ? s->cti : NULL;
    if (opt(a, "--cnonce") &&
        hex_arg(opt(a, "--cnonce"), s->cnonce, sizeof(s->cnonce), &m->cnonce_len))
        return 1;
    m->cnonce = opt(a, "--cnonce") ? s->cnonce : NULL;
    m->iss = opt(a, "--iss");
    m->aud = opt(a, "--aud");
    m->sub = opt(a, "--sub");
    m->mac_alg = opt(a, "--mac-alg") ? atoi(opt(a, "--mac-alg")) : 0;
    m->cwt_tag = flag(a, "--tag61");
    if (jwt && flag(a, "--cnf-encrypt"))
        return die("--cnf-encrypt is for CWTs only");
    return set_times(a, m) || set_profile(opt(a, "--profile"), m) ||
           set_scope(a, jwt, m, &s->scope, &s->scope_json);
}

int cmd_mint(const args_t *a)
{
    static const char *const names[] = {
        "--format", "--key", "--enc-key", "--iss", "--aud", "--sub", "--exp", "--exp-at",
        "--nbf-at", "--no-iat!", "--scope", "--scope-text", "--cnf-key", "--cnf-type",
        "--cnf-encrypt!", "--cnf-kid", "--cti", "--exi", "--cnonce", "--profile", "--mac-alg",
        "--tag61!", "--out", "--b64url!", NULL};
    if (check_args(a, names))
        return 1;
    ace_mint_format_t fmt = format_of(opt(a, "--format"));
    if ((int)fmt < 0)
        return die("--format must be cwt-sign1, cwt-mac0, cwt-encrypt0, cwt-nested, jwt-es256 or "
                   "jwt-hs256");
    if (!opt(a, "--out"))
        return die("mint needs --out FILE (- with --b64url prints it)");
    if (!opt(a, "--aud"))
        return die("mint needs --aud (the broker's audience)");
    mint_state_t *s = calloc(1, sizeof(*s));
    ace_mint_t m = {0};
    uint8_t *tok = NULL;
    size_t len = 0;
    int rc = !s ? die("out of memory") : collect(a, fmt, s, &m);
    if (rc == 0) {
        int err = ace_token_mint(&m, fmt, &s->key, &s->enc, &tok, &len);
        rc = err ? die("cannot mint: %s (does the key fit the format?)", ace_strerror(err))
                 : emit(a, tok, len, fmt >= ACE_MINT_JWT_ES256);
    }
    free(tok);
    if (s) {
        ace_cbuf_free(&s->scope);
        free(s->scope_json);
        ace_keypair_wipe(&s->key);
        ace_keypair_wipe(&s->enc);
        free(s);
    }
    return rc;
}
