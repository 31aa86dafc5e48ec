/*
 * tools/bench/main.c: acemq-bench, an MQTT load generator for any broker (MQTT 3.1, 3.1.1, 5).
 * main builds the run (setup.c), starts the loop threads (loop.c), then only watches: it moves
 * the run through SETUP -> RUN -> DRAIN -> DONE, prints a progress line per second on stderr,
 * and once the loops are joined settles losses and duplicates and reports (report.c).
 * See docs/bench-tool.md for the scenarios and the options.
 */
#include "tools/bench/bench.h"

#include <stdlib.h>
#include <string.h>

bench_cfg_t g_cfg;
bench_run_t g_run;

#define FD_RESERVE 64 /* stdio, the loops' internal fds, the JSON file */

typedef struct {
    uint64_t t0, last_print, last_sent, last_recv;
} progress_t;

static progress_t g_prog;

/* Sums one counter over the loop threads (relaxed reads: progress only needs a recent value). */
static uint64_t sum_ctr(size_t off)
{
    uint64_t s = 0;
    for (int i = 0; i < g_cfg.threads; i++)
        s += ctr_get((ctr_t *)((char *)&g_w.th[i].st + off));
    return s;
}
#define SUM(field) sum_ctr(offsetof(bench_stats_t, field))

static void set_phase(int ph)
{
    atomic_store_explicit(&g_run.phase, ph, memory_order_release);
    for (int i = 0; i < g_cfg.threads; i++)
        loop_thread_wake(&g_w.th[i]);
}

static void progress(const char *what)
{
    uint64_t now = now_ns();
    if (g_cfg.quiet || now - g_prog.last_print < 1000000000ull)
        return;
    double dt = (double)(now - g_prog.last_print) / 1e9;
    uint64_t sent = SUM(sent), recv = SUM(recv);
    fprintf(stderr,
            "[%4.0fs] %-8s sent %9.0f/s  recv %9.0f/s  conns %6llu  ok %7llu  inflight %5llu  "
            "errors %llu\n",
            (double)(now - g_prog.t0) / 1e9, what, (double)(sent - g_prog.last_sent) / dt,
            (double)(recv - g_prog.last_recv) / dt, (unsigned long long)SUM(open_conns),
            (unsigned long long)SUM(conn_ok), (unsigned long long)SUM(inflight),
            (unsigned long long)(SUM(conn_fail) + SUM(disconnects) + SUM(proto_err)));
    g_prog.last_print = now;
    g_prog.last_sent = sent;
    g_prog.last_recv = recv;
}

/* Sleeps until the deadline or until done() says so, printing progress once a second. */
static bool watch(const char *what, uint64_t deadline, bool (*done)(void))
{
    for (;;) {
        if (done && done())
            return true;
        uint64_t now = now_ns();
        if (now >= deadline)
            return false;
        progress(what);
        uint64_t left = deadline - now;
        struct timespec ts = {0, (long)(left < 20000000 ? left : 20000000)};
        nanosleep(&ts, NULL);
    }
}

static bool setup_done(void)
{
    return SUM(conn_fail) || SUM(disconnects) ||
           (SUM(subs_ready) == g_w.nsubs && SUM(pubs_ready) == g_w.npubs);
}

static bool idle_done(void)
{
    return SUM(idle_done) >= g_w.nothers;
}

/* Drained: no publisher waits for an ack and nothing arrived for half a second. */
static bool drained(void)
{
    static uint64_t last_recv, t_change;
    uint64_t recv = SUM(recv), now = now_ns();
    if (recv != last_recv || !t_change) {
        last_recv = recv;
        t_change = now;
    }
    return SUM(inflight) == 0 && now - t_change >= 500000000ull;
}

static uint64_t secs(double s)
{
    return (uint64_t)(s * 1e9);
}

static long read_rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* idle: connect everyone, measure the broker, hold, count who is still there. */
static int run_idle(bench_result_t *r)
{
    /* Connecting takes as long as it takes (a TLS handshake can cost the broker milliseconds):
     * give up only when no attempt has finished for --connect-timeout seconds. */
    bool all = false;
    uint64_t seen = 0, t_progress = now_ns();
    while (!(all = idle_done())) {
        watch("connect", now_ns() + secs(0.5), idle_done);
        uint64_t n = SUM(idle_done);
        if (n != seen) {
            seen = n;
            t_progress = now_ns();
        } else if (now_ns() - t_progress > secs(g_cfg.connect_timeout)) {
            break;
        }
    }
    uint64_t t_conn = now_ns();
    if (!g_cfg.quiet)
        fprintf(stderr, "acemq-bench: %llu of %u connected in %.1f s\n",
                (unsigned long long)SUM(conn_ok), g_w.nothers, (double)(t_conn - g_prog.t0) / 1e9);
    watch("settle", t_conn + secs(1), NULL);
    r->rss_after_kb = g_cfg.broker_pid ? read_rss_kb(g_cfg.broker_pid) : -1;
    watch("hold", t_conn + secs(g_cfg.duration), NULL);
    r->idle_held = (uint32_t)SUM(open_conns);
    r->rss_end_kb = g_cfg.broker_pid ? read_rss_kb(g_cfg.broker_pid) : -1;
    r->window_s = (double)(t_conn - g_prog.t0) / 1e9; /* for idle: the time it took to connect */
    set_phase(PH_DONE);
    return all ? 0 : 1;
}

static int run_load(bench_result_t *r)
{
    if (g_cfg.scenario != SC_STORM) {
        uint64_t limit = now_ns() + secs(g_cfg.connect_timeout) + g_w.nsubs * 5000000ull;
        watch("connect", limit, setup_done);
        if (SUM(subs_ready) != g_w.nsubs || SUM(pubs_ready) != g_w.npubs) {
            fprintf(stderr, "acemq-bench: setup failed: %llu/%u subscribers and %llu/%u "
                    "publishers ready\n", (unsigned long long)SUM(subs_ready), g_w.nsubs,
                    (unsigned long long)SUM(pubs_ready), g_w.npubs);
            set_phase(PH_DONE);
            return 1;
        }
    }
    uint64_t t = now_ns();
    atomic_store(&g_run.t_run, t);
    atomic_store(&g_run.t_win0, t + secs(g_cfg.warmup));
    atomic_store(&g_run.t_win1, t + secs(g_cfg.warmup + g_cfg.duration));
    set_phase(PH_RUN);
    watch("run", t + secs(g_cfg.warmup + g_cfg.duration), NULL);
    r->window_s = g_cfg.duration;
    if (g_cfg.scenario != SC_STORM) {
        set_phase(PH_DRAIN);
        if (!watch("drain", now_ns() + secs(g_cfg.drain), drained))
            fprintf(stderr, "acemq-bench: still receiving or awaiting acks after --drain %g s; "
                    "what did not arrive counts as lost\n", g_cfg.drain);
    }
    set_phase(PH_DONE);
    return 0;
}

/* After the join: everything is quiet, so plain reads of the loops' data are safe. */
static void collect(bench_result_t *r)
{
    for (int i = 0; i < g_cfg.threads; i++) {
        bench_stats_t *st = &g_w.th[i].st;
        r->sent += ctr_get(&st->sent);
        r->recv += ctr_get(&st->recv);
        r->sent_win += ctr_get(&st->sent_win);
        r->recv_win += ctr_get(&st->recv_win);
        r->bytes_win += ctr_get(&st->bytes_win);
        r->conn_ok += ctr_get(&st->conn_ok);
        r->conn_fail += ctr_get(&st->conn_fail);
        r->conn_win += ctr_get(&st->conn_win);
        r->disconnects += ctr_get(&st->disconnects);
        r->proto_err += ctr_get(&st->proto_err);
        r->pub_inflight += ctr_get(&st->inflight);
        r->tls_full += ctr_get(&st->tls_full);
        r->tls_resumed += ctr_get(&st->tls_resumed);
        r->refused += ctr_get(&st->refused);
        hist_merge(&r->lat, &st->lat);
        hist_merge(&r->conn_lat, &st->conn_lat);
    }
    if (g_cfg.scenario == SC_IDLE)
        r->idle_ok = (uint32_t)r->conn_ok;
    /* Every tracker is (subscriber, publisher); its publisher's count is what it should see. */
    uint32_t P = g_w.npubs;
    for (uint32_t i = 0; i < g_w.ntrk; i++) {
        uint64_t sent = g_w.pubs[i % P]->seq;
        track_finish(&g_w.trk[i], sent);
        r->expected += sent;
        r->unique += g_w.trk[i].unique;
        r->lost += g_w.trk[i].missing;
        r->dup += g_w.trk[i].dup;
    }
}

int main(int argc, char **argv)
{
    options_parse(argc, argv);
    uint64_t nofile = setup_raise_nofile();
    uint64_t need = (uint64_t)g_cfg.publishers + g_cfg.subscribers + g_cfg.clients + FD_RESERVE;
    if (need > nofile) {
        fprintf(stderr, "acemq-bench: needs about %llu fds but the limit is %llu; split the "
                "clients over several processes\n", (unsigned long long)need,
                (unsigned long long)nofile);
        return 2;
    }
    setup_resolve();
    atomic_store(&g_run.first_refusal, -1);
    if (g_cfg.tp == &bench_tls_transport)
        bench_tls_init();
    if (g_cfg.ace)
        bench_ace_init();
    setup_build();
    static bench_result_t r;
    hist_init(&r.lat);
    hist_init(&r.conn_lat);
    r.rss_before_kb = r.rss_after_kb = r.rss_end_kb = -1;
    if (g_cfg.scenario == SC_IDLE && g_cfg.broker_pid)
        r.rss_before_kb = read_rss_kb(g_cfg.broker_pid);
    g_prog.t0 = g_prog.last_print = now_ns();
    for (int i = 0; i < g_cfg.threads; i++)
        if (loop_thread_start(&g_w.th[i])) {
            fprintf(stderr, "acemq-bench: cannot start loop thread %d\n", i);
            return 2;
        }
    int rc = g_cfg.scenario == SC_IDLE ? run_idle(&r) : run_load(&r);
    for (int i = 0; i < g_cfg.threads; i++)
        uv_thread_join(&g_w.th[i].tid);
    collect(&r);
    report_print(&r, stdout);
    if (g_cfg.json && report_json(&r, g_cfg.json)) {
        fprintf(stderr, "acemq-bench: cannot write %s\n", g_cfg.json);
        rc = 2;
    }
    setup_free();
    if (g_cfg.ace)
        bench_ace_free();
    return rc;
}
