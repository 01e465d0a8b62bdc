/* SPDX-License-Identifier: Apache-2.0 */
/* The etcd backend: a watched local replica for reads, etcd transactions for commits
 * (etcd_store.h). This file: sealing of values, the replica and its watch, transactions up
 * to the commit (etcd_store_commit.c), opening. */
#include "coordinator/store/etcd_store_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/store/sealed_value.h"
#include "crypto/aead.h"
#include "crypto/rand.h"

const char *es_prefix_or_default(const char *p) { return p != NULL ? p : "/marblerun/"; }


/* ---- sealing of one value ---- */

MR_RESULT es_seal_value(mr_slice key, mr_slice ekey, mr_slice plain, mr_buf *out)
{
    return mr_sv_seal(key, AAD_TAG, ekey, plain, out);
}

/* MR_ERR_CORRUPT when it does not open (wrong key, tampering, a value copied from another
 * key). */
MR_RESULT es_open_value(mr_slice key, mr_slice ekey, mr_slice sealed, mr_buf *out)
{
    return mr_sv_open(key, AAD_TAG, ekey, sealed, out);
}

MR_RESULT es_meta_key(const char *prefix, const char *name, mr_buf *out)
{
    MR_GUARD(mr_buf_append_str(out, prefix));
    MR_GUARD(mr_buf_append_u8(out, (uint8_t)META));
    return mr_buf_append_str(out, name);
}

/* ---- the transaction's sets ---- */

MR_RESULT es_note_read(etxn *t, const char *key, int64_t rev)
{
    return mr_txn_note_read(&t->sets, key, (uint64_t)rev);
}

MR_RESULT es_note_write(etxn *t, const char *key, const uint8_t *v, size_t len, bool del)
{
    return mr_txn_note_write(&t->sets, key, v, len, del, false);
}

/* ---- cached values ---- */

static MR_RESULT cv_encode(int64_t rev, uint8_t kind, mr_slice plain, mr_buf *out)
{
    uint8_t hdr[CV_HDR];
    for (int i = 0; i < 8; i++)
        hdr[i] = (uint8_t)((uint64_t)rev >> (8 * i));
    hdr[8] = kind;
    MR_GUARD(mr_buf_append(out, hdr, sizeof(hdr)));
    return mr_buf_append(out, plain.ptr, plain.len);
}

static MR_RESULT cv_decode(mr_slice cv, int64_t *rev, uint8_t *kind, mr_slice *plain)
{
    MR_ENSURE(cv.len >= CV_HDR, MR_ERR_INTERNAL, "store replica: malformed entry");
    uint64_t r = 0;
    for (int i = 7; i >= 0; i--)
        r = r << 8 | cv.ptr[i];
    *rev = (int64_t)r;
    *kind = cv.ptr[8];
    *plain = MR_SLICE(cv.ptr + CV_HDR, cv.len - CV_HDR);
    return MR_SUCCESS;
}

/* ---- the watch: applying etcd's events to the replica ---- */

/* The store key of an etcd key (under the prefix, not ours), NUL-terminated in out. */
static bool store_key(const estore *s, const ProtobufCBinaryData *ek, mr_buf *out)
{
    mr_buf_reset(out);
    if (ek->len <= s->prefix.len || memcmp(ek->data, s->prefix.data, s->prefix.len) != 0 ||
        ek->data[s->prefix.len] == (uint8_t)META)
        return false;
    size_t n = ek->len - s->prefix.len;
    if (memchr(ek->data + s->prefix.len, 0, n) != NULL) /* not a key we wrote */
        return false;
    return mr_ok(mr_buf_append(out, ek->data + s->prefix.len, n)) &&
           mr_ok(mr_buf_nul_terminate(out));
}

static MR_RESULT apply_put(estore *s, mr_store_txn *ct, const char *key,
                           const Etcdserverpb__KeyValue *kv)
{
    mr_result res = MR_FAILURE;
    mr_buf plain, cv;
    mr_buf_init(&plain, 0, MR_BUF_SECRET);
    mr_buf_init(&cv, 0, MR_BUF_SECRET);
    uint8_t kind = CV_OK;
    if (!mr_ok(es_open_value(MR_SLICE(s->key, MR_STORE_DEK_LEN),
                          MR_SLICE(kv->key.data, kv->key.len),
                          MR_SLICE(kv->value.data, kv->value.len), &plain))) {
        MR_LOG_ERROR("etcd store: a value does not open; reads of it fail", MR_F_ERR(),
                     MR_F_STR("key", key));
        mr_error_clear();
        kind = CV_CORRUPT;
        mr_buf_reset(&plain);
    }
    MR_GUARD_OUT(cv_encode(kv->mod_revision, kind, mr_buf_slice(&plain), &cv));
    MR_GUARD_OUT(mr_store_put(ct, key, cv.data, cv.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&plain);
    mr_buf_free(&cv);
    return res;
}

/* Applies events (or a full load's key-values) in one replica transaction. Lock held. */
static MR_RESULT apply_events(estore *s, Etcdserverpb__Event *const *ev, size_t n, int64_t rev)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *ct = NULL;
    mr_buf key;
    mr_buf_init(&key, 0, 0);
    bool state_changed = false;
    MR_GUARD_OUT(mr_store_begin(s->cache, &ct));
    for (size_t i = 0; i < n; i++) {
        const Etcdserverpb__KeyValue *kv = ev[i]->kv;
        if (kv == NULL || !store_key(s, &kv->key, &key))
            continue;
        if (ev[i]->type == ETCDSERVERPB__EVENT__EVENT_TYPE__DELETE)
            MR_GUARD_OUT(mr_store_delete(ct, (const char *)key.data));
        else
            MR_GUARD_OUT(apply_put(s, ct, (const char *)key.data, kv));
        state_changed |= !mr_prefix_set_match(&s->vol, (const char *)key.data);
    }
    MR_GUARD_OUT(mr_store_commit(ct));
    ct = NULL;
    if (rev > s->applied)
        s->applied = rev;
    if (state_changed)
        s->state_rev = (uint64_t)s->applied;
    res = MR_SUCCESS;
out:
    mr_store_abort(ct);
    mr_buf_free(&key);
    return res;
}

static MR_RESULT load(estore *s, bool replace);

void es_on_watch(void *arg, const Etcdserverpb__WatchResponse *r)
{
    estore *s = arg;
    if (r->compact_revision > 0) {
        /* fell behind etcd's compaction: the events in between are gone; read it all anew
         * (the watch resumes from the newest revision) */
        MR_LOG_WARN("etcd store: the watch fell behind a compaction; reloading the replica",
                    MR_F_INT("compactRevision", r->compact_revision));
        pthread_mutex_lock(&s->mu);
        if (!mr_ok(load(s, true))) {
            MR_LOG_ERROR("etcd store: reload failed", MR_F_ERR());
            mr_error_clear();
        }
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    int64_t rev = r->header != NULL ? r->header->revision : 0;
    for (size_t i = 0; i < r->n_events; i++)
        if (r->events[i]->kv != NULL && r->events[i]->kv->mod_revision > rev)
            rev = r->events[i]->kv->mod_revision;
    if (r->n_events > 0 && r->events[r->n_events - 1]->kv != NULL)
        rev = r->events[r->n_events - 1]->kv->mod_revision;
    pthread_mutex_lock(&s->mu);
    if (r->created && r->n_events == 0) {
        /* nothing to apply; header is the creation revision, not progress */
    } else if (!mr_ok(apply_events(s, r->events, r->n_events, rev))) {
        MR_LOG_ERROR("etcd store: cannot apply watch events", MR_F_ERR());
        mr_error_clear();
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- loading ---- */

typedef struct loader {
    estore *s;
    mr_store_txn *ct;
    mr_buf key;
} loader;

static MR_RESULT load_kv(void *arg, const Etcdserverpb__KeyValue *kv)
{
    loader *l = arg;
    if (!store_key(l->s, &kv->key, &l->key))
        return MR_SUCCESS;
    return apply_put(l->s, l->ct, (const char *)l->key.data, kv);
}

/* Reads the whole prefix into the replica (replace: dropping what it held). With the lock
 * held, or before the watch runs. */
static MR_RESULT load(estore *s, bool replace)
{
    loader l = {.s = s};
    int64_t rev = 0;
    mr_store_list old = {0};
    mr_buf_init(&l.key, 0, 0);
    mr_result r = mr_store_begin(s->cache, &l.ct);
    if (mr_ok(r) && replace)
        r = mr_store_scan(l.ct, "", &old);
    for (size_t i = 0; mr_ok(r) && i < old.count; i++)
        r = mr_store_delete(l.ct, old.items[i].key);
    mr_store_list_free(&old);
    if (mr_ok(r))
        r = mr_etcd_range(s->cli, mr_buf_slice(&s->prefix), mr_buf_slice(&s->end), 0, load_kv, &l,
                          &rev);
    if (mr_ok(r)) {
        r = mr_store_commit(l.ct);
        l.ct = NULL;
    }
    mr_store_abort(l.ct);
    mr_buf_free(&l.key);
    if (mr_ok(r)) {
        s->applied = rev;
        s->state_rev = (uint64_t)rev;
    }
    return r;
}

/* ---- sync ---- */

typedef struct revbox {
    int64_t mod;
} revbox;

static MR_RESULT rev_kv(void *arg, const Etcdserverpb__KeyValue *kv)
{
    ((revbox *)arg)->mod = kv->mod_revision;
    return MR_SUCCESS;
}

/* Waits until the replica holds every commit made before the call. */
static MR_RESULT catch_up(estore *s)
{
    mr_buf k;
    mr_buf_init(&k, 0, 0);
    revbox rb = {0};
    mr_result r = es_meta_key((const char *)s->prefix.data, "rev", &k);
    if (mr_ok(r))
        r = mr_etcd_range(s->cli, mr_buf_slice(&k), MR_SLICE("", 0), 0, rev_kv, &rb, NULL);
    mr_buf_free(&k);
    MR_GUARD(r);
    struct timespec until;
    (void)clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(s->sync_ms / 1000);
    until.tv_nsec += (long)(s->sync_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->applied < rb.mod && rc == 0)
        rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
    bool ok = s->applied >= rb.mod;
    pthread_mutex_unlock(&s->mu);
    if (!ok)
        mr_etcd_watch_kick(s->cli);
    MR_ENSURE(ok, MR_ERR_UNAVAILABLE, "etcd unavailable: the local replica is behind (watch %s)",
              mr_etcd_watch_live(s->cli) ? "lagging" : "disconnected");
    return MR_SUCCESS;
}

static MR_RESULT e_sync(mr_store *st, uint64_t *state_rev)
{
    estore *s = (estore *)st;
    MR_GUARD(catch_up(s));
    pthread_mutex_lock(&s->mu);
    *state_rev = s->state_rev;
    pthread_mutex_unlock(&s->mu);
    return MR_SUCCESS;
}

/* ---- transactions ---- */

void es_txn_free(etxn *t)
{
    if (t == NULL)
        return;
    mr_store_abort(t->ct);
    mr_txn_sets_free(&t->sets);
    mr_free(t);
}

static MR_RESULT e_begin(mr_store *st, unsigned flags, mr_store_txn **out)
{
    estore *s = (estore *)st;
    /* A transaction reads what every instance had committed when it began — except a LATEST
     * one: its commit validates all it read (compares), so the replica as it stands will do
     * and the round trip to etcd is saved (activation counters: the request synced already). */
    bool latest = (flags & MR_STORE_TXN_LATEST) != 0;
    if (!latest)
        MR_GUARD(catch_up(s));
    etxn *t = mr_calloc(1, sizeof(*t));
    MR_ENSURE_ALLOC(t);
    t->base.store = st;
    t->s = s;
    t->latest = latest;
    pthread_mutex_lock(&s->mu);
    mr_result r = mr_store_begin(s->cache, &t->ct);
    t->snap = s->applied;
    pthread_mutex_unlock(&s->mu);
    if (!mr_ok(r)) {
        es_txn_free(t);
        return MR_FAILURE;
    }
    *out = &t->base;
    return MR_SUCCESS;
}

MR_RESULT es_check_key_name(const char *key)
{
    MR_ENSURE(key[0] != META, MR_ERR_USAGE, "store key must not start with byte 0x01");
    return MR_SUCCESS;
}

static MR_RESULT e_get(mr_store_txn *tx, const char *key, mr_buf *value, bool *found)
{
    etxn *t = (etxn *)tx;
    mr_buf cv;
    mr_buf_init(&cv, 0, MR_BUF_SECRET);
    int64_t rev = 0;
    uint8_t kind = CV_OK;
    mr_slice plain = {0};
    mr_result r = mr_store_get(t->ct, key, &cv, found);
    if (mr_ok(r) && *found)
        r = cv_decode(mr_buf_slice(&cv), &rev, &kind, &plain);
    if (mr_ok(r) && *found && kind == CV_CORRUPT) {
        mr_error_set(MR_ERR_CORRUPT, __FILE__, __LINE__,
                     "sealed state is corrupted: value of %s does not open", key);
        r = MR_FAILURE;
    }
    if (mr_ok(r) && *found)
        r = mr_buf_append(value, plain.ptr, plain.len);
    if (mr_ok(r) && kind != CV_OWN)
        r = es_note_read(t, key, *found ? rev : 0);
    mr_buf_free(&cv);
    return r;
}

static MR_RESULT mirror(etxn *t, const char *key, const uint8_t *v, size_t len, bool del)
{
    MR_GUARD(es_check_key_name(key));
    MR_GUARD(es_note_write(t, key, v, len, del));
    if (del)
        return mr_store_delete(t->ct, key);
    mr_buf cv;
    mr_buf_init(&cv, 0, MR_BUF_SECRET);
    mr_result r = cv_encode(0, CV_OWN, MR_SLICE(v, len), &cv);
    if (mr_ok(r))
        r = mr_store_put(t->ct, key, cv.data, cv.len);
    mr_buf_free(&cv);
    return r;
}

static MR_RESULT e_put(mr_store_txn *tx, const char *key, const uint8_t *v, size_t len)
{
    return mirror((etxn *)tx, key, v, len, false);
}

static MR_RESULT e_del(mr_store_txn *tx, const char *key)
{
    return mirror((etxn *)tx, key, NULL, 0, true);
}

/* Rewrites a replica listing into plaintext values, noting what was read. */
static MR_RESULT e_list(mr_store_txn *tx, const char *prefix, mr_store_list *out)
{
    etxn *t = (etxn *)tx;
    mr_result res = MR_FAILURE;
    mr_store_list raw = {0};
    mr_buf keys, vals;
    mr_buf_init(&keys, 0, 0);
    mr_buf_init(&vals, 0, MR_BUF_SECRET);
    memset(out, 0, sizeof(*out));
    MR_GUARD_OUT(mr_store_scan(t->ct, prefix, &raw));
    MR_GUARD_OUT(mr_txn_note_scan(&t->sets, prefix));
    out->items = mr_calloc(raw.count != 0 ? raw.count : 1, sizeof(*out->items));
    MR_ENSURE_ALLOC_OUT(out->items);
    /* offsets first: the buffers move while they grow */
    size_t *ko = mr_calloc(raw.count + 1, sizeof(size_t) * 3);
    MR_ENSURE_ALLOC_OUT(ko);
    for (size_t i = 0; i < raw.count; i++) {
        int64_t rev = 0;
        uint8_t kind = CV_OK;
        mr_slice plain = {0};
        mr_result r = cv_decode(raw.items[i].value, &rev, &kind, &plain);
        if (mr_ok(r) && kind == CV_CORRUPT) {
            mr_error_set(MR_ERR_CORRUPT, __FILE__, __LINE__,
                         "sealed state is corrupted: value of %s does not open", raw.items[i].key);
            r = MR_FAILURE;
        }
        if (mr_ok(r) && kind != CV_OWN)
            r = es_note_read(t, raw.items[i].key, rev);
        ko[3 * i] = keys.len;
        ko[3 * i + 1] = vals.len;
        ko[3 * i + 2] = plain.len;
        if (mr_ok(r))
            r = mr_buf_append(&keys, raw.items[i].key, strlen(raw.items[i].key) + 1);
        if (mr_ok(r))
            r = mr_buf_append(&vals, plain.ptr, plain.len);
        if (!mr_ok(r)) {
            mr_free(ko);
            goto out;
        }
    }
    for (size_t i = 0; i < raw.count; i++) {
        out->items[i].key = (const char *)keys.data + ko[3 * i];
        out->items[i].value = MR_SLICE(vals.data + ko[3 * i + 1], ko[3 * i + 2]);
    }
    mr_free(ko);
    out->count = raw.count;
    out->keys_ = keys;
    out->values_ = vals;
    mr_buf_init(&keys, 0, 0);
    mr_buf_init(&vals, 0, 0);
    res = MR_SUCCESS;
out:
    if (!mr_ok(res)) {
        mr_free(out->items);
        out->items = NULL;
    }
    mr_store_list_free(&raw);
    mr_buf_free(&keys);
    mr_buf_free(&vals);
    return res;
}

static void e_abort(mr_store_txn *tx) { es_txn_free((etxn *)tx); }

static void e_stats(mr_store *st, mr_store_stats *out)
{
    estore *s = (estore *)st;
    memset(out, 0, sizeof(*out));
    mr_store_stats cs;
    mr_store_stats_get(s->cache, &cs);
    pthread_mutex_lock(&s->mu);
    out->revision = (uint64_t)s->applied;
    out->keys = cs.keys;
    out->commits = s->commits;
    out->conflicts = s->conflicts;
    memcpy(out->commit_lat, s->lat, sizeof(out->commit_lat));
    out->commit_lat_sum_us = s->lat_sum_us;
    pthread_mutex_unlock(&s->mu);
}

static void e_close(mr_store *st)
{
    estore *s = (estore *)st;
    if (s == NULL)
        return;
    mr_etcd_close(s->cli); /* joins the watch before the replica goes */
    mr_store_close(s->cache);
    mr_buf_free(&s->prefix);
    mr_buf_free(&s->end);
    if (s->key != NULL)
        mr_secret_free(s->key, MR_STORE_DEK_LEN);
    mr_prefix_set_free(&s->vol);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    mr_free(s);
}

const mr_store_vtbl es_vtbl = {
    .name = "etcd",
    .begin = e_begin,
    .get = e_get,
    .put = e_put,
    .del = e_del,
    .list = e_list,
    .commit = es_commit,
    .abort = e_abort,
    .stats = e_stats,
    .close = e_close,
    .sync = e_sync,
    .put_meta = mr_etcd_store_put_meta,
};

MR_RESULT mr_store_open_etcd(mr_etcd *cli, mr_slice key, const mr_etcd_store_options *opts,
                             mr_store **out)
{
    mr_result res = MR_FAILURE;
    estore *s = mr_calloc(1, sizeof(*s));
    if (s == NULL) {
        mr_etcd_close(cli);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    s->base.vt = &es_vtbl;
    s->cli = cli;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    mr_buf_init(&s->prefix, 0, 0);
    mr_buf_init(&s->end, 0, 0);
    s->sync_ms = opts != NULL && opts->sync_timeout_ms != 0 ? opts->sync_timeout_ms : 5000;
    MR_ENSURE_OUT(key.len == MR_STORE_DEK_LEN, MR_ERR_USAGE, "state key must be %u bytes",
                  MR_STORE_DEK_LEN);
    s->key = mr_secret_alloc(MR_STORE_DEK_LEN);
    MR_ENSURE_ALLOC_OUT(s->key);
    memcpy(s->key, key.ptr, MR_STORE_DEK_LEN);
    MR_GUARD_OUT(mr_buf_append_str(&s->prefix, es_prefix_or_default(opts != NULL ? opts->prefix : NULL)));
    MR_GUARD_OUT(mr_etcd_prefix_end(mr_buf_slice(&s->prefix), &s->end));
    MR_GUARD_OUT(mr_buf_nul_terminate(&s->prefix));
    if (opts != NULL)
        MR_GUARD_OUT(mr_prefix_set_copy(&s->vol, opts->volatile_prefixes, opts->n_volatile));
    MR_GUARD_OUT(mr_store_open_memory(&s->cache));
    MR_GUARD_OUT(load(s, false));
    MR_GUARD_OUT(mr_etcd_watch(s->cli, mr_buf_slice(&s->prefix), mr_buf_slice(&s->end),
                               s->applied + 1, es_on_watch, s));
    *out = &s->base;
    s = NULL;
    res = MR_SUCCESS;
out:
    e_close(s ? &s->base : NULL);
    return res;
}
