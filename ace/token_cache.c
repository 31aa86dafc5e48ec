/*
 * ace/token_cache.c: open-addressed table of verified claims keyed by token digest. See
 * token_cache.h. The digest is a SHA-256 of attacker-chosen bytes, so its first bytes are a fine hash.
 */
#include "ace/token_cache.h"

#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ace/token_int.h"

#define PROBE 8

typedef struct {
    int used;
    int64_t expires;
    ace_claims_t claims;
} entry_t;

struct ace_token_cache {
    pthread_mutex_t mu;
    entry_t *e;
    size_t mask;
    int64_t max_age;
};

ace_token_cache_t *ace_token_cache_new(size_t capacity, int64_t max_age)
{
    size_t cap = 16;
    while (cap < capacity && cap < ((size_t)1 << 24))
        cap <<= 1;
    ace_token_cache_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->e = calloc(cap, sizeof(entry_t));
    if (!c->e || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->e);
        free(c);
        return NULL;
    }
    c->mask = cap - 1;
    c->max_age = max_age > 0 ? max_age : 3600;
    return c;
}

static void drop(entry_t *e)
{
    ace_claims_free(&e->claims);
    e->used = 0;
}

void ace_token_cache_clear(ace_token_cache_t *c)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i <= c->mask; i++)
        if (c->e[i].used)
            drop(&c->e[i]);
    pthread_mutex_unlock(&c->mu);
}

void ace_token_cache_free(ace_token_cache_t *c)
{
    if (!c)
        return;
    ace_token_cache_clear(c);
    pthread_mutex_destroy(&c->mu);
    free(c->e);
    free(c);
}

static size_t slot_of(const ace_token_cache_t *c, const uint8_t d[32])
{
    size_t h = 0;
    for (size_t i = 0; i < sizeof(size_t); i++)
        h = h << 8 | d[i];
    return h & c->mask;
}

int ace_token_cache_get(ace_token_cache_t *c, const uint8_t digest[32], int64_t now,
                        ace_claims_t *out)
{
    int hit = 0;
    size_t s = slot_of(c, digest);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < PROBE; i++) {
        entry_t *e = &c->e[(s + i) & c->mask];
        if (!e->used || memcmp(e->claims.digest, digest, 32) != 0)
            continue;
        if (now >= e->expires)
            drop(e);
        else
            hit = ace_claims_copy(out, &e->claims) == 0;
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

int ace_token_cache_put(ace_token_cache_t *c, const ace_claims_t *claims, int64_t now,
                        int64_t expires)
{
    if (expires > now + c->max_age)
        expires = now + c->max_age;
    if (expires <= now)
        return 0;
    size_t s = slot_of(c, claims->digest);
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    entry_t *victim = NULL;
    for (size_t i = 0; i < PROBE; i++) { /* the same token, a free or dead slot, else soonest out */
        entry_t *e = &c->e[(s + i) & c->mask];
        if (e->used && memcmp(e->claims.digest, claims->digest, 32) == 0) {
            victim = e;
            break;
        }
        if (!e->used || now >= e->expires) {
            if (!victim || victim->used)
                victim = e;
        } else if (!victim || (victim->used && e->expires < victim->expires)) {
            victim = e;
        }
    }
    if (victim->used)
        drop(victim);
    rc = ace_claims_copy(&victim->claims, claims);
    victim->used = rc == 0;
    victim->expires = expires;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int ace_token_verify_cached(ace_token_cache_t *c, const ace_trust_t *t, const uint8_t *tok,
                            size_t len, int64_t now, ace_claims_t *out)
{
    uint8_t d[32];
    if (!c || !tok || !out)
        return ace_token_verify(t, tok, len, now, out);
    memset(out, 0, sizeof(*out));
    if (len == 0 || mbedtls_sha256_ret(tok, len, d, 0) != 0)
        return ace_token_verify(t, tok, len, now, out);
    /* nbf/iat passed when the entry was stored and only get easier with time; exp (plus the same
     * skew ace_token_verify allows) bounds the entry's life. */
    if (ace_token_cache_get(c, d, now, out))
        return 0;
    int rc = ace_token_verify(t, tok, len, now, out);
    if (rc == 0)
        (void)ace_token_cache_put(c, out, now, out->has_exp ? out->exp + t->skew : now + c->max_age);
    return rc;
}
