/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/2 server sessions (nghttp2) for REST over h2 and gRPC unary calls. */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/server/internal.h"

#define OUT_HIGH_WATER ((size_t)1 << 20)
#define H2_WINDOW ((int32_t)1 << 20)
#define H2_CONN_WINDOW ((int32_t)16 << 20)

static void arm_timer(mr_srv_conn *c, unsigned ms)
{
    if (c->timer == NULL)
        return;
    struct timeval tv = mr_srv_tv(ms);
    evtimer_add(c->timer, &tv);
}

bool mr_srv_h2_stalled(const mr_srv_conn *c)
{
    for (const mr_srv_request *r = c->h2_reqs; r != NULL; r = r->sib_next)
        if (!r->dispatched)
            return true; /* still receiving, or the client never finished its side */
    return c->h2_open_streams == 0;
}

static mr_srv_request *stream_req(nghttp2_session *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2, id);
}

static void link_req(mr_srv_conn *c, mr_srv_request *r)
{
    r->sib_prev = NULL;
    r->sib_next = c->h2_reqs;
    if (c->h2_reqs != NULL)
        c->h2_reqs->sib_prev = r;
    c->h2_reqs = r;
}

static void unlink_req(mr_srv_conn *c, mr_srv_request *r)
{
    if (r->sib_prev != NULL)
        r->sib_prev->sib_next = r->sib_next;
    else
        c->h2_reqs = r->sib_next;
    if (r->sib_next != NULL)
        r->sib_next->sib_prev = r->sib_prev;
    r->sib_prev = r->sib_next = NULL;
}

/* The stream is gone: a request a handler still owns is detached, others are freed. */
static void release_req(mr_srv_conn *c, mr_srv_request *r)
{
    unlink_req(c, r);
    if (r->dispatched) {
        r->conn = NULL;
        atomic_store(&r->abandoned, true);
    } else
        mr_srv_request_free(r);
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    mr_srv_conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    mr_srv_request *r = mr_srv_request_new(c->srv, c);
    if (r == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    r->proto = MR_SRV_PROTO_HTTP2;
    r->stream_id = f->hd.stream_id;
    r->grpc = c->lst->kind == MR_SRV_LISTENER_MESH;
    r->body_max = r->grpc ? c->srv->limits.max_grpc_msg_bytes + 5 : c->srv->limits.max_body_bytes;
    if (nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, r) != 0) {
        mr_srv_request_free(r);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    link_req(c, r);
    c->h2_open_streams++;
    mr_srv_idle_leave(c);
    return 0;
}

static bool name_is(const uint8_t *n, size_t nl, const char *lit)
{
    return nl == strlen(lit) && memcmp(n, lit, nl) == 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    mr_srv_conn *c = ud;
    (void)flags;
    mr_srv_request *r = stream_req(h2, f->hd.stream_id);
    if (r == NULL || r->dispatched || r->done)
        return 0;
    size_t max = c->srv->limits.max_header_bytes;
    char **slot = NULL;
    if (name_is(name, nlen, ":method"))
        slot = &r->method;
    else if (name_is(name, nlen, ":path"))
        slot = &r->target;
    if (slot != NULL) {
        if (*slot != NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        *slot = mr_strndup((const char *)value, vlen);
        return *slot != NULL ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (name_is(name, nlen, ":authority")) {
        name = (const uint8_t *)"host";
        nlen = 4;
    } else if (nlen > 0 && name[0] == ':') {
        return 0;
    }
    if (!mr_ok(mr_srv_hdrs_add(&r->hdrs, (const char *)name, nlen, (const char *)value, vlen,
                               max)))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* The body budget is spent: the body is dropped and the stream answered at once. */
static void refuse_budget(mr_srv_request *r)
{
    r->budget_refused = true;
    mr_srv_body_drop(r);
}

/* Decides an early error while the body is still arriving. */
static void overflow(mr_srv_request *r)
{
    r->overflow = true;
    mr_srv_body_drop(r);
    if (r->grpc) {
        r->grpc_err_code = MR_GRPC_RESOURCE_EXHAUSTED;
        snprintf(r->grpc_err_msg, sizeof(r->grpc_err_msg),
                 "grpc: received message larger than max (%zu vs. %zu)", r->body_max - 5,
                 r->body_max - 5);
    }
}

static void check_grpc_len(mr_srv_request *r)
{
    if (!r->grpc || r->overflow || r->budget_refused || r->body.len < 5 || r->body_len != 0 ||
        r->grpc_len_known)
        return;
    uint8_t flag = 0;
    uint32_t len = 0;
    if (!mr_grpc_frame_header(mr_buf_slice(&r->body), &flag, &len))
        return;
    size_t max = r->body_max - 5;
    if ((size_t)len > max) {
        r->overflow = true;
        mr_srv_body_drop(r);
        r->grpc_err_code = MR_GRPC_RESOURCE_EXHAUSTED;
        snprintf(r->grpc_err_msg, sizeof(r->grpc_err_msg),
                 "grpc: received message larger than max (%u vs. %zu)", len, max);
        return;
    }
    /* The whole message is announced: its memory is charged at once. */
    r->grpc_len_known = true;
    if (!mr_srv_body_reserve(r, (size_t)len + 5))
        refuse_budget(r);
}

static void request_complete(mr_srv_conn *c, mr_srv_request *r);

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    mr_srv_conn *c = ud;
    (void)flags;
    mr_srv_request *r = stream_req(h2, id);
    if (r == NULL || r->dispatched || r->done || r->overflow || r->budget_refused)
        return 0;
    if (r->body.len + len > r->body_max) {
        overflow(r);
        request_complete(c, r); /* answer now; the rest of the body is dropped */
        return 0;
    }
    if (!mr_ok(mr_buf_append(&r->body, data, len)))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (!mr_srv_body_charge(r))
        refuse_budget(r);
    else
        check_grpc_len(r);
    if (r->overflow || r->budget_refused)
        request_complete(c, r);
    return 0;
}

/* The request head is complete: route it and decide about its body before any of it is
 * buffered. */
static void headers_done(mr_srv_conn *c, mr_srv_request *r, bool ended)
{
    if (r->method == NULL || !mr_ok(mr_srv_request_take_target(r, c))) {
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    const char *cl = mr_srv_hdrs_get(&r->hdrs, "content-length");
    int64_t n = -1;
    if (cl != NULL && !mr_ok(mr_h1_parse_content_length(MR_SLICE(cl, strlen(cl)), &n)))
        n = -1;
    if (ended)
        n = 0; /* END_STREAM on the headers: no body at all */
    size_t max = 0;
    bool take = mr_srv_body_policy(r, n, &max);
    r->body_max = max;
    mr_buf_init(&r->body, max, MR_BUF_WIPE);
    if (!take) {
        r->withheld = true;
        request_complete(c, r); /* answered now; DATA that follows is dropped */
        return;
    }
    if (n > 0) {
        if ((uint64_t)n > max) {
            overflow(r);
            request_complete(c, r);
        } else if (!mr_srv_body_reserve(r, (size_t)n)) {
            refuse_budget(r);
            request_complete(c, r);
        }
    }
}

static void request_complete(mr_srv_conn *c, mr_srv_request *r)
{
    if (r->dispatched || r->done)
        return;
    if (r->path == NULL) { /* the head was refused (stream reset) */
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    r->head_only = strcmp(r->method, "HEAD") == 0;
    r->req_size = r->body.len;
    mr_srv_dispatch(r);
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    mr_srv_conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    mr_srv_request *r = stream_req(h2, f->hd.stream_id);
    if (r == NULL)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        headers_done(c, r, (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
        request_complete(c, r);
    return 0;
}

/* After an early answer (body too large) has gone out completely, tell the client to stop
 * sending the rest of its body (RFC 9113 §8.1), as grpc-go does. Only for gRPC: curl treats
 * such a reset of a REST upload as a failed transfer, so there the rest is read and dropped. */
static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS))
        return 0;
    mr_srv_request *r = stream_req(h2, f->hd.stream_id);
    if (r != NULL && r->grpc && (r->overflow || r->budget_refused || r->withheld) && r->done)
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *ud)
{
    mr_srv_conn *c = ud;
    (void)err;
    mr_srv_request *r = stream_req(h2, id);
    if (r == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(h2, id, NULL);
    if (c->h2_open_streams > 0)
        c->h2_open_streams--;
    release_req(c, r);
    if (c->h2_open_streams == 0 && !c->closed) {
        arm_timer(c, c->srv->limits.idle_timeout_ms);
        mr_srv_idle_enter(c);
    }
    return 0;
}

/* nghttp2 takes non-const pointers but copies the bytes (no NO_COPY flags). */
static nghttp2_nv mknv(const char *n, const char *v)
{
    nghttp2_nv nv = {NULL, NULL, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
    memcpy(&nv.name, &n, sizeof(nv.name));
    memcpy(&nv.value, &v, sizeof(nv.value));
    return nv;
}

static ssize_t read_body(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    mr_srv_request *r = src->ptr;
    (void)ud;
    mr_cursor cur;
    mr_cursor_init(&cur, r->resp_body.data, r->resp_body.len);
    if (!mr_ok(mr_cursor_skip(&cur, r->resp_off)))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t n = mr_cursor_remaining(&cur);
    if (n > len)
        n = len;
    if (n > 0 && !mr_ok(mr_cursor_read(&cur, buf, n)))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    r->resp_off += n;
    if (r->resp_off < r->resp_body.len)
        return (ssize_t)n;
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (r->grpc && !r->trailers_sent) {
        nghttp2_nv tr[] = {mknv("grpc-status", "0")};
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        r->trailers_sent = true;
        if (nghttp2_submit_trailer(h2, id, tr, 1) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}


void mr_srv_h2_response_ready(mr_srv_conn *c, mr_srv_request *r)
{
    nghttp2_nv nva[MR_SRV_MAX_HEADERS + 6];
    size_t n = 0;
    char status[16];
    char clen[24];
    char code[16];
    char date[64];
    if (c->h2 == NULL)
        return;
    snprintf(status, sizeof(status), "%d", r->status > 0 ? r->status : 500);
    nva[n++] = mknv(":status", status);
    nghttp2_data_provider dp = {.source.ptr = r, .read_callback = read_body};
    const nghttp2_data_provider *dpp = NULL;
    if (r->grpc) {
        nva[n++] = mknv("content-type", "application/grpc");
        if (r->grpc_code == 0) {
            dpp = &dp;
        } else {
            snprintf(code, sizeof(code), "%d", r->grpc_code);
            nva[n++] = mknv("grpc-status", code);
            if (r->grpc_msg != NULL)
                nva[n++] = mknv("grpc-message", r->grpc_msg);
        }
    } else {
        for (size_t i = 0; i < r->resp_hdrs.n && n < MR_SRV_MAX_HEADERS; i++)
            nva[n++] = mknv(r->resp_hdrs.v[i].name, r->resp_hdrs.v[i].value);
        snprintf(clen, sizeof(clen), "%zu", r->resp_body.len);
        nva[n++] = mknv("content-length", clen);
        mr_srv_http_date(date, sizeof(date));
        nva[n++] = mknv("date", date);
        if (r->resp_body.len > 0 && !r->head_only)
            dpp = &dp;
    }
    int rv = nghttp2_submit_response(c->h2, r->stream_id, nva, n, dpp);
    if (rv != 0) {
        MR_LOG_DEBUG("cannot submit HTTP/2 response", MR_F_STR("error", nghttp2_strerror(rv)));
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_INTERNAL_ERROR);
    }
    mr_srv_h2_flush(c);
}

void mr_srv_h2_flush(mr_srv_conn *c)
{
    if (c->h2 == NULL || c->closed)
        return;
    while (evbuffer_get_length(c->out) < OUT_HIGH_WATER) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            mr_srv_conn_close(c);
            return;
        }
        if (n == 0)
            break;
        if (evbuffer_add(c->out, data, (size_t)n) != 0) {
            mr_srv_conn_close(c);
            return;
        }
    }
    bool idle_after_goaway = c->h2_goaway && c->h2_open_streams == 0;
    if ((!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) ||
        idle_after_goaway) {
        if (evbuffer_get_length(c->out) == 0 || c->bev == NULL)
            mr_srv_conn_close(c);
        else
            c->state = CONN_CLOSING;
    }
}

void mr_srv_h2_input(mr_srv_conn *c)
{
    while (!c->closed && evbuffer_get_length(c->in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(c->in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t n = nghttp2_session_mem_recv(c->h2, v.iov_base, v.iov_len);
        if (n < 0) {
            MR_LOG_DEBUG("HTTP/2 protocol error", MR_F_STR("error", nghttp2_strerror((int)n)));
            mr_srv_conn_close(c);
            return;
        }
        evbuffer_drain(c->in, (size_t)n);
    }
    /* Progress: the connection may wait again, shorter while a request is open. */
    if (!c->closed)
        arm_timer(c, c->h2_open_streams > 0 ? c->srv->limits.body_timeout_ms
                                            : c->srv->limits.idle_timeout_ms);
    mr_srv_h2_flush(c);
}

/* nghttp2 keeps header blocks and DATA of responses (secrets among them) in its own buffers:
 * they are wiped when nghttp2 frees them. */
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

MR_RESULT mr_srv_h2_start(mr_srv_conn *c)
{
    mr_result res = MR_FAILURE;
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    MR_ENSURE_OUT(nghttp2_session_callbacks_new(&cbs) == 0, MR_ERR_INTERNAL, "out of memory");
    MR_ENSURE_OUT(nghttp2_option_new(&opt) == 0, MR_ERR_INTERNAL, "out of memory");
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    MR_ENSURE_OUT(nghttp2_session_server_new3(&c->h2, cbs, c, opt, &h2_mem) == 0, MR_ERR_INTERNAL,
                  "cannot create HTTP/2 session");
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->srv->limits.h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)H2_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)c->srv->limits.max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    MR_ENSURE_OUT(nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, MR_ARRAY_LEN(iv)) == 0,
                  MR_ERR_INTERNAL, "cannot queue HTTP/2 settings");
    MR_ENSURE_OUT(nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
                                                        H2_CONN_WINDOW) == 0,
                  MR_ERR_INTERNAL, "cannot set HTTP/2 window");
    arm_timer(c, c->srv->limits.idle_timeout_ms);
    mr_srv_idle_enter(c);
    mr_srv_h2_flush(c);
    res = MR_SUCCESS;
out:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    return res;
}

void mr_srv_h2_goaway(mr_srv_conn *c)
{
    if (c->h2 == NULL || c->h2_goaway)
        return;
    c->h2_goaway = true;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    mr_srv_h2_flush(c);
}

void mr_srv_h2_free(mr_srv_conn *c)
{
    if (c->h2 == NULL)
        return;
    /* nghttp2_session_del does not report stream closes, so release the requests here. */
    while (c->h2_reqs != NULL)
        release_req(c, c->h2_reqs);
    nghttp2_session_del(c->h2);
    c->h2 = NULL;
}
