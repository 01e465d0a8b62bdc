/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the etcd backend shared by its files (etcd_store.c: sealing, the replica and
 * transactions; etcd_store_commit.c: commits, meta entries, creation). Not for other code. */
#ifndef MR_COORDINATOR_STORE_ETCD_STORE_INT_H
#define MR_COORDINATOR_STORE_ETCD_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "coordinator/store/etcd_store.h"
#include "coordinator/store/txn_sets.h"

#define MAX_COMPARES 100
#define META '\x01'
#define AAD_TAG "marblerun-c etcd v1"
#define KEYCHECK_TEXT "marblerun-c state key check"

/* A cached value: mod_revision (8, little endian), a kind byte, the plaintext. */
enum { CV_HDR = 9, CV_OK = 0, CV_CORRUPT = 1, CV_OWN = 2 };

typedef struct estore {
    mr_store base;
    mr_etcd *cli;
    mr_store *cache;
    mr_buf prefix;
    mr_buf end;
    uint8_t *key; /* MR_STORE_DEK_LEN bytes of secret memory */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t applied;   /* the watch delivered everything up to this revision */
    uint64_t state_rev;
    mr_prefix_set vol;
    unsigned sync_ms;
    uint64_t commits, conflicts;
    uint64_t lat[MR_STORE_LAT_BUCKETS];
    uint64_t lat_sum_us;
} estore;

typedef struct etxn {
    mr_store_txn base;
    estore *s;
    bool latest; /* MR_STORE_TXN_LATEST: the replica as it is, validated by the commit */
    mr_store_txn *ct; /* snapshot of the replica, with our own writes mirrored in */
    int64_t snap;
    mr_txn_sets sets; /* plain writes: public meta entries (mr_etcd_store_put_meta) */
} etxn;

typedef struct txn_msg {
    Etcdserverpb__Compare *cmp;
    Etcdserverpb__Compare **cmpp;
    size_t n_cmp;
    Etcdserverpb__RequestOp *ops;
    Etcdserverpb__RequestOp **opsp;
    Etcdserverpb__PutRequest *puts;
    Etcdserverpb__DeleteRangeRequest *dels;
    size_t n_ops;
    mr_buf *ekeys; /* etcd keys of compares and ops */
    size_t n_ekeys;
    mr_buf *sealed;
    size_t n_sealed;
} txn_msg;

extern const mr_store_vtbl es_vtbl;

/* etcd_store.c */
MR_RESULT es_seal_value(mr_slice key, mr_slice ekey, mr_slice plain, mr_buf *out);
MR_RESULT es_open_value(mr_slice key, mr_slice ekey, mr_slice sealed, mr_buf *out);
MR_RESULT es_meta_key(const char *prefix, const char *name, mr_buf *out);
MR_RESULT es_note_read(etxn *t, const char *key, int64_t rev);
MR_RESULT es_note_write(etxn *t, const char *key, const uint8_t *v, size_t len, bool del);
MR_RESULT es_check_key_name(const char *key);
void es_txn_free(etxn *t);
/* The watch callback (also driven by the fuzzer). */
void es_on_watch(void *arg, const Etcdserverpb__WatchResponse *r);
const char *es_prefix_or_default(const char *p);

/* etcd_store_commit.c */
MR_RESULT es_commit(mr_store_txn *tx);
void es_msg_free(txn_msg *m);
MR_RESULT es_build_compares(const etxn *t, txn_msg *m);
MR_RESULT es_build_ops(const etxn *t, txn_msg *m);

#endif
