/* SPDX-License-Identifier: Apache-2.0 */
/* Where the core meets the sealer: loading at startup and replacing the sealed state. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/recovery.h"

static int cmp_secret(const void *a, const void *b)
{
    return strcmp(((const core_secret *)a)->name, ((const core_secret *)b)->name);
}

MR_RESULT core_secret_set_sort(core_secret_set *set)
{
    if (set->count > 1)
        qsort(set->items, set->count, sizeof(core_secret), cmp_secret);
    for (size_t i = 1; i < set->count; i++)
        MR_ENSURE(strcmp(set->items[i - 1].name, set->items[i].name) != 0, MR_ERR_INTERNAL,
                  "duplicate secret %s", set->items[i].name);
    return MR_SUCCESS;
}

mr_seal_mode core_seal_mode(const mr_manifest *m)
{
    const char *s = m != NULL && m->config.seal_mode.ptr != NULL ? m->config.seal_mode.ptr : "";
    if (strcmp(s, "UniqueKey") == 0)
        return MR_SEAL_MODE_UNIQUE_KEY;
    if (strcmp(s, "Disabled") == 0)
        return MR_SEAL_MODE_DISABLED;
    return MR_SEAL_MODE_PRODUCT_KEY;
}

/* Builds the epoch seen by transaction t, carrying over the own quote when the root is
 * unchanged or issuing a new one. */
MR_RESULT core_epoch_from_txn(mr_core *c, mr_store_txn *t, const core_epoch *prev, core_epoch **out)
{
    mr_result res = MR_FAILURE;
    core_epoch *e = NULL;
    MR_GUARD(core_epoch_load(c, t, &e));
    if (prev != NULL && prev->root_der.len == e->root_der.len &&
        memcmp(prev->root_der.data, e->root_der.data, e->root_der.len) == 0) {
        MR_GUARD_OUT(mr_buf_set(&e->quote, prev->quote.data, prev->quote.len));
    } else {
        mr_result q = core_epoch_quote(c, e);
        if (!mr_ok(q) && c->cfg.dev_mode) {
            MR_LOG_ERROR("failed to issue the Coordinator quote; continuing in dev mode", MR_F_ERR());
            q = MR_SUCCESS;
        }
        MR_GUARD_OUT(q);
    }
    *out = e;
    e = NULL;
    res = MR_SUCCESS;
out:
    core_epoch_put(e);
    return res;
}

MR_RESULT core_epoch_from_store(mr_core *c, mr_store *store, const core_epoch *prev,
                                core_epoch **out)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    MR_GUARD_OUT(mr_store_begin(store, &t));
    MR_GUARD_OUT(core_epoch_from_txn(c, t, prev, out));
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    return res;
}

/* The next epoch is built from the transaction's own view before it commits, so a failure
 * to build it leaves the state unchanged; after the commit it is published. */
MR_RESULT core_commit_and_publish(mr_core *c, mr_store_txn *t)
{
    if (c->dist != NULL && !mr_ok(core_dist_stamp(c, t))) {
        mr_store_abort(t);
        return MR_FAILURE;
    }
    mr_result res = MR_FAILURE;
    core_epoch *prev = core_epoch_get(c), *e = NULL;
    MR_GUARD_OUT(core_epoch_from_txn(c, t, prev, &e));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(mr_store_commit(tc)); /* frees the transaction either way */
    core_epoch_publish(c, e);
    e = NULL;
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    core_epoch_put(e);
    core_epoch_put(prev);
    return res;
}

void core_store_rdlock(mr_core *c) { pthread_rwlock_rdlock(&c->store_lock); }
void core_store_unlock(mr_core *c) { pthread_rwlock_unlock(&c->store_lock); }

void core_store_replace(mr_core *c, mr_store *next)
{
    pthread_rwlock_wrlock(&c->store_lock);
    mr_store *old = c->store;
    c->store = next;
    pthread_rwlock_unlock(&c->store_lock);
    mr_store_close(old);
}

/* Seals `next` as the new state: a fresh state key, the old sealed files replaced, everything
 * copied into the new embedded store, and recovery secrets for the manifest's keys. */
static MR_RESULT seal_new(mr_core *c, const mr_manifest *m, mr_store *next, mr_store **emb,
                          mr_core_recovery_secrets *out)
{
    mr_result res = MR_FAILURE;
    mr_buf dek;
    mr_buf_init(&dek, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(mr_sealer_set_mode(c->sealer, core_seal_mode(m)));
    MR_GUARD_OUT(mr_sealer_create(c->sealer, c->cfg.store_opts, emb));
    MR_GUARD_OUT(mr_store_copy_all(next, *emb));
    MR_GUARD_OUT(mr_sealer_export_dek(c->sealer, &dek));
    MR_GUARD_OUT(core_recovery_issue(c, m, mr_buf_slice(&dek), out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&dek);
    return res;
}

/* After a failed sealing: no recovery secrets go out, and the log says loudly that the state
 * in memory is no longer persisted. The error stays in the slot. */
static void not_persisted(mr_core_recovery_secrets *out, const char *what)
{
    mr_error saved;
    mr_error_take(&saved);
    mr_core_recovery_secrets_free(out);
    MR_LOG_ERROR(what, MR_F_STR("error", saved.msg));
    mr_error_restore(&saved);
}

/* Makes *next (a complete in-memory state) the sealed state and publishes it.
 *
 * The sealed directory can only hold one open store, so the current store is closed before
 * the new one is created. Everything that can fail for a reason other than I/O has been done
 * by the caller before this point. If sealing fails anyway, the Coordinator keeps serving the
 * state it had (from an in-memory copy), logs loudly that it is no longer persisted, and the
 * request fails. */
MR_RESULT core_persist_new_state(mr_core *c, const mr_manifest *m, mr_store **next,
                                 mr_core_recovery_secrets *out)
{
    if (c->dist != NULL)
        return core_dist_persist_new_state(c, m, next, out);
    mr_result res = MR_FAILURE;
    mr_store *emb = NULL, *old_copy = NULL;
    core_epoch *e = NULL, *prev = core_epoch_get(c);
    bool released = false;
    MR_GUARD_OUT(mr_store_open_memory(&old_copy));
    MR_GUARD_OUT(mr_store_copy_all(c->store, old_copy));
    core_store_replace(c, old_copy); /* releases the sealed directory */
    old_copy = NULL;
    released = true;
    MR_GUARD_OUT(seal_new(c, m, *next, &emb, out));
    MR_GUARD_OUT(core_epoch_from_store(c, emb, prev, &e));
    core_store_replace(c, emb);
    emb = NULL;
    core_epoch_publish(c, e);
    res = MR_SUCCESS;
out:
    mr_store_close(emb);
    mr_store_close(old_copy);
    if (!mr_ok(res) && released)
        not_persisted(out, "the new state could not be sealed; the previous state is kept in "
                           "memory only and will be lost on restart");
    core_epoch_put(prev);
    return res;
}

/* A new state key for the current state (recovery keys changed in a full update). Readers are
 * held off for the whole copy-and-replace so that no concurrent commit (an activation
 * counter) is lost between the copy and the switch. */
MR_RESULT core_rekey(mr_core *c, const mr_manifest *m, mr_core_recovery_secrets *out)
{
    if (c->dist != NULL) /* the shared state keeps its key (docs/distributed.md) */
        return core_dist_rekey(c, m, out);
    mr_result res = MR_FAILURE;
    mr_store *mem = NULL, *emb = NULL;
    core_epoch *e = NULL, *prev = core_epoch_get(c);
    bool released = false;
    pthread_rwlock_wrlock(&c->store_lock);
    MR_GUARD_OUT(mr_store_open_memory(&mem));
    MR_GUARD_OUT(mr_store_copy_all(c->store, mem));
    mr_store_close(c->store); /* releases the sealed directory */
    c->store = mem;
    mem = NULL;
    released = true;
    MR_GUARD_OUT(seal_new(c, m, c->store, &emb, out));
    MR_GUARD_OUT(core_epoch_from_store(c, emb, prev, &e));
    mem = c->store; /* the in-memory copy is closed below */
    c->store = emb;
    emb = NULL;
    res = MR_SUCCESS;
out:
    mr_store_close(emb);
    mr_store_close(mem);
    if (!mr_ok(res) && released)
        not_persisted(out, "the state could not be sealed under a new key; it is kept in memory "
                           "only and will be lost on restart");
    pthread_rwlock_unlock(&c->store_lock);
    if (e != NULL)
        core_epoch_publish(c, e);
    core_epoch_put(prev);
    return res;
}

MR_RESULT core_read_number(mr_store_txn *t, const char *key, int base, const char *what,
                           uint64_t *value)
{
    mr_result res = MR_FAILURE;
    mr_buf v;
    bool found = false;
    char text[32];
    *value = 0;
    mr_buf_init(&v, 64, 0);
    MR_GUARD_OUT(mr_store_get(t, key, &v, &found));
    if (found) {
        /* the whole value is the number: no cut-off digits, no NUL, no overflow */
        MR_ENSURE_OUT(v.len > 0 && v.len < sizeof(text), MR_ERR_INTERNAL,
                      "stored %s is malformed", what);
        memcpy(text, v.data, v.len);
        text[v.len] = '\0';
        char *end = NULL;
        errno = 0;
        *value = strtoull(text, &end, base);
        MR_ENSURE_OUT(errno == 0 && end == text + v.len && text[0] != '-' && text[0] != '+',
                      MR_ERR_INTERNAL, "stored %s is malformed", what);
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&v);
    return res;
}
