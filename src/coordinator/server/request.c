/* SPDX-License-Identifier: Apache-2.0 */
/* Requests: accessors, completion from any thread, routing and dispatch on the loop. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/server/internal.h"

uint64_t mr_srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

mr_srv_request *mr_srv_request_new(mr_srv *s, mr_srv_conn *c)
{
    mr_srv_request *r = mr_calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->srv = s;
    r->conn = c;
    if (c != NULL) {
        r->lst = c->lst;
        r->src = c->src;
    }
    r->query = "";
    r->body_max = s->limits.max_body_bytes;
    mr_buf_init(&r->body, 0, MR_BUF_WIPE); /* bodies may carry secrets: wiped when freed */
    mr_buf_init(&r->resp_body, 0, MR_BUF_WIPE);
    r->start_ns = mr_srv_now_ns();
    return r;
}

void mr_srv_request_free(mr_srv_request *r)
{
    if (r == NULL)
        return;
    mr_free(r->method);
    mr_free(r->target);
    mr_free(r->path);
    mr_srv_hdrs_free(&r->hdrs);
    mr_srv_body_drop(r);
    mr_buf_free(&r->leaf);
    mr_srv_hdrs_free(&r->resp_hdrs);
    mr_buf_free(&r->resp_body);
    mr_free(r->grpc_msg);
    mr_free(r);
}

static MR_RESULT take_leaf(mr_srv_request *r, const mr_srv_conn *c)
{
    mr_buf_init(&r->leaf, 0, 0);
    if (c->leaf.len == 0)
        return MR_SUCCESS;
    return mr_buf_append(&r->leaf, c->leaf.data, c->leaf.len);
}

static MR_RESULT decode_target(mr_srv_request *r, const mr_srv_conn *c)
{
    mr_result res = MR_FAILURE;
    mr_buf path;
    mr_buf_init(&path, 0, 0);
    const char *q = strchr(r->target, '?');
    size_t plen = q != NULL ? (size_t)(q - r->target) : strlen(r->target);
    r->query = q != NULL ? q + 1 : "";
    MR_GUARD_OUT(mr_srv_path_unescape(r->target, plen, &path));
    size_t len = 0;
    r->path = (char *)mr_buf_steal(&path, &len);
    MR_ENSURE_ALLOC_OUT(r->path);
    MR_GUARD_OUT(take_leaf(r, c));
    res = MR_SUCCESS;
out:
    mr_buf_free(&path);
    return res;
}

MR_RESULT mr_srv_request_take_target(mr_srv_request *r, const mr_srv_conn *c)
{
    MR_ENSURE(r->target != NULL && r->target[0] == '/', MR_ERR_PROTOCOL,
              "invalid request target");
    if (mr_ok(decode_target(r, c)))
        return MR_SUCCESS;
    mr_free(r->path); /* a request without a path is one whose head was refused */
    r->path = NULL;
    return MR_FAILURE;
}

/* ---- accessors ---- */

const char *mr_srv_req_method(const mr_srv_request *r) { return r->method; }
const char *mr_srv_req_path(const mr_srv_request *r) { return r->path; }
const char *mr_srv_req_query(const mr_srv_request *r) { return r->query; }
mr_srv_proto mr_srv_req_proto(const mr_srv_request *r) { return r->proto; }
mr_slice mr_srv_req_peer_leaf(const mr_srv_request *r) { return mr_buf_slice(&r->leaf); }
bool mr_srv_req_body_withheld(const mr_srv_request *r) { return r->withheld; }

const char *mr_srv_req_header(const mr_srv_request *r, const char *name)
{
    return mr_srv_hdrs_get(&r->hdrs, name);
}

mr_slice mr_srv_req_body(const mr_srv_request *r)
{
    mr_cursor c;
    mr_slice s = {0};
    mr_cursor_init(&c, r->body.data, r->body.len);
    if (r->grpc) {
        if (mr_ok(mr_cursor_skip(&c, r->body_off)) && mr_ok(mr_cursor_view(&c, r->body_len, &s)))
            return s;
        return (mr_slice){0};
    }
    return mr_buf_slice(&r->body);
}

/* ---- completion ---- */

/* A handler that answers twice has a bug; the second answer must not touch the request. */
static bool already_completed(mr_srv_request *r)
{
    if (!atomic_load(&r->completed))
        return false;
    MR_LOG_ERROR("request completed twice; second answer dropped",
                 MR_F_STR("path", r->path != NULL ? r->path : ""));
    return true;
}

static void complete(mr_srv_request *r)
{
    if (atomic_exchange(&r->completed, true)) {
        MR_LOG_ERROR("request completed twice; second answer dropped");
        return;
    }
    mr_srv *s = r->srv;
    r->next_done = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->done_tail != NULL)
        s->done_tail->next_done = r;
    else
        s->done_head = r;
    s->done_tail = r;
    pthread_mutex_unlock(&s->lock);
    event_active(s->wake, EV_READ, 0);
}

MR_RESULT mr_srv_resp_header(mr_srv_request *r, const char *name, const char *value)
{
    MR_ENSURE(!atomic_load(&r->completed), MR_ERR_INTERNAL, "request already completed");
    /* No header injection: names are tokens, values carry no line breaks or NULs. */
    MR_ENSURE(name[0] != '\0' && strpbrk(name, " \t\r\n:()<>@,;\\\"/[]?={}") == NULL,
              MR_ERR_INTERNAL, "invalid response header name");
    MR_ENSURE(strpbrk(value, "\r\n") == NULL, MR_ERR_INTERNAL, "invalid response header value");
    return mr_srv_hdrs_add(&r->resp_hdrs, name, strlen(name), value, strlen(value),
                           (size_t)1 << 20);
}

void mr_srv_resp_send_buf(mr_srv_request *r, int status, const char *content_type, mr_buf *body)
{
    if (already_completed(r)) {
        mr_buf_free(body);
        return;
    }
    if (r->grpc) {
        mr_buf_free(body);
        mr_srv_grpc_fail(r, MR_GRPC_INTERNAL, "handler sent an HTTP response to a gRPC call");
        return;
    }
    r->status = status;
    if (content_type != NULL && !mr_ok(mr_srv_resp_header(r, "content-type", content_type)))
        r->status = 500;
    mr_buf_free(&r->resp_body);
    r->resp_body = *body;
    mr_buf_init(body, 0, 0);
    complete(r);
}

void mr_srv_resp_send(mr_srv_request *r, int status, const char *content_type, mr_slice body)
{
    mr_buf b;
    mr_buf_init(&b, 0, MR_BUF_WIPE);
    if (body.len > 0 && !mr_ok(mr_buf_append(&b, body.ptr, body.len))) {
        mr_buf_free(&b);
        status = 500;
        content_type = NULL;
    }
    mr_srv_resp_send_buf(r, status, content_type, &b);
}

static void send_envelope(mr_srv_request *r, int status, const char *ctype, bool nosniff,
                          mr_result built, mr_buf *body)
{
    if (!mr_ok(built)) {
        mr_buf_free(body);
        status = 500;
    }
    if (nosniff && !mr_ok(mr_srv_resp_header(r, "x-content-type-options", "nosniff")))
        status = 500;
    mr_srv_resp_send_buf(r, status, ctype, body);
}

void mr_srv_resp_mark_secret(mr_srv_request *r) { r->secret_body = true; }

void mr_srv_reply_success(mr_srv_request *r, const char *data_json)
{
    mr_buf b;
    mr_buf_init(&b, 0, r->secret_body ? MR_BUF_SECRET : MR_BUF_WIPE);
    mr_result ok = mr_srv_jsend_success(&b, data_json);
    send_envelope(r, 200, "application/json", false, ok, &b);
}

void mr_srv_reply_error(mr_srv_request *r, int status, const char *msg)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    mr_result ok = mr_srv_jsend_error(&b, msg);
    send_envelope(r, status, "text/plain; charset=utf-8", true, ok, &b);
}

void mr_srv_reply_error_from(mr_srv_request *r, const mr_error *e)
{
    mr_srv_reply_error(r, mr_errcat_http(e->cat), e->msg);
}

void mr_srv_reply_fail(mr_srv_request *r, int status, const char *data_json, const char *msg)
{
    mr_buf b;
    mr_buf_init(&b, 0, 0);
    mr_result ok = mr_srv_jsend_fail(&b, data_json, msg);
    send_envelope(r, status, "application/json", false, ok, &b);
}

void mr_srv_grpc_reply(mr_srv_request *r, mr_slice msg)
{
    if (already_completed(r))
        return;
    r->status = 200;
    r->grpc_code = 0;
    mr_buf_free(&r->resp_body);
    if (r->secret_body)
        r->resp_body.flags |= MR_BUF_SECRET;
    if (!mr_ok(mr_grpc_frame_encode(&r->resp_body, msg))) {
        mr_srv_grpc_fail(r, MR_GRPC_INTERNAL, "out of memory");
        return;
    }
    complete(r);
}

void mr_srv_grpc_reply_msg(mr_srv_request *r, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    size_t cap = n > 0 ? n : 1;
    bool secret = r->secret_body; /* r may be freed once the reply completes it */
    uint8_t *p = secret ? mr_secret_alloc(cap) : mr_alloc(cap);
    if (p == NULL) {
        mr_srv_grpc_fail(r, MR_GRPC_INTERNAL, "out of memory");
        return;
    }
    size_t w = protobuf_c_message_pack(msg, p);
    mr_srv_grpc_reply(r, MR_SLICE(p, w));
    if (secret)
        mr_secret_free(p, cap);
    else
        mr_free(p);
}

void mr_srv_grpc_fail(mr_srv_request *r, int code, const char *msg)
{
    mr_buf enc;
    if (already_completed(r))
        return;
    mr_buf_init(&enc, 0, 0);
    r->status = 200;
    r->grpc_code = code == MR_GRPC_OK ? MR_GRPC_UNKNOWN /* a failure must not look like success */
                                      : code;
    mr_buf_free(&r->resp_body);
    mr_free(r->grpc_msg);
    r->grpc_msg = NULL;
    if (msg != NULL && msg[0] != '\0' && mr_ok(mr_grpc_percent_encode(&enc, msg))) {
        size_t len = 0;
        r->grpc_msg = (char *)mr_buf_steal(&enc, &len);
    }
    mr_buf_free(&enc);
    complete(r);
}

void mr_srv_grpc_fail_from(mr_srv_request *r, const mr_error *e)
{
    mr_srv_grpc_fail(r, mr_errcat_grpc(e->cat), e->msg);
}

/* ---- dispatch (loop thread) ---- */

bool mr_srv_req_abandoned(const mr_srv_request *r)
{
    return atomic_load_explicit(&r->abandoned, memory_order_relaxed);
}

static void run_handler(void *arg)
{
    mr_srv_request *r = arg;
    if (r->deadline_ns != 0 && mr_srv_now_ns() >= r->deadline_ns) {
        /* the client has stopped waiting: do not start the work (grpc-go's text) */
        mr_srv_grpc_fail(r, MR_GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
        return;
    }
    if (mr_srv_req_abandoned(r)) {
        /* Nobody is waiting (e.g. a stream reset right after it was opened): skip the work. */
        if (r->grpc)
            mr_srv_grpc_fail(r, MR_GRPC_CANCELLED, "client went away");
        else
            mr_srv_resp_send(r, 499, NULL, (mr_slice){0});
        return;
    }
    r->route->fn(r, r->route->arg);
}

static void begin(mr_srv_request *r)
{
    r->dispatched = true;
    r->srv->inflight++;
}

static void invoke(mr_srv_request *r)
{
    bool overloaded = r->srv->inflight >= r->srv->limits.max_inflight;
    begin(r);
    if (r->route->http != NULL)
        atomic_fetch_add(&r->route->http->in_flight, 1);
    if (overloaded) {
        /* The handlers are far behind: refuse new work instead of queueing without bound. */
        if (r->grpc)
            mr_srv_grpc_fail(r, MR_GRPC_UNAVAILABLE, "server overloaded, retry later");
        else
            mr_srv_reply_error(r, 503, "server overloaded, retry later");
        return;
    }
    if (r->route->flags & MR_SRV_ROUTE_INLINE) {
        r->route->fn(r, r->route->arg);
        return;
    }
    r->job.fn = run_handler;
    r->job.arg = r;
    mr_srv_pool_push(r->srv->pool, &r->job);
}

static MR_RESULT redirect_answer(mr_srv_request *r, const mr_buf *location, mr_buf *body)
{
    MR_GUARD(mr_srv_resp_header(r, "location", (const char *)location->data));
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return MR_SUCCESS;
    /* Go's http.Redirect body for GET and HEAD. */
    MR_GUARD(mr_buf_append_str(body, "<a href=\""));
    MR_GUARD(mr_buf_append(body, location->data, location->len));
    return mr_buf_append_str(body, "\">Moved Permanently</a>.\n\n");
}

static void redirect(mr_srv_request *r, mr_buf *location)
{
    mr_buf body;
    mr_buf_init(&body, 0, 0);
    int status = mr_ok(redirect_answer(r, location, &body)) ? 301 : 500;
    mr_srv_resp_send_buf(r, status, "text/html; charset=utf-8", &body);
}

static void dispatch_rest(mr_srv_request *r, const mr_srv_router *rt)
{
    mr_srv_route_outcome oc = MR_SRV_ROUTE_NO_MATCH;
    const mr_srv_route_ent *ent = NULL;
    mr_buf loc;
    mr_buf_init(&loc, 0, 0);
    if (!mr_ok(mr_srv_router_match(rt, r->method, r->path, r->query, &oc, &ent, &loc))) {
        begin(r);
        mr_srv_reply_error(r, 500, "internal server error");
    } else if (oc == MR_SRV_ROUTE_REDIRECT) {
        begin(r);
        redirect(r, &loc);
    } else if (oc == MR_SRV_ROUTE_NO_MATCH || ent->grpc) {
        begin(r);
        mr_srv_reply_error(r, 405, NULL);
    } else if (r->budget_refused) {
        r->route = ent;
        begin(r);
        mr_srv_reply_error(r, 503, MR_SRV_BUDGET_TEXT);
    } else if (r->overflow) {
        r->route = ent;
        begin(r);
        mr_srv_reply_error(r, 413, "request body too large");
    } else {
        r->route = ent;
        invoke(r);
    }
    mr_buf_free(&loc);
}

/* Finds the gRPC method; on failure answers UNIMPLEMENTED with grpc-go's texts. */
static const mr_srv_route_ent *grpc_lookup(mr_srv_request *r, const mr_srv_router *rt)
{
    const char *p = r->path;
    const char *slash = p[0] == '/' ? strchr(p + 1, '/') : NULL;
    if (slash == NULL) {
        char msg[300];
        snprintf(msg, sizeof(msg), "malformed method name: \"%.200s\"", p);
        begin(r);
        mr_srv_grpc_fail(r, MR_GRPC_UNIMPLEMENTED, msg);
        return NULL;
    }
    size_t svc_len = (size_t)(slash - (p + 1));
    bool svc_known = false;
    for (size_t i = 0; i < rt->n; i++) {
        if (!rt->v[i].grpc)
            continue;
        if (strcmp(rt->v[i].path, p) == 0)
            return &rt->v[i];
        if (strncmp(rt->v[i].path, p, svc_len + 2) == 0)
            svc_known = true;
    }
    char msg[300];
    if (svc_known)
        snprintf(msg, sizeof(msg), "unknown method %.100s for service %.*s", slash + 1,
                 (int)(svc_len > 100 ? 100 : svc_len), p + 1);
    else
        snprintf(msg, sizeof(msg), "unknown service %.*s", (int)(svc_len > 100 ? 100 : svc_len),
                 p + 1);
    begin(r);
    mr_srv_grpc_fail(r, MR_GRPC_UNIMPLEMENTED, msg);
    return NULL;
}

static void dispatch_grpc(mr_srv_request *r, const mr_srv_router *rt)
{
    const char *ct = mr_srv_hdrs_get(&r->hdrs, "content-type");
    if (strcmp(r->method, "POST") != 0 || ct == NULL ||
        strncmp(ct, "application/grpc", 16) != 0 || (ct[16] != '\0' && ct[16] != '+' &&
                                                      ct[16] != ';')) {
        r->grpc = false;
        begin(r);
        if (strcmp(r->method, "POST") != 0)
            mr_srv_reply_error(r, 405, NULL);
        else
            mr_srv_resp_send(r, 415, "text/plain; charset=utf-8",
                             MR_SLICE_STR("invalid gRPC request content-type\n"));
        return;
    }
    const mr_srv_route_ent *ent = grpc_lookup(r, rt);
    if (ent == NULL)
        return;
    r->route = ent;
    atomic_fetch_add(&ent->gm->started, 1);
    if (r->budget_refused) {
        begin(r);
        mr_srv_grpc_fail(r, MR_GRPC_RESOURCE_EXHAUSTED, MR_SRV_BUDGET_TEXT);
        return;
    }
    if (r->overflow) {
        begin(r);
        mr_srv_grpc_fail(r, r->grpc_err_code, r->grpc_err_msg);
        return;
    }
    const char *timeout = mr_srv_hdrs_get(&r->hdrs, "grpc-timeout");
    uint64_t ms = 0;
    if (timeout != NULL) {
        if (!mr_ok(mr_grpc_timeout_parse(timeout, &ms))) {
            begin(r);
            mr_srv_grpc_fail(r, MR_GRPC_INTERNAL, mr_error_get()->msg);
            return;
        }
        r->deadline_ns = r->start_ns + ms * 1000000ull;
    }
    mr_slice msg;
    mr_grpc_code code = MR_GRPC_OK;
    if (!mr_ok(mr_grpc_frame_parse(mr_buf_slice(&r->body), r->srv->limits.max_grpc_msg_bytes,
                                   "request", mr_srv_hdrs_get(&r->hdrs, "grpc-encoding"), &msg,
                                   &code))) {
        begin(r);
        mr_srv_grpc_fail(r, (int)code, mr_error_get()->msg);
        return;
    }
    r->body_off = 5;
    r->body_len = msg.len;
    invoke(r);
}

static bool decline(const mr_srv_request *r, int64_t known_len, size_t *max)
{
    /* A small body of known length is read anyway: the handler then answers exactly as it
     * would have (a malformed body may be reported before a state error, as upstream does). */
    *max = r->srv->limits.max_small_body_bytes;
    return known_len >= 0 && (uint64_t)known_len <= *max;
}

bool mr_srv_body_policy(mr_srv_request *r, int64_t known_len, size_t *max)
{
    mr_srv_listener *l = r->lst;
    const mr_srv_router *rt = &l->router;
    if (l->kind == MR_SRV_LISTENER_MESH) {
        *max = r->srv->limits.max_grpc_msg_bytes + 5;
        for (size_t i = 0; i < rt->n; i++)
            if (rt->v[i].grpc && strcmp(rt->v[i].path, r->path) == 0)
                return true;
        return decline(r, known_len, max); /* UNIMPLEMENTED needs no message */
    }
    mr_srv_route_outcome oc = MR_SRV_ROUTE_NO_MATCH;
    const mr_srv_route_ent *ent = NULL;
    mr_buf loc;
    mr_buf_init(&loc, 0, 0);
    bool found = mr_ok(mr_srv_router_match(rt, r->method, r->path, r->query, &oc, &ent, &loc)) &&
                 oc == MR_SRV_ROUTE_FOUND && !ent->grpc;
    mr_buf_free(&loc);
    if (!found)
        return decline(r, known_len, max); /* 405 and 301 are answered without the body */
    *max = ent->max_body;
    if (ent->precheck == NULL || ent->precheck(r, ent->arg))
        return true;
    return decline(r, known_len, max);
}

void mr_srv_dispatch(mr_srv_request *r)
{
    mr_srv_listener *l = r->conn->lst;
    if (l->kind == MR_SRV_LISTENER_MESH) {
        r->grpc = true;
        dispatch_grpc(r, &l->router);
    } else {
        r->grpc = false;
        dispatch_rest(r, &l->router);
    }
}

void mr_srv_request_completed(mr_srv_request *r)
{
    mr_srv *s = r->srv;
    s->inflight--;
    r->dispatched = false;
    r->done = true;
    if (r->route != NULL && r->route->http != NULL) {
        atomic_fetch_sub(&r->route->http->in_flight, 1);
        double secs = (double)(mr_srv_now_ns() - r->start_ns) / 1e9;
        mr_srv_http_observe(r->route->http, r->method, r->status, secs, r->req_size,
                            r->resp_body.len);
    }
    if (r->grpc && r->route != NULL && r->route->gm != NULL)
        mr_srv_grpc_observe(r->route->gm, r->grpc_code, r->body_len > 0 || r->body_off > 0,
                            r->grpc_code == 0);
    mr_srv_conn *c = r->conn;
    if (c == NULL || c->closed) {
        if (c != NULL && r->proto == MR_SRV_PROTO_HTTP1)
            c->h1_req = NULL;
        mr_srv_request_free(r);
    } else if (r->proto == MR_SRV_PROTO_HTTP1) {
        mr_srv_conn_h1_response_ready(c, r);
    } else {
        mr_srv_h2_response_ready(c, r);
    }
    mr_srv_check_stopped(s);
}

/* ---- HTTP/1.1 response ---- */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 499: return "Client Closed Request";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}

void mr_srv_http_date(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    if (strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0 && n > 0)
        buf[0] = '\0';
}

MR_RESULT mr_srv_h1_serialize(const mr_srv_request *r, bool keep_alive, bool head_only,
                              struct evbuffer *out)
{
    char date[64];
    mr_srv_http_date(date, sizeof(date));
    MR_ENSURE(evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", r->status, reason(r->status)) > 0,
              MR_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < r->resp_hdrs.n; i++) {
        const mr_srv_hdr *h = &r->resp_hdrs.v[i];
        /* Header names go out in canonical form (Content-Type), as Go writes them. */
        char name[128];
        snprintf(name, sizeof(name), "%s", h->name);
        bool up = true;
        for (char *p = name; *p != '\0'; p++) {
            if (up && *p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
            up = *p == '-';
        }
        MR_ENSURE(evbuffer_add_printf(out, "%s: %s\r\n", name, h->value) > 0, MR_ERR_INTERNAL,
                  "out of memory");
    }
    const char *conn = !keep_alive ? "Connection: close\r\n"
                       : r->http10 ? "Connection: keep-alive\r\n"
                                   : "";
    MR_ENSURE(evbuffer_add_printf(out, "Date: %s\r\nContent-Length: %zu\r\n%s\r\n", date,
                                  r->resp_body.len, conn) > 0,
              MR_ERR_INTERNAL, "out of memory");
    if (!head_only && r->resp_body.len > 0)
        MR_ENSURE(evbuffer_add(out, r->resp_body.data, r->resp_body.len) == 0, MR_ERR_INTERNAL,
                  "out of memory");
    return MR_SUCCESS;
}
