/*
 * broker/worker.c: worker threads, each with its own libuv loop.
 *
 * Listening: the main thread binds one socket per listener address per worker with SO_REUSEPORT
 * (libuv 1.44 has no UV_TCP_REUSEPORT), so bind errors are reported at start, before privileges
 * are dropped, and the kernel spreads new connections over the workers.
 *
 * Cross-worker work arrives in the inbox (a mutex-protected array and a uv_async wake-up): a
 * session on this worker has new deliveries, or a connection must be closed because its session
 * was taken over. Everything a loop turn produced for a connection is written once, in the check
 * phase that runs right after the I/O callbacks of that turn.
 */
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/config.h"
#include "broker/core.h"
#include "broker/log.h"
#include "broker/store.h"

#if defined(__SANITIZE_ADDRESS__)
#define ACEMQ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ACEMQ_ASAN 1
#endif
#endif
#ifdef ACEMQ_ASAN
/* from <sanitizer/allocator_interface.h>, which gcc does not install */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

static _Thread_local worker_t *tl_worker;

worker_t *worker_current(void)
{
    return tl_worker;
}

int ptrvec_push(ptrvec_t *v, void *p)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 32;
        void **n = realloc(v->v, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        v->v = n;
        v->cap = cap;
    }
    v->v[v->n++] = p;
    return 0;
}

void worker_post(worker_t *w, int type, void *ptr, int arg)
{
    pthread_mutex_lock(&w->inbox_lock);
    if (w->inbox_n == w->inbox_cap) {
        size_t cap = w->inbox_cap ? w->inbox_cap * 2 : 64;
        inbox_item_t *n = realloc(w->inbox, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&w->inbox_lock);
            log_error("out_of_memory", "where=worker_post");
            return;
        }
        w->inbox = n;
        w->inbox_cap = cap;
    }
    w->inbox[w->inbox_n++] = (inbox_item_t){type, ptr, arg};
    pthread_mutex_unlock(&w->inbox_lock);
    uv_async_send(&w->async);
}

void worker_track_offline(worker_t *w, session_t *s)
{
    ptrvec_push(&w->offline, session_ref(s));
}

/* ---- accepting -------------------------------------------------------------------------------- */

static bool over_limit(worker_t *w, listener_rt_t *l)
{
    broker_t *b = w->b;
    uint64_t total = atomic_load(&b->stats.connections);
    if (b->lim.max_connections >= 0 && total >= (uint64_t)b->lim.max_connections)
        return true;
    return l->cfg->max_connections >= 0 && atomic_load(&l->conns) >= l->cfg->max_connections;
}

static void on_connection(stream_acceptor_t *acc, int fd, const struct sockaddr *peer,
                          size_t peer_len)
{
    worker_t *w = acc->poll.loop->data;
    listener_rt_t *l = acc->arg;
    uint64_t now = clock_ms();
    int status = fd;
    if (status < 0) {
        if (now - w->last_accept_warning > 10000) {
            w->last_accept_warning = now;
            log_warning("accept_failed", "port=%d error=\"%s\" connections=%llu%s", l->cfg->port,
                        uv_strerror(status), (unsigned long long)atomic_load(&w->b->stats.connections),
                        status == UV_EMFILE ? " hint=\"the process is at its file descriptor limit "
                                              "(ulimit -n); existing clients keep being served\""
                                            : "");
        }
        return;
    }
    if (w->stopping || over_limit(w, l) || atomic_load(&w->b->shedding)) {
        if (now - w->last_accept_warning > 10000) {
            w->last_accept_warning = now;
            log_warning("connection_refused", "port=%d reason=\"%s\"", l->cfg->port,
                        atomic_load(&w->b->shedding) ? "memory_limit reached"
                                                     : "max_connections reached");
        }
        close(fd);
        return;
    }
    int nodelay = w->b->lim.tcp_nodelay;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
    extern const stream_events_t *conn_stream_events(void);
    stream_t *s = listener_stream_new(l, &w->loop, fd, peer, peer_len, conn_stream_events());
    if (!s)
        return; /* out of memory above TCP: the transport has closed the socket */
    conn_t *c = conn_new(w, s, l);
    if (!c) {
        s->ops->close(s); /* on_closed with no owner: see conn.c */
        return;
    }
    s->owner = c;
    log_debug("accept", "peer=%s port=%d transport=%s", stream_peer(s), l->cfg->port, s->ops->name);
    if (s->ops->start(s) < 0)
        conn_close(c, -1, "could not start reading");
}

/* ---- binding (main thread) -------------------------------------------------------------------- */

static int bind_one(const struct addrinfo *ai, char *err, size_t cap, const char *what)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, cap, "cannot listen on %s: %s", what, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, cap, "cannot listen on %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int add_server(worker_t *w, int fd, listener_rt_t *l)
{
    int *fds = realloc(w->server_fds, (w->n_servers + 1) * sizeof *fds);
    if (!fds)
        return -1;
    w->server_fds = fds;
    listener_rt_t **ls = realloc(w->server_listeners, (w->n_servers + 1) * sizeof *ls);
    if (!ls)
        return -1;
    w->server_listeners = ls;
    fds[w->n_servers] = fd;
    ls[w->n_servers] = l;
    w->n_servers++;
    return 0;
}

static int bind_listener(broker_t *b, listener_rt_t *lrt, char *err, size_t cap)
{
    const acemq_listener_t *l = lrt->cfg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    if (l->socket_domain && strcmp(l->socket_domain, "ipv4") == 0)
        hints.ai_family = AF_INET;
    else if (l->socket_domain && strcmp(l->socket_domain, "ipv6") == 0)
        hints.ai_family = AF_INET6;
    char port[16];
    snprintf(port, sizeof port, "%d", l->port);
    struct addrinfo *res;
    int rc = getaddrinfo(l->bind_address, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, cap, "%s: cannot resolve '%s': %s", l->where ? l->where : "listener",
                 l->bind_address ? l->bind_address : "*", gai_strerror(rc));
        return -1;
    }
    int bound = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char what[128], host[INET6_ADDRSTRLEN] = "?";
        getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, NULL, 0, NI_NUMERICHOST);
        snprintf(what, sizeof what, ai->ai_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, l->port);
        for (int i = 0; i < b->n_workers; i++) {
            int fd = bind_one(ai, err, cap, what);
            if (fd < 0) {
                /* no IPv6 on this host is not an error when IPv4 works */
                if (ai->ai_family == AF_INET6 && !l->bind_address && errno == EAFNOSUPPORT)
                    break;
                freeaddrinfo(res);
                return -1;
            }
            add_server(&b->workers[i], fd, lrt);
        }
        bound++;
        log_info("listening", "address=%s protocol=%s tls=%s", what,
                 l->protocol ? l->protocol : "mqtt", lrt->tls ? "yes" : "no");
    }
    freeaddrinfo(res);
    return bound ? 0 : -1;
}

int workers_bind(broker_t *b, char *err, size_t cap)
{
    for (size_t i = 0; i < b->n_listeners; i++)
        if (bind_listener(b, &b->listeners[i], err, cap) < 0)
            return -1;
    return 0;
}

/* ---- the loop --------------------------------------------------------------------------------- */

static void handle_inbox_item(worker_t *w, const inbox_item_t *it)
{
    switch (it->type) {
    case INBOX_FLUSH_SESSION: {
        session_t *s = it->ptr;
        ptrvec_push(&w->pending_sessions, s); /* keeps the reference */
        break;
    }
    case INBOX_KICK_CONN: {
        conn_t *c = it->ptr;
        c->taken_over = true;
        conn_close(c, it->arg, "session taken over");
        conn_unref(c);
        break;
    }
    case INBOX_STORE_ACKS: /* acks whose records the store has made durable */
        store_run_acks(it->ptr);
        break;
    case INBOX_STOP:
        break;
    }
}

static void begin_stop(worker_t *w);

void worker_drain_inbox(worker_t *w)
{
    pthread_mutex_lock(&w->inbox_lock);
    inbox_item_t *items = w->inbox;
    size_t n = w->inbox_n;
    w->inbox = NULL;
    w->inbox_n = w->inbox_cap = 0;
    pthread_mutex_unlock(&w->inbox_lock);
    for (size_t i = 0; i < n; i++)
        handle_inbox_item(w, &items[i]);
    free(items);
}

static void on_async(uv_async_t *a)
{
    worker_t *w = a->data;
    if (atomic_load(&w->stop_requested) && !w->stopping)
        begin_stop(w);
    worker_drain_inbox(w);
}

void worker_flush_pending(worker_t *w)
{
    while (w->pending_sessions.n || w->pending.n) {
        ptrvec_t ss = w->pending_sessions;
        w->pending_sessions = (ptrvec_t){0};
        for (size_t i = 0; i < ss.n; i++) {
            session_t *s = ss.v[i];
            atomic_store(&s->flush_queued, false);
            session_lock(s);
            conn_t *c = s->conn;
            bool mine = c && c->w == w;
            session_unlock(s);
            if (mine)
                conn_schedule(c);
            session_unref(s);
        }
        free(ss.v);
        ptrvec_t cs = w->pending;
        w->pending = (ptrvec_t){0};
        for (size_t i = 0; i < cs.n; i++) {
            conn_t *c = cs.v[i];
            c->pending = false;
            conn_flush(c);
            conn_unref(c);
        }
        free(cs.v);
    }
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void worker_maybe_finish(worker_t *w)
{
    if (w->stopping && w->conns == NULL)
        uv_walk(&w->loop, close_handle, NULL);
}

static void on_check(uv_check_t *h)
{
    worker_t *w = h->data;
    worker_flush_pending(w);
    worker_maybe_finish(w);
}

/* Expires an offline session, if no connection took it meanwhile. */
static void expire_session(broker_t *b, session_t *s)
{
    if (session_discard_offline(b, s)) {
        atomic_fetch_add(&b->stats.expired_sessions, 1);
        log_info("session_expired", "client=%s", s->client_id);
    }
}

/* Offline sessions: delayed wills and Session Expiry Interval. Returns true to stop tracking. */
static bool tick_offline(broker_t *b, session_t *s, uint64_t now)
{
    session_lock(s);
    if (s->conn || !s->registered) {
        session_unlock(s);
        return true;
    }
    bool expired = s->expiry != UINT32_MAX &&
                   now >= s->offline_since + (uint64_t)s->expiry * 1000u;
    msg_t *will = session_take_will(s, expired, now);
    session_unlock(s);
    if (will) {
        broker_publish_count(b, will);
        msg_unref(will);
    }
    if (expired)
        expire_session(b, s);
    return expired;
}

/* Heap bytes in use. AddressSanitizer replaces malloc, and glibc's figures would then read
 * near zero, so memory_limit (and its tests) would do nothing in the sanitizer build. */
static uint64_t heap_in_use(void)
{
#ifdef ACEMQ_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
#endif
}

/* memory_limit: measured once a second from the allocator's own figures (every arena). Over
 * the limit the broker sheds load before the kernel would kill it: new connections are refused
 * and QoS 0 messages for clients that already have a backlog are dropped. */
static void check_memory(broker_t *b)
{
    if (!b->lim.memory_limit)
        return;
    uint64_t used = heap_in_use();
    bool over = used > b->lim.memory_limit;
    if (over != atomic_load(&b->shedding)) {
        atomic_store(&b->shedding, over);
        if (over)
            log_warning("memory_limit", "used=%llu limit=%llu action=\"refusing new connections, "
                        "dropping QoS 0 for slow consumers\"", (unsigned long long)used,
                        (unsigned long long)b->lim.memory_limit);
        else
            log_notice("memory_limit", "used=%llu limit=%llu action=\"back to normal\"",
                       (unsigned long long)used, (unsigned long long)b->lim.memory_limit);
    }
}

static void on_tick(uv_timer_t *t)
{
    worker_t *w = t->data;
    broker_t *b = w->b;
    uint64_t now = clock_ms();
    /* Loop lag for metrics: the tick repeats every 1000 ms, so any more than that since the last
     * one is time the loop spent busy (or blocked) past the moment it should have fired. */
    if (w->last_tick) {
        uint64_t lag = now - w->last_tick > 1000 ? now - w->last_tick - 1000 : 0;
        atomic_store_explicit(&w->lag_ms, lag, memory_order_relaxed);
        if (lag > atomic_load_explicit(&w->lag_max_ms, memory_order_relaxed))
            atomic_store_explicit(&w->lag_max_ms, lag, memory_order_relaxed);
    }
    w->last_tick = now;
    for (conn_t *c = w->conns; c; c = c->next)
        conn_tick(c, now);
    size_t keep = 0;
    for (size_t i = 0; i < w->offline.n; i++) {
        session_t *s = w->offline.v[i];
        if (tick_offline(b, s, now))
            session_unref(s);
        else
            w->offline.v[keep++] = s;
    }
    w->offline.n = keep;
    if (w->id == 0) {
        sys_publish(b, now);
        check_memory(b);
    }
    worker_flush_pending(w);
}

static void worker_main(void *arg)
{
    worker_t *w = arg;
    tl_worker = w;
    char name[16]; /* what top -H and /proc/PID/task/TID/comm show */
    snprintf(name, sizeof name, "acemq-worker-%d", w->id);
    pthread_setname_np(pthread_self(), name);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    broker_thread_exit();
}

int workers_start(broker_t *b)
{
    for (int i = 0; i < b->n_workers; i++) {
        worker_t *w = &b->workers[i];
        w->id = i;
        w->b = b;
        pthread_mutex_init(&w->inbox_lock, NULL);
        if (uv_loop_init(&w->loop) < 0)
            return -1;
        w->loop.data = w;
        uv_async_init(&w->loop, &w->async, on_async);
        w->async.data = w;
        uv_check_init(&w->loop, &w->check);
        w->check.data = w;
        uv_check_start(&w->check, on_check);
        uv_timer_init(&w->loop, &w->tick);
        w->tick.data = w;
        uv_timer_start(&w->tick, on_tick, 1000, 1000);
        w->servers = calloc(w->n_servers ? w->n_servers : 1, sizeof *w->servers);
        for (size_t k = 0; k < w->n_servers; k++) {
            if (stream_acceptor_start(&w->servers[k], &w->loop, w->server_fds[k], on_connection,
                                      w->server_listeners[k]) < 0)
                return -1;
        }
    }
    for (int i = 0; i < b->n_workers; i++)
        if (uv_thread_create(&b->workers[i].thread, worker_main, &b->workers[i]) < 0)
            return -1;
    return 0;
}

/* Runs on the worker's thread: stop accepting, tell MQTT 5 clients, close everything. The check
 * handle then keeps flushing until the last connection is gone and closes what is left. */
static void begin_stop(worker_t *w)
{
    w->stopping = true;
    for (size_t k = 0; k < w->n_servers; k++)
        stream_acceptor_close(&w->servers[k]);
    for (conn_t *c = w->conns; c; c = c->next)
        conn_close(c, MQTT_RC_SERVER_SHUTTING_DOWN, "server shutting down");
    worker_flush_pending(w);
    worker_maybe_finish(w);
}

void workers_stop(broker_t *b)
{
    for (int i = 0; i < b->n_workers; i++) {
        worker_t *w = &b->workers[i];
        atomic_store(&w->stop_requested, true);
        uv_async_send(&w->async);
    }
    for (int i = 0; i < b->n_workers; i++) {
        worker_t *w = &b->workers[i];
        uv_thread_join(&w->thread);
        on_async(&w->async); /* anything posted while stopping */
        for (size_t k = 0; k < w->offline.n; k++)
            session_unref(w->offline.v[k]);
        free(w->offline.v);
        free(w->pending.v);
        free(w->pending_sessions.v);
        free(w->servers);
        free(w->server_fds);
        free(w->server_listeners);
        w->servers = NULL;
        w->server_fds = NULL;
        w->server_listeners = NULL;
        uv_loop_close(&w->loop);
        pthread_mutex_destroy(&w->inbox_lock);
    }
}
