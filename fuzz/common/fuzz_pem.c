/* SPDX-License-Identifier: Apache-2.0 */
/* Target: mr_pem_next (common/codec.c) over arbitrary text, block after block, and the
 * encode -> decode round trip of each decoded block. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const mr_pem_block *blk)
{
    mr_buf pem;
    mr_pem_block again;
    mr_cursor c;
    bool found = false;
    /* labels that themselves contain dashes cannot round-trip; skip them */
    if (strstr(blk->label, "-----") != NULL)
        return;
    mr_buf_init(&pem, 0, 0);
    mr_buf_init(&again.der, 0, 0);
    if (mr_ok(mr_pem_encode_buf(blk->label, blk->der.data, blk->der.len, &pem))) {
        mr_cursor_init(&c, pem.data, pem.len);
        if (!mr_ok(mr_pem_next(&c, &again, &found)) || !found ||
            strcmp(again.label, blk->label) != 0 || again.der.len != blk->der.len ||
            (blk->der.len > 0 && memcmp(again.der.data, blk->der.data, blk->der.len) != 0))
            abort();
    }
    mr_buf_free(&again.der);
    mr_buf_free(&pem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_cursor c;
    mr_cursor_init(&c, data, size);
    for (int i = 0; i < 64; i++) {
        mr_pem_block blk;
        bool found = false;
        size_t before = c.pos;
        mr_buf_init(&blk.der, 1u << 20, 0);
        mr_result r = mr_pem_next(&c, &blk, &found);
        if (mr_ok(r) && found)
            round_trip(&blk);
        mr_buf_free(&blk.der);
        if (!mr_ok(r) || !found || c.pos == before)
            break;
    }
    mr_error_clear();
    return 0;
}
