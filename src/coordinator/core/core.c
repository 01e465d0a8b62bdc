/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/log.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/recovery.h"
#include "crypto/hash.h"
#include "crypto/x509.h"

static const char *const state_messages[] = {
    [MR_STATE_UNINITIALIZED] = NULL,
    [MR_STATE_RECOVERY] =
        "Coordinator is in recovery mode. Either upload a key to unseal the saved state, or "
        "set a new manifest. For more information on how to proceed, consult the "
        "documentation.",
    [MR_STATE_ACCEPTING_MANIFEST] = "Coordinator is ready to accept a manifest.",
    [MR_STATE_ACCEPTING_MARBLES] = "Coordinator is running correctly and ready to accept marbles.",
};

const char *mr_core_state_message(int state)
{
    return state >= 0 && (size_t)state < MR_ARRAY_LEN(state_messages) ? state_messages[state]
                                                                       : NULL;
}

int mr_core_state(mr_core *c)
{
    core_epoch *e = core_epoch_get(c);
    int s = e->state;
    core_epoch_put(e);
    return s;
}

static MR_RESULT copy_config(mr_core *c, const mr_core_config *cfg)
{
    c->cfg = *cfg;
    if (c->cfg.curve == MR_KEY_NONE)
        c->cfg.curve = MR_KEY_EC_P256;
    MR_ENSURE(c->cfg.curve == MR_KEY_EC_P256 || c->cfg.curve == MR_KEY_EC_P384, MR_ERR_USAGE,
              "unsupported Coordinator key curve (want P-256 or P-384)");
    c->dns = mr_calloc(cfg->n_dns_names + 1, sizeof(char *));
    MR_ENSURE_ALLOC(c->dns);
    for (size_t i = 0; i < cfg->n_dns_names; i++) {
        c->dns[i] = mr_strdup(cfg->dns_names[i]);
        MR_ENSURE_ALLOC(c->dns[i]);
        c->n_dns++;
    }
    if (cfg->seal_dir != NULL) {
        c->seal_dir = mr_strdup(cfg->seal_dir);
        MR_ENSURE_ALLOC(c->seal_dir);
    }
    c->simulation = cfg->issuer == NULL;
    return MR_SUCCESS;
}

/* Nothing is persisted before a manifest is set (spec §12.9, 1.5.0+). */
MR_RESULT core_fresh_state(mr_core *c, int state, mr_store **store_out, core_epoch **epoch_out)
{
    mr_result res = MR_FAILURE;
    mr_store *store = NULL;
    mr_store_txn *t = NULL;
    char code[2] = {(char)('0' + state), '\0'};
    MR_GUARD(mr_store_open_memory(&store));
    MR_GUARD_OUT(mr_store_begin(store, &t));
    MR_GUARD_OUT(core_pki_create(c, t));
    MR_GUARD_OUT(core_put_str(t, K_STATE, code));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(mr_store_commit(tc)); /* frees the transaction either way */
    MR_GUARD_OUT(mr_store_begin(store, &t));
    MR_GUARD_OUT(core_epoch_load(c, t, epoch_out));
    *store_out = store;
    store = NULL;
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    mr_store_close(store);
    return res;
}

/* Startup (spec §1.2 step 2 with 1.5+ semantics): a usable sealed state is loaded; without
 * one a fresh CA lives in memory (state 2); a sealed state that cannot be opened sends the
 * Coordinator into recovery mode (state 1) with a temporary CA. */
/* Takes over the loaded sealed state's store: with a manifest it becomes the current state
 * (*used); a state without one is dropped (start over). *e is set only when *used. */
static MR_RESULT use_loaded(mr_core *c, mr_store *store, core_epoch **e, bool *used)
{
    mr_result res = MR_FAILURE;
    core_epoch *loaded = NULL;
    *used = false;
    MR_GUARD_OUT(core_epoch_from_store(c, store, NULL, &loaded));
    if (loaded->manifest != NULL) {
        MR_GUARD_OUT(mr_sealer_set_mode(c->sealer, core_seal_mode(loaded->manifest)));
        MR_LOG_INFO("loaded sealed state", MR_F_STR("manifest", loaded->fingerprint));
        c->store = store;
        store = NULL;
        *e = loaded;
        loaded = NULL;
        *used = true;
    }
    res = MR_SUCCESS;
out:
    core_epoch_put(loaded);
    mr_store_close(store);
    return res;
}

static MR_RESULT load_or_create(mr_core *c, core_epoch **e)
{
    mr_seal_config sc = {.seal_dir = c->seal_dir, .kek = c->cfg.kek};
    mr_seal_outcome outcome = MR_SEAL_NO_STATE;
    mr_store *store = NULL;
    if (c->cfg.dist != NULL)
        return core_dist_load(c, e);
    MR_GUARD(mr_sealer_open(&sc, &c->sealer));
    MR_GUARD(mr_sealer_load(c->sealer, c->cfg.store_opts, &outcome, &store));
    if (outcome == MR_SEAL_LOADED) {
        bool used = false;
        MR_GUARD(use_loaded(c, store, e, &used));
        if (used)
            return MR_SUCCESS;
        outcome = MR_SEAL_NO_STATE;
    }
    int state = MR_STATE_ACCEPTING_MANIFEST;
    if (outcome == MR_SEAL_KEY_UNAVAILABLE || outcome == MR_SEAL_STATE_INVALID) {
        MR_LOG_WARN("sealed state found but it cannot be used; entering recovery mode",
                    MR_F_STR("reason", mr_sealer_reason(c->sealer)));
        state = MR_STATE_RECOVERY;
    }
    MR_GUARD(core_fresh_state(c, state, &c->store, e));
    return core_epoch_quote(c, *e);
}

MR_RESULT mr_core_open(const mr_core_config *cfg, mr_core **out)
{
    mr_result res = MR_FAILURE;
    mr_core *c = mr_calloc(1, sizeof(*c));
    core_epoch *e = NULL;
    MR_ENSURE_ALLOC(c);
    pthread_mutex_init(&c->writer, NULL);
    pthread_mutex_init(&c->epoch_mu, NULL);
    pthread_mutex_init(&c->counters_mu, NULL);
    pthread_rwlock_init(&c->store_lock, NULL);
    MR_GUARD_OUT(copy_config(c, cfg));
    mr_result loaded = load_or_create(c, &e);
    if (!mr_ok(loaded) && e != NULL && cfg->dev_mode) {
        MR_LOG_ERROR("failed to issue the Coordinator quote; continuing in dev mode", MR_F_ERR());
        loaded = MR_SUCCESS;
    }
    MR_GUARD_OUT(loaded);
    c->epoch = e;
    e = NULL;
    if (c->simulation)
        MR_LOG_WARN("SIMULATION MODE: the Coordinator has no quote and does NOT verify marble "
                    "quotes; never use this in production");
    *out = c;
    c = NULL;
    res = MR_SUCCESS;
out:
    core_epoch_put(e);
    mr_core_free(c);
    return res;
}

void mr_core_free(mr_core *c)
{
    if (c == NULL)
        return;
    core_dist_free(c); /* stops the key fetch thread before anything it uses goes */
    core_epoch_put(c->epoch);
    core_recovery_free(c->recovery);
    mr_store_close(c->store);
    mr_sealer_free(c->sealer);
    for (size_t i = 0; i < c->n_dns; i++)
        mr_free(c->dns[i]);
    mr_free(c->dns);
    mr_free(c->seal_dir);
    pthread_mutex_destroy(&c->writer);
    pthread_mutex_destroy(&c->epoch_mu);
    pthread_mutex_destroy(&c->counters_mu);
    pthread_rwlock_destroy(&c->store_lock);
    mr_free(c);
}

/* ---- identities ---- */

static MR_RESULT identity(mr_core *c, bool mesh, X509 **cert, EVP_PKEY **key)
{
    mr_result res = MR_FAILURE;
    core_epoch *e = core_epoch_get(c);
    MR_ENSURE_OUT(e->state != MR_STATE_UNINITIALIZED, MR_ERR_STATE,
                  "server is not in expected state");
    *cert = mesh ? e->marble_root_cert : e->root_cert;
    *key = mesh ? e->inter_key : e->root_key;
    X509_up_ref(*cert);
    EVP_PKEY_up_ref(*key);
    res = MR_SUCCESS;
out:
    core_epoch_put(e);
    return res;
}

MR_RESULT mr_core_client_identity(mr_core *c, X509 **cert, EVP_PKEY **key)
{
    return identity(c, false, cert, key);
}

MR_RESULT mr_core_mesh_identity(mr_core *c, X509 **cert, EVP_PKEY **key)
{
    return identity(c, true, cert, key);
}

/* ---- quote ---- */

static MR_RESULT nonce_quote(mr_core *c, const core_epoch *e, const uint8_t *nonce, size_t n,
                             mr_buf *quote)
{
    uint8_t rd[64] = {0};
    mr_slice parts[2] = {mr_buf_slice(&e->root_der), MR_SLICE(nonce, n)};
    mr_tee_type tee;
    MR_GUARD(mr_sha256_v(parts, 2, rd));
    if (!mr_ok(mr_issuer_issue(c->cfg.issuer, rd, sizeof(rd), quote, &tee))) {
        mr_error_prefix("generating quote failed");
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

MR_RESULT mr_core_quote(mr_core *c, const uint8_t *nonce, size_t nonce_len, mr_buf *chain_pem,
                        mr_buf *quote, bool *has_quote)
{
    mr_result res = MR_FAILURE;
    core_epoch *e = core_epoch_get(c);
    *has_quote = false;
    MR_ENSURE_OUT(e->state != MR_STATE_UNINITIALIZED, MR_ERR_STATE,
                  "server is not in expected state");
    MR_GUARD_OUT(mr_buf_append(chain_pem, e->inter_pem.data, e->inter_pem.len));
    MR_GUARD_OUT(mr_buf_append(chain_pem, e->root_pem.data, e->root_pem.len));
    if (!c->simulation && nonce != NULL) {
        MR_GUARD_OUT(nonce_quote(c, e, nonce, nonce_len, quote));
        *has_quote = true;
    } else if (!c->simulation && e->quote.len > 0) {
        MR_GUARD_OUT(mr_buf_append(quote, e->quote.data, e->quote.len));
        *has_quote = true;
    }
    res = MR_SUCCESS;
out:
    core_epoch_put(e);
    return res;
}

MR_RESULT mr_core_manifest(mr_core *c, mr_buf *raw, mr_buf *signature, char fingerprint[65],
                           bool *present)
{
    mr_result res = MR_FAILURE;
    core_epoch *e = core_epoch_get(c);
    *present = e->manifest != NULL;
    fingerprint[0] = '\0';
    if (*present) {
        memcpy(fingerprint, e->fingerprint, 65);
        MR_GUARD_OUT(mr_buf_append(raw, e->manifest_raw.data, e->manifest_raw.len));
        MR_GUARD_OUT(mr_buf_append(signature, e->manifest_sig.data, e->manifest_sig.len));
    }
    res = MR_SUCCESS;
out:
    core_epoch_put(e);
    return res;
}
