/* SPDX-License-Identifier: Apache-2.0 */
/* The key API between the instances of a shared state: gRPC keypb.API/GetKeyEncryptionKey
 * (docs/distributed.md). The core decides whom the key goes to; this only speaks the wire. */
#include <openssl/crypto.h>

#include "coordinator/api/api_int.h"
#include "proto/keypb.pb-c.h"

static void h_get_key(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    mr_slice body = mr_srv_req_body(r);
    Keypb__GetKeyEncryptionKeyRequest *req =
        keypb__get_key_encryption_key_request__unpack(NULL, body.len, body.ptr);
    if (req == NULL) {
        mr_srv_grpc_fail(r, MR_GRPC_INTERNAL,
                         "grpc: error unmarshalling request: invalid protobuf message");
        return;
    }
    mr_buf key, quote;
    mr_buf_init(&key, 0, MR_BUF_SECRET);
    mr_buf_init(&quote, 0, 0);
    if (!mr_ok(mr_core_share_key(a->cfg.core, MR_SLICE(req->quote.data, req->quote.len),
                                 mr_srv_req_peer_leaf(r), &key, &quote))) {
        mr_srv_grpc_fail_from(r, mr_error_get());
    } else {
        Keypb__GetKeyEncryptionKeyResponse resp = KEYPB__GET_KEY_ENCRYPTION_KEY_RESPONSE__INIT;
        resp.key = (ProtobufCBinaryData){key.len, key.data};
        resp.quote = (ProtobufCBinaryData){quote.len, quote.data};
        mr_srv_resp_mark_secret(r);
        mr_srv_grpc_reply_msg(r, &resp.base);
    }
    mr_buf_free(&key);
    mr_buf_free(&quote);
    keypb__get_key_encryption_key_request__free_unpacked(req, NULL);
}

MR_RESULT api_register_keys(mr_api *a)
{
    return mr_srv_grpc_method(a->cfg.srv, a->cfg.key_listener, "keypb.API",
                              "GetKeyEncryptionKey", 0, h_get_key, a);
}
