/*
 * broker/broker.c: routing a message to its subscribers, retained messages, wills, limits.
 *
 * A PUBLISH is matched once against the trie; the matches are grouped per session so that a
 * client with overlapping subscriptions gets one copy at the highest granted QoS carrying every
 * matching subscription identifier (MQTT 5 3.3.4). Shared-group matches are separate copies.
 * Each copy is a delivery that references the one shared message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/auth.h"
#include "broker/config.h"
#include "broker/core.h"
#include "broker/log.h"
#include "broker/retain.h"
#include "broker/router.h"
#include "broker/store.h"

typedef struct {
    session_t *s;
    uint8_t options;
    uint32_t sub_id;
    int shared;
} match_t;

typedef struct {
    match_t *v;
    size_t n, cap;
} matchvec_t;

static _Thread_local matchvec_t tl_matches;

void broker_thread_exit(void)
{
    free(tl_matches.v);
    tl_matches = (matchvec_t){0};
}

static void on_match(void *arg, const router_match_t *m)
{
    matchvec_t *mv = arg;
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 64;
        match_t *v = realloc(mv->v, cap * sizeof *v);
        if (!v)
            return;
        mv->v = v;
        mv->cap = cap;
    }
    /* the reference keeps the session alive after the router's lock is released */
    mv->v[mv->n++] = (match_t){session_ref(m->owner), m->options, m->sub_id, m->shared};
}

static int cmp_match(const void *a, const void *b)
{
    const match_t *x = a, *y = b;
    if (x->s != y->s)
        return (uintptr_t)x->s < (uintptr_t)y->s ? -1 : 1;
    return x->shared - y->shared;
}

static bool deliver_group(broker_t *b, msg_t *m, const match_t *g, size_t n)
{
    session_t *s = g[0].s;
    delivery_t d = {.msg = m};
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if ((g[i].options & MQTT_SUBOPT_NO_LOCAL) && m->origin == s && !g[i].shared)
            continue;
        uint8_t q = MQTT_SUBOPT_QOS(g[i].options);
        if (q > m->qos && !b->lim.upgrade_outgoing_qos)
            q = m->qos;
        if (!any || q > d.qos)
            d.qos = q;
        if ((g[i].options & MQTT_SUBOPT_RAP) && m->retain)
            d.retain = true;
        if (g[i].sub_id && d.n_sub_ids < MAX_SUB_IDS)
            d.sub_ids[d.n_sub_ids++] = g[i].sub_id;
        any = true;
    }
    return any && session_deliver(b, s, &d);
}

size_t broker_publish_count(broker_t *b, msg_t *m)
{
    if (m->retain) {
        /* the retained copy: an empty payload clears the topic's retained message */
        if (retain_set(b->retained, m->topic, m->topic_len, m->payload_len ? msg_ref(m) : NULL) == 0 &&
            b->store)
            store_retained(b->store, m);
    }
    matchvec_t *mv = &tl_matches;
    mv->n = 0;
    router_match(b->router, m->topic, m->topic_len, on_match, mv);
    if (mv->n > 1)
        qsort(mv->v, mv->n, sizeof *mv->v, cmp_match);
    size_t delivered = 0;
    for (size_t i = 0; i < mv->n;) {
        size_t j = i + 1;
        if (!mv->v[i].shared)
            while (j < mv->n && mv->v[j].s == mv->v[i].s && !mv->v[j].shared)
                j++;
        delivered += deliver_group(b, m, &mv->v[i], j - i);
        i = j;
    }
    for (size_t i = 0; i < mv->n; i++)
        session_unref(mv->v[i].s);
    mv->n = 0;
    return delivered;
}

typedef struct {
    msg_t **v;
    size_t n, cap;
} msgvec_t;

static void on_retained(void *arg, const char *topic, size_t len, void *msg)
{
    msgvec_t *mv = arg;
    (void)topic;
    (void)len;
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 16;
        msg_t **v = realloc(mv->v, cap * sizeof *v);
        if (!v)
            return;
        mv->v = v;
        mv->cap = cap;
    }
    mv->v[mv->n++] = msg_ref(msg);
}

void broker_send_retained(broker_t *b, session_t *s, const char *filter, size_t len,
                          uint8_t granted_qos, uint32_t sub_id)
{
    if (granted_qos > 2)
        return; /* the subscription was refused */
    msgvec_t mv = {0};
    retain_match(b->retained, filter, len, on_retained, &mv);
    uint64_t now = clock_ms();
    for (size_t i = 0; i < mv.n; i++) {
        msg_t *m = mv.v[i];
        if (!msg_expired(m, now)) {
            delivery_t d = {.msg = m, .qos = m->qos < granted_qos ? m->qos : granted_qos,
                            .retain = true};
            if (sub_id)
                d.sub_ids[d.n_sub_ids++] = sub_id;
            session_deliver(b, s, &d);
        }
        msg_unref(m);
    }
    free(mv.v);
}

msg_t *session_release_will(session_t *s, uint64_t now)
{
    msg_t *m = s->will;
    s->will = NULL;
    s->will_at = 0;
    /* not shared yet, so still ours to change: its expiry runs from publication */
    if (m)
        m->expire_at = s->will_expiry ? now + (uint64_t)s->will_expiry * 1000u : 0;
    return m;
}

msg_t *session_take_will(session_t *s, bool session_ends, uint64_t now)
{
    if (!s->will)
        return NULL;
    uint64_t delay = s->will_delay;
    if (s->expiry < delay)
        delay = s->expiry;
    if (session_ends || delay == 0 || (s->will_at && now >= s->will_at))
        return session_release_will(s, now);
    if (!s->will_at)
        s->will_at = now + delay * 1000u;
    return NULL;
}

/* A cgroup v2 memory.max for this process, or 0 when there is none (or it says "max"). */
static uint64_t cgroup_memory_max(void)
{
    char line[512], path[600];
    uint64_t max = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = 0;
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
            FILE *m = fopen(path, "r");
            unsigned long long v;
            if (m && fscanf(m, "%llu", &v) == 1)
                max = v;
            if (m)
                fclose(m);
        }
    fclose(f);
    return max;
}

/* The default memory_limit: three quarters of the physical memory, or of the cgroup's
 * memory.max when that is lower (a systemd MemoryMax=, a container), so load is shed before
 * the kernel's OOM killer would end the daemon. 0 (none) when neither can be read. */
static uint64_t memory_limit_auto(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t total = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    uint64_t cg = cgroup_memory_max();
    if (cg && (!total || cg < total))
        total = cg;
    return total / 4 * 3;
}

void broker_limits_from_config(limits_t *lim, const acemq_config_t *cfg)
{
    memset(lim, 0, sizeof *lim);
    lim->max_packet_size = cfg->max_packet_size ? cfg->max_packet_size : 268435460u;
    lim->max_inflight = cfg->max_inflight_messages > 0 ? (uint32_t)cfg->max_inflight_messages : 0;
    lim->max_inflight_bytes = cfg->max_inflight_bytes;
    lim->max_queued = cfg->max_queued_messages > 0 ? (uint32_t)cfg->max_queued_messages : 0;
    lim->max_queued_bytes = cfg->max_queued_bytes;
    lim->queue_qos0 = cfg->queue_qos0_messages;
    lim->max_keepalive = (uint16_t)cfg->max_keepalive;
    lim->connect_timeout_ms = (uint32_t)cfg->connect_timeout * 1000u;
    lim->retain_available = cfg->retain_available;
    lim->max_qos = (uint8_t)cfg->max_qos;
    lim->persistent_expiry = (uint32_t)cfg->persistent_client_expiration;
    lim->allow_zero_length_clientid = cfg->allow_zero_length_clientid;
    lim->max_topic_alias = (uint16_t)cfg->max_topic_alias;
    lim->receive_maximum =
        cfg->max_inflight_messages > 0 && cfg->max_inflight_messages < 65535
            ? (uint16_t)cfg->max_inflight_messages
            : 65535;
    lim->max_topic_levels = (uint32_t)cfg->max_topic_levels;
    lim->max_topic_length = (uint32_t)cfg->max_topic_length;
    lim->max_subscriptions = (uint32_t)cfg->max_subscriptions;
    lim->max_connections = cfg->global_max_connections;
    lim->max_qos2_pending = cfg->max_qos2_pending > 0 ? (uint32_t)cfg->max_qos2_pending : 0;
    lim->rate_limit_messages =
        cfg->rate_limit_messages > 0 ? (uint32_t)cfg->rate_limit_messages : 0;
    lim->rate_limit_bytes = cfg->rate_limit_bytes;
    lim->memory_limit =
        cfg->memory_limit == MEMORY_LIMIT_AUTO ? memory_limit_auto() : cfg->memory_limit;
    lim->message_size_limit = cfg->message_size_limit;
    lim->max_properties_size = cfg->max_properties_size;
    lim->upgrade_outgoing_qos = cfg->upgrade_outgoing_qos;
    lim->connection_messages = cfg->connection_messages;
    lim->tcp_nodelay = cfg->set_tcp_nodelay;
    snprintf(lim->clientid_prefixes, sizeof lim->clientid_prefixes, "%s",
             cfg->clientid_prefixes ? cfg->clientid_prefixes : "");
    snprintf(lim->auto_id_prefix, sizeof lim->auto_id_prefix, "%s",
             cfg->auto_id_prefix ? cfg->auto_id_prefix : "auto-");
}
