/* SPDX-License-Identifier: Apache-2.0 */
/* Where the core meets the sealer: loading at startup and replacing the sealed state. */
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/recovery.h"

static int cmp_secret(const void *a, const void *b)
{
    return strcmp(((const core_secret *)a)->name, ((const core_secret *)b)->name);
}

mr_result core_secret_set_sort(core_secret_set *set)
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

/* Builds the epoch of `store`, carrying over the own quote when the root is unchanged or
 * issuing a new one. */
mr_result core_epoch_from_store(mr_core *c, mr_store *store, const core_epoch *prev,
                                core_epoch **out)
{
    mr_store_txn *t = NULL;
    core_epoch *e = NULL;
    MR_GUARD(mr_store_begin(store, &t));
    mr_result r = core_epoch_load(c, t, &e);
    mr_store_abort(t);
    MR_GUARD(r);
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

/* Makes *next (a complete in-memory state) the sealed state: a fresh state key, the old
 * sealed files replaced, everything copied into the new embedded store, recovery secrets
 * computed for the manifest's recovery keys, and the new epoch published. */
mr_result core_persist_new_state(mr_core *c, const mr_manifest *m, mr_store **next,
                                 mr_core_recovery_secrets *out)
{
    mr_result res = MR_FAILURE;
    mr_store *emb = NULL;
    core_epoch *e = NULL, *prev = core_epoch_get(c);
    mr_buf dek;
    mr_buf_init(&dek, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(mr_sealer_set_mode(c->sealer, core_seal_mode(m)));
    MR_GUARD_OUT(mr_sealer_create(c->sealer, c->cfg.store_opts, &emb));
    MR_GUARD_OUT(mr_store_copy_all(*next, emb));
    MR_GUARD_OUT(mr_sealer_export_dek(c->sealer, &dek));
    MR_GUARD_OUT(core_recovery_issue(c, m, mr_buf_slice(&dek), out));
    MR_GUARD_OUT(core_epoch_from_store(c, emb, prev, &e));
    mr_store_close(c->store);
    c->store = emb;
    emb = NULL;
    core_epoch_publish(c, e);
    res = MR_SUCCESS;
out:
    mr_buf_free(&dek);
    mr_store_close(emb);
    core_epoch_put(prev);
    if (!mr_ok(res))
        mr_core_recovery_secrets_free(out);
    return res;
}

mr_result core_rekey(mr_core *c, const mr_manifest *m, mr_core_recovery_secrets *out)
{
    mr_store *mem = NULL;
    MR_GUARD(mr_store_open_memory(&mem));
    mr_result r = mr_store_copy_all(c->store, mem);
    if (mr_ok(r))
        r = core_persist_new_state(c, m, &mem, out);
    mr_store_close(mem);
    return r;
}
