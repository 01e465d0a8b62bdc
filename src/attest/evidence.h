/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation evidence in the form the Activate request's Quote field carries it (and GET
 * /quote returns it), for every TEE a marble may run in (docs/cvm.md):
 *
 *   SGX  an Open Enclave remote report (16-byte header: LE32 1, LE32 2, LE64 size) around a
 *        DCAP quote, or a bare DCAP quote (LE16 version 3..5, LE16 key type 2, TEE type 0);
 *   TDX  a bare DCAP TD quote (LE16 version 4 or 5, LE16 key type 2, LE32 TEE type 0x81), as
 *        configfs-tsm's tdx_guest provider returns it;
 *   SNP  an AMD SEV-SNP ATTESTATION_REPORT (1184 bytes: LE32 version 2..5, LE32 signature
 *        algorithm 1 at 0x34), optionally followed directly by configfs-tsm's auxblob (the
 *        GHCB certificate table carrying VCEK or VLEK, ASK or ASVK, ARK).
 *
 * The headers cannot be confused: an OE header starts with LE32 1, a DCAP quote with
 * LE32 0x0002000v (v = 3..5), an SNP report with LE32 2..5. Anything that is not an SNP
 * report goes to the DCAP verifier, whose errors are then the ones MarbleRun reports for a
 * bad quote.
 *
 * Errors are those of the verifier that ran (dcap.h, snp.h, snp_source.h).
 */
#ifndef MR_ATTEST_EVIDENCE_H
#define MR_ATTEST_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "common/buf.h"
#include "common/result.h"

typedef enum mr_evidence_format {
    MR_EVIDENCE_UNKNOWN = 0,
    MR_EVIDENCE_DCAP, /* SGX or TDX (raw or OE-wrapped): the claims say which */
    MR_EVIDENCE_SNP,
} mr_evidence_format;

/* What the bytes are, by their header alone (no parsing beyond it). */
mr_evidence_format mr_evidence_format_of(const uint8_t *ev, size_t len);
/* "SGX", "TDX", "SEV-SNP" or "none". */
const char *mr_tee_type_name(mr_tee_type t);

/* SNP evidence: the report (the first 1184 bytes) and the auxblob after it (may be empty). */
MR_RESULT mr_evidence_snp_split(mr_slice ev, mr_slice *report, mr_slice *aux);

/* Verifies evidence of any format: DCAP quotes with mr_dcap_verify (collateral and roots of
 * opts), SNP reports with mr_snp_source_verify (opts->snp, opts->verify_time). On success *out
 * holds the claims (for SNP tcb.evaluated is false: the VCEK certifies REPORTED_TCB). */
MR_RESULT mr_attest_verify(const uint8_t *ev, size_t len, const mr_attest_options *opts,
                           mr_attest_claims *out);

#endif
