/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "coordinator/api/api_int.h"

void api_success(mr_srv_request *r, mr_buf *data)
{
    if (data == NULL) {
        mr_srv_reply_success(r, NULL);
        return;
    }
    if (!mr_ok(mr_buf_nul_terminate(data))) {
        mr_srv_reply_error(r, 500, "out of memory");
        return;
    }
    mr_srv_reply_success(r, (const char *)data->data);
}

void api_error(mr_srv_request *r, int status) { mr_srv_reply_error(r, status, mr_error_get()->msg); }

void api_reply(mr_srv_request *r, mr_result res, mr_buf *data)
{
    if (mr_ok(res))
        api_success(r, data);
    else
        api_error(r, 500);
}

void api_fail(mr_srv_request *r, int status)
{
    mr_srv_reply_fail(r, status, NULL, mr_error_get()->msg);
}

void api_client_error(mr_srv_request *r, bool v2, int status)
{
    if (v2)
        api_fail(r, status);
    else
        api_error(r, status);
}

bool api_user(mr_api *a, mr_srv_request *r, bool v2, char *name, size_t size)
{
    if (mr_ok(mr_core_auth_user(a->cfg.core, mr_srv_req_peer_leaf(r), name, size))) {
        if (!mr_srv_req_body_withheld(r))
            return true;
        /* the precheck found no such user a moment ago (the users changed in between) */
        mr_srv_reply_error(r, 503, API_RETRY_TEXT);
        return false;
    }
    api_client_error(r, v2, 401);
    return false;
}

/* ---- request bodies (docs/security.md) ---- */

/* Only a manifest user's request may carry a large body: the handler authenticates the leaf
 * before it reads anything, so the server need not hold the body of anyone else. */
static bool pre_user(const mr_srv_request *r, void *arg)
{
    const mr_api *a = ((const api_hook *)arg)->a;
    char name[API_USER_MAX];
    return mr_ok(mr_core_auth_user(a->cfg.core, mr_srv_req_peer_leaf(r), name, sizeof(name)));
}

/* POST /manifest is refused in any state but these before the manifest is parsed. */
bool api_accepts_manifest(mr_api *a)
{
    int st = mr_core_state(a->cfg.core);
    return st == MR_STATE_RECOVERY || st == MR_STATE_ACCEPTING_MANIFEST;
}

static bool pre_manifest(const mr_srv_request *r, void *arg)
{
    (void)r;
    return api_accepts_manifest(((const api_hook *)arg)->a);
}

/* Routes that take more than the server's small default; all others keep it (64 KiB), and
 * GET routes take no body. */
static MR_RESULT register_bodies(mr_api *a)
{
    static const struct {
        const char *path;
        size_t max;
        mr_srv_precheck_fn pre;
    } routes[] = {
        {"/manifest", API_BODY_MAX, pre_manifest},
        {"/api/v2/manifest", API_BODY_MAX, pre_manifest},
        {"/secrets", API_BODY_MAX, pre_user},
        {"/api/v2/secrets", API_BODY_MAX, pre_user},
        {"/update", API_BODY_MAX, pre_user},
        {"/api/v2/update", API_BODY_MAX, pre_user},
        {"/update-manifest", API_BODY_MAX, pre_user},
        {"/api/v2/update-manifest", API_BODY_MAX, pre_user},
        {"/api/v2/sign-quote", API_QUOTE_BODY_MAX, NULL},
    };
    for (size_t i = 0; i < MR_ARRAY_LEN(routes); i++)
        MR_GUARD(mr_srv_route_body(a->cfg.srv, a->cfg.client_listener, "POST", routes[i].path,
                                   routes[i].max, routes[i].pre));
    return MR_SUCCESS;
}

void api_record_event(mr_api *a, const char *type, const char *uuid, mr_slice quote)
{
    struct timespec ts;
    struct tm tm;
    char when[32];
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    (void)gmtime_r(&ts.tv_sec, &tm);
    (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&a->ev_mu);
    size_t slot = (a->ev_head + a->ev_count) % a->ev_cap;
    if (a->ev_count == a->ev_cap)
        a->ev_head = (a->ev_head + 1) % a->ev_cap; /* the oldest event is dropped */
    else
        a->ev_count++;
    api_event *e = &a->events[slot];
    if (snprintf(e->time, sizeof(e->time), "%s.%09ldZ", when, ts.tv_nsec) < 0)
        e->time[0] = '\0';
    (void)snprintf(e->marble_type, sizeof(e->marble_type), "%s", type);
    (void)snprintf(e->uuid, sizeof(e->uuid), "%s", uuid);
    if (!mr_ok(mr_buf_set(&e->quote, quote.ptr, quote.len)))
        e->quote.len = 0;
    pthread_mutex_unlock(&a->ev_mu);
}

/* FNV-1a over type, a NUL and uuid, keyed with a per-process random seed. The labels come
 * from unauthenticated requests; even a deliberate collision only degrades a lookup to the
 * linear scan of the bounded table. */
static uint64_t series_hash(uint64_t seed, const char *type, const char *uuid)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (const char *p = type; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    h = (h ^ 0xffu) * 0x100000001b3ULL;
    for (const char *p = uuid; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

void api_count_activation(mr_api *a, const char *type, const char *uuid, bool success)
{
    /* the stored forms (truncated to the label buffers) are what is hashed and compared */
    char t[sizeof(a->series[0].type)], u[sizeof(a->series[0].uuid)];
    (void)snprintf(t, sizeof(t), "%s", type);
    (void)snprintf(u, sizeof(u), "%s", uuid);
    pthread_mutex_lock(&a->series_mu);
    api_series *s = NULL;
    size_t slot = (size_t)series_hash(a->series_seed, t, u) & (API_SERIES_SLOTS - 1);
    while (a->series_index[slot] != 0) {
        api_series *c = &a->series[a->series_index[slot] - 1];
        if (strcmp(c->type, t) == 0 && strcmp(c->uuid, u) == 0) {
            s = c;
            break;
        }
        slot = (slot + 1) & (API_SERIES_SLOTS - 1);
    }
    if (s == NULL && a->n_series < API_SERIES_MAX - 1) {
        s = &a->series[a->n_series++];
        memcpy(s->type, t, sizeof(t));
        memcpy(s->uuid, u, sizeof(u));
        a->series_index[slot] = (uint16_t)a->n_series; /* index + 1 */
    } else if (s == NULL) {
        s = &a->series[API_SERIES_MAX - 1]; /* overflow series: empty labels */
    }
    if (success)
        s->success++;
    else
        s->total++;
    pthread_mutex_unlock(&a->series_mu);
}

/* ---- the shared state's freshness ---- */

static void synced(mr_srv_request *r, void *arg)
{
    api_hook *h = arg;
    if (!mr_ok(mr_core_sync(h->a->cfg.core))) {
        if (h->grpc)
            mr_srv_grpc_fail_from(r, mr_error_get());
        else
            mr_srv_reply_error(r, 503, mr_error_get()->msg);
        return;
    }
    h->fn(r, h->a);
}

static void direct(mr_srv_request *r, void *arg)
{
    api_hook *h = arg;
    h->fn(r, h->a);
}

/* The route's argument is always the hook (prechecks find the api through it); the handler
 * runs directly, or after a sync when the state is shared — then on a worker, even where it
 * would run inline: the loop thread must not wait for etcd. */
static MR_RESULT hook(mr_api *a, mr_srv_handler_fn fn, bool grpc, unsigned *flags,
                      api_hook **out, mr_srv_handler_fn *entry)
{
    MR_ENSURE(a->n_hooks < API_HOOKS_MAX, MR_ERR_INTERNAL, "too many API routes");
    api_hook *h = &a->hooks[a->n_hooks++];
    *h = (api_hook){.a = a, .fn = fn, .grpc = grpc};
    *out = h;
    bool shared = mr_core_shared(a->cfg.core);
    if (shared)
        *flags &= ~(unsigned)MR_SRV_ROUTE_INLINE;
    *entry = shared ? synced : direct;
    return MR_SUCCESS;
}

MR_RESULT api_route(mr_api *a, int listener, const char *method, const char *path,
                    unsigned flags, mr_srv_handler_fn fn)
{
    api_hook *h = NULL;
    mr_srv_handler_fn entry = NULL;
    MR_GUARD(hook(a, fn, false, &flags, &h, &entry));
    return mr_srv_route(a->cfg.srv, listener, method, path, flags, entry, h);
}

MR_RESULT api_grpc_method(mr_api *a, int listener, const char *service, const char *method,
                          mr_srv_handler_fn fn)
{
    api_hook *h = NULL;
    mr_srv_handler_fn entry = NULL;
    unsigned flags = 0;
    MR_GUARD(hook(a, fn, true, &flags, &h, &entry));
    return mr_srv_grpc_method(a->cfg.srv, listener, service, method, flags, entry, h);
}

static MR_RESULT register_all(mr_api *a)
{
    if (a->cfg.client_listener >= 0) {
        MR_GUARD(api_register_rest(a));
        MR_GUARD(api_register_secrets(a));
        MR_GUARD(api_register_updates(a));
        MR_GUARD(api_register_extras(a));
        MR_GUARD(api_register_recovery(a));
        MR_GUARD(register_bodies(a));
    }
    if (a->cfg.mesh_listener >= 0)
        MR_GUARD(api_register_mesh(a));
    if (a->cfg.metrics_listener >= 0)
        MR_GUARD(api_register_observe(a));
    if (a->cfg.has_key_listener)
        MR_GUARD(api_register_keys(a));
    return MR_SUCCESS;
}

MR_RESULT mr_api_new(const mr_api_config *cfg, mr_api **out)
{
    mr_result res = MR_FAILURE;
    mr_api *a = mr_calloc(1, sizeof(*a));
    MR_ENSURE_ALLOC(a);
    a->cfg = *cfg;
    pthread_mutex_init(&a->ev_mu, NULL);
    pthread_mutex_init(&a->series_mu, NULL);
    a->ev_cap = cfg->max_events != 0 ? cfg->max_events : 1000;
    a->events = mr_calloc(a->ev_cap, sizeof(api_event));
    a->series = mr_calloc(API_SERIES_MAX, sizeof(api_series));
    a->series_index = mr_calloc(API_SERIES_SLOTS, sizeof(uint16_t));
    MR_ENSURE_OUT(a->events != NULL && a->series != NULL && a->series_index != NULL,
                  MR_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < a->ev_cap; i++)
        mr_buf_init(&a->events[i].quote, 64 << 10, 0);
    if (RAND_bytes((unsigned char *)&a->series_seed, sizeof(a->series_seed)) != 1)
        a->series_seed = (uint64_t)time(NULL);
    (void)snprintf(a->version, sizeof(a->version), "%s", cfg->version ? cfg->version : "");
    (void)snprintf(a->commit, sizeof(a->commit), "%s", cfg->commit ? cfg->commit : "");
    MR_GUARD_OUT(register_all(a));
    *out = a;
    a = NULL;
    res = MR_SUCCESS;
out:
    mr_api_free(a);
    return res;
}

void mr_api_free(mr_api *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; a->events != NULL && i < a->ev_cap; i++)
        mr_buf_free(&a->events[i].quote);
    mr_free(a->events);
    mr_free(a->series);
    mr_free(a->series_index);
    pthread_mutex_destroy(&a->ev_mu);
    pthread_mutex_destroy(&a->series_mu);
    mr_free(a);
}
