/*
 * tls/config.c: the TLS server object, loading a configuration into a generation (keys,
 * certificates, CA, CRL, PSK table, cipher list, ECDHE group order, two mbedtls_ssl_config),
 * SIGHUP reload and the refcounts that let open connections keep the generation they started with.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/platform_util.h>

#include "tls/tls_int.h"

#define DEFAULT_TIMEOUT_S 10
#define TICKET_LIFETIME_S 7200

/* Forward secrecy and AEAD only, unless the operator lists more. */
static const char *const default_ciphers[] = {
    "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
    "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256", "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
    NULL};

/* Added when PSK is enabled. RFC 9431's TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256 (0xD001) is not
 * in mbedTLS 2.28; these are the AEAD PSK suites it has. */
static const char *const default_psk_ciphers[] = {
    "TLS-ECDHE-PSK-WITH-CHACHA20-POLY1305-SHA256", "TLS-PSK-WITH-AES-128-GCM-SHA256",
    "TLS-PSK-WITH-AES-256-GCM-SHA384", "TLS-PSK-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-PSK-WITH-AES-128-CCM", NULL};

/* OpenSSL spellings that do not follow mechanically from the IANA names. */
static const char *const openssl_names[][2] = {
    {"ECDHE-ECDSA-AES128-GCM-SHA256", "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"},
    {"ECDHE-ECDSA-AES256-GCM-SHA384", "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384"},
    {"ECDHE-ECDSA-CHACHA20-POLY1305", "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256"},
    {"ECDHE-RSA-AES128-GCM-SHA256", "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256"},
    {"ECDHE-RSA-AES256-GCM-SHA384", "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384"},
    {"ECDHE-RSA-CHACHA20-POLY1305", "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256"},
    {"ECDHE-ECDSA-AES128-CCM", "TLS-ECDHE-ECDSA-WITH-AES-128-CCM"},
    {"ECDHE-ECDSA-AES128-CCM8", "TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8"},
    {"ECDHE-ECDSA-AES128-SHA256", "TLS-ECDHE-ECDSA-WITH-AES-128-CBC-SHA256"},
    {"ECDHE-RSA-AES128-SHA256", "TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256"},
    {"ECDHE-PSK-CHACHA20-POLY1305", "TLS-ECDHE-PSK-WITH-CHACHA20-POLY1305-SHA256"},
    {"ECDHE-PSK-AES128-CBC-SHA256", "TLS-ECDHE-PSK-WITH-AES-128-CBC-SHA256"},
    {"PSK-AES128-GCM-SHA256", "TLS-PSK-WITH-AES-128-GCM-SHA256"},
    {"PSK-AES256-GCM-SHA384", "TLS-PSK-WITH-AES-256-GCM-SHA384"},
    {"PSK-CHACHA20-POLY1305", "TLS-PSK-WITH-CHACHA20-POLY1305-SHA256"},
    {"PSK-AES128-CCM", "TLS-PSK-WITH-AES-128-CCM"},
    {"PSK-AES128-CCM8", "TLS-PSK-WITH-AES-128-CCM-8"},
    {"DHE-PSK-AES128-GCM-SHA256", "TLS-DHE-PSK-WITH-AES-128-GCM-SHA256"},
    {"AES128-GCM-SHA256", "TLS-RSA-WITH-AES-128-GCM-SHA256"},
    {"AES256-GCM-SHA384", "TLS-RSA-WITH-AES-256-GCM-SHA384"},
};

static void default_log(void *arg, int level, const char *event, const char *msg)
{
    static const char *const names[] = {"error", "warning", "notice", "info", "debug"};
    (void)arg;
    fprintf(stderr, "level=%s event=%s %s\n", names[level >= 0 && level <= 4 ? level : 0], event,
            msg);
}

void tls_logf(tls_server_t *srv, int level, const char *event, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    srv->log(srv->log_arg, level, event, line);
}

/* Writes the reason to err and returns a negative code. rc is an mbedTLS error code whose text
 * is appended, or -1 for a reason of our own: -1 is mbedTLS's "Generic error", which says
 * nothing. */
static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    char what[400], why[160] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc < -1) {
        mbedtls_strerror(rc, why, sizeof why);
        snprintf(err, cap, "%s: %s", what, why);
    } else {
        snprintf(err, cap, "%s", what);
    }
    return rc < 0 ? rc : -1;
}

static int cipher_id(const char *name)
{
    char tmp[96];
    size_t i, n = strlen(name);
    int id = mbedtls_ssl_get_ciphersuite_id(name);
    if (id || n >= sizeof tmp)
        return id;
    for (i = 0; i <= n; i++) /* IANA TLS_X_WITH_Y -> mbedTLS TLS-X-WITH-Y */
        tmp[i] = name[i] == '_' ? '-' : name[i];
    if ((id = mbedtls_ssl_get_ciphersuite_id(tmp)) != 0)
        return id;
    for (i = 0; i < sizeof openssl_names / sizeof openssl_names[0]; i++)
        if (strcmp(name, openssl_names[i][0]) == 0)
            return mbedtls_ssl_get_ciphersuite_id(openssl_names[i][1]);
    return 0;
}

static int load_ciphers(tls_gen_t *g, const char *list, int psk, char *err, size_t cap)
{
    size_t n = 0;
    if (!list || !*list) {
        for (const char *const *p = default_ciphers; *p; p++)
            g->ciphers[n++] = mbedtls_ssl_get_ciphersuite_id(*p);
        for (const char *const *p = default_psk_ciphers; psk && *p; p++)
            g->ciphers[n++] = mbedtls_ssl_get_ciphersuite_id(*p);
        g->ciphers[n] = 0;
        return 0;
    }
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        return fail(err, cap, -1, "out of memory");
    for (char *tok = strtok_r(copy, ":, ", &save); tok; tok = strtok_r(NULL, ":, ", &save)) {
        int id = cipher_id(tok);
        if (!id) {
            fail(err, cap, -1, "ciphers: unknown or unsupported cipher suite '%s'", tok);
            free(copy);
            return -1;
        }
        if (n < TLS_MAX_CIPHERS)
            g->ciphers[n++] = id;
    }
    free(copy);
    g->ciphers[n] = 0;
    return n ? 0 : fail(err, cap, -1, "ciphers: empty list");
}

static int curve_listed(const mbedtls_ecp_group_id *list, size_t n, mbedtls_ecp_group_id id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == id)
            return 1;
    return 0;
}

/*
 * The ECDHE groups in order of preference, fastest first. mbedTLS chooses by the server's order,
 * and its default list starts with secp521r1: every client that offers P-521 (OpenSSL and mbedTLS
 * do by default) would get it, at about twice the CPU of P-256. The other groups stay in the list
 * because it also decides which curves a client certificate's key may use.
 */
static void order_curves(tls_gen_t *g)
{
    static const mbedtls_ecp_group_id first[] = {MBEDTLS_ECP_DP_CURVE25519,
                                                 MBEDTLS_ECP_DP_SECP256R1,
                                                 MBEDTLS_ECP_DP_SECP384R1};
    const size_t nf = sizeof first / sizeof first[0];
    const mbedtls_ecp_group_id *all = mbedtls_ecp_grp_id_list(), *id;
    size_t n = 0, na = 0;
    while (all[na] != MBEDTLS_ECP_DP_NONE)
        na++;
    for (size_t i = 0; i < nf; i++) /* those of ours that this build has, in our order */
        if (curve_listed(all, na, first[i]))
            g->curves[n++] = first[i];
    for (id = all; *id != MBEDTLS_ECP_DP_NONE && n < TLS_MAX_CURVES; id++) /* then the rest */
        if (!curve_listed(first, nf, *id))
            g->curves[n++] = *id;
    g->curves[n] = MBEDTLS_ECP_DP_NONE;
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* One "identity:hexkey" line into g->psk. Returns 0, 1 for a skipped line, or -1. */
static int psk_line(tls_gen_t *g, char *line, const char *file, int lineno, char *err, size_t cap)
{
    line[strcspn(line, "\r\n")] = 0;
    if (!*line || *line == '#')
        return 1;
    char *colon = strchr(line, ':');
    const char *hex = colon ? colon + 1 : "";
    size_t hl = strlen(hex);
    if (!colon || colon == line || hl == 0 || hl % 2 || hl / 2 > MBEDTLS_PSK_MAX_LEN)
        return fail(err, cap, -1, "%s:%d: expected identity:hexkey with at most %d key bytes",
                    file, lineno, MBEDTLS_PSK_MAX_LEN);
    tls_psk_t *np = realloc(g->psk, (g->n_psk + 1) * sizeof *np);
    if (!np)
        return fail(err, cap, -1, "out of memory");
    g->psk = np;
    tls_psk_t *e = &np[g->n_psk];
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i < hl; i += 2) {
        int hi = hexval((unsigned char)hex[i]), lo = hexval((unsigned char)hex[i + 1]);
        if (hi < 0 || lo < 0) {
            mbedtls_platform_zeroize(e->key, sizeof e->key);
            return fail(err, cap, -1, "%s:%d: key is not hex", file, lineno);
        }
        e->key[e->key_len++] = (uint8_t)(hi << 4 | lo);
    }
    e->id_len = (size_t)(colon - line);
    if (!(e->id = malloc(e->id_len))) {
        mbedtls_platform_zeroize(e->key, sizeof e->key);
        return fail(err, cap, -1, "out of memory");
    }
    memcpy(e->id, line, e->id_len);
    g->n_psk++;
    return 0;
}

static int load_psk_file(tls_gen_t *g, const char *file, char *err, size_t cap)
{
    char line[1024];
    int lineno = 0, rc = 0;
    FILE *f = fopen(file, "r");
    if (!f)
        return fail(err, cap, -1, "psk_file %s: %s", file, strerror(errno));
    while (rc >= 0 && fgets(line, sizeof line, f))
        rc = psk_line(g, line, file, ++lineno, err, cap);
    mbedtls_platform_zeroize(line, sizeof line); /* it held a key */
    fclose(f);
    return rc < 0 ? rc : 0;
}

/* mbedTLS says only "Read/write of file failed"; the operator wants to know why. */
static int unreadable(const char *what, const char *file, char *err, size_t cap)
{
    if (!file || access(file, R_OK) == 0)
        return 0;
    return fail(err, cap, -1, "%s %s: %s", what, file, strerror(errno));
}

static int load_certs(tls_gen_t *g, const tls_server_config_t *cfg, char *err, size_t cap)
{
    int rc;
    if (unreadable("certfile", cfg->certfile, err, cap) ||
        unreadable("keyfile", cfg->keyfile, err, cap) ||
        unreadable("cafile", cfg->cafile, err, cap) ||
        unreadable("crlfile", cfg->crlfile, err, cap))
        return -1;
    if (!cfg->certfile != !cfg->keyfile)
        return fail(err, cap, -1, "certfile and keyfile must be set together");
    if (cfg->certfile) {
        if ((rc = mbedtls_x509_crt_parse_file(&g->cert, cfg->certfile)) != 0)
            return fail(err, cap, rc, "certfile %s", cfg->certfile);
        if ((rc = mbedtls_pk_parse_keyfile(&g->key, cfg->keyfile, NULL)) != 0)
            return fail(err, cap, rc, "keyfile %s", cfg->keyfile);
        if ((rc = mbedtls_pk_check_pair(&g->cert.pk, &g->key)) != 0)
            return fail(err, cap, rc, "keyfile %s does not match certfile %s", cfg->keyfile,
                        cfg->certfile);
    }
    /* parse_file/path return the number of certificates they skipped; any is a config error. */
    if (cfg->cafile && (rc = mbedtls_x509_crt_parse_file(&g->ca, cfg->cafile)) != 0)
        return fail(err, cap, rc, "cafile %s%s", cfg->cafile, rc > 0 ? ": unparsable entries" : "");
    if (cfg->capath && (rc = mbedtls_x509_crt_parse_path(&g->ca, cfg->capath)) < 0)
        return fail(err, cap, rc, "capath %s", cfg->capath);
    if (cfg->crlfile && (rc = mbedtls_x509_crl_parse_file(&g->crl, cfg->crlfile)) != 0)
        return fail(err, cap, rc, "crlfile %s", cfg->crlfile);
    if (cfg->require_certificate && !cfg->cafile && !cfg->capath)
        return fail(err, cap, -1, "require_certificate needs cafile or capath");
    if (cfg->use_identity_as_username && !cfg->require_certificate)
        return fail(err, cap, -1, "use_identity_as_username needs require_certificate true");
    return 0;
}

static int setup_conf(tls_gen_t *g, mbedtls_ssl_config *c, const tls_server_config_t *cfg,
                      int with_alpn)
{
    int rc = mbedtls_ssl_config_defaults(c, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc)
        return rc;
    mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &g->srv->drbg);
    /* Debian builds TLS 1.0/1.1 in and makes TLS 1.0 the default minimum. */
    mbedtls_ssl_conf_min_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(c, g->ciphers);
    mbedtls_ssl_conf_curves(c, g->curves);
    if (cfg->certfile && (rc = mbedtls_ssl_conf_own_cert(c, &g->cert, &g->key)) != 0)
        return rc;
    if (cfg->cafile || cfg->capath)
        mbedtls_ssl_conf_ca_chain(c, &g->ca, cfg->crlfile ? &g->crl : NULL);
    mbedtls_ssl_conf_authmode(c, cfg->require_certificate ? MBEDTLS_SSL_VERIFY_REQUIRED
                                                          : MBEDTLS_SSL_VERIFY_NONE);
    if (g->n_psk || g->psk_lookup)
        mbedtls_ssl_conf_psk_cb(c, tls_psk_cb, g);
    mbedtls_ssl_conf_extended_master_secret(c, MBEDTLS_SSL_EXTENDED_MS_ENABLED);
    mbedtls_ssl_conf_export_keys_ext_cb(c, tls_export_keys_cb, NULL);
    mbedtls_ssl_conf_session_tickets_cb(c, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
                                        &g->ticket);
    if (with_alpn && (rc = mbedtls_ssl_conf_alpn_protocols(c, g->alpn)) != 0)
        return rc;
    return 0;
}

static void gen_free(tls_gen_t *g)
{
    if (g->conf_ready) {
        mbedtls_ssl_config_free(&g->conf[0]);
        mbedtls_ssl_config_free(&g->conf[1]);
    }
    mbedtls_ssl_ticket_free(&g->ticket);
    mbedtls_x509_crt_free(&g->cert);
    mbedtls_x509_crt_free(&g->ca);
    mbedtls_x509_crl_free(&g->crl);
    mbedtls_pk_free(&g->key);
    for (size_t i = 0; i < g->n_psk; i++)
        free(g->psk[i].id);
    if (g->psk)
        mbedtls_platform_zeroize(g->psk, g->n_psk * sizeof *g->psk);
    free(g->psk);
    free(g);
}

static tls_gen_t *gen_load(tls_server_t *srv, const tls_server_config_t *cfg, char *err,
                           size_t cap)
{
    tls_gen_t *g = calloc(1, sizeof *g);
    int rc;
    if (!g) {
        fail(err, cap, -1, "out of memory");
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->srv = srv;
    mbedtls_x509_crt_init(&g->cert);
    mbedtls_x509_crt_init(&g->ca);
    mbedtls_x509_crl_init(&g->crl);
    mbedtls_pk_init(&g->key);
    mbedtls_ssl_ticket_init(&g->ticket);
    mbedtls_ssl_config_init(&g->conf[0]);
    mbedtls_ssl_config_init(&g->conf[1]);
    g->conf_ready = 1;
    g->alpn[0] = "mqtt";
    g->psk_lookup = cfg->psk_lookup;
    g->psk_lookup_arg = cfg->psk_lookup_arg;
    g->use_identity_as_username = cfg->use_identity_as_username;
    g->timeout_ms = 1000ull * (cfg->tls_handshake_timeout ? cfg->tls_handshake_timeout
                                                         : DEFAULT_TIMEOUT_S);
    int psk = cfg->psk_file || cfg->psk_hint || cfg->psk_lookup;
    if (cfg->tls_version && strcmp(cfg->tls_version, "tlsv1.2") != 0) {
        fail(err, cap, -1, "tls_version %s: only tlsv1.2 is supported (older versions are "
                           "refused; mbedTLS 2.28 has no TLS 1.3)", cfg->tls_version);
        goto bad;
    }
    if (load_certs(g, cfg, err, cap) < 0 || (cfg->psk_file && load_psk_file(g, cfg->psk_file,
                                                                             err, cap) < 0))
        goto bad;
    if (!cfg->certfile && !psk) {
        fail(err, cap, -1, "neither certfile/keyfile nor PSK (psk_hint, psk_file) configured");
        goto bad;
    }
    if (load_ciphers(g, cfg->ciphers, psk, err, cap) < 0)
        goto bad;
    order_curves(g);
    if ((rc = mbedtls_ssl_ticket_setup(&g->ticket, mbedtls_ctr_drbg_random, &srv->drbg,
                                       MBEDTLS_CIPHER_AES_256_GCM, TICKET_LIFETIME_S)) != 0 ||
        (rc = setup_conf(g, &g->conf[0], cfg, 1)) != 0 ||
        (rc = setup_conf(g, &g->conf[1], cfg, 0)) != 0) {
        fail(err, cap, rc, "TLS configuration");
        goto bad;
    }
    atomic_fetch_add(&srv->refs, 1);
    return g;
bad:
    gen_free(g);
    return NULL;
}

/* max_handshakes 0: no limit. */
static unsigned hs_cap(const tls_server_config_t *cfg)
{
    return cfg->max_handshakes ? cfg->max_handshakes : UINT_MAX;
}

static void server_put(tls_server_t *srv)
{
    if (atomic_fetch_sub(&srv->refs, 1) != 1)
        return;
    mbedtls_ctr_drbg_free(&srv->drbg);
    mbedtls_entropy_free(&srv->entropy);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

tls_gen_t *tls_gen_get(tls_server_t *srv)
{
    pthread_mutex_lock(&srv->lock);
    tls_gen_t *g = srv->cur;
    if (g)
        atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&srv->lock);
    return g;
}

void tls_gen_put(tls_gen_t *g)
{
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    tls_server_t *srv = g->srv;
    gen_free(g);
    server_put(srv);
}

int tls_server_new(tls_server_t **out, const tls_server_config_t *cfg, char *err, size_t cap)
{
    static const char pers[] = "acemq-tls";
    tls_server_t *srv = calloc(1, sizeof *srv);
    int rc;
    *out = NULL;
    if (!srv)
        return fail(err, cap, -1, "out of memory");
    atomic_init(&srv->refs, 1);
    pthread_mutex_init(&srv->lock, NULL);
    srv->log = default_log;
    mbedtls_entropy_init(&srv->entropy);
    mbedtls_ctr_drbg_init(&srv->drbg);
    rc = mbedtls_ctr_drbg_seed(&srv->drbg, mbedtls_entropy_func, &srv->entropy,
                               (const unsigned char *)pers, sizeof pers - 1);
    if (rc) {
        server_put(srv);
        return fail(err, cap, rc, "seeding the random generator");
    }
    if (!(srv->cur = gen_load(srv, cfg, err, cap))) {
        server_put(srv);
        return -1;
    }
    atomic_init(&srv->active_hs, 0);
    atomic_init(&srv->max_hs, hs_cap(cfg));
    *out = srv;
    return 0;
}

void tls_server_set_log(tls_server_t *srv, tls_log_fn log, void *arg)
{
    srv->log = log ? log : default_log;
    srv->log_arg = log ? arg : NULL;
}

int tls_server_reload(tls_server_t *srv, const tls_server_config_t *cfg, char *err, size_t cap)
{
    tls_gen_t *g = gen_load(srv, cfg, err, cap), *old;
    if (!g) {
        tls_logf(srv, TLS_LOG_ERR, "tls_reload_failed", "reason=\"%s\" action=\"kept the "
                                   "previous TLS configuration\"", err);
        return -1;
    }
    pthread_mutex_lock(&srv->lock);
    old = srv->cur;
    srv->cur = g;
    pthread_mutex_unlock(&srv->lock);
    atomic_store(&srv->max_hs, hs_cap(cfg));
    tls_gen_put(old);
    tls_logf(srv, TLS_LOG_NOTICE, "tls_reloaded", "result=ok");
    return 0;
}

void tls_server_free(tls_server_t *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->lock);
    tls_gen_t *g = srv->cur;
    srv->cur = NULL;
    pthread_mutex_unlock(&srv->lock);
    tls_gen_put(g);
    server_put(srv);
}

unsigned tls_server_handshakes(const tls_server_t *srv)
{
    return atomic_load(&((tls_server_t *)srv)->active_hs);
}
