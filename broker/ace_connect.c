/*
 * broker/ace_connect.c: ACE (RFC 9431) at CONNECT and in AUTH: the token, its proof of possession
 * (PoP), re-authentication, and the timer that ends a connection when its token expires.
 *
 * CONNECT forms (MQTT 5, Authentication Method "ace", Authentication Data):
 *   A  [u16 len][token][PoP over the TLS exporter value]  -> CONNACK
 *   B  [u16 len][token]                                   -> AUTH 0x18 RS_nonce(8)
 *      <- AUTH 0x18 C_nonce(8) || PoP over RS_nonce || C_nonce                  -> CONNACK
 *   no data: challenge/response against the token stored via authz-info for this TLS-PSK identity,
 *   else CONNACK 0x87 with the ace_as_hint User Property.
 * MQTT 3.1.1: user name "ace" + base64url(token), password = PoP over the exporter value.
 * Re-authentication: AUTH 0x19 [u16 len][token] -> AUTH 0x18 nonce -> AUTH 0x18 response -> AUTH 0x00.
 *
 * Verification costs up to two ES256 checks (~1 ms each with mbedTLS 2.28): the token signature and
 * an EC2 PoP. A verified-token cache hit with a symmetric or Ed25519 PoP key is done on the loop;
 * anything else runs in libuv's thread pool (uv_queue_work on the connection's worker loop). The
 * job owns copies of everything it reads and a connection reference; its completion is ignored when
 * the connection has closed or moved on (the job is no longer the connection's current one).
 */
#include <mbedtls/sha256.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ace/b64url.h"
#include "broker/auth_int.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "tls/tls.h"

#define EXPORTER_LABEL "EXPORTER-ACE-MQTT-Sign-Challenge"

static const mqtt_str_t ace_method = {(const uint8_t *)"ace", 3};

enum { J_CONNECT_POP, J_CONNECT_TOKEN, J_CONNECT_RESPONSE, J_REAUTH_TOKEN, J_REAUTH_RESPONSE };

typedef struct ace_job {
    uv_work_t req;
    conn_t *c;   /* reference */
    policy_t *p; /* reference */
    int purpose;
    uint8_t *tok; /* NULL when the claims are already known */
    size_t tok_len;
    bool tok_known;
    ace_claims_t claims;
    uint8_t msg[2][32]; /* PoP candidates: two exporter variants, or RS_nonce || C_nonce */
    size_t msg_len;
    int n_msg, matched;
    uint8_t pop[ACE_POP_MAX_LEN];
    size_t pop_len;
    int rc;
    int64_t now;
    bool introspected;           /* asked the AS already (once per job) */
    ace_introspect_req_t *ireq;  /* introspection in flight */
    uint64_t asked_ns;           /* uv_hrtime() when it was asked, for the latency metric */
} ace_job_t;

int64_t ace_deadline(const policy_t *p, const ace_claims_t *cl, int64_t now)
{
    if (cl->has_exp)
        return cl->exp + p->clock_skew;
    if (cl->has_exi)
        return now + cl->exi;
    return 0;
}

/* ---- the checks (any thread) ------------------------------------------------------------------ */

static void pop_check(ace_job_t *j)
{
    if (j->rc != 0 || !j->n_msg)
        return;
    if (!j->claims.has_cnf || j->claims.cnf_is_kid_only) {
        j->rc = ACE_E_NO_CNF;
        return;
    }
    j->rc = ACE_E_BAD_SIGNATURE;
    for (int i = 0; i < j->n_msg && j->rc; i++)
        if (ace_pop_verify_key(&j->claims.cnf_key, j->msg[i], j->msg_len, j->pop, j->pop_len) ==
            0) {
            j->rc = 0;
            j->matched = i;
        }
}

static void job_run(ace_job_t *j)
{
    policy_t *p = j->p;
    j->rc = 0;
    if (j->tok && !j->tok_known) {
        /* Only the signature and the claims: the stateful rules (exi, cnonce) run in job_done on
         * every presentation, so that a cache hit cannot skip them. */
        j->rc = ace_token_verify(p->trust, j->tok, j->tok_len, j->now, &j->claims);
        metrics_count_token(0, j->rc);
        if (j->rc == 0) {
            int64_t until = ace_deadline(p, &j->claims, j->now);
            ace_token_cache_put(p->cache, &j->claims, j->now, until ? until : j->now + 3600);
        } else {
            ace_claims_free(&j->claims);
        }
    }
    pop_check(j);
}

static void job_free(ace_job_t *j)
{
    ace_claims_free(&j->claims);
    free(j->tok);
    conn_unref(j->c);
    policy_release(j->p);
    free(j);
}

static void job_done(ace_job_t *j);

static void work_cb(uv_work_t *req)
{
    job_run(req->data);
}

static void after_cb(uv_work_t *req, int status)
{
    ace_job_t *j = req->data;
    if (status == UV_ECANCELED) {
        job_free(j);
        return;
    }
    job_done(j);
}

/* Starts a check: synchronously when it is cheap (cached token, no ES256 PoP), else in the pool. */
static void job_start(conn_t *c, ace_job_t *j)
{
    auth_conn_t *a = c->authc;
    j->c = conn_ref(c);
    j->p = a->pol;
    atomic_fetch_add(&a->pol->refs, 1);
    j->now = auth_now();
    j->req.data = j;
    a->job = j;
    bool cheap = true;
    if (j->tok && !j->tok_known) {
        uint8_t d[32];
        mbedtls_sha256_ret(j->tok, j->tok_len, d, 0);
        j->tok_known = ace_token_cache_get(j->p->cache, d, j->now, &j->claims) == 1;
        cheap = j->tok_known;
    }
    if (cheap && j->n_msg && j->claims.has_cnf && j->claims.cnf_key.type == ACE_KEY_EC2_P256)
        cheap = false;
    if (!cheap && uv_queue_work(&c->w->loop, &j->req, work_cb, after_cb) == 0)
        return;
    job_run(j);
    job_done(j);
}

static ace_job_t *job_new(int purpose, const uint8_t *tok, size_t tok_len)
{
    ace_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->purpose = purpose;
    if (tok) {
        j->tok = malloc(tok_len ? tok_len : 1);
        if (!j->tok) {
            free(j);
            return NULL;
        }
        memcpy(j->tok, tok, tok_len);
        j->tok_len = tok_len;
    }
    return j;
}

/* ---- answers ---------------------------------------------------------------------------------- */

static size_t json_str(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            out[n++] = '\\';
        if (ch < 0x20)
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        else
            out[n++] = (char)ch;
    }
    out[n] = 0;
    return n;
}

/* The AS Request Creation Hints object (decision 4). With ace_cnonce it carries a fresh cnonce
 * that the broker remembers, and that a token must bring back (RFC 9200 §5.3). */
static int hint_json(conn_t *c, const policy_t *p, char *json, size_t cap)
{
    char as[512], aud[512], cn[64] = "";
    json_str(as, sizeof as, p->as_hint);
    json_str(aud, sizeof aud, p->audience ? p->audience : "");
    if (p->cnonce) {
        uint8_t n[AUTH_CNONCE_LEN];
        char b[48];
        if (auth_cnonce_issue(c->w->b->auth, n, auth_now()) == 0 &&
            ace_b64url_encode(n, sizeof n, b, sizeof b) >= 0)
            snprintf(cn, sizeof cn, ",\"cnonce\":\"%s\"", b);
        sodium_memzero(n, sizeof n);
    }
    int n = snprintf(json, cap, "{\"AS\":\"%s\"%s%s%s%s}", as, aud[0] ? ",\"audience\":\"" : "",
                     aud, aud[0] ? "\"" : "", cn);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* CONNACK 0x87 (3.1.1: rc3) with the hints, counted under `reason` (a fixed token), and close. */
static void refuse(conn_t *c, uint8_t rc3, const char *why, const char *reason)
{
    policy_t *p = c->authc ? c->authc->pol : NULL;
    bool v5 = c->version == MQTT_V5;
    mqtt_packet_t ack = {.type = MQTT_CONNACK};
    mqtt_props_t *pr = &ack.u.connack.props;
    ack.u.connack.rc = v5 ? MQTT_RC_NOT_AUTHORIZED : rc3;
    char json[1200];
    mqtt_user_prop_t up;
    int n = v5 && p && p->as_hint ? hint_json(c, p, json, sizeof json) : -1;
    if (n > 0) {
        up.name = (mqtt_str_t){(const uint8_t *)"ace_as_hint", 11};
        up.value = (mqtt_str_t){(const uint8_t *)json, (uint16_t)n};
        pr->present |= MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY);
        pr->n_user = 1;
        pr->user = &up;
    }
    if (v5 && c->problem_info && why) {
        pr->present |= MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
        pr->reason_string = (mqtt_str_t){(const uint8_t *)why, (uint16_t)strlen(why)};
    }
    conn_send(c, &ack);
    metrics_count_auth(c->w->b, 0, reason);
    log_notice("connect_refused", "client=%s peer=%s rc=0x%02x reason=\"%s\"", conn_id(c),
               stream_peer(c->stream), ack.u.connack.rc, why);
    conn_close(c, -1, why);
}

void ace_refuse_hint(conn_t *c, uint8_t rc3, const char *why)
{
    refuse(c, rc3, why, "ace_refused");
}

static void send_auth(conn_t *c, uint8_t rc, const uint8_t *data, size_t len)
{
    mqtt_packet_t p = {.type = MQTT_AUTH};
    p.u.reason.rc = rc;
    p.u.reason.props.present = MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD);
    p.u.reason.props.auth_method = ace_method;
    if (data) {
        p.u.reason.props.present |= MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA);
        p.u.reason.props.auth_data = (mqtt_str_t){data, (uint16_t)len};
    }
    conn_send(c, &p);
}

/* The CONNECT is kept re-encoded (without its token) until the exchange ends. */
static int save_connect(conn_t *c, const mqtt_connect_t *k)
{
    auth_conn_t *a = c->authc;
    mqtt_packet_t p = {.type = MQTT_CONNECT};
    p.u.connect = *k;
    p.u.connect.props.present &=
        ~(MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD) | MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA));
    p.u.connect.has_username = p.u.connect.has_password = false;
    size_t n = proto_encoded_size(&p, c->version);
    free(a->connect);
    a->connect = n ? malloc(n) : NULL;
    if (!a->connect)
        return -1;
    a->connect_len = proto_encode(&p, c->version, a->connect, n);
    return a->connect_len ? 0 : -1;
}

static void accept_saved(conn_t *c)
{
    auth_conn_t *a = c->authc;
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, 0, false, 0}; /* limits were checked on arrival */
    mqtt_packet_t p;
    const char *why = NULL;
    if (proto_decode(&ctx, a->connect, a->connect_len, &p, &why) != MQTT_RC_SUCCESS) {
        ace_refuse_hint(c, MQTT311_CONNACK_UNAVAILABLE, "internal error restoring CONNECT");
        return;
    }
    a->phase = PH_IDLE;
    connect_accept(c, &p.u.connect, c->version == MQTT_V5 ? &ace_method : NULL);
    proto_packet_free(&p);
    free(a->connect);
    a->connect = NULL;
}

/* A token without cnf is a bearer token: accepted only where the listener says ace_bearer, and only
 * a JWT (what OAuth servers issue) or a token the AS vouched for by introspection (glewlwyd's
 * JWTs when the broker has no key for them). */
static bool bearer_ok(conn_t *c, const ace_claims_t *cl, bool introspected)
{
    const acemq_listener_t *l = conn_listener(c);
    return !cl->has_cnf && l && l->ace_bearer && (cl->is_jwt || introspected);
}

/* The token (and its PoP, where there was one) is good: it becomes the connection's grant. */
static int take_claims(conn_t *c, const ace_claims_t *cl, bool introspected)
{
    grant_t *g = NULL;
    if (grant_from_claims(c->authc->pol, cl, bearer_ok(c, cl, introspected), &g) < 0)
        return -1;
    authc_set_grant(c, g);
    c->authc->kind = ADMIT_ACE;
    c->anonymous = false;
    conn_set_username(c, cl->sub, strlen(cl->sub));
    return 0;
}

static void pending_clear(auth_conn_t *a)
{
    if (a->pending) {
        ace_claims_free(a->pending);
        free(a->pending);
        a->pending = NULL;
    }
}

static void challenge(conn_t *c, const ace_claims_t *cl, int phase)
{
    auth_conn_t *a = c->authc;
    pending_clear(a);
    a->pending = calloc(1, sizeof *a->pending);
    if (!a->pending || ace_claims_copy(a->pending, cl) < 0) {
        pending_clear(a);
        conn_close(c, MQTT_RC_SERVER_BUSY, "out of memory");
        return;
    }
    ace_pop_nonce(a->rs_nonce);
    a->phase = (uint8_t)phase;
    send_auth(c, MQTT_RC_CONTINUE_AUTHENTICATION, a->rs_nonce, sizeof a->rs_nonce);
}

/* A fixed label for the metrics' failure reasons (a handful, so they keep their own series). */
static const char *failure_reason(int rc)
{
    switch (rc) {
    case ACE_E_EXPIRED:
    case ACE_E_NOT_YET_VALID:
        return "token_expired";
    case ACE_E_BAD_SIGNATURE:
        return "token_or_pop_bad";
    case ACE_E_REPLAY:
        return "token_replay";
    case ACE_E_NONCE:
        return "token_cnonce";
    case ACE_INTROSPECT_E_INACTIVE:
        return "introspection_inactive";
    case ACE_INTROSPECT_E_CONNECT:
    case ACE_INTROSPECT_E_TIMEOUT:
    case ACE_INTROSPECT_E_HTTP:
    case ACE_INTROSPECT_E_RESPONSE:
    case ACE_INTROSPECT_E_TLS:
        return "introspection_failed";
    default:
        return "token_invalid";
    }
}

static void connect_failed(conn_t *c, int rc)
{
    log_info("ace_token_refused", "client=%s peer=%s error=\"%s\"", conn_id(c),
             stream_peer(c->stream), ace_introspect_strerror(rc));
    refuse(c, MQTT311_CONNACK_NOT_AUTHORIZED,
           rc == ACE_E_BAD_SIGNATURE ? "token or proof of possession not valid"
                                     : ace_introspect_strerror(rc),
           failure_reason(rc));
}

static void reauth_done(conn_t *c, ace_job_t *j)
{
    auth_conn_t *a = c->authc;
    if (j->rc == 0 && j->purpose == J_REAUTH_TOKEN && j->claims.has_cnf) {
        challenge(c, &j->claims, PH_REAUTH_CHALLENGE);
        return;
    }
    if (j->rc == 0 && j->purpose == J_REAUTH_TOKEN && !bearer_ok(c, &j->claims, j->introspected))
        j->rc = ACE_E_NO_CNF;
    const ace_claims_t *src = j->purpose == J_REAUTH_TOKEN ? &j->claims : a->pending;
    if (j->rc == 0 && (!src || take_claims(c, src, j->introspected) < 0))
        j->rc = ACE_E_CLAIM;
    a->phase = PH_IDLE;
    pending_clear(a);
    if (j->rc < 0) {
        log_notice("ace_reauth_failed", "client=%s peer=%s error=\"%s\"", conn_id(c),
                   stream_peer(c->stream), ace_introspect_strerror(j->rc));
        conn_close(c, MQTT_RC_NOT_AUTHORIZED, "re-authentication failed");
        return;
    }
    auth_install(c); /* the new token replaces the old one, and its deadline the old timer */
    send_auth(c, MQTT_RC_SUCCESS, NULL, 0);
    log_info("ace_reauth", "client=%s peer=%s", conn_id(c), stream_peer(c->stream));
}

static void on_introspected(void *arg, int status, const ace_claims_t *cl)
{
    ace_job_t *j = arg;
    j->ireq = NULL;
    j->rc = status;
    metrics_observe_introspection((double)(uv_hrtime() - j->asked_ns) / 1e9, status);
    metrics_count_token(1, status);
    if (status == 0 && ace_claims_copy(&j->claims, cl) < 0)
        j->rc = ACE_E_NOMEM;
    if (status != 0)
        log_info("ace_introspection", "client=%s result=\"%s\"", conn_id(j->c),
                 ace_introspect_strerror(status));
    pop_check(j); /* an EC2 PoP costs ~1 ms here; reference tokens are rare enough */
    job_done(j);
}

/* A token the trust store cannot verify (not self-contained, or from an issuer we only know
 * through the AS) goes to introspection, when it is configured. */
static bool maybe_introspect(ace_job_t *j)
{
    if (j->rc == 0 || !j->tok || j->introspected || !j->p->introspect ||
        (j->rc != ACE_E_MALFORMED && j->rc != ACE_E_UNKNOWN_ISSUER && j->rc != ACE_E_TOO_LARGE))
        return false;
    j->introspected = true;
    j->asked_ns = uv_hrtime();
    ace_claims_free(&j->claims);
    return ace_introspect_token(j->p->introspect, &j->c->w->loop, j->tok, j->tok_len,
                                on_introspected, j, &j->ireq) == 0;
}

static void job_done(ace_job_t *j)
{
    conn_t *c = j->c;
    auth_conn_t *a = c->authc;
    if (c->state == CS_CLOSING || !a || a->job != j) { /* the connection went or moved on */
        job_free(j);
        return;
    }
    if (maybe_introspect(j))
        return; /* the AS answers later, on this loop */
    a->job = NULL;
    if (j->rc == 0 && j->tok) /* a token presented now, its signature checked or cached */
        j->rc = auth_admit_token(j->p, &j->claims, auth_now());
    if (j->purpose == J_REAUTH_TOKEN || j->purpose == J_REAUTH_RESPONSE) {
        reauth_done(c, j);
    } else if (j->rc < 0) {
        connect_failed(c, j->rc);
    } else if (j->purpose == J_CONNECT_TOKEN && j->claims.has_cnf && c->version == MQTT_V5) {
        challenge(c, &j->claims, PH_CHALLENGE);
    } else if (j->purpose == J_CONNECT_TOKEN && !bearer_ok(c, &j->claims, j->introspected)) {
        connect_failed(c, ACE_E_NO_CNF);
    } else if ((j->purpose == J_CONNECT_RESPONSE && !a->pending) ||
               take_claims(c, j->purpose == J_CONNECT_RESPONSE ? a->pending : &j->claims,
                           j->introspected) < 0) {
        connect_failed(c, ACE_E_CLAIM);
    } else {
        if (j->purpose == J_CONNECT_POP) {
            a->exporter_used = true;
            log_debug("ace_pop", "client=%s exporter_context=%s", conn_id(c),
                      j->matched == 0 ? "zero-length" : "none");
        }
        a->pop_done = j->purpose != J_CONNECT_TOKEN;
        pending_clear(a);
        accept_saved(c);
    }
    job_free(j);
}

/* ---- CONNECT ---------------------------------------------------------------------------------- */

/* Both TLS 1.2 exporter variants (decision 1), after the RFC 9431 preconditions. */
static const char *exporter_values(conn_t *c, ace_job_t *j)
{
    tls_info_t info;
    if (!c->stream || !stream_is_tls(c->stream) || tls_session_info(c->stream, &info) < 0)
        return "proof of possession over the TLS exporter needs TLS";
    if (!info.ems)
        return "TLS session without Extended Master Secret";
    if (info.resumed)
        return "exporter proof of possession refused on a resumed TLS session";
    if (c->authc->exporter_used)
        return "exporter proof of possession already used in this TLS session";
    const char *l = EXPORTER_LABEL;
    if (tls_exporter(c->stream, l, (const uint8_t *)"", 0, 1, j->msg[0], 32) < 0 ||
        tls_exporter(c->stream, l, NULL, 0, 0, j->msg[1], 32) < 0)
        return "TLS exporter unavailable";
    j->msg_len = 32;
    j->n_msg = 2;
    return NULL;
}

/* Token plus PoP over the exporter value (Form A, and the 3.1.1 password). */
static auth_result_t start_exporter_pop(conn_t *c, const uint8_t *tok, size_t tl,
                                        const uint8_t *pop, size_t pl)
{
    auth_result_t cont = {.verdict = AUTH_CONTINUE};
    ace_job_t *j = job_new(J_CONNECT_POP, tok, tl);
    if (!j) {
        ace_refuse_hint(c, MQTT311_CONNACK_UNAVAILABLE, "out of memory");
        return cont;
    }
    const char *why = pl > ACE_POP_MAX_LEN ? "proof of possession too long" : exporter_values(c, j);
    if (why) {
        free(j->tok);
        free(j);
        ace_refuse_hint(c, MQTT311_CONNACK_NOT_AUTHORIZED, why);
        return cont;
    }
    memcpy(j->pop, pop, pl);
    j->pop_len = pl;
    c->state = CS_AUTH;
    job_start(c, j);
    return cont;
}

static auth_result_t start_token(conn_t *c, int purpose, const uint8_t *tok, size_t tl)
{
    auth_result_t cont = {.verdict = AUTH_CONTINUE};
    ace_job_t *j = job_new(purpose, tok, tl);
    if (!j) {
        conn_close(c, MQTT_RC_SERVER_BUSY, "out of memory");
        return cont;
    }
    if (c->state == CS_NEW)
        c->state = CS_AUTH;
    job_start(c, j);
    return cont;
}

bool ace_username_form(const mqtt_str_t *u)
{
    if (u->len < 4 || memcmp(u->p, "ace", 3) != 0)
        return false;
    for (size_t i = 3; i < u->len; i++) {
        uint8_t ch = u->p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

static auth_result_t connect_311(conn_t *c, const mqtt_connect_t *k)
{
    auth_result_t cont = {.verdict = AUTH_CONTINUE};
    const char *b64 = (const char *)k->username.p + 3;
    size_t blen = k->username.len - 3u;
    size_t cap = ACE_B64URL_DEC_LEN(blen), tl = 0;
    uint8_t *tok = malloc(cap);
    if (!tok || ace_b64url_decode(b64, blen, tok, cap, &tl) < 0) {
        free(tok);
        auth_result_t r = {.verdict = AUTH_DENY, .rc3 = MQTT311_CONNACK_BAD_CREDENTIALS,
                           .rc5 = MQTT_RC_BAD_USER_OR_PASSWORD,
                           .why = "user name is not ace + base64url(token)",
                           .reason = "bad_credentials"};
        return r;
    }
    if (!k->has_password || k->password.len == 0) {
        const acemq_listener_t *l = conn_listener(c);
        if (l && l->ace_bearer) /* bearer: no PoP to check */
            cont = start_token(c, J_CONNECT_TOKEN, tok, tl);
        else
            ace_refuse_hint(c, MQTT311_CONNACK_NOT_AUTHORIZED, "no proof of possession");
    } else {
        cont = start_exporter_pop(c, tok, tl, k->password.p, k->password.len);
    }
    free(tok);
    return cont;
}

static auth_result_t connect_stored(conn_t *c)
{
    auth_result_t cont = {.verdict = AUTH_CONTINUE};
    tls_info_t info;
    ace_claims_t cl;
    if (c->stream && stream_is_tls(c->stream) && tls_session_info(c->stream, &info) == 0 &&
        info.psk_identity &&
        authz_store_find_identity(auth_store(c->w->b->auth), info.psk_identity,
                                  info.psk_identity_len, auth_now(), &cl) == 0) {
        c->state = CS_AUTH;
        challenge(c, &cl, PH_CHALLENGE);
        ace_claims_free(&cl);
        return cont;
    }
    ace_refuse_hint(c, MQTT311_CONNACK_NOT_AUTHORIZED, "no token");
    return cont;
}

auth_result_t ace_connect(conn_t *c, const mqtt_connect_t *k, policy_t *p)
{
    auth_result_t cont = {.verdict = AUTH_CONTINUE};
    auth_result_t bad = {.verdict = AUTH_DENY, .rc5 = MQTT_RC_BAD_AUTH_METHOD,
                         .rc3 = MQTT311_CONNACK_BAD_CREDENTIALS,
                         .why = "authentication method not supported",
                         .reason = "bad_auth_method"};
    conn_set_username(c, NULL, 0); /* never a token in the logs */
    if (!p->trust)
        return bad;
    if (save_connect(c, k) < 0) {
        ace_refuse_hint(c, MQTT311_CONNACK_UNAVAILABLE, "out of memory");
        return cont;
    }
    if (c->version != MQTT_V5)
        return connect_311(c, k);
    const mqtt_str_t *m = &k->props.auth_method;
    if (m->len != 3 || memcmp(m->p, "ace", 3) != 0)
        return bad;
    c->authc->ace_method = true;
    if (!(k->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA)))
        return connect_stored(c);
    const mqtt_str_t *d = &k->props.auth_data;
    size_t tl = d->len >= 2 ? ((size_t)d->p[0] << 8 | d->p[1]) : 0;
    if (d->len < 2 || tl == 0 || 2 + tl > d->len) {
        log_info("ace_token_refused", "client=%s error=\"authentication data is not [u16 len]"
                 "[token][PoP]\"", conn_id(c));
        ace_refuse_hint(c, MQTT311_CONNACK_NOT_AUTHORIZED, "malformed authentication data");
        return cont;
    }
    if (2 + tl == d->len)
        return start_token(c, J_CONNECT_TOKEN, d->p + 2, tl);
    return start_exporter_pop(c, d->p + 2, tl, d->p + 2 + tl, d->len - 2 - tl);
}

/* ---- AUTH ------------------------------------------------------------------------------------- */

static int auth_protocol_error(conn_t *c, const char *why)
{
    return conn_protocol_error(c, MQTT_RC_PROTOCOL_ERROR, why);
}

/* AUTH 0x18 answering our nonce: C_nonce(8) || PoP over RS_nonce || C_nonce. */
static int response(conn_t *c, const mqtt_str_t *d, int purpose)
{
    auth_conn_t *a = c->authc;
    if (d->len <= ACE_POP_NONCE_LEN || d->len - ACE_POP_NONCE_LEN > ACE_POP_MAX_LEN) {
        if (c->state == CS_AUTH) {
            ace_refuse_hint(c, MQTT311_CONNACK_NOT_AUTHORIZED, "malformed challenge response");
        } else {
            conn_close(c, MQTT_RC_NOT_AUTHORIZED, "malformed challenge response");
        }
        return -1;
    }
    ace_job_t *j = job_new(purpose, NULL, 0);
    if (!j || !a->pending || ace_claims_copy(&j->claims, a->pending) < 0) {
        free(j);
        conn_close(c, MQTT_RC_SERVER_BUSY, "out of memory");
        return -1;
    }
    memcpy(j->msg[0], a->rs_nonce, ACE_POP_NONCE_LEN);
    memcpy(j->msg[0] + ACE_POP_NONCE_LEN, d->p, ACE_POP_NONCE_LEN);
    j->msg_len = 2 * ACE_POP_NONCE_LEN;
    j->n_msg = 1;
    j->pop_len = d->len - ACE_POP_NONCE_LEN;
    memcpy(j->pop, d->p + ACE_POP_NONCE_LEN, j->pop_len);
    a->phase = purpose == J_CONNECT_RESPONSE ? PH_CHECKING : PH_REAUTH_CHECKING;
    sodium_memzero(a->rs_nonce, sizeof a->rs_nonce); /* one attempt per nonce */
    job_start(c, j);
    return c->state == CS_CLOSING ? -1 : 0;
}

int ace_handle_auth(conn_t *c, mqtt_packet_t *pkt)
{
    auth_conn_t *a = c->authc;
    const mqtt_props_t *pr = &pkt->u.reason.props;
    uint8_t rc = pkt->u.reason.rc;
    if (!(pr->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)) || pr->auth_method.len != 3 ||
        memcmp(pr->auth_method.p, "ace", 3) != 0)
        return auth_protocol_error(c, "AUTH with a different authentication method");
    const mqtt_str_t none = {NULL, 0};
    const mqtt_str_t *d = (pr->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA)) ? &pr->auth_data : &none;
    if (c->state == CS_AUTH) {
        if (a->phase != PH_CHALLENGE || rc != MQTT_RC_CONTINUE_AUTHENTICATION)
            return auth_protocol_error(c, "unexpected AUTH during authentication");
        return response(c, d, J_CONNECT_RESPONSE);
    }
    if (rc == MQTT_RC_CONTINUE_AUTHENTICATION && a->phase == PH_REAUTH_CHALLENGE)
        return response(c, d, J_REAUTH_RESPONSE);
    if (rc != MQTT_RC_REAUTHENTICATE || a->phase != PH_IDLE)
        return auth_protocol_error(c, "unexpected AUTH");
    if (!a->pop_done) { /* RFC 9431 §2.2.4: only after a token with a good PoP */
        conn_close(c, MQTT_RC_NOT_AUTHORIZED, "re-authentication without an earlier token");
        return -1;
    }
    size_t tl = d->len >= 2 ? ((size_t)d->p[0] << 8 | d->p[1]) : 0;
    if (d->len < 2 || tl == 0 || 2 + tl != d->len) {
        conn_close(c, MQTT_RC_NOT_AUTHORIZED, "re-authentication data is not [u16 len][token]");
        return -1;
    }
    a->phase = PH_REAUTH_CHECKING;
    start_token(c, J_REAUTH_TOKEN, d->p + 2, tl);
    return c->state == CS_CLOSING ? -1 : 0;
}

/* ---- expiry ----------------------------------------------------------------------------------- */

static void on_expired(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->state != CS_CONNECTED)
        return;
    log_info("ace_token_expired", "client=%s peer=%s", conn_id(c),
             stream_peer(c->stream));
    /* MQTT 5: DISCONNECT 0x87; 3.1.1: close. The will (accepted at CONNECT) still goes out. */
    conn_close(c, MQTT_RC_NOT_AUTHORIZED, "token expired");
}

void ace_timer_arm(conn_t *c, int64_t deadline)
{
    auth_conn_t *a = c->authc;
    if (!deadline) {
        if (a->timer)
            uv_timer_stop(a->timer);
        return;
    }
    if (!a->timer) {
        a->timer = malloc(sizeof *a->timer);
        if (!a->timer || uv_timer_init(&c->w->loop, a->timer) < 0) {
            free(a->timer);
            a->timer = NULL;
            return;
        }
        a->timer->data = c; /* closed in ace_conn_cleanup, before the connection goes */
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t ms = deadline * 1000 - now_ms;
    uv_timer_start(a->timer, on_expired, ms > 0 ? (uint64_t)ms : 0, 0);
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

void ace_conn_cleanup(auth_conn_t *a)
{
    if (a->timer)
        uv_close((uv_handle_t *)a->timer, timer_closed);
    a->timer = NULL;
    if (a->job && a->job->ireq) { /* waiting for the AS: its callback will not come */
        ace_introspect_cancel(a->job->ireq);
        job_free(a->job);
    } else if (a->job) {
        uv_cancel((uv_req_t *)&a->job->req); /* else its completion finds no authc and drops it */
    }
    a->job = NULL;
    pending_clear(a);
    free(a->connect);
    a->connect = NULL;
}
