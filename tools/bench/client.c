/*
 * tools/bench/client.c: one MQTT client of the load generator: CONNECT, SUBSCRIBE, publishing
 * under a rate and an in-flight window, acknowledging deliveries, keepalive and a clean
 * DISCONNECT. All MQTT bytes go through proto/ (proto_frame, proto_decode as a client,
 * proto_encode, proto_encode_publish_head); this file only sequences them.
 *
 * Steady state allocates nothing: packets are appended to one of two reusable output buffers
 * (one being written while the other fills), and reads are parsed in place from the loop's
 * read buffer; only a packet split across reads is copied, into a per-client carry buffer.
 */
#include "tools/bench/bench.h"

#include <stdlib.h>
#include <string.h>

#define CLOSE_GRACE_NS 2000000000ull /* how long to wait for the broker to close after DISCONNECT */

static void drop(bench_client_t *c);

/* Grows b to take n more bytes. New memory is zeroed so payload padding is never uninitialised. */
static int buf_reserve(bbuf_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    memset(p + b->cap, 0, cap - b->cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

static int put_packet(bench_client_t *c, const mqtt_packet_t *pkt)
{
    uint8_t v = (uint8_t)g_cfg.mqtt;
    bbuf_t *b = &c->out[c->fill];
    size_t n = proto_encoded_size(pkt, v);
    if (!n || buf_reserve(b, n))
        return -1;
    size_t w = proto_encode(pkt, v, b->p + b->len, b->cap - b->len);
    if (!w)
        return -1;
    b->len += w;
    return 0;
}

static int put_ack(bench_client_t *c, mqtt_type_t type, uint16_t id)
{
    mqtt_packet_t pkt = {.type = type, .flags = type == MQTT_PUBREL ? 2 : 0};
    pkt.u.ack.id = id;
    return put_packet(c, &pkt);
}

/* Hands the filled buffer to the transport unless a write is already under way. */
static void flush(bench_client_t *c)
{
    if (c->writing || !c->tcp_up || c->conn.closing)
        return;
    bbuf_t *b = &c->out[c->fill];
    if (!b->len)
        return;
    if (c->conn.tp->write(&c->conn, b->p, b->len)) {
        drop(c);
        return;
    }
    c->writing = true;
    c->fill ^= 1;
    c->t_last_tx = now_ns();
}

static uint16_t take_id(bench_client_t *c)
{
    do {
        if (++c->next_id == 0)
            c->next_id = 1;
    } while (c->ids[c->next_id]);
    c->ids[c->next_id] = 1;
    return c->next_id;
}

/* Appends one PUBLISH whose payload starts with the send time, sequence and publisher index. */
static int put_publish(bench_client_t *c, uint64_t now)
{
    mqtt_packet_t pkt = {.type = MQTT_PUBLISH, .flags = (uint8_t)(g_cfg.qos << 1)};
    mqtt_publish_t *p = &pkt.u.publish;
    bbuf_t *b = &c->out[c->fill];
    p->qos = (uint8_t)g_cfg.qos;
    p->topic.p = (const uint8_t *)c->topic;
    p->topic.len = c->topic_len;
    p->payload_len = g_cfg.size;
    if (buf_reserve(b, 64u + c->topic_len + g_cfg.size))
        return -1;
    if (p->qos)
        p->id = take_id(c);
    size_t h = proto_encode_publish_head(&pkt, (uint8_t)g_cfg.mqtt, b->p + b->len, b->cap - b->len);
    if (!h) {
        if (p->qos)
            c->ids[p->id] = 0;
        return -1;
    }
    /* The padding after the header is whatever the buffer held: brokers do not look at it. */
    uint8_t *pl = b->p + b->len + h;
    uint32_t seq = (uint32_t)c->seq;
    memcpy(pl, &now, 8);
    memcpy(pl + 8, &seq, 4);
    memcpy(pl + 12, &c->pub_id, 4);
    b->len += h + g_cfg.size;
    c->seq++;
    bench_stats_t *st = &c->th->st;
    ctr_add(&st->sent, 1);
    if (in_window(now))
        ctr_add(&st->sent_win, 1);
    if (p->qos) {
        c->inflight++;
        ctr_add(&st->inflight, 1);
    }
    return 0;
}

/*
 * How many more messages the end-to-end window allows (see bench.h). Refills wait until a quarter
 * of the window is free, so they come in batches rather than one write per delivery.
 */
static uint64_t e2e_room(bench_client_t *c)
{
    uint64_t low = c->seq;
    for (uint32_t i = 0; i < c->npeers; i++) {
        uint64_t m = atomic_load_explicit(&c->peers[i]->mark, memory_order_relaxed);
        if (m < low)
            low = m;
    }
    uint64_t used = c->seq - low, w = g_cfg.inflight;
    c->stalled = used > w - (w + 3) / 4;
    return c->stalled ? 0 : w - used;
}

void client_pump(bench_client_t *c)
{
    if (c->role != ROLE_PUB || c->state != CS_READY || run_phase() != PH_RUN)
        return;
    uint64_t now = now_ns();
    uint64_t allowed;
    if (g_cfg.rate) {
        double dt = (double)(now - atomic_load(&g_run.t_run)) / 1e9;
        uint64_t due = (uint64_t)(dt * g_cfg.rate) + 1;
        allowed = due > c->seq ? due - c->seq : 0;
    } else {
        allowed = e2e_room(c);
        if (c->stalled)
            c->th->stalled = true;
    }
    /* At most one batch waits behind the write in flight: the generator never buffers more
     * than the broker takes. */
    bbuf_t *b = &c->out[c->fill];
    while (allowed && b->len < BENCH_BATCH) {
        if (g_cfg.qos && c->inflight >= c->window)
            break;
        if (put_publish(c, now)) {
            drop(c);
            return;
        }
        allowed--;
    }
    flush(c);
}

static void send_connect(bench_client_t *c)
{
    mqtt_packet_t pkt = {.type = MQTT_CONNECT};
    mqtt_connect_t *k = &pkt.u.connect;
    static const char v31[] = "MQIsdp", v4[] = "MQTT", method[] = "ace";
    k->protocol_name.p = (const uint8_t *)(g_cfg.mqtt == MQTT_V31 ? v31 : v4);
    k->protocol_name.len = g_cfg.mqtt == MQTT_V31 ? 6 : 4;
    k->level = (uint8_t)g_cfg.mqtt;
    /* --durable: 3.1.1 keeps the session when Clean Session is 0; MQTT 5 when the Session
     * Expiry Interval is above 0 (Clean Start stays 1: the client ids are new anyway). */
    k->clean = !g_cfg.durable || g_cfg.mqtt == MQTT_V5;
    if (g_cfg.durable && g_cfg.mqtt == MQTT_V5) {
        k->props.present |= MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
        k->props.session_expiry = 3600;
    }
    k->keepalive = g_cfg.keepalive;
    k->client_id.p = (const uint8_t *)c->client_id;
    k->client_id.len = (uint16_t)strlen(c->client_id);
    uint8_t *auth = NULL;
    if (g_cfg.ace) {
        /* Form A: [u16 token length][token][PoP over this session's exporter value] */
        const uint8_t *ex = bench_tls_exporter(&c->conn);
        size_t n = 0;
        if (!ex || !(auth = bench_ace_auth_data(ex, &n))) {
            fprintf(stderr, "acemq-bench: %s: no TLS exporter value or PoP for ACE\n",
                    c->client_id);
            drop(c);
            return;
        }
        k->props.present |= MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD) |
                            MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA);
        k->props.auth_method = (mqtt_str_t){(const uint8_t *)method, 3};
        k->props.auth_data = (mqtt_str_t){auth, (uint16_t)n};
    }
    int rc = put_packet(c, &pkt);
    free(auth);
    if (rc)
        drop(c);
    else
        flush(c);
}

static void send_subscribe(bench_client_t *c)
{
    mqtt_sub_t s = {.filter = {(const uint8_t *)c->topic, c->topic_len},
                    .options = (uint8_t)g_cfg.qos};
    mqtt_packet_t pkt = {.type = MQTT_SUBSCRIBE, .flags = 2};
    pkt.u.subscribe.id = 1;
    pkt.u.subscribe.n = 1;
    pkt.u.subscribe.subs = &s;
    if (put_packet(c, &pkt))
        drop(c);
}

void client_start(bench_client_t *c)
{
    c->state = CS_CONNECTING;
    c->t_start = now_ns();
    c->ctx = (proto_ctx_t){.role = PROTO_ROLE_CLIENT, .version = (uint8_t)g_cfg.mqtt};
    c->conn.tp = g_cfg.tp;
    int rc = c->conn.tp->open(&c->conn, &c->th->loop, (const struct sockaddr *)&g_cfg.addr);
    if (rc)
        drop(c);
}

/* A connection attempt that ended before CONNACK (or SUBACK) counts against connects. */
static void count_failure(bench_client_t *c)
{
    bench_stats_t *st = &c->th->st;
    /* At the end the generator itself cuts what is under way: not the broker's failure. */
    if (run_phase() == PH_DONE)
        return;
    if (c->state == CS_READY) {
        ctr_add(&st->disconnects, 1);
        return;
    }
    if (c->state == CS_CLOSING || c->state == CS_CLOSED || c->state == CS_NEW)
        return;
    ctr_add(&st->conn_fail, 1);
    if (c->role == ROLE_IDLE) {
        ctr_add(&st->idle_done, 1);
        c->th->pending--;
        loop_idle_next(c->th);
    }
}

static void drop(bench_client_t *c)
{
    count_failure(c);
    c->state = CS_CLOSING;
    c->conn.tp->close(&c->conn);
}

void client_disconnect(bench_client_t *c)
{
    switch (c->state) {
    case CS_NEW:
    case CS_CLOSED:
    case CS_CLOSING:
        return;
    case CS_CONNECTING:
        drop(c);
        return;
    default:
        break;
    }
    mqtt_packet_t pkt = {.type = MQTT_DISCONNECT};
    if (!c->tcp_up || put_packet(c, &pkt)) {
        drop(c);
        return;
    }
    c->state = CS_CLOSING;
    c->t_closing = now_ns();
    flush(c);
}

static void on_connack(bench_client_t *c, const mqtt_connack_t *ca, uint64_t now)
{
    bench_stats_t *st = &c->th->st;
    if (c->state == CS_CONNACK && ca->rc != 0) {
        int none = -1;
        ctr_add(&st->refused, 1);
        if (atomic_compare_exchange_strong(&g_run.first_refusal, &none, ca->rc))
            fprintf(stderr, "acemq-bench: %s: CONNACK refused the connection: 0x%02x\n",
                    c->client_id, ca->rc);
    }
    if (c->state != CS_CONNACK || ca->rc != 0) {
        drop(c);
        return;
    }
    c->ctx.connected = true;
    ctr_add(&st->conn_ok, 1);
    if (c->role != ROLE_STORM || in_window(now)) {
        hist_record(&st->conn_lat, now - c->t_start);
        ctr_add(&st->conn_win, c->role == ROLE_STORM);
    }
    if ((ca->props.present & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM)) &&
        ca->props.receive_maximum < c->window)
        c->window = ca->props.receive_maximum;
    switch (c->role) {
    case ROLE_SUB:
        c->state = CS_SUBACK;
        send_subscribe(c);
        break;
    case ROLE_PUB:
        c->state = CS_READY;
        ctr_add(&st->pubs_ready, 1);
        break;
    case ROLE_STORM:
        c->state = CS_READY;
        client_disconnect(c);
        break;
    case ROLE_IDLE:
        c->state = CS_READY;
        ctr_add(&st->idle_done, 1);
        c->th->pending--;
        loop_idle_next(c->th);
        break;
    }
}

static void on_suback(bench_client_t *c, const mqtt_suback_t *sa)
{
    if (c->state != CS_SUBACK || sa->n != 1 || sa->rcs[0] >= 0x80) {
        drop(c);
        return;
    }
    c->state = CS_READY;
    ctr_add(&c->th->st.subs_ready, 1);
}

/* A message for a subscriber: count it, time it, and tick its sequence number off. */
static void on_message(bench_client_t *c, const mqtt_publish_t *p, uint64_t now)
{
    bench_stats_t *st = &c->th->st;
    ctr_add(&st->recv, 1);
    if (p->qos == 1)
        put_ack(c, MQTT_PUBACK, p->id);
    else if (p->qos == 2)
        put_ack(c, MQTT_PUBREC, p->id);
    if (p->payload_len < BENCH_HDR)
        return;
    uint64_t ts;
    uint32_t seq, pub;
    memcpy(&ts, p->payload, 8);
    memcpy(&seq, p->payload + 8, 4);
    memcpy(&pub, p->payload + 12, 4);
    if (in_window(now)) {
        ctr_add(&st->recv_win, 1);
        ctr_add(&st->bytes_win, p->payload_len);
    }
    if (in_window(ts) && now >= ts)
        hist_record(&st->lat, now - ts);
    if (pub - c->trk_first < c->trk_n) {
        track_t *t = &c->trk[pub - c->trk_first];
        if (t->lock)
            uv_mutex_lock(t->lock);
        track_mark(t, seq);
        if (t->lock)
            uv_mutex_unlock(t->lock);
    }
}

/* PUBACK / PUBREC / PUBCOMP for a publisher: move the packet id along, free the window slot. */
static void on_pub_ack(bench_client_t *c, mqtt_type_t type, const mqtt_ack_t *a)
{
    if (!c->ids || !a->id || c->ids[a->id] == 0)
        return; /* not ours: ignore rather than drop, a broker may repeat an ack */
    if (type == MQTT_PUBREC && a->rc < 0x80) {
        c->ids[a->id] = 2;
        put_ack(c, MQTT_PUBREL, a->id);
        return;
    }
    if (a->rc >= 0x80)
        ctr_add(&c->th->st.proto_err, 1);
    c->ids[a->id] = 0;
    c->inflight--;
    ctr_add(&c->th->st.inflight, (uint64_t)-1);
}

static void on_packet(bench_client_t *c, const mqtt_packet_t *pkt, uint64_t now)
{
    switch (pkt->type) {
    case MQTT_CONNACK:
        on_connack(c, &pkt->u.connack, now);
        break;
    case MQTT_SUBACK:
        on_suback(c, &pkt->u.suback);
        break;
    case MQTT_PUBLISH:
        on_message(c, &pkt->u.publish, now);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP:
        on_pub_ack(c, pkt->type, &pkt->u.ack);
        break;
    case MQTT_PUBREL:
        put_ack(c, MQTT_PUBCOMP, pkt->u.ack.id);
        break;
    case MQTT_DISCONNECT:
        drop(c);
        break;
    default:
        break; /* PINGRESP, UNSUBACK, AUTH: nothing to do */
    }
}

/* Decodes and acts on one whole packet. Returns -1 when the connection was dropped. */
static int handle(bench_client_t *c, const uint8_t *frame, size_t len, uint64_t now)
{
    mqtt_packet_t pkt;
    const char *err = NULL;
    mqtt_rc_t rc = proto_decode(&c->ctx, frame, len, &pkt, &err);
    if (rc != MQTT_RC_SUCCESS) {
        if (!ctr_get(&c->th->st.proto_err))
            fprintf(stderr, "acemq-bench: %s: bad packet from broker: %s\n", c->client_id,
                    err ? err : proto_rc_name(rc));
        ctr_add(&c->th->st.proto_err, 1);
        drop(c);
        return -1;
    }
    on_packet(c, &pkt, now);
    proto_packet_free(&pkt);
    return c->conn.closing ? -1 : 0;
}

/*
 * Completes the packet carried from the previous read with bytes from p. Returns how many bytes
 * of p it used, or -1 when the connection was dropped.
 */
static long finish_carry(bench_client_t *c, const uint8_t *p, size_t n, uint64_t now)
{
    size_t off = 0;
    for (;;) {
        size_t hl, need;
        uint32_t rl;
        int fr = proto_frame(c->rx.p, c->rx.len, 0, &hl, &rl);
        if (fr < 0) {
            ctr_add(&c->th->st.proto_err, 1);
            drop(c);
            return -1;
        }
        need = fr == PROTO_FRAME_NEED_MORE ? 1 : hl + rl - c->rx.len;
        if (fr == 0 && need == 0) {
            c->rx.len = 0;
            return handle(c, c->rx.p, hl + rl, now) ? -1 : (long)off;
        }
        if (off == n)
            return (long)off;
        size_t take = n - off < need ? n - off : need;
        if (buf_reserve(&c->rx, take)) {
            drop(c);
            return -1;
        }
        memcpy(c->rx.p + c->rx.len, p + off, take);
        c->rx.len += take;
        off += take;
    }
}

void bench_conn_on_data(bench_conn_t *conn, const uint8_t *p, size_t n)
{
    bench_client_t *c = (bench_client_t *)conn;
    uint64_t now = now_ns();
    size_t off = 0;
    if (c->rx.len) {
        long used = finish_carry(c, p, n, now);
        if (used < 0)
            return;
        off = (size_t)used;
    }
    while (off < n && !c->rx.len) {
        size_t hl;
        uint32_t rl;
        int fr = proto_frame(p + off, n - off, 0, &hl, &rl);
        if (fr < 0) {
            ctr_add(&c->th->st.proto_err, 1);
            drop(c);
            return;
        }
        if (fr == PROTO_FRAME_NEED_MORE || hl + rl > n - off) {
            if (buf_reserve(&c->rx, n - off)) {
                drop(c);
                return;
            }
            memcpy(c->rx.p, p + off, n - off);
            c->rx.len = n - off;
            break;
        }
        if (handle(c, p + off, hl + rl, now))
            return;
        off += hl + rl;
    }
    client_pump(c);
    flush(c);
    /* Deliveries may have opened the window of publishers stalled on this same loop. */
    if (c->role == ROLE_SUB && c->th->stalled)
        loop_pump_all(c->th);
}

void bench_conn_on_open(bench_conn_t *conn, int status)
{
    bench_client_t *c = (bench_client_t *)conn;
    if (status) {
        drop(c);
        return;
    }
    c->tcp_up = true;
    ctr_add(&c->th->st.open_conns, 1);
    c->state = CS_CONNACK;
    send_connect(c);
}

void bench_conn_on_eof(bench_conn_t *conn, int status)
{
    (void)status;
    drop((bench_client_t *)conn);
}

void bench_conn_on_written(bench_conn_t *conn, int status)
{
    bench_client_t *c = (bench_client_t *)conn;
    c->writing = false;
    c->out[c->fill ^ 1].len = 0;
    if (status) {
        drop(c);
        return;
    }
    client_pump(c);
    flush(c);
}

void bench_conn_on_closed(bench_conn_t *conn)
{
    bench_client_t *c = (bench_client_t *)conn;
    if (c->tcp_up)
        ctr_add(&c->th->st.open_conns, (uint64_t)-1);
    c->tcp_up = false;
    c->writing = false;
    c->out[0].len = c->out[1].len = 0;
    c->rx.len = 0;
    c->fill = 0;
    c->state = CS_CLOSED;
    if (c->role == ROLE_STORM && run_phase() == PH_RUN)
        client_start(c);
}

/* Timeouts and keepalive, from the loop's 250 ms sweep. */
void client_sweep(bench_client_t *c, uint64_t now)
{
    uint64_t limit = (uint64_t)(g_cfg.connect_timeout * 1e9);
    switch (c->state) {
    case CS_CONNECTING:
    case CS_CONNACK:
    case CS_SUBACK:
        if (now - c->t_start > limit)
            drop(c);
        break;
    case CS_CLOSING:
        if (!c->conn.closing && now - c->t_closing > CLOSE_GRACE_NS)
            c->conn.tp->close(&c->conn);
        break;
    case CS_READY:
        if (g_cfg.keepalive && now - c->t_last_tx > (uint64_t)g_cfg.keepalive * 500000000ull) {
            mqtt_packet_t pkt = {.type = MQTT_PINGREQ};
            if (put_packet(c, &pkt) == 0)
                flush(c);
        }
        break;
    default:
        break;
    }
}

void client_release(bench_client_t *c)
{
    free(c->out[0].p);
    free(c->out[1].p);
    free(c->rx.p);
    free(c->ids);
    free(c->peers);
}
