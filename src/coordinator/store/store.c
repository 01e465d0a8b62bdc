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
 *
 * Files: store.c the versions, garbage collection, the vtable and the public dispatch;
 * skiplist.c the ordered map; txn.c transactions (begin, reads, the write set, listings);
 * commit.c validation, applying a write set and group commit; embedded.c the sealed files.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/store/internal.h"


/* ------------------------------------------------------------------------------------------ */
/* engine                                                                                     */

void kv_lock(kv *k)
{
    int rc = pthread_mutex_lock(&k->mu);
    if (rc != 0) {
        MR_LOG_FATAL("store mutex failed", MR_F_INT("errno", rc));
        abort();
    }
}

void kv_unlock(kv *k) { pthread_mutex_unlock(&k->mu); }

void kv_ver_free(secmem *m, ver *v)
{
    if (v == NULL)
        return;
    secmem_put(m, v->val, v->len);
    mr_free(v);
}

bool kv_ver_live(const ver *v) { return v != NULL && !v->tomb; }

const ver *kv_visible_at(const node *n, uint64_t rev)
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
        kv_ver_free(&k->mem, o);
        o = next;
    }
    if (v == n->vers && v->tomb) {
        n->vers = NULL;
        kv_ver_free(&k->mem, v);
        detach(k, n);
    }
}

void kv_gc(kv *k)
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
void kv_rollback_to(kv *k, uint64_t target)
{
    uint64_t h = horizon(k);
    while (k->tr_len > k->tr_head && k->tr[k->tr_len - 1].rev > target) {
        node *n = k->tr[--k->tr_len].n;
        bool was = kv_ver_live(n->vers);
        while (n->vers != NULL && n->vers->rev > target) {
            ver *v = n->vers;
            n->vers = v->older;
            kv_ver_free(&k->mem, v);
        }
        if (n->vers != NULL && n->vers->tomb && n->vers->older == NULL && n->vers->rev <= h) {
            kv_ver_free(&k->mem, n->vers);
            n->vers = NULL;
        }
        bool now = kv_ver_live(n->vers);
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
            kv_ver_free(&k->mem, v);
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
            kv_ver_free(&k->mem, n->vers);
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
            kv_ver_free(&k->mem, v);
            MR_BAIL(MR_ERR_INTERNAL, "out of memory");
        }
        sl_link(&k->map, n);
        k->live_keys++;
    } else {
        kv_ver_free(&k->mem, n->vers);
    }
    n->vers = v;
    k->durable_rev = k->assigned_rev = rev;
    return MR_SUCCESS;
}

MR_RESULT kv_visit_durable(kv *k, kv_visit_fn fn, void *ctx)
{
    for (node *n = k->map.head->next[0]; n != NULL; n = n->next[0]) {
        const ver *v = kv_visible_at(n, k->durable_rev);
        if (v != NULL)
            MR_GUARD(fn(ctx, n, v));
    }
    return MR_SUCCESS;
}


static void kv_stats(mr_store *s, mr_store_stats *st)
{
    kv *k = (kv *)s;
    memset(st, 0, sizeof(*st));
    kv_lock(k);
    st->revision = k->durable_rev;
    st->keys = k->live_keys;
    st->commits = k->commits;
    st->conflicts = k->conflicts;
    if (k->e != NULL)
        emb_stats(k->e, st);
    kv_unlock(k);
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

MR_RESULT mr_store_sync(mr_store *s, uint64_t *state_rev)
{
    *state_rev = 0;
    return s->vt->sync != NULL ? s->vt->sync(s, state_rev) : MR_SUCCESS;
}

MR_RESULT mr_store_put_meta(mr_store_txn *t, const char *name, const uint8_t *v, size_t len,
                            bool del)
{
    MR_ENSURE_REF(t);
    MR_ENSURE(t->store->vt->put_meta != NULL, MR_ERR_USAGE,
              "meta entries exist only in shared stores");
    return t->store->vt->put_meta(t, name, v, len, del);
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
