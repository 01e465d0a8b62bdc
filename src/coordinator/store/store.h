/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transactional key-value store of the Coordinator.
 *
 * Model
 *  - Keys are NUL-terminated strings (1..MR_STORE_KEY_MAX bytes), sorted bytewise; they are
 *    names, not key material (ordinary memory, wiped when freed). Values are
 *    byte strings (0..MR_STORE_VALUE_MAX bytes) kept in secret memory (a slab allocator on top
 *    of mr_secret_alloc) and wiped when released. Values handed to the caller are copies in
 *    MR_BUF_SECRET buffers.
 *  - Every successful commit that writes something creates a new store revision (1, 2, ...).
 *  - A transaction reads a consistent snapshot at the revision that was the newest committed
 *    (durable) one when it began, plus its own uncommitted writes (multi-version concurrency;
 *    old versions are kept as long as a transaction can still see them).
 *  - Commit is optimistic: it fails with MR_ERR_CONFLICT (class MR_ERR_STATE) when
 *    any key the transaction read (get), wrote (put/delete) or enumerated (every key under a
 *    listed prefix, including keys created or deleted there) was changed by another commit
 *    after the transaction's revision — including commits still waiting for their fsync. A
 *    transaction that wrote nothing always commits (it saw a consistent snapshot), except an
 *    MR_STORE_TXN_LATEST one (see there). Validation costs O(keys read + written + keys under
 *    the listed prefixes), independent of the rest of the state.
 *  - A transaction is used by one thread at a time; different transactions and the store
 *    itself may be used from any number of threads.
 *
 * Backends (behind mr_store_vtbl so etcd/Kubernetes backends can be added):
 *  - memory:   mr_store_open_memory(). Commits are visible immediately; nothing persisted.
 *  - embedded: mr_store_open_embedded(). A directory with a sealed snapshot (state.snap) and an
 *    append-only log of sealed commit records (state.log), encrypted with a 32-byte state key
 *    (DEK) supplied by the caller (see coordinator/seal/seal.h for who seals the DEK). A commit
 *    returns only after its record is written and fdatasync'ed; concurrent committers share one
 *    write + fdatasync (group commit). docs/state-format.md describes the files.
 *
 * Errors: MR_ERR_USAGE bad key/value/txn use (MR_ERR_TOO_LARGE for a value over
 * MR_STORE_VALUE_MAX); MR_ERR_CONFLICT a newer revision got there first (retry the whole
 * transaction); MR_ERR_IO file-system failures (the commit did not happen, memory is
 * unchanged; if the log cannot even be cut back, the store refuses all further commits with
 * MR_ERR_IO until it is reopened); MR_ERR_UNAVAILABLE a remote backend cannot be reached
 * right now (none of the current backends); MR_ERR_CORRUPT the files on disk do not verify
 * (tampering, corruption, wrong key); MR_ERR_INTERNAL out of memory.
 */
#ifndef MR_COORDINATOR_STORE_H
#define MR_COORDINATOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/result.h"

#define MR_STORE_KEY_MAX 4096u
#define MR_STORE_VALUE_MAX ((size_t)16 << 20)
#define MR_STORE_DEK_LEN 32u

typedef struct mr_store mr_store;
typedef struct mr_store_txn mr_store_txn;

/* One entry of a prefix listing. key and value point into the list's storage. */
typedef struct mr_store_item {
    const char *key;
    mr_slice value; /* in secret memory, wiped by mr_store_list_free */
} mr_store_item;

typedef struct mr_store_list {
    size_t count;
    mr_store_item *items; /* sorted bytewise by key */
    /* storage; private */
    mr_buf keys_;
    mr_buf values_;
} mr_store_list;

/* Frees the list's storage (wiping values); the list becomes empty. NULL-safe. */
void mr_store_list_free(mr_store_list *list);

/* ---- test / benchmark hooks for the embedded backend's file I/O ----
 * Each hook, when set, replaces the system call and has its signature and errno convention. */
typedef struct mr_store_io_hooks {
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(void *ctx, int fd);
    void *ctx;
} mr_store_io_hooks;

typedef struct mr_store_options {
    /* Compact (new snapshot, empty log) once the log exceeds either limit; 0 = default
     * (8 MiB / 4096 records); UINT64_MAX = never. */
    uint64_t compact_bytes;
    uint64_t compact_records;
    /* Benchmarks only: skip fdatasync (a crash can lose acknowledged commits). */
    bool no_fsync;
    const mr_store_io_hooks *io; /* tests only; NULL = real system calls */
} mr_store_options;

/* Commit latency buckets (shared backends): upper bounds MR_STORE_LAT_BASE_US * 2^(k/2) µs
 * for k < MR_STORE_LAT_BUCKETS - 1, the last one unbounded. */
#define MR_STORE_LAT_BUCKETS 24
#define MR_STORE_LAT_BASE_US 100.0

typedef struct mr_store_stats {
    uint64_t revision;         /* newest committed revision */
    uint64_t keys;             /* live keys at that revision */
    uint64_t commits;          /* successful writing commits since open */
    uint64_t conflicts;        /* commits refused with a conflict */
    uint64_t batches;          /* group-commit flushes (write + fdatasync) */
    uint64_t fsyncs;           /* fdatasync/fsync calls issued on log, snapshot or directory */
    uint64_t bytes_written;    /* bytes written to the log and snapshots */
    uint64_t log_bytes;        /* current size of the log */
    uint64_t log_records;      /* records in the current log */
    uint64_t compactions;
    uint64_t torn_bytes_dropped; /* bytes of a torn last record found at load */
    /* shared backends: writing commits by round-trip time (successful or conflicting) and
     * the total of those times */
    uint64_t commit_lat[MR_STORE_LAT_BUCKETS];
    uint64_t commit_lat_sum_us;
    /* kubernetes backend: events its watch took in, watched heads that moved the replica
     * forward, shard GETs saved by a watched shard, reconnects of the watch */
    uint64_t watch_events;
    uint64_t watch_applied;
    uint64_t watch_shards;
    uint64_t watch_reconnects;
} mr_store_stats;

/* ---- backend interface ---- */
typedef struct mr_store_vtbl {
    const char *name;
    MR_RESULT (*begin)(mr_store *s, unsigned flags, mr_store_txn **out);
    MR_RESULT (*get)(mr_store_txn *t, const char *key, mr_buf *value, bool *found);
    MR_RESULT (*put)(mr_store_txn *t, const char *key, const uint8_t *value, size_t len);
    MR_RESULT (*del)(mr_store_txn *t, const char *key);
    MR_RESULT (*list)(mr_store_txn *t, const char *prefix, mr_store_list *out);
    MR_RESULT (*commit)(mr_store_txn *t);
    void (*abort)(mr_store_txn *t);
    void (*stats)(mr_store *s, mr_store_stats *out);
    void (*close)(mr_store *s);
    /* Shared backends only (NULL for local ones): see mr_store_sync, mr_store_put_meta. */
    MR_RESULT (*sync)(mr_store *s, uint64_t *state_rev);
    MR_RESULT (*put_meta)(mr_store_txn *t, const char *name, const uint8_t *v, size_t len,
                          bool del);
} mr_store_vtbl;

/* Every backend's store and transaction objects start with these headers. */
struct mr_store {
    const mr_store_vtbl *vt;
};
struct mr_store_txn {
    mr_store *store;
};

/* ---- opening ---- */

/* An empty in-memory store. */
MR_RESULT mr_store_open_memory(mr_store **out);

/* Opens (creating when absent, mode 0700) the embedded store in `dir`, verifies and replays
 * the snapshot and the log with the state key `dek` (MR_STORE_DEK_LEN bytes; copied). A torn
 * last log record is ignored and cut off before the next write. Any other inconsistency fails
 * with MR_ERR_CORRUPT (class MR_ERR_PROTOCOL) and a message starting with "sealed state is
 * corrupted"; I/O failures
 * fail with MR_ERR_IO. The directory is locked (flock) while the store is open: a second open,
 * from this or another process, fails with MR_ERR_STATE. opts may be NULL. */
MR_RESULT mr_store_open_embedded(const char *dir, const uint8_t *dek, size_t dek_len,
                                 const mr_store_options *opts, mr_store **out);

/* True when `dir` holds embedded-store state (a snapshot, or a non-empty log). */
MR_RESULT mr_store_embedded_exists(const char *dir, bool *exists);
/* Removes the embedded-store files from `dir` (used when a new state replaces an old one that
 * cannot be unsealed). Durable (directory fsync'ed). */
MR_RESULT mr_store_embedded_remove(const char *dir);

/* Closes the store; all transactions must be finished. NULL-safe. */
void mr_store_close(mr_store *s);
void mr_store_stats_get(mr_store *s, mr_store_stats *out);

/* ---- transactions ---- */

MR_RESULT mr_store_begin(mr_store *s, mr_store_txn **out);

/* Transaction flags for mr_store_begin_ex. */
enum {
    /* Read the newest state including commits still waiting for their fsync (instead of the
     * newest durable one). Lets read-modify-write transactions on a hot key (a counter) build on
     * each other and share one fsync instead of conflicting until each fsync ends. Such a
     * transaction must not act on what it read before its commit succeeds: the commit (also a
     * read-only one) returns only when everything it read is durable, and fails with
     * MR_ERR_CONFLICT when that data was lost to a failed write. */
    MR_STORE_TXN_LATEST = 1u << 0,
};
MR_RESULT mr_store_begin_ex(mr_store *s, unsigned flags, mr_store_txn **out);
/* Copies the value into `value` (appending; use an MR_BUF_SECRET buffer). *found = false and
 * nothing appended when the key does not exist in the snapshot + own writes. */
MR_RESULT mr_store_get(mr_store_txn *t, const char *key, mr_buf *value, bool *found);
MR_RESULT mr_store_put(mr_store_txn *t, const char *key, const uint8_t *value, size_t len);
/* Deleting an absent key is not an error. */
MR_RESULT mr_store_delete(mr_store_txn *t, const char *key);
/* All keys starting with `prefix` ("" = all), sorted bytewise, with copies of their values. */
MR_RESULT mr_store_scan(mr_store_txn *t, const char *prefix, mr_store_list *out);
/* Commits and frees the transaction (on success and on failure). */
MR_RESULT mr_store_commit(mr_store_txn *t);
/* Discards and frees the transaction. NULL-safe. */
void mr_store_abort(mr_store_txn *t);

/* Brings this instance's view up to every commit made (by any instance sharing the store)
 * before the call, and gives the revision of the newest change outside the backend's volatile
 * prefixes: a caller that caches state derived from the store rebuilds it when that number
 * moved. Local backends are always current and answer 0. A shared backend that cannot reach
 * its peers fails (MR_ERR_UNAVAILABLE) rather than vouch for a stale view. */
MR_RESULT mr_store_sync(mr_store *s, uint64_t *state_rev);
/* Shared backends: writes (or with del removes) the public meta entry `name` beside the state,
 * UNSEALED, in t's commit (the recovery data, readable without the state key). Local stores:
 * MR_ERR_USAGE. */
MR_RESULT mr_store_put_meta(mr_store_txn *t, const char *name, const uint8_t *v, size_t len,
                            bool del);

/* Convenience: one-key transactions. */
MR_RESULT mr_store_get1(mr_store *s, const char *key, mr_buf *value, bool *found);
MR_RESULT mr_store_put1(mr_store *s, const char *key, const uint8_t *value, size_t len);
/* Copies every key of src's newest revision into dst in one transaction (e.g. the in-memory
 * state of recovery mode into a newly created embedded store). */
MR_RESULT mr_store_copy_all(mr_store *src, mr_store *dst);

#endif
