/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP verification set-up from the environment (src/common/config.c documents them):
 *   EDG_ATTESTATION_ROOT_CA     PEM file of the trusted root(s); default the embedded Intel
 *                               SGX Root CA. Any other root logs a loud warning.
 *   EDG_ATTESTATION_COLLATERAL  collateral file or directory (testdata shape)
 *   EDG_ATTESTATION_PCCS_URL    PCCS or Intel PCS base URL (used when no COLLATERAL is set)
 */
#ifndef MR_ATTEST_CONFIG_ATTEST_H
#define MR_ATTEST_CONFIG_ATTEST_H

#include "attest/attest.h"
#include "common/result.h"

typedef struct mr_attest_env {
    mr_attest_roots *roots;        /* owned */
    mr_collateral_source *source;  /* owned; NULL when no collateral is configured */
} mr_attest_env;

/* Reads the variables above. On failure nothing is left allocated. */
MR_RESULT mr_attest_env_load(mr_attest_env *out);
/* Points opts at the environment's roots and source (borrowed; keep env alive). Leaves the
 * other fields alone. */
void mr_attest_env_options(const mr_attest_env *env, mr_attest_options *opts);
void mr_attest_env_free(mr_attest_env *env);

#endif
