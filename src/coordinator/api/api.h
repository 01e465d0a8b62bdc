/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Coordinator's API layer: REST v1 and /api/v2 handlers on the client listener, the gRPC
 * Activate handler on the mesh listener, and metrics/events/health on the plain listener.
 * Handlers translate between the wire (JSON, protobuf) and core calls; they hold no crypto
 * policy and no state of their own beyond metrics and the bounded event log.
 */
#ifndef MR_COORDINATOR_API_H
#define MR_COORDINATOR_API_H

#include <stdbool.h>
#include <stddef.h>

#include "common/result.h"

/* The api plugs its handlers into a server (coordinator/server, a reusable layer that knows
 * nothing of the api) and calls the core; this header needs only their names. */
typedef struct mr_core mr_core;
typedef struct mr_srv mr_srv;
typedef struct mr_api mr_api;

typedef struct mr_api_config {
    mr_core *core;
    mr_srv *srv;
    int client_listener;  /* -1 = none */
    int mesh_listener;    /* -1 = none */
    int metrics_listener; /* -1 = none */
    bool has_key_listener; /* the key API of a shared state on key_listener (MESH kind) */
    int key_listener;
    size_t max_events;    /* activation events kept for /events; 0 = 1000 */
    const char *version;  /* for coordinator_version_info */
    const char *commit;
} mr_api_config;

/* Registers every route. The api object must outlive the server: until mr_srv_free returns,
 * its workers may still run handlers. */
MR_RESULT mr_api_new(const mr_api_config *cfg, mr_api **out);
void mr_api_free(mr_api *a);

#endif
