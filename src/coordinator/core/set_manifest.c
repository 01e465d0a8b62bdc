/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SetManifest (spec §4.5.2, 1.9.1 behaviour). Everything is computed into a copy of the
 * current (in-memory) state first; only a fully validated state is persisted and published,
 * so a failed request leaves the Coordinator exactly as it was.
 */
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/uuid.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/secrets.h"
#include "crypto/hash.h"
#include "crypto/key.h"

void mr_core_recovery_secrets_free(mr_core_recovery_secrets *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->count; i++) {
        mr_free(s->items[i].name);
        mr_buf_free(&s->items[i].value);
    }
    mr_free(s->items);
    s->items = NULL;
    s->count = 0;
}

/* ---- steps ---- */

static MR_RESULT prefixed(mr_result r, const char *prefix)
{
    if (!mr_ok(r))
        mr_error_prefix("%s", prefix);
    return r;
}

/* Stores a secret's value under secret:<name> and (1.9: the previous cycle starts out equal
 * to the current one) previousSecret:<name>. */
static MR_RESULT put_both_cycles(mr_store_txn *t, const core_secret *s, mr_buf *enc)
{
    char key[CORE_KEY_SIZE];
    mr_buf_reset(enc);
    MR_GUARD(core_secret_encode(s, enc));
    MR_GUARD(core_key(key, P_SECRET, s->name));
    MR_GUARD(core_put_buf(t, key, enc));
    MR_GUARD(core_key(key, P_PREV_SECRET, s->name));
    return core_put_buf(t, key, enc);
}

/* Generates the secrets of one context into set (appending) and the store. */
static MR_RESULT gen_secrets(const core_gen_ctx *g, const mr_manifest *m, bool shared,
                             core_secret_set *set, mr_store_txn *t)
{
    mr_result res = MR_FAILURE;
    mr_buf enc;
    mr_buf_init(&enc, 0, MR_BUF_SECRET);
    for (size_t i = 0; i < m->secrets.count; i++) {
        const mr_manifest_secret *d = &m->secrets.items[i];
        if (d->user_defined || d->shared != shared)
            continue;
        core_secret *s = &set->items[set->count];
        MR_GUARD_OUT(core_secret_generate(g, d, 0, s));
        set->count++;
        MR_GUARD_OUT(put_both_cycles(t, s, &enc));
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&enc);
    return res;
}

/* ---- template dry run ---- */

typedef struct dry_ctx {
    mr_tmpl_named_secret *entries;
    size_t count;
    mr_tmpl_secret_table table;
    mr_tmpl_data data;
} dry_ctx;

static void fill_tmpl_secret(mr_tmpl_secret *ts, const mr_manifest_secret *def, const core_secret *v)
{
    ts->type = def->type.ptr;
    ts->size = def->size;
    ts->shared = def->shared;
    ts->user_defined = def->user_defined;
    ts->valid_for = v != NULL ? v->valid_for : def->valid_for;
    if (v != NULL && v->has_value) {
        ts->cert = mr_buf_slice(&v->cert_der);
        ts->priv = mr_buf_slice(&v->priv);
        ts->pub = mr_buf_slice(&v->pub);
    } else {
        ts->placeholder = true; /* user-defined: dummies (spec §6.12.5) */
    }
}

/* Runs the dry run of m with the generated values in set (user-defined ones as dummies). */
MR_RESULT core_dry_run(const mr_manifest *m, const core_secret_set *set)
{
    dry_ctx d;
    memset(&d, 0, sizeof(d));
    d.entries = mr_calloc(m->secrets.count, sizeof(mr_tmpl_named_secret));
    MR_ENSURE_ALLOC(d.entries);
    for (size_t i = 0; i < m->secrets.count; i++) {
        const mr_manifest_secret *def = &m->secrets.items[i];
        const char *name = def->name.ptr != NULL ? def->name.ptr : "";
        d.entries[d.count].name = name;
        fill_tmpl_secret(&d.entries[d.count].secret, def, core_secret_find(set, name));
        d.count++;
    }
    d.table.entries = d.entries;
    d.table.count = d.count;
    d.data.secrets = mr_tmpl_table_lookup;
    d.data.secrets_ctx = &d.table;
    d.data.previous_secrets = mr_tmpl_table_lookup;
    d.data.previous_ctx = &d.table;
    mr_result r = mr_manifest_dry_run(m, &d.data);
    mr_free(d.entries);
    return r;
}

/* ---- signature over the manifest ---- */

/* ECDSA over SHA-256(raw) with the root key, as Go's ecdsa.SignASN1(hash) (ASN.1 DER). */
MR_RESULT core_sign_hash(EVP_PKEY *key, const uint8_t *data, size_t len, mr_buf *sig)
{
    uint8_t h[MR_SHA256_LEN];
    size_t n = 0;
    mr_result res = MR_FAILURE;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    MR_ENSURE_ALLOC(ctx);
    MR_GUARD_OUT(mr_sha256(data, len, h));
    MR_GUARD_OSSL_OUT(EVP_PKEY_sign_init(ctx), MR_ERR_INTERNAL, "signing manifest");
    MR_GUARD_OSSL_OUT(EVP_PKEY_sign(ctx, NULL, &n, h, sizeof(h)), MR_ERR_INTERNAL, "signing manifest");
    MR_GUARD_OUT(mr_buf_reserve(sig, n));
    MR_GUARD_OSSL_OUT(EVP_PKEY_sign(ctx, sig->data + sig->len, &n, h, sizeof(h)), MR_ERR_INTERNAL,
                      "signing manifest");
    sig->len += n;
    res = MR_SUCCESS;
out:
    EVP_PKEY_CTX_free(ctx);
    return res;
}

/* ---- the operation ---- */

typedef struct setm {
    mr_manifest *m;
    mr_store *next;
    mr_store_txn *t;
    core_secret_set secrets;
    mr_buf sig;
    mr_buf log;
} setm;

static void setm_free(setm *s)
{
    mr_store_abort(s->t);
    mr_store_close(s->next);
    core_secret_set_free(&s->secrets);
    mr_manifest_free(s->m);
    mr_buf_free(&s->sig);
    mr_buf_free(&s->log);
}

static MR_RESULT validate(const uint8_t *raw, size_t len, setm *s)
{
    MR_GUARD(prefixed(mr_manifest_decode(raw, len, &s->m), "unmarshaling manifest"));
    MR_GUARD(prefixed(mr_manifest_check(s->m, NULL), "checking manifest"));
    return MR_SUCCESS;
}

static MR_RESULT build_state(mr_core *c, const core_epoch *e, const uint8_t *raw, size_t len,
                             setm *s)
{
    const mr_manifest *m = s->m;
    core_gen_ctx g = {.marble_root = e->marble_root_cert, .inter_key = e->inter_key,
                      .root_secret = e->root_secret, .now = time(NULL)};
    mr_uuid placeholder_uuid;
    char uuid_text[MR_UUID_TEXT_LEN + 1];
    MR_ENSURE(e->has_root_secret, MR_ERR_INTERNAL, "state has no root secret");
    MR_GUARD(mr_store_open_memory(&s->next));
    MR_GUARD(mr_store_copy_all(c->store, s->next));
    MR_GUARD(mr_store_begin(s->next, &s->t));
    s->secrets.items = mr_calloc(m->secrets.count, sizeof(core_secret));
    MR_ENSURE_ALLOC(s->secrets.items);
    MR_GUARD(prefixed(gen_secrets(&g, m, true, &s->secrets, s->t), "generating secrets from manifest"));
    MR_GUARD(mr_uuid_random(&placeholder_uuid));
    mr_uuid_format(&placeholder_uuid, uuid_text);
    g.uuid = uuid_text;
    MR_GUARD(prefixed(gen_secrets(&g, m, false, &s->secrets, s->t),
                      "generating placeholder secrets from manifest"));
    /* gen_secrets appends in manifest (sorted) order per context; re-sort for lookups */
    MR_GUARD(core_secret_set_sort(&s->secrets));
    MR_GUARD(prefixed(mr_manifest_check_recovery_keys(m), "generating recovery data"));
    MR_GUARD(prefixed(mr_manifest_check_user_certs(m), "generating users from manifest"));
    mr_buf_init(&s->sig, 0, 0);
    MR_GUARD(core_sign_hash(e->root_key, raw, len, &s->sig));
    MR_GUARD(prefixed(core_dry_run(m, &s->secrets), "running manifest template dry run"));
    MR_GUARD(mr_store_put(s->t, K_MANIFEST, raw, len));
    MR_GUARD(core_put_buf(s->t, K_MANIFEST_SIG, &s->sig));
    mr_buf_init(&s->log, 0, 0);
    MR_GUARD(core_log_line(&s->log, "Initial manifest set", (const char *)NULL));
    MR_GUARD(core_log_append(s->t, &s->log));
    MR_GUARD(core_put_str(s->t, K_STATE, "3"));
    mr_store_txn *t = s->t;
    s->t = NULL;
    return mr_store_commit(t);
}

MR_RESULT mr_core_set_manifest(mr_core *c, const uint8_t *raw, size_t len,
                               mr_core_recovery_secrets *out)
{
    setm s;
    memset(&s, 0, sizeof(s));
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->writer);
    core_epoch *e = core_epoch_get(c);
    mr_result res = MR_FAILURE;
    MR_ENSURE_OUT(e->state == MR_STATE_RECOVERY || e->state == MR_STATE_ACCEPTING_MANIFEST,
                  MR_ERR_STATE, "server is not in expected state");
    MR_GUARD_OUT(validate(raw, len, &s));
    MR_GUARD_OUT(build_state(c, e, raw, len, &s));
    if (!mr_ok(core_persist_new_state(c, s.m, &s.next, out))) {
        if (!mr_error_is(MR_ERR_STATE)) /* a lost race on a shared state keeps its text */
            mr_error_prefix("sealing state");
        goto out;
    }
    res = MR_SUCCESS;
    MR_LOG_INFO("manifest set", MR_F_STR("fingerprint", s.m->fingerprint));
out:
    core_epoch_put(e);
    setm_free(&s);
    pthread_mutex_unlock(&c->writer);
    return res;
}
