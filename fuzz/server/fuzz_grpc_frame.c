/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC message framing, grpc-message encoding and decoding, the ActivationReq decoder, JSON
 * string quoting, path cleaning and query strings. */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/text.h"
#include "coordinator/server/internal.h"
#include "proto/coordinator.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_slice msg;
    mr_grpc_code code = MR_GRPC_OK;
    if (mr_ok(mr_grpc_frame_parse(MR_SLICE(data, size), 1 << 20, "request", NULL, &msg, &code))) {
        Rpc__ActivationReq *req = rpc__activation_req__unpack(NULL, msg.len, msg.ptr);
        if (req != NULL)
            rpc__activation_req__free_unpacked(req, NULL);
        mr_buf out;
        mr_buf_init(&out, 0, 0);
        MR_IGNORE(mr_grpc_frame_encode(&out, msg));
        if (out.len != size || memcmp(out.data, data, size) != 0)
            abort(); /* a parsed frame must re-encode to the same bytes */
        mr_buf_free(&out);
    }
    /* treat the input as text for the other decoders */
    char *text = mr_strndup((const char *)data, size);
    if (text == NULL)
        return 0;
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_IGNORE(mr_grpc_percent_decode(&b, text, strlen(text)));
    mr_buf_reset(&b);
    if (mr_ok(mr_grpc_percent_encode(&b, text))) {
        mr_buf d;
        mr_buf_init(&d, 0, 0);
        if (mr_ok(mr_grpc_percent_decode(&d, (const char *)b.data, b.len)) &&
            strcmp((const char *)d.data, text) != 0)
            abort(); /* encode then decode is the identity */
        mr_buf_free(&d);
    }
    mr_buf_reset(&b);
    MR_IGNORE(mr_json_quote(&b, (const char *)data, size));
    mr_buf_reset(&b);
    MR_IGNORE(mr_srv_path_clean(text, &b));
    mr_srv_strlist l;
    if (mr_ok(mr_srv_query_values(text, "s", false, &l)))
        mr_srv_strlist_free(&l);
    if (mr_ok(mr_srv_query_values(text, "s", true, &l)))
        mr_srv_strlist_free(&l);
    mr_buf_free(&b);
    mr_free(text);
    mr_error_clear();
    return 0;
}
