/*
 * broker/store_format.c: the store's bytes. CRC32, the file header, and the encoding of each
 * record type (see store_int.h for the list).
 *
 * Integers are little endian, strings carry a u16 length, payloads a u32 length. A message's
 * expiry is written as wall-clock milliseconds, because the broker clock (CLOCK_MONOTONIC)
 * restarts with the machine; everything else is independent of time.
 *
 * The checksum is the IEEE CRC32 (zlib's), table driven: it detects torn and damaged records,
 * it is not a defence against someone who writes the file on purpose.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/store_int.h"

const uint8_t store_file_magic[8] = {'A', 'C', 'E', 'M', 'Q', 'D', 'B', 0};

static const char *const rec_names[SR_MAX] = {
    "?", "session", "session_delete", "subscribe", "unsubscribe", "message", "queued",
    "sent", "pubrec", "done", "dropped", "incoming_qos2", "incoming_pubrel", "retain_set",
    "retain_clear", "inflight",
};

const char *store_rec_name(unsigned type)
{
    return type < SR_MAX ? rec_names[type] : "?";
}

/* ---- CRC32 ------------------------------------------------------------------------------------ */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t store_crc32(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* ---- little-endian buffers -------------------------------------------------------------------- */

int sbuf_reserve(sbuf_t *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

void sbuf_free(sbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void put_le(uint8_t *at, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        at[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *at, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)at[i] << (8 * i);
    return v;
}

/* Writers assume the space was reserved (rec_size() is an upper bound). */
typedef struct {
    uint8_t *at;
} wr_t;

static void w_int(wr_t *w, uint64_t v, int n)
{
    put_le(w->at, v, n);
    w->at += n;
}

static void w_bytes(wr_t *w, const void *p, size_t n, int len_bytes)
{
    w_int(w, n, len_bytes);
    if (n)
        memcpy(w->at, p, n);
    w->at += n;
}

typedef struct {
    const uint8_t *at, *end;
    bool bad;
} rd_t;

static uint64_t r_int(rd_t *r, int n)
{
    if (r->bad || r->end - r->at < n) {
        r->bad = true;
        return 0;
    }
    uint64_t v = get_le(r->at, n);
    r->at += n;
    return v;
}

static const uint8_t *r_bytes(rd_t *r, int len_bytes, uint32_t *len)
{
    *len = (uint32_t)r_int(r, len_bytes);
    if (r->bad || (size_t)(r->end - r->at) < *len) {
        r->bad = true;
        *len = 0;
        return NULL;
    }
    const uint8_t *p = r->at;
    r->at += *len;
    return p;
}

void store_header_make(uint8_t out[STORE_HEADER_SIZE], uint32_t version)
{
    memcpy(out, store_file_magic, 8);
    put_le(out + 8, version, 4);
    put_le(out + 12, store_crc32(0, out, 12), 4);
}

/* ---- messages --------------------------------------------------------------------------------- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t msg_size(const msg_t *m)
{
    const mqtt_props_t *p = &m->props;
    size_t n = 2 + 8 + 2 + m->topic_len + 4 + m->payload_len + 8 + 1;
    n += 2 + p->content_type.len + 2 + p->response_topic.len + 2 + p->correlation_data.len + 4;
    for (uint32_t i = 0; i < p->n_user; i++)
        n += 4 + p->user[i].name.len + p->user[i].value.len;
    return n;
}

static void msg_put(wr_t *w, const msg_t *m)
{
    const mqtt_props_t *p = &m->props;
    uint64_t expire = 0;
    if (m->expire_at) {
        uint64_t now = clock_ms();
        expire = wall_ms() + (m->expire_at > now ? m->expire_at - now : 0);
    }
    w_int(w, m->qos, 1);
    w_int(w, m->retain, 1);
    w_int(w, expire, 8);
    w_bytes(w, m->topic, m->topic_len, 2);
    w_bytes(w, m->payload, m->payload_len, 4);
    w_int(w, p->present, 8);
    w_int(w, p->payload_format, 1);
    w_bytes(w, p->content_type.p, p->content_type.len, 2);
    w_bytes(w, p->response_topic.p, p->response_topic.len, 2);
    w_bytes(w, p->correlation_data.p, p->correlation_data.len, 2);
    w_int(w, p->n_user, 4);
    for (uint32_t i = 0; i < p->n_user; i++) {
        w_bytes(w, p->user[i].name.p, p->user[i].name.len, 2);
        w_bytes(w, p->user[i].value.p, p->user[i].value.len, 2);
    }
}

static mqtt_str_t r_str(rd_t *r)
{
    uint32_t len;
    const uint8_t *p = r_bytes(r, 2, &len);
    return (mqtt_str_t){p, (uint16_t)len};
}

static msg_t *msg_get(rd_t *r)
{
    mqtt_props_t props;
    memset(&props, 0, sizeof props);
    uint8_t qos = (uint8_t)r_int(r, 1);
    bool retain = r_int(r, 1) != 0;
    uint64_t expire = r_int(r, 8);
    mqtt_str_t topic = r_str(r);
    uint32_t plen;
    const uint8_t *payload = r_bytes(r, 4, &plen);
    props.present = r_int(r, 8);
    props.payload_format = (uint8_t)r_int(r, 1);
    props.content_type = r_str(r);
    props.response_topic = r_str(r);
    props.correlation_data = r_str(r);
    props.n_user = (uint32_t)r_int(r, 4);
    if (r->bad || qos > 2 || topic.len == 0 || props.n_user > (size_t)(r->end - r->at) / 4) {
        r->bad = true;
        return NULL;
    }
    mqtt_user_prop_t *user = props.n_user ? calloc(props.n_user, sizeof *user) : NULL;
    if (props.n_user && !user)
        return NULL;
    for (uint32_t i = 0; i < props.n_user; i++) {
        user[i].name = r_str(r);
        user[i].value = r_str(r);
    }
    props.user = user;
    msg_t *m = NULL;
    if (!r->bad) {
        /* message expiry is ours to set below, not a pass-through property */
        props.present &= ~MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY);
        m = msg_new((const char *)topic.p, topic.len, payload, plen, qos, retain, &props, 0);
        if (m && expire) {
            uint64_t now_wall = wall_ms(), now = clock_ms();
            m->expire_at = expire > now_wall ? now + (expire - now_wall) : (now ? now : 1);
        }
    }
    free(user);
    return m;
}

/* ---- records ---------------------------------------------------------------------------------- */

static size_t payload_size(const store_rec_t *r)
{
    switch (r->type) {
    case SR_SESS: return 8 + 4 + 1 + 2 + 2 + r->str_len;
    case SR_SESS_DEL: return 8;
    case SR_SUB: return 8 + 1 + 4 + 2 + r->str_len;
    case SR_UNSUB: return 8 + 2 + r->str_len;
    case SR_MSG: return 8 + msg_size(r->msg);
    case SR_QADD: return 8 + 8 + 3 + 4u * r->n_sub_ids;
    case SR_QSENT: return 8 + 8 + 2;
    case SR_QPUBREC: case SR_QDONE: case SR_INADD: case SR_INDEL: return 8 + 2;
    case SR_QDROP: return 8 + 8;
    case SR_RETSET: return msg_size(r->msg);
    case SR_RETCLR: return 2 + r->str_len;
    case SR_OUT: return 8 + 8 + 2 + 1 + 3 + 4u * r->n_sub_ids;
    default: return 0;
    }
}

static void put_delivery(wr_t *w, const store_rec_t *r)
{
    w_int(w, r->qos, 1);
    w_int(w, r->retain, 1);
    w_int(w, r->n_sub_ids, 1);
    for (int i = 0; i < r->n_sub_ids; i++)
        w_int(w, r->sub_ids[i], 4);
}

static void put_payload(wr_t *w, const store_rec_t *r)
{
    if (r->type != SR_RETSET && r->type != SR_RETCLR)
        w_int(w, r->type == SR_MSG ? r->mid : r->sid, 8);
    switch (r->type) {
    case SR_SESS:
        w_int(w, r->expiry, 4);
        w_int(w, r->version, 1);
        w_int(w, r->pid, 2);
        w_bytes(w, r->str, r->str_len, 2);
        break;
    case SR_SUB:
        w_int(w, r->options, 1);
        w_int(w, r->sub_id, 4);
        w_bytes(w, r->str, r->str_len, 2);
        break;
    case SR_UNSUB: case SR_RETCLR:
        w_bytes(w, r->str, r->str_len, 2);
        break;
    case SR_MSG: case SR_RETSET:
        msg_put(w, r->msg);
        break;
    case SR_QADD:
        w_int(w, r->mid, 8);
        put_delivery(w, r);
        break;
    case SR_QSENT:
        w_int(w, r->mid, 8);
        w_int(w, r->pid, 2);
        break;
    case SR_QPUBREC: case SR_QDONE: case SR_INADD: case SR_INDEL:
        w_int(w, r->pid, 2);
        break;
    case SR_QDROP:
        w_int(w, r->mid, 8);
        break;
    case SR_OUT:
        w_int(w, r->mid, 8);
        w_int(w, r->pid, 2);
        w_int(w, r->state, 1);
        put_delivery(w, r);
        break;
    default:
        break;
    }
}

int store_rec_encode(sbuf_t *b, const store_rec_t *r)
{
    size_t plen = payload_size(r);
    if (plen == 0 || plen > STORE_MAX_PAYLOAD)
        return -EINVAL;
    if (sbuf_reserve(b, plen + STORE_REC_OVERHEAD) < 0)
        return -ENOMEM;
    uint8_t *start = b->p + b->len;
    wr_t w = {start};
    w_int(&w, STORE_REC_MAGIC, 1);
    w_int(&w, r->type, 1);
    w_int(&w, plen, 4);
    put_payload(&w, r);
    size_t body = (size_t)(w.at - start);
    w_int(&w, store_crc32(0, start, body), 4);
    b->len += (size_t)(w.at - start);
    return 0;
}

int store_frame_check(const uint8_t *p, size_t avail, uint8_t *type, const uint8_t **payload,
                      uint32_t *plen, size_t *total)
{
    if (avail < 1)
        return FRAME_SHORT;
    if (p[0] != STORE_REC_MAGIC)
        return FRAME_BAD;
    if (avail < 6)
        return FRAME_SHORT;
    if (p[1] == 0 || p[1] >= SR_MAX)
        return FRAME_BAD;
    uint32_t len = (uint32_t)get_le(p + 2, 4);
    if (len == 0 || len > STORE_MAX_PAYLOAD)
        return FRAME_BAD;
    if (avail < (size_t)len + STORE_REC_OVERHEAD)
        return FRAME_SHORT;
    if (store_crc32(0, p, 6 + (size_t)len) != (uint32_t)get_le(p + 6 + len, 4))
        return FRAME_BAD;
    *type = p[1];
    *payload = p + 6;
    *plen = len;
    *total = (size_t)len + STORE_REC_OVERHEAD;
    return FRAME_OK;
}

static void get_delivery(rd_t *rd, store_rec_t *r)
{
    r->qos = (uint8_t)r_int(rd, 1);
    r->retain = (uint8_t)r_int(rd, 1);
    r->n_sub_ids = (uint8_t)r_int(rd, 1);
    if (r->n_sub_ids > MAX_SUB_IDS || r->qos > 2) {
        rd->bad = true;
        return;
    }
    for (int i = 0; i < r->n_sub_ids; i++)
        r->sub_ids[i] = (uint32_t)r_int(rd, 4);
}

static const char *get_str(rd_t *rd, uint16_t *len)
{
    uint32_t n;
    const uint8_t *p = r_bytes(rd, 2, &n);
    *len = (uint16_t)n;
    return (const char *)p;
}

int store_rec_decode(uint8_t type, const uint8_t *payload, uint32_t len, store_rec_t *r)
{
    memset(r, 0, sizeof *r);
    r->type = type;
    rd_t rd = {payload, payload + len, false};
    if (type != SR_RETSET && type != SR_RETCLR) {
        uint64_t id = r_int(&rd, 8);
        if (type == SR_MSG)
            r->mid = id;
        else
            r->sid = id;
    }
    switch (type) {
    case SR_SESS:
        r->expiry = (uint32_t)r_int(&rd, 4);
        r->version = (uint8_t)r_int(&rd, 1);
        r->pid = (uint16_t)r_int(&rd, 2);
        r->str = get_str(&rd, &r->str_len);
        break;
    case SR_SUB:
        r->options = (uint8_t)r_int(&rd, 1);
        r->sub_id = (uint32_t)r_int(&rd, 4);
        r->str = get_str(&rd, &r->str_len);
        break;
    case SR_UNSUB: case SR_RETCLR:
        r->str = get_str(&rd, &r->str_len);
        break;
    case SR_MSG: case SR_RETSET:
        r->msg = msg_get(&rd);
        if (!r->msg && !rd.bad)
            return -ENOMEM;
        break;
    case SR_QADD:
        r->mid = r_int(&rd, 8);
        get_delivery(&rd, r);
        break;
    case SR_QSENT:
        r->mid = r_int(&rd, 8);
        r->pid = (uint16_t)r_int(&rd, 2);
        break;
    case SR_QPUBREC: case SR_QDONE: case SR_INADD: case SR_INDEL:
        r->pid = (uint16_t)r_int(&rd, 2);
        break;
    case SR_QDROP:
        r->mid = r_int(&rd, 8);
        break;
    case SR_OUT:
        r->mid = r_int(&rd, 8);
        r->pid = (uint16_t)r_int(&rd, 2);
        r->state = (uint8_t)r_int(&rd, 1);
        get_delivery(&rd, r);
        break;
    case SR_SESS_DEL:
        break;
    default:
        rd.bad = true;
    }
    if (rd.bad || rd.at != rd.end) {
        msg_unref(r->msg);
        r->msg = NULL;
        return -EBADMSG;
    }
    return 0;
}
