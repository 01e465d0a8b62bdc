/* SPDX-License-Identifier: Apache-2.0 */
/* The kubernetes backend's watch of its state Secrets: a watched head newer than the replica
 * is applied at once (so MR_STORE_TXN_LATEST reads see other instances' commits without a
 * request), a watched shard is kept until a head needs it (so ks_refresh does not GET it).
 * Watched objects go through the same parsing and sealed-value checks as fetched ones; the
 * per-request quorum GET of the head stays (k8s_store.c), so a slow or broken watch never
 * makes a read stale, only colder. */
#include "coordinator/store/k8s_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

static void free_shard(ks_shard *sh)
{
    if (sh != NULL) {
        ks_shard_free(sh);
        mr_free(sh);
    }
}

/* The shard index of a Secret called <state name>-<i>, or -1. Lock held. */
static long shard_index(const kstore *s, const char *name)
{
    size_t n = strlen(s->name);
    if (strncmp(name, s->name, n) != 0 || name[n] != '-' || name[n + 1] < '0' ||
        name[n + 1] > '9' || strlen(name + n + 1) > 5 || (name[n + 1] == '0' && name[n + 2] != '\0'))
        return -1;
    char *end = NULL;
    long i = strtol(name + n + 1, &end, 10);
    return *end == '\0' && i >= 0 && (uint64_t)i < s->head.n ? i : -1;
}

static void on_shard(kstore *s, long i, const mr_k8s_obj *o)
{
    ks_shard *sh = mr_calloc(1, sizeof(*sh));
    if (sh == NULL)
        return;
    if (!mr_ok(ks_shard_parse(o, sh))) {
        MR_LOG_WARN("kubernetes store: a watched shard does not parse; it is fetched instead",
                    MR_F_ERR(), MR_F_INT("shard", i));
        mr_error_clear();
        free_shard(sh);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (sh->gen > s->shards[i].gen &&
        (s->watched[i] == NULL || sh->gen > s->watched[i]->gen)) {
        free_shard(s->watched[i]);
        s->watched[i] = sh;
        sh = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    free_shard(sh);
}

static void on_event(void *ud, const mr_k8s_event *ev)
{
    kstore *s = ud;
    if (ev->type == MR_K8S_EV_DELETED)
        return; /* the state is never deleted by an instance; requests report it */
    if (strcmp(ev->name, s->name) == 0) {
        bool advanced = false;
        if (!mr_ok(ks_refresh_obj(s, &ev->obj, &advanced))) {
            MR_LOG_WARN("kubernetes store: a watched head is not applied; requests fetch it",
                        MR_F_ERR());
            mr_error_clear();
        }
        pthread_mutex_lock(&s->mu);
        s->watch_applied += advanced ? 1 : 0;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pthread_mutex_lock(&s->mu);
    long i = shard_index(s, ev->name);
    pthread_mutex_unlock(&s->mu);
    if (i >= 0)
        on_shard(s, i, &ev->obj);
}

void ks_watched_take(kstore *s, uint32_t i, uint64_t need, ks_shard **out)
{
    *out = NULL;
    if (s->watched == NULL || s->watched[i] == NULL)
        return;
    if (s->watched[i]->gen < need || s->watched[i]->gen <= s->shards[i].gen) {
        if (s->watched[i]->gen <= s->shards[i].gen) {
            free_shard(s->watched[i]);
            s->watched[i] = NULL;
        }
        return;
    }
    *out = s->watched[i];
    s->watched[i] = NULL;
    s->watch_shards++;
}

void ks_watch_start(kstore *s, const char *rv)
{
    const char *label = ks_label(s->name);
    char sel[KS_NAME_MAX + 64];
    if (label == NULL || s->shards == NULL)
        return;
    s->watched = mr_calloc(s->head.n, sizeof(ks_shard *)); /* NOLINT(bugprone-sizeof-expression) */
    if (s->watched == NULL)
        return;
    /* the label key's '/' and the '=' percent-encoded for the query */
    (void)snprintf(sel, sizeof(sel), "marblerun.edgeless.systems%%2Fstate%%3D%s", label);
    if (!mr_ok(mr_k8s_watch_start(s->cli, MR_K8S_SECRET, sel, rv, on_event, s, &s->watch))) {
        MR_LOG_WARN("kubernetes store: no watch of the state; requests fetch what changed",
                    MR_F_ERR());
        mr_error_clear();
        s->watch = NULL;
    }
}

void ks_watch_stop(kstore *s)
{
    mr_k8s_watch_stop(s->watch);
    s->watch = NULL;
    for (uint32_t i = 0; s->watched != NULL && i < s->head.n; i++)
        free_shard(s->watched[i]);
    mr_free(s->watched);
    s->watched = NULL;
}
