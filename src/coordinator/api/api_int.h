/* SPDX-License-Identifier: Apache-2.0 */
#ifndef MR_COORDINATOR_API_INT_H
#define MR_COORDINATOR_API_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "coordinator/api/api.h"
#include "coordinator/core/core.h"
#include "coordinator/server/server.h"
#include "coordinator/api/json.h"

/* One successful activation for /events (spec §11.2), kept in a bounded ring. */
typedef struct api_event {
    char time[40];
    char marble_type[256];
    char uuid[40];
    mr_buf quote;
} api_event;

/* Per (marble type, UUID) activation counters for /metrics (spec §11.1). The label values come
 * from unauthenticated requests, so the number of series is bounded; later series are counted
 * under type="", uuid="" (overflow). */
#define API_SERIES_MAX 4096
#define API_SERIES_SLOTS (2 * API_SERIES_MAX) /* power of two, load factor <= 1/2 */
typedef struct api_series {
    char type[128];
    char uuid[64];
    unsigned long long total;
    unsigned long long success;
} api_series;

/* A route whose handler runs after the shared state is synced (api_route). */
typedef struct api_hook {
    mr_api *a;
    mr_srv_handler_fn fn;
    bool grpc;
} api_hook;
#define API_HOOKS_MAX 64

struct mr_api {
    mr_api_config cfg;
    api_hook hooks[API_HOOKS_MAX];
    size_t n_hooks;
    pthread_mutex_t ev_mu;
    api_event *events;
    size_t ev_cap, ev_head, ev_count;
    pthread_mutex_t series_mu;
    api_series *series;
    size_t n_series;
    /* open-addressing index over series: slot = series index + 1, 0 = empty */
    uint16_t *series_index;
    uint64_t series_seed;
    char version[64];
    char commit[64];
};

MR_RESULT api_register_rest(mr_api *a);
MR_RESULT api_register_secrets(mr_api *a);
MR_RESULT api_register_updates(mr_api *a);
MR_RESULT api_register_extras(mr_api *a);
MR_RESULT api_register_mesh(mr_api *a);
MR_RESULT api_register_observe(mr_api *a);
MR_RESULT api_register_recovery(mr_api *a);
MR_RESULT api_register_keys(mr_api *a);

/* mr_srv_route / mr_srv_grpc_method for the api's handlers (which get arg = a): with a shared
 * state (etcd), the handler runs only once this instance's view is current; when it cannot be
 * made current the request gets 503 / UNAVAILABLE with the reason. The route's own argument
 * is the api_hook (route prechecks receive it). */
MR_RESULT api_route(mr_api *a, int listener, const char *method, const char *path,
                    unsigned flags, mr_srv_handler_fn fn);
MR_RESULT api_grpc_method(mr_api *a, int listener, const char *service, const char *method,
                          mr_srv_handler_fn fn);
void api_record_event(mr_api *a, const char *type, const char *uuid, mr_slice quote);
/* Counts an activation attempt (success = false) or a success for the series. */
void api_count_activation(mr_api *a, const char *type, const char *uuid, bool success);

/* Body limits: uploads of manifests and secrets; a quote to sign. */
#define API_BODY_MAX ((size_t)8 << 20)
#define API_QUOTE_BODY_MAX ((size_t)256 << 10)
#define API_USER_MAX 4096
/* Answer when a precheck's reason to refuse a body was gone by the time the handler ran. */
#define API_RETRY_TEXT "the server state changed while the request was received; retry"

/* Authenticates the request's TLS leaf as a manifest user (spec §4.4). On failure the request
 * is completed with 401 (v1 error / v2 fail envelope) and false is returned; so it is, with
 * 503 API_RETRY_TEXT, when the body was withheld for a leaf that is a user's by now. */
bool api_user(mr_api *a, mr_srv_request *r, bool v2, char *name, size_t size);
/* The core's state takes POST /manifest (recovery or accepting a manifest). */
bool api_accepts_manifest(mr_api *a);

/* Completes a request with a JSend success whose data is the buffer's JSON (NULL = null). */
void api_success(mr_srv_request *r, mr_buf *data);
/* v1 errors: the JSend error envelope with the given status and the current error text. */
void api_error(mr_srv_request *r, int status);
/* api_success(r, data) when res is a success, else api_error(r, 500) with res's error. */
void api_reply(mr_srv_request *r, mr_result res, mr_buf *data);
/* v2 client errors: the fail envelope with the current error text. */
void api_fail(mr_srv_request *r, int status);
/* A client error with the current error text: api_fail for v2, else api_error. */
void api_client_error(mr_srv_request *r, bool v2, int status);

#endif
