/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the commands of marblerun-softsgx (main.c, tdx.c). */
#ifndef MR_TOOLS_SOFTSGX_TOOL_H
#define MR_TOOLS_SOFTSGX_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Prints the message and the --help hint, exits 2. */
void mr_softsgx_tool_usage(const char *msg) __attribute__((noreturn));
/* Prints the current error, returns its exit code. */
int mr_softsgx_tool_fail(void);
/* Hex into out: exactly max bytes (len NULL) or up to max (*len set); exits 2 otherwise. */
void mr_softsgx_tool_hex(const char *flag, const char *v, uint8_t *out, size_t max, size_t *len);
/* Writes b to the file (or stdout when path is NULL); 0 or 1. */
int mr_softsgx_tool_write(const char *path, const mr_buf *b);
/* tdx-quote */
int mr_softsgx_tool_tdx(int argc, char **argv);

#endif
