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

static MR_RESULT build_public_key(mr_api *a, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf der;
    bool first = true;
    mr_buf_init(&der, 0, 0);
    MR_GUARD_OUT(mr_core_recovery_public_key(a->cfg.core, &der));
    MR_GUARD_OUT(mr_buf_append_u8(out, '{'));
    MR_GUARD_OUT(jw_key(out, &first, "algorithm"));
    MR_GUARD_OUT(jw_str(out, "RSA"));
    MR_GUARD_OUT(jw_key(out, &first, "ephemeralPublicKey"));
    MR_GUARD_OUT(jw_b64(out, der.data, der.len));
    MR_GUARD_OUT(mr_buf_append_u8(out, '}'));
    res = MR_SUCCESS;
out:
    mr_buf_free(&der);
    return res;
}

static void h_public_key(mr_srv_request *r, void *arg)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    api_reply(r, build_public_key(arg, &out), &out);
    mr_buf_free(&out);
}

static MR_RESULT read_fields(mr_slice body, mr_buf *secret, mr_buf *sig)
{
    bool present = false;
    MR_GUARD(jr_b64_field(body, "recoverySecret", secret, &present));
    return jr_b64_field(body, "recoverySecretSignature", sig, &present);
}

/* Reads the two fields like json.Decoder on a body cut at the read limit. */
static MR_RESULT read_body(mr_slice body, mr_buf *secret, mr_buf *sig)
{
    bool cut = body.len > RECOVER_BODY_MAX;
    if (mr_ok(read_fields(MR_SLICE(body.ptr, cut ? RECOVER_BODY_MAX : body.len), secret, sig)))
        return MR_SUCCESS;
    /* what the reader reports when a decoder runs into the limit */
    MR_ENSURE(!cut, MR_ERR_USAGE, "http: request body too large");
    return MR_FAILURE;
}

/* A secret of any other length than a key's or a share's was encrypted with the ephemeral
 * key: *use is then the decrypted one in plain. */
static MR_RESULT plain_secret(mr_api *a, mr_buf *secret, mr_buf *plain, mr_buf **use)
{
    size_t n = secret->len;
    *use = secret;
    if (n == 16 || n == 32 || n == SHAMIR_SHARE_LEN)
        return MR_SUCCESS;
    if (!mr_ok(mr_core_recovery_decrypt(a->cfg.core, mr_buf_slice(secret), plain))) {
        mr_error_prefix("failed to decrypt recovery secret");
        return MR_FAILURE;
    }
    *use = plain;
    return MR_SUCCESS;
}

static MR_RESULT recover_json(int remaining, mr_buf *out)
{
    bool first = true;
    MR_GUARD(mr_buf_append_u8(out, '{'));
    MR_GUARD(jw_key(out, &first, "remaining"));
    MR_GUARD(jw_int(out, remaining));
    MR_GUARD(jw_key(out, &first, "message"));
    if (remaining == 0)
        MR_GUARD(jw_str(out, "Recovery successful."));
    else
        MR_GUARD(mr_buf_printf(out, "\"Secret was processed successfully. Upload the next "
                                    "secret. Remaining secrets: %d\"",
                               remaining));
    return mr_buf_append_u8(out, '}');
}

/* On failure *status is 400 (the body or the secret was bad) or 500 (the core refused). */
static MR_RESULT build_recover(mr_api *a, mr_slice body, int *status, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf secret, plain, sig;
    mr_buf *use = NULL;
    int remaining = -1;
    mr_buf_init(&secret, 0, MR_BUF_SECRET);
    mr_buf_init(&plain, 0, MR_BUF_SECRET);
    mr_buf_init(&sig, 0, 0);
    *status = 400;
    MR_GUARD_OUT(read_body(body, &secret, &sig));
    MR_GUARD_OUT(plain_secret(a, &secret, &plain, &use));
    *status = 500;
    MR_GUARD_OUT(mr_core_recover(a->cfg.core, mr_buf_slice(use), mr_buf_slice(&sig), &remaining));
    MR_GUARD_OUT(recover_json(remaining, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&secret);
    mr_buf_free(&plain);
    mr_buf_free(&sig);
    return res;
}

static void h_recover(mr_srv_request *r, void *arg)
{
    mr_buf out;
    int status = 500;
    mr_buf_init(&out, 0, 0);
    if (mr_ok(build_recover(arg, mr_srv_req_body(r), &status, &out)))
        api_success(r, &out);
    else if (status == 400)
        api_fail(r, 400);
    else
        api_error(r, 500);
    mr_buf_free(&out);
}

MR_RESULT api_register_recovery(mr_api *a)
{
    MR_GUARD(api_route(a, a->cfg.client_listener, "GET", "/api/v2/recover/public-key", 0,
                       h_public_key));
    MR_GUARD(api_route(a, a->cfg.client_listener, "POST", "/api/v2/recover", 0, h_recover));
    return MR_SUCCESS;
}
