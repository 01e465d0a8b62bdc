/* SPDX-License-Identifier: Apache-2.0 */
/* Target: the shared text decoders of common/text.c: mr_utf8_decode, mr_json_quote,
 * mr_percent_decode, mr_rfc3339_parse. The first input byte selects flags; the rest is the
 * text. Properties:
 *  - UTF-8: every step consumes 1..4 bytes within the input; a decoded rune re-encodes to
 *    exactly the bytes consumed.
 *  - JSON: the quoted string is valid JSON (jansson parses it); for valid UTF-8 without NUL
 *    it decodes back to the input; it never contains a raw '<', '>', '&' or control byte.
 *  - percent: the output is never longer than the input; strict success implies lenient
 *    success with the same bytes.
 *  - RFC 3339: nsec in range; whatever the strict form accepts without an offset, the lenient
 *    one accepts with the same time. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_utf8(const uint8_t *p, size_t n, bool *valid)
{
    *valid = true;
    for (size_t i = 0; i < n;) {
        size_t len = 0;
        uint32_t r = mr_utf8_decode(p + i, n - i, &len);
        if (len < 1 || len > MR_UTF8_MAX || len > n - i)
            abort();
        if (r == MR_UTF8_RUNE_ERROR && len == 1) {
            *valid = false;
        } else {
            uint8_t e[MR_UTF8_MAX];
            if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF) || mr_utf8_encode(r, e) != len ||
                memcmp(e, p + i, len) != 0)
                abort();
        }
        i += len;
    }
}

static void check_json(const uint8_t *p, size_t n, bool valid)
{
    mr_buf q;
    mr_buf_init(&q, 0, 0);
    if (!mr_ok(mr_json_quote(&q, (const char *)p, n)))
        abort();
    for (size_t i = 0; i < q.len; i++)
        if (q.data[i] < 0x20 || q.data[i] == '<' || q.data[i] == '>' || q.data[i] == '&')
            abort();
    json_error_t err;
    json_t *j = json_loadb((const char *)q.data, q.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j == NULL || !json_is_string(j))
        abort();
    if (valid && (json_string_length(j) != n || (n > 0 && memcmp(json_string_value(j), p, n) != 0)))
        abort();
    json_decref(j);
    mr_buf_free(&q);
}

static void check_percent(const uint8_t *p, size_t n, unsigned flags)
{
    mr_buf a, b;
    mr_buf_init(&a, 0, 0);
    mr_buf_init(&b, 0, 0);
    bool strict = mr_ok(mr_percent_decode((const char *)p, n, flags | MR_PCT_STRICT, &a));
    bool lenient = mr_ok(mr_percent_decode((const char *)p, n, flags & ~(unsigned)MR_PCT_STRICT, &b));
    if (!lenient || b.len > n || (strict && (a.len > n || a.len != b.len ||
                                             (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))))
        abort();
    mr_error_clear();
    mr_buf_free(&a);
    mr_buf_free(&b);
}

static void check_rfc3339(const uint8_t *p, size_t n, unsigned flags)
{
    mr_rfc3339_time t, l;
    mr_rfc3339_status st = mr_rfc3339_parse((const char *)p, n, flags, &t);
    if (st == MR_RFC3339_OK && (t.nsec < 0 || t.nsec > 999999999))
        abort();
    if (mr_rfc3339_parse((const char *)p, n, 0, &t) == MR_RFC3339_OK && p[n - 1] == 'Z') {
        if (mr_rfc3339_parse((const char *)p, n, MR_RFC3339_UTC_LENIENT, &l) != MR_RFC3339_OK ||
            l.unix_sec != t.unix_sec || l.nsec != t.nsec)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned flags = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    bool valid = false;
    check_utf8(p, n, &valid);
    check_json(p, n, valid);
    check_percent(p, n, flags & (MR_PCT_PLUS_SPACE | MR_PCT_NO_NUL));
    check_rfc3339(p, n, flags & (MR_RFC3339_LOWER | MR_RFC3339_UTC_ONLY | MR_RFC3339_LOOSE));
    return 0;
}
