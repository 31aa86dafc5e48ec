/*
 * tests/fuzz/conn_state_fuzz.c: libFuzzer target for the broker's connection state machine, with
 * the real code: broker/conn.c framing and dispatch, the CONNECT/PUBLISH/SUBSCRIBE handlers,
 * sessions and their queues, the router, retained messages, wills and session take-over.
 *
 * One broker_t (one worker, anonymous access, small limits so they are reached) is built per input
 * and its connections are fed through an in-memory transport (a stream_t whose writes land in a
 * buffer) instead of sockets. The worker's loop is not run by a thread: the harness plays the
 * worker's part at the end of every step, as worker.c does at the end of a loop turn (inbox, then
 * pending sessions and connections), and plays its 1 s tick with a clock it moves forward.
 *
 * Input: records of [op][len][len bytes]. op & 3 picks the connection (a free slot gets a new
 * one); op >> 2 & 7: 0 and 1 = the bytes arrive from that client, 2 and 6 = its socket goes away,
 * 3 and 7 = the clock moves forward len seconds and the tick runs (keepalive, connect timeout,
 * delayed wills, session expiry), 4 = the client stops reading with len x 8 KiB (at least 8 KiB)
 * of the broker's earlier bytes still unread in its socket (no bytes follow), 5 = it reads
 * everything again. Everything the broker writes is decoded as a client would decode it and must
 * be valid MQTT. Sanitizers and leak detection do the rest.
 *
 * A client that stops reading drives conn.c's write backpressure: its write completions are held
 * back (as a socket whose buffers are full would hold them) and the unread backlog counts in the
 * connection's unsent bytes, so from len 128 on the connection is past its 1 MiB write high-water
 * and deliveries stay in the session queue, which fills up and drops. When the client reads again,
 * the held completions run and the queue flows; a close runs them first with UV_ECANCELED, as
 * libuv does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/config.h"
#include "broker/core.h"
#include "broker/log.h"
#include "broker/retain.h"
#include "broker/router.h"

enum { SLOTS = 3, OUT_MAX = 1 << 20, BACKLOG_UNIT = 8 * 1024 };

/* conn.c's transport callbacks (worker.c declares it the same way). */
extern const stream_events_t *conn_stream_events(void);

typedef struct {
    stream_write_cb cb;
    void *arg;
} held_t;

typedef struct {
    stream_t s;
    bool closing;   /* ops->close was called: on_closed is due */
    bool peer_gone; /* the fuzzer hung up */
    bool stalled;   /* the client does not read: write completions wait in `held` */
    uint8_t *out;   /* bytes the broker wrote, not yet checked */
    size_t out_len, out_cap;
    held_t *held;     /* completions of writes made while stalled, in order */
    size_t n_held, cap_held;
    size_t backlog;   /* unread bytes the fuzzer declared, counted in the connection's unsent */
    proto_ctx_t cctx; /* the client's decoding state */
} fstream_t;

static const char conf_text[] = "listener 1883\n"
                                "allow_anonymous true\n"
                                "max_inflight_messages 3\n"
                                "max_queued_messages 6\n"
                                "max_subscriptions 6\n"
                                "max_topic_levels 6\n"
                                "max_topic_alias 4\n"
                                "max_packet_size 4096\n"
                                "max_keepalive 120\n"
                                "connect_timeout 5\n"
                                "retain_available true\n";

static acemq_config_t cfg;
static struct auth *auth; /* built once: with no ACE directives it keeps no per-input state */
static listener_rt_t lrt;
static broker_t b;
static worker_t *w;
static uint64_t clock_offset;
static fstream_t *slot[SLOTS];

static void fail(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "conn_state: %s (%zu bytes:", what, n);
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, ")\n");
    abort();
}

/* ---- the in-memory transport ------------------------------------------------------------------ */

/* Decodes what the broker sent so far, as the client would. */
static void check_output(fstream_t *fs)
{
    conn_t *c = fs->s.owner;
    size_t off = 0;
    while (off < fs->out_len) {
        size_t hdr;
        uint32_t rem;
        int fr = proto_frame(fs->out + off, fs->out_len - off, 0, &hdr, &rem);
        if (fr < 0)
            fail("the broker wrote a malformed fixed header", fs->out + off, fs->out_len - off);
        if (fr == PROTO_FRAME_NEED_MORE || hdr + rem > fs->out_len - off)
            break;
        if (c && c->version)
            fs->cctx.version = c->version;
        mqtt_packet_t p;
        const char *why = NULL;
        mqtt_rc_t rc = proto_decode(&fs->cctx, fs->out + off, hdr + rem, &p, &why);
        if (rc != MQTT_RC_SUCCESS) {
            fprintf(stderr, "conn_state: client-side decode: rc=0x%02x %s (version %u)\n", rc,
                    why ? why : "", fs->cctx.version);
            fail("the broker wrote a packet a client must refuse", fs->out + off, hdr + rem);
        }
        if (p.type == MQTT_CONNACK)
            fs->cctx.connected = true;
        proto_packet_free(&p);
        off += hdr + rem;
    }
    memmove(fs->out, fs->out + off, fs->out_len - off);
    fs->out_len -= off;
}

/* The client stops reading, with `backlog` bytes unread; 0 = it reads everything again. Completions
 * held back run in order, with `status` (UV_ECANCELED when the stream is closing). */
static void set_backlog(fstream_t *fs, size_t backlog, int status)
{
    conn_t *c = fs->s.owner;
    c->unsent = c->unsent - fs->backlog + backlog;
    fs->backlog = backlog;
    fs->stalled = backlog > 0;
    if (fs->stalled)
        return;
    for (size_t k = 0; k < fs->n_held; k++) /* a completion may write more: not held now */
        fs->held[k].cb(fs->held[k].arg, status);
    fs->n_held = 0;
    if (status == 0 && c->state == CS_CONNECTED)
        conn_schedule(c); /* writable again, as the completion of a write would say */
}

static int fs_start(stream_t *s)
{
    (void)s;
    return 0;
}

static int fs_write(stream_t *s, const uv_buf_t *bufs, unsigned n, stream_write_cb cb, void *arg)
{
    fstream_t *fs = (fstream_t *)s;
    for (unsigned i = 0; i < n; i++) {
        if (bufs[i].len == 0)
            continue;
        if (fs->out_len + bufs[i].len > OUT_MAX)
            fail("more than 1 MiB written and not framed", fs->out, fs->out_len);
        if (fs->out_len + bufs[i].len > fs->out_cap) {
            fs->out_cap = (fs->out_len + bufs[i].len) * 2;
            fs->out = realloc(fs->out, fs->out_cap);
        }
        memcpy(fs->out + fs->out_len, bufs[i].base, bufs[i].len);
        fs->out_len += bufs[i].len;
    }
    if (fs->out_len)
        check_output(fs);
    if (!fs->stalled) {
        cb(arg, 0); /* copied at once: the contract says cb may run before returning */
        return 0;
    }
    if (fs->n_held == fs->cap_held) {
        fs->cap_held = fs->cap_held ? fs->cap_held * 2 : 8;
        fs->held = realloc(fs->held, fs->cap_held * sizeof *fs->held);
    }
    fs->held[fs->n_held++] = (held_t){cb, arg};
    return 0;
}

static size_t fs_queued(const stream_t *s)
{
    (void)s;
    return 0;
}

static void fs_pause(stream_t *s, int paused)
{
    (void)s, (void)paused;
}

static void fs_close(stream_t *s)
{
    ((fstream_t *)s)->closing = true; /* on_closed comes later, as with uv_close */
}

static const stream_ops_t fs_ops = {fs_start, fs_write, fs_queued, fs_pause, fs_close, "fuzz"};

static fstream_t *open_conn(int i)
{
    fstream_t *fs = calloc(1, sizeof *fs);
    fs->s.ops = &fs_ops;
    fs->s.ev = conn_stream_events();
    fs->s.loop = &w->loop;
    fs->s.peer.in.sin_family = AF_INET;
    fs->s.peer.in.sin_port = htons(1000);
    fs->s.peer.in.sin_addr.s_addr = htonl(0xC0000201u + (uint32_t)i); /* 192.0.2.1... */
    fs->cctx.role = PROTO_ROLE_CLIENT;
    fs->cctx.version = MQTT_V311;
    conn_t *c = conn_new(w, &fs->s, &lrt);
    if (!c)
        abort();
    fs->s.owner = c;
    fs->s.ev->on_open(&fs->s);
    return fs;
}

/* The transport's single on_closed, then it frees itself. */
static void finish_close(int i, int status)
{
    fstream_t *fs = slot[i];
    slot[i] = NULL;
    set_backlog(fs, 0, UV_ECANCELED);
    fs->s.ev->on_closed(&fs->s, status, status ? "connection reset by peer" : "closed");
    free(fs->held);
    free(fs->out);
    free(fs);
}

/* ---- the worker's part ------------------------------------------------------------------------ */

static void on_async(uv_async_t *a)
{
    (void)a;
    worker_drain_inbox(w);
}

/* End of a loop turn: posted items, flushes, and the transports' due on_closed callbacks. */
static void settle(void)
{
    for (int round = 0; round < 8; round++) {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        worker_flush_pending(w);
        bool more = false;
        for (int i = 0; i < SLOTS; i++) {
            if (slot[i] && slot[i]->closing) {
                finish_close(i, slot[i]->peer_gone ? UV_ECONNRESET : 0);
                more = true;
            }
        }
        if (!more && w->inbox_n == 0)
            return;
    }
}

static bool tick_offline(session_t *s, uint64_t now)
{
    session_lock(s);
    if (s->conn || !s->registered) {
        session_unlock(s);
        return true;
    }
    bool expired = s->expiry != UINT32_MAX && now >= s->offline_since + (uint64_t)s->expiry * 1000u;
    msg_t *will = session_take_will(s, expired, now);
    session_unlock(s);
    if (will) {
        broker_publish_count(&b, will);
        msg_unref(will);
    }
    if (expired) {
        registry_lock(b.registry);
        session_lock(s);
        bool gone = !s->conn && s->registered;
        session_unlock(s);
        if (gone)
            registry_remove(b.registry, s);
        registry_unlock(b.registry);
        if (gone)
            session_clear(&b, s);
    }
    return expired;
}

static void tick(unsigned seconds)
{
    clock_offset += (uint64_t)seconds * 1000u;
    uint64_t now = clock_ms() + clock_offset;
    for (conn_t *c = w->conns; c; c = c->next)
        conn_tick(c, now);
    size_t keep = 0;
    for (size_t i = 0; i < w->offline.n; i++) {
        session_t *s = w->offline.v[i];
        if (tick_offline(s, now))
            session_unref(s);
        else
            w->offline.v[keep++] = s;
    }
    w->offline.n = keep;
    worker_flush_pending(w);
}

/* ---- set-up and tear-down --------------------------------------------------------------------- */

static void release_retained(void *m)
{
    msg_unref(m);
}

static void once(void)
{
    static bool done;
    char err[256];
    if (done)
        return;
    done = true;
    log_configure(0, NULL, 0);
    if (config_load_string(&cfg, conf_text, "conn_state", err, sizeof err) != 0) {
        fprintf(stderr, "conn_state: %s\n", err);
        abort();
    }
    lrt.cfg = cfg.listeners;
    if (!(auth = auth_new(&cfg, err, sizeof err))) {
        fprintf(stderr, "conn_state: %s\n", err);
        abort();
    }
    w = calloc(1, sizeof *w);
    pthread_mutex_init(&w->inbox_lock, NULL);
    uv_loop_init(&w->loop);
    w->loop.data = w;
    uv_async_init(&w->loop, &w->async, on_async);
    w->async.data = w;
}

static void broker_up(void)
{
    memset(&b, 0, sizeof b);
    b.cfg = &cfg;
    broker_limits_from_config(&b.lim, &cfg);
    b.router = router_new();
    b.retained = retain_new(release_retained);
    b.registry = registry_new();
    b.auth = auth;
    if (!b.router || !b.retained || !b.registry)
        abort();
    b.workers = w;
    b.n_workers = 1;
    b.listeners = &lrt;
    b.n_listeners = 1;
    b.started_at = clock_ms();
    w->b = &b;
    w->id = 0;
    atomic_store(&lrt.conns, 0);
    clock_offset = 0;
}

static void broker_down(void)
{
    for (int i = 0; i < SLOTS; i++)
        if (slot[i]) {
            slot[i]->peer_gone = true;
            finish_close(i, UV_EOF);
        }
    settle();
    if (w->conns)
        fail("a connection outlived its transport", NULL, 0);
    for (size_t k = 0; k < w->offline.n; k++)
        session_unref(w->offline.v[k]);
    w->offline.n = 0;
    registry_free(b.registry);
    router_free(b.router);
    retain_free(b.retained);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    once();
    broker_up();
    size_t pos = 0;
    while (pos + 2 <= size) {
        uint8_t op = data[pos];
        size_t len = data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = size - pos;
        int i = (op & 3) % SLOTS;
        switch ((op >> 2) & 7) {
        case 0:
        case 1:
            if (!slot[i])
                slot[i] = open_conn(i);
            if (len && !slot[i]->closing) {
                uint8_t *chunk = malloc(len); /* exact size: ASan sees any over-read */
                memcpy(chunk, data + pos, len);
                slot[i]->s.ev->on_data(&slot[i]->s, chunk, len);
                free(chunk);
            }
            break;
        case 2:
        case 6:
            if (slot[i]) {
                slot[i]->peer_gone = true;
                slot[i]->closing = true;
            }
            break;
        case 4:
        case 5:
            if (slot[i] && !slot[i]->closing)
                set_backlog(slot[i], ((op >> 2) & 7) == 4 ? (len ? len : 1) * BACKLOG_UNIT : 0, 0);
            len = 0;
            break;
        default:
            tick(len ? len : 1);
            len = 0;
            break;
        }
        pos += len;
        settle();
    }
    broker_down();
    return 0;
}
