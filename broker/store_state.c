/*
 * broker/store_state.c: the store's live state, i.e. what a snapshot holds, and the one function
 * that applies a record to it.
 *
 * Replay at start and the writer thread at run time both go through store_state_apply(), so the
 * state after a restart is the state the writer had built from the same records. Records that
 * name a session or a message the state does not know are not errors: the writer filters them
 * out (a delivery for a session that is not durable), and a replay of a file cut after a torn
 * record may leave a message without deliveries, which store_state_sweep() forgets.
 *
 * live_bytes follows the size a snapshot would have (about: per entry, the size of its record),
 * for the compaction ratio.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/store_int.h"

/* ---- a small chained hash table, keys are bytes ---------------------------------------------- */

typedef struct kv_node {
    struct kv_node *next;
    void *val;
    size_t len;
    uint64_t hash;
    unsigned char key[];
} kv_node_t;

struct kv {
    kv_node_t **b;
    size_t n_b, count;
};

static uint64_t hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

kv_t *kv_new(void)
{
    kv_t *t = calloc(1, sizeof *t);
    if (t) {
        t->n_b = 64;
        t->b = calloc(t->n_b, sizeof *t->b);
        if (!t->b) {
            free(t);
            return NULL;
        }
    }
    return t;
}

void kv_free(kv_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_b; i++)
        for (kv_node_t *n = t->b[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
    free(t->b);
    free(t);
}

static kv_node_t **kv_find(const kv_t *t, const void *key, size_t len, uint64_t h)
{
    kv_node_t **pp = &t->b[h & (t->n_b - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0)
            break;
    return pp;
}

void *kv_get(const kv_t *t, const void *key, size_t len)
{
    kv_node_t *n = *kv_find(t, key, len, hash_bytes(key, len));
    return n ? n->val : NULL;
}

static void kv_grow(kv_t *t)
{
    size_t n_b = t->n_b * 2;
    kv_node_t **b = calloc(n_b, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < t->n_b; i++)
        for (kv_node_t *n = t->b[i], *next; n; n = next) {
            next = n->next;
            n->next = b[n->hash & (n_b - 1)];
            b[n->hash & (n_b - 1)] = n;
        }
    free(t->b);
    t->b = b;
    t->n_b = n_b;
}

int kv_put(kv_t *t, const void *key, size_t len, void *val)
{
    uint64_t h = hash_bytes(key, len);
    kv_node_t **pp = kv_find(t, key, len, h);
    if (*pp) {
        (*pp)->val = val;
        return 0;
    }
    kv_node_t *n = malloc(sizeof *n + len);
    if (!n)
        return -ENOMEM;
    n->next = NULL;
    n->val = val;
    n->len = len;
    n->hash = h;
    memcpy(n->key, key, len);
    *pp = n;
    if (++t->count > t->n_b)
        kv_grow(t);
    return 0;
}

void *kv_del(kv_t *t, const void *key, size_t len)
{
    kv_node_t **pp = kv_find(t, key, len, hash_bytes(key, len));
    kv_node_t *n = *pp;
    if (!n)
        return NULL;
    void *val = n->val;
    *pp = n->next;
    free(n);
    t->count--;
    return val;
}

size_t kv_count(const kv_t *t)
{
    return t->count;
}

void kv_foreach(const kv_t *t, void (*cb)(void *arg, const void *key, size_t len, void *val),
                void *arg)
{
    for (size_t i = 0; i < t->n_b; i++)
        for (kv_node_t *n = t->b[i]; n; n = n->next)
            cb(arg, n->key, n->len, n->val);
}

/* ---- the state -------------------------------------------------------------------------------- */

enum { SZ_SESS = 25, SZ_SUB = 25, SZ_DELIVERY = 40, SZ_IN = 20, SZ_MSG = 40 };

int store_state_init(store_state_t *s)
{
    memset(s, 0, sizeof *s);
    s->sessions = kv_new();
    s->clients = kv_new();
    s->msgs = kv_new();
    s->msg_ptrs = kv_new();
    s->retained = kv_new();
    s->next_sid = s->next_mid = 1;
    if (!s->sessions || !s->clients || !s->msgs || !s->msg_ptrs || !s->retained) {
        store_state_free(s);
        return -ENOMEM;
    }
    return 0;
}

static uint64_t msg_bytes(const msg_t *m)
{
    return SZ_MSG + (uint64_t)m->topic_len + m->payload_len;
}

static void msg_release(store_state_t *s, smsg_t *m)
{
    if (!m || --m->users > 0)
        return;
    kv_del(s->msgs, &m->mid, sizeof m->mid);
    kv_del(s->msg_ptrs, &m->msg, sizeof m->msg);
    s->live_bytes -= msg_bytes(m->msg);
    msg_unref(m->msg);
    free(m);
}

/* The session record's own memory (its messages are released by the caller's rule). */
static void session_memory_free(ssess_t *e)
{
    for (uint32_t i = 0; i < e->n_subs; i++)
        free(e->subs[i].filter);
    free(e->subs);
    free(e->queue);
    free(e->out);
    free(e->in_ids);
    free(e->client_id);
    free(e);
}

static void session_free(store_state_t *s, ssess_t *e)
{
    for (uint32_t i = e->q_head; i < e->q_len; i++)
        msg_release(s, e->queue[i].m);
    for (uint32_t i = 0; i < e->n_out; i++)
        msg_release(s, e->out[i].m);
    s->live_bytes -= SZ_SESS + e->id_len + (uint64_t)SZ_DELIVERY * (e->q_len - e->q_head + e->n_out) +
                     (uint64_t)SZ_IN * e->n_in;
    for (uint32_t i = 0; i < e->n_subs; i++)
        s->live_bytes -= SZ_SUB + e->subs[i].len;
    session_memory_free(e);
}

static void free_session_cb(void *arg, const void *key, size_t len, void *val)
{
    (void)arg;
    (void)key;
    (void)len;
    /* the whole state goes: messages are released once each through the message table */
    session_memory_free(val);
}

static void free_msg_cb(void *arg, const void *key, size_t len, void *val)
{
    (void)arg;
    (void)key;
    (void)len;
    smsg_t *m = val;
    msg_unref(m->msg);
    free(m);
}

static void free_retained_cb(void *arg, const void *key, size_t len, void *val)
{
    (void)arg;
    (void)key;
    (void)len;
    msg_unref(val);
}

void store_state_free(store_state_t *s)
{
    if (s->sessions)
        kv_foreach(s->sessions, free_session_cb, NULL);
    if (s->msgs)
        kv_foreach(s->msgs, free_msg_cb, NULL);
    if (s->retained)
        kv_foreach(s->retained, free_retained_cb, NULL);
    kv_free(s->sessions);
    kv_free(s->clients);
    kv_free(s->msgs);
    kv_free(s->msg_ptrs);
    kv_free(s->retained);
    memset(s, 0, sizeof *s);
}

ssess_t *store_state_session(const store_state_t *s, uint64_t sid)
{
    return kv_get(s->sessions, &sid, sizeof sid);
}

smsg_t *store_state_msg_by_ptr(const store_state_t *s, const msg_t *m)
{
    return kv_get(s->msg_ptrs, &m, sizeof m);
}

static void session_remove(store_state_t *s, ssess_t *e)
{
    kv_del(s->sessions, &e->sid, sizeof e->sid);
    kv_del(s->clients, e->client_id, e->id_len);
    session_free(s, e);
}

static int apply_sess(store_state_t *s, const store_rec_t *r)
{
    if (r->sid >= s->next_sid)
        s->next_sid = r->sid + 1;
    ssess_t *e = store_state_session(s, r->sid);
    if (e) {
        e->expiry = r->expiry;
        e->version = r->version;
        if (r->pid)
            e->last_pid = r->pid;
        return 1;
    }
    /* a clean start replaced the session of this client id: the old one is gone */
    ssess_t *old = kv_get(s->clients, r->str, r->str_len);
    if (old)
        session_remove(s, old);
    e = calloc(1, sizeof *e);
    char *id = malloc((size_t)r->str_len + 1);
    if (!e || !id) {
        free(e);
        free(id);
        return -ENOMEM;
    }
    memcpy(id, r->str, r->str_len);
    id[r->str_len] = 0;
    *e = (ssess_t){.sid = r->sid, .client_id = id, .id_len = r->str_len, .expiry = r->expiry,
                   .version = r->version, .last_pid = r->pid};
    if (kv_put(s->sessions, &e->sid, sizeof e->sid, e) < 0 ||
        kv_put(s->clients, id, e->id_len, e) < 0) {
        kv_del(s->sessions, &e->sid, sizeof e->sid);
        free(id);
        free(e);
        return -ENOMEM;
    }
    s->live_bytes += SZ_SESS + e->id_len;
    return 1;
}

static int apply_sub(store_state_t *s, ssess_t *e, const store_rec_t *r)
{
    for (uint32_t i = 0; i < e->n_subs; i++) {
        ssub_t *x = &e->subs[i];
        if (x->len == r->str_len && memcmp(x->filter, r->str, x->len) == 0) {
            if (r->type == SR_UNSUB) {
                s->live_bytes -= SZ_SUB + x->len;
                free(x->filter);
                *x = e->subs[--e->n_subs];
            } else {
                x->options = r->options;
                x->sub_id = r->sub_id;
            }
            return 1;
        }
    }
    if (r->type == SR_UNSUB)
        return 0;
    if (e->n_subs == e->cap_subs) {
        uint32_t cap = e->cap_subs ? e->cap_subs * 2 : 4;
        ssub_t *n = realloc(e->subs, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        e->subs = n;
        e->cap_subs = cap;
    }
    char *f = malloc((size_t)r->str_len + 1);
    if (!f)
        return -ENOMEM;
    memcpy(f, r->str, r->str_len);
    f[r->str_len] = 0;
    e->subs[e->n_subs++] = (ssub_t){f, r->str_len, r->options, r->sub_id};
    s->live_bytes += SZ_SUB + r->str_len;
    return 1;
}

static int apply_msg(store_state_t *s, const store_rec_t *r)
{
    if (r->mid >= s->next_mid)
        s->next_mid = r->mid + 1;
    if (kv_get(s->msgs, &r->mid, sizeof r->mid))
        return 0;
    smsg_t *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->mid = r->mid;
    m->msg = r->msg;
    if (kv_put(s->msgs, &m->mid, sizeof m->mid, m) < 0 ||
        kv_put(s->msg_ptrs, &m->msg, sizeof m->msg, m) < 0) {
        kv_del(s->msgs, &m->mid, sizeof m->mid);
        free(m);
        return -ENOMEM;
    }
    msg_ref(m->msg);
    s->live_bytes += msg_bytes(m->msg);
    return 1;
}

static int push_del(sdel_t **v, uint32_t *n, uint32_t *cap, uint32_t *head, const sdel_t *d)
{
    if (*n == *cap) {
        if (head && *head > 0) { /* reuse the room the popped head left */
            memmove(*v, *v + *head, (*n - *head) * sizeof **v);
            *n -= *head;
            *head = 0;
        } else {
            uint32_t c = *cap ? *cap * 2 : 8;
            sdel_t *p = realloc(*v, c * sizeof *p);
            if (!p)
                return -ENOMEM;
            *v = p;
            *cap = c;
        }
    }
    (*v)[(*n)++] = *d;
    return 0;
}

static sdel_t make_del(smsg_t *m, const store_rec_t *r)
{
    sdel_t d = {.m = m, .pid = r->pid, .qos = r->qos, .retain = r->retain, .state = r->state,
                .n_sub_ids = r->n_sub_ids};
    memcpy(d.sub_ids, r->sub_ids, sizeof d.sub_ids);
    return d;
}

/* The first queued delivery of message mid, removed from the queue. */
static bool queue_take(ssess_t *e, uint64_t mid, sdel_t *out)
{
    for (uint32_t i = e->q_head; i < e->q_len; i++) {
        if (!e->queue[i].m || e->queue[i].m->mid != mid)
            continue;
        *out = e->queue[i];
        if (i == e->q_head) {
            e->q_head++;
        } else {
            memmove(&e->queue[i], &e->queue[i + 1], (e->q_len - i - 1) * sizeof *e->queue);
            e->q_len--;
        }
        if (e->q_head == e->q_len)
            e->q_head = e->q_len = 0;
        return true;
    }
    return false;
}

static int apply_delivery(store_state_t *s, ssess_t *e, const store_rec_t *r)
{
    smsg_t *m = NULL;
    if (r->mid) {
        m = kv_get(s->msgs, &r->mid, sizeof r->mid);
        if (!m)
            return 0;
    } else if (r->type == SR_QADD || (r->type == SR_OUT && r->state != OUT_WAIT_PUBCOMP)) {
        return 0;
    }
    sdel_t d = make_del(m, r);
    int rc = r->type == SR_QADD ? push_del(&e->queue, &e->q_len, &e->q_cap, &e->q_head, &d)
                                : push_del(&e->out, &e->n_out, &e->cap_out, NULL, &d);
    if (rc < 0)
        return rc;
    if (m)
        m->users++;
    s->live_bytes += SZ_DELIVERY;
    return 1;
}

static int apply_queue_exit(store_state_t *s, ssess_t *e, const store_rec_t *r)
{
    sdel_t d;
    if (!queue_take(e, r->mid, &d))
        return 0;
    if (r->type == SR_QDROP) {
        msg_release(s, d.m);
        s->live_bytes -= SZ_DELIVERY;
        return 1;
    }
    d.pid = r->pid;
    d.state = d.qos == 2 ? OUT_WAIT_PUBREC : OUT_WAIT_PUBACK;
    e->last_pid = r->pid;
    if (push_del(&e->out, &e->n_out, &e->cap_out, NULL, &d) < 0) {
        msg_release(s, d.m);
        return -ENOMEM;
    }
    return 1;
}

static int apply_out_ack(store_state_t *s, ssess_t *e, const store_rec_t *r)
{
    for (uint32_t i = 0; i < e->n_out; i++) {
        sdel_t *d = &e->out[i];
        if (d->pid != r->pid)
            continue;
        if (r->type == SR_QPUBREC) {
            if (d->state != OUT_WAIT_PUBREC)
                return 0;
            d->state = OUT_WAIT_PUBCOMP;
            msg_release(s, d->m);
            d->m = NULL;
            return 1;
        }
        msg_release(s, d->m);
        memmove(d, d + 1, (e->n_out - i - 1) * sizeof *d);
        e->n_out--;
        s->live_bytes -= SZ_DELIVERY;
        return 1;
    }
    return 0;
}

static int apply_in(store_state_t *s, ssess_t *e, const store_rec_t *r)
{
    for (uint32_t i = 0; i < e->n_in; i++) {
        if (e->in_ids[i] == r->pid) {
            if (r->type == SR_INADD)
                return 0;
            e->in_ids[i] = e->in_ids[--e->n_in];
            s->live_bytes -= SZ_IN;
            return 1;
        }
    }
    if (r->type == SR_INDEL)
        return 0;
    if (e->n_in == e->cap_in) {
        uint32_t cap = e->cap_in ? e->cap_in * 2 : 8;
        uint16_t *n = realloc(e->in_ids, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        e->in_ids = n;
        e->cap_in = cap;
    }
    e->in_ids[e->n_in++] = r->pid;
    s->live_bytes += SZ_IN;
    return 1;
}

static int apply_retained(store_state_t *s, const store_rec_t *r)
{
    const char *topic = r->type == SR_RETSET ? r->msg->topic : r->str;
    size_t len = r->type == SR_RETSET ? r->msg->topic_len : r->str_len;
    msg_t *old = kv_del(s->retained, topic, len);
    if (old) {
        s->live_bytes -= msg_bytes(old);
        msg_unref(old);
    }
    if (r->type == SR_RETCLR)
        return old ? 1 : 0;
    if (kv_put(s->retained, topic, len, r->msg) < 0)
        return -ENOMEM;
    msg_ref(r->msg);
    s->live_bytes += msg_bytes(r->msg);
    return 1;
}

int store_state_apply(store_state_t *s, const store_rec_t *r)
{
    int rc;
    if (r->type == SR_SESS)
        rc = apply_sess(s, r);
    else if (r->type == SR_MSG)
        rc = apply_msg(s, r);
    else if (r->type == SR_RETSET || r->type == SR_RETCLR)
        rc = apply_retained(s, r);
    else {
        ssess_t *e = store_state_session(s, r->sid);
        if (!e)
            return 0;
        switch (r->type) {
        case SR_SESS_DEL: session_remove(s, e); rc = 1; break;
        case SR_SUB: case SR_UNSUB: rc = apply_sub(s, e, r); break;
        case SR_QADD: case SR_OUT: rc = apply_delivery(s, e, r); break;
        case SR_QSENT: case SR_QDROP: rc = apply_queue_exit(s, e, r); break;
        case SR_QPUBREC: case SR_QDONE: rc = apply_out_ack(s, e, r); break;
        case SR_INADD: case SR_INDEL: rc = apply_in(s, e, r); break;
        default: rc = 0;
        }
    }
    if (rc > 0 && r->type < SR_MAX)
        s->records[r->type]++;
    return rc;
}

static void collect_unused(void *arg, const void *key, size_t len, void *val)
{
    (void)key;
    (void)len;
    smsg_t *m = val;
    if (m->users == 0)
        ptrvec_push(arg, m);
}

void store_state_sweep(store_state_t *s)
{
    ptrvec_t v = {0};
    kv_foreach(s->msgs, collect_unused, &v);
    for (size_t i = 0; i < v.n; i++) {
        smsg_t *m = v.v[i];
        m->users = 1;
        msg_release(s, m);
    }
    free(v.v);
}

/* ---- snapshots -------------------------------------------------------------------------------- */

typedef struct {
    store_state_t *s;
    int (*emit)(void *arg, const store_rec_t *r);
    void *arg;
    int rc;
} snap_t;

static int emit_msg_once(snap_t *sn, smsg_t *m)
{
    if (!m || m->epoch == sn->s->epoch)
        return 0;
    m->epoch = sn->s->epoch;
    store_rec_t r = {.type = SR_MSG, .mid = m->mid, .msg = m->msg};
    return sn->emit(sn->arg, &r);
}

static int emit_delivery(snap_t *sn, const ssess_t *e, const sdel_t *d, uint8_t type)
{
    int rc = emit_msg_once(sn, d->m);
    store_rec_t r = {.type = type, .sid = e->sid, .mid = d->m ? d->m->mid : 0, .pid = d->pid,
                     .qos = d->qos, .retain = d->retain, .state = d->state,
                     .n_sub_ids = d->n_sub_ids};
    memcpy(r.sub_ids, d->sub_ids, sizeof r.sub_ids);
    return rc < 0 ? rc : sn->emit(sn->arg, &r);
}

static void snap_session(void *arg, const void *key, size_t len, void *val)
{
    (void)key;
    (void)len;
    snap_t *sn = arg;
    const ssess_t *e = val;
    if (sn->rc < 0)
        return;
    store_rec_t r = {.type = SR_SESS, .sid = e->sid, .expiry = e->expiry, .version = e->version,
                     .pid = e->last_pid, .str = e->client_id, .str_len = e->id_len};
    int rc = sn->emit(sn->arg, &r);
    for (uint32_t i = 0; rc >= 0 && i < e->n_subs; i++) {
        r = (store_rec_t){.type = SR_SUB, .sid = e->sid, .options = e->subs[i].options,
                          .sub_id = e->subs[i].sub_id, .str = e->subs[i].filter,
                          .str_len = e->subs[i].len};
        rc = sn->emit(sn->arg, &r);
    }
    for (uint32_t i = 0; rc >= 0 && i < e->n_in; i++) {
        r = (store_rec_t){.type = SR_INADD, .sid = e->sid, .pid = e->in_ids[i]};
        rc = sn->emit(sn->arg, &r);
    }
    for (uint32_t i = 0; rc >= 0 && i < e->n_out; i++)
        rc = emit_delivery(sn, e, &e->out[i], SR_OUT);
    for (uint32_t i = e->q_head; rc >= 0 && i < e->q_len; i++)
        rc = emit_delivery(sn, e, &e->queue[i], SR_QADD);
    if (rc < 0)
        sn->rc = rc;
}

static void snap_retained(void *arg, const void *key, size_t len, void *val)
{
    (void)key;
    (void)len;
    snap_t *sn = arg;
    if (sn->rc < 0)
        return;
    store_rec_t r = {.type = SR_RETSET, .msg = val};
    int rc = sn->emit(sn->arg, &r);
    if (rc < 0)
        sn->rc = rc;
}

int store_state_snapshot(store_state_t *s, int (*emit)(void *arg, const store_rec_t *r),
                         void *arg)
{
    snap_t sn = {s, emit, arg, 0};
    s->epoch++;
    kv_foreach(s->sessions, snap_session, &sn);
    kv_foreach(s->retained, snap_retained, &sn);
    return sn.rc;
}
