/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store engine: an ordered multi-version map (skip list of keys, each with a chain of
 * versions newest first), snapshot transactions with optimistic validation, and group commit
 * for the embedded backend. The memory backend is the same engine without persistence.
 *
 * Locking: one mutex per store protects the map, the version chains, the value slab, the
 * transaction list and the group-commit state. It is never held across file I/O: the commit
 * leader releases it while writing and syncing a batch.
 *
 * Revisions: a writing commit gets revision assigned_rev + 1 when it validates, and its
 * versions enter the map at once (so later validators see them), but new transactions read at
 * durable_rev, so nobody observes a commit before it is on disk. When a batch fails, every
 * commit not yet durable is rolled back (its versions removed) and fails; revisions restart
 * after durable_rev so the log's sequence stays contiguous.
 *
 * Garbage collection: every version added is recorded in a tracking list (revision order).
 * Once the horizon (the oldest revision any transaction may read, at most durable_rev) passes
 * it, older versions of that key are freed, and a key whose only remaining version is a
 * deletion leaves the map.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/store/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* skip list                                                                                  */

int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n == 0 ? 0 : memcmp(a, b, n);
    if (c != 0)
        return c;
    return al < bl ? -1 : (al > bl ? 1 : 0);
}

static node *node_alloc(int level, const char *key, size_t klen)
{
    node *n = mr_calloc(1, sizeof(node) + (size_t)level * sizeof(node *));
    if (n == NULL)
        return NULL;
    n->key = mr_alloc(klen + 1);
    if (n->key == NULL) {
        mr_free(n);
        return NULL;
    }
    if (klen > 0)
        memcpy(n->key, key, klen);
    n->key[klen] = '\0';
    n->klen = klen;
    n->level = level;
    return n;
}

void sl_node_free(node *n)
{
    if (n == NULL)
        return;
    mr_free_wipe(n->key, n->klen + 1); /* key names are not key material, but tidy */
    mr_free(n);
}

MR_RESULT sl_init(skiplist *l, uint64_t seed)
{
    memset(l, 0, sizeof(*l));
    l->head = node_alloc(SL_MAX_LEVEL, "", 0);
    MR_ENSURE_ALLOC(l->head);
    l->level = 1;
    l->rng = seed | 1;
    return MR_SUCCESS;
}

/* xorshift64*: level choice only; no security relevance. */
static int random_level(skiplist *l)
{
    int lvl = 1;
    while (lvl < SL_MAX_LEVEL) {
        l->rng ^= l->rng >> 12;
        l->rng ^= l->rng << 25;
        l->rng ^= l->rng >> 27;
        uint64_t r = l->rng * 2685821657736338717ull;
        if ((r >> 62) != 0) /* continue with probability 1/4 */
            break;
        lvl++;
    }
    return lvl;
}

/* Fills upd[i] with the last node at level i whose key is < key. */
static node *find_path(const skiplist *l, const char *key, size_t klen, node **upd)
{
    node *x = l->head;
    for (int i = l->level - 1; i >= 0; i--) {
        while (x->next[i] != NULL && key_cmp(x->next[i]->key, x->next[i]->klen, key, klen) < 0)
            x = x->next[i];
        if (upd != NULL)
            upd[i] = x;
    }
    return x->next[0];
}

node *sl_lower_bound(const skiplist *l, const char *key, size_t klen)
{
    return find_path(l, key, klen, NULL);
}

node *sl_find(const skiplist *l, const char *key, size_t klen)
{
    node *n = find_path(l, key, klen, NULL);
    if (n != NULL && key_cmp(n->key, n->klen, key, klen) == 0)
        return n;
    return NULL;
}

node *sl_node_new(skiplist *l, const char *key, size_t klen)
{
    return node_alloc(random_level(l), key, klen);
}

void sl_link(skiplist *l, node *n)
{
    node *upd[SL_MAX_LEVEL];
    for (int i = 0; i < SL_MAX_LEVEL; i++)
        upd[i] = l->head;
    find_path(l, n->key, n->klen, upd);
    if (n->level > l->level) {
        for (int i = l->level; i < n->level; i++)
            upd[i] = l->head;
        l->level = n->level;
    }
    for (int i = 0; i < n->level; i++) {
        n->next[i] = upd[i]->next[i];
        upd[i]->next[i] = n;
    }
    l->count++;
}

void sl_unlink(skiplist *l, node *n)
{
    node *upd[SL_MAX_LEVEL];
    for (int i = 0; i < SL_MAX_LEVEL; i++)
        upd[i] = l->head;
    find_path(l, n->key, n->klen, upd);
    for (int i = 0; i < l->level; i++) {
        if (upd[i]->next[i] == n)
            upd[i]->next[i] = n->next[i];
    }
    while (l->level > 1 && l->head->next[l->level - 1] == NULL)
        l->level--;
    l->count--;
}

/* ------------------------------------------------------------------------------------------ */
/* engine                                                                                     */

struct kv_txn {
    mr_store_txn base;
    kv *k;
    uint64_t rev;
    kv_txn *prev, *next;
    skiplist ws;   /* write set: each node has one version (rev unused); the values are
                    * blocks of the store's slab (taken under the lock) and move into the map
                    * on commit */
    mr_buf reads;  /* keys read, each followed by NUL */
    mr_buf ranges; /* prefixes listed, each followed by NUL */
    size_t ws_bytes;
    bool latest; /* reads pending commits (MR_STORE_TXN_LATEST) */
    bool doomed; /* read commits that were rolled back after a failed write */
};

struct waiter {
    waiter *next;
    uint64_t rev;
    int status; /* 0 pending, 1 durable, -1 failed */
};

static void free_ver(secmem *m, ver *v)
{
    if (v == NULL)
        return;
    secmem_put(m, v->val, v->len);
    mr_free(v);
}

static bool ver_live(const ver *v) { return v != NULL && !v->tomb; }

static const ver *visible_at(const node *n, uint64_t rev)
{
    for (const ver *v = n->vers; v != NULL; v = v->older)
        if (v->rev <= rev)
            return v->tomb ? NULL : v;
    return NULL;
}

static uint64_t horizon(const kv *k)
{
    uint64_t h = k->durable_rev;
    for (const kv_txn *t = k->txns; t != NULL; t = t->next)
        if (t->rev < h)
            h = t->rev;
    return h;
}

static void detach(kv *k, node *n)
{
    if (n->detached)
        return;
    sl_unlink(&k->map, n);
    n->detached = true;
}

static void drop_ref(node *n)
{
    if (--n->refs == 0 && n->detached)
        sl_node_free(n);
}

/* Frees versions of n no transaction can see any more. */
static void prune(kv *k, node *n, uint64_t h)
{
    if (n->detached)
        return;
    ver *v = n->vers;
    while (v != NULL && v->rev > h)
        v = v->older;
    if (v == NULL)
        return;
    ver *o = v->older;
    v->older = NULL;
    while (o != NULL) {
        ver *next = o->older;
        free_ver(&k->mem, o);
        o = next;
    }
    if (v == n->vers && v->tomb) {
        n->vers = NULL;
        free_ver(&k->mem, v);
        detach(k, n);
    }
}

static void gc(kv *k)
{
    uint64_t h = horizon(k);
    while (k->tr_head < k->tr_len && k->tr[k->tr_head].rev <= h) {
        node *n = k->tr[k->tr_head].n;
        k->tr_head++;
        prune(k, n, h);
        drop_ref(n);
    }
    if (k->tr_head == k->tr_len) {
        k->tr_head = k->tr_len = 0;
    } else if (k->tr_head > 1024 && k->tr_head * 2 > k->tr_len) {
        memmove(k->tr, k->tr + k->tr_head, (k->tr_len - k->tr_head) * sizeof(track));
        k->tr_len -= k->tr_head;
        k->tr_head = 0;
    }
}

/* Removes every version newer than target (commits that will not become durable). */
static void rollback_to(kv *k, uint64_t target)
{
    uint64_t h = horizon(k);
    while (k->tr_len > k->tr_head && k->tr[k->tr_len - 1].rev > target) {
        node *n = k->tr[--k->tr_len].n;
        bool was = ver_live(n->vers);
        while (n->vers != NULL && n->vers->rev > target) {
            ver *v = n->vers;
            n->vers = v->older;
            free_ver(&k->mem, v);
        }
        if (n->vers != NULL && n->vers->tomb && n->vers->older == NULL && n->vers->rev <= h) {
            free_ver(&k->mem, n->vers);
            n->vers = NULL;
        }
        bool now = ver_live(n->vers);
        k->live_keys = k->live_keys + (now ? 1 : 0) - (was ? 1 : 0);
        if (n->vers == NULL)
            detach(k, n);
        drop_ref(n);
    }
}

kv *kv_new(void)
{
    kv *k = mr_calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->base.vt = &mr_kv_vtbl;
    secmem_init(&k->mem);
    uint64_t seed = (uint64_t)(uintptr_t)k ^ 0x9e3779b97f4a7c15ull;
    if (!mr_ok(sl_init(&k->map, seed))) {
        mr_free(k);
        return NULL;
    }
    if (pthread_mutex_init(&k->mu, NULL) != 0) {
        sl_node_free(k->map.head);
        mr_free(k);
        return NULL;
    }
    if (pthread_cond_init(&k->cv, NULL) != 0) {
        pthread_mutex_destroy(&k->mu);
        sl_node_free(k->map.head);
        mr_free(k);
        return NULL;
    }
    return k;
}

void kv_free(kv *k)
{
    if (k == NULL)
        return;
    if (k->txns != NULL)
        MR_LOG_ERROR("store closed with open transactions");
    emb_free(k->e);
    /* Tracking entries hold references; drop them so detached nodes are freed once. */
    for (size_t i = k->tr_head; i < k->tr_len; i++)
        drop_ref(k->tr[i].n);
    mr_free(k->tr);
    node *n = k->map.head->next[0];
    while (n != NULL) {
        node *next = n->next[0];
        ver *v = n->vers;
        while (v != NULL) {
            ver *o = v->older;
            free_ver(&k->mem, v);
            v = o;
        }
        sl_node_free(n);
        n = next;
    }
    sl_node_free(k->map.head);
    secmem_destroy(&k->mem);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    mr_free(k);
}

MR_RESULT kv_load_set(kv *k, const char *key, size_t klen, const uint8_t *val, size_t len,
                      bool del, uint64_t rev)
{
    node *n = sl_find(&k->map, key, klen);
    if (del) {
        if (n != NULL) {
            free_ver(&k->mem, n->vers);
            n->vers = NULL;
            sl_unlink(&k->map, n);
            sl_node_free(n);
            k->live_keys--;
        }
        k->durable_rev = k->assigned_rev = rev;
        return MR_SUCCESS;
    }
    ver *v = mr_calloc(1, sizeof(*v));
    MR_ENSURE_ALLOC(v);
    if (len > 0) {
        v->val = secmem_get(&k->mem, len);
        if (v->val == NULL) {
            mr_free(v);
            MR_BAIL(MR_ERR_INTERNAL, "out of memory");
        }
        memcpy(v->val, val, len);
    }
    v->len = (uint32_t)len;
    v->rev = rev;
    if (n == NULL) {
        n = sl_node_new(&k->map, key, klen);
        if (n == NULL) {
            free_ver(&k->mem, v);
            MR_BAIL(MR_ERR_INTERNAL, "out of memory");
        }
        sl_link(&k->map, n);
        k->live_keys++;
    } else {
        free_ver(&k->mem, n->vers);
    }
    n->vers = v;
    k->durable_rev = k->assigned_rev = rev;
    return MR_SUCCESS;
}

MR_RESULT kv_visit_durable(kv *k, kv_visit_fn fn, void *ctx)
{
    for (node *n = k->map.head->next[0]; n != NULL; n = n->next[0]) {
        const ver *v = visible_at(n, k->durable_rev);
        if (v != NULL)
            MR_GUARD(fn(ctx, n, v));
    }
    return MR_SUCCESS;
}

/* ------------------------------------------------------------------------------------------ */
/* transactions                                                                               */

static MR_RESULT check_key(const char *key)
{
    MR_ENSURE(key != NULL, MR_ERR_USAGE, "store key is missing");
    size_t len = strnlen(key, MR_STORE_KEY_MAX + 1);
    MR_ENSURE(len > 0, MR_ERR_USAGE, "store key is empty");
    MR_ENSURE(len <= MR_STORE_KEY_MAX, MR_ERR_USAGE, "store key too long");
    return MR_SUCCESS;
}

static void lock(kv *k)
{
    int rc = pthread_mutex_lock(&k->mu);
    if (rc != 0) {
        MR_LOG_FATAL("store mutex failed", MR_F_INT("errno", rc));
        abort();
    }
}

static void unlock(kv *k) { pthread_mutex_unlock(&k->mu); }

/* Frees a transaction whose write-set values were already released (ws_release). */
static void txn_destroy(kv_txn *t)
{
    node *n = t->ws.head != NULL ? t->ws.head->next[0] : NULL;
    while (n != NULL) {
        node *next = n->next[0];
        mr_free(n->vers);
        sl_node_free(n);
        n = next;
    }
    sl_node_free(t->ws.head);
    mr_buf_free(&t->reads);
    mr_buf_free(&t->ranges);
    mr_free(t);
}

/* Unregisters and frees a transaction. */
static void txn_finish(kv_txn *t)
{
    kv *k = t->k;
    lock(k);
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        k->txns = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    for (node *n = t->ws.head->next[0]; n != NULL; n = n->next[0]) {
        secmem_put(&k->mem, n->vers->val, n->vers->len);
        n->vers->val = NULL;
    }
    gc(k);
    unlock(k);
    txn_destroy(t);
}

static MR_RESULT kv_begin(mr_store *s, unsigned flags, mr_store_txn **out)
{
    kv *k = (kv *)s;
    kv_txn *t = mr_calloc(1, sizeof(*t));
    MR_ENSURE_ALLOC(t);
    if (!mr_ok(sl_init(&t->ws, (uint64_t)(uintptr_t)t))) {
        mr_free(t);
        return MR_FAILURE;
    }
    mr_buf_init(&t->reads, 0, 0);
    mr_buf_init(&t->ranges, 0, 0);
    t->base.store = s;
    t->k = k;
    t->latest = (flags & MR_STORE_TXN_LATEST) != 0;
    lock(k);
    t->rev = t->latest ? k->assigned_rev : k->durable_rev;
    t->next = k->txns;
    if (k->txns != NULL)
        k->txns->prev = t;
    k->txns = t;
    unlock(k);
    *out = &t->base;
    return MR_SUCCESS;
}

static MR_RESULT kv_get(mr_store_txn *tx, const char *key, mr_buf *value, bool *found)
{
    kv_txn *t = (kv_txn *)tx;
    MR_GUARD(check_key(key));
    size_t klen = strlen(key);
    *found = false;
    node *w = sl_find(&t->ws, key, klen);
    if (w != NULL) {
        if (!w->vers->tomb) {
            MR_GUARD(mr_buf_append(value, w->vers->val, w->vers->len));
            *found = true;
        }
        return MR_SUCCESS;
    }
    MR_GUARD(mr_buf_append(&t->reads, key, klen + 1));
    kv *k = t->k;
    mr_result res = MR_SUCCESS;
    lock(k);
    node *n = sl_find(&k->map, key, klen);
    const ver *v = n != NULL ? visible_at(n, t->rev) : NULL;
    if (v != NULL) {
        res = mr_buf_append(value, v->val, v->len);
        *found = mr_ok(res);
    }
    unlock(k);
    return res;
}

static MR_RESULT ws_set(kv_txn *t, const char *key, const uint8_t *value, size_t len, bool del)
{
    mr_result res = MR_FAILURE;
    ver *v = NULL;
    node *fresh = NULL;
    size_t klen = strlen(key);
    MR_ENSURE_OUT(del || value != NULL || len == 0, MR_ERR_USAGE, "store value is missing");
    MR_ENSURE_OUT(len <= MR_STORE_VALUE_MAX, MR_ERR_TOO_LARGE, "store value too large");
    v = mr_calloc(1, sizeof(*v));
    MR_ENSURE_ALLOC_OUT(v);
    v->tomb = del;
    if (!del && len > 0) {
        lock(t->k);
        v->val = secmem_get(&t->k->mem, len);
        unlock(t->k);
        MR_ENSURE_ALLOC_OUT(v->val);
        memcpy(v->val, value, len);
        v->len = (uint32_t)len;
    }
    node *n = sl_find(&t->ws, key, klen);
    if (n == NULL) {
        fresh = sl_node_new(&t->ws, key, klen);
        MR_ENSURE_ALLOC_OUT(fresh);
        sl_link(&t->ws, fresh);
        n = fresh;
        fresh = NULL;
        t->ws_bytes += klen + 16;
    } else {
        t->ws_bytes -= n->vers->len;
        lock(t->k);
        free_ver(&t->k->mem, n->vers);
        unlock(t->k);
    }
    /* n is the found node or `fresh` (never NULL here) */
    // cppcheck-suppress nullPointerRedundantCheck
    n->vers = v;
    v = NULL;
    t->ws_bytes += len;
    res = MR_SUCCESS;
out:
    if (v != NULL) {
        lock(t->k);
        free_ver(&t->k->mem, v);
        unlock(t->k);
    }
    sl_node_free(fresh);
    return res;
}

static MR_RESULT kv_put(mr_store_txn *tx, const char *key, const uint8_t *value, size_t len)
{
    MR_GUARD(check_key(key));
    return ws_set((kv_txn *)tx, key, value, len, false);
}

static MR_RESULT kv_del(mr_store_txn *tx, const char *key)
{
    MR_GUARD(check_key(key));
    return ws_set((kv_txn *)tx, key, NULL, 0, true);
}

static bool has_prefix(const char *key, size_t klen, const char *p, size_t plen)
{
    return klen >= plen && (plen == 0 || memcmp(key, p, plen) == 0);
}

/* Merges the snapshot (map at rev) with the write set over the prefix. Pass 1 (items == NULL)
 * only counts; pass 2 copies. */
static MR_RESULT list_pass(kv_txn *t, const char *prefix, size_t plen, mr_store_list *out,
                           size_t *count, size_t *kbytes, size_t *vbytes)
{
    node *a = sl_lower_bound(&t->k->map, prefix, plen);
    node *b = sl_lower_bound(&t->ws, prefix, plen);
    size_t i = 0;
    *count = *kbytes = *vbytes = 0;
    for (;;) {
        bool a_ok = a != NULL && has_prefix(a->key, a->klen, prefix, plen);
        bool b_ok = b != NULL && has_prefix(b->key, b->klen, prefix, plen);
        if (!a_ok && !b_ok)
            break;
        const node *src;
        const ver *v;
        int c = !a_ok ? 1 : (!b_ok ? -1 : key_cmp(a->key, a->klen, b->key, b->klen));
        if (c < 0) {
            src = a;
            v = visible_at(a, t->rev);
            a = a->next[0];
        } else {
            src = b;
            v = b->vers->tomb ? NULL : b->vers;
            if (c == 0)
                a = a->next[0];
            b = b->next[0];
        }
        if (v == NULL)
            continue;
        if (out->items != NULL) {
            /* pass 1 reserved the exact sizes: the buffers do not move during pass 2 */
            const uint8_t *kp = out->keys_.data + out->keys_.len;
            const uint8_t *vp = out->values_.data + out->values_.len;
            MR_GUARD(mr_buf_append(&out->keys_, src->key, src->klen + 1));
            MR_GUARD(mr_buf_append(&out->values_, v->val, v->len));
            out->items[i].key = (const char *)kp;
            out->items[i].value = MR_SLICE(vp, v->len);
        }
        i++;
        *kbytes += src->klen + 1;
        *vbytes += v->len;
    }
    *count = i;
    return MR_SUCCESS;
}

void mr_store_list_free(mr_store_list *list)
{
    if (list == NULL)
        return;
    mr_free(list->items);
    mr_buf_free(&list->keys_);
    mr_buf_free(&list->values_);
    list->items = NULL;
    list->count = 0;
}

static MR_RESULT kv_list(mr_store_txn *tx, const char *prefix, mr_store_list *out)
{
    kv_txn *t = (kv_txn *)tx;
    mr_result res = MR_FAILURE;
    mr_store_list l = {0};
    size_t count = 0, kbytes = 0, vbytes = 0;
    bool locked = false;
    MR_ENSURE_OUT(prefix != NULL, MR_ERR_USAGE, "store prefix is missing");
    size_t plen = strnlen(prefix, MR_STORE_KEY_MAX + 1);
    MR_ENSURE_OUT(plen <= MR_STORE_KEY_MAX, MR_ERR_USAGE, "store prefix too long");
    MR_GUARD_OUT(mr_buf_append(&t->ranges, prefix, plen + 1));
    mr_buf_init(&l.keys_, SIZE_MAX, 0);
    mr_buf_init(&l.values_, SIZE_MAX, MR_BUF_SECRET);
    lock(t->k);
    locked = true;
    MR_GUARD_OUT(list_pass(t, prefix, plen, &l, &count, &kbytes, &vbytes));
    if (count > 0) {
        l.items = mr_calloc(count, sizeof(mr_store_item));
        MR_ENSURE_ALLOC_OUT(l.items);
        MR_GUARD_OUT(mr_buf_reserve(&l.keys_, kbytes));
        MR_GUARD_OUT(mr_buf_reserve(&l.values_, vbytes + 1));
        MR_GUARD_OUT(list_pass(t, prefix, plen, &l, &count, &kbytes, &vbytes));
    }
    unlock(t->k);
    locked = false;
    l.count = count;
    mr_store_list_free(out);
    *out = l;
    memset(&l, 0, sizeof(l));
    res = MR_SUCCESS;
out:
    if (locked)
        unlock(t->k);
    mr_store_list_free(&l);
    return res;
}

/* True when the key was changed by a commit after rev (including pending ones). */
static bool key_changed(kv *k, const char *key, size_t klen, uint64_t rev)
{
    node *n = sl_find(&k->map, key, klen);
    return n != NULL && n->vers != NULL && n->vers->rev > rev;
}

static bool validate(kv_txn *t)
{
    kv *k = t->k;
    for (size_t off = 0; off < t->reads.len;) {
        const char *key = (const char *)t->reads.data + off;
        size_t klen = strlen(key);
        if (key_changed(k, key, klen, t->rev))
            return false;
        off += klen + 1;
    }
    for (node *w = t->ws.head->next[0]; w != NULL; w = w->next[0])
        if (key_changed(k, w->key, w->klen, t->rev))
            return false;
    for (size_t off = 0; off < t->ranges.len;) {
        const char *p = (const char *)t->ranges.data + off;
        size_t plen = strlen(p);
        for (node *n = sl_lower_bound(&k->map, p, plen);
             n != NULL && has_prefix(n->key, n->klen, p, plen); n = n->next[0])
            if (n->vers != NULL && n->vers->rev > t->rev)
                return false;
        off += plen + 1;
    }
    return true;
}

typedef struct prep {
    ver *v;
    node *n;
    bool fresh;
} prep;

/* Adds the write set's versions at rev to the map. Atomic: all or nothing. */
static MR_RESULT apply(kv *k, kv_txn *t, uint64_t rev, wop **ops_out, size_t *nops)
{
    mr_result res = MR_FAILURE;
    size_t n = t->ws.count, i = 0;
    prep *p = mr_calloc(n, sizeof(prep));
    wop *ops = mr_calloc(n, sizeof(wop));
    MR_ENSURE_ALLOC_OUT(p);
    MR_ENSURE_ALLOC_OUT(ops);
    if (k->tr_len + n > k->tr_cap) {
        size_t cap = k->tr_cap ? k->tr_cap : 256;
        while (cap < k->tr_len + n)
            cap *= 2;
        track *tr = mr_realloc(k->tr, cap * sizeof(track));
        MR_ENSURE_ALLOC_OUT(tr);
        k->tr = tr;
        k->tr_cap = cap;
    }
    for (node *w = t->ws.head->next[0]; w != NULL; w = w->next[0], i++) {
        const ver *src = w->vers;
        p[i].v = mr_calloc(1, sizeof(ver));
        MR_ENSURE_ALLOC_OUT(p[i].v);
        p[i].v->rev = rev;
        p[i].v->tomb = src->tomb;
        p[i].n = sl_find(&k->map, w->key, w->klen);
        if (p[i].n == NULL) {
            p[i].n = sl_node_new(&k->map, w->key, w->klen);
            MR_ENSURE_ALLOC_OUT(p[i].n);
            p[i].fresh = true;
        }
        ops[i] = (wop){.key = w->key, .klen = w->klen, .val = src->val, .len = src->len,
                       .del = src->tomb};
    }
    /* nothing can fail from here on; the values move from the write set into the map */
    node *w = t->ws.head->next[0];
    for (i = 0; i < n && w != NULL; i++, w = w->next[0]) { /* the list has n nodes */
        node *m = p[i].n;
        p[i].v->val = w->vers->val;
        p[i].v->len = w->vers->len;
        w->vers->val = NULL;
        w->vers->len = 0;
        if (p[i].fresh)
            sl_link(&k->map, m);
        bool was = ver_live(m->vers);
        p[i].v->older = m->vers;
        m->vers = p[i].v;
        m->refs++;
        k->live_keys = k->live_keys + (ver_live(m->vers) ? 1 : 0) - (was ? 1 : 0);
        k->tr[k->tr_len++] = (track){.rev = rev, .n = m};
        p[i].v = NULL;
        p[i].n = NULL;
    }
    *ops_out = ops;
    *nops = n;
    ops = NULL;
    res = MR_SUCCESS;
out:
    if (p != NULL) {
        for (i = 0; i < n; i++) {
            free_ver(&k->mem, p[i].v);
            if (p[i].fresh)
                sl_node_free(p[i].n);
        }
    }
    mr_free(p);
    mr_free(ops);
    return res;
}

/* Group commit: the first waiter without a running leader writes everything pending. */
static MR_RESULT wait_durable(kv *k, waiter *w)
{
    w->next = k->waiters;
    k->waiters = w;
    while (w->status == 0) {
        if (k->leader) {
            pthread_cond_wait(&k->cv, &k->mu);
            continue;
        }
        k->leader = true;
        mr_buf batch = {0};
        uint64_t end_seq = 0;
        uint8_t end_digest[32];
        uint64_t nrec = k->assigned_rev - k->durable_rev;
        emb_take_batch(k->e, &batch, &end_seq, end_digest);
        unlock(k);
        bool broken = false;
        mr_result r = emb_flush(k->e, &batch, &broken);
        lock(k);
        emb_flushed(k->e, mr_ok(r), end_seq, end_digest, batch.len, nrec);
        mr_buf_free(&batch);
        if (mr_ok(r)) {
            k->durable_rev = end_seq;
            for (waiter *x = k->waiters; x != NULL; x = x->next)
                if (x->status == 0 && x->rev <= end_seq)
                    x->status = 1;
            if (k->assigned_rev == k->durable_rev && emb_wants_compaction(k->e)) {
                bool cbroken = false;
                if (!mr_ok(emb_compact(k->e, k, &cbroken))) {
                    MR_LOG_WARN("state compaction failed; the log keeps growing", MR_F_ERR());
                    if (cbroken)
                        k->broken = true;
                }
            }
        } else {
            k->fail_err = *mr_error_get();
            if (broken)
                k->broken = true;
            rollback_to(k, k->durable_rev);
            k->assigned_rev = k->durable_rev;
            for (kv_txn *t = k->txns; t != NULL; t = t->next)
                if (t->rev > k->durable_rev)
                    t->doomed = true;
            for (waiter *x = k->waiters; x != NULL; x = x->next)
                if (x->status == 0)
                    x->status = -1;
        }
        gc(k);
        k->leader = false;
        pthread_cond_broadcast(&k->cv);
    }
    waiter **pp = &k->waiters;
    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    if (w->status < 0) {
        mr_error_restore(&k->fail_err);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

static MR_RESULT commit_locked(kv *k, kv_txn *t)
{
    wop *ops = NULL;
    size_t nops = 0;
    mr_result res = MR_FAILURE;
    MR_ENSURE_OUT(!k->broken, MR_ERR_IO,
                  "the state store could not be written and is unusable until restart");
    if (t->doomed || !validate(t)) {
        k->conflicts++;
        MR_BAIL_OUT(MR_ERR_CONFLICT, "store transaction conflict: a key it used was changed by "
                                  "another commit; retry the operation");
    }
    uint64_t rev = k->assigned_rev + 1;
    MR_GUARD_OUT(apply(k, t, rev, &ops, &nops));
    k->assigned_rev = rev;
    if (k->e == NULL) {
        k->durable_rev = rev;
        k->commits++;
        res = MR_SUCCESS;
        goto out;
    }
    if (!mr_ok(emb_append(k->e, rev, ops, nops))) {
        rollback_to(k, rev - 1);
        k->assigned_rev = rev - 1;
        goto out;
    }
    waiter w = {.rev = rev};
    MR_GUARD_OUT(wait_durable(k, &w));
    k->commits++;
    res = MR_SUCCESS;
out:
    mr_free(ops);
    return res;
}

/* A read-only transaction that read pending commits succeeds once they are durable. */
static MR_RESULT commit_readonly_latest(kv *k, kv_txn *t)
{
    if (t->rev > k->durable_rev && !t->doomed && k->e != NULL) {
        waiter w = {.rev = t->rev};
        if (!mr_ok(wait_durable(k, &w)))
            t->doomed = true;
    }
    if (t->doomed) {
        k->conflicts++;
        MR_BAIL(MR_ERR_CONFLICT, "store transaction conflict: it read changes that could not be "
                              "written; retry the operation");
    }
    return MR_SUCCESS;
}

static MR_RESULT kv_commit(mr_store_txn *tx)
{
    kv_txn *t = (kv_txn *)tx;
    kv *k = t->k;
    mr_result res = MR_SUCCESS;
    if (t->ws.count > 0) {
        lock(k);
        res = commit_locked(k, t);
        unlock(k);
    } else if (t->latest) {
        lock(k);
        res = commit_readonly_latest(k, t);
        unlock(k);
    }
    txn_finish(t);
    return res;
}

static void kv_abort(mr_store_txn *tx) { txn_finish((kv_txn *)tx); }

static void kv_stats(mr_store *s, mr_store_stats *st)
{
    kv *k = (kv *)s;
    memset(st, 0, sizeof(*st));
    lock(k);
    st->revision = k->durable_rev;
    st->keys = k->live_keys;
    st->commits = k->commits;
    st->conflicts = k->conflicts;
    if (k->e != NULL)
        emb_stats(k->e, st);
    unlock(k);
}

static void kv_close(mr_store *s) { kv_free((kv *)s); }

const mr_store_vtbl mr_kv_vtbl = {
    .name = "kv",
    .begin = kv_begin,
    .get = kv_get,
    .put = kv_put,
    .del = kv_del,
    .list = kv_list,
    .commit = kv_commit,
    .abort = kv_abort,
    .stats = kv_stats,
    .close = kv_close,
};

/* ------------------------------------------------------------------------------------------ */
/* public dispatch                                                                            */

MR_RESULT mr_store_open_memory(mr_store **out)
{
    kv *k = kv_new();
    MR_ENSURE_ALLOC(k);
    *out = &k->base;
    return MR_SUCCESS;
}

void mr_store_close(mr_store *s)
{
    if (s != NULL)
        s->vt->close(s);
}

void mr_store_stats_get(mr_store *s, mr_store_stats *out) { s->vt->stats(s, out); }

MR_RESULT mr_store_begin(mr_store *s, mr_store_txn **out) { return mr_store_begin_ex(s, 0, out); }

MR_RESULT mr_store_begin_ex(mr_store *s, unsigned flags, mr_store_txn **out)
{
    MR_ENSURE_REF(s);
    MR_ENSURE_REF(out);
    MR_ENSURE((flags & ~(unsigned)MR_STORE_TXN_LATEST) == 0, MR_ERR_USAGE,
              "unknown store transaction flags");
    return s->vt->begin(s, flags, out);
}

MR_RESULT mr_store_get(mr_store_txn *t, const char *key, mr_buf *value, bool *found)
{
    MR_ENSURE_REF(t);
    MR_ENSURE_REF(value);
    MR_ENSURE_REF(found);
    return t->store->vt->get(t, key, value, found);
}

MR_RESULT mr_store_put(mr_store_txn *t, const char *key, const uint8_t *value, size_t len)
{
    MR_ENSURE_REF(t);
    return t->store->vt->put(t, key, value, len);
}

MR_RESULT mr_store_delete(mr_store_txn *t, const char *key)
{
    MR_ENSURE_REF(t);
    return t->store->vt->del(t, key);
}

MR_RESULT mr_store_scan(mr_store_txn *t, const char *prefix, mr_store_list *out)
{
    MR_ENSURE_REF(t);
    MR_ENSURE_REF(out);
    return t->store->vt->list(t, prefix, out);
}

MR_RESULT mr_store_commit(mr_store_txn *t)
{
    MR_ENSURE_REF(t);
    return t->store->vt->commit(t);
}

void mr_store_abort(mr_store_txn *t)
{
    if (t != NULL)
        t->store->vt->abort(t);
}

MR_RESULT mr_store_get1(mr_store *s, const char *key, mr_buf *value, bool *found)
{
    mr_store_txn *t = NULL;
    MR_GUARD(mr_store_begin(s, &t));
    mr_result r = mr_store_get(t, key, value, found);
    mr_store_abort(t);
    return r;
}

MR_RESULT mr_store_put1(mr_store *s, const char *key, const uint8_t *value, size_t len)
{
    mr_store_txn *t = NULL;
    MR_GUARD(mr_store_begin(s, &t));
    if (!mr_ok(mr_store_put(t, key, value, len))) {
        mr_store_abort(t);
        return MR_FAILURE;
    }
    return mr_store_commit(t);
}

MR_RESULT mr_store_copy_all(mr_store *src, mr_store *dst)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *rt = NULL, *wt = NULL;
    mr_store_list l = {0};
    MR_GUARD_OUT(mr_store_begin(src, &rt));
    MR_GUARD_OUT(mr_store_scan(rt, "", &l));
    MR_GUARD_OUT(mr_store_begin(dst, &wt));
    for (size_t i = 0; i < l.count; i++)
        MR_GUARD_OUT(mr_store_put(wt, l.items[i].key, l.items[i].value.ptr, l.items[i].value.len));
    mr_store_txn *c = wt;
    wt = NULL;
    MR_GUARD_OUT(mr_store_commit(c));
    res = MR_SUCCESS;
out:
    mr_store_abort(rt);
    mr_store_abort(wt);
    mr_store_list_free(&l);
    return res;
}
