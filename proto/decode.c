/*
 * proto/decode.c: proto_decode() and the packets with no list payload (PUBLISH, the four
 * acknowledgements, PINGREQ/PINGRESP, DISCONNECT, AUTH). The fixed header, the packet direction
 * and the connection state are checked here before any packet body is read.
 */
#include <stdlib.h>

#include "codec.h"

bool proto__rc_allowed(unsigned type, uint8_t rc)
{
    static const uint8_t pub[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
    static const uint8_t rel[] = {0x00, 0x92};
    static const uint8_t suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                     0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
    static const uint8_t unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
    static const uint8_t disconnect[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89,
                                         0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
                                         0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D,
                                         0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
    static const uint8_t auth[] = {0x00, 0x18, 0x19};
    static const uint8_t connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                      0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                      0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
    const uint8_t *list;
    size_t n;
    switch (type) {
    case MQTT_PUBACK:
    case MQTT_PUBREC:
        list = pub, n = sizeof pub;
        break;
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        list = rel, n = sizeof rel;
        break;
    case MQTT_SUBACK:
        list = suback, n = sizeof suback;
        break;
    case MQTT_UNSUBACK:
        list = unsuback, n = sizeof unsuback;
        break;
    case MQTT_DISCONNECT:
        list = disconnect, n = sizeof disconnect;
        break;
    case MQTT_AUTH:
        list = auth, n = sizeof auth;
        break;
    case MQTT_CONNACK:
        list = connack, n = sizeof connack;
        break;
    default:
        return false;
    }
    return memchr(list, rc, n) != NULL;
}

mqtt_rc_t proto__dec_arrays(dec_t *d, mqtt_packet_t *pkt, mqtt_props_t *pa, const prop_span_t *sa,
                            mqtt_props_t *pb, const prop_span_t *sb, size_t list_bytes,
                            void **list)
{
    size_t nua = sa->n_user, nub = sb ? sb->n_user : 0;
    size_t nsa = sa->n_sub_ids, nsb = sb ? sb->n_sub_ids : 0;
    size_t user_bytes = (nua + nub) * sizeof(mqtt_user_prop_t);
    size_t total = user_bytes + list_bytes + (nsa + nsb) * sizeof(uint32_t);
    if (total == 0)
        return MQTT_RC_SUCCESS;
    /*
     * Every entry takes at least a few bytes of the frame, so total is bounded by a small
     * multiple of the frame length. The user arrays and the list hold pointers, so the
     * identifiers (4-byte aligned) go last and every part stays aligned.
     */
    uint8_t *blk = malloc(total);
    if (!blk)
        DEC_FAIL(d, MQTT_RC_UNSPECIFIED, "out of memory");
    mqtt_user_prop_t *ua = (mqtt_user_prop_t *)(void *)blk;
    mqtt_user_prop_t *ub = ua + nua;
    uint32_t *ida = (uint32_t *)(void *)(blk + user_bytes + list_bytes);
    uint32_t *idb = ida + nsa;
    if (list)
        *list = list_bytes ? blk + user_bytes : NULL;
    proto__props_fill(sa, ua, ida);
    pa->n_user = (uint32_t)nua;
    pa->user = nua ? ua : NULL;
    pa->n_sub_ids = (uint32_t)nsa;
    pa->sub_ids = nsa ? ida : NULL;
    if (sb) {
        proto__props_fill(sb, ub, idb);
        pb->n_user = (uint32_t)nub;
        pb->user = nub ? ub : NULL;
        pb->n_sub_ids = (uint32_t)nsb;
        pb->sub_ids = nsb ? idb : NULL;
    }
    pkt->owned = blk;
    return MQTT_RC_SUCCESS;
}

/* Direction and connection state: which packets this side may receive now. */
static mqtt_rc_t check_state(dec_t *d, unsigned type)
{
    const proto_ctx_t *c = d->ctx;
    bool v5 = d->version >= MQTT_V5;
    if (type == MQTT_AUTH && !v5)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "AUTH exists only in MQTT 5");
    if (c->role == PROTO_ROLE_SERVER) {
        if (type == MQTT_CONNACK || type == MQTT_SUBACK || type == MQTT_UNSUBACK ||
            type == MQTT_PINGRESP)
            DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "a client may not send this packet type");
        if (type == MQTT_CONNECT && c->connected)
            DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "a second CONNECT on one connection");
        if (type != MQTT_CONNECT && !c->connected)
            DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "the first packet must be CONNECT");
        return MQTT_RC_SUCCESS;
    }
    if (type == MQTT_CONNECT || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE ||
        type == MQTT_PINGREQ)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "a server may not send this packet type");
    if (type == MQTT_DISCONNECT && !v5)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "a server may not send DISCONNECT before MQTT 5");
    if (type == MQTT_CONNACK && c->connected)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "a second CONNACK on one connection");
    return MQTT_RC_SUCCESS;
}

/* The low nibble of the fixed header is fixed for every type but PUBLISH. */
static mqtt_rc_t check_flags(dec_t *d, unsigned type)
{
    uint8_t f = d->flags;
    if (type == MQTT_PUBLISH) {
        if ((f & 0x06) == 0x06)
            DEC_FAIL(d, MQTT_RC_MALFORMED, "PUBLISH with QoS 3");
        if ((f & 0x08) && !(f & 0x06))
            DEC_FAIL(d, d->version >= MQTT_V5 ? MQTT_RC_PROTOCOL_ERROR : MQTT_RC_MALFORMED,
                     "PUBLISH with QoS 0 and the DUP flag set");
        return MQTT_RC_SUCCESS;
    }
    bool two = type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE;
    /* MQTT 3.1 clients may set DUP on retried packets; that version fixes only the QoS bits. */
    if (d->version == MQTT_V31 && type != MQTT_CONNECT) {
        if (two && (f & 0x06) != 0x02)
            DEC_FAIL(d, MQTT_RC_MALFORMED, "reserved fixed header flags are not 0010");
        return MQTT_RC_SUCCESS;
    }
    if (f != (two ? 0x02 : 0x00))
        DEC_FAIL(d, MQTT_RC_MALFORMED,
                 two ? "reserved fixed header flags are not 0010"
                     : "reserved fixed header flags are not 0000");
    return MQTT_RC_SUCCESS;
}

static mqtt_rc_t dec_publish(dec_t *d, rd_t *r, mqtt_packet_t *pkt)
{
    mqtt_publish_t *p = &pkt->u.publish;
    bool v5 = d->version >= MQTT_V5;
    p->qos = (d->flags >> 1) & 3;
    p->dup = (d->flags & 0x08) != 0;
    p->retain = (d->flags & 0x01) != 0;
    if (!rd_bin(r, &p->topic))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated topic name");
    if (!proto_utf8_valid(p->topic.p, p->topic.len))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "topic name is not valid UTF-8");
    if (memchr(p->topic.p, '+', p->topic.len) || memchr(p->topic.p, '#', p->topic.len))
        DEC_FAIL(d, MQTT_RC_TOPIC_NAME_INVALID, "topic name contains a wildcard");
    if (p->qos) {
        if (!rd_u16(r, &p->id))
            DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated packet identifier");
        if (p->id == 0)
            DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "packet identifier 0 with QoS 1 or 2");
    }
    prop_span_t span = {0};
    if (v5) {
        bool client = d->ctx->role == PROTO_ROLE_CLIENT;
        mqtt_rc_t rc = proto__props_decode(d, r, MQTT_PUBLISH, client, &p->props, &span);
        if (rc != MQTT_RC_SUCCESS)
            return rc;
        if (!client && span.n_sub_ids)
            DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR,
                     "a client may not send a subscription identifier in PUBLISH");
        if (p->topic.len == 0 && !(p->props.present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS)))
            DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "empty topic name without a topic alias");
    } else if (p->topic.len == 0) {
        DEC_FAIL(d, MQTT_RC_TOPIC_NAME_INVALID, "empty topic name");
    }
    p->payload = r->p;
    p->payload_len = (uint32_t)rd_left(r);
    r->p = r->end;
    return proto__dec_arrays(d, pkt, &p->props, &span, NULL, NULL, 0, NULL);
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
static mqtt_rc_t dec_ack(dec_t *d, rd_t *r, mqtt_packet_t *pkt, unsigned type)
{
    mqtt_ack_t *a = &pkt->u.ack;
    if (!rd_u16(r, &a->id))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated packet identifier");
    if (a->id == 0)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "packet identifier 0");
    if (d->version < MQTT_V5 || rd_left(r) == 0)
        return MQTT_RC_SUCCESS;
    rd_u8(r, &a->rc);
    if (!proto__rc_allowed(type, a->rc))
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "reason code not allowed in this packet");
    if (rd_left(r) == 0)
        return MQTT_RC_SUCCESS;
    prop_span_t span;
    mqtt_rc_t rc = proto__props_decode(d, r, type, false, &a->props, &span);
    if (rc != MQTT_RC_SUCCESS)
        return rc;
    if (rd_left(r))
        return MQTT_RC_SUCCESS; /* trailing bytes are refused by the caller */
    return proto__dec_arrays(d, pkt, &a->props, &span, NULL, NULL, 0, NULL);
}

/* DISCONNECT and AUTH: a reason code and properties, both optional. */
static mqtt_rc_t dec_reason(dec_t *d, rd_t *r, mqtt_packet_t *pkt, unsigned type)
{
    mqtt_reason_t *m = &pkt->u.reason;
    if (d->version < MQTT_V5 || rd_left(r) == 0)
        return MQTT_RC_SUCCESS;
    rd_u8(r, &m->rc);
    if (!proto__rc_allowed(type, m->rc))
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "reason code not allowed in this packet");
    if (rd_left(r) == 0)
        return MQTT_RC_SUCCESS;
    prop_span_t span;
    mqtt_rc_t rc = proto__props_decode(d, r, type, false, &m->props, &span);
    if (rc != MQTT_RC_SUCCESS)
        return rc;
    if ((m->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA)) &&
        !(m->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)))
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "authentication data without a method");
    if (rd_left(r))
        return MQTT_RC_SUCCESS;
    return proto__dec_arrays(d, pkt, &m->props, &span, NULL, NULL, 0, NULL);
}

static mqtt_rc_t dec_body(dec_t *d, rd_t *r, mqtt_packet_t *pkt, unsigned type)
{
    switch (type) {
    case MQTT_CONNECT:
        return proto__dec_connect(d, r, pkt);
    case MQTT_CONNACK:
        return proto__dec_connack(d, r, pkt);
    case MQTT_PUBLISH:
        return dec_publish(d, r, pkt);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return dec_ack(d, r, pkt, type);
    case MQTT_SUBSCRIBE:
        return proto__dec_subscribe(d, r, pkt);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return proto__dec_suback(d, r, pkt);
    case MQTT_UNSUBSCRIBE:
        return proto__dec_unsubscribe(d, r, pkt);
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        return dec_reason(d, r, pkt, type);
    default: /* PINGREQ, PINGRESP: nothing but the fixed header */
        return MQTT_RC_SUCCESS;
    }
}

mqtt_rc_t proto_decode(const proto_ctx_t *ctx, const uint8_t *frame, size_t len,
                       mqtt_packet_t *pkt, const char **err_desc)
{
    const char *unused;
    dec_t d = {ctx, ctx->version ? ctx->version : MQTT_V311, 0, err_desc ? err_desc : &unused, 0};
    size_t hdr;
    uint32_t rem;
    mqtt_rc_t rc;
    memset(pkt, 0, sizeof *pkt);
    *d.err = NULL;
    if (proto_frame(frame, len, 0, &hdr, &rem) != 0 || hdr + rem != len)
        DEC_FAIL(&d, MQTT_RC_MALFORMED, "the remaining length does not match the packet");
    unsigned type = frame[0] >> 4;
    d.flags = frame[0] & 0x0F;
    pkt->type = (mqtt_type_t)type;
    pkt->flags = d.flags;
    if (type == 0)
        DEC_FAIL(&d, MQTT_RC_MALFORMED, "reserved packet type 0");
    if ((rc = check_state(&d, type)) != MQTT_RC_SUCCESS)
        return rc;
    if ((rc = check_flags(&d, type)) != MQTT_RC_SUCCESS)
        return rc;
    rd_t r = {frame + hdr, frame + len};
    if ((rc = dec_body(&d, &r, pkt, type)) != MQTT_RC_SUCCESS)
        return rc;
    if (rd_left(&r)) {
        proto_packet_free(pkt);
        DEC_FAIL(&d, MQTT_RC_MALFORMED, "unexpected bytes after the end of the packet");
    }
    return MQTT_RC_SUCCESS;
}

void proto_packet_free(mqtt_packet_t *pkt)
{
    if (!pkt)
        return;
    free(pkt->owned);
    pkt->owned = NULL;
}
