/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 request handling: head parser, chunked bodies, routing, responses. */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the pure parser on the whole input */
    size_t scanned = 0, len = 0;
    if (mr_ok(mr_h1_find_head_end(MR_SLICE(data, size), 4096, &scanned, &len)) && len > 0) {
        mr_h1_head h;
        int st = 0;
        MR_IGNORE(mr_h1_parse_head(MR_SLICE(data, len), 4096, &h, &st));
        mr_h1_head_free(&h);
    }
    /* and a connection on the client and plain listeners */
    fz_init();
    fz_feed(fz_client, MR_SRV_PROTO_HTTP1, data, size);
    fz_feed(fz_plain, MR_SRV_PROTO_HTTP1, data, size);
    return 0;
}
