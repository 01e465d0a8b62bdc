/* SPDX-License-Identifier: Apache-2.0 */
/* The kubernetes backend (k8s_store.h): its wire format, the replica and transactions up to
 * the commit (k8s_store_commit.c). */
#include "coordinator/store/k8s_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/store/sealed_value.h"

/* ---- entry lists ---- */

void ks_list_free(ks_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        mr_free(l->v[i].key);
        mr_buf_free(&l->v[i].sealed);
    }
    mr_free(l->v);
    memset(l, 0, sizeof(*l));
}

MR_RESULT ks_list_add(ks_list *l, const char *key, uint64_t gen, bool del, mr_slice sealed)
{
    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 16 : l->cap * 2;
        ks_ent *v = mr_realloc(l->v, cap * sizeof(*v));
        MR_ENSURE_ALLOC(v);
        l->v = v;
        l->cap = cap;
    }
    ks_ent *e = &l->v[l->n];
    e->key = mr_strdup(key);
    MR_ENSURE_ALLOC(e->key);
    e->gen = gen;
    e->del = del;
    mr_buf_init(&e->sealed, 0, 0);
    if (!mr_ok(mr_buf_set(&e->sealed, sealed.ptr, sealed.len))) {
        mr_free(e->key);
        return MR_FAILURE;
    }
    l->n++;
    return MR_SUCCESS;
}

static int cmp_ent(const void *a, const void *b)
{
    return strcmp(((const ks_ent *)a)->key, ((const ks_ent *)b)->key);
}

void ks_list_sort(ks_list *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), cmp_ent);
}

const ks_ent *ks_list_find(const ks_list *l, const char *key)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->v[mid].key, key);
        if (c == 0)
            return &l->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t ks_list_bytes(const ks_list *l)
{
    size_t n = 4;
    for (size_t i = 0; i < l->n; i++)
        n += 2 + strlen(l->v[i].key) + 8 + 1 + 4 + l->v[i].sealed.len;
    return n;
}

static MR_RESULT put_le(mr_buf *out, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return mr_buf_append(out, b, (size_t)bytes);
}

static bool get_le(mr_slice *in, int bytes, uint64_t *v)
{
    if (in->len < (size_t)bytes)
        return false;
    *v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        *v = *v << 8 | in->ptr[i];
    in->ptr += bytes;
    in->len -= (size_t)bytes;
    return true;
}

/* u32 count; per entry: u16 key length, key, u64 generation, u8 flags (1 = deleted), u32
 * value length, sealed value. */
MR_RESULT ks_list_encode(const ks_list *l, mr_buf *out)
{
    MR_GUARD(put_le(out, l->n, 4));
    for (size_t i = 0; i < l->n; i++) {
        const ks_ent *e = &l->v[i];
        MR_GUARD(put_le(out, strlen(e->key), 2));
        MR_GUARD(mr_buf_append_str(out, e->key));
        MR_GUARD(put_le(out, e->gen, 8));
        MR_GUARD(mr_buf_append_u8(out, e->del ? 1 : 0));
        MR_GUARD(put_le(out, e->sealed.len, 4));
        MR_GUARD(mr_buf_append(out, e->sealed.data, e->sealed.len));
    }
    return MR_SUCCESS;
}

static MR_RESULT decode_one(mr_slice *in, ks_list *out)
{
    uint64_t klen = 0, gen = 0, flags = 0, vlen = 0;
    char key[MR_STORE_KEY_MAX + 1];
    MR_ENSURE(get_le(in, 2, &klen) && klen > 0 && klen <= MR_STORE_KEY_MAX && in->len >= klen,
              MR_ERR_CORRUPT, "kubernetes store: malformed entry");
    memcpy(key, in->ptr, klen);
    key[klen] = '\0';
    in->ptr += klen;
    in->len -= klen;
    MR_ENSURE(memchr(key, 0, klen) == NULL && get_le(in, 8, &gen) && get_le(in, 1, &flags) &&
                  flags <= 1 && get_le(in, 4, &vlen) && vlen <= in->len,
              MR_ERR_CORRUPT, "kubernetes store: malformed entry");
    MR_GUARD(ks_list_add(out, key, gen, flags == 1, MR_SLICE(in->ptr, vlen)));
    in->ptr += vlen;
    in->len -= vlen;
    return MR_SUCCESS;
}

MR_RESULT ks_list_decode(mr_slice in, ks_list *out)
{
    uint64_t n = 0;
    memset(out, 0, sizeof(*out));
    MR_ENSURE(get_le(&in, 4, &n), MR_ERR_CORRUPT, "kubernetes store: malformed entry list");
    for (uint64_t i = 0; i < n; i++) {
        if (!mr_ok(decode_one(&in, out))) {
            ks_list_free(out);
            return MR_FAILURE;
        }
    }
    if (in.len != 0) {
        ks_list_free(out);
        MR_BAIL(MR_ERR_CORRUPT, "kubernetes store: malformed entry list");
    }
    ks_list_sort(out);
    for (size_t i = 1; i < out->n; i++) {
        if (strcmp(out->v[i - 1].key, out->v[i].key) == 0) {
            ks_list_free(out);
            MR_BAIL(MR_ERR_CORRUPT, "kubernetes store: duplicate entry");
        }
    }
    return MR_SUCCESS;
}

/* ---- head and shards ---- */

void ks_head_free(ks_head *h)
{
    mr_free(h->fg);
    ks_list_free(&h->pending);
    mr_k8s_obj_free(&h->rest);
    memset(h, 0, sizeof(*h));
}

static MR_RESULT parse_counters(mr_slice v, ks_head *h)
{
    uint64_t n = 0;
    MR_ENSURE(get_le(&v, 8, &h->gen) && get_le(&v, 8, &h->epoch) && get_le(&v, 4, &n) &&
                  n > 0 && n <= 4096 && v.len == n * 8,
              MR_ERR_CORRUPT, "kubernetes store: malformed head");
    h->n = (uint32_t)n;
    h->fg = mr_calloc(n, sizeof(uint64_t));
    MR_ENSURE_ALLOC(h->fg);
    for (uint64_t i = 0; i < n; i++)
        (void)get_le(&v, 8, &h->fg[i]);
    return MR_SUCCESS;
}

static MR_RESULT keep_rest(const mr_k8s_entry *e, ks_head *h)
{
    if (h->rest.count == 0 && h->rest.items == NULL) {
        h->rest.items = mr_calloc(64, sizeof(mr_k8s_entry));
        MR_ENSURE_ALLOC(h->rest.items);
    }
    MR_ENSURE(h->rest.count < 64, MR_ERR_CORRUPT, "kubernetes store: too many head entries");
    mr_k8s_entry *d = &h->rest.items[h->rest.count];
    mr_buf_init(&d->value, 0, MR_BUF_SECRET);
    d->name = mr_strdup(e->name);
    MR_ENSURE_ALLOC(d->name);
    h->rest.count++;
    return mr_buf_set(&d->value, e->value.data, e->value.len);
}

MR_RESULT ks_head_parse(const mr_k8s_obj *o, ks_head *h)
{
    memset(h, 0, sizeof(*h));
    const mr_k8s_entry *f = mr_k8s_obj_entry(o, "format");
    const mr_k8s_entry *hd = mr_k8s_obj_entry(o, "head");
    const mr_k8s_entry *p = mr_k8s_obj_entry(o, "pending");
    MR_ENSURE(f != NULL && f->value.len == strlen(KS_FORMAT) &&
                  memcmp(f->value.data, KS_FORMAT, f->value.len) == 0 && hd != NULL,
              MR_ERR_CORRUPT, "kubernetes store: the state Secret is not in a known format");
    memcpy(h->rv, o->rv, sizeof(h->rv));
    mr_result r = parse_counters(mr_buf_slice(&hd->value), h);
    if (mr_ok(r) && p != NULL)
        r = ks_list_decode(mr_buf_slice(&p->value), &h->pending);
    for (size_t i = 0; mr_ok(r) && i < o->count; i++) {
        const char *nm = o->items[i].name;
        if (strcmp(nm, "format") != 0 && strcmp(nm, "head") != 0 && strcmp(nm, "pending") != 0)
            r = keep_rest(&o->items[i], h);
    }
    if (!mr_ok(r))
        ks_head_free(h);
    return r;
}

void ks_entries_free(mr_k8s_entry *items, size_t n)
{
    for (size_t i = 0; items != NULL && i < n; i++) {
        mr_free(items[i].name);
        mr_buf_free(&items[i].value);
    }
    mr_free(items);
}

static MR_RESULT set_entry(mr_k8s_entry *e, const char *name, mr_slice v)
{
    mr_buf_init(&e->value, 0, MR_BUF_SECRET);
    e->name = mr_strdup(name);
    MR_ENSURE_ALLOC(e->name);
    return mr_buf_set(&e->value, v.ptr, v.len);
}

MR_RESULT ks_head_entries(const ks_head *h, mr_k8s_entry **items, size_t *n)
{
    mr_result res = MR_FAILURE;
    mr_buf hd, pend;
    mr_buf_init(&hd, 0, 0);
    mr_buf_init(&pend, 0, 0);
    size_t total = 3 + h->rest.count;
    mr_k8s_entry *v = mr_calloc(total, sizeof(*v));
    *n = 0;
    MR_ENSURE_ALLOC_OUT(v);
    MR_GUARD_OUT(put_le(&hd, h->gen, 8));
    MR_GUARD_OUT(put_le(&hd, h->epoch, 8));
    MR_GUARD_OUT(put_le(&hd, h->n, 4));
    for (uint32_t i = 0; i < h->n; i++)
        MR_GUARD_OUT(put_le(&hd, h->fg[i], 8));
    MR_GUARD_OUT(ks_list_encode(&h->pending, &pend));
    MR_GUARD_OUT(set_entry(&v[(*n)++], "format", MR_SLICE_STR(KS_FORMAT)));
    MR_GUARD_OUT(set_entry(&v[(*n)++], "head", mr_buf_slice(&hd)));
    MR_GUARD_OUT(set_entry(&v[(*n)++], "pending", mr_buf_slice(&pend)));
    for (size_t i = 0; i < h->rest.count; i++)
        MR_GUARD_OUT(set_entry(&v[(*n)++], h->rest.items[i].name,
                               mr_buf_slice(&h->rest.items[i].value)));
    *items = v;
    v = NULL;
    res = MR_SUCCESS;
out:
    if (v != NULL)
        ks_entries_free(v, *n);
    mr_buf_free(&hd);
    mr_buf_free(&pend);
    return res;
}

uint32_t ks_shard_of(const char *key, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = key; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    return (uint32_t)(h % n);
}

MR_RESULT ks_shard_name(const char *name, uint32_t i, char out[KS_NAME_MAX + 16])
{
    int k = snprintf(out, KS_NAME_MAX + 16, "%s-%u", name, i);
    MR_ENSURE(k > 0 && k < KS_NAME_MAX + 16, MR_ERR_USAGE, "kubernetes store: name too long");
    return MR_SUCCESS;
}

void ks_shard_free(ks_shard *sh)
{
    ks_list_free(&sh->ents);
    memset(sh, 0, sizeof(*sh));
}

MR_RESULT ks_shard_parse(const mr_k8s_obj *o, ks_shard *sh)
{
    memset(sh, 0, sizeof(*sh));
    if (!o->found)
        return MR_SUCCESS;
    const mr_k8s_entry *e = mr_k8s_obj_entry(o, "shard");
    MR_ENSURE(e != NULL, MR_ERR_CORRUPT, "kubernetes store: malformed shard");
    mr_slice v = mr_buf_slice(&e->value);
    MR_ENSURE(get_le(&v, 8, &sh->gen), MR_ERR_CORRUPT, "kubernetes store: malformed shard");
    MR_GUARD(ks_list_decode(v, &sh->ents));
    memcpy(sh->rv, o->rv, sizeof(sh->rv));
    return MR_SUCCESS;
}

/* ---- the replica ---- */

static MR_RESULT cv_encode(uint64_t gen, uint8_t kind, mr_slice plain, mr_buf *out)
{
    MR_GUARD(put_le(out, gen, 8));
    MR_GUARD(mr_buf_append_u8(out, kind));
    return mr_buf_append(out, plain.ptr, plain.len);
}

MR_RESULT ks_cv_decode(mr_slice cv, uint64_t *gen, uint8_t *kind, mr_slice *plain)
{
    MR_ENSURE(cv.len >= KS_CV_HDR && get_le(&cv, 8, gen), MR_ERR_INTERNAL,
              "store replica: malformed entry");
    *kind = cv.ptr[0];
    *plain = MR_SLICE(cv.ptr + 1, cv.len - 1);
    return MR_SUCCESS;
}

/* The view's value of one key after a change: pending first, then its shard. */
static MR_RESULT recompute(kstore *s, mr_store_txn *vt, const char *key, bool *changed)
{
    mr_result res = MR_FAILURE;
    const ks_ent *e = ks_list_find(&s->head.pending, key);
    if (e == NULL)
        e = ks_list_find(&s->shards[ks_shard_of(key, s->head.n)].ents, key);
    mr_buf old, plain, cv;
    mr_buf_init(&old, 0, MR_BUF_SECRET);
    mr_buf_init(&plain, 0, MR_BUF_SECRET);
    mr_buf_init(&cv, 0, MR_BUF_SECRET);
    bool had = false;
    uint64_t old_gen = 0;
    uint8_t kind = KS_CV_OK;
    mr_slice op;
    MR_GUARD_OUT(mr_store_get(vt, key, &old, &had));
    if (had)
        MR_GUARD_OUT(ks_cv_decode(mr_buf_slice(&old), &old_gen, &kind, &op));
    if (e == NULL || e->del) {
        *changed = had;
        if (had)
            MR_GUARD_OUT(mr_store_delete(vt, key));
        res = MR_SUCCESS;
        goto out;
    }
    *changed = !had || old_gen != e->gen;
    if (!*changed) {
        res = MR_SUCCESS;
        goto out;
    }
    kind = KS_CV_OK;
    if (!mr_ok(mr_sv_open(MR_SLICE(s->key, MR_STORE_DEK_LEN), KS_TAG, MR_SLICE_STR(key),
                          mr_buf_slice(&e->sealed), &plain))) {
        MR_LOG_ERROR("kubernetes store: a value does not open; reads of it fail", MR_F_ERR(),
                     MR_F_STR("key", key));
        mr_error_clear();
        kind = KS_CV_CORRUPT;
        mr_buf_reset(&plain);
    }
    MR_GUARD_OUT(cv_encode(e->gen, kind, mr_buf_slice(&plain), &cv));
    MR_GUARD_OUT(mr_store_put(vt, key, cv.data, cv.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&old);
    mr_buf_free(&plain);
    mr_buf_free(&cv);
    return res;
}

/* Keys of two sorted lists that differ (added, removed, or another generation). */
static MR_RESULT diff_keys(const ks_list *a, const ks_list *b, ks_list *out)
{
    size_t i = 0, k = 0;
    while (i < a->n || k < b->n) {
        int c = i == a->n ? 1 : k == b->n ? -1 : strcmp(a->v[i].key, b->v[k].key);
        if (c < 0) {
            MR_GUARD(ks_list_add(out, a->v[i++].key, 0, false, MR_SLICE("", 0)));
        } else if (c > 0) {
            MR_GUARD(ks_list_add(out, b->v[k++].key, 0, false, MR_SLICE("", 0)));
        } else {
            if (a->v[i].gen != b->v[k].gen || a->v[i].del != b->v[k].del)
                MR_GUARD(ks_list_add(out, a->v[i].key, 0, false, MR_SLICE("", 0)));
            i++;
            k++;
        }
    }
    return MR_SUCCESS;
}

static MR_RESULT install_shards(kstore *s, uint32_t n)
{
    if (s->shards != NULL)
        return MR_SUCCESS;
    s->shards = mr_calloc(n, sizeof(*s->shards));
    MR_ENSURE_ALLOC(s->shards);
    return MR_SUCCESS;
}

/* Moves fetched shards and the head in, collecting the keys that changed. */
static MR_RESULT take_over(kstore *s, ks_head *h, ks_shard **fetched, ks_list *changed)
{
    MR_GUARD(install_shards(s, h->n));
    MR_ENSURE(h->n == s->head.n || s->head.epoch == 0, MR_ERR_CORRUPT,
              "kubernetes store: the shard count changed");
    for (uint32_t i = 0; i < h->n; i++) {
        if (fetched == NULL || fetched[i] == NULL || (fetched[i]->gen <= s->shards[i].gen &&
                                                      s->shards[i].rv[0] != '\0'))
            continue;
        MR_GUARD(diff_keys(&s->shards[i].ents, &fetched[i]->ents, changed));
        ks_shard_free(&s->shards[i]);
        s->shards[i] = *fetched[i];
        memset(fetched[i], 0, sizeof(*fetched[i]));
    }
    if (s->head.epoch != 0 && h->epoch <= s->head.epoch)
        return MR_SUCCESS; /* an older head than the one applied */
    MR_GUARD(diff_keys(&s->head.pending, &h->pending, changed));
    ks_head_free(&s->head);
    s->head = *h;
    memset(h, 0, sizeof(*h));
    return MR_SUCCESS;
}

MR_RESULT ks_apply(kstore *s, ks_head *h, ks_shard **fetched)
{
    mr_result res = MR_FAILURE;
    ks_list changed = {0};
    mr_store_txn *vt = NULL;
    bool state = false;
    MR_GUARD_OUT(take_over(s, h, fetched, &changed));
    ks_list_sort(&changed);
    MR_GUARD_OUT(mr_store_begin(s->view, &vt));
    for (size_t i = 0; i < changed.n; i++) {
        if (i > 0 && strcmp(changed.v[i - 1].key, changed.v[i].key) == 0)
            continue;
        bool ch = false;
        MR_GUARD_OUT(recompute(s, vt, changed.v[i].key, &ch));
        state |= ch && !mr_prefix_set_match(&s->vol, changed.v[i].key);
    }
    mr_store_txn *tc = vt;
    vt = NULL;
    MR_GUARD_OUT(mr_store_commit(tc));
    if (state)
        s->state_rev = s->head.gen;
    res = MR_SUCCESS;
out:
    mr_store_abort(vt);
    ks_list_free(&changed);
    return res;
}

static MR_RESULT fetch_shards(kstore *s, const ks_head *h, ks_shard **fetched)
{
    for (uint32_t i = 0; i < h->n; i++) {
        pthread_mutex_lock(&s->mu);
        bool need = h->fg[i] > 0 && (s->shards == NULL || h->fg[i] > s->shards[i].gen);
        if (need && h->n == s->head.n)
            ks_watched_take(s, i, h->fg[i], &fetched[i]);
        pthread_mutex_unlock(&s->mu);
        if (!need || fetched[i] != NULL)
            continue;
        char nm[KS_NAME_MAX + 16];
        mr_k8s_obj o;
        MR_GUARD(ks_shard_name(s->name, i, nm));
        MR_GUARD(mr_k8s_get(s->cli, MR_K8S_SECRET, nm, &o));
        fetched[i] = mr_calloc(1, sizeof(ks_shard));
        mr_result r = fetched[i] != NULL ? ks_shard_parse(&o, fetched[i]) : MR_FAILURE;
        if (fetched[i] == NULL)
            mr_error_set(MR_ERR_INTERNAL, __FILE__, __LINE__, "out of memory");
        mr_k8s_obj_free(&o);
        MR_GUARD(r);
        MR_ENSURE(fetched[i]->gen >= h->fg[i], MR_ERR_CORRUPT,
                  "kubernetes store: shard %u is older than its head records", i);
    }
    return MR_SUCCESS;
}

static void free_fetched(ks_shard **fetched, uint32_t n)
{
    for (uint32_t i = 0; fetched != NULL && i < n; i++) {
        if (fetched[i] != NULL) {
            ks_shard_free(fetched[i]);
            mr_free(fetched[i]);
        }
    }
    mr_free(fetched);
}

MR_RESULT ks_refresh_obj(kstore *s, const mr_k8s_obj *o, bool *advanced)
{
    mr_result res = MR_FAILURE;
    ks_head h;
    ks_shard **fetched = NULL;
    uint32_t nf = 0;
    memset(&h, 0, sizeof(h));
    *advanced = false;
    pthread_mutex_lock(&s->mu);
    bool same = s->head.epoch != 0 && strcmp(o->rv, s->head.rv) == 0;
    pthread_mutex_unlock(&s->mu);
    if (same)
        return MR_SUCCESS;
    MR_GUARD_OUT(ks_head_parse(o, &h));
    pthread_mutex_lock(&s->mu);
    bool older = s->head.epoch != 0 && h.epoch <= s->head.epoch;
    pthread_mutex_unlock(&s->mu);
    if (older) {
        res = MR_SUCCESS;
        goto out;
    }
    fetched = mr_calloc(h.n, sizeof(ks_shard *));
    MR_ENSURE_ALLOC_OUT(fetched);
    nf = h.n; /* ks_apply takes h over */
    MR_GUARD_OUT(fetch_shards(s, &h, fetched));
    pthread_mutex_lock(&s->mu);
    uint64_t before = s->head.epoch;
    mr_result r = ks_apply(s, &h, fetched);
    *advanced = s->head.epoch > before;
    pthread_mutex_unlock(&s->mu);
    MR_GUARD_OUT(r);
    res = MR_SUCCESS;
out:
    free_fetched(fetched, nf);
    ks_head_free(&h);
    return res;
}

MR_RESULT ks_refresh(kstore *s)
{
    mr_k8s_obj o;
    bool advanced = false;
    MR_GUARD(mr_k8s_get(s->cli, MR_K8S_SECRET, s->name, &o));
    mr_result r = MR_FAILURE;
    if (o.found)
        r = ks_refresh_obj(s, &o, &advanced);
    else
        mr_error_set(MR_ERR_CORRUPT, __FILE__, __LINE__,
                     "kubernetes store: the state Secret %s is gone", s->name);
    mr_k8s_obj_free(&o);
    return r;
}
