/*
 * broker/session.c: sessions (queue, in-flight window, packet ids, subscriptions) and the
 * client-id registry.
 *
 * A session's queue holds deliveries not yet on the wire; `out` holds QoS 1/2 deliveries sent and
 * not yet acknowledged, in send order, so a reconnecting client gets them again in order with
 * DUP set. Queue limits (messages and bytes) apply to the queue only; when a limit is reached the
 * new delivery is dropped (the oldest are kept, as Mosquitto does) and counted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/core.h"
#include "broker/log.h"
#include "broker/router.h"
#include "broker/store.h"

session_t *session_new(const char *id, size_t len)
{
    session_t *s = calloc(1, sizeof *s + len + 1);
    if (!s)
        return NULL;
    memcpy(s->client_id, id, len);
    s->client_id[len] = 0;
    s->id_len = (uint16_t)len;
    atomic_init(&s->refs, 1);
    atomic_init(&s->flush_queued, false);
    s->next_id = 1;
    return s;
}

static void drop_deliveries(session_t *s)
{
    for (uint32_t i = 0; i < s->q_len; i++)
        msg_unref(s->queue[(s->q_head + i) % s->q_cap].msg);
    s->q_len = s->q_head = 0;
    s->q_bytes = 0;
    for (uint32_t i = 0; i < s->n_out; i++)
        msg_unref(s->out[i].d.msg);
    s->n_out = 0;
    s->out_bytes = 0;
    s->n_in = 0;
}

void session_unref(session_t *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    drop_deliveries(s);
    auth_session_free(s);
    for (uint32_t i = 0; i < s->n_subs; i++)
        free(s->subs[i].filter);
    msg_unref(s->will);
    free(s->subs);
    free(s->queue);
    free(s->out);
    free(s->in_ids);
    free(s);
}

/* ---- the queue -------------------------------------------------------------------------------- */

static int queue_push(session_t *s, const delivery_t *d)
{
    if (s->q_len == s->q_cap) {
        uint32_t cap = s->q_cap ? s->q_cap * 2 : 8;
        delivery_t *q = malloc(cap * sizeof *q);
        if (!q)
            return -ENOMEM;
        for (uint32_t i = 0; i < s->q_len; i++)
            q[i] = s->queue[(s->q_head + i) % s->q_cap];
        free(s->queue);
        s->queue = q;
        s->q_cap = cap;
        s->q_head = 0;
    }
    s->queue[(s->q_head + s->q_len) % s->q_cap] = *d;
    s->q_len++;
    s->q_bytes += d->msg->payload_len;
    return 0;
}

static delivery_t queue_pop(session_t *s)
{
    delivery_t d = s->queue[s->q_head];
    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_len--;
    s->q_bytes -= d.msg->payload_len;
    return d;
}

static void count_drop(broker_t *b, session_t *s, const char *why)
{
    s->dropped++;
    atomic_fetch_add(&b->stats.msgs_dropped, 1);
    if ((s->dropped & (s->dropped - 1)) == 0) /* 1, 2, 4, 8...: say it without flooding */
        log_notice("message_dropped", "client=%s reason=\"%s\" dropped_total=%u", s->client_id,
                   why, (unsigned)s->dropped);
}

void session_drop_qos0(broker_t *b, session_t *s)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->q_len; i++) {
        delivery_t d = s->queue[(s->q_head + i) % s->q_cap];
        if (d.qos != 0) {
            s->queue[(s->q_head + kept++) % s->q_cap] = d;
            continue;
        }
        s->q_bytes -= d.msg->payload_len;
        if (b->store)
            store_sent(b->store, s, d.msg, 0);
        msg_unref(d.msg);
    }
    s->q_len = kept;
}

bool session_deliver(broker_t *b, session_t *s, const delivery_t *d)
{
    const limits_t *lim = &b->lim;
    worker_t *w = NULL;
    session_lock(s);
    if (!s->conn && !auth_session_may_receive(s, d->msg->topic, d->msg->topic_len)) {
        session_unlock(s);
        return false;
    }
    if (!s->registered || (d->qos == 0 && !s->conn && !lim->queue_qos0)) {
        session_unlock(s);
        return true;
    }
    if (d->qos == 0 && s->q_len > 0 && (s->backlogged || !s->conn) && atomic_load(&b->shedding)) {
        count_drop(b, s, "memory_limit reached: QoS 0 to a slow consumer");
        session_unlock(s);
        return true;
    }
    if ((lim->max_queued && s->q_len >= lim->max_queued) ||
        (lim->max_queued_bytes && s->q_bytes + d->msg->payload_len > lim->max_queued_bytes)) {
        atomic_fetch_add_explicit(&b->stats.dropped_queue_full, 1, memory_order_relaxed);
        count_drop(b, s, "queue full");
        session_unlock(s);
        return true;
    }
    delivery_t copy = *d;
    msg_ref(copy.msg);
    if (queue_push(s, &copy) < 0) {
        msg_unref(copy.msg);
        count_drop(b, s, "out of memory");
    } else if (b->store) {
        store_queued(b->store, s, &copy);
    }
    if (s->conn)
        w = s->worker;
    session_unlock(s);
    if (w && !atomic_exchange(&s->flush_queued, true)) {
        session_ref(s);
        worker_t *cur = worker_current();
        if (cur == w)
            ptrvec_push(&w->pending_sessions, s);
        else
            worker_post(w, INBOX_FLUSH_SESSION, s, 0);
    }
    return true;
}

/* ---- the in-flight window --------------------------------------------------------------------- */

static bool id_in_use(const session_t *s, uint16_t id)
{
    for (uint32_t i = 0; i < s->n_out; i++)
        if (s->out[i].id == id)
            return true;
    return false;
}

static uint16_t next_free_id(session_t *s)
{
    for (;;) {
        uint16_t id = s->next_id++;
        if (s->next_id == 0)
            s->next_id = 1;
        if (id && !id_in_use(s, id))
            return id;
    }
}

static void fill_publish(mqtt_packet_t *pkt, const delivery_t *d, uint16_t id, bool dup,
                         uint64_t now)
{
    msg_t *m = d->msg;
    memset(pkt, 0, sizeof *pkt);
    pkt->type = MQTT_PUBLISH;
    mqtt_publish_t *p = &pkt->u.publish;
    p->qos = d->qos;
    p->dup = dup;
    p->retain = d->retain;
    p->topic.p = (const uint8_t *)m->topic;
    p->topic.len = m->topic_len;
    p->id = id;
    p->props = m->props;
    if (m->expire_at) {
        p->props.present |= MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY);
        p->props.message_expiry = msg_expiry_left(m, now);
    }
    if (d->n_sub_ids) {
        p->props.present |= MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
        p->props.n_sub_ids = d->n_sub_ids;
        p->props.sub_ids = d->sub_ids;
    }
    p->payload = m->payload;
    p->payload_len = m->payload_len;
}

/* Payload bytes an in-flight entry holds (none once PUBREC released the message). */
static uint64_t held_bytes(const inflight_t *e)
{
    return e->d.msg ? e->d.msg->payload_len : 0;
}

static int out_push(session_t *s, const inflight_t *e)
{
    if (s->n_out == s->cap_out) {
        uint32_t cap = s->cap_out ? s->cap_out * 2 : 8;
        inflight_t *o = realloc(s->out, cap * sizeof *o);
        if (!o)
            return -ENOMEM;
        s->out = o;
        s->cap_out = cap;
    }
    s->out[s->n_out++] = *e;
    s->out_bytes += held_bytes(e);
    return 0;
}

/* Takes entry i out of the window and releases its message. */
static void out_remove(session_t *s, uint32_t i)
{
    s->out_bytes -= held_bytes(&s->out[i]);
    msg_unref(s->out[i].d.msg);
    memmove(&s->out[i], &s->out[i + 1], (s->n_out - i - 1) * sizeof s->out[0]);
    s->n_out--;
}

static uint32_t window_of(const broker_t *b, const conn_t *c)
{
    uint32_t w = c->client_receive_max ? c->client_receive_max : 65535;
    if (b->lim.max_inflight && b->lim.max_inflight < w)
        w = b->lim.max_inflight;
    return w;
}

/* Whether a QoS 1/2 delivery may join the window now: by count (Receive Maximum,
 * max_inflight_messages) and by payload bytes (max_inflight_bytes). An empty window always takes
 * one, so a message larger than max_inflight_bytes is still delivered instead of wedging the
 * session for good. */
static bool window_open(const broker_t *b, const session_t *s, const conn_t *c, const msg_t *m)
{
    if (s->n_out >= window_of(b, c))
        return false;
    uint64_t max = b->lim.max_inflight_bytes;
    return !max || s->n_out == 0 || s->out_bytes + m->payload_len <= max;
}

/* A delivery that will never go out: counted under `counter` (and as a drop the log tells of,
 * unless why is NULL), its store record closed, its reference released. */
static void discard(broker_t *b, session_t *s, msg_t *m, atomic_uint_fast64_t *counter,
                    const char *why)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    if (why)
        count_drop(b, s, why);
    if (b->store)
        store_sent(b->store, s, m, 0);
    msg_unref(m);
}

/* Sends one delivery; returns false if it had to stay queued (window full). */
static bool send_one(broker_t *b, session_t *s, conn_t *c, delivery_t *d, uint64_t now)
{
    mqtt_packet_t pkt;
    uint16_t id = 0;
    if (d->qos > 0) {
        if (!window_open(b, s, c, d->msg))
            return false;
        id = next_free_id(s);
    }
    fill_publish(&pkt, d, id, false, now);
    if (c->client_max_packet && proto_encoded_size(&pkt, c->version) > c->client_max_packet) {
        discard(b, s, d->msg, &b->stats.dropped_too_large,
                "larger than the client's Maximum Packet Size");
        return true;
    }
    conn_send_publish(c, &pkt, d->msg);
    if (b->store)
        store_sent(b->store, s, d->msg, id);
    atomic_fetch_add_explicit(&b->stats.pub_sent_qos[d->qos], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->stats.pub_bytes_sent_qos[d->qos], d->msg->payload_len,
                              memory_order_relaxed);
    if (d->qos > 0) {
        inflight_t e = {.id = id, .state = d->qos == 1 ? OUT_WAIT_PUBACK : OUT_WAIT_PUBREC,
                        .sent_once = true, .d = *d};
        if (out_push(s, &e) < 0)
            msg_unref(d->msg);
    } else {
        msg_unref(d->msg);
    }
    atomic_fetch_add_explicit(&b->stats.pub_sent, 1, memory_order_relaxed);
    return true;
}

unsigned session_flush(broker_t *b, session_t *s, conn_t *c)
{
    unsigned sent = 0;
    uint64_t now = clock_ms();
    session_lock(s);
    while (s->conn == c && s->q_len > 0 && conn_writable(c)) {
        delivery_t *head = &s->queue[s->q_head];
        if (msg_expired(head->msg, now)) {
            discard(b, s, queue_pop(s).msg, &b->stats.dropped_expired, NULL);
            continue;
        }
        if (head->qos > 0 && !window_open(b, s, c, head->msg))
            break;
        delivery_t d = queue_pop(s);
        if (!auth_conn_may_receive(c, d.msg->topic, d.msg->topic_len)) {
            /* queued while a grant allowed it (or while offline): c's grant says no now */
            discard(b, s, d.msg, &b->stats.dropped_not_authorized,
                    "not authorized for the subscriber");
            continue;
        }
        send_one(b, s, c, &d, now);
        sent++;
    }
    /* A consumer that keeps up leaves nothing behind; messages queued in one loop turn wait for
     * the flush at its end, and do not make their session a slow consumer. */
    s->backlogged = s->q_len > 0;
    session_unlock(s);
    return sent;
}

void session_resend_inflight(session_t *s, conn_t *c)
{
    uint64_t now = clock_ms();
    for (uint32_t i = 0; i < s->n_out; i++) {
        inflight_t *e = &s->out[i];
        mqtt_packet_t pkt;
        if (e->state == OUT_WAIT_PUBCOMP) {
            memset(&pkt, 0, sizeof pkt);
            pkt.type = MQTT_PUBREL;
            pkt.u.ack.id = e->id;
            conn_send(c, &pkt);
            continue;
        }
        fill_publish(&pkt, &e->d, e->id, e->sent_once, now);
        conn_send_publish(c, &pkt, e->d.msg);
        e->sent_once = true;
    }
}

int session_ack(session_t *s, uint16_t id, mqtt_type_t type)
{
    int rc = MQTT_RC_PACKET_ID_NOT_FOUND;
    session_lock(s);
    for (uint32_t i = 0; i < s->n_out; i++) {
        inflight_t *e = &s->out[i];
        if (e->id != id)
            continue;
        bool done = false;
        if (type == MQTT_PUBACK && e->state == OUT_WAIT_PUBACK)
            done = true;
        else if (type == MQTT_PUBCOMP && e->state == OUT_WAIT_PUBCOMP)
            done = true;
        else if (type == MQTT_PUBREC && e->state == OUT_WAIT_PUBREC) {
            e->state = OUT_WAIT_PUBCOMP;
            s->out_bytes -= held_bytes(e);
            msg_unref(e->d.msg);
            e->d.msg = NULL;
        } else if (type == MQTT_PUBREC && e->state == OUT_WAIT_PUBCOMP) {
            /* a repeated PUBREC: answer with PUBREL again */
        } else {
            break;
        }
        if (done)
            out_remove(s, i);
        rc = 0;
        break;
    }
    session_unlock(s);
    return rc;
}

int session_restore_inflight(session_t *s, uint16_t id, uint8_t state, const delivery_t *d)
{
    inflight_t e = {.id = id, .state = state, .sent_once = true, .d = *d};
    if (e.d.msg)
        msg_ref(e.d.msg);
    session_lock(s);
    int rc = out_push(s, &e);
    session_unlock(s);
    if (rc < 0)
        msg_unref(e.d.msg);
    return rc;
}

/* A PUBREC with a failure reason ends the QoS 2 flow for that id (MQTT 5 4.3.3). */
void session_ack_failed(session_t *s, uint16_t id)
{
    session_lock(s);
    for (uint32_t i = 0; i < s->n_out; i++) {
        if (s->out[i].id == id) {
            out_remove(s, i);
            break;
        }
    }
    session_unlock(s);
}

/* ---- subscriptions ---------------------------------------------------------------------------- */

int session_add_sub(session_t *s, const char *filter, size_t len, uint8_t options, uint32_t sub_id)
{
    for (uint32_t i = 0; i < s->n_subs; i++) {
        sub_entry_t *e = &s->subs[i];
        if (e->len == len && memcmp(e->filter, filter, len) == 0) {
            e->options = options;
            e->sub_id = sub_id;
            return 1;
        }
    }
    if (s->n_subs == s->cap_subs) {
        uint32_t cap = s->cap_subs ? s->cap_subs * 2 : 4;
        sub_entry_t *n = realloc(s->subs, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->subs = n;
        s->cap_subs = cap;
    }
    char *f = malloc(len + 1);
    if (!f)
        return -ENOMEM;
    memcpy(f, filter, len);
    f[len] = 0;
    s->subs[s->n_subs++] = (sub_entry_t){f, (uint16_t)len, options, sub_id};
    return 0;
}

int session_del_sub(session_t *s, const char *filter, size_t len)
{
    for (uint32_t i = 0; i < s->n_subs; i++) {
        if (s->subs[i].len == len && memcmp(s->subs[i].filter, filter, len) == 0) {
            free(s->subs[i].filter);
            s->subs[i] = s->subs[--s->n_subs];
            return 0;
        }
    }
    return -ENOENT;
}

void session_clear(broker_t *b, session_t *s)
{
    session_lock(s);
    sub_entry_t *subs = s->subs;
    uint32_t n = s->n_subs;
    s->subs = NULL;
    s->n_subs = s->cap_subs = 0;
    if (b->store)
        store_session_delete(b->store, s);
    drop_deliveries(s);
    session_unlock(s);
    for (uint32_t i = 0; i < n; i++) {
        router_unsubscribe(b->router, subs[i].filter, subs[i].len, s);
        free(subs[i].filter);
    }
    free(subs);
}

/* ---- incoming QoS 2 ids ----------------------------------------------------------------------- */

bool session_in_has(const session_t *s, uint16_t id)
{
    for (uint32_t i = 0; i < s->n_in; i++)
        if (s->in_ids[i] == id)
            return true;
    return false;
}

int session_in_add(session_t *s, uint16_t id)
{
    if (s->n_in == s->cap_in) {
        uint32_t cap = s->cap_in ? s->cap_in * 2 : 8;
        uint16_t *n = realloc(s->in_ids, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->in_ids = n;
        s->cap_in = cap;
    }
    s->in_ids[s->n_in++] = id;
    return 0;
}

bool session_in_del(session_t *s, uint16_t id)
{
    for (uint32_t i = 0; i < s->n_in; i++) {
        if (s->in_ids[i] == id) {
            s->in_ids[i] = s->in_ids[--s->n_in];
            return true;
        }
    }
    return false;
}
