/*
 * broker/core.h: the broker's internal types and the functions its files call on each other.
 *
 * Ownership and threads (the rules every file here keeps):
 * - A worker is one thread with one libuv loop. A connection (conn_t) lives on exactly one worker
 *   and only that worker's thread touches its fields, except `refs`.
 * - A session (session_t) outlives connections. Its mutable fields are guarded by its `lock`;
 *   any worker may lock it to queue a delivery. Only the worker of its current connection
 *   moves deliveries from the queue to the wire (session_flush).
 * - Lock order: registry lock, then a session lock. The router and retained store have their
 *   own read/write locks and never call back into sessions with a lock held.
 * - Messages (msg_t) are immutable after creation and reference counted: one copy of the topic,
 *   payload and properties is shared by every subscriber and every write that carries it.
 */
#ifndef ACEMQ_BROKER_CORE_H
#define ACEMQ_BROKER_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "broker/lock.h"
#include "broker/stream.h"
#include "proto/mqtt.h"

typedef struct broker broker_t;
typedef struct worker worker_t;
typedef struct session session_t;
typedef struct conn conn_t;
typedef struct acemq_config acemq_config_t;
typedef struct acemq_listener acemq_listener_t;
typedef struct listener_rt listener_rt_t;

/* ---- messages (message.c) --------------------------------------------------------------------- */

typedef struct msg {
    atomic_int refs;
    uint8_t qos;
    bool retain;
    uint16_t topic_len;
    const char *topic; /* NUL-terminated */
    const uint8_t *payload;
    uint32_t payload_len;
    mqtt_props_t props;     /* pass-through properties only; message expiry is expire_at */
    uint64_t expire_at;     /* broker clock ms; 0 = never */
    const session_t *origin; /* publisher's session, compared for No Local; never dereferenced */
} msg_t;

msg_t *msg_new(const char *topic, size_t topic_len, const uint8_t *payload, size_t payload_len,
               uint8_t qos, bool retain, const mqtt_props_t *props, uint64_t now);
static inline msg_t *msg_ref(msg_t *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}
void msg_unref(msg_t *m);
/* Seconds of expiry left at `now` (at least 1), or 0 if the message never expires. */
uint32_t msg_expiry_left(const msg_t *m, uint64_t now);
static inline bool msg_expired(const msg_t *m, uint64_t now)
{
    return m->expire_at && now >= m->expire_at;
}

/* The broker clock: CLOCK_MONOTONIC in milliseconds, the same on every thread. */
uint64_t clock_ms(void);

/* ---- sessions (session.c) --------------------------------------------------------------------- */

enum { MAX_SUB_IDS = 4 };

typedef struct {
    msg_t *msg;
    uint8_t qos;
    bool retain;
    uint8_t n_sub_ids;
    uint32_t sub_ids[MAX_SUB_IDS];
} delivery_t;

enum { OUT_WAIT_PUBACK = 1, OUT_WAIT_PUBREC, OUT_WAIT_PUBCOMP };

typedef struct {
    uint16_t id;
    uint8_t state;
    bool sent_once; /* resent with DUP after a reconnect */
    delivery_t d;   /* d.msg is NULL once PUBREC arrived (only the id is kept for PUBREL) */
} inflight_t;

typedef struct {
    char *filter; /* full filter, including any $share/<group>/ */
    uint16_t len;
    uint8_t options;
    uint32_t sub_id;
} sub_entry_t;

struct session {
    small_lock_t lock; /* session_lock() / session_unlock() */
    atomic_int refs;
    uint32_t expiry; /* Session Expiry Interval in seconds; UINT32_MAX = never */
    conn_t *conn;    /* current connection (holds a conn reference) or NULL */
    worker_t *worker; /* worker of conn, or the one that tracks the offline session */
    uint64_t offline_since;

    sub_entry_t *subs;
    uint32_t n_subs, cap_subs;

    inflight_t *out; /* outgoing QoS 1/2 awaiting acknowledgement, in send order */
    uint32_t n_out, cap_out;
    uint64_t out_bytes; /* payload bytes of `out` still held (entries past PUBREC hold none) */

    delivery_t *queue; /* ring buffer of deliveries not yet sent */
    uint32_t q_head, q_len, q_cap;
    uint32_t dropped;  /* deliveries dropped (queue limits, memory), for log throttling */
    uint64_t q_bytes;

    uint16_t *in_ids; /* incoming QoS 2 packet ids awaiting PUBREL */
    uint32_t n_in, cap_in;

    msg_t *will;
    uint32_t will_delay;
    uint32_t will_expiry; /* Message Expiry Interval of the will, counted from its publication */
    uint64_t will_at; /* when a delayed will is due; 0 = none pending */

    struct grant *grant; /* its last connection's grant, swapped under the session lock (auth.c) */
    uint64_t store_sid;         /* id in the persistent store while durable, else 0 (store.h) */
    session_t *hnext;           /* registry chain */
    uint16_t next_id;
    uint16_t id_len;
    uint8_t version;
    bool registered; /* in the registry; false once discarded or expired */
    atomic_bool flush_queued; /* already on a worker's flush list */
    bool backlogged; /* the last flush left messages queued (window full or socket backed up) */
    char client_id[];         /* id_len bytes and a NUL, in the same allocation */
};

session_t *session_new(const char *id, size_t len);
static inline void session_lock(session_t *s)
{
    small_lock(&s->lock);
}
static inline void session_unlock(session_t *s)
{
    small_unlock(&s->lock);
}
static inline session_t *session_ref(session_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}
void session_unref(session_t *s);

/* Queues a delivery (takes a message reference) and makes sure the session's worker will flush
 * it. Applies the queue limits and the QoS 0 policy. Called from any worker. False when the
 * session may not receive it at all: offline, and its last grant does not cover the topic. */
bool session_deliver(broker_t *b, session_t *s, const delivery_t *d);
/* Under s->lock, when the connection went away: QoS 0 deliveries not yet written are dropped (an
 * offline session keeps them only with queue_qos0_messages), so what an offline session receives
 * does not depend on whether a publish raced the disconnect. */
void session_drop_qos0(broker_t *b, session_t *s);
/* On the session's own worker: moves queued deliveries to the wire within the flow-control
 * window and returns the number of packets added to the connection's write batch. */
unsigned session_flush(broker_t *b, session_t *s, conn_t *c);
/* Resends everything in flight (DUP on PUBLISH, PUBREL for QoS 2 past PUBREC) on a new
 * connection. Called under the session lock. */
void session_resend_inflight(session_t *s, conn_t *c);
/* Acknowledgements from the client. Return a reason code (0 or MQTT_RC_PACKET_ID_NOT_FOUND). */
int session_ack(session_t *s, uint16_t id, mqtt_type_t type);
void session_ack_failed(session_t *s, uint16_t id);
/* Recovery: puts a delivery back in flight with its packet id and state (d->msg may be NULL
 * past PUBREC); it is resent with DUP on the next connection. Caller holds no lock. */
int session_restore_inflight(session_t *s, uint16_t id, uint8_t state, const delivery_t *d);
/* Drops queued and in-flight deliveries and subscriptions (clean start, expiry). Caller holds
 * no lock; the session must not be in use by a connection. */
void session_clear(broker_t *b, session_t *s);
int session_add_sub(session_t *s, const char *filter, size_t len, uint8_t options, uint32_t sub_id);
int session_del_sub(session_t *s, const char *filter, size_t len);
/* Incoming QoS 2 ids. */
bool session_in_has(const session_t *s, uint16_t id);
int session_in_add(session_t *s, uint16_t id);
bool session_in_del(session_t *s, uint16_t id);

/* The client-id registry. */
typedef struct registry registry_t;
registry_t *registry_new(void);
void registry_free(registry_t *r);
void registry_lock(registry_t *r);
void registry_unlock(registry_t *r);
session_t *registry_find(registry_t *r, const char *id, size_t len); /* under the lock; borrowed */
int registry_add(registry_t *r, session_t *s);                       /* under the lock; takes a ref */
void registry_remove(registry_t *r, session_t *s);                   /* under the lock; drops the ref */
size_t registry_count(registry_t *r);
/* Ends a session that has no connection (expiry, or Session Expiry 0 at disconnect): removes
 * it from the registry and clears its state. Returns false if a connection took it meanwhile. */
bool session_discard_offline(broker_t *b, session_t *s);

/* ---- connections (conn.c, handle_*.c) --------------------------------------------------------- */

enum { CS_NEW, CS_AUTH, CS_CONNECTED, CS_CLOSING };

typedef struct wbatch wbatch_t;

struct conn {
    atomic_int refs;
    uint8_t state;
    uint8_t version;
    bool taken_over;
    bool will_on_close;   /* publish the session's will when the socket goes */
    worker_t *w;
    stream_t *stream;
    listener_rt_t *lrt;   /* its listener (conn_listener() for the configuration), or NULL */
    conn_t *prev, *next;  /* the worker's list */
    session_t *session;   /* reference held while connected */
    char *client_id;      /* as the session knows it; NULL before CONNECT (conn_id() gives "-") */
    char *username;       /* for logs, truncated; NULL when none */
    struct auth_conn *authc; /* per-connection authentication state (auth.c); NULL when none */
    /* clock_ms() cut to 32 bits: intervals are taken by unsigned subtraction, right up to 49 days */
    uint32_t created_at, last_rx;

    /* what the client told us (MQTT 5 CONNECT properties) */
    uint16_t keepalive;
    uint16_t client_receive_max;
    uint16_t client_alias_max;
    uint16_t n_aliases;
    uint32_t client_max_packet;
    bool problem_info;

    bool pending;         /* on the worker's flush list */
    bool in_handler;
    bool anonymous;
    bool counted;         /* counted in clients_connected */
    bool throttled;       /* reading paused by the rate limits until the next tick */
    bool id_borrowed;     /* client_id is a session's (conn_use_session_id), not malloc'd */
    uint8_t max_qos;          /* the listener's max_qos */
    uint16_t max_topic_alias; /* the listener's max_topic_alias */

    char **aliases;       /* inbound topic aliases: n_aliases NUL-terminated topic names */

    /* reading */
    uint8_t *rbuf;
    uint32_t rlen, rcap, rneed;
    uint32_t held_len;
    uint8_t *held;        /* input read past the rate budget, handled at the next tick */

    /* writing */
    wbatch_t *batch;
    size_t unsent; /* bytes handed to the transport and not yet written */

    uint32_t rate_msgs;   /* PUBLISH packets this second */
    uint32_t oversized;   /* PUBLISHes dropped for message_size_limit (log throttling) */
    uint64_t rate_bytes;  /* bytes handled this second */
};

conn_t *conn_new(worker_t *w, stream_t *s, listener_rt_t *l);
/* The client id for logs: "-" until CONNECT named one. */
static inline const char *conn_id(const conn_t *c)
{
    return c->client_id ? c->client_id : "-";
}
/* Sets c->client_id or c->username (NULL or len 0: none); username is cut at 63 bytes. An
 * allocation failure leaves the old value: these are for logs and ACL patterns, never for routing. */
void conn_set_client_id(conn_t *c, const char *p, size_t len);
/* Once attached: the client id becomes the session's own string (the connection keeps a session
 * reference for it until it is freed, so logs after the session detached still name it). */
void conn_use_session_id(conn_t *c, session_t *s);
void conn_set_username(conn_t *c, const char *p, size_t len);
static inline conn_t *conn_ref(conn_t *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}
void conn_unref(conn_t *c);
/* Closes the connection, optionally sending an MQTT 5 DISCONNECT with rc first (rc < 0: none). */
void conn_close(conn_t *c, int rc, const char *why);
/* Encodes a packet into the connection's write batch (sent at the end of this loop turn). */
int conn_send(conn_t *c, const mqtt_packet_t *pkt);
/* Adds an outgoing PUBLISH: the head is encoded, the payload shared by reference. */
int conn_send_publish(conn_t *c, const mqtt_packet_t *pkt, msg_t *m);
/* Asks for a flush of this connection at the end of the loop turn. */
void conn_schedule(conn_t *c);
/* Writes what has been batched. */
void conn_flush(conn_t *c);
/* Pauses reading when the connection is over its rate limits (the tick resumes it). */
void conn_check_rate(conn_t *c);
/* The 1 s tick: connect timeout, keepalive, rate-limit windows. */
void conn_tick(conn_t *c, uint64_t now);
/* Whether the connection should take more deliveries now (write backpressure). */
bool conn_writable(const conn_t *c);

/* Packet handlers: each returns 0 to go on, or a negative value when the connection was closed. */
int handle_connect(conn_t *c, mqtt_packet_t *p);
int handle_publish(conn_t *c, mqtt_packet_t *p);
int handle_ack(conn_t *c, mqtt_packet_t *p);
int handle_subscribe(conn_t *c, mqtt_packet_t *p);
int handle_unsubscribe(conn_t *c, mqtt_packet_t *p);
int handle_disconnect(conn_t *c, mqtt_packet_t *p);
int handle_auth(conn_t *c, mqtt_packet_t *p);
/* Called once when the transport reports the socket gone. */
void conn_detach_session(conn_t *c);

/* Sends a protocol error the way the connection's version wants (MQTT 5: DISCONNECT rc). */
int conn_protocol_error(conn_t *c, int rc, const char *why);

/* ---- workers (worker.c) ----------------------------------------------------------------------- */

typedef struct {
    void **v;
    size_t n, cap;
} ptrvec_t;
int ptrvec_push(ptrvec_t *v, void *p);

enum { INBOX_FLUSH_SESSION = 1, INBOX_KICK_CONN, INBOX_STOP, INBOX_STORE_ACKS };

typedef struct {
    int type;
    void *ptr;
    int arg;
} inbox_item_t;

struct worker {
    int id;
    broker_t *b;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t async;
    uv_check_t check;
    uv_timer_t tick;
    pthread_mutex_t inbox_lock;
    inbox_item_t *inbox;
    size_t inbox_n, inbox_cap;
    conn_t *conns; /* every connection of this worker */
    size_t n_conns;
    ptrvec_t pending;  /* conns to flush at the end of the loop turn (references) */
    ptrvec_t pending_sessions; /* sessions with new deliveries (references) */
    ptrvec_t offline;  /* sessions whose expiry and delayed will this worker tracks */
    stream_acceptor_t *servers;
    size_t n_servers;
    int *server_fds; /* bound and listening sockets made by the main thread */
    struct listener_rt **server_listeners;
    bool stopping;
    atomic_bool stop_requested;
    uint64_t last_sys;
    uint64_t last_accept_warning;
    uint64_t last_tick; /* clock_ms() of the previous 1 s tick */
    atomic_uint_fast64_t lag_ms, lag_max_ms; /* how late the last tick fired, and the worst */
};

/* Opens every listener's sockets for every worker (SO_REUSEPORT). Returns 0 or -1 with a message. */
int workers_bind(broker_t *b, char *err, size_t cap);
int workers_start(broker_t *b);
void workers_stop(broker_t *b);

/* Posts an item to a worker from any thread (takes over the reference in ptr). */
void worker_post(worker_t *w, int type, void *ptr, int arg);
/* Runs session_flush for a session on the worker that owns its connection. */
void worker_wake_session(worker_t *current, session_t *s);
void worker_track_offline(worker_t *w, session_t *s);
/* One loop turn's work, also driven by the connection fuzz harness: handle what other threads
 * posted, then write what this turn produced. */
void worker_drain_inbox(worker_t *w);
void worker_flush_pending(worker_t *w);
worker_t *worker_current(void);
/* When stopping and the last connection is gone, closes the loop's handles so uv_run returns. */
void worker_maybe_finish(worker_t *w);

/* ---- the broker (broker.c) -------------------------------------------------------------------- */

typedef struct {
    atomic_uint_fast64_t clients_total, clients_connected, clients_maximum;
    atomic_uint_fast64_t msgs_received, msgs_sent, msgs_dropped;
    atomic_uint_fast64_t bytes_received, bytes_sent;
    atomic_uint_fast64_t pub_received, pub_sent;
    atomic_uint_fast64_t connections;
    atomic_uint_fast64_t expired_sessions;
    /* For metrics.c. Indexed by QoS: PUBLISH packets and payload bytes received from clients
     * (handle_publish.c) and sent to subscribers (session.c). */
    atomic_uint_fast64_t pub_received_qos[3], pub_bytes_received_qos[3];
    atomic_uint_fast64_t pub_sent_qos[3], pub_bytes_sent_qos[3];
    /* Dropped deliveries by reason; msgs_dropped counts these and any other drop, but not
     * messages that expired while queued (dropped_expired). */
    atomic_uint_fast64_t dropped_queue_full, dropped_too_large, dropped_expired;
    atomic_uint_fast64_t dropped_not_authorized; /* queued, then the subscriber's grant said no */
    /* Authentication outcomes, counted through metrics_count_auth() (broker/metrics.h). */
    atomic_uint_fast64_t auth_ok, auth_fail;
    atomic_uint_fast64_t connections_accepted; /* sockets given a transport (listener.c) */
} broker_stats_t;

/* Limits copied from the config, read by every worker; replaced as a whole on reload. */
typedef struct {
    uint32_t max_packet_size;
    uint32_t max_inflight;
    uint64_t max_inflight_bytes;
    uint32_t max_queued;
    uint64_t max_queued_bytes;
    bool queue_qos0;
    uint16_t max_keepalive;
    uint32_t connect_timeout_ms;
    bool retain_available;
    uint8_t max_qos;
    uint32_t persistent_expiry; /* seconds for 3.1.1 persistent sessions, 0 = never */
    bool allow_zero_length_clientid;
    uint16_t max_topic_alias;
    uint16_t receive_maximum;
    uint32_t max_topic_levels;
    uint32_t max_topic_length;
    uint32_t max_subscriptions;
    int max_connections;
    uint32_t max_qos2_pending;   /* incoming QoS 2 awaiting PUBREL, MQTT 3.1.1 clients */
    uint32_t rate_limit_messages; /* PUBLISH per second per connection, 0 = none */
    uint64_t rate_limit_bytes;    /* bytes per second per connection, 0 = none */
    uint64_t memory_limit;        /* heap bytes before load is shed, 0 = none */
    uint32_t message_size_limit;  /* PUBLISH (and will) payload bytes, 0 = none */
    uint32_t max_properties_size; /* MQTT 5 property bytes per packet, 0 = none */
    bool upgrade_outgoing_qos;    /* deliver at the subscription's QoS, not min(pub, sub) */
    bool connection_messages;     /* connect/disconnect lines at info (else debug) */
    bool tcp_nodelay;             /* set_tcp_nodelay: disable Nagle on client sockets */
    char auto_id_prefix[32];
    char clientid_prefixes[64];   /* only client ids starting with this may connect; "" = any */
} limits_t;

struct router;
struct retain;
struct auth;
struct tls_server;

/* A configured listener at run time (listener.c): its transport and connection count. */
struct listener_rt {
    /* its block of the running configuration; a reload may point it at a newer block (atomic:
     * the workers read it when they accept) */
    const acemq_listener_t *_Atomic cfg;
    struct tls_server *tls; /* NULL for plain TCP */
    atomic_int conns;
};

/* A connection's listener configuration: the newest block (a reload may have replaced it). */
static inline const acemq_listener_t *conn_listener(const conn_t *c)
{
    return c->lrt ? atomic_load(&c->lrt->cfg) : NULL;
}

/* Builds the run-time listeners (TLS contexts included). Returns 0 or -1 with a message. */
int listeners_init(broker_t *b, char *err, size_t cap);
/* `acemqd -t`: builds and frees each TLS listener's context. Returns 0 or -1 with a message. */
int listeners_check(const acemq_config_t *cfg, char *err, size_t cap);
/* SIGHUP: reloads certificates, keys, CA and CRL of every TLS listener from a fresh config. */
void listeners_reload(broker_t *b, const acemq_config_t *fresh);
void listeners_free(broker_t *b);
/* The transport for an accepted socket on this listener (TLS or plain). */
stream_t *listener_stream_new(listener_rt_t *l, uv_loop_t *loop, int fd,
                              const struct sockaddr *peer, size_t peer_len,
                              const stream_events_t *ev);

struct broker {
    acemq_config_t *cfg;
    limits_t lim;
    struct router *router;
    struct retain *retained;
    registry_t *registry;
    struct auth *auth;
    worker_t *workers;
    int n_workers;
    listener_rt_t *listeners;
    size_t n_listeners;
    broker_stats_t stats;
    uint64_t started_at;   /* clock_ms() */
    time_t started_wall;
    uv_loop_t *main_loop;
    atomic_bool stopping;
    struct store *store; /* persistence (store.h), NULL when off */
    atomic_bool shedding; /* over memory_limit: refuse connections, drop QoS 0 to backlogs */
};

/* Routes a message to every matching subscription and handles its retained flag. The caller
 * keeps its reference. `from` is the publishing session (No Local), or NULL. */
void broker_publish(broker_t *b, msg_t *m);
/* Sends the retained messages matching a new subscription to a session. */
void broker_send_retained(broker_t *b, session_t *s, const char *filter, size_t len,
                          uint8_t options, uint32_t sub_id);
/* With the session lock held: returns the session's will if it is due now (the caller publishes
 * it after unlocking), or arms its Will Delay Interval and returns NULL. */
msg_t *session_take_will(session_t *s, bool session_ends, uint64_t now);
/* With the lock held: takes the will out of the session to publish it now. */
msg_t *session_release_will(session_t *s, uint64_t now);
/* Frees what a worker thread keeps between messages; called as the thread ends. */
void broker_thread_exit(void);
/* Returns the number of subscriptions the message was queued for. */
size_t broker_publish_count(broker_t *b, msg_t *m);
/* Fills lim from a config. */
void broker_limits_from_config(limits_t *lim, const acemq_config_t *cfg);
/* The $SYS tree (sys.c), published from worker 0's tick. */
void sys_publish(broker_t *b, uint64_t now);

#endif
