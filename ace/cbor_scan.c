/*
 * ace/cbor_scan.c: a bounded, allocation-free walk over CBOR item heads (see cbor_scan.h for why), the
 * leading-tag peeler, and a small head writer used to build COSE structures byte for byte.
 */
#include "ace/cbor_scan.h"

#include <stdlib.h>
#include <string.h>

#include "ace/token.h"

/* Reads one head at buf[*pos]; returns 0 and sets major, ai, val, or ACE_E_MALFORMED. */
static int read_head(const uint8_t *buf, size_t len, size_t *pos, unsigned *major, unsigned *ai,
                     uint64_t *val)
{
    if (*pos >= len)
        return ACE_E_MALFORMED;
    uint8_t ib = buf[(*pos)++];
    *major = ib >> 5;
    *ai = ib & 31u;
    if (*ai < 24) {
        *val = *ai;
        return 0;
    }
    if (*ai > 27)
        return ACE_E_MALFORMED; /* 28..30 reserved, 31 indefinite or break: never accepted */
    size_t n = (size_t)1 << (*ai - 24);
    if (len - *pos < n)
        return ACE_E_MALFORMED;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | buf[*pos + i];
    *pos += n;
    *val = v;
    return 0;
}

int ace_cbor_scan(const uint8_t *buf, size_t len, const ace_cbor_limits_t *lim)
{
    unsigned max_depth = (lim && lim->max_depth) ? lim->max_depth : ACE_CBOR_DEFAULT_DEPTH;
    size_t max_size = (lim && lim->max_size) ? lim->max_size : ACE_CBOR_DEFAULT_SIZE;
    if (max_depth > ACE_CBOR_MAX_DEPTH)
        max_depth = ACE_CBOR_MAX_DEPTH;
    if (!buf || len == 0)
        return ACE_E_MALFORMED;
    if (len > max_size)
        return ACE_E_TOO_LARGE;

    /* left[d] = items still expected at nesting level d; level 0 is the single top-level item. */
    uint64_t left[ACE_CBOR_MAX_DEPTH + 1];
    unsigned depth = 0;
    size_t pos = 0;
    left[0] = 1;
    for (;;) {
        while (left[depth] == 0) {
            if (depth == 0)
                return pos == len ? 0 : ACE_E_MALFORMED; /* trailing bytes */
            depth--;
        }
        left[depth]--;
        unsigned major, ai;
        uint64_t val;
        if (read_head(buf, len, &pos, &major, &ai, &val) != 0)
            return ACE_E_MALFORMED;
        uint64_t rest = len - pos, push = 0;
        switch (major) {
        case 0: case 1:
            break;
        case 2: case 3:
            if (val > rest)
                return ACE_E_MALFORMED;
            pos += (size_t)val;
            break;
        case 4: /* every element takes at least one byte */
            if (val > rest)
                return ACE_E_MALFORMED;
            push = val;
            break;
        case 5: /* every pair takes at least two */
            if (val > rest / 2)
                return ACE_E_MALFORMED;
            push = val * 2;
            break;
        case 6: /* libcbor 0.8 cannot decode 6..20; only leading tags are peeled by hand */
            if (val >= 6 && val <= 20)
                return ACE_E_MALFORMED;
            push = 1;
            break;
        default: /* 7: simple values and floats; 1-byte simple values below 32 are invalid */
            if (ai == 24 && val < 32)
                return ACE_E_MALFORMED;
            break;
        }
        if (push || major == 6) {
            if (depth + 1 > max_depth)
                return ACE_E_TOO_LARGE;
            left[++depth] = push;
        }
    }
}

int ace_cbor_peel_tags(const uint8_t *buf, size_t len, uint64_t *tags, size_t max, size_t *ntags,
                       size_t *off)
{
    size_t pos = 0, n = 0;
    while (pos < len && (buf[pos] >> 5) == 6) {
        unsigned major, ai;
        uint64_t val;
        if (n == max || read_head(buf, len, &pos, &major, &ai, &val) != 0)
            return ACE_E_MALFORMED;
        tags[n++] = val;
    }
    if (pos >= len)
        return ACE_E_MALFORMED;
    *ntags = n;
    *off = pos;
    return 0;
}

cbor_item_t *ace_cbor_load(const uint8_t *buf, size_t len, const ace_cbor_limits_t *lim, int *err)
{
    int rc = ace_cbor_scan(buf, len, lim);
    if (rc != 0) {
        *err = rc;
        return NULL;
    }
    struct cbor_load_result res;
    cbor_item_t *it = cbor_load(buf, len, &res);
    if (!it || res.error.code != CBOR_ERR_NONE || res.read != len) {
        if (it)
            cbor_decref(&it);
        *err = (res.error.code == CBOR_ERR_MEMERROR) ? ACE_E_NOMEM : ACE_E_MALFORMED;
        return NULL;
    }
    *err = 0;
    return it;
}

static void cbuf_reserve(ace_cbuf_t *b, size_t n)
{
    if (b->err || b->cap - b->len >= n)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->err = 1;
            return;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->err = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

void ace_cbuf_bytes(ace_cbuf_t *b, const void *p, size_t n)
{
    cbuf_reserve(b, n);
    if (b->err || n == 0)
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void ace_cbuf_head(ace_cbuf_t *b, unsigned major, uint64_t val)
{
    uint8_t h[9];
    size_t n;
    uint8_t mt = (uint8_t)(major << 5);
    if (val < 24) {
        h[0] = (uint8_t)(mt | val);
        n = 1;
    } else {
        unsigned ai = val <= 0xff ? 24 : val <= 0xffff ? 25 : val <= 0xffffffffu ? 26 : 27;
        n = (size_t)1 << (ai - 24);
        h[0] = (uint8_t)(mt | ai);
        for (size_t i = 0; i < n; i++)
            h[1 + i] = (uint8_t)(val >> (8 * (n - 1 - i)));
        n += 1;
    }
    ace_cbuf_bytes(b, h, n);
}

void ace_cbuf_bstr(ace_cbuf_t *b, const void *p, size_t n)
{
    ace_cbuf_head(b, 2, n);
    ace_cbuf_bytes(b, p, n);
}

void ace_cbuf_tstr(ace_cbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    ace_cbuf_head(b, 3, n);
    ace_cbuf_bytes(b, s, n);
}

void ace_cbuf_int(ace_cbuf_t *b, int64_t v)
{
    if (v >= 0)
        ace_cbuf_head(b, 0, (uint64_t)v);
    else
        ace_cbuf_head(b, 1, (uint64_t)(-(v + 1)));
}

void ace_cbuf_free(ace_cbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int ace_cbor_get_int(const cbor_item_t *it, int64_t *v)
{
    if (!it)
        return -1;
    if (cbor_isa_uint(it)) {
        uint64_t u = cbor_get_int(it);
        if (u > INT64_MAX)
            return -1;
        *v = (int64_t)u;
        return 0;
    }
    if (cbor_isa_negint(it)) {
        uint64_t u = cbor_get_int(it);
        if (u > INT64_MAX)
            return -1;
        *v = -1 - (int64_t)u;
        return 0;
    }
    return -1;
}

const uint8_t *ace_cbor_bstr(const cbor_item_t *it, size_t *len)
{
    if (!it || !cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
        return NULL;
    *len = cbor_bytestring_length(it);
    static const uint8_t empty[1];
    return *len ? cbor_bytestring_handle(it) : empty;
}

const char *ace_cbor_tstr(const cbor_item_t *it, size_t *len)
{
    if (!it || !cbor_isa_string(it) || !cbor_string_is_definite(it))
        return NULL;
    *len = cbor_string_length(it);
    return *len ? (const char *)cbor_string_handle(it) : "";
}

cbor_item_t *ace_cbor_map_get(const cbor_item_t *map, int64_t label, int *dup)
{
    cbor_item_t *found = NULL;
    if (!map || !cbor_isa_map(map))
        return NULL;
    struct cbor_pair *pairs = cbor_map_handle(map);
    size_t n = cbor_map_size(map);
    for (size_t i = 0; i < n; i++) {
        int64_t k;
        if (ace_cbor_get_int(pairs[i].key, &k) == 0 && k == label) {
            if (found && dup)
                *dup = 1;
            found = pairs[i].value;
        }
    }
    return found;
}
