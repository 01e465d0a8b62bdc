/* SPDX-License-Identifier: Apache-2.0 */
/* Conversion of verified SEV-SNP claims into the module-wide record of attest.h. */
#include <stdio.h>
#include <string.h>

#include "attest/snp.h"

void mr_snp_claims_to_attest(const mr_snp_claims *in, mr_attest_claims *out)
{
    const mr_snp_report *r = &in->report;
    mr_attest_snp_claims *s = &out->u.snp;
    memset(out, 0, sizeof(*out));
    out->tee = MR_TEE_SNP;
    out->quote_version = (uint16_t)r->version;
    memcpy(out->report_data, r->report_data, sizeof(out->report_data));
    out->debug = in->debug;
    s->version = r->version;
    s->guest_svn = r->guest_svn;
    s->policy = r->policy;
    memcpy(s->family_id, r->family_id, sizeof(s->family_id));
    memcpy(s->image_id, r->image_id, sizeof(s->image_id));
    s->vmpl = r->vmpl;
    s->signature_algo = r->sig_algo;
    s->current_tcb = r->current_tcb.raw;
    s->platform_info = r->platform_info;
    s->signer_info = r->signer_info;
    memcpy(s->measurement, r->measurement, sizeof(s->measurement));
    memcpy(s->host_data, r->host_data, sizeof(s->host_data));
    memcpy(s->id_key_digest, r->id_key_digest, sizeof(s->id_key_digest));
    memcpy(s->author_key_digest, r->author_key_digest, sizeof(s->author_key_digest));
    memcpy(s->report_id, r->report_id, sizeof(s->report_id));
    s->reported_tcb = r->reported_tcb.raw;
    memcpy(s->chip_id, r->chip_id, sizeof(s->chip_id));
    s->committed_tcb = r->committed_tcb.raw;
    s->launch_tcb = r->launch_tcb.raw;
    if (in->product != MR_SNP_PRODUCT_ANY)
        snprintf(s->product, sizeof(s->product), "%s", mr_snp_product_name(in->product));
    out->tcb.evaluated = false;
    out->tcb.status = MR_TCB_UNKNOWN;
}
