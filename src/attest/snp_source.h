/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP evidence as a relying party receives it, and where the VCEK comes from when the
 * evidence does not carry one (spec/attestation.md §5.3, §5.5; docs/cvm.md).
 *
 * A report is verified with the certificates of its evidence (the configfs-tsm auxblob:
 * VCEK or VLEK, ASK or ASVK, ARK). When a VCEK-signed report comes without its VCEK, the
 * source looks it up by CHIP_ID and REPORTED_TCB:
 *   directory  <dir>/<CHIP_ID, 128 lower-case hex digits>-<REPORTED_TCB, 16 hex digits>.der
 *              (or .pem); <dir>/cert_chain.pem (ASK then ARK, as KDS serves it) is used when
 *              present and the evidence has no ASK;
 *   KDS        GET <base>/vcek/v1/<product>/<CHIP_ID hex>?blSPL=&teeSPL=&snpSPL=&ucodeSPL=
 *              (DER), the product from the configuration, else from the report's CPUID
 *              (version 3 and later; family 0x19 model 0x10-0x1f or 0xa0-0xaf is Genoa),
 *              else Milan. With a test root, <base>/vcek/v1/<product>/cert_chain is
 *              fetched for the ASK as well (AMD's ASKs are compiled in).
 * Looked-up certificates are cached in memory (per CHIP_ID and TCB, up to 256 entries) once a
 * report verified with them; they are verified like carried ones on every use, so a cached
 * entry never vouches for anything by itself. A VLEK cannot be looked up (it must travel in the evidence), nor can
 * the VCEK of a report with MASK_CHIP_KEY set.
 *
 * Trust: the compiled-in AMD roots (snp.h) unless the source has a TEST root, which then
 * replaces them (never in production: the Coordinator logs it loudly).
 *
 * Errors: MR_ERR_ATTESTATION for evidence that does not verify ("SNP ..." step messages of
 * snp.h, "SNP VCEK lookup: ..."), MR_ERR_IO when a directory or KDS cannot be read,
 * MR_ERR_USAGE for a bad configuration, MR_ERR_INTERNAL for out of memory.
 * Thread safety: a source may be shared by any number of threads.
 */
#ifndef MR_ATTEST_SNP_SOURCE_H
#define MR_ATTEST_SNP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "attest/attest.h"
#include "attest/snp.h"
#include "common/buf.h"
#include "common/result.h"

typedef struct mr_snp_source_opts {
    /* A directory or an http(s):// KDS base URL (e.g. https://kdsintf.amd.com); NULL or ""
     * = no lookup. */
    const char *vcek;
    /* TESTS ONLY: a self-signed root (PEM or DER) used instead of AMD's. Copied. */
    mr_slice test_root;
    /* Only this product's AMD root is accepted, and it names the KDS path; ANY = every
     * compiled-in root, KDS product from the report. */
    mr_snp_product product;
} mr_snp_source_opts;

MR_RESULT mr_snp_source_new(const mr_snp_source_opts *o, mr_snp_source **out);
/* From EDG_ATTESTATION_SNP_VCEK, EDG_ATTESTATION_SNP_ROOT (a PEM file) and
 * EDG_ATTESTATION_SNP_PRODUCT (Milan, Genoa or unset); *out is NULL when none is set. */
MR_RESULT mr_snp_source_from_config(mr_snp_source **out);
void mr_snp_source_free(mr_snp_source *s);
/* True when the source replaces AMD's roots by a test root. */
bool mr_snp_source_has_test_root(const mr_snp_source *s);

/* Parses "Milan" or "Genoa" (case-insensitive); "" and "any" give MR_SNP_PRODUCT_ANY. */
MR_RESULT mr_snp_product_parse(const char *name, mr_snp_product *out);

/* Verifies a report with the certificates of aux (a configfs-tsm auxblob, may be empty) and
 * the source (may be NULL) at time `when` (0 = now). */
MR_RESULT mr_snp_source_verify(mr_snp_source *s, mr_slice report, mr_slice aux, time_t when,
                               mr_snp_claims *out);

#endif
