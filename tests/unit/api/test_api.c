/* SPDX-License-Identifier: Apache-2.0 */
/*
 * API layer tests (src/coordinator/api): the real handlers on a real core (simulation mode),
 * driven through the network layer's virtual connections (no sockets, no TLS; a client
 * certificate is attached to the connection by hand). HTTP/1.1 requests in, full responses
 * out: status, manifest set/get (v1 and v2), secrets with and without a user certificate,
 * malformed bodies, metrics, events, the update log, the quote, the monotonic counter, and the
 * exact bytes of every route's answers that do not depend on time or keys.
 */
#include "mr_test.h"

#include <jansson.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/log.h"
#include "coordinator/api/api.h"
#include "coordinator/api/api_int.h"
#include "coordinator/server/internal.h"
#include "crypto/hash.h"
#include "crypto/x509.h"
#include "../core/core_test_util.h"

/* ---- the TLS client certificate of a virtual connection, in one place ----
 * Handlers see the TLS peer's leaf certificate only (mr_srv_req_peer_leaf); the connection
 * holds what the handshake produced. This is the only code of the test that knows how. */
static void conn_set_peer_leaf(mr_srv_conn *c, mr_slice der)
{
    mr_buf_init(&c->leaf, 0, 0);
    MR_ASSERT_OK(mr_buf_set(&c->leaf, der.ptr, der.len));
}

typedef struct fx {
    ct_core cc;
    mr_srv *srv;
    mr_api *api;
    int client, mesh, plain;
    ct_identity admin, stranger;
    mr_buf manifest;
    mr_buf marble_leaf; /* DER of an activated marble's certificate (test_marble_routes) */
} fx;

static void fx_open(fx *f)
{
    memset(f, 0, sizeof(*f));
    ct_core_open(&f->cc);
    ct_identity_new(&f->admin, "admin");
    ct_identity_new(&f->stranger, "stranger");
    ct_manifest(&f->manifest, (const char *)f->admin.pem.data, "[]");
    MR_ASSERT_OK(mr_srv_new(NULL, 2, &f->srv));
    MR_ASSERT_OK(mr_srv_listen_virtual(f->srv, MR_SRV_LISTENER_CLIENT, &f->client));
    MR_ASSERT_OK(mr_srv_listen_virtual(f->srv, MR_SRV_LISTENER_MESH, &f->mesh));
    MR_ASSERT_OK(mr_srv_listen_virtual(f->srv, MR_SRV_LISTENER_PLAIN, &f->plain));
    mr_api_config ac = {.core = f->cc.core, .srv = f->srv, .client_listener = f->client,
                        .mesh_listener = f->mesh, .metrics_listener = f->plain,
                        .version = "9.9.9", .commit = "abc"};
    MR_ASSERT_OK(mr_api_new(&ac, &f->api));
}

static void fx_close(fx *f)
{
    /* the order of the daemon: the server (and its workers) before the api and the core */
    mr_srv_free(f->srv);
    mr_api_free(f->api);
    ct_identity_free(&f->admin);
    ct_identity_free(&f->stranger);
    mr_buf_free(&f->manifest);
    mr_buf_free(&f->marble_leaf);
    ct_core_close(&f->cc);
}

typedef struct resp {
    int status;
    char *head; /* status line and headers */
    char *body;
    json_t *json; /* the body parsed, when it is JSON */
} resp;

static void resp_free(resp *r)
{
    mr_free(r->head);
    mr_free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Length of a complete response in the buffer (Content-Length bodies), or 0. */
static size_t complete_len(const char *p, size_t n)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t head = (size_t)(end - p) + 4;
    const char *cl = memmem(p, head, "Content-Length: ", 16);
    assert_non_null(cl);
    unsigned long len = strtoul(cl + 16, NULL, 10);
    return n >= head + len ? head + len : 0;
}

/* Sends one HTTP/1.1 request on a new virtual connection (optionally with a client
 * certificate) and waits (at most 10 s) for the whole response; handlers on the worker pool
 * answer through the loop. */
static resp request(fx *f, int listener, const char *method, const char *target,
                    const ct_identity *user, const char *body)
{
    resp r;
    char head[4096];
    memset(&r, 0, sizeof(r));
    mr_srv_conn *c = mr_srv_conn_new_virtual(f->srv, listener, MR_SRV_PROTO_HTTP1);
    assert_non_null(c);
    if (user != NULL)
        conn_set_peer_leaf(c, mr_buf_slice(&user->der));
    size_t blen = body != NULL ? strlen(body) : 0;
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n",
                     method, target, blen);
    assert_true(n > 0 && (size_t)n < sizeof(head));
    assert_int_equal(evbuffer_add(c->in, head, (size_t)n), 0);
    if (blen > 0)
        assert_int_equal(evbuffer_add(c->in, body, blen), 0);
    mr_srv_conn_process(c);
    size_t total = 0;
    for (int i = 0; i < 10000 && total == 0; i++) {
        event_base_loop(f->srv->base, EVLOOP_NONBLOCK);
        size_t have = evbuffer_get_length(c->out);
        const char *p = (const char *)evbuffer_pullup(c->out, (ssize_t)have);
        total = have > 0 ? complete_len(p, have) : 0;
        if (total == 0)
            usleep(1000);
    }
    if (total == 0)
        fail_msg("%s %s: no complete response", method, target);
    char *all = mr_calloc(1, total + 1);
    assert_non_null(all);
    assert_int_equal(evbuffer_remove(c->out, all, total), (int)total);
    mr_srv_conn_free_virtual(c);
    event_base_loop(f->srv->base, EVLOOP_NONBLOCK);

    char *sep = strstr(all, "\r\n\r\n");
    r.head = mr_strndup(all, (size_t)(sep - all));
    r.body = mr_strdup(sep + 4);
    mr_free(all);
    assert_non_null(r.head);
    assert_non_null(r.body);
    assert_true(strncmp(r.head, "HTTP/1.1 ", 9) == 0);
    r.status = (int)strtol(r.head + 9, NULL, 10);
    json_error_t je;
    r.json = json_loads(r.body, 0, &je);
    return r;
}

/* The body must be a JSend envelope {"status": want, ...}; returns its data member. */
static json_t *jsend(const resp *r, int status, const char *want)
{
    if (r->status != status)
        fail_msg("status %d, want %d: %s", r->status, status, r->body);
    if (r->json == NULL)
        fail_msg("not JSON: %s", r->body);
    json_t *st = json_object_get(r->json, "status");
    if (!json_is_string(st) || strcmp(json_string_value(st), want) != 0)
        fail_msg("JSend status of %s, want %s", r->body, want);
    return json_object_get(r->json, "data");
}

static const char *jstr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("no string %s", key);
    return json_string_value(v);
}

static const char *jmsg(const resp *r) { return jstr(r->json, "message"); }

/* ---- tests ---- */

static void test_status(void **state)
{
    fx f;
    (void)state;
    fx_open(&f);
    resp r = request(&f, f.client, "GET", "/status", NULL, NULL);
    json_t *d = jsend(&r, 200, "success");
    assert_int_equal(json_integer_value(json_object_get(d, "StatusCode")), 2);
    assert_string_equal(jstr(d, "StatusMessage"), "Coordinator is ready to accept a manifest.");
    assert_non_null(strstr(r.head, "Content-Type: application/json"));
    resp_free(&r);
    r = request(&f, f.client, "GET", "/api/v2/status", NULL, NULL);
    d = jsend(&r, 200, "success");
    assert_int_equal(json_integer_value(json_object_get(d, "code")), 2);
    assert_string_equal(jstr(d, "message"), "Coordinator is ready to accept a manifest.");
    resp_free(&r);
    /* unknown path and method: 405 with the error envelope */
    r = request(&f, f.client, "DELETE", "/status", NULL, NULL);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    fx_close(&f);
}

static void test_manifest(void **state)
{
    fx f;
    (void)state;
    fx_open(&f);
    /* nothing set yet */
    resp r = request(&f, f.client, "GET", "/api/v2/manifest", NULL, NULL);
    (void)jsend(&r, 500, "error");
    assert_string_equal(jmsg(&r), "requested value not set");
    resp_free(&r);

    /* bad JSON: 400 (v1 error, v2 fail), the state does not change */
    r = request(&f, f.client, "POST", "/manifest", NULL, "{\"Packages\": ");
    (void)jsend(&r, 400, "error");
    assert_non_null(strstr(jmsg(&r), "unmarshaling manifest"));
    resp_free(&r);
    r = request(&f, f.client, "POST", "/api/v2/manifest", NULL, "not json");
    (void)jsend(&r, 400, "fail");
    resp_free(&r);
    r = request(&f, f.client, "POST", "/api/v2/manifest", NULL, "{\"manifest\": 5}");
    (void)jsend(&r, 400, "fail");
    resp_free(&r);
    assert_int_equal(mr_core_state(f.cc.core), MR_STATE_ACCEPTING_MANIFEST);

    /* set (v1) and read back (v1, v2) */
    r = request(&f, f.client, "POST", "/manifest", NULL, (const char *)f.manifest.data);
    json_t *d = jsend(&r, 200, "success");
    assert_true(json_is_null(d)); /* no recovery keys */
    resp_free(&r);
    assert_int_equal(mr_core_state(f.cc.core), MR_STATE_ACCEPTING_MARBLES);

    mr_buf want;
    uint8_t h[32];
    char fp[65];
    mr_buf_init(&want, 0, 0);
    MR_ASSERT_OK(mr_b64_encode_buf(f.manifest.data, f.manifest.len, MR_B64_STD, &want));
    MR_ASSERT_OK(mr_buf_nul_terminate(&want));
    MR_ASSERT_OK(mr_sha256(f.manifest.data, f.manifest.len, h));
    for (size_t i = 0; i < 32; i++)
        (void)snprintf(fp + 2 * i, 3, "%02x", h[i]);
    r = request(&f, f.client, "GET", "/manifest", NULL, NULL);
    d = jsend(&r, 200, "success");
    assert_string_equal(jstr(d, "Manifest"), (const char *)want.data);
    assert_string_equal(jstr(d, "ManifestSignature"), fp);
    assert_true(strlen(jstr(d, "ManifestSignatureRootECDSA")) > 0);
    resp_free(&r);
    r = request(&f, f.client, "GET", "/api/v2/manifest", NULL, NULL);
    d = jsend(&r, 200, "success");
    assert_string_equal(jstr(d, "manifest"), (const char *)want.data);
    assert_string_equal(jstr(d, "manifestFingerprint"), fp);
    resp_free(&r);
    mr_buf_free(&want);

    r = request(&f, f.client, "GET", "/api/v2/status", NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(jsend(&r, 200, "success"), "code")), 3);
    resp_free(&r);
    /* a second manifest: refused (v1: 400 with the core's text) */
    r = request(&f, f.client, "POST", "/manifest", NULL, (const char *)f.manifest.data);
    (void)jsend(&r, 400, "error");
    assert_string_equal(jmsg(&r), "server is not in expected state");
    resp_free(&r);
    fx_close(&f);
}

static void test_manifest_v2(void **state)
{
    fx f;
    mr_buf body;
    (void)state;
    fx_open(&f);
    mr_buf_init(&body, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(&body, "{\"manifest\":\""));
    MR_ASSERT_OK(mr_b64_encode_buf(f.manifest.data, f.manifest.len, MR_B64_STD, &body));
    MR_ASSERT_OK(mr_buf_append_str(&body, "\"}"));
    MR_ASSERT_OK(mr_buf_nul_terminate(&body));
    resp r = request(&f, f.client, "POST", "/api/v2/manifest", NULL, (const char *)body.data);
    json_t *d = jsend(&r, 200, "success");
    assert_true(json_is_object(d)); /* v2 always answers a RecoverySecrets map */
    assert_int_equal(json_object_size(json_object_get(d, "RecoverySecrets")), 0);
    resp_free(&r);
    assert_int_equal(mr_core_state(f.cc.core), MR_STATE_ACCEPTING_MARBLES);
    /* v2 reports the core's refusal as 500 */
    r = request(&f, f.client, "POST", "/api/v2/manifest", NULL, (const char *)body.data);
    (void)jsend(&r, 500, "error");
    resp_free(&r);
    mr_buf_free(&body);
    fx_close(&f);
}

static void test_secrets(void **state)
{
    fx f;
    (void)state;
    fx_open(&f);
    ct_set_manifest(f.cc.core, &f.manifest);

    /* no client certificate: 401 (v1 error, v2 fail) */
    resp r = request(&f, f.client, "GET", "/secrets?s=password", NULL, NULL);
    (void)jsend(&r, 401, "error");
    assert_string_equal(jmsg(&r), "no client certificate provided");
    resp_free(&r);
    r = request(&f, f.client, "GET", "/api/v2/secrets?s=password", NULL, NULL);
    (void)jsend(&r, 401, "fail");
    assert_string_equal(jmsg(&r), "no client certificate provided");
    resp_free(&r);
    r = request(&f, f.client, "POST", "/secrets", NULL, "{\"password\":{\"Key\":\"eA==\"}}");
    (void)jsend(&r, 401, "error");
    resp_free(&r);
    /* a certificate that is not a user's: 401 */
    r = request(&f, f.client, "GET", "/secrets?s=password", &f.stranger, NULL);
    (void)jsend(&r, 401, "error");
    assert_string_equal(jmsg(&r),
                        "unauthorized user: client certificate did not match any MarbleRun users");
    resp_free(&r);
    r = request(&f, f.client, "POST", "/api/v2/secrets", &f.stranger,
                "{\"secrets\":{\"password\":{\"Key\":\"eA==\"}}}");
    (void)jsend(&r, 401, "fail");
    resp_free(&r);

    /* the user: bad JSON is 400; a good upload is stored and can be read back */
    r = request(&f, f.client, "POST", "/secrets", &f.admin, "{\"password\":");
    (void)jsend(&r, 400, "error");
    assert_non_null(strstr(jmsg(&r), "unmarshaling secret manifest"));
    resp_free(&r);
    r = request(&f, f.client, "POST", "/api/v2/secrets", &f.admin, "[1,2");
    (void)jsend(&r, 400, "fail");
    resp_free(&r);
    r = request(&f, f.client, "POST", "/secrets", &f.admin, "{\"password\":{\"Key\":\"aHVudGVyMg==\"}}");
    assert_true(json_is_null(jsend(&r, 200, "success")));
    resp_free(&r);
    r = request(&f, f.client, "GET", "/secrets?s=password", &f.admin, NULL);
    json_t *d = jsend(&r, 200, "success");
    assert_string_equal(jstr(json_object_get(d, "password"), "Private"), "aHVudGVyMg==");
    resp_free(&r);
    r = request(&f, f.client, "GET", "/api/v2/secrets?s=password", &f.admin, NULL);
    d = jsend(&r, 200, "success");
    assert_string_equal(jstr(json_object_get(json_object_get(d, "secrets"), "password"), "Private"),
                        "aHVudGVyMg==");
    resp_free(&r);
    /* query errors and permissions */
    r = request(&f, f.client, "GET", "/api/v2/secrets", &f.admin, NULL);
    (void)jsend(&r, 400, "fail");
    assert_string_equal(jmsg(&r), "invalid query: endpoint requires at least one query parameter");
    resp_free(&r);
    r = request(&f, f.client, "GET", "/secrets?s=symKey", &f.admin, NULL);
    (void)jsend(&r, 400, "error");
    assert_string_equal(jmsg(&r), "user admin is not allowed to read one or more secrets of: [symKey]");
    resp_free(&r);
    fx_close(&f);
}

/* ---- a posted secret is not left in freed memory ---- */

#define MARKER "Zq7-posted-secret-3f1d9a-marker"

static atomic_int g_leaks;

static bool contains(const void *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    const uint8_t *b = p;
    for (size_t i = 0; n >= k && i <= n - k; i++)
        if (b[i] == (uint8_t)needle[0] && memcmp(b + i, needle, k) == 0)
            return true;
    return false;
}

static char g_marker_b64[128];

static void scan_released(const void *p, size_t n)
{
    if (contains(p, n, MARKER) || contains(p, n, g_marker_b64))
        atomic_fetch_add(&g_leaks, 1);
}

static void test_posted_secret_not_left_in_freed_memory(void **state)
{
    fx f;
    (void)state;
    /* jansson frees through the wiping allocator (the hook below only sees ours) */
    json_malloc_t jm = NULL;
    json_free_t jf = NULL;
    json_get_alloc_funcs(&jm, &jf);
    assert_ptr_equal(jm, mr_wipe_malloc);
    assert_ptr_equal(jf, mr_wipe_free);
    fx_open(&f);
    ct_set_manifest(f.cc.core, &f.manifest);
    mr_buf b64;
    mr_buf_init(&b64, 0, 0);
    MR_ASSERT_OK(mr_b64_encode_buf((const uint8_t *)MARKER, strlen(MARKER), MR_B64_STD, &b64));
    assert_true(b64.len < sizeof(g_marker_b64));
    memcpy(g_marker_b64, b64.data, b64.len);
    g_marker_b64[b64.len] = '\0';
    char body[512];
    for (int v2 = 0; v2 < 2; v2++) {
        (void)snprintf(body, sizeof(body),
                       v2 ? "{\"secrets\":{\"password\":{\"Key\":\"%s\"}}}"
                          : "{\"password\":{\"Key\":\"%s\"}}",
                       g_marker_b64);
        /* the probe must see the plain allocator too: sanity check that it fires */
        atomic_store(&g_leaks, 0);
        mr_alloc_set_release_hook(scan_released);
        char *probe = mr_strdup(MARKER);
        mr_free(probe);
        assert_int_equal(atomic_load(&g_leaks), 1);
        atomic_store(&g_leaks, 0);
        /* the upload: request body, JSON values, decoded key, the store's commit */
        resp r = request(&f, f.client, "POST", v2 ? "/api/v2/secrets" : "/secrets", &f.admin, body);
        assert_true(json_is_null(jsend(&r, 200, "success")));
        mr_alloc_set_release_hook(NULL);
        resp_free(&r);
        assert_int_equal(atomic_load(&g_leaks), 0);
    }
    mr_buf_free(&b64);
    fx_close(&f);
}

/* ---- exact answers ----
 * The whole body of answers that do not depend on time, keys or certificates, byte for byte
 * (the handlers build them in pieces; any change of a text, a status or the JSON shape shows
 * here). `who`: 0 = no client certificate, 1 = the admin user, 2 = a stranger, 3 = an
 * activated marble (fx.marble_leaf). */
typedef struct exact {
    int listener; /* 0 client, 1 plain */
    const char *method, *target;
    int who;
    const char *body;
    int status;
    const char *want;
} exact;

static void check_exact(fx *f, const exact *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ct_identity marble = {.der = f->marble_leaf};
        const ct_identity *user = t[i].who == 1   ? &f->admin
                                  : t[i].who == 2 ? &f->stranger
                                  : t[i].who == 3 ? &marble
                                                  : NULL;
        resp r = request(f, t[i].listener == 1 ? f->plain : f->client, t[i].method, t[i].target,
                         user, t[i].body);
        if (r.status != t[i].status || strcmp(r.body, t[i].want) != 0)
            fail_msg("%s %s: %d %s, want %d %s", t[i].method, t[i].target, r.status, r.body,
                     t[i].status, t[i].want);
        resp_free(&r);
    }
}

#define ERR(m) "{\"status\":\"error\",\"data\":null,\"message\":\"" m "\"}\n"
#define FAIL(m) "{\"status\":\"fail\",\"data\":null,\"message\":\"" m "\"}\n"

static const exact before_manifest[] = {
    {0, "GET", "/status", 0, NULL, 200,
     "{\"status\":\"success\",\"data\":{\"StatusCode\":2,\"StatusMessage\":\"Coordinator is "
     "ready to accept a manifest.\"}}\n"},
    {0, "GET", "/api/v2/status", 0, NULL, 200,
     "{\"status\":\"success\",\"data\":{\"code\":2,\"message\":\"Coordinator is ready to "
     "accept a manifest.\"}}\n"},
    {0, "GET", "/manifest", 0, NULL, 200,
     "{\"status\":\"success\",\"data\":{\"ManifestSignatureRootECDSA\":null,"
     "\"ManifestSignature\":\"\",\"Manifest\":null}}\n"},
    {0, "GET", "/api/v2/manifest", 0, NULL, 500, ERR("requested value not set")},
    {0, "GET", "/update", 0, NULL, 500, ERR("server is not in expected state")},
    {0, "GET", "/api/v2/update", 0, NULL, 500, ERR("server is not in expected state")},
    {0, "GET", "/update-manifest", 0, NULL, 404, ERR("no update in progress")},
    {0, "GET", "/api/v2/update-manifest", 0, NULL, 404, ERR("no update in progress")},
    {0, "POST", "/recover", 0, "x", 410,
     ERR("Recovering the Coordinator using the /recover API endpoint has been disabled. Use "
         "the /api/v2/recover endpoint instead.")},
    {0, "GET", "/api/v2/recover/public-key", 0, NULL, 500, ERR("server is not in expected state")},
    {0, "POST", "/api/v2/recover", 0, "", 400, FAIL("EOF")},
    {0, "POST", "/api/v2/recover", 0, "[1]", 400,
     FAIL("json: cannot unmarshal array into Go value of type object")},
    {0, "POST", "/api/v2/recover", 0, "{\"recoverySecret\":5}", 400,
     FAIL("json: cannot unmarshal value into Go struct field .recoverySecret of type []uint8")},
    {0, "POST", "/api/v2/recover", 0, "{}", 400,
     FAIL("failed to decrypt recovery secret: server is not in expected state")},
    {0, "POST", "/api/v2/recover", 0, "{\"recoverySecret\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}", 500,
     ERR("server is not in expected state")},
    {0, "POST", "/api/v2/sign-quote", 0, "", 400,
     "{\"status\":\"fail\",\"data\":{\"sgxQuote\":\"failed to parse JSON "
     "data\"},\"message\":\"bad request: EOF\"}\n"},
    {0, "POST", "/api/v2/sign-quote", 0, "{\"sgxQuote\":\"AAAA\"}", 403,
     ERR("SignQuoteEndpoint feature is not enabled in the manifest")},
    {0, "POST", "/api/v2/monotonic-counter", 0, "{}", 401,
     FAIL("unauthorized marble: server is not in expected state")},
    {0, "GET", "/api/v2/quote?nonce=!!", 0, NULL, 400,
     FAIL("invalid query: bad nonce format: illegal base64 data at input byte 2")},
    {0, "POST", "/update-cancel", 0, NULL, 401, ERR("no client certificate provided")},
    {0, "POST", "/api/v2/update-cancel", 0, NULL, 401, FAIL("no client certificate provided")},
    {0, "POST", "/update", 2, "{}", 401,
     ERR("unauthorized user: client certificate did not match any MarbleRun users")},
    {0, "POST", "/api/v2/update", 2, "{}", 401,
     FAIL("unauthorized user: client certificate did not match any MarbleRun users")},
    {0, "POST", "/update-manifest", 0, "{}", 401, ERR("no client certificate provided")},
    {0, "POST", "/api/v2/update-manifest", 0, "{}", 401, FAIL("no client certificate provided")},
    {1, "GET", "/healthz", 0, NULL, 200, "ok\n"},
    {1, "GET", "/readyz", 0, NULL, 200, "ready\n"},
    {1, "GET", "/events", 0, NULL, 200, "null\n"},
};

static const exact after_manifest[] = {
    {0, "GET", "/secrets", 1, NULL, 400,
     ERR("invalid query: endpoint requires at least one query parameter")},
    {0, "GET", "/secrets?s=", 1, NULL, 400, ERR("malformed query string: empty query parameter")},
    {0, "GET", "/api/v2/secrets?s=password&s=", 1, NULL, 400,
     FAIL("malformed query string: empty query parameter")},
    {0, "GET", NULL /* 257 names */, 1, NULL, 400,
     ERR("invalid query: more than 256 secrets requested")},
    {0, "POST", "/secrets", 1, "", 400,
     ERR("unmarshaling secret manifest: unexpected end of JSON input")},
    {0, "POST", "/secrets", 1, "[1]", 400,
     ERR("unmarshaling secret manifest: json: cannot unmarshal value into Go value of type "
         "map[string]manifest.UserSecret")},
    {0, "POST", "/api/v2/secrets", 1, "{\"secrets\":{}} x", 400,
     FAIL("invalid character 'x' after top-level value")},
    {0, "POST", "/api/v2/secrets", 1, "{\"secrets\":{\"password\":{\"Key\":5}}}", 400,
     FAIL("json: cannot unmarshal value into Go struct field UserSecret.Key of type []uint8")},
    {0, "POST", "/api/v2/secrets", 1, "{\"secrets\":{\"password\":{\"Key\":\"!\"}}}", 400,
     FAIL("secret password: Key: illegal base64 data at input byte 1")},
    {0, "POST", "/api/v2/secrets", 1, "{}", 500, ERR("no new secrets defined")},
    {0, "POST", "/update-manifest", 1, "{}", 404, ERR("no update in progress")},
    {0, "POST", "/api/v2/update-manifest", 1, "x", 400, FAIL("invalid token near 'x'")},
    {0, "POST", "/api/v2/update-manifest", 1, "{}", 404, ERR("no update in progress")},
    {0, "POST", "/update-cancel", 1, NULL, 500,
     ERR("user admin is not allowed to cancel the manifest update")},
    {0, "POST", "/api/v2/update-cancel", 1, NULL, 500,
     ERR("user admin is not allowed to cancel the manifest update")},
    {0, "POST", "/update", 1, "{}", 400,
     ERR("user admin is not allowed to update one or more packages of []")},
    {0, "POST", "/api/v2/update", 1, "x", 400, FAIL("invalid token near 'x'")},
    {0, "POST", "/api/v2/update", 1, "{\"manifest\":\"e30=\"}", 500,
     ERR("user admin is not allowed to update one or more packages of []")},
    {0, "POST", "/api/v2/monotonic-counter", 1, "{}", 401,
     FAIL("unauthorized marble: certificate verification failed: self-signed certificate")},
};

static void test_exact_answers(void **state)
{
    fx f;
    (void)state;
    fx_open(&f);
    check_exact(&f, before_manifest, MR_ARRAY_LEN(before_manifest));
    ct_set_manifest(f.cc.core, &f.manifest);
    /* GET /secrets with one name too many (MAX_NAMES = 256) */
    char many[2048] = "/secrets?s=a";
    size_t pos = strlen(many);
    for (int i = 1; i <= 256; i++, pos += 4)
        memcpy(many + pos, "&s=a", 5);
    exact t[MR_ARRAY_LEN(after_manifest)];
    memcpy(t, after_manifest, sizeof(t));
    t[3].target = many;
    check_exact(&f, t, MR_ARRAY_LEN(t));
    fx_close(&f);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* /events and the activation series of /metrics, with events recorded as h_activate does. */
static void test_events_and_series(void **state)
{
    fx f;
    (void)state;
    fx_open(&f);
    api_count_activation(f.api, "app", "uuid-1", false);
    api_count_activation(f.api, "app", "uuid-1", false);
    api_count_activation(f.api, "app", "uuid-1", true);
    api_record_event(f.api, "app", "uuid-1", MR_SLICE("quote", 5));
    api_record_event(f.api, "app", "uuid-2", MR_SLICE(NULL, 0));
    resp r = request(&f, f.plain, "GET", "/events", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: application/json"));
    /* the times vary: each is RFC 3339 with nanoseconds (30 characters); blank them out */
    for (char *t = r.body; (t = strstr(t, "\"time\":\"")) != NULL;) {
        t += 8;
        char *end = strchr(t, '"');
        assert_non_null(end);
        assert_int_equal(end - t, 30);
        assert_true(t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[29] == 'Z');
        memset(t, '0', 30);
    }
    assert_string_equal(r.body,
                        "[{\"time\":\"000000000000000000000000000000\",\"activation\":"
                        "{\"marbleType\":\"app\",\"uuid\":\"uuid-1\",\"quote\":\"cXVvdGU=\"}},"
                        "{\"time\":\"000000000000000000000000000000\",\"activation\":"
                        "{\"marbleType\":\"app\",\"uuid\":\"uuid-2\",\"quote\":\"\"}}]\n");
    resp_free(&r);
    r = request(&f, f.plain, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    if (!starts_with(r.body,
                     "# HELP coordinator_version_info Version information of the Coordinator\n"
                     "# TYPE coordinator_version_info gauge\n"
                     "coordinator_version_info{commit=\"abc\",version=\"9.9.9\"} 0\n"
                     "# HELP coordinator_state State of the Coordinator\n"
                     "# TYPE coordinator_state gauge\n"
                     "coordinator_state 2\n"
                     "# HELP coordinator_marble_activations_total Number of marble activation "
                     "attempts\n"
                     "# TYPE coordinator_marble_activations_total counter\n"
                     "coordinator_marble_activations_total{type=\"app\",uuid=\"uuid-1\"} 2\n"
                     "# HELP coordinator_marble_activations_success_total Number of successful "
                     "marble activations\n"
                     "# TYPE coordinator_marble_activations_success_total counter\n"
                     "coordinator_marble_activations_success_total{type=\"app\",uuid=\"uuid-1\"} 1\n"
                     "# HELP grpc_server_handled_total "))
        fail_msg("metrics: %s", r.body);
    /* the store's counters follow upstream's families */
    assert_non_null(strstr(r.body, "\n# TYPE marblerun_store_commits_total counter\n"
                                   "marblerun_store_commits_total "));
    assert_non_null(strstr(r.body, "\nmarblerun_store_conflicts_total 0\n"));
    resp_free(&r);
    fx_close(&f);
}

/* The update log (v1: one string, v2: its lines) and the quote's JSON shape. */
static void test_log_and_quote(void **state)
{
    fx f;
    (void)state;
    fx_open(&f);
    ct_set_manifest(f.cc.core, &f.manifest);
    resp r1 = request(&f, f.client, "GET", "/update", NULL, NULL);
    resp r2 = request(&f, f.client, "GET", "/api/v2/update", NULL, NULL);
    json_t *d1 = jsend(&r1, 200, "success");
    json_t *lines = json_object_get(jsend(&r2, 200, "success"), "updateLog");
    assert_true(json_is_string(d1));
    assert_true(json_is_array(lines));
    assert_true(json_array_size(lines) > 0);
    mr_buf joined;
    mr_buf_init(&joined, 0, 0);
    for (size_t i = 0; i < json_array_size(lines); i++) {
        MR_ASSERT_OK(mr_buf_append_str(&joined, json_string_value(json_array_get(lines, i))));
        MR_ASSERT_OK(mr_buf_append_u8(&joined, '\n'));
    }
    MR_ASSERT_OK(mr_buf_nul_terminate(&joined));
    assert_string_equal(json_string_value(d1), (const char *)joined.data);
    mr_buf_free(&joined);
    resp_free(&r1);
    resp_free(&r2);
    /* simulation mode: the certificate chain and no quote */
    r1 = request(&f, f.client, "GET", "/quote", NULL, NULL);
    r2 = request(&f, f.client, "GET", "/api/v2/quote?nonce=AAAA", NULL, NULL);
    (void)jsend(&r1, 200, "success");
    (void)jsend(&r2, 200, "success");
    assert_true(starts_with(r1.body, "{\"status\":\"success\",\"data\":{\"Cert\":\"-----BEGIN "));
    assert_true(ends_with(r1.body, "-----\\n\",\"Quote\":null}}\n"));
    assert_true(starts_with(r2.body, "{\"status\":\"success\",\"data\":{\"cert\":\"-----BEGIN "));
    assert_true(ends_with(r2.body, "-----\\n\",\"quote\":null}}\n"));
    resp_free(&r1);
    resp_free(&r2);
    fx_close(&f);
}

/* With the MonotonicCounter and SignQuoteEndpoint features: the counter as a marble sees it,
 * and a quote that does not verify. */
static const exact marble_routes[] = {
    {0, "POST", "/api/v2/monotonic-counter", 3, "{\"name\":\"ctr\",\"value\":5}", 200,
     "{\"status\":\"success\",\"data\":{\"value\":0}}\n"},
    {0, "POST", "/api/v2/monotonic-counter", 3, "{\"name\":\"ctr\",\"value\":3}", 200,
     "{\"status\":\"success\",\"data\":{\"value\":5}}\n"},
    {0, "POST", "/api/v2/monotonic-counter", 3, "{\"name\":5}", 400, FAIL("invalid request body")},
    {0, "POST", "/api/v2/monotonic-counter", 3, "{\"value\":-1}", 400,
     FAIL("invalid request body")},
    {0, "POST", "/api/v2/monotonic-counter", 3, "[", 400, FAIL("']' expected near end of file")},
    {0, "POST", "/api/v2/monotonic-counter", 1, "{}", 401,
     FAIL("unauthorized marble: certificate verification failed: self-signed certificate")},
    {0, "POST", "/api/v2/sign-quote", 0, "{\"sgxQuote\":\"AAAA\"}", 400,
     "{\"status\":\"fail\",\"data\":{\"sgxQuote\":\"quote verification failed: quote parse: "
     "truncated input: need 2 bytes at offset 2, have 1\"},\"message\":\"quote verification "
     "failed\"}\n"},
};

static void test_marble_routes(void **state)
{
    fx f;
    ct_marble m;
    mr_core_activation_resp ar;
    mr_buf chain;
    X509 *leaf = NULL;
    (void)state;
    fx_open(&f);
    mr_buf_free(&f.manifest);
    ct_manifest(&f.manifest, (const char *)f.admin.pem.data,
                "[\"MonotonicCounter\",\"SignQuoteEndpoint\"]");
    ct_set_manifest(f.cc.core, &f.manifest);
    MR_ASSERT_OK(ct_set_password(f.cc.core, "initial"));
    ct_marble_new(&m);
    mr_core_activation_req req = ct_activation_req(&m, "app");
    MR_ASSERT_OK(mr_core_activate(f.cc.core, &req, &ar));
    mr_buf_init(&chain, 0, 0);
    const char *pem = ct_env(&ar, "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN", &chain);
    MR_ASSERT_OK(mr_x509_from_pem(MR_SLICE(pem, strlen(pem)), &leaf));
    MR_ASSERT_OK(mr_x509_to_der(leaf, &f.marble_leaf));
    X509_free(leaf);
    mr_buf_free(&chain);
    mr_core_activation_resp_free(&ar);
    ct_marble_free(&m);
    check_exact(&f, marble_routes, MR_ARRAY_LEN(marble_routes));
    fx_close(&f);
}

static void test_metrics(void **state)
{
    fx f;
    (void)state;
    fx_open(&f);
    resp r = request(&f, f.plain, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "coordinator_version_info{commit=\"abc\",version=\"9.9.9\"} 0\n"));
    assert_non_null(strstr(r.body, "coordinator_state 2\n"));
    resp_free(&r);
    fx_close(&f);
}

int main(void)
{
    mr_log_init(MR_LOG_FATAL, MR_LOG_CONSOLE); /* expected refusals stay out of the output */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status),   cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_manifest_v2), cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_metrics),     cmocka_unit_test(test_exact_answers),
        cmocka_unit_test(test_events_and_series), cmocka_unit_test(test_log_and_quote),
        cmocka_unit_test(test_marble_routes),
        cmocka_unit_test(test_posted_secret_not_left_in_freed_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
