/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Canonical JSON of the model with Go json.Marshal's output rules (spec §0.1): fields in
 * declaration order, map keys sorted bytewise (our maps already are), HTML-safe string
 * escaping, U+2028/U+2029 escaped, invalid UTF-8 as U+FFFD, nil → null, []byte → base64.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/text.h"
#include "manifest/manifest_int.h"

mr_result mr_manifest_json_string(const char *s, size_t len, mr_buf *out)
{
    return mr_json_quote(out, s, len);
}

static mr_result put_str(mr_buf *o, const mr_mstr *s) { return mr_manifest_json_string(s->ptr, s->len, o); }

static mr_result put_key(mr_buf *o, const char *k, bool first)
{
    MR_GUARD(mr_buf_append_u8(o, first ? '{' : ','));
    MR_GUARD(mr_buf_append_u8(o, '"'));
    MR_GUARD(mr_buf_append_str(o, k));
    return mr_buf_append_str(o, "\":");
}

static mr_result put_bool(mr_buf *o, bool b) { return mr_buf_append_str(o, b ? "true" : "false"); }

static mr_result put_u64(mr_buf *o, uint64_t v) { return mr_buf_printf(o, "%" PRIu64, v); }

static mr_result put_bytes(mr_buf *o, const mr_mbytes *b)
{
    if (!b->present)
        return mr_buf_append_str(o, "null");
    MR_GUARD(mr_buf_append_u8(o, '"'));
    MR_GUARD(mr_b64_encode_buf(b->ptr, b->len, MR_B64_STD, o));
    return mr_buf_append_u8(o, '"');
}

static mr_result put_str_list(mr_buf *o, const mr_mstr_list *l)
{
    if (!l->present)
        return mr_buf_append_str(o, "null");
    MR_GUARD(mr_buf_append_u8(o, '['));
    for (size_t i = 0; i < l->count; i++) {
        if (i)
            MR_GUARD(mr_buf_append_u8(o, ','));
        MR_GUARD(put_str(o, &l->items[i]));
    }
    return mr_buf_append_u8(o, ']');
}

mr_result mr_manifest_encode_package(const mr_manifest_package *p, mr_buf *o)
{
    MR_GUARD(put_key(o, "Debug", true));
    MR_GUARD(put_bool(o, p->debug));
    MR_GUARD(put_key(o, "UniqueID", false));
    MR_GUARD(put_str(o, &p->unique_id));
    MR_GUARD(put_key(o, "SignerID", false));
    MR_GUARD(put_str(o, &p->signer_id));
    MR_GUARD(put_key(o, "ProductID", false));
    MR_GUARD(p->has_product_id ? put_u64(o, p->product_id) : mr_buf_append_str(o, "null"));
    MR_GUARD(put_key(o, "SecurityVersion", false));
    MR_GUARD(p->has_security_version ? put_u64(o, p->security_version)
                                     : mr_buf_append_str(o, "null"));
    MR_GUARD(put_key(o, "AcceptedTCBStatuses", false));
    MR_GUARD(put_str_list(o, &p->accepted_tcb_statuses));
    MR_GUARD(put_key(o, "AcceptedAdvisories", false));
    MR_GUARD(put_str_list(o, &p->accepted_advisories));
    return mr_buf_append_u8(o, '}');
}

mr_result mr_manifest_encode_infra(const mr_manifest_infra *i, mr_buf *o)
{
    MR_GUARD(put_key(o, "CPUSVN", true));
    MR_GUARD(put_bytes(o, &i->cpusvn));
    MR_GUARD(put_key(o, "QESVN", false));
    MR_GUARD(i->has_qesvn ? put_u64(o, i->qesvn) : mr_buf_append_str(o, "null"));
    MR_GUARD(put_key(o, "PCESVN", false));
    MR_GUARD(i->has_pcesvn ? put_u64(o, i->pcesvn) : mr_buf_append_str(o, "null"));
    MR_GUARD(put_key(o, "RootCA", false));
    MR_GUARD(put_bytes(o, &i->root_ca));
    return mr_buf_append_u8(o, '}');
}

/* File.MarshalJSON: Data is encoded back with the original Encoding. */
static mr_result put_file(mr_buf *o, const mr_manifest_file *f)
{
    char lower[16];
    mr_result res = MR_FAILURE;
    mr_buf tmp;
    mr_buf_init(&tmp, 0, 0);
    if (!mr_manifest_lower(f->encoding.ptr ? f->encoding.ptr : "", f->encoding.len, lower,
                           sizeof(lower)))
        lower[0] = '\0';
    const uint8_t *d = (const uint8_t *)(f->data.ptr ? f->data.ptr : "");
    if (strcmp(lower, "string") == 0)
        MR_GUARD_OUT(mr_buf_append(&tmp, d, f->data.len));
    else if (strcmp(lower, "base64") == 0)
        MR_GUARD_OUT(mr_b64_encode_buf(d, f->data.len, MR_B64_STD, &tmp));
    else if (strcmp(lower, "hex") == 0)
        MR_GUARD_OUT(mr_hex_encode_buf(d, f->data.len, &tmp));
    else
        MR_BAIL_OUT(MR_ERR_USAGE, "unknown encoding type: %s",
                    f->encoding.ptr ? f->encoding.ptr : "");
    MR_GUARD_OUT(put_key(o, "Data", true));
    MR_GUARD_OUT(mr_manifest_json_string((const char *)tmp.data, tmp.len, o));
    MR_GUARD_OUT(put_key(o, "Encoding", false));
    MR_GUARD_OUT(put_str(o, &f->encoding));
    MR_GUARD_OUT(put_key(o, "NoTemplates", false));
    MR_GUARD_OUT(put_bool(o, f->no_templates));
    MR_GUARD_OUT(mr_buf_append_u8(o, '}'));
    res = MR_SUCCESS;
out:
    mr_buf_free(&tmp);
    return res;
}

static mr_result put_file_map(mr_buf *o, const mr_manifest_file_map *m)
{
    if (!m->present)
        return mr_buf_append_str(o, "null");
    MR_GUARD(mr_buf_append_u8(o, '{'));
    for (size_t i = 0; i < m->count; i++) {
        if (i)
            MR_GUARD(mr_buf_append_u8(o, ','));
        MR_GUARD(put_str(o, &m->items[i].name));
        MR_GUARD(mr_buf_append_u8(o, ':'));
        MR_GUARD(put_file(o, &m->items[i]));
    }
    return mr_buf_append_u8(o, '}');
}

mr_result mr_manifest_encode_marble(const mr_manifest_marble *mb, mr_buf *o)
{
    MR_GUARD(put_key(o, "Package", true));
    MR_GUARD(put_str(o, &mb->package));
    MR_GUARD(put_key(o, "MaxActivations", false));
    MR_GUARD(put_u64(o, mb->max_activations));
    MR_GUARD(put_key(o, "Parameters", false));
    MR_GUARD(put_key(o, "Files", true));
    MR_GUARD(put_file_map(o, &mb->parameters.files));
    MR_GUARD(put_key(o, "Env", false));
    MR_GUARD(put_file_map(o, &mb->parameters.env));
    MR_GUARD(put_key(o, "Argv", false));
    MR_GUARD(put_str_list(o, &mb->parameters.argv));
    MR_GUARD(mr_buf_append_u8(o, '}'));
    MR_GUARD(put_key(o, "TLS", false));
    MR_GUARD(put_str_list(o, &mb->tls));
    MR_GUARD(put_key(o, "DisableSecretBinding", false));
    MR_GUARD(put_bool(o, mb->disable_secret_binding));
    return mr_buf_append_u8(o, '}');
}

static mr_result put_tls_list(mr_buf *o, const mr_manifest_tls_list *l)
{
    if (!l->present)
        return mr_buf_append_str(o, "null");
    MR_GUARD(mr_buf_append_u8(o, '['));
    for (size_t i = 0; i < l->count; i++) {
        const mr_manifest_tls_entry *e = &l->items[i];
        if (i)
            MR_GUARD(mr_buf_append_u8(o, ','));
        MR_GUARD(put_key(o, "Port", true));
        MR_GUARD(put_str(o, &e->port));
        MR_GUARD(put_key(o, "Addr", false));
        MR_GUARD(put_str(o, &e->addr));
        MR_GUARD(put_key(o, "Cert", false));
        MR_GUARD(put_str(o, &e->cert));
        MR_GUARD(put_key(o, "DisableClientAuth", false));
        MR_GUARD(put_bool(o, e->disable_client_auth));
        MR_GUARD(mr_buf_append_u8(o, '}'));
    }
    return mr_buf_append_u8(o, ']');
}

mr_result mr_manifest_encode_tls_tag(const mr_manifest_tls_tag *t, mr_buf *o)
{
    MR_GUARD(put_key(o, "Outgoing", true));
    MR_GUARD(put_tls_list(o, &t->outgoing));
    MR_GUARD(put_key(o, "Incoming", false));
    MR_GUARD(put_tls_list(o, &t->incoming));
    return mr_buf_append_u8(o, '}');
}

mr_result mr_manifest_encode_secret(const mr_manifest_secret *s, mr_buf *o)
{
    MR_GUARD(put_key(o, "Type", true));
    MR_GUARD(put_str(o, &s->type));
    MR_GUARD(put_key(o, "Size", false));
    MR_GUARD(put_u64(o, s->size));
    MR_GUARD(put_key(o, "Shared", false));
    MR_GUARD(put_bool(o, s->shared));
    MR_GUARD(put_key(o, "UserDefined", false));
    MR_GUARD(put_bool(o, s->user_defined));
    MR_GUARD(put_key(o, "Cert", false));
    MR_GUARD(put_bytes(o, &s->cert.raw)); /* Certificate.MarshalJSON = json.Marshal(c.Raw) */
    MR_GUARD(put_key(o, "ValidFor", false));
    MR_GUARD(put_u64(o, s->valid_for));
    MR_GUARD(put_key(o, "Private", false));
    MR_GUARD(put_bytes(o, &s->private_key));
    MR_GUARD(put_key(o, "Public", false));
    MR_GUARD(put_bytes(o, &s->public_key));
    return mr_buf_append_u8(o, '}');
}

mr_result mr_manifest_encode_user(const mr_manifest_user *u, mr_buf *o)
{
    MR_GUARD(put_key(o, "Certificate", true));
    MR_GUARD(put_str(o, &u->certificate));
    MR_GUARD(put_key(o, "Roles", false));
    MR_GUARD(put_str_list(o, &u->roles));
    return mr_buf_append_u8(o, '}');
}

mr_result mr_manifest_encode_role(const mr_manifest_role *r, mr_buf *o)
{
    MR_GUARD(put_key(o, "ResourceType", true));
    MR_GUARD(put_str(o, &r->resource_type));
    MR_GUARD(put_key(o, "ResourceNames", false));
    MR_GUARD(put_str_list(o, &r->resource_names));
    MR_GUARD(put_key(o, "Actions", false));
    MR_GUARD(put_str_list(o, &r->actions));
    return mr_buf_append_u8(o, '}');
}

typedef mr_result (*put_fn)(const void *elem, mr_buf *o);

static mr_result put_map(mr_buf *o, const void *items, size_t count, bool present, size_t esz,
                         put_fn fn)
{
    if (!present)
        return mr_buf_append_str(o, "null");
    MR_GUARD(mr_buf_append_u8(o, '{'));
    const unsigned char *base = items;
    for (size_t i = 0; i < count; i++) {
        const void *e = base + i * esz;
        if (i)
            MR_GUARD(mr_buf_append_u8(o, ','));
        MR_GUARD(put_str(o, (const mr_mstr *)e));
        MR_GUARD(mr_buf_append_u8(o, ':'));
        MR_GUARD(fn(e, o));
    }
    return mr_buf_append_u8(o, '}');
}

static mr_result pf_package(const void *e, mr_buf *o) { return mr_manifest_encode_package(e, o); }
static mr_result pf_infra(const void *e, mr_buf *o) { return mr_manifest_encode_infra(e, o); }
static mr_result pf_marble(const void *e, mr_buf *o) { return mr_manifest_encode_marble(e, o); }
static mr_result pf_user(const void *e, mr_buf *o) { return mr_manifest_encode_user(e, o); }
static mr_result pf_secret(const void *e, mr_buf *o) { return mr_manifest_encode_secret(e, o); }
static mr_result pf_role(const void *e, mr_buf *o) { return mr_manifest_encode_role(e, o); }
static mr_result pf_tls(const void *e, mr_buf *o) { return mr_manifest_encode_tls_tag(e, o); }

static mr_result pf_reckey(const void *e, mr_buf *o)
{
    return put_str(o, &((const mr_manifest_recovery_key *)e)->pem);
}

#define PUT_MAP(map, T, fn)                                                                   \
    put_map(o, (map).items, (map).count, (map).present, sizeof(T), fn)

mr_result mr_manifest_encode(const mr_manifest *m, mr_buf *o)
{
    MR_ENSURE_REF(m);
    MR_GUARD(put_key(o, "Packages", true));
    MR_GUARD(PUT_MAP(m->packages, mr_manifest_package, pf_package));
    MR_GUARD(put_key(o, "Infrastructures", false));
    MR_GUARD(PUT_MAP(m->infrastructures, mr_manifest_infra, pf_infra));
    MR_GUARD(put_key(o, "Marbles", false));
    MR_GUARD(PUT_MAP(m->marbles, mr_manifest_marble, pf_marble));
    MR_GUARD(put_key(o, "Users", false));
    MR_GUARD(PUT_MAP(m->users, mr_manifest_user, pf_user));
    MR_GUARD(put_key(o, "Secrets", false));
    MR_GUARD(PUT_MAP(m->secrets, mr_manifest_secret, pf_secret));
    MR_GUARD(put_key(o, "RecoveryKeys", false));
    MR_GUARD(PUT_MAP(m->recovery_keys, mr_manifest_recovery_key, pf_reckey));
    MR_GUARD(put_key(o, "Roles", false));
    MR_GUARD(PUT_MAP(m->roles, mr_manifest_role, pf_role));
    MR_GUARD(put_key(o, "TLS", false));
    MR_GUARD(PUT_MAP(m->tls, mr_manifest_tls_tag, pf_tls));
    MR_GUARD(put_key(o, "Config", false));
    MR_GUARD(put_key(o, "SealMode", true));
    MR_GUARD(put_str(o, &m->config.seal_mode));
    MR_GUARD(put_key(o, "FeatureGates", false));
    MR_GUARD(put_str_list(o, &m->config.feature_gates));
    MR_GUARD(put_key(o, "UpdateThreshold", false));
    MR_GUARD(put_u64(o, m->config.update_threshold));
    MR_GUARD(put_key(o, "RecoveryThreshold", false));
    MR_GUARD(put_u64(o, m->config.recovery_threshold));
    MR_GUARD(put_key(o, "RotateRootSecret", false));
    MR_GUARD(put_bool(o, m->config.rotate_root_secret));
    return mr_buf_append_str(o, "}}");
}

/* ---- stored user object (§8.1) ---- */

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* De-duplicated set of borrowed C strings; sorted on demand. */
typedef struct strset {
    const char **v;
    size_t n, cap;
} strset;

static mr_result strset_add(strset *s, const char *str)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], str) == 0)
            return MR_SUCCESS;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        const char **nv = mr_realloc(s->v, nc * sizeof(const char *));
        MR_ENSURE_ALLOC(nv);
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = str;
    return MR_SUCCESS;
}

static void strset_sort(strset *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(const char *), cmp_cstr);
}

static const mr_manifest_role *role_of(const mr_manifest *m, const mr_mstr *name)
{
    return mr_manifest_map_find(m->roles.items, m->roles.count, sizeof(mr_manifest_role),
                                name->ptr ? name->ptr : "", name->len);
}

mr_result mr_manifest_encode_user_record(const mr_manifest *m, const mr_manifest_user *u,
                                         const uint8_t *der, size_t der_len, mr_buf *o)
{
    mr_result res = MR_FAILURE;
    strset perms = {0}, resources = {0};
    char **owned = NULL; /* the lower-cased actions, freed at the end */
    size_t nowned = 0, nactions = 0;
    MR_ENSURE_REF(m);
    MR_ENSURE_REF(u);
    for (size_t r = 0; r < u->roles.count; r++) {
        const mr_manifest_role *role = role_of(m, &u->roles.items[r]);
        nactions += role ? role->actions.count : 0;
    }
    if (nactions) {
        owned = mr_calloc(nactions, sizeof(char *));
        MR_ENSURE_ALLOC_OUT(owned);
    }
    /* every distinct lower-cased action of the user's roles */
    for (size_t r = 0; r < u->roles.count; r++) {
        const mr_manifest_role *role = role_of(m, &u->roles.items[r]);
        for (size_t a = 0; role && a < role->actions.count; a++) {
            const mr_mstr *act = &role->actions.items[a];
            size_t cap = act->len * 3 + 1;
            MR_ENSURE_OUT(owned != NULL && nowned < nactions, MR_ERR_INTERNAL,
                          "internal error: role actions changed");
            char *low = mr_alloc(cap);
            MR_ENSURE_ALLOC_OUT(low);
            owned[nowned++] = low;
            if (!mr_manifest_lower(act->ptr ? act->ptr : "", act->len, low, cap))
                low[0] = '\0';
            MR_GUARD_OUT(strset_add(&perms, low));
        }
    }
    strset_sort(&perms);
    MR_GUARD_OUT(mr_buf_append_str(o, "{\"Name\":"));
    MR_GUARD_OUT(put_str(o, &u->name));
    MR_GUARD_OUT(mr_buf_append_str(o, ",\"Certificate\":"));
    if (der == NULL) {
        MR_GUARD_OUT(mr_buf_append_str(o, "null"));
    } else {
        MR_GUARD_OUT(mr_buf_append_u8(o, '"'));
        MR_GUARD_OUT(mr_b64_encode_buf(der, der_len, MR_B64_STD, o));
        MR_GUARD_OUT(mr_buf_append_u8(o, '"'));
    }
    MR_GUARD_OUT(mr_buf_append_str(o, ",\"Permissions\":{"));
    for (size_t p = 0; p < perms.n; p++) {
        resources.n = 0;
        for (size_t r = 0; r < u->roles.count; r++) {
            const mr_manifest_role *role = role_of(m, &u->roles.items[r]);
            bool grants = false;
            for (size_t a = 0; role && a < role->actions.count && !grants; a++) {
                char low[64];
                const mr_mstr *act = &role->actions.items[a];
                grants = mr_manifest_lower(act->ptr ? act->ptr : "", act->len, low, sizeof(low)) &&
                         strcmp(low, perms.v[p]) == 0;
            }
            for (size_t k = 0; grants && k < role->resource_names.count; k++) {
                const char *res_name = role->resource_names.items[k].ptr;
                MR_GUARD_OUT(strset_add(&resources, res_name ? res_name : ""));
            }
        }
        strset_sort(&resources);
        if (p)
            MR_GUARD_OUT(mr_buf_append_u8(o, ','));
        MR_GUARD_OUT(mr_manifest_json_string(perms.v[p], strlen(perms.v[p]), o));
        MR_GUARD_OUT(mr_buf_append_str(o, ":{\"PermissionID\":"));
        MR_GUARD_OUT(mr_manifest_json_string(perms.v[p], strlen(perms.v[p]), o));
        MR_GUARD_OUT(mr_buf_append_str(o, ",\"ResourceID\":{"));
        for (size_t k = 0; k < resources.n; k++) {
            if (k)
                MR_GUARD_OUT(mr_buf_append_u8(o, ','));
            MR_GUARD_OUT(mr_manifest_json_string(resources.v[k], strlen(resources.v[k]), o));
            MR_GUARD_OUT(mr_buf_append_str(o, ":true"));
        }
        MR_GUARD_OUT(mr_buf_append_str(o, "}}"));
    }
    MR_GUARD_OUT(mr_buf_append_str(o, "}}"));
    res = MR_SUCCESS;
out:
    for (size_t i = 0; i < nowned; i++)
        mr_free(owned[i]);
    mr_free(owned);
    mr_free(perms.v);
    mr_free(resources.v);
    return res;
}
