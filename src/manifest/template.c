/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Template engine, part 2: the parser and the public parse API (see template.h).
 *
 * A recursive-descent parser with the grammar and error texts of Go's text/template/parse
 * builds a flat node array from the tokens of template_lex.c; execution lives in
 * template_exec.c. The three files share the private declarations at the end of template.h
 * (visible only with MR_TMPL_INTERNAL).
 */
#define MR_TMPL_INTERNAL 1
#include "manifest/template.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/text.h"

#define vec_push mr_tmpl_vec_push_

/* ---------------------------------------------------------------------------------------- */
/* parser */

#define MAX_ARGS MR_TMPL_MAX_ARGS
#define MAX_CMDS MR_TMPL_MAX_CMDS

typedef struct parser {
    mr_tmpl *t;
    const token *toks;
    uint32_t ntoks;
    uint32_t i;    /* next token */
    uint32_t seen; /* furthest token looked at (Go's token[0]) */
    const char *lexerr;
    size_t action_line; /* 0 outside actions */
    int depth;
} parser;

static const token *p_tok(parser *p, uint32_t i)
{
    if (i >= p->ntoks)
        i = p->ntoks - 1; /* the last token is EOF or ERROR */
    if (i > p->seen)
        p->seen = i;
    return &p->toks[i];
}

static const token *p_next(parser *p) { return p_tok(p, p->i < p->ntoks ? p->i++ : p->i); }
static const token *p_peek(parser *p) { return p_tok(p, p->i); }
static void p_backup(parser *p) { p->i--; }

static const token *p_next_nonspace(parser *p)
{
    const token *t;
    do
        t = p_next(p);
    while (t->type == TK_SPACE);
    return t;
}

static const token *p_peek_nonspace(parser *p)
{
    const token *t = p_next_nonspace(p);
    p_backup(p);
    return t;
}

size_t mr_tmpl_line_(const mr_tmpl *t, size_t pos)
{
    size_t line = 1;
    for (size_t i = 0; i < pos && i < t->src_len; i++)
        line += t->src[i] == '\n';
    return line;
}

/* Go's Tree.errorf: "template: <name>:<line>: <msg>", line of the furthest token. */
static MR_RESULT p_fail(parser *p, const char *fmt, ...) MR_PRINTF(2, 3);
static MR_RESULT p_fail(parser *p, const char *fmt, ...)
{
    char msg[MR_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    const token *t = &p->toks[p->seen < p->ntoks ? p->seen : p->ntoks - 1];
    MR_BAIL(MR_ERR_USAGE, "template: %s:%zu: %s", p->t->name, mr_tmpl_line_(p->t, t->pos), msg);
}

/* Go's item.String() for "unexpected %s in %s". */
static MR_RESULT token_desc(parser *p, const token *t, mr_buf *b)
{
    const uint8_t *s = p->t->src + t->pos;
    switch (t->type) {
    case TK_EOF:
        return mr_buf_append_str(b, "EOF");
    case TK_ERROR:
        return mr_buf_append_str(b, p->lexerr);
    case TK_KEYWORD:
    case TK_DOT:
    case TK_NIL:
        MR_GUARD(mr_buf_append_u8(b, '<'));
        MR_GUARD(mr_buf_append(b, s, t->len));
        return mr_buf_append_u8(b, '>');
    default:
        break;
    }
    if (t->len > 10) {
        MR_GUARD(mr_tmpl_quote_(b, s, t->len, 10));
        return mr_buf_append_str(b, "...");
    }
    return mr_tmpl_quote_(b, s, t->len, SIZE_MAX);
}

static MR_RESULT p_unexpected(parser *p, const token *t, const char *context)
{
    mr_buf d;
    mr_buf_init(&d, 0, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(token_desc(p, t, &d));
    MR_GUARD_OUT(mr_buf_nul_terminate(&d));
    if (t->type == TK_ERROR) {
        size_t line = mr_tmpl_line_(p->t, t->pos);
        if (p->action_line != 0 && p->action_line != line) {
            size_t n = strlen(p->lexerr);
            bool ends_action = n >= 7 && strcmp(p->lexerr + n - 7, " action") == 0;
            res = p_fail(p, "%s%s started at %s:%zu", (const char *)d.data,
                         ends_action ? "" : " in action", p->t->name, p->action_line);
        } else {
            res = p_fail(p, "%s", (const char *)d.data);
        }
    } else {
        res = p_fail(p, "unexpected %s in %s", (const char *)d.data, context);
    }
out:
    mr_buf_free(&d);
    return res;
}

static MR_RESULT p_node(parser *p, const node *n, uint32_t *out)
{
    *out = p->t->nnodes;
    return vec_push((void **)&p->t->nodes, &p->t->nnodes, &p->t->capnodes, sizeof(node), n);
}

static MR_RESULT p_kids(parser *p, const uint32_t *kids, uint32_t n, uint32_t *first)
{
    *first = p->t->nkids;
    for (uint32_t i = 0; i < n; i++)
        MR_GUARD(vec_push((void **)&p->t->kids, &p->t->nkids, &p->t->capkids, sizeof(uint32_t),
                          &kids[i]));
    return MR_SUCCESS;
}

static MR_RESULT p_name(parser *p, uint32_t off, uint32_t len)
{
    span s = {.off = off, .len = len};
    return vec_push((void **)&p->t->names, &p->t->nnames, &p->t->capnames, sizeof(span), &s);
}

static MR_RESULT p_pipeline(parser *p, const char *context, tok_type end, uint32_t *out);

static const char *const UNSUPPORTED_FUNCS[] = {
    "and", "call", "html", "js", "len", "not", "or", "print", "printf", "println",
    "urlquery", "eq", "ne", "lt", "le", "gt", "ge", "slice", NULL};

/* Resolves a function name for the template's mode; fails like Go for unknown names. */
static MR_RESULT p_function(parser *p, const token *t, uint8_t *fn)
{
    const char *s = (const char *)p->t->src + t->pos;
    size_t n = t->len;
#define IS(w) (n == sizeof(w) - 1 && memcmp(s, w, n) == 0)
    if (IS("index"))
        *fn = FN_INDEX;
    else if (IS("pem"))
        *fn = FN_PEM;
    else if (IS("hex"))
        *fn = FN_HEX;
    else if (IS("base64"))
        *fn = FN_BASE64;
    else if (IS("raw") && p->t->mode == MR_TMPL_FILES)
        *fn = FN_RAW;
    else if (IS("string") && p->t->mode == MR_TMPL_ENV)
        *fn = FN_STRING;
    else
        *fn = FN_NONE;
#undef IS
    if (*fn != FN_NONE)
        return MR_SUCCESS;
    for (size_t i = 0; UNSUPPORTED_FUNCS[i] != NULL; i++)
        if (strlen(UNSUPPORTED_FUNCS[i]) == n && memcmp(s, UNSUPPORTED_FUNCS[i], n) == 0)
            return p_fail(p, "function \"%.*s\" is not supported (only pem, hex, base64, %s "
                          "and index)", (int)n, s, p->t->mode == MR_TMPL_FILES ? "raw" : "string");
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(mr_tmpl_quote_(&q, (const uint8_t *)s, n, SIZE_MAX));
    MR_GUARD_OUT(mr_buf_nul_terminate(&q));
    res = p_fail(p, "function %s not defined", (const char *)q.data);
out:
    mr_buf_free(&q);
    return res;
}

/* Decodes a Go string literal (strconv.Unquote) into the literal pool. */
static MR_RESULT p_unquote(parser *p, const token *t, uint32_t *off, uint32_t *len)
{
    mr_buf *lits = &p->t->lits;
    const uint8_t *s = p->t->src + t->pos;
    size_t n = t->len;
    *off = (uint32_t)lits->len;
    if (s[0] == '`') {
        for (size_t i = 1; i + 1 < n; i++)
            if (s[i] != '\r')
                MR_GUARD(mr_buf_append_u8(lits, s[i]));
        *len = (uint32_t)(lits->len - *off);
        return MR_SUCCESS;
    }
    for (size_t i = 1; i + 1 < n;) {
        uint8_t c = s[i];
        if (c != '\\') {
            MR_GUARD(mr_buf_append_u8(lits, c));
            i++;
            continue;
        }
        uint8_t e = s[i + 1];
        const char *simple = strchr("abfnrtv\\\"", e);
        if (e != 0 && simple != NULL) {
            static const uint8_t val[] = {'\a', '\b', '\f', '\n', '\r', '\t', '\v', '\\', '"'};
            MR_GUARD(mr_buf_append_u8(lits, val[simple - "abfnrtv\\\""]));
            i += 2;
            continue;
        }
        size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        uint32_t v = 0;
        if (digits != 0) {
            if (i + 2 + digits > n - 1)
                return p_fail(p, "invalid syntax");
            for (size_t k = 0; k < digits; k++) {
                uint8_t h = s[i + 2 + k];
                int d = mr_hex_digit(h);
                if (d < 0)
                    return p_fail(p, "invalid syntax");
                v = (v << 4) | (uint32_t)d;
            }
            i += 2 + digits;
        } else if (e >= '0' && e <= '7') {
            if (i + 4 > n - 1)
                return p_fail(p, "invalid syntax");
            for (size_t k = 0; k < 3; k++) {
                uint8_t o = s[i + 1 + k];
                if (o < '0' || o > '7')
                    return p_fail(p, "invalid syntax");
                v = (v << 3) | (uint32_t)(o - '0');
            }
            if (v > 255)
                return p_fail(p, "invalid syntax");
            i += 4;
        } else {
            return p_fail(p, "invalid syntax");
        }
        if (e == 'x' || (e >= '0' && e <= '7')) {
            MR_GUARD(mr_buf_append_u8(lits, (uint8_t)v));
            continue;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return p_fail(p, "invalid syntax");
        MR_GUARD(mr_utf8_append(lits, v));
    }
    *len = (uint32_t)(lits->len - *off);
    return MR_SUCCESS;
}

/* Number constants: decimal integers that fit int64 only. */
static MR_RESULT p_number(parser *p, const token *t, int64_t *out)
{
    const uint8_t *s = p->t->src + t->pos;
    size_t n = t->len, i = 0;
    bool neg = false;
    if (t->type == TK_CHARCONST)
        return p_fail(p, "character constants are not supported");
    if (n > 0 && (s[0] == '+' || s[0] == '-'))
        neg = s[i++] == '-';
    bool ok = t->type == TK_NUMBER && i < n;
    uint64_t v = 0;
    for (size_t k = i; ok && k < n; k++) {
        if (s[k] < '0' || s[k] > '9' || v > (UINT64_C(1) << 63) / 10)
            ok = false;
        else
            v = v * 10 + (uint64_t)(s[k] - '0');
    }
    if (ok && v <= (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
        *out = neg ? (int64_t)(0 - v) : (int64_t)v;
        return MR_SUCCESS;
    }
    bool any_digit = false;
    for (size_t k = 0; k < n; k++)
        any_digit |= s[k] >= '0' && s[k] <= '9';
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(mr_tmpl_quote_(&q, s, n, SIZE_MAX));
    MR_GUARD_OUT(mr_buf_nul_terminate(&q));
    if (!any_digit)
        res = p_fail(p, "illegal number syntax: %s", (const char *)q.data);
    else
        res = p_fail(p, "number %s is not supported (only decimal integers)",
                     (const char *)q.data);
out:
    mr_buf_free(&q);
    return res;
}

/* "undefined variable $x" for a variable token other than "$"; always fails. */
static MR_RESULT undefined_variable(parser *p, const token *t)
{
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(mr_tmpl_quote_(&q, p->t->src + t->pos, t->len, SIZE_MAX));
    MR_GUARD_OUT(mr_buf_nul_terminate(&q));
    res = p_fail(p, "undefined variable %s", (const char *)q.data);
out:
    mr_buf_free(&q);
    return res;
}

/* "unexpected . after term X" for a field access on a constant or dot; always fails. */
static MR_RESULT unexpected_dot(parser *p, uint32_t term)
{
    mr_buf s, q;
    mr_buf_init(&s, 0, 0);
    mr_buf_init(&q, 0, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(mr_tmpl_node_string_(p->t, term, &s));
    MR_GUARD_OUT(mr_tmpl_quote_(&q, s.data, s.len, SIZE_MAX));
    MR_GUARD_OUT(mr_buf_nul_terminate(&q));
    res = p_fail(p, "unexpected . after term %s", (const char *)q.data);
out:
    mr_buf_free(&s);
    mr_buf_free(&q);
    return res;
}

/* Go's Tree.term: one operand without trailing fields; *out = NONE when none starts here. */
static MR_RESULT p_term(parser *p, uint32_t *out)
{
    const token *t = p_next_nonspace(p);
    node n = {.pos = t->pos, .src_off = t->pos, .src_len = t->len};
    *out = NONE;
    switch (t->type) {
    case TK_IDENT:
        n.type = N_IDENT;
        MR_GUARD(p_function(p, t, &n.fn));
        n.name0 = p->t->nnames;
        n.nnames = 1;
        MR_GUARD(p_name(p, t->pos, t->len));
        break;
    case TK_DOT:
        n.type = N_DOT;
        break;
    case TK_NIL:
        n.type = N_NIL;
        break;
    case TK_VAR:
        if (t->len != 1)
            return undefined_variable(p, t);
        n.type = N_VAR;
        n.name0 = p->t->nnames;
        n.nnames = 1;
        MR_GUARD(p_name(p, t->pos, t->len));
        break;
    case TK_FIELD:
        n.type = N_FIELD;
        n.name0 = p->t->nnames;
        n.nnames = 1;
        MR_GUARD(p_name(p, t->pos + 1, t->len - 1));
        break;
    case TK_BOOL:
        n.type = N_BOOL;
        n.bval = t->len == 4;
        break;
    case TK_NUMBER:
    case TK_COMPLEX:
    case TK_CHARCONST:
        n.type = N_NUM;
        MR_GUARD(p_number(p, t, &n.num));
        break;
    case TK_STRING:
    case TK_RAWSTRING:
        n.type = N_STR;
        MR_GUARD(p_unquote(p, t, &n.off, &n.len));
        break;
    case TK_LPAREN:
        if (++p->depth > MR_TMPL_DEPTH_MAX)
            return p_fail(p, "max expression depth exceeded");
        MR_GUARD(p_pipeline(p, "parenthesized pipeline", TK_RPAREN, out));
        p->depth--;
        return MR_SUCCESS;
    default:
        p_backup(p);
        return MR_SUCCESS;
    }
    return p_node(p, &n, out);
}

/* Go's Tree.operand: a term followed by field accesses. */
static MR_RESULT p_operand(parser *p, uint32_t *out)
{
    MR_GUARD(p_term(p, out));
    if (*out == NONE || p_peek(p)->type != TK_FIELD)
        return MR_SUCCESS;
    uint32_t chain_pos = p_peek(p)->pos;
    uint32_t first = p->t->nnames;
    while (p_peek(p)->type == TK_FIELD) {
        const token *f = p_next(p);
        MR_GUARD(p_name(p, f->pos + 1, f->len - 1));
    }
    uint32_t added = p->t->nnames - first;
    node *base = &p->t->nodes[*out];
    switch (base->type) {
    case N_FIELD:
    case N_VAR:
        /* the base's single name sits right before the new ones */
        base->nnames += added;
        base->pos = chain_pos;
        return MR_SUCCESS;
    case N_BOOL:
    case N_STR:
    case N_NUM:
    case N_NIL:
    case N_DOT:
        return unexpected_dot(p, *out);
    default:
        break;
    }
    node chain = {.type = N_CHAIN, .pos = chain_pos, .name0 = first, .nnames = added};
    MR_GUARD(p_kids(p, out, 1, &chain.kid0));
    chain.nkids = 1;
    return p_node(p, &chain, out);
}

static MR_RESULT p_command(parser *p, uint32_t *out)
{
    uint32_t args[MAX_ARGS] = {0};
    uint32_t nargs = 0;
    node cmd = {.type = N_CMD, .pos = p_peek_nonspace(p)->pos};
    for (;;) {
        p_peek_nonspace(p);
        uint32_t op;
        MR_GUARD(p_operand(p, &op));
        if (op != NONE) {
            if (nargs == MAX_ARGS)
                return p_fail(p, "too many arguments in command (limit %d)", MAX_ARGS);
            args[nargs++] = op;
        }
        const token *t = p_next(p);
        if (t->type == TK_SPACE)
            continue;
        if (t->type == TK_RDELIM || t->type == TK_RPAREN)
            p_backup(p);
        else if (t->type != TK_PIPE)
            return p_unexpected(p, t, "operand");
        break;
    }
    if (nargs == 0)
        return p_fail(p, "empty command");
    MR_GUARD(p_kids(p, args, nargs, &cmd.kid0));
    cmd.nkids = nargs;
    return p_node(p, &cmd, out);
}

static bool non_executable(uint8_t type)
{
    return type == N_BOOL || type == N_DOT || type == N_NIL || type == N_NUM || type == N_STR;
}

static MR_RESULT p_pipeline(parser *p, const char *context, tok_type end, uint32_t *out)
{
    uint32_t cmds[MAX_CMDS] = {0};
    uint32_t ncmds = 0;
    *out = NONE;
    const token *first = p_peek_nonspace(p);
    node pipe = {.type = N_PIPE, .pos = first->pos};
    if (first->type == TK_VAR) {
        /* declarations ($x := ...) need range/with to be useful; not supported */
        uint32_t save = p->i;
        p_next_nonspace(p);
        const token *after = p_peek_nonspace(p);
        if (after->type == TK_DECLARE || after->type == TK_ASSIGN)
            return p_fail(p, "variable declarations are not supported");
        p->i = save;
    }
    for (;;) {
        const token *t = p_next_nonspace(p);
        if (t->type == end)
            break;
        switch (t->type) {
        case TK_BOOL:
        case TK_CHARCONST:
        case TK_COMPLEX:
        case TK_DOT:
        case TK_FIELD:
        case TK_IDENT:
        case TK_NUMBER:
        case TK_NIL:
        case TK_RAWSTRING:
        case TK_STRING:
        case TK_VAR:
        case TK_LPAREN:
            p_backup(p);
            if (ncmds == MAX_CMDS)
                return p_fail(p, "pipeline too long");
            MR_GUARD(p_command(p, &cmds[ncmds]));
            ncmds++;
            continue;
        default:
            return p_unexpected(p, t, context);
        }
    }
    if (ncmds == 0)
        return p_fail(p, "missing value for %s", context);
    for (uint32_t i = 1; i < ncmds; i++) {
        const node *c = &p->t->nodes[cmds[i]];
        if (non_executable(p->t->nodes[p->t->kids[c->kid0]].type))
            return p_fail(p, "non executable command in pipeline stage %u", i + 1);
    }
    MR_GUARD(p_kids(p, cmds, ncmds, &pipe.kid0));
    pipe.nkids = ncmds;
    return p_node(p, &pipe, out);
}

/* Keywords outside a pipeline. Go would accept if/range/with/define/template/block; we do
 * not implement them. A stray end/else and break/continue fail as in Go (there is never an
 * enclosing if or range). */
static MR_RESULT p_keyword(parser *p, const token *t)
{
    const char *w = (const char *)p->t->src + t->pos;
    int n = (int)t->len;
#define KW(s) (t->len == sizeof(s) - 1 && memcmp(w, s, t->len) == 0)
    if (KW("end") || KW("else") || KW("break") || KW("continue")) {
        const token *r = p_next_nonspace(p);
        bool else_if = KW("else") && r->type == TK_KEYWORD &&
                       ((r->len == 2 && memcmp(p->t->src + r->pos, "if", 2) == 0) ||
                        (r->len == 4 && memcmp(p->t->src + r->pos, "with", 4) == 0));
        if (r->type != TK_RDELIM && !else_if) {
            char ctx[16];
            snprintf(ctx, sizeof(ctx), KW("break") || KW("continue") ? "{{%.*s}}" : "%.*s", n,
                     w);
            return p_unexpected(p, r, ctx);
        }
        if (KW("break") || KW("continue"))
            return p_fail(p, "{{%.*s}} outside {{range}}", n, w);
        return p_fail(p, "unexpected {{%.*s}}", n, w);
    }
#undef KW
    return p_fail(p, "{{%.*s}} actions are not supported (only output of field chains, index "
                  "and the secret functions)", n, w);
}

static MR_RESULT p_action(parser *p, uint32_t *out)
{
    const token *t = p_next_nonspace(p);
    if (t->type == TK_KEYWORD)
        return p_keyword(p, t);
    p_backup(p);
    uint32_t pipe = NONE;
    MR_GUARD(p_pipeline(p, "command", TK_RDELIM, &pipe));
    node a = {.type = N_ACTION, .pos = p->t->nodes[pipe].pos, .nkids = 1};
    MR_GUARD(p_kids(p, &pipe, 1, &a.kid0));
    return p_node(p, &a, out);
}

static MR_RESULT parse_all(parser *p)
{
    uint32_t *top = NULL;
    uint32_t ntop = 0, captop = 0;
    mr_result res = MR_FAILURE;
    for (;;) {
        const token *t = p_next(p);
        uint32_t idx;
        if (t->type == TK_EOF)
            break;
        if (t->type == TK_TEXT) {
            node n = {.type = N_TEXT, .pos = t->pos, .off = t->pos, .len = t->len};
            MR_GUARD_OUT(p_node(p, &n, &idx));
        } else if (t->type == TK_LDELIM) {
            p->action_line = mr_tmpl_line_(p->t, t->pos);
            MR_GUARD_OUT(p_action(p, &idx));
            p->action_line = 0;
            p->t->has_actions = true;
        } else {
            MR_GUARD_OUT(p_unexpected(p, t, "input"));
            break;
        }
        MR_GUARD_OUT(vec_push((void **)&top, &ntop, &captop, sizeof(uint32_t), &idx));
    }
    MR_GUARD_OUT(p_kids(p, top, ntop, &p->t->root0));
    p->t->nroot = ntop;
    res = MR_SUCCESS;
out:
    mr_free(top);
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* node strings (Go's Node.String, used in error contexts) */

static MR_RESULT names_string(const mr_tmpl *t, const node *n, uint32_t from, mr_buf *b)
{
    for (uint32_t i = from; i < n->nnames; i++) {
        const span *s = &t->names[n->name0 + i];
        MR_GUARD(mr_buf_append_u8(b, '.'));
        MR_GUARD(mr_buf_append(b, t->src + s->off, s->len));
    }
    return MR_SUCCESS;
}

MR_RESULT mr_tmpl_node_string_(const mr_tmpl *t, uint32_t idx, mr_buf *b)
{
    const node *n = &t->nodes[idx];
    switch (n->type) {
    case N_TEXT:
        return mr_tmpl_quote_(b, t->src + n->off, n->len, SIZE_MAX);
    case N_ACTION:
        MR_GUARD(mr_buf_append_str(b, "{{"));
        MR_GUARD(mr_tmpl_node_string_(t, t->kids[n->kid0], b));
        return mr_buf_append_str(b, "}}");
    case N_PIPE:
        for (uint32_t i = 0; i < n->nkids; i++) {
            if (i > 0)
                MR_GUARD(mr_buf_append_str(b, " | "));
            MR_GUARD(mr_tmpl_node_string_(t, t->kids[n->kid0 + i], b));
        }
        return MR_SUCCESS;
    case N_CMD:
        for (uint32_t i = 0; i < n->nkids; i++) {
            uint32_t k = t->kids[n->kid0 + i];
            bool paren = t->nodes[k].type == N_PIPE;
            if (i > 0)
                MR_GUARD(mr_buf_append_u8(b, ' '));
            if (paren)
                MR_GUARD(mr_buf_append_u8(b, '('));
            MR_GUARD(mr_tmpl_node_string_(t, k, b));
            if (paren)
                MR_GUARD(mr_buf_append_u8(b, ')'));
        }
        return MR_SUCCESS;
    case N_FIELD:
        return names_string(t, n, 0, b);
    case N_VAR: {
        const span *s = &t->names[n->name0];
        MR_GUARD(mr_buf_append(b, t->src + s->off, s->len));
        return names_string(t, n, 1, b);
    }
    case N_CHAIN: {
        uint32_t k = t->kids[n->kid0];
        bool paren = t->nodes[k].type == N_PIPE;
        if (paren)
            MR_GUARD(mr_buf_append_u8(b, '('));
        MR_GUARD(mr_tmpl_node_string_(t, k, b));
        if (paren)
            MR_GUARD(mr_buf_append_u8(b, ')'));
        return names_string(t, n, 0, b);
    }
    case N_DOT:
        return mr_buf_append_u8(b, '.');
    case N_NIL:
        return mr_buf_append_str(b, "nil");
    case N_BOOL:
        return mr_buf_append_str(b, n->bval ? "true" : "false");
    default: /* N_IDENT, N_NUM, N_STR: the source text */
        return mr_buf_append(b, t->src + n->src_off, n->src_len);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* public */

void mr_tmpl_free(mr_tmpl *t)
{
    if (t == NULL)
        return;
    mr_free(t->src);
    mr_free(t->name);
    mr_free(t->nodes);
    mr_free(t->kids);
    mr_free(t->names);
    mr_buf_free(&t->lits);
    mr_free(t);
}

bool mr_tmpl_is_static(const mr_tmpl *t) { return t != NULL && !t->has_actions; }

MR_RESULT mr_tmpl_parse(const char *name, const uint8_t *src, size_t len, mr_tmpl_mode mode,
                        mr_tmpl **out)
{
    mr_result res = MR_FAILURE;
    mr_tmpl *t = NULL;
    token *toks = NULL;
    uint32_t ntoks = 0;
    mr_buf errmsg;
    mr_buf_init(&errmsg, 0, 0);
    MR_ENSURE_REF(out);
    MR_ENSURE(src != NULL || len == 0, MR_ERR_INTERNAL, "internal error: src is NULL");
    if (name == NULL)
        name = MR_TMPL_NAME;
    MR_ENSURE(mode == MR_TMPL_FILES || mode == MR_TMPL_ENV, MR_ERR_INTERNAL,
              "internal error: bad template mode");
    MR_ENSURE(len <= MR_TMPL_SOURCE_MAX, MR_ERR_USAGE,
              "template: %s: template too large (limit %zu bytes)", name, MR_TMPL_SOURCE_MAX);

    t = mr_calloc(1, sizeof(*t));
    MR_ENSURE_ALLOC(t);
    mr_buf_init(&t->lits, 0, 0);
    t->mode = mode;
    t->name = mr_strdup(name);
    MR_ENSURE_ALLOC_OUT(t->name);
    t->src = mr_alloc(len + 1);
    MR_ENSURE_ALLOC_OUT(t->src);
    if (len > 0)
        memcpy(t->src, src, len);
    t->src[len] = 0;
    t->src_len = len;

    MR_GUARD_OUT(mr_tmpl_lex_(t->src, len, &toks, &ntoks, &errmsg));

    parser p = {.t = t, .toks = toks, .ntoks = ntoks,
                .lexerr = errmsg.data ? (const char *)errmsg.data : ""};
    MR_GUARD_OUT(parse_all(&p));
    *out = t;
    t = NULL;
    res = MR_SUCCESS;
out:
    mr_free(toks);
    mr_buf_free(&errmsg);
    mr_tmpl_free(t);
    return res;
}

const mr_tmpl_secret *mr_tmpl_table_lookup(void *table, const char *name, size_t name_len)
{
    const mr_tmpl_secret_table *tab = table;
    if (tab == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < tab->count; i++) {
        const char *n = tab->entries[i].name;
        if (n != NULL && strlen(n) == name_len && memcmp(n, name, name_len) == 0)
            return &tab->entries[i].secret;
    }
    return NULL;
}
