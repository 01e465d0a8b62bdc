/* SPDX-License-Identifier: Apache-2.0 */
/* Connections: TLS handshake outcome, HTTP/1.1 request reading, timeouts, closing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"
#include "coordinator/server/internal.h"

#define OUT_HIGH_WATER ((size_t)1 << 20)
#define LINGER_MS 2000
#define DISCARD_MAX ((uint64_t)64 << 20)

static void arm(mr_srv_conn *c, unsigned ms)
{
    if (c->timer == NULL)
        return;
    struct timeval tv = mr_srv_tv(ms);
    evtimer_add(c->timer, &tv);
}

static void disarm(mr_srv_conn *c)
{
    if (c->timer != NULL)
        evtimer_del(c->timer);
}

static void set_reading(mr_srv_conn *c, bool on)
{
    if (c->bev == NULL)
        return;
    if (on)
        bufferevent_enable(c->bev, EV_READ);
    else
        bufferevent_disable(c->bev, EV_READ);
}

/* Drops the protocol state; requests a handler still owns are detached. */
static void teardown(mr_srv_conn *c)
{
    c->closed = true;
    if (c->h1_req != NULL) {
        if (c->h1_req->dispatched) {
            c->h1_req->conn = NULL; /* the handler still owns it */
            atomic_store(&c->h1_req->abandoned, true);
        } else
            mr_srv_request_free(c->h1_req);
        c->h1_req = NULL;
    }
    mr_srv_h2_free(c);
    mr_h1_head_free(&c->head);
}

static void release(mr_srv_conn *c)
{
    mr_srv *s = c->srv;
    mr_srv_conn_uncount(c);
    if (c->timer != NULL)
        event_free(c->timer);
    mr_buf_free(&c->leaf);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    mr_free(c);
    mr_srv_conn_gone(s);
}

void mr_srv_conn_close(mr_srv_conn *c)
{
    if (c == NULL || c->closed)
        return;
    teardown(c);
    if (!c->virtual_conn) /* their owner frees virtual connections (mr_srv_conn_free_virtual) */
        release(c);
}

mr_srv_conn *mr_srv_conn_new_virtual(mr_srv *s, int listener, mr_srv_proto proto)
{
    if (listener < 0 || (size_t)listener >= s->nlst)
        return NULL;
    mr_srv_conn *c = mr_srv_conn_new(s, s->lst[listener], NULL);
    if (c == NULL)
        return NULL;
    c->virtual_conn = true;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    if (c->in == NULL || c->out == NULL || !mr_ok(mr_srv_conn_start(c, proto)))
        teardown(c);
    return c;
}

void mr_srv_conn_free_virtual(mr_srv_conn *c)
{
    if (c == NULL)
        return;
    if (!c->closed)
        teardown(c);
    if (c->in != NULL)
        evbuffer_free(c->in);
    if (c->out != NULL)
        evbuffer_free(c->out);
    release(c);
}

/* The JSend error answer of early_response, serialised into out. */
static MR_RESULT early_answer(mr_srv_request *r, int status, const char *msg, struct evbuffer *out)
{
    r->status = status;
    MR_GUARD(mr_srv_jsend_error(&r->resp_body, msg));
    MR_GUARD(mr_srv_resp_header(r, "content-type", "text/plain; charset=utf-8"));
    MR_GUARD(mr_srv_resp_header(r, "x-content-type-options", "nosniff"));
    return mr_srv_h1_serialize(r, false, false, out);
}

/* Sends a response the server itself decided on (no handler) and finishes the exchange. */
static void early_response(mr_srv_conn *c, int status, const char *msg, uint64_t discard)
{
    mr_srv_request *r = mr_srv_request_new(c->srv, c);
    bool ok = r != NULL && mr_ok(early_answer(r, status, msg, c->out));
    mr_srv_request_free(r);
    if (c->h1_req != NULL) {
        mr_srv_request_free(c->h1_req);
        c->h1_req = NULL;
    }
    if (!ok) {
        mr_srv_conn_close(c);
        return;
    }
    c->keep_alive = false;
    c->discard_left = discard > DISCARD_MAX ? DISCARD_MAX : discard;
    c->state = CONN_H1_DISCARD;
    arm(c, LINGER_MS);
    set_reading(c, true);
    if (c->bev == NULL)
        mr_srv_conn_close(c);
}

static MR_RESULT build_request(mr_srv_conn *c, mr_srv_request *r)
{
    r->proto = MR_SRV_PROTO_HTTP1;
    r->method = c->head.method;
    r->target = c->head.target;
    r->hdrs = c->head.hdrs;
    c->head.method = NULL;
    c->head.target = NULL;
    memset(&c->head.hdrs, 0, sizeof(c->head.hdrs));
    return mr_srv_request_take_target(r, c);
}

static void h1_request_done(mr_srv_conn *c)
{
    mr_srv_request *r = c->h1_req;
    c->state = CONN_H1_WAIT;
    disarm(c);
    set_reading(c, false);
    r->req_size += r->body.len;
    mr_srv_dispatch(r);
}

static void drain_withheld(mr_srv_conn *c);

/* The route's precheck declined the body: the handler runs now with none, and the body is
 * read and dropped while it works; the connection closes after the answer. */
static void withhold_body(mr_srv_conn *c, mr_srv_request *r, bool chunked, int64_t cl)
{
    r->withheld = true;
    c->keep_alive = false;
    c->discard_left = chunked ? DISCARD_MAX : (uint64_t)cl;
    h1_request_done(c);
    if (!c->closed && c->state == CONN_H1_WAIT && c->h1_req == r) {
        set_reading(c, true);
        drain_withheld(c);
    }
}

static void start_body(mr_srv_conn *c, size_t head_len)
{
    mr_srv *s = c->srv;
    mr_srv_request *r = mr_srv_request_new(s, c);
    if (r == NULL) {
        early_response(c, 500, "out of memory", 0);
        return;
    }
    mr_srv_idle_leave(c);
    c->h1_req = r;
    bool chunked = c->head.chunked;
    int64_t cl = c->head.content_length;
    c->keep_alive = c->head.keep_alive && !s->stopping;
    bool expect = c->head.expect_continue;
    r->http10 = c->head.minor == 0;
    if (!mr_ok(build_request(c, r))) {
        early_response(c, mr_error_get()->cat == MR_ERR_INTERNAL ? 500 : 400,
                       mr_error_get()->msg, 0);
        return;
    }
    mr_h1_head_free(&c->head);
    r->req_size = head_len;
    r->head_only = strcmp(r->method, "HEAD") == 0;
    size_t max = 0;
    bool take = mr_srv_body_policy(r, chunked ? -1 : (cl > 0 ? cl : 0), &max);
    if ((chunked || cl > 0) && !take) {
        withhold_body(c, r, chunked, cl);
        return;
    }
    if (cl > 0 && (uint64_t)cl > max) {
        early_response(c, 413, "request body too large", (uint64_t)cl);
        return;
    }
    mr_buf_init(&r->body, max, MR_BUF_WIPE);
    if (!chunked && cl > 0 && !mr_srv_body_reserve(r, (size_t)cl)) {
        early_response(c, 503, MR_SRV_BUDGET_TEXT, (uint64_t)cl);
        return;
    }
    c->body_left = chunked ? -1 : (cl > 0 ? cl : 0);
    memset(&c->chunk, 0, sizeof(c->chunk));
    if (expect && c->body_left != 0)
        evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->state = CONN_H1_BODY;
    arm(c, s->limits.body_timeout_ms);
}

/* Tries to read a request head. Returns true when progress was made. */
static bool h1_head_step(mr_srv_conn *c)
{
    mr_srv *s = c->srv;
    size_t avail = evbuffer_get_length(c->in);
    if (avail == 0)
        return false;
    mr_srv_conn_started(c); /* plain listeners: the first bytes of the first request */
    if (c->timer_is_idle) {
        c->timer_is_idle = false;
        arm(c, s->limits.header_timeout_ms);
    }
    size_t want = avail < s->limits.max_header_bytes + 1 ? avail : s->limits.max_header_bytes + 1;
    const uint8_t *data = evbuffer_pullup(c->in, (ev_ssize_t)want);
    size_t head_len = 0;
    mr_error_clear();
    if (data == NULL ||
        !mr_ok(mr_h1_find_head_end(MR_SLICE(data, want), s->limits.max_header_bytes,
                                   &c->scanned, &head_len))) {
        early_response(c, 431, "request header fields too large", 0);
        return false;
    }
    if (head_len == 0)
        return false;
    int status = 400;
    mr_h1_head_free(&c->head);
    if (!mr_ok(mr_h1_parse_head(MR_SLICE(data, head_len), s->limits.max_header_bytes, &c->head,
                                &status))) {
        early_response(c, status, mr_error_get()->msg, 0);
        return false;
    }
    evbuffer_drain(c->in, head_len);
    c->scanned = 0;
    start_body(c, head_len);
    return c->state == CONN_H1_BODY;
}

/* Moves body bytes into the request. Returns true when the body is complete. */
static bool h1_body_step(mr_srv_conn *c)
{
    mr_srv_request *r = c->h1_req;
    if (c->body_left == 0)
        return true;
    bool progress = false;
    while (evbuffer_get_length(c->in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(c->in, -1, NULL, &v, 1) < 1)
            break;
        size_t n = v.iov_len;
        bool done = false;
        mr_error_clear();
        if (c->body_left > 0) {
            if ((uint64_t)n > (uint64_t)c->body_left)
                n = (size_t)c->body_left;
            if (!mr_ok(mr_buf_append(&r->body, v.iov_base, n))) {
                early_response(c, 413, "request body too large", (uint64_t)c->body_left);
                return false;
            }
            if (!mr_srv_body_charge(r)) {
                early_response(c, 503, MR_SRV_BUDGET_TEXT, (uint64_t)c->body_left);
                return false;
            }
            c->body_left -= (int64_t)n;
            done = c->body_left == 0;
        } else if (!mr_ok(mr_h1_chunked_feed(&c->chunk, MR_SLICE(v.iov_base, v.iov_len),
                                             &r->body, &n, &done))) {
            bool big = mr_error_get()->cat == MR_ERR_USAGE;
            early_response(c, big ? 413 : 400, big ? "request body too large"
                                                   : mr_error_get()->msg, DISCARD_MAX);
            return false;
        }
        if (!mr_srv_body_charge(r)) {
            early_response(c, 503, MR_SRV_BUDGET_TEXT, DISCARD_MAX);
            return false;
        }
        evbuffer_drain(c->in, n);
        progress = true;
        if (done)
            return true;
    }
    if (progress)
        arm(c, c->srv->limits.body_timeout_ms);
    return false;
}

/* While a handler answers a request whose body was withheld: drop what of it arrives. */
static void drain_withheld(mr_srv_conn *c)
{
    size_t n = evbuffer_get_length(c->in);
    if ((uint64_t)n > c->discard_left)
        n = (size_t)c->discard_left;
    evbuffer_drain(c->in, n);
    c->discard_left -= n;
    if (c->discard_left == 0)
        set_reading(c, false); /* the rest would be a next request; the connection closes */
}

static void discard_input(mr_srv_conn *c)
{
    size_t n = evbuffer_get_length(c->in);
    evbuffer_drain(c->in, n);
    c->discard_left = (uint64_t)n >= c->discard_left ? 0 : c->discard_left - n;
    if (c->discard_left == 0 && evbuffer_get_length(c->out) == 0)
        mr_srv_conn_close(c);
}

void mr_srv_conn_process(mr_srv_conn *c)
{
    while (!c->closed) {
        switch (c->state) {
        case CONN_H2:
            mr_srv_h2_input(c);
            return;
        case CONN_H1_DISCARD:
            discard_input(c);
            return;
        case CONN_CLOSING:
            evbuffer_drain(c->in, evbuffer_get_length(c->in));
            return;
        case CONN_H1_HEAD:
            if (!h1_head_step(c))
                return;
            break;
        case CONN_H1_BODY:
            if (!h1_body_step(c))
                return;
            h1_request_done(c);
            return;
        case CONN_H1_WAIT:
            if (c->h1_req != NULL && c->h1_req->withheld)
                drain_withheld(c);
            return;
        default:
            return;
        }
    }
}

static void h1_idle(mr_srv_conn *c)
{
    mr_srv_idle_enter(c);
    c->state = CONN_H1_HEAD;
    c->scanned = 0;
    c->timer_is_idle = true;
    arm(c, c->srv->limits.idle_timeout_ms);
    set_reading(c, true);
}

void mr_srv_conn_h1_response_ready(mr_srv_conn *c, mr_srv_request *r)
{
    bool keep = c->keep_alive && !c->srv->stopping && !r->withheld;
    bool withheld = r->withheld;
    bool ok = mr_ok(mr_srv_h1_serialize(r, keep, r->head_only, c->out));
    c->h1_req = NULL;
    mr_srv_request_free(r);
    if (!ok) {
        mr_srv_conn_close(c);
        return;
    }
    if (withheld && c->discard_left > 0) {
        /* the client may still be sending the body: read it to the end, then close */
        c->state = CONN_H1_DISCARD;
        arm(c, LINGER_MS);
        set_reading(c, true);
        if (c->bev == NULL)
            mr_srv_conn_close(c);
        return;
    }
    if (!keep) {
        c->state = CONN_CLOSING;
        arm(c, LINGER_MS);
        if (c->bev == NULL)
            mr_srv_conn_close(c);
        return;
    }
    h1_idle(c);
    if (evbuffer_get_length(c->in) > 0)
        mr_srv_conn_process(c);
}

void mr_srv_conn_after_write(mr_srv_conn *c)
{
    size_t pending = evbuffer_get_length(c->out);
    switch (c->state) {
    case CONN_CLOSING:
        if (pending == 0)
            mr_srv_conn_close(c);
        break;
    case CONN_H1_DISCARD:
        if (pending == 0 && c->discard_left == 0)
            mr_srv_conn_close(c);
        break;
    case CONN_H2:
        mr_srv_h2_flush(c);
        break;
    default:
        break;
    }
}

MR_RESULT mr_srv_conn_start(mr_srv_conn *c, mr_srv_proto proto)
{
    c->proto = proto;
    if (proto == MR_SRV_PROTO_HTTP2) {
        c->state = CONN_H2;
        return mr_srv_h2_start(c);
    }
    h1_idle(c);
    return MR_SUCCESS;
}

void mr_srv_conn_stop(mr_srv_conn *c)
{
    switch (c->state) {
    case CONN_HANDSHAKE:
    case CONN_H1_HEAD:
        mr_srv_conn_close(c);
        break;
    case CONN_H1_BODY:
    case CONN_H1_WAIT:
        c->keep_alive = false;
        break;
    case CONN_H2:
        mr_srv_h2_goaway(c);
        break;
    default:
        break;
    }
}

/* ---- libevent callbacks ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    mr_srv_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == CONN_H1_WAIT)
        return; /* a handler is working; its answer will come */
    if (c->state == CONN_H2 && !mr_srv_h2_stalled(c)) {
        arm(c, c->srv->limits.body_timeout_ms); /* handlers are working; wait for them */
        return;
    }
    MR_LOG_DEBUG("connection timed out", MR_F_INT("state", c->state));
    mr_srv_conn_close(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    mr_srv_conn_process(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    mr_srv_conn_after_write(arg);
}

static MR_RESULT start_tls_conn(mr_srv_conn *c, SSL *ssl, bool h2)
{
    MR_GUARD(mr_srv_tls_peer_leaf(ssl, &c->leaf));
    return mr_srv_conn_start(c, h2 ? MR_SRV_PROTO_HTTP2 : MR_SRV_PROTO_HTTP1);
}

static void handshake_done(mr_srv_conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    bool h2 = alen == 2 && memcmp(alpn, "h2", 2) == 0;
    if (c->lst->kind == MR_SRV_LISTENER_MESH && !h2) {
        MR_LOG_DEBUG("mesh connection without ALPN h2 refused");
        mr_srv_conn_close(c);
        return;
    }
    if (!mr_ok(start_tls_conn(c, ssl, h2))) {
        MR_LOG_WARN("cannot start connection", MR_F_ERR());
        mr_srv_conn_close(c);
        return;
    }
    if (evbuffer_get_length(c->in) > 0 && !c->closed)
        mr_srv_conn_process(c);
}

/* EDG_HTTP_ERROR_LOG_LEVEL (1.9.1): the level of TLS-handshake error logs; default error. */
static mr_log_level http_error_level(void)
{
    static const struct {
        const char *name;
        mr_log_level level;
    } levels[] = {{"debug", MR_LOG_DEBUG}, {"info", MR_LOG_INFO}, {"warn", MR_LOG_WARN},
                  {"error", MR_LOG_ERROR}};
    const char *v = mr_config_get("EDG_HTTP_ERROR_LOG_LEVEL");
    for (size_t i = 0; v != NULL && i < MR_ARRAY_LEN(levels); i++)
        if (strcasecmp(v, levels[i].name) == 0)
            return levels[i].level;
    return MR_LOG_ERROR;
}

static void log_handshake_error(struct bufferevent *bev, short what)
{
    mr_log_level level = http_error_level();
    if (!mr_log_enabled(level))
        return;
    char addr[INET6_ADDRSTRLEN + 8] = "";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len = sizeof(ss);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        char host[INET6_ADDRSTRLEN] = "";
        unsigned port = 0;
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
            (void)inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
            (void)inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            port = ntohs(in6->sin6_port);
        }
        (void)snprintf(addr, sizeof(addr), "%s:%u", host, port);
    }
    unsigned long e = bufferevent_get_openssl_error(bev);
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    if (reason == NULL)
        reason = (what & BEV_EVENT_TIMEOUT) ? "timeout" : (what & BEV_EVENT_EOF) ? "EOF" : "error";
    mr_log_(level, __FILE__, __LINE__, "http: TLS handshake error", MR_F_STR("remote", addr),
            MR_F_STR("error", reason), MR_F_END);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    mr_srv_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == CONN_HANDSHAKE)
            handshake_done(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (c->state == CONN_HANDSHAKE && c->lst->kind != MR_SRV_LISTENER_PLAIN)
            log_handshake_error(bev, what);
        mr_srv_conn_close(c);
    }
}

mr_srv_conn *mr_srv_conn_new(mr_srv *s, mr_srv_listener *l, struct bufferevent *bev)
{
    mr_srv_conn *c = mr_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->srv = s;
    c->lst = l;
    c->bev = bev;
    c->state = CONN_HANDSHAKE;
    mr_h1_head_free(&c->head);
    if (bev != NULL) {
        c->in = bufferevent_get_input(bev);
        c->out = bufferevent_get_output(bev);
        c->timer = evtimer_new(s->base, on_timer, c);
        if (c->timer == NULL) {
            mr_free(c);
            return NULL;
        }
        bufferevent_setcb(bev, on_read, on_write, on_event, c);
        bufferevent_setwatermark(bev, EV_READ, 0, OUT_HIGH_WATER * 4);
    }
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    mr_srv_fresh_enter(c); /* until it sends something, it is the first to be evicted */
    arm(c, s->limits.handshake_timeout_ms);
    return c;
}
