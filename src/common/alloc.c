/* SPDX-License-Identifier: Apache-2.0 */
#include "common/alloc.h"
#include "common/alloc_int.h"

#ifndef MR_ALLOC_NO_JANSSON
#include <jansson.h>
#endif
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static long fail_after = -1;
/* Blocks this thread allocated minus blocks it freed (test hook mr_alloc_live_blocks). A
 * thread-local counter: no atomic operation on the allocation path. */
static _Thread_local long live_blocks;

static int should_fail(void)
{
    if (fail_after < 0)
        return 0;
    if (fail_after == 0)
        return 1;
    fail_after--;
    return 0;
}

static mr_alloc_release_fn release_hook;

void mr_alloc_set_release_hook(mr_alloc_release_fn fn) { release_hook = fn; }

static void released(const void *p, size_t n)
{
    if (release_hook != NULL && p != NULL)
        release_hook(p, n);
}

/* for secret_pool.c */
bool mr_alloc_int_should_fail(void) { return should_fail() != 0; }
void mr_alloc_int_uncount(void) { live_blocks--; }
void mr_alloc_int_released(const void *p, size_t n) { released(p, n); }

/* Before main: jansson's values may hold secrets (parsed request bodies), so its memory is
 * wiped when freed. alloc.c is part of every program (nothing allocates otherwise).
 * MR_ALLOC_NO_JANSSON: for libmarble-ttls.so, which must not touch the application's jansson. */
#ifndef MR_ALLOC_NO_JANSSON
__attribute__((constructor)) static void wipe_jansson(void)
{
    json_set_alloc_funcs(mr_wipe_malloc, mr_wipe_free);
}
#endif

void mr_alloc_fail_after(long n) { fail_after = n; }
void mr_alloc_fail_reset(void) { fail_after = -1; }
long mr_alloc_live_blocks(void) { return live_blocks; }

static void *counted(void *p)
{
    if (p != NULL)
        live_blocks++;
    return p;
}

void *mr_alloc_int_counted(void *p) { return counted(p); }

void *mr_alloc(size_t size)
{
    if (should_fail())
        return NULL;
    return counted(malloc(size == 0 ? 1 : size));
}

void *mr_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    if (count == 0 || size == 0)
        return counted(calloc(1, 1));
    return counted(calloc(count, size));
}

void *mr_realloc(void *p, size_t size)
{
    if (should_fail())
        return NULL;
    void *q = realloc(p, size == 0 ? 1 : size);
    return p == NULL ? counted(q) : q;
}

void mr_free(void *p)
{
    if (p != NULL) {
        live_blocks--;
        released(p, malloc_usable_size(p));
    }
    free(p);
}

void mr_free_wipe(void *p, size_t size)
{
    if (p == NULL)
        return;
    live_blocks--;
    OPENSSL_cleanse(p, size);
    released(p, malloc_usable_size(p));
    free(p);
}

/* ---- wiping allocator for libraries that hold our plaintext ---- */

void *mr_wipe_malloc(size_t size) { return malloc(size == 0 ? 1 : size); }

void *mr_wipe_calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0)
        return calloc(1, 1);
    return calloc(count, size);
}

void mr_wipe_free(void *p)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, malloc_usable_size(p));
    released(p, malloc_usable_size(p));
    free(p);
}

/* Never realloc in place: a block that moves would leave its old bytes behind unwiped. */
void *mr_wipe_realloc(void *p, size_t size)
{
    if (p == NULL)
        return mr_wipe_malloc(size);
    void *q = malloc(size == 0 ? 1 : size);
    if (q == NULL)
        return NULL;
    size_t old = malloc_usable_size(p);
    memcpy(q, p, old < size ? old : size);
    mr_wipe_free(p);
    return q;
}

char *mr_strdup(const char *s) { return s == NULL ? NULL : mr_strndup(s, strlen(s)); }

char *mr_strndup(const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = mr_alloc(len + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
