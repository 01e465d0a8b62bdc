/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation policy, separate from verification: MarbleRun's package rules
 * (spec/coordinator.md §5.5) and the TCB status / advisory policy (§12.1). All failures are
 * MR_ERR_ATTESTATION with the texts of the spec.
 */
#ifndef MR_ATTEST_POLICY_H
#define MR_ATTEST_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "common/result.h"

/* A manifest package (the fields that judge a quote). Strings are borrowed. */
typedef struct mr_attest_package {
    bool debug;                /* must equal the enclave's DEBUG attribute */
    const char *unique_id;     /* MRENCLAVE hex, NULL = unset */
    const char *signer_id;     /* MRSIGNER hex, NULL = unset */
    bool has_product_id;
    uint64_t product_id;       /* ISVPRODID */
    bool has_security_version;
    uint64_t security_version; /* minimum ISVSVN */
    const char *const *accepted_tcb_statuses; /* empty = ["SWHardeningNeeded"] */
    size_t accepted_tcb_status_count;
    const char *const *accepted_advisories;   /* empty = all accepted */
    size_t accepted_advisory_count;
} mr_attest_package;

/* §5.5 step 2: report_data[0:32] == SHA-256(cert DER); error "hash(cert) != report.Data: ...". */
MR_RESULT mr_policy_check_cert_binding(const mr_attest_claims *c, const uint8_t *cert_der,
                                       size_t cert_len);
/* §5.5 step 3: Debug, UniqueID, SignerID, ProductID, SecurityVersion; error
 * "PackageProperties not compliant:\nexpected: {...}\ngot: {...}". SGX claims only. */
MR_RESULT mr_policy_check_package(const mr_attest_claims *c, const mr_attest_package *p);

/* §12.1: TCB status policy. UpToDate is accepted; SWHardeningNeeded is accepted iff listed
 * (then AcceptedAdvisories applies); every other status (what the OE/EGo verifier reports as
 * "TCB level invalid", including an unevaluated "Unknown") is accepted iff listed, with a
 * warning, else "TCB level invalid: <status>". *warned (optional) tells whether the status
 * was accepted only because it is listed. */
MR_RESULT mr_policy_check_tcb(const mr_attest_claims *c, const char *const *accepted,
                              size_t accepted_count, const char *const *advisories,
                              size_t advisory_count, bool *warned);

#endif
