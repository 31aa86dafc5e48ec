/*
 * broker/store.h: persistence. An append-only log of changes in the data directory
 * (persistence_location/persistence_file), compacted into a snapshot when it grows past
 * persistence_compact_ratio times the live data, and replayed at start. docs/persistence.md
 * describes the format, the fsync policies and the recovery rules.
 *
 * Threads: workers call the hooks below; each hook only queues a small record under the store's
 * mutex (the store's lock is taken after a session's lock, never before). One writer thread
 * encodes, writes and fsyncs, so no worker ever waits for the disk. With `fsync always` the
 * acknowledgement of a QoS 1/2 PUBLISH is handed to store_ack_later() and sent by the worker
 * once the writer has fsynced everything queued before it (group commit: one fsync per batch).
 *
 * What is stored: sessions with a Session Expiry Interval > 0 (the durable ones), their
 * subscriptions, deliveries queued or in flight to them, their incoming QoS 2 packet ids, and
 * retained messages. A session is durable while s->store_sid != 0 (set by store_session_sync).
 *
 * Errors are 0 or negative; functions that can fail at start fill an error string naming the
 * file and the offset.
 */
#ifndef ACEMQ_BROKER_STORE_H
#define ACEMQ_BROKER_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "broker/core.h"

typedef struct store store_t;

enum { STORE_FSYNC_NEVER, STORE_FSYNC_EVERYSEC, STORE_FSYNC_ALWAYS };

typedef struct {
    const char *dir;   /* persistence_location; NULL = current directory */
    const char *file;  /* persistence_file */
    int fsync;         /* STORE_FSYNC_* */
    int autosave_interval; /* seconds (or changes) between compaction checks; 0 = size only */
    bool autosave_on_changes; /* autosave_interval counts records written, not seconds */
    int compact_ratio; /* compact when the log exceeds this many times the live data */
} store_opts_t;

/* STORE_FSYNC_* for a config value ("always", "everysec", "never"); -1 if unknown. */
int store_fsync_policy(const char *name);

/* Opens the store and replays it (a torn last record is cut and logged). Returns 0, or -1 with
 * a message naming the file and offset in err (the daemon must not start). */
int store_open(store_t **out, const store_opts_t *o, char *err, size_t cap);
/* Rebuilds the broker from the replayed state: retained messages, durable sessions (offline,
 * tracked by the workers for expiry), their subscriptions, queued and in-flight deliveries and
 * incoming QoS 2 ids. Queued deliveries meet today's queue limits; the ones these drop are
 * queued as `dropped` records, written once the writer starts. Call before the workers start
 * and before setting b->store. */
int store_restore(store_t *st, broker_t *b);
/* Starts the writer thread. */
int store_start(store_t *st);
/* From now on acknowledgements are no longer handed to the workers (they are stopping). */
void store_detach_workers(store_t *st);
/* Writes and fsyncs everything queued, stops the writer and frees the store. NULL is a no-op. */
void store_close(store_t *st);
/* Compacts now (on the writer thread if it runs, else in the caller). */
int store_compact(store_t *st);
/* Prints a store's contents for operators (sessions, subscriptions, queued messages with topic
 * and size, retained topics, file size and record counts) without changing it. 0 or -1. */
int store_dump(const char *dir, const char *file, FILE *out, char *err, size_t cap);

/* ---- hooks: called by the broker where state changes --------------------------------------- */

/* Under s->lock, after a CONNECT or DISCONNECT set s->expiry: makes the session durable (and
 * writes what it already holds), updates it, or forgets it when its expiry became 0. */
void store_session_sync(store_t *st, session_t *s);
/* Under s->lock: the session ended (expired, discarded by a clean start, closed with expiry 0). */
void store_session_delete(store_t *st, session_t *s);
/* Under s->lock. */
void store_sub(store_t *st, session_t *s, const char *filter, size_t len, uint8_t options,
               uint32_t sub_id);
void store_unsub(store_t *st, session_t *s, const char *filter, size_t len);
/* Under s->lock: a delivery entered the session's queue (the record references the message,
 * which is stored once whatever the number of sessions it goes to). */
void store_queued(store_t *st, session_t *s, const delivery_t *d);
/* Under s->lock: the first queued delivery of m went out with packet id `id` (QoS 1/2), or left
 * the queue for good (id 0: sent at QoS 0, expired, too large for the client). */
void store_sent(store_t *st, session_t *s, msg_t *m, uint16_t id);
/* Take s->lock themselves: outgoing PUBREC received / delivery finished (PUBACK, PUBCOMP,
 * failed PUBREC); incoming QoS 2 id remembered / released. */
void store_out_pubrec(store_t *st, session_t *s, uint16_t id);
void store_out_done(store_t *st, session_t *s, uint16_t id);
void store_in_add(store_t *st, session_t *s, uint16_t id);
void store_in_del(store_t *st, session_t *s, uint16_t id);
/* The retained message of m's topic is now m (an empty payload clears it). */
void store_retained(store_t *st, msg_t *m);

/* Records appended between these two calls reach the file together (the writer never takes part
 * of them): the deliveries of one QoS 2 PUBLISH and its packet id, so that after a crash either
 * both are there (a resent PUBLISH is a duplicate) or neither (it is routed). Returns a slot. */
int store_group_begin(store_t *st);
void store_group_end(store_t *st, int slot);

/* ---- acknowledgements that wait for the disk (fsync always) -------------------------------- */

/* True when QoS 1/2 acknowledgements must wait for store_ack_later. */
bool store_acks_wait(const store_t *st);
/* Sends the ack (PUBACK, PUBREC or PUBREL with this id and reason code) on c from c's worker
 * once everything queued so far is on disk. Takes a connection reference; if the connection
 * is gone by then nothing is sent. */
void store_ack_later(store_t *st, conn_t *c, uint8_t type, uint16_t id, uint8_t rc);
/* INBOX_STORE_ACKS on a worker: sends a batch made by the writer. */
void store_run_acks(void *batch);

#endif
