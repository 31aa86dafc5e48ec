/*
 * broker/main.c: acemqd's entry point: command line, configuration, start, signals, stop.
 *
 *   acemqd [-c FILE] [-p PORT] [-t] [-v] [-h] [--version]
 *
 * With neither -c nor -p the built-in configuration is used (127.0.0.1:1883, anonymous clients
 * allowed, like Mosquitto 2 with no configuration file).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker/auth.h"
#include "broker/config.h"
#include "broker/core.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/notify.h"
#include "broker/retain.h"
#include "broker/router.h"
#include "broker/store.h"

static const char builtin_config[] = "listener 1883 127.0.0.1\n"
                                     "allow_anonymous true\n";

static void usage(FILE *f)
{
    fprintf(f, "acemqd %s: an MQTT 3.1.1/5.0 broker with ACE (RFC 9431) token authorization\n\n"
               "usage: acemqd [-c FILE] [-p PORT] [-t] [-v]\n"
               "  -c FILE    run with this configuration file (see acemq.conf(5))\n"
               "  -p PORT    listen on 127.0.0.1:PORT, anonymous clients allowed\n"
               "  -t         check the configuration and exit (0 = valid)\n"
               "  -v         log everything (log_type all)\n"
               "  --dump-store DIR|FILE  print a persistence store's contents and exit\n"
               "  -h         this help\n"
               "  --version  print the version\n",
               ACEMQ_VERSION);
}

typedef struct {
    const char *config;
    int port;
    bool test;
    bool verbose;
    const char *dump_store;
} options_t;

static int parse_args(int argc, char **argv, options_t *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("acemqd %s\n", ACEMQ_VERSION);
            exit(0);
        } else if (!strcmp(a, "-c") && i + 1 < argc) {
            o->config = argv[++i];
        } else if (!strcmp(a, "-p") && i + 1 < argc) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || p < 1 || p > 65535) {
                fprintf(stderr, "acemqd: -p: '%s' is not a port (1-65535)\n", argv[i]);
                return -1;
            }
            o->port = (int)p;
        } else if (!strcmp(a, "-t")) {
            o->test = true;
        } else if (!strcmp(a, "-v")) {
            o->verbose = true;
        } else if (!strcmp(a, "--dump-store") && i + 1 < argc) {
            o->dump_store = argv[++i];
        } else {
            fprintf(stderr, "acemqd: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

static int load_config(const options_t *o, acemq_config_t *cfg, char *err, size_t cap)
{
    if (o->config)
        return config_load(cfg, o->config, err, cap);
    const char *text = o->port ? "allow_anonymous true\n" : builtin_config;
    return config_load_string(cfg, text, "(built-in)", err, cap);
}

static void apply_logging(const acemq_config_t *cfg, bool verbose)
{
    unsigned dests = 0;
    const char *file = NULL;
    for (const acemq_log_dest_t *d = cfg->log_dests; d; d = d->next) {
        switch (d->kind) {
        case ACEMQ_LOG_DEST_STDERR: dests |= LOG_TO_STDERR; break;
        case ACEMQ_LOG_DEST_STDOUT: dests |= LOG_TO_STDOUT; break;
        case ACEMQ_LOG_DEST_SYSLOG: dests |= LOG_TO_SYSLOG; break;
        case ACEMQ_LOG_DEST_FILE: dests |= LOG_TO_FILE; file = d->path; break;
        case ACEMQ_LOG_DEST_TOPIC: break;
        }
    }
    unsigned levels = verbose ? 0x1f : (cfg->log_types & 0x1f);
    log_set_style(cfg->log_timestamp, cfg->log_timestamp_format, cfg->log_facility);
    int rc = log_configure(dests, file, levels);
    if (rc < 0)
        log_error("log_open_failed", "file=%s error=\"%s\"", file ? file : "-", strerror(-rc));
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_info("fd_limit", "max_open_files=%llu", (unsigned long long)rl.rlim_cur);
}

static int drop_privileges(const char *user)
{
    if (!user || geteuid() != 0)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_error("privilege_drop_failed", "user=%s reason=\"no such user\"", user);
        return -1;
    }
    if (initgroups(user, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        log_error("privilege_drop_failed", "user=%s error=\"%s\"", user, strerror(errno));
        return -1;
    }
    log_info("privileges_dropped", "user=%s uid=%d", user, (int)pw->pw_uid);
    return 0;
}

static void release_retained(void *m)
{
    msg_unref(m);
}

static int broker_init(broker_t *b, acemq_config_t *cfg, char *err, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    broker_limits_from_config(&b->lim, cfg);
    b->router = router_new();
    b->retained = retain_new(release_retained);
    b->registry = registry_new();
    b->auth = auth_new(cfg, err, cap);
    int n = cfg->workers > 0 ? cfg->workers : (int)uv_available_parallelism();
    b->n_workers = n < 1 ? 1 : n;
    b->workers = calloc((size_t)b->n_workers, sizeof *b->workers);
    b->started_at = clock_ms();
    b->started_wall = time(NULL);
    if (!b->router || !b->retained || !b->registry || !b->auth || !b->workers)
        return -1;
    for (int i = 0; i < b->n_workers; i++) {
        b->workers[i].id = i;
        b->workers[i].b = b;
    }
    return 0;
}

/* Replays the store into the broker, then lets the hooks write to it. */
static int open_store(broker_t *b, char *err, size_t cap)
{
    const acemq_config_t *cfg = b->cfg;
    store_opts_t o = {.dir = cfg->persistence_location, .file = cfg->persistence_file,
                      .fsync = store_fsync_policy(cfg->fsync),
                      .autosave_interval = cfg->autosave_interval,
                      .autosave_on_changes = cfg->autosave_on_changes,
                      .compact_ratio = cfg->persistence_compact_ratio};
    store_t *st;
    if (store_open(&st, &o, err, cap) < 0)
        return -1;
    if (store_restore(st, b) < 0 || store_start(st) < 0) {
        snprintf(err, cap, "could not restore the persistent state");
        store_close(st);
        return -1;
    }
    b->store = st;
    return 0;
}

static void broker_destroy(broker_t *b)
{
    registry_free(b->registry);
    listeners_free(b);
    router_free(b->router);
    retain_free(b->retained);
    auth_free(b->auth);
    for (int i = 0; b->workers && i < b->n_workers; i++) {
        /* a start that failed after binding: the workers never ran to free these */
        for (size_t k = 0; b->workers[i].server_fds && k < b->workers[i].n_servers; k++)
            close(b->workers[i].server_fds[k]);
        free(b->workers[i].server_fds);
        free(b->workers[i].server_listeners);
    }
    free(b->workers);
}

/* ---- signals (main thread) -------------------------------------------------------------------- */

static options_t g_opts;

/* Reloaded configurations whose listener blocks serve connections: freed at exit. */
typedef struct in_use {
    acemq_config_t *cfg;
    struct in_use *next;
} in_use_t;
static in_use_t *g_in_use;

static void reload(broker_t *b)
{
    char err[4096];
    acemq_config_t *fresh = calloc(1, sizeof *fresh);
    if (!fresh || load_config(&g_opts, fresh, err, sizeof err) < 0) {
        /* one line per error: config_load() puts each on a line of its own */
        for (const char *e = fresh ? err : "out of memory", *nl; e; e = nl ? nl + 1 : NULL) {
            nl = strchr(e, '\n');
            log_error("reload_failed", "reason=\"%.*s\" action=\"keeping the running "
                      "configuration\"", nl ? (int)(nl - e) : (int)strlen(e), e);
        }
        notify_status("reload failed, running the previous configuration");
        free(fresh);
        return;
    }
    /* the listener main() adds (-p, or a file without any) is added again, so it is no change */
    if (g_opts.port || !fresh->listeners)
        config_add_listener(fresh, g_opts.port ? g_opts.port : 1883, "127.0.0.1");
    char why[1024];
    if (config_needs_restart(b->cfg, fresh, why, sizeof why))
        log_warning("reload_needs_restart", "changed=\"%s\"", why);
    /* Limits, logging and certificates change now; the listener set stays as it was bound. The
     * limits are built aside and copied in one go, never zeroed under the workers' feet. */
    limits_t lim;
    broker_limits_from_config(&lim, fresh);
    b->lim = lim;
    listeners_reload(b, fresh);
    /* new connections get the new access policy; open ones keep the one they started with */
    bool kept = false;
    if (auth_reload(b->auth, fresh, err, sizeof err) < 0) {
        log_error("auth_reload_failed", "reason=\"%s\" action=\"keeping the running access "
                  "policy\"", err);
    } else {
        /* and the new listener blocks (allow_anonymous, password_file, max_connections...), unless
         * a block changed in a way only a restart applies; open connections keep pointing at the
         * block they started with, so a configuration in use stays allocated until exit */
        for (size_t i = 0; i < b->n_listeners; i++) {
            const acemq_listener_t *cur = b->listeners[i].cfg;
            for (const acemq_listener_t *f = fresh->listeners; f; f = f->next)
                if (f->port == cur->port &&
                    ((!f->bind_address && !cur->bind_address) ||
                     (f->bind_address && cur->bind_address &&
                      strcmp(f->bind_address, cur->bind_address) == 0)) &&
                    !config_listener_needs_restart(cur, f)) {
                    b->listeners[i].cfg = f;
                    kept = true;
                    break;
                }
        }
    }
    apply_logging(fresh, g_opts.verbose);
    log_reopen();
    log_notice("reloaded", "config=%s", fresh->path ? fresh->path : "(built-in)");
    notify_status("running, configuration reloaded");
    if (kept) {
        in_use_t *u = malloc(sizeof *u);
        if (u) { /* without memory for the note the config leaks: it must not be freed */
            u->cfg = fresh;
            u->next = g_in_use;
            g_in_use = u;
        }
        return;
    }
    config_free(fresh);
    free(fresh);
}

static void on_signal(uv_signal_t *h, int signum)
{
    broker_t *b = h->data;
    switch (signum) {
    case SIGHUP:
        notify_reloading();
        reload(b);
        notify_ready();
        break;
    case SIGUSR2:
        log_reopen();
        break;
    default:
        log_notice("stopping", "signal=%d", signum);
        notify_stopping();
        atomic_store(&b->stopping, true);
        uv_stop(h->loop);
    }
}

/* Logs and prints why the start failed; the caller cleans up and exits 1. */
static int start_failed(const char *err)
{
    log_error("start_failed", "reason=\"%s\"", err[0] ? err : "out of memory");
    fprintf(stderr, "acemqd: %s\n", err[0] ? err : "out of memory");
    return 1;
}

/* Binds, drops privileges, opens the store, serves until a stop signal. Returns the exit code;
 * every path, failed or not, releases what it built. */
static int run_broker(acemq_config_t *cfg)
{
    static broker_t broker;
    broker_t *b = &broker;
    char err[1024] = "";
    int rc = 1;
    apply_logging(cfg, g_opts.verbose);
    for (const acemq_config_warning_t *wn = cfg->warnings; wn; wn = wn->next)
        log_warning("config_warning", "message=\"%s\"", wn->msg);
    raise_fd_limit();
    uv_loop_t *loop = uv_default_loop();
    /* metrics are bound before privileges are dropped, like the MQTT listeners; the store is
       opened after, so that its files belong to the user that writes them later */
    if (broker_init(b, cfg, err, sizeof err) < 0 || listeners_init(b, err, sizeof err) < 0 ||
        workers_bind(b, err, sizeof err) < 0 || metrics_start(b, loop, err, sizeof err) < 0) {
        rc = start_failed(err);
        goto out;
    }
    if (drop_privileges(cfg->user) < 0)
        goto out;
    if (cfg->persistence && open_store(b, err, sizeof err) < 0) {
        rc = start_failed(err);
        goto out;
    }
    b->main_loop = loop;
    uv_signal_t sigs[5];
    const int signums[5] = {SIGINT, SIGTERM, SIGHUP, SIGUSR2, SIGQUIT};
    for (int i = 0; i < 5; i++) {
        uv_signal_init(loop, &sigs[i]);
        sigs[i].data = b;
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    if (workers_start(b) < 0) {
        rc = start_failed("could not start the worker threads");
        goto out;
    }
    log_notice("started", "version=%s workers=%d config=%s pid=%d memory_limit=%llu",
               ACEMQ_VERSION, b->n_workers, cfg->path ? cfg->path : "(built-in)", (int)getpid(),
               (unsigned long long)b->lim.memory_limit);
    notify_ready();
    notify_status("running, %d workers", b->n_workers);
    notify_watchdog_start(loop);
    uv_run(loop, UV_RUN_DEFAULT);

    store_detach_workers(b->store); /* the workers are about to stop taking acks */
    workers_stop(b);
    store_close(b->store); /* everything written and fsynced before exit */
    b->store = NULL;
    for (int i = 0; i < 5; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
    rc = 0;
out:
    store_close(b->store); /* a start that failed after the store opened: NULL otherwise */
    b->store = NULL;
    metrics_stop();
    uv_run(loop, UV_RUN_NOWAIT);
    uv_loop_close(loop);
    broker_destroy(b);
    while (g_in_use) {
        in_use_t *u = g_in_use;
        g_in_use = u->next;
        config_free(u->cfg);
        free(u->cfg);
        free(u);
    }
    if (rc == 0)
        log_notice("stopped", "status=0");
    return rc;
}

int main(int argc, char **argv)
{
    char err[4096]; /* config_load() reports up to 20 errors */
    if (parse_args(argc, argv, &g_opts) < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    acemq_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg || load_config(&g_opts, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", cfg ? err : "out of memory");
        free(cfg);
        return 1;
    }
    if ((g_opts.port && !config_add_listener(cfg, g_opts.port, "127.0.0.1")) ||
        (!cfg->listeners && !config_add_listener(cfg, 1883, "127.0.0.1"))) {
        fprintf(stderr, "acemqd: out of memory\n");
        config_free(cfg);
        free(cfg);
        return 1;
    }
    if (g_opts.dump_store) {
        int rc = store_dump(g_opts.dump_store, cfg->persistence_file, stdout, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "acemqd: %s\n", err);
        config_free(cfg);
        free(cfg);
        return rc < 0 ? 1 : 0;
    }
    if (g_opts.test) { /* the TLS files too: what the start would refuse, -t refuses */
        int rc = listeners_check(cfg, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "%s\n", err);
        else
            printf("%s: configuration OK\n", cfg->path ? cfg->path : "(built-in)");
        config_free(cfg);
        free(cfg);
        return rc < 0 ? 1 : 0;
    }
    int rc = run_broker(cfg);
    config_free(cfg);
    free(cfg);
    return rc;
}
