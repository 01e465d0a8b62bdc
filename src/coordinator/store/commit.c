/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store commits: optimistic validation of what a transaction read, wrote and listed; the
 * write set entering the map at a new revision; group commit of the embedded backend (one
 * leader writes and syncs every pending record while the others wait).
 */
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/store/internal.h"

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
             n != NULL && kv_has_prefix(n->key, n->klen, p, plen); n = n->next[0])
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
        bool was = kv_ver_live(m->vers);
        p[i].v->older = m->vers;
        m->vers = p[i].v;
        m->refs++;
        k->live_keys = k->live_keys + (kv_ver_live(m->vers) ? 1 : 0) - (was ? 1 : 0);
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
            kv_ver_free(&k->mem, p[i].v);
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
        kv_unlock(k);
        bool broken = false;
        mr_result r = emb_flush(k->e, &batch, &broken);
        kv_lock(k);
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
            kv_rollback_to(k, k->durable_rev);
            k->assigned_rev = k->durable_rev;
            for (kv_txn *t = k->txns; t != NULL; t = t->next)
                if (t->rev > k->durable_rev)
                    t->doomed = true;
            for (waiter *x = k->waiters; x != NULL; x = x->next)
                if (x->status == 0)
                    x->status = -1;
        }
        kv_gc(k);
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
        kv_rollback_to(k, rev - 1);
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

MR_RESULT kv_commit(mr_store_txn *tx)
{
    kv_txn *t = (kv_txn *)tx;
    kv *k = t->k;
    mr_result res = MR_SUCCESS;
    if (t->ws.count > 0) {
        kv_lock(k);
        res = commit_locked(k, t);
        kv_unlock(k);
    } else if (t->latest) {
        kv_lock(k);
        res = commit_readonly_latest(k, t);
        kv_unlock(k);
    }
    kv_txn_finish(t);
    return res;
}

void kv_abort(mr_store_txn *tx) { kv_txn_finish((kv_txn *)tx); }
