/*
 * broker/ws.c: MQTT over WebSockets (RFC 6455): the stream_t transport that answers the HTTP
 * upgrade and then carries MQTT bytes in binary frames (the frame parser is in ws_frame.c).
 *
 * Reading: the upgrade request goes through llhttp while only the few headers that matter are
 * kept (in a small block freed once the upgrade is answered). Frames are then parsed as bytes
 * arrive; payload bytes are unmasked into one per-thread buffer and handed up at once, because
 * MQTT has its own framing and conn.c copies whatever it cannot consume.
 *
 * Writing: each write becomes one unmasked binary frame. Only the frame header is ours (a small
 * block per write); the caller's buffers go down by reference as [header, bufs...], so a batch of
 * shared payloads is never copied on its way to the socket (or to TLS, which encrypts at once).
 */
#include "broker/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "broker/log.h"
#include "tls/tls.h"

/* ---- the transport --------------------------------------------------------------------------- */

/* WS_CLOSING: our close frame is out and we read on until the peer answers it (or a timer runs
 * out), because closing the socket at once would make the peer's answer meet a reset.
 * WS_CLOSED: the lower stream is closing or gone. */
enum { WS_HTTP, WS_OPEN, WS_CLOSING, WS_CLOSED };
enum { DEFAULT_MAX_HEADERS = 4096, OUT_BUF = 16 * 1024, FIELD_MAX = 32, VALUE_MAX = 256 };
enum { CLOSE_WAIT_MS = 1000 };
enum { PROTO_NONE, PROTO_MQTT, PROTO_MQTT31 };

/* What the upgrade request said; lives only until it is answered. */
typedef struct {
    llhttp_t parser;
    size_t seen;
    char field[FIELD_MAX];
    size_t field_len;
    char value[VALUE_MAX];
    size_t value_len;
    bool too_long; /* a field or value did not fit: none we care about is that long */
    bool upgrade_ws, conn_upgrade, version13, has_version, offered_protocols;
    int proto;
    char key[64];
    size_t key_len;
} ws_http_t;

typedef struct {
    stream_t s;
    stream_t *lower;
    ws_http_t *http;
    ws_parser_t fp;
    int state;
    size_t max_headers;
    bool lower_closed, lower_close_called, paused;
    uv_timer_t *close_timer; /* WS_CLOSING only; its own allocation, see stop_timer() */
    uint8_t *pend; /* raw bytes held while paused */
    size_t pend_len;
    int close_status;
    const char *close_why;
} ws_conn_t;

/* One write: our frame header (plus a control frame's payload), then the caller's buffers. */
typedef struct {
    stream_write_cb cb;
    void *arg;
    uint8_t hdr[10 + WS_MAX_CONTROL];
    uv_buf_t bufs[];
} ws_write_t;

static const stream_ops_t ws_ops, wss_ops;
static _Thread_local uint8_t out_buf[OUT_BUF];

static void written(void *arg, int status)
{
    ws_write_t *wr = arg;
    if (wr->cb)
        wr->cb(wr->arg, status);
    free(wr);
}

/* Sends bytes we own (HTTP responses), copied so the caller's buffer may be on its stack. */
static int write_copy(ws_conn_t *w, const char *text, size_t len)
{
    if (w->lower_closed)
        return UV_ECANCELED;
    ws_write_t *wr = malloc(sizeof *wr + sizeof(uv_buf_t) + len);
    if (!wr)
        return UV_ENOMEM;
    wr->cb = NULL;
    char *copy = (char *)(wr->bufs + 1);
    memcpy(copy, text, len);
    wr->bufs[0] = uv_buf_init(copy, (unsigned)len);
    int rc = w->lower->ops->write(w->lower, wr->bufs, 1, written, wr);
    if (rc < 0)
        free(wr);
    return rc;
}

static int send_control(ws_conn_t *w, uint8_t op, const uint8_t *payload, size_t len)
{
    if (w->lower_closed)
        return UV_ECANCELED;
    ws_write_t *wr = malloc(sizeof *wr + sizeof(uv_buf_t));
    if (!wr)
        return UV_ENOMEM;
    wr->cb = NULL;
    size_t hl = ws_frame_header(wr->hdr, op, true, len);
    if (len)
        memcpy(wr->hdr + hl, payload, len);
    wr->bufs[0] = uv_buf_init((char *)wr->hdr, (unsigned)(hl + len));
    int rc = w->lower->ops->write(w->lower, wr->bufs, 1, written, wr);
    if (rc < 0)
        free(wr);
    return rc;
}

static int send_close(ws_conn_t *w, uint16_t code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    return send_control(w, WS_OP_CLOSE, p, code ? 2 : 0);
}

static void timer_freed(uv_handle_t *h)
{
    free(h);
}

/* The timer is a separate block so that it may outlive the connection by one loop turn. */
static void stop_timer(ws_conn_t *w)
{
    if (w->close_timer) {
        uv_close((uv_handle_t *)w->close_timer, timer_freed);
        w->close_timer = NULL;
    }
}

/* Closes the lower stream, which flushes what is queued before it closes. */
static void close_lower(ws_conn_t *w)
{
    w->state = WS_CLOSED;
    stop_timer(w);
    if (!w->lower_closed && !w->lower_close_called) {
        w->lower_close_called = true;
        w->lower->ops->close(w->lower);
    }
}

static void on_close_wait(uv_timer_t *t)
{
    close_lower(t->data);
}

/* Ends the WebSocket. With code != 0 on an open WebSocket, sends a close frame and waits a little
 * for the peer's; otherwise closes the lower stream now. The first reason given is reported. */
static void begin_close(ws_conn_t *w, int status, const char *why, uint16_t code)
{
    if (w->state == WS_CLOSING || w->state == WS_CLOSED)
        return;
    bool was_open = w->state == WS_OPEN;
    w->close_status = status;
    w->close_why = why;
    if (was_open && code && send_close(w, code) == 0) {
        w->state = WS_CLOSING;
        w->close_timer = malloc(sizeof *w->close_timer);
        if (w->close_timer && uv_timer_init(w->s.loop, w->close_timer) == 0) {
            w->close_timer->data = w;
            uv_timer_start(w->close_timer, on_close_wait, CLOSE_WAIT_MS, 0);
            return;
        }
        free(w->close_timer);
        w->close_timer = NULL;
    }
    close_lower(w);
}

/* ---- reading frames -------------------------------------------------------------------------- */

static void stash(ws_conn_t *w, const uint8_t *d, size_t n)
{
    if (n == 0)
        return;
    uint8_t *p = realloc(w->pend, w->pend_len + n);
    if (!p) {
        begin_close(w, UV_ENOMEM, "out of memory", WS_CLOSE_GOING_AWAY);
        return;
    }
    memcpy(p + w->pend_len, d, n);
    w->pend = p;
    w->pend_len += n;
}

/* Parses frames out of d and acts on them until the bytes run out, the owner pauses us, or the
 * WebSocket closes. */
static void process(ws_conn_t *w, const uint8_t *d, size_t n)
{
    while (w->state == WS_OPEN || w->state == WS_CLOSING) {
        if (w->paused) {
            stash(w, d, n);
            return;
        }
        ws_event_t ev;
        size_t used = ws_parse(&w->fp, d, n, out_buf, sizeof out_buf, &ev);
        d += used;
        n -= used;
        switch (ev.type) {
        case WS_EV_NONE:
            if (n == 0 || used == 0)
                return;
            break;
        case WS_EV_DATA:
            if (w->state == WS_OPEN) /* nothing goes up once we have said goodbye */
                w->s.ev->on_data(&w->s, ev.data, ev.len);
            break;
        case WS_EV_PING:
            if (w->state == WS_OPEN)
                send_control(w, WS_OP_PONG, ev.data, ev.len);
            break;
        case WS_EV_PONG:
            break;
        case WS_EV_CLOSE:
            if (w->state == WS_OPEN) { /* echo the peer's code (RFC 6455 section 5.5.1) */
                if (ev.code)
                    send_close(w, ev.code);
                else
                    send_control(w, WS_OP_CLOSE, NULL, 0);
                w->close_status = 0;
                w->close_why = "peer closed the WebSocket";
            }
            close_lower(w); /* the server closes the TCP connection first (section 7.1.1) */
            return;
        case WS_EV_ERROR:
            log_notice("ws_protocol_error", "peer=%s code=%u reason=\"%s\"", stream_peer(&w->s),
                       (unsigned)ev.code, ev.err);
            if (w->state == WS_OPEN) {
                send_close(w, ev.code);
                w->close_status = UV_EPROTO;
                w->close_why = ev.err;
            }
            close_lower(w);
            return;
        }
    }
}

/* Feeds the bytes held while paused, for as long as we are not paused again. */
static void drain(ws_conn_t *w)
{
    while (w->pend_len && !w->paused && (w->state == WS_OPEN || w->state == WS_CLOSING)) {
        uint8_t *buf = w->pend;
        size_t len = w->pend_len;
        w->pend = NULL;
        w->pend_len = 0;
        process(w, buf, len);
        free(buf);
    }
}

static void feed(ws_conn_t *w, const uint8_t *d, size_t n)
{
    if (w->paused || w->pend_len) {
        stash(w, d, n);
        drain(w);
        return;
    }
    process(w, d, n);
}

/* ---- the upgrade request --------------------------------------------------------------------- */

/* Case-insensitive search of a comma-separated token list ("keep-alive, Upgrade"). */
static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(v + start, tok, tl) == 0)
            return true;
    }
    return false;
}

static void header_seen(ws_http_t *h)
{
    const char *f = h->field, *v = h->value;
    size_t n = h->value_len;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (!strcasecmp(f, "upgrade")) {
        h->upgrade_ws = h->upgrade_ws || has_token(v, n, "websocket");
    } else if (!strcasecmp(f, "connection")) {
        h->conn_upgrade = h->conn_upgrade || has_token(v, n, "upgrade");
    } else if (!strcasecmp(f, "sec-websocket-key")) {
        h->key_len = n < sizeof h->key ? n : 0;
        memcpy(h->key, v, h->key_len);
    } else if (!strcasecmp(f, "sec-websocket-version")) {
        h->has_version = true;
        h->version13 = n == 2 && memcmp(v, "13", 2) == 0;
    } else if (!strcasecmp(f, "sec-websocket-protocol")) {
        h->offered_protocols = true;
        if (has_token(v, n, "mqtt"))
            h->proto = PROTO_MQTT;
        else if (h->proto == PROTO_NONE && has_token(v, n, "mqttv3.1"))
            h->proto = PROTO_MQTT31;
    }
}

static int append(char *buf, size_t cap, size_t *len, const char *at, size_t n, bool *too_long)
{
    if (*len + n >= cap) {
        *too_long = true;
        n = *len < cap - 1 ? cap - 1 - *len : 0;
    }
    memcpy(buf + *len, at, n);
    *len += n;
    buf[*len] = 0;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    ws_http_t *h = ((ws_conn_t *)p->data)->http;
    return append(h->field, sizeof h->field, &h->field_len, at, n, &h->too_long);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    ws_http_t *h = ((ws_conn_t *)p->data)->http;
    return append(h->value, sizeof h->value, &h->value_len, at, n, &h->too_long);
}

/* Callbacks can split a header across reads (platform notes section 1), so it is only looked at
 * once llhttp says the value is complete. */
static int on_header_value_complete(llhttp_t *p)
{
    ws_http_t *h = ((ws_conn_t *)p->data)->http;
    if (!h->too_long)
        header_seen(h);
    h->field_len = h->value_len = 0;
    h->field[0] = h->value[0] = 0;
    h->too_long = false;
    return 0;
}

/* 2: no body, and make llhttp_execute() stop with HPE_PAUSED_UPGRADE right after the headers,
 * upgrade or not, so the request is judged here and what follows is left for the frame parser. */
static int on_headers_complete(llhttp_t *p)
{
    (void)p;
    return 2;
}

static const llhttp_settings_t http_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
};

static const char *check_request(const ws_http_t *h)
{
    if (h->parser.method != HTTP_GET)
        return "not a GET request";
    if (h->parser.http_major != 1 || h->parser.http_minor < 1)
        return "not HTTP/1.1";
    if (!h->upgrade_ws)
        return "no Upgrade: websocket header";
    if (!h->conn_upgrade)
        return "no Connection: Upgrade header";
    if (h->key_len != 24)
        return "missing or malformed Sec-WebSocket-Key";
    if (!h->version13)
        return "Sec-WebSocket-Version is not 13";
    if (h->offered_protocols && h->proto == PROTO_NONE)
        return "no MQTT subprotocol offered (mqtt or mqttv3.1)";
    return NULL;
}

static void refuse(ws_conn_t *w, const char *why)
{
    char resp[512];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                     "Sec-WebSocket-Version: 13\r\nContent-Length: %zu\r\n\r\n%s\n",
                     strlen(why) + 1, why);
    log_notice("ws_upgrade_refused", "peer=%s reason=\"%s\"", stream_peer(&w->s), why);
    write_copy(w, resp, (size_t)n);
    begin_close(w, UV_EPROTO, why, 0);
}

static int answer_upgrade(ws_conn_t *w)
{
    ws_http_t *h = w->http;
    char accept[29];
    if (ws_accept_key(h->key, h->key_len, accept) < 0) {
        refuse(w, "malformed Sec-WebSocket-Key");
        return -1;
    }
    const char *proto = h->proto == PROTO_MQTT     ? "Sec-WebSocket-Protocol: mqtt\r\n"
                        : h->proto == PROTO_MQTT31 ? "Sec-WebSocket-Protocol: mqttv3.1\r\n"
                                                   : "";
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     accept, proto);
    int rc = write_copy(w, resp, (size_t)n);
    if (rc < 0) {
        begin_close(w, rc, "could not answer the WebSocket upgrade", 0);
        return -1;
    }
    free(w->http);
    w->http = NULL;
    w->state = WS_OPEN;
    log_debug("ws_open", "peer=%s transport=%s", stream_peer(&w->s), w->s.ops->name);
    w->s.ev->on_open(&w->s);
    return 0;
}

static void handshake_data(ws_conn_t *w, const uint8_t *d, size_t n)
{
    ws_http_t *h = w->http;
    llhttp_errno_t e = llhttp_execute(&h->parser, (const char *)d, n);
    if (e == HPE_OK) {
        h->seen += n;
        if (h->seen > w->max_headers)
            refuse(w, "upgrade request too large");
        return;
    }
    if (e != HPE_PAUSED_UPGRADE) {
        refuse(w, "malformed HTTP request");
        return;
    }
    size_t used = (size_t)((const uint8_t *)llhttp_get_error_pos(&h->parser) - d);
    h->seen += used;
    const char *why = h->seen > w->max_headers ? "upgrade request too large" : check_request(h);
    if (why) {
        refuse(w, why);
        return;
    }
    if (answer_upgrade(w) == 0 && used < n) /* frames sent right behind the request */
        feed(w, d + used, n - used);
}

/* ---- the lower stream's events --------------------------------------------------------------- */

static void lower_data(stream_t *l, const uint8_t *data, size_t len)
{
    ws_conn_t *w = l->owner;
    if (w->state == WS_HTTP)
        handshake_data(w, data, len);
    else if (w->state == WS_OPEN || w->state == WS_CLOSING)
        feed(w, data, len);
}

static void lower_open(stream_t *l)
{
    (void)l; /* open for us only once the upgrade is answered */
}

static void lower_closed(stream_t *l, int status, const char *why)
{
    ws_conn_t *w = l->owner;
    w->lower_closed = true;
    if (w->state != WS_CLOSING && w->state != WS_CLOSED) {
        w->close_status = status;
        w->close_why = why ? why : "connection closed";
    }
    w->state = WS_CLOSED;
    stop_timer(w);
    free(w->http);
    free(w->pend);
    w->s.ev->on_closed(&w->s, w->close_status, w->close_why);
    free(w); /* the lower stream frees itself once this returns */
}

static const stream_events_t lower_events = {lower_data, lower_open, lower_closed};

/* ---- stream ops ------------------------------------------------------------------------------ */

static int op_start(stream_t *s)
{
    ws_conn_t *w = (ws_conn_t *)s;
    return w->lower->ops->start(w->lower);
}

static int op_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb, void *arg)
{
    ws_conn_t *w = (ws_conn_t *)s;
    if (w->state != WS_OPEN || w->lower_closed)
        return UV_ENOTCONN;
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (total == 0) {
        if (cb)
            cb(arg, 0);
        return 0;
    }
    ws_write_t *wr = malloc(sizeof *wr + (n + 1) * sizeof(uv_buf_t));
    if (!wr)
        return UV_ENOMEM;
    wr->cb = cb;
    wr->arg = arg;
    size_t hl = ws_frame_header(wr->hdr, WS_OP_BINARY, true, total);
    wr->bufs[0] = uv_buf_init((char *)wr->hdr, (unsigned)hl);
    memcpy(wr->bufs + 1, bufs, n * sizeof *bufs);
    int rc = w->lower->ops->write(w->lower, wr->bufs, n + 1, written, wr);
    if (rc < 0)
        free(wr);
    return rc;
}

static size_t op_queued(const stream_t *s)
{
    const ws_conn_t *w = (const ws_conn_t *)s;
    return w->lower_closed ? 0 : w->lower->ops->queued(w->lower);
}

static void op_pause(stream_t *s, int paused)
{
    ws_conn_t *w = (ws_conn_t *)s;
    w->paused = paused != 0;
    if (!w->lower_closed)
        w->lower->ops->pause(w->lower, paused);
    if (!paused)
        drain(w);
}

static void op_close(stream_t *s)
{
    begin_close((ws_conn_t *)s, 0, "closed by the broker", WS_CLOSE_NORMAL);
}

static const stream_ops_t ws_ops = {op_start, op_write, op_queued, op_pause, op_close, "ws"};
static const stream_ops_t wss_ops = {op_start, op_write, op_queued, op_pause, op_close, "wss"};

int stream_is_ws(const stream_t *s)
{
    return s && (s->ops == &ws_ops || s->ops == &wss_ops);
}

stream_t *ws_stream_lower(stream_t *s)
{
    if (!stream_is_ws(s))
        return s;
    ws_conn_t *w = (ws_conn_t *)s;
    return w->lower_closed ? NULL : w->lower;
}

stream_t *ws_stream_wrap(stream_t *lower, const ws_options_t *opt, const stream_events_t *ev,
                         void *owner)
{
    ws_conn_t *w = calloc(1, sizeof *w);
    ws_http_t *h = calloc(1, sizeof *h);
    if (!w || !h) {
        free(w);
        free(h);
        return NULL;
    }
    w->s.ops = stream_is_tls(lower) ? &wss_ops : &ws_ops;
    w->s.ev = ev;
    w->s.owner = owner;
    w->s.loop = lower->loop;
    w->s.peer = lower->peer;
    w->lower = lower;
    w->http = h;
    w->state = WS_HTTP;
    w->max_headers = opt && opt->max_headers ? opt->max_headers : DEFAULT_MAX_HEADERS;
    ws_parser_init(&w->fp, opt && opt->max_frame ? opt->max_frame : 268435460u, true);
    llhttp_init(&h->parser, HTTP_REQUEST, &http_settings);
    h->parser.data = w;
    lower->ev = &lower_events;
    lower->owner = w;
    return &w->s;
}
