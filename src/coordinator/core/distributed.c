/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Coordinator instance of a group that shares one state in etcd (docs/distributed.md).
 *
 * The state key. The shared state is sealed, value by value, with one state key (the DEK of
 * the etcd store). It is made by the first instance that finds the prefix empty and never
 * changes for the life of the state. Every instance keeps its own sealed copy (the seal
 * directory's sealed_key, under the manifest's seal mode) and otherwise gets it from a peer
 * over the key API (keyx.h). An instance that can do neither serves recovery mode with a
 * temporary CA, asks its peers again every FETCH_INTERVAL_MS, and takes the key from the
 * first that releases one, or from a recovery (`marblerun recover`) on itself.
 *
 * Freshness. The published epoch is a cache of the shared state. mr_core_sync (every request
 * that reads state) makes the store's replica current and rebuilds the epoch when the state
 * changed; all epoch publication happens under the writer mutex, so a writer's epoch stays
 * the current one while it works.
 *
 * Writers on several instances. Every state-changing commit (not activation or counter
 * commits) reads and bumps K_GENERATION. A writer's decisions are taken on its epoch; the
 * generation it reads in its transaction must be the one of that epoch, so a commit based on
 * an epoch that another instance's commit has outdated fails as a conflict, and the public
 * writer calls sync and run again (core_dist_retry). SetManifest is the exception: a lost race
 * is "server is not in expected state", as with one instance.
 *
 * Recovery data (share hashes) lives in the meta entry "recovery" beside the state, unsealed,
 * written in the same commit as the recovery secrets it describes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/recovery.h"
#include "coordinator/keyx/keyx.h"
#include "coordinator/store/shared.h"
#include "crypto/rand.h"

#define DEFAULT_PEER_TIMEOUT_MS 5000u
#define FETCH_INTERVAL_MS 2000u
#define RETRIES 8
#define META_RECOVERY "recovery"

struct core_dist {
    char *peers;               /* EDG_COORDINATOR_PEERS (kubernetes: also EndpointSlices) */
    unsigned peer_timeout_ms;
    mr_keyx *keyx;
    mr_shared *be;             /* for what is read without the key: probe, keycheck, meta */
    atomic_bool serving;       /* c->store is the shared store (not recovery mode) */
    atomic_uint_fast64_t epoch_rev; /* state revision the published epoch was built at */
    pthread_t fetcher;
    bool fetcher_started;
    pthread_mutex_t mu;        /* stop + cv */
    pthread_cond_t cv;
    bool stop;
};

static const char *const volatile_prefixes[] = {P_ACTIVATIONS, P_COUNTER, P_UPDATE_LOG,
                                                K_UPDATE_LOG_NEXT, K_PENDING_UPDATE};

bool mr_core_shared(const mr_core *c) { return c->dist != NULL; }

void mr_core_store_stats(mr_core *c, mr_store_stats *out)
{
    core_store_rdlock(c);
    mr_store_stats_get(c->store, out);
    core_store_unlock(c);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- setup ---- */

static MR_RESULT dup_opt(const char *in, char **out)
{
    *out = NULL;
    if (in == NULL || in[0] == '\0')
        return MR_SUCCESS;
    *out = mr_strdup(in);
    MR_ENSURE_ALLOC(*out);
    return MR_SUCCESS;
}

static MR_RESULT copy_cfg(struct core_dist *d, const mr_core_dist_config *cfg)
{
    MR_GUARD(dup_opt(cfg->peers, &d->peers));
    d->peer_timeout_ms = cfg->peer_timeout_ms != 0 ? cfg->peer_timeout_ms : DEFAULT_PEER_TIMEOUT_MS;
    mr_shared_config sc = {
        .kind = cfg->kubernetes ? MR_SHARED_KUBERNETES : MR_SHARED_ETCD,
        .etcd_endpoints = cfg->etcd_endpoints, .etcd_prefix = cfg->etcd_prefix,
        .etcd_ca = cfg->etcd_ca, .etcd_cert = cfg->etcd_cert, .etcd_key = cfg->etcd_key,
        .k8s_namespace = cfg->k8s_namespace, .k8s_state = cfg->k8s_state,
        .k8s_service = cfg->k8s_service, .k8s_sa_dir = cfg->k8s_sa_dir,
        .k8s_kek_map = cfg->k8s_kek_map,
    };
    return mr_shared_open(&sc, &d->be);
}

/* A store on the shared state with key (its own connections). */
static MR_RESULT open_store(mr_core *c, mr_slice key, mr_store **out)
{
    return mr_shared_open_store(c->dist->be, key, volatile_prefixes,
                                MR_ARRAY_LEN(volatile_prefixes), out);
}

static MR_RESULT accept_key(void *arg, mr_slice key, bool *ok)
{
    struct core_dist *d = arg;
    *ok = false;
    if (key.len != MR_STORE_DEK_LEN)
        return MR_SUCCESS;
    return mr_shared_check_key(d->be, key, ok);
}

/* ---- the sealed copy in the ConfigMap (kubernetes) ---- */

/* Our sealed copy of the key, kept in the shared sealed-key map as well (best effort: the
 * seal directory has it; the map only matters when a pod comes back without it). */
static void kek_save(mr_core *c)
{
    char id[MR_SEAL_HOST_ID_LEN + 1];
    bool have_id = false, have = false;
    mr_buf blob;
    mr_buf_init(&blob, 0, 0);
    mr_result r = mr_sealer_host_id(c->sealer, id, &have_id);
    if (mr_ok(r) && have_id)
        r = mr_sealer_export_sealed(c->sealer, &blob, &have);
    if (mr_ok(r) && have)
        r = mr_shared_kek_put(c->dist->be, id, mr_buf_slice(&blob));
    if (!mr_ok(r)) {
        MR_LOG_WARN("could not keep the sealed state key in the shared map", MR_F_ERR());
        mr_error_clear();
    }
    mr_buf_free(&blob);
}

/* No sealed copy in the seal directory: the map's copy for this host, if there is one. */
static MR_RESULT kek_restore(mr_core *c)
{
    char id[MR_SEAL_HOST_ID_LEN + 1];
    bool have = false, have_id = false, found = false;
    mr_buf blob;
    mr_buf_init(&blob, 0, 0);
    mr_result r = mr_sealer_export_sealed(c->sealer, &blob, &have);
    if (mr_ok(r) && !have)
        r = mr_sealer_host_id(c->sealer, id, &have_id);
    if (mr_ok(r) && have_id)
        r = mr_shared_kek_get(c->dist->be, id, &blob, &found);
    if (mr_ok(r) && found) {
        r = mr_sealer_import_sealed(c->sealer, mr_buf_slice(&blob));
        if (mr_ok(r))
            MR_LOG_INFO("restored the sealed state key of this host from the shared map");
    }
    mr_buf_free(&blob);
    return r;
}

/* Serves the shared state with key: sealed for this host, the store opened, the epoch built
 * (with our quote). *e is the new epoch; c->store the etcd store. */
static MR_RESULT serve_with(mr_core *c, mr_slice key, mr_store *opened, const core_epoch *prev,
                            core_epoch **e)
{
    mr_store *st = opened;
    if (st == NULL)
        MR_GUARD(open_store(c, key, &st));
    mr_result r = mr_sealer_adopt(c->sealer, key.ptr, key.len);
    if (mr_ok(r))
        r = core_epoch_from_store(c, st, prev, e);
    if (mr_ok(r) && (*e)->manifest != NULL)
        r = mr_sealer_set_mode(c->sealer, core_seal_mode((*e)->manifest));
    if (!mr_ok(r)) {
        if (*e != NULL)
            core_epoch_put(*e);
        *e = NULL;
        mr_store_close(st);
        return MR_FAILURE;
    }
    if (c->store == NULL)
        c->store = st;
    else
        core_store_replace(c, st);
    atomic_store(&c->dist->epoch_rev, 0);
    atomic_store(&c->dist->serving, true);
    kek_save(c);
    return MR_SUCCESS;
}

/* A new shared state (a fresh CA in state 2) when the prefix is empty; *created = false when
 * another instance made it first. */
static MR_RESULT create_state(mr_core *c, core_epoch **e, bool *created)
{
    mr_result res = MR_FAILURE;
    mr_store *mem = NULL;
    core_epoch *tmp = NULL;
    uint8_t *key = mr_secret_alloc(MR_STORE_DEK_LEN);
    *created = false;
    MR_ENSURE_ALLOC(key);
    MR_GUARD_OUT(mr_crypto_random_key(key, MR_STORE_DEK_LEN));
    MR_GUARD_OUT(core_fresh_state(c, MR_STATE_ACCEPTING_MANIFEST, &mem, &tmp));
    MR_GUARD_OUT(mr_shared_create(c->dist->be, MR_SLICE(key, MR_STORE_DEK_LEN), mem, created));
    if (*created) {
        MR_GUARD_OUT(serve_with(c, MR_SLICE(key, MR_STORE_DEK_LEN), NULL, NULL, e));
        MR_LOG_INFO("created the shared state", MR_F_STR("in", mr_shared_where(c->dist->be)));
    }
    res = MR_SUCCESS;
out:
    core_epoch_put(tmp);
    mr_store_close(mem);
    mr_secret_free(key, MR_STORE_DEK_LEN);
    return res;
}

/* Our sealed copy, when there is one and it is the shared state's key. */
static MR_RESULT try_sealed(mr_core *c, core_epoch **e, bool *done)
{
    bool have = false, ok = false;
    mr_buf key;
    *done = false;
    MR_GUARD(mr_sealer_unseal_only(c->sealer, &have));
    if (!have) {
        MR_LOG_INFO("no usable sealed copy of the state key on this host",
                    MR_F_STR("reason", mr_sealer_reason(c->sealer)));
        return MR_SUCCESS;
    }
    mr_buf_init(&key, 0, MR_BUF_SECRET);
    mr_result r = mr_sealer_export_dek(c->sealer, &key);
    if (mr_ok(r))
        r = accept_key(c->dist, mr_buf_slice(&key), &ok);
    if (mr_ok(r) && ok) {
        r = serve_with(c, mr_buf_slice(&key), NULL, NULL, e);
        *done = mr_ok(r);
        if (*done)
            MR_LOG_INFO("opened the shared state with the sealed key");
    } else if (mr_ok(r)) {
        MR_LOG_WARN("the sealed key on this host belongs to another state; asking the peers");
    }
    mr_buf_free(&key);
    return r;
}

/* One pass over the peers; *got says whether key holds a key that opens the state. */
static void fetch_key(struct core_dist *d, unsigned timeout_ms, mr_buf *key, bool *got)
{
    mr_buf peers;
    mr_buf_init(&peers, 0, 0);
    *got = false;
    if (!mr_ok(mr_shared_peers(d->be, d->peers, &peers))) {
        MR_LOG_INFO("the peers cannot be listed", MR_F_ERR());
        mr_error_clear();
    } else if (peers.len > 0 && peers.data[0] != '\0' &&
               mr_ok(mr_keyx_fetch(d->keyx, (const char *)peers.data, timeout_ms, accept_key, d,
                                   key))) {
        *got = true;
        MR_LOG_INFO("got the state key from a peer");
    } else if (peers.len > 0 && peers.data[0] != '\0') {
        MR_LOG_INFO("no peer released the state key", MR_F_ERR());
        mr_error_clear();
    }
    mr_buf_free(&peers);
}

/* Whether there may be peers to ask (configured, or found through the Kubernetes API). */
static bool may_have_peers(const struct core_dist *d, const mr_core *c)
{
    return d->peers != NULL || c->cfg.dist->kubernetes;
}

static MR_RESULT try_peers(mr_core *c, unsigned timeout_ms, core_epoch **e, bool *done)
{
    mr_buf key;
    mr_buf_init(&key, 0, MR_BUF_SECRET);
    fetch_key(c->dist, timeout_ms, &key, done);
    mr_result r = *done ? serve_with(c, mr_buf_slice(&key), NULL, NULL, e) : MR_SUCCESS;
    mr_buf_free(&key);
    return r;
}

/* Asks the peers in passes until one answers or the startup timeout is over. */
static MR_RESULT startup_peers(mr_core *c, core_epoch **e, bool *done)
{
    uint64_t until = now_ms() + c->dist->peer_timeout_ms;
    *done = false;
    for (;;) {
        uint64_t now = now_ms();
        MR_GUARD(try_peers(c, (unsigned)(until > now ? until - now : 1), e, done));
        if (*done || !may_have_peers(c->dist, c) || now_ms() + 500 >= until)
            return MR_SUCCESS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000000L};
        (void)nanosleep(&ts, NULL);
    }
}

/* ---- recovery mode: asking the peers in the background ---- */

/* Takes a fetched key over (recovery mode ends). Writer mutex held. */
static void adopt_fetched(mr_core *c, mr_slice key)
{
    core_epoch *prev = core_epoch_get(c), *e = NULL;
    if (mr_ok(serve_with(c, key, NULL, prev, &e))) {
        core_epoch_publish(c, e);
        core_recovery_free(c->recovery);
        c->recovery = NULL;
        MR_LOG_INFO("left recovery mode with the key from a peer");
    } else {
        MR_LOG_ERROR("could not open the shared state with the key from a peer", MR_F_ERR());
        mr_error_clear();
    }
    core_epoch_put(prev);
}

static void *fetch_loop(void *arg)
{
    mr_core *c = arg;
    struct core_dist *d = c->dist;
    mr_buf key;
    mr_buf_init(&key, 0, MR_BUF_SECRET);
    pthread_mutex_lock(&d->mu);
    while (!d->stop && !atomic_load(&d->serving)) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += FETCH_INTERVAL_MS / 1000;
        while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &ts) != ETIMEDOUT) {
        }
        if (d->stop)
            break;
        pthread_mutex_unlock(&d->mu);
        bool got = false;
        mr_buf_reset(&key);
        if (!atomic_load(&d->serving))
            fetch_key(d, FETCH_INTERVAL_MS, &key, &got);
        if (got) {
            pthread_mutex_lock(&c->writer);
            if (!atomic_load(&d->serving)) /* a recovery on this instance may have won */
                adopt_fetched(c, mr_buf_slice(&key));
            pthread_mutex_unlock(&c->writer);
        }
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    mr_buf_free(&key);
    return NULL;
}

static MR_RESULT start_fetcher(mr_core *c)
{
    struct core_dist *d = c->dist;
    if (!may_have_peers(d, c))
        return MR_SUCCESS;
    MR_ENSURE(pthread_create(&d->fetcher, NULL, fetch_loop, c) == 0, MR_ERR_INTERNAL,
              "cannot start the key fetch thread");
    d->fetcher_started = true;
    return MR_SUCCESS;
}

/* ---- startup ---- */

static MR_RESULT dist_new(mr_core *c)
{
    struct core_dist *d = mr_calloc(1, sizeof(*d));
    MR_ENSURE_ALLOC(d);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    atomic_init(&d->serving, false);
    atomic_init(&d->epoch_rev, 0);
    c->dist = d;
    MR_GUARD(copy_cfg(d, c->cfg.dist));
    return mr_keyx_new(c->cfg.issuer, &c->cfg.verify, &d->keyx);
}

MR_RESULT core_dist_load(mr_core *c, core_epoch **e)
{
    mr_seal_config sc = {.seal_dir = c->seal_dir, .kek = c->cfg.kek};
    bool has_state = false, done = false;
    *e = NULL;
    MR_GUARD(dist_new(c));
    MR_GUARD(mr_sealer_open(&sc, &c->sealer));
    MR_GUARD(mr_shared_probe(c->dist->be, &has_state));
    if (!has_state)
        MR_GUARD(create_state(c, e, &done));
    if (!done)
        MR_GUARD(kek_restore(c));
    if (!done)
        MR_GUARD(try_sealed(c, e, &done));
    if (!done)
        MR_GUARD(startup_peers(c, e, &done));
    if (done)
        return MR_SUCCESS;
    MR_LOG_WARN("the shared state's key is neither sealed on this host nor released by a peer; "
                "entering recovery mode (the peers are asked again in the background)");
    MR_GUARD(core_fresh_state(c, MR_STATE_RECOVERY, &c->store, e));
    MR_GUARD(start_fetcher(c));
    return core_epoch_quote(c, *e);
}

void core_dist_free(mr_core *c)
{
    struct core_dist *d = c->dist;
    if (d == NULL)
        return;
    if (d->fetcher_started) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->fetcher, NULL);
    }
    mr_keyx_free(d->keyx);
    mr_shared_close(d->be);
    mr_free(d->peers);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    mr_free(d);
    c->dist = NULL;
}

/* ---- freshness ---- */

/* Rebuilds the epoch from the replica when it is older than state_rev. Writer mutex held. */
static MR_RESULT refresh_locked(mr_core *c, uint64_t state_rev)
{
    struct core_dist *d = c->dist;
    if (state_rev <= atomic_load(&d->epoch_rev))
        return MR_SUCCESS;
    core_epoch *prev = core_epoch_get(c), *e = NULL;
    core_store_rdlock(c);
    mr_result r = core_epoch_from_store(c, c->store, prev, &e);
    core_store_unlock(c);
    core_epoch_put(prev);
    MR_GUARD(r);
    core_epoch_publish(c, e);
    atomic_store(&d->epoch_rev, state_rev);
    if (e->manifest != NULL && mr_sealer_mode(c->sealer) != core_seal_mode(e->manifest)) {
        if (mr_ok(mr_sealer_set_mode(c->sealer, core_seal_mode(e->manifest)))) {
            kek_save(c);
        } else {
            MR_LOG_ERROR("could not re-seal the state key under the manifest's seal mode",
                         MR_F_ERR());
            mr_error_clear();
        }
    }
    return MR_SUCCESS;
}

MR_RESULT mr_core_sync(mr_core *c)
{
    struct core_dist *d = c->dist;
    uint64_t rev = 0;
    if (d == NULL || !atomic_load(&d->serving))
        return MR_SUCCESS;
    core_store_rdlock(c);
    mr_result r = mr_store_sync(c->store, &rev);
    core_store_unlock(c);
    MR_GUARD(r);
    if (rev <= atomic_load(&d->epoch_rev))
        return MR_SUCCESS;
    pthread_mutex_lock(&c->writer);
    r = refresh_locked(c, rev);
    pthread_mutex_unlock(&c->writer);
    return r;
}

bool core_dist_retry(mr_core *c, int attempt)
{
    if (c->dist == NULL || !mr_error_is(MR_ERR_CONFLICT) || attempt + 1 >= RETRIES)
        return false;
    mr_error_clear();
    /* on failure the sync's error (etcd unavailable) is the answer */
    return mr_ok(mr_core_sync(c));
}

/* ---- commits ---- */

static MR_RESULT stamp(mr_core *c, mr_store_txn *t, const core_epoch *e)
{
    uint64_t gen = 0;
    char text[32];
    MR_GUARD(core_read_number(t, K_GENERATION, 10, "state generation", &gen));
    MR_ENSURE(gen == e->generation, MR_ERR_CONFLICT,
              "store conflict: another instance changed the state");
    (void)c;
    (void)snprintf(text, sizeof(text), "%llu", (unsigned long long)gen + 1);
    return core_put_str(t, K_GENERATION, text);
}

MR_RESULT core_dist_stamp(mr_core *c, mr_store_txn *t)
{
    core_epoch *e = core_epoch_get(c);
    mr_result r = stamp(c, t, e);
    core_epoch_put(e);
    return r;
}

/* Puts every key of src into t and deletes the keys of t's view that src lacks (the
 * generation excepted: the caller has stamped it). */
static MR_RESULT replace_all(mr_store_txn *t, mr_store *src)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *st = NULL;
    mr_store_list want = {0}, have = {0};
    MR_GUARD_OUT(mr_store_begin(src, &st));
    MR_GUARD_OUT(mr_store_scan(st, "", &want));
    MR_GUARD_OUT(mr_store_scan(t, "", &have));
    for (size_t i = 0, k = 0; i < have.count; i++) {
        if (strcmp(have.items[i].key, K_GENERATION) == 0)
            continue;
        while (k < want.count && strcmp(want.items[k].key, have.items[i].key) < 0)
            k++;
        if (k == want.count || strcmp(want.items[k].key, have.items[i].key) != 0)
            MR_GUARD_OUT(mr_store_delete(t, have.items[i].key));
    }
    for (size_t i = 0; i < want.count; i++)
        if (strcmp(want.items[i].key, K_GENERATION) != 0)
            MR_GUARD_OUT(mr_store_put(t, want.items[i].key, want.items[i].value.ptr,
                                      want.items[i].value.len));
    res = MR_SUCCESS;
out:
    mr_store_list_free(&want);
    mr_store_list_free(&have);
    mr_store_abort(st);
    return res;
}

/* New recovery secrets of the shared key for m, their recovery data into t. */
static MR_RESULT issue_recovery(mr_core *c, const mr_manifest *m, mr_store_txn *t,
                                mr_core_recovery_secrets *out)
{
    mr_buf dek, data;
    mr_buf_init(&dek, 0, MR_BUF_SECRET);
    mr_buf_init(&data, 0, 0);
    mr_result r = mr_sealer_export_dek(c->sealer, &dek);
    if (mr_ok(r))
        r = core_recovery_issue_shared(c, m, mr_buf_slice(&dek), out, &data);
    if (mr_ok(r))
        r = mr_store_put_meta(t, META_RECOVERY, data.data, data.len, data.len == 0);
    mr_buf_free(&dek);
    mr_buf_free(&data);
    return r;
}

static MR_RESULT state_is(mr_store_txn *t, uint8_t want)
{
    mr_buf v;
    bool found = false;
    mr_buf_init(&v, 16, 0);
    mr_result r = mr_store_get(t, K_STATE, &v, &found);
    bool ok = found && v.len == 1 && v.data[0] == want;
    mr_buf_free(&v);
    MR_GUARD(r);
    MR_ENSURE(ok, MR_ERR_STATE, "server is not in expected state");
    return MR_SUCCESS;
}

MR_RESULT core_dist_persist_new_state(mr_core *c, const mr_manifest *m, mr_store **next,
                                      mr_core_recovery_secrets *out)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    core_epoch *prev = core_epoch_get(c), *e = NULL;
    memset(out, 0, sizeof(*out));
    MR_ENSURE_OUT(atomic_load(&c->dist->serving), MR_ERR_STATE,
                  "setting a new manifest in recovery mode is not supported with a shared store: "
                  "recover the state, or delete the %s to start over",
                  mr_shared_where(c->dist->be));
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(state_is(t, (uint8_t)('0' + MR_STATE_ACCEPTING_MANIFEST)));
    MR_GUARD_OUT(stamp(c, t, prev));
    MR_GUARD_OUT(replace_all(t, *next));
    MR_GUARD_OUT(issue_recovery(c, m, t, out));
    MR_GUARD_OUT(core_epoch_from_txn(c, t, prev, &e));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(mr_store_commit(tc));
    core_epoch_publish(c, e);
    e = NULL;
    if (mr_ok(mr_sealer_set_mode(c->sealer, core_seal_mode(m)))) {
        kek_save(c);
    } else {
        MR_LOG_ERROR("the manifest is set, but the state key could not be re-sealed on this "
                     "host under its seal mode", MR_F_ERR());
        mr_error_clear();
    }
    res = MR_SUCCESS;
out:
    if (!mr_ok(res) && mr_error_is(MR_ERR_CONFLICT)) /* another instance was first */
        mr_error_set(MR_ERR_STATE, __FILE__, __LINE__, "server is not in expected state");
    if (!mr_ok(res))
        mr_core_recovery_secrets_free(out);
    core_epoch_put(e);
    core_epoch_put(prev);
    mr_store_abort(t);
    return res;
}

MR_RESULT core_dist_rekey(mr_core *c, const mr_manifest *m, mr_core_recovery_secrets *out)
{
    mr_store_txn *t = NULL;
    memset(out, 0, sizeof(*out));
    MR_GUARD(mr_store_begin(c->store, &t));
    mr_result r = issue_recovery(c, m, t, out);
    if (mr_ok(r)) {
        mr_store_txn *tc = t;
        t = NULL;
        r = core_commit_and_publish(c, tc); /* stamps the generation */
    }
    mr_store_abort(t);
    if (!mr_ok(r))
        mr_core_recovery_secrets_free(out);
    return r;
}

/* ---- recovery ---- */

MR_RESULT core_dist_try_key(mr_core *c, mr_slice key, mr_store **st, bool *wrong)
{
    bool ok = false;
    *st = NULL;
    *wrong = false;
    if (key.len != MR_STORE_DEK_LEN) {
        *wrong = true;
        MR_BAIL(MR_ERR_USAGE, "loading sealed state: the state key must be %u bytes",
                MR_STORE_DEK_LEN);
    }
    MR_GUARD(accept_key(c->dist, key, &ok));
    if (!ok) {
        *wrong = true;
        MR_BAIL(MR_ERR_PROTOCOL, "loading sealed state: the key does not open the shared state");
    }
    return open_store(c, key, st);
}

MR_RESULT core_dist_adopt(mr_core *c, mr_slice key, mr_store *st)
{
    core_epoch *prev = core_epoch_get(c), *e = NULL;
    mr_result r = serve_with(c, key, st, prev, &e);
    core_epoch_put(prev);
    if (!mr_ok(r)) {
        mr_error_prefix("loading state");
        return MR_FAILURE;
    }
    core_epoch_publish(c, e);
    return MR_SUCCESS;
}

MR_RESULT core_dist_get_recovery_data(mr_core *c, mr_buf *json, bool *found)
{
    return mr_shared_get_meta(c->dist->be, META_RECOVERY, json, found);
}

/* ---- the key API ---- */

MR_RESULT mr_core_share_key(mr_core *c, mr_slice quote, mr_slice peer_leaf, mr_buf *key,
                            mr_buf *our_quote)
{
    struct core_dist *d = c->dist;
    MR_ENSURE(d != NULL, MR_ERR_STATE, "this Coordinator does not share its state");
    MR_GUARD(mr_keyx_check_requester(d->keyx, quote, peer_leaf));
    pthread_mutex_lock(&c->writer);
    mr_result r = MR_SUCCESS;
    if (!atomic_load(&d->serving) || !mr_sealer_has_dek(c->sealer)) {
        mr_error_set(MR_ERR_UNAVAILABLE, __FILE__, __LINE__,
                     "this instance holds no state key (recovery mode)");
        r = MR_FAILURE;
    }
    if (mr_ok(r))
        r = mr_sealer_export_dek(c->sealer, key);
    pthread_mutex_unlock(&c->writer);
    MR_GUARD(r);
    mr_slice q = mr_keyx_quote(d->keyx);
    MR_GUARD(mr_buf_append(our_quote, q.ptr, q.len));
    MR_LOG_INFO("released the state key to a peer instance");
    return MR_SUCCESS;
}

MR_RESULT mr_core_key_identity(void *core, X509 **cert, EVP_PKEY **key)
{
    mr_core *c = core;
    MR_ENSURE(c->dist != NULL, MR_ERR_STATE, "this Coordinator does not share its state");
    return mr_keyx_tls_identity(c->dist->keyx, cert, key);
}
