/*
 * ace/introspect.c: the asynchronous side of the introspection client (see introspect.h): one
 * request = resolve, connect, optional TLS (mbedTLS client over the uv_tcp_t), POST, read until the
 * answer is complete, all as callbacks on the caller's loop, under one timer that bounds the whole
 * exchange. One connection per request: an introspection is rare next to the cache hits, and it
 * keeps the request free of keep-alive state shared between workers.
 *
 * Lifetime of a request: `done` is set once, by finish() (the callback runs) or by cancel (it does
 * not). Both then tear down: the TLS context is freed at once, the uv handles are closed, and the
 * request memory goes when the last close callback (or a still-running getaddrinfo) has returned.
 * Requests hold a reference on the ace_introspect_t they use, so its owner may drop it at any time.
 *
 * The TLS client handshake runs on the loop (a few ms, one connection to the AS): unlike the
 * broker's server side this is not a storm of untrusted peers, and the cache keeps it rare.
 */
#include "ace/introspect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ace/introspect_int.h"
#include "ace/keys.h"
#include "ace/token_cache.h"

#define MAX_SECRET 1024

struct ace_introspect {
    atomic_int refs;
    ace_url_t url;
    char *basic;          /* base64 client credentials (a secret: wiped on free) */
    char issuer[256];
    char *audience;
    unsigned timeout_ms;
    int skew;
    size_t max_token, max_response;
    ace_token_cache_t *pos, *neg; /* active answers; inactive ones (claims hold only the digest) */
    int has_tls;
    mbedtls_x509_crt ca;
    mbedtls_ssl_config conf; /* read-only once built, so shared by every worker's requests */
};

struct ace_introspect_req {
    ace_introspect_t *ai;
    uv_loop_t *loop;
    ace_introspect_cb cb;
    void *arg;
    int done;
    int handles;         /* uv handles not yet closed */
    int gai_pending;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    struct addrinfo *addrs, *next_addr;
    uv_tcp_t *tcp;       /* the current connection attempt */
    uv_connect_t conn;
    uv_write_t wreq;     /* the plain-HTTP request (TLS records are copied, see bio_send) */
    char *request;       /* holds the token and the credentials: wiped on free */
    size_t request_len, sent;
    uint8_t digest[32];
    int from_cache;
    int cached_status;
    ace_claims_t cached;
    int tls_on, hs_done;
    mbedtls_ssl_context ssl;
    const uint8_t *cin;  /* ciphertext of the current read, handed to mbedTLS by bio_recv */
    size_t cin_len;
    ace_http_resp_t resp;
    char rbuf[16384];
};

static void teardown(ace_introspect_req_t *r);
static void finish(ace_introspect_req_t *r, int status, ace_claims_t *claims);

/* ---- the shared object ---- */

static int read_secret(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fgets(out, (int)cap, f) != NULL;
    fclose(f);
    if (!ok)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] ? 0 : -1;
}

static int setup_tls(ace_introspect_t *ai, const char *cafile, char *err, size_t cap)
{
    char msg[128];
    int rc;
    mbedtls_x509_crt_init(&ai->ca);
    mbedtls_ssl_config_init(&ai->conf);
    ai->has_tls = 1;
    /* A bundle may hold a few certificates mbedTLS cannot parse: usable if any parsed. */
    rc = mbedtls_x509_crt_parse_file(&ai->ca, cafile);
    if (rc < 0 || ai->ca.version == 0) {
        mbedtls_strerror(rc, msg, sizeof(msg));
        snprintf(err, cap, "cannot load CA file %s: %s", cafile, msg);
        return -1;
    }
    rc = mbedtls_ssl_config_defaults(&ai->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc) {
        snprintf(err, cap, "TLS client configuration failed");
        return -1;
    }
    mbedtls_ssl_conf_min_version(&ai->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_authmode(&ai->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&ai->conf, &ai->ca, NULL);
    mbedtls_ssl_conf_rng(&ai->conf, ace_rng, NULL);
    return 0;
}

static int fill(ace_introspect_t *ai, const ace_introspect_config_t *cfg, char *err, size_t cap)
{
    char secret[MAX_SECRET];
    if (!cfg->client_id || !cfg->secret_file || ace_url_parse(cfg->url, &ai->url)) {
        snprintf(err, cap, "introspection needs an http(s)://host[:port]/path URL, a client id and "
                           "a secret file");
        return -1;
    }
    if (read_secret(cfg->secret_file, secret, sizeof(secret))) {
        snprintf(err, cap, "cannot read a secret from the first line of %s", cfg->secret_file);
        return -1;
    }
    int rc = ace_introspect_basic(cfg->client_id, secret, &ai->basic);
    memset(secret, 0, sizeof(secret));
    if (rc || (cfg->audience && !(ai->audience = strdup(cfg->audience)))) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    const char *iss = cfg->issuer ? cfg->issuer : cfg->url;
    snprintf(ai->issuer, sizeof(ai->issuer), "%s", iss); /* a longer URL is cut: it is a label */
    ai->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    ai->skew = cfg->clock_skew > 0 ? cfg->clock_skew : 0;
    ai->max_token = cfg->max_token ? cfg->max_token : 16384;
    ai->max_response = cfg->max_response ? cfg->max_response : 65536;
    if (cfg->cache_ttl > 0) {
        size_t n = cfg->cache_capacity ? cfg->cache_capacity : 4096;
        ai->pos = ace_token_cache_new(n, cfg->cache_ttl);
        ai->neg = ace_token_cache_new(n, cfg->cache_ttl);
        if (!ai->pos || !ai->neg) {
            snprintf(err, cap, "out of memory");
            return -1;
        }
    }
    /* mbedTLS 2.28 matches only dNSName SANs and the CN, never iPAddress SANs, so an https URL
     * naming an IP address could only pass with an odd certificate: refuse it with the reason. */
    struct in6_addr ip;
    if (ai->url.tls && (inet_pton(AF_INET, ai->url.host, &ip) == 1 ||
                        inet_pton(AF_INET6, ai->url.host, &ip) == 1)) {
        snprintf(err, cap, "https introspection URL must name the AS by DNS name, not IP address "
                           "(mbedTLS 2.28 cannot match IP addresses in certificates)");
        return -1;
    }
    if (ai->url.tls)
        return setup_tls(ai, cfg->cafile ? cfg->cafile : ACE_INTROSPECT_DEFAULT_CAFILE, err, cap);
    return 0;
}

static void ai_unref(ace_introspect_t *ai)
{
    if (!ai || atomic_fetch_sub(&ai->refs, 1) != 1)
        return;
    if (ai->basic) {
        memset(ai->basic, 0, strlen(ai->basic));
        free(ai->basic);
    }
    free(ai->audience);
    ace_token_cache_free(ai->pos);
    ace_token_cache_free(ai->neg);
    if (ai->has_tls) {
        mbedtls_ssl_config_free(&ai->conf);
        mbedtls_x509_crt_free(&ai->ca);
    }
    free(ai);
}

ace_introspect_t *ace_introspect_new(const ace_introspect_config_t *cfg, char *err, size_t cap)
{
    char dummy[1];
    if (!err || !cap) {
        err = dummy;
        cap = sizeof(dummy);
    }
    ace_introspect_t *ai = calloc(1, sizeof(*ai));
    if (!ai) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    atomic_init(&ai->refs, 1);
    if (!cfg || fill(ai, cfg, err, cap)) {
        if (!cfg)
            snprintf(err, cap, "no configuration");
        ai_unref(ai);
        return NULL;
    }
    return ai;
}

void ace_introspect_free(ace_introspect_t *ai)
{
    ai_unref(ai);
}

int ace_introspect_cached(ace_introspect_t *ai, const uint8_t *tok, size_t len, int64_t now,
                          ace_claims_t *out)
{
    uint8_t d[32];
    memset(out, 0, sizeof(*out));
    if (!ai || !ai->pos || !tok || len == 0 || mbedtls_sha256_ret(tok, len, d, 0))
        return 1;
    if (ace_token_cache_get(ai->pos, d, now, out))
        return 0;
    ace_claims_t neg;
    if (ace_token_cache_get(ai->neg, d, now, &neg)) {
        ace_claims_free(&neg);
        return ACE_INTROSPECT_E_INACTIVE;
    }
    return 1;
}

/* ---- request teardown ---- */

static void req_free(ace_introspect_req_t *r)
{
    if (r->addrs)
        uv_freeaddrinfo(r->addrs);
    if (r->request) {
        memset(r->request, 0, r->request_len);
        free(r->request);
    }
    ace_claims_free(&r->cached);
    ai_unref(r->ai);
    free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
    ace_introspect_req_t *r = h->data;
    if (h != (uv_handle_t *)&r->timer)
        free(h); /* a connection attempt's uv_tcp_t */
    if (--r->handles == 0 && !r->gai_pending)
        req_free(r);
}

static void close_tcp(ace_introspect_req_t *r)
{
    if (r->tcp) {
        uv_close((uv_handle_t *)r->tcp, on_handle_closed);
        r->tcp = NULL;
    }
}

static void teardown(ace_introspect_req_t *r)
{
    if (r->tls_on) {
        mbedtls_ssl_free(&r->ssl);
        r->tls_on = 0;
    }
    ace_http_resp_free(&r->resp);
    uv_timer_stop(&r->timer);
    if (r->gai_pending)
        uv_cancel((uv_req_t *)&r->gai); /* if it already runs, on_resolved frees the request */
    close_tcp(r);
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
}

void ace_introspect_cancel(ace_introspect_req_t *r)
{
    if (!r || r->done)
        return;
    r->done = 1;
    teardown(r);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* Runs the callback once, caching what the AS said. claims may be NULL for errors. */
static void finish(ace_introspect_req_t *r, int status, ace_claims_t *claims)
{
    ace_introspect_t *ai = r->ai;
    if (r->done)
        return;
    r->done = 1;
    if (!r->from_cache && ai->pos) {
        int64_t now = now_s();
        if (status == 0) {
            (void)ace_token_cache_put(ai->pos, claims, now,
                                      claims->has_exp ? claims->exp : now + 86400);
        } else if (status == ACE_INTROSPECT_E_INACTIVE) {
            ace_claims_t neg;
            memset(&neg, 0, sizeof(neg));
            memcpy(neg.digest, r->digest, 32);
            (void)ace_token_cache_put(ai->neg, &neg, now, now + 86400); /* the TTL caps it */
        }
    }
    r->cb(r->arg, status, status == 0 ? claims : NULL);
    teardown(r);
}

/* The answer is complete: turn it into claims and finish. */
static void complete(ace_introspect_req_t *r)
{
    ace_claims_t c;
    int rc = ace_http_resp_result(&r->resp, r->ai->audience, &c);
    if (rc == 0) {
        memcpy(c.digest, r->digest, 32);
        if (!c.iss[0])
            memcpy(c.iss, r->ai->issuer, sizeof(c.iss));
        /* The AS decides, but an answer that contradicts itself is not trusted. */
        if (c.has_exp && c.exp + r->ai->skew <= now_s())
            rc = ACE_E_EXPIRED;
    }
    finish(r, rc, rc == 0 ? &c : NULL);
    ace_claims_free(&c);
}

/* Plaintext of the answer arrived. Returns 1 when the request is over. */
static int got_plain(ace_introspect_req_t *r, const uint8_t *p, size_t n)
{
    int rc = ace_http_resp_feed(&r->resp, p, n);
    if (rc == 0)
        return 0;
    if (rc == 1)
        complete(r);
    else
        finish(r, rc, NULL);
    return 1;
}

/* The AS closed. JSON is self-delimiting, so an answer cut short by a close without TLS
 * close_notify cannot pass as a complete one: EOF is accepted as the end of an unsized body. */
static void got_eof(ace_introspect_req_t *r)
{
    int rc = ace_http_resp_eof(&r->resp);
    if (rc == 1)
        complete(r);
    else
        finish(r, r->sent < r->request_len ? ACE_INTROSPECT_E_CONNECT : rc, NULL);
}

/* ---- TLS over the uv_tcp_t ---- */

typedef struct {
    uv_write_t w;
    uint8_t data[];
} wbuf_t;

static void on_written(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows up as a read error or the timeout */
    free(w);
}

/* Copies the record out and queues it; never WANT_WRITE, so mbedTLS never has to retry. */
static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    ace_introspect_req_t *r = ctx;
    wbuf_t *wb = malloc(sizeof(*wb) + len);
    if (!wb || !r->tcp) {
        free(wb);
        return MBEDTLS_ERR_NET_SEND_FAILED;
    }
    memcpy(wb->data, buf, len);
    uv_buf_t b = uv_buf_init((char *)wb->data, (unsigned)len);
    if (uv_write(&wb->w, (uv_stream_t *)r->tcp, &b, 1, on_written)) {
        free(wb);
        return MBEDTLS_ERR_NET_SEND_FAILED;
    }
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    ace_introspect_req_t *r = ctx;
    if (r->cin_len == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = len < r->cin_len ? len : r->cin_len;
    memcpy(buf, r->cin, n);
    r->cin += n;
    r->cin_len -= n;
    return (int)n;
}

static int want(int rc)
{
    return rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE;
}

/* Handshake, then the request, then every plaintext byte mbedTLS can give. */
static void tls_drive(ace_introspect_req_t *r)
{
    int rc;
    uint8_t pt[4096];
    if (!r->hs_done) {
        rc = mbedtls_ssl_handshake(&r->ssl);
        if (want(rc))
            return;
        if (rc) {
            finish(r, ACE_INTROSPECT_E_TLS, NULL);
            return;
        }
        r->hs_done = 1;
    }
    while (r->sent < r->request_len) {
        rc = mbedtls_ssl_write(&r->ssl, (const uint8_t *)r->request + r->sent,
                               r->request_len - r->sent);
        if (want(rc))
            return;
        if (rc < 0) {
            finish(r, ACE_INTROSPECT_E_CONNECT, NULL);
            return;
        }
        r->sent += (size_t)rc;
    }
    for (;;) {
        rc = mbedtls_ssl_read(&r->ssl, pt, sizeof(pt));
        if (rc > 0 && got_plain(r, pt, (size_t)rc))
            return;
        if (rc > 0)
            continue;
        if (want(rc))
            return;
        if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            got_eof(r);
        else
            finish(r, ACE_INTROSPECT_E_TLS, NULL);
        return;
    }
}

static int tls_start(ace_introspect_req_t *r)
{
    mbedtls_ssl_init(&r->ssl);
    r->tls_on = 1;
    if (mbedtls_ssl_setup(&r->ssl, &r->ai->conf) ||
        mbedtls_ssl_set_hostname(&r->ssl, r->ai->url.host))
        return -1;
    mbedtls_ssl_set_bio(&r->ssl, r, bio_send, bio_recv, NULL);
    return 0;
}

/* ---- TCP ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    ace_introspect_req_t *r = h->data;
    (void)hint;
    *buf = uv_buf_init(r->rbuf, sizeof(r->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ace_introspect_req_t *r = s->data;
    if (r->done || nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            finish(r, ACE_INTROSPECT_E_CONNECT, NULL);
        else if (r->tls_on && !r->hs_done)
            finish(r, ACE_INTROSPECT_E_TLS, NULL);
        else
            got_eof(r);
        return;
    }
    if (!r->tls_on) {
        got_plain(r, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    r->cin = (const uint8_t *)buf->base;
    r->cin_len = (size_t)nread;
    tls_drive(r);
    r->cin_len = 0; /* the buffer is reused by the next read */
}

static void try_connect(ace_introspect_req_t *r);

static void on_written_req(uv_write_t *w, int status)
{
    (void)w;
    (void)status; /* a failed write shows up as a read error or the timeout */
}

static void on_connect(uv_connect_t *c, int status)
{
    ace_introspect_req_t *r = c->data;
    if (r->done)
        return; /* cancelled, timed out: the handle is already closing */
    if (status < 0) {
        close_tcp(r);
        try_connect(r); /* the next address */
        return;
    }
    if (uv_read_start((uv_stream_t *)r->tcp, on_alloc, on_read)) {
        finish(r, ACE_INTROSPECT_E_CONNECT, NULL);
        return;
    }
    if (r->ai->url.tls) {
        if (tls_start(r))
            finish(r, ACE_E_NOMEM, NULL);
        else
            tls_drive(r);
        return;
    }
    uv_buf_t b = uv_buf_init(r->request, (unsigned)r->request_len);
    if (uv_write(&r->wreq, (uv_stream_t *)r->tcp, &b, 1, on_written_req)) {
        finish(r, ACE_INTROSPECT_E_CONNECT, NULL);
        return;
    }
    r->sent = r->request_len;
}

static void try_connect(ace_introspect_req_t *r)
{
    while (r->next_addr) {
        struct addrinfo *a = r->next_addr;
        r->next_addr = a->ai_next;
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t || uv_tcp_init(r->loop, t)) {
            free(t);
            break;
        }
        t->data = r;
        r->tcp = t;
        r->handles++;
        r->conn.data = r;
        if (uv_tcp_connect(&r->conn, t, a->ai_addr, on_connect) == 0)
            return;
        close_tcp(r);
    }
    finish(r, ACE_INTROSPECT_E_CONNECT, NULL);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    ace_introspect_req_t *r = g->data;
    r->gai_pending = 0;
    r->addrs = res;
    if (r->done) {
        if (r->handles == 0)
            req_free(r); /* the handles closed while the lookup was still running */
        return;
    }
    if (status < 0 || !res) {
        finish(r, ACE_INTROSPECT_E_CONNECT, NULL);
        return;
    }
    r->next_addr = res;
    try_connect(r);
}

static void on_timer(uv_timer_t *t)
{
    ace_introspect_req_t *r = t->data;
    if (r->from_cache)
        finish(r, r->cached_status, r->cached_status == 0 ? &r->cached : NULL);
    else
        finish(r, ACE_INTROSPECT_E_TIMEOUT, NULL);
}

/* ---- start ---- */

static ace_introspect_req_t *req_new(ace_introspect_t *ai, uv_loop_t *loop, ace_introspect_cb cb,
                                     void *arg)
{
    ace_introspect_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (uv_timer_init(loop, &r->timer)) {
        free(r);
        return NULL;
    }
    atomic_fetch_add(&ai->refs, 1);
    r->ai = ai;
    r->loop = loop;
    r->cb = cb;
    r->arg = arg;
    r->timer.data = r;
    r->gai.data = r;
    r->handles = 1;
    ace_http_resp_init(&r->resp, ai->max_response);
    return r;
}

int ace_introspect_token(ace_introspect_t *ai, uv_loop_t *loop, const uint8_t *tok, size_t len,
                         ace_introspect_cb cb, void *arg, ace_introspect_req_t **req)
{
    if (req)
        *req = NULL;
    if (!ai || !loop || !tok || len == 0 || !cb || !req)
        return ACE_E_ARG;
    if (len > ai->max_token)
        return ACE_E_TOO_LARGE;
    ace_introspect_req_t *r = req_new(ai, loop, cb, arg);
    if (!r)
        return ACE_E_NOMEM;
    int rc = mbedtls_sha256_ret(tok, len, r->digest, 0) ? ACE_E_NOMEM : 0;
    if (!rc) {
        r->cached_status = ace_introspect_cached(ai, tok, len, now_s(), &r->cached);
        r->from_cache = r->cached_status <= 0;
    }
    if (!rc && r->from_cache) {
        rc = uv_timer_start(&r->timer, on_timer, 0, 0) ? ACE_E_NOMEM : 0; /* next iteration */
    } else if (!rc) {
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        rc = ace_introspect_build_request(&ai->url, ai->basic, tok, len, &r->request,
                                          &r->request_len);
        if (!rc && uv_timer_start(&r->timer, on_timer, ai->timeout_ms, 0))
            rc = ACE_E_NOMEM;
        if (!rc && uv_getaddrinfo(loop, &r->gai, on_resolved, ai->url.host, ai->url.port, &hints))
            rc = ACE_E_NOMEM;
        r->gai_pending = rc == 0;
    }
    if (rc) {
        r->done = 1;
        teardown(r);
        return rc;
    }
    *req = r;
    return 0;
}
