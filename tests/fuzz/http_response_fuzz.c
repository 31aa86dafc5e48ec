/*
 * tests/fuzz/http_response_fuzz.c: libFuzzer target for the introspection client's response
 * reader (ace/introspect.h, ace/introspect_int.h): the incremental HTTP/1.x parser on llhttp
 * (status line, headers, Content-Length / chunked / read-to-EOF bodies, the size limit) and the
 * RFC 7662 JSON claims that follow it.
 *
 * Byte 0 seeds the split points; the rest is what the AS sent. The response is parsed whole with
 * ace_introspect_parse_response() and again fed in random pieces through ace_http_resp_feed(),
 * the way the socket delivers it; both must agree on the outcome and on the claims. The bytes are
 * also handed to ace_introspect_parse_json() as a bare body.
 */
#include <stdlib.h>
#include <string.h>

#include "ace/introspect.h"
#include "ace/introspect_int.h"

static int same_claims(const ace_claims_t *a, const ace_claims_t *b)
{
    return strcmp(a->iss, b->iss) == 0 && strcmp(a->sub, b->sub) == 0 && a->has_exp == b->has_exp &&
           a->exp == b->exp && a->scope_kind == b->scope_kind && a->scope_len == b->scope_len &&
           (a->scope_len == 0 || memcmp(a->scope, b->scope, a->scope_len) == 0) &&
           a->has_cnf == b->has_cnf && a->has_exi == b->has_exi && a->exi == b->exi;
}

/* The same response, fed in pieces. Returns what ace_introspect_parse_response would. */
static int split_parse(const uint8_t *d, size_t n, unsigned seed, ace_claims_t *out)
{
    ace_http_resp_t r;
    int rc = 0;
    size_t pos = 0;
    memset(out, 0, sizeof *out);
    ace_http_resp_init(&r, 0);
    while (pos < n && rc == 0) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 8) % 64;
        if (chunk > n - pos)
            chunk = n - pos;
        uint8_t *piece = malloc(chunk); /* exact size: ASan sees any over-read */
        memcpy(piece, d + pos, chunk);
        rc = ace_http_resp_feed(&r, piece, chunk);
        free(piece);
        pos += chunk;
    }
    if (rc == 0)
        rc = ace_http_resp_eof(&r);
    if (rc == 1)
        rc = ace_http_resp_result(&r, "broker", out);
    ace_http_resp_free(&r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned seed = data[0];
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, d, n);

    ace_claims_t whole, split;
    int status = -1;
    int rc = ace_introspect_parse_response(copy, n, "broker", &whole, &status);
    if (status < 0 || rc > 0)
        abort();
    (void)ace_introspect_strerror(rc);
    int rc2 = split_parse(copy, n, seed, &split);
    if (rc != rc2 || (rc == 0 && !same_claims(&whole, &split)))
        abort(); /* the outcome must not depend on how the bytes arrived */
    ace_claims_free(&whole);
    ace_claims_free(&split);

    ace_claims_t j;
    if (ace_introspect_parse_json(copy, n, NULL, &j) == 0)
        ace_claims_free(&j);
    free(copy);
    return 0;
}
