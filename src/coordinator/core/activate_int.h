/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of Activate shared by activate.c (checks, certificate, secrets, counter) and
 * activate_params.c (the parameters handed to the marble). */
#ifndef MR_COORDINATOR_CORE_ACTIVATE_INT_H
#define MR_COORDINATOR_CORE_ACTIVATE_INT_H

#include "common/uuid.h"
#include "coordinator/core/core_int.h"

/* Everything one activation builds; freed in one place. */
typedef struct act {
    core_epoch *e;
    const mr_manifest_marble *marble;
    size_t marble_idx;
    const mr_manifest_package *pkg;
    char uuid[MR_UUID_TEXT_LEN + 1];
    EVP_PKEY *key;
    mr_buf cert_der, cert_pem, key_der, key_pem, pub_der;
    core_secret_set mine;      /* per-marble secrets of this activation */
    core_secret_set mine_prev; /* the same for the previous cycle */
    mr_tmpl_named_secret *cur_tab, *prev_tab;
    mr_tmpl_secret_table cur, prev;
    /* for the refusal log line: the quote's TCB verdict when it verified */
    bool verified;
    bool stale; /* the state changed while this activation ran: redo it on the new state */
    char tcb_status[48];
    char advisories[512];
} act;

/* Gives the current error MarbleRun's category and a prefix for the step that failed. */
MR_RESULT core_act_fail_with(mr_errcat cat, const char *prefix);
/* Step 5c for a package with TDX or SNP fields (activate_tee.c): the package rules of a
 * confidential-VM marble on the verified evidence. */
MR_RESULT core_act_check_cvm(const mr_manifest_package *p, const mr_attest_claims *c,
                             mr_slice peer_cert);
/* Steps 10–11: Files, Env (with MARBLE_TTLS_CONFIG and the reserved variables) and Argv of
 * the answer, from the manifest and what a has built. */
MR_RESULT core_act_params(act *a, mr_core_activation_resp *resp);

#endif
