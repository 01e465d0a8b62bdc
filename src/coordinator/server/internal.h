/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the network layer, shared by its files, its unit tests and fuzz targets. */
#ifndef MR_COORDINATOR_SERVER_INTERNAL_H
#define MR_COORDINATOR_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "common/grpc.h"
#include "coordinator/server/server.h"

#define MR_SRV_MAX_LISTENERS 8
#define MR_SRV_MAX_HEADERS 128

/* ---- headers ---- */

typedef struct mr_srv_hdr {
    char *name; /* lower case */
    char *value;
} mr_srv_hdr;

typedef struct mr_srv_hdrs {
    mr_srv_hdr *v;
    size_t n;
    size_t cap;
    size_t bytes; /* sum of name and value sizes, for the limit */
} mr_srv_hdrs;

MR_RESULT mr_srv_hdrs_add(mr_srv_hdrs *h, const char *name, size_t nlen, const char *value,
                          size_t vlen, size_t max_bytes);
const char *mr_srv_hdrs_get(const mr_srv_hdrs *h, const char *name);
void mr_srv_hdrs_free(mr_srv_hdrs *h);

/* ---- HTTP/1.1 request head ---- */

typedef struct mr_h1_head {
    char *method;
    char *target;
    int minor;               /* HTTP/1.<minor> */
    mr_srv_hdrs hdrs;
    int64_t content_length;  /* -1 when absent */
    bool chunked;
    bool keep_alive;
    bool expect_continue;
} mr_h1_head;

/* Length of the head (through the blank line) if `in` holds a complete one, else 0.
 * *scanned lets repeated calls resume the search. Fails when the head exceeds max. */
MR_RESULT mr_h1_find_head_end(mr_slice in, size_t max, size_t *scanned, size_t *head_len);
/* Parses a complete head (as found by mr_h1_find_head_end). Failures are MR_ERR_PROTOCOL
 * (answer 400) or MR_ERR_USAGE for things answered with 501/505 (*status says which). */
MR_RESULT mr_h1_parse_head(mr_slice head, size_t max_header_bytes, mr_h1_head *out,
                           int *status);
void mr_h1_head_free(mr_h1_head *h);
/* A Content-Length value (digits only); *out must be -1 or equal the value (repeated header). */
MR_RESULT mr_h1_parse_content_length(mr_slice v, int64_t *out);

/* Incremental chunked-body decoder. */
typedef struct mr_h1_chunked {
    int state;
    uint64_t remaining;
    size_t line_len;
} mr_h1_chunked;

/* Consumes bytes from `in`, appending data to body. *consumed says how much of `in` was
 * used; *done is set when the final chunk and trailers were read. */
MR_RESULT mr_h1_chunked_feed(mr_h1_chunked *c, mr_slice in, mr_buf *body, size_t *consumed,
                             bool *done);

/* Percent-decodes a path (no '+' rule). Fails on bad escapes and NUL bytes. */
MR_RESULT mr_srv_path_unescape(const char *in, size_t n, mr_buf *out);
/* Escapes a cleaned path for a Location header (Go's url.URL.String rules for paths). */
MR_RESULT mr_srv_path_escape(const char *in, mr_buf *out);

/* ---- metrics ---- */

#define MR_SRV_HTTP_SLOTS 24
#define MR_SRV_DUR_BUCKETS 7
#define MR_SRV_SIZE_BUCKETS 5
#define MR_SRV_METHODS 8

typedef struct mr_srv_grpc_metrics {
    char service[64];
    char method[64];
    atomic_ullong started;
    atomic_ullong handled[MR_GRPC_CODES];
    atomic_ullong msg_received;
    atomic_ullong msg_sent;
} mr_srv_grpc_metrics;

typedef struct mr_srv_hist {
    atomic_ullong bucket[8]; /* non-cumulative counts; last = above the highest bound */
    atomic_ullong count;
    atomic_ullong sum_micro; /* sum in millionths of the unit */
} mr_srv_hist;

typedef struct mr_srv_http_metrics {
    char path[128];
    /* (code << 4 | method index) + 1 in key; 0 = free slot */
    atomic_uint key[MR_SRV_HTTP_SLOTS];
    atomic_ullong count[MR_SRV_HTTP_SLOTS];
    mr_srv_hist duration[MR_SRV_METHODS];
    atomic_uint duration_used[MR_SRV_METHODS];
    mr_srv_hist req_size;
    mr_srv_hist resp_size;
    atomic_llong in_flight;
} mr_srv_http_metrics;

int mr_srv_method_index(const char *method);
const char *mr_srv_method_name(int idx);
void mr_srv_http_observe(mr_srv_http_metrics *m, const char *method, int code, double seconds,
                         size_t req_size, size_t resp_size);
void mr_srv_grpc_observe(mr_srv_grpc_metrics *m, int code, bool received, bool sent);
MR_RESULT mr_srv_render_grpc(mr_srv_grpc_metrics *const *g, size_t n, mr_buf *out);
MR_RESULT mr_srv_render_http(mr_srv_http_metrics *const *h, size_t n, mr_buf *out);

/* ---- routing ---- */

typedef struct mr_srv_route_ent {
    char *method;
    char *path;
    unsigned flags;
    bool grpc;
    mr_srv_handler_fn fn;
    void *arg;
    size_t max_body;            /* most body bytes the route takes (see mr_srv_route_body) */
    mr_srv_precheck_fn precheck; /* NULL: the handler always takes the body */
    mr_srv_http_metrics *http;  /* client listener, one per path (shared between methods) */
    mr_srv_grpc_metrics *gm;    /* mesh listener */
} mr_srv_route_ent;

typedef struct mr_srv_router {
    mr_srv_route_ent *v;
    size_t n;
    size_t cap;
} mr_srv_router;

typedef enum mr_srv_route_outcome {
    MR_SRV_ROUTE_FOUND = 0,
    MR_SRV_ROUTE_REDIRECT, /* *redirect holds the Location */
    MR_SRV_ROUTE_NO_MATCH, /* 405 */
} mr_srv_route_outcome;

/* Finds the route for (method, decoded path). For REDIRECT, the cleaned, escaped path plus
 * "?query" (if any) is appended to redirect. */
MR_RESULT mr_srv_router_match(const mr_srv_router *rt, const char *method, const char *path,
                              const char *query, mr_srv_route_outcome *outcome,
                              const mr_srv_route_ent **ent, mr_buf *redirect);
MR_RESULT mr_srv_router_add(mr_srv_router *rt, const char *method, const char *path,
                            unsigned flags, bool grpc, mr_srv_handler_fn fn, void *arg);
void mr_srv_router_free(mr_srv_router *rt);

/* ---- requests ---- */

typedef struct mr_srv_job {
    void (*fn)(void *arg);
    void *arg;
    struct mr_srv_job *next;
} mr_srv_job;


typedef struct mr_srv_conn mr_srv_conn;
typedef struct mr_srv_listener mr_srv_listener;

/* ---- admission and budgets (budget.c) ----
 * Every connection belongs to one source (listener + peer address). A listener admits at most
 * its max_conns connections and a source at most max_conns_per_source; a full listener makes
 * room by closing its longest-idle connection (one that has no request in progress), else
 * refuses. Request bodies are charged, by the memory they hold, to the server's body budget
 * and to their source's share of it (a quarter); bodies over max_small_body_bytes may fill only
 * three quarters of the budget, so small requests (activations) always find room. The charge
 * is released when the body is freed. Loop thread only. */
typedef struct mr_srv_source {
    int listener;
    uint8_t family;             /* AF_INET, AF_INET6, or 0 (unknown / virtual) */
    uint8_t addr[16];
    unsigned conns;
    size_t body_bytes;
    struct mr_srv_source *next; /* hash chain */
} mr_srv_source;

typedef struct mr_srv_sources {
    mr_srv_source **buckets;
    size_t nbuckets;
    size_t count;
    uint64_t seed;
} mr_srv_sources;

typedef enum mr_srv_admit {
    MR_SRV_ADMIT_OK = 0,
    MR_SRV_ADMIT_SOURCE_FULL, /* the source holds its share of the listener's connections */
    MR_SRV_ADMIT_LISTENER_FULL, /* the listener is full and none of its connections is idle */
} mr_srv_admit;

/* Finds or creates the source of a new connection on l and decides whether it may connect;
 * may evict the listener's longest-idle connection. On MR_SRV_ADMIT_OK *src is counted. */
mr_srv_admit mr_srv_admit_conn(mr_srv *s, mr_srv_listener *l, const struct sockaddr *sa,
                               int salen, mr_srv_source **src);
/* Undoes a successful admission whose connection could not be set up. */
void mr_srv_source_release(mr_srv *s, mr_srv_listener *l, mr_srv_source *src);
/* The connection is gone: uncounts it from its listener and source. */
void mr_srv_conn_uncount(mr_srv_conn *c);
/* Eviction candidates, in two lists per listener: "fresh" connections have sent nothing since
 * they were accepted; "idle" ones wait for their peer (handshake under way, keep-alive, h2
 * without open streams). A connection with a request in progress is on neither. */
enum { MR_SRV_LIST_NONE = 0, MR_SRV_LIST_FRESH = 1, MR_SRV_LIST_IDLE = 2 };
/* Just accepted. */
void mr_srv_fresh_enter(mr_srv_conn *c);
/* The peer sent its first bytes (the TLS ClientHello): fresh becomes idle. */
void mr_srv_conn_started(mr_srv_conn *c);
/* Waiting for the peer; idempotent, moves it to the newest end. */
void mr_srv_idle_enter(mr_srv_conn *c);
void mr_srv_idle_leave(mr_srv_conn *c);
/* Charges the body memory of r after it grew to its current capacity; false (nothing charged)
 * when the listener's budget or the source's share would be exceeded. */
bool mr_srv_body_charge(mr_srv_request *r);
/* Charges room for `total` body bytes at once and reserves them in r->body; false as above. */
bool mr_srv_body_reserve(mr_srv_request *r, size_t total);
/* Frees r->body and releases what it was charged. */
void mr_srv_body_drop(mr_srv_request *r);
void mr_srv_sources_free(mr_srv_sources *t);
/* Prometheus families of connections and body memory per listener (any thread). */
MR_RESULT mr_srv_render_budgets(const mr_srv *s, mr_buf *out);

struct mr_srv_request {
    mr_srv *srv;
    mr_srv_conn *conn; /* loop thread only; NULL once the client is gone */
    int32_t stream_id; /* h2 */
    mr_srv_proto proto;
    const mr_srv_route_ent *route;

    char *method;
    char *target;
    char *path;        /* decoded */
    const char *query; /* inside target, "" when none */
    mr_srv_hdrs hdrs;
    mr_buf body;
    size_t body_off;        /* gRPC: the message inside body */
    size_t body_len;
    size_t body_max;
    bool overflow;          /* body exceeded its limit; answered early */
    bool head_only;         /* HEAD: no response body */
    bool http10;            /* HTTP/1.0 request: keep-alive must be confirmed explicitly */
    mr_buf leaf;            /* DER of the TLS peer's leaf certificate (empty: none) */
    mr_srv_listener *lst;   /* the listener it came in on (budget accounting) */
    mr_srv_source *src;     /* its source; NULL for virtual connections */
    size_t charged;         /* body bytes charged to the listener and source */
    bool withheld;          /* the route's precheck declined the body: read and dropped */
    bool budget_refused;    /* the body budget was spent: answered 503 / RESOURCE_EXHAUSTED */
    bool grpc_len_known;    /* gRPC: the message length was read and its memory charged */
    uint64_t deadline_ns;   /* gRPC: from grpc-timeout (mr_srv_now_ns clock); 0 = none */
    bool grpc;
    int grpc_err_code;      /* overflow: the status decided while receiving */
    char grpc_err_msg[160];

    /* response, written by the handler */
    int status;
    mr_srv_hdrs resp_hdrs;
    mr_buf resp_body;
    bool secret_body; /* mr_srv_resp_mark_secret: the body lives in wiped secret memory */
    int grpc_code;
    char *grpc_msg;
    size_t resp_off;     /* h2 body send offset */
    bool trailers_sent;

    /* life cycle */
    bool dispatched;     /* a handler owns it until completion arrives on the loop */
    atomic_bool abandoned; /* the client went away while a handler owned it */
    atomic_bool completed; /* a completion call was made (a second one is ignored) */
    bool done;           /* completion processed */
    struct mr_srv_request *next_done;
    struct mr_srv_request *sib_prev, *sib_next; /* h2 requests of one connection */
    mr_srv_job job;
    uint64_t start_ns;
    size_t req_size;
};

mr_srv_request *mr_srv_request_new(mr_srv *s, mr_srv_conn *c);
void mr_srv_request_free(mr_srv_request *r);
/* Once r->target is set: the query (inside target), the percent-decoded path and a copy of
 * the connection's peer leaf certificate. Fails (MR_ERR_PROTOCOL) on a target that is not a
 * path or does not decode; r->path is then NULL. */
MR_RESULT mr_srv_request_take_target(mr_srv_request *r, const mr_srv_conn *c);
/* Answer when the body budget is spent (503; gRPC RESOURCE_EXHAUSTED). */
#define MR_SRV_BUDGET_TEXT "request body budget exhausted, retry later"
/* Once the head of r is in (method, path, leaf set): *max is the most body bytes its route
 * takes; false when the body is to be withheld: the handler will not look at it (no such
 * route, or the route's precheck declined it) and it is not a small body of known length
 * (known_len: the announced length, -1 when unknown). Loop thread. */
bool mr_srv_body_policy(mr_srv_request *r, int64_t known_len, size_t *max);
/* Routes and dispatches a complete request (loop thread). Errors the server itself decides
 * (405, 301, 413, gRPC codes) are answered directly. */
void mr_srv_dispatch(mr_srv_request *r);
/* Loop thread: completion arrived; sends or drops the response. */
void mr_srv_request_completed(mr_srv_request *r);
/* The current time as an HTTP date ("Sat, 28 Nov 2026 01:23:45 GMT"). */
void mr_srv_http_date(char *buf, size_t n);
/* Serialised HTTP/1.1 response for r into out. */
MR_RESULT mr_srv_h1_serialize(const mr_srv_request *r, bool keep_alive, bool head_only,
                              struct evbuffer *out);

/* ---- connections ---- */

typedef enum mr_srv_conn_state {
    CONN_HANDSHAKE = 0,
    CONN_H1_HEAD,
    CONN_H1_BODY,
    CONN_H1_WAIT,
    CONN_H1_DISCARD, /* answered early; dropping the rest, then closing */
    CONN_H2,
    CONN_CLOSING,    /* flushing output, then closing */
} mr_srv_conn_state;

struct mr_srv_conn {
    mr_srv *srv;
    mr_srv_listener *lst;
    struct bufferevent *bev;  /* NULL for virtual connections (fuzzing, unit tests) */
    struct evbuffer *in;      /* input (bufferevent's or a standalone buffer) */
    struct evbuffer *out;     /* output */
    struct event *timer;
    mr_srv_conn_state state;
    mr_srv_proto proto;
    struct mr_srv_conn *prev, *next;

    mr_buf leaf;              /* DER of the peer's leaf certificate (empty: none) */
    mr_srv_source *src;       /* NULL for virtual connections */
    int idle;                 /* MR_SRV_LIST_*: which of the listener's lists it is on */
    struct mr_srv_conn *idle_prev, *idle_next;

    /* HTTP/1 */
    size_t scanned;
    mr_srv_request *h1_req;
    mr_h1_head head;
    bool keep_alive;
    bool head_only;
    int64_t body_left;     /* Content-Length still to read; -1 for chunked */
    mr_h1_chunked chunk;
    uint64_t discard_left;
    bool timer_is_idle;

    /* HTTP/2 */
    nghttp2_session *h2;
    mr_srv_request *h2_reqs;
    unsigned h2_open_streams;
    bool h2_goaway;
    bool closed;
    bool virtual_conn;     /* fuzzing, unit tests: never freed by the protocol code */
};

mr_srv_conn *mr_srv_conn_new(mr_srv *s, mr_srv_listener *l, struct bufferevent *bev);
/* Fuzzing and unit tests: a connection without a socket. Input goes into c->in, output
 * appears in c->out; completions need the loop to run (event_base_loop(s->base,
 * EVLOOP_NONBLOCK)). */
mr_srv_conn *mr_srv_conn_new_virtual(mr_srv *s, int listener, mr_srv_proto proto);
void mr_srv_conn_free_virtual(mr_srv_conn *c);
/* Fuzzing and unit tests: a listener that is not bound to a socket (routes can be added as
 * usual). */
MR_RESULT mr_srv_listen_virtual(mr_srv *s, mr_srv_listener_kind kind, int *id);
void mr_srv_conn_close(mr_srv_conn *c);
/* Feeds whatever is in c->in to the protocol (loop thread). */
void mr_srv_conn_process(mr_srv_conn *c);
/* Called after a handshake (or at once for plain listeners): chooses h1 or h2. */
MR_RESULT mr_srv_conn_start(mr_srv_conn *c, mr_srv_proto proto);
void mr_srv_conn_h1_response_ready(mr_srv_conn *c, mr_srv_request *r);
void mr_srv_conn_after_write(mr_srv_conn *c);
void mr_srv_conn_stop(mr_srv_conn *c);

/* HTTP/2 glue (h2.c). */
MR_RESULT mr_srv_h2_start(mr_srv_conn *c);
void mr_srv_h2_input(mr_srv_conn *c);
void mr_srv_h2_response_ready(mr_srv_conn *c, mr_srv_request *r);
void mr_srv_h2_flush(mr_srv_conn *c);
void mr_srv_h2_free(mr_srv_conn *c);
void mr_srv_h2_goaway(mr_srv_conn *c);
/* True when the connection has nothing a handler is working on: every open stream is still
 * waiting for the client (or there is none). Used by the timeout. */
bool mr_srv_h2_stalled(const mr_srv_conn *c);

/* TLS (tls.c). */
MR_RESULT mr_srv_tls_ctx_new(mr_srv_listener *l, SSL_CTX **out);
/* DER of the peer's leaf certificate (empty when none was sent). The rest of the chain is
 * not proven by the handshake and is deliberately not returned. */
MR_RESULT mr_srv_tls_peer_leaf(SSL *ssl, mr_buf *leaf);

/* ---- worker pool (pool.c) ---- */


typedef struct mr_srv_pool mr_srv_pool;
MR_RESULT mr_srv_pool_new(unsigned n, mr_srv_pool **out);
void mr_srv_pool_push(mr_srv_pool *p, mr_srv_job *job);
/* Finishes queued jobs, then joins the threads. */
void mr_srv_pool_free(mr_srv_pool *p);

/* ---- server ---- */

struct mr_srv_listener {
    mr_srv *srv;
    int id;
    mr_srv_listener_kind kind;
    struct evconnlistener *evl;
    SSL_CTX *ctx;
    mr_srv_cert_fn cert_fn;
    void *cert_arg;
    mr_srv_router router;
    uint16_t port;
    /* admission and budgets */
    unsigned max_conns;
    unsigned nconns;
    size_t body_used;   /* its part of the server's body_used (for /metrics) */
    mr_srv_conn *fresh_head, *fresh_tail; /* accepted, no byte received yet; oldest first */
    mr_srv_conn *idle_head, *idle_tail;   /* waiting for their peer; oldest first */
    /* counters for /metrics */
    atomic_ullong refused_source, refused_full, evicted, body_refused;
    atomic_ullong conns_now;
    atomic_ullong body_now;
};

struct mr_srv {
    struct event_base *base;
    struct event *wake;
    struct event *sig_term;
    struct event *sig_int;
    struct event *stop_timer;
    struct event *accept_retry;  /* re-enables accepting after accept() failed (EMFILE) */
    mr_srv_limits limits;
    mr_srv_pool *pool;
    mr_srv_listener *lst[MR_SRV_MAX_LISTENERS];
    size_t nlst;

    pthread_mutex_t lock;        /* guards done_head/done_tail and stop_requested */
    mr_srv_request *done_head;
    mr_srv_request *done_tail;
    bool stop_requested;

    mr_srv_sources sources;      /* loop thread only */
    size_t body_used;            /* request-body memory charged, all listeners (loop thread) */
    mr_srv_conn *conns;          /* loop thread only */
    unsigned nconns;
    unsigned inflight;
    bool accepting_paused;
    bool stopping;

    mr_srv_http_metrics *httpm[64];
    size_t nhttpm;
    mr_srv_grpc_metrics *grpcm[16];
    size_t ngrpcm;
};

uint64_t mr_srv_now_ns(void);

static inline struct timeval mr_srv_tv(unsigned ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000u),
                         .tv_usec = (suseconds_t)(ms % 1000u) * (suseconds_t)1000};
    return tv;
}
void mr_srv_conn_gone(mr_srv *s);
void mr_srv_check_stopped(mr_srv *s);

#endif
