/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration from environment variables. Every variable the project reads is listed once,
 * with its default and meaning, in the table in config.c; docs/configuration.md is generated
 * from that table (`marblerun-config-doc`). An empty value counts as unset (as MarbleRun's
 * helper does). Reading a variable that is not in the table is a programming error and
 * aborts in debug builds.
 */
#ifndef MR_COMMON_CONFIG_H
#define MR_COMMON_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/result.h"

typedef struct mr_config_var {
    const char *name;
    const char *def;        /* default value, or NULL when unset means "off"/"required" */
    const char *component;  /* coordinator, marble, cli, attestation, all */
    const char *help;
} mr_config_var;

/* Value of the variable, or its default (may be NULL). Never an empty string. */
const char *mr_config_get(const char *name);
/* True when the value is "1", "true", "yes" or "on" (case-insensitive). */
bool mr_config_bool(const char *name);
/* Parses an unsigned decimal; fails (MR_ERR_USAGE, naming the variable) on garbage. */
MR_RESULT mr_config_u64(const char *name, uint64_t *out);

const mr_config_var *mr_config_table(size_t *count);
/* Writes the table as a Markdown document. */
void mr_config_write_markdown(FILE *f);

#endif
