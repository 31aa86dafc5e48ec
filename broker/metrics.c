/*
 * broker/metrics.c: the metrics HTTP listener and the Prometheus text rendering.
 *
 * The HTTP side is deliberately small: one request per connection (llhttp parses it, keeping
 * only the path), a response with Connection: close, then a half-close and a short linger that
 * reads and discards whatever the client still sends, so that closing never turns into a reset
 * that would eat the response. Requests over MAX_REQUEST bytes, connections over MAX_CONNS and
 * clients slower than REQUEST_MS are cut off: the endpoint must stay cheap whoever reaches it.
 *
 * The main thread owns the listener and its connections; counters are read with relaxed atomic
 * loads (a scrape is a snapshot, not a transaction). Authentication reasons are kept in a small
 * append-only table that any thread may add to.
 */
#include "broker/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "ace/introspect.h"
#include "ace/token.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/retain.h"
#include "broker/router.h"
#include "tls/tls.h"

enum {
    MAX_REQUEST = 8192,
    MAX_CONNS = 32,
    REQUEST_MS = 10000,
    LINGER_MS = 1000,
    URL_MAX = 256,
    MAX_REASONS = 16,
    REASON_LEN = 40,
};

/* ---- authentication outcomes (any thread) ---------------------------------------------------- */

typedef struct {
    char name[REASON_LEN];
    atomic_uint_fast64_t n;
} reason_t;

/* An append-only table of label values: entries are filled before n is raised (release), so a
 * reader that sees an index sees its name. */
typedef struct {
    reason_t e[MAX_REASONS];
    atomic_int n;
    atomic_uint_fast64_t other; /* past MAX_REASONS distinct values */
} reason_table_t;

static reason_table_t auth_tables[2]; /* [0] failures by reason, [1] successes by kind */
static pthread_mutex_t reasons_lock = PTHREAD_MUTEX_INITIALIZER;

/* Label values (and $SYS topic levels) are copied with anything that could break the exposition
 * format or a topic name replaced. */
static void clean_reason(char *dst, const char *src)
{
    size_t i = 0;
    for (; src[i] && i < REASON_LEN - 1; i++) {
        char ch = src[i];
        dst[i] = (ch < 0x21 || ch > 0x7e || strchr("\"\\/+#", ch)) ? '_' : ch;
    }
    dst[i] = 0;
}

static reason_t *find_reason(reason_table_t *t, const char *name, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(t->e[i].name, name) == 0)
            return &t->e[i];
    return NULL;
}

static void count_reason(reason_table_t *t, const char *reason)
{
    char name[REASON_LEN];
    clean_reason(name, reason && *reason ? reason : "unknown");
    reason_t *r = find_reason(t, name, atomic_load_explicit(&t->n, memory_order_acquire));
    if (!r) {
        pthread_mutex_lock(&reasons_lock);
        int n = atomic_load_explicit(&t->n, memory_order_relaxed);
        r = find_reason(t, name, n);
        if (!r && n < MAX_REASONS) {
            r = &t->e[n];
            memcpy(r->name, name, sizeof name);
            atomic_store_explicit(&t->n, n + 1, memory_order_release);
        }
        pthread_mutex_unlock(&reasons_lock);
    }
    atomic_fetch_add_explicit(r ? &r->n : &t->other, 1, memory_order_relaxed);
}

void metrics_count_auth(broker_t *b, int ok, const char *reason)
{
    atomic_fetch_add_explicit(ok ? &b->stats.auth_ok : &b->stats.auth_fail, 1,
                              memory_order_relaxed);
    count_reason(&auth_tables[ok ? 1 : 0], reason);
}

/* ---- tokens, introspection and fsync latency (any thread) ------------------------------------ */

/* Token check results: a fixed set, so the label values never depend on what a client sent. */
enum {
    TOK_VALID, TOK_MALFORMED, TOK_BAD_SIGNATURE, TOK_UNKNOWN_ISSUER, TOK_WRONG_AUDIENCE,
    TOK_EXPIRED, TOK_INACTIVE, TOK_UNAVAILABLE, TOK_INVALID, TOK_RESULTS
};
static const char *const token_results[TOK_RESULTS] = {
    "valid", "malformed", "bad_signature", "unknown_issuer", "wrong_audience",
    "expired", "inactive", "unavailable", "invalid"};
static atomic_uint_fast64_t tokens[2][TOK_RESULTS]; /* [introspected][result] */

static int token_result(int rc)
{
    switch (rc) {
    case 0: return TOK_VALID;
    case ACE_E_MALFORMED: case ACE_E_TOO_LARGE: return TOK_MALFORMED;
    case ACE_E_BAD_SIGNATURE: case ACE_E_BAD_ALG: return TOK_BAD_SIGNATURE;
    case ACE_E_UNKNOWN_ISSUER: return TOK_UNKNOWN_ISSUER;
    case ACE_E_WRONG_AUDIENCE: return TOK_WRONG_AUDIENCE;
    case ACE_E_EXPIRED: case ACE_E_NOT_YET_VALID: return TOK_EXPIRED;
    case ACE_INTROSPECT_E_INACTIVE: return TOK_INACTIVE;
    case ACE_INTROSPECT_E_CONNECT: case ACE_INTROSPECT_E_TIMEOUT: case ACE_INTROSPECT_E_HTTP:
    case ACE_INTROSPECT_E_RESPONSE: case ACE_INTROSPECT_E_TLS: case ACE_E_NOMEM:
        return TOK_UNAVAILABLE;
    default: return TOK_INVALID;
    }
}

void metrics_count_token(int introspected, int rc)
{
    atomic_fetch_add_explicit(&tokens[introspected ? 1 : 0][token_result(rc)], 1,
                              memory_order_relaxed);
}

/* A latency histogram: one counter per bucket (not cumulative: the count is their sum, so a
 * scrape always sees _count equal to the +Inf bucket), the sum and the maximum in nanoseconds. */
enum { N_BUCKETS = 10 };
static const double bucket_le[N_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01, 0.05, 0.25, 1.0};
typedef struct {
    atomic_uint_fast64_t n[N_BUCKETS + 1]; /* the last one: above 1 s */
    atomic_uint_fast64_t sum_ns, max_ns;
} histogram_t;

static histogram_t fsync_hist, introspect_hist[2]; /* [0] answered, [1] failed */

static void observe(histogram_t *h, double seconds)
{
    if (!(seconds >= 0)) /* also NaN */
        seconds = 0;
    int i = 0;
    while (i < N_BUCKETS && seconds > bucket_le[i])
        i++;
    atomic_fetch_add_explicit(&h->n[i], 1, memory_order_relaxed);
    uint64_t ns = seconds < 1e9 ? (uint64_t)(seconds * 1e9) : UINT64_MAX / 2;
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
    uint_fast64_t max = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
    while (ns > max && !atomic_compare_exchange_weak_explicit(&h->max_ns, &max, ns,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {
    }
}

void metrics_observe_fsync(double seconds)
{
    observe(&fsync_hist, seconds);
}

void metrics_observe_introspection(double seconds, int status)
{
    observe(&introspect_hist[status == 0 || status == ACE_INTROSPECT_E_INACTIVE ? 0 : 1], seconds);
}

/* ---- rendering ------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_t *o, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !o->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
        } else if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        } else {
            size_t cap = o->cap * 2 > o->len + (size_t)n + 1 ? o->cap * 2 : o->len + (size_t)n + 1;
            char *np = realloc(o->p, cap);
            if (!np)
                o->failed = true;
            else
                o->p = np, o->cap = cap;
        }
    }
}

static void family(out_t *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t ld(atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void one(out_t *o, const char *name, const char *type, const char *help, uint64_t v)
{
    family(o, name, type, help);
    put(o, "%s %" PRIu64 "\n", name, v);
}

static void by_qos(out_t *o, const char *name, const char *help, atomic_uint_fast64_t v[3])
{
    family(o, name, "counter", help);
    for (int q = 0; q < 3; q++)
        put(o, "%s{qos=\"%d\"} %" PRIu64 "\n", name, q, ld(&v[q]));
}

/* Dropped deliveries by reason: msgs_dropped counts every drop but expiry, so "other" is what
 * the named reasons leave of it. */
enum { N_DROPPED = 5 };
static const char *const dropped_names[N_DROPPED] = {"queue_full", "too_large", "expired",
                                                     "not_authorized", "other"};

static void dropped_counts(broker_stats_t *st, uint64_t v[N_DROPPED])
{
    uint64_t total = ld(&st->msgs_dropped);
    v[0] = ld(&st->dropped_queue_full);
    v[1] = ld(&st->dropped_too_large);
    v[2] = ld(&st->dropped_expired);
    v[3] = ld(&st->dropped_not_authorized);
    uint64_t named = v[0] + v[1] + v[3];
    v[4] = total > named ? total - named : 0;
}

static void render_clients(out_t *o, broker_t *b)
{
    broker_stats_t *st = &b->stats;
    one(o, "acemq_connections", "gauge",
        "Open network connections on the MQTT listeners, before and after CONNECT.",
        ld(&st->connections));
    one(o, "acemq_connections_total", "counter", "Connections accepted since start.",
        ld(&st->connections_accepted));
    family(o, "acemq_listener_connections", "gauge", "Open connections per listener.");
    for (size_t i = 0; i < b->n_listeners; i++) {
        const listener_rt_t *l = &b->listeners[i];
        put(o, "acemq_listener_connections{port=\"%d\",protocol=\"%s\",tls=\"%s\"} %d\n",
            l->cfg->port, l->cfg->protocol ? l->cfg->protocol : "mqtt", l->tls ? "yes" : "no",
            atomic_load(&l->conns));
    }
    family(o, "acemq_tls_handshakes", "gauge", "TLS handshakes in progress per TLS listener.");
    for (size_t i = 0; i < b->n_listeners; i++)
        if (b->listeners[i].tls)
            put(o, "acemq_tls_handshakes{port=\"%d\"} %u\n", b->listeners[i].cfg->port,
                tls_server_handshakes(b->listeners[i].tls));
    one(o, "acemq_clients_connected", "gauge", "Clients past CONNECT.",
        ld(&st->clients_connected));
    one(o, "acemq_clients_maximum", "gauge", "Most clients connected at once since start.",
        ld(&st->clients_maximum));
    one(o, "acemq_clients_total", "counter", "Successful CONNECTs since start.",
        ld(&st->clients_total));
    one(o, "acemq_sessions", "gauge", "Sessions in the registry, connected or not.",
        registry_count(b->registry));
    one(o, "acemq_sessions_expired_total", "counter", "Sessions ended by their expiry interval.",
        ld(&st->expired_sessions));
    one(o, "acemq_subscriptions", "gauge", "Subscriptions in the topic tree.",
        router_count(b->router));
    one(o, "acemq_retained_messages", "gauge", "Retained messages stored.",
        retain_count(b->retained));
}

static void render_traffic(out_t *o, broker_t *b)
{
    broker_stats_t *st = &b->stats;
    one(o, "acemq_packets_received_total", "counter", "MQTT packets received, of every type.",
        ld(&st->msgs_received));
    one(o, "acemq_bytes_received_total", "counter",
        "MQTT bytes received (above TLS and WebSocket framing).", ld(&st->bytes_received));
    one(o, "acemq_bytes_sent_total", "counter",
        "MQTT bytes written (above TLS and WebSocket framing).", ld(&st->bytes_sent));
    by_qos(o, "acemq_messages_received_total", "PUBLISH packets received from clients, by QoS.",
           st->pub_received_qos);
    by_qos(o, "acemq_messages_sent_total", "PUBLISH packets sent to subscribers, by QoS.",
           st->pub_sent_qos);
    by_qos(o, "acemq_message_bytes_received_total",
           "Payload bytes of PUBLISH packets received, by QoS.", st->pub_bytes_received_qos);
    by_qos(o, "acemq_message_bytes_sent_total", "Payload bytes of PUBLISH packets sent, by QoS.",
           st->pub_bytes_sent_qos);
    uint64_t drop[N_DROPPED];
    dropped_counts(st, drop);
    family(o, "acemq_messages_dropped_total", "counter",
           "Deliveries dropped: queue_full (max_queued_messages/bytes), too_large (over the "
           "client's Maximum Packet Size), expired (Message Expiry while queued), not_authorized "
           "(queued, then the subscriber's token or ACL no longer covered it), other.");
    for (int i = 0; i < N_DROPPED; i++)
        put(o, "acemq_messages_dropped_total{reason=\"%s\"} %" PRIu64 "\n", dropped_names[i],
            drop[i]);
}

/* The samples of one histogram; labels: "" or `name="value",` (with the trailing comma). */
static void histogram_samples(out_t *o, const char *name, const char *labels, histogram_t *h)
{
    uint64_t cum = 0;
    for (int i = 0; i <= N_BUCKETS; i++) {
        cum += ld(&h->n[i]);
        if (i < N_BUCKETS)
            put(o, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, labels, bucket_le[i], cum);
        else
            put(o, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
    }
    size_t ll = strlen(labels); /* {a="b",} -> {a="b"} */
    const char *open = ll ? "{" : "", *close = ll ? "}" : "";
    int lw = ll ? (int)ll - 1 : 0;
    put(o, "%s_sum%s%.*s%s %.9f\n", name, open, lw, labels, close,
        (double)ld(&h->sum_ns) / 1e9);
    put(o, "%s_count%s%.*s%s %" PRIu64 "\n", name, open, lw, labels, close, cum);
}

static void render_tokens_and_store(out_t *o)
{
    family(o, "acemq_token_validations_total", "counter",
           "Access tokens checked, by method (local: signature or MAC here; introspection: the "
           "AS's answer) and result.");
    for (int m = 0; m < 2; m++)
        for (int r = 0; r < TOK_RESULTS; r++)
            put(o, "acemq_token_validations_total{method=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                m ? "introspection" : "local", token_results[r], ld(&tokens[m][r]));
    family(o, "acemq_introspection_seconds", "histogram",
           "Token introspection requests, from the request to the answer (cached answers "
           "included); outcome failed: no usable answer (AS down, timeout, HTTP error).");
    histogram_samples(o, "acemq_introspection_seconds", "outcome=\"answered\",",
                      &introspect_hist[0]);
    histogram_samples(o, "acemq_introspection_seconds", "outcome=\"failed\",",
                      &introspect_hist[1]);
    family(o, "acemq_introspection_max_seconds", "gauge",
           "Slowest introspection request since start.");
    put(o, "acemq_introspection_max_seconds %.9f\n",
        (double)(ld(&introspect_hist[0].max_ns) > ld(&introspect_hist[1].max_ns)
                     ? ld(&introspect_hist[0].max_ns)
                     : ld(&introspect_hist[1].max_ns)) / 1e9);
    family(o, "acemq_store_fsync_seconds", "histogram",
           "fdatasync calls of the persistence store's writer thread.");
    histogram_samples(o, "acemq_store_fsync_seconds", "", &fsync_hist);
    family(o, "acemq_store_fsync_max_seconds", "gauge", "Slowest store fdatasync since start.");
    put(o, "acemq_store_fsync_max_seconds %.9f\n", (double)ld(&fsync_hist.max_ns) / 1e9);
}

static void reason_samples(out_t *o, const char *name, const char *label, const char *help,
                           reason_table_t *t)
{
    family(o, name, "counter", help);
    int n = atomic_load_explicit(&t->n, memory_order_acquire);
    for (int i = 0; i < n; i++)
        put(o, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, t->e[i].name, ld(&t->e[i].n));
    if (ld(&t->other))
        put(o, "%s{%s=\"other\"} %" PRIu64 "\n", name, label, ld(&t->other));
}

static void render_auth_and_loops(out_t *o, broker_t *b)
{
    one(o, "acemq_auth_successes_total", "counter", "Successful authentications.",
        ld(&b->stats.auth_ok));
    one(o, "acemq_auth_failures_total", "counter", "Failed authentications.",
        ld(&b->stats.auth_fail));
    reason_samples(o, "acemq_auth_failure_reasons_total", "reason",
                   "Failed authentications by reason.", &auth_tables[0]);
    reason_samples(o, "acemq_auth_success_kinds_total", "kind",
                   "Successful authentications by kind.", &auth_tables[1]);
    family(o, "acemq_worker_loop_lag_seconds", "gauge",
           "How late each worker's 1 s tick fired last time: time its loop was busy or blocked.");
    for (int i = 0; i < b->n_workers; i++)
        put(o, "acemq_worker_loop_lag_seconds{worker=\"%d\"} %.3f\n", i,
            (double)ld(&b->workers[i].lag_ms) / 1000.0);
    family(o, "acemq_worker_loop_lag_max_seconds", "gauge", "Worst tick lag of each worker.");
    for (int i = 0; i < b->n_workers; i++)
        put(o, "acemq_worker_loop_lag_max_seconds{worker=\"%d\"} %.3f\n", i,
            (double)ld(&b->workers[i].lag_max_ms) / 1000.0);
    uint64_t up = (clock_ms() - b->started_at) / 1000u;
    one(o, "acemq_uptime_seconds", "gauge", "Seconds since the broker started.", up);
    one(o, "acemq_start_time_seconds", "gauge", "Start time, seconds since the Unix epoch.",
        (uint64_t)b->started_wall);
    family(o, "acemq_build_info", "gauge", "Always 1; the version is the label.");
    put(o, "acemq_build_info{version=\"%s\"} 1\n", ACEMQ_VERSION);
}

/* ---- the $SYS mirror ---------------------------------------------------------------------------- */

static void each_reason(const char *prefix, reason_table_t *t, metrics_series_fn fn, void *arg)
{
    char topic[96];
    int n = atomic_load_explicit(&t->n, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        snprintf(topic, sizeof topic, "%s/%s", prefix, t->e[i].name);
        fn(arg, topic, ld(&t->e[i].n));
    }
    if (ld(&t->other)) {
        snprintf(topic, sizeof topic, "%s/other", prefix);
        fn(arg, topic, ld(&t->other));
    }
}

void metrics_each_series(broker_t *b, metrics_series_fn fn, void *arg)
{
    broker_stats_t *st = &b->stats;
    char topic[96];
    for (int q = 0; q < 3; q++) {
        snprintf(topic, sizeof topic, "publish/messages/received/qos%d", q);
        fn(arg, topic, ld(&st->pub_received_qos[q]));
        snprintf(topic, sizeof topic, "publish/messages/sent/qos%d", q);
        fn(arg, topic, ld(&st->pub_sent_qos[q]));
    }
    uint64_t drop[N_DROPPED];
    dropped_counts(st, drop);
    for (int i = 0; i < N_DROPPED; i++) {
        snprintf(topic, sizeof topic, "publish/messages/dropped/%s", dropped_names[i]);
        fn(arg, topic, drop[i]);
    }
    each_reason("auth/failures", &auth_tables[0], fn, arg);
    each_reason("auth/successes", &auth_tables[1], fn, arg);
    for (int m = 0; m < 2; m++)
        for (int r = 0; r < TOK_RESULTS; r++) {
            snprintf(topic, sizeof topic, "tokens/%s/%s", m ? "introspection" : "local",
                     token_results[r]);
            fn(arg, topic, ld(&tokens[m][r]));
        }
}

/* ---- the HTTP side (main thread) ------------------------------------------------------------- */

typedef struct mconn mconn_t;

typedef struct {
    broker_t *b;
    uv_tcp_t server;
    mconn_t *conns;
    unsigned n_conns;
} msrv_t;

struct mconn {
    msrv_t *srv;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    llhttp_t parser;
    char url[URL_MAX];
    size_t url_len, seen;
    bool url_long, responded, sent, closing;
    int handles; /* open libuv handles; the block goes when the last one has closed */
    char *resp;
    mconn_t *prev, *next;
};

static msrv_t *g_srv;
static char read_buf[4096]; /* the main thread reads one connection at a time */

static void handle_closed(uv_handle_t *h)
{
    mconn_t *c = h->data;
    if (--c->handles == 0) {
        free(c->resp);
        free(c);
    }
}

static void mconn_close(mconn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else if (c->srv->conns == c)
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->srv->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    mconn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* the linger timer or the client's EOF ends the connection */
}

static void on_written(uv_write_t *req, int status)
{
    mconn_t *c = req->data;
    if (c->closing)
        return;
    c->sent = true;
    if (status < 0 || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        mconn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
}

static void respond(mconn_t *c, int code, const char *reason, const char *type, const char *body,
                    size_t body_len, bool head)
{
    c->responded = true; /* reading goes on, discarding, so that closing sends no reset */
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: "
                      "%zu\r\nConnection: close\r\n\r\n", code, reason, type, body_len);
    size_t total = (size_t)hl + (head ? 0 : body_len);
    c->resp = malloc(total);
    if (!c->resp) {
        mconn_close(c);
        return;
    }
    memcpy(c->resp, hdr, (size_t)hl);
    if (!head)
        memcpy(c->resp + hl, body, body_len);
    uv_buf_t buf = uv_buf_init(c->resp, (unsigned)total);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_written) < 0)
        mconn_close(c);
}

static void respond_text(mconn_t *c, int code, const char *reason, const char *body)
{
    respond(c, code, reason, "text/plain; charset=utf-8", body, strlen(body), false);
}

static void serve(mconn_t *c)
{
    bool get = c->parser.method == HTTP_GET, head = c->parser.method == HTTP_HEAD;
    size_t n = strcspn(c->url, "?"); /* a query string changes nothing here */
    bool is_metrics = n == 8 && memcmp(c->url, "/metrics", 8) == 0;
    bool is_health = n == 8 && memcmp(c->url, "/healthz", 8) == 0;
    if (!is_metrics && !is_health) {
        respond_text(c, 404, "Not Found", "not found: try /metrics or /healthz\n");
    } else if (!get && !head) {
        respond_text(c, 405, "Method Not Allowed", "GET only\n");
    } else if (is_health) {
        respond(c, 200, "OK", "text/plain; charset=utf-8", "ok\n", 3, head);
    } else {
        out_t o = {.p = malloc(16384), .cap = 16384};
        o.failed = o.p == NULL;
        render_clients(&o, c->srv->b);
        render_traffic(&o, c->srv->b);
        render_auth_and_loops(&o, c->srv->b);
        render_tokens_and_store(&o);
        if (o.failed)
            respond_text(c, 500, "Internal Server Error", "out of memory\n");
        else
            respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", o.p, o.len, head);
        free(o.p);
    }
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    mconn_t *c = p->data;
    if (c->url_len + len >= sizeof c->url) {
        c->url_long = true;
        return 0;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = 0;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED; /* one request per connection: stop here and answer it */
}

static const llhttp_settings_t http_settings = {
    .on_url = on_url,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    mconn_t *c = s->data;
    if (c->closing)
        return;
    if (n == UV_EOF && c->responded && !c->sent) {
        uv_read_stop(s); /* a half-closed client still gets the answer; on_written goes on */
        return;
    }
    if (n < 0) {
        mconn_close(c);
        return;
    }
    if (c->responded || n == 0)
        return; /* lingering: what the client still sends is discarded */
    c->seen += (size_t)n;
    if (c->seen > MAX_REQUEST) {
        respond_text(c, 431, "Request Header Fields Too Large", "request too large\n");
        return;
    }
    llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)n);
    if (e == HPE_PAUSED && c->url_long)
        respond_text(c, 414, "URI Too Long", "URI too long\n");
    else if (e == HPE_PAUSED)
        serve(c);
    else if (e != HPE_OK)
        respond_text(c, 400, "Bad Request", "malformed HTTP request\n");
}

static void on_connection(uv_stream_t *server, int status)
{
    msrv_t *srv = server->data;
    if (status < 0)
        return;
    mconn_t *c = calloc(1, sizeof *c);
    if (!c)
        return; /* the connection stays in the backlog until the next accept */
    c->srv = srv;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    llhttp_init(&c->parser, HTTP_REQUEST, &http_settings);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || srv->n_conns > MAX_CONNS ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        mconn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, REQUEST_MS, 0);
}

static void server_closed(uv_handle_t *h)
{
    free(h->data); /* the msrv_t */
}

static int bind_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    if (strchr(host, ':'))
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

int metrics_start(broker_t *b, uv_loop_t *loop, char *err, size_t cap)
{
    const acemq_config_t *cfg = b->cfg;
    if (cfg->metrics_port <= 0 || g_srv)
        return 0;
    const char *host = cfg->metrics_address ? cfg->metrics_address : "127.0.0.1";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    msrv_t *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, cap, "metrics_listener: out of memory");
        return -1;
    }
    srv->b = b;
    int rc = bind_addr(host, cfg->metrics_port, &ss);
    if (rc == 0)
        rc = uv_tcp_init(loop, &srv->server);
    if (rc < 0) {
        snprintf(err, cap, "metrics_listener %d %s: %s", cfg->metrics_port, host, uv_strerror(rc));
        free(srv);
        return -1;
    }
    srv->server.data = srv;
    rc = uv_tcp_bind(&srv->server, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->server, 64, on_connection);
    if (rc < 0) {
        snprintf(err, cap, "metrics_listener: cannot listen on %s port %d: %s", host,
                 cfg->metrics_port, uv_strerror(rc));
        uv_close((uv_handle_t *)&srv->server, server_closed);
        return -1;
    }
    g_srv = srv;
    log_info("listening", "address=%s:%d protocol=http purpose=metrics", host, cfg->metrics_port);
    return 0;
}

void metrics_stop(void)
{
    msrv_t *srv = g_srv;
    if (!srv)
        return;
    g_srv = NULL;
    while (srv->conns)
        mconn_close(srv->conns); /* each unlinks itself, so srv may go before their callbacks */
    uv_close((uv_handle_t *)&srv->server, server_closed);
}
