/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Activate (spec §5.4–§5.7, 1.9.1 behaviour with §12.14): checks in MarbleRun's order with its
 * gRPC codes and texts, then the marble's key and certificate, its secrets, TTLS config, files,
 * environment and arguments. Runs entirely on a reference to the current epoch; the only lock
 * is the per-type activation counter lock around the final read-check-write-commit.
 */
#include <openssl/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/dcap.h"
#include "attest/policy.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/uuid.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/secrets.h"
#include "crypto/csr.h"
#include "crypto/hash.h"
#include "crypto/key.h"
#include "crypto/x509.h"

#define ENV_ROOT_CA "MARBLE_PREDEFINED_ROOT_CA"
#define ENV_CHAIN "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"
#define ENV_KEY "MARBLE_PREDEFINED_PRIVATE_KEY"
#define ENV_COORD_ROOT "MARBLE_PREDEFINED_COORDINATOR_ROOT_CA"
#define ENV_TTLS "MARBLE_TTLS_CONFIG"
#define RENDER_MAX ((size_t)4 << 20) /* one File/Env value; gRPC caps the whole answer at 4 MiB */

/* Everything one activation builds; freed in one place. */
typedef struct act {
    core_epoch *e;
    const mr_manifest_marble *marble;
    size_t marble_idx;
    const mr_manifest_package *pkg;
    char uuid[MR_UUID_TEXT_LEN + 1];
    EVP_PKEY *key;
    mr_buf cert_der, cert_pem, key_der, key_pem, pub_der;
    core_secret_set mine;      /* per-marble secrets of this activation */
    core_secret_set mine_prev; /* the same for the previous cycle */
    mr_tmpl_named_secret *cur_tab, *prev_tab;
    mr_tmpl_secret_table cur, prev;
    /* for the refusal log line: the quote's TCB verdict when it verified */
    bool verified;
    bool stale; /* the state changed while this activation ran: redo it on the new state */
    char tcb_status[48];
    char advisories[512];
} act;

static void act_free(act *a)
{
    EVP_PKEY_free(a->key);
    mr_buf_free(&a->cert_der);
    mr_buf_free(&a->cert_pem);
    mr_buf_free(&a->key_der);
    mr_buf_free(&a->key_pem);
    mr_buf_free(&a->pub_der);
    core_secret_set_free(&a->mine);
    core_secret_set_free(&a->mine_prev);
    mr_free(a->cur_tab);
    mr_free(a->prev_tab);
    core_epoch_put(a->e);
}

static mr_result fail_with(mr_errcat cat, const char *prefix)
{
    mr_error e;
    mr_error_take(&e);
    mr_error_set(cat, e.file, e.line, "%s: %s", prefix, e.msg);
    return MR_FAILURE;
}

/* ---- step 5: manifest requirements ---- */

static mr_result find_marble(act *a, const char *type)
{
    const mr_manifest *m = a->e->manifest;
    for (size_t i = 0; i < m->marbles.count; i++) {
        if (m->marbles.items[i].name.ptr != NULL && strcmp(m->marbles.items[i].name.ptr, type) == 0) {
            a->marble = &m->marbles.items[i];
            a->marble_idx = i;
        }
    }
    MR_ENSURE(a->marble != NULL, MR_ERR_ATTESTATION, "unknown marble type requested");
    const char *pkg = a->marble->package.ptr != NULL ? a->marble->package.ptr : "";
    a->pkg = mr_manifest_find_package(m, pkg);
    MR_ENSURE(a->pkg != NULL, MR_ERR_ATTESTATION, "undefined package \"%s\"", pkg);
    return MR_SUCCESS;
}

/* The package's policy; the string arrays are allocated (free with mr_free). */
static mr_result package_policy(const mr_manifest_package *p, mr_attest_package *out,
                                const char ***tcb, const char ***adv)
{
    memset(out, 0, sizeof(*out));
    out->debug = p->debug;
    out->unique_id = p->unique_id.len > 0 ? p->unique_id.ptr : NULL;
    out->signer_id = p->signer_id.len > 0 ? p->signer_id.ptr : NULL;
    out->has_product_id = p->has_product_id;
    out->product_id = p->product_id;
    out->has_security_version = p->has_security_version;
    out->security_version = p->security_version;
    *tcb = mr_calloc(p->accepted_tcb_statuses.count + 1, sizeof(char *));
    *adv = mr_calloc(p->accepted_advisories.count + 1, sizeof(char *));
    MR_ENSURE_ALLOC(*tcb);
    MR_ENSURE_ALLOC(*adv);
    for (size_t i = 0; i < p->accepted_tcb_statuses.count; i++)
        (*tcb)[i] = p->accepted_tcb_statuses.items[i].ptr ? p->accepted_tcb_statuses.items[i].ptr : "";
    for (size_t i = 0; i < p->accepted_advisories.count; i++)
        (*adv)[i] = p->accepted_advisories.items[i].ptr ? p->accepted_advisories.items[i].ptr : "";
    out->accepted_tcb_statuses = *tcb;
    out->accepted_tcb_status_count = p->accepted_tcb_statuses.count;
    out->accepted_advisories = *adv;
    out->accepted_advisory_count = p->accepted_advisories.count;
    return MR_SUCCESS;
}

static void note_tcb(act *a, const mr_attest_claims *claims)
{
    size_t off = 0;
    a->verified = true;
    (void)snprintf(a->tcb_status, sizeof(a->tcb_status), "%s", mr_tcb_status_name(claims->tcb.status));
    a->advisories[0] = '\0';
    for (size_t i = 0; i < claims->tcb.advisory_count && off < sizeof(a->advisories); i++) {
        int n = snprintf(a->advisories + off, sizeof(a->advisories) - off, "%s%s", i ? "," : "",
                         claims->tcb.advisories[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

static mr_result validate_quote(mr_core *c, act *a, const mr_core_activation_req *req,
                                mr_attest_claims *claims)
{
    const char **tcb = NULL, **adv = NULL;
    mr_attest_package pol;
    if (!mr_ok(mr_dcap_verify(req->quote.ptr, req->quote.len, &c->cfg.verify, claims)))
        return fail_with(MR_ERR_ATTESTATION, "verifying quote");
    note_tcb(a, claims);
    mr_result r = package_policy(a->pkg, &pol, &tcb, &adv);
    /* §5.5 order: TCB policy, binding to the TLS certificate, package properties */
    if (mr_ok(r))
        r = mr_policy_check_tcb(claims, pol.accepted_tcb_statuses, pol.accepted_tcb_status_count,
                                pol.accepted_advisories, pol.accepted_advisory_count, NULL);
    if (mr_ok(r))
        r = mr_policy_check_cert_binding(claims, req->peer_cert.ptr, req->peer_cert.len);
    if (mr_ok(r))
        r = mr_policy_check_package(claims, &pol);
    mr_free((void *)tcb);
    mr_free((void *)adv);
    return r;
}

static mr_result read_counter(mr_store_txn *t, const char *key, uint64_t *count)
{
    return core_read_number(t, key, 16, "activation count", count);
}

static mr_result check_budget(mr_core *c, const act *a, const char *type)
{
    if (a->marble->max_activations == 0)
        return MR_SUCCESS;
    char key[300];
    uint64_t count = 0;
    mr_store_txn *t = NULL;
    (void)snprintf(key, sizeof(key), "%s%s", P_ACTIVATIONS, type);
    core_store_rdlock(c);
    mr_result r = mr_store_begin(c->store, &t);
    if (mr_ok(r))
        r = read_counter(t, key, &count);
    mr_store_abort(t);
    core_store_unlock(c);
    MR_GUARD(r);
    MR_ENSURE(count < a->marble->max_activations, MR_ERR_ATTESTATION,
              "reached max activations count (%llu) for marble type \"%s\"",
              (unsigned long long)a->marble->max_activations, type);
    return MR_SUCCESS;
}

static mr_result check_requirements(mr_core *c, act *a, const mr_core_activation_req *req)
{
    MR_GUARD(find_marble(a, req->marble_type));
    if (!c->simulation) {
        mr_attest_claims claims;
        if (!mr_ok(validate_quote(c, a, req, &claims))) {
            if (a->e->manifest->infrastructures.count > 0) {
                MR_LOG_WARN("marble quote rejected", MR_F_STR("marbleType", req->marble_type),
                            MR_F_ERR());
                MR_BAIL(MR_ERR_ATTESTATION, "invalid infrastructure");
            }
            return fail_with(MR_ERR_ATTESTATION, "invalid quote");
        }
    }
    return check_budget(c, a, req->marble_type);
}

/* ---- step 7: the marble's key and certificate (§5.6) ---- */

static mr_result marble_subject(const mr_x509_name *from, const char *uuid,
                                mr_x509_name *out, mr_x509_attr *attrs, size_t max)
{
    static const int keep[] = {NID_countryName, NID_organizationalUnitName, NID_localityName,
                               NID_stateOrProvinceName, NID_streetAddress, NID_postalCode,
                               NID_serialNumber};
    out->attrs = attrs;
    out->count = 0;
    for (size_t i = 0; i < from->count && out->count + 2 < max; i++)
        for (size_t k = 0; k < MR_ARRAY_LEN(keep); k++)
            if (from->attrs[i].nid == keep[k]) {
                attrs[out->count].nid = from->attrs[i].nid;
                attrs[out->count].value = mr_strdup(from->attrs[i].value);
                if (attrs[out->count].value != NULL)
                    out->count++;
            }
    /* O would be the marble root's issuer O, which is empty for the Coordinator's CA: the
     * CSR's O is dropped. */
    attrs[out->count].nid = NID_commonName;
    attrs[out->count].value = mr_strdup(uuid);
    MR_ENSURE_ALLOC(attrs[out->count].value);
    out->count++;
    return MR_SUCCESS;
}

static mr_result issue_marble_cert(mr_core *c, act *a, const mr_core_activation_req *req)
{
    mr_result res = MR_FAILURE;
    mr_x509_name csr_subject;
    mr_x509_san_list sans;
    mr_x509_attr attrs[32];
    mr_x509_template t;
    static const int eku[] = {MR_EKU_SERVER_AUTH, MR_EKU_CLIENT_AUTH};
    memset(&csr_subject, 0, sizeof(csr_subject));
    memset(&sans, 0, sizeof(sans));
    memset(&t, 0, sizeof(t));
    memset(attrs, 0, sizeof(attrs));
    if (!mr_ok(mr_csr_read(req->csr, &csr_subject, &sans))) {
        if (mr_error_get()->cat == MR_ERR_AUTH)
            mr_error_set(MR_ERR_INTERNAL, __FILE__, __LINE__, "signature over CSR is invalid");
        else
            (void)fail_with(MR_ERR_INTERNAL, "parsing CSR");
        goto out;
    }
    MR_GUARD_OUT(marble_subject(&csr_subject, a->uuid, &t.subject, attrs,
                                MR_ARRAY_LEN(attrs)));
    t.dns_names = (const char *const *)sans.dns;
    t.n_dns_names = sans.n_dns;
    t.ips = sans.ips;
    t.n_ips = sans.n_ips;
    t.not_before = time(NULL);
    t.not_after = mr_x509_max_not_after(t.not_before);
    t.key_usage = MR_KU_DIGITAL_SIGNATURE | MR_KU_KEY_AGREEMENT;
    t.ext_key_usage = eku;
    t.n_ext_key_usage = MR_ARRAY_LEN(eku);
    t.basic_constraints_valid = true;
    mr_x509_ext type_ext = {.oid = MARBLE_TYPE_OID, .critical = false,
                            .value = MR_SLICE(req->marble_type, strlen(req->marble_type))};
    t.extra = &type_ext;
    t.n_extra = 1;
    MR_GUARD_OUT(mr_key_generate(c->cfg.curve, 0, &a->key));
    MR_GUARD_OUT(mr_x509_issue_der(&t, a->key, a->e->marble_root_cert, a->e->inter_key,
                                   &a->cert_der));
    MR_GUARD_OUT(mr_pem_encode_buf("CERTIFICATE", a->cert_der.data, a->cert_der.len,
                                   &a->cert_pem));
    MR_GUARD_OUT(mr_key_private_to_der(a->key, MR_KEYFMT_PKCS8, &a->key_der));
    MR_GUARD_OUT(mr_pem_encode_buf("PRIVATE KEY", a->key_der.data, a->key_der.len, &a->key_pem));
    MR_GUARD_OUT(mr_key_public_to_der(a->key, MR_KEYFMT_PKIX, &a->pub_der));
    res = MR_SUCCESS;
out:
    for (size_t i = 0; i < MR_ARRAY_LEN(attrs); i++)
        mr_free(attrs[i].value);
    mr_x509_san_list_clear(&sans);
    mr_x509_name_clear(&csr_subject);
    return res;
}

/* ---- steps 8–9: secrets of this marble ---- */

static mr_result derive(const act *a, const core_gen_ctx *g, core_secret_set *out)
{
    const mr_manifest *m = a->e->manifest;
    out->items = mr_calloc(m->secrets.count, sizeof(core_secret));
    MR_ENSURE_ALLOC(out->items);
    for (size_t i = 0; i < m->secrets.count; i++) {
        const mr_manifest_secret *d = &m->secrets.items[i];
        if (d->user_defined || d->shared)
            continue;
        MR_GUARD(core_secret_generate(g, d, 0, &out->items[out->count]));
        out->count++;
    }
    return MR_SUCCESS;
}

static mr_result marble_secrets(act *a)
{
    const core_epoch *e = a->e;
    core_gen_ctx g = {.marble_root = e->marble_root_cert, .inter_key = e->inter_key,
                      .root_secret = e->root_secret, .uuid = a->uuid, .now = time(NULL)};
    if (!a->marble->disable_secret_binding)
        g.bind_type = a->marble->name.ptr;
    MR_ENSURE(e->has_root_secret, MR_ERR_INTERNAL, "state has no root secret");
    MR_GUARD(derive(a, &g, &a->mine));
    /* The previous cycle: symmetric keys from the previous root secret (or the current one);
     * per-marble certificates are fresh on every activation, so both cycles share them. */
    if (e->has_prev_root_secret)
        g.root_secret = e->prev_root_secret;
    a->mine_prev.items = mr_calloc(a->mine.count, sizeof(core_secret));
    MR_ENSURE_ALLOC(a->mine_prev.items);
    for (size_t i = 0; i < a->mine.count; i++) {
        const core_secret *s = &a->mine.items[i];
        if (!core_secret_is_symmetric(s->def))
            continue;
        MR_GUARD(core_secret_generate(&g, s->def, 0, &a->mine_prev.items[a->mine_prev.count]));
        a->mine_prev.count++;
    }
    return MR_SUCCESS;
}

/* Template view of all secrets: stored shared/user-defined values overlaid with this
 * marble's per-marble values. */
static mr_result secret_table(const act *a, const core_secret_set *stored,
                              const core_secret_set *mine, const core_secret_set *fallback,
                              mr_tmpl_named_secret **tab, mr_tmpl_secret_table *out)
{
    const mr_manifest *m = a->e->manifest;
    *tab = mr_calloc(m->secrets.count, sizeof(mr_tmpl_named_secret));
    MR_ENSURE_ALLOC(*tab);
    size_t n = 0;
    for (size_t i = 0; i < m->secrets.count; i++) {
        const mr_manifest_secret *d = &m->secrets.items[i];
        const char *name = d->name.ptr != NULL ? d->name.ptr : "";
        const core_secret *v = core_secret_find(mine, name);
        if (v == NULL && fallback != NULL)
            v = core_secret_find(fallback, name);
        if (v == NULL)
            v = core_secret_find(stored, name);
        mr_tmpl_secret *ts = &(*tab)[n].secret;
        (*tab)[n].name = name;
        ts->type = d->type.ptr;
        ts->size = d->size;
        ts->shared = d->shared;
        ts->user_defined = d->user_defined;
        ts->valid_for = v != NULL ? v->valid_for : d->valid_for;
        if (v != NULL) {
            ts->cert = mr_buf_slice(&v->cert_der);
            ts->priv = mr_buf_slice(&v->priv);
            ts->pub = mr_buf_slice(&v->pub);
        }
        n++;
    }
    out->entries = *tab;
    out->count = n;
    return MR_SUCCESS;
}

/* ---- steps 10–11: TTLS config, files, environment ---- */

static mr_result json_pem(mr_buf *out, const char *key, const mr_buf *pem, bool comma)
{
    if (comma)
        MR_GUARD(mr_buf_append_u8(out, ','));
    MR_GUARD(mr_manifest_json_string(key, strlen(key), out));
    MR_GUARD(mr_buf_append_u8(out, ':'));
    return mr_manifest_json_string((const char *)pem->data, pem->len, out);
}

/* Entries of one direction, sorted by their "addr:port" key; later tags overwrite. */
typedef struct ttls_entry {
    char key[300];
    const mr_manifest_tls_entry *def;
} ttls_entry;

static int cmp_entry(const void *x, const void *y)
{
    return strcmp(((const ttls_entry *)x)->key, ((const ttls_entry *)y)->key);
}

static size_t collect(const mr_manifest *m, const mr_manifest_marble *mb, bool incoming,
                      ttls_entry *out, size_t max)
{
    size_t n = 0;
    for (size_t t = 0; t < mb->tls.count; t++) {
        const mr_manifest_tls_tag *tag = mr_manifest_find_tls_tag(m, mb->tls.items[t].ptr ? mb->tls.items[t].ptr : "");
        if (tag == NULL)
            continue;
        const mr_manifest_tls_list *l = incoming ? &tag->incoming : &tag->outgoing;
        for (size_t i = 0; i < l->count; i++) {
            char key[300];
            const mr_manifest_tls_entry *en = &l->items[i];
            (void)snprintf(key, sizeof(key), "%s:%s", incoming ? "*" : (en->addr.ptr ? en->addr.ptr : ""),
                           en->port.ptr ? en->port.ptr : "");
            size_t k = 0;
            while (k < n && strcmp(out[k].key, key) != 0)
                k++;
            if (k == n && n < max)
                n++;
            if (k < max) {
                memcpy(out[k].key, key, sizeof(key));
                out[k].def = en;
            }
        }
    }
    qsort(out, n, sizeof(ttls_entry), cmp_entry);
    return n;
}

static mr_result ttls_secret_pems(const act *a, const char *name, mr_buf *cert, mr_buf *key)
{
    const core_secret *s = core_secret_find(&a->mine, name);
    if (s == NULL)
        s = core_secret_find(&a->e->secrets, name);
    MR_ENSURE(s != NULL && s->cert_der.len > 0, MR_ERR_INTERNAL, "secret %s has no certificate", name);
    MR_GUARD(mr_pem_encode_buf("CERTIFICATE", s->cert_der.data, s->cert_der.len, cert));
    return mr_pem_encode_buf("PRIVATE KEY", s->priv.data, s->priv.len, key);
}

/* ---- MarbleRun-C extensions of the TTLS entries (docs/ttls.md) ---- */

/* Outgoing Cert: the external server is verified against that secret's certificate. */
static mr_result ttls_peer_ca(const act *a, const char *name, mr_buf *out)
{
    const core_secret *s = core_secret_find(&a->mine, name);
    if (s == NULL)
        s = core_secret_find(&a->e->secrets, name);
    MR_ENSURE(s != NULL && s->cert_der.len > 0, MR_ERR_INTERNAL, "secret %s has no certificate", name);
    return mr_pem_encode_buf("CERTIFICATE", s->cert_der.data, s->cert_der.len, out);
}

/* "allowedTypes":[...], before "cacrt" (keys stay sorted). Braces are escaped: the config
 * passes through the template engine. */
static mr_result ttls_allowed_types(const mr_manifest_tls_entry *en, mr_buf *out)
{
    if (en->allowed_marble_types.count == 0)
        return MR_SUCCESS;
    MR_GUARD(mr_buf_append_str(out, "\"allowedTypes\":["));
    for (size_t i = 0; i < en->allowed_marble_types.count; i++) {
        const mr_mstr *t = &en->allowed_marble_types.items[i];
        mr_buf q;
        mr_buf_init(&q, 0, 0);
        mr_result r = mr_manifest_json_string(t->ptr, t->len, &q);
        for (size_t k = 0; k < q.len && mr_ok(r); k++)
            r = q.data[k] == '{'   ? mr_buf_append_str(out, "\\u007b")
                : q.data[k] == '}' ? mr_buf_append_str(out, "\\u007d")
                                   : mr_buf_append_u8(out, q.data[k]);
        mr_buf_free(&q);
        MR_GUARD(r);
        if (i + 1 < en->allowed_marble_types.count)
            MR_GUARD(mr_buf_append_u8(out, ','));
    }
    return mr_buf_append_str(out, "],");
}

static mr_result ttls_direction(const act *a, bool incoming, const mr_buf *root_pem, mr_buf *out)
{
    ttls_entry *entries = mr_calloc(256, sizeof(ttls_entry));
    MR_ENSURE_ALLOC(entries);
    size_t n = collect(a->e->manifest, a->marble, incoming, entries, 256);
    mr_buf cert, key, ca;
    mr_buf_init(&cert, 0, 0);
    mr_buf_init(&key, 0, MR_BUF_SECRET);
    mr_buf_init(&ca, 0, 0);
    mr_result r = mr_buf_append_u8(out, '{');
    for (size_t i = 0; i < n && mr_ok(r); i++) {
        const mr_manifest_tls_entry *en = entries[i].def;
        const mr_buf *cp = &a->cert_pem, *kp = &a->key_pem, *cap = root_pem;
        if (!incoming && en->cert.len > 0) {
            mr_buf_reset(&ca);
            r = ttls_peer_ca(a, en->cert.ptr, &ca);
            cap = &ca;
        }
        bool client_auth = true;
        if (incoming && en->cert.len > 0) {
            mr_buf_reset(&cert);
            mr_buf_reset(&key);
            r = ttls_secret_pems(a, en->cert.ptr, &cert, &key);
            cp = &cert;
            kp = &key;
            client_auth = !en->disable_client_auth;
        }
        if (mr_ok(r) && i > 0)
            r = mr_buf_append_u8(out, ',');
        if (mr_ok(r))
            r = mr_manifest_json_string(entries[i].key, strlen(entries[i].key), out);
        if (mr_ok(r))
            r = mr_buf_append_str(out, ":{");
        if (mr_ok(r))
            r = ttls_allowed_types(en, out);
        if (mr_ok(r))
            r = json_pem(out, "cacrt", cap, false);
        if (mr_ok(r))
            r = json_pem(out, "clicrt", cp, true);
        if (mr_ok(r) && incoming)
            r = mr_buf_append_str(out, client_auth ? ",\"clientAuth\":true" : ",\"clientAuth\":false");
        if (mr_ok(r))
            r = json_pem(out, "clikey", kp, true);
        if (mr_ok(r))
            r = mr_buf_append_u8(out, '}');
    }
    if (mr_ok(r))
        r = mr_buf_append_u8(out, '}');
    mr_buf_free(&cert);
    mr_buf_free(&key);
    mr_buf_free(&ca);
    mr_free(entries);
    return r;
}

static mr_result ttls_config(const act *a, mr_buf *out)
{
    MR_GUARD(mr_buf_append_str(out, "{\"tls\":{\"Incoming\":"));
    MR_GUARD(ttls_direction(a, true, &a->e->marble_root_pem, out));
    MR_GUARD(mr_buf_append_str(out, ",\"Outgoing\":"));
    MR_GUARD(ttls_direction(a, false, &a->e->marble_root_pem, out));
    return mr_buf_append_str(out, "}}");
}

static mr_result kv_add(mr_core_kv **items, size_t *n, const char *name, const uint8_t *v, size_t len)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*items)[i].name, name) == 0)
            return mr_buf_set(&(*items)[i].value, v, len); /* later entries overwrite */
    }
    mr_core_kv *grown = mr_realloc(*items, (*n + 1) * sizeof(mr_core_kv));
    MR_ENSURE_ALLOC(grown);
    *items = grown;
    mr_core_kv *kv = &grown[*n];
    kv->name = mr_strdup(name);
    MR_ENSURE_ALLOC(kv->name);
    mr_buf_init(&kv->value, RENDER_MAX, MR_BUF_SECRET);
    (*n)++;
    return mr_buf_set(&kv->value, v, len);
}

static mr_result render_map(const act *a, const mr_manifest_file_map *map, mr_tmpl **tmpls,
                            const mr_tmpl_data *data, mr_core_kv **items, size_t *n)
{
    mr_buf out;
    mr_buf_init(&out, RENDER_MAX, MR_BUF_SECRET);
    mr_result r = MR_SUCCESS;
    (void)a;
    for (size_t i = 0; i < map->count && mr_ok(r); i++) {
        const mr_manifest_file *f = &map->items[i];
        mr_buf_reset(&out);
        if (tmpls[i] == NULL)
            r = mr_buf_set(&out, f->data.ptr, f->data.len);
        else
            r = mr_tmpl_render(tmpls[i], data, 0, &out);
        if (mr_ok(r))
            r = kv_add(items, n, f->name.ptr != NULL ? f->name.ptr : "", out.data, out.len);
    }
    mr_buf_free(&out);
    return r;
}

static mr_result build_params(act *a, mr_core_activation_resp *resp)
{
    const core_epoch *e = a->e;
    mr_tmpl_secret root_ca = {.cert = mr_buf_slice(&e->root_der)};
    mr_tmpl_secret marble_root = {.cert = mr_buf_slice(&e->marble_root_der)};
    mr_tmpl_secret inter = {.cert = mr_buf_slice(&e->inter_der)};
    mr_buf chain;
    mr_buf_init(&chain, 0, 0);
    mr_result r = MR_SUCCESS;
    mr_tmpl_secret marble = {.cert = mr_buf_slice(&a->cert_der), .priv = mr_buf_slice(&a->key_der),
                             .pub = mr_buf_slice(&a->pub_der)};
    if (mr_ok(r))
        r = secret_table(a, &e->secrets, &a->mine, NULL, &a->cur_tab, &a->cur);
    if (mr_ok(r))
        r = secret_table(a, &e->prev_secrets, &a->mine_prev, &a->mine, &a->prev_tab, &a->prev);
    mr_tmpl_data data = {.root_ca = &marble_root, .marble_cert = &marble,
                         .coordinator_root = &root_ca, .coordinator_intermediate = &inter,
                         .secrets = mr_tmpl_table_lookup, .secrets_ctx = &a->cur,
                         .previous_secrets = mr_tmpl_table_lookup, .previous_ctx = &a->prev};
    const core_marble_tmpl *tm = &e->tmpl[a->marble_idx];
    if (mr_ok(r))
        r = render_map(a, &a->marble->parameters.files, tm->files, &data, &resp->files, &resp->n_files);
    if (mr_ok(r))
        r = render_map(a, &a->marble->parameters.env, tm->env, &data, &resp->env, &resp->n_env);
    if (mr_ok(r) && a->marble->tls.count > 0) {
        /* MARBLE_TTLS_CONFIG is an Env entry like the manifest's: it passes through the
         * template engine with the Env function set (spec §5.7, §13 #15). */
        mr_buf ttls, rendered;
        mr_tmpl *tmpl = NULL;
        mr_buf_init(&ttls, 0, MR_BUF_SECRET);
        mr_buf_init(&rendered, RENDER_MAX, MR_BUF_SECRET);
        r = ttls_config(a, &ttls);
        if (!mr_ok(r))
            (void)fail_with(MR_ERR_INTERNAL, "creating TTLS config");
        if (mr_ok(r)) {
            r = mr_tmpl_parse(MR_TMPL_NAME, ttls.data, ttls.len, MR_TMPL_ENV, &tmpl);
            if (mr_ok(r))
                r = mr_tmpl_render(tmpl, &data, 0, &rendered);
            if (mr_ok(r))
                r = kv_add(&resp->env, &resp->n_env, ENV_TTLS, rendered.data, rendered.len);
            if (!mr_ok(r))
                (void)fail_with(MR_ERR_INTERNAL, "customizing marble parameters");
        }
        mr_tmpl_free(tmpl);
        mr_buf_free(&ttls);
        mr_buf_free(&rendered);
    } else if (!mr_ok(r)) {
        (void)fail_with(MR_ERR_INTERNAL, "customizing marble parameters");
    }
    /* reserved variables overwrite manifest entries of the same name (1.9.1 values) */
    if (mr_ok(r))
        r = kv_add(&resp->env, &resp->n_env, ENV_ROOT_CA, e->marble_root_pem.data, e->marble_root_pem.len);
    if (mr_ok(r))
        r = mr_buf_append(&chain, a->cert_pem.data, a->cert_pem.len);
    if (mr_ok(r))
        r = mr_buf_append(&chain, e->inter_pem.data, e->inter_pem.len);
    if (mr_ok(r))
        r = kv_add(&resp->env, &resp->n_env, ENV_CHAIN, chain.data, chain.len);
    if (mr_ok(r))
        r = kv_add(&resp->env, &resp->n_env, ENV_KEY, a->key_pem.data, a->key_pem.len);
    if (mr_ok(r))
        r = kv_add(&resp->env, &resp->n_env, ENV_COORD_ROOT, e->root_pem.data, e->root_pem.len);
    mr_buf_free(&chain);
    return r;
}

static mr_result copy_argv(const act *a, mr_core_activation_resp *resp)
{
    const mr_mstr_list *argv = &a->marble->parameters.argv;
    resp->argv = mr_calloc(argv->count + 1, sizeof(char *));
    MR_ENSURE_ALLOC(resp->argv);
    for (size_t i = 0; i < argv->count; i++) {
        resp->argv[i] = mr_strndup(argv->items[i].ptr ? argv->items[i].ptr : "", argv->items[i].len);
        MR_ENSURE_ALLOC(resp->argv[i]);
        resp->argc++;
    }
    return MR_SUCCESS;
}

/* ---- step 12: the activation counter ---- */

/* An activation is ordered against state changes at this point: if an update was published
 * while it ran (e.g. a higher SecurityVersion), its result is discarded and it is redone. */
static mr_result still_current(mr_core *c, act *a)
{
    a->stale = !core_epoch_is_current(c, a->e);
    MR_ENSURE(!a->stale, MR_ERR_INTERNAL, "the Coordinator state changed during the activation");
    return MR_SUCCESS;
}

/* One read-check-write of the counter. The transaction reads the newest state including
 * commits still waiting for their fsync, so concurrent activations of one type build on each
 * other and share a group commit; a concurrent writer makes the commit fail with a conflict
 * and the caller retries. The count can therefore never pass MaxActivations. */
static mr_result bump_counter(mr_core *c, const act *a, const char *type, const char *key)
{
    mr_store_txn *t = NULL;
    uint64_t count = 0;
    char val[32];
    mr_result r = mr_store_begin_ex(c->store, MR_STORE_TXN_LATEST, &t);
    if (mr_ok(r))
        r = read_counter(t, key, &count);
    if (mr_ok(r) && count >= a->marble->max_activations) {
        mr_error_set(MR_ERR_ATTESTATION, __FILE__, __LINE__,
                     "marble verification failed: reached max activations count (%llu) for "
                     "marble type \"%s\"",
                     (unsigned long long)a->marble->max_activations, type);
        r = MR_FAILURE;
    } else if (mr_ok(r)) {
        (void)snprintf(val, sizeof(val), "%llx", (unsigned long long)(count + 1));
        r = core_put_str(t, key, val);
        if (mr_ok(r)) {
            mr_store_txn *tc = t;
            t = NULL;
            r = mr_store_commit(tc);
        }
    }
    mr_store_abort(t);
    return r;
}

static bool is_conflict(void)
{
    return mr_error_get()->cat == MR_ERR_STATE && strstr(mr_error_get()->msg, "conflict") != NULL;
}

static mr_result count_activation(mr_core *c, act *a, const char *type)
{
    if (a->marble->max_activations == 0)
        return still_current(c, a);
    char key[300];
    (void)snprintf(key, sizeof(key), "%s%s", P_ACTIVATIONS, type);
    for (int attempt = 0; attempt < 1000; attempt++) {
        MR_GUARD(still_current(c, a));
        core_store_rdlock(c);
        mr_result r = bump_counter(c, a, type, key);
        core_store_unlock(c);
        if (mr_ok(r))
            return MR_SUCCESS;
        if (!is_conflict()) {
            if (mr_error_get()->cat != MR_ERR_ATTESTATION)
                (void)fail_with(MR_ERR_INTERNAL, "incrementing marble activations");
            return MR_FAILURE;
        }
    }
    MR_BAIL(MR_ERR_INTERNAL, "incrementing marble activations: too many concurrent updates");
}

/* ---- the operation ---- */

void mr_core_activation_resp_free(mr_core_activation_resp *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_files; i++) {
        mr_free(r->files[i].name);
        mr_buf_free(&r->files[i].value);
    }
    for (size_t i = 0; i < r->n_env; i++) {
        mr_free(r->env[i].name);
        mr_buf_free(&r->env[i].value);
    }
    for (size_t i = 0; i < r->argc; i++)
        mr_free(r->argv[i]);
    mr_free(r->files);
    mr_free(r->env);
    mr_free(r->argv);
    memset(r, 0, sizeof(*r));
}

static mr_result activate(mr_core *c, act *a, const mr_core_activation_req *req,
                          mr_core_activation_resp *resp)
{
    MR_ENSURE(a->e->state == MR_STATE_ACCEPTING_MARBLES, MR_ERR_STATE,
              "cannot accept marbles in current state");
    MR_ENSURE(req->peer_cert.len > 0, MR_ERR_AUTH, "couldn't get marble TLS certificate");
    if (c->simulation)
        MR_LOG_WARN("SIMULATION MODE: activating a marble without checking its quote",
                    MR_F_STR("marbleType", req->marble_type));
    if (!mr_ok(check_requirements(c, a, req)))
        return fail_with(MR_ERR_ATTESTATION, "marble verification failed");
    mr_uuid u;
    if (!mr_ok(mr_uuid_parse(req->uuid, strlen(req->uuid), &u)))
        return fail_with(MR_ERR_USAGE, "invalid UUID");
    mr_uuid_format(&u, a->uuid);
    if (!mr_ok(issue_marble_cert(c, a, req)))
        return fail_with(MR_ERR_INTERNAL, "generating marble authentication secrets");
    if (!mr_ok(marble_secrets(a)))
        return fail_with(MR_ERR_INTERNAL, "generating marble secrets: rpc error: code = Internal "
                                          "desc = generating secrets for marble");
    MR_GUARD(build_params(a, resp));
    MR_GUARD(copy_argv(a, resp));
    MR_GUARD(count_activation(c, a, req->marble_type));
    (void)snprintf(resp->marble_type, sizeof(resp->marble_type), "%s", req->marble_type);
    memcpy(resp->uuid, a->uuid, sizeof(resp->uuid));
    return MR_SUCCESS;
}

mr_result mr_core_activate(mr_core *c, const mr_core_activation_req *req,
                           mr_core_activation_resp *resp)
{
    act a;
    memset(&a, 0, sizeof(a));
    memset(resp, 0, sizeof(*resp));
    mr_buf_init(&a.cert_der, 0, 0);
    mr_buf_init(&a.cert_pem, 0, 0);
    mr_buf_init(&a.key_der, 0, MR_BUF_SECRET);
    mr_buf_init(&a.key_pem, 0, MR_BUF_SECRET);
    mr_buf_init(&a.pub_der, 0, 0);
    a.e = core_epoch_get(c);
    mr_result r = activate(c, &a, req, resp);
    for (int attempt = 0; !mr_ok(r) && a.stale && attempt < 3; attempt++) {
        act_free(&a);
        mr_core_activation_resp_free(resp);
        memset(&a, 0, sizeof(a));
        mr_buf_init(&a.cert_der, 0, 0);
        mr_buf_init(&a.cert_pem, 0, 0);
        mr_buf_init(&a.key_der, 0, MR_BUF_SECRET);
        mr_buf_init(&a.key_pem, 0, MR_BUF_SECRET);
        mr_buf_init(&a.pub_der, 0, 0);
        a.e = core_epoch_get(c);
        r = activate(c, &a, req, resp);
    }
    if (!mr_ok(r) && a.verified) {
        MR_LOG_WARN("marble activation refused", MR_F_STR("marbleType", req->marble_type),
                    MR_F_STR("uuid", req->uuid), MR_F_ERR(), MR_F_STR("tcbStatus", a.tcb_status),
                    MR_F_STR("advisoryIDs", a.advisories));
        mr_core_activation_resp_free(resp);
    } else if (!mr_ok(r)) {
        MR_LOG_WARN("marble activation refused", MR_F_STR("marbleType", req->marble_type),
                    MR_F_STR("uuid", req->uuid), MR_F_ERR());
        mr_core_activation_resp_free(resp);
    } else {
        MR_LOG_INFO("marble activated", MR_F_STR("marbleType", req->marble_type),
                    MR_F_STR("uuid", a.uuid));
    }
    act_free(&a);
    return r;
}
