/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The etcd backend of the store (store.h): several Coordinator instances share one state in
 * an etcd v3 cluster. docs/distributed.md describes the deployment; this is the contract.
 *
 * Layout: every store key K lives at etcd key <prefix>K; its value is sealed on its own,
 * nonce(12) || AES-256-GCM(state key, value, AAD = "marblerun-c etcd v1" NUL <prefix>K) ||
 * tag(16), so a commit costs the same at 10 or 100k keys, a dump shows no plaintext, and a
 * value copied to another key fails on read (MR_ERR_CORRUPT "sealed state is corrupted").
 * Two keys of our own sit beside them (store keys may not start with byte 0x01):
 *   <prefix>\x01rev       written by every commit: its mod_revision is the newest commit;
 *   <prefix>\x01keycheck  a sealed constant: which state key this state belongs to.
 *
 * Reads: each instance keeps a local replica of the prefix (an in-memory store, current
 * through an etcd watch). A transaction first makes the replica current — a linearizable read
 * of <prefix>\x01rev, then it waits until the watch has delivered that revision — and then
 * reads one consistent snapshot of it. So no transaction reads older state than what any
 * instance had committed when it began; when etcd cannot be reached (no quorum, a partition)
 * the transaction fails (MR_ERR_UNAVAILABLE "etcd unavailable: ...") instead of reading a stale
 * replica.
 *
 * Commits: one etcd Txn. Its compares are the mod_revision of every key the transaction read
 * (0 for a key it found absent) and, for every prefix it listed, that no key in it changed
 * after the snapshot; past MAX_COMPARES compares it compares <prefix>\x01rev instead (no commit
 * at all since the snapshot). Compares failing: MR_ERR_CONFLICT "store conflict: ..." (retry
 * the whole transaction). A commit whose outcome is unknown (etcd went away after it was sent)
 * fails MR_ERR_UNAVAILABLE and is not retried here.
 */
#ifndef MR_COORDINATOR_STORE_ETCD_STORE_H
#define MR_COORDINATOR_STORE_ETCD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"
#include "coordinator/store/etcd_client.h"
#include "coordinator/store/store.h"

typedef struct mr_etcd_store_options {
    const char *prefix;                  /* etcd key prefix; default "/marblerun/" */
    /* Keys under these prefixes do not count as "state" for mr_store_sync's state revision
     * (counters, logs: what the caller does not cache). */
    const char *const *volatile_prefixes;
    size_t n_volatile;
    unsigned sync_timeout_ms;            /* how long a sync waits for the watch; 0 = 5000 */
} mr_etcd_store_options;

/* What the prefix holds (before opening): nothing, or state sealed with some state key. */
MR_RESULT mr_etcd_store_probe(mr_etcd *cli, const char *prefix, bool *has_state);

/* Creates the state in an empty prefix, atomically: the keycheck for `key` plus every key of
 * `initial` (e.g. a fresh CA built in a memory store). When another instance got there first,
 * *created = false and nothing is written. */
MR_RESULT mr_etcd_store_create(mr_etcd *cli, const char *prefix, mr_slice key, mr_store *initial,
                               bool *created);

/* True when `key` is the state key of the state in the prefix (its keycheck opens). */
MR_RESULT mr_etcd_store_check_key(mr_etcd *cli, const char *prefix, mr_slice key, bool *ok);

/* Meta entries: <prefix>\x01<name>, written UNSEALED in the commit of t (a transaction of an
 * etcd store; value NULL with del deletes it), for public data that must be readable without
 * the state key (the recovery data: share hashes). Not part of the replica or of mr_store_*. */
MR_RESULT mr_etcd_store_put_meta(mr_store_txn *t, const char *name, const uint8_t *v, size_t len,
                                 bool del);
MR_RESULT mr_etcd_store_get_meta(mr_etcd *cli, const char *prefix, const char *name,
                                 mr_buf *value, bool *found);

/* Opens the backend on a prefix holding state for `key` (MR_STORE_DEK_LEN bytes, copied into
 * secret memory): loads the replica and starts the watch. The store takes over cli. */
MR_RESULT mr_store_open_etcd(mr_etcd *cli, mr_slice key, const mr_etcd_store_options *opts,
                             mr_store **out);

#endif
