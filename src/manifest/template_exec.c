/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Template engine, part 2: execution (see template.h).
 *
 * Values mirror the Go types MarbleRun puts into the template data (manifest.SecretsWrapper,
 * manifest.Secret, Certificate, PublicKey, PrivateKey, ...) so that field access, `index`, the
 * secret functions and printing behave and fail as Go's text/template does with them.
 * Provider bytes are borrowed; function results that are new bytes (pem, hex, base64) go to
 * a scratch buffer in secret memory that is wiped after every action.
 */
#define MR_TMPL_INTERNAL 1
#include "manifest/template.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"

typedef enum vkind {
    V_NONE,     /* Go's "no value" (missing map entry, or anything reached through it) */
    V_NIL,      /* an untyped nil handed to a function */
    V_ROOT,     /* the data: SecretsWrapper */
    V_RESERVED, /* .MarbleRun */
    V_PREVIOUS, /* .Previous */
    V_MAP,      /* .Secrets or .Previous.Secrets */
    V_SECRET,
    V_CERT,
    V_PUBLIC,
    V_PRIVATE,
    V_BYTES, /* []byte (Cert.Raw) */
    V_STRING,
    V_UINT,
    V_INT,
    V_UINT8,
    V_BOOL,
    V_EMITTED, /* a function result already written to the output (top-level last command) */
} vkind;

typedef struct val {
    const mr_tmpl_secret *sec; /* V_SECRET */
    mr_slice bytes;            /* byte kinds and V_STRING (ptr unused when scratch) */
    size_t off;                /* V_STRING in the scratch buffer */
    uint64_t u;                /* V_UINT, V_UINT8 */
    int64_t i;                 /* V_INT */
    uint8_t kind;
    uint8_t map;  /* V_MAP: 0 = .Secrets, 1 = .Previous.Secrets */
    bool scratch; /* V_STRING stored in the scratch buffer at `off` */
    bool b;       /* V_BOOL */
} val;

typedef struct exec {
    const mr_tmpl *t;
    const mr_tmpl_data *data;
    bool dry;
    mr_buf scratch;
    size_t out_max;
    mr_buf *out;
    uint32_t direct_cmd; /* the action's last command: its result goes straight to `out` */
    uint32_t at;         /* node for the error context (Go's state.at) */
    char goerr[160];
} exec;

enum part { P_CERT, P_PRIV, P_PUB };

static const uint8_t DUMMY[1] = {0x41};
static const mr_tmpl_secret ZERO_SECRET;
static const mr_tmpl_secret DRY_CERT_ONLY = {.cert = {DUMMY, 1}};
static const mr_tmpl_secret DRY_MARBLE = {
    .cert = {DUMMY, 1}, .priv = {DUMMY, 1}, .pub = {DUMMY, 1}};

static const node *nd(const exec *x, uint32_t idx) { return &x->t->nodes[idx]; }
static uint32_t kid(const exec *x, const node *n, uint32_t i) { return x->t->kids[n->kid0 + i]; }

/* ---------------------------------------------------------------------------------------- */
/* errors */

/* Go's state.errorf: "template: <name>:<line>:<col>: executing "<name>" at <<ctx>>: <msg>". */
static MR_RESULT x_fail(exec *x, const char *fmt, ...) MR_PRINTF(2, 3);
static MR_RESULT x_fail(exec *x, const char *fmt, ...)
{
    char msg[MR_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    size_t pos = nd(x, x->at)->pos;
    size_t line = mr_tmpl_line_(x->t, pos);
    size_t col = pos;
    for (size_t i = pos; i > 0; i--) {
        if (x->t->src[i - 1] == '\n') {
            col = pos - i;
            break;
        }
    }
    mr_buf ctx, qname;
    mr_buf_init(&ctx, 0, 0);
    mr_buf_init(&qname, 0, 0);
    if (!mr_ok(mr_tmpl_node_string_(x->t, x->at, &ctx)) || !mr_ok(mr_buf_nul_terminate(&ctx)))
        mr_buf_free(&ctx);
    if (!mr_ok(mr_tmpl_quote_(&qname, (const uint8_t *)x->t->name, strlen(x->t->name),
                              SIZE_MAX)) ||
        !mr_ok(mr_buf_nul_terminate(&qname)))
        mr_buf_free(&qname);
    mr_error_set(MR_ERR_USAGE, __FILE__, __LINE__, "template: %s:%zu:%zu: executing %s at <%s>: %s",
                 x->t->name, line, col, qname.data ? (const char *)qname.data : "\"?\"",
                 ctx.data ? (const char *)ctx.data : "?", msg);
    mr_buf_free(&ctx);
    mr_buf_free(&qname);
    return MR_FAILURE;
}

/* Node text for messages like "can't give argument to non-function %s". */
static MR_RESULT x_fail_node(exec *x, const char *prefix, uint32_t idx)
{
    mr_buf s;
    mr_buf_init(&s, 0, 0);
    if (mr_ok(mr_tmpl_node_string_(x->t, idx, &s)) && mr_ok(mr_buf_nul_terminate(&s)))
        MR_IGNORE(x_fail(x, "%s%s", prefix, (const char *)s.data));
    else
        MR_IGNORE(x_fail(x, "%s?", prefix));
    mr_buf_free(&s);
    return MR_FAILURE;
}

static const char *type_name(const val *v)
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

static const char *fn_name(uint8_t fn)
{
    static const char *const names[] = {"?", "index", "pem", "hex", "raw", "base64", "string"};
    return fn < MR_ARRAY_LEN(names) ? names[fn] : "?";
}

/* ---------------------------------------------------------------------------------------- */
/* data model */

static mr_slice secret_part(const mr_tmpl_secret *s, enum part which)
{
    if (!s->placeholder)
        return which == P_CERT ? s->cert : which == P_PRIV ? s->priv : s->pub;
    bool generated_sym =
        !s->user_defined && s->type != NULL && strcmp(s->type, "symmetric-key") == 0;
    if (which == P_CERT && generated_sym)
        return (mr_slice){0};
    return MR_SLICE(DUMMY, 1);
}

static mr_slice vbytes(const exec *x, const val *v)
{
    if (v->scratch)
        return MR_SLICE(x->scratch.data + v->off, v->bytes.len);
    return v->bytes;
}

static val v_root(void) { return (val){.kind = V_ROOT}; }

static val v_secret(const mr_tmpl_secret *s)
{
    return (val){.kind = V_SECRET, .sec = s != NULL ? s : &ZERO_SECRET};
}

static const mr_tmpl_secret *lookup(const exec *x, int map, const uint8_t *name, size_t n)
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
        *v = (val){.kind = V_CERT, .bytes = secret_part(sec, P_CERT)};
    else if (IS("ValidFor"))
        *v = (val){.kind = V_UINT, .u = sec->valid_for};
    else if (IS("Private"))
        *v = (val){.kind = V_PRIVATE, .bytes = secret_part(sec, P_PRIV)};
    else if (IS("Public"))
        *v = (val){.kind = V_PUBLIC, .bytes = secret_part(sec, P_PUB)};
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
            return x_fail(x, "%.*s is not a method but has arguments", (int)n, s);
        const mr_tmpl_secret *sec = lookup(x, v->map, (const uint8_t *)s, n);
        *v = sec != NULL ? v_secret(sec) : (val){.kind = V_NONE};
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
            *v = v_secret(sec);
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
            return x_fail(x, "calling method %.*s of manifest.Secret is not supported", (int)n,
                          s);
        found = secret_field(s, n, v);
        break;
    case V_CERT:
        if (IS("Raw"))
            v->kind = V_BYTES;
        else
            return x_fail(x, "can't evaluate field %.*s in type manifest.Certificate (only Raw "
                          "is supported)", (int)n, s);
        break;
    default:
        found = false;
        break;
    }
#undef IS
    if (!found)
        return x_fail(x, "can't evaluate field %.*s in type %s", (int)n, s, type_name(v));
    if (has_args)
        return x_fail(x, "%.*s has arguments but cannot be invoked as function", (int)n, s);
    return MR_SUCCESS;
}

/* Go's evalFieldChain over names[from..] of node n; only the last one sees the arguments. */
static MR_RESULT eval_names(exec *x, const node *n, uint32_t from, bool has_args, val *v)
{
    for (uint32_t i = from; i < n->nnames; i++)
        MR_GUARD(eval_field(x, &x->t->names[n->name0 + i], has_args && i + 1 == n->nnames, v));
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* functions */

static MR_RESULT to_scratch(exec *x, size_t off, val *out)
{
    *out = (val){.kind = V_STRING, .scratch = true, .off = off,
                 .bytes = {.ptr = NULL, .len = x->scratch.len - off}};
    return MR_SUCCESS;
}

/* Exact size of an encoded function result. */
static size_t encoded_len(uint8_t fn, const char *label, size_t n)
{
    if (fn == FN_HEX)
        return n > SIZE_MAX / 2 ? SIZE_MAX : 2 * n;
    size_t b = mr_b64_encoded_len(n);
    if (fn == FN_BASE64)
        return b;
    return b + (b + 63) / 64 + 2 * strlen(label) + sizeof("-----BEGIN -----\n-----END -----\n") - 1;
}

static MR_RESULT check_room(const exec *x, const mr_buf *dst, size_t need)
{
    if (need > x->out_max || dst->len > x->out_max - need) {
        mr_error_set(MR_ERR_USAGE, __FILE__, __LINE__,
                     "template: %s: rendered output exceeds the limit of %zu bytes", x->t->name,
                     x->out_max);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

/* Where a function result goes: straight into the output for the action's last command
 * (no copy), else the scratch buffer. */
static MR_RESULT finish_result(exec *x, mr_buf *dst, size_t off, val *out)
{
    if (dst == x->out) {
        *out = (val){.kind = V_EMITTED};
        return MR_SUCCESS;
    }
    return to_scratch(x, off, out);
}

/* PEM block as Go's pem.EncodeToMemory writes it (64-character lines), encoded in place in
 * dst: no temporary buffer, so rendering a key costs no extra (secret) allocation. */
static MR_RESULT pem_into(mr_buf *dst, const char *label, mr_slice der)
{
    size_t start = dst->len;
    size_t b = mr_b64_encoded_len(der.len);
    size_t lines = (b + 63) / 64;
    mr_result res = MR_FAILURE;
    MR_GUARD(mr_buf_reserve(dst, encoded_len(FN_PEM, label, der.len)));
    MR_GUARD_OUT(mr_buf_append_str(dst, "-----BEGIN "));
    MR_GUARD_OUT(mr_buf_append_str(dst, label));
    MR_GUARD_OUT(mr_buf_append_str(dst, "-----\n"));
    size_t at = dst->len;
    MR_GUARD_OUT(mr_b64_encode_buf(der.ptr, der.len, MR_B64_STD, dst));
    MR_GUARD_OUT(mr_buf_reserve(dst, lines));
    for (size_t i = lines; i-- > 0;) {
        size_t k = b - 64 * i < 64 ? b - 64 * i : 64;
        uint8_t *to = dst->data + at + 65 * i;
        memmove(to, dst->data + at + 64 * i, k);
        to[k] = '\n';
    }
    dst->len += lines;
    MR_GUARD_OUT(mr_buf_append_str(dst, "-----END "));
    MR_GUARD_OUT(mr_buf_append_str(dst, label));
    MR_GUARD_OUT(mr_buf_append_str(dst, "-----\n"));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res) && dst->data != NULL) {
        OPENSSL_cleanse(dst->data + start, dst->len - start);
        dst->len = start;
    }
    return res;
}

/* EncodeSecretDataToRaw's type switch; returns the Go error text or NULL. */
static const char *raw_bytes(const val *v, mr_slice *out)
{
    switch (v->kind) {
    case V_BYTES:
    case V_PRIVATE:
    case V_PUBLIC:
    case V_CERT:
        *out = v->bytes;
        break;
    case V_SECRET:
        *out = secret_part(v->sec, P_PUB);
        break;
    case V_NONE:
    case V_NIL:
        return "secret does not exist";
    default:
        return "invalid secret type";
    }
    return out->len == 0 ? "tried to parse secret with empty value" : NULL;
}

static MR_RESULT fn_pem(exec *x, mr_buf *dst, const val *v, val *out, const char **goerr)
{
    const char *label;
    switch (v->kind) {
    case V_CERT:
        label = "CERTIFICATE";
        break;
    case V_PUBLIC:
        label = "PUBLIC KEY";
        break;
    case V_PRIVATE:
        label = "PRIVATE KEY";
        break;
    case V_NONE:
    case V_NIL:
        *goerr = "secret does not exist";
        return MR_SUCCESS;
    default:
        *goerr = "invalid secret type for pem encoding";
        return MR_SUCCESS;
    }
    if (v->bytes.len == 0) {
        *goerr = "tried to parse secret with empty value";
        return MR_SUCCESS;
    }
    size_t off = dst->len;
    MR_GUARD(check_room(x, dst, encoded_len(FN_PEM, label, v->bytes.len)));
    MR_GUARD(pem_into(dst, label, v->bytes));
    return finish_result(x, dst, off, out);
}

static MR_RESULT fn_string(const val *v, val *out, const char **goerr)
{
    static const char *const only_plain =
        "only secrets of type plain are allowed to use string encoding for environment variables";
    if (v->kind == V_NONE || v->kind == V_NIL) {
        *goerr = "secret does not exist";
        return MR_SUCCESS;
    }
    if (v->kind != V_SECRET || v->sec->type == NULL || strcmp(v->sec->type, "plain") != 0) {
        *goerr = only_plain;
        return MR_SUCCESS;
    }
    mr_slice pub = secret_part(v->sec, P_PUB);
    if (pub.len > 0 && memchr(pub.ptr, 0, pub.len) != NULL) {
        *goerr = "secret contains null bytes";
        return MR_SUCCESS;
    }
    mr_slice raw;
    *goerr = raw_bytes(v, &raw);
    if (*goerr == NULL)
        *out = (val){.kind = V_STRING, .bytes = raw};
    return MR_SUCCESS;
}

static MR_RESULT fn_encode(exec *x, mr_buf *dst, uint8_t fn, const val *v, val *out,
                           const char **goerr)
{
    mr_slice raw;
    *goerr = raw_bytes(v, &raw);
    if (*goerr != NULL)
        return MR_SUCCESS;
    if (fn == FN_RAW) {
        *out = (val){.kind = V_STRING, .bytes = raw};
        return MR_SUCCESS;
    }
    size_t off = dst->len;
    MR_GUARD(check_room(x, dst, encoded_len(fn, "", raw.len)));
    if (fn == FN_HEX)
        MR_GUARD(mr_hex_encode_buf(raw.ptr, raw.len, dst));
    else
        MR_GUARD(mr_b64_encode_buf(raw.ptr, raw.len, MR_B64_STD, dst));
    return finish_result(x, dst, off, out);
}

static bool is_int_like(const val *v)
{
    return v->kind == V_INT || v->kind == V_UINT || v->kind == V_UINT8;
}

/* One step of Go's builtin index on *item. On failure *err is the Go error text. */
static bool index_one(exec *x, val *item, const val *ix, const char **err)
{
    switch (item->kind) {
    case V_MAP: {
        if (ix->kind == V_NIL) {
            *err = "value is nil; should be of type string";
            return false;
        }
        if (ix->kind != V_STRING) {
            snprintf(x->goerr, sizeof(x->goerr), "value has type %s; should be string",
                     type_name(ix));
            *err = x->goerr;
            return false;
        }
        mr_slice key = vbytes(x, ix);
        *item = v_secret(lookup(x, item->map, key.ptr, key.len));
        return true;
    }
    case V_PUBLIC:
    case V_PRIVATE:
    case V_BYTES:
    case V_STRING: {
        if (ix->kind == V_NIL) {
            *err = "cannot index slice/array with nil";
            return false;
        }
        if (!is_int_like(ix)) {
            snprintf(x->goerr, sizeof(x->goerr), "cannot index slice/array with type %s",
                     type_name(ix));
            *err = x->goerr;
            return false;
        }
        int64_t i = ix->kind == V_INT ? ix->i : (int64_t)ix->u;
        mr_slice b = vbytes(x, item);
        if (i < 0 || (uint64_t)i > b.len) {
            snprintf(x->goerr, sizeof(x->goerr), "index out of range: %lld", (long long)i);
            *err = x->goerr;
            return false;
        }
        if ((uint64_t)i == b.len) { /* Go's check lets this through; reflect then panics */
            *err = item->kind == V_STRING ? "reflect: string index out of range"
                                          : "reflect: slice index out of range";
            return false;
        }
        *item = (val){.kind = V_UINT8, .u = b.ptr[i]};
        return true;
    }
    default:
        snprintf(x->goerr, sizeof(x->goerr), "can't index item of type %s", type_name(item));
        *err = x->goerr;
        return false;
    }
}

static MR_RESULT call_fn(exec *x, mr_buf *dst, uint8_t fn, const val *argv, size_t argc,
                         val *out, const char **goerr)
{
    *goerr = NULL;
    switch (fn) {
    case FN_INDEX:
        if (argv[0].kind == V_NIL) {
            *goerr = "index of untyped nil";
            return MR_SUCCESS;
        }
        *out = argv[0];
        for (size_t i = 1; i < argc; i++)
            if (!index_one(x, out, &argv[i], goerr))
                break;
        return MR_SUCCESS;
    case FN_PEM:
        return fn_pem(x, dst, &argv[0], out, goerr);
    case FN_STRING:
        return fn_string(&argv[0], out, goerr);
    default:
        return fn_encode(x, dst, fn, &argv[0], out, goerr);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* evaluation */

static MR_RESULT eval_pipe(exec *x, uint32_t idx, val *out);
static MR_RESULT eval_arg(exec *x, uint32_t idx, val *out);

/* Go's validateType for a missing value: both interface{} and reflect.Value parameters can
 * be nil, so "no value" becomes nil. */
static void validate(val *v)
{
    if (v->kind == V_NONE)
        *v = (val){.kind = V_NIL};
}

/* Go's evalFunction + evalCall. `cmd` is the command node (== ident when the function
 * appears as an argument, without arguments of its own). */
static MR_RESULT eval_function(exec *x, uint32_t ident, uint32_t cmd, const val *final,
                               val *out)
{
    const node *id = nd(x, ident);
    const node *c = nd(x, cmd);
    uint32_t nargs = cmd != ident ? c->nkids - 1 : 0;
    size_t num_in = nargs + (final != NULL);
    const char *name = fn_name(id->fn);
    val argv[MR_TMPL_MAX_ARGS + 1];
    x->at = ident;
    if (id->fn == FN_INDEX && num_in < 1)
        return x_fail(x, "wrong number of args for index: want at least 1 got %zu", num_in);
    if (id->fn != FN_INDEX && num_in != 1)
        return x_fail(x, "wrong number of args for %s: want 1 got %zu", name, num_in);
    for (uint32_t i = 0; i < nargs; i++)
        MR_GUARD(eval_arg(x, kid(x, c, i + 1), &argv[i]));
    if (final != NULL) {
        argv[nargs] = *final;
        validate(&argv[nargs]);
    }
    const char *goerr = NULL;
    mr_buf *dst = cmd == x->direct_cmd ? x->out : &x->scratch;
    MR_GUARD(call_fn(x, dst, id->fn, argv, num_in, out, &goerr));
    if (goerr != NULL) {
        x->at = cmd;
        return x_fail(x, "error calling %s: %s", name, goerr);
    }
    return MR_SUCCESS;
}

static MR_RESULT not_a_function(exec *x, const node *cmd, const val *final)
{
    if (cmd != NULL && (cmd->nkids > 1 || final != NULL))
        return x_fail_node(x, "can't give argument to non-function ", kid(x, cmd, 0));
    return MR_SUCCESS;
}

/* $ with optional fields. cmd/final: when the variable starts a command. */
static MR_RESULT eval_var(exec *x, uint32_t idx, const node *cmd, const val *final, val *out)
{
    const node *n = nd(x, idx);
    x->at = idx;
    *out = v_root();
    if (n->nnames == 1)
        return not_a_function(x, cmd, final);
    bool has_args = cmd != NULL && (cmd->nkids > 1 || final != NULL);
    return eval_names(x, n, 1, has_args, out);
}

/* (pipeline).A.B or function.A: the base is evaluated as an argument of unknown type. */
static MR_RESULT eval_chain(exec *x, uint32_t idx, bool has_args, val *out)
{
    const node *n = nd(x, idx);
    x->at = idx;
    uint32_t base = kid(x, n, 0);
    if (nd(x, base)->type == N_PIPE)
        MR_GUARD(eval_pipe(x, base, out));
    else
        MR_GUARD(eval_function(x, base, base, NULL, out));
    return eval_names(x, n, 0, has_args, out);
}

static val literal(const exec *x, const node *n)
{
    switch (n->type) {
    case N_BOOL:
        return (val){.kind = V_BOOL, .b = n->bval};
    case N_NUM:
        return (val){.kind = V_INT, .i = n->num};
    default: /* N_STR; an empty literal may have no storage at all */
        return (val){.kind = V_STRING,
                     .bytes = n->len > 0 ? MR_SLICE(x->t->lits.data + n->off, n->len)
                                         : (mr_slice){0}};
    }
}

/* Go's evalArg for parameters of type interface{} (secret functions) or reflect.Value
 * (index); both accept anything, including nil. */
static MR_RESULT eval_arg(exec *x, uint32_t idx, val *out)
{
    const node *n = nd(x, idx);
    x->at = idx;
    switch (n->type) {
    case N_DOT:
        *out = v_root();
        break;
    case N_NIL:
        *out = (val){.kind = V_NIL};
        return MR_SUCCESS;
    case N_FIELD:
        *out = v_root();
        MR_GUARD(eval_names(x, n, 0, false, out));
        break;
    case N_VAR:
        MR_GUARD(eval_var(x, idx, NULL, NULL, out));
        break;
    case N_PIPE:
        MR_GUARD(eval_pipe(x, idx, out));
        break;
    case N_IDENT:
        MR_GUARD(eval_function(x, idx, idx, NULL, out));
        break;
    case N_CHAIN:
        MR_GUARD(eval_chain(x, idx, false, out));
        break;
    default:
        *out = literal(x, n);
        break;
    }
    validate(out);
    return MR_SUCCESS;
}

/* Go's evalCommand; final = the value piped in from the previous command, or NULL. */
static MR_RESULT eval_command(exec *x, uint32_t idx, const val *final, val *out)
{
    const node *cmd = nd(x, idx);
    uint32_t first = kid(x, cmd, 0);
    const node *f = nd(x, first);
    bool has_args = cmd->nkids > 1 || final != NULL;
    switch (f->type) {
    case N_FIELD:
        x->at = first;
        *out = v_root();
        return eval_names(x, f, 0, has_args, out);
    case N_CHAIN:
        return eval_chain(x, first, has_args, out);
    case N_IDENT:
        return eval_function(x, first, idx, final, out);
    case N_PIPE:
        MR_GUARD(not_a_function(x, cmd, final));
        return eval_pipe(x, first, out);
    case N_VAR:
        return eval_var(x, first, cmd, final, out);
    default:
        break;
    }
    x->at = first;
    MR_GUARD(not_a_function(x, cmd, final));
    if (f->type == N_NIL)
        return x_fail(x, "nil is not a command");
    *out = f->type == N_DOT ? v_root() : literal(x, f);
    return MR_SUCCESS;
}

static MR_RESULT eval_pipe(exec *x, uint32_t idx, val *out)
{
    const node *p = nd(x, idx);
    val cur = {.kind = V_NONE}, next;
    bool have = false;
    x->at = idx;
    for (uint32_t i = 0; i < p->nkids; i++) {
        MR_GUARD(eval_command(x, kid(x, p, i), have ? &cur : NULL, &next));
        cur = next;
        have = true;
    }
    *out = cur;
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* output */

static MR_RESULT emit(exec *x, mr_buf *out, const void *p, size_t n)
{
    if (n > x->out_max || out->len > x->out_max - n) {
        mr_error_set(MR_ERR_USAGE, __FILE__, __LINE__,
                     "template: %s: rendered output exceeds the limit of %zu bytes", x->t->name,
                     x->out_max);
        return MR_FAILURE;
    }
    return mr_buf_append(out, p, n);
}

static MR_RESULT emit_str(exec *x, mr_buf *out, const char *s)
{
    return emit(x, out, s, strlen(s));
}

/* Go's fmt %v of a byte slice: [1 2 3]. */
static MR_RESULT emit_byte_list(exec *x, mr_buf *out, mr_slice b)
{
    char num[8];
    mr_result res = MR_FAILURE;
    MR_GUARD(emit_str(x, out, "["));
    for (size_t i = 0; i < b.len; i++) {
        int n = snprintf(num, sizeof(num), i > 0 ? " %u" : "%u", (unsigned)b.ptr[i]);
        MR_GUARD_OUT(emit(x, out, num, (size_t)n));
    }
    MR_GUARD_OUT(emit_str(x, out, "]"));
    res = MR_SUCCESS;
out:
    OPENSSL_cleanse(num, sizeof(num));
    return res;
}

static MR_RESULT print_val(exec *x, uint32_t action, const val *v, mr_buf *out)
{
    char num[32];
    x->at = action;
    switch (v->kind) {
    case V_NONE:
        return emit_str(x, out, "<no value>");
    case V_EMITTED:
        return MR_SUCCESS;
    case V_STRING: {
        mr_slice b = vbytes(x, v);
        return emit(x, out, b.ptr, b.len);
    }
    case V_INT:
        snprintf(num, sizeof(num), "%lld", (long long)v->i);
        return emit_str(x, out, num);
    case V_UINT:
    case V_UINT8: { /* a byte picked out of a key with index: wipe the digits */
        snprintf(num, sizeof(num), "%llu", (unsigned long long)v->u);
        mr_result r = emit_str(x, out, num);
        OPENSSL_cleanse(num, sizeof(num));
        return r;
    }
    case V_BOOL:
        return emit_str(x, out, v->b ? "true" : "false");
    case V_PUBLIC:
    case V_PRIVATE:
    case V_BYTES:
        return emit_byte_list(x, out, v->bytes);
    default:
        return x_fail(x, "printing a value of type %s is not supported; use one of the "
                      "functions pem, hex, base64, %s", type_name(v),
                      x->t->mode == MR_TMPL_FILES ? "raw" : "string");
    }
}

MR_RESULT mr_tmpl_render(const mr_tmpl *t, const mr_tmpl_data *data, unsigned flags,
                         mr_buf *out)
{
    mr_result res = MR_FAILURE;
    MR_ENSURE_REF(t);
    MR_ENSURE_REF(out);
    size_t start = out->len;
    exec x = {.t = t, .data = data, .dry = (flags & MR_TMPL_DRY_RUN) != 0, .out = out,
              .direct_cmd = NONE};
    x.out_max = out->max != 0 ? out->max : MR_BUF_MAX_DEFAULT;
    mr_buf_init(&x.scratch, x.out_max, MR_BUF_SECRET);
    for (uint32_t i = 0; i < t->nroot; i++) {
        uint32_t idx = t->kids[t->root0 + i];
        const node *n = &t->nodes[idx];
        if (n->type == N_TEXT) {
            MR_GUARD_OUT(emit(&x, out, t->src + n->off, n->len));
            continue;
        }
        val v;
        const node *pipe = &t->nodes[kid(&x, n, 0)];
        x.direct_cmd = kid(&x, pipe, pipe->nkids - 1);
        MR_GUARD_OUT(eval_pipe(&x, kid(&x, n, 0), &v));
        MR_GUARD_OUT(print_val(&x, idx, &v, out));
        mr_buf_reset(&x.scratch);
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&x.scratch);
    if (!mr_ok(res) && out->data != NULL) {
        OPENSSL_cleanse(out->data + start, out->len - start);
        out->len = start;
    }
    return res;
}

MR_RESULT mr_tmpl_check(const char *name, const uint8_t *src, size_t len, mr_tmpl_mode mode,
                        const mr_tmpl_data *data)
{
    static const mr_tmpl_data no_data;
    mr_result res = MR_FAILURE;
    mr_tmpl *t = NULL;
    mr_buf sink;
    mr_buf_init(&sink, 0, MR_BUF_SECRET);
    MR_GUARD_OUT(mr_tmpl_parse(name, src, len, mode, &t));
    MR_GUARD_OUT(mr_tmpl_render(t, data != NULL ? data : &no_data, MR_TMPL_DRY_RUN, &sink));
    res = MR_SUCCESS;
out:
    mr_buf_free(&sink);
    mr_tmpl_free(t);
    return res;
}
