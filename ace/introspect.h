/*
 * ace/introspect.h: the RFC 7662 token introspection client, for reference tokens (and for JWTs the
 * broker prefers to have the AS vouch for, e.g. to see revocation).
 *
 * One ace_introspect_t per configured AS, shared by every worker. A worker asks about a token with
 * ace_introspect_token(), passing its own uv_loop_t: the exchange (DNS, TCP, TLS, HTTP/1.1 POST,
 * response) runs on that loop and never blocks it on the network, and the callback comes back on it.
 * The request is `token=<token>&token_type_hint=access_token`, form-encoded, with HTTP Basic
 * authentication from the broker's client_id and secret (RFC 6749 §2.3.1). The response must be
 * 200 with application/json or application/ace+json (application/ace+cbor is not accepted).
 *
 * Answers are cached by the SHA-256 of the token bytes, so a device that reconnects with the same
 * token costs the AS one request: an active answer lives until min(exp, now + cache_ttl), an
 * inactive one for cache_ttl (a revoked token stays refused without asking again). Errors are never
 * cached. The cache is bounded (capacity entries) and thread-safe.
 *
 * Claims: active, exp, iat, nbf, iss, sub, scope (a string -> ACE_SCOPE_TSTR, an AIF array ->
 * ACE_SCOPE_JSON_ARRAY), cnf (jwk or kid), jti/cti, exi. sub falls back to client_id (the same party
 * for the client-credentials grant); iss falls back to the configured issuer name, else the URL,
 * because many AS (glewlwyd) leave iss out of introspection answers. A cnf the broker cannot use
 * (jkt, x5t#S256, jwe) fails the token rather than being dropped, so a PoP-bound token never
 * silently becomes a bearer token.
 *
 * Broker wiring: url/client_id/secret_file = `ace_introspection`, cafile = `ace_introspection_cafile`,
 * audience = `ace_audience`, timeout_ms = 1000 * `ace_introspection_timeout`, cache_ttl =
 * `ace_introspection_cache_ttl`, clock_skew = `ace_clock_skew`, max_token = `ace_max_token_size`.
 * Writes to a closed socket must not kill the process: ignore SIGPIPE (acemqd does).
 *
 * Errors are 0 or a negative code: the ACE_INTROSPECT_E_* below, or an ACE_E_* code of ace/token.h
 * (ACE_E_EXPIRED, ACE_E_WRONG_AUDIENCE, ACE_E_CLAIM, ACE_E_NOMEM, ACE_E_ARG, ACE_E_TOO_LARGE).
 * Tokens and the secret are never logged or put into error strings.
 */
#ifndef ACEMQ_ACE_INTROSPECT_H
#define ACEMQ_ACE_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ace/token.h"

enum {
    ACE_INTROSPECT_E_INACTIVE = -40,  /* the AS said active:false (unknown, expired, revoked) */
    ACE_INTROSPECT_E_CONNECT = -41,   /* AS down: name not resolved, connection refused/reset */
    ACE_INTROSPECT_E_TIMEOUT = -42,   /* no complete answer within timeout_ms */
    ACE_INTROSPECT_E_HTTP = -43,      /* HTTP status other than 200 (e.g. 401: bad credentials) */
    ACE_INTROSPECT_E_RESPONSE = -44,  /* not HTTP, wrong content type, bad JSON, no `active` */
    ACE_INTROSPECT_E_TLS = -45,       /* TLS handshake failed or the AS certificate did not verify */
};

#define ACE_INTROSPECT_DEFAULT_CAFILE "/etc/ssl/certs/ca-certificates.crt"

typedef struct {
    const char *url;          /* http[s]://host[:port][/path]; host may be [IPv6] */
    const char *client_id;    /* the broker's client id at the AS */
    const char *secret_file;  /* its secret is the first line of this file */
    const char *cafile;       /* PEM CAs for the AS certificate; NULL = the system bundle */
    const char *audience;     /* if set, an `aud` in the answer must name it (absent aud passes) */
    const char *issuer;       /* iss for answers without one; NULL = the URL */
    unsigned timeout_ms;      /* connect + answer; 0 = 5000 */
    int cache_ttl;            /* seconds; 0 = no cache */
    size_t cache_capacity;    /* entries; 0 = 4096 */
    int clock_skew;           /* seconds of tolerance on exp */
    size_t max_token;         /* bytes; 0 = 16384 */
    size_t max_response;      /* bytes of HTTP response; 0 = 65536 */
} ace_introspect_config_t;

typedef struct ace_introspect ace_introspect_t;
typedef struct ace_introspect_req ace_introspect_req_t;

/* status 0: claims is the active token (valid only during the call; ace_claims_copy() to keep it).
 * Otherwise claims is NULL and status is one of the codes above. */
typedef void (*ace_introspect_cb)(void *arg, int status, const ace_claims_t *claims);

/* Reads the secret, loads the CA file and checks the URL. NULL with a sentence in err on failure. */
ace_introspect_t *ace_introspect_new(const ace_introspect_config_t *cfg, char *err, size_t cap);

/* Drops the caller's reference. Requests still running keep the object alive until they end. */
void ace_introspect_free(ace_introspect_t *ai);

/*
 * Starts introspecting tok[0..len) on `loop` (the calling thread's loop). Returns 0 and sets *req,
 * after which cb runs exactly once, later, on that loop, unless the request is cancelled first. A
 * cached answer is delivered the same way (on the next loop iteration), never from inside this call.
 * Returns a negative code (ACE_E_ARG, ACE_E_TOO_LARGE, ACE_E_NOMEM) without calling cb otherwise.
 */
int ace_introspect_token(ace_introspect_t *ai, uv_loop_t *loop, const uint8_t *tok, size_t len,
                         ace_introspect_cb cb, void *arg, ace_introspect_req_t **req);

/* Abandons a request whose callback has not run yet (its connection went away): cb will not be
 * called. The handle is invalid afterwards, and also once cb has been called. Loop thread only. */
void ace_introspect_cancel(ace_introspect_req_t *req);

/* Cache lookup only, from any thread: 0 and a copy in *out (ace_claims_free it) for a cached active
 * answer, ACE_INTROSPECT_E_INACTIVE for a cached inactive one, 1 on a miss. */
int ace_introspect_cached(ace_introspect_t *ai, const uint8_t *tok, size_t len, int64_t now,
                          ace_claims_t *out);

/*
 * The pure part, for tests and fuzzing: parses a complete HTTP/1.x response (status line, headers,
 * body with Content-Length, chunked, or up to EOF) and its JSON into *out (zeroed first; left zeroed
 * on error). *http_status gets the status code once the headers parsed (else 0). audience: as in
 * the config (NULL = no check). Returns 0 for an active token or a negative code. The sub fallback
 * to client_id is applied here; the iss fallback, the digest and the exp check are left to
 * ace_introspect_token.
 */
int ace_introspect_parse_response(const uint8_t *buf, size_t len, const char *audience,
                                  ace_claims_t *out, int *http_status);

/* The JSON body alone (after the HTTP checks). Same contract. */
int ace_introspect_parse_json(const uint8_t *json, size_t len, const char *audience,
                              ace_claims_t *out);

/* One sentence for logs, for the codes above and ACE_E_*. */
const char *ace_introspect_strerror(int code);

#endif
