/*
 * tests/unit/test_proto_malformed.c: packets that must be refused, with the reason code MQTT 5
 * gives for each rule: truncation at every byte, reserved flags, bad QoS, wrong direction,
 * connection state, CONNECT rules, topic names and filters, and random damage.
 */
#include <stdlib.h>

#include "proto/mqtt.h"
#include "tests/unit/test.h"

static const proto_ctx_t srv5 = {PROTO_ROLE_SERVER, MQTT_V5, true, 0};
static const proto_ctx_t srv4 = {PROTO_ROLE_SERVER, MQTT_V311, true, 0};
static const proto_ctx_t srv3 = {PROTO_ROLE_SERVER, MQTT_V31, true, 0};
static const proto_ctx_t cli5 = {PROTO_ROLE_CLIENT, MQTT_V5, false, 0};
static const proto_ctx_t cli4 = {PROTO_ROLE_CLIENT, MQTT_V311, false, 0};
static const proto_ctx_t fresh = {PROTO_ROLE_SERVER, 0, false, 0};

/* Decodes from an exact-size heap copy so that ASan sees any read past the frame. */
static mqtt_rc_t dec(const proto_ctx_t *ctx, const void *bytes, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, bytes, n);
    mqtt_packet_t p;
    const char *err = NULL;
    mqtt_rc_t rc = proto_decode(ctx, copy, n, &p, &err);
    if (rc != MQTT_RC_SUCCESS && (p.owned != NULL || err == NULL || err[0] == '\0'))
        rc = (mqtt_rc_t)0xFF; /* a failure must leave nothing and say why */
    if (rc == MQTT_RC_SUCCESS && err != NULL)
        rc = (mqtt_rc_t)0xFE;
    proto_packet_free(&p);
    free(copy);
    return rc;
}

#define DEC(ctx, lit) dec(ctx, lit, sizeof(lit) - 1)

/* Rebuilds a packet with its body cut to `keep` bytes (and a matching remaining length). */
static size_t cut_body(const uint8_t *pkt, size_t body_at, size_t keep, uint8_t *out)
{
    out[0] = pkt[0];
    size_t h = 1;
    size_t v = keep;
    do {
        uint8_t c = v & 0x7F;
        v >>= 7;
        out[h++] = v ? (uint8_t)(c | 0x80) : c;
    } while (v);
    memcpy(out + h, pkt + body_at, keep);
    return h + keep;
}

/* Every cut of the body must fail; cuts up to `must_fail` bytes for packets with a payload. */
static int truncations_fail(const proto_ctx_t *ctx, const uint8_t *pkt, size_t n, size_t upto)
{
    uint8_t buf[512];
    size_t body_at = 2; /* all test packets here have a 1-byte remaining length */
    for (size_t keep = 0; keep < upto && keep < n - body_at; keep++) {
        size_t m = cut_body(pkt, body_at, keep, buf);
        mqtt_rc_t rc = dec(ctx, buf, m);
        if (rc == MQTT_RC_SUCCESS || rc >= 0xFE) {
            fprintf(stderr, "  cut at %zu: 0x%02x\n", keep, rc);
            return 0;
        }
        /* the frame itself cut short, without fixing the header, is malformed too */
        if (dec(ctx, pkt, body_at + keep) != MQTT_RC_MALFORMED)
            return 0;
    }
    return dec(ctx, pkt, n) == MQTT_RC_SUCCESS;
}

TEST(truncated_at_every_byte)
{
    static const uint8_t connect5[] = {
        0x10, 0x36, 0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, 0xEE, 0x00, 0x3C, 0x09, 0x21,
        0x00, 0x0A, 0x26, 0x00, 0x01, 'k',  0x00, 0x00, 0x00, 0x02, 'i',  'd',  0x05, 0x18,
        0x00, 0x00, 0x00, 0x05, 0x00, 0x03, 'a',  '/',  'b',  0x00, 0x03, 'b',  'y',  'e',
        0x00, 0x04, 'u',  's',  'e',  'r',  0x00, 0x06, 's',  'e',  'c',  'r',  'e',  't'};
    ASSERT(truncations_fail(&fresh, connect5, sizeof connect5, 1000));
    static const uint8_t connect4[] = {0x10, 0x1B, 0x00, 0x04, 'M',  'Q',  'T',  'T',
                                       0x04, 0xEE, 0x00, 0x3C, 0x00, 0x01, 'c',  0x00,
                                       0x01, 'w',  0x00, 0x03, 'b',  'y',  'e',  0x00,
                                       0x01, 'u',  0x00, 0x01, 'p'};
    ASSERT(truncations_fail(&fresh, connect4, sizeof connect4, 1000));
    static const uint8_t connect3[] = {0x10, 0x11, 0x00, 0x06, 'M',  'Q',  'I',  's', 'd', 'p',
                                       0x03, 0x02, 0x00, 0x3C, 0x00, 0x03, 'a', 'b', 'c'};
    ASSERT(truncations_fail(&fresh, connect3, sizeof connect3, 1000));
    /* PUBLISH: every cut before the payload fails (any payload length is valid) */
    static const uint8_t publish5[] = {0x32, 0x13, 0x00, 0x03, 'a',  '/',  'b',
                                       0x00, 0x05, 0x0B, 0x26, 0x00, 0x01, 'k',
                                       0x00, 0x02, 'v',  'v',  0x23, 0x00, 0x02};
    ASSERT(truncations_fail(&srv5, publish5, sizeof publish5, sizeof publish5 - 2));
    static const uint8_t subscribe5[] = {0x82, 0x0C, 0x00, 0x0A, 0x02, 0x0B, 0x03,
                                         0x00, 0x04, 'a',  '/',  '+',  '/', 0x01};
    /* one byte short of the last: a filter without options */
    ASSERT(truncations_fail(&srv5, subscribe5, sizeof subscribe5, 1000));
    static const uint8_t subscribe4[] = {0x82, 0x08, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01};
    ASSERT(truncations_fail(&srv4, subscribe4, sizeof subscribe4, 1000));
    static const uint8_t unsubscribe5[] = {0xA2, 0x07, 0x00, 0x0B, 0x00, 0x00, 0x02, 'a', 'b'};
    ASSERT(truncations_fail(&srv5, unsubscribe5, sizeof unsubscribe5, 1000));
    static const uint8_t connack5[] = {0x20, 0x08, 0x00, 0x00, 0x05, 0x21, 0x00, 0x0A, 0x24, 0x01};
    ASSERT(truncations_fail(&cli5, connack5, sizeof connack5, 1000));
    static const uint8_t connack4[] = {0x20, 0x02, 0x00, 0x00};
    ASSERT(truncations_fail(&cli4, connack4, sizeof connack4, 1000));
    static const uint8_t puback4[] = {0x40, 0x02, 0x00, 0x01};
    ASSERT(truncations_fail(&srv4, puback4, sizeof puback4, 1000));
    static const uint8_t suback5[] = {0x90, 0x04, 0x00, 0x01, 0x00, 0x01};
    ASSERT(truncations_fail(&cli5, suback5, sizeof suback5, 1000));
    /* a v5 acknowledgement with properties: cuts inside the properties fail */
    static const uint8_t puback5[] = {0x40, 0x09, 0x00, 0x07, 0x80, 0x05, 0x1F, 0x00, 0x02, 'n', 'o'};
    uint8_t buf[32];
    for (size_t keep = 4; keep < 9; keep++)
        ASSERT_EQ(dec(&srv5, buf, cut_body(puback5, 2, keep, buf)), MQTT_RC_MALFORMED);
    ASSERT_EQ(dec(&srv5, buf, cut_body(puback5, 2, 3, buf)), MQTT_RC_SUCCESS); /* rc only */
    ASSERT_EQ(dec(&srv5, buf, cut_body(puback5, 2, 2, buf)), MQTT_RC_SUCCESS); /* id only */
    ASSERT_EQ(dec(&srv5, buf, cut_body(puback5, 2, 1, buf)), MQTT_RC_MALFORMED);
}

TEST(frame_length_must_match)
{
    ASSERT_EQ(dec(&srv4, "\xC0", 1), MQTT_RC_MALFORMED);
    ASSERT_EQ(dec(&srv4, "", 0), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\xC0\x00\x00"), MQTT_RC_MALFORMED); /* one byte too many */
    ASSERT_EQ(DEC(&srv4, "\x40\x03\x00\x01"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\xC0\x80\x80\x80\x80\x00"), MQTT_RC_MALFORMED); /* 5-byte length */
    ASSERT_EQ(DEC(&srv4, "\xC0\x80\x80\x80\x00"), MQTT_RC_SUCCESS);       /* non-minimal */
    ASSERT_EQ(DEC(&srv4, "\x40\x82\x00\x00\x01"), MQTT_RC_SUCCESS);
}

TEST(extra_bytes_after_content)
{
    ASSERT_EQ(DEC(&srv4, "\xC0\x01\x00"), MQTT_RC_MALFORMED);         /* PINGREQ */
    ASSERT_EQ(DEC(&cli4, "\xD0\x01\x00"), MQTT_RC_MALFORMED);         /* PINGRESP */
    ASSERT_EQ(DEC(&srv4, "\xE0\x01\x00"), MQTT_RC_MALFORMED);         /* 3.1.1 DISCONNECT */
    ASSERT_EQ(DEC(&srv4, "\x40\x03\x00\x01\x00"), MQTT_RC_MALFORMED); /* 3.1.1 PUBACK */
    ASSERT_EQ(DEC(&srv4, "\x62\x03\x00\x01\x00"), MQTT_RC_MALFORMED); /* 3.1.1 PUBREL */
    ASSERT_EQ(DEC(&cli4, "\x20\x03\x00\x00\x00"), MQTT_RC_MALFORMED); /* 3.1.1 CONNACK */
    ASSERT_EQ(DEC(&cli4, "\xB0\x03\x00\x01\x00"), MQTT_RC_MALFORMED); /* 3.1.1 UNSUBACK */
    ASSERT_EQ(DEC(&srv5, "\x40\x05\x00\x01\x00\x00\x00"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv5, "\xE0\x03\x00\x00\x00"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv5, "\xF0\x03\x18\x00\x00"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&cli5, "\x20\x04\x00\x00\x00\x00"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&fresh, "\x10\x0E\x00\x04MQTT\x04\x02\x00\x3C\x00\x01" "c\x00"),
              MQTT_RC_MALFORMED);
}

TEST(reserved_fixed_header_flags)
{
    /* every non-PUBLISH type with every wrong flag nibble */
    static const struct {
        uint8_t type;
        const proto_ctx_t *ctx;
        const char *body;
        size_t len;
    } pk[] = {
        {MQTT_CONNACK, &cli4, "\x00\x00", 2},  {MQTT_PUBACK, &srv4, "\x00\x01", 2},
        {MQTT_PUBREC, &srv4, "\x00\x01", 2},   {MQTT_PUBREL, &srv4, "\x00\x01", 2},
        {MQTT_PUBCOMP, &srv4, "\x00\x01", 2},  {MQTT_SUBSCRIBE, &srv4, "\x00\x01\x00\x01" "a\x00", 6},
        {MQTT_SUBACK, &cli4, "\x00\x01\x00", 3}, {MQTT_UNSUBSCRIBE, &srv4, "\x00\x01\x00\x01" "a", 5},
        {MQTT_UNSUBACK, &cli4, "\x00\x01", 2}, {MQTT_PINGREQ, &srv4, "", 0},
        {MQTT_PINGRESP, &cli4, "", 0},         {MQTT_DISCONNECT, &srv4, "", 0},
        {MQTT_AUTH, &srv5, "", 0},
    };
    for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++) {
        uint8_t right = (pk[i].type == MQTT_PUBREL || pk[i].type == MQTT_SUBSCRIBE ||
                         pk[i].type == MQTT_UNSUBSCRIBE)
                            ? 2
                            : 0;
        for (uint8_t f = 0; f < 16; f++) {
            uint8_t buf[16];
            buf[0] = (uint8_t)(pk[i].type << 4 | f);
            buf[1] = (uint8_t)pk[i].len;
            memcpy(buf + 2, pk[i].body, pk[i].len);
            ASSERT_EQ(dec(pk[i].ctx, buf, 2 + pk[i].len),
                      f == right ? MQTT_RC_SUCCESS : MQTT_RC_MALFORMED);
        }
    }
    /* CONNECT */
    ASSERT_EQ(DEC(&fresh, "\x11\x0F\x00\x04MQTT\x04\x02\x00\x3C\x00\x03" "abc"),
              MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&fresh, "\x10\x0F\x00\x04MQTT\x04\x02\x00\x3C\x00\x03" "abc"),
              MQTT_RC_SUCCESS);
    /* MQTT 3.1 lets a client set DUP on a retried SUBSCRIBE, PUBREL, UNSUBSCRIBE */
    ASSERT_EQ(DEC(&srv3, "\x8A\x06\x00\x01\x00\x01" "a\x00"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv3, "\x6A\x02\x00\x01"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv3, "\x80\x06\x00\x01\x00\x01" "a\x00"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x8A\x06\x00\x01\x00\x01" "a\x00"), MQTT_RC_MALFORMED);
}

TEST(publish_flags)
{
    /* QoS 3 */
    ASSERT_EQ(DEC(&srv4, "\x36\x05\x00\x01t\x00\x01"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv5, "\x37\x06\x00\x01t\x00\x01\x00"), MQTT_RC_MALFORMED);
    /* DUP with QoS 0 */
    ASSERT_EQ(DEC(&srv5, "\x38\x04\x00\x01t\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv4, "\x38\x03\x00\x01t"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x39\x03\x00\x01t"), MQTT_RC_MALFORMED);
    /* the valid combinations */
    ASSERT_EQ(DEC(&srv4, "\x31\x03\x00\x01t"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv4, "\x3A\x05\x00\x01t\x00\x01"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv4, "\x3D\x05\x00\x01t\x00\x01"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv5, "\x3C\x06\x00\x01t\x00\x01\x00"), MQTT_RC_SUCCESS);
}

TEST(publish_topic_and_id)
{
    ASSERT_EQ(DEC(&srv4, "\x30\x05\x00\x03" "a/+"), MQTT_RC_TOPIC_NAME_INVALID);
    ASSERT_EQ(DEC(&srv4, "\x30\x05\x00\x03" "a/#"), MQTT_RC_TOPIC_NAME_INVALID);
    ASSERT_EQ(DEC(&srv5, "\x30\x04\x00\x01#\x00"), MQTT_RC_TOPIC_NAME_INVALID);
    ASSERT_EQ(DEC(&srv4, "\x30\x02\x00\x00"), MQTT_RC_TOPIC_NAME_INVALID);
    /* MQTT 5: an empty topic needs a topic alias */
    ASSERT_EQ(DEC(&srv5, "\x30\x03\x00\x00\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\x30\x06\x00\x00\x03\x23\x00\x01"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv5, "\x30\x06\x00\x00\x03\x23\x00\x00"), MQTT_RC_TOPIC_ALIAS_INVALID);
    ASSERT_EQ(DEC(&srv5, "\x30\x07\x00\x01t\x03\x23\x00\x01"), MQTT_RC_SUCCESS);
    /* packet identifier 0 with QoS > 0 */
    ASSERT_EQ(DEC(&srv4, "\x32\x05\x00\x01t\x00\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\x34\x06\x00\x01t\x00\x00\x00"), MQTT_RC_PROTOCOL_ERROR);
    /* bad UTF-8 in the topic */
    ASSERT_EQ(DEC(&srv4, "\x30\x04\x00\x02" "a\x00"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x30\x05\x00\x03\xED\xA0\x80"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x30\x04\x00\x02\xC0\xAF"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x30\x03\x00\x01\xFF"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x30\x05\x00\x03\xE2\x82\xAC"), MQTT_RC_SUCCESS); /* the euro sign */
    /* a topic length past the end */
    ASSERT_EQ(DEC(&srv4, "\x30\x03\x00\x05t"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x30\x01\x00"), MQTT_RC_MALFORMED);
}

TEST(packet_direction)
{
    /* packets only a server sends, received by a server */
    ASSERT_EQ(DEC(&srv4, "\x20\x02\x00\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\x90\x04\x00\x01\x00\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv4, "\xB0\x02\x00\x01"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv4, "\xD0\x00"), MQTT_RC_PROTOCOL_ERROR);
    /* packets only a client sends, received by a client */
    ASSERT_EQ(DEC(&cli4, "\x10\x0F\x00\x04MQTT\x04\x02\x00\x3C\x00\x03" "abc"),
              MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\x82\x06\x00\x01\x00\x01" "a\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\xA2\x05\x00\x01\x00\x01" "a"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\xC0\x00"), MQTT_RC_PROTOCOL_ERROR);
    /* DISCONNECT from a server exists only in MQTT 5 */
    ASSERT_EQ(DEC(&cli4, "\xE0\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli5, "\xE0\x00"), MQTT_RC_SUCCESS);
    /* AUTH only in MQTT 5, either way */
    ASSERT_EQ(DEC(&srv4, "\xF0\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\xF0\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\xF0\x00"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&cli5, "\xF0\x00"), MQTT_RC_SUCCESS);
    /* both ways */
    ASSERT_EQ(DEC(&cli4, "\x30\x03\x00\x01t"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&cli4, "\x62\x02\x00\x01"), MQTT_RC_SUCCESS);
    /* reserved type 0 */
    ASSERT_EQ(DEC(&srv4, "\x00\x00"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&cli4, "\x00\x00"), MQTT_RC_MALFORMED);
}

TEST(connection_state)
{
    static const char connect[] = "\x10\x0F\x00\x04MQTT\x04\x02\x00\x3C\x00\x03" "abc";
    /* a second CONNECT */
    ASSERT_EQ(DEC(&srv4, connect), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, connect), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&fresh, connect), MQTT_RC_SUCCESS);
    /* anything before CONNECT */
    ASSERT_EQ(DEC(&fresh, "\x30\x03\x00\x01t"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&fresh, "\xC0\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&fresh, "\xE0\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&fresh, "\x82\x06\x00\x01\x00\x01" "a\x00"), MQTT_RC_PROTOCOL_ERROR);
    /* a second CONNACK */
    proto_ctx_t connected_client = {PROTO_ROLE_CLIENT, MQTT_V311, true, 0};
    ASSERT_EQ(DEC(&connected_client, "\x20\x02\x00\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\x20\x02\x00\x00"), MQTT_RC_SUCCESS);
}

TEST(connect_rules)
{
    mqtt_packet_t p;
    /* reserved flag */
    ASSERT_EQ(DEC(&fresh, "\x10\x0F\x00\x04MQTT\x04\x03\x00\x3C\x00\x03" "abc"),
              MQTT_RC_MALFORMED);
    /* will QoS / retain without the will flag */
    ASSERT_EQ(DEC(&fresh, "\x10\x0F\x00\x04MQTT\x04\x0A\x00\x3C\x00\x03" "abc"),
              MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&fresh, "\x10\x0F\x00\x04MQTT\x04\x22\x00\x3C\x00\x03" "abc"),
              MQTT_RC_MALFORMED);
    /* will QoS 3 */
    ASSERT_EQ(DEC(&fresh, "\x10\x12\x00\x04MQTT\x04\x1E\x00\x3C\x00\x01" "c\x00\x01w\x00\x00"),
              MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&fresh, "\x10\x12\x00\x04MQTT\x04\x16\x00\x3C\x00\x01" "c\x00\x01w\x00\x00"),
              MQTT_RC_SUCCESS);
    /* password without user name: refused in 3.1.1, allowed in 5 */
    ASSERT_EQ(DEC(&fresh, "\x10\x10\x00\x04MQTT\x04\x42\x00\x3C\x00\x01" "c\x00\x01p"),
              MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&fresh, "\x10\x11\x00\x04MQTT\x05\x42\x00\x3C\x00\x00\x01" "c\x00\x01p"),
              MQTT_RC_SUCCESS);
    /* protocol name and level */
    ASSERT_EQ(DEC(&fresh, "\x10\x0D\x00\x04MQTX\x04\x02\x00\x3C\x00\x01" "c"),
              MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&fresh, "\x10\x0D\x00\x04mqtt\x04\x02\x00\x3C\x00\x01" "c"),
              MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&fresh, "\x10\x0D\x00\x04MQTT\x03\x02\x00\x3C\x00\x01" "c"),
              MQTT_RC_UNSUPPORTED_VERSION);
    ASSERT_EQ(DEC(&fresh, "\x10\x0F\x00\x06MQIsdp\x04\x02\x00\x3C\x00\x01" "c"),
              MQTT_RC_UNSUPPORTED_VERSION);
    ASSERT_EQ(DEC(&fresh, "\x10\x0F\x00\x06MQIsdp\x05\x02\x00\x3C\x00\x01" "c"),
              MQTT_RC_UNSUPPORTED_VERSION);
    static const uint8_t level6[] = "\x10\x0D\x00\x04MQTT\x06\x02\x00\x3C\x00\x01" "c";
    ASSERT_EQ(proto_decode(&fresh, level6, sizeof level6 - 1, &p, NULL),
              MQTT_RC_UNSUPPORTED_VERSION);
    ASSERT_EQ(p.type, MQTT_CONNECT);
    ASSERT_EQ(p.u.connect.level, 6); /* known, so the server can answer in kind */
    ASSERT(p.owned == NULL);
    ASSERT_EQ(DEC(&fresh, "\x10\x0D\x00\x04MQTT\x00\x02\x00\x3C\x00\x01" "c"),
              MQTT_RC_UNSUPPORTED_VERSION);
    /* client identifiers */
    ASSERT_EQ(DEC(&fresh, "\x10\x0C\x00\x04MQTT\x04\x02\x00\x3C\x00\x00"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&fresh, "\x10\x0C\x00\x04MQTT\x04\x00\x00\x3C\x00\x00"),
              MQTT_RC_CLIENT_ID_NOT_VALID);
    ASSERT_EQ(DEC(&fresh, "\x10\x0D\x00\x04MQTT\x05\x00\x00\x3C\x00\x00\x00"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&fresh, "\x10\x0E\x00\x06MQIsdp\x03\x02\x00\x3C\x00\x00"),
              MQTT_RC_CLIENT_ID_NOT_VALID);
    ASSERT_EQ(DEC(&fresh, "\x10\x0E\x00\x04MQTT\x04\x02\x00\x3C\x00\x02\xC3\x28"),
              MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&fresh, "\x10\x0D\x00\x04MQTT\x04\x02\x00\x3C\x00\x01\x00"), MQTT_RC_MALFORMED);
    /* will topic */
    ASSERT_EQ(DEC(&fresh, "\x10\x12\x00\x04MQTT\x04\x06\x00\x3C\x00\x01" "c\x00\x01#\x00\x00"),
              MQTT_RC_TOPIC_NAME_INVALID);
    ASSERT_EQ(DEC(&fresh, "\x10\x11\x00\x04MQTT\x04\x06\x00\x3C\x00\x01" "c\x00\x00\x00\x00"),
              MQTT_RC_TOPIC_NAME_INVALID);
    ASSERT_EQ(DEC(&fresh, "\x10\x12\x00\x04MQTT\x04\x06\x00\x3C\x00\x01" "c\x00\x01\x80\x00\x00"),
              MQTT_RC_MALFORMED);
    /* user name must be UTF-8; a password is binary */
    ASSERT_EQ(DEC(&fresh, "\x10\x10\x00\x04MQTT\x04\x82\x00\x3C\x00\x01" "c\x00\x01\xFE"),
              MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&fresh, "\x10\x12\x00\x04MQTT\x04\xC2\x00\x3C\x00\x01" "c\x00\x00\x00\x01\xFE"),
              MQTT_RC_SUCCESS);
    /* missing fields announced by the flags */
    ASSERT_EQ(DEC(&fresh, "\x10\x0D\x00\x04MQTT\x04\x82\x00\x3C\x00\x01" "c"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&fresh, "\x10\x0D\x00\x04MQTT\x04\x06\x00\x3C\x00\x01" "c"), MQTT_RC_MALFORMED);
}

TEST(subscribe_rules)
{
    /* empty list */
    ASSERT_EQ(DEC(&srv4, "\x82\x02\x00\x01"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\x82\x03\x00\x01\x00"), MQTT_RC_PROTOCOL_ERROR);
    /* packet identifier 0 */
    ASSERT_EQ(DEC(&srv4, "\x82\x06\x00\x00\x00\x01" "a\x00"), MQTT_RC_PROTOCOL_ERROR);
    /* options: QoS 3, reserved bits, retain handling 3 */
    ASSERT_EQ(DEC(&srv4, "\x82\x06\x00\x01\x00\x01" "a\x03"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x82\x06\x00\x01\x00\x01" "a\x04"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x82\x06\x00\x01\x00\x01" "a\x80"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv5, "\x82\x07\x00\x01\x00\x00\x01" "a\x03"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv5, "\x82\x07\x00\x01\x00\x00\x01" "a\x40"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv5, "\x82\x07\x00\x01\x00\x00\x01" "a\x80"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv5, "\x82\x07\x00\x01\x00\x00\x01" "a\x30"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\x82\x07\x00\x01\x00\x00\x01" "a\x2E"), MQTT_RC_SUCCESS);
    /* shared subscriptions */
    ASSERT_EQ(DEC(&srv5, "\x82\x10\x00\x01\x00\x00\x0A$share/g/a\x04"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\x82\x10\x00\x01\x00\x00\x0A$share/g/a\x01"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv5, "\x82\x0F\x00\x01\x00\x00\x09$share/ga\x01"),
              MQTT_RC_TOPIC_FILTER_INVALID);
    ASSERT_EQ(DEC(&srv5, "\x82\x10\x00\x01\x00\x00\x0A$share//ab\x01"),
              MQTT_RC_TOPIC_FILTER_INVALID);
    ASSERT_EQ(DEC(&srv5, "\x82\x0F\x00\x01\x00\x00\x09$share/g/\x01"),
              MQTT_RC_TOPIC_FILTER_INVALID);
    ASSERT_EQ(DEC(&srv5, "\x82\x11\x00\x01\x00\x00\x0B$share/g+/a\x01"),
              MQTT_RC_TOPIC_FILTER_INVALID);
    ASSERT_EQ(DEC(&srv5, "\x82\x11\x00\x01\x00\x00\x0B$share/#/ab\x01"),
              MQTT_RC_TOPIC_FILTER_INVALID);
    ASSERT_EQ(DEC(&srv5, "\x82\x11\x00\x01\x00\x00\x0B$share/g/a+\x01"),
              MQTT_RC_TOPIC_FILTER_INVALID);
    ASSERT_EQ(DEC(&srv4, "\x82\x0F\x00\x01\x00\x0A$share/g/#\x01"), MQTT_RC_SUCCESS);
    /* filter syntax */
    static const char *bad[] = {"a/#/b", "a+", "+a", "#a", "a/b#", "a/++", "##", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t buf[32] = {0x82, 0, 0x00, 0x01, 0x00, (uint8_t)strlen(bad[i])};
        size_t n = 6;
        memcpy(buf + n, bad[i], strlen(bad[i]));
        n += strlen(bad[i]);
        buf[n++] = 0x01;
        buf[1] = (uint8_t)(n - 2);
        ASSERT_EQ(dec(&srv4, buf, n), MQTT_RC_TOPIC_FILTER_INVALID);
    }
    ASSERT_EQ(DEC(&srv4, "\x82\x06\x00\x01\x00\x01\x00\x01"), MQTT_RC_MALFORMED); /* U+0000 */
    /* the second of two entries is bad */
    ASSERT_EQ(DEC(&srv4, "\x82\x0A\x00\x01\x00\x01" "a\x00\x00\x01" "b\x03"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\x82\x09\x00\x01\x00\x01" "a\x00\x00\x01" "b"), MQTT_RC_MALFORMED);
}

TEST(unsubscribe_rules)
{
    ASSERT_EQ(DEC(&srv4, "\xA2\x02\x00\x01"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\xA2\x03\x00\x01\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv4, "\xA2\x05\x00\x00\x00\x01" "a"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv4, "\xA2\x07\x00\x01\x00\x03" "a#b"), MQTT_RC_TOPIC_FILTER_INVALID);
    ASSERT_EQ(DEC(&srv4, "\xA2\x06\x00\x01\x00\x02\xED\xBF"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\xA2\x06\x00\x01\x00\x03" "a"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&srv4, "\xA2\x0C\x00\x01\x00\x08$share/x"), MQTT_RC_TOPIC_FILTER_INVALID);
}

TEST(acknowledgement_rules)
{
    static const uint8_t types[] = {0x40, 0x50, 0x62, 0x70};
    for (size_t i = 0; i < 4; i++) {
        uint8_t zero[] = {types[i], 0x02, 0x00, 0x00};
        ASSERT_EQ(dec(&srv4, zero, 4), MQTT_RC_PROTOCOL_ERROR);
        ASSERT_EQ(dec(&srv5, zero, 4), MQTT_RC_PROTOCOL_ERROR);
        uint8_t bad_rc[] = {types[i], 0x03, 0x00, 0x01, 0x05};
        ASSERT_EQ(dec(&srv5, bad_rc, 5), MQTT_RC_PROTOCOL_ERROR);
        uint8_t too_short[] = {types[i], 0x01, 0x00};
        ASSERT_EQ(dec(&srv5, too_short, 3), MQTT_RC_MALFORMED);
    }
    /* PUBACK codes are not PUBREL codes and the reverse */
    ASSERT_EQ(DEC(&srv5, "\x40\x03\x00\x01\x92"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\x62\x03\x00\x01\x10"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\x50\x03\x00\x01\x99"), MQTT_RC_SUCCESS);
    /* SUBACK / UNSUBACK */
    ASSERT_EQ(DEC(&cli4, "\x90\x02\x00\x01"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\x90\x03\x00\x00\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\x90\x03\x00\x01\x03"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\x90\x03\x00\x01\x87"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli5, "\x90\x04\x00\x01\x00\x87"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&cli5, "\x90\x04\x00\x01\x00\x11"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli5, "\xB0\x04\x00\x01\x00\x11"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&cli5, "\xB0\x03\x00\x01\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli5, "\xB0\x04\x00\x01\x00\x01"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\xB0\x02\x00\x00"), MQTT_RC_PROTOCOL_ERROR);
    /* CONNACK */
    ASSERT_EQ(DEC(&cli4, "\x20\x02\x02\x00"), MQTT_RC_MALFORMED);
    ASSERT_EQ(DEC(&cli4, "\x20\x02\x01\x05"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli4, "\x20\x02\x00\x06"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli5, "\x20\x03\x00\x01\x00"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&cli5, "\x20\x03\x00\x87\x00"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&cli5, "\x20\x02\x00\x01"), MQTT_RC_SUCCESS); /* a 3.1.1 server's refusal */
    /* DISCONNECT and AUTH reason codes */
    ASSERT_EQ(DEC(&srv5, "\xE0\x01\x04"), MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv5, "\xE0\x01\x18"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\xF0\x01\x04"), MQTT_RC_PROTOCOL_ERROR);
    ASSERT_EQ(DEC(&srv5, "\xF0\x02\x19\x00"), MQTT_RC_SUCCESS);
}

/* Deterministic noise: random packets and damaged valid packets never crash or leak. */
static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

TEST(random_damage)
{
    static const uint8_t seeds[][40] = {
        {0x10, 0x21, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xC6, 0x00, 0x3C, 0x05, 0x11, 0x00,
         0x00, 0x00, 0x0A, 0x00, 0x01, 'c', 0x02, 0x01, 0x01, 0x00, 0x01, 'w', 0x00, 0x00, 0x00,
         0x01, 'u', 0x00, 0x01, 'p', 0x00, 0x00, 0x00, 0x00, 0x00},
        {0x82, 0x12, 0x00, 0x01, 0x07, 0x0B, 0x01, 0x26, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 'a',
         0x01, 0x00, 0x01, 'b', 0x02},
        {0x32, 0x0E, 0x00, 0x01, 't', 0x00, 0x01, 0x05, 0x23, 0x00, 0x01, 0x01, 0x01, 'p', 'q',
         'r'},
    };
    static const size_t lens[] = {35, 20, 16};
    const proto_ctx_t *ctxs[] = {&fresh, &srv5, &srv4, &cli5, &cli4, &srv3};
    int ok = 0, refused = 0;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t buf[64];
        size_t n;
        if (iter % 4 == 0) {
            n = 2 + rnd() % 40;
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)rnd();
            buf[1] = (uint8_t)((n - 2) & 0x7F);
        } else {
            size_t s = rnd() % 3;
            n = lens[s];
            memcpy(buf, seeds[s], n);
            for (int flips = 1 + (int)(rnd() % 3); flips > 0; flips--)
                buf[2 + rnd() % (n - 2)] ^= (uint8_t)(1u << (rnd() % 8));
        }
        mqtt_rc_t rc = dec(ctxs[rnd() % 6], buf, n);
        ASSERT(rc != 0xFF && rc != 0xFE);
        if (rc == MQTT_RC_SUCCESS)
            ok++;
        else
            refused++;
    }
    ASSERT(refused > 1000);
    ASSERT(ok > 10);
}

TEST(seeds_are_valid)
{
    /* the undamaged seeds used above decode */
    ASSERT_EQ(DEC(&fresh, "\x10\x21\x00\x04MQTT\x05\xC6\x00\x3C\x05\x11\x00\x00\x00\x0A\x00\x01"
                          "c\x02\x01\x01\x00\x01w\x00\x00\x00\x01u\x00\x01p"),
              MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv5, "\x82\x12\x00\x01\x07\x0B\x01\x26\x00\x00\x00\x00\x00\x01"
                         "a\x01\x00\x01" "b\x02"),
              MQTT_RC_SUCCESS);
    ASSERT_EQ(DEC(&srv5, "\x32\x0E\x00\x01t\x00\x01\x05\x23\x00\x01\x01\x01pqr"), MQTT_RC_SUCCESS);
}

TEST(err_desc_is_set)
{
    mqtt_packet_t p;
    const char *err = "unchanged";
    static const uint8_t ok[] = {0xC0, 0x00};
    ASSERT_EQ(proto_decode(&srv4, ok, 2, &p, &err), MQTT_RC_SUCCESS);
    ASSERT(err == NULL);
    static const uint8_t bad[] = {0xC1, 0x00};
    ASSERT_EQ(proto_decode(&srv4, bad, 2, &p, &err), MQTT_RC_MALFORMED);
    ASSERT(err != NULL && strstr(err, "reserved") != NULL);
    ASSERT_EQ(proto_decode(&srv4, bad, 2, &p, NULL), MQTT_RC_MALFORMED);
}

int main(void)
{
    RUN(truncated_at_every_byte);
    RUN(frame_length_must_match);
    RUN(extra_bytes_after_content);
    RUN(reserved_fixed_header_flags);
    RUN(publish_flags);
    RUN(publish_topic_and_id);
    RUN(packet_direction);
    RUN(connection_state);
    RUN(connect_rules);
    RUN(subscribe_rules);
    RUN(unsubscribe_rules);
    RUN(acknowledgement_rules);
    RUN(random_damage);
    RUN(seeds_are_valid);
    RUN(err_desc_is_set);
    return test_summary();
}
