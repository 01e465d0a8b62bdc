/* SPDX-License-Identifier: Apache-2.0 */
/* Request metrics with atomic counters, rendered in Prometheus text format (spec §11.1). */
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "coordinator/server/internal.h"

static const double dur_bounds[MR_SRV_DUR_BUCKETS] = {0.005, 0.025, 0.1, 0.5, 1, 2.5, 5};
static const double size_bounds[MR_SRV_SIZE_BUCKETS] = {100, 1000, 2000, 5000, 10000};
static const char *const method_names[MR_SRV_METHODS] = {
    "get", "post", "put", "delete", "head", "patch", "options", "other"};

int mr_srv_method_index(const char *method)
{
    for (int i = 0; i < MR_SRV_METHODS - 1; i++)
        if (strcasecmp(method, method_names[i]) == 0)
            return i;
    return MR_SRV_METHODS - 1;
}

const char *mr_srv_method_name(int idx)
{
    return idx >= 0 && idx < MR_SRV_METHODS ? method_names[idx] : "other";
}

static void hist_observe(mr_srv_hist *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    double micro = v * 1e6;
    atomic_fetch_add_explicit(&h->sum_micro, micro > 0 ? (unsigned long long)micro : 0,
                              memory_order_relaxed);
}

void mr_srv_http_observe(mr_srv_http_metrics *m, const char *method, int code, double seconds,
                         size_t req_size, size_t resp_size)
{
    int mi = mr_srv_method_index(method);
    unsigned key = (((unsigned)code & 0xFFFu) << 4 | (unsigned)mi) + 1;
    for (size_t i = 0; i < MR_SRV_HTTP_SLOTS; i++) {
        unsigned cur = atomic_load_explicit(&m->key[i], memory_order_acquire);
        if (cur == 0) {
            unsigned expect = 0;
            if (atomic_compare_exchange_strong(&m->key[i], &expect, key))
                cur = key;
            else
                cur = expect;
        }
        if (cur == key) {
            atomic_fetch_add_explicit(&m->count[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_store_explicit(&m->duration_used[mi], 1, memory_order_relaxed);
    hist_observe(&m->duration[mi], dur_bounds, MR_SRV_DUR_BUCKETS, seconds);
    hist_observe(&m->req_size, size_bounds, MR_SRV_SIZE_BUCKETS, (double)req_size);
    hist_observe(&m->resp_size, size_bounds, MR_SRV_SIZE_BUCKETS, (double)resp_size);
}

void mr_srv_grpc_observe(mr_srv_grpc_metrics *m, int code, bool received, bool sent)
{
    if (code < 0 || code >= MR_GRPC_CODES)
        code = 2;
    atomic_fetch_add_explicit(&m->handled[code], 1, memory_order_relaxed);
    if (received)
        atomic_fetch_add_explicit(&m->msg_received, 1, memory_order_relaxed);
    if (sent)
        atomic_fetch_add_explicit(&m->msg_sent, 1, memory_order_relaxed);
}

/* ---- text format ---- */

MR_RESULT mr_srv_prom_family(mr_buf *out, const char *name, const char *type, const char *help)
{
    return mr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static MR_RESULT label_value(mr_buf *out, const char *v)
{
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            MR_GUARD(mr_buf_append_u8(out, '\\'));
        if (*p == '\n')
            MR_GUARD(mr_buf_append_str(out, "\\n"));
        else
            MR_GUARD(mr_buf_append_u8(out, (uint8_t)*p));
    }
    return MR_SUCCESS;
}

static MR_RESULT sample_v(mr_buf *out, const char *name, double value, va_list ap)
{
    MR_GUARD(mr_buf_append_str(out, name));
    const char *k = va_arg(ap, const char *);
    if (k != NULL) {
        MR_GUARD(mr_buf_append_u8(out, '{'));
        bool first = true;
        while (k != NULL) {
            const char *v = va_arg(ap, const char *);
            MR_GUARD(mr_buf_printf(out, "%s%s=\"", first ? "" : ",", k));
            MR_GUARD(label_value(out, v != NULL ? v : ""));
            MR_GUARD(mr_buf_append_u8(out, '"'));
            first = false;
            k = va_arg(ap, const char *);
        }
        MR_GUARD(mr_buf_append_u8(out, '}'));
    }
    return mr_buf_printf(out, " %.15g\n", value);
}

MR_RESULT mr_srv_prom_sample(mr_buf *out, const char *name, double value, ...)
{
    va_list ap;
    va_start(ap, value);
    mr_result r = sample_v(out, name, value, ap);
    va_end(ap);
    return r;
}

static unsigned long long ld(const atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

MR_RESULT mr_srv_render_grpc(mr_srv_grpc_metrics *const *g, size_t n, mr_buf *out)
{
    static const char *const fam[4][2] = {
        {"grpc_server_handled_total",
         "Total number of RPCs completed on the server, regardless of success or failure."},
        {"grpc_server_msg_received_total", "Total number of RPC stream messages received on the server."},
        {"grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server."},
        {"grpc_server_started_total", "Total number of RPCs started on the server."},
    };
    for (size_t f = 0; f < 4; f++) {
        MR_GUARD(mr_srv_prom_family(out, fam[f][0], "counter", fam[f][1]));
        for (size_t i = 0; i < n; i++) {
            const mr_srv_grpc_metrics *m = g[i];
            if (f == 0) {
                for (int c = 0; c < MR_GRPC_CODES; c++)
                    MR_GUARD(mr_srv_prom_sample(out, fam[f][0], (double)ld(&m->handled[c]),
                                                "grpc_code", mr_grpc_code_name(c),
                                                "grpc_method", m->method, "grpc_service",
                                                m->service, "grpc_type", "unary", MR_SRV_PROM_END));
                continue;
            }
            unsigned long long v = f == 1 ? ld(&m->msg_received)
                                   : f == 2 ? ld(&m->msg_sent)
                                            : ld(&m->started);
            MR_GUARD(mr_srv_prom_sample(out, fam[f][0], (double)v, "grpc_method", m->method,
                                        "grpc_service", m->service, "grpc_type", "unary",
                                        MR_SRV_PROM_END));
        }
    }
    return MR_SUCCESS;
}

static MR_RESULT render_hist(mr_buf *out, const char *base, const mr_srv_hist *h,
                             const double *bounds, size_t nb, const char *method,
                             const char *path)
{
    char name[160];
    char le[32];
    unsigned long long cum = 0;
    snprintf(name, sizeof(name), "%s_bucket", base);
    for (size_t i = 0; i <= nb; i++) {
        cum += ld(&h->bucket[i]);
        if (i < nb)
            snprintf(le, sizeof(le), "%g", bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        if (method != NULL)
            MR_GUARD(mr_srv_prom_sample(out, name, (double)cum, "method", method, "path", path,
                                        "le", le, MR_SRV_PROM_END));
        else
            MR_GUARD(mr_srv_prom_sample(out, name, (double)cum, "path", path, "le", le, MR_SRV_PROM_END));
    }
    double sum = (double)ld(&h->sum_micro) / 1e6;
    const char *sfx[2] = {"_sum", "_count"};
    for (int k = 0; k < 2; k++) {
        snprintf(name, sizeof(name), "%s%s", base, sfx[k]);
        double v = k == 0 ? sum : (double)ld(&h->count);
        if (method != NULL)
            MR_GUARD(mr_srv_prom_sample(out, name, v, "method", method, "path", path, MR_SRV_PROM_END));
        else
            MR_GUARD(mr_srv_prom_sample(out, name, v, "path", path, MR_SRV_PROM_END));
    }
    return MR_SUCCESS;
}

#define HTTP_PREFIX "server_client_api_http_"

static MR_RESULT render_http_counts(mr_srv_http_metrics *const *h, size_t n, mr_buf *out)
{
    MR_GUARD(mr_srv_prom_family(out, HTTP_PREFIX "request_total", "counter",
                                "Total number of HTTP requests by status code and method."));
    for (size_t i = 0; i < n; i++) {
        for (size_t s = 0; s < MR_SRV_HTTP_SLOTS; s++) {
            unsigned key = atomic_load_explicit(&h[i]->key[s], memory_order_acquire);
            if (key == 0)
                continue;
            key -= 1;
            char code[16];
            snprintf(code, sizeof(code), "%u", key >> 4);
            MR_GUARD(mr_srv_prom_sample(out, HTTP_PREFIX "request_total",
                                        (double)ld(&h[i]->count[s]), "code", code, "method",
                                        mr_srv_method_name((int)(key & 15u)), "path",
                                        h[i]->path, MR_SRV_PROM_END));
        }
    }
    return MR_SUCCESS;
}

MR_RESULT mr_srv_render_http(mr_srv_http_metrics *const *h, size_t n, mr_buf *out)
{
    MR_GUARD(mr_srv_prom_family(out, HTTP_PREFIX "in_flight_requests", "gauge",
                                "Number of HTTP requests currently served."));
    for (size_t i = 0; i < n; i++)
        MR_GUARD(mr_srv_prom_sample(out, HTTP_PREFIX "in_flight_requests",
                                    (double)atomic_load(&h[i]->in_flight), "path", h[i]->path,
                                    MR_SRV_PROM_END));
    MR_GUARD(mr_srv_prom_family(out, HTTP_PREFIX "request_duration_histogram_seconds",
                                "histogram", "Latency of HTTP requests in seconds."));
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < MR_SRV_METHODS; m++)
            if (atomic_load(&h[i]->duration_used[m]))
                MR_GUARD(render_hist(out, HTTP_PREFIX "request_duration_histogram_seconds",
                                     &h[i]->duration[m], dur_bounds, MR_SRV_DUR_BUCKETS,
                                     mr_srv_method_name(m), h[i]->path));
    MR_GUARD(mr_srv_prom_family(out, HTTP_PREFIX "request_size_histogram_bytes", "histogram",
                                "Size of HTTP requests in bytes."));
    for (size_t i = 0; i < n; i++)
        MR_GUARD(render_hist(out, HTTP_PREFIX "request_size_histogram_bytes", &h[i]->req_size,
                             size_bounds, MR_SRV_SIZE_BUCKETS, NULL, h[i]->path));
    MR_GUARD(render_http_counts(h, n, out));
    MR_GUARD(mr_srv_prom_family(out, HTTP_PREFIX "response_size_histogram_bytes", "histogram",
                                "Size of HTTP responses in bytes."));
    for (size_t i = 0; i < n; i++)
        MR_GUARD(render_hist(out, HTTP_PREFIX "response_size_histogram_bytes",
                             &h[i]->resp_size, size_bounds, MR_SRV_SIZE_BUCKETS, NULL,
                             h[i]->path));
    return MR_SUCCESS;
}
