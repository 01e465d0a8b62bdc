/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers for the cmocka unit tests. Include after <cmocka.h>'s prerequisites. */
#ifndef MR_TEST_H
#define MR_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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

#endif
