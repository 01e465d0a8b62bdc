/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small OpenSSL 3 helpers of the DCAP verifier (dcap*.c, collateral.c). Hashing and the raw
 * P-256 forms of the quote are done by src/crypto (crypto/hash.h, crypto/p256.h); the
 * wrappers here only state their failures as attestation errors. Failures are
 * MR_ERR_ATTESTATION unless stated otherwise (out of memory is MR_ERR_INTERNAL); the caller
 * prefixes the step name.
 */
#ifndef MR_ATTEST_OSSL_H
#define MR_ATTEST_OSSL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/result.h"

extern const uint8_t mr_intel_sgx_root_der[];
extern const size_t mr_intel_sgx_root_der_len;
extern const uint8_t mr_intel_sgx_root_spki_sha256[32];

/* A P-256 public key from a raw 64-byte x||y point (mr_key_p256_from_raw). */
MR_RESULT mr_ossl_p256_from_raw(const uint8_t xy[64], EVP_PKEY **out);
/* ECDSA-SHA256 verification of a raw 64-byte r||s signature over msg
 * (mr_ecdsa_p256_verify_raw): "<what> does not verify", "<what>: unusable key". */
MR_RESULT mr_ossl_verify_raw_sig(EVP_PKEY *key, const uint8_t *msg, size_t len,
                                 const uint8_t sig[64], const char *what);
/* The certificates of the CERTIFICATE blocks of PEM text, in order; text outside them and
 * other blocks are skipped. "certificate chain: unterminated PEM block", "certificate chain:
 * bad base64 in PEM block", "too many certificates" (more than 16), a malformed certificate
 * (mr_ossl_der_cert) and "no certificate in PEM chain" fail. */
MR_RESULT mr_ossl_pem_certs(const uint8_t *pem, size_t len, STACK_OF(X509) **out);
/* Exactly one DER certificate (below 1 MiB) or CRL (below 16 MiB), nothing after it:
 * "bad certificate size", "malformed certificate", "bad CRL size", "malformed CRL". */
MR_RESULT mr_ossl_der_cert(const uint8_t *der, size_t len, X509 **out);
MR_RESULT mr_ossl_der_crl(const uint8_t *der, size_t len, X509_CRL **out);
/* ASN1_TIME -> time_t (UTC). */
MR_RESULT mr_ossl_asn1_time(const ASN1_TIME *t, time_t *out);
/* "YYYY-MM-DDTHH:MM:SS[.fff]Z" -> time_t (mr_rfc3339_parse with MR_RFC3339_UTC_LENIENT):
 * "invalid date", "invalid date (UTC 'Z' required)". */
MR_RESULT mr_ossl_rfc3339(const char *s, size_t len, time_t *out);
/* Common name of a certificate subject (truncated to cap-1). Empty when absent. */
void mr_ossl_subject_cn(X509 *cert, char *out, size_t cap);
/* SHA-256 of the certificate's DER SubjectPublicKeyInfo (failures are MR_ERR_INTERNAL). */
MR_RESULT mr_ossl_spki_sha256(X509 *cert, uint8_t out[32]);
/* True when the certificate's subject equals its issuer (self-issued). */
bool mr_ossl_self_issued(X509 *cert);
/* Verifies the certificate chain `leaf` (+ `untrusted`) against `roots` (trusted), without
 * CRLs and without looking at the time: the callers check the time against the validity
 * window on every use (results are cached). The failure text is OpenSSL's verification
 * error ("unable to get local issuer certificate", ...). On success *chain_not_before and
 * *chain_not_after (both optional) hold the intersection of the validity windows of every
 * certificate of the chain built and, when issuer_out is set, *issuer_out a new reference to
 * the certificate that issued `leaf`. */
MR_RESULT mr_ossl_verify_chain(X509 *leaf, STACK_OF(X509) *untrusted, STACK_OF(X509) *roots,
                               X509 **issuer_out, time_t *chain_not_before,
                               time_t *chain_not_after);
/* Formats a time_t as RFC 3339 UTC ("2006-01-02T15:04:05Z") into out (at least 21 bytes);
 * the decimal number of seconds when it cannot be formatted so. */
void mr_ossl_fmt_time(time_t t, char *out, size_t cap);

#endif
