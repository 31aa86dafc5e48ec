/*
 * broker/registry.c: client identifier -> session, for every session the broker keeps
 * (connected or not). One mutex guards the table; it is taken on CONNECT, on session end and
 * for counts, never per message.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/core.h"

struct registry {
    pthread_mutex_t lock;
    session_t **buckets;
    size_t n_buckets, count;
};

static size_t hash_id(const char *id, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)id[i]) * 1099511628211ull;
    return (size_t)h;
}

registry_t *registry_new(void)
{
    registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->n_buckets = 1024;
    r->buckets = calloc(r->n_buckets, sizeof *r->buckets);
    if (!r->buckets) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void registry_free(registry_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_buckets; i++) {
        session_t *s = r->buckets[i];
        while (s) {
            session_t *next = s->hnext;
            session_unref(s);
            s = next;
        }
    }
    free(r->buckets);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void registry_lock(registry_t *r)
{
    pthread_mutex_lock(&r->lock);
}

void registry_unlock(registry_t *r)
{
    pthread_mutex_unlock(&r->lock);
}

session_t *registry_find(registry_t *r, const char *id, size_t len)
{
    for (session_t *s = r->buckets[hash_id(id, len) % r->n_buckets]; s; s = s->hnext)
        if (s->id_len == len && memcmp(s->client_id, id, len) == 0)
            return s;
    return NULL;
}

static void grow(registry_t *r)
{
    size_t n = r->n_buckets * 2;
    session_t **b = calloc(n, sizeof *b);
    if (!b)
        return; /* keep the longer chains; still correct */
    for (size_t i = 0; i < r->n_buckets; i++) {
        session_t *s = r->buckets[i];
        while (s) {
            session_t *next = s->hnext;
            size_t h = hash_id(s->client_id, s->id_len) % n;
            s->hnext = b[h];
            b[h] = s;
            s = next;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->n_buckets = n;
}

int registry_add(registry_t *r, session_t *s)
{
    if (r->count >= r->n_buckets * 2)
        grow(r);
    size_t h = hash_id(s->client_id, s->id_len) % r->n_buckets;
    s->hnext = r->buckets[h];
    r->buckets[h] = session_ref(s);
    s->registered = true;
    r->count++;
    return 0;
}

void registry_remove(registry_t *r, session_t *s)
{
    session_t **pp = &r->buckets[hash_id(s->client_id, s->id_len) % r->n_buckets];
    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == s) {
            *pp = s->hnext;
            s->hnext = NULL;
            s->registered = false;
            r->count--;
            session_unref(s);
            return;
        }
    }
}

size_t registry_count(registry_t *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->count;
    pthread_mutex_unlock(&r->lock);
    return n;
}

bool session_discard_offline(broker_t *b, session_t *s)
{
    registry_lock(b->registry);
    session_lock(s);
    bool gone = !s->conn && s->registered;
    session_unlock(s);
    if (gone)
        registry_remove(b->registry, s);
    registry_unlock(b->registry);
    if (gone)
        session_clear(b, s);
    return gone;
}
