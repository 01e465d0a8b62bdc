/* SPDX-License-Identifier: Apache-2.0 */
#ifndef MR_COORDINATOR_API_INT_H
#define MR_COORDINATOR_API_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "coordinator/api/api.h"
#include "coordinator/api/json.h"

/* One successful activation for /events (spec §11.2), kept in a bounded ring. */
typedef struct api_event {
    char time[40];
    char marble_type[256];
    char uuid[40];
    mr_buf quote;
} api_event;

struct mr_api {
    mr_api_config cfg;
    pthread_mutex_t ev_mu;
    api_event *events;
    size_t ev_cap, ev_head, ev_count;
    atomic_ullong activations_total;
    atomic_ullong activations_success;
    char version[64];
    char commit[64];
};

MR_RESULT api_register_rest(mr_api *a);
MR_RESULT api_register_secrets(mr_api *a);
MR_RESULT api_register_updates(mr_api *a);
MR_RESULT api_register_extras(mr_api *a);
MR_RESULT api_register_mesh(mr_api *a);
MR_RESULT api_register_observe(mr_api *a);
void api_record_event(mr_api *a, const char *type, const char *uuid, mr_slice quote);

/* Authenticates the request's client certificates as a manifest user (spec §4.4). On failure
 * the request is completed with 401 (v1 error / v2 fail envelope) and false is returned. */
bool api_user(mr_api *a, mr_srv_request *r, bool v2, char *name, size_t size);

/* Completes a request with a JSend success whose data is the buffer's JSON (NULL = null). */
void api_success(mr_srv_request *r, mr_buf *data);
/* v1 errors: the JSend error envelope with the given status and the current error text. */
void api_error(mr_srv_request *r, int status);
/* v2 client errors: the fail envelope with the current error text. */
void api_fail(mr_srv_request *r, int status);

#endif
