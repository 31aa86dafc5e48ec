/*
 * broker/handle_publish.c: PUBLISH from a client, the acknowledgements of both directions,
 * and DISCONNECT.
 *
 * Inbound QoS 2 follows the spec's method A: the message is routed when the PUBLISH arrives and
 * its packet id is remembered until PUBREL, so a re-sent PUBLISH with the same id is answered
 * with PUBREC again and never routed twice.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/core.h"
#include "broker/log.h"
#include "broker/store.h"

static int send_ack(conn_t *c, mqtt_type_t type, uint16_t id, uint8_t rc)
{
    mqtt_packet_t a = {.type = type};
    a.u.ack.id = id;
    a.u.ack.rc = c->version == MQTT_V5 ? rc : 0;
    return conn_send(c, &a);
}

/* An ack that promises the message is safe: with `fsync always` it waits for the disk. A PUBCOMP
 * also waits under the other policies, until its record is written (not fsynced): a restart that
 * lost it would keep the packet id pending, and the client's next QoS 2 message with that id,
 * published after the restart, would be taken for a duplicate and never delivered. */
static int ack_durable(conn_t *c, mqtt_type_t type, uint16_t id, uint8_t rc)
{
    broker_t *b = c->w->b;
    if (!b->store || !(store_acks_wait(b->store) || type == MQTT_PUBCOMP))
        return send_ack(c, type, id, rc);
    store_ack_later(b->store, c, (uint8_t)type, id, rc);
    return 0;
}

/* Resolves a Topic Alias (MQTT 5): learns it when a topic is given, looks it up when not. */
static int resolve_alias(conn_t *c, mqtt_publish_t *pub)
{
    if (!(pub->props.present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS)))
        return 0;
    uint16_t alias = pub->props.topic_alias;
    uint16_t max = c->max_topic_alias;
    if (alias == 0 || alias > max)
        return conn_protocol_error(c, MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
    if (!c->aliases) {
        c->aliases = calloc(max, sizeof *c->aliases);
        if (!c->aliases)
            return conn_protocol_error(c, MQTT_RC_SERVER_BUSY, "out of memory");
        c->n_aliases = max;
    }
    if (alias > c->n_aliases)
        return conn_protocol_error(c, MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
    uint16_t i = alias - 1;
    if (pub->topic.len > 0) {
        /* the codec refuses U+0000 in a topic: a C string holds it whole */
        char *t = malloc(pub->topic.len + 1);
        if (!t)
            return conn_protocol_error(c, MQTT_RC_SERVER_BUSY, "out of memory");
        memcpy(t, pub->topic.p, pub->topic.len);
        t[pub->topic.len] = 0;
        free(c->aliases[i]);
        c->aliases[i] = t;
        return 0;
    }
    if (!c->aliases[i])
        return conn_protocol_error(c, MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
    pub->topic.p = (const uint8_t *)c->aliases[i];
    pub->topic.len = (uint16_t)strlen(c->aliases[i]);
    return 0;
}

static bool topic_within_limits(const limits_t *lim, const mqtt_str_t *t)
{
    if (lim->max_topic_length && t->len > lim->max_topic_length)
        return false;
    if (lim->max_topic_levels) {
        uint32_t levels = 1;
        for (uint16_t i = 0; i < t->len; i++)
            levels += t->p[i] == '/';
        if (levels > lim->max_topic_levels)
            return false;
    }
    return true;
}

/* Publishing rules that need the broker's limits (the codec checked the rest). */
static int check_publish(conn_t *c, const mqtt_publish_t *pub)
{
    const limits_t *lim = &c->w->b->lim;
    if (pub->qos > c->max_qos)
        return conn_protocol_error(c, MQTT_RC_QOS_NOT_SUPPORTED, "QoS above Maximum QoS");
    if (pub->retain && !lim->retain_available)
        return conn_protocol_error(c, MQTT_RC_RETAIN_NOT_SUPPORTED, "retain not available");
    if (!topic_within_limits(lim, &pub->topic))
        return conn_protocol_error(c, MQTT_RC_TOPIC_NAME_INVALID,
                                   "topic longer or deeper than the configured limits");
    return 0;
}

/*
 * message_size_limit, as Mosquitto 2.0 does it: a larger payload is neither routed nor retained,
 * but the QoS flow is completed so the client does not resend it forever. MQTT 5 clients see
 * 0x95 (Packet too large) in the PUBACK/PUBREC (Mosquitto's man page says 0x83, its code sends
 * 0x95), 3.1.1 clients a plain ack, QoS 0 nothing; the connection stays open. For QoS 2 the
 * failed PUBREC ends the flow (MQTT 5 4.3.3), so no id is kept waiting for PUBREL; a 3.1.1
 * client's PUBREL for it is answered with PUBCOMP all the same. Returns 1 when it dropped.
 */
static int drop_oversized(conn_t *c, const mqtt_publish_t *pub)
{
    uint32_t max = c->w->b->lim.message_size_limit;
    if (!max || pub->payload_len <= max)
        return 0;
    atomic_fetch_add_explicit(&c->w->b->stats.msgs_dropped, 1, memory_order_relaxed);
    c->oversized++;
    if ((c->oversized & (c->oversized - 1)) == 0) /* 1, 2, 4...: a flood cannot flood the log */
        log_notice("message_too_large", "client=%s qos=%u payload=%u limit=%u dropped_total=%u",
                   conn_id(c), pub->qos, pub->payload_len, max, c->oversized);
    if (pub->qos)
        send_ack(c, pub->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, pub->id,
                 MQTT_RC_PACKET_TOO_LARGE);
    return 1;
}

int handle_publish(conn_t *c, mqtt_packet_t *p)
{
    broker_t *b = c->w->b;
    mqtt_publish_t *pub = &p->u.publish;
    session_t *s = c->session;
    if (resolve_alias(c, pub) < 0 || check_publish(c, pub) < 0)
        return -1;
    atomic_fetch_add_explicit(&b->stats.pub_received, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->stats.pub_received_qos[pub->qos], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->stats.pub_bytes_received_qos[pub->qos], pub->payload_len,
                              memory_order_relaxed);
    c->rate_msgs++;
    if (drop_oversized(c, pub))
        return 0;

    if (pub->qos == 2) {
        session_lock(s);
        bool dup = session_in_has(s, pub->id);
        /* MQTT 5 clients are bound by our Receive Maximum; 3.1.1 has none, so max_qos2_pending
           keeps a client from making us hold unreleased QoS 2 ids without bound */
        uint32_t cap = c->version == MQTT_V5 ? b->lim.receive_maximum : b->lim.max_qos2_pending;
        bool over = !dup && cap && s->n_in >= cap;
        if (!dup && !over)
            session_in_add(s, pub->id);
        session_unlock(s);
        if (over)
            return conn_protocol_error(c, MQTT_RC_RECEIVE_MAX_EXCEEDED,
                                       c->version == MQTT_V5
                                           ? "more QoS 2 messages in flight than Receive Maximum"
                                           : "more QoS 2 messages pending than max_qos2_pending");
        if (dup)
            return ack_durable(c, MQTT_PUBREC, pub->id, 0);
    }

    const char *topic = (const char *)pub->topic.p;
    if (auth_is_authz_info(c, topic, pub->topic.len)) /* a token upload, consumed by auth */
        return auth_authz_info(c, pub);
    int verdict = auth_publish(c, topic, pub->topic.len, pub->qos);
    if (verdict != 0) {
        if (verdict < 0) /* the connection was closed */
            return -1;
        if (pub->qos == 2) { /* nothing will follow for this id */
            session_lock(s);
            session_in_del(s, pub->id);
            session_unlock(s);
        }
        if (pub->qos)
            send_ack(c, pub->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, pub->id, (uint8_t)verdict);
        return 0;
    }

    size_t routed = 0;
    int group = -1;
    /* $SYS is the broker's own tree: clients' messages there are acknowledged and dropped */
    if (!(pub->topic.len >= 4 && memcmp(topic, "$SYS", 4) == 0)) {
        msg_t *m = msg_new(topic, pub->topic.len, pub->payload, pub->payload_len, pub->qos,
                           pub->retain, c->version == MQTT_V5 ? &pub->props : NULL, clock_ms());
        if (!m)
            return conn_protocol_error(c, MQTT_RC_SERVER_BUSY, "out of memory");
        m->origin = s;
        auth_limit_expiry(c, m); /* retained copies go when the publisher's token does */
        if (pub->qos == 2 && b->store)
            group = store_group_begin(b->store);
        routed = broker_publish_count(b, m);
        msg_unref(m);
    }
    /* after the deliveries it caused, so a stored id always comes with its deliveries */
    if (pub->qos == 2 && b->store) {
        store_in_add(b->store, s, pub->id);
        store_group_end(b->store, group);
    }
    if (pub->qos == 1)
        return ack_durable(c, MQTT_PUBACK, pub->id, routed ? 0 : MQTT_RC_NO_MATCHING_SUBSCRIBERS);
    if (pub->qos == 2)
        return ack_durable(c, MQTT_PUBREC, pub->id, routed ? 0 : MQTT_RC_NO_MATCHING_SUBSCRIBERS);
    return 0;
}

int handle_ack(conn_t *c, mqtt_packet_t *p)
{
    session_t *s = c->session;
    struct store *st = c->w->b->store;
    uint16_t id = p->u.ack.id;
    int rc;
    switch (p->type) {
    case MQTT_PUBACK:
    case MQTT_PUBCOMP:
        if (session_ack(s, id, p->type) == 0 && st)
            store_out_done(st, s, id);
        conn_schedule(c); /* the window may have room again */
        return 0;
    case MQTT_PUBREC:
        if (c->version == MQTT_V5 && p->u.ack.rc >= 0x80) {
            session_ack_failed(s, id);
            if (st)
                store_out_done(st, s, id);
            conn_schedule(c);
            return 0;
        }
        rc = session_ack(s, id, MQTT_PUBREC);
        if (rc == 0 && st)
            store_out_pubrec(st, s, id);
        /* a PUBREL sent before the PUBREC is on disk could be followed, after a crash, by the
           same PUBLISH again, which the client would take for a new message */
        return ack_durable(c, MQTT_PUBREL, id, (uint8_t)rc);
    case MQTT_PUBREL: {
        session_lock(s);
        bool found = session_in_del(s, id);
        session_unlock(s);
        if (found && st)
            store_in_del(st, s, id);
        /* the client reuses the id after PUBCOMP: a stale stored id would make its next
           message look like a duplicate after a crash */
        return ack_durable(c, MQTT_PUBCOMP, id, found ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND);
    }
    default:
        return 0;
    }
}

int handle_disconnect(conn_t *c, mqtt_packet_t *p)
{
    session_t *s = c->session;
    const mqtt_reason_t *d = &p->u.reason;
    if (c->version == MQTT_V5 && (d->props.present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY)) && s) {
        session_lock(s);
        bool was_zero = s->expiry == 0;
        if (!was_zero)
            s->expiry = d->props.session_expiry;
        if (!was_zero && c->w->b->store)
            store_session_sync(c->w->b->store, s);
        session_unlock(s);
        if (was_zero && d->props.session_expiry != 0)
            return conn_protocol_error(c, MQTT_RC_PROTOCOL_ERROR,
                                       "Session Expiry Interval set on DISCONNECT after 0");
    }
    c->will_on_close = c->version == MQTT_V5 && d->rc == MQTT_RC_DISCONNECT_WITH_WILL;
    conn_close(c, -1, c->will_on_close ? "client disconnected with will" : "client disconnected");
    return -1;
}
