/*
 * tests/unit/test_proto_props.c: MQTT 5 properties. Every property is put in every packet type
 * (and in a CONNECT's will) and must be accepted exactly where MQTT 5.0 section 2.2.2.2 allows it;
 * duplicates, value rules, unknown identifiers and damaged property sections are refused.
 */
#include <stdlib.h>

#include "proto/mqtt.h"
#include "tests/unit/test.h"

typedef struct {
    uint8_t id;
    const char *bytes; /* a valid occurrence: identifier and value */
    size_t len;
    uint32_t kinds; /* bit 0: will; bit t: packet type t */
} sample_t;

#define B(t) (1u << (t))
#define WILL 1u
#define ACKS (B(MQTT_PUBACK) | B(MQTT_PUBREC) | B(MQTT_PUBREL) | B(MQTT_PUBCOMP))
#define S(id, str, kinds) {id, str, sizeof(str) - 1, kinds}

/* Written from the specification's table, independently of proto/props.c. */
static const sample_t samples[] = {
    S(0x01, "\x01\x01", B(MQTT_PUBLISH) | WILL),
    S(0x02, "\x02\x00\x00\x00\x3C", B(MQTT_PUBLISH) | WILL),
    S(0x03, "\x03\x00\x01j", B(MQTT_PUBLISH) | WILL),
    S(0x08, "\x08\x00\x03r/1", B(MQTT_PUBLISH) | WILL),
    S(0x09, "\x09\x00\x02\x01\x02", B(MQTT_PUBLISH) | WILL),
    S(0x0B, "\x0B\x05", B(MQTT_PUBLISH) | B(MQTT_SUBSCRIBE)),
    S(0x11, "\x11\x00\x00\x00\x0A", B(MQTT_CONNECT) | B(MQTT_CONNACK) | B(MQTT_DISCONNECT)),
    S(0x12, "\x12\x00\x01i", B(MQTT_CONNACK)),
    S(0x13, "\x13\x00\x0A", B(MQTT_CONNACK)),
    S(0x15, "\x15\x00\x03" "ace", B(MQTT_CONNECT) | B(MQTT_CONNACK) | B(MQTT_AUTH)),
    S(0x16, "\x15\x00\x03" "ace\x16\x00\x01" "d", B(MQTT_CONNECT) | B(MQTT_CONNACK) | B(MQTT_AUTH)),
    S(0x17, "\x17\x01", B(MQTT_CONNECT)),
    S(0x18, "\x18\x00\x00\x00\x05", WILL),
    S(0x19, "\x19\x01", B(MQTT_CONNECT)),
    S(0x1A, "\x1A\x00\x01x", B(MQTT_CONNACK)),
    S(0x1C, "\x1C\x00\x01s", B(MQTT_CONNACK) | B(MQTT_DISCONNECT)),
    S(0x1F, "\x1F\x00\x01r",
      B(MQTT_CONNACK) | ACKS | B(MQTT_SUBACK) | B(MQTT_UNSUBACK) | B(MQTT_DISCONNECT) |
          B(MQTT_AUTH)),
    S(0x21, "\x21\x00\x0A", B(MQTT_CONNECT) | B(MQTT_CONNACK)),
    S(0x22, "\x22\x00\x0A", B(MQTT_CONNECT) | B(MQTT_CONNACK)),
    S(0x23, "\x23\x00\x01", B(MQTT_PUBLISH)),
    S(0x24, "\x24\x01", B(MQTT_CONNACK)),
    S(0x25, "\x25\x01", B(MQTT_CONNACK)),
    S(0x26, "\x26\x00\x01k\x00\x01v",
      WILL | B(MQTT_CONNECT) | B(MQTT_CONNACK) | B(MQTT_PUBLISH) | ACKS | B(MQTT_SUBSCRIBE) |
          B(MQTT_SUBACK) | B(MQTT_UNSUBSCRIBE) | B(MQTT_UNSUBACK) | B(MQTT_DISCONNECT) |
          B(MQTT_AUTH)),
    S(0x27, "\x27\x00\x00\x10\x00", B(MQTT_CONNECT) | B(MQTT_CONNACK)),
    S(0x28, "\x28\x01", B(MQTT_CONNACK)),
    S(0x29, "\x29\x01", B(MQTT_CONNACK)),
    S(0x2A, "\x2A\x01", B(MQTT_CONNACK)),
};
#define N_SAMPLES (sizeof samples / sizeof samples[0])

/* The packet kinds that carry properties: 0 is the will of a CONNECT. */
static const unsigned kinds[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15};

typedef struct {
    uint8_t b[1024];
    size_t n;
} buf_t;

static void put(buf_t *b, const void *p, size_t n)
{
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void put_varint(buf_t *b, size_t v)
{
    do {
        uint8_t c = v & 0x7F;
        v >>= 7;
        if (v)
            c |= 0x80;
        b->b[b->n++] = c;
    } while (v);
}

#define PUTS(b, lit) put(b, lit, sizeof(lit) - 1)

/* Fixed header in front of a body. */
static size_t frame(uint8_t first, const buf_t *body, uint8_t *out)
{
    buf_t h = {{0}, 0};
    h.b[h.n++] = first;
    put_varint(&h, body->n);
    memcpy(out, h.b, h.n);
    memcpy(out + h.n, body->b, body->n);
    return h.n + body->n;
}

/*
 * A minimal valid MQTT 5 packet of the given kind whose property section is `props`, and the
 * context of the side that receives it.
 */
static size_t build(unsigned kind, const void *props, size_t plen, uint8_t *out, proto_ctx_t *ctx)
{
    buf_t b = {{0}, 0};
    proto_ctx_t server = {PROTO_ROLE_SERVER, MQTT_V5, true, 0};
    proto_ctx_t client = {PROTO_ROLE_CLIENT, MQTT_V5, false, 0};
    proto_ctx_t fresh = {PROTO_ROLE_SERVER, 0, false, 0};
    uint8_t first = (uint8_t)(kind << 4);
    *ctx = server;
    switch (kind) {
    case 0:
        PUTS(&b, "\x00\x04MQTT\x05\x06\x00\x0A\x00\x00\x01" "c");
        put_varint(&b, plen);
        put(&b, props, plen);
        PUTS(&b, "\x00\x01t\x00\x00");
        first = 0x10;
        *ctx = fresh;
        break;
    case MQTT_CONNECT:
        PUTS(&b, "\x00\x04MQTT\x05\x02\x00\x0A");
        put_varint(&b, plen);
        put(&b, props, plen);
        PUTS(&b, "\x00\x01" "c");
        *ctx = fresh;
        break;
    case MQTT_CONNACK:
        PUTS(&b, "\x00\x00");
        put_varint(&b, plen);
        put(&b, props, plen);
        *ctx = client;
        break;
    case MQTT_PUBLISH:
        PUTS(&b, "\x00\x01t\x00\x01");
        put_varint(&b, plen);
        put(&b, props, plen);
        PUTS(&b, "x");
        first = 0x32;
        *ctx = client; /* a server's PUBLISH may carry subscription identifiers */
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        PUTS(&b, "\x00\x01");
        put_varint(&b, plen);
        put(&b, props, plen);
        if (kind == MQTT_SUBSCRIBE)
            PUTS(&b, "\x00\x01" "a\x00");
        else
            PUTS(&b, "\x00\x01" "a");
        first |= 2;
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        PUTS(&b, "\x00\x01");
        put_varint(&b, plen);
        put(&b, props, plen);
        PUTS(&b, "\x00");
        *ctx = client;
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        b.b[b.n++] = kind == MQTT_AUTH ? 0x18 : 0x00;
        put_varint(&b, plen);
        put(&b, props, plen);
        break;
    default: /* the four acknowledgements */
        PUTS(&b, "\x00\x01\x00");
        put_varint(&b, plen);
        put(&b, props, plen);
        if (kind == MQTT_PUBREL)
            first |= 2;
        break;
    }
    return frame(first, &b, out);
}

/* The property set a kind's packet stores its properties in. */
static const mqtt_props_t *props_of(unsigned kind, const mqtt_packet_t *p)
{
    switch (kind) {
    case 0:
        return &p->u.connect.will_props;
    case MQTT_CONNECT:
        return &p->u.connect.props;
    case MQTT_CONNACK:
        return &p->u.connack.props;
    case MQTT_PUBLISH:
        return &p->u.publish.props;
    case MQTT_SUBSCRIBE:
        return &p->u.subscribe.props;
    case MQTT_UNSUBSCRIBE:
        return &p->u.unsubscribe.props;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return &p->u.suback.props;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        return &p->u.reason.props;
    default:
        return &p->u.ack.props;
    }
}

static mqtt_rc_t decode_props(unsigned kind, const void *props, size_t plen, mqtt_packet_t *p)
{
    uint8_t buf[1024];
    proto_ctx_t ctx;
    size_t n = build(kind, props, plen, buf, &ctx);
    /* decode from an exact-size heap copy so that any overread is caught by ASan */
    uint8_t *heap = malloc(n);
    memcpy(heap, buf, n);
    static uint8_t keep[64][1024];
    static unsigned slot;
    mqtt_rc_t rc = proto_decode(&ctx, heap, n, p, NULL);
    /* keep the bytes alive for the caller's checks, since the packet points into them */
    memcpy(keep[slot % 64], heap, n);
    if (rc == MQTT_RC_SUCCESS) {
        mqtt_packet_t again;
        proto_packet_free(p);
        rc = proto_decode(&ctx, keep[slot % 64], n, &again, NULL);
        *p = again;
    }
    slot++;
    free(heap);
    return rc;
}

TEST(packets_without_properties_are_valid)
{
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        mqtt_packet_t p;
        ASSERT_EQ(decode_props(kinds[k], "", 0, &p), MQTT_RC_SUCCESS);
        ASSERT_EQ(props_of(kinds[k], &p)->present, 0);
        ASSERT(p.owned == NULL || kinds[k] == MQTT_SUBSCRIBE || kinds[k] == MQTT_UNSUBSCRIBE);
        proto_packet_free(&p);
    }
}

TEST(every_property_in_every_packet)
{
    int accepted = 0, refused = 0;
    for (size_t i = 0; i < N_SAMPLES; i++) {
        const sample_t *s = &samples[i];
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            unsigned kind = kinds[k];
            bool allowed = (s->kinds & (kind ? B(kind) : WILL)) != 0;
            mqtt_packet_t p;
            mqtt_rc_t rc = decode_props(kind, s->bytes, s->len, &p);
            if (allowed) {
                if (rc != MQTT_RC_SUCCESS)
                    fprintf(stderr, "  property 0x%02x kind %u refused\n", s->id, kind);
                ASSERT_EQ(rc, MQTT_RC_SUCCESS);
                ASSERT(props_of(kind, &p)->present & MQTT_PROP_BIT(s->id));
                accepted++;
            } else {
                if (rc != MQTT_RC_PROTOCOL_ERROR)
                    fprintf(stderr, "  property 0x%02x kind %u: 0x%02x\n", s->id, kind, rc);
                ASSERT_EQ(rc, MQTT_RC_PROTOCOL_ERROR);
                ASSERT(p.owned == NULL);
                refused++;
            }
            proto_packet_free(&p);
        }
    }
    ASSERT_EQ(accepted + refused, (int)(N_SAMPLES * (sizeof kinds / sizeof kinds[0])));
    ASSERT(accepted > 50);
}

TEST(property_values_are_stored)
{
    static const char connack[] =
        "\x11\x00\x01\x00\x02\x12\x00\x02id\x13\x01\x00\x1A\x00\x01r"
        "\x1C\x00\x01s\x1F\x00\x02ok\x21\x00\x07\x22\x00\x08\x24\x00\x25\x01"
        "\x27\x00\x00\x01\x00\x28\x00\x29\x01\x2A\x00";
    static const char will[] = "\x01\x01\x02\x00\x00\x01\x00\x03\x00\x01j\x08\x00\x01r"
                               "\x09\x00\x01\xFF\x18\x00\x00\x00\x09";
    mqtt_packet_t p;
    ASSERT_EQ(decode_props(MQTT_CONNACK, connack, sizeof connack - 1, &p), MQTT_RC_SUCCESS);
    const mqtt_props_t *q = &p.u.connack.props;
    ASSERT_EQ(q->session_expiry, 0x00010002);
    ASSERT_EQ(q->assigned_client_id.len, 2);
    ASSERT_MEM_EQ(q->assigned_client_id.p, "id", 2);
    ASSERT_EQ(q->server_keep_alive, 256);
    ASSERT_MEM_EQ(q->response_info.p, "r", 1);
    ASSERT_MEM_EQ(q->server_reference.p, "s", 1);
    ASSERT_MEM_EQ(q->reason_string.p, "ok", 2);
    ASSERT_EQ(q->receive_maximum, 7);
    ASSERT_EQ(q->topic_alias_maximum, 8);
    ASSERT_EQ(q->maximum_qos, 0);
    ASSERT_EQ(q->retain_available, 1);
    ASSERT_EQ(q->maximum_packet_size, 256);
    ASSERT_EQ(q->wildcard_sub_available, 0);
    ASSERT_EQ(q->sub_id_available, 1);
    ASSERT_EQ(q->shared_sub_available, 0);
    ASSERT(p.owned == NULL);

    ASSERT_EQ(decode_props(0, will, sizeof will - 1, &p), MQTT_RC_SUCCESS);
    q = &p.u.connect.will_props;
    ASSERT_EQ(q->payload_format, 1);
    ASSERT_EQ(q->message_expiry, 256);
    ASSERT_MEM_EQ(q->content_type.p, "j", 1);
    ASSERT_MEM_EQ(q->response_topic.p, "r", 1);
    ASSERT_EQ(q->correlation_data.len, 1);
    ASSERT_EQ(q->correlation_data.p[0], 0xFF);
    ASSERT_EQ(q->will_delay, 9);
    ASSERT_EQ(p.u.connect.props.present, 0);

    ASSERT_EQ(decode_props(MQTT_CONNECT,
                           "\x17\x00\x19\x01\x15\x00\x01m\x16\x00\x00", 11, &p),
              MQTT_RC_SUCCESS);
    q = &p.u.connect.props;
    ASSERT_EQ(q->request_problem_info, 0);
    ASSERT_EQ(q->request_response_info, 1);
    ASSERT_EQ(q->auth_method.len, 1);
    ASSERT_EQ(q->auth_data.len, 0);
    ASSERT(q->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA));
}

TEST(duplicates_are_protocol_errors)
{
    for (size_t i = 0; i < N_SAMPLES; i++) {
        const sample_t *s = &samples[i];
        if (s->id == MQTT_PROP_USER_PROPERTY)
            continue;
        uint8_t twice[64];
        memcpy(twice, s->bytes, s->len);
        memcpy(twice + s->len, s->bytes, s->len);
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            unsigned kind = kinds[k];
            if (!(s->kinds & (kind ? B(kind) : WILL)))
                continue;
            if (s->id == MQTT_PROP_SUBSCRIPTION_ID && kind == MQTT_PUBLISH)
                continue; /* may repeat from a server, see below */
            mqtt_packet_t p;
            ASSERT_EQ(decode_props(kind, twice, 2 * s->len, &p), MQTT_RC_PROTOCOL_ERROR);
            ASSERT(p.owned == NULL);
        }
    }
}

TEST(user_properties_repeat)
{
    mqtt_packet_t p;
    static const char three[] = "\x26\x00\x01" "a\x00\x01" "1\x26\x00\x01" "a\x00\x01" "2"
                                "\x26\x00\x00\x00\x00";
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        ASSERT_EQ(decode_props(kinds[k], three, sizeof three - 1, &p), MQTT_RC_SUCCESS);
        const mqtt_props_t *q = props_of(kinds[k], &p);
        ASSERT_EQ(q->n_user, 3);
        ASSERT_MEM_EQ(q->user[0].name.p, "a", 1);
        ASSERT_MEM_EQ(q->user[1].value.p, "2", 1);
        ASSERT_EQ(q->user[2].name.len, 0);
        ASSERT_EQ(q->user[2].value.len, 0);
        ASSERT(p.owned != NULL);
        proto_packet_free(&p);
    }
}

TEST(subscription_ids_repeat_only_from_a_server)
{
    static const char ids[] = "\x0B\x01\x0B\xFF\x7F\x0B\xFF\xFF\xFF\x7F";
    uint8_t buf[128];
    proto_ctx_t ctx;
    mqtt_packet_t p;
    size_t n = build(MQTT_PUBLISH, ids, sizeof ids - 1, buf, &ctx);
    ASSERT_EQ(ctx.role, PROTO_ROLE_CLIENT);
    ASSERT_EQ(proto_decode(&ctx, buf, n, &p, NULL), MQTT_RC_SUCCESS);
    ASSERT_EQ(p.u.publish.props.n_sub_ids, 3);
    ASSERT_EQ(p.u.publish.props.sub_ids[0], 1);
    ASSERT_EQ(p.u.publish.props.sub_ids[1], 16383);
    ASSERT_EQ(p.u.publish.props.sub_ids[2], 268435455);
    ASSERT_EQ(p.u.publish.payload_len, 1);
    proto_packet_free(&p);
    /* a client may not send one at all */
    ctx.role = PROTO_ROLE_SERVER;
    ctx.connected = true;
    ASSERT_EQ(proto_decode(&ctx, buf, n, &p, NULL), MQTT_RC_PROTOCOL_ERROR);
    n = build(MQTT_PUBLISH, ids, 2, buf, &ctx);
    ctx.role = PROTO_ROLE_SERVER;
    ctx.connected = true;
    ASSERT_EQ(proto_decode(&ctx, buf, n, &p, NULL), MQTT_RC_PROTOCOL_ERROR);
    /* a 5-byte variable byte integer is malformed */
    ASSERT_EQ(decode_props(MQTT_PUBLISH, "\x0B\xFF\xFF\xFF\xFF\x01", 6, &p), MQTT_RC_MALFORMED);
    ASSERT_EQ(decode_props(MQTT_SUBSCRIBE, "\x0B\x80\x80\x80\x80\x01", 6, &p), MQTT_RC_MALFORMED);
    /* non-minimal but 4 bytes long: accepted */
    ASSERT_EQ(decode_props(MQTT_SUBSCRIBE, "\x0B\x81\x80\x80\x00", 5, &p), MQTT_RC_SUCCESS);
    ASSERT_EQ(p.u.subscribe.props.sub_ids[0], 1);
    proto_packet_free(&p);
}

TEST(value_rules)
{
    static const struct {
        unsigned kind;
        const char *bytes;
        size_t len;
    } bad[] = {
        {MQTT_PUBLISH, "\x01\x02", 2},                     /* payload format 2 */
        {0, "\x01\xFF", 2},                                /* will payload format */
        {MQTT_CONNECT, "\x17\x02", 2},                     /* request problem info */
        {MQTT_CONNECT, "\x19\x02", 2},                     /* request response info */
        {MQTT_CONNECT, "\x21\x00\x00", 3},                 /* receive maximum 0 */
        {MQTT_CONNACK, "\x21\x00\x00", 3},                 /* receive maximum 0 */
        {MQTT_CONNECT, "\x27\x00\x00\x00\x00", 5},         /* maximum packet size 0 */
        {MQTT_CONNACK, "\x27\x00\x00\x00\x00", 5},         /* maximum packet size 0 */
        {MQTT_PUBLISH, "\x0B\x00", 2},                     /* subscription id 0 */
        {MQTT_SUBSCRIBE, "\x0B\x00", 2},                   /* subscription id 0 */
        {MQTT_CONNACK, "\x24\x02", 2},                     /* maximum QoS 2 */
        {MQTT_CONNACK, "\x25\x02", 2},                     /* retain available */
        {MQTT_CONNACK, "\x28\x02", 2},                     /* wildcard available */
        {MQTT_CONNACK, "\x29\x03", 2},                     /* sub ids available */
        {MQTT_CONNACK, "\x2A\x80", 2},                     /* shared available */
        {MQTT_PUBLISH, "\x08\x00\x03" "a/#", 6},           /* response topic wildcard */
        {0, "\x08\x00\x01+", 4},                           /* will response topic */
        {MQTT_PUBLISH, "\x08\x00\x00", 3},                 /* empty response topic */
        {MQTT_CONNECT, "\x16\x00\x01x", 4},                /* auth data without method */
        {MQTT_AUTH, "\x16\x00\x01x", 4},                   /* auth data without method */
        {MQTT_CONNACK, "\x16\x00\x01x", 4},                /* auth data without method */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mqtt_packet_t p;
        mqtt_rc_t rc = decode_props(bad[i].kind, bad[i].bytes, bad[i].len, &p);
        if (rc != MQTT_RC_PROTOCOL_ERROR)
            fprintf(stderr, "  case %zu: 0x%02x\n", i, rc);
        ASSERT_EQ(rc, MQTT_RC_PROTOCOL_ERROR);
        ASSERT(p.owned == NULL);
    }
    /* a Topic Alias of 0 has its own reason code (MQTT 5 3.3.2.3.4) */
    mqtt_packet_t p;
    ASSERT_EQ(decode_props(MQTT_PUBLISH, "\x23\x00\x00", 3, &p), MQTT_RC_TOPIC_ALIAS_INVALID);
    ASSERT(p.owned == NULL);
    /* the allowed edges */
    ASSERT_EQ(decode_props(MQTT_CONNACK, "\x22\x00\x00\x13\x00\x00\x11\x00\x00\x00\x00", 11, &p),
              MQTT_RC_SUCCESS);
    ASSERT_EQ(decode_props(MQTT_PUBLISH, "\x23\xFF\xFF\x02\x00\x00\x00\x00", 8, &p),
              MQTT_RC_SUCCESS);
    ASSERT_EQ(p.u.publish.props.topic_alias, 65535);
    ASSERT_EQ(decode_props(MQTT_CONNECT, "\x27\xFF\xFF\xFF\xFF\x21\xFF\xFF", 8, &p),
              MQTT_RC_SUCCESS);
    ASSERT_EQ(p.u.connect.props.maximum_packet_size, 0xFFFFFFFFu);
    ASSERT_EQ(p.u.connect.props.receive_maximum, 65535);
}

TEST(unknown_identifiers_are_malformed)
{
    static const uint8_t ids[] = {0x00, 0x04, 0x05, 0x06, 0x07, 0x0A, 0x0C, 0x10, 0x14,
                                  0x1B, 0x1D, 0x1E, 0x20, 0x2B, 0x7F, 0x80, 0xFF};
    for (size_t i = 0; i < sizeof ids; i++) {
        uint8_t prop[3] = {ids[i], 0x01, 0x01};
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            mqtt_packet_t p;
            ASSERT_EQ(decode_props(kinds[k], prop, sizeof prop, &p), MQTT_RC_MALFORMED);
        }
    }
}

TEST(damaged_property_sections_are_malformed)
{
    mqtt_packet_t p;
    /* each sample cut short by one or more bytes */
    for (size_t i = 0; i < N_SAMPLES; i++) {
        const sample_t *s = &samples[i];
        unsigned kind = 0;
        while (!(s->kinds & (kind ? B(kind) : WILL)))
            kind++;
        for (size_t cut = 1; cut < s->len; cut++) {
            /* the property section ends inside the value: the value is truncated */
            bool whole_method = s->id == MQTT_PROP_AUTH_DATA && cut == 6;
            ASSERT_EQ(decode_props(kind, s->bytes, cut, &p),
                      whole_method ? MQTT_RC_SUCCESS : MQTT_RC_MALFORMED);
            proto_packet_free(&p);
        }
    }
    /* property length pointing past the end of the packet */
    static const uint8_t past[] = {0x40, 0x05, 0x00, 0x01, 0x00, 0x09, 0x1F};
    proto_ctx_t server = {PROTO_ROLE_SERVER, MQTT_V5, true, 0};
    ASSERT_EQ(proto_decode(&server, past, sizeof past, &p, NULL), MQTT_RC_MALFORMED);
    /* a string property whose length passes the end of the property section */
    static const uint8_t str_past[] = {0x40, 0x08, 0x00, 0x01, 0x00, 0x02, 0x1F, 0x00, 0x03, 'a'};
    ASSERT_EQ(proto_decode(&server, str_past, sizeof str_past, &p, NULL), MQTT_RC_MALFORMED);
    /* a 5-byte property length */
    static const uint8_t long_len[] = {0x40, 0x08, 0x00, 0x01, 0x00, 0x80, 0x80, 0x80, 0x80, 0x00};
    ASSERT_EQ(proto_decode(&server, long_len, sizeof long_len, &p, NULL), MQTT_RC_MALFORMED);
    /* invalid UTF-8 in strings, user properties (name and value) */
    ASSERT_EQ(decode_props(MQTT_PUBACK, "\x1F\x00\x01\x00", 4, &p), MQTT_RC_MALFORMED);
    ASSERT_EQ(decode_props(MQTT_PUBLISH, "\x03\x00\x03\xED\xA0\x80", 6, &p), MQTT_RC_MALFORMED);
    ASSERT_EQ(decode_props(MQTT_PUBACK, "\x26\x00\x01\xC0\x00\x00", 6, &p), MQTT_RC_MALFORMED);
    ASSERT_EQ(decode_props(MQTT_PUBACK, "\x26\x00\x00\x00\x01\xFF", 6, &p), MQTT_RC_MALFORMED);
    /* binary data may hold anything */
    ASSERT_EQ(decode_props(MQTT_PUBLISH, "\x09\x00\x03\x00\xED\xFF", 6, &p), MQTT_RC_SUCCESS);
}

TEST(encoder_writes_only_allowed_properties)
{
    mqtt_user_prop_t up = {{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}};
    mqtt_packet_t p = {.type = MQTT_PUBACK};
    p.u.ack.id = 3;
    /* properties that may not appear in PUBACK are left out: the shortest form remains */
    p.u.ack.props.present =
        MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS) | MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
    p.u.ack.props.topic_alias = 4;
    uint8_t buf[64];
    ASSERT_EQ(proto_encode(&p, MQTT_V5, buf, sizeof buf), 4);
    p.u.ack.props.present |= MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
    p.u.ack.props.reason_string.p = (const uint8_t *)"why";
    p.u.ack.props.reason_string.len = 3;
    p.u.ack.props.n_user = 1;
    p.u.ack.props.user = &up;
    static const uint8_t want[] = {0x40, 0x11, 0x00, 0x03, 0x00, 0x0D, 0x1F, 0x00, 0x03, 'w',
                                   'h',  'y',  0x26, 0x00, 0x01, 'k',  0x00, 0x01, 'v'};
    ASSERT_EQ(proto_encode(&p, MQTT_V5, buf, sizeof buf), sizeof want);
    ASSERT_MEM_EQ(buf, want, sizeof want);
    /* subscription identifiers: variable byte integers of every length */
    uint32_t ids[] = {1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455};
    mqtt_packet_t pub = {.type = MQTT_PUBLISH}, d;
    pub.u.publish.topic.p = (const uint8_t *)"t";
    pub.u.publish.topic.len = 1;
    pub.u.publish.props.n_sub_ids = 8;
    pub.u.publish.props.sub_ids = ids;
    size_t n = proto_encode(&pub, MQTT_V5, buf, sizeof buf);
    ASSERT_EQ(n, 2 + 3 + 1 + 8 + (1 + 1 + 2 + 2 + 3 + 3 + 4 + 4));
    proto_ctx_t client = {PROTO_ROLE_CLIENT, MQTT_V5, true, 0};
    ASSERT_EQ(proto_decode(&client, buf, n, &d, NULL), MQTT_RC_SUCCESS);
    ASSERT_EQ(d.u.publish.props.n_sub_ids, 8);
    ASSERT_MEM_EQ(d.u.publish.props.sub_ids, ids, sizeof ids);
    proto_packet_free(&d);
    /* out of range identifiers cannot be encoded */
    ids[0] = 268435456;
    ASSERT_EQ(proto_encoded_size(&pub, MQTT_V5), 0);
    ids[0] = 0;
    ASSERT_EQ(proto_encode(&pub, MQTT_V5, buf, sizeof buf), 0);
    /* below MQTT 5 nothing of it is written */
    ASSERT_EQ(proto_encode(&pub, MQTT_V311, buf, sizeof buf), 5);
}

TEST(will_properties_only_in_the_will)
{
    mqtt_packet_t p;
    /* will delay is a will property, not a CONNECT property */
    ASSERT_EQ(decode_props(MQTT_CONNECT, "\x18\x00\x00\x00\x01", 5, &p), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(decode_props(0, "\x18\x00\x00\x00\x01", 5, &p), MQTT_RC_SUCCESS);
    ASSERT_EQ(p.u.connect.will_props.will_delay, 1);
    /* session expiry is a CONNECT property, not a will property */
    ASSERT_EQ(decode_props(0, "\x11\x00\x00\x00\x01", 5, &p), MQTT_RC_PROTOCOL_ERROR);
    /* topic alias and subscription id are PUBLISH-only, never in a will */
    ASSERT_EQ(decode_props(0, "\x23\x00\x01", 3, &p), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(decode_props(0, "\x0B\x01", 2, &p), MQTT_RC_PROTOCOL_ERROR);
}

int main(void)
{
    RUN(packets_without_properties_are_valid);
    RUN(every_property_in_every_packet);
    RUN(property_values_are_stored);
    RUN(duplicates_are_protocol_errors);
    RUN(user_properties_repeat);
    RUN(subscription_ids_repeat_only_from_a_server);
    RUN(value_rules);
    RUN(unknown_identifiers_are_malformed);
    RUN(damaged_property_sections_are_malformed);
    RUN(encoder_writes_only_allowed_properties);
    RUN(will_properties_only_in_the_will);
    return test_summary();
}
