/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Coordinator core: state machine, PKI, manifest, activation, secrets, users, updates and
 * recovery (spec/coordinator.md §2–§10, §12). No socket or HTTP code lives here; the api layer
 * turns requests into these calls and their results into JSON.
 *
 * Concurrency. The core publishes its state as immutable *epochs* (state code, PKI, parsed
 * manifest, secrets, users, quote). Readers — activations, status, quote, TLS handshakes —
 * take a reference to the current epoch and work on it without any lock, so expensive work
 * (quote verification, key generation, signing, template rendering) never runs under a lock.
 * Writers (SetManifest, updates, secret uploads, recovery) serialise on one writer mutex,
 * build the next state in a store transaction, commit it, and only then publish the next
 * epoch. An activation takes no lock of its own: the MaxActivations counter is a
 * read-check-write transaction that reads pending commits and retries on conflict, so
 * concurrent activations share group commits and the count never passes MaxActivations.
 *
 * Errors. Every call returns mr_result; the message is the text MarbleRun sends (the api layer
 * adds endpoint-specific prefixes and status codes as the spec lists them). Activate errors
 * carry the gRPC code through their category: MR_ERR_STATE = FailedPrecondition,
 * MR_ERR_AUTH = Unauthenticated, MR_ERR_ATTESTATION = PermissionDenied,
 * MR_ERR_USAGE = InvalidArgument, MR_ERR_INTERNAL = Internal.
 *
 * Secrets. Private keys of the CA never leave the core: there is no call that returns them;
 * listeners get EVP_PKEY references for their TLS handshakes only.
 */
#ifndef MR_COORDINATOR_CORE_H
#define MR_COORDINATOR_CORE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "attest/issuer.h"
#include "common/buf.h"
#include "common/result.h"
#include "crypto/key.h"

typedef struct mr_core mr_core;

/* State codes (spec §2). */
enum {
    MR_STATE_UNINITIALIZED = 0,
    MR_STATE_RECOVERY = 1,
    MR_STATE_ACCEPTING_MANIFEST = 2,
    MR_STATE_ACCEPTING_MARBLES = 3,
};

/* A Coordinator instance of a group sharing one state in etcd (docs/distributed.md). */
typedef struct mr_core_dist_config {
    bool kubernetes;            /* the kubernetes store (Secrets) instead of etcd */
    const char *etcd_endpoints; /* comma-separated http(s):// URLs */
    const char *etcd_prefix;    /* NULL = "/marblerun/" */
    const char *etcd_ca;        /* PEM paths for TLS to etcd; NULL = none */
    const char *etcd_cert;
    const char *etcd_key;
    const char *k8s_namespace;  /* NULL: the service account's namespace */
    const char *k8s_state;      /* state Secret; NULL: marblerun-state */
    const char *k8s_service;    /* key-API Service (EndpointSlices); NULL: coordinator-key-api */
    const char *k8s_sa_dir;     /* NULL: /var/run/secrets/kubernetes.io/serviceaccount */
    const char *k8s_kek_map;    /* sealed-key ConfigMap; NULL: marblerun-sealed-kek */
    const char *peers;          /* key API peers, comma-separated host:port */
    unsigned peer_timeout_ms;   /* for asking the peers at startup; 0 = 10 s */
} mr_core_dist_config;

typedef struct mr_core_config {
    /* Seal directory (created 0700). NULL = in-memory only (tests). */
    const char *seal_dir;
    /* EDG_COORDINATOR_KEK value; NULL = default for the seal dir. */
    const char *kek;
    /* SANs of the CA certificates (EDG_COORDINATOR_DNS_NAMES, already split). */
    const char *const *dns_names;
    size_t n_dns_names;
    /* Curve of root/intermediate/marble keys: MR_KEY_EC_P256 (default) or MR_KEY_EC_P384. */
    mr_key_type curve;
    /* Own quote source; NULL = simulation mode (empty quote, marble quotes not checked). */
    mr_issuer *issuer;
    /* Verifier settings for marble quotes (roots and collateral source; borrowed). */
    mr_attest_options verify;
    /* Tolerate failures to issue the own quote at startup (EDG_COORDINATOR_DEV_MODE). */
    bool dev_mode;
    /* Store tuning (benchmarks/tests); NULL = defaults. */
    const struct mr_store_options *store_opts;
    /* NULL: the embedded store in the seal directory. Else the state is shared in etcd; the
     * seal directory keeps this instance's sealed copy of the state key. Borrowed. */
    const mr_core_dist_config *dist;
} mr_core_config;

/* Opens the core: loads the sealed state or creates a fresh CA (spec §1.2 step 2), issues the
 * own quote. State afterwards: 1 (sealed state present but not usable), 2 (no manifest) or 3. */
MR_RESULT mr_core_open(const mr_core_config *cfg, mr_core **out);
void mr_core_free(mr_core *c);

/* ---- a group of instances sharing one state (distributed.c) ---- */

/* Makes this instance's view current with everything any instance committed before the call
 * (call it first in every request that reads state). A no-op for the embedded store. Errors:
 * MR_ERR_UNAVAILABLE when etcd cannot vouch for the view (no quorum, cut off). */
MR_RESULT mr_core_sync(mr_core *c);
/* True when the state is shared (etcd). */
bool mr_core_shared(const mr_core *c);
/* The current store's counters (mr_store_stats of coordinator/store/store.h). */
struct mr_store_stats;
void mr_core_store_stats(mr_core *c, struct mr_store_stats *out);
/* The key API (keypb.API/GetKeyEncryptionKey): when the requester (TLS leaf peer_leaf, quote
 * in its request) may have it, appends the state key to key (MR_BUF_SECRET) and our quote over
 * our key-API certificate to quote. Errors: MR_ERR_AUTH (the reason), MR_ERR_UNAVAILABLE (this
 * instance holds no key: recovery mode). */
MR_RESULT mr_core_share_key(mr_core *c, mr_slice quote, mr_slice peer_leaf, mr_buf *key,
                            mr_buf *our_quote);
/* The key API's TLS identity (new references), for its listener. */
MR_RESULT mr_core_key_identity(void *core, X509 **cert, EVP_PKEY **key);

/* ---- status, identities, quote ---- */

int mr_core_state(mr_core *c);
/* The /status message of a state code (spec §2); NULL for 0. */
const char *mr_core_state_message(int state);
/* Certificate and key for a TLS listener (spec §3.5): client API = root cert + root key;
 * mesh = marble root cert + intermediate key. New references; the caller frees them. */
MR_RESULT mr_core_client_identity(mr_core *c, X509 **cert, EVP_PKEY **key);
MR_RESULT mr_core_mesh_identity(mr_core *c, X509 **cert, EVP_PKEY **key);

/* GET /quote: PEM chain (intermediate, then root) and the cached quote (empty in simulation
 * mode: *has_quote false). With nonce != NULL a fresh quote over SHA-256(root DER || nonce)
 * is made. Fails (MR_ERR_STATE) in state 0. */
MR_RESULT mr_core_quote(mr_core *c, const uint8_t *nonce, size_t nonce_len, mr_buf *chain_pem,
                        mr_buf *quote, bool *has_quote);

/* GET /manifest: the originally set raw manifest, its ECDSA signature (DER) and fingerprint.
 * *present = false before a manifest is set. */
MR_RESULT mr_core_manifest(mr_core *c, mr_buf *raw, mr_buf *signature, char fingerprint[65],
                           bool *present);

/* ---- SetManifest (spec §4.5.2) ---- */

typedef struct mr_core_recovery_secret {
    char *name;   /* recovery key name */
    mr_buf value; /* RSA-OAEP ciphertext (not secret) */
} mr_core_recovery_secret;

typedef struct mr_core_recovery_secrets {
    mr_core_recovery_secret *items;
    size_t count;
} mr_core_recovery_secrets;

void mr_core_recovery_secrets_free(mr_core_recovery_secrets *s);

/* Decodes, validates and applies a manifest in state 1 or 2; on success the state is 3 and
 * *out holds one encrypted recovery secret per recovery key (possibly none). On failure the
 * state is unchanged. Error texts carry MarbleRun's prefixes ("unmarshaling manifest: ",
 * "checking manifest: ", ...). */
MR_RESULT mr_core_set_manifest(mr_core *c, const uint8_t *raw, size_t len,
                               mr_core_recovery_secrets *out);

/* ---- Activate (spec §5.4–§5.7, §12.14) ---- */

typedef struct mr_core_activation_req {
    mr_slice quote;        /* OE-format or raw DCAP quote */
    mr_slice csr;          /* DER PKCS#10 */
    const char *marble_type;
    const char *uuid;      /* as sent */
    mr_slice peer_cert;    /* DER of the first TLS client certificate */
} mr_core_activation_req;

typedef struct mr_core_kv {
    char *name;
    mr_buf value; /* secret memory */
} mr_core_kv;

typedef struct mr_core_activation_resp {
    mr_core_kv *files;
    size_t n_files;
    mr_core_kv *env;
    size_t n_env;
    char **argv;
    size_t argc;
    char *marble_type;     /* owned copy of the request's marble type */
    char uuid[37];         /* canonical */
} mr_core_activation_resp;

void mr_core_activation_resp_free(mr_core_activation_resp *r);

MR_RESULT mr_core_activate(mr_core *c, const mr_core_activation_req *req,
                           mr_core_activation_resp *resp);

/* ---- secrets (spec §4.5.8, §4.5.9, §8.2) ---- */

/* Appends {"<name>":<Secret>,...} for the names; the user must hold readsecret on all of them.
 * Errors: MR_ERR_STATE wrong state; MR_ERR_AUTH "user <u> is not allowed to read one or more
 * secrets of: [<names>]"; MR_ERR_NOT_FOUND "loading secret <s> from store: requested value not
 * set". */
MR_RESULT mr_core_get_secrets(mr_core *c, const char *user, const char *const *names, size_t n,
                              mr_buf *out);

/* One uploaded secret (UserSecret JSON); slices borrowed. */
typedef struct mr_core_user_secret {
    const char *name;
    bool has_cert;
    mr_slice cert; /* DER */
    bool has_private;
    mr_slice priv;
    bool has_key;
    mr_slice key;
} mr_core_user_secret;

/* Validates and stores user-defined secret values (all or nothing). Errors carry MarbleRun's
 * texts: "no new secrets defined", "parsing new secrets: ...", "running manifest template dry
 * run: ...", "user <u> is not allowed to update secret: <s>" (MR_ERR_AUTH). */
MR_RESULT mr_core_set_secrets(mr_core *c, const char *user, const mr_core_user_secret *s, size_t n);

/* ---- updates (spec §8.3, §8.4, §12.7) ---- */

typedef struct mr_core_update_result {
    uint64_t missing;             /* acknowledgements still missing */
    char **missing_users;         /* users who have not acknowledged, sorted */
    size_t n_missing_users;
    bool applied;                 /* a full update was applied by this call */
    mr_core_recovery_secrets recovery; /* when the applied update changed recovery keys */
} mr_core_update_result;

void mr_core_update_result_free(mr_core_update_result *r);

/* POST /update: a package update (only Packages) or the start of a full update. */
MR_RESULT mr_core_update(mr_core *c, const char *user, const uint8_t *raw, size_t len,
                         mr_core_update_result *out);
/* POST /update-manifest: acknowledge the pending update (raw must equal it). */
MR_RESULT mr_core_update_ack(mr_core *c, const char *user, const uint8_t *raw, size_t len,
                             mr_core_update_result *out);
/* POST /update-cancel. */
MR_RESULT mr_core_update_cancel(mr_core *c, const char *user);
/* GET /update-manifest: the pending manifest and who still has to acknowledge it. */
MR_RESULT mr_core_update_pending(mr_core *c, mr_buf *raw, mr_core_update_result *out);
/* GET /update: the update log (newline-terminated JSON lines). */
MR_RESULT mr_core_update_log(mr_core *c, mr_buf *out);

/* ---- sign-quote, marble authentication, monotonic counters (spec §12.5, §12.6) ---- */

/* Verifies a quote (OE or raw) and signs SHA-256(quote_b64 || status) with the root key.
 * Errors: MR_ERR_AUTH "<gate> feature is not enabled in the manifest"; MR_ERR_ATTESTATION
 * "quote verification failed: ...". */
MR_RESULT mr_core_sign_quote(mr_core *c, const uint8_t *quote, size_t len, const char *quote_b64,
                             char *status, size_t status_size, mr_buf *sig);
/* Authenticates a marble by the leaf certificate its TLS handshake proved (verified against
 * the current marble root, CN = UUID, the marble-type extension); no other certificate of
 * the peer's chain is ever considered. Errors: MR_ERR_AUTH "unauthorized marble: ...". */
MR_RESULT mr_core_marble_auth(mr_core *c, mr_slice leaf, char *type, size_t tsize,
                              uint8_t uuid[16]);
/* Raises the counter to value if larger; *previous receives the value before. */
MR_RESULT mr_core_counter(mr_core *c, const char *type, const uint8_t uuid[16], const char *name,
                          uint64_t value, uint64_t *previous);

/* ---- users (spec §4.4, §8.1) ---- */

/* Finds the user whose certificate is byte-identical to the TLS leaf certificate (DER), the
 * only certificate the handshake proves (upstream 1.6+ matches any presented certificate,
 * which lets anyone act as any user: spec §4.4 correction). Errors (MR_ERR_AUTH): "no client
 * certificate provided", "unauthorized user: client certificate did not match any MarbleRun
 * users". The user name is copied into name; a name that does not fit in size fails
 * authentication instead of being shortened. */
MR_RESULT mr_core_auth_user(mr_core *c, mr_slice leaf, char *name, size_t size);
#endif
