/*
 * proto/decode_sub.c: the packets that carry a list: SUBSCRIBE, UNSUBSCRIBE, SUBACK, UNSUBACK.
 * A list is checked and counted in a first walk, then copied into the packet's single block in
 * a second walk that needs no checks.
 */
#include "codec.h"

/* Syntax of one filter in SUBSCRIBE or UNSUBSCRIBE, shared subscriptions included. */
static mqtt_rc_t check_filter(dec_t *d, mqtt_str_t f, int *shared)
{
    if (!proto_utf8_valid(f.p, f.len))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "topic filter is not valid UTF-8");
    if (!proto_topic_filter_valid(f.p, f.len))
        DEC_FAIL(d, MQTT_RC_TOPIC_FILTER_INVALID, "invalid topic filter");
    *shared = proto_shared_filter(f.p, f.len, NULL, NULL);
    if (*shared < 0)
        DEC_FAIL(d, MQTT_RC_TOPIC_FILTER_INVALID, "invalid shared subscription filter");
    return MQTT_RC_SUCCESS;
}

static mqtt_rc_t check_options(dec_t *d, uint8_t o, int shared)
{
    if (MQTT_SUBOPT_QOS(o) == 3)
        DEC_FAIL(d, MQTT_RC_MALFORMED, "subscription QoS 3");
    if (d->version < MQTT_V5) {
        if (o & 0xFC)
            DEC_FAIL(d, MQTT_RC_MALFORMED, "reserved subscription option bits are set");
        return MQTT_RC_SUCCESS;
    }
    if (o & 0xC0)
        DEC_FAIL(d, MQTT_RC_MALFORMED, "reserved subscription option bits are set");
    if (MQTT_SUBOPT_RH(o) == 3)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "retain handling 3");
    if (shared > 0 && (o & MQTT_SUBOPT_NO_LOCAL))
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "no local on a shared subscription");
    return MQTT_RC_SUCCESS;
}

/* Packet identifier, then properties in MQTT 5. */
static mqtt_rc_t list_head(dec_t *d, rd_t *r, unsigned type, uint16_t *id, mqtt_props_t *props,
                           prop_span_t *span)
{
    memset(span, 0, sizeof *span);
    if (!rd_u16(r, id))
        DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated packet identifier");
    if (*id == 0)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "packet identifier 0");
    if (d->version < MQTT_V5)
        return MQTT_RC_SUCCESS;
    return proto__props_decode(d, r, type, false, props, span);
}

mqtt_rc_t proto__dec_subscribe(dec_t *d, rd_t *r, mqtt_packet_t *pkt)
{
    mqtt_subscribe_t *s = &pkt->u.subscribe;
    prop_span_t span;
    mqtt_rc_t rc = list_head(d, r, MQTT_SUBSCRIBE, &s->id, &s->props, &span);
    if (rc != MQTT_RC_SUCCESS)
        return rc;
    if (rd_left(r) == 0)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "SUBSCRIBE without a topic filter");
    rd_t list = *r;
    uint32_t n = 0;
    while (rd_left(r)) {
        mqtt_str_t f;
        uint8_t o;
        int shared;
        if (!rd_bin(r, &f) || !rd_u8(r, &o))
            DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated topic filter or options");
        if ((rc = check_filter(d, f, &shared)) != MQTT_RC_SUCCESS ||
            (rc = check_options(d, o, shared)) != MQTT_RC_SUCCESS)
            return rc;
        n++;
    }
    void *mem;
    rc = proto__dec_arrays(d, pkt, &s->props, &span, NULL, NULL, n * sizeof(mqtt_sub_t), &mem);
    if (rc != MQTT_RC_SUCCESS)
        return rc;
    mqtt_sub_t *subs = mem;
    for (uint32_t i = 0; i < n; i++) {
        rd_bin(&list, &subs[i].filter);
        rd_u8(&list, &subs[i].options);
    }
    s->n = n;
    s->subs = subs;
    return MQTT_RC_SUCCESS;
}

mqtt_rc_t proto__dec_unsubscribe(dec_t *d, rd_t *r, mqtt_packet_t *pkt)
{
    mqtt_unsubscribe_t *u = &pkt->u.unsubscribe;
    prop_span_t span;
    mqtt_rc_t rc = list_head(d, r, MQTT_UNSUBSCRIBE, &u->id, &u->props, &span);
    if (rc != MQTT_RC_SUCCESS)
        return rc;
    if (rd_left(r) == 0)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "UNSUBSCRIBE without a topic filter");
    rd_t list = *r;
    uint32_t n = 0;
    while (rd_left(r)) {
        mqtt_str_t f;
        int shared;
        if (!rd_bin(r, &f))
            DEC_FAIL(d, MQTT_RC_MALFORMED, "truncated topic filter");
        if ((rc = check_filter(d, f, &shared)) != MQTT_RC_SUCCESS)
            return rc;
        n++;
    }
    void *mem;
    rc = proto__dec_arrays(d, pkt, &u->props, &span, NULL, NULL, n * sizeof(mqtt_str_t), &mem);
    if (rc != MQTT_RC_SUCCESS)
        return rc;
    mqtt_str_t *filters = mem;
    for (uint32_t i = 0; i < n; i++)
        rd_bin(&list, &filters[i]);
    u->n = n;
    u->filters = filters;
    return MQTT_RC_SUCCESS;
}

/* SUBACK and UNSUBACK: the reason codes stay in the frame, one byte each. */
mqtt_rc_t proto__dec_suback(dec_t *d, rd_t *r, mqtt_packet_t *pkt)
{
    unsigned type = pkt->type;
    mqtt_suback_t *s = &pkt->u.suback;
    prop_span_t span;
    mqtt_rc_t rc = list_head(d, r, type, &s->id, &s->props, &span);
    if (rc != MQTT_RC_SUCCESS)
        return rc;
    if (type == MQTT_UNSUBACK && d->version < MQTT_V5)
        return MQTT_RC_SUCCESS; /* no payload; trailing bytes are refused by the caller */
    if (rd_left(r) == 0)
        DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "acknowledgement without a reason code");
    s->rcs = r->p;
    s->n = (uint32_t)rd_left(r);
    for (uint32_t i = 0; i < s->n; i++) {
        uint8_t c = s->rcs[i];
        bool ok = d->version >= MQTT_V5 ? proto__rc_allowed(type, c) : (c <= 2 || c == 0x80);
        if (!ok)
            DEC_FAIL(d, MQTT_RC_PROTOCOL_ERROR, "reason code not allowed in this packet");
    }
    r->p = r->end;
    return proto__dec_arrays(d, pkt, &s->props, &span, NULL, NULL, 0, NULL);
}
