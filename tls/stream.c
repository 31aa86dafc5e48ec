/*
 * tls/stream.c: the TLS stream_t. Ciphertext from the lower stream is buffered and fed to
 * mbedTLS through bio_recv; every record mbedTLS produces goes to an output buffer through
 * bio_send and is handed to the lower stream in one write per call into mbedTLS (so a batch of
 * MQTT packets becomes one TCP write, and nothing here ever returns WANT_WRITE, which would
 * oblige us to repeat the same mbedtls_ssl_write). The handshake itself is in handshake.c.
 */
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/platform_util.h>

#include "tls/tls_int.h"

static const stream_ops_t tls_ops;

/* ---- byte buffers ---- */

int tls_buf_append(tls_buf_t *b, const uint8_t *p, size_t n)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap && b->off) { /* reclaim consumed space before growing */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np)
            return UV_ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void tls_buf_free(tls_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- BIO: runs on whichever thread currently owns the connection ---- */

int tls_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    tls_conn_t *c = ctx;
    size_t avail = c->in.len - c->in.off;
    if (avail == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (len > avail)
        len = avail;
    memcpy(buf, c->in.p + c->in.off, len);
    c->in.off += len;
    if (c->in.off == c->in.len) /* idle connections should not pin a buffer */
        tls_buf_free(&c->in);
    return (int)len;
}

int tls_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    tls_conn_t *c = ctx;
    if (tls_buf_append(&c->out, buf, len) < 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    return (int)len;
}

static void out_written(void *arg, int status)
{
    (void)status;
    free(arg);
}

/* Hands everything mbedTLS produced to the lower stream. Loop thread only. */
void tls_flush(tls_conn_t *c)
{
    size_t n = c->out.len - c->out.off;
    if (n == 0 || c->lower_closed)
        return;
    uint8_t *p = c->out.p;
    if (c->out.off)
        memmove(p, p + c->out.off, n);
    memset(&c->out, 0, sizeof c->out);
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int rc = c->lower->ops->write(c->lower, &b, 1, out_written, p);
    if (rc < 0) {
        free(p);
        tls_fail(c, rc, "write to the socket failed");
    }
}

/* ---- close ---- */

static void timer_closed(uv_handle_t *h)
{
    tls_conn_t *c = h->data;
    c->timer_closed = 1;
    tls_finish_close(c);
}

/* Releases everything once the lower stream, the timer and any pool work are done, then tells
 * the owner. The stream_t block itself is the owner's to free. */
void tls_finish_close(tls_conn_t *c)
{
    if (!c->lower_closed || !c->timer_closed || c->running || c->reading || c->closed_sent)
        return;
    c->closed_sent = 1;
    tls_hs_release(c);
    if (c->ssl_ready)
        mbedtls_ssl_free(&c->ssl);
    tls_buf_free(&c->in);
    tls_buf_free(&c->pend);
    tls_buf_free(&c->out);
    mbedtls_platform_zeroize(c->master, sizeof c->master);
    mbedtls_platform_zeroize(c->randoms, sizeof c->randoms);
    free(c->psk_id);
    free(c->cert_id);
    c->psk_id = NULL;
    c->cert_id = NULL;
    tls_gen_put(c->gen);
    c->gen = NULL;
    c->lower = NULL; /* stream_tcp frees itself after its on_closed */
    /* Like stream_tcp.c: the transport frees its own block once on_closed has returned. */
    c->s.ev->on_closed(&c->s, c->close_status, c->close_why);
    free(c);
}

/* Starts closing: a close_notify if the session is open, then the lower stream (which flushes
 * before it closes). A handshake step in the pool finishes first (see handshake.c). */
static void begin_close(tls_conn_t *c, int status, const char *why, int notify)
{
    if (c->state == CS_CLOSING)
        return;
    int was_open = c->state == CS_OPEN;
    c->state = CS_CLOSING;
    c->close_status = status;
    c->close_why = why;
    if (c->running)
        return; /* hs_after() comes back here through tls_finish_close */
    if (was_open && notify && !c->lower_closed) {
        mbedtls_ssl_close_notify(&c->ssl);
        tls_flush(c);
    }
    tls_close_rest(c);
}

void tls_fail(tls_conn_t *c, int status, const char *why)
{
    begin_close(c, status, why, 0);
}

/* Closes the timer and the lower stream, once each. Also the end of a close that had to wait
 * for a handshake step in the pool (handshake.c). */
void tls_close_rest(tls_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->timer)) {
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, timer_closed);
    }
    if (!c->lower_closed && !c->lower_close_called) {
        c->lower_close_called = 1;
        c->lower->ops->close(c->lower);
    }
}

/* ---- reading ---- */

static void io_error(tls_conn_t *c, const char *op, int rc)
{
    char msg[128];
    mbedtls_strerror(rc, msg, sizeof msg);
    tls_logf(c->srv, TLS_LOG_NOTICE, "tls_io_failed", "op=%s peer=%s error=\"%s\"", op, stream_peer(&c->s),
             msg);
    begin_close(c, UV_EPROTO, "TLS error on an open connection", 0);
}

/* Decrypts everything buffered; records after Finished or several records may be waiting. */
void tls_drive_read(tls_conn_t *c)
{
    uint8_t plain[MBEDTLS_SSL_IN_CONTENT_LEN];
    if (c->reading || c->state != CS_OPEN)
        return;
    c->reading = 1;
    while (!c->paused && c->state == CS_OPEN) {
        int r = mbedtls_ssl_read(&c->ssl, plain, sizeof plain);
        if (r > 0) {
            c->s.ev->on_data(&c->s, plain, (size_t)r);
        } else if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
            break;
        } else if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            begin_close(c, 0, "peer closed the TLS session", 1);
        } else {
            io_error(c, "read", r);
        }
    }
    mbedtls_platform_zeroize(plain, sizeof plain);
    c->reading = 0;
    if (c->state == CS_OPEN)
        tls_flush(c);
    tls_finish_close(c);
}

/* ---- the lower stream's events ---- */

static void lower_data(stream_t *l, const uint8_t *data, size_t len)
{
    tls_conn_t *c = l->owner;
    if (c->state == CS_CLOSING)
        return;
    tls_buf_t *b = c->running ? &c->pend : &c->in; /* a pool step owns `in` while running */
    if (tls_buf_append(b, data, len) < 0) {
        tls_fail(c, UV_ENOMEM, "out of memory");
        return;
    }
    if (c->state == CS_OPEN)
        tls_drive_read(c);
    else
        tls_hs_data(c);
}

static void lower_open(stream_t *l)
{
    (void)l; /* TLS is "open" only after its own handshake */
}

static void lower_closed(stream_t *l, int status, const char *why)
{
    tls_conn_t *c = l->owner;
    c->lower_closed = 1;
    if (c->state != CS_CLOSING) {
        if (c->state != CS_OPEN)
            tls_logf(c->srv, TLS_LOG_NOTICE, "tls_handshake_failed", "peer=%s reason=\"peer "
                     "closed the connection during the handshake\"", stream_peer(&c->s));
        c->state = CS_CLOSING;
        c->close_status = status;
        c->close_why = why ? why : "connection closed";
        if (!c->running)
            tls_close_rest(c);
    }
    tls_finish_close(c);
}

static const stream_events_t lower_events = {lower_data, lower_open, lower_closed};

/* Until tls_stream_wrap() takes the lower stream over, and if it fails: nothing is started,
 * so only on_closed can come (the TCP stream then frees itself). */
static void orphan_data(stream_t *l, const uint8_t *data, size_t len)
{
    (void)l, (void)data, (void)len;
}

static void orphan_closed(stream_t *l, int status, const char *why)
{
    (void)l, (void)status, (void)why;
}

static const stream_events_t orphan_events = {orphan_data, lower_open, orphan_closed};

/* ---- stream ops ---- */

static int op_start(stream_t *s)
{
    tls_conn_t *c = (tls_conn_t *)s;
    if (c->state != CS_NEW)
        return UV_EALREADY;
    c->state = CS_HANDSHAKE;
    c->deadline = uv_now(s->loop) + c->gen->timeout_ms;
    tls_hs_arm_timer(c);
    return c->lower->ops->start(c->lower);
}

static int op_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb, void *arg)
{
    tls_conn_t *c = (tls_conn_t *)s;
    if (c->state != CS_OPEN)
        return UV_ENOTCONN;
    for (unsigned i = 0; i < n; i++) {
        size_t off = 0;
        while (off < bufs[i].len) { /* mbedtls_ssl_write takes at most one record per call */
            int r = mbedtls_ssl_write(&c->ssl, (const uint8_t *)bufs[i].base + off,
                                      bufs[i].len - off);
            if (r < 0) {
                io_error(c, "write", r);
                return UV_EPROTO;
            }
            off += (size_t)r;
        }
    }
    tls_flush(c);
    if (cb)
        cb(arg, 0); /* encrypted already: the caller's bytes are no longer referenced */
    return 0;
}

static size_t op_queued(const stream_t *s)
{
    const tls_conn_t *c = (const tls_conn_t *)s;
    size_t n = c->out.len - c->out.off;
    return c->lower_closed ? n : n + c->lower->ops->queued(c->lower);
}

static void op_pause(stream_t *s, int paused)
{
    tls_conn_t *c = (tls_conn_t *)s;
    c->paused = paused != 0;
    if (!c->lower_closed)
        c->lower->ops->pause(c->lower, paused);
    if (!paused && c->state == CS_OPEN)
        tls_drive_read(c); /* plaintext may already be waiting in mbedTLS */
}

static void op_close(stream_t *s)
{
    begin_close((tls_conn_t *)s, 0, "closed", 1);
}

static const stream_ops_t tls_ops = {op_start, op_write, op_queued, op_pause, op_close, "tls"};

int stream_is_tls(const stream_t *s)
{
    return s && s->ops == &tls_ops;
}

stream_t *tls_stream_wrap(tls_server_t *srv, stream_t *lower, const stream_events_t *ev,
                          void *owner)
{
    tls_conn_t *c = calloc(1, sizeof *c);
    if (!c || !(c->gen = tls_gen_get(srv))) {
        free(c);
        return NULL;
    }
    c->s.ops = &tls_ops;
    c->s.ev = ev;
    c->s.owner = owner;
    c->s.loop = lower->loop;
    c->s.peer = lower->peer;
    c->srv = srv;
    c->lower = lower;
    c->state = CS_NEW;
    lower->ev = &lower_events;
    lower->owner = c;
    uv_timer_init(lower->loop, &c->timer);
    c->timer.data = c;
    c->work.data = c;
    return &c->s;
}

stream_t *tls_stream_new(tls_server_t *srv, uv_loop_t *loop, int fd, const struct sockaddr *peer,
                         size_t peer_len, const stream_events_t *ev, void *owner)
{
    stream_t *lower = stream_tcp_new(loop, fd, peer, peer_len, &orphan_events, NULL);
    if (!lower)
        return NULL;
    stream_t *s = tls_stream_wrap(srv, lower, ev, owner);
    if (!s)
        lower->ops->close(lower);
    return s;
}
