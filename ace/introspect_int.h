/*
 * ace/introspect_int.h: what the introspection client's files share: the URL, the request bytes and
 * an incremental HTTP/1.x response reader on llhttp. Not for use outside ace/introspect*.c and the
 * unit tests (which feed the reader byte by byte).
 */
#ifndef ACEMQ_ACE_INTROSPECT_INT_H
#define ACEMQ_ACE_INTROSPECT_INT_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

#include "ace/introspect.h"

typedef struct {
    int tls;             /* https */
    char host[256];      /* without brackets, for DNS and for certificate name checks */
    char port[6];
    char authority[272]; /* the Host header: host[:port], IPv6 in brackets */
    char path[1024];     /* path and query, at least "/" */
} ace_url_t;

/* 0, or -1 if url is not http(s)://host[:port][/path] (no userinfo, no fragment). */
int ace_url_parse(const char *url, ace_url_t *u);

/* The whole POST (head and body) in a malloc'd buffer. `basic` is the base64 credentials. */
int ace_introspect_build_request(const ace_url_t *u, const char *basic, const uint8_t *tok,
                                 size_t len, char **out, size_t *out_len);

/* HTTP Basic credentials per RFC 6749 §2.3.1 (form-encode id and secret, then base64). */
int ace_introspect_basic(const char *id, const char *secret, char **out);

typedef struct {
    llhttp_t p;
    int status;          /* of the final response */
    int done;            /* a final (non-1xx) response is complete */
    int err;             /* a callback's verdict (negative code) */
    char field[16];      /* the current header name, while it may still be Content-Type */
    size_t field_len;
    int field_long;      /* longer than any name we care about */
    int in_ctype;
    char ctype[128];
    size_t ctype_len;
    uint8_t *body;
    size_t body_len, body_cap, max_body;
} ace_http_resp_t;

void ace_http_resp_init(ace_http_resp_t *r, size_t max_body);
void ace_http_resp_free(ace_http_resp_t *r);
/* Feeds bytes as they arrive (any split). 1 once the response is complete (later bytes are
 * ignored), 0 for more, or a negative code (ACE_INTROSPECT_E_RESPONSE, ACE_E_TOO_LARGE). */
int ace_http_resp_feed(ace_http_resp_t *r, const uint8_t *p, size_t n);
/* The peer closed: 1 if that completes the response (body up to EOF), else a negative code. */
int ace_http_resp_eof(ace_http_resp_t *r);
/* For a complete response: status 200, JSON content type, then the body's claims. */
int ace_http_resp_result(const ace_http_resp_t *r, const char *audience, ace_claims_t *out);

#endif
