/* SPDX-License-Identifier: Apache-2.0 */
/* The etcd backend's commits (one Txn with the compares of what was read), its meta entries,
 * and creating and probing the state in a prefix (etcd_store.h). */
#include "coordinator/store/etcd_store_int.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

/* ---- commit ---- */


void es_msg_free(txn_msg *m)
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

MR_RESULT es_build_compares(const etxn *t, txn_msg *m)
{
    const estore *s = t->s;
    if (t->sets.n_reads + t->sets.n_scans > MAX_COMPARES) {
        /* too many to list: no commit at all may have happened since the snapshot */
        Etcdserverpb__Compare *c = new_cmp(m);
        mr_buf *k = &m->ekeys[m->n_ekeys++];
        mr_buf_init(k, 0, 0);
        MR_GUARD(es_meta_key((const char *)s->prefix.data, "rev", k));
        c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS;
        c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
        c->key = bin_of(k);
        c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
        c->mod_revision = t->snap + 1;
        return MR_SUCCESS;
    }
    for (size_t i = 0; i < t->sets.n_reads; i++) {
        Etcdserverpb__Compare *c = new_cmp(m);
        mr_buf *k = new_ekey(m, s, t->sets.reads[i].key);
        MR_ENSURE_ALLOC(k);
        c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
        c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
        c->key = bin_of(k);
        c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
        c->mod_revision = (int64_t)t->sets.reads[i].ver;
    }
    for (size_t i = 0; i < t->sets.n_scans; i++) {
        /* nothing under the prefix created or changed after the snapshot (deletions of keys
         * it listed are caught by their own compares above) */
        Etcdserverpb__Compare *c = new_cmp(m);
        mr_buf *k = new_ekey(m, s, t->sets.scans[i]);
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

MR_RESULT es_build_ops(const etxn *t, txn_msg *m)
{
    const estore *s = t->s;
    if (t->sets.n_writes == 0) /* a LATEST read-only commit: the compares alone */
        return MR_SUCCESS;
    for (size_t i = 0; i <= t->sets.n_writes; i++) {
        Etcdserverpb__RequestOp *op = &m->ops[m->n_ops];
        etcdserverpb__request_op__init(op);
        m->opsp[m->n_ops] = op;
        mr_buf *k;
        if (i == t->sets.n_writes) { /* the commit marker */
            k = &m->ekeys[m->n_ekeys++];
            mr_buf_init(k, 0, 0);
            MR_GUARD(es_meta_key((const char *)s->prefix.data, "rev", k));
        } else {
            k = new_ekey(m, s, t->sets.writes[i].key);
            MR_ENSURE_ALLOC(k);
        }
        if (i < t->sets.n_writes && t->sets.writes[i].del) {
            Etcdserverpb__DeleteRangeRequest *d = &m->dels[m->n_ops];
            etcdserverpb__delete_range_request__init(d);
            d->key = bin_of(k);
            op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
            op->request_delete_range = d;
        } else {
            Etcdserverpb__PutRequest *p = &m->puts[m->n_ops];
            etcdserverpb__put_request__init(p);
            p->key = bin_of(k);
            if (i < t->sets.n_writes && t->sets.writes[i].plain) {
                p->value = bin_of(&t->sets.writes[i].val);
            } else if (i < t->sets.n_writes) {
                mr_buf *sv = &m->sealed[m->n_sealed++];
                mr_buf_init(sv, 0, 0);
                MR_GUARD(es_seal_value(MR_SLICE(s->key, MR_STORE_DEK_LEN), mr_buf_slice(k),
                                    mr_buf_slice(&t->sets.writes[i].val), sv));
                p->value = bin_of(sv);
            }
            op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            op->request_put = p;
        }
        m->n_ops++;
    }
    return MR_SUCCESS;
}

MR_RESULT es_commit(mr_store_txn *tx)
{
    etxn *t = (etxn *)tx;
    estore *s = t->s;
    mr_result res = MR_FAILURE;
    txn_msg m;
    memset(&m, 0, sizeof(m));
    if (t->sets.n_writes == 0 && (!t->latest || t->sets.n_reads + t->sets.n_scans == 0)) {
        es_txn_free(t); /* a consistent snapshot of a fresh replica: nothing to check */
        return MR_SUCCESS;
    }
    size_t nc = t->sets.n_reads + t->sets.n_scans + 1, no = t->sets.n_writes + 1;
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
    MR_GUARD_OUT(es_build_compares(t, &m));
    MR_GUARD_OUT(es_build_ops(t, &m));
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    req.n_compare = m.n_cmp;
    req.compare = m.cmpp;
    req.n_success = m.n_ops;
    req.success = m.opsp;
    bool ok = false;
    int64_t rev = 0;
    uint64_t t0 = mr_store_mono_us();
    MR_GUARD_OUT(mr_etcd_txn(s->cli, &req, &ok, &rev));
    uint64_t took = mr_store_mono_us() - t0;
    pthread_mutex_lock(&s->mu);
    mr_store_lat_note(s->lat, &s->lat_sum_us, took);
    if (ok)
        s->commits++;
    else
        s->conflicts++;
    pthread_mutex_unlock(&s->mu);
    MR_ENSURE_OUT(ok, MR_ERR_CONFLICT, "store conflict: another commit changed what this "
                  "transaction read");
    res = MR_SUCCESS;
out:
    es_msg_free(&m);
    es_txn_free(t);
    return res;
}

/* ---- meta entries ---- */


static MR_RESULT meta_name(const char *name, mr_buf *out)
{
    MR_ENSURE(name[0] != '\0' && strlen(name) < 64, MR_ERR_USAGE, "invalid meta entry name");
    MR_GUARD(mr_buf_append_u8(out, (uint8_t)META));
    MR_GUARD(mr_buf_append_str(out, name));
    return mr_buf_nul_terminate(out);
}

MR_RESULT mr_etcd_store_put_meta(mr_store_txn *tx, const char *name, const uint8_t *v, size_t len,
                                 bool del)
{
    MR_ENSURE(tx != NULL && tx->store->vt == &es_vtbl, MR_ERR_USAGE,
              "meta entries exist only in the etcd store");
    MR_ENSURE(strcmp(name, "rev") != 0 && strcmp(name, "keycheck") != 0, MR_ERR_USAGE,
              "meta entry %s is the store's own", name);
    mr_buf k;
    mr_buf_init(&k, 0, 0);
    mr_result r = meta_name(name, &k);
    etxn *t = (etxn *)tx;
    if (mr_ok(r))
        r = mr_txn_note_write(&t->sets, (const char *)k.data, v, len, del, true);
    mr_buf_free(&k);
    return r;
}

typedef struct meta_read {
    mr_buf *out;
    bool found;
} meta_read;

static MR_RESULT meta_kv(void *arg, const Etcdserverpb__KeyValue *kv)
{
    meta_read *m = arg;
    m->found = true;
    MR_ENSURE(kv->value.len <= MR_STORE_VALUE_MAX, MR_ERR_TOO_LARGE, "meta entry too large");
    return mr_buf_append(m->out, kv->value.data, kv->value.len);
}

MR_RESULT mr_etcd_store_get_meta(mr_etcd *cli, const char *prefix, const char *name,
                                 mr_buf *value, bool *found)
{
    mr_buf k;
    mr_buf_init(&k, 0, 0);
    meta_read m = {.out = value};
    mr_result r = mr_buf_append_str(&k, es_prefix_or_default(prefix));
    if (mr_ok(r))
        r = meta_name(name, &k);
    if (mr_ok(r)) /* without the NUL */
        r = mr_etcd_range(cli, MR_SLICE(k.data, k.len - 1), MR_SLICE("", 0), 0, meta_kv, &m, NULL);
    mr_buf_free(&k);
    *found = m.found;
    return r;
}

/* ---- creation and opening ---- */


typedef struct found {
    bool any;
} found;

static MR_RESULT found_kv(void *arg, const Etcdserverpb__KeyValue *kv)
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
    mr_result r = es_meta_key(es_prefix_or_default(prefix), "keycheck", &k);
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

static MR_RESULT check_kv(void *arg, const Etcdserverpb__KeyValue *kv)
{
    check *c = arg;
    mr_buf plain;
    mr_buf_init(&plain, 0, MR_BUF_SECRET);
    c->seen = true;
    c->opened = mr_ok(es_open_value(c->key, MR_SLICE(kv->key.data, kv->key.len),
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
    mr_result r = es_meta_key(es_prefix_or_default(prefix), "keycheck", &k);
    if (mr_ok(r))
        r = mr_etcd_range(cli, mr_buf_slice(&k), MR_SLICE("", 0), 0, check_kv, &c, NULL);
    mr_buf_free(&k);
    MR_GUARD(r);
    MR_ENSURE(c.seen, MR_ERR_NOT_FOUND, "etcd holds no state under %s", es_prefix_or_default(prefix));
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
    MR_GUARD_OUT(mr_buf_append_str(&tmp.prefix, es_prefix_or_default(prefix)));
    MR_GUARD_OUT(mr_buf_nul_terminate(&tmp.prefix));
    tmp.key = (uint8_t *)(uintptr_t)key.ptr;
    t->s = &tmp;
    /* the keycheck must not exist yet: exactly one creator wins */
    MR_GUARD_OUT(es_note_read(t, "\x01keycheck", 0));
    MR_GUARD_OUT(es_note_write(t, "\x01keycheck", (const uint8_t *)KEYCHECK_TEXT,
                            strlen(KEYCHECK_TEXT), false));
    MR_GUARD_OUT(mr_store_begin(initial, &it));
    MR_GUARD_OUT(mr_store_scan(it, "", &all));
    for (size_t i = 0; i < all.count; i++) {
        MR_GUARD_OUT(es_check_key_name(all.items[i].key));
        MR_GUARD_OUT(es_note_write(t, all.items[i].key, all.items[i].value.ptr,
                                all.items[i].value.len, false));
    }
    /* the keycheck "read" compares as key "\x01keycheck" under the prefix */
    txn_msg m;
    memset(&m, 0, sizeof(m));
    size_t nc = 2, no = t->sets.n_writes + 1;
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
        r = es_build_compares(t, &m);
    if (mr_ok(r))
        r = es_build_ops(t, &m);
    if (mr_ok(r)) {
        Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
        req.n_compare = m.n_cmp;
        req.compare = m.cmpp;
        req.n_success = m.n_ops;
        req.success = m.opsp;
        int64_t rev = 0;
        r = mr_etcd_txn(cli, &req, created, &rev);
    }
    es_msg_free(&m);
    MR_GUARD_OUT(r);
    res = MR_SUCCESS;
out:
    t->s = NULL;
    mr_txn_sets_free(&t->sets);
    mr_free(t);
    mr_store_list_free(&all);
    mr_store_abort(it);
    mr_buf_free(&tmp.prefix);
    return res;
}
