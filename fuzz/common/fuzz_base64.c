/* SPDX-License-Identifier: Apache-2.0 */
/* Target: mr_b64_decode_buf / mr_b64_encode_buf (common/codec.c), both alphabets, with and
 * without MR_B64_IGNORE_NEWLINES. Properties: decode(encode(x)) == x for any bytes, and
 * decode(encode(decode(s))) == decode(s) for any accepted text. The first input byte picks
 * the alphabet and flags. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must_equal(const mr_buf *a, const uint8_t *p, size_t n)
{
    if (a->len != n || (n > 0 && memcmp(a->data, p, n) != 0))
        abort();
}

/* encode then decode must give the input back */
static void encode_round_trip(const uint8_t *p, size_t n, mr_b64_alphabet a)
{
    mr_buf enc, dec;
    mr_buf_init(&enc, 0, 0);
    mr_buf_init(&dec, 0, 0);
    if (!mr_ok(mr_b64_encode_buf(p, n, a, &enc)))
        abort();
    if (enc.len != mr_b64_encoded_len(n))
        abort();
    if (!mr_ok(mr_b64_decode_buf((const char *)enc.data, enc.len, a, 0, &dec)))
        abort();
    must_equal(&dec, p, n);
    mr_buf_free(&enc);
    mr_buf_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mr_b64_alphabet a = (data[0] & 1) ? MR_B64_URL : MR_B64_STD;
    unsigned flags = (data[0] & 2) ? MR_B64_IGNORE_NEWLINES : 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    mr_buf dec;
    mr_buf_init(&dec, 0, 0);
    if (mr_ok(mr_b64_decode_buf((const char *)p, n, a, flags, &dec)))
        encode_round_trip(dec.data, dec.len, a);
    encode_round_trip(p, n, a);
    mr_buf_free(&dec);
    mr_error_clear();
    return 0;
}
