/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by softsgx_pki.c (init), softsgx_x509.c (the TEST certificates of init) and
 * softsgx.c (load, quote). Not installed. */
#ifndef MR_ATTEST_SOFTSGX_INT_H
#define MR_ATTEST_SOFTSGX_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/softsgx.h"
#include "common/buf.h"
#include "common/result.h"

/* File names inside a softsgx directory. */
#define SOFTSGX_ROOT_CA "root-ca.pem"
#define SOFTSGX_PCK_CA "pck-ca.pem"
#define SOFTSGX_PCK "pck.pem"
#define SOFTSGX_TCB_SIGNING "tcb-signing.pem"
#define SOFTSGX_PCK_CHAIN "pck-chain.pem"
#define SOFTSGX_COLLATERAL "collateral.json"
#define SOFTSGX_TDX_COLLATERAL "tdx-collateral.json"
#define SOFTSGX_PRIVATE "private"
#define SOFTSGX_ROOT_CA_KEY "private/root-ca-key.pem"
#define SOFTSGX_PCK_CA_KEY "private/pck-ca-key.pem"
#define SOFTSGX_TCB_SIGNING_KEY "private/tcb-signing-key.pem"
#define SOFTSGX_PCK_KEY "private/pck-key.pem"
#define SOFTSGX_ATTESTATION_KEY "private/attestation-key.pem"
#define SOFTSGX_STATE "private/softsgx.json"

/* Intel's QE vendor ID (quote header offset 12). */
extern const uint8_t mr_softsgx_intel_vendor_id_[16];

/* Platform values the PKI was built with, as stored in private/softsgx.json. */
typedef struct softsgx_platform {
    uint8_t qe_mrenclave[32];
    uint8_t qe_mrsigner[32];
    uint16_t qe_isvprodid;
    uint16_t qe_isvsvn;
    uint8_t qe_id[16];  /* platform QE-ID, quote header user_data[0:16] */
    uint8_t cpusvn[16];
    uint16_t pcesvn;
} softsgx_platform;

/* A loaded softsgx directory (softsgx.c; the TDX quotes of softtdx.c use it too). */
struct mr_softsgx {
    EVP_PKEY *att_key;
    softsgx_platform plat;
    uint8_t att_pub[64];
    /* QE report body, its PCK signature and the QE auth data: fixed for a directory, so they
     * are computed once at load (a real QE also certifies its attestation key only once).
     * The TD QE's report certifies the same attestation key for TDX quotes. */
    uint8_t qe_report[MR_SGX_REPORT_BODY_SIZE];
    uint8_t qe_report_sig[64];
    uint8_t td_qe_report[MR_SGX_REPORT_BODY_SIZE];
    uint8_t td_qe_report_sig[64];
    uint8_t qe_auth[MR_SGX_QE_AUTH_DATA_SIZE];
    mr_buf chain; /* PEM leaf || PCK CA || root, NUL-terminated like a real QE's */
};

enum { MR_SOFTSGX_TD_QE_ISVPRODID = 2 };

/* QE report (the TD QE's when td), its signature, auth data and the type-5 PEM chain: the
 * part of the signature data that v3 carries directly and v4/v5 wrap in type 6. */
MR_RESULT mr_softsgx_append_qe_part_(const mr_softsgx *s, bool td, mr_buf *q);

/* TDX collateral (softtdx.c): the exact TCB Info (id TDX) text and the TD_QE identity text
 * that init signs, for the platform's FMSPC and the QE of plat. */
MR_RESULT mr_softsgx_tdx_tcb_info_json_(const char *issue, const char *next, mr_buf *out);
MR_RESULT mr_softsgx_hex_upper_(const uint8_t *b, size_t n, mr_buf *out);

/* FMSPC and PCE-ID of the softsgx platform (softsgx_pki.c; the FMSPC is not one of Intel's). */
extern const uint8_t mr_softsgx_fmspc_[6];
extern const uint8_t mr_softsgx_pce_id_[2];

/* The keys and certificates of a softsgx directory (all owned). */
typedef struct softsgx_pki {
    EVP_PKEY *root_key, *ca_key, *tcb_key, *pck_key, *att_key;
    X509 *root, *ca, *tcb, *pck;
} softsgx_pki;

/* New P-256 keys and the TEST hierarchy, valid from nb to na: the root CA, the PCK Platform
 * CA (platform_ca) or Processor CA, the TCB signing certificate and the PCK certificate with
 * the SGX extension (TCB components comps, the platform's PCESVN). On failure *p may hold
 * part of it: free it with mr_softsgx_pki_free_ either way. */
MR_RESULT mr_softsgx_pki_make_(softsgx_pki *p, const softsgx_platform *plat,
                               const uint8_t comps[16], bool platform_ca, time_t nb, time_t na);
void mr_softsgx_pki_free_(softsgx_pki *p);
/* A DER CRL issued by `issuer` (two random serials, plus `revoke` when given), appended to
 * der_out. */
MR_RESULT mr_softsgx_crl_der_(X509 *issuer, EVP_PKEY *issuer_key, const ASN1_INTEGER *revoke,
                              time_t last, time_t next, mr_buf *der_out);

#endif
