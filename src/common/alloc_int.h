/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the allocator shared by alloc.c and secret_pool.c (and their unit tests). */
#ifndef MR_COMMON_ALLOC_INT_H
#define MR_COMMON_ALLOC_INT_H

#include <stdbool.h>
#include <stddef.h>

/* The fault injection of mr_alloc_fail_after: true when this allocation is to fail. */
bool mr_alloc_int_should_fail(void);
/* Counts a successful allocation (p != NULL) for mr_alloc_live_blocks; returns p. */
void *mr_alloc_int_counted(void *p);
/* Uncounts a block that is being freed. */
void mr_alloc_int_uncount(void);
/* Shows a block that is about to be released to the release hook (tests). */
void mr_alloc_int_released(const void *p, size_t n);

/* Secret pool statistics (tests and benchmarks): slabs mapped now and blocks handed out now,
 * over every size class. */
typedef struct mr_secret_pool_stats {
    size_t slabs;
    size_t slab_bytes;
    size_t blocks_live;
    size_t largest_pooled; /* requests above this size bypass the pool */
} mr_secret_pool_stats;
void mr_secret_pool_stats_get(mr_secret_pool_stats *out);

/* Test hook. The pool is on by default, except under the sanitizers, where every secret
 * allocation is its own heap block (so that LeakSanitizer still sees each one); tests switch
 * it on there to run the pool under AddressSanitizer. Change it only while no secret block
 * is live. */
void mr_secret_pool_set_enabled(bool on);

#endif
