/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes API client of the kubernetes store backend (k8s_client.h). */
#include "coordinator/store/k8s_client.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/file.h"
#include "coordinator/rpc/rpc.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define POOL 4
#define RESP_MAX ((size_t)8 << 20)
#define TOKEN_MAX 16384
#define PART_OF "app.kubernetes.io/part-of"

typedef struct kconn {
    mr_rpc_conn *c;
    bool busy;
} kconn;

struct mr_k8s {
    char host[256];
    char port[8];
    char ns[64];
    char token_path[512];
    SSL_CTX *tls;
    unsigned timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kconn pool[POOL];
    char *auth;        /* "Bearer <token>" (secret memory not needed: the token is a bearer
                        * credential of this pod, wiped on change and close all the same) */
    size_t auth_cap;
    struct timespec token_mtime;
};

/* ---- configuration ---- */

static const char *env2(const char *a, const char *b)
{
    const char *v = getenv(a);
    return v != NULL && v[0] != '\0' ? v : getenv(b);
}

static MR_RESULT read_small(const char *path, char *out, size_t cap)
{
    mr_buf b;
    mr_buf_init(&b, cap, 0);
    mr_result r = mr_file_read(path, cap - 1, &b);
    if (mr_ok(r)) {
        size_t n = b.len;
        while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == ' '))
            n--;
        memcpy(out, b.data, n);
        out[n] = '\0';
    }
    mr_buf_free(&b);
    return r;
}

static MR_RESULT tls_context(const char *ca, SSL_CTX **out)
{
    mr_result res = MR_FAILURE;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    MR_ENSURE_OSSL(ctx != NULL, MR_ERR_INTERNAL, "kubernetes: TLS context");
    MR_ENSURE_OUT(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1, MR_ERR_INTERNAL,
                  "kubernetes: TLS version");
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    MR_GUARD_OSSL_OUT(SSL_CTX_load_verify_locations(ctx, ca, NULL), MR_ERR_USAGE,
                      "kubernetes: cannot load the CA %s", ca);
    *out = ctx;
    ctx = NULL;
    res = MR_SUCCESS;
out:
    SSL_CTX_free(ctx);
    return res;
}

static MR_RESULT copy_to(char *dst, size_t cap, const char *src, const char *what)
{
    MR_ENSURE(src != NULL && src[0] != '\0', MR_ERR_USAGE, "kubernetes store: %s is not set", what);
    MR_ENSURE(strlen(src) < cap, MR_ERR_USAGE, "kubernetes store: %s too long", what);
    memcpy(dst, src, strlen(src) + 1);
    return MR_SUCCESS;
}

static MR_RESULT configure(mr_k8s *k, const mr_k8s_config *cfg)
{
    const char *sa = cfg->sa_dir != NULL ? cfg->sa_dir : SA_DIR;
    char path[512];
    const char *port = cfg->port != NULL ? cfg->port
                                         : env2("KUBERNETES_SERVICE_PORT", "EDG_KUBERNETES_SERVICE_PORT");
    MR_GUARD(copy_to(k->host, sizeof(k->host),
                     cfg->host != NULL ? cfg->host
                                       : env2("KUBERNETES_SERVICE_HOST", "EDG_KUBERNETES_SERVICE_HOST"),
                     "KUBERNETES_SERVICE_HOST"));
    MR_GUARD(copy_to(k->port, sizeof(k->port), port != NULL ? port : "443", "the API port"));
    MR_ENSURE(snprintf(k->token_path, sizeof(k->token_path), "%s/token", sa) <
                  (int)sizeof(k->token_path), MR_ERR_USAGE, "kubernetes store: path too long");
    if (cfg->ns != NULL && cfg->ns[0] != '\0') {
        MR_GUARD(copy_to(k->ns, sizeof(k->ns), cfg->ns, "the namespace"));
    } else {
        MR_ENSURE(snprintf(path, sizeof(path), "%s/namespace", sa) < (int)sizeof(path), MR_ERR_USAGE,
                  "kubernetes store: path too long");
        MR_GUARD(read_small(path, k->ns, sizeof(k->ns)));
    }
    for (const char *p = k->ns; *p != '\0'; p++)
        MR_ENSURE((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-', MR_ERR_USAGE,
                  "kubernetes store: %s is not a namespace name", k->ns);
    MR_ENSURE(snprintf(path, sizeof(path), "%s/ca.crt", sa) < (int)sizeof(path), MR_ERR_USAGE,
              "kubernetes store: path too long");
    return tls_context(path, &k->tls);
}

MR_RESULT mr_k8s_open(const mr_k8s_config *cfg, mr_k8s **out)
{
    mr_k8s *k = mr_calloc(1, sizeof(*k));
    MR_ENSURE_ALLOC(k);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    k->timeout_ms = cfg->timeout_ms != 0 ? cfg->timeout_ms : 5000;
    if (!mr_ok(configure(k, cfg))) {
        mr_k8s_close(k);
        return MR_FAILURE;
    }
    *out = k;
    return MR_SUCCESS;
}

void mr_k8s_close(mr_k8s *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < POOL; i++)
        mr_rpc_close(k->pool[i].c);
    SSL_CTX_free(k->tls);
    if (k->auth != NULL) {
        OPENSSL_cleanse(k->auth, k->auth_cap);
        mr_free(k->auth);
    }
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    mr_free(k);
}

const char *mr_k8s_namespace(const mr_k8s *k) { return k->ns; }

/* The Authorization header value, the token file read again when it changed. Lock held. */
static MR_RESULT auth_header(mr_k8s *k)
{
    struct stat st;
    MR_ENSURE(stat(k->token_path, &st) == 0, MR_ERR_USAGE,
              "kubernetes store: no service-account token at %s", k->token_path);
    if (k->auth != NULL && st.st_mtim.tv_sec == k->token_mtime.tv_sec &&
        st.st_mtim.tv_nsec == k->token_mtime.tv_nsec)
        return MR_SUCCESS;
    mr_buf t;
    mr_buf_init(&t, TOKEN_MAX, MR_BUF_SECRET);
    mr_result r = mr_file_read(k->token_path, TOKEN_MAX, &t);
    while (mr_ok(r) && t.len > 0 && (t.data[t.len - 1] == '\n' || t.data[t.len - 1] == ' '))
        t.len--;
    if (mr_ok(r)) {
        size_t need = t.len + sizeof("Bearer ");
        char *a = mr_calloc(1, need);
        if (a == NULL) {
            mr_error_set(MR_ERR_INTERNAL, __FILE__, __LINE__, "out of memory");
            r = MR_FAILURE;
        } else {
            memcpy(a, "Bearer ", sizeof("Bearer ")); /* with its NUL; the token follows */
            memcpy(a + 7, t.data, t.len);
            if (k->auth != NULL) {
                OPENSSL_cleanse(k->auth, k->auth_cap);
                mr_free(k->auth);
            }
            k->auth = a;
            k->auth_cap = need;
            k->token_mtime = st.st_mtim;
        }
    }
    mr_buf_free(&t);
    return r;
}

/* ---- requests ---- */

static MR_RESULT take_conn(mr_k8s *k, size_t *slot, uint64_t deadline)
{
    pthread_mutex_lock(&k->mu);
    for (;;) {
        for (size_t i = 0; i < POOL; i++) {
            if (!k->pool[i].busy) {
                k->pool[i].busy = true;
                *slot = i;
                pthread_mutex_unlock(&k->mu);
                return MR_SUCCESS;
            }
        }
        uint64_t now = mr_rpc_now_ms();
        if (now >= deadline)
            break;
        struct timespec until;
        (void)clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (deadline - now) * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        (void)pthread_cond_timedwait(&k->cv, &k->mu, &until);
    }
    pthread_mutex_unlock(&k->mu);
    MR_BAIL(MR_ERR_UNAVAILABLE, "kubernetes API unavailable: every connection is busy");
}

static void give_conn(mr_k8s *k, size_t slot)
{
    pthread_mutex_lock(&k->mu);
    kconn *c = &k->pool[slot];
    if (c->c != NULL && !mr_rpc_usable(c->c)) {
        mr_rpc_close(c->c);
        c->c = NULL;
    }
    c->busy = false;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

/* One request; *status and body for any answer. */
static MR_RESULT request(mr_k8s *k, const char *method, const char *path, mr_slice body,
                         const char *content_type, int *status, mr_buf *resp)
{
    mr_result res = MR_FAILURE;
    uint64_t deadline = mr_rpc_now_ms() + k->timeout_ms;
    size_t slot = 0;
    char auth[TOKEN_MAX + 16];
    MR_GUARD(take_conn(k, &slot, deadline));
    kconn *kc = &k->pool[slot];
    pthread_mutex_lock(&k->mu);
    mr_result ar = auth_header(k);
    if (mr_ok(ar))
        (void)snprintf(auth, sizeof(auth), "%s", k->auth);
    pthread_mutex_unlock(&k->mu);
    MR_GUARD_OUT(ar);
    if (kc->c != NULL && !mr_rpc_alive(kc->c)) {
        mr_rpc_close(kc->c);
        kc->c = NULL;
    }
    if (kc->c == NULL) {
        mr_rpc_target t = {.host = k->host, .port = k->port, .tls = k->tls, .verify_name = k->host};
        if (!mr_ok(mr_rpc_connect(&t, deadline, &kc->c))) {
            mr_error_prefix("kubernetes API unavailable");
            goto out;
        }
    }
    mr_rpc_header h[3] = {{"authorization", auth},
                          {"accept", "application/json"},
                          {"content-type", content_type != NULL ? content_type : "application/json"}};
    mr_rpc_http_req rq = {.method = method, .path = path, .headers = h,
                          .n_headers = body.len > 0 ? 3 : 2, .body = body};
    if (!mr_ok(mr_rpc_http(kc->c, &rq, RESP_MAX, deadline, status, resp))) {
        if (mr_error_is(MR_ERR_UNAVAILABLE))
            mr_error_prefix("kubernetes API unavailable");
        goto out;
    }
    res = MR_SUCCESS;
out:
    OPENSSL_cleanse(auth, sizeof(auth));
    give_conn(k, slot);
    return res;
}

/* Sets the error for an answer that is not what the caller wanted. */
static void set_refused(int status, const mr_buf *body)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)body->data, body->len, 0, &e);
    const char *reason = json_string_value(json_object_get(j, "reason"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    bool transient = status == 429 || status >= 500;
    mr_error_set(transient ? MR_ERR_UNAVAILABLE : MR_ERR_INTERNAL, __FILE__, __LINE__,
                 "%s: %d %s: %s", transient ? "kubernetes API unavailable"
                                            : "kubernetes refused the request",
                 status, reason != NULL ? reason : "", msg != NULL ? msg : "");
    json_decref(j);
}

static const char *kind_path(mr_k8s_kind kind)
{
    return kind == MR_K8S_SECRET ? "secrets" : "configmaps";
}

static MR_RESULT obj_path(const mr_k8s *k, mr_k8s_kind kind, const char *name, char *out, size_t cap)
{
    for (const char *p = name; *p != '\0'; p++)
        MR_ENSURE((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.',
                  MR_ERR_USAGE, "kubernetes store: %s is not an object name", name);
    int n = snprintf(out, cap, "/api/v1/namespaces/%s/%s%s%s", k->ns, kind_path(kind),
                     name[0] != '\0' ? "/" : "", name);
    MR_ENSURE(n > 0 && (size_t)n < cap, MR_ERR_USAGE, "kubernetes store: name too long");
    return MR_SUCCESS;
}

/* ---- objects ---- */

void mr_k8s_obj_free(mr_k8s_obj *o)
{
    for (size_t i = 0; i < o->count; i++) {
        mr_free(o->items[i].name);
        mr_buf_free(&o->items[i].value);
    }
    mr_free(o->items);
    memset(o, 0, sizeof(*o));
}

const mr_k8s_entry *mr_k8s_obj_entry(const mr_k8s_obj *o, const char *name)
{
    for (size_t i = 0; i < o->count; i++)
        if (strcmp(o->items[i].name, name) == 0)
            return &o->items[i];
    return NULL;
}

static MR_RESULT parse_entries(json_t *data, mr_k8s_obj *out)
{
    size_t n = json_object_size(data);
    if (n == 0)
        return MR_SUCCESS;
    out->items = mr_calloc(n, sizeof(*out->items));
    MR_ENSURE_ALLOC(out->items);
    const char *name;
    json_t *v;
    json_object_foreach(data, name, v)
    {
        MR_ENSURE(json_is_string(v), MR_ERR_PROTOCOL, "kubernetes: malformed object data");
        mr_k8s_entry *e = &out->items[out->count];
        mr_buf_init(&e->value, 0, MR_BUF_SECRET);
        e->name = mr_strdup(name);
        MR_ENSURE_ALLOC(e->name);
        out->count++;
        MR_GUARD(mr_b64_decode_buf(json_string_value(v), json_string_length(v), MR_B64_STD, 0,
                                   &e->value));
    }
    return MR_SUCCESS;
}

static MR_RESULT parse_object_json(mr_k8s_kind kind, json_t *j, mr_k8s_obj *out)
{
    const char *rv =
        json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion"));
    MR_ENSURE(rv != NULL && strlen(rv) < sizeof(out->rv), MR_ERR_PROTOCOL,
              "kubernetes: answer without resourceVersion");
    memcpy(out->rv, rv, strlen(rv) + 1);
    json_t *data = json_object_get(j, kind == MR_K8S_SECRET ? "data" : "binaryData");
    if (data != NULL && !json_is_null(data)) {
        MR_ENSURE(json_is_object(data), MR_ERR_PROTOCOL, "kubernetes: malformed object data");
        MR_GUARD(parse_entries(data, out));
    }
    out->found = true;
    return MR_SUCCESS;
}

MR_RESULT mr_k8s_parse_object(mr_k8s_kind kind, mr_slice body, mr_k8s_obj *out)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)body.ptr, body.len, 0, &e);
    MR_ENSURE(j != NULL, MR_ERR_PROTOCOL, "kubernetes: malformed answer: %s", e.text);
    mr_result r = parse_object_json(kind, j, out);
    json_decref(j);
    return r;
}

MR_RESULT mr_k8s_get(mr_k8s *k, mr_k8s_kind kind, const char *name, mr_k8s_obj *out)
{
    mr_result res = MR_FAILURE;
    char path[512];
    int status = 0;
    mr_buf body;
    mr_buf_init(&body, RESP_MAX, MR_BUF_SECRET);
    memset(out, 0, sizeof(*out));
    MR_GUARD_OUT(obj_path(k, kind, name, path, sizeof(path)));
    MR_GUARD_OUT(request(k, "GET", path, MR_SLICE("", 0), NULL, &status, &body));
    if (status == 404) {
        res = MR_SUCCESS;
        goto out;
    }
    if (status != 200) {
        set_refused(status, &body);
        goto out;
    }
    MR_GUARD_OUT(mr_k8s_parse_object(kind, mr_buf_slice(&body), out));
    res = MR_SUCCESS;
out:
    if (!mr_ok(res))
        mr_k8s_obj_free(out);
    mr_buf_free(&body);
    return res;
}

/* The object as JSON (data values base64) in a wiping buffer. */
static MR_RESULT obj_json(const mr_k8s *k, mr_k8s_kind kind, const char *name, const char *rv,
                          const char *label, const mr_k8s_entry *items, size_t n, mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out, "{\"apiVersion\":\"v1\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\","
                                "\"namespace\":\"%s\",\"labels\":{\"" PART_OF "\":\"marblerun\"",
                           kind == MR_K8S_SECRET ? "Secret" : "ConfigMap", name, k->ns));
    if (label != NULL)
        MR_GUARD(mr_buf_printf(out, ",\"" MR_K8S_STATE_LABEL "\":\"%s\"", label));
    MR_GUARD(mr_buf_append_u8(out, '}'));
    if (rv != NULL)
        MR_GUARD(mr_buf_printf(out, ",\"resourceVersion\":\"%s\"", rv));
    MR_GUARD(mr_buf_printf(out, "},%s\"%s\":{", kind == MR_K8S_SECRET ? "\"type\":\"Opaque\"," : "",
                           kind == MR_K8S_SECRET ? "data" : "binaryData"));
    for (size_t i = 0; i < n; i++) {
        for (const char *p = items[i].name; *p != '\0'; p++)
            MR_ENSURE((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                          (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_',
                      MR_ERR_USAGE, "kubernetes store: %s is not a data key", items[i].name);
        MR_GUARD(mr_buf_printf(out, "%s\"%s\":\"", i == 0 ? "" : ",", items[i].name));
        MR_GUARD(mr_b64_encode_buf(items[i].value.data, items[i].value.len, MR_B64_STD, out));
        MR_GUARD(mr_buf_append_u8(out, '"'));
    }
    return mr_buf_append_str(out, "}}");
}

static MR_RESULT answer_rv(const mr_buf *body, char new_rv[64])
{
    json_error_t e;
    json_t *j = json_loadb((const char *)body->data, body->len, 0, &e);
    const char *rv =
        json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion"));
    bool ok = rv != NULL && strlen(rv) < 64;
    if (ok)
        memcpy(new_rv, rv, strlen(rv) + 1);
    json_decref(j);
    MR_ENSURE(ok, MR_ERR_PROTOCOL, "kubernetes: answer without resourceVersion");
    return MR_SUCCESS;
}

MR_RESULT mr_k8s_put(mr_k8s *k, mr_k8s_kind kind, const char *name, const char *rv,
                     const mr_k8s_entry *items, size_t n, bool *conflict, char new_rv[64])
{
    return mr_k8s_put_labeled(k, kind, name, rv, NULL, items, n, conflict, new_rv);
}

MR_RESULT mr_k8s_put_labeled(mr_k8s *k, mr_k8s_kind kind, const char *name, const char *rv,
                             const char *label, const mr_k8s_entry *items, size_t n,
                             bool *conflict, char new_rv[64])
{
    mr_result res = MR_FAILURE;
    char path[512];
    int status = 0;
    mr_buf req, body;
    mr_buf_init(&req, RESP_MAX, MR_BUF_SECRET);
    mr_buf_init(&body, RESP_MAX, MR_BUF_SECRET);
    *conflict = false;
    MR_GUARD_OUT(obj_path(k, kind, rv != NULL ? name : "", path, sizeof(path)));
    if (label != NULL)
        MR_ENSURE_OUT(mr_k8s_label_ok(label), MR_ERR_USAGE,
                      "kubernetes store: %s is not a label value", label);
    MR_GUARD_OUT(obj_json(k, kind, name, rv, label, items, n, &req));
    MR_GUARD_OUT(request(k, rv != NULL ? "PUT" : "POST", path, mr_buf_slice(&req), NULL, &status,
                         &body));
    if (status == 409 || (rv != NULL && status == 404)) {
        *conflict = true;
        res = MR_SUCCESS;
        goto out;
    }
    if (status != 200 && status != 201) {
        set_refused(status, &body);
        goto out;
    }
    MR_GUARD_OUT(answer_rv(&body, new_rv));
    res = MR_SUCCESS;
out:
    mr_buf_free(&req);
    mr_buf_free(&body);
    return res;
}

MR_RESULT mr_k8s_delete(mr_k8s *k, mr_k8s_kind kind, const char *name, const char *rv)
{
    mr_result res = MR_FAILURE;
    char path[512], pre[160] = "";
    int status = 0;
    mr_buf body;
    mr_buf_init(&body, RESP_MAX, 0);
    MR_GUARD_OUT(obj_path(k, kind, name, path, sizeof(path)));
    if (rv != NULL)
        (void)snprintf(pre, sizeof(pre), "{\"preconditions\":{\"resourceVersion\":\"%s\"}}", rv);
    MR_GUARD_OUT(request(k, "DELETE", path, MR_SLICE_STR(pre), NULL, &status, &body));
    if (status != 200 && status != 202 && status != 404 && status != 409) {
        set_refused(status, &body);
        goto out;
    }
    res = MR_SUCCESS;
out:
    mr_buf_free(&body);
    return res;
}

/* ---- endpoint slices ---- */

static MR_RESULT slice_peers(json_t *slice, const char *port_name, mr_buf *peers)
{
    long port = -1;
    json_t *ports = json_object_get(slice, "ports"), *p;
    size_t i;
    json_array_foreach(ports, i, p)
    {
        const char *nm = json_string_value(json_object_get(p, "name"));
        if (nm != NULL && strcmp(nm, port_name) == 0 && json_is_integer(json_object_get(p, "port")))
            port = (long)json_integer_value(json_object_get(p, "port"));
    }
    if (port <= 0 || port > 65535)
        return MR_SUCCESS;
    bool v6 = strcmp(json_string_value(json_object_get(slice, "addressType")) != NULL
                         ? json_string_value(json_object_get(slice, "addressType"))
                         : "",
                     "IPv6") == 0;
    json_t *eps = json_object_get(slice, "endpoints"), *ep;
    json_array_foreach(eps, i, ep)
    {
        json_t *ready = json_object_get(json_object_get(ep, "conditions"), "ready");
        if (json_is_false(ready))
            continue;
        json_t *addrs = json_object_get(ep, "addresses"), *a;
        size_t k;
        json_array_foreach(addrs, k, a)
        {
            const char *ip = json_string_value(a);
            if (ip == NULL || strlen(ip) > 64 || strpbrk(ip, ",[]/ ") != NULL)
                continue;
            MR_GUARD(mr_buf_printf(peers, "%s%s%s%s:%ld", peers->len > 0 ? "," : "", v6 ? "[" : "",
                                   ip, v6 ? "]" : "", port));
        }
    }
    return MR_SUCCESS;
}

MR_RESULT mr_k8s_parse_peers(mr_slice body, const char *port_name, mr_buf *peers)
{
    mr_result res = MR_FAILURE;
    json_error_t e;
    json_t *j = json_loadb((const char *)body.ptr, body.len, 0, &e);
    MR_ENSURE(j != NULL, MR_ERR_PROTOCOL, "kubernetes: malformed answer: %s", e.text);
    json_t *items = json_object_get(j, "items"), *s;
    size_t i;
    json_array_foreach(items, i, s)
    {
        MR_GUARD_OUT(slice_peers(s, port_name, peers));
    }
    res = MR_SUCCESS;
out:
    json_decref(j);
    return res;
}

MR_RESULT mr_k8s_service_peers(mr_k8s *k, const char *service, const char *port_name,
                               mr_buf *peers)
{
    mr_result res = MR_FAILURE;
    char path[512];
    int status = 0;
    mr_buf body;
    mr_buf_init(&body, RESP_MAX, 0);
    for (const char *p = service; *p != '\0'; p++)
        MR_ENSURE_OUT((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-',
                      MR_ERR_USAGE, "kubernetes store: %s is not a service name", service);
    MR_ENSURE_OUT(snprintf(path, sizeof(path),
                           "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?labelSelector="
                           "kubernetes.io%%2Fservice-name%%3D%s", k->ns, service) < (int)sizeof(path),
                  MR_ERR_USAGE, "kubernetes store: name too long");
    MR_GUARD_OUT(request(k, "GET", path, MR_SLICE("", 0), NULL, &status, &body));
    if (status != 200) {
        set_refused(status, &body);
        goto out;
    }
    MR_GUARD_OUT(mr_k8s_parse_peers(mr_buf_slice(&body), port_name, peers));
    res = MR_SUCCESS;
out:
    mr_buf_free(&body);
    return res;
}

/* ---- watches ---- */

bool mr_k8s_label_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && ((c != '-' && c != '.' && c != '_') || i == 0 || i == n - 1))
            return false;
    }
    return true;
}

void mr_k8s_event_free(mr_k8s_event *ev)
{
    mr_k8s_obj_free(&ev->obj);
    memset(ev, 0, sizeof(*ev));
}

MR_RESULT mr_k8s_take_line(mr_buf *acc, size_t max_line, mr_buf *line, bool *got)
{
    *got = false;
    size_t n = 0;
    while (n < acc->len && acc->data[n] != '\n')
        n++;
    if (n == acc->len) {
        MR_ENSURE(acc->len <= max_line, MR_ERR_TOO_LARGE,
                  "kubernetes: watch event longer than %zu bytes", max_line);
        return MR_SUCCESS;
    }
    MR_ENSURE(n <= max_line, MR_ERR_TOO_LARGE, "kubernetes: watch event longer than %zu bytes",
              max_line);
    MR_GUARD(mr_buf_set(line, acc->data, n));
    size_t rest = acc->len - n - 1;
    memmove(acc->data, acc->data + n + 1, rest);
    OPENSSL_cleanse(acc->data + rest, acc->len - rest);
    acc->len = rest;
    *got = true;
    return MR_SUCCESS;
}

static MR_RESULT event_type(const char *t, mr_k8s_event_type *out)
{
    static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
    for (size_t i = 0; t != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(t, names[i]) == 0) {
            *out = (mr_k8s_event_type)i;
            return MR_SUCCESS;
        }
    }
    MR_BAIL(MR_ERR_PROTOCOL, "kubernetes: watch event of unknown type %s", t ? t : "(none)");
}

static MR_RESULT event_body(mr_k8s_kind kind, json_t *o, mr_k8s_event *ev)
{
    if (ev->type == MR_K8S_EV_ERROR) {
        json_t *code = json_object_get(o, "code");
        const char *msg = json_string_value(json_object_get(o, "message"));
        MR_ENSURE(json_is_integer(code), MR_ERR_PROTOCOL, "kubernetes: watch error without code");
        ev->code = (int)json_integer_value(code);
        (void)snprintf(ev->message, sizeof(ev->message), "%s", msg != NULL ? msg : "");
        return MR_SUCCESS;
    }
    if (ev->type == MR_K8S_EV_BOOKMARK) {
        const char *rv =
            json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
        MR_ENSURE(rv != NULL && rv[0] != '\0' && strlen(rv) < sizeof(ev->obj.rv), MR_ERR_PROTOCOL,
                  "kubernetes: watch bookmark without resourceVersion");
        memcpy(ev->obj.rv, rv, strlen(rv) + 1);
        return MR_SUCCESS;
    }
    const char *name = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
    MR_ENSURE(name != NULL && name[0] != '\0' && strlen(name) < sizeof(ev->name),
              MR_ERR_PROTOCOL, "kubernetes: watch event without object name");
    memcpy(ev->name, name, strlen(name) + 1);
    return parse_object_json(kind, o, &ev->obj);
}

MR_RESULT mr_k8s_parse_watch_event(mr_k8s_kind kind, mr_slice line, mr_k8s_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    json_error_t e;
    json_t *j = json_loadb((const char *)line.ptr, line.len, 0, &e);
    MR_ENSURE(j != NULL, MR_ERR_PROTOCOL, "kubernetes: malformed watch event: %s", e.text);
    mr_result r = event_type(json_string_value(json_object_get(j, "type")), &ev->type);
    json_t *o = json_object_get(j, "object");
    if (mr_ok(r) && !json_is_object(o)) {
        mr_error_set(MR_ERR_PROTOCOL, __FILE__, __LINE__, "kubernetes: watch event without object");
        r = MR_FAILURE;
    }
    if (mr_ok(r))
        r = event_body(kind, o, ev);
    json_decref(j);
    if (!mr_ok(r))
        mr_k8s_event_free(ev);
    return r;
}

MR_RESULT mr_k8s_stream_get(mr_k8s *k, const char *path, size_t max_buf, uint64_t deadline_ms,
                            mr_rpc_conn **conn, mr_rpc_stream **stream)
{
    mr_result res = MR_FAILURE;
    char auth[TOKEN_MAX + 16];
    *conn = NULL;
    *stream = NULL;
    pthread_mutex_lock(&k->mu);
    mr_result ar = auth_header(k);
    if (mr_ok(ar))
        (void)snprintf(auth, sizeof(auth), "%s", k->auth);
    pthread_mutex_unlock(&k->mu);
    MR_GUARD_OUT(ar);
    mr_rpc_target t = {.host = k->host, .port = k->port, .tls = k->tls, .verify_name = k->host};
    if (!mr_ok(mr_rpc_connect(&t, deadline_ms, conn))) {
        mr_error_prefix("kubernetes API unavailable");
        goto out;
    }
    mr_rpc_header h[2] = {{"authorization", auth}, {"accept", "application/json"}};
    mr_rpc_http_req rq = {.method = "GET", .path = path, .headers = h, .n_headers = 2,
                          .body = MR_SLICE("", 0)};
    if (!mr_ok(mr_rpc_http_stream_open(*conn, &rq, max_buf, stream))) {
        mr_error_prefix("kubernetes API unavailable");
        goto out;
    }
    res = MR_SUCCESS;
out:
    OPENSSL_cleanse(auth, sizeof(auth));
    if (!mr_ok(res)) {
        mr_rpc_close(*conn);
        *conn = NULL;
    }
    return res;
}
