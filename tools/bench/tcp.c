/*
 * tools/bench/tcp.c: the plain TCP transport of the load generator (see transport.h). Nagle is
 * off because the client batches its own writes; reads land in the loop's one big buffer.
 */
#include "tools/bench/transport.h"

#include <stddef.h>

#define CONN_OF(h) ((bench_conn_t *)((char *)(h) - offsetof(bench_conn_t, u)))

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
        bench_conn_on_data(c, (const uint8_t *)buf->base, (size_t)n);
    else if (n < 0) {
        uv_read_stop(s);
        bench_conn_on_eof(c, (int)n);
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
    bench_conn_on_open(c, status);
}

static int tcp_open(bench_conn_t *c, uv_loop_t *loop, const struct sockaddr *addr)
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
    bench_conn_on_written(c, status);
}

static int tcp_write(bench_conn_t *c, const uint8_t *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    c->wreq.data = c;
    return uv_write(&c->wreq, &c->u.stream, &b, 1, on_write);
}

static void on_close(uv_handle_t *h)
{
    bench_conn_on_closed(CONN_OF(h));
}

static void tcp_close(bench_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close(&c->u.handle, on_close);
}

const bench_transport_t bench_tcp_transport = {
    .name = "tcp",
    .open = tcp_open,
    .write = tcp_write,
    .close = tcp_close,
};
