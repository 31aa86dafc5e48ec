/*
 * broker/config.c: loading a configuration (files, include_dir, whole-file checks), defaults,
 * freeing, and the reload comparison. The per-line parsing and the directive table are in
 * config_parse.c.
 *
 * A load either produces a complete config or nothing: on any error the partly built config is
 * freed, so a failed SIGHUP reload leaves the running config untouched. A bad line does not stop
 * the parse: every error is reported, one `file:line: message` per line (at most MAX_ERRORS,
 * then "... and N more errors").
 */
#include "broker/config_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_INCLUDE_DEPTH 8

/* Errors written to the caller's buffer at most; the rest are counted in a last line. */
#define MAX_ERRORS 20
/* Room kept for that last line ("... and N more errors"). */
#define MORE_ROOM 32

/* Messages are "file:line: text"; where is the "file:line" part. */
static void vformat(char *buf, size_t cap, const char *where, const char *fmt, va_list ap)
{
    int n = snprintf(buf, cap, "%s: ", where);
    if (n >= 0 && (size_t)n < cap)
        vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
}

/* Appends one error as a line of p->err. The first always goes in (truncated if need be); later
 * ones only while fewer than MAX_ERRORS are shown and they fit with MORE_ROOM to spare. A second
 * message about the same place (a handler that words a helper's error its own way) replaces the
 * first: one error per bad line. */
static void add_error(cfg_parse_t *p, const char *where, const char *fmt, va_list ap)
{
    char msg[512];
    vformat(msg, sizeof msg, where, fmt, ap);
    if (p->n_errors && strcmp(where, p->last_where) == 0) {
        p->n_errors--;
        if (p->last_shown) {
            p->n_shown--;
            p->err[p->last_at] = '\0';
        }
    }
    snprintf(p->last_where, sizeof p->last_where, "%s", where);
    p->n_errors++;
    size_t len = p->cap ? strnlen(p->err, p->cap) : 0, ml = strlen(msg);
    p->last_at = len;
    p->last_shown = p->cap && (p->n_shown == 0 || (p->n_shown < MAX_ERRORS &&
                                                   len + 1 + ml + 1 + MORE_ROOM <= p->cap));
    if (!p->last_shown)
        return;
    if (p->n_shown++ == 0)
        snprintf(p->err, p->cap, "%s", msg);
    else
        snprintf(p->err + len, p->cap - len, "\n%s", msg);
}

int cfg_error_at(cfg_parse_t *p, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_error(p, where, fmt, ap);
    va_end(ap);
    return -1;
}

int cfg_error(cfg_parse_t *p, const char *fmt, ...)
{
    char where[320];
    va_list ap;
    snprintf(where, sizeof where, "%s:%d", p->file, p->line);
    va_start(ap, fmt);
    add_error(p, where, fmt, ap);
    va_end(ap);
    return -1;
}

/* Ends the list of errors with how many were left out. */
static void errors_done(cfg_parse_t *p)
{
    int more = p->n_errors - p->n_shown;
    size_t len = p->cap ? strnlen(p->err, p->cap) : 0;
    if (more > 0 && len + 1 < p->cap)
        snprintf(p->err + len, p->cap - len, "\n... and %d more error%s", more,
                 more == 1 ? "" : "s");
}

static int add_warning(cfg_parse_t *p, const char *msg)
{
    acemq_config_warning_t *w = calloc(1, sizeof *w), **tail = &p->c->warnings;
    if (!w || !(w->msg = strdup(msg))) {
        free(w);
        return cfg_error(p, "out of memory");
    }
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    return 0;
}

int cfg_warn_at(cfg_parse_t *p, const char *where, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vformat(buf, sizeof buf, where, fmt, ap);
    va_end(ap);
    return add_warning(p, buf);
}

int cfg_warn(cfg_parse_t *p, const char *fmt, ...)
{
    char where[320], buf[512];
    va_list ap;
    snprintf(where, sizeof where, "%s:%d", p->file, p->line);
    va_start(ap, fmt);
    vformat(buf, sizeof buf, where, fmt, ap);
    va_end(ap);
    return add_warning(p, buf);
}

int config_defaults(acemq_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->sys_interval = 10;
    c->allow_zero_length_clientid = true;
    c->global_max_connections = -1;
    c->memory_limit = MEMORY_LIMIT_AUTO;
    c->max_packet_size = 1048576;
    c->max_inflight_messages = 20;
    c->max_queued_messages = 1000;
    c->max_keepalive = 65535;
    c->connect_timeout = 10;
    c->retain_available = true;
    c->max_qos = 2;
    c->max_topic_alias = 10;
    c->max_topic_levels = 128;
    c->max_topic_length = 65535;
    c->max_subscriptions = 1000;
    c->max_handshakes = 1024;
    c->max_qos2_pending = 100;
    c->max_properties_size = 65536;
    c->log_types = ACEMQ_LOG_ERROR | ACEMQ_LOG_WARNING | ACEMQ_LOG_NOTICE | ACEMQ_LOG_INFO;
    c->log_facility = -1;
    c->log_timestamp = true;
    c->connection_messages = true;
    c->autosave_interval = 1800;
    c->persistence_compact_ratio = 4;
    c->ace_introspection_cache_ttl = 60;
    c->ace_introspection_timeout = 5;
    c->ace_clock_skew = 60;
    c->ace_profile_id = 3;
    c->ace_max_token_size = 8192;
    c->auto_id_prefix = strdup("auto-");
    c->persistence_file = strdup("acemq.db");
    c->fsync = strdup("everysec");
    c->log_dests = calloc(1, sizeof *c->log_dests); /* kind 0 = stderr */
    if (!c->auto_id_prefix || !c->persistence_file || !c->fsync || !c->log_dests) {
        config_free(c);
        return -1;
    }
    return 0;
}

/* The address of a table directive's field in c or l, or NULL if it has none there. */
static void *field_of(const cfg_directive_t *d, const acemq_config_t *c,
                      const acemq_listener_t *l)
{
    if (l)
        return d->loff >= 0 ? (char *)l + d->loff : NULL;
    return d->goff >= 0 ? (char *)c + d->goff : NULL;
}

static bool is_string(const cfg_directive_t *d)
{
    return d->kind == K_WORD || d->kind == K_TEXT || d->kind == K_CHOICE;
}

static void free_listener(acemq_listener_t *l)
{
    for (size_t i = 0; i < cfg_directive_count; i++) {
        char **s = is_string(&cfg_directives[i]) ? field_of(&cfg_directives[i], NULL, l) : NULL;
        if (s)
            free(*s);
    }
    free(l->where);
    free(l->bind_address);
    free(l);
}

static void free_lists(acemq_config_t *c)
{
    for (acemq_config_warning_t *w = c->warnings, *n; w; w = n) {
        n = w->next;
        free(w->msg);
        free(w);
    }
    for (acemq_log_dest_t *d = c->log_dests, *n; d; d = n) {
        n = d->next;
        free(d->path);
        free(d);
    }
    for (acemq_ace_issuer_t *i = c->ace_issuers, *n; i; i = n) {
        n = i->next;
        free(i->iss);
        free(i->keyfile);
        free(i);
    }
    for (acemq_ace_public_topic_t *t = c->ace_public_topics, *n; t; t = n) {
        n = t->next;
        free(t->filter);
        free(t);
    }
    for (acemq_ace_scope_map_t *m = c->ace_scope_map, *n; m; m = n) {
        n = m->next;
        free(m->name);
        free(m->filter);
        free(m);
    }
}

void config_free(acemq_config_t *c)
{
    for (acemq_listener_t *l = c->listeners, *n; l; l = n) {
        n = l->next;
        free_listener(l);
    }
    for (size_t i = 0; i < cfg_directive_count; i++) {
        char **s = is_string(&cfg_directives[i]) ? field_of(&cfg_directives[i], c, NULL) : NULL;
        if (s)
            free(*s);
    }
    free_lists(c);
    free(c->path);
    free(c->ace_introspection_url);
    free(c->ace_introspection_client_id);
    free(c->ace_introspection_secret_file);
    free(c->metrics_address);
    memset(c, 0, sizeof *c);
}

int cfg_inherit(acemq_config_t *c, acemq_listener_t *l)
{
    for (size_t i = 0; i < cfg_directive_count; i++) {
        const cfg_directive_t *d = &cfg_directives[i];
        if (d->scope != S_INHERIT && d->scope != S_SECURITY)
            continue;
        void *lf = field_of(d, c, l), *gf = field_of(d, c, NULL);
        if (d->kind == K_BOOL && *(int *)lf < 0)
            *(int *)lf = *(bool *)gf;
        else if (d->kind == K_INT && *(int *)lf < 0)
            *(int *)lf = *(int *)gf;
        else if (is_string(d) && !*(char **)lf && *(char **)gf &&
                 !(*(char **)lf = strdup(*(char **)gf)))
            return -1;
    }
    return 0;
}

acemq_listener_t *config_add_listener(acemq_config_t *c, int port, const char *bind_address)
{
    acemq_listener_t *l = cfg_new_listener(c, port, "command line");
    if (!l)
        return NULL;
    if ((bind_address && !(l->bind_address = strdup(bind_address))) || cfg_inherit(c, l))
        return NULL; /* l stays in the list and is freed with c */
    return l;
}

static bool same_address(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int check_listener(cfg_parse_t *p, const acemq_listener_t *l)
{
    for (const acemq_listener_t *o = p->c->listeners; o != l; o = o->next)
        if (o->port == l->port && same_address(o->bind_address, l->bind_address))
            return cfg_error_at(p, l->where, "listener %d: already defined at %s", l->port,
                            o->where);
    if (!l->certfile != !l->keyfile)
        return cfg_error_at(p, l->where, "listener %d: certfile and keyfile must be set together",
                        l->port);
    if (l->require_certificate && !l->cafile && !l->capath)
        return cfg_error_at(p, l->where, "listener %d: require_certificate needs cafile or capath",
                        l->port);
    /* Legal (TLS may end at a proxy in front), but a bearer token on plain TCP can be stolen. */
    if (l->ace_bearer && !l->certfile && !l->psk_hint &&
        cfg_warn_at(p, l->where, "listener %d: ace_bearer on a listener without TLS", l->port))
        return -1;
    return 0;
}

int cfg_finish(cfg_parse_t *p)
{
    acemq_config_t *c = p->c;
    int rc = 0;
    if ((c->ace_issuers || c->ace_introspection_url) && !c->ace_audience)
        rc = cfg_error_at(p, p->ace_where, "ace_audience must be set to verify ACE tokens");
    for (acemq_listener_t *l = c->listeners; l; l = l->next)
        if (check_listener(p, l))
            rc = -1;
    if (rc)
        return rc;
    for (acemq_listener_t *l = c->listeners; l; l = l->next)
        if (cfg_inherit(c, l))
            return cfg_error_at(p, p->file, "out of memory");
    return 0;
}

/* Parses text (modified in place) line by line. A bad line is reported and skipped, so that one
 * run finds every error; the result is -1 if there was any. */
static int parse_text(cfg_parse_t *p, char *text)
{
    int rc = 0;
    p->line = 0;
    for (char *s = text, *nl; s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        p->line++;
        if (cfg_parse_line(p, s))
            rc = -1;
    }
    return rc;
}

/* Reads a whole file into a NUL-terminated buffer; errno is set on failure. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap = cap * 2 + 4096);
            if (!nb)
                break;
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            int bad = ferror(f);
            fclose(f);
            if (bad) {
                free(buf);
                errno = EIO;
                return NULL;
            }
            buf[len] = '\0';
            if (memchr(buf, '\0', len)) {
                free(buf);
                errno = EINVAL; /* a NUL byte: not a text file */
                return NULL;
            }
            return buf;
        }
    }
    fclose(f);
    free(buf);
    errno = ENOMEM;
    return NULL;
}

/* Parses one file as part of a load; file and line are restored for the includer's messages. */
static int parse_file(cfg_parse_t *p, const char *path)
{
    char *text = read_file(path);
    if (!text)
        return -1;
    const char *file = p->file;
    int line = p->line;
    p->file = path;
    int rc = parse_text(p, text);
    p->file = file; /* an error message is already written by now */
    p->line = line;
    free(text);
    return rc == 0 ? 0 : -2;
}

static int conf_filter(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 5 && strcmp(e->d_name + n - 5, ".conf") == 0;
}

/* Byte order, not the locale's: the same files load in the same order everywhere. */
static int byte_order(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int cfg_include_dir(cfg_parse_t *p, const char *dir)
{
    struct dirent **names;
    if (p->depth >= MAX_INCLUDE_DEPTH)
        return cfg_error(p, "include_dir: nested too deeply (does '%s' include itself?)", dir);
    int n = scandir(dir, &names, conf_filter, byte_order);
    if (n < 0)
        return cfg_error(p, "include_dir: cannot read '%s': %s", dir, strerror(errno));
    int rc = 0;
    p->depth++;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) { /* the next file after an error too */
            int frc = parse_file(p, path);
            if (frc == -1)
                cfg_error(p, "include_dir: cannot read '%s': %s", path, strerror(errno));
            rc = rc ? rc : frc;
        }
        free(names[i]);
    }
    free(names);
    p->depth--;
    return rc ? -1 : 0;
}

static int load_text(acemq_config_t *c, char *text, const char *name, char *err, size_t cap)
{
    cfg_parse_t p = {.c = c, .file = name, .err = err, .cap = cap};
    /* the whole-file checks run after bad lines too: every error is reported at once */
    int rc = parse_text(&p, text);
    if (cfg_finish(&p) || rc) {
        errors_done(&p);
        config_free(c);
        return -1;
    }
    return 0;
}

int config_load_string(acemq_config_t *c, const char *text, const char *name, char *err,
                       size_t cap)
{
    char *copy = strdup(text);
    if (cap)
        err[0] = '\0';
    if (!copy || config_defaults(c)) {
        free(copy);
        snprintf(err, cap, "%s: out of memory", name);
        return -1;
    }
    int rc = load_text(c, copy, name, err, cap);
    free(copy);
    return rc;
}

int config_load(acemq_config_t *c, const char *path, char *err, size_t cap)
{
    if (cap)
        err[0] = '\0';
    memset(c, 0, sizeof *c);
    char *text = read_file(path);
    if (!text) {
        snprintf(err, cap, "%s: %s", path,
                 errno == EINVAL ? "contains a NUL byte" : strerror(errno));
        return -1;
    }
    int rc = -1;
    if (config_defaults(c) == 0 && (c->path = strdup(path)) != NULL)
        rc = load_text(c, text, path, err, cap);
    else {
        config_free(c);
        snprintf(err, cap, "%s: out of memory", path);
    }
    free(text);
    return rc;
}

/* The differences found so far: a count, and as much of their text as fits. */
typedef struct {
    char *msg;
    size_t cap;
    int count;
} diff_t;

/* Appends "; "-separated text to the message. */
static void note(diff_t *df, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(diff_t *df, const char *fmt, ...)
{
    char *msg = df->msg;
    size_t cap = df->cap, len = strnlen(msg, cap);
    va_list ap;
    df->count++;
    if (len && len + 2 < cap) {
        memcpy(msg + len, "; ", 3);
        len += 2;
    }
    if (len + 1 >= cap)
        return;
    va_start(ap, fmt);
    vsnprintf(msg + len, cap - len, fmt, ap);
    va_end(ap);
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Does a table field hold the same value in two configs (or two listeners)? */
static bool same_value(const cfg_directive_t *d, const void *a, const void *b, bool in_listener)
{
    switch (d->kind) {
    case K_BOOL:
        return in_listener && d->scope != S_LISTENER ? *(const int *)a == *(const int *)b
                                                     : *(const bool *)a == *(const bool *)b;
    case K_INT:
        return *(const int *)a == *(const int *)b;
    case K_U32:
        return *(const uint32_t *)a == *(const uint32_t *)b;
    case K_U64:
        return *(const uint64_t *)a == *(const uint64_t *)b;
    default:
        return str_eq(*(char *const *)a, *(char *const *)b);
    }
}

static const acemq_listener_t *find_listener(const acemq_config_t *c, const acemq_listener_t *l)
{
    for (const acemq_listener_t *o = c->listeners; o; o = o->next)
        if (o->port == l->port && str_eq(o->bind_address, l->bind_address))
            return o;
    return NULL;
}

static bool is_tls(const acemq_listener_t *l)
{
    return l->certfile || l->psk_hint;
}

/* Listeners are matched by port and address; the rest of a listener is compared field by field. */
static void diff_listeners(const acemq_config_t *old, const acemq_config_t *new_, diff_t *df)
{
    for (const acemq_listener_t *l = old->listeners; l; l = l->next) {
        const acemq_listener_t *n = find_listener(new_, l);
        const char *addr = l->bind_address ? l->bind_address : "*";
        if (!n) {
            note(df, "listener %s:%d removed", addr, l->port);
            continue;
        }
        for (size_t i = 0; i < cfg_directive_count; i++) {
            const cfg_directive_t *d = &cfg_directives[i];
            if (d->restart && d->loff >= 0 &&
                !same_value(d, field_of(d, old, l), field_of(d, new_, n), true))
                note(df, "listener %s:%d: %s changed", addr, l->port, d->name);
        }
        if (is_tls(l) != is_tls(n))
            note(df, "listener %s:%d: TLS %s", addr, l->port,
                 is_tls(n) ? "enabled" : "disabled");
    }
    for (const acemq_listener_t *n = new_->listeners; n; n = n->next)
        if (!find_listener(old, n))
            note(df, "listener %s:%d added", n->bind_address ? n->bind_address : "*",
                 n->port);
}

int config_listener_needs_restart(const acemq_listener_t *old, const acemq_listener_t *new_)
{
    for (size_t i = 0; i < cfg_directive_count; i++) {
        const cfg_directive_t *d = &cfg_directives[i];
        if (d->restart && d->loff >= 0 &&
            !same_value(d, field_of(d, NULL, old), field_of(d, NULL, new_), true))
            return 1;
    }
    return is_tls(old) != is_tls(new_);
}

int config_needs_restart(const acemq_config_t *old, const acemq_config_t *new_, char *msg,
                         size_t cap)
{
    char none[1];
    diff_t df = {cap ? msg : none, cap ? cap : 1, 0}; /* cap 0: the caller only wants the answer */
    df.msg[0] = '\0';
    diff_listeners(old, new_, &df);
    for (size_t i = 0; i < cfg_directive_count; i++) {
        const cfg_directive_t *d = &cfg_directives[i];
        if (d->restart && d->goff >= 0 &&
            !same_value(d, field_of(d, old, NULL), field_of(d, new_, NULL), false))
            note(&df, "%s changed", d->name);
    }
    if (old->per_listener_settings != new_->per_listener_settings)
        note(&df, "per_listener_settings changed");
    if (old->metrics_port != new_->metrics_port ||
        !str_eq(old->metrics_address, new_->metrics_address))
        note(&df, "metrics_listener changed");
    return df.count > 0;
}
