/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secret slab allocator for store values. mr_secret_alloc rounds every allocation up to whole
 * pages (it locks and excludes them from core dumps), which would cost a page per key; the
 * store instead carves small blocks from secret chunks of 4 KiB growing to 256 KiB. Blocks are wiped when they are
 * released and reused through per-size-class free lists; chunks go back (wiped by
 * mr_secret_free) when the store closes. Values above 4 KiB get their own secret allocation.
 * Not thread-safe: the store lock protects it.
 */
#include <openssl/crypto.h>
#include <string.h>

#include "common/alloc.h"
#include "coordinator/store/internal.h"

#define CHUNK_MAX ((size_t)256 << 10)
#define CHUNK_MIN ((size_t)4 << 10)
#define MIN_SHIFT 4 /* 16 bytes */

static int size_class(size_t n)
{
    size_t sz = (size_t)1 << MIN_SHIFT;
    for (int c = 0; c < SECMEM_CLASSES; c++, sz <<= 1)
        if (n <= sz)
            return c;
    return -1;
}

static size_t class_size(int c) { return (size_t)1 << (MIN_SHIFT + c); }

void secmem_init(secmem *m) { memset(m, 0, sizeof(*m)); }

void *secmem_get(secmem *m, size_t n)
{
    int c = size_class(n);
    if (c < 0)
        return mr_secret_alloc(n);
    void *p = m->free_list[c];
    if (p != NULL) {
        void *next = NULL;
        memcpy(&next, p, sizeof(next));
        m->free_list[c] = next;
        OPENSSL_cleanse(p, sizeof(next));
        return p;
    }
    size_t sz = class_size(c);
    if (m->cur_left < sz) {
        /* The tail of the old chunk is abandoned (at most 4 KiB); it is wiped with the chunk. */
        secmem_chunk *ch = mr_alloc(sizeof(*ch));
        if (ch == NULL)
            return NULL;
        /* Chunks grow from 4 KiB (a transaction with one small put) to 256 KiB. */
        size_t csz = m->next_chunk < CHUNK_MIN ? CHUNK_MIN : m->next_chunk;
        ch->mem = mr_secret_alloc(csz);
        if (ch->mem == NULL) {
            mr_free(ch);
            return NULL;
        }
        ch->size = csz;
        m->next_chunk = csz * 2 > CHUNK_MAX ? CHUNK_MAX : csz * 2;
        ch->next = m->chunks;
        m->chunks = ch;
        m->cur = ch->mem;
        m->cur_left = csz;
    }
    p = m->cur;
    m->cur += sz;
    m->cur_left -= sz;
    return p;
}

void secmem_put(secmem *m, void *p, size_t n)
{
    if (p == NULL)
        return;
    int c = size_class(n);
    if (c < 0) {
        mr_secret_free(p, n);
        return;
    }
    OPENSSL_cleanse(p, class_size(c));
    memcpy(p, &m->free_list[c], sizeof(void *));
    m->free_list[c] = p;
}

void secmem_destroy(secmem *m)
{
    secmem_chunk *ch = m->chunks;
    while (ch != NULL) {
        secmem_chunk *next = ch->next;
        mr_secret_free(ch->mem, ch->size);
        mr_free(ch);
        ch = next;
    }
    memset(m, 0, sizeof(*m));
}
