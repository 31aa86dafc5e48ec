/*
 * tools/bench/transport.h: the byte stream under the generator's MQTT clients. One small table of
 * functions per transport (plain TCP now; an mbedTLS client later wraps the same TCP handle and
 * feeds ciphertext through its engine), so the MQTT client code never knows which one it drives.
 *
 * A layered transport (TLS) reuses tcp.c for the socket: its table names `lower`, the events
 * tcp.c then delivers to it instead of to the client, and it drives the socket with
 * bench_tcp_open/write/close.
 *
 * Contract:
 *   - open() starts a connection; the outcome arrives as bench_conn_on_open(c, 0 or -errno).
 *     After open() returns 0 or an error, close() must eventually be called exactly once.
 *   - write() sends len bytes; at most one write is outstanding per connection, and the caller
 *     keeps the bytes alive until bench_conn_on_written(c, status).
 *   - Received plaintext is handed up with bench_conn_on_data(c, p, n); p is only valid during
 *     the call. End of stream or a read error arrives once as bench_conn_on_eof(c, status).
 *   - close() releases the connection; bench_conn_on_closed(c) follows, after which the
 *     bench_conn_t may be reused with open().
 *   - The loop's data pointer must point to a bench_io_t: the per-loop read buffer, shared by
 *     every connection of that loop since libuv delivers one read at a time.
 */
#ifndef ACEMQ_BENCH_TRANSPORT_H
#define ACEMQ_BENCH_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct {
    uint8_t *rbuf;
    size_t rcap;
    uint8_t *plain; /* TLS: decrypted bytes of one read, allocated on first use */
} bench_io_t;

typedef struct bench_conn bench_conn_t;

/* The events of a connection, as the layer above sees them (see the upcalls below). */
typedef struct {
    void (*on_open)(bench_conn_t *c, int status);
    void (*on_data)(bench_conn_t *c, const uint8_t *p, size_t n);
    void (*on_eof)(bench_conn_t *c, int status);
    void (*on_written)(bench_conn_t *c, int status);
    void (*on_closed)(bench_conn_t *c);
} bench_events_t;

typedef struct {
    const char *name;
    int (*open)(bench_conn_t *c, uv_loop_t *loop, const struct sockaddr *addr);
    int (*write)(bench_conn_t *c, const uint8_t *p, size_t len);
    void (*close)(bench_conn_t *c);
    const bench_events_t *lower; /* layered transports: the socket's events go here; else NULL */
} bench_transport_t;

struct bench_conn {
    const bench_transport_t *tp;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
    } u;
    uv_connect_t creq;
    uv_write_t wreq;
    bool closing;
    void *session; /* per-connection transport state (a TLS session later); NULL for TCP */
};

extern const bench_transport_t bench_tcp_transport;
extern const bench_transport_t bench_tls_transport; /* tls.c: needs bench_tls_init() first */

/* The socket under every transport (tcp.c); its events go to c->tp->lower, or to the client. */
int bench_tcp_open(bench_conn_t *c, uv_loop_t *loop, const struct sockaddr *addr);
int bench_tcp_write(bench_conn_t *c, const uint8_t *p, size_t len);
void bench_tcp_close(bench_conn_t *c);

/* Upcalls, implemented by the MQTT client (client.c). */
void bench_conn_on_open(bench_conn_t *c, int status);
void bench_conn_on_data(bench_conn_t *c, const uint8_t *p, size_t n);
void bench_conn_on_eof(bench_conn_t *c, int status);
void bench_conn_on_written(bench_conn_t *c, int status);
void bench_conn_on_closed(bench_conn_t *c);

#endif
