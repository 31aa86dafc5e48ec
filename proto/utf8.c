/*
 * proto/utf8.c: UTF-8 as MQTT restricts it, and the syntax of topic names and topic filters.
 * The router and ace/ use the same functions so that a topic accepted on the wire is never
 * judged differently later.
 */
#include "codec.h"

/* True when one of the 8 bytes of w is zero (w holds ASCII only). */
static inline bool has_zero_byte(uint64_t w)
{
    return ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL) != 0;
}

/* Length of the multi-byte sequence at s (lead byte s[0] >= 0x80), or 0 when it is invalid. */
static size_t utf8_seq(const uint8_t *s, size_t left)
{
    uint8_t c = s[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0xC2)
        return 0; /* a stray continuation byte, or an overlong 2-byte form */
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800..U+DFFF are surrogates */
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

bool proto_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* Topics are mostly ASCII: check 8 bytes at a time for high bits and NULs. */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            if (has_zero_byte(w))
                return false;
            i += 8;
        }
        if (i >= len)
            break;
        if (s[i] < 0x80) {
            if (s[i] == 0)
                return false;
            i++;
            continue;
        }
        size_t n = utf8_seq(s + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

bool proto_topic_name_valid(const uint8_t *s, size_t len)
{
    if (len == 0 || memchr(s, '+', len) || memchr(s, '#', len))
        return false;
    return proto_utf8_valid(s, len);
}

bool proto_topic_filter_valid(const uint8_t *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '+' && s[i] != '#')
            continue;
        bool starts_level = i == 0 || s[i - 1] == '/';
        bool ends_level = i + 1 == len || s[i + 1] == '/';
        if (!starts_level || !ends_level)
            return false;
        if (s[i] == '#' && i + 1 != len)
            return false;
    }
    return proto_utf8_valid(s, len);
}

int proto_shared_filter(const uint8_t *s, size_t len, mqtt_str_t *group, mqtt_str_t *filter)
{
    static const char prefix[] = "$share/";
    const size_t plen = sizeof prefix - 1;
    if (len < plen || memcmp(s, prefix, plen) != 0)
        return 0;
    const uint8_t *g = s + plen;
    const uint8_t *slash = memchr(g, '/', len - plen);
    if (!slash || slash == g)
        return -1;
    size_t glen = (size_t)(slash - g);
    if (memchr(g, '+', glen) || memchr(g, '#', glen))
        return -1;
    const uint8_t *f = slash + 1;
    size_t flen = len - plen - glen - 1;
    if (!proto_topic_filter_valid(f, flen) || !proto_utf8_valid(g, glen))
        return -1;
    if (group) {
        group->p = g;
        group->len = (uint16_t)glen;
    }
    if (filter) {
        filter->p = f;
        filter->len = (uint16_t)flen;
    }
    return 1;
}
