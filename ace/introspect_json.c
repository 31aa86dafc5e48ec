/*
 * ace/introspect_json.c: an RFC 7662 introspection answer (JSON, or RFC 9200's application/ace+json
 * which uses the same names) into ace_claims_t. Pure: bytes in, claims out, so it is fuzzed with the
 * HTTP reader in front of it. Anything of the wrong type fails the whole answer: an answer the broker
 * half understands is not an answer it may grant access on.
 */
#include "ace/introspect.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ace/keys.h"
#include "ace/scope.h"

#define TIME_LIMIT 253402300800LL /* year 10000: no real token lives that long */

static int copy_str(char *dst, size_t cap, const json_t *v)
{
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (!json_is_string(v) || n >= cap || memchr(s, '\0', n))
        return ACE_E_CLAIM;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int get_time(const json_t *v, int *has, int64_t *out)
{
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else if (json_is_real(v) && isfinite(json_real_value(v)) &&
               fabs(json_real_value(v)) < (double)TIME_LIMIT) {
        *out = (int64_t)floor(json_real_value(v));
    } else {
        return ACE_E_CLAIM;
    }
    if (*out <= -TIME_LIMIT || *out >= TIME_LIMIT)
        return ACE_E_CLAIM;
    *has = 1;
    return 0;
}

/* aud: a string or an array of strings; with an audience configured one of them must equal it. */
static int check_aud(const json_t *v, const char *audience)
{
    size_t i;
    const json_t *e;
    int match = 0;
    if (!v)
        return 0;
    if (json_is_string(v))
        match = audience && strcmp(json_string_value(v), audience) == 0;
    else if (!json_is_array(v))
        return ACE_E_CLAIM;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return ACE_E_CLAIM;
        match |= audience && strcmp(json_string_value(e), audience) == 0;
    }
    return !audience || match ? 0 : ACE_E_WRONG_AUDIENCE;
}

static int get_scope(const json_t *v, ace_claims_t *c)
{
    char *dump = NULL;
    const char *s;
    size_t n;
    if (!v)
        return 0;
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
        c->scope_kind = ACE_SCOPE_TSTR;
    } else if (json_is_array(v)) { /* AIF-MQTT as a JSON array (application/ace+json) */
        if (!(dump = json_dumps(v, JSON_COMPACT)))
            return ACE_E_NOMEM;
        s = dump;
        n = strlen(dump);
        c->scope_kind = ACE_SCOPE_JSON_ARRAY;
    } else {
        return ACE_E_CLAIM;
    }
    int rc = n > ACE_SCOPE_MAX_BYTES ? ACE_E_TOO_LARGE : 0;
    if (!rc && !(c->scope = malloc(n ? n : 1)))
        rc = ACE_E_NOMEM;
    if (!rc) {
        memcpy(c->scope, s, n);
        c->scope_len = n;
    } else {
        c->scope_kind = ACE_SCOPE_NONE;
    }
    free(dump);
    return rc;
}

/* cnf: only the forms a broker can check proof of possession with. jkt / x5t#S256 / jwe bind the
 * token to a key we cannot use, and dropping them would turn a bound token into a bearer one. */
static int get_cnf(const json_t *v, ace_claims_t *c)
{
    const json_t *jwk, *kid;
    if (!v)
        return 0;
    if (!json_is_object(v) || json_object_size(v) != 1)
        return ACE_E_CLAIM;
    if ((jwk = json_object_get(v, "jwk"))) {
        ace_keypair_t kp;
        if (ace_key_from_jwk(jwk, &kp))
            return ACE_E_CLAIM;
        c->cnf_key = kp.pub;
        c->has_cnf = 1;
        ace_keypair_wipe(&kp);
        return 0;
    }
    kid = json_object_get(v, "kid");
    if (!json_is_string(kid) || json_string_length(kid) == 0 ||
        json_string_length(kid) > sizeof(c->cnf_key.kid))
        return ACE_E_CLAIM;
    c->has_cnf = c->cnf_is_kid_only = 1;
    c->cnf_key.kid_len = json_string_length(kid);
    memcpy(c->cnf_key.kid, json_string_value(kid), c->cnf_key.kid_len);
    return 0;
}

/* cti (ACE) or jti (RFC 7662): kept as the string's bytes, for exi and for logs by digest. */
static int get_cti(const json_t *o, ace_claims_t *c)
{
    const json_t *v = json_object_get(o, "cti");
    if (!v)
        v = json_object_get(o, "jti");
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) > sizeof(c->cti))
        return ACE_E_CLAIM;
    c->cti_len = json_string_length(v);
    memcpy(c->cti, json_string_value(v), c->cti_len);
    c->has_cti = 1;
    return 0;
}

static int get_claims(const json_t *o, const char *audience, ace_claims_t *c)
{
    const json_t *v;
    int rc = 0;
    if ((v = json_object_get(o, "iss")))
        rc = copy_str(c->iss, sizeof(c->iss), v);
    /* sub, else client_id: for the client-credentials grant they name the same party. */
    if (!rc && ((v = json_object_get(o, "sub")) || (v = json_object_get(o, "client_id"))))
        rc = copy_str(c->sub, sizeof(c->sub), v);
    if (!rc)
        rc = get_time(json_object_get(o, "exp"), &c->has_exp, &c->exp);
    if (!rc)
        rc = get_time(json_object_get(o, "nbf"), &c->has_nbf, &c->nbf);
    if (!rc)
        rc = get_time(json_object_get(o, "iat"), &c->has_iat, &c->iat);
    if (!rc && (v = json_object_get(o, "exi"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return ACE_E_CLAIM;
        c->has_exi = 1;
        c->exi = json_integer_value(v);
    }
    if (!rc)
        rc = get_cti(o, c);
    if (!rc)
        rc = get_cnf(json_object_get(o, "cnf"), c);
    if (!rc)
        rc = get_scope(json_object_get(o, "scope"), c);
    if (!rc)
        rc = check_aud(json_object_get(o, "aud"), audience);
    return rc;
}

int ace_introspect_parse_json(const uint8_t *json, size_t len, const char *audience,
                              ace_claims_t *out)
{
    json_error_t jerr;
    memset(out, 0, sizeof(*out));
    if (!json)
        return ACE_INTROSPECT_E_RESPONSE;
    json_t *o = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return ACE_INTROSPECT_E_RESPONSE;
    const json_t *active = json_object_get(o, "active");
    int rc;
    if (!json_is_object(o) || !json_is_boolean(active))
        rc = ACE_INTROSPECT_E_RESPONSE; /* `active` is the one required member */
    else if (!json_is_true(active))
        rc = ACE_INTROSPECT_E_INACTIVE;
    else
        rc = get_claims(o, audience, out);
    json_decref(o);
    if (rc)
        ace_claims_free(out);
    return rc;
}

const char *ace_introspect_strerror(int code)
{
    switch (code) {
    case 0:
        return "token active";
    case ACE_INTROSPECT_E_INACTIVE:
        return "the authorization server says the token is not active";
    case ACE_INTROSPECT_E_CONNECT:
        return "cannot reach the authorization server";
    case ACE_INTROSPECT_E_TIMEOUT:
        return "the authorization server did not answer in time";
    case ACE_INTROSPECT_E_HTTP:
        return "the introspection endpoint answered with an HTTP error status";
    case ACE_INTROSPECT_E_RESPONSE:
        return "the introspection answer is not a valid RFC 7662 response";
    case ACE_INTROSPECT_E_TLS:
        return "TLS with the authorization server failed (certificate or handshake)";
    default:
        return ace_strerror(code);
    }
}
