/* SPDX-License-Identifier: Apache-2.0 */
#include "common/buf.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

void mr_cursor_init(mr_cursor *c, const void *data, size_t len)
{
    c->ptr = data;
    c->len = data == NULL ? 0 : len;
    c->pos = 0;
}

size_t mr_cursor_remaining(const mr_cursor *c) { return c->len - c->pos; }

static MR_RESULT need(const mr_cursor *c, size_t n)
{
    MR_ENSURE(c->pos <= c->len && n <= c->len - c->pos, MR_ERR_PROTOCOL,
              "truncated input: need %zu bytes at offset %zu, have %zu", n, c->pos,
              c->len - c->pos);
    return MR_SUCCESS;
}

MR_RESULT mr_cursor_read(mr_cursor *c, void *out, size_t n)
{
    MR_GUARD(need(c, n));
    if (n > 0)
        memcpy(out, c->ptr + c->pos, n);
    c->pos += n;
    return MR_SUCCESS;
}

MR_RESULT mr_cursor_skip(mr_cursor *c, size_t n)
{
    MR_GUARD(need(c, n));
    c->pos += n;
    return MR_SUCCESS;
}

MR_RESULT mr_cursor_view(mr_cursor *c, size_t n, mr_slice *out)
{
    MR_GUARD(need(c, n));
    out->ptr = c->ptr + c->pos;
    out->len = n;
    c->pos += n;
    return MR_SUCCESS;
}

MR_RESULT mr_cursor_sub(mr_cursor *c, size_t n, mr_cursor *out)
{
    mr_slice s;
    MR_GUARD(mr_cursor_view(c, n, &s));
    mr_cursor_init(out, s.ptr, s.len);
    return MR_SUCCESS;
}

MR_RESULT mr_cursor_u8(mr_cursor *c, uint8_t *out) { return mr_cursor_read(c, out, 1); }

#define CURSOR_INT(name, type, n, expr)                                                       \
    MR_RESULT name(mr_cursor *c, type *out)                                                   \
    {                                                                                         \
        uint8_t b[n];                                                                         \
        MR_GUARD(mr_cursor_read(c, b, n));                                                    \
        *out = (type)(expr);                                                                  \
        return MR_SUCCESS;                                                                    \
    }

CURSOR_INT(mr_cursor_u16le, uint16_t, 2, (unsigned)b[0] | ((unsigned)b[1] << 8))
CURSOR_INT(mr_cursor_u32le, uint32_t, 4,
           (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
               ((uint32_t)b[3] << 24))
CURSOR_INT(mr_cursor_u64le, uint64_t, 8,
           (uint64_t)b[0] | ((uint64_t)b[1] << 8) | ((uint64_t)b[2] << 16) |
               ((uint64_t)b[3] << 24) | ((uint64_t)b[4] << 32) | ((uint64_t)b[5] << 40) |
               ((uint64_t)b[6] << 48) | ((uint64_t)b[7] << 56))
CURSOR_INT(mr_cursor_u16be, uint16_t, 2, ((unsigned)b[0] << 8) | (unsigned)b[1])
CURSOR_INT(mr_cursor_u32be, uint32_t, 4,
           ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) |
               (uint32_t)b[3])

void mr_buf_init(mr_buf *b, size_t max, unsigned flags)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
    b->flags = flags;
}

static size_t buf_max(const mr_buf *b) { return b->max == 0 ? MR_BUF_MAX_DEFAULT : b->max; }

static void storage_free(mr_buf *b)
{
    if (b->data == NULL)
        return;
    if (b->flags & MR_BUF_SECRET)
        mr_secret_free(b->data, b->cap);
    else if (b->flags & MR_BUF_WIPE)
        mr_free_wipe(b->data, b->cap);
    else
        mr_free(b->data);
    b->data = NULL;
    b->cap = 0;
}

MR_RESULT mr_buf_reserve(mr_buf *b, size_t extra)
{
    size_t max = buf_max(b);
    MR_ENSURE(b->len <= max && extra <= max - b->len, MR_ERR_TOO_LARGE,
              "input too large (limit %zu bytes)", max);
    size_t want = b->len + extra;
    if (want <= b->cap && b->data != NULL)
        return MR_SUCCESS;
    size_t ncap = b->cap < 64 ? 64 : b->cap;
    while (ncap < want)
        ncap = ncap > max / 2 ? max : ncap * 2;
    if (ncap < want)
        ncap = want;
    uint8_t *nd;
    if (b->flags & (MR_BUF_SECRET | MR_BUF_WIPE)) {
        /* never realloc: the old block would be released unwiped */
        nd = (b->flags & MR_BUF_SECRET) ? mr_secret_alloc(ncap) : mr_alloc(ncap);
        MR_ENSURE_ALLOC(nd);
        if (b->len > 0)
            memcpy(nd, b->data, b->len);
        storage_free(b);
    } else {
        nd = mr_realloc(b->data, ncap);
        MR_ENSURE_ALLOC(nd);
    }
    b->data = nd;
    b->cap = ncap;
    return MR_SUCCESS;
}

MR_RESULT mr_buf_append(mr_buf *b, const void *data, size_t n)
{
    MR_GUARD(mr_buf_reserve(b, n));
    if (n > 0)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    return MR_SUCCESS;
}

MR_RESULT mr_buf_append_str(mr_buf *b, const char *s) { return mr_buf_append(b, s, strlen(s)); }

MR_RESULT mr_buf_append_u8(mr_buf *b, uint8_t v) { return mr_buf_append(b, &v, 1); }

MR_RESULT mr_buf_append_u16le(mr_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return mr_buf_append(b, x, sizeof(x));
}

MR_RESULT mr_buf_append_u32le(mr_buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return mr_buf_append(b, x, sizeof(x));
}

MR_RESULT mr_buf_append_u64le(mr_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return mr_buf_append(b, x, sizeof(x));
}

MR_RESULT mr_buf_printf(mr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    MR_ENSURE(n >= 0, MR_ERR_INTERNAL, "format error");
    MR_GUARD(mr_buf_reserve(b, (size_t)n + 1));
    va_start(ap, fmt);
    (void)vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MR_SUCCESS;
}

MR_RESULT mr_buf_nul_terminate(mr_buf *b)
{
    MR_GUARD(mr_buf_reserve(b, 1));
    b->data[b->len] = '\0';
    return MR_SUCCESS;
}

MR_RESULT mr_buf_set(mr_buf *b, const void *data, size_t n)
{
    mr_buf_reset(b);
    return mr_buf_append(b, data, n);
}

mr_slice mr_buf_slice(const mr_buf *b) { return MR_SLICE(b->data, b->len); }

void mr_buf_reset(mr_buf *b)
{
    if (b->data != NULL && (b->flags & (MR_BUF_SECRET | MR_BUF_WIPE)))
        OPENSSL_cleanse(b->data, b->cap);
    b->len = 0;
}

void mr_buf_free(mr_buf *b)
{
    storage_free(b);
    b->len = 0;
}

uint8_t *mr_buf_steal(mr_buf *b, size_t *len)
{
    uint8_t *d = b->data;
    if (b->flags & (MR_BUF_SECRET | MR_BUF_WIPE))
        return NULL;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->cap = 0;
    b->len = 0;
    return d;
}
