/*
 * tests/unit/test_config.c: the configuration parser (broker/config*.c).
 *
 * Every directive is parsed into its field, defaults, listener scoping and inheritance, every
 * error message word for word (operators grep for them), include_dir, the shipped
 * etc/acemq.conf, and the reload comparison. File tests use mkstemp/mkdtemp under /tmp.
 * Run from the repository root (tests/run.sh does) so that etc/ and docs/ are found.
 */
#include "broker/config.h"
#include "broker/config_int.h"
#include "tests/unit/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static acemq_config_t cfg;
static char err[512];

/* Loads text as "t.conf"; returns config_load_string's result. */
static int load(const char *text)
{
    return config_load_string(&cfg, text, "t.conf", err, sizeof err);
}

/* Expects text to fail with exactly msg. */
static int fails_with(const char *text, const char *msg)
{
    if (load(text) == 0) {
        config_free(&cfg);
        fprintf(stderr, "  loaded, expected: %s\n", msg);
        return 0;
    }
    if (strcmp(err, msg) != 0) {
        fprintf(stderr, "  got:      %s\n  expected: %s\n", err, msg);
        return 0;
    }
    return cfg.listeners == NULL && cfg.auto_id_prefix == NULL; /* freed on error */
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

TEST(defaults)
{
    acemq_config_t c;
    ASSERT_EQ(config_defaults(&c), 0);
    ASSERT(c.listeners == NULL && c.path == NULL);
    ASSERT_EQ(c.workers, 0);
    ASSERT(!c.allow_anonymous && !c.per_listener_settings && c.allow_zero_length_clientid);
    ASSERT_STR_EQ(c.auto_id_prefix, "auto-");
    ASSERT_EQ(c.global_max_connections, -1);
    ASSERT_EQ(c.max_packet_size, 1048576);
    ASSERT_EQ(c.message_size_limit, 0);
    ASSERT_EQ(c.max_inflight_messages, 20);
    ASSERT_EQ(c.max_inflight_bytes, 0);
    ASSERT_EQ(c.max_queued_messages, 1000);
    ASSERT_EQ(c.max_queued_bytes, 0);
    ASSERT(!c.queue_qos0_messages && c.retain_available && !c.upgrade_outgoing_qos);
    ASSERT_EQ(c.max_keepalive, 65535);
    ASSERT_EQ(c.connect_timeout, 10);
    ASSERT_EQ(c.max_qos, 2);
    ASSERT_EQ(c.max_topic_alias, 10);
    ASSERT_EQ(c.persistent_client_expiration, 0);
    ASSERT_EQ(c.max_topic_levels, 128);
    ASSERT_EQ(c.max_topic_length, 65535);
    ASSERT_EQ(c.max_subscriptions, 1000);
    ASSERT_EQ(c.sys_interval, 10);
    ASSERT(!c.set_tcp_nodelay);
    ASSERT_EQ(c.log_types, ACEMQ_LOG_ERROR | ACEMQ_LOG_WARNING | ACEMQ_LOG_NOTICE | ACEMQ_LOG_INFO);
    ASSERT(c.log_dests && c.log_dests->kind == ACEMQ_LOG_DEST_STDERR && !c.log_dests->next);
    ASSERT_EQ(c.log_facility, -1);
    ASSERT(c.log_timestamp && c.log_timestamp_format == NULL && c.connection_messages);
    ASSERT(!c.persistence && c.persistence_location == NULL);
    ASSERT_STR_EQ(c.persistence_file, "acemq.db");
    ASSERT_STR_EQ(c.fsync, "everysec");
    ASSERT_EQ(c.autosave_interval, 1800);
    ASSERT_EQ(c.persistence_compact_ratio, 4);
    ASSERT_EQ(c.ace_clock_skew, 60);
    ASSERT_EQ(c.ace_profile_id, 3);
    ASSERT_EQ(c.ace_introspection_cache_ttl, 60);
    ASSERT_EQ(c.ace_introspection_timeout, 5);
    ASSERT_EQ(c.ace_max_token_size, 8192);
    ASSERT(c.memory_limit == MEMORY_LIMIT_AUTO);
    ASSERT_EQ(c.max_handshakes, 1024);
    ASSERT_EQ(c.rate_limit_messages, 0);
    ASSERT_EQ(c.rate_limit_bytes, 0);
    ASSERT_EQ(c.max_qos2_pending, 100);
    ASSERT_EQ(c.max_properties_size, 65536);
    ASSERT_EQ(c.metrics_port, 0);
    config_free(&c);
    config_free(&c); /* twice is harmless */
}

TEST(global_directives)
{
    const char *text =
        "workers 4\nuser acemq\npid_file /run/a.pid\nset_tcp_nodelay true\nsys_interval 0\n"
        "allow_anonymous true\nallow_zero_length_clientid false\nauto_id_prefix gen-\n"
        "password_file /p\nacl_file /a\npsk_file /k\nclientid_prefixes dev-\n"
        "check_retain_source true\nglobal_max_connections 5000\nmax_packet_size 0\n"
        "message_size_limit 1000\nmax_inflight_messages 1\nmax_inflight_bytes 99\n"
        "max_queued_messages 7\nmax_queued_bytes 8000000000\nqueue_qos0_messages true\n"
        "max_keepalive 60\nconnect_timeout 3\nretain_available false\nmax_qos 1\n"
        "max_topic_alias 0\nupgrade_outgoing_qos true\npersistent_client_expiration 2d\n"
        "max_topic_levels 8\nmax_topic_length 100\nmax_subscriptions 0\nmemory_limit 1073741824\n"
        "max_handshakes 50\nrate_limit_messages 10\nrate_limit_bytes 4096\nmax_qos2_pending 5\n"
        "max_properties_size 1024\nlog_facility 3\nlog_timestamp false\n"
        "log_timestamp_format %Y-%m-%d %H:%M:%S  \nconnection_messages false\n"
        "persistence true\npersistence_location /var/lib/acemq\npersistence_file x.db\n"
        "autosave_interval 60\nautosave_on_changes true\nfsync always\n"
        "persistence_compact_ratio 8\nace_audience mqtt://b\nace_as_hint https://as/token\n"
        "ace_cnonce true\nace_introspection https://as/i broker /s\n"
        "ace_introspection_cache_ttl 0\nace_introspection_timeout 2\nace_clock_skew 5\n"
        "ace_profile_id 7\nace_max_token_size 4096\nmetrics_listener 9100 0.0.0.0\n";
    acemq_config_t *c = &cfg;
    ASSERT_EQ(load(text), 0);
    ASSERT_EQ(c->workers, 4);
    ASSERT_STR_EQ(c->user, "acemq");
    ASSERT_STR_EQ(c->pid_file, "/run/a.pid");
    ASSERT(c->set_tcp_nodelay && c->allow_anonymous && !c->allow_zero_length_clientid);
    ASSERT_EQ(c->sys_interval, 0);
    ASSERT_STR_EQ(c->auto_id_prefix, "gen-");
    ASSERT_STR_EQ(c->password_file, "/p");
    ASSERT_STR_EQ(c->acl_file, "/a");
    ASSERT_STR_EQ(c->psk_file, "/k");
    ASSERT_STR_EQ(c->clientid_prefixes, "dev-");
    ASSERT(c->check_retain_source && c->queue_qos0_messages && !c->retain_available);
    ASSERT_EQ(c->global_max_connections, 5000);
    ASSERT_EQ(c->max_packet_size, 0);
    ASSERT_EQ(c->message_size_limit, 1000);
    ASSERT_EQ(c->max_inflight_messages, 1);
    ASSERT_EQ(c->max_inflight_bytes, 99);
    ASSERT_EQ(c->max_queued_messages, 7);
    ASSERT_EQ(c->max_queued_bytes, 8000000000LL);
    ASSERT_EQ(c->max_keepalive, 60);
    ASSERT_EQ(c->connect_timeout, 3);
    ASSERT_EQ(c->max_qos, 1);
    ASSERT_EQ(c->max_topic_alias, 0);
    ASSERT(c->upgrade_outgoing_qos);
    ASSERT_EQ(c->persistent_client_expiration, 2 * 86400);
    ASSERT_EQ(c->max_topic_levels, 8);
    ASSERT_EQ(c->max_topic_length, 100);
    ASSERT_EQ(c->max_subscriptions, 0);
    ASSERT_EQ(c->memory_limit, 1073741824);
    ASSERT_EQ(c->max_handshakes, 50);
    ASSERT_EQ(c->rate_limit_messages, 10);
    ASSERT_EQ(c->rate_limit_bytes, 4096);
    ASSERT_EQ(c->max_qos2_pending, 5);
    ASSERT_EQ(c->max_properties_size, 1024);
    ASSERT_EQ(c->log_facility, 3);
    ASSERT(!c->log_timestamp && !c->connection_messages);
    ASSERT_STR_EQ(c->log_timestamp_format, "%Y-%m-%d %H:%M:%S");
    ASSERT(c->persistence && c->autosave_on_changes);
    ASSERT_STR_EQ(c->persistence_location, "/var/lib/acemq");
    ASSERT_STR_EQ(c->persistence_file, "x.db");
    ASSERT_EQ(c->autosave_interval, 60);
    ASSERT_STR_EQ(c->fsync, "always");
    ASSERT_EQ(c->persistence_compact_ratio, 8);
    ASSERT_STR_EQ(c->ace_audience, "mqtt://b");
    ASSERT_STR_EQ(c->ace_as_hint, "https://as/token");
    ASSERT(c->ace_cnonce);
    ASSERT_STR_EQ(c->ace_introspection_url, "https://as/i");
    ASSERT_STR_EQ(c->ace_introspection_client_id, "broker");
    ASSERT_STR_EQ(c->ace_introspection_secret_file, "/s");
    ASSERT_EQ(c->ace_introspection_cache_ttl, 0);
    ASSERT_EQ(c->ace_introspection_timeout, 2);
    ASSERT_EQ(c->ace_clock_skew, 5);
    ASSERT_EQ(c->ace_profile_id, 7);
    ASSERT_EQ(c->ace_max_token_size, 4096);
    ASSERT_EQ(c->metrics_port, 9100);
    ASSERT_STR_EQ(c->metrics_address, "0.0.0.0");
    ASSERT(c->listeners == NULL && c->warnings == NULL);
    config_free(c);
}

TEST(listener_directives)
{
    const char *text = "listener 8883 ::1\nbind_interface eth0\nsocket_domain ipv6\n"
                       "protocol websockets\nhttp_dir /www\nwebsockets_headers_size 8192\n"
                       "max_connections 10\nmount_point tenant/\nuse_username_as_clientid true\n"
                       "max_qos 1\nmax_topic_alias 3\nace_bearer true\ncertfile /c\nkeyfile /k\n"
                       "cafile /ca\ncapath /cad\ncrlfile /crl\n"
                       "ciphers ECDHE-ECDSA-AES128-GCM-SHA256\n"
                       "tls_version tlsv1.2\npsk_hint my hint\nrequire_certificate true\n"
                       "use_identity_as_username true\ntls_handshake_timeout 4\n";
    ASSERT_EQ(load(text), 0);
    acemq_listener_t *l = cfg.listeners;
    ASSERT(l && !l->next);
    ASSERT_STR_EQ(l->where, "t.conf:1");
    ASSERT_EQ(l->port, 8883);
    ASSERT_STR_EQ(l->bind_address, "::1");
    ASSERT_STR_EQ(l->bind_interface, "eth0");
    ASSERT_STR_EQ(l->socket_domain, "ipv6");
    ASSERT_STR_EQ(l->protocol, "websockets");
    ASSERT_STR_EQ(l->http_dir, "/www");
    ASSERT_EQ(l->websockets_headers_size, 8192);
    ASSERT_EQ(l->max_connections, 10);
    ASSERT_STR_EQ(l->mount_point, "tenant/");
    ASSERT(l->use_username_as_clientid && l->ace_bearer);
    ASSERT_EQ(l->max_qos, 1);
    ASSERT_EQ(l->max_topic_alias, 3);
    ASSERT_STR_EQ(l->certfile, "/c");
    ASSERT_STR_EQ(l->keyfile, "/k");
    ASSERT_STR_EQ(l->cafile, "/ca");
    ASSERT_STR_EQ(l->capath, "/cad");
    ASSERT_STR_EQ(l->crlfile, "/crl");
    ASSERT_STR_EQ(l->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
    ASSERT_STR_EQ(l->tls_version, "tlsv1.2");
    ASSERT_STR_EQ(l->psk_hint, "my hint");
    ASSERT(l->require_certificate && l->use_identity_as_username);
    ASSERT_EQ(l->tls_handshake_timeout, 4);
    ASSERT_EQ(cfg.max_qos, 2); /* the global default is untouched */
    config_free(&cfg);
}

TEST(listener_defaults_and_inheritance)
{
    ASSERT_EQ(load("max_qos 1\nallow_anonymous true\nauto_id_prefix x-\nlistener 1883\n"
                   "listener 1884\nmax_qos 0\n"),
              0);
    acemq_listener_t *a = cfg.listeners, *b = a ? a->next : NULL;
    ASSERT(a && b && !b->next);
    ASSERT(a->bind_address == NULL && a->socket_domain == NULL);
    ASSERT_STR_EQ(a->protocol, "mqtt");
    ASSERT_EQ(a->max_connections, -1);
    ASSERT_EQ(a->tls_handshake_timeout, 10);
    ASSERT_EQ(a->websockets_headers_size, 4096);
    ASSERT(!a->ace_bearer && !a->require_certificate && a->certfile == NULL);
    ASSERT_EQ(a->max_qos, 1); /* inherited from the global line */
    ASSERT_EQ(b->max_qos, 0); /* its own */
    ASSERT_EQ(a->max_topic_alias, 10);
    ASSERT_EQ(a->allow_anonymous, 1);
    ASSERT_EQ(b->allow_zero_length_clientid, 1);
    ASSERT_STR_EQ(b->auto_id_prefix, "x-");
    ASSERT(b->password_file == NULL);
    config_free(&cfg);
}

TEST(security_without_per_listener_settings_is_global)
{
    /* Mosquitto: without per_listener_settings these apply to every listener wherever they are. */
    ASSERT_EQ(load("listener 1883\nallow_anonymous true\nlistener 1884\npassword_file /pw\n"), 0);
    ASSERT(cfg.allow_anonymous);
    ASSERT_STR_EQ(cfg.password_file, "/pw");
    ASSERT_EQ(cfg.listeners->allow_anonymous, 1);
    ASSERT_EQ(cfg.listeners->next->allow_anonymous, 1);
    ASSERT_STR_EQ(cfg.listeners->password_file, "/pw");
    config_free(&cfg);
}

TEST(per_listener_settings)
{
    ASSERT_EQ(load("per_listener_settings true\nallow_anonymous true\nlistener 1883\n"
                   "allow_anonymous false\npassword_file /a\nlistener 1884\nacl_file /acl\n"),
              0);
    acemq_listener_t *a = cfg.listeners, *b = a->next;
    ASSERT(cfg.per_listener_settings && cfg.allow_anonymous && cfg.password_file == NULL);
    ASSERT_EQ(a->allow_anonymous, 0);
    ASSERT_STR_EQ(a->password_file, "/a");
    ASSERT(a->acl_file == NULL);
    ASSERT_EQ(b->allow_anonymous, 1); /* the default from before any listener */
    ASSERT(b->password_file == NULL);
    ASSERT_STR_EQ(b->acl_file, "/acl");
    config_free(&cfg);
}

TEST(default_listener_from_port)
{
    /* Mosquitto 1.x style: port/bind_address make the default listener, and until the first
     * `listener` line, listener directives configure it. */
    ASSERT_EQ(load("max_qos 2\nport 1999\nmax_connections 5\nbind_address 10.0.0.1\n"
                   "listener 8883\ncertfile /c\nkeyfile /k\n"),
              0);
    acemq_listener_t *d = cfg.listeners, *t = d->next;
    ASSERT_EQ(d->port, 1999);
    ASSERT_STR_EQ(d->bind_address, "10.0.0.1");
    ASSERT_EQ(d->max_connections, 5);
    ASSERT_STR_EQ(d->where, "t.conf:2");
    ASSERT(d->certfile == NULL);
    ASSERT_EQ(t->port, 8883);
    ASSERT_STR_EQ(t->certfile, "/c");
    config_free(&cfg);

    /* bind_address alone: port 1883. A `port` after a listener does not capture what follows. */
    ASSERT_EQ(load("bind_address localhost\n"), 0);
    ASSERT_EQ(cfg.listeners->port, 1883);
    config_free(&cfg);
    ASSERT_EQ(load("listener 8883\nport 1884\nmax_connections 3\n"), 0);
    ASSERT_EQ(cfg.listeners->max_connections, 3);
    ASSERT_EQ(cfg.listeners->next->port, 1884);
    ASSERT_EQ(cfg.listeners->next->max_connections, -1);
    config_free(&cfg);
}

TEST(comments_and_whitespace)
{
    ASSERT_EQ(load("# a comment\n\n   \t\n  # indented comment\r\n\t workers \t 3 \r\n"
                   "listener   1883\t127.0.0.1  \r\npsk_hint   spaced   hint  \n"
                   "log_timestamp_format\t%H:%M  \n#workers 9\nsys_interval 5"),
              0);
    ASSERT_EQ(cfg.workers, 3);
    ASSERT_STR_EQ(cfg.listeners->bind_address, "127.0.0.1");
    ASSERT_STR_EQ(cfg.listeners->psk_hint, "spaced   hint");
    ASSERT_STR_EQ(cfg.log_timestamp_format, "%H:%M");
    ASSERT_EQ(cfg.sys_interval, 5); /* last line without a newline */
    config_free(&cfg);
    ASSERT_EQ(load(""), 0);
    config_free(&cfg);
}

TEST(errors)
{
    ASSERT(fails_with("workers 1\nfoo bar\n", "t.conf:2: unknown directive 'foo'"));
    ASSERT(fails_with("workers\n", "t.conf:1: workers: missing value"));
    ASSERT(fails_with("log_timestamp_format   \n", "t.conf:1: log_timestamp_format: missing value"));
    ASSERT(fails_with("workers 4 5\n", "t.conf:1: workers: too many values"));
    ASSERT(fails_with("\nworkers four\n", "t.conf:2: workers: 'four' is not a number"));
    ASSERT(fails_with("workers 4x\n", "t.conf:1: workers: '4x' is not a number"));
    ASSERT(fails_with("workers -1\n", "t.conf:1: workers: -1 is out of range (0-1024)"));
    ASSERT(fails_with("listener 70000\n", "t.conf:1: listener: 70000 is out of range (1-65535)"));
    ASSERT(fails_with("listener 0\n", "t.conf:1: listener: 0 is out of range (1-65535)"));
    ASSERT(fails_with("port 65536\n", "t.conf:1: port: 65536 is out of range (1-65535)"));
    ASSERT(fails_with("max_qos 3\n", "t.conf:1: max_qos: 3 is out of range (0-2)"));
    ASSERT(fails_with("max_packet_size 268435456\n",
                      "t.conf:1: max_packet_size: 268435456 is out of range (0-268435455)"));
    ASSERT(fails_with("memory_limit 99999999999999999999\n",
                      "t.conf:1: memory_limit: 99999999999999999999 is out of range "
                      "(0-9223372036854775807)"));
    ASSERT(fails_with("persistence yes\n", "t.conf:1: persistence: expected true or false, got 'yes'"));
    ASSERT(fails_with("persistence TRUE\n", "t.conf:1: persistence: expected true or false, got 'TRUE'"));
    ASSERT(fails_with("connection bridge1\n",
                      "t.conf:1: 'connection' (bridges) is not supported by acemq"));
    ASSERT(fails_with("bridge_cafile /x\n", "t.conf:1: 'bridge_cafile' (bridges) is not supported by acemq"));
    ASSERT(fails_with("plugin /x.so\n", "t.conf:1: 'plugin' (plugins) is not supported by acemq"));
    ASSERT(fails_with("plugin_opt_db x\n", "t.conf:1: 'plugin_opt_db' (plugins) is not supported by acemq"));
    ASSERT(fails_with("websockets_log_level 1\n",
                      "t.conf:1: 'websockets_log_level' (libwebsockets logging) is not supported by acemq"));
    ASSERT(fails_with("tls_engine pkcs11\n", "t.conf:1: 'tls_engine' (OpenSSL engines) is not supported by acemq"));
    ASSERT(fails_with("certfile /c\n",
                      "t.conf:1: certfile: applies to a listener; put it after a 'listener' line"));
    ASSERT(fails_with("protocol mqtts\n",
                      "t.conf:1: protocol: applies to a listener; put it after a 'listener' line"));
    ASSERT(fails_with("listener 1\nprotocol mqtts\n",
                      "t.conf:2: protocol: 'mqtts' is not one of mqtt|websockets"));
    ASSERT(fails_with("listener 1\ntls_version tlsv1.1\n",
                      "t.conf:2: tls_version: 'tlsv1.1' is not supported (TLS 1.2 is the minimum); "
                      "tlsv1.2 is the only value"));
    /* TLS 1.3 is not in mbedTLS 2.28: no directive may pretend to configure it */
    ASSERT(fails_with("listener 1\ntls_version tlsv1.3\n",
                      "t.conf:2: tls_version: tlsv1.3 is not supported (mbedTLS 2.28 has no TLS "
                      "1.3); tlsv1.2 is the only value"));
    ASSERT(fails_with("listener 1\nciphers_tls1.3 TLS_AES_128_GCM_SHA256\n",
                      "t.conf:2: 'ciphers_tls1.3' (TLS 1.3, which mbedTLS 2.28 lacks) is not "
                      "supported by acemq"));
    ASSERT(fails_with("listener 1\ndhparamfile /dh.pem\n",
                      "t.conf:2: 'dhparamfile' (DH parameter files; DHE suites use mbedTLS's "
                      "2048-bit RFC 3526 group) is not supported by acemq"));
    ASSERT(fails_with("listener 1\nuse_subject_as_username true\n",
                      "t.conf:2: 'use_subject_as_username' (the certificate subject as username; "
                      "use_identity_as_username takes its CN) is not supported by acemq"));
    ASSERT(fails_with("fsync sometimes\n",
                      "t.conf:1: fsync: 'sometimes' is not one of everysec|always|never"));
    ASSERT(fails_with("listener 1 a b\n", "t.conf:1: listener: too many values"));
    ASSERT(fails_with("listener\n", "t.conf:1: listener: missing value"));
}

TEST(errors_whole_file)
{
    ASSERT(fails_with("listener 1883\nlistener 1884\nlistener 1883\n",
                      "t.conf:3: listener 1883: already defined at t.conf:1"));
    ASSERT(fails_with("listener 1883 ::1\nlistener 1883 ::1\n",
                      "t.conf:2: listener 1883: already defined at t.conf:1"));
    ASSERT(fails_with("listener 8883\ncertfile /c\n",
                      "t.conf:1: listener 8883: certfile and keyfile must be set together"));
    ASSERT(fails_with("\nlistener 8883\ncertfile /c\nkeyfile /k\nrequire_certificate true\n",
                      "t.conf:2: listener 8883: require_certificate needs cafile or capath"));
    ASSERT(fails_with("workers 1\nace_issuer https://as /k.pem\n",
                      "t.conf:2: ace_audience must be set to verify ACE tokens"));
    ASSERT(fails_with("listener 1\nper_listener_settings true\n",
                      "t.conf:2: per_listener_settings: must come before any listener and any "
                      "authentication directive"));
    ASSERT(fails_with("allow_anonymous true\nper_listener_settings true\n",
                      "t.conf:2: per_listener_settings: must come before any listener and any "
                      "authentication directive"));
    /* Two addresses on one port are distinct listeners. */
    ASSERT_EQ(load("listener 1883 127.0.0.1\nlistener 1883 ::1\nper_listener_settings false\n"), 0);
    config_free(&cfg);
}

TEST(logging)
{
    ASSERT_EQ(load("log_type debug\nlog_type subscribe\n"), 0);
    ASSERT_EQ(cfg.log_types, ACEMQ_LOG_DEBUG | ACEMQ_LOG_SUBSCRIBE); /* first line replaces */
    config_free(&cfg);
    ASSERT_EQ(load("log_type all\n"), 0);
    ASSERT_EQ(cfg.log_types, ACEMQ_LOG_ALL);
    config_free(&cfg);
    ASSERT_EQ(load("log_type all\nlog_type none\nlog_type error\n"), 0);
    ASSERT_EQ(cfg.log_types, ACEMQ_LOG_ERROR);
    config_free(&cfg);
    ASSERT(fails_with("log_type info\n", "t.conf:1: log_type: unknown type 'info'"));

    ASSERT_EQ(load("log_dest syslog\nlog_dest file /var/log/a.log\nlog_dest stdout\nlog_dest topic\n"), 0);
    acemq_log_dest_t *d = cfg.log_dests;
    ASSERT(d && d->kind == ACEMQ_LOG_DEST_SYSLOG && d->path == NULL);
    ASSERT((d = d->next) && d->kind == ACEMQ_LOG_DEST_FILE);
    ASSERT_STR_EQ(d->path, "/var/log/a.log");
    ASSERT((d = d->next) && d->kind == ACEMQ_LOG_DEST_STDOUT);
    ASSERT((d = d->next) && d->kind == ACEMQ_LOG_DEST_TOPIC && !d->next);
    config_free(&cfg);
    ASSERT_EQ(load("log_dest none\n"), 0);
    ASSERT(cfg.log_dests == NULL);
    config_free(&cfg);
    ASSERT(fails_with("log_dest file\n", "t.conf:1: log_dest: file needs a path"));
    ASSERT(fails_with("log_dest stderr x\n", "t.conf:1: log_dest: too many values"));
    ASSERT(fails_with("log_dest dlt\n", "t.conf:1: log_dest: 'dlt' is not supported by acemq"));
    ASSERT(fails_with("log_dest pigeon\n",
                      "t.conf:1: log_dest: 'pigeon' is not one of stderr|stdout|syslog|file|topic|none"));
}

TEST(durations)
{
    static const struct { const char *v; long long s; } ok[] = {
        {"3600", 3600}, {"90s", 90}, {"1h", 3600}, {"2d", 172800}, {"3w", 1814400},
        {"1m", 2592000}, {"1y", 31536000}, {"0", 0},
    };
    char text[64];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(text, sizeof text, "persistent_client_expiration %s\n", ok[i].v);
        ASSERT_EQ(load(text), 0);
        ASSERT_EQ(cfg.persistent_client_expiration, ok[i].s);
        config_free(&cfg);
    }
    const char *msg = "t.conf:1: persistent_client_expiration: '%s' is not a duration "
                      "(e.g. 3600, 1h, 2d, 3w, 1m, 1y)";
    const char *bad[] = {"h", "1x", "-1d", "1.5d", "d1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[160];
        snprintf(text, sizeof text, "persistent_client_expiration %s\n", bad[i]);
        snprintf(want, sizeof want, msg, bad[i]);
        ASSERT(fails_with(text, want));
    }
}

TEST(ace_lists)
{
    ASSERT_EQ(load("ace_audience aud\nace_issuer https://as1 /k1\nace_issuer https://as2 /k2\n"
                   "ace_public_topic public/# sub\nace_public_topic $SYS/broker/uptime pubsub\n"
                   "ace_scope_map read sensors/+/temp sub\nace_scope_map write cmd/# pub\n"),
              0);
    acemq_ace_issuer_t *i = cfg.ace_issuers;
    ASSERT_STR_EQ(i->iss, "https://as1");
    ASSERT_STR_EQ(i->keyfile, "/k1");
    ASSERT_STR_EQ(i->next->iss, "https://as2");
    ASSERT(i->next->next == NULL);
    acemq_ace_public_topic_t *t = cfg.ace_public_topics;
    ASSERT_STR_EQ(t->filter, "public/#");
    ASSERT_EQ(t->perm, ACEMQ_PERM_SUB);
    ASSERT_EQ(t->next->perm, ACEMQ_PERM_PUB | ACEMQ_PERM_SUB);
    acemq_ace_scope_map_t *m = cfg.ace_scope_map;
    ASSERT_STR_EQ(m->name, "read");
    ASSERT_STR_EQ(m->filter, "sensors/+/temp");
    ASSERT_EQ(m->perm, ACEMQ_PERM_SUB);
    ASSERT_EQ(m->next->perm, ACEMQ_PERM_PUB);
    config_free(&cfg);
    ASSERT(fails_with("ace_public_topic a/# read\n",
                      "t.conf:1: ace_public_topic: expected pub, sub or pubsub, got 'read'"));
    ASSERT(fails_with("ace_public_topic a/#/b sub\n",
                      "t.conf:1: ace_public_topic: 'a/#/b' is not a valid topic filter"));
    ASSERT(fails_with("ace_scope_map s a+ sub\n",
                      "t.conf:1: ace_scope_map: 'a+' is not a valid topic filter"));
    ASSERT(fails_with("ace_issuer https://as\n", "t.conf:1: ace_issuer: missing value"));
    ASSERT(fails_with("ace_introspection ftp://as c /s\n",
                      "t.conf:1: ace_introspection: 'ftp://as' is not an http:// or https:// URL"));
}

TEST(metrics_listener_default_address)
{
    ASSERT_EQ(load("metrics_listener 9100\n"), 0);
    ASSERT_EQ(cfg.metrics_port, 9100);
    ASSERT_STR_EQ(cfg.metrics_address, "127.0.0.1");
    config_free(&cfg);
}

TEST(warnings)
{
    ASSERT_EQ(load("retry_interval 20\nace_audience a\n"
                   "ace_introspection http://as/i c /s\nlistener 1883\nace_bearer true\n"),
              0);
    acemq_config_warning_t *w = cfg.warnings;
    ASSERT(w && w->next && w->next->next && !w->next->next->next);
    ASSERT_STR_EQ(w->msg, "t.conf:1: 'retry_interval' is obsolete in acemq and ignored");
    ASSERT_STR_EQ(w->next->msg, "t.conf:3: ace_introspection: plain http sends the client "
                                "secret and tokens in clear");
    ASSERT_STR_EQ(w->next->next->msg, "t.conf:4: listener 1883: ace_bearer on a listener without TLS");
    config_free(&cfg);
}

TEST(files_and_include_dir)
{
    char dir[] = "/tmp/acemq-conf-XXXXXX", main_path[] = "/tmp/acemq-main-XXXXXX";
    char path[512], text[1024];
    ASSERT(mkdtemp(dir) != NULL);
    int fd = mkstemp(main_path);
    ASSERT(fd >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/b.conf", dir);
    write_file(path, "sys_interval 2\nlistener 1884\n");
    snprintf(path, sizeof path, "%s/a.conf", dir);
    write_file(path, "sys_interval 1\nworkers 2\n");
    snprintf(path, sizeof path, "%s/c.conf.bak", dir);
    write_file(path, "nonsense\n");
    snprintf(text, sizeof text, "listener 1883\ninclude_dir %s\nmax_connections 9\n", dir);
    write_file(main_path, text);

    ASSERT_EQ(config_load(&cfg, main_path, err, sizeof err), 0);
    ASSERT_STR_EQ(cfg.path, main_path);
    ASSERT_EQ(cfg.sys_interval, 2); /* a.conf, then b.conf */
    ASSERT_EQ(cfg.workers, 2);
    ASSERT_EQ(cfg.listeners->next->port, 1884);
    ASSERT_EQ(cfg.listeners->next->max_connections, 9); /* the included listener stays current */
    snprintf(text, sizeof text, "%s/b.conf:2", dir);
    ASSERT_STR_EQ(cfg.listeners->next->where, text);
    config_free(&cfg);

    /* An error in an included file names that file and line. */
    snprintf(path, sizeof path, "%s/b.conf", dir);
    write_file(path, "sys_interval 2\n\nbogus 1\n");
    ASSERT_EQ(config_load(&cfg, main_path, err, sizeof err), -1);
    snprintf(text, sizeof text, "%s/b.conf:3: unknown directive 'bogus'", dir);
    ASSERT_STR_EQ(err, text);
    ASSERT(cfg.listeners == NULL);
    unlink(path);

    /* A directory that includes itself stops at the nesting limit. */
    snprintf(path, sizeof path, "%s/a.conf", dir);
    snprintf(text, sizeof text, "include_dir %s\n", dir);
    write_file(path, text);
    ASSERT_EQ(config_load(&cfg, main_path, err, sizeof err), -1);
    ASSERT(strstr(err, "include_dir: nested too deeply") != NULL);
    unlink(path);
    snprintf(path, sizeof path, "%s/c.conf.bak", dir);
    unlink(path);

    /* A missing directory and a missing file. */
    snprintf(text, sizeof text, "include_dir %s\n", dir);
    rmdir(dir);
    write_file(main_path, text);
    ASSERT_EQ(config_load(&cfg, main_path, err, sizeof err), -1);
    snprintf(text, sizeof text, "%s:1: include_dir: cannot read '%s': No such file or directory",
             main_path, dir);
    ASSERT_STR_EQ(err, text);
    unlink(main_path);
    ASSERT_EQ(config_load(&cfg, main_path, err, sizeof err), -1);
    snprintf(text, sizeof text, "%s: No such file or directory", main_path);
    ASSERT_STR_EQ(err, text);
}

/* The tests run from the repository root; fall back to paths relative to this file's build dir. */
static FILE *open_repo_file(const char *rel, char *found, size_t cap)
{
    const char *prefixes[] = {"", "../", "../../"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(found, cap, "%s%s", prefixes[i], rel);
        FILE *f = fopen(found, "r");
        if (f)
            return f;
    }
    return NULL;
}

TEST(shipped_config_loads)
{
    char path[256];
    FILE *f = open_repo_file("etc/acemq.conf", path, sizeof path);
    ASSERT(f != NULL);
    fclose(f);
    ASSERT_EQ(config_load(&cfg, path, err, sizeof err), 0);
    acemq_listener_t *l = cfg.listeners;
    ASSERT(l && !l->next);
    ASSERT_EQ(l->port, 1883);
    ASSERT_STR_EQ(l->bind_address, "127.0.0.1");
    ASSERT_EQ(l->allow_anonymous, 1);
    ASSERT(cfg.allow_anonymous && !cfg.persistence && cfg.workers == 0);
    ASSERT(cfg.log_dests && cfg.log_dests->kind == ACEMQ_LOG_DEST_STDERR && !cfg.log_dests->next);
    ASSERT(cfg.warnings == NULL);
    config_free(&cfg);
}

TEST(shipped_config_examples_parse)
{
    /* Every commented-out example line of etc/acemq.conf is a valid line once uncommented. */
    char path[256], line[1024];
    FILE *f = open_repo_file("etc/acemq.conf", path, sizeof path);
    ASSERT(f != NULL);
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] != '#' || !(line[1] >= 'a' && line[1] <= 'z') || strstr(line, "include_dir"))
            continue; /* include_dir needs a directory that exists: tested above */
        char text[1100];
        /* A TLS listener and an audience first, so that the line has the context it needs. */
        snprintf(text, sizeof text, "ace_audience a\nlistener 1\ncertfile /c\nkeyfile /k\n%s",
                 line + 1);
        n++;
        if (load(text) != 0) {
            fprintf(stderr, "  %s", err);
            bad++;
        } else {
            config_free(&cfg);
        }
    }
    fclose(f);
    ASSERT(n > 30);
    ASSERT_EQ(bad, 0);
}

TEST(docs_cover_every_directive)
{
    char path[256];
    FILE *f = open_repo_file("docs/configuration.md", path, sizeof path);
    ASSERT(f != NULL);
    static char doc[200000];
    size_t len = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[len] = '\0';
    int missing = 0;
    for (size_t i = 0; i < cfg_directive_count; i++) {
        char want[80];
        snprintf(want, sizeof want, "`%s", cfg_directives[i].name);
        if (!strstr(doc, want)) {
            fprintf(stderr, "  docs/configuration.md lacks %s\n", cfg_directives[i].name);
            missing++;
        }
    }
    ASSERT_EQ(missing, 0);
}

TEST(needs_restart)
{
    acemq_config_t a, b;
    char msg[256];
    const char *base = "workers 2\nlistener 1883\nlistener 8883\ncertfile /c\nkeyfile /k\n";
    ASSERT_EQ(config_load_string(&a, base, "a", err, sizeof err), 0);

    ASSERT_EQ(config_load_string(&b, base, "b", err, sizeof err), 0);
    ASSERT_EQ(config_needs_restart(&a, &b, msg, sizeof msg), 0);
    ASSERT_STR_EQ(msg, "");
    config_free(&b);

    /* Reloadable: new certificate files, limits, authentication. */
    ASSERT_EQ(config_load_string(&b, "workers 2\nlistener 1883\nmax_connections 5\n"
                                      "allow_anonymous true\nmax_queued_messages 5\n"
                                      "listener 8883\ncertfile /c2\nkeyfile /k2\n",
                                 "b", err, sizeof err),
              0);
    ASSERT_EQ(config_needs_restart(&a, &b, msg, sizeof msg), 0);
    config_free(&b);

    ASSERT_EQ(config_load_string(&b, "workers 4\nlistener 1884\nlistener 8883\nprotocol websockets\n"
                                      "persistence true\nmetrics_listener 9100\n",
                                 "b", err, sizeof err),
              0);
    ASSERT_EQ(config_needs_restart(&a, &b, msg, sizeof msg), 1);
    ASSERT_STR_EQ(msg, "listener *:1883 removed; listener *:8883: protocol changed; "
                       "listener *:8883: TLS disabled; listener *:1884 added; workers changed; "
                       "persistence changed; metrics_listener changed");
    ASSERT_EQ(config_needs_restart(&a, &b, NULL, 0), 1); /* no message wanted */
    ASSERT_EQ(config_needs_restart(&a, &b, msg, 8), 1);  /* truncated, still a string */
    ASSERT_EQ(strlen(msg), 7);
    config_free(&b);
    config_free(&a);
}

TEST(listener_needs_restart)
{
    acemq_config_t a, b;
    ASSERT_EQ(config_load_string(&a, "listener 1883\nlistener 8883\ncertfile /c\nkeyfile /k\n",
                                 "a", err, sizeof err),
              0);
    /* listener settings a reload applies: max_connections, max_qos, allow_anonymous, certificates */
    ASSERT_EQ(config_load_string(&b, "allow_anonymous true\nlistener 1883\nmax_connections 5\n"
                                      "max_qos 1\nlistener 8883\ncertfile /c2\nkeyfile /k2\n",
                                 "b", err, sizeof err),
              0);
    ASSERT_EQ(config_listener_needs_restart(a.listeners, b.listeners), 0);
    ASSERT_EQ(config_listener_needs_restart(a.listeners->next, b.listeners->next), 0);
    config_free(&b);
    /* read only at start: protocol, mount_point, TLS on or off */
    ASSERT_EQ(config_load_string(&b, "listener 1883\nmount_point m/\nlistener 8883\n"
                                      "protocol websockets\n",
                                 "b", err, sizeof err),
              0);
    ASSERT_EQ(config_listener_needs_restart(a.listeners, b.listeners), 1);
    ASSERT_EQ(config_listener_needs_restart(a.listeners->next, b.listeners->next), 1);
    config_free(&b);
    config_free(&a);
}

TEST(add_listener_for_command_line)
{
    ASSERT_EQ(load("max_qos 1\n"), 0);
    acemq_listener_t *l = config_add_listener(&cfg, 1999, NULL);
    ASSERT(l != NULL && cfg.listeners == l);
    ASSERT_EQ(l->port, 1999);
    ASSERT_EQ(l->max_qos, 1);
    ASSERT_STR_EQ(l->where, "command line");
    ASSERT_STR_EQ(l->protocol, "mqtt");
    config_free(&cfg);
}

TEST(nul_byte_rejected)
{
    char p[] = "/tmp/acemq-nul-XXXXXX";
    int fd = mkstemp(p);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, "workers 1\n\0x\n", 13), 13);
    close(fd);
    ASSERT_EQ(config_load(&cfg, p, err, sizeof err), -1);
    char want[64];
    snprintf(want, sizeof want, "%s: contains a NUL byte", p);
    ASSERT_STR_EQ(err, want);
    unlink(p);
}

int main(void)
{
    RUN(defaults);
    RUN(global_directives);
    RUN(listener_directives);
    RUN(listener_defaults_and_inheritance);
    RUN(security_without_per_listener_settings_is_global);
    RUN(per_listener_settings);
    RUN(default_listener_from_port);
    RUN(comments_and_whitespace);
    RUN(errors);
    RUN(errors_whole_file);
    RUN(logging);
    RUN(durations);
    RUN(ace_lists);
    RUN(metrics_listener_default_address);
    RUN(warnings);
    RUN(files_and_include_dir);
    RUN(shipped_config_loads);
    RUN(shipped_config_examples_parse);
    RUN(docs_cover_every_directive);
    RUN(needs_restart);
    RUN(listener_needs_restart);
    RUN(add_listener_for_command_line);
    RUN(nul_byte_rejected);
    return test_summary();
}
