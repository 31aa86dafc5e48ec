/*
 * broker/config_int.h: what config.c (file reading, defaults, free, restart check) and
 * config_parse.c (the directive table and its handlers) share. Not for use outside broker/config*.c
 * and its unit test.
 *
 * Most directives are one row of a table: a value kind, a scope and the offset of the field they
 * set, so parsing, freeing, inheriting and the restart check are each one loop over the table.
 * Directives with several values or lists have a handler function instead.
 */
#ifndef ACEMQ_BROKER_CONFIG_INT_H
#define ACEMQ_BROKER_CONFIG_INT_H

#include "broker/config.h"

enum cfg_kind {
    K_BOOL,   /* true|false; bool globally, int (-1 unset) in a listener for inherited settings */
    K_INT,    /* int in [min, max] */
    K_U32,    /* uint32_t in [min, max] */
    K_U64,    /* uint64_t in [min, max] */
    K_WORD,   /* one whitespace-free value (paths, names) */
    K_TEXT,   /* the rest of the line (free text such as a strftime format) */
    K_CHOICE, /* one of the '|'-separated words in extra */
    K_FN,     /* custom handler */
    K_UNSUPPORTED, /* a Mosquitto feature acemq does not have; extra names the feature */
    K_OBSOLETE,    /* accepted for old Mosquitto files, ignored with a warning */
};

enum cfg_scope {
    S_GLOBAL,   /* anywhere; sets the global field */
    S_LISTENER, /* sets the current listener's field; an error before any listener */
    S_INHERIT,  /* the current listener's field if there is one, else the global default */
    S_SECURITY, /* like S_INHERIT, but per listener only with per_listener_settings true */
};

typedef struct cfg_parse cfg_parse_t;
typedef struct cfg_directive cfg_directive_t;

/* argv[0] is the directive; argv[1..argc-1] the values; rest is the line after the directive. */
typedef int (*cfg_handler_fn)(cfg_parse_t *p, const cfg_directive_t *d, int argc, char **argv,
                              const char *rest);

struct cfg_directive {
    const char *name;
    unsigned char kind, scope;
    bool restart;   /* a change needs a restart (not applied on reload) */
    int goff, loff; /* offsetof in acemq_config_t / acemq_listener_t, or -1 */
    long long min, max;
    const char *extra; /* K_CHOICE words, K_UNSUPPORTED feature name */
    cfg_handler_fn fn;
};

extern const cfg_directive_t cfg_directives[];
extern const size_t cfg_directive_count;

/* The state of one parse, shared by a file and the files it includes. */
struct cfg_parse {
    acemq_config_t *c;
    const char *file;
    int line;
    acemq_listener_t *cur;   /* where listener-scoped directives go, NULL before any */
    acemq_listener_t *deflt; /* the listener made by `port`/`bind_address` */
    bool seen_listener;      /* a `listener` line was read: `port` no longer selects */
    bool seen_security;      /* for the per_listener_settings ordering rule */
    bool log_type_set, log_dest_set; /* the first line of each replaces the default */
    char ace_where[320];     /* "file:line" of the first ACE directive, for the audience check */
    int depth;               /* include_dir nesting */
    char *err;
    size_t cap;
    /* the errors so far (config.c, cfg_error): how many, how many are written in err, and where
     * the last one is (a second message about the same line replaces it) */
    int n_errors, n_shown;
    size_t last_at;
    bool last_shown;
    char last_where[320];
};

/* Adds "file:line: fmt..." to p->err (one line per error; past a limit they are only counted);
 * always returns -1. */
int cfg_error(cfg_parse_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same at a given "file:line" (a listener's line, for whole-file checks). */
int cfg_error_at(cfg_parse_t *p, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds a "file:line: fmt..." warning to the config; returns 0 or -1 on no memory. */
int cfg_warn(cfg_parse_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cfg_warn_at(cfg_parse_t *p, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses one line (already without its newline). Returns 0 or -1 with the error set. */
int cfg_parse_line(cfg_parse_t *p, char *line);
/* Reads every DIR/ *.conf in byte order of their names. Defined in config.c. */
int cfg_include_dir(cfg_parse_t *p, const char *dir);
/* Checks that need the whole file, then copies inherited values into listeners. */
int cfg_finish(cfg_parse_t *p);
/* Allocates a listener with its defaults and appends it to the config. */
acemq_listener_t *cfg_new_listener(acemq_config_t *c, int port, const char *where);
/* Sets every inherited listener field that is still unset from the global value. */
int cfg_inherit(acemq_config_t *c, acemq_listener_t *l);
/* Finds a directive by name, or NULL. */
const cfg_directive_t *cfg_find(const char *name);

#endif
