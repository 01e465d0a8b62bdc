/* SPDX-License-Identifier: Apache-2.0 */
/* The server object: loop, listeners, accepting, completion queue, graceful stop. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "common/alloc.h"
#include "common/log.h"
#include "coordinator/server/internal.h"

void mr_srv_limits_default(mr_srv_limits *l)
{
    memset(l, 0, sizeof(*l));
    l->max_header_bytes = 64 << 10;
    l->max_body_bytes = 8 << 20;
    l->max_small_body_bytes = 64 << 10;
    l->max_grpc_msg_bytes = 4 << 20;
    l->max_conns = 1024;
    l->mesh_max_conns = 4096;
    l->plain_max_conns = 128;
    l->max_conns_per_source = 256;
    l->body_budget = (size_t)32 << 20;
    l->handshake_timeout_ms = 5000;
    l->header_timeout_ms = 10000;
    l->body_timeout_ms = 30000;
    l->idle_timeout_ms = 60000;
    l->h2_max_streams = 100;
    l->stop_grace_ms = 10000;
    l->max_inflight = 4096;
}

static void merge_limits(mr_srv_limits *dst, const mr_srv_limits *src)
{
    mr_srv_limits_default(dst);
    if (src == NULL)
        return;
#define TAKE(f) if (src->f != 0) dst->f = src->f
    TAKE(max_header_bytes);
    TAKE(max_body_bytes);
    TAKE(max_small_body_bytes);
    TAKE(max_grpc_msg_bytes);
    TAKE(max_conns);
    TAKE(mesh_max_conns);
    TAKE(plain_max_conns);
    TAKE(max_conns_per_source);
    TAKE(body_budget);
    TAKE(handshake_timeout_ms);
    TAKE(header_timeout_ms);
    TAKE(body_timeout_ms);
    TAKE(idle_timeout_ms);
    TAKE(h2_max_streams);
    TAKE(stop_grace_ms);
    TAKE(max_inflight);
#undef TAKE
    if (dst->max_small_body_bytes > dst->max_body_bytes)
        dst->max_small_body_bytes = dst->max_body_bytes;
}

/* Descriptors: the soft limit goes up to the hard one, and the listeners' connection budgets
 * must fit below it with room for files, the store and the pool. */
#define FD_RESERVE 256u

static void fit_descriptors(mr_srv_limits *lim)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
    }
    unsigned long long want = (unsigned long long)lim->max_conns + lim->mesh_max_conns +
                              lim->plain_max_conns + FD_RESERVE;
    if (rl.rlim_cur == RLIM_INFINITY || want <= (unsigned long long)rl.rlim_cur)
        return;
    unsigned long long room = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : rl.rlim_cur / 2;
    unsigned long long total = want - FD_RESERVE;
    lim->max_conns = (unsigned)(lim->max_conns * room / total);
    lim->mesh_max_conns = (unsigned)(lim->mesh_max_conns * room / total);
    lim->plain_max_conns = (unsigned)(lim->plain_max_conns * room / total);
    if (lim->max_conns == 0)
        lim->max_conns = 1;
    if (lim->mesh_max_conns == 0)
        lim->mesh_max_conns = 1;
    if (lim->plain_max_conns == 0)
        lim->plain_max_conns = 1;
    MR_LOG_WARN("descriptor limit below the connection budgets; budgets scaled down",
                MR_F_UINT("nofile", (unsigned long long)rl.rlim_cur),
                MR_F_UINT("client", lim->max_conns), MR_F_UINT("mesh", lim->mesh_max_conns),
                MR_F_UINT("plain", lim->plain_max_conns));
}

/* ---- completion queue ---- */

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    mr_srv *s = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&s->lock);
    mr_srv_request *r = s->done_head;
    s->done_head = s->done_tail = NULL;
    bool stop = s->stop_requested;
    pthread_mutex_unlock(&s->lock);
    while (r != NULL) {
        mr_srv_request *next = r->next_done;
        mr_srv_request_completed(r);
        r = next;
    }
    if (stop && !s->stopping) {
        s->stopping = true;
        MR_LOG_INFO("server stopping");
        for (size_t i = 0; i < s->nlst; i++) {
            if (s->lst[i]->evl != NULL) {
                evconnlistener_free(s->lst[i]->evl);
                s->lst[i]->evl = NULL;
            }
        }
        mr_srv_conn *c = s->conns;
        while (c != NULL) {
            mr_srv_conn *next = c->next;
            mr_srv_conn_stop(c);
            c = next;
        }
        struct timeval tv = mr_srv_tv(s->limits.stop_grace_ms);
        evtimer_add(s->stop_timer, &tv);
        mr_srv_check_stopped(s);
    }
}

void mr_srv_check_stopped(mr_srv *s)
{
    if (s->stopping && s->nconns == 0 && s->inflight == 0)
        event_base_loopbreak(s->base);
}

static void on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    mr_srv *s = arg;
    (void)fd;
    (void)what;
    MR_LOG_WARN("graceful stop timed out; closing remaining connections",
                MR_F_UINT("connections", s->nconns), MR_F_UINT("in_flight", s->inflight));
    while (s->conns != NULL)
        mr_srv_conn_close(s->conns);
    event_base_loopbreak(s->base);
}

void mr_srv_stop(mr_srv *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop_requested = true;
    pthread_mutex_unlock(&s->lock);
    event_active(s->wake, EV_READ, 0);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    MR_LOG_INFO("signal received", MR_F_INT("signal", sig));
    mr_srv_stop(arg);
}

/* ---- accepting ---- */

static void set_accepting(mr_srv *s, bool on)
{
    for (size_t i = 0; i < s->nlst; i++) {
        if (s->lst[i]->evl == NULL)
            continue;
        if (on)
            evconnlistener_enable(s->lst[i]->evl);
        else
            evconnlistener_disable(s->lst[i]->evl);
    }
    s->accepting_paused = !on;
}

void mr_srv_conn_gone(mr_srv *s)
{
    s->nconns--;
    mr_srv_check_stopped(s);
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    mr_srv_listener *l = arg;
    mr_srv *s = l->srv;
    struct bufferevent *bev = NULL;
    SSL *ssl = NULL;
    mr_srv_source *src = NULL;
    (void)evl;
    /* Admission first: a refused peer costs no TLS state. */
    mr_srv_admit adm = mr_srv_admit_conn(s, l, sa, salen, &src);
    if (adm != MR_SRV_ADMIT_OK) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* RST: no TIME_WAIT to keep */
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        MR_LOG_DEBUG("TCP_NODELAY failed");
    if (l->ctx != NULL) {
        ssl = SSL_new(l->ctx);
        if (ssl != NULL)
            bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL)
            SSL_free(ssl);
        else
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev == NULL) {
        evutil_closesocket(fd);
        mr_srv_source_release(s, l, src);
        return;
    }
    mr_srv_conn *c = mr_srv_conn_new(s, l, bev);
    if (c == NULL) {
        bufferevent_free(bev);
        mr_srv_source_release(s, l, src);
        return;
    }
    c->src = src;
    if (ssl != NULL)
        SSL_set_app_data(ssl, c);
    /* A client that means to talk has usually sent its first bytes by the time it is
     * accepted; such a connection is not among the first to be evicted. */
    char peek;
    if (recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
        mr_srv_conn_started(c);
    if (l->ctx == NULL && !mr_ok(mr_srv_conn_start(c, MR_SRV_PROTO_HTTP1))) {
        mr_srv_conn_close(c);
        return;
    }
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    mr_srv_listener *l = arg;
    mr_srv *s = l->srv;
    (void)evl;
    MR_LOG_WARN("accept failed", MR_F_STR("error",
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())));
    /* Out of descriptors and the like: pause instead of spinning on a readable socket. */
    if (!s->stopping && !s->accepting_paused) {
        set_accepting(s, false);
        struct timeval tv = mr_srv_tv(200);
        evtimer_add(s->accept_retry, &tv);
    }
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    mr_srv *s = arg;
    (void)fd;
    (void)what;
    if (!s->stopping)
        set_accepting(s, true);
}

static void listener_budgets(const mr_srv *s, mr_srv_listener *l)
{
    l->max_conns = l->kind == MR_SRV_LISTENER_MESH    ? s->limits.mesh_max_conns
                   : l->kind == MR_SRV_LISTENER_PLAIN ? s->limits.plain_max_conns
                                                      : s->limits.max_conns;
}

/* ":port" means every interface, as in Go. */
static MR_RESULT parse_addr(const char *addr, struct sockaddr_storage *ss, int *len)
{
    char buf[300];
    MR_ENSURE(strlen(addr) < 256, MR_ERR_USAGE, "listen address too long");
    if (addr[0] == ':')
        snprintf(buf, sizeof(buf), "[::]%s", addr);
    else
        snprintf(buf, sizeof(buf), "%s", addr);
    *len = (int)sizeof(*ss);
    if (evutil_parse_sockaddr_port(buf, (struct sockaddr *)ss, len) == 0)
        return MR_SUCCESS;
    /* host name: resolve (e.g. "localhost:4433") */
    const char *colon = strrchr(addr, ':');
    MR_ENSURE(colon != NULL, MR_ERR_USAGE, "invalid listen address %s", addr);
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_PASSIVE};
    struct evutil_addrinfo *ai = NULL;
    MR_ENSURE(evutil_getaddrinfo(host, colon + 1, &hints, &ai) == 0 && ai != NULL,
              MR_ERR_USAGE, "invalid listen address %s", addr);
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = (int)ai->ai_addrlen;
    evutil_freeaddrinfo(ai);
    return MR_SUCCESS;
}

static MR_RESULT bind_listener(mr_srv *s, mr_srv_listener *l, const char *addr,
                               struct evconnlistener **out)
{
    struct sockaddr_storage ss;
    int len = 0;
    MR_GUARD(parse_addr(addr, &ss, &len));
    unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
    struct evconnlistener *evl =
        evconnlistener_new_bind(s->base, on_accept, l, flags, 1024, (struct sockaddr *)&ss, len);
    if (evl == NULL && addr[0] == ':') {
        /* no IPv6 here: fall back to every IPv4 interface */
        char v4[64];
        snprintf(v4, sizeof(v4), "0.0.0.0%s", addr);
        if (mr_ok(parse_addr(v4, &ss, &len)))
            evl = evconnlistener_new_bind(s->base, on_accept, l, flags, 1024,
                                          (struct sockaddr *)&ss, len);
    }
    MR_ENSURE(evl != NULL, MR_ERR_IO, "cannot listen on %s: %s", addr,
              evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    memset(&bound, 0, sizeof(bound));
    if (getsockname(evconnlistener_get_fd(evl), (struct sockaddr *)&bound, &blen) == 0)
        l->port = ntohs(bound.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)&bound)->sin6_port
                            : ((struct sockaddr_in *)&bound)->sin_port);
    evconnlistener_set_error_cb(evl, on_accept_error);
    *out = evl;
    return MR_SUCCESS;
}

MR_RESULT mr_srv_listen(mr_srv *s, mr_srv_listener_kind kind, const char *addr,
                        mr_srv_cert_fn cert_fn, void *cert_arg, int *id)
{
    mr_result res = MR_FAILURE;
    mr_srv_listener *l = NULL;
    MR_ENSURE(s->nlst < MR_SRV_MAX_LISTENERS, MR_ERR_USAGE, "too many listeners");
    MR_ENSURE(kind == MR_SRV_LISTENER_PLAIN || cert_fn != NULL, MR_ERR_USAGE,
              "a TLS listener needs a certificate provider");
    l = mr_calloc(1, sizeof(*l));
    MR_ENSURE_ALLOC(l);
    l->srv = s;
    l->kind = kind;
    l->cert_fn = cert_fn;
    l->cert_arg = cert_arg;
    l->id = (int)s->nlst;
    listener_budgets(s, l);
    if (kind != MR_SRV_LISTENER_PLAIN)
        MR_GUARD_OUT(mr_srv_tls_ctx_new(l, &l->ctx));
    MR_GUARD_OUT(bind_listener(s, l, addr, &l->evl));
    *id = l->id;
    s->lst[s->nlst++] = l;
    l = NULL;
    res = MR_SUCCESS;
out:
    if (l != NULL) {
        SSL_CTX_free(l->ctx);
        mr_free(l);
    }
    return res;
}

MR_RESULT mr_srv_listen_virtual(mr_srv *s, mr_srv_listener_kind kind, int *id)
{
    MR_ENSURE(s->nlst < MR_SRV_MAX_LISTENERS, MR_ERR_USAGE, "too many listeners");
    mr_srv_listener *l = mr_calloc(1, sizeof(*l));
    MR_ENSURE_ALLOC(l);
    l->srv = s;
    l->kind = kind;
    l->id = (int)s->nlst;
    listener_budgets(s, l);
    *id = l->id;
    s->lst[s->nlst++] = l;
    return MR_SUCCESS;
}

uint16_t mr_srv_listener_port(const mr_srv *s, int id)
{
    if (id < 0 || (size_t)id >= s->nlst)
        return 0;
    return s->lst[id]->port;
}

static MR_RESULT get_listener(mr_srv *s, int id, mr_srv_listener **l)
{
    MR_ENSURE(id >= 0 && (size_t)id < s->nlst, MR_ERR_USAGE, "no listener %d", id);
    *l = s->lst[id];
    return MR_SUCCESS;
}

MR_RESULT mr_srv_route(mr_srv *s, int listener, const char *method, const char *path,
                       unsigned flags, mr_srv_handler_fn fn, void *arg)
{
    mr_srv_listener *l = NULL;
    MR_GUARD(get_listener(s, listener, &l));
    MR_ENSURE(l->kind != MR_SRV_LISTENER_MESH, MR_ERR_USAGE,
              "the mesh listener takes gRPC methods only");
    mr_srv_http_metrics *hm = NULL;
    if (l->kind == MR_SRV_LISTENER_CLIENT) {
        for (size_t i = 0; i < l->router.n; i++)
            if (strcmp(l->router.v[i].path, path) == 0)
                hm = l->router.v[i].http;
        if (hm == NULL) {
            MR_ENSURE(s->nhttpm < MR_ARRAY_LEN(s->httpm), MR_ERR_USAGE, "too many paths");
            MR_ENSURE(strlen(path) < sizeof(hm->path), MR_ERR_USAGE, "path too long");
            hm = mr_calloc(1, sizeof(*hm));
            MR_ENSURE_ALLOC(hm);
            snprintf(hm->path, sizeof(hm->path), "%s", path);
            s->httpm[s->nhttpm++] = hm;
        }
    }
    MR_GUARD(mr_srv_router_add(&l->router, method, path, flags, false, fn, arg));
    mr_srv_route_ent *e = &l->router.v[l->router.n - 1];
    e->http = hm;
    bool bodiless = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    e->max_body = bodiless ? 0 : s->limits.max_small_body_bytes;
    return MR_SUCCESS;
}

MR_RESULT mr_srv_route_body(mr_srv *s, int listener, const char *method, const char *path,
                            size_t max_body, mr_srv_precheck_fn precheck)
{
    mr_srv_listener *l = NULL;
    MR_GUARD(get_listener(s, listener, &l));
    MR_ENSURE(max_body <= s->limits.max_body_bytes, MR_ERR_USAGE,
              "route body limit %zu above the server's %zu", max_body, s->limits.max_body_bytes);
    for (size_t i = 0; i < l->router.n; i++) {
        mr_srv_route_ent *e = &l->router.v[i];
        if (!e->grpc && strcmp(e->method, method) == 0 && strcmp(e->path, path) == 0) {
            e->max_body = max_body;
            e->precheck = precheck;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_USAGE, "no route %s %s", method, path);
}

MR_RESULT mr_srv_grpc_method(mr_srv *s, int listener, const char *service, const char *method,
                             unsigned flags, mr_srv_handler_fn fn, void *arg)
{
    mr_result res = MR_FAILURE;
    mr_srv_listener *l = NULL;
    char path[256];
    MR_GUARD(get_listener(s, listener, &l));
    MR_ENSURE(l->kind == MR_SRV_LISTENER_MESH, MR_ERR_USAGE,
              "gRPC methods belong on the mesh listener");
    MR_ENSURE(strlen(service) < 64 && strlen(method) < 64, MR_ERR_USAGE, "name too long");
    MR_ENSURE(s->ngrpcm < MR_ARRAY_LEN(s->grpcm), MR_ERR_USAGE, "too many gRPC methods");
    snprintf(path, sizeof(path), "/%s/%s", service, method);
    mr_srv_grpc_metrics *gm = mr_calloc(1, sizeof(*gm));
    MR_ENSURE_ALLOC(gm);
    snprintf(gm->service, sizeof(gm->service), "%s", service);
    snprintf(gm->method, sizeof(gm->method), "%s", method);
    MR_GUARD_OUT(mr_srv_router_add(&l->router, "POST", path, flags, true, fn, arg));
    l->router.v[l->router.n - 1].gm = gm;
    l->router.v[l->router.n - 1].max_body = s->limits.max_grpc_msg_bytes + 5;
    s->grpcm[s->ngrpcm++] = gm;
    gm = NULL;
    res = MR_SUCCESS;
out:
    mr_free(gm);
    return res;
}

MR_RESULT mr_srv_metrics_render(const mr_srv *s, mr_buf *out)
{
    MR_GUARD(mr_srv_render_grpc(s->grpcm, s->ngrpcm, out));
    MR_GUARD(mr_srv_render_http(s->httpm, s->nhttpm, out));
    return mr_srv_render_budgets(s, out);
}

/* ---- life cycle ---- */

static void init_threads(void)
{
    /* Before libevent allocates anything: evbuffers hold request and response plaintext, so
     * their memory is wiped when freed (TLS record buffers: SSL_OP_CLEANSE_PLAINTEXT, tls.c). */
    event_set_mem_functions(mr_wipe_malloc, mr_wipe_realloc, mr_wipe_free);
    if (evthread_use_pthreads() != 0)
        MR_LOG_FATAL("libevent has no pthread support");
}

MR_RESULT mr_srv_new(const mr_srv_limits *limits, unsigned workers, mr_srv **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    mr_result res = MR_FAILURE;
    mr_srv *s = NULL;
    if (workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        workers = n > 0 ? (unsigned)n : 1;
    }
    pthread_once(&once, init_threads);
    s = mr_calloc(1, sizeof(*s));
    MR_ENSURE_ALLOC(s);
    pthread_mutex_init(&s->lock, NULL);
    merge_limits(&s->limits, limits);
    fit_descriptors(&s->limits);
    s->base = event_base_new();
    MR_ENSURE_OUT(s->base != NULL, MR_ERR_INTERNAL, "cannot create event loop");
    s->wake = event_new(s->base, -1, EV_PERSIST, on_wake, s);
    s->stop_timer = evtimer_new(s->base, on_stop_timeout, s);
    s->accept_retry = evtimer_new(s->base, on_accept_retry, s);
    MR_ENSURE_OUT(s->wake != NULL && s->stop_timer != NULL && s->accept_retry != NULL,
                  MR_ERR_INTERNAL, "out of memory");
    MR_GUARD_OUT(mr_srv_pool_new(workers, &s->pool));
    *out = s;
    s = NULL;
    res = MR_SUCCESS;
out:
    mr_srv_free(s);
    return res;
}

static void ignore_sigpipe(void)
{
    /* Writes to a closed peer must fail with EPIPE, not end the process. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        MR_LOG_WARN("cannot ignore SIGPIPE");
}

MR_RESULT mr_srv_handle_signals(mr_srv *s)
{
    ignore_sigpipe();
    if (s->sig_term != NULL)
        return MR_SUCCESS;
    s->sig_term = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sig_int = evsignal_new(s->base, SIGINT, on_signal, s);
    MR_ENSURE(s->sig_term != NULL && s->sig_int != NULL, MR_ERR_INTERNAL, "out of memory");
    MR_ENSURE(evsignal_add(s->sig_term, NULL) == 0 && evsignal_add(s->sig_int, NULL) == 0,
              MR_ERR_INTERNAL, "cannot install signal handlers");
    return MR_SUCCESS;
}

MR_RESULT mr_srv_run(mr_srv *s, bool handle_signals)
{
    ignore_sigpipe();
    if (handle_signals)
        MR_GUARD(mr_srv_handle_signals(s));
    int rv = event_base_dispatch(s->base);
    MR_ENSURE(rv >= 0, MR_ERR_INTERNAL, "event loop failed");
    return MR_SUCCESS;
}

void mr_srv_free(mr_srv *s)
{
    if (s == NULL)
        return;
    while (s->conns != NULL)
        mr_srv_conn_close(s->conns);
    /* Workers finish what they hold; their completions land in the queue. */
    mr_srv_pool_free(s->pool);
    mr_srv_request *r = s->done_head;
    while (r != NULL) {
        mr_srv_request *next = r->next_done;
        mr_srv_request_free(r);
        r = next;
    }
    s->done_head = s->done_tail = NULL;
    for (size_t i = 0; i < s->nlst; i++) {
        mr_srv_listener *l = s->lst[i];
        if (l->evl != NULL)
            evconnlistener_free(l->evl);
        SSL_CTX_free(l->ctx);
        mr_srv_router_free(&l->router);
        mr_free(l);
    }
    for (size_t i = 0; i < s->nhttpm; i++)
        mr_free(s->httpm[i]);
    for (size_t i = 0; i < s->ngrpcm; i++)
        mr_free(s->grpcm[i]);
    if (s->wake != NULL)
        event_free(s->wake);
    if (s->stop_timer != NULL)
        event_free(s->stop_timer);
    if (s->accept_retry != NULL)
        event_free(s->accept_retry);
    if (s->sig_term != NULL)
        event_free(s->sig_term);
    if (s->sig_int != NULL)
        event_free(s->sig_int);
    mr_srv_sources_free(&s->sources);
    if (s->base != NULL) {
        /* A bufferevent freed in the iteration that broke the loop can still be referenced by
         * a deferred callback queued in that iteration; event_base_free would drop the callback
         * and with it the last reference, leaking the connection's TLS state. Run what is
         * queued (none of it reaches our code any more) so the finalizers free it. */
        for (int round = 0;
             round < 16 && event_base_get_num_events(s->base, EVENT_BASE_COUNT_ACTIVE) > 0;
             round++) {
            MR_LOG_DEBUG("running callbacks queued at stop", MR_F_INT("round", round));
            event_base_loop(s->base, EVLOOP_NONBLOCK);
        }
        event_base_free(s->base);
    }
    pthread_mutex_destroy(&s->lock);
    mr_free(s);
}
