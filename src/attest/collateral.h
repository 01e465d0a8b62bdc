/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP collateral: TCB Info, QE Identity, PCK CRL, Root CA CRL and their issuer chains.
 *
 * JSON shape (Phala dcap-qvl QuoteCollateralV3, the shape of testdata/attestation/<x>/
 * collateral.json):
 *   { "pck_crl_issuer_chain": PEM, "root_ca_crl": hex DER | null, "pck_crl": hex DER | null,
 *     "tcb_info_issuer_chain": PEM, "tcb_info": "<exact signed tcbInfo JSON text>",
 *     "tcb_info_signature": hex r||s, "qe_identity_issuer_chain": PEM,
 *     "qe_identity": "<exact signed enclaveIdentity JSON text>",
 *     "qe_identity_signature": hex r||s }
 * The signed texts are kept byte-exact and signatures are verified over them; they are
 * never re-serialised.
 *
 * Parsing (mr_dcap_collateral_parse_json) checks only the shape. Signatures, chains and
 * validity at the verification time are checked by mr_dcap_verify (dcap.h), which caches
 * the expensive parts inside the (immutable, reference-counted) collateral object.
 *
 * Sources: a file (one collateral set), a directory (every .json file in it and every
 * <subdir>/collateral.json,
 * one set per TEE type and FMSPC) or a PCCS/PCS base URL (v4 API, fetched with
 * collateral_http.h -- libevent's evhttp over OpenSSL, 30 s per document, no redirects -- and
 * cached in memory per TEE type, FMSPC and PCK CA until the earliest nextUpdate).
 * Sources are thread-safe; a cached set is never re-fetched while it is valid.
 */
#ifndef MR_ATTEST_COLLATERAL_H
#define MR_ATTEST_COLLATERAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attest/attest.h"
#include "common/result.h"

/* Parses collateral JSON. On success *out holds one reference. */
MR_RESULT mr_dcap_collateral_parse_json(const char *json, size_t len, mr_dcap_collateral **out);
MR_RESULT mr_dcap_collateral_load_file(const char *path, mr_dcap_collateral **out);
/* Reference counting (thread-safe). Free drops one reference; NULL is a no-op. */
mr_dcap_collateral *mr_dcap_collateral_ref(const mr_dcap_collateral *c);
void mr_dcap_collateral_free(mr_dcap_collateral *c);

/* Sources. */
MR_RESULT mr_collateral_source_file(const char *path, mr_collateral_source **out);
MR_RESULT mr_collateral_source_dir(const char *path, mr_collateral_source **out);
/* base_url e.g. "https://localhost:8081" or "https://api.trustedservices.intel.com"; the
 * v4 paths of spec/attestation.md §3.4 are appended. With insecure_tls the server's
 * certificate is not checked (PCCS usually has a self-signed one; the collateral is signed
 * anyway). */
MR_RESULT mr_collateral_source_pccs(const char *base_url, bool insecure_tls,
                                    mr_collateral_source **out);
/* From EDG_ATTESTATION_COLLATERAL (file or directory) or EDG_ATTESTATION_PCCS_URL; *out is
 * NULL when neither is set. */
MR_RESULT mr_collateral_source_from_config(mr_collateral_source **out);
/* Looks up (and, for PCCS, fetches) the collateral for a TEE (false = SGX, true = TDX), an
 * FMSPC and the PCK CA ("platform" or "processor"). *out is a new reference. */
MR_RESULT mr_collateral_source_get(mr_collateral_source *s, bool tdx, const uint8_t fmspc[6],
                                   const char *pck_ca, time_t now, mr_dcap_collateral **out);
void mr_collateral_source_free(mr_collateral_source *s);

#endif
