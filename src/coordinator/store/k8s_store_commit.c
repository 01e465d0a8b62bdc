/* SPDX-License-Identifier: Apache-2.0 */
/* The kubernetes backend's commits (one compare-and-swap of the head), flushes of pending
 * entries to the shards, and creating and probing the state (k8s_store.h). */
#include "coordinator/store/k8s_store_int.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/store/sealed_value.h"

#define HEAD_MAX ((size_t)900 << 10)
#define KEYCHECK_NAME "\x01keycheck"

/* ---- validation against the replica as it is now (lock held) ---- */

static MR_RESULT view_gen(kstore *s, mr_store_txn *vt, const char *key, uint64_t *gen)
{
    mr_buf cv;
    mr_buf_init(&cv, 0, MR_BUF_SECRET);
    bool found = false;
    uint8_t kind = 0;
    mr_slice plain;
    *gen = 0;
    (void)s;
    mr_result r = mr_store_get(vt, key, &cv, &found);
    if (mr_ok(r) && found)
        r = ks_cv_decode(mr_buf_slice(&cv), gen, &kind, &plain);
    mr_buf_free(&cv);
    return r;
}

static MR_RESULT scan_newer(mr_store_txn *vt, const char *prefix, uint64_t snap, bool *newer)
{
    mr_store_list l = {0};
    *newer = false;
    MR_GUARD(mr_store_scan(vt, prefix, &l));
    mr_result r = MR_SUCCESS;
    for (size_t i = 0; mr_ok(r) && i < l.count && !*newer; i++) {
        uint64_t gen = 0;
        uint8_t kind = 0;
        mr_slice plain;
        r = ks_cv_decode(l.items[i].value, &gen, &kind, &plain);
        *newer = gen > snap;
    }
    mr_store_list_free(&l);
    return r;
}

static MR_RESULT validate(kstore *s, const ktxn *t)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *vt = NULL;
    MR_GUARD(mr_store_begin(s->view, &vt));
    for (size_t i = 0; i < t->sets.n_reads; i++) {
        uint64_t gen = 0;
        MR_GUARD_OUT(view_gen(s, vt, t->sets.reads[i].key, &gen));
        MR_ENSURE_OUT(gen == t->sets.reads[i].ver, MR_ERR_CONFLICT,
                      "store conflict: another commit changed what this transaction read");
    }
    for (size_t i = 0; i < t->sets.n_scans; i++) {
        bool newer = false;
        MR_GUARD_OUT(scan_newer(vt, t->sets.scans[i], t->snap, &newer));
        MR_ENSURE_OUT(!newer, MR_ERR_CONFLICT,
                      "store conflict: another commit changed what this transaction read");
    }
    res = MR_SUCCESS;
out:
    mr_store_abort(vt);
    return res;
}

/* ---- the next head ---- */

static MR_RESULT copy_list(const ks_list *from, ks_list *to)
{
    memset(to, 0, sizeof(*to));
    for (size_t i = 0; i < from->n; i++)
        MR_GUARD(ks_list_add(to, from->v[i].key, from->v[i].gen, from->v[i].del,
                             mr_buf_slice(&from->v[i].sealed)));
    return MR_SUCCESS;
}

static MR_RESULT copy_head(const ks_head *from, ks_head *to)
{
    memset(to, 0, sizeof(*to));
    memcpy(to->rv, from->rv, sizeof(to->rv));
    to->gen = from->gen;
    to->epoch = from->epoch;
    to->n = from->n;
    to->fg = mr_calloc(from->n, sizeof(uint64_t));
    MR_ENSURE_ALLOC(to->fg);
    memcpy(to->fg, from->fg, from->n * sizeof(uint64_t));
    MR_GUARD(copy_list(&from->pending, &to->pending));
    to->rest.items = mr_calloc(64, sizeof(mr_k8s_entry));
    MR_ENSURE_ALLOC(to->rest.items);
    for (size_t i = 0; i < from->rest.count; i++) {
        mr_k8s_entry *d = &to->rest.items[to->rest.count];
        mr_buf_init(&d->value, 0, MR_BUF_SECRET);
        d->name = mr_strdup(from->rest.items[i].name);
        MR_ENSURE_ALLOC(d->name);
        to->rest.count++;
        MR_GUARD(mr_buf_set(&d->value, from->rest.items[i].value.data,
                            from->rest.items[i].value.len));
    }
    to->rest.found = true;
    return MR_SUCCESS;
}

/* Replaces or inserts an entry of a sorted list (keeping it sorted). */
static MR_RESULT list_set(ks_list *l, const char *key, uint64_t gen, bool del, mr_slice sealed)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].key, key) == 0) {
            l->v[i].gen = gen;
            l->v[i].del = del;
            return mr_buf_set(&l->v[i].sealed, sealed.ptr, sealed.len);
        }
    }
    MR_GUARD(ks_list_add(l, key, gen, del, sealed));
    ks_list_sort(l);
    return MR_SUCCESS;
}

static MR_RESULT rest_set(ks_head *h, const char *name, const mr_buf *v, bool del)
{
    for (size_t i = 0; i < h->rest.count; i++) {
        mr_k8s_entry *e = &h->rest.items[i];
        if (strcmp(e->name, name) != 0)
            continue;
        if (!del)
            return mr_buf_set(&e->value, v->data, v->len);
        mr_free(e->name);
        mr_buf_free(&e->value);
        h->rest.items[i] = h->rest.items[--h->rest.count];
        return MR_SUCCESS;
    }
    if (del)
        return MR_SUCCESS;
    MR_ENSURE(h->rest.count < 64, MR_ERR_USAGE, "kubernetes store: too many meta entries");
    mr_k8s_entry *e = &h->rest.items[h->rest.count];
    mr_buf_init(&e->value, 0, MR_BUF_SECRET);
    e->name = mr_strdup(name);
    MR_ENSURE_ALLOC(e->name);
    h->rest.count++;
    return mr_buf_set(&e->value, v->data, v->len);
}

/* The head after t: its writes sealed into pending at the next generation. Lock held. */
static MR_RESULT next_head(kstore *s, const ktxn *t, ks_head *nh)
{
    mr_result res = MR_FAILURE;
    mr_buf sealed;
    mr_buf_init(&sealed, 0, 0);
    MR_GUARD(copy_head(&s->head, nh));
    nh->gen = s->head.gen + 1;
    nh->epoch = s->head.epoch + 1;
    for (size_t i = 0; i < t->sets.n_writes; i++) {
        const mr_txn_write *w = &t->sets.writes[i];
        if (w->plain) {
            char name[48];
            (void)snprintf(name, sizeof(name), "m.%s", w->key);
            MR_GUARD_OUT(rest_set(nh, name, &w->val, w->del));
            continue;
        }
        mr_buf_reset(&sealed);
        if (!w->del)
            MR_GUARD_OUT(mr_sv_seal(MR_SLICE(s->key, MR_STORE_DEK_LEN), KS_TAG,
                                    MR_SLICE_STR(w->key), mr_buf_slice(&w->val), &sealed));
        MR_GUARD_OUT(list_set(&nh->pending, w->key, nh->gen, w->del, mr_buf_slice(&sealed)));
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&sealed);
    return res;
}

/* Writes the head with CAS on its resourceVersion; *conflict when someone was first. */
static MR_RESULT put_head(kstore *s, ks_head *nh, bool create, bool *conflict)
{
    mr_k8s_entry *items = NULL;
    size_t n = 0;
    char rv[64];
    MR_GUARD(ks_head_entries(nh, &items, &n));
    uint64_t t0 = mr_store_mono_us();
    mr_result r = mr_k8s_put_labeled(s->cli, MR_K8S_SECRET, s->name, create ? NULL : nh->rv,
                                     ks_label(s->name), items, n, conflict, rv);
    ks_entries_free(items, n);
    MR_GUARD(r);
    pthread_mutex_lock(&s->mu);
    mr_store_lat_note(s->lat, &s->lat_sum_us, mr_store_mono_us() - t0);
    pthread_mutex_unlock(&s->mu);
    if (!*conflict)
        memcpy(nh->rv, rv, sizeof(nh->rv));
    return MR_SUCCESS;
}

/* ---- flushing pending entries to the shards ---- */

/* shard := shard entries merged with the newer pending entries of shard i. */
static MR_RESULT merge_shard(const ks_list *pending, uint32_t i, uint32_t n, uint64_t gen,
                             ks_shard *sh)
{
    for (size_t k = 0; k < pending->n; k++) {
        const ks_ent *e = &pending->v[k];
        if (ks_shard_of(e->key, n) != i)
            continue;
        const ks_ent *old = ks_list_find(&sh->ents, e->key);
        if (old != NULL && old->gen >= e->gen)
            continue;
        if (!e->del) {
            MR_GUARD(list_set(&sh->ents, e->key, e->gen, false, mr_buf_slice(&e->sealed)));
            continue;
        }
        for (size_t j = 0; j < sh->ents.n; j++) { /* a deletion leaves nothing behind */
            if (strcmp(sh->ents.v[j].key, e->key) != 0)
                continue;
            mr_free(sh->ents.v[j].key);
            mr_buf_free(&sh->ents.v[j].sealed);
            memmove(&sh->ents.v[j], &sh->ents.v[j + 1], (sh->ents.n - j - 1) * sizeof(ks_ent));
            sh->ents.n--;
            break;
        }
    }
    if (gen > sh->gen)
        sh->gen = gen;
    return MR_SUCCESS;
}

static MR_RESULT write_shard(kstore *s, uint32_t i, const ks_shard *sh, bool *conflict)
{
    char nm[KS_NAME_MAX + 16], rv[64];
    mr_buf blob;
    mr_buf_init(&blob, 0, MR_BUF_SECRET);
    mr_k8s_entry e = {.name = (char *)(uintptr_t)"shard"};
    MR_GUARD(ks_shard_name(s->name, i, nm));
    uint8_t g[8];
    for (int b = 0; b < 8; b++)
        g[b] = (uint8_t)(sh->gen >> (8 * b));
    mr_result r = mr_buf_append(&blob, g, sizeof(g));
    if (mr_ok(r))
        r = ks_list_encode(&sh->ents, &blob);
    if (mr_ok(r) && blob.len > KS_SHARD_BYTES) {
        mr_error_set(MR_ERR_TOO_LARGE, __FILE__, __LINE__,
                     "kubernetes store: shard %u would hold %zu bytes (at most %zu): the state "
                     "is too large for its Secrets", i, blob.len, KS_SHARD_BYTES);
        r = MR_FAILURE;
    }
    e.value = blob;
    if (mr_ok(r))
        r = mr_k8s_put_labeled(s->cli, MR_K8S_SECRET, nm, sh->rv[0] != '\0' ? sh->rv : NULL,
                               ks_label(s->name), &e, 1, conflict, rv);
    mr_buf_free(&blob);
    return r;
}

static MR_RESULT flush_shard(kstore *s, const ks_list *pending, uint32_t i, uint32_t n,
                             uint64_t gen)
{
    char nm[KS_NAME_MAX + 16];
    MR_GUARD(ks_shard_name(s->name, i, nm));
    for (int attempt = 0; attempt < KS_ATTEMPTS; attempt++) {
        mr_k8s_obj o;
        ks_shard sh;
        MR_GUARD(mr_k8s_get(s->cli, MR_K8S_SECRET, nm, &o));
        mr_result r = ks_shard_parse(&o, &sh);
        mr_k8s_obj_free(&o);
        MR_GUARD(r);
        bool conflict = false;
        r = merge_shard(pending, i, n, gen, &sh);
        if (mr_ok(r))
            r = write_shard(s, i, &sh, &conflict);
        ks_shard_free(&sh);
        MR_GUARD(r);
        if (!conflict)
            return MR_SUCCESS;
    }
    MR_BAIL(MR_ERR_CONFLICT, "store conflict: shard %u keeps changing", i);
}

/* The head without the flushed entries (generation <= gen), recording the shards. */
static MR_RESULT trim_head(kstore *s, uint64_t gen, const bool *flushed)
{
    for (int attempt = 0; attempt < KS_ATTEMPTS; attempt++) {
        mr_k8s_obj o;
        ks_head h;
        ks_list kept = {0};
        MR_GUARD(mr_k8s_get(s->cli, MR_K8S_SECRET, s->name, &o));
        mr_result r = o.found ? ks_head_parse(&o, &h) : MR_FAILURE;
        if (!o.found)
            mr_error_set(MR_ERR_CORRUPT, __FILE__, __LINE__,
                         "kubernetes store: the state Secret %s is gone", s->name);
        mr_k8s_obj_free(&o);
        MR_GUARD(r);
        for (size_t k = 0; mr_ok(r) && k < h.pending.n; k++)
            if (h.pending.v[k].gen > gen)
                r = ks_list_add(&kept, h.pending.v[k].key, h.pending.v[k].gen, h.pending.v[k].del,
                                mr_buf_slice(&h.pending.v[k].sealed));
        ks_list_free(&h.pending);
        h.pending = kept;
        for (uint32_t i = 0; i < h.n; i++)
            if (flushed[i] && h.fg[i] < gen)
                h.fg[i] = gen;
        h.epoch++;
        bool conflict = false;
        if (mr_ok(r))
            r = put_head(s, &h, false, &conflict);
        ks_head_free(&h);
        MR_GUARD(r);
        if (!conflict)
            return MR_SUCCESS;
    }
    MR_BAIL(MR_ERR_CONFLICT, "store conflict: the state keeps changing during a flush");
}

/* Moves the pending entries to their shards (commit lock held). */
static MR_RESULT flush(kstore *s)
{
    mr_result res = MR_FAILURE;
    ks_list pending = {0};
    bool *flushed = NULL;
    pthread_mutex_lock(&s->mu);
    uint64_t gen = s->head.gen;
    uint32_t n = s->head.n;
    mr_result r = copy_list(&s->head.pending, &pending);
    pthread_mutex_unlock(&s->mu);
    MR_GUARD_OUT(r);
    flushed = mr_calloc(n, sizeof(bool));
    MR_ENSURE_ALLOC_OUT(flushed);
    for (size_t k = 0; k < pending.n; k++)
        flushed[ks_shard_of(pending.v[k].key, n)] = true;
    for (uint32_t i = 0; i < n; i++)
        if (flushed[i])
            MR_GUARD_OUT(flush_shard(s, &pending, i, n, gen));
    MR_GUARD_OUT(trim_head(s, gen, flushed));
    MR_LOG_DEBUG("kubernetes store: flushed pending entries to the shards",
                 MR_F_UINT("entries", pending.n), MR_F_UINT("generation", gen));
    MR_GUARD_OUT(ks_refresh(s));
    res = MR_SUCCESS;
out:
    mr_free(flushed);
    ks_list_free(&pending);
    return res;
}

/* ---- commit ---- */

/* One attempt; *again when the head moved (or was flushed) and the commit should repeat. */
static MR_RESULT attempt(kstore *s, const ktxn *t, bool *again, bool *flush_first)
{
    mr_result res = MR_FAILURE;
    ks_head nh;
    memset(&nh, 0, sizeof(nh));
    *again = *flush_first = false;
    pthread_mutex_lock(&s->mu);
    mr_result r = validate(s, t);
    if (mr_ok(r) && t->sets.n_writes > 0)
        r = next_head(s, t, &nh);
    size_t before = ks_list_bytes(&s->head.pending);
    pthread_mutex_unlock(&s->mu);
    MR_GUARD_OUT(r);
    if (t->sets.n_writes == 0) { /* a read-only LATEST transaction: validated, done */
        res = MR_SUCCESS;
        goto out;
    }
    size_t after = ks_list_bytes(&nh.pending);
    if (after > KS_FLUSH_BYTES && before > 4) {
        *flush_first = true;
        res = MR_SUCCESS;
        goto out;
    }
    MR_ENSURE_OUT(after <= HEAD_MAX, MR_ERR_TOO_LARGE,
                  "kubernetes store: one commit of %zu bytes is too large for a Secret", after);
    bool conflict = false;
    MR_GUARD_OUT(put_head(s, &nh, false, &conflict));
    if (conflict) {
        *again = true;
        res = MR_SUCCESS;
        goto out;
    }
    pthread_mutex_lock(&s->mu);
    r = ks_apply(s, &nh, NULL);
    s->commits++;
    pthread_mutex_unlock(&s->mu);
    MR_GUARD_OUT(r);
    res = MR_SUCCESS;
out:
    ks_head_free(&nh);
    return res;
}

static MR_RESULT commit_locked(kstore *s, ktxn *t)
{
    /* the replica's head is tried first: when nobody else committed, one round trip */
    if (t->sets.n_writes == 0)
        MR_GUARD(ks_refresh(s));
    for (int i = 0; i < KS_ATTEMPTS; i++) {
        bool again = false, flush_first = false;
        MR_GUARD(attempt(s, t, &again, &flush_first));
        if (flush_first) {
            MR_GUARD(flush(s));
            continue;
        }
        if (!again)
            return MR_SUCCESS;
        pthread_mutex_lock(&s->mu);
        s->conflicts++;
        pthread_mutex_unlock(&s->mu);
        MR_GUARD(ks_refresh(s));
    }
    MR_BAIL(MR_ERR_CONFLICT, "store conflict: too many concurrent commits");
}

MR_RESULT ks_commit(mr_store_txn *tx)
{
    ktxn *t = (ktxn *)tx;
    kstore *s = t->s;
    if (t->sets.n_writes == 0 && (!t->latest || t->sets.n_reads + t->sets.n_scans == 0)) {
        ks_txn_free(t); /* a consistent snapshot of a fresh replica: nothing to check */
        return MR_SUCCESS;
    }
    pthread_mutex_lock(&s->commit_mu);
    mr_result r = commit_locked(s, t);
    pthread_mutex_unlock(&s->commit_mu);
    ks_txn_free(t);
    return r;
}

/* ---- creation and probing ---- */

static const char *name_or_default(const char *n) { return n != NULL ? n : KS_DEFAULT_NAME; }

MR_RESULT mr_k8s_store_probe(mr_k8s *cli, const char *name, bool *has_state)
{
    mr_k8s_obj o;
    MR_GUARD(mr_k8s_get(cli, MR_K8S_SECRET, name_or_default(name), &o));
    *has_state = o.found;
    mr_k8s_obj_free(&o);
    return MR_SUCCESS;
}

static MR_RESULT initial_head(mr_slice key, mr_store *initial, ks_head *h)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *it = NULL;
    mr_store_list all = {0};
    mr_buf sealed;
    mr_buf_init(&sealed, 0, 0);
    memset(h, 0, sizeof(*h));
    h->gen = h->epoch = 1;
    h->n = KS_SHARDS;
    h->fg = mr_calloc(KS_SHARDS, sizeof(uint64_t));
    h->rest.items = mr_calloc(64, sizeof(mr_k8s_entry));
    MR_ENSURE_ALLOC_OUT(h->fg);
    MR_ENSURE_ALLOC_OUT(h->rest.items);
    MR_GUARD_OUT(mr_store_begin(initial, &it));
    MR_GUARD_OUT(mr_store_scan(it, "", &all));
    for (size_t i = 0; i < all.count; i++) {
        mr_buf_reset(&sealed);
        MR_ENSURE_OUT(all.items[i].key[0] != '\x01', MR_ERR_USAGE, "invalid store key");
        MR_GUARD_OUT(mr_sv_seal(key, KS_TAG, MR_SLICE_STR(all.items[i].key), all.items[i].value,
                                &sealed));
        MR_GUARD_OUT(ks_list_add(&h->pending, all.items[i].key, 1, false, mr_buf_slice(&sealed)));
    }
    ks_list_sort(&h->pending);
    mr_buf_reset(&sealed);
    MR_GUARD_OUT(mr_sv_seal(key, KS_TAG, MR_SLICE_STR(KEYCHECK_NAME), MR_SLICE_STR(KS_KEYCHECK_TEXT),
                            &sealed));
    MR_GUARD_OUT(rest_set(h, "keycheck", &sealed, false));
    res = MR_SUCCESS;
out:
    mr_buf_free(&sealed);
    mr_store_list_free(&all);
    mr_store_abort(it);
    return res;
}

MR_RESULT mr_k8s_store_create(mr_k8s *cli, const char *name, mr_slice key, mr_store *initial,
                              bool *created)
{
    mr_result res = MR_FAILURE;
    ks_head h;
    mr_k8s_entry *items = NULL;
    size_t n = 0;
    bool conflict = false;
    char rv[64];
    *created = false;
    MR_ENSURE(key.len == MR_STORE_DEK_LEN, MR_ERR_USAGE, "state key must be %u bytes",
              MR_STORE_DEK_LEN);
    MR_GUARD_OUT(initial_head(key, initial, &h));
    MR_GUARD_OUT(ks_head_entries(&h, &items, &n));
    MR_GUARD_OUT(mr_k8s_put_labeled(cli, MR_K8S_SECRET, name_or_default(name), NULL,
                                    ks_label(name_or_default(name)), items, n, &conflict, rv));
    *created = !conflict;
    res = MR_SUCCESS;
out:
    ks_entries_free(items, n);
    ks_head_free(&h);
    return res;
}

MR_RESULT mr_k8s_store_check_key(mr_k8s *cli, const char *name, mr_slice key, bool *ok)
{
    mr_k8s_obj o;
    mr_buf plain;
    mr_buf_init(&plain, 0, MR_BUF_SECRET);
    *ok = false;
    MR_GUARD(mr_k8s_get(cli, MR_K8S_SECRET, name_or_default(name), &o));
    const mr_k8s_entry *e = mr_k8s_obj_entry(&o, "keycheck");
    mr_result r = MR_SUCCESS;
    if (!o.found) {
        mr_error_set(MR_ERR_NOT_FOUND, __FILE__, __LINE__, "the Kubernetes state %s does not exist",
                     name_or_default(name));
        r = MR_FAILURE;
    } else if (e != NULL && key.len == MR_STORE_DEK_LEN) {
        *ok = mr_ok(mr_sv_open(key, KS_TAG, MR_SLICE_STR(KEYCHECK_NAME), mr_buf_slice(&e->value),
                               &plain)) &&
              plain.len == strlen(KS_KEYCHECK_TEXT) &&
              memcmp(plain.data, KS_KEYCHECK_TEXT, plain.len) == 0;
        mr_error_clear();
    }
    mr_buf_free(&plain);
    mr_k8s_obj_free(&o);
    return r;
}

MR_RESULT mr_k8s_store_get_meta(mr_k8s *cli, const char *name, const char *meta, mr_buf *value,
                                bool *found)
{
    mr_k8s_obj o;
    char nm[48];
    MR_ENSURE(snprintf(nm, sizeof(nm), "m.%s", meta) < (int)sizeof(nm), MR_ERR_USAGE,
              "invalid meta entry name");
    MR_GUARD(mr_k8s_get(cli, MR_K8S_SECRET, name_or_default(name), &o));
    const mr_k8s_entry *e = mr_k8s_obj_entry(&o, nm);
    *found = e != NULL;
    mr_result r = e != NULL ? mr_buf_append(value, e->value.data, e->value.len) : MR_SUCCESS;
    mr_k8s_obj_free(&o);
    return r;
}
