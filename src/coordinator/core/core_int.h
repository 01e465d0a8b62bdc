/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the Coordinator core, shared by its files. Not for other layers. */
#ifndef MR_COORDINATOR_CORE_INT_H
#define MR_COORDINATOR_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "coordinator/core/core.h"
#include "coordinator/seal/seal.h"
#include "coordinator/store/store.h"
#include "manifest/manifest.h"
#include "manifest/template.h"

/* Store keys (spec §9.2, §12), kept as MarbleRun names them. */
#define K_STATE "state"
#define K_ROOT_CERT "certificate:coordinatorRootCert"
#define K_INTER_CERT "certificate:coordinatorIntermediateCert"
#define K_MARBLE_ROOT_CERT "certificate:marbleRootCert"
#define K_ROOT_KEY "privateKey:coordinatorRootKey"
#define K_INTER_KEY "privateKey:coordinatorIntermediateKey"
#define K_MANIFEST "manifest"
#define K_MANIFEST_SIG "manifestSignature"
#define K_ROOT_SECRET "rootSecret"
#define K_PREV_ROOT_SECRET "previousRootSecret"
#define P_UPDATE_LOG "updateLog:"
#define K_UPDATE_LOG_NEXT "updateLogNext"
#define K_PENDING_UPDATE "pendingUpdate"
#define P_SECRET "secret:"
#define P_PREV_SECRET "previousSecret:"
#define P_ACTIVATIONS "activations:"
#define P_COUNTER "monotonicCounter:"
#define P_PKG_SVN "packageSecurityVersion:" /* SecurityVersion raised by package updates */
#define K_GENERATION "stateGeneration"  /* shared state only: bumped by every state change */
#define MARBLE_TYPE_OID "1.3.9903.2.1"        /* marble type extension of marble certificates */

#define MR_ROOT_SECRET_LEN 32

/* A secret value as the core holds it (generated, uploaded, or a placeholder). */
typedef struct core_secret {
    char *name;
    const mr_manifest_secret *def; /* definition in the epoch's manifest */
    bool has_value;
    uint64_t valid_for;            /* as stored (365 when defaulted) */
    mr_buf cert_der;               /* public */
    mr_buf priv;                   /* secret memory: PKCS#8 DER or key bytes */
    mr_buf pub;                    /* PKIX DER or key bytes */
    X509 *cert;                    /* parsed cert_der, or NULL */
} core_secret;

typedef struct core_secret_set {
    core_secret *items; /* sorted by name */
    size_t count;
} core_secret_set;

typedef struct core_user {
    char *name;
    mr_buf cert_der;
} core_user;

/* Parsed templates of one marble (indexes match the manifest's files/env arrays; NULL where
 * NoTemplates is set). */
typedef struct core_marble_tmpl {
    mr_tmpl **files;
    mr_tmpl **env;
} core_marble_tmpl;

/* An immutable snapshot of everything a reader needs. Published by the writer after a
 * commit; freed when the last reference is dropped. */
typedef struct core_epoch {
    atomic_uint refs;
    int state;
    /* PKI */
    X509 *root_cert;
    X509 *inter_cert;
    X509 *marble_root_cert;
    EVP_PKEY *root_key;
    EVP_PKEY *inter_key;
    mr_buf root_der;
    mr_buf inter_der;
    mr_buf marble_root_der;
    mr_buf root_pem;
    mr_buf inter_pem;
    mr_buf marble_root_pem;
    uint8_t root_hash[32]; /* SHA-256(root DER): report data of the own quote */
    /* own quote over root_hash (empty in simulation mode) */
    mr_buf quote;
    /* manifest (present in state 3) */
    mr_manifest *manifest;      /* decoded manifest with package SVN updates applied */
    mr_buf manifest_raw;        /* originally set bytes */
    mr_buf manifest_sig;        /* DER ECDSA signature by the root key */
    char fingerprint[65];
    core_marble_tmpl *tmpl;     /* per marble, same order as manifest->marbles */
    /* secrets */
    core_secret_set secrets;
    core_secret_set prev_secrets;
    uint8_t root_secret[MR_ROOT_SECRET_LEN];
    bool has_root_secret;
    uint8_t prev_root_secret[MR_ROOT_SECRET_LEN];
    bool has_prev_root_secret;
    /* users (certificate DER per manifest user) */
    core_user *users;
    size_t n_users;
    uint64_t generation; /* K_GENERATION (shared state; 0 otherwise) */
} core_epoch;


struct mr_core {
    mr_core_config cfg;
    char **dns;                 /* owned copies of cfg.dns_names */
    size_t n_dns;
    char *seal_dir;
    bool simulation;
    pthread_mutex_t writer;     /* serialises every state change */
    pthread_mutex_t epoch_mu;   /* guards `epoch` pointer swaps and reference taking */
    core_epoch *epoch;
    mr_store *store;            /* memory store until a manifest is persisted */
    pthread_rwlock_t store_lock; /* readers outside `writer` hold it shared for a transaction;
                                  * replacing `store` holds it exclusively (and `writer`) */
    pthread_mutex_t counters_mu; /* monotonic counters */
    mr_sealer *sealer;
    struct core_recovery *recovery; /* recovery in progress (recovery.c); under `writer` */
    struct core_dist *dist;     /* shared state (distributed.c); NULL for the embedded store */
};

/* ---- epochs (epoch.c) ---- */
core_epoch *core_epoch_get(mr_core *c);             /* new reference; never NULL */
void core_epoch_put(core_epoch *e);                 /* drop a reference; NULL-safe */
/* Builds an epoch from everything in the store at the transaction's snapshot. */
MR_RESULT core_epoch_load(mr_core *c, mr_store_txn *t, core_epoch **out);
/* True while e is the published epoch. */
bool core_epoch_is_current(mr_core *c, const core_epoch *e);
/* Replaces the published epoch (takes over the caller's reference). */
void core_epoch_publish(mr_core *c, core_epoch *e);
/* Issues the own quote for e's root certificate (no-op in simulation mode). */
MR_RESULT core_epoch_quote(mr_core *c, core_epoch *e);

/* ---- secret values (secret_codec.c) ----
 * Stored as `secret:<name>` / `previousSecret:<name>`: the definition lives in the manifest,
 * the store keeps the value: LE64 ValidFor, then LE32-length-prefixed cert DER, private part
 * and public part. */
MR_RESULT core_secret_encode(const core_secret *s, mr_buf *out);
/* Decodes into s (whose name/def the caller sets); parses the certificate when present. */
MR_RESULT core_secret_decode(mr_slice in, core_secret *s);
void core_secret_clear(core_secret *s);
/* Deep copy (dst is initialised here). */
MR_RESULT core_secret_copy(const core_secret *src, core_secret *dst);
void core_secret_set_free(core_secret_set *set);
const core_secret *core_secret_find(const core_secret_set *set, const char *name);
/* Loads every entry under prefix, pairing it with its manifest definition. */
MR_RESULT core_secret_set_load(mr_store_txn *t, const char *prefix, const mr_manifest *m,
                               core_secret_set *out);

/* ---- PKI (pki.c) ---- */
/* Fresh root + intermediate + marble root (spec §3.2), written into the transaction. */
MR_RESULT core_pki_create(mr_core *c, mr_store_txn *t);
/* New intermediate + marble root under the existing root (package updates, spec §8.3 step 6);
 * the new marble root and intermediate key are returned (caller frees). */
MR_RESULT core_pki_rotate_intermediate(mr_core *c, const core_epoch *e, mr_store_txn *t,
                                       X509 **mroot, EVP_PKEY **key);

/* ---- shared state (distributed.c) ---- */
/* Startup with cfg.dist: the shared state's key from the seal dir, a peer or nobody (then
 * recovery mode with a temporary CA); creates the state when etcd holds none. */
MR_RESULT core_dist_load(mr_core *c, core_epoch **e);
void core_dist_free(mr_core *c);
/* SetManifest on the shared store: commits *next (a complete state built from the current one
 * in state 2) if the shared state is still in that state; the loser of a race gets "server
 * is not in expected state". */
MR_RESULT core_dist_persist_new_state(mr_core *c, const mr_manifest *m, mr_store **next,
                                      mr_core_recovery_secrets *out);
/* New recovery secrets of the (unchanged) shared state key for m. */
MR_RESULT core_dist_rekey(mr_core *c, const mr_manifest *m, mr_core_recovery_secrets *out);
/* In t: checks that the shared state is still the published epoch's (MR_ERR_CONFLICT when
 * another instance changed it) and bumps its generation. */
MR_RESULT core_dist_stamp(mr_core *c, mr_store_txn *t);
/* After a failed attempt of a public writer call: true when it should run again (a conflict
 * on the shared state, attempts left, and the view synced). */
bool core_dist_retry(mr_core *c, int attempt);
/* Recovery: does `key` open the shared state? *wrong when not; else *st is a store on it. */
MR_RESULT core_dist_try_key(mr_core *c, mr_slice key, mr_store **st, bool *wrong);
/* Recovery succeeded: this instance seals key and serves the state from st (taken over). */
MR_RESULT core_dist_adopt(mr_core *c, mr_slice key, mr_store *st);
/* The recovery data of the shared state (readable in recovery mode). */
MR_RESULT core_dist_get_recovery_data(mr_core *c, mr_buf *json, bool *found);

/* A fresh CA in a new memory store, in state `state` (2, or 1 for recovery mode) (core.c). */
MR_RESULT core_fresh_state(mr_core *c, int state, mr_store **store_out, core_epoch **epoch_out);

/* ---- persistence (persist.c) ---- */
/* Shared access to c->store for code that does not hold the writer mutex. */
void core_store_rdlock(mr_core *c);
void core_store_unlock(mr_core *c);
/* Replaces c->store (writer mutex held); the old store is closed. */
void core_store_replace(mr_core *c, mr_store *next);
MR_RESULT core_secret_set_sort(core_secret_set *set);
mr_seal_mode core_seal_mode(const mr_manifest *m);
MR_RESULT core_epoch_from_store(mr_core *c, mr_store *store, const core_epoch *prev,
                                core_epoch **out);
MR_RESULT core_epoch_from_txn(mr_core *c, mr_store_txn *t, const core_epoch *prev,
                              core_epoch **out);
MR_RESULT core_persist_new_state(mr_core *c, const mr_manifest *m, mr_store **next,
                                 mr_core_recovery_secrets *out);
/* A new state key for the current state; recovery secrets for m (full updates). */
MR_RESULT core_rekey(mr_core *c, const mr_manifest *m, mr_core_recovery_secrets *out);

/* Commits t and publishes the epoch of the committed state. */
MR_RESULT core_commit_and_publish(mr_core *c, mr_store_txn *t);

/* ---- SetManifest helpers (set_manifest.c) ---- */
MR_RESULT core_dry_run(const mr_manifest *m, const core_secret_set *set);
MR_RESULT core_sign_hash(EVP_PKEY *key, const uint8_t *data, size_t len, mr_buf *sig);
/* ---- update log (updatelog.c) ---- */
/* Appends {"time":...,"update":<update>,<k1>:<v1>,...}\n. The variadic list holds pairs of
 * key and an already encoded JSON value, terminated by NULL. */
MR_RESULT core_log_line(mr_buf *log, const char *update, ...);
MR_RESULT core_log_time(mr_buf *out);
/* An unsigned number stored as text in `base` (0 when the key is absent); a malformed value
 * is MR_ERR_INTERNAL "stored <what> is malformed". */
MR_RESULT core_read_number(mr_store_txn *t, const char *key, int base, const char *what,
                           uint64_t *value);
/* Appends lines to the stored update log / reads the whole log. */
MR_RESULT core_log_append(mr_store_txn *t, const mr_buf *lines);
MR_RESULT core_log_read(mr_store_txn *t, mr_buf *out);
/* Go's %v of a []string ("[a b]"), NUL-terminated, appended to out. */
MR_RESULT core_names_text(const char *const *names, size_t n, mr_buf *out);
/* out = JSON string literal of s (HTML-safe), NUL-terminated. */
MR_RESULT core_json_str(const char *s, mr_buf *out);

/* New intermediate + marble root for a full update: SANs = the root's DNS names and IPs. */
MR_RESULT core_pki_rotate_intermediate_full(mr_core *c, const core_epoch *e, mr_store_txn *t,
                                            X509 **mroot, EVP_PKEY **key);

/* ---- store helpers (storeutil.c) ---- */
/* Store keys built from a prefix and a name: the whole key or a failure (MR_ERR_TOO_LARGE
 * "store key too long"), never a truncated key that could name another object. */
#define CORE_KEY_SIZE (MR_STORE_KEY_MAX + 1)
MR_RESULT core_key(char key[CORE_KEY_SIZE], const char *prefix, const char *name);
MR_RESULT core_put_buf(mr_store_txn *t, const char *key, const mr_buf *b);
MR_RESULT core_put_str(mr_store_txn *t, const char *key, const char *s);
MR_RESULT core_get_required(mr_store_txn *t, const char *key, mr_buf *out);
MR_RESULT core_put_cert(mr_store_txn *t, const char *key, X509 *cert);
MR_RESULT core_put_key(mr_store_txn *t, const char *key, EVP_PKEY *k);

#endif
