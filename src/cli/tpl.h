/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A renderer for the subset of Go templates (text/template + the Helm/sprig functions below)
 * that charts/marblerun uses, so `marblerun install` renders the chart itself, without Helm.
 * tests/k8s/test_cli_install.py checks that its output equals `helm template` for the same
 * values. Keep the chart's templates inside this subset:
 *
 *  - text and actions `{{ ... }}`, trim markers `{{- ` and ` -}}`, comments (an action that
 *    starts with a slash and a star);
 *  - `{{ if P }} ... {{ else if P }} ... {{ else }} ... {{ end }}`;
 *  - `{{ range $k, $v := P }} ... {{ end }}` over a map (keys in sorted order, as Go) or a
 *    list ($k the index); inside, `.` stays the root (the chart does not use `.` there);
 *  - pipelines `a | f b`, parenthesised sub-pipelines, operands: `.Path.to.value` (from the
 *    root), `$var.path`, "strings" (Go escapes), integers, true, false, nil;
 *  - functions: not, and, or, eq, ne, default, quote, toJson, toString, lower, print, b64enc.
 *
 * Values print as Go prints them (strings raw, integers in decimal, bools true/false, a
 * missing value as nothing, which is what Helm turns "<no value>" into).
 *
 * data is {"Values": ..., "Release": {"Name", "Namespace", "Service"}, "Chart": {...}}; it is
 * borrowed. The output is appended to out. Errors (MR_ERR_USAGE): "template: <name>:<line>:
 * <reason>" for syntax errors, unknown functions and wrong argument counts.
 */
#ifndef MR_CLI_TPL_H
#define MR_CLI_TPL_H

#include <jansson.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/result.h"

MR_RESULT mr_tpl_render(const char *name, const char *text, size_t len, json_t *data,
                        mr_buf *out);

#endif
