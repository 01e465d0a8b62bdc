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

#include "common/alloc.h"
#include "common/result.h"

/* The call must succeed; on failure the recorded error message is printed. */
#define MR_ASSERT_OK(x)                                                                       \
    do {                                                                                      \
        if (!mr_ok(x))                                                                        \
            fail_msg("%s failed: %s (%s:%d)", #x, mr_error_get()->msg,                        \
                     mr_error_get()->file ? mr_error_get()->file : "?", mr_error_get()->line);\
    } while (0)

/* The call must fail with the given category (mr_error_is: a class accepts its specific
 * categories too), and the message must contain `needle`. */
#define MR_ASSERT_FAIL(x, want_cat, needle)                                                        \
    do {                                                                                      \
        mr_error_clear();                                                                     \
        if (mr_ok(x))                                                                         \
            fail_msg("%s unexpectedly succeeded", #x);                                        \
        if (!mr_error_is(want_cat))                                                           \
            fail_msg("%s: category %s, want %s (%s)", #x, mr_errcat_name(mr_error_get()->kind),\
                     mr_errcat_name(want_cat), mr_error_get()->msg);                               \
        if (strstr(mr_error_get()->msg, (needle)) == NULL)                                    \
            fail_msg("%s: message \"%s\" lacks \"%s\"", #x, mr_error_get()->msg, (needle));   \
    } while (0)

/* Allocation-failure sweep: runs op(ctx) with the 1st, 2nd, 3rd, ... allocation failing
 * (mr_alloc_fail_after(0), (1), ...) until a run makes all its allocations, so every
 * allocation of the operation fails once. Each run must either succeed or fail with category
 * MR_ERR_INTERNAL and a message containing "out of memory", and must free every block it
 * allocated (mr_alloc_live_blocks unchanged; make asan adds LeakSanitizer for everything else).
 * At least one run must fail. op must be deterministic, run on the calling thread and undo its
 * own effects. Returns the number of failure points. */
static inline long mr_test_alloc_sweep(const char *what, mr_result (*op)(void *ctx), void *ctx)
{
    long failed = 0;
    MR_ASSERT_OK(op(ctx)); /* warm-up: one-time caches are not leaks */
    for (long n = 0; n < 100000; n++) {
        long before = mr_alloc_live_blocks();
        mr_error_clear();
        mr_alloc_fail_after(n);
        mr_result r = op(ctx);
        /* still failing = allocation n was reached; a successful probe = op needed fewer */
        void *probe = mr_alloc(1);
        mr_alloc_fail_reset();
        const mr_error *e = mr_error_get();
        if (!mr_ok(r)) {
            failed++;
            if (e->cat != MR_ERR_INTERNAL || strstr(e->msg, "out of memory") == NULL)
                fail_msg("%s: allocation %ld failed: category %s, message \"%s\" (%s:%d); want "
                         "internal \"out of memory\"", what, n, mr_errcat_name(e->cat), e->msg,
                         e->file != NULL ? e->file : "?", e->line);
        }
        mr_free(probe);
        long after = mr_alloc_live_blocks();
        if (after > before)
            fail_msg("%s: allocation %ld failing: %ld blocks not freed", what, n, after - before);
        if (after < before)
            fail_msg("%s: allocation %ld failing: %ld more blocks freed than allocated", what, n,
                     before - after);
        if (probe != NULL) { /* every allocation was satisfied: the sweep is complete */
            if (!mr_ok(r))
                fail_msg("%s failed with all its allocations satisfied: %s", what, e->msg);
            if (failed == 0)
                fail_msg("%s: no allocation failure made it fail", what);
            return failed;
        }
    }
    fail_msg("%s: the sweep did not end", what);
    return failed;
}

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
