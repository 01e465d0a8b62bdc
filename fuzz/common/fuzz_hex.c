/* SPDX-License-Identifier: Apache-2.0 */
/* Target: mr_hex_decode_buf / mr_hex_decode_fixed / mr_hex_encode_buf (common/codec.c).
 * Properties: an accepted input re-encodes to itself up to letter case; encode -> decode of
 * any bytes is the identity; the fixed-size decoder agrees with the buffer decoder. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fixed(const uint8_t *data, size_t size, const mr_buf *dec, bool ok)
{
    size_t out_len = size / 2;
    uint8_t *out = mr_alloc(out_len + 1);
    if (out == NULL)
        return;
    bool fixed_ok = mr_ok(mr_hex_decode_fixed((const char *)data, size, out, out_len));
    if (fixed_ok != ok || (ok && out_len > 0 && memcmp(out, dec->data, out_len) != 0))
        abort();
    mr_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_buf dec, enc;
    mr_buf_init(&dec, 0, 0);
    mr_buf_init(&enc, 0, 0);
    bool ok = mr_ok(mr_hex_decode_buf((const char *)data, size, &dec));
    if (ok) {
        if (!mr_ok(mr_hex_encode_buf(dec.data, dec.len, &enc)) || enc.len != size)
            abort();
        for (size_t i = 0; i < size; i++)
            if (tolower(data[i]) != enc.data[i])
                abort();
    }
    check_fixed(data, size, &dec, ok);
    mr_buf_reset(&enc);
    mr_buf_reset(&dec);
    if (!mr_ok(mr_hex_encode_buf(data, size, &enc)) ||
        !mr_ok(mr_hex_decode_buf((const char *)enc.data, enc.len, &dec)) || dec.len != size ||
        (size > 0 && memcmp(dec.data, data, size) != 0))
        abort();
    mr_buf_free(&dec);
    mr_buf_free(&enc);
    mr_error_clear();
    return 0;
}
