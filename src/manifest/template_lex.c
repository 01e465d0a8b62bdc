/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Template engine, part 1: the lexer (see template.h for the language).
 *
 * It follows the state machine of Go's text/template/parse lexer closely enough that the same
 * inputs fail with the same texts: the whole source is cut into tokens (text, delimiters, and
 * the tokens inside actions) up to the first lexical error, which becomes a TK_ERROR token
 * whose message the parser reports when it reaches it, as Go's parser does.
 */
#define MR_TMPL_INTERNAL 1
#include "manifest/template.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/text.h"

/* ---------------------------------------------------------------------------------------- */
/* growable arrays */

MR_RESULT mr_tmpl_vec_push_(void **data, uint32_t *count, uint32_t *cap, size_t elem,
                            const void *item)
{
    if (*count == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 16;
        MR_ENSURE(ncap > *cap && ncap <= UINT32_MAX / 2, MR_ERR_USAGE, "template too complex");
        void *p = mr_realloc(*data, (size_t)ncap * elem);
        MR_ENSURE_ALLOC(p);
        *data = p;
        *cap = ncap;
    }
    memcpy((uint8_t *)*data + (size_t)*count * elem, item, elem);
    (*count)++;
    return MR_SUCCESS;
}

/* ---------------------------------------------------------------------------------------- */
/* characters */

static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Non-ASCII ranges that are neither letters nor digits in Unicode (punctuation, symbols,
 * spaces, combining marks, controls). Everything else above U+007F counts as a letter: a
 * deterministic approximation of Go's unicode.IsLetter/IsDigit that agrees on the common
 * scripts and on the usual punctuation, spaces and symbols. */
static const uint32_t NOT_ALNUM[][2] = {
    {0x0080, 0x00A9}, {0x00AB, 0x00B4}, {0x00B6, 0x00B9}, {0x00BB, 0x00BF},
    {0x00D7, 0x00D7}, {0x00F7, 0x00F7}, {0x02C2, 0x02C5}, {0x02D2, 0x02DF},
    {0x0300, 0x036F}, {0x2000, 0x206F}, {0x20A0, 0x20FF}, {0x2190, 0x2BFF},
    {0x3000, 0x3004}, {0x3008, 0x3020}, {0xFE00, 0xFE0F}, {0xFE30, 0xFE4F},
    {0xFEFF, 0xFEFF}, {0xFF00, 0xFF0F}, {0xFF1A, 0xFF20}, {0xFF3B, 0xFF40},
    {0xFF5B, 0xFF65}, {0xFFF0, 0xFFFF}, {0x1F000, 0x1FAFF},
};

/* Non-ASCII code points that Go's unicode.IsPrint rejects: spaces other than U+0020, format
 * characters, surrogates, private use, noncharacters (approximation, as above). */
static const uint32_t NOT_PRINT[][2] = {
    {0x00A0, 0x00A0}, {0x00AD, 0x00AD}, {0x0600, 0x0605}, {0x061C, 0x061C},
    {0x06DD, 0x06DD}, {0x070F, 0x070F}, {0x1680, 0x1680}, {0x180E, 0x180E},
    {0x2000, 0x200F}, {0x2028, 0x202F}, {0x205F, 0x206F}, {0x3000, 0x3000},
    {0xD800, 0xF8FF}, {0xFEFF, 0xFEFF}, {0xFFF0, 0xFFFB}, {0xFFFE, 0xFFFF},
    {0xE0000, 0xE007F}, {0xF0000, 0x10FFFF},
};

static bool is_print_rune(uint32_t r)
{
    for (size_t i = 0; i < sizeof(NOT_PRINT) / sizeof(NOT_PRINT[0]); i++)
        if (r >= NOT_PRINT[i][0] && r <= NOT_PRINT[i][1])
            return false;
    return r <= 0x10FFFF;
}

/* Go's isAlphaNumeric: '_' or a letter or digit. */
static bool is_alnum_rune(uint32_t r)
{
    if (r < 0x80)
        return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') ||
               (r >= '0' && r <= '9');
    for (size_t i = 0; i < sizeof(NOT_ALNUM) / sizeof(NOT_ALNUM[0]); i++)
        if (r >= NOT_ALNUM[i][0] && r <= NOT_ALNUM[i][1])
            return false;
    return r <= 0x10FFFF;
}

/* Appends Go's %#U rendering of a rune: U+0041 'A' (quote omitted for non-printables). */
static MR_RESULT append_rune_desc(mr_buf *b, const uint8_t *s, size_t n)
{
    size_t len;
    uint32_t r = mr_utf8_decode(s, n, &len);
    MR_GUARD(mr_buf_printf(b, "U+%04X", (unsigned)r));
    bool printable = (r >= 0x20 && r < 0x7F) || (r >= 0xA0 && is_print_rune(r));
    if (printable) {
        MR_GUARD(mr_buf_append_str(b, " '"));
        if (r == 0xFFFD)
            MR_GUARD(mr_buf_append_str(b, "\xEF\xBF\xBD"));
        else
            MR_GUARD(mr_buf_append(b, s, len));
        MR_GUARD(mr_buf_append_u8(b, '\''));
    }
    return MR_SUCCESS;
}

MR_RESULT mr_tmpl_quote_(mr_buf *b, const uint8_t *s, size_t n, size_t max_runes)
{
    MR_GUARD(mr_buf_append_u8(b, '"'));
    size_t runes = 0;
    for (size_t i = 0; i < n && runes < max_runes; runes++) {
        uint8_t c = s[i];
        size_t len = 1;
        if (c == '"' || c == '\\') {
            MR_GUARD(mr_buf_append_u8(b, '\\'));
            MR_GUARD(mr_buf_append_u8(b, c));
        } else if (c >= 0x20 && c < 0x7F) {
            MR_GUARD(mr_buf_append_u8(b, c));
        } else if (c < 0x80) {
            static const char esc[] = "\a\b\f\n\r\t\v";
            static const char name[] = "abfnrtv";
            const char *e = c != 0 ? memchr(esc, c, sizeof(esc) - 1) : NULL;
            if (e != NULL)
                MR_GUARD(mr_buf_printf(b, "\\%c", name[e - esc]));
            else
                MR_GUARD(mr_buf_printf(b, "\\x%02x", c));
        } else {
            uint32_t r = mr_utf8_decode(s + i, n - i, &len);
            if (r == 0xFFFD && len == 1)
                MR_GUARD(mr_buf_printf(b, "\\x%02x", c));
            else if (!is_print_rune(r))
                MR_GUARD(mr_buf_printf(b, r < 0x10000 ? "\\u%04x" : "\\U%08x", (unsigned)r));
            else
                MR_GUARD(mr_buf_append(b, s + i, len));
        }
        i += len;
    }
    return mr_buf_append_u8(b, '"');
}

/* ---------------------------------------------------------------------------------------- */
/* lexer */

typedef struct lexer {
    const uint8_t *src;
    size_t len;
    size_t pos;
    size_t start;
    int paren;
    token *toks;
    uint32_t ntoks, cap;
    mr_buf errmsg; /* message of the TK_ERROR token, if any */
} lexer;

static int lx_at(const lexer *l, size_t i) { return i < l->len ? l->src[i] : -1; }

static bool lx_has(const lexer *l, size_t i, const char *s)
{
    size_t n = strlen(s);
    return i <= l->len && l->len - i >= n && memcmp(l->src + i, s, n) == 0;
}

static MR_RESULT lx_emit_at(lexer *l, tok_type type, size_t start, size_t end)
{
    token t = {.type = (uint8_t)type, .pos = (uint32_t)start, .len = (uint32_t)(end - start)};
    MR_GUARD(mr_tmpl_vec_push_((void **)&l->toks, &l->ntoks, &l->cap, sizeof(token), &t));
    l->start = l->pos;
    return MR_SUCCESS;
}

static MR_RESULT lx_emit(lexer *l, tok_type type) { return lx_emit_at(l, type, l->start, l->pos); }

/* Records a lexical error (Go's l.errorf): an error token at the current token start. The
 * caller stops lexing. */
static MR_RESULT lx_error(lexer *l, const char *fmt, ...) MR_PRINTF(2, 3);
static MR_RESULT lx_error(lexer *l, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    MR_ENSURE(n >= 0, MR_ERR_INTERNAL, "format error");
    MR_GUARD(mr_buf_append_str(&l->errmsg, tmp));
    return lx_emit_at(l, TK_ERROR, l->start, l->start);
}

static MR_RESULT lx_error_rune(lexer *l, const char *prefix, size_t at)
{
    MR_GUARD(mr_buf_append_str(&l->errmsg, prefix));
    MR_GUARD(append_rune_desc(&l->errmsg, l->src + at, l->len - at));
    return lx_emit_at(l, TK_ERROR, l->start, l->start);
}

static bool lx_has_left_trim(const lexer *l, size_t i)
{
    return lx_at(l, i) == '-' && is_space(lx_at(l, i + 1));
}

static bool lx_has_right_trim(const lexer *l, size_t i)
{
    return is_space(lx_at(l, i)) && lx_at(l, i + 1) == '-';
}

/* Go's atRightDelim: 0 = no, 2 = "}}", 4 = " -}}". */
static size_t lx_right_delim(const lexer *l, size_t i)
{
    if (lx_has_right_trim(l, i) && lx_has(l, i + 2, "}}"))
        return 4;
    if (lx_has(l, i, "}}"))
        return 2;
    return 0;
}

static size_t skip_spaces(const lexer *l, size_t i)
{
    while (is_space(lx_at(l, i)))
        i++;
    return i;
}

static bool lx_at_terminator(const lexer *l)
{
    int c = lx_at(l, l->pos);
    if (c < 0 || is_space(c))
        return true;
    if (c == '.' || c == ',' || c == '|' || c == ':' || c == ')' || c == '(')
        return true;
    return lx_has(l, l->pos, "}}");
}

static uint32_t lx_peek_rune(const lexer *l, size_t *len)
{
    if (l->pos >= l->len) {
        *len = 0;
        return (uint32_t)-1;
    }
    return mr_utf8_decode(l->src + l->pos, l->len - l->pos, len);
}

static void lx_alnum_run(lexer *l)
{
    for (;;) {
        size_t n;
        uint32_t r = lx_peek_rune(l, &n);
        if (n == 0 || !is_alnum_rune(r))
            return;
        l->pos += n;
    }
}

/* After a run of alphanumerics: Go insists on a terminator ("bad character %#U"). */
static MR_RESULT lx_finish_word(lexer *l, tok_type type, bool *stop)
{
    if (!lx_at_terminator(l)) {
        *stop = true;
        return lx_error_rune(l, "bad character ", l->pos);
    }
    return lx_emit(l, type);
}

static const char *const KEYWORDS[] = {"block", "break",  "continue", "define", "else", "end",
                                       "if",    "range",  "template", "with",   NULL};

static MR_RESULT lx_identifier(lexer *l, bool *stop)
{
    lx_alnum_run(l);
    if (!lx_at_terminator(l)) {
        *stop = true;
        return lx_error_rune(l, "bad character ", l->pos);
    }
    size_t n = l->pos - l->start;
    const char *w = (const char *)l->src + l->start;
    for (size_t i = 0; KEYWORDS[i] != NULL; i++)
        if (strlen(KEYWORDS[i]) == n && memcmp(w, KEYWORDS[i], n) == 0)
            return lx_emit(l, TK_KEYWORD);
    if (n == 3 && memcmp(w, "nil", 3) == 0)
        return lx_emit(l, TK_NIL);
    if ((n == 4 && memcmp(w, "true", 4) == 0) || (n == 5 && memcmp(w, "false", 5) == 0))
        return lx_emit(l, TK_BOOL);
    return lx_emit(l, TK_IDENT);
}

static bool lx_accept(lexer *l, const char *set)
{
    int c = lx_at(l, l->pos);
    if (c > 0 && strchr(set, c) != NULL) {
        l->pos++;
        return true;
    }
    return false;
}

static void lx_accept_run(lexer *l, const char *set)
{
    while (lx_accept(l, set))
        ;
}

/* Go's scanNumber: sign, base prefix, digits, fraction, exponent, 'i'. */
static bool lx_scan_number(lexer *l)
{
    lx_accept(l, "+-");
    const char *digits = "0123456789_";
    if (lx_accept(l, "0")) {
        if (lx_accept(l, "xX"))
            digits = "0123456789abcdefABCDEF_";
        else if (lx_accept(l, "oO"))
            digits = "01234567_";
        else if (lx_accept(l, "bB"))
            digits = "01_";
    }
    lx_accept_run(l, digits);
    if (lx_accept(l, "."))
        lx_accept_run(l, digits);
    if (strlen(digits) == 11 && lx_accept(l, "eE")) {
        lx_accept(l, "+-");
        lx_accept_run(l, "0123456789_");
    }
    if (strlen(digits) == 23 && lx_accept(l, "pP")) {
        lx_accept(l, "+-");
        lx_accept_run(l, "0123456789_");
    }
    lx_accept(l, "i");
    size_t n;
    uint32_t r = lx_peek_rune(l, &n);
    if (n > 0 && is_alnum_rune(r)) {
        l->pos += n;
        return false;
    }
    return true;
}

static MR_RESULT lx_bad_number(lexer *l)
{
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    mr_result res = MR_FAILURE;
    MR_GUARD_OUT(mr_tmpl_quote_(&q, l->src + l->start, l->pos - l->start, SIZE_MAX));
    MR_GUARD_OUT(mr_buf_nul_terminate(&q));
    res = lx_error(l, "bad number syntax: %s", (const char *)q.data);
out:
    mr_buf_free(&q);
    return res;
}

static MR_RESULT lx_number(lexer *l, bool *stop)
{
    if (!lx_scan_number(l)) {
        *stop = true;
        return lx_bad_number(l);
    }
    int c = lx_at(l, l->pos);
    if (c == '+' || c == '-') {
        if (!lx_scan_number(l) || l->src[l->pos - 1] != 'i') {
            *stop = true;
            return lx_bad_number(l);
        }
        return lx_emit(l, TK_COMPLEX);
    }
    return lx_emit(l, TK_NUMBER);
}

static MR_RESULT lx_quote(lexer *l, bool *stop)
{
    for (;;) {
        int c = lx_at(l, l->pos++);
        if (c == '\\') {
            c = lx_at(l, l->pos++);
            if (c >= 0 && c != '\n')
                continue;
        }
        if (c < 0 || c == '\n') {
            *stop = true;
            return lx_error(l, "unterminated quoted string");
        }
        if (c == '"')
            return lx_emit(l, TK_STRING);
    }
}

static MR_RESULT lx_raw_quote(lexer *l, bool *stop)
{
    for (;;) {
        int c = lx_at(l, l->pos++);
        if (c < 0) {
            *stop = true;
            return lx_error(l, "unterminated raw quoted string");
        }
        if (c == '`')
            return lx_emit(l, TK_RAWSTRING);
    }
}

static MR_RESULT lx_char(lexer *l, bool *stop)
{
    for (;;) {
        int c = lx_at(l, l->pos++);
        if (c == '\\') {
            c = lx_at(l, l->pos++);
            if (c >= 0 && c != '\n')
                continue;
        }
        if (c < 0 || c == '\n') {
            *stop = true;
            return lx_error(l, "unterminated character constant");
        }
        if (c == '\'')
            return lx_emit(l, TK_CHARCONST);
    }
}

/* Go's lexRightDelim at l->pos (d = 2 or 4 from lx_right_delim). */
static MR_RESULT lx_rdelim(lexer *l, size_t d)
{
    size_t at = l->pos + (d == 4 ? 2 : 0);
    l->pos += d;
    MR_GUARD(lx_emit_at(l, TK_RDELIM, at, l->pos));
    if (d == 4)
        l->pos = skip_spaces(l, l->pos);
    l->start = l->pos;
    return MR_SUCCESS;
}

/* Go's lexSpace, including the special case of a single space that belongs to " -}}": Go
 * then goes straight to the delimiter, without the open-paren check. */
static MR_RESULT lx_space(lexer *l, bool *done)
{
    size_t n = 0;
    while (is_space(lx_at(l, l->pos))) {
        l->pos++;
        n++;
    }
    if (lx_has_right_trim(l, l->pos - 1) && lx_has(l, l->pos + 1, "}}")) {
        l->pos--;
        if (n == 1) {
            *done = true;
            return lx_rdelim(l, 4);
        }
    }
    return lx_emit(l, TK_SPACE);
}

/* One step inside an action. Sets *done at the right delimiter, *stop on an error. */
static MR_RESULT lx_inside(lexer *l, bool *done, bool *stop)
{
    size_t d = lx_right_delim(l, l->pos);
    if (d != 0) {
        if (l->paren != 0) {
            *stop = true;
            return lx_error(l, "unclosed left paren");
        }
        *done = true;
        return lx_rdelim(l, d);
    }
    int c = lx_at(l, l->pos);
    if (c < 0) {
        *stop = true;
        return lx_error(l, "unclosed action");
    }
    if (is_space(c))
        return lx_space(l, done);
    l->pos++;
    switch (c) {
    case '=':
        return lx_emit(l, TK_ASSIGN);
    case ':':
        if (lx_at(l, l->pos) != '=') {
            *stop = true;
            return lx_error(l, "expected :=");
        }
        l->pos++;
        return lx_emit(l, TK_DECLARE);
    case '|':
        return lx_emit(l, TK_PIPE);
    case '"':
        return lx_quote(l, stop);
    case '`':
        return lx_raw_quote(l, stop);
    case '\'':
        return lx_char(l, stop);
    case '$':
        if (lx_at_terminator(l))
            return lx_emit(l, TK_VAR);
        lx_alnum_run(l);
        return lx_finish_word(l, TK_VAR, stop);
    case '(':
        l->paren++;
        return lx_emit(l, TK_LPAREN);
    case ')':
        if (--l->paren < 0) {
            *stop = true;
            return lx_error(l, "unexpected right paren");
        }
        return lx_emit(l, TK_RPAREN);
    default:
        break;
    }
    if (c == '.') {
        int n = lx_at(l, l->pos);
        if (!(n >= '0' && n <= '9')) {
            if (lx_at_terminator(l))
                return lx_emit(l, TK_DOT);
            lx_alnum_run(l);
            return lx_finish_word(l, TK_FIELD, stop);
        }
    }
    if (c == '.' || c == '+' || c == '-' || (c >= '0' && c <= '9')) {
        l->pos--;
        return lx_number(l, stop);
    }
    l->pos--;
    size_t n;
    uint32_t r = lx_peek_rune(l, &n);
    if (is_alnum_rune(r))
        return lx_identifier(l, stop);
    if (r < 0x80 && r >= 0x20 && r < 0x7F) {
        l->pos++;
        return lx_emit(l, TK_CHAR);
    }
    *stop = true;
    return lx_error_rune(l, "unrecognized character in action: ", l->pos);
}

/* A comment starting at l->pos ("/" "*"). Go's lexComment. */
static MR_RESULT lx_comment(lexer *l, bool *stop)
{
    const uint8_t *e = NULL;
    size_t from = l->pos + 2;
    for (size_t i = from; i + 1 < l->len; i++) {
        if (l->src[i] == '*' && l->src[i + 1] == '/') {
            e = l->src + i;
            break;
        }
    }
    if (e == NULL) {
        *stop = true;
        return lx_error(l, "unclosed comment");
    }
    l->pos = (size_t)(e - l->src) + 2;
    size_t d = lx_right_delim(l, l->pos);
    if (d == 0) {
        *stop = true;
        return lx_error(l, "comment ends before closing delimiter");
    }
    l->pos += d;
    if (d == 4)
        l->pos = skip_spaces(l, l->pos);
    l->start = l->pos;
    return MR_SUCCESS;
}

static size_t find_left_delim(const lexer *l, size_t from)
{
    for (size_t i = from; i + 1 < l->len; i++)
        if (l->src[i] == '{' && l->src[i + 1] == '{')
            return i;
    return l->len;
}

/* Text up to the next "{{" (trimmed when the delimiter carries "- "), then the delimiter. */
static MR_RESULT lx_text(lexer *l, bool *eof, bool *stop)
{
    size_t d = find_left_delim(l, l->pos);
    if (d == l->len) {
        l->pos = l->len;
        if (l->pos > l->start)
            MR_GUARD(lx_emit(l, TK_TEXT));
        *eof = true;
        return lx_emit(l, TK_EOF);
    }
    bool trim = lx_has_left_trim(l, d + 2);
    size_t end = d;
    if (trim)
        while (end > l->start && is_space(l->src[end - 1]))
            end--;
    if (end > l->start)
        MR_GUARD(lx_emit_at(l, TK_TEXT, l->start, end));
    l->pos = d + 2 + (trim ? 2 : 0);
    l->start = l->pos;
    if (lx_has(l, l->pos, "/*"))
        return lx_comment(l, stop);
    MR_GUARD(lx_emit_at(l, TK_LDELIM, d, d + 2));
    l->paren = 0;
    bool done = false;
    while (!done && !*stop)
        MR_GUARD(lx_inside(l, &done, stop));
    return MR_SUCCESS;
}

MR_RESULT mr_tmpl_lex_(const uint8_t *src, size_t len, token **toks, uint32_t *ntoks,
                       mr_buf *errmsg)
{
    lexer l = {.src = src, .len = len};
    bool eof = false, stop = false;
    mr_result res = MR_FAILURE;
    mr_buf_init(&l.errmsg, 0, 0);
    while (!eof && !stop)
        MR_GUARD_OUT(lx_text(&l, &eof, &stop));
    MR_GUARD_OUT(mr_buf_nul_terminate(&l.errmsg));
    *toks = l.toks;
    *ntoks = l.ntoks;
    *errmsg = l.errmsg;
    l.toks = NULL;
    mr_buf_init(&l.errmsg, 0, 0);
    res = MR_SUCCESS;
out:
    mr_free(l.toks);
    mr_buf_free(&l.errmsg);
    return res;
}
