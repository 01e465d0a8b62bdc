/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/v2/recover and /api/v2/recover/public-key (spec §12.4, §12.8). The v1 /recover path
 * answers 410 (rest.c). The core does all the checking; this file only moves bytes.
 */
#include <string.h>

#include "common/alloc.h"
#include "coordinator/api/api_int.h"
#include "coordinator/core/recovery.h"

#define RECOVER_BODY_MAX 20480 /* 1.9: http.MaxBytesReader limit of the handler */
#define SHAMIR_SHARE_LEN 33

static void h_public_key(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    mr_buf der, out;
    bool first = true;
    mr_buf_init(&der, 0, 0);
    mr_buf_init(&out, 0, 0);
    mr_result res = mr_core_recovery_public_key(a->cfg.core, &der);
    if (mr_ok(res))
        res = mr_buf_append_u8(&out, '{');
    if (mr_ok(res))
        res = jw_key(&out, &first, "algorithm");
    if (mr_ok(res))
        res = jw_str(&out, "RSA");
    if (mr_ok(res))
        res = jw_key(&out, &first, "ephemeralPublicKey");
    if (mr_ok(res))
        res = jw_b64(&out, der.data, der.len);
    if (mr_ok(res))
        res = mr_buf_append_u8(&out, '}');
    api_reply(r, res, &out);
    mr_buf_free(&der);
    mr_buf_free(&out);
}

/* Reads the two fields like json.Decoder on a body cut at the read limit. */
static mr_result read_body(mr_slice body, mr_buf *secret, mr_buf *sig)
{
    bool present = false;
    mr_slice cut = MR_SLICE(body.ptr, body.len > RECOVER_BODY_MAX ? RECOVER_BODY_MAX : body.len);
    mr_result r = jr_b64_field(cut, "recoverySecret", secret, &present);
    if (mr_ok(r))
        r = jr_b64_field(cut, "recoverySecretSignature", sig, &present);
    if (!mr_ok(r) && body.len > RECOVER_BODY_MAX)
        mr_error_set(MR_ERR_USAGE, __FILE__, __LINE__, "http: request body too large");
    return r;
}

static void h_recover(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    mr_buf secret, plain, sig, out;
    int remaining = -1;
    bool first = true;
    mr_buf_init(&secret, 0, MR_BUF_SECRET);
    mr_buf_init(&plain, 0, MR_BUF_SECRET);
    mr_buf_init(&sig, 0, 0);
    mr_buf_init(&out, 0, 0);
    if (!mr_ok(read_body(mr_srv_req_body(r), &secret, &sig))) {
        api_fail(r, 400);
        goto out;
    }
    mr_buf *use = &secret;
    size_t n = secret.len;
    if (n != 16 && n != 32 && n != SHAMIR_SHARE_LEN) {
        /* anything else was encrypted with the ephemeral key */
        if (!mr_ok(mr_core_recovery_decrypt(a->cfg.core, mr_buf_slice(&secret), &plain))) {
            mr_error_prefix("failed to decrypt recovery secret");
            api_fail(r, 400);
            goto out;
        }
        use = &plain;
    }
    if (!mr_ok(mr_core_recover(a->cfg.core, mr_buf_slice(use), mr_buf_slice(&sig), &remaining))) {
        api_error(r, 500);
        goto out;
    }
    mr_result res = mr_buf_append_u8(&out, '{');
    if (mr_ok(res))
        res = jw_key(&out, &first, "remaining");
    if (mr_ok(res))
        res = jw_int(&out, remaining);
    if (mr_ok(res))
        res = jw_key(&out, &first, "message");
    if (mr_ok(res) && remaining == 0)
        res = jw_str(&out, "Recovery successful.");
    else if (mr_ok(res))
        res = mr_buf_printf(&out, "\"Secret was processed successfully. Upload the next secret. "
                                  "Remaining secrets: %d\"", remaining);
    if (mr_ok(res))
        res = mr_buf_append_u8(&out, '}');
    api_reply(r, res, &out);
out:
    mr_buf_free(&secret);
    mr_buf_free(&plain);
    mr_buf_free(&sig);
    mr_buf_free(&out);
}

mr_result api_register_recovery(mr_api *a)
{
    MR_GUARD(mr_srv_route(a->cfg.srv, a->cfg.client_listener, "GET", "/api/v2/recover/public-key",
                          0, h_public_key, a));
    MR_GUARD(mr_srv_route(a->cfg.srv, a->cfg.client_listener, "POST", "/api/v2/recover", 0,
                          h_recover, a));
    return MR_SUCCESS;
}
