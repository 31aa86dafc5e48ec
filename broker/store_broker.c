/*
 * broker/store_broker.c: from the replayed state to a running broker (store_restore), and the
 * operator's view of a store file (store_dump).
 *
 * Restore runs on the main thread before the workers start, with b->store still NULL so that
 * rebuilding the broker does not write the same state again. Sessions come back offline, each
 * tracked by a worker (round robin) for its expiry, which restarts from the moment of the start:
 * the broker clock does not survive a reboot, and expiring sessions early would lose data.
 * Queued deliveries go through session_deliver, so today's queue limits apply to them; each one
 * they drop (queue full, QoS 0 not queued) is handed to the store as a `dropped` record, written
 * once the writer starts, so that the file forgets it as memory did and it does not come back at
 * a later start.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/log.h"
#include "broker/retain.h"
#include "broker/router.h"
#include "broker/store.h"
#include "broker/store_int.h"

static void collect(void *arg, const void *key, size_t len, void *val)
{
    (void)key;
    (void)len;
    ptrvec_push(arg, val);
}

static int cmp_sid(const void *a, const void *b)
{
    const ssess_t *x = *(ssess_t *const *)a, *y = *(ssess_t *const *)b;
    return x->sid < y->sid ? -1 : x->sid > y->sid;
}

/* The state's sessions, oldest first. The caller frees v.v. */
static ptrvec_t sorted_sessions(const store_state_t *s)
{
    ptrvec_t v = {0};
    kv_foreach(s->sessions, collect, &v);
    if (v.n > 1)
        qsort(v.v, v.n, sizeof *v.v, cmp_sid);
    return v;
}

static delivery_t to_delivery(const sdel_t *d)
{
    delivery_t x = {.msg = d->m ? d->m->msg : NULL, .qos = d->qos, .retain = d->retain,
                    .n_sub_ids = d->n_sub_ids};
    memcpy(x.sub_ids, d->sub_ids, sizeof x.sub_ids);
    return x;
}

/* Queues a replayed delivery again; true if today's limits dropped it (then a `dropped` record
 * says that it left the queue). */
static bool requeue(store_t *st, broker_t *b, session_t *s, const sdel_t *x)
{
    delivery_t d = to_delivery(x);
    session_lock(s);
    uint32_t before = s->q_len;
    session_unlock(s);
    session_deliver(b, s, &d); /* false (not authorized) leaves the queue as it was, too */
    session_lock(s);
    bool dropped = s->q_len == before;
    if (dropped)
        store_sent(st, s, d.msg, 0);
    session_unlock(s);
    return dropped;
}

static int restore_session(store_t *st, broker_t *b, const ssess_t *e, worker_t *w,
                           uint64_t now, size_t *dropped)
{
    session_t *s = session_new(e->client_id, e->id_len);
    if (!s)
        return -ENOMEM;
    s->version = e->version;
    s->expiry = e->expiry;
    s->store_sid = e->sid;
    /* Packet ids go on from the last one on disk: a delivery sent just before a crash, whose
       record did not make it, goes out again with the id the client may already hold for it
       (a QoS 2 receiver then answers without delivering it twice). */
    if (e->last_pid)
        s->next_id = e->last_pid == 65535 ? 1 : (uint16_t)(e->last_pid + 1);
    s->offline_since = now;
    s->worker = w;
    registry_lock(b->registry);
    registry_add(b->registry, s);
    registry_unlock(b->registry);
    session_unref(s); /* the registry holds it */
    for (uint32_t i = 0; i < e->n_subs; i++) {
        const ssub_t *x = &e->subs[i];
        if (router_subscribe(b->router, x->filter, x->len, s, x->options, x->sub_id, NULL) < 0)
            log_warning("store_subscription_skipped", "client=%s reason=\"invalid filter\"",
                        s->client_id);
        else
            session_add_sub(s, x->filter, x->len, x->options, x->sub_id);
    }
    for (uint32_t i = 0; i < e->n_in; i++)
        session_in_add(s, e->in_ids[i]);
    for (uint32_t i = 0; i < e->n_out; i++) {
        delivery_t d = to_delivery(&e->out[i]);
        session_restore_inflight(s, e->out[i].pid, e->out[i].state, &d);
    }
    for (uint32_t i = e->q_head; i < e->q_len; i++)
        *dropped += requeue(st, b, s, &e->queue[i]);
    worker_track_offline(w, s);
    return 0;
}

typedef struct {
    broker_t *b;
    size_t n;
} ret_ctx_t;

static void restore_retained(void *arg, const void *key, size_t len, void *val)
{
    ret_ctx_t *rc = arg;
    if (retain_set(rc->b->retained, key, len, msg_ref(val)) < 0)
        msg_unref(val);
    else
        rc->n++;
}

int store_restore(store_t *st, broker_t *b)
{
    store_state_t *s = store_state_of(st);
    ret_ctx_t rc = {b, 0};
    kv_foreach(s->retained, restore_retained, &rc);
    ptrvec_t v = sorted_sessions(s);
    uint64_t now = clock_ms();
    int err = 0;
    size_t dropped = 0;
    for (size_t i = 0; i < v.n && err == 0; i++)
        err = restore_session(st, b, v.v[i], &b->workers[i % (size_t)b->n_workers], now,
                              &dropped);
    free(v.v);
    if (err < 0) {
        log_error("store_restore_failed", "error=\"%s\"", strerror(-err));
        return -1;
    }
    log_notice("store_restored", "sessions=%zu retained=%zu queued_dropped=%zu",
               kv_count(s->sessions), rc.n, dropped);
    return 0;
}

/* ---- dump ------------------------------------------------------------------------------------- */

static const char *state_name(uint8_t state)
{
    switch (state) {
    case OUT_WAIT_PUBACK: return "awaiting_puback";
    case OUT_WAIT_PUBREC: return "awaiting_pubrec";
    case OUT_WAIT_PUBCOMP: return "awaiting_pubcomp";
    default: return "?";
    }
}

/* Prints a client-controlled string with anything unprintable escaped. */
static void put_quoted(FILE *out, const char *p, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void dump_delivery(FILE *out, const char *what, const sdel_t *d)
{
    fprintf(out, "    %s qos=%u", what, d->qos);
    if (what[0] == 'i')
        fprintf(out, " packet_id=%u state=%s", d->pid, state_name(d->state));
    if (d->m) {
        fprintf(out, " topic=");
        put_quoted(out, d->m->msg->topic, d->m->msg->topic_len);
        fprintf(out, " size=%u", d->m->msg->payload_len);
    }
    fputc('\n', out);
}

static void dump_session(FILE *out, const ssess_t *e)
{
    fprintf(out, "  session ");
    put_quoted(out, e->client_id, e->id_len);
    fprintf(out, " expiry=%u version=%u subscriptions=%u queued=%u inflight=%u "
                 "incoming_qos2=%u\n", e->expiry, e->version, e->n_subs, e->q_len - e->q_head,
            e->n_out, e->n_in);
    for (uint32_t i = 0; i < e->n_subs; i++) {
        fprintf(out, "    subscription ");
        put_quoted(out, e->subs[i].filter, e->subs[i].len);
        fprintf(out, " qos=%u options=0x%02x sub_id=%u\n", e->subs[i].options & 3,
                e->subs[i].options, e->subs[i].sub_id);
    }
    for (uint32_t i = 0; i < e->n_out; i++)
        dump_delivery(out, "inflight", &e->out[i]);
    for (uint32_t i = e->q_head; i < e->q_len; i++)
        dump_delivery(out, "queued", &e->queue[i]);
    for (uint32_t i = 0; i < e->n_in; i++)
        fprintf(out, "    incoming_qos2 packet_id=%u\n", e->in_ids[i]);
}

static void dump_retained(void *arg, const void *key, size_t len, void *val)
{
    FILE *out = arg;
    const msg_t *m = val;
    fprintf(out, "  retained ");
    put_quoted(out, key, len);
    fprintf(out, " qos=%u size=%u\n", m->qos, m->payload_len);
}

static void dump_state(FILE *out, const store_state_t *s)
{
    ptrvec_t v = sorted_sessions(s);
    fprintf(out, "sessions: %zu\n", v.n);
    for (size_t i = 0; i < v.n; i++)
        dump_session(out, v.v[i]);
    free(v.v);
    fprintf(out, "retained: %zu\n", kv_count(s->retained));
    kv_foreach(s->retained, dump_retained, out);
    fprintf(out, "stored messages: %zu\n", kv_count(s->msgs));
}

int store_dump(const char *dir, const char *file, FILE *out, char *err, size_t cap)
{
    char path[4096];
    struct stat sb;
    /* a directory (persistence_location) or the store file itself */
    if (dir && stat(dir, &sb) == 0 && S_ISREG(sb.st_mode))
        snprintf(path, sizeof path, "%s", dir);
    else
        snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : ".",
                 file && *file ? file : "acemq.db");
    if (stat(path, &sb) < 0) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    store_state_t s;
    store_replay_t info;
    if (store_state_init(&s) < 0) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    if (store_file_replay(path, &s, true, &info, err, cap) < 0) {
        store_state_free(&s);
        return -1;
    }
    fprintf(out, "file: %s\nsize: %llu bytes\nformat: version %u\nrecords: %llu\n", path,
            (unsigned long long)info.file_bytes, STORE_FORMAT_VERSION,
            (unsigned long long)info.records);
    if (info.dropped_bytes)
        fprintf(out, "torn tail: %llu bytes at offset %llu (cut at the next start)\n",
                (unsigned long long)info.dropped_bytes, (unsigned long long)info.valid_bytes);
    fprintf(out, "records by type:");
    for (unsigned t = 1; t < SR_MAX; t++)
        if (s.records[t])
            fprintf(out, " %s=%llu", store_rec_name(t), (unsigned long long)s.records[t]);
    fprintf(out, "\nlive data: about %llu bytes\n", (unsigned long long)s.live_bytes);
    dump_state(out, &s);
    store_state_free(&s);
    return 0;
}
