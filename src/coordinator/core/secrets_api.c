/* SPDX-License-Identifier: Apache-2.0 */
/* Reading and uploading secrets by users (spec §4.5.8, §4.5.9, §8.2, §12.4). */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "coordinator/core/core_int.h"
#include "crypto/key.h"
#include "crypto/x509.h"


/* One Secret object as MarbleRun returns it (the stored definition with its value). */
static MR_RESULT secret_json(const mr_manifest_secret *def, const core_secret *v, mr_buf *out)
{
    mr_manifest_secret s = *def; /* shallow copy; only read by the encoder */
    s.cert.raw = (mr_mbytes){0};
    s.private_key = (mr_mbytes){0};
    s.public_key = (mr_mbytes){0};
    if (v != NULL) {
        s.valid_for = v->valid_for;
        if (v->cert_der.len > 0)
            s.cert.raw = (mr_mbytes){.ptr = v->cert_der.data, .len = v->cert_der.len, .present = true};
        if (v->has_value) {
            s.private_key = (mr_mbytes){.ptr = v->priv.data, .len = v->priv.len, .present = true};
            s.public_key = (mr_mbytes){.ptr = v->pub.data, .len = v->pub.len, .present = true};
        }
    }
    return mr_manifest_encode_secret(&s, out);
}

MR_RESULT mr_core_get_secrets(mr_core *c, const char *user, const char *const *names, size_t n,
                              mr_buf *out)
{
    mr_result res = MR_FAILURE;
    core_epoch *e = core_epoch_get(c);
    mr_buf text;
    mr_buf_init(&text, 0, 0);
    MR_ENSURE_OUT(e->state == MR_STATE_ACCEPTING_MARBLES, MR_ERR_STATE,
                  "server is not in expected state");
    if (!mr_manifest_user_permitted(e->manifest, user, MR_PERM_READ_SECRET, names, n)) {
        MR_GUARD_OUT(core_names_text(names, n, &text));
        MR_BAIL_OUT(MR_ERR_AUTH, "user %s is not allowed to read one or more secrets of: %s", user,
                    (const char *)text.data);
    }
    MR_GUARD_OUT(mr_buf_append_u8(out, '{'));
    size_t written = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = false; /* Go answers with a map: a repeated name appears once */
        for (size_t k = 0; k < i && !dup; k++)
            dup = strcmp(names[k], names[i]) == 0;
        if (dup)
            continue;
        const mr_manifest_secret *def = mr_manifest_find_secret(e->manifest, names[i]);
        MR_ENSURE_OUT(def != NULL, MR_ERR_NOT_FOUND,
                      "loading secret %s from store: requested value not set", names[i]);
        if (written++ > 0)
            MR_GUARD_OUT(mr_buf_append_u8(out, ','));
        MR_GUARD_OUT(mr_manifest_json_string(names[i], strlen(names[i]), out));
        MR_GUARD_OUT(mr_buf_append_u8(out, ':'));
        MR_GUARD_OUT(secret_json(def, core_secret_find(&e->secrets, names[i]), out));
    }
    MR_GUARD_OUT(mr_buf_append_u8(out, '}'));
    res = MR_SUCCESS;
out:
    mr_buf_free(&text);
    core_epoch_put(e);
    return res;
}

/* ---- uploads (§8.2) ---- */

static const char *type_of(const mr_manifest_secret *d) { return d->type.ptr ? d->type.ptr : ""; }

/* The uploaded private key parses as PKCS #8, SEC 1 or PKCS #1 DER and its public half is
 * the certificate's key. */
static MR_RESULT check_private_matches(const mr_core_user_secret *u, const EVP_PKEY *cert_pub)
{
    static const mr_key_format formats[] = {MR_KEYFMT_PKCS8, MR_KEYFMT_SEC1, MR_KEYFMT_PKCS1};
    EVP_PKEY *key = NULL;
    for (size_t i = 0; i < MR_ARRAY_LEN(formats) && key == NULL; i++)
        if (!mr_ok(mr_key_private_from_der(u->priv, formats[i], &key)))
            key = NULL;
    MR_ENSURE(key != NULL, MR_ERR_USAGE,
              "secret %s: private key is not a PKCS #8, SEC 1 or PKCS #1 DER key", u->name);
    bool same = mr_key_public_equal(key, cert_pub);
    EVP_PKEY_free(key);
    MR_ENSURE(same, MR_ERR_USAGE, "secret %s: private key does not match the certificate",
              u->name);
    return MR_SUCCESS;
}

static MR_RESULT validate_one(const mr_manifest *m, const mr_core_user_secret *u, core_secret *out)
{
    const mr_manifest_secret *d = mr_manifest_find_secret(m, u->name);
    MR_ENSURE(d != NULL, MR_ERR_USAGE,
              "secret manifest specifies a secret which the original manifest does not contain");
    MR_ENSURE(d->user_defined, MR_ERR_USAGE, "secret %s is not writeable", u->name);
    const char *t = type_of(d);
    out->def = d;
    out->valid_for = d->valid_for;
    if (strcmp(t, "symmetric-key") == 0 || strcmp(t, "plain") == 0) {
        if (strcmp(t, "symmetric-key") == 0) {
            MR_ENSURE(d->size > 0 && d->size % 8 == 0, MR_ERR_USAGE, "invalid secret size: %s", u->name);
            MR_ENSURE(u->has_key && u->key.len == d->size / 8, MR_ERR_USAGE,
                      "declared size and actual size don't match: %s", u->name);
        }
        MR_ENSURE(!u->has_cert && !u->has_private, MR_ERR_USAGE,
                  "secret %s is set to be of type symmetric-key but specified values for a certificate",
                  u->name);
        MR_GUARD(mr_buf_set(&out->priv, u->key.ptr, u->key.len));
        MR_GUARD(mr_buf_set(&out->pub, u->key.ptr, u->key.len));
    } else {
        MR_ENSURE(!u->has_key, MR_ERR_USAGE,
                  "secret %s is set to be of type %s but specified values for a symmetric-key",
                  u->name, t);
        MR_ENSURE(u->has_cert && u->cert.len > 0, MR_ERR_USAGE,
                  "secret %s is of type %s but no certificate was specified", u->name, t);
        EVP_PKEY *pub = NULL;
        MR_GUARD(mr_x509_from_der(u->cert, &out->cert));
        MR_GUARD(mr_buf_set(&out->cert_der, u->cert.ptr, u->cert.len));
        MR_GUARD(mr_x509_pubkey(out->cert, &pub));
        MR_GUARD(mr_key_public_to_der(pub, MR_KEYFMT_PKIX, &out->pub));
        /* Private is kept as uploaded (the CLI sends whatever DER its PEM file holds), but
         * unlike MarbleRun it must be a key of one of those encodings and belong to the
         * certificate. */
        if (u->has_private && u->priv.len > 0)
            MR_GUARD(check_private_matches(u, pub));
        MR_GUARD(mr_buf_set(&out->priv, u->priv.ptr, u->priv.len));
    }
    out->has_value = true;
    return MR_SUCCESS;
}

/* The epoch's values with the uploads on top (sorted, owned copies). */
static MR_RESULT overlay(const core_epoch *e, const core_secret_set *up, core_secret_set *out)
{
    out->items = mr_calloc(e->secrets.count + up->count, sizeof(core_secret));
    MR_ENSURE_ALLOC(out->items);
    for (size_t i = 0; i < e->secrets.count; i++) {
        if (core_secret_find(up, e->secrets.items[i].name) != NULL)
            continue;
        MR_GUARD(core_secret_copy(&e->secrets.items[i], &out->items[out->count]));
        out->count++;
    }
    for (size_t i = 0; i < up->count; i++) {
        MR_GUARD(core_secret_copy(&up->items[i], &out->items[out->count]));
        out->count++;
    }
    return core_secret_set_sort(out);
}

/* The update-log line of one upload. */
static MR_RESULT log_upload(const char *user, const core_secret *u, mr_buf *lines)
{
    mr_result res = MR_FAILURE;
    mr_buf ju, js, jt;
    mr_buf_init(&ju, 0, 0);
    mr_buf_init(&js, 0, 0);
    mr_buf_init(&jt, 0, 0);
    MR_GUARD_OUT(core_json_str(user, &ju));
    MR_GUARD_OUT(core_json_str(u->name, &js));
    MR_GUARD_OUT(core_json_str(type_of(u->def), &jt));
    MR_GUARD_OUT(core_log_line(lines, "Secret set", "user", (const char *)ju.data, "secret",
                               (const char *)js.data, "type", (const char *)jt.data,
                               (const char *)NULL));
    res = MR_SUCCESS;
out:
    mr_buf_free(&ju);
    mr_buf_free(&js);
    mr_buf_free(&jt);
    return res;
}

static MR_RESULT store_uploads(mr_core *c, const char *user, const core_secret_set *up)
{
    mr_result res = MR_FAILURE;
    mr_store_txn *t = NULL;
    char key[CORE_KEY_SIZE];
    mr_buf enc, lines;
    mr_buf_init(&enc, 0, MR_BUF_SECRET);
    mr_buf_init(&lines, 0, 0);
    MR_GUARD_OUT(mr_store_begin(c->store, &t));
    for (size_t i = 0; i < up->count; i++) {
        MR_GUARD_OUT(core_key(key, P_SECRET, up->items[i].name));
        mr_buf_reset(&enc);
        MR_GUARD_OUT(core_secret_encode(&up->items[i], &enc));
        MR_GUARD_OUT(core_put_buf(t, key, &enc));
        MR_GUARD_OUT(log_upload(user, &up->items[i], &lines));
    }
    MR_GUARD_OUT(core_log_append(t, &lines));
    mr_store_txn *tc = t;
    t = NULL;
    MR_GUARD_OUT(core_commit_and_publish(c, tc));
    res = MR_SUCCESS;
out:
    mr_store_abort(t);
    mr_buf_free(&enc);
    mr_buf_free(&lines);
    return res;
}

static MR_RESULT set_secrets_once(mr_core *c, const char *user, const mr_core_user_secret *s,
                                  size_t n)
{
    core_secret_set up = {0}, all = {0};
    mr_result res = MR_FAILURE;
    pthread_mutex_lock(&c->writer);
    core_epoch *e = core_epoch_get(c);
    MR_ENSURE_OUT(e->state == MR_STATE_ACCEPTING_MARBLES, MR_ERR_STATE,
                  "server is not in expected state");
    MR_ENSURE_OUT(n > 0, MR_ERR_USAGE, "no new secrets defined");
    up.items = mr_calloc(n, sizeof(core_secret));
    MR_ENSURE_ALLOC_OUT(up.items);
    for (size_t i = 0; i < n; i++) {
        core_secret *d = &up.items[up.count++];
        mr_buf_init(&d->cert_der, 0, 0);
        mr_buf_init(&d->priv, 0, MR_BUF_SECRET);
        mr_buf_init(&d->pub, 0, MR_BUF_SECRET);
        d->name = mr_strdup(s[i].name);
        MR_ENSURE_ALLOC_OUT(d->name);
        if (!mr_ok(validate_one(e->manifest, &s[i], d))) {
            mr_error_prefix("parsing new secrets");
            goto out;
        }
    }
    MR_GUARD_OUT(core_secret_set_sort(&up));
    MR_GUARD_OUT(overlay(e, &up, &all));
    if (!mr_ok(core_dry_run(e->manifest, &all))) {
        mr_error_prefix("running manifest template dry run");
        goto out;
    }
    for (size_t i = 0; i < up.count; i++) {
        const char *name = up.items[i].name;
        MR_ENSURE_OUT(mr_manifest_user_permitted(e->manifest, user, MR_PERM_WRITE_SECRET, &name, 1),
                      MR_ERR_AUTH, "user %s is not allowed to update secret: %s", user, name);
    }
    MR_GUARD_OUT(store_uploads(c, user, &up));
    res = MR_SUCCESS;
out:
    core_secret_set_free(&up);
    core_secret_set_free(&all);
    core_epoch_put(e);
    pthread_mutex_unlock(&c->writer);
    return res;
}

/* Runs again after a conflict with another instance of a shared state. */
MR_RESULT mr_core_set_secrets(mr_core *c, const char *user, const mr_core_user_secret *s, size_t n)
{
    for (int attempt = 0;; attempt++) {
        mr_result r = set_secrets_once(c, user, s, n);
        if (mr_ok(r) || !core_dist_retry(c, attempt))
            return r;
    }
}
