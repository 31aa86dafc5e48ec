/*
 * broker/metrics.h: the metrics HTTP listener (`metrics_listener <port> [<address>]`).
 *
 * GET /metrics answers in the Prometheus text exposition format 0.0.4, GET /healthz answers
 * "ok"; anything else gets 404 (405 for another method on those paths). Every response closes
 * the connection; a request larger than 8 KiB is refused with 431. The listener runs on the
 * main thread's loop, so scraping never delays a worker: it only reads atomic counters and the
 * thread-safe counts of the router, the retained store and the registry.
 * docs/websockets-and-metrics.md lists the metric names.
 *
 * One broker per process: the listener and the authentication-reason table are module state.
 */
#ifndef ACEMQ_BROKER_METRICS_H
#define ACEMQ_BROKER_METRICS_H

#include <stddef.h>
#include <uv.h>

#include "broker/core.h"

/*
 * Binds the metrics listener on loop if b->cfg->metrics_port is set (call before privileges are
 * dropped, so a port below 1024 works). Returns 0 (also when metrics are off) or -1 with a
 * sentence in err.
 */
int metrics_start(broker_t *b, uv_loop_t *loop, char *err, size_t cap);

/* Closes the listener and its connections; run the loop once afterwards for the close
 * callbacks. Safe when metrics_start did nothing. Loop thread only. */
void metrics_stop(void);

/*
 * Counts one authentication outcome, from any thread. ok != 0: a success, and reason is its kind
 * ("anonymous", "password", "certificate", "ace"); otherwise a failure, and reason says why (a
 * short fixed word such as "bad_credentials" or "token_expired"). NULL = "unknown". Each becomes a
 * label value: the first 16 distinct ones per outcome get their own series, later ones count as
 * "other". The word is copied; never pass anything a client chose.
 */
void metrics_count_auth(broker_t *b, int ok, const char *reason);

/*
 * The $SYS mirror (broker/sys.c): calls fn once per labelled counter with a topic suffix for
 * "$SYS/broker/" made of its label values and the value /metrics shows for it:
 *   publish/messages/received/qos<N>, publish/messages/sent/qos<N>  (N = 0, 1, 2)
 *   publish/messages/dropped/<reason>   acemq_messages_dropped_total
 *   auth/failures/<reason>, auth/successes/<kind>  (only the values seen so far)
 *   tokens/<method>/<result>            acemq_token_validations_total
 */
typedef void (*metrics_series_fn)(void *arg, const char *topic, uint64_t value);
void metrics_each_series(broker_t *b, metrics_series_fn fn, void *arg);

/*
 * Hooks for the parts that have no broker_t at hand; each is callable from any thread and costs a
 * few relaxed atomic operations (the counters are module state: one broker per process).
 *
 * metrics_count_token: one access token checked. introspected: 0 = verified here (signature or
 * MAC, then the claims), 1 = the AS's introspection answer. rc: 0 (valid) or the ACE_E_* /
 * ACE_INTROSPECT_E_* code of the check, which becomes a fixed `result` label.
 */
void metrics_count_token(int introspected, int rc);
/* One introspection request, from ace_introspect_token() to its callback; status as the callback
 * got it (0, ACE_INTROSPECT_E_INACTIVE: the AS answered; anything else: it did not). */
void metrics_observe_introspection(double seconds, int status);
/* One fdatasync of the persistence store's log by its writer thread. */
void metrics_observe_fsync(double seconds);

#endif
