/*
 * tools/bench/tcp.c: the plain TCP transport of the load generator (see transport.h), and the
 * socket under layered transports (TLS), whose table's `lower` events receive what this file
 * would otherwise hand to the client. Nagle is off because the client batches its own writes;
 * reads land in the loop's one big buffer.
 */
#include "tools/bench/transport.h"

#include <stddef.h>

#define CONN_OF(h) ((bench_conn_t *)((char *)(h) - offsetof(bench_conn_t, u)))

static const bench_events_t client_events = {
    .on_open = bench_conn_on_open,
    .on_data = bench_conn_on_data,
    .on_eof = bench_conn_on_eof,
    .on_written = bench_conn_on_written,
    .on_closed = bench_conn_on_closed,
};

static const bench_events_t *up(const bench_conn_t *c)
{
    return c->tp->lower ? c->tp->lower : &client_events;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    bench_io_t *io = h->loop->data;
    (void)suggested;
    buf->base = (char *)io->rbuf;
    buf->len = io->rcap;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    bench_conn_t *c = CONN_OF(s);
    if (n > 0)
        up(c)->on_data(c, (const uint8_t *)buf->base, (size_t)n);
    else if (n < 0) {
        uv_read_stop(s);
        up(c)->on_eof(c, (int)n);
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    bench_conn_t *c = req->data;
    if (status == 0) {
        uv_tcp_nodelay(&c->u.tcp, 1);
        status = uv_read_start(&c->u.stream, on_alloc, on_read);
    }
    if (status == UV_ECANCELED && c->closing)
        return;
    up(c)->on_open(c, status);
}

int bench_tcp_open(bench_conn_t *c, uv_loop_t *loop, const struct sockaddr *addr)
{
    c->closing = false;
    int rc = uv_tcp_init(loop, &c->u.tcp);
    if (rc)
        return rc;
    c->creq.data = c;
    return uv_tcp_connect(&c->creq, &c->u.tcp, addr, on_connect);
}

static void on_write(uv_write_t *req, int status)
{
    bench_conn_t *c = req->data;
    if (status == UV_ECANCELED && c->closing)
        return;
    up(c)->on_written(c, status);
}

int bench_tcp_write(bench_conn_t *c, const uint8_t *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    c->wreq.data = c;
    return uv_write(&c->wreq, &c->u.stream, &b, 1, on_write);
}

static void on_close(uv_handle_t *h)
{
    bench_conn_t *c = CONN_OF(h);
    up(c)->on_closed(c);
}

void bench_tcp_close(bench_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close(&c->u.handle, on_close);
}

const bench_transport_t bench_tcp_transport = {
    .name = "tcp",
    .open = bench_tcp_open,
    .write = bench_tcp_write,
    .close = bench_tcp_close,
};
