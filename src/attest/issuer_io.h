/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small file helpers shared by the quote issuers and softsgx (internal to src/attest).
 *
 * The readers work on regular files and on pseudo-files (files under /dev/attestation, configfs
 * attributes) alike: they read until EOF with a size cap instead of trusting st_size.
 * Errors are MR_ERR_IO with the path and strerror(errno) in the message.
 */
#ifndef MR_ATTEST_ISSUER_IO_H
#define MR_ATTEST_ISSUER_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/result.h"

/* Appends the content of `path` to out; fails when it is longer than `max` bytes. */
MR_RESULT mr_issuer_io_read(const char *path, size_t max, mr_buf *out);
/* Writes data to an existing file (pseudo-files: no O_CREAT, no O_TRUNC) in one write(2). */
MR_RESULT mr_issuer_io_write_existing(const char *path, const void *data, size_t len);
/* Creates or replaces a regular file with the given mode (applied even if it existed). */
MR_RESULT mr_issuer_io_write_new(const char *path, const void *data, size_t len, mode_t mode);
/* Builds "a/b" into out (NUL-terminated); fails when it does not fit. */
MR_RESULT mr_issuer_io_path(char *out, size_t out_len, const char *a, const char *b);

/* Appends the Open Enclave remote-report header (u32 version 1, u32 type 2 = SGX remote,
 * u64 size) and the quote to out: the form MarbleRun carries SGX quotes in. */
MR_RESULT mr_issuer_oe_wrap(const uint8_t *quote, size_t quote_len, mr_buf *out);

#endif
