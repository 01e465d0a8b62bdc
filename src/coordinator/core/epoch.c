/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Epochs: immutable snapshots of the state, built from the store after every commit and
 * shared by reference with readers (activations, TLS handshakes, GET requests).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/log.h"
#include "coordinator/core/core_int.h"
#include "crypto/hash.h"
#include "crypto/key.h"
#include "crypto/x509.h"

static void free_tmpl(core_epoch *e)
{
    if (e->tmpl == NULL || e->manifest == NULL)
        return;
    for (size_t i = 0; i < e->manifest->marbles.count; i++) {
        const mr_manifest_marble *mb = &e->manifest->marbles.items[i];
        for (size_t k = 0; e->tmpl[i].files != NULL && k < mb->parameters.files.count; k++)
            mr_tmpl_free(e->tmpl[i].files[k]);
        for (size_t k = 0; e->tmpl[i].env != NULL && k < mb->parameters.env.count; k++)
            mr_tmpl_free(e->tmpl[i].env[k]);
        mr_free(e->tmpl[i].files);
        mr_free(e->tmpl[i].env);
    }
    mr_free(e->tmpl);
    e->tmpl = NULL;
}

static void epoch_free(core_epoch *e)
{
    if (e == NULL)
        return;
    free_tmpl(e);
    X509_free(e->root_cert);
    X509_free(e->inter_cert);
    X509_free(e->marble_root_cert);
    EVP_PKEY_free(e->root_key);
    EVP_PKEY_free(e->inter_key);
    mr_buf_free(&e->root_der);
    mr_buf_free(&e->inter_der);
    mr_buf_free(&e->marble_root_der);
    mr_buf_free(&e->root_pem);
    mr_buf_free(&e->inter_pem);
    mr_buf_free(&e->marble_root_pem);
    mr_buf_free(&e->quote);
    mr_manifest_free(e->manifest);
    mr_buf_free(&e->manifest_raw);
    mr_buf_free(&e->manifest_sig);
    core_secret_set_free(&e->secrets);
    core_secret_set_free(&e->prev_secrets);
    for (size_t i = 0; i < e->n_users; i++) {
        mr_free(e->users[i].name);
        mr_buf_free(&e->users[i].cert_der);
    }
    mr_free(e->users);
    OPENSSL_cleanse(e, sizeof(*e));
    mr_free(e);
}

core_epoch *core_epoch_get(mr_core *c)
{
    pthread_mutex_lock(&c->epoch_mu);
    core_epoch *e = c->epoch;
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&c->epoch_mu);
    return e;
}

void core_epoch_put(core_epoch *e)
{
    if (e != NULL && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        epoch_free(e);
}

bool core_epoch_is_current(mr_core *c, const core_epoch *e)
{
    pthread_mutex_lock(&c->epoch_mu);
    bool cur = c->epoch == e;
    pthread_mutex_unlock(&c->epoch_mu);
    return cur;
}

void core_epoch_publish(mr_core *c, core_epoch *e)
{
    pthread_mutex_lock(&c->epoch_mu);
    core_epoch *old = c->epoch;
    c->epoch = e;
    pthread_mutex_unlock(&c->epoch_mu);
    core_epoch_put(old);
}

/* ---- loading ---- */

static MR_RESULT load_cert(mr_store_txn *t, const char *key, X509 **out)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    mr_buf_init(&der, 0, 0);
    MR_GUARD_OUT(core_get_required(t, key, &der));
    MR_GUARD_OUT(mr_x509_from_der(mr_buf_slice(&der), out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    if (!mr_ok(res))
        mr_error_prefix("loading %s", key);
    return res;
}

static MR_RESULT load_key(mr_store_txn *t, const char *key, EVP_PKEY **out)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    mr_buf_init(&der, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(core_get_required(t, key, &der));
    MR_GUARD_OUT(mr_key_private_from_der(mr_buf_slice(&der), MR_KEYFMT_SEC1, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    if (!mr_ok(res))
        mr_error_prefix("loading %s", key);
    return res;
}

#define BAD_VALUE "stored value %s is malformed"

static MR_RESULT load_state_code(mr_store_txn *t, int *state)
{
    mr_result res = MR_FAILURE;
    mr_buf v;
    bool found = false;
    mr_buf_init(&v, 16, 0);
    *state = MR_STATE_UNINITIALIZED;
    MR_GUARD_OUT(mr_store_get(t, K_STATE, &v, &found));
    if (found) {
        MR_ENSURE_OUT(v.len == 1 && v.data[0] >= '0' && v.data[0] <= '3', MR_ERR_PROTOCOL,
                      BAD_VALUE, K_STATE);
        *state = v.data[0] - '0';
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&v);
    return res;
}

static MR_RESULT load_pki(mr_store_txn *t, core_epoch *e)
{
    MR_GUARD(load_cert(t, K_ROOT_CERT, &e->root_cert));
    MR_GUARD(load_cert(t, K_INTER_CERT, &e->inter_cert));
    MR_GUARD(load_cert(t, K_MARBLE_ROOT_CERT, &e->marble_root_cert));
    MR_GUARD(load_key(t, K_ROOT_KEY, &e->root_key));
    MR_GUARD(load_key(t, K_INTER_KEY, &e->inter_key));
    mr_buf_init(&e->root_der, 0, 0);
    mr_buf_init(&e->inter_der, 0, 0);
    mr_buf_init(&e->marble_root_der, 0, 0);
    MR_GUARD(mr_x509_to_der(e->root_cert, &e->root_der));
    MR_GUARD(mr_x509_to_der(e->inter_cert, &e->inter_der));
    MR_GUARD(mr_x509_to_der(e->marble_root_cert, &e->marble_root_der));
    MR_GUARD(mr_x509_to_pem(e->root_cert, &e->root_pem));
    MR_GUARD(mr_x509_to_pem(e->inter_cert, &e->inter_pem));
    MR_GUARD(mr_x509_to_pem(e->marble_root_cert, &e->marble_root_pem));
    return mr_sha256(e->root_der.data, e->root_der.len, e->root_hash);
}

static MR_RESULT load_optional_secret(mr_store_txn *t, const char *key, uint8_t *out, bool *has)
{
    mr_result res = MR_FAILURE;
    mr_buf v;
    mr_buf_init(&v, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(mr_store_get(t, key, &v, has));
    if (*has) {
        MR_ENSURE_OUT(v.len == MR_ROOT_SECRET_LEN, MR_ERR_PROTOCOL, BAD_VALUE, key);
        memcpy(out, v.data, MR_ROOT_SECRET_LEN);
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&v);
    return res;
}

/* Parses every File/Env template of every marble once (NoTemplates entries stay NULL). */
static MR_RESULT parse_templates(core_epoch *e)
{
    const mr_manifest *m = e->manifest;
    e->tmpl = mr_calloc(m->marbles.count, sizeof(core_marble_tmpl));
    MR_ENSURE_ALLOC(e->tmpl);
    for (size_t i = 0; i < m->marbles.count; i++) {
        const mr_manifest_marble *mb = &m->marbles.items[i];
        e->tmpl[i].files = mr_calloc(mb->parameters.files.count, sizeof(mr_tmpl *));
        e->tmpl[i].env = mr_calloc(mb->parameters.env.count, sizeof(mr_tmpl *));
        MR_ENSURE_ALLOC(e->tmpl[i].files);
        MR_ENSURE_ALLOC(e->tmpl[i].env);
        for (size_t k = 0; k < mb->parameters.files.count; k++) {
            const mr_manifest_file *f = &mb->parameters.files.items[k];
            if (!f->no_templates)
                MR_GUARD(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)f->data.ptr, f->data.len,
                                       MR_TMPL_FILES, &e->tmpl[i].files[k]));
        }
        for (size_t k = 0; k < mb->parameters.env.count; k++) {
            const mr_manifest_file *f = &mb->parameters.env.items[k];
            if (!f->no_templates)
                MR_GUARD(mr_tmpl_parse(MR_TMPL_NAME, (const uint8_t *)f->data.ptr, f->data.len,
                                       MR_TMPL_ENV, &e->tmpl[i].env[k]));
        }
    }
    return MR_SUCCESS;
}

static MR_RESULT load_users(core_epoch *e)
{
    const mr_manifest *m = e->manifest;
    e->users = mr_calloc(m->users.count, sizeof(core_user));
    MR_ENSURE_ALLOC(e->users);
    for (size_t i = 0; i < m->users.count; i++) {
        core_user *u = &e->users[e->n_users++];
        u->name = mr_strdup(m->users.items[i].name.ptr != NULL ? m->users.items[i].name.ptr : "");
        MR_ENSURE_ALLOC(u->name);
        mr_buf_init(&u->cert_der, 0, 0);
        MR_GUARD(mr_manifest_user_cert_der(&m->users.items[i], &u->cert_der));
    }
    return MR_SUCCESS;
}

/* Package updates raise SecurityVersion without touching the stored manifest bytes. */
static MR_RESULT apply_svn(const mr_store_item *it, mr_manifest_package *p)
{
    char text[32];
    MR_ENSURE(it->value.len > 0 && it->value.len < sizeof(text), MR_ERR_PROTOCOL, BAD_VALUE,
              it->key);
    memcpy(text, it->value.ptr, it->value.len);
    text[it->value.len] = '\0';
    char *end = NULL;
    errno = 0;
    p->security_version = strtoull(text, &end, 10);
    p->has_security_version = true;
    /* the whole value is the number: no NUL inside, no overflow */
    MR_ENSURE(errno == 0 && end == text + it->value.len, MR_ERR_PROTOCOL, BAD_VALUE, it->key);
    return MR_SUCCESS;
}

static MR_RESULT apply_svn_overrides(mr_store_txn *t, mr_manifest *m)
{
    mr_result res = MR_FAILURE;
    mr_store_list list = {0};
    size_t plen = strlen(P_PKG_SVN);
    MR_GUARD(mr_store_scan(t, P_PKG_SVN, &list));
    for (size_t i = 0; i < list.count; i++) {
        const char *name = list.items[i].key + plen;
        for (size_t k = 0; k < m->packages.count; k++) {
            mr_manifest_package *p = &m->packages.items[k];
            if (p->name.ptr != NULL && strcmp(p->name.ptr, name) == 0)
                MR_GUARD_OUT(apply_svn(&list.items[i], p));
        }
    }
    res = MR_SUCCESS;
out:
    mr_store_list_free(&list);
    return res;
}

static MR_RESULT load_manifest(mr_store_txn *t, core_epoch *e)
{
    bool found = false;
    mr_buf_init(&e->manifest_raw, 0, 0);
    mr_buf_init(&e->manifest_sig, 0, 0);
    MR_GUARD(mr_store_get(t, K_MANIFEST, &e->manifest_raw, &found));
    if (!found)
        return MR_SUCCESS;
    MR_GUARD(core_get_required(t, K_MANIFEST_SIG, &e->manifest_sig));
    MR_GUARD(mr_manifest_fingerprint(e->manifest_raw.data, e->manifest_raw.len, e->fingerprint));
    if (!mr_ok(mr_manifest_decode(e->manifest_raw.data, e->manifest_raw.len, &e->manifest)) ||
        !mr_ok(apply_svn_overrides(t, e->manifest))) {
        mr_error_prefix("loading manifest");
        return MR_FAILURE;
    }
    MR_GUARD(parse_templates(e));
    MR_GUARD(load_users(e));
    MR_GUARD(core_secret_set_load(t, P_SECRET, e->manifest, &e->secrets));
    MR_GUARD(core_secret_set_load(t, P_PREV_SECRET, e->manifest, &e->prev_secrets));
    return MR_SUCCESS;
}

MR_RESULT core_epoch_load(mr_core *c, mr_store_txn *t, core_epoch **out)
{
    mr_result res = MR_FAILURE;
    (void)c;
    core_epoch *e = mr_calloc(1, sizeof(*e));
    MR_ENSURE_ALLOC(e);
    atomic_init(&e->refs, 1);
    mr_buf_init(&e->quote, 0, 0);
    MR_GUARD_OUT(load_state_code(t, &e->state));
    MR_GUARD_OUT(load_pki(t, e));
    MR_GUARD_OUT(load_optional_secret(t, K_ROOT_SECRET, e->root_secret, &e->has_root_secret));
    MR_GUARD_OUT(load_optional_secret(t, K_PREV_ROOT_SECRET, e->prev_root_secret,
                                      &e->has_prev_root_secret));
    MR_GUARD_OUT(load_manifest(t, e));
    MR_GUARD_OUT(core_read_number(t, K_GENERATION, 10, "state generation", &e->generation));
    *out = e;
    e = NULL;
    res = MR_SUCCESS;
out:
    if (e != NULL)
        epoch_free(e);
    return res;
}

MR_RESULT core_epoch_quote(mr_core *c, core_epoch *e)
{
    mr_buf_reset(&e->quote);
    if (c->simulation)
        return MR_SUCCESS;
    mr_tee_type tee;
    uint8_t rd[64] = {0};
    memcpy(rd, e->root_hash, sizeof(e->root_hash));
    if (!mr_ok(mr_issuer_issue(c->cfg.issuer, rd, sizeof(rd), &e->quote, &tee))) {
        mr_error_prefix("generating quote failed");
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}
