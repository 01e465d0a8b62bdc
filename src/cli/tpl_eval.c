/* SPDX-License-Identifier: Apache-2.0 */
/* Template pipelines: operands, commands, and the Helm/sprig functions of tpl.h. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/tpl_int.h"
#include "common/alloc.h"
#include "common/codec.h"

#define ARGS_MAX 16

typedef struct lex {
    tpl_ctx *c;
    const char *p, *end;
} lex;

static void skip_ws(lex *l)
{
    while (l->p < l->end && isspace((unsigned char)*l->p))
        l->p++;
}

static bool at(lex *l, char ch)
{
    skip_ws(l);
    return l->p < l->end && *l->p == ch;
}

#define FAIL(l, ...)                                                                          \
    MR_BAIL(MR_ERR_USAGE, "template: %s:%d: %s", (l)->c->name, (l)->c->line,                 \
            (snprintf(fail_msg, sizeof(fail_msg), __VA_ARGS__), fail_msg))
static _Thread_local char fail_msg[256];

bool mr_tpl_truthy(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0;
    case JSON_TRUE:
        return true;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return false;
    }
}

/* Go's %v of a value; nil as nil_text. */
static MR_RESULT strval(mr_buf *out, const json_t *v, const char *nil_text)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return mr_buf_append(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return mr_buf_printf(out, "%lld", (long long)json_integer_value(v));
    case JSON_REAL: {
        double d = json_real_value(v);
        if (d == (double)(long long)d && d < 1e21 && d > -1e21)
            return mr_buf_printf(out, "%lld", (long long)d);
        return mr_buf_printf(out, "%g", d);
    }
    case JSON_TRUE:
        return mr_buf_append_str(out, "true");
    case JSON_FALSE:
        return mr_buf_append_str(out, "false");
    case JSON_NULL:
        return mr_buf_append_str(out, nil_text);
    default: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        MR_ENSURE_ALLOC(s);
        mr_result r = mr_buf_append_str(out, s);
        free(s); /* check-source: allow alloc -- jansson's allocation */
        return r;
    }
    }
}

MR_RESULT mr_tpl_print(mr_buf *out, const json_t *v)
{
    return strval(out, v, ""); /* Helm writes "<no value>" as nothing */
}

static MR_RESULT new_string(mr_buf *b, json_t **out)
{
    *out = json_stringn(b->data ? (const char *)b->data : "", b->len);
    mr_buf_free(b);
    MR_ENSURE(*out != NULL, MR_ERR_USAGE, "template: value is not valid UTF-8");
    return MR_SUCCESS;
}

/* Go's strconv.Quote for UTF-8 text (printable characters kept). */
static MR_RESULT go_quote(mr_buf *out, const char *s, size_t n)
{
    MR_GUARD(mr_buf_append_str(out, "\""));
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\n' ? "\\n"
                        : ch == '\t' ? "\\t" : ch == '\r' ? "\\r" : NULL;
        if (esc != NULL)
            MR_GUARD(mr_buf_append_str(out, esc));
        else if (ch < 0x20 || ch == 0x7f)
            MR_GUARD(mr_buf_printf(out, "\\x%02x", ch));
        else
            MR_GUARD(mr_buf_append(out, &ch, 1));
    }
    return mr_buf_append_str(out, "\"");
}

static bool values_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal(a, b) || (json_is_null(a) && json_is_null(b));
}

static MR_RESULT fn_text(const char *name, json_t **args, size_t n, mr_buf *b)
{
    if (strcmp(name, "quote") == 0) {
        bool first = true;
        for (size_t i = 0; i < n; i++) {
            if (json_is_null(args[i]))
                continue;
            mr_buf s;
            mr_buf_init(&s, 0, 0);
            mr_result r = first ? MR_SUCCESS : mr_buf_append_str(b, " ");
            if (mr_ok(r))
                r = strval(&s, args[i], "<nil>");
            if (mr_ok(r))
                r = go_quote(b, s.data ? (const char *)s.data : "", s.len);
            mr_buf_free(&s);
            MR_GUARD(r);
            first = false;
        }
        return MR_SUCCESS;
    }
    /* print: Go's Sprint puts a space between operands when neither is a string */
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && !json_is_string(args[i - 1]) && !json_is_string(args[i]))
            MR_GUARD(mr_buf_append_str(b, " "));
        MR_GUARD(strval(b, args[i], "<nil>"));
    }
    return MR_SUCCESS;
}

static MR_RESULT fn_unary(const char *name, json_t *a, json_t **out)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    if (strcmp(name, "not") == 0) {
        *out = json_boolean(!mr_tpl_truthy(a));
        return MR_SUCCESS;
    }
    if (strcmp(name, "toJson") == 0) {
        char *s = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        MR_ENSURE_ALLOC(s);
        *out = json_string(s);
        free(s); /* check-source: allow alloc -- jansson's allocation */
        MR_ENSURE_ALLOC(*out);
        return MR_SUCCESS;
    }
    mr_result r = strval(&b, a, "<nil>");
    if (mr_ok(r) && strcmp(name, "lower") == 0)
        for (size_t i = 0; i < b.len; i++)
            b.data[i] = (uint8_t)tolower(b.data[i]);
    if (mr_ok(r) && strcmp(name, "b64enc") == 0) {
        mr_buf e;
        mr_buf_init(&e, 0, 0);
        r = mr_b64_encode_buf(b.data ? b.data : (const uint8_t *)"", b.len, MR_B64_STD, &e);
        mr_buf_free(&b);
        b = e;
    }
    if (!mr_ok(r)) {
        mr_buf_free(&b);
        return r;
    }
    return new_string(&b, out);
}

static MR_RESULT call(lex *l, const char *name, json_t **args, size_t n, json_t **out)
{
    static const char *const unary[] = {"not", "toJson", "toString", "lower", "b64enc"};
    for (size_t i = 0; i < sizeof(unary) / sizeof(unary[0]); i++) {
        if (strcmp(name, unary[i]) == 0) {
            if (n != 1)
                FAIL(l, "wrong number of args for %s: want 1 got %zu", name, n);
            return fn_unary(name, args[0], out);
        }
    }
    if (strcmp(name, "and") == 0 || strcmp(name, "or") == 0) {
        if (n < 1)
            FAIL(l, "wrong number of args for %s", name);
        bool want = strcmp(name, "or") == 0;
        size_t i = 0;
        while (i + 1 < n && mr_tpl_truthy(args[i]) != want)
            i++;
        *out = json_incref(args[i]);
        return MR_SUCCESS;
    }
    if (strcmp(name, "eq") == 0 || strcmp(name, "ne") == 0) {
        if (n < 2 || (name[0] == 'n' && n != 2))
            FAIL(l, "wrong number of args for %s", name);
        bool eq = false;
        for (size_t i = 1; i < n; i++)
            eq = eq || values_equal(args[0], args[i]);
        *out = json_boolean(name[0] == 'e' ? eq : !eq);
        return MR_SUCCESS;
    }
    if (strcmp(name, "default") == 0) {
        if (n != 2)
            FAIL(l, "wrong number of args for default: want 2 got %zu", n);
        *out = json_incref(mr_tpl_truthy(args[1]) ? args[1] : args[0]);
        return MR_SUCCESS;
    }
    if (strcmp(name, "quote") == 0 || strcmp(name, "print") == 0) {
        mr_buf b;
        mr_buf_init(&b, 0, 0);
        mr_result r = fn_text(name, args, n, &b);
        if (!mr_ok(r)) {
            mr_buf_free(&b);
            return r;
        }
        return new_string(&b, out);
    }
    FAIL(l, "function \"%s\" not defined", name);
}

static MR_RESULT pipeline(lex *l, json_t **out);

/* .a.b.c (from the root) or the path after a variable. */
static MR_RESULT path(lex *l, json_t *base, json_t **out)
{
    json_t *v = base;
    while (l->p < l->end && *l->p == '.') {
        l->p++;
        const char *st = l->p;
        while (l->p < l->end && (isalnum((unsigned char)*l->p) || *l->p == '_'))
            l->p++;
        if (l->p == st)
            break; /* "." alone */
        char key[128];
        if ((size_t)(l->p - st) >= sizeof(key))
            FAIL(l, "field name too long");
        (void)snprintf(key, sizeof(key), "%.*s", (int)(l->p - st), st);
        v = json_is_object(v) ? json_object_get(v, key) : NULL;
    }
    *out = v ? json_incref(v) : json_null();
    return MR_SUCCESS;
}

static MR_RESULT string_lit(lex *l, json_t **out)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    char q = *l->p++;
    mr_result r = MR_SUCCESS;
    while (mr_ok(r) && l->p < l->end && *l->p != q) {
        char ch = *l->p++;
        if (ch == '\\' && q == '"' && l->p < l->end) {
            char e = *l->p++;
            if (e == 'n')
                ch = '\n';
            else if (e == 't')
                ch = '\t';
            else if (e == 'r')
                ch = '\r';
            else
                ch = e;
        }
        r = mr_buf_append(&b, &ch, 1);
    }
    if (mr_ok(r) && l->p >= l->end) {
        mr_buf_free(&b);
        FAIL(l, "unterminated quoted string");
    }
    l->p++;
    if (!mr_ok(r)) {
        mr_buf_free(&b);
        return r;
    }
    return new_string(&b, out);
}

static MR_RESULT variable(lex *l, json_t **out)
{
    const char *st = ++l->p;
    while (l->p < l->end && (isalnum((unsigned char)*l->p) || *l->p == '_'))
        l->p++;
    size_t n = (size_t)(l->p - st);
    for (int i = l->c->nvars - 1; i >= 0; i--)
        if (strlen(l->c->vars[i].name) == n && memcmp(l->c->vars[i].name, st, n) == 0)
            return path(l, l->c->vars[i].val, out);
    if (n == 0)
        return path(l, l->c->root, out);
    FAIL(l, "undefined variable \"$%.*s\"", (int)n, st);
}

/* One operand; *ident receives a bare identifier (a function name) instead. */
static MR_RESULT operand(lex *l, json_t **out, char ident[32])
{
    skip_ws(l);
    ident[0] = '\0';
    *out = NULL;
    char ch = *l->p;
    if (ch == '(') {
        l->p++;
        MR_GUARD(pipeline(l, out));
        if (!at(l, ')')) {
            json_decref(*out);
            *out = NULL;
            FAIL(l, "unclosed left paren");
        }
        l->p++;
        return MR_SUCCESS;
    }
    if (ch == '"' || ch == '`')
        return string_lit(l, out);
    if (ch == '.')
        return path(l, l->c->root, out);
    if (ch == '$')
        return variable(l, out);
    const char *st = l->p;
    while (l->p < l->end && (isalnum((unsigned char)*l->p) || *l->p == '_' || *l->p == '-'))
        l->p++;
    size_t n = (size_t)(l->p - st);
    if (n == 0)
        FAIL(l, "unexpected \"%c\" in operand", ch);
    if (isdigit((unsigned char)st[0]) || st[0] == '-') {
        char num[32];
        char *e = NULL;
        (void)snprintf(num, sizeof(num), "%.*s", (int)(n < 31 ? n : 31), st);
        long long v = strtoll(num, &e, 10);
        if (e == NULL || *e != '\0')
            FAIL(l, "bad number syntax: \"%s\"", num);
        *out = json_integer(v);
    } else if (n == 4 && memcmp(st, "true", 4) == 0) {
        *out = json_true();
    } else if (n == 5 && memcmp(st, "false", 5) == 0) {
        *out = json_false();
    } else if (n == 3 && memcmp(st, "nil", 3) == 0) {
        *out = json_null();
    } else {
        if (n >= 32)
            FAIL(l, "identifier too long");
        (void)snprintf(ident, 32, "%.*s", (int)n, st);
        return MR_SUCCESS;
    }
    MR_ENSURE_ALLOC(*out);
    return MR_SUCCESS;
}

static bool command_end(lex *l)
{
    skip_ws(l);
    return l->p >= l->end || *l->p == '|' || *l->p == ')';
}

/* A command: a function and its arguments (plus the piped value), or one operand. */
static MR_RESULT command(lex *l, json_t *piped, json_t **out)
{
    mr_result res = MR_FAILURE;
    json_t *args[ARGS_MAX];
    size_t n = 0;
    char fn[32], ident[32];
    json_t *first = NULL;
    MR_GUARD_OUT(operand(l, &first, fn));
    if (fn[0] == '\0') {
        MR_ENSURE_OUT(command_end(l) && piped == NULL, MR_ERR_USAGE,
                      "template: %s:%d: can't give argument to non-function", l->c->name,
                      l->c->line);
        *out = first;
        first = NULL;
        res = MR_SUCCESS;
        goto out;
    }
    while (!command_end(l)) {
        MR_ENSURE_OUT(n + 1 < ARGS_MAX, MR_ERR_USAGE, "template: %s:%d: too many arguments",
                      l->c->name, l->c->line);
        MR_GUARD_OUT(operand(l, &args[n], ident));
        MR_ENSURE_OUT(ident[0] == '\0', MR_ERR_USAGE,
                      "template: %s:%d: nested function call needs parentheses: %s",
                      l->c->name, l->c->line, ident);
        n++;
    }
    if (piped != NULL)
        args[n++] = json_incref(piped);
    MR_GUARD_OUT(call(l, fn, args, n, out));
    res = MR_SUCCESS;
out:
    for (size_t i = 0; i < n; i++)
        json_decref(args[i]);
    json_decref(first);
    return res;
}

static MR_RESULT pipeline(lex *l, json_t **out)
{
    json_t *acc = NULL;
    for (;;) {
        json_t *v = NULL;
        mr_result r = command(l, acc, &v);
        json_decref(acc);
        acc = v;
        MR_GUARD(r);
        if (!at(l, '|'))
            break;
        l->p++;
    }
    *out = acc;
    return MR_SUCCESS;
}

MR_RESULT mr_tpl_eval(tpl_ctx *c, const char *src, size_t len, json_t **out)
{
    lex l = {.c = c, .p = src, .end = src + len};
    MR_GUARD(pipeline(&l, out));
    skip_ws(&l);
    if (l.p < l.end) {
        json_decref(*out);
        *out = NULL;
        FAIL(&l, "unexpected \"%c\" in command", *l.p);
    }
    return MR_SUCCESS;
}
