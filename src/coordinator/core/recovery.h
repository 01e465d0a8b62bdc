/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recovery of a sealed state whose key cannot be unsealed on this host (spec/coordinator.md
 * §10, §12.8, 1.9.1 semantics; docs/recovery.md).
 *
 * Issuing. When a new state key (DEK) is sealed (SetManifest, or an update that changes the
 * recovery keys), core_recovery_issue splits it among the manifest's recovery keys:
 *   one key          the DEK itself, RSA-OAEP(SHA-256) encrypted to the key; no recovery data;
 *   n >= 2 keys, threshold 0 or n
 *                    n random 32-byte XOR shares whose XOR is the DEK;
 *   2 <= t < n       n Shamir shares of 33 bytes (y_1..y_32 || x), any t recover the DEK.
 * For n >= 2 the recovery data (scheme, threshold, number of keys, hex SHA-256 of every share)
 * is written unencrypted to <seal dir>/recovery_data (0600, atomic) so that it is readable in
 * recovery mode; it is removed for states with fewer than two keys. It reveals nothing about
 * the shares beyond their hashes.
 *
 * Recovering (state 1 only; every call takes the writer mutex):
 *   mr_core_recovery_public_key  the ephemeral RSA-4096 key (PKIX DER), made on first request
 *                                and kept until a recovery succeeds.
 *   mr_core_recovery_decrypt     RSA-OAEP-SHA-256 decryption of an upload with that key.
 *   mr_core_recover              one recovery secret (16/32 bytes: the key or an XOR share; 33:
 *                                a Shamir share) and its PKCS#1 v1.5 SHA-256 signature by the
 *                                recovery private key. Shares are checked against the recovery
 *                                data and collected. Once they give a candidate key, the sealed
 *                                state is opened read-only with it, the manifest inside is read
 *                                and the collected signatures must match its recovery keys
 *                                (§12.8); only then is the key installed and re-sealed, the
 *                                recovered store swapped in and its epoch published.
 *                                *remaining is the number of secrets still expected (0 = done).
 * A completed attempt that fails (wrong key, signatures that do not match) discards every
 * collected share and signature; a single rejected upload (unknown or reused share, wrong
 * length) leaves the collection as it was.
 *
 * Secrets: uploaded secrets, shares and candidate keys live in secret memory and are wiped;
 * they are compared with CRYPTO_memcmp and never logged.
 *
 * Errors (texts as MarbleRun's): MR_ERR_STATE "server is not in expected state";
 * MR_ERR_USAGE "setting recovery key: uploaded an invalid or already used secret",
 * "setting recovery key: invalid secret length", "setting recovery key: recovery secrets must
 * match in length: ..."; MR_ERR_AUTH "recovery keys in manifest do not match the keys used for
 * recovery: expected <n>, got <m>", "no matching recovery key found for recovery public key
 * \"<k>\""; "loading sealed state: ...", "loading manifest from store: ...", "generating quote
 * failed: ...", "loading state: ...".
 */
#ifndef MR_COORDINATOR_CORE_RECOVERY_H
#define MR_COORDINATOR_CORE_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/result.h"
#include "coordinator/core/core.h"

#define MR_RECOVERY_DATA_FILE "recovery_data"

/* Appends the DER (SubjectPublicKeyInfo) of the ephemeral RSA-4096 key to der. */
MR_RESULT mr_core_recovery_public_key(mr_core *c, mr_buf *der);

/* Decrypts an upload encrypted with the ephemeral key; plain must be an MR_BUF_SECRET buffer.
 * Errors: state; "no ephemeral recovery key has been requested"; "decryption failed". */
MR_RESULT mr_core_recovery_decrypt(mr_core *c, mr_slice ciphertext, mr_buf *plain);

/* Processes one recovery secret (already decrypted) with its signature. */
MR_RESULT mr_core_recover(mr_core *c, mr_slice secret, mr_slice signature, int *remaining);

/* ---- internal to the core ---- */

typedef struct core_recovery core_recovery;
struct mr_manifest;

/* Splits dek for m's recovery keys, writes or removes the recovery data next to the sealed
 * state and forgets any recovery in progress. Called with the writer mutex held. */
MR_RESULT core_recovery_issue(mr_core *c, const struct mr_manifest *m, mr_slice dek,
                              mr_core_recovery_secrets *out);
/* The same for a shared state: the recovery data goes to `data` (left empty when there is
 * none) for the caller's commit instead of the seal dir. */
MR_RESULT core_recovery_issue_shared(mr_core *c, const struct mr_manifest *m, mr_slice dek,
                                     mr_core_recovery_secrets *out, mr_buf *data);
/* Parses recovery data as read back in recovery mode (outside bytes: the seal dir, or the
 * shared store's meta entry) and forgets it; for tests and fuzzing. */
MR_RESULT core_recovery_data_check(const uint8_t *json, size_t len);
/* Wipes and frees the recovery state of a core. NULL-safe. */
void core_recovery_free(core_recovery *r);

#endif
