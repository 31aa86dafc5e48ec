/*
 * broker/log.c: the key=value event log. See log.h for the line format.
 *
 * The destinations are process-wide state behind one mutex: logging is configured by the main
 * thread (start, reload) and read by every worker. A line is formatted on the stack and written
 * with a single write(2) per destination so concurrent lines never mix.
 */
#include "broker/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned log_dests = LOG_TO_STDERR;
static unsigned log_levels = 0x0f; /* error..info */
static int log_fd = -1;
static char log_path[4096];

static int log_ts_on = 1;
static char log_ts_fmt[128]; /* "" = ISO 8601 UTC with milliseconds */
static int log_facility = LOG_DAEMON;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};
static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    return fd < 0 ? -errno : fd;
}

int log_configure(unsigned dests, const char *file, unsigned level_mask)
{
    int fd = -1;
    if ((dests & LOG_TO_FILE) && file) {
        fd = open_file(file);
        if (fd < 0)
            return fd;
    }
    pthread_mutex_lock(&log_lock);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = fd;
    snprintf(log_path, sizeof log_path, "%s", file ? file : "");
    if ((dests & LOG_TO_SYSLOG) && !(log_dests & LOG_TO_SYSLOG))
        openlog("acemqd", LOG_PID | LOG_NDELAY, log_facility);
    log_dests = dests;
    log_levels = level_mask;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void log_set_style(int timestamp, const char *ts_format, int facility)
{
    pthread_mutex_lock(&log_lock);
    log_ts_on = timestamp;
    snprintf(log_ts_fmt, sizeof log_ts_fmt, "%s", ts_format ? ts_format : "");
    int fac = facility >= 0 && facility <= 7 ? LOG_LOCAL0 + (facility << 3) : LOG_DAEMON;
    if (fac != log_facility && (log_dests & LOG_TO_SYSLOG)) {
        closelog();
        openlog("acemqd", LOG_PID | LOG_NDELAY, fac);
    }
    log_facility = fac;
    pthread_mutex_unlock(&log_lock);
}

void log_reopen(void)
{
    pthread_mutex_lock(&log_lock);
    if ((log_dests & LOG_TO_FILE) && log_path[0]) {
        int fd = open_file(log_path);
        if (fd >= 0) {
            if (log_fd >= 0)
                close(log_fd);
            log_fd = fd;
        }
    }
    pthread_mutex_unlock(&log_lock);
}

int log_enabled(log_level_t level)
{
    return (log_levels >> level) & 1;
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

void log_vwrite(log_level_t level, const char *event, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    /* the line style can change on reload (main thread): read it under the lock */
    char ts_fmt[sizeof log_ts_fmt];
    pthread_mutex_lock(&log_lock);
    int ts_on = log_ts_on;
    memcpy(ts_fmt, log_ts_fmt, sizeof ts_fmt);
    pthread_mutex_unlock(&log_lock);
    /* n = length of the time stamp part, which syslog leaves out (it stamps lines itself) */
    int n = 0;
    if (ts_on && ts_fmt[0]) {
        struct tm local;
        localtime_r(&tv.tv_sec, &local);
        n = snprintf(line, sizeof line, "ts=\"");
        n += (int)strftime(line + n, sizeof line - (size_t)n - 2, ts_fmt, &local);
        n += snprintf(line + n, sizeof line - (size_t)n, "\" ");
    } else if (ts_on) {
        n = (int)strftime(line, sizeof line, "ts=%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ ", (long)(tv.tv_usec / 1000));
    }
    int body = n + snprintf(line + n, sizeof line - (size_t)n, "level=%s event=%s ",
                            level_names[level], event);
    if (body >= (int)sizeof line)
        body = (int)sizeof line - 1;
    int m = vsnprintf(line + body, sizeof line - (size_t)body, fmt, ap);
    size_t len = m < 0 ? (size_t)body : (size_t)body + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';

    pthread_mutex_lock(&log_lock);
    if (log_dests & LOG_TO_STDERR)
        write_all(STDERR_FILENO, line, len);
    if (log_dests & LOG_TO_STDOUT)
        write_all(STDOUT_FILENO, line, len);
    if ((log_dests & LOG_TO_FILE) && log_fd >= 0)
        write_all(log_fd, line, len);
    if (log_dests & LOG_TO_SYSLOG) /* syslog adds its own time stamp: skip ours */
        syslog(syslog_prio[level], "%.*s", (int)(len - 1 - (size_t)n), line + n);
    pthread_mutex_unlock(&log_lock);
}

void log_write(log_level_t level, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, event, fmt, ap);
    va_end(ap);
}

const char *log_quote(char *buf, size_t cap, const void *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = s;
    size_t o = 0, max = 64;
    if (cap < 8)
        return "";
    buf[o++] = '"';
    for (size_t i = 0; i < len && o + 6 < cap; i++) {
        if (i == max) {
            buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
            break;
        }
        unsigned char c = p[i];
        if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) {
            buf[o++] = '\\', buf[o++] = 'x', buf[o++] = hex[c >> 4], buf[o++] = hex[c & 15];
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = 0;
    return buf;
}
