/* SPDX-License-Identifier: Apache-2.0 */
/* The etcd backend: a watched local replica for reads, etcd transactions for commits
 * (etcd_store.h). */
#include "coordinator/store/etcd_store.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/log.h"
#include "crypto/aead.h"
#include "crypto/rand.h"

#define MAX_COMPARES 100
#define META '\x01'
#define AAD_TAG "marblerun-c etcd v1"
#define KEYCHECK_TEXT "marblerun-c state key check"

/* A cached value: mod_revision (8, little endian), a kind byte, the plaintext. */
enum { CV_HDR = 9, CV_OK = 0, CV_CORRUPT = 1, CV_OWN = 2 };

typedef struct estore {
    mr_store base;
    mr_etcd *cli;
    mr_store *cache;
    mr_buf prefix;
    mr_buf end;
    uint8_t *key; /* MR_STORE_DEK_LEN bytes of secret memory */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t applied;   /* the watch delivered everything up to this revision */
    uint64_t state_rev;
    char **vol;
    size_t n_vol;
    unsigned sync_ms;
    uint64_t commits, conflicts;
} estore;

typedef struct rd {
    char *key;
    int64_t rev;
} rd;

typedef struct wr {
    char *key;
    mr_buf val;
    bool del;
} wr;

typedef struct etxn {
    mr_store_txn base;
    estore *s;
    mr_store_txn *ct; /* snapshot of the replica, with our own writes mirrored in */
    int64_t snap;
    rd *reads;
    size_t n_reads, cap_reads;
    char **scans;
    size_t n_scans, cap_scans;
    wr *writes;
    size_t n_writes, cap_writes;
} etxn;

static const mr_store_vtbl etcd_vtbl;

/* ---- sealing of one value ---- */

static mr_result aad_for(mr_slice ekey, mr_buf *aad)
{
    MR_GUARD(mr_buf_append(aad, AAD_TAG, sizeof(AAD_TAG))); /* with its NUL */
    return mr_buf_append(aad, ekey.ptr, ekey.len);
}

static mr_result seal_value(mr_slice key, mr_slice ekey, mr_slice plain, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf aad;
    mr_buf_init(&aad, 0, 0);
    uint8_t nonce[MR_AEAD_NONCE_LEN];
    MR_GUARD_OUT(aad_for(ekey, &aad));
    MR_GUARD_OUT(mr_crypto_random_key(nonce, sizeof(nonce)));
    MR_GUARD_OUT(mr_buf_reserve(out, MR_AEAD_NONCE_LEN + plain.len + MR_AEAD_TAG_LEN));
    MR_GUARD_OUT(mr_buf_append(out, nonce, sizeof(nonce)));
    uint8_t *ct = out->data + out->len;
    MR_GUARD_OUT(mr_aead_encrypt(key, nonce, mr_buf_slice(&aad), plain, ct,
                                 ct + plain.len));
    out->len += plain.len + MR_AEAD_TAG_LEN;
    res = MR_SUCCESS;
out:
    mr_buf_free(&aad);
    return res;
}

/* Appends the plaintext to out (an MR_BUF_SECRET buffer); MR_ERR_PROTOCOL when it does not
 * open (wrong key, tampering, a value copied from another key). */
static mr_result open_value(mr_slice key, mr_slice ekey, mr_slice sealed, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf aad;
    mr_buf_init(&aad, 0, 0);
    MR_ENSURE_OUT(sealed.len >= MR_AEAD_NONCE_LEN + MR_AEAD_TAG_LEN, MR_ERR_PROTOCOL,
                  "sealed state is corrupted: value of %.*s too short", (int)ekey.len, ekey.ptr);
    size_t n = sealed.len - MR_AEAD_NONCE_LEN - MR_AEAD_TAG_LEN;
    MR_GUARD_OUT(aad_for(ekey, &aad));
    MR_GUARD_OUT(mr_buf_reserve(out, n + 1));
    if (!mr_ok(mr_aead_decrypt(key, sealed.ptr, mr_buf_slice(&aad),
                               MR_SLICE(sealed.ptr + MR_AEAD_NONCE_LEN, n),
                               sealed.ptr + MR_AEAD_NONCE_LEN + n, out->data + out->len)))
        MR_BAIL_OUT(MR_ERR_PROTOCOL, "sealed state is corrupted: value of %.*s does not open",
                    (int)ekey.len, ekey.ptr);
    out->len += n;
    res = MR_SUCCESS;
out:
    mr_buf_free(&aad);
    return res;
}

static mr_result meta_key(const char *prefix, const char *name, mr_buf *out)
{
    MR_GUARD(mr_buf_append_str(out, prefix));
    MR_GUARD(mr_buf_append_u8(out, (uint8_t)META));
    return mr_buf_append_str(out, name);
}

/* ---- small vectors ---- */

static mr_result grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return MR_SUCCESS;
    size_t nc = *cap != 0 ? *cap * 2 : 8;
    void *nv = mr_realloc(*v, nc * elem);
    MR_ENSURE_ALLOC(nv);
    *v = nv;
    *cap = nc;
    return MR_SUCCESS;
}

static mr_result note_read(etxn *t, const char *key, int64_t rev)
{
    for (size_t i = 0; i < t->n_reads; i++)
        if (strcmp(t->reads[i].key, key) == 0)
            return MR_SUCCESS;
    MR_GUARD(grow((void **)&t->reads, &t->cap_reads, t->n_reads, sizeof(*t->reads)));
    char *k = mr_strdup(key);
    MR_ENSURE_ALLOC(k);
    t->reads[t->n_reads++] = (rd){.key = k, .rev = rev};
    return MR_SUCCESS;
}

static mr_result note_scan(etxn *t, const char *prefix)
{
    MR_GUARD(grow((void **)&t->scans, &t->cap_scans, t->n_scans, sizeof(*t->scans)));
    char *p = mr_strdup(prefix);
    MR_ENSURE_ALLOC(p);
    t->scans[t->n_scans++] = p;
    return MR_SUCCESS;
}

static mr_result note_write(etxn *t, const char *key, const uint8_t *v, size_t len, bool del)
{
    wr *w = NULL;
    for (size_t i = 0; i < t->n_writes && w == NULL; i++)
        if (strcmp(t->writes[i].key, key) == 0)
            w = &t->writes[i];
    if (w == NULL) {
        MR_GUARD(grow((void **)&t->writes, &t->cap_writes, t->n_writes, sizeof(*t->writes)));
        w = &t->writes[t->n_writes];
        w->key = mr_strdup(key);
        MR_ENSURE_ALLOC(w->key);
        mr_buf_init(&w->val, 0, MR_BUF_SECRET);
        t->n_writes++;
    }
    w->del = del;
    mr_buf_reset(&w->val);
    return del ? MR_SUCCESS : mr_buf_append(&w->val, v, len);
}

/* ---- cached values ---- */

static mr_result cv_encode(int64_t rev, uint8_t kind, mr_slice plain, mr_buf *out)
{
    uint8_t hdr[CV_HDR];
    for (int i = 0; i < 8; i++)
        hdr[i] = (uint8_t)((uint64_t)rev >> (8 * i));
    hdr[8] = kind;
    MR_GUARD(mr_buf_append(out, hdr, sizeof(hdr)));
    return mr_buf_append(out, plain.ptr, plain.len);
}

static mr_result cv_decode(mr_slice cv, int64_t *rev, uint8_t *kind, mr_slice *plain)
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

static bool is_volatile(const estore *s, const char *key)
{
    for (size_t i = 0; i < s->n_vol; i++)
        if (strncmp(key, s->vol[i], strlen(s->vol[i])) == 0)
            return true;
    return false;
}

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

static mr_result apply_put(estore *s, mr_store_txn *ct, const char *key,
                           const Etcdserverpb__KeyValue *kv)
{
    mr_result res = MR_FAILURE;
    mr_buf plain, cv;
    mr_buf_init(&plain, 0, MR_BUF_SECRET);
    mr_buf_init(&cv, 0, MR_BUF_SECRET);
    uint8_t kind = CV_OK;
    if (!mr_ok(open_value(MR_SLICE(s->key, MR_STORE_DEK_LEN),
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
static mr_result apply_events(estore *s, Etcdserverpb__Event *const *ev, size_t n, int64_t rev)
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
        state_changed |= !is_volatile(s, (const char *)key.data);
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

static mr_result load(estore *s, bool replace);

static void on_watch(void *arg, const Etcdserverpb__WatchResponse *r)
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

static mr_result load_kv(void *arg, const Etcdserverpb__KeyValue *kv)
{
    loader *l = arg;
    if (!store_key(l->s, &kv->key, &l->key))
        return MR_SUCCESS;
    return apply_put(l->s, l->ct, (const char *)l->key.data, kv);
}

/* Reads the whole prefix into the replica (replace: dropping what it held). With the lock
 * held, or before the watch runs. */
static mr_result load(estore *s, bool replace)
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

static mr_result rev_kv(void *arg, const Etcdserverpb__KeyValue *kv)
{
    ((revbox *)arg)->mod = kv->mod_revision;
    return MR_SUCCESS;
}

/* Waits until the replica holds every commit made before the call. */
static mr_result catch_up(estore *s)
{
    mr_buf k;
    mr_buf_init(&k, 0, 0);
    revbox rb = {0};
    mr_result r = meta_key((const char *)s->prefix.data, "rev", &k);
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
    MR_ENSURE(ok, MR_ERR_IO, "etcd unavailable: the local replica is behind (watch %s)",
              mr_etcd_watch_live(s->cli) ? "lagging" : "disconnected");
    return MR_SUCCESS;
}

static mr_result e_sync(mr_store *st, uint64_t *state_rev)
{
    estore *s = (estore *)st;
    MR_GUARD(catch_up(s));
    pthread_mutex_lock(&s->mu);
    *state_rev = s->state_rev;
    pthread_mutex_unlock(&s->mu);
    return MR_SUCCESS;
}

/* ---- transactions ---- */

static void txn_free(etxn *t)
{
    if (t == NULL)
        return;
    mr_store_abort(t->ct);
    for (size_t i = 0; i < t->n_reads; i++)
        mr_free(t->reads[i].key);
    for (size_t i = 0; i < t->n_scans; i++)
        mr_free(t->scans[i]);
    for (size_t i = 0; i < t->n_writes; i++) {
        mr_free(t->writes[i].key);
        mr_buf_free(&t->writes[i].val);
    }
    mr_free(t->reads);
    mr_free(t->scans);
    mr_free(t->writes);
    mr_free(t);
}

static mr_result e_begin(mr_store *st, unsigned flags, mr_store_txn **out)
{
    estore *s = (estore *)st;
    (void)flags; /* every transaction reads the newest committed state */
    MR_GUARD(catch_up(s));
    etxn *t = mr_calloc(1, sizeof(*t));
    MR_ENSURE_ALLOC(t);
    t->base.store = st;
    t->s = s;
    pthread_mutex_lock(&s->mu);
    mr_result r = mr_store_begin(s->cache, &t->ct);
    t->snap = s->applied;
    pthread_mutex_unlock(&s->mu);
    if (!mr_ok(r)) {
        txn_free(t);
        return MR_FAILURE;
    }
    *out = &t->base;
    return MR_SUCCESS;
}

static mr_result check_key_name(const char *key)
{
    MR_ENSURE(key[0] != META, MR_ERR_USAGE, "store key must not start with byte 0x01");
    return MR_SUCCESS;
}

static mr_result e_get(mr_store_txn *tx, const char *key, mr_buf *value, bool *found)
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
        mr_error_set(MR_ERR_PROTOCOL, __FILE__, __LINE__,
                     "sealed state is corrupted: value of %s does not open", key);
        r = MR_FAILURE;
    }
    if (mr_ok(r) && *found)
        r = mr_buf_append(value, plain.ptr, plain.len);
    if (mr_ok(r) && kind != CV_OWN)
        r = note_read(t, key, *found ? rev : 0);
    mr_buf_free(&cv);
    return r;
}

static mr_result mirror(etxn *t, const char *key, const uint8_t *v, size_t len, bool del)
{
    MR_GUARD(check_key_name(key));
    MR_GUARD(note_write(t, key, v, len, del));
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

static mr_result e_put(mr_store_txn *tx, const char *key, const uint8_t *v, size_t len)
{
    return mirror((etxn *)tx, key, v, len, false);
}

static mr_result e_del(mr_store_txn *tx, const char *key)
{
    return mirror((etxn *)tx, key, NULL, 0, true);
}

/* Rewrites a replica listing into plaintext values, noting what was read. */
static mr_result e_list(mr_store_txn *tx, const char *prefix, mr_store_list *out)
{
    etxn *t = (etxn *)tx;
    mr_result res = MR_FAILURE;
    mr_store_list raw = {0};
    mr_buf keys, vals;
    mr_buf_init(&keys, 0, 0);
    mr_buf_init(&vals, 0, MR_BUF_SECRET);
    memset(out, 0, sizeof(*out));
    MR_GUARD_OUT(mr_store_scan(t->ct, prefix, &raw));
    MR_GUARD_OUT(note_scan(t, prefix));
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
            mr_error_set(MR_ERR_PROTOCOL, __FILE__, __LINE__,
                         "sealed state is corrupted: value of %s does not open", raw.items[i].key);
            r = MR_FAILURE;
        }
        if (mr_ok(r) && kind != CV_OWN)
            r = note_read(t, raw.items[i].key, rev);
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

/* ---- commit ---- */

typedef struct txn_msg {
    Etcdserverpb__Compare *cmp;
    Etcdserverpb__Compare **cmpp;
    size_t n_cmp;
    Etcdserverpb__RequestOp *ops;
    Etcdserverpb__RequestOp **opsp;
    Etcdserverpb__PutRequest *puts;
    Etcdserverpb__DeleteRangeRequest *dels;
    size_t n_ops;
    mr_buf *ekeys; /* etcd keys of compares and ops */
    size_t n_ekeys;
    mr_buf *sealed;
    size_t n_sealed;
} txn_msg;

static void msg_free(txn_msg *m)
{
    for (size_t i = 0; i < m->n_ekeys; i++)
        mr_buf_free(&m->ekeys[i]);
    for (size_t i = 0; i < m->n_sealed; i++)
        mr_buf_free(&m->sealed[i]);
    mr_free(m->ekeys);
    mr_free(m->sealed);
    mr_free(m->cmp);
    mr_free(m->cmpp);
    mr_free(m->ops);
    mr_free(m->opsp);
    mr_free(m->puts);
    mr_free(m->dels);
}

static ProtobufCBinaryData bin_of(const mr_buf *b)
{
    ProtobufCBinaryData d = {b->len, b->data};
    return d;
}

static mr_buf *new_ekey(txn_msg *m, const estore *s, const char *key)
{
    mr_buf *b = &m->ekeys[m->n_ekeys++];
    mr_buf_init(b, 0, 0);
    if (!mr_ok(mr_buf_append(b, s->prefix.data, s->prefix.len)) ||
        !mr_ok(mr_buf_append_str(b, key)))
        return NULL;
    return b;
}

static Etcdserverpb__Compare *new_cmp(txn_msg *m)
{
    Etcdserverpb__Compare *c = &m->cmp[m->n_cmp];
    etcdserverpb__compare__init(c);
    m->cmpp[m->n_cmp++] = c;
    return c;
}

static mr_result build_compares(const etxn *t, txn_msg *m)
{
    const estore *s = t->s;
    if (t->n_reads + t->n_scans > MAX_COMPARES) {
        /* too many to list: no commit at all may have happened since the snapshot */
        Etcdserverpb__Compare *c = new_cmp(m);
        mr_buf *k = &m->ekeys[m->n_ekeys++];
        mr_buf_init(k, 0, 0);
        MR_GUARD(meta_key((const char *)s->prefix.data, "rev", k));
        c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS;
        c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
        c->key = bin_of(k);
        c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
        c->mod_revision = t->snap + 1;
        return MR_SUCCESS;
    }
    for (size_t i = 0; i < t->n_reads; i++) {
        Etcdserverpb__Compare *c = new_cmp(m);
        mr_buf *k = new_ekey(m, s, t->reads[i].key);
        MR_ENSURE_ALLOC(k);
        c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
        c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
        c->key = bin_of(k);
        c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
        c->mod_revision = t->reads[i].rev;
    }
    for (size_t i = 0; i < t->n_scans; i++) {
        /* nothing under the prefix created or changed after the snapshot (deletions of keys
         * it listed are caught by their own compares above) */
        Etcdserverpb__Compare *c = new_cmp(m);
        mr_buf *k = new_ekey(m, s, t->scans[i]);
        mr_buf *end = &m->ekeys[m->n_ekeys++];
        mr_buf_init(end, 0, 0);
        MR_ENSURE_ALLOC(k);
        MR_GUARD(mr_etcd_prefix_end(mr_buf_slice(k), end));
        c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS;
        c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
        c->key = bin_of(k);
        c->range_end = bin_of(end);
        c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
        c->mod_revision = t->snap + 1;
    }
    return MR_SUCCESS;
}

static mr_result build_ops(const etxn *t, txn_msg *m)
{
    const estore *s = t->s;
    for (size_t i = 0; i <= t->n_writes; i++) {
        Etcdserverpb__RequestOp *op = &m->ops[m->n_ops];
        etcdserverpb__request_op__init(op);
        m->opsp[m->n_ops] = op;
        mr_buf *k;
        if (i == t->n_writes) { /* the commit marker */
            k = &m->ekeys[m->n_ekeys++];
            mr_buf_init(k, 0, 0);
            MR_GUARD(meta_key((const char *)s->prefix.data, "rev", k));
        } else {
            k = new_ekey(m, s, t->writes[i].key);
            MR_ENSURE_ALLOC(k);
        }
        if (i < t->n_writes && t->writes[i].del) {
            Etcdserverpb__DeleteRangeRequest *d = &m->dels[m->n_ops];
            etcdserverpb__delete_range_request__init(d);
            d->key = bin_of(k);
            op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
            op->request_delete_range = d;
        } else {
            Etcdserverpb__PutRequest *p = &m->puts[m->n_ops];
            etcdserverpb__put_request__init(p);
            p->key = bin_of(k);
            if (i < t->n_writes) {
                mr_buf *sv = &m->sealed[m->n_sealed++];
                mr_buf_init(sv, 0, 0);
                MR_GUARD(seal_value(MR_SLICE(s->key, MR_STORE_DEK_LEN), mr_buf_slice(k),
                                    mr_buf_slice(&t->writes[i].val), sv));
                p->value = bin_of(sv);
            }
            op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            op->request_put = p;
        }
        m->n_ops++;
    }
    return MR_SUCCESS;
}

static mr_result e_commit(mr_store_txn *tx)
{
    etxn *t = (etxn *)tx;
    estore *s = t->s;
    mr_result res = MR_FAILURE;
    txn_msg m;
    memset(&m, 0, sizeof(m));
    if (t->n_writes == 0) { /* a consistent snapshot: nothing to check */
        txn_free(t);
        return MR_SUCCESS;
    }
    size_t nc = t->n_reads + t->n_scans + 1, no = t->n_writes + 1;
    m.cmp = mr_calloc(nc, sizeof(*m.cmp));
    m.cmpp = mr_calloc(nc, sizeof(*m.cmpp)); /* NOLINT(bugprone-sizeof-expression) */
    m.ops = mr_calloc(no, sizeof(*m.ops));
    m.opsp = mr_calloc(no, sizeof(*m.opsp)); /* NOLINT(bugprone-sizeof-expression) */
    m.puts = mr_calloc(no, sizeof(*m.puts));
    m.dels = mr_calloc(no, sizeof(*m.dels));
    m.ekeys = mr_calloc(nc * 2 + no + 2, sizeof(*m.ekeys));
    m.sealed = mr_calloc(no, sizeof(*m.sealed));
    MR_ENSURE_OUT(m.cmp && m.cmpp && m.ops && m.opsp && m.puts && m.dels && m.ekeys && m.sealed,
                  MR_ERR_INTERNAL, "out of memory");
    MR_GUARD_OUT(build_compares(t, &m));
    MR_GUARD_OUT(build_ops(t, &m));
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    req.n_compare = m.n_cmp;
    req.compare = m.cmpp;
    req.n_success = m.n_ops;
    req.success = m.opsp;
    bool ok = false;
    int64_t rev = 0;
    MR_GUARD_OUT(mr_etcd_txn(s->cli, &req, &ok, &rev));
    pthread_mutex_lock(&s->mu);
    if (ok)
        s->commits++;
    else
        s->conflicts++;
    pthread_mutex_unlock(&s->mu);
    MR_ENSURE_OUT(ok, MR_ERR_STATE, "store conflict: another commit changed what this "
                  "transaction read");
    res = MR_SUCCESS;
out:
    msg_free(&m);
    txn_free(t);
    return res;
}

static void e_abort(mr_store_txn *tx) { txn_free((etxn *)tx); }

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
    for (size_t i = 0; i < s->n_vol; i++)
        mr_free(s->vol[i]);
    mr_free(s->vol);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    mr_free(s);
}

static const mr_store_vtbl etcd_vtbl = {
    .name = "etcd",
    .begin = e_begin,
    .get = e_get,
    .put = e_put,
    .del = e_del,
    .list = e_list,
    .commit = e_commit,
    .abort = e_abort,
    .stats = e_stats,
    .close = e_close,
    .sync = e_sync,
};

/* ---- creation and opening ---- */

static const char *prefix_or_default(const char *p) { return p != NULL ? p : "/marblerun/"; }

typedef struct found {
    bool any;
} found;

static mr_result found_kv(void *arg, const Etcdserverpb__KeyValue *kv)
{
    (void)kv;
    ((found *)arg)->any = true;
    return MR_SUCCESS;
}

MR_RESULT mr_etcd_store_probe(mr_etcd *cli, const char *prefix, bool *has_state)
{
    mr_buf k;
    mr_buf_init(&k, 0, 0);
    found f = {false};
    mr_result r = meta_key(prefix_or_default(prefix), "keycheck", &k);
    if (mr_ok(r))
        r = mr_etcd_range(cli, mr_buf_slice(&k), MR_SLICE("", 0), 0, found_kv, &f, NULL);
    mr_buf_free(&k);
    *has_state = f.any;
    return r;
}

typedef struct check {
    mr_slice key;
    bool opened;
    bool seen;
} check;

static mr_result check_kv(void *arg, const Etcdserverpb__KeyValue *kv)
{
    check *c = arg;
    mr_buf plain;
    mr_buf_init(&plain, 0, MR_BUF_SECRET);
    c->seen = true;
    c->opened = mr_ok(open_value(c->key, MR_SLICE(kv->key.data, kv->key.len),
                                 MR_SLICE(kv->value.data, kv->value.len), &plain)) &&
                plain.len == strlen(KEYCHECK_TEXT) &&
                memcmp(plain.data, KEYCHECK_TEXT, plain.len) == 0;
    mr_error_clear();
    mr_buf_free(&plain);
    return MR_SUCCESS;
}

MR_RESULT mr_etcd_store_check_key(mr_etcd *cli, const char *prefix, mr_slice key, bool *ok)
{
    mr_buf k;
    mr_buf_init(&k, 0, 0);
    check c = {.key = key};
    mr_result r = meta_key(prefix_or_default(prefix), "keycheck", &k);
    if (mr_ok(r))
        r = mr_etcd_range(cli, mr_buf_slice(&k), MR_SLICE("", 0), 0, check_kv, &c, NULL);
    mr_buf_free(&k);
    MR_GUARD(r);
    MR_ENSURE(c.seen, MR_ERR_NOT_FOUND, "etcd holds no state under %s", prefix_or_default(prefix));
    *ok = c.opened;
    return MR_SUCCESS;
}

MR_RESULT mr_etcd_store_create(mr_etcd *cli, const char *prefix, mr_slice key, mr_store *initial,
                               bool *created)
{
    mr_result res = MR_FAILURE;
    estore tmp;
    mr_store_txn *it = NULL;
    mr_store_list all = {0};
    etxn *t = mr_calloc(1, sizeof(*t));
    memset(&tmp, 0, sizeof(tmp));
    mr_buf_init(&tmp.prefix, 0, 0);
    *created = false;
    MR_ENSURE_ALLOC(t);
    MR_ENSURE_OUT(key.len == MR_STORE_DEK_LEN, MR_ERR_USAGE, "state key must be %u bytes",
                  MR_STORE_DEK_LEN);
    MR_GUARD_OUT(mr_buf_append_str(&tmp.prefix, prefix_or_default(prefix)));
    MR_GUARD_OUT(mr_buf_nul_terminate(&tmp.prefix));
    tmp.key = (uint8_t *)(uintptr_t)key.ptr;
    t->s = &tmp;
    /* the keycheck must not exist yet: exactly one creator wins */
    MR_GUARD_OUT(note_read(t, "\x01keycheck", 0));
    MR_GUARD_OUT(note_write(t, "\x01keycheck", (const uint8_t *)KEYCHECK_TEXT,
                            strlen(KEYCHECK_TEXT), false));
    MR_GUARD_OUT(mr_store_begin(initial, &it));
    MR_GUARD_OUT(mr_store_scan(it, "", &all));
    for (size_t i = 0; i < all.count; i++) {
        MR_GUARD_OUT(check_key_name(all.items[i].key));
        MR_GUARD_OUT(note_write(t, all.items[i].key, all.items[i].value.ptr,
                                all.items[i].value.len, false));
    }
    /* the keycheck "read" compares as key "\x01keycheck" under the prefix */
    txn_msg m;
    memset(&m, 0, sizeof(m));
    size_t nc = 2, no = t->n_writes + 1;
    m.cmp = mr_calloc(nc, sizeof(*m.cmp));
    m.cmpp = mr_calloc(nc, sizeof(*m.cmpp)); /* NOLINT(bugprone-sizeof-expression) */
    m.ops = mr_calloc(no, sizeof(*m.ops));
    m.opsp = mr_calloc(no, sizeof(*m.opsp)); /* NOLINT(bugprone-sizeof-expression) */
    m.puts = mr_calloc(no, sizeof(*m.puts));
    m.dels = mr_calloc(no, sizeof(*m.dels));
    m.ekeys = mr_calloc(nc * 2 + no + 2, sizeof(*m.ekeys));
    m.sealed = mr_calloc(no, sizeof(*m.sealed));
    mr_result r = m.cmp && m.cmpp && m.ops && m.opsp && m.puts && m.dels && m.ekeys && m.sealed
                      ? MR_SUCCESS
                      : MR_FAILURE;
    if (!mr_ok(r))
        mr_error_set(MR_ERR_INTERNAL, __FILE__, __LINE__, "out of memory");
    if (mr_ok(r))
        r = build_compares(t, &m);
    if (mr_ok(r))
        r = build_ops(t, &m);
    if (mr_ok(r)) {
        Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
        req.n_compare = m.n_cmp;
        req.compare = m.cmpp;
        req.n_success = m.n_ops;
        req.success = m.opsp;
        int64_t rev = 0;
        r = mr_etcd_txn(cli, &req, created, &rev);
    }
    msg_free(&m);
    MR_GUARD_OUT(r);
    res = MR_SUCCESS;
out:
    t->s = NULL;
    for (size_t i = 0; i < t->n_reads; i++)
        mr_free(t->reads[i].key);
    for (size_t i = 0; i < t->n_writes; i++) {
        mr_free(t->writes[i].key);
        mr_buf_free(&t->writes[i].val);
    }
    mr_free(t->reads);
    mr_free(t->writes);
    mr_free(t);
    mr_store_list_free(&all);
    mr_store_abort(it);
    mr_buf_free(&tmp.prefix);
    return res;
}

static mr_result copy_volatile(estore *s, const mr_etcd_store_options *o)
{
    if (o == NULL || o->n_volatile == 0)
        return MR_SUCCESS;
    s->vol = mr_calloc(o->n_volatile, sizeof(*s->vol)); /* NOLINT(bugprone-sizeof-expression) */
    MR_ENSURE_ALLOC(s->vol);
    for (size_t i = 0; i < o->n_volatile; i++) {
        s->vol[i] = mr_strdup(o->volatile_prefixes[i]);
        MR_ENSURE_ALLOC(s->vol[i]);
        s->n_vol++;
    }
    return MR_SUCCESS;
}

MR_RESULT mr_store_open_etcd(mr_etcd *cli, mr_slice key, const mr_etcd_store_options *opts,
                             mr_store **out)
{
    mr_result res = MR_FAILURE;
    estore *s = mr_calloc(1, sizeof(*s));
    if (s == NULL) {
        mr_etcd_close(cli);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    s->base.vt = &etcd_vtbl;
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
    MR_GUARD_OUT(mr_buf_append_str(&s->prefix, prefix_or_default(opts != NULL ? opts->prefix : NULL)));
    MR_GUARD_OUT(mr_etcd_prefix_end(mr_buf_slice(&s->prefix), &s->end));
    MR_GUARD_OUT(mr_buf_nul_terminate(&s->prefix));
    MR_GUARD_OUT(copy_volatile(s, opts));
    MR_GUARD_OUT(mr_store_open_memory(&s->cache));
    MR_GUARD_OUT(load(s, false));
    MR_GUARD_OUT(mr_etcd_watch(s->cli, mr_buf_slice(&s->prefix), mr_buf_slice(&s->end),
                               s->applied + 1, on_watch, s));
    *out = &s->base;
    s = NULL;
    res = MR_SUCCESS;
out:
    e_close(s ? &s->base : NULL);
    return res;
}
