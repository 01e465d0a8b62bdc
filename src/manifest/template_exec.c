/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Template engine, part 2: execution (see template.h): Go's evaluation of pipelines,
 * commands and arguments, printing, and the execution errors. The values and the data model
 * are template_exec_int.h and template_data.c, the functions template_fn.c.
 */
#include "manifest/template_exec_int.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


/* ---------------------------------------------------------------------------------------- */
/* errors */

MR_RESULT mr_tmpl_x_fail_(exec *x, const char *fmt, ...)
{
    mr_result res = MR_FAILURE;
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
    MR_BAIL_OUT(MR_ERR_USAGE, "template: %s:%zu:%zu: executing %s at <%s>: %s", x->t->name, line,
                col, qname.data ? (const char *)qname.data : "\"?\"",
                ctx.data ? (const char *)ctx.data : "?", msg);
out:
    mr_buf_free(&ctx);
    mr_buf_free(&qname);
    return res;
}

/* Node text for messages like "can't give argument to non-function %s". */
static MR_RESULT x_fail_node(exec *x, const char *prefix, uint32_t idx)
{
    mr_buf s;
    mr_buf_init(&s, 0, 0);
    bool named = mr_ok(mr_tmpl_node_string_(x->t, idx, &s)) && mr_ok(mr_buf_nul_terminate(&s));
    mr_result res = named ? mr_tmpl_x_fail_(x, "%s%s", prefix, (const char *)s.data)
                          : mr_tmpl_x_fail_(x, "%s?", prefix);
    mr_buf_free(&s);
    return res;
}

static const char *fn_name(uint8_t fn)
{
    static const char *const names[] = {"?", "index", "pem", "hex", "raw", "base64", "string"};
    return fn < MR_ARRAY_LEN(names) ? names[fn] : "?";
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
        return mr_tmpl_x_fail_(x, "wrong number of args for index: want at least 1 got %zu",
                               num_in);
    if (id->fn != FN_INDEX && num_in != 1)
        return mr_tmpl_x_fail_(x, "wrong number of args for %s: want 1 got %zu", name, num_in);
    for (uint32_t i = 0; i < nargs; i++)
        MR_GUARD(eval_arg(x, kid(x, c, i + 1), &argv[i]));
    if (final != NULL) {
        argv[nargs] = *final;
        validate(&argv[nargs]);
    }
    const char *goerr = NULL;
    mr_buf *dst = cmd == x->direct_cmd ? x->out : &x->scratch;
    MR_GUARD(mr_tmpl_call_fn_(x, dst, id->fn, argv, num_in, out, &goerr));
    if (goerr != NULL) {
        x->at = cmd;
        return mr_tmpl_x_fail_(x, "error calling %s: %s", name, goerr);
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
    return mr_tmpl_eval_names_(x, n, 1, has_args, out);
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
    return mr_tmpl_eval_names_(x, n, 0, has_args, out);
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
        MR_GUARD(mr_tmpl_eval_names_(x, n, 0, false, out));
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
        return mr_tmpl_eval_names_(x, f, 0, has_args, out);
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
        return mr_tmpl_x_fail_(x, "nil is not a command");
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

MR_RESULT mr_tmpl_check_room_(const exec *x, const mr_buf *dst, size_t need)
{
    MR_ENSURE(need <= x->out_max && dst->len <= x->out_max - need, MR_ERR_USAGE,
              "template: %s: rendered output exceeds the limit of %zu bytes", x->t->name,
              x->out_max);
    return MR_SUCCESS;
}

static MR_RESULT emit(exec *x, mr_buf *out, const void *p, size_t n)
{
    MR_GUARD(mr_tmpl_check_room_(x, out, n));
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
        mr_slice b = mr_tmpl_vbytes_(x, v);
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
        return mr_tmpl_x_fail_(x, "printing a value of type %s is not supported; use one of the "
                               "functions pem, hex, base64, %s", mr_tmpl_type_name_(v),
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
