/*
 * tests/fuzz/ws_frame_fuzz.c: libFuzzer target for the WebSocket frame parser (broker/ws.h):
 * headers of every length form, masking, fragmentation, control frames in the middle of a
 * message, close codes, the frame size limit.
 *
 * Byte 0 picks require_mask, max_frame and the size of the output buffer; bytes 1-2 seed the split
 * points; the rest is what the peer sent. The stream is parsed whole and again in random pieces;
 * both must give the same unmasked payload bytes, the same control events in the same order and
 * the same final error. Each call must keep the documented bounds (consumed <= len, DATA <=
 * out_cap, control payloads <= 125). ws_accept_key() and ws_frame_header() get the bytes too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ws.h"

enum { MAX_LOG = 4096 };

typedef struct {
    uint8_t data[MAX_LOG]; /* payload bytes, then control events, as a byte log */
    size_t n;
    uint16_t err_code;
} trace_t;

static void put(trace_t *t, const void *p, size_t n)
{
    if (n > MAX_LOG - t->n)
        n = MAX_LOG - t->n;
    memcpy(t->data + t->n, p, n);
    t->n += n;
}

static void run(const uint8_t *d, size_t n, bool mask, uint64_t max_frame, size_t out_cap,
                unsigned seed, trace_t *t)
{
    ws_parser_t p;
    uint8_t *out = malloc(out_cap);
    size_t pos = 0;
    ws_parser_init(&p, max_frame, mask);
    memset(t, 0, sizeof *t);
    while (pos < n) {
        size_t avail = n - pos;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t c = 1 + (seed >> 8) % 23;
            avail = c < avail ? c : avail;
        }
        uint8_t *piece = malloc(avail); /* exact size: ASan sees any over-read */
        memcpy(piece, d + pos, avail);
        size_t off = 0;
        for (;;) {
            ws_event_t ev;
            memset(&ev, 0, sizeof ev);
            size_t used = ws_parse(&p, piece + off, avail - off, out, out_cap, &ev);
            if (used > avail - off)
                abort();
            off += used;
            if (ev.type == WS_EV_DATA) {
                if (ev.len > out_cap || (ev.len && (ev.data < out || ev.data + ev.len > out + out_cap)))
                    abort();
                put(t, ev.data, ev.len);
            } else if (ev.type == WS_EV_PING || ev.type == WS_EV_PONG || ev.type == WS_EV_CLOSE) {
                if (ev.len > WS_MAX_CONTROL)
                    abort();
                uint8_t tag[3] = {0xEE, (uint8_t)ev.type, (uint8_t)ev.code};
                put(t, tag, sizeof tag);
                if (ev.len)
                    put(t, ev.data, ev.len);
            } else if (ev.type == WS_EV_ERROR) {
                if (!ev.err || !ev.code)
                    abort();
                t->err_code = ev.code;
                break;
            }
            if (ev.type == WS_EV_NONE && used == 0)
                break;
            if (off == avail && ev.type == WS_EV_NONE)
                break;
        }
        free(piece);
        if (t->err_code)
            break;
        pos += avail;
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t max_frames[4] = {0, 125, 4096, 268435460};
    static const size_t caps[4] = {1, 7, 512, 65536};
    static trace_t whole, split;
    if (size < 3)
        return 0;
    bool mask = data[0] & 1;
    uint64_t max_frame = max_frames[(data[0] >> 1) & 3];
    size_t out_cap = caps[(data[0] >> 3) & 3];
    unsigned seed = ((unsigned)data[1] << 8 | data[2]) | 1u;
    run(data + 3, size - 3, mask, max_frame, out_cap, 0, &whole);
    run(data + 3, size - 3, mask, max_frame, out_cap, seed, &split);
    if (whole.n != split.n || memcmp(whole.data, split.data, whole.n) != 0 ||
        whole.err_code != split.err_code) {
        fprintf(stderr, "ws_frame: the outcome depends on how the stream was split\n");
        abort();
    }

    char key[29];
    if (ws_accept_key((const char *)data, size, key) == 0 && strlen(key) != 28)
        abort();
    uint8_t hdr[WS_MAX_HEADER];
    uint64_t len = 0;
    memcpy(&len, data, size < 8 ? size : 8);
    size_t h = ws_frame_header(hdr, WS_OP_BINARY, true, len);
    if (h != 2 && h != 4 && h != 10)
        abort();
    return 0;
}
