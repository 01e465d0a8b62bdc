/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the kubernetes backend shared by its files (k8s_store.c: the wire format, the
 * replica, transactions; k8s_store_commit.c: commits, flushes, creation). */
#ifndef MR_COORDINATOR_STORE_K8S_STORE_INT_H
#define MR_COORDINATOR_STORE_K8S_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "coordinator/store/k8s_store.h"
#include "coordinator/store/txn_sets.h"

#define KS_TAG "marblerun-c k8s v1"
#define KS_FORMAT "marblerun-c k8s v1"
#define KS_KEYCHECK_TEXT "marblerun-c state key check"
#define KS_DEFAULT_NAME "marblerun-state"
#define KS_SHARDS 64u
#define KS_FLUSH_BYTES ((size_t)48 << 10)
#define KS_SHARD_BYTES ((size_t)640 << 10)
#define KS_NAME_MAX 200
#define KS_ATTEMPTS 16

/* A cached value: generation (8, little endian), a kind byte, the plaintext. */
enum { KS_CV_HDR = 9, KS_CV_OK = 0, KS_CV_CORRUPT = 1, KS_CV_OWN = 2 };

/* An entry as it is on the wire. */
typedef struct ks_ent {
    char *key;
    uint64_t gen;
    bool del;
    mr_buf sealed;
} ks_ent;

typedef struct ks_list {
    ks_ent *v;
    size_t n, cap;
} ks_list;

/* The head object, parsed. */
typedef struct ks_head {
    char rv[64];
    uint64_t gen;      /* generation of the newest commit */
    uint64_t epoch;    /* bumped by every write of the head (commits and flushes) */
    uint32_t n;        /* shard count */
    uint64_t *fg;      /* shard i holds every flushed entry up to generation fg[i] */
    ks_list pending;   /* sorted by key */
    mr_k8s_obj rest;   /* keycheck and meta entries, kept as they are */
} ks_head;

typedef struct ks_shard {
    char rv[64];       /* "" while the shard object does not exist */
    uint64_t gen;
    ks_list ents;      /* sorted by key */
} ks_shard;

typedef struct kstore {
    mr_store base;
    mr_k8s *cli;
    char name[KS_NAME_MAX];
    uint8_t *key;                /* MR_STORE_DEK_LEN bytes of secret memory */
    pthread_mutex_t mu;          /* the replica below */
    pthread_mutex_t commit_mu;   /* one commit or flush of this instance at a time */
    ks_head head;                /* as last applied; epoch 0 = none yet */
    ks_shard *shards;            /* head.n of them */
    mr_store *view;              /* the state: shards overlaid by pending (cached values) */
    uint64_t state_rev;
    mr_prefix_set vol;
    uint64_t commits, conflicts;
    mr_k8s_watch *watch;         /* NULL: none (the name is no label value) */
    ks_shard **watched;          /* head.n: shards the watch delivered ahead of the replica */
    uint64_t watch_applied;      /* watched heads that moved the replica forward */
    uint64_t watch_shards;       /* shard GETs saved by a watched shard */
    uint64_t lat[MR_STORE_LAT_BUCKETS];
    uint64_t lat_sum_us;
} kstore;

typedef struct ktxn {
    mr_store_txn base;
    kstore *s;
    bool latest;
    mr_store_txn *vt;  /* snapshot of the view, own writes mirrored in */
    uint64_t snap;     /* head generation of the snapshot */
    mr_txn_sets sets; /* plain writes: public meta entries of the head (m.<name>) */
} ktxn;

/* ---- k8s_store.c ---- */
void ks_list_free(ks_list *l);
MR_RESULT ks_list_add(ks_list *l, const char *key, uint64_t gen, bool del, mr_slice sealed);
void ks_list_sort(ks_list *l);
const ks_ent *ks_list_find(const ks_list *l, const char *key);
MR_RESULT ks_list_encode(const ks_list *l, mr_buf *out);
MR_RESULT ks_list_decode(mr_slice in, ks_list *out);
size_t ks_list_bytes(const ks_list *l);
void ks_head_free(ks_head *h);
MR_RESULT ks_head_parse(const mr_k8s_obj *o, ks_head *h);
/* The head's data entries (format, head, pending, the rest) for a write. */
MR_RESULT ks_head_entries(const ks_head *h, mr_k8s_entry **items, size_t *n);
void ks_entries_free(mr_k8s_entry *items, size_t n);
uint32_t ks_shard_of(const char *key, uint32_t n);
MR_RESULT ks_shard_name(const char *name, uint32_t i, char out[KS_NAME_MAX + 16]);
MR_RESULT ks_shard_parse(const mr_k8s_obj *o, ks_shard *sh);
void ks_shard_free(ks_shard *sh);
/* Reads the head and any shard newer than the replica's copy, and applies them. */
MR_RESULT ks_refresh(kstore *s);
/* Applies a head (and already fetched shards: fetched[i] non-NULL) to the replica. Lock held. */
MR_RESULT ks_apply(kstore *s, ks_head *h, ks_shard **fetched);
/* Applies a head object (fetched or watched) and the shards it needs that the replica lacks
 * (watched ones first, else fetched). *advanced when the replica moved to it. */
MR_RESULT ks_refresh_obj(kstore *s, const mr_k8s_obj *o, bool *advanced);
MR_RESULT ks_cv_decode(mr_slice cv, uint64_t *gen, uint8_t *kind, mr_slice *plain);
void ks_txn_free(ktxn *t);

/* The state label's value for a state name (NULL when the name cannot be a label value). */
static inline const char *ks_label(const char *name)
{
    return mr_k8s_label_ok(name) ? name : NULL;
}

/* ---- k8s_store_watch.c ---- */
/* Starts the watch of the state's Secrets from resource version rv; none when the name is no
 * label value. A watch that cannot start is logged, not fatal. */
void ks_watch_start(kstore *s, const char *rv);
void ks_watch_stop(kstore *s);
/* A watched shard i of at least generation need, moved out to *out (NULL: none). Lock held. */
void ks_watched_take(kstore *s, uint32_t i, uint64_t need, ks_shard **out);

/* ---- k8s_store_commit.c ---- */
MR_RESULT ks_commit(mr_store_txn *tx);
MR_RESULT ks_put_meta(mr_store_txn *tx, const char *name, const uint8_t *v, size_t len, bool del);

#endif
