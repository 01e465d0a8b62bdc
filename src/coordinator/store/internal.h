/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the files of the store module. Not installed, not for other modules. */
#ifndef MR_COORDINATOR_STORE_INTERNAL_H
#define MR_COORDINATOR_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"
#include "coordinator/store/store.h"

/* ---- secret slab: small value blocks carved from large mr_secret_alloc chunks ---- */
#define SECMEM_CLASSES 9 /* 16 .. 4096 bytes */

typedef struct secmem_chunk {
    struct secmem_chunk *next;
    uint8_t *mem;
    size_t size;
} secmem_chunk;

typedef struct secmem {
    void *free_list[SECMEM_CLASSES];
    secmem_chunk *chunks; /* bookkeeping in ordinary memory */
    uint8_t *cur;         /* bump region of the newest chunk */
    size_t cur_left;
    size_t next_chunk;
} secmem;

void secmem_init(secmem *m);
/* Returns a wiped block of at least n bytes (n > 0), or NULL. */
void *secmem_get(secmem *m, size_t n);
/* Wipes and releases a block obtained with size n. NULL-safe. */
void secmem_put(secmem *m, void *p, size_t n);
void secmem_destroy(secmem *m);

/* ---- ordered map with version chains (a skip list) ---- */
#define SL_MAX_LEVEL 24

typedef struct ver {
    struct ver *older;
    uint64_t rev;
    uint8_t *val; /* secmem block; NULL when len == 0 or tombstone */
    uint32_t len;
    bool tomb;
} ver;

typedef struct node {
    char *key;
    size_t klen;
    ver *vers;      /* newest first */
    uint32_t refs;  /* entries in the store's tracking list */
    bool detached;  /* unlinked from the skip list */
    int level;
    struct node *next[];
} node;

typedef struct skiplist {
    node *head;
    int level;
    uint64_t rng;
    size_t count;
} skiplist;

MR_RESULT sl_init(skiplist *l, uint64_t seed);
/* Node with exactly this key, or NULL. */
node *sl_find(const skiplist *l, const char *key, size_t klen);
/* First node with key >= the given one, or NULL. */
node *sl_lower_bound(const skiplist *l, const char *key, size_t klen);
/* Allocates an unlinked node (no versions). */
node *sl_node_new(skiplist *l, const char *key, size_t klen);
/* Links a node created by sl_node_new; the key must not be present. */
void sl_link(skiplist *l, node *n);
void sl_unlink(skiplist *l, node *n);
void sl_node_free(node *n);

/* ---- embedded persistence (embedded.c) ---- */
typedef struct emb emb;
typedef struct kv kv;

/* Write-set entry as handed to the record encoder. */
typedef struct wop {
    const char *key;
    size_t klen;
    const uint8_t *val;
    size_t len;
    bool del;
} wop;

/* Encrypts a commit record for revision rev and appends it to the pending batch. Atomic: on
 * failure nothing changes. Called with the store lock held. */
MR_RESULT emb_append(emb *e, uint64_t rev, const wop *ops, size_t n);
/* Detaches the pending batch (bytes + the chain head after it) for the leader. */
void emb_take_batch(emb *e, mr_buf *batch, uint64_t *end_seq, uint8_t end_digest[32]);
/* Writes and syncs a batch at the end of the valid log. Called WITHOUT the store lock, by the
 * single leader. On failure the log is cut back to its previous length (or *broken is set
 * when even that failed). */
MR_RESULT emb_flush(emb *e, const mr_buf *batch, bool *broken);
/* Bookkeeping after a flush, under the lock. */
void emb_flushed(emb *e, bool ok, uint64_t end_seq, const uint8_t end_digest[32], size_t nbytes,
                 uint64_t nrecords);
bool emb_wants_compaction(const emb *e);
/* Writes a snapshot of the store at its durable revision and starts an empty log. Under the
 * lock, with no pending records. *broken is set when the files are left in a state the
 * process can no longer append to safely. */
MR_RESULT emb_compact(emb *e, kv *k, bool *broken);
void emb_stats(const emb *e, mr_store_stats *st);
void emb_free(emb *e);

/* ---- the engine (store.c), shared by the memory and embedded backends ---- */
typedef struct track {
    uint64_t rev;
    node *n;
} track;

typedef struct kv_txn kv_txn;
typedef struct waiter waiter;

struct kv {
    mr_store base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    skiplist map;
    secmem mem;
    uint64_t durable_rev;  /* newest revision new transactions see */
    uint64_t assigned_rev; /* newest revision handed to a commit */
    bool leader;
    bool broken;
    mr_error fail_err;
    track *tr;             /* versions newer than the GC horizon, in revision order */
    size_t tr_head, tr_len, tr_cap;
    kv_txn *txns;              /* active transactions */
    waiter *waiters;           /* commits waiting for their batch */
    uint64_t live_keys;
    uint64_t commits, conflicts;
    emb *e;
};

struct kv_txn {
    mr_store_txn base;
    kv *k;
    uint64_t rev;
    kv_txn *prev, *next;
    skiplist ws;   /* write set: each node has one version (rev unused); the values are
                    * blocks of the store's slab (taken under the lock) and move into the map
                    * on commit */
    mr_buf reads;  /* keys read, each followed by NUL */
    mr_buf ranges; /* prefixes listed, each followed by NUL */
    size_t ws_bytes;
    bool latest; /* reads pending commits (MR_STORE_TXN_LATEST) */
    bool doomed; /* read commits that were rolled back after a failed write */
};

struct waiter {
    waiter *next;
    uint64_t rev;
    int status; /* 0 pending, 1 durable, -1 failed */
};

kv *kv_new(void);
void kv_free(kv *k);
/* The store mutex; a failure to take it is fatal. */
void kv_lock(kv *k);
void kv_unlock(kv *k);

/* ---- versions and garbage collection (store.c; store lock held) ---- */
void kv_ver_free(secmem *m, ver *v);
bool kv_ver_live(const ver *v);
/* The value of n visible at rev, or NULL (absent or deleted). */
const ver *kv_visible_at(const node *n, uint64_t rev);
/* Frees versions no transaction can see any more. */
void kv_gc(kv *k);
/* Removes every version newer than target (commits that will not become durable). */
void kv_rollback_to(kv *k, uint64_t target);

/* ---- the backend operations (txn.c, commit.c) ---- */
MR_RESULT kv_begin(mr_store *s, unsigned flags, mr_store_txn **out);
MR_RESULT kv_get(mr_store_txn *tx, const char *key, mr_buf *value, bool *found);
MR_RESULT kv_put(mr_store_txn *tx, const char *key, const uint8_t *value, size_t len);
MR_RESULT kv_del(mr_store_txn *tx, const char *key);
MR_RESULT kv_list(mr_store_txn *tx, const char *prefix, mr_store_list *out);
MR_RESULT kv_commit(mr_store_txn *tx);
void kv_abort(mr_store_txn *tx);
/* Unregisters and frees a transaction (takes the store lock). */
void kv_txn_finish(kv_txn *t);
bool kv_has_prefix(const char *key, size_t klen, const char *p, size_t plen);
/* Loading (single-threaded, before use): make `key` hold value (or be absent) at rev. */
MR_RESULT kv_load_set(kv *k, const char *key, size_t klen, const uint8_t *val, size_t len,
                      bool del, uint64_t rev);
/* Visits the live keys at the durable revision in order (lock held by the caller or
 * single-threaded). Stops at the first failure. */
typedef MR_RESULT (*kv_visit_fn)(void *ctx, const node *n, const ver *v);
MR_RESULT kv_visit_durable(kv *k, kv_visit_fn fn, void *ctx);

extern const mr_store_vtbl mr_kv_vtbl;

/* Bytewise key order (shorter prefix first). */
int key_cmp(const char *a, size_t al, const char *b, size_t bl);

#endif
