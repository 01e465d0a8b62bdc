/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secret memory (mr_secret_alloc / mr_secret_free): a pool of locked slabs.
 *
 * Every secret buffer used to be its own page-rounded block that was mlock'ed, marked
 * MADV_DONTDUMP, and later munlock'ed: four system calls per block, each splitting and merging
 * the process's memory map under its lock (13-22 % of the Coordinator's CPU per activation,
 * docs/performance.md). Now requests of up to 32 KiB come from slabs that are mapped, locked
 * and excluded from core dumps ONCE:
 *
 *  - size classes of 32 B .. 32 KiB (powers of two); a slab holds blocks of one class and is
 *    aligned to its own size, so a block finds its slab by masking its address;
 *  - a block is wiped (OPENSSL_cleanse, whole class size) when it is freed, before it goes on
 *    its slab's free list; blocks are therefore all zero when handed out again (the list link
 *    in the first word is cleared), as fresh mmap'ed memory is;
 *  - a slab whose blocks are all free is unmapped, except one per class that is kept for the
 *    next burst: the pool holds at most the peak of live secret memory plus one slab per class;
 *  - requests above 32 KiB, and every request under the sanitizers unless a test switches
 *    the pool on, take the direct path: their own page-aligned, locked, DONTDUMP block.
 *
 * Locking: one mutex; wiping happens outside it. mlock is best effort, as before (a low
 * RLIMIT_MEMLOCK leaves the pages unlocked, never the program without memory). Under
 * AddressSanitizer free and not-yet-carved blocks are poisoned, and a block is unpoisoned only
 * for the size asked for, so reads and writes past it are still reported.
 */
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/alloc_int.h"

#if defined(__SANITIZE_ADDRESS__)
#define MR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MR_ASAN 1
#endif
#endif
#ifdef MR_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MIN_SHIFT 5  /* 32 bytes */
#define MAX_SHIFT 15 /* 32 KiB */
#define NCLASS (MAX_SHIFT - MIN_SHIFT + 1)
#define SLAB_MIN ((size_t)64 << 10)
#define HDR 64 /* the slab header's room at the start of the slab; keeps blocks 32-aligned */
#define SLAB_MAGIC 0x6d72736c6162ull /* "mrslab" */

typedef struct slab {
    uint64_t magic;            /* SLAB_MAGIC ^ address: checked on every free */
    struct slab *prev, *next;  /* its class's list of slabs with a free block */
    void *free;                /* freed blocks; the link is in their first word */
    uint32_t used;             /* blocks handed out */
    uint32_t carved;           /* blocks ever taken from the never-used tail */
    uint32_t nblocks;
    uint16_t cls;
    uint16_t listed;           /* on the class list (has a free block) */
} slab;

_Static_assert(sizeof(slab) <= HDR, "slab header too large");

typedef struct pool_class {
    slab *avail;   /* slabs with at least one free block */
    size_t empty;  /* slabs without a live block (at most one stays mapped) */
    size_t slabs;
} pool_class;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pool_class classes[NCLASS];
static size_t live_blocks_now;
#ifdef MR_SANITIZED
static bool pool_on = false;
#else
static bool pool_on = true;
#endif

void mr_secret_pool_set_enabled(bool on) { pool_on = on; }

static size_t class_size(int c) { return (size_t)1 << (MIN_SHIFT + c); }

static size_t slab_size(int c)
{
    size_t s = class_size(c) * 8;
    return s < SLAB_MIN ? SLAB_MIN : s;
}

/* The class of a request, or -1 when it takes the direct path. */
static int class_of(size_t n)
{
    if (!pool_on || n > class_size(NCLASS - 1))
        return -1;
    int c = 0;
    while (class_size(c) < n)
        c++;
    return c;
}

static void lock_pages(void *p, size_t n)
{
#ifndef MR_SANITIZED
    (void)mlock(p, n);
#endif
    (void)madvise(p, n, MADV_DONTDUMP);
}

/* A new slab of class c, aligned to its size, locked, excluded from core dumps; NULL when
 * the memory is not there. */
static slab *slab_new(int c)
{
    size_t sz = slab_size(c);
    uint8_t *raw = mmap(NULL, sz * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + sz - 1) & ~(uintptr_t)(sz - 1);
    uint8_t *base = (uint8_t *)start;
    size_t head = (size_t)(base - raw);
    if (head > 0)
        (void)munmap(raw, head);
    if (sz - head > 0)
        (void)munmap(base + sz, sz - head);
    lock_pages(base, sz);
    /* the range may be one an unmapped slab had: ASan keeps poison across munmap/mmap */
    UNPOISON(base, sz);
    slab *s = (slab *)(void *)base;
    s->magic = SLAB_MAGIC ^ (uint64_t)start;
    s->cls = (uint16_t)c;
    s->nblocks = (uint32_t)((sz - HDR) / class_size(c));
    POISON(base + HDR, sz - HDR);
    return s;
}

static void list_add(pool_class *pc, slab *s)
{
    s->prev = NULL;
    s->next = pc->avail;
    if (pc->avail != NULL)
        pc->avail->prev = s;
    pc->avail = s;
    s->listed = 1;
}

static void list_del(pool_class *pc, slab *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        pc->avail = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->listed = 0;
}

/* A free block holds the free list's link (the next free block) in its first bytes. */
static const size_t LINK_BYTES = sizeof(uint8_t *);

/* Takes a block from a slab of class c that has one (pool lock held). */
static uint8_t *take_block(pool_class *pc, slab *s, int c)
{
    uint8_t *b;
    if (s->free != NULL) {
        b = s->free;
        UNPOISON(b, LINK_BYTES);
        memcpy(&s->free, b, LINK_BYTES);
        memset(b, 0, LINK_BYTES); /* the link; the rest was wiped when it was freed */
    } else {
        b = (uint8_t *)s + HDR + (size_t)s->carved * class_size(c);
        s->carved++;
    }
    if (s->used == 0)
        pc->empty--;
    s->used++;
    if (s->used == s->nblocks)
        list_del(pc, s);
    live_blocks_now++;
    return b;
}

static void *pool_alloc(int c, size_t n)
{
    pool_class *pc = &classes[c];
    pthread_mutex_lock(&pool_mu);
    slab *s = pc->avail;
    if (s == NULL) {
        s = slab_new(c);
        if (s == NULL) {
            pthread_mutex_unlock(&pool_mu);
            return NULL;
        }
        pc->slabs++;
        pc->empty++;
        list_add(pc, s);
    }
    uint8_t *b = take_block(pc, s, c);
    pthread_mutex_unlock(&pool_mu);
    UNPOISON(b, n);
    return b;
}

/* Puts a wiped block back; returns a slab to unmap (all free, and the class keeps one
 * already), or NULL. Pool lock held. */
static slab *give_back(slab *s, uint8_t *b)
{
    pool_class *pc = &classes[s->cls];
    memcpy(b, &s->free, LINK_BYTES);
    s->free = b;
    POISON(b, class_size(s->cls));
    if (!s->listed)
        list_add(pc, s);
    s->used--;
    live_blocks_now--;
    if (s->used > 0)
        return NULL;
    if (pc->empty == 0) {
        pc->empty++;
        return NULL;
    }
    list_del(pc, s);
    pc->slabs--;
    return s;
}

static void pool_free(int c, uint8_t *p)
{
    size_t sz = slab_size(c);
    slab *s = (slab *)(void *)((uintptr_t)p & ~(uintptr_t)(sz - 1));
    /* A block handed to the wrong size class, or no pool block at all: memory corruption. */
    if (s->magic != (SLAB_MAGIC ^ (uint64_t)(uintptr_t)s) || s->cls != c)
        abort();
    UNPOISON(p, class_size(c));
    OPENSSL_cleanse(p, class_size(c));
    mr_alloc_int_released(p, class_size(c));
    pthread_mutex_lock(&pool_mu);
    slab *drop = give_back(s, p);
    pthread_mutex_unlock(&pool_mu);
    if (drop != NULL) { /* every block was wiped when it was freed; munmap drops the lock */
        UNPOISON(drop, sz); /* no poison left behind for whatever is mapped here next */
        (void)munmap(drop, sz);
    }
}

/* ---- the direct path: one page-rounded block per request ---- */

static size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

static size_t round_pages(size_t size)
{
    size_t ps = page_size();
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - ps)
        return 0;
    return (size + ps - 1) / ps * ps;
}

static void *direct_alloc(size_t size)
{
    size_t total = round_pages(size);
    void *p = NULL;
    if (total == 0)
        return NULL;
    if (posix_memalign(&p, page_size(), total) != 0)
        return NULL;
    memset(p, 0, total);
    lock_pages(p, total);
    return p;
}

static void direct_free(void *p, size_t size)
{
    size_t total = round_pages(size);
    OPENSSL_cleanse(p, total);
    mr_alloc_int_released(p, total);
    (void)madvise(p, total, MADV_DODUMP);
#ifndef MR_SANITIZED
    (void)munlock(p, total);
#endif
    free(p);
}

/* ---- API ---- */

void *mr_secret_alloc(size_t size)
{
    if (mr_alloc_int_should_fail())
        return NULL;
    if (size == 0)
        size = 1;
    int c = class_of(size);
    return mr_alloc_int_counted(c >= 0 ? pool_alloc(c, size) : direct_alloc(size));
}

void mr_secret_free(void *p, size_t size)
{
    if (p == NULL)
        return;
    if (size == 0)
        size = 1;
    mr_alloc_int_uncount();
    int c = class_of(size);
    if (c >= 0)
        pool_free(c, p);
    else
        direct_free(p, size);
}

void mr_secret_pool_stats_get(mr_secret_pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&pool_mu);
    for (int c = 0; c < NCLASS; c++) {
        out->slabs += classes[c].slabs;
        out->slab_bytes += classes[c].slabs * slab_size(c);
    }
    out->blocks_live = live_blocks_now;
    pthread_mutex_unlock(&pool_mu);
    out->largest_pooled = class_size(NCLASS - 1);
}
