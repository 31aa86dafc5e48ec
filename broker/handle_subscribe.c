/*
 * broker/handle_subscribe.c: SUBSCRIBE -> SUBACK (+ retained messages), UNSUBSCRIBE -> UNSUBACK.
 *
 * The router stores each subscription with the QoS actually granted (the requested QoS capped by
 * max_qos), so forwarding downgrades with one min(). Shared subscriptions ($share/<group>/<filter>)
 * are stored under their full filter; retained messages are never sent for them (MQTT 5 4.8.2).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/core.h"
#include "broker/log.h"
#include "broker/router.h"
#include "broker/store.h"

/* The filter without a $share/<group>/ prefix, or NULL if the filter is not shared. */
static const char *share_inner(const char *f, size_t len, size_t *inner_len)
{
    if (len < 7 || memcmp(f, "$share/", 7) != 0)
        return NULL;
    const char *slash = memchr(f + 7, '/', len - 7);
    if (!slash)
        return NULL;
    *inner_len = len - (size_t)(slash + 1 - f);
    return slash + 1;
}

static uint8_t subscribe_one(conn_t *c, const mqtt_sub_t *sub, uint32_t sub_id, bool *send_retained)
{
    broker_t *b = c->w->b;
    session_t *s = c->session;
    const char *f = (const char *)sub->filter.p;
    size_t len = sub->filter.len, inner_len = len;
    const char *inner = share_inner(f, len, &inner_len);
    const char *checked = inner ? inner : f;
    bool v5 = c->version == MQTT_V5;
    *send_retained = false;

    uint32_t levels = 1;
    for (size_t i = 0; i < inner_len; i++)
        levels += checked[i] == '/';
    if ((b->lim.max_topic_levels && levels > b->lim.max_topic_levels) ||
        (b->lim.max_topic_length && len > b->lim.max_topic_length))
        return v5 ? MQTT_RC_TOPIC_FILTER_INVALID : 0x80;
    int verdict = auth_subscribe(c, checked, inner_len);
    if (verdict)
        return v5 ? (uint8_t)verdict : 0x80;
    if (b->lim.max_subscriptions && s->n_subs >= b->lim.max_subscriptions) {
        session_lock(s);
        bool known = false;
        for (uint32_t i = 0; i < s->n_subs && !known; i++)
            known = s->subs[i].len == len && memcmp(s->subs[i].filter, f, len) == 0;
        session_unlock(s);
        if (!known)
            return v5 ? MQTT_RC_QUOTA_EXCEEDED : 0x80;
    }
    uint8_t qos = MQTT_SUBOPT_QOS(sub->options);
    if (qos > c->max_qos)
        qos = c->max_qos;
    uint8_t options = (uint8_t)((sub->options & ~0x03) | qos);
    int existed = 0;
    if (router_subscribe(b->router, f, len, s, options, sub_id, &existed) < 0)
        return v5 ? MQTT_RC_UNSPECIFIED : 0x80;
    session_lock(s);
    if (session_add_sub(s, f, len, options, sub_id) >= 0 && b->store)
        store_sub(b->store, s, f, len, options, sub_id);
    session_unlock(s);
    uint8_t rh = v5 ? MQTT_SUBOPT_RH(sub->options) : 0;
    *send_retained = !inner && (rh == 0 || (rh == 1 && !existed));
    log_debug("subscribe", "client=%s qos=%u existed=%d", conn_id(c), qos, existed);
    return qos;
}

int handle_subscribe(conn_t *c, mqtt_packet_t *p)
{
    broker_t *b = c->w->b;
    const mqtt_subscribe_t *sub = &p->u.subscribe;
    uint32_t sub_id = 0;
    if (sub->props.present & MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID))
        sub_id = sub->props.n_sub_ids ? sub->props.sub_ids[0] : 0;
    uint8_t *rcs = malloc(sub->n);
    bool *retained = calloc(sub->n, sizeof *retained);
    if (!rcs || !retained) {
        free(rcs);
        free(retained);
        return conn_protocol_error(c, MQTT_RC_SERVER_BUSY, "out of memory");
    }
    for (uint32_t i = 0; i < sub->n; i++)
        rcs[i] = subscribe_one(c, &sub->subs[i], sub_id, &retained[i]);

    mqtt_packet_t ack = {.type = MQTT_SUBACK};
    ack.u.suback.id = sub->id;
    ack.u.suback.n = sub->n;
    ack.u.suback.rcs = rcs;
    conn_send(c, &ack);
    for (uint32_t i = 0; i < sub->n; i++) {
        if (retained[i])
            broker_send_retained(b, c->session, (const char *)sub->subs[i].filter.p,
                                 sub->subs[i].filter.len, rcs[i], sub_id);
    }
    free(rcs);
    free(retained);
    return 0;
}

int handle_unsubscribe(conn_t *c, mqtt_packet_t *p)
{
    broker_t *b = c->w->b;
    session_t *s = c->session;
    const mqtt_unsubscribe_t *u = &p->u.unsubscribe;
    uint8_t *rcs = malloc(u->n ? u->n : 1);
    if (!rcs)
        return conn_protocol_error(c, MQTT_RC_SERVER_BUSY, "out of memory");
    for (uint32_t i = 0; i < u->n; i++) {
        const char *f = (const char *)u->filters[i].p;
        size_t len = u->filters[i].len;
        int r = router_unsubscribe(b->router, f, len, s);
        session_lock(s);
        if (session_del_sub(s, f, len) == 0 && b->store)
            store_unsub(b->store, s, f, len);
        session_unlock(s);
        rcs[i] = r == 0 ? MQTT_RC_SUCCESS : MQTT_RC_NO_SUBSCRIPTION_EXISTED;
    }
    mqtt_packet_t ack = {.type = MQTT_UNSUBACK};
    ack.u.suback.id = u->id;
    ack.u.suback.n = u->n;
    ack.u.suback.rcs = rcs;
    conn_send(c, &ack);
    free(rcs);
    return 0;
}
