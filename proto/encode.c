/*
 * proto/encode.c: packets to bytes. One body writer per packet type runs twice, once counting
 * (to learn the remaining length) and once writing, so size and bytes always agree. Below
 * MQTT 5 properties and MQTT 5-only fields are left out.
 */
#include "codec.h"

static uint8_t first_byte(const mqtt_packet_t *pkt)
{
    uint8_t flags = 0;
    if (pkt->type == MQTT_PUBLISH) {
        const mqtt_publish_t *p = &pkt->u.publish;
        flags = (uint8_t)(((p->qos & 3) << 1) | (p->retain ? 1 : 0) | (p->dup ? 8 : 0));
    } else if (pkt->type == MQTT_PUBREL || pkt->type == MQTT_SUBSCRIBE ||
               pkt->type == MQTT_UNSUBSCRIBE) {
        flags = 0x02;
    }
    return (uint8_t)((pkt->type << 4) | flags);
}

static void enc_connect(wr_t *w, const mqtt_connect_t *c, uint8_t version)
{
    bool v5 = version >= MQTT_V5;
    static const mqtt_str_t mqisdp = {(const uint8_t *)"MQIsdp", 6};
    static const mqtt_str_t mqtt = {(const uint8_t *)"MQTT", 4};
    uint8_t f = (uint8_t)((c->clean ? 0x02 : 0) | (c->has_password ? 0x40 : 0) |
                          (c->has_username ? 0x80 : 0));
    if (c->will)
        f |= (uint8_t)(0x04 | ((c->will_qos & 3) << 3) | (c->will_retain ? 0x20 : 0));
    wr_str(w, version == MQTT_V31 ? mqisdp : mqtt);
    wr_u8(w, version);
    wr_u8(w, f);
    wr_u16(w, c->keepalive);
    if (v5)
        proto__props_write(w, &c->props, MQTT_CONNECT);
    wr_str(w, c->client_id);
    if (c->will) {
        if (v5)
            proto__props_write(w, &c->will_props, PROP_KIND_WILL);
        wr_str(w, c->will_topic);
        wr_u16(w, c->will_payload_len);
        wr_mem(w, c->will_payload, c->will_payload_len);
    }
    if (c->has_username)
        wr_str(w, c->username);
    if (c->has_password)
        wr_str(w, c->password);
}

static void enc_publish(wr_t *w, const mqtt_publish_t *p, uint8_t version, bool payload)
{
    wr_str(w, p->topic);
    if (p->qos)
        wr_u16(w, p->id);
    if (version >= MQTT_V5)
        proto__props_write(w, &p->props, MQTT_PUBLISH);
    if (payload)
        wr_mem(w, p->payload, p->payload_len);
}

/*
 * PUBACK/PUBREC/PUBREL/PUBCOMP, DISCONNECT and AUTH share the MQTT 5 shortening: the reason
 * code is left out when it is 0 with no properties, and the property length when there are no
 * properties (AUTH keeps it, as its section gives no such shortening).
 */
static void enc_reason_tail(wr_t *w, uint8_t rc, const mqtt_props_t *props, unsigned type)
{
    bool any = proto__props_any(props, type);
    if (rc == 0 && !any)
        return;
    wr_u8(w, rc);
    if (any || type == MQTT_AUTH)
        proto__props_write(w, props, type);
}

static void enc_subscribe(wr_t *w, const mqtt_subscribe_t *s, uint8_t version)
{
    wr_u16(w, s->id);
    if (version >= MQTT_V5)
        proto__props_write(w, &s->props, MQTT_SUBSCRIBE);
    for (uint32_t i = 0; i < s->n; i++) {
        wr_str(w, s->subs[i].filter);
        wr_u8(w, version >= MQTT_V5 ? s->subs[i].options : MQTT_SUBOPT_QOS(s->subs[i].options));
    }
}

static void enc_unsubscribe(wr_t *w, const mqtt_unsubscribe_t *u, uint8_t version)
{
    wr_u16(w, u->id);
    if (version >= MQTT_V5)
        proto__props_write(w, &u->props, MQTT_UNSUBSCRIBE);
    for (uint32_t i = 0; i < u->n; i++)
        wr_str(w, u->filters[i]);
}

static void enc_suback(wr_t *w, const mqtt_suback_t *s, uint8_t version, unsigned type)
{
    wr_u16(w, s->id);
    if (version < MQTT_V5) {
        if (type == MQTT_UNSUBACK)
            return;
        /* Before MQTT 5 a refusal has a single code, 0x80. */
        for (uint32_t i = 0; i < s->n; i++)
            wr_u8(w, s->rcs[i] <= 2 ? s->rcs[i] : 0x80);
        return;
    }
    proto__props_write(w, &s->props, type);
    wr_mem(w, s->rcs, s->n);
}

static void enc_body(wr_t *w, const mqtt_packet_t *pkt, uint8_t version, bool payload)
{
    bool v5 = version >= MQTT_V5;
    unsigned type = pkt->type;
    switch (type) {
    case MQTT_CONNECT:
        enc_connect(w, &pkt->u.connect, version);
        break;
    case MQTT_CONNACK:
        wr_u8(w, pkt->u.connack.session_present ? 1 : 0);
        wr_u8(w, pkt->u.connack.rc);
        if (v5)
            proto__props_write(w, &pkt->u.connack.props, MQTT_CONNACK);
        break;
    case MQTT_PUBLISH:
        enc_publish(w, &pkt->u.publish, version, payload);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        wr_u16(w, pkt->u.ack.id);
        if (v5)
            enc_reason_tail(w, pkt->u.ack.rc, &pkt->u.ack.props, type);
        break;
    case MQTT_SUBSCRIBE:
        enc_subscribe(w, &pkt->u.subscribe, version);
        break;
    case MQTT_UNSUBSCRIBE:
        enc_unsubscribe(w, &pkt->u.unsubscribe, version);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        enc_suback(w, &pkt->u.suback, version, type);
        break;
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        if (v5)
            enc_reason_tail(w, pkt->u.reason.rc, &pkt->u.reason.props, type);
        else if (type == MQTT_AUTH)
            w->bad = true;
        break;
    default:
        w->bad = true;
        break;
    }
}

/*
 * Encodes the packet, or only measures it when out is NULL. With payload false (PUBLISH only)
 * the payload is counted in the remaining length but neither written nor counted in the result.
 */
static size_t encode(const mqtt_packet_t *pkt, uint8_t version, uint8_t *out, size_t cap,
                     bool payload)
{
    wr_t m = {NULL, 0, false};
    enc_body(&m, pkt, version, payload);
    if (m.bad)
        return 0;
    uint64_t rem = m.n;
    if (!payload)
        rem += pkt->u.publish.payload_len;
    if (rem > PROTO_MAX_REMAINING)
        return 0;
    size_t total = 1 + proto__varint_size((uint32_t)rem) + m.n;
    if (!out)
        return total;
    if (cap < total)
        return 0;
    wr_t w = {out, 0, false};
    wr_u8(&w, first_byte(pkt));
    proto__wr_varint(&w, (uint32_t)rem);
    enc_body(&w, pkt, version, payload);
    return w.n;
}

size_t proto_encoded_size(const mqtt_packet_t *pkt, uint8_t version)
{
    return encode(pkt, version, NULL, 0, true);
}

size_t proto_encode(const mqtt_packet_t *pkt, uint8_t version, uint8_t *out, size_t cap)
{
    if (!out)
        return 0;
    return encode(pkt, version, out, cap, true);
}

size_t proto_encode_publish_head(const mqtt_packet_t *pkt, uint8_t version, uint8_t *out,
                                 size_t cap)
{
    if (!out || pkt->type != MQTT_PUBLISH)
        return 0;
    return encode(pkt, version, out, cap, false);
}
