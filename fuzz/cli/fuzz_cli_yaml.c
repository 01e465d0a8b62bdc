/* SPDX-License-Identifier: Apache-2.0 */
/* Target: mr_cli_yaml_to_json (cli/yaml.c). Whatever it accepts must be valid JSON. A YAML
 * "\0" escape is a legal NUL in a string value and comes out as \u0000, which jansson only
 * reads with JSON_ALLOW_NUL. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "cli/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mr_buf out;
    mr_buf_init(&out, 0, 0);
    if (mr_ok(mr_cli_yaml_to_json(data, size, &out))) {
        json_t *j = json_loadb((const char *)out.data, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (j == NULL)
            abort();
        json_decref(j);
    }
    mr_buf_free(&out);
    return 0;
}
