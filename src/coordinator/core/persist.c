/* SPDX-License-Identifier: Apache-2.0 */
/* Where the core meets the sealer: loading at startup and replacing the sealed state. */
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
    core_epoch *e = NULL;
    MR_GUARD(core_epoch_load(c, t, &e));
    mr_result r;
    if (prev != NULL && prev->root_der.len == e->root_der.len &&
        memcmp(prev->root_der.data, e->root_der.data, e->root_der.len) == 0) {
        r = mr_buf_set(&e->quote, prev->quote.data, prev->quote.len);
    } else {
        r = core_epoch_quote(c, e);
        if (!mr_ok(r) && c->cfg.dev_mode) {
            MR_LOG_ERROR("failed to issue the Coordinator quote; continuing in dev mode", MR_F_ERR());
            r = MR_SUCCESS;
        }
    }
    if (!mr_ok(r)) {
        core_epoch_put(e);
        return MR_FAILURE;
    }
    *out = e;
    return MR_SUCCESS;
}

MR_RESULT core_epoch_from_store(mr_core *c, mr_store *store, const core_epoch *prev,
                                core_epoch **out)
{
    mr_store_txn *t = NULL;
    MR_GUARD(mr_store_begin(store, &t));
    mr_result r = core_epoch_from_txn(c, t, prev, out);
    mr_store_abort(t);
    return r;
}

/* The next epoch is built from the transaction's own view before it commits, so a failure
 * to build it leaves the state unchanged; after the commit it is published. */
MR_RESULT core_commit_and_publish(mr_core *c, mr_store_txn *t)
{
    core_epoch *prev = core_epoch_get(c), *e = NULL;
    mr_result r = core_epoch_from_txn(c, t, prev, &e);
    core_epoch_put(prev);
    if (!mr_ok(r)) {
        mr_store_abort(t);
        return MR_FAILURE;
    }
    r = mr_store_commit(t);
    if (mr_ok(r))
        core_epoch_publish(c, e);
    else
        core_epoch_put(e);
    return r;
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
    mr_buf dek;
    mr_buf_init(&dek, 0, MR_BUF_SECRET);
    mr_result r = mr_sealer_set_mode(c->sealer, core_seal_mode(m));
    if (mr_ok(r))
        r = mr_sealer_create(c->sealer, c->cfg.store_opts, emb);
    if (mr_ok(r))
        r = mr_store_copy_all(next, *emb);
    if (mr_ok(r))
        r = mr_sealer_export_dek(c->sealer, &dek);
    if (mr_ok(r))
        r = core_recovery_issue(c, m, mr_buf_slice(&dek), out);
    mr_buf_free(&dek);
    return r;
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
    mr_store *emb = NULL, *old_copy = NULL;
    core_epoch *e = NULL, *prev = core_epoch_get(c);
    mr_result r = mr_store_open_memory(&old_copy);
    if (mr_ok(r))
        r = mr_store_copy_all(c->store, old_copy);
    if (!mr_ok(r)) {
        core_epoch_put(prev);
        mr_store_close(old_copy);
        return MR_FAILURE;
    }
    core_store_replace(c, old_copy); /* releases the sealed directory */
    r = seal_new(c, m, *next, &emb, out);
    if (mr_ok(r))
        r = core_epoch_from_store(c, emb, prev, &e);
    if (mr_ok(r)) {
        core_store_replace(c, emb);
        core_epoch_publish(c, e);
    } else {
        mr_error saved;
        mr_error_take(&saved);
        mr_store_close(emb);
        mr_core_recovery_secrets_free(out);
        MR_LOG_ERROR("the new state could not be sealed; the previous state is kept in memory "
                     "only and will be lost on restart",
                     MR_F_STR("error", saved.msg));
        mr_error_restore(&saved);
    }
    core_epoch_put(prev);
    return r;
}

/* A new state key for the current state (recovery keys changed in a full update). Readers are
 * held off for the whole copy-and-replace so that no concurrent commit (an activation
 * counter) is lost between the copy and the switch. */
MR_RESULT core_rekey(mr_core *c, const mr_manifest *m, mr_core_recovery_secrets *out)
{
    mr_store *mem = NULL, *emb = NULL;
    core_epoch *e = NULL, *prev = core_epoch_get(c);
    pthread_rwlock_wrlock(&c->store_lock);
    mr_result r = mr_store_open_memory(&mem);
    if (mr_ok(r))
        r = mr_store_copy_all(c->store, mem);
    if (!mr_ok(r)) {
        pthread_rwlock_unlock(&c->store_lock);
        mr_store_close(mem);
        core_epoch_put(prev);
        return MR_FAILURE;
    }
    mr_store_close(c->store); /* releases the sealed directory */
    c->store = mem;
    r = seal_new(c, m, mem, &emb, out);
    if (mr_ok(r))
        r = core_epoch_from_store(c, emb, prev, &e);
    if (mr_ok(r)) {
        c->store = emb;
        mr_store_close(mem);
    } else {
        mr_error saved;
        mr_error_take(&saved);
        mr_store_close(emb);
        mr_core_recovery_secrets_free(out);
        MR_LOG_ERROR("the state could not be sealed under a new key; it is kept in memory only "
                     "and will be lost on restart",
                     MR_F_STR("error", saved.msg));
        mr_error_restore(&saved);
    }
    pthread_rwlock_unlock(&c->store_lock);
    if (e != NULL)
        core_epoch_publish(c, e);
    core_epoch_put(prev);
    return r;
}

MR_RESULT core_read_number(mr_store_txn *t, const char *key, int base, const char *what,
                           uint64_t *value)
{
    mr_buf v;
    bool found = false;
    *value = 0;
    mr_buf_init(&v, 64, 0);
    mr_result r = mr_store_get(t, key, &v, &found);
    if (mr_ok(r) && found) {
        char text[32];
        size_t n = v.len < sizeof(text) - 1 ? v.len : sizeof(text) - 1;
        memcpy(text, v.data, n);
        text[n] = '\0';
        char *end = NULL;
        *value = strtoull(text, &end, base);
        if (n == 0 || end == NULL || *end != '\0') {
            mr_error_set(MR_ERR_INTERNAL, __FILE__, __LINE__, "stored %s is malformed", what);
            r = MR_FAILURE;
        }
    }
    mr_buf_free(&v);
    return r;
}
