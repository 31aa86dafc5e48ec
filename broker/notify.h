/*
 * broker/notify.h: telling the service manager how the daemon is doing (systemd's sd_notify).
 *
 * systemd starts a Type=notify service with $NOTIFY_SOCKET naming a Unix datagram socket and waits
 * for "READY=1" on it; a watchdog (WatchdogSec=) adds $WATCHDOG_USEC and expects "WATCHDOG=1" more
 * often than that. This module speaks that protocol by hand (one sendto() per message), so the
 * daemon needs no libsystemd. Without $NOTIFY_SOCKET (started by hand, by another supervisor, in
 * tests) every function is a no-op that returns 0.
 *
 * Main thread only: the functions keep no locks, and the watchdog timer runs on the main loop.
 * Errors are 0 or a negative errno; the daemon ignores them (a lost notification must not stop
 * the broker), and the first failure is logged once.
 */
#ifndef ACEMQ_BROKER_NOTIFY_H
#define ACEMQ_BROKER_NOTIFY_H

#include <uv.h>

/*
 * Sends state, one or more "KEY=VALUE" lines separated by '\n', to $NOTIFY_SOCKET (a path, or an
 * abstract socket name written with a leading '@'). Returns 0 (also when the variable is unset),
 * -EINVAL for a malformed variable or -errno from socket()/sendto().
 */
int notify_send(const char *state);

/* "READY=1": the listeners are bound and the workers run. Also sent at the end of a reload. */
int notify_ready(void);

/* "RELOADING=1" with "MONOTONIC_USEC=<now>", which Type=notify-reload (systemd 253+) requires and
 * older versions ignore. Follow it with notify_ready() when the reload is over, failed or not. */
int notify_reloading(void);

/* "STOPPING=1", and the watchdog timer is closed: systemd stops watching once the service stops. */
int notify_stopping(void);

/* "STATUS=<text>", shown by `systemctl status`. printf-style; newlines become spaces. */
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * When $WATCHDOG_USEC is set (and $WATCHDOG_PID, if set, is this process), starts a timer on loop
 * that sends "WATCHDOG=1" every half interval. The timer is unreferenced, so it never keeps
 * uv_run() going by itself. Returns 0 (also when there is no watchdog), -EINVAL for a malformed
 * variable, or a libuv error.
 */
int notify_watchdog_start(uv_loop_t *loop);

/* Closes the watchdog timer if it runs (the close completes on the loop's next turn). */
void notify_watchdog_stop(void);

#endif
