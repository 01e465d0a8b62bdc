/* SPDX-License-Identifier: Apache-2.0 */
/* HTTPS for marblerun-injector: evhttp over bufferevent_openssl, certificate reload. */
#include "injector/server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/buf.h"

typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    bool ok;
} file_id;

struct mr_injector_server {
    const mr_injector_cfg *cfg;
    const mr_injector_server_opts *opts;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    struct event *sigterm, *sigint;
    SSL_CTX *ctx;        /* the pair in use */
    file_id cert_id, key_id;
};

static file_id identify(const char *path)
{
    struct stat st;
    file_id id = {0};
    if (stat(path, &st) == 0) {
        id = (file_id){.dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
                       .mtime = st.st_mtim, .ok = true};
    }
    return id;
}

static bool same_id(const file_id *a, const file_id *b)
{
    return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void tls_info(const SSL *ssl, int where, int ret)
{
    if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE)) {
        mr_injector_server *s = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
        if (s != NULL && mr_log_enabled(s->opts->http_error_level))
            mr_log_(s->opts->http_error_level, __FILE__, __LINE__, "http: TLS handshake error",
                    MR_F_STR("alert", SSL_alert_desc_string_long(ret)), MR_F_END);
    }
}

static MR_RESULT load_pair(mr_injector_server *s, SSL_CTX **out)
{
    mr_result res = MR_FAILURE;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    MR_ENSURE_OSSL_OUT(ctx != NULL, MR_ERR_INTERNAL, "creating the TLS context");
    MR_GUARD_OSSL_OUT(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), MR_ERR_INTERNAL,
                      "setting the TLS version");
    MR_GUARD_OSSL_OUT(SSL_CTX_use_certificate_chain_file(ctx, s->opts->cert_file), MR_ERR_IO,
                      "loading certificate %s", s->opts->cert_file);
    MR_GUARD_OSSL_OUT(SSL_CTX_use_PrivateKey_file(ctx, s->opts->key_file, SSL_FILETYPE_PEM),
                      MR_ERR_IO, "loading key %s", s->opts->key_file);
    MR_GUARD_OSSL_OUT(SSL_CTX_check_private_key(ctx), MR_ERR_USAGE,
                      "the key %s does not match the certificate", s->opts->key_file);
    SSL_CTX_set_app_data(ctx, s);
    SSL_CTX_set_info_callback(ctx, tls_info);
    *out = ctx;
    ctx = NULL;
    res = MR_SUCCESS;
out:
    SSL_CTX_free(ctx);
    return res;
}

/* Re-reads the pair when a file changed since it was loaded; keeps the old one on failure. */
static void refresh_pair(mr_injector_server *s)
{
    file_id c = identify(s->opts->cert_file), k = identify(s->opts->key_file);
    if (same_id(&c, &s->cert_id) && same_id(&k, &s->key_id))
        return;
    SSL_CTX *fresh = NULL;
    if (!mr_ok(load_pair(s, &fresh))) {
        MR_LOG_ERROR("Reloading the webhook certificate failed, keeping the previous one",
                     MR_F_ERR());
        return; /* retried on the next handshake */
    }
    SSL_CTX_free(s->ctx);
    s->ctx = fresh;
    s->cert_id = c;
    s->key_id = k;
    MR_LOG_INFO("Loaded the webhook certificate", MR_F_STR("cert", s->opts->cert_file));
}

static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
    mr_injector_server *s = arg;
    refresh_pair(s);
    SSL *ssl = SSL_new(s->ctx); /* holds its own reference to the context */
    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                  const void *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(h, "Content-Type", ctype);
    if (strncmp(ctype, "text/plain", 10) == 0)
        evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (b != NULL && len > 0)
        evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, reason, b);
    if (b != NULL)
        evbuffer_free(b);
}

/* Go's http.Error: text/plain, the message and a newline. */
static void http_error(struct evhttp_request *req, int code, const char *reason, const char *msg)
{
    char line[MR_ERR_MSG_MAX + 64];
    int n = snprintf(line, sizeof(line), "%s\n", msg);
    size_t len = n < 0 ? 0 : ((size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n);
    reply(req, code, reason, "text/plain; charset=utf-8", line, len); /* logged text; a cut is fine */
}

static void handle_mutate(mr_injector_server *s, struct evhttp_request *req)
{
    MR_LOG_INFO("Handling mutate request, injecting sgx tolerations");
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        http_error(req, 400, "Bad Request", "unable to handle requests other than POST");
        return;
    }
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    if (ct == NULL || strcmp(ct, "application/json") != 0) {
        http_error(req, 400, "Bad Request", "wrong application type");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const uint8_t *body = evbuffer_pullup(in, -1);
    mr_buf out;
    mr_buf_init(&out, MR_INJECTOR_BODY_MAX * 2, 0);
    if (mr_ok(mr_injector_review(s->cfg, body ? body : (const uint8_t *)"", len, &out))) {
        reply(req, 200, "OK", "application/json", out.data, out.len);
    } else {
        char msg[MR_ERR_MSG_MAX + 32];
        (void)snprintf(msg, sizeof(msg), "unable to mutate request: %s", mr_error_get()->msg);
        MR_LOG_ERROR("Unable to mutate request", MR_F_ERR());
        http_error(req, 500, "Internal Server Error", msg);
    }
    mr_buf_free(&out);
}

static void handle(struct evhttp_request *req, void *arg)
{
    mr_injector_server *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path != NULL && strcmp(path, "/mutate") == 0)
        handle_mutate(s, req);
    else if (path != NULL && strcmp(path, "/healthz") == 0)
        reply(req, 200, "OK", "text/plain; charset=utf-8", NULL, 0);
    else
        http_error(req, 404, "Not Found", "404 page not found");
}

/* "host:port", ":port", "[v6]:port" -> host (0.0.0.0 when empty) and port. */
static MR_RESULT split_addr(const char *addr, char *host, size_t host_len, unsigned short *port)
{
    const char *colon = strrchr(addr, ':');
    MR_ENSURE(colon != NULL, MR_ERR_USAGE, "listen address %s: missing port", addr);
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0) {
        h = "0.0.0.0";
        hl = 7;
    }
    MR_ENSURE(hl < host_len, MR_ERR_USAGE, "listen address %s: host too long", addr);
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end = NULL;
    unsigned long p = strtoul(colon + 1, &end, 10);
    MR_ENSURE(colon[1] != '\0' && end != NULL && *end == '\0' && p <= 65535, MR_ERR_USAGE,
              "listen address %s: invalid port", addr);
    *port = (unsigned short)p;
    return MR_SUCCESS;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    mr_injector_server *s = arg;
    MR_LOG_INFO("Shutting down");
    event_base_loopbreak(s->base);
}

static MR_RESULT setup_http(mr_injector_server *s)
{
    char host[256];
    unsigned short port = 0;
    MR_GUARD(split_addr(s->opts->addr, host, sizeof(host), &port));
    s->http = evhttp_new(s->base);
    MR_ENSURE_ALLOC(s->http);
    evhttp_set_bevcb(s->http, new_conn, s);
    evhttp_set_gencb(s->http, handle, s);
    evhttp_set_max_body_size(s->http, (ev_ssize_t)MR_INJECTOR_BODY_MAX);
    evhttp_set_max_headers_size(s->http, 64 * 1024);
    evhttp_set_timeout(s->http, 30);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
    s->sock = evhttp_bind_socket_with_handle(s->http, host, port);
    MR_ENSURE(s->sock != NULL, MR_ERR_IO, "listen tcp %s: cannot bind", s->opts->addr);
    s->sigterm = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sigint = evsignal_new(s->base, SIGINT, on_signal, s);
    MR_ENSURE(s->sigterm && s->sigint && evsignal_add(s->sigterm, NULL) == 0 &&
                  evsignal_add(s->sigint, NULL) == 0,
              MR_ERR_INTERNAL, "installing signal handlers");
    return MR_SUCCESS;
}

MR_RESULT mr_injector_server_new(const mr_injector_cfg *cfg, const mr_injector_server_opts *opts,
                                 mr_injector_server **out)
{
    mr_result res = MR_FAILURE;
    mr_injector_server *s = mr_calloc(1, sizeof(*s));
    MR_ENSURE_ALLOC_OUT(s);
    s->cfg = cfg;
    s->opts = opts;
    /* A peer that closes mid-answer must not end the process (OpenSSL writes with write()). */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        MR_LOG_WARN("cannot ignore SIGPIPE");
    s->cert_id = identify(opts->cert_file);
    s->key_id = identify(opts->key_file);
    MR_GUARD_OUT(load_pair(s, &s->ctx));
    s->base = event_base_new();
    MR_ENSURE_ALLOC_OUT(s->base);
    MR_GUARD_OUT(setup_http(s));
    *out = s;
    s = NULL;
    res = MR_SUCCESS;
out:
    mr_injector_server_free(s);
    return res;
}

MR_RESULT mr_injector_server_run(mr_injector_server *s)
{
    MR_ENSURE(event_base_dispatch(s->base) >= 0, MR_ERR_INTERNAL, "event loop failed");
    return MR_SUCCESS;
}

int mr_injector_server_port(const mr_injector_server *s)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof(ss);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s->sock);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 a6;
        memcpy(&a6, &ss, sizeof(a6));
        return ntohs(a6.sin6_port);
    }
    struct sockaddr_in a4;
    memcpy(&a4, &ss, sizeof(a4));
    return ntohs(a4.sin_port);
}

void mr_injector_server_free(mr_injector_server *s)
{
    if (s == NULL)
        return;
    if (s->sigterm)
        event_free(s->sigterm);
    if (s->sigint)
        event_free(s->sigint);
    if (s->http)
        evhttp_free(s->http);
    if (s->base)
        event_base_free(s->base);
    SSL_CTX_free(s->ctx);
    mr_free(s);
}
