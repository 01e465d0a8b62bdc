/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Activate, step 5c for confidential-VM marbles (docs/cvm.md): the package rules of a
 * package with TDX or SNP fields, applied to the verified evidence. SGX packages keep
 * MarbleRun's rules (activate.c).
 */
#include "attest/policy.h"
#include "attest/tee_policy.h"
#include "common/alloc.h"
#include "coordinator/core/activate_int.h"

/* TDX: the evidence is a TD quote, its TCB status is accepted by the package (as for SGX:
 * AcceptedTCBStatuses, AcceptedAdvisories), it binds the TLS certificate, and the TD report
 * matches the package's TDX fields. */
static MR_RESULT check_tdx(const mr_manifest_package *p, const mr_attest_claims *c,
                           mr_slice peer_cert)
{
    mr_result res = MR_FAILURE;
    mr_tdx_package rules;
    const char **tcb = mr_calloc(p->accepted_tcb_statuses.count + 1, sizeof(char *));
    const char **adv = mr_calloc(p->accepted_advisories.count + 1, sizeof(char *));
    MR_ENSURE_ALLOC_OUT(tcb);
    MR_ENSURE_ALLOC_OUT(adv);
    for (size_t i = 0; i < p->accepted_tcb_statuses.count; i++)
        tcb[i] = p->accepted_tcb_statuses.items[i].ptr ? p->accepted_tcb_statuses.items[i].ptr : "";
    for (size_t i = 0; i < p->accepted_advisories.count; i++)
        adv[i] = p->accepted_advisories.items[i].ptr ? p->accepted_advisories.items[i].ptr : "";
    MR_GUARD_OUT(mr_manifest_tdx_package(p, &rules));
    MR_GUARD_OUT(mr_policy_check_tee(c, MR_TEE_TDX));
    MR_GUARD_OUT(mr_policy_check_tcb(c, tcb, p->accepted_tcb_statuses.count, adv,
                                     p->accepted_advisories.count, NULL));
    MR_GUARD_OUT(mr_policy_check_cert_binding(c, peer_cert.ptr, peer_cert.len));
    MR_GUARD_OUT(mr_policy_check_tdx(c, &rules));
    res = MR_SUCCESS;
out:
    mr_free((void *)tcb);
    mr_free((void *)adv);
    return res;
}

/* SNP: the evidence is an SNP report (its VCEK/VLEK certifies REPORTED_TCB; the package's
 * MinimumTCB is the TCB policy), it binds the TLS certificate, and it matches the package's
 * SNP fields. */
static MR_RESULT check_snp(const mr_manifest_package *p, const mr_attest_claims *c,
                           mr_slice peer_cert)
{
    mr_snp_package rules;
    MR_GUARD(mr_manifest_snp_package(p, &rules));
    MR_GUARD(mr_policy_check_tee(c, MR_TEE_SNP));
    MR_GUARD(mr_policy_check_cert_binding(c, peer_cert.ptr, peer_cert.len));
    return mr_policy_check_snp(c, &rules);
}

MR_RESULT core_act_check_cvm(const mr_manifest_package *p, const mr_attest_claims *c,
                             mr_slice peer_cert)
{
    return p->tdx.present ? check_tdx(p, c, peer_cert) : check_snp(p, c, peer_cert);
}
