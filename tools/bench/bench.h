/*
 * tools/bench/bench.h: the shared shape of acemq-bench, the MQTT load generator.
 *
 * Threads: the main thread parses options, builds every client, starts T loop threads and then
 * only watches: it prints progress once per second and moves the run through its phases
 * (SETUP -> RUN -> DRAIN -> DONE) by writing g_run.phase and waking each loop with uv_async.
 * A client belongs to one loop thread for its whole life; nothing but the counters in
 * bench_stats_t (single writer, relaxed atomics) and the shared-subscription trackers (one mutex)
 * is touched by two threads while loops run. After the loops are joined, main reads everything.
 *
 * Payload: the first 16 bytes of every message are the send time (CLOCK_MONOTONIC ns, u64), the
 * publisher's sequence number (u32) and the publisher's index (u32), host byte order (publishers
 * and subscribers share a process, hence a clock and a byte order).
 */
#ifndef ACEMQ_BENCH_H
#define ACEMQ_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "proto/mqtt.h"
#include "tools/bench/hist.h"
#include "tools/bench/transport.h"

#define BENCH_HDR 16u       /* payload header: ts, seq, publisher */
#define BENCH_BATCH 65536u  /* bytes a publisher queues per write when unthrottled */

typedef enum { SC_FANIN, SC_FANOUT, SC_PAIRS, SC_SHARED, SC_STORM, SC_IDLE } scenario_t;
typedef enum { PH_SETUP, PH_RUN, PH_DRAIN, PH_DONE } phase_t;
typedef enum { ROLE_PUB, ROLE_SUB, ROLE_STORM, ROLE_IDLE } role_t;
typedef enum {
    CS_NEW,       /* not connected (yet, or again for a connect-storm slot) */
    CS_CONNECTING,
    CS_CONNACK,   /* CONNECT sent */
    CS_SUBACK,    /* SUBSCRIBE sent */
    CS_READY,
    CS_CLOSING,   /* DISCONNECT sent, waiting for the broker to close */
    CS_CLOSED,
} cstate_t;

typedef struct {
    scenario_t scenario;
    const char *scenario_name;
    const char *host;
    int port;
    struct sockaddr_storage addr;
    const bench_transport_t *tp;
    int threads;
    int mqtt;
    int qos;
    uint32_t size;
    uint32_t rate;     /* messages/s per publisher, 0 = as fast as the window allows */
    uint32_t inflight; /* QoS 1/2 window per publisher */
    double duration, warmup, drain, connect_timeout;
    uint32_t publishers, subscribers, clients, concurrency;
    uint16_t keepalive;
    int broker_pid;
    const char *json;
    const char *label;
    bool quiet;
    /* TLS (--tls): tls.c reads these in bench_tls_init() */
    const char *tls_cafile, *tls_cert, *tls_key, *tls_servername, *tls_ciphers;
    bool tls_resume;
    /* ACE (--ace-token / --ace-token-dir with --ace-pop-key): ace.c reads these */
    const char *ace_token, *ace_token_dir, *ace_pop_key, *ace_pop_type;
    bool ace;
    bool durable;             /* --durable: sessions that outlive the connection */
    const char *topic_prefix; /* first level of every topic ("bench") */
    char tag[9]; /* unique per run, in every topic, so runs never hear each other */
} bench_cfg_t;

/*
 * Flow control when --rate is 0: a publisher keeps at most --inflight messages between itself and
 * its slowest subscriber (sent minus the highest sequence number each subscriber has seen), on top
 * of MQTT's own QoS 1/2 window towards the broker. Without it an eager broker queues without
 * bound and the run measures the queue instead of the broker.
 *
 * Loss and duplicate accounting for one (subscriber, publisher) stream: a ring of wbits bits over
 * sequence numbers [base, base + wbits). A number falling off the low end unseen is missing; one
 * seen twice, or arriving below base, is a duplicate. MQTT keeps one publisher's messages in order
 * on one subscription, so the ring only has to absorb the reordering of shared subscriptions.
 */
typedef struct {
    uint64_t base;
    uint64_t *bits;
    uint32_t wbits;
    uint64_t unique, dup, missing;
    uv_mutex_t *lock;     /* shared-subscription trackers are hit by several subscribers */
    _Atomic uint64_t mark; /* highest sequence number seen + 1, read by the publisher */
} track_t;

void track_init(track_t *t, uint32_t wbits, uv_mutex_t *lock);
void track_mark(track_t *t, uint64_t seq);
void track_finish(track_t *t, uint64_t sent); /* counts what never came of seq [0, sent) */
void track_free(track_t *t);

/* Counters are written by their loop thread only and read by main for progress. */
typedef _Atomic uint64_t ctr_t;
static inline void ctr_add(ctr_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline uint64_t ctr_get(ctr_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

typedef struct {
    ctr_t sent, recv;         /* all messages */
    ctr_t sent_win, recv_win; /* sent / received inside the measurement window */
    ctr_t bytes_win;          /* payload bytes received inside the window */
    ctr_t conn_ok, conn_fail, conn_win, disconnects, proto_err;
    ctr_t subs_ready, pubs_ready, idle_done, inflight, open_conns;
    ctr_t tls_full, tls_resumed; /* completed TLS handshakes, by kind */
    ctr_t refused;               /* CONNACKs with a failure code */
    hist_t lat;      /* end-to-end latency, ns, of messages sent inside the window */
    hist_t conn_lat; /* TCP connect start to CONNACK, ns */
} bench_stats_t;

typedef struct bench_thread bench_thread_t;

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bbuf_t;

typedef struct bench_client {
    bench_conn_t conn; /* first: the transport hands back this pointer */
    bench_thread_t *th;
    role_t role;
    cstate_t state;
    uint32_t idx;
    proto_ctx_t ctx;
    char client_id[24];
    char topic[112]; /* a publisher's topic or a subscriber's filter */
    uint16_t topic_len;
    bool tcp_up; /* the transport reported the connection open and it is not closed yet */
    bbuf_t out[2];   /* out[fill] takes new packets while the other one is being written */
    int fill;
    bool writing;
    bbuf_t rx; /* a partial packet carried over between reads */
    uint64_t t_start, t_last_tx, t_closing;
    /* publisher */
    uint32_t pub_id;
    uint64_t seq; /* messages sent so far = the next sequence number */
    uint32_t inflight, window;
    uint16_t next_id;
    uint8_t *ids; /* per packet id: 0 free, 1 awaiting PUBACK/PUBREC, 2 awaiting PUBCOMP */
    track_t **peers; /* the trackers of this publisher's stream, one per receiving subscriber */
    uint32_t npeers;
    bool stalled; /* unthrottled and the end-to-end window is full */
    /* subscriber */
    track_t *trk;
    uint32_t trk_first, trk_n;
} bench_client_t;

struct bench_thread {
    bench_io_t io; /* first: the transport finds it through loop->data */
    int idx;
    uv_thread_t tid;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick; /* 1 ms: rate-limited publishing */
    uv_timer_t sweep; /* 250 ms: timeouts, keepalive, idle connect pacing */
    int seen_phase;
    bench_client_t **clients;
    uint32_t nclients, cap_clients;
    uint32_t next_start; /* idle: the next client to connect */
    uint32_t pending;    /* idle: connects under way */
    bool starting;       /* idle: inside loop_idle_next */
    bool stalled;        /* a publisher of this loop waits for its end-to-end window */
    bench_stats_t st;
};

typedef struct {
    _Atomic int phase;
    _Atomic uint64_t t_run;           /* when publishing started */
    _Atomic uint64_t t_win0, t_win1;  /* measurement window [t_win0, t_win1) */
    _Atomic int first_refusal;        /* the first failure code a CONNACK carried, or -1 */
} bench_run_t;

extern bench_cfg_t g_cfg;
extern bench_run_t g_run;

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int run_phase(void)
{
    return atomic_load_explicit(&g_run.phase, memory_order_acquire);
}

static inline bool in_window(uint64_t t)
{
    return t >= atomic_load_explicit(&g_run.t_win0, memory_order_relaxed) &&
           t < atomic_load_explicit(&g_run.t_win1, memory_order_relaxed);
}

/* client.c */
void client_start(bench_client_t *c);
void client_pump(bench_client_t *c);       /* publish what the rate and the window allow */
void client_sweep(bench_client_t *c, uint64_t now);
void client_disconnect(bench_client_t *c); /* DISCONNECT, then close when the broker does */
void client_release(bench_client_t *c);

/* loop.c */
int loop_thread_start(bench_thread_t *th);
void loop_thread_wake(bench_thread_t *th);
void loop_add_client(bench_thread_t *th, bench_client_t *c);
void loop_idle_next(bench_thread_t *th); /* idle: a connect finished, start another */
void loop_pump_all(bench_thread_t *th);  /* give every publisher of the loop a chance to send */

/* setup.c: everything a run is made of; main reads it all once the loops are joined. */
typedef struct {
    bench_thread_t *th;
    bench_client_t **pubs, **subs, **others; /* others: connect-storm slots or idle clients */
    uint32_t npubs, nsubs, nothers;
    track_t *trk;
    uint32_t ntrk;
} bench_world_t;

extern bench_world_t g_w;
uint64_t setup_raise_nofile(void);
void setup_resolve(void);
void setup_build(void);
void setup_free(void);

/* tls.c: the mbedTLS client configuration from g_cfg (exits on a bad file); per-slot cleanup;
 * the ciphersuite the first handshake negotiated ("" before one). */
void bench_tls_init(void);
void bench_tls_release(bench_conn_t *c);
const char *bench_tls_ciphersuite(void);
/* The session's RFC 5705 exporter value for ACE (label EXPORTER-ACE-MQTT-Sign-Challenge, 32 bytes,
 * zero-length context), once the handshake is done; NULL before, or when it could not be derived. */
const uint8_t *bench_tls_exporter(bench_conn_t *c);

/* ace.c: tokens and the PoP key from g_cfg (exits on a bad file); Form A Authentication Data for
 * one connect (malloc'd; NULL on failure); what was loaded and used, for the report. */
void bench_ace_init(void);
uint8_t *bench_ace_auth_data(const uint8_t exporter[32], size_t *len);
size_t bench_ace_ntokens(void);
uint64_t bench_ace_used(void);
const char *bench_ace_key_type(void);
void bench_ace_free(void);

/* options.c: fills g_cfg from argv (with the scenario's defaults); exits on a bad option. */
void options_parse(int argc, char **argv);

/* report.c */
typedef struct {
    uint64_t sent, recv, sent_win, recv_win, bytes_win, conn_ok, conn_fail, conn_win;
    uint64_t disconnects, proto_err, expected, unique, lost, dup, pub_inflight;
    uint64_t tls_full, tls_resumed, refused;
    hist_t lat, conn_lat;
    double window_s;
    uint32_t idle_ok, idle_held;
    long rss_before_kb, rss_after_kb, rss_end_kb;
} bench_result_t;

void report_print(const bench_result_t *r, FILE *out);
int report_json(const bench_result_t *r, const char *path);

#endif
