/*
 * broker/stream_tcp.c: the plain TCP transport behind the stream_t face, and the acceptor that
 * makes its streams.
 *
 * The socket is watched with a uv_poll_t and read and written with the system calls directly:
 * libuv's uv_tcp_t is 248 bytes against 160, and an idle connection is mostly its transport.
 *
 * Reads land in one per-thread buffer (a worker handles one callback at a time and the connection
 * copies whatever it cannot consume at once), so an idle connection holds no read buffer. A write
 * goes to the socket at once; whatever the kernel does not take is queued (with a copy of the
 * buffer list, never of the bytes) and sent as the socket becomes writable, and the caller's
 * callback runs when its last byte is out: before tcp_write returns when everything went at once,
 * as the stream_ops_t contract allows. Closing sends what is queued first and then shuts the
 * write side down, so a final DISCONNECT reaches the peer, with a timer so a peer that never reads
 * cannot hold the socket open.
 */
#include "broker/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
    READ_BUF = 64 * 1024,
    READS_PER_EVENT = 4,
    CLOSE_GRACE_MS = 2000,
    ACCEPTS_PER_EVENT = 64,
    ACCEPT_PAUSE_MS = 100, /* out of descriptors with none to spare: how long to stop watching */
};

typedef struct wreq {
    struct wreq *next;
    stream_write_cb cb;
    void *arg;
    unsigned n;      /* buffers still to send; bufs[0] is advanced past what went */
    uv_buf_t bufs[]; /* the caller's list from where the kernel stopped */
} wreq_t;

/* 248 bytes: with the allocator's header, 256 (what every idle connection pays for its socket). */
typedef struct {
    stream_t s;
    uv_poll_t poll;    /* holds the socket (fd_of) */
    wreq_t *wq;        /* writes waiting for the socket, oldest first */
    uv_timer_t *grace; /* only while closing with writes queued */
    int16_t status;    /* why it closed: 0, UV_EOF or another uv error (all fit) */
    uint8_t reading;
    uint8_t paused;
    uint8_t closing;
    uint8_t events;  /* what poll watches now */
    uint8_t pending_handles; /* handles still to be closed before the memory can go */
    uint8_t closed_reported;
} tcp_stream_t;

static _Thread_local char read_buf[READ_BUF];

static int fd_of(const tcp_stream_t *t)
{
    uv_os_fd_t fd = -1;
    uv_fileno((const uv_handle_t *)&t->poll, &fd);
    return fd;
}

static const char *why_of(int status)
{
    return status == 0 ? "closed by the broker"
           : status == UV_EOF ? "peer closed the connection"
                              : uv_strerror(status);
}

static void on_poll(uv_poll_t *h, int status, int events);

/* ---- the handles and their end ---------------------------------------------------------------- */

static void cancel_writes(tcp_stream_t *t)
{
    while (t->wq) {
        wreq_t *r = t->wq;
        t->wq = r->next;
        if (r->cb)
            r->cb(r->arg, UV_ECANCELED);
        free(r);
    }
}

static void handle_closed(uv_handle_t *h)
{
    tcp_stream_t *t = h->data;
    if (h != (uv_handle_t *)&t->poll)
        free(h); /* the grace timer */
    if (--t->pending_handles)
        return;
    cancel_writes(t); /* as libuv does for a closed stream: before the close is reported */
    if (!t->closed_reported) {
        t->closed_reported = 1;
        t->s.ev->on_closed(&t->s, t->status, why_of(t->status));
    }
    free(t);
}

static void close_handles(tcp_stream_t *t)
{
    if (t->pending_handles)
        return;
    t->pending_handles = 1;
    int fd = fd_of(t);
    uv_close((uv_handle_t *)&t->poll, handle_closed); /* stops watching the fd: now it can go */
    close(fd);
    if (t->grace) {
        t->pending_handles++;
        uv_close((uv_handle_t *)t->grace, handle_closed);
    }
}

static void fail(tcp_stream_t *t, int status)
{
    if (!t->closing) {
        t->closing = 1;
        t->status = (int16_t)(status < INT16_MIN ? UV_EIO : status);
    }
    close_handles(t);
}

/* Watches for what is wanted now: reading unless paused or closing, writing while queued. */
static void update_poll(tcp_stream_t *t)
{
    if (t->pending_handles)
        return;
    uint8_t ev = (uint8_t)((t->reading && !t->paused && !t->closing ? UV_READABLE : 0) |
                           (t->wq ? UV_WRITABLE : 0));
    if (ev == t->events)
        return;
    t->events = ev;
    int rc = ev ? uv_poll_start(&t->poll, ev, on_poll) : uv_poll_stop(&t->poll);
    if (rc < 0)
        fail(t, rc);
}

/* ---- writing ---------------------------------------------------------------------------------- */

/* Sends as much of bufs[0..n) as the kernel takes: the byte count, or a negative uv error. */
static ssize_t send_some(int fd, const uv_buf_t *bufs, unsigned n)
{
    size_t total = 0;
    while (n > 0) {
        unsigned k = n < IOV_MAX ? n : IOV_MAX;
        struct msghdr mh = {.msg_iov = (struct iovec *)(void *)bufs, .msg_iovlen = k};
        size_t want = 0;
        for (unsigned i = 0; i < k; i++)
            want += bufs[i].len;
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return (ssize_t)total;
            return total ? (ssize_t)total : -errno; /* report the error on the next try */
        }
        total += (size_t)w;
        if ((size_t)w < want)
            return (ssize_t)total;
        bufs += k;
        n -= k;
    }
    return (ssize_t)total;
}

/* How far `done` sent bytes reach into bufs[0..n): the number of buffers sent whole, and in
 * *part the bytes sent of the next one. */
static unsigned reach(const uv_buf_t *bufs, unsigned n, size_t done, size_t *part)
{
    unsigned whole = 0;
    while (whole < n && done >= bufs[whole].len)
        done -= bufs[whole++].len;
    *part = done;
    return whole;
}

/* Copies the unsent rest of bufs (from buffer `whole`, `part` bytes in) into r. */
static void keep_rest(wreq_t *r, const uv_buf_t *bufs, unsigned n, unsigned whole, size_t part)
{
    r->n = n - whole;
    memmove(r->bufs, bufs + whole, r->n * sizeof *bufs);
    r->bufs[0].base += part;
    r->bufs[0].len -= part;
}

static void shut_and_close(tcp_stream_t *t)
{
    shutdown(fd_of(t), SHUT_WR);
    close_handles(t);
}

/* The socket is writable: sends queued writes in order, completing each as its last byte goes. */
static void flush_queue(tcp_stream_t *t)
{
    while (t->wq && !t->pending_handles) {
        wreq_t *r = t->wq;
        ssize_t w = send_some(fd_of(t), r->bufs, r->n);
        if (w < 0) {
            fail(t, (int)w);
            return;
        }
        size_t part;
        unsigned whole = reach(r->bufs, r->n, (size_t)w, &part);
        if (whole < r->n) {
            keep_rest(r, r->bufs, r->n, whole, part);
            break; /* the kernel is full again */
        }
        t->wq = r->next;
        if (r->cb)
            r->cb(r->arg, 0); /* may write more or close */
        free(r);
    }
    if (t->pending_handles)
        return;
    if (!t->wq && t->closing)
        shut_and_close(t);
    else
        update_poll(t);
}

static int tcp_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb, void *arg)
{
    tcp_stream_t *t = (tcp_stream_t *)s;
    if (t->pending_handles)
        return UV_ECANCELED;
    unsigned skip = 0; /* buffers sent whole */
    size_t done = 0;   /* bytes sent of the next one */
    if (!t->wq) {
        ssize_t w = send_some(fd_of(t), bufs, n);
        if (w < 0)
            return (int)w;
        skip = reach(bufs, n, (size_t)w, &done);
        if (skip == n) {
            if (cb)
                cb(arg, 0);
            return 0;
        }
    }
    wreq_t *r = malloc(sizeof *r + (n - skip) * sizeof(uv_buf_t));
    if (!r)
        return UV_ENOMEM;
    r->next = NULL;
    r->cb = cb;
    r->arg = arg;
    keep_rest(r, bufs, n, skip, done);
    wreq_t **tail = &t->wq;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
    update_poll(t);
    return 0;
}

static size_t tcp_queued(const stream_t *s)
{
    const tcp_stream_t *t = (const tcp_stream_t *)s;
    size_t q = 0;
    for (const wreq_t *r = t->wq; r; r = r->next)
        for (unsigned i = 0; i < r->n; i++)
            q += r->bufs[i].len;
    return q;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static void read_some(tcp_stream_t *t)
{
    for (int k = 0; k < READS_PER_EVENT && t->reading && !t->paused && !t->closing; k++) {
        ssize_t n = read(fd_of(t), read_buf, sizeof read_buf);
        if (n > 0) {
            t->s.ev->on_data(&t->s, (const uint8_t *)read_buf, (size_t)n);
            if ((size_t)n < sizeof read_buf)
                return;
        } else if (n == 0) {
            fail(t, UV_EOF);
            return;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else if (errno != EINTR) {
            fail(t, -errno);
            return;
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    tcp_stream_t *t = h->data;
    if (t->pending_handles)
        return;
    if (status < 0) {
        fail(t, status);
        return;
    }
    if (events & UV_WRITABLE)
        flush_queue(t);
    if ((events & UV_READABLE) && !t->pending_handles)
        read_some(t);
}

/* ---- the operations --------------------------------------------------------------------------- */

static int tcp_start(stream_t *s)
{
    tcp_stream_t *t = (tcp_stream_t *)s;
    t->reading = 1;
    update_poll(t);
    if (t->pending_handles)
        return t->status;
    s->ev->on_open(s);
    return 0;
}

static void tcp_pause(stream_t *s, int paused)
{
    tcp_stream_t *t = (tcp_stream_t *)s;
    t->paused = (uint8_t)(paused != 0);
    update_poll(t);
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
    if (!t->wq) {
        shut_and_close(t);
        return;
    }
    update_poll(t); /* no more reading; the queue drains, then shut_and_close */
    t->grace = malloc(sizeof *t->grace);
    if (t->grace && uv_timer_init(s->loop, t->grace) == 0) {
        t->grace->data = t;
        uv_timer_start(t->grace, on_grace, CLOSE_GRACE_MS, 0);
    } else {
        free(t->grace);
        t->grace = NULL;
        close_handles(t);
    }
}

static const stream_ops_t tcp_ops = {
    .start = tcp_start,
    .write = tcp_write,
    .queued = tcp_queued,
    .pause = tcp_pause,
    .close = tcp_close,
    .name = "tcp",
};

/* Formats a socket address into buf (at least 64 bytes). */
static void peer_name(const struct sockaddr *ss, char *buf, size_t cap)
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
    peer_name(&s->peer.sa, buf, sizeof ring[0]);
    return buf;
}

stream_t *stream_tcp_new(uv_loop_t *loop, int fd, const struct sockaddr *peer, size_t peer_len,
                         const stream_events_t *ev, void *owner)
{
    tcp_stream_t *t = calloc(1, sizeof *t);
    if (!t || uv_poll_init(loop, &t->poll, fd) < 0) {
        free(t);
        close(fd);
        return NULL;
    }
    t->poll.data = t;
    t->s.ops = &tcp_ops;
    t->s.ev = ev;
    t->s.owner = owner;
    t->s.loop = loop;
    if (peer && peer_len <= sizeof t->s.peer)
        memcpy(&t->s.peer, peer, peer_len);
    else
        t->s.peer.sa.sa_family = AF_UNSPEC;
    return &t->s;
}

/* ---- accepting -------------------------------------------------------------------------------- */

static void on_acceptable(uv_poll_t *h, int status, int events);

static void on_resume(uv_timer_t *t)
{
    stream_acceptor_t *a = t->data;
    if (a->spare < 0)
        a->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uv_poll_start(&a->poll, UV_READABLE, on_acceptable);
}

static void on_acceptable(uv_poll_t *h, int status, int events)
{
    stream_acceptor_t *a = h->data;
    (void)events;
    if (status < 0) {
        a->cb(a, status, NULL, 0);
        return;
    }
    for (int k = 0; k < ACCEPTS_PER_EVENT; k++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(a->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            a->cb(a, fd, (struct sockaddr *)&ss, len);
            continue;
        }
        int e = errno;
        if (e == EINTR || e == ECONNABORTED)
            continue;
        if (e == EAGAIN || e == EWOULDBLOCK)
            return;
        a->cb(a, -e, NULL, 0);
        if (e != EMFILE && e != ENFILE)
            return;
        /* Out of descriptors: the pending connection would wake us forever. Give up the spare one
         * to take it and close it (the client sees the close), then keep a spare again. */
        if (a->spare >= 0) {
            close(a->spare);
            int drop = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC);
            if (drop >= 0)
                close(drop);
            a->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (drop >= 0 && a->spare >= 0)
                continue;
        }
        /* Another thread took the freed descriptor first (or there was none to spare): stop
         * watching for a moment rather than spin on the pending connection. */
        uv_poll_stop(&a->poll);
        uv_timer_start(&a->pause, on_resume, ACCEPT_PAUSE_MS, 0);
        return;
    }
}

int stream_acceptor_start(stream_acceptor_t *a, uv_loop_t *loop, int fd, stream_accept_cb cb,
                          void *arg)
{
    a->fd = fd;
    a->cb = cb;
    a->arg = arg;
    a->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = uv_timer_init(loop, &a->pause);
    if (rc == 0) {
        a->pause.data = a;
        rc = uv_poll_init(loop, &a->poll, fd);
        if (rc < 0)
            uv_close((uv_handle_t *)&a->pause, NULL);
    }
    if (rc == 0) {
        a->poll.data = a;
        rc = uv_poll_start(&a->poll, UV_READABLE, on_acceptable);
        if (rc < 0) {
            uv_close((uv_handle_t *)&a->poll, NULL);
            uv_close((uv_handle_t *)&a->pause, NULL);
        }
    }
    if (rc < 0 && a->spare >= 0) {
        close(a->spare);
        a->spare = -1;
    }
    return rc;
}

void stream_acceptor_close(stream_acceptor_t *a)
{
    if (uv_is_closing((uv_handle_t *)&a->poll))
        return;
    uv_close((uv_handle_t *)&a->poll, NULL);
    uv_close((uv_handle_t *)&a->pause, NULL);
    close(a->fd);
    if (a->spare >= 0)
        close(a->spare);
    a->spare = -1;
}
