/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the SEV-SNP unit tests. */
#ifndef MR_TEST_SNP_H
#define MR_TEST_SNP_H

#include "mr_test.h"

#include "attest/snp.h"
#include "common/buf.h"

/* Reads tests/data/attestation/<dir>/<file> ($MR_TESTDATA_DIR) into out (fails the test on error). */
void snp_read_vector(const char *dir, const char *file, mr_buf *out);

/* Runs the tests on a synthetic AMD-like hierarchy (test_snp_synth.c); returns the number
 * of failures. */
int snp_run_synth_tests(void);

#endif
