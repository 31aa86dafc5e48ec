/*
 * broker/config.h: the daemon's configuration, parsed from a mosquitto.conf-style file.
 *
 * The file format is line based: `directive value...`, `#` starts a comment line, blank lines and
 * surrounding whitespace are ignored, values are split on whitespace (a few free-text values, noted
 * below, take the rest of the line). Every Mosquitto directive whose meaning acemq shares is
 * accepted under its Mosquitto name; the features acemq leaves out (bridges, plugins, OpenSSL
 * engines...) are refused with a message that says so. docs/configuration.md is the reference.
 *
 * Every field below is named after the directive that sets it, so code can be written against this
 * header alone. An acemq_config_t owns all of its memory (strings, lists, listeners): the daemon
 * loads a new one on SIGHUP, compares it with config_needs_restart(), and swaps it in whole or
 * keeps the old one if loading failed.
 *
 * Errors are `file:line: message` strings in a caller buffer; functions return 0 or -1.
 */
#ifndef ACEMQ_BROKER_CONFIG_H
#define ACEMQ_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* `log_type` bits. "all" is every bit, "none" is 0. */
#define ACEMQ_LOG_ERROR 0x01u
#define ACEMQ_LOG_WARNING 0x02u
#define ACEMQ_LOG_NOTICE 0x04u
#define ACEMQ_LOG_INFO 0x08u /* Mosquitto's name for it: `information` */
#define ACEMQ_LOG_DEBUG 0x10u
#define ACEMQ_LOG_SUBSCRIBE 0x20u
#define ACEMQ_LOG_UNSUBSCRIBE 0x40u
#define ACEMQ_LOG_WEBSOCKETS 0x80u
#define ACEMQ_LOG_ALL 0xFFu

/* `log_dest` kinds. */
typedef enum {
    ACEMQ_LOG_DEST_STDERR,
    ACEMQ_LOG_DEST_STDOUT,
    ACEMQ_LOG_DEST_SYSLOG,
    ACEMQ_LOG_DEST_FILE,  /* path is set */
    ACEMQ_LOG_DEST_TOPIC, /* Mosquitto's $SYS/broker/log/<type> topics */
} acemq_log_dest_kind_t;

/* Permission bits of `ace_public_topic` and `ace_scope_map`: pub, sub, pubsub. */
#define ACEMQ_PERM_PUB 0x1u
#define ACEMQ_PERM_SUB 0x2u

/* memory_limit when the config does not set it: three quarters of what the machine (or the
 * cgroup the daemon runs in) has, worked out when the limits are applied. */
#define MEMORY_LIMIT_AUTO UINT64_MAX

typedef struct acemq_log_dest {
    acemq_log_dest_kind_t kind;
    char *path; /* ACEMQ_LOG_DEST_FILE only, else NULL */
    struct acemq_log_dest *next;
} acemq_log_dest_t;

/* One `listener <port> [<bind_address>]` line, or the default listener of `port`/`bind_address`. */
typedef struct acemq_listener {
    char *where;         /* "file:line" of the line that created it, for log messages */
    int port;            /* 1-65535 */
    char *bind_address;  /* NULL = every address, IPv4 and IPv6 */
    char *bind_interface;/* NULL, or a network interface name (SO_BINDTODEVICE) */
    char *socket_domain; /* NULL (both), "ipv4" or "ipv6" */
    char *protocol;      /* "mqtt" (default) or "websockets"; never NULL */
    char *http_dir;      /* websockets: directory of static files to serve, NULL = none */
    int websockets_headers_size; /* websockets: max HTTP header bytes, default 4096 */
    int max_connections; /* on this listener, -1 = unlimited (default) */
    char *mount_point;   /* topic prefix for this listener's clients, NULL = none */
    bool use_username_as_clientid;

    /*
     * Settings that also exist globally. While parsing, -1/NULL means "not set here"; config_load()
     * then copies the global value into every listener that did not set its own, so after a
     * successful load these are always the values in force for the listener. The security ones
     * (allow_anonymous ... psk_file) only take a per-listener value with per_listener_settings true.
     */
    int allow_anonymous;            /* 0/1 */
    int allow_zero_length_clientid; /* 0/1 */
    char *auto_id_prefix;
    char *password_file;
    char *acl_file;
    char *psk_file;
    int max_qos;         /* 0-2 */
    int max_topic_alias; /* 0-65535 */

    /* TLS (certfile+keyfile, or psk_hint, make the listener a TLS listener). */
    char *certfile, *keyfile, *cafile, *capath, *crlfile;
    char *ciphers;        /* cipher suite list (TLS 1.2) */
    char *tls_version;    /* minimum version: NULL or "tlsv1.2" (the only version) */
    char *psk_hint;       /* enables PSK on this listener */
    bool require_certificate;
    bool use_identity_as_username;
    int tls_handshake_timeout; /* seconds, default 10 */

    bool ace_bearer; /* accept bearer JWTs (no cnf / proof of possession) on this listener */

    struct acemq_listener *next;
} acemq_listener_t;

typedef struct acemq_ace_issuer { /* `ace_issuer <iss> <keyfile>` (repeatable) */
    char *iss;
    char *keyfile;
    struct acemq_ace_issuer *next;
} acemq_ace_issuer_t;

typedef struct acemq_ace_public_topic { /* `ace_public_topic <filter> <pub|sub|pubsub>` */
    char *filter;
    unsigned perm; /* ACEMQ_PERM_* */
    struct acemq_ace_public_topic *next;
} acemq_ace_public_topic_t;

typedef struct acemq_ace_scope_map { /* `ace_scope_map <scope-name> <filter> <pub|sub|pubsub>` */
    char *name;
    char *filter;
    unsigned perm; /* ACEMQ_PERM_* */
    struct acemq_ace_scope_map *next;
} acemq_ace_scope_map_t;

typedef struct acemq_config_warning { /* things accepted but worth a log line at start */
    char *msg; /* "file:line: message" */
    struct acemq_config_warning *next;
} acemq_config_warning_t;

typedef struct acemq_config {
    char *path; /* the file it came from, NULL if not from a file */
    acemq_listener_t *listeners; /* in file order; NULL if the file defines none */
    acemq_config_warning_t *warnings;

    /* Process */
    int workers;       /* event-loop threads, 0 = number of cores */
    char *user;        /* drop privileges to this user after binding, NULL = keep */
    char *pid_file;    /* NULL = none */
    bool set_tcp_nodelay;
    uint32_t sys_interval; /* seconds between $SYS updates, 0 = off; default 10 */

    /* Authentication defaults (see acemq_listener_t for the per-listener copies) */
    bool per_listener_settings;
    bool allow_anonymous; /* false (Mosquitto 2); the daemon sets true for a bare `-p` */
    bool allow_zero_length_clientid;
    char *auto_id_prefix; /* "auto-" */
    char *password_file, *acl_file, *psk_file;
    char *clientid_prefixes; /* only client ids with this prefix may connect, NULL = any */
    bool check_retain_source;

    /* Protocol limits and behaviour */
    int global_max_connections;   /* over all listeners, -1 = unlimited */
    uint32_t max_packet_size;     /* bytes, 0 = 268435455 (protocol max); default 1 MiB */
    uint32_t message_size_limit;  /* PUBLISH payload bytes, 0 = none */
    int max_inflight_messages;    /* 20; 0 = 65535. Also the Receive Maximum sent in CONNACK */
    uint64_t max_inflight_bytes;  /* 0 = none */
    int max_queued_messages;      /* 1000; 0 = none */
    uint64_t max_queued_bytes;    /* 0 = none */
    bool queue_qos0_messages;
    int max_keepalive;            /* seconds, 65535 */
    int connect_timeout;          /* seconds from accept to CONNECT, 10 */
    bool retain_available;
    int max_qos;                  /* 2 */
    int max_topic_alias;          /* 10 */
    bool upgrade_outgoing_qos;
    int64_t persistent_client_expiration; /* seconds, 0 = never */
    int max_topic_levels;         /* 128 */
    int max_topic_length;         /* bytes, 65535 */
    int max_subscriptions;        /* per client, 1000; 0 = unlimited */

    /* Resource limits */
    uint64_t memory_limit;        /* bytes, 0 = none, MEMORY_LIMIT_AUTO = from the machine */
    int max_handshakes;           /* TLS handshakes at once per TLS listener, 1024; 0 = unlimited */
    int rate_limit_messages;      /* PUBLISH per second per client, 0 = none */
    uint64_t rate_limit_bytes;    /* bytes per second per client, 0 = none */
    int max_qos2_pending;         /* incoming QoS 2 awaiting PUBREL per client, 100; 0 = none */
    uint32_t max_properties_size; /* MQTT 5 property bytes per packet, 65536; 0 = none */

    /* Logging */
    unsigned log_types;           /* ACEMQ_LOG_* bits; default error|warning|notice|information */
    acemq_log_dest_t *log_dests;  /* default: one stderr entry; NULL = `log_dest none` */
    int log_facility;             /* syslog LOG_LOCAL0-7 as 0-7, -1 = LOG_DAEMON (default) */
    bool log_timestamp;           /* true */
    char *log_timestamp_format;   /* strftime format, NULL = seconds since the epoch */
    bool connection_messages;     /* true */

    /* Persistence */
    bool persistence;             /* false */
    char *persistence_location;   /* directory, NULL = current directory */
    char *persistence_file;       /* "acemq.db" */
    int autosave_interval;        /* seconds between compaction checks, 1800 */
    bool autosave_on_changes;
    char *fsync;                  /* "everysec" (default), "always" or "never"; never NULL */
    int persistence_compact_ratio;/* compact when the log is this many times the live data, 4 */

    /* ACE (RFC 9431) */
    char *ace_audience;           /* our audience; required when any ACE directive is used */
    acemq_ace_issuer_t *ace_issuers;
    char *ace_as_hint;            /* AS URI sent in AS Request Creation Hints */
    bool ace_cnonce;              /* put a cnonce in the hints and require it back */
    char *ace_introspection_url, *ace_introspection_client_id, *ace_introspection_secret_file;
    int ace_introspection_cache_ttl; /* seconds, 60 */
    int ace_introspection_timeout;   /* seconds, 5 */
    char *ace_introspection_cafile;  /* PEM CAs for the AS certificate, NULL = system bundle */
    int ace_clock_skew;           /* seconds, 60 */
    int ace_profile_id;           /* integer accepted in the ace_profile claim, 3 */
    int ace_max_token_size;       /* bytes, 8192 */
    acemq_ace_public_topic_t *ace_public_topics;
    acemq_ace_scope_map_t *ace_scope_map;

    /* Metrics (`metrics_listener <port> [<address>]`) */
    int metrics_port;             /* 0 = off */
    char *metrics_address;        /* "127.0.0.1" when a port is given without one */
} acemq_config_t;

/* Fills c with the defaults above and no listeners. c owns memory afterwards: config_free() it. */
int config_defaults(acemq_config_t *c);

/*
 * Parses the file at path into c, starting from the defaults. Returns 0, or -1 with
 * "file:line: message" (or "file: message") in err (cap bytes) and c freed and zeroed.
 */
int config_load(acemq_config_t *c, const char *path, char *err, size_t cap);

/* Same for text in memory; name stands for the file name in messages (include_dir works too). */
int config_load_string(acemq_config_t *c, const char *text, const char *name, char *err,
                       size_t cap);

/*
 * Adds a listener on port (bind_address NULL = all) to a loaded config, for the daemon's `-p`.
 * Unset inherited settings take the global values. Returns the listener, or NULL on no memory.
 */
acemq_listener_t *config_add_listener(acemq_config_t *c, int port, const char *bind_address);

/* Frees everything c owns and zeroes it. Safe on a zeroed config and twice in a row. */
void config_free(acemq_config_t *c);

/*
 * Compares a running config with a reloaded one. Returns 1 and a "; "-separated list in msg if a
 * setting that is only read at start changed (listener set, workers, user, persistence...), else
 * 0 (then the new config can be swapped in). msg is always a string (empty when 0).
 */
int config_needs_restart(const acemq_config_t *old, const acemq_config_t *new_, char *msg,
                         size_t cap);

/* 1 if two listeners matched by port and address differ in a setting that is only read at start
 * (protocol, mount_point, TLS on or off...), else 0: the new block may then serve new connections. */
int config_listener_needs_restart(const acemq_listener_t *old, const acemq_listener_t *new_);

#endif
