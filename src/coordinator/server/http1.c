/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 request heads, chunked bodies, header lists and path escaping. Pure code. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/text.h"
#include "coordinator/server/internal.h"

/* ---- header lists ---- */

MR_RESULT mr_srv_hdrs_add(mr_srv_hdrs *h, const char *name, size_t nlen, const char *value,
                          size_t vlen, size_t max_bytes)
{
    MR_ENSURE(h->n < MR_SRV_MAX_HEADERS, MR_ERR_USAGE, "too many header fields");
    MR_ENSURE(h->bytes + nlen + vlen + 32 <= max_bytes, MR_ERR_USAGE, "header fields too large");
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 16;
        mr_srv_hdr *nv = mr_realloc(h->v, ncap * sizeof(*nv));
        MR_ENSURE_ALLOC(nv);
        h->v = nv;
        h->cap = ncap;
    }
    char *n = mr_strndup(name, nlen);
    char *v = mr_strndup(value, vlen);
    if (n == NULL || v == NULL) {
        mr_free(n);
        mr_free(v);
        MR_BAIL(MR_ERR_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < nlen; i++)
        n[i] = (char)tolower((unsigned char)n[i]);
    h->v[h->n].name = n;
    h->v[h->n].value = v;
    h->n++;
    h->bytes += nlen + vlen + 32;
    return MR_SUCCESS;
}

const char *mr_srv_hdrs_get(const mr_srv_hdrs *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->v[i].name, name) == 0)
            return h->v[i].value;
    return NULL;
}

void mr_srv_hdrs_free(mr_srv_hdrs *h)
{
    for (size_t i = 0; i < h->n; i++) {
        mr_free(h->v[i].name);
        mr_free(h->v[i].value);
    }
    mr_free(h->v);
    memset(h, 0, sizeof(*h));
}

/* ---- head framing ---- */

MR_RESULT mr_h1_find_head_end(mr_slice in, size_t max, size_t *scanned, size_t *head_len)
{
    mr_cursor c;
    mr_cursor_init(&c, in.ptr, in.len);
    size_t start = *scanned > 2 ? *scanned - 2 : 0;
    MR_GUARD(mr_cursor_skip(&c, start));
    /* A head ends with an empty line: "\n\n" or "\n\r\n". */
    uint8_t p1 = 0, p2 = 0; /* the two bytes before the scan position */
    mr_cursor back;
    mr_cursor_init(&back, in.ptr, in.len);
    if (start >= 2) {
        MR_GUARD(mr_cursor_skip(&back, start - 2));
        MR_GUARD(mr_cursor_u8(&back, &p2));
        MR_GUARD(mr_cursor_u8(&back, &p1));
    } else if (start == 1) {
        MR_GUARD(mr_cursor_u8(&back, &p1));
    }
    *head_len = 0;
    while (mr_cursor_remaining(&c) > 0) {
        uint8_t b;
        MR_GUARD(mr_cursor_u8(&c, &b));
        if (b == '\n' && (p1 == '\n' || (p1 == '\r' && p2 == '\n'))) {
            *head_len = c.pos;
            break;
        }
        p2 = p1;
        p1 = b;
    }
    *scanned = c.pos;
    if (*head_len != 0)
        MR_ENSURE(*head_len <= max, MR_ERR_USAGE, "request header fields too large");
    else
        MR_ENSURE(in.len <= max, MR_ERR_USAGE, "request header fields too large");
    return MR_SUCCESS;
}

/* Next line without its line ending. Fails when no '\n' is left. */
static MR_RESULT read_line(mr_cursor *c, mr_slice *line)
{
    mr_cursor probe = *c;
    size_t n = 0;
    for (;;) {
        uint8_t b;
        MR_GUARD(mr_cursor_u8(&probe, &b));
        if (b == '\n')
            break;
        n++;
    }
    MR_GUARD(mr_cursor_view(c, n, line));
    MR_GUARD(mr_cursor_skip(c, 1));
    if (line->len > 0 && line->ptr[line->len - 1] == '\r')
        line->len--;
    return MR_SUCCESS;
}

static bool is_tchar(uint8_t b)
{
    return isalnum(b) || (b != 0 && strchr("!#$%&'*+-.^_`|~", b) != NULL);
}

static bool token_ok(mr_slice s)
{
    if (s.len == 0)
        return false;
    mr_cursor c;
    mr_cursor_init(&c, s.ptr, s.len);
    while (mr_cursor_remaining(&c) > 0) {
        uint8_t b = 0;
        if (!mr_ok(mr_cursor_u8(&c, &b)) || !is_tchar(b))
            return false;
    }
    return true;
}

/* Splits at the first `sep`; fails when there is none. */
static MR_RESULT split_at(mr_cursor *c, uint8_t sep, mr_slice *before)
{
    mr_cursor probe = *c;
    size_t n = 0;
    for (;;) {
        uint8_t b;
        MR_GUARD(mr_cursor_u8(&probe, &b));
        if (b == sep)
            break;
        n++;
    }
    MR_GUARD(mr_cursor_view(c, n, before));
    return mr_cursor_skip(c, 1);
}

static mr_slice trim_ows(mr_slice s)
{
    mr_cursor c;
    mr_cursor_init(&c, s.ptr, s.len);
    size_t lead = 0, end = s.len;
    while (lead < s.len && (s.ptr[lead] == ' ' || s.ptr[lead] == '\t'))
        lead++;
    while (end > lead && (s.ptr[end - 1] == ' ' || s.ptr[end - 1] == '\t'))
        end--;
    mr_slice out = {0};
    if (mr_ok(mr_cursor_skip(&c, lead)) && mr_ok(mr_cursor_view(&c, end - lead, &out)))
        return out;
    return (mr_slice){0};
}

static bool slice_eq_ci(mr_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp((const char *)s.ptr, lit, n) == 0;
}

static MR_RESULT parse_request_line(mr_slice line, mr_h1_head *out, int *status)
{
    mr_cursor c;
    mr_cursor_init(&c, line.ptr, line.len);
    mr_slice method, target, version;
    *status = 400;
    MR_ENSURE(mr_ok(split_at(&c, ' ', &method)) && token_ok(method), MR_ERR_PROTOCOL,
              "malformed HTTP request");
    MR_ENSURE(mr_ok(split_at(&c, ' ', &target)) && target.len > 0, MR_ERR_PROTOCOL,
              "malformed HTTP request");
    MR_GUARD(mr_cursor_view(&c, mr_cursor_remaining(&c), &version));
    for (size_t i = 0; i < target.len; i++)
        MR_ENSURE(target.ptr[i] > 0x20 && target.ptr[i] != 0x7f, MR_ERR_PROTOCOL,
                  "malformed HTTP request");
    MR_ENSURE(version.len == 8 && memcmp(version.ptr, "HTTP/", 5) == 0, MR_ERR_PROTOCOL,
              "malformed HTTP version");
    *status = 505;
    MR_ENSURE(version.ptr[5] == '1' && version.ptr[6] == '.' &&
                  (version.ptr[7] == '0' || version.ptr[7] == '1'),
              MR_ERR_USAGE, "unsupported HTTP version");
    *status = 400;
    out->minor = version.ptr[7] - '0';
    out->method = mr_strndup((const char *)method.ptr, method.len);
    out->target = mr_strndup((const char *)target.ptr, target.len);
    MR_ENSURE_ALLOC(out->method);
    MR_ENSURE_ALLOC(out->target);
    return MR_SUCCESS;
}

MR_RESULT mr_h1_parse_content_length(mr_slice v, int64_t *out)
{
    MR_ENSURE(v.len > 0 && v.len <= 18, MR_ERR_PROTOCOL, "bad Content-Length");
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        MR_ENSURE(v.ptr[i] >= '0' && v.ptr[i] <= '9', MR_ERR_PROTOCOL, "bad Content-Length");
        n = n * 10 + (v.ptr[i] - '0');
    }
    MR_ENSURE(*out < 0 || *out == n, MR_ERR_PROTOCOL, "conflicting Content-Length");
    *out = n;
    return MR_SUCCESS;
}

/* Comma-separated token list contains `tok` (case-insensitive). */
static bool list_has(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e != '\0' && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, tok, tl) == 0)
            return true;
        p = e;
    }
    return false;
}

static MR_RESULT apply_header(mr_h1_head *out, const mr_srv_hdr *h, int *status)
{
    if (strcmp(h->name, "content-length") == 0)
        return mr_h1_parse_content_length(MR_SLICE(h->value, strlen(h->value)), &out->content_length);
    if (strcmp(h->name, "transfer-encoding") == 0) {
        /* Only exactly "chunked" is taken; any other coding gets 501, as from Go. */
        *status = 501;
        MR_ENSURE(strcasecmp(h->value, "chunked") == 0, MR_ERR_USAGE,
                  "unsupported transfer encoding");
        *status = 400;
        MR_ENSURE(!out->chunked, MR_ERR_PROTOCOL, "repeated Transfer-Encoding");
        out->chunked = true;
        return MR_SUCCESS;
    }
    if (strcmp(h->name, "connection") == 0) {
        if (list_has(h->value, "close"))
            out->keep_alive = false;
        else if (list_has(h->value, "keep-alive"))
            out->keep_alive = true;
        return MR_SUCCESS;
    }
    if (strcmp(h->name, "expect") == 0) {
        *status = 417;
        MR_ENSURE(strcasecmp(h->value, "100-continue") == 0, MR_ERR_USAGE,
                  "unsupported Expect");
        *status = 400;
        out->expect_continue = out->minor >= 1;
    }
    return MR_SUCCESS;
}

MR_RESULT mr_h1_parse_head(mr_slice head, size_t max_header_bytes, mr_h1_head *out,
                           int *status)
{
    mr_cursor c;
    mr_slice line;
    mr_cursor_init(&c, head.ptr, head.len);
    memset(out, 0, sizeof(*out));
    out->content_length = -1;
    *status = 400;
    MR_ENSURE(mr_ok(read_line(&c, &line)), MR_ERR_PROTOCOL, "malformed HTTP request");
    MR_GUARD(parse_request_line(line, out, status));
    out->keep_alive = out->minor >= 1;
    *status = 400;
    for (;;) {
        MR_ENSURE(mr_ok(read_line(&c, &line)), MR_ERR_PROTOCOL, "malformed MIME header");
        if (line.len == 0)
            break;
        MR_ENSURE(line.ptr[0] != ' ' && line.ptr[0] != '\t', MR_ERR_PROTOCOL,
                  "malformed MIME header: obsolete line folding");
        mr_cursor lc;
        mr_slice name;
        mr_slice value = {0};
        mr_cursor_init(&lc, line.ptr, line.len);
        MR_ENSURE(mr_ok(split_at(&lc, ':', &name)) && token_ok(name), MR_ERR_PROTOCOL,
                  "malformed MIME header line");
        MR_GUARD(mr_cursor_view(&lc, mr_cursor_remaining(&lc), &value));
        value = trim_ows(value);
        for (size_t i = 0; i < value.len; i++)
            MR_ENSURE(value.ptr[i] >= 0x20 || value.ptr[i] == '\t', MR_ERR_PROTOCOL,
                      "invalid header field value");
        *status = 431;
        MR_GUARD(mr_srv_hdrs_add(&out->hdrs, (const char *)name.ptr, name.len,
                                 value.len ? (const char *)value.ptr : "", value.len,
                                 max_header_bytes));
        *status = 400;
        MR_GUARD(apply_header(out, &out->hdrs.v[out->hdrs.n - 1], status));
        *status = 400;
    }
    MR_ENSURE(out->minor == 0 || mr_srv_hdrs_get(&out->hdrs, "host") != NULL, MR_ERR_PROTOCOL,
              "missing required Host header");
    MR_ENSURE(!(out->chunked && out->content_length >= 0), MR_ERR_PROTOCOL,
              "both Transfer-Encoding and Content-Length");
    if (slice_eq_ci(MR_SLICE(out->method, strlen(out->method)), "CONNECT"))
        out->keep_alive = false;
    return MR_SUCCESS;
}

void mr_h1_head_free(mr_h1_head *h)
{
    if (h == NULL)
        return;
    mr_free(h->method);
    mr_free(h->target);
    mr_srv_hdrs_free(&h->hdrs);
    memset(h, 0, sizeof(*h));
    h->content_length = -1;
}

/* ---- chunked bodies ---- */

enum {
    CH_SIZE = 0,
    CH_SIZE_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START,
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_DONE,
};

#define CH_LINE_MAX 4096

static MR_RESULT chunk_size_end(mr_h1_chunked *c)
{
    MR_ENSURE(c->line_len > 0, MR_ERR_PROTOCOL, "malformed chunked encoding");
    c->line_len = 0;
    c->state = c->remaining == 0 ? CH_TRAILER_START : CH_DATA;
    return MR_SUCCESS;
}

static MR_RESULT chunk_byte(mr_h1_chunked *c, uint8_t b)
{
    switch (c->state) {
    case CH_SIZE: {
        int v = mr_hex_digit(b);
        if (v >= 0) {
            MR_ENSURE(c->remaining < ((uint64_t)1 << 56), MR_ERR_PROTOCOL, "chunk too large");
            c->remaining = c->remaining * 16 + (uint64_t)v;
            c->line_len++;
            return MR_SUCCESS;
        }
        if (b == ';' || b == ' ' || b == '\t') {
            c->state = CH_SIZE_EXT;
            return MR_SUCCESS;
        }
        if (b == '\r') {
            c->state = CH_SIZE_LF;
            return MR_SUCCESS;
        }
        MR_ENSURE(b == '\n', MR_ERR_PROTOCOL, "malformed chunked encoding");
        return chunk_size_end(c);
    }
    case CH_SIZE_EXT:
        if (b == '\n')
            return chunk_size_end(c);
        MR_ENSURE(++c->line_len < CH_LINE_MAX, MR_ERR_PROTOCOL, "chunk extension too long");
        return MR_SUCCESS;
    case CH_SIZE_LF:
        MR_ENSURE(b == '\n', MR_ERR_PROTOCOL, "malformed chunked encoding");
        return chunk_size_end(c);
    case CH_DATA_CR:
        if (b == '\r') {
            c->state = CH_DATA_LF;
            return MR_SUCCESS;
        }
        /* fall through: a bare LF ends the chunk too */
        MR_ENSURE(b == '\n', MR_ERR_PROTOCOL, "malformed chunked encoding");
        c->state = CH_SIZE;
        return MR_SUCCESS;
    case CH_DATA_LF:
        MR_ENSURE(b == '\n', MR_ERR_PROTOCOL, "malformed chunked encoding");
        c->state = CH_SIZE;
        return MR_SUCCESS;
    case CH_TRAILER_START:
        c->line_len = 0;
        if (b == '\n')
            c->state = CH_DONE;
        else
            c->state = b == '\r' ? CH_TRAILER_LF : CH_TRAILER_LINE;
        return MR_SUCCESS;
    case CH_TRAILER_LINE:
        if (b == '\n')
            c->state = CH_TRAILER_START;
        MR_ENSURE(++c->line_len < CH_LINE_MAX, MR_ERR_PROTOCOL, "trailer line too long");
        return MR_SUCCESS;
    case CH_TRAILER_LF:
        MR_ENSURE(b == '\n', MR_ERR_PROTOCOL, "malformed chunked trailer");
        c->state = CH_DONE;
        return MR_SUCCESS;
    default:
        MR_BAIL(MR_ERR_INTERNAL, "chunk decoder in a bad state");
    }
}

MR_RESULT mr_h1_chunked_feed(mr_h1_chunked *c, mr_slice in, mr_buf *body, size_t *consumed,
                             bool *done)
{
    mr_cursor cur;
    mr_cursor_init(&cur, in.ptr, in.len);
    *done = false;
    while (mr_cursor_remaining(&cur) > 0 && c->state != CH_DONE) {
        if (c->state == CH_DATA) {
            size_t n = mr_cursor_remaining(&cur);
            if ((uint64_t)n > c->remaining)
                n = (size_t)c->remaining;
            mr_slice part;
            MR_GUARD(mr_cursor_view(&cur, n, &part));
            MR_GUARD(mr_buf_append(body, part.ptr, part.len));
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        uint8_t b;
        MR_GUARD(mr_cursor_u8(&cur, &b));
        MR_GUARD(chunk_byte(c, b));
    }
    *consumed = cur.pos;
    *done = c->state == CH_DONE;
    return MR_SUCCESS;
}

/* ---- paths ---- */

MR_RESULT mr_srv_path_unescape(const char *in, size_t n, mr_buf *out)
{
    if (mr_ok(mr_percent_decode(in, n, MR_PCT_STRICT | MR_PCT_NO_NUL, out)))
        return MR_SUCCESS;
    /* the text is Go's; a malformed path is the peer's protocol error */
    char msg[MR_ERR_MSG_MAX];
    (void)snprintf(msg, sizeof(msg), "%s", mr_error_get()->msg);
    MR_BAIL(MR_ERR_PROTOCOL, "%s", msg);
}

static bool path_keep(uint8_t b)
{
    return isalnum(b) || (b != 0 && strchr("-_.~$&+,/:;=@", b) != NULL);
}

MR_RESULT mr_srv_path_escape(const char *in, mr_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        if (path_keep(*p)) {
            MR_GUARD(mr_buf_append_u8(out, *p));
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            MR_GUARD(mr_buf_append(out, e, 3));
        }
    }
    return mr_buf_nul_terminate(out);
}

/* Go's path.Clean for a rooted path, written into out (which must be empty). */
static MR_RESULT clean_rooted(const char *p, size_t n, mr_buf *out)
{
    /* out always starts with '/'; segments are appended, ".." pops one. */
    MR_GUARD(mr_buf_append_u8(out, '/'));
    size_t i = 0;
    while (i < n) {
        while (i < n && p[i] == '/')
            i++;
        size_t s = i;
        while (i < n && p[i] != '/')
            i++;
        size_t len = i - s;
        if (len == 0 || (len == 1 && p[s] == '.'))
            continue;
        if (len == 2 && p[s] == '.' && p[s + 1] == '.') {
            /* back up to the previous '/', never past the root */
            while (out->len > 1 && out->data[out->len - 1] != '/')
                out->len--;
            if (out->len > 1)
                out->len--;
            continue;
        }
        if (out->len > 1)
            MR_GUARD(mr_buf_append_u8(out, '/'));
        MR_GUARD(mr_buf_append(out, p + s, len));
    }
    return MR_SUCCESS;
}

MR_RESULT mr_srv_path_clean(const char *path, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf tmp;
    mr_buf_init(&tmp, 0, 0);
    size_t n = strlen(path);
    if (n == 0) {
        MR_GUARD_OUT(mr_buf_append_str(out, "/"));
    } else {
        MR_GUARD_OUT(clean_rooted(path, n, &tmp));
        MR_GUARD_OUT(mr_buf_append(out, tmp.data, tmp.len));
        if (path[n - 1] == '/' && tmp.len > 1)
            MR_GUARD_OUT(mr_buf_append_u8(out, '/'));
    }
    MR_GUARD_OUT(mr_buf_nul_terminate(out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&tmp);
    return res;
}
