/* SPDX-License-Identifier: Apache-2.0 */
/* Test tool: marblerun-chart-render CHART_DIR|- NAMESPACE [OVERRIDES.json] prints the objects
 * `marblerun install` would apply (a JSON array), rendered by the CLI's own renderer. "-" is
 * the chart embedded in the binary. */
#include <stdio.h>
#include <string.h>

#include "cli/chart.h"
#include "common/buf.h"
#include "common/file.h"

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: marblerun-chart-render CHART_DIR|- NAMESPACE [OVERRIDES.json]\n");
        return 2;
    }
    json_t *over = NULL, *objs = NULL;
    if (argc == 4) {
        json_error_t err;
        over = json_load_file(argv[3], 0, &err);
        if (!json_is_object(over)) {
            fprintf(stderr, "%s: %s\n", argv[3], err.text);
            return 1;
        }
    }
    const char *dir = strcmp(argv[1], "-") == 0 ? NULL : argv[1];
    if (!mr_ok(mr_chart_render(dir, argv[2], over, &objs))) {
        fprintf(stderr, "Error: %s\n", mr_error_get()->msg);
        json_decref(over);
        return 1;
    }
    int rc = json_dumpf(objs, stdout, JSON_INDENT(1) | JSON_SORT_KEYS) == 0 ? 0 : 1;
    json_decref(objs);
    json_decref(over);
    return rc;
}
