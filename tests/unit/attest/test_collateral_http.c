/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collateral fetcher (src/attest/collateral_http.c) against real local servers started by
 * the test (https_fixture.py: a test CA, TLS with a good and a wrong-host certificate, plain
 * HTTP): verification, host names, falling back to the next address, limits, timeouts,
 * statuses, headers, concurrency.
 */
#include "mr_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/collateral_http.c" /* the static address-list entry point */
#include "common/alloc.h"

extern char **environ;

static pid_t fixture_pid;
static char work_dir[256];
static char ca_path[300];
static int port_tls, port_wrong, port_plain;

static int parse_port(const char **p)
{
    char *end = NULL;
    long v = strtol(*p, &end, 10);
    if (end == *p || v <= 0 || v > 65535)
        return 0;
    *p = end + (*end == '\n');
    return (int)v;
}

static int start_fixture(void **state)
{
    const char *src_dir = getenv("MR_SOURCE_DIR");
    char script[1024], port_file[512], ports[64] = {0};
    FILE *pf = NULL;
    const char *p = ports;
    (void)state;

    if (src_dir == NULL || access("/usr/bin/python3", X_OK) != 0 ||
        access("/usr/bin/openssl", X_OK) != 0) {
        print_message("  skipped: MR_SOURCE_DIR, python3 or openssl missing\n");
        return 0;
    }
    snprintf(work_dir, sizeof(work_dir), "/tmp/mr-http-test-XXXXXX");
    if (mkdtemp(work_dir) == NULL)
        return -1;
    snprintf(script, sizeof(script), "%s/tests/unit/attest/https_fixture.py", src_dir);
    snprintf(port_file, sizeof(port_file), "%s/ports", work_dir);
    snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", work_dir);
    char *argv[] = {"/usr/bin/python3", script, work_dir, port_file, NULL};
    if (posix_spawn(&fixture_pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    for (int i = 0; i < 400 && pf == NULL; i++) {
        pf = fopen(port_file, "r");
        if (pf == NULL)
            usleep(50 * 1000);
    }
    if (pf == NULL)
        return -1;
    size_t n = fread(ports, 1, sizeof(ports) - 1, pf);
    fclose(pf);
    ports[n] = '\0';
    port_tls = parse_port(&p);
    port_wrong = parse_port(&p);
    port_plain = parse_port(&p);
    return port_tls != 0 && port_wrong != 0 && port_plain != 0 ? 0 : -1;
}

static int stop_fixture(void **state)
{
    char cmd[512];
    (void)state;
    if (fixture_pid > 0) {
        kill(fixture_pid, SIGTERM);
        waitpid(fixture_pid, NULL, 0);
    }
    if (work_dir[0] != '\0') {
        const char *names[] = {"ports", "ca.pem", "ca.key", "good.pem", "good.key", "wrong.pem",
                               "wrong.key"};
        for (size_t i = 0; i < MR_ARRAY_LEN(names); i++) {
            snprintf(cmd, sizeof(cmd), "%s/%s", work_dir, names[i]);
            unlink(cmd);
        }
        rmdir(work_dir);
    }
    return 0;
}

#define NEED_FIXTURE()                                                                        \
    do {                                                                                      \
        if (port_tls == 0) {                                                                  \
            print_message("  skipped: no fixture\n");                                         \
            return;                                                                           \
        }                                                                                     \
    } while (0)

/* Headers seen, "name=value\n" each. */
typedef struct seen {
    char text[4096];
    size_t len;
    bool fail;
} seen;

static mr_result record_header(void *arg, const char *name, const char *value)
{
    seen *s = arg;
    MR_ENSURE(!s->fail, MR_ERR_ATTESTATION, "header callback refuses %s", name);
    int n = snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s=%s\n", name, value);
    if (n > 0 && (size_t)n < sizeof(s->text) - s->len)
        s->len += (size_t)n;
    return MR_SUCCESS;
}

static mr_http_get_opts opts(bool verify, const char *ca, seen *s)
{
    mr_http_get_opts o = {.verify_tls = verify,
                          .ca_file = ca,
                          .timeout_ms = 10000,
                          .max_headers = 64 * 1024,
                          .max_body = 1 << 20,
                          .on_header = s != NULL ? record_header : NULL,
                          .arg = s};
    return o;
}

static MR_PRINTF(4, 5) mr_result get(const mr_http_get_opts *o, int *status, mr_buf *body,
                                     const char *fmt, ...)
{
    char url[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(url, sizeof(url), fmt, ap);
    va_end(ap);
    mr_buf_reset(body);
    return mr_http_get(o, url, status, body);
}

static void assert_body(const mr_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
}

static void test_https_verified(void **state)
{
    seen s = {0};
    mr_http_get_opts o = opts(true, ca_path, &s);
    mr_buf body;
    int status = 0;
    (void)state;
    NEED_FIXTURE();

    mr_buf_init(&body, 1 << 20, 0);
    /* an IP literal checked against the certificate's IP SAN */
    MR_ASSERT_OK(get(&o, &status, &body, "https://127.0.0.1:%d/ok", port_tls));
    assert_int_equal(status, 200);
    assert_body(&body, "hello collateral");
    /* raw (URL-encoded) values, in order, both of a repeated header */
    assert_non_null(strstr(s.text, "TCB-Info-Issuer-Chain=-----BEGIN%20CERTIFICATE-----%0AAB%2B%2F%3D"
                                   "%0A-----END%20CERTIFICATE-----%0A\n"));
    assert_non_null(strstr(s.text, "X-Two=first\nX-Two=second\n"));
    /* a DNS name: "localhost" may resolve to ::1 first, where nothing listens; the next
     * address is tried, and the name is checked against the DNS SAN */
    MR_ASSERT_OK(get(&o, &status, &body, "https://localhost:%d/ok?x=1#frag", port_tls));
    assert_int_equal(status, 200);
    assert_body(&body, "hello collateral");
    /* a header callback's failure ends the fetch with its error */
    s.fail = true;
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/ok", port_tls),
                   MR_ERR_ATTESTATION, "header callback refuses");
    mr_buf_free(&body);
}

static void test_https_refused(void **state)
{
    mr_http_get_opts o = opts(true, ca_path, NULL);
    mr_buf body;
    int status = 0;
    (void)state;
    NEED_FIXTURE();

    mr_buf_init(&body, 1 << 20, 0);
    /* a certificate of the trusted CA, but for another name */
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/ok", port_wrong), MR_ERR_IO,
                   "TLS: the server certificate was not accepted: hostname mismatch");
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://127.0.0.1:%d/ok", port_wrong), MR_ERR_IO,
                   "TLS: the server certificate was not accepted: IP address mismatch");
    /* the system store does not know the test CA */
    o.ca_file = NULL;
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/ok", port_tls), MR_ERR_IO,
                   "TLS: the server certificate was not accepted: unable to get local issuer");
    /* a CA file that is not there */
    o.ca_file = "/nonexistent/ca.pem";
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/ok", port_tls), MR_ERR_IO,
                   "cannot load the CA certificates /nonexistent/ca.pem");
    /* https to a plain HTTP server: a TLS error, not a retry of another address */
    o.ca_file = ca_path;
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://127.0.0.1:%d/ok", port_plain), MR_ERR_IO,
                   "TLS handshake with 127.0.0.1 port");
    /* without verification (a PCCS with a self-signed certificate), anything goes */
    o = opts(false, NULL, NULL);
    MR_ASSERT_OK(get(&o, &status, &body, "https://localhost:%d/ok", port_wrong));
    assert_int_equal(status, 200);
    assert_body(&body, "hello collateral");
    mr_buf_free(&body);
}

static void test_status_and_redirect(void **state)
{
    mr_http_get_opts o = opts(true, ca_path, NULL);
    mr_buf body;
    int status = 0;
    (void)state;
    NEED_FIXTURE();

    mr_buf_init(&body, 1 << 20, 0);
    /* a non-200 status is returned with its body; the caller decides */
    MR_ASSERT_OK(get(&o, &status, &body, "https://localhost:%d/status/404", port_tls));
    assert_int_equal(status, 404);
    assert_body(&body, "status 404");
    MR_ASSERT_OK(get(&o, &status, &body, "https://localhost:%d/status/503", port_tls));
    assert_int_equal(status, 503);
    /* redirects are not followed (libcurl's default, which the previous code kept) */
    MR_ASSERT_OK(get(&o, &status, &body, "https://localhost:%d/redirect", port_tls));
    assert_int_equal(status, 302);
    assert_int_equal(body.len, 0);
    /* plain HTTP, also a body delimited by the end of the connection */
    MR_ASSERT_OK(get(&o, &status, &body, "http://127.0.0.1:%d/ok", port_plain));
    assert_int_equal(status, 200);
    assert_body(&body, "hello collateral");
    MR_ASSERT_OK(get(&o, &status, &body, "http://localhost:%d/close/70000", port_plain));
    assert_int_equal(status, 200);
    assert_int_equal(body.len, 70000);
    MR_ASSERT_OK(get(&o, &status, &body, "http://127.0.0.1:%d/chunked/200000", port_plain));
    assert_int_equal(body.len, 200000);
    mr_buf_free(&body);
}

static void test_limits(void **state)
{
    mr_http_get_opts o = opts(true, ca_path, NULL);
    mr_buf body;
    int status = 0;
    (void)state;
    NEED_FIXTURE();

    mr_buf_init(&body, 1 << 20, 0);
    MR_ASSERT_OK(get(&o, &status, &body, "https://localhost:%d/big/1048576", port_tls));
    assert_int_equal(body.len, 1048576);
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/big/1048577", port_tls),
                   MR_ERR_IO, "response body larger than 1048576 bytes");
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/big/50000000", port_tls),
                   MR_ERR_IO, "response body larger than 1048576 bytes");
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/chunked/2000000", port_tls),
                   MR_ERR_IO, "response body larger than 1048576 bytes");
    MR_ASSERT_FAIL(get(&o, &status, &body, "http://127.0.0.1:%d/close/2000000", port_plain),
                   MR_ERR_IO, "response body larger than 1048576 bytes");
    MR_ASSERT_OK(get(&o, &status, &body, "https://localhost:%d/bighdr/30000", port_tls));
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/bighdr/70000", port_tls),
                   MR_ERR_IO, "headers are larger than 65536 bytes");
    /* a body buffer smaller than max_body fails the copy */
    mr_buf_free(&body);
    mr_buf_init(&body, 1000, 0);
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/big/2000", port_tls), MR_ERR_USAGE,
                   "too large");
    mr_buf_free(&body);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_timeouts(void **state)
{
    mr_http_get_opts o = opts(true, ca_path, NULL);
    mr_buf body;
    int status = 0;
    double t0 = 0;
    (void)state;
    NEED_FIXTURE();

    mr_buf_init(&body, 1 << 20, 0);
    o.timeout_ms = 5000;
    MR_ASSERT_OK(get(&o, &status, &body, "https://localhost:%d/slow/100", port_tls));
    assert_body(&body, "late");
    o.timeout_ms = 800;
    t0 = now_s();
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/slow/3000", port_tls), MR_ERR_IO,
                   "timed out after 800 ms");
    assert_true(now_s() - t0 < 2.5);
    t0 = now_s();
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://localhost:%d/stall", port_tls), MR_ERR_IO,
                   "timed out after 800 ms");
    assert_true(now_s() - t0 < 2.5);
    /* the per-connection (idle) timeout, shorter than the whole */
    o.timeout_ms = 5000;
    o.connect_timeout_ms = 500;
    t0 = now_s();
    MR_ASSERT_FAIL(get(&o, &status, &body, "http://127.0.0.1:%d/stall", port_plain), MR_ERR_IO,
                   "no data from 127.0.0.1 port");
    assert_true(now_s() - t0 < 2.5);
    mr_buf_free(&body);
}

static void test_connect_and_urls(void **state)
{
    mr_http_get_opts o = opts(true, ca_path, NULL);
    mr_buf body;
    int status = 0, fd = -1, port = 0;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    char want[64];
    (void)state;
    NEED_FIXTURE();

    /* a port nobody listens on */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    port = ntohs(sa.sin_port);
    close(fd);

    mr_buf_init(&body, 1 << 20, 0);
    snprintf(want, sizeof(want), "cannot connect to 127.0.0.1 port %d", port);
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://127.0.0.1:%d/ok", port), MR_ERR_IO, want);
    MR_ASSERT_FAIL(get(&o, &status, &body, "http://127.0.0.1:%d/ok", port), MR_ERR_IO, want);
    MR_ASSERT_FAIL(get(&o, &status, &body, "http://no-such-host.invalid:%d/", port), MR_ERR_IO,
                   "cannot resolve host no-such-host.invalid");
    MR_ASSERT_FAIL(get(&o, &status, &body, "ftp://127.0.0.1:%d/", port), MR_ERR_USAGE,
                   "only http:// and https://");
    MR_ASSERT_FAIL(get(&o, &status, &body, "https://:%d/", port), MR_ERR_USAGE, "");
    MR_ASSERT_FAIL(mr_http_get(&o, "http://127.0.0.1:99999/", &status, &body), MR_ERR_USAGE, "");
    MR_ASSERT_FAIL(mr_http_get(&o, "not a url", &status, &body), MR_ERR_USAGE, "malformed URL");
    /* user:password@ becomes HTTP Basic authorisation, both parts percent-decoded */
    MR_ASSERT_OK(get(&o, &status, &body, "http://us%%40er:p%%3Ass@127.0.0.1:%d/auth", port_plain));
    assert_body(&body, "Basic dXNAZXI6cDpzcw=="); /* base64("us@er:p:ss") */
    mr_buf_free(&body);
}

static void test_address_fallback(void **state)
{
    mr_http_get_opts o = opts(true, ca_path, NULL);
    mr_buf body;
    int status = 0;
    unsigned attempts = 0;
    char url[128];
    /* 127.0.0.2 is loopback too, but the fixture listens on 127.0.0.1 only */
    addr_list two = {.n = 2, .family = {AF_INET, AF_INET}, .text = {"127.0.0.2", "127.0.0.1"}};
    addr_list dead = {.n = 2, .family = {AF_INET, AF_INET}, .text = {"127.0.0.2", "127.0.0.3"}};
    addr_list same = {.n = 2, .family = {AF_INET, AF_INET}, .text = {"127.0.0.1", "127.0.0.1"}};
    (void)state;
    NEED_FIXTURE();

    mr_buf_init(&body, 1 << 20, 0);
    snprintf(url, sizeof(url), "https://localhost:%d/ok", port_tls);
    MR_ASSERT_OK(http_get(&o, url, &two, &status, &body, &attempts));
    assert_int_equal(attempts, 2);
    assert_int_equal(status, 200);
    assert_body(&body, "hello collateral");
    MR_ASSERT_FAIL(http_get(&o, url, &dead, &status, &body, &attempts), MR_ERR_IO,
                   "cannot connect to 127.0.0.3 port");
    assert_int_equal(attempts, 2);
    /* a TLS failure is final: the next address is not tried */
    snprintf(url, sizeof(url), "https://localhost:%d/ok", port_wrong);
    MR_ASSERT_FAIL(http_get(&o, url, &same, &status, &body, &attempts), MR_ERR_IO,
                   "hostname mismatch");
    assert_int_equal(attempts, 1);
    /* so is an HTTP-level one */
    snprintf(url, sizeof(url), "http://localhost:%d/big/2000000", port_plain);
    MR_ASSERT_FAIL(http_get(&o, url, &same, &status, &body, &attempts), MR_ERR_IO,
                   "response body larger than");
    assert_int_equal(attempts, 1);
    mr_buf_free(&body);
}

typedef struct worker {
    int failures;
} worker;

static void *fetch_many(void *arg)
{
    worker *w = arg;
    mr_http_get_opts o = opts(true, ca_path, NULL);
    mr_buf body;
    int status = 0;
    mr_buf_init(&body, 1 << 20, 0);
    for (int i = 0; i < 6; i++) {
        bool tls = i % 3 != 2;
        if (!mr_ok(get(&o, &status, &body, tls ? "https://localhost:%d/big/100000" : "http://localhost:%d/ok", tls ? port_tls : port_plain)) ||
            status != 200 || body.len != (tls ? 100000u : 16u))
            w->failures++;
    }
    mr_buf_free(&body);
    return NULL;
}

static void test_concurrent(void **state)
{
    pthread_t th[6];
    worker w[6];
    (void)state;
    NEED_FIXTURE();

    for (size_t i = 0; i < MR_ARRAY_LEN(th); i++) {
        w[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, fetch_many, &w[i]), 0);
    }
    for (size_t i = 0; i < MR_ARRAY_LEN(th); i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
}

static void test_alloc_failures(void **state)
{
    mr_http_get_opts o = opts(true, ca_path, NULL);
    mr_buf body;
    int status = 0;
    bool done = false;
    (void)state;
    NEED_FIXTURE();

    mr_buf_init(&body, 1 << 20, 0);
    for (long n = 0; n < 64 && !done; n++) {
        mr_buf_free(&body);
        mr_buf_init(&body, 1 << 20, 0);
        mr_alloc_fail_after(n);
        mr_result r = get(&o, &status, &body, "https://localhost:%d/big/300000", port_tls);
        mr_alloc_fail_reset();
        if (mr_ok(r)) {
            assert_int_equal(body.len, 300000);
            done = true;
        } else {
            assert_int_equal(mr_error_get()->cat, MR_ERR_INTERNAL);
        }
    }
    assert_true(done);
    mr_buf_free(&body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_verified), cmocka_unit_test(test_https_refused),
        cmocka_unit_test(test_status_and_redirect), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_timeouts), cmocka_unit_test(test_connect_and_urls),
        cmocka_unit_test(test_address_fallback),
        cmocka_unit_test(test_concurrent), cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, start_fixture, stop_fixture);
}
