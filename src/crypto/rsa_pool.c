/* SPDX-License-Identifier: Apache-2.0 */
/* Pre-generated RSA keys, refilled off the request path (rsa_pool.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rsa.h>

#include "common/alloc.h"
#include "crypto/key.h"
#include "crypto/rsa_pool.h"

struct mr_rsa_pool {
    pthread_mutex_t mu;
    pthread_cond_t refill; /* the refiller waits here for room (or quit) */
    pthread_cond_t ready;  /* mr_rsa_pool_wait_ready waits here */
    EVP_PKEY **keys;
    size_t n;
    size_t capacity;
    unsigned bits;
    bool armed; /* the first take of the pool's size starts the refilling */
    atomic_bool quit;
    bool started;
    pthread_t thread;
    mr_rsa_pool_stats st;
};

static _Atomic(mr_rsa_pool *) g_default;

static int keygen_cb(EVP_PKEY_CTX *ctx)
{
    mr_rsa_pool *p = EVP_PKEY_CTX_get_app_data(ctx);
    return p != NULL && atomic_load(&p->quit) ? 0 : 1; /* 0 aborts the generation */
}

/* One key; abortable when p is given (the refiller). */
static EVP_PKEY *generate(unsigned bits, mr_rsa_pool *p)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL)
        return NULL;
    if (EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1) {
        if (p != NULL) {
            EVP_PKEY_CTX_set_app_data(ctx, p);
            EVP_PKEY_CTX_set_cb(ctx, keygen_cb);
        }
        if (EVP_PKEY_generate(ctx, &key) != 1)
            key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static void *refiller(void *arg)
{
    mr_rsa_pool *p = arg;
    /* Lowest priority: generation must use idle time, not the activations' CPU. Best effort. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    pthread_mutex_lock(&p->mu);
    while (!atomic_load(&p->quit)) {
        if (p->n >= p->capacity) {
            pthread_cond_wait(&p->refill, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        EVP_PKEY *key = generate(p->bits, p);
        pthread_mutex_lock(&p->mu);
        if (key == NULL) {
            if (atomic_load(&p->quit))
                break;
            /* a failed generation (out of memory, entropy): retry after a second, no spin */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            (void)pthread_cond_timedwait(&p->refill, &p->mu, &ts);
            continue;
        }
        if (p->n < p->capacity && !atomic_load(&p->quit)) {
            p->keys[p->n++] = key;
            p->st.generated++;
            pthread_cond_broadcast(&p->ready);
        } else {
            EVP_PKEY_free(key);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

MR_RESULT mr_rsa_pool_new(unsigned bits, size_t capacity, mr_rsa_pool **out)
{
    mr_result res = MR_FAILURE;
    mr_rsa_pool *p = NULL;
    MR_ENSURE(bits >= 1024 && bits <= MR_RSA_MAX_BITS, MR_ERR_USAGE,
              "unsupported RSA key size %u for the key pool", bits);
    MR_ENSURE(capacity >= 1 && capacity <= MR_RSA_POOL_MAX_CAPACITY, MR_ERR_USAGE,
              "RSA key pool capacity must be 1..%d", MR_RSA_POOL_MAX_CAPACITY);
    p = mr_calloc(1, sizeof(*p));
    MR_ENSURE_ALLOC(p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->refill, NULL);
    pthread_cond_init(&p->ready, NULL);
    p->bits = bits;
    p->capacity = capacity;
    p->keys = mr_calloc(capacity, sizeof(EVP_PKEY *));
    MR_ENSURE_ALLOC_OUT(p->keys);
    *out = p;
    p = NULL;
    res = MR_SUCCESS;
out:
    mr_rsa_pool_free(p);
    return res;
}

void mr_rsa_pool_free(mr_rsa_pool *p)
{
    if (p == NULL)
        return;
    mr_rsa_pool *self = p;
    (void)atomic_compare_exchange_strong(&g_default, &self, NULL);
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->refill);
    pthread_cond_broadcast(&p->ready);
    bool started = p->started;
    pthread_mutex_unlock(&p->mu);
    if (started)
        pthread_join(p->thread, NULL);
    if (p->keys != NULL)
        for (size_t i = 0; i < p->n; i++)
            EVP_PKEY_free(p->keys[i]); /* RSA_free clears d, p, q, dP, dQ, qInv */
    mr_free(p->keys);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->refill);
    pthread_cond_destroy(&p->ready);
    mr_free(p);
}

/* Under p->mu. Starting the thread can fail: then the pool stays empty and every take is
 * inline, as without a pool. */
static void arm(mr_rsa_pool *p)
{
    if (p->armed)
        return;
    p->armed = true;
    p->started = pthread_create(&p->thread, NULL, refiller, p) == 0;
}

MR_RESULT mr_rsa_pool_take(mr_rsa_pool *p, unsigned bits, EVP_PKEY **out)
{
    if (p == NULL || bits != p->bits)
        return mr_key_generate(MR_KEY_RSA, bits, out);
    EVP_PKEY *key = NULL;
    pthread_mutex_lock(&p->mu);
    arm(p);
    if (p->n > 0) {
        key = p->keys[--p->n];
        p->keys[p->n] = NULL;
        p->st.hits++;
    } else {
        p->st.misses++;
    }
    pthread_cond_signal(&p->refill);
    pthread_mutex_unlock(&p->mu);
    if (key == NULL) {
        /* empty: generate inline, the same cost and result as without the pool */
        key = generate(bits, NULL);
        MR_ENSURE_OSSL(key != NULL, MR_ERR_INTERNAL, "key generation failed");
    }
    *out = key;
    return MR_SUCCESS;
}

void mr_rsa_pool_stats_get(mr_rsa_pool *p, mr_rsa_pool_stats *st)
{
    pthread_mutex_lock(&p->mu);
    *st = p->st;
    st->ready = p->n;
    pthread_mutex_unlock(&p->mu);
}

bool mr_rsa_pool_wait_ready(mr_rsa_pool *p, size_t n, unsigned timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    arm(p);
    pthread_cond_signal(&p->refill);
    int rc = 0;
    while (p->n < n && rc != ETIMEDOUT && !atomic_load(&p->quit))
        rc = pthread_cond_timedwait(&p->ready, &p->mu, &ts);
    bool ok = p->n >= n;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void mr_rsa_pool_set_default(mr_rsa_pool *p)
{
    atomic_store(&g_default, p);
}

mr_rsa_pool *mr_rsa_pool_default(void)
{
    return atomic_load(&g_default);
}
