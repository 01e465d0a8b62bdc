/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compiled-in AMD SEV-SNP roots (src/attest/amd_roots.c). Internal to the SNP verifier.
 *
 * For each product line: the ARK (self-signed root, RSA-4096, RSASSA-PSS) and the ASK
 * that signs VCEKs, as served by AMD KDS `/vcek/v1/<product>/cert_chain`, plus the
 * SHA-256 of the ARK's SubjectPublicKeyInfo. The ARK is the trust anchor; the pin is
 * checked against the embedded certificate every time it is loaded, so an edit of the
 * PEM text cannot silently change the root.
 */
#ifndef MR_ATTEST_SNP_ROOTS_H
#define MR_ATTEST_SNP_ROOTS_H

#include <stddef.h>
#include <stdint.h>

#include "attest/snp.h"

typedef struct mr_snp_root {
    mr_snp_product product;
    const char *ark_pem;
    const char *ask_pem;
    uint8_t ark_spki_sha256[32];
} mr_snp_root;

extern const mr_snp_root mr_snp_roots[];
extern const size_t mr_snp_roots_count;

#endif
