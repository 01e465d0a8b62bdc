/* SPDX-License-Identifier: Apache-2.0 */
/*
 * API layer tests (src/coordinator/api): the real handlers on a real core (simulation mode),
 * driven through the network layer's virtual connections (no sockets, no TLS; a client
 * certificate is attached to the connection by hand). HTTP/1.1 requests in, full responses
 * out: status, manifest set/get (v1 and v2), secrets with and without a user certificate,
 * malformed bodies, metrics.
 */
#include "mr_test.h"

#include <jansson.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/log.h"
#include "coordinator/api/api.h"
#include "coordinator/server/internal.h"
#include "crypto/hash.h"
#include "../core/core_test_util.h"

/* ---- the TLS client certificate of a virtual connection, in one place ----
 * The request accessors are about to change to one leaf certificate
 * (mr_srv_req_peer_leaf); the connection holds what the handshake produced. This is the only
 * code of the test that knows how. */
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
    char head[1024];
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
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_posted_secret_not_left_in_freed_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
