/*
 * tests/unit/test_proto_frame.c: framing. A stream of packets cut at every position (and in
 * three pieces at every pair of positions) must come out as the same packets; the packet size
 * limit must be applied from the fixed header alone.
 */
#include <stdlib.h>

#include "proto/mqtt.h"
#include "tests/unit/test.h"

TEST(need_more_until_the_header_is_whole)
{
    size_t hdr = 99;
    uint32_t rem = 99;
    static const uint8_t b[] = {0x30, 0x80, 0x80, 0x80, 0x01};
    ASSERT_EQ(proto_frame(b, 0, 0, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    ASSERT_EQ(proto_frame(b, 1, 0, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    ASSERT_EQ(proto_frame(b, 2, 0, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    ASSERT_EQ(proto_frame(b, 3, 0, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    ASSERT_EQ(proto_frame(b, 4, 0, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    ASSERT_EQ(hdr, 99); /* untouched until complete */
    ASSERT_EQ(proto_frame(b, 5, 0, &hdr, &rem), 0);
    ASSERT_EQ(hdr, 5);
    ASSERT_EQ(rem, 2097152);
}

TEST(remaining_length_forms)
{
    static const struct {
        uint8_t b[6];
        size_t n;
        int rc;
        size_t hdr;
        uint32_t rem;
    } cases[] = {
        {{0xC0, 0x00}, 2, 0, 2, 0},
        {{0x30, 0x7F}, 2, 0, 2, 127},
        {{0x30, 0x80, 0x01}, 3, 0, 3, 128},
        {{0x30, 0xFF, 0x7F}, 3, 0, 3, 16383},
        {{0x30, 0x80, 0x80, 0x01}, 4, 0, 4, 16384},
        {{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, 5, 0, 5, 268435455},
        {{0x30, 0x80, 0x00}, 3, 0, 3, 0},                 /* non-minimal: accepted */
        {{0x30, 0x81, 0x80, 0x80, 0x00}, 5, 0, 5, 1},     /* non-minimal 4 bytes */
        {{0x30, 0x80, 0x80, 0x80, 0x80}, 5, -MQTT_RC_MALFORMED, 0, 0},
        {{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, 6, -MQTT_RC_MALFORMED, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t hdr = 0;
        uint32_t rem = 0;
        ASSERT_EQ(proto_frame(cases[i].b, cases[i].n, 0, &hdr, &rem), cases[i].rc);
        if (cases[i].rc == 0) {
            ASSERT_EQ(hdr, cases[i].hdr);
            ASSERT_EQ(rem, cases[i].rem);
        }
    }
}

TEST(max_packet_size_from_the_header)
{
    size_t hdr;
    uint32_t rem;
    /* a 100-byte packet (2 + 98) against limits around it */
    static const uint8_t b[] = {0x30, 98};
    ASSERT_EQ(proto_frame(b, 2, 100, &hdr, &rem), 0);
    ASSERT_EQ(proto_frame(b, 2, 99, &hdr, &rem), -MQTT_RC_PACKET_TOO_LARGE);
    ASSERT_EQ(proto_frame(b, 2, 0, &hdr, &rem), 0);
    /* the length is read whole (at most 4 bytes) before it is judged, so a malformed length
       is reported as malformed; an incomplete one asks for at most 3 more bytes */
    static const uint8_t big[] = {0x30, 0xFF, 0xFF};
    ASSERT_EQ(proto_frame(big, 2, 100, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    ASSERT_EQ(proto_frame(big, 3, 100, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    static const uint8_t bad5[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    ASSERT_EQ(proto_frame(bad5, sizeof bad5, 100, &hdr, &rem), -MQTT_RC_MALFORMED);
    /* a 256 MB announcement with a 1 MB limit: refused from 5 bytes, nothing else needed */
    static const uint8_t huge[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    ASSERT_EQ(proto_frame(huge, sizeof huge, 1 << 20, &hdr, &rem), -MQTT_RC_PACKET_TOO_LARGE);
    ASSERT_EQ(proto_frame(huge, sizeof huge, 0, &hdr, &rem), 0);
    ASSERT_EQ(hdr + rem, 268435460u);
    /* the limit counts the header too: 3 + 128 bytes */
    static const uint8_t two[] = {0x30, 0x80, 0x01};
    ASSERT_EQ(proto_frame(two, 3, 131, &hdr, &rem), 0);
    ASSERT_EQ(proto_frame(two, 3, 130, &hdr, &rem), -MQTT_RC_PACKET_TOO_LARGE);
    /* the smallest packet passes the smallest useful limit */
    static const uint8_t ping[] = {0xC0, 0x00};
    ASSERT_EQ(proto_frame(ping, 2, 2, &hdr, &rem), 0);
    ASSERT_EQ(proto_frame(ping, 2, 1, &hdr, &rem), -MQTT_RC_PACKET_TOO_LARGE);
}

/* ---- A stream of packets, cut anywhere -------------------------------------------------------- */

enum { MAX_PKTS = 16 };

typedef struct {
    uint8_t bytes[2048];
    size_t len;
    size_t ends[MAX_PKTS]; /* where each packet ends */
    mqtt_type_t types[MAX_PKTS];
    int n;
} stream_t;

static void add(stream_t *s, const mqtt_packet_t *p)
{
    size_t n = proto_encode(p, MQTT_V5, s->bytes + s->len, sizeof s->bytes - s->len);
    s->len += n;
    s->ends[s->n] = s->len;
    s->types[s->n++] = p->type;
}

static void build_stream(stream_t *s)
{
    static uint8_t payload[300];
    static mqtt_sub_t subs[2] = {{{(const uint8_t *)"a/+", 3}, 1}, {{(const uint8_t *)"#", 1}, 2}};
    static mqtt_user_prop_t up = {{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}};
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)i;
    mqtt_packet_t p = {.type = MQTT_PUBLISH};
    p.u.publish.qos = 1;
    p.u.publish.id = 1;
    p.u.publish.topic.p = (const uint8_t *)"big/one";
    p.u.publish.topic.len = 7;
    p.u.publish.payload = payload;
    p.u.publish.payload_len = sizeof payload; /* a 2-byte remaining length */
    p.u.publish.props.n_user = 1;
    p.u.publish.props.user = &up;
    add(s, &p);
    mqtt_packet_t ping = {.type = MQTT_PINGREQ};
    add(s, &ping);
    mqtt_packet_t sub = {.type = MQTT_SUBSCRIBE};
    sub.u.subscribe.id = 2;
    sub.u.subscribe.n = 2;
    sub.u.subscribe.subs = subs;
    add(s, &sub);
    mqtt_packet_t small = {.type = MQTT_PUBLISH};
    small.u.publish.topic.p = (const uint8_t *)"s";
    small.u.publish.topic.len = 1;
    add(s, &small);
    mqtt_packet_t ack = {.type = MQTT_PUBACK};
    ack.u.ack.id = 9;
    add(s, &ack);
    add(s, &ping);
    mqtt_packet_t disc = {.type = MQTT_DISCONNECT};
    disc.u.reason.rc = MQTT_RC_DISCONNECT_WITH_WILL;
    add(s, &disc);
}

/* The receiving side: accumulates reads and takes out every whole packet. */
typedef struct {
    uint8_t buf[2048];
    size_t len;
    int got;
    int errors;
    const stream_t *want;
    size_t consumed; /* bytes of the stream already delivered as packets */
} conn_t;

static void feed(conn_t *c, const uint8_t *data, size_t n)
{
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    for (;;) {
        size_t hdr;
        uint32_t rem;
        int r = proto_frame(c->buf, c->len, 4096, &hdr, &rem);
        if (r == PROTO_FRAME_NEED_MORE || (r == 0 && c->len < hdr + rem))
            return;
        if (r < 0) {
            c->errors++;
            return;
        }
        size_t whole = hdr + rem;
        proto_ctx_t ctx = {PROTO_ROLE_SERVER, MQTT_V5, true, 0};
        mqtt_packet_t p;
        if (proto_decode(&ctx, c->buf, whole, &p, NULL) != MQTT_RC_SUCCESS ||
            c->got >= c->want->n || p.type != c->want->types[c->got] ||
            c->consumed + whole != c->want->ends[c->got] ||
            memcmp(c->buf, c->want->bytes + c->consumed, whole) != 0)
            c->errors++;
        proto_packet_free(&p);
        c->got++;
        c->consumed += whole;
        memmove(c->buf, c->buf + whole, c->len - whole);
        c->len -= whole;
    }
}

TEST(stream_cut_once_everywhere)
{
    static stream_t s;
    build_stream(&s);
    ASSERT_EQ(s.n, 7);
    ASSERT(s.len > 300);
    for (size_t cut = 0; cut <= s.len; cut++) {
        static conn_t c;
        memset(&c, 0, sizeof c);
        c.want = &s;
        feed(&c, s.bytes, cut);
        feed(&c, s.bytes + cut, s.len - cut);
        ASSERT_EQ(c.errors, 0);
        ASSERT_EQ(c.got, s.n);
        ASSERT_EQ(c.len, 0);
    }
}

TEST(stream_cut_twice_everywhere)
{
    static stream_t s;
    build_stream(&s);
    long runs = 0;
    for (size_t a = 0; a <= s.len; a++) {
        for (size_t b = a; b <= s.len; b++) {
            static conn_t c;
            c.len = 0;
            c.got = c.errors = 0;
            c.consumed = 0;
            c.want = &s;
            feed(&c, s.bytes, a);
            feed(&c, s.bytes + a, b - a);
            feed(&c, s.bytes + b, s.len - b);
            if (c.errors || c.got != s.n || c.len != 0)
                TEST_FAIL_("cuts at %zu and %zu: %d errors, %d packets", a, b, c.errors, c.got);
            runs++;
        }
    }
    ASSERT_EQ(runs, (long)((s.len + 1) * (s.len + 2) / 2));
}

TEST(stream_in_chunks_of_every_size)
{
    static stream_t s;
    build_stream(&s);
    for (size_t chunk = 1; chunk <= s.len; chunk++) {
        static conn_t c;
        memset(&c, 0, sizeof c);
        c.want = &s;
        for (size_t off = 0; off < s.len; off += chunk)
            feed(&c, s.bytes + off, off + chunk <= s.len ? chunk : s.len - off);
        ASSERT_EQ(c.errors, 0);
        ASSERT_EQ(c.got, s.n);
    }
}

TEST(oversized_packet_in_a_stream_is_refused_early)
{
    /* a PINGREQ, then the header of a 1 MB PUBLISH: the second is refused with 3 bytes read */
    static const uint8_t b[] = {0xC0, 0x00, 0x30, 0x80, 0x80, 0x40};
    size_t hdr;
    uint32_t rem;
    ASSERT_EQ(proto_frame(b, sizeof b, 4096, &hdr, &rem), 0);
    ASSERT_EQ(hdr + rem, 2);
    ASSERT_EQ(proto_frame(b + 2, 1, 4096, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    ASSERT_EQ(proto_frame(b + 2, 2, 4096, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    ASSERT_EQ(proto_frame(b + 2, 3, 4096, &hdr, &rem), PROTO_FRAME_NEED_MORE);
    ASSERT_EQ(proto_frame(b + 2, 4, 4096, &hdr, &rem), -MQTT_RC_PACKET_TOO_LARGE);
}

int main(void)
{
    RUN(need_more_until_the_header_is_whole);
    RUN(remaining_length_forms);
    RUN(max_packet_size_from_the_header);
    RUN(stream_cut_once_everywhere);
    RUN(stream_cut_twice_everywhere);
    RUN(stream_in_chunks_of_every_size);
    RUN(oversized_packet_in_a_stream_is_refused_early);
    return test_summary();
}
