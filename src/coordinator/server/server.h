/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Coordinator's network layer: listeners, TLS, HTTP/1.1, HTTP/2, gRPC unary framing, a
 * worker pool and request metrics. It holds no business logic; the api layer plugs handlers
 * into it.
 *
 * Threads. One libevent loop thread (the one calling mr_srv_run) owns every socket, TLS
 * session and HTTP/2 session. Handlers run on a pool of worker threads (CPU count by
 * default) unless the route is registered with MR_SRV_ROUTE_INLINE. A handler receives a
 * request and must complete it exactly once with one of the mr_srv_resp_* / mr_srv_reply_* /
 * mr_srv_grpc_* calls, from any thread and at any later time (it may hand the request on to
 * other work first). The answer travels back to the loop through a locked queue. The request
 * stays valid until it is completed; the server frees it afterwards. If the client goes away
 * first, the completion is simply dropped.
 *
 * Listeners (spec §4.1, §5.2, §11.1):
 *   MR_SRV_LISTENER_CLIENT  HTTPS, TLS 1.2+, ALPN h2 and http/1.1, client certificate
 *                           requested but never verified by TLS (handlers see the leaf the
 *                           handshake proved, never the rest of the chain).
 *   MR_SRV_LISTENER_MESH    TLS, client certificate required (any chain accepted; handlers
 *                           see the leaf only), ALPN must be h2, gRPC unary only.
 *   MR_SRV_LISTENER_PLAIN   plain HTTP/1.1 (metrics, events, health).
 * The certificate and key of a TLS listener come from a provider callback that is asked on
 * every handshake (spec §3.5: they change at runtime).
 *
 * Routing: exact (method, path) match. Unknown paths and methods answer 405 with
 * {"status":"error","data":null}; non-canonical paths get a 301 to the cleaned path as Go's
 * ServeMux does (spec §4.2). On the mesh listener an unknown method answers gRPC
 * UNIMPLEMENTED.
 *
 * Limits (mr_srv_limits): a request head over max_header_bytes gets 431, a REST body over
 * its route's limit (mr_srv_route_body; max_small_body_bytes by default, nothing for GET and
 * HEAD) 413 before any of it is buffered (HTTP/1.1: the rest of the body is read and dropped,
 * then the connection closes; HTTP/2: only the stream is answered), a gRPC message over
 * max_grpc_msg_bytes RESOURCE_EXHAUSTED. A connection that does not finish its TLS handshake,
 * its request head or its body in time is closed, and so is one idle for idle_timeout_ms.
 *
 * Hostile load (docs/security.md): each listener admits its own number of connections, and
 * one source address at most max_conns_per_source of them; a full listener closes its
 * longest-idle connection for a new one, or refuses the new one when all are busy, so one
 * listener's flood never takes another's room. Request bodies in memory are charged to the
 * server's body_budget (one source at most a quarter of it; bodies over 64 KiB at most three
 * quarters in all, so small requests such as activations always find room); a body the
 * budget cannot hold is answered 503 / RESOURCE_EXHAUSTED and dropped.
 *
 * Ownership: strings and slices returned by the request accessors are borrowed from the
 * request and valid until it is completed. Response bodies are copied (or taken over by
 * mr_srv_resp_send_buf). The TLS private key comes from the provider per handshake and is not
 * kept by this layer.
 *
 * Errors: functions returning mr_result record the cause in the thread's error slot.
 */
#ifndef MR_COORDINATOR_SERVER_H
#define MR_COORDINATOR_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <protobuf-c/protobuf-c.h>

#include "common/buf.h"
#include "common/grpc.h"
#include "common/result.h"

typedef struct mr_srv mr_srv;
typedef struct mr_srv_request mr_srv_request;

typedef enum mr_srv_listener_kind {
    MR_SRV_LISTENER_CLIENT = 0,
    MR_SRV_LISTENER_MESH = 1,
    MR_SRV_LISTENER_PLAIN = 2,
} mr_srv_listener_kind;

typedef enum mr_srv_proto {
    MR_SRV_PROTO_HTTP1 = 1,
    MR_SRV_PROTO_HTTP2 = 2,
} mr_srv_proto;

/* Limits. Times are milliseconds, sizes bytes. 0 in a field of the struct passed to
 * mr_srv_new means "default". */
typedef struct mr_srv_limits {
    size_t max_header_bytes;     /* request line + headers (h1) / header list (h2); 64 KiB */
    size_t max_body_bytes;       /* largest REST body any route may take; 8 MiB */
    size_t max_small_body_bytes; /* body limit of a route without mr_srv_route_body; 64 KiB */
    size_t max_grpc_msg_bytes;   /* gRPC receive message; 4 MiB (RESOURCE_EXHAUSTED beyond) */
    unsigned max_conns;          /* connections of the client listener; 1024 */
    unsigned mesh_max_conns;     /* connections of the mesh listener; 4096 */
    unsigned plain_max_conns;    /* connections of a plain (metrics) listener; 128 */
    unsigned max_conns_per_source; /* per listener and peer address; 256 (UINT_MAX: no limit) */
    size_t body_budget;          /* request-body memory, all listeners together; 32 MiB */
    unsigned handshake_timeout_ms; /* TLS handshake; 5 s */
    unsigned header_timeout_ms;  /* from the first byte of a request to its last header; 10 s */
    unsigned body_timeout_ms;    /* without progress while a body is read; 30 s */
    unsigned idle_timeout_ms;    /* connection without a request (keep-alive, h2); 60 s */
    unsigned h2_max_streams;     /* SETTINGS_MAX_CONCURRENT_STREAMS; 100 */
    unsigned stop_grace_ms;      /* graceful stop waits this long for in-flight work; 10 s */
    unsigned max_inflight;       /* requests held by handlers; beyond: 503 / UNAVAILABLE; 4096 */
} mr_srv_limits;

void mr_srv_limits_default(mr_srv_limits *l);

/* Certificate provider for a TLS listener. Called on the loop thread during every handshake.
 * On success *cert and *key are NEW references that the server releases. The key is used
 * only for the handshake; the server keeps no other copy. */
typedef MR_RESULT (*mr_srv_cert_fn)(void *arg, X509 **cert, EVP_PKEY **key);

/* A request handler. See the thread rules above; `arg` is the route's argument. */
typedef void (*mr_srv_handler_fn)(mr_srv_request *req, void *arg);

/* Creates a server (no listeners yet). workers = 0 means one per online CPU. */
MR_API MR_RESULT mr_srv_new(const mr_srv_limits *limits, unsigned workers, mr_srv **out);
/* Stops the workers and frees everything. Call after mr_srv_run has returned (or instead of
 * it). NULL-safe. Handlers must not complete requests after this. */
MR_API void mr_srv_free(mr_srv *s);

/* Binds a listener. addr is "host:port", "[v6]:port" or ":port" (all interfaces, as Go);
 * port 0 picks a free port (see mr_srv_listener_port). cert_fn is required for TLS kinds and
 * ignored for PLAIN. *id receives the listener's handle for mr_srv_route. */
MR_API MR_RESULT mr_srv_listen(mr_srv *s, mr_srv_listener_kind kind, const char *addr,
                               mr_srv_cert_fn cert_fn, void *cert_arg, int *id);
MR_API uint16_t mr_srv_listener_port(const mr_srv *s, int id);

enum {
    /* Run the handler on the loop thread. Only for quick, non-blocking handlers. */
    MR_SRV_ROUTE_INLINE = 1u << 0,
};

/* Registers an exact (method, path) route on a CLIENT or PLAIN listener. Routes on the client
 * listener get per-path HTTP metrics (spec §11.1). */
MR_API MR_RESULT mr_srv_route(mr_srv *s, int listener, const char *method, const char *path,
                              unsigned flags, mr_srv_handler_fn fn, void *arg);
/* Body policy of a REST route registered before (default: max_small_body_bytes, and no body
 * at all for GET and HEAD). max_body may not exceed max_body_bytes. precheck, if not NULL,
 * runs on the loop thread once the request head is in and before any body byte is buffered:
 * it tells whether the handler will look at the body at all (e.g. the peer's leaf is a user's;
 * the state accepts a manifest). It must be quick, and must only answer false where the
 * handler refuses before reading the body: the server then reads and drops the body and runs
 * the handler with an empty one (mr_srv_req_body_withheld true), so an unauthenticated client
 * cannot make the server hold a large body. */
typedef bool (*mr_srv_precheck_fn)(const mr_srv_request *req, void *arg);
MR_API MR_RESULT mr_srv_route_body(mr_srv *s, int listener, const char *method,
                                   const char *path, size_t max_body,
                                   mr_srv_precheck_fn precheck);

/* Registers a gRPC unary method "/<service>/<method>" on a MESH listener (e.g. "rpc.Marble",
 * "Activate"). The handler sees the unframed request message as the body. */
MR_API MR_RESULT mr_srv_grpc_method(mr_srv *s, int listener, const char *service,
                                    const char *method, unsigned flags, mr_srv_handler_fn fn,
                                    void *arg);

/* Runs the loop on the calling thread until mr_srv_stop (or SIGTERM/SIGINT when
 * handle_signals). Stopping is graceful: listeners close, idle connections close, in-flight
 * requests finish (bounded by stop_grace_ms), then the call returns. */
MR_API MR_RESULT mr_srv_run(mr_srv *s, bool handle_signals);
/* Installs the SIGTERM/SIGINT handlers now (they stop the server gracefully once it runs);
 * call before announcing readiness so that an early signal is not lost. */
MR_API MR_RESULT mr_srv_handle_signals(mr_srv *s);
/* Asks the loop to stop. Any thread; not async-signal-safe. */
MR_API void mr_srv_stop(mr_srv *s);

/* ---- request (read-only; valid until completed) ---- */

MR_API const char *mr_srv_req_method(const mr_srv_request *r);
/* The decoded path ("/status"). */
MR_API const char *mr_srv_req_path(const mr_srv_request *r);
/* The raw query string without '?', "" when there is none. */
MR_API const char *mr_srv_req_query(const mr_srv_request *r);
/* First value of a header (name case-insensitive), or NULL. */
MR_API const char *mr_srv_req_header(const mr_srv_request *r, const char *name);
MR_API mr_slice mr_srv_req_body(const mr_srv_request *r);
/* True when the route's precheck declined the body (mr_srv_route_body): the body is empty.
 * A handler that finds the precheck's reason gone (the state changed in between) must not
 * treat the empty body as the client's: answer 503 and let the client retry. */
MR_API bool mr_srv_req_body_withheld(const mr_srv_request *r);
/* DER of the TLS peer's leaf certificate; empty on plain HTTP or when none was sent. This is
 * the only certificate whose key the handshake proves (CertificateVerify): any further
 * certificates the peer sent are attacker-chosen data and are not exposed, so nothing above
 * this layer can authenticate on them (docs/security.md). */
MR_API mr_slice mr_srv_req_peer_leaf(const mr_srv_request *r);
MR_API mr_srv_proto mr_srv_req_proto(const mr_srv_request *r);
/* True once the client has gone away (connection closed or stream reset). Long handlers may
 * check it and stop early; they must still complete the request. Any thread. */
MR_API bool mr_srv_req_abandoned(const mr_srv_request *r);

/* ---- completing a request (each completes it; exactly one per request) ---- */

/* Adds a response header before completion. Fails (internal) on allocation failure. */
MR_API MR_RESULT mr_srv_resp_header(mr_srv_request *r, const char *name, const char *value);
/* Sends status, optional Content-Type (NULL = none) and a copy of body. */
MR_API void mr_srv_resp_send(mr_srv_request *r, int status, const char *content_type,
                             mr_slice body);
/* Same, taking over the storage of *body (which is left empty). */
MR_API void mr_srv_resp_send_buf(mr_srv_request *r, int status, const char *content_type,
                                 mr_buf *body);

/* The response will carry secrets: this layer then builds and keeps the body in wiped secret
 * memory (copies made by nghttp2, libevent and OpenSSL while sending are outside its reach).
 * Call before completing the request. */
MR_API void mr_srv_resp_mark_secret(mr_srv_request *r);

/* JSend envelopes (spec §4.3, §12.4). data_json is a complete JSON text or NULL for null. */
MR_API void mr_srv_reply_success(mr_srv_request *r, const char *data_json);
/* 'error' form: text/plain; charset=utf-8 + nosniff, message omitted when empty or NULL. */
MR_API void mr_srv_reply_error(mr_srv_request *r, int status, const char *msg);
/* 'error' form with the status of the error's category and its message. */
MR_API void mr_srv_reply_error_from(mr_srv_request *r, const mr_error *e);
/* v2 'fail' form: application/json, {"status":"fail","data":<data>,"message":"<msg>"}. */
MR_API void mr_srv_reply_fail(mr_srv_request *r, int status, const char *data_json,
                              const char *msg);

/* gRPC: a successful unary answer carrying msg (already serialised). */
MR_API void mr_srv_grpc_reply(mr_srv_request *r, mr_slice msg);
/* gRPC: serialises a protobuf-c message and answers with it. */
MR_API void mr_srv_grpc_reply_msg(mr_srv_request *r, const ProtobufCMessage *msg);
/* gRPC: a failure with a status code (mr_grpc_code, common/grpc.h) and message. */
MR_API void mr_srv_grpc_fail(mr_srv_request *r, int code, const char *msg);
MR_API void mr_srv_grpc_fail_from(mr_srv_request *r, const mr_error *e);

/* ---- pure helpers (no server needed; unit-tested) ---- */

MR_API MR_RESULT mr_srv_jsend_success(mr_buf *out, const char *data_json);
MR_API MR_RESULT mr_srv_jsend_error(mr_buf *out, const char *msg);
MR_API MR_RESULT mr_srv_jsend_fail(mr_buf *out, const char *data_json, const char *msg);

/* Go's path cleaning for the mux: "//a/../b/" -> "/b/". Appends to out (NUL-terminated). */
MR_API MR_RESULT mr_srv_path_clean(const char *path, mr_buf *out);

/* Values of `key` in a raw query string, decoded as Go's url.ParseQuery ('+' is a space).
 * Not strict: malformed pairs are skipped as r.URL.Query() does. Strict: the first malformed
 * pair fails with Go's text (MR_ERR_USAGE). */
typedef struct mr_srv_strlist {
    char **v;
    size_t n;
} mr_srv_strlist;
MR_API MR_RESULT mr_srv_query_values(const char *query, const char *key, bool strict,
                                     mr_srv_strlist *out);
MR_API void mr_srv_strlist_free(mr_srv_strlist *l);

/* gRPC framing, codes and grpc-message encoding: common/grpc.h. */

/* ---- metrics (spec §11.1) ---- */

/* Appends the server's metrics (gRPC server counters, per-path HTTP metrics) in Prometheus
 * text format. Lock-free reads of atomic counters. */
MR_API MR_RESULT mr_srv_metrics_render(const mr_srv *s, mr_buf *out);
/* Helpers for other layers that add their own families to the same page (e.g.
 * coordinator_state): a "# HELP"/"# TYPE" header, then samples. */
MR_API MR_RESULT mr_srv_prom_family(mr_buf *out, const char *name, const char *type,
                                    const char *help);
/* One sample line; after the value come label pairs "k1", "v1", "k2", "v2", ..., ended by
 * MR_SRV_PROM_END (values are escaped). Example:
 *   mr_srv_prom_sample(b, "coordinator_state", 2, MR_SRV_PROM_END) */
#define MR_SRV_PROM_END ((const char *)NULL)
MR_API MR_RESULT mr_srv_prom_sample(mr_buf *out, const char *name, double value, ...)
    __attribute__((sentinel));

#endif
