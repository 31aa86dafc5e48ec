/*
 * proto/codec.h: the pieces the proto/ source files share (byte readers and writers, the
 * remaining-length integer, the property codec). Internal to proto/; callers use mqtt.h only.
 * Internal functions carry the proto__ prefix because they are visible across files.
 */
#ifndef ACEMQ_PROTO_CODEC_H
#define ACEMQ_PROTO_CODEC_H

#include <string.h>

#include "mqtt.h"

/* A cursor over received bytes. Every read checks the bound and fails instead of overrunning. */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} rd_t;

static inline size_t rd_left(const rd_t *r)
{
    return (size_t)(r->end - r->p);
}

static inline bool rd_u8(rd_t *r, uint8_t *v)
{
    if (r->p >= r->end)
        return false;
    *v = *r->p++;
    return true;
}

static inline bool rd_u16(rd_t *r, uint16_t *v)
{
    if (rd_left(r) < 2)
        return false;
    *v = (uint16_t)((r->p[0] << 8) | r->p[1]);
    r->p += 2;
    return true;
}

static inline bool rd_u32(rd_t *r, uint32_t *v)
{
    if (rd_left(r) < 4)
        return false;
    *v = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) |
         (uint32_t)r->p[3];
    r->p += 4;
    return true;
}

/* Two-byte length followed by that many bytes (UTF-8 strings and binary data alike). */
static inline bool rd_bin(rd_t *r, mqtt_str_t *s)
{
    uint16_t n;
    if (!rd_u16(r, &n) || rd_left(r) < n)
        return false;
    s->p = r->p;
    s->len = n;
    r->p += n;
    return true;
}

/* Variable byte integer of 1 to 4 bytes; non-minimal forms are accepted, a 5th byte is not. */
bool proto__rd_varint(rd_t *r, uint32_t *v);

/*
 * An output cursor. With p == NULL it only counts, so one function both measures and writes a
 * packet. `bad` records a value that cannot be encoded.
 */
typedef struct {
    uint8_t *p;
    size_t n;
    bool bad;
} wr_t;

static inline void wr_u8(wr_t *w, uint8_t v)
{
    if (w->p)
        w->p[w->n] = v;
    w->n++;
}

static inline void wr_u16(wr_t *w, uint16_t v)
{
    wr_u8(w, (uint8_t)(v >> 8));
    wr_u8(w, (uint8_t)v);
}

static inline void wr_u32(wr_t *w, uint32_t v)
{
    wr_u16(w, (uint16_t)(v >> 16));
    wr_u16(w, (uint16_t)v);
}

static inline void wr_mem(wr_t *w, const void *src, size_t n)
{
    if (w->p && n)
        memcpy(w->p + w->n, src, n);
    w->n += n;
}

static inline void wr_str(wr_t *w, mqtt_str_t s)
{
    wr_u16(w, s.len);
    wr_mem(w, s.p, s.len);
}

#define PROTO_MAX_REMAINING PROTO_MAX_REMAINING_LENGTH

size_t proto__varint_size(uint32_t v);
void proto__wr_varint(wr_t *w, uint32_t v);

/* ---- Properties ------------------------------------------------------------------------------- */

/* Property sets are identified by packet type; 0 (a reserved packet type) stands for a will. */
enum { PROP_KIND_WILL = 0 };

/*
 * Where a decoded property set lies in the frame, and how many repeating entries it holds, so
 * the arrays can be allocated once for the whole packet and filled in a second, check-free walk.
 */
typedef struct {
    const uint8_t *p;
    size_t len;
    uint32_t n_user;
    uint32_t n_sub_ids;
} prop_span_t;

/* Fills the user property and subscription identifier arrays of an already checked span. */
void proto__props_fill(const prop_span_t *span, mqtt_user_prop_t *user, uint32_t *sub_ids);

/* True when the set holds at least one property that may be sent in this kind of packet. */
bool proto__props_any(const mqtt_props_t *p, unsigned kind);

/* Writes the property length and the properties allowed in this kind of packet. */
void proto__props_write(wr_t *w, const mqtt_props_t *p, unsigned kind);

/* ---- Decoding --------------------------------------------------------------------------------- */

typedef struct {
    const proto_ctx_t *ctx;
    uint8_t version; /* the level the packet is read with */
    uint8_t flags;   /* low nibble of the fixed header */
    const char **err;
    uint32_t props_bytes; /* property bytes declared so far in this packet (ctx->max_props) */
} dec_t;

/*
 * Reads a property length and the properties after it, checking the length against what is left
 * of ctx->max_props for the packet, then each identifier, type, value, duplicate and the kinds of
 * packet it may appear in. Scalars are stored in out; arrays are counted in span. multi_sub_id
 * allows a repeated Subscription Identifier.
 */
mqtt_rc_t proto__props_decode(dec_t *d, rd_t *r, unsigned kind, bool multi_sub_id,
                              mqtt_props_t *out, prop_span_t *span);

#define DEC_FAIL(d, rc, msg)                                                                       \
    do {                                                                                           \
        *(d)->err = (msg);                                                                         \
        return (rc);                                                                               \
    } while (0)

/*
 * Allocates the arrays of one packet in one block: the user properties and subscription
 * identifiers of up to two property sets (b may be NULL) and list_bytes for a topic list, which
 * is returned in *list. Nothing is allocated when everything is empty.
 */
mqtt_rc_t proto__dec_arrays(dec_t *d, mqtt_packet_t *pkt, mqtt_props_t *pa, const prop_span_t *sa,
                            mqtt_props_t *pb, const prop_span_t *sb, size_t list_bytes,
                            void **list);

/* Whether a MQTT 5 reason code may be sent in this packet type (MQTT 5.0 chapter 3). */
bool proto__rc_allowed(unsigned type, uint8_t rc);

mqtt_rc_t proto__dec_connect(dec_t *d, rd_t *r, mqtt_packet_t *pkt);
mqtt_rc_t proto__dec_connack(dec_t *d, rd_t *r, mqtt_packet_t *pkt);
mqtt_rc_t proto__dec_subscribe(dec_t *d, rd_t *r, mqtt_packet_t *pkt);
mqtt_rc_t proto__dec_unsubscribe(dec_t *d, rd_t *r, mqtt_packet_t *pkt);
mqtt_rc_t proto__dec_suback(dec_t *d, rd_t *r, mqtt_packet_t *pkt);

#endif
