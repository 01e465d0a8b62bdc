/* SPDX-License-Identifier: Apache-2.0 */
/* The plain metrics listener: /metrics (Prometheus text), /events, /healthz, /readyz. */
#include <stdio.h>
#include <string.h>

#include "common/codec.h"
#include "coordinator/api/api_int.h"
#include "coordinator/store/store.h"

/* The shared store's revision and the kubernetes backend's watch counters. */
static MR_RESULT watch_lines(const mr_store_stats *st, mr_buf *out)
{
    static const char *const names[] = {
        "marblerun_store_watch_events_total", "marblerun_store_watch_applied_total",
        "marblerun_store_watch_shards_total", "marblerun_store_watch_reconnects_total"};
    static const char *const help[] = {
        "Events the store's watch took in (kubernetes)",
        "Watched state heads that moved the local replica forward (kubernetes)",
        "Shard reads saved by watched shards (kubernetes)",
        "Reconnects of the store's watch (kubernetes)"};
    const uint64_t v[] = {st->watch_events, st->watch_applied, st->watch_shards,
                          st->watch_reconnects};
    MR_GUARD(mr_srv_prom_family(out, "marblerun_store_revision", "gauge",
                                "Newest revision of the shared state in the local replica"));
    MR_GUARD(mr_srv_prom_sample(out, "marblerun_store_revision", (double)st->revision,
                                MR_SRV_PROM_END));
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        MR_GUARD(mr_srv_prom_family(out, names[i], "counter", help[i]));
        MR_GUARD(mr_srv_prom_sample(out, names[i], (double)v[i], MR_SRV_PROM_END));
    }
    return MR_SUCCESS;
}

/* Store commits; with a shared store also their round trips as a histogram. */
static MR_RESULT store_lines(mr_api *a, mr_buf *out)
{
    mr_store_stats st;
    mr_core_store_stats(a->cfg.core, &st);
    MR_GUARD(mr_srv_prom_family(out, "marblerun_store_commits_total", "counter",
                                "Writing store commits"));
    MR_GUARD(mr_srv_prom_sample(out, "marblerun_store_commits_total", (double)st.commits,
                                MR_SRV_PROM_END));
    MR_GUARD(mr_srv_prom_family(out, "marblerun_store_conflicts_total", "counter",
                                "Store commits refused because what they read had changed"));
    MR_GUARD(mr_srv_prom_sample(out, "marblerun_store_conflicts_total", (double)st.conflicts,
                                MR_SRV_PROM_END));
    if (!mr_core_shared(a->cfg.core))
        return MR_SUCCESS;
    MR_GUARD(watch_lines(&st, out));
    const char *h = "marblerun_store_commit_duration_seconds";
    MR_GUARD(mr_srv_prom_family(out, h, "histogram",
                                "Round trips of writing commits to the shared store"));
    uint64_t cum = 0;
    double bound = MR_STORE_LAT_BASE_US;
    for (size_t k = 0; k < MR_STORE_LAT_BUCKETS; k++) {
        char le[32];
        cum += st.commit_lat[k];
        if (k + 1 < MR_STORE_LAT_BUCKETS)
            (void)snprintf(le, sizeof(le), "%.6f", bound / 1e6);
        else
            (void)snprintf(le, sizeof(le), "+Inf");
        MR_GUARD(mr_buf_printf(out, "%s_bucket{le=\"%s\"} %llu\n", h, le,
                               (unsigned long long)cum));
        bound *= 1.4142135623730951;
    }
    MR_GUARD(mr_buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", h,
                           (double)st.commit_lat_sum_us / 1e6, h, (unsigned long long)cum));
    return MR_SUCCESS;
}

/* The activation counters per (type, UUID); the caller holds series_mu. */
static MR_RESULT series_lines(const mr_api *a, mr_buf *out)
{
    static const char *const names[2] = {"coordinator_marble_activations_total",
                                         "coordinator_marble_activations_success_total"};
    static const char *const help[2] = {"Number of marble activation attempts",
                                        "Number of successful marble activations"};
    for (int k = 0; k < 2; k++) {
        MR_GUARD(mr_srv_prom_family(out, names[k], "counter", help[k]));
        for (size_t i = 0; i < API_SERIES_MAX; i++) {
            const api_series *s = &a->series[i];
            if (i >= a->n_series && !(i == API_SERIES_MAX - 1 && (s->total || s->success)))
                continue;
            MR_GUARD(mr_srv_prom_sample(out, names[k], (double)(k == 0 ? s->total : s->success),
                                        "type", s->type, "uuid", s->uuid, MR_SRV_PROM_END));
        }
    }
    return MR_SUCCESS;
}

static MR_RESULT activation_series(mr_api *a, mr_buf *out)
{
    pthread_mutex_lock(&a->series_mu);
    mr_result res = series_lines(a, out);
    pthread_mutex_unlock(&a->series_mu);
    return res;
}

static MR_RESULT build_metrics(mr_api *a, mr_buf *out)
{
    int state = mr_core_state(a->cfg.core);
    MR_GUARD(mr_srv_prom_family(out, "coordinator_version_info", "gauge",
                                "Version information of the Coordinator"));
    MR_GUARD(mr_srv_prom_sample(out, "coordinator_version_info", 0, "commit", a->commit,
                                "version", a->version, MR_SRV_PROM_END));
    MR_GUARD(mr_srv_prom_family(out, "coordinator_state", "gauge", "State of the Coordinator"));
    MR_GUARD(mr_srv_prom_sample(out, "coordinator_state", state, MR_SRV_PROM_END));
    MR_GUARD(activation_series(a, out));
    MR_GUARD(mr_srv_metrics_render(a->cfg.srv, out));
    return store_lines(a, out); /* ours, after upstream's families */
}

static void h_metrics(mr_srv_request *r, void *arg)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    if (mr_ok(build_metrics(arg, &out)))
        mr_srv_resp_send_buf(r, 200, "text/plain; version=0.0.4; charset=utf-8", &out);
    else
        mr_srv_resp_send(r, 500, "text/plain; charset=utf-8", MR_SLICE_STR("metrics failed\n"));
    mr_buf_free(&out);
}

/* {"time":...,"activation":{"marbleType":...,"uuid":...,"quote":...}} (spec §11.2). */
static MR_RESULT event_json(const api_event *e, bool first, mr_buf *out)
{
    MR_GUARD(mr_buf_printf(out, "%s{\"time\":", first ? "" : ","));
    MR_GUARD(jw_str(out, e->time));
    MR_GUARD(mr_buf_append_str(out, ",\"activation\":{\"marbleType\":"));
    MR_GUARD(jw_str(out, e->marble_type));
    MR_GUARD(mr_buf_append_str(out, ",\"uuid\":"));
    MR_GUARD(jw_str(out, e->uuid));
    MR_GUARD(mr_buf_append_str(out, ",\"quote\":"));
    MR_GUARD(jw_b64(out, e->quote.data != NULL ? e->quote.data : (const uint8_t *)"",
                    e->quote.len));
    return mr_buf_append_str(out, "}}");
}

/* The events oldest first, null when there are none; the caller holds ev_mu. */
static MR_RESULT events_json(const mr_api *a, mr_buf *out)
{
    if (a->ev_count == 0)
        return mr_buf_append_str(out, "null");
    MR_GUARD(mr_buf_append_u8(out, '['));
    for (size_t i = 0; i < a->ev_count; i++)
        MR_GUARD(event_json(&a->events[(a->ev_head + i) % a->ev_cap], i == 0, out));
    return mr_buf_append_u8(out, ']');
}

static MR_RESULT build_events(mr_api *a, mr_buf *out)
{
    pthread_mutex_lock(&a->ev_mu);
    mr_result res = events_json(a, out);
    pthread_mutex_unlock(&a->ev_mu);
    MR_GUARD(res);
    return mr_buf_append_u8(out, '\n');
}

static void h_events(mr_srv_request *r, void *arg)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    if (mr_ok(build_events(arg, &out)))
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

MR_RESULT api_register_observe(mr_api *a)
{
    int l = a->cfg.metrics_listener;
    MR_GUARD(mr_srv_route(a->cfg.srv, l, "GET", "/metrics", 0, h_metrics, a));
    MR_GUARD(mr_srv_route(a->cfg.srv, l, "GET", "/events", 0, h_events, a));
    MR_GUARD(mr_srv_route(a->cfg.srv, l, "GET", "/healthz", MR_SRV_ROUTE_INLINE, h_healthz, a));
    return mr_srv_route(a->cfg.srv, l, "GET", "/readyz", MR_SRV_ROUTE_INLINE, h_readyz, a);
}
