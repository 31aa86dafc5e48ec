/*
 * broker/store_int.h: the store's internals, shared by broker/store*.c and the unit tests.
 *
 * Three layers:
 * - the record format (store_format.c): one change = one framed record
 *   [0xA7][type][u32 length][payload][u32 CRC32], little endian, after a 16-byte file header
 *   carrying the format version. Pure functions over bytes.
 * - the live state (store_state.c): what a snapshot would hold (sessions, their subscriptions,
 *   queued and in-flight deliveries, incoming QoS 2 ids, retained messages), rebuilt by applying
 *   records in order. Recovery and the writer thread apply the same records through the same
 *   function, so what is written is exactly what is replayed.
 * - the file (store_file.c): reading, validating and replaying a file; torn tails; snapshots.
 *
 * The state is owned by one thread at a time: the main thread while it opens and replays, then
 * the writer thread. Messages are the broker's refcounted msg_t; the state holds one reference
 * per message it keeps.
 */
#ifndef ACEMQ_BROKER_STORE_INT_H
#define ACEMQ_BROKER_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "broker/core.h"

#define STORE_FORMAT_VERSION 1u
#define STORE_HEADER_SIZE 16u
#define STORE_REC_MAGIC 0xA7u
#define STORE_REC_OVERHEAD 10u /* magic, type, length, CRC */
#define STORE_MAX_PAYLOAD (320u * 1024u * 1024u)

extern const uint8_t store_file_magic[8];

enum {
    SR_SESS = 1, /* sid, expiry, protocol version, last packet id (0: unchanged), client id */
    SR_SESS_DEL, /* sid: expired or discarded */
    SR_SUB,      /* sid, options, subscription id, filter */
    SR_UNSUB,    /* sid, filter */
    SR_MSG,      /* mid + message: stored once, referenced by the deliveries below */
    SR_QADD,     /* sid, mid, QoS, retain, subscription ids: queued for the session */
    SR_QSENT,    /* sid, mid, packet id: the first queued delivery of mid went out */
    SR_QPUBREC,  /* sid, packet id: PUBREC received, the message is no longer needed */
    SR_QDONE,    /* sid, packet id: PUBACK / PUBCOMP / failed PUBREC: delivery finished */
    SR_QDROP,    /* sid, mid: the first queued delivery of mid left without needing an ack */
    SR_INADD,    /* sid, packet id: incoming QoS 2 awaiting PUBREL */
    SR_INDEL,    /* sid, packet id: PUBREL received */
    SR_RETSET,   /* message: the retained message of its topic */
    SR_RETCLR,   /* topic: no retained message any more */
    SR_OUT,      /* snapshot: sid, mid (0 past PUBREC), packet id, state, QoS...: in flight */
    SR_MAX
};

/* One decoded (or to-be-encoded) record. Strings point into the payload or the caller's memory. */
typedef struct {
    uint8_t type;
    uint8_t version, qos, retain, state, options, n_sub_ids;
    uint16_t pid;
    uint16_t str_len;
    uint32_t expiry, sub_id;
    uint32_t sub_ids[MAX_SUB_IDS];
    uint64_t sid, mid;
    const char *str; /* client id (SESS), filter (SUB, UNSUB), topic (RETCLR) */
    msg_t *msg;      /* SR_MSG, SR_RETSET; decode makes a new one the caller owns */
} store_rec_t;

const char *store_rec_name(unsigned type);

/* ---- format (store_format.c) ---------------------------------------------------------------- */

uint32_t store_crc32(uint32_t crc, const void *p, size_t n);
void store_header_make(uint8_t out[STORE_HEADER_SIZE], uint32_t version);

typedef struct {
    uint8_t *p;
    size_t len, cap;
} sbuf_t;
int sbuf_reserve(sbuf_t *b, size_t more);
void sbuf_free(sbuf_t *b);

/* Appends the framed record. Message expiry is written as wall-clock time. 0 or -ENOMEM. */
int store_rec_encode(sbuf_t *b, const store_rec_t *r);

enum { FRAME_OK = 0, FRAME_SHORT = -1, FRAME_BAD = -2 };
/* Checks the frame at p (avail bytes): FRAME_OK with its type, payload and total size,
 * FRAME_SHORT when it claims more bytes than there are, FRAME_BAD (magic, type, CRC). */
int store_frame_check(const uint8_t *p, size_t avail, uint8_t *type, const uint8_t **payload,
                      uint32_t *plen, size_t *total);
/* Decodes a payload. 0 or a negative errno (-EBADMSG: malformed). For SR_MSG / SR_RETSET
 * r->msg is a new message the caller owns. */
int store_rec_decode(uint8_t type, const uint8_t *payload, uint32_t len, store_rec_t *r);

/* ---- live state (store_state.c) ------------------------------------------------------------- */

typedef struct kv kv_t;
kv_t *kv_new(void);
void kv_free(kv_t *t);
void *kv_get(const kv_t *t, const void *key, size_t len);
int kv_put(kv_t *t, const void *key, size_t len, void *val); /* replaces; 0 or -ENOMEM */
void *kv_del(kv_t *t, const void *key, size_t len);
size_t kv_count(const kv_t *t);
/* Calls cb for every entry; the table must not change meanwhile. */
void kv_foreach(const kv_t *t, void (*cb)(void *arg, const void *key, size_t len, void *val),
                void *arg);

typedef struct {
    uint64_t mid;
    msg_t *msg;
    uint32_t users;  /* deliveries that reference it */
    uint64_t epoch;  /* snapshot that already wrote it */
} smsg_t;

typedef struct {
    smsg_t *m; /* NULL once PUBREC arrived */
    uint16_t pid;
    uint8_t qos, retain, state, n_sub_ids;
    uint32_t sub_ids[MAX_SUB_IDS];
} sdel_t;

typedef struct {
    char *filter;
    uint16_t len;
    uint8_t options;
    uint32_t sub_id;
} ssub_t;

typedef struct {
    uint64_t sid;
    char *client_id;
    uint16_t id_len;
    uint32_t expiry;
    uint8_t version;
    uint16_t last_pid; /* of the last delivery sent: packet ids resume after it */
    ssub_t *subs;
    uint32_t n_subs, cap_subs;
    sdel_t *queue; /* live entries are [q_head, q_len) */
    uint32_t q_head, q_len, q_cap;
    sdel_t *out;
    uint32_t n_out, cap_out;
    uint16_t *in_ids;
    uint32_t n_in, cap_in;
} ssess_t;

typedef struct {
    kv_t *sessions;  /* sid -> ssess_t */
    kv_t *clients;   /* client id -> ssess_t */
    kv_t *msgs;      /* mid -> smsg_t */
    kv_t *msg_ptrs;  /* msg_t pointer -> smsg_t */
    kv_t *retained;  /* topic -> msg_t (one reference) */
    uint64_t next_sid, next_mid, epoch;
    uint64_t live_bytes; /* about what a snapshot of this state takes */
    uint64_t records[SR_MAX]; /* records applied, by type (replay statistics) */
} store_state_t;

int store_state_init(store_state_t *s);
void store_state_free(store_state_t *s);
/* Applies one record: 1 applied, 0 not relevant (unknown session, message...), -ENOMEM. */
int store_state_apply(store_state_t *s, const store_rec_t *r);
ssess_t *store_state_session(const store_state_t *s, uint64_t sid);
smsg_t *store_state_msg_by_ptr(const store_state_t *s, const msg_t *m);
/* Drops messages no delivery references (a tail cut between a message and its delivery). */
void store_state_sweep(store_state_t *s);
/* Calls emit for every record of a snapshot of the state, in replay order. */
int store_state_snapshot(store_state_t *s, int (*emit)(void *arg, const store_rec_t *r),
                         void *arg);

/* The live state of an open store (store.c): restore and dump read it before the writer runs. */
struct store;
store_state_t *store_state_of(struct store *st);
/* One round of the writer's work (write, fsync per policy, acks, compaction check) in the
 * calling thread; only while the writer thread is not running (tests). */
void store_writer_round(struct store *st);
/* Whether the writer has written every operation queued so far (a compaction may still be
 * running). For tests. */
bool store_caught_up(struct store *st);

/* ---- files (store_file.c) ------------------------------------------------------------------- */

typedef struct {
    uint64_t file_bytes;    /* size of the file as found */
    uint64_t valid_bytes;   /* up to the end of the last good record */
    uint64_t records;
    uint64_t dropped_bytes; /* torn tail */
} store_replay_t;

/* Reads and replays a store file into s. A missing file is an empty store. A torn or corrupt
 * last record is cut (the file truncated, unless read_only) and reported in info; any other
 * damage is an error with the file and offset in err. 0 or -1. */
int store_file_replay(const char *path, store_state_t *s, bool read_only, store_replay_t *info,
                      char *err, size_t cap);
/* Writes a snapshot of s to path (through path.tmp, fsync, rename, fsync of the directory).
 * Returns the open descriptor of the new file positioned at its end, or -1 with err. */
int store_file_write_snapshot(const char *path, store_state_t *s, uint64_t *size, char *err,
                              size_t cap);

#endif
