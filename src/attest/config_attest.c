/* SPDX-License-Identifier: Apache-2.0 */
/* DCAP verification set-up from the environment; see config_attest.h. */
#include "attest/config_attest.h"

#include <string.h>

#include "attest/collateral.h"
#include "attest/dcap.h"
#include "common/log.h"

MR_RESULT mr_attest_env_load(mr_attest_env *out)
{
    memset(out, 0, sizeof(*out));
    MR_GUARD(mr_attest_roots_from_config(&out->roots));
    if (!mr_ok(mr_collateral_source_from_config(&out->source))) {
        mr_attest_roots_free(out->roots);
        out->roots = NULL;
        return MR_FAILURE;
    }
    if (out->source == NULL)
        MR_LOG_WARN("no attestation collateral configured (EDG_ATTESTATION_COLLATERAL or "
                    "EDG_ATTESTATION_PCCS_URL): DCAP quotes cannot be verified");
    return MR_SUCCESS;
}

void mr_attest_env_options(const mr_attest_env *env, mr_attest_options *opts)
{
    opts->roots = env->roots;
    opts->source = env->source;
}

void mr_attest_env_free(mr_attest_env *env)
{
    if (env == NULL)
        return;
    mr_attest_roots_free(env->roots);
    mr_collateral_source_free(env->source);
    memset(env, 0, sizeof(*env));
}
