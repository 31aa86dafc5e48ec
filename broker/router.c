/*
 * broker/router.c: the subscription trie (see router.h for the contract and the locking rule).
 *
 * Each node is one filter level. Literal children sit in a dense array; once a node has many of
 * them (a level of device ids) a position index (open addressing) is added so that the lookup
 * done for every PUBLISH level stays O(1). '+' and '#' children have their own pointers, so a
 * match follows at most three edges per node and allocates nothing. A node holds the ordinary
 * subscriptions of the filter ending there and its shared groups, each a set of owners; the sets
 * also grow an owner index once large, so that many clients subscribing one filter is not
 * quadratic.
 */
#include "broker/router.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Past these sizes a linear scan loses to a hash probe. */
#define SMALL_KIDS 8
#define SMALL_SET 16

/* ---- Position index: open addressing over a dense array ------------------------------------
 * Slots hold position+1 (0 = empty) into an array owned by the caller, so the index survives the
 * array's realloc. Linear probing with backward-shift deletion: no tombstones, so lookups stay
 * short under subscribe/unsubscribe churn. The caller supplies the hash of the key at a position.
 */
typedef struct {
    uint32_t *slot;
    uint32_t mask; /* capacity - 1; slot == NULL when unused */
} pindex_t;

typedef uint32_t (*home_fn)(const void *ctx, uint32_t pos);

/* Rebuilds for n entries at a load of at most 1/2. */
static int pindex_build(pindex_t *x, uint32_t n, home_fn home, const void *ctx)
{
    uint32_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    uint32_t *s = calloc(cap, sizeof *s);
    if (!s)
        return -ENOMEM;
    free(x->slot);
    x->slot = s;
    x->mask = cap - 1;
    for (uint32_t p = 0; p < n; p++) {
        uint32_t i = home(ctx, p) & x->mask;
        while (s[i])
            i = (i + 1) & x->mask;
        s[i] = p + 1;
    }
    return 0;
}

/* The slot holding `pos` (which must be present). */
static uint32_t pindex_slot_of(const pindex_t *x, uint32_t hash, uint32_t pos)
{
    uint32_t i = hash & x->mask;
    while (x->slot[i] != pos + 1)
        i = (i + 1) & x->mask;
    return i;
}

static void pindex_erase(pindex_t *x, uint32_t hash, uint32_t pos, home_fn home, const void *ctx)
{
    uint32_t i = pindex_slot_of(x, hash, pos), j = i;
    for (;;) {
        x->slot[i] = 0;
        for (;;) {
            j = (j + 1) & x->mask;
            if (!x->slot[j])
                return;
            uint32_t k = home(ctx, x->slot[j] - 1) & x->mask;
            /* The entry at j may move back to i only if its home is not cyclically in (i, j]. */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        x->slot[i] = x->slot[j];
        i = j;
    }
}

/* ---- Owner sets ------------------------------------------------------------------------------ */

typedef struct {
    void *owner;
    uint32_t sub_id;
    uint8_t options;
} entry_t;

typedef struct {
    entry_t *v;
    uint32_t n, cap;
    pindex_t idx;
} subset_t;

static uint32_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static uint32_t owner_home(const void *ctx, uint32_t pos)
{
    return ptr_hash(((const subset_t *)ctx)->v[pos].owner);
}

static void set_clear(subset_t *s)
{
    free(s->v);
    free(s->idx.slot);
    memset(s, 0, sizeof *s);
}

/* Position of owner in s, or UINT32_MAX. */
static uint32_t set_find(const subset_t *s, const void *owner)
{
    if (!s->idx.slot) {
        for (uint32_t p = 0; p < s->n; p++)
            if (s->v[p].owner == owner)
                return p;
        return UINT32_MAX;
    }
    for (uint32_t i = ptr_hash(owner) & s->idx.mask; s->idx.slot[i]; i = (i + 1) & s->idx.mask)
        if (s->v[s->idx.slot[i] - 1].owner == owner)
            return s->idx.slot[i] - 1;
    return UINT32_MAX;
}

/* Appends e (whose owner is not in s). Nothing changes on failure. */
static int set_add(subset_t *s, entry_t e)
{
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 2;
        entry_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n] = e;
    if (s->n + 1 >= SMALL_SET && (!s->idx.slot || 2 * (s->n + 1) > s->idx.mask)) {
        if (pindex_build(&s->idx, s->n + 1, owner_home, s) < 0)
            return -ENOMEM;
    } else if (s->idx.slot) {
        uint32_t i = ptr_hash(e.owner) & s->idx.mask;
        while (s->idx.slot[i])
            i = (i + 1) & s->idx.mask;
        s->idx.slot[i] = s->n + 1;
    }
    s->n++;
    return 0;
}

/* Removes position p; the last entry moves into its place. */
static void set_del(subset_t *s, uint32_t p)
{
    uint32_t last = s->n - 1;
    if (s->idx.slot) {
        pindex_erase(&s->idx, ptr_hash(s->v[p].owner), p, owner_home, s);
        if (p != last)
            s->idx.slot[pindex_slot_of(&s->idx, ptr_hash(s->v[last].owner), last)] = p + 1;
    }
    s->v[p] = s->v[last];
    if (--s->n == 0)
        set_clear(s);
}

/* ---- Trie nodes ------------------------------------------------------------------------------ */

typedef struct {
    subset_t members;
    atomic_uint next; /* round-robin cursor, bumped by concurrent readers */
    size_t len;
    char name[];
} group_t;

typedef struct node node_t;
struct node {
    node_t *parent;
    node_t *plus, *hash; /* the '+' and '#' children */
    node_t **kids;       /* literal children, dense */
    uint32_t nkids, kcap;
    pindex_t kidx; /* over kids, once nkids > SMALL_KIDS */
    subset_t subs; /* ordinary subscriptions of the filter ending here */
    group_t **groups;
    uint32_t ngroups;
    uint32_t h; /* hash of level */
    size_t len;
    char level[];
};

struct router {
    pthread_rwlock_t lock;
    node_t *root;
    atomic_size_t count, nodes;
};

static uint32_t level_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a: short keys, cheap and good enough with linear probing */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint32_t kid_home(const void *ctx, uint32_t pos)
{
    return ((const node_t *)ctx)->kids[pos]->h;
}

static node_t *find_kid(const node_t *n, const char *s, size_t len)
{
    if (!n->kidx.slot) {
        for (uint32_t p = 0; p < n->nkids; p++) {
            const node_t *k = n->kids[p];
            if (k->len == len && memcmp(k->level, s, len) == 0)
                return n->kids[p];
        }
        return NULL;
    }
    const uint32_t *slot = n->kidx.slot;
    for (uint32_t i = level_hash(s, len) & n->kidx.mask; slot[i]; i = (i + 1) & n->kidx.mask) {
        node_t *k = n->kids[slot[i] - 1];
        if (k->len == len && memcmp(k->level, s, len) == 0)
            return k;
    }
    return NULL;
}

static node_t *node_new(router_t *r, node_t *parent, const char *s, size_t len)
{
    node_t *n = calloc(1, sizeof *n + len + 1);
    if (!n)
        return NULL;
    n->parent = parent;
    n->len = len;
    memcpy(n->level, s, len);
    n->h = level_hash(s, len);
    atomic_fetch_add_explicit(&r->nodes, 1, memory_order_relaxed);
    return n;
}

/* Links k as a literal child of n. Nothing changes on failure. */
static int add_kid(node_t *n, node_t *k)
{
    if (n->nkids == n->kcap) {
        uint32_t cap = n->kcap ? n->kcap * 2 : 4;
        node_t **v = realloc(n->kids, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        n->kids = v;
        n->kcap = cap;
    }
    n->kids[n->nkids] = k;
    if (n->nkids + 1 > SMALL_KIDS && (!n->kidx.slot || 2 * (n->nkids + 1) > n->kidx.mask)) {
        if (pindex_build(&n->kidx, n->nkids + 1, kid_home, n) < 0)
            return -ENOMEM;
    } else if (n->kidx.slot) {
        uint32_t i = k->h & n->kidx.mask;
        while (n->kidx.slot[i])
            i = (i + 1) & n->kidx.mask;
        n->kidx.slot[i] = n->nkids + 1;
    }
    n->nkids++;
    return 0;
}

static void unlink_kid(node_t *n, node_t *k)
{
    if (n->plus == k) {
        n->plus = NULL;
        return;
    }
    if (n->hash == k) {
        n->hash = NULL;
        return;
    }
    uint32_t p = 0, last = n->nkids - 1;
    while (n->kids[p] != k)
        p++;
    if (n->kidx.slot) {
        pindex_erase(&n->kidx, k->h, p, kid_home, n);
        if (p != last)
            n->kidx.slot[pindex_slot_of(&n->kidx, n->kids[last]->h, last)] = p + 1;
    }
    n->kids[p] = n->kids[last];
    if (--n->nkids == 0) {
        free(n->kids);
        free(n->kidx.slot);
        n->kids = NULL;
        n->kidx.slot = NULL;
        n->kcap = 0;
    }
}

static bool node_empty(const node_t *n)
{
    return !n->subs.n && !n->ngroups && !n->nkids && !n->plus && !n->hash;
}

static void node_free(router_t *r, node_t *n)
{
    for (uint32_t i = 0; i < n->ngroups; i++) {
        set_clear(&n->groups[i]->members);
        free(n->groups[i]);
    }
    free(n->groups);
    set_clear(&n->subs);
    free(n->kids);
    free(n->kidx.slot);
    free(n);
    atomic_fetch_sub_explicit(&r->nodes, 1, memory_order_relaxed);
}

/* Frees n and its ancestors while they hold nothing (the root stays). */
static void prune(router_t *r, node_t *n)
{
    while (n && n != r->root && node_empty(n)) {
        node_t *p = n->parent;
        unlink_kid(p, n);
        node_free(r, n);
        n = p;
    }
}

static void free_tree(router_t *r, node_t *n)
{
    if (!n)
        return;
    for (uint32_t i = 0; i < n->nkids; i++)
        free_tree(r, n->kids[i]);
    free_tree(r, n->plus);
    free_tree(r, n->hash);
    node_free(r, n);
}

/* ---- Filters --------------------------------------------------------------------------------- */

/* A filter after any $share prefix, with its group (glen == 0: not shared). */
typedef struct {
    const char *f, *group;
    size_t len, glen;
} parsed_t;

static bool filter_ok(const char *f, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (f[i] != '+' && f[i] != '#')
            continue;
        bool alone = (i == 0 || f[i - 1] == '/') && (i + 1 == len || f[i + 1] == '/');
        if (!alone || (f[i] == '#' && i + 1 != len))
            return false;
    }
    return true;
}

static int parse_filter(const char *f, size_t len, parsed_t *out)
{
    static const char share[] = "$share/";
    out->f = f;
    out->len = len;
    out->group = NULL;
    out->glen = 0;
    if (len >= sizeof share - 1 && memcmp(f, share, sizeof share - 1) == 0) {
        const char *g = f + sizeof share - 1, *end = f + len;
        const char *sl = memchr(g, '/', (size_t)(end - g));
        if (!sl || sl == g || memchr(g, '+', (size_t)(sl - g)) || memchr(g, '#', (size_t)(sl - g)))
            return -EINVAL;
        out->group = g;
        out->glen = (size_t)(sl - g);
        out->f = sl + 1;
        out->len = (size_t)(end - out->f);
    }
    return filter_ok(out->f, out->len) ? 0 : -EINVAL;
}

/*
 * The node of a filter, created along the way when `create`. NULL when absent, or on -ENOMEM
 * (in which case nodes created here are already pruned).
 */
static node_t *walk(router_t *r, const char *f, size_t len, bool create)
{
    node_t *n = r->root;
    const char *p = f, *end = f + len;
    for (;;) {
        const char *sl = memchr(p, '/', (size_t)(end - p));
        size_t l = (size_t)((sl ? sl : end) - p);
        node_t **wild = NULL, *k;
        if (l == 1 && (*p == '+' || *p == '#'))
            wild = *p == '+' ? &n->plus : &n->hash;
        k = wild ? *wild : find_kid(n, p, l);
        if (!k && create) {
            k = node_new(r, n, p, l);
            if (k && wild) {
                *wild = k;
            } else if (k && add_kid(n, k) < 0) {
                node_free(r, k);
                k = NULL;
            }
            if (!k)
                prune(r, n);
        }
        if (!k || !sl)
            return k;
        n = k;
        p = sl + 1;
    }
}

static group_t *find_group(const node_t *n, const char *g, size_t len, uint32_t *pos)
{
    for (uint32_t i = 0; i < n->ngroups; i++) {
        group_t *x = n->groups[i];
        if (x->len == len && memcmp(x->name, g, len) == 0) {
            if (pos)
                *pos = i;
            return x;
        }
    }
    return NULL;
}

static group_t *add_group(node_t *n, const char *g, size_t len)
{
    group_t **v = realloc(n->groups, (n->ngroups + 1) * sizeof *v);
    if (!v)
        return NULL;
    n->groups = v;
    group_t *x = calloc(1, sizeof *x + len + 1);
    if (!x)
        return NULL;
    memcpy(x->name, g, len);
    x->len = len;
    atomic_init(&x->next, 0);
    v[n->ngroups++] = x;
    return x;
}

static void del_group(node_t *n, uint32_t pos)
{
    set_clear(&n->groups[pos]->members);
    free(n->groups[pos]);
    n->groups[pos] = n->groups[--n->ngroups];
    if (n->ngroups == 0) {
        free(n->groups);
        n->groups = NULL;
    }
}

/* ---- Public face ----------------------------------------------------------------------------- */

router_t *router_new(void)
{
    router_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
#ifdef __GLIBC__
    /* Under load readers almost always hold the lock; without this a SUBSCRIBE could wait
     * forever. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    int rc = pthread_rwlock_init(&r->lock, &a);
    pthread_rwlockattr_destroy(&a);
    atomic_init(&r->count, 0);
    atomic_init(&r->nodes, 0);
    if (rc == 0 && (r->root = node_new(r, NULL, "", 0)) != NULL)
        return r;
    if (rc == 0)
        pthread_rwlock_destroy(&r->lock);
    free(r);
    return NULL;
}

void router_free(router_t *r)
{
    if (!r)
        return;
    free_tree(r, r->root);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

/* Under the write lock: adds or replaces in node n. */
static int subscribe_at(router_t *r, node_t *n, const parsed_t *pf, entry_t e, int *existed)
{
    group_t *g = NULL;
    subset_t *s = &n->subs;
    if (pf->glen) {
        g = find_group(n, pf->group, pf->glen, NULL);
        if (!g && !(g = add_group(n, pf->group, pf->glen)))
            return -ENOMEM;
        s = &g->members;
    }
    uint32_t p = set_find(s, e.owner);
    *existed = p != UINT32_MAX;
    if (*existed) {
        s->v[p] = e;
        return 0;
    }
    if (set_add(s, e) < 0) {
        if (g && g->members.n == 0)
            del_group(n, n->ngroups - 1);
        return -ENOMEM;
    }
    atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
    return 0;
}

int router_subscribe(router_t *r, const char *filter, size_t len, void *owner, uint8_t options,
                     uint32_t sub_id, int *existed)
{
    parsed_t pf;
    int dummy, rc;
    if (!existed)
        existed = &dummy;
    *existed = 0;
    if (parse_filter(filter, len, &pf) < 0)
        return -EINVAL;
    entry_t e = {.owner = owner, .sub_id = sub_id, .options = options};
    pthread_rwlock_wrlock(&r->lock);
    node_t *n = walk(r, pf.f, pf.len, true);
    rc = n ? subscribe_at(r, n, &pf, e, existed) : -ENOMEM;
    if (rc < 0 && n)
        prune(r, n);
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

int router_unsubscribe(router_t *r, const char *filter, size_t len, void *owner)
{
    parsed_t pf;
    int rc = -ENOENT;
    if (parse_filter(filter, len, &pf) < 0)
        return -ENOENT;
    pthread_rwlock_wrlock(&r->lock);
    node_t *n = walk(r, pf.f, pf.len, false);
    uint32_t gpos = 0;
    group_t *g = n && pf.glen ? find_group(n, pf.group, pf.glen, &gpos) : NULL;
    subset_t *s = g ? &g->members : n && !pf.glen ? &n->subs : NULL;
    uint32_t p = s ? set_find(s, owner) : UINT32_MAX;
    if (p != UINT32_MAX) {
        set_del(s, p);
        if (g && g->members.n == 0)
            del_group(n, gpos);
        atomic_fetch_sub_explicit(&r->count, 1, memory_order_relaxed);
        prune(r, n);
        rc = 0;
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

typedef struct {
    router_match_cb cb;
    void *arg;
    size_t count;
} match_ctx_t;

/* Reports the subscriptions of the filter ending at n. */
static void report(const node_t *n, match_ctx_t *mc)
{
    router_match_t m = {.shared = 0};
    for (uint32_t i = 0; i < n->subs.n; i++) {
        m.owner = n->subs.v[i].owner;
        m.options = n->subs.v[i].options;
        m.sub_id = n->subs.v[i].sub_id;
        mc->cb(mc->arg, &m);
    }
    mc->count += n->subs.n;
    m.shared = 1;
    for (uint32_t i = 0; i < n->ngroups; i++) {
        group_t *g = n->groups[i];
        /* Relaxed is enough: the cursor only spreads load; the set itself is under the lock. */
        unsigned k = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);
        const entry_t *e = &g->members.v[k % g->members.n];
        m.owner = e->owner;
        m.options = e->options;
        m.sub_id = e->sub_id;
        mc->cb(mc->arg, &m);
        mc->count++;
    }
}

/*
 * n has matched every topic level before p; `rest` says whether a level starts at p (an empty
 * last level starts at end). The literal edge is followed in the loop and only '+' recurses, so
 * the depth is bounded by the '+' levels of the subscribed filters, not by the topic.
 */
static void match_node(const node_t *n, const char *p, const char *end, bool rest,
                       match_ctx_t *mc)
{
    while (n) {
        /* "x/#" matches x itself and everything below it. */
        if (n->hash)
            report(n->hash, mc);
        if (!rest) {
            report(n, mc);
            return;
        }
        const char *sl = memchr(p, '/', (size_t)(end - p));
        size_t l = (size_t)((sl ? sl : end) - p);
        const char *next = sl ? sl + 1 : end;
        if (n->plus)
            match_node(n->plus, next, end, sl != NULL, mc);
        n = find_kid(n, p, l);
        p = next;
        rest = sl != NULL;
    }
}

size_t router_match(router_t *r, const char *topic, size_t len, router_match_cb cb, void *arg)
{
    match_ctx_t mc = {.cb = cb, .arg = arg, .count = 0};
    if (len == 0)
        return 0;
    const char *end = topic + len;
    pthread_rwlock_rdlock(&r->lock);
    if (topic[0] == '$') {
        /* $-topics skip the root's '+' and '#': only a literal first level can match them. */
        const char *sl = memchr(topic, '/', len);
        size_t l = (size_t)((sl ? sl : end) - topic);
        match_node(find_kid(r->root, topic, l), sl ? sl + 1 : end, end, sl != NULL, &mc);
    } else {
        match_node(r->root, topic, end, true, &mc);
    }
    pthread_rwlock_unlock(&r->lock);
    return mc.count;
}

size_t router_count(const router_t *r)
{
    return atomic_load_explicit(&r->count, memory_order_relaxed);
}

size_t router_node_count(const router_t *r)
{
    return atomic_load_explicit(&r->nodes, memory_order_relaxed);
}
