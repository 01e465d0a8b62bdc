/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC client over nghttp2 with blocking, deadline-bounded I/O (rpc.h). */
#include "coordinator/rpc/rpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/alloc.h"
#include "coordinator/rpc/rpc_int.h"

#define READ_CHUNK 16384

uint64_t mr_rpc_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int rpc_remaining(uint64_t deadline_ms)
{
    uint64_t now = mr_rpc_now_ms();
    if (now >= deadline_ms)
        return 0;
    uint64_t left = deadline_ms - now;
    return left > 60000 ? 60000 : (int)left;
}

/* ---- socket and TLS I/O ---- */

static MR_RESULT wait_fd(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        int left = rpc_remaining(deadline_ms);
        MR_ENSURE(left > 0, MR_ERR_UNAVAILABLE, "rpc: deadline exceeded");
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left);
        if (n > 0)
            return MR_SUCCESS;
        MR_ENSURE(n == 0 || errno == EINTR, MR_ERR_UNAVAILABLE, "rpc: poll: %s", strerror(errno));
    }
}

/* Waits for what an SSL call asked for; false (error set) for a real failure. */
static MR_RESULT ssl_retry(mr_rpc_conn *c, int rv, uint64_t deadline_ms)
{
    int err = SSL_get_error(c->ssl, rv);
    if (err == SSL_ERROR_WANT_READ)
        return wait_fd(c->fd, POLLIN, deadline_ms);
    if (err == SSL_ERROR_WANT_WRITE)
        return wait_fd(c->fd, POLLOUT, deadline_ms);
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    MR_BAIL(MR_ERR_UNAVAILABLE, "rpc: TLS: %s",
            e != 0 ? ERR_reason_error_string(e) : err == SSL_ERROR_ZERO_RETURN ? "closed by peer"
                                                                              : "connection failed");
}

static MR_RESULT io_write(mr_rpc_conn *c, const uint8_t *p, size_t n, uint64_t deadline_ms)
{
    while (n > 0) {
        if (c->ssl != NULL) {
            size_t done = 0;
            int rv = SSL_write_ex(c->ssl, p, n, &done);
            if (rv == 1) {
                p += done;
                n -= done;
                continue;
            }
            MR_GUARD(ssl_retry(c, rv, deadline_ms));
            continue;
        }
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += (size_t)w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            MR_GUARD(wait_fd(c->fd, POLLOUT, deadline_ms));
        } else {
            MR_BAIL(MR_ERR_UNAVAILABLE, "rpc: send: %s", w == 0 ? "closed" : strerror(errno));
        }
    }
    return MR_SUCCESS;
}

/* Reads what is there, waiting until deadline_ms for at least one byte. *n = 0: deadline. */
static MR_RESULT io_read(mr_rpc_conn *c, uint8_t *p, size_t cap, uint64_t deadline_ms, size_t *n)
{
    *n = 0;
    for (;;) {
        if (c->ssl != NULL) {
            int rv = SSL_read_ex(c->ssl, p, cap, n);
            if (rv == 1)
                return MR_SUCCESS;
            if (SSL_get_error(c->ssl, rv) == SSL_ERROR_WANT_READ) {
                if (!mr_ok(wait_fd(c->fd, POLLIN, deadline_ms))) {
                    mr_error_clear(); /* the deadline: nothing read */
                    return MR_SUCCESS;
                }
                continue;
            }
            MR_GUARD(ssl_retry(c, rv, deadline_ms));
            continue;
        }
        ssize_t r = recv(c->fd, p, cap, 0);
        if (r > 0) {
            *n = (size_t)r;
            return MR_SUCCESS;
        }
        MR_ENSURE(r != 0, MR_ERR_UNAVAILABLE, "rpc: connection closed by peer");
        MR_ENSURE(errno == EAGAIN || errno == EINTR, MR_ERR_UNAVAILABLE, "rpc: recv: %s", strerror(errno));
        if (rpc_remaining(deadline_ms) == 0)
            return MR_SUCCESS;
        if (!mr_ok(wait_fd(c->fd, POLLIN, deadline_ms)))
            return MR_SUCCESS; /* the deadline: nothing read */
    }
}

/* Sends everything nghttp2 has queued. */
MR_RESULT rpc_flush(mr_rpc_conn *c, uint64_t deadline_ms)
{
    for (;;) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        MR_ENSURE(n >= 0, MR_ERR_PROTOCOL, "rpc: HTTP/2: %s", nghttp2_strerror((int)n));
        if (n == 0)
            return MR_SUCCESS;
        MR_GUARD(io_write(c, data, (size_t)n, deadline_ms));
    }
}

/* One round: send what is queued, then take in what arrives before deadline_ms. */
MR_RESULT rpc_pump(mr_rpc_conn *c, uint64_t deadline_ms)
{
    uint8_t buf[READ_CHUNK];
    size_t n = 0;
    mr_result r = rpc_flush(c, deadline_ms);
    if (mr_ok(r))
        r = io_read(c, buf, sizeof(buf), deadline_ms, &n);
    if (mr_ok(r) && n > 0) {
        ssize_t used = nghttp2_session_mem_recv(c->h2, buf, n);
        if (used < 0) {
            mr_error_set(MR_ERR_PROTOCOL, __FILE__, __LINE__, "rpc: HTTP/2: %s",
                         nghttp2_strerror((int)used));
            r = MR_FAILURE;
        }
    }
    if (mr_ok(r))
        r = rpc_flush(c, deadline_ms);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (!mr_ok(r))
        c->broken = true;
    return r;
}

/* ---- nghttp2 callbacks ---- */

static mr_rpc_stream *stream_of(nghttp2_session *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2, id);
}

static bool is(const uint8_t *p, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

static long parse_long(const uint8_t *v, size_t n)
{
    long x = 0;
    if (n == 0 || n > 9)
        return -2;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -2;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    mr_rpc_stream *s = stream_of(h2, f->hd.stream_id);
    if (s == NULL)
        return 0;
    if (is(name, nl, ":status")) {
        s->http_status = (int)parse_long(value, vl);
    } else if (is(name, nl, "grpc-status")) {
        long v = parse_long(value, vl);
        s->grpc_status = v >= 0 ? v : MR_GRPC_UNKNOWN;
    } else if (is(name, nl, "grpc-message")) {
        mr_buf d;
        mr_buf_init(&d, MSG_TEXT_MAX, 0);
        size_t k = 0;
        if (mr_ok(mr_grpc_percent_decode(&d, (const char *)value, vl)))
            k = d.len < MSG_TEXT_MAX - 1 ? d.len : MSG_TEXT_MAX - 1;
        else
            mr_error_clear();
        if (k > 0)
            memcpy(s->grpc_msg, d.data, k);
        s->grpc_msg[k] = '\0';
        mr_buf_free(&d);
    }
    return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    mr_rpc_stream *s = stream_of(h2, id);
    if (s == NULL)
        return 0;
    if (!mr_ok(mr_buf_append(&s->in, data, len))) {
        mr_error_clear();
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        s->grpc_status = MR_GRPC_RESOURCE_EXHAUSTED;
        (void)snprintf(s->grpc_msg, sizeof(s->grpc_msg),
                       "grpc: received message larger than max (%zu)", s->max_msg);
    }
    return 0;
}

static int on_close(nghttp2_session *h2, int32_t id, uint32_t err, void *ud)
{
    (void)ud;
    mr_rpc_stream *s = stream_of(h2, id);
    if (s != NULL) {
        s->closed = true;
        s->rst = err;
        nghttp2_session_set_stream_user_data(h2, id, NULL);
    }
    return 0;
}

static int on_frame(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    (void)h2;
    mr_rpc_conn *c = ud;
    if (f->hd.type == NGHTTP2_GOAWAY)
        c->goaway = true;
    return 0;
}

ssize_t rpc_read_out(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)h2;
    (void)id;
    (void)ud;
    mr_rpc_stream *s = src->ptr;
    size_t left = s->out.len - s->out_off;
    size_t n = left < len ? left : len;
    if (n > 0) {
        memcpy(buf, s->out.data + s->out_off, n);
        s->out_off += n;
    }
    if (s->out_off == s->out.len) {
        mr_buf_reset(&s->out);
        s->out_off = 0;
        if (s->end_out) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            s->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

/* nghttp2 holds our requests and the answers (key material among them): wiped when freed. */
static void *h2_malloc(size_t n, void *ud)
{
    (void)ud;
    return mr_wipe_malloc(n);
}
static void h2_free(void *p, void *ud)
{
    (void)ud;
    mr_wipe_free(p);
}
static void *h2_calloc(size_t k, size_t n, void *ud)
{
    (void)ud;
    return mr_wipe_calloc(k, n);
}
static void *h2_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    return mr_wipe_realloc(p, n);
}
static nghttp2_mem h2_mem = {NULL, h2_malloc, h2_free, h2_calloc, h2_realloc};

/* ---- connecting ---- */

static int connect_one(const struct addrinfo *ai, uint64_t deadline_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (!mr_ok(wait_fd(fd, POLLOUT, deadline_ms)) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        mr_error_clear();
        close(fd);
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static MR_RESULT dial(const mr_rpc_target *t, uint64_t deadline_ms, int *fd)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    MR_ENSURE(rc == 0, MR_ERR_UNAVAILABLE, "rpc: cannot resolve %s: %s", t->host, gai_strerror(rc));
    *fd = -1;
    for (const struct addrinfo *ai = res; ai != NULL && *fd < 0; ai = ai->ai_next)
        *fd = connect_one(ai, deadline_ms);
    freeaddrinfo(res);
    MR_ENSURE(*fd >= 0, MR_ERR_UNAVAILABLE, "rpc: cannot connect to %s:%s", t->host, t->port);
    return MR_SUCCESS;
}

static bool is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static MR_RESULT tls_start(mr_rpc_conn *c, const mr_rpc_target *t, uint64_t deadline_ms)
{
    static const unsigned char alpn[] = "\x02h2";
    c->ssl = SSL_new(t->tls);
    MR_ENSURE_ALLOC(c->ssl);
    MR_ENSURE(SSL_set_fd(c->ssl, c->fd) == 1, MR_ERR_INTERNAL, "rpc: TLS set-up failed");
    MR_ENSURE(SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn) - 1) == 0, MR_ERR_INTERNAL,
              "rpc: TLS set-up failed");
    if (t->verify_name != NULL) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        int ok = is_ip(t->verify_name) ? X509_VERIFY_PARAM_set1_ip_asc(vp, t->verify_name)
                                       : X509_VERIFY_PARAM_set1_host(vp, t->verify_name, 0);
        MR_ENSURE(ok == 1, MR_ERR_INTERNAL, "rpc: TLS set-up failed");
        if (!is_ip(t->verify_name)) {
            /* the macro casts its argument to void *: hand it a mutable copy */
            char sni[HOST_MAX];
            MR_ENSURE(strlen(t->verify_name) < sizeof(sni), MR_ERR_USAGE, "rpc: name too long");
            (void)snprintf(sni, sizeof(sni), "%s", t->verify_name);
            MR_ENSURE(SSL_set_tlsext_host_name(c->ssl, sni) == 1, MR_ERR_INTERNAL,
                      "rpc: TLS set-up failed");
        }
    }
    for (;;) {
        int rv = SSL_connect(c->ssl);
        if (rv == 1)
            break;
        if (SSL_get_error(c->ssl, rv) == SSL_ERROR_SSL) {
            long v = SSL_get_verify_result(c->ssl);
            MR_ENSURE(v == X509_V_OK, MR_ERR_AUTH, "rpc: %s:%s: server certificate: %s",
                      t->host, t->port, X509_verify_cert_error_string(v));
        }
        MR_GUARD(ssl_retry(c, rv, deadline_ms));
    }
    const unsigned char *sel = NULL;
    unsigned sl = 0;
    SSL_get0_alpn_selected(c->ssl, &sel, &sl);
    MR_ENSURE(sl == 2 && memcmp(sel, "h2", 2) == 0, MR_ERR_PROTOCOL,
              "rpc: %s:%s did not negotiate HTTP/2", t->host, t->port);
    return MR_SUCCESS;
}

static MR_RESULT h2_start(mr_rpc_conn *c)
{
    nghttp2_session_callbacks *cb = NULL;
    MR_ENSURE(nghttp2_session_callbacks_new(&cb) == 0, MR_ERR_INTERNAL, "out of memory");
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    int rv = nghttp2_session_client_new3(&c->h2, cb, c, NULL, &h2_mem);
    nghttp2_session_callbacks_del(cb);
    MR_ENSURE(rv == 0, MR_ERR_INTERNAL, "out of memory");
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 24}};
    MR_ENSURE(nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) == 0, MR_ERR_INTERNAL,
              "rpc: HTTP/2 settings");
    MR_ENSURE(nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 1 << 26) == 0,
              MR_ERR_INTERNAL, "rpc: HTTP/2 window");
    return MR_SUCCESS;
}

MR_RESULT mr_rpc_connect(const mr_rpc_target *t, uint64_t deadline_ms, mr_rpc_conn **out)
{
    mr_result res = MR_FAILURE;
    mr_rpc_conn *c = mr_calloc(1, sizeof(*c));
    MR_ENSURE_ALLOC(c);
    c->fd = -1;
    *out = NULL;
    MR_ENSURE_OUT(strlen(t->host) < HOST_MAX, MR_ERR_USAGE, "rpc: host name too long");
    bool v6 = strchr(t->host, ':') != NULL;
    (void)snprintf(c->authority, sizeof(c->authority), v6 ? "[%s]:%s" : "%s:%s", t->host, t->port);
    MR_GUARD_OUT(dial(t, deadline_ms, &c->fd));
    c->tls = t->tls != NULL;
    if (c->tls)
        MR_GUARD_OUT(tls_start(c, t, deadline_ms));
    MR_GUARD_OUT(h2_start(c));
    MR_GUARD_OUT(rpc_flush(c, deadline_ms));
    *out = c;
    c = NULL;
    res = MR_SUCCESS;
out:
    mr_rpc_close(c);
    return res;
}

bool mr_rpc_usable(const mr_rpc_conn *c) { return c != NULL && !c->broken && !c->goaway; }

bool mr_rpc_alive(mr_rpc_conn *c)
{
    if (!mr_rpc_usable(c))
        return false;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    bool pending = (c->ssl != NULL && SSL_pending(c->ssl) > 0) || poll(&p, 1, 0) > 0;
    if (pending && !mr_ok(rpc_pump(c, mr_rpc_now_ms())))
        mr_error_clear(); /* pump marked it broken */
    return mr_rpc_usable(c);
}

X509 *mr_rpc_peer_cert(const mr_rpc_conn *c)
{
    return c != NULL && c->ssl != NULL ? SSL_get1_peer_certificate(c->ssl) : NULL;
}

void mr_rpc_close(mr_rpc_conn *c)
{
    if (c == NULL)
        return;
    if (c->h2 != NULL) {
        if (!c->broken && nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR,
                                                NULL, 0) == 0) {
            if (!mr_ok(rpc_flush(c, mr_rpc_now_ms() + 100)))
                mr_error_clear();
        }
        nghttp2_session_del(c->h2);
    }
    if (c->ssl != NULL) {
        if (!c->broken)
            (void)SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    if (c->fd >= 0)
        close(c->fd);
    mr_free(c);
}

/* ---- streams ---- */

static MR_RESULT submit(mr_rpc_conn *c, mr_rpc_stream *s, const char *path, uint64_t deadline_ms)
{
    char timeout[24] = "";
    uint64_t left = deadline_ms > mr_rpc_now_ms() ? deadline_ms - mr_rpc_now_ms() : 1;
    if (deadline_ms != UINT64_MAX)
        (void)snprintf(timeout, sizeof(timeout), "%llum",
                       (unsigned long long)(left > 86400000ull ? 86400000ull : left));
    const char *scheme = c->tls ? "https" : "http";
    nghttp2_nv nva[8];
    size_t n = 0;
#define NV(k, v)                                                                                \
    nva[n++] = (nghttp2_nv){(uint8_t *)(uintptr_t)(k), (uint8_t *)(uintptr_t)(v), strlen(k),   \
                            strlen(v), NGHTTP2_NV_FLAG_NONE}
    NV(":method", "POST");
    NV(":scheme", scheme);
    NV(":path", path);
    NV(":authority", c->authority);
    NV("content-type", "application/grpc");
    NV("te", "trailers");
    NV("user-agent", "marblerun-c");
    if (timeout[0] != '\0')
        NV("grpc-timeout", timeout);
#undef NV
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = rpc_read_out};
    int32_t id = nghttp2_submit_request(c->h2, NULL, nva, n, &dp, s);
    MR_ENSURE(id > 0, MR_ERR_PROTOCOL, "rpc: HTTP/2: %s", nghttp2_strerror(id));
    s->id = id;
    return MR_SUCCESS;
}

void rpc_stream_init(mr_rpc_stream *s, mr_rpc_conn *c, size_t max_msg)
{
    memset(s, 0, sizeof(*s));
    s->conn = c;
    s->grpc_status = -1;
    s->max_msg = max_msg;
    mr_buf_init(&s->in, max_msg + 5 < max_msg ? max_msg : max_msg + 5, MR_BUF_WIPE);
    mr_buf_init(&s->out, 0, MR_BUF_WIPE);
}

void rpc_stream_fini(mr_rpc_stream *s)
{
    if (s->conn != NULL && s->conn->h2 != NULL && s->id > 0)
        nghttp2_session_set_stream_user_data(s->conn->h2, s->id, NULL);
    mr_buf_free(&s->in);
    mr_buf_free(&s->out);
}

/* The outcome of a stream that ended: OK, or the server's status as an error. */
static MR_RESULT ended(const mr_rpc_stream *s, mr_grpc_code *status)
{
    long g = s->grpc_status;
    if (g < 0) {
        /* reset, or an HTTP answer without gRPC trailers (a proxy, a wrong port) */
        g = s->http_status == 200 || s->http_status == 0 ? MR_GRPC_UNAVAILABLE : MR_GRPC_UNKNOWN;
        if (status != NULL)
            *status = (mr_grpc_code)g;
        MR_BAIL(MR_ERR_UNAVAILABLE, "rpc error: code = %s desc = stream closed without status "
                "(HTTP %d, reset %u)", mr_grpc_code_name((int)g), s->http_status, s->rst);
    }
    if (status != NULL)
        *status = g > 16 ? MR_GRPC_UNKNOWN : (mr_grpc_code)g;
    MR_ENSURE(g == MR_GRPC_OK, g == MR_GRPC_UNAVAILABLE || g == MR_GRPC_DEADLINE_EXCEEDED
                                   ? MR_ERR_UNAVAILABLE
                                   : MR_ERR_PROTOCOL,
              "rpc error: code = %s desc = %s", mr_grpc_code_name((int)g), s->grpc_msg);
    return MR_SUCCESS;
}

static void transport_status(mr_grpc_code *status, uint64_t deadline_ms)
{
    if (status != NULL)
        *status = mr_rpc_now_ms() >= deadline_ms ? MR_GRPC_DEADLINE_EXCEEDED : MR_GRPC_UNAVAILABLE;
}

MR_RESULT mr_rpc_call(mr_rpc_conn *c, const char *path, mr_slice req, size_t max_resp,
                      uint64_t deadline_ms, mr_buf *resp, mr_grpc_code *status)
{
    mr_result res = MR_FAILURE;
    mr_rpc_stream s;
    rpc_stream_init(&s, c, max_resp);
    if (status != NULL)
        *status = MR_GRPC_UNAVAILABLE;
    MR_ENSURE_OUT(mr_rpc_usable(c), MR_ERR_UNAVAILABLE, "rpc: connection is not usable");
    MR_GUARD_OUT(mr_grpc_frame_encode(&s.out, req));
    s.end_out = true;
    MR_GUARD_OUT(submit(c, &s, path, deadline_ms));
    while (!s.closed) {
        if (!mr_ok(rpc_pump(c, deadline_ms))) {
            transport_status(status, deadline_ms);
            goto out;
        }
        if (!s.closed && rpc_remaining(deadline_ms) == 0) {
            nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_CANCEL);
            transport_status(status, deadline_ms);
            MR_BAIL_OUT(MR_ERR_UNAVAILABLE, "rpc error: code = DeadlineExceeded desc = context deadline "
                        "exceeded");
        }
    }
    MR_GUARD_OUT(ended(&s, status));
    mr_slice msg;
    mr_grpc_code fc = MR_GRPC_OK;
    MR_GUARD_OUT(mr_grpc_frame_parse(mr_buf_slice(&s.in), max_resp, "response", NULL, &msg, &fc));
    MR_GUARD_OUT(mr_buf_append(resp, msg.ptr, msg.len));
    res = MR_SUCCESS;
out:
    rpc_stream_fini(&s);
    return res;
}

MR_RESULT mr_rpc_stream_open(mr_rpc_conn *c, const char *path, size_t max_msg,
                             mr_rpc_stream **out)
{
    MR_ENSURE(mr_rpc_usable(c), MR_ERR_UNAVAILABLE, "rpc: connection is not usable");
    mr_rpc_stream *s = mr_calloc(1, sizeof(*s));
    MR_ENSURE_ALLOC(s);
    rpc_stream_init(s, c, max_msg);
    if (!mr_ok(submit(c, s, path, UINT64_MAX))) {
        rpc_stream_fini(s);
        mr_free(s);
        return MR_FAILURE;
    }
    *out = s;
    return MR_SUCCESS;
}

MR_RESULT mr_rpc_stream_send(mr_rpc_stream *s, mr_slice msg, uint64_t deadline_ms)
{
    MR_ENSURE(!s->closed, MR_ERR_UNAVAILABLE, "rpc: stream closed");
    MR_GUARD(mr_grpc_frame_encode(&s->out, msg));
    if (s->deferred) {
        s->deferred = false;
        MR_ENSURE(nghttp2_session_resume_data(s->conn->h2, s->id) == 0, MR_ERR_PROTOCOL,
                  "rpc: HTTP/2: cannot resume the stream");
    }
    mr_result r = rpc_flush(s->conn, deadline_ms);
    if (!mr_ok(r))
        s->conn->broken = true;
    return r;
}

/* Takes one complete message off the front of s->in. */
static MR_RESULT take(mr_rpc_stream *s, mr_buf *msg, bool *got)
{
    uint8_t flag = 0;
    uint32_t len = 0;
    *got = false;
    if (!mr_grpc_frame_header(mr_buf_slice(&s->in), &flag, &len) ||
        s->in.len - 5 < (size_t)len)
        return MR_SUCCESS;
    mr_slice m;
    mr_grpc_code code = MR_GRPC_OK;
    MR_GUARD(mr_grpc_frame_parse(MR_SLICE(s->in.data, 5 + (size_t)len), s->max_msg, "response",
                                 NULL, &m, &code));
    MR_GUARD(mr_buf_append(msg, m.ptr, m.len));
    size_t rest = s->in.len - 5 - (size_t)len;
    memmove(s->in.data, s->in.data + 5 + len, rest);
    OPENSSL_cleanse(s->in.data + rest, s->in.len - rest);
    s->in.len = rest;
    *got = true;
    return MR_SUCCESS;
}

MR_RESULT mr_rpc_stream_recv(mr_rpc_stream *s, uint64_t deadline_ms, mr_buf *msg, bool *got,
                             mr_grpc_code *status)
{
    if (status != NULL)
        *status = MR_GRPC_OK;
    for (;;) {
        MR_GUARD(take(s, msg, got));
        if (*got)
            return MR_SUCCESS;
        if (s->closed)
            return ended(s, status);
        if (rpc_remaining(deadline_ms) == 0)
            return MR_SUCCESS;
        if (!mr_ok(rpc_pump(s->conn, deadline_ms))) {
            transport_status(status, UINT64_MAX);
            return MR_FAILURE;
        }
    }
}

void mr_rpc_stream_close(mr_rpc_stream *s)
{
    if (s == NULL)
        return;
    if (!s->closed && s->conn->h2 != NULL && mr_rpc_usable(s->conn)) {
        nghttp2_submit_rst_stream(s->conn->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        if (!mr_ok(rpc_flush(s->conn, mr_rpc_now_ms() + 100)))
            mr_error_clear();
    }
    rpc_stream_fini(s);
    mr_free(s);
}
