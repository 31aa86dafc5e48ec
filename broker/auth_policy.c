/*
 * broker/auth_policy.c: the access policy's state behind auth.h and auth_int.h.
 *
 * A policy_t is built from the configuration (password and ACL files, public topics, ACE issuers,
 * scope maps, introspection) and swapped whole on SIGHUP; connections hold a reference to the one
 * they started with. What must survive a reload lives beside it in struct auth: the exi replay
 * memory, the tokens uploaded to authz-info, and the cnonces handed out in AS hints, with the
 * admission rules that read them (auth_admit_token). Grants and the per-packet decisions are in
 * auth.c.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/auth_int.h"
#include "broker/config.h"

/* How many issued cnonces are remembered, and for how long: long enough for a client to go to the
 * AS and back, bounded so that refused CONNECTs cannot grow memory (the oldest is forgotten). */
enum { CNONCE_SLOTS = 4096, AUTH_CNONCE_TTL_S = 300, EXI_ISSUERS = 256 };

typedef struct {
    uint8_t n[AUTH_CNONCE_LEN];
    int64_t until; /* 0: free or used */
} cnonce_slot_t;

/* Per issuer, the token that set the highest exi sequence number, so that the same token can
 * reconnect within its window while older numbers stay refused. */
typedef struct {
    char iss[256];
    uint8_t digest[32];
    int64_t until; /* first seen + exi */
} exi_last_t;

struct auth {
    pthread_mutex_t mu; /* guards cur; held only to take a reference or swap */
    policy_t *cur;
    ace_exi_tracker_t *exi; /* survives reloads: replay memory must not be reset by SIGHUP */
    authz_store_t *store;   /* tokens uploaded to authz-info, also kept across reloads */
    pthread_mutex_t admit_mu; /* guards the cnonce ring and exi_last (and pairs them with exi) */
    cnonce_slot_t *cnonces;   /* a ring: next is the oldest */
    size_t cnonce_next;
    exi_last_t *exi_last;
    size_t n_exi_last;
};

int64_t auth_now(void)
{
    /* not time(): glibc serves it from the coarse clock, which can lag a second boundary */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* ---- policy ----------------------------------------------------------------------------------- */

void policy_release(policy_t *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    ace_trust_free(p->trust);
    ace_token_cache_free(p->cache);
    free(p->audience);
    free(p->as_hint);
    for (size_t i = 0; i < p->n_pub; i++)
        free(p->pub[i].filter);
    free(p->pub);
    for (size_t i = 0; i < p->n_map; i++) {
        free(p->map[i].name);
        free(p->map[i].e.filter);
    }
    free(p->map);
    for (size_t i = 0; i < p->n_files; i++) {
        free(p->files[i].path);
        ace_pwfile_free(p->files[i].pw);
        ace_acl_free(p->files[i].acl);
    }
    free(p->files);
    if (p->introspect)
        ace_introspect_free(p->introspect);
    free(p);
}

policy_t *policy_acquire(struct auth *a)
{
    pthread_mutex_lock(&a->mu);
    policy_t *p = a->cur;
    atomic_fetch_add(&p->refs, 1);
    pthread_mutex_unlock(&a->mu);
    return p;
}

static authfile_entry_t *file_entry(policy_t *p, const char *path)
{
    for (size_t i = 0; i < p->n_files; i++)
        if (strcmp(p->files[i].path, path) == 0)
            return &p->files[i];
    authfile_entry_t *v = realloc(p->files, (p->n_files + 1) * sizeof *v);
    if (!v)
        return NULL;
    p->files = v;
    authfile_entry_t *e = &v[p->n_files];
    memset(e, 0, sizeof *e);
    if (!(e->path = strdup(path)))
        return NULL;
    p->n_files++;
    return e;
}

/* Loads a password_file or acl_file once per distinct path. */
static int load_file(policy_t *p, const char *path, bool acl, char *err, size_t cap)
{
    if (!path)
        return 0;
    authfile_entry_t *e = file_entry(p, path);
    if (!e)
        return snprintf(err, cap, "out of memory"), -1;
    size_t line = 0;
    int rc = 0;
    if (acl && !e->acl)
        rc = ace_acl_load(path, &e->acl, &line);
    else if (!acl && !e->pw)
        rc = ace_pwfile_load(path, &e->pw, &line);
    if (rc < 0) {
        snprintf(err, cap, "%s %s%s%zu: %s", acl ? "acl_file" : "password_file", path,
                 line ? ":" : "", line, ace_strerror(rc));
        return -1;
    }
    return 0;
}

static int load_files(policy_t *p, const acemq_config_t *cfg, char *err, size_t cap)
{
    if (load_file(p, cfg->password_file, false, err, cap) < 0 ||
        load_file(p, cfg->acl_file, true, err, cap) < 0)
        return -1;
    for (const acemq_listener_t *l = cfg->listeners; l; l = l->next)
        if (load_file(p, l->password_file, false, err, cap) < 0 ||
            load_file(p, l->acl_file, true, err, cap) < 0)
            return -1;
    return 0;
}

static int load_lists(policy_t *p, const acemq_config_t *cfg)
{
    for (const acemq_ace_public_topic_t *t = cfg->ace_public_topics; t; t = t->next)
        p->n_pub++;
    for (const acemq_ace_scope_map_t *m = cfg->ace_scope_map; m; m = m->next)
        p->n_map++;
    p->pub = calloc(p->n_pub + 1, sizeof *p->pub);
    p->map = calloc(p->n_map + 1, sizeof *p->map);
    if (!p->pub || !p->map)
        return -1;
    size_t i = 0;
    for (const acemq_ace_public_topic_t *t = cfg->ace_public_topics; t; t = t->next, i++) {
        p->pub[i] = (perm_entry_t){strdup(t->filter), strlen(t->filter),
                                   (t->perm & ACEMQ_PERM_PUB ? ACE_PERM_PUB : 0u) |
                                       (t->perm & ACEMQ_PERM_SUB ? ACE_PERM_SUB : 0u)};
        if (!p->pub[i].filter)
            return -1;
    }
    i = 0;
    for (const acemq_ace_scope_map_t *m = cfg->ace_scope_map; m; m = m->next, i++) {
        p->map[i].name = strdup(m->name);
        p->map[i].e = (perm_entry_t){strdup(m->filter), strlen(m->filter),
                                     (m->perm & ACEMQ_PERM_PUB ? ACE_PERM_PUB : 0u) |
                                         (m->perm & ACEMQ_PERM_SUB ? ACE_PERM_SUB : 0u)};
        if (!p->map[i].name || !p->map[i].e.filter)
            return -1;
    }
    return 0;
}

static int load_trust(policy_t *p, const acemq_config_t *cfg, char *err, size_t cap)
{
    if (!cfg->ace_issuers && !cfg->ace_introspection_url)
        return 0;
    if (!cfg->ace_audience)
        return snprintf(err, cap, "ACE needs ace_audience"), -1;
    p->trust = ace_trust_new(cfg->ace_audience, cfg->ace_clock_skew, cfg->ace_profile_id);
    p->cache = ace_token_cache_new(4096, 3600);
    if (!p->trust || !p->cache)
        return snprintf(err, cap, "out of memory"), -1;
    if (cfg->ace_max_token_size > 0)
        ace_trust_set_max_token(p->trust, (size_t)cfg->ace_max_token_size);
    for (const acemq_ace_issuer_t *i = cfg->ace_issuers; i; i = i->next) {
        char why[256] = "";
        if (ace_trust_add_issuer_keyfile(p->trust, i->iss, i->keyfile, why, sizeof why) < 0)
            return snprintf(err, cap, "ace_issuer %s: %s", i->iss, why), -1;
    }
    if (ace_pop_init() < 0)
        return snprintf(err, cap, "ACE: crypto initialisation failed"), -1;
    return 0;
}

static policy_t *policy_build(struct auth *a, const acemq_config_t *cfg, char *err, size_t cap)
{
    policy_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    atomic_init(&p->refs, 1);
    p->holder = a;
    p->clock_skew = cfg->ace_clock_skew > 0 ? cfg->ace_clock_skew : 0;
    p->max_token = cfg->ace_max_token_size > 0 ? (size_t)cfg->ace_max_token_size : 8192;
    p->audience = cfg->ace_audience ? strdup(cfg->ace_audience) : NULL;
    p->as_hint = cfg->ace_as_hint ? strdup(cfg->ace_as_hint) : NULL;
    p->cnonce = cfg->ace_cnonce;
    if ((cfg->ace_audience && !p->audience) || (cfg->ace_as_hint && !p->as_hint) ||
        load_lists(p, cfg) < 0) {
        snprintf(err, cap, "out of memory");
        policy_release(p);
        return NULL;
    }
    if (load_trust(p, cfg, err, cap) < 0 || load_files(p, cfg, err, cap) < 0) {
        policy_release(p);
        return NULL;
    }
    if (cfg->ace_introspection_url) { /* for tokens the trust store cannot verify locally */
        ace_introspect_config_t ic = {
            .url = cfg->ace_introspection_url,
            .client_id = cfg->ace_introspection_client_id,
            .secret_file = cfg->ace_introspection_secret_file,
            .cafile = cfg->ace_introspection_cafile,
            .audience = cfg->ace_audience,
            .timeout_ms = (unsigned)cfg->ace_introspection_timeout * 1000u,
            .cache_ttl = cfg->ace_introspection_cache_ttl,
            .clock_skew = p->clock_skew,
            .max_token = p->max_token,
        };
        char why[256] = "";
        if (!(p->introspect = ace_introspect_new(&ic, why, sizeof why))) {
            snprintf(err, cap, "ace_introspection: %s", why);
            policy_release(p);
            return NULL;
        }
    }
    return p;
}

struct auth *auth_new(const acemq_config_t *cfg, char *err, size_t cap)
{
    struct auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->admit_mu, NULL);
    a->exi = ace_exi_tracker_new();
    a->store = authz_store_new(1024);
    a->cnonces = calloc(CNONCE_SLOTS, sizeof *a->cnonces);
    a->exi_last = calloc(EXI_ISSUERS, sizeof *a->exi_last);
    bool ok = a->exi && a->store && a->cnonces && a->exi_last;
    a->cur = ok ? policy_build(a, cfg, err, cap) : NULL;
    if (!ok)
        snprintf(err, cap, "out of memory");
    if (!a->cur) {
        auth_free(a);
        return NULL;
    }
    return a;
}

int auth_reload(struct auth *a, const acemq_config_t *cfg, char *err, size_t cap)
{
    policy_t *p = policy_build(a, cfg, err, cap);
    if (!p)
        return -1;
    pthread_mutex_lock(&a->mu);
    policy_t *old = a->cur;
    a->cur = p;
    pthread_mutex_unlock(&a->mu);
    policy_release(old); /* connections and grants still holding it keep it alive */
    return 0;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    policy_release(a->cur);
    ace_exi_tracker_free(a->exi);
    authz_store_free(a->store);
    free(a->cnonces);
    free(a->exi_last);
    pthread_mutex_destroy(&a->admit_mu);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* ---- token admission: exi and cnonce ---------------------------------------------------------- */

int auth_cnonce_issue(struct auth *a, uint8_t out[AUTH_CNONCE_LEN], int64_t now)
{
    randombytes_buf(out, AUTH_CNONCE_LEN); /* libsodium: the OS CSPRNG */
    pthread_mutex_lock(&a->admit_mu);
    cnonce_slot_t *s = &a->cnonces[a->cnonce_next];
    a->cnonce_next = (a->cnonce_next + 1) % CNONCE_SLOTS;
    memcpy(s->n, out, AUTH_CNONCE_LEN);
    s->until = now + AUTH_CNONCE_TTL_S;
    pthread_mutex_unlock(&a->admit_mu);
    return 0;
}

/* The live slot holding the token's cnonce, or NULL. Caller holds admit_mu. */
static cnonce_slot_t *cnonce_find(struct auth *a, const ace_claims_t *cl, int64_t now)
{
    if (!cl->has_cnonce || cl->cnonce_len != AUTH_CNONCE_LEN)
        return NULL;
    for (size_t i = 0; i < CNONCE_SLOTS; i++) {
        cnonce_slot_t *s = &a->cnonces[i];
        if (s->until > now && ace_claims_check_cnonce(cl, s->n, AUTH_CNONCE_LEN) == 0)
            return s;
    }
    return NULL;
}

/* The sequence number follows a prefix naming this broker: its audience when the cti starts with
 * it, else everything but the last 8 bytes (the longest number ace_exi_seq_from_cti reads). */
static size_t exi_prefix(const policy_t *p, const ace_claims_t *cl)
{
    size_t al = p->audience ? strlen(p->audience) : 0;
    if (al && cl->cti_len > al && memcmp(cl->cti, p->audience, al) == 0)
        return al;
    return cl->cti_len > 8 ? cl->cti_len - 8 : 0;
}

static exi_last_t *exi_last(struct auth *a, const char *iss, bool create)
{
    for (size_t i = 0; i < a->n_exi_last; i++)
        if (strcmp(a->exi_last[i].iss, iss) == 0)
            return &a->exi_last[i];
    if (!create || a->n_exi_last == EXI_ISSUERS)
        return NULL; /* only trusted issuers get here, so this bound is never reached in practice */
    exi_last_t *e = &a->exi_last[a->n_exi_last++];
    snprintf(e->iss, sizeof e->iss, "%s", iss);
    return e;
}

/* A number above the highest seen is new (its window starts now); the token holding the highest
 * number may come back (a reconnect) until its window closes, and keeps that window; anything
 * else is a replay. The same answer whether or not the signature check was cached. Caller holds
 * admit_mu. */
static int exi_admit(struct auth *a, const policy_t *p, ace_claims_t *cl, int64_t now)
{
    if (!cl->has_exi)
        return 0;
    int rc = ace_exi_check_claims(a->exi, cl, exi_prefix(p, cl));
    exi_last_t *e = exi_last(a, cl->iss, rc == 0);
    if (rc == 0 && e) {
        memcpy(e->digest, cl->digest, sizeof e->digest);
        e->until = now + cl->exi;
    } else if (rc == ACE_E_REPLAY && e && now < e->until &&
               sodium_memcmp(e->digest, cl->digest, sizeof e->digest) == 0) {
        cl->exi = e->until - now;
        rc = 0;
    }
    return rc;
}

int auth_admit_token(const policy_t *p, ace_claims_t *cl, int64_t now)
{
    struct auth *a = p->holder;
    pthread_mutex_lock(&a->admit_mu);
    cnonce_slot_t *s = p->cnonce ? cnonce_find(a, cl, now) : NULL;
    int rc = p->cnonce && !s ? ACE_E_NONCE : exi_admit(a, p, cl, now);
    if (rc == 0 && s)
        s->until = 0; /* used: a second token with the same cnonce is refused */
    pthread_mutex_unlock(&a->admit_mu);
    return rc;
}

bool auth_ace_enabled(struct auth *a)
{
    policy_t *p = policy_acquire(a);
    bool on = p->trust != NULL;
    policy_release(p);
    return on;
}

authz_store_t *auth_store(struct auth *a)
{
    return a->store;
}

ace_exi_tracker_t *auth_exi(struct auth *a)
{
    return a->exi;
}

const ace_pwfile_t *policy_pwfile(const policy_t *p, const char *path)
{
    for (size_t i = 0; path && i < p->n_files; i++)
        if (strcmp(p->files[i].path, path) == 0)
            return p->files[i].pw;
    return NULL;
}

const ace_acl_t *policy_acl(const policy_t *p, const char *path)
{
    for (size_t i = 0; path && i < p->n_files; i++)
        if (strcmp(p->files[i].path, path) == 0)
            return p->files[i].acl;
    return NULL;
}

bool policy_public(const policy_t *p, unsigned perm, const char *t, size_t len, bool filter)
{
    for (size_t i = 0; i < p->n_pub; i++) {
        const perm_entry_t *e = &p->pub[i];
        if (!(e->perm & perm))
            continue;
        if (filter ? ace_filter_subset(t, len, e->filter, e->len)
                   : ace_topic_matches(e->filter, e->len, t, len))
            return true;
    }
    return false;
}
