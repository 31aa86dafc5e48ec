/*
 * broker/log.h: one line per event, key=value, with levels.
 *
 *   log_info("connect", "client=%s peer=%s proto=%d", id, peer, level);
 *   -> ts=2026-11-22T21:44:00.123Z level=info event=connect client=abc peer=127.0.0.1:5000 proto=5
 *
 * Lines go to every configured destination (stderr by default, a file reopened on SIGHUP/SIGUSR2,
 * syslog). Each line is written with one write(2), so lines from several threads never interleave.
 * Never pass a payload, a token or a key to these functions: values that come from clients go
 * through log_quote(), which escapes and truncates them.
 */
#ifndef ACEMQ_BROKER_LOG_H
#define ACEMQ_BROKER_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
    LOGL_ERROR = 0,
    LOGL_WARNING = 1,
    LOGL_NOTICE = 2,
    LOGL_INFO = 3,
    LOGL_DEBUG = 4,
} log_level_t;

typedef enum { LOG_TO_STDERR = 1, LOG_TO_STDOUT = 2, LOG_TO_FILE = 4, LOG_TO_SYSLOG = 8 } log_dest_t;

/* Sets the destinations (a mask of log_dest_t), the file path for LOG_TO_FILE and which levels
 * are written (a mask of 1 << log_level_t). Safe to call again on reload. Returns 0 or -errno
 * (the file could not be opened; the previous destinations stay). */
int log_configure(unsigned dests, const char *file, unsigned level_mask);

/* Line style: whether lines start with a time stamp, its strftime format (NULL = ISO 8601 UTC
 * with milliseconds), and the syslog facility (0-7 = LOG_LOCAL0-7, -1 = LOG_DAEMON). */
void log_set_style(int timestamp, const char *ts_format, int facility);

/* Reopens the log file (logrotate). */
void log_reopen(void);

int log_enabled(log_level_t level);
void log_write(log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vwrite(log_level_t level, const char *event, const char *fmt, va_list ap);

/* Copies an untrusted string into buf as a quoted, escaped, truncated log value ("abc\x01"). */
const char *log_quote(char *buf, size_t cap, const void *s, size_t len);

#define log_error(ev, ...) log_write(LOGL_ERROR, ev, __VA_ARGS__)
#define log_warning(ev, ...) log_write(LOGL_WARNING, ev, __VA_ARGS__)
#define log_notice(ev, ...) log_write(LOGL_NOTICE, ev, __VA_ARGS__)
#define log_info(ev, ...) log_write(LOGL_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...)                                                                 \
    do {                                                                                   \
        if (log_enabled(LOGL_DEBUG))                                                       \
            log_write(LOGL_DEBUG, ev, __VA_ARGS__);                                        \
    } while (0)

#endif
