/* SPDX-License-Identifier: Apache-2.0 */
/* The secret pool (src/common/secret_pool.c): zeroed blocks, wiped when freed, locked and
 * excluded from core dumps, slabs given back, a wrong size refused, many threads at once. */
#include "mr_test.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/alloc_int.h"

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifdef T_ASAN
#include <sanitizer/asan_interface.h>
#endif

static int setup(void **state)
{
    (void)state;
    mr_secret_pool_set_enabled(true); /* off by default under the sanitizers only */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
#ifdef MR_SANITIZED
    mr_secret_pool_set_enabled(false);
#endif
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static int g_hits;
static const char NEEDLE[] = "secret-pool-needle";

static void scan(const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t k = sizeof(NEEDLE) - 1;
    for (size_t i = 0; n >= k && i <= n - k; i++)
        if (memcmp(b + i, NEEDLE, k) == 0)
            g_hits++;
}

/* Every size is handed out zeroed (also when the block comes back from the free list), and
 * what was written into it is gone when it is released. */
static void test_zeroed_and_wiped(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 31, 32, 33, 100, 4096, 5000, 32768, 32769, 70000};
    mr_alloc_set_release_hook(scan);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < MR_ARRAY_LEN(sizes); i++) {
            size_t n = sizes[i];
            uint8_t *p = mr_secret_alloc(n);
            assert_non_null(p);
            assert_true(all_zero(p, n));
            assert_int_equal((uintptr_t)p % 32, 0);
            if (n > 32768)
                assert_int_equal((uintptr_t)p % 4096, 0); /* the direct path */
            memset(p, 0x5a, n);
            if (n >= sizeof(NEEDLE))
                memcpy(p + n - sizeof(NEEDLE), NEEDLE, sizeof(NEEDLE) - 1);
            g_hits = 0;
            mr_secret_free(p, n);
            assert_int_equal(g_hits, 0);
        }
    }
    mr_alloc_set_release_hook(NULL);
}

/* The VmFlags of the mapping that holds p: "lo" locked, "dd" not in core dumps. */
static void vm_flags_of(const void *p, char *out, size_t size)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false;
    out[0] = '\0';
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo = 0, hi = 0;
        char *end = NULL;
        lo = strtoul(line, &end, 16);
        if (end != NULL && *end == '-') {
            hi = strtoul(end + 1, NULL, 16);
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            (void)snprintf(out, size, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

static void test_locked_and_not_dumped(void **state)
{
    (void)state;
    static const size_t sizes[] = {48, 3000, 32768, 100000};
    for (size_t i = 0; i < MR_ARRAY_LEN(sizes); i++) {
        uint8_t *p = mr_secret_alloc(sizes[i]);
        assert_non_null(p);
        char flags[512];
        vm_flags_of(p, flags, sizeof(flags));
        assert_non_null(strstr(flags, " dd"));
#ifndef MR_SANITIZED
        struct rlimit rl;
        if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur >= ((rlim_t)1 << 20))
            assert_non_null(strstr(flags, " lo")); /* mlock is best effort below 1 MiB */
#endif
        mr_secret_free(p, sizes[i]);
    }
}

/* A burst of blocks maps new slabs; when they are all freed the pool keeps at most one slab
 * per size class. */
static void test_slabs_given_back(void **state)
{
    (void)state;
    enum { N = 5000 };
    static void *blocks[N];
    mr_secret_pool_stats before, peak, after;
    mr_secret_pool_stats_get(&before);
    for (int i = 0; i < N; i++) {
        blocks[i] = mr_secret_alloc(200); /* 256-byte class: ~255 blocks per 64 KiB slab */
        assert_non_null(blocks[i]);
    }
    mr_secret_pool_stats_get(&peak);
    assert_true(peak.slabs >= before.slabs + N / 256);
    assert_int_equal(peak.blocks_live, before.blocks_live + N);
    for (int i = 0; i < N; i += 2) /* every other one first: no slab is empty yet */
        mr_secret_free(blocks[i], 200);
    mr_secret_pool_stats_get(&after);
    assert_int_equal(after.slabs, peak.slabs);
    for (int i = 1; i < N; i += 2)
        mr_secret_free(blocks[i], 200);
    mr_secret_pool_stats_get(&after);
    assert_int_equal(after.blocks_live, before.blocks_live);
    assert_true(after.slabs <= before.slabs + 1);
    assert_int_equal(after.largest_pooled, 32768);
}

/* Freeing with a size of another class is refused (the process aborts) instead of putting a
 * block into the wrong free list. */
static void test_wrong_size_aborts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t *p = mr_secret_alloc(100); /* 128-byte class */
        mr_secret_free(p, 1000);           /* 1 KiB class */
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

static void test_fault_injection_and_counts(void **state)
{
    (void)state;
    long live = mr_alloc_live_blocks();
    mr_alloc_fail_after(0);
    assert_null(mr_secret_alloc(64));
    mr_alloc_fail_reset();
    void *p = mr_secret_alloc(64);
    assert_non_null(p);
    assert_int_equal(mr_alloc_live_blocks(), live + 1);
    mr_secret_free(p, 64);
    assert_int_equal(mr_alloc_live_blocks(), live);
    mr_secret_free(NULL, 64);
#ifdef T_ASAN
    uint8_t *q = mr_secret_alloc(40); /* 64-byte class: the bytes past 40 stay poisoned */
    assert_non_null(q);
    assert_false(__asan_address_is_poisoned(q + 39));
    assert_true(__asan_address_is_poisoned(q + 40));
    mr_secret_free(q, 40);
    assert_true(__asan_address_is_poisoned(q)); /* freed */
#endif
}

typedef struct worker_arg {
    unsigned seed;
    int failures;
} worker_arg;

static void *churn(void *arg)
{
    worker_arg *w = arg;
    enum { LIVE = 64 };
    uint8_t *held[LIVE] = {0};
    size_t len[LIVE] = {0};
    unsigned x = w->seed;
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 8) % LIVE;
        if (held[k] != NULL) {
            for (size_t j = 0; j < len[k]; j++)
                if (held[k][j] != (uint8_t)(w->seed + k))
                    w->failures++;
            mr_secret_free(held[k], len[k]);
            held[k] = NULL;
            continue;
        }
        len[k] = 1 + (x >> 12) % 9000;
        held[k] = mr_secret_alloc(len[k]);
        if (held[k] == NULL || !all_zero(held[k], len[k])) {
            w->failures++;
            continue;
        }
        memset(held[k], (int)(uint8_t)(w->seed + k), len[k]);
    }
    for (unsigned k = 0; k < LIVE; k++)
        mr_secret_free(held[k], len[k]);
    return NULL;
}

/* Four threads allocate, fill, check and free blocks of random sizes at once: no block is
 * handed out twice, none is changed by another thread, every new one is zero. */
static void test_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    worker_arg w[4];
    mr_secret_pool_stats before, after;
    mr_secret_pool_stats_get(&before);
    for (unsigned i = 0; i < 4; i++) {
        w[i] = (worker_arg){.seed = 17u * (i + 1), .failures = 0};
        assert_int_equal(pthread_create(&th[i], NULL, churn, &w[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    mr_secret_pool_stats_get(&after);
    assert_int_equal(after.blocks_live, before.blocks_live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroed_and_wiped),
        cmocka_unit_test(test_locked_and_not_dumped),
        cmocka_unit_test(test_slabs_given_back),
        cmocka_unit_test(test_wrong_size_aborts),
        cmocka_unit_test(test_fault_injection_and_counts),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
