/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the SEV-SNP input parsers.
 * Target functions: mr_snp_report_parse, mr_snp_report_from_rsp, mr_snp_cert_table_parse,
 * mr_snp_evidence_from_tsm,
 * mr_snp_verify (report from the input with the vectors' fixed VCEKs; and the vectors'
 * fixed report with certificates taken from an input certificate table),
 * mr_snp_policy_check.
 * Seeds: fuzz/corpus/snp/ (the two real reports, a MSG_REPORT_RSP, a certificate table).
 */
#include <stddef.h>
#include <stdint.h>

#include "attest/snp.h"
#include "snp_fuzz_data.h"

#define T_V2 ((time_t)1685577600) /* inside the v2 VCEK's validity */
#define T_V5 ((time_t)1768435200) /* inside the v5 VCEK's validity */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void verify_report(mr_slice report)
{
    mr_snp_report r;
    if (!mr_ok(mr_snp_report_parse(report.ptr, report.len, &r)))
        return;
    bool v2 = r.version == 2;
    mr_snp_evidence ev = {.report = report,
                          .vek = v2 ? MR_SLICE(VCEK_V2, sizeof(VCEK_V2))
                                    : MR_SLICE(VCEK_V5, sizeof(VCEK_V5))};
    mr_snp_verify_opts o = {.time = v2 ? T_V2 : T_V5};
    mr_snp_claims c;
    if (!mr_ok(mr_snp_verify(&ev, &o, &c)))
        return;
    mr_snp_policy p = {.allow_debug = true, .allow_any_measurement = true, .check_min_tcb = true};
    MR_IGNORE(mr_snp_policy_check(&p, &c)); /* only exercised; either outcome is fine */
}

static void verify_table(mr_slice blob)
{
    mr_snp_cert_table t;
    if (!mr_ok(mr_snp_cert_table_parse(blob, &t)) || t.vcek.len == 0)
        return;
    mr_snp_evidence ev;
    if (!mr_ok(mr_snp_evidence_from_tsm(MR_SLICE(REPORT_V2, sizeof(REPORT_V2)), &t, &ev)))
        return;
    mr_snp_verify_opts o = {.time = T_V2};
    mr_snp_claims c;
    MR_IGNORE(mr_snp_verify(&ev, &o, &c)); /* outcome depends on the input */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_slice in = MR_SLICE(data, size);
    mr_slice rep;
    verify_report(in);
    if (mr_ok(mr_snp_report_from_rsp(in, &rep)))
        verify_report(rep);
    verify_table(in);
    mr_error_clear();
    return 0;
}
