/*
 * broker/stream.h: one byte-stream face for every transport (plain TCP, TLS, WebSockets).
 *
 * The connection layer (broker/conn.c) reads and writes MQTT bytes through a stream_t and never
 * knows what lies below. A transport is a table of operations plus its own state; layered
 * transports (WebSockets over TLS) wrap a lower stream_t and present the same face upward.
 *
 * Threading: a stream belongs to one worker loop; every call and every callback happens on that
 * loop's thread, except where a transport documents work it moves to a thread pool (the TLS
 * handshake), in which case it calls back on the loop thread when done.
 *
 * Lifetime: a transport allocates its stream_t. Whether the owner calls ops->close() or the peer
 * goes away, the transport delivers exactly one on_closed callback and frees the stream when that
 * callback returns: the owner must drop its pointer there.
 */
#ifndef ACEMQ_BROKER_STREAM_H
#define ACEMQ_BROKER_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct stream stream_t;

/* Called when a write's buffers are no longer referenced by the transport (sent or dropped). */
typedef void (*stream_write_cb)(void *arg, int status);

typedef struct {
    /* Plaintext (MQTT bytes) arrived. The bytes are valid only during the call. */
    void (*on_data)(stream_t *s, const uint8_t *data, size_t len);
    /* The transport is ready for MQTT bytes (TLS: handshake done; WS: upgrade done). */
    void (*on_open)(stream_t *s);
    /* The peer closed, an error happened, or close() finished: status 0 or a negative uv error,
     * with a static English sentence for the log. Called once; the stream is dead afterwards. */
    void (*on_closed)(stream_t *s, int status, const char *why);
} stream_events_t;

typedef struct {
    /* Start reading (and, for TLS/WS, the handshake). Returns 0 or a negative uv error. */
    int (*start)(stream_t *s);
    /*
     * Queue bufs for sending, in order. The transport may keep pointers to the bytes until it
     * calls cb(arg, status); a transport that copies or encrypts at once calls cb before
     * returning. Returns 0 or a negative uv error (cb is then not called).
     */
    int (*write)(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb, void *arg);
    /* Bytes queued and not yet handed to the kernel, for backpressure. */
    size_t (*queued)(const stream_t *s);
    /* Stop or resume delivering on_data (backpressure on the peer). */
    void (*pause)(stream_t *s, int paused);
    /* Flush what was queued (best effort, bounded), then close. Safe to call more than once. */
    void (*close)(stream_t *s);
    /* Transport facts for logs and authorization. */
    const char *name; /* "tcp", "tls", "ws", "wss" */
} stream_ops_t;

/* The peer's address, kept as the kernel gave it (28 bytes, not the 64 of its text form: every
 * connection carries one, layered transports copy it). */
typedef union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} stream_addr_t;

struct stream {
    const stream_ops_t *ops;
    const stream_events_t *ev;
    void *owner;        /* the connection above */
    uv_loop_t *loop;
    stream_addr_t peer; /* AF_UNSPEC when unknown */
};

/* The peer as "1.2.3.4:5678" or "[::1]:5678" ("-" for a NULL stream, "unknown" when not known),
 * for logs. The text lives in a per-thread ring of 4 buffers: valid until the same thread has
 * asked 4 more times, enough for the arguments of one log line. */
const char *stream_peer(const stream_t *s);

/*
 * The plain TCP transport over an accepted, non-blocking socket, which it owns from here on (it
 * is closed on failure too). peer: the address accept() gave. NULL when out of memory.
 */
stream_t *stream_tcp_new(uv_loop_t *loop, int fd, const struct sockaddr *peer, size_t peer_len,
                         const stream_events_t *ev, void *owner);

/*
 * Accepting on a listening socket (non-blocking, listen() done): cb gets each new socket (fd >= 0,
 * non-blocking, close-on-exec, its own to keep or close) with the peer's address, or an error
 * (fd = a negative uv error; at the descriptor limit, UV_EMFILE, after which the pending
 * connection is taken and closed with a spare descriptor, or, when there is none to spare,
 * accepting pauses for a moment: either way the loop does not spin on it).
 */
typedef struct stream_acceptor stream_acceptor_t;
typedef void (*stream_accept_cb)(stream_acceptor_t *a, int fd, const struct sockaddr *peer,
                                 size_t peer_len);
struct stream_acceptor {
    uv_poll_t poll;
    uv_timer_t pause; /* resumes watching after a moment out of descriptors */
    int fd;
    int spare; /* a descriptor kept in reserve for the EMFILE case */
    stream_accept_cb cb;
    void *arg;
};
int stream_acceptor_start(stream_acceptor_t *a, uv_loop_t *loop, int fd, stream_accept_cb cb,
                          void *arg);
/* Stops accepting and closes the listening socket. */
void stream_acceptor_close(stream_acceptor_t *a);

#endif
