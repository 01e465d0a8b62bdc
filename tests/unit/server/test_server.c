/* SPDX-License-Identifier: Apache-2.0 */
#include "mr_test.h"

#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/text.h"
#include "coordinator/server/internal.h"

static void noop_handler(mr_srv_request *r, void *arg)
{
    (void)r;
    (void)arg;
}

static const char *bufstr(mr_buf *b)
{
    if (!mr_ok(mr_buf_nul_terminate(b)))
        return "";
    return b->data != NULL ? (const char *)b->data : "";
}

/* ---- path cleaning and routing ---- */

static void check_clean(const char *in, const char *want)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_srv_path_clean(in, &b));
    if (strcmp(bufstr(&b), want) != 0)
        fail_msg("clean(%s) = %s, want %s", in, bufstr(&b), want);
    mr_buf_free(&b);
}

static void test_path_clean(void **state)
{
    (void)state;
    check_clean("", "/");
    check_clean("/", "/");
    check_clean("//status", "/status");
    check_clean("/a/../status", "/status");
    check_clean("/status/", "/status/");
    check_clean("/./status", "/status");
    check_clean("/..", "/");
    check_clean("/../..//x/./y/..", "/x");
    check_clean("/a/b/", "/a/b/");
    check_clean("/a//b//", "/a/b/");
    check_clean("status", "/status");
    check_clean("/abc/def/../../..", "/");
}

static void test_router(void **state)
{
    (void)state;
    mr_srv_router rt = {0};
    mr_srv_route_outcome oc;
    const mr_srv_route_ent *ent = NULL;
    mr_buf loc;
    mr_buf_init(&loc, 0, 0);
    MR_ASSERT_OK(mr_srv_router_add(&rt, "GET", "/status", 0, false, noop_handler, NULL));
    MR_ASSERT_OK(mr_srv_router_add(&rt, "POST", "/manifest", 0, false, noop_handler, NULL));
    MR_ASSERT_OK(mr_srv_router_add(&rt, "GET", "/manifest", 0, false, noop_handler, NULL));
    MR_ASSERT_FAIL(mr_srv_router_add(&rt, "GET", "/status", 0, false, noop_handler, NULL),
                   MR_ERR_USAGE, "twice");
    MR_ASSERT_FAIL(mr_srv_router_add(&rt, "GET", "status", 0, false, noop_handler, NULL),
                   MR_ERR_USAGE, "start with");

    MR_ASSERT_OK(mr_srv_router_match(&rt, "GET", "/status", "", &oc, &ent, &loc));
    assert_int_equal(oc, MR_SRV_ROUTE_FOUND);
    assert_string_equal(ent->path, "/status");
    MR_ASSERT_OK(mr_srv_router_match(&rt, "POST", "/manifest", "", &oc, &ent, &loc));
    assert_int_equal(oc, MR_SRV_ROUTE_FOUND);
    assert_string_equal(ent->method, "POST");

    /* unknown method, unknown path, trailing slash, HEAD: all 405 */
    const char *miss[][2] = {{"PUT", "/status"}, {"HEAD", "/status"}, {"GET", "/"},
                             {"GET", "/status/"}, {"GET", "/api/v2/status"}, {"get", "/status"}};
    for (size_t i = 0; i < MR_ARRAY_LEN(miss); i++) {
        MR_ASSERT_OK(mr_srv_router_match(&rt, miss[i][0], miss[i][1], "", &oc, &ent, &loc));
        assert_int_equal(oc, MR_SRV_ROUTE_NO_MATCH);
        assert_null(ent);
    }

    /* non-canonical paths redirect, keeping the query */
    MR_ASSERT_OK(mr_srv_router_match(&rt, "GET", "//status", "", &oc, &ent, &loc));
    assert_int_equal(oc, MR_SRV_ROUTE_REDIRECT);
    assert_string_equal(bufstr(&loc), "/status");
    mr_buf_reset(&loc);
    MR_ASSERT_OK(mr_srv_router_match(&rt, "POST", "/a/../manifest", "s=1&s=2", &oc, &ent, &loc));
    assert_int_equal(oc, MR_SRV_ROUTE_REDIRECT);
    assert_string_equal(bufstr(&loc), "/manifest?s=1&s=2");
    mr_buf_reset(&loc);
    MR_ASSERT_OK(mr_srv_router_match(&rt, "GET", "//a b/\"x\"", "", &oc, &ent, &loc));
    assert_int_equal(oc, MR_SRV_ROUTE_REDIRECT);
    assert_string_equal(bufstr(&loc), "/a%20b/%22x%22");
    mr_buf_free(&loc);
    mr_srv_router_free(&rt);
}

static void test_path_unescape(void **state)
{
    (void)state;
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_srv_path_unescape("/stat%75s", 9, &b));
    assert_string_equal(bufstr(&b), "/status");
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_srv_path_unescape("/a+b", 4, &b));
    assert_string_equal(bufstr(&b), "/a+b");
    mr_buf_reset(&b);
    MR_ASSERT_FAIL(mr_srv_path_unescape("/%zz", 4, &b), MR_ERR_PROTOCOL, "escape");
    mr_buf_reset(&b);
    MR_ASSERT_FAIL(mr_srv_path_unescape("/%2", 3, &b), MR_ERR_PROTOCOL, "escape");
    mr_buf_reset(&b);
    MR_ASSERT_FAIL(mr_srv_path_unescape("/%00", 4, &b), MR_ERR_PROTOCOL, "NUL");
    mr_buf_free(&b);
}

/* ---- query strings ---- */

static void test_query(void **state)
{
    (void)state;
    mr_srv_strlist l;
    MR_ASSERT_OK(mr_srv_query_values("s=a&s=b&t=c", "s", true, &l));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "a");
    assert_string_equal(l.v[1], "b");
    mr_srv_strlist_free(&l);

    MR_ASSERT_OK(mr_srv_query_values("s=a+b%20c&s&s=&&x%3D=1", "s", true, &l));
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0], "a b c");
    assert_string_equal(l.v[1], "");
    assert_string_equal(l.v[2], "");
    mr_srv_strlist_free(&l);

    MR_ASSERT_OK(mr_srv_query_values("x%3D=1", "x=", true, &l));
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "1");
    mr_srv_strlist_free(&l);

    MR_ASSERT_OK(mr_srv_query_values("", "s", true, &l));
    assert_int_equal(l.n, 0);
    mr_srv_strlist_free(&l);
    MR_ASSERT_OK(mr_srv_query_values(NULL, "s", true, &l));
    assert_int_equal(l.n, 0);

    /* malformed pairs: skipped by default, fatal in strict mode with Go's texts */
    MR_ASSERT_OK(mr_srv_query_values("s=%zz&s=ok&s=a;b", "s", false, &l));
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "ok");
    mr_srv_strlist_free(&l);
    MR_ASSERT_FAIL(mr_srv_query_values("s=%zz&s=ok", "s", true, &l), MR_ERR_USAGE,
                   "invalid URL escape \"%zz\"");
    MR_ASSERT_FAIL(mr_srv_query_values("s=%4", "s", true, &l), MR_ERR_USAGE,
                   "invalid URL escape \"%4\"");
    MR_ASSERT_FAIL(mr_srv_query_values("s=a;b", "s", true, &l), MR_ERR_USAGE,
                   "invalid semicolon separator in query");
}

/* ---- JSON and JSend ---- */

static void check_quote(const char *in, size_t n, const char *want)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_json_quote(&b, in, n));
    if (strcmp(bufstr(&b), want) != 0)
        fail_msg("quote: got %s want %s", bufstr(&b), want);
    mr_buf_free(&b);
}

static void test_json_quote(void **state)
{
    (void)state;
    check_quote("plain", 5, "\"plain\"");
    check_quote("<a & b>", 7, "\"\\u003ca \\u0026 b\\u003e\"");
    check_quote("q\"\\/", 4, "\"q\\\"\\\\/\"");
    check_quote("\n\r\t\b\f\x01\x1f", 7, "\"\\n\\r\\t\\b\\f\\u0001\\u001f\"");
    check_quote("\xe2\x80\xa8\xe2\x80\xa9", 6, "\"\\u2028\\u2029\"");
    check_quote("\xc3\xbc\xf0\x9f\x98\x80", 6, "\"\xc3\xbc\xf0\x9f\x98\x80\"");
    /* invalid UTF-8: lone continuation, overlong, surrogate, truncated */
    check_quote("a\x80z", 3, "\"a\\ufffdz\"");
    check_quote("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
    check_quote("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
    check_quote("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");
    check_quote("nul\0x", 5, "\"nul\\u0000x\"");
}

static void test_jsend(void **state)
{
    (void)state;
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_srv_jsend_success(&b, NULL));
    assert_string_equal(bufstr(&b), "{\"status\":\"success\",\"data\":null}\n");
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_srv_jsend_success(&b, "{\"StatusCode\":2}"));
    assert_string_equal(bufstr(&b), "{\"status\":\"success\",\"data\":{\"StatusCode\":2}}\n");
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_srv_jsend_error(&b, NULL));
    assert_string_equal(bufstr(&b), "{\"status\":\"error\",\"data\":null}\n");
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_srv_jsend_error(&b, ""));
    assert_string_equal(bufstr(&b), "{\"status\":\"error\",\"data\":null}\n");
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_srv_jsend_error(&b, "unauthorized user"));
    assert_string_equal(bufstr(&b),
                        "{\"status\":\"error\",\"data\":null,\"message\":\"unauthorized user\"}\n");
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_srv_jsend_fail(&b, "{\"sgxQuote\":\"x\"}", "bad <request>"));
    assert_string_equal(bufstr(&b), "{\"status\":\"fail\",\"data\":{\"sgxQuote\":\"x\"},"
                                    "\"message\":\"bad \\u003crequest\\u003e\"}\n");
    mr_buf_reset(&b);
    MR_ASSERT_OK(mr_srv_jsend_fail(&b, NULL, "invalid query"));
    assert_string_equal(bufstr(&b),
                        "{\"status\":\"fail\",\"data\":null,\"message\":\"invalid query\"}\n");
    mr_buf_free(&b);
}

/* ---- HTTP/1 heads and chunked bodies ---- */

static MR_RESULT parse(const char *text, mr_h1_head *h, int *status)
{
    size_t scanned = 0, len = 0;
    mr_slice in = MR_SLICE(text, strlen(text));
    MR_GUARD(mr_h1_find_head_end(in, 65536, &scanned, &len));
    MR_ENSURE(len > 0, MR_ERR_PROTOCOL, "incomplete");
    return mr_h1_parse_head(MR_SLICE(text, len), 65536, h, status);
}

static void test_h1_head(void **state)
{
    (void)state;
    mr_h1_head h;
    int st = 0;
    MR_ASSERT_OK(parse("POST /secrets?s=a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       "X-A:  v  \r\nExpect: 100-continue\r\n\r\nhello", &h, &st));
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.target, "/secrets?s=a");
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.content_length, 5);
    assert_true(h.keep_alive);
    assert_true(h.expect_continue);
    assert_string_equal(mr_srv_hdrs_get(&h.hdrs, "x-a"), "v");
    assert_string_equal(mr_srv_hdrs_get(&h.hdrs, "HOST"), "x");
    mr_h1_head_free(&h);

    /* bare LF line endings, HTTP/1.0 without Host, chunked */
    MR_ASSERT_OK(parse("GET / HTTP/1.0\nTransfer-Encoding: chunked\n\n", &h, &st));
    assert_false(h.keep_alive);
    assert_true(h.chunked);
    mr_h1_head_free(&h);
    MR_ASSERT_OK(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n", &h,
                       &st));
    assert_false(h.keep_alive);
    mr_h1_head_free(&h);

    struct {
        const char *text;
        int status;
    } bad[] = {
        {"GET / HTTP/1.1\r\n\r\n", 400},                              /* no Host */
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
        {"GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417},
        {"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(bad); i++) {
        mr_error_clear();
        st = 0;
        if (mr_ok(parse(bad[i].text, &h, &st)))
            fail_msg("accepted bad head %zu", i);
        if (st != bad[i].status)
            fail_msg("head %zu: status %d want %d (%s)", i, st, bad[i].status,
                     mr_error_get()->msg);
        mr_h1_head_free(&h);
    }
}

static void test_h1_head_limits(void **state)
{
    (void)state;
    size_t scanned = 0, len = 0;
    char big[300];
    memset(big, 'a', sizeof(big));
    /* incomplete heads are searched incrementally */
    const char *t = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t n = 1; n <= strlen(t); n++) {
        MR_ASSERT_OK(mr_h1_find_head_end(MR_SLICE(t, n), 1024, &scanned, &len));
        assert_int_equal(len, n == strlen(t) ? n : 0);
    }
    scanned = 0;
    MR_ASSERT_FAIL(mr_h1_find_head_end(MR_SLICE(big, sizeof(big)), 256, &scanned, &len),
                   MR_ERR_USAGE, "too large");
    /* too many header fields */
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_buf_append_str(&b, "GET / HTTP/1.1\r\nHost: a\r\n"));
    for (int i = 0; i < 200; i++)
        MR_ASSERT_OK(mr_buf_printf(&b, "X-%d: y\r\n", i));
    MR_ASSERT_OK(mr_buf_append_str(&b, "\r\n"));
    mr_h1_head h;
    int st = 0;
    MR_ASSERT_FAIL(mr_h1_parse_head(mr_buf_slice(&b), 65536, &h, &st), MR_ERR_USAGE,
                   "too many header fields");
    assert_int_equal(st, 431);
    mr_h1_head_free(&h);
    mr_buf_free(&b);
}

static void test_chunked(void **state)
{
    (void)state;
    const char *wire = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    /* whole, then byte by byte */
    for (int mode = 0; mode < 2; mode++) {
        mr_h1_chunked c = {0};
        mr_buf body;
        mr_buf_init(&body, 0, 0);
        size_t off = 0, total = strlen(wire);
        bool done = false;
        while (!done && off < total) {
            size_t n = mode == 0 ? total - off : 1;
            size_t used = 0;
            MR_ASSERT_OK(mr_h1_chunked_feed(&c, MR_SLICE(wire + off, n), &body, &used, &done));
            off += used;
        }
        assert_true(done);
        assert_string_equal(wire + off, "NEXT");
        assert_string_equal(bufstr(&body), "hello world");
        mr_buf_free(&body);
    }
    const char *bad[] = {"x\r\n", "5\r\nhelloXX", "\r\n", "fffffffffffffffffff\r\n",
                         "0\r\n\rX"};
    for (size_t i = 0; i < MR_ARRAY_LEN(bad); i++) {
        mr_h1_chunked c = {0};
        mr_buf body;
        size_t used = 0;
        bool done = false;
        mr_buf_init(&body, 0, 0);
        if (mr_ok(mr_h1_chunked_feed(&c, MR_SLICE(bad[i], strlen(bad[i])), &body, &used, &done)))
            fail_msg("accepted bad chunked body %zu", i);
        mr_buf_free(&body);
    }
    /* the body limit holds for chunked bodies */
    mr_h1_chunked c = {0};
    mr_buf body;
    size_t used = 0;
    bool done = false;
    mr_buf_init(&body, 4, 0);
    MR_ASSERT_FAIL(mr_h1_chunked_feed(&c, MR_SLICE_STR("5\r\nhello\r\n0\r\n\r\n"), &body, &used,
                                      &done),
                   MR_ERR_USAGE, "too large");
    mr_buf_free(&body);
}

/* ---- metrics ---- */

static void test_metrics_render(void **state)
{
    (void)state;
    mr_srv_http_metrics *hm = mr_calloc(1, sizeof(*hm));
    mr_srv_grpc_metrics *gm = mr_calloc(1, sizeof(*gm));
    assert_non_null(hm);
    assert_non_null(gm);
    snprintf(hm->path, sizeof(hm->path), "/status");
    snprintf(gm->service, sizeof(gm->service), "rpc.Marble");
    snprintf(gm->method, sizeof(gm->method), "Activate");
    mr_srv_http_observe(hm, "GET", 200, 0.001, 50, 1500);
    mr_srv_http_observe(hm, "GET", 200, 0.2, 50, 20000);
    mr_srv_http_observe(hm, "POST", 405, 7.0, 5000, 40);
    atomic_fetch_add(&gm->started, 2);
    mr_srv_grpc_observe(gm, 0, true, true);
    mr_srv_grpc_observe(gm, 7, true, false);
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    MR_ASSERT_OK(mr_srv_render_grpc(&gm, 1, &b));
    MR_ASSERT_OK(mr_srv_render_http(&hm, 1, &b));
    MR_ASSERT_OK(mr_srv_prom_family(&b, "coordinator_state", "gauge", "State."));
    MR_ASSERT_OK(mr_srv_prom_sample(&b, "coordinator_state", 2, MR_SRV_PROM_END));
    MR_ASSERT_OK(mr_srv_prom_sample(&b, "x_info", 0, "version", "1.9\"\\\n", MR_SRV_PROM_END));
    const char *text = bufstr(&b);
    const char *want[] = {
        "# TYPE grpc_server_started_total counter\n",
        "grpc_server_started_total{grpc_method=\"Activate\",grpc_service=\"rpc.Marble\","
        "grpc_type=\"unary\"} 2\n",
        "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Activate\","
        "grpc_service=\"rpc.Marble\",grpc_type=\"unary\"} 1\n",
        "grpc_server_handled_total{grpc_code=\"PermissionDenied\",grpc_method=\"Activate\","
        "grpc_service=\"rpc.Marble\",grpc_type=\"unary\"} 1\n",
        "grpc_server_handled_total{grpc_code=\"Unauthenticated\",grpc_method=\"Activate\","
        "grpc_service=\"rpc.Marble\",grpc_type=\"unary\"} 0\n",
        "grpc_server_msg_received_total{grpc_method=\"Activate\",grpc_service=\"rpc.Marble\","
        "grpc_type=\"unary\"} 2\n",
        "grpc_server_msg_sent_total{grpc_method=\"Activate\",grpc_service=\"rpc.Marble\","
        "grpc_type=\"unary\"} 1\n",
        "server_client_api_http_request_total{code=\"200\",method=\"get\",path=\"/status\"} 2\n",
        "server_client_api_http_request_total{code=\"405\",method=\"post\",path=\"/status\"} 1\n",
        "# TYPE server_client_api_http_request_duration_histogram_seconds histogram\n",
        "server_client_api_http_request_duration_histogram_seconds_bucket{method=\"get\","
        "path=\"/status\",le=\"0.005\"} 1\n",
        "server_client_api_http_request_duration_histogram_seconds_bucket{method=\"get\","
        "path=\"/status\",le=\"0.5\"} 2\n",
        "server_client_api_http_request_duration_histogram_seconds_bucket{method=\"post\","
        "path=\"/status\",le=\"5\"} 0\n",
        "server_client_api_http_request_duration_histogram_seconds_bucket{method=\"post\","
        "path=\"/status\",le=\"+Inf\"} 1\n",
        "server_client_api_http_request_duration_histogram_seconds_count{method=\"get\","
        "path=\"/status\"} 2\n",
        "server_client_api_http_request_duration_histogram_seconds_sum{method=\"post\","
        "path=\"/status\"} 7\n",
        "server_client_api_http_request_size_histogram_bytes_bucket{path=\"/status\","
        "le=\"100\"} 2\n",
        "server_client_api_http_response_size_histogram_bytes_bucket{path=\"/status\","
        "le=\"10000\"} 2\n",
        "server_client_api_http_response_size_histogram_bytes_count{path=\"/status\"} 3\n",
        "server_client_api_http_in_flight_requests{path=\"/status\"} 0\n",
        "coordinator_state 2\n",
        "x_info{version=\"1.9\\\"\\\\\\n\"} 0\n",
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(want); i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("metrics lack: %s\n---\n%s", want[i], text);
    assert_null(strstr(text, "method=\"put\""));
    mr_buf_free(&b);
    mr_free(hm);
    mr_free(gm);
}

/* ---- in-process connections (no sockets) ---- */

static void echo_inline(mr_srv_request *r, void *arg)
{
    (void)arg;
    MR_ASSERT_FAIL(mr_srv_resp_header(r, "x-bad", "a\r\nSet-Cookie: x"), MR_ERR_INTERNAL,
                   "invalid response header value");
    MR_ASSERT_FAIL(mr_srv_resp_header(r, "x bad", "v"), MR_ERR_INTERNAL, "header name");
    MR_ASSERT_OK(mr_srv_resp_header(r, "X-Path", mr_srv_req_path(r)));
    mr_srv_reply_success(r, NULL);
}

static void twice_inline(mr_srv_request *r, void *arg)
{
    (void)arg;
    mr_srv_reply_success(r, "1");
    mr_srv_reply_error(r, 500, "second answer"); /* a bug in a handler: ignored */
    MR_ASSERT_FAIL(mr_srv_resp_header(r, "x-late", "v"), MR_ERR_INTERNAL, "already completed");
}

static void grpc_inline(mr_srv_request *r, void *arg)
{
    (void)arg;
    mr_slice b = mr_srv_req_body(r);
    if (b.len == 1 && b.ptr[0] == 'x')
        mr_srv_grpc_fail(r, 7, "no: 100%");
    else
        mr_srv_grpc_reply(r, b);
}

static char *drive(mr_srv *s, int listener, mr_srv_proto proto, const void *in, size_t n,
                   size_t *out_len)
{
    mr_srv_conn *c = mr_srv_conn_new_virtual(s, listener, proto);
    assert_non_null(c);
    assert_int_equal(evbuffer_add(c->in, in, n), 0);
    mr_srv_conn_process(c);
    for (int i = 0; i < 5; i++) /* completions come back through the loop */
        event_base_loop(s->base, EVLOOP_NONBLOCK);
    *out_len = evbuffer_get_length(c->out);
    char *out = mr_calloc(1, *out_len + 1);
    assert_non_null(out);
    assert_int_equal(evbuffer_remove(c->out, out, *out_len), (int)*out_len);
    mr_srv_conn_free_virtual(c);
    event_base_loop(s->base, EVLOOP_NONBLOCK);
    return out;
}

static void test_virtual_h1(void **state)
{
    (void)state;
    mr_srv *s = NULL;
    mr_srv_limits lim = {.max_body_bytes = 16, .max_header_bytes = 512};
    int cl = -1;
    size_t n = 0;
    MR_ASSERT_OK(mr_srv_new(&lim, 1, &s));
    MR_ASSERT_OK(mr_srv_listen_virtual(s, MR_SRV_LISTENER_CLIENT, &cl));
    MR_ASSERT_OK(mr_srv_route(s, cl, "GET", "/status", MR_SRV_ROUTE_INLINE, echo_inline, NULL));
    MR_ASSERT_OK(mr_srv_route(s, cl, "POST", "/status", 0, echo_inline, NULL));
    MR_ASSERT_OK(mr_srv_route(s, cl, "GET", "/twice", MR_SRV_ROUTE_INLINE, twice_inline, NULL));

    const char *two = "GET /stat%75s HTTP/1.1\r\nHost: a\r\n\r\n"
                      "POST /status HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    char *out = drive(s, cl, MR_SRV_PROTO_HTTP1, two, strlen(two), &n);
    /* the second (worker) answer may still be on its way; the first must be complete */
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\nX-Path: /status\r\n"
                                "Content-Type: application/json\r\n"));
    assert_non_null(strstr(out, "\r\n\r\n{\"status\":\"success\",\"data\":null}\n"));
    mr_free(out);

    struct {
        const char *req;
        const char *want;
    } cases[] = {
        {"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n"},
        {"DELETE /status HTTP/1.1\r\nHost: a\r\n\r\n", "{\"status\":\"error\",\"data\":null}\n"},
        {"GET //status?s=1 HTTP/1.1\r\nHost: a\r\n\r\n", "Location: /status?s=1\r\n"},
        {"POST /status HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n", "HTTP/1.1 413 "},
        {"POST /status HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         "11\r\n01234567890123456\r\n0\r\n\r\n", "HTTP/1.1 413 "},
        {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
        {"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 "},
        {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", "HTTP/1.1 505 "},
        {"HEAD /status HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 405 "},
        {"GET /status HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
         "Content-Length: 33\r\nConnection: keep-alive\r\n\r\n"},
        {"GET /status HTTP/1.0\r\n\r\n", "Connection: close\r\n\r\n"},
        {"GET /twice HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
         "\r\n\r\n{\"status\":\"success\",\"data\":1}\n"},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(cases); i++) {
        out = drive(s, cl, MR_SRV_PROTO_HTTP1, cases[i].req, strlen(cases[i].req), &n);
        if (strstr(out, cases[i].want) == NULL)
            fail_msg("case %zu: want %s in:\n%s", i, cases[i].want, out);
        mr_free(out);
    }
    /* a head larger than the limit */
    char big[700];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    out = drive(s, cl, MR_SRV_PROTO_HTTP1, big, sizeof(big), &n);
    assert_non_null(strstr(out, "HTTP/1.1 431 "));
    mr_free(out);
    mr_srv_free(s);
}

static void test_virtual_h2_grpc(void **state)
{
    (void)state;
    mr_srv *s = NULL;
    int me = -1;
    size_t n = 0;
    MR_ASSERT_OK(mr_srv_new(NULL, 1, &s));
    MR_ASSERT_OK(mr_srv_listen_virtual(s, MR_SRV_LISTENER_MESH, &me));
    MR_ASSERT_OK(mr_srv_grpc_method(s, me, "rpc.Marble", "Activate", MR_SRV_ROUTE_INLINE,
                                    grpc_inline, NULL));
    /* a client's first flight, built by hand: preface, SETTINGS, HEADERS, DATA */
    static const uint8_t hdr_block[] =
        "\x00\x07:method\x04POST\x00\x07:scheme\x05https\x00\x05:path\x14/rpc.Marble/Activate"
        "\x00\x0a:authority\x01" "a\x00\x0c" "content-type\x10" "application/grpc";
    mr_buf in;
    mr_buf_init(&in, 0, 0);
    size_t hl = sizeof(hdr_block) - 1;
    MR_ASSERT_OK(mr_buf_append_str(&in, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    MR_ASSERT_OK(mr_buf_append(&in, "\0\0\0\4\0\0\0\0\0", 9));
    uint8_t fh[9] = {0, 0, (uint8_t)hl, 1, 4, 0, 0, 0, 1};
    MR_ASSERT_OK(mr_buf_append(&in, fh, 9));
    MR_ASSERT_OK(mr_buf_append(&in, hdr_block, hl));
    MR_ASSERT_OK(mr_buf_append(&in, "\0\0\6\0\1\0\0\0\1" "\0\0\0\0\1x", 15));
    char *out = drive(s, me, MR_SRV_PROTO_HTTP2, in.data, in.len, &n);
    /* decode the server's HEADERS blocks: a trailers-only answer with status 7 */
    nghttp2_hd_inflater *inf = NULL;
    assert_int_equal(nghttp2_hd_inflate_new(&inf), 0);
    mr_cursor cur;
    mr_cursor_init(&cur, out, n);
    bool saw_status = false, saw_msg = false;
    while (mr_cursor_remaining(&cur) >= 9) {
        uint8_t h[9];
        MR_ASSERT_OK(mr_cursor_read(&cur, h, 9));
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        mr_slice payload;
        MR_ASSERT_OK(mr_cursor_view(&cur, len, &payload));
        if (h[3] != 1)
            continue;
        const uint8_t *p = payload.ptr;
        size_t left = payload.len;
        for (;;) {
            nghttp2_nv nv;
            int fl = 0;
            ssize_t used = nghttp2_hd_inflate_hd2(inf, &nv, &fl, p, left, 1);
            assert_true(used >= 0);
            p += used;
            left -= (size_t)used;
            if (fl & NGHTTP2_HD_INFLATE_EMIT) {
                if (nv.namelen == 11 && memcmp(nv.name, "grpc-status", 11) == 0)
                    saw_status = nv.valuelen == 1 && nv.value[0] == '7';
                if (nv.namelen == 12 && memcmp(nv.name, "grpc-message", 12) == 0)
                    saw_msg = nv.valuelen == 10 && memcmp(nv.value, "no: 100%25", 10) == 0;
            }
            if (fl & NGHTTP2_HD_INFLATE_FINAL) {
                nghttp2_hd_inflate_end_headers(inf);
                break;
            }
            if (used == 0 && left == 0)
                break;
        }
    }
    nghttp2_hd_inflate_del(inf);
    assert_true(saw_status);
    assert_true(saw_msg);
    mr_free(out);
    mr_buf_free(&in);
    mr_srv_free(s);
}

static sem_t gate;

static void gated(mr_srv_request *r, void *arg)
{
    (void)arg;
    sem_wait(&gate);
    mr_srv_reply_success(r, "\"late\"");
}

static void test_overload(void **state)
{
    (void)state;
    mr_srv *s = NULL;
    mr_srv_limits lim = {.max_inflight = 1};
    int cl = -1;
    const char *req = "GET /gated HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(sem_init(&gate, 0, 0), 0);
    MR_ASSERT_OK(mr_srv_new(&lim, 1, &s));
    MR_ASSERT_OK(mr_srv_listen_virtual(s, MR_SRV_LISTENER_CLIENT, &cl));
    MR_ASSERT_OK(mr_srv_route(s, cl, "GET", "/gated", 0, gated, NULL));
    mr_srv_conn *c1 = mr_srv_conn_new_virtual(s, cl, MR_SRV_PROTO_HTTP1);
    mr_srv_conn *c2 = mr_srv_conn_new_virtual(s, cl, MR_SRV_PROTO_HTTP1);
    assert_non_null(c1);
    assert_non_null(c2);
    evbuffer_add(c1->in, req, strlen(req));
    mr_srv_conn_process(c1); /* held by the worker */
    evbuffer_add(c2->in, req, strlen(req));
    mr_srv_conn_process(c2); /* refused */
    event_base_loop(s->base, EVLOOP_NONBLOCK);
    char buf[512] = {0};
    evbuffer_copyout(c2->out, buf, sizeof(buf) - 1);
    assert_non_null(strstr(buf, "HTTP/1.1 503 "));
    assert_non_null(strstr(buf, "server overloaded"));
    assert_int_equal(evbuffer_get_length(c1->out), 0);
    sem_post(&gate);
    for (int i = 0; i < 200 && evbuffer_get_length(c1->out) == 0; i++) {
        usleep(10000);
        event_base_loop(s->base, EVLOOP_NONBLOCK);
    }
    memset(buf, 0, sizeof(buf));
    evbuffer_copyout(c1->out, buf, sizeof(buf) - 1);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    mr_srv_conn_free_virtual(c1);
    mr_srv_conn_free_virtual(c2);
    mr_srv_free(s);
    sem_destroy(&gate);
}

/* ---- allocation failures ---- */

static MR_RESULT op_query(void *ctx)
{
    mr_srv_strlist l = {0};
    (void)ctx;
    MR_GUARD(mr_srv_query_values("s=a&s=b%20c&t=x&s=", "s", false, &l));
    bool ok = l.n == 3 && strcmp(l.v[0], "a") == 0 && strcmp(l.v[1], "b c") == 0 &&
              strcmp(l.v[2], "") == 0;
    mr_srv_strlist_free(&l);
    MR_ENSURE(ok, MR_ERR_USAGE, "wrong query values");
    return MR_SUCCESS;
}

static MR_RESULT op_jsend(void *ctx)
{
    static const char want[] = "{\"status\":\"fail\",\"data\":{},\"message\":\"m\\u003c\\u003e\"}\n";
    mr_result res = MR_FAILURE;
    mr_buf b;
    (void)ctx;
    mr_buf_init(&b, 0, 0);
    MR_GUARD_OUT(mr_srv_jsend_fail(&b, "{}", "m<>"));
    MR_GUARD_OUT(mr_buf_nul_terminate(&b));
    MR_ENSURE_OUT(strcmp((const char *)b.data, want) == 0, MR_ERR_USAGE, "wrong JSend text");
    res = MR_SUCCESS;
out:
    mr_buf_free(&b);
    return res;
}

static MR_RESULT op_router(void *ctx)
{
    mr_result res = MR_FAILURE;
    mr_srv_router rt = {0};
    (void)ctx;
    MR_GUARD_OUT(mr_srv_router_add(&rt, "GET", "/a", 0, false, noop_handler, NULL));
    MR_GUARD_OUT(mr_srv_router_add(&rt, "GET", "/b", 0, false, noop_handler, NULL));
    MR_ENSURE_OUT(rt.n == 2, MR_ERR_USAGE, "wrong route count");
    res = MR_SUCCESS;
out:
    mr_srv_router_free(&rt);
    return res;
}

static MR_RESULT op_h1_head(void *ctx)
{
    mr_result res = MR_FAILURE;
    mr_h1_head h;
    int st = 0;
    (void)ctx;
    memset(&h, 0, sizeof(h));
    MR_GUARD_OUT(parse("GET /x HTTP/1.1\r\nHost: a\r\nA: b\r\n\r\n", &h, &st));
    MR_ENSURE_OUT(strcmp(h.method, "GET") == 0 && strcmp(h.target, "/x") == 0, MR_ERR_USAGE,
                  "wrong head");
    res = MR_SUCCESS;
out:
    mr_h1_head_free(&h);
    return res;
}

/* Every allocation of each operation fails once: a clean "out of memory" failure (internal
 * category) or success, nothing leaked, and at least one failure per operation. */
static void test_alloc_failures(void **state)
{
    (void)state;
    assert_true(mr_test_alloc_sweep("query values", op_query, NULL) > 0);
    assert_true(mr_test_alloc_sweep("JSend fail", op_jsend, NULL) > 0);
    assert_true(mr_test_alloc_sweep("router", op_router, NULL) > 0);
    assert_true(mr_test_alloc_sweep("HTTP/1 head", op_h1_head, NULL) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_clean),     cmocka_unit_test(test_router),
        cmocka_unit_test(test_path_unescape),  cmocka_unit_test(test_query),
        cmocka_unit_test(test_json_quote),     cmocka_unit_test(test_jsend),
        cmocka_unit_test(test_h1_head),        cmocka_unit_test(test_h1_head_limits),
        cmocka_unit_test(test_chunked),        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_virtual_h1),     cmocka_unit_test(test_virtual_h2_grpc),
        cmocka_unit_test(test_overload),       cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
