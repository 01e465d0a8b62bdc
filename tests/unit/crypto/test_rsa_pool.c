/* SPDX-License-Identifier: Apache-2.0 */
/* The RSA key pool (src/crypto/rsa_pool.c): bounded, refilled in the background, every key
 * handed out once, and an exhausted pool under concurrent load still answers every take with
 * a valid fresh key (inline generation), never an error. 1024-bit keys keep the test fast;
 * the Coordinator's pool is 2048. */
#include "mr_test.h"

#include <pthread.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>

#include "crypto/key.h"
#include "crypto/rsa_pool.h"

#define BITS 1024
#define CAP 2
#define THREADS 4
#define PER_THREAD 3

static BIGNUM *modulus(EVP_PKEY *k)
{
    BIGNUM *n = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    return n;
}

static void check_key(EVP_PKEY *k, unsigned bits)
{
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_RSA);
    assert_int_equal(EVP_PKEY_get_bits(k), (int)bits);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_pairwise_check(ctx), 1); /* a usable private key */
    EVP_PKEY_CTX_free(ctx);
}

static void test_lazy_bounded_refill(void **state)
{
    (void)state;
    mr_rsa_pool *p = NULL;
    mr_rsa_pool_stats st;
    MR_ASSERT_OK(mr_rsa_pool_new(BITS, CAP, &p));
    mr_rsa_pool_stats_get(p, &st);
    assert_int_equal(st.ready, 0);
    assert_int_equal(st.generated, 0); /* nothing before the first demand */
    assert_true(mr_rsa_pool_wait_ready(p, CAP, 60000));
    /* bounded: it stops at the capacity */
    mr_rsa_pool_stats_get(p, &st);
    assert_int_equal(st.ready, CAP);
    assert_int_equal(st.generated, CAP);
    EVP_PKEY *k = NULL;
    MR_ASSERT_OK(mr_rsa_pool_take(p, BITS, &k));
    check_key(k, BITS);
    mr_rsa_pool_stats_get(p, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 0);
    /* the taken slot is refilled */
    assert_true(mr_rsa_pool_wait_ready(p, CAP, 60000));
    mr_rsa_pool_stats_get(p, &st);
    assert_int_equal(st.generated, CAP + 1);
    assert_true(st.ready <= CAP);
    EVP_PKEY_free(k);
    mr_rsa_pool_free(p); /* frees the keys never handed out (ASan/LSan check the rest) */
}

typedef struct taker {
    mr_rsa_pool *p;
    EVP_PKEY *keys[PER_THREAD];
    int failures;
} taker;

static void *take_loop(void *arg)
{
    taker *t = arg;
    for (int i = 0; i < PER_THREAD; i++)
        if (!mr_ok(mr_rsa_pool_take(t->p, BITS, &t->keys[i])) || t->keys[i] == NULL)
            t->failures++;
    return NULL;
}

static void test_exhaustion_under_load(void **state)
{
    (void)state;
    mr_rsa_pool *p = NULL;
    mr_rsa_pool_stats st;
    MR_ASSERT_OK(mr_rsa_pool_new(BITS, CAP, &p));
    assert_true(mr_rsa_pool_wait_ready(p, CAP, 60000));
    /* THREADS x PER_THREAD takes at once, six times the capacity: the pool runs dry */
    taker t[THREADS];
    pthread_t th[THREADS];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < THREADS; i++) {
        t[i].p = p;
        assert_int_equal(pthread_create(&th[i], NULL, take_loop, &t[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    mr_rsa_pool_stats_get(p, &st);
    assert_int_equal(st.hits + st.misses, THREADS * PER_THREAD);
    assert_true(st.hits >= CAP);  /* the ready keys were used */
    assert_true(st.misses >= 1);  /* and it was exhausted: those were generated inline */
    assert_true(st.hits <= CAP + st.generated);
    /* every take succeeded with a valid key, and no key was handed out twice */
    BIGNUM *n[THREADS * PER_THREAD];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(t[i].failures, 0);
        for (int j = 0; j < PER_THREAD; j++) {
            check_key(t[i].keys[j], BITS);
            n[i * PER_THREAD + j] = modulus(t[i].keys[j]);
        }
    }
    for (int a = 0; a < THREADS * PER_THREAD; a++)
        for (int b = a + 1; b < THREADS * PER_THREAD; b++)
            assert_int_not_equal(BN_cmp(n[a], n[b]), 0);
    for (int a = 0; a < THREADS * PER_THREAD; a++)
        BN_free(n[a]);
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < PER_THREAD; j++)
            EVP_PKEY_free(t[i].keys[j]);
    mr_rsa_pool_free(p); /* with a generation most likely in progress: aborted, joined */
}

static void test_other_sizes_and_no_pool(void **state)
{
    (void)state;
    mr_rsa_pool *p = NULL;
    EVP_PKEY *k = NULL;
    mr_rsa_pool_stats st;
    MR_ASSERT_OK(mr_rsa_pool_new(BITS, CAP, &p));
    /* another size is generated inline with mr_key_generate's policy, pool untouched */
    MR_ASSERT_FAIL(mr_rsa_pool_take(p, 1536, &k), MR_ERR_USAGE, "unsupported RSA key size");
    assert_null(k);
    mr_rsa_pool_stats_get(p, &st);
    assert_int_equal(st.hits + st.misses, 0);
    assert_int_equal(st.generated, 0);
    /* no pool: inline */
    MR_ASSERT_OK(mr_rsa_pool_take(NULL, 2048, &k));
    check_key(k, 2048);
    EVP_PKEY_free(k);
    /* the default pool is cleared when that pool is freed */
    mr_rsa_pool_set_default(p);
    assert_ptr_equal(mr_rsa_pool_default(), p);
    mr_rsa_pool_free(p);
    assert_null(mr_rsa_pool_default());
    /* bad parameters */
    MR_ASSERT_FAIL(mr_rsa_pool_new(512, CAP, &p), MR_ERR_USAGE, "unsupported RSA key size");
    MR_ASSERT_FAIL(mr_rsa_pool_new(BITS, 0, &p), MR_ERR_USAGE, "capacity");
    MR_ASSERT_FAIL(mr_rsa_pool_new(BITS, MR_RSA_POOL_MAX_CAPACITY + 1, &p), MR_ERR_USAGE,
                   "capacity");
}

static void test_free_while_generating(void **state)
{
    (void)state;
    mr_rsa_pool *p = NULL;
    EVP_PKEY *k = NULL;
    /* 4096-bit generation takes seconds: freeing right after arming aborts it promptly */
    MR_ASSERT_OK(mr_rsa_pool_new(4096, 1, &p));
    assert_false(mr_rsa_pool_wait_ready(p, 1, 1)); /* arms, does not wait for the key */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    mr_rsa_pool_free(p);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(s < 2.0);
    (void)k;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_bounded_refill),
        cmocka_unit_test(test_exhaustion_under_load),
        cmocka_unit_test(test_other_sizes_and_no_pool),
        cmocka_unit_test(test_free_while_generating),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
