/*
 * tools/bench/setup.c: what a run is made of, built before any loop starts: the fd limit, the
 * broker's address, the loop threads, the scenario's clients (their roles, client ids, topics
 * and filters) and the loss trackers wired to each subscriber.
 */
#include "tools/bench/bench.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

bench_world_t g_w;
static uv_mutex_t g_share_lock;

static void die(const char *msg)
{
    fprintf(stderr, "acemq-bench: %s\n", msg);
    exit(2);
}

/* Raises the soft fd limit to the hard one; returns the limit now in force. */
uint64_t setup_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

void setup_resolve(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    char port[8];
    snprintf(port, sizeof port, "%d", g_cfg.port);
    int rc = getaddrinfo(g_cfg.host, port, &hints, &res);
    if (rc) {
        fprintf(stderr, "acemq-bench: %s: %s\n", g_cfg.host, gai_strerror(rc));
        exit(2);
    }
    memcpy(&g_cfg.addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
}

static bench_client_t *new_client(role_t role, uint32_t idx, bench_thread_t *th)
{
    bench_client_t *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory");
    c->role = role;
    c->idx = idx;
    c->window = g_cfg.inflight;
    c->conn.tp = g_cfg.tp;
    snprintf(c->client_id, sizeof c->client_id, "b%s-%c%u", g_cfg.tag, "psci"[role], idx);
    loop_add_client(th, c);
    return c;
}

static void set_topic(bench_client_t *c, const char *fmt, uint32_t n)
{
    int len = snprintf(c->topic, sizeof c->topic, fmt, g_cfg.topic_prefix, g_cfg.tag, n);
    c->topic_len = (uint16_t)len;
}

/*
 * Trackers: fan-in/fan-out give every subscriber one per publisher (each should hear everyone);
 * pairs give subscriber i one, for publisher i; a shared group has one per publisher, used by
 * every member of the group under one lock.
 */
static void build_trackers(uint32_t P, uint32_t S)
{
    scenario_t sc = g_cfg.scenario;
    g_w.ntrk = sc == SC_FANIN || sc == SC_FANOUT ? P * S : P;
    g_w.trk = calloc(g_w.ntrk, sizeof *g_w.trk);
    if (!g_w.trk)
        die("out of memory");
    uint32_t wbits = 65536; /* 8 KB per stream; less when there are very many streams */
    while (wbits > 1024 && (uint64_t)g_w.ntrk * (wbits / 8) > (256u << 20))
        wbits /= 2;
    uv_mutex_init(&g_share_lock);
    for (uint32_t i = 0; i < g_w.ntrk; i++)
        track_init(&g_w.trk[i], wbits, sc == SC_SHARED ? &g_share_lock : NULL);
    /* Each publisher watches the trackers of its own stream for its end-to-end window. */
    for (uint32_t p = 0; p < P; p++) {
        bench_client_t *c = g_w.pubs[p];
        c->peers = calloc(g_w.ntrk / P, sizeof *c->peers);
        if (!c->peers)
            die("out of memory");
        for (uint32_t i = p; i < g_w.ntrk; i += P)
            c->peers[c->npeers++] = &g_w.trk[i];
    }
    for (uint32_t s = 0; s < S; s++) {
        bench_client_t *c = g_w.subs[s];
        if (sc == SC_PAIRS) {
            c->trk = &g_w.trk[s];
            c->trk_first = s;
            c->trk_n = 1;
        } else {
            c->trk = sc == SC_SHARED ? g_w.trk : &g_w.trk[s * P];
            c->trk_n = P;
        }
    }
}

static void build_messaging(void)
{
    uint32_t P = g_cfg.publishers, S = g_cfg.subscribers, T = (uint32_t)g_cfg.threads;
    static const char *pub_fmt[] = {"%s/%s/t/%u", "%s/%s/t/%u", "%s/%s/p/%u", "%s/%s/s/%u"};
    static const char *sub_fmt[] = {"%s/%s/t/+", "%s/%s/t/+", "%s/%s/p/%u",
                                    "$share/bench/%s/%s/s/+"};
    g_w.npubs = P;
    g_w.nsubs = S;
    g_w.pubs = calloc(P, sizeof *g_w.pubs);
    g_w.subs = calloc(S, sizeof *g_w.subs);
    if (!g_w.pubs || !g_w.subs)
        die("out of memory");
    /* Subscribers first in each thread's list: they start connecting first. */
    for (uint32_t s = 0; s < S; s++) {
        g_w.subs[s] = new_client(ROLE_SUB, s, &g_w.th[s % T]);
        set_topic(g_w.subs[s], sub_fmt[g_cfg.scenario], s);
    }
    for (uint32_t p = 0; p < P; p++) {
        bench_client_t *c = new_client(ROLE_PUB, p, &g_w.th[p % T]);
        set_topic(c, pub_fmt[g_cfg.scenario], p);
        c->pub_id = p;
        if (g_cfg.qos) {
            c->ids = calloc(65536, 1);
            if (!c->ids)
                die("out of memory");
        }
        g_w.pubs[p] = c;
    }
    build_trackers(P, S);
}

void setup_build(void)
{
    g_w.th = calloc((size_t)g_cfg.threads, sizeof *g_w.th);
    if (!g_w.th)
        die("out of memory");
    for (int i = 0; i < g_cfg.threads; i++) {
        g_w.th[i].idx = i;
        hist_init(&g_w.th[i].st.lat);
        hist_init(&g_w.th[i].st.conn_lat);
    }
    if (g_cfg.scenario == SC_STORM || g_cfg.scenario == SC_IDLE) {
        g_w.nothers = g_cfg.clients;
        g_w.others = calloc(g_w.nothers, sizeof *g_w.others);
        if (!g_w.others)
            die("out of memory");
        role_t r = g_cfg.scenario == SC_STORM ? ROLE_STORM : ROLE_IDLE;
        for (uint32_t i = 0; i < g_w.nothers; i++)
            g_w.others[i] = new_client(r, i, &g_w.th[i % (uint32_t)g_cfg.threads]);
    } else {
        build_messaging();
    }
}

void setup_free(void)
{
    bench_client_t **lists[] = {g_w.pubs, g_w.subs, g_w.others};
    uint32_t counts[] = {g_w.npubs, g_w.nsubs, g_w.nothers};
    for (int l = 0; l < 3; l++) {
        for (uint32_t i = 0; i < counts[l]; i++) {
            bench_tls_release(&lists[l][i]->conn);
            client_release(lists[l][i]);
            free(lists[l][i]);
        }
        free(lists[l]);
    }
    for (uint32_t i = 0; i < g_w.ntrk; i++)
        track_free(&g_w.trk[i]);
    free(g_w.trk);
    for (int i = 0; i < g_cfg.threads; i++) {
        free(g_w.th[i].clients);
        free(g_w.th[i].io.rbuf);
        free(g_w.th[i].io.plain);
    }
    free(g_w.th);
}
