/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mr-server-echo: a test daemon for the network layer with echo handlers (no business
 * logic). Prints one JSON line with the bound ports on stdout once it is listening:
 *   {"client":<port>,"mesh":<port>,"metrics":<port>}
 * POST /rotate switches the TLS listeners to the second certificate (--cert2/--key2), to show
 * that the certificate provider is asked on every handshake.
 */
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/alloc.h"
#include "common/text.h"
#include "common/codec.h"
#include "common/log.h"
#include "coordinator/server/server.h"
#include "proto/coordinator.pb-c.h"

typedef struct echo_cert {
    X509 *cert[2];
    EVP_PKEY *key[2];
    atomic_uint current; /* which pair new handshakes get (POST /rotate switches) */
    atomic_ulong handshakes;
} echo_cert;

static mr_srv *g_srv;

static MR_RESULT provide_cert(void *arg, X509 **cert, EVP_PKEY **key)
{
    echo_cert *ec = arg;
    unsigned i = atomic_load(&ec->current);
    atomic_fetch_add(&ec->handshakes, 1);
    MR_ENSURE(X509_up_ref(ec->cert[i]) == 1, MR_ERR_INTERNAL, "X509_up_ref");
    if (EVP_PKEY_up_ref(ec->key[i]) != 1) {
        X509_free(ec->cert[i]);
        MR_BAIL(MR_ERR_INTERNAL, "EVP_PKEY_up_ref");
    }
    *cert = ec->cert[i];
    *key = ec->key[i];
    return MR_SUCCESS;
}

static MR_RESULT load_cert(const char *cert_path, const char *key_path, echo_cert *ec,
                           unsigned i)
{
    FILE *f = fopen(cert_path, "r");
    MR_ENSURE(f != NULL, MR_ERR_IO, "cannot open %s", cert_path);
    ec->cert[i] = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    MR_ENSURE(ec->cert[i] != NULL, MR_ERR_USAGE, "bad certificate %s", cert_path);
    f = fopen(key_path, "r");
    MR_ENSURE(f != NULL, MR_ERR_IO, "cannot open %s", key_path);
    ec->key[i] = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    MR_ENSURE(ec->key[i] != NULL, MR_ERR_USAGE, "bad key %s", key_path);
    return MR_SUCCESS;
}

static MR_RESULT load_certs(const char *c1, const char *k1, const char *c2, const char *k2,
                            echo_cert *ec)
{
    MR_GUARD(load_cert(c1, k1, ec, 0));
    return load_cert(c2 != NULL ? c2 : c1, k2 != NULL ? k2 : k1, ec, 1);
}

static void h_rotate(mr_srv_request *r, void *arg)
{
    echo_cert *ec = arg;
    atomic_store(&ec->current, atomic_load(&ec->current) ^ 1u);
    mr_srv_reply_success(r, NULL);
}

/* Appends the lower-case hex SHA-256 of data. */
static MR_RESULT sha256_hex(mr_slice data, mr_buf *out)
{
    uint8_t md[32];
    unsigned len = 0;
    MR_GUARD_OSSL(EVP_Digest(data.ptr, data.len, md, &len, EVP_sha256(), NULL), MR_ERR_INTERNAL,
                  "sha256");
    return mr_hex_encode_buf(md, sizeof(md), out);
}

static MR_RESULT quoted_list(const mr_srv_strlist *s, mr_buf *j)
{
    for (size_t i = 0; i < s->n; i++) {
        MR_GUARD(mr_buf_append_str(j, i ? "," : ""));
        MR_GUARD(mr_json_quote(j, s->v[i], strlen(s->v[i])));
    }
    return MR_SUCCESS;
}

static MR_RESULT echo_json(mr_srv_request *r, mr_buf *j)
{
    mr_srv_strlist s = {0};
    const char *m = mr_srv_req_method(r);
    MR_GUARD(mr_buf_append_str(j, "{\"method\":"));
    MR_GUARD(mr_json_quote(j, m, strlen(m)));
    MR_GUARD(mr_buf_append_str(j, ",\"path\":"));
    MR_GUARD(mr_json_quote(j, mr_srv_req_path(r), strlen(mr_srv_req_path(r))));
    MR_GUARD(mr_buf_printf(j, ",\"proto\":\"%s\",\"s\":[",
                           mr_srv_req_proto(r) == MR_SRV_PROTO_HTTP2 ? "HTTP/2" : "HTTP/1.1"));
    MR_GUARD(mr_srv_query_values(mr_srv_req_query(r), "s", false, &s));
    mr_result res = quoted_list(&s, j);
    mr_srv_strlist_free(&s);
    MR_GUARD(res);
    MR_GUARD(mr_buf_printf(j, "],\"peer_certs\":%d,\"peer_cert_sha256\":",
                           mr_srv_req_peer_leaf(r).len > 0 ? 1 : 0));
    if (mr_srv_req_peer_leaf(r).len > 0) {
        MR_GUARD(mr_buf_append_u8(j, '"'));
        MR_GUARD(sha256_hex(mr_srv_req_peer_leaf(r), j));
        MR_GUARD(mr_buf_append_u8(j, '"'));
    } else {
        MR_GUARD(mr_buf_append_str(j, "null"));
    }
    MR_GUARD(mr_buf_printf(j, ",\"body_len\":%zu,\"body_sha256\":\"", mr_srv_req_body(r).len));
    MR_GUARD(sha256_hex(mr_srv_req_body(r), j));
    MR_GUARD(mr_buf_append_str(j, "\"}"));
    return mr_buf_nul_terminate(j);
}

static void h_echo(mr_srv_request *r, void *arg)
{
    mr_buf j;
    (void)arg;
    mr_buf_init(&j, 0, 0);
    if (mr_ok(echo_json(r, &j)))
        mr_srv_reply_success(r, (const char *)j.data);
    else
        mr_srv_reply_error_from(r, mr_error_get());
    mr_buf_free(&j);
}

static void h_slow(mr_srv_request *r, void *arg)
{
    (void)arg;
    usleep(1000 * 1000); /* CPU-heavy work stands in here; the loop keeps serving */
    mr_srv_reply_success(r, "\"slow\"");
}

static MR_RESULT unauthorized(void) { MR_BAIL(MR_ERR_AUTH, "unauthorized user: <nobody> & co"); }

static void h_error(mr_srv_request *r, void *arg)
{
    (void)arg;
    MR_IGNORE(unauthorized()); /* fails by design: the error it records is the answer */
    mr_srv_reply_error_from(r, mr_error_get());
}

static void h_fail(mr_srv_request *r, void *arg)
{
    (void)arg;
    mr_srv_reply_fail(r, 400, "{\"sgxQuote\":\"failed to parse JSON data\"}", "bad request: x");
}

static void h_text(mr_srv_request *r, void *arg)
{
    mr_srv_resp_send(r, 200, "text/plain; charset=utf-8", MR_SLICE_STR((const char *)arg));
}

static void h_metrics(mr_srv_request *r, void *arg)
{
    mr_buf b;
    (void)arg;
    mr_buf_init(&b, 0, 0);
    if (mr_ok(mr_srv_metrics_render(g_srv, &b)))
        mr_srv_resp_send_buf(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    else
        mr_srv_reply_error_from(r, mr_error_get());
    mr_buf_free(&b);
}

static MR_RESULT activate_resp(mr_srv_request *r, const Rpc__ActivationReq *req)
{
    mr_result res = MR_FAILURE;
    mr_buf hex;
    mr_buf_init(&hex, 0, 0);
    if (mr_srv_req_peer_leaf(r).len > 0)
        MR_GUARD_OUT(sha256_hex(mr_srv_req_peer_leaf(r), &hex));
    else
        MR_GUARD_OUT(mr_buf_append_str(&hex, "none"));
    Rpc__Parameters__EnvEntry e1 = RPC__PARAMETERS__ENV_ENTRY__INIT;
    Rpc__Parameters__EnvEntry e2 = RPC__PARAMETERS__ENV_ENTRY__INIT;
    Rpc__Parameters__FilesEntry f1 = RPC__PARAMETERS__FILES_ENTRY__INIT;
    char k1[] = "MarbleType", k2[] = "UUID", k3[] = "peer_cert_sha256", argv0[] = "echo";
    e1.key = k1;
    e1.value.data = (uint8_t *)req->marbletype;
    e1.value.len = strlen(req->marbletype);
    e2.key = k2;
    e2.value.data = (uint8_t *)req->uuid;
    e2.value.len = strlen(req->uuid);
    f1.key = k3;
    f1.value.data = hex.data;
    f1.value.len = hex.len;
    Rpc__Parameters__EnvEntry *env[] = {&e1, &e2};
    Rpc__Parameters__FilesEntry *files[] = {&f1};
    char *argv[] = {argv0};
    Rpc__Parameters params = RPC__PARAMETERS__INIT;
    params.n_env = 2;
    params.env = env;
    params.n_files = 1;
    params.files = files;
    params.n_argv = 1;
    params.argv = argv;
    Rpc__ActivationResp resp = RPC__ACTIVATION_RESP__INIT;
    resp.parameters = &params;
    mr_srv_grpc_reply_msg(r, &resp.base);
    res = MR_SUCCESS;
out:
    mr_buf_free(&hex);
    return res;
}

static void h_activate(mr_srv_request *r, void *arg)
{
    (void)arg;
    mr_slice body = mr_srv_req_body(r);
    Rpc__ActivationReq *req = rpc__activation_req__unpack(NULL, body.len, body.ptr);
    if (req == NULL) {
        mr_srv_grpc_fail(r, 3, "cannot parse ActivationReq");
        return;
    }
    if (strcmp(req->marbletype, "fail") == 0) {
        mr_srv_grpc_fail(r, 7, "denied: 100% wrong\nübel");
    } else {
        if (strcmp(req->marbletype, "slow") == 0)
            usleep(200 * 1000);
        if (!mr_ok(activate_resp(r, req)))
            mr_srv_grpc_fail_from(r, mr_error_get());
    }
    rpc__activation_req__free_unpacked(req, NULL);
}

static size_t g_max_body = (size_t)8 << 20;

static bool has_leaf(const mr_srv_request *r, void *arg)
{
    (void)arg;
    return mr_srv_req_peer_leaf(r).len > 0;
}

/* Answers 401 without a client certificate (as the precheck predicted), else echoes. */
static void h_guarded(mr_srv_request *r, void *arg)
{
    if (mr_srv_req_peer_leaf(r).len == 0) {
        mr_srv_reply_error(r, 401, mr_srv_req_body_withheld(r) ? "unauthorized (body withheld)"
                                                               : "unauthorized");
        return;
    }
    h_echo(r, arg);
}

static MR_RESULT setup(mr_srv *s, const char *client, const char *mesh, const char *metrics,
                       echo_cert *ec)
{
    int cl = -1, me = -1, pl = -1;
    MR_GUARD(mr_srv_listen(s, MR_SRV_LISTENER_CLIENT, client, provide_cert, ec, &cl));
    MR_GUARD(mr_srv_listen(s, MR_SRV_LISTENER_MESH, mesh, provide_cert, ec, &me));
    MR_GUARD(mr_srv_listen(s, MR_SRV_LISTENER_PLAIN, metrics, NULL, NULL, &pl));
    MR_GUARD(mr_srv_route(s, cl, "GET", "/echo", 0, h_echo, NULL));
    MR_GUARD(mr_srv_route(s, cl, "POST", "/echo", 0, h_echo, NULL));
    MR_GUARD(mr_srv_route(s, cl, "GET", "/status", MR_SRV_ROUTE_INLINE, h_echo, NULL));
    MR_GUARD(mr_srv_route(s, cl, "GET", "/slow", 0, h_slow, NULL));
    MR_GUARD(mr_srv_route(s, cl, "GET", "/error", 0, h_error, NULL));
    MR_GUARD(mr_srv_route(s, cl, "POST", "/api/v2/fail", 0, h_fail, NULL));
    MR_GUARD(mr_srv_route(s, cl, "POST", "/rotate", MR_SRV_ROUTE_INLINE, h_rotate, ec));
    MR_GUARD(mr_srv_grpc_method(s, me, "rpc.Marble", "Activate", 0, h_activate, NULL));
    /* the echo routes take bodies up to the server's limit (GET too: the tests send some) */
    size_t big = g_max_body;
    MR_GUARD(mr_srv_route_body(s, cl, "GET", "/echo", big, NULL));
    MR_GUARD(mr_srv_route_body(s, cl, "POST", "/echo", big, NULL));
    MR_GUARD(mr_srv_route_body(s, cl, "POST", "/api/v2/fail", big, NULL));
    /* a route whose precheck refuses clients without a certificate before their body */
    MR_GUARD(mr_srv_route(s, cl, "POST", "/guarded", 0, h_guarded, NULL));
    MR_GUARD(mr_srv_route_body(s, cl, "POST", "/guarded", big, has_leaf));
    MR_GUARD(mr_srv_route(s, pl, "GET", "/metrics", 0, h_metrics, NULL));
    MR_GUARD(mr_srv_route(s, pl, "GET", "/healthz", MR_SRV_ROUTE_INLINE, h_text, "ok"));
    MR_GUARD(mr_srv_route(s, pl, "GET", "/readyz", MR_SRV_ROUTE_INLINE, h_text, "ok"));
    MR_GUARD(mr_srv_route(s, pl, "GET", "/events", MR_SRV_ROUTE_INLINE, h_text, "null"));
    MR_GUARD(mr_srv_handle_signals(s));
    printf("{\"client\":%u,\"mesh\":%u,\"metrics\":%u}\n", mr_srv_listener_port(s, cl),
           mr_srv_listener_port(s, me), mr_srv_listener_port(s, pl));
    fflush(stdout);
    return MR_SUCCESS;
}

static unsigned num(const char *s)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != '\0') {
        fprintf(stderr, "bad number %s\n", s);
        exit(2);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    const char *client = "127.0.0.1:0", *mesh = "127.0.0.1:0", *metrics = "127.0.0.1:0";
    const char *cert = NULL, *key = NULL, *cert2 = NULL, *key2 = NULL;
    unsigned workers = 0;
    mr_srv_limits lim;
    memset(&lim, 0, sizeof(lim));
    static const struct option opts[] = {
        {"client", 1, NULL, 'c'},       {"mesh", 1, NULL, 'm'},
        {"metrics", 1, NULL, 'p'},      {"cert", 1, NULL, 'C'},
        {"key", 1, NULL, 'K'},          {"workers", 1, NULL, 'w'},
        {"header-timeout-ms", 1, NULL, 'H'}, {"idle-timeout-ms", 1, NULL, 'I'},
        {"handshake-timeout-ms", 1, NULL, 'S'}, {"max-body", 1, NULL, 'B'},
        {"max-conns", 1, NULL, 'N'},    {"body-timeout-ms", 1, NULL, 'T'},
        {"cert2", 1, NULL, 'D'},        {"key2", 1, NULL, 'E'},
        {"mesh-max-conns", 1, NULL, 'M'}, {"max-conns-per-source", 1, NULL, 'P'},
        {"body-budget", 1, NULL, 'W'},  {"max-grpc-msg", 1, NULL, 'G'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'c': client = optarg; break;
        case 'm': mesh = optarg; break;
        case 'p': metrics = optarg; break;
        case 'C': cert = optarg; break;
        case 'K': key = optarg; break;
        case 'w': workers = num(optarg); break;
        case 'H': lim.header_timeout_ms = num(optarg); break;
        case 'I': lim.idle_timeout_ms = num(optarg); break;
        case 'S': lim.handshake_timeout_ms = num(optarg); break;
        case 'B': lim.max_body_bytes = num(optarg); g_max_body = lim.max_body_bytes; break;
        case 'M': lim.mesh_max_conns = num(optarg); break;
        case 'P': lim.max_conns_per_source = num(optarg); break;
        case 'W': lim.body_budget = num(optarg); break;
        case 'G': lim.max_grpc_msg_bytes = num(optarg); break;
        case 'N': lim.max_conns = num(optarg); break;
        case 'T': lim.body_timeout_ms = num(optarg); break;
        case 'D': cert2 = optarg; break;
        case 'E': key2 = optarg; break;
        default: return 2;
        }
    }
    if (cert == NULL || key == NULL) {
        fprintf(stderr, "usage: mr-server-echo --cert PEM --key PEM [--client A] [--mesh A] "
                        "[--metrics A] [limits]\n");
        return 2;
    }
    echo_cert ec = {0};
    int rc = 1;
    mr_log_init_from_env(false);
    if (!mr_ok(load_certs(cert, key, cert2, key2, &ec)) || !mr_ok(mr_srv_new(&lim, workers, &g_srv)) ||
        !mr_ok(setup(g_srv, client, mesh, metrics, &ec)) || !mr_ok(mr_srv_run(g_srv, true))) {
        fprintf(stderr, "mr-server-echo: %s\n", mr_error_get()->msg);
    } else {
        rc = 0;
    }
    mr_srv_free(g_srv);
    for (int i = 0; i < 2; i++) {
        X509_free(ec.cert[i]);
        EVP_PKEY_free(ec.key[i]);
    }
    MR_LOG_INFO("stopped");
    return rc;
}
