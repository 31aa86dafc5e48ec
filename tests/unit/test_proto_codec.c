/*
 * tests/unit/test_proto_codec.c: encoding and decoding of every packet type, against bytes
 * written by hand from the MQTT 3.1, 3.1.1 and 5.0 specifications, and as round trips
 * (encode, decode, encode again: the bytes must not change).
 */
#include <stdlib.h>

#include "proto/mqtt.h"
#include "tests/unit/test.h"

static mqtt_str_t str(const char *s)
{
    mqtt_str_t r = {(const uint8_t *)s, (uint16_t)strlen(s)};
    return r;
}

static int str_eq(mqtt_str_t a, const char *s)
{
    return a.len == strlen(s) && (a.len == 0 || memcmp(a.p, s, a.len) == 0);
}

static proto_ctx_t server_ctx(uint8_t v)
{
    proto_ctx_t c = {PROTO_ROLE_SERVER, v, true, 0};
    return c;
}

static proto_ctx_t client_ctx(uint8_t v)
{
    proto_ctx_t c = {PROTO_ROLE_CLIENT, v, false, 0};
    return c;
}

/* The side that receives a packet of this type. */
static proto_ctx_t receiver(mqtt_type_t t, uint8_t v)
{
    switch (t) {
    case MQTT_CONNECT: {
        proto_ctx_t c = {PROTO_ROLE_SERVER, 0, false, 0};
        return c;
    }
    case MQTT_CONNACK:
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
    case MQTT_PINGRESP:
        return client_ctx(v);
    default:
        return server_ctx(v);
    }
}

/* Encodes, checks the size agrees, compares with the expected wire bytes. */
static int encodes_to(const mqtt_packet_t *pkt, uint8_t v, const uint8_t *want, size_t n)
{
    uint8_t buf[512];
    size_t sz = proto_encoded_size(pkt, v);
    size_t got = proto_encode(pkt, v, buf, sizeof buf);
    if (sz != n || got != n || memcmp(buf, want, n) != 0) {
        fprintf(stderr, "  size %zu encoded %zu want %zu:", sz, got, n);
        for (size_t i = 0; i < got; i++)
            fprintf(stderr, " %02x", buf[i]);
        fputc('\n', stderr);
        return 0;
    }
    return 1;
}

/* Encode, decode as the receiver, encode the decoded packet again: same bytes. */
static int round_trips(const mqtt_packet_t *pkt, uint8_t v, uint8_t *buf, size_t cap,
                       mqtt_packet_t *out)
{
    uint8_t again[1024];
    size_t n = proto_encode(pkt, v, buf, cap);
    if (n == 0)
        return 0;
    proto_ctx_t ctx = receiver(pkt->type, v);
    const char *err = NULL;
    mqtt_rc_t rc = proto_decode(&ctx, buf, n, out, &err);
    if (rc != MQTT_RC_SUCCESS) {
        fprintf(stderr, "  decode: 0x%02x %s\n", rc, err ? err : "");
        return 0;
    }
    size_t m = proto_encode(out, v, again, sizeof again);
    if (m != n || memcmp(again, buf, n) != 0) {
        proto_packet_free(out);
        return 0;
    }
    return 1;
}

static mqtt_rc_t decode_as(proto_ctx_t ctx, const uint8_t *b, size_t n, mqtt_packet_t *p)
{
    return proto_decode(&ctx, b, n, p, NULL);
}

/* ---- CONNECT ---------------------------------------------------------------------------------- */

TEST(connect_v311_wire)
{
    static const uint8_t wire[] = {0x10, 0x0F, 0x00, 0x04, 'M', 'Q',  'T',  'T', 0x04,
                                   0x02, 0x00, 0x3C, 0x00, 0x03, 'a', 'b', 'c'};
    mqtt_packet_t p = {.type = MQTT_CONNECT};
    p.u.connect.clean = true;
    p.u.connect.keepalive = 60;
    p.u.connect.client_id = str("abc");
    ASSERT(encodes_to(&p, MQTT_V311, wire, sizeof wire));
    mqtt_packet_t d;
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, 0, false, 0};
    ASSERT_EQ(proto_decode(&ctx, wire, sizeof wire, &d, NULL), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.type, MQTT_CONNECT);
    ASSERT_EQ(d.u.connect.level, MQTT_V311);
    ASSERT(str_eq(d.u.connect.protocol_name, "MQTT"));
    ASSERT(d.u.connect.clean);
    ASSERT(!d.u.connect.will);
    ASSERT_EQ(d.u.connect.keepalive, 60);
    ASSERT(str_eq(d.u.connect.client_id, "abc"));
    ASSERT(d.u.connect.client_id.p == wire + 14); /* points into the frame */
    ASSERT(d.owned == NULL);
}

TEST(connect_v31_wire)
{
    static const uint8_t wire[] = {0x10, 0x11, 0x00, 0x06, 'M',  'Q',  'I',  's', 'd', 'p',
                                   0x03, 0x02, 0x00, 0x3C, 0x00, 0x03, 'a', 'b', 'c'};
    mqtt_packet_t p = {.type = MQTT_CONNECT};
    p.u.connect.clean = true;
    p.u.connect.keepalive = 60;
    p.u.connect.client_id = str("abc");
    ASSERT(encodes_to(&p, MQTT_V31, wire, sizeof wire));
    mqtt_packet_t d;
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, 0, false, 0};
    ASSERT_EQ(proto_decode(&ctx, wire, sizeof wire, &d, NULL), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.connect.level, MQTT_V31);
    ASSERT(str_eq(d.u.connect.protocol_name, "MQIsdp"));
    ASSERT(str_eq(d.u.connect.client_id, "abc"));
}

TEST(connect_v5_wire)
{
    static const uint8_t wire[] = {0x10, 0x15, 0x00, 0x04, 'M',  'Q',  'T',  'T',
                                   0x05, 0x02, 0x00, 0x0A, 0x05, 0x11, 0x00, 0x00,
                                   0x00, 0x0A, 0x00, 0x03, 'c',  'i',  'd'};
    mqtt_packet_t p = {.type = MQTT_CONNECT};
    p.u.connect.clean = true;
    p.u.connect.keepalive = 10;
    p.u.connect.props.present = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
    p.u.connect.props.session_expiry = 10;
    p.u.connect.client_id = str("cid");
    ASSERT(encodes_to(&p, MQTT_V5, wire, sizeof wire));
    mqtt_packet_t d;
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, 0, false, 0};
    ASSERT_EQ(proto_decode(&ctx, wire, sizeof wire, &d, NULL), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.connect.level, MQTT_V5);
    ASSERT_EQ(d.u.connect.props.present, MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY));
    ASSERT_EQ(d.u.connect.props.session_expiry, 10);
    ASSERT(str_eq(d.u.connect.client_id, "cid"));
}

TEST(connect_v311_will_user_password_wire)
{
    static const uint8_t wire[] = {0x10, 0x1B, 0x00, 0x04, 'M',  'Q',  'T',  'T',  0x04, 0xEE,
                                   0x00, 0x3C, 0x00, 0x01, 'c',  0x00, 0x01, 'w',  0x00, 0x03,
                                   'b',  'y',  'e',  0x00, 0x01, 'u',  0x00, 0x01, 'p'};
    mqtt_packet_t p = {.type = MQTT_CONNECT};
    mqtt_connect_t *c = &p.u.connect;
    c->clean = true;
    c->will = true;
    c->will_qos = 1;
    c->will_retain = true;
    c->has_username = c->has_password = true;
    c->keepalive = 60;
    c->client_id = str("c");
    c->will_topic = str("w");
    c->will_payload = (const uint8_t *)"bye";
    c->will_payload_len = 3;
    c->username = str("u");
    c->password = str("p");
    ASSERT(encodes_to(&p, MQTT_V311, wire, sizeof wire));
    mqtt_packet_t d;
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, 0, false, 0};
    ASSERT_EQ(proto_decode(&ctx, wire, sizeof wire, &d, NULL), MQTT_RC_SUCCESS);
    ASSERT(d.u.connect.will && d.u.connect.will_retain && d.u.connect.clean);
    ASSERT_EQ(d.u.connect.will_qos, 1);
    ASSERT(str_eq(d.u.connect.will_topic, "w"));
    ASSERT_EQ(d.u.connect.will_payload_len, 3);
    ASSERT_MEM_EQ(d.u.connect.will_payload, "bye", 3);
    ASSERT(d.u.connect.has_username && d.u.connect.has_password);
    ASSERT(str_eq(d.u.connect.username, "u"));
    ASSERT(str_eq(d.u.connect.password, "p"));
}

static void fill_connect(mqtt_packet_t *p, mqtt_user_prop_t *up)
{
    memset(p, 0, sizeof *p);
    p->type = MQTT_CONNECT;
    mqtt_connect_t *c = &p->u.connect;
    c->clean = false;
    c->will = true;
    c->will_qos = 2;
    c->has_username = c->has_password = true;
    c->keepalive = 300;
    c->client_id = str("client-1");
    c->will_topic = str("status/client-1");
    c->will_payload = (const uint8_t *)"offline";
    c->will_payload_len = 7;
    c->username = str("user");
    c->password = str("secret");
    up[0].name = str("k");
    up[0].value = str("v");
    up[1].name = str("k2");
    up[1].value = str("");
    c->props.present = MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM) |
                       MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD) |
                       MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA);
    c->props.receive_maximum = 20;
    c->props.auth_method = str("ace");
    c->props.auth_data = str("\x01\x02token");
    c->props.n_user = 2;
    c->props.user = up;
    c->will_props.present = MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY) |
                            MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE);
    c->will_props.will_delay = 30;
    c->will_props.content_type = str("text/plain");
    c->will_props.n_user = 1;
    c->will_props.user = up + 1;
}

TEST(connect_round_trip_all_versions)
{
    static const uint8_t versions[] = {MQTT_V31, MQTT_V311, MQTT_V5};
    for (size_t i = 0; i < 3; i++) {
        mqtt_packet_t p, d;
        mqtt_user_prop_t up[2];
        uint8_t buf[512];
        fill_connect(&p, up);
        ASSERT(round_trips(&p, versions[i], buf, sizeof buf, &d));
        const mqtt_connect_t *c = &d.u.connect;
        ASSERT_EQ(c->level, versions[i]);
        ASSERT(!c->clean);
        ASSERT_EQ(c->will_qos, 2);
        ASSERT_EQ(c->keepalive, 300);
        ASSERT(str_eq(c->client_id, "client-1"));
        ASSERT(str_eq(c->will_topic, "status/client-1"));
        ASSERT(str_eq(c->password, "secret"));
        if (versions[i] == MQTT_V5) {
            ASSERT_EQ(c->props.receive_maximum, 20);
            ASSERT(str_eq(c->props.auth_method, "ace"));
            ASSERT_EQ(c->props.auth_data.len, 7);
            ASSERT_EQ(c->props.n_user, 2);
            ASSERT(str_eq(c->props.user[0].name, "k"));
            ASSERT(str_eq(c->props.user[1].name, "k2"));
            ASSERT_EQ(c->will_props.will_delay, 30);
            ASSERT(str_eq(c->will_props.content_type, "text/plain"));
            ASSERT_EQ(c->will_props.n_user, 1);
            ASSERT(str_eq(c->will_props.user[0].name, "k2"));
            ASSERT(d.owned != NULL);
        } else {
            ASSERT_EQ(c->props.present, 0);
            ASSERT_EQ(c->props.n_user, 0);
            ASSERT(d.owned == NULL);
        }
        proto_packet_free(&d);
        ASSERT(d.owned == NULL);
    }
}

/* ---- CONNACK ---------------------------------------------------------------------------------- */

TEST(connack_wire)
{
    static const uint8_t v4[] = {0x20, 0x02, 0x01, 0x00};
    static const uint8_t v4_refused[] = {0x20, 0x02, 0x00, 0x05};
    static const uint8_t v5[] = {0x20, 0x03, 0x00, 0x00, 0x00};
    static const uint8_t v5_props[] = {0x20, 0x08, 0x00, 0x00, 0x05, 0x21, 0x00, 0x0A, 0x24, 0x01};
    mqtt_packet_t p = {.type = MQTT_CONNACK}, d;
    p.u.connack.session_present = true;
    ASSERT(encodes_to(&p, MQTT_V311, v4, sizeof v4));
    ASSERT(encodes_to(&p, MQTT_V31, v4, sizeof v4));
    ASSERT_EQ(decode_as(client_ctx(MQTT_V311), v4, sizeof v4, &d), MQTT_RC_SUCCESS);
    ASSERT(d.u.connack.session_present);
    ASSERT_EQ(d.u.connack.rc, 0);
    p.u.connack.session_present = false;
    p.u.connack.rc = MQTT311_CONNACK_NOT_AUTHORIZED;
    ASSERT(encodes_to(&p, MQTT_V311, v4_refused, sizeof v4_refused));
    ASSERT_EQ(decode_as(client_ctx(MQTT_V311), v4_refused, 4, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.connack.rc, 5);
    p.u.connack.rc = 0;
    ASSERT(encodes_to(&p, MQTT_V5, v5, sizeof v5));
    p.u.connack.props.present =
        MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM) | MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS);
    p.u.connack.props.receive_maximum = 10;
    p.u.connack.props.maximum_qos = 1;
    ASSERT(encodes_to(&p, MQTT_V5, v5_props, sizeof v5_props));
    /* the same CONNACK sent to a 3.1.1 client carries no properties */
    static const uint8_t v4_ok[] = {0x20, 0x02, 0x00, 0x00};
    ASSERT(encodes_to(&p, MQTT_V311, v4_ok, sizeof v4_ok));
    ASSERT_EQ(decode_as(client_ctx(MQTT_V5), v5_props, sizeof v5_props, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.connack.props.receive_maximum, 10);
    ASSERT_EQ(d.u.connack.props.maximum_qos, 1);
    ASSERT(d.owned == NULL);
}

TEST(connack_v5_round_trip_all_props)
{
    mqtt_user_prop_t up[1] = {{{(const uint8_t *)"a", 1}, {(const uint8_t *)"b", 1}}};
    mqtt_packet_t p = {.type = MQTT_CONNACK}, d;
    mqtt_props_t *pr = &p.u.connack.props;
    pr->present = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY) |
                  MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_ID) |
                  MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE) |
                  MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD) | MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA) |
                  MQTT_PROP_BIT(MQTT_PROP_RESPONSE_INFO) |
                  MQTT_PROP_BIT(MQTT_PROP_SERVER_REFERENCE) |
                  MQTT_PROP_BIT(MQTT_PROP_REASON_STRING) |
                  MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM) |
                  MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM) |
                  MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS) |
                  MQTT_PROP_BIT(MQTT_PROP_RETAIN_AVAILABLE) |
                  MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE) |
                  MQTT_PROP_BIT(MQTT_PROP_WILDCARD_SUB_AVAILABLE) |
                  MQTT_PROP_BIT(MQTT_PROP_SUB_ID_AVAILABLE) |
                  MQTT_PROP_BIT(MQTT_PROP_SHARED_SUB_AVAILABLE);
    pr->session_expiry = 0xFFFFFFFFu;
    pr->assigned_client_id = str("auto-1");
    pr->server_keep_alive = 120;
    pr->auth_method = str("ace");
    pr->auth_data = str("nonce");
    pr->response_info = str("resp/");
    pr->server_reference = str("other:1883");
    pr->reason_string = str("ok");
    pr->receive_maximum = 65535;
    pr->topic_alias_maximum = 10;
    pr->maximum_qos = 1;
    pr->retain_available = 0;
    pr->maximum_packet_size = 1 << 20;
    pr->wildcard_sub_available = 1;
    pr->sub_id_available = 0;
    pr->shared_sub_available = 1;
    pr->n_user = 1;
    pr->user = up;
    uint8_t buf[512];
    ASSERT(round_trips(&p, MQTT_V5, buf, sizeof buf, &d));
    const mqtt_props_t *q = &d.u.connack.props;
    ASSERT_EQ(q->present, pr->present | MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY));
    ASSERT_EQ(q->session_expiry, 0xFFFFFFFFu);
    ASSERT(str_eq(q->assigned_client_id, "auto-1"));
    ASSERT_EQ(q->server_keep_alive, 120);
    ASSERT(str_eq(q->auth_data, "nonce"));
    ASSERT(str_eq(q->response_info, "resp/"));
    ASSERT(str_eq(q->server_reference, "other:1883"));
    ASSERT(str_eq(q->reason_string, "ok"));
    ASSERT_EQ(q->receive_maximum, 65535);
    ASSERT_EQ(q->topic_alias_maximum, 10);
    ASSERT_EQ(q->maximum_qos, 1);
    ASSERT_EQ(q->retain_available, 0);
    ASSERT_EQ(q->maximum_packet_size, 1 << 20);
    ASSERT_EQ(q->wildcard_sub_available, 1);
    ASSERT_EQ(q->sub_id_available, 0);
    ASSERT_EQ(q->shared_sub_available, 1);
    ASSERT_EQ(q->n_user, 1);
    ASSERT(str_eq(q->user[0].value, "b"));
    proto_packet_free(&d);
}

/* ---- PUBLISH ---------------------------------------------------------------------------------- */

TEST(publish_wire)
{
    static const uint8_t q0[] = {0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'};
    static const uint8_t q1[] = {0x3B, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x12, 0x34, 'x'};
    static const uint8_t v5[] = {0x30, 0x0A, 0x00, 0x01, 't',  0x05,
                                 0x01, 0x01, 0x23, 0x00, 0x05, 'p'};
    mqtt_packet_t p = {.type = MQTT_PUBLISH}, d;
    p.u.publish.topic = str("a/b");
    p.u.publish.payload = (const uint8_t *)"hi";
    p.u.publish.payload_len = 2;
    ASSERT(encodes_to(&p, MQTT_V311, q0, sizeof q0));
    ASSERT(encodes_to(&p, MQTT_V31, q0, sizeof q0));
    ASSERT_EQ(decode_as(server_ctx(MQTT_V311), q0, sizeof q0, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.publish.qos, 0);
    ASSERT(str_eq(d.u.publish.topic, "a/b"));
    ASSERT_EQ(d.u.publish.payload_len, 2);
    ASSERT(d.u.publish.payload == q0 + 7);
    ASSERT(d.owned == NULL);

    p.u.publish.qos = 1;
    p.u.publish.dup = true;
    p.u.publish.retain = true;
    p.u.publish.id = 0x1234;
    p.u.publish.payload = (const uint8_t *)"x";
    p.u.publish.payload_len = 1;
    ASSERT(encodes_to(&p, MQTT_V311, q1, sizeof q1));
    ASSERT_EQ(decode_as(client_ctx(MQTT_V311), q1, sizeof q1, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.flags, 0x0B);
    ASSERT_EQ(d.u.publish.qos, 1);
    ASSERT(d.u.publish.dup && d.u.publish.retain);
    ASSERT_EQ(d.u.publish.id, 0x1234);

    memset(&p, 0, sizeof p);
    p.type = MQTT_PUBLISH;
    p.u.publish.topic = str("t");
    p.u.publish.payload = (const uint8_t *)"p";
    p.u.publish.payload_len = 1;
    p.u.publish.props.present =
        MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) | MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
    p.u.publish.props.payload_format = 1;
    p.u.publish.props.topic_alias = 5;
    ASSERT(encodes_to(&p, MQTT_V5, v5, sizeof v5));
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), v5, sizeof v5, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.publish.props.topic_alias, 5);
    ASSERT_EQ(d.u.publish.props.payload_format, 1);
    ASSERT_EQ(d.u.publish.payload_len, 1);
    ASSERT(d.owned == NULL); /* no user properties: nothing allocated */
}

TEST(publish_round_trip_all_versions)
{
    static const uint8_t versions[] = {MQTT_V31, MQTT_V311, MQTT_V5};
    static const uint8_t payload[300] = {1, 2, 3};
    for (size_t i = 0; i < 3; i++) {
        for (uint8_t qos = 0; qos < 3; qos++) {
            mqtt_user_prop_t up = {{(const uint8_t *)"n", 1}, {(const uint8_t *)"v", 1}};
            mqtt_packet_t p = {.type = MQTT_PUBLISH}, d;
            p.u.publish.qos = qos;
            p.u.publish.retain = qos == 1;
            p.u.publish.dup = qos == 2;
            p.u.publish.id = qos ? 77 : 0;
            p.u.publish.topic = str("sensors/ü/temp");
            p.u.publish.payload = payload;
            p.u.publish.payload_len = sizeof payload;
            p.u.publish.props.present = MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY) |
                                        MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
                                        MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA);
            p.u.publish.props.message_expiry = 3600;
            p.u.publish.props.response_topic = str("reply/1");
            p.u.publish.props.correlation_data = str("\x00\x01");
            p.u.publish.props.n_user = 1;
            p.u.publish.props.user = &up;
            uint8_t buf[1024];
            ASSERT(round_trips(&p, versions[i], buf, sizeof buf, &d));
            ASSERT_EQ(d.u.publish.qos, qos);
            ASSERT_EQ(d.u.publish.id, qos ? 77 : 0);
            ASSERT_EQ(d.u.publish.retain, qos == 1);
            ASSERT_EQ(d.u.publish.dup, qos == 2);
            ASSERT_EQ(d.u.publish.payload_len, sizeof payload);
            ASSERT_MEM_EQ(d.u.publish.payload, payload, sizeof payload);
            ASSERT(str_eq(d.u.publish.topic, "sensors/ü/temp"));
            if (versions[i] == MQTT_V5) {
                ASSERT_EQ(d.u.publish.props.message_expiry, 3600);
                ASSERT(str_eq(d.u.publish.props.response_topic, "reply/1"));
                ASSERT_EQ(d.u.publish.props.n_user, 1);
            } else {
                ASSERT_EQ(d.u.publish.props.present, 0);
            }
            proto_packet_free(&d);
        }
    }
}

TEST(publish_head_plus_payload_equals_packet)
{
    static uint8_t payload[70000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    static const size_t lens[] = {0, 1, 100, 127, 128, 16383, 16384, 70000};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        mqtt_packet_t p = {.type = MQTT_PUBLISH};
        p.u.publish.qos = 1;
        p.u.publish.id = 9;
        p.u.publish.topic = str("a/b/c");
        p.u.publish.payload = payload;
        p.u.publish.payload_len = (uint32_t)lens[k];
        p.u.publish.props.present = MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE);
        p.u.publish.props.content_type = str("json");
        for (uint8_t v = MQTT_V311; v <= MQTT_V5; v++) {
            static uint8_t whole[80000], joined[80000];
            size_t n = proto_encode(&p, v, whole, sizeof whole);
            ASSERT(n > lens[k]);
            ASSERT_EQ(n, proto_encoded_size(&p, v));
            size_t h = proto_encode_publish_head(&p, v, joined, 64);
            ASSERT(h > 0);
            ASSERT_EQ(h + lens[k], n);
            memcpy(joined + h, payload, lens[k]);
            ASSERT_MEM_EQ(joined, whole, n);
        }
    }
}

TEST(publish_head_rejects_other_types_and_small_buffers)
{
    mqtt_packet_t p = {.type = MQTT_PUBACK};
    uint8_t buf[64];
    p.u.ack.id = 1;
    ASSERT_EQ(proto_encode_publish_head(&p, MQTT_V5, buf, sizeof buf), 0);
    mqtt_packet_t q = {.type = MQTT_PUBLISH};
    q.u.publish.topic = str("topic");
    ASSERT_EQ(proto_encode_publish_head(&q, MQTT_V311, buf, 8), 0);
    ASSERT_EQ(proto_encode_publish_head(&q, MQTT_V311, buf, 9), 9);
}

/* ---- Acknowledgements ------------------------------------------------------------------------- */

TEST(acks_v311_wire)
{
    static const mqtt_type_t types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP};
    static const uint8_t first[] = {0x40, 0x50, 0x62, 0x70};
    for (size_t i = 0; i < 4; i++) {
        uint8_t wire[] = {first[i], 0x02, 0x00, 0x07};
        mqtt_packet_t p = {.type = types[i]}, d;
        p.u.ack.id = 7;
        p.u.ack.rc = 0x80; /* no reason codes before MQTT 5 */
        ASSERT(encodes_to(&p, MQTT_V311, wire, sizeof wire));
        ASSERT(encodes_to(&p, MQTT_V31, wire, sizeof wire));
        ASSERT_EQ(decode_as(server_ctx(MQTT_V311), wire, sizeof wire, &d), MQTT_RC_SUCCESS);
        ASSERT_EQ(d.type, types[i]);
        ASSERT_EQ(d.u.ack.id, 7);
        ASSERT_EQ(decode_as(client_ctx(MQTT_V311), wire, sizeof wire, &d), MQTT_RC_SUCCESS);
        /* the shortest MQTT 5 form is the same 4 bytes */
        p.u.ack.rc = 0;
        ASSERT(encodes_to(&p, MQTT_V5, wire, sizeof wire));
        ASSERT_EQ(decode_as(server_ctx(MQTT_V5), wire, sizeof wire, &d), MQTT_RC_SUCCESS);
        ASSERT_EQ(d.u.ack.rc, 0);
    }
}

TEST(acks_v5_wire)
{
    static const uint8_t rc_only[] = {0x40, 0x03, 0x00, 0x07, 0x10};
    static const uint8_t with_reason[] = {0x50, 0x09, 0x00, 0x07, 0x80, 0x05,
                                          0x1F, 0x00, 0x02, 'n',  'o'};
    static const uint8_t rel_not_found[] = {0x62, 0x03, 0x00, 0x07, 0x92};
    mqtt_packet_t p = {.type = MQTT_PUBACK}, d;
    p.u.ack.id = 7;
    p.u.ack.rc = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    ASSERT(encodes_to(&p, MQTT_V5, rc_only, sizeof rc_only));
    ASSERT_EQ(decode_as(client_ctx(MQTT_V5), rc_only, sizeof rc_only, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.ack.rc, 0x10);
    p.type = MQTT_PUBREC;
    p.u.ack.rc = MQTT_RC_UNSPECIFIED;
    p.u.ack.props.present = MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
    p.u.ack.props.reason_string = str("no");
    ASSERT(encodes_to(&p, MQTT_V5, with_reason, sizeof with_reason));
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), with_reason, sizeof with_reason, &d),
              MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.ack.rc, 0x80);
    ASSERT(str_eq(d.u.ack.props.reason_string, "no"));
    p.type = MQTT_PUBREL;
    p.u.ack.rc = MQTT_RC_PACKET_ID_NOT_FOUND;
    p.u.ack.props.present = 0;
    ASSERT(encodes_to(&p, MQTT_V5, rel_not_found, sizeof rel_not_found));
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), rel_not_found, 5, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.ack.rc, 0x92);
    /* rc 0 with an explicit empty property length is also accepted */
    static const uint8_t explicit_zero[] = {0x70, 0x04, 0x00, 0x07, 0x00, 0x00};
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), explicit_zero, 6, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.type, MQTT_PUBCOMP);
}

TEST(acks_round_trip_with_user_props)
{
    static const mqtt_type_t types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP};
    static const uint8_t rcs[] = {0x97, 0x91, 0x92, 0x00};
    mqtt_user_prop_t up[3] = {{{(const uint8_t *)"a", 1}, {(const uint8_t *)"1", 1}},
                              {{(const uint8_t *)"a", 1}, {(const uint8_t *)"2", 1}},
                              {{(const uint8_t *)"b", 1}, {(const uint8_t *)"3", 1}}};
    for (size_t i = 0; i < 4; i++) {
        mqtt_packet_t p = {.type = types[i]}, d;
        p.u.ack.id = 65535;
        p.u.ack.rc = rcs[i];
        p.u.ack.props.n_user = 3;
        p.u.ack.props.user = up;
        uint8_t buf[128];
        ASSERT(round_trips(&p, MQTT_V5, buf, sizeof buf, &d));
        ASSERT_EQ(d.u.ack.id, 65535);
        ASSERT_EQ(d.u.ack.rc, rcs[i]);
        ASSERT_EQ(d.u.ack.props.n_user, 3);
        ASSERT(str_eq(d.u.ack.props.user[1].value, "2"));
        ASSERT(str_eq(d.u.ack.props.user[2].name, "b"));
        ASSERT(d.owned != NULL);
        proto_packet_free(&d);
    }
}

/* ---- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK ---------------------------------------------- */

TEST(subscribe_wire)
{
    static const uint8_t v4[] = {0x82, 0x08, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01};
    static const uint8_t v5[] = {0x82, 0x0B, 0x00, 0x0A, 0x02, 0x0B, 0x03,
                                 0x00, 0x03, 'a',  '/',  '#',  0x1E};
    mqtt_sub_t s = {{(const uint8_t *)"a/b", 3}, 0x01};
    mqtt_packet_t p = {.type = MQTT_SUBSCRIBE}, d;
    p.u.subscribe.id = 10;
    p.u.subscribe.n = 1;
    p.u.subscribe.subs = &s;
    ASSERT(encodes_to(&p, MQTT_V311, v4, sizeof v4));
    ASSERT_EQ(decode_as(server_ctx(MQTT_V311), v4, sizeof v4, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.subscribe.id, 10);
    ASSERT_EQ(d.u.subscribe.n, 1);
    ASSERT(str_eq(d.u.subscribe.subs[0].filter, "a/b"));
    ASSERT_EQ(d.u.subscribe.subs[0].options, 1);
    proto_packet_free(&d);

    uint32_t sid = 3;
    s.filter = str("a/#");
    s.options = MQTT_SUBOPT_NO_LOCAL | MQTT_SUBOPT_RAP | (1 << 4) | 2;
    p.u.subscribe.props.n_sub_ids = 1;
    p.u.subscribe.props.sub_ids = &sid;
    ASSERT(encodes_to(&p, MQTT_V5, v5, sizeof v5));
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), v5, sizeof v5, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.subscribe.props.n_sub_ids, 1);
    ASSERT_EQ(d.u.subscribe.props.sub_ids[0], 3);
    ASSERT(d.u.subscribe.subs[0].options & MQTT_SUBOPT_NO_LOCAL);
    ASSERT(d.u.subscribe.subs[0].options & MQTT_SUBOPT_RAP);
    ASSERT_EQ(MQTT_SUBOPT_RH(d.u.subscribe.subs[0].options), 1);
    ASSERT_EQ(MQTT_SUBOPT_QOS(d.u.subscribe.subs[0].options), 2);
    proto_packet_free(&d);
    /* below MQTT 5 only the QoS bits of the options are sent */
    static const uint8_t v4_qos2[] = {0x82, 0x08, 0x00, 0x0A, 0x00, 0x03, 'a', '/', '#', 0x02};
    ASSERT(encodes_to(&p, MQTT_V311, v4_qos2, sizeof v4_qos2));
}

TEST(subscribe_round_trip_many)
{
    mqtt_sub_t subs[50];
    char names[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "t/%d/+", i);
        subs[i].filter = str(names[i]);
        subs[i].options = (uint8_t)(i % 3);
    }
    subs[49].filter = str("$share/grp/x/#");
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        mqtt_packet_t p = {.type = MQTT_SUBSCRIBE}, d;
        p.u.subscribe.id = 1;
        p.u.subscribe.n = 50;
        p.u.subscribe.subs = subs;
        uint8_t buf[2048];
        ASSERT(round_trips(&p, v, buf, sizeof buf, &d));
        ASSERT_EQ(d.u.subscribe.n, 50);
        for (int i = 0; i < 50; i++) {
            ASSERT_EQ(d.u.subscribe.subs[i].options, i % 3);
            ASSERT_EQ(d.u.subscribe.subs[i].filter.len, subs[i].filter.len);
            ASSERT_MEM_EQ(d.u.subscribe.subs[i].filter.p, subs[i].filter.p, subs[i].filter.len);
        }
        proto_packet_free(&d);
    }
}

TEST(suback_wire)
{
    static const uint8_t v4[] = {0x90, 0x04, 0x00, 0x0A, 0x01, 0x80};
    static const uint8_t v4_mapped[] = {0x90, 0x04, 0x00, 0x0A, 0x02, 0x80};
    static const uint8_t v5[] = {0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x87};
    static const uint8_t rcs4[] = {0x01, 0x80};
    static const uint8_t rcs5[] = {0x02, 0x87};
    mqtt_packet_t p = {.type = MQTT_SUBACK}, d;
    p.u.suback.id = 10;
    p.u.suback.n = 2;
    p.u.suback.rcs = rcs4;
    ASSERT(encodes_to(&p, MQTT_V311, v4, sizeof v4));
    ASSERT_EQ(decode_as(client_ctx(MQTT_V311), v4, sizeof v4, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.suback.n, 2);
    ASSERT_EQ(d.u.suback.rcs[0], 1);
    ASSERT_EQ(d.u.suback.rcs[1], 0x80);
    ASSERT(d.owned == NULL); /* the codes stay in the frame */
    p.u.suback.rcs = rcs5;
    ASSERT(encodes_to(&p, MQTT_V5, v5, sizeof v5));
    ASSERT(encodes_to(&p, MQTT_V311, v4_mapped, sizeof v4_mapped)); /* 0x87 -> 0x80 */
    ASSERT_EQ(decode_as(client_ctx(MQTT_V5), v5, sizeof v5, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.suback.rcs[1], 0x87);
}

TEST(unsubscribe_unsuback_wire)
{
    static const uint8_t un4[] = {0xA2, 0x05, 0x00, 0x0B, 0x00, 0x01, 'a'};
    static const uint8_t un5[] = {0xA2, 0x06, 0x00, 0x0B, 0x00, 0x00, 0x01, 'a'};
    static const uint8_t ack4[] = {0xB0, 0x02, 0x00, 0x0B};
    static const uint8_t ack5[] = {0xB0, 0x04, 0x00, 0x0B, 0x00, 0x11};
    mqtt_str_t f = str("a");
    mqtt_packet_t p = {.type = MQTT_UNSUBSCRIBE}, d;
    p.u.unsubscribe.id = 11;
    p.u.unsubscribe.n = 1;
    p.u.unsubscribe.filters = &f;
    ASSERT(encodes_to(&p, MQTT_V311, un4, sizeof un4));
    ASSERT(encodes_to(&p, MQTT_V5, un5, sizeof un5));
    ASSERT_EQ(decode_as(server_ctx(MQTT_V311), un4, sizeof un4, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.unsubscribe.n, 1);
    ASSERT(str_eq(d.u.unsubscribe.filters[0], "a"));
    proto_packet_free(&d);
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), un5, sizeof un5, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.unsubscribe.id, 11);
    proto_packet_free(&d);

    static const uint8_t rc[] = {0x11};
    mqtt_packet_t a = {.type = MQTT_UNSUBACK};
    a.u.suback.id = 11;
    a.u.suback.n = 1;
    a.u.suback.rcs = rc;
    ASSERT(encodes_to(&a, MQTT_V311, ack4, sizeof ack4));
    ASSERT(encodes_to(&a, MQTT_V5, ack5, sizeof ack5));
    ASSERT_EQ(decode_as(client_ctx(MQTT_V311), ack4, sizeof ack4, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.suback.id, 11);
    ASSERT_EQ(d.u.suback.n, 0);
    ASSERT_EQ(decode_as(client_ctx(MQTT_V5), ack5, sizeof ack5, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.suback.n, 1);
    ASSERT_EQ(d.u.suback.rcs[0], 0x11);
}

TEST(list_packets_round_trip_all_versions)
{
    mqtt_str_t filters[3] = {str("a/+/c"), str("#"), str("$share/g/d")};
    static const uint8_t rcs[3] = {0x00, 0x01, 0x02};
    mqtt_user_prop_t up = {{(const uint8_t *)"x", 1}, {(const uint8_t *)"y", 1}};
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        mqtt_packet_t p = {.type = MQTT_UNSUBSCRIBE}, d;
        uint8_t buf[256];
        p.u.unsubscribe.id = 500;
        p.u.unsubscribe.n = 3;
        p.u.unsubscribe.filters = filters;
        p.u.unsubscribe.props.n_user = 1;
        p.u.unsubscribe.props.user = &up;
        ASSERT(round_trips(&p, v, buf, sizeof buf, &d));
        ASSERT_EQ(d.u.unsubscribe.n, 3);
        ASSERT(str_eq(d.u.unsubscribe.filters[2], "$share/g/d"));
        ASSERT_EQ(d.u.unsubscribe.props.n_user, v == MQTT_V5 ? 1 : 0);
        proto_packet_free(&d);

        mqtt_packet_t s = {.type = MQTT_SUBACK};
        s.u.suback.id = 500;
        s.u.suback.n = 3;
        s.u.suback.rcs = rcs;
        s.u.suback.props.n_user = 1;
        s.u.suback.props.user = &up;
        ASSERT(round_trips(&s, v, buf, sizeof buf, &d));
        ASSERT_EQ(d.u.suback.n, 3);
        ASSERT_MEM_EQ(d.u.suback.rcs, rcs, 3);
        proto_packet_free(&d);

        static const uint8_t unrcs[3] = {0x00, 0x11, 0x87};
        s.type = MQTT_UNSUBACK;
        s.u.suback.rcs = unrcs;
        ASSERT(round_trips(&s, v, buf, sizeof buf, &d));
        ASSERT_EQ(d.u.suback.n, v == MQTT_V5 ? 3 : 0);
        proto_packet_free(&d);
    }
}

/* ---- PING, DISCONNECT, AUTH ------------------------------------------------------------------- */

TEST(ping_wire)
{
    static const uint8_t req[] = {0xC0, 0x00}, resp[] = {0xD0, 0x00};
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        mqtt_packet_t p = {.type = MQTT_PINGREQ}, d;
        ASSERT(encodes_to(&p, v, req, 2));
        ASSERT_EQ(decode_as(server_ctx(v), req, 2, &d), MQTT_RC_SUCCESS);
        ASSERT_EQ(d.type, MQTT_PINGREQ);
        p.type = MQTT_PINGRESP;
        ASSERT(encodes_to(&p, v, resp, 2));
        ASSERT_EQ(decode_as(client_ctx(v), resp, 2, &d), MQTT_RC_SUCCESS);
        ASSERT_EQ(d.type, MQTT_PINGRESP);
    }
}

TEST(disconnect_wire)
{
    static const uint8_t plain[] = {0xE0, 0x00};
    static const uint8_t with_will[] = {0xE0, 0x01, 0x04};
    static const uint8_t taken[] = {0xE0, 0x07, 0x8E, 0x05, 0x11, 0x00, 0x00, 0x00, 0x3C};
    mqtt_packet_t p = {.type = MQTT_DISCONNECT}, d;
    p.u.reason.rc = MQTT_RC_DISCONNECT_WITH_WILL;
    ASSERT(encodes_to(&p, MQTT_V311, plain, 2));
    ASSERT(encodes_to(&p, MQTT_V5, with_will, 3));
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), with_will, 3, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.reason.rc, 4);
    p.u.reason.rc = 0;
    ASSERT(encodes_to(&p, MQTT_V5, plain, 2));
    ASSERT_EQ(decode_as(server_ctx(MQTT_V311), plain, 2, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), plain, 2, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.reason.rc, 0);
    p.u.reason.rc = MQTT_RC_SESSION_TAKEN_OVER;
    p.u.reason.props.present = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
    p.u.reason.props.session_expiry = 60;
    ASSERT(encodes_to(&p, MQTT_V5, taken, sizeof taken));
    ASSERT_EQ(decode_as(client_ctx(MQTT_V5), taken, sizeof taken, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.reason.rc, 0x8E);
    ASSERT_EQ(d.u.reason.props.session_expiry, 60);
}

TEST(auth_wire)
{
    static const uint8_t empty[] = {0xF0, 0x00};
    static const uint8_t cont[] = {0xF0, 0x08, 0x18, 0x06, 0x15, 0x00, 0x03, 'a', 'c', 'e'};
    mqtt_packet_t p = {.type = MQTT_AUTH}, d;
    uint8_t buf[16];
    ASSERT(encodes_to(&p, MQTT_V5, empty, 2));
    ASSERT_EQ(proto_encoded_size(&p, MQTT_V311), 0); /* AUTH does not exist before MQTT 5 */
    ASSERT_EQ(proto_encode(&p, MQTT_V311, buf, sizeof buf), 0);
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), empty, 2, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.type, MQTT_AUTH);
    p.u.reason.rc = MQTT_RC_CONTINUE_AUTHENTICATION;
    p.u.reason.props.present = MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD);
    p.u.reason.props.auth_method = str("ace");
    ASSERT(encodes_to(&p, MQTT_V5, cont, sizeof cont));
    ASSERT_EQ(decode_as(client_ctx(MQTT_V5), cont, sizeof cont, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.reason.rc, 0x18);
    ASSERT(str_eq(d.u.reason.props.auth_method, "ace"));
    /* a reason code without properties keeps the property length in AUTH */
    static const uint8_t reauth[] = {0xF0, 0x02, 0x19, 0x00};
    p.u.reason.rc = MQTT_RC_REAUTHENTICATE;
    p.u.reason.props.present = 0;
    ASSERT(encodes_to(&p, MQTT_V5, reauth, sizeof reauth));
}

/* ---- Sizes and buffers ------------------------------------------------------------------------ */

TEST(encode_needs_exact_capacity)
{
    mqtt_packet_t p;
    mqtt_user_prop_t up[2];
    fill_connect(&p, up);
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
        uint8_t buf[512];
        size_t n = proto_encoded_size(&p, v);
        ASSERT(n > 0 && n < sizeof buf);
        for (size_t cap = 0; cap < n; cap++)
            ASSERT_EQ(proto_encode(&p, v, buf, cap), 0);
        ASSERT_EQ(proto_encode(&p, v, buf, n), n);
    }
}

TEST(remaining_length_sizes)
{
    /* remaining length 127 -> 1 byte, 128 -> 2 bytes, 16384 -> 3 bytes, 2097152 -> 4 bytes */
    static uint8_t payload[2097152];
    static uint8_t buf[2097152 + 16];
    static const struct {
        uint32_t rem;
        size_t hdr;
    } cases[] = {{127, 2}, {128, 3}, {16383, 3}, {16384, 4}, {2097151, 4}, {2097152, 5}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mqtt_packet_t p = {.type = MQTT_PUBLISH}, d;
        p.u.publish.topic = str("t");
        p.u.publish.payload = payload;
        p.u.publish.payload_len = cases[i].rem - 3;
        size_t n = proto_encode(&p, MQTT_V311, buf, sizeof buf);
        ASSERT_EQ(n, cases[i].hdr + cases[i].rem);
        size_t hdr;
        uint32_t rem;
        ASSERT_EQ(proto_frame(buf, n, 0, &hdr, &rem), 0);
        ASSERT_EQ(hdr, cases[i].hdr);
        ASSERT_EQ(rem, cases[i].rem);
        ASSERT_EQ(decode_as(server_ctx(MQTT_V311), buf, n, &d), MQTT_RC_SUCCESS);
        ASSERT_EQ(d.u.publish.payload_len, cases[i].rem - 3);
    }
}

TEST(too_large_to_encode)
{
    mqtt_packet_t p = {.type = MQTT_PUBLISH};
    p.u.publish.topic = str("t");
    p.u.publish.payload = (const uint8_t *)"";
    p.u.publish.payload_len = PROTO_MAX_REMAINING_LENGTH; /* plus the topic: too long */
    uint8_t buf[64];
    ASSERT_EQ(proto_encoded_size(&p, MQTT_V311), 0);
    ASSERT_EQ(proto_encode_publish_head(&p, MQTT_V311, buf, sizeof buf), 0);
    p.u.publish.payload_len = PROTO_MAX_REMAINING_LENGTH - 3;
    ASSERT_EQ(proto_encode_publish_head(&p, MQTT_V311, buf, sizeof buf), 8);
    ASSERT_EQ(buf[1], 0xFF);
    ASSERT_EQ(buf[4], 0x7F);
    mqtt_packet_t bad = {.type = (mqtt_type_t)0};
    ASSERT_EQ(proto_encoded_size(&bad, MQTT_V5), 0);
}

TEST(decoded_packet_arrays_are_one_block)
{
    /* user properties, subscriptions and a subscription id all live in pkt->owned */
    static const uint8_t wire[] = {0x82, 0x14, 0x00, 0x01, 0x09, 0x0B, 0x05, 0x26, 0x00,
                                   0x01, 'k',  0x00, 0x01, 'v',  0x00, 0x01, 'a',  0x00,
                                   0x00, 0x01, 'b',  0x01};
    mqtt_packet_t d;
    ASSERT_EQ(sizeof wire, 2 + 0x14);
    ASSERT_EQ(decode_as(server_ctx(MQTT_V5), wire, sizeof wire, &d), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.subscribe.n, 2);
    ASSERT_EQ(d.u.subscribe.props.n_user, 1);
    ASSERT(str_eq(d.u.subscribe.props.user[0].name, "k"));
    ASSERT(d.u.subscribe.props.user[0].value.p == wire + 13);
    ASSERT_EQ(d.u.subscribe.props.n_sub_ids, 1);
    ASSERT_EQ(d.u.subscribe.props.sub_ids[0], 5);
    const uint8_t *blk = d.owned;
    ASSERT(blk != NULL);
    ASSERT((const uint8_t *)d.u.subscribe.props.user == blk);
    ASSERT((const uint8_t *)d.u.subscribe.subs == blk + sizeof(mqtt_user_prop_t));
    ASSERT((const uint8_t *)d.u.subscribe.props.sub_ids ==
           blk + sizeof(mqtt_user_prop_t) + 2 * sizeof(mqtt_sub_t));
    ASSERT(str_eq(d.u.subscribe.subs[0].filter, "a"));
    ASSERT(str_eq(d.u.subscribe.subs[1].filter, "b"));
    ASSERT_EQ(d.u.subscribe.subs[1].options, 1);
    proto_packet_free(&d);
    ASSERT(d.owned == NULL);
    proto_packet_free(NULL);
}

int main(void)
{
    RUN(connect_v311_wire);
    RUN(connect_v31_wire);
    RUN(connect_v5_wire);
    RUN(connect_v311_will_user_password_wire);
    RUN(connect_round_trip_all_versions);
    RUN(connack_wire);
    RUN(connack_v5_round_trip_all_props);
    RUN(publish_wire);
    RUN(publish_round_trip_all_versions);
    RUN(publish_head_plus_payload_equals_packet);
    RUN(publish_head_rejects_other_types_and_small_buffers);
    RUN(acks_v311_wire);
    RUN(acks_v5_wire);
    RUN(acks_round_trip_with_user_props);
    RUN(subscribe_wire);
    RUN(subscribe_round_trip_many);
    RUN(suback_wire);
    RUN(unsubscribe_unsuback_wire);
    RUN(list_packets_round_trip_all_versions);
    RUN(ping_wire);
    RUN(disconnect_wire);
    RUN(auth_wire);
    RUN(encode_needs_exact_capacity);
    RUN(remaining_length_sizes);
    RUN(too_large_to_encode);
    RUN(decoded_packet_arrays_are_one_block);
    return test_summary();
}
