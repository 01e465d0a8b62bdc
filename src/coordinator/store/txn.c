/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store transactions: begin, reads at the snapshot revision (plus the own write set), the
 * write set, and prefix listings. Commit and its validation are in commit.c.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/store/internal.h"

static MR_RESULT check_key(const char *key)
{
    MR_ENSURE(key != NULL, MR_ERR_USAGE, "store key is missing");
    size_t len = strnlen(key, MR_STORE_KEY_MAX + 1);
    MR_ENSURE(len > 0, MR_ERR_USAGE, "store key is empty");
    MR_ENSURE(len <= MR_STORE_KEY_MAX, MR_ERR_USAGE, "store key too long");
    return MR_SUCCESS;
}


/* Frees a transaction whose write-set values were already released (kv_txn_finish). */
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
void kv_txn_finish(kv_txn *t)
{
    kv *k = t->k;
    kv_lock(k);
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
    kv_gc(k);
    kv_unlock(k);
    txn_destroy(t);
}

MR_RESULT kv_begin(mr_store *s, unsigned flags, mr_store_txn **out)
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
    kv_lock(k);
    t->rev = t->latest ? k->assigned_rev : k->durable_rev;
    t->next = k->txns;
    if (k->txns != NULL)
        k->txns->prev = t;
    k->txns = t;
    kv_unlock(k);
    *out = &t->base;
    return MR_SUCCESS;
}

MR_RESULT kv_get(mr_store_txn *tx, const char *key, mr_buf *value, bool *found)
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
    kv_lock(k);
    node *n = sl_find(&k->map, key, klen);
    const ver *v = n != NULL ? kv_visible_at(n, t->rev) : NULL;
    if (v != NULL) {
        res = mr_buf_append(value, v->val, v->len);
        *found = mr_ok(res);
    }
    kv_unlock(k);
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
        kv_lock(t->k);
        v->val = secmem_get(&t->k->mem, len);
        kv_unlock(t->k);
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
        kv_lock(t->k);
        kv_ver_free(&t->k->mem, n->vers);
        kv_unlock(t->k);
    }
    /* n is the found node or `fresh` (never NULL here) */
    // cppcheck-suppress nullPointerRedundantCheck
    n->vers = v;
    v = NULL;
    t->ws_bytes += len;
    res = MR_SUCCESS;
out:
    if (v != NULL) {
        kv_lock(t->k);
        kv_ver_free(&t->k->mem, v);
        kv_unlock(t->k);
    }
    sl_node_free(fresh);
    return res;
}

MR_RESULT kv_put(mr_store_txn *tx, const char *key, const uint8_t *value, size_t len)
{
    MR_GUARD(check_key(key));
    return ws_set((kv_txn *)tx, key, value, len, false);
}

MR_RESULT kv_del(mr_store_txn *tx, const char *key)
{
    MR_GUARD(check_key(key));
    return ws_set((kv_txn *)tx, key, NULL, 0, true);
}

bool kv_has_prefix(const char *key, size_t klen, const char *p, size_t plen)
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
        bool a_ok = a != NULL && kv_has_prefix(a->key, a->klen, prefix, plen);
        bool b_ok = b != NULL && kv_has_prefix(b->key, b->klen, prefix, plen);
        if (!a_ok && !b_ok)
            break;
        const node *src;
        const ver *v;
        int c = !a_ok ? 1 : (!b_ok ? -1 : key_cmp(a->key, a->klen, b->key, b->klen));
        if (c < 0) {
            src = a;
            v = kv_visible_at(a, t->rev);
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

MR_RESULT kv_list(mr_store_txn *tx, const char *prefix, mr_store_list *out)
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
    kv_lock(t->k);
    locked = true;
    MR_GUARD_OUT(list_pass(t, prefix, plen, &l, &count, &kbytes, &vbytes));
    if (count > 0) {
        l.items = mr_calloc(count, sizeof(mr_store_item));
        MR_ENSURE_ALLOC_OUT(l.items);
        MR_GUARD_OUT(mr_buf_reserve(&l.keys_, kbytes));
        MR_GUARD_OUT(mr_buf_reserve(&l.values_, vbytes + 1));
        MR_GUARD_OUT(list_pass(t, prefix, plen, &l, &count, &kbytes, &vbytes));
    }
    kv_unlock(t->k);
    locked = false;
    l.count = count;
    mr_store_list_free(out);
    *out = l;
    memset(&l, 0, sizeof(l));
    res = MR_SUCCESS;
out:
    if (locked)
        kv_unlock(t->k);
    mr_store_list_free(&l);
    return res;
}

