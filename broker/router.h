/*
 * broker/router.h: the subscription trie. Maps a PUBLISH topic to every subscription whose filter
 * matches it, ordinary and shared ($share/<group>/<filter>), on the hot path of every message.
 *
 * Topics and filters are split on '/'; empty levels are real levels ("a//b" has 3 levels, "/a"
 * has 2). '+' matches exactly one level, '#' (last) matches the parent level and everything below
 * it ("a/#" matches "a", "a/b", "a/b/c"). A topic whose first level starts with '$' is not matched
 * by a filter whose first level is '+' or '#' ("$SYS/x" is matched by "$SYS/#", not by "#").
 *
 * Locking rule: one router is shared by every worker thread behind one pthread rwlock.
 * router_match takes the read lock (workers match concurrently); router_subscribe and
 * router_unsubscribe take the write lock. The lock prefers writers (glibc), so a flood of PUBLISH
 * cannot starve SUBSCRIBE; as a consequence the match callback must never call back into the
 * router (a re-entrant read lock deadlocks behind a waiting writer). Shared-group round-robin
 * cursors are C11 atomics, bumped under the read lock.
 *
 * Ownership: `owner` is an opaque pointer (the session), never dereferenced. The caller must
 * unsubscribe an owner's filters before freeing it. Filter and topic strings are copied or read
 * only during the call. Errors are 0 or a negative errno.
 */
#ifndef ACEMQ_BROKER_ROUTER_H
#define ACEMQ_BROKER_ROUTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct router router_t;

/* Subscription options byte, as in MQTT 5 SUBSCRIBE (MQTT 3.1.1 uses the QoS bits only). */
#define ROUTER_OPT_QOS_MASK 0x03u
#define ROUTER_OPT_NO_LOCAL 0x04u
#define ROUTER_OPT_RAP 0x08u /* retain as published */
#define ROUTER_OPT_RH_SHIFT 4 /* retain handling, bits 4-5 */
#define ROUTER_OPT_RH_MASK 0x30u

/* An empty router, or NULL when out of memory. */
router_t *router_new(void);

/* Frees the router and every subscription it holds (owners are not touched). NULL is a no-op. */
void router_free(router_t *r);

/*
 * Adds a subscription, or replaces the one with the same owner and the same full filter string
 * (including any "$share/<group>/" prefix). `options` is the MQTT subscription options byte
 * (ROUTER_OPT_*), `sub_id` the MQTT 5 subscription identifier or 0. When `existed` is not NULL it
 * is set to 1 if a subscription was replaced, else 0. A filter "$share/<group>/<filter>" joins
 * the shared group <group> of <filter>. Returns 0, -EINVAL for a malformed filter (empty, '+' or
 * '#' not alone in their level, '#' not last, empty or wildcard group name) or -ENOMEM (nothing
 * changed). UTF-8 validity is the codec's job (proto_topic_filter_valid), not checked here.
 */
int router_subscribe(router_t *r, const char *filter, size_t len, void *owner, uint8_t options,
                     uint32_t sub_id, int *existed);

/* Removes the owner's subscription to this full filter string. Returns 0 or -ENOENT (none held,
 * including a malformed filter). Trie nodes left empty are freed. */
int router_unsubscribe(router_t *r, const char *filter, size_t len, void *owner);

typedef struct {
    void *owner;
    uint8_t options;
    uint32_t sub_id;
    int shared; /* 1 when delivered as the chosen member of a shared group */
} router_match_t;

typedef void (*router_match_cb)(void *arg, const router_match_t *m);

/*
 * Calls cb once per matching subscription: every ordinary subscription whose filter matches
 * `topic` (an owner with overlapping filters is reported once per filter), and for each shared
 * group whose filter matches, exactly one member, chosen round robin. `m` is valid only during
 * the call. cb runs under the read lock and must not call into the router. Does not allocate.
 * Returns the number of calls made. An empty topic matches nothing.
 */
size_t router_match(router_t *r, const char *topic, size_t len, router_match_cb cb, void *arg);

/* Subscriptions held (each shared-group membership counts as one). */
size_t router_count(const router_t *r);

/* Trie nodes held, root included, for $SYS memory figures and for tests of pruning. */
size_t router_node_count(const router_t *r);

#endif
