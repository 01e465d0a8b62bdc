/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client REST API: status, manifest, quote and recovery entry points, v1 paths and /api/v2
 * (spec §4.5, §12.3, §12.4). Texts, status codes and JSON shapes are MarbleRun's.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "coordinator/api/api_int.h"

#define V1_RECOVER_GONE                                                                       \
    "Recovering the Coordinator using the /recover API endpoint has been disabled. Use the "  \
    "/api/v2/recover endpoint instead."

/* ---- status ---- */

static MR_RESULT status_json(mr_api *a, bool v2, mr_buf *out)
{
    int s = mr_core_state(a->cfg.core);
    const char *msg = mr_core_state_message(s);
    bool first = true;
    MR_ENSURE(msg != NULL, MR_ERR_INTERNAL, "cannot determine coordinator status");
    MR_GUARD(mr_buf_append_u8(out, '{'));
    MR_GUARD(jw_key(out, &first, v2 ? "code" : "StatusCode"));
    MR_GUARD(jw_int(out, s));
    MR_GUARD(jw_key(out, &first, v2 ? "message" : "StatusMessage"));
    MR_GUARD(jw_str(out, msg));
    return mr_buf_append_u8(out, '}');
}

static void status(mr_srv_request *r, mr_api *a, bool v2)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    api_reply(r, status_json(a, v2, &out), &out);
    mr_buf_free(&out);
}

static void h_status_v1(mr_srv_request *r, void *arg) { status(r, arg, false); }
static void h_status_v2(mr_srv_request *r, void *arg) { status(r, arg, true); }

/* ---- GET manifest ---- */

static MR_RESULT manifest_json(mr_api *a, bool v2, mr_buf *out, bool *present)
{
    mr_result res = MR_FAILURE;
    mr_buf raw, sig;
    char fp[65];
    bool first = true;
    mr_buf_init(&raw, 0, 0);
    mr_buf_init(&sig, 0, 0);
    MR_GUARD_OUT(mr_core_manifest(a->cfg.core, &raw, &sig, fp, present));
    MR_GUARD_OUT(mr_buf_append_u8(out, '{'));
    MR_GUARD_OUT(jw_key(out, &first,
                        v2 ? "manifestSignatureRootECDSA" : "ManifestSignatureRootECDSA"));
    MR_GUARD_OUT(jw_b64(out, *present ? sig.data : NULL, sig.len));
    MR_GUARD_OUT(jw_key(out, &first, v2 ? "manifestFingerprint" : "ManifestSignature"));
    MR_GUARD_OUT(jw_str(out, fp));
    MR_GUARD_OUT(jw_key(out, &first, v2 ? "manifest" : "Manifest"));
    MR_GUARD_OUT(jw_b64(out, *present ? raw.data : NULL, raw.len));
    MR_GUARD_OUT(mr_buf_append_u8(out, '}'));
    res = MR_SUCCESS;
out:
    mr_buf_free(&raw);
    mr_buf_free(&sig);
    return res;
}

static void h_manifest_get_v1(mr_srv_request *r, void *arg)
{
    mr_buf out;
    bool present = false;
    mr_buf_init(&out, 0, 0);
    if (!mr_ok(manifest_json(arg, false, &out, &present))) {
        /* v1 answers the empty object on any error (spec §4.5.3) */
        mr_buf_reset(&out);
        MR_IGNORE(mr_buf_append_str(&out, "{\"ManifestSignatureRootECDSA\":null,"
                                          "\"ManifestSignature\":\"\",\"Manifest\":null}"));
    }
    api_success(r, &out);
    mr_buf_free(&out);
}

static void h_manifest_get_v2(mr_srv_request *r, void *arg)
{
    mr_buf out;
    bool present = false;
    mr_buf_init(&out, 0, 0);
    if (mr_ok(manifest_json(arg, true, &out, &present)) && present)
        api_success(r, &out);
    else if (!present)
        mr_srv_reply_error(r, 500, "requested value not set");
    else
        api_error(r, 500);
    mr_buf_free(&out);
}

/* ---- POST manifest ---- */

/* {"RecoverySecrets":{name:b64,...}}; with allow_null and no secrets: nothing (null data). */
static MR_RESULT recovery_json(const mr_core_recovery_secrets *s, bool allow_null, mr_buf *out,
                               bool *is_null)
{
    *is_null = allow_null && s->count == 0;
    if (*is_null)
        return MR_SUCCESS;
    bool first = true;
    MR_GUARD(mr_buf_append_str(out, "{\"RecoverySecrets\":{"));
    for (size_t i = 0; i < s->count; i++) {
        MR_GUARD(jw_key(out, &first, s->items[i].name));
        MR_GUARD(jw_b64(out, s->items[i].value.data, s->items[i].value.len));
    }
    return mr_buf_append_str(out, "}}");
}

static void set_manifest(mr_srv_request *r, mr_api *a, mr_slice raw, bool v2)
{
    mr_core_recovery_secrets secrets = {0};
    mr_buf out;
    bool is_null = false;
    mr_buf_init(&out, 0, 0);
    if (!mr_ok(mr_core_set_manifest(a->cfg.core, raw.ptr, raw.len, &secrets)))
        api_error(r, v2 ? 500 : 400);
    else if (!mr_ok(recovery_json(&secrets, !v2, &out, &is_null)))
        api_error(r, 500);
    else
        api_success(r, is_null ? NULL : &out);
    mr_core_recovery_secrets_free(&secrets);
    mr_buf_free(&out);
}

/* The body was refused before it was read (the state took no manifest): the core answers with
 * its state error; if the state changed since, the client must retry. */
static bool body_withheld(mr_srv_request *r, mr_api *a, bool v2)
{
    if (!mr_srv_req_body_withheld(r))
        return false;
    if (api_accepts_manifest(a))
        mr_srv_reply_error(r, 503, API_RETRY_TEXT);
    else
        set_manifest(r, a, (mr_slice){0}, v2);
    return true;
}

static void h_manifest_post_v1(mr_srv_request *r, void *arg)
{
    if (!body_withheld(r, arg, false))
        set_manifest(r, arg, mr_srv_req_body(r), false);
}

static void h_manifest_post_v2(mr_srv_request *r, void *arg)
{
    mr_buf manifest;
    bool present = false;
    if (body_withheld(r, arg, true))
        return;
    mr_buf_init(&manifest, 0, 0);
    if (!mr_ok(jr_b64_field(mr_srv_req_body(r), "manifest", &manifest, &present)))
        api_fail(r, 400);
    else
        set_manifest(r, arg, mr_buf_slice(&manifest), true);
    mr_buf_free(&manifest);
}

/* ---- quote ---- */

static MR_RESULT quote_json(mr_api *a, bool v2, const mr_buf *nonce, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf chain, quote;
    bool has = false, first = true;
    mr_buf_init(&chain, 0, 0);
    mr_buf_init(&quote, 0, 0);
    MR_GUARD_OUT(mr_core_quote(a->cfg.core, nonce ? nonce->data : NULL, nonce ? nonce->len : 0,
                               &chain, &quote, &has));
    MR_GUARD_OUT(mr_buf_append_u8(out, '{'));
    MR_GUARD_OUT(jw_key(out, &first, v2 ? "cert" : "Cert"));
    MR_GUARD_OUT(jw_strn(out, (const char *)chain.data, chain.len));
    MR_GUARD_OUT(jw_key(out, &first, v2 ? "quote" : "Quote"));
    MR_GUARD_OUT(jw_b64(out, has ? quote.data : NULL, quote.len));
    MR_GUARD_OUT(mr_buf_append_u8(out, '}'));
    res = MR_SUCCESS;
out:
    mr_buf_free(&chain);
    mr_buf_free(&quote);
    return res;
}

static void h_quote_v1(mr_srv_request *r, void *arg)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    api_reply(r, quote_json(arg, false, NULL, &out), &out);
    mr_buf_free(&out);
}

/* The nonce query parameter, base64url (none: *with false). */
static MR_RESULT read_nonce(const char *query, mr_buf *nonce, bool *with, int *status)
{
    mr_result res = MR_FAILURE;
    mr_srv_strlist nonces = {0};
    *with = false;
    *status = 500;
    MR_GUARD_OUT(mr_srv_query_values(query, "nonce", false, &nonces));
    if (nonces.n > 0 && nonces.v[0][0] != '\0') {
        *with = true;
        *status = 400;
        if (!mr_ok(mr_b64_decode_buf(nonces.v[0], strlen(nonces.v[0]), MR_B64_URL, 0, nonce))) {
            mr_error_prefix("invalid query: bad nonce format");
            goto out;
        }
    }
    res = MR_SUCCESS;
out:
    mr_srv_strlist_free(&nonces);
    return res;
}

/* On failure *status is 400 (a bad nonce) or 500. */
static MR_RESULT build_quote_v2(mr_api *a, const char *query, int *status, mr_buf *out)
{
    mr_result res = MR_FAILURE;
    mr_buf nonce;
    bool with_nonce = false;
    mr_buf_init(&nonce, 4096, 0);
    MR_GUARD_OUT(read_nonce(query, &nonce, &with_nonce, status));
    *status = 500;
    MR_GUARD_OUT(quote_json(a, true, with_nonce ? &nonce : NULL, out));
    res = MR_SUCCESS;
out:
    mr_buf_free(&nonce);
    return res;
}

static void h_quote_v2(mr_srv_request *r, void *arg)
{
    mr_buf out;
    int status = 500;
    mr_buf_init(&out, 0, 0);
    if (mr_ok(build_quote_v2(arg, mr_srv_req_query(r), &status, &out)))
        api_success(r, &out);
    else if (status == 400)
        api_fail(r, 400);
    else
        api_error(r, 500);
    mr_buf_free(&out);
}

/* ---- recovery (v1 is gone since 1.7.0) ---- */

static void h_recover_v1(mr_srv_request *r, void *arg)
{
    (void)arg;
    mr_srv_reply_error(r, 410, V1_RECOVER_GONE);
}

MR_RESULT api_register_rest(mr_api *a)
{
    static const struct {
        const char *method, *path;
        mr_srv_handler_fn fn;
        unsigned flags;
    } routes[] = {
        {"GET", "/status", h_status_v1, MR_SRV_ROUTE_INLINE},
        {"GET", "/api/v2/status", h_status_v2, MR_SRV_ROUTE_INLINE},
        {"GET", "/manifest", h_manifest_get_v1, 0},
        {"GET", "/api/v2/manifest", h_manifest_get_v2, 0},
        {"POST", "/manifest", h_manifest_post_v1, 0},
        {"POST", "/api/v2/manifest", h_manifest_post_v2, 0},
        {"GET", "/quote", h_quote_v1, 0},
        {"GET", "/api/v2/quote", h_quote_v2, 0},
        {"POST", "/recover", h_recover_v1, MR_SRV_ROUTE_INLINE},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(routes); i++)
        MR_GUARD(api_route(a, a->cfg.client_listener, routes[i].method, routes[i].path,
                           routes[i].flags, routes[i].fn));
    return MR_SUCCESS;
}
