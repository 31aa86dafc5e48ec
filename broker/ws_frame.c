/*
 * broker/ws_frame.c: the pure half of the WebSocket layer (broker/ws.h): the RFC 6455 frame
 * parser, the server frame header encoder and the Sec-WebSocket-Accept computation. No I/O, no
 * allocation, no globals, so every rule is checked on byte strings alone (tests/unit/test_ws.c,
 * tests/fuzz/ws_frame_fuzz.c).
 *
 * Every rule that can be judged from a frame header is judged there, before any payload byte is
 * read: a peer cannot make us read (or buffer) a frame we will refuse. A control frame is at most
 * 125 bytes and is gathered whole inside the parser, so it is reported as one event even when it
 * arrives a byte at a time in the middle of a fragmented message.
 */
#include "broker/ws.h"

#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

/* ---- the frame parser (pure) ----------------------------------------------------------------- */

void ws_parser_init(ws_parser_t *p, uint64_t max_frame, bool require_mask)
{
    memset(p, 0, sizeof *p);
    p->max_frame = max_frame;
    p->require_mask = require_mask;
}

static size_t parse_error(ws_parser_t *p, uint16_t code, const char *why, ws_event_t *ev,
                          size_t used)
{
    p->err_code = code;
    p->err = why;
    ev->type = WS_EV_ERROR;
    ev->code = code;
    ev->err = why;
    return used;
}

/* Header bytes needed, given what has been read of it so far. */
static size_t header_need(const uint8_t *h, uint8_t hlen)
{
    if (hlen < 2)
        return 2;
    size_t n = 2;
    uint8_t l7 = h[1] & 0x7f;
    if (l7 == 126)
        n += 2;
    else if (l7 == 127)
        n += 8;
    return n + ((h[1] & 0x80) ? 4 : 0);
}

/* Decodes a complete header and applies every rule that can be checked before the payload.
 * Returns NULL or the reason, with *code the close code. */
static const char *header_done(ws_parser_t *p, uint16_t *code)
{
    const uint8_t *h = p->hdr;
    uint8_t op = h[0] & 0x0f;
    uint8_t l7 = h[1] & 0x7f;
    size_t at = 2;
    uint64_t len = l7;
    if (l7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        at = 4;
    } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        at = 10;
    }
    p->fin = (h[0] & 0x80) != 0;
    p->opcode = op;
    p->masked = (h[1] & 0x80) != 0;
    if (p->masked)
        memcpy(p->mask, h + at, 4);
    p->len = len;
    p->done = 0;
    *code = WS_CLOSE_PROTOCOL;
    if (h[0] & 0x70)
        return "reserved bits set without a negotiated extension";
    if (len >> 63)
        return "frame length with the most significant bit set";
    if ((op > WS_OP_BINARY && op < WS_OP_CLOSE) || op > WS_OP_PONG)
        return "reserved opcode";
    if (p->require_mask && !p->masked)
        return "client frame not masked";
    if (op >= WS_OP_CLOSE) {
        if (!p->fin)
            return "fragmented control frame";
        if (len > WS_MAX_CONTROL)
            return "control frame longer than 125 bytes";
        if (op == WS_OP_CLOSE && len == 1)
            return "close frame with a one-byte payload";
        return NULL;
    }
    if (op == WS_OP_TEXT) {
        *code = WS_CLOSE_UNSUPPORTED;
        return "text frame (MQTT travels in binary frames)";
    }
    if (op == WS_OP_CONT && !p->msg_opcode)
        return "continuation frame without a message to continue";
    if (op == WS_OP_BINARY && p->msg_opcode)
        return "new message before the fragmented one ended";
    if (len > p->max_frame) {
        *code = WS_CLOSE_TOO_BIG;
        return "frame larger than the maximum packet size";
    }
    p->msg_opcode = p->fin ? 0 : WS_OP_BINARY;
    return NULL;
}

static bool close_code_valid(uint16_t c)
{
    if (c < 1000 || c >= 5000)
        return false;
    if (c == 1004 || c == 1005 || c == 1006 || c == 1015)
        return false;
    return c <= 1014 || c >= 3000;
}

/* A control frame is complete: report it and get ready for the next header. */
static size_t control_event(ws_parser_t *p, ws_event_t *ev, size_t used)
{
    p->hlen = 0;
    p->in_payload = false;
    ev->data = p->ctl;
    ev->len = (size_t)p->len;
    ev->fin = true;
    if (p->opcode == WS_OP_PING) {
        ev->type = WS_EV_PING;
    } else if (p->opcode == WS_OP_PONG) {
        ev->type = WS_EV_PONG;
    } else {
        ev->type = WS_EV_CLOSE;
        if (p->len >= 2) {
            ev->code = (uint16_t)(p->ctl[0] << 8 | p->ctl[1]);
            if (!close_code_valid(ev->code))
                return parse_error(p, WS_CLOSE_PROTOCOL, "invalid close status code", ev, used);
        }
    }
    return used;
}

static void unmask(const ws_parser_t *p, uint8_t *dst, const uint8_t *src, size_t n)
{
    if (!p->masked) {
        memcpy(dst, src, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] ^ p->mask[(p->done + i) & 3];
}

size_t ws_parse(ws_parser_t *p, const uint8_t *in, size_t len, uint8_t *out, size_t out_cap,
                ws_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    if (p->err)
        return parse_error(p, p->err_code, p->err, ev, 0);
    size_t used = 0;
    while (!p->in_payload) {
        size_t need = header_need(p->hdr, p->hlen);
        while (p->hlen < need && used < len) {
            p->hdr[p->hlen++] = in[used++];
            need = header_need(p->hdr, p->hlen);
        }
        if (p->hlen < need)
            return used;
        uint16_t code;
        const char *why = header_done(p, &code);
        if (why)
            return parse_error(p, code, why, ev, used);
        p->in_payload = true;
        if (p->len == 0) {
            if (p->opcode >= WS_OP_CLOSE)
                return control_event(p, ev, used);
            p->hlen = 0; /* an empty data frame carries nothing up */
            p->in_payload = false;
        }
    }
    uint64_t left = p->len - p->done;
    size_t n = len - used < left ? len - used : (size_t)left;
    if (p->opcode >= WS_OP_CLOSE) {
        unmask(p, p->ctl + p->done, in + used, n);
        p->done += n;
        used += n;
        return p->done == p->len ? control_event(p, ev, used) : used;
    }
    if (n > out_cap)
        n = out_cap;
    if (n == 0)
        return used;
    unmask(p, out, in + used, n);
    p->done += n;
    used += n;
    ev->type = WS_EV_DATA;
    ev->data = out;
    ev->len = n;
    if (p->done == p->len) {
        ev->fin = p->fin;
        p->hlen = 0;
        p->in_payload = false;
    }
    return used;
}

size_t ws_frame_header(uint8_t *out, uint8_t opcode, bool fin, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

int ws_accept_key(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[128 + sizeof guid];
    if (key_len > 128)
        return -1;
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, guid, sizeof guid - 1);
    unsigned char sha[20];
    size_t olen = 0;
    if (mbedtls_sha1_ret((const unsigned char *)buf, key_len + sizeof guid - 1, sha) != 0 ||
        mbedtls_base64_encode((unsigned char *)out, 29, &olen, sha, sizeof sha) != 0)
        return -1;
    return 0;
}
