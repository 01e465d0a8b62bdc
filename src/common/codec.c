/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Constant-time codecs. Character classes are computed with arithmetic masks instead of
 * lookup tables or branches, so the time taken does not depend on the byte values.
 */
#include "common/codec.h"

#include "common/text.h"

#include <openssl/crypto.h>
#include <string.h>

/* All-ones when a < b (a, b < 2^32), else zero. */
static uint32_t mask_lt(uint32_t a, uint32_t b)
{
    return (uint32_t)0 - (uint32_t)(((uint64_t)a - (uint64_t)b) >> 63);
}
static uint32_t mask_eq(uint32_t a, uint32_t b) { return mask_lt(a ^ b, 1); }
static uint32_t mask_in(uint32_t c, uint32_t lo, uint32_t hi)
{
    return ~mask_lt(c, lo) & ~mask_lt(hi, c);
}

/* ---- hex ---- */

static char hex_char(uint32_t v) /* v in 0..15 -> '0'..'9','a'..'f' */
{
    return (char)(v + '0' + (~mask_lt(v, 10) & ('a' - '0' - 10)));
}

/* Returns the nibble value, or sets *bad to all-ones when c is not a hex digit. */
static uint32_t hex_val(uint32_t c, uint32_t *bad)
{
    uint32_t v = (uint32_t)mr_hex_digit((uint8_t)c); /* all-ones when not a digit */
    *bad |= (uint32_t)0 - (v >> 31);
    return v & 0xf;
}

MR_RESULT mr_hex_encode_buf(const uint8_t *in, size_t len, mr_buf *out)
{
    MR_ENSURE(len <= (SIZE_MAX - 1) / 2, MR_ERR_TOO_LARGE, "input too large");
    MR_GUARD(mr_buf_reserve(out, 2 * len));
    char *p = (char *)out->data + out->len;
    for (size_t i = 0; i < len; i++) {
        p[2 * i] = hex_char(in[i] >> 4);
        p[2 * i + 1] = hex_char(in[i] & 0xf);
    }
    out->len += 2 * len;
    return MR_SUCCESS;
}

static MR_RESULT hex_decode_into(const char *in, size_t len, uint8_t *dst)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < len / 2; i++) {
        uint32_t hi = hex_val((uint8_t)in[2 * i], &bad);
        uint32_t lo = hex_val((uint8_t)in[2 * i + 1], &bad);
        dst[i] = (uint8_t)((hi << 4) | lo);
    }
    MR_ENSURE(bad == 0, MR_ERR_USAGE, "invalid hex string");
    return MR_SUCCESS;
}

MR_RESULT mr_hex_decode_buf(const char *in, size_t len, mr_buf *out)
{
    MR_ENSURE(len % 2 == 0, MR_ERR_USAGE, "invalid hex string: odd length");
    MR_GUARD(mr_buf_reserve(out, len / 2));
    uint8_t *dst = out->data + out->len;
    if (!mr_ok(hex_decode_into(in, len, dst))) {
        OPENSSL_cleanse(dst, len / 2);
        return MR_FAILURE;
    }
    out->len += len / 2;
    return MR_SUCCESS;
}

MR_RESULT mr_hex_decode_fixed(const char *in, size_t len, uint8_t *out, size_t out_len)
{
    MR_ENSURE(out_len <= SIZE_MAX / 2 && len == 2 * out_len, MR_ERR_USAGE,
              "invalid hex string: expected %zu characters, got %zu", 2 * out_len, len);
    if (!mr_ok(hex_decode_into(in, len, out))) {
        OPENSSL_cleanse(out, out_len);
        return MR_FAILURE;
    }
    return MR_SUCCESS;
}

/* ---- base64 ---- */

static uint32_t sym62(mr_b64_alphabet a) { return a == MR_B64_URL ? '-' : '+'; }
static uint32_t sym63(mr_b64_alphabet a) { return a == MR_B64_URL ? '_' : '/'; }

static char b64_char(uint32_t v, mr_b64_alphabet a) /* v in 0..63 */
{
    uint32_t c = v + 'A';
    c += ~mask_lt(v, 26) & (uint32_t)('a' - 26 - 'A');
    c += ~mask_lt(v, 52) & (uint32_t)(('0' - 52) - ('a' - 26));
    c += ~mask_lt(v, 62) & (sym62(a) - ('0' + 10));
    c += ~mask_lt(v, 63) & (sym63(a) - sym62(a) - 1);
    return (char)c;
}

static uint32_t b64_val(uint32_t c, mr_b64_alphabet a, uint32_t *bad)
{
    uint32_t up = mask_in(c, 'A', 'Z');
    uint32_t lo = mask_in(c, 'a', 'z');
    uint32_t di = mask_in(c, '0', '9');
    uint32_t s2 = mask_eq(c, sym62(a));
    uint32_t s3 = mask_eq(c, sym63(a));
    *bad |= ~(up | lo | di | s2 | s3);
    return (up & (c - 'A')) | (lo & (c - 'a' + 26)) | (di & (c - '0' + 52)) | (s2 & 62) |
           (s3 & 63);
}

size_t mr_b64_encoded_len(size_t len) { return (len + 2) / 3 * 4; }

MR_RESULT mr_b64_encode_buf(const uint8_t *in, size_t len, mr_b64_alphabet a, mr_buf *out)
{
    MR_ENSURE(len <= SIZE_MAX / 4 * 3 - 3, MR_ERR_TOO_LARGE, "input too large");
    size_t olen = mr_b64_encoded_len(len);
    MR_GUARD(mr_buf_reserve(out, olen));
    char *p = (char *)out->data + out->len;
    size_t i = 0, o = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        p[o++] = b64_char(w >> 18, a);
        p[o++] = b64_char((w >> 12) & 63, a);
        p[o++] = b64_char((w >> 6) & 63, a);
        p[o++] = b64_char(w & 63, a);
    }
    if (len - i == 1) {
        uint32_t w = (uint32_t)in[i] << 16;
        p[o++] = b64_char(w >> 18, a);
        p[o++] = b64_char((w >> 12) & 63, a);
        p[o++] = '=';
        p[o++] = '=';
    } else if (len - i == 2) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        p[o++] = b64_char(w >> 18, a);
        p[o++] = b64_char((w >> 12) & 63, a);
        p[o++] = b64_char((w >> 6) & 63, a);
        p[o++] = '=';
    }
    out->len += olen;
    return MR_SUCCESS;
}

MR_RESULT mr_b64_decode_buf(const char *in, size_t len, mr_b64_alphabet a, unsigned flags,
                            mr_buf *out)
{
    size_t start = out->len;
    uint32_t quad[4];
    size_t q = 0, pad = 0, pos = 0;
    uint32_t bad = 0;
    MR_GUARD(mr_buf_reserve(out, len / 4 * 3 + 3));
    for (pos = 0; pos < len; pos++) {
        uint32_t c = (uint8_t)in[pos];
        if ((flags & MR_B64_IGNORE_NEWLINES) && (c == '\r' || c == '\n'))
            continue;
        if (c == '=') {
            /* Padding may only appear in the last two positions of the final quantum. */
            if (q < 2)
                goto invalid;
            quad[q++] = 0;
            pad++;
        } else {
            if (pad > 0)
                goto invalid;
            quad[q++] = b64_val(c, a, &bad);
        }
        if (q == 4) {
            uint32_t w = (quad[0] << 18) | (quad[1] << 12) | (quad[2] << 6) | quad[3];
            uint8_t bytes[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
            memcpy(out->data + out->len, bytes, 3 - pad);
            out->len += 3 - pad;
            OPENSSL_cleanse(bytes, sizeof(bytes));
            q = 0;
            if (pad > 0) {
                pos++;
                break;
            }
        }
    }
    /* Nothing but ignorable newlines may follow the padded final quantum. */
    for (; pos < len; pos++) {
        char c = in[pos];
        if (!((flags & MR_B64_IGNORE_NEWLINES) && (c == '\r' || c == '\n')))
            goto invalid;
    }
    if (q != 0 || bad != 0)
        goto invalid;
    OPENSSL_cleanse(quad, sizeof(quad));
    return MR_SUCCESS;
invalid:
    OPENSSL_cleanse(quad, sizeof(quad));
    OPENSSL_cleanse(out->data + start, out->len - start);
    out->len = start;
    MR_BAIL(MR_ERR_USAGE, "illegal base64 data at input byte %zu", pos);
}

/* ---- PEM ---- */

static const char pem_begin[] = "-----BEGIN ";
static const char pem_dashes[] = "-----";

/* Finds the end of the line starting at off; returns the index of '\n' or len. */
static size_t line_end(const uint8_t *p, size_t len, size_t off)
{
    const uint8_t *nl = memchr(p + off, '\n', len - off);
    return nl == NULL ? len : (size_t)(nl - p);
}

static size_t trim_right(const uint8_t *p, size_t start, size_t end)
{
    while (end > start && (p[end - 1] == '\r' || p[end - 1] == ' ' || p[end - 1] == '\t'))
        end--;
    return end;
}

static bool has_prefix(const uint8_t *p, size_t len, const char *pre)
{
    size_t n = strlen(pre);
    return len >= n && memcmp(p, pre, n) == 0;
}

MR_RESULT mr_pem_next(mr_cursor *in, mr_pem_block *out, bool *found)
{
    const uint8_t *p = in->ptr;
    size_t len = in->len;
    size_t off = in->pos;
    mr_buf body;
    *found = false;
    mr_buf_init(&body, 0, MR_BUF_SECRET);

    /* Locate a BEGIN line that starts at a line start. */
    size_t begin = SIZE_MAX;
    for (size_t ls = off; ls < len;) {
        if (has_prefix(p + ls, len - ls, pem_begin)) {
            begin = ls;
            break;
        }
        size_t le = line_end(p, len, ls);
        ls = le == len ? len : le + 1;
    }
    if (begin == SIZE_MAX)
        return MR_SUCCESS;

    size_t le = line_end(p, len, begin);
    size_t lend = trim_right(p, begin, le);
    size_t lstart = begin + strlen(pem_begin);
    MR_ENSURE(lend >= lstart + strlen(pem_dashes) &&
                  memcmp(p + lend - strlen(pem_dashes), pem_dashes, strlen(pem_dashes)) == 0,
              MR_ERR_USAGE, "invalid PEM: malformed BEGIN line");
    size_t label_len = lend - strlen(pem_dashes) - lstart;
    MR_ENSURE(label_len < MR_PEM_LABEL_MAX, MR_ERR_USAGE, "invalid PEM: label too long");
    memcpy(out->label, p + lstart, label_len);
    out->label[label_len] = '\0';

    char end_line[MR_PEM_LABEL_MAX + 32];
    int n = snprintf(end_line, sizeof(end_line), "-----END %s-----", out->label);
    MR_ENSURE(n > 0 && (size_t)n < sizeof(end_line), MR_ERR_INTERNAL, "PEM label");

    bool in_headers = true;
    size_t ls = le == len ? len : le + 1;
    while (ls < len) {
        size_t e = line_end(p, len, ls);
        size_t te = trim_right(p, ls, e);
        if (te - ls == (size_t)n && memcmp(p + ls, end_line, (size_t)n) == 0) {
            size_t before = out->der.len;
            mr_result r = mr_b64_decode_buf((const char *)body.data, body.len, MR_B64_STD, 0,
                                            &out->der);
            mr_buf_free(&body);
            if (!mr_ok(r)) {
                mr_error_prefix("invalid PEM block %s", out->label);
                out->der.len = before;
                return MR_FAILURE;
            }
            in->pos = e == len ? len : e + 1;
            *found = true;
            return MR_SUCCESS;
        }
        if (in_headers && memchr(p + ls, ':', te - ls) != NULL) {
            /* RFC 1421 header line; skipped. */
        } else if (in_headers && te == ls) {
            in_headers = false; /* blank line ending the headers */
        } else {
            in_headers = false;
            for (size_t i = ls; i < te; i++) {
                if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r')
                    continue;
                if (!mr_ok(mr_buf_append_u8(&body, p[i]))) {
                    mr_buf_free(&body);
                    return MR_FAILURE;
                }
            }
        }
        ls = e == len ? len : e + 1;
    }
    mr_buf_free(&body);
    MR_BAIL(MR_ERR_USAGE, "invalid PEM: missing END line for %s", out->label);
}

MR_RESULT mr_pem_encode_buf(const char *label, const uint8_t *der, size_t len, mr_buf *out)
{
    size_t start = out->len;
    mr_buf b64;
    mr_buf_init(&b64, 0, MR_BUF_SECRET);
    MR_ENSURE(strlen(label) < MR_PEM_LABEL_MAX, MR_ERR_USAGE, "PEM label too long");
    if (!mr_ok(mr_b64_encode_buf(der, len, MR_B64_STD, &b64)))
        goto fail;
    if (!mr_ok(mr_buf_printf(out, "-----BEGIN %s-----\n", label)))
        goto fail;
    for (size_t i = 0; i < b64.len; i += 64) {
        size_t k = b64.len - i < 64 ? b64.len - i : 64;
        if (!mr_ok(mr_buf_append(out, b64.data + i, k)) || !mr_ok(mr_buf_append_u8(out, '\n')))
            goto fail;
    }
    if (!mr_ok(mr_buf_printf(out, "-----END %s-----\n", label)))
        goto fail;
    mr_buf_free(&b64);
    return MR_SUCCESS;
fail:
    mr_buf_free(&b64);
    if (out->data != NULL)
        OPENSSL_cleanse(out->data + start, out->len - start);
    out->len = start;
    return MR_FAILURE;
}
