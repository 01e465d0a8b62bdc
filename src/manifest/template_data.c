/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Template engine, execution: the data model (template_exec_int.h). The Go types of
 * MarbleRun's template data, their names and Go's evalField on them.
 */
#include "manifest/template_exec_int.h"

#include <string.h>

static const uint8_t DUMMY[1] = {0x41};
static const mr_tmpl_secret ZERO_SECRET;
static const mr_tmpl_secret DRY_CERT_ONLY = {.cert = {DUMMY, 1}};
static const mr_tmpl_secret DRY_MARBLE = {
    .cert = {DUMMY, 1}, .priv = {DUMMY, 1}, .pub = {DUMMY, 1}};

const char *mr_tmpl_type_name_(const val *v)
{
    switch (v->kind) {
    case V_ROOT:
        return "manifest.SecretsWrapper";
    case V_RESERVED:
        return "manifest.ReservedSecrets";
    case V_PREVIOUS:
        return "manifest.PreviousSecrets";
    case V_MAP:
        return "map[string]manifest.Secret";
    case V_SECRET:
        return "manifest.Secret";
    case V_CERT:
        return "manifest.Certificate";
    case V_PUBLIC:
        return "manifest.PublicKey";
    case V_PRIVATE:
        return "manifest.PrivateKey";
    case V_BYTES:
        return "[]uint8";
    case V_STRING:
        return "string";
    case V_UINT:
        return "uint";
    case V_INT:
        return "int";
    case V_UINT8:
        return "uint8";
    case V_BOOL:
        return "bool";
    default:
        return "<nil>";
    }
}

mr_slice mr_tmpl_secret_part_(const mr_tmpl_secret *s, enum part which)
{
    if (!s->placeholder)
        return which == P_CERT ? s->cert : which == P_PRIV ? s->priv : s->pub;
    bool generated_sym =
        !s->user_defined && s->type != NULL && strcmp(s->type, "symmetric-key") == 0;
    if (which == P_CERT && generated_sym)
        return (mr_slice){0};
    return MR_SLICE(DUMMY, 1);
}

mr_slice mr_tmpl_vbytes_(const exec *x, const val *v)
{
    if (v->scratch)
        return MR_SLICE(x->scratch.data + v->off, v->bytes.len);
    return v->bytes;
}

val mr_tmpl_v_secret_(const mr_tmpl_secret *s)
{
    return (val){.kind = V_SECRET, .sec = s != NULL ? s : &ZERO_SECRET};
}

const mr_tmpl_secret *mr_tmpl_lookup_(const exec *x, int map, const uint8_t *name, size_t n)
{
    if (x->data == NULL)
        return NULL;
    mr_tmpl_lookup_fn fn = map == 0 ? x->data->secrets : x->data->previous_secrets;
    void *ctx = map == 0 ? x->data->secrets_ctx : x->data->previous_ctx;
    return fn != NULL ? fn(ctx, (const char *)name, n) : NULL;
}

/* .MarbleRun.<name>; false when there is no such field. *out NULL = the zero Secret. */
static bool reserved(const exec *x, const char *s, size_t n, const mr_tmpl_secret **out)
{
    const mr_tmpl_data *d = x->data;
    bool cert_only = true;
#define IS(w) (n == sizeof(w) - 1 && memcmp(s, w, n) == 0)
    if (IS("RootCA"))
        *out = d != NULL ? d->root_ca : NULL;
    else if (IS("MarbleCert"))
        *out = d != NULL ? d->marble_cert : NULL, cert_only = false;
    else if (IS("CoordinatorRoot"))
        *out = d != NULL ? d->coordinator_root : NULL;
    else if (IS("CoordinatorIntermediate"))
        *out = d != NULL ? d->coordinator_intermediate : NULL;
    else
        return false;
#undef IS
    if (x->dry)
        *out = cert_only ? &DRY_CERT_ONLY : &DRY_MARBLE;
    return true;
}

static bool secret_field(const char *s, size_t n, val *v)
{
    const mr_tmpl_secret *sec = v->sec;
#define IS(w) (n == sizeof(w) - 1 && memcmp(s, w, n) == 0)
    if (IS("Type"))
        *v = (val){.kind = V_STRING,
                   .bytes = sec->type ? MR_SLICE(sec->type, strlen(sec->type)) : (mr_slice){0}};
    else if (IS("Size"))
        *v = (val){.kind = V_UINT, .u = sec->size};
    else if (IS("Shared"))
        *v = (val){.kind = V_BOOL, .b = sec->shared};
    else if (IS("UserDefined"))
        *v = (val){.kind = V_BOOL, .b = sec->user_defined};
    else if (IS("Cert"))
        *v = (val){.kind = V_CERT, .bytes = mr_tmpl_secret_part_(sec, P_CERT)};
    else if (IS("ValidFor"))
        *v = (val){.kind = V_UINT, .u = sec->valid_for};
    else if (IS("Private"))
        *v = (val){.kind = V_PRIVATE, .bytes = mr_tmpl_secret_part_(sec, P_PRIV)};
    else if (IS("Public"))
        *v = (val){.kind = V_PUBLIC, .bytes = mr_tmpl_secret_part_(sec, P_PUB)};
    else
        return false;
#undef IS
    return true;
}

/* Go's evalField for one name on receiver *v (replaced by the result). has_args: the field
 * is the last of a command that has arguments or a piped-in value. */
static MR_RESULT eval_field(exec *x, const span *name, bool has_args, val *v)
{
    const char *s = (const char *)x->t->src + name->off;
    size_t n = name->len;
    bool found = true;
#define IS(w) (n == sizeof(w) - 1 && memcmp(s, w, n) == 0)
    switch (v->kind) {
    case V_NONE:
        return MR_SUCCESS; /* Go: the zero value, whatever follows */
    case V_MAP: {
        if (has_args)
            return mr_tmpl_x_fail_(x, "%.*s is not a method but has arguments", (int)n, s);
        const mr_tmpl_secret *sec = mr_tmpl_lookup_(x, v->map, (const uint8_t *)s, n);
        *v = sec != NULL ? mr_tmpl_v_secret_(sec) : (val){.kind = V_NONE};
        return MR_SUCCESS;
    }
    case V_ROOT:
        if (IS("MarbleRun"))
            *v = (val){.kind = V_RESERVED};
        else if (IS("Secrets"))
            *v = (val){.kind = V_MAP, .map = 0};
        else if (IS("Previous"))
            *v = (val){.kind = V_PREVIOUS};
        else
            found = false;
        break;
    case V_RESERVED: {
        const mr_tmpl_secret *sec = NULL;
        found = reserved(x, s, n, &sec);
        if (found)
            *v = mr_tmpl_v_secret_(sec);
        break;
    }
    case V_PREVIOUS:
        if (IS("Secrets"))
            *v = (val){.kind = V_MAP, .map = 1};
        else
            found = false;
        break;
    case V_SECRET:
        if (IS("Equal") || IS("EqualDefinition"))
            return mr_tmpl_x_fail_(x, "calling method %.*s of manifest.Secret is not supported",
                                   (int)n, s);
        found = secret_field(s, n, v);
        break;
    case V_CERT:
        if (IS("Raw"))
            v->kind = V_BYTES;
        else
            return mr_tmpl_x_fail_(x,
                                   "can't evaluate field %.*s in type manifest.Certificate "
                                   "(only Raw is supported)",
                                   (int)n, s);
        break;
    default:
        found = false;
        break;
    }
#undef IS
    if (!found)
        return mr_tmpl_x_fail_(x, "can't evaluate field %.*s in type %s", (int)n, s,
                               mr_tmpl_type_name_(v));
    if (has_args)
        return mr_tmpl_x_fail_(x, "%.*s has arguments but cannot be invoked as function", (int)n,
                               s);
    return MR_SUCCESS;
}

/* Go's evalFieldChain over names[from..] of node n; only the last one sees the arguments. */
MR_RESULT mr_tmpl_eval_names_(exec *x, const node *n, uint32_t from, bool has_args, val *v)
{
    for (uint32_t i = from; i < n->nnames; i++)
        MR_GUARD(eval_field(x, &x->t->names[n->name0 + i], has_args && i + 1 == n->nnames, v));
    return MR_SUCCESS;
}
