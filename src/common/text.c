/* SPDX-License-Identifier: Apache-2.0 */
/* Shared text decoders and encoders; see text.h. */
#include "common/text.h"

/* ---- hex digit ---- */

/* All-ones when a < b (a, b < 2^32), else zero. */
static uint32_t mask_lt(uint32_t a, uint32_t b)
{
    return (uint32_t)0 - (uint32_t)(((uint64_t)a - (uint64_t)b) >> 63);
}

static uint32_t mask_in(uint32_t c, uint32_t lo, uint32_t hi)
{
    return ~mask_lt(c, lo) & ~mask_lt(hi, c);
}

int mr_hex_digit(uint8_t c)
{
    uint32_t d = mask_in(c, '0', '9');
    uint32_t l = mask_in(c, 'a', 'f');
    uint32_t u = mask_in(c, 'A', 'F');
    uint32_t v = (d & ((uint32_t)c - '0')) | (l & ((uint32_t)c - 'a' + 10)) |
                 (u & ((uint32_t)c - 'A' + 10));
    uint32_t bad = ~(d | l | u);
    return (int)(int32_t)((v & ~bad) | bad); /* bad: all-ones = -1 */
}

/* ---- UTF-8 ---- */

uint32_t mr_utf8_decode(const uint8_t *p, size_t avail, size_t *size)
{
    *size = 1;
    if (avail == 0)
        return MR_UTF8_RUNE_ERROR;
    uint8_t c0 = p[0];
    if (c0 < 0x80)
        return c0;
    size_t n;
    uint32_t r;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c0 >= 0xC2 && c0 <= 0xDF) {
        n = 2;
        r = c0 & 0x1F;
    } else if (c0 >= 0xE0 && c0 <= 0xEF) {
        n = 3;
        r = c0 & 0x0F;
        if (c0 == 0xE0)
            lo = 0xA0; /* no overlong forms */
        if (c0 == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c0 >= 0xF0 && c0 <= 0xF4) {
        n = 4;
        r = c0 & 0x07;
        if (c0 == 0xF0)
            lo = 0x90; /* no overlong forms */
        if (c0 == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return MR_UTF8_RUNE_ERROR;
    }
    if (avail < n)
        return MR_UTF8_RUNE_ERROR;
    for (size_t i = 1; i < n; i++) {
        uint8_t c = p[i];
        if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF))
            return MR_UTF8_RUNE_ERROR;
        r = (r << 6) | (c & 0x3F);
    }
    *size = n;
    return r;
}

size_t mr_utf8_encode(uint32_t r, uint8_t out[MR_UTF8_MAX])
{
    if (r < 0x80) {
        out[0] = (uint8_t)r;
        return 1;
    }
    if (r < 0x800) {
        out[0] = (uint8_t)(0xC0 | (r >> 6));
        out[1] = (uint8_t)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (r >> 12));
        out[1] = (uint8_t)(0x80 | ((r >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (r & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (r >> 18));
    out[1] = (uint8_t)(0x80 | ((r >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((r >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (r & 0x3F));
    return 4;
}

MR_RESULT mr_utf8_append(mr_buf *b, uint32_t r)
{
    uint8_t t[MR_UTF8_MAX];
    size_t n = mr_utf8_encode(r, t);
    return mr_buf_append(b, t, n);
}

/* ---- JSON string literal ---- */

MR_RESULT mr_json_quote(mr_buf *out, const char *s, size_t len)
{
    static const char hexdig[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)(s != NULL ? s : "");
    size_t start = 0, i = 0; /* p[start..i) is pending verbatim output */
    MR_GUARD(mr_buf_append_u8(out, '"'));
    while (i < len) {
        uint8_t b = p[i];
        if (b < 0x80) {
            if (b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&') {
                i++;
                continue;
            }
            MR_GUARD(mr_buf_append(out, p + start, i - start));
            uint8_t e[6] = {'\\', b, 0, 0, 0, 0};
            size_t n = 2;
            switch (b) {
            case '\\':
            case '"': break;
            case '\b': e[1] = 'b'; break;
            case '\f': e[1] = 'f'; break;
            case '\n': e[1] = 'n'; break;
            case '\r': e[1] = 'r'; break;
            case '\t': e[1] = 't'; break;
            default:
                e[1] = 'u';
                e[2] = '0';
                e[3] = '0';
                e[4] = (uint8_t)hexdig[b >> 4];
                e[5] = (uint8_t)hexdig[b & 0xF];
                n = 6;
                break;
            }
            MR_GUARD(mr_buf_append(out, e, n));
            start = ++i;
            continue;
        }
        size_t n = 0;
        uint32_t r = mr_utf8_decode(p + i, len - i, &n);
        const char *esc = r == MR_UTF8_RUNE_ERROR && n == 1 ? "\\ufffd"
                          : r == 0x2028                      ? "\\u2028"
                          : r == 0x2029                      ? "\\u2029"
                                                             : NULL;
        if (esc != NULL) {
            MR_GUARD(mr_buf_append(out, p + start, i - start));
            MR_GUARD(mr_buf_append_str(out, esc));
            start = i + n;
        }
        i += n;
    }
    MR_GUARD(mr_buf_append(out, p + start, len - start));
    return mr_buf_append_u8(out, '"');
}

/* ---- percent-decoding ---- */

MR_RESULT mr_percent_decode(const char *in, size_t len, unsigned flags, mr_buf *out)
{
    const uint8_t *p = (const uint8_t *)in;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = p[i];
        if (b == '+' && (flags & MR_PCT_PLUS_SPACE)) {
            b = ' ';
        } else if (b == '%') {
            int hi = i + 1 < len ? mr_hex_digit(p[i + 1]) : -1;
            int lo = i + 2 < len ? mr_hex_digit(p[i + 2]) : -1;
            bool ok = hi >= 0 && lo >= 0;
            if (!ok && (flags & MR_PCT_STRICT)) {
                size_t have = len - i - 1 < 2 ? len - i - 1 : 2;
                MR_BAIL(MR_ERR_USAGE, "invalid URL escape \"%%%.*s\"", (int)have,
                        (const char *)p + i + 1);
            }
            if (ok && hi == 0 && lo == 0 && (flags & MR_PCT_NO_NUL)) {
                MR_ENSURE(!(flags & MR_PCT_STRICT), MR_ERR_USAGE,
                          "invalid NUL in URL escape");
                ok = false;
            }
            if (ok) {
                b = (uint8_t)(hi * 16 + lo);
                i += 2;
            }
        }
        MR_GUARD(mr_buf_append_u8(out, b));
    }
    return mr_buf_nul_terminate(out);
}

/* ---- RFC 3339 ---- */

int64_t mr_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool is_char(char c, char upper, unsigned flags)
{
    return c == upper || ((flags & MR_RFC3339_LOWER) && c == upper - 'A' + 'a');
}

mr_rfc3339_status mr_rfc3339_parse(const char *s, size_t len, unsigned flags,
                                   mr_rfc3339_time *out)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool loose = (flags & MR_RFC3339_LOOSE) != 0;
    unsigned Y, M, D, h, mi, sec, oh = 0, om = 0;
    uint64_t nsec = 0;
    int sign = 0;
    size_t i = 19;
    if (len < 20 || s[4] != '-' || s[7] != '-' || !is_char(s[10], 'T', flags) ||
        s[13] != ':' || s[16] != ':')
        return MR_RFC3339_BAD_LAYOUT;
    if (!digits(s, 4, &Y) || !digits(s + 5, 2, &M) || !digits(s + 8, 2, &D) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return MR_RFC3339_BAD_LAYOUT;
    if (s[i] == '.') {
        size_t start = ++i, nd = 0;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (nd < 9) {
                nsec = nsec * 10 + (uint64_t)(s[i] - '0');
                nd++;
            }
        if (i == start && !loose)
            return MR_RFC3339_BAD_LAYOUT;
        while (nd++ < 9)
            nsec *= 10;
    }
    if (i + 1 == len && is_char(s[i], 'Z', flags)) {
        sign = 0;
    } else if (!(flags & MR_RFC3339_UTC_ONLY) && i + 6 == len && (s[i] == '+' || s[i] == '-') &&
               s[i + 3] == ':') {
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om))
            return MR_RFC3339_BAD_LAYOUT;
        if (oh > 23 || om > 59)
            return MR_RFC3339_BAD_RANGE;
        sign = s[i] == '+' ? 1 : -1;
    } else {
        return MR_RFC3339_BAD_ZONE;
    }
    if (M < 1 || M > 12 || D < 1 || h > 23 || mi > 59 || sec > (loose ? 60u : 59u))
        return MR_RFC3339_BAD_RANGE;
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > (loose ? 31u : mdays[M - 1] + (M == 2 && leap ? 1u : 0u)))
        return MR_RFC3339_BAD_RANGE;
    int64_t secs = mr_days_from_civil(Y, M, D) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 +
                   sec;
    secs -= sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
    out->unix_sec = secs;
    out->nsec = (int32_t)nsec;
    return MR_RFC3339_OK;
}
