/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Activate, steps 10–11 (spec §5.7): the marble's parameters. The template view of the
 * secrets, the TTLS config (MARBLE_TTLS_CONFIG), Files and Env rendered from the manifest, the
 * reserved MARBLE_PREDEFINED_* variables and Argv. The checks and the counter are in
 * activate.c.
 */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "coordinator/core/activate_int.h"
#include "coordinator/core/core_int.h"
#include "coordinator/core/secrets.h"

#define ENV_ROOT_CA "MARBLE_PREDEFINED_ROOT_CA"
#define ENV_CHAIN "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"
#define ENV_KEY "MARBLE_PREDEFINED_PRIVATE_KEY"
#define ENV_COORD_ROOT "MARBLE_PREDEFINED_COORDINATOR_ROOT_CA"
#define ENV_TTLS "MARBLE_TTLS_CONFIG"
#define RENDER_MAX ((size_t)4 << 20) /* one File/Env value; gRPC caps the whole answer at 4 MiB */

/* Template view of all secrets: stored shared/user-defined values overlaid with this
 * marble's per-marble values. */
static MR_RESULT secret_table(const act *a, const core_secret_set *stored,
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

static MR_RESULT json_pem(mr_buf *out, const char *key, const mr_buf *pem, bool comma)
{
    if (comma)
        MR_GUARD(mr_buf_append_u8(out, ','));
    MR_GUARD(mr_manifest_json_string(key, strlen(key), out));
    MR_GUARD(mr_buf_append_u8(out, ':'));
    return mr_manifest_json_string((const char *)pem->data, pem->len, out);
}

/* Entries of one direction, sorted by their "addr:port" key; later tags overwrite. */
typedef struct ttls_entry {
    char *key; /* NUL-terminated, owned */
    const mr_manifest_tls_entry *def;
} ttls_entry;

typedef struct ttls_list {
    ttls_entry *items;
    size_t n;
} ttls_list;

static void ttls_list_free(ttls_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        mr_free(l->items[i].key);
    mr_free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int cmp_entry(const void *x, const void *y)
{
    return strcmp(((const ttls_entry *)x)->key, ((const ttls_entry *)y)->key);
}

/* Sets the entry for key (taking it over), replacing an earlier one of the same key. */
static MR_RESULT ttls_set(ttls_list *l, char *key, const mr_manifest_tls_entry *def)
{
    for (size_t k = 0; k < l->n; k++)
        if (strcmp(l->items[k].key, key) == 0) {
            mr_free(key);
            l->items[k].def = def;
            return MR_SUCCESS;
        }
    ttls_entry *grown = mr_realloc(l->items, (l->n + 1) * sizeof(ttls_entry));
    if (grown == NULL)
        mr_free(key);
    MR_ENSURE_ALLOC(grown);
    l->items = grown;
    l->items[l->n].key = key;
    l->items[l->n].def = def;
    l->n++;
    return MR_SUCCESS;
}

static MR_RESULT ttls_key(bool incoming, const mr_manifest_tls_entry *en, char **out)
{
    mr_result res = MR_FAILURE;
    mr_buf k;
    size_t len = 0;
    mr_buf_init(&k, 0, 0);
    MR_GUARD_OUT(mr_buf_printf(&k, "%s:%s", incoming ? "*" : (en->addr.ptr ? en->addr.ptr : ""),
                               en->port.ptr ? en->port.ptr : ""));
    MR_GUARD_OUT(mr_buf_nul_terminate(&k));
    *out = (char *)mr_buf_steal(&k, &len);
    res = MR_SUCCESS;
out:
    mr_buf_free(&k);
    return res;
}

static MR_RESULT collect(const mr_manifest *m, const mr_manifest_marble *mb, bool incoming,
                         ttls_list *out)
{
    for (size_t t = 0; t < mb->tls.count; t++) {
        const mr_manifest_tls_tag *tag =
            mr_manifest_find_tls_tag(m, mb->tls.items[t].ptr ? mb->tls.items[t].ptr : "");
        if (tag == NULL)
            continue;
        const mr_manifest_tls_list *l = incoming ? &tag->incoming : &tag->outgoing;
        for (size_t i = 0; i < l->count; i++) {
            char *key = NULL;
            MR_GUARD(ttls_key(incoming, &l->items[i], &key));
            MR_GUARD(ttls_set(out, key, &l->items[i]));
        }
    }
    if (out->n > 1)
        qsort(out->items, out->n, sizeof(ttls_entry), cmp_entry);
    return MR_SUCCESS;
}

static MR_RESULT ttls_secret_pems(const act *a, const char *name, mr_buf *cert, mr_buf *key)
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
static MR_RESULT ttls_peer_ca(const act *a, const char *name, mr_buf *out)
{
    const core_secret *s = core_secret_find(&a->mine, name);
    if (s == NULL)
        s = core_secret_find(&a->e->secrets, name);
    MR_ENSURE(s != NULL && s->cert_der.len > 0, MR_ERR_INTERNAL, "secret %s has no certificate", name);
    return mr_pem_encode_buf("CERTIFICATE", s->cert_der.data, s->cert_der.len, out);
}

/* "allowedTypes":[...], before "cacrt" (keys stay sorted). Braces are escaped: the config
 * passes through the template engine. */
static MR_RESULT ttls_allowed_types(const mr_manifest_tls_entry *en, mr_buf *out)
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

/* "<key>":{"cacrt":...,"clicrt":...[,"clientAuth":...],"clikey":...} of one entry. */
static MR_RESULT ttls_entry_json(const act *a, bool incoming, const ttls_entry *te,
                                 const mr_buf *root_pem, mr_buf *cert, mr_buf *key, mr_buf *ca,
                                 mr_buf *out)
{
    const mr_manifest_tls_entry *en = te->def;
    const mr_buf *cp = &a->cert_pem, *kp = &a->key_pem, *cap = root_pem;
    if (!incoming && en->cert.len > 0) {
        mr_buf_reset(ca);
        MR_GUARD(ttls_peer_ca(a, en->cert.ptr, ca));
        cap = ca;
    }
    bool client_auth = true;
    if (incoming && en->cert.len > 0) {
        mr_buf_reset(cert);
        mr_buf_reset(key);
        MR_GUARD(ttls_secret_pems(a, en->cert.ptr, cert, key));
        cp = cert;
        kp = key;
        client_auth = !en->disable_client_auth;
    }
    MR_GUARD(mr_manifest_json_string(te->key, strlen(te->key), out));
    MR_GUARD(mr_buf_append_str(out, ":{"));
    MR_GUARD(ttls_allowed_types(en, out));
    MR_GUARD(json_pem(out, "cacrt", cap, false));
    MR_GUARD(json_pem(out, "clicrt", cp, true));
    if (incoming)
        MR_GUARD(mr_buf_append_str(out, client_auth ? ",\"clientAuth\":true"
                                                    : ",\"clientAuth\":false"));
    MR_GUARD(json_pem(out, "clikey", kp, true));
    return mr_buf_append_u8(out, '}');
}

static MR_RESULT ttls_direction(const act *a, bool incoming, const mr_buf *root_pem, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    ttls_list entries = {0};
    mr_buf cert, key, ca;
    mr_buf_init(&cert, 0, 0);
    mr_buf_init(&key, 0, MR_BUF_SECRET);
    mr_buf_init(&ca, 0, 0);
    MR_GUARD_OUT(collect(a->e->manifest, a->marble, incoming, &entries));
    MR_GUARD_OUT(mr_buf_append_u8(out, '{'));
    for (size_t i = 0; i < entries.n; i++) {
        if (i > 0)
            MR_GUARD_OUT(mr_buf_append_u8(out, ','));
        MR_GUARD_OUT(ttls_entry_json(a, incoming, &entries.items[i], root_pem, &cert, &key, &ca, out));
    }
    MR_GUARD_OUT(mr_buf_append_u8(out, '}'));
    res = MR_SUCCESS;
out:
    mr_buf_free(&cert);
    mr_buf_free(&key);
    mr_buf_free(&ca);
    ttls_list_free(&entries);
    return res;
}

static MR_RESULT ttls_config(const act *a, mr_buf *out)
{
    MR_GUARD(mr_buf_append_str(out, "{\"tls\":{\"Incoming\":"));
    MR_GUARD(ttls_direction(a, true, &a->e->marble_root_pem, out));
    MR_GUARD(mr_buf_append_str(out, ",\"Outgoing\":"));
    MR_GUARD(ttls_direction(a, false, &a->e->marble_root_pem, out));
    return mr_buf_append_str(out, "}}");
}

static MR_RESULT kv_add(mr_core_kv **items, size_t *n, const char *name, const uint8_t *v, size_t len)
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

static MR_RESULT render_map(const mr_manifest_file_map *map, mr_tmpl **tmpls,
                            const mr_tmpl_data *data, mr_core_kv **items, size_t *n)
{
    mr_result res = MR_FAILURE;
    mr_buf out;
    mr_buf_init(&out, RENDER_MAX, MR_BUF_SECRET);
    for (size_t i = 0; i < map->count; i++) {
        const mr_manifest_file *f = &map->items[i];
        mr_buf_reset(&out);
        if (tmpls[i] == NULL)
            MR_GUARD_OUT(mr_buf_set(&out, f->data.ptr, f->data.len));
        else
            MR_GUARD_OUT(mr_tmpl_render(tmpls[i], data, 0, &out));
        MR_GUARD_OUT(kv_add(items, n, f->name.ptr != NULL ? f->name.ptr : "", out.data, out.len));
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&out);
    return res;
}

/* MarbleRun's prefix for failures while the parameters are rendered. */
static MR_RESULT customizing(mr_result r)
{
    return mr_ok(r) ? r : core_act_fail_with(MR_ERR_INTERNAL, "customizing marble parameters");
}

/* MARBLE_TTLS_CONFIG is an Env entry like the manifest's: it passes through the template
 * engine with the Env function set (spec §5.7, §13 #15). */
static MR_RESULT render_ttls(const act *a, const mr_tmpl_data *data,
                             mr_core_activation_resp *resp)
{
    mr_result res = MR_FAILURE;
    mr_buf ttls, rendered;
    mr_tmpl *tmpl = NULL;
    mr_buf_init(&ttls, 0, MR_BUF_SECRET);
    mr_buf_init(&rendered, RENDER_MAX, MR_BUF_SECRET);
    if (!mr_ok(ttls_config(a, &ttls)))
        MR_GUARD_OUT(core_act_fail_with(MR_ERR_INTERNAL, "creating TTLS config"));
    MR_GUARD_OUT(customizing(mr_tmpl_parse(MR_TMPL_NAME, ttls.data, ttls.len, MR_TMPL_ENV, &tmpl)));
    MR_GUARD_OUT(customizing(mr_tmpl_render(tmpl, data, 0, &rendered)));
    MR_GUARD_OUT(customizing(kv_add(&resp->env, &resp->n_env, ENV_TTLS, rendered.data,
                                    rendered.len)));
    res = MR_SUCCESS;
out:
    mr_tmpl_free(tmpl);
    mr_buf_free(&ttls);
    mr_buf_free(&rendered);
    return res;
}

/* Files, Env and MARBLE_TTLS_CONFIG from the manifest. */
static MR_RESULT render_params(act *a, mr_core_activation_resp *resp)
{
    const core_epoch *e = a->e;
    mr_tmpl_secret root_ca = {.cert = mr_buf_slice(&e->root_der)};
    mr_tmpl_secret marble_root = {.cert = mr_buf_slice(&e->marble_root_der)};
    mr_tmpl_secret inter = {.cert = mr_buf_slice(&e->inter_der)};
    mr_tmpl_secret marble = {.cert = mr_buf_slice(&a->cert_der), .priv = mr_buf_slice(&a->key_der),
                             .pub = mr_buf_slice(&a->pub_der)};
    mr_tmpl_data data = {.root_ca = &marble_root, .marble_cert = &marble,
                         .coordinator_root = &root_ca, .coordinator_intermediate = &inter,
                         .secrets = mr_tmpl_table_lookup, .secrets_ctx = &a->cur,
                         .previous_secrets = mr_tmpl_table_lookup, .previous_ctx = &a->prev};
    const core_marble_tmpl *tm = &e->tmpl[a->marble_idx];
    MR_GUARD(customizing(secret_table(a, &e->secrets, &a->mine, NULL, &a->cur_tab, &a->cur)));
    MR_GUARD(customizing(secret_table(a, &e->prev_secrets, &a->mine_prev, &a->mine,
                                      &a->prev_tab, &a->prev)));
    MR_GUARD(customizing(render_map(&a->marble->parameters.files, tm->files, &data, &resp->files,
                                    &resp->n_files)));
    MR_GUARD(customizing(render_map(&a->marble->parameters.env, tm->env, &data, &resp->env,
                                    &resp->n_env)));
    if (a->marble->tls.count > 0)
        MR_GUARD(render_ttls(a, &data, resp));
    return MR_SUCCESS;
}

/* Reserved variables overwrite manifest entries of the same name (1.9.1 values). */
static MR_RESULT reserved_env(const act *a, mr_core_activation_resp *resp)
{
    const core_epoch *e = a->e;
    mr_result res = MR_FAILURE;
    mr_buf chain;
    mr_buf_init(&chain, 0, 0);
    MR_GUARD_OUT(kv_add(&resp->env, &resp->n_env, ENV_ROOT_CA, e->marble_root_pem.data,
                        e->marble_root_pem.len));
    MR_GUARD_OUT(mr_buf_append(&chain, a->cert_pem.data, a->cert_pem.len));
    MR_GUARD_OUT(mr_buf_append(&chain, e->inter_pem.data, e->inter_pem.len));
    MR_GUARD_OUT(kv_add(&resp->env, &resp->n_env, ENV_CHAIN, chain.data, chain.len));
    MR_GUARD_OUT(kv_add(&resp->env, &resp->n_env, ENV_KEY, a->key_pem.data, a->key_pem.len));
    MR_GUARD_OUT(kv_add(&resp->env, &resp->n_env, ENV_COORD_ROOT, e->root_pem.data,
                        e->root_pem.len));
    res = MR_SUCCESS;
out:
    mr_buf_free(&chain);
    return res;
}

static MR_RESULT copy_argv(const act *a, mr_core_activation_resp *resp)
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

MR_RESULT core_act_params(act *a, mr_core_activation_resp *resp)
{
    MR_GUARD(render_params(a, resp));
    MR_GUARD(reserved_env(a, resp));
    return copy_argv(a, resp);
}

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
    mr_free(r->marble_type);
    mr_free(r->files);
    mr_free(r->env);
    mr_free(r->argv);
    memset(r, 0, sizeof(*r));
}
