/* SPDX-License-Identifier: Apache-2.0 */
/* POST /api/v2/sign-quote (spec §12.5) and POST /api/v2/monotonic-counter (§12.6). */
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "common/jsonf.h"
#include "coordinator/api/api_int.h"

static void h_sign_quote(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    mr_buf quote, b64, sig, out;
    char status[64];
    bool present = false;
    mr_buf_init(&quote, 0, 0);
    mr_buf_init(&b64, 0, 0);
    mr_buf_init(&sig, 0, 0);
    mr_buf_init(&out, 0, 0);
    if (!mr_ok(jr_b64_field(mr_srv_req_body(r), "sgxQuote", &quote, &present))) {
        mr_error_prefix("bad request");
        mr_srv_reply_fail(r, 400, "{\"sgxQuote\":\"failed to parse JSON data\"}", mr_error_get()->msg);
        goto out;
    }
    if (!mr_ok(mr_b64_encode_buf(quote.data, quote.len, MR_B64_STD, &b64)) ||
        !mr_ok(mr_buf_nul_terminate(&b64))) {
        api_error(r, 500);
        goto out;
    }
    if (!mr_ok(mr_core_sign_quote(a->cfg.core, quote.data, quote.len, (const char *)b64.data, status,
                                  sizeof(status), &sig))) {
        if (mr_error_get()->cat == MR_ERR_AUTH) {
            api_error(r, 403);
        } else if (mr_error_get()->cat == MR_ERR_ATTESTATION) {
            mr_buf data;
            mr_buf_init(&data, 0, 0);
            if (mr_ok(mr_buf_append_str(&data, "{\"sgxQuote\":")) &&
                mr_ok(jw_str(&data, mr_error_get()->msg)) && mr_ok(mr_buf_append_u8(&data, '}')) &&
                mr_ok(mr_buf_nul_terminate(&data)))
                mr_srv_reply_fail(r, 400, (const char *)data.data, "quote verification failed");
            else
                api_error(r, 500);
            mr_buf_free(&data);
        } else {
            api_error(r, 500);
        }
        goto out;
    }
    if (mr_ok(mr_buf_append_str(&out, "{\"tcbStatus\":")) && mr_ok(jw_str(&out, status)) &&
        mr_ok(mr_buf_append_str(&out, ",\"verificationSignature\":")) &&
        mr_ok(jw_b64(&out, sig.data, sig.len)) && mr_ok(mr_buf_append_u8(&out, '}')))
        api_success(r, &out);
    else
        api_error(r, 500);
out:
    mr_buf_free(&quote);
    mr_buf_free(&b64);
    mr_buf_free(&sig);
    mr_buf_free(&out);
}

static void h_counter(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    char type[256];
    uint8_t uuid[16];
    uint64_t prev = 0;
    json_t *root = NULL;
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    if (!mr_ok(mr_core_marble_auth(a->cfg.core, mr_srv_req_peer_leaf(r), type, sizeof(type), uuid))) {
        api_fail(r, 401);
        goto out;
    }
    json_error_t err;
    mr_slice body = mr_srv_req_body(r);
    root = json_loadb((const char *)body.ptr, body.len, JSON_DISABLE_EOF_CHECK, &err);
    json_t *name = root != NULL && json_is_object(root) ? mr_json_field(root, "name") : NULL;
    json_t *value = root != NULL && json_is_object(root) ? mr_json_field(root, "value") : NULL;
    if (root == NULL || !json_is_object(root) || (name != NULL && !json_is_string(name) && !json_is_null(name)) ||
        (value != NULL && !json_is_null(value) && (!json_is_integer(value) || json_integer_value(value) < 0))) {
        mr_srv_reply_fail(r, 400, NULL, root == NULL ? err.text : "invalid request body");
        goto out;
    }
    const char *counter = json_is_string(name) ? json_string_value(name) : "";
    uint64_t v = json_is_integer(value) ? (uint64_t)json_integer_value(value) : 0;
    if (!mr_ok(mr_core_counter(a->cfg.core, type, uuid, counter, v, &prev))) {
        api_error(r, mr_error_get()->cat == MR_ERR_AUTH ? 403 : 500);
        goto out;
    }
    api_reply(r, mr_buf_printf(&out, "{\"value\":%llu}", (unsigned long long)prev), &out);
out:
    json_decref(root);
    mr_buf_free(&out);
}

mr_result api_register_extras(mr_api *a)
{
    MR_GUARD(mr_srv_route(a->cfg.srv, a->cfg.client_listener, "POST", "/api/v2/sign-quote", 0,
                          h_sign_quote, a));
    return mr_srv_route(a->cfg.srv, a->cfg.client_listener, "POST", "/api/v2/monotonic-counter", 0,
                        h_counter, a);
}
