/*
 * tls/tls_int.h: structures shared by the files of tls/ and by nothing else.
 *
 * Ownership of a connection's mbedTLS state (ssl, in, out) alternates between the loop thread
 * and one thread-pool thread: while `running` is set a handshake step owns them and the loop
 * thread only appends new ciphertext to `pend`. uv_queue_work's hand-offs order the memory, so
 * no mutex is needed for that.
 */
#ifndef ACEMQ_TLS_TLS_INT_H
#define ACEMQ_TLS_TLS_INT_H

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>
#include <pthread.h>
#include <stdatomic.h>

#include "tls/tls.h"

#define TLS_MAX_CIPHERS 64
#define TLS_MAX_CURVES 32

typedef struct {
    uint8_t *p;
    size_t off, len, cap; /* unread bytes are p[off..len) */
} tls_buf_t;

typedef struct {
    uint8_t *id;
    size_t id_len;
    uint8_t key[MBEDTLS_PSK_MAX_LEN];
    size_t key_len;
} tls_psk_t;

/* One loaded configuration: what a reload replaces. conf[0] offers ALPN "mqtt", conf[1] has no
 * ALPN (chosen when the client offers ALPN without "mqtt": mbedTLS would refuse the handshake). */
typedef struct tls_gen {
    atomic_int refs;
    struct tls_server *srv;
    mbedtls_ssl_config conf[2];
    int conf_ready;
    mbedtls_x509_crt cert, ca;
    mbedtls_pk_context key;
    mbedtls_x509_crl crl;
    /* Per generation, so a reload (new CRL, removed PSK) also ends resumption of old sessions. */
    mbedtls_ssl_ticket_context ticket;
    int ciphers[TLS_MAX_CIPHERS + 1];
    mbedtls_ecp_group_id curves[TLS_MAX_CURVES + 1]; /* ECDHE preference, NONE-terminated */
    const char *alpn[2];
    tls_psk_t *psk;
    size_t n_psk;
    tls_psk_lookup_fn psk_lookup;
    void *psk_lookup_arg;
    uint64_t timeout_ms;
    int use_identity_as_username;
} tls_gen_t;

struct tls_server {
    atomic_int refs; /* the caller's handle + one per live generation */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;   /* locked internally (MBEDTLS_THREADING_PTHREAD) */
    pthread_mutex_t lock;            /* guards cur */
    tls_gen_t *cur;
    atomic_uint active_hs, max_hs;
    tls_log_fn log;
    void *log_arg;
};

enum { CS_NEW, CS_HANDSHAKE, CS_OPEN, CS_CLOSING };

typedef struct tls_conn {
    stream_t s; /* first: tls_ops casts stream_t * to tls_conn_t * */
    stream_t *lower;
    tls_server_t *srv;
    tls_gen_t *gen;
    mbedtls_ssl_context ssl;
    int ssl_ready;
    tls_buf_t in, pend, out;
    uv_timer_t timer;
    uv_work_t work;
    uint64_t deadline;
    int state, hs_rc;
    unsigned running : 1, has_slot : 1, waiting_slot : 1, paused : 1, reading : 1,
        lower_closed : 1, lower_close_called : 1, timer_closed : 1, closed_sent : 1, keys : 1, ems : 1, resumed : 1;
    int close_status;
    const char *close_why;
    /* Captured in the key-export callback; zeroized at close. */
    uint8_t master[48];
    uint8_t randoms[64]; /* client_random || server_random */
    mbedtls_tls_prf_types prf;
    uint8_t *psk_id;
    size_t psk_id_len;
    char *cert_id;
    const char *alpn;
} tls_conn_t;

/* Set around each mbedtls_ssl_handshake() call: the export-keys and PSK callbacks have one
 * void* per config, not per connection. */
extern _Thread_local tls_conn_t *tls_current;

/* config.c */
tls_gen_t *tls_gen_get(tls_server_t *srv);
void tls_gen_put(tls_gen_t *gen);
void tls_logf(tls_server_t *srv, int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* stream.c */
int tls_buf_append(tls_buf_t *b, const uint8_t *p, size_t n);
void tls_buf_free(tls_buf_t *b);
void tls_flush(tls_conn_t *c);
void tls_fail(tls_conn_t *c, int status, const char *why);
void tls_drive_read(tls_conn_t *c);
void tls_finish_close(tls_conn_t *c);
void tls_close_rest(tls_conn_t *c);
int tls_bio_recv(void *ctx, unsigned char *buf, size_t len);
int tls_bio_send(void *ctx, const unsigned char *buf, size_t len);

/* handshake.c */
void tls_hs_data(tls_conn_t *c);
void tls_hs_arm_timer(tls_conn_t *c);
void tls_hs_release(tls_conn_t *c);
int tls_export_keys_cb(void *p, const unsigned char *ms, const unsigned char *kb, size_t maclen,
                       size_t keylen, size_t ivlen, const unsigned char client_random[32],
                       const unsigned char server_random[32], mbedtls_tls_prf_types prf);
int tls_psk_cb(void *p, mbedtls_ssl_context *ssl, const unsigned char *id, size_t len);

/* exporter.c */
char *tls_cert_identity(const mbedtls_x509_crt *crt);

#endif
