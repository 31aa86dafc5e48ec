/*
 * tls/handshake.c: the handshake, run off the event loop.
 *
 * A full mbedTLS 2.28 handshake costs ~4.7 ms of CPU and cannot be sliced (no
 * MBEDTLS_SSL_ASYNC_PRIVATE, no ECP_RESTARTABLE in Debian's build), so each
 * mbedtls_ssl_handshake() call runs in libuv's thread pool (uv_queue_work). While it runs the
 * step owns the connection's ssl context and its `in`/`out` buffers; the loop thread only
 * appends new ciphertext to `pend`, and hs_after() (on the loop thread) merges it, flushes what
 * the step wrote and either queues the next step, fails or opens the stream.
 *
 * Concurrent handshakes are capped per server (max_handshakes). A slot is taken when the first
 * ClientHello record is complete and held until the handshake ends; a connection over the cap
 * polls for a slot every 10 ms (slots may free up on another worker loop, so there is no
 * single loop to wake) until its handshake deadline.
 */
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl_internal.h>

#include "tls/tls_int.h"

#define SLOT_POLL_MS 10

_Thread_local tls_conn_t *tls_current;

static void queue_step(tls_conn_t *c);

/* ---- callbacks from inside mbedtls_ssl_handshake() (pool thread) ---- */

/* Captures what RFC 5705 needs; ssl->handshake (randoms, EMS, resume) is freed once the
 * handshake ends. The return value is ignored by 2.28. */
int tls_export_keys_cb(void *p, const unsigned char *ms, const unsigned char *kb, size_t maclen,
                       size_t keylen, size_t ivlen, const unsigned char client_random[32],
                       const unsigned char server_random[32], mbedtls_tls_prf_types prf)
{
    tls_conn_t *c = tls_current;
    (void)p, (void)kb, (void)maclen, (void)keylen, (void)ivlen;
    if (!c)
        return 0;
    memcpy(c->master, ms, sizeof c->master);
    memcpy(c->randoms, client_random, 32);
    memcpy(c->randoms + 32, server_random, 32);
    c->prf = prf;
    c->keys = 1;
    c->ems = c->ssl.handshake && c->ssl.handshake->extended_ms;
    c->resumed = c->ssl.handshake && c->ssl.handshake->resume;
    return 0;
}

/* PSK: psk_file first, then the ACE hook. The identity is kept for tls_session_info(). */
int tls_psk_cb(void *p, mbedtls_ssl_context *ssl, const unsigned char *id, size_t len)
{
    tls_gen_t *g = p;
    tls_conn_t *c = tls_current;
    uint8_t key[MBEDTLS_PSK_MAX_LEN];
    size_t klen = 0;
    int found = 0, rc = -1;
    for (size_t i = 0; i < g->n_psk && !found; i++) {
        if (g->psk[i].id_len == len && memcmp(g->psk[i].id, id, len) == 0) {
            klen = g->psk[i].key_len;
            memcpy(key, g->psk[i].key, klen);
            found = 1;
        }
    }
    if (!found && g->psk_lookup) {
        klen = sizeof key;
        found = g->psk_lookup(g->psk_lookup_arg, id, len, key, &klen) == 0 && klen > 0 &&
                klen <= sizeof key;
    }
    if (found && c && (c->psk_id = malloc(len ? len : 1)) != NULL) {
        memcpy(c->psk_id, id, len);
        c->psk_id_len = len;
    }
    if (found)
        rc = mbedtls_ssl_set_hs_psk(ssl, key, klen);
    mbedtls_platform_zeroize(key, sizeof key);
    return rc;
}

static void hs_work(uv_work_t *w)
{
    tls_conn_t *c = w->data;
    tls_current = c;
    c->hs_rc = mbedtls_ssl_handshake(&c->ssl);
    tls_current = NULL;
}

/* ---- slots ---- */

static int take_slot(tls_conn_t *c)
{
    tls_server_t *srv = c->srv;
    unsigned cur = atomic_load(&srv->active_hs);
    do {
        if (cur >= atomic_load(&srv->max_hs))
            return 0;
    } while (!atomic_compare_exchange_weak(&srv->active_hs, &cur, cur + 1));
    c->has_slot = 1;
    return 1;
}

void tls_hs_release(tls_conn_t *c)
{
    if (c->has_slot) {
        c->has_slot = 0;
        atomic_fetch_sub(&c->srv->active_hs, 1);
    }
}

/* ---- ALPN: peek into the ClientHello before mbedtls_ssl_setup() ---- */

static size_t be(const uint8_t *p, int n)
{
    size_t v = 0;
    while (n--)
        v = v << 8 | *p++;
    return v;
}

/* Scans an ALPN extension body: 0 if it names "mqtt", 1 if not. */
static int alpn_lacks_mqtt(const uint8_t *p, size_t n)
{
    size_t i = 2;
    while (n >= 2 && i < n) {
        size_t l = p[i];
        if (i + 1 + l > n)
            break;
        if (l == 4 && memcmp(p + i + 1, "mqtt", 4) == 0)
            return 0;
        i += 1 + l;
    }
    return 1;
}

/*
 * Which config to use: 0 (ALPN "mqtt") or 1 (no ALPN), or -1 until the first record is here.
 * mbedTLS refuses a handshake whose ALPN list misses all of ours, and the brief is to accept
 * such clients without selecting a protocol. Anything unparsable gets 0; mbedTLS judges it.
 */
static int pick_conf(const uint8_t *p, size_t n)
{
    if (n < 5)
        return -1;
    size_t rl = be(p + 3, 2), hl, i;
    if (p[0] != 22 || rl < 4 || rl > MBEDTLS_SSL_IN_CONTENT_LEN)
        return 0;
    if (n < 5 + rl)
        return -1;
    p += 5;
    if (p[0] != 1 || (hl = be(p + 1, 3)) > rl - 4)
        return 0; /* not a ClientHello, or one split over records */
    p += 4;
    i = 2 + 32; /* version, random */
    if (i + 1 > hl || (i += 1 + p[i]) + 2 > hl || (i += 2 + be(p + i, 2)) + 1 > hl ||
        (i += 1 + p[i]) + 2 > hl)
        return 0; /* session id, cipher suites, compression; then extensions length */
    size_t end = i + 2 + be(p + i, 2);
    if (end > hl)
        return 0;
    for (i += 2; i + 4 <= end;) {
        size_t type = be(p + i, 2), len = be(p + i + 2, 2);
        if (i + 4 + len > end)
            return 0;
        if (type == 16)
            return alpn_lacks_mqtt(p + i + 4, len);
        i += 4 + len;
    }
    return 0;
}

static int setup_ssl(tls_conn_t *c)
{
    int k = pick_conf(c->in.p + c->in.off, c->in.len - c->in.off);
    if (k < 0 && c->in.len - c->in.off < 5 + MBEDTLS_SSL_IN_CONTENT_LEN)
        return 0; /* wait for the whole first record */
    mbedtls_ssl_init(&c->ssl);
    c->ssl_ready = 1;
    if (mbedtls_ssl_setup(&c->ssl, &c->gen->conf[k > 0]) != 0) {
        tls_fail(c, UV_ENOMEM, "out of memory");
        return -1;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, tls_bio_send, tls_bio_recv, NULL);
    return 1;
}

/* New ciphertext during the handshake (loop thread). */
void tls_hs_data(tls_conn_t *c)
{
    if (c->running || c->state != CS_HANDSHAKE)
        return; /* hs_after() picks up `pend` */
    if (!c->ssl_ready && setup_ssl(c) <= 0)
        return;
    if (!c->has_slot && !take_slot(c)) {
        if (!c->waiting_slot) {
            c->waiting_slot = 1;
            tls_logf(c->srv, TLS_LOG_INFO, "tls_handshake_queued", "peer=%s reason=\"%u "
                     "handshakes in progress (max_handshakes)\"", stream_peer(&c->s),
                     atomic_load(&c->srv->max_hs));
            tls_hs_arm_timer(c);
        }
        return;
    }
    c->waiting_slot = 0;
    queue_step(c);
}

/* ---- failure reasons ---- */

static const char *verify_reason(uint32_t vf)
{
    if (vf & MBEDTLS_X509_BADCERT_REVOKED)
        return "client certificate revoked";
    if (vf & MBEDTLS_X509_BADCERT_EXPIRED)
        return "client certificate expired";
    if (vf & MBEDTLS_X509_BADCERT_FUTURE)
        return "client certificate not yet valid";
    if (vf & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
        return "unknown CA";
    if (vf & (MBEDTLS_X509_BADCRL_EXPIRED | MBEDTLS_X509_BADCRL_FUTURE))
        return "CRL out of date";
    if (vf & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE))
        return "client certificate not for client authentication";
    return "client certificate rejected";
}

static int uses_psk(const tls_conn_t *c)
{
    const mbedtls_ssl_ciphersuite_t *cs =
        c->ssl.session_negotiate
            ? mbedtls_ssl_ciphersuite_from_id(c->ssl.session_negotiate->ciphersuite) : NULL;
    return cs && (cs->key_exchange == MBEDTLS_KEY_EXCHANGE_PSK ||
                  cs->key_exchange == MBEDTLS_KEY_EXCHANGE_DHE_PSK ||
                  cs->key_exchange == MBEDTLS_KEY_EXCHANGE_ECDHE_PSK ||
                  cs->key_exchange == MBEDTLS_KEY_EXCHANGE_RSA_PSK);
}

static const char *fail_reason(const tls_conn_t *c, int rc)
{
    uint32_t vf = mbedtls_ssl_get_verify_result(&c->ssl);
    if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && vf != (uint32_t)-1 && vf)
        return verify_reason(vf);
    switch (rc) {
    case MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN: return "no shared cipher";
    /* e.g. an ECDSA certificate on a curve missing from the client's supported groups */
    case MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE: return "no shared cipher suite usable with the "
                                                       "certificate";
    case MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION: return "version too old";
    case MBEDTLS_ERR_SSL_UNKNOWN_IDENTITY: return "bad PSK (unknown identity)";
    case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE: return "no client certificate";
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE: return "peer sent an alert";
    case MBEDTLS_ERR_SSL_INVALID_RECORD: return "not TLS";
    case MBEDTLS_ERR_SSL_INVALID_MAC:
    case MBEDTLS_ERR_SSL_BAD_HS_FINISHED:
        return uses_psk(c) ? "bad PSK" : "handshake integrity check failed";
    case MBEDTLS_ERR_SSL_BAD_HS_CLIENT_HELLO: return "malformed or unacceptable ClientHello";
    case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE: return "malformed client certificate";
    default: return "handshake failed";
    }
}

static void handshake_failed(tls_conn_t *c, int rc)
{
    char msg[160];
    mbedtls_strerror(rc, msg, sizeof msg);
    for (char *q = msg; *q; q++)
        if (*q == '"')
            *q = '\'';
    tls_logf(c->srv, TLS_LOG_WARNING, "tls_handshake_failed", "peer=%s reason=\"%s\" "
             "error=\"%s\"", stream_peer(&c->s), fail_reason(c, rc), msg);
    tls_fail(c, UV_EPROTO, "TLS handshake failed");
}

static void handshake_done(tls_conn_t *c)
{
    tls_hs_release(c);
    uv_timer_stop(&c->timer);
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&c->ssl);
    if (peer)
        c->cert_id = tls_cert_identity(peer);
    c->alpn = mbedtls_ssl_get_alpn_protocol(&c->ssl);
    if (!c->keys) { /* cannot happen with EXPORT_KEYS on; the exporter would be wrong */
        tls_fail(c, UV_EPROTO, "TLS keys not captured");
        return;
    }
    c->state = CS_OPEN;
    tls_logf(c->srv, TLS_LOG_INFO, "tls_handshake_done", "peer=%s cipher=%s resumed=%d "
             "ems=%d alpn=%s", stream_peer(&c->s), mbedtls_ssl_get_ciphersuite(&c->ssl), c->resumed,
             c->ems, c->alpn ? c->alpn : "none");
    c->s.ev->on_open(&c->s);
    tls_drive_read(c); /* application data may have come with the client's Finished */
}

/* ---- the step, back on the loop thread ---- */

static void hs_after(uv_work_t *w, int status)
{
    tls_conn_t *c = w->data;
    c->running = 0;
    if (c->pend.len > c->pend.off) {
        int rc = tls_buf_append(&c->in, c->pend.p + c->pend.off, c->pend.len - c->pend.off);
        tls_buf_free(&c->pend);
        if (rc < 0)
            tls_fail(c, UV_ENOMEM, "out of memory");
    }
    if (c->state == CS_CLOSING) { /* closed while the step ran: finish what begin_close left */
        if (status >= 0 && c->hs_rc == 0) /* the handshake itself completed: say so */
            tls_logf(c->srv, TLS_LOG_INFO, "tls_handshake_done", "peer=%s cipher=%s resumed=%d "
                     "ems=%d closed=1", stream_peer(&c->s), mbedtls_ssl_get_ciphersuite(&c->ssl),
                     c->resumed, c->ems);
        tls_flush(c);
        tls_close_rest(c);
        tls_finish_close(c);
        return;
    }
    tls_flush(c);
    if (status < 0) {
        tls_fail(c, status, "TLS handshake cancelled");
    } else if (c->hs_rc == 0) {
        handshake_done(c);
    } else if (c->hs_rc == MBEDTLS_ERR_SSL_WANT_READ || c->hs_rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
        if (c->in.len > c->in.off) /* more arrived while the step ran */
            queue_step(c);
    } else {
        handshake_failed(c, c->hs_rc);
    }
}

static void queue_step(tls_conn_t *c)
{
    c->running = 1;
    int rc = uv_queue_work(c->s.loop, &c->work, hs_work, hs_after);
    if (rc < 0) {
        c->running = 0;
        tls_fail(c, rc, "could not queue the TLS handshake");
    }
}

/* ---- deadline and slot polling ---- */

static void on_timer(uv_timer_t *t)
{
    tls_conn_t *c = t->data;
    if (c->state != CS_HANDSHAKE && c->state != CS_NEW)
        return;
    if (uv_now(c->s.loop) >= c->deadline) {
        tls_logf(c->srv, TLS_LOG_WARNING, "tls_handshake_timeout", "peer=%s reason=\"%s\" "
                 "timeout_ms=%llu", stream_peer(&c->s), c->waiting_slot ? "no handshake slot free "
                 "(max_handshakes)" : "handshake not completed in time",
                 (unsigned long long)c->gen->timeout_ms);
        tls_fail(c, UV_ETIMEDOUT, "TLS handshake timed out");
        return;
    }
    if (c->waiting_slot && !c->running)
        tls_hs_data(c);
    tls_hs_arm_timer(c);
}

void tls_hs_arm_timer(tls_conn_t *c)
{
    uint64_t now = uv_now(c->s.loop), left = c->deadline > now ? c->deadline - now : 0;
    if (c->waiting_slot && left > SLOT_POLL_MS)
        left = SLOT_POLL_MS;
    uv_timer_start(&c->timer, on_timer, left, 0);
}
