/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Package rules for confidential-VM marbles (docs/manifest.md "TDX" and "SNP"): what a
 * verified TDX quote or SEV-SNP report must say to match a manifest package. The values are
 * the manifest's, already decoded from hex; unset fields are not checked.
 *
 * Every failure is MR_ERR_ATTESTATION with the message
 *   "PackageProperties not compliant: <field>: expected <manifest value>, got <evidence value>"
 * (or "...: <field>: <reason>"), where <field> is the manifest field that did not match,
 * e.g. "TDX.MRTD", "TDX.RTMR2", "SNP.Measurement", "SNP.Policy.MigrationAgent",
 * "SNP.MinimumTCB.Microcode", "SNP.AcceptedSigningKeys", "Debug". A package of the wrong TEE
 * gives "PackageProperties not compliant: the package describes a <TEE> workload, the
 * evidence is <TEE>".
 */
#ifndef MR_ATTEST_TEE_POLICY_H
#define MR_ATTEST_TEE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "attest/attest.h"
#include "common/result.h"

typedef struct mr_tdx_package {
    bool debug; /* must equal TDATTRIBUTES.DEBUG (bit 0) */
    bool has_mrtd, has_rtmr[4], has_mrconfigid, has_mrowner, has_mrownerconfig;
    uint8_t mrtd[48], rtmr[4][48], mrconfigid[48], mrowner[48], mrownerconfig[48];
    /* (TDATTRIBUTES & mask) == (td_attributes & mask); the values as little-endian u64 */
    bool has_td_attributes;
    uint64_t td_attributes, td_attributes_mask;
    bool has_xfam;
    uint64_t xfam, xfam_mask;
    bool has_min_tee_tcb_svn; /* component-wise minimum of TEE_TCB_SVN */
    uint8_t min_tee_tcb_svn[16];
} mr_tdx_package;

/* Accepted signing keys of an SNP package. */
enum { MR_SNP_SIGNER_VCEK = 1u << 0, MR_SNP_SIGNER_VLEK = 1u << 1 };

typedef struct mr_snp_package {
    bool debug; /* must equal POLICY.DEBUG (bit 19) */
    bool has_measurement, has_host_data, has_id_key_digest, has_author_key_digest;
    uint8_t measurement[48], host_data[32], id_key_digest[48], author_key_digest[48];
    bool has_family_id, has_image_id;
    uint8_t family_id[16], image_id[16];
    /* POLICY constraints */
    bool has_smt, smt;                     /* POLICY.SMT must equal smt */
    bool allow_migration_agent;            /* else POLICY.MIGRATE_MA must be 0 */
    bool has_single_socket, single_socket; /* POLICY.SINGLE_SOCKET must equal it */
    bool has_vmpl;
    uint32_t vmpl;
    uint32_t min_guest_svn;
    /* minimum REPORTED_TCB, component-wise */
    uint8_t min_bl, min_tee, min_snp, min_ucode;
    unsigned signers; /* MR_SNP_SIGNER_*; 0 = VCEK only */
} mr_snp_package;

/* The evidence is of the package's TEE (the first check of the two below). */
MR_RESULT mr_policy_check_tee(const mr_attest_claims *c, mr_tee_type want);
MR_RESULT mr_policy_check_tdx(const mr_attest_claims *c, const mr_tdx_package *p);
MR_RESULT mr_policy_check_snp(const mr_attest_claims *c, const mr_snp_package *p);

#endif
