/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AMD SEV-SNP attestation reports: parsing, verification and policy
 * (spec/attestation.md §5.5, certificate table from configfs-tsm §5.3).
 *
 * Three separate steps, so that the caller decides what it trusts:
 *
 *   mr_snp_report_parse()   bytes -> mr_snp_report. Structure only: exact size (1184),
 *                           known version (2..5), reserved bytes zero. No crypto.
 *   mr_snp_verify()         report + VCEK/VLEK (+ optional ASK/ASVK/ARK, CRL) at time T ->
 *                           mr_snp_claims. Chain VEK -> ASK/ASVK -> ARK, the ARK pinned
 *                           by public key to AMD's Milan/Genoa roots (compiled in), the
 *                           VEK's TCB/hwID extensions against the report, the report
 *                           signature (ECDSA P-384/SHA-384 over bytes 0x000..0x29F).
 *   mr_snp_policy_check()   claims -> accept/reject against expected values
 *                           (measurement, debug, VMPL, minimum TCB, report data, ...).
 *
 * Errors: every failure is MR_ERR_ATTESTATION (a structural error in the report is
 * MR_ERR_ATTESTATION too, so the caller sees one category for "evidence rejected"); the
 * message starts with the step that failed: "SNP report: ...", "SNP certificates: ...",
 * "SNP VCEK chain: ...", "SNP VCEK key: ...", "SNP VCEK extensions: ...", "SNP report
 * signature: ...", "SNP CRL: ...", "SNP policy: ..." (in the order the steps run). Out of
 * memory is MR_ERR_INTERNAL; a malformed policy (e.g. a report-data length over 64) is
 * MR_ERR_USAGE.
 *
 * Ownership: all inputs are borrowed for the duration of the call; outputs are plain
 * value structs without pointers (nothing to free). Nothing here is secret.
 * Thread-safe: the compiled-in roots are parsed per call.
 */
#ifndef MR_ATTEST_SNP_H
#define MR_ATTEST_SNP_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "attest/attest.h"
#include "common/buf.h"
#include "common/result.h"

#define MR_SNP_REPORT_SIZE 1184u    /* 0x4A0 */
#define MR_SNP_SIGNED_SIZE 672u     /* 0x2A0: the signature covers [0, 0x2A0) */
#define MR_SNP_SIG_COMPONENT_SIZE 72u /* R and S, little-endian, zero-extended */
#define MR_SNP_MIN_VERSION 2u
#define MR_SNP_MAX_VERSION 5u

/* POLICY bits (u64 at 0x008). */
#define MR_SNP_POLICY_ABI_MINOR(p) ((uint8_t)((p) & 0xffu))
#define MR_SNP_POLICY_ABI_MAJOR(p) ((uint8_t)(((p) >> 8) & 0xffu))
#define MR_SNP_POLICY_SMT (1ull << 16)
#define MR_SNP_POLICY_RESERVED1 (1ull << 17) /* must be 1 */
#define MR_SNP_POLICY_MIGRATE_MA (1ull << 18)
#define MR_SNP_POLICY_DEBUG (1ull << 19)
#define MR_SNP_POLICY_SINGLE_SOCKET (1ull << 20)

/* PLATFORM_INFO bits (u64 at 0x040). */
#define MR_SNP_PLATFORM_SMT_EN (1ull << 0)
#define MR_SNP_PLATFORM_TSME_EN (1ull << 1)

/* TCB_VERSION in the Milan/Genoa layout: byte 0 boot loader, byte 1 TEE, bytes 2-5
 * reserved (spl4..spl7 in the VCEK), byte 6 SNP firmware, byte 7 microcode. */
typedef struct mr_snp_tcb {
    uint64_t raw;
    uint8_t bl;
    uint8_t tee;
    uint8_t snp;
    uint8_t ucode;
} mr_snp_tcb;

void mr_snp_tcb_decode(uint64_t raw, mr_snp_tcb *out);

/* SIGNING_KEY field of the signer info word (bits 2-4). */
typedef enum mr_snp_signing_key {
    MR_SNP_KEY_VCEK = 0,
    MR_SNP_KEY_VLEK = 1,
    MR_SNP_KEY_NONE = 7,
} mr_snp_signing_key;

/* Every field of ATTESTATION_REPORT, decoded (little-endian integers converted). */
typedef struct mr_snp_report {
    uint32_t version;
    uint32_t guest_svn;
    uint64_t policy;
    uint8_t family_id[16];
    uint8_t image_id[16];
    uint32_t vmpl;
    uint32_t sig_algo; /* 1 = ECDSA P-384 with SHA-384 */
    mr_snp_tcb current_tcb;
    uint64_t platform_info;
    uint32_t signer_info; /* raw word at 0x048 */
    bool author_key_en;   /* signer_info bit 0 */
    bool mask_chip_key;   /* signer_info bit 1 */
    uint8_t signing_key;  /* signer_info bits 2-4, see mr_snp_signing_key */
    uint8_t report_data[64];
    uint8_t measurement[48];
    uint8_t host_data[32];
    uint8_t id_key_digest[48];
    uint8_t author_key_digest[48];
    uint8_t report_id[32];
    uint8_t report_id_ma[32];
    mr_snp_tcb reported_tcb;
    bool has_cpuid; /* version >= 3 */
    uint8_t cpuid_fam_id;
    uint8_t cpuid_mod_id;
    uint8_t cpuid_step;
    uint8_t chip_id[64];
    mr_snp_tcb committed_tcb;
    uint8_t current_build;
    uint8_t current_minor;
    uint8_t current_major;
    uint8_t committed_build;
    uint8_t committed_minor;
    uint8_t committed_major;
    mr_snp_tcb launch_tcb;
    bool has_mit_vectors; /* version >= 5 */
    uint64_t launch_mit_vector;
    uint64_t current_mit_vector;
    uint8_t sig_r[MR_SNP_SIG_COMPONENT_SIZE]; /* little-endian, as in the report */
    uint8_t sig_s[MR_SNP_SIG_COMPONENT_SIZE];
} mr_snp_report;

/* Parses exactly MR_SNP_REPORT_SIZE bytes. Rejects other sizes, versions outside 2..5,
 * non-zero reserved fields (including the unused tail of the signature area) and
 * SIGNING_KEY values other than 0, 1 or 7. Does not verify anything cryptographically. */
MR_RESULT mr_snp_report_parse(const uint8_t *data, size_t len, mr_snp_report *out);

/* The body of the legacy /dev/sev-guest MSG_REPORT_RSP (u32 status, u32 report_size,
 * 24 reserved bytes, report at 0x20): status must be 0 and report_size 1184. *report
 * borrows from rsp. */
MR_RESULT mr_snp_report_from_rsp(mr_slice rsp, mr_slice *report);

/* AMD product lines with compiled-in roots. */
typedef enum mr_snp_product {
    MR_SNP_PRODUCT_ANY = 0, /* in options: accept any pinned root */
    MR_SNP_PRODUCT_MILAN,
    MR_SNP_PRODUCT_GENOA,
} mr_snp_product;

const char *mr_snp_product_name(mr_snp_product p);

/* Certificates from the configfs-tsm `auxblob` / SNP_GET_EXT_REPORT certificate table:
 * entries {GUID(16), u32 offset, u32 length} up to an all-zero entry, offsets relative to
 * the start of the blob. Each slice borrows from the blob; empty when absent. */
typedef struct mr_snp_cert_table {
    mr_slice vcek;
    mr_slice vlek;
    mr_slice ask;
    mr_slice ark;
} mr_snp_cert_table;

/* Unknown GUIDs are skipped; a duplicate known GUID, an entry pointing outside the blob,
 * or a missing terminator is an error (MR_ERR_ATTESTATION, "SNP certificates: ..."). */
MR_RESULT mr_snp_cert_table_parse(mr_slice blob, mr_snp_cert_table *out);
/* The inverse: appends a table with the non-empty certificates of t (VCEK, VLEK, ASK, ARK
 * order), the terminating entry, then the certificates. */
MR_RESULT mr_snp_cert_table_build(const mr_snp_cert_table *t, mr_buf *out);

/* What the verifier is given. Certificates are DER or PEM (autodetected).
 *  vek:   the VCEK or VLEK that signed the report (required; which one must match the
 *         report's SIGNING_KEY).
 *  chain: optional: the ASK (or ASVK) and/or the ARK, e.g. KDS `cert_chain` (PEM, ASK then
 *         ARK) or a single DER certificate. An ARK copy in here must match a pinned root
 *         by public key and carry a valid self-signature; it is never used as the trust
 *         anchor itself. When no ASK is given, the compiled-in ASK of the product is used
 *         (VCEK only; a VLEK needs its ASVK in the evidence).
 *  chain2: optional: one more certificate source, same rules as chain (a certificate
 *         table gives the ASK and the ARK as two separate DER blobs).
 *  crl:   optional: AMD's KDS CRL (DER or PEM), issued by the ARK and listing revoked
 *         ASKs/ASVKs. When given it must name the anchoring ARK as issuer, be signed by it,
 *         be current at T (thisUpdate <= T <= nextUpdate, nextUpdate present), and must not
 *         list the ASK/ASVK of the verified chain. */
typedef struct mr_snp_evidence {
    mr_slice report;
    mr_slice vek;
    mr_slice chain;
    mr_slice chain2;
    mr_slice crl;
} mr_snp_evidence;

/* Evidence from a configfs-tsm report: outblob (the report) and the parsed auxblob. Picks
 * the VCEK or the VLEK by the report's SIGNING_KEY (the report is parsed for that; errors
 * as mr_snp_report_parse), the ASK as chain and the ARK as chain2. Slices borrow from
 * report and from the table's blob. */
MR_RESULT mr_snp_evidence_from_tsm(mr_slice report, const mr_snp_cert_table *certs,
                                   mr_snp_evidence *out);

typedef struct mr_snp_verify_opts {
    /* Verification time, UNIX seconds. 0 = now (wall clock). Tests always pass a time. */
    time_t time;
    /* Expected product line; MR_SNP_PRODUCT_ANY accepts any compiled-in root. */
    mr_snp_product product;
    /* Require a CRL in the evidence. */
    bool require_crl;
    /* TESTS ONLY: a self-signed root certificate (DER or PEM) used *instead of* the
     * compiled-in AMD roots. Empty in production. With it, product is ignored. */
    mr_slice test_root;
} mr_snp_verify_opts;

/* The verified outcome. */
typedef struct mr_snp_claims {
    mr_snp_report report;       /* every field, signature verified */
    mr_snp_product product;     /* whose root anchored the chain (ANY with a test root) */
    mr_snp_signing_key key;     /* VCEK or VLEK */
    char product_name[32];      /* the VEK's productName extension, e.g. "Milan-B0" ("" if absent) */
    bool debug;                 /* POLICY.DEBUG */
    time_t vek_not_before;      /* validity of the signing certificate */
    time_t vek_not_after;
} mr_snp_claims;

MR_RESULT mr_snp_verify(const mr_snp_evidence *ev, const mr_snp_verify_opts *opts,
                        mr_snp_claims *out);

/* Fills the module-wide claims record (attest.h) from verified SNP claims: tee = SNP,
 * quote_version = report version, report_data, debug, u.snp. SNP has no collateral-based
 * TCB status: tcb.evaluated is false and tcb.status MR_TCB_UNKNOWN (the VCEK already
 * certifies REPORTED_TCB; use mr_snp_policy.min_tcb for a TCB floor). */
void mr_snp_claims_to_attest(const mr_snp_claims *in, mr_attest_claims *out);

/* Expected values. Nothing weak is a silent default:
 *  - MEASUREMENT must be one of `measurements`; an empty list is refused unless
 *    allow_any_measurement is set;
 *  - DEBUG is refused unless allow_debug, MIGRATE_MA unless allow_migration_agent.
 * The remaining checks are off when their field is zero/NULL/false. */
typedef struct mr_snp_policy {
    const uint8_t (*measurements)[48]; /* accepted launch measurements (any one matches) */
    size_t n_measurements;
    bool allow_any_measurement;
    bool allow_debug;
    bool allow_migration_agent;
    bool check_vmpl;
    uint32_t vmpl;                 /* exact VMPL when check_vmpl */
    bool check_min_tcb;
    mr_snp_tcb min_tcb;            /* component-wise minimum of REPORTED_TCB (bl, tee, snp, ucode) */
    uint32_t min_guest_svn;
    const uint8_t *report_data;    /* expected REPORT_DATA prefix ... */
    size_t report_data_len;        /* ... of this many bytes (1..64) */
    bool report_data_rest_zero;    /* and the bytes after the prefix must be zero */
    const uint8_t *host_data;      /* 32 bytes */
    const uint8_t *id_key_digest;  /* 48 bytes */
    const uint8_t *author_key_digest; /* 48 bytes */
    mr_snp_product product;        /* required product line (ANY = no check) */
} mr_snp_policy;

MR_RESULT mr_snp_policy_check(const mr_snp_policy *pol, const mr_snp_claims *claims);

#endif
