/* SPDX-License-Identifier: Apache-2.0 */
/*
 * activate-load: load generator for the Coordinator's mesh API (Activate). Benchmarks only.
 *
 * Every virtual marble has its own P-256 key, self-signed TLS certificate and CSR (made with
 * the marble library's identity code) and a softsgx quote (Open Enclave framing) whose report
 * data is SHA-256(certificate DER). All identities and quotes are made before the timed phase;
 * their cost is reported separately ("pregen"). In the timed phase each activation opens a NEW
 * TLS connection (libcurl, HTTP/2 via ALPN, the marble certificate as client certificate),
 * sends one unary gRPC Activate with a fresh UUID and, unless --no-check, verifies the returned
 * MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN leaf against MARBLE_PREDEFINED_ROOT_CA.
 *
 * Modes:
 *   closed  N threads, each sends the next activation when its previous one is answered.
 *   open    activations are scheduled at a fixed rate (t0 + i/rate); a pool of N threads sends
 *           them; latency counts from the SCHEDULED time, so a slow server is not hidden by
 *           a generator that waits (no coordinated omission).
 *   count   send exactly --count activations with N threads, then stop (pre-population,
 *           first activation after a cold start); every activation is measured.
 *
 * With --server-pid the tool samples /proc/<pid>/stat (utime+stime), /proc/<pid>/io
 * (write_bytes) and /proc/<pid>/status (VmRSS) at the start and end of the measured window
 * and reports the server's CPU microseconds and bytes written per activation.
 *
 * Output: one JSON line on stdout. Exit status 0 unless the setup failed.
 *
 * The softsgx identity (MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN) comes from EDG_SOFTSGX_* as
 * for the marblerun-softsgx tool.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "attest/softsgx.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/result.h"
#include "common/uuid.h"
#include "proto/coordinator.pb-c.h"
#include "crypto/hash.h"
#include "crypto/x509.h"
#include "marble/marble_int.h"

#define MAX_THREADS 512
#define MAX_ERRMSG 600

typedef enum { MODE_CLOSED, MODE_OPEN, MODE_COUNT } run_mode;

typedef struct ident {
    mr_marble_identity id;
    mr_buf quote;
    X509 *cert; /* id.cert_der parsed once, for the nghttp2 client */
} ident;

typedef struct options {
    const char *addr;
    const char *softsgx_dir;
    const char *marble_type;
    const char *label;
    run_mode mode;
    unsigned concurrency;
    double duration;
    double warmup;
    double rate;
    uint64_t count;
    unsigned identities;
    bool check;
    bool use_curl;
    bool until_down;
    long server_pid;
    const char *plain_path; /* --plain PATH: an HTTP/2 POST answered by any server (nginx) */
} options;

typedef struct proc_sample {
    double cpu_s;
    uint64_t write_bytes;
    uint64_t rss_kib;
    bool ok;
} proc_sample;

/* shared state of one run */
static options g_opt;
static ident *g_ids;
static double g_t0;          /* start of the run (monotonic seconds) */
static double g_win_start;   /* measured window */
static double g_win_end;
static atomic_uint_fast64_t g_next;  /* next activation index */
static atomic_uint_fast64_t g_ok;    /* successes completed inside the window */
static atomic_uint_fast64_t g_err;   /* failures completed inside the window */
static atomic_uint_fast64_t g_ok_all;
static atomic_bool g_down; /* --until-down: a worker saw an error */
static atomic_uint_fast64_t g_err_all;
static double *g_lat;                /* latencies (ms) of successes inside the window */
static size_t g_lat_cap;
static atomic_size_t g_lat_n;
static atomic_uint_fast64_t g_resp_bytes; /* response message bytes of the successes */
static pthread_mutex_t g_msg_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_first_err[MAX_ERRMSG];
static SSL_CTX *g_ssl_ctx;
static struct sockaddr_in g_sa;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double d = t - now_s();
    if (d <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool read_small_file(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
    return n > 0;
}

static uint64_t field_after(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    if (p == NULL)
        return 0;
    p += strlen(name);
    while (*p == ' ' || *p == '\t' || *p == ':')
        p++;
    return strtoull(p, NULL, 10);
}

static proc_sample sample_proc(long pid)
{
    proc_sample s;
    memset(&s, 0, sizeof(s));
    if (pid <= 0)
        return s;
    char path[64], text[4096];
    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if (!read_small_file(path, text, sizeof(text)))
        return s;
    /* fields after the ")" that closes comm: state is field 3; utime 14, stime 15 */
    const char *p = strrchr(text, ')');
    if (p == NULL)
        return s;
    unsigned long long ut = 0, st = 0;
    int field = 2;
    for (const char *q = p + 1; *q != '\0'; q++) {
        if (*q == ' ') {
            field++;
            if (field == 14)
                ut = strtoull(q + 1, NULL, 10);
            else if (field == 15) {
                st = strtoull(q + 1, NULL, 10);
                break;
            }
        }
    }
    long hz = sysconf(_SC_CLK_TCK);
    s.cpu_s = (double)(ut + st) / (double)(hz > 0 ? hz : 100);
    (void)snprintf(path, sizeof(path), "/proc/%ld/io", pid);
    if (read_small_file(path, text, sizeof(text)))
        s.write_bytes = field_after(text, "\nwrite_bytes");
    (void)snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if (read_small_file(path, text, sizeof(text)))
        s.rss_kib = field_after(text, "VmRSS");
    s.ok = true;
    return s;
}

static void note_error(const char *msg)
{
    pthread_mutex_lock(&g_msg_mu);
    if (g_first_err[0] == '\0')
        (void)snprintf(g_first_err, sizeof(g_first_err), "%s", msg);
    pthread_mutex_unlock(&g_msg_mu);
}

/* ---- identities ---- */

static mr_result make_ident(const mr_softsgx *sgx, const mr_softsgx_identity *who, ident *out)
{
    uint8_t hash[32];
    mr_buf_init(&out->quote, 0, 0);
    MR_GUARD(mr_marble_identity_new("localhost", MR_KEY_EC_P256, &out->id));
    MR_GUARD(mr_sha256(out->id.cert_der.data, out->id.cert_der.len, hash));
    MR_GUARD(mr_x509_from_der(mr_buf_slice(&out->id.cert_der), &out->cert));
    return mr_softsgx_quote(sgx, who, hash, sizeof(hash), true, &out->quote);
}


/* ---- HTTP/2 client on nghttp2 (default; --curl uses the marble library's libcurl path) ----
 * One blocking TLS connection per call: connect, TLS handshake (client certificate, ALPN h2),
 * one POST stream, read until the stream closes. Written for the benchmark only: libcurl
 * 7.88's transfer loop can miss buffered HTTP/2 data and wait for its 1 s poll timeout. */

typedef struct h2call {
    SSL *ssl;
    mr_slice req;   /* framed request (5-byte gRPC prefix + message) */
    size_t req_off;
    mr_buf body;    /* framed response */
    int grpc_status;
    int http_status;
    bool closed;
    bool io_error;
    char grpc_message[256];
} h2call;


static ssize_t h2_send(nghttp2_session *ss, const uint8_t *data, size_t len, int flags, void *u)
{
    (void)ss;
    (void)flags;
    h2call *c = u;
    int n = SSL_write(c->ssl, data, (int)len);
    if (n <= 0) {
        c->io_error = true;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return n;
}

static ssize_t h2_read_body(nghttp2_session *ss, int32_t sid, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *u)
{
    (void)ss;
    (void)sid;
    (void)src;
    h2call *c = u;
    size_t left = c->req.len - c->req_off;
    size_t n = left < len ? left : len;
    memcpy(buf, c->req.ptr + c->req_off, n);
    c->req_off += n;
    if (c->req_off == c->req.len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int h2_header(nghttp2_session *ss, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *u)
{
    (void)ss;
    (void)f;
    (void)flags;
    h2call *c = u;
    char v[256];
    size_t vl = valuelen < sizeof(v) - 1 ? valuelen : sizeof(v) - 1;
    memcpy(v, value, vl);
    v[vl] = '\0';
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        c->http_status = (int)strtol(v, NULL, 10);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        c->grpc_status = (int)strtol(v, NULL, 10);
    else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        (void)snprintf(c->grpc_message, sizeof(c->grpc_message), "%s", v);
    return 0;
}

static int h2_data(nghttp2_session *ss, uint8_t flags, int32_t sid, const uint8_t *data,
                   size_t len, void *u)
{
    (void)ss;
    (void)flags;
    (void)sid;
    h2call *c = u;
    if (!mr_ok(mr_buf_append(&c->body, data, len))) {
        mr_error_clear();
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int h2_close(nghttp2_session *ss, int32_t sid, uint32_t err, void *u)
{
    (void)ss;
    (void)sid;
    (void)err;
    ((h2call *)u)->closed = true;
    return 0;
}

static mr_result h2_global_init(void)
{
    g_ssl_ctx = SSL_CTX_new(TLS_client_method());
    MR_ENSURE(g_ssl_ctx != NULL, MR_ERR_INTERNAL, "SSL_CTX_new failed");
    MR_ENSURE(SSL_CTX_set_min_proto_version(g_ssl_ctx, TLS1_2_VERSION) == 1, MR_ERR_INTERNAL,
              "TLS version");
    static const unsigned char alpn[] = {2, 'h', '2'};
    MR_ENSURE(SSL_CTX_set_alpn_protos(g_ssl_ctx, alpn, sizeof(alpn)) == 0, MR_ERR_INTERNAL,
              "ALPN");
    SSL_CTX_set_verify(g_ssl_ctx, SSL_VERIFY_NONE, NULL); /* the answer's chain is checked */
    SSL_CTX_set_session_cache_mode(g_ssl_ctx, SSL_SESS_CACHE_OFF); /* a new marble each time */
    char host[256];
    (void)snprintf(host, sizeof(host), "%s", g_opt.addr);
    char *colon = strrchr(host, ':');
    MR_ENSURE(colon != NULL, MR_ERR_USAGE, "--addr must be IPv4:PORT");
    *colon = '\0';
    memset(&g_sa, 0, sizeof(g_sa));
    g_sa.sin_family = AF_INET;
    g_sa.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
    MR_ENSURE(inet_pton(AF_INET, host, &g_sa.sin_addr) == 1, MR_ERR_USAGE,
              "--addr must be IPv4:PORT");
    return MR_SUCCESS;
}

static mr_result h2_unary(const ident *who, const char *path, mr_slice request, bool plain,
                          mr_buf *response)
{
    mr_result res = MR_FAILURE;
    int fd = -1;
    nghttp2_session *ss = NULL;
    nghttp2_session_callbacks *cb = NULL;
    h2call c;
    mr_buf framed;
    memset(&c, 0, sizeof(c));
    c.grpc_status = -1;
    mr_buf_init(&c.body, MR_MARBLE_RESP_MAX + 5, MR_BUF_SECRET);
    mr_buf_init(&framed, 0, 0);

    uint8_t prefix[5] = {0, (uint8_t)(request.len >> 24), (uint8_t)(request.len >> 16),
                         (uint8_t)(request.len >> 8), (uint8_t)request.len};
    MR_GUARD_OUT(mr_buf_append(&framed, prefix, sizeof(prefix)));
    MR_GUARD_OUT(mr_buf_append(&framed, request.ptr, request.len));
    c.req = mr_buf_slice(&framed);

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    MR_ENSURE_OUT(fd >= 0, MR_ERR_IO, "socket: %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    MR_ENSURE_OUT(connect(fd, (const struct sockaddr *)&g_sa, sizeof(g_sa)) == 0, MR_ERR_IO,
                  "connect: %s", strerror(errno));
    c.ssl = SSL_new(g_ssl_ctx);
    MR_ENSURE_OUT(c.ssl != NULL, MR_ERR_INTERNAL, "SSL_new failed");
    MR_ENSURE_OUT(SSL_use_certificate(c.ssl, who->cert) == 1 &&
                  SSL_use_PrivateKey(c.ssl, who->id.key) == 1 && SSL_set_fd(c.ssl, fd) == 1,
                  MR_ERR_INTERNAL, "client certificate");
    MR_ENSURE_OUT(SSL_connect(c.ssl) == 1, MR_ERR_IO, "TLS handshake failed");
    const unsigned char *proto = NULL;
    unsigned proto_len = 0;
    SSL_get0_alpn_selected(c.ssl, &proto, &proto_len);
    MR_ENSURE_OUT(proto_len == 2 && memcmp(proto, "h2", 2) == 0, MR_ERR_PROTOCOL,
                  "the server did not negotiate h2");

    MR_ENSURE_OUT(nghttp2_session_callbacks_new(&cb) == 0, MR_ERR_INTERNAL, "nghttp2");
    nghttp2_session_callbacks_set_send_callback(cb, h2_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_close);
    MR_ENSURE_OUT(nghttp2_session_client_new(&ss, cb, &c) == 0, MR_ERR_INTERNAL, "nghttp2");
    MR_ENSURE_OUT(nghttp2_submit_settings(ss, NGHTTP2_FLAG_NONE, NULL, 0) == 0, MR_ERR_INTERNAL,
                  "nghttp2 settings");
    char authority[300];
    (void)snprintf(authority, sizeof(authority), "%s", g_opt.addr);
#define NV(n, v)                                                                              \
    {(uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v), sizeof(n) - 1, strlen(v),          \
     NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv hdrs[] = {NV(":method", "POST"), NV(":scheme", "https"), NV(":path", path),
                         NV(":authority", authority), NV("content-type", "application/grpc"),
                         NV("te", "trailers"), NV("user-agent", "marblerun-c-activate-load")};
#undef NV
    nghttp2_data_provider dp = {.source = {.ptr = NULL}, .read_callback = h2_read_body};
    MR_ENSURE_OUT(nghttp2_submit_request(ss, NULL, hdrs, MR_ARRAY_LEN(hdrs), &dp, NULL) > 0,
                  MR_ERR_INTERNAL, "nghttp2 request");
    uint8_t buf[16384];
    while (!c.closed) {
        MR_ENSURE_OUT(nghttp2_session_send(ss) == 0 && !c.io_error, MR_ERR_IO,
                      "HTTP/2 send failed");
        if (c.closed)
            break;
        int n = SSL_read(c.ssl, buf, (int)sizeof(buf));
        MR_ENSURE_OUT(n > 0, MR_ERR_IO, "connection closed before the answer");
        MR_ENSURE_OUT(nghttp2_session_mem_recv(ss, buf, (size_t)n) == n, MR_ERR_PROTOCOL,
                      "HTTP/2 protocol error");
    }
    MR_ENSURE_OUT(c.http_status == 200, MR_ERR_PROTOCOL, "HTTP status %d", c.http_status);
    if (plain) { /* --plain: any 200 answer with a body counts */
        MR_ENSURE_OUT(c.body.len > 0, MR_ERR_PROTOCOL, "empty answer");
        MR_GUARD_OUT(mr_buf_set(response, c.body.data, c.body.len));
        res = MR_SUCCESS;
        goto out;
    }
    MR_ENSURE_OUT(c.grpc_status == 0, MR_ERR_AUTH, "grpc-status %d: %s", c.grpc_status,
                  c.grpc_message);
    mr_slice msg;
    MR_GUARD_OUT(mr_marble_grpc_unframe(mr_buf_slice(&c.body), &msg));
    MR_GUARD_OUT(mr_buf_set(response, msg.ptr, msg.len));
    res = MR_SUCCESS;
out:
    nghttp2_session_del(ss);
    nghttp2_session_callbacks_del(cb);
    if (c.ssl != NULL) {
        (void)SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    if (fd >= 0)
        close(fd);
    mr_buf_free(&c.body);
    mr_buf_free(&framed);
    return res;
}

/* ---- one activation ---- */

static const mr_marble_kv *find_env(const mr_marble_params *p, const char *name)
{
    for (size_t i = 0; i < p->n_env; i++)
        if (strcmp(p->env[i].name, name) == 0)
            return &p->env[i];
    return NULL;
}

static mr_result check_chain(const mr_marble_params *p)
{
    mr_result res = MR_FAILURE;
    STACK_OF(X509) *chain = NULL;
    X509 *root = NULL;
    const mr_marble_kv *c = find_env(p, "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN");
    const mr_marble_kv *r = find_env(p, "MARBLE_PREDEFINED_ROOT_CA");
    MR_ENSURE_OUT(c != NULL && r != NULL, MR_ERR_PROTOCOL, "answer without certificate chain");
    MR_GUARD_OUT(mr_x509_chain_from_pem(mr_buf_slice(&c->value), &chain));
    MR_GUARD_OUT(mr_x509_from_pem(mr_buf_slice(&r->value), &root));
    MR_ENSURE_OUT(sk_X509_num(chain) >= 1, MR_ERR_PROTOCOL, "empty certificate chain");
    mr_x509_verify_opts vo = {.intermediates = chain, .purpose = MR_X509_PURPOSE_ANY};
    MR_GUARD_OUT(mr_x509_verify(sk_X509_value(chain, 0), root, &vo));
    res = MR_SUCCESS;
out:
    sk_X509_pop_free(chain, X509_free);
    X509_free(root);
    return res;
}

static mr_result activate_once(const ident *who)
{
    mr_result res = MR_FAILURE;
    mr_buf req_buf, resp;
    mr_marble_params params;
    mr_uuid uuid;
    char uuid_text[MR_UUID_TEXT_LEN + 1];
    char type_copy[256];
    memset(&params, 0, sizeof(params));
    mr_buf_init(&req_buf, 0, 0);
    mr_buf_init(&resp, MR_MARBLE_RESP_MAX, MR_BUF_SECRET);

    MR_GUARD_OUT(mr_uuid_random(&uuid));
    mr_uuid_format(&uuid, uuid_text);
    (void)snprintf(type_copy, sizeof(type_copy), "%s", g_opt.marble_type);
    Rpc__ActivationReq req;
    rpc__activation_req__init(&req);
    req.quote.data = who->quote.data;
    req.quote.len = who->quote.len;
    req.csr.data = who->id.csr_der.data;
    req.csr.len = who->id.csr_der.len;
    req.marbletype = type_copy;
    req.uuid = uuid_text;
    size_t need = rpc__activation_req__get_packed_size(&req);
    MR_GUARD_OUT(mr_buf_reserve(&req_buf, need));
    req_buf.len = rpc__activation_req__pack(&req, req_buf.data);

    if (g_opt.use_curl) {
        mr_marble_rpc_opts ro = {.addr = g_opt.addr,
                                 .cert_pem = mr_buf_slice(&who->id.cert_pem),
                                 .key_pem = mr_buf_slice(&who->id.key_pem)};
        MR_GUARD_OUT(mr_marble_rpc_unary(&ro, "/rpc.Marble/Activate", mr_buf_slice(&req_buf),
                                         &resp));
    } else if (g_opt.plain_path != NULL) {
        MR_GUARD_OUT(h2_unary(who, g_opt.plain_path, mr_buf_slice(&req_buf), true, &resp));
    } else {
        MR_GUARD_OUT(h2_unary(who, "/rpc.Marble/Activate", mr_buf_slice(&req_buf), false, &resp));
    }
    atomic_fetch_add(&g_resp_bytes, resp.len);
    if (g_opt.check && g_opt.plain_path == NULL) {
        MR_GUARD_OUT(mr_marble_params_decode(mr_buf_slice(&resp), &params));
        MR_GUARD_OUT(check_chain(&params));
    }
    res = MR_SUCCESS;
out:
    mr_marble_params_clear(&params);
    mr_buf_free(&req_buf);
    mr_buf_free(&resp);
    return res;
}

/* What counts: closed loop - every activation that completes inside the window (its latency
 * from its own send time); open loop - every activation SCHEDULED inside the window (the run
 * waits for all of them; latency from the scheduled time), throughput from completions inside
 * the window; count mode - everything. */
static void record(double sched, double done, bool ok)
{
    atomic_fetch_add(ok ? &g_ok_all : &g_err_all, 1);
    bool in_window = done >= g_win_start && done <= g_win_end;
    bool sampled = g_opt.mode == MODE_OPEN ? (sched >= g_win_start && sched < g_win_end)
                                           : in_window;
    if (in_window)
        atomic_fetch_add(ok ? &g_ok : &g_err, 1);
    if (!sampled || !ok)
        return;
    size_t i = atomic_fetch_add(&g_lat_n, 1);
    if (i < g_lat_cap)
        g_lat[i] = (done - sched) * 1e3;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t i = atomic_fetch_add(&g_next, 1);
        double sched;
        if (g_opt.mode == MODE_OPEN) {
            sched = g_t0 + (double)i / g_opt.rate;
            if (sched >= g_win_end)
                break;
            sleep_until(sched);
        } else if (g_opt.mode == MODE_COUNT) {
            if (i >= g_opt.count)
                break;
            sched = now_s();
        } else {
            sched = now_s();
            if (sched >= g_win_end)
                break;
        }
        bool ok = mr_ok(activate_once(&g_ids[i % g_opt.identities]));
        if (!ok) {
            note_error(mr_error_get()->msg);
            mr_error_clear();
        }
        record(sched, now_s(), ok);
        if (!ok && g_opt.until_down) {
            /* scenario E: the server was killed (or refuses): this worker's run ends here */
            atomic_store(&g_down, true);
            break;
        }
    }
    return NULL;
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[k < n ? k : n - 1];
}

static void json_escape_print(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: activate-load --addr HOST:PORT --softsgx DIR --type MARBLETYPE\n"
            "  [--mode closed|open|count] [--concurrency N] [--duration S] [--warmup S]\n"
            "  [--rate R] [--count K] [--identities M] [--no-check] [--server-pid PID]\n"
            "  [--label TEXT] [--curl] [--plain PATH] [--until-down]\n"
            "--until-down: each worker stops at its first error (scenario E, kill -9 under\n"
            "  load); \"activate-load: load started\" goes to stderr when the window opens.\n"
            "--plain PATH: the same request as an HTTP/2 POST to PATH on any TLS server (e.g.\n"
            "  nginx); a 200 answer with a body counts, nothing gRPC-specific is checked.\n");
}

static bool parse_args(int argc, char **argv)
{
    g_opt = (options){.mode = MODE_CLOSED, .concurrency = 8, .duration = 10, .warmup = 2,
                      .rate = 100, .count = 0, .identities = 256, .check = true, .label = ""};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-check") == 0) {
            g_opt.check = false;
            continue;
        }
        if (strcmp(a, "--until-down") == 0) {
            g_opt.until_down = true;
            continue;
        }
        if (strcmp(a, "--curl") == 0) {
            g_opt.use_curl = true;
            continue;
        }
        if (v == NULL)
            return false;
        i++;
        if (strcmp(a, "--addr") == 0)
            g_opt.addr = v;
        else if (strcmp(a, "--softsgx") == 0)
            g_opt.softsgx_dir = v;
        else if (strcmp(a, "--type") == 0)
            g_opt.marble_type = v;
        else if (strcmp(a, "--label") == 0)
            g_opt.label = v;
        else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "closed") == 0)
                g_opt.mode = MODE_CLOSED;
            else if (strcmp(v, "open") == 0)
                g_opt.mode = MODE_OPEN;
            else if (strcmp(v, "count") == 0)
                g_opt.mode = MODE_COUNT;
            else
                return false;
        } else if (strcmp(a, "--concurrency") == 0)
            g_opt.concurrency = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--duration") == 0)
            g_opt.duration = strtod(v, NULL);
        else if (strcmp(a, "--warmup") == 0)
            g_opt.warmup = strtod(v, NULL);
        else if (strcmp(a, "--rate") == 0)
            g_opt.rate = strtod(v, NULL);
        else if (strcmp(a, "--count") == 0)
            g_opt.count = strtoull(v, NULL, 10);
        else if (strcmp(a, "--identities") == 0)
            g_opt.identities = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--server-pid") == 0)
            g_opt.server_pid = strtol(v, NULL, 10);
        else if (strcmp(a, "--plain") == 0)
            g_opt.plain_path = v;
        else
            return false;
    }
    return g_opt.addr != NULL && g_opt.softsgx_dir != NULL && g_opt.marble_type != NULL &&
           g_opt.concurrency >= 1 && g_opt.concurrency <= MAX_THREADS && g_opt.identities >= 1 &&
           g_opt.duration > 0 && g_opt.rate > 0 && g_opt.warmup >= 0 &&
           (g_opt.mode != MODE_COUNT || g_opt.count > 0);
}

int main(int argc, char **argv)
{
    int rc = 1;
    mr_softsgx *sgx = NULL;
    pthread_t th[MAX_THREADS];
    unsigned started = 0;
    /* a server killed mid-write (scenario E) must be an error, not the end of the tool */
    (void)signal(SIGPIPE, SIG_IGN);
    if (!parse_args(argc, argv)) {
        usage();
        return 2;
    }
    mr_softsgx_identity who;
    if (!mr_ok(mr_softsgx_identity_from_env(&who)) || !mr_ok(mr_softsgx_load(g_opt.softsgx_dir, &sgx)) ||
        !mr_ok(mr_marble_curl_init()) || !mr_ok(h2_global_init())) {
        fprintf(stderr, "activate-load: setup: %s\n", mr_error_get()->msg);
        goto out;
    }
    unsigned n_ids = g_opt.identities;
    if (g_opt.mode == MODE_COUNT && g_opt.count < n_ids)
        n_ids = (unsigned)g_opt.count;
    g_opt.identities = n_ids;
    g_ids = mr_calloc(n_ids, sizeof(*g_ids));
    if (g_ids == NULL)
        goto out;

    /* pre-generation (not timed as part of the run) */
    double pg_w0 = now_s(), pg_c0 = cpu_now();
    for (unsigned i = 0; i < n_ids; i++) {
        if (!mr_ok(make_ident(sgx, &who, &g_ids[i]))) {
            fprintf(stderr, "activate-load: identity %u: %s\n", i, mr_error_get()->msg);
            goto out;
        }
    }
    double pg_wall = now_s() - pg_w0, pg_cpu = cpu_now() - pg_c0;

    g_lat_cap = 4u << 20;
    g_lat = mr_calloc(g_lat_cap, sizeof(double));
    if (g_lat == NULL)
        goto out;

    g_t0 = now_s() + 0.05;
    g_win_start = g_opt.mode == MODE_COUNT ? 0 : g_t0 + g_opt.warmup;
    g_win_end = g_opt.mode == MODE_COUNT ? 1e300 : g_win_start + g_opt.duration;
    double c0 = cpu_now();
    for (; started < g_opt.concurrency; started++)
        if (pthread_create(&th[started], NULL, worker, NULL) != 0)
            break;
    /* server samples at the window edges */
    proc_sample s0, s1;
    memset(&s1, 0, sizeof(s1));
    double w0 = g_t0, w1 = 0;
    if (g_opt.mode != MODE_COUNT) {
        sleep_until(g_win_start);
        s0 = sample_proc(g_opt.server_pid);
        w0 = now_s();
        if (g_opt.until_down) {
            fprintf(stderr, "activate-load: load started\n");
            fflush(stderr);
            while (now_s() < g_win_end && !atomic_load(&g_down))
                sleep_until(now_s() + 0.002);
        } else {
            sleep_until(g_win_end);
        }
        s1 = sample_proc(g_opt.server_pid);
        w1 = now_s();
    } else {
        s0 = sample_proc(g_opt.server_pid);
        w0 = now_s();
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double client_cpu = cpu_now() - c0;
    if (g_opt.mode == MODE_COUNT) {
        s1 = sample_proc(g_opt.server_pid);
        w1 = now_s();
    }

    uint64_t ok = g_opt.mode == MODE_COUNT ? atomic_load(&g_ok_all) : atomic_load(&g_ok);
    uint64_t err = g_opt.mode == MODE_COUNT ? atomic_load(&g_err_all) : atomic_load(&g_err);
    size_t n = atomic_load(&g_lat_n);
    if (n > g_lat_cap)
        n = g_lat_cap;
    qsort(g_lat, n, sizeof(double), cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += g_lat[i];
    double window = w1 - w0;
    const char *mode = g_opt.mode == MODE_OPEN ? "open" : g_opt.mode == MODE_COUNT ? "count" : "closed";
    printf("{\"tool\":\"activate-load\",\"label\":");
    json_escape_print(g_opt.label);
    printf(",\"mode\":\"%s\",\"concurrency\":%u,\"offered_rate\":%.3f,\"window_s\":%.3f,"
           "\"ok\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"ok_all\":%" PRIu64 ",\"throughput\":%.3f,",
           mode, g_opt.concurrency, g_opt.mode == MODE_OPEN ? g_opt.rate : 0.0, window, ok, err,
           (uint64_t)atomic_load(&g_ok_all), window > 0 ? (double)ok / window : 0.0);
    printf("\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,"
           "\"mean\":%.3f},",
           pct(g_lat, n, 50), pct(g_lat, n, 90), pct(g_lat, n, 99), pct(g_lat, n, 99.9),
           n ? g_lat[n - 1] : 0.0, n ? sum / (double)n : 0.0);
    uint64_t all = atomic_load(&g_ok_all) + atomic_load(&g_err_all);
    printf("\"client\":\"%s\",\"client_cpu_us_per_act\":%.1f,", g_opt.use_curl ? "libcurl" : "nghttp2", all ? client_cpu * 1e6 / (double)all : 0.0);
    uint64_t ok_all = atomic_load(&g_ok_all);
    printf("\"resp_bytes_mean\":%.1f,", ok_all ? (double)atomic_load(&g_resp_bytes) / (double)ok_all : 0.0);
    if (s0.ok && s1.ok && ok > 0) {
        printf("\"server\":{\"cpu_us_per_act\":%.1f,\"cpu_util\":%.3f,"
               "\"write_bytes_per_act\":%.1f,\"rss_kib\":%" PRIu64 "},",
               (s1.cpu_s - s0.cpu_s) * 1e6 / (double)(ok + err),
               window > 0 ? (s1.cpu_s - s0.cpu_s) / window : 0.0,
               (double)(s1.write_bytes - s0.write_bytes) / (double)(ok + err), s1.rss_kib);
    }
    printf("\"pregen\":{\"identities\":%u,\"wall_ms_per_identity\":%.3f,"
           "\"cpu_ms_per_identity\":%.3f},\"checked\":%s,\"first_error\":",
           n_ids, pg_wall * 1e3 / n_ids, pg_cpu * 1e3 / n_ids, g_opt.check ? "true" : "false");
    json_escape_print(g_first_err);
    printf("}\n");
    fflush(stdout);
    rc = 0;
out:
    if (g_ids != NULL) {
        for (unsigned i = 0; i < g_opt.identities; i++) {
            mr_marble_identity_clear(&g_ids[i].id);
            X509_free(g_ids[i].cert);
            mr_buf_free(&g_ids[i].quote);
        }
    }
    mr_free(g_ids);
    mr_free(g_lat);
    mr_softsgx_free(sgx);
    SSL_CTX_free(g_ssl_ctx);
    return rc;
}
