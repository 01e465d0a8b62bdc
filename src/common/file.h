/* SPDX-License-Identifier: Apache-2.0 */
/* Whole-file helpers with size limits and explicit modes. */
#ifndef MR_COMMON_FILE_H
#define MR_COMMON_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/result.h"

/* Appends the file's content to out. Fails, naming the path, with MR_ERR_IO if it cannot be
 * read and MR_ERR_TOO_LARGE if it is larger than max bytes. Use an MR_BUF_SECRET buffer for
 * key files. */
MR_RESULT mr_file_read(const char *path, size_t max, mr_buf *out);

/* Writes data to path with the given mode, atomically: a temporary file in the same
 * directory is written, fsynced and renamed over path, then the directory is fsynced. */
MR_RESULT mr_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Creates the directory and its missing parents with the given mode (existing ones are
 * left as they are). */
MR_RESULT mr_mkdir_p(const char *path, mode_t mode);

#endif
