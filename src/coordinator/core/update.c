/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Updates: package (SecurityVersion) updates (spec §8.3), full multi-party manifest updates
 * with acknowledgements and cancel (§12.7), and the update log (§8.4).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/uuid.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/secrets.h"
#include "crypto/rand.h"
#include "crypto/x509.h"

#define IN_PROGRESS                                                                           \
    "update already in progress. Acknowledge the update to apply it, or cancel it to start a " \
    "new one"

void mr_core_update_result_free(mr_core_update_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_missing_users; i++)
        mr_free(r->missing_users[i]);
    mr_free(r->missing_users);
    mr_core_recovery_secrets_free(&r->recovery);
    memset(r, 0, sizeof(*r));
}

/* ---- small helpers ---- */

static MR_RESULT json_u64(uint64_t v, mr_buf *out)
{
    mr_buf_reset(out);
    MR_GUARD(mr_buf_printf(out, "%llu", (unsigned long long)v));
    return mr_buf_nul_terminate(out);
}

MR_RESULT mr_core_update_log(mr_core *c, mr_buf *out)
{
    mr_store_txn *t = NULL;
    core_epoch *e = core_epoch_get(c);
    int state = e->state;
    core_epoch_put(e);
    MR_ENSURE(state == MR_STATE_ACCEPTING_MARBLES, MR_ERR_STATE, "server is not in expected state");
    mr_result res = MR_FAILURE;
    core_store_rdlock(c);
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(core_log_read(t, out));
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    core_store_unlock(c);
    return res;
}

/* ---- shared certificate re-issue under a new marble root ---- */

static MR_RESULT put_secret(mr_store_txn *t, const char *prefix, const core_secret *s)
{
    mr_result res = MR_FAILURE;
    char key[CORE_KEY_SIZE];
    mr_buf enc;
    mr_buf_init(&enc, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(core_key(key, prefix, s->name));
    MR_GUARD_OUT(core_secret_encode(s, &enc));
    MR_GUARD_OUT(core_put_buf(t, key, &enc));
    res = MR_SUCCESS;
out:
    mr_buf_free(&enc);
    return res;
}

static MR_RESULT delete_key(mr_store_txn *t, const char *prefix, const char *name)
{
    char key[CORE_KEY_SIZE];
    MR_GUARD(core_key(key, prefix, name));
    return mr_store_delete(t, key);
}

static time_t cert_not_after(const core_secret *s)
{
    time_t nb = 0, na = 0;
    if (s->cert == NULL || !mr_ok(mr_x509_validity(s->cert, &nb, &na)))
        return 0;
    return na;
}

/* ---- package updates (§8.3) ---- */

static MR_RESULT package_update(mr_core *c, core_epoch *e, const char *user, const mr_manifest *u)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    X509 *mroot = NULL;
    EVP_PKEY *ikey = NULL;
    const char **names = mr_calloc(u->packages.count + 1, sizeof(char *));
    size_t n = 0;
    mr_buf text, lines, ju, jp, jv;
    mr_buf_init(&text, 0, 0);
    mr_buf_init(&lines, 0, 0);
    mr_buf_init(&ju, 0, 0);
    mr_buf_init(&jp, 0, 0);
    mr_buf_init(&jv, 0, 0);
    MR_ENSURE_ALLOC_OUT(names);
    for (size_t i = 0; i < u->packages.count; i++)
        names[n++] = u->packages.items[i].name.ptr != NULL ? u->packages.items[i].name.ptr : "";
    if (!mr_manifest_user_permitted(e->manifest, user, MR_PERM_UPDATE_PACKAGE, names, n)) {
        MR_GUARD_OUT(core_names_text(names, n, &text));
        MR_BAIL_OUT(MR_ERR_AUTH, "user %s is not allowed to update one or more packages of %s",
                    user, (const char *)text.data);
    }
    for (size_t i = 0; i < n; i++)
        MR_ENSURE_OUT(mr_manifest_find_package(e->manifest, names[i]) != NULL, MR_ERR_NOT_FOUND,
                      "loading current package \"%s\" from store: requested value not set", names[i]);
    if (!mr_ok(mr_manifest_check_package_update(u, e->manifest))) {
        mr_error_prefix("checking update manifest");
        goto out;
    }
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    for (size_t i = 0; i < u->packages.count; i++) {
        const mr_manifest_package *p = &u->packages.items[i];
        char key[CORE_KEY_SIZE], val[32]; /* at most 20 digits */
        MR_GUARD_OUT(core_key(key, P_PKG_SVN, names[i]));
        (void)snprintf(val, sizeof(val), "%llu", (unsigned long long)p->security_version);
        MR_GUARD_OUT(core_put_str(t, key, val));
        MR_GUARD_OUT(core_json_str(user, &ju));
        MR_GUARD_OUT(core_json_str(names[i], &jp));
        MR_GUARD_OUT(json_u64(p->security_version, &jv));
        MR_GUARD_OUT(core_log_line(&lines, "SecurityVersion increased", "user", (const char *)ju.data,
                                   "package", (const char *)jp.data, "new version",
                                   (const char *)jv.data, (const char *)NULL));
    }
    /* new intermediate + marble root; shared certificates re-issued under them (§8.3 6–7) */
    MR_GUARD_OUT(core_pki_rotate_intermediate(c, e, t, &mroot, &ikey));
    core_gen_ctx g = {.marble_root = mroot, .inter_key = ikey, .root_secret = e->root_secret,
                      .now = time(NULL)};
    for (size_t i = 0; i < e->secrets.count; i++) {
        const core_secret *old = &e->secrets.items[i];
        if (!old->def->shared || old->def->user_defined || core_secret_is_symmetric(old->def))
            continue;
        core_secret fresh;
        MR_GUARD_OUT(core_secret_generate(&g, old->def, cert_not_after(old), &fresh));
        fresh.valid_for = old->valid_for;
        mr_result r = put_secret(t, P_SECRET, &fresh);
        core_secret_clear(&fresh);
        MR_GUARD_OUT(r);
    }
    MR_GUARD_OUT(core_log_append(t, &lines));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(core_commit_and_publish(c, tc));
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    mr_free((void *)names);
    X509_free(mroot);
    EVP_PKEY_free(ikey);
    mr_buf_free(&text);
    mr_buf_free(&lines);
    mr_buf_free(&ju);
    mr_buf_free(&jp);
    mr_buf_free(&jv);
    return res;
}

/* ---- pending full updates (§12.7) ---- */

typedef struct pending {
    mr_buf raw;
    char **users;
    bool *acked;
    size_t n_users;
    int64_t missing;
} pending;

static void pending_free(pending *p)
{
    mr_buf_free(&p->raw);
    for (size_t i = 0; i < p->n_users; i++)
        mr_free(p->users[i]);
    mr_free(p->users);
    mr_free(p->acked);
    memset(p, 0, sizeof(*p));
}

static MR_RESULT pending_parse(json_t *root, pending *p)
{
    json_t *raw = json_object_get(root, "manifestRaw");
    json_t *users = json_object_get(root, "requiredUsers");
    json_t *missing = json_object_get(root, "missingAcknowledgments");
    MR_ENSURE(json_is_string(raw) && json_is_object(users), MR_ERR_INTERNAL,
              "stored pending update is malformed");
    MR_GUARD(mr_b64_decode_buf(json_string_value(raw), json_string_length(raw), MR_B64_STD, 0,
                               &p->raw));
    size_t n = json_object_size(users);
    p->users = mr_calloc(n + 1, sizeof(char *));
    p->acked = mr_calloc(n + 1, sizeof(bool));
    MR_ENSURE_ALLOC(p->users);
    MR_ENSURE_ALLOC(p->acked);
    const char *k;
    json_t *val;
    int64_t unacked = 0;
    json_object_foreach(users, k, val)
    {
        p->users[p->n_users] = mr_strdup(k);
        MR_ENSURE_ALLOC(p->users[p->n_users]);
        p->acked[p->n_users] = json_is_true(val);
        unacked += p->acked[p->n_users] ? 0 : 1;
        p->n_users++;
    }
    p->missing = json_is_integer(missing) ? json_integer_value(missing) : unacked;
    return MR_SUCCESS;
}

static MR_RESULT pending_load(mr_store_txn *t, pending *p, bool *found)
{
    mr_result res = MR_FAILURE;
    json_t *root = NULL;
    mr_buf v;
    mr_buf_init(&v, 0, 0);
    memset(p, 0, sizeof(*p));
    mr_buf_init(&p->raw, 0, 0);
    MR_GUARD_OUT(mr_store_get(t, K_PENDING_UPDATE, &v, found));
    if (*found) {
        json_error_t err;
        root = json_loadb((const char *)v.data, v.len, 0, &err);
        MR_ENSURE_OUT(root != NULL, MR_ERR_INTERNAL, "stored pending update is malformed");
        if (!mr_ok(pending_parse(root, p))) {
            /* out of memory stays what it is; anything else is a malformed record */
            if (!mr_error_is(MR_ERR_INTERNAL))
                MR_BAIL_OUT(MR_ERR_INTERNAL, "stored pending update is malformed");
            goto out;
        }
    }
    res = MR_SUCCESS;
out:
    json_decref(root);
    mr_buf_free(&v);
    if (!mr_ok(res))
        pending_free(p);
    return res;
}

static MR_RESULT pending_store(mr_store_txn *t, const pending *p)
{
    mr_result res = MR_FAILURE;
    mr_buf v;
    mr_buf_init(&v, 0, 0);
    MR_GUARD_OUT(mr_buf_append_str(&v, "{\"manifestRaw\":\""));
    MR_GUARD_OUT(mr_b64_encode_buf(p->raw.data, p->raw.len, MR_B64_STD, &v));
    MR_GUARD_OUT(mr_buf_append_str(&v, "\",\"requiredUsers\":{"));
    for (size_t i = 0; i < p->n_users; i++) {
        if (i > 0)
            MR_GUARD_OUT(mr_buf_append_u8(&v, ','));
        MR_GUARD_OUT(mr_manifest_json_string(p->users[i], strlen(p->users[i]), &v));
        MR_GUARD_OUT(mr_buf_append_str(&v, p->acked[i] ? ":true" : ":false"));
    }
    MR_GUARD_OUT(mr_buf_printf(&v, "},\"missingAcknowledgments\":%lld}", (long long)p->missing));
    MR_GUARD_OUT(core_put_buf(t, K_PENDING_UPDATE, &v));
    res = MR_SUCCESS;
out:
    mr_buf_free(&v);
    return res;
}

/* Sorted list of users that have not acknowledged, as result + JSON array text. */
static MR_RESULT missing_users(const pending *p, mr_core_update_result *res, mr_buf *json)
{
    res->missing_users = mr_calloc(p->n_users + 1, sizeof(char *));
    MR_ENSURE_ALLOC(res->missing_users);
    MR_GUARD(mr_buf_append_u8(json, '['));
    for (size_t i = 0; i < p->n_users; i++) {
        if (p->acked[i])
            continue;
        if (res->n_missing_users > 0)
            MR_GUARD(mr_buf_append_u8(json, ','));
        MR_GUARD(mr_manifest_json_string(p->users[i], strlen(p->users[i]), json));
        res->missing_users[res->n_missing_users] = mr_strdup(p->users[i]);
        MR_ENSURE_ALLOC(res->missing_users[res->n_missing_users]);
        res->n_missing_users++;
    }
    MR_GUARD(mr_buf_append_u8(json, ']'));
    return mr_buf_nul_terminate(json);
}

static int user_index(const pending *p, const char *user)
{
    for (size_t i = 0; i < p->n_users; i++)
        if (strcmp(p->users[i], user) == 0)
            return (int)i;
    return -1;
}

/* ---- applying a full update ---- */

/* Secrets of the next manifest (§12.11): kept, re-created or regenerated; previous values
 * written to previousSecret:*. */
static MR_RESULT update_secrets(const core_epoch *e, const mr_manifest *next, const core_gen_ctx *g_shared,
                                bool rotated, core_secret_set *all, mr_store_txn *t)
{
    all->items = mr_calloc(next->secrets.count + 1, sizeof(core_secret));
    MR_ENSURE_ALLOC(all->items);
    /* delete secrets that are gone */
    for (size_t i = 0; i < e->secrets.count; i++)
        if (mr_manifest_find_secret(next, e->secrets.items[i].name) == NULL) {
            MR_GUARD(delete_key(t, P_SECRET, e->secrets.items[i].name));
            MR_GUARD(delete_key(t, P_PREV_SECRET, e->secrets.items[i].name));
        }
    core_gen_ctx g_marble = *g_shared;
    mr_uuid placeholder;
    char uuid[MR_UUID_TEXT_LEN + 1];
    MR_GUARD(mr_uuid_random(&placeholder));
    mr_uuid_format(&placeholder, uuid);
    g_marble.uuid = uuid; /* per-marble placeholders, as at SetManifest */
    for (size_t i = 0; i < next->secrets.count; i++) {
        const mr_manifest_secret *d = &next->secrets.items[i];
        const char *name = d->name.ptr != NULL ? d->name.ptr : "";
        const core_secret *old = core_secret_find(&e->secrets, name);
        bool changed = old == NULL || !mr_manifest_secret_definition_equal(old->def, d);
        core_secret *s = &all->items[all->count];
        if (d->user_defined) {
            if (changed || !old->has_value) {
                MR_GUARD(delete_key(t, P_SECRET, name));
                continue; /* new or re-created user-defined secret: no value yet */
            }
            /* unchanged user-defined value stays as stored */
            MR_GUARD(core_secret_copy(old, s));
            all->count++;
            continue;
        }
        if (!changed && core_secret_is_symmetric(d) && !rotated) {
            MR_GUARD(core_secret_copy(old, s)); /* unchanged symmetric keys are kept */
            all->count++;
            continue;
        }
        MR_GUARD(core_secret_generate(d->shared ? g_shared : &g_marble, d,
                                      (!changed && d->shared && old->cert != NULL) ? cert_not_after(old) : 0, s));
        all->count++;
        MR_GUARD(put_secret(t, P_SECRET, s));
        if (old != NULL && old->has_value)
            MR_GUARD(put_secret(t, P_PREV_SECRET, old));
        else
            MR_GUARD(put_secret(t, P_PREV_SECRET, s));
    }
    return MR_SUCCESS;
}

/* The whole §12.7 apply in one transaction; recovery secrets when the recovery setup changed. */
static MR_RESULT apply_full(mr_core *c, core_epoch *e, const mr_manifest *next, const mr_buf *raw,
                            mr_core_recovery_secrets *rec)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    X509 *mroot = NULL;
    EVP_PKEY *ikey = NULL;
    core_secret_set all = {0};
    mr_buf sig, lines, jfp;
    uint8_t new_root_secret[MR_ROOT_SECRET_LEN];
    mr_buf_init(&sig, 0, 0);
    mr_buf_init(&lines, 0, 0);
    mr_buf_init(&jfp, 0, 0);
    bool new_recovery = mr_manifest_recovery_changed(e->manifest, next);
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    const uint8_t *root_secret = e->root_secret;
    if (next->config.rotate_root_secret) {
        MR_GUARD_OUT(mr_crypto_random(new_root_secret, sizeof(new_root_secret)));
        MR_GUARD_OUT(mr_store_put(t, K_PREV_ROOT_SECRET, e->root_secret, MR_ROOT_SECRET_LEN));
        MR_GUARD_OUT(mr_store_put(t, K_ROOT_SECRET, new_root_secret, MR_ROOT_SECRET_LEN));
        root_secret = new_root_secret;
    }
    MR_GUARD_OUT(core_pki_rotate_intermediate_full(c, e, t, &mroot, &ikey));
    core_gen_ctx g = {.marble_root = mroot, .inter_key = ikey, .root_secret = root_secret,
                      .now = time(NULL)};
    MR_GUARD_OUT(update_secrets(e, next, &g, next->config.rotate_root_secret, &all, t));
    MR_GUARD_OUT(core_secret_set_sort(&all));
    if (!mr_ok(core_dry_run(next, &all))) {
        mr_error_prefix("running manifest template dry run");
        goto out;
    }
    /* manifest, signature, package overrides cleared, pending update removed */
    MR_GUARD_OUT(mr_store_put(t, K_MANIFEST, raw->data, raw->len));
    MR_GUARD_OUT(core_sign_hash(e->root_key, raw->data, raw->len, &sig));
    MR_GUARD_OUT(core_put_buf(t, K_MANIFEST_SIG, &sig));
    for (size_t i = 0; i < e->manifest->packages.count; i++) {
        const char *pkg = e->manifest->packages.items[i].name.ptr;
        MR_GUARD_OUT(delete_key(t, P_PKG_SVN, pkg != NULL ? pkg : ""));
    }
    MR_GUARD_OUT(mr_store_delete(t, K_PENDING_UPDATE));
    char fp[65];
    MR_GUARD_OUT(mr_manifest_fingerprint(raw->data, raw->len, fp));
    MR_GUARD_OUT(core_json_str(fp, &jfp));
    MR_GUARD_OUT(core_log_line(&lines, "Complete Manifest updated", "manifestFingerprint",
                               (const char *)jfp.data, (const char *)NULL));
    MR_GUARD_OUT(core_log_append(t, &lines));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(core_commit_and_publish(c, tc));
    /* A changed recovery setup gets a new state key and new recovery secrets (§12.7). */
    if (new_recovery && !mr_ok(core_rekey(c, next, rec))) {
        mr_error_prefix("the update was applied, but sealing it under a new state key failed");
        goto out;
    }
    res = MR_SUCCESS;
out:
    OPENSSL_cleanse(new_root_secret, sizeof(new_root_secret));
    mr_store_abort(t);
    X509_free(mroot);
    EVP_PKEY_free(ikey);
    core_secret_set_free(&all);
    mr_buf_free(&sig);
    mr_buf_free(&lines);
    mr_buf_free(&jfp);
    return res;
}

static MR_RESULT cancel_pending(mr_core *c, const char *fingerprint)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    mr_buf lines, jfp;
    mr_buf_init(&lines, 0, 0);
    mr_buf_init(&jfp, 0, 0);
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(mr_store_delete(t, K_PENDING_UPDATE));
    MR_GUARD_OUT(core_json_str(fingerprint, &jfp));
    MR_GUARD_OUT(core_log_line(&lines, "Complete Manifest update cancelled due to error during apply",
                               "manifestFingerprint", (const char *)jfp.data, (const char *)NULL));
    MR_GUARD_OUT(core_log_append(t, &lines));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(core_commit_and_publish(c, tc));
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    mr_buf_free(&lines);
    mr_buf_free(&jfp);
    return res;
}

/* Cancels a pending update after a failed apply (its own transaction); the apply's error
 * stays in the slot. */
static void cancel_after_error(mr_core *c, const char *fingerprint)
{
    mr_error saved;
    mr_error_take(&saved);
    if (!mr_ok(cancel_pending(c, fingerprint)))
        MR_LOG_ERROR("could not cancel the failed manifest update", MR_F_ERR());
    mr_error_restore(&saved);
}

/* Applies the pending update if no acknowledgement is missing. */
static MR_RESULT maybe_apply(mr_core *c, core_epoch *e, const pending *p, mr_core_update_result *out)
{
    mr_result res = MR_FAILURE;
    mr_manifest *next = NULL;
    if (p->missing > 0)
        return MR_SUCCESS;
    MR_GUARD_OUT(mr_manifest_decode(p->raw.data, p->raw.len, &next));
    MR_GUARD_OUT(apply_full(c, e, next, &p->raw, &out->recovery));
    out->applied = true;
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        cancel_after_error(c, next != NULL ? next->fingerprint : "");
    mr_manifest_free(next);
    return res;
}

/* ---- entry points ---- */

static MR_RESULT start_full_update(mr_core *c, core_epoch *e, const char *user, mr_manifest *next,
                                   mr_core_update_result *out)
{
    mr_result res = MR_FAILURE;
    pending p;
    mr_store_txn *t = NULL;
    const mr_manifest_user **users = NULL;
    size_t n_users = 0;
    mr_buf lines, ju, jm, jfp, jmu;
    memset(&p, 0, sizeof(p));
    mr_buf_init(&p.raw, 0, 0);
    mr_buf_init(&lines, 0, 0);
    mr_buf_init(&ju, 0, 0);
    mr_buf_init(&jm, 0, 0);
    mr_buf_init(&jfp, 0, 0);
    mr_buf_init(&jmu, 0, 0);
    MR_ENSURE_OUT(e->state == MR_STATE_ACCEPTING_MARBLES, MR_ERR_STATE, "server is not in expected state");
    MR_ENSURE_OUT(mr_manifest_user_permitted(e->manifest, user, MR_PERM_UPDATE_MANIFEST, NULL, 0),
                  MR_ERR_AUTH, "user %s is not allowed to update the complete manifest", user);
    MR_GUARD_OUT(mr_manifest_check_full_update(next, NULL));
    MR_GUARD_OUT(mr_manifest_update_users(e->manifest, &users, &n_users));
    p.users = mr_calloc(n_users + 1, sizeof(char *));
    p.acked = mr_calloc(n_users + 1, sizeof(bool));
    MR_ENSURE_ALLOC_OUT(p.users);
    MR_ENSURE_ALLOC_OUT(p.acked);
    for (size_t i = 0; i < n_users; i++) {
        p.users[i] = mr_strdup(users[i]->name.ptr != NULL ? users[i]->name.ptr : "");
        MR_ENSURE_ALLOC_OUT(p.users[i]);
        p.n_users++;
        p.acked[i] = strcmp(p.users[i], user) == 0;
    }
    p.missing = (int64_t)mr_manifest_required_acks(e->manifest) - 1;
    if (p.missing < 0)
        p.missing = 0;
    MR_GUARD_OUT(mr_buf_set(&p.raw, next->raw.ptr, next->raw.len));
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(pending_store(t, &p));
    MR_GUARD_OUT(core_json_str(user, &ju));
    MR_GUARD_OUT(core_json_str(next->fingerprint, &jfp));
    MR_GUARD_OUT(missing_users(&p, out, &jmu));
    if (p.missing == 0) {
        MR_GUARD_OUT(core_log_line(&lines, "Complete Manifest update initiated by user. No further "
                                           "acknowledgements required",
                                   "user", (const char *)ju.data, "manifestFingerprint",
                                   (const char *)jfp.data, (const char *)NULL));
    } else {
        MR_GUARD_OUT(json_u64((uint64_t)p.missing, &jm));
        MR_GUARD_OUT(core_log_line(&lines, "Complete Manifest update initiated by user. Waiting for "
                                           "acknowledgments to apply the update",
                                   "user", (const char *)ju.data, "missingAcknowledgments",
                                   (const char *)jm.data, "missingUsers", (const char *)jmu.data,
                                   "manifestFingerprint", (const char *)jfp.data, (const char *)NULL));
    }
    MR_GUARD_OUT(core_log_append(t, &lines));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(core_commit_and_publish(c, tc));
    out->missing = (uint64_t)p.missing;
    core_epoch *cur = core_epoch_get(c);
    mr_result r = maybe_apply(c, cur, &p, out);
    core_epoch_put(cur);
    MR_GUARD_OUT(r);
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    mr_free((void *)users);
    pending_free(&p);
    mr_buf_free(&lines);
    mr_buf_free(&ju);
    mr_buf_free(&jm);
    mr_buf_free(&jfp);
    mr_buf_free(&jmu);
    return res;
}

static MR_RESULT update_once(mr_core *c, const char *user, const uint8_t *raw, size_t len,
                         mr_core_update_result *out)
{
    mr_result res = MR_FAILURE;
    mr_manifest *u = NULL;
    mr_store_txn *t = NULL;
    pending p;
    bool found = false;
    memset(out, 0, sizeof(*out));
    memset(&p, 0, sizeof(p));
    pthread_mutex_lock(&c->writer);
    core_epoch *e = core_epoch_get(c);
    if (!mr_ok(mr_manifest_decode(raw, len, &u))) {
        mr_error_prefix("unmarshaling update manifest");
        goto out;
    }
    MR_ENSURE_OUT(e->state == MR_STATE_ACCEPTING_MARBLES, MR_ERR_STATE, "server is not in expected state");
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(pending_load(t, &p, &found));
    mr_store_abort(t);
    t = NULL;
    MR_ENSURE_OUT(!found, MR_ERR_STATE, IN_PROGRESS);
    if (mr_manifest_is_package_update(u))
        MR_GUARD_OUT(package_update(c, e, user, u));
    else
        MR_GUARD_OUT(start_full_update(c, e, user, u, out));
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    pending_free(&p);
    mr_manifest_free(u);
    core_epoch_put(e);
    pthread_mutex_unlock(&c->writer);
    if (!mr_ok(res))
        mr_core_update_result_free(out);
    return res;
}

static MR_RESULT update_ack_once(mr_core *c, const char *user, const uint8_t *raw, size_t len,
                             mr_core_update_result *out)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    pending p;
    bool found = false;
    mr_buf lines, ju, jm, jfp, jmu;
    memset(out, 0, sizeof(*out));
    memset(&p, 0, sizeof(p));
    mr_buf_init(&lines, 0, 0);
    mr_buf_init(&ju, 0, 0);
    mr_buf_init(&jm, 0, 0);
    mr_buf_init(&jfp, 0, 0);
    mr_buf_init(&jmu, 0, 0);
    pthread_mutex_lock(&c->writer);
    core_epoch *e = core_epoch_get(c);
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(pending_load(t, &p, &found));
    MR_ENSURE_OUT(found, MR_ERR_NOT_FOUND, "no update in progress");
    int idx = user_index(&p, user);
    MR_ENSURE_OUT(idx >= 0, MR_ERR_AUTH, "user %s is not allowed to acknowledge manifest updates", user);
    MR_ENSURE_OUT(p.raw.len == len && memcmp(p.raw.data, raw, len) == 0, MR_ERR_USAGE,
                  "provided manifest does not match the pending manifest");
    if (!p.acked[idx]) {
        p.acked[idx] = true;
        p.missing--;
    }
    char fp[65];
    MR_GUARD_OUT(mr_manifest_fingerprint(raw, len, fp));
    MR_GUARD_OUT(pending_store(t, &p));
    MR_GUARD_OUT(core_json_str(user, &ju));
    MR_GUARD_OUT(json_u64(p.missing > 0 ? (uint64_t)p.missing : 0, &jm));
    MR_GUARD_OUT(core_json_str(fp, &jfp));
    MR_GUARD_OUT(missing_users(&p, out, &jmu));
    MR_GUARD_OUT(core_log_line(&lines, "Complete Manifest update acknowledged by user", "user",
                               (const char *)ju.data, "missingAcknowledgments", (const char *)jm.data,
                               "missingUsers", (const char *)jmu.data, "manifestFingerprint",
                               (const char *)jfp.data, (const char *)NULL));
    MR_GUARD_OUT(core_log_append(t, &lines));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(core_commit_and_publish(c, tc));
    out->missing = p.missing > 0 ? (uint64_t)p.missing : 0;
    core_epoch *cur = core_epoch_get(c);
    mr_result r = maybe_apply(c, cur, &p, out);
    core_epoch_put(cur);
    MR_GUARD_OUT(r);
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    pending_free(&p);
    core_epoch_put(e);
    mr_buf_free(&lines);
    mr_buf_free(&ju);
    mr_buf_free(&jm);
    mr_buf_free(&jfp);
    mr_buf_free(&jmu);
    pthread_mutex_unlock(&c->writer);
    if (!mr_ok(res))
        mr_core_update_result_free(out);
    return res;
}

static MR_RESULT update_cancel_once(mr_core *c, const char *user)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    pending p;
    bool found = false;
    mr_buf lines, ju, jfp;
    memset(&p, 0, sizeof(p));
    mr_buf_init(&lines, 0, 0);
    mr_buf_init(&ju, 0, 0);
    mr_buf_init(&jfp, 0, 0);
    pthread_mutex_lock(&c->writer);
    core_epoch *e = core_epoch_get(c);
    MR_ENSURE_OUT(e->manifest != NULL &&
                      mr_manifest_user_permitted(e->manifest, user, MR_PERM_UPDATE_MANIFEST, NULL, 0),
                  MR_ERR_AUTH, "user %s is not allowed to cancel the manifest update", user);
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(pending_load(t, &p, &found));
    MR_ENSURE_OUT(found, MR_ERR_NOT_FOUND, "no update in progress");
    char fp[65];
    MR_GUARD_OUT(mr_manifest_fingerprint(p.raw.data, p.raw.len, fp));
    MR_GUARD_OUT(mr_store_delete(t, K_PENDING_UPDATE));
    MR_GUARD_OUT(core_json_str(user, &ju));
    MR_GUARD_OUT(core_json_str(fp, &jfp));
    MR_GUARD_OUT(core_log_line(&lines, "Complete Manifest update cancelled by user", "user",
                               (const char *)ju.data, "manifestFingerprint", (const char *)jfp.data, (const char *)NULL));
    MR_GUARD_OUT(core_log_append(t, &lines));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(core_commit_and_publish(c, tc));
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    pending_free(&p);
    core_epoch_put(e);
    mr_buf_free(&lines);
    mr_buf_free(&ju);
    mr_buf_free(&jfp);
    pthread_mutex_unlock(&c->writer);
    return res;
}

/* Reads the pending update in a transaction of its own (shared store lock). */
static MR_RESULT pending_read(mr_core *c, pending *p, bool *found)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    core_store_rdlock(c);
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    MR_GUARD_OUT(pending_load(t, p, found));
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    core_store_unlock(c);
    return res;
}

MR_RESULT mr_core_update_pending(mr_core *c, mr_buf *raw, mr_core_update_result *out)
{
    mr_result res = MR_FAILURE;
    pending p;
    bool found = false;
    mr_buf jmu;
    memset(out, 0, sizeof(*out));
    memset(&p, 0, sizeof(p));
    mr_buf_init(&jmu, 0, 0);
    MR_GUARD(pending_read(c, &p, &found));
    MR_ENSURE_OUT(found, MR_ERR_NOT_FOUND, "no update in progress");
    MR_GUARD_OUT(mr_buf_append(raw, p.raw.data, p.raw.len));
    MR_GUARD_OUT(missing_users(&p, out, &jmu));
    out->missing = p.missing > 0 ? (uint64_t)p.missing : 0;
    res = MR_SUCCESS;
out:
    pending_free(&p);
    mr_buf_free(&jmu);
    if (!mr_ok(res))
        mr_core_update_result_free(out);
    return res;
}

/* Runs again after a conflict with another instance of a shared state. */
MR_RESULT mr_core_update(mr_core *c, const char *user, const uint8_t *raw, size_t len,
                         mr_core_update_result *out)
{
    for (int attempt = 0;; attempt++) {
        mr_result r = update_once(c, user, raw, len, out);
        if (mr_ok(r) || !core_dist_retry(c, attempt))
            return r;
    }
}

/* Runs again after a conflict with another instance of a shared state. */
MR_RESULT mr_core_update_ack(mr_core *c, const char *user, const uint8_t *raw, size_t len,
                             mr_core_update_result *out)
{
    for (int attempt = 0;; attempt++) {
        mr_result r = update_ack_once(c, user, raw, len, out);
        if (mr_ok(r) || !core_dist_retry(c, attempt))
            return r;
    }
}

/* Runs again after a conflict with another instance of a shared state. */
MR_RESULT mr_core_update_cancel(mr_core *c, const char *user)
{
    for (int attempt = 0;; attempt++) {
        mr_result r = update_cancel_once(c, user);
        if (mr_ok(r) || !core_dist_retry(c, attempt))
            return r;
    }
}
