/*
 * broker/stream_tcp.c: the plain TCP transport behind the stream_t face.
 *
 * Reads land in one per-thread buffer (a worker handles one read callback at a time and the
 * connection copies whatever it cannot consume at once), so an idle connection holds no read
 * buffer at all. Writes go straight to uv_write with the caller's buffers: the bytes stay owned
 * by the caller until its callback runs. Closing shuts the write side down first so queued bytes
 * (a final DISCONNECT, say) reach the peer, with a timer so a peer that never reads cannot hold
 * the socket open.
 */
#include "broker/stream.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { READ_BUF = 64 * 1024, CLOSE_GRACE_MS = 2000 };

typedef struct {
    stream_t s;
    uv_timer_t *grace; /* only while closing: idle connections don't pay for it */
    const char *why;
    int status;
    uint8_t pending_handles; /* handles still to be closed before the memory can go */
    uint8_t closing;
    uint8_t closed_reported;
    uv_tcp_t tcp[1]; /* the socket: an array so that t->tcp reads as the handle pointer */
} tcp_stream_t;

static tcp_stream_t *of_handle(uv_tcp_t *tcp)
{
    return (tcp_stream_t *)(void *)((char *)tcp - offsetof(tcp_stream_t, tcp));
}

typedef struct {
    uv_write_t req;
    stream_write_cb cb;
    void *arg;
} tcp_write_t;

static _Thread_local char read_buf[READ_BUF];

static void report_and_free(tcp_stream_t *t)
{
    if (!t->closed_reported) {
        t->closed_reported = 1;
        t->s.ev->on_closed(&t->s, t->status, t->why);
    }
    free(t);
}

static void handle_closed(uv_handle_t *h)
{
    tcp_stream_t *t = h->data;
    if (h != (uv_handle_t *)t->tcp)
        free(h); /* the grace timer */
    if (--t->pending_handles == 0)
        report_and_free(t);
}

static void close_handles(tcp_stream_t *t)
{
    if (t->pending_handles)
        return;
    t->pending_handles = 1;
    uv_close((uv_handle_t *)t->tcp, handle_closed);
    if (t->grace) {
        t->pending_handles++;
        uv_close((uv_handle_t *)t->grace, handle_closed);
    }
}

static void fail(tcp_stream_t *t, int status, const char *why)
{
    if (!t->closing) {
        t->closing = 1;
        t->status = status;
        t->why = why;
    }
    close_handles(t);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    tcp_stream_t *t = h->data;
    if (n > 0) {
        if (!t->closing)
            t->s.ev->on_data(&t->s, (const uint8_t *)buf->base, (size_t)n);
    } else if (n == UV_EOF) {
        fail(t, UV_EOF, "peer closed the connection");
    } else if (n < 0) {
        fail(t, (int)n, uv_strerror((int)n));
    }
}

static int tcp_start(stream_t *s)
{
    tcp_stream_t *t = (tcp_stream_t *)s;
    int rc = uv_read_start((uv_stream_t *)t->tcp, on_alloc, on_read);
    if (rc == 0)
        s->ev->on_open(s);
    return rc;
}

static void on_written(uv_write_t *req, int status)
{
    tcp_write_t *w = (tcp_write_t *)req;
    if (w->cb)
        w->cb(w->arg, status);
    free(w);
}

static int tcp_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb, void *arg)
{
    tcp_stream_t *t = (tcp_stream_t *)s;
    if (t->closing && t->pending_handles)
        return UV_ECANCELED;
    tcp_write_t *w = malloc(sizeof *w);
    if (!w)
        return UV_ENOMEM;
    w->cb = cb;
    w->arg = arg;
    int rc = uv_write(&w->req, (uv_stream_t *)t->tcp, bufs, n, on_written);
    if (rc < 0)
        free(w);
    return rc;
}

static size_t tcp_queued(const stream_t *s)
{
    const tcp_stream_t *t = (const tcp_stream_t *)s;
    return uv_stream_get_write_queue_size((const uv_stream_t *)t->tcp);
}

static void tcp_pause(stream_t *s, int paused)
{
    tcp_stream_t *t = (tcp_stream_t *)s;
    if (t->closing)
        return;
    if (paused)
        uv_read_stop((uv_stream_t *)t->tcp);
    else
        uv_read_start((uv_stream_t *)t->tcp, on_alloc, on_read);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    tcp_stream_t *t = req->data;
    (void)status;
    free(req);
    close_handles(t);
}

static void on_grace(uv_timer_t *timer)
{
    close_handles(timer->data);
}

static void tcp_close(stream_t *s)
{
    tcp_stream_t *t = (tcp_stream_t *)s;
    if (t->closing)
        return;
    t->closing = 1;
    t->status = 0;
    t->why = "closed by the broker";
    uv_read_stop((uv_stream_t *)t->tcp);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req) {
        req->data = t;
        if (uv_shutdown(req, (uv_stream_t *)t->tcp, on_shutdown) == 0) {
            t->grace = malloc(sizeof *t->grace);
            if (t->grace && uv_timer_init(s->loop, t->grace) == 0) {
                t->grace->data = t;
                uv_timer_start(t->grace, on_grace, CLOSE_GRACE_MS, 0);
            } else {
                free(t->grace);
                t->grace = NULL;
            }
            return;
        }
        free(req);
    }
    close_handles(t);
}

static const stream_ops_t tcp_ops = {
    .start = tcp_start,
    .write = tcp_write,
    .queued = tcp_queued,
    .pause = tcp_pause,
    .close = tcp_close,
    .name = "tcp",
};

void stream_peer_name(const struct sockaddr *ss, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(buf, cap, "%s:%d", host, port);
    } else if (ss->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(buf, cap, "[%s]:%d", host, port);
    } else {
        snprintf(buf, cap, "unknown");
    }
}

const char *stream_peer(const stream_t *s)
{
    static _Thread_local char ring[4][64];
    static _Thread_local unsigned next;
    if (!s)
        return "-";
    char *buf = ring[next++ % 4];
    stream_peer_name(&s->peer.sa, buf, sizeof ring[0]);
    return buf;
}

static void handle_only_closed(uv_handle_t *h)
{
    free(of_handle((uv_tcp_t *)h));
}

uv_tcp_t *stream_tcp_handle_new(uv_loop_t *loop)
{
    tcp_stream_t *t = calloc(1, sizeof *t);
    if (t && uv_tcp_init(loop, t->tcp) < 0) {
        free(t);
        t = NULL;
    }
    return t ? t->tcp : NULL;
}

void stream_tcp_handle_close(uv_tcp_t *tcp)
{
    uv_close((uv_handle_t *)tcp, handle_only_closed);
}

stream_t *stream_tcp_new(uv_loop_t *loop, uv_tcp_t *tcp, const stream_events_t *ev, void *owner)
{
    tcp_stream_t *t = of_handle(tcp);
    t->s.ops = &tcp_ops;
    t->s.ev = ev;
    t->s.owner = owner;
    t->s.loop = loop;
    tcp->data = t;
    int len = sizeof t->s.peer;
    if (uv_tcp_getpeername(tcp, &t->s.peer.sa, &len) != 0)
        t->s.peer.sa.sa_family = AF_UNSPEC;
    return &t->s;
}
