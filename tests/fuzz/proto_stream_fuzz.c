/*
 * tests/fuzz/proto_stream_fuzz.c: libFuzzer target for the MQTT codec fed as a byte stream.
 *
 * Input layout: byte 0 picks the side (server or client), the version, whether the connection
 * starts before CONNECT/CONNACK (then the context evolves as a real connection's would) and the
 * max_packet given to proto_frame(); bytes 1-2 seed the split points; the rest is the stream.
 *
 * The stream is framed and decoded twice: once whole, once cut into random chunks that are
 * appended to a receive buffer the way a socket read loop does it. Both runs must see the same
 * packets with the same outcomes (framing cannot depend on how the bytes arrived). Every frame is
 * copied into a buffer of exactly its size, so an over-read is an AddressSanitizer report.
 *
 * Every packet that decodes is re-encoded (proto_encode) and decoded again, and the second
 * encoding must equal the first byte for byte: the encoder writes only what the decoder accepts,
 * and decode/encode is a fixed point after one pass. PUBLISH also checks that
 * proto_encode_publish_head() + payload equals the whole encoding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mqtt.h"

enum { MAX_EVENTS = 1024 };

typedef struct {
    uint32_t len; /* frame length, or 0 for a framing error */
    int rc;       /* decode result, or the negative proto_frame result */
    uint8_t type;
} event_t;

typedef struct {
    event_t ev[MAX_EVENTS];
    size_t n;
} trace_t;

static void fail(const char *what, const uint8_t *a, size_t alen)
{
    fprintf(stderr, "proto_stream: %s (%zu bytes:", what, alen);
    for (size_t i = 0; i < alen && i < 64; i++)
        fprintf(stderr, " %02x", a[i]);
    fprintf(stderr, ")\n");
    abort();
}

static uint8_t enc_version(const proto_ctx_t *ctx, const mqtt_packet_t *p)
{
    if (p->type == MQTT_CONNECT)
        return p->u.connect.level;
    return ctx->version ? ctx->version : MQTT_V311;
}

/* Checks of the decoded content that every accepted packet must satisfy. */
static void check_content(const mqtt_packet_t *p, const uint8_t *frame, size_t len)
{
    if (p->type == MQTT_PUBLISH && p->u.publish.topic.len &&
        !proto_topic_name_valid(p->u.publish.topic.p, p->u.publish.topic.len))
        fail("accepted PUBLISH with an invalid topic name", frame, len);
    if (p->type == MQTT_SUBSCRIBE) {
        if (p->u.subscribe.n == 0)
            fail("accepted SUBSCRIBE without filters", frame, len);
        for (uint32_t i = 0; i < p->u.subscribe.n; i++) {
            const mqtt_str_t *f = &p->u.subscribe.subs[i].filter;
            if (!proto_topic_filter_valid(f->p, f->len))
                fail("accepted SUBSCRIBE with an invalid filter", frame, len);
            mqtt_str_t g, t;
            if (proto_shared_filter(f->p, f->len, &g, &t) == 1 &&
                !proto_topic_filter_valid(t.p, t.len))
                fail("shared filter with an invalid inner filter", frame, len);
        }
    }
    if (p->type == MQTT_UNSUBSCRIBE && p->u.unsubscribe.n == 0)
        fail("accepted UNSUBSCRIBE without filters", frame, len);
}

static void round_trip(const proto_ctx_t *ctx, const mqtt_packet_t *p, const uint8_t *frame,
                       size_t len)
{
    uint8_t ver = enc_version(ctx, p);
    size_t n = proto_encoded_size(p, ver);
    if (n == 0)
        fail("a decoded packet cannot be encoded", frame, len);
    uint8_t *a = malloc(n);
    if (proto_encode(p, ver, a, n) != n || proto_encode(p, ver, a, n - 1) != 0)
        fail("proto_encode disagrees with proto_encoded_size", frame, len);

    if (p->type == MQTT_PUBLISH) {
        uint8_t head[512];
        size_t h = proto_encode_publish_head(p, ver, head, sizeof head);
        if (h && (h + p->u.publish.payload_len != n || memcmp(head, a, h) != 0 ||
                  (p->u.publish.payload_len &&
                   memcmp(a + h, p->u.publish.payload, p->u.publish.payload_len) != 0)))
            fail("publish head + payload differs from the whole encoding", frame, len);
    }

    mqtt_packet_t q;
    const char *why = NULL;
    mqtt_rc_t rc = proto_decode(ctx, a, n, &q, &why);
    if (rc != MQTT_RC_SUCCESS) {
        fprintf(stderr, "proto_stream: re-decode: rc=0x%02x %s\n", rc, why ? why : "");
        fail("the encoding of a decoded packet does not decode", a, n);
    }
    size_t m = proto_encoded_size(&q, ver);
    uint8_t *b = malloc(m ? m : 1);
    if (m != n || proto_encode(&q, ver, b, m) != m || memcmp(a, b, n) != 0)
        fail("encode(decode(encode(decode(x)))) != encode(decode(x))", a, n);
    proto_packet_free(&q);
    free(a);
    free(b);
}

/* What a connection does with the context after a packet was accepted. */
static void evolve(proto_ctx_t *ctx, const mqtt_packet_t *p)
{
    if (ctx->role == PROTO_ROLE_SERVER && p->type == MQTT_CONNECT) {
        ctx->connected = true;
        ctx->version = p->u.connect.level;
    } else if (ctx->role == PROTO_ROLE_CLIENT && p->type == MQTT_CONNACK) {
        ctx->connected = true;
    }
}

static void record(trace_t *t, uint32_t len, int rc, uint8_t type)
{
    if (t->n < MAX_EVENTS)
        t->ev[t->n++] = (event_t){len, rc, type};
}

/* Decodes every whole frame at the start of buf; returns the bytes consumed, or -1 when the
 * stream cannot go on (a framing error: the connection would be closed). */
static long drain(proto_ctx_t *ctx, uint32_t max_packet, const uint8_t *buf, size_t len,
                  trace_t *t)
{
    size_t off = 0;
    while (off < len) {
        size_t hdr;
        uint32_t rem;
        int fr = proto_frame(buf + off, len - off, max_packet, &hdr, &rem);
        if (fr == PROTO_FRAME_NEED_MORE)
            break;
        if (fr < 0) {
            record(t, 0, fr, buf[off] >> 4);
            return -1;
        }
        if (hdr < 2 || hdr > 5 || (max_packet && hdr + rem > max_packet))
            fail("proto_frame returned an impossible header", buf + off, len - off);
        if (hdr + (size_t)rem > len - off)
            break;
        size_t flen = hdr + rem;
        uint8_t *frame = malloc(flen); /* exact size: ASan sees any over-read */
        memcpy(frame, buf + off, flen);
        mqtt_packet_t p;
        const char *why = NULL;
        mqtt_rc_t rc = proto_decode(ctx, frame, flen, &p, &why);
        if ((unsigned)p.type != (unsigned)(frame[0] >> 4))
            fail("pkt->type not set from the fixed header", frame, flen);
        if (rc == MQTT_RC_SUCCESS) {
            if (why)
                fail("err_desc set on success", frame, flen);
            check_content(&p, frame, flen);
            round_trip(ctx, &p, frame, flen);
            evolve(ctx, &p);
            proto_packet_free(&p);
        } else {
            if (!why || !proto_rc_name(rc))
                fail("a refusal without a description", frame, flen);
            if (p.owned)
                fail("a refused packet holds memory", frame, flen);
            (void)proto_connack_v311_code(rc);
        }
        record(t, (uint32_t)flen, rc, frame[0] >> 4);
        free(frame);
        off += flen;
    }
    return (long)off;
}

static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Feeds the stream in chunks (seed 0: all at once) through a receive buffer. */
static void run(proto_ctx_t ctx, uint32_t max_packet, const uint8_t *d, size_t n, uint32_t seed,
                unsigned max_chunk, trace_t *t)
{
    uint8_t *acc = malloc(n ? n : 1);
    size_t have = 0, pos = 0;
    while (pos < n) {
        size_t chunk = seed ? 1 + next_rand(&seed) % max_chunk : n;
        if (chunk > n - pos)
            chunk = n - pos;
        memcpy(acc + have, d + pos, chunk);
        have += chunk;
        pos += chunk;
        long used = drain(&ctx, max_packet, acc, have, t);
        if (used < 0)
            break;
        memmove(acc, acc + used, have - (size_t)used);
        have -= (size_t)used;
    }
    free(acc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t versions[4] = {MQTT_V31, MQTT_V311, MQTT_V5, MQTT_V5};
    static const uint32_t maxes[4] = {0, 64, 1024, 65536};
    static trace_t whole, split;
    if (size < 3)
        return 0;
    uint8_t mode = data[0];
    proto_ctx_t ctx = {(mode & 1) ? PROTO_ROLE_CLIENT : PROTO_ROLE_SERVER, 0, false, 0};
    if (!(mode & 8)) {
        ctx.version = versions[(mode >> 1) & 3];
        ctx.connected = true;
    }
    uint32_t max_packet = maxes[(mode >> 4) & 3];
    unsigned max_chunk = (mode & 0x40) ? 7 : 97;
    uint32_t seed = ((uint32_t)data[1] << 8 | data[2]) | 1u;

    whole.n = split.n = 0;
    run(ctx, max_packet, data + 3, size - 3, 0, 0, &whole);
    run(ctx, max_packet, data + 3, size - 3, seed, max_chunk, &split);
    bool same = whole.n == split.n;
    for (size_t i = 0; same && i < whole.n; i++)
        same = whole.ev[i].len == split.ev[i].len && whole.ev[i].rc == split.ev[i].rc &&
               whole.ev[i].type == split.ev[i].type;
    if (!same)
        fail("the outcome depends on how the stream was split", data, size);
    return 0;
}
