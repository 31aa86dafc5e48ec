/*
 * broker/config_parse.c: the directive table and the parsing of one configuration line.
 *
 * Adding a directive is adding a row to cfg_directives[] (and a field to config.h and a paragraph
 * to docs/configuration.md). Rows with a kind other than K_FN are parsed, freed, inherited and
 * compared for restart generically; only directives with several values or with list semantics
 * have a handler here. A table row may also name a check function (LC rows), which refuses a
 * value with its own message before the generic parse stores it.
 */
#include "broker/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 16
#define WS " \t\r\n\v\f"
#define PORT_MAX 65535
#define PKT_MAX 268435455LL /* the largest MQTT remaining length */

static int h_listener(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_port(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_bind_address(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_include_dir(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_log_dest(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_log_type(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_expiration(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_per_listener(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_ace_issuer(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_ace_introspection(cfg_parse_t *, const cfg_directive_t *, int, char **,
                               const char *);
static int h_ace_public_topic(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_ace_scope_map(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int h_metrics_listener(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);
static int check_tls_version(cfg_parse_t *, const cfg_directive_t *, int, char **, const char *);

#define GOFF(f) (int)offsetof(acemq_config_t, f)
#define LOFF(f) (int)offsetof(acemq_listener_t, f)
/* A global setting; a listener setting; one with a global default a listener may override. */
#define G(n, k, rs, lo, hi, x) {#n, k, S_GLOBAL, rs, GOFF(n), -1, lo, hi, x, NULL}
#define L(n, k, rs, lo, hi, x) {#n, k, S_LISTENER, rs, -1, LOFF(n), lo, hi, x, NULL}
/* A listener setting whose value fn checks first (its own message) before the generic parse. */
#define LC(n, k, x, fn) {#n, k, S_LISTENER, false, -1, LOFF(n), 0, 0, x, fn}
#define I(n, k, sc, lo, hi) {#n, k, sc, false, GOFF(n), LOFF(n), lo, hi, NULL, NULL}
#define F(n, fn, rs) {n, K_FN, S_GLOBAL, rs, -1, -1, 0, 0, NULL, fn}
#define U(n, what) {n, K_UNSUPPORTED, S_GLOBAL, false, -1, -1, 0, 0, what, NULL}
#define O(n) {n, K_OBSOLETE, S_GLOBAL, false, -1, -1, 0, 0, NULL, NULL}

const cfg_directive_t cfg_directives[] = {
    /* Listeners */
    F("listener", h_listener, true),
    F("port", h_port, true),
    F("bind_address", h_bind_address, true),
    L(bind_interface, K_WORD, true, 0, 0, NULL),
    L(socket_domain, K_CHOICE, true, 0, 0, "ipv4|ipv6"),
    L(protocol, K_CHOICE, true, 0, 0, "mqtt|websockets"),
    L(http_dir, K_WORD, true, 0, 0, NULL),
    L(websockets_headers_size, K_INT, true, 1024, 65535, NULL),
    L(max_connections, K_INT, false, -1, INT_MAX, NULL),
    L(mount_point, K_WORD, true, 0, 0, NULL),
    L(use_username_as_clientid, K_BOOL, false, 0, 0, NULL),
    I(max_qos, K_INT, S_INHERIT, 0, 2),
    I(max_topic_alias, K_INT, S_INHERIT, 0, 65535),
    L(ace_bearer, K_BOOL, false, 0, 0, NULL),
    /* TLS */
    L(certfile, K_WORD, false, 0, 0, NULL),
    L(keyfile, K_WORD, false, 0, 0, NULL),
    L(cafile, K_WORD, false, 0, 0, NULL),
    L(capath, K_WORD, false, 0, 0, NULL),
    L(crlfile, K_WORD, false, 0, 0, NULL),
    L(ciphers, K_WORD, false, 0, 0, NULL),
    LC(tls_version, K_CHOICE, "tlsv1.2", check_tls_version),
    L(psk_hint, K_TEXT, false, 0, 0, NULL),
    L(require_certificate, K_BOOL, false, 0, 0, NULL),
    L(use_identity_as_username, K_BOOL, false, 0, 0, NULL),
    L(tls_handshake_timeout, K_INT, false, 1, 3600, NULL),
    /* Security (per listener with per_listener_settings) */
    F("per_listener_settings", h_per_listener, true),
    I(allow_anonymous, K_BOOL, S_SECURITY, 0, 0),
    I(allow_zero_length_clientid, K_BOOL, S_SECURITY, 0, 0),
    I(auto_id_prefix, K_WORD, S_SECURITY, 0, 0),
    I(password_file, K_WORD, S_SECURITY, 0, 0),
    I(acl_file, K_WORD, S_SECURITY, 0, 0),
    I(psk_file, K_WORD, S_SECURITY, 0, 0),
    G(clientid_prefixes, K_WORD, false, 0, 0, NULL),
    G(check_retain_source, K_BOOL, false, 0, 0, NULL),
    /* Process */
    G(workers, K_INT, true, 0, 1024, NULL),
    G(user, K_WORD, true, 0, 0, NULL),
    G(pid_file, K_WORD, true, 0, 0, NULL),
    G(set_tcp_nodelay, K_BOOL, false, 0, 0, NULL),
    G(sys_interval, K_U32, true, 0, 31536000, NULL),
    F("include_dir", h_include_dir, false),
    /* Protocol limits and behaviour */
    G(global_max_connections, K_INT, false, -1, INT_MAX, NULL),
    G(max_packet_size, K_U32, false, 0, PKT_MAX, NULL),
    G(message_size_limit, K_U32, false, 0, PKT_MAX, NULL),
    G(max_inflight_messages, K_INT, false, 0, 65535, NULL),
    G(max_inflight_bytes, K_U64, false, 0, LLONG_MAX, NULL),
    G(max_queued_messages, K_INT, false, 0, INT_MAX, NULL),
    G(max_queued_bytes, K_U64, false, 0, LLONG_MAX, NULL),
    G(queue_qos0_messages, K_BOOL, false, 0, 0, NULL),
    G(max_keepalive, K_INT, false, 0, 65535, NULL),
    G(connect_timeout, K_INT, false, 1, 3600, NULL),
    G(retain_available, K_BOOL, false, 0, 0, NULL),
    G(upgrade_outgoing_qos, K_BOOL, false, 0, 0, NULL),
    F("persistent_client_expiration", h_expiration, false),
    G(max_topic_levels, K_INT, false, 1, 65535, NULL),
    G(max_topic_length, K_INT, false, 1, 65535, NULL),
    G(max_subscriptions, K_INT, false, 0, INT_MAX, NULL),
    /* Resource limits */
    G(memory_limit, K_U64, false, 0, LLONG_MAX, NULL),
    G(max_handshakes, K_INT, false, 0, INT_MAX, NULL),
    G(rate_limit_messages, K_INT, false, 0, INT_MAX, NULL),
    G(rate_limit_bytes, K_U64, false, 0, LLONG_MAX, NULL),
    G(max_qos2_pending, K_INT, false, 0, 65535, NULL),
    G(max_properties_size, K_U32, false, 0, PKT_MAX, NULL),
    /* Logging */
    F("log_dest", h_log_dest, false),
    F("log_type", h_log_type, false),
    G(log_facility, K_INT, false, 0, 7, NULL),
    G(log_timestamp, K_BOOL, false, 0, 0, NULL),
    G(log_timestamp_format, K_TEXT, false, 0, 0, NULL),
    G(connection_messages, K_BOOL, false, 0, 0, NULL),
    /* Persistence */
    G(persistence, K_BOOL, true, 0, 0, NULL),
    G(persistence_location, K_WORD, true, 0, 0, NULL),
    G(persistence_file, K_WORD, true, 0, 0, NULL),
    G(autosave_interval, K_INT, true, 0, INT_MAX, NULL),
    G(autosave_on_changes, K_BOOL, true, 0, 0, NULL),
    G(fsync, K_CHOICE, true, 0, 0, "everysec|always|never"),
    G(persistence_compact_ratio, K_INT, true, 2, 100, NULL),
    /* ACE */
    G(ace_audience, K_WORD, false, 0, 0, NULL),
    F("ace_issuer", h_ace_issuer, false),
    G(ace_as_hint, K_WORD, false, 0, 0, NULL),
    G(ace_cnonce, K_BOOL, false, 0, 0, NULL),
    F("ace_introspection", h_ace_introspection, false),
    G(ace_introspection_cache_ttl, K_INT, false, 0, 86400, NULL),
    G(ace_introspection_timeout, K_INT, false, 1, 300, NULL),
    G(ace_introspection_cafile, K_WORD, false, 0, 0, NULL),
    G(ace_clock_skew, K_INT, false, 0, 86400, NULL),
    G(ace_profile_id, K_INT, false, 0, INT_MAX, NULL),
    G(ace_max_token_size, K_INT, false, 64, 1048576, NULL),
    F("ace_public_topic", h_ace_public_topic, false),
    F("ace_scope_map", h_ace_scope_map, false),
    /* Metrics */
    F("metrics_listener", h_metrics_listener, true),
    /* Mosquitto features acemq does not have (bridge_*, plugin_opt_*, auth_opt_* too) */
    U("connection", "bridges"), U("address", "bridges"), U("addresses", "bridges"),
    U("topic", "bridges"), U("cleansession", "bridges"), U("local_cleansession", "bridges"),
    U("clientid", "bridges"), U("remote_clientid", "bridges"), U("local_clientid", "bridges"),
    U("remote_username", "bridges"), U("remote_password", "bridges"),
    U("local_username", "bridges"), U("local_password", "bridges"), U("username", "bridges"),
    U("password", "bridges"), U("notifications", "bridges"),
    U("notifications_local_only", "bridges"), U("notification_topic", "bridges"),
    U("restart_timeout", "bridges"), U("round_robin", "bridges"), U("start_type", "bridges"),
    U("threshold", "bridges"), U("idle_timeout", "bridges"), U("keepalive_interval", "bridges"),
    U("try_private", "bridges"), U("auth_plugin", "plugins"), U("plugin", "plugins"),
    U("global_plugin", "plugins"), U("auth_plugin_deny_special_chars", "plugins"),
    U("websockets_log_level", "libwebsockets logging"), U("tls_engine", "OpenSSL engines"),
    U("tls_engine_kpass_sha1", "OpenSSL engines"), U("tls_keyform", "OpenSSL engines"),
    U("ciphers_tls1.3", "TLS 1.3, which mbedTLS 2.28 lacks"),
    U("dhparamfile", "DH parameter files; DHE suites use mbedTLS's 2048-bit RFC 3526 group"),
    U("use_subject_as_username", "the certificate subject as username; "
                                 "use_identity_as_username takes its CN"),
    /* Removed from Mosquitto 2 or meaningless here; old files still load */
    O("retry_interval"), O("store_clean_interval"), O("allow_duplicate_messages"),
};
const size_t cfg_directive_count = sizeof cfg_directives / sizeof cfg_directives[0];

const cfg_directive_t *cfg_find(const char *name)
{
    for (size_t i = 0; i < cfg_directive_count; i++)
        if (strcmp(cfg_directives[i].name, name) == 0)
            return &cfg_directives[i];
    return NULL;
}

/* Replaces the string at *slot with a copy of s. */
static int set_str(cfg_parse_t *p, char **slot, const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        return cfg_error(p, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

/* A decimal integer in [min, max]; the whole word must be the number. */
static int parse_num(cfg_parse_t *p, const char *name, const char *s, long long min,
                     long long max, long long *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    char *end;
    if (!isdigit((unsigned char)digits[0]))
        return cfg_error(p, "%s: '%s' is not a number", name, s);
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return cfg_error(p, "%s: '%s' is not a number", name, s);
    if (errno == ERANGE || v < min || v > max)
        return cfg_error(p, "%s: %s is out of range (%lld-%lld)", name, s, min, max);
    *out = v;
    return 0;
}

static int parse_bool(cfg_parse_t *p, const char *name, const char *s, bool *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        *out = s[0] == 't';
        return 0;
    }
    return cfg_error(p, "%s: expected true or false, got '%s'", name, s);
}

/* Is word one of the '|'-separated words of list? */
static bool in_list(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *s = list; s; s = strchr(s, '|') ? strchr(s, '|') + 1 : NULL)
        if (strncmp(s, word, n) == 0 && (s[n] == '|' || s[n] == '\0'))
            return true;
    return false;
}

static int parse_perm(cfg_parse_t *p, const char *name, const char *s, unsigned *out)
{
    if (strcmp(s, "pub") == 0)
        *out = ACEMQ_PERM_PUB;
    else if (strcmp(s, "sub") == 0)
        *out = ACEMQ_PERM_SUB;
    else if (strcmp(s, "pubsub") == 0)
        *out = ACEMQ_PERM_PUB | ACEMQ_PERM_SUB;
    else
        return cfg_error(p, "%s: expected pub, sub or pubsub, got '%s'", name, s);
    return 0;
}

/* An MQTT topic filter: '#' only as the whole last level, '+' only as a whole level. */
static int check_filter(cfg_parse_t *p, const char *name, const char *f)
{
    for (const char *s = f; *s; s++) {
        bool alone = (s == f || s[-1] == '/') && (s[1] == '\0' || s[1] == '/');
        if ((*s == '+' && !alone) || (*s == '#' && (!alone || s[1] != '\0')))
            return cfg_error(p, "%s: '%s' is not a valid topic filter", name, f);
    }
    return 0;
}

static int need_args(cfg_parse_t *p, int argc, char **argv, int min, int max)
{
    if (argc - 1 < min)
        return cfg_error(p, "%s: missing value", argv[0]);
    if (argc - 1 > max)
        return cfg_error(p, "%s: too many values", argv[0]);
    return 0;
}

/* Where a table directive writes: the current listener or the config, by scope. */
static int target(cfg_parse_t *p, const cfg_directive_t *d, char **base, int *off, bool *in_l)
{
    bool listener = false;
    if (d->scope == S_LISTENER) {
        if (!p->cur)
            return cfg_error(p, "%s: applies to a listener; put it after a 'listener' line",
                             d->name);
        listener = true;
    } else if (d->scope == S_INHERIT) {
        listener = p->cur != NULL;
    } else if (d->scope == S_SECURITY) {
        p->seen_security = true;
        listener = p->cur && p->c->per_listener_settings;
    }
    *in_l = listener;
    *base = listener ? (char *)p->cur : (char *)p->c;
    *off = listener ? d->loff : d->goff;
    return 0;
}

/* Parses and stores the value of a table directive (every kind but K_FN). */
static int set_value(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                     const char *rest)
{
    char *base = NULL;
    int off = 0;
    bool in_l = false, b = false;
    long long v;
    /* Free text may hold spaces; every other kind is exactly one word. */
    if (d->kind == K_TEXT && !*rest)
        return cfg_error(p, "%s: missing value", d->name);
    if (d->kind != K_TEXT && need_args(p, argc, argv, 1, 1))
        return -1;
    if (target(p, d, &base, &off, &in_l))
        return -1;
    void *field = base + off;
    switch (d->kind) {
    case K_BOOL:
        if (parse_bool(p, d->name, argv[1], &b))
            return -1;
        if (in_l && d->scope != S_LISTENER)
            *(int *)field = b; /* inheritable listener booleans are int, -1 = unset */
        else
            *(bool *)field = b;
        return 0;
    case K_INT:
    case K_U32:
    case K_U64:
        if (parse_num(p, d->name, argv[1], d->min, d->max, &v))
            return -1;
        if (d->kind == K_INT)
            *(int *)field = (int)v;
        else if (d->kind == K_U32)
            *(uint32_t *)field = (uint32_t)v;
        else
            *(uint64_t *)field = (uint64_t)v;
        return 0;
    case K_CHOICE:
        if (!in_list(d->extra, argv[1]))
            return cfg_error(p, "%s: '%s' is not one of %s", d->name, argv[1], d->extra);
        return set_str(p, field, argv[1]);
    case K_TEXT:
        return set_str(p, field, rest);
    default:
        return set_str(p, field, argv[1]);
    }
}

acemq_listener_t *cfg_new_listener(acemq_config_t *c, int port, const char *where)
{
    acemq_listener_t *l = calloc(1, sizeof *l), **tail = &c->listeners;
    if (!l)
        return NULL;
    l->where = strdup(where);
    l->protocol = strdup("mqtt");
    if (!l->where || !l->protocol) {
        free(l->where);
        free(l->protocol);
        free(l);
        return NULL;
    }
    l->port = port;
    l->websockets_headers_size = 4096;
    l->max_connections = -1;
    l->tls_handshake_timeout = 10;
    l->allow_anonymous = l->allow_zero_length_clientid = -1;
    l->max_qos = l->max_topic_alias = -1;
    while (*tail)
        tail = &(*tail)->next;
    *tail = l;
    return l;
}

static acemq_listener_t *new_listener_here(cfg_parse_t *p, int port)
{
    char where[320];
    snprintf(where, sizeof where, "%s:%d", p->file, p->line);
    acemq_listener_t *l = cfg_new_listener(p->c, port, where);
    if (!l)
        cfg_error(p, "out of memory");
    return l;
}

static int h_listener(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                      const char *rest)
{
    long long port;
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 1, 2) || parse_num(p, "listener", argv[1], 1, PORT_MAX, &port))
        return -1;
    acemq_listener_t *l = new_listener_here(p, (int)port);
    if (!l || (argc == 3 && set_str(p, &l->bind_address, argv[2])))
        return -1;
    p->cur = l;
    p->seen_listener = true;
    return 0;
}

/* The default listener (Mosquitto 1.x style): made by the first `port` or `bind_address`. */
static acemq_listener_t *default_listener(cfg_parse_t *p)
{
    if (!p->deflt)
        p->deflt = new_listener_here(p, 1883);
    if (p->deflt && !p->seen_listener)
        p->cur = p->deflt;
    return p->deflt;
}

static int h_port(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                  const char *rest)
{
    long long port;
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 1, 1) || parse_num(p, "port", argv[1], 1, PORT_MAX, &port))
        return -1;
    acemq_listener_t *l = default_listener(p);
    if (!l)
        return -1;
    l->port = (int)port;
    return 0;
}

static int h_bind_address(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                          const char *rest)
{
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 1, 1))
        return -1;
    acemq_listener_t *l = default_listener(p);
    return l ? set_str(p, &l->bind_address, argv[1]) : -1;
}

static int h_include_dir(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                         const char *rest)
{
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 1, 1))
        return -1;
    return cfg_include_dir(p, argv[1]);
}

static void free_log_dests(acemq_log_dest_t *l)
{
    while (l) {
        acemq_log_dest_t *next = l->next;
        free(l->path);
        free(l);
        l = next;
    }
}

static int h_log_dest(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                      const char *rest)
{
    static const char *const kinds[] = {"stderr", "stdout", "syslog", "file", "topic"};
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 1, 2))
        return -1;
    if (!p->log_dest_set || strcmp(argv[1], "none") == 0) {
        free_log_dests(p->c->log_dests); /* the first line replaces the default */
        p->c->log_dests = NULL;
        p->log_dest_set = true;
    }
    if (strcmp(argv[1], "none") == 0)
        return argc == 2 ? 0 : cfg_error(p, "log_dest: too many values");
    if (strcmp(argv[1], "dlt") == 0)
        return cfg_error(p, "log_dest: 'dlt' is not supported by acemq");
    size_t k = 0;
    while (k < sizeof kinds / sizeof kinds[0] && strcmp(kinds[k], argv[1]) != 0)
        k++;
    if (k == sizeof kinds / sizeof kinds[0])
        return cfg_error(p, "log_dest: '%s' is not one of stderr|stdout|syslog|file|topic|none",
                         argv[1]);
    bool is_file = k == ACEMQ_LOG_DEST_FILE;
    if (argc != (is_file ? 3 : 2))
        return cfg_error(p, is_file ? "log_dest: file needs a path" : "log_dest: too many values");
    acemq_log_dest_t *ld = calloc(1, sizeof *ld), **tail = &p->c->log_dests;
    if (!ld || (is_file && !(ld->path = strdup(argv[2])))) {
        free(ld);
        return cfg_error(p, "out of memory");
    }
    ld->kind = (acemq_log_dest_kind_t)k;
    while (*tail)
        tail = &(*tail)->next;
    *tail = ld;
    return 0;
}

static int h_log_type(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                      const char *rest)
{
    static const struct { const char *name; unsigned bits; } types[] = {
        {"error", ACEMQ_LOG_ERROR},         {"warning", ACEMQ_LOG_WARNING},
        {"notice", ACEMQ_LOG_NOTICE},       {"information", ACEMQ_LOG_INFO},
        {"debug", ACEMQ_LOG_DEBUG},         {"subscribe", ACEMQ_LOG_SUBSCRIBE},
        {"unsubscribe", ACEMQ_LOG_UNSUBSCRIBE}, {"websockets", ACEMQ_LOG_WEBSOCKETS},
        {"all", ACEMQ_LOG_ALL},             {"none", 0},
    };
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 1, 1))
        return -1;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(types[i].name, argv[1]) != 0)
            continue;
        if (!p->log_type_set || types[i].bits == 0)
            p->c->log_types = 0; /* the first line replaces the default, `none` clears */
        p->log_type_set = true;
        p->c->log_types |= types[i].bits;
        return 0;
    }
    return cfg_error(p, "log_type: unknown type '%s'", argv[1]);
}

/* Mosquitto's duration: a number with h d w m(onths) y, or plain seconds (s allowed). */
static int h_expiration(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                        const char *rest)
{
    static const char units[] = "shdwmy";
    static const int64_t mult[] = {1, 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400};
    char num[32];
    long long v;
    (void)rest;
    if (need_args(p, argc, argv, 1, 1))
        return -1;
    size_t len = strlen(argv[1]);
    const char *u = len > 0 ? strchr(units, argv[1][len - 1]) : NULL;
    if (u && *u)
        len--;
    if (len == 0 || len >= sizeof num)
        return cfg_error(p, "%s: '%s' is not a duration (e.g. 3600, 1h, 2d, 3w, 1m, 1y)",
                         d->name, argv[1]);
    memcpy(num, argv[1], len);
    num[len] = '\0';
    int64_t m = (u && *u) ? mult[u - units] : 1;
    if (!isdigit((unsigned char)num[0]) ||
        parse_num(p, d->name, num, 0, INT64_MAX / m, &v))
        return cfg_error(p, "%s: '%s' is not a duration (e.g. 3600, 1h, 2d, 3w, 1m, 1y)",
                         d->name, argv[1]);
    p->c->persistent_client_expiration = v * m;
    return 0;
}

static int h_per_listener(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                          const char *rest)
{
    bool b = false;
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 1, 1) || parse_bool(p, argv[0], argv[1], &b))
        return -1;
    /* Earlier security lines were already stored globally; moving them now would guess. */
    if (b && (p->seen_listener || p->deflt || p->seen_security))
        return cfg_error(p, "per_listener_settings: must come before any listener and any "
                            "authentication directive");
    p->c->per_listener_settings = b;
    return 0;
}

static void mark_ace(cfg_parse_t *p)
{
    if (!p->ace_where[0])
        snprintf(p->ace_where, sizeof p->ace_where, "%s:%d", p->file, p->line);
}

static int h_ace_issuer(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                        const char *rest)
{
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 2, 2))
        return -1;
    acemq_ace_issuer_t *n = calloc(1, sizeof *n), **tail = &p->c->ace_issuers;
    if (!n || !(n->iss = strdup(argv[1])) || !(n->keyfile = strdup(argv[2]))) {
        if (n)
            free(n->iss);
        free(n);
        return cfg_error(p, "out of memory");
    }
    while (*tail)
        tail = &(*tail)->next;
    *tail = n;
    mark_ace(p);
    return 0;
}

static int h_ace_introspection(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                               const char *rest)
{
    acemq_config_t *c = p->c;
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 3, 3))
        return -1;
    if (strncmp(argv[1], "https://", 8) != 0 && strncmp(argv[1], "http://", 7) != 0)
        return cfg_error(p, "ace_introspection: '%s' is not an http:// or https:// URL", argv[1]);
    if (set_str(p, &c->ace_introspection_url, argv[1]) ||
        set_str(p, &c->ace_introspection_client_id, argv[2]) ||
        set_str(p, &c->ace_introspection_secret_file, argv[3]))
        return -1;
    if (strncmp(argv[1], "http://", 7) == 0 &&
        cfg_warn(p, "ace_introspection: plain http sends the client secret and tokens in clear"))
        return -1;
    mark_ace(p);
    return 0;
}

static int h_ace_public_topic(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                              const char *rest)
{
    unsigned perm;
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 2, 2) || check_filter(p, argv[0], argv[1]) ||
        parse_perm(p, argv[0], argv[2], &perm))
        return -1;
    acemq_ace_public_topic_t *n = calloc(1, sizeof *n), **tail = &p->c->ace_public_topics;
    if (!n || !(n->filter = strdup(argv[1]))) {
        free(n);
        return cfg_error(p, "out of memory");
    }
    n->perm = perm;
    while (*tail)
        tail = &(*tail)->next;
    *tail = n;
    return 0;
}

static int h_ace_scope_map(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                           const char *rest)
{
    unsigned perm;
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 3, 3) || check_filter(p, argv[0], argv[2]) ||
        parse_perm(p, argv[0], argv[3], &perm))
        return -1;
    acemq_ace_scope_map_t *n = calloc(1, sizeof *n), **tail = &p->c->ace_scope_map;
    if (!n || !(n->name = strdup(argv[1])) || !(n->filter = strdup(argv[2]))) {
        if (n)
            free(n->name);
        free(n);
        return cfg_error(p, "out of memory");
    }
    n->perm = perm;
    while (*tail)
        tail = &(*tail)->next;
    *tail = n;
    return 0;
}

static int h_metrics_listener(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                              const char *rest)
{
    long long port;
    (void)d, (void)rest;
    if (need_args(p, argc, argv, 1, 2) ||
        parse_num(p, "metrics_listener", argv[1], 1, PORT_MAX, &port))
        return -1;
    /* Metrics say a lot about the clients: loopback unless an address is given. */
    if (set_str(p, &p->c->metrics_address, argc == 3 ? argv[2] : "127.0.0.1"))
        return -1;
    p->c->metrics_port = (int)port;
    return 0;
}

/* TLS 1.2 only: older versions are refused by design, and mbedTLS 2.28 has no TLS 1.3. */
static int check_tls_version(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                             const char *rest)
{
    (void)d, (void)rest;
    if (argc != 2 || strcmp(argv[1], "tlsv1.2") == 0)
        return 0; /* set_value reports a missing or extra value */
    if (strcmp(argv[1], "tlsv1.3") == 0)
        return cfg_error(p, "tls_version: tlsv1.3 is not supported (mbedTLS 2.28 has no TLS 1.3); "
                            "tlsv1.2 is the only value");
    return cfg_error(p, "tls_version: '%s' is not supported (TLS 1.2 is the minimum); tlsv1.2 is "
                        "the only value", argv[1]);
}

/* Mosquitto directive families recognised by prefix. */
static const char *unsupported_prefix(const char *name)
{
    if (strncmp(name, "bridge_", 7) == 0)
        return "bridges";
    if (strncmp(name, "plugin_opt_", 11) == 0 || strncmp(name, "auth_opt_", 9) == 0)
        return "plugins";
    return NULL;
}

int cfg_parse_line(cfg_parse_t *p, char *line)
{
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    char *s = line, *rest, *save = NULL;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0' || *s == '#')
        return 0;
    /* rest: the text after the directive, for free-text values, without outer whitespace. */
    rest = s + strcspn(s, WS);
    rest += strspn(rest, WS);
    char *end = rest + strlen(rest);
    while (end > rest && isspace((unsigned char)end[-1]))
        end--;
    char *text = strndup(rest, (size_t)(end - rest));
    if (!text)
        return cfg_error(p, "out of memory");
    for (char *tok = strtok_r(s, WS, &save); tok; tok = strtok_r(NULL, WS, &save)) {
        if (argc == MAX_ARGS) {
            free(text);
            return cfg_error(p, "%s: too many values", argv[0]);
        }
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    const cfg_directive_t *d = cfg_find(argv[0]);
    const char *feature = d ? (d->kind == K_UNSUPPORTED ? d->extra : NULL)
                            : unsupported_prefix(argv[0]);
    int rc;
    if (feature)
        rc = cfg_error(p, "'%s' (%s) is not supported by acemq", argv[0], feature);
    else if (!d)
        rc = cfg_error(p, "unknown directive '%s'", argv[0]);
    else if (d->kind == K_OBSOLETE)
        rc = cfg_warn(p, "'%s' is obsolete in acemq and ignored", argv[0]);
    else if (d->kind == K_FN)
        rc = d->fn(p, d, argc, argv, text);
    else if (d->fn && d->fn(p, d, argc, argv, text) < 0)
        rc = -1;
    else
        rc = set_value(p, d, argc, argv, text);
    free(text);
    return rc;
}
