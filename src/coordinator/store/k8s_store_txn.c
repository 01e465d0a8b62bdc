/* SPDX-License-Identifier: Apache-2.0 */
/* The kubernetes backend's transactions (reads on a snapshot of the replica, writes buffered
 * until the commit in k8s_store_commit.c), opening and closing (k8s_store.h). */
#include "coordinator/store/k8s_store_int.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

static const mr_store_vtbl k8s_vtbl;

void ks_txn_free(ktxn *t)
{
    if (t == NULL)
        return;
    mr_store_abort(t->vt);
    mr_txn_sets_free(&t->sets);
    mr_free(t);
}

static MR_RESULT k_begin(mr_store *st, unsigned flags, mr_store_txn **out)
{
    kstore *s = (kstore *)st;
    /* as in the etcd store: a LATEST transaction is validated by its commit */
    bool latest = (flags & MR_STORE_TXN_LATEST) != 0;
    if (!latest)
        MR_GUARD(ks_refresh(s));
    ktxn *t = mr_calloc(1, sizeof(*t));
    MR_ENSURE_ALLOC(t);
    t->base.store = st;
    t->s = s;
    t->latest = latest;
    pthread_mutex_lock(&s->mu);
    mr_result r = mr_store_begin(s->view, &t->vt);
    t->snap = s->head.gen;
    pthread_mutex_unlock(&s->mu);
    if (!mr_ok(r)) {
        ks_txn_free(t);
        return MR_FAILURE;
    }
    *out = &t->base;
    return MR_SUCCESS;
}

static MR_RESULT k_get(mr_store_txn *tx, const char *key, mr_buf *value, bool *found)
{
    ktxn *t = (ktxn *)tx;
    mr_result res = MR_FAILURE;
    mr_buf cv;
    mr_buf_init(&cv, 0, MR_BUF_SECRET);
    uint64_t gen = 0;
    uint8_t kind = KS_CV_OK;
    mr_slice plain = {0};
    MR_GUARD_OUT(mr_store_get(t->vt, key, &cv, found));
    if (*found) {
        MR_GUARD_OUT(ks_cv_decode(mr_buf_slice(&cv), &gen, &kind, &plain));
        MR_ENSURE_OUT(kind != KS_CV_CORRUPT, MR_ERR_CORRUPT,
                      "sealed state is corrupted: value of %s does not open", key);
        MR_GUARD_OUT(mr_buf_append(value, plain.ptr, plain.len));
    }
    if (kind != KS_CV_OWN)
        MR_GUARD_OUT(mr_txn_note_read(&t->sets, key, *found ? gen : 0));
    res = MR_SUCCESS;
out:
    mr_buf_free(&cv);
    return res;
}

static MR_RESULT mirror(ktxn *t, const char *key, const uint8_t *v, size_t len, bool del)
{
    MR_ENSURE(key[0] != '\0' && key[0] != '\x01' && strlen(key) <= MR_STORE_KEY_MAX,
              MR_ERR_USAGE, "invalid store key");
    MR_GUARD(mr_txn_note_write(&t->sets, key, v, len, del, false));
    if (del)
        return mr_store_delete(t->vt, key);
    mr_buf cv;
    mr_buf_init(&cv, 0, MR_BUF_SECRET);
    uint8_t hdr[KS_CV_HDR] = {0};
    hdr[8] = KS_CV_OWN;
    mr_result r = mr_buf_append(&cv, hdr, sizeof(hdr));
    if (mr_ok(r))
        r = mr_buf_append(&cv, v, len);
    if (mr_ok(r))
        r = mr_store_put(t->vt, key, cv.data, cv.len);
    mr_buf_free(&cv);
    return r;
}

static MR_RESULT k_put(mr_store_txn *tx, const char *key, const uint8_t *v, size_t len)
{
    return mirror((ktxn *)tx, key, v, len, false);
}

static MR_RESULT k_del(mr_store_txn *tx, const char *key)
{
    return mirror((ktxn *)tx, key, NULL, 0, true);
}

/* One listed entry in plaintext; its generation noted as read. */
static MR_RESULT list_one(ktxn *t, const mr_store_item *it, mr_buf *keys, mr_buf *vals,
                          size_t *ko)
{
    uint64_t gen = 0;
    uint8_t kind = KS_CV_OK;
    mr_slice plain = {0};
    MR_GUARD(ks_cv_decode(it->value, &gen, &kind, &plain));
    MR_ENSURE(kind != KS_CV_CORRUPT, MR_ERR_CORRUPT,
              "sealed state is corrupted: value of %s does not open", it->key);
    if (kind != KS_CV_OWN)
        MR_GUARD(mr_txn_note_read(&t->sets, it->key, gen));
    ko[0] = keys->len;
    ko[1] = vals->len;
    ko[2] = plain.len;
    MR_GUARD(mr_buf_append(keys, it->key, strlen(it->key) + 1));
    return mr_buf_append(vals, plain.ptr, plain.len);
}

static MR_RESULT k_list(mr_store_txn *tx, const char *prefix, mr_store_list *out)
{
    ktxn *t = (ktxn *)tx;
    mr_result res = MR_FAILURE;
    mr_store_list raw = {0};
    mr_buf keys, vals;
    mr_buf_init(&keys, 0, 0);
    mr_buf_init(&vals, 0, MR_BUF_SECRET);
    size_t *ko = NULL;
    memset(out, 0, sizeof(*out));
    MR_GUARD_OUT(mr_store_scan(t->vt, prefix, &raw));
    MR_GUARD_OUT(mr_txn_note_scan(&t->sets, prefix));
    ko = mr_calloc(raw.count + 1, sizeof(size_t) * 3);
    MR_ENSURE_ALLOC_OUT(ko);
    for (size_t i = 0; i < raw.count; i++)
        MR_GUARD_OUT(list_one(t, &raw.items[i], &keys, &vals, &ko[3 * i]));
    out->items = mr_calloc(raw.count + 1, sizeof(*out->items));
    MR_ENSURE_ALLOC_OUT(out->items);
    for (size_t i = 0; i < raw.count; i++)
        out->items[i] = (mr_store_item){.key = (const char *)keys.data + ko[3 * i],
                                        .value = MR_SLICE(vals.data + ko[3 * i + 1], ko[3 * i + 2])};
    out->count = raw.count;
    out->keys_ = keys;
    out->values_ = vals;
    mr_buf_init(&keys, 0, 0);
    mr_buf_init(&vals, 0, 0);
    res = MR_SUCCESS;
out:
    if (!mr_ok(res)) {
        mr_free(out->items);
        memset(out, 0, sizeof(*out));
    }
    mr_free(ko);
    mr_store_list_free(&raw);
    mr_buf_free(&keys);
    mr_buf_free(&vals);
    return res;
}

MR_RESULT ks_put_meta(mr_store_txn *tx, const char *name, const uint8_t *v, size_t len, bool del)
{
    MR_ENSURE(tx != NULL && tx->store->vt == &k8s_vtbl, MR_ERR_USAGE,
              "meta entries exist only in shared stores");
    for (const char *p = name; *p != '\0'; p++)
        MR_ENSURE((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'), MR_ERR_USAGE,
                  "invalid meta entry name");
    MR_ENSURE(name[0] != '\0' && strlen(name) < 32, MR_ERR_USAGE, "invalid meta entry name");
    return mr_txn_note_write(&((ktxn *)tx)->sets, name, v, len, del, true);
}

static void k_abort(mr_store_txn *tx) { ks_txn_free((ktxn *)tx); }

static void k_stats(mr_store *st, mr_store_stats *out)
{
    kstore *s = (kstore *)st;
    memset(out, 0, sizeof(*out));
    mr_store_stats vs;
    mr_store_stats_get(s->view, &vs);
    pthread_mutex_lock(&s->mu);
    out->revision = s->head.gen;
    out->keys = vs.keys;
    out->commits = s->commits;
    out->conflicts = s->conflicts;
    out->watch_applied = s->watch_applied;
    out->watch_shards = s->watch_shards;
    memcpy(out->commit_lat, s->lat, sizeof(out->commit_lat));
    out->commit_lat_sum_us = s->lat_sum_us;
    pthread_mutex_unlock(&s->mu);
    if (s->watch != NULL)
        mr_k8s_watch_counts(s->watch, &out->watch_events, &out->watch_reconnects);
}

static MR_RESULT k_sync(mr_store *st, uint64_t *state_rev)
{
    kstore *s = (kstore *)st;
    MR_GUARD(ks_refresh(s));
    pthread_mutex_lock(&s->mu);
    *state_rev = s->state_rev;
    pthread_mutex_unlock(&s->mu);
    return MR_SUCCESS;
}

static void k_close(mr_store *st)
{
    kstore *s = (kstore *)st;
    if (s == NULL)
        return;
    ks_watch_stop(s); /* before anything its thread uses goes */
    mr_k8s_close(s->cli);
    mr_store_close(s->view);
    for (uint32_t i = 0; s->shards != NULL && i < s->head.n; i++)
        ks_shard_free(&s->shards[i]);
    mr_free(s->shards);
    ks_head_free(&s->head);
    mr_prefix_set_free(&s->vol);
    mr_secret_free(s->key, MR_STORE_DEK_LEN);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->commit_mu);
    mr_free(s);
}

static const mr_store_vtbl k8s_vtbl = {
    .name = "kubernetes",
    .begin = k_begin,
    .get = k_get,
    .put = k_put,
    .del = k_del,
    .list = k_list,
    .commit = ks_commit,
    .abort = k_abort,
    .stats = k_stats,
    .close = k_close,
    .sync = k_sync,
    .put_meta = ks_put_meta,
};

MR_RESULT mr_store_open_k8s(mr_k8s *cli, mr_slice key, const mr_k8s_store_options *opts,
                            mr_store **out)
{
    mr_result res = MR_FAILURE;
    kstore *s = mr_calloc(1, sizeof(*s));
    if (s == NULL) {
        mr_k8s_close(cli);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    s->base.vt = &k8s_vtbl;
    s->cli = cli;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->commit_mu, NULL);
    const char *name = opts != NULL && opts->name != NULL ? opts->name : KS_DEFAULT_NAME;
    MR_ENSURE_OUT(strlen(name) < KS_NAME_MAX, MR_ERR_USAGE, "kubernetes store: name too long");
    memcpy(s->name, name, strlen(name) + 1);
    MR_ENSURE_OUT(key.len == MR_STORE_DEK_LEN, MR_ERR_USAGE, "state key must be %u bytes",
                  MR_STORE_DEK_LEN);
    s->key = mr_secret_alloc(MR_STORE_DEK_LEN);
    MR_ENSURE_ALLOC_OUT(s->key);
    memcpy(s->key, key.ptr, MR_STORE_DEK_LEN);
    if (opts != NULL)
        MR_GUARD_OUT(mr_prefix_set_copy(&s->vol, opts->volatile_prefixes, opts->n_volatile));
    MR_GUARD_OUT(mr_store_open_memory(&s->view));
    MR_GUARD_OUT(ks_refresh(s));
    ks_watch_start(s, s->head.rv);
    *out = &s->base;
    s = NULL;
    res = MR_SUCCESS;
out:
    k_close(s ? &s->base : NULL);
    return res;
}
