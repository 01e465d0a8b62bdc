/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared types of the attestation module: what a verified quote or report says about the
 * workload (claims), the TCB verdict that goes with it, and the options every verifier takes.
 *
 * The records here are plain fixed-size structs: no pointers, nothing to free, safe to copy
 * and to hand between threads. Verifiers (SGX/TDX DCAP in dcap.h, SEV-SNP in snp*.h, the
 * software test issuer softsgx*) fill a mr_attest_claims; the policy layer (policy.h) judges
 * it against a MarbleRun package and the TCB status policy.
 *
 * Nothing in these records is secret.
 */
#ifndef MR_ATTEST_ATTEST_H
#define MR_ATTEST_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/result.h"

/* ---------------------------------------------------------------------------------------- */
/* TEE types and TCB status                                                                   */

typedef enum mr_tee_type {
    MR_TEE_NONE = 0,
    MR_TEE_SGX,
    MR_TEE_TDX,
    MR_TEE_SNP,
} mr_tee_type;

/* TCB status. The first eight values carry EGo's numbering (tcbstatus.Status 0..7); the two
 * TD relaunch values are Intel QvE results that EGo does not know. mr_tcb_status_name()
 * returns the exact Intel/MarbleRun spelling ("UpToDate", "SWHardeningNeeded", ...). */
typedef enum mr_tcb_status {
    MR_TCB_UP_TO_DATE = 0,
    MR_TCB_OUT_OF_DATE = 1,
    MR_TCB_REVOKED = 2,
    MR_TCB_CONFIGURATION_NEEDED = 3,
    MR_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED = 4,
    MR_TCB_SW_HARDENING_NEEDED = 5,
    MR_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED = 6,
    MR_TCB_UNKNOWN = 7,
    MR_TCB_TD_RELAUNCH_ADVISED = 8,
    MR_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED = 9,
    MR_TCB__COUNT
} mr_tcb_status;

/* Exact status string; "Unknown" for out-of-range values. Never NULL. */
const char *mr_tcb_status_name(mr_tcb_status s);
/* Parses an exact (case-sensitive) status string. Returns false when it is not a status. */
bool mr_tcb_status_parse(const char *name, size_t len, mr_tcb_status *out);

/* ---------------------------------------------------------------------------------------- */
/* Claims                                                                                     */

#define MR_ATTEST_REPORT_DATA_LEN 64
#define MR_ATTEST_MAX_ADVISORIES 64
#define MR_ATTEST_ADVISORY_MAX 32 /* including the NUL; IDs look like "INTEL-SA-00615" */

/* SGX enclave report (sgx_report_body_t). */
typedef struct mr_attest_sgx_claims {
    uint8_t cpusvn[16];
    uint32_t miscselect;
    uint8_t isvextprodid[16];
    uint8_t attributes[16]; /* raw: flags (LE u64) then xfrm (LE u64) */
    uint64_t attr_flags;    /* bit 1 (0x02) = DEBUG */
    uint64_t xfrm;
    uint8_t mrenclave[32];  /* MarbleRun UniqueID */
    uint8_t mrsigner[32];   /* MarbleRun SignerID */
    uint8_t configid[64];
    uint16_t isvprodid;     /* MarbleRun ProductID */
    uint16_t isvsvn;        /* MarbleRun SecurityVersion */
    uint16_t configsvn;
    uint8_t isvfamilyid[16];
} mr_attest_sgx_claims;

/* TDX TD report (TD report 1.0; the 1.5 fields are valid when has_td15). */
typedef struct mr_attest_tdx_claims {
    uint8_t tee_tcb_svn[16]; /* byte 0 module SVN, byte 1 module major version */
    uint8_t mrseam[48];
    uint8_t mrsignerseam[48];
    uint64_t seam_attributes;
    uint64_t td_attributes;  /* bit 0 = DEBUG */
    uint64_t xfam;
    uint8_t mrtd[48];
    uint8_t mrconfigid[48];
    uint8_t mrowner[48];
    uint8_t mrownerconfig[48];
    uint8_t rtmr[4][48];
    bool has_td15;
    uint8_t tee_tcb_svn2[16];
    uint8_t mrservicetd[48];
} mr_attest_tdx_claims;

/* AMD SEV-SNP attestation report. */
typedef struct mr_attest_snp_claims {
    uint32_t version;
    uint32_t guest_svn;
    uint64_t policy;         /* bit 19 = DEBUG allowed */
    uint8_t family_id[16];
    uint8_t image_id[16];
    uint32_t vmpl;
    uint32_t signature_algo;
    uint64_t current_tcb;
    uint64_t platform_info;
    uint32_t signer_info;
    uint8_t measurement[48];
    uint8_t host_data[32];
    uint8_t id_key_digest[48];
    uint8_t author_key_digest[48];
    uint8_t report_id[32];
    uint64_t reported_tcb;
    uint8_t chip_id[64];
    uint64_t committed_tcb;
    uint64_t launch_tcb;
    char product[16];        /* "Milan", "Genoa", "Turin" when known, else empty */
} mr_attest_snp_claims;

/* The TCB verdict and the collateral it was derived from. */
typedef struct mr_attest_tcb {
    bool evaluated;              /* false: no collateral was used (signature-only check) */
    mr_tcb_status status;        /* final, converged status (MR_TCB_UNKNOWN if !evaluated) */
    mr_tcb_status platform_status; /* SGX: matched TCB level; TDX: matched TDX level */
    mr_tcb_status qe_status;     /* QE identity level (DCAP only) */
    mr_tcb_status module_status; /* TDX module identity level (TDX only) */
    time_t tcb_date;             /* tcbDate of the matched platform level (0 = unknown) */
    uint32_t tcb_eval_data_number;
    size_t advisory_count;
    char advisories[MR_ATTEST_MAX_ADVISORIES][MR_ATTEST_ADVISORY_MAX]; /* sorted, unique */

    /* Collateral validity window (all 0 when !evaluated). */
    time_t earliest_issue_date;  /* the oldest issueDate/thisUpdate of the collateral used */
    time_t latest_issue_date;    /* the newest issueDate/thisUpdate */
    time_t earliest_next_update; /* the collateral expires at this time */
    time_t latest_next_update;

    /* Platform identity from the PCK certificate (DCAP) */
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint16_t pcesvn;
    uint8_t pck_cpusvn[16];
    uint8_t pck_comp_svn[16];
    uint16_t qe_isvsvn;
} mr_attest_tcb;

typedef struct mr_attest_claims {
    mr_tee_type tee;
    uint16_t quote_version;      /* DCAP quote version (3, 4, 5) or SNP report version */
    uint8_t report_data[MR_ATTEST_REPORT_DATA_LEN];
    bool debug;                  /* SGX ATTRIBUTES.DEBUG / TDX TDATTRIBUTES.DEBUG / SNP policy */
    union {
        mr_attest_sgx_claims sgx;
        mr_attest_tdx_claims tdx;
        mr_attest_snp_claims snp;
    } u;
    mr_attest_tcb tcb;
} mr_attest_claims;

/* ---------------------------------------------------------------------------------------- */
/* Trust anchors and collateral (opaque; see dcap.h / collateral.h)                           */

/* A set of trusted root certificates, matched by public key. Immutable once built, shareable
 * between threads. mr_attest_roots_intel() is the embedded Intel SGX Root CA. */
typedef struct mr_attest_roots mr_attest_roots;

/* One parsed and pre-verified set of DCAP collateral (TCB Info, QE Identity, CRLs, chains). */
typedef struct mr_dcap_collateral mr_dcap_collateral;

/* A source of DCAP collateral keyed by FMSPC/TEE type, with a thread-safe in-memory cache:
 * a file, a directory or a PCCS/PCS base URL (collateral.h). */
typedef struct mr_collateral_source mr_collateral_source;

/* Where the SEV-SNP verifier gets what a report's evidence does not carry: VCEK certificates
 * (a directory or AMD's KDS, cached) and, for tests, a replacement root (snp_source.h). */
typedef struct mr_snp_source mr_snp_source;

/* ---------------------------------------------------------------------------------------- */
/* Verification options                                                                       */

enum {
    /* Verify only the quote's own crypto (PCK chain, QE report, binding, quote signature)
     * when no collateral is available; claims.tcb.evaluated is then false and the status
     * MR_TCB_UNKNOWN. Never set this in production paths. */
    MR_ATTEST_ALLOW_NO_COLLATERAL = 1u << 0,
    /* Accept collateral (TCB Info, QE Identity, CRLs) whose nextUpdate lies before the
     * verification time. Not MarbleRun's default. */
    MR_ATTEST_ALLOW_EXPIRED_COLLATERAL = 1u << 1,
};

typedef struct mr_attest_options {
    /* Trusted roots; NULL = the embedded Intel SGX Root CA. Borrowed. */
    const mr_attest_roots *roots;
    /* Collateral to use as is (wins over `source`). Borrowed. */
    const mr_dcap_collateral *collateral;
    /* Where to get collateral for the quote's FMSPC when `collateral` is NULL. Borrowed. */
    mr_collateral_source *source;
    /* Verification time (certificate, CRL and collateral validity). 0 = time(NULL). */
    time_t verify_time;
    unsigned flags; /* MR_ATTEST_* */
    /* SEV-SNP reports (evidence.h): VCEK lookup and trust anchors; NULL = the compiled-in AMD
     * roots and only the certificates the evidence carries. Borrowed. */
    mr_snp_source *snp;
} mr_attest_options;

#endif
