/* SPDX-License-Identifier: Apache-2.0 */
/* Plain HTTP/2 requests over the rpc client's connections (rpc.h): whole answers
 * (mr_rpc_http) and answers that arrive over time (mr_rpc_http_stream_*). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "coordinator/rpc/rpc_int.h"

/* ---- plain HTTP/2 requests ---- */

static MR_RESULT submit_http(mr_rpc_conn *c, mr_rpc_stream *s, const mr_rpc_http_req *rq)
{
    nghttp2_nv nva[16];
    size_t n = 0;
    MR_ENSURE(rq->n_headers <= 10, MR_ERR_USAGE, "rpc: too many request headers");
#define NV(k, v)                                                                                \
    nva[n++] = (nghttp2_nv){(uint8_t *)(uintptr_t)(k), (uint8_t *)(uintptr_t)(v), strlen(k),   \
                            strlen(v), NGHTTP2_NV_FLAG_NONE}
    NV(":method", rq->method);
    NV(":scheme", c->tls ? "https" : "http");
    NV(":path", rq->path);
    NV(":authority", c->authority);
    NV("user-agent", "marblerun-c");
    for (size_t i = 0; i < rq->n_headers; i++)
        NV(rq->headers[i].name, rq->headers[i].value);
#undef NV
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = rpc_read_out};
    int32_t id = nghttp2_submit_request(c->h2, NULL, nva, n, rq->body.len > 0 ? &dp : NULL, s);
    MR_ENSURE(id > 0, MR_ERR_PROTOCOL, "rpc: HTTP/2: %s", nghttp2_strerror(id));
    s->id = id;
    return MR_SUCCESS;
}

MR_RESULT mr_rpc_http(mr_rpc_conn *c, const mr_rpc_http_req *rq, size_t max_resp,
                      uint64_t deadline_ms, int *http_status, mr_buf *resp)
{
    mr_result res = MR_FAILURE;
    mr_rpc_stream s;
    rpc_stream_init(&s, c, max_resp);
    *http_status = 0;
    MR_ENSURE_OUT(mr_rpc_usable(c), MR_ERR_UNAVAILABLE, "rpc: connection is not usable");
    MR_GUARD_OUT(mr_buf_append(&s.out, rq->body.ptr, rq->body.len));
    s.end_out = true;
    MR_GUARD_OUT(submit_http(c, &s, rq));
    while (!s.closed) {
        MR_GUARD_OUT(rpc_pump(c, deadline_ms));
        if (!s.closed && rpc_remaining(deadline_ms) == 0) {
            nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_CANCEL);
            c->broken = true; /* the answer may still come: this connection is done */
            MR_BAIL_OUT(MR_ERR_UNAVAILABLE, "rpc: %s %s: no answer in time", rq->method, rq->path);
        }
    }
    MR_ENSURE_OUT(s.http_status > 0, MR_ERR_UNAVAILABLE, "rpc: %s %s: stream reset (%u)",
                  rq->method, rq->path, s.rst);
    MR_ENSURE_OUT(s.grpc_status != MR_GRPC_RESOURCE_EXHAUSTED, MR_ERR_TOO_LARGE,
                  "rpc: %s %s: answer larger than %zu bytes", rq->method, rq->path, max_resp);
    *http_status = s.http_status;
    MR_GUARD_OUT(mr_buf_append(resp, s.in.data, s.in.len));
    res = MR_SUCCESS;
out:
    rpc_stream_fini(&s);
    return res;
}

MR_RESULT mr_rpc_http_stream_open(mr_rpc_conn *c, const mr_rpc_http_req *rq, size_t max_buf,
                                  mr_rpc_stream **out)
{
    MR_ENSURE(mr_rpc_usable(c), MR_ERR_UNAVAILABLE, "rpc: connection is not usable");
    mr_rpc_stream *s = mr_calloc(1, sizeof(*s));
    MR_ENSURE_ALLOC(s);
    rpc_stream_init(s, c, max_buf);
    s->end_out = true;
    mr_result r = mr_buf_append(&s->out, rq->body.ptr, rq->body.len);
    if (mr_ok(r))
        r = submit_http(c, s, rq);
    if (mr_ok(r))
        r = rpc_flush(c, mr_rpc_now_ms() + 1000);
    if (!mr_ok(r)) {
        c->broken = c->broken || s->id > 0;
        rpc_stream_fini(s);
        mr_free(s);
        return MR_FAILURE;
    }
    *out = s;
    return MR_SUCCESS;
}

/* nghttp2 acknowledges DATA as it takes it in (its automatic WINDOW_UPDATE), and recv moves
 * what arrived out of s->in at once: the window of a long stream stays open. */
MR_RESULT mr_rpc_http_stream_recv(mr_rpc_stream *s, uint64_t deadline_ms, mr_buf *data,
                                  bool *ended, int *http_status)
{
    *ended = false;
    for (;;) {
        *http_status = s->http_status;
        MR_ENSURE(s->grpc_status != MR_GRPC_RESOURCE_EXHAUSTED, MR_ERR_TOO_LARGE,
                  "rpc: stream: more than %zu bytes unread", s->max_msg);
        if (s->in.len > 0) {
            mr_result r = mr_buf_append(data, s->in.data, s->in.len);
            OPENSSL_cleanse(s->in.data, s->in.len);
            s->in.len = 0;
            return r;
        }
        if (s->closed) {
            MR_ENSURE(s->http_status > 0 && s->rst == 0, MR_ERR_UNAVAILABLE,
                      "rpc: stream reset (%u)", s->rst);
            *ended = true;
            return MR_SUCCESS;
        }
        if (rpc_remaining(deadline_ms) == 0)
            return MR_SUCCESS;
        MR_GUARD(rpc_pump(s->conn, deadline_ms));
    }
}

