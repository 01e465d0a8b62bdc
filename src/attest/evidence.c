/* SPDX-License-Identifier: Apache-2.0 */
/* Evidence formats and the verifier dispatch; see evidence.h. */
#include "attest/evidence.h"

#include <string.h>

#include "attest/dcap.h"
#include "attest/snp.h"
#include "attest/snp_source.h"

enum { SNP_SIG_ALGO_OFFSET = 0x34, SNP_SIG_ALGO_ECDSA_P384 = 1 };

mr_evidence_format mr_evidence_format_of(const uint8_t *ev, size_t len)
{
    mr_cursor c;
    uint32_t first = 0, algo = 0;
    if (ev == NULL || len < 4)
        return MR_EVIDENCE_UNKNOWN;
    mr_cursor_init(&c, ev, len);
    if (!mr_ok(mr_cursor_u32le(&c, &first)))
        return MR_EVIDENCE_UNKNOWN;
    if (first == 1 || ((first & 0xffffu) >= 3 && (first & 0xffffu) <= 5 && first >> 16 == 2))
        return MR_EVIDENCE_DCAP;
    if (first < MR_SNP_MIN_VERSION || first > MR_SNP_MAX_VERSION || len < MR_SNP_REPORT_SIZE)
        return MR_EVIDENCE_UNKNOWN;
    if (!mr_ok(mr_cursor_skip(&c, SNP_SIG_ALGO_OFFSET - 4)) || !mr_ok(mr_cursor_u32le(&c, &algo)))
        return MR_EVIDENCE_UNKNOWN;
    return algo == SNP_SIG_ALGO_ECDSA_P384 ? MR_EVIDENCE_SNP : MR_EVIDENCE_UNKNOWN;
}

const char *mr_tee_type_name(mr_tee_type t)
{
    switch (t) {
    case MR_TEE_SGX:
        return "SGX";
    case MR_TEE_TDX:
        return "TDX";
    case MR_TEE_SNP:
        return "SEV-SNP";
    case MR_TEE_NONE:
        break;
    }
    return "none";
}

MR_RESULT mr_evidence_snp_split(mr_slice ev, mr_slice *report, mr_slice *aux)
{
    mr_cursor c;
    mr_cursor_init(&c, ev.ptr, ev.len);
    MR_ENSURE(ev.len >= MR_SNP_REPORT_SIZE, MR_ERR_ATTESTATION,
              "SNP report: %zu bytes, want at least %u", ev.len, MR_SNP_REPORT_SIZE);
    MR_GUARD(mr_cursor_view(&c, MR_SNP_REPORT_SIZE, report));
    MR_GUARD(mr_cursor_view(&c, mr_cursor_remaining(&c), aux));
    return MR_SUCCESS;
}

static MR_RESULT verify_snp(const uint8_t *ev, size_t len, const mr_attest_options *o,
                            mr_attest_claims *out)
{
    mr_slice report, aux;
    mr_snp_claims sc;
    MR_GUARD(mr_evidence_snp_split(MR_SLICE(ev, len), &report, &aux));
    MR_GUARD(mr_snp_source_verify(o->snp, report, aux, o->verify_time, &sc));
    mr_snp_claims_to_attest(&sc, out);
    return MR_SUCCESS;
}

MR_RESULT mr_attest_verify(const uint8_t *ev, size_t len, const mr_attest_options *opts,
                           mr_attest_claims *out)
{
    static const mr_attest_options none;
    const mr_attest_options *o = opts != NULL ? opts : &none;
    MR_ENSURE_REF(out);
    if (mr_evidence_format_of(ev, len) == MR_EVIDENCE_SNP)
        return verify_snp(ev, len, o, out);
    return mr_dcap_verify(ev, len, o, out);
}
