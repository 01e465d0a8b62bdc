/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The only allocator of the project (raw malloc/free are banned elsewhere by
 * scripts/check-source). Two families:
 *
 *  - mr_alloc/mr_calloc/mr_realloc/mr_free: ordinary heap memory. mr_free(NULL) is a no-op.
 *  - mr_secret_alloc/mr_secret_free: memory for key material. Zeroed when handed out, locked
 *    in RAM (mlock, best effort), excluded from core dumps (MADV_DONTDUMP), and always wiped
 *    with OPENSSL_cleanse before it is released; it shares its pages with other secrets only.
 *    Requests of up to 32 KiB come from a pool of locked slabs (secret_pool.c; 32-byte
 *    aligned), larger ones are page-aligned blocks of their own. Not locked under the
 *    sanitizers.
 *
 * Tests can make the N-th following allocation fail (mr_alloc_fail_after) to exercise every
 * out-of-memory path.
 *
 * jansson is given the wiping functions when the program starts (every JSON value, request
 * bodies with secrets among them, is wiped when freed).
 */
#ifndef MR_COMMON_ALLOC_H
#define MR_COMMON_ALLOC_H

#include <stddef.h>

void *mr_alloc(size_t size);
void *mr_calloc(size_t count, size_t size);
void *mr_realloc(void *p, size_t size);
void mr_free(void *p);
/* Wipes `size` bytes at p, then frees it. NULL-safe. For heap copies of secrets. */
void mr_free_wipe(void *p, size_t size);
/* malloc-compatible functions that wipe every block when it is freed or moved, for libraries
 * whose buffers hold request and response plaintext (libevent, nghttp2). No fault injection. */
void *mr_wipe_malloc(size_t size);
void *mr_wipe_calloc(size_t count, size_t size);
void *mr_wipe_realloc(void *p, size_t size);
void mr_wipe_free(void *p);
char *mr_strdup(const char *s);
char *mr_strndup(const char *s, size_t n);

/* Secret memory. The size must be passed back to mr_secret_free. */
void *mr_secret_alloc(size_t size);
void mr_secret_free(void *p, size_t size);

/* Test hook: after `n` more successful allocations (of either family), every allocation
 * fails until mr_alloc_fail_reset(). n < 0 disables. Not thread-safe; tests only. */
void mr_alloc_fail_after(long n);
void mr_alloc_fail_reset(void);
/* Test hook for leak checks: blocks of either family the calling thread allocated minus blocks
 * it freed, since it started. An operation that runs on one thread and frees what it allocated
 * leaves it unchanged (tests/unit/mr_test.h: mr_test_alloc_sweep). */
long mr_alloc_live_blocks(void);
/* Test hook: fn sees every block this allocator (and the libraries given its wiping functions:
 * jansson, libevent, nghttp2) releases, with the bytes it leaves behind (wiped ones already
 * wiped), just before the release. NULL removes it. Tests only; not thread-safe to change. */
typedef void (*mr_alloc_release_fn)(const void *p, size_t n);
void mr_alloc_set_release_hook(mr_alloc_release_fn fn);

#endif
