/* SPDX-License-Identifier: Apache-2.0 */
/* Secret generation inside the core (spec §7.2, §12.11). */
#ifndef MR_COORDINATOR_CORE_SECRETS_H
#define MR_COORDINATOR_CORE_SECRETS_H

#include <time.h>

#include "coordinator/core/core_int.h"

typedef struct core_gen_ctx {
    X509 *marble_root;          /* issuer of secret certificates */
    EVP_PKEY *inter_key;        /* signer */
    const uint8_t *root_secret; /* MR_ROOT_SECRET_LEN bytes: IKM of per-marble keys */
    const char *uuid;           /* canonical UUID of the marble; NULL = shared context */
    const char *bind_type;      /* HKDF info (marble type); NULL = "" (DisableSecretBinding) */
    time_t now;
} core_gen_ctx;

/* Generates one secret of definition d into *out (initialised here; free with
 * core_secret_clear). keep_not_after != 0 keeps that NotAfter (re-issued shared certificate).
 * Errors carry MarbleRun's texts (spec §7.2, 1.7.0+ wording). */
MR_RESULT core_secret_generate(const core_gen_ctx *g, const mr_manifest_secret *d,
                               time_t keep_not_after, core_secret *out);
bool core_secret_is_symmetric(const mr_manifest_secret *d);

#endif
