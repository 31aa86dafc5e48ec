/*
 * proto/decode_connect.c: CONNECT and CONNACK. CONNECT is read whatever version the connection
 * has so far, since it is the packet that chooses the version; its level is stored before any
 * later check can fail, so a server can answer a refused CONNECT in the client's own version.
 */
#include "codec.h"

static bool str_is(mqtt_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* Protocol name, level and the connect flags byte. */
static mqtt_rc_t connect_header(dec_t *d, rd_t *r, mqtt_connect_t *c)
{
    uint8_t f;
    if (!rd_bin(r, &c->protocol_name) || !rd_u8(r, &c->level))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated protocol name or level");
    bool mqisdp = str_is(c->protocol_name, "MQIsdp");
    if (!mqisdp && !str_is(c->protocol_name, "MQTT"))
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "unknown protocol name");
    if (c->level != MQTT_V31 && c->level != MQTT_V311 && c->level != MQTT_V5)
        DEC_FAIL(d, MQTT_RC_UNSUPPORTED_VERSION, "unsupported protocol level");
    if (mqisdp != (c->level == MQTT_V31))
        DEC_FAIL(d, MQTT_RC_UNSUPPORTED_VERSION, "protocol name does not match the level");
    d->version = c->level;
    if (!rd_u8(r, &f) || !rd_u16(r, &c->keepalive))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated connect flags or keep alive");
    if (f & 0x01)
        DEC_FAIL(d, MQTT_RC_MALFORMED, "reserved connect flag is set");
    c->clean = (f & 0x02) != 0;
    c->will = (f & 0x04) != 0;
    c->will_qos = (f >> 3) & 3;
    c->will_retain = (f & 0x20) != 0;
    c->has_password = (f & 0x40) != 0;
    c->has_username = (f & 0x80) != 0;
    if (c->will_qos == 3)
        DEC_FAIL(d, MQTT_RC_MALFORMED, "will QoS 3");
    if (!c->will && (c->will_qos || c->will_retain))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "will QoS or will retain set without a will");
    if (c->has_password && !c->has_username && c->level < MQTT_V5)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "password without a user name");
    return MQTT_RC_SUCCESS;
}

/* The client identifier, as each version restricts it. */
static mqtt_rc_t connect_client_id(dec_t *d, rd_t *r, mqtt_connect_t *c)
{
    if (!rd_bin(r, &c->client_id))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated client identifier");
    if (!proto_utf8_valid(c->client_id.p, c->client_id.len))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "client identifier is not valid UTF-8");
    if (c->client_id.len == 0) {
        if (c->level == MQTT_V31)
            DEC_FAIL(d, MQTT_RC_CLIENT_ID_NOT_VALID, "empty client identifier in MQTT 3.1");
        if (c->level == MQTT_V311 && !c->clean)
            DEC_FAIL(d, MQTT_RC_CLIENT_ID_NOT_VALID,
                     "empty client identifier without clean session");
    }
    return MQTT_RC_SUCCESS;
}

static mqtt_rc_t connect_will(dec_t *d, rd_t *r, mqtt_connect_t *c, prop_span_t *span)
{
    mqtt_str_t payload;
    if (c->level >= MQTT_V5) {
        mqtt_rc_t rc = proto__props_decode(d, r, PROP_KIND_WILL, false, &c->will_props, span);
        if (rc != MQTT_RC_SUCCESS)
            return rc;
    }
    if (!rd_bin(r, &c->will_topic))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated will topic");
    if (!proto_utf8_valid(c->will_topic.p, c->will_topic.len))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "will topic is not valid UTF-8");
    if (!proto_topic_name_valid(c->will_topic.p, c->will_topic.len))
        DEC_FAIL(d, MQTT_RC_TOPIC_NAME_INVALID, "will topic is not a valid topic name");
    if (!rd_bin(r, &payload))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated will payload");
    c->will_payload = payload.p;
    c->will_payload_len = payload.len;
    return MQTT_RC_SUCCESS;
}

mqtt_rc_t proto__dec_connect(dec_t *d, rd_t *r, mqtt_packet_t *pkt)
{
    mqtt_connect_t *c = &pkt->u.connect;
    prop_span_t span = {0}, wspan = {0};
    mqtt_rc_t rc = connect_header(d, r, c);
    if (rc != MQTT_RC_SUCCESS)
        return rc;
    if (c->level >= MQTT_V5) {
        rc = proto__props_decode(d, r, MQTT_CONNECT, false, &c->props, &span);
        if (rc != MQTT_RC_SUCCESS)
            return rc;
        if ((c->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA)) &&
            !(c->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)))
            DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "authentication data without a method");
    }
    if ((rc = connect_client_id(d, r, c)) != MQTT_RC_SUCCESS)
        return rc;
    if (c->will && (rc = connect_will(d, r, c, &wspan)) != MQTT_RC_SUCCESS)
        return rc;
    if (c->has_username) {
        if (!rd_bin(r, &c->username))
            DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated user name");
        if (!proto_utf8_valid(c->username.p, c->username.len))
            DEC_FAIL(d, MQTT_RC_MALFORMED, "user name is not valid UTF-8");
    }
    if (c->has_password && !rd_bin(r, &c->password))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated password");
    if (rd_left(r))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "unexpected bytes after the end of the packet");
    return proto__dec_arrays(d, pkt, &c->props, &span, &c->will_props, &wspan, 0, NULL);
}

mqtt_rc_t proto__dec_connack(dec_t *d, rd_t *r, mqtt_packet_t *pkt)
{
    mqtt_connack_t *a = &pkt->u.connack;
    uint8_t f;
    if (!rd_u8(r, &f) || !rd_u8(r, &a->rc))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated CONNACK");
    if (f & 0xFE)
        DEC_FAIL(d, MQTT_RC_MALFORMED, "reserved CONNACK flags are set");
    a->session_present = f & 1;
    if (a->session_present && a->rc != 0)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "session present with a refusal");
    if (d->version < MQTT_V5) {
        if (a->rc > MQTT311_CONNACK_NOT_AUTHORIZED)
            DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "unknown CONNACK return code");
        return MQTT_RC_SUCCESS;
    }
    /*
     * A server that does not speak MQTT 5 answers a level 5 CONNECT with a 3.1.1 CONNACK
     * (2 bytes, code 1: unacceptable protocol version), which the client must be able to read.
     */
    if (rd_left(r) == 0 && a->rc == MQTT311_CONNACK_BAD_VERSION)
        return MQTT_RC_SUCCESS;
    if (!proto__rc_allowed(MQTT_CONNACK, a->rc))
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "reason code not allowed in CONNACK");
    prop_span_t span;
    mqtt_rc_t rc = proto__props_decode(d, r, MQTT_CONNACK, false, &a->props, &span);
    if (rc != MQTT_RC_SUCCESS)
        return rc;
    if ((a->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA)) &&
        !(a->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)))
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "authentication data without a method");
    if (rd_left(r))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "unexpected bytes after the end of the packet");
    return proto__dec_arrays(d, pkt, &a->props, &span, NULL, NULL, 0, NULL);
}
