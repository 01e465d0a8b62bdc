/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the store/seal unit tests and the crash child. */
#ifndef MR_STORE_TEST_UTIL_H
#define MR_STORE_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coordinator/store/store.h"

/* The fixed state key used by store tests (not secret). */
extern const uint8_t st_dek[MR_STORE_DEK_LEN];

/* Creates a fresh directory under TMPDIR (or /tmp); caller frees with st_rmdir. */
char *st_mkdtemp(void);
/* Removes the files in dir and dir itself, frees the string. */
void st_rmdir(char *dir);
/* dir/name into a static-free caller buffer. */
void st_path(char *out, size_t cap, const char *dir, const char *name);

/* Whole-file helpers (fail the test on error). Returned buffers are freed with mr_free. */
uint8_t *st_read(const char *dir, const char *name, size_t *len);
void st_write(const char *dir, const char *name, const uint8_t *data, size_t len);
bool st_exists(const char *dir, const char *name);

/* Commits one put (value = NUL-terminated string). */
void st_put(mr_store *s, const char *key, const char *val);
void st_del(mr_store *s, const char *key);
/* Renders the full content as "k=v\n..." (values printed as strings) into a heap string. */
char *st_dump(mr_store *s);

typedef struct st_suite {
    const char *name;
    const void *tests; /* const struct CMUnitTest * */
    size_t count;
} st_suite;

st_suite st_store_suite(void);
st_suite st_seal_suite(void);
st_suite st_crash_suite(void);

#endif
