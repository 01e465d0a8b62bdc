/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers for the cmocka unit tests. Include after <cmocka.h>'s prerequisites. */
#ifndef MR_TEST_H
#define MR_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/result.h"

/* The call must succeed; on failure the recorded error message is printed. */
#define MR_ASSERT_OK(x)                                                                       \
    do {                                                                                      \
        if (!mr_ok(x))                                                                        \
            fail_msg("%s failed: %s (%s:%d)", #x, mr_error_get()->msg,                        \
                     mr_error_get()->file ? mr_error_get()->file : "?", mr_error_get()->line);\
    } while (0)

/* The call must fail with the given category, and the message must contain `needle`. */
#define MR_ASSERT_FAIL(x, want_cat, needle)                                                        \
    do {                                                                                      \
        mr_error_clear();                                                                     \
        if (mr_ok(x))                                                                         \
            fail_msg("%s unexpectedly succeeded", #x);                                        \
        if (mr_error_get()->cat != (want_cat))                                                     \
            fail_msg("%s: category %s, want %s (%s)", #x, mr_errcat_name(mr_error_get()->cat),\
                     mr_errcat_name(want_cat), mr_error_get()->msg);                               \
        if (strstr(mr_error_get()->msg, (needle)) == NULL)                                    \
            fail_msg("%s: message \"%s\" lacks \"%s\"", #x, mr_error_get()->msg, (needle));   \
    } while (0)

/* The project's test data (tests/data, see tests/data/attestation/PROVENANCE.md):
 * $MR_TESTDATA_DIR when set, else the directory this build was configured with (mr_unit_test
 * defines MR_TESTDATA_DIR; other helpers that include this header fall back to the relative
 * path, which a missing file then reports). */
#ifndef MR_TESTDATA_DIR
#define MR_TESTDATA_DIR "tests/data"
#endif
static inline const char *mr_test_data_dir(void)
{
    const char *d = getenv("MR_TESTDATA_DIR");
    return d != NULL && d[0] != '\0' ? d : MR_TESTDATA_DIR;
}

/* Path of tests/data/attestation/<rel> in out. */
static inline const char *mr_test_vector_path(char *out, size_t size, const char *rel)
{
    int n = snprintf(out, size, "%s/attestation%s%s", mr_test_data_dir(), rel[0] != '\0' ? "/" : "",
                     rel);
    if (n < 0 || (size_t)n >= size)
        fail_msg("test vector path too long: %s", rel);
    return out;
}

#endif
