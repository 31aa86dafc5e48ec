/*
 * broker/sys.c: the $SYS/broker/... topics, with the names Mosquitto uses, published as retained
 * messages every sys_interval seconds from worker 0, and acemq's own mirror of the labelled
 * metrics (broker/metrics.h, metrics_each_series). docs/websockets-and-metrics.md lists them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "broker/config.h"
#include "broker/core.h"
#include "broker/metrics.h"
#include "broker/retain.h"
#include "broker/router.h"

static void sys_set(broker_t *b, const char *topic, const char *value)
{
    msg_t *m = msg_new(topic, strlen(topic), (const uint8_t *)value, strlen(value), 0, true, NULL, 0);
    if (m) {
        broker_publish_count(b, m);
        msg_unref(m);
    }
}

static void sys_u64(broker_t *b, const char *topic, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    sys_set(b, topic, buf);
}

static void sys_series(void *arg, const char *suffix, uint64_t v)
{
    char topic[128];
    snprintf(topic, sizeof topic, "$SYS/broker/%s", suffix);
    sys_u64(arg, topic, v);
}

void sys_publish(broker_t *b, uint64_t now)
{
    worker_t *w = &b->workers[0];
    uint32_t interval = b->cfg->sys_interval;
    if (!interval || (w->last_sys && now - w->last_sys < (uint64_t)interval * 1000u))
        return;
    w->last_sys = now;
    broker_stats_t *st = &b->stats;
    char buf[64];
    snprintf(buf, sizeof buf, "%" PRIu64 " seconds", (now - b->started_at) / 1000u);
    sys_set(b, "$SYS/broker/uptime", buf);
    sys_set(b, "$SYS/broker/version", "acemq version " ACEMQ_VERSION);
    uint64_t connected = atomic_load(&st->clients_connected);
    uint64_t total = registry_count(b->registry);
    sys_u64(b, "$SYS/broker/clients/connected", connected);
    sys_u64(b, "$SYS/broker/clients/active", connected);
    sys_u64(b, "$SYS/broker/clients/total", total);
    sys_u64(b, "$SYS/broker/clients/disconnected", total > connected ? total - connected : 0);
    sys_u64(b, "$SYS/broker/clients/inactive", total > connected ? total - connected : 0);
    sys_u64(b, "$SYS/broker/clients/maximum", atomic_load(&st->clients_maximum));
    sys_u64(b, "$SYS/broker/clients/expired", atomic_load(&st->expired_sessions));
    sys_u64(b, "$SYS/broker/messages/received", atomic_load(&st->msgs_received));
    sys_u64(b, "$SYS/broker/messages/sent", atomic_load(&st->msgs_sent));
    sys_u64(b, "$SYS/broker/publish/messages/received", atomic_load(&st->pub_received));
    sys_u64(b, "$SYS/broker/publish/messages/sent", atomic_load(&st->pub_sent));
    sys_u64(b, "$SYS/broker/publish/messages/dropped", atomic_load(&st->msgs_dropped));
    sys_u64(b, "$SYS/broker/bytes/received", atomic_load(&st->bytes_received));
    sys_u64(b, "$SYS/broker/bytes/sent", atomic_load(&st->bytes_sent));
    sys_u64(b, "$SYS/broker/retained messages/count", retain_count(b->retained));
    sys_u64(b, "$SYS/broker/subscriptions/count", router_count(b->router));
    /* acemq's own, mirrored from the metrics (broker/metrics.h) */
    sys_u64(b, "$SYS/broker/auth/successes", atomic_load(&st->auth_ok));
    sys_u64(b, "$SYS/broker/auth/failures", atomic_load(&st->auth_fail));
    metrics_each_series(b, sys_series, b);
}
