/*
 * tls/tls.h: the TLS 1.2 transport (mbedTLS 2.28) and its server configuration.
 *
 * A TLS stream is a stream_t (broker/stream.h) layered on a lower stream_t (plain TCP): the
 * lower stream delivers ciphertext to this layer, which hands plaintext up through the same
 * events a TCP stream would use. The handshake computation runs in libuv's thread pool so a
 * storm of new connections does not stall delivery on the loop; on_open fires on the loop
 * thread once the handshake is done. Everything else happens on the stream's loop thread.
 *
 * Errors: 0 or a negative code (uv error codes for stream calls, negative mbedTLS codes or -1
 * for configuration calls, with a sentence in err).
 *
 * Lifetimes: a tls_server_t is shared by every loop and every connection of one listener. Its
 * loaded certificates live in a refcounted "generation": tls_server_reload() installs a new
 * generation for new connections while open connections keep theirs. tls_server_free() drops
 * the caller's handle; the memory goes when the last connection using it has closed.
 * A TLS stream behaves like stream_tcp: after close() it delivers exactly one on_closed and
 * frees its own memory (and the lower stream's) once on_closed returns; the owner must not
 * touch the stream_t afterwards.
 */
#ifndef ACEMQ_TLS_TLS_H
#define ACEMQ_TLS_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "broker/stream.h"

/* Log levels: the same numbers as broker/log.h's log_level_t. */
enum { TLS_LOG_ERR = 0, TLS_LOG_WARNING = 1, TLS_LOG_NOTICE = 2, TLS_LOG_INFO = 3, TLS_LOG_DEBUG = 4 };

/*
 * One log event: an event name ("tls_handshake_failed") and the rest of the line, already in
 * key=value form (`peer=1.2.3.4:5 reason="unknown CA" error="..."`), without newline; it never
 * holds key material. Called on the loop thread of the connection concerned, or on the
 * caller's thread for tls_server_new/reload. Maps onto log_write(level, event, "%s", msg).
 */
typedef void (*tls_log_fn)(void *arg, int level, const char *event, const char *msg);

/*
 * Resolves a TLS-PSK identity that is not in psk_file (the ACE layer: identities that name
 * stored tokens). Writes at most *key_len bytes (32 = MBEDTLS_PSK_MAX_LEN) to key and sets
 * *key_len; returns 0 if found, negative if not. Called from a thread-pool thread during the
 * handshake, so it must be thread-safe.
 */
typedef int (*tls_psk_lookup_fn)(void *arg, const uint8_t *identity, size_t len, uint8_t *key,
                                 size_t *key_len);

/* Listener TLS settings, named after the mosquitto directives. Strings may be NULL (unset);
 * they are read during tls_server_new/reload only. */
typedef struct {
    const char *certfile;   /* PEM chain, leaf first; RSA or ECDSA */
    const char *keyfile;    /* private key matching certfile's leaf */
    const char *cafile;     /* CAs for client certificates */
    const char *capath;     /* directory of CA files */
    const char *crlfile;    /* CRL checked against client certificates */
    const char *ciphers;    /* ':' or ',' separated IANA, OpenSSL or mbedTLS names; NULL: AEAD ECDHE */
    const char *tls_version;/* minimum: NULL or "tlsv1.2" (older versions are refused) */
    const char *psk_hint;   /* enables TLS-PSK suites (mbedTLS 2.28 does not send hints) */
    const char *psk_file;   /* "identity:hexkey" lines; enables TLS-PSK suites */
    int require_certificate;      /* clients must present a certificate chaining to cafile/capath */
    int use_identity_as_username; /* reported in tls_info_t for the broker; needs a client cert */
    unsigned tls_handshake_timeout; /* seconds; 0 = 10 */
    unsigned max_handshakes;      /* concurrent handshakes per server (more wait); 0 = no limit */
    tls_psk_lookup_fn psk_lookup; /* optional; also enables TLS-PSK suites */
    void *psk_lookup_arg;
} tls_server_config_t;

typedef struct tls_server tls_server_t;

/* What the layers above may know about an open TLS connection. */
typedef struct {
    int resumed;               /* session resumed from a ticket: no fresh authentication */
    int ems;                   /* Extended Master Secret negotiated (RFC 7627) */
    const char *version;       /* "TLSv1.2" */
    const char *ciphersuite;   /* mbedTLS name, e.g. "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256" */
    const char *alpn;          /* "mqtt" or NULL */
    const char *cert_identity; /* client cert subject CN, else first SAN; NULL without a cert */
    const uint8_t *psk_identity; /* as sent by the client; NULL unless a PSK suite (full handshake) */
    size_t psk_identity_len;
    int use_identity_as_username; /* the listener setting, for the broker's convenience */
} tls_info_t;

/* Loads the configuration. On failure returns negative, *out = NULL and a reason in err. */
int tls_server_new(tls_server_t **out, const tls_server_config_t *cfg, char *err, size_t cap);
/* Replaces the default logger (stderr). Call before connections are accepted. */
void tls_server_set_log(tls_server_t *srv, tls_log_fn log, void *arg);
/* SIGHUP: loads cfg into a new generation used by new connections; on failure keeps the old
 * one and returns negative with the reason in err. Thread-safe. */
int tls_server_reload(tls_server_t *srv, const tls_server_config_t *cfg, char *err, size_t cap);
/* Drops the caller's handle (see Lifetimes above). */
void tls_server_free(tls_server_t *srv);
/* Handshakes currently holding a slot (for metrics). */
unsigned tls_server_handshakes(const tls_server_t *srv);

/*
 * Wraps an accepted TCP socket with stream_tcp_new() (peer: its address from accept) and
 * returns the TLS stream on top, not yet started. NULL on allocation failure, after closing the
 * socket: fd is never the caller's any more.
 */
stream_t *tls_stream_new(tls_server_t *srv, uv_loop_t *loop, int fd, const struct sockaddr *peer,
                         size_t peer_len, const stream_events_t *ev, void *owner);
/* The same over any lower stream not yet started (its ev and owner are taken over). On NULL
 * the lower stream is untouched and still the caller's. */
stream_t *tls_stream_wrap(tls_server_t *srv, stream_t *lower, const stream_events_t *ev,
                          void *owner);

/* 1 if s was created by this layer. */
int stream_is_tls(const stream_t *s);

/*
 * RFC 5705 keying material exporter (TLS 1.2 PRF over the master secret and the handshake
 * randoms). use_context=0: no context (seed = client_random||server_random, what
 * `openssl s_client -keymatexport` computes); use_context=1: seed also carries
 * uint16(context_len)||context, so context_len=0 gives the zero-length-context variant.
 * Returns 0, UV_EINVAL (not a TLS stream, bad arguments) or UV_ENOTCONN (no handshake yet).
 */
int tls_exporter(const stream_t *s, const char *label, const uint8_t *context,
                 size_t context_len, int use_context, uint8_t *out, size_t out_len);

/* Fills out for an open TLS stream; pointers stay valid until the stream closes. */
int tls_session_info(const stream_t *s, tls_info_t *out);

#endif
