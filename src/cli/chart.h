/* SPDX-License-Identifier: Apache-2.0 */
/*
 * charts/marblerun for `marblerun install`: the chart from a directory
 * (--marblerun-chart-path) or the copy embedded in the binary at build time, its values
 * (values.yaml coalesced with the install's overrides as Helm does: a null override deletes
 * the key, maps merge, everything else is replaced), and its objects rendered by the template
 * renderer (tpl.h), split into YAML documents and converted to JSON, in Helm's install order
 * (Namespace, ServiceAccount, Secret, ConfigMap, PVC, Role, RoleBinding, Service, Deployment,
 * webhooks, then other kinds).
 *
 * Ownership: *out is a new reference (a JSON array of objects). overrides is borrowed.
 * Errors: MR_ERR_IO (reading the chart), MR_ERR_USAGE (invalid YAML or template).
 */
#ifndef MR_CLI_CHART_H
#define MR_CLI_CHART_H

#include <jansson.h>

#include "common/result.h"

typedef struct mr_chart_file {
    const char *path; /* relative to the chart directory, e.g. "templates/injector.yaml" */
    const unsigned char *data;
    size_t len;
} mr_chart_file;

/* Generated at build time from charts/marblerun (chart_embedded.c). */
extern const mr_chart_file mr_chart_embedded[];
extern const size_t mr_chart_embedded_count;

/* dir NULL: the embedded chart. release: the namespace the objects go to. */
MR_RESULT mr_chart_render(const char *dir, const char *ns, json_t *overrides, json_t **out);
/* The chart's default values (values.yaml). */
MR_RESULT mr_chart_default_values(const char *dir, json_t **out);
/* Chart.yaml's version. */
MR_RESULT mr_chart_version(const char *dir, char *out, size_t out_len);
/* Coalesces src into dst (Helm's rules above). */
MR_RESULT mr_chart_coalesce(json_t *dst, json_t *src);

#endif
