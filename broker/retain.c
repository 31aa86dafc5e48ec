/*
 * broker/retain.c: the retained-message store (see retain.h for the contract and locking rule).
 *
 * A trie over topic levels, like the router's, but searched the other way round: the store holds
 * topic names and is queried with a filter. Children are kept sorted by level, found by binary
 * search for a literal filter level and walked in order for '+' and '#'. Sorted arrays suit this
 * side: lookups happen per SUBSCRIBE (not per PUBLISH), updates of an existing topic do not
 * insert, and the order makes retain_foreach deterministic. Each node knows its position among its
 * siblings, so '#' and retain_foreach walk a subtree without recursion, however deep the topics.
 */
#include "broker/retain.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct node node_t;
struct node {
    node_t *parent;
    node_t **kids; /* sorted by level bytes */
    uint32_t nkids, kcap;
    uint32_t pos; /* index in parent->kids */
    void *msg;    /* NULL: no retained message here */
    char *topic;  /* the full topic, kept while msg is set, so callbacks need not rebuild it */
    size_t topic_len;
    size_t len;
    char level[];
};

struct retain {
    pthread_rwlock_t lock;
    void (*release)(void *msg);
    node_t *root;
    atomic_size_t count, nodes;
};

/* ---- Trie nodes ------------------------------------------------------------------------------ */

static int level_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* Index of the child with this level, or where it would be inserted (then *found = false). */
static uint32_t kid_pos(const node_t *n, const char *s, size_t len, bool *found)
{
    uint32_t lo = 0, hi = n->nkids;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = level_cmp(n->kids[mid]->level, n->kids[mid]->len, s, len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static node_t *find_kid(const node_t *n, const char *s, size_t len)
{
    bool found;
    uint32_t p = kid_pos(n, s, len, &found);
    return found ? n->kids[p] : NULL;
}

static void renumber(node_t *n, uint32_t from)
{
    for (uint32_t i = from; i < n->nkids; i++)
        n->kids[i]->pos = i;
}

/* The child of n with this level, created if absent; NULL on -ENOMEM. */
static node_t *get_kid(retain_t *s, node_t *n, const char *lv, size_t len)
{
    bool found;
    uint32_t p = kid_pos(n, lv, len, &found);
    if (found)
        return n->kids[p];
    if (n->nkids == n->kcap) {
        uint32_t cap = n->kcap ? n->kcap * 2 : 2;
        node_t **v = realloc(n->kids, cap * sizeof *v);
        if (!v)
            return NULL;
        n->kids = v;
        n->kcap = cap;
    }
    node_t *k = calloc(1, sizeof *k + len + 1);
    if (!k)
        return NULL;
    k->parent = n;
    k->len = len;
    memcpy(k->level, lv, len);
    memmove(&n->kids[p + 1], &n->kids[p], (n->nkids - p) * sizeof *n->kids);
    n->kids[p] = k;
    n->nkids++;
    renumber(n, p);
    atomic_fetch_add_explicit(&s->nodes, 1, memory_order_relaxed);
    return k;
}

/* Frees n and its ancestors while they hold nothing (the root stays). */
static void prune(retain_t *s, node_t *n)
{
    while (n != s->root && !n->msg && !n->nkids) {
        node_t *p = n->parent;
        memmove(&p->kids[n->pos], &p->kids[n->pos + 1], (p->nkids - n->pos - 1) * sizeof *p->kids);
        p->nkids--;
        renumber(p, n->pos);
        if (!p->nkids) {
            free(p->kids);
            p->kids = NULL;
            p->kcap = 0;
        }
        free(n->kids);
        free(n);
        atomic_fetch_sub_explicit(&s->nodes, 1, memory_order_relaxed);
        n = p;
    }
}

/* The node of a topic name, created along the way when `create`. NULL when absent, or on
 * -ENOMEM (then nodes created here are already pruned). */
static node_t *walk(retain_t *s, const char *t, size_t len, bool create)
{
    node_t *n = s->root;
    const char *p = t, *end = t + len;
    for (;;) {
        const char *sl = memchr(p, '/', (size_t)(end - p));
        size_t l = (size_t)((sl ? sl : end) - p);
        node_t *k = create ? get_kid(s, n, p, l) : find_kid(n, p, l);
        if (!k && create)
            prune(s, n);
        if (!k || !sl)
            return k;
        n = k;
        p = sl + 1;
    }
}

/* ---- Public face ----------------------------------------------------------------------------- */

retain_t *retain_new(void (*release)(void *msg))
{
    retain_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->release = release;
    atomic_init(&s->count, 0);
    atomic_init(&s->nodes, 1);
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
#ifdef __GLIBC__
    /* Subscribers read under load; a PUBLISH with the retain flag must still get its turn. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    int rc = pthread_rwlock_init(&s->lock, &a);
    pthread_rwlockattr_destroy(&a);
    if (rc == 0 && (s->root = calloc(1, sizeof *s->root)) != NULL)
        return s;
    if (rc == 0)
        pthread_rwlock_destroy(&s->lock);
    free(s);
    return NULL;
}

void retain_free(retain_t *s)
{
    if (!s)
        return;
    /* Post-order without recursion: take the last child until a leaf, free it, climb. */
    node_t *n = s->root;
    while (n) {
        if (n->nkids) {
            n = n->kids[--n->nkids];
            continue;
        }
        node_t *p = n->parent;
        if (n->msg && s->release)
            s->release(n->msg);
        free(n->topic);
        free(n->kids);
        free(n);
        n = p;
    }
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

/* Under the write lock: stores msg at the topic's node; *old gets the message to release. */
static int set_locked(retain_t *s, const char *topic, size_t len, void *msg, void **old)
{
    node_t *n = walk(s, topic, len, msg != NULL);
    if (!n)
        return msg ? -ENOMEM : 0;
    if (msg && !n->msg) {
        if (!(n->topic = malloc(len + 1))) {
            prune(s, n);
            return -ENOMEM;
        }
        memcpy(n->topic, topic, len);
        n->topic[len] = '\0';
        n->topic_len = len;
        atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    } else if (!msg && n->msg) {
        free(n->topic);
        n->topic = NULL;
        atomic_fetch_sub_explicit(&s->count, 1, memory_order_relaxed);
    }
    *old = n->msg;
    n->msg = msg;
    if (!msg)
        prune(s, n);
    return 0;
}

int retain_set(retain_t *s, const char *topic, size_t len, void *msg)
{
    void *old = NULL;
    if (len == 0)
        return -EINVAL;
    pthread_rwlock_wrlock(&s->lock);
    int rc = set_locked(s, topic, len, msg, &old);
    pthread_rwlock_unlock(&s->lock);
    /* Outside the lock: releasing may free a large payload, readers need not wait for that. */
    if (old && s->release)
        s->release(old);
    return rc;
}

typedef struct {
    retain_cb cb;
    void *arg;
    size_t count;
} walk_ctx_t;

static void emit(const node_t *n, walk_ctx_t *wc)
{
    if (n->msg) {
        wc->cb(wc->arg, n->topic, n->topic_len, n->msg);
        wc->count++;
    }
}

static bool is_dollar(const node_t *n)
{
    return n->len && n->level[0] == '$';
}

/* Emits start and everything below it, in order; skip_dollar leaves out start's '$' children
 * (a leading '#' must not reach $-topics). */
static void walk_subtree(const node_t *start, bool skip_dollar, walk_ctx_t *wc)
{
    const node_t *n = start;
    uint32_t i = 0; /* next child of n to visit */
    emit(n, wc);
    for (;;) {
        while (skip_dollar && n == start && i < n->nkids && is_dollar(n->kids[i]))
            i++;
        if (i < n->nkids) {
            n = n->kids[i];
            i = 0;
            emit(n, wc);
            continue;
        }
        if (n == start)
            return;
        i = n->pos + 1;
        n = n->parent;
    }
}

/*
 * n has matched every filter level before p; `rest` says whether a level starts at p. Only '+'
 * recurses, so the depth is bounded by the filter's levels.
 */
static void match_node(const retain_t *s, const node_t *n, const char *p, const char *end,
                       bool rest, walk_ctx_t *wc)
{
    while (n) {
        if (!rest) {
            emit(n, wc);
            return;
        }
        const char *sl = memchr(p, '/', (size_t)(end - p));
        size_t l = (size_t)((sl ? sl : end) - p);
        const char *next = sl ? sl + 1 : end;
        bool top = n == s->root; /* wildcards in the first level skip $-topics */
        if (l == 1 && *p == '#') {
            walk_subtree(n, top, wc); /* "a/#" matches "a" too */
            return;
        }
        if (l == 1 && *p == '+') {
            for (uint32_t i = 0; i < n->nkids; i++)
                if (!top || !is_dollar(n->kids[i]))
                    match_node(s, n->kids[i], next, end, sl != NULL, wc);
            return;
        }
        n = find_kid(n, p, l);
        p = next;
        rest = sl != NULL;
    }
}

size_t retain_match(retain_t *s, const char *filter, size_t len, retain_cb cb, void *arg)
{
    walk_ctx_t wc = {.cb = cb, .arg = arg, .count = 0};
    if (len == 0)
        return 0;
    pthread_rwlock_rdlock(&s->lock);
    match_node(s, s->root, filter, filter + len, true, &wc);
    pthread_rwlock_unlock(&s->lock);
    return wc.count;
}

void retain_foreach(retain_t *s, retain_cb cb, void *arg)
{
    walk_ctx_t wc = {.cb = cb, .arg = arg, .count = 0};
    pthread_rwlock_rdlock(&s->lock);
    walk_subtree(s->root, false, &wc);
    pthread_rwlock_unlock(&s->lock);
}

size_t retain_count(const retain_t *s)
{
    return atomic_load_explicit(&s->count, memory_order_relaxed);
}

size_t retain_node_count(const retain_t *s)
{
    return atomic_load_explicit(&s->nodes, memory_order_relaxed);
}
