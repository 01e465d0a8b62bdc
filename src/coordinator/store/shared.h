/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared store backends behind one face, for the Coordinator's distributed core
 * (core/distributed.c): etcd (etcd_store.h) and kubernetes (k8s_store.h). What the core needs
 * before it has the state key — does a state exist, create one, does a key open it, its public
 * meta entries, where the peers are — and a store opened with the key.
 */
#ifndef MR_COORDINATOR_STORE_SHARED_H
#define MR_COORDINATOR_STORE_SHARED_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/result.h"
#include "coordinator/store/store.h"

typedef enum mr_shared_kind { MR_SHARED_ETCD = 1, MR_SHARED_KUBERNETES = 2 } mr_shared_kind;

typedef struct mr_shared_config {
    mr_shared_kind kind;
    /* etcd */
    const char *etcd_endpoints, *etcd_prefix, *etcd_ca, *etcd_cert, *etcd_key;
    /* kubernetes (NULL: the defaults of k8s_client.h / k8s_store.h) */
    const char *k8s_namespace, *k8s_state, *k8s_service, *k8s_sa_dir, *k8s_kek_map;
} mr_shared_config;

typedef struct mr_shared mr_shared;

MR_RESULT mr_shared_open(const mr_shared_config *cfg, mr_shared **out);
void mr_shared_close(mr_shared *s);
/* "etcd prefix /marblerun/" or "Secret marblerun/marblerun-state", for messages. */
const char *mr_shared_where(const mr_shared *s);

MR_RESULT mr_shared_probe(mr_shared *s, bool *has_state);
MR_RESULT mr_shared_create(mr_shared *s, mr_slice key, mr_store *initial, bool *created);
MR_RESULT mr_shared_check_key(mr_shared *s, mr_slice key, bool *ok);
MR_RESULT mr_shared_get_meta(mr_shared *s, const char *name, mr_buf *value, bool *found);
/* A store on the state (its own connections). */
MR_RESULT mr_shared_open_store(mr_shared *s, mr_slice key, const char *const *volatile_prefixes,
                               size_t n_volatile, mr_store **out);
/* The key-API peers: static_peers (comma-separated host:port, may be NULL) and, with
 * kubernetes, the ready addresses of the key-API Service's EndpointSlices (port "grpc").
 * Appends "host:port,..." to out (empty: none known). */
MR_RESULT mr_shared_peers(mr_shared *s, const char *static_peers, mr_buf *out);

/* kubernetes: every instance's sealed copy of the state key, in the ConfigMap EDG_K8S_KEK_MAP
 * (default marblerun-sealed-kek), binaryData entry = the sealing host's id
 * (mr_sealer_host_id). Other kinds: nothing found, nothing written. */
MR_RESULT mr_shared_kek_get(mr_shared *s, const char *id, mr_buf *out, bool *found);
MR_RESULT mr_shared_kek_put(mr_shared *s, const char *id, mr_slice blob);

#endif
