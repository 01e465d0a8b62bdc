/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an optimistic transaction of a shared backend (etcd_store.c, k8s_store_txn.c) records
 * until its commit validates it: the keys it read with the version it saw, the prefixes it
 * scanned, and its buffered writes (one per key, the last one wins).
 */
#ifndef MR_COORDINATOR_STORE_TXN_SETS_H
#define MR_COORDINATOR_STORE_TXN_SETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"

typedef struct mr_txn_read {
    char *key;
    uint64_t ver; /* etcd: mod_revision (0 = absent); kubernetes: generation */
} mr_txn_read;

typedef struct mr_txn_write {
    char *key;
    mr_buf val; /* MR_BUF_SECRET */
    bool del;
    bool plain; /* a public meta entry of the backend: written unsealed */
} mr_txn_write;

typedef struct mr_txn_sets {
    mr_txn_read *reads;
    size_t n_reads, cap_reads;
    char **scans;
    size_t n_scans, cap_scans;
    mr_txn_write *writes;
    size_t n_writes, cap_writes;
} mr_txn_sets;

/* A key read at version ver; only its first read counts. */
MR_RESULT mr_txn_note_read(mr_txn_sets *t, const char *key, uint64_t ver);
MR_RESULT mr_txn_note_scan(mr_txn_sets *t, const char *prefix);
/* Buffers a put (or with del a delete) of key; plain writes are a namespace of their own. */
MR_RESULT mr_txn_note_write(mr_txn_sets *t, const char *key, const uint8_t *v, size_t len,
                            bool del, bool plain);
void mr_txn_sets_free(mr_txn_sets *t);

/* The key prefixes whose changes are not state changes for mr_store_sync (the options'
 * volatile_prefixes of both backends), copied. */
typedef struct mr_prefix_set {
    char **v;
    size_t n;
} mr_prefix_set;

/* On failure p holds what was copied so far: mr_prefix_set_free it either way. */
MR_RESULT mr_prefix_set_copy(mr_prefix_set *p, const char *const *prefixes, size_t n);
bool mr_prefix_set_match(const mr_prefix_set *p, const char *key);
void mr_prefix_set_free(mr_prefix_set *p);

/* The commit round-trip histogram of both shared backends (MR_STORE_LAT_BUCKETS of store.h):
 * the monotonic clock in µs, and one round trip of us µs counted into lat and its sum. */
uint64_t mr_store_mono_us(void);
void mr_store_lat_note(uint64_t *lat, uint64_t *sum_us, uint64_t us); /* caller serialises */

#endif
