/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the DCAP verifier (src/attest/dcap*.c): the quote parser (dcap.c), the PCK
 * certificate chain and its SGX extension (dcap_pck.c) and the verification steps
 * (dcap_verify.c). Not part of the module contract (see dcap.h).
 */
#ifndef MR_ATTEST_DCAP_INT_H
#define MR_ATTEST_DCAP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "attest/attest.h"
#include "attest/dcap.h"
#include "common/result.h"

/* The PCK certificate's SGX extension (OID 1.2.840.113741.1.13.1). */
typedef struct pck_info {
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint8_t comp[16];
    uint8_t cpusvn[16];
    uint16_t pcesvn;
    unsigned have; /* bit per required item */
} pck_info;

/* A verified PCK chain of a quote. */
typedef struct dcap_pck {
    X509 *leaf;         /* the PCK certificate (owned reference) */
    X509 *intermediate; /* its issuer, the Platform or Processor CA (owned reference) */
    pck_info pck;
    bool processor_ca;  /* issued by the Processor CA (else the Platform CA) */
    uint8_t chain_hash[32]; /* SHA-256 of the quote's certification data (the chain) */
} dcap_pck;

/* Returns r; on failure first puts "<step>: " in front of the message, naming the failed
 * verification step. */
static inline MR_RESULT in_step(const char *step, mr_result r)
{
    if (!mr_ok(r))
        mr_error_prefix("%s", step);
    return r;
}

/* sgx_report_body_t (§1.2): the SGX claims and the 64 bytes of report data of a report body
 * (the quote's, or the QE report). */
MR_RESULT mr_dcap_sgx_body_(mr_slice body, mr_attest_sgx_claims *s, uint8_t rd[64]);

/* §2 steps 2-3 and the PCK extension: a verified chain for the quote's certification data
 * (from the process-wide cache or freshly verified) that is valid at `when`. Failures are
 * "PCK chain: ..." and "PCK certificate: ...". Release *out with mr_dcap_pck_clear_. */
MR_RESULT mr_dcap_pck_chain_(const mr_dcap_quote *q, const mr_attest_roots *roots, time_t when,
                             dcap_pck *out);
void mr_dcap_pck_clear_(dcap_pck *p);

/* Verified QE report signatures (issue 17). Every quote of a platform carries the same QE
 * report and signature by the same PCK key, so a verification that succeeded is remembered by
 * key = SHA-256(chain hash || QE report || signature): the same inputs give the same result.
 * Only successes are stored; a bounded table (oldest replaced), cleared with the chain cache
 * by mr_dcap_cache_clear. _hits counts answers from the table (tests). */
bool mr_dcap_qe_memo_has_(const uint8_t key[32]);
void mr_dcap_qe_memo_put_(const uint8_t key[32]);
unsigned long mr_dcap_qe_memo_hits_(void);

/* The attestation key of a quote as an EVP_PKEY (an owned reference), from a bounded table of
 * keys already imported (a platform's quotes share one attestation key), else imported with
 * mr_ossl_p256_from_raw and remembered. Cleared by mr_dcap_cache_clear. */
MR_RESULT mr_dcap_attest_key_(const uint8_t xy[64], EVP_PKEY **out);

#endif
