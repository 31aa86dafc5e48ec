/*
 * broker/retain.h: the retained-message store. Maps a topic name to its retained message and
 * answers "which retained messages does this new subscription's filter match", plus a full walk
 * for persistence and $SYS.
 *
 * Matching follows the router's rules (broker/router.h): '/'-separated levels, empty levels are
 * real, '+' is one level, '#' is the parent level and everything below it, and a filter whose
 * first level is '+' or '#' does not match a topic whose first level starts with '$'.
 *
 * Locking rule: one store is shared by every worker thread behind one pthread rwlock (writer
 * preferring on glibc). retain_match, retain_foreach and retain_count only read; retain_set takes
 * the write lock. Callbacks run under the read lock and must not call into the store.
 *
 * Ownership: messages are opaque to the store; it holds one reference per retained message and
 * gives it back through the release function set at creation, which is called outside the lock.
 * Topic and filter strings are copied or read only during the call. Errors are 0 or a negative
 * errno.
 */
#ifndef ACEMQ_BROKER_RETAIN_H
#define ACEMQ_BROKER_RETAIN_H

#include <stddef.h>

typedef struct retain retain_t;

/* An empty store whose messages are handed to `release` when replaced, cleared or freed with
 * the store; NULL when out of memory. */
retain_t *retain_new(void (*release)(void *msg));

/* Releases every message and frees the store. NULL is a no-op. */
void retain_free(retain_t *s);

/*
 * Sets (msg != NULL) or clears (msg == NULL) the retained message of a topic name (no wildcards;
 * validity is the codec's job). On success the store takes over the caller's reference and the
 * message it replaces, if any, is released. Returns 0, -EINVAL for an empty topic, or -ENOMEM,
 * in which case nothing changed and the caller still owns msg. Clearing an absent topic is 0.
 */
int retain_set(retain_t *s, const char *topic, size_t len, void *msg);

typedef void (*retain_cb)(void *arg, const char *topic, size_t topic_len, void *msg);

/*
 * Calls cb for every retained message whose topic matches `filter` (a valid filter without any
 * $share prefix). The topic string and msg are valid only during the call; cb takes its own
 * reference to keep msg. Runs under the read lock. Returns the number of calls.
 */
size_t retain_match(retain_t *s, const char *filter, size_t len, retain_cb cb, void *arg);

/* Retained messages held. */
size_t retain_count(const retain_t *s);

/* Trie nodes held, root included, for $SYS memory figures and for tests of pruning. */
size_t retain_node_count(const retain_t *s);

/* Calls cb for every retained message, in byte order of the topic levels (persistence, $SYS). */
void retain_foreach(retain_t *s, retain_cb cb, void *arg);

#endif
