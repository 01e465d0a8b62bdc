/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by the crypto unit tests. */
#ifndef MR_TEST_CRYPTO_HELPERS_H
#define MR_TEST_CRYPTO_HELPERS_H

#include "mr_test.h"

#include "common/buf.h"
#include "common/codec.h"

/* Decodes hex into a (non-secret) buffer the test frees. */
static inline mr_buf hexbuf(const char *hex)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_hex_decode_buf(hex, strlen(hex), &b));
    return b;
}

static inline void assert_hex_equal(const uint8_t *p, size_t len, const char *hex)
{
    mr_buf want = hexbuf(hex);
    assert_int_equal(len, want.len);
    assert_memory_equal(p, want.data, len);
    mr_buf_free(&want);
}

static inline mr_buf secret_buf(void)
{
    mr_buf b;
    mr_buf_init(&b, 0, MR_BUF_SECRET);
    return b;
}

static inline mr_buf plain_buf(void)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    return b;
}

#endif
