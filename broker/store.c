/*
 * broker/store.c: the store's run time: the hooks that queue changes, the writer thread that
 * writes and fsyncs them, acknowledgements that wait for the disk, and compaction.
 *
 * A hook builds a small operation (a record with a message reference rather than the message
 * bytes) and appends it to a list under the store mutex, with a sequence number. The writer
 * takes the whole list at once, applies each operation to the live state (store_state.c), which
 * also decides whether it matters (a delivery to a session that is not durable does not), and
 * encodes the ones that do into one buffer: one write(2) and at most one fsync per batch,
 * whatever the number of clients (group commit).
 *
 * With `fsync always`, a worker that must acknowledge a QoS 1/2 PUBLISH registers the ack with
 * the sequence number of the last operation appended so far. When the writer has fsynced up to
 * that number, it hands the acks to their workers (worker_post); the worker sends them if the
 * connection is still there. Acks are handed over in sequence order, so a client sees its acks
 * in the order of its PUBLISHes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/store.h"
#include "broker/store_int.h"

enum { COMPACT_MIN_BYTES = 1 << 20, COMPACT_TIMER_MIN_BYTES = 64 << 10, MAX_TXNS = 64 };

typedef struct store_op {
    struct store_op *next;
    uint64_t seq;
    store_rec_t rec;
    char str[]; /* rec.str points here */
} store_op_t;

typedef struct {
    conn_t *c;
    uint64_t seq;
    uint8_t type, rc;
    uint16_t id;
} waiter_t;

typedef struct {
    size_t n;
    waiter_t w[];
} ack_batch_t;

struct store {
    char path[4096];
    int policy;
    uint64_t autosave_ms;      /* compaction check every this many ms, or */
    uint64_t autosave_changes; /* every this many records written (autosave_on_changes) */
    int ratio;

    pthread_mutex_t lock; /* everything up to `state` */
    pthread_cond_t wake;
    store_op_t *head, *tail;
    uint64_t next_seq;    /* of the next operation */
    uint64_t durable_seq; /* every operation up to this one is on disk */
    uint64_t next_sid;
    waiter_t *waiters;
    size_t n_waiters, cap_waiters;
    uint64_t txn_start[MAX_TXNS]; /* first sequence number of each open group, 0 = free */
    bool acks_off, stopping, compact_requested, running;
    pthread_t thread;

    /* the writer's own (the opening thread's until store_start) */
    store_state_t state;
    int fd;
    uint64_t log_bytes;
    sbuf_t wbuf;
    uint64_t last_sync, last_check;
    uint64_t changes, checked_changes; /* records written to the log, and at the last check */
    bool dirty, write_failed;
};

int store_fsync_policy(const char *name)
{
    if (!name || !strcmp(name, "everysec"))
        return STORE_FSYNC_EVERYSEC;
    if (!strcmp(name, "always"))
        return STORE_FSYNC_ALWAYS;
    if (!strcmp(name, "never"))
        return STORE_FSYNC_NEVER;
    return -1;
}

/* ---- hooks ------------------------------------------------------------------------------------ */

static store_op_t *op_new(uint8_t type, uint64_t sid, const char *str, size_t len)
{
    store_op_t *op = malloc(sizeof *op + len + 1);
    if (!op) {
        log_error("store_out_of_memory", "record=%s", store_rec_name(type));
        return NULL;
    }
    memset(op, 0, sizeof *op);
    op->rec.type = type;
    op->rec.sid = sid;
    if (str) {
        memcpy(op->str, str, len);
        op->str[len] = 0;
        op->rec.str = op->str;
        op->rec.str_len = (uint16_t)len;
    }
    return op;
}

/* With st->lock held. */
static void append_locked(store_t *st, store_op_t *op)
{
    if (!op)
        return;
    op->seq = st->next_seq++;
    if (st->tail)
        st->tail->next = op;
    else
        st->head = op;
    st->tail = op;
}

static void append(store_t *st, store_op_t *op)
{
    if (!op)
        return;
    pthread_mutex_lock(&st->lock);
    append_locked(st, op);
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->lock);
}

static store_op_t *delivery_op(uint8_t type, uint64_t sid, const delivery_t *d)
{
    store_op_t *op = op_new(type, sid, NULL, 0);
    if (op) {
        op->rec.msg = d->msg ? msg_ref(d->msg) : NULL;
        op->rec.qos = d->qos;
        op->rec.retain = d->retain;
        op->rec.n_sub_ids = d->n_sub_ids;
        memcpy(op->rec.sub_ids, d->sub_ids, sizeof op->rec.sub_ids);
    }
    return op;
}

/* A session that becomes durable may already hold state (a takeover of a session that was
 * not): everything it holds is written after its SESS record. */
static void append_session_contents(store_t *st, session_t *s)
{
    uint64_t sid = s->store_sid;
    for (uint32_t i = 0; i < s->n_subs; i++) {
        store_op_t *op = op_new(SR_SUB, sid, s->subs[i].filter, s->subs[i].len);
        if (op) {
            op->rec.options = s->subs[i].options;
            op->rec.sub_id = s->subs[i].sub_id;
        }
        append_locked(st, op);
    }
    for (uint32_t i = 0; i < s->n_in; i++) {
        store_op_t *op = op_new(SR_INADD, sid, NULL, 0);
        if (op)
            op->rec.pid = s->in_ids[i];
        append_locked(st, op);
    }
    for (uint32_t i = 0; i < s->n_out; i++) {
        store_op_t *op = delivery_op(SR_OUT, sid, &s->out[i].d);
        if (op) {
            op->rec.pid = s->out[i].id;
            op->rec.state = s->out[i].state;
        }
        append_locked(st, op);
    }
    for (uint32_t i = 0; i < s->q_len; i++)
        append_locked(st, delivery_op(SR_QADD, sid, &s->queue[(s->q_head + i) % s->q_cap]));
}

void store_session_sync(store_t *st, session_t *s)
{
    if (s->expiry == 0) {
        store_session_delete(st, s);
        return;
    }
    store_op_t *op = op_new(SR_SESS, 0, s->client_id, s->id_len);
    if (!op)
        return;
    op->rec.expiry = s->expiry;
    op->rec.version = s->version;
    pthread_mutex_lock(&st->lock);
    bool fresh = s->store_sid == 0;
    if (fresh)
        s->store_sid = st->next_sid++;
    op->rec.sid = s->store_sid;
    append_locked(st, op);
    if (fresh)
        append_session_contents(st, s);
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->lock);
}

void store_session_delete(store_t *st, session_t *s)
{
    if (!s->store_sid)
        return;
    append(st, op_new(SR_SESS_DEL, s->store_sid, NULL, 0));
    s->store_sid = 0;
}

void store_sub(store_t *st, session_t *s, const char *filter, size_t len, uint8_t options,
               uint32_t sub_id)
{
    if (!s->store_sid)
        return;
    store_op_t *op = op_new(SR_SUB, s->store_sid, filter, len);
    if (op) {
        op->rec.options = options;
        op->rec.sub_id = sub_id;
    }
    append(st, op);
}

void store_unsub(store_t *st, session_t *s, const char *filter, size_t len)
{
    if (s->store_sid)
        append(st, op_new(SR_UNSUB, s->store_sid, filter, len));
}

void store_queued(store_t *st, session_t *s, const delivery_t *d)
{
    if (s->store_sid)
        append(st, delivery_op(SR_QADD, s->store_sid, d));
}

void store_sent(store_t *st, session_t *s, msg_t *m, uint16_t id)
{
    if (!s->store_sid)
        return;
    store_op_t *op = op_new(id ? SR_QSENT : SR_QDROP, s->store_sid, NULL, 0);
    if (op) {
        op->rec.msg = msg_ref(m);
        op->rec.pid = id;
    }
    append(st, op);
}

static void id_op(store_t *st, session_t *s, uint8_t type, uint16_t id)
{
    session_lock(s);
    if (s->store_sid) {
        store_op_t *op = op_new(type, s->store_sid, NULL, 0);
        if (op)
            op->rec.pid = id;
        append(st, op);
    }
    session_unlock(s);
}

void store_out_pubrec(store_t *st, session_t *s, uint16_t id)
{
    id_op(st, s, SR_QPUBREC, id);
}

void store_out_done(store_t *st, session_t *s, uint16_t id)
{
    id_op(st, s, SR_QDONE, id);
}

void store_in_add(store_t *st, session_t *s, uint16_t id)
{
    id_op(st, s, SR_INADD, id);
}

void store_in_del(store_t *st, session_t *s, uint16_t id)
{
    id_op(st, s, SR_INDEL, id);
}

void store_retained(store_t *st, msg_t *m)
{
    store_op_t *op;
    if (m->topic_len >= 4 && memcmp(m->topic, "$SYS", 4) == 0)
        return; /* the broker's own tree is published again after every start */
    if (m->payload_len) {
        op = op_new(SR_RETSET, 0, NULL, 0);
        if (op)
            op->rec.msg = msg_ref(m);
    } else {
        op = op_new(SR_RETCLR, 0, m->topic, m->topic_len);
    }
    append(st, op);
}

int store_group_begin(store_t *st)
{
    pthread_mutex_lock(&st->lock);
    int slot = -1;
    for (int i = 0; i < MAX_TXNS && slot < 0; i++)
        if (!st->txn_start[i])
            slot = i;
    if (slot >= 0)
        st->txn_start[slot] = st->next_seq;
    pthread_mutex_unlock(&st->lock);
    return slot; /* no free slot: the records are written as they come, still in order */
}

void store_group_end(store_t *st, int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&st->lock);
    st->txn_start[slot] = 0;
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->lock);
}

/* With st->lock held: the operations the writer may take now, i.e. those before the first
 * record of any group still being appended. */
static store_op_t *take_ops(store_t *st, uint64_t *upto)
{
    uint64_t limit = UINT64_MAX;
    for (int i = 0; i < MAX_TXNS; i++)
        if (st->txn_start[i] && st->txn_start[i] < limit)
            limit = st->txn_start[i];
    store_op_t *ops = st->head, *last = NULL;
    for (store_op_t *o = st->head; o && o->seq < limit; o = o->next)
        last = o;
    if (!last) {
        *upto = ops ? ops->seq - 1 : st->next_seq - 1;
        return NULL;
    }
    st->head = last->next;
    if (!st->head)
        st->tail = NULL;
    last->next = NULL;
    *upto = st->head ? st->head->seq - 1 : st->next_seq - 1;
    return ops;
}

/* ---- acknowledgements ------------------------------------------------------------------------- */

bool store_acks_wait(const store_t *st)
{
    return st->policy == STORE_FSYNC_ALWAYS;
}

void store_ack_later(store_t *st, conn_t *c, uint8_t type, uint16_t id, uint8_t rc)
{
    pthread_mutex_lock(&st->lock);
    if (st->n_waiters == st->cap_waiters) {
        size_t cap = st->cap_waiters ? st->cap_waiters * 2 : 64;
        waiter_t *n = realloc(st->waiters, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&st->lock);
            log_error("store_out_of_memory", "client=%s what=ack", conn_id(c));
            return; /* no ack: the client sends the PUBLISH again */
        }
        st->waiters = n;
        st->cap_waiters = cap;
    }
    st->waiters[st->n_waiters++] = (waiter_t){conn_ref(c), st->next_seq - 1, type, rc, id};
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->lock);
}

void store_run_acks(void *batch)
{
    ack_batch_t *ab = batch;
    for (size_t i = 0; i < ab->n; i++) {
        waiter_t *w = &ab->w[i];
        mqtt_packet_t pkt = {.type = (mqtt_type_t)w->type};
        pkt.u.ack.id = w->id;
        pkt.u.ack.rc = w->c->version == MQTT_V5 ? w->rc : 0;
        if (w->c->state == CS_CONNECTED)
            conn_send(w->c, &pkt);
        conn_unref(w->c);
    }
    free(ab);
}

/* With st->lock held: hands the acks whose records are on disk to their workers, in order. */
static void post_ready_acks(store_t *st)
{
    size_t ready = 0;
    while (ready < st->n_waiters && st->waiters[ready].seq <= st->durable_seq)
        ready++;
    if (ready == 0 || st->acks_off)
        return;
    bool *done = calloc(ready, sizeof *done);
    ack_batch_t *ab = malloc(sizeof *ab + ready * sizeof ab->w[0]);
    if (!done || !ab) {
        free(done);
        free(ab);
        return; /* tried again next round */
    }
    for (size_t i = 0; i < ready; i++) {
        if (done[i])
            continue;
        worker_t *w = st->waiters[i].c->w;
        ab->n = 0;
        for (size_t j = i; j < ready; j++)
            if (!done[j] && st->waiters[j].c->w == w) {
                ab->w[ab->n++] = st->waiters[j];
                done[j] = true;
            }
        ack_batch_t *copy = malloc(sizeof *ab + ab->n * sizeof ab->w[0]);
        if (!copy) { /* unlikely; the client will resend, the connection reference goes */
            for (size_t k = 0; k < ab->n; k++)
                conn_unref(ab->w[k].c);
            continue;
        }
        memcpy(copy, ab, sizeof *ab + ab->n * sizeof ab->w[0]);
        worker_post(w, INBOX_STORE_ACKS, copy, 0);
    }
    free(ab);
    free(done);
    memmove(st->waiters, st->waiters + ready, (st->n_waiters - ready) * sizeof *st->waiters);
    st->n_waiters -= ready;
}

/* ---- the writer ------------------------------------------------------------------------------- */

static void emit(store_t *st, const store_rec_t *r)
{
    int rc = store_state_apply(&st->state, r);
    if (rc > 0 && (rc = store_rec_encode(&st->wbuf, r)) == 0)
        st->changes++;
    if (rc < 0)
        log_error("store_record_lost", "record=%s error=\"%s\"", store_rec_name(r->type),
                  strerror(-rc));
}

/* Turns one operation into records: a delivery's message is written once, before its first
 * delivery, and referenced by id afterwards. */
static void process(store_t *st, store_op_t *op)
{
    store_rec_t r = op->rec;
    bool global = r.type == SR_SESS || r.type == SR_RETSET || r.type == SR_RETCLR;
    if (!global && !store_state_session(&st->state, r.sid))
        return; /* not a durable session (any more) */
    if (r.msg && r.type != SR_RETSET) {
        smsg_t *m = store_state_msg_by_ptr(&st->state, r.msg);
        if (!m && (r.type == SR_QSENT || r.type == SR_QDROP))
            return;
        if (!m) {
            store_rec_t mr = {.type = SR_MSG, .mid = st->state.next_mid, .msg = r.msg};
            emit(st, &mr);
            m = store_state_msg_by_ptr(&st->state, r.msg);
            if (!m)
                return;
        }
        r.mid = m->mid;
        r.msg = NULL;
    }
    emit(st, &r);
}

static int write_out(store_t *st)
{
    size_t off = 0;
    while (off < st->wbuf.len) {
        ssize_t n = write(st->fd, st->wbuf.p + off, st->wbuf.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* keep what was not written; the next round tries again */
            memmove(st->wbuf.p, st->wbuf.p + off, st->wbuf.len - off);
            st->wbuf.len -= off;
            st->log_bytes += off;
            if (!st->write_failed)
                log_error("store_write_failed", "file=%s error=\"%s\"", st->path, strerror(errno));
            st->write_failed = true;
            return -1;
        }
        off += (size_t)n;
    }
    st->log_bytes += off;
    st->wbuf.len = 0;
    if (off)
        st->dirty = true;
    if (st->write_failed)
        log_notice("store_write_resumed", "file=%s", st->path);
    st->write_failed = false;
    return 0;
}

static int do_fsync(store_t *st, uint64_t now)
{
    st->last_sync = now;
    if (!st->dirty)
        return 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = fdatasync(st->fd), e = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    metrics_observe_fsync((double)(t1.tv_sec - t0.tv_sec) +
                          (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (rc < 0) {
        log_error("store_fsync_failed", "file=%s error=\"%s\"", st->path, strerror(e));
        return -1;
    }
    st->dirty = false;
    return 0;
}

static void compact(store_t *st)
{
    char err[512];
    uint64_t before = st->log_bytes, size = 0;
    int fd = store_file_write_snapshot(st->path, &st->state, &size, err, sizeof err);
    if (fd < 0) {
        log_error("store_compaction_failed", "reason=\"%s\"", err);
        return;
    }
    close(st->fd);
    st->fd = fd;
    st->log_bytes = size;
    st->dirty = false;
    log_info("store_compacted", "file=%s bytes_before=%llu bytes_after=%llu", st->path,
             (unsigned long long)before, (unsigned long long)size);
}

/* The log is compacted when it is over ratio x live data and at least 1 MiB, or at a periodic
 * check (autosave_interval seconds, or changes with autosave_on_changes) from 64 KiB. */
static void maybe_compact(store_t *st, uint64_t now, bool requested)
{
    uint64_t live = st->state.live_bytes + STORE_HEADER_SIZE;
    bool over = st->log_bytes > live * (uint64_t)st->ratio;
    bool check;
    if (st->autosave_changes) {
        check = st->changes - st->checked_changes >= st->autosave_changes;
        if (check)
            st->checked_changes = st->changes;
    } else {
        check = st->autosave_ms && now - st->last_check >= st->autosave_ms;
        if (check)
            st->last_check = now;
    }
    if (requested || (over && (st->log_bytes >= COMPACT_MIN_BYTES ||
                               (check && st->log_bytes >= COMPACT_TIMER_MIN_BYTES))))
        compact(st);
}

/* One round: everything queued goes to the file; fsync per policy; acks; compaction. Called
 * with st->lock held, returns with it held. */
static void writer_round(store_t *st)
{
    uint64_t upto;
    store_op_t *ops = take_ops(st, &upto);
    bool stopping = st->stopping, requested = st->compact_requested;
    st->compact_requested = false;
    pthread_mutex_unlock(&st->lock);

    while (ops) {
        store_op_t *next = ops->next;
        process(st, ops);
        msg_unref(ops->rec.msg);
        free(ops);
        ops = next;
    }
    uint64_t now = clock_ms();
    bool ok = write_out(st) == 0;
    if (ok && (st->policy == STORE_FSYNC_ALWAYS || stopping ||
               (st->policy == STORE_FSYNC_EVERYSEC && now - st->last_sync >= 1000)))
        ok = do_fsync(st, now) == 0;
    bool durable = ok && !st->dirty;

    pthread_mutex_lock(&st->lock);
    if (durable || (ok && st->policy != STORE_FSYNC_ALWAYS))
        st->durable_seq = upto;
    post_ready_acks(st);
    pthread_mutex_unlock(&st->lock);
    if (ok)
        maybe_compact(st, now, requested);
    pthread_mutex_lock(&st->lock);
}

static bool has_work(const store_t *st)
{
    return st->head || st->stopping || st->compact_requested ||
           (st->n_waiters && st->waiters[0].seq <= st->durable_seq && !st->acks_off);
}

/* With st->lock held: sleeps until there is work or a timed duty. An idle writer wakes once a
 * second (compaction checks); under everysec, data written since the last fsync is fsynced at
 * last_sync + 1 s, not 1 s after whatever round came last. */
static void wait_for_work(store_t *st)
{
    uint64_t ms = 1000;
    if (st->policy == STORE_FSYNC_EVERYSEC && st->dirty) {
        uint64_t now = clock_ms(), due = st->last_sync + 1000;
        if (due <= now)
            return;
        ms = due - now;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&st->wake, &st->lock, &ts);
}

static void *writer_main(void *arg)
{
    store_t *st = arg;
    pthread_setname_np(pthread_self(), "acemq-store");
    pthread_mutex_lock(&st->lock);
    for (;;) {
        if (!has_work(st))
            wait_for_work(st);
        writer_round(st);
        if (st->stopping && !st->head)
            break;
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* ---- opening and closing ---------------------------------------------------------------------- */

static int open_log(store_t *st, const store_replay_t *info, char *err, size_t cap)
{
    if (info->valid_bytes < STORE_HEADER_SIZE) { /* new, empty or cut to nothing */
        uint64_t size = 0;
        st->fd = store_file_write_snapshot(st->path, &st->state, &size, err, cap);
        st->log_bytes = size;
        return st->fd < 0 ? -1 : 0;
    }
    st->fd = open(st->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (st->fd < 0) {
        snprintf(err, cap, "%s: cannot open for writing: %s", st->path, strerror(errno));
        return -1;
    }
    st->log_bytes = info->valid_bytes;
    return 0;
}

static store_t *store_alloc(const store_opts_t *o)
{
    store_t *st = calloc(1, sizeof *st);
    if (!st || store_state_init(&st->state) < 0) {
        free(st);
        return NULL;
    }
    snprintf(st->path, sizeof st->path, "%s/%s", o->dir && *o->dir ? o->dir : ".",
             o->file && *o->file ? o->file : "acemq.db");
    st->policy = o->fsync;
    uint64_t every = o->autosave_interval > 0 ? (uint64_t)o->autosave_interval : 0;
    if (o->autosave_on_changes)
        st->autosave_changes = every;
    else
        st->autosave_ms = every * 1000u;
    st->ratio = o->compact_ratio >= 2 ? o->compact_ratio : 4;
    st->fd = -1;
    st->next_seq = 1;
    pthread_mutex_init(&st->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->wake, &ca);
    pthread_condattr_destroy(&ca);
    st->last_sync = st->last_check = clock_ms();
    return st;
}

static void store_free(store_t *st)
{
    for (size_t i = 0; i < st->n_waiters; i++)
        conn_unref(st->waiters[i].c);
    free(st->waiters);
    while (st->head) {
        store_op_t *next = st->head->next;
        msg_unref(st->head->rec.msg);
        free(st->head);
        st->head = next;
    }
    store_state_free(&st->state);
    sbuf_free(&st->wbuf);
    if (st->fd >= 0)
        close(st->fd);
    pthread_cond_destroy(&st->wake);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

int store_open(store_t **out, const store_opts_t *o, char *err, size_t cap)
{
    *out = NULL;
    store_t *st = store_alloc(o);
    if (!st) {
        snprintf(err, cap, "out of memory opening the store");
        return -1;
    }
    if (o->dir && *o->dir && mkdir(o->dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, cap, "%s: cannot create the persistence directory: %s", o->dir,
                 strerror(errno));
        store_free(st);
        return -1;
    }
    store_replay_t info;
    if (store_file_replay(st->path, &st->state, false, &info, err, cap) < 0 ||
        open_log(st, &info, err, cap) < 0) {
        store_free(st);
        return -1;
    }
    if (info.dropped_bytes)
        log_warning("store_torn_tail", "file=%s offset=%llu dropped_bytes=%llu "
                    "reason=\"incomplete or damaged last record (interrupted write)\"",
                    st->path, (unsigned long long)info.valid_bytes,
                    (unsigned long long)info.dropped_bytes);
    log_info("store_loaded", "file=%s bytes=%llu records=%llu sessions=%zu retained=%zu "
             "messages=%zu fsync=%s", st->path, (unsigned long long)st->log_bytes,
             (unsigned long long)info.records, kv_count(st->state.sessions),
             kv_count(st->state.retained), kv_count(st->state.msgs),
             st->policy == STORE_FSYNC_ALWAYS ? "always"
             : st->policy == STORE_FSYNC_NEVER ? "never" : "everysec");
    st->next_sid = st->state.next_sid;
    *out = st;
    return 0;
}

store_state_t *store_state_of(store_t *st)
{
    return &st->state;
}

int store_start(store_t *st)
{
    if (pthread_create(&st->thread, NULL, writer_main, st) != 0)
        return -1;
    st->running = true;
    return 0;
}

void store_detach_workers(store_t *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->acks_off = true;
    pthread_mutex_unlock(&st->lock);
}

int store_compact(store_t *st)
{
    pthread_mutex_lock(&st->lock);
    st->compact_requested = true;
    if (st->running)
        pthread_cond_signal(&st->wake);
    else
        writer_round(st);
    pthread_mutex_unlock(&st->lock);
    return 0;
}

bool store_caught_up(store_t *st)
{
    pthread_mutex_lock(&st->lock);
    bool done = !st->head && st->durable_seq + 1 == st->next_seq;
    pthread_mutex_unlock(&st->lock);
    return done;
}

void store_writer_round(store_t *st)
{
    pthread_mutex_lock(&st->lock);
    if (!st->running)
        writer_round(st);
    pthread_mutex_unlock(&st->lock);
}

void store_close(store_t *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    st->acks_off = true;
    if (st->running) {
        pthread_cond_signal(&st->wake);
        pthread_mutex_unlock(&st->lock);
        pthread_join(st->thread, NULL);
    } else {
        writer_round(st);
        pthread_mutex_unlock(&st->lock);
    }
    log_info("store_closed", "file=%s bytes=%llu", st->path, (unsigned long long)st->log_bytes);
    store_free(st);
}
