/*
 * ace/cbor_scan.h: the guard in front of libcbor, plus a tiny CBOR head writer.
 *
 * libcbor 0.8 allocates whatever an array or map head declares (a 6-byte input can cost gigabytes)
 * and cannot decode tags 6..20 (platform-notes B1/B2). So untrusted CBOR is first walked here, head
 * by head, with no allocation: any declared count larger than the bytes left, nesting deeper than the
 * limit, indefinite lengths, reserved encodings, tags 6..20 and trailing bytes are rejected. Only an
 * input that passes goes to cbor_load(), and then its allocations are bounded by its own size.
 * Leading tags (CWT 61, COSE 16/17/18) are peeled by hand first, with ace_cbor_peel_tags().
 */
#ifndef ACEMQ_ACE_CBOR_SCAN_H
#define ACEMQ_ACE_CBOR_SCAN_H

#include <cbor.h>
#include <stddef.h>
#include <stdint.h>

#define ACE_CBOR_DEFAULT_DEPTH 16u
#define ACE_CBOR_MAX_DEPTH 64u        /* hard cap on the configurable depth */
#define ACE_CBOR_DEFAULT_SIZE 65536u

typedef struct {
    unsigned max_depth; /* containers and tags nested; 0 = default */
    size_t max_size;    /* whole input; 0 = default */
} ace_cbor_limits_t;

/* 0 if `buf` is exactly one well-formed, definite-length CBOR item within the limits (lim may be
 * NULL); ACE_E_TOO_LARGE over a limit, ACE_E_MALFORMED otherwise. */
int ace_cbor_scan(const uint8_t *buf, size_t len, const ace_cbor_limits_t *lim);

/* Reads up to `max` leading tag numbers into tags[] and sets *off to the first byte after them.
 * ACE_E_MALFORMED if there are more than `max` or the input ends. */
int ace_cbor_peel_tags(const uint8_t *buf, size_t len, uint64_t *tags, size_t max, size_t *ntags,
                       size_t *off);

/* ace_cbor_scan() then cbor_load(); NULL with *err set on failure. The caller decrefs the item. */
cbor_item_t *ace_cbor_load(const uint8_t *buf, size_t len, const ace_cbor_limits_t *lim, int *err);

/* A growable output buffer for hand-built CBOR (COSE structures). A failed allocation sets err and
 * later writes do nothing; check err once at the end. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int err;
} ace_cbuf_t;

void ace_cbuf_head(ace_cbuf_t *b, unsigned major, uint64_t val);
void ace_cbuf_bytes(ace_cbuf_t *b, const void *p, size_t n);  /* raw, no head */
void ace_cbuf_bstr(ace_cbuf_t *b, const void *p, size_t n);   /* head + bytes */
void ace_cbuf_tstr(ace_cbuf_t *b, const char *s);
void ace_cbuf_int(ace_cbuf_t *b, int64_t v);
void ace_cbuf_free(ace_cbuf_t *b);

/* Helpers over loaded items, shared by the COSE and claims code. */
int ace_cbor_get_int(const cbor_item_t *it, int64_t *v);             /* uint or negint */
const uint8_t *ace_cbor_bstr(const cbor_item_t *it, size_t *len);    /* definite bstr or NULL */
const char *ace_cbor_tstr(const cbor_item_t *it, size_t *len);       /* definite tstr or NULL */
/* The value under integer label `label` in a map, or NULL; *dup set when it occurs twice. */
cbor_item_t *ace_cbor_map_get(const cbor_item_t *map, int64_t label, int *dup);

#endif
