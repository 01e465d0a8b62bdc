/* SPDX-License-Identifier: Apache-2.0 */
/* etcd v3 over gRPC: connection pool with fail-over, ranges, transactions, the watch thread. */
#include "coordinator/store/etcd_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/rpc/rpc.h"

#define MAX_ENDPOINTS 16
#define RESP_MAX ((size_t)64 << 20)
#define PAGE 1000
#define WATCH_POLL_MS 200

typedef struct endpoint {
    char host[256];
    char port[8];
} endpoint;

typedef struct pconn {
    mr_rpc_conn *c;
    bool busy;
} pconn;

struct mr_etcd {
    endpoint eps[MAX_ENDPOINTS];
    size_t n_eps;
    SSL_CTX *tls;
    unsigned timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pconn *pool;
    size_t pool_n;
    size_t next_ep;
    /* watch */
    pthread_t wt;
    bool w_started;
    _Atomic bool w_stop;
    _Atomic bool w_live;
    _Atomic bool w_kick; /* the stream is suspect: start a new one */
    mr_buf wkey, wend;
    int64_t wrev;
    mr_etcd_watch_fn wfn;
    void *warg;
};

/* ---- configuration ---- */

static MR_RESULT parse_endpoint(const char *s, size_t n, bool *tls, endpoint *ep)
{
    const char *p = s;
    size_t len = n;
    if (len > 8 && strncasecmp(p, "https://", 8) == 0) {
        *tls = true;
        p += 8;
        len -= 8;
    } else if (len > 7 && strncasecmp(p, "http://", 7) == 0) {
        *tls = false;
        p += 7;
        len -= 7;
    } else {
        MR_BAIL(MR_ERR_USAGE, "EDG_COORDINATOR_ETCD_ENDPOINTS: %.*s: not an http:// or https:// URL",
                (int)n, s);
    }
    while (len > 0 && p[len - 1] == '/')
        len--;
    const char *colon = NULL;
    if (len > 0 && p[0] == '[') {
        const char *rb = memchr(p, ']', len);
        MR_ENSURE(rb != NULL && rb + 1 < p + len && rb[1] == ':', MR_ERR_USAGE,
                  "EDG_COORDINATOR_ETCD_ENDPOINTS: %.*s: bad address", (int)n, s);
        colon = rb + 1;
        MR_ENSURE((size_t)(rb - p - 1) < sizeof(ep->host), MR_ERR_USAGE, "etcd host too long");
        memcpy(ep->host, p + 1, (size_t)(rb - p - 1));
        ep->host[rb - p - 1] = '\0';
    } else {
        for (size_t i = 0; i < len; i++)
            if (p[i] == ':')
                colon = p + i;
        MR_ENSURE(colon != NULL, MR_ERR_USAGE,
                  "EDG_COORDINATOR_ETCD_ENDPOINTS: %.*s: the port is missing", (int)n, s);
        MR_ENSURE((size_t)(colon - p) > 0 && (size_t)(colon - p) < sizeof(ep->host), MR_ERR_USAGE,
                  "EDG_COORDINATOR_ETCD_ENDPOINTS: %.*s: bad host", (int)n, s);
        memcpy(ep->host, p, (size_t)(colon - p));
        ep->host[colon - p] = '\0';
    }
    size_t plen = (size_t)(p + len - colon - 1);
    MR_ENSURE(plen > 0 && plen < 6, MR_ERR_USAGE, "EDG_COORDINATOR_ETCD_ENDPOINTS: %.*s: bad port",
              (int)n, s);
    for (size_t i = 0; i < plen; i++)
        MR_ENSURE(colon[1 + i] >= '0' && colon[1 + i] <= '9', MR_ERR_USAGE,
                  "EDG_COORDINATOR_ETCD_ENDPOINTS: %.*s: bad port", (int)n, s);
    memcpy(ep->port, colon + 1, plen);
    ep->port[plen] = '\0';
    return MR_SUCCESS;
}

static MR_RESULT parse_endpoints(mr_etcd *e, const char *list, bool *tls)
{
    bool first = true;
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0) {
            bool t = false;
            MR_ENSURE(e->n_eps < MAX_ENDPOINTS, MR_ERR_USAGE,
                      "EDG_COORDINATOR_ETCD_ENDPOINTS: more than %d endpoints", MAX_ENDPOINTS);
            MR_GUARD(parse_endpoint(p, n, &t, &e->eps[e->n_eps]));
            MR_ENSURE(first || t == *tls, MR_ERR_USAGE,
                      "EDG_COORDINATOR_ETCD_ENDPOINTS: mixes http:// and https://");
            *tls = t;
            first = false;
            e->n_eps++;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    MR_ENSURE(e->n_eps > 0, MR_ERR_USAGE, "EDG_COORDINATOR_ETCD_ENDPOINTS: no endpoint");
    return MR_SUCCESS;
}

static MR_RESULT tls_context(const mr_etcd_config *cfg, SSL_CTX **out)
{
    mr_result res = MR_FAILURE;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    MR_ENSURE_ALLOC(ctx);
    MR_ENSURE_OUT(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1, MR_ERR_INTERNAL,
                  "etcd: TLS set-up failed");
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->ca_file != NULL)
        MR_GUARD_OSSL_OUT(SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL), MR_ERR_USAGE,
                          "EDG_COORDINATOR_ETCD_CA: cannot load %s", cfg->ca_file);
    else
        MR_GUARD_OSSL_OUT(SSL_CTX_set_default_verify_paths(ctx), MR_ERR_INTERNAL,
                          "etcd: cannot load the system CA store");
    MR_ENSURE_OUT((cfg->cert_file == NULL) == (cfg->key_file == NULL), MR_ERR_USAGE,
                  "EDG_COORDINATOR_ETCD_CERT and EDG_COORDINATOR_ETCD_KEY go together");
    if (cfg->cert_file != NULL) {
        MR_GUARD_OSSL_OUT(SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file), MR_ERR_USAGE,
                          "EDG_COORDINATOR_ETCD_CERT: cannot load %s", cfg->cert_file);
        MR_GUARD_OSSL_OUT(SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM),
                          MR_ERR_USAGE, "EDG_COORDINATOR_ETCD_KEY: cannot load %s", cfg->key_file);
        MR_GUARD_OSSL_OUT(SSL_CTX_check_private_key(ctx), MR_ERR_USAGE,
                          "EDG_COORDINATOR_ETCD_KEY does not belong to EDG_COORDINATOR_ETCD_CERT");
    }
    *out = ctx;
    ctx = NULL;
    res = MR_SUCCESS;
out:
    SSL_CTX_free(ctx);
    return res;
}

MR_RESULT mr_etcd_open(const mr_etcd_config *cfg, mr_etcd **out)
{
    mr_result res = MR_FAILURE;
    bool tls = false;
    mr_etcd *e = mr_calloc(1, sizeof(*e));
    MR_ENSURE_ALLOC(e);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    mr_buf_init(&e->wkey, 0, 0);
    mr_buf_init(&e->wend, 0, 0);
    e->timeout_ms = cfg->timeout_ms != 0 ? cfg->timeout_ms : 5000;
    MR_ENSURE_OUT(cfg->endpoints != NULL, MR_ERR_USAGE, "EDG_COORDINATOR_ETCD_ENDPOINTS is not set");
    MR_GUARD_OUT(parse_endpoints(e, cfg->endpoints, &tls));
    if (tls)
        MR_GUARD_OUT(tls_context(cfg, &e->tls));
    e->pool_n = cfg->pool_size != 0 ? cfg->pool_size : 8;
    e->pool = mr_calloc(e->pool_n, sizeof(*e->pool));
    MR_ENSURE_ALLOC_OUT(e->pool);
    *out = e;
    e = NULL;
    res = MR_SUCCESS;
out:
    mr_etcd_close(e);
    return res;
}

void mr_etcd_close(mr_etcd *e)
{
    if (e == NULL)
        return;
    if (e->w_started) {
        e->w_stop = true;
        pthread_join(e->wt, NULL);
    }
    for (size_t i = 0; e->pool != NULL && i < e->pool_n; i++)
        mr_rpc_close(e->pool[i].c);
    mr_free(e->pool);
    SSL_CTX_free(e->tls);
    mr_buf_free(&e->wkey);
    mr_buf_free(&e->wend);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    mr_free(e);
}

/* ---- connections ---- */

static MR_RESULT dial(mr_etcd *e, uint64_t deadline_ms, mr_rpc_conn **out)
{
    char why[MR_ERR_MSG_MAX] = "no endpoint tried";
    for (size_t tries = 0; tries < e->n_eps && mr_rpc_now_ms() < deadline_ms; tries++) {
        pthread_mutex_lock(&e->mu);
        const endpoint *ep = &e->eps[e->next_ep++ % e->n_eps];
        pthread_mutex_unlock(&e->mu);
        mr_rpc_target t = {.host = ep->host, .port = ep->port, .tls = e->tls,
                           .verify_name = e->tls != NULL ? ep->host : NULL};
        uint64_t d = mr_rpc_now_ms() + 2000;
        if (mr_ok(mr_rpc_connect(&t, d < deadline_ms ? d : deadline_ms, out)))
            return MR_SUCCESS;
        (void)snprintf(why, sizeof(why), "%s", mr_error_get()->msg);
    }
    MR_BAIL(MR_ERR_UNAVAILABLE, "%s", why);
}

static pconn *acquire(mr_etcd *e, uint64_t deadline_ms)
{
    pthread_mutex_lock(&e->mu);
    for (;;) {
        for (size_t i = 0; i < e->pool_n; i++) {
            if (!e->pool[i].busy) {
                e->pool[i].busy = true;
                pthread_mutex_unlock(&e->mu);
                return &e->pool[i];
            }
        }
        uint64_t now = mr_rpc_now_ms();
        if (now >= deadline_ms)
            break;
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wait = deadline_ms - now;
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

static void release(mr_etcd *e, pconn *p)
{
    pthread_mutex_lock(&e->mu);
    p->busy = false;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

static bool refused(mr_grpc_code c)
{
    return c == MR_GRPC_INVALID_ARGUMENT || c == MR_GRPC_FAILED_PRECONDITION ||
           c == MR_GRPC_RESOURCE_EXHAUSTED || c == MR_GRPC_OUT_OF_RANGE ||
           c == MR_GRPC_PERMISSION_DENIED || c == MR_GRPC_UNAUTHENTICATED;
}

/* One call on a pooled connection. Idempotent calls move on to the next member when one is
 * down or answers UNAVAILABLE (no leader, a restarting member) until the deadline. */
static MR_RESULT call(mr_etcd *e, const char *path, mr_slice req, bool idempotent, mr_buf *resp)
{
    uint64_t deadline = mr_rpc_now_ms() + e->timeout_ms;
    pconn *p = acquire(e, deadline);
    MR_ENSURE(p != NULL, MR_ERR_UNAVAILABLE, "etcd unavailable: every connection is busy");
    mr_result r;
    mr_grpc_code last = MR_GRPC_UNAVAILABLE;
    for (int attempt = 0;; attempt++) {
        if (!mr_rpc_alive(p->c)) {
            mr_rpc_close(p->c);
            p->c = NULL;
            r = dial(e, deadline, &p->c);
            if (!mr_ok(r))
                break;
        }
        mr_grpc_code st = MR_GRPC_OK;
        mr_buf_reset(resp);
        r = mr_rpc_call(p->c, path, req, RESP_MAX, deadline, resp, &st);
        last = st;
        if (mr_ok(r))
            break;
        bool retry = idempotent && (st == MR_GRPC_UNAVAILABLE || !mr_rpc_usable(p->c)) &&
                     mr_rpc_now_ms() + 50 < deadline && attempt < 32;
        if (st == MR_GRPC_UNAVAILABLE && mr_rpc_usable(p->c)) {
            /* this member cannot serve (no leader, no quorum): try another one */
            mr_rpc_close(p->c);
            p->c = NULL;
        }
        if (!retry)
            break;
        usleep(attempt < 4 ? 10000 : 100000);
    }
    if (!mr_ok(r)) {
        /* whatever kept etcd from answering (no member, no quorum, its own deadline), the
         * store sees one thing: etcd is unavailable now; a request etcd refuses outright
         * (too many operations, too large) is an error of ours or of etcd's limits */
        char msg[MR_ERR_MSG_MAX];
        (void)snprintf(msg, sizeof(msg), "%s", mr_error_get()->msg);
        if (refused(last))
            mr_error_set(MR_ERR_INTERNAL, __FILE__, __LINE__, "etcd refused the request: %s", msg);
        else
            mr_error_set(MR_ERR_UNAVAILABLE, __FILE__, __LINE__, "etcd unavailable: %s", msg);
    }
    release(e, p);
    return r;
}

/* ---- KV ---- */

MR_RESULT mr_etcd_prefix_end(mr_slice prefix, mr_buf *end)
{
    mr_buf_reset(end);
    MR_GUARD(mr_buf_append(end, prefix.ptr, prefix.len));
    for (size_t i = end->len; i > 0; i--) {
        if (end->data[i - 1] < 0xff) {
            end->data[i - 1]++;
            end->len = i;
            return MR_SUCCESS;
        }
    }
    /* all 0xff: the range reaches the end of the key space ("\0") */
    mr_buf_reset(end);
    return mr_buf_append_u8(end, 0);
}

static ProtobufCBinaryData bin(mr_slice s)
{
    ProtobufCBinaryData b = {s.len, (uint8_t *)(uintptr_t)s.ptr};
    return b;
}

static MR_RESULT pack_call(mr_etcd *e, const char *path, const ProtobufCMessage *m,
                           bool idempotent, mr_buf *resp)
{
    mr_buf req;
    mr_buf_init(&req, 0, MR_BUF_WIPE);
    size_t n = protobuf_c_message_get_packed_size(m);
    mr_result r = mr_buf_reserve(&req, n);
    if (mr_ok(r)) {
        req.len = protobuf_c_message_pack(m, req.data);
        r = call(e, path, mr_buf_slice(&req), idempotent, resp);
    }
    mr_buf_free(&req);
    return r;
}

MR_RESULT mr_etcd_range(mr_etcd *e, mr_slice key, mr_slice end, int64_t rev, mr_etcd_kv_fn fn,
                        void *arg, int64_t *header_rev)
{
    mr_result res = MR_FAILURE;
    mr_buf from, resp;
    Etcdserverpb__RangeResponse *rr = NULL;
    mr_buf_init(&from, 0, 0);
    mr_buf_init(&resp, 0, MR_BUF_WIPE);
    MR_GUARD_OUT(mr_buf_append(&from, key.ptr, key.len));
    for (bool more = true; more;) {
        Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
        req.key = bin(mr_buf_slice(&from));
        req.range_end = bin(end);
        req.revision = rev;
        req.limit = end.len > 0 ? PAGE : 0;
        MR_GUARD_OUT(pack_call(e, "/etcdserverpb.KV/Range", &req.base, true, &resp));
        rr = etcdserverpb__range_response__unpack(NULL, resp.len, resp.data);
        MR_ENSURE_OUT(rr != NULL, MR_ERR_PROTOCOL, "etcd: malformed RangeResponse");
        if (rev == 0) /* later pages read at the first page's revision: one snapshot */
            rev = rr->header != NULL ? rr->header->revision : 0;
        if (header_rev != NULL)
            *header_rev = rev;
        for (size_t i = 0; i < rr->n_kvs; i++)
            MR_GUARD_OUT(fn(arg, rr->kvs[i]));
        more = rr->more && rr->n_kvs > 0 && end.len > 0;
        if (more) {
            const ProtobufCBinaryData *last = &rr->kvs[rr->n_kvs - 1]->key;
            mr_buf_reset(&from);
            MR_GUARD_OUT(mr_buf_append(&from, last->data, last->len));
            MR_GUARD_OUT(mr_buf_append_u8(&from, 0)); /* the next key after it */
        }
        etcdserverpb__range_response__free_unpacked(rr, NULL);
        rr = NULL;
    }
    res = MR_SUCCESS;
out:
    if (rr != NULL)
        etcdserverpb__range_response__free_unpacked(rr, NULL);
    mr_buf_free(&from);
    mr_buf_free(&resp);
    return res;
}

MR_RESULT mr_etcd_txn(mr_etcd *e, const Etcdserverpb__TxnRequest *req, bool *succeeded,
                      int64_t *rev)
{
    mr_buf resp;
    mr_buf_init(&resp, 0, MR_BUF_WIPE);
    mr_result r = pack_call(e, "/etcdserverpb.KV/Txn", &req->base, false, &resp);
    Etcdserverpb__TxnResponse *tr = NULL;
    if (mr_ok(r)) {
        tr = etcdserverpb__txn_response__unpack(NULL, resp.len, resp.data);
        if (tr == NULL) {
            mr_error_set(MR_ERR_PROTOCOL, __FILE__, __LINE__, "etcd: malformed TxnResponse");
            r = MR_FAILURE;
        }
    }
    if (mr_ok(r)) {
        *succeeded = tr->succeeded;
        *rev = tr->header != NULL ? tr->header->revision : 0;
    }
    etcdserverpb__txn_response__free_unpacked(tr, NULL);
    mr_buf_free(&resp);
    return r;
}

/* ---- watch ---- */

static MR_RESULT watch_create(mr_etcd *e, mr_rpc_stream *s)
{
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    cr.key = bin(mr_buf_slice(&e->wkey));
    cr.range_end = bin(mr_buf_slice(&e->wend));
    cr.start_revision = e->wrev;
    cr.progress_notify = true;
    Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
    wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    wr.create_request = &cr;
    uint8_t buf[8192];
    size_t need = etcdserverpb__watch_request__get_packed_size(&wr);
    MR_ENSURE(need <= sizeof(buf), MR_ERR_USAGE, "etcd: watch key too long");
    size_t n = etcdserverpb__watch_request__pack(&wr, buf);
    return mr_rpc_stream_send(s, MR_SLICE(buf, n), mr_rpc_now_ms() + e->timeout_ms);
}

/* One response: hand it on, and remember where to resume. */
static void watch_deliver(mr_etcd *e, const Etcdserverpb__WatchResponse *r)
{
    if (r->created)
        e->w_live = true;
    else if (r->n_events == 0 && !r->canceled && r->header != NULL &&
             r->header->revision >= e->wrev)
        e->wrev = r->header->revision + 1; /* progress: everything up to it was delivered */
    if (r->compact_revision > 0) {
        /* the history we asked for is gone: the caller reloads, we go on from now */
        e->wrev = r->header != NULL ? r->header->revision + 1 : 0;
    }
    for (size_t i = 0; i < r->n_events; i++)
        if (r->events[i]->kv != NULL && r->events[i]->kv->mod_revision >= e->wrev)
            e->wrev = r->events[i]->kv->mod_revision + 1;
    e->wfn(e->warg, r);
}

/* One connection's life: create the watch and pass responses on until it breaks or stops. */
static void watch_session(mr_etcd *e)
{
    mr_rpc_conn *c = NULL;
    mr_rpc_stream *s = NULL;
    mr_buf msg;
    mr_buf_init(&msg, RESP_MAX, MR_BUF_WIPE);
    if (!mr_ok(dial(e, mr_rpc_now_ms() + e->timeout_ms, &c)) ||
        !mr_ok(mr_rpc_stream_open(c, "/etcdserverpb.Watch/Watch", RESP_MAX, &s)) ||
        !mr_ok(watch_create(e, s)))
        goto out;
    while (!e->w_stop) {
        bool got = false;
        if (e->w_kick) { /* a reader waited for it in vain: the stream may hang silently */
            e->w_kick = false;
            mr_error_set(MR_ERR_UNAVAILABLE, __FILE__, __LINE__, "etcd: the watch fell behind");
            break;
        }
        mr_buf_reset(&msg);
        if (!mr_ok(mr_rpc_stream_recv(s, mr_rpc_now_ms() + WATCH_POLL_MS, &msg, &got, NULL)))
            break;
        if (!got)
            continue;
        Etcdserverpb__WatchResponse *r =
            etcdserverpb__watch_response__unpack(NULL, msg.len, msg.data);
        if (r == NULL)
            break;
        bool canceled = r->canceled; /* (compacted: resumed from now on a new stream) */
        watch_deliver(e, r);
        etcdserverpb__watch_response__free_unpacked(r, NULL);
        if (canceled)
            break;
    }
out:
    if (!e->w_stop)
        MR_LOG_WARN("etcd watch interrupted; reconnecting", MR_F_ERR());
    e->w_live = false;
    mr_error_clear();
    mr_rpc_stream_close(s);
    mr_rpc_close(c);
    mr_buf_free(&msg);
}

static void *watch_main(void *arg)
{
    mr_etcd *e = arg;
    while (!e->w_stop) {
        watch_session(e);
        for (int i = 0; i < 5 && !e->w_stop; i++)
            usleep(WATCH_POLL_MS * 1000 / 5);
    }
    return NULL;
}

MR_RESULT mr_etcd_watch(mr_etcd *e, mr_slice key, mr_slice end, int64_t start_rev,
                        mr_etcd_watch_fn fn, void *arg)
{
    MR_ENSURE(!e->w_started, MR_ERR_USAGE, "etcd: one watch per client");
    MR_GUARD(mr_buf_set(&e->wkey, key.ptr, key.len));
    MR_GUARD(mr_buf_set(&e->wend, end.ptr, end.len));
    e->wrev = start_rev;
    e->wfn = fn;
    e->warg = arg;
    MR_ENSURE(pthread_create(&e->wt, NULL, watch_main, e) == 0, MR_ERR_INTERNAL,
              "etcd: cannot start the watch thread");
    e->w_started = true;
    return MR_SUCCESS;
}

bool mr_etcd_watch_live(mr_etcd *e) { return e->w_live; }

void mr_etcd_watch_kick(mr_etcd *e) { e->w_kick = true; }
