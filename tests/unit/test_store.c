/*
 * tests/unit/test_store.c: the persistence store (broker/store*.c). Record encoding, replay of
 * every record type through the hooks the broker calls, the recovery rules for damaged files
 * (torn tail cut, damage in the middle refused with its offset, wrong version, garbage),
 * a record with a valid checksum and a malformed body refused), compaction (by hand, automatic
 * past the 1 MiB floor, autosave_on_changes), and the rebuild of a broker from a replayed store,
 * whose queue limits reach the file.
 *
 * The store mostly runs without its writer thread here: store_close(), store_compact() and
 * store_writer_round() then do the writer's work in the calling thread, which keeps the tests
 * deterministic. One test runs the thread, to show it compacts on its own.
 */
#include "broker/log.h"
#include "broker/retain.h"
#include "broker/router.h"
#include "broker/store.h"
#include "broker/store_int.h"
#include "tests/unit/test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[256];
static char path[512];

static void fresh_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/acemq-store-test-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/acemq.db", dir);
}

static void remove_dir(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/acemq.db", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/acemq.db.tmp", dir);
    unlink(p);
    rmdir(dir);
}

static store_t *open_store_opts(store_opts_t o, char *err, size_t cap)
{
    o.dir = dir;
    o.file = "acemq.db";
    store_t *st = NULL;
    err[0] = 0;
    if (store_open(&st, &o, err, cap) < 0)
        return NULL;
    return st;
}

static store_t *open_store(char *err, size_t cap)
{
    return open_store_opts((store_opts_t){.fsync = STORE_FSYNC_NEVER, .compact_ratio = 4}, err,
                           cap);
}

static long file_size(void)
{
    struct stat sb;
    return stat(path, &sb) < 0 ? -1 : (long)sb.st_size;
}

static session_t *durable(store_t *st, const char *id, uint32_t expiry)
{
    session_t *s = session_new(id, strlen(id));
    s->expiry = expiry;
    s->version = 5;
    session_lock(s);
    store_session_sync(st, s);
    session_unlock(s);
    return s;
}

static msg_t *mk(const char *topic, const char *payload, uint8_t qos, bool retain)
{
    return msg_new(topic, strlen(topic), (const uint8_t *)payload, strlen(payload), qos, retain,
                   NULL, clock_ms());
}

static ssess_t *find_session(store_t *st, const char *id)
{
    return kv_get(store_state_of(st)->clients, id, strlen(id));
}

/* ---- format ----------------------------------------------------------------------------------- */

TEST(crc32_matches_the_standard_check_value)
{
    ASSERT_EQ(store_crc32(0, "123456789", 9), 0xCBF43926u);
}

TEST(records_round_trip)
{
    mqtt_user_prop_t up = {{(const uint8_t *)"k", 1}, {(const uint8_t *)"v", 1}};
    mqtt_props_t props = {0};
    props.present = MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) | MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY);
    props.content_type = (mqtt_str_t){(const uint8_t *)"text/plain", 10};
    props.n_user = 1;
    props.user = &up;
    msg_t *m = msg_new("a/b", 3, (const uint8_t *)"xyz", 3, 2, true, &props, clock_ms());
    m->expire_at = clock_ms() + 60000;
    store_rec_t in[] = {
        {.type = SR_SESS, .sid = 7, .expiry = 300, .version = 4, .str = "client", .str_len = 6},
        {.type = SR_SUB, .sid = 7, .options = 0x12, .sub_id = 99, .str = "a/+", .str_len = 3},
        {.type = SR_QADD, .sid = 7, .mid = 3, .qos = 1, .retain = 1, .n_sub_ids = 2,
         .sub_ids = {5, 6}},
        {.type = SR_QSENT, .sid = 7, .mid = 3, .pid = 65535},
        {.type = SR_OUT, .sid = 7, .mid = 0, .pid = 9, .state = OUT_WAIT_PUBCOMP, .qos = 2},
        {.type = SR_MSG, .mid = 3, .msg = m},
        {.type = SR_RETCLR, .str = "a/b", .str_len = 3},
    };
    sbuf_t b = {0};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        ASSERT_EQ(store_rec_encode(&b, &in[i]), 0);
    size_t off = 0;
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        uint8_t type;
        const uint8_t *pl;
        uint32_t plen;
        size_t total;
        ASSERT_EQ(store_frame_check(b.p + off, b.len - off, &type, &pl, &plen, &total), FRAME_OK);
        store_rec_t r;
        ASSERT_EQ(store_rec_decode(type, pl, plen, &r), 0);
        ASSERT_EQ(r.type, in[i].type);
        ASSERT_EQ(r.sid, in[i].sid);
        ASSERT_EQ(r.mid, in[i].mid);
        ASSERT_EQ(r.pid, in[i].pid);
        ASSERT_EQ(r.expiry, in[i].expiry);
        ASSERT_EQ(r.options, in[i].options);
        ASSERT_EQ(r.sub_id, in[i].sub_id);
        ASSERT_EQ(r.n_sub_ids, in[i].n_sub_ids);
        ASSERT_EQ(r.sub_ids[1], in[i].sub_ids[1]);
        ASSERT_EQ(r.state, in[i].state);
        ASSERT_EQ(r.str_len, in[i].str_len);
        if (r.str_len)
            ASSERT_MEM_EQ(r.str, in[i].str, r.str_len);
        if (r.type == SR_MSG) {
            ASSERT_STR_EQ(r.msg->topic, "a/b");
            ASSERT_MEM_EQ(r.msg->payload, "xyz", 3);
            ASSERT_EQ(r.msg->qos, 2);
            ASSERT(r.msg->retain);
            ASSERT_EQ(r.msg->props.content_type.len, 10);
            ASSERT_EQ(r.msg->props.n_user, 1);
            ASSERT_MEM_EQ(r.msg->props.user[0].value.p, "v", 1);
            ASSERT(r.msg->expire_at > clock_ms() + 58000);
            msg_unref(r.msg);
        }
        off += total;
    }
    ASSERT_EQ(off, b.len);
    /* one flipped bit anywhere fails the checksum */
    b.p[8] ^= 0x10;
    uint8_t type;
    const uint8_t *pl;
    uint32_t plen;
    size_t total;
    ASSERT_EQ(store_frame_check(b.p, b.len, &type, &pl, &plen, &total), FRAME_BAD);
    ASSERT_EQ(store_frame_check(b.p, 5, &type, &pl, &plen, &total), FRAME_SHORT);
    sbuf_free(&b);
    msg_unref(m);
}

/* ---- replay of every record type ------------------------------------------------------------- */

/* Builds: session "a" with 2 subscriptions (one removed), a delivery acked, one past PUBREC, one
 * in flight, one queued, one dropped, incoming ids 1 (released) and 2; session "gone" deleted;
 * retained r/1 set, r/2 set then cleared. */
static void build_state(store_t *st)
{
    session_t *a = durable(st, "a", 600);
    session_t *gone = durable(st, "gone", 60);
    session_lock(a);
    store_sub(st, a, "t/#", 3, 1, 0);
    store_sub(st, a, "x/+", 3, 2, 42);
    store_unsub(st, a, "t/#", 3);
    msg_t *m[5];
    for (int i = 0; i < 5; i++) {
        char p[8];
        snprintf(p, sizeof p, "m%d", i);
        m[i] = mk("x/y", p, 2, false);
        delivery_t d = {.msg = m[i], .qos = i == 1 ? 2 : 1, .n_sub_ids = 1, .sub_ids = {42}};
        store_queued(st, a, &d);
    }
    store_sent(st, a, m[0], 10);
    store_sent(st, a, m[1], 11);
    store_sent(st, a, m[2], 12);
    store_sent(st, a, m[4], 0); /* left the queue without an ack (QoS 0, expired...) */
    session_unlock(a);
    store_out_done(st, a, 10);
    store_out_pubrec(st, a, 11);
    store_in_add(st, a, 1);
    store_in_add(st, a, 2);
    store_in_del(st, a, 1);
    session_lock(gone);
    store_session_delete(st, gone);
    session_unlock(gone);
    msg_t *r1 = mk("r/1", "keep", 1, true), *r2 = mk("r/2", "drop", 0, true);
    msg_t *clear = mk("r/2", "", 0, true);
    store_retained(st, r1);
    store_retained(st, r2);
    store_retained(st, clear);
    msg_unref(r1);
    msg_unref(r2);
    msg_unref(clear);
    for (int i = 0; i < 5; i++)
        msg_unref(m[i]);
    session_unref(a);
    session_unref(gone);
}

/* extra: sessions and retained messages the test added on top of build_state() */
static void check_state_plus(store_t *st, size_t extra)
{
    store_state_t *s = store_state_of(st);
    ASSERT_EQ(kv_count(s->sessions), 1 + (extra >> 4));
    ASSERT(find_session(st, "gone") == NULL);
    ssess_t *a = find_session(st, "a");
    ASSERT(a != NULL);
    ASSERT_EQ(a->expiry, 600);
    ASSERT_EQ(a->version, 5);
    ASSERT_EQ(a->n_subs, 1);
    ASSERT_STR_EQ(a->subs[0].filter, "x/+");
    ASSERT_EQ(a->subs[0].options, 2);
    ASSERT_EQ(a->subs[0].sub_id, 42);
    ASSERT_EQ(a->n_out, 2);
    ASSERT_EQ(a->out[0].pid, 11);
    ASSERT_EQ(a->out[0].state, OUT_WAIT_PUBCOMP);
    ASSERT(a->out[0].m == NULL);
    ASSERT_EQ(a->out[1].pid, 12);
    ASSERT_EQ(a->out[1].state, OUT_WAIT_PUBACK);
    ASSERT_MEM_EQ(a->out[1].m->msg->payload, "m2", 2);
    ASSERT_EQ(a->out[1].sub_ids[0], 42);
    ASSERT_EQ(a->q_len - a->q_head, 1);
    ASSERT_MEM_EQ(a->queue[a->q_head].m->msg->payload, "m3", 2);
    ASSERT_EQ(a->n_in, 1);
    ASSERT_EQ(a->in_ids[0], 2);
    ASSERT_EQ(kv_count(s->msgs), 2); /* m2 and m3 are still needed; the others are not */
    ASSERT_EQ(kv_count(s->retained), 1 + (extra & 15));
    msg_t *r = kv_get(s->retained, "r/1", 3);
    ASSERT(r != NULL);
    ASSERT_MEM_EQ(r->payload, "keep", 4);
}

static void check_state(store_t *st)
{
    check_state_plus(st, 0);
}

TEST(every_record_type_replays)
{
    char err[512];
    fresh_dir();
    store_t *st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    build_state(st);
    store_close(st);
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    check_state(st);
    store_close(st);
    remove_dir();
}

TEST(a_message_is_stored_once_for_many_sessions)
{
    char err[512];
    fresh_dir();
    store_t *st = open_store(err, sizeof err);
    session_t *s[3];
    msg_t *m = mk("big", "0123456789012345678901234567890123456789", 1, false);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        s[i] = durable(st, id, 100);
        delivery_t d = {.msg = m, .qos = 1};
        session_lock(s[i]);
        store_queued(st, s[i], &d);
        session_unlock(s[i]);
    }
    store_close(st);
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    ASSERT_EQ(store_state_of(st)->records[SR_MSG], 1);
    ASSERT_EQ(store_state_of(st)->records[SR_QADD], 3);
    ASSERT_EQ(kv_count(store_state_of(st)->msgs), 1);
    store_close(st);
    for (int i = 0; i < 3; i++)
        session_unref(s[i]);
    msg_unref(m);
    remove_dir();
}

/* ---- damaged files ---------------------------------------------------------------------------- */

static void write_file(const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, p, n) != (ssize_t)n)
        abort();
    close(fd);
}

static size_t read_file(uint8_t *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, cap);
    if (fd >= 0)
        close(fd);
    return n < 0 ? 0 : (size_t)n;
}

/* A fresh store with build_state() in it, closed; its file's bytes go to buf. */
static size_t built_file(uint8_t *buf, size_t cap)
{
    char err[512];
    fresh_dir();
    store_t *st = open_store(err, sizeof err);
    build_state(st);
    store_close(st);
    return read_file(buf, cap);
}

TEST(torn_last_record_is_cut)
{
    char err[512];
    uint8_t buf[8192];
    size_t n = built_file(buf, sizeof buf);
    store_t *st;
    /* half of a new record at the end, as a crash in the middle of a write leaves it */
    store_rec_t r = {.type = SR_SUB, .sid = 1, .options = 1, .str = "late/filter", .str_len = 11};
    sbuf_t b = {0};
    store_rec_encode(&b, &r);
    memcpy(buf + n, b.p, b.len / 2);
    write_file(buf, n + b.len / 2);
    sbuf_free(&b);
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    check_state(st);
    ASSERT_EQ(file_size(), (long)n);
    store_close(st);
    remove_dir();
}

TEST(bad_checksum_on_the_last_record_is_cut)
{
    char err[512];
    uint8_t buf[8192];
    size_t n = built_file(buf, sizeof buf);
    store_t *st;
    store_rec_t r = {.type = SR_INADD, .sid = 1, .pid = 77};
    sbuf_t b = {0};
    store_rec_encode(&b, &r);
    b.p[b.len - 1] ^= 1;
    memcpy(buf + n, b.p, b.len);
    write_file(buf, n + b.len);
    sbuf_free(&b);
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    ASSERT_EQ(find_session(st, "a")->n_in, 1);
    ASSERT_EQ(file_size(), (long)n);
    store_close(st);
    remove_dir();
}

TEST(damage_in_the_middle_is_refused_with_its_offset)
{
    char err[512], want[64];
    uint8_t buf[8192];
    size_t n = built_file(buf, sizeof buf);
    store_t *st;
    /* the second record: skip the header and the first record */
    size_t first = STORE_HEADER_SIZE;
    uint32_t len0 = buf[first + 2] | (uint32_t)buf[first + 3] << 8;
    size_t second = first + len0 + STORE_REC_OVERHEAD;
    buf[second + 7] ^= 0xFF;
    write_file(buf, n);
    st = open_store(err, sizeof err);
    ASSERT(st == NULL);
    snprintf(want, sizeof want, "offset %zu:", second);
    ASSERT(strstr(err, want) != NULL);
    ASSERT(strstr(err, path) != NULL);
    ASSERT_EQ(file_size(), (long)n); /* nothing was cut */
    remove_dir();
}

TEST(wrong_version_is_refused)
{
    char err[512];
    uint8_t h[STORE_HEADER_SIZE];
    fresh_dir();
    store_header_make(h, 99);
    write_file(h, sizeof h);
    ASSERT(open_store(err, sizeof err) == NULL);
    ASSERT(strstr(err, "version 99") != NULL);
    ASSERT(strstr(err, "offset 8") != NULL);
    remove_dir();
}

TEST(garbage_is_refused)
{
    char err[512];
    fresh_dir();
    const char junk[] = "this is not a store at all, just some text that happens to be here";
    write_file(junk, sizeof junk);
    ASSERT(open_store(err, sizeof err) == NULL);
    ASSERT(strstr(err, "offset 0") != NULL);
    ASSERT(strstr(err, "bad magic") != NULL);
    write_file(junk, 5);
    ASSERT(open_store(err, sizeof err) == NULL);
    remove_dir();
}

/* Appends at `at` a `sent` record whose payload is 5 bytes instead of 18, framed and checksummed
 * correctly. Returns its size. */
static size_t put_malformed(uint8_t *at)
{
    at[0] = STORE_REC_MAGIC;
    at[1] = SR_QSENT;
    at[2] = 5;
    at[3] = at[4] = at[5] = 0;
    memcpy(at + 6, "\1\0\0\0\0", 5);
    uint32_t crc = store_crc32(0, at, 11);
    for (int i = 0; i < 4; i++)
        at[11 + i] = (uint8_t)(crc >> (8 * i));
    return 15;
}

TEST(malformed_record_with_a_valid_checksum_is_refused)
{
    char err[512], want[96];
    uint8_t buf[8192];
    size_t n = built_file(buf, sizeof buf);
    size_t bad = put_malformed(buf + n);
    uint8_t type;
    const uint8_t *pl;
    uint32_t plen;
    size_t total;
    ASSERT_EQ(store_frame_check(buf + n, bad, &type, &pl, &plen, &total), FRAME_OK);
    /* last in the file: an interrupted write does not leave a valid checksum, so no cut */
    write_file(buf, n + bad);
    ASSERT(open_store(err, sizeof err) == NULL);
    snprintf(want, sizeof want, "offset %zu: malformed sent record (valid checksum)", n);
    ASSERT(strstr(err, want) != NULL);
    ASSERT(strstr(err, path) != NULL);
    ASSERT_EQ(file_size(), (long)(n + bad));
    /* in the middle, followed by a valid record: the same refusal */
    store_rec_t r = {.type = SR_INADD, .sid = 1, .pid = 77};
    sbuf_t b = {0};
    store_rec_encode(&b, &r);
    memcpy(buf + n + bad, b.p, b.len);
    write_file(buf, n + bad + b.len);
    sbuf_free(&b);
    ASSERT(open_store(err, sizeof err) == NULL);
    ASSERT(strstr(err, want) != NULL);
    remove_dir();
}

TEST(torn_header_starts_empty)
{
    char err[512];
    uint8_t h[STORE_HEADER_SIZE];
    fresh_dir();
    store_header_make(h, STORE_FORMAT_VERSION);
    write_file(h, 7);
    store_t *st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    ASSERT_EQ(kv_count(store_state_of(st)->sessions), 0);
    ASSERT_EQ(file_size(), STORE_HEADER_SIZE);
    store_close(st);
    remove_dir();
}

/* ---- compaction ------------------------------------------------------------------------------- */

TEST(compaction_preserves_state_and_shrinks_the_log)
{
    char err[512];
    fresh_dir();
    store_t *st = open_store(err, sizeof err);
    build_state(st);
    /* churn: many retained updates of one topic leave a long log with little live data */
    for (int i = 0; i < 500; i++) {
        msg_t *m = mk("churn", "some payload that takes room", 1, true);
        store_retained(st, m);
        msg_unref(m);
    }
    store_close(st);
    long before = file_size();
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    store_compact(st);
    long after = file_size();
    ASSERT(after > 0 && after * 10 < before);
    store_close(st);
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    check_state_plus(st, 1);
    /* and the compacted log takes appends again */
    session_t *n = durable(st, "after", 5);
    store_close(st);
    st = open_store(err, sizeof err);
    ASSERT(find_session(st, "after") != NULL);
    check_state_plus(st, 0x11);
    store_close(st);
    session_unref(n);
    remove_dir();
}

/* Retained updates of one topic with a 1 KiB payload: each adds about 1 KiB to the log and
 * nothing to the live data. */
static void churn(store_t *st, int n)
{
    static char payload[1025];
    memset(payload, 'p', 1024);
    for (int i = 0; i < n; i++) {
        msg_t *m = mk("churn", payload, 1, true);
        store_retained(st, m);
        msg_unref(m);
    }
}

/* The promise of automatic compaction: the log is at most ratio x the live data, or under the
 * 1 MiB floor below which size alone does not compact it. */
static long log_bound(store_t *st, int ratio)
{
    return (long)((store_state_of(st)->live_bytes + STORE_HEADER_SIZE) * (uint64_t)ratio) +
           (1L << 20);
}

TEST(automatic_compaction_keeps_the_log_bounded)
{
    char err[512];
    fresh_dir();
    store_t *st = open_store(err, sizeof err); /* ratio 4, no autosave_interval */
    build_state(st);
    long written = 0, prev = 0;
    int shrunk = 0;
    for (int round = 0; round < 64; round++) { /* 64 rounds of 64 KiB: 4 MiB through the log */
        churn(st, 64);
        store_writer_round(st);
        long size = file_size();
        ASSERT(size <= log_bound(st, 4));
        shrunk += size < prev;
        written += 64 * 1024;
        prev = size;
    }
    ASSERT(written >= 4L << 20);
    ASSERT(shrunk >= 3); /* compacted about every MiB, nobody asked */
    store_close(st);
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    check_state_plus(st, 1);
    store_close(st);
    remove_dir();
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

TEST(the_writer_thread_compacts_on_its_own)
{
    char err[512];
    fresh_dir();
    store_t *st = open_store(err, sizeof err);
    build_state(st);
    churn(st, 1);
    store_writer_round(st);
    long bound = log_bound(st, 4); /* the live data no longer changes: one topic churns */
    ASSERT_EQ(store_start(st), 0);
    churn(st, 3 * 1024); /* 3 MiB */
    long size = -1;
    for (int i = 0; i < 1000; i++) { /* up to 10 s: everything written, then within the bound */
        size = file_size();
        if (store_caught_up(st) && size <= bound)
            break;
        sleep_ms(10);
    }
    ASSERT(store_caught_up(st));
    ASSERT(size <= bound);
    store_close(st);
    remove_dir();
}

TEST(autosave_on_changes_checks_every_n_changes)
{
    char err[512];
    fresh_dir();
    store_opts_t o = {.fsync = STORE_FSYNC_NEVER, .compact_ratio = 4, .autosave_interval = 100,
                      .autosave_on_changes = true};
    store_t *st = open_store_opts(o, err, sizeof err);
    ASSERT(st != NULL);
    churn(st, 70); /* past the 64 KiB of a periodic check, 70 changes: no check yet */
    store_writer_round(st);
    ASSERT(file_size() > 70 * 1024);
    churn(st, 40); /* 110 changes: checked, and compacted */
    store_writer_round(st);
    ASSERT(file_size() < 4096);
    store_close(st);
    remove_dir();
    /* the same interval in seconds (the default meaning): 110 changes check nothing */
    fresh_dir();
    o.autosave_on_changes = false;
    st = open_store_opts(o, err, sizeof err);
    churn(st, 110);
    store_writer_round(st);
    ASSERT(file_size() > 110 * 1024);
    store_close(st);
    remove_dir();
}

/* ---- rebuilding a broker ---------------------------------------------------------------------- */

static void release_retained(void *m)
{
    msg_unref(m);
}

static void count_match(void *arg, const router_match_t *m)
{
    (void)m;
    (*(int *)arg)++;
}

static void broker_for_restore(broker_t *b)
{
    memset(b, 0, sizeof *b);
    b->router = router_new();
    b->retained = retain_new(release_retained);
    b->registry = registry_new();
    b->n_workers = 1;
    b->workers = calloc(1, sizeof *b->workers);
}

static void broker_free_restored(broker_t *b)
{
    for (size_t i = 0; i < b->workers[0].offline.n; i++) {
        session_t *s = b->workers[0].offline.v[i];
        registry_lock(b->registry);
        registry_remove(b->registry, s);
        registry_unlock(b->registry);
        session_unref(s);
    }
    free(b->workers[0].offline.v);
    registry_free(b->registry);
    router_free(b->router);
    retain_free(b->retained);
    free(b->workers);
}

TEST(restore_rebuilds_the_broker)
{
    char err[512];
    fresh_dir();
    store_t *st = open_store(err, sizeof err);
    build_state(st);
    store_close(st);
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    static broker_t b;
    broker_for_restore(&b);
    ASSERT_EQ(store_restore(st, &b), 0);
    ASSERT_EQ(retain_count(b.retained), 1);
    registry_lock(b.registry);
    session_t *s = registry_find(b.registry, "a", 1);
    registry_unlock(b.registry);
    ASSERT(s != NULL);
    ASSERT_EQ(s->expiry, 600);
    ASSERT(s->store_sid != 0);
    ASSERT_EQ(s->n_subs, 1);
    ASSERT_EQ(s->n_out, 2);
    ASSERT_EQ(s->out[0].state, OUT_WAIT_PUBCOMP);
    ASSERT_EQ(s->out[1].id, 12);
    ASSERT_EQ(s->q_len, 1);
    ASSERT_EQ(s->n_in, 1);
    int hits = 0;
    router_match(b.router, "x/y", 3, count_match, &hits);
    ASSERT_EQ(hits, 1);
    ASSERT_EQ(b.workers[0].offline.n, 1);
    store_close(st);
    broker_free_restored(&b);
    remove_dir();
}

TEST(restore_drops_over_the_limits_reach_the_file)
{
    char err[512];
    fresh_dir();
    store_t *st = open_store(err, sizeof err);
    session_t *q = durable(st, "q", 600);
    msg_t *m[6];
    session_lock(q);
    for (int i = 0; i < 6; i++) { /* m1 is QoS 0 */
        char p[16];
        snprintf(p, sizeof p, "m%d", i);
        m[i] = mk("q/x", p, 1, false);
        delivery_t d = {.msg = m[i], .qos = i == 1 ? 0 : 1};
        store_queued(st, q, &d);
    }
    session_unlock(q);
    store_close(st);
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    ASSERT_EQ(find_session(st, "q")->q_len, 6);
    static broker_t b;
    broker_for_restore(&b);
    b.lim.max_queued = 3; /* and queue_qos0 off: m1 is not kept, m4 and m5 do not fit */
    ASSERT_EQ(store_restore(st, &b), 0);
    ASSERT_EQ(b.workers[0].offline.n, 1);
    session_t *s = b.workers[0].offline.v[0];
    ASSERT_EQ(s->q_len, 3);
    store_writer_round(st); /* the writer starts: the drops reach the file */
    store_close(st);
    st = open_store(err, sizeof err);
    ASSERT(st != NULL);
    ssess_t *e = find_session(st, "q");
    ASSERT(e != NULL);
    ASSERT_EQ(e->q_len - e->q_head, 3);
    const char *want[] = {"m0", "m2", "m3"};
    for (int i = 0; i < 3; i++)
        ASSERT_MEM_EQ(e->queue[e->q_head + (uint32_t)i].m->msg->payload, want[i], 2);
    ASSERT_EQ(kv_count(store_state_of(st)->msgs), 3);
    store_close(st);
    broker_free_restored(&b);
    for (int i = 0; i < 6; i++)
        msg_unref(m[i]);
    session_unref(q);
    remove_dir();
}

TEST(dump_prints_the_contents)
{
    char err[512];
    fresh_dir();
    store_t *st = open_store(err, sizeof err);
    build_state(st);
    store_close(st);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ASSERT_EQ(store_dump(dir, "acemq.db", out, err, sizeof err), 0);
    fclose(out);
    ASSERT(strstr(text, "session \"a\" expiry=600") != NULL);
    ASSERT(strstr(text, "subscription \"x/+\"") != NULL);
    ASSERT(strstr(text, "queued qos=1 topic=\"x/y\" size=2") != NULL);
    ASSERT(strstr(text, "retained \"r/1\"") != NULL);
    ASSERT(strstr(text, "m3") == NULL); /* never payload bytes */
    free(text);
    remove_dir();
}

int main(void)
{
    log_configure(LOG_TO_STDERR, NULL, 1u << LOGL_ERROR); /* the store's info lines are noise here */
    RUN(crc32_matches_the_standard_check_value);
    RUN(records_round_trip);
    RUN(every_record_type_replays);
    RUN(a_message_is_stored_once_for_many_sessions);
    RUN(torn_last_record_is_cut);
    RUN(bad_checksum_on_the_last_record_is_cut);
    RUN(damage_in_the_middle_is_refused_with_its_offset);
    RUN(wrong_version_is_refused);
    RUN(garbage_is_refused);
    RUN(malformed_record_with_a_valid_checksum_is_refused);
    RUN(torn_header_starts_empty);
    RUN(compaction_preserves_state_and_shrinks_the_log);
    RUN(automatic_compaction_keeps_the_log_bounded);
    RUN(the_writer_thread_compacts_on_its_own);
    RUN(autosave_on_changes_checks_every_n_changes);
    RUN(restore_rebuilds_the_broker);
    RUN(restore_drops_over_the_limits_reach_the_file);
    RUN(dump_prints_the_contents);
    return test_summary();
}
