/*
 * broker/listener.c: configured listeners at run time: which transport an accepted socket gets
 * (plain TCP or TLS, either one under WebSockets for `protocol websockets`), the TLS contexts
 * built from the listener directives, and their reload.
 *
 * A listener is TLS when it names a certfile (with keyfile) or enables PSK (psk_hint/psk_file).
 * TLS contexts are built before the sockets are bound, so a bad certificate stops the start with
 * a message (`acemqd -t` builds and frees them the same way); on SIGHUP they are reloaded for
 * new connections while existing ones keep theirs.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/config.h"
#include "broker/core.h"
#include "broker/log.h"
#include "broker/ws.h"
#include "tls/tls.h"

static bool is_tls(const acemq_listener_t *l)
{
    return l->certfile || l->psk_hint || l->psk_file;
}

/* The TLS settings of listener l. With ACE on, PSK identities may name tokens uploaded to
 * authz-info, so the ACE lookup is added (auth NULL: none, as for `acemqd -t`). */
static void tls_config_from(tls_server_config_t *t, const acemq_listener_t *l,
                            const acemq_config_t *cfg, struct auth *auth)
{
    memset(t, 0, sizeof *t);
    t->certfile = l->certfile;
    t->keyfile = l->keyfile;
    t->cafile = l->cafile;
    t->capath = l->capath;
    t->crlfile = l->crlfile;
    t->ciphers = l->ciphers;
    t->tls_version = l->tls_version;
    t->psk_hint = l->psk_hint;
    t->psk_file = l->psk_file;
    t->require_certificate = l->require_certificate;
    t->use_identity_as_username = l->use_identity_as_username;
    t->tls_handshake_timeout = l->tls_handshake_timeout > 0 ? (unsigned)l->tls_handshake_timeout : 0;
    /* 0 is no limit on both sides */
    t->max_handshakes = cfg->max_handshakes > 0 ? (unsigned)cfg->max_handshakes : 0;
    if (auth && auth_ace_enabled(auth)) {
        t->psk_lookup = auth_psk_lookup;
        t->psk_lookup_arg = auth;
    }
}

/* Builds listener l's TLS context; on failure "file:line: TLS listener on port N: why". */
static int tls_new(tls_server_t **out, const acemq_listener_t *l, const acemq_config_t *cfg,
                   struct auth *auth, char *err, size_t cap)
{
    tls_server_config_t t;
    char why[512];
    tls_config_from(&t, l, cfg, auth);
    if (tls_server_new(out, &t, why, sizeof why) == 0)
        return 0;
    snprintf(err, cap, "%s: TLS listener on port %d: %s", l->where ? l->where : "listener",
             l->port, why);
    return -1;
}

static void tls_log(void *arg, int level, const char *event, const char *msg)
{
    (void)arg;
    log_write((log_level_t)level, event, "%s", msg);
}

int listeners_init(broker_t *b, char *err, size_t cap)
{
    size_t n = 0;
    for (const acemq_listener_t *l = b->cfg->listeners; l; l = l->next)
        n++;
    b->listeners = calloc(n ? n : 1, sizeof *b->listeners);
    if (!b->listeners) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    for (const acemq_listener_t *l = b->cfg->listeners; l; l = l->next) {
        listener_rt_t *rt = &b->listeners[b->n_listeners++];
        rt->cfg = l;
        atomic_init(&rt->conns, 0);
        if (!is_tls(l))
            continue;
        if (tls_new(&rt->tls, l, b->cfg, b->auth, err, cap) < 0)
            return -1;
        tls_server_set_log(rt->tls, tls_log, NULL);
    }
    return 0;
}

/* Every listener is checked; the messages go one per line, as many as fit. */
int listeners_check(const acemq_config_t *cfg, char *err, size_t cap)
{
    size_t used = 0;
    int bad = 0;
    for (const acemq_listener_t *l = cfg->listeners; l; l = l->next) {
        tls_server_t *tls;
        char one[768];
        if (!is_tls(l))
            continue;
        if (tls_new(&tls, l, cfg, NULL, one, sizeof one) == 0) {
            tls_server_free(tls);
            continue;
        }
        if (used < cap) { /* a truncated message ends the list */
            int n = snprintf(err + used, cap - used, "%s%s", bad ? "\n" : "", one);
            used = n < 0 ? cap : used + (size_t)n;
        }
        bad = 1;
    }
    return bad ? -1 : 0;
}

static const acemq_listener_t *same_listener(const acemq_config_t *fresh, const acemq_listener_t *l)
{
    for (const acemq_listener_t *f = fresh->listeners; f; f = f->next) {
        bool same_addr = (!f->bind_address && !l->bind_address) ||
                         (f->bind_address && l->bind_address &&
                          strcmp(f->bind_address, l->bind_address) == 0);
        if (f->port == l->port && same_addr)
            return f;
    }
    return NULL;
}

void listeners_reload(broker_t *b, const acemq_config_t *fresh)
{
    for (size_t i = 0; i < b->n_listeners; i++) {
        listener_rt_t *rt = &b->listeners[i];
        const acemq_listener_t *f = same_listener(fresh, rt->cfg);
        if (!rt->tls || !f || !is_tls(f))
            continue;
        tls_server_config_t t;
        tls_config_from(&t, f, fresh, b->auth);
        char why[512];
        if (tls_server_reload(rt->tls, &t, why, sizeof why) < 0)
            log_error("tls_reload_failed", "port=%d reason=\"%s\" action=\"keeping the old "
                      "certificates\"", f->port, why);
    }
}

void listeners_free(broker_t *b)
{
    for (size_t i = 0; i < b->n_listeners; i++)
        if (b->listeners[i].tls)
            tls_server_free(b->listeners[i].tls);
    free(b->listeners);
    b->listeners = NULL;
    b->n_listeners = 0;
}

stream_t *listener_stream_new(listener_rt_t *l, uv_loop_t *loop, int fd,
                              const struct sockaddr *peer, size_t peer_len,
                              const stream_events_t *ev)
{
    /* loop->data is the accepting worker */
    worker_t *w = loop->data;
    atomic_fetch_add_explicit(&w->b->stats.connections_accepted, 1, memory_order_relaxed);
    stream_t *lower = l->tls ? tls_stream_new(l->tls, loop, fd, peer, peer_len, ev, NULL)
                             : stream_tcp_new(loop, fd, peer, peer_len, ev, NULL);
    if (!lower || !l->cfg->protocol || strcmp(l->cfg->protocol, "websockets") != 0)
        return lower;
    /* WebSockets over TCP ("ws") or over TLS ("wss"). A frame may not be larger than the
     * largest MQTT packet we would accept. */
    ws_options_t opt = {.max_frame = w->b->lim.max_packet_size,
                        .max_headers = l->cfg->websockets_headers_size > 0
                                           ? (size_t)l->cfg->websockets_headers_size : 0};
    stream_t *s = ws_stream_wrap(lower, &opt, ev, NULL);
    if (!s)
        lower->ops->close(lower); /* its on_closed reaches ev with no owner */
    return s;
}
