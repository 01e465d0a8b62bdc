/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the template renderer: tpl.c (structure, execution) and tpl_eval.c
 * (pipelines, operands, functions). */
#ifndef MR_CLI_TPL_INT_H
#define MR_CLI_TPL_INT_H

#include <stdbool.h>

#include "cli/tpl.h"

#define TPL_VARS_MAX 8

typedef struct tpl_var {
    char name[32];
    json_t *val; /* borrowed */
} tpl_var;

typedef struct tpl_ctx {
    const char *name; /* template name for errors */
    int line;         /* line of the action being evaluated */
    json_t *root;
    tpl_var vars[TPL_VARS_MAX];
    int nvars;
} tpl_ctx;

/* Evaluates the pipeline in src[0..len) to a new reference in *out. */
MR_RESULT mr_tpl_eval(tpl_ctx *c, const char *src, size_t len, json_t **out);
/* Go's truth: false, 0, nil, "" and empty lists/maps are false. */
bool mr_tpl_truthy(const json_t *v);
/* Appends v as Go's fmt prints it (%v) in a template. */
MR_RESULT mr_tpl_print(mr_buf *out, const json_t *v);

#endif
