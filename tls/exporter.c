/*
 * tls/exporter.c: what the layers above may learn about an open TLS session: the RFC 5705
 * exporter (mbedTLS 2.28 has no mbedtls_ssl_export_keying_material, so it is computed from the
 * master secret and randoms captured during the handshake), and the session facts (resumed,
 * EMS, cipher suite, client identity) that the ACE layer needs to judge proof of possession.
 */
#include <stdlib.h>
#include <string.h>

#include <mbedtls/oid.h>

#include "tls/tls_int.h"

int tls_exporter(const stream_t *s, const char *label, const uint8_t *context,
                 size_t context_len, int use_context, uint8_t *out, size_t out_len)
{
    uint8_t small[64 + 2 + 64], *seed = small;
    size_t n = 64;
    if (!stream_is_tls(s) || !label || !out || !out_len || (context_len && !context) ||
        (use_context && context_len > 0xffff))
        return UV_EINVAL;
    const tls_conn_t *c = (const tls_conn_t *)s;
    if (c->state != CS_OPEN || !c->keys)
        return UV_ENOTCONN;
    if (use_context) {
        n += 2 + context_len;
        if (n > sizeof small && !(seed = malloc(n)))
            return UV_ENOMEM;
        seed[64] = (uint8_t)(context_len >> 8);
        seed[65] = (uint8_t)context_len;
        if (context_len)
            memcpy(seed + 66, context, context_len);
    }
    memcpy(seed, c->randoms, 64);
    /* RFC 5705 section 4: PRF(master_secret, label, client_random + server_random
     * [+ context_length + context])[length], with the PRF of the negotiated suite. */
    int rc = mbedtls_ssl_tls_prf(c->prf, c->master, sizeof c->master, label, seed, n, out,
                                 out_len);
    if (seed != small)
        free(seed);
    return rc ? UV_EINVAL : 0;
}

static char *dup_name(const uint8_t *p, size_t len)
{
    if (!len || memchr(p, 0, len)) /* an embedded NUL could impersonate a shorter name */
        return NULL;
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, p, len);
        s[len] = 0;
    }
    return s;
}

/* Subject CN; without one the first dNSName, rfc822Name or URI in subjectAltName. */
char *tls_cert_identity(const mbedtls_x509_crt *crt)
{
    for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next)
        if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
            return dup_name(n->val.p, n->val.len);
    for (const mbedtls_x509_sequence *q = &crt->subject_alt_names; q; q = q->next) {
        int tag = q->buf.tag;
        if (!q->buf.p || !(tag & MBEDTLS_ASN1_CONTEXT_SPECIFIC) ||
            (tag & MBEDTLS_ASN1_CONSTRUCTED))
            continue;
        tag &= 0x1f;
        if (tag == 1 || tag == 2 || tag == 6)
            return dup_name(q->buf.p, q->buf.len);
    }
    return NULL;
}

int tls_session_info(const stream_t *s, tls_info_t *out)
{
    memset(out, 0, sizeof *out);
    if (!stream_is_tls(s))
        return UV_EINVAL;
    const tls_conn_t *c = (const tls_conn_t *)s;
    if (c->state != CS_OPEN)
        return UV_ENOTCONN;
    out->resumed = c->resumed;
    out->ems = c->ems;
    out->version = mbedtls_ssl_get_version(&c->ssl);
    out->ciphersuite = mbedtls_ssl_get_ciphersuite(&c->ssl);
    out->alpn = c->alpn;
    out->cert_identity = c->cert_id;
    out->psk_identity = c->psk_id;
    out->psk_identity_len = c->psk_id_len;
    out->use_identity_as_username = c->gen->use_identity_as_username;
    return 0;
}
