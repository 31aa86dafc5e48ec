/*
 * broker/auth.c: the access decisions behind auth.h (the policy they read: auth_policy.c).
 *
 * Who a client is (anonymous, a password_file user, a certificate identity, an ACE token) becomes a
 * grant_t at CONNECT; every later question (PUBLISH, SUBSCRIBE, forwarding) is answered from that
 * grant. ACE tokens are handled in ace_connect.c, the authz-info topic in ace_authz_info.c.
 *
 * Without ace_issuer, password_file and acl_file the answers are those of an open broker, as before:
 * anonymous access follows the listener's allow_anonymous and, as in Mosquitto 2, a user name sent
 * when no password file is configured gains nothing. Once an ace_issuer is configured, ACE is
 * accepted on every listener; clients without a token (MQTT:none) then reach only authz-info and the
 * ace_public_topic filters, and denials follow RFC 9431's table (DISCONNECT 0x87 for a QoS 0
 * PUBLISH, closing 3.1.1 connections).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth_int.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "tls/tls.h"

/* ---- grants ----------------------------------------------------------------------------------- */

grant_t *grant_new(policy_t *p, int kind)
{
    grant_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    atomic_init(&g->refs, 1);
    g->kind = kind;
    g->pol = p;
    atomic_fetch_add(&p->refs, 1);
    g->ace_rules = p->trust != NULL;
    return g;
}

grant_t *grant_ref(grant_t *g)
{
    if (g)
        atomic_fetch_add(&g->refs, 1);
    return g;
}

void grant_unref(grant_t *g)
{
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    ace_scope_free(&g->scope);
    free(g->username);
    free(g->client_id);
    policy_release(g->pol);
    free(g);
}

/* Bearer tokens carry OAuth scope names; ace_scope_map turns each known name into filters. */
static int scope_from_map(const policy_t *p, const char *text, size_t len, ace_scope_t *out)
{
    memset(out, 0, sizeof *out);
    out->e = calloc(p->n_map + 1, sizeof *out->e);
    if (!out->e)
        return ACE_E_NOMEM;
    for (size_t i = 0; i < len;) {
        while (i < len && text[i] == ' ')
            i++;
        size_t j = i;
        while (j < len && text[j] != ' ')
            j++;
        for (size_t m = 0; m < p->n_map && j > i; m++) {
            const perm_entry_t *pe = &p->map[m].e;
            if (strlen(p->map[m].name) != j - i || memcmp(p->map[m].name, text + i, j - i) != 0 ||
                !ace_filter_valid(pe->filter, pe->len)) /* scope.h: entries are valid filters */
                continue;
            /* one entry per filter (scope.h), which also keeps n within the n_map allocated when
             * the token names a scope more than once */
            size_t k = 0;
            while (k < out->n && strcmp(out->e[k].filter, pe->filter) != 0)
                k++;
            ace_scope_entry_t *e = &out->e[k];
            if (k == out->n) {
                if (!(e->filter = strdup(pe->filter)))
                    return ACE_E_NOMEM;
                e->len = pe->len;
                out->n++;
            }
            e->perms |= pe->perm;
        }
        i = j;
    }
    return 0;
}

int grant_from_claims(policy_t *p, const ace_claims_t *cl, bool bearer, grant_t **out)
{
    grant_t *g = grant_new(p, GRANT_ACE);
    if (!g)
        return ACE_E_NOMEM;
    int rc;
    if (bearer && p->n_map && cl->scope_kind == ACE_SCOPE_TSTR && cl->scope_len &&
        cl->scope[0] != '[')
        rc = scope_from_map(p, (const char *)cl->scope, cl->scope_len, &g->scope);
    else
        rc = ace_scope_parse_claim(cl->scope_kind, cl->scope, cl->scope_len, &g->scope);
    if (rc == 0 && cl->sub[0] && !(g->username = strdup(cl->sub)))
        rc = ACE_E_NOMEM;
    if (rc < 0) {
        grant_unref(g);
        return rc;
    }
    g->deadline = ace_deadline(p, cl, auth_now());
    *out = g;
    return 0;
}

/* Whether the grant's deadline has passed, asked on every PUBLISH and every forward. The coarse
 * clock is a third of the cost of the precise one and lags it by at most a kernel tick, so while
 * it is more than DEADLINE_NEAR_S away from the deadline the answer is "not yet" for certain; only
 * the last seconds before the deadline pay for the precise clock, which decides to the instant. */
enum { DEADLINE_NEAR_S = 2 };

static bool grant_expired(const grant_t *g)
{
    if (!g->deadline)
        return false;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0 &&
        (int64_t)ts.tv_sec + DEADLINE_NEAR_S < g->deadline)
        return false;
    return auth_now() >= g->deadline;
}

/* The one decision: may grant g do perm on a topic name (filter=false) or a filter? */
static bool grant_allows(const grant_t *g, unsigned perm, const char *t, size_t len, bool filter)
{
    if (!g)
        return true;
    if (grant_expired(g))
        return false;
    if (g->kind == GRANT_ACE) {
        /* the token's scope first: that is where its clients publish, public topics the exception */
        if (filter ? ace_scope_allows_filter(&g->scope, perm, t, len)
                   : ace_scope_allows_topic(&g->scope, perm, t, len))
            return true;
        return g->ace_rules && policy_public(g->pol, perm, t, len, filter);
    }
    if (g->ace_rules && policy_public(g->pol, perm, t, len, filter))
        return true;
    if (g->acl) {
        if (filter)
            return ace_acl_check_subscribe(g->acl, g->username, g->client_id, t, len);
        return ace_acl_check(g->acl, g->username, g->client_id,
                             perm == ACE_PERM_PUB ? ACE_ACL_WRITE : ACE_ACL_READ, t, len);
    }
    /* MQTT:none under ACE reaches public topics only; elsewhere an open broker */
    return !(g->ace_rules && g->kind == GRANT_ANON);
}

/* ---- connections and sessions ----------------------------------------------------------------- */

auth_conn_t *authc_get(conn_t *c)
{
    if (!c->authc) {
        c->authc = calloc(1, sizeof(auth_conn_t));
        if (c->authc)
            c->authc->pol = policy_acquire(c->w->b->auth);
    }
    return c->authc;
}

void authc_set_grant(conn_t *c, grant_t *g)
{
    auth_conn_t *a = c->authc;
    grant_unref(a->grant);
    a->grant = g;
    if (g && !g->client_id && c->client_id)
        g->client_id = strdup(c->client_id);
}

void auth_install(conn_t *c)
{
    auth_conn_t *a = c->authc;
    if (!a || !c->session)
        return;
    grant_t *g = a->grant;
    session_t *s = c->session;
    session_lock(s);
    grant_t *old = s->grant;
    s->grant = grant_ref(g);
    session_unlock(s);
    grant_unref(old);
    ace_timer_arm(c, g ? g->deadline : 0);
}

void auth_connected(conn_t *c)
{
    auth_conn_t *a = c->authc;
    if (!a)
        return;
    /* the grant learns the final client id (assigned ids, %c in ACL patterns) */
    if (a->grant && !a->grant->client_id)
        a->grant->client_id = strdup(conn_id(c));
    auth_install(c);
    static const char *const kinds[] = {"none", "anonymous", "password", "ace", "certificate"};
    metrics_count_auth(c->w->b, 1, kinds[a->kind]);
    /* A connection with nothing left to check (no grant, no ACE: an open listener) keeps no
     * authentication state: idle connections are the common case and each byte counts. */
    if (!a->grant && !a->pol->trust && !a->ace_method && !a->job && !a->timer)
        auth_conn_closed(c);
}

void auth_conn_closed(conn_t *c)
{
    auth_conn_t *a = c->authc;
    if (!a)
        return;
    c->authc = NULL;
    ace_conn_cleanup(a); /* the session keeps its grant: offline deliveries are still checked */
    grant_unref(a->grant);
    policy_release(a->pol);
    free(a);
}

void auth_session_free(session_t *s)
{
    grant_unref(s->grant);
    s->grant = NULL;
}

/* ---- CONNECT without a token ------------------------------------------------------------------ */

static auth_result_t deny(uint8_t rc5, uint8_t rc3, const char *reason, const char *why)
{
    auth_result_t r = {.verdict = AUTH_DENY, .rc5 = rc5, .rc3 = rc3, .why = why, .reason = reason};
    return r;
}

static auth_result_t allow_as(conn_t *c, int kind, int admitted, const char *user,
                              const ace_acl_t *acl)
{
    auth_result_t ok = {.verdict = AUTH_ALLOW};
    auth_conn_t *a = c->authc;
    a->kind = (uint8_t)admitted;
    c->anonymous = kind == GRANT_ANON;
    if (!acl && !a->pol->trust) {
        /* nothing to check later: no grant, which allows everything (grant_allows) */
        authc_set_grant(c, NULL);
        return ok;
    }
    grant_t *g = grant_new(a->pol, kind);
    if (!g || (user && !(g->username = strdup(user)))) {
        grant_unref(g);
        return deny(MQTT_RC_SERVER_UNAVAILABLE, MQTT311_CONNACK_UNAVAILABLE, "server_unavailable",
                    "out of memory");
    }
    g->acl = acl;
    authc_set_grant(c, g);
    return ok;
}

static auth_result_t password_connect(conn_t *c, const mqtt_connect_t *k, const ace_pwfile_t *pw,
                                      const ace_acl_t *acl)
{
    char user[256];
    if (k->username.len >= sizeof user)
        return deny(MQTT_RC_BAD_USER_OR_PASSWORD, MQTT311_CONNACK_BAD_CREDENTIALS,
                    "bad_credentials", "user name too long");
    memcpy(user, k->username.p, k->username.len);
    user[k->username.len] = 0;
    if (!k->has_password ||
        ace_pwfile_check(pw, user, k->password.p, k->password.len) != 0)
        return deny(MQTT_RC_BAD_USER_OR_PASSWORD, MQTT311_CONNACK_NOT_AUTHORIZED,
                    "bad_credentials", "bad user name or password");
    return allow_as(c, GRANT_USER, ADMIT_PASSWORD, user, acl);
}

/* A TLS-PSK connection whose identity names a token uploaded to authz-info (RFC 9202). */
static bool psk_token(conn_t *c, ace_claims_t *out)
{
    tls_info_t info;
    if (!c->stream || !stream_is_tls(c->stream) || tls_session_info(c->stream, &info) < 0 ||
        !info.psk_identity)
        return false;
    return authz_store_find_identity(auth_store(c->w->b->auth), info.psk_identity,
                                     info.psk_identity_len, auth_now(), out) == 0;
}

static auth_result_t psk_connect(conn_t *c, ace_claims_t *cl)
{
    grant_t *g = NULL;
    int rc = grant_from_claims(c->authc->pol, cl, false, &g);
    ace_claims_free(cl);
    if (rc < 0)
        return deny(MQTT_RC_NOT_AUTHORIZED, MQTT311_CONNACK_NOT_AUTHORIZED, "token_invalid",
                    "stored token's scope not understood");
    authc_set_grant(c, g);
    c->authc->kind = ADMIT_ACE;
    c->authc->pop_done = true; /* the PSK handshake proved the key */
    c->anonymous = false;
    conn_set_username(c, g->username, g->username ? strlen(g->username) : 0);
    auth_result_t ok = {.verdict = AUTH_ALLOW};
    return ok;
}

auth_result_t auth_connect(conn_t *c, const mqtt_connect_t *k)
{
    auth_conn_t *a = authc_get(c);
    if (!a)
        return deny(MQTT_RC_SERVER_UNAVAILABLE, MQTT311_CONNACK_UNAVAILABLE, "server_unavailable",
                    "out of memory");
    policy_t *p = a->pol;
    const acemq_listener_t *l = conn_listener(c);
    bool has_method = c->version == MQTT_V5 && (k->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD));
    if (has_method || (p->trust && c->version == MQTT_V311 && k->has_username &&
                       k->username.len >= 3 && memcmp(k->username.p, "ace", 3) == 0))
        return ace_connect(c, k, p);
    if (p->trust) {
        ace_claims_t cl;
        if (!k->has_username && psk_token(c, &cl))
            return psk_connect(c, &cl);
    }
    const ace_pwfile_t *pw = policy_pwfile(p, l ? l->password_file : NULL);
    const ace_acl_t *acl = policy_acl(p, l ? l->acl_file : NULL);
    if (k->has_username && pw)
        return password_connect(c, k, pw, acl);
    if (k->has_username && p->trust && c->version != MQTT_V5)
        return deny(MQTT_RC_BAD_USER_OR_PASSWORD, MQTT311_CONNACK_BAD_CREDENTIALS,
                    "bad_credentials", "user name is not ace + base64url(token)");
    if (l && l->use_identity_as_username && c->stream && stream_is_tls(c->stream)) {
        /* the client certificate, already verified by the TLS layer, names the user */
        tls_info_t info;
        if (tls_session_info(c->stream, &info) < 0 || !info.cert_identity)
            return deny(MQTT_RC_NOT_AUTHORIZED, MQTT311_CONNACK_NOT_AUTHORIZED,
                        "certificate_refused",
                        "use_identity_as_username: no client certificate identity");
        conn_set_username(c, info.cert_identity, strlen(info.cert_identity));
        auth_result_t r = allow_as(c, GRANT_USER, ADMIT_CERTIFICATE, info.cert_identity, acl);
        c->anonymous = false;
        return r;
    }
    if (!l || l->allow_anonymous) {
        conn_set_username(c, NULL, 0);
        return allow_as(c, GRANT_ANON, ADMIT_ANONYMOUS, NULL, acl);
    }
    if (p->trust && c->version == MQTT_V5) {
        ace_refuse_hint(c, MQTT311_CONNACK_NOT_AUTHORIZED, "no token and anonymous access is off");
        auth_result_t r = {.verdict = AUTH_CONTINUE};
        return r;
    }
    return deny(MQTT_RC_NOT_AUTHORIZED, MQTT311_CONNACK_NOT_AUTHORIZED, "anonymous_refused",
                "anonymous access is not allowed on this listener");
}

/* ---- operations ------------------------------------------------------------------------------- */

/* A refusal under RFC 9431's table: a QoS 0 PUBLISH gets DISCONNECT 0x87, and 3.1.1 clients, who
 * cannot be told, are disconnected. */
static int ace_deny_publish(conn_t *c, uint8_t qos, const char *why)
{
    if (qos > 0 && c->version == MQTT_V5)
        return MQTT_RC_NOT_AUTHORIZED;
    log_notice("publish_denied", "client=%s peer=%s reason=\"%s\"", conn_id(c),
               stream_peer(c->stream), why);
    conn_close(c, MQTT_RC_NOT_AUTHORIZED, why);
    return -1;
}

int auth_publish(conn_t *c, const char *topic, size_t len, uint8_t qos)
{
    const grant_t *g = c->authc ? c->authc->grant : NULL;
    if (!g)
        return 0;
    if (grant_allows(g, ACE_PERM_PUB, topic, len, false))
        return 0;
    bool expired = grant_expired(g);
    if (g->ace_rules && g->kind != GRANT_USER)
        return ace_deny_publish(c, qos, expired ? "token expired" : "publish not authorized");
    log_debug("publish_denied", "client=%s topic_len=%zu", conn_id(c), len);
    return MQTT_RC_NOT_AUTHORIZED;
}

int auth_subscribe(conn_t *c, const char *filter, size_t len)
{
    if (auth_is_authz_info(c, filter, len))
        return MQTT_RC_NOT_AUTHORIZED; /* authz-info is publish-only */
    const grant_t *g = c->authc ? c->authc->grant : NULL;
    if (grant_allows(g, ACE_PERM_SUB, filter, len, true))
        return 0;
    log_info("subscribe_denied", "client=%s peer=%s", conn_id(c),
             stream_peer(c->stream));
    return MQTT_RC_NOT_AUTHORIZED;
}

bool auth_may_publish(conn_t *c, const char *topic, size_t len)
{
    if (auth_is_authz_info(c, topic, len))
        return false;
    return grant_allows(c->authc ? c->authc->grant : NULL, ACE_PERM_PUB, topic, len, false);
}

bool auth_session_may_receive(const session_t *s, const char *topic, size_t len)
{
    return grant_allows(s->grant, ACE_PERM_SUB, topic, len, false);
}

bool auth_conn_may_receive(const conn_t *c, const char *topic, size_t len)
{
    return grant_allows(c->authc ? c->authc->grant : NULL, ACE_PERM_SUB, topic, len, false);
}

bool auth_is_authz_info(conn_t *c, const char *topic, size_t len)
{
    return c->authc && c->authc->pol->trust && len == sizeof AUTHZ_INFO_TOPIC - 1 && memcmp(topic, AUTHZ_INFO_TOPIC, len) == 0;
}

void auth_limit_expiry(conn_t *c, msg_t *m)
{
    const grant_t *g = c->authc ? c->authc->grant : NULL;
    if (!g || !g->deadline || !m->retain)
        return;
    struct timespec ts; /* to the millisecond: the deadline is an exact instant */
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t left = g->deadline * 1000 - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    uint64_t at = clock_ms() + (uint64_t)(left > 0 ? left : 0);
    if (!m->expire_at || at < m->expire_at)
        m->expire_at = at;
}

int handle_auth(conn_t *c, mqtt_packet_t *p)
{
    if (!c->authc || !c->authc->ace_method)
        return conn_protocol_error(c, MQTT_RC_PROTOCOL_ERROR,
                                   "AUTH without an authentication method in CONNECT");
    return ace_handle_auth(c, p);
}
