/*
 * ace/scope.h: AIF-MQTT scopes (RFC 9431 §4, RFC 9237) and the MQTT topic-filter rules the broker's
 * authorization decisions rest on.
 *
 * A scope is a list of (topic filter, permissions) pairs. It arrives in these encodings, all accepted:
 *   - AIF JSON text          [["topic1",["pub","sub"]],["topic2/#",["pub"]]]
 *   - AIF JSON in base64url  how a JWT carries it (RFC 9431 §4): "W1sidG9waWMxIi..."
 *   - AIF CBOR               the same model as a CBOR array
 *   - bstr-wrapped AIF CBOR  a CBOR byte string holding the encoded array (what acemq's tools write)
 *   - legacy text            "publish_topic1 subscribe_topic2/#" (drafts -00..-05)
 * AIF is an allow-list: unknown permission names and unknown legacy words grant nothing and are
 * skipped; anything structurally wrong (wrong types, an invalid topic filter, too many entries) rejects
 * the whole scope. Untrusted CBOR goes through ace_cbor_scan() before libcbor sees it.
 *
 * Errors are 0 or a negative ACE_E_* code (ace/token.h): ACE_E_MALFORMED, ACE_E_TOO_LARGE (a limit
 * below), ACE_E_NOMEM, ACE_E_ARG. Any of them means "scope not understood": reject the token.
 * Predicates (ace_filter_subset, ace_scope_allows_*) return 1 or 0 and never fail open: an invalid
 * filter or topic gives 0.
 */
#ifndef ACEMQ_ACE_SCOPE_H
#define ACEMQ_ACE_SCOPE_H

#include <stddef.h>
#include <stdint.h>

enum { ACE_PERM_PUB = 1, ACE_PERM_SUB = 2 };

/* Limits, checked before any allocation sized by the input. */
#define ACE_SCOPE_MAX_BYTES 65535u  /* an encoded scope, any form */
#define ACE_SCOPE_MAX_ENTRIES 256u  /* (filter, permissions) pairs */
#define ACE_SCOPE_MAX_PERMS 8u      /* elements of one permissions array */
#define ACE_TOPIC_MAX_LEN 65535u    /* an MQTT UTF-8 string */

/* One entry: `filter` is owned, NUL-terminated, `len` bytes long and a valid filter
 * (ace_filter_valid: the parsers check it, and code that fills a scope itself must too, because the
 * per-message checks do not repeat it); `perms` is ACE_PERM_* bits. */
typedef struct {
    char *filter;
    size_t len;
    unsigned perms;
} ace_scope_entry_t;

/* A parsed scope. Entries with the same filter are merged, so every filter appears once.
 * n == 0 is a valid scope that grants nothing. Release with ace_scope_free(). */
typedef struct {
    ace_scope_entry_t *e;
    size_t n;
} ace_scope_t;

/* AIF JSON: an array of [filter, [permission...]] (permissions "pub" / "sub"). */
int ace_scope_parse_json(const char *json, size_t len, ace_scope_t *out);

/* CBOR: an AIF array, a bstr wrapping one, or a tstr (handed to ace_scope_parse_text). Trailing bytes
 * and indefinite-length strings are rejected. */
int ace_scope_parse_cbor(const uint8_t *cbor, size_t len, ace_scope_t *out);

/* Text: AIF JSON if the first non-blank character is '['; base64url AIF JSON if it is one word
 * starting with 'W'; else the legacy space-separated form "publish_<filter> subscribe_<filter>",
 * where other words grant nothing. An empty string is the empty scope. */
int ace_scope_parse_text(const char *s, size_t len, ace_scope_t *out);

/* The scope claim as ace_token_verify() hands it over: kind is ACE_SCOPE_* from ace/token.h
 * (NONE gives the empty scope; BSTR and CBOR_ARRAY go to the CBOR parser, TSTR to the text parser,
 * JSON_ARRAY to the JSON parser). */
int ace_scope_parse_claim(int kind, const uint8_t *p, size_t len, ace_scope_t *out);

/* Frees the entries and zeroes *s. Safe on a zeroed or already freed scope. */
void ace_scope_free(ace_scope_t *s);

/* Encoders for the token tool. *out is malloc'd (free() it); the CBOR form is the bare array (wrap it
 * in a bstr for a CWT scope claim), the JSON form is compact text without a NUL counted in *len. */
int ace_scope_to_cbor(const ace_scope_t *s, uint8_t **out, size_t *len);
int ace_scope_to_json(const ace_scope_t *s, char **out, size_t *len);

/* 1 if `f` is a valid MQTT topic filter (MQTT v5 §4.7): non-empty, well-formed UTF-8 without U+0000,
 * '+' and '#' only as whole levels, '#' only as the last level. */
int ace_filter_valid(const char *f, size_t len);

/* 1 if `topic` is a valid topic name (a valid filter without wildcards). */
int ace_topic_valid(const char *topic, size_t len);

/* 1 if the filter matches the topic name, including the rule that a first-level '+' or '#' does not
 * match a topic starting with '$'. Invalid input gives 0. */
int ace_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);

/* 1 if every topic matched by `inner` is also matched by `outer` (the SUBSCRIBE check of RFC 9431
 * §4: "equal or a subset"). Both must be valid filters. Handles '+', '#' and '$'-topics exactly. */
int ace_filter_subset(const char *inner, size_t ilen, const char *outer, size_t olen);

/* 1 if some entry holding `perm` matches the concrete topic name (PUBLISH, Will, forwarding). */
int ace_scope_allows_topic(const ace_scope_t *s, unsigned perm, const char *topic, size_t len);

/* 1 if a single entry holding `perm` covers every topic the filter can match (SUBSCRIBE). The caller
 * has already removed a `$share/<group>/` prefix. */
int ace_scope_allows_filter(const ace_scope_t *s, unsigned perm, const char *filter, size_t len);

#endif
