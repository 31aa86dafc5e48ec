/*
 * tools/bench/report.c: the end of a run: a summary table for people (stdout) and the same
 * figures as JSON for scripts (--json FILE; tests/bench/run.sh reads it). Latencies are
 * reported in microseconds, rates per second of the measurement window.
 */
#include "tools/bench/bench.h"

#include <string.h>

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static double per_s(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0.0;
}

static void print_hist(FILE *out, const char *name, const hist_t *h)
{
    fprintf(out, "  %-10s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f us  (%llu)\n",
            name, us(hist_percentile(h, 50)), us(hist_percentile(h, 90)),
            us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)), us(h->count ? h->max : 0),
            hist_mean(h) / 1000.0, (unsigned long long)h->count);
}

static void print_load(const bench_result_t *r, FILE *out)
{
    fprintf(out, "  %u publishers -> %u subscribers, qos %d, %u B, rate %u/s per publisher%s, "
            "window %u\n", g_w.npubs, g_w.nsubs, g_cfg.qos, g_cfg.size, g_cfg.rate,
            g_cfg.rate ? "" : " (max)", g_cfg.inflight);
    fprintf(out, "  %-10s %12llu msg  %12.0f msg/s\n", "sent", (unsigned long long)r->sent_win,
            per_s(r->sent_win, r->window_s));
    fprintf(out, "  %-10s %12llu msg  %12.0f msg/s  %.1f MB/s\n", "received",
            (unsigned long long)r->recv_win, per_s(r->recv_win, r->window_s),
            per_s(r->bytes_win, r->window_s) / 1e6);
    print_hist(out, "latency", &r->lat);
    fprintf(out, "  %-10s expected %llu  unique %llu  lost %llu  duplicates %llu\n", "delivery",
            (unsigned long long)r->expected, (unsigned long long)r->unique,
            (unsigned long long)r->lost, (unsigned long long)r->dup);
}

void report_print(const bench_result_t *r, FILE *out)
{
    fprintf(out, "acemq-bench %s  broker %s:%d  mqtt %d  threads %d  %s %.1f s\n",
            g_cfg.scenario_name, g_cfg.host, g_cfg.port, g_cfg.mqtt, g_cfg.threads,
            g_cfg.scenario == SC_IDLE ? "connect time" : "window", r->window_s);
    if (g_cfg.scenario == SC_IDLE) {
        fprintf(out, "  connected %u of %u, held %u for %.0f s\n", r->idle_ok, g_w.nothers,
                r->idle_held, g_cfg.duration);
        print_hist(out, "connect", &r->conn_lat);
        if (r->rss_before_kb >= 0 && r->rss_after_kb >= 0 && r->idle_ok)
            fprintf(out, "  broker RSS %ld kB -> %ld kB (end %ld kB): %.0f bytes per connection\n",
                    r->rss_before_kb, r->rss_after_kb, r->rss_end_kb,
                    (double)(r->rss_after_kb - r->rss_before_kb) * 1024.0 / r->idle_ok);
    } else if (g_cfg.scenario == SC_STORM) {
        fprintf(out, "  %u concurrent: %llu connects, %.0f connects/s\n", g_w.nothers,
                (unsigned long long)r->conn_win, per_s(r->conn_win, r->window_s));
        print_hist(out, "connect", &r->conn_lat);
    } else {
        print_load(r, out);
    }
    if (g_cfg.tp == &bench_tls_transport)
        fprintf(out, "  %-10s %s  handshakes full %llu  resumed %llu\n", "tls",
                bench_tls_ciphersuite()[0] ? bench_tls_ciphersuite() : "(none)",
                (unsigned long long)r->tls_full, (unsigned long long)r->tls_resumed);
    if (g_cfg.ace) {
        uint64_t used = bench_ace_used(), n = bench_ace_ntokens();
        fprintf(out, "  %-10s Form A, %s PoP over the TLS exporter; %llu tokens loaded, %llu "
                "presented (%llu a second time or more)\n", "ace", bench_ace_key_type(),
                (unsigned long long)n, (unsigned long long)used,
                (unsigned long long)(used > n ? used - n : 0));
    }
    fprintf(out, "  %-10s connect failures %llu  disconnects %llu  protocol %llu\n", "errors",
            (unsigned long long)r->conn_fail, (unsigned long long)r->disconnects,
            (unsigned long long)r->proto_err);
    if (r->refused)
        fprintf(out, "  %-10s %llu CONNACKs refused, the first with 0x%02x\n", "refused",
                (unsigned long long)r->refused, atomic_load(&g_run.first_refusal));
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_hist(FILE *f, const char *name, const hist_t *h)
{
    fprintf(f, "  \"%s\": {\"count\": %llu, \"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, "
            "\"p999\": %.1f, \"max\": %.1f, \"mean\": %.1f},\n", name,
            (unsigned long long)h->count, us(hist_percentile(h, 50)), us(hist_percentile(h, 90)),
            us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)), us(h->count ? h->max : 0),
            hist_mean(h) / 1000.0);
}

static void json_config(FILE *f)
{
    fputs("{\n  \"scenario\": ", f);
    json_str(f, g_cfg.scenario_name);
    fputs(",\n  \"label\": ", f);
    json_str(f, g_cfg.label);
    fputs(",\n  \"host\": ", f);
    json_str(f, g_cfg.host);
    fprintf(f, ",\n  \"port\": %d, \"transport\": \"%s\", \"mqtt\": %d, \"qos\": %d, "
            "\"size\": %u, \"rate\": %u, \"inflight\": %u, \"threads\": %d,\n"
            "  \"publishers\": %u, \"subscribers\": %u, \"clients\": %u,\n"
            "  \"duration_s\": %g, \"warmup_s\": %g, \"durable\": %s,\n", g_cfg.port,
            g_cfg.tp->name, g_cfg.mqtt, g_cfg.qos, g_cfg.size, g_cfg.rate, g_cfg.inflight,
            g_cfg.threads, g_w.npubs, g_w.nsubs, g_w.nothers, g_cfg.duration, g_cfg.warmup,
            g_cfg.durable ? "true" : "false");
}

int report_json(const bench_result_t *r, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f)
        return -1;
    json_config(f);
    fprintf(f, "  \"window_s\": %.3f,\n  \"sent\": %llu, \"received\": %llu, "
            "\"sent_per_s\": %.1f, \"received_per_s\": %.1f, \"received_bytes_per_s\": %.1f,\n",
            r->window_s, (unsigned long long)r->sent_win, (unsigned long long)r->recv_win,
            per_s(r->sent_win, r->window_s), per_s(r->recv_win, r->window_s),
            per_s(r->bytes_win, r->window_s));
    json_hist(f, "latency_us", &r->lat);
    json_hist(f, "connect_latency_us", &r->conn_lat);
    fprintf(f, "  \"expected\": %llu, \"unique\": %llu, \"lost\": %llu, \"duplicates\": %llu,\n"
            "  \"sent_total\": %llu, \"received_total\": %llu, \"publisher_inflight_end\": %llu,\n",
            (unsigned long long)r->expected, (unsigned long long)r->unique,
            (unsigned long long)r->lost, (unsigned long long)r->dup, (unsigned long long)r->sent,
            (unsigned long long)r->recv, (unsigned long long)r->pub_inflight);
    fprintf(f, "  \"connects\": %llu, \"connects_in_window\": %llu, \"connects_per_s\": %.1f,\n"
            "  \"errors\": {\"connect_failed\": %llu, \"disconnected\": %llu, \"protocol\": %llu},\n",
            (unsigned long long)r->conn_ok, (unsigned long long)r->conn_win,
            g_cfg.scenario == SC_STORM ? per_s(r->conn_win, r->window_s) : 0.0,
            (unsigned long long)r->conn_fail, (unsigned long long)r->disconnects,
            (unsigned long long)r->proto_err);
    fprintf(f, "  \"tls\": {\"enabled\": %s, \"resume\": %s, \"ciphersuite\": ",
            g_cfg.tp == &bench_tls_transport ? "true" : "false", g_cfg.tls_resume ? "true" : "false");
    json_str(f, g_cfg.tp == &bench_tls_transport ? bench_tls_ciphersuite() : "");
    fprintf(f, ", \"full\": %llu, \"resumed\": %llu},\n", (unsigned long long)r->tls_full,
            (unsigned long long)r->tls_resumed);
    uint64_t used = g_cfg.ace ? bench_ace_used() : 0, ntok = g_cfg.ace ? bench_ace_ntokens() : 0;
    fprintf(f, "  \"ace\": {\"enabled\": %s, \"pop_key\": \"%s\", \"tokens\": %llu, "
            "\"presented\": %llu, \"reused\": %llu},\n", g_cfg.ace ? "true" : "false",
            g_cfg.ace ? bench_ace_key_type() : "", (unsigned long long)ntok,
            (unsigned long long)used, (unsigned long long)(used > ntok ? used - ntok : 0));
    fprintf(f, "  \"refused\": %llu, \"first_refusal_rc\": %d,\n", (unsigned long long)r->refused,
            atomic_load(&g_run.first_refusal));
    double bpc = r->rss_before_kb >= 0 && r->rss_after_kb >= 0 && r->idle_ok
                     ? (double)(r->rss_after_kb - r->rss_before_kb) * 1024.0 / r->idle_ok
                     : -1;
    fprintf(f, "  \"idle\": {\"connected\": %u, \"held\": %u, \"broker_pid\": %d, "
            "\"rss_before_kb\": %ld, \"rss_after_kb\": %ld, \"rss_end_kb\": %ld, "
            "\"bytes_per_conn\": %.0f}\n}\n", r->idle_ok, r->idle_held, g_cfg.broker_pid,
            r->rss_before_kb, r->rss_after_kb, r->rss_end_kb, bpc);
    return f == stdout ? fflush(f) : fclose(f);
}
