/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A strict RFC 8259 reader that builds a tree keeping duplicate object members, so the Go
 * mapping on top can merge repeated fields the way encoding/json does (jansson keeps only the
 * last duplicate). Syntax errors carry the texts of Go's scanner.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/text.h"
#include "manifest/manifest_int.h"

typedef struct reader {
    mr_cursor cur;
    unsigned depth;
    mr_buf scratch; /* unescaped string under construction */
} reader;

static bool peek(const reader *r, uint8_t *out)
{
    mr_cursor c = r->cur;
    return mr_ok(mr_cursor_u8(&c, out));
}

static void advance(reader *r) { MR_IGNORE(mr_cursor_skip(&r->cur, 1)); }

/* A borrowed view of everything not read yet. */
static mr_slice rest(const reader *r)
{
    mr_cursor c = r->cur;
    mr_slice v = {0};
    MR_IGNORE(mr_cursor_view(&c, mr_cursor_remaining(&c), &v));
    return v;
}

static void skip_ws(reader *r)
{
    mr_slice v = rest(r);
    size_t k = 0;
    while (k < v.len && (v.ptr[k] == ' ' || v.ptr[k] == '\t' || v.ptr[k] == '\n' || v.ptr[k] == '\r'))
        k++;
    MR_IGNORE(mr_cursor_skip(&r->cur, k));
}

/* Go's quoteChar: the byte as a Go-quoted character between single quotes. */
static void quote_char(uint8_t c, char *out, size_t cap)
{
    if (c == '\'') {
        snprintf(out, cap, "'\\''");
        return;
    }
    if (c == '"') {
        snprintf(out, cap, "'\"'");
        return;
    }
    switch (c) {
    case '\a': snprintf(out, cap, "'\\a'"); return;
    case '\b': snprintf(out, cap, "'\\b'"); return;
    case '\f': snprintf(out, cap, "'\\f'"); return;
    case '\n': snprintf(out, cap, "'\\n'"); return;
    case '\r': snprintf(out, cap, "'\\r'"); return;
    case '\t': snprintf(out, cap, "'\\t'"); return;
    case '\v': snprintf(out, cap, "'\\v'"); return;
    case '\\': snprintf(out, cap, "'\\\\'"); return;
    default: break;
    }
    if (c < 0x20 || c == 0x7f) {
        snprintf(out, cap, "'\\x%02x'", c);
    } else if (c < 0x80) {
        snprintf(out, cap, "'%c'", c);
    } else if (c < 0xa0 || c == 0xad) {
        snprintf(out, cap, "'\\u%04x'", c);
    } else {
        /* Go converts the byte to the rune U+00XX, which is printable: print it as UTF-8 */
        snprintf(out, cap, "'%c%c'", (char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f)));
    }
}

static MR_RESULT syntax_error(reader *r, const char *context)
{
    uint8_t c;
    if (!peek(r, &c))
        MR_BAIL(MR_ERR_USAGE, "unexpected end of JSON input");
    char q[16];
    quote_char(c, q, sizeof(q));
    MR_BAIL(MR_ERR_USAGE, "invalid character %s %s", q, context);
}

static MR_RESULT read_u4(reader *r, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c;
        if (!peek(r, &c))
            return syntax_error(r, "");
        int h = mr_hex_digit(c);
        if (h < 0)
            return syntax_error(r, "in \\u hexadecimal character escape");
        v = (v << 4) | (uint32_t)h;
        advance(r);
    }
    *out = v;
    return MR_SUCCESS;
}

/* A run of printable ASCII without quote or backslash (the common case), copied at once. */
static MR_RESULT read_plain_run(reader *r, mr_buf *b)
{
    mr_slice run = rest(r);
    size_t k = 0;
    while (k < run.len && run.ptr[k] >= 0x20 && run.ptr[k] < 0x80 && run.ptr[k] != '"' &&
           run.ptr[k] != '\\')
        k++;
    if (k) {
        MR_GUARD(mr_buf_append(b, run.ptr, k));
        MR_GUARD(mr_cursor_skip(&r->cur, k));
    }
    return MR_SUCCESS;
}

/* \uXXXX, cursor after the 'u'. A high surrogate combines only with an immediately following
 * \uDC00-DFFF; a lone surrogate becomes U+FFFD. */
static MR_RESULT read_unicode_escape(reader *r, mr_buf *b)
{
    uint32_t u;
    MR_GUARD(read_u4(r, &u));
    if (u >= 0xD800 && u < 0xDC00) {
        mr_cursor save = r->cur;
        uint8_t c1, c2;
        bool paired = false;
        if (peek(r, &c1) && c1 == '\\') {
            advance(r);
            if (peek(r, &c2) && c2 == 'u') {
                advance(r);
                uint32_t lo;
                MR_GUARD(read_u4(r, &lo));
                if (lo >= 0xDC00 && lo < 0xE000) {
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                    paired = true;
                }
            }
        }
        if (!paired) {
            r->cur = save;
            u = 0xFFFD;
        }
    } else if (u >= 0xDC00 && u < 0xE000) {
        u = 0xFFFD;
    }
    return mr_utf8_append(b, u);
}

/* An escape sequence, cursor on the backslash. */
static MR_RESULT read_escape(reader *r, mr_buf *b)
{
    uint8_t c, e = 0;
    advance(r);
    if (!peek(r, &c))
        return syntax_error(r, "");
    switch (c) {
    case '"': e = '"'; break;
    case '\\': e = '\\'; break;
    case '/': e = '/'; break;
    case 'b': e = '\b'; break;
    case 'f': e = '\f'; break;
    case 'n': e = '\n'; break;
    case 'r': e = '\r'; break;
    case 't': e = '\t'; break;
    case 'u': break;
    default: return syntax_error(r, "in string escape code");
    }
    advance(r);
    if (c == 'u')
        return read_unicode_escape(r, b);
    return mr_buf_append_u8(b, e);
}

/* A byte of 0x80 or more: a valid UTF-8 sequence is copied, an invalid byte is replaced by
 * U+FFFD. */
static MR_RESULT read_utf8(reader *r, mr_buf *b)
{
    mr_cursor probe = r->cur;
    size_t avail = mr_cursor_remaining(&probe);
    mr_slice v;
    MR_GUARD(mr_cursor_view(&probe, avail < 4 ? avail : 4, &v));
    size_t n;
    uint32_t rune = mr_utf8_decode(v.ptr, v.len, &n);
    if (rune == 0xFFFD && n == 1)
        MR_GUARD(mr_utf8_append(b, 0xFFFD));
    else
        MR_GUARD(mr_buf_append(b, v.ptr, n));
    return mr_cursor_skip(&r->cur, n);
}

/* Reads a string (cursor on the opening quote) into a new owned, NUL-terminated copy. */
static MR_RESULT read_string(reader *r, char **out, size_t *out_len)
{
    mr_buf *b = &r->scratch;
    uint8_t c = 0;

    mr_buf_reset(b);
    advance(r); /* opening quote */
    for (;;) {
        MR_GUARD(read_plain_run(r, b));
        if (!peek(r, &c))
            return syntax_error(r, "");
        if (c == '"')
            break;
        if (c < 0x20)
            return syntax_error(r, "in string literal");
        if (c == '\\') {
            MR_GUARD(read_escape(r, b));
        } else if (c < 0x80) {
            MR_GUARD(mr_buf_append_u8(b, c));
            advance(r);
        } else {
            MR_GUARD(read_utf8(r, b));
        }
    }
    advance(r); /* closing quote */
    char *s = mr_alloc(b->len + 1);
    MR_ENSURE_ALLOC(s);
    if (b->len)
        memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    *out = s;
    *out_len = b->len;
    return MR_SUCCESS;
}

static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static MR_RESULT read_number(reader *r, mr_mj_node *n)
{
    size_t start = r->cur.pos;
    uint8_t c = 0;
    MR_GUARD(mr_cursor_u8(&r->cur, &c));
    if (c == '-') {
        if (!peek(r, &c))
            return syntax_error(r, "");
        if (!is_digit(c))
            return syntax_error(r, "in numeric literal");
        advance(r);
    }
    if (c != '0') {
        while (peek(r, &c) && is_digit(c))
            advance(r);
    }
    if (peek(r, &c) && c == '.') {
        advance(r);
        if (!peek(r, &c))
            return syntax_error(r, "");
        if (!is_digit(c))
            return syntax_error(r, "after decimal point in numeric literal");
        while (peek(r, &c) && is_digit(c))
            advance(r);
    }
    if (peek(r, &c) && (c == 'e' || c == 'E')) {
        advance(r);
        if (!peek(r, &c))
            return syntax_error(r, "");
        if (c == '+' || c == '-') {
            advance(r);
            if (!peek(r, &c))
                return syntax_error(r, "");
        }
        if (!is_digit(c))
            return syntax_error(r, "in exponent of numeric literal");
        while (peek(r, &c) && is_digit(c))
            advance(r);
    }
    size_t len = r->cur.pos - start;
    mr_cursor whole;
    mr_cursor_init(&whole, r->cur.ptr, r->cur.len);
    MR_GUARD(mr_cursor_skip(&whole, start));
    mr_slice v;
    MR_GUARD(mr_cursor_view(&whole, len, &v));
    n->str = mr_strndup((const char *)v.ptr, v.len);
    MR_ENSURE_ALLOC(n->str);
    n->len = v.len;
    n->kind = MR_MJ_NUMBER;
    return MR_SUCCESS;
}

static MR_RESULT read_literal(reader *r, const char *word)
{
    char ctx[48];
    advance(r); /* first letter already matched */
    for (size_t i = 1; word[i]; i++) {
        uint8_t c;
        if (!peek(r, &c))
            return syntax_error(r, "");
        if (c != (uint8_t)word[i]) {
            snprintf(ctx, sizeof(ctx), "in literal %s (expecting '%c')", word, word[i]);
            return syntax_error(r, ctx);
        }
        advance(r);
    }
    return MR_SUCCESS;
}

static MR_RESULT read_value(reader *r, mr_mj_node *n);

static MR_RESULT grow(mr_mj_node *n, size_t *cap, bool with_keys)
{
    if (n->nkids < *cap)
        return MR_SUCCESS;
    size_t nc = *cap ? *cap * 2 : 4;
    mr_mj_node *k = mr_realloc(n->kids, nc * sizeof(*k));
    MR_ENSURE_ALLOC(k);
    n->kids = k;
    if (with_keys) {
        mr_mstr *ks = mr_realloc(n->keys, nc * sizeof(*ks));
        MR_ENSURE_ALLOC(ks);
        n->keys = ks;
    }
    *cap = nc;
    return MR_SUCCESS;
}

static MR_RESULT read_array(reader *r, mr_mj_node *n)
{
    size_t cap = 0;
    n->kind = MR_MJ_ARRAY;
    advance(r);
    skip_ws(r);
    uint8_t c;
    if (peek(r, &c) && c == ']') {
        advance(r);
        return MR_SUCCESS;
    }
    for (;;) {
        MR_GUARD(grow(n, &cap, false));
        mr_mj_node *k = &n->kids[n->nkids];
        memset(k, 0, sizeof(*k));
        n->nkids++;
        MR_GUARD(read_value(r, k));
        skip_ws(r);
        if (!peek(r, &c))
            return syntax_error(r, "");
        if (c == ',') {
            advance(r);
            continue;
        }
        if (c == ']') {
            advance(r);
            return MR_SUCCESS;
        }
        return syntax_error(r, "after array element");
    }
}

static MR_RESULT read_object(reader *r, mr_mj_node *n)
{
    size_t cap = 0;
    n->kind = MR_MJ_OBJECT;
    advance(r);
    skip_ws(r);
    uint8_t c;
    if (peek(r, &c) && c == '}') {
        advance(r);
        return MR_SUCCESS;
    }
    for (;;) {
        skip_ws(r);
        if (!peek(r, &c))
            return syntax_error(r, "");
        if (c != '"')
            return syntax_error(r, "looking for beginning of object key string");
        MR_GUARD(grow(n, &cap, true));
        mr_mj_node *k = &n->kids[n->nkids];
        memset(k, 0, sizeof(*k));
        n->keys[n->nkids] = (mr_mstr){0};
        n->nkids++;
        MR_GUARD(read_string(r, &n->keys[n->nkids - 1].ptr, &n->keys[n->nkids - 1].len));
        skip_ws(r);
        if (!peek(r, &c))
            return syntax_error(r, "");
        if (c != ':')
            return syntax_error(r, "after object key");
        advance(r);
        MR_GUARD(read_value(r, k));
        skip_ws(r);
        if (!peek(r, &c))
            return syntax_error(r, "");
        if (c == ',') {
            advance(r);
            continue;
        }
        if (c == '}') {
            advance(r);
            return MR_SUCCESS;
        }
        return syntax_error(r, "after object key:value pair");
    }
}

static MR_RESULT read_value(reader *r, mr_mj_node *n)
{
    skip_ws(r);
    uint8_t c;
    if (!peek(r, &c))
        return syntax_error(r, "");
    switch (c) {
    case '{':
    case '[': {
        MR_ENSURE(r->depth < MR_MANIFEST_MAX_DEPTH, MR_ERR_USAGE, "exceeded max depth");
        r->depth++;
        mr_result res = c == '{' ? read_object(r, n) : read_array(r, n);
        r->depth--;
        return res;
    }
    case '"':
        n->kind = MR_MJ_STRING;
        return read_string(r, &n->str, &n->len);
    case 't':
        n->kind = MR_MJ_BOOL;
        n->boolean = true;
        return read_literal(r, "true");
    case 'f':
        n->kind = MR_MJ_BOOL;
        return read_literal(r, "false");
    case 'n':
        n->kind = MR_MJ_NULL;
        return read_literal(r, "null");
    default:
        if (c == '-' || is_digit(c))
            return read_number(r, n);
        return syntax_error(r, "looking for beginning of value");
    }
}

/* Only whitespace may follow the value. */
static MR_RESULT read_end(reader *r)
{
    uint8_t c;
    skip_ws(r);
    if (peek(r, &c))
        return syntax_error(r, "after top-level value");
    return MR_SUCCESS;
}

MR_RESULT mr_manifest_json_parse(const uint8_t *in, size_t len, mr_mj_node *root)
{
    mr_result res = MR_FAILURE;
    reader r = {0};
    memset(root, 0, sizeof(*root));
    MR_ENSURE(len <= MR_MANIFEST_MAX_SIZE, MR_ERR_USAGE, "manifest too large (%zu bytes, limit %zu)",
              len, MR_MANIFEST_MAX_SIZE);
    mr_cursor_init(&r.cur, in, len);
    mr_buf_init(&r.scratch, MR_MANIFEST_MAX_SIZE, 0);
    MR_GUARD_OUT(read_value(&r, root));
    MR_GUARD_OUT(read_end(&r));
    res = MR_SUCCESS;
out:
    mr_buf_free(&r.scratch);
    if (!mr_ok(res)) {
        mr_manifest_json_free(root);
        memset(root, 0, sizeof(*root));
    }
    return res;
}

void mr_manifest_json_free(mr_mj_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nkids; i++) {
        mr_manifest_json_free(&n->kids[i]);
        if (n->keys)
            mr_free(n->keys[i].ptr);
    }
    mr_free(n->kids);
    mr_free(n->keys);
    mr_free(n->str);
    n->kids = NULL;
    n->keys = NULL;
    n->str = NULL;
    n->nkids = 0;
}
