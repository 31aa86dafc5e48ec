/*
 * broker/ace_authz_info.c: the authz-info topic (RFC 9431 §2.2.5) and the tokens it stores.
 *
 * A client without a token (TLS:Anon + MQTT:none) publishes a token to authz-info; the broker
 * verifies it and keeps it under the kid of its cnf key (decision 6: one token per PoP key, a newer
 * one replaces it; the store is bounded and evicts the oldest; uploads are rate-limited per source
 * address, because the RFC warns about denial of service through uploads of unused tokens). The
 * message is consumed: never routed, never retained. A later TLS-PSK handshake whose PSK identity
 * names that kid (RFC 9202 §3.3.2: {8:{1:{1:4, 2:kid}}} in CBOR, or simply the kid bytes) gets
 * the token's symmetric cnf key as its PSK, and the connection is authorized by the token.
 *
 * The store is shared by every worker and by the TLS handshakes in the thread pool: one mutex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth_int.h"
#include "broker/log.h"
#include "broker/metrics.h"

enum { RATE_SLOTS = 256, RATE_BURST = 10, RATE_WINDOW_S = 10 };

typedef struct {
    ace_claims_t cl;
    uint64_t seq;      /* insertion order, for eviction */
    int64_t stored_at; /* Unix seconds: an exi token's window runs from here, not per connection */
    bool used;
} slot_t;

typedef struct {
    char addr[64];
    int64_t window;
    unsigned n;
} rate_t;

struct authz_store {
    pthread_mutex_t mu;
    slot_t *v;
    size_t cap;
    uint64_t seq;
    rate_t rate[RATE_SLOTS];
};

authz_store_t *authz_store_new(size_t cap)
{
    authz_store_t *st = calloc(1, sizeof *st);
    if (!st || !(st->v = calloc(cap, sizeof *st->v))) {
        free(st);
        return NULL;
    }
    st->cap = cap;
    pthread_mutex_init(&st->mu, NULL);
    return st;
}

void authz_store_free(authz_store_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->cap; i++)
        ace_claims_free(&st->v[i].cl);
    free(st->v);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static slot_t *find_kid(authz_store_t *st, const uint8_t *kid, size_t len)
{
    for (size_t i = 0; i < st->cap; i++) {
        slot_t *s = &st->v[i];
        if (s->used && s->cl.cnf_key.kid_len == len && memcmp(s->cl.cnf_key.kid, kid, len) == 0)
            return s;
    }
    return NULL;
}

static int store_put(authz_store_t *st, const ace_claims_t *cl, int64_t now)
{
    pthread_mutex_lock(&st->mu);
    slot_t *s = find_kid(st, cl->cnf_key.kid, cl->cnf_key.kid_len);
    for (size_t i = 0; !s && i < st->cap; i++)
        if (!st->v[i].used)
            s = &st->v[i];
    if (!s) { /* full: the oldest goes */
        s = &st->v[0];
        for (size_t i = 1; i < st->cap; i++)
            if (st->v[i].seq < s->seq)
                s = &st->v[i];
    }
    ace_claims_free(&s->cl);
    int rc = ace_claims_copy(&s->cl, cl);
    s->used = rc == 0;
    s->seq = ++st->seq;
    s->stored_at = now;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Reads one CBOR head (major type, argument) of at most 8-byte arguments. */
static int cbor_head(const uint8_t **p, const uint8_t *end, int *major, uint64_t *val)
{
    if (*p >= end)
        return -1;
    uint8_t b = *(*p)++;
    *major = b >> 5;
    uint8_t ai = b & 31;
    if (ai < 24) {
        *val = ai;
        return 0;
    }
    if (ai > 27)
        return -1;
    size_t n = (size_t)1 << (ai - 24);
    if ((size_t)(end - *p) < n)
        return -1;
    *val = 0;
    for (size_t i = 0; i < n; i++)
        *val = *val << 8 | *(*p)++;
    return 0;
}

/* The kid out of {8:{1:{1:4, 2:kid, ...}}}; 0 or -1 when the identity is not that form. */
static int identity_kid(const uint8_t *id, size_t len, const uint8_t **kid, size_t *kid_len)
{
    const uint8_t *p = id, *end = id + len;
    int mj;
    uint64_t v;
    /* outer map of 1: key 8; cnf map of 1: key 1 (COSE_Key) */
    const uint64_t want[4] = {1, 8, 1, 1};
    const int kinds[4] = {5, 0, 5, 0};
    for (int i = 0; i < 4; i++)
        if (cbor_head(&p, end, &mj, &v) < 0 || mj != kinds[i] || v != want[i])
            return -1;
    uint64_t n;
    if (cbor_head(&p, end, &mj, &n) < 0 || mj != 5 || n > 16)
        return -1;
    *kid = NULL;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t key, x;
        int km;
        if (cbor_head(&p, end, &km, &key) < 0 || km != 0 || cbor_head(&p, end, &mj, &x) < 0)
            return -1;
        if (mj == 2 || mj == 3) { /* byte or text string: skip its bytes */
            if (x > (uint64_t)(end - p))
                return -1;
            if (key == 2 && mj == 2) {
                *kid = p;
                *kid_len = (size_t)x;
            }
            p += x;
        } else if (mj != 0 && mj != 1) {
            return -1;
        }
    }
    return *kid && p == end ? 0 : -1;
}

int authz_store_find_identity(authz_store_t *st, const uint8_t *id, size_t len, int64_t now,
                              ace_claims_t *out)
{
    const uint8_t *kid = id;
    size_t kid_len = len;
    if (len && id[0] == 0xA1 && identity_kid(id, len, &kid, &kid_len) < 0)
        return -1;
    if (!kid_len || kid_len > sizeof out->cnf_key.kid)
        return -1;
    pthread_mutex_lock(&st->mu);
    slot_t *s = find_kid(st, kid, kid_len);
    int rc = -1;
    /* exi counts from the upload: each PSK connection gets what is left of it (ace_deadline adds
     * it to the connection's now), and none once it has run out */
    int64_t exi_left = s && s->cl.has_exi ? s->stored_at + s->cl.exi - now : 0;
    if (s && !(s->cl.has_exp && now >= s->cl.exp) && !(s->cl.has_exi && exi_left <= 0)) {
        rc = ace_claims_copy(out, &s->cl);
        if (rc == 0 && out->has_exi)
            out->exi = exi_left;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int auth_psk_lookup(void *arg, const uint8_t *identity, size_t len, uint8_t *key, size_t *key_len)
{
    struct auth *a = arg;
    ace_claims_t cl;
    if (authz_store_find_identity(auth_store(a), identity, len, auth_now(), &cl) < 0)
        return -1;
    int rc = -1;
    if (cl.cnf_key.type == ACE_KEY_SYMMETRIC && cl.cnf_key.k_len <= *key_len) {
        memcpy(key, cl.cnf_key.k, cl.cnf_key.k_len);
        *key_len = cl.cnf_key.k_len;
        rc = 0;
    }
    ace_claims_free(&cl);
    return rc;
}

/* At most RATE_BURST uploads per RATE_WINDOW_S seconds per source address (port ignored). */
static bool rate_ok(authz_store_t *st, const char *peer)
{
    char addr[64];
    snprintf(addr, sizeof addr, "%s", peer);
    char *colon = strrchr(addr, ':');
    if (colon)
        *colon = 0;
    uint32_t h = 2166136261u;
    for (const char *q = addr; *q; q++)
        h = (h ^ (uint8_t)*q) * 16777619u;
    int64_t win = auth_now() / RATE_WINDOW_S;
    pthread_mutex_lock(&st->mu);
    rate_t *r = &st->rate[h % RATE_SLOTS];
    if (r->window != win || strcmp(r->addr, addr) != 0) {
        snprintf(r->addr, sizeof r->addr, "%s", addr);
        r->window = win;
        r->n = 0;
    }
    bool ok = ++r->n <= RATE_BURST;
    pthread_mutex_unlock(&st->mu);
    return ok;
}

/* Verifies an uploaded token; 0 or the MQTT reason code (0x87 invalid, 0x99 does not parse). */
static uint8_t upload(conn_t *c, const uint8_t *tok, size_t len)
{
    policy_t *p = c->authc->pol;
    if (!rate_ok(auth_store(c->w->b->auth), stream_peer(c->stream)))
        return MQTT_RC_MESSAGE_RATE_TOO_HIGH;
    if (len == 0 || len > p->max_token)
        return MQTT_RC_PAYLOAD_FORMAT_INVALID;
    ace_claims_t cl;
    /* A symmetric-key token verifies in microseconds; an ES256 one costs ~1 ms on this loop, which
     * the rate limit above bounds. */
    int rc = ace_token_verify_cached(p->cache, p->trust, tok, len, auth_now(), &cl);
    metrics_count_token(0, rc);
    if (rc == 0 && (rc = auth_admit_token(p, &cl, auth_now())) < 0) /* exi, cnonce: as at CONNECT */
        ace_claims_free(&cl);
    if (rc < 0) {
        log_info("authz_info_refused", "client=%s peer=%s error=\"%s\"", conn_id(c),
                 stream_peer(c->stream), ace_strerror(rc));
        return ace_error_is_malformed(rc) ? MQTT_RC_PAYLOAD_FORMAT_INVALID : MQTT_RC_NOT_AUTHORIZED;
    }
    ace_scope_t sc;
    uint8_t out = MQTT_RC_NOT_AUTHORIZED;
    if (!cl.has_cnf || cl.cnf_is_kid_only || cl.cnf_key.type != ACE_KEY_SYMMETRIC ||
        !cl.cnf_key.kid_len || cl.cnf_key.k_len > 32)
        log_info("authz_info_refused", "client=%s error=\"token has no symmetric cnf key with a "
                 "kid (needed for TLS-PSK)\"", conn_id(c));
    else if (ace_scope_parse_claim(cl.scope_kind, cl.scope, cl.scope_len, &sc) < 0)
        log_info("authz_info_refused", "client=%s error=\"scope not understood\"", conn_id(c));
    else if (ace_scope_free(&sc), store_put(auth_store(c->w->b->auth), &cl, auth_now()) == 0)
        out = 0;
    if (out == 0)
        log_info("authz_info_stored", "client=%s peer=%s", conn_id(c),
                 stream_peer(c->stream));
    ace_claims_free(&cl);
    return out;
}

int auth_authz_info(conn_t *c, const mqtt_publish_t *pub)
{
    uint8_t rc = upload(c, pub->payload, pub->payload_len);
    if (pub->qos == 0) {
        if (rc && c->version == MQTT_V5) { /* the only way to tell a QoS 0 publisher */
            conn_close(c, rc, rc == MQTT_RC_PAYLOAD_FORMAT_INVALID ? "token does not parse"
                                                                   : "token not valid");
            return -1;
        }
        return 0;
    }
    if (rc && pub->qos == 2 && c->session) { /* no PUBREL will follow a refusal */
        session_lock(c->session);
        session_in_del(c->session, pub->id);
        session_unlock(c->session);
    }
    mqtt_packet_t a = {.type = pub->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC};
    a.u.ack.id = pub->id;
    a.u.ack.rc = c->version == MQTT_V5 ? rc : 0;
    conn_send(c, &a);
    return 0;
}
