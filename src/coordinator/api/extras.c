/* SPDX-License-Identifier: Apache-2.0 */
/* POST /api/v2/sign-quote (spec §12.5) and POST /api/v2/monotonic-counter (§12.6). */
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "common/jsonf.h"
#include "coordinator/api/api_int.h"

/* base64 of the quote as submitted, NUL-terminated (the signature covers it). */
static MR_RESULT quote_b64(const mr_buf *quote, mr_buf *b64)
{
    MR_GUARD(mr_b64_encode_buf(quote->data, quote->len, MR_B64_STD, b64));
    return mr_buf_nul_terminate(b64);
}

/* {"sgxQuote":"<the current error text>"}, NUL-terminated. */
static MR_RESULT refusal_json(mr_buf *out)
{
    MR_GUARD(mr_buf_append_str(out, "{\"sgxQuote\":"));
    MR_GUARD(jw_str(out, mr_error_get()->msg));
    MR_GUARD(mr_buf_append_u8(out, '}'));
    return mr_buf_nul_terminate(out);
}

/* The core did not sign: 403 when the feature is off, 400 (fail, with the reason as data)
 * when the quote does not verify, else 500. */
static void refuse_quote(mr_srv_request *r)
{
    if (mr_error_get()->cat == MR_ERR_AUTH) {
        api_error(r, 403);
        return;
    }
    if (mr_error_get()->cat != MR_ERR_ATTESTATION) {
        api_error(r, 500);
        return;
    }
    mr_buf data;
    mr_buf_init(&data, 0, 0);
    if (mr_ok(refusal_json(&data)))
        mr_srv_reply_fail(r, 400, (const char *)data.data, "quote verification failed");
    else
        api_error(r, 500);
    mr_buf_free(&data);
}

static MR_RESULT signed_json(const char *status, const mr_buf *sig, mr_buf *out)
{
    MR_GUARD(mr_buf_append_str(out, "{\"tcbStatus\":"));
    MR_GUARD(jw_str(out, status));
    MR_GUARD(mr_buf_append_str(out, ",\"verificationSignature\":"));
    MR_GUARD(jw_b64(out, sig->data, sig->len));
    return mr_buf_append_u8(out, '}');
}

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
    if (!mr_ok(quote_b64(&quote, &b64))) {
        api_error(r, 500);
        goto out;
    }
    if (!mr_ok(mr_core_sign_quote(a->cfg.core, quote.data, quote.len, (const char *)b64.data, status,
                                  sizeof(status), &sig))) {
        refuse_quote(r);
        goto out;
    }
    api_reply(r, signed_json(status, &sig, &out), &out);
out:
    mr_buf_free(&quote);
    mr_buf_free(&b64);
    mr_buf_free(&sig);
    mr_buf_free(&out);
}

/* {"name": string, "value": non-negative integer}, either absent or null (spec §12.6); *root
 * holds what *counter points into. */
static MR_RESULT read_counter(mr_slice body, json_t **root, const char **counter, uint64_t *value)
{
    json_error_t err;
    *root = json_loadb((const char *)body.ptr, body.len, JSON_DISABLE_EOF_CHECK, &err);
    MR_ENSURE(*root != NULL, MR_ERR_USAGE, "%s", err.text);
    json_t *name = json_is_object(*root) ? mr_json_field(*root, "name") : NULL;
    json_t *v = json_is_object(*root) ? mr_json_field(*root, "value") : NULL;
    bool name_ok = name == NULL || json_is_string(name) || json_is_null(name);
    bool value_ok = v == NULL || json_is_null(v) ||
                    (json_is_integer(v) && json_integer_value(v) >= 0);
    MR_ENSURE(json_is_object(*root) && name_ok && value_ok, MR_ERR_USAGE, "invalid request body");
    *counter = json_is_string(name) ? json_string_value(name) : "";
    *value = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
    return MR_SUCCESS;
}

static void h_counter(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    char type[256];
    uint8_t uuid[16];
    uint64_t prev = 0, value = 0;
    const char *counter = NULL;
    json_t *root = NULL;
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    if (!mr_ok(mr_core_marble_auth(a->cfg.core, mr_srv_req_peer_leaf(r), type, sizeof(type), uuid))) {
        api_fail(r, 401);
        goto out;
    }
    if (!mr_ok(read_counter(mr_srv_req_body(r), &root, &counter, &value))) {
        api_fail(r, 400);
        goto out;
    }
    if (!mr_ok(mr_core_counter(a->cfg.core, type, uuid, counter, value, &prev))) {
        api_error(r, mr_error_get()->cat == MR_ERR_AUTH ? 403 : 500);
        goto out;
    }
    api_reply(r, mr_buf_printf(&out, "{\"value\":%llu}", (unsigned long long)prev), &out);
out:
    json_decref(root);
    mr_buf_free(&out);
}

MR_RESULT api_register_extras(mr_api *a)
{
    MR_GUARD(api_route(a, a->cfg.client_listener, "POST", "/api/v2/sign-quote", 0, h_sign_quote));
    return api_route(a, a->cfg.client_listener, "POST", "/api/v2/monotonic-counter", 0, h_counter);
}
