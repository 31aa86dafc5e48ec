/*
 * tests/unit/test_proto_limits.c: the decoder's receiver limit on MQTT 5 property bytes
 * (proto_ctx_t.max_props, the broker's max_properties_size). The limit counts every property block
 * of a packet together (a CONNECT's and its will's), is decided from the declared lengths before
 * any property is parsed, answers MQTT_RC_PACKET_TOO_LARGE, and 0 means no limit.
 */
#include <stdlib.h>

#include "proto/mqtt.h"
#include "tests/unit/test.h"

typedef struct {
    uint8_t b[4096];
    size_t n;
} buf_t;

static void put(buf_t *b, const void *p, size_t n)
{
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

#define PUTS(b, lit) put(b, lit, sizeof(lit) - 1)

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

/* A property block of exactly `len` bytes (0 or at least 5): user properties with an empty
 * name, each 5 bytes plus its value. */
static void put_props(buf_t *b, size_t len)
{
    put_varint(b, len);
    while (len > 0) {
        size_t take = len; /* bytes of this property */
        if (take > 205)
            take = len - 205 >= 5 ? 205 : len - 5;
        size_t v = take - 5;
        uint8_t head[] = {0x26, 0x00, 0x00, (uint8_t)(v >> 8), (uint8_t)v};
        put(b, head, sizeof head);
        memset(b->b + b->n, 'v', v);
        b->n += v;
        len -= take;
    }
}

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

static mqtt_rc_t dec(const proto_ctx_t *ctx, const uint8_t *f, size_t n)
{
    mqtt_packet_t p;
    const char *why = NULL;
    mqtt_rc_t rc = proto_decode(ctx, f, n, &p, &why);
    if (rc == MQTT_RC_SUCCESS)
        proto_packet_free(&p);
    else if (!why)
        return (mqtt_rc_t)0xFF; /* every refusal must say why */
    return rc;
}

static size_t publish_with(size_t plen, uint8_t *out)
{
    buf_t b = {{0}, 0};
    PUTS(&b, "\x00\x03" "a/b");
    put_props(&b, plen);
    PUTS(&b, "payload");
    return frame(0x30, &b, out);
}

TEST(publish_at_and_over_limit)
{
    uint8_t f[8192];
    size_t n = publish_with(300, f);
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, MQTT_V5, true, 300};
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_SUCCESS);
    ctx.max_props = 299;
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_PACKET_TOO_LARGE);
    ctx.max_props = 0; /* no limit */
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_SUCCESS);
    ctx.max_props = 1;
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_PACKET_TOO_LARGE);
}

TEST(empty_block_always_fits)
{
    uint8_t f[64];
    buf_t b = {{0}, 0};
    PUTS(&b, "\x00\x01t\x00"); /* topic "t", property length 0 */
    size_t n = frame(0x30, &b, f);
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, MQTT_V5, true, 1};
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_SUCCESS);
}

/* CONNECT properties and will properties count together. */
static size_t connect_with(size_t plen, size_t wlen, uint8_t *out)
{
    buf_t b = {{0}, 0};
    PUTS(&b, "\x00\x04MQTT\x05\x06\x00\x0A"); /* clean start + will */
    put_props(&b, plen);
    PUTS(&b, "\x00\x01" "c");
    put_props(&b, wlen);
    PUTS(&b, "\x00\x01w\x00\x01x");
    return frame(0x10, &b, out);
}

TEST(connect_and_will_blocks_add_up)
{
    uint8_t f[8192];
    size_t n = connect_with(100, 200, f);
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, 0, false, 300};
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_SUCCESS);
    ctx.max_props = 299;
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_PACKET_TOO_LARGE);
    ctx.max_props = 200; /* each block alone would fit: the packet does not */
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_PACKET_TOO_LARGE);
    ctx.max_props = 99; /* the CONNECT block alone is over */
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_PACKET_TOO_LARGE);
    mqtt_packet_t p;
    ctx.max_props = 299;
    ASSERT_EQ(proto_decode(&ctx, f, n, &p, NULL), MQTT_RC_PACKET_TOO_LARGE);
    ASSERT_EQ(p.u.connect.level, MQTT_V5); /* the server can still answer with CONNACK 0x95 */
}

/* Decided from the declared length: an oversized block with garbage inside is "too large", not
 * "malformed", so its content was never parsed. A length past the packet is still malformed. */
TEST(decided_before_parsing)
{
    uint8_t f[512];
    buf_t b = {{0}, 0};
    PUTS(&b, "\x00\x01t\x0A\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF");
    size_t n = frame(0x30, &b, f);
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, MQTT_V5, true, 9};
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_PACKET_TOO_LARGE);
    ctx.max_props = 0;
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_MALFORMED);
    buf_t t = {{0}, 0};
    PUTS(&t, "\x00\x01t\x7F\x26"); /* declares 127 bytes, has 1 */
    n = frame(0x30, &t, f);
    ctx.max_props = 9;
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_MALFORMED);
}

/* Every packet type that carries properties, on both sides. */
TEST(every_packet_type)
{
    static const struct {
        uint8_t first;
        const char *head;
        size_t head_len;
        const char *tail;
        size_t tail_len;
        proto_role_t role;
    } cases[] = {
        {0x40, "\x00\x01\x00", 3, "", 0, PROTO_ROLE_SERVER},           /* PUBACK */
        {0x50, "\x00\x01\x00", 3, "", 0, PROTO_ROLE_SERVER},           /* PUBREC */
        {0x62, "\x00\x01\x00", 3, "", 0, PROTO_ROLE_SERVER},           /* PUBREL */
        {0x70, "\x00\x01\x00", 3, "", 0, PROTO_ROLE_SERVER},           /* PUBCOMP */
        {0x82, "\x00\x01", 2, "\x00\x01t\x00", 4, PROTO_ROLE_SERVER},  /* SUBSCRIBE */
        {0xA2, "\x00\x01", 2, "\x00\x01t", 3, PROTO_ROLE_SERVER},      /* UNSUBSCRIBE */
        {0xE0, "\x00", 1, "", 0, PROTO_ROLE_SERVER},                   /* DISCONNECT */
        {0xF0, "\x00", 1, "", 0, PROTO_ROLE_SERVER},                   /* AUTH */
        {0x20, "\x00\x00", 2, "", 0, PROTO_ROLE_CLIENT},               /* CONNACK */
        {0x90, "\x00\x01", 2, "\x00", 1, PROTO_ROLE_CLIENT},           /* SUBACK */
        {0xB0, "\x00\x01", 2, "\x00", 1, PROTO_ROLE_CLIENT},           /* UNSUBACK */
        {0xE0, "\x00", 1, "", 0, PROTO_ROLE_CLIENT},                   /* DISCONNECT */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t f[1024];
        buf_t b = {{0}, 0};
        put(&b, cases[i].head, cases[i].head_len);
        put_props(&b, 64);
        put(&b, cases[i].tail, cases[i].tail_len);
        size_t n = frame(cases[i].first, &b, f);
        proto_ctx_t ctx = {cases[i].role, MQTT_V5, cases[i].role == PROTO_ROLE_SERVER, 64};
        if (dec(&ctx, f, n) != MQTT_RC_SUCCESS)
            TEST_FAIL_("case %zu refused at the limit", i);
        ctx.max_props = 63;
        if (dec(&ctx, f, n) != MQTT_RC_PACKET_TOO_LARGE)
            TEST_FAIL_("case %zu not refused over the limit", i);
    }
}

/* MQTT 3.1.1 has no properties: the limit changes nothing. */
TEST(v311_unaffected)
{
    uint8_t f[64];
    buf_t b = {{0}, 0};
    PUTS(&b, "\x00\x03" "a/b" "payload-bytes-that-are-not-properties");
    size_t n = frame(0x30, &b, f);
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, MQTT_V311, true, 1};
    ASSERT_EQ(dec(&ctx, f, n), MQTT_RC_SUCCESS);
}

int main(void)
{
    RUN(publish_at_and_over_limit);
    RUN(empty_block_always_fits);
    RUN(connect_and_will_blocks_add_up);
    RUN(decided_before_parsing);
    RUN(every_packet_type);
    RUN(v311_unaffected);
    return test_summary();
}
