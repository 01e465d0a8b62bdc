/* SPDX-License-Identifier: Apache-2.0 */
/* Template structure: scanning text and actions (trim markers, comments), matching
 * if/else/range/end, and executing them (tpl.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/tpl_int.h"
#include "common/alloc.h"

typedef enum kind { K_TEXT, K_ACT, K_COMMENT, K_IF, K_ELSEIF, K_ELSE, K_END, K_RANGE } kind;

typedef struct item {
    kind k;
    const char *s; /* text, or the action's pipeline (keyword removed) */
    size_t len;
    int line;
    size_t next; /* control items: the next branch or the end */
} item;

typedef struct scan {
    const char *name;
    item *items;
    size_t n, cap;
} scan;

static bool is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static MR_RESULT push(scan *s, kind k, const char *p, size_t len, int line)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        item *grown = mr_realloc(s->items, cap * sizeof(*grown));
        MR_ENSURE_ALLOC(grown);
        s->items = grown;
        s->cap = cap;
    }
    s->items[s->n++] = (item){.k = k, .s = p, .len = len, .line = line, .next = 0};
    return MR_SUCCESS;
}

static int count_lines(const char *from, const char *to)
{
    int n = 0;
    for (const char *p = from; p < to; p++)
        n += *p == '\n';
    return n;
}

static bool word(const char *p, size_t len, const char *w, size_t *skip)
{
    size_t wl = strlen(w);
    if (len < wl || memcmp(p, w, wl) != 0 || (len > wl && !is_ws(p[wl])))
        return false;
    *skip = wl;
    return true;
}

/* Classifies the trimmed action body p[0..len). */
static MR_RESULT push_action(scan *s, const char *p, size_t len, int line)
{
    while (len > 0 && is_ws(*p)) {
        p++;
        len--;
    }
    while (len > 0 && is_ws(p[len - 1]))
        len--;
    size_t k = 0;
    if (len >= 2 && p[0] == '/' && p[1] == '*')
        return push(s, K_COMMENT, p, len, line);
    if (word(p, len, "else", &k) && word(p + k + 1, len > k ? len - k - 1 : 0, "if", &k))
        return push(s, K_ELSEIF, p + 7, len - 7, line);
    if (word(p, len, "if", &k))
        return push(s, K_IF, p + k, len - k, line);
    if (word(p, len, "else", &k))
        return push(s, K_ELSE, p, 0, line);
    if (word(p, len, "end", &k))
        return push(s, K_END, p, 0, line);
    if (word(p, len, "range", &k))
        return push(s, K_RANGE, p + k, len - k, line);
    return push(s, K_ACT, p, len, line);
}

static MR_RESULT scan_all(scan *s, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    int line = 1;
    while (p < end) {
        const char *open = memmem(p, (size_t)(end - p), "{{", 2);
        const char *text_end = open ? open : end;
        bool ltrim = open && open + 3 < end && open[2] == '-' && is_ws(open[3]);
        const char *t_end = text_end;
        if (ltrim)
            while (t_end > p && is_ws(t_end[-1]))
                t_end--;
        if (t_end > p)
            MR_GUARD(push(s, K_TEXT, p, (size_t)(t_end - p), line));
        line += count_lines(p, text_end);
        if (open == NULL)
            break;
        const char *a = open + (ltrim ? 3 : 2);
        const char *close = memmem(a, (size_t)(end - a), "}}", 2);
        MR_ENSURE(close != NULL, MR_ERR_USAGE, "template: %s:%d: unclosed action", s->name, line);
        bool rtrim = close - 2 >= a && close[-1] == '-' && is_ws(close[-2]);
        MR_GUARD(push_action(s, a, (size_t)((rtrim ? close - 1 : close) - a), line));
        line += count_lines(open, close);
        p = close + 2;
        if (rtrim)
            for (; p < end && is_ws(*p); p++)
                line += *p == '\n';
    }
    return MR_SUCCESS;
}

/* Links every if/range to its branches and end. */
static MR_RESULT match(scan *s)
{
    size_t stack[64];
    size_t depth = 0;
    for (size_t i = 0; i < s->n; i++) {
        item *it = &s->items[i];
        if (it->k == K_IF || it->k == K_RANGE) {
            MR_ENSURE(depth < 64, MR_ERR_USAGE, "template: %s:%d: nested too deeply", s->name,
                      it->line);
            stack[depth++] = i;
        } else if (it->k == K_ELSE || it->k == K_ELSEIF || it->k == K_END) {
            MR_ENSURE(depth > 0, MR_ERR_USAGE, "template: %s:%d: unexpected {{%s}}", s->name,
                      it->line, it->k == K_END ? "end" : "else");
            s->items[stack[depth - 1]].next = i;
            if (it->k == K_END)
                depth--;
            else
                stack[depth - 1] = i;
        }
    }
    MR_ENSURE(depth == 0, MR_ERR_USAGE, "template: %s: unexpected EOF", s->name);
    return MR_SUCCESS;
}

typedef struct run {
    tpl_ctx *c;
    scan *s;
    mr_buf *out;
} run;

static MR_RESULT exec(run *r, size_t from, size_t to);

static MR_RESULT eval_at(run *r, const item *it, json_t **v)
{
    r->c->line = it->line;
    return mr_tpl_eval(r->c, it->s, it->len, v);
}

static MR_RESULT exec_if(run *r, size_t i, size_t *end)
{
    bool done = false;
    size_t j = i;
    while (r->s->items[j].k != K_END) {
        const item *it = &r->s->items[j];
        if (!done) {
            bool take = it->k == K_ELSE;
            if (!take) {
                json_t *v = NULL;
                MR_GUARD(eval_at(r, it, &v));
                take = mr_tpl_truthy(v);
                json_decref(v);
            }
            if (take) {
                MR_GUARD(exec(r, j + 1, it->next));
                done = true;
            }
        }
        j = it->next;
    }
    *end = j;
    return MR_SUCCESS;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "$k, $v := P", "$v := P" or "P": variable names into k/v, the pipeline's offset into *off. */
static MR_RESULT range_decl(run *r, const item *it, char k[32], char v[32], size_t *off)
{
    const char *p = it->s, *end = it->s + it->len;
    const char *assign = memmem(p, it->len, ":=", 2);
    k[0] = v[0] = '\0';
    *off = 0;
    if (assign == NULL)
        return MR_SUCCESS;
    char names[2][32];
    int n = 0;
    while (p < assign && n < 2) {
        while (p < assign && (is_ws(*p) || *p == ','))
            p++;
        const char *st = p;
        while (p < assign && !is_ws(*p) && *p != ',')
            p++;
        MR_ENSURE(p > st && *st == '$' && (size_t)(p - st) < 32, MR_ERR_USAGE,
                  "template: %s:%d: invalid range declaration", r->s->name, it->line);
        (void)snprintf(names[n++], 32, "%.*s", (int)(p - st - 1), st + 1);
        while (p < assign && is_ws(*p))
            p++;
    }
    (void)snprintf(n == 2 ? k : v, 32, "%s", names[0]);
    if (n == 2)
        (void)snprintf(v, 32, "%s", names[1]);
    *off = (size_t)(assign + 2 - it->s);
    (void)end;
    return MR_SUCCESS;
}

static MR_RESULT set_var(run *r, int slot, const char *name, json_t *val)
{
    if (name[0] == '\0')
        return MR_SUCCESS;
    MR_ENSURE(slot < TPL_VARS_MAX, MR_ERR_USAGE, "template: %s: too many variables",
              r->s->name);
    (void)snprintf(r->c->vars[slot].name, sizeof(r->c->vars[slot].name), "%s", name);
    r->c->vars[slot].val = val;
    if (r->c->nvars <= slot)
        r->c->nvars = slot + 1;
    return MR_SUCCESS;
}

static MR_RESULT range_body(run *r, size_t i, const char *k, const char *v, json_t *key,
                            json_t *val)
{
    int base = r->c->nvars;
    MR_GUARD(set_var(r, base, k, key));
    MR_GUARD(set_var(r, base + (k[0] != '\0'), v, val));
    mr_result res = exec(r, i + 1, r->s->items[i].next);
    r->c->nvars = base;
    return res;
}

static MR_RESULT exec_range(run *r, size_t i)
{
    mr_result res = MR_FAILURE;
    const item *it = &r->s->items[i];
    char k[32], v[32];
    size_t off = 0;
    json_t *coll = NULL, *key = NULL;
    const char **keys = NULL;
    MR_GUARD_OUT(range_decl(r, it, k, v, &off));
    r->c->line = it->line;
    MR_GUARD_OUT(mr_tpl_eval(r->c, it->s + off, it->len - off, &coll));
    MR_ENSURE_OUT(r->s->items[it->next].k == K_END, MR_ERR_USAGE,
                  "template: %s:%d: range with else is not supported", r->s->name, it->line);
    if (json_is_array(coll)) {
        for (size_t j = 0; j < json_array_size(coll); j++) {
            key = json_integer((json_int_t)j);
            MR_ENSURE_ALLOC_OUT(key);
            MR_GUARD_OUT(range_body(r, i, k, v, key, json_array_get(coll, j)));
            json_decref(key);
            key = NULL;
        }
    } else if (json_is_object(coll) && json_object_size(coll) > 0) {
        size_t n = 0;
        const char *kk;
        json_t *vv;
        keys = mr_calloc(json_object_size(coll), sizeof(*keys));
        MR_ENSURE_ALLOC_OUT(keys);
        json_object_foreach(coll, kk, vv) keys[n++] = kk;
        qsort(keys, n, sizeof(*keys), cmp_keys);
        for (size_t j = 0; j < n; j++) {
            key = json_string(keys[j]);
            MR_ENSURE_ALLOC_OUT(key);
            MR_GUARD_OUT(range_body(r, i, k, v, key, json_object_get(coll, keys[j])));
            json_decref(key);
            key = NULL;
        }
    } else {
        MR_ENSURE_OUT(json_is_null(coll) || json_is_object(coll), MR_ERR_USAGE,
                      "template: %s:%d: range can't iterate over a scalar", r->s->name, it->line);
    }
    res = MR_SUCCESS;
out:
    json_decref(key);
    json_decref(coll);
    mr_free(keys);
    return res;
}

static MR_RESULT exec(run *r, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        const item *it = &r->s->items[i];
        json_t *v = NULL;
        mr_result res;
        switch (it->k) {
        case K_TEXT:
            MR_GUARD(mr_buf_append(r->out, it->s, it->len));
            break;
        case K_ACT:
            MR_GUARD(eval_at(r, it, &v));
            res = mr_tpl_print(r->out, v);
            json_decref(v);
            MR_GUARD(res);
            break;
        case K_IF:
            MR_GUARD(exec_if(r, i, &i));
            break;
        case K_RANGE:
            MR_GUARD(exec_range(r, i));
            i = it->next;
            break;
        default:
            break;
        }
    }
    return MR_SUCCESS;
}

MR_RESULT mr_tpl_render(const char *name, const char *text, size_t len, json_t *data,
                        mr_buf *out)
{
    mr_result res = MR_FAILURE;
    scan s = {.name = name};
    tpl_ctx c = {.name = name, .root = data};
    MR_GUARD_OUT(scan_all(&s, text, len));
    MR_GUARD_OUT(match(&s));
    run r = {.c = &c, .s = &s, .out = out};
    MR_GUARD_OUT(exec(&r, 0, s.n));
    res = MR_SUCCESS;
out:
    mr_free(s.items);
    return res;
}
