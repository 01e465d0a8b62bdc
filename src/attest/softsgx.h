/* SPDX-License-Identifier: Apache-2.0 */
/*
 * softsgx: real-format SGX DCAP quotes without SGX hardware. FOR TESTS ONLY.
 *
 * A softsgx directory holds a complete, self-made Intel-style PKI: a TEST root CA (whose
 * subject says it is not Intel's), a PCK Processor (or Platform) CA, a PCK leaf certificate with the SGX
 * extension 1.2.840.113741.1.13.1, a TCB signing certificate, root and PCK CRLs, and TCB Info
 * and QE Identity JSON signed the way Intel's PCS signs them. Quotes made from it are byte-for-
 * byte in the format a real Quoting Enclave emits (v3, ECDSA P-256, certification data type 5),
 * so the real DCAP verifier checks every signature, the chain, the CRLs and the TCB level.
 *
 * A relying party must never trust these quotes: the verifier accepts them only when it is
 * explicitly configured with DIR/root-ca.pem as its attestation root (EDG_ATTESTATION_ROOT_CA).
 *
 * Files written by mr_softsgx_init (DIR is created with mode 0700 when missing):
 *   root-ca.pem  pck-ca.pem  pck.pem  tcb-signing.pem  pck-chain.pem  collateral.json  (0644)
 *   private/root-ca-key.pem  private/pck-ca-key.pem  private/tcb-signing-key.pem
 *   private/pck-key.pem  private/attestation-key.pem  private/softsgx.json        (0600)
 * collateral.json has the object shape of the shared test vectors (Phala dcap-qvl
 * QuoteCollateralV3): PEM issuer chains, CRLs as lower-case DER hex, the exact signed
 * tcbInfo / enclaveIdentity text and raw r||s signatures in hex.
 *
 * Ownership: mr_softsgx_load returns a handle owned by the caller (mr_softsgx_free, NULL-safe).
 * The handle keeps the PCK and attestation private keys (OpenSSL EVP_PKEY objects, which wipe
 * themselves on free); file buffers that held key PEM are wiped after parsing. A loaded handle
 * is immutable, so mr_softsgx_quote may be called from several threads at once.
 *
 * Errors: MR_ERR_USAGE for bad options/arguments, MR_ERR_IO for file system trouble (the
 * message names the file), MR_ERR_INTERNAL for OpenSSL failures.
 */
#ifndef MR_ATTEST_SOFTSGX_H
#define MR_ATTEST_SOFTSGX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "common/result.h"

/* Layout facts of a v3 ECDSA quote (spec/attestation.md §1). */
enum {
    MR_SGX_QUOTE_HEADER_SIZE = 48,
    MR_SGX_REPORT_BODY_SIZE = 384,
    MR_SGX_QUOTE_SIGLEN_OFFSET = 432,
    MR_SGX_QUOTE_SIGDATA_OFFSET = 436,
    MR_SGX_QUOTE_QE_REPORT_OFFSET = 564,
    MR_SGX_QUOTE_QE_AUTH_SIZE_OFFSET = 1012,
    MR_SGX_QE_AUTH_DATA_SIZE = 32,
    MR_SGX_REPORT_DATA_SIZE = 64,
    MR_OE_HEADER_SIZE = 16,
};

/* The platform TCB status a softsgx directory is built for. Realised through the TCB Info
 * levels and the SVNs in the PCK certificate, never written down as a verdict anywhere. */
typedef enum mr_softsgx_tcb {
    MR_SOFTSGX_TCB_UP_TO_DATE = 0,
    MR_SOFTSGX_TCB_SW_HARDENING_NEEDED,
    MR_SOFTSGX_TCB_CONFIGURATION_NEEDED,
    MR_SOFTSGX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
    MR_SOFTSGX_TCB_OUT_OF_DATE,
    MR_SOFTSGX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
    MR_SOFTSGX_TCB_REVOKED,
    MR_SOFTSGX_TCB_NOT_SUPPORTED, /* the PCK SVNs match no TCB level (verifier must reject) */
    MR_SOFTSGX_TCB__COUNT
} mr_softsgx_tcb;

/* QE TCB status (from the QE Identity levels and the QE's ISVSVN). */
typedef enum mr_softsgx_qe_tcb {
    MR_SOFTSGX_QE_UP_TO_DATE = 0,
    MR_SOFTSGX_QE_OUT_OF_DATE,
    MR_SOFTSGX_QE_REVOKED,
    MR_SOFTSGX_QE__COUNT
} mr_softsgx_qe_tcb;

/* Intel's spelling ("UpToDate", "OutOfDateConfigurationNeeded", ...; "TcbNotSupported" for
 * the no-match case). */
const char *mr_softsgx_tcb_name(mr_softsgx_tcb t);
MR_RESULT mr_softsgx_tcb_parse(const char *name, mr_softsgx_tcb *out);
const char *mr_softsgx_qe_tcb_name(mr_softsgx_qe_tcb t);
MR_RESULT mr_softsgx_qe_tcb_parse(const char *name, mr_softsgx_qe_tcb *out);

typedef struct mr_softsgx_init_opts {
    mr_softsgx_tcb tcb_status;   /* default (0) UpToDate */
    mr_softsgx_qe_tcb qe_status; /* default (0) UpToDate */
    unsigned valid_days;         /* 0 = 30; certificates, CRLs and collateral */
    time_t now;                  /* 0 = time(NULL); validity starts one hour before */
    bool revoke_pck;             /* list the PCK leaf's serial in the PCK CRL */
    bool platform_ca;            /* issue the PCK from an "Intel SGX PCK Platform CA" (with
                                    PlatformInstanceID and Configuration in the leaf) instead of
                                    a Processor CA */
} mr_softsgx_init_opts;

/* Creates (or overwrites) a softsgx directory. opts may be NULL for the defaults. */
MR_RESULT mr_softsgx_init(const char *dir, const mr_softsgx_init_opts *opts);

typedef struct mr_softsgx mr_softsgx;

MR_RESULT mr_softsgx_load(const char *dir, mr_softsgx **out);
void mr_softsgx_free(mr_softsgx *s);

/* The identity of the enclave a quote claims to come from. */
typedef struct mr_softsgx_identity {
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint16_t isvprodid;
    uint16_t isvsvn;
    bool debug;
} mr_softsgx_identity;

/* From EDG_SOFTSGX_MRENCLAVE/MRSIGNER (64 hex digits each; unset = zeros),
 * EDG_SOFTSGX_ISVPRODID/ISVSVN (0..65535) and EDG_SOFTSGX_DEBUG. */
MR_RESULT mr_softsgx_identity_from_env(mr_softsgx_identity *out);

/* Appends a v3 quote for `id` with REPORTDATA = report_data (report_data_len <= 64 bytes,
 * zero-padded) to out. With oe_header the quote is preceded by the 16-byte Open Enclave
 * remote-report header (version 1, type 2 = SGX remote, u64 size), as MarbleRun sends it. */
MR_RESULT mr_softsgx_quote(const mr_softsgx *s, const mr_softsgx_identity *id,
                           const uint8_t *report_data, size_t report_data_len, bool oe_header,
                           mr_buf *out);
/* The same with a chosen quote version: 3 (what MarbleRun and today's QE emit), or the
 * synthetic SGX forms 4 (certification data type 6 wrapping type 5) and 5 (v4 plus body type
 * 1 and body size after the header). No real SGX v4/v5 quote has been seen yet; these exist
 * to exercise the verifier's paths for them. */
MR_RESULT mr_softsgx_quote_version(const mr_softsgx *s, uint16_t version,
                                   const mr_softsgx_identity *id, const uint8_t *report_data,
                                   size_t report_data_len, bool oe_header, mr_buf *out);

/* ---- softtdx: TEST TDX quotes from the same directory (softtdx.c) ------------------------
 * mr_softsgx_init also writes tdx-collateral.json: TCB Info with id TDX (the platform's FMSPC,
 * module identity TDX_01, three levels) and a TD_QE identity, signed like collateral.json.
 * A verifier configured with EDG_ATTESTATION_COLLATERAL=DIR (the directory: both files) then
 * checks TDX quotes made by mr_softsgx_tdx_quote with every DCAP step. On a softsgx directory
 * whose platform is UpToDate, the TDX status follows TEE_TCB_SVN: byte 2 >= 3 UpToDate, 2
 * OutOfDate, 1 Revoked, 0 no level (rejected); byte 0 (module SVN) >= 4 UpToDate, 2..3
 * OutOfDate, below 2 rejected; byte 1 must be 1. */

typedef struct mr_softtdx_identity {
    uint8_t tee_tcb_svn[16];
    uint8_t mrseam[48];
    uint64_t td_attributes; /* bit 0 = DEBUG */
    uint64_t xfam;
    uint8_t mrtd[48], mrconfigid[48], mrowner[48], mrownerconfig[48];
    uint8_t rtmr[4][48];
} mr_softtdx_identity;

/* TEE_TCB_SVN 04 01 03 00.. (UpToDate), TDATTRIBUTES SEPT_VE_DISABLE, XFAM 0x61ae7, all
 * measurements zero. */
void mr_softtdx_identity_default(mr_softtdx_identity *out);

/* Appends a raw v4 TDX quote (TEE type 0x81, TD report 1.0, certification data type 6 around
 * the TD QE report and the type-5 PCK chain) with REPORTDATA = report_data (zero-padded). */
MR_RESULT mr_softsgx_tdx_quote(const mr_softsgx *s, const mr_softtdx_identity *id,
                               const uint8_t *report_data, size_t report_data_len, mr_buf *out);

#endif
