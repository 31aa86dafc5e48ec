/*
 * broker/notify.c: the sd_notify datagram protocol, written by hand (see notify.h).
 *
 * The protocol is small enough that libsystemd would be a dependency for twenty lines: newline-
 * separated "KEY=VALUE" assignments in one datagram, sent to the AF_UNIX socket named by
 * $NOTIFY_SOCKET. A name starting with '@' is an abstract socket: the '@' stands for the leading
 * NUL byte, and the address length must then be exact (an abstract name may contain anything, so
 * a trailing NUL would be part of it).
 */
#include "broker/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker/log.h"

static uv_timer_t watchdog;
static bool watchdog_on;
static bool failure_logged;

static int send_to(const char *name, const char *state)
{
    struct sockaddr_un sa;
    size_t n = strlen(name);
    if (n < 2 || n >= sizeof sa.sun_path || (name[0] != '/' && name[0] != '@'))
        return -EINVAL; /* systemd 254's "vsock:" addresses are not supported */
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A datagram is delivered whole or not at all, so a short count cannot happen. */
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    int rc = w < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int notify_send(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name)
        return 0;
    int rc = send_to(name, state);
    if (rc < 0 && !failure_logged) {
        /* Once: a watchdog sending every few seconds must not flood the log. */
        failure_logged = true;
        log_warning("notify_failed", "socket=%s error=\"%s\"", name, strerror(-rc));
    }
    return rc;
}

int notify_ready(void)
{
    return notify_send("READY=1");
}

int notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[64];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
    return notify_send(msg);
}

int notify_stopping(void)
{
    notify_watchdog_stop();
    return notify_send("STOPPING=1");
}

int notify_status(const char *fmt, ...)
{
    if (!getenv("NOTIFY_SOCKET"))
        return 0;
    char msg[256] = "STATUS=";
    size_t off = strlen(msg);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + off, sizeof msg - off, fmt, ap);
    va_end(ap);
    /* A newline would start a new assignment that the text did not mean to make. */
    for (char *p = msg + off; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return notify_send(msg);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    notify_send("WATCHDOG=1");
}

/* Parses a positive decimal number; returns 0 or -EINVAL. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0 || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

int notify_watchdog_start(uv_loop_t *loop)
{
    const char *usec_s = getenv("WATCHDOG_USEC");
    if (!usec_s || !getenv("NOTIFY_SOCKET") || watchdog_on)
        return 0;
    /* WATCHDOG_PID says which process the watchdog is for; a child that inherited it is not. */
    const char *pid_s = getenv("WATCHDOG_PID");
    uint64_t pid = 0, usec = 0;
    if (pid_s && (parse_u64(pid_s, &pid) < 0 || pid != (uint64_t)getpid()))
        return 0;
    if (parse_u64(usec_s, &usec) < 0)
        return -EINVAL;
    /* Half the interval, as sd_watchdog_enabled(3) advises, so one late tick is not fatal. */
    uint64_t ms = usec / 2000u;
    if (ms == 0)
        ms = 1;
    int rc = uv_timer_init(loop, &watchdog);
    if (rc < 0)
        return rc;
    rc = uv_timer_start(&watchdog, on_watchdog, ms, ms);
    if (rc < 0) {
        uv_close((uv_handle_t *)&watchdog, NULL);
        return rc;
    }
    uv_unref((uv_handle_t *)&watchdog);
    watchdog_on = true;
    notify_send("WATCHDOG=1");
    return 0;
}

void notify_watchdog_stop(void)
{
    if (!watchdog_on)
        return;
    watchdog_on = false;
    uv_close((uv_handle_t *)&watchdog, NULL);
}
