/*
 * ace/introspect_http.c: the HTTP/1.1 side of the introspection client, free of sockets so that it
 * can be tested and fuzzed: URL parsing, the request bytes, and an incremental response reader on
 * llhttp. The reader keeps only what the client needs (status, Content-Type, a bounded body); llhttp
 * may split any header name or value across calls, so both are accumulated until complete.
 */
#include "ace/introspect_int.h"

#include <ctype.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef ACEMQ_VERSION
#define ACEMQ_VERSION "0"
#endif

/* ---- URL ---- */

static int parse_port(const char *p, size_t n, char out[6])
{
    unsigned long v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    snprintf(out, 6, "%lu", v);
    return 0;
}

/* host[:port] or [v6][:port] in s[0..n). */
static int parse_authority(const char *s, size_t n, ace_url_t *u)
{
    const char *h = s, *colon = NULL;
    size_t hn;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close == s + 1)
            return -1;
        h = s + 1;
        hn = (size_t)(close - h);
        if (close + 1 < s + n) {
            if (close[1] != ':')
                return -1;
            colon = close + 1;
        }
    } else {
        colon = memchr(s, ':', n);
        hn = colon ? (size_t)(colon - s) : n;
    }
    if (hn == 0 || hn >= sizeof(u->host) || memchr(s, '@', n))
        return -1;
    for (size_t i = 0; i < hn; i++)
        if ((unsigned char)h[i] <= ' ' || h[i] == '/' || h[i] == '%')
            return -1;
    memcpy(u->host, h, hn);
    u->host[hn] = '\0';
    if (colon) {
        if (parse_port(colon + 1, (size_t)(s + n - colon - 1), u->port))
            return -1;
    } else {
        strcpy(u->port, u->tls ? "443" : "80");
    }
    snprintf(u->authority, sizeof(u->authority), "%s%s%s%s%s", s[0] == '[' ? "[" : "", u->host,
             s[0] == '[' ? "]" : "", colon ? ":" : "", colon ? u->port : "");
    return 0;
}

int ace_url_parse(const char *url, ace_url_t *u)
{
    memset(u, 0, sizeof(*u));
    if (!url)
        return -1;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->tls = 1;
        url += 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        url += 7;
    } else {
        return -1;
    }
    size_t an = strcspn(url, "/?#");
    if (parse_authority(url, an, u))
        return -1;
    const char *path = url + an;
    if (strchr(path, '#'))
        return -1;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return -1; /* would break the request line */
    int n = snprintf(u->path, sizeof(u->path), "%s%s", path[0] == '/' ? "" : "/", path);
    return n > 0 && (size_t)n < sizeof(u->path) ? 0 : -1;
}

/* ---- request ---- */

/* One connection per request (Connection: close), so the end of the answer is never ambiguous. */
#define REQ_HEAD                                                                                   \
    "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n"                                 \
    "Content-Type: application/x-www-form-urlencoded\r\n"                                          \
    "Accept: application/json, application/ace+json\r\n"                                           \
    "User-Agent: acemq/%s\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n"

/* application/x-www-form-urlencoded: unreserved bytes as they are, everything else %XX. Returns
 * the length written (out may be NULL to measure). */
static size_t form_encode(const uint8_t *in, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = in[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            if (out)
                out[n] = (char)c;
            n++;
        } else {
            if (out) {
                out[n] = '%';
                out[n + 1] = hex[c >> 4];
                out[n + 2] = hex[c & 15];
            }
            n += 3;
        }
    }
    return n;
}

int ace_introspect_basic(const char *id, const char *secret, char **out)
{
    size_t il = strlen(id), sl = strlen(secret);
    size_t raw_len = form_encode((const uint8_t *)id, il, NULL) + 1 +
                     form_encode((const uint8_t *)secret, sl, NULL);
    char *raw = malloc(raw_len + 1);
    size_t cap = 4 * (raw_len / 3 + 1) + 1, olen = 0;
    char *b64 = malloc(cap);
    int rc = ACE_E_NOMEM;
    *out = NULL;
    if (raw && b64) {
        size_t n = form_encode((const uint8_t *)id, il, raw);
        raw[n++] = ':';
        n += form_encode((const uint8_t *)secret, sl, raw + n);
        rc = mbedtls_base64_encode((unsigned char *)b64, cap, &olen, (unsigned char *)raw, n)
                 ? ACE_E_NOMEM
                 : 0;
        memset(raw, 0, raw_len); /* the secret in clear */
    }
    free(raw);
    if (rc)
        free(b64);
    else
        *out = b64;
    return rc;
}

int ace_introspect_build_request(const ace_url_t *u, const char *basic, const uint8_t *tok,
                                 size_t len, char **out, size_t *out_len)
{
    static const char hint[] = "&token_type_hint=access_token";
    size_t body_len = 6 + form_encode(tok, len, NULL) + sizeof(hint) - 1;
    int head = snprintf(NULL, 0,
                        REQ_HEAD,
                        u->path, u->authority, basic, ACEMQ_VERSION, body_len);
    if (head < 0)
        return ACE_E_ARG;
    char *buf = malloc((size_t)head + body_len + 1);
    if (!buf)
        return ACE_E_NOMEM;
    snprintf(buf, (size_t)head + 1,
             REQ_HEAD,
             u->path, u->authority, basic, ACEMQ_VERSION, body_len);
    char *p = buf + head;
    memcpy(p, "token=", 6);
    p += 6;
    p += form_encode(tok, len, p);
    memcpy(p, hint, sizeof(hint)); /* with its NUL, which is not counted */
    *out = buf;
    *out_len = (size_t)head + body_len;
    return 0;
}

/* ---- response ---- */

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    ace_http_resp_t *r = p->data;
    if (r->field_len + n >= sizeof(r->field)) {
        r->field_long = 1;
        return 0;
    }
    memcpy(r->field + r->field_len, at, n);
    r->field_len += n;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    ace_http_resp_t *r = p->data;
    r->field[r->field_len] = '\0';
    r->in_ctype = !r->field_long && strcasecmp(r->field, "Content-Type") == 0;
    if (r->in_ctype)
        r->ctype_len = 0; /* a repeated header: the last one counts */
    r->field_len = 0;
    r->field_long = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    ace_http_resp_t *r = p->data;
    if (!r->in_ctype)
        return 0;
    if (r->ctype_len + n >= sizeof(r->ctype)) {
        r->err = ACE_INTROSPECT_E_RESPONSE;
        return HPE_USER;
    }
    memcpy(r->ctype + r->ctype_len, at, n);
    r->ctype_len += n;
    r->ctype[r->ctype_len] = '\0';
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    ((ace_http_resp_t *)p->data)->in_ctype = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    ace_http_resp_t *r = p->data;
    r->status = llhttp_get_status_code(p);
    /* A declared length past the bound fails before any body byte is stored. */
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > r->max_body) {
        r->err = ACE_E_TOO_LARGE;
        return HPE_USER;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    ace_http_resp_t *r = p->data;
    if (n > r->max_body - r->body_len) {
        r->err = ACE_E_TOO_LARGE;
        return HPE_USER;
    }
    if (r->body_len + n > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + n)
            cap *= 2;
        if (cap > r->max_body)
            cap = r->max_body;
        uint8_t *nb = realloc(r->body, cap);
        if (!nb) {
            r->err = ACE_E_NOMEM;
            return HPE_USER;
        }
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    ace_http_resp_t *r = p->data;
    int status = llhttp_get_status_code(p);
    if (status >= 100 && status < 200) { /* 100 Continue and friends: the real answer follows */
        r->body_len = 0;
        r->ctype_len = 0;
        r->ctype[0] = '\0';
        return 0;
    }
    r->status = status;
    r->done = 1;
    return HPE_PAUSED; /* anything after the response is not ours to read */
}

static const llhttp_settings_t settings = {
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void ace_http_resp_init(ace_http_resp_t *r, size_t max_body)
{
    memset(r, 0, sizeof(*r));
    llhttp_init(&r->p, HTTP_RESPONSE, &settings);
    r->p.data = r;
    r->max_body = max_body ? max_body : 65536;
}

void ace_http_resp_free(ace_http_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
}

static int verdict(ace_http_resp_t *r, llhttp_errno_t e)
{
    if (r->done)
        return 1;
    if (e == HPE_OK)
        return 0;
    return r->err ? r->err : ACE_INTROSPECT_E_RESPONSE;
}

int ace_http_resp_feed(ace_http_resp_t *r, const uint8_t *p, size_t n)
{
    if (r->done)
        return 1;
    if (r->err)
        return r->err;
    llhttp_errno_t e = llhttp_execute(&r->p, (const char *)p, n);
    int v = verdict(r, e);
    if (v < 0)
        r->err = v;
    return v;
}

int ace_http_resp_eof(ace_http_resp_t *r)
{
    if (r->done)
        return 1;
    if (r->err)
        return r->err;
    llhttp_errno_t e = llhttp_finish(&r->p);
    int v = verdict(r, e);
    return v == 0 ? ACE_INTROSPECT_E_RESPONSE : v; /* EOF before the end: truncated */
}

/* application/json or application/ace+json, any parameters, any case. */
static int json_type(const char *ct)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return (n == 16 && strncasecmp(ct, "application/json", n) == 0) ||
           (n == 20 && strncasecmp(ct, "application/ace+json", n) == 0);
}

int ace_http_resp_result(const ace_http_resp_t *r, const char *audience, ace_claims_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r->done)
        return ACE_INTROSPECT_E_RESPONSE;
    if (r->status != 200)
        return ACE_INTROSPECT_E_HTTP;
    if (!json_type(r->ctype))
        return ACE_INTROSPECT_E_RESPONSE;
    return ace_introspect_parse_json(r->body, r->body_len, audience, out);
}

int ace_introspect_parse_response(const uint8_t *buf, size_t len, const char *audience,
                                  ace_claims_t *out, int *http_status)
{
    ace_http_resp_t r;
    int rc;
    memset(out, 0, sizeof(*out));
    if (http_status)
        *http_status = 0;
    ace_http_resp_init(&r, 0);
    rc = ace_http_resp_feed(&r, buf, len);
    if (rc == 0)
        rc = ace_http_resp_eof(&r);
    if (http_status)
        *http_status = r.status;
    if (rc == 1)
        rc = ace_http_resp_result(&r, audience, out);
    ace_http_resp_free(&r);
    return rc;
}
