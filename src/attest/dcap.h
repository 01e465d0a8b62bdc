/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Native Intel DCAP quote verification (SGX quote v3/v4/v5, TDX quote v4/v5), following
 * shared/spec/attestation.md §2 step by step. Every failure is MR_ERR_ATTESTATION with a
 * message that starts with the name of the failed step ("quote parse: ...", "PCK chain:
 * ...", "QE identity: ...", "TCB level: ...").
 *
 * Input forms: a raw DCAP quote, or the 16-byte Open Enclave remote-report header
 * (LE32 version = 1, LE32 type = 2, LE64 size) followed by the quote. Bytes after the
 * declared signature data are ignored, as Intel's QVL does.
 *
 * What a quote's certificate hierarchy must look like (Intel's, or a test hierarchy such as
 * softsgx's under a configured test root): the PCK leaf's CN contains "Intel SGX PCK
 * Certificate" and carries the SGX extension 1.2.840.113741.1.13.1 (FMSPC, PCE-ID, the 16
 * TCB component SVNs and PCESVN); its issuer's CN is "Intel SGX PCK Platform CA" or "Intel
 * SGX PCK Processor CA"; TCB Info and QE Identity are signed by a certificate with CN "Intel
 * SGX TCB Signing" issued by a trusted root. Roots are matched by key. The QE report data
 * must be SHA-256(attestation key || QE auth data) followed by 32 zero bytes.
 *
 * Verified PCK chains are cached process-wide (keyed by the certification data and the
 * roots set); revocation and time are checked on every verification.
 *
 * Thread safety: all functions are reentrant. Roots and collateral are immutable once built
 * and may be shared between threads.
 */
#ifndef MR_ATTEST_DCAP_H
#define MR_ATTEST_DCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "common/buf.h"
#include "common/result.h"

#define MR_DCAP_HEADER_LEN 48
#define MR_DCAP_SGX_BODY_LEN 384
#define MR_DCAP_TD10_BODY_LEN 584
#define MR_DCAP_TD15_BODY_LEN 648
#define MR_DCAP_OE_HEADER_LEN 16

enum { MR_DCAP_TEE_SGX = 0x00000000u, MR_DCAP_TEE_TDX = 0x00000081u };

/* The structure of one quote; all slices borrow from the input buffer. */
typedef struct mr_dcap_quote {
    uint16_t version;        /* 3, 4, 5 */
    uint16_t att_key_type;   /* 2 */
    uint32_t tee_type;       /* MR_DCAP_TEE_* */
    uint16_t body_type;      /* v5 body type (1 SGX, 2 TD10, 3 TD15); v3/v4: implied */
    mr_slice header;         /* 48 bytes */
    mr_slice body;           /* SGX report 384 / TD report 584 or 648 */
    mr_slice signed_region;  /* header .. end of body (v5: incl. type and size) */
    mr_slice quote_sig;      /* 64 bytes raw r||s */
    mr_slice attest_key;     /* 64 bytes raw x||y */
    mr_slice qe_report;      /* 384 bytes */
    mr_slice qe_report_sig;  /* 64 bytes */
    mr_slice qe_auth_data;
    uint16_t cert_type;      /* inner certification data type (5 expected) */
    mr_slice cert_data;      /* inner certification data (PEM chain for type 5) */
    size_t trailing;         /* bytes after the signature data (ignored) */
} mr_dcap_quote;

/* Strips an Open Enclave remote-report header when present; otherwise returns the input. */
MR_RESULT mr_dcap_unwrap(const uint8_t *in, size_t len, mr_slice *quote);
/* Structural parse (§1, §2 step 1); no cryptography. */
MR_RESULT mr_dcap_parse(const uint8_t *quote, size_t len, mr_dcap_quote *out);
/* Fills the workload part of the claims (TEE type, report body, report data, debug). */
MR_RESULT mr_dcap_quote_claims(const mr_dcap_quote *q, mr_attest_claims *out);

/* Full verification (§2 steps 1-14): on success *out holds the claims and the TCB verdict.
 * A "no TCB level matches" result is a failure ("TCB level: TCB not supported"). The policy
 * (statuses, advisories, measurements) is judged separately, see policy.h. */
MR_RESULT mr_dcap_verify(const uint8_t *quote, size_t len, const mr_attest_options *opts,
                         mr_attest_claims *out);

/* Drops the process-wide cache of verified PCK chains (tests; after a roots change it is
 * not needed: entries are keyed by the roots set). */
void mr_dcap_cache_clear(void);

/* Trust anchors. */
/* The embedded Intel SGX Root CA (2049 issue); a process-wide immutable singleton. Returns
 * NULL only when the embedded certificate cannot be decoded (out of memory). */
const mr_attest_roots *mr_attest_roots_intel(void);
/* Roots from PEM text (one or more certificates). Logs a loud warning when a root is not
 * the Intel SGX Root CA key. */
MR_RESULT mr_attest_roots_from_pem(const char *pem, size_t len, mr_attest_roots **out);
MR_RESULT mr_attest_roots_from_der(const uint8_t *der, size_t len, mr_attest_roots **out);
/* EDG_ATTESTATION_ROOT_CA (a PEM file) when set, else a new reference to the Intel root
 * set (*out is then owned all the same; free it with mr_attest_roots_free). */
MR_RESULT mr_attest_roots_from_config(mr_attest_roots **out);
/* True when the set contains the Intel SGX Root CA key. */
bool mr_attest_roots_is_intel(const mr_attest_roots *r);
void mr_attest_roots_free(mr_attest_roots *r);

#endif
