/*
 * tests/unit/test_ws.c: the pure WebSocket frame parser and encoder (broker/ws.h): the RFC 6455
 * section 5.7 examples, 16- and 64-bit lengths, fragmentation, control frames, every error the
 * server answers with a close code, and input split at every byte.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/ws.h"
#include "tests/unit/test.h"

/* Everything one parse run produced, payload bytes concatenated. */
typedef struct {
    uint8_t data[70000];
    size_t data_len;
    int n_data, n_fin, n_ping, n_pong, n_close;
    uint8_t ctl[WS_MAX_CONTROL];
    size_t ctl_len;
    uint16_t code;
    int error;
    const char *err;
} result_t;

/* Feeds `in` in pieces of `step` bytes (0 = all at once) through a parser, unmasking into an
 * `out_cap`-byte buffer, and collects the events. */
static void run(ws_parser_t *p, const uint8_t *in, size_t len, size_t step, size_t out_cap,
                result_t *r)
{
    uint8_t *out = malloc(out_cap);
    memset(r, 0, sizeof *r);
    size_t off = 0;
    while (off < len && !r->error) {
        size_t piece = step && len - off > step ? step : len - off;
        const uint8_t *d = in + off;
        size_t n = piece;
        for (;;) {
            ws_event_t ev;
            size_t used = ws_parse(p, d, n, out, out_cap, &ev);
            d += used;
            n -= used;
            if (ev.type == WS_EV_DATA) {
                memcpy(r->data + r->data_len, ev.data, ev.len);
                r->data_len += ev.len;
                r->n_data++;
                r->n_fin += ev.fin;
            } else if (ev.type == WS_EV_PING || ev.type == WS_EV_PONG || ev.type == WS_EV_CLOSE) {
                r->n_ping += ev.type == WS_EV_PING;
                r->n_pong += ev.type == WS_EV_PONG;
                r->n_close += ev.type == WS_EV_CLOSE;
                memcpy(r->ctl, ev.data, ev.len);
                r->ctl_len = ev.len;
                r->code = ev.code;
            } else if (ev.type == WS_EV_ERROR) {
                r->error = 1;
                r->code = ev.code;
                r->err = ev.err;
                break;
            } else if (n == 0 || used == 0) {
                break;
            }
        }
        off += piece;
    }
    free(out);
}

static void parse_all(const uint8_t *in, size_t len, result_t *r)
{
    ws_parser_t p;
    ws_parser_init(&p, 1 << 20, true);
    run(&p, in, len, 0, 16384, r);
}

/* Builds a masked client frame. */
static size_t client_frame(uint8_t *out, uint8_t b0, const uint8_t *payload, uint64_t len,
                           const uint8_t mask[4])
{
    size_t h = ws_frame_header(out, b0 & 0x0f, (b0 & 0x80) != 0, len);
    out[0] = b0;
    out[1] |= 0x80;
    memcpy(out + h, mask, 4);
    for (uint64_t i = 0; i < len; i++)
        out[h + 4 + i] = payload[i] ^ mask[i & 3];
    return h + 4 + (size_t)len;
}

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

TEST(rfc6455_masked_hello)
{
    /* RFC 6455 section 5.7: a single-frame masked text message "Hello" (a text frame is refused by
     * an MQTT server, so the same bytes are also checked as binary). */
    uint8_t text[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    result_t r;
    parse_all(text, sizeof text, &r);
    ASSERT(r.error);
    ASSERT_EQ(r.code, WS_CLOSE_UNSUPPORTED);
    uint8_t bin[sizeof text];
    memcpy(bin, text, sizeof text);
    bin[0] = 0x82;
    parse_all(bin, sizeof bin, &r);
    ASSERT(!r.error);
    ASSERT_EQ(r.data_len, 5);
    ASSERT_MEM_EQ(r.data, "Hello", 5);
    ASSERT_EQ(r.n_fin, 1);
}

TEST(rfc6455_unmasked_hello_refused_from_client)
{
    uint8_t f[] = {0x82, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    result_t r;
    parse_all(f, sizeof f, &r);
    ASSERT(r.error);
    ASSERT_EQ(r.code, WS_CLOSE_PROTOCOL);
    /* a parser that does not require masking (a client reading server frames) takes it */
    ws_parser_t p;
    ws_parser_init(&p, 100, false);
    run(&p, f, sizeof f, 0, 64, &r);
    ASSERT(!r.error);
    ASSERT_MEM_EQ(r.data, "Hello", 5);
}

TEST(rfc6455_fragmented_hello)
{
    /* section 5.7: "Hel" + continuation "lo", masked here, binary */
    uint8_t buf[64];
    size_t n = client_frame(buf, 0x02, (const uint8_t *)"Hel", 3, MASK);
    n += client_frame(buf + n, 0x80, (const uint8_t *)"lo", 2, MASK);
    result_t r;
    parse_all(buf, n, &r);
    ASSERT(!r.error);
    ASSERT_EQ(r.data_len, 5);
    ASSERT_MEM_EQ(r.data, "Hello", 5);
    ASSERT_EQ(r.n_fin, 1); /* only the last frame ends the message */
}

TEST(rfc6455_ping_with_hello)
{
    /* section 5.7: unmasked ping "Hello" is 0x89 0x05 ...; a client sends it masked */
    uint8_t buf[32];
    size_t n = client_frame(buf, 0x89, (const uint8_t *)"Hello", 5, MASK);
    result_t r;
    parse_all(buf, n, &r);
    ASSERT(!r.error);
    ASSERT_EQ(r.n_ping, 1);
    ASSERT_EQ(r.ctl_len, 5);
    ASSERT_MEM_EQ(r.ctl, "Hello", 5);
    uint8_t pong[] = {0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    uint8_t hdr[10];
    ASSERT_EQ(ws_frame_header(hdr, WS_OP_PONG, true, 5), 2);
    ASSERT_MEM_EQ(hdr, pong, 2);
}

TEST(length_16_bit)
{
    /* section 5.7: 256 bytes in a single unmasked binary frame: 0x82 0x7E 0x01 0x00 */
    uint8_t hdr[10];
    ASSERT_EQ(ws_frame_header(hdr, WS_OP_BINARY, true, 256), 4);
    const uint8_t want[] = {0x82, 0x7e, 0x01, 0x00};
    ASSERT_MEM_EQ(hdr, want, 4);
    ASSERT_EQ(ws_frame_header(hdr, WS_OP_BINARY, true, 125), 2);
    ASSERT_EQ(ws_frame_header(hdr, WS_OP_BINARY, true, 126), 4);
    ASSERT_EQ(ws_frame_header(hdr, WS_OP_BINARY, true, 65535), 4);
    static uint8_t payload[300], buf[400];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    size_t n = client_frame(buf, 0x82, payload, sizeof payload, MASK);
    ASSERT_EQ(n, 4 + 4 + 300);
    result_t r;
    parse_all(buf, n, &r);
    ASSERT(!r.error);
    ASSERT_EQ(r.data_len, 300);
    ASSERT_MEM_EQ(r.data, payload, 300);
}

TEST(length_64_bit)
{
    /* section 5.7: 64 KiB in a single unmasked binary frame: 0x82 0x7F 0x00..0x01 0x00 0x00 */
    uint8_t hdr[10];
    ASSERT_EQ(ws_frame_header(hdr, WS_OP_BINARY, true, 65536), 10);
    const uint8_t want[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    ASSERT_MEM_EQ(hdr, want, 10);
    static uint8_t payload[65536], buf[65536 + 14];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i ^ (i >> 8));
    size_t n = client_frame(buf, 0x82, payload, sizeof payload, MASK);
    result_t r;
    ws_parser_t p;
    ws_parser_init(&p, 1 << 20, true);
    run(&p, buf, n, 0, 16384, &r); /* the output buffer cuts it into 4 chunks */
    ASSERT(!r.error);
    ASSERT_EQ(r.data_len, 65536);
    ASSERT_EQ(r.n_data, 4);
    ASSERT_EQ(r.n_fin, 1);
    ASSERT_MEM_EQ(r.data, payload, 65536);
}

TEST(split_at_every_byte)
{
    /* header, mask and payload arriving one byte at a time give the same bytes */
    uint8_t buf[512], payload[200];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(255 - i);
    size_t n = client_frame(buf, 0x02, payload, 150, MASK);
    n += client_frame(buf + n, 0x89, (const uint8_t *)"p", 1, MASK); /* ping mid-message */
    n += client_frame(buf + n, 0x80, payload + 150, 50, MASK);
    for (size_t step = 1; step <= 9; step++) {
        ws_parser_t p;
        ws_parser_init(&p, 1000, true);
        result_t r;
        run(&p, buf, n, step, 7, &r);
        ASSERT(!r.error);
        ASSERT_EQ(r.data_len, 200);
        ASSERT_MEM_EQ(r.data, payload, 200);
        ASSERT_EQ(r.n_ping, 1);
        ASSERT_EQ(r.n_fin, 1);
    }
}

TEST(close_frames)
{
    uint8_t buf[32];
    const uint8_t normal[] = {0x03, 0xe8, 'b', 'y', 'e'};
    size_t n = client_frame(buf, 0x88, normal, sizeof normal, MASK);
    result_t r;
    parse_all(buf, n, &r);
    ASSERT(!r.error);
    ASSERT_EQ(r.n_close, 1);
    ASSERT_EQ(r.code, 1000);
    n = client_frame(buf, 0x88, NULL, 0, MASK); /* no status */
    parse_all(buf, n, &r);
    ASSERT_EQ(r.n_close, 1);
    ASSERT_EQ(r.code, 0);
    n = client_frame(buf, 0x88, normal, 1, MASK); /* a one-byte body cannot hold a code */
    parse_all(buf, n, &r);
    ASSERT(r.error);
    ASSERT_EQ(r.code, WS_CLOSE_PROTOCOL);
    const uint8_t reserved[] = {0x03, 0xed}; /* 1005 may not be sent */
    n = client_frame(buf, 0x88, reserved, 2, MASK);
    parse_all(buf, n, &r);
    ASSERT(r.error);
    ASSERT_EQ(r.code, WS_CLOSE_PROTOCOL);
}

TEST(empty_frames)
{
    uint8_t buf[64];
    size_t n = client_frame(buf, 0x82, NULL, 0, MASK);
    n += client_frame(buf + n, 0x8a, NULL, 0, MASK); /* empty pong */
    n += client_frame(buf + n, 0x82, (const uint8_t *)"x", 1, MASK);
    result_t r;
    parse_all(buf, n, &r);
    ASSERT(!r.error);
    ASSERT_EQ(r.n_pong, 1);
    ASSERT_EQ(r.data_len, 1);
    ASSERT_EQ(r.data[0], 'x');
}

static uint16_t error_code_of(const uint8_t *f, size_t n, uint64_t max)
{
    ws_parser_t p;
    ws_parser_init(&p, max, true);
    result_t r;
    run(&p, f, n, 0, 64, &r);
    return r.error ? r.code : 0;
}

TEST(protocol_errors)
{
    uint8_t buf[300], big[200] = {0};
    size_t n;
    n = client_frame(buf, 0xc2, (const uint8_t *)"a", 1, MASK); /* RSV1 */
    ASSERT_EQ(error_code_of(buf, n, 100), WS_CLOSE_PROTOCOL);
    n = client_frame(buf, 0x92, (const uint8_t *)"a", 1, MASK); /* RSV3 */
    ASSERT_EQ(error_code_of(buf, n, 100), WS_CLOSE_PROTOCOL);
    n = client_frame(buf, 0x83, (const uint8_t *)"a", 1, MASK); /* reserved data opcode */
    ASSERT_EQ(error_code_of(buf, n, 100), WS_CLOSE_PROTOCOL);
    n = client_frame(buf, 0x8b, (const uint8_t *)"a", 1, MASK); /* reserved control opcode */
    ASSERT_EQ(error_code_of(buf, n, 100), WS_CLOSE_PROTOCOL);
    n = client_frame(buf, 0x09, (const uint8_t *)"a", 1, MASK); /* fragmented ping */
    ASSERT_EQ(error_code_of(buf, n, 100), WS_CLOSE_PROTOCOL);
    n = client_frame(buf, 0x89, big, 126, MASK); /* control frame over 125 bytes */
    ASSERT_EQ(error_code_of(buf, n, 1000), WS_CLOSE_PROTOCOL);
    n = client_frame(buf, 0x80, (const uint8_t *)"a", 1, MASK); /* continuation of nothing */
    ASSERT_EQ(error_code_of(buf, n, 100), WS_CLOSE_PROTOCOL);
    n = client_frame(buf, 0x02, (const uint8_t *)"a", 1, MASK); /* new message mid-message */
    n += client_frame(buf + n, 0x82, (const uint8_t *)"b", 1, MASK);
    ASSERT_EQ(error_code_of(buf, n, 100), WS_CLOSE_PROTOCOL);
    n = client_frame(buf, 0x81, (const uint8_t *)"a", 1, MASK); /* text */
    ASSERT_EQ(error_code_of(buf, n, 100), WS_CLOSE_UNSUPPORTED);
    n = client_frame(buf, 0x82, big, 101, MASK); /* larger than max_frame */
    ASSERT_EQ(error_code_of(buf, n, 100), WS_CLOSE_TOO_BIG);
    ASSERT_EQ(error_code_of(buf, n, 101), 0);
    const uint8_t msb[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    ASSERT_EQ(error_code_of(msb, sizeof msb, 100), WS_CLOSE_PROTOCOL);
    const uint8_t huge[] = {0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}; /* 4 GiB */
    ASSERT_EQ(error_code_of(huge, sizeof huge, 1 << 20), WS_CLOSE_TOO_BIG);
}

TEST(errors_are_sticky_and_checked_before_payload)
{
    /* only the header of an oversized frame is needed to refuse it */
    const uint8_t hdr[] = {0x82, 0xfe, 0xff, 0xff, 1, 2, 3, 4};
    ws_parser_t p;
    ws_parser_init(&p, 1000, true);
    uint8_t out[16];
    ws_event_t ev;
    size_t used = ws_parse(&p, hdr, sizeof hdr, out, sizeof out, &ev);
    ASSERT_EQ(ev.type, WS_EV_ERROR);
    ASSERT_EQ(ev.code, WS_CLOSE_TOO_BIG);
    ASSERT(used <= sizeof hdr);
    used = ws_parse(&p, hdr, sizeof hdr, out, sizeof out, &ev);
    ASSERT_EQ(used, 0);
    ASSERT_EQ(ev.type, WS_EV_ERROR);
    ASSERT_EQ(ev.code, WS_CLOSE_TOO_BIG);
}

TEST(accept_key_rfc_example)
{
    /* RFC 6455 section 1.3 */
    char out[29];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    ASSERT_EQ(ws_accept_key(key, strlen(key), out), 0);
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    char long_key[200];
    memset(long_key, 'a', sizeof long_key);
    ASSERT_EQ(ws_accept_key(long_key, sizeof long_key, out), -1);
}

int main(void)
{
    RUN(rfc6455_masked_hello);
    RUN(rfc6455_unmasked_hello_refused_from_client);
    RUN(rfc6455_fragmented_hello);
    RUN(rfc6455_ping_with_hello);
    RUN(length_16_bit);
    RUN(length_64_bit);
    RUN(split_at_every_byte);
    RUN(close_frames);
    RUN(empty_frames);
    RUN(protocol_errors);
    RUN(errors_are_sticky_and_checked_before_payload);
    RUN(accept_key_rfc_example);
    return test_summary();
}
