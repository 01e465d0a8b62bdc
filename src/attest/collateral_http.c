/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP(S) GET for collateral fetching on libevent's evhttp + bufferevent_openssl. See
 * collateral_http.h for the contract.
 *
 * One call = one private event_base, driven on the calling thread until the request is done
 * or the whole-call deadline (a timer on that base) fires. Nothing is freed from inside a
 * libevent callback: the callbacks only record what happened in the `fetch` context, and the
 * connection (which owns the bufferevent, which owns the SSL) is freed after the loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "attest/collateral_http.h"
#include "common/text.h"

#define MAX_ADDRS 16
#define HOST_MAX 256
#define TARGET_MAX 4096
#define USERINFO_MAX 512

/* The parsed URL. */
typedef struct target {
    bool tls;
    bool host_is_ip;
    int port;
    char host[HOST_MAX];          /* without IPv6 brackets */
    char host_hdr[HOST_MAX + 16]; /* Host: value */
    char path[TARGET_MAX];        /* request target: path[?query] */
    char auth[USERINFO_MAX * 2];  /* "Basic ..." or empty; wiped */
} target;

typedef struct fetch {
    const mr_http_get_opts *o;
    struct event_base *base;
    SSL_CTX *ssl_ctx;
    struct timespec start;
    bool timed_out;
    mr_buf *body;
    /* the current attempt */
    SSL *ssl; /* borrowed: owned by the attempt's bufferevent */
    bool done;
    bool connected;
    bool cb_failed; /* a header callback or the body copy failed; the error is set */
    int err_kind;   /* enum evhttp_request_error, or -1 */
    int status;
} fetch;

/* ---- URL ----------------------------------------------------------------------------- */

/* user[:password] as curl sends it: both parts percent-decoded, "Basic base64(user:pw)". */
static MR_RESULT basic_auth(const char *userinfo, target *t)
{
    mr_result res = MR_FAILURE;
    mr_buf plain;
    size_t len = strlen(userinfo);
    const char *colon = memchr(userinfo, ':', len);
    size_t ulen = colon != NULL ? (size_t)(colon - userinfo) : len;

    /* decoding never lengthens: user + ':' + password + the decoder's NUL fit */
    mr_buf_init(&plain, USERINFO_MAX + 2, MR_BUF_SECRET);
    MR_ENSURE_OUT(len <= USERINFO_MAX, MR_ERR_USAGE, "user information in the URL is too long");
    MR_GUARD_OUT(mr_percent_decode(userinfo, ulen, 0, &plain));
    MR_GUARD_OUT(mr_buf_append_u8(&plain, ':'));
    if (colon != NULL)
        MR_GUARD_OUT(mr_percent_decode(colon + 1, len - ulen - 1, 0, &plain));
    memcpy(t->auth, "Basic ", 6);
    /* 4 * ceil(513 / 3) + 1 = 689 bytes fit after the prefix */
    EVP_EncodeBlock((unsigned char *)t->auth + 6, plain.data, (int)plain.len);
    res = MR_SUCCESS;
out:
    mr_buf_free(&plain);
    return res;
}

static MR_RESULT parse_url(const char *url, target *t)
{
    mr_result res = MR_FAILURE;
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, 0);
    const char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *ui = NULL;
    size_t hl = 0;
    int n = 0;
    bool v6 = false;
    char port_sfx[8] = "";
    unsigned char ip[16];

    memset(t, 0, sizeof(*t));
    MR_ENSURE_OUT(u != NULL, MR_ERR_USAGE, "malformed URL");
    scheme = evhttp_uri_get_scheme(u);
    host = evhttp_uri_get_host(u);
    MR_ENSURE_OUT(scheme != NULL &&
                      (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0),
                  MR_ERR_USAGE, "only http:// and https:// URLs are supported");
    t->tls = strcasecmp(scheme, "https") == 0;
    MR_ENSURE_OUT(host != NULL && host[0] != '\0', MR_ERR_USAGE, "URL without a host");
    hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host++;
        hl -= 2;
    }
    MR_ENSURE_OUT(hl < sizeof(t->host), MR_ERR_USAGE, "URL host name too long");
    memcpy(t->host, host, hl);
    t->host[hl] = '\0';
    t->host_is_ip = inet_pton(AF_INET, t->host, ip) == 1 || inet_pton(AF_INET6, t->host, ip) == 1;
    t->port = evhttp_uri_get_port(u);
    if (t->port == -1)
        t->port = t->tls ? 443 : 80;
    MR_ENSURE_OUT(t->port > 0 && t->port <= 65535, MR_ERR_USAGE, "URL with an invalid port");
    if (t->port != (t->tls ? 443 : 80))
        snprintf(port_sfx, sizeof(port_sfx), ":%d", t->port);
    v6 = strchr(t->host, ':') != NULL;
    snprintf(t->host_hdr, sizeof(t->host_hdr), "%s%s%s%s", v6 ? "[" : "", t->host, v6 ? "]" : "",
             port_sfx);
    path = evhttp_uri_get_path(u);
    query = evhttp_uri_get_query(u);
    n = snprintf(t->path, sizeof(t->path), "%s%s%s", path != NULL && path[0] != '\0' ? path : "/",
                 query != NULL ? "?" : "", query != NULL ? query : "");
    MR_ENSURE_OUT(n > 0 && (size_t)n < sizeof(t->path), MR_ERR_USAGE, "URL too long");
    ui = evhttp_uri_get_userinfo(u);
    if (ui != NULL)
        MR_GUARD_OUT(basic_auth(ui, t));
    res = MR_SUCCESS;
out:
    if (u != NULL)
        evhttp_uri_free(u);
    return res;
}

/* ---- time, signals ------------------------------------------------------------------- */

static unsigned elapsed_ms(const fetch *f)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(now.tv_sec - f->start.tv_sec) * 1000 +
                   (now.tv_nsec - f->start.tv_nsec) / 1000000;
    return ms < 0 ? 0 : (unsigned)ms;
}

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

typedef struct sigpipe_guard {
    sigset_t old;
    bool pending_before;
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g)
{
    sigset_t s, p;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigemptyset(&p);
    g->pending_before = sigpending(&p) == 0 && sigismember(&p, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &s, &g->old);
}

/* Consumes a SIGPIPE raised by this call's writes, then restores the mask. */
static void sigpipe_restore(const sigpipe_guard *g)
{
    sigset_t s, p;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigemptyset(&p);
    if (!g->pending_before && sigpending(&p) == 0 && sigismember(&p, SIGPIPE) == 1) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&s, NULL, &zero) == -1 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- TLS ----------------------------------------------------------------------------- */

static MR_RESULT make_ssl_ctx(const mr_http_get_opts *o, SSL_CTX **out)
{
    mr_result res = MR_FAILURE;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    MR_ENSURE_OUT(ctx != NULL, MR_ERR_INTERNAL, "out of memory");
    MR_GUARD_OSSL_OUT(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), MR_ERR_INTERNAL,
                      "TLS set-up failed");
    if (o->verify_tls) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        MR_GUARD_OSSL_OUT(
            X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN),
            MR_ERR_INTERNAL, "TLS set-up failed");
        if (o->ca_file != NULL) {
            MR_GUARD_OSSL_OUT(SSL_CTX_load_verify_file(ctx, o->ca_file), MR_ERR_IO,
                              "cannot load the CA certificates %s", o->ca_file);
        } else {
            MR_GUARD_OSSL_OUT(SSL_CTX_load_verify_file(ctx, MR_HTTP_CA_FILE), MR_ERR_IO,
                              "cannot load the system CA certificates %s", MR_HTTP_CA_FILE);
            MR_GUARD_OSSL_OUT(SSL_CTX_load_verify_dir(ctx, MR_HTTP_CA_DIR), MR_ERR_IO,
                              "cannot use the system CA directory %s", MR_HTTP_CA_DIR);
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    *out = ctx;
    ctx = NULL;
    res = MR_SUCCESS;
out:
    SSL_CTX_free(ctx);
    return res;
}

static MR_RESULT make_ssl(const fetch *f, const target *t, SSL **out)
{
    mr_result res = MR_FAILURE;
    SSL *ssl = SSL_new(f->ssl_ctx);
    char sni[HOST_MAX]; /* the macro below takes a non-const pointer */

    MR_ENSURE_OUT(ssl != NULL, MR_ERR_INTERNAL, "out of memory");
    snprintf(sni, sizeof(sni), "%s", t->host);
    if (!t->host_is_ip)
        MR_GUARD_OSSL_OUT((int)SSL_set_tlsext_host_name(ssl, sni), MR_ERR_USAGE,
                          "host name %s cannot be sent as TLS server name", t->host);
    if (f->o->verify_tls) {
        if (t->host_is_ip) {
            MR_GUARD_OSSL_OUT(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->host),
                              MR_ERR_INTERNAL, "TLS set-up failed");
        } else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            MR_GUARD_OSSL_OUT(SSL_set1_host(ssl, t->host), MR_ERR_INTERNAL, "TLS set-up failed");
        }
    }
    *out = ssl;
    ssl = NULL;
    res = MR_SUCCESS;
out:
    SSL_free(ssl);
    return res;
}

/* ---- libevent callbacks (record only) ------------------------------------------------- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    fetch *f = arg;
    (void)fd;
    (void)what;
    f->timed_out = true;
    event_base_loopbreak(f->base);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    fetch *f = arg;
    (void)evcon;
    f->connected = true;
}

static void on_error(enum evhttp_request_error e, void *arg)
{
    fetch *f = arg;
    f->err_kind = (int)e;
}

static MR_RESULT copy_body(fetch *f, struct evbuffer *in)
{
    uint8_t chunk[16384];
    int n = 0;

    MR_ENSURE(evbuffer_get_length(in) <= f->o->max_body, MR_ERR_IO,
              "response body larger than %zu bytes", f->o->max_body);
    while ((n = evbuffer_remove(in, chunk, sizeof(chunk))) > 0)
        MR_GUARD(mr_buf_append(f->body, chunk, (size_t)n));
    return MR_SUCCESS;
}

/* The request finished: with a response (req with a status), or without one (req NULL, or a
 * status of 0 when the connection could not be made). libevent frees req afterwards. */
static void on_done(struct evhttp_request *req, void *arg)
{
    fetch *f = arg;
    const struct evkeyvalq *h = NULL;
    int code = 0;

    f->done = true;
    if (req == NULL || (code = evhttp_request_get_response_code(req)) <= 0)
        return;
    f->connected = true;
    h = evhttp_request_get_input_headers(req);
    for (const struct evkeyval *kv = h->tqh_first; kv != NULL && f->o->on_header != NULL;
         kv = kv->next.tqe_next) {
        if (!mr_ok(f->o->on_header(f->o->arg, kv->key, kv->value))) {
            f->cb_failed = true;
            return;
        }
    }
    if (!mr_ok(copy_body(f, evhttp_request_get_input_buffer(req)))) {
        f->cb_failed = true;
        return;
    }
    f->status = code;
}

/* ---- one connection attempt ----------------------------------------------------------- */

/* Why an attempt without a response failed (always fails); *next when the next address may
 * be tried. */
static MR_RESULT attempt_error(const fetch *f, struct evhttp_connection *evcon, const char *addr,
                               int port, bool *next)
{
    const mr_http_get_opts *o = f->o;
    long v = f->ssl != NULL ? SSL_get_verify_result(f->ssl) : X509_V_OK;
    unsigned long e = 0, tls_err = 0;
    const char *why = NULL;

    /* The bufferevent keeps SSL_get_error()'s code (a small number) and then the OpenSSL
     * error queue, and hands them out last first: keep the earliest queued error. A bare
     * SSL_ERROR_SYSCALL is a socket error (e.g. connection refused), not a TLS one. */
    if (f->ssl != NULL) {
        while ((e = bufferevent_get_openssl_error(evhttp_connection_get_bufferevent(evcon))) !=
               0) {
            if (ERR_GET_LIB(e) != 0)
                tls_err = e;
        }
    }
    MR_ENSURE(v == X509_V_OK, MR_ERR_IO, "TLS: the server certificate was not accepted: %s",
              X509_verify_cert_error_string(v));
    why = tls_err != 0 ? ERR_reason_error_string(tls_err) : NULL;
    MR_ENSURE(tls_err == 0, MR_ERR_IO, "TLS handshake with %s port %d failed: %s", addr, port,
              why != NULL ? why : "unknown error");
    MR_ENSURE(f->err_kind != EVREQ_HTTP_DATA_TOO_LONG, MR_ERR_IO,
              "response body larger than %zu bytes, or malformed", o->max_body);
    MR_ENSURE(f->err_kind != EVREQ_HTTP_INVALID_HEADER, MR_ERR_IO,
              "malformed HTTP response, or its headers are larger than %zu bytes", o->max_headers);
    MR_ENSURE(f->err_kind != EVREQ_HTTP_TIMEOUT, MR_ERR_IO,
              "no data from %s port %d within the timeout", addr, port);
    MR_ENSURE(!f->connected, MR_ERR_IO,
              "%s port %d closed the connection before a complete response", addr, port);
    *next = true;
    MR_BAIL(MR_ERR_IO, "cannot connect to %s port %d", addr, port);
}

/* Runs what a freed connection left queued. Deferred bufferevent callbacks (an event that
 * arrived with the last bytes, say) hold a reference on the bufferevent; event_base_free
 * would drop them unrun, and the bufferevent, its SSL and the SSL_CTX would leak. */
static void drain(struct event_base *base)
{
    for (int i = 0; i < 32 && event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) > 0; i++)
        if (event_base_loop(base, EVLOOP_NONBLOCK) < 0)
            break;
}

static MR_RESULT attempt(fetch *f, const target *t, const char *addr, int family,
                         unsigned budget_ms, bool *next)
{
    mr_result res = MR_FAILURE;
    SSL *ssl = NULL;
    struct bufferevent *bev = NULL;
    struct evhttp_connection *evcon = NULL;
    struct evhttp_request *req = NULL;
    struct evkeyvalq *hdrs = NULL;
    struct timeval tv = ms_tv(budget_ms);

    *next = false;
    f->done = f->connected = f->cb_failed = false;
    f->err_kind = -1;
    f->status = 0;
    f->ssl = NULL;
    mr_buf_reset(f->body);

    if (t->tls) {
        MR_GUARD_OUT(make_ssl(f, t, &ssl));
        bev = bufferevent_openssl_socket_new(f->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        /* The bufferevent frees the SSL; when it could not be made, libevent may have freed
         * it already (depending on where it failed): leaking it beats a double free. */
        f->ssl = bev != NULL ? ssl : NULL;
        ssl = NULL;
        MR_ENSURE_ALLOC_OUT(bev);
    } else {
        bev = bufferevent_socket_new(f->base, -1, BEV_OPT_CLOSE_ON_FREE);
        MR_ENSURE_ALLOC_OUT(bev);
    }
    evcon = evhttp_connection_base_bufferevent_new(f->base, NULL, bev, addr,
                                                   (unsigned short)t->port);
    MR_ENSURE_ALLOC_OUT(evcon);
    bev = NULL; /* the connection frees it */
    evhttp_connection_set_family(evcon, family);
    evhttp_connection_set_retries(evcon, 0);
    evhttp_connection_set_timeout_tv(evcon, &tv);
    evhttp_connection_set_max_headers_size(evcon, (ev_ssize_t)f->o->max_headers);
    evhttp_connection_set_max_body_size(evcon, (ev_ssize_t)f->o->max_body);
    evhttp_connection_set_closecb(evcon, on_close, f);

    req = evhttp_request_new(on_done, f);
    MR_ENSURE_ALLOC_OUT(req);
    evhttp_request_set_error_cb(req, on_error);
    hdrs = evhttp_request_get_output_headers(req);
    MR_ENSURE_OUT(evhttp_add_header(hdrs, "Host", t->host_hdr) == 0 &&
                      evhttp_add_header(hdrs, "Accept", "*/*") == 0 &&
                      evhttp_add_header(hdrs, "Connection", "close") == 0 &&
                      (t->auth[0] == '\0' || evhttp_add_header(hdrs, "Authorization", t->auth) == 0),
                  MR_ERR_USAGE, "the request headers cannot be made from the URL");
    /* From here the connection owns the request (also when this fails). */
    if (evhttp_make_request(evcon, req, EVHTTP_REQ_GET, t->path) != 0) {
        req = NULL;
        MR_BAIL_OUT(MR_ERR_INTERNAL, "cannot start the HTTP request");
    }
    req = NULL;
    /* A connection that fails at once completes the request inside evhttp_make_request. */
    while (!f->done && !f->timed_out)
        MR_ENSURE_OUT(event_base_loop(f->base, EVLOOP_ONCE) == 0, MR_ERR_INTERNAL,
                      "HTTP event loop failed");
    if (f->timed_out)
        MR_BAIL_OUT(MR_ERR_IO, "timed out after %u ms", f->o->timeout_ms);
    if (f->cb_failed)
        goto out;
    if (f->status <= 0)
        MR_GUARD_OUT(attempt_error(f, evcon, addr, t->port, next));
    res = MR_SUCCESS;
out:
    if (req != NULL)
        evhttp_request_free(req);
    if (evcon != NULL)
        evhttp_connection_free(evcon); /* also a request still in flight, without callbacks */
    if (bev != NULL)
        bufferevent_free(bev);
    SSL_free(ssl);
    f->ssl = NULL;
    drain(f->base);
    return res;
}

/* ---- the call ------------------------------------------------------------------------- */

typedef struct addr_list {
    size_t n;
    int family[MAX_ADDRS];
    char text[MAX_ADDRS][NI_MAXHOST];
} addr_list;

static MR_RESULT resolve(const target *t, addr_list *out)
{
    struct addrinfo hints, *ai = NULL;
    char port[8];
    int rc = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = t->host_is_ip ? AI_NUMERICHOST : 0;
    snprintf(port, sizeof(port), "%d", t->port);
    out->n = 0;
    rc = getaddrinfo(t->host, port, &hints, &ai);
    MR_ENSURE(rc == 0, MR_ERR_IO, "cannot resolve host %s: %s", t->host,
              rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    for (const struct addrinfo *p = ai; p != NULL && out->n < MAX_ADDRS; p = p->ai_next) {
        if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) ||
            getnameinfo(p->ai_addr, p->ai_addrlen, out->text[out->n], NI_MAXHOST, NULL, 0,
                        NI_NUMERICHOST) != 0)
            continue;
        out->family[out->n++] = p->ai_family;
    }
    freeaddrinfo(ai);
    MR_ENSURE(out->n > 0, MR_ERR_IO, "cannot resolve host %s: no IPv4 or IPv6 address", t->host);
    return MR_SUCCESS;
}

/* Tries the addresses in order; each attempt gets at most connect_timeout_ms, and a share of
 * the time left so that later addresses keep some. */
static MR_RESULT try_addrs(fetch *f, const target *t, const addr_list *al, unsigned *attempts)
{
    const mr_http_get_opts *o = f->o;
    unsigned connect_ms = o->connect_timeout_ms != 0 ? o->connect_timeout_ms : o->timeout_ms;
    bool next = false;

    MR_ENSURE(al->n > 0, MR_ERR_INTERNAL, "internal error: no address to connect to");
    for (size_t i = 0; i < al->n; i++) {
        unsigned spent = elapsed_ms(f), budget = 0;
        MR_ENSURE(spent < o->timeout_ms, MR_ERR_IO, "timed out after %u ms", o->timeout_ms);
        budget = (unsigned)((o->timeout_ms - spent) / (al->n - i));
        if (budget > connect_ms)
            budget = connect_ms;
        if (budget == 0)
            budget = 1;
        (*attempts)++;
        if (mr_ok(attempt(f, t, al->text[i], al->family[i], budget, &next)))
            return MR_SUCCESS;
        if (!next)
            break;
    }
    return MR_FAILURE;
}

/* mr_http_get; with fixed != NULL, those addresses instead of the host's (tests). */
static MR_RESULT http_get(const mr_http_get_opts *o, const char *url, const addr_list *fixed,
                          int *status, mr_buf *body, unsigned *attempts)
{
    mr_result res = MR_FAILURE;
    fetch f;
    target t;
    addr_list al;
    struct event *deadline = NULL;
    struct timeval total = ms_tv(o->timeout_ms);
    sigpipe_guard sg;

    memset(&f, 0, sizeof(f));
    memset(&t, 0, sizeof(t));
    f.o = o;
    f.body = body;
    *status = 0;
    *attempts = 0;
    sigpipe_block(&sg);
    MR_ENSURE_OUT(o->timeout_ms > 0 && o->max_headers > 0 && o->max_body > 0 &&
                      o->max_body <= (size_t)EV_SSIZE_MAX && o->max_headers <= (size_t)EV_SSIZE_MAX,
                  MR_ERR_INTERNAL, "internal error: HTTP limits not set");
    MR_GUARD_OUT(parse_url(url, &t));
    clock_gettime(CLOCK_MONOTONIC, &f.start);
    f.base = event_base_new();
    MR_ENSURE_ALLOC_OUT(f.base);
    deadline = evtimer_new(f.base, on_deadline, &f);
    MR_ENSURE_ALLOC_OUT(deadline);
    MR_ENSURE_OUT(evtimer_add(deadline, &total) == 0, MR_ERR_INTERNAL, "cannot arm the timeout");
    if (t.tls)
        MR_GUARD_OUT(make_ssl_ctx(o, &f.ssl_ctx));
    if (fixed == NULL)
        MR_GUARD_OUT(resolve(&t, &al));
    MR_GUARD_OUT(try_addrs(&f, &t, fixed != NULL ? fixed : &al, attempts));
    *status = f.status;
    res = MR_SUCCESS;
out:
    if (deadline != NULL)
        event_free(deadline);
    if (f.base != NULL)
        event_base_free(f.base);
    SSL_CTX_free(f.ssl_ctx);
    ERR_clear_error();
    OPENSSL_cleanse(&t, sizeof(t));
    sigpipe_restore(&sg);
    return res;
}

MR_RESULT mr_http_get(const mr_http_get_opts *o, const char *url, int *status, mr_buf *body)
{
    unsigned attempts = 0;
    return http_get(o, url, NULL, status, body, &attempts);
}
