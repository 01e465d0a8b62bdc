/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sealing of the Coordinator's state key (DEK) and opening of the sealed embedded store.
 *
 * The DEK (32 bytes, secret memory) encrypts the embedded store (coordinator/store/store.h).
 * It is itself stored in `<seal dir>/sealed_key`, encrypted (AES-256-GCM) under a
 * key-encryption key (KEK) from a provider chosen by EDG_COORDINATOR_KEK:
 *   gramine        KEK = HKDF-SHA-256 of the 16-byte SGX sealing key read from
 *                  <keys dir>/_sgx_mrsigner (seal mode ProductKey) or _sgx_mrenclave
 *                  (UniqueKey); keys dir defaults to /dev/attestation/keys.
 *   file:<path>    KEK = 32 bytes in a 0600 file, created when absent. Development and
 *                  non-enclave use only (a loud warning is logged).
 *   none           nothing is sealed (SealMode Disabled): the state is written, encrypted,
 *                  but a restart cannot open it without recovery.
 * Default: file:<seal dir>/kek. The seal dir is EDG_COORDINATOR_SEAL_DIR, default
 * <EDG_CWD or cwd>/marblerun-coordinator-data (created with mode 0700; files are 0600).
 *
 * The DEK never leaves this module except through mr_sealer_export_dek (for the recovery
 * code, which encrypts it to the recovery keys) and it is never logged.
 */
#ifndef MR_COORDINATOR_SEAL_H
#define MR_COORDINATOR_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"
#include "coordinator/store/store.h"

typedef enum mr_seal_mode {
    MR_SEAL_MODE_PRODUCT_KEY = 0, /* manifest SealMode "" / "ProductKey" */
    MR_SEAL_MODE_UNIQUE_KEY,      /* "UniqueKey" */
    MR_SEAL_MODE_DISABLED,        /* "Disabled": never write sealed_key */
} mr_seal_mode;

typedef enum mr_kek_kind { MR_KEK_FILE = 1, MR_KEK_GRAMINE, MR_KEK_NONE } mr_kek_kind;

/* What mr_sealer_load found. Failures that fit none of these (I/O errors) are returned as
 * MR_ERR_IO failures instead. */
typedef enum mr_seal_outcome {
    MR_SEAL_NO_STATE = 0,        /* (a) nothing stored yet: start fresh (mr_sealer_create) */
    MR_SEAL_LOADED,              /* (b) state unsealed and verified; *store is set */
    MR_SEAL_KEY_UNAVAILABLE,     /* (c) state present, the DEK cannot be unsealed: recovery */
    MR_SEAL_STATE_INVALID,       /* (d) DEK unsealed, the state does not decrypt/verify:
                                  *     recovery (the reason is logged and kept) */
} mr_seal_outcome;

typedef struct mr_seal_config {
    const char *seal_dir;         /* NULL: from the environment (see above) */
    const char *kek;              /* NULL: EDG_COORDINATOR_KEK, else file:<seal dir>/kek */
    const char *gramine_keys_dir; /* NULL: /dev/attestation/keys (tests point it elsewhere) */
    mr_seal_mode mode;            /* used when sealing; loading follows the sealed_key file */
} mr_seal_config;

typedef struct mr_sealer mr_sealer;

/* Resolves the directory (creating it 0700) and the KEK provider. cfg may be NULL. */
MR_RESULT mr_sealer_open(const mr_seal_config *cfg, mr_sealer **out);
/* Wipes the DEK. NULL-safe. */
void mr_sealer_free(mr_sealer *s);

const char *mr_sealer_dir(const mr_sealer *s);
mr_kek_kind mr_sealer_kek_kind(const mr_sealer *s);
mr_seal_mode mr_sealer_mode(const mr_sealer *s);
/* Why the last load ended in (c) or (d); "" otherwise. Contains no secrets. */
const char *mr_sealer_reason(const mr_sealer *s);
/* True once a DEK is installed (after LOADED, create or a successful recover). */
bool mr_sealer_has_dek(const mr_sealer *s);

/* Startup: classify and, when possible, open the stored state. *store is set only for
 * MR_SEAL_LOADED (caller closes it). opts are passed to the embedded store (may be NULL). */
MR_RESULT mr_sealer_load(mr_sealer *s, const mr_store_options *opts, mr_seal_outcome *outcome,
                         mr_store **store);

/* New state: fresh random DEK, old state files removed, DEK sealed (unless KEK none / mode
 * Disabled), empty embedded store opened. */
MR_RESULT mr_sealer_create(mr_sealer *s, const mr_store_options *opts, mr_store **store);

/* Recovery: try `dek` (MR_STORE_DEK_LEN bytes, e.g. combined from recovery secrets) on the
 * stored state. On success the DEK is installed and re-sealed for this host and the opened
 * store returned (*outcome = LOADED). When the state does not verify with it, nothing changes
 * and *outcome = MR_SEAL_STATE_INVALID; with no state on disk, *outcome = MR_SEAL_NO_STATE. */
MR_RESULT mr_sealer_recover(mr_sealer *s, const uint8_t *dek, size_t len,
                            const mr_store_options *opts, mr_seal_outcome *outcome,
                            mr_store **store);

/* ---- shared stores (etcd) ----
 * The state key of a shared store is held by the store itself (its keycheck says which key
 * opens it); this host keeps only its sealed copy in sealed_key. */
/* Unseals sealed_key and installs the key; *have = false (with mr_sealer_reason) when there
 * is none this host can unseal. */
MR_RESULT mr_sealer_unseal_only(mr_sealer *s, bool *have);
/* Installs a copy of dek (MR_STORE_DEK_LEN bytes, e.g. from a peer) and seals it for this host
 * under the current mode (nothing is written for Disabled or KEK none). */
MR_RESULT mr_sealer_adopt(mr_sealer *s, const uint8_t *dek, size_t len);

/* Appends the installed DEK to `out`, which must be an MR_BUF_SECRET buffer. */
MR_RESULT mr_sealer_export_dek(const mr_sealer *s, mr_buf *out);

/* Changes the seal mode (from the manifest) and re-seals the installed DEK accordingly
 * (Disabled removes sealed_key). */
MR_RESULT mr_sealer_set_mode(mr_sealer *s, mr_seal_mode mode);

/* The sealed copy of the state key kept outside the seal directory (the kubernetes store
 * keeps every instance's copy in the ConfigMap EDG_K8S_KEK_MAP, as MarbleRun does), so that a
 * pod that comes back on the same host without its seal directory opens the state again:
 *   mr_sealer_export_sealed  the bytes of sealed_key (*found false when there is none)
 *   mr_sealer_import_sealed  writes such bytes as sealed_key (format checked; opening them
 *                            is mr_sealer_unseal_only's business: another host's copy fails)
 *   mr_sealer_host_id        a name for this host's sealing key under the current mode:
 *                            hex of HKDF-SHA-256(KEK, label), one-way; *found false when
 *                            nothing is sealed (KEK none, SealMode Disabled, KEK missing) */
#define MR_SEAL_HOST_ID_LEN 32
MR_RESULT mr_sealer_export_sealed(const mr_sealer *s, mr_buf *out, bool *found);
MR_RESULT mr_sealer_import_sealed(mr_sealer *s, mr_slice blob);
MR_RESULT mr_sealer_host_id(mr_sealer *s, char out[MR_SEAL_HOST_ID_LEN + 1], bool *found);

#endif
