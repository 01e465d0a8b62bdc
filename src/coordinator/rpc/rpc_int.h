/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the rpc client shared by rpc.c (connections, gRPC) and rpc_http.c (plain
 * HTTP/2 requests and streams). */
#ifndef MR_COORDINATOR_RPC_INT_H
#define MR_COORDINATOR_RPC_INT_H

#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "coordinator/rpc/rpc.h"

#define MSG_TEXT_MAX 256
#define HOST_MAX 256

struct mr_rpc_stream {
    mr_rpc_conn *conn;
    int32_t id;
    mr_buf in;   /* received DATA not yet taken as messages */
    mr_buf out;  /* framed messages queued for sending */
    size_t out_off;
    bool end_out;  /* END_STREAM once out is sent (unary) */
    bool deferred; /* the data provider is waiting for more */
    bool closed;
    uint32_t rst;
    int http_status;
    long grpc_status; /* -1 until seen */
    char grpc_msg[MSG_TEXT_MAX];
    size_t max_msg;
};

struct mr_rpc_conn {
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    bool broken;
    bool goaway;
    bool tls;
    char authority[HOST_MAX + 8];
};

/* Milliseconds left until deadline_ms (at most a minute; 0: passed). */
int rpc_remaining(uint64_t deadline_ms);
/* Sends everything nghttp2 has queued. */
MR_RESULT rpc_flush(mr_rpc_conn *c, uint64_t deadline_ms);
/* One round: send what is queued, take in what arrives before deadline_ms; a failure marks
 * the connection broken. */
MR_RESULT rpc_pump(mr_rpc_conn *c, uint64_t deadline_ms);
void rpc_stream_init(mr_rpc_stream *s, mr_rpc_conn *c, size_t max_msg);
void rpc_stream_fini(mr_rpc_stream *s);
/* nghttp2's data source: the stream's queued output. */
ssize_t rpc_read_out(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                     uint32_t *flags, nghttp2_data_source *src, void *ud);

#endif
