/*
 * tools/bench/tls.c: the TLS 1.2 transport of the load generator: an mbedTLS 2.28 client layered
 * on tcp.c's socket (transport.h), so the MQTT client never knows whether it speaks TLS.
 *
 * Ciphertext from the socket is handed to mbedTLS through bio_recv straight out of the loop's
 * read buffer (mbedTLS copies what it needs into its own record buffer, and a read loop that
 * ends in WANT_READ has consumed it all); plaintext is collected in a per-loop buffer and handed
 * up once per socket read. Records mbedTLS writes (bio_send) are appended to one of two output
 * buffers, one of which is on the socket at a time, the same double buffering as the client's.
 * An upper write is encrypted at once; its completion is reported when the socket write that
 * carries its records completes, which keeps the client's one-write-in-flight rule.
 *
 * Handshakes run on the loop thread: the generator's own CPU is part of a TLS connect-storm
 * figure, for every broker alike (--threads spreads it over cores). With --resume, each
 * connection slot keeps the session of its last full handshake (with its ticket) and offers it
 * on the next connect, as a reconnecting device would.
 *
 * One mbedtls_ssl_config, CA chain, client certificate and DRBG serve every loop thread:
 * Debian's mbedTLS is built with MBEDTLS_THREADING_PTHREAD, so the DRBG locks itself, and the
 * rest is read-only once the loops start.
 */
#include "tools/bench/bench.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h> /* ssl->handshake->resume, read in the key-export callback */
#include <mbedtls/x509_crt.h>

#define PLAIN_CAP (256u * 1024u)   /* per-loop plaintext buffer */
#define READ_ROOM 16384u           /* one record's worth of plaintext */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} obuf_t;

typedef struct {
    mbedtls_ssl_context ssl;
    bool ssl_ready; /* mbedtls_ssl_setup done; later connects only reset it */
    bool hs_done;
    bool opened;    /* on_open was reported (success or failure) */
    bool resumed;   /* the current handshake resumed a session (set in export_cb) */
    const uint8_t *in_p; /* ciphertext of the socket read being processed */
    size_t in_n;
    obuf_t out[2];
    int fill;
    bool tcp_writing;
    bool app_queued; /* an upper write's records are in out[fill] */
    bool app_flying; /* ... in the socket write under way */
    mbedtls_ssl_session saved;
    bool have_saved;
    /* ACE: the key-export callback's master secret, randoms and PRF, and the exporter value
     * derived from them once the handshake is done (Finished verified) */
    uint8_t master[48], randoms[64 + 2];
    mbedtls_tls_prf_types prf;
    bool have_keys, have_exporter;
    uint8_t exporter[32];
} tls_sess_t;

static struct {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    int suites[64];
    char suite_used[96]; /* the first negotiated ciphersuite, for the report */
    uv_mutex_t lock;
    bool error_shown;
} g_tls;

static _Thread_local tls_sess_t *tl_current; /* the session whose handshake step is running */

static void die(const char *what, int rc)
{
    char buf[160];
    mbedtls_strerror(rc, buf, sizeof buf);
    fprintf(stderr, "acemq-bench: %s: %s\n", what, buf);
    exit(2);
}

/* Runs during key derivation of every handshake: the only point at which the client can see
 * whether the server accepted the offered session (ssl->handshake is freed afterwards), and the
 * only one at which the randoms are reachable, which the RFC 5705 exporter needs (ACE PoP). */
static int export_cb(void *arg, const unsigned char *ms, const unsigned char *kb, size_t maclen,
                     size_t keylen, size_t ivlen, const unsigned char cr[32],
                     const unsigned char sr[32], mbedtls_tls_prf_types prf)
{
    (void)arg, (void)kb, (void)maclen, (void)keylen, (void)ivlen;
    tls_sess_t *s = tl_current;
    if (!s)
        return 0;
    if (s->ssl.handshake)
        s->resumed = s->ssl.handshake->resume != 0;
    if (g_cfg.ace) {
        memcpy(s->master, ms, sizeof s->master);
        memcpy(s->randoms, cr, 32);
        memcpy(s->randoms + 32, sr, 32);
        s->randoms[64] = s->randoms[65] = 0; /* zero-length context: its u16 length, 0 */
        s->prf = prf;
        s->have_keys = true;
    }
    return 0;
}

/* RFC 5705: PRF(master_secret, label, client_random + server_random + u16 context length +
 * context)[32], with the PRF of the negotiated suite. Only after the handshake returned 0: the
 * callback above runs before the server's Finished is verified. */
static void derive_exporter(tls_sess_t *s)
{
    static const char label[] = "EXPORTER-ACE-MQTT-Sign-Challenge";
    s->have_exporter = s->have_keys &&
                       mbedtls_ssl_tls_prf(s->prf, s->master, sizeof s->master, label, s->randoms,
                                           sizeof s->randoms, s->exporter, sizeof s->exporter) == 0;
    mbedtls_platform_zeroize(s->master, sizeof s->master);
    s->have_keys = false;
}

const uint8_t *bench_tls_exporter(bench_conn_t *c)
{
    tls_sess_t *s = c->session;
    return s && s->hs_done && s->have_exporter ? s->exporter : NULL;
}

static void set_suites(const char *list)
{
    char buf[1024];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ":,", &save); t; t = strtok_r(NULL, ":,", &save)) {
        int id = mbedtls_ssl_get_ciphersuite_id(t);
        if (!id) {
            fprintf(stderr, "acemq-bench: --ciphers: unknown mbedTLS ciphersuite '%s' (use names "
                    "like TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256)\n", t);
            exit(2);
        }
        if (n + 1 < sizeof g_tls.suites / sizeof *g_tls.suites)
            g_tls.suites[n++] = id;
    }
    g_tls.suites[n] = 0;
    mbedtls_ssl_conf_ciphersuites(&g_tls.conf, g_tls.suites);
}

void bench_tls_init(void)
{
    int rc;
    uv_mutex_init(&g_tls.lock);
    mbedtls_ssl_config_init(&g_tls.conf);
    mbedtls_x509_crt_init(&g_tls.ca);
    mbedtls_x509_crt_init(&g_tls.cert);
    mbedtls_pk_init(&g_tls.key);
    mbedtls_entropy_init(&g_tls.entropy);
    mbedtls_ctr_drbg_init(&g_tls.drbg);
    if ((rc = mbedtls_ctr_drbg_seed(&g_tls.drbg, mbedtls_entropy_func, &g_tls.entropy,
                                     (const unsigned char *)"acemq-bench", 11)))
        die("DRBG seed", rc);
    if ((rc = mbedtls_ssl_config_defaults(&g_tls.conf, MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)))
        die("TLS config", rc);
    mbedtls_ssl_conf_rng(&g_tls.conf, mbedtls_ctr_drbg_random, &g_tls.drbg);
    mbedtls_ssl_conf_min_version(&g_tls.conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&g_tls.conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_session_tickets(&g_tls.conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    mbedtls_ssl_conf_export_keys_ext_cb(&g_tls.conf, export_cb, NULL);
    if (g_cfg.tls_cafile) {
        if ((rc = mbedtls_x509_crt_parse_file(&g_tls.ca, g_cfg.tls_cafile)))
            die(g_cfg.tls_cafile, rc);
        mbedtls_ssl_conf_ca_chain(&g_tls.conf, &g_tls.ca, NULL);
        mbedtls_ssl_conf_authmode(&g_tls.conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    } else {
        mbedtls_ssl_conf_authmode(&g_tls.conf, MBEDTLS_SSL_VERIFY_NONE);
    }
    if (g_cfg.tls_cert) {
        if ((rc = mbedtls_x509_crt_parse_file(&g_tls.cert, g_cfg.tls_cert)))
            die(g_cfg.tls_cert, rc);
        if ((rc = mbedtls_pk_parse_keyfile(&g_tls.key, g_cfg.tls_key, NULL)))
            die(g_cfg.tls_key, rc);
        if ((rc = mbedtls_ssl_conf_own_cert(&g_tls.conf, &g_tls.cert, &g_tls.key)))
            die("--cert/--key", rc);
    }
    if (g_cfg.tls_ciphers)
        set_suites(g_cfg.tls_ciphers);
}

const char *bench_tls_ciphersuite(void)
{
    return g_tls.suite_used;
}

static tls_sess_t *sess(bench_conn_t *c)
{
    return c->session;
}

static bench_client_t *client_of(bench_conn_t *c)
{
    return (bench_client_t *)c; /* the connection is the client's first member */
}

/* Reports a handshake error once per process, with mbedTLS's words for it. */
static void show_error(int rc)
{
    uv_mutex_lock(&g_tls.lock);
    bool first = !g_tls.error_shown;
    g_tls.error_shown = true;
    uv_mutex_unlock(&g_tls.lock);
    if (first) {
        char buf[160];
        mbedtls_strerror(rc, buf, sizeof buf);
        fprintf(stderr, "acemq-bench: TLS handshake failed: %s (-0x%04x)\n", buf, (unsigned)-rc);
    }
}

static int bio_send(void *arg, const unsigned char *p, size_t len)
{
    tls_sess_t *s = arg;
    obuf_t *b = &s->out[s->fill];
    if (b->cap - b->len < len) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < len)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            return MBEDTLS_ERR_SSL_ALLOC_FAILED;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
    return (int)len;
}

static int bio_recv(void *arg, unsigned char *p, size_t len)
{
    tls_sess_t *s = arg;
    if (!s->in_n)
        return MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = len < s->in_n ? len : s->in_n;
    memcpy(p, s->in_p, n);
    s->in_p += n;
    s->in_n -= n;
    return (int)n;
}

/* Puts the filled output buffer on the socket unless a socket write is under way. */
static int flush(bench_conn_t *c)
{
    tls_sess_t *s = sess(c);
    obuf_t *b = &s->out[s->fill];
    if (s->tcp_writing || !b->len || c->closing)
        return 0;
    int rc = bench_tcp_write(c, b->p, b->len);
    if (rc)
        return rc;
    s->tcp_writing = true;
    s->app_flying = s->app_queued;
    s->app_queued = false;
    s->fill ^= 1;
    return 0;
}

static void report_open(bench_conn_t *c, int status)
{
    tls_sess_t *s = sess(c);
    if (s->opened || c->closing)
        return;
    s->opened = true;
    bench_conn_on_open(c, status);
}

/* One handshake step over what has arrived. Returns 0 (done or waiting) or a failure. */
static int handshake(bench_conn_t *c)
{
    tls_sess_t *s = sess(c);
    tl_current = s;
    int rc = mbedtls_ssl_handshake(&s->ssl);
    tl_current = NULL;
    int frc = flush(c);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return frc;
    if (rc) {
        show_error(rc);
        return UV_EPROTO;
    }
    s->hs_done = true;
    if (g_cfg.ace)
        derive_exporter(s);
    bench_stats_t *st = &client_of(c)->th->st;
    ctr_add(s->resumed ? &st->tls_resumed : &st->tls_full, 1);
    if (!g_tls.suite_used[0]) {
        uv_mutex_lock(&g_tls.lock);
        if (!g_tls.suite_used[0])
            snprintf(g_tls.suite_used, sizeof g_tls.suite_used, "%s",
                     mbedtls_ssl_get_ciphersuite(&s->ssl));
        uv_mutex_unlock(&g_tls.lock);
    }
    if (g_cfg.tls_resume && !s->resumed) {
        mbedtls_ssl_session_free(&s->saved);
        mbedtls_ssl_session_init(&s->saved);
        s->have_saved = mbedtls_ssl_get_session(&s->ssl, &s->saved) == 0;
    }
    if (frc)
        return frc;
    report_open(c, 0);
    return 0;
}

static void tls_tcp_open(bench_conn_t *c, int status)
{
    tls_sess_t *s = sess(c);
    if (status) {
        report_open(c, status);
        return;
    }
    int rc = 0;
    if (!s->ssl_ready) {
        mbedtls_ssl_init(&s->ssl);
        rc = mbedtls_ssl_setup(&s->ssl, &g_tls.conf);
        s->ssl_ready = rc == 0;
    } else {
        rc = mbedtls_ssl_session_reset(&s->ssl);
    }
    if (!rc && g_cfg.tls_servername)
        rc = mbedtls_ssl_set_hostname(&s->ssl, g_cfg.tls_servername);
    if (!rc && g_cfg.tls_resume && s->have_saved)
        rc = mbedtls_ssl_set_session(&s->ssl, &s->saved);
    if (rc) {
        show_error(rc);
        report_open(c, UV_EPROTO);
        return;
    }
    mbedtls_ssl_set_bio(&s->ssl, s, bio_send, bio_recv, NULL);
    rc = handshake(c);
    if (rc)
        report_open(c, rc);
}

/* Decrypts every record of this read into the loop's plaintext buffer and hands it up. */
static void read_records(bench_conn_t *c)
{
    tls_sess_t *s = sess(c);
    bench_io_t *io = &client_of(c)->th->io;
    if (!io->plain) {
        io->plain = malloc(PLAIN_CAP);
        if (!io->plain) {
            bench_conn_on_eof(c, UV_ENOMEM);
            return;
        }
    }
    for (;;) {
        size_t n = 0;
        int rc = 0;
        while (PLAIN_CAP - n >= READ_ROOM) {
            rc = mbedtls_ssl_read(&s->ssl, io->plain + n, PLAIN_CAP - n);
            if (rc <= 0)
                break;
            n += (size_t)rc;
        }
        if (n) {
            bench_conn_on_data(c, io->plain, n);
            if (c->closing)
                return;
        }
        if (rc > 0)
            continue; /* the buffer filled up: more records may be waiting */
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
            break;
        /* 0 or close_notify: the broker ended the session; anything else is an error. */
        if (rc != 0 && rc != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            show_error(rc);
        bench_conn_on_eof(c, rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ? UV_EOF
                                                                                : UV_EPROTO);
        return;
    }
    /* mbedTLS may have written (an alert); push it out. */
    if (flush(c))
        bench_conn_on_eof(c, UV_EPIPE);
}

static void tls_tcp_data(bench_conn_t *c, const uint8_t *p, size_t n)
{
    tls_sess_t *s = sess(c);
    s->in_p = p;
    s->in_n = n;
    if (!s->hs_done) {
        int rc = handshake(c);
        if (rc) {
            report_open(c, rc);
            return;
        }
        if (!s->hs_done || c->closing)
            return;
    }
    read_records(c);
    s->in_n = 0;
}

static void tls_tcp_eof(bench_conn_t *c, int status)
{
    tls_sess_t *s = sess(c);
    if (!s->hs_done)
        report_open(c, status ? status : UV_ECONNRESET);
    else if (!c->closing)
        bench_conn_on_eof(c, status);
}

static void tls_tcp_written(bench_conn_t *c, int status)
{
    tls_sess_t *s = sess(c);
    bool app = s->app_flying;
    s->tcp_writing = false;
    s->app_flying = false;
    s->out[s->fill ^ 1].len = 0;
    if (!status)
        status = flush(c);
    if (c->closing)
        return;
    if (app)
        bench_conn_on_written(c, status);
    else if (status && !s->hs_done)
        report_open(c, status);
    else if (status)
        bench_conn_on_eof(c, status);
}

static void tls_tcp_closed(bench_conn_t *c)
{
    tls_sess_t *s = sess(c);
    s->out[0].len = s->out[1].len = 0;
    s->fill = 0;
    s->tcp_writing = s->app_queued = s->app_flying = false;
    bench_conn_on_closed(c);
}

static int tls_open(bench_conn_t *c, uv_loop_t *loop, const struct sockaddr *addr)
{
    if (!c->session) {
        tls_sess_t *s = calloc(1, sizeof *s);
        if (!s)
            return UV_ENOMEM;
        mbedtls_ssl_session_init(&s->saved);
        c->session = s;
    }
    tls_sess_t *s = sess(c);
    s->hs_done = s->opened = s->resumed = false;
    s->have_keys = s->have_exporter = false;
    s->in_n = 0;
    return bench_tcp_open(c, loop, addr);
}

static int tls_write(bench_conn_t *c, const uint8_t *p, size_t len)
{
    tls_sess_t *s = sess(c);
    if (!s->hs_done)
        return UV_ENOTCONN;
    while (len) {
        int rc = mbedtls_ssl_write(&s->ssl, p, len);
        if (rc <= 0) {
            show_error(rc);
            return UV_EPROTO; /* bio_send never blocks, so WANT_WRITE cannot happen */
        }
        p += rc;
        len -= (size_t)rc;
    }
    s->app_queued = true;
    return flush(c);
}

static void tls_close(bench_conn_t *c)
{
    bench_tcp_close(c);
}

/* Frees a connection slot's TLS state (after its last close). */
void bench_tls_release(bench_conn_t *c)
{
    tls_sess_t *s = sess(c);
    if (!s)
        return;
    if (s->ssl_ready)
        mbedtls_ssl_free(&s->ssl);
    mbedtls_ssl_session_free(&s->saved);
    free(s->out[0].p);
    free(s->out[1].p);
    free(s);
    c->session = NULL;
}

static const bench_events_t tls_lower = {
    .on_open = tls_tcp_open,
    .on_data = tls_tcp_data,
    .on_eof = tls_tcp_eof,
    .on_written = tls_tcp_written,
    .on_closed = tls_tcp_closed,
};

const bench_transport_t bench_tls_transport = {
    .name = "tls",
    .open = tls_open,
    .write = tls_write,
    .close = tls_close,
    .lower = &tls_lower,
};
