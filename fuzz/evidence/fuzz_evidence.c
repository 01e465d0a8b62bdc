/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for attestation evidence of any TEE (attest/evidence.h), as a marble sends
 * it in the Activate request's Quote field.
 * Target functions: mr_evidence_format_of, mr_evidence_snp_split, mr_attest_verify (SNP
 * reports with their auxblob through mr_snp_source_verify and mr_snp_cert_table_parse, with
 * no VCEK source, so nothing is fetched; DCAP quotes signature-only, without collateral),
 * mr_policy_check_tee / mr_policy_check_tdx / mr_policy_check_snp on whatever verified.
 * Seeds: fuzz/corpus/evidence/ (the real SNP v2 report followed by an auxblob with its VCEK
 * and ASK/ARK chain, the same report alone, the real TDX v4 quote).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/evidence.h"
#include "attest/tee_policy.h"

#define T_SNP_V2 ((time_t)1685577600) /* inside the v2 VCEK's validity */
#define T_TDX ((time_t)1751624191)    /* the TDX vector's recorded time */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rules(const mr_attest_claims *c)
{
    mr_tdx_package t;
    mr_snp_package s;
    memset(&t, 0, sizeof(t));
    memset(&s, 0, sizeof(s));
    MR_IGNORE(mr_policy_check_tee(c, MR_TEE_SNP));
    MR_IGNORE(mr_policy_check_tdx(c, &t));
    MR_IGNORE(mr_policy_check_snp(c, &s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_attest_claims c;
    mr_slice report, aux;
    mr_evidence_format f = mr_evidence_format_of(data, size);
    if (f == MR_EVIDENCE_SNP && mr_ok(mr_evidence_snp_split(MR_SLICE(data, size), &report, &aux))) {
        mr_attest_options o = {.verify_time = T_SNP_V2};
        if (mr_ok(mr_attest_verify(data, size, &o, &c)))
            rules(&c);
    } else {
        mr_attest_options o = {.verify_time = T_TDX, .flags = MR_ATTEST_ALLOW_NO_COLLATERAL};
        if (mr_ok(mr_attest_verify(data, size, &o, &c)))
            rules(&c);
    }
    mr_error_clear();
    return 0;
}
