/* SPDX-License-Identifier: Apache-2.0 */
/* The plain metrics listener: /metrics (Prometheus text), /events, /healthz, /readyz. */
#include <string.h>

#include "common/codec.h"
#include "coordinator/api/api_int.h"

static mr_result activation_series(mr_api *a, mr_buf *out)
{
    static const char *const names[2] = {"coordinator_marble_activations_total",
                                         "coordinator_marble_activations_success_total"};
    static const char *const help[2] = {"Number of marble activation attempts",
                                        "Number of successful marble activations"};
    mr_result res = MR_SUCCESS;
    pthread_mutex_lock(&a->series_mu);
    for (int k = 0; k < 2 && mr_ok(res); k++) {
        res = mr_srv_prom_family(out, names[k], "counter", help[k]);
        for (size_t i = 0; i < API_SERIES_MAX && mr_ok(res); i++) {
            const api_series *s = &a->series[i];
            if (i >= a->n_series && !(i == API_SERIES_MAX - 1 && (s->total || s->success)))
                continue;
            res = mr_srv_prom_sample(out, names[k], (double)(k == 0 ? s->total : s->success), "type",
                                     s->type, "uuid", s->uuid, (const char *)NULL);
        }
    }
    pthread_mutex_unlock(&a->series_mu);
    return res;
}

static void h_metrics(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    int state = mr_core_state(a->cfg.core);
    mr_result res = mr_srv_prom_family(&out, "coordinator_version_info", "gauge",
                                       "Version information of the Coordinator");
    if (mr_ok(res))
        res = mr_srv_prom_sample(&out, "coordinator_version_info", 0, "commit", a->commit,
                                 "version", a->version, (const char *)NULL);
    if (mr_ok(res))
        res = mr_srv_prom_family(&out, "coordinator_state", "gauge", "State of the Coordinator");
    if (mr_ok(res))
        res = mr_srv_prom_sample(&out, "coordinator_state", state, (const char *)NULL);
    if (mr_ok(res))
        res = activation_series(a, &out);
    if (mr_ok(res))
        res = mr_srv_metrics_render(a->cfg.srv, &out);
    if (mr_ok(res))
        mr_srv_resp_send_buf(r, 200, "text/plain; version=0.0.4; charset=utf-8", &out);
    else
        mr_srv_resp_send(r, 500, "text/plain; charset=utf-8", MR_SLICE_STR("metrics failed\n"));
    mr_buf_free(&out);
}

static void h_events(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    mr_result res;
    pthread_mutex_lock(&a->ev_mu);
    if (a->ev_count == 0)
        res = mr_buf_append_str(&out, "null");
    else
        res = mr_buf_append_u8(&out, '[');
    for (size_t i = 0; i < a->ev_count && mr_ok(res); i++) {
        const api_event *e = &a->events[(a->ev_head + i) % a->ev_cap];
        res = mr_buf_printf(&out, "%s{\"time\":", i ? "," : "");
        if (mr_ok(res))
            res = jw_str(&out, e->time);
        if (mr_ok(res))
            res = mr_buf_append_str(&out, ",\"activation\":{\"marbleType\":");
        if (mr_ok(res))
            res = jw_str(&out, e->marble_type);
        if (mr_ok(res))
            res = mr_buf_append_str(&out, ",\"uuid\":");
        if (mr_ok(res))
            res = jw_str(&out, e->uuid);
        if (mr_ok(res))
            res = mr_buf_append_str(&out, ",\"quote\":");
        if (mr_ok(res))
            res = jw_b64(&out, e->quote.data != NULL ? e->quote.data : (const uint8_t *)"", e->quote.len);
        if (mr_ok(res))
            res = mr_buf_append_str(&out, "}}");
    }
    if (mr_ok(res) && a->ev_count > 0)
        res = mr_buf_append_u8(&out, ']');
    pthread_mutex_unlock(&a->ev_mu);
    if (mr_ok(res))
        res = mr_buf_append_u8(&out, '\n');
    if (mr_ok(res))
        mr_srv_resp_send_buf(r, 200, "application/json", &out);
    else
        mr_srv_resp_send(r, 500, "text/plain; charset=utf-8", MR_SLICE_STR("events failed\n"));
    mr_buf_free(&out);
}

static void h_healthz(mr_srv_request *r, void *arg)
{
    (void)arg;
    mr_srv_resp_send(r, 200, "text/plain; charset=utf-8", MR_SLICE_STR("ok\n"));
}

/* Ready once the Coordinator can serve: any state but 0. */
static void h_readyz(mr_srv_request *r, void *arg)
{
    mr_api *a = arg;
    int s = mr_core_state(a->cfg.core);
    if (s == MR_STATE_UNINITIALIZED)
        mr_srv_resp_send(r, 503, "text/plain; charset=utf-8", MR_SLICE_STR("not ready\n"));
    else
        mr_srv_resp_send(r, 200, "text/plain; charset=utf-8", MR_SLICE_STR("ready\n"));
}

mr_result api_register_observe(mr_api *a)
{
    int l = a->cfg.metrics_listener;
    MR_GUARD(mr_srv_route(a->cfg.srv, l, "GET", "/metrics", 0, h_metrics, a));
    MR_GUARD(mr_srv_route(a->cfg.srv, l, "GET", "/events", 0, h_events, a));
    MR_GUARD(mr_srv_route(a->cfg.srv, l, "GET", "/healthz", MR_SRV_ROUTE_INLINE, h_healthz, a));
    return mr_srv_route(a->cfg.srv, l, "GET", "/readyz", MR_SRV_ROUTE_INLINE, h_readyz, a);
}
