/*
 * proto/props.c: MQTT 5 properties (section 2.2.2). One table says, for every identifier, its
 * type, the packets (and the will) it may appear in, its value rule and where it lives in
 * mqtt_props_t, so the decoder, the duplicate check and the encoder cannot disagree.
 */
#include <stddef.h>

#include "codec.h"

enum { PT_NONE, PT_BYTE, PT_U16, PT_U32, PT_VARINT, PT_UTF8, PT_BIN, PT_PAIR };

/* Value rules beyond the type. */
enum {
    PR_BOOL = 1,    /* 0 or 1 */
    PR_NONZERO = 2, /* 0 is a protocol error */
    PR_TOPIC = 4,   /* a topic name: no wildcards */
};

#define K(t) (1u << (t))
#define K_ACKS (K(MQTT_PUBACK) | K(MQTT_PUBREC) | K(MQTT_PUBREL) | K(MQTT_PUBCOMP))
#define K_PUB_WILL (K(MQTT_PUBLISH) | K(PROP_KIND_WILL))

typedef struct {
    uint8_t type;
    uint8_t rule;
    uint16_t kinds;
    uint16_t off;
} prop_info_t;

#define P(id, t, r, k, field) [id] = {t, r, (uint16_t)(k), (uint16_t)offsetof(mqtt_props_t, field)}

static const prop_info_t props_table[MQTT_PROP_SHARED_SUB_AVAILABLE + 1] = {
    P(MQTT_PROP_PAYLOAD_FORMAT, PT_BYTE, PR_BOOL, K_PUB_WILL, payload_format),
    P(MQTT_PROP_MESSAGE_EXPIRY, PT_U32, 0, K_PUB_WILL, message_expiry),
    P(MQTT_PROP_CONTENT_TYPE, PT_UTF8, 0, K_PUB_WILL, content_type),
    P(MQTT_PROP_RESPONSE_TOPIC, PT_UTF8, PR_TOPIC, K_PUB_WILL, response_topic),
    P(MQTT_PROP_CORRELATION_DATA, PT_BIN, 0, K_PUB_WILL, correlation_data),
    P(MQTT_PROP_SUBSCRIPTION_ID, PT_VARINT, PR_NONZERO, K(MQTT_PUBLISH) | K(MQTT_SUBSCRIBE),
      n_sub_ids),
    P(MQTT_PROP_SESSION_EXPIRY, PT_U32, 0, K(MQTT_CONNECT) | K(MQTT_CONNACK) | K(MQTT_DISCONNECT),
      session_expiry),
    P(MQTT_PROP_ASSIGNED_CLIENT_ID, PT_UTF8, 0, K(MQTT_CONNACK), assigned_client_id),
    P(MQTT_PROP_SERVER_KEEP_ALIVE, PT_U16, 0, K(MQTT_CONNACK), server_keep_alive),
    P(MQTT_PROP_AUTH_METHOD, PT_UTF8, 0, K(MQTT_CONNECT) | K(MQTT_CONNACK) | K(MQTT_AUTH),
      auth_method),
    P(MQTT_PROP_AUTH_DATA, PT_BIN, 0, K(MQTT_CONNECT) | K(MQTT_CONNACK) | K(MQTT_AUTH), auth_data),
    P(MQTT_PROP_REQUEST_PROBLEM_INFO, PT_BYTE, PR_BOOL, K(MQTT_CONNECT), request_problem_info),
    P(MQTT_PROP_WILL_DELAY, PT_U32, 0, K(PROP_KIND_WILL), will_delay),
    P(MQTT_PROP_REQUEST_RESPONSE_INFO, PT_BYTE, PR_BOOL, K(MQTT_CONNECT), request_response_info),
    P(MQTT_PROP_RESPONSE_INFO, PT_UTF8, 0, K(MQTT_CONNACK), response_info),
    P(MQTT_PROP_SERVER_REFERENCE, PT_UTF8, 0, K(MQTT_CONNACK) | K(MQTT_DISCONNECT),
      server_reference),
    P(MQTT_PROP_REASON_STRING, PT_UTF8, 0,
      K(MQTT_CONNACK) | K_ACKS | K(MQTT_SUBACK) | K(MQTT_UNSUBACK) | K(MQTT_DISCONNECT) |
          K(MQTT_AUTH),
      reason_string),
    P(MQTT_PROP_RECEIVE_MAXIMUM, PT_U16, PR_NONZERO, K(MQTT_CONNECT) | K(MQTT_CONNACK),
      receive_maximum),
    P(MQTT_PROP_TOPIC_ALIAS_MAXIMUM, PT_U16, 0, K(MQTT_CONNECT) | K(MQTT_CONNACK),
      topic_alias_maximum),
    P(MQTT_PROP_TOPIC_ALIAS, PT_U16, PR_NONZERO, K(MQTT_PUBLISH), topic_alias),
    P(MQTT_PROP_MAXIMUM_QOS, PT_BYTE, PR_BOOL, K(MQTT_CONNACK), maximum_qos),
    P(MQTT_PROP_RETAIN_AVAILABLE, PT_BYTE, PR_BOOL, K(MQTT_CONNACK), retain_available),
    P(MQTT_PROP_USER_PROPERTY, PT_PAIR, 0, 0xFFFFu & ~K(MQTT_PINGREQ) & ~K(MQTT_PINGRESP), n_user),
    P(MQTT_PROP_MAXIMUM_PACKET_SIZE, PT_U32, PR_NONZERO, K(MQTT_CONNECT) | K(MQTT_CONNACK),
      maximum_packet_size),
    P(MQTT_PROP_WILDCARD_SUB_AVAILABLE, PT_BYTE, PR_BOOL, K(MQTT_CONNACK), wildcard_sub_available),
    P(MQTT_PROP_SUB_ID_AVAILABLE, PT_BYTE, PR_BOOL, K(MQTT_CONNACK), sub_id_available),
    P(MQTT_PROP_SHARED_SUB_AVAILABLE, PT_BYTE, PR_BOOL, K(MQTT_CONNACK), shared_sub_available),
};

#define N_PROPS (sizeof props_table / sizeof props_table[0])

static const prop_info_t *prop_info(unsigned id)
{
    if (id >= N_PROPS || props_table[id].type == PT_NONE)
        return NULL;
    return &props_table[id];
}

#define FAIL(rc, msg)                                                                              \
    do {                                                                                           \
        *err = (msg);                                                                              \
        return (rc);                                                                               \
    } while (0)

/* Reads one value of a known property into out, checking its value rule. */
static mqtt_rc_t prop_value(rd_t *r, const prop_info_t *pi, mqtt_props_t *out, const char **err)
{
    char *field = (char *)out + pi->off;
    uint8_t b;
    uint16_t h;
    uint32_t w;
    mqtt_str_t s;
    switch (pi->type) {
    case PT_BYTE:
        if (!rd_u8(r, &b))
            FAIL(MQTT_RC_MALFORMED, "truncated property value");
        if ((pi->rule & PR_BOOL) && b > 1)
            FAIL(MQTT_RC_PROTOCOL_ERROR, "property value must be 0 or 1");
        memcpy(field, &b, 1);
        return MQTT_RC_SUCCESS;
    case PT_U16:
        if (!rd_u16(r, &h))
            FAIL(MQTT_RC_MALFORMED, "truncated property value");
        if ((pi->rule & PR_NONZERO) && h == 0 && pi->off == offsetof(mqtt_props_t, topic_alias))
            FAIL(MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias must not be 0"); /* MQTT 5 3.3.2.3.4 */
        if ((pi->rule & PR_NONZERO) && h == 0)
            FAIL(MQTT_RC_PROTOCOL_ERROR, "property value must not be 0");
        memcpy(field, &h, 2);
        return MQTT_RC_SUCCESS;
    case PT_U32:
        if (!rd_u32(r, &w))
            FAIL(MQTT_RC_MALFORMED, "truncated property value");
        if ((pi->rule & PR_NONZERO) && w == 0)
            FAIL(MQTT_RC_PROTOCOL_ERROR, "property value must not be 0");
        memcpy(field, &w, 4);
        return MQTT_RC_SUCCESS;
    case PT_UTF8:
        if (!rd_bin(r, &s))
            FAIL(MQTT_RC_MALFORMED, "truncated property value");
        if (!proto_utf8_valid(s.p, s.len))
            FAIL(MQTT_RC_MALFORMED, "property string is not valid UTF-8");
        if ((pi->rule & PR_TOPIC) && !proto_topic_name_valid(s.p, s.len))
            FAIL(MQTT_RC_PROTOCOL_ERROR, "response topic is not a valid topic name");
        memcpy(field, &s, sizeof s);
        return MQTT_RC_SUCCESS;
    case PT_BIN:
        if (!rd_bin(r, &s))
            FAIL(MQTT_RC_MALFORMED, "truncated property value");
        memcpy(field, &s, sizeof s);
        return MQTT_RC_SUCCESS;
    default:
        FAIL(MQTT_RC_MALFORMED, "unknown property type");
    }
}

/* The two properties that may repeat are counted, not stored; the arrays come later. */
static mqtt_rc_t prop_repeating(rd_t *r, unsigned id, prop_span_t *span, const char **err)
{
    mqtt_str_t a, b;
    uint32_t v;
    if (id == MQTT_PROP_USER_PROPERTY) {
        if (!rd_bin(r, &a) || !rd_bin(r, &b))
            FAIL(MQTT_RC_MALFORMED, "truncated user property");
        if (!proto_utf8_valid(a.p, a.len) || !proto_utf8_valid(b.p, b.len))
            FAIL(MQTT_RC_MALFORMED, "user property is not valid UTF-8");
        span->n_user++;
        return MQTT_RC_SUCCESS;
    }
    if (!proto__rd_varint(r, &v))
        FAIL(MQTT_RC_MALFORMED, "truncated or overlong subscription identifier");
    if (v == 0)
        FAIL(MQTT_RC_PROTOCOL_ERROR, "subscription identifier must not be 0");
    span->n_sub_ids++;
    return MQTT_RC_SUCCESS;
}

mqtt_rc_t proto__props_decode(dec_t *d, rd_t *r, unsigned kind, bool multi_sub_id,
                              mqtt_props_t *out, prop_span_t *span)
{
    const char **err = d->err;
    uint32_t len, max = d->ctx->max_props;
    memset(span, 0, sizeof *span);
    if (!proto__rd_varint(r, &len))
        FAIL(MQTT_RC_MALFORMED, "truncated or overlong property length");
    if (len > rd_left(r))
        FAIL(MQTT_RC_MALFORMED, "property length exceeds the packet");
    /* decided from the declared length, before a single property is parsed */
    if (max && len > max - d->props_bytes)
        FAIL(MQTT_RC_PACKET_TOO_LARGE, "properties larger than the receiver's limit");
    d->props_bytes += len;
    rd_t pr = {r->p, r->p + len};
    span->p = r->p;
    span->len = len;
    r->p += len;
    while (pr.p < pr.end) {
        unsigned id = *pr.p++;
        const prop_info_t *pi = prop_info(id);
        if (!pi)
            FAIL(MQTT_RC_MALFORMED, "unknown property identifier");
        if (!(pi->kinds & K(kind)))
            FAIL(MQTT_RC_PROTOCOL_ERROR, "property not allowed in this packet");
        uint64_t bit = MQTT_PROP_BIT(id);
        bool repeats = id == MQTT_PROP_USER_PROPERTY ||
                       (id == MQTT_PROP_SUBSCRIPTION_ID && multi_sub_id);
        if ((out->present & bit) && !repeats)
            FAIL(MQTT_RC_PROTOCOL_ERROR, "property appears more than once");
        mqtt_rc_t rc = pi->type == PT_PAIR || pi->type == PT_VARINT
                           ? prop_repeating(&pr, id, span, err)
                           : prop_value(&pr, pi, out, err);
        if (rc != MQTT_RC_SUCCESS)
            return rc;
        out->present |= bit;
    }
    return MQTT_RC_SUCCESS;
}

void proto__props_fill(const prop_span_t *span, mqtt_user_prop_t *user, uint32_t *sub_ids)
{
    if (!span->n_user && !span->n_sub_ids)
        return;
    rd_t r = {span->p, span->p + span->len};
    uint32_t nu = 0, ns = 0;
    while (r.p < r.end) {
        const prop_info_t *pi = prop_info(*r.p++);
        mqtt_str_t s;
        uint32_t v;
        switch (pi->type) {
        case PT_BYTE:
            r.p += 1;
            break;
        case PT_U16:
            r.p += 2;
            break;
        case PT_U32:
            r.p += 4;
            break;
        case PT_VARINT:
            proto__rd_varint(&r, &v);
            sub_ids[ns++] = v;
            break;
        case PT_PAIR:
            rd_bin(&r, &user[nu].name);
            rd_bin(&r, &user[nu].value);
            nu++;
            break;
        default:
            rd_bin(&r, &s);
            break;
        }
    }
}

/* ---- Encoding --------------------------------------------------------------------------------- */

static bool prop_sent(const mqtt_props_t *p, unsigned id, unsigned kind)
{
    const prop_info_t *pi = prop_info(id);
    if (!pi || !(pi->kinds & K(kind)))
        return false;
    if (id == MQTT_PROP_USER_PROPERTY)
        return p->n_user > 0;
    if (id == MQTT_PROP_SUBSCRIPTION_ID)
        return p->n_sub_ids > 0;
    return (p->present & MQTT_PROP_BIT(id)) != 0;
}

bool proto__props_any(const mqtt_props_t *p, unsigned kind)
{
    if (!p->present && !p->n_user && !p->n_sub_ids)
        return false;
    for (unsigned id = 1; id < N_PROPS; id++)
        if (prop_sent(p, id, kind))
            return true;
    return false;
}

static void prop_write_one(wr_t *w, const mqtt_props_t *p, unsigned id)
{
    const prop_info_t *pi = &props_table[id];
    const char *field = (const char *)p + pi->off;
    uint8_t b;
    uint16_t h;
    uint32_t v;
    mqtt_str_t s;
    switch (pi->type) {
    case PT_BYTE:
        memcpy(&b, field, 1);
        wr_u8(w, (uint8_t)id);
        wr_u8(w, b);
        break;
    case PT_U16:
        memcpy(&h, field, 2);
        wr_u8(w, (uint8_t)id);
        wr_u16(w, h);
        break;
    case PT_U32:
        memcpy(&v, field, 4);
        wr_u8(w, (uint8_t)id);
        wr_u32(w, v);
        break;
    case PT_VARINT:
        for (uint32_t i = 0; i < p->n_sub_ids; i++) {
            if (p->sub_ids[i] == 0)
                w->bad = true;
            wr_u8(w, (uint8_t)id);
            proto__wr_varint(w, p->sub_ids[i]);
        }
        break;
    case PT_PAIR:
        for (uint32_t i = 0; i < p->n_user; i++) {
            wr_u8(w, (uint8_t)id);
            wr_str(w, p->user[i].name);
            wr_str(w, p->user[i].value);
        }
        break;
    default:
        memcpy(&s, field, sizeof s);
        wr_u8(w, (uint8_t)id);
        wr_str(w, s);
        break;
    }
}

static void props_body(wr_t *w, const mqtt_props_t *p, unsigned kind)
{
    if (!p->present && !p->n_user && !p->n_sub_ids)
        return;
    for (unsigned id = 1; id < N_PROPS; id++)
        if (prop_sent(p, id, kind))
            prop_write_one(w, p, id);
}

void proto__props_write(wr_t *w, const mqtt_props_t *p, unsigned kind)
{
    wr_t m = {NULL, 0, false};
    props_body(&m, p, kind);
    if (m.bad || m.n > PROTO_MAX_REMAINING) {
        w->bad = true;
        return;
    }
    proto__wr_varint(w, (uint32_t)m.n);
    props_body(w, p, kind);
}
