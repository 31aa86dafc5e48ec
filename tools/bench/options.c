/*
 * tools/bench/options.c: the command line of acemq-bench and each scenario's defaults.
 */
#include "tools/bench/bench.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const scenario_names[] = {"fan-in", "fan-out", "pairs", "shared",
                                             "connect-storm", "idle"};

static void usage(FILE *f)
{
    fputs("usage: acemq-bench --scenario NAME [options]\n"
          "scenarios: fan-in (P pub -> 1 sub), fan-out (1 pub -> S sub), pairs (N pub, each to its\n"
          "  own sub), shared (P pub -> S sub in one $share group), connect-storm (C concurrent\n"
          "  connect/CONNACK/DISCONNECT loops), idle (hold N connections)\n"
          "  --host H --port P         broker (127.0.0.1:1883)\n"
          "  --mqtt 3|4|5              protocol level (4 = 3.1.1)\n"
          "  --qos 0|1|2  --size B     QoS and payload bytes (16..65536; 64)\n"
          "  --rate R                  messages/s per publisher (0 = as fast as possible)\n"
          "  --inflight W              QoS 1/2 window per publisher (64)\n"
          "  --publishers P --subscribers S --clients N\n"
          "  --duration S --warmup S --drain S   seconds (10, 2, 5); idle: hold time\n"
          "  --threads T               loop threads (1)\n"
          "  --concurrency C           idle: connects under way at once (64)\n"
          "  --keepalive S             (60)   --connect-timeout S (10)\n"
          "  --broker-pid PID          idle: read the broker's VmRSS before and after\n"
          "  --json FILE               machine-readable result   --label TEXT (in the JSON)\n"
          "  --quiet                   no progress lines\n"
          "  --tls                     TLS 1.2 (mbedTLS) instead of plain TCP\n"
          "  --cafile F                verify the broker's certificate against these CAs\n"
          "  --cert F --key F          client certificate and its key\n"
          "  --servername NAME         SNI, and the name the certificate must carry\n"
          "  --ciphers LIST            ':'-separated mbedTLS ciphersuite names to offer\n"
          "  --resume                  reconnects offer the last session (ticket) again\n"
          "  --ace-token FILE          ACE: every connect presents this token (CWT or JWT)\n"
          "  --ace-token-dir DIR       ACE: one token file of DIR per connect, in turn\n"
          "  --ace-pop-key FILE        ACE: the token's cnf key (private .key file) for the PoP\n"
          "                            over the TLS exporter; needs --tls (and MQTT 5)\n"
          "  --ace-pop-type T          sym|p256|ed25519 (default: from the file; hex = sym)\n"
          "  --durable                 sessions outlive the connection (3.1.1: clean session 0;\n"
          "                            5: Session Expiry Interval 3600)\n"
          "  --topic-prefix P          first topic level (bench)\n",
          f);
}

static double num(const char *opt, const char *v, double lo, double hi)
{
    char *end;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || d < lo || d > hi) {
        fprintf(stderr, "acemq-bench: --%s: '%s' is not a number in [%g, %g]\n", opt, v, lo, hi);
        exit(2);
    }
    return d;
}

static void set_scenario(const char *v)
{
    for (size_t i = 0; i < sizeof scenario_names / sizeof *scenario_names; i++)
        if (strcmp(v, scenario_names[i]) == 0) {
            g_cfg.scenario = (scenario_t)i;
            g_cfg.scenario_name = scenario_names[i];
            return;
        }
    fprintf(stderr, "acemq-bench: unknown scenario '%s'\n", v);
    exit(2);
}

/* Counts left at 0 by the command line take the scenario's standard shape. */
static void apply_defaults(void)
{
    bench_cfg_t *c = &g_cfg;
    switch (c->scenario) {
    case SC_FANIN:
        c->publishers = c->publishers ? c->publishers : 8;
        c->subscribers = c->subscribers ? c->subscribers : 1;
        break;
    case SC_FANOUT:
        c->publishers = c->publishers ? c->publishers : 1;
        c->subscribers = c->subscribers ? c->subscribers : 32;
        break;
    case SC_PAIRS:
        c->publishers = c->publishers ? c->publishers : (c->clients ? c->clients : 16);
        c->subscribers = c->publishers;
        break;
    case SC_SHARED:
        c->publishers = c->publishers ? c->publishers : 8;
        c->subscribers = c->subscribers ? c->subscribers : 4;
        break;
    case SC_STORM:
        c->clients = c->clients ? c->clients : 32;
        break;
    case SC_IDLE:
        c->clients = c->clients ? c->clients : 1000;
        break;
    }
    if (c->warmup < 0)
        c->warmup = c->scenario == SC_IDLE ? 0 : 2;
    if (c->inflight >= 65535)
        c->inflight = 65534; /* one packet id stays free, so take_id always finds one */
}

static const struct option longopts[] = {
    {"scenario", 1, 0, 's'}, {"host", 1, 0, 'h'},        {"port", 1, 0, 'p'},
    {"threads", 1, 0, 't'},  {"mqtt", 1, 0, 'm'},        {"qos", 1, 0, 'q'},
    {"size", 1, 0, 'z'},     {"rate", 1, 0, 'r'},        {"inflight", 1, 0, 'i'},
    {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'},      {"drain", 1, 0, 'D'},
    {"publishers", 1, 0, 'P'}, {"subscribers", 1, 0, 'S'}, {"clients", 1, 0, 'c'},
    {"concurrency", 1, 0, 'C'}, {"keepalive", 1, 0, 'k'}, {"connect-timeout", 1, 0, 'T'},
    {"broker-pid", 1, 0, 'b'}, {"json", 1, 0, 'j'},      {"label", 1, 0, 'l'},
    {"quiet", 0, 0, 'Q'},    {"help", 0, 0, 'H'},        {"tls", 0, 0, 'L'},
    {"cafile", 1, 0, 'A'},   {"cert", 1, 0, 'E'},        {"key", 1, 0, 'K'},
    {"servername", 1, 0, 'N'}, {"ciphers", 1, 0, 'X'},   {"resume", 0, 0, 'R'},
    {"ace-token", 1, 0, 'a'}, {"ace-token-dir", 1, 0, 'o'}, {"ace-pop-key", 1, 0, 'y'},
    {"ace-pop-type", 1, 0, 'Y'}, {"durable", 0, 0, 'u'}, {"topic-prefix", 1, 0, 'x'},
    {0, 0, 0, 0},
};

static void set_option(int o, const char *name, const char *v)
{
    bench_cfg_t *c = &g_cfg;
    switch (o) {
    case 's': set_scenario(v); break;
    case 'h': c->host = v; break;
    case 'p': c->port = (int)num(name, v, 1, 65535); break;
    case 't': c->threads = (int)num(name, v, 1, 64); break;
    case 'm': c->mqtt = (int)num(name, v, 3, 5); break;
    case 'q': c->qos = (int)num(name, v, 0, 2); break;
    case 'z': c->size = (uint32_t)num(name, v, BENCH_HDR, 65536); break;
    case 'r': c->rate = (uint32_t)num(name, v, 0, 1e8); break;
    case 'i': c->inflight = (uint32_t)num(name, v, 1, 65535); break;
    case 'd': c->duration = num(name, v, 0.1, 1e6); break;
    case 'w': c->warmup = num(name, v, 0, 1e6); break;
    case 'D': c->drain = num(name, v, 0, 1e6); break;
    case 'P': c->publishers = (uint32_t)num(name, v, 1, 1e6); break;
    case 'S': c->subscribers = (uint32_t)num(name, v, 1, 1e6); break;
    case 'c': c->clients = (uint32_t)num(name, v, 1, 1e7); break;
    case 'C': c->concurrency = (uint32_t)num(name, v, 1, 1e6); break;
    case 'k': c->keepalive = (uint16_t)num(name, v, 0, 65535); break;
    case 'T': c->connect_timeout = num(name, v, 0.1, 1e6); break;
    case 'b': c->broker_pid = (int)num(name, v, 1, 1e9); break;
    case 'j': c->json = v; break;
    case 'l': c->label = v; break;
    case 'Q': c->quiet = true; break;
    case 'L': c->tp = &bench_tls_transport; break;
    case 'A': c->tls_cafile = v; break;
    case 'E': c->tls_cert = v; break;
    case 'K': c->tls_key = v; break;
    case 'N': c->tls_servername = v; break;
    case 'X': c->tls_ciphers = v; break;
    case 'R': c->tls_resume = true; break;
    case 'a': c->ace_token = v; break;
    case 'o': c->ace_token_dir = v; break;
    case 'y': c->ace_pop_key = v; break;
    case 'Y':
        if (strcmp(v, "sym") && strcmp(v, "p256") && strcmp(v, "ed25519")) {
            fprintf(stderr, "acemq-bench: --ace-pop-type: sym, p256 or ed25519\n");
            exit(2);
        }
        c->ace_pop_type = v;
        break;
    case 'u': c->durable = true; break;
    case 'x': c->topic_prefix = v; break;
    case 'H': usage(stdout); exit(0);
    default: usage(stderr); exit(2);
    }
}

/* ACE: a token source and a PoP key together, over TLS (the PoP is over the TLS exporter), in
 * MQTT 5 (Form A is a CONNECT property); a resumed session has no exporter PoP at the broker. */
static void check_ace(bool have_mqtt)
{
    bench_cfg_t *c = &g_cfg;
    c->ace = c->ace_token || c->ace_token_dir || c->ace_pop_key || c->ace_pop_type;
    if (!c->ace)
        return;
    const char *bad = NULL;
    if (c->ace_token && c->ace_token_dir)
        bad = "--ace-token and --ace-token-dir exclude each other";
    else if (!(c->ace_token || c->ace_token_dir) || !c->ace_pop_key)
        bad = "ACE needs --ace-token FILE or --ace-token-dir DIR, and --ace-pop-key FILE";
    else if (c->tp != &bench_tls_transport)
        bad = "ACE needs --tls: the PoP is computed over the TLS exporter value";
    else if (c->tls_resume)
        bad = "ACE and --resume exclude each other: brokers refuse exporter PoP on a resumed "
              "TLS session";
    else if (have_mqtt && c->mqtt != MQTT_V5)
        bad = "ACE (Authentication Method \"ace\" in CONNECT) needs --mqtt 5";
    if (bad) {
        fprintf(stderr, "acemq-bench: %s\n", bad);
        exit(2);
    }
    c->mqtt = MQTT_V5;
}

void options_parse(int argc, char **argv)
{
    g_cfg = (bench_cfg_t){.scenario = SC_FANIN, .scenario_name = "fan-in", .host = "127.0.0.1",
                          .port = 1883, .tp = &bench_tcp_transport, .threads = 1,
                          .mqtt = MQTT_V311, .size = 64, .inflight = 64, .duration = 10,
                          .warmup = -1, .drain = 5, .connect_timeout = 10, .concurrency = 64,
                          .keepalive = 60, .label = "", .topic_prefix = "bench"};
    bool have_scenario = false, have_mqtt = false;
    int o, li;
    while ((o = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        have_scenario |= o == 's';
        have_mqtt |= o == 'm';
        set_option(o, o == '?' ? "" : longopts[li].name, optarg);
    }
    if (!have_scenario || optind != argc) {
        usage(stderr);
        exit(2);
    }
    if ((g_cfg.tls_cafile || g_cfg.tls_cert || g_cfg.tls_key || g_cfg.tls_servername ||
         g_cfg.tls_ciphers || g_cfg.tls_resume) && g_cfg.tp != &bench_tls_transport) {
        fprintf(stderr, "acemq-bench: --cafile, --cert, --key, --servername, --ciphers and "
                "--resume need --tls\n");
        exit(2);
    }
    if (!g_cfg.tls_cert != !g_cfg.tls_key) {
        fprintf(stderr, "acemq-bench: --cert and --key go together\n");
        exit(2);
    }
    check_ace(have_mqtt);
    if (!g_cfg.topic_prefix[0] || strlen(g_cfg.topic_prefix) > 48 ||
        strpbrk(g_cfg.topic_prefix, "+#")) {
        fprintf(stderr, "acemq-bench: --topic-prefix: 1 to 48 characters, no wildcards\n");
        exit(2);
    }
    apply_defaults();
    /* Unique per process and run: topics never collide with another run's, and client ids
     * stay under MQTT 3.1's 23 characters. */
    uint32_t h = (uint32_t)getpid() * 2654435761u ^ (uint32_t)now_ns();
    snprintf(g_cfg.tag, sizeof g_cfg.tag, "%08x", h);
}
