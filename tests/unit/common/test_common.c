/* SPDX-License-Identifier: Apache-2.0 */
#include "mr_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/log.h"
#include "common/uuid.h"

/* ---- result ---- */

static mr_result fails_with_usage(void) { MR_BAIL(MR_ERR_USAGE, "bad %s", "thing"); }

static mr_result guarded(void)
{
    MR_GUARD(fails_with_usage());
    return MR_SUCCESS;
}

static mr_result out_style(int *cleaned)
{
    mr_result res = MR_FAILURE;
    MR_ENSURE_OUT(1 == 2, MR_ERR_STATE, "wrong state");
    res = MR_SUCCESS;
out:
    *cleaned = 1;
    return res;
}

static void test_result_propagation(void **state)
{
    (void)state;
    MR_ASSERT_FAIL(guarded(), MR_ERR_USAGE, "bad thing");
    assert_non_null(strstr(mr_error_get()->file, "test_common.c"));
    int cleaned = 0;
    MR_ASSERT_FAIL(out_style(&cleaned), MR_ERR_STATE, "wrong state");
    assert_int_equal(cleaned, 1);
    mr_error_prefix("context %d", 7);
    assert_string_equal(mr_error_get()->msg, "context 7: wrong state");
    mr_error e;
    mr_error_take(&e);
    assert_int_equal(mr_error_get()->cat, MR_ERR_NONE);
    mr_error_restore(&e);
    assert_int_equal(mr_error_get()->cat, MR_ERR_STATE);
}

static void test_errcat_table(void **state)
{
    (void)state;
    assert_int_equal(mr_errcat_http(MR_ERR_USAGE), 400);
    assert_int_equal(mr_errcat_http(MR_ERR_AUTH), 401);
    assert_int_equal(mr_errcat_http(MR_ERR_NOT_FOUND), 404);
    assert_int_equal(mr_errcat_http(MR_ERR_INTERNAL), 500);
    assert_int_equal(mr_errcat_grpc(MR_ERR_STATE), 9);
    assert_int_equal(mr_errcat_grpc(MR_ERR_AUTH), 16);
    assert_int_equal(mr_errcat_exit(MR_ERR_NONE), 0);
    assert_int_equal(mr_errcat_exit(MR_ERR_IO), 1);
    /* out-of-range categories map to internal */
    assert_int_equal(mr_errcat_http((mr_errcat)99), 500);
    assert_string_equal(mr_errcat_name(MR_ERR_ATTESTATION), "attestation");
}

/* Every category's HTTP status, gRPC code and exit code. The specific categories answer
 * exactly like their class, so what a client sees does not change when an error gets one. */
static void test_errcat_mapping(void **state)
{
    (void)state;
    static const struct {
        mr_errcat cat;
        const char *name;
        mr_errcat cls;
        int http, grpc, exit_code;
    } want[] = {
        {MR_ERR_NONE, "none", MR_ERR_NONE, 200, 0, 0},
        {MR_ERR_USAGE, "usage", MR_ERR_USAGE, 400, 3, 1},
        {MR_ERR_AUTH, "auth", MR_ERR_AUTH, 401, 16, 1},
        {MR_ERR_NOT_FOUND, "not-found", MR_ERR_NOT_FOUND, 404, 5, 1},
        {MR_ERR_STATE, "state", MR_ERR_STATE, 400, 9, 1},
        {MR_ERR_ATTESTATION, "attestation", MR_ERR_ATTESTATION, 400, 7, 1},
        {MR_ERR_PROTOCOL, "protocol", MR_ERR_PROTOCOL, 400, 3, 1},
        {MR_ERR_IO, "io", MR_ERR_IO, 500, 14, 1},
        {MR_ERR_INTERNAL, "internal", MR_ERR_INTERNAL, 500, 13, 1},
        {MR_ERR_UNAVAILABLE, "unavailable", MR_ERR_UNAVAILABLE, 503, 14, 1},
        {MR_ERR_CONFLICT, "conflict", MR_ERR_STATE, 400, 9, 1},
        {MR_ERR_TOO_LARGE, "too-large", MR_ERR_USAGE, 400, 3, 1},
        {MR_ERR_CORRUPT, "corrupt", MR_ERR_PROTOCOL, 400, 3, 1},
        /* unknown values, also ones that look like a refinement, are internal errors */
        {(mr_errcat)(MR_ERR_STATE | (7 << MR_ERR_KIND_SHIFT)), "internal", MR_ERR_INTERNAL, 500,
         13, 1},
    };
    assert_int_equal(MR_ERR__COUNT, 10); /* a new class needs a row here */
    for (size_t i = 0; i < MR_ARRAY_LEN(want); i++) {
        assert_string_equal(mr_errcat_name(want[i].cat), want[i].name);
        assert_int_equal(mr_errcat_class(want[i].cat), want[i].cls);
        assert_int_equal(mr_errcat_http(want[i].cat), want[i].http);
        assert_int_equal(mr_errcat_grpc(want[i].cat), want[i].grpc);
        assert_int_equal(mr_errcat_exit(want[i].cat), want[i].exit_code);
    }
}

static mr_result fails_with_conflict(void) { MR_BAIL(MR_ERR_CONFLICT, "store conflict"); }

/* mr_error_is: a class matches its specific categories, a specific category only itself;
 * the slot keeps both through prefix, take and restore. */
static void test_error_is(void **state)
{
    (void)state;
    mr_error_clear();
    assert_true(mr_error_is(MR_ERR_NONE));
    assert_false(mr_error_is(MR_ERR_STATE));
    MR_ASSERT_FAIL(fails_with_conflict(), MR_ERR_CONFLICT, "store conflict");
    assert_int_equal(mr_error_get()->cat, MR_ERR_STATE);
    assert_int_equal(mr_error_get()->kind, MR_ERR_CONFLICT);
    assert_true(mr_error_is(MR_ERR_STATE));
    assert_false(mr_error_is(MR_ERR_TOO_LARGE));
    assert_false(mr_error_is(MR_ERR_USAGE));
    mr_error_prefix("committing");
    mr_error e;
    mr_error_take(&e);
    assert_false(mr_error_is(MR_ERR_CONFLICT));
    mr_error_restore(&e);
    assert_true(mr_error_is(MR_ERR_CONFLICT));
    assert_string_equal(mr_error_get()->msg, "committing: store conflict");
    /* a plain class error is not any of its refinements */
    MR_ASSERT_FAIL(fails_with_usage(), MR_ERR_USAGE, "bad thing");
    assert_int_equal(mr_error_get()->kind, MR_ERR_USAGE);
    assert_false(mr_error_is(MR_ERR_TOO_LARGE));
    /* a value outside the enumeration is recorded as internal */
    mr_error_set((mr_errcat)1234, __FILE__, __LINE__, "odd");
    assert_int_equal(mr_error_get()->cat, MR_ERR_INTERNAL);
    assert_true(mr_error_is(MR_ERR_INTERNAL));
}

/* ---- alloc ---- */

/* The wiping allocator behaves like malloc/calloc/realloc/free for its users. */
static void test_wipe_allocator(void **state)
{
    (void)state;
    uint8_t *p = mr_wipe_calloc(4, 8);
    assert_non_null(p);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(p[i], 0);
    memset(p, 0xab, 32);
    p = mr_wipe_realloc(p, 4096); /* grows: content kept */
    assert_non_null(p);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(p[i], 0xab);
    p = mr_wipe_realloc(p, 8); /* shrinks: prefix kept */
    assert_non_null(p);
    assert_int_equal(p[7], 0xab);
    mr_wipe_free(p);
    mr_wipe_free(NULL);
    uint8_t *q = mr_wipe_realloc(NULL, 16);
    assert_non_null(q);
    mr_wipe_free(q);
    q = mr_wipe_malloc(0);
    assert_non_null(q);
    mr_wipe_free(q);
}

static void test_alloc_failure_injection(void **state)
{
    (void)state;
    mr_alloc_fail_after(1);
    void *a = mr_alloc(10);
    void *b = mr_alloc(10);
    assert_non_null(a);
    assert_null(b);
    assert_null(mr_secret_alloc(10));
    mr_alloc_fail_reset();
    mr_free(a);
    uint8_t *s = mr_secret_alloc(100);
    assert_non_null(s);
    assert_int_equal((uintptr_t)s % 32, 0); /* pooled (test_secret_pool.c) */
    memset(s, 0xAA, 100);
    mr_secret_free(s, 100);
    s = mr_secret_alloc(40000); /* above the pool's classes: page-aligned, its own block */
    assert_non_null(s);
    assert_int_equal((uintptr_t)s % 4096, 0);
    mr_secret_free(s, 40000);
    mr_secret_free(NULL, 0);
    mr_free(NULL);
    char *d = mr_strndup("abcdef", 3);
    assert_string_equal(d, "abc");
    mr_free(d);
}

/* ---- cursor / buf ---- */

static void test_cursor(void **state)
{
    (void)state;
    const uint8_t data[] = {1, 2, 0, 3, 0, 0, 0, 9, 8, 7, 6, 5, 4, 3, 2, 0xff};
    mr_cursor c;
    mr_cursor_init(&c, data, sizeof(data));
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    MR_ASSERT_OK(mr_cursor_u8(&c, &u8));
    assert_int_equal(u8, 1);
    MR_ASSERT_OK(mr_cursor_u16le(&c, &u16));
    assert_int_equal(u16, 2);
    MR_ASSERT_OK(mr_cursor_u32le(&c, &u32));
    assert_int_equal(u32, 3);
    MR_ASSERT_OK(mr_cursor_skip(&c, 1));
    MR_ASSERT_OK(mr_cursor_u64le(&c, &u64));
    assert_int_equal(u64, 0xff02030405060708ULL);
    assert_int_equal(mr_cursor_remaining(&c), 0);
    MR_ASSERT_FAIL(mr_cursor_u8(&c, &u8), MR_ERR_PROTOCOL, "truncated");
    /* a failed read does not move the cursor */
    mr_cursor_init(&c, data, 3);
    MR_ASSERT_FAIL(mr_cursor_u32be(&c, &u32), MR_ERR_PROTOCOL, "truncated");
    assert_int_equal(c.pos, 0);
    MR_ASSERT_OK(mr_cursor_u16be(&c, &u16));
    assert_int_equal(u16, 0x0102);
    mr_cursor sub;
    mr_cursor_init(&c, data, sizeof(data));
    MR_ASSERT_OK(mr_cursor_sub(&c, 4, &sub));
    assert_int_equal(mr_cursor_remaining(&sub), 4);
    MR_ASSERT_FAIL(mr_cursor_skip(&sub, 5), MR_ERR_PROTOCOL, "truncated");
    mr_slice v;
    MR_ASSERT_FAIL(mr_cursor_view(&c, SIZE_MAX, &v), MR_ERR_PROTOCOL, "truncated");
    mr_cursor_init(&c, NULL, 10);
    assert_int_equal(mr_cursor_remaining(&c), 0);
}

static void test_buf_limits(void **state)
{
    (void)state;
    mr_buf b;
    mr_buf_init(&b, 10, 0);
    MR_ASSERT_OK(mr_buf_append(&b, "12345", 5));
    MR_ASSERT_OK(mr_buf_printf(&b, "%d", 6789));
    assert_int_equal(b.len, 9);
    MR_ASSERT_FAIL(mr_buf_append(&b, "ab", 2), MR_ERR_TOO_LARGE, "too large");
    assert_int_equal(b.len, 9);
    MR_ASSERT_OK(mr_buf_append_u8(&b, 'x'));
    assert_memory_equal(b.data, "123456789x", 10);
    MR_ASSERT_FAIL(mr_buf_reserve(&b, SIZE_MAX), MR_ERR_TOO_LARGE, "too large");
    mr_buf_free(&b);
    assert_null(b.data);

    mr_buf s;
    mr_buf_init(&s, 0, MR_BUF_SECRET);
    for (int i = 0; i < 1000; i++)
        MR_ASSERT_OK(mr_buf_append_u32le(&s, (uint32_t)i));
    assert_int_equal(s.len, 4000);
    assert_int_equal(s.data[4], 1);
    assert_null(mr_buf_steal(&s, NULL)); /* secret buffers cannot be stolen */
    mr_buf_reset(&s);
    assert_int_equal(s.len, 0);
    mr_buf_free(&s);

    mr_buf c;
    mr_buf_init(&c, 0, 0);
    MR_ASSERT_OK(mr_buf_append_u16le(&c, 0x0102));
    MR_ASSERT_OK(mr_buf_append_u64le(&c, 0x0807060504030201ULL));
    MR_ASSERT_OK(mr_buf_nul_terminate(&c));
    assert_int_equal(c.len, 10);
    size_t n;
    uint8_t *p = mr_buf_steal(&c, &n);
    assert_int_equal(n, 10);
    assert_int_equal(p[0], 2);
    assert_int_equal(p[9], 8);
    mr_free(p);

    /* failure injection inside growth leaves the buffer intact */
    mr_buf_init(&c, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(&c, "abc"));
    mr_alloc_fail_after(0);
    uint8_t big[200] = {0};
    MR_ASSERT_FAIL(mr_buf_append(&c, big, sizeof(big)), MR_ERR_INTERNAL, "out of memory");
    mr_alloc_fail_reset();
    assert_int_equal(c.len, 3);
    assert_memory_equal(c.data, "abc", 3);
    mr_buf_free(&c);
}

/* ---- hex ---- */

static void test_hex(void **state)
{
    (void)state;
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff, 0x90};
    MR_ASSERT_OK(mr_hex_encode_buf(in, sizeof(in), &b));
    assert_int_equal(b.len, 14);
    assert_memory_equal(b.data, "0001abcdefff90", 14);
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_hex_decode_buf("0001ABCDefFF90", 14, &b));
    assert_memory_equal(b.data, in, sizeof(in));
    mr_buf_reset(&b);
    MR_ASSERT_FAIL(mr_hex_decode_buf("abc", 3, &b), MR_ERR_USAGE, "odd length");
    MR_ASSERT_FAIL(mr_hex_decode_buf("zz", 2, &b), MR_ERR_USAGE, "invalid hex");
    MR_ASSERT_FAIL(mr_hex_decode_buf("0g", 2, &b), MR_ERR_USAGE, "invalid hex");
    MR_ASSERT_FAIL(mr_hex_decode_buf("G0", 2, &b), MR_ERR_USAGE, "invalid hex");
    MR_ASSERT_FAIL(mr_hex_decode_buf("/0", 2, &b), MR_ERR_USAGE, "invalid hex");
    MR_ASSERT_FAIL(mr_hex_decode_buf(":0", 2, &b), MR_ERR_USAGE, "invalid hex");
    MR_ASSERT_FAIL(mr_hex_decode_buf("@0", 2, &b), MR_ERR_USAGE, "invalid hex");
    MR_ASSERT_FAIL(mr_hex_decode_buf("`0", 2, &b), MR_ERR_USAGE, "invalid hex");
    assert_int_equal(b.len, 0);
    MR_ASSERT_OK(mr_hex_decode_buf("", 0, &b));
    assert_int_equal(b.len, 0);
    uint8_t fixed[2];
    MR_ASSERT_OK(mr_hex_decode_fixed("beef", 4, fixed, 2));
    assert_int_equal(fixed[0], 0xbe);
    MR_ASSERT_FAIL(mr_hex_decode_fixed("bee", 3, fixed, 2), MR_ERR_USAGE, "expected 4");
    /* every byte value round-trips */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_hex_encode_buf(all, 256, &b));
    mr_buf d;
    mr_buf_init(&d, 0, MR_BUF_SECRET);
    MR_ASSERT_OK(mr_hex_decode_buf((const char *)b.data, b.len, &d));
    assert_memory_equal(d.data, all, 256);
    mr_buf_free(&d);
    mr_buf_free(&b);
}

/* ---- base64 (RFC 4648 §10 vectors) ---- */

static void b64_check(const char *plain, const char *enc)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_b64_encode_buf((const uint8_t *)plain, strlen(plain), MR_B64_STD, &b));
    assert_int_equal(b.len, strlen(enc));
    assert_memory_equal(b.data, enc, b.len);
    assert_int_equal(mr_b64_encoded_len(strlen(plain)), strlen(enc));
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_b64_decode_buf(enc, strlen(enc), MR_B64_STD, 0, &b));
    assert_int_equal(b.len, strlen(plain));
    if (b.len)
        assert_memory_equal(b.data, plain, b.len);
    mr_buf_free(&b);
}

static void test_base64(void **state)
{
    (void)state;
    b64_check("", "");
    b64_check("f", "Zg==");
    b64_check("fo", "Zm8=");
    b64_check("foo", "Zm9v");
    b64_check("foob", "Zm9vYg==");
    b64_check("fooba", "Zm9vYmE=");
    b64_check("foobar", "Zm9vYmFy");

    mr_buf b;
    mr_buf_init(&b, 0, 0);
    const uint8_t hi[] = {0xfb, 0xff, 0xbf};
    MR_ASSERT_OK(mr_b64_encode_buf(hi, 3, MR_B64_STD, &b));
    assert_memory_equal(b.data, "+/+/", 4);
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_b64_encode_buf(hi, 3, MR_B64_URL, &b));
    assert_memory_equal(b.data, "-_-_", 4);
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_b64_decode_buf("-_-_", 4, MR_B64_URL, 0, &b));
    assert_memory_equal(b.data, hi, 3);
    mr_buf_reset(&b);
    MR_ASSERT_FAIL(mr_b64_decode_buf("-_-_", 4, MR_B64_STD, 0, &b), MR_ERR_USAGE, "illegal");
    MR_ASSERT_FAIL(mr_b64_decode_buf("+/+/", 4, MR_B64_URL, 0, &b), MR_ERR_USAGE, "illegal");
    /* padding rules */
    MR_ASSERT_FAIL(mr_b64_decode_buf("Zg", 2, MR_B64_STD, 0, &b), MR_ERR_USAGE, "illegal");
    MR_ASSERT_FAIL(mr_b64_decode_buf("Zg=", 3, MR_B64_STD, 0, &b), MR_ERR_USAGE, "illegal");
    MR_ASSERT_FAIL(mr_b64_decode_buf("Z===", 4, MR_B64_STD, 0, &b), MR_ERR_USAGE, "illegal");
    MR_ASSERT_FAIL(mr_b64_decode_buf("Zg==Zg==", 8, MR_B64_STD, 0, &b), MR_ERR_USAGE, "illegal");
    MR_ASSERT_FAIL(mr_b64_decode_buf("Zm=v", 4, MR_B64_STD, 0, &b), MR_ERR_USAGE, "illegal");
    MR_ASSERT_FAIL(mr_b64_decode_buf("Zm9v\n", 5, MR_B64_STD, 0, &b), MR_ERR_USAGE, "illegal");
    MR_ASSERT_FAIL(mr_b64_decode_buf("Zm 9v", 5, MR_B64_STD, 0, &b), MR_ERR_USAGE, "illegal");
    assert_int_equal(b.len, 0);
    /* non-zero trailing bits are accepted, as Go's non-strict decoder does */
    MR_ASSERT_OK(mr_b64_decode_buf("Zh==", 4, MR_B64_STD, 0, &b));
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 'f');
    mr_buf_reset(&b);
    /* CR/LF skipped when asked */
    MR_ASSERT_OK(mr_b64_decode_buf("Zm9v\r\nYmFy\n", 11, MR_B64_STD, MR_B64_IGNORE_NEWLINES, &b));
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "foobar", 6);
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_b64_decode_buf("Zg=\n=\n", 6, MR_B64_STD, MR_B64_IGNORE_NEWLINES, &b));
    assert_int_equal(b.len, 1);
    mr_buf_reset(&b);
    /* round-trip of all byte values in both alphabets */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)(255 - i);
    for (int a = 0; a < 2; a++) {
        for (size_t n = 250; n <= 256; n++) {
            mr_buf e, d;
            mr_buf_init(&e, 0, 0);
            mr_buf_init(&d, 0, MR_BUF_SECRET);
            MR_ASSERT_OK(mr_b64_encode_buf(all, n, (mr_b64_alphabet)a, &e));
            MR_ASSERT_OK(mr_b64_decode_buf((const char *)e.data, e.len, (mr_b64_alphabet)a, 0, &d));
            assert_int_equal(d.len, n);
            assert_memory_equal(d.data, all, n);
            mr_buf_free(&e);
            mr_buf_free(&d);
        }
    }
    mr_buf_free(&b);
}

/* ---- PEM ---- */

static void test_pem(void **state)
{
    (void)state;
    const uint8_t der[] = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(&out, "leading text\n"));
    MR_ASSERT_OK(mr_pem_encode_buf("CERTIFICATE", der, sizeof(der) - 1, &out));
    MR_ASSERT_OK(mr_pem_encode_buf("EC PRIVATE KEY", der, 10, &out));
    MR_ASSERT_OK(mr_buf_nul_terminate(&out));
    const char *text = (const char *)out.data;
    assert_non_null(strstr(text, "-----BEGIN CERTIFICATE-----\n"));
    /* 64-column lines */
    const char *body = strstr(text, "-----\n") + 6;
    assert_int_equal(strchr(body, '\n') - body, 64);

    mr_cursor c;
    mr_cursor_init(&c, out.data, out.len);
    mr_pem_block blk;
    bool found;
    mr_buf_init(&blk.der, 0, 0);
    MR_ASSERT_OK(mr_pem_next(&c, &blk, &found));
    assert_true(found);
    assert_string_equal(blk.label, "CERTIFICATE");
    assert_int_equal(blk.der.len, sizeof(der) - 1);
    assert_memory_equal(blk.der.data, der, blk.der.len);
    mr_buf_reset(&blk.der);
    MR_ASSERT_OK(mr_pem_next(&c, &blk, &found));
    assert_true(found);
    assert_string_equal(blk.label, "EC PRIVATE KEY");
    assert_int_equal(blk.der.len, 10);
    MR_ASSERT_OK(mr_pem_next(&c, &blk, &found));
    assert_false(found);
    mr_buf_free(&blk.der);
    mr_buf_free(&out);

    /* CRLF line ends and RFC 1421 headers */
    const char *crlf = "-----BEGIN X-----\r\nProc-Type: 4,ENCRYPTED\r\n\r\nZm9v\r\nYmFy\r\n-----END X-----\r\n";
    mr_cursor_init(&c, crlf, strlen(crlf));
    mr_buf_init(&blk.der, 0, 0);
    MR_ASSERT_OK(mr_pem_next(&c, &blk, &found));
    assert_true(found);
    assert_int_equal(blk.der.len, 6);
    assert_memory_equal(blk.der.data, "foobar", 6);
    mr_buf_free(&blk.der);

    /* malformed blocks */
    const char *bad[] = {
        "-----BEGIN X-----\nZm9v\n",                     /* no END */
        "-----BEGIN X-----\nZm9v\n-----END Y-----\n",    /* wrong END label */
        "-----BEGIN X-----\nZm9*\n-----END X-----\n",    /* bad base64 */
        "-----BEGIN X\nZm9v\n-----END X-----\n",         /* malformed BEGIN */
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(bad); i++) {
        mr_cursor_init(&c, bad[i], strlen(bad[i]));
        mr_buf_init(&blk.der, 0, 0);
        mr_error_clear();
        assert_false(mr_ok(mr_pem_next(&c, &blk, &found)));
        assert_int_equal(mr_error_get()->cat, MR_ERR_USAGE);
        assert_int_equal(blk.der.len, 0);
        mr_buf_free(&blk.der);
    }
    /* BEGIN not at a line start is not a block */
    const char *mid = "x-----BEGIN X-----\nZm9v\n-----END X-----\n";
    mr_cursor_init(&c, mid, strlen(mid));
    mr_buf_init(&blk.der, 0, 0);
    MR_ASSERT_OK(mr_pem_next(&c, &blk, &found));
    assert_false(found);
    mr_buf_free(&blk.der);
}

/* ---- config ---- */

static void test_config(void **state)
{
    (void)state;
    unsetenv("EDG_COORDINATOR_CLIENT_ADDR");
    assert_string_equal(mr_config_get("EDG_COORDINATOR_CLIENT_ADDR"), ":4433");
    setenv("EDG_COORDINATOR_CLIENT_ADDR", "", 1);
    assert_string_equal(mr_config_get("EDG_COORDINATOR_CLIENT_ADDR"), ":4433");
    setenv("EDG_COORDINATOR_CLIENT_ADDR", "127.0.0.1:1", 1);
    assert_string_equal(mr_config_get("EDG_COORDINATOR_CLIENT_ADDR"), "127.0.0.1:1");
    assert_null(mr_config_get("EDG_COORDINATOR_PROMETHEUS_ADDR"));
    setenv("EDG_COORDINATOR_DEV_MODE", "TRUE", 1);
    assert_true(mr_config_bool("EDG_COORDINATOR_DEV_MODE"));
    setenv("EDG_COORDINATOR_DEV_MODE", "0", 1);
    assert_false(mr_config_bool("EDG_COORDINATOR_DEV_MODE"));
    uint64_t v;
    setenv("EDG_SOFTSGX_ISVSVN", "42", 1);
    MR_ASSERT_OK(mr_config_u64("EDG_SOFTSGX_ISVSVN", &v));
    assert_int_equal(v, 42);
    setenv("EDG_SOFTSGX_ISVSVN", "-1", 1);
    MR_ASSERT_FAIL(mr_config_u64("EDG_SOFTSGX_ISVSVN", &v), MR_ERR_USAGE, "EDG_SOFTSGX_ISVSVN");
    setenv("EDG_SOFTSGX_ISVSVN", "12x", 1);
    MR_ASSERT_FAIL(mr_config_u64("EDG_SOFTSGX_ISVSVN", &v), MR_ERR_USAGE, "not an unsigned");
    setenv("EDG_SOFTSGX_ISVSVN", "99999999999999999999999", 1);
    MR_ASSERT_FAIL(mr_config_u64("EDG_SOFTSGX_ISVSVN", &v), MR_ERR_USAGE, "not an unsigned");
    size_t n;
    const mr_config_var *t = mr_config_table(&n);
    assert_true(n > 20);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(t[i].help);
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(t[i].name, t[j].name);
    }
}

/* ---- log ---- */

static char *capture_log(mr_log_format fmt)
{
    char path[] = "/tmp/mr-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    mr_log_init(MR_LOG_INFO, fmt);
    mr_log_set_fd(fd);
    MR_LOG_DEBUG("hidden");
    MR_LOG_INFO("marble <activated>", MR_F_STR("marbleType", "back\"end"), MR_F_INT("n", -3),
                MR_F_UINT("u", 7), MR_F_BOOL("ok", 1));
    MR_LOG_WARN("plain");
    MR_LOG_ERROR("forged\nline");
    mr_log_set_fd(2);
    off_t len = lseek(fd, 0, SEEK_END);
    char *buf = mr_calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
    close(fd);
    return buf;
}

static void test_log_json(void **state)
{
    (void)state;
    char *out = capture_log(MR_LOG_JSON);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "{\"level\":\"info\",\"ts\":"));
    assert_non_null(strstr(out, "\"caller\":\"tests/unit/common/test_common.c:"));
    assert_non_null(strstr(out, "\"msg\":\"marble <activated>\",\"marbleType\":\"back\\\"end\",\"n\":-3,\"u\":7,\"ok\":true}\n"));
    assert_non_null(strstr(out, "{\"level\":\"warn\""));
    mr_free(out);
}

static void test_log_console(void **state)
{
    (void)state;
    char *out = capture_log(MR_LOG_CONSOLE);
    assert_non_null(strstr(out, "Z\tINFO\t"));
    assert_non_null(strstr(out, "\tmarble <activated>\t{\"marbleType\": \"back\\\"end\", \"n\": -3"));
    assert_non_null(strstr(out, "\tWARN\t"));
    assert_non_null(strstr(out, "\tplain\n"));
    assert_non_null(strstr(out, "\tforged\\x0aline\n")); /* control characters escaped */
    mr_free(out);
    mr_log_init(MR_LOG_INFO, MR_LOG_JSON);
}

/* ---- uuid ---- */

static void test_uuid(void **state)
{
    (void)state;
    const char *forms[] = {
        "01234567-89ab-cdef-0123-456789abcdef",
        "01234567-89AB-CDEF-0123-456789ABCDEF",
        "0123456789abcdef0123456789ABCDEF",
        "{01234567-89ab-cdef-0123-456789abcdef}",
        "urn:uuid:01234567-89ab-cdef-0123-456789abcdef",
        "URN:UUID:01234567-89ab-cdef-0123-456789abcdef",
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(forms); i++) {
        mr_uuid u;
        char out[MR_UUID_TEXT_LEN + 1];
        MR_ASSERT_OK(mr_uuid_parse(forms[i], strlen(forms[i]), &u));
        mr_uuid_format(&u, out);
        assert_string_equal(out, "01234567-89ab-cdef-0123-456789abcdef");
    }
    mr_uuid u;
    MR_ASSERT_FAIL(mr_uuid_parse("abc", 3, &u), MR_ERR_USAGE, "invalid UUID length: 3");
    MR_ASSERT_FAIL(mr_uuid_parse("01234567x89ab-cdef-0123-456789abcdef", 36, &u), MR_ERR_USAGE,
                   "invalid UUID format");
    MR_ASSERT_FAIL(mr_uuid_parse("0123456g-89ab-cdef-0123-456789abcdef", 36, &u), MR_ERR_USAGE,
                   "invalid UUID format");
    MR_ASSERT_FAIL(mr_uuid_parse("urx:uuid:01234567-89ab-cdef-0123-456789abcdef", 45, &u),
                   MR_ERR_USAGE, "invalid urn prefix");
    MR_ASSERT_FAIL(mr_uuid_parse("[01234567-89ab-cdef-0123-456789abcdef]", 38, &u), MR_ERR_USAGE,
                   "invalid UUID format");
    MR_ASSERT_OK(mr_uuid_random(&u));
    assert_int_equal(u.b[6] >> 4, 4);
    assert_int_equal(u.b[8] >> 6, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_propagation),
        cmocka_unit_test(test_errcat_table),
        cmocka_unit_test(test_errcat_mapping),
        cmocka_unit_test(test_error_is),
        cmocka_unit_test(test_alloc_failure_injection),
        cmocka_unit_test(test_wipe_allocator),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_buf_limits),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_pem),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_log_json),
        cmocka_unit_test(test_log_console),
        cmocka_unit_test(test_uuid),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
