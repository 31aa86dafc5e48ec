/*
 * broker/auth.h: the questions the connection layer asks before it lets a client act.
 *
 * Who may connect (anonymous access per listener, password files, ACE tokens), who may publish
 * or subscribe to what, and whether a message may still be forwarded to a subscriber. The
 * connection layer only acts on the answers; the policies live behind this face.
 */
#ifndef ACEMQ_BROKER_AUTH_H
#define ACEMQ_BROKER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/core.h"

typedef enum { AUTH_ALLOW, AUTH_DENY, AUTH_CONTINUE } auth_verdict_t;

typedef struct {
    auth_verdict_t verdict;
    uint8_t rc5;       /* MQTT 5 CONNACK reason when denied */
    uint8_t rc3;       /* MQTT 3.1.1 CONNACK return code when denied */
    const char *why;   /* for the log */
    const char *reason; /* when denied: the fixed word it is counted under in the metrics */
    mqtt_str_t method; /* Authentication Method to echo in CONNACK, if any */
} auth_result_t;

/* The broker-wide policy, built from a config; replaced whole on reload. */
struct auth;
struct auth *auth_new(const acemq_config_t *cfg, char *err, size_t cap);
void auth_free(struct auth *a);
/* SIGHUP: builds a policy from a fresh config for new connections; open connections keep the one
 * they started with. On failure the running policy stays and err says why. 0 or -1. */
int auth_reload(struct auth *a, const acemq_config_t *cfg, char *err, size_t cap);
/* 1 once an ace_issuer is configured (then TLS listeners resolve PSK identities via authz-info). */
bool auth_ace_enabled(struct auth *a);
/* tls_psk_lookup_fn for TLS listeners: a PSK identity naming the cnf kid of a token uploaded to
 * authz-info (RFC 9202 {8:{1:{1:4, 2:kid}}}, or the raw kid) gives that token's symmetric key. */
int auth_psk_lookup(void *arg, const uint8_t *identity, size_t len, uint8_t *key, size_t *key_len);

auth_result_t auth_connect(conn_t *c, const mqtt_connect_t *k);
/* 0 = allowed; a positive MQTT 5 reason code = refused (sent in PUBACK/PUBREC);
 * -1 = refused and the connection was closed. */
int auth_publish(conn_t *c, const char *topic, size_t len, uint8_t qos);
/* 0 = allowed, else the SUBACK reason code for this filter ($share prefix already removed). */
int auth_subscribe(conn_t *c, const char *filter, size_t len);
/* For the will at CONNECT. */
bool auth_may_publish(conn_t *c, const char *topic, size_t len);
/* Forwarding is checked where each side's grant can be read without a lock:
 * - auth_session_may_receive: with s's lock held, while s is offline (queueing for it), against
 *   the grant of its last connection;
 * - auth_conn_may_receive: on c's worker, as a queued message goes out to c, against c's grant. */
bool auth_session_may_receive(const session_t *s, const char *topic, size_t len);
bool auth_conn_may_receive(const conn_t *c, const char *topic, size_t len);
/* The authz-info topic (RFC 9431 §2.2.5) while ACE is on: publish-only, its payload is consumed
 * as a token. */
bool auth_is_authz_info(conn_t *c, const char *topic, size_t len);
/* Handles a PUBLISH to authz-info (acknowledges it, or disconnects). 0, or -1 when closed. */
int auth_authz_info(conn_t *c, const mqtt_publish_t *pub);
/* A message from this client lives no longer than the client's token (retained copies). */
void auth_limit_expiry(conn_t *c, msg_t *m);
/* Called by connect_accept() once the session is attached, before CONNACK: the connection's
 * grant becomes the session's (forwarding checks) and the expiry timer is armed. */
void auth_connected(conn_t *c);

/* Lifecycle hooks for the state auth.c keeps on connections (c->authc) and sessions
 * (s->grant): called when the socket is gone (on the connection's worker), and when the
 * session is freed (any thread). */
void auth_conn_closed(conn_t *c);
void auth_session_free(session_t *s);

/* Completes CONNECT after authentication (handle_connect.c). */
int connect_accept(conn_t *c, const mqtt_connect_t *k, const mqtt_str_t *auth_method);

#endif
