/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/certcache.h"

#include <openssl/err.h>
#include <pthread.h>
#include <string.h>

#include "common/alloc.h"
#include "crypto/hash.h"
#include "crypto/x509.h"

typedef struct entry {
    uint8_t key[MR_SHA256_LEN];
    X509 *cert;
    struct entry *hnext;             /* bucket chain */
    struct entry *prev, *next;       /* LRU list, most recent at head */
} entry;

struct mr_certcache {
    pthread_mutex_t mu;
    entry **buckets;
    size_t nbuckets; /* power of two */
    entry *head, *tail;
    size_t size, capacity;
    mr_certcache_stats stats;
};

mr_result mr_certcache_new(size_t capacity, mr_certcache **out)
{
    MR_ENSURE(capacity >= 1 && capacity <= 65536, MR_ERR_USAGE,
              "certificate cache capacity %zu out of range", capacity);
    mr_certcache *c = mr_calloc(1, sizeof(*c));
    MR_ENSURE_ALLOC(c);
    c->nbuckets = 16;
    while (c->nbuckets < capacity)
        c->nbuckets <<= 1;
    c->buckets = mr_calloc(c->nbuckets, sizeof(*c->buckets)); // NOLINT(bugprone-sizeof-expression): array of pointers
    if (c->buckets == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        mr_free(c->buckets);
        mr_free(c);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    c->capacity = capacity;
    *out = c;
    return MR_SUCCESS;
}

void mr_certcache_free(mr_certcache *c)
{
    if (c == NULL)
        return;
    for (entry *e = c->head, *n; e != NULL; e = n) {
        n = e->next;
        X509_free(e->cert);
        mr_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    mr_free(c->buckets);
    mr_free(c);
}

static entry **bucket(mr_certcache *c, const uint8_t *key)
{
    size_t h;
    memcpy(&h, key, sizeof(h)); /* the key is a uniform hash already */
    return &c->buckets[h & (c->nbuckets - 1)];
}

static void lru_unlink(mr_certcache *c, entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(mr_certcache *c, entry *e)
{
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

/* Called with the lock held. */
static entry *find(mr_certcache *c, const uint8_t *key)
{
    for (entry *e = *bucket(c, key); e != NULL; e = e->hnext)
        if (memcmp(e->key, key, MR_SHA256_LEN) == 0) /* check-source: allow memcmp -- public digest */
            return e;
    return NULL;
}

static void evict_tail(mr_certcache *c)
{
    entry *e = c->tail;
    entry **pp = bucket(c, e->key);
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    X509_free(e->cert);
    mr_free(e);
    c->size--;
    c->stats.evictions++;
}

/* Looks the key up; on a hit returns a new reference in *out. */
static bool lookup(mr_certcache *c, const uint8_t *key, X509 **out)
{
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, key);
    if (e != NULL) {
        lru_unlink(c, e);
        lru_push_front(c, e);
        X509_up_ref(e->cert);
        *out = e->cert;
        c->stats.hits++;
    } else {
        c->stats.misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return e != NULL;
}

/* Inserts cert (taking one reference from the caller into the cache) unless another thread
 * was faster; returns the cached object with a new reference for the caller in *out. */
static void insert(mr_certcache *c, entry *fresh, X509 **out)
{
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, fresh->key);
    if (e == NULL) {
        if (c->size >= c->capacity)
            evict_tail(c);
        entry **b = bucket(c, fresh->key);
        fresh->hnext = *b;
        *b = fresh;
        lru_push_front(c, fresh);
        c->size++;
        e = fresh;
        fresh = NULL;
    }
    X509_up_ref(e->cert);
    *out = e->cert;
    pthread_mutex_unlock(&c->mu);
    if (fresh != NULL) {
        X509_free(fresh->cert);
        mr_free(fresh);
    }
}

mr_result mr_certcache_get(mr_certcache *c, mr_slice der, X509 **out)
{
    uint8_t key[MR_SHA256_LEN];
    X509 *cert = NULL;
    MR_GUARD(mr_sha256(der.ptr, der.len, key));
    if (lookup(c, key, out))
        return MR_SUCCESS;
    MR_GUARD(mr_x509_from_der(der, &cert));
    (void)X509_get0_pubkey(cert); /* decode the key once, outside the lock */
    ERR_clear_error();
    entry *fresh = mr_calloc(1, sizeof(*fresh));
    if (fresh == NULL) {
        X509_free(cert);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    memcpy(fresh->key, key, sizeof(key));
    fresh->cert = cert;
    insert(c, fresh, out);
    return MR_SUCCESS;
}

void mr_certcache_stats_get(mr_certcache *c, mr_certcache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->size = c->size;
    pthread_mutex_unlock(&c->mu);
}
