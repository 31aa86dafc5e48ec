/*
 * broker/ws.h: MQTT over WebSockets (RFC 6455) as a stream_t layered on a lower stream_t.
 *
 * Two parts:
 * - A pure frame parser and encoder (ws_frame.c: no I/O, no allocation, no globals), so the
 *   protocol rules can be unit tested and fuzzed on byte strings alone.
 * - The transport (ws.c): it answers the HTTP/1.1 upgrade request (parsed with llhttp; any
 *   request path is accepted, clients use `/` or `/mqtt`), then carries MQTT bytes in binary
 *   frames. MQTT framing is independent of WebSocket framing, so payload bytes go up as they
 *   arrive, whatever frame or fragment they came in.
 *
 * Threading and lifetime are those of broker/stream.h: one loop thread, exactly one on_closed,
 * and the transport frees itself (and its lower stream) once on_closed has returned.
 */
#ifndef ACEMQ_BROKER_WS_H
#define ACEMQ_BROKER_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/stream.h"

/* Opcodes (RFC 6455 section 5.2). */
enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close status codes used here (RFC 6455 section 7.4.1). */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_TOO_BIG = 1009,
};

enum { WS_MAX_CONTROL = 125, WS_MAX_HEADER = 14 };

/* What one ws_parse() call produced. */
typedef enum {
    WS_EV_NONE,  /* the input was consumed (or was empty) without completing anything */
    WS_EV_DATA,  /* ev->data/len: unmasked payload bytes of a binary message */
    WS_EV_PING,  /* a whole control frame; ev->data/len is its payload (at most 125 bytes) */
    WS_EV_PONG,
    WS_EV_CLOSE, /* ev->code is the peer's status (0 if it sent none) */
    WS_EV_ERROR, /* ev->code is the close code to answer with, ev->err says why; sticky */
} ws_ev_type_t;

typedef struct {
    ws_ev_type_t type;
    const uint8_t *data; /* into the caller's `out` buffer (DATA) or the parser (control) */
    size_t len;
    bool fin;       /* DATA: this chunk ends a message (the FIN frame's last byte) */
    uint16_t code;  /* CLOSE / ERROR */
    const char *err; /* ERROR: a static English sentence */
} ws_event_t;

/*
 * Parser state. Zero it with ws_parser_init(); it holds no pointers, so it can be copied.
 * max_frame bounds a frame's declared payload length (checked from the header, before any
 * byte of it arrives); require_mask is true for a server reading client frames.
 */
typedef struct {
    uint64_t max_frame;
    bool require_mask;
    /* the frame being read */
    uint8_t hdr[WS_MAX_HEADER];
    uint8_t hlen;
    bool in_payload;
    bool fin;
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t len, done;
    /* the message being read: 0, or WS_OP_BINARY while continuation frames are expected */
    uint8_t msg_opcode;
    /* a control frame's payload, gathered whole */
    uint8_t ctl[WS_MAX_CONTROL];
    /* a protocol error ends parsing: every later call reports it again */
    uint16_t err_code;
    const char *err;
} ws_parser_t;

void ws_parser_init(ws_parser_t *p, uint64_t max_frame, bool require_mask);

/*
 * Consumes bytes from in[0..len) and reports at most one event. Returns the number of bytes
 * consumed; call again with the rest while it returns an event or consumes something.
 * Payload bytes of data frames are unmasked into out (out_cap > 0 bytes), so one DATA event
 * carries at most out_cap bytes. Never reads past len, never writes past out_cap.
 */
size_t ws_parse(ws_parser_t *p, const uint8_t *in, size_t len, uint8_t *out, size_t out_cap,
                ws_event_t *ev);

/* Writes a server (unmasked) frame header for a payload of len bytes; returns its size
 * (2, 4 or 10; out needs 10 bytes). */
size_t ws_frame_header(uint8_t *out, uint8_t opcode, bool fin, uint64_t len);

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)), 28 chars
 * and a NUL into out. Returns 0, or -1 if the key is too long (over 128 bytes). */
int ws_accept_key(const char *key, size_t key_len, char out[29]);

/* Transport settings. */
typedef struct {
    uint64_t max_frame;       /* frame payload cap; larger frames close with 1009 */
    size_t max_headers;       /* bytes of the upgrade request, headers included; 0 = 4096 */
} ws_options_t;
/* No handshake timer here: the connection's connect_timeout already runs from the accept. */

/*
 * Wraps a lower stream that is not yet started (plain TCP: "ws", TLS: "wss"); its ev and owner
 * are taken over. The WebSocket stream calls on_open once the upgrade is answered. Returns NULL
 * on allocation failure, leaving the lower stream untouched and still the caller's.
 */
stream_t *ws_stream_wrap(stream_t *lower, const ws_options_t *opt, const stream_events_t *ev,
                         void *owner);

/* 1 if s was created by this layer. */
int stream_is_ws(const stream_t *s);
/* The stream below a WebSocket stream (the TLS stream for wss, to ask it for certificate
 * facts), or s itself if s is not a WebSocket stream. NULL once the lower stream is gone. */
stream_t *ws_stream_lower(stream_t *s);

#endif
