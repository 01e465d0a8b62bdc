/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A gRPC client over HTTP/2 (nghttp2) and TLS (OpenSSL, ALPN h2) or plain TCP (h2c with prior
 * knowledge), for the Coordinator's calls to other servers: the etcd store backend and the key
 * API between instances. Framing, codes and texts come from common/grpc.h.
 *
 * Threads: a connection is used by one thread at a time (the caller serialises; a pool of
 * connections serves many threads). All I/O is blocking with deadlines: no call waits longer
 * than the deadline it is given (connect, TLS handshake, each call).
 *
 * Calls: unary (mr_rpc_call), and streams (mr_rpc_stream_*) for etcd's Watch: messages are
 * sent and received in order, as they arrive, on the one connection.
 *
 * Errors: a call whose server answered a non-OK grpc-status fails with the category that code
 * maps to (UNAVAILABLE and DEADLINE_EXCEEDED: MR_ERR_UNAVAILABLE; others: MR_ERR_PROTOCOL) and
 * "rpc error: code = <Name> desc = <message>"; *status (when not NULL) holds the code, and
 * MR_GRPC_OK for a success. A transport failure (connect, TLS, reset, timeout) fails with
 * MR_ERR_UNAVAILABLE, *status UNAVAILABLE or DEADLINE_EXCEEDED, and leaves the connection unusable
 * (mr_rpc_usable false): close it and connect again.
 *
 * Secrets: response messages may carry key material: they are received into wiping buffers
 * and nghttp2's own buffers are wiped when freed; give the caller's output an MR_BUF_SECRET
 * buffer where the content is secret.
 */
#ifndef MR_COORDINATOR_RPC_H
#define MR_COORDINATOR_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/buf.h"
#include "common/grpc.h"
#include "common/result.h"

typedef struct mr_rpc_conn mr_rpc_conn;
typedef struct mr_rpc_stream mr_rpc_stream;

/* Where to connect. host may be a name with several addresses (tried in order) or an IP
 * literal; port is a decimal string. tls NULL means plain HTTP/2 (h2c). With tls, the
 * connection takes its own reference to the context; verify_name (when not NULL) is the name
 * (DNS or IP) the server certificate must carry and is sent as SNI when it is a name. */
typedef struct mr_rpc_target {
    const char *host;
    const char *port;
    SSL_CTX *tls;
    const char *verify_name;
} mr_rpc_target;

/* Milliseconds on the CLOCK_MONOTONIC clock, for deadlines. */
uint64_t mr_rpc_now_ms(void);

MR_RESULT mr_rpc_connect(const mr_rpc_target *t, uint64_t deadline_ms, mr_rpc_conn **out);
/* Sends GOAWAY (best effort, without waiting) and frees the connection and its streams.
 * NULL-safe. */
void mr_rpc_close(mr_rpc_conn *c);
/* False after a transport error or once the server sent GOAWAY: open a new connection. */
bool mr_rpc_usable(const mr_rpc_conn *c);
/* Takes in, without waiting, whatever the server sent on an idle connection (a GOAWAY, the
 * end of the connection when the server died) and then answers mr_rpc_usable: check a
 * pooled connection before sending a request that must not be sent twice. */
bool mr_rpc_alive(mr_rpc_conn *c);
/* The connected peer's certificate (a new reference; NULL without TLS). */
X509 *mr_rpc_peer_cert(const mr_rpc_conn *c);

/* A unary call of method path ("/etcdserverpb.KV/Range") with the serialised request; the
 * response message (at most max_resp bytes) is appended to resp. A deadline is sent as
 * grpc-timeout. */
MR_RESULT mr_rpc_call(mr_rpc_conn *c, const char *path, mr_slice req, size_t max_resp,
                      uint64_t deadline_ms, mr_buf *resp, mr_grpc_code *status);

/* A plain HTTP/2 request (the Kubernetes API): method, path with query, extra headers and a
 * body (may be empty). On an answer, *http_status is its status and its body (at most max_resp
 * bytes) is appended to resp — for any status; the caller judges it. Transport failures and
 * deadlines as for calls (MR_ERR_UNAVAILABLE; the connection is then unusable); an answer
 * over max_resp fails with MR_ERR_TOO_LARGE. */
typedef struct mr_rpc_header {
    const char *name; /* lower case */
    const char *value;
} mr_rpc_header;
typedef struct mr_rpc_http_req {
    const char *method;
    const char *path;
    const mr_rpc_header *headers;
    size_t n_headers;
    mr_slice body;
} mr_rpc_http_req;
MR_RESULT mr_rpc_http(mr_rpc_conn *c, const mr_rpc_http_req *rq, size_t max_resp,
                      uint64_t deadline_ms, int *http_status, mr_buf *resp);

/* A plain HTTP/2 request whose answer body arrives over time (a Kubernetes watch): the request
 * is sent as for mr_rpc_http, and mr_rpc_http_stream_recv hands over the body bytes as they
 * come. At most max_buf bytes are held between two recvs (more: the stream is reset and recv
 * fails with MR_ERR_TOO_LARGE). Body bytes are acknowledged to the server (WINDOW_UPDATE) as
 * they arrive, so a stream of any length never stalls on flow control. Close the stream with
 * mr_rpc_stream_close. */
MR_RESULT mr_rpc_http_stream_open(mr_rpc_conn *c, const mr_rpc_http_req *rq, size_t max_buf,
                                  mr_rpc_stream **out);
/* Waits until body bytes arrive (appended to data), the answer ends (*ended = true) or
 * deadline_ms passes (nothing appended, success). *http_status is the answer's status once
 * its headers came (0 before). Fails when the connection broke or the stream was reset. */
MR_RESULT mr_rpc_http_stream_recv(mr_rpc_stream *s, uint64_t deadline_ms, mr_buf *data,
                                  bool *ended, int *http_status);

/* A bidirectional stream on c (at most one open per connection at a time here). */
MR_RESULT mr_rpc_stream_open(mr_rpc_conn *c, const char *path, size_t max_msg,
                             mr_rpc_stream **out);
/* Queues one message and sends what the flow-control window allows (until deadline_ms). */
MR_RESULT mr_rpc_stream_send(mr_rpc_stream *s, mr_slice msg, uint64_t deadline_ms);
/* Waits until a message arrives (appended to msg, *got = true) or deadline_ms passes
 * (*got = false, success). Fails when the stream ended (with the server's status) or the
 * connection broke. */
MR_RESULT mr_rpc_stream_recv(mr_rpc_stream *s, uint64_t deadline_ms, mr_buf *msg, bool *got,
                             mr_grpc_code *status);
/* Resets the stream (CANCEL) and frees it. NULL-safe. */
void mr_rpc_stream_close(mr_rpc_stream *s);

#endif
