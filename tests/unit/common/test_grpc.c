/* SPDX-License-Identifier: Apache-2.0 */
/* common/grpc: framing, status names, grpc-message encoding, grpc-timeout. */
#include "mr_test.h"

#include <string.h>

#include "common/grpc.h"

static const char *bufstr(mr_buf *b)
{
    if (!mr_ok(mr_buf_nul_terminate(b)))
        return "";
    return b->data != NULL ? (const char *)b->data : "";
}

static void test_grpc_frame(void **state)
{
    (void)state;
    mr_buf b;
    mr_slice msg;
    mr_grpc_code code = MR_GRPC_UNKNOWN;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_grpc_frame_encode(&b, MR_SLICE("abc", 3)));
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "\0\0\0\0\3abc", 8);
    MR_ASSERT_OK(mr_grpc_frame_parse(mr_buf_slice(&b), 16, "request", NULL, &msg, &code));
    assert_int_equal(code, 0);
    assert_int_equal(msg.len, 3);
    assert_memory_equal(msg.ptr, "abc", 3);

    /* empty message is fine */
    MR_ASSERT_OK(mr_grpc_frame_parse(MR_SLICE("\0\0\0\0\0", 5), 16, "request", NULL, &msg, &code));
    assert_int_equal(msg.len, 0);

    /* truncated header, truncated body, trailing bytes */
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("\0\0\0", 3), 16, "request", NULL, &msg, &code),
                   MR_ERR_PROTOCOL, "complete message");
    assert_int_equal(code, 13);
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("", 0), 16, "request", NULL, &msg, &code), MR_ERR_PROTOCOL,
                   "complete message");
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("\0\0\0\0\4abc", 8), 16, "request", NULL, &msg, &code),
                   MR_ERR_PROTOCOL, "complete message");
    assert_int_equal(code, 13);
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("\0\0\0\0\2abc", 8), 16, "request", NULL, &msg, &code),
                   MR_ERR_PROTOCOL, "more than one");
    /* oversized: RESOURCE_EXHAUSTED with grpc-go's text */
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("\0\0\0\0\x11", 5), 16, "request", NULL, &msg, &code),
                   MR_ERR_USAGE, "grpc: received message larger than max (17 vs. 16)");
    assert_int_equal(code, 8);
    /* compressed and unknown flags */
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("\1\0\0\0\0", 5), 16, "request", NULL, &msg, &code),
                   MR_ERR_PROTOCOL, "compressed flag set");
    assert_int_equal(code, 13);
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("\2\0\0\0\0", 5), 16, "request", NULL, &msg, &code),
                   MR_ERR_PROTOCOL, "unexpected payload format 2");
    mr_buf_free(&b);

    assert_string_equal(mr_grpc_code_name(0), "OK");
    assert_string_equal(mr_grpc_code_name(12), "Unimplemented");
    assert_string_equal(mr_grpc_code_name(16), "Unauthenticated");
    assert_string_equal(mr_grpc_code_name(99), "Unknown");
}

static void test_grpc_percent(void **state)
{
    (void)state;
    mr_buf b, d;
    mr_buf_init(&b, 0, 0);
    mr_buf_init(&d, 0, 0);
    MR_ASSERT_OK(mr_grpc_percent_encode(&b, "denied: 100% wrong\n\xc3\xbc" "bel ~"));
    assert_string_equal(bufstr(&b), "denied: 100%25 wrong%0A%C3%BCbel ~");
    MR_ASSERT_OK(mr_grpc_percent_decode(&d, (const char *)b.data, b.len));
    assert_string_equal(bufstr(&d), "denied: 100% wrong\n\xc3\xbc" "bel ~");
    mr_buf_reset(&d);
    MR_ASSERT_OK(mr_grpc_percent_decode(&d, "50%zz %4", 8));
    assert_string_equal(bufstr(&d), "50%zz %4");
    mr_buf_free(&b);
    mr_buf_free(&d);
}

static void test_grpc_encodings(void **state)
{
    (void)state;
    mr_slice msg;
    mr_grpc_code code = MR_GRPC_OK;
    /* a compressed message: UNIMPLEMENTED naming the encoding we lack, or INTERNAL when the
     * peer claims identity (grpc-go's texts) */
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("\1\0\0\0\0", 5), 16, "request", "gzip", &msg, &code),
                   MR_ERR_PROTOCOL, "grpc: Decompressor is not installed for grpc-encoding \"gzip\"");
    assert_int_equal(code, MR_GRPC_UNIMPLEMENTED);
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("\1\0\0\0\0", 5), 16, "request", "identity", &msg,
                                       &code),
                   MR_ERR_PROTOCOL, "compressed flag set with identity or empty encoding");
    assert_int_equal(code, MR_GRPC_INTERNAL);
    /* an uncompressed message with any encoding header is fine */
    MR_ASSERT_OK(mr_grpc_frame_parse(MR_SLICE("\0\0\0\0\0", 5), 16, "response", "gzip", &msg, &code));
    assert_int_equal(code, MR_GRPC_OK);
    /* the direction is named in the text */
    MR_ASSERT_FAIL(mr_grpc_frame_parse(MR_SLICE("\0", 1), 16, "response", NULL, &msg, &code),
                   MR_ERR_PROTOCOL, "grpc: response did not contain a complete message");
    uint8_t flag = 9;
    uint32_t len = 0;
    assert_false(mr_grpc_frame_header(MR_SLICE("\0\0\0\1", 4), &flag, &len));
    assert_true(mr_grpc_frame_header(MR_SLICE("\0\0\0\1\2", 5), &flag, &len));
    assert_int_equal(flag, 0);
    assert_int_equal(len, 258);
    /* %00 stays literal: the result is a C string */
    mr_buf d;
    mr_buf_init(&d, 0, 0);
    MR_ASSERT_OK(mr_grpc_percent_decode(&d, "a%00b%41", 8));
    assert_string_equal(bufstr(&d), "a%00bA");
    /* only two hex digits make an escape (grpc-go's ParseUint: no sign, no space) */
    mr_buf_reset(&d);
    MR_ASSERT_OK(mr_grpc_percent_decode(&d, "% f%+f%-1%4", 11));
    assert_string_equal(bufstr(&d), "% f%+f%-1%4");
    mr_buf_free(&d);
}

static void test_grpc_timeout(void **state)
{
    (void)state;
    uint64_t ms = 0;
    MR_ASSERT_OK(mr_grpc_timeout_parse("10S", &ms));
    assert_int_equal(ms, 10000);
    MR_ASSERT_OK(mr_grpc_timeout_parse("250m", &ms));
    assert_int_equal(ms, 250);
    MR_ASSERT_OK(mr_grpc_timeout_parse("1500u", &ms));
    assert_int_equal(ms, 2); /* rounded up */
    MR_ASSERT_OK(mr_grpc_timeout_parse("1n", &ms));
    assert_int_equal(ms, 1);
    MR_ASSERT_OK(mr_grpc_timeout_parse("2M", &ms));
    assert_int_equal(ms, 120000);
    MR_ASSERT_OK(mr_grpc_timeout_parse("99999999H", &ms));
    assert_int_equal(ms, 86400000); /* capped at a day */
    const char *bad[] = {"", "S", "10", "10s", "-1S", "123456789S", "1 S"};
    for (size_t i = 0; i < MR_ARRAY_LEN(bad); i++)
        MR_ASSERT_FAIL(mr_grpc_timeout_parse(bad[i], &ms), MR_ERR_PROTOCOL, "malformed grpc-timeout");
    MR_ASSERT_OK(mr_grpc_timeout_parse("86400000m", &ms));
    assert_int_equal(ms, 86400000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpc_frame),
        cmocka_unit_test(test_grpc_percent),
        cmocka_unit_test(test_grpc_encodings),
        cmocka_unit_test(test_grpc_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
