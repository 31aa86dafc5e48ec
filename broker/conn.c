/*
 * broker/conn.c: one client connection: framing, dispatch, batched writes, close.
 *
 * Reading: bytes from the transport are framed with proto_frame(). Whole packets are decoded in
 * place from the transport's buffer; only a packet split across reads is copied, into a buffer
 * sized from its fixed header (which proto_frame has already checked against max_packet_size, so a
 * peer cannot make us allocate for a packet we will refuse).
 *
 * Writing: every packet produced while handling input (acks, forwarded PUBLISHes) goes into the
 * connection's write batch: small encoded packets share one arena, payloads are referenced from
 * their messages. The batch becomes one transport write at the end of the loop turn
 * (worker.c's check handle), so a burst of messages costs one system call.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/config.h"
#include "broker/core.h"
#include "broker/log.h"

enum { WRITE_HIGH_WATER = 1 << 20, BIG_RBUF = 64 * 1024 };

typedef struct {
    const uint8_t *ptr; /* NULL: `off` into the arena */
    size_t off, len;
} wpiece_t;

struct wbatch {
    conn_t *c;
    wpiece_t *pieces;
    unsigned n, cap;
    msg_t **refs;
    unsigned n_refs, cap_refs;
    uint8_t *arena;
    size_t used, arena_cap;
    size_t bytes;
    uv_buf_t *bufs;
};

static void batch_free(wbatch_t *wb)
{
    for (unsigned i = 0; i < wb->n_refs; i++)
        msg_unref(wb->refs[i]);
    free(wb->pieces);
    free(wb->refs);
    free(wb->arena);
    free(wb->bufs);
    free(wb);
}

static wbatch_t *batch_get(conn_t *c)
{
    if (!c->batch)
        c->batch = calloc(1, sizeof(wbatch_t));
    return c->batch;
}

static int add_piece(wbatch_t *wb, const uint8_t *ptr, size_t off, size_t len)
{
    if (!ptr && wb->n && !wb->pieces[wb->n - 1].ptr &&
        wb->pieces[wb->n - 1].off + wb->pieces[wb->n - 1].len == off) {
        wb->pieces[wb->n - 1].len += len; /* contiguous arena bytes: one buffer */
    } else {
        if (wb->n == wb->cap) {
            unsigned cap = wb->cap ? wb->cap * 2 : 4;
            wpiece_t *p = realloc(wb->pieces, cap * sizeof *p);
            if (!p)
                return -ENOMEM;
            wb->pieces = p;
            wb->cap = cap;
        }
        wb->pieces[wb->n++] = (wpiece_t){ptr, off, len};
    }
    wb->bytes += len;
    return 0;
}

static uint8_t *arena_reserve(wbatch_t *wb, size_t len)
{
    if (wb->used + len > wb->arena_cap) {
        size_t cap = wb->arena_cap ? wb->arena_cap : 128;
        while (cap < wb->used + len)
            cap *= 2;
        uint8_t *a = realloc(wb->arena, cap);
        if (!a)
            return NULL;
        wb->arena = a;
        wb->arena_cap = cap;
    }
    return wb->arena + wb->used;
}

int conn_send(conn_t *c, const mqtt_packet_t *pkt)
{
    if (c->state == CS_CLOSING || !c->stream)
        return -EPIPE;
    wbatch_t *wb = batch_get(c);
    size_t size = wb ? proto_encoded_size(pkt, c->version) : 0;
    uint8_t *at = size ? arena_reserve(wb, size) : NULL;
    if (!at)
        return -ENOMEM;
    size_t n = proto_encode(pkt, c->version, at, size);
    if (n == 0 || add_piece(wb, NULL, wb->used, n) < 0)
        return -ENOMEM;
    wb->used += n;
    conn_schedule(c);
    return 0;
}

int conn_send_publish(conn_t *c, const mqtt_packet_t *pkt, msg_t *m)
{
    if (c->state == CS_CLOSING || !c->stream)
        return -EPIPE;
    wbatch_t *wb = batch_get(c);
    size_t max_head = 16 + (size_t)m->topic_len + 64;
    const mqtt_props_t *pp = &pkt->u.publish.props;
    max_head += (size_t)pp->content_type.len + pp->response_topic.len + pp->correlation_data.len;
    for (uint32_t i = 0; i < pp->n_user; i++)
        max_head += 4u + pp->user[i].name.len + pp->user[i].value.len + 1;
    max_head += (size_t)pp->n_sub_ids * 5;
    uint8_t *at = wb ? arena_reserve(wb, max_head) : NULL;
    if (!at)
        return -ENOMEM;
    size_t n = proto_encode_publish_head(pkt, c->version, at, max_head);
    if (n == 0 || add_piece(wb, NULL, wb->used, n) < 0)
        return -ENOMEM;
    wb->used += n;
    if (m->payload_len) {
        if (wb->n_refs == wb->cap_refs) {
            unsigned cap = wb->cap_refs ? wb->cap_refs * 2 : 16;
            msg_t **r = realloc(wb->refs, cap * sizeof *r);
            if (!r)
                return -ENOMEM;
            wb->refs = r;
            wb->cap_refs = cap;
        }
        wb->refs[wb->n_refs++] = msg_ref(m);
        add_piece(wb, m->payload, 0, m->payload_len);
    }
    atomic_fetch_add_explicit(&c->w->b->stats.msgs_sent, 1, memory_order_relaxed);
    conn_schedule(c);
    return 0;
}

static void batch_written(void *arg, int status)
{
    wbatch_t *wb = arg;
    conn_t *c = wb->c;
    (void)status;
    c->unsent -= wb->bytes;
    atomic_fetch_add_explicit(&c->w->b->stats.bytes_sent, wb->bytes, memory_order_relaxed);
    batch_free(wb);
    /* room again: deliveries held back by backpressure can go */
    if (c->session && c->state == CS_CONNECTED && c->unsent < WRITE_HIGH_WATER / 2)
        conn_schedule(c);
    conn_unref(c);
}

/* Hands the write batch to the transport, whatever the connection state. */
static void submit(conn_t *c)
{
    wbatch_t *wb = c->batch;
    if (!wb || wb->n == 0 || !c->stream)
        return;
    c->batch = NULL;
    wb->bufs = malloc(wb->n * sizeof *wb->bufs);
    if (!wb->bufs) {
        batch_free(wb);
        return;
    }
    for (unsigned i = 0; i < wb->n; i++) {
        const wpiece_t *p = &wb->pieces[i];
        const uint8_t *base = p->ptr ? p->ptr : wb->arena + p->off;
        wb->bufs[i] = uv_buf_init((char *)base, (unsigned)p->len);
    }
    wb->c = conn_ref(c);
    c->unsent += wb->bytes;
    if (c->stream->ops->write(c->stream, wb->bufs, wb->n, batch_written, wb) < 0) {
        c->unsent -= wb->bytes;
        batch_free(wb);
        conn_unref(c);
    }
}

void conn_flush(conn_t *c)
{
    if (c->state == CS_CONNECTED && c->session)
        session_flush(c->w->b, c->session, c);
    submit(c);
}

void conn_schedule(conn_t *c)
{
    if (!c->pending) {
        c->pending = true;
        ptrvec_push(&c->w->pending, conn_ref(c));
    }
}

bool conn_writable(const conn_t *c)
{
    return c->state == CS_CONNECTED && c->unsent < WRITE_HIGH_WATER;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static int dispatch(conn_t *c, mqtt_packet_t *p)
{
    if (c->state == CS_NEW && p->type != MQTT_CONNECT)
        return conn_protocol_error(c, MQTT_RC_PROTOCOL_ERROR, "first packet is not CONNECT");
    if (c->state == CS_AUTH && p->type != MQTT_AUTH && p->type != MQTT_DISCONNECT)
        return conn_protocol_error(c, MQTT_RC_PROTOCOL_ERROR,
                                   "packet other than AUTH during authentication");
    switch (p->type) {
    case MQTT_CONNECT:
        return handle_connect(c, p);
    case MQTT_PUBLISH:
        return handle_publish(c, p);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return handle_ack(c, p);
    case MQTT_SUBSCRIBE:
        return handle_subscribe(c, p);
    case MQTT_UNSUBSCRIBE:
        return handle_unsubscribe(c, p);
    case MQTT_PINGREQ: {
        mqtt_packet_t r = {.type = MQTT_PINGRESP};
        return conn_send(c, &r) < 0 ? 0 : 0;
    }
    case MQTT_DISCONNECT:
        return handle_disconnect(c, p);
    case MQTT_AUTH:
        return handle_auth(c, p);
    default:
        return conn_protocol_error(c, MQTT_RC_PROTOCOL_ERROR, "unexpected packet type");
    }
}

/* The protocol level of a CONNECT, read from the frame even when it did not decode. */
static int connect_level(const uint8_t *frame, size_t len)
{
    size_t i = 1;
    while (i < len && i < 5 && (frame[i] & 0x80))
        i++;
    i++;
    if (i + 2 > len)
        return -1;
    size_t name_len = ((size_t)frame[i] << 8) | frame[i + 1];
    i += 2 + name_len;
    return i < len ? frame[i] : -1;
}

/* A CONNECT that failed to decode: answer with a CONNACK the client can read where the spec
 * has a code for it (unsupported version, bad client id; any reason for MQTT 5), then close. */
static int refuse_connect(conn_t *c, const uint8_t *frame, size_t len, mqtt_rc_t rc,
                          const char *why)
{
    int level = connect_level(frame, len);
    mqtt_packet_t ack = {.type = MQTT_CONNACK};
    bool send = true;
    if (rc == MQTT_RC_UNSUPPORTED_VERSION && level != MQTT_V5 && level < 6) {
        c->version = MQTT_V311;
        ack.u.connack.rc = MQTT311_CONNACK_BAD_VERSION;
    } else if (level == MQTT_V5 || rc == MQTT_RC_UNSUPPORTED_VERSION) {
        c->version = MQTT_V5;
        ack.u.connack.rc = (uint8_t)rc;
    } else if (rc == MQTT_RC_CLIENT_ID_NOT_VALID) {
        c->version = MQTT_V311;
        ack.u.connack.rc = MQTT311_CONNACK_ID_REJECTED;
    } else {
        send = false;
    }
    if (send)
        conn_send(c, &ack);
    log_notice("connect_refused", "peer=%s rc=0x%02x reason=\"%s\"", stream_peer(c->stream), rc, why);
    conn_close(c, -1, why);
    return -1;
}

static int process(conn_t *c, const uint8_t *frame, size_t len)
{
    proto_ctx_t ctx = {PROTO_ROLE_SERVER, c->version, c->state != CS_NEW,
                       c->w->b->lim.max_properties_size};
    mqtt_packet_t p;
    const char *why = "invalid packet";
    atomic_fetch_add_explicit(&c->w->b->stats.msgs_received, 1, memory_order_relaxed);
    mqtt_rc_t rc = proto_decode(&ctx, frame, len, &p, &why);
    if (rc != MQTT_RC_SUCCESS) {
        if (c->state == CS_NEW && (frame[0] >> 4) == MQTT_CONNECT)
            return refuse_connect(c, frame, len, rc, why);
        return conn_protocol_error(c, rc, why);
    }
    int r = dispatch(c, &p);
    proto_packet_free(&p);
    return r;
}

/* Grows the partial-packet buffer to hold `need` bytes. It grows with the bytes that actually
 * arrived (doubling, never past the packet's size), not with the size a header announces: a peer
 * that sends a few header bytes and stops costs a few bytes, not max_packet_size. */
static int rbuf_reserve(conn_t *c, size_t need)
{
    if (need <= c->rcap)
        return 0;
    size_t cap = (size_t)c->rcap * 2;
    if (cap < 64)
        cap = 64;
    if (cap < need)
        cap = need;
    if (c->rneed && cap > c->rneed)
        cap = c->rneed;
    uint8_t *b = realloc(c->rbuf, cap);
    if (!b)
        return -ENOMEM;
    c->rbuf = b;
    c->rcap = (uint32_t)cap;
    return 0;
}

static void rbuf_reset(conn_t *c)
{
    c->rlen = c->rneed = 0;
    if (c->rcap > BIG_RBUF) { /* don't keep a large buffer for an idle client */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
}

/* Returns the packet's total size, 0 if the header is not complete, or -1 after closing. */
static long frame_size(conn_t *c, const uint8_t *buf, size_t len)
{
    size_t hl;
    uint32_t rem;
    if (c->state == CS_NEW && len > 0 && (buf[0] >> 4) != MQTT_CONNECT) {
        /* decided from the first byte: nothing of a non-CONNECT first packet is kept */
        conn_protocol_error(c, MQTT_RC_PROTOCOL_ERROR, "first packet is not CONNECT");
        return -1;
    }
    int r = proto_frame(buf, len, c->w->b->lim.max_packet_size, &hl, &rem);
    if (r == PROTO_FRAME_NEED_MORE)
        return 0;
    if (r < 0) {
        conn_protocol_error(c, -r, r == -MQTT_RC_PACKET_TOO_LARGE ? "packet larger than max_packet_size"
                                                                  : "malformed remaining length");
        return -1;
    }
    return (long)(hl + rem);
}

/* Continues a packet split across reads; returns bytes consumed or -1. */
static long feed_partial(conn_t *c, const uint8_t *data, size_t len)
{
    if (c->rneed == 0) { /* header still incomplete: take one byte at a time, at most 5 */
        if (rbuf_reserve(c, 8) < 0)
            return -1;
        c->rbuf[c->rlen++] = data[0];
        long total = frame_size(c, c->rbuf, c->rlen);
        if (total < 0)
            return -1;
        if (total > 0)
            c->rneed = (uint32_t)total;
        if (c->rneed && c->rlen == c->rneed) {
            int r = process(c, c->rbuf, c->rlen);
            rbuf_reset(c);
            return r < 0 ? -1 : 1;
        }
        return 1;
    }
    size_t take = c->rneed - c->rlen;
    if (take > len)
        take = len;
    if (rbuf_reserve(c, c->rlen + take) < 0) {
        conn_close(c, MQTT_RC_SERVER_BUSY, "out of memory");
        return -1;
    }
    memcpy(c->rbuf + c->rlen, data, take);
    c->rlen += (uint32_t)take;
    if (c->rlen == c->rneed) {
        int r = process(c, c->rbuf, c->rlen);
        rbuf_reset(c);
        if (r < 0)
            return -1;
    }
    return (long)take;
}

/* One framing step: handles a whole packet, or keeps the start of one. Returns the bytes
 * consumed, or -1 when the connection was closed. */
static long feed_step(conn_t *c, const uint8_t *data, size_t len)
{
    if (c->rlen > 0)
        return feed_partial(c, data, len);
    long total = frame_size(c, data, len);
    if (total < 0)
        return -1;
    if (total > 0 && (size_t)total <= len)
        return process(c, data, (size_t)total) < 0 ? -1 : total;
    /* keep the beginning of a packet for the next read */
    if (rbuf_reserve(c, total > 0 ? len : 8) < 0) {
        conn_close(c, MQTT_RC_SERVER_BUSY, "out of memory");
        return -1;
    }
    if (total == 0) /* incomplete header: feed_partial takes it byte by byte */
        return feed_partial(c, data, len);
    memcpy(c->rbuf, data, len);
    c->rlen = (uint32_t)len;
    c->rneed = (uint32_t)total;
    return (long)len;
}

/* Whether this second's message or byte budget is used up. */
static bool rate_spent(const conn_t *c)
{
    const limits_t *lim = &c->w->b->lim;
    return (lim->rate_limit_bytes && c->rate_bytes >= lim->rate_limit_bytes) ||
           (lim->rate_limit_messages && c->rate_msgs >= lim->rate_limit_messages);
}

/* Keeps unread input until the next tick. At most one read's worth: reading is paused. */
static int hold(conn_t *c, const uint8_t *data, size_t len)
{
    uint8_t *h = realloc(c->held, (size_t)c->held_len + len);
    if (!h) {
        conn_close(c, MQTT_RC_SERVER_BUSY, "out of memory");
        return -1;
    }
    memcpy(h + c->held_len, data, len);
    c->held = h;
    c->held_len += (uint32_t)len;
    return 0;
}

/*
 * The budget is checked before every packet, not once per read: one read can bring tens of
 * thousands of small PUBLISHes, and pausing after it would let all of them through. What is left
 * of the read when the budget runs out waits in c->held for the next tick.
 */
static void feed(conn_t *c, const uint8_t *data, size_t len)
{
    size_t done = 0;
    while (done < len && c->state != CS_CLOSING) {
        if (rate_spent(c)) {
            if (hold(c, data + done, len - done) == 0)
                conn_check_rate(c);
            return;
        }
        long used = feed_step(c, data + done, len - done);
        if (used < 0)
            return;
        done += (size_t)used;
        c->rate_bytes += (uint64_t)used;
    }
}

/* Over a per-second budget, stop reading until the next tick: the client slows down (TCP
 * backpressure) instead of being dropped, and others on the worker are not starved. */
void conn_check_rate(conn_t *c)
{
    if (c->throttled || c->state == CS_CLOSING || !c->stream || !rate_spent(c))
        return;
    c->throttled = true;
    c->stream->ops->pause(c->stream, 1);
    log_debug("throttled", "client=%s bytes=%llu messages=%u held=%u", conn_id(c),
              (unsigned long long)c->rate_bytes, c->rate_msgs, c->held_len);
}

/* A new second: what was held goes first (it may spend the budget again), then reading resumes. */
static void rate_new_second(conn_t *c)
{
    c->rate_bytes = 0;
    c->rate_msgs = 0;
    if (!c->throttled)
        return;
    c->throttled = false;
    if (c->held_len) {
        uint8_t *h = c->held;
        size_t n = c->held_len;
        c->held = NULL;
        c->held_len = 0;
        conn_ref(c);
        feed(c, h, n);
        free(h);
        conn_unref(c);
    }
    if (!c->throttled && c->state != CS_CLOSING && c->stream)
        c->stream->ops->pause(c->stream, 0);
}

static void on_data(stream_t *s, const uint8_t *data, size_t len)
{
    conn_t *c = s->owner;
    c->last_rx = (uint32_t)clock_ms();
    atomic_fetch_add_explicit(&c->w->b->stats.bytes_received, len, memory_order_relaxed);
    conn_ref(c);
    feed(c, data, len);
    conn_check_rate(c);
    conn_unref(c);
}

static void on_open(stream_t *s)
{
    conn_t *c = s->owner;
    /* connect_timeout runs from when MQTT bytes can flow (after a TLS handshake) */
    if (c)
        c->created_at = c->last_rx = (uint32_t)clock_ms();
}

static void unlink_from_worker(conn_t *c)
{
    worker_t *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else if (w->conns == c)
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    w->n_conns--;
}

static void on_closed(stream_t *s, int status, const char *why)
{
    conn_t *c = s->owner;
    if (!c) /* closed before a connection was made for it */
        return;
    c->stream = NULL;
    if (c->state != CS_CLOSING) {
        c->state = CS_CLOSING;
        if (c->session || log_enabled(LOGL_DEBUG))
            log_write(c->w->b->lim.connection_messages ? LOGL_INFO : LOGL_DEBUG, "disconnect",
                      "client=%s peer=%s reason=\"%s\" status=%d", conn_id(c),
                     stream_peer(s), why, status);
    }
    auth_conn_closed(c);
    conn_detach_session(c);
    unlink_from_worker(c);
    atomic_fetch_sub(&c->w->b->stats.connections, 1);
    if (c->lrt)
        atomic_fetch_sub(&c->lrt->conns, 1);
    worker_t *w = c->w;
    conn_unref(c);
    worker_maybe_finish(w);
}

static const stream_events_t conn_events = {on_data, on_open, on_closed};

const stream_events_t *conn_stream_events(void)
{
    return &conn_events;
}

static void set_text(char **dst, const char *p, size_t len, size_t max)
{
    char *v = NULL;
    if (p && len) {
        if (len > max)
            len = max;
        if (!(v = malloc(len + 1)))
            return;
        memcpy(v, p, len);
        v[len] = 0;
    }
    free(*dst);
    *dst = v;
}

static void drop_client_id(conn_t *c)
{
    if (c->id_borrowed)
        session_unref((session_t *)(void *)(c->client_id - offsetof(session_t, client_id)));
    else
        free(c->client_id);
    c->client_id = NULL;
    c->id_borrowed = false;
}

void conn_set_client_id(conn_t *c, const char *p, size_t len)
{
    if (c->id_borrowed)
        drop_client_id(c);
    set_text(&c->client_id, p, len, SIZE_MAX - 1);
}

void conn_use_session_id(conn_t *c, session_t *s)
{
    drop_client_id(c);
    c->client_id = session_ref(s)->client_id;
    c->id_borrowed = true;
}

void conn_set_username(conn_t *c, const char *p, size_t len)
{
    set_text(&c->username, p, len, 63);
}

conn_t *conn_new(worker_t *w, stream_t *s, listener_rt_t *lrt)
{
    const acemq_listener_t *l = lrt ? lrt->cfg : NULL;
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1); /* the worker's list / the stream's reference */
    c->w = w;
    c->stream = s;
    c->lrt = lrt;
    if (lrt)
        atomic_fetch_add(&lrt->conns, 1);
    c->max_qos = (uint8_t)(l && l->max_qos >= 0 ? l->max_qos : w->b->lim.max_qos);
    c->max_topic_alias =
        (uint16_t)(l && l->max_topic_alias >= 0 ? l->max_topic_alias : w->b->lim.max_topic_alias);
    c->created_at = c->last_rx = (uint32_t)clock_ms();
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    atomic_fetch_add(&w->b->stats.connections, 1);
    return c;
}

void conn_unref(conn_t *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (c->batch)
        batch_free(c->batch);
    for (uint16_t i = 0; i < c->n_aliases; i++)
        free(c->aliases[i]);
    free(c->aliases);
    free(c->rbuf);
    free(c->held);
    drop_client_id(c);
    free(c->username);
    free(c);
}

void conn_close(conn_t *c, int rc, const char *why)
{
    if (c->state == CS_CLOSING)
        return;
    if (rc >= 0 && c->version == MQTT_V5 && c->state != CS_NEW) {
        mqtt_packet_t d = {.type = MQTT_DISCONNECT};
        d.u.reason.rc = (uint8_t)rc;
        if (c->problem_info && why) {
            d.u.reason.props.present = MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
            d.u.reason.props.reason_string.p = (const uint8_t *)why;
            d.u.reason.props.reason_string.len = (uint16_t)strlen(why);
        }
        conn_send(c, &d);
    }
    c->state = CS_CLOSING;
    submit(c); /* what is batched (a CONNACK, the DISCONNECT) still goes, before the close */
    /* The session lets go now, not when the socket is finally gone (a loop turn or a shutdown
     * grace later): a client that reconnects at once, possibly to another worker, must find
     * the session already ended (clean session) or offline, with its will handled. */
    conn_detach_session(c);
    log_write(c->w->b->lim.connection_messages ? LOGL_INFO : LOGL_DEBUG, "disconnect",
              "client=%s peer=%s reason=\"%s\"", conn_id(c),
             stream_peer(c->stream), why ? why : "closed");
    if (c->stream)
        c->stream->ops->close(c->stream);
}

int conn_protocol_error(conn_t *c, int rc, const char *why)
{
    log_notice("protocol_error", "client=%s peer=%s rc=0x%02x reason=\"%s\"", conn_id(c),
               stream_peer(c->stream), rc, why);
    conn_close(c, c->version == MQTT_V5 ? rc : -1, why);
    return -1;
}

void conn_tick(conn_t *c, uint64_t now)
{
    const limits_t *lim = &c->w->b->lim;
    if (c->state == CS_CLOSING)
        return;
    rate_new_second(c);
    if (c->state == CS_CLOSING)
        return;
    if (c->state != CS_CONNECTED) {
        if (lim->connect_timeout_ms && (uint32_t)now - c->created_at > lim->connect_timeout_ms)
            conn_close(c, MQTT_RC_MAX_CONNECT_TIME, "no CONNECT within connect_timeout");
        return;
    }
    if (c->keepalive && (uint32_t)now - c->last_rx > (uint32_t)c->keepalive * 1500u)
        conn_close(c, MQTT_RC_KEEPALIVE_TIMEOUT, "keepalive timeout");
}
