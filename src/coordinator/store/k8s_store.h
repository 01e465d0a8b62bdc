/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kubernetes backend of the store (store.h): the Coordinator instances of a Kubernetes
 * deployment share one state kept in Secrets of their namespace (docs/kubernetes.md,
 * docs/distributed.md). Kubernetes offers compare-and-swap on one object, so the layout is a
 * small head object that every commit replaces, plus shards that hold the bulk:
 *
 *   Secret <name>        format, head (generation, write epoch, shard count, the generation up
 *                        to which each shard holds its entries), pending (the entries committed
 *                        since they were last moved to the shards), keycheck (which state key
 *                        the state belongs to), m.<meta> (public meta entries: recovery data).
 *   Secret <name>-<i>    shard i (i < shard count): the entries whose key hashes to i, moved
 *                        there from pending once pending outgrows FLUSH_BYTES.
 *
 * Every entry is a key, the generation of its last write, and its value sealed on its own
 * (sealed_value.h, tag "marblerun-c k8s v1", the key in the AAD) or a deletion marker. A
 * commit is one replace of the head with its resourceVersion (409: someone else committed;
 * what it read is checked again on the new head and the commit repeats when that still holds),
 * so a commit costs the same at 10 or 100k marbles, and each Secret stays far below the 1 MiB
 * limit: pending is flushed at FLUSH_BYTES, and a shard is refused beyond SHARD_BYTES (with
 * 64 shards that is room for about 40 MiB of sealed state).
 *
 * Reads: each instance keeps a replica (shards overlaid by pending). A transaction first reads
 * the head (a quorum read) and fetches any shard whose recorded generation is newer than its
 * copy, so no transaction reads older state than what any instance had committed when it
 * began — except MR_STORE_TXN_LATEST ones, which are validated by their commit instead. An
 * API that cannot be reached fails the transaction (MR_ERR_UNAVAILABLE) rather than serving
 * the replica. A watch of the state Secrets (label MR_K8S_STATE_LABEL=<name>,
 * k8s_store_watch.c) applies newer heads to the replica as they come and keeps newer shards
 * for the next head read: it makes the replica warmer, never a read less fresh.
 */
#ifndef MR_COORDINATOR_STORE_K8S_STORE_H
#define MR_COORDINATOR_STORE_K8S_STORE_H

#include <stdbool.h>

#include "common/buf.h"
#include "common/result.h"
#include "coordinator/store/k8s_client.h"
#include "coordinator/store/store.h"

typedef struct mr_k8s_store_options {
    const char *name;                   /* state Secret name; default "marblerun-state" */
    const char *const *volatile_prefixes; /* as for the etcd store (mr_store_sync) */
    size_t n_volatile;
} mr_k8s_store_options;

/* Whether the state Secret exists. */
MR_RESULT mr_k8s_store_probe(mr_k8s *cli, const char *name, bool *has_state);
/* Creates the state (all keys of `initial`, sealed with key) unless it exists: *created. */
MR_RESULT mr_k8s_store_create(mr_k8s *cli, const char *name, mr_slice key, mr_store *initial,
                              bool *created);
/* True when key is the state key of the existing state. */
MR_RESULT mr_k8s_store_check_key(mr_k8s *cli, const char *name, mr_slice key, bool *ok);
/* A public meta entry of the existing state (without the state key). */
MR_RESULT mr_k8s_store_get_meta(mr_k8s *cli, const char *name, const char *meta, mr_buf *value,
                                bool *found);
/* Opens the backend on the existing state with key; takes over cli. */
MR_RESULT mr_store_open_k8s(mr_k8s *cli, mr_slice key, const mr_k8s_store_options *opts,
                            mr_store **out);

#endif
