/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: common/text.h (hex digit, UTF-8, JSON quoting, percent-decoding, RFC 3339). */
#include "mr_test.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/text.h"

/* ---- hex digit ---- */

static void test_hex_digit(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        assert_int_equal(mr_hex_digit((uint8_t)c), want);
    }
}

/* ---- UTF-8 ---- */

/* The decoder the template lexer had: full decode, then range checks. Go's DecodeRune (the
 * merged one checks the second byte's range instead) must agree with it everywhere. */
static uint32_t ref_decode(const uint8_t *s, size_t n, size_t *len)
{
    *len = 1;
    if (n == 0)
        return 0xFFFD;
    uint8_t c = s[0];
    if (c < 0x80)
        return c;
    size_t need;
    uint32_t r, min;
    if ((c & 0xE0) == 0xC0)
        need = 2, r = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        need = 3, r = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        need = 4, r = c & 0x07, min = 0x10000;
    else
        return 0xFFFD;
    if (n < need)
        return 0xFFFD;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0xFFFD;
        r = (r << 6) | (s[i] & 0x3F);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
        return 0xFFFD;
    *len = need;
    return r;
}

static void check_decode(const uint8_t *s, size_t n)
{
    size_t a = 0, b = 0;
    uint32_t ra = mr_utf8_decode(s, n, &a), rb = ref_decode(s, n, &b);
    if (ra != rb || a != b)
        fail_msg("%02x %02x %02x %02x (n=%zu): %x/%zu, want %x/%zu", s[0], n > 1 ? s[1] : 0,
                 n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, n, ra, a, rb, b);
}

static void test_utf8_decode(void **state)
{
    (void)state;
    size_t n = 0;
    assert_int_equal(mr_utf8_decode(NULL, 0, &n), MR_UTF8_RUNE_ERROR);
    assert_int_equal(n, 1);
    static const struct {
        const char *s;
        uint32_t r;
        size_t n;
    } cases[] = {
        {"a", 'a', 1},
        {"\xc3\xa9", 0xE9, 2},
        {"\xe2\x82\xac", 0x20AC, 3},
        {"\xef\xbf\xbd", 0xFFFD, 3}, /* a real U+FFFD */
        {"\xf0\x9f\x98\x80", 0x1F600, 4},
        {"\xf4\x8f\xbf\xbf", 0x10FFFF, 4},
        {"\xc0\x80", 0xFFFD, 1},         /* overlong NUL */
        {"\xc1\xbf", 0xFFFD, 1},         /* overlong */
        {"\xe0\x9f\xbf", 0xFFFD, 1},     /* overlong */
        {"\xed\xa0\x80", 0xFFFD, 1},     /* surrogate */
        {"\xf0\x8f\xbf\xbf", 0xFFFD, 1}, /* overlong */
        {"\xf4\x90\x80\x80", 0xFFFD, 1}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 0xFFFD, 1},
        {"\xff", 0xFFFD, 1},
        {"\x80", 0xFFFD, 1},
        {"\xe2\x82", 0xFFFD, 1}, /* truncated */
        {"\xe2\x28\xa1", 0xFFFD, 1},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        uint32_t r = mr_utf8_decode((const uint8_t *)cases[i].s, strlen(cases[i].s), &n);
        assert_int_equal(r, cases[i].r);
        assert_int_equal(n, cases[i].n);
    }
    /* exhaustive over 1-3 byte inputs, and 4-byte ones with every lead and second byte */
    uint8_t s[4] = {0};
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        check_decode(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            check_decode(s, 2);
            if (a < 0xE0 || a > 0xEF)
                continue;
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (uint8_t)c;
                check_decode(s, 3);
                check_decode(s, 2);
            }
        }
    }
    for (unsigned a = 0xF0; a < 0xF8; a++)
        for (unsigned b = 0x70; b < 0xD0; b++)
            for (unsigned c = 0x7f; c < 0xC1; c += 0x41)
                for (unsigned d = 0x7f; d < 0xC1; d += 0x20) {
                    s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = (uint8_t)c, s[3] = (uint8_t)d;
                    check_decode(s, 4);
                    check_decode(s, 3);
                }
}

static void test_utf8_encode(void **state)
{
    (void)state;
    static const uint32_t runes[] = {0, 0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFD, 0xFFFF,
                                     0x10000, 0x1F600, 0x10FFFF};
    for (size_t i = 0; i < MR_ARRAY_LEN(runes); i++) {
        uint8_t e[MR_UTF8_MAX];
        size_t n = mr_utf8_encode(runes[i], e), m = 0;
        assert_int_equal(n, runes[i] < 0x80 ? 1 : runes[i] < 0x800 ? 2 : runes[i] < 0x10000 ? 3 : 4);
        assert_int_equal(mr_utf8_decode(e, n, &m), runes[i]);
        assert_int_equal(m, n);
    }
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_utf8_append(&b, 0x20AC));
    MR_ASSERT_OK(mr_utf8_append(&b, 'x'));
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "\xe2\x82\xacx", 4);
    mr_buf_free(&b);
}

/* ---- JSON quoting ---- */

static void quote_case(const char *in, size_t len, const char *want)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_json_quote(&b, in, len));
    MR_ASSERT_OK(mr_buf_nul_terminate(&b));
    assert_string_equal((const char *)b.data, want);
    mr_buf_free(&b);
}

#define QUOTE(in, want) quote_case(in, sizeof(in) - 1, want)

/* Expected texts are what Go's json.Marshal writes for the same string. */
static void test_json_quote(void **state)
{
    (void)state;
    QUOTE("", "\"\"");
    quote_case(NULL, 0, "\"\"");
    QUOTE("plain text", "\"plain text\"");
    QUOTE("\"q\" \\b/", "\"\\\"q\\\" \\\\b/\"");
    QUOTE("<a href=\"x\">&amp;</a>", "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026amp;\\u003c/a\\u003e\"");
    QUOTE("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    QUOTE("\x01\x1f\x0b", "\"\\u0001\\u001f\\u000b\"");
    QUOTE("a\0b", "\"a\\u0000b\"");
    QUOTE("\x7f", "\"\x7f\"");
    QUOTE("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    QUOTE("\xe2\x80\xa8|\xe2\x80\xa9", "\"\\u2028|\\u2029\"");
    QUOTE("\xff", "\"\\ufffd\"");
    QUOTE("a\xe2\x82", "\"a\\ufffd\\ufffd\"");
    QUOTE("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    QUOTE("\xef\xbf\xbd", "\"\xef\xbf\xbd\""); /* a real U+FFFD stays verbatim */
    QUOTE("\xc0\xaf<", "\"\\ufffd\\ufffd\\u003c\"");
    /* output limit */
    mr_buf small;
    mr_buf_init(&small, 4, 0);
    MR_ASSERT_FAIL(mr_json_quote(&small, "abcdef", 6), MR_ERR_USAGE, "too large");
    mr_buf_free(&small);
}

/* ---- percent-decoding ---- */

static void pct_case(const char *in, unsigned flags, const char *want, size_t want_len)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_percent_decode(in, strlen(in), flags, &b));
    assert_int_equal(b.len, want_len);
    assert_memory_equal(b.data, want, want_len + 1); /* with the NUL terminator */
    mr_buf_free(&b);
}

static void pct_fail(const char *in, unsigned flags, const char *msg)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_FAIL(mr_percent_decode(in, strlen(in), flags, &b), MR_ERR_USAGE, msg);
    mr_buf_free(&b);
}

static void test_percent_decode(void **state)
{
    (void)state;
    /* lenient (grpc-message): a '%' without two hex digits stays */
    pct_case("", 0, "", 0);
    pct_case("a%20b%3Ac%3a", 0, "a b:c:", 6);
    pct_case("%zz%4%", 0, "%zz%4%", 6);
    pct_case("% f%+f%-1", 0, "% f%+f%-1", 9);
    pct_case("100%", 0, "100%", 4);
    pct_case("a+b", 0, "a+b", 3);
    pct_case("%00x", 0, "\0x", 2);
    pct_case("%00x", MR_PCT_NO_NUL, "%00x", 4);
    pct_case("%e2%82%AC", 0, "\xe2\x82\xac", 3);
    /* strict (URL paths and queries) */
    pct_case("a%2Fb+c", MR_PCT_STRICT, "a/b+c", 5);
    pct_case("a%2Fb+c", MR_PCT_STRICT | MR_PCT_PLUS_SPACE, "a/b c", 5);
    pct_fail("a%zzb", MR_PCT_STRICT, "invalid URL escape \"%zz\"");
    pct_fail("a%4", MR_PCT_STRICT, "invalid URL escape \"%4\"");
    pct_fail("a%", MR_PCT_STRICT, "invalid URL escape \"%\"");
    pct_fail("%0g", MR_PCT_STRICT, "invalid URL escape \"%0g\"");
    pct_fail("a%00", MR_PCT_STRICT | MR_PCT_NO_NUL, "invalid NUL");
    pct_case("a%00", MR_PCT_STRICT, "a\0", 2);
}

/* ---- RFC 3339 ---- */

static void rfc_ok(const char *s, unsigned flags, int64_t sec, int32_t nsec)
{
    mr_rfc3339_time t = {0, 0};
    mr_rfc3339_status st = mr_rfc3339_parse(s, strlen(s), flags, &t);
    if (st != MR_RFC3339_OK)
        fail_msg("%s (flags %u): status %d", s, flags, (int)st);
    assert_int_equal(t.unix_sec, sec);
    assert_int_equal(t.nsec, nsec);
}

static void rfc_bad(const char *s, unsigned flags, mr_rfc3339_status want)
{
    mr_rfc3339_time t = {0, 0};
    mr_rfc3339_status st = mr_rfc3339_parse(s, strlen(s), flags, &t);
    if (st != want)
        fail_msg("%s (flags %u): status %d, want %d", s, flags, (int)st, (int)want);
}

#define STRICT 0u
#define LENIENT MR_RFC3339_UTC_LENIENT

static void test_rfc3339(void **state)
{
    (void)state;
    /* both */
    rfc_ok("1970-01-01T00:00:00Z", STRICT, 0, 0);
    rfc_ok("1970-01-01T00:00:00Z", LENIENT, 0, 0);
    rfc_ok("2024-02-29T23:59:59Z", STRICT, 1709251199, 0);
    rfc_ok("2024-02-29T23:59:59Z", LENIENT, 1709251199, 0);
    rfc_ok("2019-05-15T12:00:00.5Z", STRICT, 1557921600, 500000000);
    rfc_ok("2019-05-15T12:00:00.123456789123Z", LENIENT, 1557921600, 123456789);
    rfc_ok("1969-12-31T23:59:59Z", STRICT, -1, 0);
    rfc_ok("0001-01-01T00:00:00Z", STRICT, -62135596800, 0);
    /* Go's strict rules */
    rfc_ok("2006-01-02T15:04:05+07:00", STRICT, 1136189045, 0);
    rfc_ok("2006-01-02T15:04:05-01:30", STRICT, 1136219645, 0);
    rfc_bad("2006-01-02t15:04:05Z", STRICT, MR_RFC3339_BAD_LAYOUT);
    rfc_bad("2006-01-02T15:04:05z", STRICT, MR_RFC3339_BAD_ZONE);
    rfc_bad("2006-01-02T15:04:05.Z", STRICT, MR_RFC3339_BAD_LAYOUT);
    rfc_bad("2023-02-29T00:00:00Z", STRICT, MR_RFC3339_BAD_RANGE);
    rfc_bad("2024-04-31T00:00:00Z", STRICT, MR_RFC3339_BAD_RANGE);
    rfc_bad("2024-01-01T00:00:60Z", STRICT, MR_RFC3339_BAD_RANGE);
    rfc_bad("2024-01-01T00:00:00+24:00", STRICT, MR_RFC3339_BAD_RANGE);
    rfc_bad("2024-01-01T00:00:00+0100", STRICT, MR_RFC3339_BAD_ZONE);
    rfc_bad("2024-01-01T00:00:00+a1:00", STRICT, MR_RFC3339_BAD_LAYOUT);
    /* lenient (Intel collateral, CLI --at): lower case, only Z, loose ranges as timegm */
    rfc_ok("2024-01-02t03:04:05z", LENIENT, 1704164645, 0);
    rfc_ok("2024-01-02T03:04:05.Z", LENIENT, 1704164645, 0);
    rfc_ok("2023-02-30T00:00:00Z", LENIENT, 1677715200, 0); /* = 2023-03-02 */
    rfc_ok("2016-12-31T23:59:60Z", LENIENT, 1483228800, 0); /* = 2017-01-01T00:00:00 */
    rfc_bad("2006-01-02T15:04:05+07:00", LENIENT, MR_RFC3339_BAD_ZONE);
    rfc_bad("2024-01-01T00:00:00", LENIENT, MR_RFC3339_BAD_LAYOUT);
    rfc_bad("2024-01-01T00:00:00Zjunk", LENIENT, MR_RFC3339_BAD_ZONE);
    rfc_bad("2024-01-32T00:00:00Z", LENIENT, MR_RFC3339_BAD_RANGE);
    rfc_bad("2024-00-01T00:00:00Z", LENIENT, MR_RFC3339_BAD_RANGE);
    rfc_bad("2024-01-01T24:00:00Z", LENIENT, MR_RFC3339_BAD_RANGE);
    rfc_bad("2024-01-01T00:00:61Z", LENIENT, MR_RFC3339_BAD_RANGE);
    rfc_bad("2024-1-01T00:00:00Z", LENIENT, MR_RFC3339_BAD_LAYOUT);
    rfc_bad("2024-01-01 00:00:00Z", LENIENT, MR_RFC3339_BAD_LAYOUT);
    rfc_bad("", LENIENT, MR_RFC3339_BAD_LAYOUT);
    /* the layout is checked before the zone, the zone before the ranges */
    rfc_bad("2024-13-01X00:00:00+01:00", LENIENT, MR_RFC3339_BAD_LAYOUT);
    rfc_bad("2024-13-01T00:00:00+01:00", LENIENT, MR_RFC3339_BAD_ZONE);
    /* the lenient form equals timegm for every day of a few years */
    for (int64_t day = -800; day < 3 * 366; day += 1) {
        time_t t = (time_t)((day * 86400) + 3723 + (day % 7) * 7200 + 946684800);
        struct tm tm;
        char buf[32];
        assert_non_null(gmtime_r(&t, &tm));
        assert_int_not_equal(strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm), 0);
        rfc_ok(buf, LENIENT, (int64_t)timegm(&tm), 0);
        rfc_ok(buf, STRICT, (int64_t)t, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_digit),      cmocka_unit_test(test_utf8_decode),
        cmocka_unit_test(test_utf8_encode),    cmocka_unit_test(test_json_quote),
        cmocka_unit_test(test_percent_decode), cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
