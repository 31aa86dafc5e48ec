/*
 * broker/handle_connect.c: CONNECT -> CONNACK. Client identifiers, authentication, session
 * lookup (clean start, resumption, takeover) and the will.
 *
 * Takeover: when a client id is already connected, the new connection takes the session under
 * the registry and session locks; the old connection is told (through its worker's inbox) to
 * send DISCONNECT 0x8E and close. The old connection keeps its own session reference but is no
 * longer the session's connection, so nothing it does afterwards touches the session's state.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/config.h"
#include "broker/core.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/store.h"

static int refuse(conn_t *c, uint8_t rc5, uint8_t rc3, const char *why)
{
    mqtt_packet_t ack = {.type = MQTT_CONNACK};
    ack.u.connack.rc = c->version == MQTT_V5 ? rc5 : rc3;
    if (c->version == MQTT_V5 && c->problem_info && why) {
        ack.u.connack.props.present |= MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
        ack.u.connack.props.reason_string.p = (const uint8_t *)why;
        ack.u.connack.props.reason_string.len = (uint16_t)strlen(why);
    }
    conn_send(c, &ack);
    log_notice("connect_refused", "client=%s peer=%s rc=0x%02x reason=\"%s\"", conn_id(c),
               stream_peer(c->stream), ack.u.connack.rc, why);
    conn_close(c, -1, why);
    return -1;
}

/* A refusal that is an authentication or authorization decision: counted as an authentication
 * failure under reason, a fixed word (never anything the client sent). */
static int refuse_auth(conn_t *c, uint8_t rc5, uint8_t rc3, const char *why, const char *reason)
{
    metrics_count_auth(c->w->b, 0, reason);
    return refuse(c, rc5, rc3, why);
}

static void read_client_props(conn_t *c, const mqtt_connect_t *k)
{
    const mqtt_props_t *pr = &k->props;
    c->client_receive_max = 65535;
    c->problem_info = true;
    if (c->version != MQTT_V5) {
        c->problem_info = false;
        return;
    }
    if (pr->present & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM))
        c->client_receive_max = pr->receive_maximum;
    if (pr->present & MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE))
        c->client_max_packet = pr->maximum_packet_size;
    if (pr->present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM))
        c->client_alias_max = pr->topic_alias_maximum;
    if (pr->present & MQTT_PROP_BIT(MQTT_PROP_REQUEST_PROBLEM_INFO))
        c->problem_info = pr->request_problem_info != 0;
}

/* Picks the client id: the client's, or an assigned one. Returns 0, or a refusal was sent. */
static int choose_client_id(conn_t *c, const mqtt_connect_t *k, char *id, size_t cap, size_t *len,
                            bool *assigned)
{
    const limits_t *lim = &c->w->b->lim;
    *assigned = false;
    size_t plen = strlen(lim->clientid_prefixes);
    if (plen && (k->client_id.len < plen || memcmp(k->client_id.p, lim->clientid_prefixes, plen)))
        return refuse_auth(c, MQTT_RC_NOT_AUTHORIZED, MQTT311_CONNACK_NOT_AUTHORIZED,
                           "client identifier does not start with clientid_prefixes",
                           "client_id_not_allowed");
    if (k->client_id.len > 0) {
        if (k->client_id.len >= cap)
            return refuse(c, MQTT_RC_CLIENT_ID_NOT_VALID, MQTT311_CONNACK_ID_REJECTED,
                          "client identifier too long");
        memcpy(id, k->client_id.p, k->client_id.len);
        *len = k->client_id.len;
        id[*len] = 0;
        return 0;
    }
    if (c->version == MQTT_V31 || (c->version == MQTT_V311 && !k->clean) ||
        !lim->allow_zero_length_clientid)
        return refuse(c, MQTT_RC_CLIENT_ID_NOT_VALID, MQTT311_CONNACK_ID_REJECTED,
                      "empty client identifier not allowed");
    uint8_t rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    int n = snprintf(id, cap, "%s", lim->auto_id_prefix);
    for (size_t i = 0; i < sizeof rnd && (size_t)n + 2 < cap; i++)
        n += snprintf(id + n, cap - (size_t)n, "%02x", rnd[i]);
    *len = (size_t)n;
    *assigned = true;
    return 0;
}

static msg_t *make_will(conn_t *c, const mqtt_connect_t *k)
{
    msg_t *m = msg_new((const char *)k->will_topic.p, k->will_topic.len, k->will_payload,
                       k->will_payload_len, k->will_qos, k->will_retain,
                       c->version == MQTT_V5 ? &k->will_props : NULL, 0);
    return m;
}

static uint32_t session_expiry_of(conn_t *c, const mqtt_connect_t *k)
{
    if (c->version == MQTT_V5) {
        if (k->props.present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY))
            return k->props.session_expiry;
        return 0;
    }
    if (k->clean)
        return 0;
    uint32_t e = c->w->b->lim.persistent_expiry;
    return e ? e : UINT32_MAX;
}

typedef struct {
    session_t *s;
    bool present;
    conn_t *kick;      /* old connection to close, with the session's reference */
    msg_t *old_will;   /* to publish after the locks are released */
    session_t *discard; /* old session replaced by a clean start */
} attach_t;

/* Finds or creates the session under the registry lock and makes c its connection. */
static int attach_session(conn_t *c, const mqtt_connect_t *k, const char *id, size_t len,
                          attach_t *a)
{
    broker_t *b = c->w->b;
    memset(a, 0, sizeof *a);
    registry_lock(b->registry);
    session_t *s = registry_find(b->registry, id, len);
    if (s) {
        session_lock(s);
        if (s->conn) {
            a->kick = s->conn; /* the session's reference moves to the kick */
            s->conn = NULL;
        }
        /* the old will goes out if this session ends or had no delay; a delayed will is
           cancelled by this new connection to the same session (MQTT 5 3.1.3.2.2) */
        if (s->will && (k->clean || s->will_delay == 0))
            a->old_will = session_release_will(s, clock_ms());
        msg_unref(s->will);
        s->will = NULL;
        s->will_at = 0;
        session_unlock(s);
        if (k->clean) {
            a->discard = session_ref(s);
            registry_remove(b->registry, s);
            s = NULL;
        } else {
            a->present = true;
        }
    }
    if (!s) {
        s = session_new(id, len);
        if (!s) {
            registry_unlock(b->registry);
            return -1;
        }
        registry_add(b->registry, s);
        session_unref(s); /* the registry holds it */
    }
    session_lock(s);
    s->version = c->version;
    s->expiry = session_expiry_of(c, k);
    if (b->store)
        store_session_sync(b->store, s);
    s->conn = conn_ref(c);
    s->worker = c->w;
    if (k->will)
        s->will = make_will(c, k);
    s->will_delay = 0;
    s->will_expiry = 0;
    if (k->will && c->version == MQTT_V5 &&
        (k->will_props.present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY)))
        s->will_expiry = k->will_props.message_expiry;
    if (k->will && c->version == MQTT_V5 &&
        (k->will_props.present & MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY)))
        s->will_delay = k->will_props.will_delay;
    c->session = session_ref(s);
    session_unlock(s);
    registry_unlock(b->registry);
    a->s = s;
    return 0;
}

static void send_connack(conn_t *c, const attach_t *a, const char *id, size_t len, bool assigned,
                         uint16_t server_keepalive, const mqtt_str_t *auth_method)
{
    const limits_t *lim = &c->w->b->lim;
    mqtt_packet_t ack = {.type = MQTT_CONNACK};
    mqtt_props_t *pr = &ack.u.connack.props;
    ack.u.connack.session_present = a->present;
    if (c->version == MQTT_V5) {
        pr->present |= MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM) |
                       MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
        pr->receive_maximum = lim->receive_maximum;
        pr->topic_alias_maximum = c->max_topic_alias;
        if (c->max_qos < 2) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS);
            pr->maximum_qos = c->max_qos;
        }
        if (!lim->retain_available) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_RETAIN_AVAILABLE);
            pr->retain_available = 0;
        }
        if (lim->max_packet_size && lim->max_packet_size < 268435460u) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE);
            pr->maximum_packet_size = lim->max_packet_size;
        }
        if (assigned) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_ID);
            pr->assigned_client_id = (mqtt_str_t){(const uint8_t *)id, (uint16_t)len};
        }
        if (server_keepalive) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE);
            pr->server_keep_alive = server_keepalive;
        }
        if (auth_method && auth_method->len) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD);
            pr->auth_method = *auth_method;
        }
    }
    conn_send(c, &ack);
}

/* Keepalive against max_keepalive: MQTT 5 gets Server Keep Alive, older clients a refusal. */
static int negotiate_keepalive(conn_t *c, const mqtt_connect_t *k, uint16_t *server_ka)
{
    uint16_t max = c->w->b->lim.max_keepalive;
    *server_ka = 0;
    c->keepalive = k->keepalive;
    if (!max || max == 65535 || (k->keepalive && k->keepalive <= max))
        return 0;
    if (c->version != MQTT_V5)
        return refuse(c, 0, MQTT311_CONNACK_ID_REJECTED, "keepalive above max_keepalive");
    *server_ka = max;
    c->keepalive = max;
    return 0;
}

static int check_will(conn_t *c, const mqtt_connect_t *k)
{
    const limits_t *lim = &c->w->b->lim;
    if (!k->will)
        return 0;
    if (k->will_qos > c->max_qos)
        return refuse(c, MQTT_RC_QOS_NOT_SUPPORTED, MQTT311_CONNACK_UNAVAILABLE,
                      "will QoS above the maximum QoS");
    if (k->will_retain && !lim->retain_available)
        return refuse(c, MQTT_RC_RETAIN_NOT_SUPPORTED, MQTT311_CONNACK_UNAVAILABLE,
                      "retained will but retain is not available");
    /* a will is a PUBLISH made later: refused up front, as Mosquitto does */
    if (lim->message_size_limit && k->will_payload_len > lim->message_size_limit)
        return refuse(c, MQTT_RC_PACKET_TOO_LARGE, MQTT311_CONNACK_NOT_AUTHORIZED,
                      "will payload larger than message_size_limit");
    if (!auth_may_publish(c, (const char *)k->will_topic.p, k->will_topic.len))
        return refuse_auth(c, MQTT_RC_NOT_AUTHORIZED, MQTT311_CONNACK_NOT_AUTHORIZED,
                           "will topic not authorized", "will_not_authorized");
    return 0;
}

/* Everything after authentication succeeded: session, CONNACK, resend. */
int connect_accept(conn_t *c, const mqtt_connect_t *k, const mqtt_str_t *auth_method)
{
    broker_t *b = c->w->b;
    char id[4096];
    size_t len = 0;
    bool assigned = false;
    uint16_t server_ka = 0;
    if (choose_client_id(c, k, id, sizeof id, &len, &assigned) < 0 ||
        negotiate_keepalive(c, k, &server_ka) < 0 || check_will(c, k) < 0)
        return -1;
    attach_t a;
    if (attach_session(c, k, id, len, &a) < 0)
        return refuse(c, MQTT_RC_SERVER_UNAVAILABLE, MQTT311_CONNACK_UNAVAILABLE, "out of memory");
    conn_use_session_id(c, a.s);
    c->will_on_close = true;
    c->state = CS_CONNECTED;
    auth_connected(c); /* the session gets this connection's grant before anything is sent */
    c->counted = true;
    send_connack(c, &a, id, len, assigned, server_ka, auth_method);

    if (a.kick) {
        log_info("session_takeover", "client=%s peer=%s", conn_id(c), stream_peer(c->stream));
        worker_post(a.kick->w, INBOX_KICK_CONN, a.kick, MQTT_RC_SESSION_TAKEN_OVER);
    }
    if (a.old_will) {
        broker_publish_count(b, a.old_will);
        msg_unref(a.old_will);
    }
    if (a.discard) {
        session_clear(b, a.discard);
        session_unref(a.discard);
    }
    session_lock(a.s);
    session_resend_inflight(a.s, c);
    session_unlock(a.s);
    conn_schedule(c);

    uint64_t now_connected = atomic_fetch_add(&b->stats.clients_connected, 1) + 1;
    atomic_fetch_add(&b->stats.clients_total, 1);
    if (now_connected > atomic_load(&b->stats.clients_maximum))
        atomic_store(&b->stats.clients_maximum, now_connected);
    log_write(b->lim.connection_messages ? LOGL_INFO : LOGL_DEBUG, "connect",
              "client=%s peer=%s proto=%d clean=%d keepalive=%u session_present=%d%s%s",
              conn_id(c), stream_peer(c->stream), c->version, k->clean, c->keepalive, a.present,
              c->username ? " user=" : "", c->username ? c->username : "");
    return 0;
}

int handle_connect(conn_t *c, mqtt_packet_t *p)
{
    const mqtt_connect_t *k = &p->u.connect;
    c->version = k->level;
    read_client_props(c, k);
    if (k->client_id.len)
        conn_set_client_id(c, (const char *)k->client_id.p, k->client_id.len);
    if (k->has_username)
        conn_set_username(c, (const char *)k->username.p, k->username.len);
    auth_result_t r = auth_connect(c, k);
    switch (r.verdict) {
    case AUTH_ALLOW:
        return connect_accept(c, k, r.method.len ? &r.method : NULL);
    case AUTH_CONTINUE: /* an AUTH exchange or a verification follows; auth.c calls
                           connect_accept() at its end, or has already answered (and closed) */
        if (c->state == CS_NEW)
            c->state = CS_AUTH;
        return c->state == CS_CLOSING ? -1 : 0;
    default:
        return refuse_auth(c, r.rc5, r.rc3, r.why, r.reason);
    }
}

/* The socket is gone: the session goes offline (will, expiry) unless another connection has
 * already taken it over. */
void conn_detach_session(conn_t *c)
{
    session_t *s = c->session;
    broker_t *b = c->w->b;
    if (c->counted) {
        atomic_fetch_sub(&b->stats.clients_connected, 1);
        c->counted = false;
    }
    if (!s)
        return;
    c->session = NULL;
    uint64_t now = clock_ms();
    msg_t *will = NULL;
    bool ends = false, track = false;
    session_lock(s);
    if (s->conn == c) {
        s->conn = NULL;
        conn_unref(c); /* the session's reference */
        ends = s->expiry == 0;
        if (c->will_on_close) {
            will = session_take_will(s, ends, now);
        } else {
            msg_unref(s->will);
            s->will = NULL;
        }
        if (!ends) {
            if (!b->lim.queue_qos0)
                session_drop_qos0(b, s);
            s->offline_since = now;
            s->worker = c->w;
            track = true;
        }
    }
    session_unlock(s);
    if (will) {
        broker_publish_count(b, will);
        msg_unref(will);
    }
    if (ends)
        session_discard_offline(b, s);
    if (track)
        worker_track_offline(c->w, s);
    session_unref(s);
}
