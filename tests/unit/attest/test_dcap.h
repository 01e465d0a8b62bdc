/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the DCAP unit tests. */
#ifndef MR_TEST_DCAP_H
#define MR_TEST_DCAP_H

#include <stdint.h>
#include <time.h>

#include "common/buf.h"

/* Reads tests/data/attestation/<rel> ($MR_TESTDATA_DIR) into b (fails the test when missing). */
void td_read_vector(const char *rel, mr_buf *b);
time_t td_time(const char *rfc3339);

/* Synthetic-hierarchy tests (test_dcap_synth.c). */
void test_synth_sgx_v3_roundtrip(void **state);
void test_synth_sgx_v4(void **state);
void test_synth_sgx_v5(void **state);
void test_synth_other_root_rejected(void **state);
void test_synth_bad_cert_types(void **state);
void test_resigned_convergence(void **state);
void test_td_relaunch(void **state);
void test_synth_revocation(void **state);

#endif
