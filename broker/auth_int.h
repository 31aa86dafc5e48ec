/*
 * broker/auth_int.h: what auth.c, auth_policy.c, ace_connect.c and ace_authz_info.c share behind
 * auth.h.
 *
 * Three kinds of object:
 * - policy_t: everything built from one configuration (trust store, token cache, public topics,
 *   password and ACL files, scope map). Immutable once built and reference counted: a reload
 *   installs a new one for new connections while connections and grants keep the one they started
 *   with, and it goes when the last of them lets go.
 * - grant_t: what one authenticated client may do (a token's scope and deadline, a user name for
 *   the ACL, or "anonymous"). Immutable and reference counted, because the publisher's worker reads
 *   the subscriber's grant at forwarding time while the subscriber's worker may replace it
 *   (re-authentication). A session keeps its connection's grant for the time it is offline:
 *   it is swapped and read under the session lock. A message going out is checked against the
 *   connection's own grant, on its worker, without a lock.
 * - auth_conn_t (conn_t.authc): the per-connection exchange state, touched only by the connection's
 *   worker thread.
 */
#ifndef ACEMQ_BROKER_AUTH_INT_H
#define ACEMQ_BROKER_AUTH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ace/authfile.h"
#include "ace/introspect.h"
#include "ace/pop.h"
#include "ace/scope.h"
#include "ace/token.h"
#include "ace/token_cache.h"
#include "broker/auth.h"

#define AUTHZ_INFO_TOPIC "authz-info"

typedef struct {
    char *filter;
    size_t len;
    unsigned perm; /* ACE_PERM_* */
} perm_entry_t;

typedef struct {
    char *name;
    perm_entry_t e;
} scope_map_entry_t;

typedef struct {
    char *path;
    ace_pwfile_t *pw;
    ace_acl_t *acl;
} authfile_entry_t;

typedef struct policy { /* immutable after policy_build() */
    atomic_int refs;
    struct auth *holder;
    ace_trust_t *trust; /* NULL: no ace_issuer, ACE is off */
    ace_token_cache_t *cache;
    char *audience, *as_hint;
    int clock_skew;
    bool cnonce; /* ace_cnonce: hints carry a cnonce, and tokens must bring one back */
    size_t max_token;
    perm_entry_t *pub;
    size_t n_pub;
    scope_map_entry_t *map;
    size_t n_map;
    authfile_entry_t *files; /* one per distinct password_file / acl_file path */
    size_t n_files;
    ace_introspect_t *introspect; /* reference tokens (ace_introspection), or NULL */
} policy_t;

enum { GRANT_ANON = 1, GRANT_USER, GRANT_ACE };

/* How a CONNECT was admitted (auth_conn_t.kind), for the metrics: what the grant cannot say
 * (a certificate user has a GRANT_USER grant, an open listener no grant at all). */
enum { ADMIT_ANONYMOUS = 1, ADMIT_PASSWORD, ADMIT_ACE, ADMIT_CERTIFICATE };

typedef struct grant {
    atomic_int refs;
    int kind;
    policy_t *pol;     /* reference: public topics and ACL */
    bool ace_rules;    /* ACE is on: anonymous clients reach public topics only, denials per RFC 9431 */
    ace_scope_t scope; /* GRANT_ACE */
    int64_t deadline;  /* Unix seconds after which nothing is allowed; 0 = none */
    const ace_acl_t *acl;
    char *username; /* for the ACL; NULL = anonymous */
    char *client_id;
} grant_t;

enum { PH_IDLE, PH_CHECKING, PH_CHALLENGE, PH_REAUTH_CHECKING, PH_REAUTH_CHALLENGE };

struct ace_job;

typedef struct auth_conn {
    policy_t *pol;
    grant_t *grant;
    uint8_t phase;
    uint8_t kind;       /* ADMIT_*: how the CONNECT was admitted (metrics) */
    bool ace_method;    /* CONNECT carried Authentication Method "ace": AUTH packets allowed */
    bool exporter_used; /* the TLS exporter PoP may be used once per TLS session */
    bool pop_done;      /* a token was presented with a valid PoP: re-authentication allowed */
    uint8_t rs_nonce[ACE_POP_NONCE_LEN];
    ace_claims_t *pending; /* verified token waiting for its PoP; only during an exchange, so
                              that idle connections don't carry a claims set */
    uint8_t *connect;     /* the CONNECT, re-encoded, for an accept after an exchange */
    size_t connect_len;
    struct ace_job *job;  /* verification running in the thread pool */
    uv_timer_t *timer;    /* token expiry */
} auth_conn_t;

/* auth_policy.c: the policy, and the admission state that outlives reloads */
policy_t *policy_acquire(struct auth *a);
void policy_release(policy_t *p);
int64_t auth_now(void);
const ace_pwfile_t *policy_pwfile(const policy_t *p, const char *path);
const ace_acl_t *policy_acl(const policy_t *p, const char *path);
bool policy_public(const policy_t *p, unsigned perm, const char *t, size_t len, bool filter);
/* cnonce bytes in an AS hint: 16 from the CSPRNG (RFC 9200 asks for freshness, not a length). */
#define AUTH_CNONCE_LEN 16
/* A fresh cnonce for an AS hint, remembered (bounded, AUTH_CNONCE_TTL_S) until a token brings it
 * back once. 0 or -1. */
int auth_cnonce_issue(struct auth *a, uint8_t out[AUTH_CNONCE_LEN], int64_t now);
/* The stateful rules a verified token must pass each time it is presented, whether its signature
 * check came from the cache or not: the exi sequence number (RFC 9200 §5.10.3) and, with
 * ace_cnonce, a cnonce this broker issued and nobody used yet. May shorten cl->exi to what is left
 * of the window that started when the token was first seen. 0 or ACE_E_REPLAY / ACE_E_NONCE /
 * ACE_E_CLAIM. */
int auth_admit_token(const policy_t *p, ace_claims_t *cl, int64_t now);

/* auth.c: grants and the decisions */
grant_t *grant_new(policy_t *p, int kind);
grant_t *grant_ref(grant_t *g);
void grant_unref(grant_t *g);
/* Builds an ACE grant from verified claims (scope parsed, or mapped for bearer tokens). */
int grant_from_claims(policy_t *p, const ace_claims_t *cl, bool bearer, grant_t **out);
auth_conn_t *authc_get(conn_t *c);
/* Replaces the connection's grant (takes the reference). */
void authc_set_grant(conn_t *c, grant_t *g);
/* Pushes the connection's grant to its session and re-arms the expiry timer. */
void auth_install(conn_t *c);

/* ace_connect.c */
auth_result_t ace_connect(conn_t *c, const mqtt_connect_t *k, policy_t *p);
int ace_handle_auth(conn_t *c, mqtt_packet_t *pkt);
void ace_timer_arm(conn_t *c, int64_t deadline);
void ace_conn_cleanup(auth_conn_t *a);
/* CONNACK 0x87 (MQTT 5: with the AS hint) and close. */
void ace_refuse_hint(conn_t *c, uint8_t rc3, const char *why);
/* Deadline of verified claims: exp plus skew, or now + exi. */
int64_t ace_deadline(const policy_t *p, const ace_claims_t *cl, int64_t now);

/* ace_authz_info.c */
typedef struct authz_store authz_store_t;
authz_store_t *authz_store_new(size_t cap);
void authz_store_free(authz_store_t *st);
/* The stored token whose cnf kid the PSK identity names (RFC 9202 form or raw kid): a copy. */
int authz_store_find_identity(authz_store_t *st, const uint8_t *id, size_t len, int64_t now,
                              ace_claims_t *out);
authz_store_t *auth_store(struct auth *a);
ace_exi_tracker_t *auth_exi(struct auth *a);
/* 1 if a 3.1.1 user name is "ace" followed by base64url characters (the RFC 9431 form). */
bool ace_username_form(const mqtt_str_t *u);

#endif
