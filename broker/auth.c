/*
 * broker/auth.c: the access policy behind auth.h.
 *
 * Anonymous access follows the listener's allow_anonymous (the config has already resolved
 * per_listener_settings into each listener). As in Mosquitto 2, a client that sends a user name
 * when no password file is configured gains nothing from it: it is treated as anonymous.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/config.h"
#include "broker/log.h"
#include "tls/tls.h"

struct auth {
    int unused;
};

struct auth *auth_new(const acemq_config_t *cfg, char *err, size_t cap)
{
    (void)cfg;
    (void)err;
    (void)cap;
    return calloc(1, sizeof(struct auth));
}

void auth_free(struct auth *a)
{
    free(a);
}

static auth_result_t deny(uint8_t rc5, uint8_t rc3, const char *why)
{
    auth_result_t r = {.verdict = AUTH_DENY, .rc5 = rc5, .rc3 = rc3, .why = why};
    return r;
}

auth_result_t auth_connect(conn_t *c, const mqtt_connect_t *k)
{
    auth_result_t ok = {.verdict = AUTH_ALLOW};
    if (c->version == MQTT_V5 && (k->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)))
        return deny(MQTT_RC_BAD_AUTH_METHOD, MQTT311_CONNACK_BAD_CREDENTIALS,
                    "authentication method not supported");
    if (c->listener && c->listener->use_identity_as_username && c->stream &&
        stream_is_tls(c->stream)) {
        /* the client certificate, already verified by the TLS layer, names the user */
        tls_info_t info;
        if (tls_session_info(c->stream, &info) < 0 || !info.cert_identity)
            return deny(MQTT_RC_NOT_AUTHORIZED, MQTT311_CONNACK_NOT_AUTHORIZED,
                        "use_identity_as_username: no client certificate identity");
        snprintf(c->username, sizeof c->username, "%s", info.cert_identity);
        c->anonymous = false;
        return ok;
    }
    c->anonymous = true;
    if (!c->listener || c->listener->allow_anonymous)
        return ok;
    return deny(MQTT_RC_NOT_AUTHORIZED, MQTT311_CONNACK_NOT_AUTHORIZED,
                "anonymous access is not allowed on this listener");
}

int auth_publish(conn_t *c, const char *topic, size_t len, uint8_t qos)
{
    (void)c;
    (void)topic;
    (void)len;
    (void)qos;
    return 0;
}

int auth_subscribe(conn_t *c, const char *filter, size_t len)
{
    (void)c;
    (void)filter;
    (void)len;
    return 0;
}

bool auth_may_publish(conn_t *c, const char *topic, size_t len)
{
    (void)c;
    (void)topic;
    (void)len;
    return true;
}

bool auth_may_receive(session_t *s, const char *topic, size_t len)
{
    (void)s;
    (void)topic;
    (void)len;
    return true;
}

int handle_auth(conn_t *c, mqtt_packet_t *p)
{
    (void)p;
    return conn_protocol_error(c, MQTT_RC_PROTOCOL_ERROR,
                               "AUTH without an authentication method in CONNECT");
}

void auth_conn_closed(conn_t *c)
{
    (void)c;
}

void auth_session_free(session_t *s)
{
    (void)s;
}
